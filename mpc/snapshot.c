/*
 * snapshot.c - PSI list snapshots: build, digest, lookup, open, deltas, chunked wire
 * format; see snapshot.h for the contract and the formats.
 */
#define _GNU_SOURCE /* qsort_r (glibc, musl >= 1.2.3) */
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mpc/snapshot.h"

#define TB BG_SNAP_TAGBYTES
#define SEB BG_SNAP_SEALEDBYTES
#define EB BG_OPRF_ELEMENTBYTES
#define DB BG_SNAP_DIGESTBYTES

#define VERSION 1U
#define FLAG_GRADED 1U
#define PLAIN_VERSION 1U

/* Stream header: fixed part 9 bytes + list + 20 (snapshot) [+ 80 (delta)]. */
#define HDR_FIXED 9U
#define HDR_TAIL 20U
#define HDR_DELTA 80U
#define HDR_MAX (HDR_FIXED + BG_SNAP_LIST_MAX + HDR_TAIL + HDR_DELTA)

/* Items per unit of parallel work (build: one oprf batch of this size per unit). */
#define GRAIN 64U
/* Leaves per parallel Merkle unit: a power of two, so full blocks are perfect subtrees. */
#define MERKLE_BLOCK_LOG 10U
#define MERKLE_BLOCK (1U << MERKLE_BLOCK_LOG)

#define NO_INDEX ((size_t)-1)

static const char tag_label[] = "baygate/psi/tag/v1";
static const char seal_label[] = "baygate/psi/seal/v1";
static const char seal_enc_label[] = "baygate/psi/seal/v1/enc";
static const char seal_siv_label[] = "baygate/psi/seal/v1/siv";
static const char digest_label[] = "baygate/psi/snapshot/v1";

struct bg_snap {
    char list[BG_SNAP_LIST_MAX + 1];
    size_t list_len;
    uint64_t generation, epoch;
    int graded;
    size_t n;
    uint8_t *tags;   /* n * TB */
    uint8_t *sealed; /* n * SEB, graded only */
    void *block;     /* when set, tags and sealed live in it (parsed snapshots) */
    uint8_t root[DB], digest[DB];
};

struct bg_snap_delta {
    char list[BG_SNAP_LIST_MAX + 1];
    size_t list_len;
    uint64_t generation, from_epoch, to_epoch;
    int graded;
    size_t to_count;
    uint8_t from_digest[DB], to_digest[DB];
    size_t nrem, nadd;
    uint8_t *removed;    /* nrem * TB */
    uint8_t *add_tags;   /* nadd * TB */
    uint8_t *add_sealed; /* nadd * SEB, graded only */
    void *block;
};

/* ---- little helpers ---- */

static void
put_u32(uint8_t *p, uint32_t v)
{
    for (unsigned i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void
put_u64(uint8_t *p, uint64_t v)
{
    for (unsigned i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t
get_u32(const uint8_t *p)
{
    uint32_t v = 0;
    for (unsigned i = 0; i < 4; i++)
        v |= (uint32_t)p[i] << (8 * i);
    return v;
}

static uint64_t
get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* Tags compare as big-endian numbers, which is the memcmp order. */
static uint64_t
tag_key(const uint8_t *t)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < TB; i++)
        v = (v << 8) | t[i];
    return v;
}

static size_t
entry_bytes(int graded)
{
    return TB + (graded ? SEB : 0);
}

size_t
bg_snap_entry_bytes(int graded)
{
    return entry_bytes(graded);
}

/* 1..64 bytes, each 0x21..0x7e. */
static bool
list_ok(const char *list, size_t len)
{
    if (len == 0 || len > BG_SNAP_LIST_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)list[i] < 0x21 || (unsigned char)list[i] > 0x7e)
            return false;
    return true;
}

static int
ready(bg_err *err)
{
    return bg_oprf_init(err);
}

/* ---- parallel for ---- */

/* Processes [begin, end); on failure sets *bad to the lowest failing index. */
typedef int (*par_fn)(void *ctx, size_t begin, size_t end, size_t *bad, bg_err *err);

struct par {
    par_fn fn;
    void *ctx;
    size_t n, grain;
    atomic_size_t next;
    atomic_bool stop;
};

struct par_worker {
    struct par *p;
    pthread_t tid;
    int rc;
    size_t bad;
    bg_err err;
};

static void *
par_main(void *arg)
{
    struct par_worker *w = arg;
    struct par *p = w->p;
    size_t units = (p->n + p->grain - 1) / p->grain;
    for (;;) {
        if (atomic_load_explicit(&p->stop, memory_order_relaxed))
            break;
        size_t u = atomic_fetch_add_explicit(&p->next, 1, memory_order_relaxed);
        if (u >= units)
            break;
        size_t begin = u * p->grain, end = begin + p->grain < p->n ? begin + p->grain : p->n;
        w->rc = p->fn(p->ctx, begin, end, &w->bad, &w->err);
        if (w->rc != BG_OK) {
            atomic_store_explicit(&p->stop, true, memory_order_relaxed);
            break;
        }
    }
    return NULL;
}

/*
 * Runs fn over [0, n) in units of grain items on nthreads threads (the caller is one).
 * Units are claimed in order, so the lowest failing index is the one a serial run names.
 */
static int
par_run(size_t n, size_t grain, unsigned nthreads, par_fn fn, void *ctx, bg_err *err)
{
    if (n == 0)
        return BG_OK;
    size_t units = (n + grain - 1) / grain;
    unsigned t = nthreads == 0 ? bg_oprf_threads_default() : nthreads;
    if (t > BG_OPRF_THREADS_MAX)
        t = BG_OPRF_THREADS_MAX;
    if (t > units)
        t = (unsigned)units;
    struct par p = {.fn = fn, .ctx = ctx, .n = n, .grain = grain};
    atomic_init(&p.next, 0);
    atomic_init(&p.stop, false);
    struct par_worker solo, *w = t > 1 ? calloc(t, sizeof *w) : NULL;
    if (w == NULL) {
        memset(&solo, 0, sizeof solo);
        w = &solo;
        t = 1;
    }
    for (unsigned i = 0; i < t; i++) {
        w[i].p = &p;
        w[i].rc = BG_OK;
        w[i].bad = NO_INDEX;
    }
    unsigned started = 1;
    for (unsigned i = 1; i < t; i++) {
        if (pthread_create(&w[i].tid, NULL, par_main, &w[i]) != 0)
            break;
        started++;
    }
    par_main(&w[0]);
    for (unsigned i = 1; i < started; i++)
        pthread_join(w[i].tid, NULL);
    int rc = BG_OK;
    size_t first = NO_INDEX;
    for (unsigned i = 0; i < started; i++) {
        if (w[i].rc != BG_OK && (rc == BG_OK || w[i].bad < first)) {
            rc = w[i].rc;
            first = w[i].bad;
            if (err != NULL)
                *err = w[i].err;
        }
    }
    if (w != &solo)
        free(w);
    return rc;
}

/* ---- tags ---- */

void
bg_snap_tag(uint8_t tag[TB], const uint8_t element[EB])
{
    uint8_t h[32];
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, sizeof h);
    crypto_generichash_update(&st, (const uint8_t *)tag_label, sizeof tag_label - 1);
    crypto_generichash_update(&st, element, EB);
    crypto_generichash_final(&st, h, sizeof h);
    memcpy(tag, h, TB);
    /* The hash of N is as good as N for testing a guess once the tag set is public. */
    sodium_memzero(h, sizeof h);
    sodium_memzero(&st, sizeof st);
}

/* ---- sealed payloads ---- */

/* ad = label || len(list) || list || generation || tag; returns its length (<= 100). */
static size_t
seal_ad(uint8_t *ad, const char *list, size_t list_len, uint64_t generation, const uint8_t *tag)
{
    size_t o = sizeof seal_label - 1;
    memcpy(ad, seal_label, o);
    ad[o++] = (uint8_t)list_len;
    memcpy(ad + o, list, list_len);
    o += list_len;
    put_u64(ad + o, generation);
    o += 8;
    memcpy(ad + o, tag, TB);
    return o + TB;
}
#define AD_MAX (sizeof seal_label - 1 + 1 + BG_SNAP_LIST_MAX + 8 + TB)

static void
seal_keys(uint8_t enc[32], uint8_t siv[32], const uint8_t out[BG_OPRF_OUTPUTBYTES])
{
    crypto_generichash(enc, 32, (const uint8_t *)seal_enc_label, sizeof seal_enc_label - 1, out,
                       BG_OPRF_OUTPUTBYTES);
    crypto_generichash(siv, 32, (const uint8_t *)seal_siv_label, sizeof seal_siv_label - 1, out,
                       BG_OPRF_OUTPUTBYTES);
}

/* Valid iff NUL-terminated within cap + 1 bytes. */
static bool
str_ok(const char *s, size_t cap)
{
    return memchr(s, '\0', cap + 1) != NULL;
}

