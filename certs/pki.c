/*
 * pki.c - keys, PEM/DER loading and writing, names, times and CSRs (see pki.h).
 */
#include "certs/pki.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "certs/pki_int.h"
#include "common/json.h"

bool
bg_pki_name_valid(const char *name)
{
    if (name == NULL)
        return false;
    size_t len = strnlen(name, BG_PKI_NAME_MAX + 1);
    if (len == 0 || len > BG_PKI_NAME_MAX)
        return false;
    const unsigned char *p = (const unsigned char *)name;
    if (bg_utf8_valid_prefix(p, len) != len)
        return false;
    for (size_t i = 0; i < len; i++)
        if (p[i] < 0x20 || p[i] == 0x7f)
            return false;
    return p[0] != ' ' && p[len - 1] != ' ';
}

/* --- time --- */

void
bg_pki_time_format(time_t t, char out[BG_PKI_TIME_LEN])
{
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL || strftime(out, BG_PKI_TIME_LEN, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, BG_PKI_TIME_LEN, "(bad time)");
}

/* Reads exactly n digits at s into *v. */
static bool
digits(const char *s, int n, int *v)
{
    int x = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        x = x * 10 + (s[i] - '0');
    }
    *v = x;
    return true;
}

int
bg_pki_time_parse(const char *s, time_t *out, bg_err *err)
{
    struct tm tm = {0};
    size_t len = strlen(s);
    bool ok = (len == 10 || len == 20) && digits(s, 4, &tm.tm_year) && s[4] == '-' &&
              digits(s + 5, 2, &tm.tm_mon) && s[7] == '-' && digits(s + 8, 2, &tm.tm_mday);
    if (ok && len == 20)
        ok = s[10] == 'T' && digits(s + 11, 2, &tm.tm_hour) && s[13] == ':' &&
             digits(s + 14, 2, &tm.tm_min) && s[16] == ':' && digits(s + 17, 2, &tm.tm_sec) &&
             s[19] == 'Z';
    if (!ok)
        return bg_err_set(err, BG_EINVAL, "'%s' is not a time (YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ)",
                          s);
    int year = tm.tm_year, mon = tm.tm_mon, mday = tm.tm_mday;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t t = timegm(&tm);
    /* timegm normalises (Feb 30 -> Mar 2); a real date survives unchanged. */
    struct tm back;
    if (t == (time_t)-1 || gmtime_r(&t, &back) == NULL || back.tm_year + 1900 != year ||
        back.tm_mon + 1 != mon || back.tm_mday != mday || back.tm_hour != tm.tm_hour ||
        back.tm_min != tm.tm_min || back.tm_sec != tm.tm_sec)
        return bg_err_set(err, BG_EINVAL, "'%s' is not a valid date and time", s);
    *out = t;
    return BG_OK;
}

int
bg_pki_asn1_time(const ASN1_TIME *t, time_t *out, bg_err *err)
{
    struct tm tm;
    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
        return bg_pki_ossl_fail(err, BG_EINVAL, "malformed ASN.1 time");
    time_t v = timegm(&tm);
    if (v == (time_t)-1)
        return bg_err_set(err, BG_EINVAL, "ASN.1 time out of range");
    *out = v;
    return BG_OK;
}

/* --- keys --- */

int
bg_pki_key_generate(EVP_PKEY **out, bg_err *err)
{
    EVP_PKEY *key = EVP_EC_gen(SN_X9_62_prime256v1);
    if (key == NULL)
        return bg_pki_ossl_fail(err, BG_ECRYPTO, "cannot generate a P-256 key");
    *out = key;
    return BG_OK;
}

int
bg_pki_key_fingerprint(EVP_PKEY *key, uint8_t fp[BG_SIG_FP_LEN], bg_err *err)
{
    unsigned char *der = NULL;
    int n = key ? i2d_PUBKEY(key, &der) : -1;
    if (n <= 0)
        return bg_pki_ossl_fail(err, BG_EINVAL, "cannot encode the public key");
    int rc = bg_sig_fingerprint_der(der, (size_t)n, fp, err);
    OPENSSL_free(der);
    return rc;
}

