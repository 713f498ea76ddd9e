/*
 * test_certs.c - the federation PKI, signatures and peer trust.
 *
 * Every test works in its own scratch directory under BG_TEST_TMPDIR with a
 * real CA directory, real key files and real certificates: the same code
 * paths as 'baygate ca' and 'baygate init'. Where the openssl command is
 * installed, its verifier is asked too, so the certificates are checked by an
 * implementation other than the one that made them; and the certificates,
 * keys and CRLs go through nng's own TLS (mbedTLS), which is what gateways use.
 */
#define _GNU_SOURCE /* nftw's FTW_DEPTH/FTW_PHYS */
#include <check.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/supplemental/util/platform.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/tls/tls.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "certs/pki.h"
#include "certs/sig.h"
#include "certs/trust.h"

static char scratch[PATH_MAX];

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void
setup(void)
{
    mkdir(BG_TEST_TMPDIR, 0700);
    snprintf(scratch, sizeof scratch, "%s/certs.XXXXXX", BG_TEST_TMPDIR);
    ck_assert_ptr_nonnull(mkdtemp(scratch));
}

static void
teardown(void)
{
    nftw(scratch, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    ERR_clear_error();
}

/* scratch/name into one of a few rotating buffers. */
static const char *
at(const char *name)
{
    static char bufs[8][PATH_MAX];
    static unsigned next;
    char *b = bufs[next++ % 8];
    ck_assert_int_lt(snprintf(b, PATH_MAX, "%s/%s", scratch, name), PATH_MAX);
    return b;
}

static bg_pki_ca *
make_ca(const char *sub, const char *name)
{
    bg_err err = {0};
    ck_assert_msg(bg_pki_ca_init(at(sub), name, 3650, &err) == BG_OK, "%s", err.msg);
    bg_pki_ca *ca = NULL;
    ck_assert_msg(bg_pki_ca_open(&ca, at(sub), &err) == BG_OK, "%s", err.msg);
    return ca;
}

/* A key and a certificate for city issued by ca, valid [nb, na]. */
static X509 *
issue_at(bg_pki_ca *ca, const char *city, const char *name, time_t nb, time_t na,
         EVP_PKEY **key_out)
{
    bg_err err = {0};
    EVP_PKEY *key = NULL;
    X509_REQ *req = NULL;
    X509 *x = NULL;
    ck_assert_int_eq(bg_pki_key_generate(&key, &err), BG_OK);
    ck_assert_msg(bg_pki_csr_make(key, city, name, &req, &err) == BG_OK, "%s", err.msg);
    ck_assert_msg(bg_pki_ca_issue(ca, req, nb, na, &x, &err) == BG_OK, "%s", err.msg);
    X509_REQ_free(req);
    if (key_out != NULL)
        *key_out = key;
    else
        EVP_PKEY_free(key);
    return x;
}

static X509 *
issue(bg_pki_ca *ca, const char *city, const char *name)
{
    time_t now = time(NULL);
    return issue_at(ca, city, name, now - 60, now + 30 * 86400, NULL);
}

typedef struct {
    uint8_t *p;
    size_t len;
} der_t;

static der_t
der_of(X509 *x)
{
    der_t d = {0};
    ck_assert_int_eq(bg_pki_cert_to_der(x, &d.p, &d.len, NULL), BG_OK);
    return d;
}

static X509_CRL *
make_crl(bg_pki_ca *ca)
{
    X509_CRL *crl = NULL;
    bg_err err = {0};
    ck_assert_msg(bg_pki_ca_crl(ca, time(NULL), 7 * 86400, &crl, &err) == BG_OK, "%s", err.msg);
    return crl;
}

static bool
has_openssl(void)
{
    return system("command -v openssl >/dev/null 2>&1") == 0;
}

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int
run(const char *fmt, ...)
{
    char cmd[4 * PATH_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    ck_assert_int_lt(n, (int)sizeof cmd);
    return system(cmd);
}

/* --- the CA --- */

START_TEST(ca_init_makes_0600_key_and_self_signed_root)
{
    bg_err err = {0};
    ck_assert_msg(bg_pki_ca_init(at("ca"), NULL, 3650, &err) == BG_OK, "%s", err.msg);
    struct stat st;
    ck_assert_int_eq(stat(at("ca/ca.key"), &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    ck_assert_int_eq(stat(at("ca"), &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0700);

    X509 *ca = NULL;
    EVP_PKEY *key = NULL;
    ck_assert_int_eq(bg_pki_cert_load(at("ca/ca.crt"), &ca, &err), BG_OK);
    ck_assert_int_eq(bg_pki_key_load(at("ca/ca.key"), &key, &err), BG_OK);
    ck_assert_int_eq(X509_check_private_key(ca, key), 1);
    ck_assert_int_eq(X509_verify(ca, key), 1); /* self-signed with its own key */
    ck_assert_int_eq(X509_NAME_cmp(X509_get_subject_name(ca), X509_get_issuer_name(ca)), 0);
    ck_assert_int_eq(X509_check_ca(ca), 1);

    int i = X509_get_ext_by_NID(ca, NID_basic_constraints, -1);
    ck_assert_int_ge(i, 0);
    ck_assert_int_eq(X509_EXTENSION_get_critical(X509_get_ext(ca, i)), 1);
    uint32_t ku = X509_get_key_usage(ca);
    ck_assert_uint_eq(ku & (KU_KEY_CERT_SIGN | KU_CRL_SIGN), KU_KEY_CERT_SIGN | KU_CRL_SIGN);
    const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(ca);
    const ASN1_OCTET_STRING *aki = X509_get0_authority_key_id(ca);
    ck_assert_ptr_nonnull(ski);
    ck_assert_ptr_nonnull(aki);
    ck_assert_int_eq(ASN1_OCTET_STRING_cmp(ski, aki), 0);

    /* 128 random bits: fewer than 100 significant bits has chance 2^-28. */
    BIGNUM *serial = ASN1_INTEGER_to_BN(X509_get0_serialNumber(ca), NULL);
    ck_assert_int_gt(BN_num_bits(serial), 100);
    BN_free(serial);

    char o[80];
    X509_NAME_get_text_by_NID(X509_get_subject_name(ca), NID_organizationName, o, sizeof o);
    ck_assert_str_eq(o, BG_PKI_CA_NAME_DEFAULT);

    bg_pki_ca *h = NULL;
    ck_assert_int_eq(bg_pki_ca_open(&h, at("ca"), &err), BG_OK);
    ck_assert_uint_eq(bg_pki_ca_count(h), 0);
    bg_pki_ca_close(h);
    X509_free(ca);
    EVP_PKEY_free(key);
}
END_TEST

START_TEST(ca_init_refuses_to_overwrite)
{
    bg_err err = {0};
    ck_assert_int_eq(bg_pki_ca_init(at("ca"), "Test Federation", 30, &err), BG_OK);
    uint8_t before[4096];
    FILE *f = fopen(at("ca/ca.key"), "rb");
    size_t n = fread(before, 1, sizeof before, f);
    fclose(f);
    ck_assert_int_eq(bg_pki_ca_init(at("ca"), "Test Federation", 30, &err), BG_EEXIST);
    ck_assert_ptr_nonnull(strstr(err.msg, "already holds a CA"));
    uint8_t after[4096];
    f = fopen(at("ca/ca.key"), "rb");
    ck_assert_uint_eq(fread(after, 1, sizeof after, f), n);
    fclose(f);
    ck_assert_int_eq(memcmp(before, after, n), 0);

    ck_assert_int_eq(bg_pki_ca_init(at("ca2"), "", 30, &err), BG_EINVAL);
    ck_assert_int_eq(bg_pki_ca_init(at("ca3"), "Name", 0, &err), BG_EINVAL);
    ck_assert_int_ne(access(at("ca2"), F_OK), 0); /* nothing left behind */
    bg_pki_ca *none = NULL;
    ck_assert_int_eq(bg_pki_ca_open(&none, at("nope"), &err), BG_ENOTFOUND);
    ck_assert_ptr_null(none);
}
END_TEST

START_TEST(issued_cert_has_city_names_usage_and_chains)
{
    bg_pki_ca *ca = make_ca("ca", NULL);
    X509 *x = issue(ca, "440100", "Guangzhou");

    char cn[32], o[80];
    X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof cn);
    X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_organizationName, o, sizeof o);
    ck_assert_str_eq(cn, "440100");
    ck_assert_str_eq(o, "Guangzhou");
    char city[7];
    ck_assert_int_eq(bg_pki_cert_city(x, city, NULL), BG_OK);
    ck_assert_str_eq(city, "440100");

    /* The only SAN is DNS:440100: what mbedTLS matches. */
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    ck_assert_int_eq(sk_GENERAL_NAME_num(gens), 1);
    int type = 0;
    ASN1_STRING *v = GENERAL_NAME_get0_value(sk_GENERAL_NAME_value(gens, 0), &type);
    ck_assert_int_eq(type, GEN_DNS);
    ck_assert_str_eq((const char *)ASN1_STRING_get0_data(v), "440100");
    GENERAL_NAMES_free(gens);
    ck_assert_int_eq(X509_check_host(x, "440100", 0, 0, NULL), 1);
    ck_assert_int_eq(X509_check_host(x, "440300", 0, 0, NULL), 0);

    uint32_t flags = X509_get_extension_flags(x);
    ck_assert(flags & EXFLAG_XKUSAGE);
    ck_assert_uint_eq(X509_get_extended_key_usage(x), XKU_SSL_SERVER | XKU_SSL_CLIENT);
    ck_assert(flags & EXFLAG_KUSAGE);
    ck_assert_uint_eq(X509_get_key_usage(x), KU_DIGITAL_SIGNATURE);
    ck_assert(flags & EXFLAG_BCONS);
    ck_assert(!(flags & EXFLAG_CA));
    ck_assert_int_eq(X509_check_ca(x), 0);
    int i = X509_get_ext_by_NID(x, NID_basic_constraints, -1);
    ck_assert_int_eq(X509_EXTENSION_get_critical(X509_get_ext(x, i)), 1);
    ck_assert_ptr_nonnull(X509_get0_subject_key_id(x));
    ck_assert_int_eq(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(x),
                                           X509_get0_subject_key_id(bg_pki_ca_cert(ca))),
                     0);
    BIGNUM *serial = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
    ck_assert_int_gt(BN_num_bits(serial), 100);
    BN_free(serial);

    /* Chains to the CA under OpenSSL's strict rules, for both TLS roles. */
    X509_STORE *store = X509_STORE_new();
    X509_STORE_add_cert(store, bg_pki_ca_cert(ca));
    X509_STORE_set_flags(store, X509_V_FLAG_X509_STRICT);
    int purposes[] = {X509_PURPOSE_SSL_CLIENT, X509_PURPOSE_SSL_SERVER};
    for (size_t k = 0; k < 2; k++) {
        X509_STORE_CTX *sc = X509_STORE_CTX_new();
        X509_STORE_CTX_init(sc, store, x, NULL);
        X509_STORE_CTX_set_purpose(sc, purposes[k]);
        ck_assert_msg(X509_verify_cert(sc) == 1, "%s",
                      X509_verify_cert_error_string(X509_STORE_CTX_get_error(sc)));
        X509_STORE_CTX_free(sc);
    }
    X509_STORE_free(store);

    /* The index records it. */
    ck_assert_uint_eq(bg_pki_ca_count(ca), 1);
    const bg_pki_issued *e = bg_pki_ca_entry(ca, 0);
    char hex[BG_PKI_SERIAL_HEX_MAX + 1];
    uint8_t fp[BG_SIG_FP_LEN];
    ck_assert_int_eq(bg_pki_cert_serial_hex(x, hex, NULL), BG_OK);
    ck_assert_int_eq(bg_sig_fingerprint(x, fp, NULL), BG_OK);
    ck_assert_str_eq(e->serial, hex);
    ck_assert_str_eq(e->city, "440100");
    ck_assert_int_eq(memcmp(e->fingerprint, fp, sizeof fp), 0);
    ck_assert_int_eq(e->revoked_at, 0);
    X509_free(x);
    bg_pki_ca_close(ca);
}
END_TEST

START_TEST(openssl_command_accepts_issued_cert_and_crl)
{
    if (!has_openssl()) {
        fprintf(stderr, "openssl command not found: skipping its assertions\n");
        return;
    }
    bg_pki_ca *ca = make_ca("ca", NULL);
    X509 *x = issue(ca, "440300", "Shenzhen");
    ck_assert_int_eq(bg_pki_cert_write(at("city.crt"), x, NULL), BG_OK);
    X509_CRL *crl = make_crl(ca);
    ck_assert_int_eq(bg_pki_crl_write(at("crl.pem"), crl, NULL), BG_OK);
    X509_CRL_free(crl);
    const char *q = "openssl verify -x509_strict -verify_hostname 440300";
    ck_assert_int_eq(run("%s -purpose sslclient -CAfile '%s' '%s' >/dev/null 2>&1", q,
                         at("ca/ca.crt"), at("city.crt")),
                     0);
    ck_assert_int_eq(run("%s -purpose sslserver -CAfile '%s' '%s' >/dev/null 2>&1", q,
                         at("ca/ca.crt"), at("city.crt")),
                     0);
    ck_assert_int_eq(run("%s -crl_check -CRLfile '%s' -CAfile '%s' '%s' >/dev/null 2>&1", q,
                         at("crl.pem"), at("ca/ca.crt"), at("city.crt")),
                     0);
    ck_assert_int_ne(run("openssl verify -verify_hostname 440100 -CAfile '%s' '%s' "
                         ">/dev/null 2>&1",
                         at("ca/ca.crt"), at("city.crt")),
                     0);
    ck_assert_int_eq(bg_pki_ca_revoke(ca, "440300", NULL, time(NULL), NULL, NULL), BG_OK);
    crl = make_crl(ca);
    ck_assert_int_eq(bg_pki_crl_write(at("crl.pem"), crl, NULL), BG_OK);
    X509_CRL_free(crl);
    ck_assert_int_ne(run("%s -crl_check -CRLfile '%s' -CAfile '%s' '%s' >/dev/null 2>&1", q,
                         at("crl.pem"), at("ca/ca.crt"), at("city.crt")),
                     0);
    /* And the CRL itself verifies against the CA. */
    ck_assert_int_eq(run("openssl crl -noout -CAfile '%s' -in '%s' >/dev/null 2>&1",
                         at("ca/ca.crt"), at("crl.pem")),
                     0);
    X509_free(x);
    bg_pki_ca_close(ca);
}
END_TEST

START_TEST(csr_with_bad_signature_refused)
{
    bg_pki_ca *ca = make_ca("ca", NULL);
    EVP_PKEY *key = NULL;
    X509_REQ *req = NULL;
    ck_assert_int_eq(bg_pki_key_generate(&key, NULL), BG_OK);
    ck_assert_int_eq(bg_pki_csr_make(key, "440600", "Foshan", &req, NULL), BG_OK);
    unsigned char *der = NULL;
    int n = i2d_X509_REQ(req, &der);
    der[n - 1] ^= 0x01; /* the last byte of s in the signature */
    const unsigned char *p = der;
    X509_REQ *bad = d2i_X509_REQ(NULL, &p, n);
    ck_assert_ptr_nonnull(bad);
    bg_err err = {0};
    X509 *x = NULL;
    time_t now = time(NULL);
    ck_assert_int_eq(bg_pki_ca_issue(ca, bad, now, now + 86400, &x, &err), BG_ECRYPTO);
    ck_assert_ptr_nonnull(strstr(err.msg, "CSR signature does not verify"));
    ck_assert_ptr_null(x);
    ck_assert_uint_eq(bg_pki_ca_count(ca), 0);

    /* A CSR whose key was swapped after signing: no proof of possession. */
    EVP_PKEY *other = NULL;
    ck_assert_int_eq(bg_pki_key_generate(&other, NULL), BG_OK);
    ck_assert_int_eq(X509_REQ_set_pubkey(req, other), 1);
    ck_assert_int_eq(bg_pki_ca_issue(ca, req, now, now + 86400, &x, &err), BG_ECRYPTO);
    ck_assert_uint_eq(bg_pki_ca_count(ca), 0);

    OPENSSL_free(der);
    X509_REQ_free(bad);
    X509_REQ_free(req);
    EVP_PKEY_free(key);
    EVP_PKEY_free(other);
    bg_pki_ca_close(ca);
}
END_TEST

/* A correctly self-signed CSR with subject CN=cn, O=Somewhere and, if san is
 * not NULL, a requested DNS SAN. */
static X509_REQ *
raw_csr(EVP_PKEY *key, const char *cn, const char *san)
{
    X509_REQ *req = X509_REQ_new();
    X509_NAME *name = X509_REQ_get_subject_name(req);
    X509_NAME_add_entry_by_NID(name, NID_organizationName, MBSTRING_UTF8,
                               (const unsigned char *)"Somewhere", -1, -1, 0);
    X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8, (const unsigned char *)cn, -1,
                               -1, 0);
    X509_REQ_set_pubkey(req, key);
    if (san != NULL) {
        STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
        sk_X509_EXTENSION_push(exts, X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, san));
        X509_REQ_add_extensions(req, exts);
        sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    }
    ck_assert_int_gt(X509_REQ_sign(req, key, EVP_sha256()), 0);
    return req;
}