/* The 99-byte plaintext v1 (see snapshot.h). Strings are checked by the caller. */
static void
plain_encode(uint8_t p[BG_SNAP_PLAINBYTES], const uint8_t *input, size_t input_len,
             const bg_snap_payload *pl)
{
    size_t gl = strlen(pl->grade), sl = strlen(pl->scale);
    memset(p, 0, BG_SNAP_PLAINBYTES);
    p[0] = PLAIN_VERSION;
    p[1] = (uint8_t)input_len;
    memcpy(p + 2, input, input_len);
    p[34] = (uint8_t)gl;
    memcpy(p + 35, pl->grade, gl);
    p[43] = (uint8_t)sl;
    memcpy(p + 44, pl->scale, sl);
    put_u32(p + 75, (uint32_t)pl->evaluated_at);
    put_u32(p + 79, (uint32_t)pl->valid_until);
    put_u32(p + 83, (uint32_t)pl->listed_at);
    put_u32(p + 87, (uint32_t)pl->expires_at);
    put_u64(p + 91, pl->serial);
}

/* A string field of cap bytes holding len bytes without NUL, then zeros. */
static bool
field_ok(const uint8_t *f, size_t cap, size_t len)
{
    if (len > cap)
        return false;
    for (size_t i = 0; i < cap; i++)
        if ((i < len) != (f[i] != 0))
            return false;
    return true;
}

static bool
plain_decode(bg_snap_record *rec, const uint8_t p[BG_SNAP_PLAINBYTES])
{
    if (p[0] != PLAIN_VERSION || p[1] == 0 || p[1] > BG_SNAP_INPUT_MAX ||
        !sodium_is_zero(p + 2 + p[1], BG_SNAP_INPUT_MAX - p[1]) ||
        !field_ok(p + 35, BG_SNAP_GRADE_MAX, p[34]) || !field_ok(p + 44, BG_SNAP_SCALE_MAX, p[43]))
        return false;
    memset(rec, 0, sizeof *rec);
    rec->input_len = p[1];
    memcpy(rec->input, p + 2, p[1]);
    memcpy(rec->payload.grade, p + 35, p[34]);
    memcpy(rec->payload.scale, p + 44, p[43]);
    rec->payload.evaluated_at = (int32_t)get_u32(p + 75);
    rec->payload.valid_until = (int32_t)get_u32(p + 79);
    rec->payload.listed_at = (int32_t)get_u32(p + 83);
    rec->payload.expires_at = (int32_t)get_u32(p + 87);
    rec->payload.serial = get_u64(p + 91);
    return true;
}

/* sealed = nonce || AEAD(enc, nonce, ad, plain), nonce = BLAKE2b-192(siv, ad || plain). */
static void
seal(uint8_t sealed[SEB], const uint8_t out[BG_OPRF_OUTPUTBYTES], const uint8_t *ad, size_t ad_len,
     const uint8_t plain[BG_SNAP_PLAINBYTES])
{
    uint8_t enc[32], siv[32];
    crypto_generichash_state st;
    seal_keys(enc, siv, out);
    crypto_generichash_init(&st, siv, sizeof siv, BG_SNAP_NONCEBYTES);
    crypto_generichash_update(&st, ad, ad_len);
    crypto_generichash_update(&st, plain, BG_SNAP_PLAINBYTES);
    crypto_generichash_final(&st, sealed, BG_SNAP_NONCEBYTES);
    crypto_aead_xchacha20poly1305_ietf_encrypt(sealed + BG_SNAP_NONCEBYTES, NULL, plain,
                                               BG_SNAP_PLAINBYTES, ad, ad_len, NULL, sealed, enc);
    sodium_memzero(enc, sizeof enc);
    sodium_memzero(siv, sizeof siv);
    sodium_memzero(&st, sizeof st);
}

/* ---- Merkle root and digest ---- */

static void
leaf_hash(uint8_t h[DB], const uint8_t *tag, const uint8_t *sealed)
{
    static const uint8_t zero = 0;
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, DB);
    crypto_generichash_update(&st, &zero, 1);
    crypto_generichash_update(&st, tag, TB);
    if (sealed != NULL)
        crypto_generichash_update(&st, sealed, SEB);
    crypto_generichash_final(&st, h, DB);
}

static void
node_hash(uint8_t h[DB], const uint8_t l[DB], const uint8_t r[DB])
{
    uint8_t m[1 + 2 * DB];
    m[0] = 1;
    memcpy(m + 1, l, DB);
    memcpy(m + 1 + DB, r, DB);
    crypto_generichash(h, DB, m, sizeof m, NULL, 0);
}

/*
 * RFC 6962 tree hash by a stack of perfect subtrees: pushing a subtree of height h merges
 * it with equal-height subtrees on top; at the end the stack folds from the right. This
 * is the RFC's split at the largest power of two below the size, in O(log n) memory.
 */
struct mstack {
    uint8_t h[64][DB];
    unsigned height[64];
    unsigned top;
};

static void
mstack_push(struct mstack *s, const uint8_t h[DB], unsigned height)
{
    memcpy(s->h[s->top], h, DB);
    s->height[s->top++] = height;
    while (s->top >= 2 && s->height[s->top - 1] == s->height[s->top - 2]) {
        node_hash(s->h[s->top - 2], s->h[s->top - 2], s->h[s->top - 1]);
        s->height[s->top - 2]++;
        s->top--;
    }
}

/* Folds the stack into root; with a tail (the root of a last, partial block), folds it in. */
static void
mstack_root(struct mstack *s, const uint8_t *tail, uint8_t root[DB])
{
    uint8_t h[DB];
    if (s->top == 0 && tail == NULL) {
        crypto_generichash(root, DB, NULL, 0, NULL, 0);
        return;
    }
    size_t k = s->top;
    if (tail != NULL) {
        memcpy(h, tail, DB);
    } else {
        memcpy(h, s->h[--k], DB);
    }
    while (k-- > 0)
        node_hash(h, s->h[k], h);
    memcpy(root, h, DB);
}

struct merkle_ctx {
    const uint8_t *tags, *sealed;
    size_t n;
    uint8_t *blocks; /* one root per block */
};

static int
merkle_block(void *vctx, size_t begin, size_t end, size_t *bad, bg_err *err)
{
    (void)bad;
    (void)err;
    const struct merkle_ctx *c = vctx;
    for (size_t b = begin; b < end; b++) {
        size_t lo = b * MERKLE_BLOCK, hi = lo + MERKLE_BLOCK < c->n ? lo + MERKLE_BLOCK : c->n;
        struct mstack s;
        uint8_t h[DB];
        s.top = 0;
        for (size_t i = lo; i < hi; i++) {
            leaf_hash(h, c->tags + TB * i, c->sealed ? c->sealed + SEB * i : NULL);
            mstack_push(&s, h, 0);
        }
        mstack_root(&s, NULL, c->blocks + DB * b);
    }
    return BG_OK;
}

static int
merkle_root(uint8_t root[DB], const uint8_t *tags, const uint8_t *sealed, size_t n,
            unsigned nthreads, bg_err *err)
{
    size_t nblocks = (n + MERKLE_BLOCK - 1) / MERKLE_BLOCK;
    struct mstack s;
    s.top = 0;
    if (nblocks == 0) {
        mstack_root(&s, NULL, root);
        return BG_OK;
    }
    struct merkle_ctx c = {.tags = tags, .sealed = sealed, .n = n};
    c.blocks = malloc(DB * nblocks);
    if (c.blocks == NULL)
        return bg_err_set(err, BG_ENOMEM, "snapshot digest: out of memory");
    int rc = par_run(nblocks, 4, nthreads, merkle_block, &c, err);
    if (rc == BG_OK) {
        size_t full = n / MERKLE_BLOCK;
        for (size_t b = 0; b < full; b++)
            mstack_push(&s, c.blocks + DB * b, MERKLE_BLOCK_LOG);
        mstack_root(&s, full < nblocks ? c.blocks + DB * full : NULL, root);
    }
    free(c.blocks);
    return rc;
}

/* The stream header of a snapshot (kind 1) or delta (kind 2); returns its length. */
struct hdr {
    int kind, graded;
    char list[BG_SNAP_LIST_MAX + 1];
    size_t list_len;
    uint64_t generation, epoch; /* delta: from_epoch */
    uint32_t count;             /* delta: the target's */
    uint64_t to_epoch;          /* delta */
    uint8_t from_digest[DB], to_digest[DB];
    uint32_t nrem, nadd;
};

static size_t
hdr_encode(uint8_t *h, const struct hdr *x)
{
    memcpy(h, "BGPS", 4);
    h[4] = VERSION;
    h[5] = (uint8_t)x->kind;
    h[6] = TB;
    h[7] = x->graded ? FLAG_GRADED : 0;
    h[8] = (uint8_t)x->list_len;
    size_t o = HDR_FIXED;
    memcpy(h + o, x->list, x->list_len);
    o += x->list_len;
    put_u64(h + o, x->generation);
    put_u64(h + o + 8, x->epoch);
    put_u32(h + o + 16, x->count);
    o += HDR_TAIL;
    if (x->kind == BG_SNAP_KIND_DELTA) {
        put_u64(h + o, x->to_epoch);
        memcpy(h + o + 8, x->from_digest, DB);
        memcpy(h + o + 8 + DB, x->to_digest, DB);
        put_u32(h + o + 8 + 2 * DB, x->nrem);
        put_u32(h + o + 12 + 2 * DB, x->nadd);
        o += HDR_DELTA;
    }
    return o;
}

static void
snap_hdr(const bg_snap *s, struct hdr *x)
{
    memset(x, 0, sizeof *x);
    x->kind = BG_SNAP_KIND_SNAPSHOT;
    x->graded = s->graded;
    memcpy(x->list, s->list, s->list_len);
    x->list_len = s->list_len;
    x->generation = s->generation;
    x->epoch = s->epoch;
    x->count = (uint32_t)s->n;
}

