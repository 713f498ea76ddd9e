/*
 * trust.c - verifying peer certificates against the federation CA and CRL,
 * with a verdict cache (see trust.h).
 *
 * The CA + CRL live in a "snapshot": an X509_STORE built once and never
 * changed, reference-counted under the bg_trust mutex. A verification takes a
 * reference, runs X509_verify_cert without holding the lock (it is the
 * expensive part, and X509_STORE is safe for concurrent readers), and caches
 * its verdict only if the snapshot is still the current one.
 */
#include "certs/trust.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "certs/pki.h"
#include "certs/pki_int.h"

struct snap {
    int refs; /* under bg_trust.mu */
    X509_STORE *store;
    X509_CRL *crl; /* NULL: no revocation checking */
    time_t crl_last, crl_next;
    uint64_t crl_number;
};

struct entry {
    uint8_t fp[BG_SIG_FP_LEN];
    char city[BG_CITY_CODE_LEN + 1];
    time_t not_before, not_after;
    EVP_PKEY *key;
    uint64_t used; /* tick of the last use, for LRU eviction */
};

struct bg_trust {
    pthread_mutex_t mu;
    X509 *ca;
    struct snap *cur;
    uint64_t generation;
    struct entry *cache;
    size_t cap, len;
    uint64_t tick, hits, misses;
};

const char *
bg_trust_reason_name(bg_trust_reason reason)
{
    switch (reason) {
    case BG_TRUST_OK:
        return "ok";
    case BG_TRUST_MALFORMED:
        return "malformed";
    case BG_TRUST_NOT_FEDERATION:
        return "not-federation";
    case BG_TRUST_REVOKED:
        return "revoked";
    case BG_TRUST_EXPIRED:
        return "expired";
    case BG_TRUST_NOT_YET_VALID:
        return "not-yet-valid";
    case BG_TRUST_CRL_EXPIRED:
        return "crl-expired";
    case BG_TRUST_CRL_INVALID:
        return "crl-invalid";
    case BG_TRUST_USAGE:
        return "wrong-usage";
    case BG_TRUST_WRONG_CITY:
        return "wrong-city";
    case BG_TRUST_INVALID:
        return "invalid";
    case BG_TRUST_NOT_CACHED:
        return "not-cached";
    case BG_TRUST_INTERNAL:
        return "internal";
    }
    return "unknown";
}

