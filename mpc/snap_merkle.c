/*
 * snap_merkle.c - a snapshot's Merkle root (common/merkle.h, BLAKE2b-256) and the digest
 * the city signs over header and root; per-entry inclusion proofs (one-off, or a prover
 * keeping 1024-leaf block roots) and their standalone verifier.
 */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "common/merkle.h"
#include "common/pool.h"
#include "mpc/snap_int.h"

/* Leaves per parallel Merkle unit: a power of two, so full blocks are perfect subtrees. */
#define MERKLE_BLOCK_LOG 10U
#define MERKLE_BLOCK (1U << MERKLE_BLOCK_LOG)

static const char digest_label[] = "baygate/psi/snapshot/v1";

static void
leaf_hash(uint8_t h[DB], const uint8_t *tag, const uint8_t *sealed)
{
    bg_merkle_leaf(BG_MERKLE_BLAKE2B, tag, TB, sealed, sealed != NULL ? SEB : 0, h);
}

/* MTH of leaves [lo, hi) from the entries, by the running root of common/merkle.h. */
static void
leaves_root(const uint8_t *tags, const uint8_t *sealed, size_t lo, size_t hi, uint8_t root[DB])
{
    bg_merkle_stack st;
    uint8_t h[DB];
    bg_merkle_stack_init(&st, BG_MERKLE_BLAKE2B);
    for (size_t i = lo; i < hi; i++) {
        leaf_hash(h, tags + TB * i, sealed ? sealed + SEB * i : NULL);
        bg_merkle_stack_push(&st, h, 0);
    }
    bg_merkle_stack_root(&st, NULL, root);
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
        leaves_root(c->tags, c->sealed, lo, hi, c->blocks + DB * b);
    }
    return BG_OK;
}

static int
merkle_root(uint8_t root[DB], const uint8_t *tags, const uint8_t *sealed, size_t n,
            unsigned nthreads, bg_err *err)
{
    size_t nblocks = (n + MERKLE_BLOCK - 1) / MERKLE_BLOCK;
    bg_merkle_stack s;
    bg_merkle_stack_init(&s, BG_MERKLE_BLAKE2B);
    if (nblocks == 0) {
        bg_merkle_stack_root(&s, NULL, root);
        return BG_OK;
    }
    struct merkle_ctx c = {.tags = tags, .sealed = sealed, .n = n};
    c.blocks = malloc(DB * nblocks);
    if (c.blocks == NULL)
        return bg_err_set(err, BG_ENOMEM, "snapshot digest: out of memory");
    int rc = bg_pool_run(nblocks, 4, nthreads, merkle_block, &c, err);
    if (rc == BG_OK) {
        size_t full = n / MERKLE_BLOCK;
        for (size_t b = 0; b < full; b++)
            bg_merkle_stack_push(&s, c.blocks + DB * b, MERKLE_BLOCK_LOG);
        bg_merkle_stack_root(&s, full < nblocks ? c.blocks + DB * full : NULL, root);
    }
    free(c.blocks);
    return rc;
}

/* digest = BLAKE2b-256(label || 0x00 || header || root): what the city signs. */
static void
digest_of(const struct bg_snap_hdr *x, const uint8_t root[DB], uint8_t digest[DB])
{
    uint8_t h[HDR_MAX];
    static const uint8_t zero = 0;
    size_t hl = bg_snap_hdr_encode(h, x);
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, DB);
    crypto_generichash_update(&st, (const uint8_t *)digest_label, sizeof digest_label - 1);
    crypto_generichash_update(&st, &zero, 1);
    crypto_generichash_update(&st, h, hl);
    crypto_generichash_update(&st, root, DB);
    crypto_generichash_final(&st, digest, DB);
}

int
bg_snap_rehash(bg_snap *s, unsigned nthreads, bg_err *err)
{
    int rc = merkle_root(s->root, s->tags, s->sealed, s->n, nthreads, err);
    if (rc != BG_OK)
        return rc;
    struct bg_snap_hdr x;
    bg_snap_hdr_of(s, &x);
    digest_of(&x, s->root, s->digest);
    return BG_OK;
}

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
    /* The same header and hash as bg_snap_rehash, so both sides agree byte for byte. */
    struct bg_snap_hdr x;
    memset(&x, 0, sizeof x);
    x.kind = BG_SNAP_KIND_SNAPSHOT;
    x.graded = graded ? 1 : 0;
    memcpy(x.list, list, ll);
    x.list_len = ll;
    x.generation = generation;
    x.epoch = epoch;
    x.count = (uint32_t)count;
    digest_of(&x, root, digest);
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
        rc = bg_pool_run(p->nblocks, 4, nthreads, merkle_block, &c, err);
        if (rc != BG_OK) {
            bg_snap_prover_free(p);
            return rc;
        }
    }
    *out = p;
    return BG_OK;
}

/* The subtrees a prover has at hand for common/merkle.h: a cached block root, or any
 * range within one block (at most MERKLE_BLOCK leaf hashes); ranges above are split. */
static bool
prover_subtree(const void *ctx, uint64_t lo, uint64_t hi, uint8_t out[DB])
{
    const bg_snap_prover *p = ctx;
    const bg_snap *s = p->s;
    uint64_t n = hi - lo;
    if (lo % MERKLE_BLOCK == 0 && (n == MERKLE_BLOCK || (hi == s->n && n < MERKLE_BLOCK))) {
        memcpy(out, p->blocks + DB * (lo / MERKLE_BLOCK), DB);
        return true;
    }
    if (n > MERKLE_BLOCK)
        return false;
    leaves_root(s->tags, s->sealed, (size_t)lo, (size_t)hi, out);
    return true;
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
    *path_len = bg_merkle_path(BG_MERKLE_BLAKE2B, prover_subtree, p, index, p->s->n, path_out);
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
    uint8_t leaf[DB];
    int why;
    size_t used;
    leaf_hash(leaf, tag, sealed);
    if (bg_merkle_verify_inclusion(BG_MERKLE_BLAKE2B, index, count, leaf, path, path_len, root,
                                   &why, &used) == BG_OK)
        return BG_OK;
    if (why == BG_MERKLE_PROOF_TOO_LONG)
        return bg_err_set(err, BG_ECRYPTO,
                          "inclusion proof does not verify: %zu hashes, expected %zu", path_len,
                          used);
    if (why == BG_MERKLE_PROOF_TOO_SHORT)
        return bg_err_set(err, BG_ECRYPTO,
                          "inclusion proof does not verify: too few hashes for entry %zu of %zu",
                          index, count);
    return bg_err_set(err, BG_ECRYPTO,
                      "inclusion proof does not verify: entry %zu of %zu does not lead to "
                      "the root",
                      index, count);
}
