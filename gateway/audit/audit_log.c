/*
 * audit_log.c - the Merkle log: leaves on disk, hashes in memory, proofs,
 * signed tree heads.
 *
 * In memory, level[0] holds every leaf hash and level[k] the hash of every
 * complete, aligned subtree of 2^k leaves (level[k][j] covers leaves
 * j*2^k .. (j+1)*2^k - 1). Those never change once made, so they serve every
 * tree size at once: any subtree of an RFC 6962 tree of size n is either one
 * of them or splits into one of them and a smaller rightmost part, so a root
 * or a proof costs O(log n) lookups and hashes. About 64 bytes a leaf, plus
 * 8 for its file offset.
 *
 * Locking: write_mu lets one appender or signer at a time write the files;
 * rw guards the in-memory arrays.
 *
 * Appends use group commit, so that concurrent appenders share fdatasyncs
 * instead of queueing for one each. Under write_mu an appender grows the
 * arrays (under rw), writes its records at the written end (no sync), takes
 * the next indexes and queues itself. Then, while its records are not yet
 * durable: if no sync is running it becomes the syncer - notes the written
 * end, drops write_mu, fdatasyncs, retakes write_mu and publishes every
 * queued batch up to that end into the tree (under rw, in file order) and
 * wakes the waiters; otherwise it waits for the running sync, whose result
 * may already cover it. Appenders that arrive during a sync write behind it
 * and one of them syncs next, so n concurrent appends cost about two syncs,
 * not n. Nothing is visible before it is on disk, and indexes follow file
 * order because they are handed out in write order and published in it.
 *
 * Failures: a failed write is cut back to where it began (the records
 * queued before it are whole and stay queued); only that appender fails. A
 * failed sync fails every queued appender (none of their leaves become
 * visible), cuts the file back to the durable end as far as it can, and
 * marks the leaves file broken: after a failed fdatasync the page cache no
 * longer says what is on disk, so further appends refuse until reopened
 * (reopening rescans the file and repairs its tail).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "common/file.h"
#include "common/merkle.h"
#include "gateway/audit/audit_int.h"

#define LEVELS 64

int (*bg_audit_datasync)(int fd) = fdatasync;

/* One appender's batch between its write and its publication (on its stack). */
typedef struct pending {
    struct pending *next;
    const bg_audit_hash *sums;
    const uint64_t *lens;
    size_t n;
    uint64_t off, end; /* where its records start and end in the file */
    uint64_t first;    /* its first index */
    enum { P_QUEUED, P_DONE, P_FAILED } state;
    int sync_errno; /* P_FAILED: why */
} pending;

struct bg_audit_log {
    char dir[1024];
    char city[7];
    bool read_only;
    bg_rec_file leaves, heads_f;
    pthread_mutex_t write_mu;
    pthread_cond_t synced; /* a sync finished: queued appenders look again */
    pthread_rwlock_t rw;
    uint64_t n;          /* published leaves */
    uint64_t leaves_end; /* file offset just past the last published leaf */
    /* Group commit, under write_mu: written but not yet durable batches, in
     * file order; how many leaves are written (published + queued); whether
     * an appender is in fdatasync. The written end is leaves.end. */
    pending *queue, *queue_tail;
    uint64_t written_n;
    bool syncing;
    bg_audit_hash *level[LEVELS];
    uint64_t level_cap[LEVELS];
    uint64_t *off; /* file offset of each leaf's record */
    uint64_t off_cap;
    bg_audit_head *heads;
    size_t nheads, heads_cap;
};

/* --- the tree in memory --- */

/* Makes room for total leaves in every array. Caller holds rw for writing
 * (realloc moves the arrays) or is still opening the log. */
