/*
 * witnessed.c - the start check against what our witnesses hold, and the answer to a
 * peer asking what we hold of its log (see witnessed.h).
 */
#include "gateway/daemon/witnessed.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "gateway/daemon/codes.h"
#include "gateway/daemon/core.h"
#include "gateway/daemon/evidence.h"
#include "gateway/daemon/log.h"
#include "proto/pb.h"
#include "proto/witness.pb-c.h"

#define WD_PATH_MAX (BG_CONFIG_PATH_MAX + 32)

/* UTC "YYYY-MM-DDTHH:MM:SSZ" of Unix milliseconds. */
static const char *
utc(int64_t ms, char out[32])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL || strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, 32, "%lld ms", (long long)ms);
    return out;
}

static int
audit_path(const bg_gw *gw, const char *name, char out[WD_PATH_MAX], bg_err *err)
{
    int n = name != NULL ? snprintf(out, WD_PATH_MAX, "%s/audit/%s", gw->cfg.data_dir, name)
                         : snprintf(out, WD_PATH_MAX, "%s/audit", gw->cfg.data_dir);
    if (n < 0 || n >= WD_PATH_MAX)
        return bg_err_set(err, BG_ELIMIT, "data directory path too long");
    return BG_OK;
}

/* ------------------------------------------------------------ asking */

/* p's answer o: the head of ours it holds, if any, signed by our key. */
static int
read_answer(bg_gw *gw, gw_peer *p, const bg_env_opened *o, bg_audit_held *h, bool *has)
{
    bg_err err = {0};
    Baygate__CosignedAnswer *ca =
        bg_pb_unpack(&baygate__cosigned_answer__descriptor, o->body_len, o->body);
    int rc = ca == NULL ? bg_err_set(&err, BG_EPROTO, "answer does not parse") : BG_OK;
    if (rc == BG_OK && ca->signed_head.len > 0) {
        rc = bg_audit_head_decode(ca->signed_head.data, ca->signed_head.len, &h->head, &err);
        if (rc == BG_OK && strcmp(h->head.origin, gw->cfg.city) != 0)
            rc = bg_err_set(&err, BG_EPROTO, "a head of %s, not ours", h->head.origin);
        /* Ours: only a head we signed counts (a head signed before a key rotation
         * cannot be checked, and is left to the witness's own checks). */
        if (rc == BG_OK) {
            gw_ident *me = gw_ident_get(gw);
            rc = bg_audit_head_verify(&h->head, me->id->key, NULL, &err);
            gw_ident_release(me);
        }
        if (rc == BG_OK) {
            memcpy(h->witness, p->city, sizeof h->witness);
            *has = true;
        }
    }
    if (ca != NULL)
        bg_pb_free(ca);
    if (rc != BG_OK)
        bg_log(BG_LOG_WARN, "audit.witness_head_unverified", "peer=%s error=\"%s\"", p->city,
               err.msg);
    return rc;
}

/* Asks p for the last head of ours it cosigned. BG_OK: it answered (*has: with one). */
static int
ask_peer(bg_gw *gw, gw_peer *p, bg_audit_held *h, bool *has)
{
    char why[400];
    *has = false;
    if (gw_peer_admit(p, (int)gw->cfg.request_ms, why, sizeof why) != BG_OK) {
        bg_log(BG_LOG_WARN, "audit.witness_unchecked", "peer=%s error=\"%s\"", p->city, why);
        return BG_EIO;
    }
    uint8_t body[8];
    Baygate__CosignedRequest cr = BAYGATE__COSIGNED_REQUEST__INIT;
    size_t blen = baygate__cosigned_request__pack(&cr, body);
    bg_env_fields f = {.recipient = p->city,
                       .body_type = BAYGATE__WITNESS_BODY__WITNESS_BODY_COSIGNED_REQUEST,
                       .body = body,
                       .body_len = blen,
                       .purpose = "audit"};
    bg_env_opened *o = NULL;
    bg_rt_result res = {0};
    int rc = gw_call(gw, p, &f, (int)gw->cfg.request_ms,
                     BAYGATE__WITNESS_BODY__WITNESS_BODY_COSIGNED_ANSWER, NULL, &o, &res);
    if (rc == BG_OK)
        gw_peer_note(p, true, NULL);
    if (rc != BG_OK) {
        bg_log(BG_LOG_WARN, "audit.witness_unchecked", "peer=%s error=\"%s\"", p->city, res.error);
        return BG_EIO;
    }
    rc = read_answer(gw, p, o, h, has);
    bg_env_opened_free(o);
    return rc;
}