/* PKCS#8 PEM of key into a secure-memory BIO, which cleanses when freed. */
static int
key_to_bio(EVP_PKEY *key, BIO **out, bg_err *err)
{
    if (!bg_pki_key_is_p256(key))
        return bg_err_set(err, BG_EINVAL, "key is not an ECDSA P-256 private key");
    BIO *b = BIO_new(BIO_s_secmem());
    if (b == NULL)
        return bg_pki_ossl_fail(err, BG_ENOMEM, "cannot allocate a memory BIO");
    if (PEM_write_bio_PKCS8PrivateKey(b, key, NULL, NULL, 0, NULL, NULL) != 1) {
        BIO_free(b);
        return bg_pki_ossl_fail(err, BG_ECRYPTO, "cannot encode the private key");
    }
    *out = b;
    return BG_OK;
}

int
bg_pki_key_write_new(const char *path, EVP_PKEY *key, bg_err *err)
{
    BIO *b = NULL;
    int rc = key_to_bio(key, &b, err);
    if (rc != BG_OK)
        return rc;
    char *data = NULL;
    long n = BIO_get_mem_data(b, &data);
    rc = n > 0 ? bg_file_write_new(path, data, (size_t)n, 0600, err)
               : bg_pki_ossl_fail(err, BG_ECRYPTO, "cannot encode the private key");
    BIO_free(b);
    return rc;
}

int
bg_pki_key_pem(EVP_PKEY *key, char **pem, size_t *len, bg_err *err)
{
    BIO *b = NULL;
    int rc = key_to_bio(key, &b, err);
    if (rc != BG_OK)
        return rc;
    char *data = NULL;
    long n = BIO_get_mem_data(b, &data);
    char *copy = n > 0 ? malloc((size_t)n + 1) : NULL;
    if (copy == NULL) {
        BIO_free(b);
        return bg_err_set(err, BG_ENOMEM, "out of memory encoding a key");
    }
    memcpy(copy, data, (size_t)n);
    copy[n] = '\0';
    BIO_free(b);
    *pem = copy;
    *len = (size_t)n;
    return BG_OK;
}

void
bg_pki_secret_free(void *p, size_t len)
{
    if (p != NULL) {
        OPENSSL_cleanse(p, len);
        free(p);
    }
}

/* Never let OpenSSL prompt on the terminal for a pass phrase: refuse. */
static int
no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf, (void)size, (void)rwflag, (void)u;
    return -1;
}

/* A read-only BIO over len bytes, refusing sizes an int cannot hold. */
static int
mem_bio(const void *data, size_t len, BIO **out, bg_err *err)
{
    if (data == NULL || len > BG_PKI_FILE_MAX)
        return bg_err_set(err, BG_ELIMIT, "PEM input larger than %d bytes", BG_PKI_FILE_MAX);
    BIO *b = BIO_new_mem_buf(data, (int)len);
    if (b == NULL)
        return bg_pki_ossl_fail(err, BG_ENOMEM, "cannot allocate a memory BIO");
    *out = b;
    return BG_OK;
}

int
bg_pki_key_load_mem(const void *pem, size_t len, EVP_PKEY **out, bg_err *err)
{
    BIO *b = NULL;
    int rc = mem_bio(pem, len, &b, err);
    if (rc != BG_OK)
        return rc;
    EVP_PKEY *key = PEM_read_bio_PrivateKey(b, NULL, no_passphrase, NULL);
    BIO_free(b);
    if (key == NULL)
        return bg_pki_ossl_fail(err, BG_ECRYPTO, "not an unencrypted PEM private key");
    if (!bg_pki_key_is_p256(key)) {
        EVP_PKEY_free(key);
        return bg_err_set(err, BG_EINVAL, "private key is not ECDSA P-256");
    }
    /* A damaged key file can hold a private scalar that does not match its public
     * point: it loads, and then every signature it makes fails at the peers. */
    EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL);
    int ok = pc != NULL && EVP_PKEY_pairwise_check(pc) == 1;
    EVP_PKEY_CTX_free(pc);
    if (!ok) {
        EVP_PKEY_free(key);
        return bg_pki_ossl_fail(err, BG_ECRYPTO,
                                "private key does not match its own public key (damaged key)");
    }
    *out = key;
    return BG_OK;
}

