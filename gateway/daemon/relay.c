/*
 * relay.c - the roster and the CRL handed on to and taken from peers (see relay.h).
 *
 * State (struct gw_relay, under its lock): the newest signed roster and CRL we hold,
 * as bytes to hand on (in use, or checked, written and not loaded yet), and the
 * newest of each we pushed to every peer. A take (check, write, hold) runs whole
 * under the lock, so two peers handing us the same CRL at once write it once, and
 * an older one never lands after a newer. The lock is never held across a call.
 */
#include "gateway/daemon/relay.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/file.h"
#include "common/pool.h"
#include "gateway/daemon/artefact.h"
#include "gateway/daemon/codes.h"
#include "gateway/daemon/core.h"
#include "gateway/daemon/log.h"
#include "proto/pb.h"
#include "proto/relay.pb-c.h"

struct gw_relay {
    pthread_mutex_t lock;
    uint8_t *roster; /* the signed roster we hold (malloc'd), NULL if none */
    size_t roster_len;
    uint64_t roster_serial; /* its serial (or the one in use, when not held) */
    char *crl;              /* the CRL we hold, PEM (OPENSSL_malloc'd) */
    size_t crl_len;
    uint64_t crl_number;
    uint64_t roster_pushed, crl_pushed; /* the newest pushed to every peer before use */
    /* The peer each was taken from ("": our operator's): it needs no push back. */
    char roster_from[BG_CITY_CODE_LEN + 1], crl_from[BG_CITY_CODE_LEN + 1];

    pthread_mutex_t wake_lock; /* the thread's sleep and stop flag */
    pthread_cond_t wake;
    bool stop, started;
    pthread_t thread;
};

typedef char gw_relay_why[GW_ART_REFUSAL_MAX + 1];

/* ---------------------------------------------------------------- holding */

/* Replaces the roster held by a copy of bytes, taken from peer from ("": not a peer);
 * false (nothing changed) without memory. */
static bool
hold_roster_locked(struct gw_relay *rl, const uint8_t *bytes, size_t len, uint64_t serial,
                   const char *from)
{
    uint8_t *copy = malloc(len ? len : 1);
    if (copy == NULL)
        return false;
    memcpy(copy, bytes, len);
    free(rl->roster);
    rl->roster = copy;
    rl->roster_len = len;
    rl->roster_serial = serial;
    snprintf(rl->roster_from, sizeof rl->roster_from, "%s", from);
    return true;
}

/* Takes pem (OPENSSL_malloc'd) as the CRL held, from peer from ("": not a peer). */
static void
hold_crl_locked(struct gw_relay *rl, char *pem, size_t len, uint64_t number, const char *from)
{
    OPENSSL_free(rl->crl);
    rl->crl = pem;
    rl->crl_len = len;
    rl->crl_number = number;
    snprintf(rl->crl_from, sizeof rl->crl_from, "%s", from);
}

/* An Artefacts body of our numbers, with the artefacts asked for that we hold and that
 * fit a message (max_msg less the envelope's share), and refusal sentences (NULL:
 * none). malloc'd; NULL without memory. Lock held. */
static uint8_t *
body_locked(struct gw_relay *rl, bool roster, bool crl, size_t max_msg, const char *rwhy,
            const char *cwhy, size_t *len)
{
    Baygate__Artefacts a = BAYGATE__ARTEFACTS__INIT;
    a.roster_serial = rl->roster_serial;
    a.crl_number = rl->crl_number;
    size_t room = max_msg > GW_PSI_OVERHEAD ? max_msg - GW_PSI_OVERHEAD : 0;
    if (roster && rl->roster != NULL && rl->roster_len <= room) {
        a.roster.data = rl->roster;
        a.roster.len = rl->roster_len;
        room -= rl->roster_len;
    } else if (roster && rl->roster != NULL) {
        bg_log(BG_LOG_WARN, "relay.too_large", "what=roster bytes=%zu max_message=%zu",
               rl->roster_len, max_msg);
    }
    if (crl && rl->crl != NULL && rl->crl_len <= room) {
        a.crl.data = (uint8_t *)rl->crl;
        a.crl.len = rl->crl_len;
    } else if (crl && rl->crl != NULL) {
        bg_log(BG_LOG_WARN, "relay.too_large", "what=crl bytes=%zu max_message=%zu", rl->crl_len,
               max_msg);
    }
    a.roster_refused = (char *)(rwhy != NULL ? rwhy : "");
    a.crl_refused = (char *)(cwhy != NULL ? cwhy : "");
    *len = baygate__artefacts__get_packed_size(&a);
    uint8_t *out = malloc(*len ? *len : 1);
    if (out != NULL)
        baygate__artefacts__pack(&a, out);
    return out;
}

