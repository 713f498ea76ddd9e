/*
 * api_res_status.c - GET /v1/status: the gateway's status answer as `baygate status
 * --json` writes it (the same fields, names and units).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/json.h"
#include "gateway/api/api_local.h"
#include "gateway/api/api_res.h"
#include "gateway/api/api_resp.h"
#include "proto/pb.h"

/* A time in ms as "2026-12-02T06:46:40Z", or "never" for 0. */
static const char *
when_text(int64_t ms, char out[32])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (ms <= 0 || gmtime_r(&t, &tm) == NULL || strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, 32, "never");
    return out;
}

static void
hex_text(const ProtobufCBinaryData *b, char out[65])
{
    out[0] = '\0';
    for (size_t i = 0; i < b->len && i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", b->data[i]);
}

static void
json_expiry(FILE *f, const char *key, const char *at_key, int64_t at_ms, int64_t warn_secs,
            const char *warn_key, unsigned warn, time_t now)
{
    char when[32];
    bool known = at_ms > 0;
    int64_t left = at_ms / 1000 - (int64_t)now;
    fprintf(f, ",\"%s\":{\"%s\":", key, at_key);
    if (known)
        fprintf(f, "\"%s\",\"days_left\":%lld,\"seconds_left\":%lld", when_text(at_ms, when),
                (long long)(left >= 0 ? left / 86400 : -((-left + 86399) / 86400)),
                (long long)left);
    else
        fprintf(f, "null");
    fprintf(f, ",\"%s\":%u,\"warning\":%s}", warn_key, warn,
            known && left < warn_secs ? "true" : "false");
}

static void
json_publishing(FILE *f, const Baygate__StatusAnswer *s)
{
    char t[32];
    fprintf(f, ",\"lists\":[");
    for (size_t i = 0; i < s->n_lists; i++) {
        const Baygate__ListStatus *l = s->lists[i];
        fprintf(f, "%s{\"list\":", i ? "," : "");
        bg_json_cstr(f, l->list);
        fprintf(f,
                ",\"generation\":%llu,\"epoch\":%llu,\"entries\":%llu,\"published_ms\":%lld,"
                "\"published\":\"%s\"}",
                (unsigned long long)l->generation, (unsigned long long)l->epoch,
                (unsigned long long)l->entries, (long long)l->published_ms,
                when_text(l->published_ms, t));
    }
    fprintf(f, "],\"status_list\":{\"number\":%llu,\"issued_ms\":%lld},\"quotas\":[",
            (unsigned long long)s->status_list_number, (long long)s->status_list_issued_ms);
    for (size_t i = 0; i < s->n_quotas; i++) {
        fprintf(f, "%s{\"peer\":", i ? "," : "");
        bg_json_cstr(f, s->quotas[i]->peer);
        fprintf(f, ",\"used_today\":%llu,\"quota_per_day\":%llu}",
                (unsigned long long)s->quotas[i]->used_today,
                (unsigned long long)s->quotas[i]->quota_per_day);
    }
    fprintf(f, "]");
}

static void
json_evidence(FILE *f, const Baygate__EvidenceStatus *ev)
{
    if (ev == NULL) {
        fprintf(f, ",\"evidence\":null");
        return;
    }
    char root[65], head[65], t[32];
    hex_text(&ev->root, root);
    hex_text(&ev->head_root, head);
    fprintf(f,
            ",\"evidence\":{\"size\":%llu,\"root\":\"%s\",\"head\":", (unsigned long long)ev->size,
            root);
    if (ev->head_size > 0 || ev->head_time_ms > 0)
        fprintf(f, "{\"size\":%llu,\"root\":\"%s\",\"time_ms\":%lld,\"time\":\"%s\"}",
                (unsigned long long)ev->head_size, head, (long long)ev->head_time_ms,
                when_text(ev->head_time_ms, t));
    else
        fprintf(f, "null");
    fprintf(f, ",\"witnesses\":[");
    for (size_t i = 0; i < ev->n_witnesses; i++) {
        const Baygate__WitnessStatus *w = ev->witnesses[i];
        fprintf(f, "%s{\"witness\":", i ? "," : "");
        bg_json_cstr(f, w->witness);
        fprintf(f, ",\"size\":%llu,\"cosigned_ms\":%lld}", (unsigned long long)w->size,
                (long long)w->cosigned_ms);
    }
    fprintf(f, "]}");
}

static void
json_peers(FILE *f, const Baygate__StatusAnswer *s)
{
    fprintf(f, ",\"peers\":[");
    for (size_t i = 0; i < s->n_peers; i++) {
        const Baygate__PeerStatus *p = s->peers[i];
        fprintf(f, "%s{", i ? "," : "");
        api_json_kv(f, "city", p->city, false);
        api_json_kv(f, "name", p->name, true);
        api_json_kv(f, "endpoint", p->endpoint, true);
        fprintf(f, ",\"reachable\":%s,\"latency_us\":%u,\"last_ok_ms\":%lld",
                p->reachable ? "true" : "false", p->latency_us, (long long)p->last_ok_ms);
        api_json_kv(f, "error", p->error, true);
        fprintf(f, "}");
    }
    fprintf(f, "],\"requests\":{");
    for (size_t i = 0; i < s->n_requests; i++) {
        fprintf(f, "%s", i ? "," : "");
        bg_json_cstr(f, s->requests[i]->name);
        fprintf(f, ":%llu", (unsigned long long)s->requests[i]->value);
    }
    fprintf(f, "}");
}

static void
json_status(FILE *f, const Baygate__StatusAnswer *s, time_t now)
{
    fprintf(f, "{");
    api_json_kv(f, "city", s->city, false);
    api_json_kv(f, "name", s->name, true);
    api_json_kv(f, "version", s->version, true);
    fprintf(f,
            ",\"uptime_s\":%llu,\"roster_serial\":%llu,\"crl_number\":%llu,"
            "\"crl_next_update_ms\":%lld",
            (unsigned long long)s->uptime_s, (unsigned long long)s->roster_serial,
            (unsigned long long)s->crl_number, (long long)s->crl_next_update_ms);
    api_json_kv(f, "listen", s->listen, true);
    json_expiry(f, "certificate", "not_after", s->cert_not_after_ms,
                (int64_t)s->cert_warn_days * 86400, "warn_days", s->cert_warn_days, now);
    json_expiry(f, "crl", "next_update", s->crl_next_update_ms, (int64_t)s->crl_warn_hours * 3600,
                "warn_hours", s->crl_warn_hours, now);
    json_publishing(f, s);
    json_evidence(f, s->evidence);
    api_json_kv(f, "cert_sha256", s->cert_sha256, true);
    api_json_kv(f, "cert_pinned", s->cert_pinned, true);
    api_json_kv(f, "standing", s->standing, true);
    json_peers(f, s);
    fprintf(f, "}\n");
}

void
api_res_status(bg_api *api, const api_req *rq, api_resp *r)
{
    (void)rq;
    bg_err err = {0};
    Baygate__LocalAnswer *a = api_local_status(api->gw, &err);
    if (a == NULL) {
        api_problem(r, 503, "gateway-unavailable", "The gateway could not answer", "%s", err.msg);
        return;
    }
    FILE *f = api_body_open(r);
    if (f != NULL)
        json_status(f, a->status, time(NULL));
    api_body_close(r, f, 200, API_JSON);
    bg_pb_free(a);
}
