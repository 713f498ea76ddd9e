/*
 * ca.c - the federation CA directory: init, issue, revoke, CRL (see pki.h).
 *
 * index.txt is the CA's memory, one line per issued certificate:
 *
 *     # baygate CA index v1
 *     crl-number 3
 *     cert <serial hex> <city> <not-after> <sha256 hex> <revoked-at or ->
 *
 * It is rewritten whole and atomically on every change, under the flock of
 * ca.lock, so it is always a complete old or complete new version.
 */
#include "certs/pki.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "certs/pki_int.h"
#include "common/num.h"

#define CA_KEY "ca.key"
#define CA_CERT "ca.crt"
#define CA_INDEX "index.txt"
#define CA_LOCK "ca.lock"
#define INDEX_HEADER "# baygate CA index v1"
#define INDEX_FILE_MAX (256 * 1024 * 1024)
#define INDEX_ENTRIES_MAX 1000000
/* Longest line index_format writes, with room to spare. */
#define INDEX_LINE_MAX 192
#define DAYS_MAX 36500

struct bg_pki_ca {
    char dir[PATH_MAX];
    int lock_fd;
    EVP_PKEY *key;
    X509 *cert;
    bg_pki_issued *v;
    size_t n, cap;
    uint64_t crl_number; /* of the last CRL made; 0 before the first */
};

/* --- the index file --- */

/* Serials are written as BN_bn2hex prints them: upper case, whole octets. */
static bool
serial_hex_valid(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || len > BG_PKI_SERIAL_HEX_MAX || len % 2 != 0)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'A' && s[i] <= 'F')))
            return false;
    return true;
}

/* Any-case hex from an operator, in the index's form; false if not hex. */
static bool
serial_normalize(const char *in, char out[BG_PKI_SERIAL_HEX_MAX + 1])
{
    size_t len = strlen(in);
    if (len == 0 || len > BG_PKI_SERIAL_HEX_MAX)
        return false;
    BIGNUM *bn = NULL;
    if (BN_hex2bn(&bn, in) != (int)len) {
        BN_free(bn);
        ERR_clear_error();
        return false;
    }
    char *hex = BN_bn2hex(bn);
    BN_free(bn);
    bool ok = hex != NULL && strlen(hex) <= BG_PKI_SERIAL_HEX_MAX && hex[0] != '-';
    if (ok)
        strcpy(out, hex);
    OPENSSL_free(hex);
    return ok;
}

static int
push_entry(bg_pki_ca *ca, const bg_pki_issued *e, bg_err *err)
{
    if (ca->n == ca->cap) {
        if (ca->cap >= INDEX_ENTRIES_MAX)
            return bg_err_set(err, BG_ELIMIT, "CA index holds %d certificates already",
                              INDEX_ENTRIES_MAX);
        size_t cap = ca->cap ? 2 * ca->cap : 16;
        bg_pki_issued *v = realloc(ca->v, cap * sizeof *v);
        if (v == NULL)
            return bg_err_set(err, BG_ENOMEM, "out of memory for the CA index");
        ca->v = v;
        ca->cap = cap;
    }
    ca->v[ca->n++] = *e;
    return BG_OK;
}

/* Splits line in place at single spaces into at most max fields. */
static int
split(char *line, char **f, int max)
{
    int n = 0;
    char *save = NULL;
    for (char *t = strtok_r(line, " ", &save); t != NULL; t = strtok_r(NULL, " ", &save)) {
        if (n == max)
            return max + 1;
        f[n++] = t;
    }
    return n;
}

static int
parse_cert_line(char **f, bg_pki_issued *e, bg_err *err)
{
    memset(e, 0, sizeof *e);
    if (!serial_hex_valid(f[1]))
        return bg_err_set(err, BG_EINVAL, "bad serial '%s'", f[1]);
    strcpy(e->serial, f[1]);
    if (!bg_city_code_valid(f[2]))
        return bg_err_set(err, BG_EINVAL, "bad city '%s'", f[2]);
    strcpy(e->city, f[2]);
    int rc = bg_pki_time_parse(f[3], &e->not_after, err);
    if (rc != BG_OK)
        return rc;
    if (!bg_sig_fp_parse(f[4], e->fingerprint))
        return bg_err_set(err, BG_EINVAL, "bad fingerprint");
    if (strcmp(f[5], "-") == 0)
        return BG_OK;
    return bg_pki_time_parse(f[5], &e->revoked_at, err);
}

