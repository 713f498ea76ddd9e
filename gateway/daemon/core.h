/*
 * core.h - the daemon's shared services on its state (gw_int.h), used by every
 * handler and by the asking side: our signing identity, the roster and the peer table
 * (references, never held across I/O), the federation's message limits, answering and refusing a
 * federation request (sealed, written to the evidence log first), and the one signed
 * round trip to a peer (gw_call, over roundtrip.h).
 */
#ifndef BG_CORE_H
#define BG_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gateway/daemon/evidence.h"
#include "gateway/daemon/gw_int.h"
#include "gateway/daemon/roundtrip.h"
#include "peers/envelope.h"
#include "peers/transport.h"

/* Bytes of a reply that are not the payload: envelope, certificate, signature,
 * protobuf framing (a certificate is ~1 KiB; generous on purpose). */
#define GW_PSI_OVERHEAD 8192

/* A reference to our signing identity now. */
gw_ident *gw_ident_get(bg_gw *gw);
/* The identity whose certificate has fingerprint fp, the current or the previous one;
 * the current one if neither is. */
gw_ident *gw_ident_get_fp(bg_gw *gw, const uint8_t fp[BG_SIG_FP_LEN]);
void gw_ident_release(gw_ident *me);
/* A new reference-counted identity holding id (taken, even on failure); NULL: no memory. */
gw_ident *gw_ident_new(bg_env_identity *id);
/* Makes next (taken) the identity in use; the current one becomes the previous one. */
void gw_ident_swap(bg_gw *gw, gw_ident *next);

/* How the roster in use pins our certificate: "current", "next" (a rotation), or ""
 * (not at all: peers refuse us). fp gets our certificate's fingerprint. */
const char *gw_own_pin(bg_gw *gw, uint8_t fp[BG_SIG_FP_LEN]);

/* A reference to the roster in use (NULL only before start). */
bg_roster *gw_roster_get(bg_gw *gw);
/* A reference to the peer city, or NULL if it is not a peer now. */
gw_peer *gw_peer_get(bg_gw *gw, const char *city);
/* References to every peer now, in out; returns how many. */
size_t gw_peers_get(bg_gw *gw, gw_peer *out[BG_ROSTER_MAX_MEMBERS]);
void gw_peer_release(gw_peer *p);

/*
 * Peer health, for the asking side. A call to a peer that is not connected waits in the
 * transport until its timeout even when nothing listens there, so before a job starts:
 * a connected peer goes ahead; a peer left out after a failure (backoff, doubling from
 * GW_BACKOFF_MIN_MS to GW_BACKOFF_MAX_MS) is not asked until then, unless it connected
 * meanwhile or its last failure was a refused connection (retried at no cost); any other
 * peer gets a TCP connect to its endpoint first (at most GW_PROBE_MS): refused or
 * unreachable fails at once, no answer fails after GW_PROBE_MS. BG_OK: ask it; BG_EIO:
 * don't, why in why (a sentence naming the peer); BG_ECRYPTO: don't, it is revoked
 * (below).
 */
#define GW_PROBE_MS 1000
#define GW_BACKOFF_MIN_MS 2000
#define GW_BACKOFF_MAX_MS 60000
int gw_peer_admit(gw_peer *p, int timeout_ms, char *why, size_t n);

/*
 * Revocation, for the asking side. The roster pins a certificate by its SHA-256; the
 * CRL names serials: the peer's own certificate, which every answer and a first request
 * carry, joins the two. gw_peer_learn_cert keeps the one an envelope from p came with
 * (o opened by our verifier: the one the roster pins, current under our CRL);
 * gw_peers_check_revoked (at every CRL and roster reload) marks each peer whose kept
 * certificate the CRL in use revokes, and forgets one the roster no longer pins. A
 * revoked peer is not asked at all (gw_peer_admit gives BG_ECRYPTO; a ping gets
 * gw_peer_revoked first): without this every call to it would wait out its timeout
 * in a TLS handshake that cannot succeed. A peer never heard from since this gateway
 * started has no kept certificate and is asked as before.
 */
void gw_peer_learn_cert(gw_peer *p, const bg_env_opened *o);
void gw_peers_check_revoked(bg_gw *gw);
/* true, and why (a sentence naming the peer), if the CRL in use revokes p's certificate. */
bool gw_peer_revoked(gw_peer *p, char *why, size_t n);
/* The outcome of a job with p: reached (clears the backoff) or not (error: why). */
void gw_peer_note(gw_peer *p, bool reached, const char *error);

/* The federation's max_message_bytes (the roster's, or the default before one). */
size_t gw_max_message(bg_gw *gw);
/* Elements one PSI query (and so its answer) may carry at max_msg bytes per message:
 * the asker cuts its chunks by it, the answerer refuses more. */
size_t gw_psi_items_per_message(size_t max_msg);

/* A message from the wire or an error, made safe for one quoted log value in buf. */
const char *gw_quoted(const char *s, char *buf, size_t n);

/* Sends bytes (freed) as the answer, or drops req when bytes is NULL. With ev (an
 * authenticated request), the exchange goes to the evidence log first; if it cannot,
 * the answer is thrown away and a refusal (BG_GW_E_INTERNAL, "cannot write its evidence
 * log") goes instead; if the transport then does not take it (expired, too big), an
 * "answer-not-sent" leaf follows. true: handed to the transport. */
bool gw_reply_or_drop(bg_gw *gw, gw_ev *ev, bg_tp_request *req, uint8_t *bytes, size_t len);

/* Answers request o with a signed body (counted as answered), or refuses it with a typed
 * ErrorAnswer (code, printf message; counted, logged as event with peer, purpose, code and
 * reason, noted in ev; gw_answer: true if handed to the transport; event NULL: not logged, the
 * caller logs). Both go through gw_reply_or_drop; ev may be NULL. */
bool gw_answer(bg_gw *gw, gw_ev *ev, const bg_env_opened *o, bg_tp_request *req, uint32_t body_type,
               const uint8_t *body, size_t len);
/* gw_answer sealed by identity me (the one that signed what the body carries). */
bool gw_answer_as(bg_gw *gw, const gw_ident *me, gw_ev *ev, const bg_env_opened *o,
                  bg_tp_request *req, uint32_t body_type, const uint8_t *body, size_t len);
void gw_refuse(bg_gw *gw, gw_ev *ev, const bg_env_opened *o, bg_tp_request *req, uint32_t code,
               const char *event, const char *fmt, ...) __attribute__((format(printf, 7, 8)));

/*
 * One signed round trip to peer p (bg_rt_call): f sealed with our certificate until
 * the peer knows it (and once more with it if the peer says it forgot us), an answer
 * of want_type back (0: any type), opened and bound to our request. A typed refusal
 * gives BG_EABORTED with res->code; transport BG_EIO; a bad answer BG_EPROTO; sealing
 * BG_EINVAL. With cev, the exchange is written to the evidence log; if it cannot be,
 * the answer is dropped: BG_EIO, res->code BG_GW_E_INTERNAL, res->error naming the
 * log's error (a full disk). res's byte counts are added to. On BG_OK the caller frees
 * *out.
 */
int gw_call(bg_gw *gw, gw_peer *p, const bg_env_fields *f, int timeout_ms, uint32_t want_type,
            const gw_call_ev *cev, bg_env_opened **out, bg_rt_result *res);

#endif