/* root and digest of s from its entries. */
static int
snap_digest(bg_snap *s, unsigned nthreads, bg_err *err)
{
    int rc = merkle_root(s->root, s->tags, s->sealed, s->n, nthreads, err);
    if (rc != BG_OK)
        return rc;
    struct hdr x;
    uint8_t h[HDR_MAX];
    static const uint8_t zero = 0;
    snap_hdr(s, &x);
    size_t hl = hdr_encode(h, &x);
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, DB);
    crypto_generichash_update(&st, (const uint8_t *)digest_label, sizeof digest_label - 1);
    crypto_generichash_update(&st, &zero, 1);
    crypto_generichash_update(&st, h, hl);
    crypto_generichash_update(&st, s->root, DB);
    crypto_generichash_final(&st, s->digest, DB);
    return BG_OK;
}

/* ---- snapshots ---- */

void
bg_snap_free(bg_snap *s)
{
    if (s == NULL)
        return;
    if (s->block != NULL) {
        free(s->block);
    } else {
        free(s->tags);
        free(s->sealed);
    }
    free(s);
}

void
bg_snap_get_info(const bg_snap *s, bg_snap_info *info)
{
    memset(info, 0, sizeof *info);
    info->kind = BG_SNAP_KIND_SNAPSHOT;
    memcpy(info->list, s->list, s->list_len);
    info->generation = s->generation;
    info->epoch = s->epoch;
    info->count = s->n;
    info->graded = s->graded;
    info->entry_bytes = entry_bytes(s->graded);
    info->wire_bytes = HDR_FIXED + s->list_len + HDR_TAIL + s->n * info->entry_bytes;
    memcpy(info->digest, s->digest, DB);
    memcpy(info->root, s->root, DB);
}

size_t
bg_snap_count(const bg_snap *s)
{
    return s->n;
}

const uint8_t *
bg_snap_tag_at(const bg_snap *s, size_t i)
{
    return i < s->n ? s->tags + TB * i : NULL;
}

const uint8_t *
bg_snap_sealed_at(const bg_snap *s, size_t i)
{
    return i < s->n && s->graded ? s->sealed + SEB * i : NULL;
}

/* Checks the entries of a (parsed or merged) array: sorted by (tag, sealed), runs bounded. */
static int
entries_check(const uint8_t *tags, const uint8_t *sealed, size_t n, const char *what, bg_err *err)
{
    size_t run = 1;
    for (size_t i = 1; i < n; i++) {
        int c = memcmp(tags + TB * (i - 1), tags + TB * i, TB);
        if (c == 0 && sealed != NULL)
            c = memcmp(sealed + SEB * (i - 1), sealed + SEB * i, SEB);
        if (c > 0)
            return bg_err_set(err, BG_EPROTO, "%s %zu: out of order", what, i);
        run = memcmp(tags + TB * (i - 1), tags + TB * i, TB) == 0 ? run + 1 : 1;
        if (run > BG_SNAP_MAX_RUN)
            return bg_err_set(err, BG_EPROTO, "%s %zu: more than %u entries share a tag", what, i,
                              BG_SNAP_MAX_RUN);
    }
    return BG_OK;
}

/* ---- build ---- */

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
    uint8_t n_el[GRAIN][EB], out[BG_OPRF_OUTPUTBYTES], plain[BG_SNAP_PLAINBYTES], ad[AD_MAX],
        tag[TB];
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
        plain_encode(plain, e->input, e->input_len, e->payload);
        size_t ad_len = seal_ad(ad, c->list, c->list_len, c->generation, tag);
        seal(c->sealed + SEB * (begin + i), out, ad, ad_len, plain);
    }
    sodium_memzero(n_el, sizeof n_el);
    sodium_memzero(out, sizeof out);
    sodium_memzero(plain, sizeof plain);
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

int
bg_snap_build(bg_snap **out, const uint8_t sk[BG_OPRF_SCALARBYTES], const char *list,
              uint64_t generation, uint64_t epoch, int graded, const bg_snap_entry *entries,
              size_t n, unsigned nthreads, bg_err *err)
{
    if (out == NULL)
        return bg_err_set(err, BG_EINVAL, "snapshot: NULL output");
    *out = NULL;
    int rc = ready(err);
    if (rc != BG_OK)
        return rc;
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
    rc = bg_oprf_scalar_check(sk, BG_OPRF_SCALARBYTES, err);
    if (rc != BG_OK) {
        char why[BG_ERR_MSG_MAX];
        snprintf(why, sizeof why, "%s", err ? err->msg : "unusable");
        return bg_err_set(err, rc, "key: %s", why);
    }

    bg_snap *s = calloc(1, sizeof *s);
    struct build_ctx c = {.e = entries,
                          .sk = sk,
                          .graded = graded != 0,
                          .list = list,
                          .list_len = strlen(list),
                          .generation = generation};
    uint32_t *perm = NULL;
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
        rc = par_run(n, GRAIN, nthreads, build_unit, &c, err);
    size_t m = 0;
    if (rc == BG_OK && n > 0) {
        qsort_r(c.keys, n, sizeof *c.keys, key_cmp, &c);
        rc = build_dedup(&c, c.keys, n, &m, err);
    }
    if (rc == BG_OK && m > 0) {
        s->tags = malloc(TB * m);
        perm = c.graded ? malloc(sizeof *perm * n) : NULL;
        if (s->tags == NULL || (c.graded && perm == NULL))
            rc = bg_err_set(err, BG_ENOMEM, "snapshot: out of memory for %zu entries", m);
    }
    if (rc == BG_OK && m > 0) {
        size_t j = 0, d = m;
        for (size_t i = 0; i < n; i++) {
            if (c.keys[i].keep) {
                for (unsigned b = 0; b < TB; b++)
                    s->tags[TB * j + b] = (uint8_t)(c.keys[i].tag >> (8 * (TB - 1 - b)));
                if (perm)
                    perm[j] = c.keys[i].idx;
                j++;
            } else if (perm) {
                perm[d++] = c.keys[i].idx; /* dropped duplicates go to the tail */
            }
        }
        free(c.keys);
        c.keys = NULL;
        if (c.graded) {
            uint8_t tmp[SEB];
            permute(c.sealed, SEB, perm, n, tmp);
            uint8_t *shrunk = realloc(c.sealed, SEB * m);
            s->sealed = shrunk ? shrunk : c.sealed;
            c.sealed = NULL;
        }
    }
    free(perm);
    free(c.keys);
    free(c.sealed);
    s->n = m;
    if (rc == BG_OK)
        rc = snap_digest(s, nthreads, err);
    if (rc != BG_OK) {
        bg_snap_free(s);
        return rc;
    }
    *out = s;
    return BG_OK;
}

/* ---- lookups ---- */