/* ----------------------------------------------------------------- taking */

/* A refusal logged (older: INFO, it only lags; invalid: WARN) and kept for the answer. */
static void
refused(const char *event, const char *from, gw_art_verdict v, uint64_t held, const bg_err *err,
        char *why)
{
    char q[BG_ERR_MSG_MAX];
    bg_log(v == GW_ART_OLDER ? BG_LOG_INFO : BG_LOG_WARN, event,
           "from=%s verdict=%s held=%llu error=\"%s\"", from, gw_art_verdict_name(v),
           (unsigned long long)held, gw_quoted(err->msg, q, sizeof q));
    snprintf(why, sizeof(gw_relay_why), "%.*s", GW_ART_REFUSAL_MAX, q);
}

/* A roster from peer from: checked, and if newer written to our roster file and held. */
static void
take_roster(bg_gw *gw, const char *from, const ProtobufCBinaryData *b, char *why)
{
    struct gw_relay *rl = gw->relay;
    bg_err err = {0};
    pthread_mutex_lock(&rl->lock);
    bg_roster *in_use = gw_roster_get(gw), *r = NULL;
    uint64_t held = rl->roster_serial;
    gw_art_verdict v = gw_art_roster(b->data, b->len, gw->ca, in_use, held, &r, &err);
    if (v == GW_ART_NEWER &&
        bg_roster_write_file(gw->cfg.roster_path, b->data, b->len, &err) != BG_OK) {
        bg_log(BG_LOG_ERROR, "roster.write_failed", "from=%s path=%s error=\"%s\"", from,
               gw->cfg.roster_path, err.msg);
        snprintf(why, sizeof(gw_relay_why), "checked, but not written (see the receiver's log)");
    } else if (v == GW_ART_NEWER) {
        uint64_t serial = bg_roster_serial(r);
        hold_roster_locked(rl, b->data, b->len, serial, from); /* else the reload reads it */
        bg_log(BG_LOG_INFO, "roster.received", "from=%s serial=%llu previous=%llu bytes=%zu", from,
               (unsigned long long)serial, (unsigned long long)held, b->len);
    } else if (v != GW_ART_SAME) {
        refused("roster.relay_refused", from, v, held, &err, why);
    }
    pthread_mutex_unlock(&rl->lock);
    bg_roster_free(r);
    bg_roster_free(in_use);
}

/* A CRL from peer from: checked, and if newer written to our CRL file and held. */
static void
take_crl(bg_gw *gw, const char *from, const ProtobufCBinaryData *b, char *why)
{
    struct gw_relay *rl = gw->relay;
    bg_err err = {0};
    uint64_t number = 0;
    char *pem = NULL;
    size_t len = 0;
    pthread_mutex_lock(&rl->lock);
    uint64_t held = rl->crl_number;
    gw_art_verdict v =
        gw_art_crl(b->data, b->len, gw->ca, held, time(NULL), &number, &pem, &len, &err);
    if (v == GW_ART_NEWER &&
        bg_file_write_replace(gw->cfg.crl_path, pem, len, 0644, &err) != BG_OK) {
        bg_log(BG_LOG_ERROR, "crl.write_failed", "from=%s path=%s error=\"%s\"", from,
               gw->cfg.crl_path, err.msg);
        snprintf(why, sizeof(gw_relay_why), "checked, but not written (see the receiver's log)");
        OPENSSL_free(pem);
    } else if (v == GW_ART_NEWER) {
        hold_crl_locked(rl, pem, len, number, from);
        bg_log(BG_LOG_INFO, "crl.received", "from=%s number=%llu previous=%llu", from,
               (unsigned long long)number, (unsigned long long)held);
    } else if (v != GW_ART_SAME) {
        refused("crl.relay_refused", from, v, held, &err, why);
    }
    pthread_mutex_unlock(&rl->lock);
}