static int
index_parse(bg_pki_ca *ca, const char *path, char *text, size_t len, bg_err *err)
{
    if (memchr(text, '\0', len) != NULL)
        return bg_err_set(err, BG_EINVAL, "%s: holds a NUL byte", path);
    bool have_number = false;
    size_t lineno = 0;
    char *save = NULL;
    /* strtok_r skips empty lines, which the format allows anyway. */
    for (char *line = strtok_r(text, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        lineno++;
        if (line[0] == '#')
            continue;
        char *f[7];
        int n = split(line, f, 6);
        bg_err sub = {0};
        int rc = BG_OK;
        if (n == 2 && strcmp(f[0], "crl-number") == 0 && !have_number) {
            uint64_t v = 0;
            if (bg_num_u64(f[1], 0, UINT64_MAX, &v, NULL) != BG_OK)
                rc = bg_err_set(&sub, BG_EINVAL, "bad crl-number '%s'", f[1]);
            ca->crl_number = v;
            have_number = true;
        } else if (n == 6 && strcmp(f[0], "cert") == 0) {
            bg_pki_issued e;
            rc = parse_cert_line(f, &e, &sub);
            if (rc == BG_OK)
                rc = push_entry(ca, &e, &sub);
        } else {
            rc = bg_err_set(&sub, BG_EINVAL, "unrecognised line");
        }
        if (rc != BG_OK)
            return bg_err_set(err, rc, "%s: line %zu: %s", path, lineno, sub.msg);
    }
    if (!have_number)
        return bg_err_set(err, BG_EINVAL, "%s: no crl-number line", path);
    return BG_OK;
}

static int
index_load(bg_pki_ca *ca, bg_err *err)
{
    char path[PATH_MAX];
    int rc = bg_path_join(path, sizeof path, ca->dir, CA_INDEX, err);
    if (rc != BG_OK)
        return rc;
    uint8_t *buf = NULL;
    size_t len = 0;
    rc = bg_file_read(path, INDEX_FILE_MAX, &buf, &len, NULL, err);
    if (rc != BG_OK)
        return rc;
    rc = index_parse(ca, path, (char *)buf, len, err);
    free(buf);
    return rc;
}

static int
index_save(const bg_pki_ca *ca, bg_err *err)
{
    char path[PATH_MAX];
    int rc = bg_path_join(path, sizeof path, ca->dir, CA_INDEX, err);
    if (rc != BG_OK)
        return rc;
    size_t cap = 256 + ca->n * INDEX_LINE_MAX, off = 0;
    char *buf = malloc(cap);
    if (buf == NULL)
        return bg_err_set(err, BG_ENOMEM, "out of memory writing the CA index");
    int n = snprintf(buf, cap,
                     INDEX_HEADER "\ncrl-number %llu\n"
                                  "# cert <serial> <city> <not-after> <sha256> <revoked-at|->\n",
                     (unsigned long long)ca->crl_number);
    off = (size_t)n;
    for (size_t i = 0; i < ca->n; i++) {
        const bg_pki_issued *e = &ca->v[i];
        char na[BG_PKI_TIME_LEN], ra[BG_PKI_TIME_LEN] = "-", fp[BG_SIG_FP_HEX_LEN + 1];
        bg_pki_time_format(e->not_after, na);
        if (e->revoked_at != 0)
            bg_pki_time_format(e->revoked_at, ra);
        bg_sig_fp_hex(e->fingerprint, fp);
        n = snprintf(buf + off, cap - off, "cert %s %s %s %s %s\n", e->serial, e->city, na, fp, ra);
        if (n < 0 || (size_t)n >= cap - off) {
            free(buf);
            return bg_err_set(err, BG_ELIMIT, "CA index line too long");
        }
        off += (size_t)n;
    }
    rc = bg_file_write_replace(path, buf, off, 0644, err);
    free(buf);
    return rc;
}

/* --- building certificates --- */

/* A positive random 128-bit serial (RFC 5280 allows up to 20 octets). */
static int
random_serial(ASN1_INTEGER **out, bg_err *err)
{
    uint8_t b[16];
    BIGNUM *bn = NULL;
    do {
        if (RAND_bytes(b, sizeof b) != 1)
            return bg_pki_ossl_fail(err, BG_ECRYPTO, "no randomness for a serial number");
        BN_free(bn);
        bn = BN_bin2bn(b, sizeof b, NULL);
        if (bn == NULL)
            return bg_pki_ossl_fail(err, BG_ENOMEM, "cannot make a serial number");
    } while (BN_is_zero(bn));
    ASN1_INTEGER *ai = BN_to_ASN1_INTEGER(bn, NULL);
    BN_free(bn);
    if (ai == NULL)
        return bg_pki_ossl_fail(err, BG_ENOMEM, "cannot make a serial number");
    *out = ai;
    return BG_OK;
}

static int
add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value, bg_err *err)
{
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
    if (ext == NULL)
        return bg_pki_ossl_fail(err, BG_ECRYPTO, "cannot make extension %s", OBJ_nid2sn(nid));
    int ok = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    if (ok != 1)
        return bg_pki_ossl_fail(err, BG_ECRYPTO, "cannot add extension %s", OBJ_nid2sn(nid));
    return BG_OK;
}