static int
reserve(bg_audit_log *log, uint64_t total, bg_err *err)
{
    if (total > BG_AUDIT_MAX_LEAVES)
        return bg_err_set(err, BG_ELIMIT, "audit log: more than %" PRIu64 " leaves",
                          BG_AUDIT_MAX_LEAVES);
    for (int k = 0; k < LEVELS; k++) {
        uint64_t need = total >> k;
        if (need == 0)
            break;
        if (log->level_cap[k] >= need)
            continue;
        uint64_t cap = log->level_cap[k] * 2;
        if (cap < need)
            cap = need;
        if (cap < 16)
            cap = 16;
        void *p = realloc(log->level[k], (size_t)cap * sizeof(bg_audit_hash));
        if (p == NULL)
            return bg_err_set(err, BG_ENOMEM, "out of memory for %" PRIu64 " leaf hashes", total);
        log->level[k] = p;
        log->level_cap[k] = cap;
    }
    if (log->off_cap < total) {
        uint64_t cap = log->off_cap * 2;
        if (cap < total)
            cap = total;
        if (cap < 16)
            cap = 16;
        void *p = realloc(log->off, (size_t)cap * sizeof(uint64_t));
        if (p == NULL)
            return bg_err_set(err, BG_ENOMEM, "out of memory for %" PRIu64 " leaf offsets", total);
        log->off = p;
        log->off_cap = cap;
    }
    return BG_OK;
}

/* Adds one leaf hash (room reserved) and every complete subtree it closes. */
static void
push_leaf(bg_audit_log *log, const bg_audit_hash h, uint64_t off)
{
    uint64_t idx = log->n;
    memcpy(log->level[0][idx], h, BG_AUDIT_HASH_LEN);
    log->off[idx] = off;
    for (int k = 0; idx & 1; k++, idx >>= 1)
        bg_merkle_node(BG_MERKLE_SHA256, log->level[k][idx - 1], log->level[k][idx],
                       log->level[k + 1][idx >> 1]);
    log->n++;
}

/* The stored subtrees for common/merkle.h: every perfect, aligned one (and so every
 * leaf); the rest is split. */
static bool
stored_subtree(const void *ctx, uint64_t lo, uint64_t hi, uint8_t out[BG_AUDIT_HASH_LEN])
{
    const bg_audit_log *log = ctx;
    uint64_t n = hi - lo;
    if ((n & (n - 1)) != 0 || lo % n != 0)
        return false;
    int k = __builtin_ctzll(n);
    memcpy(out, log->level[k][lo >> k], BG_AUDIT_HASH_LEN);
    return true;
}

/* MTH(D[lo:hi]) for a subtree of an RFC 6962 tree: lo is a multiple of the
 * largest power of two below hi - lo, so the left part is always stored. */
static void
mth(const bg_audit_log *log, uint64_t lo, uint64_t hi, bg_audit_hash out)
{
    bg_merkle_mth(BG_MERKLE_SHA256, stored_subtree, log, lo, hi, out);
}

static void
root_locked(const bg_audit_log *log, uint64_t size, bg_audit_hash out)
{
    if (size == 0)
        bg_merkle_empty(BG_MERKLE_SHA256, out);
    else
        mth(log, 0, size, out);
}

/* RFC 9162 2.1.4.1 SUBPROOF(m, D[lo:hi], b), with m counted from 0. */
static void
subproof(const bg_audit_log *log, uint64_t m, uint64_t lo, uint64_t hi, bool b,
         bg_audit_hash *proof, size_t *len)
{
    if (m == hi) {
        if (!b)
            mth(log, lo, hi, proof[(*len)++]);
        return;
    }
    uint64_t k = bg_merkle_split(hi - lo);
    if (m <= lo + k) {
        subproof(log, m, lo, lo + k, b, proof, len);
        mth(log, lo + k, hi, proof[(*len)++]);
    } else {
        subproof(log, m, lo + k, hi, false, proof, len);
        mth(log, lo, lo + k, proof[(*len)++]);
    }
}

/* --- opening --- */

static int
on_leaf(void *ctx, uint64_t off, const uint8_t *data, size_t len, const bg_audit_hash sum,
        bg_err *err)
{
    (void)data, (void)len;
    bg_audit_log *log = ctx;
    int rc = reserve(log, log->n + 1, err);
    if (rc != BG_OK)
        return rc;
    push_leaf(log, sum, off);
    log->leaves_end = off + len + BG_AUDIT_REC_OVERHEAD;
    return BG_OK;
}

static int
push_head(bg_audit_log *log, const bg_audit_head *h, bg_err *err)
{
    if (log->nheads == log->heads_cap) {
        size_t cap = log->heads_cap ? log->heads_cap * 2 : 16;
        void *p = realloc(log->heads, cap * sizeof *log->heads);
        if (p == NULL)
            return bg_err_set(err, BG_ENOMEM, "out of memory for tree heads");
        log->heads = p;
        log->heads_cap = cap;
    }
    log->heads[log->nheads++] = *h;
    return BG_OK;
}