/* rc, with err's message (if rc is an error) put after "path: ". */
static int
in_file(bg_err *err, int rc, const char *path)
{
    if (rc != BG_OK && err != NULL) {
        char msg[BG_ERR_MSG_MAX];
        snprintf(msg, sizeof msg, "%s", err->msg);
        bg_err_set(err, rc, "%s: %s", path, msg);
    }
    return rc;
}

int
bg_pki_key_load(const char *path, EVP_PKEY **out, bg_err *err)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    struct stat st;
    int rc = bg_file_read(path, BG_PKI_FILE_MAX, &buf, &len, &st, err);
    if (rc != BG_OK)
        return rc;
    /* Like ssh: a key others can read is a key that may have leaked. */
    if ((st.st_mode & 077) != 0) {
        OPENSSL_cleanse(buf, len);
        free(buf);
        return bg_err_set(err, BG_EINVAL,
                          "%s: permissions %04o are too open for a private key (chmod 600)", path,
                          (unsigned)(st.st_mode & 07777));
    }
    rc = bg_pki_key_load_mem(buf, len, out, err);
    OPENSSL_cleanse(buf, len);
    free(buf);
    return in_file(err, rc, path);
}

/* --- PEM objects --- */

enum pem_kind { PEM_CERT, PEM_CSR, PEM_CRL };

/* The one PEM reader for certificates, CSRs and CRLs; *out is the X509,
 * X509_REQ or X509_CRL kind names. */
static int
from_pem(enum pem_kind kind, const void *pem, size_t len, void **out, bg_err *err)
{
    static const char *const what[] = {
        [PEM_CERT] = "not a PEM certificate",
        [PEM_CSR] = "not a PEM certificate request",
        [PEM_CRL] = "not a PEM CRL",
    };
    BIO *b = NULL;
    int rc = mem_bio(pem, len, &b, err);
    if (rc != BG_OK)
        return rc;
    void *obj = NULL;
    switch (kind) {
    case PEM_CERT:
        obj = PEM_read_bio_X509(b, NULL, no_passphrase, NULL);
        break;
    case PEM_CSR:
        obj = PEM_read_bio_X509_REQ(b, NULL, no_passphrase, NULL);
        break;
    case PEM_CRL:
        obj = PEM_read_bio_X509_CRL(b, NULL, no_passphrase, NULL);
        break;
    }
    BIO_free(b);
    if (obj == NULL)
        return bg_pki_ossl_fail(err, BG_EINVAL, "%s", what[kind]);
    *out = obj;
    return BG_OK;
}

/* from_pem on the contents of path; names the file in any error. */
static int
load_file(enum pem_kind kind, const char *path, void **out, bg_err *err)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = bg_file_read(path, BG_PKI_FILE_MAX, &buf, &len, NULL, err);
    if (rc != BG_OK)
        return rc;
    rc = from_pem(kind, buf, len, out, err);
    free(buf);
    return in_file(err, rc, path);
}

int
bg_pki_cert_load_mem(const void *pem, size_t len, X509 **out, bg_err *err)
{
    void *x = NULL;
    int rc = from_pem(PEM_CERT, pem, len, &x, err);
    if (rc == BG_OK)
        *out = x;
    return rc;
}

int
bg_pki_cert_load(const char *path, X509 **out, bg_err *err)
{
    void *x = NULL;
    int rc = load_file(PEM_CERT, path, &x, err);
    if (rc == BG_OK)
        *out = x;
    return rc;
}

int
bg_pki_csr_load_mem(const void *pem, size_t len, X509_REQ **out, bg_err *err)
{
    void *r = NULL;
    int rc = from_pem(PEM_CSR, pem, len, &r, err);
    if (rc == BG_OK)
        *out = r;
    return rc;
}

int
bg_pki_csr_load(const char *path, X509_REQ **out, bg_err *err)
{
    void *r = NULL;
    int rc = load_file(PEM_CSR, path, &r, err);
    if (rc == BG_OK)
        *out = r;
    return rc;
}

