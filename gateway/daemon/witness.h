/*
 * witness.h - witnessing: we check and cosign peers' evidence logs, they ours.
 *
 * A witness thread asks every peer, every [audit] witness_interval_s, for its latest
 * signed head and the consistency proof from the last head of it we cosigned; it
 * verifies the signature with the peer's certificate, checks consistency
 * (bg_audit_witness_check: a rewritten history shows as a fork or an inconsistency,
 * logged as audit.fork_detected and kept in witness.log) and sends back a
 * cosignature, which the peer verifies and keeps. Witness traffic itself is not
 * logged as evidence.
 */
#ifndef BG_WITNESS_H
#define BG_WITNESS_H

#include "common/err.h"
#include "peers/envelope.h"
#include "peers/transport.h"

struct bg_gw;

/* Opens the witness store beside the evidence log and starts the witness thread. */
int gw_witness_start(struct bg_gw *gw, bg_err *err);
/* Stops the witness thread (first thing at stop: it calls peers). */
void gw_witness_stop(struct bg_gw *gw);
/* Closes the witness store (after the servers stopped). */
void gw_witness_close(struct bg_gw *gw);

/* Federation handlers for WITNESS_BODY_HEAD_REQUEST and WITNESS_BODY_COSIGN. */
void gw_witness_answer_head(struct bg_gw *gw, const bg_env_opened *o, bg_tp_request *req);
void gw_witness_answer_cosign(struct bg_gw *gw, const bg_env_opened *o, bg_tp_request *req);

#endif
