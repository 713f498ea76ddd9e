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

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "gateway/daemon/codes.h"
#include "gateway/daemon/log.h"
#include "mpc/psi.h"

/* ------------------------------------------------------------ identity */

gw_ident *
gw_ident_new(bg_env_identity *id)
{
    gw_ident *me = calloc(1, sizeof *me);
    if (me == NULL) {
        bg_env_identity_free(id);
        return NULL;
    }
    atomic_init(&me->refs, 1);
    me->id = id;
    return me;
}

void
gw_ident_release(gw_ident *me)
{
    if (me == NULL || atomic_fetch_sub(&me->refs, 1) != 1)
        return;
    bg_env_identity_free(me->id);
    free(me);
}

gw_ident *
gw_ident_get(bg_gw *gw)
{
    pthread_mutex_lock(&gw->lock);
    gw_ident *me = gw->ident;
    if (me != NULL)
        atomic_fetch_add(&me->refs, 1);
    pthread_mutex_unlock(&gw->lock);
    return me;
}

gw_ident *
gw_ident_get_fp(bg_gw *gw, const uint8_t fp[BG_SIG_FP_LEN])
{
    pthread_mutex_lock(&gw->lock);
    gw_ident *me = gw->ident;
    if (me != NULL && gw->ident_prev != NULL &&
        memcmp(me->id->fingerprint, fp, BG_SIG_FP_LEN) != 0 &&
        memcmp(gw->ident_prev->id->fingerprint, fp, BG_SIG_FP_LEN) == 0)
        me = gw->ident_prev;
    if (me != NULL)
        atomic_fetch_add(&me->refs, 1);
    pthread_mutex_unlock(&gw->lock);
    return me;
}

void
gw_ident_swap(bg_gw *gw, gw_ident *next)
{
    pthread_mutex_lock(&gw->lock);
    gw_ident *gone = gw->ident_prev;
    gw->ident_prev = gw->ident;
    gw->ident = next;
    pthread_mutex_unlock(&gw->lock);
    gw_ident_release(gone);
}

const char *
gw_own_pin(bg_gw *gw, uint8_t fp[BG_SIG_FP_LEN])
{
    gw_ident *me = gw_ident_get(gw);
    bg_roster *r = gw_roster_get(gw);
    memcpy(fp, me->id->fingerprint, BG_SIG_FP_LEN);
    const bg_roster_member *m = r != NULL ? bg_roster_member_find(r, gw->cfg.city) : NULL;
    const char *pin = "";
    if (m != NULL && memcmp(m->cert_sha256, fp, BG_SIG_FP_LEN) == 0)
        pin = "current";
    else if (m != NULL && m->has_next && memcmp(m->next_sha256, fp, BG_SIG_FP_LEN) == 0)
        pin = "next";
    bg_roster_free(r);
    gw_ident_release(me);
    return pin;
}

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
    free(p->cert_der);
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

/* ------------------------------------------------------------- health */

enum { PROBE_OPEN, PROBE_REFUSED, PROBE_SILENT, PROBE_UNKNOWN };

/* Host and port of a "scheme://host:port" endpoint ("[v6]:port" too); false if it
 * has no such form (ipc, say). */
static bool
endpoint_split(const char *ep, char host[256], char port[8])
{
    const char *h = strstr(ep, "://");
    if (h == NULL || strncmp(ep, "tls+tcp", 7) != 0)
        return false;
    h += 3;
    const char *colon = strrchr(h, ':');
    if (colon == NULL || colon == h || strlen(colon + 1) == 0 || strlen(colon + 1) >= 8)
        return false;
    const char *hs = h, *he = colon;
    if (*hs == '[' && he[-1] == ']') {
        hs++;
        he--;
    }
    if (he <= hs || (size_t)(he - hs) >= 256)
        return false;
    memcpy(host, hs, (size_t)(he - hs));
    host[he - hs] = '\0';
    snprintf(port, 8, "%s", colon + 1);
    return true;
}