size_t
bg_snap_find(const bg_snap *s, const uint8_t tag[TB], size_t *run)
{
    uint64_t t = tag_key(tag);
    size_t lo = 0, hi = s->n;
    while (lo < hi) { /* first index whose tag is >= t */
        size_t mid = lo + (hi - lo) / 2;
        if (tag_key(s->tags + TB * mid) < t)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t end = lo;
    while (end < s->n && tag_key(s->tags + TB * end) == t)
        end++;
    if (run != NULL)
        *run = end - lo;
    return end > lo ? lo : BG_SNAP_NONE;
}

struct match_ctx {
    const bg_snap *s;
    const uint8_t *elements;
    size_t *first;
};

static int
match_unit(void *vctx, size_t begin, size_t end, size_t *bad, bg_err *err)
{
    (void)bad;
    (void)err;
    const struct match_ctx *c = vctx;
    uint8_t tag[TB];
    for (size_t i = begin; i < end; i++) {
        bg_snap_tag(tag, c->elements + EB * i);
        c->first[i] = bg_snap_find(c->s, tag, NULL);
    }
    sodium_memzero(tag, sizeof tag);
    return BG_OK;
}

int
bg_snap_match(const bg_snap *s, const uint8_t *elements, size_t n, size_t *first, unsigned nthreads,
              bg_err *err)
{
    int rc = ready(err);
    if (rc != BG_OK)
        return rc;
    if (s == NULL || (n > 0 && (elements == NULL || first == NULL)))
        return bg_err_set(err, BG_EINVAL, "match: NULL argument");
    struct match_ctx c = {.s = s, .elements = elements, .first = first};
    return par_run(n, 256, nthreads, match_unit, &c, err);
}

int
bg_snap_open(const bg_snap *s, size_t first, const uint8_t *input, size_t input_len,
             const uint8_t element[EB], bg_snap_record *rec, bg_err *err)
{
    /* The same search as bg_snap_open_key; the opening key is only wanted there, so it is
     * wiped here rather than handed back. */
    size_t index;
    uint8_t key[BG_SNAP_OPENKEYBYTES];
    int rc = bg_snap_open_key(s, first, input, input_len, element, rec, &index, key, err);
    sodium_memzero(key, sizeof key);
    return rc;
}

/* ---- epochs ---- */

int
bg_snap_freshness(uint64_t cur_generation, uint64_t cur_epoch, uint64_t generation, uint64_t epoch)
{
    if (epoch < cur_epoch)
        return BG_SNAP_STALE;
    if (epoch > cur_epoch)
        return BG_SNAP_AHEAD;
    if (generation != cur_generation)
        return BG_SNAP_WRONG_KEY_GEN;
    return BG_SNAP_CURRENT;
}

int
bg_snap_require_current(uint64_t cur_generation, uint64_t cur_epoch, uint64_t generation,
                        uint64_t epoch, bg_err *err)
{
    switch (bg_snap_freshness(cur_generation, cur_epoch, generation, epoch)) {
    case BG_SNAP_CURRENT:
        return BG_OK;
    case BG_SNAP_STALE:
        return bg_err_set(err, BG_EPROTO,
                          "stale epoch %llu (generation %llu): the current is %llu (generation "
                          "%llu); refresh the snapshot",
                          (unsigned long long)epoch, (unsigned long long)generation,
                          (unsigned long long)cur_epoch, (unsigned long long)cur_generation);
    case BG_SNAP_AHEAD:
        return bg_err_set(err, BG_EPROTO, "epoch %llu was never published: the current is %llu",
                          (unsigned long long)epoch, (unsigned long long)cur_epoch);
    default:
        return bg_err_set(err, BG_EPROTO,
                          "epoch %llu is of generation %llu, not %llu: refresh the snapshot",
                          (unsigned long long)epoch, (unsigned long long)cur_generation,
                          (unsigned long long)generation);
    }
}

/* ---- deltas ---- */

void
bg_snap_delta_free(bg_snap_delta *d)
{
    if (d == NULL)
        return;
    if (d->block != NULL) {
        free(d->block);
    } else {
        free(d->removed);
        free(d->add_tags);
        free(d->add_sealed);
    }
    free(d);
}

void
bg_snap_delta_get_info(const bg_snap_delta *d, bg_snap_info *info)
{
    memset(info, 0, sizeof *info);
    info->kind = BG_SNAP_KIND_DELTA;
    memcpy(info->list, d->list, d->list_len);
    info->generation = d->generation;
    info->epoch = d->to_epoch;
    info->from_epoch = d->from_epoch;
    info->count = d->to_count;
    info->graded = d->graded;
    info->entry_bytes = entry_bytes(d->graded);
    info->removed = d->nrem;
    info->added = d->nadd;
    info->wire_bytes =
        HDR_FIXED + d->list_len + HDR_TAIL + HDR_DELTA + TB * d->nrem + d->nadd * info->entry_bytes;
    memcpy(info->digest, d->to_digest, DB);
    memcpy(info->from_digest, d->from_digest, DB);
}

/* Entries i.. sharing entry i's tag. */
static size_t
run_end(const uint8_t *tags, size_t n, size_t i)
{
    size_t j = i + 1;
    while (j < n && memcmp(tags + TB * j, tags + TB * i, TB) == 0)
        j++;
    return j;
}

static bool
runs_equal(const bg_snap *a, size_t ai, size_t aj, const bg_snap *b, size_t bi, size_t bj)
{
    if (aj - ai != bj - bi)
        return false;
    return !a->graded || memcmp(a->sealed + SEB * ai, b->sealed + SEB * bi, SEB * (aj - ai)) == 0;
}

/* One walk over both snapshots; with d->removed == NULL it only counts. */
static void
delta_walk(bg_snap_delta *d, const bg_snap *o, const bg_snap *nw)
{
    size_t i = 0, j = 0, r = 0, a = 0;
    bool fill = d->removed != NULL || d->add_tags != NULL;
    while (i < o->n || j < nw->n) {
        int c = i >= o->n ? 1 : j >= nw->n ? -1 : memcmp(o->tags + TB * i, nw->tags + TB * j, TB);
        size_t ie = i < o->n ? run_end(o->tags, o->n, i) : i;
        size_t je = j < nw->n ? run_end(nw->tags, nw->n, j) : j;
        bool rem = c < 0 || (c == 0 && !runs_equal(o, i, ie, nw, j, je));
        bool add = c > 0 || (c == 0 && rem);
        if (rem) {
            if (fill)
                memcpy(d->removed + TB * r, o->tags + TB * i, TB);
            r++;
        }
        if (add) {
            if (fill) {
                memcpy(d->add_tags + TB * a, nw->tags + TB * j, TB * (je - j));
                if (nw->graded)
                    memcpy(d->add_sealed + SEB * a, nw->sealed + SEB * j, SEB * (je - j));
            }
            a += je - j;
        }
        if (c <= 0)
            i = ie;
        if (c >= 0)
            j = je;
    }
    d->nrem = r;
    d->nadd = a;
}

int
bg_snap_delta_make(bg_snap_delta **out, const bg_snap *o, const bg_snap *nw, bg_err *err)
{
    if (out == NULL || o == NULL || nw == NULL)
        return bg_err_set(err, BG_EINVAL, "delta: NULL argument");
    *out = NULL;
    if (o->list_len != nw->list_len || memcmp(o->list, nw->list, o->list_len) != 0)
        return bg_err_set(err, BG_EINVAL, "delta: lists %s and %s differ", o->list, nw->list);
    if (o->generation != nw->generation)
        return bg_err_set(err, BG_EINVAL,
                          "delta: generations %llu and %llu differ (the key rotated): send the "
                          "full snapshot",
                          (unsigned long long)o->generation, (unsigned long long)nw->generation);
    if (o->graded != nw->graded)
        return bg_err_set(err, BG_EINVAL, "delta: one snapshot is graded, the other not");
    if (o->epoch >= nw->epoch)
        return bg_err_set(err, BG_EINVAL, "delta: epoch %llu is not before %llu",
                          (unsigned long long)o->epoch, (unsigned long long)nw->epoch);
    bg_snap_delta *d = calloc(1, sizeof *d);
    if (d == NULL)
        return bg_err_set(err, BG_ENOMEM, "delta: out of memory");
    memcpy(d->list, o->list, o->list_len);
    d->list_len = o->list_len;
    d->generation = o->generation;
    d->from_epoch = o->epoch;
    d->to_epoch = nw->epoch;
    d->graded = o->graded;
    d->to_count = nw->n;
    memcpy(d->from_digest, o->digest, DB);
    memcpy(d->to_digest, nw->digest, DB);
    delta_walk(d, o, nw);
    size_t nrem = d->nrem, nadd = d->nadd;
    d->removed = malloc(TB * nrem + 1);
    d->add_tags = malloc(TB * nadd + 1);
    d->add_sealed = d->graded ? malloc(SEB * nadd + 1) : NULL;
    if (d->removed == NULL || d->add_tags == NULL || (d->graded && d->add_sealed == NULL)) {
        bg_snap_delta_free(d);
        return bg_err_set(err, BG_ENOMEM, "delta: out of memory");
    }
    delta_walk(d, o, nw);
    *out = d;
    return BG_OK;
}

int
bg_snap_delta_apply(bg_snap **out, const bg_snap *o, const bg_snap_delta *d, unsigned nthreads,
                    bg_err *err)
{
    if (out == NULL || o == NULL || d == NULL)
        return bg_err_set(err, BG_EINVAL, "delta: NULL argument");
    *out = NULL;
    int rc = ready(err);
    if (rc != BG_OK)
        return rc;
    if (o->list_len != d->list_len || memcmp(o->list, d->list, o->list_len) != 0)
        return bg_err_set(err, BG_EPROTO, "delta: for list %s, not %s", d->list, o->list);
    if (o->generation != d->generation)
        return bg_err_set(err, BG_EPROTO,
                          "delta: for generation %llu, not %llu: fetch the full snapshot",
                          (unsigned long long)d->generation, (unsigned long long)o->generation);
    if (o->epoch != d->from_epoch || o->graded != d->graded)
        return bg_err_set(err, BG_EPROTO, "delta: from epoch %llu, the snapshot is epoch %llu",
                          (unsigned long long)d->from_epoch, (unsigned long long)o->epoch);
    if (sodium_memcmp(o->digest, d->from_digest, DB) != 0)
        return bg_err_set(err, BG_EPROTO, "delta: its base digest is not the snapshot's");

    bg_snap *s = calloc(1, sizeof *s);
    if (s == NULL)
        return bg_err_set(err, BG_ENOMEM, "delta: out of memory");
    memcpy(s->list, o->list, o->list_len);
    s->list_len = o->list_len;
    s->generation = o->generation;
    s->epoch = d->to_epoch;
    s->graded = o->graded;
    size_t cap = d->to_count;
    s->tags = malloc(TB * cap + 1);
    s->sealed = s->graded ? malloc(SEB * cap + 1) : NULL;
    if (s->tags == NULL || (s->graded && s->sealed == NULL)) {
        bg_snap_free(s);
        return bg_err_set(err, BG_ENOMEM, "delta: out of memory for %zu entries", cap);
    }

    size_t i = 0, r = 0, a = 0, w = 0;
    rc = BG_OK;
    while (rc == BG_OK && (i < o->n || a < d->nadd)) {
        const uint8_t *to = i < o->n ? o->tags + TB * i : NULL;
        const uint8_t *ta = a < d->nadd ? d->add_tags + TB * a : NULL;
        if (to != NULL && r < d->nrem) {
            int c = memcmp(d->removed + TB * r, to, TB);
            if (c < 0) {
                rc = bg_err_set(err, BG_EPROTO, "delta: removed tag %zu is not in the snapshot", r);
                break;
            }
            if (c == 0) {
                i = run_end(o->tags, o->n, i);
                r++;
                continue;
            }
        }
        const uint8_t *src_tag, *src_sealed;
        if (ta != NULL && (to == NULL || memcmp(ta, to, TB) < 0)) {
            src_tag = ta;
            src_sealed = d->graded ? d->add_sealed + SEB * a : NULL;
            a++;
        } else if (ta != NULL && memcmp(ta, to, TB) == 0) {
            rc = bg_err_set(err, BG_EPROTO, "delta: added entry %zu's tag is already present", a);
            break;
        } else {
            src_tag = to;
            src_sealed = o->graded ? o->sealed + SEB * i : NULL;
            i++;
        }
        if (w >= cap) {
            rc = bg_err_set(err, BG_EPROTO, "delta: the result has more than %zu entries", cap);
            break;
        }
        memcpy(s->tags + TB * w, src_tag, TB);
        if (src_sealed != NULL)
            memcpy(s->sealed + SEB * w, src_sealed, SEB);
        w++;
    }
    if (rc == BG_OK && r < d->nrem)
        rc = bg_err_set(err, BG_EPROTO, "delta: removed tag %zu is not in the snapshot", r);
    if (rc == BG_OK && w != cap)
        rc = bg_err_set(err, BG_EPROTO, "delta: the result has %zu entries, the delta says %zu", w,
                        cap);
    s->n = w;
    /* Both inputs are sorted and runs never merge (an added tag must be absent), but the
     * result is checked anyway: it is the snapshot every later lookup trusts. */
    if (rc == BG_OK)
        rc = entries_check(s->tags, s->sealed, s->n, "delta result entry", err);
    if (rc == BG_OK)
        rc = snap_digest(s, nthreads, err);
    if (rc == BG_OK && sodium_memcmp(s->digest, d->to_digest, DB) != 0)
        rc = bg_err_set(err, BG_EPROTO, "delta: the result's digest is not the announced one");
    if (rc != BG_OK) {
        bg_snap_free(s);
        return rc;
    }
    *out = s;
    return BG_OK;
}

/* ---- wire: streams and chunks ---- */

struct stream {
    int kind;
    uint8_t hdr[HDR_MAX];
    size_t hdr_len;
    const uint8_t *seg[3];
    size_t seg_len[3];
    uint64_t total;
    const uint8_t *digest;
};

static void
snap_stream(const bg_snap *s, struct stream *st)
{
    struct hdr x;
    memset(st, 0, sizeof *st);
    snap_hdr(s, &x);
    st->kind = BG_SNAP_KIND_SNAPSHOT;
    st->hdr_len = hdr_encode(st->hdr, &x);
    st->seg[0] = s->tags;
    st->seg_len[0] = TB * s->n;
    st->seg[1] = s->sealed;
    st->seg_len[1] = s->graded ? SEB * s->n : 0;
    st->total = st->hdr_len + st->seg_len[0] + st->seg_len[1];
    st->digest = s->digest;
}

static void
delta_stream(const bg_snap_delta *d, struct stream *st)
{
    struct hdr x;
    memset(st, 0, sizeof *st);
    memset(&x, 0, sizeof x);
    x.kind = BG_SNAP_KIND_DELTA;
    x.graded = d->graded;
    memcpy(x.list, d->list, d->list_len);
    x.list_len = d->list_len;
    x.generation = d->generation;
    x.epoch = d->from_epoch;
    x.count = (uint32_t)d->to_count;
    x.to_epoch = d->to_epoch;
    memcpy(x.from_digest, d->from_digest, DB);
    memcpy(x.to_digest, d->to_digest, DB);
    x.nrem = (uint32_t)d->nrem;
    x.nadd = (uint32_t)d->nadd;
    st->kind = BG_SNAP_KIND_DELTA;
    st->hdr_len = hdr_encode(st->hdr, &x);
    st->seg[0] = d->removed;
    st->seg_len[0] = TB * d->nrem;
    st->seg[1] = d->add_tags;
    st->seg_len[1] = TB * d->nadd;
    st->seg[2] = d->add_sealed;
    st->seg_len[2] = d->graded ? SEB * d->nadd : 0;
    st->total = st->hdr_len + st->seg_len[0] + st->seg_len[1] + st->seg_len[2];
    st->digest = d->to_digest;
}

/* Copies stream bytes [off, off + len) to out. */
static void
stream_copy(const struct stream *st, uint64_t off, uint8_t *out, size_t len)
{
    while (len > 0) {
        const uint8_t *src = st->hdr;
        uint64_t base = 0, seglen = st->hdr_len;
        for (unsigned k = 0; off >= base + seglen && k < 3; k++) {
            base += seglen;
            src = st->seg[k];
            seglen = st->seg_len[k];
        }
        size_t take = (size_t)(base + seglen - off) < len ? (size_t)(base + seglen - off) : len;
        memcpy(out, src + (off - base), take);
        out += take;
        off += take;
        len -= take;
    }
}

static int
stream_chunks(const struct stream *st, size_t max, size_t *count, bg_err *err)
{
    if (max < BG_SNAP_CHUNK_MIN)
        return bg_err_set(err, BG_EINVAL, "chunks: at most %zu bytes each, at least %u needed", max,
                          BG_SNAP_CHUNK_MIN);
    uint64_t per = max - BG_SNAP_CHUNK_HEADERBYTES;
    uint64_t c = (st->total + per - 1) / per;
    if (c > UINT32_MAX)
        return bg_err_set(err, BG_ELIMIT, "chunks: %llu chunks of %zu bytes are too many",
                          (unsigned long long)c, max);
    *count = (size_t)c;
    return BG_OK;
}

static int
stream_chunk(const struct stream *st, size_t max, size_t index, uint8_t *out, size_t cap,
             size_t *out_len, bg_err *err)
{
    size_t count = 0;
    if (out_len != NULL)
        *out_len = 0;
    int rc = stream_chunks(st, max, &count, err);
    if (rc != BG_OK)
        return rc;
    if (out == NULL || out_len == NULL)
        return bg_err_set(err, BG_EINVAL, "chunk: NULL output");
    if (index >= count)
        return bg_err_set(err, BG_EINVAL, "chunk %zu of %zu: no such chunk", index, count);
    uint64_t per = max - BG_SNAP_CHUNK_HEADERBYTES, off = per * index;
    size_t len = (size_t)(st->total - off < per ? st->total - off : per);
    if (cap < BG_SNAP_CHUNK_HEADERBYTES + len)
        return bg_err_set(err, BG_EINVAL, "chunk %zu: %zu bytes needed, buffer holds %zu", index,
                          BG_SNAP_CHUNK_HEADERBYTES + len, cap);
    memcpy(out, "BGPC", 4);
    out[4] = VERSION;
    out[5] = (uint8_t)st->kind;
    out[6] = out[7] = 0;
    put_u32(out + 8, (uint32_t)index);
    put_u32(out + 12, (uint32_t)count);
    put_u64(out + 16, st->total);
    put_u64(out + 24, off);
    memcpy(out + 32, st->digest, DB);
    stream_copy(st, off, out + BG_SNAP_CHUNK_HEADERBYTES, len);
    *out_len = BG_SNAP_CHUNK_HEADERBYTES + len;
    return BG_OK;
}

int
bg_snap_chunk_count(const bg_snap *s, size_t max_chunk_bytes, size_t *count, bg_err *err)
{
    struct stream st;
    if (s == NULL || count == NULL)
        return bg_err_set(err, BG_EINVAL, "chunks: NULL argument");
    snap_stream(s, &st);
    return stream_chunks(&st, max_chunk_bytes, count, err);
}

int
bg_snap_delta_chunk_count(const bg_snap_delta *d, size_t max_chunk_bytes, size_t *count,
                          bg_err *err)
{
    struct stream st;
    if (d == NULL || count == NULL)
        return bg_err_set(err, BG_EINVAL, "chunks: NULL argument");
    delta_stream(d, &st);
    return stream_chunks(&st, max_chunk_bytes, count, err);
}

int
bg_snap_chunk(const bg_snap *s, size_t max_chunk_bytes, size_t index, uint8_t *out, size_t cap,
              size_t *out_len, bg_err *err)
{
    struct stream st;
    if (s == NULL)
        return bg_err_set(err, BG_EINVAL, "chunk: NULL snapshot");
    snap_stream(s, &st);
    return stream_chunk(&st, max_chunk_bytes, index, out, cap, out_len, err);
}

int
bg_snap_delta_chunk(const bg_snap_delta *d, size_t max_chunk_bytes, size_t index, uint8_t *out,
                    size_t cap, size_t *out_len, bg_err *err)
{
    struct stream st;
    if (d == NULL)
        return bg_err_set(err, BG_EINVAL, "chunk: NULL delta");
    delta_stream(d, &st);
    return stream_chunk(&st, max_chunk_bytes, index, out, cap, out_len, err);
}

/* ---- wire: the reader ---- */

enum { R_FIRST, R_BODY, R_COMPLETE, R_SPENT };

struct bg_snap_reader {
    size_t max_entries;
    int state;
    struct hdr h;
    size_t hdr_len;
    uint32_t chunk_count, next_index;
    uint64_t stream_len, received;
    uint8_t digest[DB];
    uint8_t *body;
    size_t body_len;
};

int
bg_snap_reader_new(bg_snap_reader **out, size_t max_entries, bg_err *err)
{
    if (out == NULL)
        return bg_err_set(err, BG_EINVAL, "reader: NULL output");
    *out = NULL;
    bg_snap_reader *r = calloc(1, sizeof *r);
    if (r == NULL)
        return bg_err_set(err, BG_ENOMEM, "reader: out of memory");
    r->max_entries = max_entries < BG_SNAP_MAX_ENTRIES ? max_entries : BG_SNAP_MAX_ENTRIES;
    r->state = R_FIRST;
    *out = r;
    return BG_OK;
}

void
bg_snap_reader_free(bg_snap_reader *r)
{
    if (r == NULL)
        return;
    free(r->body);
    free(r);
}

/* Parses and bounds a stream header from the first chunk's p[0..len); sets body size. */
static int
hdr_parse(bg_snap_reader *r, const uint8_t *p, size_t len, bg_err *err)
{
    struct hdr *h = &r->h;
    memset(h, 0, sizeof *h);
    if (len < HDR_FIXED)
        return bg_err_set(err, BG_EPROTO, "snapshot header: truncated");
    if (memcmp(p, "BGPS", 4) != 0 || p[4] != VERSION)
        return bg_err_set(err, BG_EPROTO, "snapshot header: not a baygate snapshot v1");
    if (p[5] != BG_SNAP_KIND_SNAPSHOT && p[5] != BG_SNAP_KIND_DELTA)
        return bg_err_set(err, BG_EPROTO, "snapshot header: unknown kind %u", p[5]);
    if (p[6] != TB)
        return bg_err_set(err, BG_EPROTO, "snapshot header: tags of %u bytes, expected %u", p[6],
                          TB);
    if ((p[7] & ~FLAG_GRADED) != 0)
        return bg_err_set(err, BG_EPROTO, "snapshot header: unknown flags 0x%02x", p[7]);
    h->kind = p[5];
    h->graded = (p[7] & FLAG_GRADED) != 0;
    h->list_len = p[8];
    size_t need =
        HDR_FIXED + h->list_len + HDR_TAIL + (h->kind == BG_SNAP_KIND_DELTA ? HDR_DELTA : 0);
    if (len < need)
        return bg_err_set(err, BG_EPROTO, "snapshot header: truncated");
    if (!list_ok((const char *)p + HDR_FIXED, h->list_len))
        return bg_err_set(err, BG_EPROTO, "snapshot header: bad list name");
    memcpy(h->list, p + HDR_FIXED, h->list_len);
    const uint8_t *q = p + HDR_FIXED + h->list_len;
    h->generation = get_u64(q);
    h->epoch = get_u64(q + 8);
    h->count = get_u32(q + 16);
    if (h->count > r->max_entries)
        return bg_err_set(err, BG_ELIMIT, "snapshot header: %u entries, at most %zu accepted",
                          h->count, r->max_entries);
    uint64_t eb = entry_bytes(h->graded), body;
    if (h->kind == BG_SNAP_KIND_DELTA) {
        q += HDR_TAIL;
        h->to_epoch = get_u64(q);
        memcpy(h->from_digest, q + 8, DB);
        memcpy(h->to_digest, q + 8 + DB, DB);
        h->nrem = get_u32(q + 8 + 2 * DB);
        h->nadd = get_u32(q + 12 + 2 * DB);
        if (h->to_epoch <= h->epoch)
            return bg_err_set(err, BG_EPROTO, "delta header: epoch %llu is not after %llu",
                              (unsigned long long)h->to_epoch, (unsigned long long)h->epoch);
        if (h->nadd > h->count || h->nrem > r->max_entries)
            return bg_err_set(err, BG_EPROTO, "delta header: %u removed, %u added of %u entries",
                              h->nrem, h->nadd, h->count);
        body = (uint64_t)TB * h->nrem + eb * h->nadd;
    } else {
        body = eb * h->count;
    }
    if (body > SIZE_MAX)
        return bg_err_set(err, BG_ELIMIT, "snapshot: too large for this machine");
    r->hdr_len = need;
    r->body_len = (size_t)body;
    return BG_OK;
}

static int
feed(bg_snap_reader *r, const uint8_t *c, size_t len, bg_err *err)
{
    if (r->state == R_COMPLETE)
        return bg_err_set(err, BG_EPROTO, "chunk: the stream is already complete");
    if (r->state == R_SPENT)
        return bg_err_set(err, BG_EINVAL, "chunk: the reader has failed or finished");
    if (c == NULL || len <= BG_SNAP_CHUNK_HEADERBYTES)
        return bg_err_set(err, BG_EPROTO, "chunk: %zu bytes, no room for data after its header",
                          c ? len : 0);
    if (memcmp(c, "BGPC", 4) != 0 || c[4] != VERSION || c[6] != 0 || c[7] != 0)
        return bg_err_set(err, BG_EPROTO, "chunk: not a baygate snapshot chunk v1");
    uint32_t index = get_u32(c + 8), count = get_u32(c + 12);
    uint64_t total = get_u64(c + 16), off = get_u64(c + 24);
    const uint8_t *data = c + BG_SNAP_CHUNK_HEADERBYTES;
    size_t dlen = len - BG_SNAP_CHUNK_HEADERBYTES;

    if (r->state == R_FIRST) {
        if (index != 0 || off != 0 || count == 0)
            return bg_err_set(err, BG_EPROTO, "chunk %u of %u at offset %llu: expected the first",
                              index, count, (unsigned long long)off);
        if (c[5] != BG_SNAP_KIND_SNAPSHOT && c[5] != BG_SNAP_KIND_DELTA)
            return bg_err_set(err, BG_EPROTO, "chunk: unknown kind %u", c[5]);
        int rc = hdr_parse(r, data, dlen, err);
        if (rc != BG_OK)
            return rc;
        if (r->h.kind != c[5])
            return bg_err_set(err, BG_EPROTO, "chunk: its kind is not its header's");
        if (total != (uint64_t)r->hdr_len + r->body_len)
            return bg_err_set(err, BG_EPROTO, "chunk: stream of %llu bytes, the header says %zu",
                              (unsigned long long)total, r->hdr_len + r->body_len);
        if (count > total)
            return bg_err_set(err, BG_EPROTO, "chunk: %u chunks for %llu bytes", count,
                              (unsigned long long)total);
        if (r->body_len > 0 && (r->body = malloc(r->body_len)) == NULL)
            return bg_err_set(err, BG_ENOMEM, "chunk: out of memory for %zu bytes", r->body_len);
        r->chunk_count = count;
        r->stream_len = total;
        memcpy(r->digest, c + 32, DB);
        r->state = R_BODY;
    } else {
        if (index != r->next_index || count != r->chunk_count || total != r->stream_len ||
            c[5] != r->h.kind || memcmp(c + 32, r->digest, DB) != 0)
            return bg_err_set(err, BG_EPROTO,
                              "chunk %u of %u: expected chunk %u of %u of this "
                              "stream",
                              index, count, r->next_index, r->chunk_count);
        if (off != r->received)
            return bg_err_set(err, BG_EPROTO, "chunk %u: offset %llu, expected %llu", index,
                              (unsigned long long)off, (unsigned long long)r->received);
    }
    if (dlen > r->stream_len - off)
        return bg_err_set(err, BG_EPROTO, "chunk %u: runs past the stream's end", index);
    /* Stream bytes [off, off + dlen); the body starts at hdr_len. */
    uint64_t from = off < r->hdr_len ? r->hdr_len : off;
    if (off + dlen > from)
        memcpy(r->body + (from - r->hdr_len), data + (from - off), (size_t)(off + dlen - from));
    r->received = off + dlen;
    r->next_index = index + 1;
    if (r->next_index == r->chunk_count) {
        if (r->received != r->stream_len)
            return bg_err_set(err, BG_EPROTO, "chunk %u: the last, but %llu of %llu bytes came",
                              index, (unsigned long long)r->received,
                              (unsigned long long)r->stream_len);
        r->state = R_COMPLETE;
    } else if (r->received == r->stream_len) {
        return bg_err_set(err, BG_EPROTO, "chunk %u: the stream ended with chunks still to come",
                          index);
    }
    return BG_OK;
}

int
bg_snap_reader_feed(bg_snap_reader *r, const uint8_t *chunk, size_t len, bg_err *err)
{
    if (r == NULL)
        return bg_err_set(err, BG_EINVAL, "reader: NULL");
    int rc = feed(r, chunk, len, err);
    if (rc != BG_OK && r->state != R_SPENT && r->state != R_COMPLETE) {
        /* A stream that failed once is refused from then on: no partial state survives. */
        free(r->body);
        r->body = NULL;
        r->state = R_SPENT;
    }
    return rc;
}

int
bg_snap_reader_info(const bg_snap_reader *r, bg_snap_info *info, bg_err *err)
{
    if (r == NULL || info == NULL)
        return bg_err_set(err, BG_EINVAL, "reader: NULL argument");
    memset(info, 0, sizeof *info);
    if (r->state != R_BODY && r->state != R_COMPLETE)
        return bg_err_set(err, BG_EINVAL, "reader: no header yet");
    const struct hdr *h = &r->h;
    info->kind = h->kind;
    memcpy(info->list, h->list, h->list_len);
    info->generation = h->generation;
    info->graded = h->graded;
    info->entry_bytes = entry_bytes(h->graded);
    info->count = h->count;
    info->wire_bytes = (size_t)r->stream_len;
    memcpy(info->digest, r->digest, DB);
    if (h->kind == BG_SNAP_KIND_DELTA) {
        info->epoch = h->to_epoch;
        info->from_epoch = h->epoch;
        info->removed = h->nrem;
        info->added = h->nadd;
        memcpy(info->from_digest, h->from_digest, DB);
    } else {
        info->epoch = h->epoch;
    }
    return BG_OK;
}

int
bg_snap_reader_complete(const bg_snap_reader *r)
{
    return r != NULL && r->state == R_COMPLETE;
}

static int
reader_take(bg_snap_reader *r, int kind, bg_err *err)
{
    if (r == NULL)
        return bg_err_set(err, BG_EINVAL, "reader: NULL");
    if (r->state != R_COMPLETE) {
        r->state = R_SPENT;
        return bg_err_set(err, BG_EPROTO, "reader: the stream is incomplete (%llu of %llu bytes)",
                          (unsigned long long)r->received, (unsigned long long)r->stream_len);
    }
    r->state = R_SPENT;
    if (r->h.kind != kind)
        return bg_err_set(err, BG_EPROTO, "reader: the stream is a %s, not a %s",
                          r->h.kind == BG_SNAP_KIND_DELTA ? "delta" : "snapshot",
                          kind == BG_SNAP_KIND_DELTA ? "delta" : "snapshot");
    return BG_OK;
}

int
bg_snap_reader_finish(bg_snap_reader *r, const uint8_t *expected_digest, bg_snap **out,
                      unsigned nthreads, bg_err *err)
{
    if (out == NULL)
        return bg_err_set(err, BG_EINVAL, "reader: NULL output");
    *out = NULL;
    int rc = reader_take(r, BG_SNAP_KIND_SNAPSHOT, err);
    if (rc != BG_OK)
        return rc;
    bg_snap *s = calloc(1, sizeof *s);
    if (s == NULL)
        return bg_err_set(err, BG_ENOMEM, "reader: out of memory");
    memcpy(s->list, r->h.list, r->h.list_len);
    s->list_len = r->h.list_len;
    s->generation = r->h.generation;
    s->epoch = r->h.epoch;
    s->graded = r->h.graded;
    s->n = r->h.count;
    s->block = r->body;
    s->tags = r->body;
    s->sealed = s->graded && r->body ? r->body + TB * s->n : NULL;
    r->body = NULL;
    rc = entries_check(s->tags, s->sealed, s->n, "snapshot entry", err);
    if (rc == BG_OK)
        rc = snap_digest(s, nthreads, err);
    if (rc == BG_OK && sodium_memcmp(s->digest, r->digest, DB) != 0)
        rc = bg_err_set(err, BG_EPROTO, "snapshot: the digest does not match its entries");
    if (rc == BG_OK && expected_digest != NULL &&
        sodium_memcmp(s->digest, expected_digest, DB) != 0)
        rc = bg_err_set(err, BG_EPROTO, "snapshot: the digest is not the signed one");
    if (rc != BG_OK) {
        bg_snap_free(s);
        return rc;
    }
    *out = s;
    return BG_OK;
}

int
bg_snap_reader_finish_delta(bg_snap_reader *r, bg_snap_delta **out, bg_err *err)
{
    if (out == NULL)
        return bg_err_set(err, BG_EINVAL, "reader: NULL output");
    *out = NULL;
    int rc = reader_take(r, BG_SNAP_KIND_DELTA, err);
    if (rc != BG_OK)
        return rc;
    bg_snap_delta *d = calloc(1, sizeof *d);
    if (d == NULL)
        return bg_err_set(err, BG_ENOMEM, "reader: out of memory");
    const struct hdr *h = &r->h;
    memcpy(d->list, h->list, h->list_len);
    d->list_len = h->list_len;
    d->generation = h->generation;
    d->from_epoch = h->epoch;
    d->to_epoch = h->to_epoch;
    d->graded = h->graded;
    d->to_count = h->count;
    memcpy(d->from_digest, h->from_digest, DB);
    memcpy(d->to_digest, h->to_digest, DB);
    d->nrem = h->nrem;
    d->nadd = h->nadd;
    d->block = r->body;
    d->removed = r->body;
    d->add_tags = r->body ? r->body + TB * d->nrem : NULL;
    d->add_sealed = d->graded && r->body ? r->body + TB * (d->nrem + d->nadd) : NULL;
    r->body = NULL;
    if (sodium_memcmp(d->to_digest, r->digest, DB) != 0)
        rc = bg_err_set(err, BG_EPROTO, "delta: its chunks name another target digest");
    for (size_t i = 1; rc == BG_OK && i < d->nrem; i++)
        if (memcmp(d->removed + TB * (i - 1), d->removed + TB * i, TB) >= 0)
            rc = bg_err_set(err, BG_EPROTO, "delta: removed tag %zu out of order", i);
    if (rc == BG_OK)
        rc = entries_check(d->add_tags, d->add_sealed, d->nadd, "delta added entry", err);
    if (rc != BG_OK) {
        bg_snap_delta_free(d);
        return rc;
    }
    *out = d;
    return BG_OK;
}

/* ---- per-entry evidence: inclusion proofs and opening keys ---- */

void
bg_snap_leaf_hash(uint8_t leaf[DB], const uint8_t tag[TB], const uint8_t *sealed)
{
    leaf_hash(leaf, tag, sealed);
}

int
bg_snap_digest_compute(const char *list, uint64_t generation, uint64_t epoch, size_t count,
                       int graded, const uint8_t root[DB], uint8_t digest[DB], bg_err *err)
{
    size_t ll = list != NULL ? strnlen(list, BG_SNAP_LIST_MAX + 1) : 0;
    if (list == NULL || !list_ok(list, ll))
        return bg_err_set(err, BG_EINVAL,
                          "snapshot digest: list name must be 1..%u printable bytes",
                          BG_SNAP_LIST_MAX);
    if (count > BG_SNAP_MAX_ENTRIES)
        return bg_err_set(err, BG_EINVAL, "snapshot digest: %zu entries, at most %u", count,
                          BG_SNAP_MAX_ENTRIES);
    if (root == NULL || digest == NULL)
        return bg_err_set(err, BG_EINVAL, "snapshot digest: NULL argument");
    /* The same header and hash as snap_digest, so both sides agree byte for byte. */
    struct hdr x;
    memset(&x, 0, sizeof x);
    x.kind = BG_SNAP_KIND_SNAPSHOT;
    x.graded = graded ? 1 : 0;
    memcpy(x.list, list, ll);
    x.list_len = ll;
    x.generation = generation;
    x.epoch = epoch;
    x.count = (uint32_t)count;
    uint8_t h[HDR_MAX];
    size_t hl = hdr_encode(h, &x);
    static const uint8_t zero = 0;
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, DB);
    crypto_generichash_update(&st, (const uint8_t *)digest_label, sizeof digest_label - 1);
    crypto_generichash_update(&st, &zero, 1);
    crypto_generichash_update(&st, h, hl);
    crypto_generichash_update(&st, root, DB);
    crypto_generichash_final(&st, digest, DB);
    return BG_OK;
}

