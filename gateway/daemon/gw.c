/*
 * gw.c - the gateway daemon: federation API, local API, peer clients,
 * hot reload of CRL and roster.
 *
 * Locking: gw->lock (a mutex) guards the roster pointer and the peer table,
 * and is held only to copy a pointer and take a reference, never across I/O.
 * Rosters are reference-counted by the roster module; peers here. A call to
 * a peer holds a reference to it, so a roster reload can unlink a peer while
 * a call is in flight; the last reference closes its client.
 */
#include "gateway/daemon/gw.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "certs/pki.h"
#include "certs/trust.h"
#include "gateway/config/config.h"
#include "gateway/daemon/fedping.h"
#include "gateway/daemon/gw_int.h"
#include "gateway/daemon/log.h"
#include "peers/envelope.h"
#include "peers/roster.h"
#include "peers/transport.h"
#include "proto/api.pb-c.h"
#include "proto/psi.pb-c.h"
#include "proto/witness.pb-c.h"
#include "proto/pb.h"

/* A query carries up to GW_QUERY_MAX_IDS (2^21) ids of up to ~20 bytes each as
 * users write them; its answer up to that many matches (and grades) per peer. */
#define GW_LOCAL_RECV_MAX (64 * 1024 * 1024)
#define GW_LOCAL_REPLY_MAX (256 * 1024 * 1024)
/* A query fetches snapshots and runs PSI with every peer: minutes for big ones. */
#define GW_LOCAL_TIMEOUT_MS (30 * 60 * 1000)
#define GW_PING_TIMEOUT_DEFAULT_MS 5000
#define GW_CRL_WARN_EVERY_S 600
#define GW_REPLAY_CAPACITY (1u << 19)

/* ------------------------------------------------------------- helpers */

static int64_t
now_ms(void)
{
    return bg_env_now_ms();
}

/* A message from the wire or an error, made safe for one log value. */
static const char *
quoted(const char *s, char *buf, size_t n)
{
    size_t o = 0;
    for (; *s != '\0' && o + 1 < n; s++) {
        unsigned char c = (unsigned char)*s;
        buf[o++] = (c < 0x20 || c == 0x7F || c == '"') ? '\'' : (char)c;
    }
    buf[o] = '\0';
    return buf;
}

static bool
watch_changed(const char *path, gw_watch *w)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return false;
    bool changed = st.st_dev != w->dev || st.st_ino != w->ino || st.st_size != w->size ||
                   st.st_mtim.tv_sec != w->mtime.tv_sec || st.st_mtim.tv_nsec != w->mtime.tv_nsec;
    w->dev = st.st_dev;
    w->ino = st.st_ino;
    w->size = st.st_size;
    w->mtime = st.st_mtim;
    return changed;
}

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

/* The roster callback of the envelope verifier: is city a member, with which
 * pinned certificate? Thread-safe: it takes its own roster reference. */
static int
member_fp(void *ctx, const char *city, uint8_t fp[BG_SIG_FP_LEN])
{
    bg_roster *r = gw_roster_get(ctx);
    const bg_roster_member *m = r ? bg_roster_member_find(r, city) : NULL;
    if (m != NULL)
        memcpy(fp, m->cert_sha256, BG_SIG_FP_LEN);
    bg_roster_free(r);
    return m != NULL ? BG_OK : BG_ENOTFOUND;
}

static bg_tp_tls
tls_material(const bg_gw *gw)
{
    bg_tp_tls t = {.cert_pem = gw->cert_pem,
                   .key_pem = gw->key_pem,
                   .ca_pem = gw->ca_pem,
                   .crl_pem = gw->crl_pem};
    return t;
}

static int
load_crl_pem(bg_gw *gw, X509_CRL **crl_out, bg_err *err)
{
    X509_CRL *crl = NULL;
    int rc = bg_pki_crl_load(gw->cfg.crl_path, &crl, err);
    if (rc != BG_OK)
        return rc;
    char *pem = NULL;
    size_t len = 0;
    rc = bg_pki_crl_pem(crl, &pem, &len, err);
    if (rc != BG_OK) {
        X509_CRL_free(crl);
        return rc;
    }
    OPENSSL_free(gw->crl_pem);
    gw->crl_pem = pem;
    gw->crl_pem_len = len;
    *crl_out = crl;
    return BG_OK;
}