START_TEST(csr_with_bad_names_refused)
{
    bg_pki_ca *ca = make_ca("ca", NULL);
    EVP_PKEY *key = NULL;
    ck_assert_int_eq(bg_pki_key_generate(&key, NULL), BG_OK);
    struct {
        const char *cn, *san, *msg;
    } cases[] = {
        {"4401000", NULL, "not a 6-digit city code"},
        {"gz.example", NULL, "not a 6-digit city code"},
        {"440100", "DNS:440300", "subjectAltName must be exactly DNS:440100"},
        {"440100", "DNS:440100,DNS:evil.example", "subjectAltName must be exactly"},
        {"440100", "IP:127.0.0.1", "subjectAltName must be exactly"},
    };
    time_t now = time(NULL);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        X509_REQ *req = raw_csr(key, cases[i].cn, cases[i].san);
        bg_err err = {0};
        X509 *x = NULL;
        ck_assert_int_eq(bg_pki_ca_issue(ca, req, now, now + 86400, &x, &err), BG_EINVAL);
        ck_assert_msg(strstr(err.msg, cases[i].msg) != NULL, "%s: %s", cases[i].cn, err.msg);
        X509_REQ_free(req);
    }
    /* The same CSR with a matching SAN is fine. */
    X509_REQ *req = raw_csr(key, "440100", "DNS:440100");
    X509 *x = NULL;
    ck_assert_int_eq(bg_pki_ca_issue(ca, req, now, now + 86400, &x, NULL), BG_OK);
    X509_free(x);
    X509_REQ_free(req);
    ck_assert_int_eq(bg_pki_csr_make(key, "44010", "X", &req, NULL), BG_EINVAL);
    ck_assert_int_eq(bg_pki_csr_make(key, "440100", " lead", &req, NULL), BG_EINVAL);
    EVP_PKEY_free(key);
    bg_pki_ca_close(ca);
}
END_TEST

START_TEST(issue_validity_rules)
{
    bg_pki_ca *ca = make_ca("ca", NULL);
    EVP_PKEY *key = NULL;
    X509_REQ *req = NULL;
    ck_assert_int_eq(bg_pki_key_generate(&key, NULL), BG_OK);
    ck_assert_int_eq(bg_pki_csr_make(key, "440100", "Guangzhou", &req, NULL), BG_OK);
    bg_err err = {0};
    X509 *x = NULL;
    time_t now = time(NULL);
    ck_assert_int_eq(bg_pki_ca_issue(ca, req, now, now, &x, &err), BG_EINVAL);
    ck_assert_int_eq(bg_pki_ca_issue(ca, req, now, now + 3651L * 86400, &x, &err), BG_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "outlive the CA"));
    /* Backdated and already expired: allowed, on purpose. */
    ck_assert_int_eq(bg_pki_ca_issue(ca, req, now - 10 * 86400, now - 86400, &x, &err), BG_OK);
    time_t na = 0;
    ck_assert_int_eq(bg_pki_asn1_time(X509_get0_notAfter(x), &na, NULL), BG_OK);
    ck_assert_int_eq(na, now - 86400);
    X509_free(x);
    X509_REQ_free(req);
    EVP_PKEY_free(key);
    bg_pki_ca_close(ca);
}
END_TEST

