/*
 * test_relay.c - the checks a gateway makes before it writes a CRL or takes an
 * Artefacts body a peer hands on (gateway/daemon/artefact.h), with a real CA
 * directory in a scratch directory: CRLs newer, the same, older, expired, issued in
 * the future, of a same-DN rogue CA, garbage and oversize; bodies with unknown fields
 * or over their bounds. The relay between running gateways: tests/relay_test.sh.
 */
#define _GNU_SOURCE /* nftw's FTW_DEPTH/FTW_PHYS */
#include <check.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "certs/pki.h"
#include "gateway/daemon/artefact.h"
#include "proto/pb.h"
#include "proto/relay.pb-c.h"

static char scratch[PATH_MAX];

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void
setup(void)
{
    mkdir(BG_TEST_TMPDIR, 0700);
    snprintf(scratch, sizeof scratch, "%s/relay.XXXXXX", BG_TEST_TMPDIR);
    ck_assert_ptr_nonnull(mkdtemp(scratch));
}

static void
teardown(void)
{
    nftw(scratch, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* A CA in scratch/name, opened. */
static bg_pki_ca *
ca_make(const char *name)
{
    char dir[PATH_MAX + 16];
    snprintf(dir, sizeof dir, "%s/%s", scratch, name);
    bg_err err = {0};
    ck_assert_msg(bg_pki_ca_init(dir, "Test Federation", 30, &err) == BG_OK, "%s", err.msg);
    bg_pki_ca *ca = NULL;
    ck_assert_msg(bg_pki_ca_open(&ca, dir, &err) == BG_OK, "%s", err.msg);
    return ca;
}

/* The next CRL of ca as PEM, issued at now for seconds (OPENSSL_free). */
static char *
crl_pem(bg_pki_ca *ca, time_t now, int64_t seconds, size_t *len)
{
    bg_err err = {0};
    X509_CRL *crl = NULL;
    ck_assert_msg(bg_pki_ca_crl(ca, now, seconds, &crl, &err) == BG_OK, "%s", err.msg);
    char *pem = NULL;
    ck_assert(bg_pki_crl_pem(crl, &pem, len, &err) == BG_OK);
    X509_CRL_free(crl);
    return pem;
}

/* gw_art_crl of pem against ca's certificate, holding held, at now. */
static gw_art_verdict
judge(bg_pki_ca *ca, const char *pem, size_t len, uint64_t held, time_t now, uint64_t *number,
      bg_err *err)
{
    char *out = NULL;
    size_t out_len = 0;
    gw_art_verdict v = gw_art_crl((const uint8_t *)pem, len, bg_pki_ca_cert(ca), held, now, number,
                                  &out, &out_len, err);
    if (v == GW_ART_NEWER) {
        /* What would be written is the CRL as the CA wrote it, byte for byte. */
        ck_assert_uint_eq(out_len, len);
        ck_assert(memcmp(out, pem, len) == 0);
    } else {
        ck_assert_ptr_null(out);
    }
    OPENSSL_free(out);
    return v;
}

START_TEST(crl_verdicts)
{
    bg_pki_ca *ca = ca_make("CA");
    time_t now = time(NULL);
    size_t l1 = 0, l2 = 0;
    char *c1 = crl_pem(ca, now, 7 * 86400, &l1), *c2 = crl_pem(ca, now, 7 * 86400, &l2);
    uint64_t n = 0;
    bg_err err = {0};
    ck_assert_int_eq(judge(ca, c2, l2, 1, now, &n, &err), GW_ART_NEWER);
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(judge(ca, c2, l2, 2, now, &n, &err), GW_ART_SAME);
    ck_assert_int_eq(judge(ca, c1, l1, 2, now, &n, &err), GW_ART_OLDER);
    ck_assert_msg(strstr(err.msg, "older") != NULL, "%s", err.msg);
    /* The same CRL once its nextUpdate has passed. */
    ck_assert_int_eq(judge(ca, c2, l2, 1, now + 8 * 86400, &n, &err), GW_ART_INVALID);
    ck_assert_msg(strstr(err.msg, "expired") != NULL, "%s", err.msg);
    OPENSSL_free(c1);
    OPENSSL_free(c2);
    bg_pki_ca_close(ca);
}
END_TEST

START_TEST(crl_expired_future_rogue)
{
    bg_pki_ca *ca = ca_make("CA"), *rogue = ca_make("ROGUE");
    time_t now = time(NULL);
    size_t le = 0, lf = 0, lr = 0;
    char *expired = crl_pem(ca, now - 10 * 86400, 7 * 86400, &le);
    char *future = crl_pem(ca, now + 86400, 7 * 86400, &lf);
    char *forged = NULL;
    for (int i = 0; i < 5; i++) {
        OPENSSL_free(forged);
        forged = crl_pem(rogue, now, 7 * 86400, &lr); /* number 5, above ours */
    }
    uint64_t n = 0;
    bg_err err = {0};
    ck_assert_int_eq(judge(ca, expired, le, 0, now, &n, &err), GW_ART_INVALID);
    ck_assert_msg(strstr(err.msg, "expired") != NULL, "%s", err.msg);
    ck_assert_int_eq(judge(ca, future, lf, 0, now, &n, &err), GW_ART_INVALID);
    ck_assert_msg(strstr(err.msg, "future") != NULL, "%s", err.msg);
    ck_assert_int_eq(judge(ca, forged, lr, 0, now, &n, &err), GW_ART_INVALID);
    ck_assert_msg(strstr(err.msg, "not signed by the federation CA") != NULL, "%s", err.msg);
    /* Garbage, and a CRL with bytes after it (written without them: checked above). */
    ck_assert_int_eq(judge(ca, "not a CRL", 9, 0, now, &n, &err), GW_ART_INVALID);
    size_t big = GW_ART_CRL_MAX + 1;
    char *huge = calloc(1, big);
    ck_assert_ptr_nonnull(huge);
    ck_assert_int_eq(judge(ca, huge, big, 0, now, &n, &err), GW_ART_INVALID);
    ck_assert_msg(strstr(err.msg, "at most") != NULL, "%s", err.msg);
    free(huge);
    OPENSSL_free(expired);
    OPENSSL_free(future);
    OPENSSL_free(forged);
    bg_pki_ca_close(rogue);
    bg_pki_ca_close(ca);
}
END_TEST

static size_t
pack(const Baygate__Artefacts *a, uint8_t **out)
{
    size_t n = baygate__artefacts__get_packed_size(a);
    *out = malloc(n ? n : 1);
    ck_assert_ptr_nonnull(*out);
    baygate__artefacts__pack(a, *out);
    return n;
}

START_TEST(body_bounds)
{
    bg_err err = {0};
    Baygate__Artefacts a = BAYGATE__ARTEFACTS__INIT;
    a.roster_serial = 3;
    a.crl_number = 4;
    uint8_t *b = NULL;
    size_t n = pack(&a, &b);
    Baygate__Artefacts *got = gw_art_decode(b, n, &err);
    ck_assert_ptr_nonnull(got);
    ck_assert_uint_eq(got->roster_serial, 3);
    ck_assert_uint_eq(got->crl_number, 4);
    bg_pb_free(got);
    /* An unknown field (number 15, varint 1) appended. */
    uint8_t *u = malloc(n + 2);
    memcpy(u, b, n);
    u[n] = 15 << 3;
    u[n + 1] = 1;
    ck_assert_ptr_null(gw_art_decode(u, n + 2, &err));
    ck_assert_msg(strstr(err.msg, "unknown") != NULL, "%s", err.msg);
    free(u);
    free(b);
    /* A roster of 1 MiB + 1, a CRL of 1 MiB + 1, a long refusal. */
    uint8_t *big = calloc(1, GW_ART_ROSTER_MAX + 1);
    ck_assert_ptr_nonnull(big);
    a.roster.data = big;
    a.roster.len = GW_ART_ROSTER_MAX + 1;
    n = pack(&a, &b);
    ck_assert_ptr_null(gw_art_decode(b, n, &err));
    free(b);
    a.roster.len = 0;
    a.crl.data = big;
    a.crl.len = GW_ART_CRL_MAX + 1;
    n = pack(&a, &b);
    ck_assert_ptr_null(gw_art_decode(b, n, &err));
    free(b);
    a.crl.len = 0;
    char why[GW_ART_REFUSAL_MAX + 2];
    memset(why, 'x', sizeof why - 1);
    why[sizeof why - 1] = '\0';
    a.crl_refused = why;
    n = pack(&a, &b);
    ck_assert_ptr_null(gw_art_decode(b, n, &err));
    free(b);
    free(big);
    ck_assert_ptr_null(gw_art_decode((const uint8_t *)"\xff\xff", 2, &err));
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("relay");
    TCase *tc = tcase_create("artefacts");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, crl_verdicts);
    tcase_add_test(tc, crl_expired_future_rogue);
    tcase_add_test(tc, body_bounds);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
