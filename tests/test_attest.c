/*
 * test_attest.c - evaluation attestations and status lists (gateway/attest, and the
 * per-entry evidence of mpc/snapshot): Merkle inclusion proofs against real snapshots of
 * many sizes; a real graded snapshot of Shenzhen (440300) under a real federation CA,
 * opened by an asker through the PSI steps, turned into an attestation that verifies; then
 * forgeries, each refused with its own reason; status lists; repair; the CLI.
 *
 * main() makes the fixture once: a CA and a rogue CA with the same name, city keys and
 * certificates for Guangzhou, Shenzhen and Foshan (and a second, unpinned Shenzhen one),
 * CRLs before and after revoking Shenzhen, a roster (and one without Shenzhen), and the
 * snapshot. Tests only read it. BG_ATTEST_SMALL=1 thins the exhaustive loops (valgrind).
 */
#define _GNU_SOURCE /* nftw's FTW_DEPTH/FTW_PHYS */
#include <check.h>
#include <ftw.h>
#include <limits.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include <openssl/err.h>

#include "certs/pki.h"
#include "certs/sig.h"
#include "certs/trust.h"
#include "domain/date.h"
#include "gateway/attest/attest.h"
#include "mpc/oprf.h"
#include "mpc/psi.h"
#include "mpc/snapshot.h"
#include "peers/roster.h"
#include "peers/roster_ini.h"
#include "proto/attest.pb-c.h"

#define UL 18U
#define NSNAP 1500U /* two 1024-leaf blocks, the second partial */
#define TARGET 777U /* the enterprise the asker holds */

static bool small_sizes;
static char scratch[PATH_MAX];

struct city {
    EVP_PKEY *key;
    X509 *cert;
    uint8_t fp[BG_SIG_FP_LEN];
    uint8_t *der;
    size_t der_len;
};

static X509 *ca_cert;
static X509_CRL *crl_good, *crl_revoked;
static struct city gz, sz, fs, sz2, rogue_sz;
static bg_roster *roster, *roster_no_sz;
static uint8_t *roster_pb;
static size_t roster_pb_len;
static uint8_t sk[BG_OPRF_SCALARBYTES];
static bg_snap *snap;
static uint8_t digest_sig[BG_SIG_MAX];
static size_t digest_sig_len;
static int32_t today;
static time_t now0;

/* ---- helpers ---- */

