/*
 * sig.c - context-bound, low-S ECDSA P-256 signatures and fingerprints (see sig.h).
 */
#include "certs/sig.h"

#include <string.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>

#include "certs/pki_int.h"

/* The order n of the P-256 group (SEC 2, secp256r1). */
static const uint8_t p256_order[32] = {
    0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xBC, 0xE6, 0xFA, 0xAD, 0xA7, 0x17, 0x9E, 0x84, 0xF3, 0xB9, 0xCA, 0xC2, 0xFC, 0x63, 0x25, 0x51,
};

static int
check_ctx(const char *ctx, bg_err *err)
{
    size_t len = ctx ? strnlen(ctx, BG_SIG_CTX_MAX + 1) : 0;
    if (len == 0 || len > BG_SIG_CTX_MAX)
        return bg_err_set(err, BG_EINVAL, "signature context must be 1-%d bytes", BG_SIG_CTX_MAX);
    for (size_t i = 0; i < len; i++)
        if (ctx[i] < 0x21 || ctx[i] > 0x7e)
            return bg_err_set(err, BG_EINVAL, "signature context must be printable ASCII");
    return BG_OK;
}

/* What signing and verifying both refuse: a bad label, no data, a key other
 * than P-256. verb is "sign" or "verify", for the messages. */
static int
check_args(EVP_PKEY *key, const char *ctx, const void *data, size_t len, const char *verb,
           bg_err *err)
{
    int rc = check_ctx(ctx, err);
    if (rc != BG_OK)
        return rc;
    if (data == NULL && len != 0)
        return bg_err_set(err, BG_EINVAL, "no data to %s", verb);
    if (!bg_pki_key_is_p256(key))
        return bg_err_set(err, BG_EINVAL, "%s key is not ECDSA P-256",
                          verb[0] == 's' ? "signing" : "verifying");
    return BG_OK;
}

/* Hashes ctx || 0x00 || data into an initialised sign or verify context. The
 * NUL ends the label unambiguously, since labels hold no NUL. */
static int
absorb(EVP_MD_CTX *md, bool sign, const char *ctx, const void *data, size_t len)
{
    int (*update)(EVP_MD_CTX *, const void *, size_t) =
        sign ? EVP_DigestSignUpdate : EVP_DigestVerifyUpdate;
    if (update(md, ctx, strlen(ctx) + 1) != 1)
        return 0;
    return len == 0 || update(md, data, len) == 1;
}

/* Whether s > n/2, i.e. 2s > n. */
static int
s_is_high(const BIGNUM *s, BIGNUM *n, BIGNUM *tmp)
{
    if (BN_lshift1(tmp, s) != 1)
        return -1;
    return BN_cmp(tmp, n) > 0;
}

/* Rewrites a DER signature to low-S form in place (n - s when s > n/2). */
static int
to_low_s(uint8_t *sig, size_t *siglen, bg_err *err)
{
    const unsigned char *p = sig;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)*siglen);
    BIGNUM *n = BN_bin2bn(p256_order, sizeof p256_order, NULL);
    BIGNUM *tmp = BN_new();
    BIGNUM *r2 = NULL, *s2 = NULL;
    int rc = BG_ECRYPTO;
    if (es == NULL || n == NULL || tmp == NULL)
        goto out;
    const BIGNUM *r = NULL, *s = NULL;
    ECDSA_SIG_get0(es, &r, &s);
    int high = s_is_high(s, n, tmp);
    if (high < 0)
        goto out;
    if (high == 0) {
        rc = BG_OK;
        goto out;
    }
    r2 = BN_dup(r);
    s2 = BN_new();
    if (r2 == NULL || s2 == NULL || BN_sub(s2, n, s) != 1 || ECDSA_SIG_set0(es, r2, s2) != 1)
        goto out;
    r2 = s2 = NULL; /* owned by es */
    unsigned char *q = sig;
    int len = i2d_ECDSA_SIG(es, NULL);
    if (len <= 0 || len > BG_SIG_MAX || i2d_ECDSA_SIG(es, &q) != len)
        goto out;
    *siglen = (size_t)len;
    rc = BG_OK;
out:
    if (rc != BG_OK)
        bg_pki_ossl_fail(err, rc, "cannot normalise the signature");
    BN_free(r2);
    BN_free(s2);
    BN_free(tmp);
    BN_free(n);
    ECDSA_SIG_free(es);
    return rc;
}

int
bg_sig_sign(EVP_PKEY *key, const char *ctx, const void *data, size_t len, uint8_t sig[BG_SIG_MAX],
            size_t *siglen, bg_err *err)
{
    int rc = check_args(key, ctx, data, len, "sign", err);
    if (rc != BG_OK)
        return rc;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    size_t n = BG_SIG_MAX;
    if (md == NULL || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
        !absorb(md, true, ctx, data, len) || EVP_DigestSignFinal(md, sig, &n) != 1) {
        EVP_MD_CTX_free(md);
        return bg_pki_ossl_fail(err, BG_ECRYPTO, "signing failed");
    }
    EVP_MD_CTX_free(md);
    rc = to_low_s(sig, &n, err);
    if (rc == BG_OK)
        *siglen = n;
    return rc;
}

