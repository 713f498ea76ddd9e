/*
 * fedping.h - one authenticated round trip to a peer gateway.
 *
 * Seals a Ping envelope for peer, sends it over an open transport client,
 * opens the answer (it must be a signed answer from that peer bound to our
 * nonce) and reads the Pong or the peer's typed refusal. Used by the daemon
 * for `baygate ping` and `status --probe`, and by the demo to show what a
 * stranger gets.
 */
#ifndef BG_FEDPING_H
#define BG_FEDPING_H

#include <stdbool.h>
#include <stdint.h>

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

/* Transport failures are reported with this code (not an envelope reason). */
#define BG_FEDPING_E_TRANSPORT 103
#define BG_FEDPING_E_BAD_ANSWER 105
#define BG_FEDPING_E_INTERNAL 106

/* Fills *res; never fails otherwise. with_cert: carry our certificate (first contact). */
void bg_fedping(bg_tp_client *cli, const bg_env_identity *id, bg_env_verifier *v, const char *peer,
                const char *endpoint, uint64_t roster_serial, size_t max_msg, bool with_cert,
                int timeout_ms, bg_fedping_result *res);

#endif
