/*
 * audit_witness.c - witnessing peers' logs and keeping the cosignatures.
 *
 * The store is witness.log, an append-only record file (same format as the
 * leaves) of WitnessRecord messages, replayed at open: per peer the last head
 * we cosigned (the one every later head must extend), the cosignatures peers
 * sent us for our own heads, and the conflicts we saw. A head is recorded
 * (synced) before its cosignature is handed out, so after a crash we can never
 * have cosigned something we do not remember and then cosign a fork of it.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/file.h"
#include "gateway/audit/audit_int.h"
#include "proto/pb.h"

struct peer_state {
    char city[7];
    bg_audit_head last;
    bg_audit_cosig last_cosig;
    uint64_t cosigned, conflicts, losses;
};

struct conflict {
    bg_audit_head refused, previous;
    char reason[BG_AUDIT_REASON_MAX + 1];
};

struct bg_audit_witness {
    char self[7];
    bool read_only;
    bg_rec_file f;
    pthread_mutex_t mu;
    struct peer_state *peers;
    size_t npeers, peers_cap;
    bg_audit_cosig *received;
    size_t nreceived, received_cap;
    struct conflict *conflicts;
    size_t nconflicts, conflicts_cap;
    size_t nlosses; /* acknowledged losses (WitnessLoss records) */
};

/* Grows *arr (of *cap elements of size sz) to hold one more than n. */
static int
grow(void **arr, size_t *cap, size_t n, size_t sz, bg_err *err)
{
    if (n < *cap)
        return BG_OK;
    size_t c = *cap ? *cap * 2 : 8;
    void *p = realloc(*arr, c * sz);
    if (p == NULL)
        return bg_err_set(err, BG_ENOMEM, "out of memory in the witness store");
    *arr = p;
    *cap = c;
    return BG_OK;
}

static struct peer_state *
find_peer(bg_audit_witness *w, const char *city)
{
    for (size_t i = 0; i < w->npeers; i++)
        if (strcmp(w->peers[i].city, city) == 0)
            return &w->peers[i];
    return NULL;
}

static int
add_peer(bg_audit_witness *w, const char *city, struct peer_state **out, bg_err *err)
{
    int rc = grow((void **)&w->peers, &w->peers_cap, w->npeers, sizeof *w->peers, err);
    if (rc != BG_OK)
        return rc;
    struct peer_state *p = &w->peers[w->npeers++];
    memset(p, 0, sizeof *p);
    memcpy(p->city, city, 7);
    *out = p;
    return BG_OK;
}

/* --- applying records (at open, and after writing a new one) --- */

static int
apply_seen(bg_audit_witness *w, const bg_audit_head *h, const bg_audit_cosig *c, bg_err *err)
{
    struct peer_state *p = find_peer(w, h->origin);
    int rc = BG_OK;
    if (p == NULL && (rc = add_peer(w, h->origin, &p, err)) != BG_OK)
        return rc;
    p->last = *h;
    p->last_cosig = *c;
    p->cosigned++;
    return BG_OK;
}

static int
apply_conflict(bg_audit_witness *w, const bg_audit_head *refused, const bg_audit_head *previous,
               const char *reason, bg_err *err)
{
    int rc =
        grow((void **)&w->conflicts, &w->conflicts_cap, w->nconflicts, sizeof *w->conflicts, err);
    if (rc != BG_OK)
        return rc;
    struct conflict *c = &w->conflicts[w->nconflicts++];
    c->refused = *refused;
    c->previous = *previous;
    snprintf(c->reason, sizeof c->reason, "%s", reason);
    struct peer_state *p = find_peer(w, refused->origin);
    if (p != NULL)
        p->conflicts++;
    return BG_OK;
}

static int
apply_received(bg_audit_witness *w, const bg_audit_cosig *c, bg_err *err)
{
    int rc = grow((void **)&w->received, &w->received_cap, w->nreceived, sizeof *w->received, err);
    if (rc != BG_OK)
        return rc;
    w->received[w->nreceived++] = *c;
    return BG_OK;
}

static int on_loss_record(bg_audit_witness *w, const Baygate__WitnessLoss *wl, bg_err *err);