int
bg_pki_crl_load_mem(const void *pem, size_t len, X509_CRL **out, bg_err *err)
{
    void *c = NULL;
    int rc = from_pem(PEM_CRL, pem, len, &c, err);
    if (rc == BG_OK)
        *out = c;
    return rc;
}

int
bg_pki_crl_load(const char *path, X509_CRL **out, bg_err *err)
{
    void *c = NULL;
    int rc = load_file(PEM_CRL, path, &c, err);
    if (rc == BG_OK)
        *out = c;
    return rc;
}

int
bg_pki_cert_from_der(const uint8_t *der, size_t len, X509 **out, bg_err *err)
{
    if (der == NULL || len == 0)
        return bg_err_set(err, BG_EINVAL, "empty certificate");
    if (len > BG_PKI_FILE_MAX)
        return bg_err_set(err, BG_ELIMIT, "certificate larger than %d bytes", BG_PKI_FILE_MAX);
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)len);
    if (x == NULL)
        return bg_pki_ossl_fail(err, BG_EINVAL, "not a DER certificate");
    if (p != der + len) {
        X509_free(x);
        return bg_err_set(err, BG_EINVAL, "%zu bytes after the DER certificate",
                          (size_t)(der + len - p));
    }
    *out = x;
    return BG_OK;
}

int
bg_pki_cert_to_der(X509 *cert, uint8_t **der, size_t *len, bg_err *err)
{
    unsigned char *buf = NULL;
    int n = i2d_X509(cert, &buf);
    if (n <= 0)
        return bg_pki_ossl_fail(err, BG_ECRYPTO, "cannot encode a certificate");
    *der = buf;
    *len = (size_t)n;
    return BG_OK;
}

/* The PEM text a writer callback produces, copied to an OPENSSL_malloc'd
 * NUL-terminated buffer. */
static int
bio_to_string(BIO *b, char **pem, size_t *len, bg_err *err)
{
    char *data = NULL;
    long n = BIO_get_mem_data(b, &data);
    if (n <= 0)
        return bg_pki_ossl_fail(err, BG_ECRYPTO, "empty PEM output");
    char *copy = OPENSSL_malloc((size_t)n + 1);
    if (copy == NULL)
        return bg_err_set(err, BG_ENOMEM, "out of memory");
    memcpy(copy, data, (size_t)n);
    copy[n] = '\0';
    *pem = copy;
    *len = (size_t)n;
    return BG_OK;
}

static int
to_pem(enum pem_kind kind, void *obj, char **pem, size_t *len, bg_err *err)
{
    BIO *b = BIO_new(BIO_s_mem());
    if (b == NULL)
        return bg_pki_ossl_fail(err, BG_ENOMEM, "cannot allocate a memory BIO");
    int ok = 0;
    switch (kind) {
    case PEM_CERT:
        ok = PEM_write_bio_X509(b, obj);
        break;
    case PEM_CSR:
        ok = PEM_write_bio_X509_REQ(b, obj);
        break;
    case PEM_CRL:
        ok = PEM_write_bio_X509_CRL(b, obj);
        break;
    }
    int rc = ok == 1 ? bio_to_string(b, pem, len, err)
                     : bg_pki_ossl_fail(err, BG_ECRYPTO, "cannot encode PEM");
    BIO_free(b);
    return rc;
}

static int
write_pem(enum pem_kind kind, void *obj, const char *path, bool replace, bg_err *err)
{
    char *pem = NULL;
    size_t len = 0;
    int rc = to_pem(kind, obj, &pem, &len, err);
    if (rc != BG_OK)
        return rc;
    rc = replace ? bg_file_write_replace(path, pem, len, 0644, err)
                 : bg_file_write_new(path, pem, len, 0644, err);
    OPENSSL_free(pem);
    return rc;
}

int
bg_pki_cert_write(const char *path, X509 *cert, bg_err *err)
{
    return write_pem(PEM_CERT, cert, path, true, err);
}