/* Sets res->reason and err; returns the status for reason. */
static int refuse(bg_trust_result *res, bg_err *err, bg_trust_reason reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
refuse(bg_trust_result *res, bg_err *err, bg_trust_reason reason, const char *fmt, ...)
{
    char msg[BG_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    ERR_clear_error();
    if (res != NULL)
        res->reason = reason;
    int code = reason == BG_TRUST_INTERNAL     ? BG_ENOMEM
               : reason == BG_TRUST_NOT_CACHED ? BG_ENOTFOUND
                                               : BG_ECRYPTO;
    return bg_err_set(err, code, "%s", msg);
}

static void
fmt_time(const ASN1_TIME *t, char out[BG_PKI_TIME_LEN])
{
    time_t v;
    if (bg_pki_asn1_time(t, &v, NULL) == BG_OK)
        bg_pki_time_format(v, out);
    else
        snprintf(out, BG_PKI_TIME_LEN, "(unreadable)");
}

/* --- snapshots --- */

static void
snap_free(struct snap *s)
{
    if (s != NULL) {
        X509_STORE_free(s->store);
        X509_CRL_free(s->crl);
        free(s);
    }
}

static int
check_crl(X509 *ca, X509_CRL *crl, struct snap *s, bg_err *err)
{
    if (X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(ca)) != 0)
        return bg_err_set(err, BG_EINVAL, "CRL is not issued by the federation CA");
    EVP_PKEY *pub = X509_get0_pubkey(ca);
    if (pub == NULL || X509_CRL_verify(crl, pub) != 1)
        return bg_pki_ossl_fail(err, BG_ECRYPTO, "CRL is not signed by the federation CA");
    int rc = bg_pki_asn1_time(X509_CRL_get0_lastUpdate(crl), &s->crl_last, err);
    if (rc == BG_OK)
        rc = bg_pki_crl_next_update(crl, &s->crl_next, err);
    if (rc == BG_OK)
        rc = bg_pki_crl_number(crl, &s->crl_number, err);
    return rc;
}

static int
snap_new(X509 *ca, X509_CRL *crl, struct snap **out, bg_err *err)
{
    if (ca == NULL || X509_check_ca(ca) < 1)
        return bg_err_set(err, BG_EINVAL, "the federation CA certificate is not a CA certificate");
    struct snap *s = calloc(1, sizeof *s);
    if (s == NULL)
        return bg_err_set(err, BG_ENOMEM, "out of memory");
    s->refs = 1;
    int rc = crl ? check_crl(ca, crl, s, err) : BG_OK;
    if (rc != BG_OK) {
        free(s);
        return rc;
    }
    s->store = X509_STORE_new();
    unsigned long flags = X509_V_FLAG_X509_STRICT | (crl ? X509_V_FLAG_CRL_CHECK : 0);
    if (s->store == NULL || X509_STORE_add_cert(s->store, ca) != 1 ||
        (crl != NULL && X509_STORE_add_crl(s->store, crl) != 1) ||
        X509_STORE_set_flags(s->store, flags) != 1) {
        snap_free(s);
        return bg_pki_ossl_fail(err, BG_ENOMEM, "cannot build the trust store");
    }
    if (crl != NULL) {
        X509_CRL_up_ref(crl);
        s->crl = crl;
    }
    *out = s;
    return BG_OK;
}

static void
snap_release(bg_trust *t, struct snap *s)
{
    pthread_mutex_lock(&t->mu);
    bool last = --s->refs == 0;
    pthread_mutex_unlock(&t->mu);
    if (last)
        snap_free(s);
}

/* --- the cache (all under t->mu) --- */

static struct entry *
cache_find(bg_trust *t, const uint8_t fp[BG_SIG_FP_LEN])
{
    for (size_t i = 0; i < t->len; i++)
        if (memcmp(t->cache[i].fp, fp, BG_SIG_FP_LEN) == 0)
            return &t->cache[i];
    return NULL;
}

static void
cache_clear(bg_trust *t)
{
    for (size_t i = 0; i < t->len; i++)
        EVP_PKEY_free(t->cache[i].key);
    t->len = 0;
}

/* Stores e, replacing the entry for the same certificate, else a free slot,
 * else the least recently used entry. */
static void
cache_put(bg_trust *t, const struct entry *e)
{
    struct entry *slot = cache_find(t, e->fp);
    if (slot == NULL && t->len < t->cap) {
        slot = &t->cache[t->len++];
        slot->key = NULL; /* a slot past len holds a stale, freed pointer */
    } else if (slot == NULL) {
        slot = &t->cache[0];
        for (size_t i = 1; i < t->len; i++)
            if (t->cache[i].used < slot->used)
                slot = &t->cache[i];
    }
    EVP_PKEY_free(slot->key);
    *slot = *e;
    slot->used = ++t->tick;
}

/* Whether a cached verdict still holds at now: the certificate's validity and
 * the CRL's, with OpenSSL's boundaries (both ends inclusive). */
static bool
entry_current(const bg_trust *t, const struct entry *e, time_t now)
{
    if (now < e->not_before || now > e->not_after)
        return false;
    const struct snap *s = t->cur;
    return s->crl == NULL || (now >= s->crl_last && now <= s->crl_next);
}

/* --- construction --- */

int
bg_trust_new(bg_trust **out, X509 *ca, X509_CRL *crl, size_t cache_max, bg_err *err)
{
    if (cache_max == 0)
        cache_max = BG_TRUST_CACHE_DEFAULT;
    if (cache_max > BG_TRUST_CACHE_MAX)
        return bg_err_set(err, BG_EINVAL, "trust cache size must be at most %d",
                          BG_TRUST_CACHE_MAX);
    bg_trust *t = calloc(1, sizeof *t);
    if (t == NULL)
        return bg_err_set(err, BG_ENOMEM, "out of memory");
    t->cache = calloc(cache_max, sizeof *t->cache);
    if (t->cache == NULL) {
        free(t);
        return bg_err_set(err, BG_ENOMEM, "out of memory");
    }
    t->cap = cache_max;
    int rc = snap_new(ca, crl, &t->cur, err);
    if (rc == BG_OK && pthread_mutex_init(&t->mu, NULL) != 0)
        rc = bg_err_set(err, BG_ENOMEM, "cannot create a mutex");
    if (rc != BG_OK) {
        snap_free(t->cur);
        free(t->cache);
        free(t);
        return rc;
    }
    X509_up_ref(ca);
    t->ca = ca;
    *out = t;
    return BG_OK;
}

int
bg_trust_open(bg_trust **out, const char *ca_path, const char *crl_path, size_t cache_max,
              bg_err *err)
{
    X509 *ca = NULL;
    X509_CRL *crl = NULL;
    int rc = bg_pki_cert_load(ca_path, &ca, err);
    if (rc == BG_OK && crl_path != NULL)
        rc = bg_pki_crl_load(crl_path, &crl, err);
    if (rc == BG_OK)
        rc = bg_trust_new(out, ca, crl, cache_max, err);
    X509_CRL_free(crl);
    X509_free(ca);
    return rc;
}

void
bg_trust_free(bg_trust *t)
{
    if (t == NULL)
        return;
    cache_clear(t);
    free(t->cache);
    snap_free(t->cur);
    X509_free(t->ca);
    pthread_mutex_destroy(&t->mu);
    free(t);
}

/* Installs a new snapshot (and CA, if ca is not NULL); empties the cache. */
static void
install(bg_trust *t, struct snap *s, X509 *ca)
{
    struct snap *old = t->cur;
    X509 *old_ca = NULL;
    t->cur = s;
    if (ca != NULL) {
        X509_up_ref(ca);
        old_ca = t->ca;
        t->ca = ca;
    }
    t->generation++;
    cache_clear(t);
    bool last = --old->refs == 0;
    pthread_mutex_unlock(&t->mu);
    if (last)
        snap_free(old);
    X509_free(old_ca);
}

int
bg_trust_set_crl(bg_trust *t, X509_CRL *crl, bg_err *err)
{
    if (crl == NULL)
        return bg_err_set(err, BG_EINVAL, "no CRL given");
    /* t->ca only changes in bg_trust_set_ca; hold a reference across the build. */
    pthread_mutex_lock(&t->mu);
    X509 *ca = t->ca;
    X509_up_ref(ca);
    pthread_mutex_unlock(&t->mu);
    struct snap *s = NULL;
    int rc = snap_new(ca, crl, &s, err);
    if (rc != BG_OK) {
        X509_free(ca);
        return rc;
    }
    pthread_mutex_lock(&t->mu);
    if (t->ca != ca) {
        pthread_mutex_unlock(&t->mu);
        snap_free(s);
        X509_free(ca);
        return bg_err_set(err, BG_EINVAL, "the CA was replaced while loading this CRL");
    }
    if (t->cur->crl != NULL && s->crl_number < t->cur->crl_number) {
        uint64_t have = t->cur->crl_number, got = s->crl_number;
        pthread_mutex_unlock(&t->mu);
        snap_free(s);
        X509_free(ca);
        return bg_err_set(err, BG_EINVAL,
                          "CRL number %llu is older than the loaded CRL's %llu; keeping the "
                          "loaded one",
                          (unsigned long long)got, (unsigned long long)have);
    }
    install(t, s, NULL); /* unlocks */
    X509_free(ca);
    return BG_OK;
}

int
bg_trust_load_crl(bg_trust *t, const char *path, bg_err *err)
{
    X509_CRL *crl = NULL;
    int rc = bg_pki_crl_load(path, &crl, err);
    if (rc == BG_OK)
        rc = bg_trust_set_crl(t, crl, err);
    X509_CRL_free(crl);
    return rc;
}

int
bg_trust_set_ca(bg_trust *t, X509 *ca, X509_CRL *crl, bg_err *err)
{
    struct snap *s = NULL;
    int rc = snap_new(ca, crl, &s, err);
    if (rc != BG_OK)
        return rc;
    pthread_mutex_lock(&t->mu);
    install(t, s, ca); /* unlocks */
    return BG_OK;
}

/* --- verification --- */

/* Copies at most n bytes of untrusted s for a message, '?' for anything not
 * printable ASCII. */
static void
printable(const unsigned char *s, size_t n, char *out, size_t outsz)
{
    size_t k = 0;
    for (size_t i = 0; i < n && k + 1 < outsz; i++)
        out[k++] = (s[i] >= 0x20 && s[i] < 0x7f) ? (char)s[i] : '?';
    out[k] = '\0';
}

/* The subject CN for a message and comparison; "" if absent or repeated. */
static void
subject_cn(X509 *x, char *out, size_t outsz, bool *single)
{
    const X509_NAME *name = X509_get_subject_name(x);
    int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    *single = i >= 0 && X509_NAME_get_index_by_NID(name, NID_commonName, i) < 0;
    out[0] = '\0';
    if (i < 0)
        return;
    const ASN1_STRING *s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
    printable(ASN1_STRING_get0_data(s), (size_t)ASN1_STRING_length(s), out, outsz);
    /* A CN holding '?' substitutes (or a NUL) cannot equal a city code. */
    if (memchr(ASN1_STRING_get0_data(s), '\0', (size_t)ASN1_STRING_length(s)) != NULL)
        *single = false;
}

static int
check_names(X509 *x, const char *city, bg_trust_result *res, bg_err *err)
{
    char cn[BG_PKI_NAME_MAX + 1];
    bool single = false;
    subject_cn(x, cn, sizeof cn, &single);
    if (!single)
        return refuse(res, err, BG_TRUST_WRONG_CITY,
                      "certificate has no single subject CN; envelope claims %s", city);
    if (strcmp(cn, city) != 0)
        return refuse(res, err, BG_TRUST_WRONG_CITY, "certificate names %s, envelope claims %s", cn,
                      city);
    int crit = 0;
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, &crit, NULL);
    ERR_clear_error();
    char dns[BG_PKI_NAME_MAX + 1] = "";
    bool ok = gens != NULL && sk_GENERAL_NAME_num(gens) == 1;
    if (ok) {
        int type = 0;
        const ASN1_STRING *v = GENERAL_NAME_get0_value(sk_GENERAL_NAME_value(gens, 0), &type);
        ok = type == GEN_DNS;
        if (ok) {
            printable(ASN1_STRING_get0_data(v), (size_t)ASN1_STRING_length(v), dns, sizeof dns);
            ok = ASN1_STRING_length(v) == BG_CITY_CODE_LEN && strcmp(dns, city) == 0;
        }
    }
    GENERAL_NAMES_free(gens);
    if (!ok)
        return dns[0] ? refuse(res, err, BG_TRUST_WRONG_CITY,
                               "certificate DNS SAN names %s, envelope claims %s", dns, city)
                      : refuse(res, err, BG_TRUST_WRONG_CITY,
                               "certificate does not have exactly one DNS SAN; envelope claims %s",
                               city);
    return BG_OK;
}

