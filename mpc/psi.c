/*
 * psi.c - PSI asker and answerer steps on mpc/oprf and mpc/snapshot; see psi.h.
 */
#define _GNU_SOURCE /* qsort_r */
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mpc/psi.h"

#define EB BG_OPRF_ELEMENTBYTES
#define SB BG_OPRF_SCALARBYTES
#define IM BG_SNAP_INPUT_MAX

enum { ITEM_NEW = 0, ITEM_PREPARED, ITEM_ANSWERED };
#define NO_RECORD UINT32_MAX

/* A graded match: the record, the snapshot entry it opened from and that entry's opening
 * key (which opens it alone and is meant for an attestation: mpc/snapshot.h). */
typedef struct opened {
    bg_snap_record rec;
    size_t index;
    uint8_t key[BG_SNAP_OPENKEYBYTES];
} opened;

struct bg_psi_query {
    int mode;
    size_t n, nd;      /* inputs, distinct inputs (items) */
    uint32_t *map;     /* n: input -> item */
    uint8_t *in;       /* nd * IM: the items' bytes, zero padded */
    uint8_t *in_len;   /* nd */
    uint8_t *blinds;   /* nd * SB (membership, graded) */
    uint8_t *state;    /* nd: ITEM_* (membership, graded) */
    uint8_t *matched;  /* nd */
    uint32_t *rec_idx; /* nd: index into recs, or NO_RECORD (graded) */
    opened *recs;
    size_t nrecs, recs_cap;
    size_t answered; /* membership/graded: items answered */
    size_t unopened;
    uint8_t r[SB], r_inv[SB]; /* count */
    size_t taken, hits;       /* count: answer items taken, matches among them */
    bool bound;               /* the snapshot of the first finish */
    char list[BG_SNAP_LIST_MAX + 1];
    uint64_t generation, epoch;
};

size_t
bg_psi_chunk_items(size_t max_bytes)
{
    size_t n = max_bytes / EB;
    return n < BG_PSI_MAX_ITEMS ? n : BG_PSI_MAX_ITEMS;
}

/* ---- asker ---- */

struct in_ctx {
    const uint8_t *const *inputs;
    const size_t *lens;
};

static int
in_cmp(const void *va, const void *vb, void *vctx)
{
    uint32_t a = *(const uint32_t *)va, b = *(const uint32_t *)vb;
    const struct in_ctx *c = vctx;
    if (c->lens[a] != c->lens[b])
        return c->lens[a] < c->lens[b] ? -1 : 1;
    int r = memcmp(c->inputs[a], c->inputs[b], c->lens[a]);
    if (r != 0)
        return r;
    return a < b ? -1 : a > b;
}

void
bg_psi_query_free(bg_psi_query *q)
{
    if (q == NULL)
        return;
    if (q->in != NULL)
        sodium_memzero(q->in, IM * q->nd);
    if (q->blinds != NULL)
        sodium_memzero(q->blinds, SB * q->nd);
    if (q->recs != NULL)
        sodium_memzero(q->recs, sizeof *q->recs * q->recs_cap);
    if (q->matched != NULL)
        sodium_memzero(q->matched, q->nd);
    free(q->map);
    free(q->in);
    free(q->in_len);
    free(q->blinds);
    free(q->state);
    free(q->matched);
    free(q->rec_idx);
    free(q->recs);
    sodium_memzero(q, sizeof *q);
    free(q);
}

