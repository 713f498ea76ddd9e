/*
 * fuzz_roster.c - the signed roster and its INI compiler (peers/roster.h).
 *
 * Mode 0 (first byte even): the rest is a roster.pb, opened as a gateway
 * opens one (bg_roster_open against the fixture CA, with the fixture roster
 * in use as the floor) and inspected as `roster show` without a CA does.
 * Mode 1 (first byte odd): the rest is a roster.ini, compiled as `roster
 * sign` compiles it, with the fixture's certificates as 440100.crt and
 * 440300.crt beside it; what compiles is signed and must open again.
 * Invariants: what opens or compiles answers its readers within bounds.
 */
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "fuzz/fuzz.h"
#include "fuzz/fuzz_pki.h"
#include "peers/roster.h"

static const bg_fuzz_pki *pki;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    pki = bg_fuzz_pki_get();
    return 0;
}

/* Every reader over a valid roster, as the daemon and the CLI call them. */
static void
use(const bg_roster *r)
{
    size_t nm = bg_roster_member_count(r), np = bg_roster_purpose_count(r);
    bg_fuzz_assert(nm <= BG_ROSTER_MAX_MEMBERS && np <= BG_ROSTER_MAX_PURPOSES);
    (void)bg_roster_federation(r);
    size_t len = 0;
    (void)bg_roster_bytes(r, &len);
    for (size_t i = 0; i < nm; i++) {
        const bg_roster_member *m = bg_roster_member_at(r, i);
        bg_fuzz_assert(bg_roster_member_find(r, m->city) == m);
        for (size_t g = 0; g < m->scale.ngrades; g++) {
            const char *grade = m->scale.grades[g];
            uint32_t rank = 0;
            bg_err err = {0};
            bg_fuzz_assert(bg_roster_common_rank(r, m->city, grade, &rank, &err) == BG_OK);
            bg_fuzz_assert(rank >= 1);
        }
        for (size_t k = 0; k < nm; k++) {
            bg_roster_verdict v;
            for (size_t p = 0; p < np; p++)
                (void)bg_roster_permission(r, m->city, bg_roster_member_at(r, k)->city,
                                           bg_roster_purpose_at(r, p)->name, "serious-dishonesty",
                                           &v);
            (void)bg_roster_permission(r, m->city, bg_roster_member_at(r, k)->city, "supervision",
                                       "grades", &v);
        }
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    bg_err err = {0};
    bg_roster *r = NULL;
    if ((data[0] & 1) == 0) {
        bool unchanged = false;
        if (bg_roster_open(p, n, pki->ca_cert, 0, pki->roster, &r, &unchanged, &err) == BG_OK) {
            use(r);
            bg_roster_free(r);
        }
        r = NULL;
        uint8_t ca_fp[BG_SIG_FP_LEN];
        if (bg_roster_inspect(p, n, &r, ca_fp, &err) == BG_OK) {
            use(r);
            bg_roster_free(r);
        }
        return 0;
    }
    if (bg_roster_parse_ini_text((const char *)p, n, bg_fuzz_scratch(), "roster.ini", pki->ca_cert,
                                 &r, &err) != BG_OK)
        return 0;
    use(r);
    uint8_t *pb = NULL;
    size_t pb_len = 0;
    if (bg_roster_sign(r, bg_pki_ca_key(pki->ca), pki->ca_cert, &pb, &pb_len, &err) == BG_OK) {
        bg_roster *back = NULL;
        int rc = bg_roster_open(pb, pb_len, pki->ca_cert, 0, NULL, &back, NULL, &err);
        bg_fuzz_assert(rc == BG_OK);
        bg_roster_free(back);
        free(pb);
    }
    bg_roster_free(r);
    return 0;
}

/* The fixture's source with its permission as defaults: a default, a '*' side, a deny. */
static const char defaults_perms[] = "[permission default]\n"
                                     "purposes = supervision\n"
                                     "lists = *\n"
                                     "quota_items_per_day = 1000\n"
                                     "min_count_batch = 4\n"
                                     "\n"
                                     "[permission * -> 440300]\n"
                                     "purposes = supervision, lending\n"
                                     "lists = serious-dishonesty\n"
                                     "quota_items_per_day = 1000000\n"
                                     "min_count_batch = 16\n"
                                     "\n"
                                     "[permission 440300 -> *]\n"
                                     "deny = true\n";

int
bg_fuzz_make_seeds(const char *dir)
{
    if (bg_fuzz_write_seed_mode(dir, "signed", 0, pki->roster_pb, pki->roster_pb_len) != 0 ||
        bg_fuzz_write_seed_mode(dir, "fixture.ini", 1, BG_FUZZ_ROSTER_INI,
                                strlen(BG_FUZZ_ROSTER_INI)) != 0)
        return -1;
    const char *cut = strstr(BG_FUZZ_ROSTER_INI, "[permission");
    size_t head = cut ? (size_t)(cut - BG_FUZZ_ROSTER_INI) : strlen(BG_FUZZ_ROSTER_INI);
    char text[4096];
    int n = snprintf(text, sizeof text, "%.*s%s", (int)head, BG_FUZZ_ROSTER_INI, defaults_perms);
    if (n < 0 || (size_t)n >= sizeof text)
        return -1;
    return bg_fuzz_write_seed_mode(dir, "defaults.ini", 1, text, (size_t)n);
}