/* A v3 certificate with serial, subject O=o CN=cn, validity and key; the
 * issuer name is the subject's when issuer is NULL (self-signed). */
static int
cert_skeleton(X509 **out, ASN1_INTEGER *serial, const char *o, const char *cn, X509 *issuer,
              time_t not_before, time_t not_after, EVP_PKEY *pub, bg_err *err)
{
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    if (x == NULL || name == NULL || X509_set_version(x, X509_VERSION_3) != 1 ||
        X509_set_serialNumber(x, serial) != 1 ||
        X509_NAME_add_entry_by_NID(name, NID_organizationName, MBSTRING_UTF8,
                                   (const unsigned char *)o, -1, -1, 0) != 1 ||
        X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8, (const unsigned char *)cn,
                                   -1, -1, 0) != 1 ||
        X509_set_subject_name(x, name) != 1 ||
        X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name) != 1 ||
        ASN1_TIME_set(X509_getm_notBefore(x), not_before) == NULL ||
        ASN1_TIME_set(X509_getm_notAfter(x), not_after) == NULL || X509_set_pubkey(x, pub) != 1) {
        X509_NAME_free(name);
        X509_free(x);
        return bg_pki_ossl_fail(err, BG_ECRYPTO, "cannot build a certificate");
    }
    X509_NAME_free(name);
    *out = x;
    return BG_OK;
}

static int
sign_cert(X509 *x, EVP_PKEY *key, bg_err *err)
{
    if (X509_sign(x, key, EVP_sha256()) <= 0)
        return bg_pki_ossl_fail(err, BG_ECRYPTO, "cannot sign the certificate");
    return BG_OK;
}

static int
make_root(X509 **out, EVP_PKEY *key, const char *name, time_t now, int days, bg_err *err)
{
    ASN1_INTEGER *serial = NULL;
    X509 *x = NULL;
    int rc = random_serial(&serial, err);
    if (rc == BG_OK)
        rc = cert_skeleton(&x, serial, name, name, NULL, now - BG_PKI_SKEW,
                           now + (time_t)days * 86400, key, err);
    ASN1_INTEGER_free(serial);
    if (rc != BG_OK)
        return rc;
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    /* pathlen:0: the root signs city certificates only, never another CA.
     * digitalSignature: the operator signs the roster with this key. */
    if ((rc = add_ext(x, &ctx, NID_basic_constraints, "critical,CA:TRUE,pathlen:0", err)) ||
        (rc = add_ext(x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature",
                      err)) ||
        (rc = add_ext(x, &ctx, NID_subject_key_identifier, "hash", err)) ||
        (rc = add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always", err)) ||
        (rc = sign_cert(x, key, err))) {
        X509_free(x);
        return rc;
    }
    *out = x;
    return BG_OK;
}

/* --- init, open, close --- */

/* Makes dir (0700) or accepts an existing directory that holds no CA files. */
static int
prepare_dir(const char *dir, bool *created, bg_err *err)
{
    *created = false;
    if (mkdir(dir, 0700) == 0) {
        *created = true;
        return BG_OK;
    }
    if (errno != EEXIST)
        return bg_err_set(err, BG_EIO, "cannot create %s: %s", dir, strerror(errno));
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return bg_err_set(err, BG_EEXIST, "%s exists and is not a directory", dir);
    static const char *const files[] = {CA_KEY, CA_CERT, CA_INDEX};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char path[PATH_MAX];
        int rc = bg_path_join(path, sizeof path, dir, files[i], err);
        if (rc != BG_OK)
            return rc;
        if (lstat(path, &st) == 0)
            return bg_err_set(err, BG_EEXIST, "%s already holds a CA (%s exists); not touching it",
                              dir, files[i]);
    }
    return BG_OK;
}