/* Distinct inputs in order of first occurrence; map[i] = the item of input i. O(n log n). */
static int
dedup(bg_psi_query *q, const uint8_t *const *inputs, const size_t *lens, size_t n, bg_err *err)
{
    uint32_t *order = malloc(sizeof *order * n), *group = malloc(sizeof *group * n);
    int rc = BG_OK;
    if (order == NULL || group == NULL) {
        rc = bg_err_set(err, BG_ENOMEM, "query: out of memory for %zu inputs", n);
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        order[i] = (uint32_t)i;
    struct in_ctx c = {inputs, lens};
    qsort_r(order, n, sizeof *order, in_cmp, &c);
    /* group[input] = the lowest index of an equal input (the first in its sorted run). */
    for (size_t k = 0; k < n; k++) {
        uint32_t i = order[k], prev = k > 0 ? order[k - 1] : 0;
        bool same = k > 0 && lens[i] == lens[prev] && memcmp(inputs[i], inputs[prev], lens[i]) == 0;
        group[i] = same ? group[prev] : i;
    }
    /* Items numbered by first occurrence; order[] is reused as rep -> item. */
    size_t nd = 0;
    for (size_t i = 0; i < n; i++)
        if (group[i] == i)
            order[i] = (uint32_t)nd++;
    for (size_t i = 0; i < n; i++)
        q->map[i] = order[group[i]];
    q->nd = nd;
    q->in = calloc(nd, IM);
    q->in_len = malloc(nd);
    if (q->in == NULL || q->in_len == NULL) {
        rc = bg_err_set(err, BG_ENOMEM, "query: out of memory for %zu inputs", n);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (group[i] != i)
            continue;
        uint32_t d = q->map[i];
        memcpy(q->in + IM * d, inputs[i], lens[i]);
        q->in_len[d] = (uint8_t)lens[i];
    }
out:
    free(order);
    free(group);
    return rc;
}

int
bg_psi_query_new(bg_psi_query **out, int mode, const uint8_t *const *inputs,
                 const size_t *input_lens, size_t n, bg_err *err)
{
    if (out == NULL)
        return bg_err_set(err, BG_EINVAL, "query: NULL output");
    *out = NULL;
    int rc = bg_oprf_init(err);
    if (rc != BG_OK)
        return rc;
    if (mode != BG_PSI_MEMBERSHIP && mode != BG_PSI_GRADED && mode != BG_PSI_COUNT)
        return bg_err_set(err, BG_EINVAL, "query: unknown mode %d", mode);
    if (n == 0 || n > BG_PSI_MAX_ITEMS)
        return bg_err_set(err, BG_EINVAL, "query: %zu inputs, expected 1..%u", n, BG_PSI_MAX_ITEMS);
    if (inputs == NULL || input_lens == NULL)
        return bg_err_set(err, BG_EINVAL, "query: NULL inputs");
    for (size_t i = 0; i < n; i++)
        if (inputs[i] == NULL || input_lens[i] == 0 || input_lens[i] > IM)
            return bg_err_set(err, BG_EINVAL, "input %zu: %zu bytes, expected 1..%u", i,
                              inputs[i] ? input_lens[i] : 0, IM);

    bg_psi_query *q = calloc(1, sizeof *q);
    if (q == NULL)
        return bg_err_set(err, BG_ENOMEM, "query: out of memory");
    q->mode = mode;
    q->n = n;
    q->map = malloc(sizeof *q->map * n);
    if (q->map == NULL)
        rc = bg_err_set(err, BG_ENOMEM, "query: out of memory for %zu inputs", n);
    if (rc == BG_OK)
        rc = dedup(q, inputs, input_lens, n, err);
    if (rc == BG_OK) {
        q->matched = calloc(q->nd, 1);
        if (q->matched == NULL)
            rc = bg_err_set(err, BG_ENOMEM, "query: out of memory");
    }
    if (rc == BG_OK && mode != BG_PSI_COUNT) {
        q->blinds = calloc(q->nd, SB);
        q->state = calloc(q->nd, 1);
        if (q->blinds == NULL || q->state == NULL)
            rc = bg_err_set(err, BG_ENOMEM, "query: out of memory");
    }
    if (rc == BG_OK && mode == BG_PSI_GRADED) {
        q->rec_idx = malloc(sizeof *q->rec_idx * q->nd);
        if (q->rec_idx == NULL)
            rc = bg_err_set(err, BG_ENOMEM, "query: out of memory");
        else
            for (size_t d = 0; d < q->nd; d++)
                q->rec_idx[d] = NO_RECORD;
    }
    if (rc == BG_OK && mode == BG_PSI_COUNT) {
        rc = bg_oprf_keygen(q->r, err);
        if (rc == BG_OK)
            rc = bg_oprf_scalar_invert(q->r_inv, q->r, err);
    }
    if (rc != BG_OK) {
        bg_psi_query_free(q);
        return rc;
    }
    *out = q;
    return BG_OK;
}

size_t
bg_psi_query_items(const bg_psi_query *q)
{
    return q ? q->nd : 0;
}

static int
range_check(const bg_psi_query *q, size_t first, size_t count, const char *fn, bg_err *err)
{
    if (q == NULL)
        return bg_err_set(err, BG_EINVAL, "%s: NULL query", fn);
    if (count == 0 || first > q->nd || count > q->nd - first)
        return bg_err_set(err, BG_EINVAL, "%s: items %zu..+%zu outside 0..%zu", fn, first, count,
                          q->nd);
    return BG_OK;
}

/* Pointers and lengths of items [first, first + count) for the oprf batches. */
static int
item_ptrs(const bg_psi_query *q, size_t first, size_t count, const uint8_t ***ptrs, size_t **lens,
          bg_err *err)
{
    *ptrs = malloc(sizeof **ptrs * count);
    *lens = malloc(sizeof **lens * count);
    if (*ptrs == NULL || *lens == NULL) {
        free(*ptrs);
        free(*lens);
        return bg_err_set(err, BG_ENOMEM, "prepare: out of memory");
    }
    for (size_t i = 0; i < count; i++) {
        (*ptrs)[i] = q->in + IM * (first + i);
        (*lens)[i] = q->in_len[first + i];
    }
    return BG_OK;
}

int
bg_psi_prepare(bg_psi_query *q, size_t first, size_t count, uint8_t *blinded, unsigned nthreads,
               bg_err *err)
{
    int rc = range_check(q, first, count, "prepare", err);
    if (rc != BG_OK)
        return rc;
    if (blinded == NULL)
        return bg_err_set(err, BG_EINVAL, "prepare: NULL output");
    /* Each item is blinded once: an answer to an earlier blinding could no longer be
     * unblinded and would read as "no match". To retry, resend the same blinded bytes. */
    if (q->mode != BG_PSI_COUNT)
        for (size_t i = first; i < first + count; i++)
            if (q->state[i] != ITEM_NEW)
                return bg_err_set(err, BG_EINVAL, "prepare: item %zu is already %s", i,
                                  q->state[i] == ITEM_PREPARED ? "prepared" : "answered");
    const uint8_t **ptrs;
    size_t *lens;
    rc = item_ptrs(q, first, count, &ptrs, &lens, err);
    if (rc != BG_OK)
        return rc;
    if (q->mode == BG_PSI_COUNT) {
        if (q->taken == q->nd) {
            rc = bg_err_set(err, BG_EINVAL, "prepare: the batch is already answered");
        } else {
            /* B_i = r * H(x_i): the oprf evaluation with the blind as key. */
            rc = bg_oprf_hash_to_group_batch(blinded, (const uint8_t *const *)ptrs, lens, count,
                                             nthreads, err);
            if (rc == BG_OK)
                rc = bg_oprf_evaluate_batch(blinded, q->r, blinded, count, nthreads, err);
        }
    } else {
        rc = bg_oprf_blind_batch(q->blinds + SB * first, blinded, (const uint8_t *const *)ptrs,
                                 lens, count, nthreads, err);
        memset(q->state + first, rc == BG_OK ? ITEM_PREPARED : ITEM_NEW, count);
    }
    free(ptrs);
    free(lens);
    if (rc != BG_OK)
        sodium_memzero(blinded, EB * count);
    return rc;
}

/* Elements that came from the peer: a refused one is a protocol error. */
static int
peer_status(int rc)
{
    return rc == BG_EINVAL ? BG_EPROTO : rc;
}

static int
bind_snapshot(bg_psi_query *q, const bg_snap *snap, bg_err *err)
{
    bg_snap_info info;
    if (snap == NULL)
        return bg_err_set(err, BG_EINVAL, "finish: NULL snapshot");
    bg_snap_get_info(snap, &info);
    if (q->mode == BG_PSI_GRADED && !info.graded)
        return bg_err_set(err, BG_EINVAL, "finish: list %s carries no payloads", info.list);
    if (!q->bound)
        return BG_OK;
    if (strcmp(q->list, info.list) != 0 || q->generation != info.generation ||
        q->epoch != info.epoch)
        return bg_err_set(err, BG_EINVAL,
                          "finish: this query is matched against %s epoch %llu, not %s epoch %llu",
                          q->list, (unsigned long long)q->epoch, info.list,
                          (unsigned long long)info.epoch);
    return BG_OK;
}

static void
bind_commit(bg_psi_query *q, const bg_snap *snap)
{
    bg_snap_info info;
    if (q->bound)
        return;
    bg_snap_get_info(snap, &info);
    memcpy(q->list, info.list, sizeof q->list);
    q->generation = info.generation;
    q->epoch = info.epoch;
    q->bound = true;
}

static int
add_record(bg_psi_query *q, const opened *rec, uint32_t *idx, bg_err *err)
{
    if (q->nrecs == q->recs_cap) {
        size_t cap = q->recs_cap ? 2 * q->recs_cap : 64;
        opened *r = malloc(sizeof *r * cap);
        if (r == NULL)
            return bg_err_set(err, BG_ENOMEM, "finish: out of memory for records");
        if (q->recs != NULL) {
            memcpy(r, q->recs, sizeof *r * q->nrecs);
            sodium_memzero(q->recs, sizeof *r * q->recs_cap);
            free(q->recs);
        }
        memset(r + q->nrecs, 0, sizeof *r * (cap - q->nrecs));
        q->recs = r;
        q->recs_cap = cap;
    }
    q->recs[q->nrecs] = *rec;
    *idx = (uint32_t)q->nrecs++;
    return BG_OK;
}

/* Membership and graded: unblind, tag, look up, open; commits only if all went well. */
static int
finish_items(bg_psi_query *q, const bg_snap *snap, size_t first, size_t count,
             const uint8_t *evaluated, uint8_t *nel, size_t *hit, unsigned nthreads, bg_err *err)
{
    for (size_t i = first; i < first + count; i++)
        if (q->state[i] != ITEM_PREPARED)
            return bg_err_set(err, BG_EINVAL, "finish: item %zu is %s", i,
                              q->state[i] == ITEM_NEW ? "not prepared" : "already answered");
    int rc = bg_oprf_unblind_batch(nel, q->blinds + SB * first, evaluated, count, nthreads, err);
    if (rc != BG_OK)
        return peer_status(rc);
    rc = bg_snap_match(snap, nel, count, hit, nthreads, err);
    if (rc != BG_OK)
        return rc;
    size_t nrecs0 = q->nrecs, unopened = 0;
    uint8_t *m = q->matched + first;
    opened rec;
    for (size_t k = 0; k < count && rc == BG_OK; k++) {
        m[k] = hit[k] != BG_SNAP_NONE;
        if (!m[k] || q->mode != BG_PSI_GRADED)
            continue;
        size_t d = first + k;
        rc = bg_snap_open_key(snap, hit[k], q->in + IM * d, q->in_len[d], nel + EB * k, &rec.rec,
                              &rec.index, rec.key, err);
        if (rc == BG_OK) {
            rc = add_record(q, &rec, &q->rec_idx[d], err);
        } else if (rc == BG_ENOTFOUND) {
            m[k] = 0;
            unopened++;
            rc = BG_OK;
        }
    }
    sodium_memzero(&rec, sizeof rec);
    if (rc != BG_OK) { /* undo: nothing of this chunk is kept */
        memset(m, 0, count);
        if (q->rec_idx != NULL)
            for (size_t d = first; d < first + count; d++)
                q->rec_idx[d] = NO_RECORD;
        sodium_memzero(q->recs + nrecs0, sizeof *q->recs * (q->nrecs - nrecs0));
        q->nrecs = nrecs0;
        return rc;
    }
    q->unopened += unopened;
    memset(q->state + first, ITEM_ANSWERED, count);
    sodium_memzero(q->blinds + SB * first, SB * count);
    q->answered += count;
    return BG_OK;
}

/* Count: N_i = r^-1 * E_i, tag, count the hits; the shuffled answer says nothing more. */
static int
finish_count(bg_psi_query *q, const bg_snap *snap, size_t first, size_t count,
             const uint8_t *evaluated, uint8_t *nel, size_t *hit, unsigned nthreads, bg_err *err)
{
    if (first != q->taken)
        return bg_err_set(err, BG_EINVAL, "finish: answer items from %zu, expected from %zu", first,
                          q->taken);
    int rc = bg_oprf_evaluate_batch(nel, q->r_inv, evaluated, count, nthreads, err);
    if (rc != BG_OK)
        return peer_status(rc);
    rc = bg_snap_match(snap, nel, count, hit, nthreads, err);
    if (rc != BG_OK)
        return rc;
    size_t h = 0;
    for (size_t k = 0; k < count; k++)
        h += hit[k] != BG_SNAP_NONE;
    q->hits += h;
    q->taken += count;
    if (q->taken == q->nd) { /* the blind has done its work */
        sodium_memzero(q->r, sizeof q->r);
        sodium_memzero(q->r_inv, sizeof q->r_inv);
    }
    return BG_OK;
}

int
bg_psi_finish(bg_psi_query *q, const bg_snap *snap, size_t first, size_t count,
              const uint8_t *evaluated, size_t evaluated_len, unsigned nthreads, bg_err *err)
{
    int rc = range_check(q, first, count, "finish", err);
    if (rc != BG_OK)
        return rc;
    if (evaluated == NULL || evaluated_len != EB * count)
        return bg_err_set(err, BG_EPROTO, "finish: an answer of %zu bytes for %zu items",
                          evaluated ? evaluated_len : 0, count);
    rc = bind_snapshot(q, snap, err);
    if (rc != BG_OK)
        return rc;
    uint8_t *nel = malloc(EB * count);
    size_t *hit = malloc(sizeof *hit * count);
    if (nel == NULL || hit == NULL)
        rc = bg_err_set(err, BG_ENOMEM, "finish: out of memory for %zu items", count);
    else if (q->mode == BG_PSI_COUNT)
        rc = finish_count(q, snap, first, count, evaluated, nel, hit, nthreads, err);
    else
        rc = finish_items(q, snap, first, count, evaluated, nel, hit, nthreads, err);
    if (nel != NULL)
        sodium_memzero(nel, EB * count); /* N = k*H(x): the PRF values of our inputs */
    free(nel);
    free(hit);
    if (rc == BG_OK)
        bind_commit(q, snap);
    return rc;
}

int
bg_psi_query_done(const bg_psi_query *q)
{
    if (q == NULL)
        return 0;
    return q->mode == BG_PSI_COUNT ? q->taken == q->nd : q->answered == q->nd;
}

int
bg_psi_result(const bg_psi_query *q, size_t i, int *matched, bg_snap_record *rec, bg_err *err)
{
    if (rec != NULL)
        memset(rec, 0, sizeof *rec);
    if (matched != NULL)
        *matched = 0;
    if (q == NULL || matched == NULL)
        return bg_err_set(err, BG_EINVAL, "result: NULL argument");
    if (q->mode == BG_PSI_COUNT)
        return bg_err_set(err, BG_EINVAL, "result: a count query has no per-input results");
    if (i >= q->n)
        return bg_err_set(err, BG_EINVAL, "result: input %zu of %zu", i, q->n);
    uint32_t d = q->map[i];
    if (q->state[d] != ITEM_ANSWERED)
        return bg_err_set(err, BG_EINVAL, "result: input %zu is not answered yet", i);
    *matched = q->matched[d];
    if (rec != NULL && q->rec_idx != NULL && q->rec_idx[d] != NO_RECORD)
        *rec = q->recs[q->rec_idx[d]].rec;
    return BG_OK;
}

int
bg_psi_result_entry(const bg_psi_query *q, size_t i, size_t *index,
                    uint8_t key[BG_SNAP_OPENKEYBYTES], bg_err *err)
{
    *index = BG_SNAP_NONE;
    sodium_memzero(key, BG_SNAP_OPENKEYBYTES);
    if (q == NULL || q->mode != BG_PSI_GRADED || i >= q->n)
        return bg_err_set(err, BG_EINVAL, "result entry: not a graded query or no input %zu", i);
    uint32_t d = q->map[i];
    if (q->state[d] != ITEM_ANSWERED || q->rec_idx[d] == NO_RECORD)
        return bg_err_set(err, BG_ENOTFOUND, "result entry: input %zu has no opened match", i);
    const opened *o = &q->recs[q->rec_idx[d]];
    *index = o->index;
    memcpy(key, o->key, BG_SNAP_OPENKEYBYTES);
    return BG_OK;
}

int
bg_psi_count(const bg_psi_query *q, size_t *matches, bg_err *err)
{
    if (matches != NULL)
        *matches = 0;
    if (q == NULL || matches == NULL)
        return bg_err_set(err, BG_EINVAL, "count: NULL argument");
    if (q->mode != BG_PSI_COUNT)
        return bg_err_set(err, BG_EINVAL, "count: not a count query");
    if (q->taken != q->nd)
        return bg_err_set(err, BG_EINVAL, "count: %zu of %zu answers taken", q->taken, q->nd);
    *matches = q->hits;
    return BG_OK;
}

size_t
bg_psi_unopened(const bg_psi_query *q)
{
    return q ? q->unopened : 0;
}

/* ---- answerer ---- */

static int
evaluate(uint8_t *evaluated, const uint8_t *sk, const uint8_t *elements, size_t elements_len,
         size_t min_items, size_t max_items, unsigned nthreads, size_t *n_out, bg_err *err)
{
    int rc = bg_oprf_init(err);
    if (rc != BG_OK)
        return rc;
    if (sk == NULL || evaluated == NULL)
        return bg_err_set(err, BG_EINVAL, "evaluate: NULL argument");
    rc = bg_oprf_scalar_check(sk, SB, err);
    if (rc != BG_OK) {
        char why[BG_ERR_MSG_MAX];
        snprintf(why, sizeof why, "%s", err ? err->msg : "unusable");
        return bg_err_set(err, BG_EINVAL, "evaluate: key: %s", why);
    }
    if (elements == NULL || elements_len % EB != 0)
        return bg_err_set(err, BG_EPROTO, "elements: %zu bytes, not a multiple of %u",
                          elements ? elements_len : 0, EB);
    size_t n = elements_len / EB;
    if (n == 0)
        return bg_err_set(err, BG_EPROTO, "elements: an empty batch");
    if (max_items > BG_PSI_MAX_ITEMS)
        max_items = BG_PSI_MAX_ITEMS;
    if (n > max_items)
        return bg_err_set(err, BG_ELIMIT, "elements: %zu items, the quota allows %zu", n,
                          max_items);
    if (n < min_items)
        return bg_err_set(err, BG_ELIMIT,
                          "elements: a count-only batch of %zu items, the minimum is %zu", n,
                          min_items);
    rc = bg_oprf_evaluate_batch(evaluated, sk, elements, n, nthreads, err);
    *n_out = n;
    return peer_status(rc);
}

int
bg_psi_evaluate(uint8_t *evaluated, const uint8_t sk[SB], const uint8_t *elements,
                size_t elements_len, size_t max_items, unsigned nthreads, bg_err *err)
{
    size_t n;
    return evaluate(evaluated, sk, elements, elements_len, 0, max_items, nthreads, &n, err);
}

int
bg_psi_evaluate_count(uint8_t *evaluated, const uint8_t sk[SB], const uint8_t *elements,
                      size_t elements_len, size_t min_items, size_t max_items, unsigned nthreads,
                      bg_err *err)
{
    size_t n = 0;
    int rc =
        evaluate(evaluated, sk, elements, elements_len, min_items, max_items, nthreads, &n, err);
    if (rc != BG_OK)
        return rc;
    /* Fisher-Yates: every permutation equally likely (n <= 2^24 < 2^32). */
    uint8_t t[EB];
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = randombytes_uniform((uint32_t)(i + 1));
        if (j == i)
            continue;
        memcpy(t, evaluated + EB * i, EB);
        memcpy(evaluated + EB * i, evaluated + EB * j, EB);
        memcpy(evaluated + EB * j, t, EB);
    }
    sodium_memzero(t, sizeof t);
    return BG_OK;
}
