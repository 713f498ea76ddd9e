/*
 * api_metrics.c - the Prometheus text (api_metrics.h).
 */
#include "gateway/api/api_metrics.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "gateway/api/api_local.h"
#include "gateway/api/api_resp.h"
#include "proto/pb.h"

static const double lat_bounds[API_LAT_BUCKETS] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                   0.1,   0.25,   0.5,   1,    2.5,   10};
static const char *const route_names[API_R_COUNT] = {
    "none",    "status",  "enterprise",    "openapi",  "metrics",
    "healthz", "readyz",  "evidence_head", "evidence", "evidence_bundle",
    "key",     "console", "jobs",          "job",      "job_results"};

void
api_metrics_note(bg_api *api, const char *app, api_route_id route, unsigned status, double seconds)
{
    pthread_mutex_lock(&api->lock);
    api_count *c = NULL;
    for (size_t i = 0; i < api->ncounts && c == NULL; i++)
        if (api->counts[i].route == route && api->counts[i].status == status &&
            strcmp(api->counts[i].app, app) == 0)
            c = &api->counts[i];
    if (c == NULL && api->ncounts < API_APPS_MAX) {
        c = &api->counts[api->ncounts++];
        snprintf(c->app, sizeof c->app, "%s", app);
        c->route = route;
        c->status = status;
    }
    if (c != NULL)
        c->n++;
    size_t b = 0;
    while (b < API_LAT_BUCKETS && seconds > lat_bounds[b])
        b++;
    api->lat[route][b]++;
    api->lat_sum[route] += seconds;
    api->lat_n[route]++;
    pthread_mutex_unlock(&api->lock);
}

/* A label value: backslash, quote and newline escaped. */
static void
label(FILE *f, const char *v)
{
    fputc('"', f);
    for (; v != NULL && *v; v++) {
        if (*v == '\\' || *v == '"')
            fputc('\\', f);
        if (*v == '\n')
            fputs("\\n", f);
        else
            fputc(*v, f);
    }
    fputc('"', f);
}

static void
head(FILE *f, const char *name, const char *type, const char *help)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* The federation's request counters: "answered", "app-error", "refused:R", "dropped:R". */
static void
fed_counters(FILE *f, const Baygate__StatusAnswer *s)
{
    static const char *const plain[][3] = {
        {"answered", "baygate_federation_answered_total", "Federation requests answered."},
        {"app-error", "baygate_federation_app_errors_total",
         "Federation requests answered with an application error."},
        {"tls-handshake-failed", "baygate_tls_handshake_failures_total",
         "TLS handshakes that failed (strangers never reach the envelope layer)."},
        {"connections-lost", "baygate_connections_lost_total", "Peer connections lost."},
    };
    for (size_t k = 0; k < sizeof plain / sizeof plain[0]; k++) {
        uint64_t v = 0;
        for (size_t i = 0; i < s->n_requests; i++)
            if (strcmp(s->requests[i]->name, plain[k][0]) == 0)
                v = s->requests[i]->value;
        head(f, plain[k][1], "counter", plain[k][2]);
        fprintf(f, "%s %llu\n", plain[k][1], (unsigned long long)v);
    }
    head(f, "baygate_federation_refusals_total", "counter",
         "Federation requests refused or dropped, by kind and reason.");
    for (size_t i = 0; i < s->n_requests; i++) {
        const char *n = s->requests[i]->name, *colon = strchr(n, ':');
        if (colon == NULL)
            continue;
        fprintf(f, "baygate_federation_refusals_total{kind=\"%.*s\",reason=", (int)(colon - n), n);
        label(f, colon + 1);
        fprintf(f, "} %llu\n", (unsigned long long)s->requests[i]->value);
    }
}

static void
peer_gauges(FILE *f, const Baygate__StatusAnswer *s)
{
    head(f, "baygate_peer_up", "gauge", "1 if the peer answered its last probe.");
    for (size_t i = 0; i < s->n_peers; i++) {
        fprintf(f, "baygate_peer_up{peer=");
        label(f, s->peers[i]->city);
        fprintf(f, "} %d\n", s->peers[i]->reachable ? 1 : 0);
    }
    head(f, "baygate_peer_latency_seconds", "gauge", "The peer's last round-trip time.");
    for (size_t i = 0; i < s->n_peers; i++) {
        fprintf(f, "baygate_peer_latency_seconds{peer=");
        label(f, s->peers[i]->city);
        fprintf(f, "} %.6f\n", s->peers[i]->latency_us / 1e6);
    }
    head(f, "baygate_quota_used_items", "gauge", "Items the peer asked us about today.");
    for (size_t i = 0; i < s->n_quotas; i++) {
        fprintf(f, "baygate_quota_used_items{peer=");
        label(f, s->quotas[i]->peer);
        fprintf(f, "} %llu\n", (unsigned long long)s->quotas[i]->used_today);
    }
    head(f, "baygate_quota_limit_items", "gauge", "The peer's daily quota of items (0: none).");
    for (size_t i = 0; i < s->n_quotas; i++) {
        fprintf(f, "baygate_quota_limit_items{peer=");
        label(f, s->quotas[i]->peer);
        fprintf(f, "} %llu\n", (unsigned long long)s->quotas[i]->quota_per_day);
    }
}