START_TEST(index_persists_unique_serials)
{
    bg_pki_ca *ca = make_ca("ca", NULL);
    char serials[3][BG_PKI_SERIAL_HEX_MAX + 1];
    for (int i = 0; i < 3; i++) {
        X509 *x = issue(ca, i == 2 ? "440300" : "440100", "City");
        ck_assert_int_eq(bg_pki_cert_serial_hex(x, serials[i], NULL), BG_OK);
        X509_free(x);
    }
    ck_assert_str_ne(serials[0], serials[1]);
    ck_assert_str_ne(serials[1], serials[2]);
    bg_pki_ca_close(ca);
    bg_pki_ca *again = NULL;
    bg_err err = {0};
    ck_assert_msg(bg_pki_ca_open(&again, at("ca"), &err) == BG_OK, "%s", err.msg);
    ck_assert_uint_eq(bg_pki_ca_count(again), 3);
    for (size_t i = 0; i < 3; i++)
        ck_assert_str_eq(bg_pki_ca_entry(again, i)->serial, serials[i]);
    ck_assert_str_eq(bg_pki_ca_entry(again, 2)->city, "440300");
    ck_assert_ptr_null(bg_pki_ca_entry(again, 3));
    bg_pki_ca_close(again);

    /* A damaged index is refused with its line number. */
    FILE *f = fopen(at("ca/index.txt"), "a");
    fputs("cert ZZ 440100 2030-01-01T00:00:00Z 00 -\n", f);
    fclose(f);
    ck_assert_int_eq(bg_pki_ca_open(&again, at("ca"), &err), BG_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "line 7"));
}
END_TEST

START_TEST(revoke_and_crl)
{
    bg_pki_ca *ca = make_ca("ca", NULL);
    X509 *a = issue(ca, "440100", "Guangzhou");
    X509 *b = issue(ca, "440100", "Guangzhou");
    X509 *c = issue(ca, "440300", "Shenzhen");
    time_t now = time(NULL);
    bg_err err = {0};
    size_t count = 0;
    ck_assert_int_eq(bg_pki_ca_revoke(ca, "440100", NULL, now, &count, &err), BG_OK);
    ck_assert_uint_eq(count, 2);
    ck_assert_int_eq(bg_pki_ca_revoke(ca, "440100", NULL, now, &count, &err), BG_ENOTFOUND);
    ck_assert_ptr_nonnull(strstr(err.msg, "no unrevoked certificate of city 440100"));
    ck_assert_int_eq(bg_pki_ca_revoke(ca, "440600", NULL, now, &count, &err), BG_ENOTFOUND);

    X509_CRL *crl1 = make_crl(ca);
    X509_CRL *crl2 = make_crl(ca);
    ck_assert_int_eq(X509_CRL_get_version(crl2), X509_CRL_VERSION_2);
    uint64_t n1 = 0, n2 = 0;
    ck_assert_int_eq(bg_pki_crl_number(crl1, &n1, NULL), BG_OK);
    ck_assert_int_eq(bg_pki_crl_number(crl2, &n2, NULL), BG_OK);
    ck_assert_uint_eq(n1, 1);
    ck_assert_uint_eq(n2, 2);
    ck_assert_int_ge(X509_CRL_get_ext_by_NID(crl2, NID_authority_key_identifier, -1), 0);
    ck_assert_int_eq(X509_CRL_verify(crl2, X509_get0_pubkey(bg_pki_ca_cert(ca))), 1);
    X509_REVOKED *rev = NULL;
    ck_assert_int_eq(X509_CRL_get0_by_cert(crl2, &rev, a), 1);
    ck_assert_int_eq(X509_CRL_get0_by_cert(crl2, &rev, b), 1);
    ck_assert_int_eq(X509_CRL_get0_by_cert(crl2, &rev, c), 0);
    ck_assert_int_eq(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl2)), 2);
    time_t last = 0;
    ck_assert_int_eq(bg_pki_asn1_time(X509_CRL_get0_lastUpdate(crl2), &last, NULL), BG_OK);
    ck_assert_int_le(last, now);

    /* Numbers survive reopening: never reused. */
    bg_pki_ca_close(ca);
    ck_assert_int_eq(bg_pki_ca_open(&ca, at("ca"), &err), BG_OK);
    X509_CRL *crl3 = make_crl(ca);
    uint64_t n3 = 0;
    ck_assert_int_eq(bg_pki_crl_number(crl3, &n3, NULL), BG_OK);
    ck_assert_uint_eq(n3, 3);

    /* One certificate by serial, in any case. */
    char hex[BG_PKI_SERIAL_HEX_MAX + 1];
    ck_assert_int_eq(bg_pki_cert_serial_hex(c, hex, NULL), BG_OK);
    for (char *p = hex; *p; p++)
        if (*p >= 'A' && *p <= 'F')
            *p = (char)(*p - 'A' + 'a');
    ck_assert_int_eq(bg_pki_ca_revoke(ca, NULL, hex, now, &count, &err), BG_OK);
    ck_assert_uint_eq(count, 1);
    ck_assert_int_eq(bg_pki_ca_revoke(ca, NULL, hex, now, &count, &err), BG_EEXIST);
    ck_assert_int_eq(bg_pki_ca_revoke(ca, NULL, "xyz", now, &count, &err), BG_EINVAL);

    X509_CRL_free(crl1);
    X509_CRL_free(crl2);
    X509_CRL_free(crl3);
    X509_free(a);
    X509_free(b);
    X509_free(c);
    bg_pki_ca_close(ca);
}
END_TEST

START_TEST(crl_next_update_reported)
{
    bg_pki_ca *ca = make_ca("ca", NULL);
    time_t now = time(NULL);
    X509_CRL *crl = NULL;
    ck_assert_int_eq(bg_pki_ca_crl(ca, now, 7 * 86400, &crl, NULL), BG_OK);
    time_t next = 0;
    int64_t left = 0;
    ck_assert_int_eq(bg_pki_crl_next_update(crl, &next, NULL), BG_OK);
    ck_assert_int_eq(next, now + 7 * 86400);
    ck_assert_int_eq(bg_pki_crl_seconds_left(crl, now, &left, NULL), BG_OK);
    ck_assert_int_eq(left, 7 * 86400);
    ck_assert_int_eq(bg_pki_crl_seconds_left(crl, now + 8 * 86400, &left, NULL), BG_OK);
    ck_assert_int_eq(left, -86400);

    /* Through a PEM file, as a gateway reads it. */
    ck_assert_int_eq(bg_pki_crl_write(at("crl.pem"), crl, NULL), BG_OK);
    X509_CRL *back = NULL;
    ck_assert_int_eq(bg_pki_crl_load(at("crl.pem"), &back, NULL), BG_OK);
    ck_assert_int_eq(bg_pki_crl_seconds_left(back, now, &left, NULL), BG_OK);
    ck_assert_int_eq(left, 7 * 86400);
    bg_trust *t = NULL;
    ck_assert_int_eq(bg_trust_open(&t, at("ca/ca.crt"), at("crl.pem"), 0, NULL), BG_OK);
    ck_assert_int_eq(bg_trust_crl_next_update(t, &next, NULL), BG_OK);
    ck_assert_int_eq(next, now + 7 * 86400);
    bg_trust_free(t);
    X509_CRL_free(back);
    X509_CRL_free(crl);
    bg_pki_ca_close(ca);
}
END_TEST

/* --- keys and files --- */

START_TEST(key_files_are_new_0600_and_guarded)
{
    EVP_PKEY *key = NULL, *back = NULL;
    bg_err err = {0};
    ck_assert_int_eq(bg_pki_key_generate(&key, NULL), BG_OK);
    ck_assert_int_eq(bg_pki_key_write_new(at("k.key"), key, &err), BG_OK);
    struct stat st;
    ck_assert_int_eq(stat(at("k.key"), &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    ck_assert_int_eq(bg_pki_key_write_new(at("k.key"), key, &err), BG_EEXIST);
    ck_assert_int_eq(bg_pki_key_load(at("k.key"), &back, &err), BG_OK);
    ck_assert_int_eq(EVP_PKEY_eq(key, back), 1);
    EVP_PKEY_free(back);

    ck_assert_int_eq(chmod(at("k.key"), 0644), 0);
    ck_assert_int_eq(bg_pki_key_load(at("k.key"), &back, &err), BG_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "too open"));
    ck_assert_int_eq(bg_pki_key_load(at("missing.key"), &back, &err), BG_ENOTFOUND);

    /* In memory, for nng: PKCS#8, unencrypted, and parses back. */
    char *pem = NULL;
    size_t len = 0;
    ck_assert_int_eq(bg_pki_key_pem(key, &pem, &len, NULL), BG_OK);
    ck_assert_ptr_nonnull(strstr(pem, "-----BEGIN PRIVATE KEY-----"));
    ck_assert_int_eq(bg_pki_key_load_mem(pem, len, &back, NULL), BG_OK);
    ck_assert_int_eq(EVP_PKEY_eq(key, back), 1);
    bg_pki_secret_free(pem, len);
    EVP_PKEY_free(back);

    /* Not a key at all; and a non-P-256 key. */
    ck_assert_int_eq(bg_pki_key_load_mem("hello", 5, &back, &err), BG_ECRYPTO);
    EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(b, ed, NULL, NULL, 0, NULL, NULL);
    char *data = NULL;
    long n = BIO_get_mem_data(b, &data);
    ck_assert_int_eq(bg_pki_key_load_mem(data, (size_t)n, &back, &err), BG_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "P-256"));
    ck_assert_int_eq(bg_pki_key_write_new(at("ed.key"), ed, &err), BG_EINVAL);
    BIO_free(b);
    EVP_PKEY_free(ed);
    EVP_PKEY_free(key);
}
END_TEST