static int
check_usage(X509 *x, bg_trust_result *res, bg_err *err)
{
    uint32_t flags = X509_get_extension_flags(x);
    if ((flags & EXFLAG_INVALID) != 0)
        return refuse(res, err, BG_TRUST_INVALID, "certificate has invalid extensions");
    if (X509_check_ca(x) != 0)
        return refuse(res, err, BG_TRUST_USAGE, "a CA certificate, not a city certificate");
    const uint32_t both = XKU_SSL_SERVER | XKU_SSL_CLIENT;
    if ((flags & EXFLAG_XKUSAGE) == 0 || (X509_get_extended_key_usage(x) & both) != both)
        return refuse(res, err, BG_TRUST_USAGE,
                      "certificate lacks extended key usage serverAuth + clientAuth");
    if ((flags & EXFLAG_KUSAGE) == 0 || (X509_get_key_usage(x) & KU_DIGITAL_SIGNATURE) == 0)
        return refuse(res, err, BG_TRUST_USAGE, "certificate lacks key usage digitalSignature");
    if (!bg_pki_key_is_p256(X509_get0_pubkey(x)))
        return refuse(res, err, BG_TRUST_USAGE, "certificate key is not ECDSA P-256");
    return BG_OK;
}

/* Turns X509_verify_cert's error into a reason and a message naming it. */
static int
chain_failure(X509_STORE_CTX *sc, X509 *x, const struct snap *s, bg_trust_result *res, bg_err *err)
{
    int e = X509_STORE_CTX_get_error(sc);
    const char *why = X509_verify_cert_error_string(e);
    char t[BG_PKI_TIME_LEN];
    /* Validity failures above the leaf are the CA's own, not the peer's. */
    X509 *at = X509_STORE_CTX_get_current_cert(sc);
    if (X509_STORE_CTX_get_error_depth(sc) > 0 && at != NULL &&
        (e == X509_V_ERR_CERT_HAS_EXPIRED || e == X509_V_ERR_CERT_NOT_YET_VALID)) {
        bool expired = e == X509_V_ERR_CERT_HAS_EXPIRED;
        fmt_time(expired ? X509_get0_notAfter(at) : X509_get0_notBefore(at), t);
        return refuse(res, err, expired ? BG_TRUST_EXPIRED : BG_TRUST_NOT_YET_VALID,
                      "the federation CA certificate %s %s",
                      expired ? "expired at" : "is not valid until", t);
    }
    switch (e) {
    case X509_V_ERR_CERT_REVOKED: {
        X509_REVOKED *rev = NULL;
        char serial[BG_PKI_SERIAL_HEX_MAX + 1] = "?";
        bg_pki_cert_serial_hex(x, serial, NULL);
        if (s->crl != NULL && X509_CRL_get0_by_cert(s->crl, &rev, x) == 1 && rev != NULL) {
            fmt_time(X509_REVOKED_get0_revocationDate(rev), t);
            return refuse(res, err, BG_TRUST_REVOKED, "certificate revoked at %s (serial %s)", t,
                          serial);
        }
        return refuse(res, err, BG_TRUST_REVOKED, "certificate revoked (serial %s)", serial);
    }
    case X509_V_ERR_CERT_HAS_EXPIRED:
        fmt_time(X509_get0_notAfter(x), t);
        return refuse(res, err, BG_TRUST_EXPIRED, "certificate expired at %s", t);
    case X509_V_ERR_CERT_NOT_YET_VALID:
        fmt_time(X509_get0_notBefore(x), t);
        return refuse(res, err, BG_TRUST_NOT_YET_VALID, "certificate not valid until %s", t);
    case X509_V_ERR_CRL_HAS_EXPIRED:
        bg_pki_time_format(s->crl_next, t);
        return refuse(res, err, BG_TRUST_CRL_EXPIRED,
                      "the federation CRL expired at %s; load a newer one", t);
    case X509_V_ERR_CRL_NOT_YET_VALID:
        bg_pki_time_format(s->crl_last, t);
        return refuse(res, err, BG_TRUST_CRL_INVALID,
                      "the federation CRL is not valid until %s (clock skew?)", t);
    case X509_V_ERR_UNABLE_TO_GET_CRL:
    case X509_V_ERR_CRL_SIGNATURE_FAILURE:
    case X509_V_ERR_UNABLE_TO_DECRYPT_CRL_SIGNATURE:
    case X509_V_ERR_ERROR_IN_CRL_LAST_UPDATE_FIELD:
    case X509_V_ERR_ERROR_IN_CRL_NEXT_UPDATE_FIELD:
        return refuse(res, err, BG_TRUST_CRL_INVALID, "the federation CRL is unusable: %s", why);
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_CERT_SIGNATURE_FAILURE:
    case X509_V_ERR_UNABLE_TO_DECRYPT_CERT_SIGNATURE:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_AKID_SKID_MISMATCH:
    case X509_V_ERR_AKID_ISSUER_SERIAL_MISMATCH:
    case X509_V_ERR_CERT_UNTRUSTED:
    case X509_V_ERR_CERT_REJECTED:
    case X509_V_ERR_INVALID_CA:
    case X509_V_ERR_PATH_LENGTH_EXCEEDED:
        return refuse(res, err, BG_TRUST_NOT_FEDERATION, "not issued by the federation CA (%s)",
                      why);
    case X509_V_ERR_OUT_OF_MEM:
        return refuse(res, err, BG_TRUST_INTERNAL, "out of memory verifying a certificate");
    default:
        return refuse(res, err, BG_TRUST_INVALID, "certificate fails X.509 verification: %s", why);
    }
}