/* Whatever a itself carries, from peer from. */
static void
take(bg_gw *gw, const char *from, const Baygate__Artefacts *a, char *rwhy, char *cwhy)
{
    if (a->roster.len > 0)
        take_roster(gw, from, &a->roster, rwhy);
    if (a->crl.len > 0)
        take_crl(gw, from, &a->crl, cwhy);
}

/* ---------------------------------------------------------------- asking */

/* One offer (body) to p within timeout_ms, p admitted first (core.h: a peer known to be
 * down is not waited for). What p's answer carries is taken; p's numbers come back in
 * their. BG_OK, or the failure with res->error. */
static int
exchange(bg_gw *gw, gw_peer *p, const uint8_t *body, size_t len, int timeout_ms, uint64_t their[2],
         bg_rt_result *res)
{
    int64_t t0 = bg_clock_ms();
    if (gw_peer_admit(p, timeout_ms, res->error, sizeof res->error) != BG_OK)
        return BG_EIO;
    int left = timeout_ms - (int)(bg_clock_ms() - t0);
    bg_env_fields f = {.recipient = p->city,
                       .body_type = BAYGATE__RELAY_BODY__RELAY_BODY_OFFER,
                       .body = body,
                       .body_len = len,
                       .purpose = "relay"};
    bg_env_opened *o = NULL;
    int rc = gw_call(gw, p, &f, left > 100 ? left : 100, BAYGATE__RELAY_BODY__RELAY_BODY_HELD, NULL,
                     &o, res);
    gw_peer_note(p, rc == BG_OK || res->code != BG_RT_E_TRANSPORT, res->error);
    if (rc != BG_OK)
        return rc;
    bg_err err = {0};
    Baygate__Artefacts *a = gw_art_decode(o->body, o->body_len, &err);
    bg_env_opened_free(o);
    if (a == NULL) {
        snprintf(res->error, sizeof res->error, "%.300s", err.msg);
        return BG_EPROTO;
    }
    their[0] = a->roster_serial;
    their[1] = a->crl_number;
    char q[GW_ART_REFUSAL_MAX + 1];
    if (a->roster_refused[0] != '\0')
        bg_log(BG_LOG_WARN, "relay.refused_by_peer", "peer=%s what=roster reason=\"%s\"", p->city,
               gw_quoted(a->roster_refused, q, sizeof q));
    if (a->crl_refused[0] != '\0')
        bg_log(BG_LOG_WARN, "relay.refused_by_peer", "peer=%s what=crl reason=\"%s\"", p->city,
               gw_quoted(a->crl_refused, q, sizeof q));
    gw_relay_why rwhy = "", cwhy = "";
    take(gw, p->city, a, rwhy, cwhy);
    bg_pb_free(a);
    return BG_OK;
}

/* Hands p what we hold that its numbers (their) say it lacks; logged. */
static void
push_to(bg_gw *gw, gw_peer *p, const uint64_t their[2], int timeout_ms)
{
    struct gw_relay *rl = gw->relay;
    size_t len = 0;
    pthread_mutex_lock(&rl->lock);
    bool roster = their[0] < rl->roster_serial, crl = their[1] < rl->crl_number;
    uint64_t serial = rl->roster_serial, number = rl->crl_number;
    uint8_t *body =
        roster || crl ? body_locked(rl, roster, crl, gw_max_message(gw), NULL, NULL, &len) : NULL;
    pthread_mutex_unlock(&rl->lock);
    if (body == NULL)
        return;
    uint64_t after[2] = {0, 0};
    bg_rt_result res = {0};
    int rc = exchange(gw, p, body, len, timeout_ms, after, &res);
    free(body);
    if (rc == BG_OK)
        bg_log(BG_LOG_INFO, "relay.pushed",
               "peer=%s roster=%llu crl=%llu their_roster=%llu their_crl=%llu", p->city,
               (unsigned long long)(roster ? serial : 0), (unsigned long long)(crl ? number : 0),
               (unsigned long long)after[0], (unsigned long long)after[1]);
    else
        bg_log(BG_LOG_WARN, "relay.push_failed", "peer=%s roster=%llu crl=%llu error=\"%s\"",
               p->city, (unsigned long long)(roster ? serial : 0),
               (unsigned long long)(crl ? number : 0), res.error);
}

