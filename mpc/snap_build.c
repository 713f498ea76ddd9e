/*
 * snap_build.c - building a list's snapshot: N = k*H(y) in parallel units, tags and
 * sealed payloads, one sort by (tag, sealed, input), duplicates dropped or refused, the
 * entries compacted in sorted order, then root and digest.
 */
#define _GNU_SOURCE /* qsort_r (glibc, musl >= 1.2.3) */
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/pool.h"
#include "mpc/snap_int.h"

/* Items per unit of parallel work (one oprf batch of this size per unit). */
#define GRAIN 64U

struct build_key {
    uint64_t tag;
    uint32_t idx;
    uint32_t keep;
};

struct build_ctx {
    const bg_snap_entry *e;
    const uint8_t *sk;
    int graded;
    const char *list;
    size_t list_len;
    uint64_t generation;
    struct build_key *keys;
    uint8_t *sealed; /* n * SEB in entry order, graded only */
};

/* Valid iff NUL-terminated within cap + 1 bytes. */
static bool
str_ok(const char *s, size_t cap)
{
    return memchr(s, '\0', cap + 1) != NULL;
}

static int
entry_check(const bg_snap_entry *e, int graded, size_t i, bg_err *err)
{
    if (e->input == NULL || e->input_len == 0 || e->input_len > BG_SNAP_INPUT_MAX)
        return bg_err_set(err, BG_EINVAL, "entry %zu: input of %zu bytes, expected 1..%u", i,
                          e->input ? e->input_len : 0, BG_SNAP_INPUT_MAX);
    if (!graded)
        return BG_OK;
    if (e->payload == NULL)
        return bg_err_set(err, BG_EINVAL, "entry %zu: no payload in a graded list", i);
    if (!str_ok(e->payload->grade, BG_SNAP_GRADE_MAX))
        return bg_err_set(err, BG_EINVAL, "entry %zu: grade longer than %u bytes", i,
                          BG_SNAP_GRADE_MAX);
    if (!str_ok(e->payload->scale, BG_SNAP_SCALE_MAX))
        return bg_err_set(err, BG_EINVAL, "entry %zu: scale name longer than %u bytes", i,
                          BG_SNAP_SCALE_MAX);
    return BG_OK;
}

/* One unit: N = k*H(y) by the oprf batches (one thread: the units are the parallelism),
 * then tags and, for graded lists, sealed payloads. */
static int
build_unit(void *vctx, size_t begin, size_t end, size_t *bad, bg_err *err)
{
    const struct build_ctx *c = vctx;
    const uint8_t *inputs[GRAIN];
    size_t lens[GRAIN];
    uint8_t n_el[GRAIN][EB], out[BG_OPRF_OUTPUTBYTES], tag[TB];
    size_t m = end - begin;
    int rc = BG_OK;

    for (size_t i = 0; i < m && rc == BG_OK; i++) {
        rc = entry_check(&c->e[begin + i], c->graded, begin + i, err);
        if (rc != BG_OK)
            *bad = begin + i;
        inputs[i] = c->e[begin + i].input;
        lens[i] = c->e[begin + i].input_len;
    }
    if (rc == BG_OK) {
        rc = bg_oprf_hash_to_group_batch(&n_el[0][0], inputs, lens, m, 1, err);
        if (rc == BG_OK)
            rc = bg_oprf_evaluate_batch(&n_el[0][0], c->sk, &n_el[0][0], m, 1, err);
        if (rc != BG_OK) { /* an input hashing to the identity: probability 2^-252 */
            char why[BG_ERR_MSG_MAX];
            snprintf(why, sizeof why, "%s", err ? err->msg : "OPRF failed");
            *bad = begin;
            rc = bg_err_set(err, rc, "entries %zu..%zu: %s", begin, end - 1, why);
        }
    }
    for (size_t i = 0; i < m && rc == BG_OK; i++) {
        const bg_snap_entry *e = &c->e[begin + i];
        bg_snap_tag(tag, n_el[i]);
        c->keys[begin + i].tag = tag_key(tag);
        c->keys[begin + i].idx = (uint32_t)(begin + i);
        c->keys[begin + i].keep = 1;
        if (!c->graded)
            continue;
        rc = bg_oprf_output(out, e->input, e->input_len, n_el[i], err);
        if (rc != BG_OK) {
            *bad = begin + i;
            break;
        }
        bg_snap_seal_entry(c->sealed + SEB * (begin + i), out, c->list, c->list_len, c->generation,
                           tag, e->input, e->input_len, e->payload);
    }
    sodium_memzero(n_el, sizeof n_el);
    sodium_memzero(out, sizeof out);
    return rc;
}

