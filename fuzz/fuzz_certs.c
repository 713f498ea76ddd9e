/*
 * fuzz_certs.c - PEM/DER certificate, CSR, CRL and private-key loading
 * (certs/pki.h), as gateways load city.crt, ca.crt, crl.pem and city.key and
 * the CA loads a CSR. The first byte picks the loader:
 *   0 certificate PEM   1 certificate DER   2 CSR PEM (+ the CA's checks)
 *   3 CRL PEM           4 private key PEM
 * What loads is then used the way the callers use it: facts read out of it,
 * and a loaded private key must be able to sign what its own public key
 * verifies (a key that cannot is unusable and must not load).
 */
#include <openssl/crypto.h>
#include <openssl/err.h>

#include "certs/pki.h"
#include "certs/sig.h"
#include "common/err.h"
#include "domain/city.h"
#include "fuzz/fuzz.h"

static void
use_cert(X509 *x)
{
    bg_err err = {0};
    char city[BG_CITY_CODE_LEN + 1], serial[BG_PKI_SERIAL_HEX_MAX + 1];
    (void)bg_pki_cert_city(x, city, &err);
    (void)bg_pki_cert_serial_hex(x, serial, &err);
    uint8_t fp[BG_SIG_FP_LEN];
    (void)bg_sig_fingerprint(x, fp, &err);
    uint8_t *der = NULL;
    size_t len = 0;
    if (bg_pki_cert_to_der(x, &der, &len, &err) == BG_OK) {
        /* The DER it re-encodes to is one certificate again. */
        X509 *y = NULL;
        bg_fuzz_assert(bg_pki_cert_from_der(der, len, &y, &err) == BG_OK);
        X509_free(y);
        OPENSSL_free(der);
    }
    char *pem = NULL;
    if (bg_pki_cert_pem(x, &pem, &len, &err) == BG_OK)
        OPENSSL_free(pem);
}

static void
use_key(EVP_PKEY *key)
{
    bg_err err = {0};
    uint8_t fp[BG_SIG_FP_LEN];
    (void)bg_pki_key_fingerprint(key, fp, &err);
    static const char msg[] = "pairwise consistency";
    uint8_t sig[BG_SIG_MAX];
    size_t sig_len = 0;
    if (bg_sig_sign(key, BG_SIG_CTX_ENVELOPE, msg, sizeof msg, sig, &sig_len, &err) != BG_OK)
        return; /* refusing to sign is safe; signing garbage is not */
    int rc = bg_sig_verify(key, BG_SIG_CTX_ENVELOPE, msg, sizeof msg, sig, sig_len, &err);
    /* The private scalar must match the public point (fuzz/reproducers/certs). */
    bg_fuzz_assert(rc == BG_OK);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const uint8_t *p = data + 1;
    size_t n = size - 1;
    bg_err err = {0};
    switch (data[0] % 5) {
    case 0: {
        X509 *x = NULL;
        if (bg_pki_cert_load_mem(p, n, &x, &err) == BG_OK) {
            use_cert(x);
            X509_free(x);
        }
        break;
    }
    case 1: {
        X509 *x = NULL;
        if (bg_pki_cert_from_der(p, n, &x, &err) == BG_OK) {
            use_cert(x);
            X509_free(x);
        }
        break;
    }
    case 2: {
        X509_REQ *req = NULL;
        if (bg_pki_csr_load_mem(p, n, &req, &err) == BG_OK) {
            char city[BG_CITY_CODE_LEN + 1], name[BG_PKI_NAME_MAX + 1];
            (void)bg_pki_csr_check(req, city, name, &err);
            X509_REQ_free(req);
        }
        break;
    }
    case 3: {
        X509_CRL *crl = NULL;
        if (bg_pki_crl_load_mem(p, n, &crl, &err) == BG_OK) {
            time_t t;
            int64_t left;
            uint64_t number;
            (void)bg_pki_crl_next_update(crl, &t, &err);
            (void)bg_pki_crl_seconds_left(crl, 0, &left, &err);
            (void)bg_pki_crl_number(crl, &number, &err);
            char *pem = NULL;
            size_t len = 0;
            if (bg_pki_crl_pem(crl, &pem, &len, &err) == BG_OK)
                OPENSSL_free(pem);
            X509_CRL_free(crl);
        }
        break;
    }
    default: {
        EVP_PKEY *key = NULL;
        if (bg_pki_key_load_mem(p, n, &key, &err) == BG_OK) {
            use_key(key);
            EVP_PKEY_free(key);
        }
        break;
    }
    }
    /* No input's OpenSSL errors may reach the next one's messages. */
    ERR_clear_error();
    return 0;
}
