/*
 * core.c - roster and peer access, message limits, answering and refusing, the signed
 * round trip to a peer (see core.h).
 *
 * Locking: gw->lock guards the roster pointer and the peer table, and is held only
 * to copy a pointer and take a reference, never across I/O. Rosters are
 * reference-counted by the roster module; peers here. A call to a peer holds a
 * reference to it, so a roster reload can unlink a peer while a call is in flight;
 * the last reference closes its client.
 */
#include "gateway/daemon/core.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/daemon/codes.h"
#include "gateway/daemon/log.h"
#include "mpc/psi.h"

/* ------------------------------------------------------ roster, peers */

bg_roster *
gw_roster_get(bg_gw *gw)
{
    pthread_mutex_lock(&gw->lock);
    bg_roster *r = bg_roster_ref(gw->roster);
    pthread_mutex_unlock(&gw->lock);
    return r;
}

void
gw_peer_release(gw_peer *p)
{
    if (p == NULL || atomic_fetch_sub(&p->refs, 1) != 1)
        return;
    bg_tp_client_close(p->cli);
    pthread_mutex_destroy(&p->status_lock);
    free(p);
}

gw_peer *
gw_peer_get(bg_gw *gw, const char *city)
{
    gw_peer *found = NULL;
    pthread_mutex_lock(&gw->lock);
    for (size_t i = 0; i < gw->npeers; i++) {
        if (strcmp(gw->peers[i]->city, city) == 0) {
            found = gw->peers[i];
            atomic_fetch_add(&found->refs, 1);
            break;
        }
    }
    pthread_mutex_unlock(&gw->lock);
    return found;
}

size_t
gw_peers_get(bg_gw *gw, gw_peer *out[BG_ROSTER_MAX_MEMBERS])
{
    size_t n = 0;
    pthread_mutex_lock(&gw->lock);
    for (size_t i = 0; i < gw->npeers; i++) {
        out[n] = gw->peers[i];
        atomic_fetch_add(&out[n++]->refs, 1);
    }
    pthread_mutex_unlock(&gw->lock);
    return n;
}

/* ------------------------------------------------------------- limits */

size_t
gw_max_message(bg_gw *gw)
{
    bg_roster *r = gw_roster_get(gw);
    size_t m = r ? bg_roster_max_message_bytes(r) : BG_ENV_MESSAGE_DEFAULT;
    bg_roster_free(r);
    return m;
}

size_t
gw_psi_items_per_message(size_t max_msg)
{
    size_t per = bg_psi_chunk_items(max_msg > 2 * GW_PSI_OVERHEAD ? max_msg - GW_PSI_OVERHEAD
                                                                  : GW_PSI_OVERHEAD);
    return per == 0 ? 1 : per;
}

const char *
gw_quoted(const char *s, char *buf, size_t n)
{
    size_t o = 0;
    for (; *s != '\0' && o + 1 < n; s++) {
        unsigned char c = (unsigned char)*s;
        buf[o++] = (c < 0x20 || c == 0x7F || c == '"') ? '\'' : (char)c;
    }
    buf[o] = '\0';
    return buf;
}

/* ------------------------------------------------ answering, refusing */

void
gw_reply_or_drop(bg_gw *gw, gw_ev *ev, bg_tp_request *req, uint8_t *bytes, size_t len)
{
    bg_err err = {0};
    if (ev != NULL && !gw_ev_commit_inbound(gw, ev, bytes, len)) {
        free(bytes); /* no evidence, no answer */
        bytes = NULL;
    }
    if (bytes == NULL) {
        bg_tp_drop(req);
        return;
    }
    if (bg_tp_reply(req, bytes, len, &err) != BG_OK)
        bg_log(BG_LOG_WARN, "answer.not_sent", "error=\"%s\"", err.msg);
    free(bytes);
}

void
gw_answer(bg_gw *gw, gw_ev *ev, const bg_env_opened *o, bg_tp_request *req, uint32_t body_type,
          const uint8_t *body, size_t len)
{
    uint8_t *out = NULL;
    size_t out_len = 0;
    bg_err err = {0};
    if (bg_env_seal_answer(gw->id, o, body_type, body, len, true, gw_max_message(gw), &out,
                           &out_len, &err) == BG_OK)
        atomic_fetch_add(&gw->answered, 1);
    else
        bg_log(BG_LOG_ERROR, "answer.seal_failed", "peer=%s error=\"%s\"", o->sender, err.msg);
    gw_reply_or_drop(gw, ev, req, out, out_len);
}

void
gw_refuse(bg_gw *gw, gw_ev *ev, const bg_env_opened *o, bg_tp_request *req, uint32_t code,
          const char *event, const char *fmt, ...)
{
    char msg[BG_ENV_ERROR_MSG_MAX + 1];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    uint8_t *out = NULL;
    size_t out_len = 0;
    atomic_fetch_add(&gw->app_errors, 1);
    bg_err err = {0};
    if (bg_env_seal_error(gw->id, o, code, msg, gw_max_message(gw), &out, &out_len, &err) != BG_OK)
        bg_log(BG_LOG_ERROR, "answer.seal_failed", "peer=%s error=\"%s\"", o->sender, err.msg);
    char safe[BG_ENV_ERROR_MSG_MAX + 1];
    bg_log(BG_LOG_WARN, event, "peer=%s purpose=%s code=%u reason=%s", o->sender,
           o->purpose[0] ? o->purpose : "-", code,
           bg_log_safe(msg, strlen(msg), safe, sizeof safe));
    gw_ev_refused(ev, code, msg);
    gw_reply_or_drop(gw, ev, req, out, out_len);
}

/* ------------------------------------------------------------- asking */

int
gw_call(bg_gw *gw, gw_peer *p, const bg_env_fields *f, int timeout_ms, uint32_t want_type,
        const gw_call_ev *cev, bg_env_opened **out, bg_rt_result *res)
{
    *out = NULL;
    size_t max_msg = gw_max_message(gw);
    bool with_cert = !atomic_load(&p->cert_known);
    for (;;) {
        bg_env_opened *o = NULL;
        int rc = bg_rt_call(p->cli, gw->id, gw->verifier, p->endpoint, f, with_cert, max_msg,
                            timeout_ms, &o, res);
        if (rc == BG_EINVAL)
            return rc; /* nothing was sent */
        if (res->answered)
            atomic_store(&p->cert_known, true);
        const char *reason = rc == BG_EABORTED ? res->refusal : rc == BG_OK ? "" : res->reason;
        if (rc == BG_OK && want_type != 0 && o->body_type != want_type) {
            snprintf(res->error, sizeof res->error, "%s answered with body type %u, not %u",
                     p->city, o->body_type, want_type);
            res->code = BG_GW_E_BAD_ANSWER;
            reason = "unexpected body type";
            bg_env_opened_free(o);
            o = NULL;
            rc = BG_EPROTO;
        }
        if (cev != NULL)
            gw_ev_commit_outbound(gw, f, res, reason, cev);
        if (rc == BG_EABORTED && res->code == BG_ENV_UNKNOWN_CERTIFICATE && !with_cert) {
            atomic_store(&p->cert_known, false);
            with_cert = true; /* the peer forgot us: introduce ourselves again */
            continue;
        }
        *out = o;
        return rc;
    }
}