static void
list_gauges(FILE *f, const Baygate__StatusAnswer *s, int64_t now_ms)
{
    static const char *const g[][2] = {
        {"baygate_snapshot_entries", "Entries in the list's current snapshot."},
        {"baygate_snapshot_epoch", "The list's current epoch."},
        {"baygate_snapshot_age_seconds", "Seconds since the list's snapshot was published."},
    };
    for (int k = 0; k < 3; k++) {
        head(f, g[k][0], "gauge", g[k][1]);
        for (size_t i = 0; i < s->n_lists; i++) {
            const Baygate__ListStatus *l = s->lists[i];
            fprintf(f, "%s{list=", g[k][0]);
            label(f, l->list);
            if (k == 0)
                fprintf(f, "} %llu\n", (unsigned long long)l->entries);
            else if (k == 1)
                fprintf(f, "} %llu\n", (unsigned long long)l->epoch);
            else
                fprintf(f, "} %.3f\n", (double)(now_ms - l->published_ms) / 1000.0);
        }
    }
}

static void
gw_gauges(FILE *f, const Baygate__StatusAnswer *s, int64_t now_ms)
{
    head(f, "baygate_evidence_leaves", "gauge", "Leaves in the evidence log.");
    fprintf(f, "baygate_evidence_leaves %llu\n",
            (unsigned long long)(s->evidence ? s->evidence->size : 0));
    head(f, "baygate_evidence_head_leaves", "gauge", "Leaves under the latest signed tree head.");
    fprintf(f, "baygate_evidence_head_leaves %llu\n",
            (unsigned long long)(s->evidence ? s->evidence->head_size : 0));
    head(f, "baygate_certificate_expiry_seconds", "gauge",
         "Seconds until our city certificate expires (negative: expired).");
    fprintf(f, "baygate_certificate_expiry_seconds %.3f\n",
            (double)(s->cert_not_after_ms - now_ms) / 1000.0);
    head(f, "baygate_crl_expiry_seconds", "gauge",
         "Seconds until the CRL's nextUpdate (negative: past; all traffic stops).");
    fprintf(f, "baygate_crl_expiry_seconds %.3f\n",
            (double)(s->crl_next_update_ms - now_ms) / 1000.0);
    head(f, "baygate_roster_serial", "gauge", "Serial of the roster in use.");
    fprintf(f, "baygate_roster_serial %llu\n", (unsigned long long)s->roster_serial);
    head(f, "baygate_uptime_seconds", "gauge", "Seconds since the gateway started.");
    fprintf(f, "baygate_uptime_seconds %llu\n", (unsigned long long)s->uptime_s);
}

/* The API's own numbers, copied under the lock. */
static void
api_numbers(FILE *f, bg_api *api)
{
    pthread_mutex_lock(&api->lock);
    head(f, "baygate_api_requests_total", "counter",
         "HTTP API requests by application, route and status.");
    for (size_t i = 0; i < api->ncounts; i++) {
        const api_count *c = &api->counts[i];
        fprintf(f, "baygate_api_requests_total{app=");
        label(f, c->app);
        fprintf(f, ",route=\"%s\",code=\"%u\"} %llu\n", route_names[c->route], c->status,
                (unsigned long long)c->n);
    }
    head(f, "baygate_api_request_duration_seconds", "histogram",
         "HTTP API request latency by route.");
    for (int r = 0; r < API_R_COUNT; r++) {
        uint64_t cum = 0;
        for (int b = 0; b <= API_LAT_BUCKETS; b++) {
            cum += api->lat[r][b];
            if (b < API_LAT_BUCKETS)
                fprintf(
                    f, "baygate_api_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n",
                    route_names[r], lat_bounds[b], (unsigned long long)cum);
            else
                fprintf(
                    f,
                    "baygate_api_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n",
                    route_names[r], (unsigned long long)cum);
        }
        fprintf(f, "baygate_api_request_duration_seconds_sum{route=\"%s\"} %.6f\n", route_names[r],
                api->lat_sum[r]);
        fprintf(f, "baygate_api_request_duration_seconds_count{route=\"%s\"} %llu\n",
                route_names[r], (unsigned long long)api->lat_n[r]);
    }
    head(f, "baygate_api_quota_used_lookups", "gauge", "Lookups each application made today.");
    for (size_t i = 0; i < api->nusage; i++) {
        fprintf(f, "baygate_api_quota_used_lookups{app=");
        label(f, api->usage[i].app);
        fprintf(f, "} %llu\n", (unsigned long long)api->usage[i].used);
    }
    pthread_mutex_unlock(&api->lock);
}

void
api_metrics(bg_api *api, api_resp *r)
{
    bg_err err = {0};
    Baygate__LocalAnswer *a = api_local_status(api->gw, &err);
    if (a == NULL) {
        api_problem(r, 503, "gateway-unavailable", "The gateway could not answer", "%s", err.msg);
        return;
    }
    int64_t now_ms = bg_clock_wall_ms();
    FILE *f = api_body_open(r);
    if (f != NULL) {
        fed_counters(f, a->status);
        peer_gauges(f, a->status);
        list_gauges(f, a->status, now_ms);
        gw_gauges(f, a->status, now_ms);
        api_numbers(f, api);
    }
    api_body_close(r, f, 200, "text/plain; version=0.0.4; charset=utf-8");
    bg_pb_free(a);
}
