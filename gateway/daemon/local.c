/*
 * local.c - the local API: ping, query, rotate, status (see local.h), lookup.
 */
#include "gateway/daemon/local.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "common/clock.h"
#include "domain/city.h"
#include "domain/date.h"
#include "domain/uscc.h"
#include "gateway/attest/attest.h"
#include "gateway/daemon/codes.h"
#include "gateway/daemon/core.h"
#include "gateway/daemon/fetch.h"
#include "gateway/daemon/log.h"
#include "gateway/daemon/ping.h"
#include "gateway/daemon/psi_pub.h"
#include "gateway/daemon/psi_query.h"
#include "gateway/daemon/standing.h"
#include "gateway/store/store.h"
#include "proto/api.pb-c.h"
#include "proto/pb.h"

/* status warns when the city certificate expires in fewer days than this (there is no
 * configuration key for it; the CRL's is [pki] crl_warn_hours). */
#define GW_CERT_WARN_DAYS 30

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
    Baygate__Counter counters[2 * GW_OUTCOMES + GW_RATE_KINDS + 18];
    Baygate__Counter *counterp[2 * GW_OUTCOMES + GW_RATE_KINDS + 18];
    char counter_names[2 * GW_OUTCOMES + GW_RATE_KINDS + 18][48];
    Baygate__ListStatus lists[BG_PUB_LISTS];
    Baygate__ListStatus *listp[BG_PUB_LISTS];
    Baygate__QuotaStatus quotas[BG_ROSTER_MAX_MEMBERS]; /* one permission per asker toward us */
    Baygate__QuotaStatus *quotap[BG_ROSTER_MAX_MEMBERS];
    char askers[BG_ROSTER_MAX_MEMBERS][BG_CITY_CODE_LEN + 1];
    Baygate__EvidenceStatus ev;
    bg_audit_hash root, head_root;
    Baygate__WitnessStatus wit[BG_ROSTER_MAX_MEMBERS];
    Baygate__WitnessStatus *witp[BG_ROSTER_MAX_MEMBERS];
    char witnesses[BG_ROSTER_MAX_MEMBERS][BG_CITY_CODE_LEN + 1];
    char cert_hex[BG_SIG_FP_HEX_LEN + 1];
    gw_fetch fetch[GW_FETCH_MAX];
    Baygate__FetchStatus fs[GW_FETCH_MAX];
    Baygate__FetchStatus *fsp[GW_FETCH_MAX];
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
    /* What the transport closed or refused before a request was read, by cause
     * (peers/README.md, "Hostile load"); only the causes that happened. */
    const struct {
        const char *name;
        uint64_t v;
    } cuts[] = {
        {"cut:handshake-timeout", ts.hs_timeouts},
        {"cut:per-source", ts.source_limited},
        {"cut:descriptor-reserve", ts.fd_reserve_cuts},
        {"cut:memory-budget", ts.mem_refused},
        {"cut:max-conns", ts.conns_refused},
        {"cut:not-member", ts.conns_not_member},
        {"cut:per-city", ts.conns_city_limited},
        {"cut:evicted", ts.conns_evicted},
        {"cut:receive-deadline", ts.recv_deadline_cuts},
        {"cut:slow-reader", ts.slow_readers},
        {"listener-revived", ts.listener_revivals},
    };
    for (size_t k = 0; k < sizeof cuts / sizeof cuts[0]; k++) {
        if (cuts[k].v == 0)
            continue;
        add_counter(&b->counters[nc], &b->counterp[nc], cuts[k].name, cuts[k].v);
        nc++;
    }
    uint64_t lr = atomic_load(&gw->local_refused);
    if (lr != 0) {
        add_counter(&b->counters[nc], &b->counterp[nc], "local-refused", lr);
        nc++;
    }
    uint64_t cr = atomic_load(&gw->cosigs_refused);
    if (cr != 0) {
        add_counter(&b->counters[nc], &b->counterp[nc], "cosign-refused", cr);
        nc++;
    }
    for (int k = 0; k < GW_RATE_KINDS; k++) {
        uint64_t v = gw_rate_refused(&gw->rate, (gw_rate_kind)k);
        if (v == 0)
            continue;
        snprintf(b->counter_names[nc], sizeof b->counter_names[nc], "rate-limited:%s",
                 gw_rate_kind_name((gw_rate_kind)k));
        add_counter(&b->counters[nc], &b->counterp[nc], b->counter_names[nc], v);
        nc++;
    }
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