int
bg_pki_ca_init(const char *dir, const char *name, int days, bg_err *err)
{
    if (name == NULL)
        name = BG_PKI_CA_NAME_DEFAULT;
    if (!bg_pki_name_valid(name))
        return bg_err_set(err, BG_EINVAL,
                          "CA name must be 1-%d bytes of UTF-8 without control characters",
                          BG_PKI_NAME_MAX);
    if (days < 1 || days > DAYS_MAX)
        return bg_err_set(err, BG_EINVAL, "CA validity must be 1-%d days", DAYS_MAX);
    char key_path[PATH_MAX], cert_path[PATH_MAX], index_path[PATH_MAX];
    int rc;
    if ((rc = bg_path_join(key_path, sizeof key_path, dir, CA_KEY, err)) ||
        (rc = bg_path_join(cert_path, sizeof cert_path, dir, CA_CERT, err)) ||
        (rc = bg_path_join(index_path, sizeof index_path, dir, CA_INDEX, err)))
        return rc;
    bool created_dir = false;
    rc = prepare_dir(dir, &created_dir, err);
    if (rc != BG_OK)
        return rc;

    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    bool wrote_key = false, wrote_cert = false;
    bg_pki_ca tmp = {.crl_number = 0};
    snprintf(tmp.dir, sizeof tmp.dir, "%s", dir);
    if ((rc = bg_pki_key_generate(&key, err)) ||
        (rc = make_root(&cert, key, name, time(NULL), days, err)) ||
        (rc = bg_pki_key_write_new(key_path, key, err)))
        goto out;
    wrote_key = true;
    char *pem = NULL;
    size_t len = 0;
    if ((rc = bg_pki_cert_pem(cert, &pem, &len, err)))
        goto out;
    rc = bg_file_write_new(cert_path, pem, len, 0644, err);
    OPENSSL_free(pem);
    if (rc != BG_OK)
        goto out;
    wrote_cert = true;
    rc = index_save(&tmp, err);
out:
    if (rc != BG_OK) {
        /* Leave nothing half made: a later init must be able to start over. */
        if (wrote_cert)
            unlink(cert_path);
        if (wrote_key)
            unlink(key_path);
        if (created_dir)
            rmdir(dir);
    }
    X509_free(cert);
    EVP_PKEY_free(key);
    return rc;
}

/* Opens dir: certificate and index always, the key (and an exclusive lock) if with_key. */
static int
ca_open(bg_pki_ca **out, const char *dir, bool with_key, bg_err *err)
{
    bg_pki_ca *ca = calloc(1, sizeof *ca);
    if (ca == NULL)
        return bg_err_set(err, BG_ENOMEM, "out of memory");
    ca->lock_fd = -1;
    char path[PATH_MAX];
    int rc = BG_OK;
    int n = snprintf(ca->dir, sizeof ca->dir, "%s", dir);
    if (n < 0 || (size_t)n >= sizeof ca->dir) {
        rc = bg_err_set(err, BG_ELIMIT, "CA directory path too long");
        goto fail;
    }
    struct stat st;
    if ((rc = bg_path_join(path, sizeof path, dir, CA_CERT, err)))
        goto fail;
    if (stat(path, &st) != 0) {
        rc = bg_err_set(err, BG_ENOTFOUND,
                        "%s is not a CA directory (no %s; see 'baygate ca init')", dir, CA_CERT);
        goto fail;
    }
    if ((rc = bg_path_join(path, sizeof path, dir, CA_LOCK, err)))
        goto fail;
    ca->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (ca->lock_fd < 0 && (errno == EACCES || errno == EROFS))
        ca->lock_fd = open(path, O_RDONLY | O_CLOEXEC); /* a read-only CA copy */
    if (ca->lock_fd < 0 || flock(ca->lock_fd, with_key ? LOCK_EX : LOCK_SH) != 0) {
        rc = bg_err_set(err, BG_EIO, "cannot lock %s: %s", path, strerror(errno));
        goto fail;
    }
    if ((rc = bg_path_join(path, sizeof path, dir, CA_CERT, err)) ||
        (rc = bg_pki_cert_load(path, &ca->cert, err)))
        goto fail;
    if (with_key && ((rc = bg_path_join(path, sizeof path, dir, CA_KEY, err)) ||
                     (rc = bg_pki_key_load(path, &ca->key, err))))
        goto fail;
    if ((rc = index_load(ca, err)))
        goto fail;
    if (with_key && !bg_sig_key_matches(ca->cert, ca->key)) {
        rc = bg_err_set(err, BG_EINVAL, "%s/%s does not match %s/%s", dir, CA_KEY, dir, CA_CERT);
        goto fail;
    }
    *out = ca;
    return BG_OK;
fail:
    bg_pki_ca_close(ca);
    return rc;
}