struct bg_snap_prover {
    const bg_snap *s;
    size_t nblocks;
    uint8_t *blocks; /* nblocks * DB: MTH of [b * MERKLE_BLOCK, min(n, (b + 1) * MERKLE_BLOCK)) */
};

void
bg_snap_prover_free(bg_snap_prover *p)
{
    if (p == NULL)
        return;
    free(p->blocks);
    free(p);
}

int
bg_snap_prover_new(bg_snap_prover **out, const bg_snap *s, unsigned nthreads, bg_err *err)
{
    if (out != NULL)
        *out = NULL;
    if (out == NULL || s == NULL)
        return bg_err_set(err, BG_EINVAL, "prover: NULL argument");
    int rc = ready(err);
    if (rc != BG_OK)
        return rc;
    bg_snap_prover *p = calloc(1, sizeof *p);
    if (p == NULL)
        return bg_err_set(err, BG_ENOMEM, "prover: out of memory");
    p->s = s;
    p->nblocks = (s->n + MERKLE_BLOCK - 1) / MERKLE_BLOCK;
    if (p->nblocks > 0) {
        p->blocks = malloc(DB * p->nblocks);
        if (p->blocks == NULL) {
            free(p);
            return bg_err_set(err, BG_ENOMEM, "prover: out of memory");
        }
        /* The same block roots merkle_root folds into the snapshot's root. */
        struct merkle_ctx c = {
            .tags = s->tags, .sealed = s->sealed, .n = s->n, .blocks = p->blocks};
        rc = par_run(p->nblocks, 4, nthreads, merkle_block, &c, err);
        if (rc != BG_OK) {
            bg_snap_prover_free(p);
            return rc;
        }
    }
    *out = p;
    return BG_OK;
}