/* The expensive path: parse, chain + CRL + validity, usage, names. On
 * success fills the cache entry e (with a key reference). */
static int
full_verify(const struct snap *s, const uint8_t *der, size_t len, const char *city, time_t now,
            struct entry *e, bg_trust_result *res, bg_err *err)
{
    X509 *x = NULL;
    bg_err sub = {0};
    if (bg_pki_cert_from_der(der, len, &x, &sub) != BG_OK)
        return refuse(res, err, BG_TRUST_MALFORMED, "certificate malformed: %s", sub.msg);
    int rc = BG_OK;
    X509_STORE_CTX *sc = X509_STORE_CTX_new();
    if (sc == NULL || X509_STORE_CTX_init(sc, s->store, x, NULL) != 1) {
        rc = refuse(res, err, BG_TRUST_INTERNAL, "cannot set up certificate verification");
        goto out;
    }
    X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(sc), now);
    int ok = X509_verify_cert(sc);
    if (ok != 1) {
        rc = ok == 0 ? chain_failure(sc, x, s, res, err)
                     : refuse(res, err, BG_TRUST_INTERNAL, "certificate verification failed");
        goto out;
    }
    if ((rc = check_usage(x, res, err)) != BG_OK || (rc = check_names(x, city, res, err)) != BG_OK)
        goto out;
    if (bg_pki_asn1_time(X509_get0_notBefore(x), &e->not_before, NULL) != BG_OK ||
        bg_pki_asn1_time(X509_get0_notAfter(x), &e->not_after, NULL) != BG_OK) {
        rc = refuse(res, err, BG_TRUST_INVALID, "certificate validity is unreadable");
        goto out;
    }
    e->key = X509_get0_pubkey(x);
    if (e->key == NULL || EVP_PKEY_up_ref(e->key) != 1) {
        e->key = NULL;
        rc = refuse(res, err, BG_TRUST_INTERNAL, "cannot take the certificate's key");
        goto out;
    }
    memcpy(e->city, city, BG_CITY_CODE_LEN + 1);
