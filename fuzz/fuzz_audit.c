/*
 * fuzz_audit.c - the evidence log's decoders (gateway/audit/audit.h), as
 * gateways read their own files and their peers' heads and cosignatures.
 * The first byte picks the mode:
 *   0 AuditLeaf        decode; what decodes is canonical (encodes to the same bytes)
 *   1 SignedTreeHead   decode, canonical, signature check with a fixed key
 *   2 SignedCosignature decode, canonical, signature check
 *   3 proofs: u64 index, u64 size, leaf hash, root, then hashes: inclusion and
 *     consistency verification (hashes only, what peers check)
 *   4 a log directory: u32 length + leaves.log, u32 length + heads.log, the rest
 *     witness.log; opened read-only (`baygate audit`), then read-write (the
 *     daemon's start, which repairs torn tails), and walked: every leaf read
 *     back and proved against the root, every head, the witness store.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "certs/pki.h"
#include "common/err.h"
#include "fuzz/fuzz.h"
#include "gateway/audit/audit.h"

#define CITY "440300"

static EVP_PKEY *key;
static char dir[PATH_MAX];

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    bg_err err = {0};
    bg_fuzz_assert(bg_pki_key_generate(&key, &err) == BG_OK);
    bg_fuzz_path(dir, sizeof dir, "audit");
    bg_fuzz_assert(mkdir(dir, 0700) == 0);
    return 0;
}

static void
leaf(const uint8_t *p, size_t n)
{
    bg_audit_event ev;
    bg_err err = {0};
    if (bg_audit_leaf_decode(p, n, &ev, &err) != BG_OK)
        return;
    (void)bg_audit_kind_name(ev.kind);
    uint8_t out[BG_AUDIT_LEAF_MAX];
    size_t len = 0;
    bg_fuzz_assert(bg_audit_leaf_encode(&ev, ev.city, out, &len, &err) == BG_OK);
    bg_fuzz_assert(len == n && memcmp(out, p, n) == 0);
}

static void
head(const uint8_t *p, size_t n)
{
    bg_audit_head h;
    bg_err err = {0};
    if (bg_audit_head_decode(p, n, &h, &err) != BG_OK)
        return;
    uint8_t out[BG_AUDIT_SIGNED_HEAD_MAX];
    size_t len = 0;
    bg_fuzz_assert(bg_audit_head_encode(&h, out, &len, &err) == BG_OK);
    bg_fuzz_assert(len == n && memcmp(out, p, n) == 0);
    (void)bg_audit_head_verify(&h, key, NULL, &err);
}

static void
cosig(const uint8_t *p, size_t n)
{
    bg_audit_cosig c;
    bg_err err = {0};
    if (bg_audit_cosig_decode(p, n, &c, &err) != BG_OK)
        return;
    uint8_t out[BG_AUDIT_SIGNED_COSIG_MAX];
    size_t len = 0;
    bg_fuzz_assert(bg_audit_cosig_encode(&c, out, &len, &err) == BG_OK);
    bg_fuzz_assert(len == n && memcmp(out, p, n) == 0);
    (void)bg_audit_cosig_verify(&c, key, NULL, &err);
}

static void
proofs(bg_fuzz_in *in)
{
    uint64_t index = bg_fuzz_u64(in), size = bg_fuzz_u64(in);
    bg_audit_hash leaf_hash = {0}, root = {0};
    size_t got = 0;
    memcpy(leaf_hash, bg_fuzz_bytes(in, BG_AUDIT_HASH_LEN, &got), got);
    memcpy(root, bg_fuzz_bytes(in, BG_AUDIT_HASH_LEN, &got), got);
    size_t np = in->left / BG_AUDIT_HASH_LEN;
    bg_audit_hash *proof = malloc((np ? np : 1) * sizeof *proof);
    bg_fuzz_assert(proof != NULL);
    memcpy(proof, in->p, np * BG_AUDIT_HASH_LEN);
    bg_err err = {0};
    (void)bg_audit_verify_inclusion(index, size, leaf_hash, proof, np, root, &err);
    (void)bg_audit_verify_consistency(index, size, leaf_hash, root, proof, np, &err);
    free(proof);
}

static void
walk(bg_audit_log *log)
{
    bg_err err = {0};
    uint64_t size = bg_audit_size(log);
    bg_audit_hash root;
    bg_fuzz_assert(bg_audit_root(log, size, root, &err) == BG_OK);
    for (uint64_t i = 0; i < size && i < 64; i++) {
        uint8_t buf[BG_AUDIT_LEAF_MAX];
        size_t len = 0;
        bg_audit_event ev;
        bg_audit_hash lh, proof[BG_AUDIT_PROOF_MAX];
        size_t plen = 0;
        (void)bg_audit_leaf_read(log, i, buf, &len, &ev, &err);
        bg_fuzz_assert(bg_audit_leaf_hash(log, i, lh, &err) == BG_OK);
        bg_fuzz_assert(bg_audit_inclusion_proof(log, i, size, proof, &plen, &err) == BG_OK);
        bg_fuzz_assert(bg_audit_verify_inclusion(i, size, lh, proof, plen, root, &err) == BG_OK);
        bg_fuzz_assert(bg_audit_consistency_proof(log, i, size, proof, &plen, &err) == BG_OK);
    }
    size_t nh = bg_audit_head_count(log);
    for (size_t i = 0; i < nh; i++) {
        bg_audit_head h;
        bg_fuzz_assert(bg_audit_head_get(log, i, &h, &err) == BG_OK);
    }
}

static void
write_part(bg_fuzz_in *in, const char *name, size_t len)
{
    char path[PATH_MAX];
    size_t got = 0;
    const uint8_t *p = bg_fuzz_bytes(in, len, &got);
    int n = snprintf(path, sizeof path, "%s/%s", dir, name);
    bg_fuzz_assert(n > 0 && (size_t)n < sizeof path);
    bg_fuzz_assert(bg_fuzz_write_file(path, p, got) == 0);
}

static void
files(bg_fuzz_in *in)
{
    write_part(in, "leaves.log", bg_fuzz_u32(in));
    write_part(in, "heads.log", bg_fuzz_u32(in));
    write_part(in, "witness.log", in->left);
    bg_err err = {0};
    bg_audit_open_report rep;
    for (unsigned flags = BG_AUDIT_READ_ONLY;; flags = 0) {
        bg_audit_log *log = NULL;
        if (bg_audit_open(&log, dir, CITY, flags, &rep, &err) == BG_OK) {
            walk(log);
            bg_audit_close(log);
        }
        bg_audit_witness *w = NULL;
        if (bg_audit_witness_open(&w, dir, CITY, flags, &rep, &err) == BG_OK) {
            size_t np = bg_audit_witness_peer_count(w);
            for (size_t i = 0; i < np; i++) {
                bg_audit_peer_info pi;
                bg_fuzz_assert(bg_audit_witness_peer(w, i, &pi, &err) == BG_OK);
            }
            size_t nr = bg_audit_witness_received_count(w);
            for (size_t i = 0; i < nr; i++) {
                bg_audit_cosig c;
                bg_fuzz_assert(bg_audit_witness_received(w, i, &c, &err) == BG_OK);
            }
            size_t nc = bg_audit_witness_conflict_count(w);
            for (size_t i = 0; i < nc; i++) {
                bg_audit_head a, b;
                char reason[BG_AUDIT_REASON_MAX + 1];
                bg_fuzz_assert(bg_audit_witness_conflict(w, i, &a, &b, reason, &err) == BG_OK);
            }
            bg_audit_witness_close(w);
        }
        if (flags == 0)
            break;
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    bg_fuzz_in in = {data + 1, size - 1};
    switch (data[0] % 5) {
    case 0:
        leaf(in.p, in.left);
        break;
    case 1:
        head(in.p, in.left);
        break;
    case 2:
        cosig(in.p, in.left);
        break;
    case 3:
        proofs(&in);
        break;
    default:
        files(&in);
        break;
    }
    return 0;
}

/* Seeds from a real log: events appended, a head signed, a peer witnessed. */

