/*
 * merkle.h - RFC 6962 Merkle tree algebra (RFC 9162 section 2.1) over 32-byte hashes,
 * the one shared by the evidence log (SHA-256) and list snapshots (BLAKE2b-256):
 *   leaf = H(0x00 || data), node = H(0x01 || left || right), empty tree = H(""),
 *   and a tree of n > 1 leaves splits at the largest power of two below n.
 * Here: those hashes; a running root over leaves pushed in order (O(log n) memory);
 * MTH and audit paths (PATH) over whatever subtree hashes the caller keeps; the
 * inclusion-proof verifier. Hashes only: nothing here allocates, reads or trusts a log.
 * Consistency proofs are the evidence log's alone and live there, on these primitives.
 */
#ifndef BG_MERKLE_H
#define BG_MERKLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define BG_MERKLE_HASHBYTES 32U
#define BG_MERKLE_DEPTH_MAX 64U /* a tree of up to 2^64 leaves */

typedef enum bg_merkle_alg {
    BG_MERKLE_SHA256,  /* the evidence log */
    BG_MERKLE_BLAKE2B, /* list snapshots: BLAKE2b-256, unkeyed */
} bg_merkle_alg;

/* leaf = H(0x00 || a || b); b may be NULL (blen 0): data in two parts saves a copy. */
void bg_merkle_leaf(bg_merkle_alg alg, const uint8_t *a, size_t alen, const uint8_t *b, size_t blen,
                    uint8_t out[BG_MERKLE_HASHBYTES]);
/* out may alias left or right. */
void bg_merkle_node(bg_merkle_alg alg, const uint8_t left[BG_MERKLE_HASHBYTES],
                    const uint8_t right[BG_MERKLE_HASHBYTES], uint8_t out[BG_MERKLE_HASHBYTES]);
void bg_merkle_empty(bg_merkle_alg alg, uint8_t out[BG_MERKLE_HASHBYTES]);

/* The largest power of two strictly below n (n >= 2): where the tree of n leaves splits. */
uint64_t bg_merkle_split(uint64_t n);

/*
 * The root of leaves (or perfect subtrees) pushed left to right: a push merges equal
 * heights on the stack, the root folds the stack from the right, which is the RFC's split
 * at the largest power of two. Heights must not grow along the pushes.
 */
typedef struct bg_merkle_stack {
    bg_merkle_alg alg;
    unsigned top;
    unsigned height[BG_MERKLE_DEPTH_MAX];
    uint8_t h[BG_MERKLE_DEPTH_MAX][BG_MERKLE_HASHBYTES];
} bg_merkle_stack;

void bg_merkle_stack_init(bg_merkle_stack *s, bg_merkle_alg alg);
/* Pushes the hash of a perfect subtree of 2^height leaves (a leaf hash: height 0). */
void bg_merkle_stack_push(bg_merkle_stack *s, const uint8_t h[BG_MERKLE_HASHBYTES],
                          unsigned height);
/* The root of everything pushed, then of tail (a last, smaller subtree's root) if not
 * NULL; the empty tree's hash if both are empty. */
void bg_merkle_stack_root(const bg_merkle_stack *s, const uint8_t *tail,
                          uint8_t root[BG_MERKLE_HASHBYTES]);

/*
 * What a caller keeps: true with out = MTH(D[lo:hi]) if it has that subtree's hash at
 * hand (or computes it cheaply), false to have it split. Every single leaf (hi = lo + 1)
 * must be answered.
 */
typedef bool (*bg_merkle_lookup)(const void *ctx, uint64_t lo, uint64_t hi,
                                 uint8_t out[BG_MERKLE_HASHBYTES]);

/* MTH(D[lo:hi]) (hi > lo), from lookup's hashes and nodes above them. */
void bg_merkle_mth(bg_merkle_alg alg, bg_merkle_lookup lookup, const void *ctx, uint64_t lo,
                   uint64_t hi, uint8_t out[BG_MERKLE_HASHBYTES]);

/* PATH(m, D[0:n]) (m < n) into path (32 bytes each, room for the tree's depth), the
 * deepest hash first; returns how many. */
size_t bg_merkle_path(bg_merkle_alg alg, bg_merkle_lookup lookup, const void *ctx, uint64_t m,
                      uint64_t n, uint8_t *path);

/* Why an inclusion proof failed. */
enum {
    BG_MERKLE_PROOF_OK = 0,
    BG_MERKLE_PROOF_TOO_LONG,   /* more hashes than the path of (index, size) has */
    BG_MERKLE_PROOF_TOO_SHORT,  /* fewer */
    BG_MERKLE_PROOF_WRONG_ROOT, /* the right length, another root */
};

/*
 * RFC 9162 2.1.3.2: BG_OK iff path (path_len hashes of 32 bytes) leads the leaf hash at
 * index of a tree of size leaves to root, else BG_ECRYPTO with *why (if not NULL) a
 * BG_MERKLE_PROOF_ value and *used (if not NULL) the hashes taken before the tree ran
 * out. The root is compared in constant time. index >= size fails (TOO_LONG, 0 used):
 * callers refuse it first with their own words, and bound path_len.
 */
int bg_merkle_verify_inclusion(bg_merkle_alg alg, uint64_t index, uint64_t size,
                               const uint8_t leaf[BG_MERKLE_HASHBYTES], const uint8_t *path,
                               size_t path_len, const uint8_t root[BG_MERKLE_HASHBYTES], int *why,
                               size_t *used);

#endif
