/*
 * test_audit.c - the witnessed evidence log (gateway/audit): RFC 6962 hashing,
 * proofs against an independent naive implementation, crash safety of the
 * leaves file, signed tree heads, and the witness catching forks.
 *
 * The naive reference below hashes with OpenSSL (the module uses libsodium)
 * and follows RFC 9162's recursive definitions literally, with no stored
 * subtrees, so it shares nothing with the code under test but the RFC.
 * main() makes one scratch directory under BG_TEST_TMPDIR; every test works in
 * its own subdirectory of it.
 */
#define _GNU_SOURCE /* nftw's FTW_DEPTH/FTW_PHYS */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/sha.h>

#include "certs/pki.h"
#include "certs/sig.h"
#include "certs/trust.h"
#include "gateway/audit/audit.h"
#include "gateway/audit/audit_int.h" /* bg_audit_datasync, to simulate a failing disk */
#include "peers/roster.h"
#include "peers/roster_ini.h"

static char scratch[PATH_MAX];
static EVP_PKEY *key_a, *key_b; /* the origin city's key, and someone else's */
static EVP_PKEY *key_w;         /* the witness city's key */

/* --- helpers --- */

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

/* A fresh directory scratch/name (removed first if a loop test reuses it). */
static const char *
fresh_dir(const char *name)
{
    static char bufs[4][PATH_MAX];
    static unsigned next;
    char *b = bufs[next++ % 4];
    int n = snprintf(b, PATH_MAX, "%s/%s", scratch, name);
    ck_assert(n > 0 && n < PATH_MAX);
    nftw(b, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    ck_assert_int_eq(mkdir(b, 0700), 0);
    return b;
}

static const char *
file_in(const char *dir, const char *name)
{
    static char bufs[4][PATH_MAX];
    static unsigned next;
    char *b = bufs[next++ % 4];
    int n = snprintf(b, PATH_MAX, "%s/%s", dir, name);
    ck_assert(n > 0 && n < PATH_MAX);
    return b;
}

static uint8_t *
slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(b);
    ck_assert_uint_eq(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

static void
spit(const char *path, const uint8_t *b, size_t len)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(b, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
}

static off_t
file_size(const char *path)
{
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    return st.st_size;
}

/* Event number i; variant changes its reason (a rewritten history). */
static bg_audit_event
event(uint64_t i, int variant)
{
    bg_audit_event ev;
    memset(&ev, 0, sizeof ev);
    ev.kind = (bg_audit_kind)(1 + i % 6);
    ev.time_ms = 1760000000000LL + (int64_t)i * 1000;
    snprintf(ev.peer, sizeof ev.peer, "%s", i % 2 ? "440100" : "440600");
    for (int k = 0; k < BG_AUDIT_REQUEST_ID_LEN; k++)
        ev.request_id[k] = (uint8_t)(i * 31 + (uint64_t)k);
    ev.has_request_digest = true;
    memset(ev.request_digest, (int)(i & 0xff), sizeof ev.request_digest);
    ev.has_answer_digest = i % 3 != 0;
    if (ev.has_answer_digest)
        memset(ev.answer_digest, 0xa5, sizeof ev.answer_digest);
    snprintf(ev.purpose, sizeof ev.purpose, "%s", i % 2 ? "supervision" : "lending");
    if (i % 4 == 1) {
        ev.authorisation_ref_len = 32;
        memset(ev.authorisation_ref, 0x42, 32);
    }
    snprintf(ev.list, sizeof ev.list, "serious-dishonesty");
    ev.epoch = 7 + i / 10;
    ev.items_asked = (uint32_t)(100 + i);
    ev.items_answered = (uint32_t)(i % 100);
    ev.outcome = ev.kind == BG_AUDIT_REQUEST_REFUSED ? 103 : 0;
    snprintf(ev.reason, sizeof ev.reason, "%s event %" PRIu64 "%s",
             ev.outcome ? "quota exceeded" : "ok", i, variant ? " (rewritten)" : "");
    return ev;
}

/* Field by field (a struct compare would see padding). */
static bool
head_eq(const bg_audit_head *a, const bg_audit_head *b)
{
    return strcmp(a->origin, b->origin) == 0 && a->size == b->size &&
           memcmp(a->root, b->root, 32) == 0 && a->timestamp_ms == b->timestamp_ms &&
           a->head_len == b->head_len && memcmp(a->head, b->head, a->head_len) == 0 &&
           a->sig_len == b->sig_len && memcmp(a->sig, b->sig, a->sig_len) == 0;
}

static bool
cosig_eq(const bg_audit_cosig *a, const bg_audit_cosig *b)
{
    return strcmp(a->witness, b->witness) == 0 && head_eq(&a->head, &b->head) &&
           a->cosigned_at_ms == b->cosigned_at_ms && a->body_len == b->body_len &&
           memcmp(a->body, b->body, a->body_len) == 0 && a->sig_len == b->sig_len &&
           memcmp(a->sig, b->sig, a->sig_len) == 0;
}

static bool
event_eq(const bg_audit_event *a, const bg_audit_event *b)
{
    return a->kind == b->kind && a->time_ms == b->time_ms && strcmp(a->city, b->city) == 0 &&
           strcmp(a->peer, b->peer) == 0 && a->direction == b->direction &&
           memcmp(a->request_id, b->request_id, sizeof a->request_id) == 0 &&
           a->has_request_digest == b->has_request_digest &&
           a->has_answer_digest == b->has_answer_digest &&
           memcmp(a->request_digest, b->request_digest, sizeof a->request_digest) == 0 &&
           memcmp(a->answer_digest, b->answer_digest, sizeof a->answer_digest) == 0 &&
           strcmp(a->purpose, b->purpose) == 0 &&
           a->authorisation_ref_len == b->authorisation_ref_len &&
           memcmp(a->authorisation_ref, b->authorisation_ref, a->authorisation_ref_len) == 0 &&
           strcmp(a->list, b->list) == 0 && a->epoch == b->epoch &&
           a->items_asked == b->items_asked && a->items_answered == b->items_answered &&
           a->outcome == b->outcome && strcmp(a->reason, b->reason) == 0;
}

static bg_audit_log *
open_log(const char *dir, unsigned flags, bg_audit_open_report *rep)
{
    bg_audit_log *log = NULL;
    bg_err err = {0};
    ck_assert_msg(bg_audit_open(&log, dir, "440300", flags, rep, &err) == BG_OK, "%s", err.msg);
    return log;
}

/* A log of n events in dir; variant_at >= 0 rewrites that one event. */
static bg_audit_log *
make_log(const char *dir, uint64_t n, int64_t variant_at)
{
    bg_audit_log *log = open_log(dir, BG_AUDIT_CREATE, NULL);
    bg_err err = {0};
    uint64_t i = 0;
    while (i < n) {
        /* Mix single appends and batches, as the daemon will. */
        size_t batch = (i % 5 == 0) ? 1 : (size_t)(n - i < 7 ? n - i : 7);
        bg_audit_event evs[7];
        for (size_t k = 0; k < batch; k++)
            evs[k] = event(i + k, (int64_t)(i + k) == variant_at);
        uint64_t first = 0;
        ck_assert_msg(bg_audit_append_batch(log, evs, batch, &first, &err) == BG_OK, "%s", err.msg);
        ck_assert_uint_eq(first, i);
        i += batch;
    }
    ck_assert_uint_eq(bg_audit_size(log), n);
    return log;
}

/* --- the naive reference (OpenSSL SHA-256, RFC 9162 definitions verbatim) --- */

typedef struct {
    uint8_t b[BG_AUDIT_LEAF_MAX];
    size_t len;
} leaf_bytes;

static void
ref_leaf(const uint8_t *d, size_t len, uint8_t out[32])
{
    uint8_t *buf = malloc(len + 1);
    ck_assert_ptr_nonnull(buf);
    buf[0] = 0x00;
    memcpy(buf + 1, d, len);
    SHA256(buf, len + 1, out);
    free(buf);
}

static void
ref_node(const uint8_t l[32], const uint8_t r[32], uint8_t out[32])
{
    uint8_t buf[65];
    buf[0] = 0x01;
    memcpy(buf + 1, l, 32);
    memcpy(buf + 33, r, 32);
    SHA256(buf, sizeof buf, out);
}

static uint64_t
ref_k(uint64_t n) /* largest power of two < n */
{
    uint64_t k = 1;
    while (k * 2 < n)
        k *= 2;
    return k;
}

static void
ref_mth(const leaf_bytes *d, uint64_t n, uint8_t out[32])
{
    if (n == 0) {
        SHA256((const uint8_t *)"", 0, out);
    } else if (n == 1) {
        ref_leaf(d[0].b, d[0].len, out);
    } else {
        uint64_t k = ref_k(n);
        uint8_t l[32], r[32];
        ref_mth(d, k, l);
        ref_mth(d + k, n - k, r);
        ref_node(l, r, out);
    }
}

static void
ref_path(uint64_t m, const leaf_bytes *d, uint64_t n, uint8_t (*out)[32], size_t *len)
{
    if (n <= 1)
        return;
    uint64_t k = ref_k(n);
    if (m < k) {
        ref_path(m, d, k, out, len);
        ref_mth(d + k, n - k, out[(*len)++]);
    } else {
        ref_path(m - k, d + k, n - k, out, len);
        ref_mth(d, k, out[(*len)++]);
    }
}

static void
ref_subproof(uint64_t m, const leaf_bytes *d, uint64_t n, bool b, uint8_t (*out)[32], size_t *len)
{
    if (m == n) {
        if (!b)
            ref_mth(d, n, out[(*len)++]);
        return;
    }
    uint64_t k = ref_k(n);
    if (m <= k) {
        ref_subproof(m, d, k, b, out, len);
        ref_mth(d + k, n - k, out[(*len)++]);
    } else {
        ref_subproof(m - k, d + k, n - k, false, out, len);
        ref_mth(d, k, out[(*len)++]);
    }
}

/* Every leaf's bytes as stored. */
static leaf_bytes *
read_leaves(bg_audit_log *log, uint64_t n)
{
    leaf_bytes *d = calloc(n ? n : 1, sizeof *d);
    ck_assert_ptr_nonnull(d);
    bg_err err = {0};
    for (uint64_t i = 0; i < n; i++)
        ck_assert_msg(bg_audit_leaf_read(log, i, d[i].b, &d[i].len, NULL, &err) == BG_OK, "%s",
                      err.msg);
    return d;
}

static void
hex2bin(const char *hex, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        ck_assert_int_eq(sscanf(hex + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
}

#define ck_assert_has(msg, part)                                                                   \
    ck_assert_msg(strstr((msg), (part)) != NULL, "message '%s' lacks '%s'", (msg), (part))

/* --- hashing --- */

/* The empty tree is SHA-256(""), and the module's leaf/node hashing gives the
 * published roots of the certificate-transparency reference tree (8 leaves)
 * at every size; the naive reference agrees, so it can be trusted below. */
START_TEST(hash_known_answers)
{
    static const char *leaves[8] = {"",
                                    "00",
                                    "10",
                                    "2021",
                                    "3031",
                                    "40414243",
                                    "5051525354555657",
                                    "606162636465666768696a6b6c6d6e6f"};
    static const char *roots[8] = {
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"};
    bg_audit_hash h;
    char hex[65];
    bg_audit_hash_empty(h);
    bg_audit_hash_hex(h, hex);
    ck_assert_str_eq(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");

    leaf_bytes d[8];
    bg_audit_hash lh[8];
    for (int i = 0; i < 8; i++) {
        d[i].len = strlen(leaves[i]) / 2;
        hex2bin(leaves[i], d[i].b, d[i].len);
        bg_audit_hash_leaf(d[i].b, d[i].len, lh[i]);
    }
    /* The module's primitives, composed by hand for each size. */
    for (int n = 1; n <= 8; n++) {
        bg_audit_hash want, got, ref;
        hex2bin(roots[n - 1], want, 32);
        /* Fold as RFC 6962 does: complete subtrees left to right, then the
         * rightmost partial ones, combined from the right. */
        bg_audit_hash stack[8];
        int sizes[8], sp = 0;
        for (int i = 0; i < n; i++) {
            memcpy(stack[sp], lh[i], 32);
            sizes[sp++] = 1;
            while (sp >= 2 && sizes[sp - 1] == sizes[sp - 2]) {
                bg_audit_hash_node(stack[sp - 2], stack[sp - 1], stack[sp - 2]);
                sizes[sp - 2] *= 2;
                sp--;
            }
        }
        memcpy(got, stack[sp - 1], 32);
        for (int i = sp - 2; i >= 0; i--)
            bg_audit_hash_node(stack[i], got, got);
        ck_assert_msg(memcmp(got, want, 32) == 0, "module root of size %d", n);
        ref_mth(d, (uint64_t)n, ref);
        ck_assert_msg(memcmp(ref, want, 32) == 0, "reference root of size %d", n);
    }
}
END_TEST

/* The log's root at every size equals the naive MTH over the stored leaf
 * bytes, the empty log's root is the empty hash, and leaf hashes are
 * H(0x00 || bytes as stored). */
START_TEST(log_roots_match_reference)
{
    const char *dir = fresh_dir("roots");
    bg_audit_log *log = make_log(dir, 70, -1);
    leaf_bytes *d = read_leaves(log, 70);
    bg_err err = {0};
    for (uint64_t n = 0; n <= 70; n++) {
        bg_audit_hash got, want;
        ck_assert_int_eq(bg_audit_root(log, n, got, &err), BG_OK);
        ref_mth(d, n, want);
        ck_assert_msg(memcmp(got, want, 32) == 0, "root at size %" PRIu64, n);
    }
    for (uint64_t i = 0; i < 70; i++) {
        bg_audit_hash got, want;
        ck_assert_int_eq(bg_audit_leaf_hash(log, i, got, &err), BG_OK);
        ref_leaf(d[i].b, d[i].len, want);
        ck_assert(memcmp(got, want, 32) == 0);
    }
    bg_audit_hash r;
    ck_assert_int_eq(bg_audit_root(log, 71, r, &err), BG_EINVAL);
    free(d);
    bg_audit_close(log);
}
END_TEST

/* --- proofs --- */

static bool
incl_ok(uint64_t m, uint64_t n, const bg_audit_hash leaf, const bg_audit_hash *p, size_t len,
        const bg_audit_hash root)
{
    return bg_audit_verify_inclusion(m, n, leaf, p, len, root, NULL) == BG_OK;
}

/* For every 0 <= m < n <= 64: the inclusion proof equals the naive PATH and
 * verifies; flipping a bit in any proof hash, the leaf hash or the root, a
 * wrong index, a wrong size (with that size's root), a shortened or
 * lengthened proof all fail. */
START_TEST(inclusion_proofs_every_size)
{
    const char *dir = fresh_dir("incl");
    bg_audit_log *log = make_log(dir, 64, -1);
    leaf_bytes *d = read_leaves(log, 64);
    bg_audit_hash roots[65], leafh[64];
    bg_err err = {0};
    for (uint64_t n = 0; n <= 64; n++)
        ck_assert_int_eq(bg_audit_root(log, n, roots[n], &err), BG_OK);
    for (uint64_t i = 0; i < 64; i++)
        ck_assert_int_eq(bg_audit_leaf_hash(log, i, leafh[i], &err), BG_OK);
    for (uint64_t n = 1; n <= 64; n++) {
        for (uint64_t m = 0; m < n; m++) {
            bg_audit_hash p[BG_AUDIT_PROOF_MAX + 1];
            uint8_t ref[BG_AUDIT_PROOF_MAX][32];
            size_t len = 0, rlen = 0;
            ck_assert_msg(bg_audit_inclusion_proof(log, m, n, p, &len, &err) == BG_OK, "%s",
                          err.msg);
            ref_path(m, d, n, ref, &rlen);
            ck_assert_uint_eq(len, rlen);
            ck_assert_msg(memcmp(p, ref, len * 32) == 0, "proof (%" PRIu64 ",%" PRIu64 ")", m, n);
            ck_assert_msg(bg_audit_verify_inclusion(m, n, leafh[m], p, len, roots[n], &err) ==
                              BG_OK,
                          "(%" PRIu64 ",%" PRIu64 "): %s", m, n, err.msg);
            for (size_t j = 0; j < len; j++) {
                unsigned bit = (unsigned)((m * 7 + n * 3 + j) % 256);
                p[j][bit / 8] ^= (uint8_t)(1u << (bit % 8));
                ck_assert(!incl_ok(m, n, leafh[m], p, len, roots[n]));
                p[j][bit / 8] ^= (uint8_t)(1u << (bit % 8));
            }
            bg_audit_hash bad;
            memcpy(bad, leafh[m], 32);
            bad[(m + n) % 32] ^= 0x10;
            ck_assert(!incl_ok(m, n, bad, p, len, roots[n]));
            memcpy(bad, roots[n], 32);
            bad[(m * n) % 32] ^= 0x01;
            ck_assert(!incl_ok(m, n, leafh[m], p, len, bad));
            for (uint64_t w = 0; w < n + 2; w++)
                if (w != m)
                    ck_assert_msg(!incl_ok(w, n, leafh[m], p, len, roots[n]),
                                  "leaf %" PRIu64 " proof passed as %" PRIu64, m, w);
            for (uint64_t s = 1; s <= 64; s++)
                if (s != n && m < s)
                    ck_assert_msg(!incl_ok(m, s, leafh[m], p, len, roots[s]),
                                  "(%" PRIu64 ",%" PRIu64 ") passed at size %" PRIu64, m, n, s);
            if (len > 0)
                ck_assert(!incl_ok(m, n, leafh[m], p, len - 1, roots[n]));
            memcpy(p[len], roots[0], 32);
            ck_assert(!incl_ok(m, n, leafh[m], p, len + 1, roots[n]));
        }
    }
    bg_audit_hash p[BG_AUDIT_PROOF_MAX];
    size_t len;
    ck_assert_int_eq(bg_audit_inclusion_proof(log, 5, 5, p, &len, &err), BG_EINVAL);
    ck_assert_int_eq(bg_audit_inclusion_proof(log, 0, 65, p, &len, &err), BG_EINVAL);
    free(d);
    bg_audit_close(log);
}
END_TEST

static bool
cons_ok(uint64_t m, uint64_t n, const bg_audit_hash a, const bg_audit_hash b,
        const bg_audit_hash *p, size_t len)
{
    return bg_audit_verify_consistency(m, n, a, b, p, len, NULL) == BG_OK;
}

/* For every 0 <= m <= n <= 64: the consistency proof equals the naive
 * SUBPROOF and verifies; any flipped bit, either root edited, a neighbouring
 * old or new size, a shortened or lengthened proof, and a shrinking tree fail. */
START_TEST(consistency_proofs_every_size)
{
    const char *dir = fresh_dir("cons");
    bg_audit_log *log = make_log(dir, 64, -1);
    leaf_bytes *d = read_leaves(log, 64);
    bg_audit_hash roots[65];
    bg_err err = {0};
    for (uint64_t n = 0; n <= 64; n++)
        ck_assert_int_eq(bg_audit_root(log, n, roots[n], &err), BG_OK);
    for (uint64_t n = 0; n <= 64; n++) {
        for (uint64_t m = 0; m <= n; m++) {
            bg_audit_hash p[BG_AUDIT_PROOF_MAX + 1];
            uint8_t ref[BG_AUDIT_PROOF_MAX][32];
            size_t len = 0, rlen = 0;
            ck_assert_int_eq(bg_audit_consistency_proof(log, m, n, p, &len, &err), BG_OK);
            if (m > 0 && m < n)
                ref_subproof(m, d, n, true, ref, &rlen);
            ck_assert_uint_eq(len, rlen);
            ck_assert_msg(memcmp(p, ref, len * 32) == 0, "proof %" PRIu64 "->%" PRIu64, m, n);
            ck_assert_msg(cons_ok(m, n, roots[m], roots[n], p, len),
                          "%" PRIu64 "->%" PRIu64 " does not verify", m, n);
            for (size_t j = 0; j < len; j++) {
                unsigned bit = (unsigned)((m * 5 + n * 11 + j) % 256);
                p[j][bit / 8] ^= (uint8_t)(1u << (bit % 8));
                ck_assert_msg(!cons_ok(m, n, roots[m], roots[n], p, len),
                              "%" PRIu64 "->%" PRIu64 " flipped hash %zu passed", m, n, j);
                p[j][bit / 8] ^= (uint8_t)(1u << (bit % 8));
            }
            /* Every tree extends the empty one, whatever its root: from
             * m = 0 there is nothing to edit. */
            if (m > 0) {
                bg_audit_hash bad;
                memcpy(bad, roots[m], 32);
                bad[n % 32] ^= 0x80;
                ck_assert(!cons_ok(m, n, bad, roots[n], p, len));
                memcpy(bad, roots[n], 32);
                bad[m % 32] ^= 0x04;
                ck_assert(!cons_ok(m, n, roots[m], bad, p, len));
            }
            /* Neighbouring sizes, with their true roots. */
            const int64_t dm[4] = {-1, 1, 0, 0}, dn[4] = {0, 0, -1, 1};
            for (int v = 0; v < 4; v++) {
                int64_t m2 = (int64_t)m + dm[v], n2 = (int64_t)n + dn[v];
                if (m2 < 0 || n2 < 0 || n2 > 64 || m2 > n2)
                    continue;
                /* An empty proof is right for m2 == 0 or m2 == n2. */
                if (len == 0 && (m2 == 0 || m2 == n2))
                    continue;
                ck_assert_msg(!cons_ok((uint64_t)m2, (uint64_t)n2, roots[m2], roots[n2], p, len),
                              "%" PRIu64 "->%" PRIu64 " passed as %" PRId64 "->%" PRId64, m, n, m2,
                              n2);
            }
            if (len > 0)
                ck_assert(!cons_ok(m, n, roots[m], roots[n], p, len - 1));
            memcpy(p[len], roots[1], 32);
            ck_assert(!cons_ok(m, n, roots[m], roots[n], p, len + 1));
            if (m < n && m > 0)
                ck_assert(!cons_ok(n, m, roots[n], roots[m], p, len));
        }
    }
    bg_audit_hash p[BG_AUDIT_PROOF_MAX];
    size_t len;
    ck_assert_int_eq(bg_audit_consistency_proof(log, 5, 4, p, &len, &err), BG_EINVAL);
    ck_assert_int_eq(bg_audit_consistency_proof(log, 5, 65, p, &len, &err), BG_EINVAL);
    free(d);
    bg_audit_close(log);
}
END_TEST

/* --- storage --- */

/* Closing and reopening (read-write and read-only) gives the same root at
 * every size and the same decoded events; a second read-write open of a
 * directory in use is refused, while a reader may open it. */
START_TEST(reopen_gives_identical_roots)
{
    const char *dir = fresh_dir("reopen");
    bg_audit_log *log = make_log(dir, 100, -1);
    bg_audit_hash before[101];
    bg_err err = {0};
    for (uint64_t n = 0; n <= 100; n++)
        ck_assert_int_eq(bg_audit_root(log, n, before[n], &err), BG_OK);
    bg_audit_log *second = NULL;
    ck_assert_int_eq(bg_audit_open(&second, dir, "440300", 0, NULL, &err), BG_EEXIST);
    bg_audit_log *reader = open_log(dir, BG_AUDIT_READ_ONLY, NULL);
    ck_assert_uint_eq(bg_audit_size(reader), 100);
    bg_audit_close(reader);
    bg_audit_close(log);

    for (int ro = 1; ro >= 0; ro--) { /* read-only first: read-write appends one at the end */
        bg_audit_open_report rep;
        log = open_log(dir, ro ? BG_AUDIT_READ_ONLY : 0, &rep);
        ck_assert_uint_eq(rep.leaves, 100);
        ck_assert_uint_eq(rep.dropped_bytes, 0);
        for (uint64_t n = 0; n <= 100; n++) {
            bg_audit_hash r;
            ck_assert_int_eq(bg_audit_root(log, n, r, &err), BG_OK);
            ck_assert_msg(memcmp(r, before[n], 32) == 0, "root %" PRIu64, n);
        }
        for (uint64_t i = 0; i < 100; i++) {
            bg_audit_event got, want = event(i, 0);
            ck_assert_int_eq(bg_audit_leaf_read(log, i, NULL, NULL, &got, &err), BG_OK);
            ck_assert_str_eq(got.city, "440300");
            ck_assert_int_eq(got.direction, i % 6 < 3 ? BG_AUDIT_OUTBOUND : BG_AUDIT_INBOUND);
            /* What the reader does not fill on append: copy it over, compare the rest. */
            memcpy(want.city, got.city, sizeof want.city);
            want.direction = got.direction;
            ck_assert_msg(event_eq(&got, &want), "event %" PRIu64 " reads back different", i);
        }
        bg_audit_event ev = event(0, 0);
        ck_assert_int_eq(bg_audit_append(log, &ev, NULL, &err), ro ? BG_EINVAL : BG_OK);
        bg_audit_close(log);
    }
}
END_TEST

/* Opening a log whose leaves.log ends at any byte inside its last record
 * (a crash mid-append) repairs it read-write to the 4 earlier leaves and
 * says how many bytes it dropped; read-only leaves the file alone and calls
 * the bytes pending; the next append then works. A bit flipped in the last
 * record (a bad checksum at the end) is repaired the same way. */
START_TEST(torn_tail_repaired_at_every_offset)
{
    const char *dir = fresh_dir("torn");
    bg_audit_log *log = make_log(dir, 4, -1);
    bg_audit_hash root4;
    bg_err err = {0};
    ck_assert_int_eq(bg_audit_root(log, 4, root4, &err), BG_OK);
    off_t s4 = file_size(file_in(dir, "leaves.log"));
    bg_audit_event ev = event(4, 0);
    ck_assert_int_eq(bg_audit_append(log, &ev, NULL, &err), BG_OK);
    bg_audit_close(log);
    size_t full_len;
    uint8_t *full = slurp(file_in(dir, "leaves.log"), &full_len);
    ck_assert_uint_gt(full_len, (size_t)s4);

    for (size_t t = (size_t)s4; t <= full_len; t++) {
        for (int flip = 0; flip < 2; flip++) {
            if (flip && t != full_len)
                continue;
            if (flip) /* a byte of the last record's checksum */
                full[full_len - 1 - (t % 7)] ^= 0x20;
            spit(file_in(dir, "leaves.log"), full, t);
            if (flip)
                full[full_len - 1 - (t % 7)] ^= 0x20;
            bool intact = t == full_len && !flip;
            uint64_t want_n = intact ? 5 : 4;
            uint64_t torn = intact ? 0 : t - (size_t)s4;

            bg_audit_open_report rep;
            log = open_log(dir, BG_AUDIT_READ_ONLY, &rep);
            ck_assert_uint_eq(bg_audit_size(log), want_n);
            ck_assert_uint_eq(rep.pending_bytes, torn);
            ck_assert_uint_eq(rep.dropped_bytes, 0);
            bg_audit_close(log);
            ck_assert_int_eq(file_size(file_in(dir, "leaves.log")), (off_t)t);

            log = open_log(dir, 0, &rep);
            ck_assert_uint_eq(bg_audit_size(log), want_n);
            ck_assert_uint_eq(rep.dropped_bytes, torn);
            ck_assert_uint_eq(rep.dropped_records, torn ? 1 : 0);
            if (torn)
                ck_assert_has(rep.detail, "torn tail");
            bg_audit_hash r;
            ck_assert_int_eq(bg_audit_root(log, 4, r, &err), BG_OK);
            ck_assert(memcmp(r, root4, 32) == 0);
            ck_assert_int_eq(file_size(file_in(dir, "leaves.log")), intact ? (off_t)full_len : s4);
            uint64_t idx;
            ck_assert_int_eq(bg_audit_append(log, &ev, &idx, &err), BG_OK);
            ck_assert_uint_eq(idx, want_n);
            bg_audit_close(log);
        }
    }
    free(full);
}
END_TEST

/* Damage in the middle (a flipped byte in record 2 of 6, or its length set to
 * 0) is refused read-write and read-only with the record's offset in the
 * message, and the file is left exactly as it was. */
START_TEST(middle_corruption_refused_with_offset)
{
    const char *dir = fresh_dir("middle");
    bg_audit_log *log = make_log(dir, 6, -1);
    bg_audit_close(log);
    size_t len;
    uint8_t *orig = slurp(file_in(dir, "leaves.log"), &len);
    /* Walk the framing to record 2's offset. */
    size_t off = 8;
    for (int i = 0; i < 2; i++) {
        uint32_t n = ((uint32_t)orig[off] << 24) | ((uint32_t)orig[off + 1] << 16) |
                     ((uint32_t)orig[off + 2] << 8) | orig[off + 3];
        off += 4 + n + 32;
    }
    char want[64];
    snprintf(want, sizeof want, "offset %zu", off);
    for (int how = 0; how < 3; how++) {
        uint8_t *bad = malloc(len);
        ck_assert_ptr_nonnull(bad);
        memcpy(bad, orig, len);
        if (how == 0)
            bad[off + 10] ^= 0x01; /* payload */
        else if (how == 1)
            memset(bad + off, 0, 4); /* length 0 */
        else
            bad[off + 3] ^= 0x02; /* another length: framing lost */
        spit(file_in(dir, "leaves.log"), bad, len);
        for (int ro = 0; ro < 2; ro++) {
            bg_audit_log *l = NULL;
            bg_err err = {0};
            ck_assert_int_eq(
                bg_audit_open(&l, dir, "440300", ro ? BG_AUDIT_READ_ONLY : 0, NULL, &err),
                BG_EPROTO);
            ck_assert_ptr_null(l);
            ck_assert_has(err.msg, want);
            ck_assert_has(err.msg, "leaves.log");
            size_t now_len;
            uint8_t *now = slurp(file_in(dir, "leaves.log"), &now_len);
            ck_assert_uint_eq(now_len, len);
            ck_assert(memcmp(now, bad, len) == 0);
            free(now);
        }
        free(bad);
    }
    spit(file_in(dir, "leaves.log"), orig, len);
    free(orig);
    /* Not an audit file at all. */
    spit(file_in(dir, "leaves.log"), (const uint8_t *)"hello, world", 12);
    bg_audit_log *l = NULL;
    bg_err err = {0};
    ck_assert_int_eq(bg_audit_open(&l, dir, "440300", 0, NULL, &err), BG_EPROTO);
    ck_assert_has(err.msg, "magic");
}
END_TEST

/* A child process appends in a loop (single appends and batches of 8),
 * reporting each acknowledged index on a pipe, and is killed with SIGKILL at
 * a random point. Reopening keeps every acknowledged leaf, every leaf reads
 * back and decodes, the root equals the naive reference, and the next append
 * gets the next index. Three rounds on the same log. */
START_TEST(kill9_mid_append)
{
    const char *dir = fresh_dir("kill9");
    bg_audit_log *log = make_log(dir, 3, -1);
    bg_audit_close(log);
    srand((unsigned)time(NULL));
    for (int round = 0; round < 3; round++) {
        int fds[2];
        ck_assert_int_eq(pipe(fds), 0);
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            close(fds[0]);
            bg_audit_log *c = NULL;
            if (bg_audit_open(&c, dir, "440300", 0, NULL, NULL) != BG_OK)
                _exit(3);
            for (uint64_t i = 0;; i++) {
                bg_audit_event evs[8];
                size_t n = i % 4 == 3 ? 8 : 1;
                for (size_t k = 0; k < n; k++)
                    evs[k] = event(1000 + i * 8 + k, 0);
                uint64_t first;
                if (bg_audit_append_batch(c, evs, n, &first, NULL) != BG_OK)
                    _exit(4);
                uint64_t last = first + n - 1;
                if (write(fds[1], &last, sizeof last) != (ssize_t)sizeof last)
                    _exit(5);
            }
        }
        close(fds[1]);
        uint64_t acked = 0, got;
        int seen = 0, target = 20 + rand() % 40;
        while (seen < target && read(fds[0], &got, sizeof got) == (ssize_t)sizeof got) {
            acked = got;
            seen++;
        }
        usleep((useconds_t)(rand() % 3000));
        kill(pid, SIGKILL); /* before any assertion: never leave the child running */
        /* Acks written before the kill still count. */
        while (read(fds[0], &got, sizeof got) == (ssize_t)sizeof got)
            acked = got;
        close(fds[0]);
        int status;
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "child status %d",
                      status);
        ck_assert_int_eq(seen, target);

        bg_audit_open_report rep;
        log = open_log(dir, 0, &rep);
        uint64_t n = bg_audit_size(log);
        ck_assert_msg(n >= acked + 1, "acknowledged %" PRIu64 " but only %" PRIu64 " leaves", acked,
                      n);
        leaf_bytes *d = read_leaves(log, n);
        bg_err err = {0};
        for (uint64_t i = 0; i < n; i++) {
            bg_audit_event ev;
            ck_assert_int_eq(bg_audit_leaf_decode(d[i].b, d[i].len, &ev, &err), BG_OK);
        }
        bg_audit_hash r, ref;
        ck_assert_int_eq(bg_audit_root(log, n, r, &err), BG_OK);
        ref_mth(d, n, ref);
        ck_assert(memcmp(r, ref, 32) == 0);
        free(d);
        bg_audit_event ev = event(5, 0);
        uint64_t idx;
        ck_assert_int_eq(bg_audit_append(log, &ev, &idx, &err), BG_OK);
        ck_assert_uint_eq(idx, n);
        bg_audit_close(log);
    }
}
END_TEST

/* Events that break the leaf rules are refused and nothing is appended: a
 * peer that is not a city code, a purpose with a space, an identifier-shaped
 * reason, an unknown kind, an oversized authorisation reference; a batch with
 * one bad event is refused whole. Leaf decoding refuses garbage and unknown
 * fields. */
START_TEST(bad_events_refused)
{
    const char *dir = fresh_dir("bad");
    bg_audit_log *log = make_log(dir, 2, -1);
    bg_err err = {0};
    bg_audit_event ev[3];
    for (int k = 0; k < 7; k++) {
        ev[0] = event(0, 0);
        switch (k) {
        case 0:
            snprintf(ev[0].peer, sizeof ev[0].peer, "44A100");
            break;
        case 1:
            snprintf(ev[0].purpose, sizeof ev[0].purpose, "two words");
            break;
        case 2:
            snprintf(ev[0].reason, sizeof ev[0].reason, "bad 91440300MA5FXXXX1K here");
            break;
        case 3:
            ev[0].kind = (bg_audit_kind)9;
            break;
        case 4:
            ev[0].authorisation_ref_len = BG_AUDIT_REF_MAX + 1;
            break;
        case 5:
            snprintf(ev[0].reason, sizeof ev[0].reason, "tab\there");
            break;
        case 6:
            snprintf(ev[0].list, sizeof ev[0].list, "%s", "");
            ev[0].list[0] = '\x7f';
            break;
        }
        ck_assert_msg(bg_audit_append(log, &ev[0], NULL, &err) == BG_EINVAL, "case %d", k);
    }
    ev[0] = event(2, 0);
    ev[1] = event(3, 0);
    ev[2] = event(4, 0);
    snprintf(ev[1].peer, sizeof ev[1].peer, "x");
    ck_assert_int_eq(bg_audit_append_batch(log, ev, 3, NULL, &err), BG_EINVAL);
    ck_assert_has(err.msg, "event 1");
    ck_assert_int_eq(bg_audit_append_batch(log, ev, 0, NULL, &err), BG_EINVAL);
    ck_assert_uint_eq(bg_audit_size(log), 2);

    uint8_t leaf[BG_AUDIT_LEAF_MAX + 8];
    size_t len;
    ck_assert_int_eq(bg_audit_leaf_read(log, 0, leaf, &len, NULL, &err), BG_OK);
    bg_audit_event out;
    ck_assert_int_eq(bg_audit_leaf_decode(leaf, len, &out, &err), BG_OK);
    leaf[len] = 0xf8; /* field 31, varint */
    leaf[len + 1] = 0x01;
    leaf[len + 2] = 0x01;
    ck_assert_int_eq(bg_audit_leaf_decode(leaf, len + 3, &out, &err), BG_EPROTO);
    ck_assert_int_eq(bg_audit_leaf_decode((const uint8_t *)"\xff\xff\xff", 3, &out, &err),
                     BG_EPROTO);
    bg_audit_close(log);
}
END_TEST

/* Many threads append at once while another computes proofs: every append
 * gets its own index, and the log reopens to the same root. */
struct thr {
    bg_audit_log *log;
    int id;
    uint64_t idx[25];
    int fail;
};

static void *
appender(void *arg)
{
    struct thr *t = arg;
    for (int i = 0; i < 25; i++) {
        bg_audit_event ev = event((uint64_t)(t->id * 100 + i), 0);
        if (bg_audit_append(t->log, &ev, &t->idx[i], NULL) != BG_OK)
            t->fail = 1;
    }
    return NULL;
}

static void *
prover(void *arg)
{
    struct thr *t = arg;
    for (int i = 0; i < 400; i++) {
        uint64_t n = bg_audit_size(t->log);
        if (n == 0)
            continue;
        bg_audit_hash p[BG_AUDIT_PROOF_MAX], root, leaf;
        size_t len;
        uint64_t m = (uint64_t)i % n;
        if (bg_audit_root(t->log, n, root, NULL) != BG_OK ||
            bg_audit_leaf_hash(t->log, m, leaf, NULL) != BG_OK ||
            bg_audit_inclusion_proof(t->log, m, n, p, &len, NULL) != BG_OK ||
            bg_audit_verify_inclusion(m, n, leaf, p, len, root, NULL) != BG_OK)
            t->fail = 1;
    }
    return NULL;
}

START_TEST(concurrent_appends)
{
    const char *dir = fresh_dir("threads");
    bg_audit_log *log = make_log(dir, 1, -1);
    struct thr t[5];
    pthread_t th[5];
    memset(t, 0, sizeof t);
    for (int i = 0; i < 5; i++) {
        t[i].log = log;
        t[i].id = i;
        ck_assert_int_eq(pthread_create(&th[i], NULL, i < 4 ? appender : prover, &t[i]), 0);
    }
    for (int i = 0; i < 5; i++) {
        pthread_join(th[i], NULL);
        ck_assert_int_eq(t[i].fail, 0);
    }
    ck_assert_uint_eq(bg_audit_size(log), 101);
    bool seen[101] = {false};
    for (int i = 0; i < 4; i++)
        for (int k = 0; k < 25; k++) {
            ck_assert_uint_lt(t[i].idx[k], 101);
            ck_assert(!seen[t[i].idx[k]]);
            seen[t[i].idx[k]] = true;
        }
    bg_audit_hash r1, r2;
    bg_err err = {0};
    ck_assert_int_eq(bg_audit_root(log, 101, r1, &err), BG_OK);
    bg_audit_close(log);
    log = open_log(dir, 0, NULL);
    ck_assert_int_eq(bg_audit_root(log, 101, r2, &err), BG_OK);
    ck_assert(memcmp(r1, r2, 32) == 0);
    bg_audit_close(log);
}
END_TEST

/* Group commit: 8 threads append 200 batches of 1..3 events each at once
 * (with a prover reading alongside). Every batch gets consecutive indexes of
 * its own, together they cover 0..n-1 exactly, each index holds the event the
 * batch wrote there (so indexes follow file order), and a reopen keeps every
 * acknowledged leaf and gives the same root at every size. */
enum { GC_THREADS = 8, GC_BATCHES = 200 };

struct gc_thr {
    bg_audit_log *log;
    int id;
    uint64_t first[GC_BATCHES];
    size_t n[GC_BATCHES];
    int fail;
    char msg[sizeof(((bg_err *)0)->msg)];
};

/* The event thread id writes as event k of its batch b: unique per leaf. */
static uint64_t
gc_tag(int id, int b, size_t k)
{
    return 100000 + (uint64_t)id * 10000 + (uint64_t)b * 4 + k;
}

static void *
gc_appender(void *arg)
{
    struct gc_thr *t = arg;
    for (int b = 0; b < GC_BATCHES; b++) {
        bg_audit_event evs[3];
        t->n[b] = 1 + (size_t)(t->id + b) % 3;
        for (size_t k = 0; k < t->n[b]; k++)
            evs[k] = event(gc_tag(t->id, b, k), 0);
        bg_err err = {0};
        if (bg_audit_append_batch(t->log, evs, t->n[b], &t->first[b], &err) != BG_OK) {
            t->fail = 1;
            snprintf(t->msg, sizeof t->msg, "%s", err.msg);
            return NULL;
        }
    }
    return NULL;
}

START_TEST(group_commit_many_threads)
{
    const char *dir = fresh_dir("group");
    bg_audit_log *log = make_log(dir, 3, -1);
    struct gc_thr *t = calloc(GC_THREADS, sizeof *t);
    struct thr prov = {.log = log};
    pthread_t th[GC_THREADS], pth;
    ck_assert_ptr_nonnull(t);
    for (int i = 0; i < GC_THREADS; i++) {
        t[i].log = log;
        t[i].id = i;
        ck_assert_int_eq(pthread_create(&th[i], NULL, gc_appender, &t[i]), 0);
    }
    ck_assert_int_eq(pthread_create(&pth, NULL, prover, &prov), 0);
    for (int i = 0; i < GC_THREADS; i++)
        pthread_join(th[i], NULL);
    pthread_join(pth, NULL);
    uint64_t total = 3;
    for (int i = 0; i < GC_THREADS; i++) {
        ck_assert_msg(t[i].fail == 0, "thread %d: %s", i, t[i].msg);
        for (int b = 0; b < GC_BATCHES; b++)
            total += t[i].n[b];
    }
    ck_assert_int_eq(prov.fail, 0);
    ck_assert_uint_eq(bg_audit_size(log), total);
    uint8_t *seen = calloc(total, 1);
    ck_assert_ptr_nonnull(seen);
    bg_err err = {0};
    for (int i = 0; i < GC_THREADS; i++)
        for (int b = 0; b < GC_BATCHES; b++)
            for (size_t k = 0; k < t[i].n[b]; k++) {
                uint64_t idx = t[i].first[b] + k;
                ck_assert_uint_ge(idx, 3);
                ck_assert_uint_lt(idx, total);
                ck_assert_msg(!seen[idx], "index %" PRIu64 " given twice", idx);
                seen[idx] = 1;
                bg_audit_event got, want = event(gc_tag(i, b, k), 0);
                ck_assert_int_eq(bg_audit_leaf_read(log, idx, NULL, NULL, &got, &err), BG_OK);
                ck_assert_msg(got.items_asked == want.items_asked &&
                                  strcmp(got.reason, want.reason) == 0,
                              "leaf %" PRIu64 " is not thread %d batch %d event %zu", idx, i, b, k);
            }
    free(seen);
    bg_audit_hash *roots = malloc((size_t)(total + 1) * sizeof *roots);
    ck_assert_ptr_nonnull(roots);
    for (uint64_t s = 0; s <= total; s++)
        ck_assert_int_eq(bg_audit_root(log, s, roots[s], &err), BG_OK);
    leaf_bytes *d = read_leaves(log, total);
    bg_audit_hash ref;
    ref_mth(d, total, ref);
    ck_assert(memcmp(roots[total], ref, 32) == 0);
    bg_audit_close(log);

    log = open_log(dir, 0, NULL);
    ck_assert_uint_eq(bg_audit_size(log), total);
    for (uint64_t s = 0; s <= total; s++) {
        bg_audit_hash r;
        ck_assert_int_eq(bg_audit_root(log, s, r, &err), BG_OK);
        ck_assert_msg(memcmp(r, roots[s], 32) == 0, "root at size %" PRIu64 " differs", s);
    }
    leaf_bytes *d2 = read_leaves(log, total);
    for (uint64_t i = 0; i < total; i++)
        ck_assert(d2[i].len == d[i].len && memcmp(d2[i].b, d[i].b, d[i].len) == 0);
    bg_audit_close(log);
    free(d);
    free(d2);
    free(roots);
    free(t);
}
END_TEST

/* A disk whose fdatasync is slow (so appenders pile up behind it) and then
 * fails, or just slow. */
static int
sync_slow_fail(int fd)
{
    (void)fd;
    usleep(50000);
    errno = EIO;
    return -1;
}

static int
sync_slow_ok(int fd)
{
    usleep(100000);
    return fdatasync(fd);
}

static void *
one_append(void *arg)
{
    struct thr *t = arg;
    bg_audit_event ev = event((uint64_t)(500 + t->id), 0);
    bg_err err = {0};
    int rc = bg_audit_append(t->log, &ev, &t->idx[0], &err);
    t->fail = rc == BG_OK ? 0 : rc;
    return NULL;
}

/* Leaves stay invisible until their sync is done. A failed sync fails every
 * appender waiting on it with BG_EIO, none of their leaves become visible,
 * the log refuses further appends until reopened, and the reopened log holds
 * exactly the acknowledged leaves and goes on from there. */
START_TEST(sync_failure_fails_waiters)
{
    const char *dir = fresh_dir("syncfail");
    bg_audit_log *log = make_log(dir, 5, -1);
    bg_audit_hash before, r;
    bg_err err = {0};
    ck_assert_int_eq(bg_audit_root(log, 5, before, &err), BG_OK);

    /* Slow sync: not visible while it runs, visible after. */
    bg_audit_datasync = sync_slow_ok;
    struct thr a = {.log = log, .id = 0};
    pthread_t ath;
    ck_assert_int_eq(pthread_create(&ath, NULL, one_append, &a), 0);
    usleep(30000);
    ck_assert_uint_eq(bg_audit_size(log), 5);
    pthread_join(ath, NULL);
    ck_assert_int_eq(a.fail, 0);
    ck_assert_uint_eq(a.idx[0], 5);
    ck_assert_uint_eq(bg_audit_size(log), 6);
    ck_assert_int_eq(bg_audit_root(log, 6, before, &err), BG_OK);

    /* Failing sync with four appenders at once. */
    bg_audit_datasync = sync_slow_fail;
    struct thr t[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        t[i] = (struct thr){.log = log, .id = 1 + i};
        ck_assert_int_eq(pthread_create(&th[i], NULL, one_append, &t[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        ck_assert_int_eq(t[i].fail, BG_EIO);
    }
    ck_assert_uint_eq(bg_audit_size(log), 6);
    ck_assert_int_eq(bg_audit_root(log, 6, r, &err), BG_OK);
    ck_assert(memcmp(r, before, 32) == 0);
    bg_audit_datasync = fdatasync;
    bg_audit_event ev = event(600, 0);
    ck_assert_int_eq(bg_audit_append(log, &ev, NULL, &err), BG_EIO);
    ck_assert_has(err.msg, "reopen");
    ck_assert_uint_eq(bg_audit_size(log), 6);
    bg_audit_close(log);

    bg_audit_open_report rep;
    log = open_log(dir, 0, &rep);
    ck_assert_uint_eq(bg_audit_size(log), 6);
    ck_assert_int_eq(bg_audit_root(log, 6, r, &err), BG_OK);
    ck_assert(memcmp(r, before, 32) == 0);
    uint64_t idx;
    ck_assert_int_eq(bg_audit_append(log, &ev, &idx, &err), BG_OK);
    ck_assert_uint_eq(idx, 6);
    bg_audit_close(log);
}
END_TEST

/* A failed write (the file size limit, EFBIG) fails that append only: the
 * file is cut back to where the write began and the next append follows the
 * last good record. */
START_TEST(write_failure_cut_back)
{
    const char *dir = fresh_dir("writefail");
    bg_audit_log *log = make_log(dir, 4, -1);
    struct stat st;
    ck_assert_int_eq(stat(file_in(dir, "leaves.log"), &st), 0);
    struct rlimit old, lim;
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
    void (*old_sig)(int) = signal(SIGXFSZ, SIG_IGN);
    lim = old;
    lim.rlim_cur = (rlim_t)st.st_size + 20; /* room for part of a record */
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    bg_audit_event evs[2] = {event(40, 0), event(41, 0)};
    bg_err err = {0};
    int rc = bg_audit_append_batch(log, evs, 2, NULL, &err);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, old_sig);
    ck_assert_int_eq(rc, BG_EIO);
    ck_assert_has(err.msg, "write failed");
    struct stat st2;
    ck_assert_int_eq(stat(file_in(dir, "leaves.log"), &st2), 0);
    ck_assert_int_eq(st2.st_size, st.st_size);
    ck_assert_uint_eq(bg_audit_size(log), 4);
    uint64_t first;
    ck_assert_int_eq(bg_audit_append_batch(log, evs, 2, &first, &err), BG_OK);
    ck_assert_uint_eq(first, 4);
    bg_audit_hash r1, r2;
    ck_assert_int_eq(bg_audit_root(log, 6, r1, &err), BG_OK);
    bg_audit_close(log);
    bg_audit_open_report rep;
    log = open_log(dir, 0, &rep);
    ck_assert_uint_eq(rep.dropped_bytes, 0);
    ck_assert_uint_eq(bg_audit_size(log), 6);
    ck_assert_int_eq(bg_audit_root(log, 6, r2, &err), BG_OK);
    ck_assert(memcmp(r1, r2, 32) == 0);
    bg_audit_close(log);
}
END_TEST

/* kill -9 with four threads appending at once in the child: every index any
 * thread had acknowledged survives the reopen, and the root is the naive one. */
static int kill9_pipe = -1;

static void *
kill9_thread(void *arg)
{
    bg_audit_log *c = arg;
    for (uint64_t i = 0;; i++) {
        bg_audit_event evs[2] = {event(2000 + i * 2, 0), event(2001 + i * 2, 0)};
        uint64_t first;
        if (bg_audit_append_batch(c, evs, 1 + i % 2, &first, NULL) != BG_OK)
            _exit(4);
        uint64_t last = first + i % 2;
        if (write(kill9_pipe, &last, sizeof last) != (ssize_t)sizeof last)
            _exit(5);
    }
    return NULL;
}

START_TEST(kill9_concurrent_appends)
{
    const char *dir = fresh_dir("kill9c");
    bg_audit_log *log = make_log(dir, 3, -1);
    bg_audit_close(log);
    for (int round = 0; round < 2; round++) {
        int fds[2];
        ck_assert_int_eq(pipe(fds), 0);
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            close(fds[0]);
            kill9_pipe = fds[1];
            bg_audit_log *c = NULL;
            if (bg_audit_open(&c, dir, "440300", 0, NULL, NULL) != BG_OK)
                _exit(3);
            pthread_t th[4];
            for (int i = 0; i < 4; i++)
                if (pthread_create(&th[i], NULL, kill9_thread, c) != 0)
                    _exit(6);
            pthread_join(th[0], NULL);
            _exit(7);
        }
        close(fds[1]);
        uint64_t acked = 0, got;
        int seen = 0, target = 40 + rand() % 80;
        while (seen < target && read(fds[0], &got, sizeof got) == (ssize_t)sizeof got) {
            if (got > acked)
                acked = got;
            seen++;
        }
        kill(pid, SIGKILL); /* before any assertion: never leave the child running */
        while (read(fds[0], &got, sizeof got) == (ssize_t)sizeof got)
            if (got > acked)
                acked = got;
        close(fds[0]);
        int status;
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "child status %d",
                      status);
        ck_assert_int_eq(seen, target);
        log = open_log(dir, 0, NULL);
        uint64_t n = bg_audit_size(log);
        ck_assert_msg(n >= acked + 1, "acknowledged %" PRIu64 " but only %" PRIu64 " leaves", acked,
                      n);
        leaf_bytes *d = read_leaves(log, n);
        bg_audit_hash r, ref;
        bg_err err = {0};
        ck_assert_int_eq(bg_audit_root(log, n, r, &err), BG_OK);
        ref_mth(d, n, ref);
        ck_assert(memcmp(r, ref, 32) == 0);
        free(d);
        bg_audit_close(log);
    }
}
END_TEST

/* --- signed tree heads --- */

/* A signed head verifies with the city's key and survives encode/decode and
 * reopening; with another key, an edited root or size (in the struct, or in
 * re-signed bytes carrying the old signature), a flipped byte anywhere in its
 * encoding, an unknown field or trailing bytes, it is refused. */
START_TEST(forged_heads_refused)
{
    const char *dir = fresh_dir("heads");
    bg_audit_log *log = make_log(dir, 9, -1);
    bg_err err = {0};
    bg_audit_head h;
    ck_assert_int_eq(bg_audit_sign_head(log, key_a, 1760000100000LL, &h, &err), BG_OK);
    ck_assert_str_eq(h.origin, "440300");
    ck_assert_uint_eq(h.size, 9);
    ck_assert_int_eq(bg_audit_head_verify(&h, key_a, NULL, &err), BG_OK);
    ck_assert_int_eq(bg_audit_head_verify(&h, key_b, NULL, &err), BG_ECRYPTO);

    uint8_t enc[BG_AUDIT_SIGNED_HEAD_MAX + 4];
    size_t len;
    ck_assert_int_eq(bg_audit_head_encode(&h, enc, &len, &err), BG_OK);
    bg_audit_head d;
    ck_assert_int_eq(bg_audit_head_decode(enc, len, &d, &err), BG_OK);
    ck_assert(head_eq(&d, &h));
    ck_assert_int_eq(bg_audit_head_verify(&d, key_a, NULL, &err), BG_OK);

    /* Edited fields. */
    d = h;
    d.root[0] ^= 1;
    ck_assert_int_eq(bg_audit_head_verify(&d, key_a, NULL, &err), BG_ECRYPTO);
    d = h;
    d.size = 10;
    ck_assert_int_eq(bg_audit_head_verify(&d, key_a, NULL, &err), BG_ECRYPTO);
    /* Edited bytes, old signature. */
    bg_audit_hash root9;
    ck_assert_int_eq(bg_audit_root(log, 9, root9, &err), BG_OK);
    bg_audit_head other;
    root9[5] ^= 0x40;
    ck_assert_int_eq(bg_audit_head_make(key_b, "440300", 9, root9, h.timestamp_ms, &other, &err),
                     BG_OK);
    memcpy(other.sig, h.sig, h.sig_len);
    other.sig_len = h.sig_len;
    ck_assert_int_eq(bg_audit_head_verify(&other, key_a, NULL, &err), BG_ECRYPTO);
    root9[5] ^= 0x40;
    ck_assert_int_eq(bg_audit_head_make(key_b, "440300", 12, root9, h.timestamp_ms, &other, &err),
                     BG_OK);
    memcpy(other.sig, h.sig, h.sig_len);
    other.sig_len = h.sig_len;
    ck_assert_int_eq(bg_audit_head_verify(&other, key_a, NULL, &err), BG_ECRYPTO);

    /* Any flipped byte: refused by decode or by the signature. */
    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit += 3) {
            enc[i] ^= (uint8_t)(1u << bit);
            bg_audit_head x;
            int rc = bg_audit_head_decode(enc, len, &x, &err);
            if (rc == BG_OK)
                rc = bg_audit_head_verify(&x, key_a, NULL, &err);
            ck_assert_msg(rc != BG_OK, "byte %zu bit %d flipped still verifies", i, bit);
            enc[i] ^= (uint8_t)(1u << bit);
        }
    }
    enc[len] = 0x18; /* field 3, varint: unknown */
    enc[len + 1] = 0x01;
    ck_assert_int_eq(bg_audit_head_decode(enc, len + 2, &d, &err), BG_EPROTO);
    ck_assert_int_eq(bg_audit_head_decode(enc, len - 1, &d, &err), BG_EPROTO);

    /* Stored, and read back after reopening. */
    ck_assert_uint_eq(bg_audit_head_count(log), 1);
    bg_audit_close(log);
    log = open_log(dir, BG_AUDIT_READ_ONLY, NULL);
    ck_assert_int_eq(bg_audit_head_latest(log, &d, &err), BG_OK);
    ck_assert(head_eq(&d, &h));
    bg_audit_close(log);
}
END_TEST

/* bg_audit_maybe_sign signs only when the tree grew and the interval passed
 * (or there is no head yet and the tree is not empty); a clock earlier than
 * the last head is refused. A heads.log that contradicts the leaves (a root
 * edited and re-signed) stops a read-write open. */
START_TEST(maybe_sign_cadence)
{
    const char *dir = fresh_dir("cadence");
    bg_audit_log *log = open_log(dir, BG_AUDIT_CREATE, NULL);
    bg_err err = {0};
    bool did;
    bg_audit_head h;
    int64_t t0 = 1760000000000LL;
    ck_assert_int_eq(bg_audit_maybe_sign(log, key_a, t0, 60, &h, &did, &err), BG_OK);
    ck_assert(!did);
    bg_audit_event ev = event(0, 0);
    ck_assert_int_eq(bg_audit_append(log, &ev, NULL, &err), BG_OK);
    ck_assert_int_eq(bg_audit_maybe_sign(log, key_a, t0, 60, &h, &did, &err), BG_OK);
    ck_assert(did);
    ck_assert_uint_eq(h.size, 1);
    ck_assert_int_eq(bg_audit_maybe_sign(log, key_a, t0 + 120000, 60, &h, &did, &err), BG_OK);
    ck_assert(!did); /* no growth */
    ck_assert_int_eq(bg_audit_append(log, &ev, NULL, &err), BG_OK);
    ck_assert_int_eq(bg_audit_maybe_sign(log, key_a, t0 + 59999, 60, &h, &did, &err), BG_OK);
    ck_assert(!did); /* too soon */
    ck_assert_int_eq(bg_audit_maybe_sign(log, key_a, t0 + 60000, 60, &h, &did, &err), BG_OK);
    ck_assert(did);
    ck_assert_uint_eq(h.size, 2);
    ck_assert_int_eq(bg_audit_sign_head(log, key_a, t0, &h, &err), BG_EINVAL);
    ck_assert_has(err.msg, "clock");
    ck_assert_uint_eq(bg_audit_head_count(log), 2);
    bg_audit_close(log);

    /* Replace heads.log by one whose head has another root, properly signed. */
    bg_audit_hash bogus;
    memset(bogus, 7, sizeof bogus);
    bg_audit_head fake;
    ck_assert_int_eq(bg_audit_head_make(key_a, "440300", 2, bogus, t0, &fake, &err), BG_OK);
    uint8_t enc[BG_AUDIT_SIGNED_HEAD_MAX];
    size_t len;
    ck_assert_int_eq(bg_audit_head_encode(&fake, enc, &len, &err), BG_OK);
    uint8_t rec[8 + 4 + BG_AUDIT_SIGNED_HEAD_MAX + 32];
    memcpy(rec, "BGAUDIT\x01", 8);
    rec[8] = 0, rec[9] = 0, rec[10] = (uint8_t)(len >> 8), rec[11] = (uint8_t)len;
    memcpy(rec + 12, enc, len);
    bg_audit_hash_leaf(enc, len, rec + 12 + len);
    spit(file_in(dir, "heads.log"), rec, 12 + len + 32);
    bg_audit_log *l = NULL;
    ck_assert_int_eq(bg_audit_open(&l, dir, "440300", 0, NULL, &err), BG_EPROTO);
    ck_assert_has(err.msg, "differs");
    /* A reader still opens it, so 'baygate audit verify' can say what is wrong. */
    l = open_log(dir, BG_AUDIT_READ_ONLY, NULL);
    ck_assert_uint_eq(bg_audit_head_count(l), 1);
    bg_audit_close(l);
    /* And a head of another city does not belong in our heads.log at all. */
    ck_assert_int_eq(bg_audit_open(&l, dir, "440100", BG_AUDIT_READ_ONLY, NULL, &err), BG_EPROTO);
    ck_assert_has(err.msg, "not of 440100");
}
END_TEST

/* --- the witness --- */

static bg_audit_head
head_at(bg_audit_log *log, uint64_t size, int64_t ts)
{
    bg_audit_hash r;
    bg_audit_head h;
    bg_err err = {0};
    ck_assert_int_eq(bg_audit_root(log, size, r, &err), BG_OK);
    ck_assert_int_eq(bg_audit_head_make(key_a, "440300", size, r, ts, &h, &err), BG_OK);
    return h;
}

/* Shenzhen's honest log and a rewritten copy that differs only in leaf 3.
 * Guangzhou's witness cosigns the honest heads at 5 and 10 (with consistency
 * proofs); then the rewritten log's head at 10 is a fork (same size, another
 * root), its head at 12 with its own consistency proof from 10 fails to link
 * to the cosigned root, and a head at 8 is a shrinking tree: all refused with
 * messages that say so, kept as evidence across reopening. The cosignatures
 * verify with the witness's key only; the same head again gets the same
 * cosignature; received cosignatures are stored once. */
START_TEST(witness_detects_rewritten_history)
{
    const char *da = fresh_dir("w-honest"), *db = fresh_dir("w-rewritten"),
               *dw = fresh_dir("w-store");
    bg_audit_log *a = make_log(da, 12, -1), *b = make_log(db, 12, 3);
    bg_audit_witness *w = NULL;
    bg_err err = {0};
    ck_assert_int_eq(bg_audit_witness_open(&w, dw, "440100", 0, NULL, &err), BG_OK);
    int64_t t = 1760000000000LL;
    bg_audit_hash p[BG_AUDIT_PROOF_MAX];
    size_t plen;
    bg_audit_cosig c5, c10, again;
    bg_audit_verdict v;

    bg_audit_head a5 = head_at(a, 5, t), a10 = head_at(a, 10, t + 1000);
    ck_assert_int_eq(bg_audit_witness_check(w, key_w, "440300", &a5, NULL, 0, t, &c5, &v, &err),
                     BG_OK);
    ck_assert_int_eq(v, BG_AUDIT_W_OK);
    ck_assert_int_eq(bg_audit_consistency_proof(a, 5, 10, p, &plen, &err), BG_OK);
    ck_assert_int_eq(
        bg_audit_witness_check(w, key_w, "440300", &a10, p, plen, t + 2000, &c10, &v, &err), BG_OK);
    ck_assert_int_eq(bg_audit_cosig_verify(&c10, key_w, NULL, &err), BG_OK);
    ck_assert_int_eq(bg_audit_cosig_verify(&c10, key_a, NULL, &err), BG_ECRYPTO);
    ck_assert_str_eq(c10.witness, "440100");
    ck_assert_uint_eq(c10.head.size, 10);
    ck_assert_int_eq(
        bg_audit_witness_check(w, key_w, "440300", &a10, NULL, 0, t + 3000, &again, &v, &err),
        BG_OK);
    ck_assert(cosig_eq(&again, &c10));
    uint8_t cenc[BG_AUDIT_SIGNED_COSIG_MAX];
    size_t clen;
    bg_audit_cosig cd;
    ck_assert_int_eq(bg_audit_cosig_encode(&c10, cenc, &clen, &err), BG_OK);
    ck_assert_int_eq(bg_audit_cosig_decode(cenc, clen, &cd, &err), BG_OK);
    ck_assert_int_eq(bg_audit_cosig_verify(&cd, key_w, NULL, &err), BG_OK);
    cenc[clen / 2] ^= 1;
    ck_assert(bg_audit_cosig_decode(cenc, clen, &cd, &err) != BG_OK ||
              bg_audit_cosig_verify(&cd, key_w, NULL, &err) != BG_OK);

    /* The rewritten history. */
    bg_audit_head b10 = head_at(b, 10, t + 4000), b12 = head_at(b, 12, t + 5000),
                  a8 = head_at(a, 8, t + 6000);
    ck_assert_int_eq(
        bg_audit_witness_check(w, key_w, "440300", &b10, NULL, 0, t + 7000, NULL, &v, &err),
        BG_ECRYPTO);
    ck_assert_int_eq(v, BG_AUDIT_W_FORK);
    ck_assert_has(err.msg, "FORK");
    ck_assert_int_eq(bg_audit_consistency_proof(b, 10, 12, p, &plen, &err), BG_OK);
    ck_assert_int_eq(
        bg_audit_witness_check(w, key_w, "440300", &b12, p, plen, t + 8000, NULL, &v, &err),
        BG_ECRYPTO);
    ck_assert_int_eq(v, BG_AUDIT_W_INCONSISTENT);
    ck_assert_has(err.msg, "not consistent");
    ck_assert_int_eq(
        bg_audit_witness_check(w, key_w, "440300", &a8, NULL, 0, t + 9000, NULL, &v, &err),
        BG_ECRYPTO);
    ck_assert_int_eq(v, BG_AUDIT_W_SHRUNK);
    ck_assert_has(err.msg, "shrank");
    /* The honest log's own extension is still accepted. */
    bg_audit_head a12 = head_at(a, 12, t + 10000);
    ck_assert_int_eq(bg_audit_consistency_proof(a, 10, 12, p, &plen, &err), BG_OK);
    ck_assert_int_eq(
        bg_audit_witness_check(w, key_w, "440300", &a12, p, plen, t + 11000, NULL, &v, &err),
        BG_OK);
    /* Wrong origin, ourselves, unsigned. */
    ck_assert_int_eq(bg_audit_witness_check(w, key_w, "440600", &a12, NULL, 0, t, NULL, &v, &err),
                     BG_EINVAL);
    ck_assert_int_eq(v, BG_AUDIT_W_BAD_INPUT);
    ck_assert_int_eq(bg_audit_witness_check(w, key_w, "440100", &a12, NULL, 0, t, NULL, &v, &err),
                     BG_EINVAL);

    /* A peer cosigned one of our (440100's) heads. */
    bg_audit_cosig theirs;
    bg_audit_head ours;
    bg_audit_hash r;
    memset(r, 3, sizeof r);
    ck_assert_int_eq(bg_audit_head_make(key_w, "440100", 4, r, t, &ours, &err), BG_OK);
    bg_audit_witness *w2 = NULL;
    const char *dw2 = fresh_dir("w-peer");
    ck_assert_int_eq(bg_audit_witness_open(&w2, dw2, "440600", 0, NULL, &err), BG_OK);
    ck_assert_int_eq(
        bg_audit_witness_check(w2, key_b, "440100", &ours, NULL, 0, t, &theirs, &v, &err), BG_OK);
    bg_audit_witness_close(w2);
    ck_assert_int_eq(bg_audit_witness_add_received(w, &theirs, &err), BG_OK);
    ck_assert_int_eq(bg_audit_witness_add_received(w, &theirs, &err), BG_OK);
    ck_assert_int_eq(bg_audit_witness_add_received(w, &c10, &err), BG_EINVAL); /* not ours */
    /* The same witness's cosignature of the same head, made at another time: refused, not
     * stored (a member could otherwise mint any number of them). */
    size_t held = bg_audit_witness_received_count(w);
    for (int i = 1; i <= 3; i++) {
        bg_audit_cosig dup;
        ck_assert_int_eq(bg_audit_cosig_make(key_b, "440600", &ours, t + i, &dup, &err), BG_OK);
        ck_assert_int_eq(bg_audit_witness_add_received(w, &dup, &err), BG_EEXIST);
        ck_assert_has(err.msg, "already");
    }
    ck_assert_uint_eq(bg_audit_witness_received_count(w), held);
    bg_audit_witness_close(w);

    /* Everything is still there after reopening. */
    ck_assert_int_eq(bg_audit_witness_open(&w, dw, "440100", BG_AUDIT_READ_ONLY, NULL, &err),
                     BG_OK);
    ck_assert_uint_eq(bg_audit_witness_peer_count(w), 1);
    bg_audit_peer_info pi;
    ck_assert_int_eq(bg_audit_witness_peer(w, 0, &pi, &err), BG_OK);
    ck_assert_str_eq(pi.peer, "440300");
    ck_assert_uint_eq(pi.last.size, 12);
    ck_assert_uint_eq(pi.cosigned, 3);
    ck_assert_uint_eq(pi.conflicts, 3);
    ck_assert_uint_eq(bg_audit_witness_conflict_count(w), 3);
    bg_audit_head refused, prev;
    char reason[BG_AUDIT_REASON_MAX + 1];
    ck_assert_int_eq(bg_audit_witness_conflict(w, 0, &refused, &prev, reason, &err), BG_OK);
    ck_assert_has(reason, "fork");
    ck_assert(memcmp(refused.root, b10.root, 32) == 0);
    ck_assert(memcmp(prev.root, a10.root, 32) == 0);
    ck_assert_int_eq(bg_audit_head_verify(&refused, key_a, NULL, &err), BG_OK);
    ck_assert_uint_eq(bg_audit_witness_received_count(w), 1);
    bg_audit_cosig rc;
    ck_assert_int_eq(bg_audit_witness_received(w, 0, &rc, &err), BG_OK);
    ck_assert_int_eq(bg_audit_cosig_verify(&rc, key_b, NULL, &err), BG_OK);
    ck_assert_str_eq(rc.witness, "440600");
    bg_audit_head last;
    ck_assert_int_eq(bg_audit_witness_last(w, "440300", &last, &err), BG_OK);
    ck_assert_uint_eq(last.size, 12);
    ck_assert_int_eq(bg_audit_witness_last(w, "440600", &last, &err), BG_ENOTFOUND);
    bg_audit_witness_close(w);
    bg_audit_close(a);
    bg_audit_close(b);
}
END_TEST

/* A witness that has cosigned size 10 refuses every smaller tree, even one
 * with a correct root for that size. */
START_TEST(witness_refuses_shrinking_tree)
{
    const char *da = fresh_dir("s-log"), *dw = fresh_dir("s-store");
    bg_audit_log *a = make_log(da, 10, -1);
    bg_audit_witness *w = NULL;
    bg_err err = {0};
    ck_assert_int_eq(bg_audit_witness_open(&w, dw, "440100", 0, NULL, &err), BG_OK);
    bg_audit_head h10 = head_at(a, 10, 1);
    bg_audit_verdict v;
    ck_assert_int_eq(bg_audit_witness_check(w, key_w, "440300", &h10, NULL, 0, 2, NULL, &v, &err),
                     BG_OK);
    for (uint64_t s = 0; s < 10; s++) {
        bg_audit_head h = head_at(a, s, 3);
        ck_assert_int_eq(bg_audit_witness_check(w, key_w, "440300", &h, NULL, 0, 4, NULL, &v, &err),
                         BG_ECRYPTO);
        ck_assert_int_eq(v, BG_AUDIT_W_SHRUNK);
        ck_assert_has(err.msg, "shrank");
    }
    bg_audit_witness_close(w);
    bg_audit_close(a);
}
END_TEST

/* --- the CLI --- */

/* Runs a shell command line, returns its exit status and (in out) its
 * stdout+stderr. */
static int run(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int
run(char *out, size_t cap, const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(cmd, sizeof cmd - 8, fmt, ap);
    va_end(ap);
    ck_assert(n > 0 && (size_t)n < sizeof cmd - 8);
    strcat(cmd, " 2>&1");
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t got = fread(out, 1, cap - 1, p);
    out[got] = '\0';
    int st = pclose(p);
    ck_assert(WIFEXITED(st));
    return WEXITSTATUS(st);
}

/* A real gateway directory (CA, 'baygate init', certificate) whose log holds
 * 25 leaves and two signed heads: 'audit head', 'proof', 'consistency',
 * 'verify' and 'witness' print what they should and exit 0; a proof beyond
 * the signed head is a usage error; a head signed with another key and a
 * damaged leaf in the middle make 'verify' exit 1 naming the head and the
 * offset. */
START_TEST(cli_audit_commands)
{
    const char *root = fresh_dir("cli");
    char out[16384];
    ck_assert_int_eq(run(out, sizeof out,
                         "cd %s && %s ca init --dir CA && %s init --city 440300 --name Shenzhen "
                         "--dir GW && %s ca issue --dir CA --csr GW/city.csr --out GW/city.crt",
                         root, BG_BAYGATE, BG_BAYGATE, BG_BAYGATE),
                     0);
    char gw[PATH_MAX], audit[PATH_MAX];
    snprintf(gw, sizeof gw, "%s/GW", root);
    ck_assert_int_eq(run(out, sizeof out, "%s audit head --dir %s", BG_BAYGATE, gw), 2);
    ck_assert_has(out, "no audit log");
    snprintf(audit, sizeof audit, "%s/GW/data", root);
    mkdir(audit, 0700);
    strcat(audit, "/audit");
    EVP_PKEY *key = NULL;
    bg_err err = {0};
    ck_assert_int_eq(bg_pki_key_load(file_in(gw, "city.key"), &key, &err), BG_OK);
    bg_audit_log *log = make_log(audit, 20, -1);
    bg_audit_head h;
    ck_assert_int_eq(bg_audit_sign_head(log, key, 1760000000000LL, &h, &err), BG_OK);
    for (uint64_t i = 20; i < 25; i++) {
        bg_audit_event ev = event(i, 0);
        ck_assert_int_eq(bg_audit_append(log, &ev, NULL, &err), BG_OK);
    }
    ck_assert_int_eq(bg_audit_sign_head(log, key, 1760000060000LL, &h, &err), BG_OK);
    /* We witnessed Guangzhou's log once. */
    bg_audit_witness *w = NULL;
    ck_assert_int_eq(bg_audit_witness_open(&w, audit, "440300", 0, NULL, &err), BG_OK);
    bg_audit_hash r;
    memset(r, 9, sizeof r);
    bg_audit_head peer;
    ck_assert_int_eq(bg_audit_head_make(key_b, "440100", 77, r, 1760000000000LL, &peer, &err),
                     BG_OK);
    ck_assert_int_eq(
        bg_audit_witness_check(w, key, "440100", &peer, NULL, 0, 1760000001000LL, NULL, NULL, &err),
        BG_OK);
    bg_audit_witness_close(w);

    ck_assert_int_eq(run(out, sizeof out, "%s audit head --dir %s", BG_BAYGATE, gw), 0);
    ck_assert_has(out, "25 leaves");
    ck_assert_has(out, "size 25");
    ck_assert_has(out, "signature: ok");
    ck_assert_int_eq(run(out, sizeof out, "%s audit head --dir %s --json", BG_BAYGATE, gw), 0);
    ck_assert_has(out, "\"signature\":\"ok\"");
    ck_assert_int_eq(run(out, sizeof out, "%s audit proof --dir %s --leaf 7", BG_BAYGATE, gw), 0);
    ck_assert_has(out, "leaf 7: ");
    ck_assert_has(out, "verified against the signed head of size 25");
    ck_assert_int_eq(
        run(out, sizeof out, "%s audit proof --dir %s --leaf 3 --size 10 --json", BG_BAYGATE, gw),
        0);
    ck_assert_has(out, "\"verified\":true");
    ck_assert_int_eq(run(out, sizeof out, "%s audit proof --dir %s --leaf 25", BG_BAYGATE, gw), 2);
    ck_assert_int_eq(
        run(out, sizeof out, "%s audit consistency --dir %s --from 20 --to 25", BG_BAYGATE, gw), 0);
    ck_assert_has(out, "verified: size 25 extends size 20");
    ck_assert_has(out, "(signed head)");
    ck_assert_int_eq(run(out, sizeof out, "%s audit verify --dir %s", BG_BAYGATE, gw), 0);
    ck_assert_has(out, "ok: every leaf hash recomputed");
    ck_assert_int_eq(run(out, sizeof out, "%s audit witness --dir %s", BG_BAYGATE, gw), 0);
    ck_assert_has(out, "440100  last cosigned head: size 77");
    ck_assert_int_eq(run(out, sizeof out, "%s audit --dir %s", BG_BAYGATE, gw), 2);

    /* A head signed with a key that is not the city's. */
    ck_assert_int_eq(bg_audit_sign_head(log, key_b, 1760000120000LL, &h, &err), BG_OK);
    ck_assert_int_eq(run(out, sizeof out, "%s audit verify --dir %s", BG_BAYGATE, gw), 1);
    ck_assert_has(out, "PROBLEM: head 2 (size 25");
    ck_assert_has(out, "signature");
    ck_assert_int_eq(run(out, sizeof out, "%s audit head --dir %s", BG_BAYGATE, gw), 1);
    bg_audit_close(log);
    EVP_PKEY_free(key);

    /* A damaged leaf in the middle. */
    size_t len;
    uint8_t *b = slurp(file_in(audit, "leaves.log"), &len);
    b[len / 2] ^= 0x55;
    spit(file_in(audit, "leaves.log"), b, len);
    free(b);
    ck_assert_int_eq(run(out, sizeof out, "%s audit verify --dir %s", BG_BAYGATE, gw), 1);
    ck_assert_has(out, "damaged record at offset");
}
END_TEST

/* --- finding leaves, evidence bundles --- */

/* bg_audit_find agrees with a filter applied by hand, criterion by criterion. */
START_TEST(find_filters)
{
    const char *dir = fresh_dir("find");
    bg_audit_log *log = make_log(dir, 40, -1);
    bg_err err = {0};
    bg_audit_event e5 = event(5, 0);
    struct {
        bg_audit_filter f;
        uint64_t want;
    } cases[6];
    memset(cases, 0, sizeof cases);
    cases[0].want = 40;
    cases[1].f.has_request_id = true;
    memcpy(cases[1].f.request_id, e5.request_id, sizeof e5.request_id);
    cases[1].want = 1;
    snprintf(cases[2].f.peer, sizeof cases[2].f.peer, "440100");
    cases[2].want = 20;
    snprintf(cases[3].f.purpose, sizeof cases[3].f.purpose, "lending");
    snprintf(cases[3].f.peer, sizeof cases[3].f.peer, "440100"); /* lending is 440600's */
    cases[3].want = 0;
    cases[4].f.has_authorisation_ref = true;
    cases[4].f.authorisation_ref_len = 32;
    memset(cases[4].f.authorisation_ref, 0x42, 32);
    cases[4].want = 10; /* i % 4 == 1 */
    cases[5].f.has_since = cases[5].f.has_until = true;
    cases[5].f.since_ms = event(10, 0).time_ms;
    cases[5].f.until_ms = event(19, 0).time_ms;
    cases[5].want = 10;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        uint64_t got = 0;
        ck_assert_int_eq(bg_audit_find(log, &cases[c].f, NULL, NULL, &got, &err), BG_OK);
        ck_assert_msg(got == cases[c].want, "case %zu: %" PRIu64 " matches, want %" PRIu64, c, got,
                      cases[c].want);
    }
    bg_audit_close(log);
}
END_TEST

/* Criteria as text: each sets its field; a bad one is refused naming the caller's name
 * for it and leaves the filter as it was; a date as until takes the whole day. */
START_TEST(filter_from_text)
{
    bg_audit_filter f;
    memset(&f, 0, sizeof f);
    bg_err err = {0};
    ck_assert_int_eq(bg_audit_filter_set(&f, BG_AUDIT_CRIT_REQUEST, "request",
                                         "00112233445566778899aabbccddeeff", &err),
                     BG_OK);
    ck_assert(f.has_request_id && f.request_id[1] == 0x11 && f.request_id[15] == 0xff);
    ck_assert_int_eq(bg_audit_filter_set(&f, BG_AUDIT_CRIT_PEER, "peer", "440300", &err), BG_OK);
    ck_assert_str_eq(f.peer, "440300");
    ck_assert_int_eq(bg_audit_filter_set(&f, BG_AUDIT_CRIT_AUTH_REF, "auth_ref", "abCD", &err),
                     BG_OK);
    ck_assert(f.has_authorisation_ref && f.authorisation_ref_len == 2);
    ck_assert_int_eq(bg_audit_filter_set(&f, BG_AUDIT_CRIT_SINCE, "since", "86400", &err), BG_OK);
    ck_assert(f.has_since && f.since_ms == 86400000);
    ck_assert_int_eq(bg_audit_filter_set(&f, BG_AUDIT_CRIT_UNTIL, "until", "1970-01-02", &err),
                     BG_OK);
    ck_assert(f.has_until && f.until_ms == 2 * 86400000LL - 1);
    static const struct {
        bg_audit_crit c;
        const char *name, *s;
    } bad[] = {
        {BG_AUDIT_CRIT_REQUEST, "request", "ffeeddccbbaa99887766554433221"},
        {BG_AUDIT_CRIT_REQUEST, "--request", "ffeeddccbbaa998877665544332211fg"},
        {BG_AUDIT_CRIT_PEER, "peer", "44030"},
        {BG_AUDIT_CRIT_PEER, "peer", "44030x"},
        {BG_AUDIT_CRIT_PURPOSE, "purpose", ""},
        {BG_AUDIT_CRIT_AUTH_REF, "auth_ref", "123"},
        {BG_AUDIT_CRIT_AUTH_REF, "auth_ref", ""},
        {BG_AUDIT_CRIT_SINCE, "since", "yesterday"},
        {BG_AUDIT_CRIT_SINCE, "since", "99999999999999999999"},
        {BG_AUDIT_CRIT_UNTIL, "until", "1970-01-01T00:00:00Z"}, /* before since */
    };
    bg_audit_filter before = f;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        bg_audit_filter g = before;
        ck_assert_int_eq(bg_audit_filter_set(&g, bad[i].c, bad[i].name, bad[i].s, &err), BG_EINVAL);
        ck_assert_msg(strncmp(err.msg, bad[i].name, strlen(bad[i].name)) == 0,
                      "'%s' does not name %s", err.msg, bad[i].name);
        ck_assert_msg(memcmp(&g, &before, sizeof g) == 0, "case %zu changed the filter", i);
    }
}
END_TEST

/* A federation for bundles: a CA, three cities (440300 keeps the log, 440100 witnesses
 * it, 440600 is CA-issued but not in the roster), a second certificate of 440300, and
 * rosters: the real one, one without 440100, one pinning 440300's other certificate. */
typedef struct bcity {
    EVP_PKEY *key;
    X509 *cert;
    uint8_t *der;
    size_t der_len;
    uint8_t fp[BG_SIG_FP_LEN];
} bcity;

typedef struct bfix {
    char audit[PATH_MAX];
    bcity sz, gz, fs, sz2;
    bg_trust *trust, *trust_revoked;
    bg_roster *roster, *roster_no_gz, *roster_sz2;
    bg_audit_log *log;
    bg_audit_witness *w;
    bg_audit_head h1, h2;
    uint8_t rid[BG_AUDIT_REQUEST_ID_LEN];
} bfix;

static void
bcity_make(bg_pki_ca *ca, const char *code, bcity *c)
{
    bg_err err = {0};
    X509_REQ *req = NULL;
    time_t now = time(NULL);
    ck_assert_int_eq(bg_pki_key_generate(&c->key, &err), BG_OK);
    ck_assert_int_eq(bg_pki_csr_make(c->key, code, code, &req, &err), BG_OK);
    ck_assert_msg(bg_pki_ca_issue(ca, req, now - 60, now + 86400, &c->cert, &err) == BG_OK, "%s",
                  err.msg);
    ck_assert_int_eq(bg_sig_fingerprint(c->cert, c->fp, &err), BG_OK);
    ck_assert_int_eq(bg_pki_cert_to_der(c->cert, &c->der, &c->der_len, &err), BG_OK);
    X509_REQ_free(req);
}

static bg_roster *
bfix_roster(const bcity *gz, const bcity *sz, uint64_t serial)
{
    char text[2048], g[BG_SIG_FP_HEX_LEN + 1], s[BG_SIG_FP_HEX_LEN + 1], gm[600] = "";
    bg_sig_fp_hex(sz->fp, s);
    if (gz != NULL) {
        bg_sig_fp_hex(gz->fp, g);
        snprintf(gm, sizeof gm,
                 "[member 440100]\nname = Guangzhou\nendpoint = tls+tcp://127.0.0.1:7501\n"
                 "fingerprint = %s\nlists = serious-dishonesty\nscale = ABCD=A,B,C,D\n"
                 "grade_map = A:1, B:2, C:3, D:4\n",
                 g);
    }
    snprintf(text, sizeof text,
             "[federation]\nname = Greater Bay Area Credit Federation\nserial = %" PRIu64 "\n"
             "max_message_bytes = 4194304\ncommon_scale = 1,2,3,4\n"
             "[purpose supervision]\nneeds_authorisation = false\n%s"
             "[member 440300]\nname = Shenzhen\nendpoint = tls+tcp://127.0.0.1:7502\n"
             "fingerprint = %s\nlists = serious-dishonesty\nscale = ABCD=A,B,C,D\n"
             "grade_map = A:1, B:2, C:3, D:4\n",
             serial, gm, s);
    bg_roster *r = NULL;
    bg_err err = {0};
    ck_assert_msg(bg_roster_parse_ini_text(text, strlen(text), scratch, "roster.ini", NULL, &r,
                                           &err) == BG_OK,
                  "%s", err.msg);
    return r;
}

/* The log of 440300: 12 leaves, the exchange rid at 2, 3, 6, 7; heads at 8 (h1) and
 * 12 (h2); 440100's cosignature of h2 received and its certificate kept. */
static void
bfix_log(bfix *f)
{
    bg_err err = {0};
    ck_assert_int_eq(bg_audit_open(&f->log, f->audit, "440300", BG_AUDIT_CREATE, NULL, &err),
                     BG_OK);
    memset(f->rid, 0x7e, sizeof f->rid);
    for (uint64_t i = 0; i < 12; i++) {
        bg_audit_event ev = event(i, 0);
        if (i == 2 || i == 3 || i == 6 || i == 7)
            memcpy(ev.request_id, f->rid, sizeof f->rid);
        ck_assert_int_eq(bg_audit_append(f->log, &ev, NULL, &err), BG_OK);
        if (i == 7)
            ck_assert_int_eq(bg_audit_sign_head(f->log, f->sz.key, 1760000100000LL, &f->h1, &err),
                             BG_OK);
    }
    ck_assert_int_eq(bg_audit_sign_head(f->log, f->sz.key, 1760000200000LL, &f->h2, &err), BG_OK);
    ck_assert_int_eq(bg_audit_witness_open(&f->w, f->audit, "440300", 0, NULL, &err), BG_OK);
    bg_audit_cosig c;
    ck_assert_int_eq(bg_audit_cosig_make(f->gz.key, "440100", &f->h2, 1760000201000LL, &c, &err),
                     BG_OK);
    ck_assert_int_eq(bg_audit_witness_add_received(f->w, &c, &err), BG_OK);
    ck_assert_int_eq(bg_audit_cert_keep(f->audit, "440100", f->gz.der, f->gz.der_len, &err), BG_OK);
}

static void
bfix_up(bfix *f)
{
    memset(f, 0, sizeof *f);
    const char *root = fresh_dir("bundle");
    bg_err err = {0};
    bg_pki_ca *ca = NULL;
    ck_assert_int_eq(bg_pki_ca_init(file_in(root, "ca"), NULL, 3650, &err), BG_OK);
    ck_assert_int_eq(bg_pki_ca_open(&ca, file_in(root, "ca"), &err), BG_OK);
    bcity_make(ca, "440300", &f->sz);
    bcity_make(ca, "440100", &f->gz);
    bcity_make(ca, "440600", &f->fs);
    bcity_make(ca, "440300", &f->sz2);
    time_t now = time(NULL);
    X509_CRL *crl = NULL;
    ck_assert_int_eq(bg_trust_new(&f->trust, bg_pki_ca_cert(ca), NULL, 0, &err), BG_OK);
    ck_assert_int_eq(bg_pki_ca_revoke(ca, "440100", NULL, now - 30, NULL, &err), BG_OK);
    ck_assert_int_eq(bg_pki_ca_crl(ca, now, 86400, &crl, &err), BG_OK);
    ck_assert_int_eq(bg_trust_new(&f->trust_revoked, bg_pki_ca_cert(ca), crl, 0, &err), BG_OK);
    X509_CRL_free(crl);
    bg_pki_ca_close(ca);
    f->roster = bfix_roster(&f->gz, &f->sz, 3);
    f->roster_no_gz = bfix_roster(NULL, &f->sz, 4);
    f->roster_sz2 = bfix_roster(&f->gz, &f->sz2, 5);
    snprintf(f->audit, sizeof f->audit, "%s/audit", root);
    bfix_log(f);
}

static void
bcity_free(bcity *c)
{
    EVP_PKEY_free(c->key);
    X509_free(c->cert);
    OPENSSL_free(c->der);
}

static void
bfix_down(bfix *f)
{
    bg_audit_witness_close(f->w);
    bg_audit_close(f->log);
    bg_roster_free(f->roster);
    bg_roster_free(f->roster_no_gz);
    bg_roster_free(f->roster_sz2);
    bg_trust_free(f->trust);
    bg_trust_free(f->trust_revoked);
    bcity_free(&f->sz);
    bcity_free(&f->gz);
    bcity_free(&f->fs);
    bcity_free(&f->sz2);
}

static bg_audit_bundle *
bfix_build(bfix *f, const bcity *current, char note[BG_ERR_MSG_MAX])
{
    bg_audit_bundle_src src = {.log = f->log,
                               .witness = f->w,
                               .dir = f->audit,
                               .cert = current ? current->der : NULL,
                               .cert_len = current ? current->der_len : 0};
    bg_audit_bundle *b = NULL;
    bg_err err = {0};
    ck_assert_msg(bg_audit_bundle_build(&src, f->rid, &b, note, &err) == BG_OK, "%s", err.msg);
    return b;
}

/* Encoded and decoded again: what a verifier receives. */
static bg_audit_bundle *
roundtrip(const bg_audit_bundle *b, uint8_t **bytes, size_t *len)
{
    bg_err err = {0};
    ck_assert_int_eq(bg_audit_bundle_encode(b, bytes, len, &err), BG_OK);
    bg_audit_bundle *d = NULL;
    ck_assert_msg(bg_audit_bundle_decode(*bytes, *len, &d, &err) == BG_OK, "%s", err.msg);
    return d;
}

/* The bundle of one exchange: its four leaves, the first head covering them (size 8),
 * the witness's cosignature on the later head (12) with the consistency proof; it
 * verifies before and after encoding, encodes to the same bytes, and holds nothing but
 * the exchange's leaves. Without the witness's kept certificate the cosignature is left
 * out with a note; after a rotation the kept certificate of the city still signs. */
START_TEST(bundle_build_verify)
{
    bfix f;
    bfix_up(&f);
    char note[BG_ERR_MSG_MAX];
    bg_audit_bundle *b = bfix_build(&f, &f.sz, note);
    ck_assert_uint_eq(b->n_leaves, 4);
    ck_assert_uint_eq(b->leaves[0].index, 2);
    ck_assert_uint_eq(b->leaves[3].index, 7);
    ck_assert_uint_eq(b->head.size, 8);
    ck_assert_uint_eq(b->n_cosigs, 1);
    ck_assert_str_eq(b->cosigs[0].cosig.witness, "440100");
    ck_assert_uint_eq(b->cosigs[0].cosig.head.size, 12);
    ck_assert_uint_gt(b->cosigs[0].consistency_len, 0);
    ck_assert_str_eq(note, "");
    bg_audit_bundle_report rep;
    bg_err err = {0};
    ck_assert_msg(bg_audit_bundle_verify(b, f.trust, f.roster, time(NULL), &rep, &err) == BG_OK,
                  "%s", err.msg);
    ck_assert_uint_eq(rep.leaves, 4);
    ck_assert_uint_eq(rep.witnesses, 1);
    ck_assert_str_eq(rep.witness[0], "440100");
    ck_assert_uint_eq(rep.witness_size[0], 12);
    uint8_t *bytes = NULL, *again = NULL;
    size_t len = 0, len2 = 0;
    bg_audit_bundle *d = roundtrip(b, &bytes, &len);
    ck_assert_msg(bg_audit_bundle_verify(d, f.trust, f.roster, time(NULL), &rep, &err) == BG_OK,
                  "%s", err.msg);
    ck_assert_int_eq(bg_audit_bundle_encode(d, &again, &len2, &err), BG_OK);
    ck_assert(len2 == len && memcmp(again, bytes, len) == 0);
    bg_audit_bundle_free(d);
    free(bytes);
    free(again);
    bg_audit_bundle_free(b);

    /* A rotation: city.crt is the new certificate, the heads were signed with the old. */
    ck_assert_int_eq(bg_audit_cert_keep(f.audit, "440300", f.sz.der, f.sz.der_len, &err), BG_OK);
    b = bfix_build(&f, &f.sz2, note);
    ck_assert(b->cert_len == f.sz.der_len && memcmp(b->cert, f.sz.der, b->cert_len) == 0);
    bg_audit_bundle_free(b);
    /* No kept certificate of the witness: left out, said why. */
    char path[PATH_MAX + 128], hex[BG_SIG_FP_HEX_LEN + 1];
    bg_sig_fp_hex(f.gz.fp, hex);
    snprintf(path, sizeof path, "%s/certs/440100-%s.der", f.audit, hex);
    ck_assert_int_eq(unlink(path), 0);
    b = bfix_build(&f, &f.sz, note);
    ck_assert_uint_eq(b->n_cosigs, 0);
    ck_assert_has(note, "no kept certificate of witness 440100");
    bg_audit_bundle_free(b);
    /* Nothing of another request; no head yet covering new leaves. */
    bg_audit_bundle_src src = {.log = f.log, .witness = f.w, .dir = f.audit};
    uint8_t none[BG_AUDIT_REQUEST_ID_LEN] = {0};
    ck_assert_int_eq(bg_audit_bundle_build(&src, none, &b, note, &err), BG_ENOTFOUND);
    ck_assert_has(err.msg, "no leaf of 440300's log carries request id");
    bg_audit_event ev = event(12, 0);
    memcpy(ev.request_id, f.rid, sizeof f.rid);
    ck_assert_int_eq(bg_audit_append(f.log, &ev, NULL, &err), BG_OK);
    ck_assert_int_eq(bg_audit_bundle_build(&src, f.rid, &b, note, &err), BG_ENOTFOUND);
    ck_assert_has(err.msg, "no signed tree head covers leaf 12 yet");
    bfix_down(&f);
}
END_TEST

/* verify must fail with msg; b is freed. */
static void
refused(bfix *f, bg_audit_bundle *b, const bg_roster *r, bg_trust *t, const char *msg)
{
    bg_err err = {0};
    ck_assert_int_eq(
        bg_audit_bundle_verify(b, t ? t : f->trust, r ? r : f->roster, time(NULL), NULL, &err),
        BG_ECRYPTO);
    ck_assert_has(err.msg, msg);
    bg_audit_bundle_free(b);
}

/* A fresh decoded copy of the good bundle (its bytes in *bytes, *len). */
static bg_audit_bundle *
copy_of(const uint8_t *bytes, size_t len)
{
    bg_audit_bundle *d = NULL;
    bg_err err = {0};
    ck_assert_msg(bg_audit_bundle_decode(bytes, len, &d, &err) == BG_OK, "%s", err.msg);
    return d;
}

/* Each way of tampering with a bundle's leaves and head is refused, naming what failed:
 * a flipped byte of a leaf (in the encoded file), a wrong or short proof, a leaf of
 * another request, indexes out of order, a head signed by another key, another city's
 * certificate, a certificate the roster does not pin. */
START_TEST(bundle_tampered_leaves)
{
    bfix f;
    bfix_up(&f);
    bg_audit_bundle *b = bfix_build(&f, &f.sz, NULL), *d;
    uint8_t *bytes = NULL;
    size_t len = 0;
    bg_err err = {0};
    bg_audit_bundle_free(roundtrip(b, &bytes, &len));

    /* a byte of leaf 3's reason, flipped in the file: still a leaf, another hash */
    uint8_t *t = malloc(len);
    memcpy(t, bytes, len);
    uint8_t *at = memmem(t, len, "ok event 3", 10);
    ck_assert_ptr_nonnull(at);
    at[9] = '4';
    refused(&f, copy_of(t, len), NULL, NULL, "leaf 3 is not in the signed tree");
    free(t);
    d = copy_of(bytes, len);
    d->leaves[1].proof[0][5] ^= 1;
    refused(&f, d, NULL, NULL, "leaf 3 is not in the signed tree");
    d = copy_of(bytes, len);
    d->leaves[0].proof_len--;
    refused(&f, d, NULL, NULL, "too short");
    d = copy_of(bytes, len);
    d->request_id[0] ^= 1;
    refused(&f, d, NULL, NULL, "leaf 2 is of request 7e7e");
    d = copy_of(bytes, len);
    d->leaves[2].index = 3;
    refused(&f, d, NULL, NULL, "indexes must increase");

    /* the head signed by another key; the bundle carrying another city's certificate */
    d = copy_of(bytes, len);
    ck_assert_int_eq(bg_audit_head_make(key_b, "440300", d->head.size, d->head.root,
                                        d->head.timestamp_ms, &d->head, &err),
                     BG_OK);
    refused(&f, d, NULL, NULL,
            "does not verify with 440300's certificate (signed by another key?)");
    d = copy_of(bytes, len);
    free(d->cert);
    d->cert = malloc(f.gz.der_len);
    memcpy(d->cert, f.gz.der, f.gz.der_len);
    d->cert_len = f.gz.der_len;
    refused(&f, d, NULL, NULL, "the log's city: the certificate of 440300");
    refused(&f, copy_of(bytes, len), f.roster_sz2, NULL, "is not the one the roster pins");
    free(bytes);
    bg_audit_bundle_free(b);
    bfix_down(&f);
}
END_TEST

/* And with its cosignatures: a witness not in the roster, a revoked witness, a wrong
 * consistency proof, a cosignature by a non-member, by another key under the witness's
 * name, on a smaller head, by the city itself, twice by one witness. */
START_TEST(bundle_tampered_cosignatures)
{
    bfix f;
    bfix_up(&f);
    bg_audit_bundle *b = bfix_build(&f, &f.sz, NULL), *d;
    uint8_t *bytes = NULL;
    size_t len = 0;
    bg_err err = {0};
    bg_audit_bundle_free(roundtrip(b, &bytes, &len));
    refused(&f, copy_of(bytes, len), f.roster_no_gz, NULL,
            "cosignature 1 (by 440100): 440100 is not a member of the roster");
    refused(&f, copy_of(bytes, len), NULL, f.trust_revoked, "cosignature 1 (by 440100)");
    d = copy_of(bytes, len);
    d->cosigs[0].consistency[0][0] ^= 1;
    refused(&f, d, NULL, NULL, "is not shown to extend the bundle's");
    /* a second cosignature, by 440600 (CA-issued, not in the roster) */
    bg_audit_cosig c;
    d = copy_of(bytes, len);
    ck_assert_int_eq(bg_audit_cosig_make(f.fs.key, "440600", &f.h1, 1760000300000LL, &c, &err),
                     BG_OK);
    d->cosigs[1].cosig = c;
    d->cosigs[1].cert = malloc(f.fs.der_len);
    memcpy(d->cosigs[1].cert, f.fs.der, f.fs.der_len);
    d->cosigs[1].cert_len = f.fs.der_len;
    d->n_cosigs = 2;
    refused(&f, d, NULL, NULL, "cosignature 2 (by 440600): 440600 is not a member of the roster");
    /* the witness's key, its name on someone else's cosignature */
    d = copy_of(bytes, len);
    ck_assert_int_eq(bg_audit_cosig_make(key_b, "440100", &f.h2, 1760000301000LL, &c, &err), BG_OK);
    d->cosigs[0].cosig = c;
    refused(&f, d, NULL, NULL, "cosignature 1 (by 440100): cosignature by 440100");
    d = copy_of(bytes, len);
    bg_audit_head small;
    bg_audit_hash r;
    ck_assert_int_eq(bg_audit_root(f.log, 4, r, &err), BG_OK);
    ck_assert_int_eq(bg_audit_head_make(f.sz.key, "440300", 4, r, 1760000000000LL, &small, &err),
                     BG_OK);
    ck_assert_int_eq(bg_audit_cosig_make(f.gz.key, "440100", &small, 1760000302000LL, &c, &err),
                     BG_OK);
    d->cosigs[0].cosig = c;
    refused(&f, d, NULL, NULL, "smaller than the bundle's 8");
    d = copy_of(bytes, len);
    ck_assert_int_eq(bg_audit_cosig_make(f.sz.key, "440300", &f.h2, 1760000303000LL, &c, &err),
                     BG_OK);
    d->cosigs[0].cosig = c;
    refused(&f, d, NULL, NULL, "a city does not witness its own log");
    d = copy_of(bytes, len);
    d->cosigs[1] = d->cosigs[0];
    d->cosigs[1].cert = malloc(d->cosigs[0].cert_len);
    memcpy(d->cosigs[1].cert, d->cosigs[0].cert, d->cosigs[0].cert_len);
    d->n_cosigs = 2;
    refused(&f, d, NULL, NULL, "a second cosignature by 440100");
    free(bytes);
    bg_audit_bundle_free(b);
    bfix_down(&f);
}
END_TEST

/* The decoder takes outside bytes: every truncation, an unknown field, a bad version,
 * no bytes and more than the bound refused with a message, never a crash; each byte
 * with a bit flipped either refused or, if it decodes, refused by verify (no change
 * goes unnoticed); no leaves is not encoded. */
START_TEST(bundle_decoder_bounds)
{
    bfix f;
    bfix_up(&f);
    bg_audit_bundle *b = bfix_build(&f, &f.sz, NULL), *d = NULL;
    uint8_t *bytes = NULL;
    size_t len = 0;
    bg_err err = {0};
    bg_audit_bundle_free(roundtrip(b, &bytes, &len));
    /* A cut at the start of the cosignatures (the last field) leaves a bundle that still
     * holds, with no witness: what --min-witnesses is for. */
    for (size_t n = 0; n < len; n++) {
        if (bg_audit_bundle_decode(bytes, n, &d, &err) == BG_OK) {
            ck_assert(d->n_cosigs == 0 || bg_audit_bundle_verify(d, f.trust, f.roster, time(NULL),
                                                                 NULL, &err) != BG_OK);
            bg_audit_bundle_free(d);
        }
    }
    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit += 7) {
            bytes[i] ^= (uint8_t)(1u << bit);
            if (bg_audit_bundle_decode(bytes, len, &d, &err) == BG_OK) {
                ck_assert_msg(
                    bg_audit_bundle_verify(d, f.trust, f.roster, time(NULL), NULL, &err) != BG_OK,
                    "byte %zu bit %d changed and still verifies", i, bit);
                bg_audit_bundle_free(d);
            }
            bytes[i] ^= (uint8_t)(1u << bit);
        }
    }
    uint8_t *more = malloc(len + 3);
    memcpy(more, bytes, len);
    memcpy(more + len, "\x48\x01", 2); /* field 9, varint 1 */
    ck_assert_int_eq(bg_audit_bundle_decode(more, len + 2, &d, &err), BG_EPROTO);
    ck_assert_has(err.msg, "unknown fields");
    ck_assert_int_eq(more[0], 0x08); /* version is field 1: 0x08 0x01 */
    more[1] = 2;
    ck_assert_int_eq(bg_audit_bundle_decode(more, len, &d, &err), BG_EPROTO);
    ck_assert_has(err.msg, "version 2");
    free(more);
    ck_assert_int_eq(bg_audit_bundle_decode(bytes, 0, &d, &err), BG_EPROTO);
    ck_assert_int_eq(bg_audit_bundle_decode(bytes, BG_AUDIT_BUNDLE_MAX + 1, &d, &err), BG_ELIMIT);
    b->n_leaves = 0;
    ck_assert_int_eq(bg_audit_bundle_encode(b, &more, &len, &err), BG_EINVAL);
    free(bytes);
    bg_audit_bundle_free(b);
    bfix_down(&f);
}
END_TEST

