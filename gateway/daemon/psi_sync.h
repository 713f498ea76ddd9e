/*
 * psi_sync.h - bringing our copy of a peer's snapshot of a list up to date: a
 * SnapshotRequest with what we hold; the peer answers that we are current, or sends
 * a delta or the full snapshot in chunks. The digest is checked against the city's
 * signature (the answer envelope's certificate, verified by the envelope layer and
 * cached by bg_trust; BG_SIG_CTX_SNAPSHOT) and the stream against the digest (the
 * mpc reader); what is built must be exactly what the city signed before it goes to
 * the cache (cache.h).
 */
#ifndef BG_PSI_SYNC_H
#define BG_PSI_SYNC_H

#include "gateway/daemon/cache.h"
#include "gateway/daemon/psi_job.h"

/* Brings the cached snapshot of (j->city, j->list) up to date from p; *out is a
 * reference (gw_cached_release). A failure is j->code/j->error. */
int psi_sync_snapshot(pjob *j, gw_peer *p, gw_cached **out);

#endif