static int
on_record(void *ctx, uint64_t off, const uint8_t *data, size_t len, const bg_audit_hash sum,
          bg_err *err)
{
    (void)sum;
    bg_audit_witness *w = ctx;
    Baygate__WitnessRecord *m = bg_pb_unpack(&baygate__witness_record__descriptor, len, data);
    if (m == NULL)
        return bg_err_set(err, BG_EPROTO, "%s: record at offset %" PRIu64 " does not parse",
                          w->f.path, off);
    bg_err sub = {0};
    int rc = BG_OK;
    bg_audit_head h, prev;
    bg_audit_cosig c;
    if (m->base.n_unknown_fields != 0) {
        rc = bg_err_set(&sub, BG_EPROTO, "unknown fields");
    } else if (m->what_case == BAYGATE__WITNESS_RECORD__WHAT_SEEN && m->seen != NULL) {
        if ((rc = bg_audit_head_decode(m->seen->head.data, m->seen->head.len, &h, &sub)) == BG_OK &&
            (rc = bg_audit_cosig_decode(m->seen->cosignature.data, m->seen->cosignature.len, &c,
                                        &sub)) == BG_OK) {
            if (strcmp(c.witness, w->self) != 0 || c.head.head_len != h.head_len ||
                memcmp(c.head.head, h.head, h.head_len) != 0)
                rc = bg_err_set(&sub, BG_EPROTO, "cosignature does not match the head");
            else
                rc = apply_seen(w, &h, &c, &sub);
        }
    } else if (m->what_case == BAYGATE__WITNESS_RECORD__WHAT_RECEIVED) {
        if ((rc = bg_audit_cosig_decode(m->received.data, m->received.len, &c, &sub)) == BG_OK)
            rc = apply_received(w, &c, &sub);
    } else if (m->what_case == BAYGATE__WITNESS_RECORD__WHAT_CONFLICT && m->conflict != NULL) {
        if (strlen(m->conflict->reason) > BG_AUDIT_REASON_MAX)
            rc = bg_err_set(&sub, BG_EPROTO, "reason too long");
        else if ((rc = bg_audit_head_decode(m->conflict->head.data, m->conflict->head.len, &h,
                                            &sub)) == BG_OK &&
                 (rc = bg_audit_head_decode(m->conflict->previous.data, m->conflict->previous.len,
                                            &prev, &sub)) == BG_OK)
            rc = apply_conflict(w, &h, &prev, m->conflict->reason, &sub);
    } else if (m->what_case == BAYGATE__WITNESS_RECORD__WHAT_LOSS && m->loss != NULL) {
        rc = on_loss_record(w, m->loss, &sub);
    } else {
        rc = bg_err_set(&sub, BG_EPROTO, "empty record");
    }
    bg_pb_free(m);
    if (rc != BG_OK)
        return bg_err_set(err, rc, "%s: record at offset %" PRIu64 ": %s", w->f.path, off, sub.msg);
    return BG_OK;
}

/* Writes one record, synced. Caller holds mu. */
static int
write_record(bg_audit_witness *w, const Baygate__WitnessRecord *m, bg_err *err)
{
    size_t n = baygate__witness_record__get_packed_size(m);
    if (n > BG_AUDIT_RECORD_MAX)
        return bg_err_set(err, BG_ELIMIT, "witness record too large");
    uint8_t body[BG_AUDIT_RECORD_MAX], framed[BG_AUDIT_RECORD_MAX + BG_AUDIT_REC_OVERHEAD];
    baygate__witness_record__pack(m, body);
    size_t flen = bg_rec_frame(framed, body, n, NULL);
    return bg_rec_append(&w->f, framed, flen, err);
}

