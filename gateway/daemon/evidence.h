/*
 * evidence.h - the gateway's evidence log and its witnesses (gateway/audit does the
 * log itself; this file wires it into the daemon).
 *
 * Every authenticated federation request a gateway answers leaves two leaves in
 * <data_dir>/audit: "request-received" (digest of the signed request) and
 * "request-answered" or "request-refused" (digest of the signed answer, outcome),
 * with peer, purpose, authorisation reference, list, epoch and item counts; never an
 * element or identifier. They are appended (and synced) BEFORE the answer is sent:
 * if the log cannot be written the answer is dropped, so nothing is answered without
 * evidence. Requests refused before their envelope verified are not logged (an
 * unauthenticated sender could otherwise fill the log); they are counted and logged
 * on stderr. The asking side logs its PSI requests likewise ("request-sent" and
 * "answer-received" or "request-failed") after each round trip.
 *
 * Tree heads are signed every [audit] head_interval_s when the tree grew. A witness
 * thread asks every peer, every [audit] witness_interval_s, for its latest signed head
 * and the consistency proof from the last head of it we cosigned; it verifies the
 * signature with the peer's certificate, checks consistency (bg_audit_witness_check:
 * a rewritten history shows as a fork or an inconsistency, logged as
 * audit.fork_detected and kept in witness.log) and sends back a cosignature, which
 * the peer verifies and keeps. Witness traffic itself is not logged as evidence.
 */
#ifndef BG_EVIDENCE_H
#define BG_EVIDENCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gateway/audit/audit.h"
#include "peers/envelope.h"
#include "peers/transport.h"

struct bg_gw;

/* One inbound exchange's evidence, filled while the request is handled. */
typedef struct gw_ev {
    bg_audit_event e;
} gw_ev;

/* Seeds ev from the opened request: peer, request id and digest, purpose, reference. */
void gw_ev_inbound(gw_ev *ev, const bg_env_opened *o);
/* What the request was about (list may be NULL). */
void gw_ev_note(gw_ev *ev, const char *list, uint64_t epoch, uint32_t asked, uint32_t answered);
/* A refusal: code and a short reason (sanitised: printable, no identifier-like runs). */
void gw_ev_refused(gw_ev *ev, uint32_t code, const char *reason);
/*
 * Appends the two leaves of the exchange, the answer being bytes[0..len) (NULL: the
 * request is dropped, logged as refused without an answer digest). false if they
 * could not be written: the caller must then not send the answer.
 */
bool gw_ev_commit_inbound(struct bg_gw *gw, gw_ev *ev, const uint8_t *bytes, size_t len);

/* An outbound round trip's evidence (gw_call logs it when given one). */
typedef struct gw_call_ev {
    const char *list;
    uint64_t epoch;
    uint32_t items;
} gw_call_ev;

/* Appends [request-sent, answer-received | request-failed] for an outbound call. */
void gw_ev_commit_outbound(struct bg_gw *gw, const char *peer, const bg_env_fields *f,
                           const uint8_t request_id[BG_ENV_ID_LEN],
                           const uint8_t request_digest[32], const bg_env_opened *answer,
                           uint32_t code, const char *reason, const gw_call_ev *cev);

/* Opens the log and witness store, starts the witness thread. */
int gw_evidence_start(struct bg_gw *gw, bg_err *err);
/* Signs a tree head when due (from bg_gw_tick). */
void gw_evidence_tick(struct bg_gw *gw);
/* Stops the witness thread (first) and closes the log (after the servers stopped). */
void gw_evidence_stop_witness(struct bg_gw *gw);
void gw_evidence_close(struct bg_gw *gw);

/* Federation handlers for WITNESS_BODY_HEAD_REQUEST and WITNESS_BODY_COSIGN. */
void gw_witness_answer_head(struct bg_gw *gw, const bg_env_opened *o, bg_tp_request *req);
void gw_witness_answer_cosign(struct bg_gw *gw, const bg_env_opened *o, bg_tp_request *req);

#endif