/* Largest power of two strictly below n (n >= 2): RFC 6962's split point. */
static size_t
split_point(size_t n)
{
    size_t k = 1;
    while (k << 1 < n)
        k <<= 1;
    return k;
}

/* MTH(D[lo:hi]), hi > lo: from a cached block root when the range is one, from block
 * roots above a block, from the leaves (at most MERKLE_BLOCK of them) below. */
static void
prover_mth(const bg_snap_prover *p, size_t lo, size_t hi, uint8_t out[DB])
{
    const bg_snap *s = p->s;
    size_t n = hi - lo;
    if (lo % MERKLE_BLOCK == 0 && (n == MERKLE_BLOCK || (hi == s->n && n < MERKLE_BLOCK))) {
        memcpy(out, p->blocks + DB * (lo / MERKLE_BLOCK), DB);
        return;
    }
    if (n <= MERKLE_BLOCK) {
        struct mstack st;
        uint8_t h[DB];
        st.top = 0;
        for (size_t i = lo; i < hi; i++) {
            leaf_hash(h, s->tags + TB * i, s->sealed ? s->sealed + SEB * i : NULL);
            mstack_push(&st, h, 0);
        }
        mstack_root(&st, NULL, out);
        return;
    }
    uint8_t l[DB], r[DB];
    size_t k = split_point(n);
    prover_mth(p, lo, lo + k, l);
    prover_mth(p, lo + k, hi, r);
    node_hash(out, l, r);
}

