/*
 * attest_status.c - signed status lists: signing (issuer), opening (verifier, checks
 * in the order of attest.h), inspecting, and lookups.
 */
#include "gateway/attest/attest.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/attest/attest_int.h"
#include "proto/attest.pb-c.h"
#include "proto/pb.h"

struct bg_attest_status {
    char issuer[BG_CITY_CODE_LEN + 1];
    uint64_t number;
    int64_t issued_at;
    size_t n;
    bg_attest_revoked *e;             /* serials strictly increasing */
    uint8_t cert[BG_ATTEST_CERT_MAX]; /* the issuer certificate it carries (DER) */
    size_t cert_len;
};

void
bg_attest_status_free(bg_attest_status *s)
{
    if (s == NULL)
        return;
    free(s->e);
    free(s);
}

const char *
bg_attest_status_issuer(const bg_attest_status *s)
{
    return s->issuer;
}

uint64_t
bg_attest_status_number(const bg_attest_status *s)
{
    return s->number;
}

int64_t
bg_attest_status_issued_at(const bg_attest_status *s)
{
    return s->issued_at;
}

size_t
bg_attest_status_count(const bg_attest_status *s)
{
    return s->n;
}

const bg_attest_revoked *
bg_attest_status_at(const bg_attest_status *s, size_t i)
{
    return i < s->n ? &s->e[i] : NULL;
}

bool
bg_attest_status_is_revoked(const bg_attest_status *s, uint64_t serial, int64_t *revoked_at)
{
    size_t lo = 0, hi = s != NULL ? s->n : 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->e[mid].serial < serial) {
            lo = mid + 1;
        } else if (s->e[mid].serial > serial) {
            hi = mid;
        } else {
            if (revoked_at != NULL)
                *revoked_at = s->e[mid].revoked_at;
            return true;
        }
    }
    return false;
}

static int
revoked_cmp(const void *va, const void *vb)
{
    const bg_attest_revoked *a = va, *b = vb;
    return a->serial < b->serial ? -1 : a->serial > b->serial;
}

/* The serialised StatusList of the arguments (checked), revocations sorted
 * by serial; *body is malloc'd. */
static int
status_body(const char *issuer, uint64_t number, int64_t issued_at,
            const bg_attest_revoked *revoked, size_t n, uint8_t **body, size_t *blen, bg_err *err)
{
    bg_attest_revoked *sorted = malloc(sizeof *sorted * (n ? n : 1));
    Baygate__RevokedSerial *rs = malloc(sizeof *rs * (n ? n : 1));
    Baygate__RevokedSerial **rp = malloc(sizeof *rp * (n ? n : 1));
    int rc = BG_OK;
    if (sorted == NULL || rs == NULL || rp == NULL) {
        rc = bg_err_set(err, BG_ENOMEM, "status list: out of memory");
        goto out;
    }
    if (n > 0)
        memcpy(sorted, revoked, sizeof *sorted * n);
    qsort(sorted, n, sizeof *sorted, revoked_cmp);
    for (size_t i = 0; i < n && rc == BG_OK; i++) {
        if (i > 0 && sorted[i].serial == sorted[i - 1].serial)
            rc = bg_err_set(err, BG_EINVAL, "status list: serial %" PRIu64 " given twice",
                            sorted[i].serial);
        else if (sorted[i].revoked_at < 0)
            rc = bg_err_set(err, BG_EINVAL, "status list: serial %" PRIu64 " revoked before 1970",
                            sorted[i].serial);
        baygate__revoked_serial__init(&rs[i]);
        rs[i].serial = sorted[i].serial;
        rs[i].revoked_at = sorted[i].revoked_at;
        rp[i] = &rs[i];
    }
    if (rc != BG_OK)
        goto out;
    Baygate__StatusList sl = BAYGATE__STATUS_LIST__INIT;
    sl.version = BG_ATTEST_VERSION;
    sl.issuer = (char *)issuer;
    sl.number = number;
    sl.issued_at = issued_at;
    sl.n_revoked = n;
    sl.revoked = rp;
    *blen = baygate__status_list__get_packed_size(&sl);
    if ((*body = malloc(*blen ? *blen : 1)) == NULL) {
        rc = bg_err_set(err, BG_ENOMEM, "status list: out of memory");
        goto out;
    }
    baygate__status_list__pack(&sl, *body);
out:
    free(sorted);
    free(rs);
    free(rp);
    return rc;
}