/* Every list we publish now: key generation, epoch, entries, when. */
static void
status_lists(bg_gw *gw, status_buf *b)
{
    Baygate__StatusAnswer *sa = &b->sa;
    for (int i = 0; i < BG_PUB_LISTS; i++) {
        const char *name = i < BG_LIST_COUNT ? bg_list_names[i] : BG_LIST_GRADES;
        bg_pub_snap *ps = bg_pub_get(gw->pub, name);
        if (ps == NULL)
            continue;
        Baygate__ListStatus *l = &b->lists[sa->n_lists];
        baygate__list_status__init(l);
        l->list = (char *)name;
        l->generation = ps->info.generation;
        l->epoch = ps->info.epoch;
        l->entries = ps->info.count;
        l->published_ms = ps->published_ms;
        bg_pub_snap_release(ps);
        b->listp[sa->n_lists++] = l;
    }
    sa->lists = b->listp;
    uint8_t *bytes = NULL;
    size_t len = 0;
    bg_attest_status *as = NULL;
    if (bg_pub_status(gw->pub, &bytes, &len, NULL) == BG_OK &&
        bg_attest_status_inspect(bytes, len, &as, NULL) == BG_OK) {
        sa->status_list_number = bg_attest_status_number(as);
        sa->status_list_issued_ms = bg_attest_status_issued_at(as) * 1000;
    }
    bg_attest_status_free(as);
    free(bytes);
}

/* Every peer the roster lets ask us: items asked today, against its daily quota. */
static void
status_quotas(bg_gw *gw, const bg_roster *r, status_buf *b)
{
    Baygate__StatusAnswer *sa = &b->sa;
    size_t np = r ? bg_roster_permission_count(r) : 0;
    for (size_t i = 0; i < np && sa->n_quotas < BG_ROSTER_MAX_MEMBERS; i++) {
        const bg_roster_perm *perm = bg_roster_permission_at(r, i);
        if (strcmp(perm->answerer, gw->cfg.city) != 0)
            continue;
        size_t k = sa->n_quotas;
        Baygate__QuotaStatus *q = &b->quotas[k];
        baygate__quota_status__init(q);
        memcpy(b->askers[k], perm->asker, sizeof b->askers[k]);
        q->peer = b->askers[k];
        q->used_today = gw_quota_used(&gw->quota, perm->asker);
        q->quota_per_day = perm->quota_items_per_day;
        b->quotap[sa->n_quotas++] = q;
    }
    sa->quotas = b->quotap;
}

/* The row of witness city in b (made, with nothing cosigned, if new); NULL when full. */
static Baygate__WitnessStatus *
witness_row(status_buf *b, const char *city)
{
    Baygate__EvidenceStatus *ev = &b->ev;
    for (size_t i = 0; i < ev->n_witnesses; i++)
        if (strcmp(ev->witnesses[i]->witness, city) == 0)
            return ev->witnesses[i];
    if (ev->n_witnesses == BG_ROSTER_MAX_MEMBERS)
        return NULL;
    size_t k = ev->n_witnesses++;
    baygate__witness_status__init(&b->wit[k]);
    snprintf(b->witnesses[k], sizeof b->witnesses[k], "%s", city);
    b->wit[k].witness = b->witnesses[k];
    b->witp[k] = &b->wit[k];
    return &b->wit[k];
}

