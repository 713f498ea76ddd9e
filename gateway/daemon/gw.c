/*
 * gw.c - the gateway daemon's top: start, stop, hot reload of CRL and roster, and the
 * dispatch of federation requests to their handlers (see gw.h; the files below it in
 * README.md). Locking of the roster and the peer table: core.c.
 */
#include "gateway/daemon/gw.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "certs/pki.h"
#include "certs/trust.h"
#include "common/file.h"
#include "gateway/config/config.h"
#include "gateway/daemon/core.h"
#include "gateway/daemon/evidence.h"
#include "gateway/daemon/gw_int.h"
#include "gateway/daemon/local.h"
#include "gateway/daemon/log.h"
#include "gateway/daemon/ping.h"
#include "gateway/daemon/policy.h"
#include "gateway/daemon/psi_answer.h"
#include "gateway/daemon/psi_pub.h"
#include "gateway/daemon/relay.h"
#include "gateway/daemon/standing.h"
#include "gateway/daemon/witness.h"
#include "gateway/daemon/witnessed.h"
#include "peers/envelope.h"
#include "peers/roster.h"
#include "peers/transport.h"
#include "proto/api.pb-c.h"
#include "proto/psi.pb-c.h"
#include "proto/relay.pb-c.h"
#include "proto/witness.pb-c.h"

#define GW_CRL_WARN_EVERY_S 600
/* A CRL or roster that keeps failing to load (retried every tick) is logged this often
 * per cause. */
#define GW_RETRY_LOG_S 60
#define GW_REPLAY_CAPACITY (1u << 19)

/* ------------------------------------------------------------- helpers */

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

_Static_assert(BG_ROSTER_PINS_MAX == BG_ENV_PINS_MAX, "the roster pins what the envelope takes");

/* The roster callback of the envelope verifier: is city a member, with which
 * pinned certificates? Thread-safe: it takes its own roster reference. */