out:
    X509_STORE_CTX_free(sc);
    X509_free(x);
    ERR_clear_error();
    return rc;
}

/* Fills the caller's outputs from an accepted entry (under t->mu). */
static void
accept_entry(const struct entry *e, bool cached, bg_trust_result *res, EVP_PKEY **key)
{
    if (res != NULL) {
        res->reason = BG_TRUST_OK;
        res->cached = cached;
        res->not_after = e->not_after;
    }
    if (key != NULL) {
        EVP_PKEY_up_ref(e->key);
        *key = e->key;
    }
}

int
bg_trust_verify_at(bg_trust *t, const uint8_t *der, size_t len, const char *expected_city,
                   time_t now, bg_trust_result *res, EVP_PKEY **key, bg_err *err)
{
    if (res != NULL)
        memset(res, 0, sizeof *res);
    if (key != NULL)
        *key = NULL;
    if (t == NULL || !bg_city_code_valid(expected_city)) {
        if (res != NULL)
            res->reason = BG_TRUST_WRONG_CITY;
        return bg_err_set(err, BG_EINVAL, "expected city must be a 6-digit code");
    }
    if (der == NULL || len == 0)
        return refuse(res, err, BG_TRUST_MALFORMED, "certificate missing");
    if (len > BG_TRUST_CERT_MAX) {
        if (res != NULL)
            res->reason = BG_TRUST_MALFORMED;
        return bg_err_set(err, BG_ELIMIT, "certificate of %zu bytes exceeds %d", len,
                          BG_TRUST_CERT_MAX);
    }
    struct entry e = {0};
    if (bg_sig_fingerprint_der(der, len, e.fp, err) != BG_OK) {
        if (res != NULL)
            res->reason = BG_TRUST_INTERNAL;
        return err ? err->code : BG_ECRYPTO;
    }
    if (res != NULL)
        memcpy(res->fingerprint, e.fp, BG_SIG_FP_LEN);

    pthread_mutex_lock(&t->mu);
    struct entry *hit = cache_find(t, e.fp);
    if (hit != NULL && strcmp(hit->city, expected_city) == 0 && entry_current(t, hit, now)) {
        t->hits++;
        hit->used = ++t->tick;
        accept_entry(hit, true, res, key);
        pthread_mutex_unlock(&t->mu);
        return BG_OK;
    }
    /* A miss, or a hit that no longer holds: the full check says exactly why. */
    t->misses++;
    struct snap *s = t->cur;
    s->refs++;
    uint64_t gen = t->generation;
    pthread_mutex_unlock(&t->mu);

    int rc = full_verify(s, der, len, expected_city, now, &e, res, err);
    if (rc == BG_OK) {
        pthread_mutex_lock(&t->mu);
        accept_entry(&e, false, res, key);
        if (gen == t->generation) {
            cache_put(t, &e); /* the cache takes e's key reference */
            e.key = NULL;
        }
        pthread_mutex_unlock(&t->mu);
        EVP_PKEY_free(e.key);
    }
    snap_release(t, s);
    return rc;
}