/* ---------------------------------------------------------------- peers */

static int
peer_new(bg_gw *gw, const bg_roster *r, const bg_roster_member *m, gw_peer **out, bg_err *err)
{
    gw_peer *p = calloc(1, sizeof *p);
    if (p == NULL)
        return bg_err_set(err, BG_ENOMEM, "out of memory");
    atomic_init(&p->refs, 1);
    atomic_init(&p->cert_known, false);
    pthread_mutex_init(&p->status_lock, NULL);
    memcpy(p->city, m->city, sizeof p->city);
    memcpy(p->name, m->name, sizeof p->name);
    memcpy(p->endpoint, m->endpoint, sizeof p->endpoint);
    snprintf(p->error, sizeof p->error, "not probed yet");
    bg_tp_tls tls = tls_material(gw);
    bg_tp_client_opts o = {
        .url = m->endpoint,
        .tls = &tls,
        .server_name = m->city,
        .recv_max = gw->cfg.recv_max_bytes,
        .send_max = bg_roster_max_message_bytes(r),
        .watchdog_ms = (int)gw->cfg.handshake_ms,
    };
    int rc = bg_tp_client_open(&p->cli, &o, err);
    if (rc != BG_OK) {
        pthread_mutex_destroy(&p->status_lock);
        free(p);
        return rc;
    }
    *out = p;
    return BG_OK;
}

/* Makes the peer table match roster r: keeps unchanged peers, opens new
 * ones, unlinks removed or moved ones (closed when their last call ends). */
static void
peers_sync(bg_gw *gw, const bg_roster *r)
{
    gw_peer *keep[BG_ROSTER_MAX_MEMBERS];
    size_t nkeep = 0;
    gw_peer *old[BG_ROSTER_MAX_MEMBERS];
    size_t nold;

    pthread_mutex_lock(&gw->lock);
    nold = gw->npeers;
    memcpy(old, gw->peers, nold * sizeof old[0]);
    gw->npeers = 0;
    pthread_mutex_unlock(&gw->lock);

    for (size_t i = 0; i < bg_roster_member_count(r); i++) {
        const bg_roster_member *m = bg_roster_member_at(r, i);
        if (strcmp(m->city, gw->cfg.city) == 0)
            continue;
        gw_peer *p = NULL;
        for (size_t k = 0; k < nold; k++) {
            if (old[k] != NULL && strcmp(old[k]->city, m->city) == 0 &&
                strcmp(old[k]->endpoint, m->endpoint) == 0) {
                p = old[k];
                old[k] = NULL;
                break;
            }
        }
        bg_err err = {0};
        if (p == NULL && peer_new(gw, r, m, &p, &err) != BG_OK) {
            bg_log(BG_LOG_ERROR, "peer.open_failed", "peer=%s error=\"%s\"", m->city, err.msg);
            continue;
        }
        keep[nkeep++] = p;
    }
    pthread_mutex_lock(&gw->lock);
    memcpy(gw->peers, keep, nkeep * sizeof keep[0]);
    gw->npeers = nkeep;
    pthread_mutex_unlock(&gw->lock);
    for (size_t k = 0; k < nold; k++)
        gw_peer_release(old[k]);
}

/* ------------------------------------------------------------ asking */

/*
 * One authenticated round trip to a peer; res's strings point into errbuf
 * and namebuf (caller's storage). The first contact carries our certificate;
 * after a peer has accepted it once, only its fingerprint (and the whole
 * certificate again if the peer says it does not know it).
 */