/* Our evidence log, its last signed head, and each witness's latest cosignature of ours
 * (every peer gets a row, cosigned or not; other cities that cosigned one found on the
 * way). */
static void
status_evidence(bg_gw *gw, gw_peer *const *peers, size_t n, status_buf *b)
{
    Baygate__EvidenceStatus *ev = &b->ev;
    baygate__evidence_status__init(ev);
    ev->witnesses = b->witp;
    b->sa.evidence = ev;
    for (size_t i = 0; i < n; i++)
        witness_row(b, peers[i]->city);
    if (gw->audit == NULL)
        return;
    ev->size = bg_audit_size(gw->audit);
    if (bg_audit_root(gw->audit, ev->size, b->root, NULL) == BG_OK)
        ev->root = (ProtobufCBinaryData){.data = b->root, .len = BG_AUDIT_HASH_LEN};
    bg_audit_head h;
    if (bg_audit_head_latest(gw->audit, &h, NULL) == BG_OK) {
        ev->head_size = h.size;
        memcpy(b->head_root, h.root, BG_AUDIT_HASH_LEN);
        ev->head_root = (ProtobufCBinaryData){.data = b->head_root, .len = BG_AUDIT_HASH_LEN};
        ev->head_time_ms = h.timestamp_ms;
    }
    /* Newest first (they are kept in the order they came, and a witness's sizes never
     * shrink): the first one of a witness is its latest; done once every peer has one. */
    bg_audit_cosig c;
    size_t missing = n;
    pthread_mutex_lock(&gw->witness_store_lock);
    size_t nr = gw->witness ? bg_audit_witness_received_count(gw->witness) : 0;
    for (size_t i = nr; i-- > 0 && missing > 0;) {
        if (bg_audit_witness_received(gw->witness, i, &c, NULL) != BG_OK)
            continue;
        Baygate__WitnessStatus *w = witness_row(b, c.witness);
        if (w == NULL || w->cosigned_ms != 0)
            continue;
        w->size = c.head.size;
        w->cosigned_ms = c.cosigned_at_ms;
        for (size_t k = 0; k < n; k++)
            missing -= strcmp(peers[k]->city, c.witness) == 0;
    }
    pthread_mutex_unlock(&gw->witness_store_lock);
}

/* Peers' snapshots being fetched now, and how far each is. */
static void
status_fetches(bg_gw *gw, status_buf *b)
{
    size_t n = gw_fetch_list(&gw->fetches, b->fetch, GW_FETCH_MAX);
    int64_t now = bg_clock_ms();
    for (size_t i = 0; i < n; i++) {
        const gw_fetch *f = &b->fetch[i];
        Baygate__FetchStatus *fs = &b->fs[i];
        baygate__fetch_status__init(fs);
        fs->peer = b->fetch[i].city;
        fs->list = b->fetch[i].list;
        fs->generation = f->generation;
        fs->epoch = f->epoch;
        fs->delta = f->delta;
        fs->chunks = f->chunks;
        fs->chunks_received = f->chunks_received;
        fs->bytes = f->bytes;
        fs->bytes_received = f->bytes_received;
        fs->elapsed_ms = now > f->started_ms ? (uint64_t)(now - f->started_ms) : 0;
        b->fsp[i] = fs;
    }
    b->sa.n_fetches = n;
    b->sa.fetches = b->fsp;
}