static int
member_fp(void *ctx, const char *city, uint8_t fp[BG_ENV_PINS_MAX][BG_SIG_FP_LEN], size_t *n)
{
    bg_roster *r = gw_roster_get(ctx);
    int rc = r != NULL ? bg_roster_member_fp(r, city, fp, n) : BG_ENOTFOUND;
    bg_roster_free(r);
    return rc;
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
    atomic_init(&p->calls, 0);
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

#define GW_CITY_CONNS 8 /* a gateway needs one or two; reloads briefly double them */

/* ------------------------------------------------------------ dispatch */

/* A request whose envelope did not open: answered with a signed refusal when the
 * envelope layer says the sender may learn why, else dropped; counted either way. */
static void
refuse_unopened(bg_gw *gw, bg_tp_request *req, bg_env_reason why, const bg_env_refusal *ref,
                const bg_err *err)
{
    bg_tp_peer peer = {.addr = "?"};
    bg_tp_request_peer(req, &peer, NULL);
    char q[300];
    uint8_t *out = NULL;
    size_t out_len = 0;
    size_t max_msg = gw_max_message(gw);
    gw_ident *me = gw_ident_get(gw);
    if (bg_env_refusal_answerable(ref) &&
        bg_env_seal_refusal(me->id, ref, max_msg, &out, &out_len, NULL) == BG_OK) {
        atomic_fetch_add(&gw->refused[why], 1);
        bg_log(BG_LOG_WARN, "request.refused", "reason=%s sender=%s addr=%s msg=\"%s\"",
               bg_env_reason_name(why), ref->sender, peer.addr,
               gw_quoted(ref->message, q, sizeof q));
    } else {
        atomic_fetch_add(&gw->dropped[why], 1);
        bg_log(BG_LOG_WARN, "request.dropped", "reason=%s addr=%s msg=\"%s\"",
               bg_env_reason_name(why), peer.addr, gw_quoted(err->msg, q, sizeof q));
    }
    gw_ident_release(me);
    /* A sender the roster does not admit (not a member, or not the certificate it
     * pins) must not hold a connection a member could use: tagged before the reply
     * (which hands req back), the transport closes the connection once the refusal
     * is out. Dropped requests stay unanswered as before: their sender is unproven. */
    if (bg_env_refusal_answerable(ref) && (why == BG_ENV_NOT_MEMBER || why == BG_ENV_PIN_MISMATCH))
        bg_tp_request_tag(req, ref->sender, false, NULL);
    gw_reply_or_drop(gw, NULL, req, out, out_len);
}

/* An authenticated request of a body type nobody here serves. */
static void
refuse_unknown_body(bg_gw *gw, gw_ev *ev, const bg_env_opened *o, bg_tp_request *req)
{
    uint8_t *out = NULL;
    size_t out_len = 0;
    char msg[64];
    snprintf(msg, sizeof msg, "body type %u is not served here", o->body_type);
    atomic_fetch_add(&gw->app_errors, 1);
    gw_ident *me = gw_ident_get(gw);
    bg_env_seal_error(me->id, o, BG_GW_E_UNKNOWN_BODY, msg, gw_max_message(gw), &out, &out_len,
                      NULL);
    gw_ident_release(me);
    bg_log(BG_LOG_WARN, "request.refused", "reason=unknown_body peer=%s body_type=%u", o->sender,
           o->body_type);
    gw_ev_refused(ev, BG_GW_E_UNKNOWN_BODY, msg);
    gw_reply_or_drop(gw, ev, req, out, out_len);
}

/* The rate kind of a body type; GW_RATE_KINDS: none (refused as unknown anyway). */
static gw_rate_kind
rate_kind(uint32_t body_type)
{
    switch (body_type) {
    case BAYGATE__APP_BODY__APP_BODY_PING:
        return GW_RATE_PING;
    case BAYGATE__PSI_BODY__PSI_BODY_SNAPSHOT_REQUEST:
        return GW_RATE_SNAPSHOT;
    case BAYGATE__PSI_BODY__PSI_BODY_QUERY:
        return GW_RATE_PSI;
    case BAYGATE__PSI_BODY__PSI_BODY_STATUS_REQUEST:
        return GW_RATE_STATUS;
    case BAYGATE__WITNESS_BODY__WITNESS_BODY_HEAD_REQUEST:
    case BAYGATE__WITNESS_BODY__WITNESS_BODY_COSIGN:
    case BAYGATE__WITNESS_BODY__WITNESS_BODY_COSIGNED_REQUEST:
        return GW_RATE_WITNESS;
    default:
        return GW_RATE_KINDS;
    }
}

/* The federation server's request handler. */
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
        refuse_unopened(gw, req, why, &ref, &err);
        return;
    }
    /* The connection is this member's: it counts against the city's share. */
    bg_tp_request_tag(req, o->sender, true, NULL);
    if (o->cert_der != NULL) {
        gw_peer *p = gw_peer_get(gw, o->sender);
        if (p != NULL)
            gw_peer_learn_cert(p, o);
        gw_peer_release(p);
    }
    /* Every kind of request has its rate per sender (rate.h), checked before any work. */
    gw_rate_kind kind = rate_kind(o->body_type);
    if (kind != GW_RATE_KINDS && !gw_policy_rate(gw, o, req, kind)) {
        bg_env_opened_free(o);
        return;
    }
    /* Authenticated from here on: the exchange leaves evidence (evidence.h). */
    gw_ev ev;
    gw_ev_inbound(&ev, o);
    ev.rate_kind = kind != GW_RATE_KINDS ? (int)kind : -1;
    switch (o->body_type) {
    case BAYGATE__APP_BODY__APP_BODY_PING:
        gw_ping_answer(gw, &ev, o, req);
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
    case BAYGATE__RELAY_BODY__RELAY_BODY_OFFER:
        gw_relay_answer(gw, o, req);
        break;
    case BAYGATE__WITNESS_BODY__WITNESS_BODY_COSIGNED_REQUEST:
        gw_witnessed_answer(gw, o, req);
        break;
    default:
        refuse_unknown_body(gw, &ev, o, req);
    }
    bg_env_opened_free(o);
}

/* ------------------------------------------------------- reload, warn */

/* New TLS configs everywhere (the listener, every peer's dialer) from the PEM material
 * now: connections made under the old material end (peers/transport.h). new_cert: our
 * certificate changed, so peers learn it again from our next request. */
static void
reload_tls(bg_gw *gw, bool new_cert)
{
    bg_err err = {0};
    bg_tp_tls tls = tls_material(gw);
    if (bg_tp_server_reload_tls(gw->fed, &tls, &err) != BG_OK)
        bg_log(BG_LOG_ERROR, "listener.reload_failed", "error=\"%s\"", err.msg);
    gw_peer *peers[BG_ROSTER_MAX_MEMBERS];
    size_t n = gw_peers_get(gw, peers);
    for (size_t i = 0; i < n; i++) {
        if (new_cert)
            atomic_store(&peers[i]->cert_known, false);
        if (bg_tp_client_reload_tls(peers[i]->cli, &tls, &err) != BG_OK)
            bg_log(BG_LOG_ERROR, "peer.reload_failed", "peer=%s error=\"%s\"", peers[i]->city,
                   err.msg);
        gw_peer_release(peers[i]);
    }
}

