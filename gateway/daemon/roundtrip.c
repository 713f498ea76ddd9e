/*
 * roundtrip.c - seal, send, open, read a refusal (see roundtrip.h).
 */
#include "gateway/daemon/roundtrip.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "common/clock.h"

static int __attribute__((format(printf, 5, 6)))
rt_fail(bg_rt_result *res, uint32_t code, const char *reason, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res->error, sizeof res->error, fmt, ap);
    va_end(ap);
    res->code = code;
    res->reason = reason;
    return rc;
}

/* Least time left for sending a request again after a reset. */
#define RT_RESEND_MIN_MS 100

/* Sends env and waits for the answer. A connection reset with time left (the peer
 * rebuilt its listener for a new CRL or certificate, closing every connection) sends
 * the same bytes once more: a request the peer had not taken yet is then answered, and
 * one it had is refused by its replay cache, so nothing is carried out twice. */
static int
rt_send(bg_tp_client *cli, const uint8_t *env, size_t len, uint8_t **ans, size_t *ans_len,
        int timeout_ms, bg_tp_fail *tf, bg_err *err)
{
    int64_t t0 = bg_clock_us();
    int rc = bg_tp_call(cli, env, len, ans, ans_len, timeout_ms, tf, err);
    int left = timeout_ms - (int)((bg_clock_us() - t0) / 1000);
    if (rc != BG_OK && *tf == BG_TP_RESET && left >= RT_RESEND_MIN_MS)
        rc = bg_tp_call(cli, env, len, ans, ans_len, left, tf, err);
    return rc;
}

/* A verified answer: an error body becomes the peer's refusal, anything else is *out. */
static int
rt_read(bg_env_opened *o, const char *peer, bg_env_opened **out, bg_rt_result *res)
{
    res->answered = true;
    memcpy(res->answer_digest, o->digest, sizeof res->answer_digest);
    if (o->body_type != BG_ENV_BODY_ERROR) {
        *out = o;
        return BG_OK;
    }
    uint32_t code = 0;
    bg_env_error_parse(o->body, o->body_len, &code, res->refusal, NULL);
    bg_env_opened_free(o);
    return rt_fail(res, code, "refused", BG_EABORTED, "%s refused (%u): %s", peer, code,
                   res->refusal);
}

int
bg_rt_call(bg_tp_client *cli, const bg_env_identity *id, bg_env_verifier *v, const char *endpoint,
           const bg_env_fields *f, bool with_cert, size_t max_msg, int timeout_ms,
           bg_env_opened **out, bg_rt_result *res)
{
    *out = NULL;
    res->code = 0;
    res->error[0] = res->refusal[0] = '\0';
    res->reason = "";
    res->answered = false;
    res->latency_us = 0;
    const char *peer = f->recipient;
    uint8_t *env = NULL, *ans = NULL;
    size_t env_len = 0, ans_len = 0;
    bg_err err = {0};
    if (bg_env_seal(id, f, with_cert, max_msg, &env, &env_len, &res->sent, &err) != BG_OK)
        return rt_fail(res, BG_RT_E_INTERNAL, "seal", BG_EINVAL, "sealing the request: %s",
                       err.msg);
    crypto_hash_sha256(res->request_digest, env, env_len);
    bg_tp_fail tf = BG_TP_OK;
    int64_t t0 = bg_clock_us();
    int rc = rt_send(cli, env, env_len, &ans, &ans_len, timeout_ms, &tf, &err);
    res->latency_us = (uint32_t)(bg_clock_us() - t0);
    free(env);
    if (rc != BG_OK)
        return rt_fail(res, BG_RT_E_TRANSPORT, bg_tp_fail_name(tf), BG_EIO, "%s at %s: %s: %s",
                       peer, endpoint, bg_tp_fail_name(tf), err.msg);
    res->sent_bytes += env_len;
    res->received_bytes += ans_len;
    bg_env_opened *o = NULL;
    bg_env_reason why = bg_env_open_answer(v, ans, ans_len, peer, res->sent.nonce, 0, &o, &err);
    bg_tp_answer_free(ans);
    if (why != BG_ENV_OK)
        return rt_fail(res, BG_RT_E_BAD_ANSWER, bg_env_reason_name(why), BG_EPROTO,
                       "answer from %s refused: %s: %s", peer, bg_env_reason_name(why), err.msg);
    return rt_read(o, peer, out, res);
}