/* An answer logged, then not handed to the transport: its own leaf kind, inbound. */
START_TEST(leaf_answer_not_sent)
{
    bg_audit_event ev = event(4, 0);
    ev.kind = BG_AUDIT_ANSWER_NOT_SENT;
    ev.has_answer_digest = false;
    ev.outcome = 103;
    uint8_t leaf[BG_AUDIT_LEAF_MAX];
    size_t len = 0;
    bg_err err = {0};
    ck_assert_int_eq(bg_audit_leaf_encode(&ev, "440100", leaf, &len, &err), BG_OK);
    bg_audit_event back;
    ck_assert_int_eq(bg_audit_leaf_decode(leaf, len, &back, &err), BG_OK);
    ck_assert_int_eq(back.kind, BG_AUDIT_ANSWER_NOT_SENT);
    ck_assert_int_eq(back.direction, BG_AUDIT_INBOUND);
    ck_assert_str_eq(bg_audit_kind_name(BG_AUDIT_ANSWER_NOT_SENT), "answer-not-sent");
    ev.kind = BG_AUDIT_ANSWER_NOT_SENT + 1;
    ck_assert_int_eq(bg_audit_leaf_encode(&ev, "440100", leaf, &len, &err), BG_EINVAL);
}
END_TEST

static Suite *
audit_suite(void)
{
    Suite *s = suite_create("audit");
    TCase *hash = tcase_create("hash");
    tcase_set_timeout(hash, 120);
    tcase_add_test(hash, hash_known_answers);
    tcase_add_test(hash, leaf_answer_not_sent);
    tcase_add_test(hash, log_roots_match_reference);
    tcase_add_test(hash, inclusion_proofs_every_size);
    tcase_add_test(hash, consistency_proofs_every_size);
    suite_add_tcase(s, hash);

    TCase *store = tcase_create("store");
    tcase_set_timeout(store, 120);
    tcase_add_test(store, reopen_gives_identical_roots);
    tcase_add_test(store, torn_tail_repaired_at_every_offset);
    tcase_add_test(store, middle_corruption_refused_with_offset);
    tcase_add_test(store, kill9_mid_append);
    tcase_add_test(store, bad_events_refused);
    tcase_add_test(store, concurrent_appends);
    tcase_add_test(store, group_commit_many_threads);
    tcase_add_test(store, sync_failure_fails_waiters);
    tcase_add_test(store, write_failure_cut_back);
    tcase_add_test(store, kill9_concurrent_appends);
    suite_add_tcase(s, store);

    TCase *heads = tcase_create("heads");
    tcase_set_timeout(heads, 120);
    tcase_add_test(heads, forged_heads_refused);
    tcase_add_test(heads, maybe_sign_cadence);
    tcase_add_test(heads, witness_detects_rewritten_history);
    tcase_add_test(heads, witness_refuses_shrinking_tree);
    suite_add_tcase(s, heads);

    TCase *bundle = tcase_create("bundle");
    tcase_set_timeout(bundle, 120);
    tcase_add_test(bundle, find_filters);
    tcase_add_test(bundle, filter_from_text);
    tcase_add_test(bundle, bundle_build_verify);
    tcase_add_test(bundle, bundle_tampered_leaves);
    tcase_add_test(bundle, bundle_tampered_cosignatures);
    tcase_add_test(bundle, bundle_decoder_bounds);
    suite_add_tcase(s, bundle);

    TCase *cli = tcase_create("cli");
    tcase_set_timeout(cli, 120);
    tcase_add_test(cli, cli_audit_commands);
    suite_add_tcase(s, cli);
    return s;
}

int
main(void)
{
    mkdir(BG_TEST_TMPDIR, 0700);
    snprintf(scratch, sizeof scratch, "%s/audit.XXXXXX", BG_TEST_TMPDIR);
    if (mkdtemp(scratch) == NULL) {
        perror("mkdtemp");
        return EXIT_FAILURE;
    }
    bg_err err = {0};
    if (bg_pki_key_generate(&key_a, &err) != BG_OK || bg_pki_key_generate(&key_b, &err) != BG_OK ||
        bg_pki_key_generate(&key_w, &err) != BG_OK) {
        fprintf(stderr, "test_audit: %s\n", err.msg);
        return EXIT_FAILURE;
    }
    SRunner *sr = srunner_create(audit_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    EVP_PKEY_free(key_a);
    EVP_PKEY_free(key_b);
    EVP_PKEY_free(key_w);
    nftw(scratch, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    ERR_clear_error();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