static void
ping_peer(bg_gw *gw, const char *city, int timeout_ms, Baygate__PingResult *res, char *errbuf,
          size_t errn, char *namebuf, size_t namen)
{
    res->peer = (char *)city;
    res->ok = false;
    gw_peer *p = gw_peer_get(gw, city);
    bg_roster *r = gw_roster_get(gw);
    uint64_t serial = r ? bg_roster_serial(r) : 0;
    size_t max_msg = r ? bg_roster_max_message_bytes(r) : BG_ENV_MESSAGE_DEFAULT;
    bg_roster_free(r);
    if (p == NULL) {
        res->error_code = BG_GW_E_NOT_PEER;
        snprintf(errbuf, errn, "%s is not a peer in roster serial %llu", city,
                 (unsigned long long)serial);
        res->error = errbuf;
        return;
    }
    bg_fedping_result fr;
    bool with_cert = !atomic_load(&p->cert_known);
    bg_fedping(p->cli, gw->id, gw->verifier, city, p->endpoint, serial, max_msg, with_cert,
               timeout_ms, &fr);
    if (fr.unknown_cert && !with_cert) /* the peer forgot us: introduce ourselves again */
        bg_fedping(p->cli, gw->id, gw->verifier, city, p->endpoint, serial, max_msg, true,
                   timeout_ms, &fr);
    if (fr.ok)
        atomic_store(&p->cert_known, true);
    snprintf(namebuf, namen, "%s", fr.ok ? fr.peer_name : p->name);
    res->peer_name = namebuf;
    res->ok = fr.ok;
    res->error_code = fr.code;
    res->peer_roster_serial = fr.peer_roster_serial;
    res->latency_us = fr.latency_us;
    res->clock_skew_ms = fr.clock_skew_ms;
    snprintf(errbuf, errn, "%s", fr.error);
    res->error = fr.ok ? NULL : errbuf;

    pthread_mutex_lock(&p->status_lock);
    p->probed = true;
    p->reachable = fr.ok;
    if (fr.ok) {
        p->latency_us = fr.latency_us;
        p->last_ok_ms = now_ms();
        p->error[0] = '\0';
    } else {
        snprintf(p->error, sizeof p->error, "%s", fr.error);
    }
    pthread_mutex_unlock(&p->status_lock);
    gw_peer_release(p);
}

/* ------------------------------------------------ federation requests */

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

