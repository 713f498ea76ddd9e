/*
 * psi_attest.h - graded queries: every match comes with an attestation of its grade
 * (gateway/attest), built from the peer's snapshot and checked against the peer's
 * current signed status list, which is fetched with the snapshot. A status list that
 * cannot be had does not fail the job: the grades come back marked as not verified.
 */
#ifndef BG_PSI_ATTEST_H
#define BG_PSI_ATTEST_H

#include <stddef.h>

#include "gateway/daemon/cache.h"
#include "gateway/daemon/psi_job.h"
#include "mpc/psi.h"

/* The peer's status list, verified (its certificate pinned in the roster, its signature,
 * a number not below the newest we saw) into j->st and j->status, or j->status_error. */
void psi_attest_fetch_status(pjob *j, gw_peer *p);

/* Builds and checks the attestation of input i's graded match rec in snapshot s (q's
 * result) into j->att[i]; *prover is made on first use (the caller frees it). */
void psi_attest_one(pjob *j, const bg_psi_query *q, const gw_cached *s, bg_snap_prover **prover,
                    size_t i, const bg_snap_record *rec, const bg_roster *r);

#endif