/* A warning when recv_max_bytes is below the roster's max_message_bytes: a peer's
 * answer may be that large (a big PSI chunk, a snapshot chunk) and would be cut off. */
static void
warn_small_recv(bg_gw *gw, const bg_roster *r)
{
    if (r != NULL && gw->cfg.recv_max_bytes < bg_roster_max_message_bytes(r))
        bg_log(BG_LOG_WARN, "config.recv_max_small",
               "recv_max_bytes=%llu max_message_bytes=%u effect=\"answers from peers above "
               "recv_max_bytes are refused; raise it in baygate.ini\"",
               (unsigned long long)gw->cfg.recv_max_bytes, bg_roster_max_message_bytes(r));
}

/* A warning (at start, after every reload) when the roster pins neither our current
 * certificate nor our next one: peers refuse us until a roster does. */
static void
warn_unpinned(bg_gw *gw, const char *after)
{
    uint8_t fp[BG_SIG_FP_LEN];
    char hex[BG_SIG_FP_HEX_LEN + 1];
    if (gw_own_pin(gw, fp)[0] != '\0')
        return;
    bg_sig_fp_hex(fp, hex);
    bg_roster *r = gw_roster_get(gw);
    bg_log(BG_LOG_WARN, "identity.not_pinned",
           "after=%s cert_sha256=%s roster=%llu effect=\"peers refuse this gateway "
           "(pin-mismatch) until a roster pins this certificate as current or next\"",
           after, hex, (unsigned long long)bg_roster_serial(r));
    bg_roster_free(r);
}

/* city.key and city.crt as they are now, checked: they match, the certificate is this
 * city's, chains to the federation CA, is not revoked and is valid now. */
static int
identity_read(bg_gw *gw, bg_env_identity **out, bg_err *err)
{
    bg_env_identity *id = NULL;
    bg_trust_result tr;
    bg_err sub = {0};
    int rc = bg_env_identity_load(&id, NULL, gw->cfg.key_path, gw->cfg.cert_path, err);
    if (rc == BG_OK && strcmp(id->city, gw->cfg.city) != 0)
        rc = bg_err_set(err, BG_EINVAL, "%s is a certificate of %s; this gateway is %s",
                        gw->cfg.cert_path, id->city, gw->cfg.city);
    if (rc == BG_OK && bg_trust_verify(gw->trust, id->cert_der, id->cert_der_len, gw->cfg.city, &tr,
                                       NULL, &sub) != BG_OK)
        rc = bg_err_set(err, BG_ECRYPTO, "%s: %s", gw->cfg.cert_path, sub.msg);
    if (rc != BG_OK) {
        bg_env_identity_free(id);
        id = NULL;
    }
    *out = id;
    return rc;
}

/* Makes id (taken) our identity: for sealing, in every TLS config, for what we publish
 * and for the next tree head. Nothing changes if it cannot be made. */
static int
identity_install(bg_gw *gw, bg_env_identity *id, bg_err *err)
{
    char *key_pem = NULL, *cert_pem = NULL;
    size_t key_len = 0, cert_len = 0;
    int rc = bg_pki_key_pem(id->key, &key_pem, &key_len, err);
    if (rc == BG_OK)
        rc = bg_pki_cert_pem(id->cert, &cert_pem, &cert_len, err);
    gw_ident *next = NULL;
    if (rc == BG_OK && (next = gw_ident_new(id)) == NULL)
        rc = bg_err_set(err, BG_ENOMEM, "out of memory");
    if (rc != BG_OK) {
        if (key_pem != NULL)
            bg_pki_secret_free(key_pem, key_len);
        OPENSSL_free(cert_pem);
        if (next == NULL)
            bg_env_identity_free(id);
        return rc;
    }
    /* Sealing first, publications after: an answer carrying a publication is sealed
     * under the identity that signed it, the previous one until the builder re-signs. */
    gw_ident_swap(gw, next);
    bg_err sub = {0};
    if (bg_pub_set_identity(gw->pub, id->key, id->cert, &sub) != BG_OK)
        bg_log(BG_LOG_ERROR, "psi.resign_failed", "error=\"%s\"", sub.msg);
    bg_pki_secret_free(gw->key_pem, gw->key_pem_len);
    OPENSSL_free(gw->cert_pem);
    gw->key_pem = key_pem;
    gw->key_pem_len = key_len;
    gw->cert_pem = cert_pem;
    gw->cert_pem_len = cert_len;
    reload_tls(gw, true);
    gw_evidence_keep_cert(gw, id);
    gw_evidence_tick(gw, id->key, true); /* witnesses check our latest head under it */
    return BG_OK;
}

