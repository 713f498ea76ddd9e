/*
 * api_res_evidence.c - the evidence resources (api_res.h): our latest signed tree head
 * and each witness's latest cosignature (from the gateway's status, as `status` shows
 * them), the leaves that match a search (gateway/audit's bg_audit_find, as `audit find
 * --json`) and the bundle of one exchange (gateway/audit's builder, the bytes `audit
 * export` writes). The log and the witness store are opened read-only for each call,
 * as the CLI opens them: safe while the gateway appends, and never a lock on them.
 */
#include <stdlib.h>
#include <string.h>

#include "gateway/api/api_json.h"
#include "gateway/api/api_local.h"
#include "gateway/api/api_res.h"
#include "gateway/api/api_resp.h"
#include "gateway/audit/audit.h"
#include "gateway/daemon/log.h"
#include "proto/pb.h"

#define API_OCTETS "application/octet-stream"

void
api_res_evidence_head(bg_api *api, const api_req *rq, api_resp *r)
{
    (void)rq;
    bg_err err = {0};
    Baygate__LocalAnswer *a = api_local_status(api->gw, &err);
    if (a == NULL || a->status->evidence == NULL) {
        api_problem(r, 503, "evidence-unavailable", "The evidence log cannot be read", "%s",
                    a == NULL ? err.msg : "the gateway has no evidence log open");
        bg_pb_free(a);
        return;
    }
    const Baygate__EvidenceStatus *ev = a->status->evidence;
    bool head = ev->head_size > 0 || ev->head_time_ms > 0;
    char t[32];
    FILE *f = api_body_open(r);
    if (f != NULL) {
        fprintf(f, "{");
        bg_api_json_kv(f, "city", a->status->city, false);
        fprintf(f, ",\"log_size\":%llu,\"head\":", (unsigned long long)ev->size);
        bg_api_json_head(f, ev);
        fprintf(f, ",\"witnesses\":[");
        for (size_t i = 0; i < ev->n_witnesses; i++) {
            const Baygate__WitnessStatus *w = ev->witnesses[i];
            fprintf(f, "%s{", i ? "," : "");
            bg_api_json_kv(f, "witness", w->witness, false);
            /* behind: leaves of the head the witness has not vouched for yet. */
            fprintf(f,
                    ",\"size\":%llu,\"cosigned_ms\":%lld,\"cosigned\":\"%s\",\"covers_head\":%s,"
                    "\"behind\":%llu}",
                    (unsigned long long)w->size, (long long)w->cosigned_ms,
                    bg_api_when(w->cosigned_ms, t),
                    head && w->cosigned_ms > 0 && w->size >= ev->head_size ? "true" : "false",
                    (unsigned long long)(w->size < ev->head_size ? ev->head_size - w->size : 0));
        }
        fprintf(f, "]}\n");
    }
    api_body_close(r, f, 200, API_JSON);
    bg_pb_free(a);
}

/* The log, read-only; NULL with r the 503. */
static bg_audit_log *
log_open(bg_api *api, api_resp *r)
{
    bg_audit_log *log = NULL;
    bg_err err = {0};
    if (bg_audit_open(&log, api->audit_dir, api->city, BG_AUDIT_READ_ONLY, NULL, &err) != BG_OK) {
        api_problem(r, 503, "evidence-unavailable", "The evidence log cannot be read", "%s",
                    err.msg);
        return NULL;
    }
    return log;
}

/* The search's filter from rq's parameters; false with r the 400 naming the one wrong. */
static bool
filter_of(const api_req *rq, bg_audit_filter *f, api_resp *r)
{
    const struct {
        const char *value;
        bg_audit_crit crit;
        const char *name;
    } ps[] = {
        {rq->request, BG_AUDIT_CRIT_REQUEST, "request"},
        {rq->peer, BG_AUDIT_CRIT_PEER, "peer"},
        {rq->purpose, BG_AUDIT_CRIT_PURPOSE, "purpose"},
        {rq->auth_ref, BG_AUDIT_CRIT_AUTH_REF, "auth_ref"},
        {rq->since, BG_AUDIT_CRIT_SINCE, "since"},
        {rq->until, BG_AUDIT_CRIT_UNTIL, "until"},
    };
    memset(f, 0, sizeof *f);
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) {
        bg_err err = {0};
        if (ps[i].value != NULL &&
            bg_audit_filter_set(f, ps[i].crit, ps[i].name, ps[i].value, &err) != BG_OK) {
            api_problem(r, 400, "invalid-parameter", "Invalid query parameter", "%s", err.msg);
            return false;
        }
    }
    return true;
}

typedef struct find_out {
    FILE *f;
    uint64_t shown;
} find_out;

static bool
write_match(void *ctx, uint64_t index, const bg_audit_event *ev, const uint8_t *leaf, size_t len)
{
    (void)leaf, (void)len;
    find_out *fo = ctx;
    if (fo->shown < BG_API_FIND_MAX)
        bg_api_json_leaf(fo->f, index, ev, fo->shown == 0);
    fo->shown++;
    return true; /* counting on past the cap: "matches" stays exact */
}