/* PATH(m, D[lo:hi]) appended innermost first (RFC 6962 2.1.1). */
static void
prover_path(const bg_snap_prover *p, size_t m, size_t lo, size_t hi, uint8_t *path, size_t *len)
{
    if (hi - lo <= 1)
        return;
    size_t k = split_point(hi - lo);
    if (m < lo + k) {
        prover_path(p, m, lo, lo + k, path, len);
        prover_mth(p, lo + k, hi, path + DB * (*len)++);
    } else {
        prover_path(p, m, lo + k, hi, path, len);
        prover_mth(p, lo, lo + k, path + DB * (*len)++);
    }
}

int
bg_snap_prover_path(const bg_snap_prover *p, size_t index, uint8_t *path_out, size_t *path_len,
                    bg_err *err)
{
    if (path_len != NULL)
        *path_len = 0;
    if (p == NULL || path_out == NULL || path_len == NULL)
        return bg_err_set(err, BG_EINVAL, "inclusion proof: NULL argument");
    if (index >= p->s->n)
        return bg_err_set(err, BG_EINVAL, "inclusion proof: entry %zu of %zu", index, p->s->n);
    /* n <= 2^24, so the depth (and the path) is at most 24 = BG_SNAP_PATH_MAX. */
    prover_path(p, index, 0, p->s->n, path_out, path_len);
    return BG_OK;
}