static int
file_bytes(const char *name, uint8_t **out, size_t *len)
{
    char path[PATH_MAX];
    int n = snprintf(path, sizeof path, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= sizeof path)
        return -1;
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return -1;
    *out = malloc(64 * 1024);
    *len = *out ? fread(*out, 1, 64 * 1024, f) : 0;
    fclose(f);
    return *out ? 0 : -1;
}

static void
put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

int
bg_fuzz_make_seeds(const char *seeds)
{
    bg_err err = {0};
    bg_audit_log *log = NULL;
    bg_audit_witness *w = NULL;
    bg_audit_head h, peer;
    bg_audit_cosig c;
    bg_audit_verdict v;
    int rc = bg_audit_open(&log, dir, CITY, BG_AUDIT_CREATE, NULL, &err);
    bg_audit_event ev = {.kind = BG_AUDIT_REQUEST_RECEIVED, .time_ms = 1767225600000};
    snprintf(ev.peer, sizeof ev.peer, "440100");
    snprintf(ev.purpose, sizeof ev.purpose, "supervision");
    snprintf(ev.list, sizeof ev.list, "serious-dishonesty");
    ev.has_request_digest = true;
    ev.items_asked = 12;
    for (int i = 0; i < 5 && rc == BG_OK; i++) {
        ev.request_id[0] = (uint8_t)i;
        ev.kind = i % 2 ? BG_AUDIT_REQUEST_ANSWERED : BG_AUDIT_REQUEST_RECEIVED;
        rc = bg_audit_append(log, &ev, NULL, &err);
    }
    if (rc == BG_OK)
        rc = bg_audit_sign_head(log, key, ev.time_ms + 1000, &h, &err);
    if (rc == BG_OK)
        rc = bg_audit_witness_open(&w, dir, CITY, 0, NULL, &err);
    bg_audit_hash root = {1};
    if (rc == BG_OK)
        rc = bg_audit_head_make(key, "440100", 3, root, ev.time_ms, &peer, &err);
    if (rc == BG_OK)
        rc = bg_audit_witness_check(w, key, "440100", &peer, NULL, 0, ev.time_ms + 5, &c, &v, &err);
    uint8_t buf[BG_AUDIT_RECORD_MAX + 1];
    size_t len = 0;
    if (rc == BG_OK) {
        buf[0] = 0;
        rc = bg_audit_leaf_read(log, 1, buf + 1, &len, NULL, &err);
        if (rc == BG_OK)
            rc = bg_fuzz_write_seed(seeds, "leaf", buf, len + 1) ? BG_EIO : BG_OK;
    }
    if (rc == BG_OK && bg_audit_head_encode(&h, buf + 1, &len, &err) == BG_OK) {
        buf[0] = 1;
        rc = bg_fuzz_write_seed(seeds, "head", buf, len + 1) ? BG_EIO : BG_OK;
    }
    if (rc == BG_OK && bg_audit_cosig_encode(&c, buf + 1, &len, &err) == BG_OK) {
        buf[0] = 2;
        rc = bg_fuzz_write_seed(seeds, "cosig", buf, len + 1) ? BG_EIO : BG_OK;
    }
    if (rc == BG_OK) {
        /* An inclusion proof of leaf 2 in the tree of 5. */
        bg_audit_hash proof[BG_AUDIT_PROOF_MAX], lh, r5;
        size_t plen = 0;
        rc = bg_audit_inclusion_proof(log, 2, 5, proof, &plen, &err);
        if (rc == BG_OK && (rc = bg_audit_leaf_hash(log, 2, lh, &err)) == BG_OK &&
            (rc = bg_audit_root(log, 5, r5, &err)) == BG_OK) {
            uint8_t p[1 + 16 + 64 + BG_AUDIT_PROOF_MAX * 32] = {3, 2, 0, 0, 0, 0, 0, 0, 0, 5};
            memcpy(p + 17, lh, 32);
            memcpy(p + 49, r5, 32);
            memcpy(p + 81, proof, plen * 32);
            rc = bg_fuzz_write_seed(seeds, "proof", p, 81 + plen * 32) ? BG_EIO : BG_OK;
        }
    }
    bg_audit_witness_close(w);
    bg_audit_close(log);
    uint8_t *lv = NULL, *hd = NULL, *wt = NULL;
    size_t lvn = 0, hdn = 0, wtn = 0;
    if (rc == BG_OK && file_bytes("leaves.log", &lv, &lvn) == 0 &&
        file_bytes("heads.log", &hd, &hdn) == 0 && file_bytes("witness.log", &wt, &wtn) == 0) {
        uint8_t *all = malloc(1 + 8 + lvn + hdn + wtn);
        if (all != NULL) {
            all[0] = 4;
            put_u32(all + 1, (uint32_t)lvn);
            memcpy(all + 5, lv, lvn);
            put_u32(all + 5 + lvn, (uint32_t)hdn);
            memcpy(all + 9 + lvn, hd, hdn);
            memcpy(all + 9 + lvn + hdn, wt, wtn);
            rc = bg_fuzz_write_seed(seeds, "log", all, 9 + lvn + hdn + wtn) ? BG_EIO : BG_OK;
            /* The same with a torn last leaf record. */
            if (rc == BG_OK && lvn > 40) {
                put_u32(all + 1, (uint32_t)(lvn - 20));
                memmove(all + 5 + lvn - 20, all + 5 + lvn, 4 + hdn + wtn);
                rc = bg_fuzz_write_seed(seeds, "log-torn", all, 9 + lvn - 20 + hdn + wtn) ? BG_EIO
                                                                                          : BG_OK;
            }
            free(all);
        }
    }
    free(lv);
    free(hd);
    free(wt);
    if (rc != BG_OK)
        fprintf(stderr, "fuzz: audit seeds: %s\n", err.msg);
    return rc == BG_OK ? 0 : -1;
}
