/*
 * local.c - the local API: ping, query, rotate, status (see local.h).
 */
#include "gateway/daemon/local.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "domain/city.h"
#include "gateway/daemon/codes.h"
#include "gateway/daemon/core.h"
#include "gateway/daemon/log.h"
#include "gateway/daemon/ping.h"
#include "gateway/daemon/psi_pub.h"
#include "gateway/daemon/psi_query.h"
#include "proto/api.pb-c.h"
#include "proto/pb.h"

typedef struct probe_job {
    bg_gw *gw;
    char city[BG_CITY_CODE_LEN + 1];
    Baygate__PingResult res;
    char err[300], name[BG_PKI_NAME_MAX + 1];
    pthread_t thread;
    bool started;
} probe_job;

static void *
probe_run(void *arg)
{
    probe_job *j = arg;
    gw_ping_peer(j->gw, j->city, (int)j->gw->cfg.request_ms, &j->res, j->err, sizeof j->err,
                 j->name, sizeof j->name);
    return NULL;
}

static void
add_counter(Baygate__Counter *c, Baygate__Counter **slot, const char *name, uint64_t v)
{
    baygate__counter__init(c);
    c->name = (char *)name;
    c->value = v;
    *slot = c;
}

/* Everything a status answer points into, freed once it is packed. */
typedef struct status_buf {
    probe_job jobs[BG_ROSTER_MAX_MEMBERS];
    Baygate__StatusAnswer sa;
    Baygate__PeerStatus ps[BG_ROSTER_MAX_MEMBERS];
    Baygate__PeerStatus *psp[BG_ROSTER_MAX_MEMBERS];
    char errs[BG_ROSTER_MAX_MEMBERS][300];
    char names[BG_ROSTER_MAX_MEMBERS][BG_PKI_NAME_MAX + 1];
    char endpoints[BG_ROSTER_MAX_MEMBERS][BG_ROSTER_ENDPOINT_MAX + 1];
    char cities[BG_ROSTER_MAX_MEMBERS][BG_CITY_CODE_LEN + 1];
    Baygate__Counter counters[2 * GW_OUTCOMES + 4];
    Baygate__Counter *counterp[2 * GW_OUTCOMES + 4];
    char counter_names[2 * GW_OUTCOMES + 4][48];
} status_buf;

/* Pings every peer at once: the slowest one bounds the wait. */
static void
probe_all(bg_gw *gw, gw_peer *const *peers, size_t n, status_buf *b)
{
    for (size_t i = 0; i < n; i++) {
        probe_job *j = &b->jobs[i];
        j->gw = gw;
        baygate__ping_result__init(&j->res);
        memcpy(j->city, peers[i]->city, sizeof j->city);
        j->started = pthread_create(&j->thread, NULL, probe_run, j) == 0;
        if (!j->started)
            probe_run(j);
    }
    for (size_t i = 0; i < n; i++)
        if (b->jobs[i].started)
            pthread_join(b->jobs[i].thread, NULL);
}

/* Peer i's row of the status answer, copied out of p (which may go away). */
static Baygate__PeerStatus *
peer_row(gw_peer *p, size_t i, status_buf *b)
{
    Baygate__PeerStatus *ps = &b->ps[i];
    baygate__peer_status__init(ps);
    memcpy(b->cities[i], p->city, sizeof b->cities[i]);
    memcpy(b->names[i], p->name, sizeof b->names[i]);
    memcpy(b->endpoints[i], p->endpoint, sizeof b->endpoints[i]);
    ps->city = b->cities[i];
    ps->name = b->names[i];
    ps->endpoint = b->endpoints[i];
    pthread_mutex_lock(&p->status_lock);
    ps->reachable = p->reachable;
    ps->latency_us = p->latency_us;
    ps->last_ok_ms = p->last_ok_ms;
    snprintf(b->errs[i], sizeof b->errs[i], "%s", p->error);
    pthread_mutex_unlock(&p->status_lock);
    ps->error = b->errs[i];
    return ps;
}