/* Our certificate in use and how the roster pins it; our process (a reload signal). */
static void
own_cert(bg_gw *gw, status_buf *b)
{
    uint8_t fp[BG_SIG_FP_LEN];
    b->sa.cert_pinned = (char *)gw_own_pin(gw, fp);
    bg_sig_fp_hex(fp, b->cert_hex);
    b->sa.cert_sha256 = b->cert_hex;
    b->sa.pid = (uint32_t)getpid();
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
    status_evidence(gw, peers, n, b);
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
    status_quotas(gw, r, b);
    bg_roster_free(r);
    time_t next = 0;
    if (bg_trust_crl_next_update(gw->trust, &next, NULL) == BG_OK)
        sa->crl_next_update_ms = (int64_t)next * 1000;
    bg_trust_crl_number(gw->trust, &sa->crl_number, NULL);
    sa->crl_warn_hours = gw->cfg.crl_warn_hours;
    gw_ident *me = gw_ident_get(gw); /* a rotation may swap it meanwhile */
    time_t not_after = 0;
    if (bg_pki_asn1_time(X509_get0_notAfter(me->id->cert), &not_after, NULL) == BG_OK)
        sa->cert_not_after_ms = (int64_t)not_after * 1000;
    gw_ident_release(me);
    sa->cert_warn_days = GW_CERT_WARN_DAYS;
    sa->listen = (char *)bg_tp_server_url(gw->fed);
    status_lists(gw, b);
    own_cert(gw, b);
    sa->standing = (char *)gw_standing_name(gw);
    status_fetches(gw, b);
}

/* ------------------------------------------------------------- lookup */

#define LOOKUP_TEXT 256 /* bytes kept of a stored name or reason */

/* Everything a lookup answer points into. */
typedef struct lookup_buf {
    Baygate__LookupAnswer la;
    Baygate__LookupEntry ent[BG_LIST_COUNT];
    Baygate__LookupEntry *entp[BG_LIST_COUNT];
    char uscc[BG_USCC_LEN + 1], name[LOOKUP_TEXT];
    char reason[BG_LIST_COUNT][LOOKUP_TEXT], dates[BG_LIST_COUNT][2][11];
    char grade[BG_GRADE_MAX + 1], scale[32], eval[11], until[11], common[BG_GRADE_MAX + 1];
} lookup_buf;

static void
col_copy(sqlite3_stmt *st, int col, char *out, size_t n)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    snprintf(out, n, "%s", t ? (const char *)t : "");
}

/* Fills b->la from the store's rows of b->uscc (prepared statements, read only). */
static int
lookup_rows(sqlite3 *db, lookup_buf *b)
{
    Baygate__LookupAnswer *la = &b->la;
    sqlite3_stmt *st = NULL;
    int32_t today = bg_date_today();
    int rc = sqlite3_prepare_v2(db, "SELECT name FROM enterprises WHERE uscc = ?1", -1, &st, NULL);
    if (rc == SQLITE_OK && sqlite3_bind_text(st, 1, b->uscc, -1, SQLITE_STATIC) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        la->found = true;
        col_copy(st, 0, b->name, sizeof b->name);
        la->name = b->name;
    }
    sqlite3_finalize(st);
    rc = sqlite3_prepare_v2(db,
                            "SELECT list, reason, listed_at, coalesce(expires_at, '') FROM "
                            "list_entries WHERE uscc = ?1 ORDER BY list",
                            -1, &st, NULL);
    sqlite3_bind_text(st, 1, b->uscc, -1, SQLITE_STATIC);
    while (rc == SQLITE_OK && la->n_entries < BG_LIST_COUNT && sqlite3_step(st) == SQLITE_ROW) {
        size_t k = la->n_entries;
        const unsigned char *list = sqlite3_column_text(st, 0);
        int li = list ? bg_list_index((const char *)list, strlen((const char *)list)) : -1;
        if (li < 0)
            continue;
        Baygate__LookupEntry *e = &b->ent[k];
        baygate__lookup_entry__init(e);
        e->list = (char *)bg_list_names[li];
        col_copy(st, 1, b->reason[k], sizeof b->reason[k]);
        col_copy(st, 2, b->dates[k][0], sizeof b->dates[k][0]);
        col_copy(st, 3, b->dates[k][1], sizeof b->dates[k][1]);
        e->reason = b->reason[k];
        e->listed_at = b->dates[k][0];
        e->expires_at = b->dates[k][1];
        int32_t x = 0;
        e->in_force =
            b->dates[k][1][0] == '\0' || (bg_date_parse(b->dates[k][1], 10, &x, NULL) == BG_OK &&
                                          bg_list_entry_in_force(x, today));
        b->entp[la->n_entries++] = e;
    }
    sqlite3_finalize(st);
    la->entries = b->entp;
    rc = sqlite3_prepare_v2(db,
                            "SELECT grade, scale, evaluated_at, valid_until FROM evaluations "
                            "WHERE uscc = ?1",
                            -1, &st, NULL);
    sqlite3_bind_text(st, 1, b->uscc, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
        la->graded = true;
        col_copy(st, 0, b->grade, sizeof b->grade);
        col_copy(st, 1, b->scale, sizeof b->scale);
        col_copy(st, 2, b->eval, sizeof b->eval);
        col_copy(st, 3, b->until, sizeof b->until);
        int32_t v = 0;
        la->valid = bg_date_parse(b->until, strlen(b->until), &v, NULL) == BG_OK && v >= today;
    }
    sqlite3_finalize(st);
    return BG_OK;
}

