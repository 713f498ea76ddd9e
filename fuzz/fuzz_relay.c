/*
 * fuzz_relay.c - what a peer hands on to be relayed (gateway/daemon/artefact.h), as
 * relay.c takes it: the rest of the input is an Artefacts body through gw_art_decode;
 * its roster goes through gw_art_roster and its CRL through gw_art_crl against the
 * fixture CA (fuzz_pki.h), with the fixture roster in use and nothing held.
 *
 * The first byte: bit 0 puts the fixture's signed roster in place of the body's, bit 1
 * the fixture's CRL (PEM) in place of the body's, so the paths past the signature are
 * reached whatever the keys of this run (the fixture is made afresh every process).
 * Invariants: a roster judged newer has a serial above the floor and is then the same
 * for a gateway holding it; a CRL judged newer comes back as PEM that is judged the
 * same against its own number; what is refused says why.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/err.h"
#include "fuzz/fuzz.h"
#include "fuzz/fuzz_pki.h"
#include "gateway/daemon/artefact.h"
#include "proto/pb.h"

static const bg_fuzz_pki *pki;
static char *fixture_crl;
static size_t fixture_crl_len;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    pki = bg_fuzz_pki_get();
    bg_err err = {0};
    bg_fuzz_assert(bg_pki_crl_pem(pki->crl, &fixture_crl, &fixture_crl_len, &err) == BG_OK);
    return 0;
}

static void
roster(const uint8_t *bytes, size_t len)
{
    bg_err err = {0};
    bg_roster *r = NULL;
    gw_art_verdict v = gw_art_roster(bytes, len, pki->ca_cert, NULL, 0, &r, &err);
    bg_fuzz_assert((v == GW_ART_NEWER) == (r != NULL));
    bg_fuzz_assert(v == GW_ART_NEWER || v == GW_ART_SAME || err.msg[0] != '\0');
    if (r == NULL)
        return;
    bg_fuzz_assert(bg_roster_serial(r) > 0);
    bg_roster *again = NULL;
    bg_fuzz_assert(gw_art_roster(bytes, len, pki->ca_cert, r, bg_roster_serial(r), &again, &err) ==
                   GW_ART_SAME);
    bg_roster_free(r);
}

static void
crl(const uint8_t *bytes, size_t len)
{
    bg_err err = {0};
    uint64_t number = 0, again_number = 0;
    char *pem = NULL, *again = NULL;
    size_t pem_len = 0, again_len = 0;
    time_t now = time(NULL);
    gw_art_verdict v = gw_art_crl(bytes, len, pki->ca_cert, 0, now, &number, &pem, &pem_len, &err);
    bg_fuzz_assert((v == GW_ART_NEWER) == (pem != NULL));
    bg_fuzz_assert(v == GW_ART_NEWER || v == GW_ART_SAME || err.msg[0] != '\0');
    if (pem == NULL)
        return;
    bg_fuzz_assert(gw_art_crl((const uint8_t *)pem, pem_len, pki->ca_cert, number, now,
                              &again_number, &again, &again_len, &err) == GW_ART_SAME);
    bg_fuzz_assert(again_number == number && again == NULL);
    OPENSSL_free(pem);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    bg_err err = {0};
    Baygate__Artefacts *a = gw_art_decode(data + 1, size - 1, &err);
    if (a == NULL) {
        bg_fuzz_assert(err.msg[0] != '\0');
        return 0;
    }
    bg_fuzz_assert(a->roster.len <= GW_ART_ROSTER_MAX && a->crl.len <= GW_ART_CRL_MAX);
    if (data[0] & 1)
        roster(pki->roster_pb, pki->roster_pb_len);
    else if (a->roster.len > 0)
        roster(a->roster.data, a->roster.len);
    if (data[0] & 2)
        crl((const uint8_t *)fixture_crl, fixture_crl_len);
    else if (a->crl.len > 0)
        crl(a->crl.data, a->crl.len);
    bg_pb_free(a);
    return 0;
}

/* An offer of numbers only, one carrying the fixture's artefacts, and the flags. */
int
bg_fuzz_make_seeds(const char *dir)
{
    Baygate__Artefacts a = BAYGATE__ARTEFACTS__INIT;
    a.roster_serial = 1;
    a.crl_number = 1;
    uint8_t small[64];
    size_t n = baygate__artefacts__pack(&a, small);
    if (bg_fuzz_write_seed_mode(dir, "offer-numbers", 0, small, n) != 0 ||
        bg_fuzz_write_seed_mode(dir, "fixture-both", 3, small, n) != 0)
        return -1;
    a.roster.data = pki->roster_pb;
    a.roster.len = pki->roster_pb_len;
    a.crl.data = (uint8_t *)fixture_crl;
    a.crl.len = fixture_crl_len;
    a.roster_refused = "roster serial 1 is older than the 2 in use";
    size_t len = baygate__artefacts__get_packed_size(&a);
    uint8_t *body = malloc(len);
    if (body == NULL)
        return -1;
    baygate__artefacts__pack(&a, body);
    int rc = bg_fuzz_write_seed_mode(dir, "held-both", 0, body, len);
    free(body);
    return rc;
}