int
bg_pki_ca_open(bg_pki_ca **out, const char *dir, bg_err *err)
{
    return ca_open(out, dir, true, err);
}

int
bg_pki_ca_open_index(bg_pki_ca **out, const char *dir, bg_err *err)
{
    return ca_open(out, dir, false, err);
}

void
bg_pki_ca_close(bg_pki_ca *ca)
{
    if (ca == NULL)
        return;
    EVP_PKEY_free(ca->key);
    X509_free(ca->cert);
    free(ca->v);
    if (ca->lock_fd >= 0)
        close(ca->lock_fd);
    free(ca);
}

X509 *
bg_pki_ca_cert(const bg_pki_ca *ca)
{
    return ca->cert;
}

EVP_PKEY *
bg_pki_ca_key(const bg_pki_ca *ca)
{
    return ca->key;
}

size_t
bg_pki_ca_count(const bg_pki_ca *ca)
{
    return ca->n;
}

const bg_pki_issued *
bg_pki_ca_entry(const bg_pki_ca *ca, size_t i)
{
    return i < ca->n ? &ca->v[i] : NULL;
}

/* --- issue --- */

static bool
serial_in_index(const bg_pki_ca *ca, const char *serial)
{
    for (size_t i = 0; i < ca->n; i++)
        if (strcmp(ca->v[i].serial, serial) == 0)
            return true;
    return false;
}