/* Order: tag, then sealed bytes (graded), then the input, then the index. */
static int
key_cmp(const void *va, const void *vb, void *vctx)
{
    const struct build_key *a = va, *b = vb;
    const struct build_ctx *c = vctx;
    if (a->tag != b->tag)
        return a->tag < b->tag ? -1 : 1;
    int r = 0;
    if (c->graded)
        r = memcmp(c->sealed + SEB * a->idx, c->sealed + SEB * b->idx, SEB);
    if (r != 0)
        return r;
    const bg_snap_entry *ea = &c->e[a->idx], *eb = &c->e[b->idx];
    if (ea->input_len != eb->input_len)
        return ea->input_len < eb->input_len ? -1 : 1;
    r = memcmp(ea->input, eb->input, ea->input_len);
    if (r != 0)
        return r;
    return a->idx < b->idx ? -1 : a->idx > b->idx;
}

static bool
same_input(const struct build_ctx *c, uint32_t a, uint32_t b)
{
    return c->e[a].input_len == c->e[b].input_len &&
           memcmp(c->e[a].input, c->e[b].input, c->e[a].input_len) == 0;
}

/*
 * Marks duplicates in the sorted keys (same input and same sealed bytes: keep the first)
 * and refuses the same input with two payloads, and runs longer than BG_SNAP_MAX_RUN.
 * Identical entries sort next to each other, so one pass finds them; a run that is still
 * too long holds a repeated input among its first MAX_RUN + 1 entries (pigeonhole), or
 * is a genuine (2^-100) collision of distinct inputs.
 */
static int
build_dedup(const struct build_ctx *c, struct build_key *k, size_t n, size_t *kept, bg_err *err)
{
    size_t m = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        while (j < n && k[j].tag == k[i].tag)
            j++;
        size_t run = 0, first[BG_SNAP_MAX_RUN + 1];
        for (size_t x = i; x < j; x++) {
            /* Sorted by (sealed, input): copies of one entry are adjacent. */
            if (x > i && same_input(c, k[x - 1].idx, k[x].idx) &&
                (!c->graded ||
                 memcmp(c->sealed + SEB * k[x - 1].idx, c->sealed + SEB * k[x].idx, SEB) == 0)) {
                k[x].keep = 0;
                continue;
            }
            if (run <= BG_SNAP_MAX_RUN)
                first[run] = x;
            run++;
        }
        size_t check = run < BG_SNAP_MAX_RUN + 1 ? run : BG_SNAP_MAX_RUN + 1;
        for (size_t a = 0; a < check; a++)
            for (size_t b = a + 1; b < check; b++) {
                uint32_t ia = k[first[a]].idx, ib = k[first[b]].idx;
                if (same_input(c, ia, ib))
                    return bg_err_set(err, BG_EINVAL,
                                      "entries %u and %u: the same input with different payloads",
                                      ia < ib ? ia : ib, ia < ib ? ib : ia);
            }
        if (run > BG_SNAP_MAX_RUN)
            return bg_err_set(err, BG_ELIMIT, "more than %u distinct inputs share a tag",
                              BG_SNAP_MAX_RUN);
        m += run;
        i = j;
    }
    *kept = m;
    return BG_OK;
}

/* a[j] = a[perm[j]] for a permutation perm of [0, n), in place, by cycles; perm is
 * consumed (bit 31 marks done; n <= 2^24). */
static void
permute(uint8_t *a, size_t rec, uint32_t *perm, size_t n, uint8_t *tmp)
{
    const uint32_t done = 1U << 31;
    for (size_t s = 0; s < n; s++) {
        if (perm[s] & done)
            continue;
        if (perm[s] == s) {
            perm[s] |= done;
            continue;
        }
        memcpy(tmp, a + rec * s, rec);
        size_t j = s;
        for (;;) {
            size_t src = perm[j];
            perm[j] |= done;
            if (src == s) {
                memcpy(a + rec * j, tmp, rec);
                break;
            }
            memcpy(a + rec * j, a + rec * src, rec);
            j = src;
        }
    }
}