int
bg_snap_inclusion_proof(const bg_snap *s, size_t index, uint8_t *path_out, size_t *path_len,
                        unsigned nthreads, bg_err *err)
{
    if (path_len != NULL)
        *path_len = 0;
    if (s == NULL || path_out == NULL || path_len == NULL)
        return bg_err_set(err, BG_EINVAL, "inclusion proof: NULL argument");
    if (index >= s->n)
        return bg_err_set(err, BG_EINVAL, "inclusion proof: entry %zu of %zu", index, s->n);
    bg_snap_prover *p = NULL;
    int rc = bg_snap_prover_new(&p, s, nthreads, err);
    if (rc == BG_OK)
        rc = bg_snap_prover_path(p, index, path_out, path_len, err);
    bg_snap_prover_free(p);
    return rc;
}

int
bg_snap_inclusion_verify(const uint8_t tag[TB], const uint8_t *sealed, size_t index, size_t count,
                         const uint8_t *path, size_t path_len, const uint8_t root[DB], bg_err *err)
{
    if (tag == NULL || root == NULL || (path_len > 0 && path == NULL))
        return bg_err_set(err, BG_EINVAL, "inclusion proof: NULL argument");
    if (count > BG_SNAP_MAX_ENTRIES || index >= count)
        return bg_err_set(err, BG_EINVAL, "inclusion proof: entry %zu of %zu (at most %u)", index,
                          count, BG_SNAP_MAX_ENTRIES);
    if (path_len > BG_SNAP_PATH_MAX)
        return bg_err_set(err, BG_EINVAL, "inclusion proof: path of %zu hashes, at most %u",
                          path_len, BG_SNAP_PATH_MAX);
    /* RFC 9162 2.1.3.2: walk up from the leaf; fn/sn track our and the last node's place. */
    uint8_t r[DB];
    size_t fn = index, sn = count - 1;
    leaf_hash(r, tag, sealed);
    for (size_t i = 0; i < path_len; i++) {
        const uint8_t *pi = path + DB * i;
        if (sn == 0)
            return bg_err_set(err, BG_ECRYPTO,
                              "inclusion proof does not verify: %zu hashes, expected %zu", path_len,
                              i);
        if ((fn & 1) != 0 || fn == sn) {
            node_hash(r, pi, r);
            if ((fn & 1) == 0)
                while ((fn & 1) == 0 && fn != 0) {
                    fn >>= 1;
                    sn >>= 1;
                }
        } else {
            node_hash(r, r, pi);
        }
        fn >>= 1;
        sn >>= 1;
    }
    if (sn != 0)
        return bg_err_set(err, BG_ECRYPTO,
                          "inclusion proof does not verify: too few hashes for entry %zu of %zu",
                          index, count);
    if (sodium_memcmp(r, root, DB) != 0)
        return bg_err_set(err, BG_ECRYPTO,
                          "inclusion proof does not verify: entry %zu of %zu does not lead to "
                          "the root",
                          index, count);
    return BG_OK;
}

int
bg_snap_open_key(const bg_snap *s, size_t first, const uint8_t *input, size_t input_len,
                 const uint8_t element[EB], bg_snap_record *rec, size_t *index,
                 uint8_t key[BG_SNAP_OPENKEYBYTES], bg_err *err)
{
    if (index != NULL)
        *index = BG_SNAP_NONE;
    if (key != NULL)
        sodium_memzero(key, BG_SNAP_OPENKEYBYTES);
    if (rec != NULL)
        memset(rec, 0, sizeof *rec);
    int rc = ready(err);
    if (rc != BG_OK)
        return rc;
    if (s == NULL || rec == NULL || element == NULL || index == NULL || key == NULL)
        return bg_err_set(err, BG_EINVAL, "open: NULL argument");
    if (!s->graded)
        return bg_err_set(err, BG_EINVAL, "open: list %s carries no payloads", s->list);
    if (input == NULL || input_len == 0 || input_len > BG_SNAP_INPUT_MAX)
        return bg_err_set(err, BG_EINVAL, "open: input of %zu bytes, expected 1..%u", input_len,
                          BG_SNAP_INPUT_MAX);
    if (first >= s->n)
        return bg_err_set(err, BG_ENOTFOUND, "open: no entry");

    uint8_t out[BG_OPRF_OUTPUTBYTES], enc[32], siv[32], plain[BG_SNAP_PLAINBYTES], ad[AD_MAX];
    rc = bg_oprf_output(out, input, input_len, element, err);
    if (rc != BG_OK)
        return rc;
    seal_keys(enc, siv, out);
    const uint8_t *tag = s->tags + TB * first;
    size_t ad_len = seal_ad(ad, s->list, s->list_len, s->generation, tag);
    rc = bg_err_set(err, BG_ENOTFOUND, "open: no entry opens for this input");
    for (size_t i = first; i < s->n && memcmp(s->tags + TB * i, tag, TB) == 0; i++) {
        const uint8_t *sl = s->sealed + SEB * i;
        if (crypto_aead_xchacha20poly1305_ietf_decrypt(plain, NULL, NULL, sl + BG_SNAP_NONCEBYTES,
                                                       SEB - BG_SNAP_NONCEBYTES, ad, ad_len, sl,
                                                       enc) != 0)
            continue;
        if (plain_decode(rec, plain) && rec->input_len == input_len &&
            sodium_memcmp(rec->input, input, input_len) == 0) {
            rc = BG_OK;
            *index = i;
            memcpy(key, enc, BG_SNAP_OPENKEYBYTES);
            break;
        }
        memset(rec, 0, sizeof *rec);
    }
    if (rc == BG_OK)
        bg_err_clear(err);
    sodium_memzero(out, sizeof out);
    sodium_memzero(enc, sizeof enc);
    sodium_memzero(siv, sizeof siv);
    sodium_memzero(plain, sizeof plain);
    return rc;
}

int
bg_snap_open_sealed(const uint8_t key[BG_SNAP_OPENKEYBYTES], const char *list, uint64_t generation,
                    const uint8_t tag[TB], const uint8_t sealed[SEB], bg_snap_record *rec,
                    bg_err *err)
{
    if (rec != NULL)
        memset(rec, 0, sizeof *rec);
    int rc = ready(err);
    if (rc != BG_OK)
        return rc;
    if (key == NULL || list == NULL || tag == NULL || sealed == NULL || rec == NULL)
        return bg_err_set(err, BG_EINVAL, "open: NULL argument");
    size_t ll = strnlen(list, BG_SNAP_LIST_MAX + 1);
    if (!list_ok(list, ll))
        return bg_err_set(err, BG_EINVAL, "open: list name must be 1..%u printable bytes",
                          BG_SNAP_LIST_MAX);
    uint8_t ad[AD_MAX], plain[BG_SNAP_PLAINBYTES];
    size_t ad_len = seal_ad(ad, list, ll, generation, tag);
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(plain, NULL, NULL, sealed + BG_SNAP_NONCEBYTES,
                                                   SEB - BG_SNAP_NONCEBYTES, ad, ad_len, sealed,
                                                   key) != 0)
        rc = bg_err_set(err, BG_ECRYPTO,
                        "sealed payload does not open with this key for %s generation %llu", list,
                        (unsigned long long)generation);
    else if (!plain_decode(rec, plain))
        rc = bg_err_set(err, BG_EPROTO, "sealed payload opens to a malformed record");
    if (rc != BG_OK)
        memset(rec, 0, sizeof *rec);
    sodium_memzero(plain, sizeof plain);
    return rc;
}