int
bg_attest_status_sign(const char *issuer, uint64_t number, int64_t issued_at,
                      const bg_attest_revoked *revoked, size_t n, EVP_PKEY *key, X509 *cert,
                      uint8_t **out, size_t *len, bg_err *err)
{
    if (out != NULL)
        *out = NULL;
    if (len != NULL)
        *len = 0;
    if (issuer == NULL || key == NULL || cert == NULL || out == NULL || len == NULL ||
        (n > 0 && revoked == NULL))
        return bg_err_set(err, BG_EINVAL, "status list: NULL argument");
    if (!bg_city_code_valid(issuer))
        return bg_err_set(err, BG_EINVAL, "status list: issuer '%s' is not a city code", issuer);
    if (number == 0)
        return bg_err_set(err, BG_EINVAL, "status list: numbers start at 1");
    if (issued_at < 0)
        return bg_err_set(err, BG_EINVAL, "status list: issued_at before 1970");
    if (n > BG_ATTEST_STATUS_MAX_ENTRIES)
        return bg_err_set(err, BG_EINVAL, "status list: %zu revocations, at most %u", n,
                          BG_ATTEST_STATUS_MAX_ENTRIES);
    uint8_t *body = NULL, *wrapped = NULL, *der = NULL;
    size_t blen = 0, der_len = 0;
    int rc = status_body(issuer, number, issued_at, revoked, n, &body, &blen, err);
    if (rc != BG_OK)
        goto out;
    if ((rc = bg_pki_cert_to_der(cert, &der, &der_len, err)) != BG_OK)
        goto out;
    if (der_len > BG_ATTEST_CERT_MAX) {
        rc = bg_err_set(err, BG_EINVAL, "status list: certificate of %zu bytes", der_len);
        goto out;
    }
    uint8_t sig[BG_SIG_MAX];
    size_t sig_len = 0;
    if ((rc = bg_sig_sign(key, BG_SIG_CTX_STATUS, body, blen, sig, &sig_len, err)) != BG_OK)
        goto out;
    Baygate__SignedStatusList w = BAYGATE__SIGNED_STATUS_LIST__INIT;
    w.status_list = bg_attest_bin(body, blen);
    w.signature = bg_attest_bin(sig, sig_len);
    w.issuer_certificate = bg_attest_bin(der, der_len);
    size_t wlen = baygate__signed_status_list__get_packed_size(&w);
    if (wlen > BG_ATTEST_STATUS_MAX_BYTES) {
        rc = bg_err_set(err, BG_ELIMIT, "status list: %zu bytes, at most %u", wlen,
                        BG_ATTEST_STATUS_MAX_BYTES);
        goto out;
    }
    if ((wrapped = malloc(wlen)) == NULL) {
        rc = bg_err_set(err, BG_ENOMEM, "status list: out of memory");
        goto out;
    }
    baygate__signed_status_list__pack(&w, wrapped);
    *out = wrapped;
    *len = wlen;
out:
    free(body);
    OPENSSL_free(der);
    return rc;
}

/* The parsed pieces of a SignedStatusList, structure checked. */
struct status_parts {
    bg_attest_status *st;
    uint8_t *body; /* the signed bytes */
    size_t body_len;
    uint8_t sig[BG_SIG_MAX];
    size_t sig_len;
    uint8_t cert[BG_ATTEST_CERT_MAX];
    size_t cert_len;
};

static void
parts_free(struct status_parts *p)
{
    bg_attest_status_free(p->st);
    free(p->body);
    memset(p, 0, sizeof *p);
}