static int
on_head(void *ctx, uint64_t off, const uint8_t *data, size_t len, const bg_audit_hash sum,
        bg_err *err)
{
    (void)sum;
    bg_audit_log *log = ctx;
    bg_audit_head h;
    bg_err sub = {0};
    if (bg_audit_head_decode(data, len, &h, &sub) != BG_OK)
        return bg_err_set(err, BG_EPROTO, "%s: record at offset %" PRIu64 ": %s", log->heads_f.path,
                          off, sub.msg);
    if (strcmp(h.origin, log->city) != 0)
        return bg_err_set(err, BG_EPROTO,
                          "%s: record at offset %" PRIu64 " is a head of %s, not of %s",
                          log->heads_f.path, off, h.origin, log->city);
    return push_head(log, &h, err);
}

/* A log that is about to be appended to must agree with every head it signed:
 * otherwise the next head would contradict an earlier one (a fork). */
static int
check_heads(const bg_audit_log *log, bg_err *err)
{
    for (size_t i = 0; i < log->nheads; i++) {
        const bg_audit_head *h = &log->heads[i];
        bg_audit_hash r;
        if (h->size > log->n)
            return bg_err_set(err, BG_EPROTO,
                              "%s: signed head %zu covers %" PRIu64 " leaves but %s holds only "
                              "%" PRIu64,
                              log->heads_f.path, i, h->size, log->leaves.path, log->n);
        root_locked(log, h->size, r);
        if (memcmp(r, h->root, BG_AUDIT_HASH_LEN) != 0)
            return bg_err_set(err, BG_EPROTO,
                              "%s: signed head %zu (size %" PRIu64 ") has a root that differs "
                              "from the leaves' root at that size",
                              log->heads_f.path, i, h->size);
    }
    return BG_OK;
}

int
bg_audit_open(bg_audit_log **out, const char *dir, const char *city, unsigned flags,
              bg_audit_open_report *rep, bg_err *err)
{
    *out = NULL;
    if (!bg_audit_city_ok(city))
        return bg_err_set(err, BG_EINVAL, "audit log: city '%s' is not a 6-digit code", city);
    bg_audit_log *log = calloc(1, sizeof *log);
    if (log == NULL)
        return bg_err_set(err, BG_ENOMEM, "out of memory");
    log->leaves.fd = log->heads_f.fd = -1;
    log->read_only = (flags & BG_AUDIT_READ_ONLY) != 0;
    memcpy(log->city, city, 7);
    bg_audit_open_report local;
    if (rep == NULL)
        rep = &local;
    memset(rep, 0, sizeof *rep);
    int rc;
    if (strlen(dir) >= sizeof log->dir) {
        free(log);
        return bg_err_set(err, BG_ELIMIT, "path %s is too long", dir);
    }
    strcpy(log->dir, dir);
    if (pthread_mutex_init(&log->write_mu, NULL) != 0) {
        free(log);
        return bg_err_set(err, BG_ENOMEM, "cannot make a mutex");
    }
    if (pthread_rwlock_init(&log->rw, NULL) != 0) {
        pthread_mutex_destroy(&log->write_mu);
        free(log);
        return bg_err_set(err, BG_ENOMEM, "cannot make a lock");
    }
    if (pthread_cond_init(&log->synced, NULL) != 0) {
        pthread_rwlock_destroy(&log->rw);
        pthread_mutex_destroy(&log->write_mu);
        free(log);
        return bg_err_set(err, BG_ENOMEM, "cannot make a condition variable");
    }
    if (!log->read_only && (flags & BG_AUDIT_CREATE) != 0 && mkdir(dir, 0750) != 0 &&
        errno != EEXIST) {
        rc = bg_err_set(err, BG_EIO, "cannot make %s: %s", dir, strerror(errno));
        goto fail;
    }
    char lp[1100], hp[1100];
    if ((rc = bg_path_join(lp, sizeof lp, dir, BG_AUDIT_LEAVES_FILE, err)) != BG_OK ||
        (rc = bg_path_join(hp, sizeof hp, dir, BG_AUDIT_HEADS_FILE, err)) != BG_OK)
        goto fail;
    log->leaves_end = BG_AUDIT_MAGIC_LEN;
    if (log->read_only) {
        /* Heads first: the writer signs a head only after its leaves are
         * synced, so every head read here is covered by the leaves read next. */
        if ((rc = bg_rec_open(&log->heads_f, hp, flags, false, BG_AUDIT_SIGNED_HEAD_MAX, on_head,
                              log, rep, err)) != BG_OK ||
            (rc = bg_rec_open(&log->leaves, lp, flags, false, BG_AUDIT_LEAF_MAX, on_leaf, log, rep,
                              err)) != BG_OK)
            goto fail;
    } else {
        if ((rc = bg_rec_open(&log->leaves, lp, flags, true, BG_AUDIT_LEAF_MAX, on_leaf, log, rep,
                              err)) != BG_OK ||
            (rc = bg_rec_open(&log->heads_f, hp, flags, false, BG_AUDIT_SIGNED_HEAD_MAX, on_head,
                              log, rep, err)) != BG_OK ||
            (rc = check_heads(log, err)) != BG_OK)
            goto fail;
    }
    rep->leaves = log->n;
    rep->heads = log->nheads;
    log->written_n = log->n;
    *out = log;
    return BG_OK;
fail:
    bg_audit_close(log);
    return rc;
}