/* One round with p: our numbers offered, what p holds newer taken, ours pushed when p
 * holds older. */
static void
offer_to(bg_gw *gw, gw_peer *p, int timeout_ms)
{
    struct gw_relay *rl = gw->relay;
    size_t len = 0;
    pthread_mutex_lock(&rl->lock);
    uint8_t *body = body_locked(rl, false, false, gw_max_message(gw), NULL, NULL, &len);
    pthread_mutex_unlock(&rl->lock);
    if (body == NULL)
        return;
    uint64_t their[2] = {0, 0};
    bg_rt_result res = {0};
    int rc = exchange(gw, p, body, len, timeout_ms, their, &res);
    free(body);
    if (rc != BG_OK) {
        bg_log(BG_LOG_DEBUG, "relay.offer_failed", "peer=%s error=\"%s\"", p->city, res.error);
        return;
    }
    push_to(gw, p, their, timeout_ms);
}

/* ------------------------------------------------------ pushing before use */

typedef struct push_job {
    bg_gw *gw;
    gw_peer **peers;
    uint64_t their[2]; /* what to claim the peers hold: 0 to push, UINT64_MAX not to */
    char skip[BG_CITY_CODE_LEN + 1]; /* the peer we took it from */
} push_job;

static int
push_units(void *ctx, size_t begin, size_t end, size_t *bad, bg_err *err)
{
    (void)bad, (void)err;
    push_job *j = ctx;
    for (size_t i = begin; i < end; i++)
        if (strcmp(j->peers[i]->city, j->skip) != 0)
            push_to(j->gw, j->peers[i], j->their, GW_RELAY_PUSH_MS);
    return BG_OK;
}

/* What we hold of the roster or the CRL, to every peer at once but the one we took it
 * from, within about GW_RELAY_PUSH_MS. */
static void
push_all(bg_gw *gw, bool roster)
{
    struct gw_relay *rl = gw->relay;
    gw_peer *peers[BG_ROSTER_MAX_MEMBERS];
    size_t n = gw_peers_get(gw, peers);
    push_job j = {
        .gw = gw, .peers = peers, .their = {roster ? 0 : UINT64_MAX, roster ? UINT64_MAX : 0}};
    pthread_mutex_lock(&rl->lock);
    snprintf(j.skip, sizeof j.skip, "%s", roster ? rl->roster_from : rl->crl_from);
    pthread_mutex_unlock(&rl->lock);
    if (n > 0)
        bg_pool_run(n, 1, (unsigned)n, push_units, &j, NULL);
    for (size_t i = 0; i < n; i++)
        gw_peer_release(peers[i]);
}

void
gw_relay_crl_new(bg_gw *gw, X509_CRL *crl)
{
    struct gw_relay *rl = gw->relay;
    char *pem = NULL, *canon = NULL;
    size_t len = 0, clen = 0;
    bg_err err = {0};
    if (rl == NULL || bg_pki_crl_pem(crl, &pem, &len, &err) != BG_OK)
        return;
    uint64_t number = 0;
    pthread_mutex_lock(&rl->lock);
    gw_art_verdict v = gw_art_crl((const uint8_t *)pem, len, gw->ca, rl->crl_pushed, time(NULL),
                                  &number, &canon, &clen, &err);
    if (v == GW_ART_NEWER && number > rl->crl_number)
        hold_crl_locked(rl, canon, clen, number, "");
    else
        OPENSSL_free(canon);
    if (v == GW_ART_NEWER)
        rl->crl_pushed = number > rl->crl_number ? number : rl->crl_number;
    pthread_mutex_unlock(&rl->lock);
    OPENSSL_free(pem);
    if (v == GW_ART_INVALID)
        bg_log(BG_LOG_WARN, "crl.not_relayed", "path=%s error=\"%s\"", gw->cfg.crl_path, err.msg);
    if (v == GW_ART_NEWER)
        push_all(gw, false);
}