static uint64_t
mix(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

/* "91440300" + 10 base-31 digits of mix(id): distinct ids give distinct inputs. */
static void
uscc(uint64_t id, uint8_t out[UL])
{
    static const char al[] = "0123456789ABCDEFGHJKLMNPQRTUWXY";
    uint64_t v = mix(id);
    memcpy(out, "91440300", 8);
    for (int i = UL - 1; i >= 8; i--) {
        out[i] = (uint8_t)al[v % 31];
        v /= 31;
    }
}

static const char *const sz_grades[] = {"AAA", "AA", "A", "B", "C"};

static void
payload_of(uint64_t id, bg_snap_payload *p)
{
    memset(p, 0, sizeof *p);
    snprintf(p->grade, sizeof p->grade, "%s", sz_grades[id == TARGET ? 3 : id % 5]);
    snprintf(p->scale, sizeof p->scale, "SZ5");
    p->evaluated_at = today - 100;
    p->valid_until = today + 10; /* inside the certificates' 30 days */
    p->listed_at = BG_SNAP_NO_DATE;
    p->expires_at = BG_SNAP_NO_DATE;
    p->serial = 1000 + id;
}

static const char *
at(const char *name)
{
    static char bufs[8][PATH_MAX];
    static unsigned next;
    char *b = bufs[next++ % 8];
    int n = snprintf(b, PATH_MAX, "%s/%s", scratch, name);
    if (n < 0 || n >= PATH_MAX)
        abort(); /* the scratch path is short; never here */
    return b;
}

#define ck_assert_has(msg, part)                                                                   \
    ck_assert_msg(strstr((msg), (part)) != NULL, "message '%s' lacks '%s'", (msg), (part))

/* A status list of issuer signed by c, revoking serials (revoked at now0). */
static uint8_t *
status_of(const char *issuer, const struct city *c, uint64_t number, const uint64_t *serials,
          size_t n, size_t *len)
{
    bg_attest_revoked r[8] = {{0}}; /* n may be 0: the unused rest is never read */
    ck_assert_uint_le(n, 8);
    for (size_t i = 0; i < n; i++) {
        r[i].serial = serials[i];
        r[i].revoked_at = (int64_t)now0 - 10;
    }
    uint8_t *b = NULL;
    bg_err err = {0};
    ck_assert_msg(bg_attest_status_sign(issuer, number, (int64_t)now0 - 60, r, n, c->key, c->cert,
                                        &b, len, &err) == BG_OK,
                  "%s", err.msg);
    return b;
}

static bg_trust *
trust_with(X509_CRL *crl)
{
    bg_trust *t = NULL;
    bg_err err = {0};
    ck_assert_msg(bg_trust_new(&t, ca_cert, crl, 0, &err) == BG_OK, "%s", err.msg);
    return t;
}

/* The asker's side: PSI for the target's USCC, then its opening key; builds the attestation. */
static void
attest_target(bg_attest *a)
{
    bg_err err = {0};
    uint8_t in[UL];
    uscc(TARGET, in);
    const uint8_t *ptr = in;
    size_t il = UL;
    bg_psi_query *q = NULL;
    uint8_t blinded[32], evaluated[32];
    ck_assert_int_eq(bg_psi_query_new(&q, BG_PSI_GRADED, &ptr, &il, 1, &err), BG_OK);
    ck_assert_int_eq(bg_psi_prepare(q, 0, 1, blinded, 1, &err), BG_OK);
    ck_assert_int_eq(bg_psi_evaluate(evaluated, sk, blinded, 32, 16, 1, &err), BG_OK);
    ck_assert_msg(bg_psi_finish(q, snap, 0, 1, evaluated, 32, 1, &err) == BG_OK, "%s", err.msg);
    int matched = 0;
    bg_snap_record rec;
    ck_assert_int_eq(bg_psi_result(q, 0, &matched, &rec, &err), BG_OK);
    ck_assert_int_eq(matched, 1);
    bg_psi_query_free(q);

    /* The opening key: what psi.c would keep per graded match (N = k*H(x) unblinded). */
    uint8_t blind[32], n_el[32], tag[BG_SNAP_TAGBYTES], key[BG_SNAP_OPENKEYBYTES];
    ck_assert_int_eq(bg_oprf_blind(blind, blinded, in, UL, &err), BG_OK);
    ck_assert_int_eq(bg_oprf_evaluate(evaluated, sk, blinded, &err), BG_OK);
    ck_assert_int_eq(bg_oprf_unblind(n_el, blind, evaluated, &err), BG_OK);
    bg_snap_tag(tag, n_el);
    size_t first = bg_snap_find(snap, tag, NULL), index = 0;
    ck_assert_uint_ne(first, BG_SNAP_NONE);
    bg_snap_record rec2;
    ck_assert_msg(bg_snap_open_key(snap, first, in, UL, n_el, &rec2, &index, key, &err) == BG_OK,
                  "%s", err.msg);
    ck_assert_int_eq(memcmp(&rec, &rec2, sizeof rec), 0);
    sodium_memzero(n_el, sizeof n_el);
    sodium_memzero(blind, sizeof blind);

    ck_assert_msg(bg_attest_build(a, "440300", snap, NULL, index, &rec, key, digest_sig,
                                  digest_sig_len, sz.der, sz.der_len, roster, &err) == BG_OK,
                  "%s", err.msg);
    sodium_memzero(key, sizeof key);
}

/* Verify with the defaults, expecting reason r and part in the message. */
static void
expect(const bg_attest *a, bg_trust *t, const bg_roster *r, const uint8_t *st, size_t st_len,
       const bg_attest_policy *pol, time_t now, bg_attest_reason want, const char *part)
{
    bg_attest_reason got = BG_ATTEST_INTERNAL;
    bg_err err = {0};
    int rc = bg_attest_verify(a, t, r, st, st_len, pol, now, &got, &err);
    ck_assert_msg(got == want, "reason %s, expected %s (%s)", bg_attest_reason_name(got),
                  bg_attest_reason_name(want), err.msg);
    ck_assert_int_eq(rc, want == BG_ATTEST_OK ? BG_OK : BG_ECRYPTO);
    if (part != NULL)
        ck_assert_has(err.msg, part);
}

/* ---- Merkle inclusion proofs ---- */

START_TEST(inclusion_proofs_verify_for_every_entry_of_every_size)
{
    bg_err err = {0};
    uint8_t path[BG_SNAP_PATH_MAX * 32];
    for (size_t n = 1; n <= 33; n++) {
        bg_snap_entry e[33];
        uint8_t in[33][UL];
        for (size_t i = 0; i < n; i++) {
            uscc(5000 + 100 * n + i, in[i]);
            e[i] = (bg_snap_entry){.input = in[i], .input_len = UL};
        }
        bg_snap *s = NULL;
        ck_assert_int_eq(bg_snap_build(&s, sk, "serious-dishonesty", 1, 1, 0, e, n, 1, &err),
                         BG_OK);
        bg_snap_info info;
        bg_snap_get_info(s, &info);
        uint8_t d[32];
        ck_assert_int_eq(bg_snap_digest_compute(info.list, 1, 1, n, 0, info.root, d, &err), BG_OK);
        ck_assert_int_eq(memcmp(d, info.digest, 32), 0);
        for (size_t i = 0; i < n; i++) {
            size_t pl = 0;
            ck_assert_int_eq(bg_snap_inclusion_proof(s, i, path, &pl, 1, &err), BG_OK);
            ck_assert_msg(bg_snap_inclusion_verify(bg_snap_tag_at(s, i), NULL, i, n, path, pl,
                                                   info.root, &err) == BG_OK,
                          "n %zu i %zu: %s", n, i, err.msg);
            /* Another index, or one hash more or fewer, does not verify. */
            if (n > 1)
                ck_assert_int_eq(bg_snap_inclusion_verify(bg_snap_tag_at(s, i), NULL, (i + 1) % n,
                                                          n, path, pl, info.root, NULL),
                                 BG_ECRYPTO);
            if (pl > 0)
                ck_assert_int_eq(bg_snap_inclusion_verify(bg_snap_tag_at(s, i), NULL, i, n, path,
                                                          pl - 1, info.root, NULL),
                                 BG_ECRYPTO);
            ck_assert_int_eq(bg_snap_inclusion_verify(bg_snap_tag_at(s, i), NULL, i, n, path,
                                                      pl + 1, info.root, NULL),
                             BG_ECRYPTO);
        }
        bg_snap_free(s);
    }
    ck_assert_int_eq(bg_snap_inclusion_verify(path, NULL, 3, 3, path, 0, path, NULL), BG_EINVAL);
}
END_TEST

START_TEST(prover_paths_across_blocks_equal_one_off_proofs)
{
    bg_err err = {0};
    bg_snap_info info;
    bg_snap_get_info(snap, &info);
    bg_snap_prover *p = NULL;
    ck_assert_int_eq(bg_snap_prover_new(&p, snap, 0, &err), BG_OK);
    uint8_t a[BG_SNAP_PATH_MAX * 32], b[BG_SNAP_PATH_MAX * 32];
    size_t step = small_sizes ? 97 : 7;
    size_t idx[] = {0, 1, 1023, 1024, 1025, NSNAP - 2, NSNAP - 1};
    for (size_t k = 0; k < sizeof idx / sizeof idx[0] + NSNAP / step; k++) {
        size_t i = k < sizeof idx / sizeof idx[0] ? idx[k] : (k * step) % NSNAP;
        size_t la = 0, lb = 0;
        ck_assert_int_eq(bg_snap_prover_path(p, i, a, &la, &err), BG_OK);
        ck_assert_int_eq(bg_snap_inclusion_verify(bg_snap_tag_at(snap, i),
                                                  bg_snap_sealed_at(snap, i), i, NSNAP, a, la,
                                                  info.root, &err),
                         BG_OK);
        if (k < sizeof idx / sizeof idx[0]) {
            ck_assert_int_eq(bg_snap_inclusion_proof(snap, i, b, &lb, 1, &err), BG_OK);
            ck_assert_uint_eq(la, lb);
            ck_assert_int_eq(memcmp(a, b, 32 * la), 0);
        }
    }
    ck_assert_int_eq(bg_snap_prover_path(p, NSNAP, a, &(size_t){0}, NULL), BG_EINVAL);
    bg_snap_prover_free(p);
}
END_TEST

/* ---- attestations ---- */

START_TEST(an_honest_attestation_verifies_and_round_trips)
{
    bg_attest *a = malloc(sizeof *a), *b = malloc(sizeof *b);
    attest_target(a);
    ck_assert_str_eq(a->grade, "B");
    ck_assert_str_eq(a->common_grade, "3");
    ck_assert_uint_eq(a->common_rank, 3);
    ck_assert_uint_eq(a->serial, 1000 + TARGET);
    uint8_t leaf[32];
    bg_snap_leaf_hash(leaf, bg_snap_tag_at(snap, a->index), bg_snap_sealed_at(snap, a->index));
    ck_assert_int_eq(memcmp(leaf, a->evidence, 32), 0);

    bg_trust *t = trust_with(crl_good);
    uint64_t other[] = {5, 7};
    size_t sl = 0;
    uint8_t *st = status_of("440300", &sz, 3, other, 2, &sl);
    expect(a, t, roster, st, sl, NULL, now0, BG_ATTEST_OK, NULL);

    uint8_t *bytes = NULL;
    size_t len = 0;
    bg_err err = {0};
    ck_assert_int_eq(bg_attest_encode(a, &bytes, &len, &err), BG_OK);
    ck_assert_int_eq(bg_attest_decode(bytes, len, b, &err), BG_OK);
    ck_assert_int_eq(memcmp(a, b, sizeof *a), 0);
    expect(b, t, roster, st, sl, NULL, now0, BG_ATTEST_OK, NULL);

    /* Every (third) single-byte change is refused, by the decoder or the verifier. */
    for (size_t i = 0; i < len; i += small_sizes ? 41 : 3) {
        bytes[i] ^= 0x5a;
        bg_attest_reason r = BG_ATTEST_OK;
        int rc = bg_attest_decode(bytes, len, b, NULL);
        if (rc == BG_OK)
            rc = bg_attest_verify(b, t, roster, st, sl, NULL, now0, &r, NULL);
        ck_assert_msg(rc != BG_OK, "byte %zu changed, still accepted", i);
        bytes[i] ^= 0x5a;
    }
    ck_assert_int_eq(bg_attest_decode(bytes, len - 1, b, NULL), BG_EPROTO);
    uint8_t big[BG_ATTEST_MAX_BYTES + 1] = {0};
    ck_assert_int_eq(bg_attest_decode(big, sizeof big, b, NULL), BG_ELIMIT);
    free(bytes);
    free(st);
    bg_trust_free(t);
    free(a);
    free(b);
}
END_TEST

/* bg_attest_verify_sibling: an attestation of the same signed snapshot as one verified in
 * full is checked for its own entry and serial; anything of another snapshot or issuer
 * goes back to a full check (BG_EINVAL). */
START_TEST(siblings_are_checked_for_their_own_entry)
{
    bg_attest *a = malloc(sizeof *a), *b = malloc(sizeof *b);
    attest_target(a);
    bg_trust *t = trust_with(crl_good);
    uint64_t none[] = {5};
    uint64_t revoked[] = {5, 1000 + TARGET};
    size_t sl = 0, sl2 = 0;
    uint8_t *st_bytes = status_of("440300", &sz, 3, none, 1, &sl);
    uint8_t *st2_bytes = status_of("440300", &sz, 4, revoked, 2, &sl2);
    bg_attest_status *st = NULL, *st2 = NULL;
    bg_attest_reason r = BG_ATTEST_INTERNAL;
    bg_err err = {0};
    ck_assert_int_eq(
        bg_attest_status_open(st_bytes, sl, t, roster, "440300", NULL, now0, &st, &r, &err), BG_OK);
    ck_assert_int_eq(
        bg_attest_status_open(st2_bytes, sl2, t, roster, "440300", NULL, now0, &st2, &r, &err),
        BG_OK);
    expect(a, t, roster, st_bytes, sl, NULL, now0, BG_ATTEST_OK, NULL);

    *b = *a;
    ck_assert_int_eq(bg_attest_verify_sibling(b, a, roster, st, now0, &r, &err), BG_OK);
    ck_assert_int_eq(r, BG_ATTEST_OK);
    /* its own entry is checked */
    snprintf(b->grade, sizeof b->grade, "AAA");
    ck_assert_int_eq(bg_attest_verify_sibling(b, a, roster, st, now0, &r, &err), BG_ECRYPTO);
    ck_assert_int_eq(r, BG_ATTEST_FIELD_MISMATCH);
    *b = *a;
    b->path[0][0] ^= 1;
    ck_assert_int_eq(bg_attest_verify_sibling(b, a, roster, st, now0, &r, &err), BG_ECRYPTO);
    ck_assert_int_eq(r, BG_ATTEST_BAD_INCLUSION);
    *b = *a;
    ck_assert_int_eq(bg_attest_verify_sibling(b, a, roster, st, now0 + 400 * 86400, &r, &err),
                     BG_ECRYPTO);
    ck_assert_int_eq(r, BG_ATTEST_EXPIRED);
    /* and its serial, against the list given */
    ck_assert_int_eq(bg_attest_verify_sibling(b, a, roster, st2, now0, &r, &err), BG_ECRYPTO);
    ck_assert_int_eq(r, BG_ATTEST_REVOKED);
    /* anything shared that differs: not a sibling, verify it in full */
    b->root[3] ^= 1;
    ck_assert_int_eq(bg_attest_verify_sibling(b, a, roster, st, now0, &r, &err), BG_EINVAL);
    *b = *a;
    b->signature[5] ^= 1;
    ck_assert_int_eq(bg_attest_verify_sibling(b, a, roster, st, now0, &r, &err), BG_EINVAL);
    *b = *a;
    b->epoch++;
    ck_assert_int_eq(bg_attest_verify_sibling(b, a, roster, st, now0, &r, &err), BG_EINVAL);
    bg_attest_status_free(st);
    bg_attest_status_free(st2);
    free(st_bytes);
    free(st2_bytes);
    bg_trust_free(t);
    free(a);
    free(b);
}
END_TEST

START_TEST(forgeries_are_refused_with_their_reason)
{
    bg_attest *good = malloc(sizeof *good), *a = malloc(sizeof *a);
    attest_target(good);
    bg_trust *t = trust_with(crl_good);
    size_t sl = 0;
    uint8_t *st = status_of("440300", &sz, 3, NULL, 0, &sl);
    bg_snap_info info;
    bg_snap_get_info(snap, &info);
    bg_err err = {0};

    /* Another city's key signs the digest; Shenzhen's certificate stays. */
    *a = *good;
    ck_assert_int_eq(bg_sig_sign(fs.key, BG_SIG_CTX_SNAPSHOT, info.digest, 32, a->signature,
                                 &a->signature_len, &err),
                     BG_OK);
    expect(a, t, roster, st, sl, NULL, now0, BG_ATTEST_BAD_SIGNATURE, "does not verify");
    /* ... and with Foshan's certificate: it names another city. */
    memcpy(a->cert, fs.der, fs.der_len);
    a->cert_len = fs.der_len;
    expect(a, t, roster, st, sl, NULL, now0, BG_ATTEST_CERT_NAME, "440600");
    /* A rogue CA's "440300" with its own key. */
    *a = *good;
    ck_assert_int_eq(bg_sig_sign(rogue_sz.key, BG_SIG_CTX_SNAPSHOT, info.digest, 32, a->signature,
                                 &a->signature_len, &err),
                     BG_OK);
    memcpy(a->cert, rogue_sz.der, rogue_sz.der_len);
    a->cert_len = rogue_sz.der_len;
    expect(a, t, roster, st, sl, NULL, now0, BG_ATTEST_CERT_CHAIN, NULL);
    /* A real but unpinned Shenzhen certificate. */
    *a = *good;
    ck_assert_int_eq(bg_sig_sign(sz2.key, BG_SIG_CTX_SNAPSHOT, info.digest, 32, a->signature,
                                 &a->signature_len, &err),
                     BG_OK);
    memcpy(a->cert, sz2.der, sz2.der_len);
    a->cert_len = sz2.der_len;
    expect(a, t, roster, st, sl, NULL, now0, BG_ATTEST_CERT_NOT_PINNED, "roster pins");
    /* The signature under another label (an envelope's) does not count. */
    *a = *good;
    ck_assert_int_eq(bg_sig_sign(sz.key, BG_SIG_CTX_ENVELOPE, info.digest, 32, a->signature,
                                 &a->signature_len, &err),
                     BG_OK);
    expect(a, t, roster, st, sl, NULL, now0, BG_ATTEST_BAD_SIGNATURE, NULL);

    /* Edited statement fields. */
    *a = *good;
    snprintf(a->grade, sizeof a->grade, "A");
    snprintf(a->common_grade, sizeof a->common_grade, "2");
    a->common_rank = 2;
    expect(a, t, roster, st, sl, NULL, now0, BG_ATTEST_FIELD_MISMATCH, "grade");
    *a = *good;
    snprintf(a->common_grade, sizeof a->common_grade, "1");
    a->common_rank = 1;
    expect(a, t, roster, st, sl, NULL, now0, BG_ATTEST_COMMON_MISMATCH, "rank 3");
    *a = *good;
    a->common_rank = 2;
    expect(a, t, roster, st, sl, NULL, now0, BG_ATTEST_COMMON_MISMATCH, NULL);
    *a = *good;
    a->uscc[17] = a->uscc[17] == 'X' ? 'Y' : 'X';
    expect(a, t, roster, st, sl, NULL, now0, BG_ATTEST_FIELD_MISMATCH, "uscc");
    *a = *good;
    a->valid_until += 365;
    expect(a, t, roster, st, sl, NULL, now0, BG_ATTEST_FIELD_MISMATCH, "valid_until");
    *a = *good;
    a->serial++;
    expect(a, t, roster, st, sl, NULL, now0, BG_ATTEST_FIELD_MISMATCH, "serial");

    /* The proof. */
    *a = *good;
    a->path[0][5] ^= 1;
    expect(a, t, roster, st, sl, NULL, now0, BG_ATTEST_BAD_INCLUSION, "does not verify");
    *a = *good;
    a->index = (a->index + 1) % a->count;
    expect(a, t, roster, st, sl, NULL, now0, BG_ATTEST_BAD_INCLUSION, NULL);
    *a = *good;
    a->path_len--;
    expect(a, t, roster, st, sl, NULL, now0, BG_ATTEST_BAD_INCLUSION, NULL);
    *a = *good;
    a->root[0] ^= 1; /* another root: not what was signed */
    expect(a, t, roster, st, sl, NULL, now0, BG_ATTEST_BAD_SIGNATURE, NULL);
    *a = *good;
    a->count++;
    expect(a, t, roster, st, sl, NULL, now0, BG_ATTEST_BAD_SIGNATURE, NULL);
    *a = *good;
    a->sealed[60] ^= 1;
    expect(a, t, roster, st, sl, NULL, now0, BG_ATTEST_EVIDENCE_MISMATCH, NULL);
    bg_snap_leaf_hash(a->evidence, a->tag, a->sealed);
    expect(a, t, roster, st, sl, NULL, now0, BG_ATTEST_BAD_INCLUSION, NULL);
    /* Another entry, genuinely included, with our opening key: does not open. */
    *a = *good;
    size_t j = (good->index + 1) % good->count;
    a->index = (uint32_t)j;
    memcpy(a->tag, bg_snap_tag_at(snap, j), BG_SNAP_TAGBYTES);
    memcpy(a->sealed, bg_snap_sealed_at(snap, j), BG_SNAP_SEALEDBYTES);
    bg_snap_leaf_hash(a->evidence, a->tag, a->sealed);
    ck_assert_int_eq(bg_snap_inclusion_proof(snap, j, &a->path[0][0], &a->path_len, 1, &err),
                     BG_OK);
    expect(a, t, roster, st, sl, NULL, now0, BG_ATTEST_BAD_OPENING, "does not open");
    *a = *good;
    a->opening_key[0] ^= 1;
    expect(a, t, roster, st, sl, NULL, now0, BG_ATTEST_BAD_OPENING, NULL);
    *a = *good;
    a->generation++; /* the ad binds the generation; the digest too */
    expect(a, t, roster, st, sl, NULL, now0, BG_ATTEST_BAD_SIGNATURE, NULL);

    /* Time (without a CRL, whose own validity would speak first), roster, CRL. */
    bg_trust *tn = trust_with(NULL);
    expect(good, tn, roster, st, sl, NULL, now0 + 11 * 86400, BG_ATTEST_EXPIRED, "valid until");
    expect(good, tn, roster, st, sl, NULL, now0 - 101 * 86400, BG_ATTEST_CERT_VALIDITY, NULL);
    bg_trust_free(tn);
    expect(good, t, roster_no_sz, st, sl, NULL, now0, BG_ATTEST_ISSUER_UNKNOWN, "440300");
    bg_trust *tr = trust_with(crl_revoked);
    expect(good, tr, roster, st, sl, NULL, now0, BG_ATTEST_CERT_REVOKED, "revoked");
    bg_trust_free(tr);

    free(st);
    bg_trust_free(t);
    free(good);
    free(a);
}
END_TEST

START_TEST(status_lists_revoke_and_are_checked)
{
    bg_attest *a = malloc(sizeof *a);
    attest_target(a);
    bg_trust *t = trust_with(crl_good);
    bg_err err = {0};
    size_t sl = 0;

    uint64_t rv[] = {3, 1000 + TARGET, 9};
    uint8_t *st = status_of("440300", &sz, 4, rv, 3, &sl);
    expect(a, t, roster, st, sl, NULL, now0, BG_ATTEST_REVOKED, "serial 1777 revoked");
    free(st);

    st = status_of("440300", &sz, 3, NULL, 0, &sl);
    expect(a, t, roster, NULL, 0, NULL, now0, BG_ATTEST_STATUS_MISSING, NULL);
    bg_attest_policy pol = {.min_status_number = 4};
    expect(a, t, roster, st, sl, &pol, now0, BG_ATTEST_STATUS_STALE, "older than the 4");
    pol = (bg_attest_policy){.status_max_age = 30};
    expect(a, t, roster, st, sl, &pol, now0, BG_ATTEST_STATUS_STALE, "issued");
    pol = (bg_attest_policy){.min_status_number = 3, .status_max_age = 3600};
    expect(a, t, roster, st, sl, &pol, now0, BG_ATTEST_OK, NULL);
    expect(a, t, roster, st, sl - 3, NULL, now0, BG_ATTEST_STATUS_MALFORMED, NULL);

    /* Tampered: the inner list changed under the old signature. */
    Baygate__SignedStatusList *w = baygate__signed_status_list__unpack(NULL, sl, st);
    ck_assert_ptr_nonnull(w);
    Baygate__StatusList *inner =
        baygate__status_list__unpack(NULL, w->status_list.len, w->status_list.data);
    ck_assert_ptr_nonnull(inner);
    inner->number = 99;
    uint8_t body[512], wrapped[4096];
    size_t bl = baygate__status_list__pack(inner, body);
    ProtobufCBinaryData old = w->status_list;
    w->status_list.data = body;
    w->status_list.len = bl;
    size_t wl = baygate__signed_status_list__pack(w, wrapped);
    expect(a, t, roster, wrapped, wl, NULL, now0, BG_ATTEST_STATUS_BAD_SIGNATURE, "signature");
    /* Shenzhen's list with Foshan's certificate. */
    w->status_list = old;
    ProtobufCBinaryData old_cert = w->issuer_certificate;
    w->issuer_certificate.data = fs.der;
    w->issuer_certificate.len = fs.der_len;
    wl = baygate__signed_status_list__pack(w, wrapped);
    expect(a, t, roster, wrapped, wl, NULL, now0, BG_ATTEST_STATUS_CERT, "440600");
    baygate__status_list__free_unpacked(inner, NULL);
    w->issuer_certificate = old_cert; /* owned by the unpacked message: restore first */
    baygate__signed_status_list__free_unpacked(w, NULL);
    free(st);

    /* Another city's (valid) list. */
    st = status_of("440600", &fs, 7, NULL, 0, &sl);
    expect(a, t, roster, st, sl, NULL, now0, BG_ATTEST_STATUS_WRONG_ISSUER, "440600's");
    free(st);

    /* A list whose serials are not strictly increasing, correctly signed. */
    Baygate__RevokedSerial r1 = BAYGATE__REVOKED_SERIAL__INIT, r2 = BAYGATE__REVOKED_SERIAL__INIT;
    r1.serial = 9;
    r2.serial = 4;
    Baygate__RevokedSerial *rp[] = {&r1, &r2};
    Baygate__StatusList l = BAYGATE__STATUS_LIST__INIT;
    l.version = 1;
    l.issuer = "440300";
    l.number = 5;
    l.issued_at = now0;
    l.n_revoked = 2;
    l.revoked = rp;
    bl = baygate__status_list__pack(&l, body);
    uint8_t sig[BG_SIG_MAX];
    size_t sig_len = 0;
    ck_assert_int_eq(bg_sig_sign(sz.key, BG_SIG_CTX_STATUS, body, bl, sig, &sig_len, &err), BG_OK);
    Baygate__SignedStatusList w2 = BAYGATE__SIGNED_STATUS_LIST__INIT;
    w2.status_list = (ProtobufCBinaryData){bl, body};
    w2.signature = (ProtobufCBinaryData){sig_len, sig};
    w2.issuer_certificate = (ProtobufCBinaryData){sz.der_len, sz.der};
    wl = baygate__signed_status_list__pack(&w2, wrapped);
    expect(a, t, roster, wrapped, wl, NULL, now0, BG_ATTEST_STATUS_MALFORMED, "sorted, unique");
    r2.serial = 9; /* a duplicate */
    bl = baygate__status_list__pack(&l, body);
    ck_assert_int_eq(bg_sig_sign(sz.key, BG_SIG_CTX_STATUS, body, bl, sig, &sig_len, &err), BG_OK);
    w2.status_list.len = bl;
    w2.signature.len = sig_len;
    wl = baygate__signed_status_list__pack(&w2, wrapped);
    expect(a, t, roster, wrapped, wl, NULL, now0, BG_ATTEST_STATUS_MALFORMED, "sorted, unique");
    r2.serial = 12; /* sorted now: it is a good list */
    bl = baygate__status_list__pack(&l, body);
    ck_assert_int_eq(bg_sig_sign(sz.key, BG_SIG_CTX_STATUS, body, bl, sig, &sig_len, &err), BG_OK);
    w2.status_list.len = bl;
    w2.signature.len = sig_len;
    wl = baygate__signed_status_list__pack(&w2, wrapped);
    expect(a, t, roster, wrapped, wl, NULL, now0, BG_ATTEST_OK, NULL);

    bg_trust_free(t);
    free(a);
}
END_TEST

START_TEST(status_list_round_trip_sorted_unique_and_searchable)
{
    bg_err err = {0};
    bg_attest_revoked r[40];
    for (size_t i = 0; i < 40; i++)
        r[i] = (bg_attest_revoked){.serial = mix(i) % 100000 * 2 + 2, .revoked_at = (int64_t)i};
    uint8_t *b = NULL;
    size_t len = 0;
    ck_assert_int_eq(
        bg_attest_status_sign("440300", 8, (int64_t)now0, r, 40, sz.key, sz.cert, &b, &len, &err),
        BG_OK);
    bg_trust *t = trust_with(NULL);
    bg_attest_status *s = NULL;
    bg_attest_reason why;
    ck_assert_msg(bg_attest_status_open(b, len, t, roster, "440300", NULL, now0, &s, &why, &err) ==
                      BG_OK,
                  "%s", err.msg);
    ck_assert_str_eq(bg_attest_status_issuer(s), "440300");
    ck_assert_uint_eq(bg_attest_status_number(s), 8);
    ck_assert_int_eq(bg_attest_status_issued_at(s), (int64_t)now0);
    ck_assert_uint_eq(bg_attest_status_count(s), 40);
    for (size_t i = 1; i < 40; i++)
        ck_assert_uint_lt(bg_attest_status_at(s, i - 1)->serial, bg_attest_status_at(s, i)->serial);
    for (size_t i = 0; i < 40; i++) {
        int64_t when = -1;
        ck_assert(bg_attest_status_is_revoked(s, r[i].serial, &when));
        ck_assert_int_eq(when, r[i].revoked_at);
        ck_assert(!bg_attest_status_is_revoked(s, r[i].serial + 1, NULL)); /* odd: never */
    }
    ck_assert(!bg_attest_status_is_revoked(s, 0, NULL));
    bg_attest_status_free(s);
    s = NULL;
    ck_assert_int_eq(bg_attest_status_inspect(b, len, &s, &err), BG_OK);
    ck_assert_uint_eq(bg_attest_status_count(s), 40);
    bg_attest_status_free(s);
    free(b);
    b = NULL;
    /* Refused when signing: a duplicate, number 0, a bad issuer. */
    r[1].serial = r[0].serial;
    ck_assert_int_eq(
        bg_attest_status_sign("440300", 9, (int64_t)now0, r, 40, sz.key, sz.cert, &b, &len, &err),
        BG_EINVAL);
    ck_assert_has(err.msg, "twice");
    ck_assert_int_eq(
        bg_attest_status_sign("440300", 0, (int64_t)now0, r, 1, sz.key, sz.cert, &b, &len, NULL),
        BG_EINVAL);
    ck_assert_int_eq(
        bg_attest_status_sign("44030", 1, (int64_t)now0, r, 1, sz.key, sz.cert, &b, &len, NULL),
        BG_EINVAL);
    /* An empty list is fine. */
    ck_assert_int_eq(
        bg_attest_status_sign("440300", 1, (int64_t)now0, NULL, 0, sz.key, sz.cert, &b, &len, &err),
        BG_OK);
    ck_assert_int_eq(bg_attest_status_open(b, len, t, roster, "440300", NULL, now0, &s, &why, &err),
                     BG_OK);
    ck_assert_uint_eq(bg_attest_status_count(s), 0);
    ck_assert(!bg_attest_status_is_revoked(s, 1, NULL));
    bg_attest_status_free(s);
    free(b);
    bg_trust_free(t);
}
END_TEST

/* ---- the CLI ---- */

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int
run(const char *fmt, ...)
{
    char cmd[4 * PATH_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char *
slurp(const char *path)
{
    static char buf[8192];
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void
put(const char *path, const uint8_t *b, size_t len)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(b, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
}

START_TEST(cli_verify_show_and_status_show)
{
    bg_attest *a = malloc(sizeof *a);
    attest_target(a);
    uint8_t *bytes = NULL;
    size_t len = 0, sl = 0;
    ck_assert_int_eq(bg_attest_encode(a, &bytes, &len, NULL), BG_OK);
    put(at("att.pb"), bytes, len);
    free(bytes);
    uint8_t *st = status_of("440300", &sz, 3, NULL, 0, &sl);
    put(at("status.pb"), st, sl);
    free(st);
    uint64_t rv[] = {1000 + TARGET};
    st = status_of("440300", &sz, 4, rv, 1, &sl);
    put(at("status-revoked.pb"), st, sl);
    free(st);
    put(at("roster.pb"), roster_pb, roster_pb_len);
    bg_err err = {0};
    ck_assert_int_eq(bg_pki_crl_write(at("crl-revoked.pem"), crl_revoked, &err), BG_OK);
    ck_assert_int_eq(bg_pki_crl_write(at("crl.pem"), crl_good, &err), BG_OK);
    /* Own copies: at() reuses its buffers. */
    char o[PATH_MAX], e[PATH_MAX];
    const char *b = BG_BAYGATE;
    snprintf(o, sizeof o, "%s", at("out"));
    snprintf(e, sizeof e, "%s", at("err"));
    char args[3 * PATH_MAX];
    snprintf(args, sizeof args, "--ca %s --roster %s", at("ca/ca.crt"), at("roster.pb"));

    ck_assert_int_eq(run("%s attest verify %s %s --status %s --crl %s >%s 2>%s", b, at("att.pb"),
                         args, at("status.pb"), at("crl.pem"), o, e),
                     0);
    char *out = slurp(o);
    ck_assert_has(out, "OK: 440300 (Shenzhen) evaluated 91440300");
    ck_assert_has(out, "grade B (scale SZ5) = 3 on the common scale (rank 3)");
    ck_assert_has(out, "serial 1777");
    ck_assert_int_eq(run("%s attest verify %s %s --status %s --json >%s 2>%s", b, at("att.pb"),
                         args, at("status.pb"), o, e),
                     0);
    ck_assert_has(slurp(o), "\"ok\":true");
    ck_assert_has(slurp(o), "\"common_grade\":\"3\"");

    ck_assert_int_eq(run("%s attest verify %s %s --status %s >%s 2>%s", b, at("att.pb"), args,
                         at("status-revoked.pb"), o, e),
                     1);
    ck_assert_has(slurp(o), "FAIL: serial 1777 revoked at");
    ck_assert_int_eq(run("%s attest verify %s %s --status %s --crl %s --json >%s 2>%s", b,
                         at("att.pb"), args, at("status.pb"), at("crl-revoked.pem"), o, e),
                     1);
    ck_assert_has(slurp(o), "\"reason\":\"certificate-revoked\"");
    ck_assert_int_eq(run("%s attest verify %s %s --status %s --min-status 4 >%s 2>%s", b,
                         at("att.pb"), args, at("status.pb"), o, e),
                     1);
    ck_assert_has(slurp(o), "FAIL: status list 3 of 440300 is older than the 4 required");
    /* --at a day after valid_until. */
    char day[11];
    bg_date_format(today + 11, day);
    ck_assert_int_eq(run("%s attest verify %s %s --status %s --at %s >%s 2>%s", b, at("att.pb"),
                         args, at("status.pb"), day, o, e),
                     1);
    ck_assert_has(slurp(o), "FAIL: expired: valid until");
    /* A file that is no attestation; a missing option. */
    ck_assert_int_eq(run("%s attest verify %s %s --status %s >%s 2>%s", b, at("status.pb"), args,
                         at("status.pb"), o, e),
                     1);
    ck_assert_has(slurp(o), "FAIL:");
    ck_assert_int_eq(
        run("%s attest verify %s --ca %s >%s 2>%s", b, at("att.pb"), at("ca/ca.crt"), o, e), 2);

    ck_assert_int_eq(run("%s attest show %s >%s 2>%s", b, at("att.pb"), o, e), 0);
    ck_assert_has(slurp(o), "NOT VERIFIED");
    ck_assert_has(slurp(o), "common grade  3 (rank 3)");
    ck_assert_int_eq(run("%s attest status-show %s >%s 2>%s", b, at("status-revoked.pb"), o, e), 0);
    ck_assert_has(slurp(o), "number     4");
    ck_assert_has(slurp(o), "serial 1777 at");
    ck_assert_int_eq(run("%s attest status-show --json %s >%s 2>%s", b, at("status.pb"), o, e), 0);
    ck_assert_has(slurp(o), "\"number\":3");
    ck_assert_int_eq(run("%s help attest >%s 2>%s", b, o, e), 0);
    free(a);
}
END_TEST

/* ---- fixture ---- */

static void
die(const char *what, const bg_err *err)
{
    fprintf(stderr, "test_attest setup: %s: %s\n", what, err ? err->msg : "");
    exit(1);
}

static void
make_city(bg_pki_ca *ca, const char *code, const char *name, struct city *c)
{
    bg_err err = {0};
    X509_REQ *req = NULL;
    if (bg_pki_key_generate(&c->key, &err) != BG_OK ||
        bg_pki_csr_make(c->key, code, name, &req, &err) != BG_OK ||
        bg_pki_ca_issue(ca, req, now0 - 60, now0 + 30 * 86400, &c->cert, &err) != BG_OK ||
        bg_sig_fingerprint(c->cert, c->fp, &err) != BG_OK ||
        bg_pki_cert_to_der(c->cert, &c->der, &c->der_len, &err) != BG_OK)
        die(code, &err);
    X509_REQ_free(req);
}

static void
free_city(struct city *c)
{
    EVP_PKEY_free(c->key);
    X509_free(c->cert);
    OPENSSL_free(c->der);
}

static bg_roster *
make_roster(bool with_sz)
{
    char gzh[65], szh[65], fsh[65], text[4096];
    bg_sig_fp_hex(gz.fp, gzh);
    bg_sig_fp_hex(sz.fp, szh);
    bg_sig_fp_hex(fs.fp, fsh);
    char szm[512] = "";
    if (with_sz)
        snprintf(szm, sizeof szm,
                 "[member 440300]\nname = Shenzhen\nendpoint = tls+tcp://127.0.0.1:7502\n"
                 "fingerprint = %s\nlists = serious-dishonesty\nscale = SZ5=AAA,AA,A,B,C\n"
                 "grade_map = AAA:1, AA:1, A:2, B:3, C:4\n",
                 szh);
    snprintf(text, sizeof text,
             "[federation]\nname = Greater Bay Area Credit Federation\nserial = 3\n"
             "max_message_bytes = 4194304\ncommon_scale = 1,2,3,4\n"
             "[purpose supervision]\nneeds_authorisation = false\n"
             "[member 440100]\nname = Guangzhou\nendpoint = tls+tcp://127.0.0.1:7501\n"
             "fingerprint = %s\nlists = serious-dishonesty\nscale = ABCD=A,B,C,D\n"
             "grade_map = A:1, B:2, C:3, D:4\n"
             "%s"
             "[member 440600]\nname = Foshan\nendpoint = tls+tcp://127.0.0.1:7503\n"
             "fingerprint = %s\nlists = serious-dishonesty\nscale = ABCD=A,B,C,D\n"
             "grade_map = A:1, B:2, C:3, D:4\n"
             "[permission 440100 -> 440600]\npurposes = supervision\nlists = serious-dishonesty\n"
             "quota_items_per_day = 1000\nmin_count_batch = 1\n",
             gzh, szm, fsh);
    bg_roster *r = NULL;
    bg_err err = {0};
    if (bg_roster_parse_ini_text(text, strlen(text), scratch, "roster.ini", NULL, &r, &err) !=
        BG_OK)
        die("roster", &err);
    return r;
}

static void
fixture_up(void)
{
    bg_err err = {0};
    now0 = time(NULL);
    today = (int32_t)(now0 / 86400);
    mkdir(BG_TEST_TMPDIR, 0700);
    snprintf(scratch, sizeof scratch, "%s/attest.XXXXXX", BG_TEST_TMPDIR);
    if (mkdtemp(scratch) == NULL)
        die("mkdtemp", NULL);
    bg_pki_ca *ca = NULL, *rogue = NULL;
    if (bg_pki_ca_init(at("ca"), NULL, 3650, &err) != BG_OK ||
        bg_pki_ca_open(&ca, at("ca"), &err) != BG_OK ||
        bg_pki_ca_init(at("rogue"), NULL, 3650, &err) != BG_OK ||
        bg_pki_ca_open(&rogue, at("rogue"), &err) != BG_OK)
        die("CA", &err);
    ca_cert = bg_pki_ca_cert(ca);
    X509_up_ref(ca_cert);
    make_city(ca, "440100", "Guangzhou", &gz);
    make_city(ca, "440300", "Shenzhen", &sz);
    make_city(ca, "440600", "Foshan", &fs);
    make_city(ca, "440300", "Shenzhen", &sz2);
    make_city(rogue, "440300", "Shenzhen", &rogue_sz);
    if (bg_pki_ca_crl(ca, now0, 7 * 86400, &crl_good, &err) != BG_OK ||
        bg_pki_ca_revoke(ca, "440300", NULL, now0 - 30, NULL, &err) != BG_OK ||
        bg_pki_ca_crl(ca, now0, 7 * 86400, &crl_revoked, &err) != BG_OK)
        die("CRL", &err);
    roster = make_roster(true);
    roster_no_sz = make_roster(false);
    if (bg_roster_sign(roster, bg_pki_ca_key(ca), ca_cert, &roster_pb, &roster_pb_len, &err) !=
        BG_OK)
        die("roster sign", &err);
    bg_pki_ca_close(ca);
    bg_pki_ca_close(rogue);

    /* Shenzhen's graded snapshot, as psi_pub builds and signs it. */
    if (bg_oprf_keygen(sk, &err) != BG_OK)
        die("keygen", &err);
    bg_snap_entry *e = calloc(NSNAP, sizeof *e);
    uint8_t(*in)[UL] = calloc(NSNAP, UL);
    bg_snap_payload *pl = calloc(NSNAP, sizeof *pl);
    if (e == NULL || in == NULL || pl == NULL)
        die("out of memory", NULL);
    for (size_t i = 0; i < NSNAP; i++) {
        uscc(i, in[i]);
        payload_of(i, &pl[i]);
        e[i] = (bg_snap_entry){.input = in[i], .input_len = UL, .payload = &pl[i]};
    }
    if (bg_snap_build(&snap, sk, "grades", 2, 9, 1, e, NSNAP, 0, &err) != BG_OK)
        die("snapshot", &err);
    free(e);
    free(in);
    free(pl);
    bg_snap_info info;
    bg_snap_get_info(snap, &info);
    if (bg_sig_sign(sz.key, BG_SIG_CTX_SNAPSHOT, info.digest, BG_SNAP_DIGESTBYTES, digest_sig,
                    &digest_sig_len, &err) != BG_OK)
        die("sign digest", &err);
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void
fixture_down(void)
{
    bg_snap_free(snap);
    sodium_memzero(sk, sizeof sk);
    bg_roster_free(roster);
    bg_roster_free(roster_no_sz);
    free(roster_pb);
    X509_CRL_free(crl_good);
    X509_CRL_free(crl_revoked);
    X509_free(ca_cert);
    free_city(&gz);
    free_city(&sz);
    free_city(&fs);
    free_city(&sz2);
    free_city(&rogue_sz);
    if (getenv("BG_KEEP") == NULL)
        nftw(scratch, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    ERR_clear_error();
}

static Suite *
attest_suite(void)
{
    Suite *s = suite_create("attest");
    TCase *m = tcase_create("merkle");
    tcase_add_test(m, inclusion_proofs_verify_for_every_entry_of_every_size);
    tcase_add_test(m, prover_paths_across_blocks_equal_one_off_proofs);
    tcase_set_timeout(m, 120);
    suite_add_tcase(s, m);
    TCase *a = tcase_create("attestation");
    tcase_add_test(a, an_honest_attestation_verifies_and_round_trips);
    tcase_add_test(a, siblings_are_checked_for_their_own_entry);
    tcase_add_test(a, forgeries_are_refused_with_their_reason);
    tcase_set_timeout(a, 120);
    suite_add_tcase(s, a);
    TCase *st = tcase_create("status");
    tcase_add_test(st, status_lists_revoke_and_are_checked);
    tcase_add_test(st, status_list_round_trip_sorted_unique_and_searchable);
    tcase_set_timeout(st, 120);
    suite_add_tcase(s, st);
    TCase *c = tcase_create("cli");
    tcase_add_test(c, cli_verify_show_and_status_show);
    tcase_set_timeout(c, 120);
    suite_add_tcase(s, c);
    return s;
}

int
main(void)
{
    const char *e = getenv("BG_ATTEST_SMALL");
    small_sizes = e != NULL && *e != '\0' && *e != '0';
    if (bg_oprf_init(NULL) != BG_OK)
        return EXIT_FAILURE;
    fixture_up();
    SRunner *sr = srunner_create(attest_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    fixture_down();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