int
bg_pki_cert_pem(X509 *cert, char **pem, size_t *len, bg_err *err)
{
    return to_pem(PEM_CERT, cert, pem, len, err);
}

int
bg_pki_csr_write_new(const char *path, X509_REQ *req, bg_err *err)
{
    return write_pem(PEM_CSR, req, path, false, err);
}

int
bg_pki_crl_write(const char *path, X509_CRL *crl, bg_err *err)
{
    return write_pem(PEM_CRL, crl, path, true, err);
}

int
bg_pki_crl_pem(X509_CRL *crl, char **pem, size_t *len, bg_err *err)
{
    return to_pem(PEM_CRL, crl, pem, len, err);
}

/* --- names and facts --- */

/* The single entry nid of name as UTF-8 into out; BG_EINVAL if there is none,
 * more than one, or it holds a NUL or does not fit. */
static int
single_entry(const X509_NAME *name, int nid, char *out, size_t outsz, bg_err *err)
{
    const char *what = OBJ_nid2sn(nid);
    int i = X509_NAME_get_index_by_NID(name, nid, -1);
    if (i < 0)
        return bg_err_set(err, BG_EINVAL, "subject has no %s", what);
    if (X509_NAME_get_index_by_NID(name, nid, i) >= 0)
        return bg_err_set(err, BG_EINVAL, "subject has more than one %s", what);
    const ASN1_STRING *s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
    unsigned char *utf8 = NULL;
    int n = ASN1_STRING_to_UTF8(&utf8, s);
    if (n < 0)
        return bg_pki_ossl_fail(err, BG_EINVAL, "subject %s is not a valid string", what);
    int rc = BG_OK;
    if ((size_t)n >= outsz || memchr(utf8, '\0', (size_t)n) != NULL) {
        rc = bg_err_set(err, BG_EINVAL, "subject %s is too long or holds a NUL", what);
    } else {
        memcpy(out, utf8, (size_t)n);
        out[n] = '\0';
    }
    OPENSSL_free(utf8);
    return rc;
}

int
bg_pki_cert_city(X509 *cert, char city[BG_CITY_CODE_LEN + 1], bg_err *err)
{
    char cn[BG_PKI_NAME_MAX + 1];
    int rc = single_entry(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn, err);
    if (rc != BG_OK)
        return rc;
    if (!bg_city_code_valid(cn))
        return bg_err_set(err, BG_EINVAL, "subject CN '%s' is not a 6-digit city code", cn);
    memcpy(city, cn, BG_CITY_CODE_LEN + 1);
    return BG_OK;
}

int
bg_pki_cert_serial_hex(X509 *cert, char out[BG_PKI_SERIAL_HEX_MAX + 1], bg_err *err)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
    if (bn == NULL)
        return bg_pki_ossl_fail(err, BG_EINVAL, "malformed serial number");
    int rc = BG_OK;
    char *hex = BN_is_negative(bn) ? NULL : BN_bn2hex(bn);
    if (hex == NULL)
        rc = bg_pki_ossl_fail(err, BG_EINVAL, "serial number is negative or unprintable");
    else if (strlen(hex) > BG_PKI_SERIAL_HEX_MAX)
        rc = bg_err_set(err, BG_EINVAL, "serial number longer than 20 octets");
    else
        strcpy(out, hex);
    OPENSSL_free(hex);
    BN_free(bn);
    return rc;
}

int
bg_pki_crl_next_update(const X509_CRL *crl, time_t *out, bg_err *err)
{
    const ASN1_TIME *t = X509_CRL_get0_nextUpdate(crl);
    if (t == NULL)
        return bg_err_set(err, BG_EINVAL, "CRL has no nextUpdate");
    return bg_pki_asn1_time(t, out, err);
}

int
bg_pki_crl_seconds_left(const X509_CRL *crl, time_t now, int64_t *out, bg_err *err)
{
    time_t next = 0;
    int rc = bg_pki_crl_next_update(crl, &next, err);
    if (rc == BG_OK)
        *out = (int64_t)next - (int64_t)now;
    return rc;
}

