/*
 * fedping.h - the ping: an authenticated round trip to a peer gateway (roundtrip.h)
 * carrying a Ping, answered by a Pong from that peer or its typed refusal.
 *
 * bg_fedping pings over an open transport client without a running gateway (the demo
 * shows what a stranger gets, the benchmark measures round trips). The daemon pings
 * through gw_call and reads the answer with bg_fedping_result_of, so both report alike.
 */
#ifndef BG_FEDPING_H
#define BG_FEDPING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gateway/daemon/roundtrip.h"
#include "peers/envelope.h"
#include "peers/transport.h"

typedef struct bg_fedping_result {
    bool ok;
    bool unknown_cert;           /* the peer did not know our certificate: resend with it */
    uint32_t code;               /* 0, an envelope reason (1..99) or a gateway code (>= 100) */
    char error[300];             /* names the failing check */
    char peer_name[64];          /* from the Pong */
    uint64_t peer_roster_serial; /* from the Pong */
    uint32_t latency_us;
    int64_t clock_skew_ms; /* peer clock minus ours, midpoint estimate */
} bg_fedping_result;

/* Our failure codes, as the round trip reports them. */
#define BG_FEDPING_E_TRANSPORT BG_RT_E_TRANSPORT
#define BG_FEDPING_E_BAD_ANSWER BG_RT_E_BAD_ANSWER
#define BG_FEDPING_E_INTERNAL BG_RT_E_INTERNAL

/* The fields of a Ping to peer; body (caller's, at least BG_FEDPING_BODY_MAX bytes)
 * receives the packed Ping. */
#define BG_FEDPING_BODY_MAX 32
bg_env_fields bg_fedping_fields(const char *peer, uint64_t roster_serial, uint8_t *body);

/* Fills *res from a round trip's outcome: rc and rt as bg_rt_call left them, o its
 * answer on BG_OK (borrowed). */
void bg_fedping_result_of(int rc, const bg_rt_result *rt, const bg_env_opened *o, const char *peer,
                          bg_fedping_result *res);

/* Fills *res; never fails otherwise. with_cert: carry our certificate (first contact). */
void bg_fedping(bg_tp_client *cli, const bg_env_identity *id, bg_env_verifier *v, const char *peer,
                const char *endpoint, uint64_t roster_serial, size_t max_msg, bool with_cert,
                int timeout_ms, bg_fedping_result *res);

#endif