START_TEST(objects_load_from_file_memory_and_der)
{
    bg_pki_ca *ca = make_ca("ca", NULL);
    X509 *x = issue(ca, "440600", "Foshan");
    ck_assert_int_eq(bg_pki_cert_write(at("c.crt"), x, NULL), BG_OK);
    char *pem = NULL;
    size_t len = 0;
    ck_assert_int_eq(bg_pki_cert_pem(x, &pem, &len, NULL), BG_OK);
    X509 *f = NULL, *m = NULL, *d = NULL;
    ck_assert_int_eq(bg_pki_cert_load(at("c.crt"), &f, NULL), BG_OK);
    ck_assert_int_eq(bg_pki_cert_load_mem(pem, len, &m, NULL), BG_OK);
    der_t der = der_of(x);
    ck_assert_int_eq(bg_pki_cert_from_der(der.p, der.len, &d, NULL), BG_OK);
    ck_assert_int_eq(X509_cmp(x, f), 0);
    ck_assert_int_eq(X509_cmp(x, m), 0);
    ck_assert_int_eq(X509_cmp(x, d), 0);

    bg_err err = {0};
    X509 *bad = NULL;
    uint8_t *longer = malloc(der.len + 1);
    memcpy(longer, der.p, der.len);
    longer[der.len] = 0;
    ck_assert_int_eq(bg_pki_cert_from_der(longer, der.len + 1, &bad, &err), BG_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "after the DER certificate"));
    ck_assert_int_eq(bg_pki_cert_from_der(der.p, der.len - 1, &bad, &err), BG_EINVAL);
    ck_assert_int_eq(bg_pki_cert_load_mem("junk", 4, &bad, &err), BG_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "not a PEM certificate"));
    ck_assert_int_eq(bg_pki_cert_load(at("nope.crt"), &bad, &err), BG_ENOTFOUND);
    ck_assert_ptr_nonnull(strstr(err.msg, "nope.crt"));
    X509_CRL *crl = NULL;
    ck_assert_int_eq(bg_pki_crl_load(at("c.crt"), &crl, &err), BG_EINVAL); /* a cert, not a CRL */
    ck_assert_ptr_nonnull(strstr(err.msg, "c.crt: not a PEM CRL"));

    /* CSR files are created once, never overwritten. */
    EVP_PKEY *key = NULL;
    X509_REQ *req = NULL, *req2 = NULL;
    ck_assert_int_eq(bg_pki_key_generate(&key, NULL), BG_OK);
    ck_assert_int_eq(bg_pki_csr_make(key, "440600", "Foshan", &req, NULL), BG_OK);
    ck_assert_int_eq(bg_pki_csr_write_new(at("c.csr"), req, NULL), BG_OK);
    ck_assert_int_eq(bg_pki_csr_write_new(at("c.csr"), req, NULL), BG_EEXIST);
    ck_assert_int_eq(bg_pki_csr_load(at("c.csr"), &req2, NULL), BG_OK);
    char city[7], name[BG_PKI_NAME_MAX + 1];
    ck_assert_int_eq(bg_pki_csr_check(req2, city, name, NULL), BG_OK);
    ck_assert_str_eq(city, "440600");
    ck_assert_str_eq(name, "Foshan");

    X509_REQ_free(req);
    X509_REQ_free(req2);
    EVP_PKEY_free(key);
    free(longer);
    OPENSSL_free(der.p);
    OPENSSL_free(pem);
    X509_free(f);
    X509_free(m);
    X509_free(d);
    X509_free(x);
    bg_pki_ca_close(ca);
}
END_TEST

START_TEST(times_parse_and_format)
{
    time_t t = 0;
    ck_assert_int_eq(bg_pki_time_parse("2026-03-01", &t, NULL), BG_OK);
    ck_assert_int_eq(t, 1772323200);
    ck_assert_int_eq(bg_pki_time_parse("2026-03-01T12:30:05Z", &t, NULL), BG_OK);
    char s[BG_PKI_TIME_LEN];
    bg_pki_time_format(t, s);
    ck_assert_str_eq(s, "2026-03-01T12:30:05Z");
    const char *bad[] = {"2026-02-30", "2026-3-01", "2026-03-01T12:30:05", "tomorrow", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_int_eq(bg_pki_time_parse(bad[i], &t, NULL), BG_EINVAL);
}
END_TEST

/* --- signatures --- */

static const char message[] = "envelope: 440100 asks 440300, request 7f3a";

START_TEST(sign_verify_round_trip)
{
    bg_pki_ca *ca = make_ca("ca", NULL);
    EVP_PKEY *key = NULL;
    X509 *x = issue_at(ca, "440100", "Guangzhou", time(NULL) - 60, time(NULL) + 86400, &key);
    uint8_t sig[BG_SIG_MAX];
    size_t siglen = 0;
    bg_err err = {0};
    ck_assert_int_eq(
        bg_sig_sign(key, BG_SIG_CTX_ENVELOPE, message, sizeof message, sig, &siglen, &err), BG_OK);
    ck_assert_uint_le(siglen, BG_SIG_MAX);
    ck_assert_uint_ge(siglen, 8);
    ck_assert_int_eq(
        bg_sig_verify(key, BG_SIG_CTX_ENVELOPE, message, sizeof message, sig, siglen, &err), BG_OK);
    ck_assert_int_eq(
        bg_sig_verify_cert(x, BG_SIG_CTX_ENVELOPE, message, sizeof message, sig, siglen, &err),
        BG_OK);
    /* Empty data is data too. */
    ck_assert_int_eq(bg_sig_sign(key, BG_SIG_CTX_ROSTER, NULL, 0, sig, &siglen, NULL), BG_OK);
    ck_assert_int_eq(bg_sig_verify(key, BG_SIG_CTX_ROSTER, NULL, 0, sig, siglen, NULL), BG_OK);
    X509_free(x);
    EVP_PKEY_free(key);
    bg_pki_ca_close(ca);
}
END_TEST

START_TEST(sign_verify_refuses_any_change)
{
    EVP_PKEY *key = NULL, *other = NULL;
    ck_assert_int_eq(bg_pki_key_generate(&key, NULL), BG_OK);
    ck_assert_int_eq(bg_pki_key_generate(&other, NULL), BG_OK);
    uint8_t sig[BG_SIG_MAX], data[sizeof message];
    size_t siglen = 0;
    memcpy(data, message, sizeof data);
    ck_assert_int_eq(bg_sig_sign(key, BG_SIG_CTX_ENVELOPE, data, sizeof data, sig, &siglen, NULL),
                     BG_OK);
    bg_err err = {0};
    /* Every single-bit change of the signature is refused. */
    for (size_t i = 0; i < siglen * 8; i++) {
        sig[i / 8] ^= (uint8_t)(1u << (i % 8));
        ck_assert_int_eq(
            bg_sig_verify(key, BG_SIG_CTX_ENVELOPE, data, sizeof data, sig, siglen, &err),
            BG_ECRYPTO);
        sig[i / 8] ^= (uint8_t)(1u << (i % 8));
    }
    /* And of the data (every bit of a few bytes, and the last bit). */
    for (size_t i = 0; i < 64; i++) {
        data[i / 8] ^= (uint8_t)(1u << (i % 8));
        ck_assert_int_eq(
            bg_sig_verify(key, BG_SIG_CTX_ENVELOPE, data, sizeof data, sig, siglen, &err),
            BG_ECRYPTO);
        data[i / 8] ^= (uint8_t)(1u << (i % 8));
    }
    data[sizeof data - 1] ^= 1;
    ck_assert_int_eq(bg_sig_verify(key, BG_SIG_CTX_ENVELOPE, data, sizeof data, sig, siglen, &err),
                     BG_ECRYPTO);
    ck_assert_str_eq(err.msg, "signature does not verify");
    data[sizeof data - 1] ^= 1;
    /* Truncated data, another context, another key, a truncated signature. */
    ck_assert_int_eq(
        bg_sig_verify(key, BG_SIG_CTX_ENVELOPE, data, sizeof data - 1, sig, siglen, &err),
        BG_ECRYPTO);
    ck_assert_int_eq(bg_sig_verify(key, BG_SIG_CTX_SNAPSHOT, data, sizeof data, sig, siglen, &err),
                     BG_ECRYPTO);
    ck_assert_int_eq(
        bg_sig_verify(other, BG_SIG_CTX_ENVELOPE, data, sizeof data, sig, siglen, &err),
        BG_ECRYPTO);
    ck_assert_int_eq(
        bg_sig_verify(key, BG_SIG_CTX_ENVELOPE, data, sizeof data, sig, siglen - 1, &err),
        BG_ECRYPTO);
    ck_assert_int_eq(bg_sig_verify(key, BG_SIG_CTX_ENVELOPE, data, sizeof data, sig, siglen, &err),
                     BG_OK);
    ck_assert_int_eq(bg_sig_verify(key, "", data, sizeof data, sig, siglen, &err), BG_EINVAL);
    EVP_PKEY_free(key);
    EVP_PKEY_free(other);
}
END_TEST

START_TEST(signatures_are_low_s_and_high_s_refused)
{
    EVP_PKEY *key = NULL;
    ck_assert_int_eq(bg_pki_key_generate(&key, NULL), BG_OK);
    BIGNUM *n = NULL;
    BN_hex2bn(&n, "FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551");
    BIGNUM *half = BN_dup(n);
    BN_rshift1(half, half);
    for (int i = 0; i < 32; i++) {
        uint8_t sig[BG_SIG_MAX];
        size_t siglen = 0;
        ck_assert_int_eq(bg_sig_sign(key, BG_SIG_CTX_SNAPSHOT, &i, sizeof i, sig, &siglen, NULL),
                         BG_OK);
        const unsigned char *p = sig;
        ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)siglen);
        const BIGNUM *r = NULL, *s = NULL;
        ECDSA_SIG_get0(es, &r, &s);
        ck_assert_int_le(BN_cmp(s, half), 0);
        /* (r, n - s) is the same signature mathematically: refused anyway. */
        BIGNUM *s2 = BN_new();
        BN_sub(s2, n, s);
        ECDSA_SIG_set0(es, BN_dup(r), s2);
        uint8_t flip[BG_SIG_MAX + 8];
        unsigned char *q = flip;
        int len = i2d_ECDSA_SIG(es, &q);
        bg_err err = {0};
        ck_assert_int_eq(
            bg_sig_verify(key, BG_SIG_CTX_SNAPSHOT, &i, sizeof i, flip, (size_t)len, &err),
            BG_ECRYPTO);
        ck_assert_ptr_nonnull(strstr(err.msg, "high S"));
        ECDSA_SIG_free(es);
    }
    BN_free(half);
    BN_free(n);
    EVP_PKEY_free(key);
}
END_TEST

