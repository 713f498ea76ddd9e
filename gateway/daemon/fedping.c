/*
 * fedping.c - Ping out, Pong in, over the one round trip (see fedping.h).
 */
#include "gateway/daemon/fedping.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "proto/api.pb-c.h"
#include "proto/pb.h"

static void __attribute__((format(printf, 3, 4)))
fail(bg_fedping_result *res, uint32_t code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res->error, sizeof res->error, fmt, ap);
    va_end(ap);
    res->ok = false;
    res->code = code;
}

bg_env_fields
bg_fedping_fields(const char *peer, uint64_t roster_serial, uint8_t *body)
{
    Baygate__Ping ping = BAYGATE__PING__INIT;
    ping.roster_serial = roster_serial;
    size_t body_len = baygate__ping__pack(&ping, body);
    return (bg_env_fields){.recipient = peer,
                           .body_type = BAYGATE__APP_BODY__APP_BODY_PING,
                           .body = body,
                           .body_len = body_len,
                           .purpose = "ping"};
}

void
bg_fedping_result_of(int rc, const bg_rt_result *rt, const bg_env_opened *o, const char *peer,
                     bg_fedping_result *res)
{
    memset(res, 0, sizeof *res);
    if (rc == BG_EABORTED) {
        const char *name = rt->code <= BG_ENV_REASON_LAST
                               ? bg_env_reason_name((bg_env_reason)rt->code)
                               : "gateway";
        fail(res, rt->code, "%s refused: %s (%u): %s", peer, name, rt->code, rt->refusal);
        res->unknown_cert = rt->code == BG_ENV_UNKNOWN_CERTIFICATE;
        return;
    }
    if (rc != BG_OK) {
        fail(res, rt->code, "%s", rt->error);
        return;
    }
    Baygate__Pong *pong = o->body_type == BAYGATE__APP_BODY__APP_BODY_PONG
                              ? bg_pb_unpack(&baygate__pong__descriptor, o->body_len, o->body)
                              : NULL;
    if (pong == NULL || strcmp(pong->city, peer) != 0) {
        fail(res, BG_FEDPING_E_BAD_ANSWER, "answer from %s is not a pong for it", peer);
    } else {
        res->ok = true;
        snprintf(res->peer_name, sizeof res->peer_name, "%s", pong->name);
        res->peer_roster_serial = pong->roster_serial;
        res->latency_us = rt->latency_us;
        /* The peer read its clock about halfway through the round trip. */
        res->clock_skew_ms =
            pong->time_ms - (rt->sent.issued_at_ms + (int64_t)rt->latency_us / 2000);
    }
    if (pong != NULL)
        bg_pb_free(pong);
}

void
bg_fedping(bg_tp_client *cli, const bg_env_identity *id, bg_env_verifier *v, const char *peer,
           const char *endpoint, uint64_t roster_serial, size_t max_msg, bool with_cert,
           int timeout_ms, bg_fedping_result *res)
{
    uint8_t body[BG_FEDPING_BODY_MAX];
    bg_env_fields f = bg_fedping_fields(peer, roster_serial, body);
    bg_rt_result rt = {0};
    bg_env_opened *o = NULL;
    int rc = bg_rt_call(cli, id, v, endpoint, &f, with_cert, max_msg, timeout_ms, &o, &rt);
    bg_fedping_result_of(rc, &rt, o, peer, res);
    bg_env_opened_free(o);
}