/* One non-blocking TCP connect to ai within ms: open, refused/unreachable or silent. */
static int
probe_addr(const struct addrinfo *ai, int ms)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return PROBE_UNKNOWN;
    int res = PROBE_OPEN;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        if (errno != EINPROGRESS) {
            res = PROBE_REFUSED;
        } else {
            struct pollfd pfd = {.fd = fd, .events = POLLOUT};
            int e = 0;
            socklen_t el = sizeof e;
            if (poll(&pfd, 1, ms) <= 0)
                res = PROBE_SILENT;
            else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) != 0 || e != 0)
                res = PROBE_REFUSED;
        }
    }
    close(fd);
    return res;
}

/* Does anything accept TCP connections at p's endpoint? (DNS failures: unknown.) */
static int
probe_endpoint(const gw_peer *p, int ms)
{
    char host[256], port[8];
    if (!endpoint_split(p->endpoint, host, port))
        return PROBE_UNKNOWN;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV}, *ai = NULL;
    if (getaddrinfo(host, port, &hints, &ai) != 0)
        return PROBE_UNKNOWN;
    int res = PROBE_UNKNOWN;
    for (const struct addrinfo *a = ai; a != NULL && res != PROBE_OPEN; a = a->ai_next) {
        int r = probe_addr(a, ms);
        if (res == PROBE_UNKNOWN || r == PROBE_OPEN || r == PROBE_SILENT)
            res = r;
    }
    freeaddrinfo(ai);
    return res;
}

/* p is down: error, backoff doubled. status_lock held. */
static void
note_down_locked(gw_peer *p, const char *error, bool refused)
{
    int64_t now = bg_clock_ms();
    if (p->down_fails == 0)
        p->down_since_ms = now;
    int64_t delay = GW_BACKOFF_MIN_MS;
    for (uint32_t k = 0; k < p->down_fails && delay < GW_BACKOFF_MAX_MS; k++)
        delay *= 2;
    if (delay > GW_BACKOFF_MAX_MS)
        delay = GW_BACKOFF_MAX_MS;
    p->down_fails++;
    p->down_until_ms = now + delay;
    p->down_refused = refused;
    snprintf(p->down_error, sizeof p->down_error, "%s", error);
}

void
gw_peer_note(gw_peer *p, bool reached, const char *error)
{
    pthread_mutex_lock(&p->status_lock);
    if (reached) {
        if (p->down_fails > 0)
            bg_log(BG_LOG_INFO, "peer.up", "peer=%s down_ms=%lld", p->city,
                   (long long)(bg_clock_ms() - p->down_since_ms));
        p->down_fails = 0;
        p->down_until_ms = 0;
        p->down_error[0] = '\0';
    } else {
        note_down_locked(p, error, false);
    }
    pthread_mutex_unlock(&p->status_lock);
}

/* ---------------------------------------------------------- revocation */

void
gw_peer_learn_cert(gw_peer *p, const bg_env_opened *o)
{
    if (o->cert_der == NULL || strcmp(o->sender, p->city) != 0)
        return;
    pthread_mutex_lock(&p->status_lock);
    if (p->cert_der == NULL || memcmp(p->cert_fp, o->cert_fingerprint, BG_SIG_FP_LEN) != 0) {
        uint8_t *der = malloc(o->cert_der_len);
        if (der != NULL) {
            memcpy(der, o->cert_der, o->cert_der_len);
            free(p->cert_der);
            p->cert_der = der;
            p->cert_der_len = o->cert_der_len;
            memcpy(p->cert_fp, o->cert_fingerprint, BG_SIG_FP_LEN);
            /* Another certificate: it was just verified against the CRL in use. (The
             * same one keeps its flag: a CRL never takes a revocation back, and an
             * answer verified just before a reload must not clear it.) */
            p->revoked = false;
        }
    }
    pthread_mutex_unlock(&p->status_lock);
}

/* Does the CRL in use revoke the certificate of p we hold, the one the roster pins
 * (pin, NULL if p is no member)? One it no longer pins is forgotten. A revocation
 * sticks to its certificate: CRLs only grow (a rollback is refused), and a CRL past
 * its next update fails every certificate alike, which is no reason to ask this one. */