void
bg_audit_close(bg_audit_log *log)
{
    if (log == NULL)
        return;
    bg_rec_close(&log->leaves);
    bg_rec_close(&log->heads_f);
    for (int k = 0; k < LEVELS; k++)
        free(log->level[k]);
    free(log->off);
    free(log->heads);
    pthread_cond_destroy(&log->synced);
    pthread_rwlock_destroy(&log->rw);
    pthread_mutex_destroy(&log->write_mu);
    free(log);
}

const char *
bg_audit_city(const bg_audit_log *log)
{
    return log->city;
}

uint64_t
bg_audit_size(bg_audit_log *log)
{
    pthread_rwlock_rdlock(&log->rw);
    uint64_t n = log->n;
    pthread_rwlock_unlock(&log->rw);
    return n;
}

/* --- appending --- */

/* Writes p's framed records at the written end (no sync), gives them the next
 * indexes and queues p. Caller holds write_mu. */
static int
write_locked(bg_audit_log *log, const uint8_t *framed, size_t used, pending *p, bg_err *err)
{
    bg_rec_file *f = &log->leaves;
    if (f->broken)
        return bg_err_set(err, BG_EIO,
                          "%s: an earlier write or sync failed; appends are refused until the "
                          "log is reopened",
                          f->path);
    /* Room for every written leaf now, so publishing cannot fail. */
    pthread_rwlock_wrlock(&log->rw);
    int rc = reserve(log, log->written_n + p->n, err);
    pthread_rwlock_unlock(&log->rw);
    if (rc != BG_OK)
        return rc;
    if (bg_file_write_all(f->fd, framed, used, (int64_t)f->end) != 0) {
        int e = errno;
        /* Cut the partial write back so the next append does not follow
         * garbage. The batches queued before it are whole and unaffected. */
        if (ftruncate(f->fd, (off_t)f->end) != 0)
            f->broken = true;
        return bg_err_set(err, BG_EIO, "%s: write failed: %s", f->path, strerror(e));
    }
    p->off = f->end;
    p->end = f->end += used;
    p->first = log->written_n;
    log->written_n += p->n;
    p->state = P_QUEUED;
    if (log->queue_tail != NULL)
        log->queue_tail->next = p;
    else
        log->queue = p;
    log->queue_tail = p;
    return BG_OK;
}

/* Becomes the syncer: syncs everything written so far with write_mu dropped
 * (others keep writing behind it), then publishes the batches it covered, or
 * fails every queued batch. Caller holds write_mu and log->syncing is false. */
