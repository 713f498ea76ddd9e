#include "gateway/daemon/fedping.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proto/api.pb-c.h"
#include "proto/pb.h"

static int64_t
mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

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

void
bg_fedping(bg_tp_client *cli, const bg_env_identity *id, bg_env_verifier *v, const char *peer,
           const char *endpoint, uint64_t roster_serial, size_t max_msg, bool with_cert,
           int timeout_ms, bg_fedping_result *res)
{
    memset(res, 0, sizeof *res);
    Baygate__Ping ping = BAYGATE__PING__INIT;
    ping.roster_serial = roster_serial;
    uint8_t body[32];
    size_t body_len = baygate__ping__pack(&ping, body);

    bg_env_fields f = {.recipient = peer,
                       .body_type = BAYGATE__APP_BODY__APP_BODY_PING,
                       .body = body,
                       .body_len = body_len,
                       .purpose = "ping"};
    uint8_t *env = NULL, *ans = NULL;
    size_t env_len = 0, ans_len = 0;
    bg_env_sent sent;
    bg_err err = {0};
    if (bg_env_seal(id, &f, with_cert, max_msg, &env, &env_len, &sent, &err) != BG_OK) {
        fail(res, BG_FEDPING_E_INTERNAL, "sealing the ping: %s", err.msg);
        return;
    }
    bg_tp_fail tf = BG_TP_OK;
    int64_t t0 = mono_us();
    int rc = bg_tp_call(cli, env, env_len, &ans, &ans_len, timeout_ms, &tf, &err);
    int64_t t1 = mono_us();
    free(env);
    if (rc != BG_OK) {
        fail(res, BG_FEDPING_E_TRANSPORT, "%s at %s: %s: %s", peer, endpoint, bg_tp_fail_name(tf),
             err.msg);
        return;
    }
    bg_env_opened *o = NULL;
    bg_env_reason why = bg_env_open_answer(v, ans, ans_len, peer, sent.nonce, 0, &o, &err);
    bg_tp_answer_free(ans);
    if (why != BG_ENV_OK) {
        fail(res, BG_FEDPING_E_BAD_ANSWER, "answer from %s refused: %s: %s", peer,
             bg_env_reason_name(why), err.msg);
        return;
    }
    if (o->body_type == BG_ENV_BODY_ERROR) {
        uint32_t code = 0;
        char msg[BG_ENV_ERROR_MSG_MAX + 1] = "";
        bg_env_error_parse(o->body, o->body_len, &code, msg, NULL);
        const char *name =
            code <= BG_ENV_REASON_LAST ? bg_env_reason_name((bg_env_reason)code) : "gateway";
        fail(res, code, "%s refused: %s (%u): %s", peer, name, code, msg);
        res->unknown_cert = code == BG_ENV_UNKNOWN_CERTIFICATE;
        bg_env_opened_free(o);
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
        res->latency_us = (uint32_t)(t1 - t0);
        /* The peer read its clock about halfway through the round trip. */
        res->clock_skew_ms = pong->time_ms - (sent.issued_at_ms + (t1 - t0) / 2000);
    }
    if (pong != NULL)
        bg_pb_free(pong);
    bg_env_opened_free(o);
}