START_TEST(sign_refuses_other_key_types)
{
    EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    EVP_PKEY *p384 = EVP_EC_gen("P-384");
    uint8_t sig[BG_SIG_MAX];
    size_t siglen = 0;
    bg_err err = {0};
    ck_assert_int_eq(bg_sig_sign(ed, BG_SIG_CTX_ENVELOPE, "x", 1, sig, &siglen, &err), BG_EINVAL);
    ck_assert_int_eq(bg_sig_sign(p384, BG_SIG_CTX_ENVELOPE, "x", 1, sig, &siglen, &err), BG_EINVAL);
    EVP_PKEY_free(ed);
    EVP_PKEY_free(p384);
}
END_TEST

START_TEST(fingerprint_is_sha256_of_der)
{
    bg_pki_ca *ca = make_ca("ca", NULL);
    X509 *x = issue(ca, "440100", "Guangzhou");
    der_t der = der_of(x);
    uint8_t a[BG_SIG_FP_LEN], b[BG_SIG_FP_LEN], c[BG_SIG_FP_LEN];
    unsigned int n = 0;
    ck_assert_int_eq(bg_sig_fingerprint(x, a, NULL), BG_OK);
    ck_assert_int_eq(bg_sig_fingerprint_der(der.p, der.len, b, NULL), BG_OK);
    ck_assert_int_eq(EVP_Digest(der.p, der.len, c, &n, EVP_sha256(), NULL), 1);
    ck_assert_int_eq(memcmp(a, c, sizeof a), 0);
    ck_assert_int_eq(memcmp(b, c, sizeof b), 0);
    char hex[BG_SIG_FP_HEX_LEN + 1];
    bg_sig_fp_hex(a, hex);
    ck_assert_uint_eq(strlen(hex), 64);
    ck_assert_uint_eq(strspn(hex, "0123456789abcdef"), 64);
    char first[3];
    snprintf(first, sizeof first, "%02x", c[0]);
    ck_assert_int_eq(strncmp(hex, first, 2), 0);
    OPENSSL_free(der.p);
    X509_free(x);
    bg_pki_ca_close(ca);
}
END_TEST

/* --- trust --- */

/* A federation: CA "ca" with an empty CRL #1 loaded in a verifier. */
typedef struct {
    bg_pki_ca *ca;
    bg_trust *t;
} fed_t;

static fed_t
fed_new(size_t cache_max)
{
    fed_t f = {.ca = make_ca("ca", NULL)};
    X509_CRL *crl = make_crl(f.ca);
    bg_err err = {0};
    ck_assert_msg(bg_trust_new(&f.t, bg_pki_ca_cert(f.ca), crl, cache_max, &err) == BG_OK, "%s",
                  err.msg);
    X509_CRL_free(crl);
    return f;
}

static void
fed_free(fed_t *f)
{
    bg_trust_free(f->t);
    bg_pki_ca_close(f->ca);
}

/* Verifies x for city; returns the status, with res and err filled. */
static int
verify(bg_trust *t, X509 *x, const char *city, bg_trust_result *res, bg_err *err)
{
    der_t d = der_of(x);
    int rc = bg_trust_verify(t, d.p, d.len, city, res, NULL, err);
    OPENSSL_free(d.p);
    return rc;
}

START_TEST(trust_accepts_valid_city_cert)
{
    fed_t f = fed_new(0);
    EVP_PKEY *key = NULL, *got = NULL;
    X509 *x = issue_at(f.ca, "440100", "Guangzhou", time(NULL) - 60, time(NULL) + 86400, &key);
    der_t d = der_of(x);
    bg_trust_result res;
    bg_err err = {0};
    ck_assert_msg(bg_trust_verify(f.t, d.p, d.len, "440100", &res, &got, &err) == BG_OK, "%s",
                  err.msg);
    ck_assert_int_eq(res.reason, BG_TRUST_OK);
    ck_assert(!res.cached);
    ck_assert_int_eq(EVP_PKEY_eq(got, key), 1);
    uint8_t fp[BG_SIG_FP_LEN];
    bg_sig_fingerprint(x, fp, NULL);
    ck_assert_int_eq(memcmp(res.fingerprint, fp, sizeof fp), 0);

    /* The key handed back verifies what the city key signed. */
    uint8_t sig[BG_SIG_MAX];
    size_t siglen = 0;
    ck_assert_int_eq(bg_sig_sign(key, BG_SIG_CTX_ENVELOPE, "hi", 2, sig, &siglen, NULL), BG_OK);
    ck_assert_int_eq(bg_sig_verify(got, BG_SIG_CTX_ENVELOPE, "hi", 2, sig, siglen, NULL), BG_OK);
    EVP_PKEY_free(got);

    ck_assert_int_eq(bg_trust_verify(f.t, d.p, d.len, "440100", &res, NULL, &err), BG_OK);
    ck_assert(res.cached);
    OPENSSL_free(d.p);
    EVP_PKEY_free(key);
    X509_free(x);
    fed_free(&f);
}
END_TEST

START_TEST(trust_refuses_rogue_ca_with_same_dn)
{
    fed_t f = fed_new(0);
    bg_pki_ca *rogue = make_ca("rogue", NULL); /* same default name, so same DN */
    ck_assert_int_eq(X509_NAME_cmp(X509_get_subject_name(bg_pki_ca_cert(rogue)),
                                   X509_get_subject_name(bg_pki_ca_cert(f.ca))),
                     0);
    X509 *x = issue(rogue, "440100", "Guangzhou");
    ck_assert_int_eq(
        X509_NAME_cmp(X509_get_issuer_name(x), X509_get_subject_name(bg_pki_ca_cert(f.ca))), 0);
    bg_trust_result res;
    bg_err err = {0};
    ck_assert_int_eq(verify(f.t, x, "440100", &res, &err), BG_ECRYPTO);
    ck_assert_int_eq(res.reason, BG_TRUST_NOT_FEDERATION);
    ck_assert_msg(strstr(err.msg, "not issued by the federation CA") != NULL, "%s", err.msg);
    ck_assert_str_eq(bg_trust_reason_name(res.reason), "not-federation");

    /* Nor is the rogue's CRL accepted. */
    X509_CRL *crl = make_crl(rogue);
    ck_assert_int_eq(bg_trust_set_crl(f.t, crl, &err), BG_ECRYPTO);
    ck_assert_ptr_nonnull(strstr(err.msg, "not signed by the federation CA"));
    X509_CRL_free(crl);
    X509_free(x);
    bg_pki_ca_close(rogue);
    fed_free(&f);
}
END_TEST

START_TEST(trust_refuses_revoked_after_crl_load)
{
    fed_t f = fed_new(0);
    X509 *x = issue(f.ca, "440300", "Shenzhen");
    X509 *other = issue(f.ca, "440600", "Foshan");
    bg_trust_result res;
    bg_err err = {0};
    ck_assert_int_eq(verify(f.t, x, "440300", &res, &err), BG_OK);
    ck_assert_int_eq(verify(f.t, x, "440300", &res, &err), BG_OK);
    ck_assert(res.cached);

    ck_assert_int_eq(bg_pki_ca_revoke(f.ca, "440300", NULL, time(NULL), NULL, NULL), BG_OK);
    X509_CRL *crl = make_crl(f.ca);
    ck_assert_int_eq(bg_trust_set_crl(f.t, crl, &err), BG_OK);
    X509_CRL_free(crl);
    ck_assert_int_eq(verify(f.t, x, "440300", &res, &err), BG_ECRYPTO);
    ck_assert_int_eq(res.reason, BG_TRUST_REVOKED);
    ck_assert(!res.cached);
    ck_assert_msg(strstr(err.msg, "certificate revoked at ") != NULL, "%s", err.msg);
    ck_assert_int_eq(verify(f.t, other, "440600", &res, &err), BG_OK);
    X509_free(x);
    X509_free(other);
    fed_free(&f);
}
END_TEST

START_TEST(trust_refuses_expired_and_not_yet_valid)
{
    fed_t f = fed_new(0);
    time_t now = time(NULL);
    X509 *old = issue_at(f.ca, "440100", "Guangzhou", now - 10 * 86400, now - 86400, NULL);
    X509 *early = issue_at(f.ca, "440100", "Guangzhou", now + 86400, now + 2 * 86400, NULL);
    bg_trust_result res;
    bg_err err = {0};
    ck_assert_int_eq(verify(f.t, old, "440100", &res, &err), BG_ECRYPTO);
    ck_assert_int_eq(res.reason, BG_TRUST_EXPIRED);
    char want[64], when[BG_PKI_TIME_LEN];
    bg_pki_time_format(now - 86400, when);
    snprintf(want, sizeof want, "certificate expired at %s", when);
    ck_assert_str_eq(err.msg, want);
    ck_assert_int_eq(verify(f.t, early, "440100", &res, &err), BG_ECRYPTO);
    ck_assert_int_eq(res.reason, BG_TRUST_NOT_YET_VALID);
    ck_assert_ptr_nonnull(strstr(err.msg, "not valid until"));

    /* A cached verdict expires with its certificate. */
    X509 *x = issue_at(f.ca, "440100", "Guangzhou", now - 60, now + 3600, NULL);
    der_t d = der_of(x);
    ck_assert_int_eq(bg_trust_verify_at(f.t, d.p, d.len, "440100", now, &res, NULL, &err), BG_OK);
    ck_assert_int_eq(bg_trust_verify_at(f.t, d.p, d.len, "440100", now, &res, NULL, &err), BG_OK);
    ck_assert(res.cached);
    ck_assert_int_eq(bg_trust_verify_at(f.t, d.p, d.len, "440100", now + 7200, &res, NULL, &err),
                     BG_ECRYPTO);
    ck_assert_int_eq(res.reason, BG_TRUST_EXPIRED);
    OPENSSL_free(d.p);
    X509_free(x);
    X509_free(old);
    X509_free(early);
    fed_free(&f);
}
END_TEST