void
api_res_evidence_find(bg_api *api, const api_req *rq, api_resp *r)
{
    bg_audit_filter flt;
    if (!filter_of(rq, &flt, r))
        return;
    bg_audit_log *log = log_open(api, r);
    if (log == NULL)
        return;
    bg_err err = {0};
    uint64_t matched = 0;
    find_out fo = {.f = api_body_open(r)};
    if (fo.f != NULL) {
        bg_api_json_find_open(fo.f, api->city, bg_audit_size(log));
        int rc = bg_audit_find(log, &flt, write_match, &fo, &matched, &err);
        bg_api_json_find_close(fo.f, matched, rc == BG_OK);
        if (rc != BG_OK) {
            fclose(fo.f);
            api_problem(r, 500, "evidence-damaged", "The evidence log does not read back", "%s",
                        err.msg);
        } else {
            api_body_close(r, fo.f, 200, API_JSON);
        }
    }
    bg_audit_close(log);
}

/* Whether the log holds any leaf of request id: a bundle's 404 against its 409. */
static bool
any_leaf(void *ctx, uint64_t index, const bg_audit_event *ev, const uint8_t *leaf, size_t len)
{
    (void)index, (void)ev, (void)leaf, (void)len;
    *(bool *)ctx = true;
    return false;
}

/* The bundle built and checked against rq (witnessed unless asked otherwise); NULL
 * with r the problem. */
static bg_audit_bundle *
bundle_of(bg_api *api, bg_audit_log *log, const api_req *rq, const uint8_t *rid, api_resp *r)
{
    bg_audit_filter flt = {.has_request_id = true};
    memcpy(flt.request_id, rid, BG_AUDIT_REQUEST_ID_LEN);
    bool found = false;
    bg_err err = {0};
    if (bg_audit_find(log, &flt, any_leaf, &found, NULL, &err) != BG_OK && !found) {
        api_problem(r, 500, "evidence-damaged", "The evidence log does not read back", "%s",
                    err.msg);
        return NULL;
    }
    if (!found) {
        api_problem(r, 404, "unknown-request", "No such exchange",
                    "no leaf of %s's evidence log has request id %s", api->city, rq->seg);
        return NULL;
    }
    bg_audit_bundle_src src;
    bg_audit_bundle *b = NULL;
    char note[BG_ERR_MSG_MAX] = "";
    int rc = bg_audit_bundle_src_open(&src, log, api->audit_dir, api->city, api->cert_path, &err);
    if (rc == BG_OK) {
        rc = bg_audit_bundle_build(&src, rid, &b, note, &err);
        bg_audit_bundle_src_close(&src);
    }
    if (rc != BG_OK) {
        bool later = rc == BG_ENOTFOUND; /* its leaves exist: no head covers them yet */
        api_problem(r, later ? 409 : 500, later ? "not-yet-signed" : "internal",
                    later ? "No signed head covers this exchange yet" : "The bundle failed", "%s",
                    err.msg);
        return NULL;
    }
    bool unwitnessed = rq->unwitnessed != NULL &&
                       (strcmp(rq->unwitnessed, "true") == 0 || strcmp(rq->unwitnessed, "1") == 0);
    if (b->n_cosigs == 0 && !unwitnessed) {
        api_problem(r, 409, "not-witnessed", "No witness has cosigned this exchange yet",
                    "no witness has cosigned a head covering its leaves yet (witnesses come "
                    "every [audit] witness_interval_s)%s%s: try again later, or ask with "
                    "unwitnessed=true",
                    note[0] ? "; " : "", note);
        bg_audit_bundle_free(b);
        return NULL;
    }
    return b;
}

void
api_res_evidence_bundle(bg_api *api, const api_req *rq, api_resp *r)
{
    bg_audit_filter flt = {.has_request_id = false};
    bg_err err = {0};
    if (strlen(rq->seg) > API_SEG_MAX ||
        bg_audit_filter_set(&flt, BG_AUDIT_CRIT_REQUEST, "request_id", rq->seg, &err) != BG_OK) {
        api_problem(r, 400, "invalid-parameter", "Invalid path parameter", "%s",
                    strlen(rq->seg) > API_SEG_MAX ? "request_id must be 32 hex digits" : err.msg);
        return;
    }
    bg_audit_log *log = log_open(api, r);
    if (log == NULL)
        return;
    bg_audit_bundle *b = bundle_of(api, log, rq, flt.request_id, r);
    bg_audit_close(log);
    if (b == NULL)
        return;
    uint8_t *bytes = NULL;
    size_t len = 0;
    if (bg_audit_bundle_encode(b, &bytes, &len, &err) != BG_OK) {
        api_problem(r, 500, "internal", "The bundle failed", "%s", err.msg);
    } else {
        free(r->body);
        r->body = (char *)bytes; /* malloc'd: the response frees it */
        r->len = len;
        r->status = 200;
        r->ctype = API_OCTETS;
        bg_log(BG_LOG_INFO, "api.bundle", "app=%s leaves=%zu witnesses=%zu bytes=%zu", rq->app,
               b->n_leaves, b->n_cosigs, len);
    }
    bg_audit_bundle_free(b);
}
