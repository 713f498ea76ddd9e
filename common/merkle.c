/*
 * merkle.c - the RFC 6962 algebra of merkle.h on libsodium's SHA-256 and BLAKE2b.
 */
#include "common/merkle.h"

#include <sodium.h>
#include <string.h>

#define HB BG_MERKLE_HASHBYTES

void
bg_merkle_leaf(bg_merkle_alg alg, const uint8_t *a, size_t alen, const uint8_t *b, size_t blen,
               uint8_t out[HB])
{
    static const uint8_t prefix = 0x00;
    if (alg == BG_MERKLE_SHA256) {
        crypto_hash_sha256_state st;
        crypto_hash_sha256_init(&st);
        crypto_hash_sha256_update(&st, &prefix, 1);
        crypto_hash_sha256_update(&st, a, alen);
        if (b != NULL)
            crypto_hash_sha256_update(&st, b, blen);
        crypto_hash_sha256_final(&st, out);
    } else {
        crypto_generichash_state st;
        crypto_generichash_init(&st, NULL, 0, HB);
        crypto_generichash_update(&st, &prefix, 1);
        crypto_generichash_update(&st, a, alen);
        if (b != NULL)
            crypto_generichash_update(&st, b, blen);
        crypto_generichash_final(&st, out, HB);
    }
}

void
bg_merkle_node(bg_merkle_alg alg, const uint8_t left[HB], const uint8_t right[HB], uint8_t out[HB])
{
    /* One buffer, so that out may alias either input, hashed in one call. */
    uint8_t m[1 + 2 * HB];
    m[0] = 0x01;
    memcpy(m + 1, left, HB);
    memcpy(m + 1 + HB, right, HB);
    if (alg == BG_MERKLE_SHA256)
        crypto_hash_sha256(out, m, sizeof m);
    else
        crypto_generichash(out, HB, m, sizeof m, NULL, 0);
}

void
bg_merkle_empty(bg_merkle_alg alg, uint8_t out[HB])
{
    if (alg == BG_MERKLE_SHA256)
        crypto_hash_sha256(out, (const uint8_t *)"", 0);
    else
        crypto_generichash(out, HB, NULL, 0, NULL, 0);
}

uint64_t
bg_merkle_split(uint64_t n)
{
    return UINT64_C(1) << (63 - __builtin_clzll(n - 1));
}

void
bg_merkle_stack_init(bg_merkle_stack *s, bg_merkle_alg alg)
{
    s->alg = alg;
    s->top = 0;
}

void
bg_merkle_stack_push(bg_merkle_stack *s, const uint8_t h[HB], unsigned height)
{
    memcpy(s->h[s->top], h, HB);
    s->height[s->top++] = height;
    while (s->top >= 2 && s->height[s->top - 1] == s->height[s->top - 2]) {
        bg_merkle_node(s->alg, s->h[s->top - 2], s->h[s->top - 1], s->h[s->top - 2]);
        s->height[s->top - 2]++;
        s->top--;
    }
}

void
bg_merkle_stack_root(const bg_merkle_stack *s, const uint8_t *tail, uint8_t root[HB])
{
    uint8_t h[HB];
    size_t k = s->top;
    if (k == 0 && tail == NULL) {
        bg_merkle_empty(s->alg, root);
        return;
    }
    memcpy(h, tail != NULL ? tail : s->h[--k], HB);
    while (k-- > 0)
        bg_merkle_node(s->alg, s->h[k], h, h);
    memcpy(root, h, HB);
}

void
bg_merkle_mth(bg_merkle_alg alg, bg_merkle_lookup lookup, const void *ctx, uint64_t lo, uint64_t hi,
              uint8_t out[HB])
{
    if (lookup(ctx, lo, hi, out))
        return;
    uint8_t l[HB], r[HB];
    uint64_t k = bg_merkle_split(hi - lo);
    bg_merkle_mth(alg, lookup, ctx, lo, lo + k, l);
    bg_merkle_mth(alg, lookup, ctx, lo + k, hi, r);
    bg_merkle_node(alg, l, r, out);
}

/* RFC 9162 2.1.3.1 PATH(m, D[lo:hi]), appended deepest first. */
static void
path_at(bg_merkle_alg alg, bg_merkle_lookup lookup, const void *ctx, uint64_t m, uint64_t lo,
        uint64_t hi, uint8_t *path, size_t *len)
{
    if (hi - lo <= 1)
        return;
    uint64_t k = bg_merkle_split(hi - lo);
    if (m < lo + k) {
        path_at(alg, lookup, ctx, m, lo, lo + k, path, len);
        bg_merkle_mth(alg, lookup, ctx, lo + k, hi, path + HB * (*len)++);
    } else {
        path_at(alg, lookup, ctx, m, lo + k, hi, path, len);
        bg_merkle_mth(alg, lookup, ctx, lo, lo + k, path + HB * (*len)++);
    }
}

size_t
bg_merkle_path(bg_merkle_alg alg, bg_merkle_lookup lookup, const void *ctx, uint64_t m, uint64_t n,
               uint8_t *path)
{
    size_t len = 0;
    path_at(alg, lookup, ctx, m, 0, n, path, &len);
    return len;
}

/* The walk of RFC 9162 2.1.3.2; returns a BG_MERKLE_PROOF_ value. */
static int
inclusion_walk(bg_merkle_alg alg, uint64_t index, uint64_t size, const uint8_t leaf[HB],
               const uint8_t *path, size_t path_len, const uint8_t root[HB], size_t *used)
{
    /* fn is our node's place in its level, sn the last node's. */
    uint64_t fn = index, sn = size - 1;
    uint8_t r[HB];
    memcpy(r, leaf, HB);
    for (size_t i = 0; i < path_len; i++) {
        const uint8_t *p = path + HB * i;
        if (sn == 0) {
            *used = i;
            return BG_MERKLE_PROOF_TOO_LONG;
        }
        if ((fn & 1) || fn == sn) {
            bg_merkle_node(alg, p, r, r);
            /* fn is the rightmost node of its level: skip the levels where it has no
             * sibling. */
            while (!(fn & 1) && fn != 0) {
                fn >>= 1;
                sn >>= 1;
            }
        } else {
            bg_merkle_node(alg, r, p, r);
        }
        fn >>= 1;
        sn >>= 1;
    }
    *used = path_len;
    if (sn != 0)
        return BG_MERKLE_PROOF_TOO_SHORT;
    if (sodium_memcmp(r, root, HB) != 0)
        return BG_MERKLE_PROOF_WRONG_ROOT;
    return BG_MERKLE_PROOF_OK;
}

int
bg_merkle_verify_inclusion(bg_merkle_alg alg, uint64_t index, uint64_t size, const uint8_t leaf[HB],
                           const uint8_t *path, size_t path_len, const uint8_t root[HB], int *why,
                           size_t *used)
{
    size_t u = 0;
    int w = index < size ? inclusion_walk(alg, index, size, leaf, path, path_len, root, &u)
                         : BG_MERKLE_PROOF_TOO_LONG;
    if (why != NULL)
        *why = w;
    if (used != NULL)
        *used = u;
    return w == BG_MERKLE_PROOF_OK ? BG_OK : BG_ECRYPTO;
}