/* The arguments bg_snap_build refuses before it allocates anything. */
static int
build_args(const uint8_t *sk, const char *list, const bg_snap_entry *entries, size_t n, bg_err *err)
{
    if (list == NULL || !list_ok(list, strnlen(list, BG_SNAP_LIST_MAX + 1)))
        return bg_err_set(err, BG_EINVAL, "list name: 1..%u printable ASCII bytes expected",
                          BG_SNAP_LIST_MAX);
    if (n > BG_SNAP_MAX_ENTRIES)
        return bg_err_set(err, BG_ELIMIT, "snapshot: %zu entries, at most %u", n,
                          BG_SNAP_MAX_ENTRIES);
    if (n > 0 && entries == NULL)
        return bg_err_set(err, BG_EINVAL, "snapshot: NULL entries");
    if (sk == NULL)
        return bg_err_set(err, BG_EINVAL, "key: NULL");
    int rc = bg_oprf_scalar_check(sk, BG_OPRF_SCALARBYTES, err);
    if (rc != BG_OK) {
        char why[BG_ERR_MSG_MAX];
        snprintf(why, sizeof why, "%s", err ? err->msg : "unusable");
        return bg_err_set(err, rc, "key: %s", why);
    }
    return BG_OK;
}

/*
 * The m kept entries of the n sorted keys into s, in key order: tags from the keys,
 * sealed payloads moved in place (c->sealed becomes s->sealed). The keys are freed
 * before the sealed bytes move, to keep the peak low.
 */
static int
build_compact(bg_snap *s, struct build_ctx *c, size_t n, size_t m, bg_err *err)
{
    s->tags = malloc(TB * m);
    uint32_t *perm = c->graded ? malloc(sizeof *perm * n) : NULL;
    if (s->tags == NULL || (c->graded && perm == NULL)) {
        free(perm);
        return bg_err_set(err, BG_ENOMEM, "snapshot: out of memory for %zu entries", m);
    }
    size_t j = 0, d = m;
    for (size_t i = 0; i < n; i++) {
        if (c->keys[i].keep) {
            for (unsigned b = 0; b < TB; b++)
                s->tags[TB * j + b] = (uint8_t)(c->keys[i].tag >> (8 * (TB - 1 - b)));
            if (perm)
                perm[j] = c->keys[i].idx;
            j++;
        } else if (perm) {
            perm[d++] = c->keys[i].idx; /* dropped duplicates go to the tail */
        }
    }
    free(c->keys);
    c->keys = NULL;
    if (c->graded) {
        uint8_t tmp[SEB];
        permute(c->sealed, SEB, perm, n, tmp);
        uint8_t *shrunk = realloc(c->sealed, SEB * m);
        s->sealed = shrunk ? shrunk : c->sealed;
        c->sealed = NULL;
    }
    free(perm);
    return BG_OK;
}

int
bg_snap_build(bg_snap **out, const uint8_t sk[BG_OPRF_SCALARBYTES], const char *list,
              uint64_t generation, uint64_t epoch, int graded, const bg_snap_entry *entries,
              size_t n, unsigned nthreads, bg_err *err)
{
    if (out == NULL)
        return bg_err_set(err, BG_EINVAL, "snapshot: NULL output");
    *out = NULL;
    int rc = ready(err);
    if (rc == BG_OK)
        rc = build_args(sk, list, entries, n, err);
    if (rc != BG_OK)
        return rc;

    bg_snap *s = calloc(1, sizeof *s);
    struct build_ctx c = {.e = entries,
                          .sk = sk,
                          .graded = graded != 0,
                          .list = list,
                          .list_len = strlen(list),
                          .generation = generation};
    if (s == NULL)
        return bg_err_set(err, BG_ENOMEM, "snapshot: out of memory");
    memcpy(s->list, list, c.list_len);
    s->list_len = c.list_len;
    s->generation = generation;
    s->epoch = epoch;
    s->graded = c.graded;

    if (n > 0) {
        c.keys = malloc(sizeof *c.keys * n);
        if (c.graded)
            c.sealed = malloc(SEB * n);
        if (c.keys == NULL || (c.graded && c.sealed == NULL))
            rc = bg_err_set(err, BG_ENOMEM, "snapshot: out of memory for %zu entries", n);
    }
    if (rc == BG_OK)
        rc = bg_pool_run(n, GRAIN, nthreads, build_unit, &c, err);
    size_t m = 0;
    if (rc == BG_OK && n > 0) {
        qsort_r(c.keys, n, sizeof *c.keys, key_cmp, &c);
        rc = build_dedup(&c, c.keys, n, &m, err);
    }
    if (rc == BG_OK && m > 0)
        rc = build_compact(s, &c, n, m, err);
    free(c.keys);
    free(c.sealed);
    s->n = m;
    if (rc == BG_OK)
        rc = bg_snap_rehash(s, nthreads, err);
    if (rc != BG_OK) {
        bg_snap_free(s);
        return rc;
    }
    *out = s;
    return BG_OK;
}