/* BG_OK iff sig is one canonical DER ECDSA-Sig-Value with a low s. */
static int
check_encoding(const uint8_t *sig, size_t siglen, bg_err *err)
{
    if (sig == NULL || siglen == 0 || siglen > BG_SIG_MAX)
        return bg_err_set(err, BG_ECRYPTO, "signature does not verify (bad length %zu)", siglen);
    const unsigned char *p = sig;
    ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)siglen);
    if (es == NULL) {
        ERR_clear_error();
        return bg_err_set(err, BG_ECRYPTO, "signature does not verify (not DER)");
    }
    unsigned char *der = NULL;
    int derlen = i2d_ECDSA_SIG(es, &der);
    bool canonical = p == sig + siglen && derlen == (int)siglen && memcmp(der, sig, siglen) == 0;
    OPENSSL_free(der);
    BIGNUM *n = BN_bin2bn(p256_order, sizeof p256_order, NULL);
    BIGNUM *tmp = BN_new();
    const BIGNUM *s = NULL;
    ECDSA_SIG_get0(es, NULL, &s);
    int high = (n && tmp) ? s_is_high(s, n, tmp) : -1;
    BN_free(tmp);
    BN_free(n);
    ECDSA_SIG_free(es);
    ERR_clear_error();
    if (!canonical)
        return bg_err_set(err, BG_ECRYPTO, "signature does not verify (not canonical DER)");
    if (high != 0)
        return bg_err_set(err, BG_ECRYPTO, "signature does not verify (high S)");
    return BG_OK;
}

int
bg_sig_verify(EVP_PKEY *key, const char *ctx, const void *data, size_t len, const uint8_t *sig,
              size_t siglen, bg_err *err)
{
    int rc = check_args(key, ctx, data, len, "verify", err);
    if (rc != BG_OK)
        return rc;
    if ((rc = check_encoding(sig, siglen, err)) != BG_OK)
        return rc;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (md == NULL || EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
        !absorb(md, false, ctx, data, len)) {
        EVP_MD_CTX_free(md);
        return bg_pki_ossl_fail(err, BG_ECRYPTO, "cannot verify");
    }
    int ok = EVP_DigestVerifyFinal(md, sig, siglen);
    EVP_MD_CTX_free(md);
    ERR_clear_error();
    if (ok != 1)
        return bg_err_set(err, BG_ECRYPTO, "signature does not verify");
    return BG_OK;
}

int
bg_sig_verify_cert(X509 *cert, const char *ctx, const void *data, size_t len, const uint8_t *sig,
                   size_t siglen, bg_err *err)
{
    EVP_PKEY *key = cert ? X509_get0_pubkey(cert) : NULL;
    if (key == NULL)
        return bg_pki_ossl_fail(err, BG_EINVAL, "certificate has no usable public key");
    return bg_sig_verify(key, ctx, data, len, sig, siglen, err);
}

int
bg_sig_fingerprint(X509 *cert, uint8_t fp[BG_SIG_FP_LEN], bg_err *err)
{
    unsigned int n = 0;
    if (cert == NULL || X509_digest(cert, EVP_sha256(), fp, &n) != 1 || n != BG_SIG_FP_LEN)
        return bg_pki_ossl_fail(err, BG_ECRYPTO, "cannot hash the certificate");
    return BG_OK;
}

int
bg_sig_fingerprint_der(const uint8_t *der, size_t len, uint8_t fp[BG_SIG_FP_LEN], bg_err *err)
{
    unsigned int n = 0;
    if (der == NULL || EVP_Digest(der, len, fp, &n, EVP_sha256(), NULL) != 1 || n != BG_SIG_FP_LEN)
        return bg_pki_ossl_fail(err, BG_ECRYPTO, "cannot hash the certificate");
    return BG_OK;
}

void
bg_sig_fp_hex(const uint8_t fp[BG_SIG_FP_LEN], char out[BG_SIG_FP_HEX_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < BG_SIG_FP_LEN; i++) {
        out[2 * i] = hex[fp[i] >> 4];
        out[2 * i + 1] = hex[fp[i] & 15];
    }
    out[BG_SIG_FP_HEX_LEN] = '\0';
}

bool
bg_sig_fp_parse(const char *hex, uint8_t fp[BG_SIG_FP_LEN])
{
    if (hex == NULL || strlen(hex) != BG_SIG_FP_HEX_LEN)
        return false;
    uint8_t out[BG_SIG_FP_LEN];
    for (size_t i = 0; i < BG_SIG_FP_HEX_LEN; i++) {
        char c = hex[i];
        unsigned d = c >= '0' && c <= '9'   ? (unsigned)(c - '0')
                     : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
                     : c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10)
                                            : 16u;
        if (d == 16)
            return false;
        out[i / 2] = (uint8_t)(i % 2 == 0 ? d << 4 : (out[i / 2] | d));
    }
    memcpy(fp, out, sizeof out);
    return true;
}

bool
bg_sig_key_matches(X509 *cert, EVP_PKEY *key)
{
    if (cert == NULL || key == NULL)
        return false;
    bool ok = X509_check_private_key(cert, key) == 1;
    ERR_clear_error();
    return ok;
}