START_TEST(trust_names_an_expired_federation_ca)
{
    bg_err err = {0};
    ck_assert_int_eq(bg_pki_ca_init(at("short"), "Short-lived Federation", 2, &err), BG_OK);
    bg_pki_ca *ca = NULL;
    ck_assert_int_eq(bg_pki_ca_open(&ca, at("short"), &err), BG_OK);
    time_t now = time(NULL);
    X509 *x = issue_at(ca, "440100", "Guangzhou", now - 60, now + 86400, NULL);
    bg_trust *t = NULL;
    ck_assert_int_eq(bg_trust_new(&t, bg_pki_ca_cert(ca), NULL, 0, &err), BG_OK);
    der_t d = der_of(x);
    bg_trust_result res;
    ck_assert_int_eq(bg_trust_verify_at(t, d.p, d.len, "440100", now + 3 * 86400, &res, NULL, &err),
                     BG_ECRYPTO);
    ck_assert_int_eq(res.reason, BG_TRUST_EXPIRED);
    ck_assert_msg(strstr(err.msg, "the federation CA certificate expired at") != NULL, "%s",
                  err.msg);
    OPENSSL_free(d.p);
    bg_trust_free(t);
    X509_free(x);
    bg_pki_ca_close(ca);
}
END_TEST

START_TEST(trust_refuses_wrong_city)
{
    fed_t f = fed_new(0);
    X509 *sz = issue(f.ca, "440300", "Shenzhen");
    bg_trust_result res;
    bg_err err = {0};
    ck_assert_int_eq(verify(f.t, sz, "440100", &res, &err), BG_ECRYPTO);
    ck_assert_int_eq(res.reason, BG_TRUST_WRONG_CITY);
    ck_assert_str_eq(err.msg, "certificate names 440300, envelope claims 440100");
    /* Cached for Shenzhen, still refused for Guangzhou. */
    ck_assert_int_eq(verify(f.t, sz, "440300", &res, &err), BG_OK);
    ck_assert_int_eq(verify(f.t, sz, "440100", &res, &err), BG_ECRYPTO);
    ck_assert_str_eq(err.msg, "certificate names 440300, envelope claims 440100");
    ck_assert_int_eq(verify(f.t, sz, "4403", &res, &err), BG_EINVAL);
    X509_free(sz);
    fed_free(&f);
}
END_TEST

/* x re-signed by the federation CA after edit() changed it: a certificate the
 * CA's own issuing code would never make. */
static X509 *
forge(fed_t *f, X509 *x, void (*edit)(X509 *))
{
    X509 *y = X509_dup(x);
    edit(y);
    ck_assert_int_gt(X509_sign(y, bg_pki_ca_key(f->ca), EVP_sha256()), 0);
    return y;
}

static void
drop_eku(X509 *y)
{
    X509_EXTENSION_free(X509_delete_ext(y, X509_get_ext_by_NID(y, NID_ext_key_usage, -1)));
}

static void
server_only(X509 *y)
{
    drop_eku(y);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, NULL, NID_ext_key_usage, "serverAuth");
    X509_add_ext(y, e, -1);
    X509_EXTENSION_free(e);
}

static void
other_san(X509 *y)
{
    X509_EXTENSION_free(X509_delete_ext(y, X509_get_ext_by_NID(y, NID_subject_alt_name, -1)));
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, "DNS:440300");
    X509_add_ext(y, e, -1);
    X509_EXTENSION_free(e);
}

START_TEST(trust_checks_usage_and_both_names)
{
    fed_t f = fed_new(0);
    X509 *x = issue(f.ca, "440100", "Guangzhou");
    bg_trust_result res;
    bg_err err = {0};
    X509 *y = forge(&f, x, drop_eku);
    ck_assert_int_eq(verify(f.t, y, "440100", &res, &err), BG_ECRYPTO);
    ck_assert_int_eq(res.reason, BG_TRUST_USAGE);
    ck_assert_ptr_nonnull(strstr(err.msg, "serverAuth + clientAuth"));
    X509_free(y);
    y = forge(&f, x, server_only);
    ck_assert_int_eq(verify(f.t, y, "440100", &res, &err), BG_ECRYPTO);
    ck_assert_int_eq(res.reason, BG_TRUST_USAGE);
    X509_free(y);
    y = forge(&f, x, other_san);
    ck_assert_int_eq(verify(f.t, y, "440100", &res, &err), BG_ECRYPTO);
    ck_assert_int_eq(res.reason, BG_TRUST_WRONG_CITY);
    ck_assert_str_eq(err.msg, "certificate DNS SAN names 440300, envelope claims 440100");
    X509_free(y);
    /* The CA certificate itself is no city certificate. */
    ck_assert_int_eq(verify(f.t, bg_pki_ca_cert(f.ca), "440100", &res, &err), BG_ECRYPTO);
    ck_assert_int_eq(res.reason, BG_TRUST_USAGE);
    ck_assert_ptr_nonnull(strstr(err.msg, "CA certificate"));
    X509_free(x);
    fed_free(&f);
}
END_TEST

START_TEST(trust_refuses_malformed_input)
{
    fed_t f = fed_new(0);
    X509 *x = issue(f.ca, "440100", "Guangzhou");
    der_t d = der_of(x);
    bg_trust_result res;
    bg_err err = {0};
    ck_assert_int_eq(bg_trust_verify(f.t, d.p, d.len - 1, "440100", &res, NULL, &err), BG_ECRYPTO);
    ck_assert_int_eq(res.reason, BG_TRUST_MALFORMED);
    uint8_t *more = malloc(d.len + 2);
    memcpy(more, d.p, d.len);
    more[d.len] = more[d.len + 1] = 0;
    ck_assert_int_eq(bg_trust_verify(f.t, more, d.len + 2, "440100", &res, NULL, &err), BG_ECRYPTO);
    ck_assert_int_eq(res.reason, BG_TRUST_MALFORMED);
    ck_assert_int_eq(bg_trust_verify(f.t, (const uint8_t *)"junk", 4, "440100", &res, NULL, &err),
                     BG_ECRYPTO);
    ck_assert_int_eq(bg_trust_verify(f.t, NULL, 0, "440100", &res, NULL, &err), BG_ECRYPTO);
    uint8_t *big = calloc(1, BG_TRUST_CERT_MAX + 1);
    ck_assert_int_eq(bg_trust_verify(f.t, big, BG_TRUST_CERT_MAX + 1, "440100", &res, NULL, &err),
                     BG_ELIMIT);
    free(big);
    free(more);
    OPENSSL_free(d.p);
    X509_free(x);
    fed_free(&f);
}
END_TEST

START_TEST(trust_cache_hit_then_invalidated_by_new_crl)
{
    fed_t f = fed_new(0);
    X509 *x = issue(f.ca, "440100", "Guangzhou");
    bg_trust_result res;
    bg_trust_stats st;
    ck_assert_int_eq(verify(f.t, x, "440100", &res, NULL), BG_OK);
    ck_assert(!res.cached);
    ck_assert_int_eq(verify(f.t, x, "440100", &res, NULL), BG_OK);
    ck_assert(res.cached);
    bg_trust_get_stats(f.t, &st);
    ck_assert_uint_eq(st.hits, 1);
    ck_assert_uint_eq(st.misses, 1);
    ck_assert_uint_eq(st.cached, 1);
    uint64_t gen = st.generation;

    X509_CRL *crl = make_crl(f.ca); /* revokes nothing, but is new */
    ck_assert_int_eq(bg_trust_set_crl(f.t, crl, NULL), BG_OK);
    X509_CRL_free(crl);
    bg_trust_get_stats(f.t, &st);
    ck_assert_uint_eq(st.generation, gen + 1);
    ck_assert_uint_eq(st.cached, 0);
    ck_assert_int_eq(verify(f.t, x, "440100", &res, NULL), BG_OK);
    ck_assert(!res.cached);
    bg_trust_get_stats(f.t, &st);
    ck_assert_uint_eq(st.hits, 1);
    ck_assert_uint_eq(st.misses, 2);

    /* By fingerprint alone, once cached. */
    EVP_PKEY *key = NULL;
    bg_err err = {0};
    ck_assert_int_eq(
        bg_trust_verify_cached(f.t, res.fingerprint, "440100", time(NULL), &res, &key, &err),
        BG_OK);
    ck_assert_int_eq(EVP_PKEY_eq(key, X509_get0_pubkey(x)), 1);
    EVP_PKEY_free(key);
    ck_assert_int_eq(
        bg_trust_verify_cached(f.t, res.fingerprint, "440300", time(NULL), &res, NULL, &err),
        BG_ECRYPTO);
    ck_assert_int_eq(res.reason, BG_TRUST_WRONG_CITY);
    uint8_t unknown[BG_SIG_FP_LEN] = {1};
    ck_assert_int_eq(bg_trust_verify_cached(f.t, unknown, "440100", time(NULL), &res, NULL, &err),
                     BG_ENOTFOUND);
    ck_assert_int_eq(res.reason, BG_TRUST_NOT_CACHED);
    X509_free(x);
    fed_free(&f);
}
END_TEST

START_TEST(trust_cache_is_bounded_lru)
{
    fed_t f = fed_new(2);
    X509 *a = issue(f.ca, "440100", "Guangzhou");
    X509 *b = issue(f.ca, "440300", "Shenzhen");
    X509 *c = issue(f.ca, "440600", "Foshan");
    bg_trust_result res;
    ck_assert_int_eq(verify(f.t, a, "440100", &res, NULL), BG_OK);
    ck_assert_int_eq(verify(f.t, b, "440300", &res, NULL), BG_OK);
    ck_assert_int_eq(verify(f.t, a, "440100", &res, NULL), BG_OK); /* a is now the newer */
    ck_assert(res.cached);
    ck_assert_int_eq(verify(f.t, c, "440600", &res, NULL), BG_OK); /* evicts b */
    bg_trust_stats st;
    bg_trust_get_stats(f.t, &st);
    ck_assert_uint_eq(st.cached, 2);
    ck_assert_int_eq(verify(f.t, a, "440100", &res, NULL), BG_OK);
    ck_assert(res.cached);
    ck_assert_int_eq(verify(f.t, b, "440300", &res, NULL), BG_OK);
    ck_assert(!res.cached);
    bg_trust *big = NULL;
    ck_assert_int_eq(bg_trust_new(&big, bg_pki_ca_cert(f.ca), NULL, BG_TRUST_CACHE_MAX + 1, NULL),
                     BG_EINVAL);
    X509_free(a);
    X509_free(b);
    X509_free(c);
    fed_free(&f);
}
END_TEST

