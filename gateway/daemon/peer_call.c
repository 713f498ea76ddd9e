/*
 * peer_call.c - one signed round trip to a peer gateway (see gw_int.h: gw_call).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "gateway/daemon/evidence.h"
#include "gateway/daemon/gw.h"
#include "gateway/daemon/gw_int.h"

static int __attribute__((format(printf, 4, 5)))
call_fail(gw_call_res *res, uint32_t code, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res->error, sizeof res->error, fmt, ap);
    va_end(ap);
    res->code = code;
    return rc;
}

int
gw_call(bg_gw *gw, gw_peer *p, const bg_env_fields *f, int timeout_ms, uint32_t want_type,
        const gw_call_ev *cev, bg_env_opened **out, gw_call_res *res)
{
    *out = NULL;
    res->code = 0;
    res->error[0] = '\0';
    size_t max_msg = gw_max_message(gw);
    bool with_cert = !atomic_load(&p->cert_known);
    for (int attempt = 0; attempt < 2; attempt++) {
        uint8_t *env = NULL, *ans = NULL;
        size_t env_len = 0, ans_len = 0;
        bg_env_sent sent;
        bg_err err = {0};
        if (bg_env_seal(gw->id, f, with_cert, max_msg, &env, &env_len, &sent, &err) != BG_OK)
            return call_fail(res, BG_GW_E_INTERNAL, BG_EINVAL, "sealing the request: %s", err.msg);
        uint8_t req_digest[32];
        crypto_hash_sha256(req_digest, env, env_len);
        bg_tp_fail tf = BG_TP_OK;
        int rc = bg_tp_call(p->cli, env, env_len, &ans, &ans_len, timeout_ms, &tf, &err);
        free(env);
        if (rc != BG_OK) {
            call_fail(res, BG_GW_E_TRANSPORT, BG_EIO, "%s at %s: %s: %s", p->city, p->endpoint,
                      bg_tp_fail_name(tf), err.msg);
            if (cev != NULL)
                gw_ev_commit_outbound(gw, p->city, f, sent.request_id, req_digest, NULL, res->code,
                                      bg_tp_fail_name(tf), cev);
            return BG_EIO;
        }
        res->sent += env_len;
        res->received += ans_len;
        bg_env_opened *o = NULL;
        bg_env_reason why =
            bg_env_open_answer(gw->verifier, ans, ans_len, p->city, sent.nonce, 0, &o, &err);
        bg_tp_answer_free(ans);
        if (why != BG_ENV_OK) {
            call_fail(res, BG_GW_E_BAD_ANSWER, BG_EPROTO, "answer from %s refused: %s: %s", p->city,
                      bg_env_reason_name(why), err.msg);
            if (cev != NULL)
                gw_ev_commit_outbound(gw, p->city, f, sent.request_id, req_digest, NULL, res->code,
                                      bg_env_reason_name(why), cev);
            return BG_EPROTO;
        }
        atomic_store(&p->cert_known, true);
        if (o->body_type == BG_ENV_BODY_ERROR) {
            uint32_t code = 0;
            char msg[BG_ENV_ERROR_MSG_MAX + 1] = "";
            bg_env_error_parse(o->body, o->body_len, &code, msg, NULL);
            if (cev != NULL)
                gw_ev_commit_outbound(gw, p->city, f, sent.request_id, req_digest, o, code, msg,
                                      cev);
            bg_env_opened_free(o);
            if (code == BG_ENV_UNKNOWN_CERTIFICATE && !with_cert) {
                atomic_store(&p->cert_known, false);
                with_cert = true; /* the peer forgot us: introduce ourselves again */
                continue;
            }
            return call_fail(res, code, BG_EABORTED, "%s refused (%u): %s", p->city, code, msg);
        }
        if (o->body_type != want_type) {
            call_fail(res, BG_GW_E_BAD_ANSWER, BG_EPROTO, "%s answered with body type %u, not %u",
                      p->city, o->body_type, want_type);
            if (cev != NULL)
                gw_ev_commit_outbound(gw, p->city, f, sent.request_id, req_digest, o, res->code,
                                      "unexpected body type", cev);
            bg_env_opened_free(o);
            return BG_EPROTO;
        }
        if (cev != NULL)
            gw_ev_commit_outbound(gw, p->city, f, sent.request_id, req_digest, o, 0, "", cev);
        *out = o;
        return BG_OK;
    }
    return call_fail(res, BG_GW_E_BAD_ANSWER, BG_EPROTO, "%s keeps forgetting our certificate",
                     p->city);
}