static void
peer_check_revoked(bg_gw *gw, gw_peer *p, const uint8_t pin[BG_SIG_FP_LEN])
{
    uint8_t *der = NULL;
    size_t len = 0;
    pthread_mutex_lock(&p->status_lock);
    if (p->cert_der != NULL && (pin == NULL || memcmp(p->cert_fp, pin, BG_SIG_FP_LEN) != 0)) {
        free(p->cert_der);
        p->cert_der = NULL;
        p->revoked = false;
    }
    if (p->cert_der != NULL && (der = malloc(p->cert_der_len)) != NULL) {
        memcpy(der, p->cert_der, p->cert_der_len);
        len = p->cert_der_len;
    }
    pthread_mutex_unlock(&p->status_lock);
    if (der == NULL)
        return;
    bg_trust_result tr = {0};
    bg_err err = {0};
    int rc = bg_trust_verify(gw->trust, der, len, p->city, &tr, NULL, &err);
    free(der);
    if (rc == BG_OK || tr.reason != BG_TRUST_REVOKED)
        return;
    pthread_mutex_lock(&p->status_lock);
    bool was = p->revoked;
    p->revoked = memcmp(p->cert_fp, tr.fingerprint, BG_SIG_FP_LEN) == 0; /* still the one */
    if (p->revoked && !was)
        snprintf(p->revoked_why, sizeof p->revoked_why, "%.190s", err.msg);
    bool now = p->revoked && !was;
    pthread_mutex_unlock(&p->status_lock);
    if (now)
        bg_log(BG_LOG_WARN, "peer.revoked",
               "peer=%s reason=\"%s\" effect=\"not asked until the roster drops it or pins "
               "another certificate\"",
               p->city, err.msg);
}

void
gw_peers_check_revoked(bg_gw *gw)
{
    gw_peer *peers[BG_ROSTER_MAX_MEMBERS];
    size_t n = gw_peers_get(gw, peers);
    bg_roster *r = gw_roster_get(gw);
    for (size_t i = 0; i < n; i++) {
        const bg_roster_member *m = r ? bg_roster_member_find(r, peers[i]->city) : NULL;
        peer_check_revoked(gw, peers[i], m ? m->cert_sha256 : NULL);
        gw_peer_release(peers[i]);
    }
    bg_roster_free(r);
}

bool
gw_peer_revoked(gw_peer *p, char *why, size_t n)
{
    pthread_mutex_lock(&p->status_lock);
    bool revoked = p->revoked;
    if (revoked)
        snprintf(why, n, "%s revoked, not asked: %s, and the roster still pins it", p->city,
                 p->revoked_why);
    pthread_mutex_unlock(&p->status_lock);
    return revoked;
}

int
gw_peer_admit(gw_peer *p, int timeout_ms, char *why, size_t n)
{
    if (gw_peer_revoked(p, why, n))
        return BG_ECRYPTO;
    bg_tp_client_stats st;
    bg_tp_client_get_stats(p->cli, &st);
    if (st.connected)
        return BG_OK;
    int64_t now = bg_clock_ms();
    pthread_mutex_lock(&p->status_lock);
    bool held = p->down_fails > 0 && now < p->down_until_ms && !p->down_refused;
    if (held)
        snprintf(why, n, "%s not asked: unreachable for %lld s (%s); next try in %lld s", p->city,
                 (long long)((now - p->down_since_ms) / 1000), p->down_error,
                 (long long)((p->down_until_ms - now + 999) / 1000));
    pthread_mutex_unlock(&p->status_lock);
    if (held)
        return BG_EIO;
    int ms = timeout_ms < GW_PROBE_MS ? timeout_ms : GW_PROBE_MS;
    int res = probe_endpoint(p, ms);
    if (res == PROBE_OPEN || res == PROBE_UNKNOWN)
        return BG_OK;
    if (res == PROBE_REFUSED)
        snprintf(why, n, "%s at %s: connection refused or unreachable", p->city, p->endpoint);
    else
        snprintf(why, n, "%s at %s: no TCP answer within %d ms", p->city, p->endpoint, ms);
    pthread_mutex_lock(&p->status_lock);
    note_down_locked(p, why, res == PROBE_REFUSED);
    pthread_mutex_unlock(&p->status_lock);
    bg_log(BG_LOG_WARN, "peer.down", "peer=%s probe=%s", p->city,
           res == PROBE_REFUSED ? "refused" : "silent");
    return BG_EIO;
}