int
bg_audit_witness_open(bg_audit_witness **out, const char *dir, const char *self_city,
                      unsigned flags, bg_audit_open_report *rep, bg_err *err)
{
    *out = NULL;
    if (!bg_audit_city_ok(self_city))
        return bg_err_set(err, BG_EINVAL, "witness store: city '%s' is not a 6-digit code",
                          self_city);
    bg_audit_witness *w = calloc(1, sizeof *w);
    if (w == NULL)
        return bg_err_set(err, BG_ENOMEM, "out of memory");
    w->f.fd = -1;
    memcpy(w->self, self_city, 7);
    w->read_only = (flags & BG_AUDIT_READ_ONLY) != 0;
    if (pthread_mutex_init(&w->mu, NULL) != 0) {
        free(w);
        return bg_err_set(err, BG_ENOMEM, "cannot make a mutex");
    }
    bg_audit_open_report local;
    if (rep == NULL)
        rep = &local;
    memset(rep, 0, sizeof *rep);
    char path[1100];
    int rc = bg_path_join(path, sizeof path, dir, BG_AUDIT_WITNESS_FILE, err);
    if (rc == BG_OK)
        rc = bg_rec_open(&w->f, path, w->read_only ? flags : flags | BG_AUDIT_CREATE, !w->read_only,
                         BG_AUDIT_RECORD_MAX, on_record, w, rep, err);
    if (rc != BG_OK) {
        bg_audit_witness_close(w);
        return rc;
    }
    *out = w;
    return BG_OK;
}