START_TEST(trust_refuses_crl_rollback_and_fails_closed_on_expired_crl)
{
    fed_t f = fed_new(0);
    X509 *x = issue(f.ca, "440100", "Guangzhou");
    time_t now = time(NULL);
    X509_CRL *c2 = make_crl(f.ca), *c3 = make_crl(f.ca);
    X509_CRL *c1 = NULL;
    bg_err err = {0};
    ck_assert_int_eq(bg_trust_set_crl(f.t, c3, &err), BG_OK);
    ck_assert_int_eq(bg_trust_set_crl(f.t, c2, &err), BG_EINVAL);
    ck_assert_msg(strstr(err.msg, "CRL number 2 is older than the loaded CRL's 3") != NULL, "%s",
                  err.msg);
    ck_assert_int_eq(bg_trust_set_crl(f.t, c3, &err), BG_OK); /* the same again is fine */

    der_t d = der_of(x);
    bg_trust_result res;
    ck_assert_int_eq(bg_trust_verify_at(f.t, d.p, d.len, "440100", now, &res, NULL, &err), BG_OK);
    ck_assert_int_eq(
        bg_trust_verify_at(f.t, d.p, d.len, "440100", now + 8 * 86400, &res, NULL, &err),
        BG_ECRYPTO);
    ck_assert_int_eq(res.reason, BG_TRUST_CRL_EXPIRED);
    ck_assert_msg(strstr(err.msg, "CRL expired at") != NULL, "%s", err.msg);
    ck_assert_int_eq(
        bg_trust_verify_cached(f.t, res.fingerprint, "440100", now + 8 * 86400, &res, NULL, &err),
        BG_ECRYPTO);
    ck_assert_int_eq(res.reason, BG_TRUST_CRL_EXPIRED);

    /* An already expired CRL is accepted for loading: failing closed beats
     * silently checking nothing. */
    ck_assert_int_eq(bg_pki_ca_crl(f.ca, now - 30 * 86400, 86400, &c1, NULL), BG_OK);
    ck_assert_int_eq(bg_trust_set_crl(f.t, c1, &err), BG_OK);
    ck_assert_int_eq(bg_trust_verify(f.t, d.p, d.len, "440100", &res, NULL, &err), BG_ECRYPTO);
    ck_assert_int_eq(res.reason, BG_TRUST_CRL_EXPIRED);

    OPENSSL_free(d.p);
    X509_CRL_free(c1);
    X509_CRL_free(c2);
    X509_CRL_free(c3);
    X509_free(x);
    fed_free(&f);
}
END_TEST

START_TEST(trust_ca_rotation)
{
    fed_t f = fed_new(0);
    X509 *old = issue(f.ca, "440100", "Guangzhou");
    bg_pki_ca *next = make_ca("next", "Greater Bay Area Credit Federation 2");
    X509 *fresh = issue(next, "440100", "Guangzhou");
    X509_CRL *crl = make_crl(next);
    bg_trust_result res;
    bg_err err = {0};
    ck_assert_int_eq(verify(f.t, old, "440100", &res, NULL), BG_OK);
    ck_assert_int_eq(bg_trust_set_crl(f.t, crl, &err), BG_EINVAL); /* another CA's CRL */
    ck_assert_int_eq(bg_trust_set_ca(f.t, bg_pki_ca_cert(next), crl, &err), BG_OK);
    ck_assert_int_eq(verify(f.t, old, "440100", &res, &err), BG_ECRYPTO);
    ck_assert_int_eq(res.reason, BG_TRUST_NOT_FEDERATION);
    ck_assert_int_eq(verify(f.t, fresh, "440100", &res, &err), BG_OK);
    X509_CRL_free(crl);
    X509_free(old);
    X509_free(fresh);
    bg_pki_ca_close(next);
    fed_free(&f);
}
END_TEST

struct worker {
    bg_trust *t;
    der_t der;
    int failures;
};

static void *
verify_loop(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < 200; i++)
        if (bg_trust_verify(w->t, w->der.p, w->der.len, "440100", NULL, NULL, NULL) != BG_OK)
            w->failures++;
    return NULL;
}

START_TEST(trust_is_thread_safe_across_crl_swaps)
{
    fed_t f = fed_new(4);
    X509 *x[4];
    struct worker w[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        x[i] = issue(f.ca, "440100", "Guangzhou");
        w[i] = (struct worker){.t = f.t, .der = der_of(x[i])};
        ck_assert_int_eq(pthread_create(&th[i], NULL, verify_loop, &w[i]), 0);
    }
    for (int i = 0; i < 20; i++) {
        X509_CRL *crl = make_crl(f.ca);
        ck_assert_int_eq(bg_trust_set_crl(f.t, crl, NULL), BG_OK);
        X509_CRL_free(crl);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        ck_assert_int_eq(w[i].failures, 0);
        OPENSSL_free(w[i].der.p);
        X509_free(x[i]);
    }
    bg_trust_stats st;
    bg_trust_get_stats(f.t, &st);
    ck_assert_uint_eq(st.hits + st.misses, 800);
    fed_free(&f);
}
END_TEST

/* --- interop: the certificates in nng's TLS (mbedTLS 2.28), as gateways use them --- */

/* One identity as PEM in memory, the way a gateway hands it to nng. */
typedef struct {
    char *cert, *key;
    size_t key_len;
} ident_t;

static ident_t
ident(bg_pki_ca *ca, const char *city, time_t nb, time_t na)
{
    EVP_PKEY *key = NULL;
    X509 *x = issue_at(ca, city, "City", nb, na, &key);
    ident_t id = {0};
    size_t len = 0;
    ck_assert_int_eq(bg_pki_cert_pem(x, &id.cert, &len, NULL), BG_OK);
    ck_assert_int_eq(bg_pki_key_pem(key, &id.key, &id.key_len, NULL), BG_OK);
    X509_free(x);
    EVP_PKEY_free(key);
    return id;
}

static void
ident_free(ident_t *id)
{
    OPENSSL_free(id->cert);
    bg_pki_secret_free(id->key, id->key_len);
}

static nng_tls_config *
tls_config(nng_tls_mode mode, const char *ca, const char *crl, const ident_t *id,
           const char *server_name)
{
    nng_tls_config *c = NULL;
    ck_assert_int_eq(nng_tls_config_alloc(&c, mode), 0);
    ck_assert_int_eq(nng_tls_config_ca_chain(c, ca, crl), 0);
    ck_assert_int_eq(nng_tls_config_own_cert(c, id->cert, id->key, NULL), 0);
    ck_assert_int_eq(nng_tls_config_auth_mode(c, NNG_TLS_AUTH_MODE_REQUIRED), 0);
    if (server_name != NULL)
        ck_assert_int_eq(nng_tls_config_server_name(c, server_name), 0);
    return c;
}

/* A REQ/REP round trip over tls+tcp on loopback: 0, or the nng error of the
 * (blocking) dial or of the exchange. */
static int
tls_round_trip(const char *ca, const char *crl, const ident_t *server, const ident_t *client,
               const char *server_name)
{
    nng_socket rep, req;
    nng_listener l;
    nng_dialer d;
    ck_assert_int_eq(nng_rep0_open(&rep), 0);
    ck_assert_int_eq(nng_req0_open(&req), 0);
    nng_tls_config *sc = tls_config(NNG_TLS_MODE_SERVER, ca, crl, server, NULL);
    nng_tls_config *cc = tls_config(NNG_TLS_MODE_CLIENT, ca, crl, client, server_name);
    ck_assert_int_eq(nng_listener_create(&l, rep, "tls+tcp://127.0.0.1:0"), 0);
    ck_assert_int_eq(nng_listener_set_ptr(l, NNG_OPT_TLS_CONFIG, sc), 0);
    ck_assert_int_eq(nng_listener_start(l, 0), 0);
    int port = 0;
    ck_assert_int_eq(nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port), 0);
    char url[64];
    snprintf(url, sizeof url, "tls+tcp://127.0.0.1:%d", port);
    ck_assert_int_eq(nng_dialer_create(&d, req, url), 0);
    ck_assert_int_eq(nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, cc), 0);
    nng_socket_set_ms(req, NNG_OPT_RECVTIMEO, 3000);
    nng_socket_set_ms(rep, NNG_OPT_RECVTIMEO, 3000);
    nng_socket_set_size(req, NNG_OPT_RECVMAXSZ, 1024);
    nng_socket_set_size(rep, NNG_OPT_RECVMAXSZ, 1024);
    int rv = nng_dialer_start(d, 0);
    char *buf = NULL;
    size_t sz = 0;
    if (rv == 0)
        rv = nng_send(req, "ping", 5, 0);
    if (rv == 0)
        rv = nng_recv(rep, &buf, &sz, NNG_FLAG_ALLOC);
    if (rv == 0)
        rv = nng_send(rep, buf, sz, NNG_FLAG_ALLOC);
    if (rv == 0)
        rv = nng_recv(req, &buf, &sz, NNG_FLAG_ALLOC);
    if (rv == 0) {
        ck_assert_str_eq(buf, "ping");
        nng_free(buf, sz);
    }
    nng_close(req);
    nng_close(rep);
    nng_tls_config_free(sc);
    nng_tls_config_free(cc);
    return rv;
}