/* city.crt changed, or SIGHUP: a new pair that checks out becomes our identity; a bad
 * one is refused and logged, the one in use kept. The same certificate again: nothing. */
static void
reload_identity(bg_gw *gw)
{
    bg_env_identity *id = NULL;
    bg_err err = {0};
    gw_ident *cur = gw_ident_get(gw);
    char was[BG_SIG_FP_HEX_LEN + 1], now[BG_SIG_FP_HEX_LEN + 1], until[BG_PKI_TIME_LEN] = "?";
    bg_sig_fp_hex(cur->id->fingerprint, was);
    int rc = identity_read(gw, &id, &err);
    bool same = rc == BG_OK && memcmp(id->fingerprint, cur->id->fingerprint, BG_SIG_FP_LEN) == 0;
    gw_ident_release(cur);
    if (same) {
        bg_env_identity_free(id);
        return;
    }
    if (rc == BG_OK) {
        bg_sig_fp_hex(id->fingerprint, now);
        time_t na = 0;
        if (bg_pki_asn1_time(X509_get0_notAfter(id->cert), &na, NULL) == BG_OK)
            bg_pki_time_format(na, until);
        rc = identity_install(gw, id, &err);
    }
    if (rc != BG_OK) {
        bg_log(BG_LOG_ERROR, "identity.refused",
               "cert=%s key=%s error=\"%s\" in_use=%s effect=\"keeping the certificate in "
               "use; a restart would fail until the pair is fixed\"",
               gw->cfg.cert_path, gw->cfg.key_path, err.msg, was);
        return;
    }
    bg_log(BG_LOG_INFO, "identity.reloaded", "cert_sha256=%s previous=%s not_after=%s", now, was,
           until);
    warn_unpinned(gw, "identity");
    gw_standing_check(gw, "identity");
}

/* A reload that failed with why: true if it is to be logged now (a new cause, or
 * GW_RETRY_LOG_S since it was), with *unlogged the tries in between that were not. The
 * next tick tries again, and again. */
static bool
retry_failed(gw_retry *r, const char *why, uint64_t *unlogged)
{
    time_t now = time(NULL);
    r->pending = true;
    if (strcmp(why, r->failure) == 0 && now - r->logged < GW_RETRY_LOG_S) {
        r->unlogged++;
        return false;
    }
    *unlogged = r->unlogged;
    snprintf(r->failure, sizeof r->failure, "%s", why);
    r->logged = now;
    r->unlogged = 0;
    return true;
}

/* A reload that worked: true if it had failed before. */
static bool
retry_done(gw_retry *r)
{
    bool was = r->pending;
    r->pending = false;
    r->failure[0] = '\0';
    r->unlogged = 0;
    return was;
}

/* A failed CRL reload, logged as retry_failed says. Returns false. */
static bool
crl_failed(bg_gw *gw, const char *event, const char *why)
{
    uint64_t unlogged = 0;
    if (!retry_failed(&gw->crl_retry, why, &unlogged))
        return false;
    uint64_t number = 0;
    bg_trust_crl_number(gw->trust, &number, NULL);
    bg_log(BG_LOG_ERROR, event,
           "path=%s error=\"%s\" number_in_force=%llu retries_unlogged=%llu "
           "effect=\"the CRL in force stays; tried again every second\"",
           gw->cfg.crl_path, why, (unsigned long long)number, (unsigned long long)unlogged);
    return false;
}

/* The CRL file into the trust store, to peers and into the TLS configs. false: it did
 * not load or was refused (logged by crl_failed); the CRL in force stays. A file holding
 * the CRL in force is taken as loaded without cutting connections (a forced reload). */