static void
sync_locked(bg_audit_log *log)
{
    bg_rec_file *f = &log->leaves;
    uint64_t target = f->end;
    log->syncing = true;
    pthread_mutex_unlock(&log->write_mu);
    int rc = bg_audit_datasync(f->fd);
    int e = errno;
    pthread_mutex_lock(&log->write_mu);
    log->syncing = false;
    if (rc == 0) {
        /* In file order, so the tree only ever holds a durable prefix. */
        pthread_rwlock_wrlock(&log->rw);
        while (log->queue != NULL && log->queue->end <= target) {
            pending *p = log->queue;
            uint64_t off = p->off;
            for (size_t i = 0; i < p->n; i++) {
                push_leaf(log, p->sums[i], off);
                off += p->lens[i];
            }
            log->leaves_end = p->end;
            p->state = P_DONE;
            log->queue = p->next;
        }
        pthread_rwlock_unlock(&log->rw);
    } else {
        /* The page cache may no longer say what is on disk: fail everything
         * not yet durable, cut the file back to the durable end (best effort,
         * so the unacknowledged records do not reappear at reopen) and refuse
         * further appends. */
        for (pending *p = log->queue; p != NULL; p = p->next) {
            p->state = P_FAILED;
            p->sync_errno = e;
        }
        log->queue = NULL;
        f->broken = true;
        if (ftruncate(f->fd, (off_t)log->leaves_end) == 0)
            f->end = log->leaves_end;
        log->written_n = log->n;
    }
    if (log->queue == NULL)
        log->queue_tail = NULL;
    pthread_cond_broadcast(&log->synced);
}

int
bg_audit_append_batch(bg_audit_log *log, const bg_audit_event *ev, size_t n, uint64_t *first,
                      bg_err *err)
{
    if (log->read_only)
        return bg_err_set(err, BG_EINVAL, "audit log: open read-only");
    if (n == 0 || n > BG_AUDIT_BATCH_MAX)
        return bg_err_set(err, BG_EINVAL, "audit log: a batch holds 1..%d events",
                          BG_AUDIT_BATCH_MAX);
    size_t cap = n * (BG_AUDIT_LEAF_MAX + BG_AUDIT_REC_OVERHEAD);
    uint8_t *buf = malloc(cap);
    bg_audit_hash *sums = malloc(n * sizeof *sums);
    uint64_t *lens = malloc(n * sizeof *lens);
    int rc = BG_OK;
    if (buf == NULL || sums == NULL || lens == NULL) {
        rc = bg_err_set(err, BG_ENOMEM, "out of memory");
        goto out;
    }
    /* Encode everything before touching the file: all or nothing. */
    size_t used = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t leaf[BG_AUDIT_LEAF_MAX];
        size_t len;
        bg_err sub = {0};
        if ((rc = bg_audit_leaf_encode(&ev[i], log->city, leaf, &len, &sub)) != BG_OK) {
            rc = n == 1 ? bg_err_set(err, rc, "%s", sub.msg)
                        : bg_err_set(err, rc, "event %zu of the batch: %s", i, sub.msg);
            goto out;
        }
        lens[i] = bg_rec_frame(buf + used, leaf, len, sums[i]);
        used += lens[i];
    }
    pending me = {.sums = (const bg_audit_hash *)sums, .lens = lens, .n = n};
    pthread_mutex_lock(&log->write_mu);
    rc = write_locked(log, buf, used, &me, err);
    while (rc == BG_OK && me.state == P_QUEUED) {
        if (log->syncing)
            pthread_cond_wait(&log->synced, &log->write_mu);
        else
            sync_locked(log);
    }
    if (rc == BG_OK && me.state == P_FAILED)
        rc = bg_err_set(err, BG_EIO, "%s: sync failed: %s", log->leaves.path,
                        strerror(me.sync_errno));
    if (rc == BG_OK && first != NULL)
        *first = me.first;
    pthread_mutex_unlock(&log->write_mu);
out:
    free(buf);
    free(sums);
    free(lens);
    return rc;
}

int
bg_audit_append(bg_audit_log *log, const bg_audit_event *ev, uint64_t *index, bg_err *err)
{
    return bg_audit_append_batch(log, ev, 1, index, err);
}

/* --- reading and proofs --- */

int
bg_audit_root(bg_audit_log *log, uint64_t size, bg_audit_hash root, bg_err *err)
{
    int rc = BG_OK;
    pthread_rwlock_rdlock(&log->rw);
    if (size > log->n)
        rc = bg_err_set(err, BG_EINVAL,
                        "audit log: size %" PRIu64 " is beyond the %" PRIu64 " leaves logged", size,
                        log->n);
    else
        root_locked(log, size, root);
    pthread_rwlock_unlock(&log->rw);
    return rc;
}

