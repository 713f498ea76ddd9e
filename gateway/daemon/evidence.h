/*
 * evidence.h - the gateway's evidence log (gateway/audit does the log itself; this
 * file wires it into the daemon). Witnessing of peers' logs is witness.h.
 *
 * Every authenticated federation request a gateway answers leaves two leaves in
 * <data_dir>/audit: "request-received" (digest of the signed request) and
 * "request-answered" or "request-refused" (digest of the signed answer, outcome),
 * with peer, purpose, authorisation reference, list, epoch and item counts; never an
 * element or identifier. They are appended (and synced) BEFORE the answer is sent:
 * if the log cannot be written (a full disk) the answer is thrown away, so nothing is
 * answered without evidence, and an unlogged refusal saying so goes back instead, so
 * the asker learns why at once rather than after its timeout. Requests refused before their
 * envelope verified are not logged (an unauthenticated sender could otherwise fill the log); they
 * are counted and logged on stderr. The asking side logs its PSI requests likewise ("request-sent"
 * and "answer-received" or "request-failed") after each round trip, and an answer whose leaves
 * could not be written is thrown away: that peer's part of the query fails. Tree heads are signed
 * every [audit] head_interval_s when the tree grew.
 */
#ifndef BG_EVIDENCE_H
#define BG_EVIDENCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gateway/audit/audit.h"
#include "gateway/daemon/roundtrip.h"
#include "peers/envelope.h"

struct bg_gw;

/* One inbound exchange's evidence, filled while the request is handled. */
typedef struct gw_ev {
    bg_audit_event e;
    int rate_kind; /* the request's gw_rate_kind (rate.h), charged the answer's bytes; -1 */
    const bg_env_opened *o; /* the request (alive while it is handled): a refusal can be
                               sealed for it when the log cannot take the exchange */
} gw_ev;

/* Seeds ev from the opened request: peer, request id and digest, purpose, reference. */
void gw_ev_inbound(gw_ev *ev, const bg_env_opened *o);
/* What the request was about (list may be NULL). ev NULL is ignored. */
void gw_ev_note(gw_ev *ev, const char *list, uint64_t epoch, uint32_t asked, uint32_t answered);
/* A refusal: code and a short reason (sanitised: printable, no identifier-like runs). */
void gw_ev_refused(gw_ev *ev, uint32_t code, const char *reason);
/*
 * Appends the two leaves of the exchange, the answer being bytes[0..len) (NULL: the
 * request is dropped, logged as refused without an answer digest). false if they
 * could not be written: the caller must then not send the answer.
 */
bool gw_ev_commit_inbound(struct bg_gw *gw, gw_ev *ev, const uint8_t *bytes, size_t len);

/* Appends an "answer-not-sent" leaf for ev's exchange (its two leaves already written):
 * the answer could not be handed to the transport (why: a short reason). */
void gw_ev_commit_not_sent(struct bg_gw *gw, const gw_ev *ev, const char *why);

/* An outbound round trip's evidence (gw_call logs it when given one). */
typedef struct gw_call_ev {
    const char *list;
    const char *application; /* our local application that asked, or NULL */
    uint64_t epoch;
    uint32_t items;
} gw_call_ev;

/* Appends [request-sent, answer-received | request-failed] for the round trip rt of
 * request f (outcome rt->code; reason a short word or the peer's message). false (err
 * says why, logged) if they could not be written: the caller must then not use the
 * answer, so no result is shown whose evidence we do not hold. */
bool gw_ev_commit_outbound(struct bg_gw *gw, const bg_env_fields *f, const bg_rt_result *rt,
                           const char *reason, const gw_call_ev *cev, bg_err *err);

/* Opens the log (making data_dir and data_dir/audit) and keeps the certificate of id,
 * the identity its heads will be signed with. */
int gw_evidence_start(struct bg_gw *gw, const bg_env_identity *id, bg_err *err);
/* Keeps id's certificate beside the log (a rotation: bundles of heads signed with it
 * must still carry it once city.crt is another). A failure is logged, never fatal. */
void gw_evidence_keep_cert(struct bg_gw *gw, const bg_env_identity *id);
/* Signs a tree head with key when due (from bg_gw_tick); now: at once, if a head was
 * signed before (a new key: witnesses check the latest head against the certificate
 * our answers carry). */
void gw_evidence_tick(struct bg_gw *gw, EVP_PKEY *key, bool now);
/* Closes the log (after the servers and the witness stopped). */
void gw_evidence_close(struct bg_gw *gw);

#endif