static int
city_extensions(X509 *x, X509 *issuer, const char *city, bg_err *err)
{
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    int rc;
    if ((rc = add_ext(x, &ctx, NID_basic_constraints, "critical,CA:FALSE", err)) ||
        (rc = add_ext(x, &ctx, NID_key_usage, "critical,digitalSignature", err)) ||
        (rc = add_ext(x, &ctx, NID_ext_key_usage, "serverAuth,clientAuth", err)) ||
        (rc = add_ext(x, &ctx, NID_subject_key_identifier, "hash", err)) ||
        (rc = add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always", err)))
        return rc;
    X509_EXTENSION *san = bg_pki_san_ext(city);
    int ok = san != NULL && X509_add_ext(x, san, -1) == 1;
    X509_EXTENSION_free(san);
    if (!ok)
        return bg_pki_ossl_fail(err, BG_ECRYPTO, "cannot add subjectAltName");
    return BG_OK;
}

int
bg_pki_ca_issue(bg_pki_ca *ca, X509_REQ *req, time_t not_before, time_t not_after, X509 **out,
                bg_err *err)
{
    char city[BG_CITY_CODE_LEN + 1], name[BG_PKI_NAME_MAX + 1];
    int rc = bg_pki_csr_check(req, city, name, err);
    if (rc != BG_OK)
        return rc;
    if (not_after <= not_before)
        return bg_err_set(err, BG_EINVAL, "not-after must be later than not-before");
    time_t ca_end;
    if ((rc = bg_pki_asn1_time(X509_get0_notAfter(ca->cert), &ca_end, err)))
        return rc;
    if (not_after > ca_end) {
        char t[BG_PKI_TIME_LEN];
        bg_pki_time_format(ca_end, t);
        return bg_err_set(err, BG_EINVAL, "certificate would outlive the CA (valid until %s)", t);
    }

    ASN1_INTEGER *serial = NULL;
    X509 *x = NULL;
    bg_pki_issued e = {.not_after = not_after};
    memcpy(e.city, city, sizeof city);
    /* 2^-128 collisions are not expected, but the index is the judge. */
    for (int tries = 0;; tries++) {
        ASN1_INTEGER_free(serial);
        serial = NULL;
        if ((rc = random_serial(&serial, err)))
            return rc;
        BIGNUM *bn = ASN1_INTEGER_to_BN(serial, NULL);
        char *hex = bn ? BN_bn2hex(bn) : NULL;
        BN_free(bn);
        if (hex == NULL) {
            ASN1_INTEGER_free(serial);
            return bg_pki_ossl_fail(err, BG_ENOMEM, "cannot format a serial number");
        }
        snprintf(e.serial, sizeof e.serial, "%s", hex);
        OPENSSL_free(hex);
        if (!serial_in_index(ca, e.serial))
            break;
        if (tries == 3) {
            ASN1_INTEGER_free(serial);
            return bg_err_set(err, BG_ECRYPTO, "random serial numbers keep colliding");
        }
    }
    rc = cert_skeleton(&x, serial, name, city, ca->cert, not_before, not_after,
                       X509_REQ_get0_pubkey(req), err);
    ASN1_INTEGER_free(serial);
    if (rc == BG_OK)
        rc = city_extensions(x, ca->cert, city, err);
    if (rc == BG_OK)
        rc = sign_cert(x, ca->key, err);
    if (rc == BG_OK)
        rc = bg_sig_fingerprint(x, e.fingerprint, err);
    if (rc == BG_OK)
        rc = push_entry(ca, &e, err);
    if (rc == BG_OK) {
        /* Record first, hand out second: nothing issued goes unrecorded. */
        rc = index_save(ca, err);
        if (rc != BG_OK)
            ca->n--;
    }
    if (rc != BG_OK) {
        X509_free(x);
        return rc;
    }
    *out = x;
    return BG_OK;
}

/* --- revoke and CRL --- */

int
bg_pki_ca_revoke(bg_pki_ca *ca, const char *city, const char *serial, time_t when, size_t *count,
                 bg_err *err)
{
    if (serial == NULL && !bg_city_code_valid(city))
        return bg_err_set(err, BG_EINVAL, "city code must be 6 digits");
    char want[BG_PKI_SERIAL_HEX_MAX + 1];
    if (serial != NULL && !serial_normalize(serial, want))
        return bg_err_set(err, BG_EINVAL, "serial '%s' is not a hex number of at most %d digits",
                          serial, BG_PKI_SERIAL_HEX_MAX);
    if (serial != NULL)
        serial = want;
    if (when <= 0)
        return bg_err_set(err, BG_EINVAL, "revocation time must be positive");
    size_t hits = 0, already = 0;
    for (size_t i = 0; i < ca->n; i++) {
        bg_pki_issued *e = &ca->v[i];
        if (serial != NULL ? strcmp(e->serial, serial) != 0 : strcmp(e->city, city) != 0)
            continue;
        if (e->revoked_at != 0) {
            already++;
            continue;
        }
        e->revoked_at = when;
        hits++;
    }
    if (hits == 0) {
        if (serial != NULL)
            return bg_err_set(err, already ? BG_EEXIST : BG_ENOTFOUND,
                              already ? "certificate %s is already revoked"
                                      : "no certificate with serial %s in the CA index",
                              serial);
        return bg_err_set(err, BG_ENOTFOUND, "no unrevoked certificate of city %s in the CA index",
                          city);
    }
    int rc = index_save(ca, err);
    if (rc != BG_OK) {
        /* Keep memory equal to disk. */
        for (size_t i = 0; i < ca->n; i++)
            if (ca->v[i].revoked_at == when &&
                (serial != NULL ? strcmp(ca->v[i].serial, serial) == 0
                                : strcmp(ca->v[i].city, city) == 0))
                ca->v[i].revoked_at = 0;
        return rc;
    }
    if (count != NULL)
        *count = hits;
    return BG_OK;
}

static int
add_revoked(X509_CRL *crl, const bg_pki_issued *e, bg_err *err)
{
    BIGNUM *bn = NULL;
    ASN1_INTEGER *serial = NULL;
    ASN1_TIME *when = ASN1_TIME_set(NULL, e->revoked_at);
    X509_REVOKED *r = X509_REVOKED_new();
    int rc = BG_OK;
    if (when == NULL || r == NULL || BN_hex2bn(&bn, e->serial) == 0 ||
        (serial = BN_to_ASN1_INTEGER(bn, NULL)) == NULL ||
        X509_REVOKED_set_serialNumber(r, serial) != 1 ||
        X509_REVOKED_set_revocationDate(r, when) != 1 || X509_CRL_add0_revoked(crl, r) != 1)
        rc = bg_pki_ossl_fail(err, BG_ECRYPTO, "cannot add serial %s to the CRL", e->serial);
    else
        r = NULL; /* now owned by crl */
    X509_REVOKED_free(r);
    ASN1_TIME_free(when);
    ASN1_INTEGER_free(serial);
    BN_free(bn);
    return rc;
}

static int
crl_extensions(X509_CRL *crl, X509 *ca_cert, uint64_t number, bg_err *err)
{
    ASN1_INTEGER *n = ASN1_INTEGER_new();
    int ok = n != NULL && ASN1_INTEGER_set_uint64(n, number) == 1 &&
             X509_CRL_add1_ext_i2d(crl, NID_crl_number, n, 0, 0) == 1;
    ASN1_INTEGER_free(n);
    if (!ok)
        return bg_pki_ossl_fail(err, BG_ECRYPTO, "cannot add the CRL number");
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, ca_cert, NULL, NULL, crl, 0);
    X509_EXTENSION *aki =
        X509V3_EXT_conf_nid(NULL, &ctx, NID_authority_key_identifier, "keyid:always");
    ok = aki != NULL && X509_CRL_add_ext(crl, aki, -1) == 1;
    X509_EXTENSION_free(aki);
    if (!ok)
        return bg_pki_ossl_fail(err, BG_ECRYPTO, "cannot add the CRL's authority key id");
    return BG_OK;
}

int
bg_pki_ca_crl(bg_pki_ca *ca, time_t now, int64_t seconds, X509_CRL **out, bg_err *err)
{
    if (seconds < 1 || seconds > (int64_t)DAYS_MAX * 86400)
        return bg_err_set(err, BG_EINVAL, "CRL validity must be 1 second to %d days", DAYS_MAX);
    /* Persist the number before using it, so no two CRLs ever share one. */
    ca->crl_number++;
    int rc = index_save(ca, err);
    if (rc != BG_OK) {
        ca->crl_number--;
        return rc;
    }
    X509_CRL *crl = X509_CRL_new();
    ASN1_TIME *last = ASN1_TIME_set(NULL, now - BG_PKI_SKEW);
    ASN1_TIME *next = ASN1_TIME_set(NULL, now + (time_t)seconds);
    if (crl == NULL || last == NULL || next == NULL ||
        X509_CRL_set_version(crl, X509_CRL_VERSION_2) != 1 ||
        X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca->cert)) != 1 ||
        X509_CRL_set1_lastUpdate(crl, last) != 1 || X509_CRL_set1_nextUpdate(crl, next) != 1)
        rc = bg_pki_ossl_fail(err, BG_ECRYPTO, "cannot build the CRL");
    for (size_t i = 0; rc == BG_OK && i < ca->n; i++)
        if (ca->v[i].revoked_at != 0)
            rc = add_revoked(crl, &ca->v[i], err);
    if (rc == BG_OK)
        rc = crl_extensions(crl, ca->cert, ca->crl_number, err);
    if (rc == BG_OK && (X509_CRL_sort(crl) != 1 || X509_CRL_sign(crl, ca->key, EVP_sha256()) <= 0))
        rc = bg_pki_ossl_fail(err, BG_ECRYPTO, "cannot sign the CRL");
    ASN1_TIME_free(last);
    ASN1_TIME_free(next);
    if (rc != BG_OK) {
        X509_CRL_free(crl);
        return rc;
    }
    *out = crl;
    return BG_OK;
}