/* The signed bytes of next, as its file holds them (NULL if the file no longer does). */
static uint8_t *
roster_file_bytes(bg_gw *gw, const bg_roster *next, size_t *len)
{
    uint8_t *bytes = NULL;
    bg_roster *r = NULL;
    bool same = false;
    bg_err err = {0};
    if (bg_roster_read_file(gw->cfg.roster_path, &bytes, len, &err) == BG_OK &&
        bg_roster_open(bytes, *len, gw->ca, 0, next, &r, &same, &err) == BG_OK && same) {
        bg_roster_free(r);
        return bytes;
    }
    bg_roster_free(r);
    free(bytes);
    bg_log(BG_LOG_WARN, "roster.not_relayed", "path=%s error=\"%s\"", gw->cfg.roster_path,
           err.msg[0] ? err.msg : "the file changed while it was loaded");
    return NULL;
}

void
gw_relay_roster_new(bg_gw *gw, const bg_roster *next)
{
    struct gw_relay *rl = gw->relay;
    if (rl == NULL)
        return;
    uint64_t serial = bg_roster_serial(next);
    pthread_mutex_lock(&rl->lock);
    bool fresh = serial > rl->roster_pushed, held = serial <= rl->roster_serial && rl->roster;
    pthread_mutex_unlock(&rl->lock);
    if (!fresh)
        return;
    size_t len = 0;
    uint8_t *bytes = held ? NULL : roster_file_bytes(gw, next, &len);
    if (!held && bytes == NULL)
        return;
    pthread_mutex_lock(&rl->lock);
    if (bytes != NULL && serial > rl->roster_serial)
        hold_roster_locked(rl, bytes, len, serial, "");
    rl->roster_pushed = rl->roster_serial > serial ? rl->roster_serial : serial;
    pthread_mutex_unlock(&rl->lock);
    free(bytes);
    push_all(gw, true);
}

/* ------------------------------------------------------------- answering */

void
gw_relay_answer(bg_gw *gw, const bg_env_opened *o, bg_tp_request *req)
{
    struct gw_relay *rl = gw->relay;
    bg_err err = {0};
    Baygate__Artefacts *a = rl ? gw_art_decode(o->body, o->body_len, &err) : NULL;
    if (a == NULL) {
        gw_refuse(gw, NULL, o, req, rl ? BG_GW_E_BAD_BODY : BG_GW_E_INTERNAL, "relay.refused", "%s",
                  rl ? err.msg : "the relay is not running");
        return;
    }
    gw_relay_why rwhy = "", cwhy = "";
    take(gw, o->sender, a, rwhy, cwhy);
    size_t len = 0;
    pthread_mutex_lock(&rl->lock);
    bool roster = a->roster_serial < rl->roster_serial, crl = a->crl_number < rl->crl_number;
    uint64_t serial = rl->roster_serial, number = rl->crl_number;
    uint8_t *body = body_locked(rl, roster, crl, gw_max_message(gw), rwhy, cwhy, &len);
    pthread_mutex_unlock(&rl->lock);
    bg_log(roster || crl ? BG_LOG_INFO : BG_LOG_DEBUG, "relay.answered",
           "peer=%s their_roster=%llu their_crl=%llu sent_roster=%llu sent_crl=%llu", o->sender,
           (unsigned long long)a->roster_serial, (unsigned long long)a->crl_number,
           (unsigned long long)(roster ? serial : 0), (unsigned long long)(crl ? number : 0));
    bg_pb_free(a);
    if (body == NULL) {
        gw_refuse(gw, NULL, o, req, BG_GW_E_INTERNAL, "relay.refused", "out of memory");
        return;
    }
    gw_answer(gw, NULL, o, req, BAYGATE__RELAY_BODY__RELAY_BODY_HELD, body, len);
    free(body);
}

