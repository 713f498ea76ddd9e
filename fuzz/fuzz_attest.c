/*
 * fuzz_attest.c - attestations and status lists (gateway/attest/attest.h),
 * as `baygate attest show|verify|status-show` and the asking gateway take
 * them from a file or a peer. The first byte picks the mode:
 *   0 attestation: decode, show its dates, verify against the fixture
 *     federation with the fixture's own (valid) status list
 *   1 status list: inspect (no signature), then open as Shenzhen's list
 *   2 attestation || status list (u16 length of the attestation first):
 *     verify the one with the other
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/err.h"
#include "fuzz/fuzz.h"
#include "fuzz/fuzz_pki.h"
#include "gateway/attest/attest.h"

static const bg_fuzz_pki *pki;
static uint8_t *status;
static size_t status_len;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    pki = bg_fuzz_pki_get();
    bg_attest_revoked rev[2] = {{7, 1700000000}, {42, 1700000100}};
    bg_err err = {0};
    bg_fuzz_assert(bg_attest_status_sign(BG_FUZZ_SZ, 3, (int64_t)time(NULL), rev, 2, pki->sz.key,
                                         pki->sz.cert, &status, &status_len, &err) == BG_OK);
    return 0;
}

static void
show(const bg_attest *a)
{
    char d[4][11];
    bg_attest_date_text(a->evaluated_at, d[0]);
    bg_attest_date_text(a->valid_until, d[1]);
    bg_attest_date_text(a->listed_at, d[2]);
    bg_attest_date_text(a->expires_at, d[3]);
    for (int i = 0; i < 4; i++)
        bg_fuzz_assert(strlen(d[i]) <= 10);
    bg_fuzz_assert(a->path_len <= BG_SNAP_PATH_MAX && a->signature_len <= BG_SIG_MAX &&
                   a->cert_len <= BG_ATTEST_CERT_MAX);
}

static void
verify(const uint8_t *att, size_t att_len, const uint8_t *st, size_t st_len)
{
    bg_attest *a = malloc(sizeof *a); /* about 12 KiB: not on the stack */
    bg_fuzz_assert(a != NULL);
    bg_err err = {0};
    if (bg_attest_decode(att, att_len, a, &err) == BG_OK) {
        show(a);
        bg_attest_reason why = BG_ATTEST_INTERNAL;
        bg_attest_policy pol = {.min_status_number = 1, .status_max_age = 86400};
        (void)bg_attest_verify(a, pki->trust, pki->roster, st, st_len, &pol, time(NULL), &why,
                               &err);
        (void)bg_attest_reason_name(why);
        /* What decodes must encode again. */
        uint8_t *enc = NULL;
        size_t enc_len = 0;
        if (bg_attest_encode(a, &enc, &enc_len, &err) == BG_OK)
            free(enc);
    }
    free(a);
}

static void
status_list(const uint8_t *p, size_t n)
{
    bg_attest_status *s = NULL;
    bg_err err = {0};
    if (bg_attest_status_inspect(p, n, &s, &err) == BG_OK) {
        (void)bg_attest_status_issuer(s);
        size_t count = bg_attest_status_count(s);
        for (size_t i = 0; i < count; i++) {
            const bg_attest_revoked *r = bg_attest_status_at(s, i);
            bg_fuzz_assert(bg_attest_status_is_revoked(s, r->serial, NULL));
            if (i > 0)
                bg_fuzz_assert(bg_attest_status_at(s, i - 1)->serial < r->serial);
        }
        size_t cert_len = 0;
        (void)bg_attest_status_cert(s, &cert_len);
        bg_attest_status_free(s);
    }
    s = NULL;
    bg_attest_reason why = BG_ATTEST_INTERNAL;
    if (bg_attest_status_open(p, n, pki->trust, pki->roster, BG_FUZZ_SZ, NULL, time(NULL), &s, &why,
                              &err) == BG_OK)
        bg_attest_status_free(s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    switch (data[0] % 3) {
    case 0:
        verify(p, n, status, status_len);
        break;
    case 1:
        status_list(p, n);
        break;
    default: {
        bg_fuzz_in in = {p, n};
        size_t att_len = bg_fuzz_u16(&in), got = 0;
        const uint8_t *att = bg_fuzz_bytes(&in, att_len, &got);
        verify(att, got, in.p, in.left);
        break;
    }
    }
    return 0;
}

int
bg_fuzz_make_seeds(const char *dir)
{
    return bg_fuzz_write_seed_mode(dir, "status-fixture", 1, status, status_len);
}
