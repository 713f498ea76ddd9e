/*
 * evidence.c - the evidence log in the daemon: leaves per exchange, tree heads on a
 * cadence (see evidence.h).
 */
#include "gateway/daemon/evidence.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>

#include "gateway/daemon/codes.h"
#include "gateway/daemon/gw_int.h"
#include "gateway/daemon/log.h"

#define EV_PATH_MAX (BG_CONFIG_PATH_MAX + 16)

/* Printable ASCII without spaces (the leaf's rule for purpose and list), else "?". */
static void
copy_token(char *dst, size_t cap, const char *src)
{
    size_t n = 0;
    for (; src != NULL && src[n] != '\0' && n + 1 < cap; n++) {
        unsigned char c = (unsigned char)src[n];
        dst[n] = c > 0x20 && c < 0x7f ? (char)c : '?';
    }
    dst[n] = '\0';
}

/*
 * A reason for the log: printable ASCII, and any run of 18 or more letters and digits
 * (the shape of a USCC) replaced by "[...]", so that no identifier can reach the log
 * through a message that quotes its input.
 */
static void
copy_reason(char out[BG_AUDIT_REASON_MAX + 1], const char *in)
{
    size_t o = 0;
    for (size_t i = 0; in != NULL && in[i] != '\0' && o < BG_AUDIT_REASON_MAX;) {
        size_t run = 0;
        while (in[i + run] != '\0' && ((in[i + run] >= '0' && in[i + run] <= '9') ||
                                       (in[i + run] >= 'A' && in[i + run] <= 'Z') ||
                                       (in[i + run] >= 'a' && in[i + run] <= 'z')))
            run++;
        if (run >= 18) {
            for (const char *m = "[...]"; *m != '\0' && o < BG_AUDIT_REASON_MAX; m++)
                out[o++] = *m;
            i += run;
            continue;
        }
        if (run == 0) {
            unsigned char c = (unsigned char)in[i++];
            out[o++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
            continue;
        }
        for (size_t k = 0; k < run && o < BG_AUDIT_REASON_MAX; k++)
            out[o++] = in[i + k];
        i += run;
    }
    out[o] = '\0';
}

_Static_assert(BG_ENV_ID_LEN == BG_AUDIT_REQUEST_ID_LEN, "request ids are logged whole");

/* What both sides log of a request (e zeroed by the caller). */
static void
ev_request(bg_audit_event *e, const char *peer, const uint8_t request_id[BG_ENV_ID_LEN],
           const uint8_t digest[32], const char *purpose, const uint8_t *ref, size_t ref_len)
{
    e->time_ms = bg_env_now_ms();
    snprintf(e->peer, sizeof e->peer, "%s", peer);
    memcpy(e->request_id, request_id, sizeof e->request_id);
    e->has_request_digest = true;
    memcpy(e->request_digest, digest, sizeof e->request_digest);
    copy_token(e->purpose, sizeof e->purpose, purpose);
    if (ref != NULL && ref_len <= BG_AUDIT_REF_MAX) {
        memcpy(e->authorisation_ref, ref, ref_len);
        e->authorisation_ref_len = ref_len;
    }
}

/* ------------------------------------------------------------ inbound */

void
gw_ev_inbound(gw_ev *ev, const bg_env_opened *o)
{
    memset(ev, 0, sizeof *ev);
    ev->rate_kind = -1;
    ev->o = o;
    ev_request(&ev->e, o->sender, o->request_id, o->digest, o->purpose, o->authorisation_ref,
               o->authorisation_ref_len);
}

void
gw_ev_note(gw_ev *ev, const char *list, uint64_t epoch, uint32_t asked, uint32_t answered)
{
    if (ev == NULL)
        return;
    if (list != NULL)
        copy_token(ev->e.list, sizeof ev->e.list, list);
    ev->e.epoch = epoch;
    ev->e.items_asked = asked;
    ev->e.items_answered = answered;
}

void
gw_ev_refused(gw_ev *ev, uint32_t code, const char *reason)
{
    if (ev == NULL)
        return;
    ev->e.outcome = code != 0 ? code : BG_GW_E_INTERNAL;
    copy_reason(ev->e.reason, reason);
}

static bool
append_pair(bg_gw *gw, const bg_audit_event pair[2], const char *what, bg_err *err)
{
    if (gw->audit != NULL && bg_audit_append_batch(gw->audit, pair, 2, NULL, err) == BG_OK)
        return true;
    if (gw->audit == NULL)
        bg_err_set(err, BG_EIO, "no evidence log");
    atomic_fetch_add(&gw->evidence_failed, 1);
    bg_log(BG_LOG_ERROR, "audit.append_failed", "what=%s peer=%s error=\"%s\"", what, pair[0].peer,
           err->msg);
    return false;
}

bool
gw_ev_commit_inbound(bg_gw *gw, gw_ev *ev, const uint8_t *bytes, size_t len)
{
    bg_audit_event pair[2];
    pair[0] = ev->e;
    pair[0].kind = BG_AUDIT_REQUEST_RECEIVED;
    pair[0].has_answer_digest = false;
    pair[0].outcome = 0;
    pair[0].reason[0] = '\0';
    pair[0].items_answered = 0;
    pair[1] = ev->e;
    if (bytes == NULL && pair[1].outcome == 0) {
        pair[1].outcome = BG_GW_E_INTERNAL;
        copy_reason(pair[1].reason, "dropped: no answer could be made");
    }
    pair[1].kind = pair[1].outcome == 0 ? BG_AUDIT_REQUEST_ANSWERED : BG_AUDIT_REQUEST_REFUSED;
    pair[1].has_answer_digest = bytes != NULL;
    if (bytes != NULL)
        crypto_hash_sha256(pair[1].answer_digest, bytes, len);
    bg_err err = {0};
    return append_pair(gw, pair, "inbound", &err);
}

void
gw_ev_commit_not_sent(bg_gw *gw, const gw_ev *ev, const char *why)
{
    bg_audit_event e = ev->e;
    e.kind = BG_AUDIT_ANSWER_NOT_SENT;
    e.has_answer_digest = false;
    e.outcome = BG_GW_E_TRANSPORT;
    copy_reason(e.reason, why);
    bg_err err = {0};
    if (gw->audit != NULL && bg_audit_append_batch(gw->audit, &e, 1, NULL, &err) == BG_OK)
        return;
    atomic_fetch_add(&gw->evidence_failed, 1);
    bg_log(BG_LOG_ERROR, "audit.append_failed", "what=not-sent peer=%s error=\"%s\"", e.peer,
           gw->audit != NULL ? err.msg : "no evidence log");
}

/* ----------------------------------------------------------- outbound */

bool
gw_ev_commit_outbound(bg_gw *gw, const bg_env_fields *f, const bg_rt_result *rt, const char *reason,
                      const gw_call_ev *cev, bg_err *err)
{
    bg_audit_event pair[2];
    memset(pair, 0, sizeof pair);
    bg_audit_event *e = &pair[0];
    ev_request(e, f->recipient, rt->sent.request_id, rt->request_digest, f->purpose,
               f->authorisation_ref, f->authorisation_ref_len);
    e->kind = BG_AUDIT_REQUEST_SENT;
    copy_token(e->list, sizeof e->list, cev->list);
    copy_token(e->application, sizeof e->application, cev->application);
    e->epoch = cev->epoch;
    e->items_asked = cev->items;
    pair[1] = *e;
    if (rt->answered) {
        pair[1].kind = BG_AUDIT_ANSWER_RECEIVED;
        pair[1].has_answer_digest = true;
        memcpy(pair[1].answer_digest, rt->answer_digest, sizeof pair[1].answer_digest);
    } else {
        pair[1].kind = BG_AUDIT_REQUEST_FAILED;
    }
    pair[1].outcome = rt->code;
    pair[1].items_answered = rt->code == 0 ? cev->items : 0;
    if (rt->code != 0)
        copy_reason(pair[1].reason, reason);
    return append_pair(gw, pair, "outbound", err);
}

/* -------------------------------------------------------- heads, start */

void
gw_evidence_tick(bg_gw *gw, EVP_PKEY *key, bool now)
{
    if (gw->audit == NULL)
        return;
    bg_audit_head h;
    bool did = false;
    bg_err err = {0};
    int rc = BG_OK;
    if (now && bg_audit_head_count(gw->audit) > 0) {
        rc = bg_audit_sign_head(gw->audit, key, bg_env_now_ms(), &h, &err);
        did = rc == BG_OK;
    } else {
        rc = bg_audit_maybe_sign(gw->audit, key, bg_env_now_ms(), gw->cfg.head_interval_s, &h, &did,
                                 &err);
    }
    if (rc != BG_OK) {
        bg_log(BG_LOG_ERROR, "audit.head_failed", "error=\"%s\"", err.msg);
        return;
    }
    if (did) {
        char hex[2 * BG_AUDIT_HASH_LEN + 1];
        bg_audit_hash_hex(h.root, hex);
        bg_log(BG_LOG_INFO, "audit.head_signed", "size=%llu root=%s", (unsigned long long)h.size,
               hex);
    }
}

void
gw_evidence_keep_cert(bg_gw *gw, const bg_env_identity *id)
{
    char dir[EV_PATH_MAX];
    bg_err err = {0};
    if (snprintf(dir, sizeof dir, "%s/audit", gw->cfg.data_dir) >= (int)sizeof dir)
        bg_err_set(&err, BG_ELIMIT, "data directory path too long");
    else if (bg_audit_cert_keep(dir, gw->cfg.city, id->cert_der, id->cert_der_len, &err) == BG_OK)
        return;
    bg_log(BG_LOG_WARN, "audit.cert_keep_failed", "city=%s error=\"%s\"", gw->cfg.city, err.msg);
}

int
gw_evidence_start(bg_gw *gw, const bg_env_identity *id, bg_err *err)
{
    char dir[EV_PATH_MAX];
    if (snprintf(dir, sizeof dir, "%s/audit", gw->cfg.data_dir) >= (int)sizeof dir)
        return bg_err_set(err, BG_ELIMIT, "data directory path too long");
    if (mkdir(gw->cfg.data_dir, 0700) != 0 && errno != EEXIST)
        return bg_err_set(err, BG_EIO, "cannot make %s: %s", gw->cfg.data_dir, strerror(errno));
    bg_audit_open_report rep;
    memset(&rep, 0, sizeof rep);
    int rc = bg_audit_open(&gw->audit, dir, gw->cfg.city, BG_AUDIT_CREATE, &rep, err);
    if (rc != BG_OK)
        return rc;
    if (rep.dropped_bytes > 0)
        bg_log(BG_LOG_WARN, "audit.tail_repaired", "dropped_bytes=%llu records=%llu detail=\"%s\"",
               (unsigned long long)rep.dropped_bytes, (unsigned long long)rep.dropped_records,
               rep.detail);
    bg_log(BG_LOG_INFO, "audit.opened", "leaves=%llu heads=%llu dir=%s",
           (unsigned long long)rep.leaves, (unsigned long long)rep.heads, dir);
    gw_evidence_keep_cert(gw, id);
    return BG_OK;
}

void
gw_evidence_close(bg_gw *gw)
{
    bg_audit_close(gw->audit);
    gw->audit = NULL;
}