/* ------------------------------------------------------------- limits */

/* Every roster that signs is one a gateway can run with: the verifier takes its bound,
 * and a reply holds its overhead and at least one chunk of PSI elements. */
_Static_assert(BG_ROSTER_MESSAGE_MIN >= BG_ENV_MESSAGE_MIN &&
                   BG_ROSTER_MESSAGE_MAX <= BG_ENV_MESSAGE_MAX,
               "the roster's max_message_bytes bounds are the verifier's");
_Static_assert(BG_ROSTER_MESSAGE_MIN >= 2 * GW_PSI_OVERHEAD,
               "a reply of max_message_bytes holds its overhead and a PSI chunk");

_Static_assert(BG_CONFIG_RECV_MIN == BG_ROSTER_MESSAGE_MIN &&
                   BG_CONFIG_RECV_MAX == BG_ROSTER_MESSAGE_MAX,
               "recv_max_bytes in baygate.ini has the roster's max_message_bytes bounds");

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

/* The refusal sent in place of an answer the evidence log could not take: unlogged (the
 * log takes nothing now), and carrying no path or detail of our disk; NULL if it cannot
 * be sealed. */
static uint8_t *
no_evidence_refusal(bg_gw *gw, const gw_ev *ev, size_t *len)
{
    uint8_t *out = NULL;
    char msg[160];
    snprintf(msg, sizeof msg,
             "%s cannot write its evidence log (its disk is full or failing): nothing was "
             "answered; ask again later",
             gw->cfg.city);
    gw_ident *me = gw_ident_get(gw);
    if (ev->o == NULL || bg_env_seal_error(me->id, ev->o, BG_GW_E_INTERNAL, msg, gw_max_message(gw),
                                           &out, len, NULL) != BG_OK)
        out = NULL;
    gw_ident_release(me);
    return out;
}

bool
gw_reply_or_drop(bg_gw *gw, gw_ev *ev, bg_tp_request *req, uint8_t *bytes, size_t len)
{
    bg_err err = {0};
    if (ev != NULL && !gw_ev_commit_inbound(gw, ev, bytes, len)) {
        free(bytes); /* no evidence, no answer */
        bytes = no_evidence_refusal(gw, ev, &len);
        ev = NULL; /* nothing of it is logged, not even a failure to send */
    }
    if (bytes == NULL) {
        bg_tp_drop(req);
        return false;
    }
    if (ev != NULL && ev->rate_kind >= 0)
        gw_rate_charge(&gw->rate, ev->e.peer, (gw_rate_kind)ev->rate_kind, len, bg_env_now_ms());
    bool sent = bg_tp_reply(req, bytes, len, &err) == BG_OK;
    if (!sent) {
        bg_log(BG_LOG_WARN, "answer.not_sent", "error=\"%s\"", err.msg);
        if (ev != NULL) /* its leaves say answered: one more says it never left */
            gw_ev_commit_not_sent(gw, ev, err.msg);
    }
    free(bytes);
    return sent;
}

bool
gw_answer_as(bg_gw *gw, const gw_ident *me, gw_ev *ev, const bg_env_opened *o, bg_tp_request *req,
             uint32_t body_type, const uint8_t *body, size_t len)
{
    uint8_t *out = NULL;
    size_t out_len = 0;
    bg_err err = {0};
    if (bg_env_seal_answer(me->id, o, body_type, body, len, true, gw_max_message(gw), &out,
                           &out_len, &err) == BG_OK)
        atomic_fetch_add(&gw->answered, 1);
    else
        bg_log(BG_LOG_ERROR, "answer.seal_failed", "peer=%s error=\"%s\"", o->sender, err.msg);
    return gw_reply_or_drop(gw, ev, req, out, out_len);
}