START_TEST(nng_mbedtls_accepts_city_certs_and_refuses_bad_ones)
{
    bg_pki_ca *ca = make_ca("ca", NULL);
    bg_pki_ca *rogue = make_ca("rogue", NULL);
    time_t now = time(NULL);
    ident_t gz = ident(ca, "440100", now - 60, now + 86400);
    ident_t sz = ident(ca, "440300", now - 60, now + 86400);
    ident_t fake = ident(rogue, "440300", now - 60, now + 86400);
    ident_t old = ident(ca, "440600", now - 10 * 86400, now - 86400);
    char *ca_pem = NULL, *crl_pem = NULL;
    size_t len = 0;
    ck_assert_int_eq(bg_pki_cert_pem(bg_pki_ca_cert(ca), &ca_pem, &len, NULL), BG_OK);
    X509_CRL *crl = make_crl(ca);
    ck_assert_int_eq(bg_pki_crl_pem(crl, &crl_pem, &len, NULL), BG_OK);
    X509_CRL_free(crl);

    /* Both ends authenticated; the DNS SAN is the server name mbedTLS checks. */
    ck_assert_int_eq(tls_round_trip(ca_pem, NULL, &gz, &sz, "440100"), 0);
    ck_assert_int_eq(tls_round_trip(ca_pem, crl_pem, &gz, &sz, "440100"), 0);
    ck_assert_int_ne(tls_round_trip(ca_pem, NULL, &gz, &sz, "440600"), 0);
    /* A same-named rogue CA's client, an expired client. */
    ck_assert_int_ne(tls_round_trip(ca_pem, NULL, &gz, &fake, "440100"), 0);
    ck_assert_int_ne(tls_round_trip(ca_pem, NULL, &gz, &old, "440100"), 0);
    /* Revoked, once the CRL says so. */
    ck_assert_int_eq(bg_pki_ca_revoke(ca, "440300", NULL, now, NULL, NULL), BG_OK);
    crl = make_crl(ca);
    OPENSSL_free(crl_pem);
    ck_assert_int_eq(bg_pki_crl_pem(crl, &crl_pem, &len, NULL), BG_OK);
    X509_CRL_free(crl);
    ck_assert_int_ne(tls_round_trip(ca_pem, crl_pem, &gz, &sz, "440100"), 0);

    OPENSSL_free(ca_pem);
    OPENSSL_free(crl_pem);
    ident_free(&gz);
    ident_free(&sz);
    ident_free(&fake);
    ident_free(&old);
    bg_pki_ca_close(rogue);
    bg_pki_ca_close(ca);
    /* nng_close leaves the last of a refused TLS connection's teardown to nng's own
     * threads; nng_fini under them panicked once under ASan ("pthread_mutex_lock:
     * Invalid argument" in libnng). A moment lets them finish first. */
    nng_msleep(300);
    nng_fini(); /* its threads, so valgrind sees a clean exit */
}
END_TEST

/* --- the commands: baygate ca ... and baygate init, as an operator runs them --- */

/* Runs baygate with arguments (a shell fragment); returns its exit status. */
static int baygate(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int
baygate(const char *fmt, ...)
{
    char args[3 * PATH_MAX], cmd[4 * PATH_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    ck_assert_int_lt(n, (int)sizeof args);
    n = snprintf(cmd, sizeof cmd, "'%s' %s >/dev/null 2>&1", BG_BAYGATE, args);
    ck_assert_int_lt(n, (int)sizeof cmd);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int
mode_of(const char *path)
{
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    return (int)(st.st_mode & 0777);
}

START_TEST(cli_ca_and_init_end_to_end)
{
    if (access(BG_BAYGATE, X_OK) != 0) {
        fprintf(stderr, "%s not built: skipping the command test\n", BG_BAYGATE);
        return;
    }
    ck_assert_int_eq(baygate("ca init --dir '%s' --days 30", at("CA")), 0);
    ck_assert_int_eq(mode_of(at("CA/ca.key")), 0600);
    ck_assert_int_eq(baygate("ca init --dir '%s'", at("CA")), 2);

    ck_assert_int_eq(baygate("init --city 440100 --name Guangzhou --dir '%s' "
                             "--listen tls+tcp://127.0.0.1:7501",
                             at("GZ")),
                     0);
    ck_assert_int_eq(mode_of(at("GZ")), 0700);
    ck_assert_int_eq(mode_of(at("GZ/city.key")), 0600);
    ck_assert_int_eq(access(at("GZ/baygate.ini"), R_OK), 0);
    ck_assert_int_eq(baygate("init --city 440100 --name Guangzhou --dir '%s'", at("GZ")), 2);
    ck_assert_int_eq(baygate("init --city 4401 --name X --dir '%s'", at("BAD")), 2);
    ck_assert_int_ne(access(at("BAD"), F_OK), 0);
    X509_REQ *req = NULL;
    char city[7], name[BG_PKI_NAME_MAX + 1];
    ck_assert_int_eq(bg_pki_csr_load(at("GZ/city.csr"), &req, NULL), BG_OK);
    ck_assert_int_eq(bg_pki_csr_check(req, city, name, NULL), BG_OK);
    ck_assert_str_eq(city, "440100");
    ck_assert_str_eq(name, "Guangzhou");
    X509_REQ_free(req);

    ck_assert_int_eq(baygate("ca issue --dir '%s' --csr '%s' --out '%s' --days 10", at("CA"),
                             at("GZ/city.csr"), at("GZ/city.crt")),
                     0);
    ck_assert_int_eq(baygate("ca issue --dir '%s' --csr '%s' --out '%s' --expired", at("CA"),
                             at("GZ/city.csr"), at("old.crt")),
                     0);
    ck_assert_int_eq(baygate("ca issue --dir '%s' --csr '%s' --out '%s' --days 99", at("CA"),
                             at("GZ/city.csr"), at("long.crt")),
                     2); /* would outlive the 30-day CA */
    ck_assert_int_eq(baygate("ca cert --dir '%s' --out '%s'", at("CA"), at("GZ/ca.crt")), 0);
    ck_assert_int_eq(baygate("ca crl --dir '%s' --out '%s'", at("CA"), at("GZ/crl.pem")), 0);

    /* The gateway's own files now make a verifier that accepts its certificate. */
    bg_trust *t = NULL;
    bg_err err = {0};
    ck_assert_int_eq(bg_trust_open(&t, at("GZ/ca.crt"), at("GZ/crl.pem"), 0, &err), BG_OK);
    X509 *x = NULL, *old = NULL;
    EVP_PKEY *key = NULL;
    ck_assert_int_eq(bg_pki_cert_load(at("GZ/city.crt"), &x, NULL), BG_OK);
    ck_assert_int_eq(bg_pki_cert_load(at("old.crt"), &old, NULL), BG_OK);
    ck_assert_int_eq(bg_pki_key_load(at("GZ/city.key"), &key, NULL), BG_OK);
    ck_assert_int_eq(X509_check_private_key(x, key), 1);
    ck_assert_int_eq(verify(t, x, "440100", NULL, &err), BG_OK);
    ck_assert_int_eq(verify(t, old, "440100", NULL, &err), BG_ECRYPTO);
    ck_assert_ptr_nonnull(strstr(err.msg, "expired"));

    ck_assert_int_eq(baygate("ca revoke --dir '%s' --city 440100", at("CA")), 0);
    ck_assert_int_eq(baygate("ca revoke --dir '%s' --city 440100", at("CA")), 1);
    ck_assert_int_eq(baygate("ca crl --dir '%s' --out '%s' --hours 2", at("CA"), at("GZ/crl.pem")),
                     0);
    ck_assert_int_eq(bg_trust_load_crl(t, at("GZ/crl.pem"), &err), BG_OK);
    ck_assert_int_eq(verify(t, x, "440100", NULL, &err), BG_ECRYPTO);
    ck_assert_ptr_nonnull(strstr(err.msg, "revoked"));
    ck_assert_int_eq(baygate("ca list --dir '%s' --json", at("CA")), 0);
    ck_assert_int_eq(baygate("ca bogus"), 2);

    bg_trust_free(t);
    EVP_PKEY_free(key);
    X509_free(old);
    X509_free(x);
}
END_TEST

static Suite *
certs_suite(void)
{
    Suite *s = suite_create("certs");
    TCase *ca = tcase_create("ca");
    tcase_add_checked_fixture(ca, setup, teardown);
    tcase_add_test(ca, ca_init_makes_0600_key_and_self_signed_root);
    tcase_add_test(ca, ca_init_refuses_to_overwrite);
    tcase_add_test(ca, issued_cert_has_city_names_usage_and_chains);
    tcase_add_test(ca, openssl_command_accepts_issued_cert_and_crl);
    tcase_add_test(ca, csr_with_bad_signature_refused);
    tcase_add_test(ca, csr_with_bad_names_refused);
    tcase_add_test(ca, issue_validity_rules);
    tcase_add_test(ca, index_persists_unique_serials);
    tcase_add_test(ca, revoke_and_crl);
    tcase_add_test(ca, crl_next_update_reported);
    suite_add_tcase(s, ca);

    TCase *files = tcase_create("files");
    tcase_add_checked_fixture(files, setup, teardown);
    tcase_add_test(files, key_files_are_new_0600_and_guarded);
    tcase_add_test(files, objects_load_from_file_memory_and_der);
    tcase_add_test(files, times_parse_and_format);
    suite_add_tcase(s, files);

    TCase *sig = tcase_create("sig");
    tcase_add_checked_fixture(sig, setup, teardown);
    tcase_add_test(sig, sign_verify_round_trip);
    tcase_add_test(sig, sign_verify_refuses_any_change);
    tcase_add_test(sig, signatures_are_low_s_and_high_s_refused);
    tcase_add_test(sig, sign_refuses_other_key_types);
    tcase_add_test(sig, fingerprint_is_sha256_of_der);
    suite_add_tcase(s, sig);

    TCase *trust = tcase_create("trust");
    tcase_add_checked_fixture(trust, setup, teardown);
    tcase_set_timeout(trust, 120);
    tcase_add_test(trust, trust_accepts_valid_city_cert);
    tcase_add_test(trust, trust_refuses_rogue_ca_with_same_dn);
    tcase_add_test(trust, trust_refuses_revoked_after_crl_load);
    tcase_add_test(trust, trust_refuses_expired_and_not_yet_valid);
    tcase_add_test(trust, trust_names_an_expired_federation_ca);
    tcase_add_test(trust, trust_refuses_wrong_city);
    tcase_add_test(trust, trust_checks_usage_and_both_names);
    tcase_add_test(trust, trust_refuses_malformed_input);
    tcase_add_test(trust, trust_cache_hit_then_invalidated_by_new_crl);
    tcase_add_test(trust, trust_cache_is_bounded_lru);
    tcase_add_test(trust, trust_refuses_crl_rollback_and_fails_closed_on_expired_crl);
    tcase_add_test(trust, trust_ca_rotation);
    tcase_add_test(trust, trust_is_thread_safe_across_crl_swaps);
    suite_add_tcase(s, trust);

    /* nng is not fork-safe once used: it is touched only inside this test. */
    TCase *tls = tcase_create("tls");
    tcase_add_checked_fixture(tls, setup, teardown);
    tcase_set_timeout(tls, 120);
    tcase_add_test(tls, nng_mbedtls_accepts_city_certs_and_refuses_bad_ones);
    suite_add_tcase(s, tls);

    TCase *cli = tcase_create("cli");
    tcase_add_checked_fixture(cli, setup, teardown);
    tcase_set_timeout(cli, 120);
    tcase_add_test(cli, cli_ca_and_init_end_to_end);
    suite_add_tcase(s, cli);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(certs_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