/* Every peer's head of ours into held (*n of them); *asked gets how many peers there
 * are; returns how many did not answer. */
static size_t
collect(bg_gw *gw, bg_audit_held held[BG_AUDIT_HELD_MAX], size_t *n, size_t *asked)
{
    gw_peer *peers[BG_ROSTER_MAX_MEMBERS];
    size_t np = gw_peers_get(gw, peers), unchecked = 0;
    *n = 0;
    *asked = np;
    for (size_t i = 0; i < np; i++) {
        bool has = false;
        if (ask_peer(gw, peers[i], &held[*n], &has) != BG_OK)
            unchecked++;
        else if (has && *n < BG_AUDIT_HELD_MAX)
            (*n)++;
        gw_peer_release(peers[i]);
    }
    return unchecked;
}

/* The heads of held our log does not hold (larger than it) into behind; heads of
 * another history at a size it holds are logged. */
static size_t
classify(bg_gw *gw, const bg_audit_held *held, size_t n, bg_audit_held *behind)
{
    uint64_t size = bg_audit_size(gw->audit);
    size_t nb = 0;
    for (size_t i = 0; i < n; i++) {
        const bg_audit_head *h = &held[i].head;
        bg_audit_hash root;
        if (gw->loss != NULL && bg_audit_loss_covers(gw->loss, h))
            continue; /* given up already: the witness takes our statement */
        if (h->size > size) {
            behind[nb++] = held[i];
        } else if (bg_audit_root(gw->audit, h->size, root, NULL) != BG_OK ||
                   sodium_memcmp(root, h->root, BG_AUDIT_HASH_LEN) != 0) {
            bg_log(BG_LOG_ERROR, "audit.diverged_from_witness",
                   "peer=%s size=%llu our_size=%llu effect=\"our log is not the history it "
                   "cosigned at that size: it will report a fork\"",
                   held[i].witness, (unsigned long long)h->size, (unsigned long long)size);
        }
    }
    return nb;
}

/* -------------------------------------------------- refuse or accept */

/* The largest of behind (nb > 0). */
static const bg_audit_held *
largest(const bg_audit_held *behind, size_t nb)
{
    const bg_audit_held *m = &behind[0];
    for (size_t i = 1; i < nb; i++)
        if (behind[i].head.size > m->head.size)
            m = &behind[i];
    return m;
}

/* Logs and notes (behind.txt) what is missing; the refusal in err. */
static int
refuse(bg_gw *gw, const bg_audit_held *behind, size_t nb, bg_err *err)
{
    uint64_t size = bg_audit_size(gw->audit);
    char t[32], path[WD_PATH_MAX];
    for (size_t i = 0; i < nb; i++)
        bg_log(BG_LOG_ERROR, "audit.behind_witness",
               "peer=%s their_size=%llu our_size=%llu missing=%llu..%llu signed_at=%s",
               behind[i].witness, (unsigned long long)behind[i].head.size, (unsigned long long)size,
               (unsigned long long)size, (unsigned long long)behind[i].head.size - 1,
               utc(behind[i].head.timestamp_ms, t));
    const bg_audit_held *m = largest(behind, nb);
    char note[600];
    snprintf(note, sizeof note,
             "Written by 'baygate serve', which refused to start: the witnesses below hold\n"
             "heads of this log beyond its %llu leaves. 'baygate restore --accept-loss'\n"
             "copies this file to accept-loss.txt: the next start then gives them up.",
             (unsigned long long)size);
    bg_err sub = {0};
    if (audit_path(gw, BG_AUDIT_BEHIND_FILE, path, &sub) != BG_OK ||
        bg_audit_held_write(path, note, behind, nb, &sub) != BG_OK)
        bg_log(BG_LOG_ERROR, "audit.behind_not_noted", "error=\"%s\"", sub.msg);
    utc(m->head.timestamp_ms, t);
    return bg_err_set(
        err, BG_EABORTED,
        "the evidence log holds %llu leaves, but %s cosigned a head of size %llu (signed %s): "
        "leaves %llu..%llu are missing. Restore a backup taken after %s (its manifest's log "
        "size at least %llu), or accept the loss with 'baygate restore --accept-loss --dir "
        "%s' and start again",
        (unsigned long long)size, m->witness, (unsigned long long)m->head.size, t,
        (unsigned long long)size, (unsigned long long)m->head.size - 1, t,
        (unsigned long long)m->head.size, gw->cfg.dir);
}