void
bg_audit_witness_close(bg_audit_witness *w)
{
    if (w == NULL)
        return;
    bg_rec_close(&w->f);
    free(w->peers);
    free(w->received);
    free(w->conflicts);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

const char *
bg_audit_verdict_name(bg_audit_verdict v)
{
    switch (v) {
    case BG_AUDIT_W_OK:
        return "ok";
    case BG_AUDIT_W_BAD_INPUT:
        return "bad-input";
    case BG_AUDIT_W_SHRUNK:
        return "shrunk";
    case BG_AUDIT_W_FORK:
        return "fork";
    case BG_AUDIT_W_INCONSISTENT:
        return "inconsistent";
    case BG_AUDIT_W_STORE:
        return "store";
    }
    return "?";
}

/* Keeps a refused head and the one it contradicts as evidence. Caller holds mu. */
static void
record_conflict(bg_audit_witness *w, const bg_audit_head *refused, const bg_audit_head *previous,
                int64_t now_ms, const char *reason, bg_err *err)
{
    uint8_t a[BG_AUDIT_SIGNED_HEAD_MAX], b[BG_AUDIT_SIGNED_HEAD_MAX];
    size_t alen, blen;
    bg_err sub = {0};
    char why[BG_AUDIT_REASON_MAX + 1];
    snprintf(why, sizeof why, "%s", reason);
    Baygate__WitnessConflict wc = BAYGATE__WITNESS_CONFLICT__INIT;
    Baygate__WitnessRecord m = BAYGATE__WITNESS_RECORD__INIT;
    if (bg_audit_head_encode(refused, a, &alen, &sub) != BG_OK ||
        bg_audit_head_encode(previous, b, &blen, &sub) != BG_OK)
        goto fail;
    wc.head.data = a;
    wc.head.len = alen;
    wc.previous.data = b;
    wc.previous.len = blen;
    wc.seen_at_ms = now_ms;
    wc.reason = why;
    m.what_case = BAYGATE__WITNESS_RECORD__WHAT_CONFLICT;
    m.conflict = &wc;
    if (write_record(w, &m, &sub) != BG_OK ||
        apply_conflict(w, refused, previous, why, &sub) != BG_OK)
        goto fail;
    return;
fail:
    /* The refusal stands either way; say that the evidence was not kept. */
    {
        size_t used = strlen(err->msg);
        snprintf(err->msg + used, sizeof err->msg - used, " (evidence not recorded: %s)", sub.msg);
    }
}

/* What bg_audit_witness_check is asked to cosign. */
struct witness_req {
    const char *peer;
    const bg_audit_head *head;
    const bg_audit_hash *proof;
    size_t proof_len;
    int64_t now_ms;
};

/* Refusals that need no state: the store is writable, the head is the
 * peer's own and its fields are the bytes its signature covers. */
static int
witness_input_ok(const bg_audit_witness *w, const struct witness_req *q, bg_err *err)
{
    const bg_audit_head *head = q->head;
    if (w->read_only)
        return bg_err_set(err, BG_EINVAL, "witness store: open read-only");
    if (!bg_audit_city_ok(q->peer))
        return bg_err_set(err, BG_EINVAL, "witness: peer '%s' is not a 6-digit code", q->peer);
    if (strcmp(q->peer, w->self) == 0)
        return bg_err_set(err, BG_EINVAL, "witness: %s cannot witness its own log", q->peer);
    if (strcmp(head->origin, q->peer) != 0)
        return bg_err_set(err, BG_EINVAL, "witness: a head of %s presented as %s's", head->origin,
                          q->peer);
    if (q->proof_len > BG_AUDIT_PROOF_MAX)
        return bg_err_set(err, BG_EINVAL, "witness: consistency proof of %zu hashes", q->proof_len);
    bg_audit_head parsed;
    bg_err sub = {0};
    if (bg_audit_tree_head_parse(head->head, head->head_len, &parsed, &sub) != BG_OK ||
        parsed.size != head->size || parsed.timestamp_ms != head->timestamp_ms ||
        strcmp(parsed.origin, head->origin) != 0 ||
        memcmp(parsed.root, head->root, BG_AUDIT_HASH_LEN) != 0 || head->sig_len == 0)
        return bg_err_set(err, BG_EINVAL,
                          "witness: the head's fields are not its signed bytes, or it is "
                          "unsigned");
    return BG_OK;
}

/* The head against the last one cosigned for its peer, in the order of
 * audit.h: BG_OK if it extends it consistently, BG_OK with *again if it is
 * that very head (a retry), else the refusal, its evidence kept. Caller
 * holds mu. */
static int
witness_compare(bg_audit_witness *w, const bg_audit_head *last, const struct witness_req *q,
                bg_audit_verdict *verdict, bool *again, bg_err *err)
{
    const bg_audit_head *head = q->head;
    int rc;
    if (head->size < last->size) {
        *verdict = BG_AUDIT_W_SHRUNK;
        rc = bg_err_set(err, BG_ECRYPTO,
                        "witness: %s's log shrank: head of size %" PRIu64
                        " after we cosigned size %" PRIu64 "; refused",
                        q->peer, head->size, last->size);
        record_conflict(w, head, last, q->now_ms, "shrunk", err);
        return rc;
    }
    if (head->size == last->size && memcmp(head->root, last->root, BG_AUDIT_HASH_LEN) != 0) {
        char lh[2 * BG_AUDIT_HASH_LEN + 1], nh[2 * BG_AUDIT_HASH_LEN + 1];
        bg_audit_hash_hex(last->root, lh);
        bg_audit_hash_hex(head->root, nh);
        *verdict = BG_AUDIT_W_FORK;
        rc = bg_err_set(err, BG_ECRYPTO,
                        "witness: FORK in %s's log: two different roots at size %" PRIu64
                        " (cosigned %.16s..., now %.16s...); refused",
                        q->peer, head->size, lh, nh);
        record_conflict(w, head, last, q->now_ms, "fork: same size, different root", err);
        return rc;
    }
    if (head->head_len == last->head_len && memcmp(head->head, last->head, head->head_len) == 0) {
        *again = true;
        return BG_OK;
    }
    bg_err sub = {0};
    if (bg_audit_verify_consistency(last->size, head->size, last->root, head->root, q->proof,
                                    q->proof_len, &sub) != BG_OK) {
        *verdict = BG_AUDIT_W_INCONSISTENT;
        rc = bg_err_set(err, BG_ECRYPTO,
                        "witness: %s's head of size %" PRIu64 " is not consistent with the "
                        "head of size %" PRIu64 " we cosigned (%s): a fork or a rewritten "
                        "history; refused",
                        q->peer, head->size, last->size, sub.msg);
        record_conflict(w, head, last, q->now_ms, "inconsistent with the cosigned head", err);
        return rc;
    }
    return BG_OK;
}

/* Cosigns the head and keeps it with the cosignature. Room in memory first
 * (first_sight: no peer entry yet), then disk, then memory: never cosigned but
 * forgotten. Caller holds mu. */
static int
witness_cosign(bg_audit_witness *w, EVP_PKEY *key, bool first_sight, const struct witness_req *q,
               bg_audit_cosig *out, bg_audit_verdict *verdict, bg_err *err)
{
    bg_audit_cosig c;
    uint8_t hb[BG_AUDIT_SIGNED_HEAD_MAX], cb[BG_AUDIT_SIGNED_COSIG_MAX];
    size_t hlen, clen;
    int rc;
    *verdict = BG_AUDIT_W_STORE;
    if ((rc = bg_audit_cosig_make(key, w->self, q->head, q->now_ms, &c, err)) != BG_OK ||
        (rc = bg_audit_head_encode(q->head, hb, &hlen, err)) != BG_OK ||
        (rc = bg_audit_cosig_encode(&c, cb, &clen, err)) != BG_OK)
        return rc;
    c.head = *q->head; /* keep the origin's signature with it */
    Baygate__WitnessSeen ws = BAYGATE__WITNESS_SEEN__INIT;
    Baygate__WitnessRecord m = BAYGATE__WITNESS_RECORD__INIT;
    ws.head.data = hb;
    ws.head.len = hlen;
    ws.cosignature.data = cb;
    ws.cosignature.len = clen;
    m.what_case = BAYGATE__WITNESS_RECORD__WHAT_SEEN;
    m.seen = &ws;
    if (first_sight &&
        (rc = grow((void **)&w->peers, &w->peers_cap, w->npeers, sizeof *w->peers, err)) != BG_OK)
        return rc;
    if ((rc = write_record(w, &m, err)) != BG_OK)
        return rc;
    rc = apply_seen(w, q->head, &c, err); /* cannot fail: room was made */
    if (rc == BG_OK) {
        *verdict = BG_AUDIT_W_OK;
        if (out != NULL)
            *out = c;
    }
    return rc;
}

int
bg_audit_witness_check(bg_audit_witness *w, EVP_PKEY *key, const char *peer,
                       const bg_audit_head *head, const bg_audit_hash *proof, size_t proof_len,
                       int64_t now_ms, bg_audit_cosig *out, bg_audit_verdict *verdict, bg_err *err)
{
    bg_audit_verdict local_v;
    bg_err local_e = {0};
    if (verdict == NULL)
        verdict = &local_v;
    if (err == NULL) /* record_conflict appends to the message */
        err = &local_e;
    *verdict = BG_AUDIT_W_BAD_INPUT;
    const struct witness_req q = {
        .peer = peer, .head = head, .proof = proof, .proof_len = proof_len, .now_ms = now_ms};
    int rc = witness_input_ok(w, &q, err);
    if (rc != BG_OK)
        return rc;

    pthread_mutex_lock(&w->mu);
    struct peer_state *p = find_peer(w, peer);
    bool again = false;
    if (p != NULL)
        rc = witness_compare(w, &p->last, &q, verdict, &again, err);
    if (rc == BG_OK && again) {
        /* The same head again (a retry): the cosignature already made. */
        *verdict = BG_AUDIT_W_OK;
        if (out != NULL)
            *out = p->last_cosig;
    } else if (rc == BG_OK) {
        /* First sight of this peer (trust on first use) or a consistent extension. */
        rc = witness_cosign(w, key, p == NULL, &q, out, verdict, err);
    }
    pthread_mutex_unlock(&w->mu);
    return rc;
}

int
bg_audit_witness_last(bg_audit_witness *w, const char *peer, bg_audit_head *head, bg_err *err)
{
    pthread_mutex_lock(&w->mu);
    struct peer_state *p = find_peer(w, peer);
    int rc = BG_OK;
    if (p == NULL)
        rc = bg_err_set(err, BG_ENOTFOUND, "witness: no head of %s cosigned yet", peer);
    else
        *head = p->last;
    pthread_mutex_unlock(&w->mu);
    return rc;
}

int
bg_audit_witness_add_received(bg_audit_witness *w, const bg_audit_cosig *c, bg_err *err)
{
    if (w->read_only)
        return bg_err_set(err, BG_EINVAL, "witness store: open read-only");
    if (strcmp(c->head.origin, w->self) != 0)
        return bg_err_set(err, BG_EINVAL, "witness: a cosignature of %s's head, not ours (%s)",
                          c->head.origin, w->self);
    if (strcmp(c->witness, w->self) == 0)
        return bg_err_set(err, BG_EINVAL, "witness: %s cannot cosign its own head", c->witness);
    uint8_t cb[BG_AUDIT_SIGNED_COSIG_MAX];
    size_t clen;
    int rc = bg_audit_cosig_encode(c, cb, &clen, err);
    if (rc != BG_OK)
        return rc;
    /* Decode what will be stored, so memory holds exactly what replay will. */
    bg_audit_cosig stored;
    if ((rc = bg_audit_cosig_decode(cb, clen, &stored, err)) != BG_OK)
        return rc;
    pthread_mutex_lock(&w->mu);
    for (size_t i = 0; i < w->nreceived; i++) {
        const bg_audit_cosig *r = &w->received[i];
        if (r->body_len == stored.body_len && memcmp(r->body, stored.body, r->body_len) == 0) {
            pthread_mutex_unlock(&w->mu);
            return BG_OK;
        }
        if (strcmp(r->witness, stored.witness) == 0 && r->head.size == stored.head.size) {
            pthread_mutex_unlock(&w->mu);
            return bg_err_set(err, BG_EEXIST,
                              "witness: %s already cosigned our head of size %llu (one kept "
                              "per witness and size)",
                              stored.witness, (unsigned long long)stored.head.size);
        }
    }
    Baygate__WitnessRecord m = BAYGATE__WITNESS_RECORD__INIT;
    m.what_case = BAYGATE__WITNESS_RECORD__WHAT_RECEIVED;
    m.received.data = cb;
    m.received.len = clen;
    rc = grow((void **)&w->received, &w->received_cap, w->nreceived, sizeof *w->received, err);
    if (rc == BG_OK)
        rc = write_record(w, &m, err);
    if (rc == BG_OK)
        rc = apply_received(w, &stored, err);
    pthread_mutex_unlock(&w->mu);
    return rc;
}

/* *n (one of w's counts), read under w->mu. */
static size_t
count_locked(bg_audit_witness *w, const size_t *n)
{
    pthread_mutex_lock(&w->mu);
    size_t v = *n;
    pthread_mutex_unlock(&w->mu);
    return v;
}

size_t
bg_audit_witness_peer_count(bg_audit_witness *w)
{
    return count_locked(w, &w->npeers);
}

int
bg_audit_witness_peer(bg_audit_witness *w, size_t i, bg_audit_peer_info *out, bg_err *err)
{
    int rc = BG_OK;
    pthread_mutex_lock(&w->mu);
    if (i >= w->npeers) {
        rc = bg_err_set(err, BG_ENOTFOUND, "witness: no peer %zu", i);
    } else {
        const struct peer_state *p = &w->peers[i];
        memset(out, 0, sizeof *out);
        memcpy(out->peer, p->city, 7);
        out->last = p->last;
        out->cosigned = p->cosigned;
        out->last_cosigned_ms = p->last_cosig.cosigned_at_ms;
        out->conflicts = p->conflicts;
        out->losses = p->losses;
    }
    pthread_mutex_unlock(&w->mu);
    return rc;
}

size_t
bg_audit_witness_received_count(bg_audit_witness *w)
{
    return count_locked(w, &w->nreceived);
}

int
bg_audit_witness_received(bg_audit_witness *w, size_t i, bg_audit_cosig *out, bg_err *err)
{
    int rc = BG_OK;
    pthread_mutex_lock(&w->mu);
    if (i >= w->nreceived)
        rc = bg_err_set(err, BG_ENOTFOUND, "witness: no received cosignature %zu", i);
    else
        *out = w->received[i];
    pthread_mutex_unlock(&w->mu);
    return rc;
}

size_t
bg_audit_witness_conflict_count(bg_audit_witness *w)
{
    return count_locked(w, &w->nconflicts);
}

int
bg_audit_witness_conflict(bg_audit_witness *w, size_t i, bg_audit_head *refused,
                          bg_audit_head *previous, char reason[BG_AUDIT_REASON_MAX + 1],
                          bg_err *err)
{
    int rc = BG_OK;
    pthread_mutex_lock(&w->mu);
    if (i >= w->nconflicts) {
        rc = bg_err_set(err, BG_ENOTFOUND, "witness: no conflict %zu", i);
    } else {
        if (refused != NULL)
            *refused = w->conflicts[i].refused;
        if (previous != NULL)
            *previous = w->conflicts[i].previous;
        if (reason != NULL)
            memcpy(reason, w->conflicts[i].reason, BG_AUDIT_REASON_MAX + 1);
    }
    pthread_mutex_unlock(&w->mu);
    return rc;
}

/* --- acknowledged losses --- */

/* Replays a WitnessLoss record: the new head becomes the peer's last. */
static int
on_loss_record(bg_audit_witness *w, const Baygate__WitnessLoss *wl, bg_err *err)
{
    bg_audit_head h, prev;
    bg_audit_cosig c;
    bg_audit_loss *l = malloc(sizeof *l);
    if (l == NULL)
        return bg_err_set(err, BG_ENOMEM, "out of memory");
    int rc = bg_audit_head_decode(wl->head.data, wl->head.len, &h, err);
    if (rc == BG_OK)
        rc = bg_audit_head_decode(wl->previous.data, wl->previous.len, &prev, err);
    if (rc == BG_OK)
        rc = bg_audit_cosig_decode(wl->cosignature.data, wl->cosignature.len, &c, err);
    if (rc == BG_OK)
        rc = bg_audit_loss_decode(wl->statement.data, wl->statement.len, l, err);
    if (rc == BG_OK && (strcmp(c.witness, w->self) != 0 || c.head.head_len != h.head_len ||
                        memcmp(c.head.head, h.head, h.head_len) != 0 ||
                        strcmp(l->origin, h.origin) != 0 || !bg_audit_loss_covers(l, &prev)))
        rc = bg_err_set(err, BG_EPROTO, "loss record: cosignature, head and statement disagree");
    free(l);
    if (rc == BG_OK)
        rc = apply_seen(w, &h, &c, err);
    if (rc == BG_OK) {
        find_peer(w, h.origin)->losses++;
        w->nlosses++;
    }
    return rc;
}

/* The head's fields must be its signed bytes, and it must be signed. */
static int
loss_head_ok(const bg_audit_head *head, bg_err *err)
{
    bg_audit_head parsed;
    bg_err sub = {0};
    if (bg_audit_tree_head_parse(head->head, head->head_len, &parsed, &sub) != BG_OK ||
        parsed.size != head->size || parsed.timestamp_ms != head->timestamp_ms ||
        strcmp(parsed.origin, head->origin) != 0 ||
        memcmp(parsed.root, head->root, BG_AUDIT_HASH_LEN) != 0 || head->sig_len == 0)
        return bg_err_set(err, BG_EINVAL,
                          "witness: the head's fields are not its signed bytes, or it is unsigned");
    return BG_OK;
}

/* Writes the WitnessLoss record of an accepted loss and applies it. Caller holds mu;
 * room for the peer exists. */
static int
record_loss(bg_audit_witness *w, struct peer_state *p, const bg_audit_loss *loss,
            const bg_audit_head *head, const bg_audit_cosig *c, bg_err *err)
{
    uint8_t hb[BG_AUDIT_SIGNED_HEAD_MAX], pb[BG_AUDIT_SIGNED_HEAD_MAX];
    uint8_t cb[BG_AUDIT_SIGNED_COSIG_MAX], lb[BG_AUDIT_SIGNED_LOSS_MAX];
    size_t hlen, plen, clen, llen;
    int rc;
    if ((rc = bg_audit_head_encode(head, hb, &hlen, err)) != BG_OK ||
        (rc = bg_audit_head_encode(&p->last, pb, &plen, err)) != BG_OK ||
        (rc = bg_audit_cosig_encode(c, cb, &clen, err)) != BG_OK ||
        (rc = bg_audit_loss_encode(loss, lb, &llen, err)) != BG_OK)
        return rc;
    Baygate__WitnessLoss wl = BAYGATE__WITNESS_LOSS__INIT;
    wl.head = (ProtobufCBinaryData){.data = hb, .len = hlen};
    wl.previous = (ProtobufCBinaryData){.data = pb, .len = plen};
    wl.cosignature = (ProtobufCBinaryData){.data = cb, .len = clen};
    wl.statement = (ProtobufCBinaryData){.data = lb, .len = llen};
    Baygate__WitnessRecord m = BAYGATE__WITNESS_RECORD__INIT;
    m.what_case = BAYGATE__WITNESS_RECORD__WHAT_LOSS;
    m.loss = &wl;
    if ((rc = write_record(w, &m, err)) != BG_OK)
        return rc;
    p->last = *head;
    p->last_cosig = *c;
    p->cosigned++;
    p->losses++;
    w->nlosses++;
    return BG_OK;
}

int
bg_audit_witness_loss(bg_audit_witness *w, EVP_PKEY *key, const char *peer,
                      const bg_audit_loss *loss, const bg_audit_head *head,
                      const bg_audit_hash *proof, size_t proof_len, int64_t now_ms,
                      bg_audit_cosig *out, bg_audit_verdict *verdict, bg_err *err)
{
    bg_audit_verdict local_v;
    bg_err local_e = {0};
    if (verdict == NULL)
        verdict = &local_v;
    if (err == NULL) /* record_conflict appends to the message */
        err = &local_e;
    *verdict = BG_AUDIT_W_BAD_INPUT;
    if (w->read_only)
        return bg_err_set(err, BG_EINVAL, "witness store: open read-only");
    if (!bg_audit_city_ok(peer) || strcmp(peer, w->self) == 0 || strcmp(head->origin, peer) != 0 ||
        strcmp(loss->origin, peer) != 0)
        return bg_err_set(err, BG_EINVAL, "witness: a head or loss statement not of peer %s", peer);
    if (proof_len > BG_AUDIT_PROOF_MAX)
        return bg_err_set(err, BG_EINVAL, "witness: consistency proof of %zu hashes", proof_len);
    int rc = loss_head_ok(head, err);
    if (rc != BG_OK)
        return rc;
    pthread_mutex_lock(&w->mu);
    struct peer_state *p = find_peer(w, peer);
    if (p == NULL || !bg_audit_loss_covers(loss, &p->last)) {
        *verdict = BG_AUDIT_W_OK;
        rc = bg_err_set(err, BG_ENOTFOUND,
                        "witness: %s's loss statement does not give up the head we cosigned", peer);
        goto out;
    }
    bg_err sub = {0};
    if (head->size < loss->base_size ||
        bg_audit_verify_consistency(loss->base_size, head->size, loss->base_root, head->root, proof,
                                    proof_len, &sub) != BG_OK) {
        *verdict = BG_AUDIT_W_INCONSISTENT;
        rc = bg_err_set(err, BG_ECRYPTO,
                        "witness: %s's head of size %" PRIu64 " does not extend the base (size "
                        "%" PRIu64 ") of its loss statement (%s); refused",
                        peer, head->size, loss->base_size,
                        head->size < loss->base_size ? "smaller" : sub.msg);
        record_conflict(w, head, &p->last, now_ms, "inconsistent with its loss statement's base",
                        err);
        goto out;
    }
    bg_audit_cosig c;
    if ((rc = bg_audit_cosig_make(key, w->self, head, now_ms, &c, err)) != BG_OK) {
        *verdict = BG_AUDIT_W_STORE;
        goto out;
    }
    c.head = *head; /* keep the origin's signature with it */
    if ((rc = record_loss(w, p, loss, head, &c, err)) != BG_OK) {
        *verdict = BG_AUDIT_W_STORE;
        goto out;
    }
    *verdict = BG_AUDIT_W_OK;
    if (out != NULL)
        *out = c;
out:
    pthread_mutex_unlock(&w->mu);
    return rc;
}

size_t
bg_audit_witness_loss_count(bg_audit_witness *w)
{
    return count_locked(w, &w->nlosses);
}
