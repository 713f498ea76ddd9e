/*
 * roundtrip.h - one signed round trip to a peer gateway, the only one there is: the
 * request sealed (with our certificate, or only its fingerprint once the peer knows
 * it), sent over an open transport client, the answer opened (signed by the peer,
 * bound to our nonce) and a typed refusal read. fedping (a ping without a running
 * gateway) and gw_call (every request the gateway asks) are built on it; neither
 * seals, sends or opens by itself.
 */
#ifndef BG_ROUNDTRIP_H
#define BG_ROUNDTRIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "peers/envelope.h"
#include "peers/transport.h"

/* Our failure codes (a peer's refusal carries its own: 1..99 envelope, >= 100 gateway). */
#define BG_RT_E_TRANSPORT 103  /* the peer could not be reached */
#define BG_RT_E_BAD_ANSWER 105 /* the peer's answer failed our checks */
#define BG_RT_E_INTERNAL 106   /* we could not seal the request */

typedef struct bg_rt_result {
    uint32_t code;      /* 0, a BG_RT_E_* or the peer's refusal code */
    char error[400];    /* the failure in a sentence, naming the failing check */
    const char *reason; /* short and static: the transport failure or envelope reason */
    char refusal[BG_ENV_ERROR_MSG_MAX + 1]; /* a refusal: the peer's own message */
    bg_env_sent sent;                       /* request id, nonce, issued_at (once sealed) */
    uint8_t request_digest[32];             /* SHA-256 of the sealed request */
    bool answered;                          /* an answer opened: answer_digest is its digest */
    uint8_t answer_digest[32];
    uint64_t sent_bytes, received_bytes; /* added to, so a caller can sum several trips */
    uint32_t latency_us;                 /* request sent to answer received */
} bg_rt_result;

/*
 * Sends f to f->recipient at endpoint over cli. BG_OK: *out is the opened answer (any
 * body type but an error; the caller frees it). Otherwise *out is NULL and res says
 * why: BG_EABORTED the peer refused (res->code, res->refusal), BG_EIO transport,
 * BG_EPROTO the answer failed to open, BG_EINVAL sealing. A connection reset before
 * the answer (the peer reloading its TLS listener) sends the same sealed bytes once
 * more within timeout_ms: the peer's replay cache keeps it from being handled twice.
 */
int bg_rt_call(bg_tp_client *cli, const bg_env_identity *id, bg_env_verifier *v,
               const char *endpoint, const bg_env_fields *f, bool with_cert, size_t max_msg,
               int timeout_ms, bg_env_opened **out, bg_rt_result *res);

#endif