/* The request counters: answered, errors, TLS, and every refusal and drop by reason. */
static size_t
counters(bg_gw *gw, status_buf *b)
{
    size_t nc = 0;
    add_counter(&b->counters[nc], &b->counterp[nc], "answered", atomic_load(&gw->answered));
    nc++;
    add_counter(&b->counters[nc], &b->counterp[nc], "app-error", atomic_load(&gw->app_errors));
    nc++;
    /* Strangers never reach the envelope layer: TLS refuses them first. */
    bg_tp_server_stats ts;
    bg_tp_server_get_stats(gw->fed, &ts);
    add_counter(&b->counters[nc], &b->counterp[nc], "tls-handshake-failed", ts.handshake_errs);
    nc++;
    add_counter(&b->counters[nc], &b->counterp[nc], "connections-lost", ts.conns_lost);
    nc++;
    for (int r = 1; r < GW_OUTCOMES; r++) {
        static const char *const kinds[2] = {"refused", "dropped"};
        uint64_t v[2] = {atomic_load(&gw->refused[r]), atomic_load(&gw->dropped[r])};
        for (int k = 0; k < 2; k++) {
            if (v[k] == 0)
                continue;
            snprintf(b->counter_names[nc], sizeof b->counter_names[nc], "%s:%s", kinds[k],
                     bg_env_reason_name((bg_env_reason)r));
            add_counter(&b->counters[nc], &b->counterp[nc], b->counter_names[nc], v[k]);
            nc++;
        }
    }
    return nc;
}

static void
local_status(bg_gw *gw, const Baygate__LocalStatus *st, status_buf *b)
{
    Baygate__StatusAnswer *sa = &b->sa;
    baygate__status_answer__init(sa);
    gw_peer *peers[BG_ROSTER_MAX_MEMBERS];
    size_t n = gw_peers_get(gw, peers);
    if (st->probe_peers)
        probe_all(gw, peers, n, b);
    for (size_t i = 0; i < n; i++) {
        b->psp[i] = peer_row(peers[i], i, b);
        gw_peer_release(peers[i]);
    }
    sa->n_peers = n;
    sa->peers = b->psp;
    sa->n_requests = counters(gw, b);
    sa->requests = b->counterp;

    sa->city = gw->cfg.city;
    sa->name = gw->cfg.name;
    sa->version = BAYGATE_VERSION;
    sa->uptime_s = (uint64_t)(time(NULL) - gw->started);
    bg_roster *r = gw_roster_get(gw);
    sa->roster_serial = r ? bg_roster_serial(r) : 0;
    bg_roster_free(r);
    time_t next = 0;
    if (bg_trust_crl_next_update(gw->trust, &next, NULL) == BG_OK)
        sa->crl_next_update_ms = (int64_t)next * 1000;
    sa->listen = (char *)bg_tp_server_url(gw->fed);
}

/* Everything a local answer may point into, freed once it is packed. */
typedef struct local_buf {
    Baygate__PingResult pr;
    char errbuf[300], namebuf[BG_PKI_NAME_MAX + 1], peer[BG_CITY_CODE_LEN + 1];
    status_buf *sb;
} local_buf;