int
bg_pki_crl_number(const X509_CRL *crl, uint64_t *out, bg_err *err)
{
    int crit = 0;
    ASN1_INTEGER *n = X509_CRL_get_ext_d2i(crl, NID_crl_number, &crit, NULL);
    if (n == NULL) {
        ERR_clear_error();
        return bg_err_set(err, crit == -1 ? BG_ENOTFOUND : BG_EINVAL,
                          crit == -1 ? "CRL has no CRL number" : "CRL number is malformed");
    }
    int ok = ASN1_INTEGER_get_uint64(out, n);
    ASN1_INTEGER_free(n);
    if (ok != 1)
        return bg_pki_ossl_fail(err, BG_EINVAL, "CRL number out of range");
    return BG_OK;
}

int
bg_pki_crl_revoked(const X509_CRL *crl, const char *serial_hex, time_t *when, bg_err *err)
{
    BIGNUM *bn = NULL;
    size_t len = strlen(serial_hex);
    if (len == 0 || len > BG_PKI_SERIAL_HEX_MAX ||
        strspn(serial_hex, "0123456789abcdefABCDEF") != len ||
        BN_hex2bn(&bn, serial_hex) != (int)len) {
        BN_free(bn);
        ERR_clear_error();
        return bg_err_set(err, BG_EINVAL, "'%.48s' is not a hex serial number", serial_hex);
    }
    ASN1_INTEGER *serial = BN_to_ASN1_INTEGER(bn, NULL);
    BN_free(bn);
    if (serial == NULL)
        return bg_pki_ossl_fail(err, BG_ENOMEM, "out of memory");
    X509_REVOKED *rev = NULL;
    int found = X509_CRL_get0_by_serial((X509_CRL *)crl, &rev, serial);
    ASN1_INTEGER_free(serial);
    ERR_clear_error();
    if (found != 1 || rev == NULL)
        return bg_err_set(err, BG_ENOTFOUND, "serial %s is not in the CRL", serial_hex);
    if (when != NULL)
        return bg_pki_asn1_time(X509_REVOKED_get0_revocationDate(rev), when, err);
    return BG_OK;
}

/* --- CSRs --- */

X509_EXTENSION *
bg_pki_san_ext(const char *city)
{
    X509_EXTENSION *ext = NULL;
    GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
    GENERAL_NAME *gn = GENERAL_NAME_new();
    ASN1_IA5STRING *ia5 = ASN1_IA5STRING_new();
    if (gens == NULL || gn == NULL || ia5 == NULL || ASN1_STRING_set(ia5, city, -1) != 1)
        goto out;
    GENERAL_NAME_set0_value(gn, GEN_DNS, ia5);
    ia5 = NULL;
    if (sk_GENERAL_NAME_push(gens, gn) <= 0)
        goto out;
    gn = NULL;
    ext = X509V3_EXT_i2d(NID_subject_alt_name, 0, gens);
out:
    ASN1_IA5STRING_free(ia5);
    GENERAL_NAME_free(gn);
    GENERAL_NAMES_free(gens);
    return ext;
}

/* BG_OK iff gens is exactly one DNS name equal to city. */
static int
san_is_city(const GENERAL_NAMES *gens, const char *city, const char *who, bg_err *err)
{
    if (gens == NULL || sk_GENERAL_NAME_num(gens) != 1)
        return bg_err_set(err, BG_EINVAL, "%s subjectAltName must be exactly DNS:%s", who, city);
    const GENERAL_NAME *gn = sk_GENERAL_NAME_value(gens, 0);
    int type = 0;
    const ASN1_STRING *v = GENERAL_NAME_get0_value(gn, &type);
    if (type != GEN_DNS || ASN1_STRING_length(v) != BG_CITY_CODE_LEN ||
        memcmp(ASN1_STRING_get0_data(v), city, BG_CITY_CODE_LEN) != 0)
        return bg_err_set(err, BG_EINVAL, "%s subjectAltName must be exactly DNS:%s", who, city);
    return BG_OK;
}