static int
status_parse(const uint8_t *bytes, size_t len, struct status_parts *p, bg_err *err)
{
    memset(p, 0, sizeof *p);
    if (bytes == NULL && len > 0)
        return bg_err_set(err, BG_EINVAL, "status list: NULL argument");
    if (len > BG_ATTEST_STATUS_MAX_BYTES)
        return bg_err_set(err, BG_ELIMIT, "status list of %zu bytes, at most %u", len,
                          BG_ATTEST_STATUS_MAX_BYTES);
    Baygate__SignedStatusList *w =
        bg_pb_unpack(&baygate__signed_status_list__descriptor, len, bytes);
    if (w == NULL)
        return bg_err_set(err, BG_EPROTO, "not a signed status list (malformed protobuf)");
    int rc = BG_OK;
    if (w->base.n_unknown_fields != 0 || w->status_list.len == 0 || w->signature.len == 0 ||
        w->signature.len > BG_SIG_MAX || w->issuer_certificate.len == 0 ||
        w->issuer_certificate.len > BG_ATTEST_CERT_MAX) {
        rc = bg_err_set(err, BG_EPROTO, "malformed signed status list (fields or lengths)");
        goto out;
    }
    p->body_len = w->status_list.len;
    if ((p->body = malloc(p->body_len)) == NULL) {
        rc = bg_err_set(err, BG_ENOMEM, "status list: out of memory");
        goto out;
    }
    memcpy(p->body, w->status_list.data, p->body_len);
    memcpy(p->sig, w->signature.data, w->signature.len);
    p->sig_len = w->signature.len;
    memcpy(p->cert, w->issuer_certificate.data, w->issuer_certificate.len);
    p->cert_len = w->issuer_certificate.len;

    Baygate__StatusList *sl = bg_pb_unpack(&baygate__status_list__descriptor, p->body_len, p->body);
    if (sl == NULL) {
        rc = bg_err_set(err, BG_EPROTO, "not a status list (malformed protobuf)");
        goto out;
    }
    bg_attest_status *st = calloc(1, sizeof *st);
    if (st == NULL ||
        (sl->n_revoked > 0 && (st->e = malloc(sizeof *st->e * sl->n_revoked)) == NULL)) {
        rc = bg_err_set(err, BG_ENOMEM, "status list: out of memory");
    } else if (sl->base.n_unknown_fields != 0 || sl->version != BG_ATTEST_VERSION) {
        rc = bg_err_set(err, BG_EPROTO, "malformed status list: version or unknown fields");
    } else if (!bg_attest_str_in(st->issuer, sl->issuer, BG_CITY_CODE_LEN, false) ||
               !bg_city_code_valid(st->issuer)) {
        rc = bg_err_set(err, BG_EPROTO, "malformed status list: issuer");
    } else if (sl->number == 0 || sl->issued_at < 0) {
        rc = bg_err_set(err, BG_EPROTO, "malformed status list: number or issued_at");
    } else if (sl->n_revoked > BG_ATTEST_STATUS_MAX_ENTRIES) {
        rc = bg_err_set(err, BG_EPROTO, "status list: %zu revocations, at most %u", sl->n_revoked,
                        BG_ATTEST_STATUS_MAX_ENTRIES);
    } else {
        st->number = sl->number;
        st->issued_at = sl->issued_at;
        memcpy(st->cert, p->cert, p->cert_len);
        st->cert_len = p->cert_len;
        for (size_t i = 0; i < sl->n_revoked && rc == BG_OK; i++) {
            const Baygate__RevokedSerial *r = sl->revoked[i];
            if (r->base.n_unknown_fields != 0 || r->revoked_at < 0)
                rc = bg_err_set(err, BG_EPROTO, "malformed status list: entry %zu", i);
            else if (i > 0 && r->serial <= st->e[i - 1].serial)
                rc = bg_err_set(err, BG_EPROTO,
                                "malformed status list: serial %" PRIu64 " at entry %zu is not "
                                "above the %" PRIu64 " before it (sorted, unique)",
                                r->serial, i, st->e[i - 1].serial);
            st->e[i].serial = r->serial;
            st->e[i].revoked_at = r->revoked_at;
        }
        st->n = sl->n_revoked;
    }
    bg_pb_free(sl);
    if (rc != BG_OK)
        bg_attest_status_free(st);
    else
        p->st = st;
out:
    bg_pb_free(w);
    if (rc != BG_OK)
        parts_free(p);
    return rc;
}

const uint8_t *
bg_attest_status_cert(const bg_attest_status *s, size_t *len)
{
    *len = s->cert_len;
    return s->cert;
}

int
bg_attest_status_inspect(const uint8_t *bytes, size_t len, bg_attest_status **out, bg_err *err)
{
    if (out == NULL)
        return bg_err_set(err, BG_EINVAL, "status list: NULL argument");
    *out = NULL;
    struct status_parts p;
    int rc = status_parse(bytes, len, &p, err);
    if (rc != BG_OK)
        return rc;
    *out = p.st;
    p.st = NULL;
    parts_free(&p);
    return BG_OK;
}