int
bg_audit_leaf_hash(bg_audit_log *log, uint64_t index, bg_audit_hash out, bg_err *err)
{
    int rc = BG_OK;
    pthread_rwlock_rdlock(&log->rw);
    if (index >= log->n)
        rc = bg_err_set(err, BG_ENOTFOUND, "audit log: no leaf %" PRIu64 " (size %" PRIu64 ")",
                        index, log->n);
    else
        memcpy(out, log->level[0][index], BG_AUDIT_HASH_LEN);
    pthread_rwlock_unlock(&log->rw);
    return rc;
}

int
bg_audit_leaf_read(bg_audit_log *log, uint64_t index, uint8_t *buf, size_t *len, bg_audit_event *ev,
                   bg_err *err)
{
    bg_audit_hash want;
    uint64_t off, limit;
    pthread_rwlock_rdlock(&log->rw);
    if (index >= log->n) {
        uint64_t n = log->n;
        pthread_rwlock_unlock(&log->rw);
        return bg_err_set(err, BG_ENOTFOUND, "audit log: no leaf %" PRIu64 " (size %" PRIu64 ")",
                          index, n);
    }
    memcpy(want, log->level[0][index], BG_AUDIT_HASH_LEN);
    off = log->off[index];
    limit = index + 1 < log->n ? log->off[index + 1] : log->leaves_end;
    pthread_rwlock_unlock(&log->rw);
    uint8_t local[BG_AUDIT_LEAF_MAX];
    uint8_t *p = buf != NULL ? buf : local;
    size_t n;
    int rc = bg_rec_read(&log->leaves, off, limit, p, BG_AUDIT_LEAF_MAX, &n, want, err);
    if (rc != BG_OK)
        return rc;
    if (len != NULL)
        *len = n;
    if (ev != NULL) {
        bg_err sub = {0};
        if (bg_audit_leaf_decode(p, n, ev, &sub) != BG_OK)
            return bg_err_set(err, BG_EPROTO, "leaf %" PRIu64 " (offset %" PRIu64 "): %s", index,
                              off, sub.msg);
    }
    return BG_OK;
}

int
bg_audit_inclusion_proof(bg_audit_log *log, uint64_t index, uint64_t size,
                         bg_audit_hash proof[BG_AUDIT_PROOF_MAX], size_t *proof_len, bg_err *err)
{
    int rc = BG_OK;
    *proof_len = 0;
    pthread_rwlock_rdlock(&log->rw);
    if (size > log->n || index >= size)
        rc = bg_err_set(err, BG_EINVAL,
                        "inclusion proof: need leaf < size <= %" PRIu64 ", got leaf %" PRIu64
                        " and size %" PRIu64,
                        log->n, index, size);
    else
        *proof_len =
            bg_merkle_path(BG_MERKLE_SHA256, stored_subtree, log, index, size, (uint8_t *)proof);
    pthread_rwlock_unlock(&log->rw);
    return rc;
}

int
bg_audit_consistency_proof(bg_audit_log *log, uint64_t old_size, uint64_t new_size,
                           bg_audit_hash proof[BG_AUDIT_PROOF_MAX], size_t *proof_len, bg_err *err)
{
    int rc = BG_OK;
    *proof_len = 0;
    pthread_rwlock_rdlock(&log->rw);
    if (old_size > new_size || new_size > log->n)
        rc = bg_err_set(err, BG_EINVAL,
                        "consistency proof: need from <= to <= %" PRIu64 ", got %" PRIu64
                        " and %" PRIu64,
                        log->n, old_size, new_size);
    else if (old_size > 0 && old_size < new_size)
        subproof(log, old_size, 0, new_size, true, proof, proof_len);
    pthread_rwlock_unlock(&log->rw);
    return rc;
}

/* --- signed tree heads --- */