/* The common-scale grade of our own grade, as the roster maps it. */
static void
lookup_common(bg_gw *gw, lookup_buf *b)
{
    bg_roster *r = gw_roster_get(gw);
    uint32_t rank = 0;
    const bg_scale *cs = r ? bg_roster_common_scale(r) : NULL;
    if (cs != NULL && bg_roster_common_rank(r, gw->cfg.city, b->grade, &rank, NULL) == BG_OK &&
        rank >= 1 && rank <= cs->ngrades) {
        b->la.common_rank = rank;
        snprintf(b->common, sizeof b->common, "%s", cs->grades[rank - 1]);
    }
    bg_roster_free(r);
}

/* Lookup of one of our own enterprises: what our store holds (the peers' part is the
 * CLI's LocalQuery per list). */
static void
local_lookup(bg_gw *gw, const Baygate__LocalLookup *ll, Baygate__LocalAnswer *ans, lookup_buf *b,
             char *errbuf, size_t n)
{
    bg_uscc u;
    bg_err err = {0};
    const char *in = ll->uscc ? ll->uscc : "";
    if (bg_uscc_parse(in, strnlen(in, BG_USCC_INPUT_MAX + 1), &u, &err) != BG_OK) {
        ans->error_code = BG_GW_E_INVALID_IDS;
        snprintf(errbuf, n, "not a valid USCC: %.200s", err.msg);
        ans->error = errbuf;
        return;
    }
    Baygate__LookupAnswer *la = &b->la;
    baygate__lookup_answer__init(la);
    memcpy(b->uscc, u.code, sizeof b->uscc);
    la->uscc = b->uscc;
    la->city = gw->cfg.city;
    la->city_name = gw->cfg.name;
    la->name = la->grade = la->scale = la->evaluated_at = la->valid_until = "";
    bg_store *st = NULL;
    if (bg_store_open(&st, gw->cfg.data_dir, NULL, NULL, &err) != BG_OK) {
        ans->error_code = BG_GW_E_INTERNAL;
        snprintf(errbuf, n, "our store: %.200s", err.msg);
        ans->error = errbuf;
        return;
    }
    lookup_rows(bg_store_db(st), b);
    bg_store_close(st);
    if (la->graded) {
        lookup_common(gw, b);
        la->grade = b->grade;
        la->scale = b->scale;
        la->evaluated_at = b->eval;
        la->valid_until = b->until;
        la->common_grade = b->common;
    }
    ans->result_case = BAYGATE__LOCAL_ANSWER__RESULT_LOOKUP;
    ans->lookup = la;
}