/* ---------------------------------------------------------------- thread */

/* Waits ms, or until stop; false once stopping. wake_lock held. */
static bool
sleep_locked(struct gw_relay *rl, int64_t ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    while (!rl->stop && pthread_cond_timedwait(&rl->wake, &rl->wake_lock, &until) == 0)
        ;
    return !rl->stop;
}

static void *
relay_main(void *arg)
{
    bg_gw *gw = arg;
    struct gw_relay *rl = gw->relay;
    int64_t wait_ms = GW_RELAY_FIRST_MS;
    pthread_mutex_lock(&rl->wake_lock);
    while (sleep_locked(rl, wait_ms)) {
        pthread_mutex_unlock(&rl->wake_lock);
        gw_peer *peers[BG_ROSTER_MAX_MEMBERS];
        size_t n = gw_peers_get(gw, peers);
        for (size_t i = 0; i < n; i++) {
            offer_to(gw, peers[i], (int)gw->cfg.request_ms);
            gw_peer_release(peers[i]);
        }
        /* No peers yet (the gateway still starting): look again soon. */
        wait_ms = n > 0 ? (int64_t)gw->cfg.relay_interval_s * 1000 : GW_RELAY_FIRST_MS;
        pthread_mutex_lock(&rl->wake_lock);
    }
    pthread_mutex_unlock(&rl->wake_lock);
    return NULL;
}

/* -------------------------------------------------------- start, stop */

/* What gw runs on at start: the roster file's bytes (if they are the roster loaded)
 * and the CRL loaded. */
static void
hold_loaded(bg_gw *gw, struct gw_relay *rl)
{
    size_t len = 0;
    uint8_t *bytes = roster_file_bytes(gw, gw->roster, &len);
    rl->roster_serial = bg_roster_serial(gw->roster);
    if (bytes != NULL)
        hold_roster_locked(rl, bytes, len, rl->roster_serial, "");
    free(bytes);
    X509_CRL *crl = NULL;
    char *pem = NULL;
    size_t plen = 0;
    uint64_t number = 0;
    if (bg_pki_crl_load_mem(gw->crl_pem, gw->crl_pem_len, &crl, NULL) == BG_OK &&
        bg_pki_crl_number(crl, &number, NULL) == BG_OK &&
        bg_pki_crl_pem(crl, &pem, &plen, NULL) == BG_OK)
        hold_crl_locked(rl, pem, plen, number, "");
    X509_CRL_free(crl);
    rl->roster_pushed = rl->roster_serial;
    rl->crl_pushed = rl->crl_number;
}

int
gw_relay_start(bg_gw *gw, bg_err *err)
{
    struct gw_relay *rl = calloc(1, sizeof *rl);
    if (rl == NULL)
        return bg_err_set(err, BG_ENOMEM, "out of memory");
    pthread_mutex_init(&rl->lock, NULL);
    pthread_mutex_init(&rl->wake_lock, NULL);
    pthread_cond_init(&rl->wake, NULL);
    hold_loaded(gw, rl);
    gw->relay = rl;
    if (pthread_create(&rl->thread, NULL, relay_main, gw) != 0)
        return bg_err_set(err, BG_ENOMEM, "cannot start the relay thread");
    rl->started = true;
    return BG_OK;
}

void
gw_relay_stop(bg_gw *gw)
{
    struct gw_relay *rl = gw->relay;
    if (rl == NULL || !rl->started)
        return;
    pthread_mutex_lock(&rl->wake_lock);
    rl->stop = true;
    pthread_cond_broadcast(&rl->wake);
    pthread_mutex_unlock(&rl->wake_lock);
    pthread_join(rl->thread, NULL);
    rl->started = false;
}

void
gw_relay_close(bg_gw *gw)
{
    struct gw_relay *rl = gw->relay;
    if (rl == NULL)
        return;
    gw->relay = NULL;
    free(rl->roster);
    OPENSSL_free(rl->crl);
    pthread_mutex_destroy(&rl->lock);
    pthread_mutex_destroy(&rl->wake_lock);
    pthread_cond_destroy(&rl->wake);
    free(rl);
}