/* Signs and stores the current tree. Caller holds write_mu. */
static int
sign_locked(bg_audit_log *log, EVP_PKEY *key, int64_t now_ms, bg_audit_head *out, bg_err *err)
{
    bg_audit_hash root;
    pthread_rwlock_rdlock(&log->rw);
    uint64_t size = log->n;
    root_locked(log, size, root);
    int64_t last_ts = log->nheads ? log->heads[log->nheads - 1].timestamp_ms : INT64_MIN;
    pthread_rwlock_unlock(&log->rw);
    if (now_ms < last_ts)
        return bg_err_set(err, BG_EINVAL,
                          "tree head: the clock (%" PRId64 " ms) is before the last head's "
                          "timestamp (%" PRId64 " ms)",
                          now_ms, last_ts);
    bg_audit_head h;
    int rc = bg_audit_head_make(key, log->city, size, root, now_ms, &h, err);
    uint8_t enc[BG_AUDIT_SIGNED_HEAD_MAX], framed[BG_AUDIT_SIGNED_HEAD_MAX + BG_AUDIT_REC_OVERHEAD];
    size_t len;
    if (rc == BG_OK)
        rc = bg_audit_head_encode(&h, enc, &len, err);
    if (rc != BG_OK)
        return rc;
    /* Grow the array first, so a head on disk is always one in memory too. */
    pthread_rwlock_wrlock(&log->rw);
    if (log->nheads == log->heads_cap) {
        rc = push_head(log, &h, err);
        if (rc == BG_OK)
            log->nheads--;
    }
    pthread_rwlock_unlock(&log->rw);
    if (rc != BG_OK)
        return rc;
    size_t flen = bg_rec_frame(framed, enc, len, NULL);
    if ((rc = bg_rec_append(&log->heads_f, framed, flen, err)) != BG_OK)
        return rc;
    pthread_rwlock_wrlock(&log->rw);
    log->heads[log->nheads++] = h;
    pthread_rwlock_unlock(&log->rw);
    if (out != NULL)
        *out = h;
    return BG_OK;
}

int
bg_audit_sign_head(bg_audit_log *log, EVP_PKEY *key, int64_t now_ms, bg_audit_head *out,
                   bg_err *err)
{
    if (log->read_only)
        return bg_err_set(err, BG_EINVAL, "audit log: open read-only");
    pthread_mutex_lock(&log->write_mu);
    int rc = sign_locked(log, key, now_ms, out, err);
    pthread_mutex_unlock(&log->write_mu);
    return rc;
}

int
bg_audit_maybe_sign(bg_audit_log *log, EVP_PKEY *key, int64_t now_ms, uint32_t interval_s,
                    bg_audit_head *out, bool *did_sign, bg_err *err)
{
    *did_sign = false;
    if (log->read_only)
        return bg_err_set(err, BG_EINVAL, "audit log: open read-only");
    pthread_mutex_lock(&log->write_mu);
    pthread_rwlock_rdlock(&log->rw);
    bool due;
    if (log->nheads == 0) {
        due = log->n > 0;
    } else {
        const bg_audit_head *last = &log->heads[log->nheads - 1];
        due = log->n > last->size && now_ms - last->timestamp_ms >= (int64_t)interval_s * 1000;
    }
    pthread_rwlock_unlock(&log->rw);
    int rc = BG_OK;
    if (due) {
        rc = sign_locked(log, key, now_ms, out, err);
        *did_sign = rc == BG_OK;
    }
    pthread_mutex_unlock(&log->write_mu);
    return rc;
}

size_t
bg_audit_head_count(bg_audit_log *log)
{
    pthread_rwlock_rdlock(&log->rw);
    size_t n = log->nheads;
    pthread_rwlock_unlock(&log->rw);
    return n;
}

int
bg_audit_head_get(bg_audit_log *log, size_t i, bg_audit_head *out, bg_err *err)
{
    int rc = BG_OK;
    pthread_rwlock_rdlock(&log->rw);
    if (i >= log->nheads)
        rc = bg_err_set(err, BG_ENOTFOUND, "audit log: no signed head %zu (%zu stored)", i,
                        log->nheads);
    else
        *out = log->heads[i];
    pthread_rwlock_unlock(&log->rw);
    return rc;
}

int
bg_audit_head_latest(bg_audit_log *log, bg_audit_head *out, bg_err *err)
{
    int rc = BG_OK;
    pthread_rwlock_rdlock(&log->rw);
    if (log->nheads == 0)
        rc = bg_err_set(err, BG_ENOTFOUND, "audit log of %s: no signed tree head yet", log->city);
    else
        *out = log->heads[log->nheads - 1];
    pthread_rwlock_unlock(&log->rw);
    return rc;
}