static bool
reload_crl(bg_gw *gw)
{
    bg_err err = {0};
    X509_CRL *crl = NULL;
    char *pem = NULL;
    size_t pem_len = 0;
    if (bg_pki_crl_load(gw->cfg.crl_path, &crl, &err) != BG_OK ||
        bg_pki_crl_pem(crl, &pem, &pem_len, &err) != BG_OK) {
        X509_CRL_free(crl);
        return crl_failed(gw, "crl.reload_failed", err.msg);
    }
    bool same = pem_len == gw->crl_pem_len && memcmp(pem, gw->crl_pem, pem_len) == 0;
    if (!same && gw->crl_refused_pem != NULL && pem_len == gw->crl_refused_len &&
        memcmp(pem, gw->crl_refused_pem, pem_len) == 0) {
        /* Its refusal is not transient: only a new file can change it. */
        X509_CRL_free(crl);
        OPENSSL_free(pem);
        return crl_failed(gw, "crl.refused", gw->crl_refusal);
    }
    if (!same) {
        /* Handed to every peer before it cuts anyone off (relay.h). */
        gw_relay_crl_new(gw, crl);
        /* The trust store refuses a CRL that is not the CA's or rolls back. */
        if (bg_trust_set_crl(gw->trust, crl, &err) != BG_OK) {
            X509_CRL_free(crl);
            OPENSSL_free(gw->crl_refused_pem);
            gw->crl_refused_pem = pem;
            gw->crl_refused_len = pem_len;
            snprintf(gw->crl_refusal, sizeof gw->crl_refusal, "%s", err.msg);
            return crl_failed(gw, "crl.refused", err.msg);
        }
    }
    uint64_t number = 0;
    bg_pki_crl_number(crl, &number, NULL);
    X509_CRL_free(crl);
    bool recovered = retry_done(&gw->crl_retry);
    if (same) {
        OPENSSL_free(pem);
        if (recovered)
            bg_log(BG_LOG_INFO, "crl.reloaded", "number=%llu unchanged=true",
                   (unsigned long long)number);
        return true;
    }
    OPENSSL_free(gw->crl_pem);
    gw->crl_pem = pem;
    gw->crl_pem_len = pem_len;
    /* Connections made under the old CRL end. */
    reload_tls(gw, false);
    gw->crl_warned_at = 0;
    bg_log(BG_LOG_INFO, "crl.reloaded", "number=%llu", (unsigned long long)number);
    gw_peers_check_revoked(gw);
    gw_standing_check(gw, "crl");
    return true;
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
    uint64_t unlogged = 0;
    if (rc != BG_OK) {
        if (retry_failed(&gw->roster_retry, err.msg, &unlogged))
            bg_log(BG_LOG_ERROR, "roster.refused",
                   "path=%s serial_in_use=%llu error=\"%s\" retries_unlogged=%llu "
                   "effect=\"the roster in use stays; tried again every second\"",
                   gw->cfg.roster_path, (unsigned long long)bg_roster_serial(cur), err.msg,
                   (unsigned long long)unlogged);
    } else if (unchanged) {
        if (retry_done(&gw->roster_retry))
            bg_log(BG_LOG_INFO, "roster.reloaded", "serial=%llu unchanged=true",
                   (unsigned long long)bg_roster_serial(cur));
        bg_roster_free(next);
    } else {
        retry_done(&gw->roster_retry);
        /* Socket limits and the verifier's bound are set when they are made. */
        if (bg_roster_max_message_bytes(next) != bg_roster_max_message_bytes(cur))
            bg_log(BG_LOG_WARN, "roster.max_message_changed",
                   "old=%u new=%u effect=\"takes effect at the next restart\"",
                   bg_roster_max_message_bytes(cur), bg_roster_max_message_bytes(next));
        warn_small_recv(gw, next);
        gw_relay_roster_new(gw, next); /* to every peer before it is ours (relay.h) */
        pthread_mutex_lock(&gw->lock);
        gw->roster = next;
        pthread_mutex_unlock(&gw->lock);
        peers_sync(gw, next);
        gw_peers_check_revoked(gw);
        bool offered[BG_LIST_COUNT];
        offered_lists(gw, next, offered);
        bg_pub_set_offered(gw->pub, offered);
        bg_log(BG_LOG_INFO, "roster.reloaded", "serial=%llu previous=%llu members=%zu",
               (unsigned long long)bg_roster_serial(next),
               (unsigned long long)bg_roster_serial(cur), bg_roster_member_count(next));
        gw_standing_check(gw, "roster");
        bg_roster_free(cur); /* the table's reference */
        warn_unpinned(gw, "roster");
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

/* cfg's [rate] as the rate buckets' limits. */
static void
apply_rates(bg_gw *gw, const bg_config *cfg)
{
    static const bg_config_rate_kind of[GW_RATE_KINDS] = {
        [GW_RATE_PING] = BG_CONFIG_RATE_PING,       [GW_RATE_SNAPSHOT] = BG_CONFIG_RATE_SNAPSHOT,
        [GW_RATE_PSI] = BG_CONFIG_RATE_PSI,         [GW_RATE_STATUS] = BG_CONFIG_RATE_STATUS,
        [GW_RATE_WITNESS] = BG_CONFIG_RATE_WITNESS,
    };
    gw_rate_limit l[GW_RATE_KINDS];
    for (int k = 0; k < GW_RATE_KINDS; k++) {
        const bg_config_rate *c = &cfg->rate[of[k]];
        l[k] = (gw_rate_limit){c->per_s, c->burst, c->bytes_per_s, c->bytes_burst};
    }
    gw_rate_set_limits(&gw->rate, l);
}

/* baygate.ini read again at SIGHUP: its [rate] applies now; the rest is read at start
 * only (gw->cfg is read without a lock by every thread, so it is never rewritten). A
 * file that does not load changes nothing. */
static void
reload_config(bg_gw *gw)
{
    char path[BG_CONFIG_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/%s", gw->cfg.dir, BG_CONFIG_FILE);
    bg_config *cfg = malloc(sizeof *cfg);
    bg_err err = {0};
    if (cfg == NULL) {
        bg_log(BG_LOG_ERROR, "config.reload_failed", "path=%s error=\"out of memory\"", path);
        return;
    }
    if (bg_config_load(path, cfg, &err) != BG_OK) {
        bg_log(BG_LOG_ERROR, "config.reload_failed",
               "path=%s error=\"%s\" effect=\"the rate limits in use stay\"", path, err.msg);
    } else {
        apply_rates(gw, cfg);
        const bg_config_rate *p = &cfg->rate[BG_CONFIG_RATE_PING],
                             *q = &cfg->rate[BG_CONFIG_RATE_PSI];
        bg_log(BG_LOG_INFO, "config.reloaded",
               "path=%s ping_per_s=%u ping_burst=%u psi_per_s=%u psi_burst=%u "
               "effect=\"[rate] applied; other changes take effect at the next restart\"",
               path, p->per_s, p->burst, q->per_s, q->burst);
    }
    free(cfg);
}

/* The CRL (trust) first, then the roster (pins), then our own certificate. */
static void
tick(bg_gw *gw, bool hup)
{
    if (hup)
        reload_config(gw);
    /* Not only when the file changed: a failed reload is tried until it succeeds, and
     * SIGHUP forces one (an unchanged CRL costs a read and no connection). */
    if (watch_changed(gw->cfg.crl_path, &gw->crl_watch) || gw->crl_retry.pending || hup)
        reload_crl(gw);
    if (watch_changed(gw->cfg.roster_path, &gw->roster_watch) || gw->roster_retry.pending || hup)
        reload_roster(gw);
    if (watch_changed(gw->cfg.cert_path, &gw->cert_watch) || hup)
        reload_identity(gw);
    warn_crl_expiry(gw);
    gw_standing_tick(gw);
    /* A separate `baygate import` may have committed: the builder looks. */
    bg_pub_poke(gw->pub);
    gw_ident *me = gw_ident_get(gw);
    gw_evidence_tick(gw, me->id->key, false);
    gw_ident_release(me);
}

void
bg_gw_tick(bg_gw *gw)
{
    tick(gw, false);
}

void
bg_gw_reload(bg_gw *gw)
{
    tick(gw, true);
}

/* ------------------------------------------------------- start, stop */

static int
load_pem_material(bg_gw *gw, bg_err *err)
{
    const bg_env_identity *id = gw->ident->id;
    int rc = bg_pki_key_pem(id->key, &gw->key_pem, &gw->key_pem_len, err);
    if (rc == BG_OK)
        rc = bg_pki_cert_pem(id->cert, &gw->cert_pem, &gw->cert_pem_len, err);
    if (rc == BG_OK)
        rc = bg_pki_cert_pem(gw->ca, &gw->ca_pem, &gw->ca_pem_len, err);
    X509_CRL *crl = NULL;
    if (rc == BG_OK)
        rc = load_crl_pem(gw, &crl, err);
    X509_CRL_free(crl);
    return rc;
}

/* The roster must list us. That it pins the certificate we hold (as current or next)
 * is warned about once we run (warn_unpinned): a later roster may fix it. */
static int
check_membership(bg_gw *gw, bg_err *err)
{
    const bg_roster_member *me = bg_roster_member_find(gw->roster, gw->cfg.city);
    if (me == NULL)
        return bg_err_set(err, BG_EINVAL, "roster serial %llu has no member %s",
                          (unsigned long long)bg_roster_serial(gw->roster), gw->cfg.city);
    return BG_OK;
}

static int
make_verifier(bg_gw *gw, bg_err *err)
{
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
    return bg_env_verifier_new(&gw->verifier, &vc, err);
}

/* Our key and certificate (city.key, city.crt), as the identity in use. */
static int
load_identity(bg_gw *gw, bg_err *err)
{
    bg_env_identity *id = NULL;
    int rc = bg_env_identity_load(&id, gw->cfg.dir, gw->cfg.key_path, gw->cfg.cert_path, err);
    if (rc == BG_OK && (gw->ident = gw_ident_new(id)) == NULL)
        rc = bg_err_set(err, BG_ENOMEM, "out of memory");
    return rc;
}

/* The gateway directory's material: configuration, key and certificate, CA, CRL, roster. */
static int
load_material(bg_gw *gw, const char *dir, bg_err *err)
{
    char path[BG_CONFIG_PATH_MAX + 32];
    int rc = BG_OK;
    if (snprintf(path, sizeof path, "%s/%s", dir, BG_CONFIG_FILE) >= (int)sizeof path)
        rc = bg_err_set(err, BG_EINVAL, "gateway directory path too long");
    if (rc == BG_OK)
        rc = bg_config_load(path, &gw->cfg, err);
    if (rc == BG_OK)
        apply_rates(gw, &gw->cfg);
    gw_quota_init(&gw->quota, rc == BG_OK ? gw->cfg.data_dir : NULL);
    if (rc == BG_OK)
        rc = load_identity(gw, err);
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
    if (rc == BG_OK)
        rc = check_membership(gw, err);
    if (rc == BG_OK)
        rc = make_verifier(gw, err);
    if (rc == BG_OK)
        rc = load_pem_material(gw, err);
    watch_changed(gw->cfg.crl_path, &gw->crl_watch);
    watch_changed(gw->cfg.roster_path, &gw->roster_watch);
    watch_changed(gw->cfg.cert_path, &gw->cert_watch);
    return rc;
}

/* The transport's limits and refusals, counted and logged once per cause per interval. */
static void
tp_log(void *ctx, const char *line)
{
    (void)ctx;
    bg_log(BG_LOG_WARN, "transport.limit", "%s", line);
}

static void
tp_ipc_log(void *ctx, const char *line)
{
    (void)ctx;
    bg_log(BG_LOG_WARN, "transport.local", "%s", line);
}

/* The two faces: the federation API (mutual TLS) and the local API (ipc). */
static int
start_servers(bg_gw *gw, bg_err *err)
{
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
        /* No city may hold more than this many connections, so strangers and one
         * busy member cannot lock the others out (peers/README.md). */
        .city_conns = GW_CITY_CONNS,
        .log = tp_log,
        .log_ctx = gw,
    };
    int rc = bg_tp_server_start(&gw->fed, &fo, err);
    if (rc != BG_OK)
        return rc;
    bg_tp_server_opts lo = {
        .url = gw->cfg.local_url,
        .recv_max = GW_LOCAL_RECV_MAX,
        .reply_max = GW_LOCAL_REPLY_MAX,
        /* A status probe waits for the slowest peer. */
        .request_timeout_ms = GW_LOCAL_TIMEOUT_MS,
        .ipc_mode = 0660,
        .handler = gw_local_handle,
        .handler_ctx = gw,
        .log = tp_ipc_log, /* a listener replaced (nng#1518) */
        .log_ctx = gw,
    };
    return bg_tp_server_start(&gw->local, &lo, err);
}

/* What a crash left of an atomic write (a quota charge, a key, a relayed CRL) is
 * removed before anything is written again: we hold the directory (serve.lock), so
 * no temp there is anyone's work in progress but a command's of this very moment. */
static void
remove_crash_temps(bg_gw *gw)
{
    static const char *const sub[] = {"", "/psi-keys", "/audit", "/audit/certs"};
    char path[BG_CONFIG_PATH_MAX + 32];
    for (size_t i = 0; i <= sizeof sub / sizeof sub[0]; i++) {
        if (i == 0)
            snprintf(path, sizeof path, "%s", gw->cfg.dir);
        else if (snprintf(path, sizeof path, "%s%s", gw->cfg.data_dir, sub[i - 1]) >=
                 (int)sizeof path)
            continue;
        size_t n = 0;
        bg_err err = {0};
        if (bg_file_remove_temps(path, &n, &err) != BG_OK)
            bg_log(BG_LOG_WARN, "gateway.temp_not_removed", "error=\"%s\"", err.msg);
        if (n > 0)
            bg_log(BG_LOG_WARN, "gateway.temp_removed",
                   "dir=%s files=%zu effect=\"left by a crash in the middle of a write\"", path, n);
    }
}

int
bg_gw_start(bg_gw **out, const char *dir, bg_err *err)
{
    *out = NULL;
    bg_gw *gw = calloc(1, sizeof *gw);
    if (gw == NULL)
        return bg_err_set(err, BG_ENOMEM, "out of memory");
    pthread_mutex_init(&gw->lock, NULL);
    gw_rate_init(&gw->rate);
    gw_cache_init(&gw->cache);
    gw_fetches_init(&gw->fetches);
    gw->started = time(NULL);

    int rc = load_material(gw, dir, err);
    if (rc == BG_OK) {
        remove_crash_temps(gw);
        rc = gw_evidence_start(gw, gw->ident->id, err);
    }
    if (rc == BG_OK)
        rc = gw_witness_start(gw, err);
    if (rc == BG_OK)
        rc = gw_relay_start(gw, err);
    if (rc == BG_OK) {
        /* Publishing starts before the listener: the first snapshots build meanwhile. */
        bool offered[BG_LIST_COUNT];
        offered_lists(gw, gw->roster, offered);
        rc = bg_pub_start(&gw->pub, gw->cfg.data_dir, gw->cfg.city, gw->ident->id->key,
                          gw->ident->id->cert, offered, err);
    }
    /* Before we answer anyone: is our evidence log behind what witnesses hold? */
    if (rc == BG_OK) {
        peers_sync(gw, gw->roster);
        rc = gw_witnessed_check(gw, err);
    }
    if (rc == BG_OK)
        rc = start_servers(gw, err);
    if (rc != BG_OK) {
        bg_gw_stop(gw);
        return rc;
    }
    bg_log(BG_LOG_INFO, "gateway.ready", "city=%s name=%s listen=%s local=%s roster=%llu peers=%zu",
           gw->cfg.city, gw->cfg.name, bg_tp_server_url(gw->fed), gw->cfg.local_url,
           (unsigned long long)bg_roster_serial(gw->roster), gw->npeers);
    warn_crl_expiry(gw);
    warn_small_recv(gw, gw->roster);
    warn_unpinned(gw, "start");
    gw_standing_check(gw, "start");
    *out = gw;
    return BG_OK;
}

size_t
bg_gw_busy(bg_gw *gw, char *buf, size_t n)
{
    size_t k = 0;
    buf[0] = '\0';
    gw_peer *peers[BG_ROSTER_MAX_MEMBERS];
    size_t np = gw_peers_get(gw, peers);
    for (size_t i = 0; i < np; i++) {
        unsigned c = atomic_load(&peers[i]->calls);
        if (c > 0 && k < n)
            k += (size_t)(c > 1 ? snprintf(buf + k, n - k, "%speer-call:%sx%u", k ? "," : "",
                                           peers[i]->city, c)
                                : snprintf(buf + k, n - k, "%speer-call:%s", k ? "," : "",
                                           peers[i]->city));
        gw_peer_release(peers[i]);
    }
    unsigned local = atomic_load(&gw->local_busy);
    if (local > 0 && k < n)
        k += (size_t)snprintf(buf + k, n - k, "%slocal-request:%u", k ? "," : "", local);
    if (k == 0)
        snprintf(buf, n, "nothing");
    return k < n ? k : n - 1;
}

/* Every round trip to a peer ends now (BG_TP_CLOSED), and later ones at once: a stop
 * never waits for a peer that does not answer (the witness thread, local requests
 * and PSI jobs waiting on peers all return). */
static void
abort_peer_calls(bg_gw *gw)
{
    gw_peer *peers[BG_ROSTER_MAX_MEMBERS];
    size_t n = gw_peers_get(gw, peers);
    for (size_t i = 0; i < n; i++) {
        bg_tp_client_abort(peers[i]->cli);
        gw_peer_release(peers[i]);
    }
}

void
bg_gw_stop(bg_gw *gw)
{
    if (gw == NULL)
        return;
    /* Peer calls are aborted first: whatever waits on a peer returns now. The witness
     * thread calls peers: it goes next. Then stop taking requests: handlers may still
     * use peers (failing at once), keys and the evidence log. */
    abort_peer_calls(gw);
    gw_witness_stop(gw);
    gw_relay_stop(gw);
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
    gw_ident_release(gw->ident);
    gw_ident_release(gw->ident_prev);
    if (gw->key_pem != NULL)
        bg_pki_secret_free(gw->key_pem, gw->key_pem_len);
    OPENSSL_free(gw->cert_pem);
    OPENSSL_free(gw->ca_pem);
    OPENSSL_free(gw->crl_pem);
    OPENSSL_free(gw->crl_refused_pem);
    gw_witness_close(gw);
    gw_relay_close(gw);
    gw_witnessed_close(gw);
    gw_evidence_close(gw);
    gw_cache_destroy(&gw->cache);
    gw_fetches_destroy(&gw->fetches);
    gw_quota_destroy(&gw->quota);
    gw_rate_destroy(&gw->rate);
    pthread_mutex_destroy(&gw->lock);
    free(gw);
}