/* Whether the operator's consent (accept-loss.txt) names every head of behind. */
static bool
consented(bg_gw *gw, const bg_audit_held *behind, size_t nb)
{
    char path[WD_PATH_MAX];
    bg_audit_held ok[BG_AUDIT_HELD_MAX];
    size_t nok = 0;
    bg_err err = {0};
    if (audit_path(gw, BG_AUDIT_ACCEPT_FILE, path, &err) != BG_OK)
        return false;
    int rc = bg_audit_held_read(path, gw->cfg.city, ok, BG_AUDIT_HELD_MAX, &nok, &err);
    if (rc != BG_OK) {
        if (rc != BG_ENOTFOUND)
            bg_log(BG_LOG_ERROR, "audit.accept_loss_unreadable", "error=\"%s\"", err.msg);
        return false;
    }
    for (size_t i = 0; i < nb; i++) {
        bool found = false;
        for (size_t k = 0; k < nok && !found; k++)
            found = strcmp(ok[k].witness, behind[i].witness) == 0 &&
                    ok[k].head.head_len == behind[i].head.head_len &&
                    memcmp(ok[k].head.head, behind[i].head.head, ok[k].head.head_len) == 0;
        if (!found) {
            bg_log(BG_LOG_ERROR, "audit.accept_loss_stale",
                   "peer=%s their_size=%llu effect=\"the accepted loss is not what the witness "
                   "holds now: nothing given up\"",
                   behind[i].witness, (unsigned long long)behind[i].head.size);
            return false;
        }
    }
    return true;
}

/* Removes the audit directory's note and consent files (the check is settled). */
static void
settle(bg_gw *gw)
{
    char path[WD_PATH_MAX];
    if (audit_path(gw, BG_AUDIT_BEHIND_FILE, path, NULL) == BG_OK)
        unlink(path);
    if (audit_path(gw, BG_AUDIT_ACCEPT_FILE, path, NULL) == BG_OK)
        unlink(path);
}

/* A head of every leaf we hold, if our latest is older: a restore brings back the leaves
 * a witness cosigned, but maybe not the last heads over them (heads.log's copy is taken
 * first), and a witness that cosigned a later head of the same leaves would take our
 * older latest head for a shrink (a false fork). Before the servers start, so no witness
 * asks for a head in between. */
static void
sign_current(bg_gw *gw)
{
    bg_audit_head latest;
    uint64_t size = bg_audit_size(gw->audit);
    if (size == 0 ||
        (bg_audit_head_latest(gw->audit, &latest, NULL) == BG_OK && latest.size >= size))
        return;
    /* One that cannot be signed is logged (audit.head_failed) and tried again by the tick. */
    gw_ident *me = gw_ident_get(gw);
    gw_evidence_tick(gw, me->id->key, true);
    gw_ident_release(me);
}

/* The distinct heads of behind, for the statement. */
static size_t
distinct(const bg_audit_held *behind, size_t nb, bg_audit_head out[BG_AUDIT_LOSS_HEADS_MAX])
{
    size_t n = 0;
    for (size_t i = 0; i < nb; i++) {
        bool seen = false;
        for (size_t k = 0; k < n && !seen; k++)
            seen = out[k].head_len == behind[i].head.head_len &&
                   memcmp(out[k].head, behind[i].head.head, out[k].head_len) == 0;
        if (!seen && n < BG_AUDIT_LOSS_HEADS_MAX)
            out[n++] = behind[i].head;
    }
    return n;
}

/* Signs and keeps a statement giving up behind's heads, then a head of the log as it
 * is, so witnesses get one that extends the statement's base. */