/* Everything a local answer may point into, freed once it is packed. */
typedef struct local_buf {
    Baygate__PingResult pr;
    char errbuf[300], namebuf[BG_PKI_NAME_MAX + 1], peer[BG_CITY_CODE_LEN + 1];
    status_buf *sb;
    lookup_buf *lb;
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

bool
gw_local_uid_allowed(uid_t uid, uid_t self)
{
    return uid == 0 || uid == self;
}

#define LOCAL_REFUSED_LOG_EVERY_S 10

/* The caller may use the local API (local.h); else it is refused, logged at most once
 * per LOCAL_REFUSED_LOG_EVERY_S, and req is gone. */
static bool
local_caller_allowed(bg_gw *gw, bg_tp_request *req)
{
    static _Atomic int64_t logged_at;
    bg_tp_peer peer = {.addr = "?"};
    bg_err err = {0};
    bool known = bg_tp_request_peer(req, &peer, &err) == BG_OK && peer.local;
    if (known && gw_local_uid_allowed(peer.uid, geteuid()))
        return true;
    atomic_fetch_add(&gw->local_refused, 1);
    int64_t now = (int64_t)time(NULL), at = atomic_load(&logged_at);
    if (now - at >= LOCAL_REFUSED_LOG_EVERY_S &&
        atomic_compare_exchange_strong(&logged_at, &at, now))
        bg_log(BG_LOG_WARN, "local.refused", "uid=%lld gid=%lld pid=%lld refused=%llu",
               known ? (long long)peer.uid : -1LL, known ? (long long)peer.gid : -1LL,
               known ? (long long)peer.pid : -1LL,
               (unsigned long long)atomic_load(&gw->local_refused));
    Baygate__LocalAnswer ans = BAYGATE__LOCAL_ANSWER__INIT;
    ans.error_code = BG_GW_E_NOT_OWNER;
    ans.error = "only the gateway's own user (or root) may use its local API";
    size_t out_len = baygate__local_answer__get_packed_size(&ans);
    uint8_t *out = malloc(out_len ? out_len : 1);
    if (out != NULL)
        baygate__local_answer__pack(&ans, out);
    gw_reply_or_drop(gw, NULL, req, out, out_len);
    return false;
}

uint8_t *
gw_local_answer(bg_gw *gw, const uint8_t *data, size_t len, size_t *out_len)
{
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
        uint8_t *qout = psi_local_query(gw, lr->query, out_len);
        bg_pb_free(lr);
        return qout;
    } else if (lr->op_case == BAYGATE__LOCAL_REQUEST__OP_ROTATE && lr->rotate != NULL) {
        local_rotate(gw, lr->rotate, &ans, &b);
    } else if (lr->op_case == BAYGATE__LOCAL_REQUEST__OP_STATUS && lr->status != NULL) {
        local_status_op(gw, lr->status, &ans, &b);
    } else if (lr->op_case == BAYGATE__LOCAL_REQUEST__OP_LOOKUP && lr->lookup != NULL) {
        if ((b.lb = calloc(1, sizeof *b.lb)) == NULL) {
            ans.error_code = BG_GW_E_INTERNAL;
            ans.error = "out of memory";
        } else {
            local_lookup(gw, lr->lookup, &ans, b.lb, b.errbuf, sizeof b.errbuf);
        }
    } else {
        ans.error_code = BG_GW_E_UNKNOWN_BODY;
        ans.error = "unknown local request";
    }

    *out_len = baygate__local_answer__get_packed_size(&ans);
    uint8_t *out = malloc(*out_len ? *out_len : 1);
    if (out != NULL)
        baygate__local_answer__pack(&ans, out);
    free(b.sb);
    free(b.lb);
    if (lr != NULL)
        bg_pb_free(lr);
    return out;
}

void
gw_local_handle(void *ctx, bg_tp_request *req)
{
    bg_gw *gw = ctx;
    atomic_fetch_add(&gw->local_busy, 1); /* what a stop would wait for */
    if (local_caller_allowed(gw, req)) {
        size_t len = 0, out_len = 0;
        const uint8_t *data = bg_tp_request_data(req, &len);
        uint8_t *out = gw_local_answer(gw, data, len, &out_len);
        gw_reply_or_drop(gw, NULL, req, out, out_len);
    }
    atomic_fetch_sub(&gw->local_busy, 1);
}
