/*
 * audit_hash.c - the log's RFC 6962 hashes (SHA-256 over common/merkle.h) and the
 * RFC 9162 proof verifiers: inclusion on the shared algebra, consistency (the log's
 * own) here.
 *
 * The verifiers take nothing but sizes and hashes: they are what a peer or an
 * outside auditor runs, so they must not trust anything the log says.
 */
#include <inttypes.h>
#include <string.h>

#include <sodium.h>

#include "common/merkle.h"
#include "gateway/audit/audit.h"

_Static_assert(BG_AUDIT_HASH_LEN == BG_MERKLE_HASHBYTES, "one hash size");

void
bg_audit_hash_leaf(const uint8_t *leaf, size_t len, bg_audit_hash out)
{
    bg_merkle_leaf(BG_MERKLE_SHA256, leaf, len, NULL, 0, out);
}

void
bg_audit_hash_node(const bg_audit_hash left, const bg_audit_hash right, bg_audit_hash out)
{
    bg_merkle_node(BG_MERKLE_SHA256, left, right, out);
}

void
bg_audit_hash_empty(bg_audit_hash out)
{
    bg_merkle_empty(BG_MERKLE_SHA256, out);
}

void
bg_audit_hash_hex(const bg_audit_hash h, char out[2 * BG_AUDIT_HASH_LEN + 1])
{
    sodium_bin2hex(out, 2 * BG_AUDIT_HASH_LEN + 1, h, BG_AUDIT_HASH_LEN);
}

int
bg_audit_verify_inclusion(uint64_t index, uint64_t size, const bg_audit_hash leaf_hash,
                          const bg_audit_hash *proof, size_t proof_len, const bg_audit_hash root,
                          bg_err *err)
{
    if (index >= size)
        return bg_err_set(err, BG_ECRYPTO,
                          "inclusion proof: leaf %" PRIu64 " is outside a tree of size %" PRIu64,
                          index, size);
    if (proof_len > BG_AUDIT_PROOF_MAX)
        return bg_err_set(err, BG_ECRYPTO, "inclusion proof: %zu hashes is too many", proof_len);
    int why;
    if (bg_merkle_verify_inclusion(BG_MERKLE_SHA256, index, size, leaf_hash, (const uint8_t *)proof,
                                   proof_len, root, &why, NULL) == BG_OK)
        return BG_OK;
    if (why == BG_MERKLE_PROOF_TOO_LONG)
        return bg_err_set(err, BG_ECRYPTO, "inclusion proof: %zu hashes is too long", proof_len);
    if (why == BG_MERKLE_PROOF_TOO_SHORT)
        return bg_err_set(err, BG_ECRYPTO, "inclusion proof: %zu hashes is too short", proof_len);
    return bg_err_set(err, BG_ECRYPTO,
                      "inclusion proof: leaf %" PRIu64 " does not lead to the root of the "
                      "tree of size %" PRIu64,
                      index, size);
}

int
bg_audit_verify_consistency(uint64_t old_size, uint64_t new_size, const bg_audit_hash old_root,
                            const bg_audit_hash new_root, const bg_audit_hash *proof,
                            size_t proof_len, bg_err *err)
{
    if (old_size > new_size)
        return bg_err_set(err, BG_ECRYPTO,
                          "consistency proof: the tree shrank from %" PRIu64 " to %" PRIu64,
                          old_size, new_size);
    if (proof_len > BG_AUDIT_PROOF_MAX)
        return bg_err_set(err, BG_ECRYPTO, "consistency proof: %zu hashes is too many", proof_len);
    if (old_size == new_size) {
        if (proof_len != 0)
            return bg_err_set(err, BG_ECRYPTO,
                              "consistency proof: must be empty between equal sizes");
        if (sodium_memcmp(old_root, new_root, BG_AUDIT_HASH_LEN) != 0)
            return bg_err_set(err, BG_ECRYPTO,
                              "consistency: two different roots for the same size %" PRIu64,
                              old_size);
        return BG_OK;
    }
    if (old_size == 0) {
        /* Every tree extends the empty one; RFC 9162 defines no proof for it. */
        if (proof_len != 0)
            return bg_err_set(err, BG_ECRYPTO,
                              "consistency proof: must be empty from the empty tree");
        return BG_OK;
    }
    if (proof_len == 0)
        return bg_err_set(err, BG_ECRYPTO, "consistency proof: empty");
    /* When old_size is a power of two the old root is a node of the new tree
     * and the proof leaves it out: put it back in front. */
    bg_audit_hash first;
    size_t start = 0;
    if ((old_size & (old_size - 1)) == 0) {
        memcpy(first, old_root, BG_AUDIT_HASH_LEN);
    } else {
        memcpy(first, proof[0], BG_AUDIT_HASH_LEN);
        start = 1;
    }
    uint64_t fn = old_size - 1, sn = new_size - 1;
    while (fn & 1) {
        fn >>= 1;
        sn >>= 1;
    }
    bg_audit_hash fr, sr;
    memcpy(fr, first, BG_AUDIT_HASH_LEN);
    memcpy(sr, first, BG_AUDIT_HASH_LEN);
    for (size_t i = start; i < proof_len; i++) {
        if (sn == 0)
            return bg_err_set(err, BG_ECRYPTO, "consistency proof: %zu hashes is too long",
                              proof_len);
        if ((fn & 1) || fn == sn) {
            bg_merkle_node(BG_MERKLE_SHA256, proof[i], fr, fr);
            bg_merkle_node(BG_MERKLE_SHA256, proof[i], sr, sr);
            while (!(fn & 1) && fn != 0) {
                fn >>= 1;
                sn >>= 1;
            }
        } else {
            bg_merkle_node(BG_MERKLE_SHA256, sr, proof[i], sr);
        }
        fn >>= 1;
        sn >>= 1;
    }
    if (sn != 0)
        return bg_err_set(err, BG_ECRYPTO, "consistency proof: %zu hashes is too short", proof_len);
    if (sodium_memcmp(fr, old_root, BG_AUDIT_HASH_LEN) != 0)
        return bg_err_set(err, BG_ECRYPTO,
                          "consistency proof: does not lead to the old root (size %" PRIu64 ")",
                          old_size);
    if (sodium_memcmp(sr, new_root, BG_AUDIT_HASH_LEN) != 0)
        return bg_err_set(err, BG_ECRYPTO,
                          "consistency proof: does not lead to the new root (size %" PRIu64 ")",
                          new_size);
    return BG_OK;
}