bool
gw_answer(bg_gw *gw, gw_ev *ev, const bg_env_opened *o, bg_tp_request *req, uint32_t body_type,
          const uint8_t *body, size_t len)
{
    gw_ident *me = gw_ident_get(gw);
    bool sent = gw_answer_as(gw, me, ev, o, req, body_type, body, len);
    gw_ident_release(me);
    return sent;
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
    gw_ident *me = gw_ident_get(gw);
    if (bg_env_seal_error(me->id, o, code, msg, gw_max_message(gw), &out, &out_len, &err) != BG_OK)
        bg_log(BG_LOG_ERROR, "answer.seal_failed", "peer=%s error=\"%s\"", o->sender, err.msg);
    gw_ident_release(me);
    char safe[BG_ENV_ERROR_MSG_MAX + 1];
    if (event != NULL)
        bg_log(BG_LOG_WARN, event, "peer=%s purpose=%s code=%u reason=%s", o->sender,
               o->purpose[0] ? o->purpose : "-", code,
               bg_log_safe(msg, strlen(msg), safe, sizeof safe));
    gw_ev_refused(ev, code, msg);
    gw_reply_or_drop(gw, ev, req, out, out_len);
}

/* ------------------------------------------------------------- asking */

/* A signed answer came back: the peer is reachable, whatever the call was for (status
 * would otherwise say "not probed yet" of a peer we witness and query every minute). */
static void
peer_answered(gw_peer *p, uint32_t latency_us)
{
    pthread_mutex_lock(&p->status_lock);
    p->probed = true;
    p->reachable = true;
    p->latency_us = latency_us;
    p->last_ok_ms = bg_env_now_ms();
    p->error[0] = '\0';
    pthread_mutex_unlock(&p->status_lock);
}

int
gw_call(bg_gw *gw, gw_peer *p, const bg_env_fields *f, int timeout_ms, uint32_t want_type,
        const gw_call_ev *cev, bg_env_opened **out, bg_rt_result *res)
{
    *out = NULL;
    size_t max_msg = gw_max_message(gw);
    bool with_cert = !atomic_load(&p->cert_known);
    for (;;) {
        bg_env_opened *o = NULL;
        gw_ident *me = gw_ident_get(gw);
        atomic_fetch_add(&p->calls, 1);
        int rc = bg_rt_call(p->cli, me->id, gw->verifier, p->endpoint, f, with_cert, max_msg,
                            timeout_ms, &o, res);
        atomic_fetch_sub(&p->calls, 1);
        gw_ident_release(me);
        if (rc == BG_EINVAL)
            return rc; /* nothing was sent */
        if (res->answered) {
            atomic_store(&p->cert_known, true);
            peer_answered(p, res->latency_us);
        }
        if (o != NULL)
            gw_peer_learn_cert(p, o);
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
        bg_err everr = {0};
        if (cev != NULL && !gw_ev_commit_outbound(gw, f, res, reason, cev, &everr)) {
            /* A result shown without our own record of asking for it would be evidence
             * lost in silence (a full disk): the answer is dropped instead. */
            bg_env_opened_free(o);
            o = NULL;
            snprintf(res->error, sizeof res->error,
                     "%s's answer was not used: our evidence log could not be written (%.300s)",
                     p->city, everr.msg);
            res->code = BG_GW_E_INTERNAL;
            rc = BG_EIO;
        }
        if (rc == BG_EABORTED && res->code == BG_ENV_UNKNOWN_CERTIFICATE && !with_cert) {
            atomic_store(&p->cert_known, false);
            with_cert = true; /* the peer forgot us: introduce ourselves again */
            continue;
        }
        *out = o;
        return rc;
    }
}
