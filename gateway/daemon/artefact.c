/*
 * artefact.c - checking a roster or a CRL a peer hands on (see artefact.h).
 */
#include "gateway/daemon/artefact.h"

#include <string.h>

#include "certs/pki.h"
#include "certs/trust.h"
#include "proto/pb.h"

const char *
gw_art_verdict_name(gw_art_verdict v)
{
    switch (v) {
    case GW_ART_NEWER:
        return "newer";
    case GW_ART_SAME:
        return "same";
    case GW_ART_OLDER:
        return "older";
    case GW_ART_INVALID:
        return "invalid";
    }
    return "invalid";
}

Baygate__Artefacts *
gw_art_decode(const uint8_t *body, size_t len, bg_err *err)
{
    Baygate__Artefacts *a = bg_pb_unpack(&baygate__artefacts__descriptor, len, body);
    int rc = BG_OK;
    if (a == NULL)
        rc = bg_err_set(err, BG_EPROTO, "relay body does not parse");
    else if (a->base.n_unknown_fields != 0)
        rc = bg_err_set(err, BG_EPROTO, "relay body carries %u unknown field(s)",
                        a->base.n_unknown_fields);
    else if (a->roster.len > GW_ART_ROSTER_MAX)
        rc = bg_err_set(err, BG_ELIMIT, "relayed roster of %zu bytes: at most %d", a->roster.len,
                        GW_ART_ROSTER_MAX);
    else if (a->crl.len > GW_ART_CRL_MAX)
        rc = bg_err_set(err, BG_ELIMIT, "relayed CRL of %zu bytes: at most %d", a->crl.len,
                        GW_ART_CRL_MAX);
    else if (strlen(a->roster_refused) > GW_ART_REFUSAL_MAX ||
             strlen(a->crl_refused) > GW_ART_REFUSAL_MAX)
        rc = bg_err_set(err, BG_ELIMIT, "relay refusal longer than %d bytes", GW_ART_REFUSAL_MAX);
    if (rc != BG_OK && a != NULL) {
        bg_pb_free(a);
        a = NULL;
    }
    return a;
}

gw_art_verdict
gw_art_roster(const uint8_t *bytes, size_t len, X509 *ca, const bg_roster *in_use,
              uint64_t held_serial, bg_roster **out, bg_err *err)
{
    *out = NULL;
    if (len > GW_ART_ROSTER_MAX) {
        bg_err_set(err, BG_ELIMIT, "roster of %zu bytes: at most %d", len, GW_ART_ROSTER_MAX);
        return GW_ART_INVALID;
    }
    bg_roster *r = NULL;
    bool unchanged = false;
    int rc = bg_roster_open(bytes, len, ca, held_serial, in_use, &r, &unchanged, err);
    if (rc == BG_EEXIST)
        return GW_ART_OLDER; /* older than a floor, or a same-serial roster that differs */
    if (rc != BG_OK)
        return GW_ART_INVALID;
    if (unchanged || bg_roster_serial(r) <= held_serial) {
        bg_roster_free(r);
        return GW_ART_SAME;
    }
    *out = r;
    return GW_ART_NEWER;
}

/* Signed by ca (issuer, signature and a CRL number: the trust store's own checks),
 * issued by now + skew, not expired at now. */
static int
crl_current(X509 *ca, X509_CRL *crl, time_t now, uint64_t *number, bg_err *err)
{
    bg_trust *t = NULL;
    int rc = bg_trust_new(&t, ca, crl, 1, err);
    bg_trust_free(t);
    if (rc != BG_OK)
        return rc;
    time_t last = 0, next = 0;
    rc = bg_pki_asn1_time(X509_CRL_get0_lastUpdate(crl), &last, err);
    if (rc == BG_OK)
        rc = bg_pki_crl_next_update(crl, &next, err);
    if (rc == BG_OK)
        rc = bg_pki_crl_number(crl, number, err);
    if (rc != BG_OK)
        return rc;
    char when[BG_PKI_TIME_LEN];
    if (last > now + BG_PKI_SKEW) {
        bg_pki_time_format(last, when);
        return bg_err_set(err, BG_EINVAL, "CRL number %llu is issued in the future (%s)",
                          (unsigned long long)*number, when);
    }
    if (next <= now) {
        bg_pki_time_format(next, when);
        return bg_err_set(err, BG_EINVAL, "CRL number %llu expired at %s",
                          (unsigned long long)*number, when);
    }
    return BG_OK;
}

gw_art_verdict
gw_art_crl(const uint8_t *bytes, size_t len, X509 *ca, uint64_t held_number, time_t now,
           uint64_t *number, char **pem, size_t *pem_len, bg_err *err)
{
    *number = 0;
    *pem = NULL;
    *pem_len = 0;
    if (len > GW_ART_CRL_MAX) {
        bg_err_set(err, BG_ELIMIT, "CRL of %zu bytes: at most %d", len, GW_ART_CRL_MAX);
        return GW_ART_INVALID;
    }
    X509_CRL *crl = NULL;
    int rc = bg_pki_crl_load_mem(bytes, len, &crl, err);
    if (rc == BG_OK)
        rc = crl_current(ca, crl, now, number, err);
    gw_art_verdict v = GW_ART_INVALID;
    if (rc == BG_OK && *number < held_number) {
        bg_err_set(err, BG_EEXIST, "CRL number %llu is older than the %llu we hold",
                   (unsigned long long)*number, (unsigned long long)held_number);
        v = GW_ART_OLDER;
    } else if (rc == BG_OK && *number == held_number) {
        v = GW_ART_SAME;
    } else if (rc == BG_OK) {
        /* What is written is the CRL as checked, never trailing bytes that came with it. */
        v = bg_pki_crl_pem(crl, pem, pem_len, err) == BG_OK ? GW_ART_NEWER : GW_ART_INVALID;
    }
    X509_CRL_free(crl);
    return v;
}