size_t
gw_max_message(bg_gw *gw)
{
    bg_roster *r = gw_roster_get(gw);
    size_t m = r ? bg_roster_max_message_bytes(r) : BG_ENV_MESSAGE_DEFAULT;
    bg_roster_free(r);
    return m;
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

static void
answer_ping(bg_gw *gw, gw_ev *ev, const bg_env_opened *o, bg_tp_request *req)
{
    Baygate__Ping *ping = bg_pb_unpack(&baygate__ping__descriptor, o->body_len, o->body);
    if (ping == NULL) {
        gw_refuse(gw, ev, o, req, BG_GW_E_BAD_BODY, "ping.refused", "ping body does not parse");
        return;
    }
    bg_roster *r = gw_roster_get(gw);
    Baygate__Pong pong = BAYGATE__PONG__INIT;
    pong.city = gw->cfg.city;
    pong.name = gw->cfg.name;
    pong.roster_serial = bg_roster_serial(r);
    pong.time_ms = now_ms();
    bg_roster_free(r);
    bg_log(BG_LOG_INFO, "ping.answered", "peer=%s their_roster=%llu our_roster=%llu", o->sender,
           (unsigned long long)ping->roster_serial, (unsigned long long)pong.roster_serial);
    bg_pb_free(ping);
    uint8_t body[256];
    size_t body_len = baygate__pong__get_packed_size(&pong);
    if (body_len > sizeof body) { /* a city name is at most 64 bytes: cannot happen */
        gw_refuse(gw, ev, o, req, BG_GW_E_INTERNAL, "ping.refused", "pong too large");
        return;
    }
    baygate__pong__pack(&pong, body);
    gw_answer(gw, ev, o, req, BAYGATE__APP_BODY__APP_BODY_PONG, body, body_len);
}

static void
fed_handle(void *ctx, bg_tp_request *req)
{
    bg_gw *gw = ctx;
    size_t len = 0;
    const uint8_t *data = bg_tp_request_data(req, &len);
    bg_env_opened *o = NULL;
    bg_env_refusal ref;
    bg_err err = {0};
    bg_env_reason why = bg_env_open(gw->verifier, data, len, 0, &o, &ref, &err);
    if (why != BG_ENV_OK) {
        bg_tp_peer peer = {.addr = "?"};
        bg_tp_request_peer(req, &peer, NULL);
        char q[300];
        uint8_t *out = NULL;
        size_t out_len = 0;
        size_t max_msg = gw_max_message(gw);
        if (bg_env_refusal_answerable(&ref) &&
            bg_env_seal_refusal(gw->id, &ref, max_msg, &out, &out_len, NULL) == BG_OK) {
            atomic_fetch_add(&gw->refused[why], 1);
            bg_log(BG_LOG_WARN, "request.refused", "reason=%s sender=%s addr=%s msg=\"%s\"",
                   bg_env_reason_name(why), ref.sender, peer.addr,
                   quoted(ref.message, q, sizeof q));
        } else {
            atomic_fetch_add(&gw->dropped[why], 1);
            bg_log(BG_LOG_WARN, "request.dropped", "reason=%s addr=%s msg=\"%s\"",
                   bg_env_reason_name(why), peer.addr, quoted(err.msg, q, sizeof q));
        }
        gw_reply_or_drop(gw, NULL, req, out, out_len);
        return;
    }
    /* Authenticated from here on: the exchange leaves evidence (evidence.h). */
    gw_ev ev;
    gw_ev_inbound(&ev, o);
    switch (o->body_type) {
    case BAYGATE__APP_BODY__APP_BODY_PING:
        answer_ping(gw, &ev, o, req);
        break;
    case BAYGATE__PSI_BODY__PSI_BODY_SNAPSHOT_REQUEST:
        psi_answer_snapshot(gw, &ev, o, req);
        break;
    case BAYGATE__PSI_BODY__PSI_BODY_QUERY:
        psi_answer_query(gw, &ev, o, req);
        break;
    case BAYGATE__PSI_BODY__PSI_BODY_STATUS_REQUEST:
        psi_answer_status(gw, &ev, o, req);
        break;
    case BAYGATE__WITNESS_BODY__WITNESS_BODY_HEAD_REQUEST:
        gw_witness_answer_head(gw, o, req);
        break;
    case BAYGATE__WITNESS_BODY__WITNESS_BODY_COSIGN:
        gw_witness_answer_cosign(gw, o, req);
        break;
    default: {
        uint8_t *out = NULL;
        size_t out_len = 0;
        char msg[64];
        snprintf(msg, sizeof msg, "body type %u is not served here", o->body_type);
        atomic_fetch_add(&gw->app_errors, 1);
        bg_roster *r = gw_roster_get(gw);
        bg_env_seal_error(gw->id, o, BG_GW_E_UNKNOWN_BODY, msg, bg_roster_max_message_bytes(r),
                          &out, &out_len, NULL);
        bg_roster_free(r);
        bg_log(BG_LOG_WARN, "request.refused", "reason=unknown_body peer=%s body_type=%u",
               o->sender, o->body_type);
        gw_ev_refused(&ev, BG_GW_E_UNKNOWN_BODY, msg);
        gw_reply_or_drop(gw, &ev, req, out, out_len);
    }
    }
    bg_env_opened_free(o);
}

/* ------------------------------------------------------- local requests */

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
    ping_peer(j->gw, j->city, (int)j->gw->cfg.request_ms, &j->res, j->err, sizeof j->err, j->name,
              sizeof j->name);
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

static void
local_status(bg_gw *gw, const Baygate__LocalStatus *st, status_buf *b)
{
    Baygate__StatusAnswer *sa = &b->sa;
    baygate__status_answer__init(sa);
    gw_peer *peers[BG_ROSTER_MAX_MEMBERS];
    size_t n = 0;
    pthread_mutex_lock(&gw->lock);
    for (size_t i = 0; i < gw->npeers; i++) {
        peers[n] = gw->peers[i];
        atomic_fetch_add(&peers[n]->refs, 1);
        n++;
    }
    pthread_mutex_unlock(&gw->lock);

    /* Probe every peer at once: the slowest one bounds the wait. */
    if (st->probe_peers) {
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

    for (size_t i = 0; i < n; i++) {
        gw_peer *p = peers[i];
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
        b->psp[i] = ps;
        gw_peer_release(p);
    }
    sa->n_peers = n;
    sa->peers = b->psp;

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
    sa->n_requests = nc;
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

static void
local_handle(void *ctx, bg_tp_request *req)
{
    bg_gw *gw = ctx;
    size_t len = 0;
    const uint8_t *data = bg_tp_request_data(req, &len);
    Baygate__LocalRequest *lr = bg_pb_unpack(&baygate__local_request__descriptor, len, data);
    Baygate__LocalAnswer ans = BAYGATE__LOCAL_ANSWER__INIT;
    Baygate__PingResult pr = BAYGATE__PING_RESULT__INIT;
    status_buf *sb = NULL;
    char errbuf[300], namebuf[BG_PKI_NAME_MAX + 1], peer[BG_CITY_CODE_LEN + 1];

    if (lr == NULL) {
        ans.error_code = BG_GW_E_BAD_BODY;
        ans.error = "local request does not parse";
    } else if (lr->op_case == BAYGATE__LOCAL_REQUEST__OP_PING && lr->ping != NULL) {
        if (!bg_city_code_valid(lr->ping->peer)) {
            ans.error_code = BG_GW_E_NOT_PEER;
            ans.error = "peer must be a 6-digit city code";
        } else {
            snprintf(peer, sizeof peer, "%s", lr->ping->peer);
            int timeout =
                lr->ping->timeout_ms ? (int)lr->ping->timeout_ms : (int)gw->cfg.request_ms;
            if (timeout > BG_TP_TIMEOUT_MAX_MS)
                timeout = BG_TP_TIMEOUT_MAX_MS;
            ping_peer(gw, peer, timeout, &pr, errbuf, sizeof errbuf, namebuf, sizeof namebuf);
            pr.peer = peer;
            ans.result_case = BAYGATE__LOCAL_ANSWER__RESULT_PING;
            ans.ping = &pr;
            bg_log(pr.ok ? BG_LOG_INFO : BG_LOG_WARN, "ping.done",
                   "peer=%s ok=%d latency_us=%u error=\"%s\"", peer, pr.ok, pr.latency_us,
                   pr.ok ? "" : quoted(errbuf, errbuf, sizeof errbuf));
        }
    } else if (lr->op_case == BAYGATE__LOCAL_REQUEST__OP_QUERY && lr->query != NULL) {
        /* Packed by the query module itself: its answer owns many buffers. */
        size_t qlen = 0;
        uint8_t *qout = psi_local_query(gw, lr->query, &qlen);
        bg_pb_free(lr);
        gw_reply_or_drop(gw, NULL, req, qout, qlen);
        return;
    } else if (lr->op_case == BAYGATE__LOCAL_REQUEST__OP_ROTATE && lr->rotate != NULL) {
        bg_err err = {0};
        if (bg_pub_rotate(gw->pub, lr->rotate->list, &err) != BG_OK) {
            ans.error_code = BG_GW_E_UNKNOWN_LIST;
            snprintf(errbuf, sizeof errbuf, "%.200s", err.msg);
            ans.error = errbuf;
        } else {
            bg_log(BG_LOG_INFO, "psi.rotate_requested", "list=%s", lr->rotate->list);
        }
    } else if (lr->op_case == BAYGATE__LOCAL_REQUEST__OP_STATUS && lr->status != NULL) {
        sb = calloc(1, sizeof *sb);
        if (sb == NULL) {
            ans.error_code = BG_GW_E_INTERNAL;
            ans.error = "out of memory";
        } else {
            local_status(gw, lr->status, sb);
            ans.result_case = BAYGATE__LOCAL_ANSWER__RESULT_STATUS;
            ans.status = &sb->sa;
        }
    } else {
        ans.error_code = BG_GW_E_UNKNOWN_BODY;
        ans.error = "unknown local request";
    }

    size_t out_len = baygate__local_answer__get_packed_size(&ans);
    uint8_t *out = malloc(out_len ? out_len : 1);
    if (out != NULL)
        baygate__local_answer__pack(&ans, out);
    free(sb);
    if (lr != NULL)
        bg_pb_free(lr);
    gw_reply_or_drop(gw, NULL, req, out, out_len);
}

/* ------------------------------------------------------- reload, warn */

static void
reload_crl(bg_gw *gw)
{
    bg_err err = {0};
    X509_CRL *crl = NULL;
    if (bg_pki_crl_load(gw->cfg.crl_path, &crl, &err) != BG_OK) {
        bg_log(BG_LOG_ERROR, "crl.reload_failed", "path=%s error=\"%s\"", gw->cfg.crl_path,
               err.msg);
        return;
    }
    /* The trust store refuses a CRL that is not the CA's or rolls back. */
    if (bg_trust_set_crl(gw->trust, crl, &err) != BG_OK) {
        bg_log(BG_LOG_ERROR, "crl.refused", "path=%s error=\"%s\"", gw->cfg.crl_path, err.msg);
        X509_CRL_free(crl);
        return;
    }
    char *pem = NULL;
    size_t pem_len = 0;
    int rc = bg_pki_crl_pem(crl, &pem, &pem_len, &err);
    uint64_t number = 0;
    bg_pki_crl_number(crl, &number, NULL);
    X509_CRL_free(crl);
    if (rc != BG_OK) {
        bg_log(BG_LOG_ERROR, "crl.reload_failed", "error=\"%s\"", err.msg);
        return;
    }
    OPENSSL_free(gw->crl_pem);
    gw->crl_pem = pem;
    gw->crl_pem_len = pem_len;

    /* New TLS configs everywhere: connections made under the old CRL end. */
    bg_tp_tls tls = tls_material(gw);
    if (bg_tp_server_reload_tls(gw->fed, &tls, &err) != BG_OK)
        bg_log(BG_LOG_ERROR, "listener.reload_failed", "error=\"%s\"", err.msg);
    gw_peer *peers[BG_ROSTER_MAX_MEMBERS];
    size_t n = 0;
    pthread_mutex_lock(&gw->lock);
    for (size_t i = 0; i < gw->npeers; i++) {
        peers[n] = gw->peers[i];
        atomic_fetch_add(&peers[n++]->refs, 1);
    }
    pthread_mutex_unlock(&gw->lock);
    for (size_t i = 0; i < n; i++) {
        if (bg_tp_client_reload_tls(peers[i]->cli, &tls, &err) != BG_OK)
            bg_log(BG_LOG_ERROR, "peer.reload_failed", "peer=%s error=\"%s\"", peers[i]->city,
                   err.msg);
        gw_peer_release(peers[i]);
    }
    gw->crl_warned_at = 0;
    bg_log(BG_LOG_INFO, "crl.reloaded", "number=%llu", (unsigned long long)number);
}

/* The lists the roster says we offer. */
static void
offered_lists(const bg_gw *gw, const bg_roster *r, bool offered[BG_LIST_COUNT])
{
    const bg_roster_member *me = bg_roster_member_find(r, gw->cfg.city);
    for (int i = 0; i < BG_LIST_COUNT; i++)
        offered[i] = me != NULL && me->lists[i];
}

static void
reload_roster(bg_gw *gw)
{
    bg_err err = {0};
    bg_roster *cur = gw_roster_get(gw), *next = NULL;
    bool unchanged = false;
    int rc = bg_roster_load_file(gw->cfg.roster_path, gw->ca, 0, cur, &next, &unchanged, &err);
    if (rc != BG_OK) {
        bg_log(BG_LOG_ERROR, "roster.refused", "path=%s serial_in_use=%llu error=\"%s\"",
               gw->cfg.roster_path, (unsigned long long)bg_roster_serial(cur), err.msg);
    } else if (unchanged) {
        bg_roster_free(next);
    } else {
        /* Socket limits and the verifier's bound are set when they are made. */
        if (bg_roster_max_message_bytes(next) != bg_roster_max_message_bytes(cur))
            bg_log(BG_LOG_WARN, "roster.max_message_changed",
                   "old=%u new=%u effect=\"takes effect at the next restart\"",
                   bg_roster_max_message_bytes(cur), bg_roster_max_message_bytes(next));
        pthread_mutex_lock(&gw->lock);
        gw->roster = next;
        pthread_mutex_unlock(&gw->lock);
        peers_sync(gw, next);
        bool offered[BG_LIST_COUNT];
        offered_lists(gw, next, offered);
        bg_pub_set_offered(gw->pub, offered);
        bg_log(BG_LOG_INFO, "roster.reloaded", "serial=%llu previous=%llu members=%zu",
               (unsigned long long)bg_roster_serial(next),
               (unsigned long long)bg_roster_serial(cur), bg_roster_member_count(next));
        bg_roster_free(cur); /* the table's reference */
    }
    bg_roster_free(cur);
}

static void
warn_crl_expiry(bg_gw *gw)
{
    time_t next = 0, now = time(NULL);
    if (bg_trust_crl_next_update(gw->trust, &next, NULL) != BG_OK)
        return;
    time_t left = next - now;
    if (left > (time_t)gw->cfg.crl_warn_hours * 3600)
        return;
    if (gw->crl_warned_at != 0 && now - gw->crl_warned_at < GW_CRL_WARN_EVERY_S)
        return;
    gw->crl_warned_at = now;
    if (left <= 0)
        bg_log(BG_LOG_ERROR, "crl.expired",
               "seconds_ago=%lld effect=\"every peer is refused until a new CRL is published\"",
               (long long)-left);
    else
        bg_log(BG_LOG_WARN, "crl.expires_soon",
               "seconds_left=%lld effect=\"all traffic stops when it passes: publish a new CRL\"",
               (long long)left);
}

void
bg_gw_tick(bg_gw *gw)
{
    if (watch_changed(gw->cfg.crl_path, &gw->crl_watch))
        reload_crl(gw);
    if (watch_changed(gw->cfg.roster_path, &gw->roster_watch))
        reload_roster(gw);
    warn_crl_expiry(gw);
    /* A separate `baygate import` may have committed: the builder looks. */
    bg_pub_poke(gw->pub);
    gw_evidence_tick(gw);
}

/* ------------------------------------------------------- start, stop */

static int
load_pem_material(bg_gw *gw, bg_err *err)
{
    int rc = bg_pki_key_pem(gw->id->key, &gw->key_pem, &gw->key_pem_len, err);
    if (rc == BG_OK)
        rc = bg_pki_cert_pem(gw->id->cert, &gw->cert_pem, &gw->cert_pem_len, err);
    if (rc == BG_OK)
        rc = bg_pki_cert_pem(gw->ca, &gw->ca_pem, &gw->ca_pem_len, err);
    X509_CRL *crl = NULL;
    if (rc == BG_OK)
        rc = load_crl_pem(gw, &crl, err);
    X509_CRL_free(crl);
    return rc;
}

int
bg_gw_start(bg_gw **out, const char *dir, bg_err *err)
{
    *out = NULL;
    bg_gw *gw = calloc(1, sizeof *gw);
    if (gw == NULL)
        return bg_err_set(err, BG_ENOMEM, "out of memory");
    pthread_mutex_init(&gw->lock, NULL);
    gw_cache_init(&gw->cache);
    gw->started = time(NULL);

    char path[BG_CONFIG_PATH_MAX + 32];
    int rc = BG_OK;
    if (snprintf(path, sizeof path, "%s/%s", dir, BG_CONFIG_FILE) >= (int)sizeof path)
        rc = bg_err_set(err, BG_EINVAL, "gateway directory path too long");
    if (rc == BG_OK)
        rc = bg_config_load(path, &gw->cfg, err);
    gw_quota_init(&gw->quota, rc == BG_OK ? gw->cfg.data_dir : NULL);
    if (rc == BG_OK)
        rc = bg_env_identity_load(&gw->id, gw->cfg.dir, gw->cfg.key_path, gw->cfg.cert_path, err);
    if (rc == BG_OK)
        rc = bg_pki_cert_load(gw->cfg.ca_path, &gw->ca, err);
    if (rc == BG_OK && access(gw->cfg.crl_path, R_OK) != 0)
        /* Without a CRL mbedTLS skips revocation silently: refuse to run blind. */
        rc = bg_err_set(err, BG_ENOTFOUND,
                        "no CRL at %s: the operator publishes one with 'baygate ca crl'",
                        gw->cfg.crl_path);
    if (rc == BG_OK)
        rc = bg_trust_open(&gw->trust, gw->cfg.ca_path, gw->cfg.crl_path, 0, err);
    if (rc == BG_OK)
        rc = bg_roster_load_file(gw->cfg.roster_path, gw->ca, 0, NULL, &gw->roster, NULL, err);
    if (rc == BG_OK) {
        const bg_roster_member *me = bg_roster_member_find(gw->roster, gw->cfg.city);
        if (me == NULL)
            rc = bg_err_set(err, BG_EINVAL, "roster serial %llu has no member %s",
                            (unsigned long long)bg_roster_serial(gw->roster), gw->cfg.city);
        else if (sodium_memcmp(me->cert_sha256, gw->id->fingerprint, BG_SIG_FP_LEN) != 0)
            rc = bg_err_set(
                err, BG_EINVAL, "roster serial %llu pins another certificate for %s than %s",
                (unsigned long long)bg_roster_serial(gw->roster), gw->cfg.city, gw->cfg.cert_path);
    }
    if (rc == BG_OK) {
        bg_env_verifier_config vc = {
            .own_city = gw->cfg.city,
            .trust = gw->trust,
            .member_fp = member_fp,
            .member_ctx = gw,
            .max_message = bg_roster_max_message_bytes(gw->roster),
            /* Entries live one clock window (300 s): 2^19 (about 20 MB) holds
             * ~870 accepted envelopes/s sustained before REPLAY_FULL. */
            .replay_capacity = GW_REPLAY_CAPACITY,
        };
        rc = bg_env_verifier_new(&gw->verifier, &vc, err);
    }
    if (rc == BG_OK)
        rc = load_pem_material(gw, err);
    watch_changed(gw->cfg.crl_path, &gw->crl_watch);
    watch_changed(gw->cfg.roster_path, &gw->roster_watch);
    if (rc == BG_OK)
        rc = gw_evidence_start(gw, err);
    if (rc == BG_OK) {
        /* Publishing starts before the listener: the first snapshots build meanwhile. */
        bool offered[BG_LIST_COUNT];
        offered_lists(gw, gw->roster, offered);
        rc = bg_pub_start(&gw->pub, gw->cfg.data_dir, gw->cfg.city, gw->id->key, gw->id->cert,
                          offered, err);
    }
    if (rc == BG_OK) {
        bg_tp_tls tls = tls_material(gw);
        size_t max_msg = bg_roster_max_message_bytes(gw->roster);
        bg_tp_server_opts fo = {
            .url = gw->cfg.listen,
            .tls = &tls,
            .recv_max = max_msg,
            .reply_max = max_msg,
            .request_timeout_ms = (int)gw->cfg.request_ms,
            .handler = fed_handle,
            .handler_ctx = gw,
        };
        rc = bg_tp_server_start(&gw->fed, &fo, err);
    }
    if (rc == BG_OK) {
        bg_tp_server_opts lo = {
            .url = gw->cfg.local_url,
            .recv_max = GW_LOCAL_RECV_MAX,
            .reply_max = GW_LOCAL_REPLY_MAX,
            /* A status probe waits for the slowest peer. */
            .request_timeout_ms = GW_LOCAL_TIMEOUT_MS,
            .ipc_mode = 0660,
            .handler = local_handle,
            .handler_ctx = gw,
        };
        rc = bg_tp_server_start(&gw->local, &lo, err);
    }
    if (rc != BG_OK) {
        bg_gw_stop(gw);
        return rc;
    }
    peers_sync(gw, gw->roster);
    bg_log(BG_LOG_INFO, "gateway.ready", "city=%s name=%s listen=%s local=%s roster=%llu peers=%zu",
           gw->cfg.city, gw->cfg.name, bg_tp_server_url(gw->fed), gw->cfg.local_url,
           (unsigned long long)bg_roster_serial(gw->roster), gw->npeers);
    warn_crl_expiry(gw);
    *out = gw;
    return BG_OK;
}

void
bg_gw_stop(bg_gw *gw)
{
    if (gw == NULL)
        return;
    /* The witness thread calls peers: it goes first. Then stop taking requests:
     * handlers may still use peers, keys and the evidence log. */
    gw_evidence_stop_witness(gw);
    bg_tp_server_stop(gw->local, NULL);
    bg_tp_server_stop(gw->fed, NULL);
    bg_pub_stop(gw->pub);
    pthread_mutex_lock(&gw->lock);
    size_t n = gw->npeers;
    gw->npeers = 0;
    pthread_mutex_unlock(&gw->lock);
    for (size_t i = 0; i < n; i++)
        gw_peer_release(gw->peers[i]);
    bg_env_verifier_free(gw->verifier);
    bg_roster_free(gw->roster);
    bg_trust_free(gw->trust);
    X509_free(gw->ca);
    bg_env_identity_free(gw->id);
    if (gw->key_pem != NULL)
        bg_pki_secret_free(gw->key_pem, gw->key_pem_len);
    OPENSSL_free(gw->cert_pem);
    OPENSSL_free(gw->ca_pem);
    OPENSSL_free(gw->crl_pem);
    gw_evidence_close(gw);
    gw_cache_destroy(&gw->cache);
    gw_quota_destroy(&gw->quota);
    pthread_mutex_destroy(&gw->lock);
    free(gw);
}