int
bg_trust_verify(bg_trust *t, const uint8_t *der, size_t len, const char *expected_city,
                bg_trust_result *res, EVP_PKEY **key, bg_err *err)
{
    return bg_trust_verify_at(t, der, len, expected_city, time(NULL), res, key, err);
}

int
bg_trust_verify_cached(bg_trust *t, const uint8_t fp[BG_SIG_FP_LEN], const char *expected_city,
                       time_t now, bg_trust_result *res, EVP_PKEY **key, bg_err *err)
{
    uint8_t want[BG_SIG_FP_LEN];
    memcpy(want, fp, sizeof want); /* fp may point into *res */
    if (res != NULL) {
        memset(res, 0, sizeof *res);
        memcpy(res->fingerprint, want, sizeof want);
    }
    if (key != NULL)
        *key = NULL;
    if (!bg_city_code_valid(expected_city))
        return bg_err_set(err, BG_EINVAL, "expected city must be a 6-digit code");
    pthread_mutex_lock(&t->mu);
    struct entry *hit = cache_find(t, want);
    int rc = BG_OK;
    char when[BG_PKI_TIME_LEN];
    if (hit == NULL) {
        t->misses++;
        rc = refuse(res, err, BG_TRUST_NOT_CACHED, "certificate not known by fingerprint; send it");
    } else if (strcmp(hit->city, expected_city) != 0) {
        rc = refuse(res, err, BG_TRUST_WRONG_CITY, "certificate names %s, envelope claims %s",
                    hit->city, expected_city);
    } else if (now > hit->not_after) {
        bg_pki_time_format(hit->not_after, when);
        rc = refuse(res, err, BG_TRUST_EXPIRED, "certificate expired at %s", when);
    } else if (now < hit->not_before) {
        bg_pki_time_format(hit->not_before, when);
        rc = refuse(res, err, BG_TRUST_NOT_YET_VALID, "certificate not valid until %s", when);
    } else if (!entry_current(t, hit, now)) {
        bg_pki_time_format(t->cur->crl_next, when);
        rc = now > t->cur->crl_next
                 ? refuse(res, err, BG_TRUST_CRL_EXPIRED,
                          "the federation CRL expired at %s; load a newer one", when)
                 : refuse(res, err, BG_TRUST_CRL_INVALID, "the federation CRL is not yet valid");
    } else {
        t->hits++;
        hit->used = ++t->tick;
        accept_entry(hit, true, res, key);
    }
    pthread_mutex_unlock(&t->mu);
    return rc;
}

int
bg_trust_crl_next_update(bg_trust *t, time_t *out, bg_err *err)
{
    pthread_mutex_lock(&t->mu);
    bool have = t->cur->crl != NULL;
    if (have)
        *out = t->cur->crl_next;
    pthread_mutex_unlock(&t->mu);
    return have ? BG_OK : bg_err_set(err, BG_ENOTFOUND, "no CRL loaded");
}

int
bg_trust_crl_number(bg_trust *t, uint64_t *out, bg_err *err)
{
    pthread_mutex_lock(&t->mu);
    bool have = t->cur->crl != NULL;
    if (have)
        *out = t->cur->crl_number;
    pthread_mutex_unlock(&t->mu);
    return have ? BG_OK : bg_err_set(err, BG_ENOTFOUND, "no CRL loaded");
}

void
bg_trust_get_stats(bg_trust *t, bg_trust_stats *out)
{
    pthread_mutex_lock(&t->mu);
    out->hits = t->hits;
    out->misses = t->misses;
    out->cached = t->len;
    out->generation = t->generation;
    pthread_mutex_unlock(&t->mu);
}