int
bg_attest_status_open(const uint8_t *bytes, size_t len, bg_trust *trust, const bg_roster *roster,
                      const char *expected_issuer, const bg_attest_policy *pol, time_t now,
                      bg_attest_status **out, bg_attest_reason *reason, bg_err *err)
{
    if (reason != NULL)
        *reason = BG_ATTEST_INTERNAL;
    if (out != NULL)
        *out = NULL;
    if (trust == NULL || roster == NULL || expected_issuer == NULL || out == NULL)
        return bg_err_set(err, BG_EINVAL, "status list: NULL argument");
    if (bytes == NULL || len == 0)
        return bg_attest_refuse(reason, BG_ATTEST_STATUS_MISSING, err, BG_ECRYPTO,
                                "no status list of %s given", expected_issuer);
    struct status_parts p;
    int rc = status_parse(bytes, len, &p, err);
    if (rc == BG_ENOMEM || rc == BG_EINVAL)
        return rc;
    if (rc != BG_OK)
        return bg_attest_refuse(reason, BG_ATTEST_STATUS_MALFORMED, err,
                                rc == BG_ELIMIT ? rc : BG_ECRYPTO, "status list: %s",
                                err ? err->msg : "malformed");
    EVP_PKEY *key = NULL;
    const bg_roster_member *m = NULL;
    /* The issuer named first: another city's list is the honest mistake to name. */
    if (strcmp(p.st->issuer, expected_issuer) != 0) {
        rc = bg_attest_refuse(reason, BG_ATTEST_STATUS_WRONG_ISSUER, err, BG_ECRYPTO,
                              "the status list is %s's, not %s's", p.st->issuer, expected_issuer);
    } else if ((m = bg_roster_member_find(roster, expected_issuer)) == NULL) {
        rc = bg_attest_refuse(reason, BG_ATTEST_ISSUER_UNKNOWN, err, BG_ECRYPTO,
                              "status list issuer %s is not in the roster", expected_issuer);
    } else if ((rc = bg_attest_issuer_key(trust, m, expected_issuer, p.cert, p.cert_len, now, true,
                                          &key, reason, err)) != BG_OK) {
        /* refused (or internal) with its reason */
    } else if (bg_sig_verify(key, BG_SIG_CTX_STATUS, p.body, p.body_len, p.sig, p.sig_len, NULL) !=
               BG_OK) {
        rc = bg_attest_refuse(reason, BG_ATTEST_STATUS_BAD_SIGNATURE, err, BG_ECRYPTO,
                              "status list %" PRIu64 " of %s: signature does not verify",
                              p.st->number, expected_issuer);
    } else if (pol != NULL && p.st->number < pol->min_status_number) {
        rc =
            bg_attest_refuse(reason, BG_ATTEST_STATUS_STALE, err, BG_ECRYPTO,
                             "status list %" PRIu64 " of %s is older than the %" PRIu64 " required",
                             p.st->number, expected_issuer, pol->min_status_number);
    } else if (p.st->issued_at > (int64_t)now + BG_PKI_SKEW) {
        rc = bg_attest_refuse(reason, BG_ATTEST_STATUS_MALFORMED, err, BG_ECRYPTO,
                              "status list %" PRIu64 " of %s is issued in the future", p.st->number,
                              expected_issuer);
    } else if (pol != NULL && pol->status_max_age > 0 &&
               (int64_t)now - p.st->issued_at > pol->status_max_age) {
        rc = bg_attest_refuse(reason, BG_ATTEST_STATUS_STALE, err, BG_ECRYPTO,
                              "status list %" PRIu64 " of %s was issued %" PRId64
                              " s ago, at most %" PRId64 " allowed",
                              p.st->number, expected_issuer, (int64_t)now - p.st->issued_at,
                              pol->status_max_age);
    }
    EVP_PKEY_free(key);
    if (rc == BG_OK) {
        *out = p.st;
        p.st = NULL;
        if (reason != NULL)
            *reason = BG_ATTEST_OK;
    }
    parts_free(&p);
    return rc;
}