static int
accept_loss(bg_gw *gw, const bg_audit_held *behind, size_t nb, bg_err *err)
{
    char dir[WD_PATH_MAX];
    bg_audit_head heads[BG_AUDIT_LOSS_HEADS_MAX];
    size_t n = distinct(behind, nb, heads);
    uint64_t size = bg_audit_size(gw->audit);
    bg_audit_hash root;
    bg_audit_loss *l = malloc(sizeof *l);
    if (l == NULL)
        return bg_err_set(err, BG_ENOMEM, "out of memory");
    gw_ident *me = gw_ident_get(gw);
    int rc = audit_path(gw, NULL, dir, err);
    if (rc == BG_OK)
        rc = bg_audit_root(gw->audit, size, root, err);
    if (rc == BG_OK)
        rc = bg_audit_loss_make(me->id->key, gw->cfg.city, size, root, heads, n, bg_env_now_ms(), l,
                                err);
    if (rc == BG_OK)
        rc = bg_audit_loss_append(dir, l, err);
    bg_audit_head latest;
    if (rc == BG_OK &&
        (bg_audit_head_latest(gw->audit, &latest, NULL) != BG_OK || latest.size < size))
        rc = bg_audit_sign_head(gw->audit, me->id->key, bg_env_now_ms(), NULL, err);
    gw_ident_release(me);
    if (rc != BG_OK) {
        free(l);
        return rc;
    }
    free(gw->loss);
    gw->loss = l;
    for (size_t i = 0; i < nb; i++)
        bg_log(BG_LOG_WARN, "audit.loss_accepted",
               "peer=%s their_size=%llu base=%llu lost=%llu..%llu", behind[i].witness,
               (unsigned long long)behind[i].head.size, (unsigned long long)size,
               (unsigned long long)size, (unsigned long long)behind[i].head.size - 1);
    settle(gw);
    return BG_OK;
}

/* ------------------------------------------------------------ check */

int
gw_witnessed_check(bg_gw *gw, bg_err *err)
{
    char dir[WD_PATH_MAX];
    int rc = audit_path(gw, NULL, dir, err);
    if (rc != BG_OK)
        return rc;
    bg_audit_loss *l = malloc(sizeof *l);
    if (l == NULL)
        return bg_err_set(err, BG_ENOMEM, "out of memory");
    bg_err sub = {0};
    rc = bg_audit_loss_latest(dir, gw->cfg.city, l, NULL, &sub);
    if (rc == BG_OK) {
        gw->loss = l;
    } else {
        free(l);
        if (rc != BG_ENOTFOUND)
            return bg_err_set(err, rc, "%s", sub.msg);
    }
    bg_audit_held held[BG_AUDIT_HELD_MAX], behind[BG_AUDIT_HELD_MAX];
    size_t n = 0, asked = 0;
    size_t unchecked = collect(gw, held, &n, &asked);
    size_t nb = classify(gw, held, n, behind);
    bg_log(BG_LOG_INFO, "audit.witnesses_checked",
           "answered=%zu unreachable=%zu behind=%zu size=%llu", asked - unchecked, unchecked, nb,
           (unsigned long long)bg_audit_size(gw->audit));
    if (nb == 0) {
        settle(gw);
        sign_current(gw);
        return BG_OK;
    }
    if (consented(gw, behind, nb))
        return accept_loss(gw, behind, nb, err);
    return refuse(gw, behind, nb, err);
}

void
gw_witnessed_close(bg_gw *gw)
{
    free(gw->loss);
    gw->loss = NULL;
}

/* ------------------------------------------------------------ answering */

void
gw_witnessed_answer(bg_gw *gw, const bg_env_opened *o, bg_tp_request *req)
{
    Baygate__CosignedRequest *cr =
        bg_pb_unpack(&baygate__cosigned_request__descriptor, o->body_len, o->body);
    if (cr == NULL) {
        gw_refuse(gw, NULL, o, req, BG_GW_E_BAD_BODY, "audit.witness_refused",
                  "cosigned request does not parse");
        return;
    }
    bg_pb_free(cr);
    bg_audit_head h;
    pthread_mutex_lock(&gw->witness_store_lock);
    int rc = bg_audit_witness_last(gw->witness, o->sender, &h, NULL);
    pthread_mutex_unlock(&gw->witness_store_lock);
    uint8_t enc[BG_AUDIT_SIGNED_HEAD_MAX], body[BG_AUDIT_SIGNED_HEAD_MAX + 8];
    size_t elen = 0, blen = 0;
    Baygate__CosignedAnswer ca = BAYGATE__COSIGNED_ANSWER__INIT;
    if (rc == BG_OK && bg_audit_head_encode(&h, enc, &elen, NULL) == BG_OK)
        ca.signed_head = (ProtobufCBinaryData){.data = enc, .len = elen};
    blen = baygate__cosigned_answer__pack(&ca, body);
    gw_answer(gw, NULL, o, req, BAYGATE__WITNESS_BODY__WITNESS_BODY_COSIGNED_ANSWER, body, blen);
}