int
bg_pki_csr_make(EVP_PKEY *key, const char *city, const char *name, X509_REQ **out, bg_err *err)
{
    if (!bg_city_code_valid(city))
        return bg_err_set(err, BG_EINVAL, "city code must be 6 digits");
    if (!bg_pki_name_valid(name))
        return bg_err_set(err, BG_EINVAL, "invalid city name");
    if (!bg_pki_key_is_p256(key))
        return bg_err_set(err, BG_EINVAL, "key is not ECDSA P-256");
    X509_REQ *req = X509_REQ_new();
    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
    X509_EXTENSION *san = bg_pki_san_ext(city);
    X509_NAME *subject = req ? X509_REQ_get_subject_name(req) : NULL;
    int rc = BG_OK;
    if (req == NULL || exts == NULL || san == NULL || subject == NULL ||
        X509_REQ_set_version(req, X509_REQ_VERSION_1) != 1 ||
        X509_NAME_add_entry_by_NID(subject, NID_organizationName, MBSTRING_UTF8,
                                   (const unsigned char *)name, -1, -1, 0) != 1 ||
        X509_NAME_add_entry_by_NID(subject, NID_commonName, MBSTRING_UTF8,
                                   (const unsigned char *)city, -1, -1, 0) != 1 ||
        X509_REQ_set_pubkey(req, key) != 1 || sk_X509_EXTENSION_push(exts, san) <= 0) {
        rc = bg_pki_ossl_fail(err, BG_ECRYPTO, "cannot build the certificate request");
        goto out;
    }
    san = NULL;
    if (X509_REQ_add_extensions(req, exts) != 1 || X509_REQ_sign(req, key, EVP_sha256()) <= 0) {
        rc = bg_pki_ossl_fail(err, BG_ECRYPTO, "cannot sign the certificate request");
        goto out;
    }
    *out = req;
    req = NULL;
out:
    X509_EXTENSION_free(san);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_REQ_free(req);
    return rc;
}

int
bg_pki_csr_check(X509_REQ *req, char city[BG_CITY_CODE_LEN + 1], char name[BG_PKI_NAME_MAX + 1],
                 bg_err *err)
{
    EVP_PKEY *pub = X509_REQ_get0_pubkey(req);
    if (pub == NULL)
        return bg_pki_ossl_fail(err, BG_EINVAL, "CSR public key is malformed");
    if (!bg_pki_key_is_p256(pub))
        return bg_err_set(err, BG_EINVAL, "CSR key is not ECDSA P-256");
    /* Proof of possession: the requester holds the private half. */
    if (X509_REQ_verify(req, pub) != 1)
        return bg_pki_ossl_fail(err, BG_ECRYPTO, "CSR signature does not verify");
    const X509_NAME *subject = X509_REQ_get_subject_name(req);
    char cn[BG_PKI_NAME_MAX + 1];
    int rc = single_entry(subject, NID_commonName, cn, sizeof cn, err);
    if (rc != BG_OK)
        return rc;
    if (!bg_city_code_valid(cn))
        return bg_err_set(err, BG_EINVAL, "CSR subject CN '%s' is not a 6-digit city code", cn);
    char o[BG_PKI_NAME_MAX + 1];
    rc = single_entry(subject, NID_organizationName, o, sizeof o, err);
    if (rc != BG_OK)
        return rc;
    if (!bg_pki_name_valid(o))
        return bg_err_set(err, BG_EINVAL, "CSR subject O is not a valid name");
    STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
    for (int i = 0; rc == BG_OK && i < sk_X509_EXTENSION_num(exts); i++) {
        X509_EXTENSION *ext = sk_X509_EXTENSION_value(exts, i);
        if (OBJ_obj2nid(X509_EXTENSION_get_object(ext)) != NID_subject_alt_name)
            continue; /* the CA decides every other extension itself */
        GENERAL_NAMES *gens = X509V3_EXT_d2i(ext);
        rc = san_is_city(gens, cn, "CSR", err);
        GENERAL_NAMES_free(gens);
    }
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    ERR_clear_error();
    if (rc != BG_OK)
        return rc;
    memcpy(city, cn, BG_CITY_CODE_LEN + 1);
    memcpy(name, o, strlen(o) + 1);
    return BG_OK;
}