static void
local_ping(bg_gw *gw, const Baygate__LocalPing *lp, Baygate__LocalAnswer *ans, local_buf *b)
{
    if (!bg_city_code_valid(lp->peer)) {
        ans->error_code = BG_GW_E_NOT_PEER;
        ans->error = "peer must be a 6-digit city code";
        return;
    }
    snprintf(b->peer, sizeof b->peer, "%s", lp->peer);
    int timeout = lp->timeout_ms ? (int)lp->timeout_ms : (int)gw->cfg.request_ms;
    if (timeout > BG_TP_TIMEOUT_MAX_MS)
        timeout = BG_TP_TIMEOUT_MAX_MS;
    baygate__ping_result__init(&b->pr);
    gw_ping_peer(gw, b->peer, timeout, &b->pr, b->errbuf, sizeof b->errbuf, b->namebuf,
                 sizeof b->namebuf);
    b->pr.peer = b->peer;
    ans->result_case = BAYGATE__LOCAL_ANSWER__RESULT_PING;
    ans->ping = &b->pr;
    bg_log(b->pr.ok ? BG_LOG_INFO : BG_LOG_WARN, "ping.done",
           "peer=%s ok=%d latency_us=%u error=\"%s\"", b->peer, b->pr.ok, b->pr.latency_us,
           b->pr.ok ? "" : gw_quoted(b->errbuf, b->errbuf, sizeof b->errbuf));
}

static void
local_rotate(bg_gw *gw, const Baygate__LocalRotate *lr, Baygate__LocalAnswer *ans, local_buf *b)
{
    bg_err err = {0};
    if (bg_pub_rotate(gw->pub, lr->list, &err) != BG_OK) {
        ans->error_code = BG_GW_E_UNKNOWN_LIST;
        snprintf(b->errbuf, sizeof b->errbuf, "%.200s", err.msg);
        ans->error = b->errbuf;
    } else {
        bg_log(BG_LOG_INFO, "psi.rotate_requested", "list=%s", lr->list);
    }
}

static void
local_status_op(bg_gw *gw, const Baygate__LocalStatus *st, Baygate__LocalAnswer *ans, local_buf *b)
{
    b->sb = calloc(1, sizeof *b->sb);
    if (b->sb == NULL) {
        ans->error_code = BG_GW_E_INTERNAL;
        ans->error = "out of memory";
        return;
    }
    local_status(gw, st, b->sb);
    ans->result_case = BAYGATE__LOCAL_ANSWER__RESULT_STATUS;
    ans->status = &b->sb->sa;
}

void
gw_local_handle(void *ctx, bg_tp_request *req)
{
    bg_gw *gw = ctx;
    size_t len = 0;
    const uint8_t *data = bg_tp_request_data(req, &len);
    Baygate__LocalRequest *lr = bg_pb_unpack(&baygate__local_request__descriptor, len, data);
    Baygate__LocalAnswer ans = BAYGATE__LOCAL_ANSWER__INIT;
    local_buf b = {.sb = NULL};

    if (lr == NULL) {
        ans.error_code = BG_GW_E_BAD_BODY;
        ans.error = "local request does not parse";
    } else if (lr->op_case == BAYGATE__LOCAL_REQUEST__OP_PING && lr->ping != NULL) {
        local_ping(gw, lr->ping, &ans, &b);
    } else if (lr->op_case == BAYGATE__LOCAL_REQUEST__OP_QUERY && lr->query != NULL) {
        /* Packed by the query module itself: its answer owns many buffers. */
        size_t qlen = 0;
        uint8_t *qout = psi_local_query(gw, lr->query, &qlen);
        bg_pb_free(lr);
        gw_reply_or_drop(gw, NULL, req, qout, qlen);
        return;
    } else if (lr->op_case == BAYGATE__LOCAL_REQUEST__OP_ROTATE && lr->rotate != NULL) {
        local_rotate(gw, lr->rotate, &ans, &b);
    } else if (lr->op_case == BAYGATE__LOCAL_REQUEST__OP_STATUS && lr->status != NULL) {
        local_status_op(gw, lr->status, &ans, &b);
    } else {
        ans.error_code = BG_GW_E_UNKNOWN_BODY;
        ans.error = "unknown local request";
    }

    size_t out_len = baygate__local_answer__get_packed_size(&ans);
    uint8_t *out = malloc(out_len ? out_len : 1);
    if (out != NULL)
        baygate__local_answer__pack(&ans, out);
    free(b.sb);
    if (lr != NULL)
        bg_pb_free(lr);
    gw_reply_or_drop(gw, NULL, req, out, out_len);
}
