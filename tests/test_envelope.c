/*
 * test_envelope.c - sealing and opening signed envelopes.
 *
 * Every test gets a scratch directory under BG_TEST_TMPDIR with a real
 * federation CA, real city keys and certificates (Guangzhou 440100, Shenzhen
 * 440300, Foshan 440600), a CRL and a roster table. Shenzhen is the receiver
 * of requests unless a test says otherwise. Envelopes that the public sealer
 * refuses to make (a wrong sender, bad lengths, another version) are built by
 * hand with protobuf-c and signed with bg_sig_sign, as an attacker or a buggy
 * peer would.
 */
#define _GNU_SOURCE /* nftw's FTW_DEPTH/FTW_PHYS */
#include <check.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <sodium.h>

#include "certs/pki.h"
#include "certs/sig.h"
#include "certs/trust.h"
#include "peers/envelope.h"
#include "proto/envelope.pb-c.h"

#define GZ_CODE "440100"
#define SZ_CODE "440300"
#define FS_CODE "440600"
#define W_MS BG_ENV_WINDOW_DEFAULT_MS

static char scratch[PATH_MAX];

typedef struct city {
    const char *code, *name;
    EVP_PKEY *key;
    X509 *cert;
    bg_env_identity *id;
} city;

static bg_pki_ca *ca;
static X509_CRL *crl;
static city gz = {GZ_CODE, "Guangzhou", NULL, NULL, NULL};
static city sz = {SZ_CODE, "Shenzhen", NULL, NULL, NULL};
static city fs = {FS_CODE, "Foshan", NULL, NULL, NULL};
static bg_trust *trust_sz, *trust_gz;
static bg_env_verifier *v_sz, *v_gz; /* Shenzhen opens requests, Guangzhou answers */

/* --- the roster: a table the tests edit --- */

typedef struct pin {
    char city[BG_CITY_CODE_LEN + 1];
    uint8_t fp[BG_SIG_FP_LEN];
    bool present;
    bool has_next; /* a rotation: next is pinned too */
    uint8_t next[BG_SIG_FP_LEN];
} pin;
static pin roster[4];

static int
roster_fp(void *ctx, const char *c, uint8_t fp_out[BG_ENV_PINS_MAX][BG_SIG_FP_LEN], size_t *n)
{
    (void)ctx;
    for (size_t i = 0; i < sizeof roster / sizeof roster[0]; i++)
        if (roster[i].present && strcmp(roster[i].city, c) == 0) {
            memcpy(fp_out[0], roster[i].fp, BG_SIG_FP_LEN);
            if (roster[i].has_next)
                memcpy(fp_out[1], roster[i].next, BG_SIG_FP_LEN);
            *n = roster[i].has_next ? 2 : 1;
            return BG_OK;
        }
    return BG_ENOTFOUND;
}

static pin *
roster_entry(const char *c)
{
    for (size_t i = 0; i < sizeof roster / sizeof roster[0]; i++)
        if (strcmp(roster[i].city, c) == 0)
            return &roster[i];
    ck_abort_msg("no roster entry %s", c);
    return NULL;
}

/* --- scratch, CA and cities --- */

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

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
make_ca(const char *sub)
{
    bg_err err = {0};
    ck_assert_msg(bg_pki_ca_init(at(sub), NULL, 3650, &err) == BG_OK, "%s", err.msg);
    bg_pki_ca *h = NULL;
    ck_assert_msg(bg_pki_ca_open(&h, at(sub), &err) == BG_OK, "%s", err.msg);
    return h;
}

/* A key and a certificate for code issued by issuer, valid [nb, na]. */
static X509 *
issue_at(bg_pki_ca *issuer, const char *code, const char *name, time_t nb, time_t na,
         EVP_PKEY **key_out)
{
    bg_err err = {0};
    EVP_PKEY *key = NULL;
    X509_REQ *req = NULL;
    X509 *x = NULL;
    ck_assert_int_eq(bg_pki_key_generate(&key, &err), BG_OK);
    ck_assert_msg(bg_pki_csr_make(key, code, name, &req, &err) == BG_OK, "%s", err.msg);
    ck_assert_msg(bg_pki_ca_issue(issuer, req, nb, na, &x, &err) == BG_OK, "%s", err.msg);
    X509_REQ_free(req);
    *key_out = key;
    return x;
}

static void
city_make(city *c, bg_pki_ca *issuer, time_t nb, time_t na)
{
    bg_err err = {0};
    c->cert = issue_at(issuer, c->code, c->name, nb, na, &c->key);
    ck_assert_msg(bg_env_identity_new(&c->id, c->key, c->cert, &err) == BG_OK, "%s", err.msg);
}

static void
city_free(city *c)
{
    bg_env_identity_free(c->id);
    EVP_PKEY_free(c->key);
    X509_free(c->cert);
    c->id = NULL;
    c->key = NULL;
    c->cert = NULL;
}

static bg_env_verifier *
verifier(const char *own, bg_trust *t, size_t replay_cap, size_t max_message)
{
    bg_env_verifier_config cfg = {
        .own_city = own,
        .trust = t,
        .member_fp = roster_fp,
        .replay_capacity = replay_cap,
        /* These tests look at the whole cache and at both ends of a
         * symmetric window; the per-sender share and the default future
         * skew have tests of their own. */
        .replay_share = replay_cap,
        .future_ms = W_MS,
        .max_message = max_message,
    };
    bg_env_verifier *v = NULL;
    bg_err err = {0};
    ck_assert_msg(bg_env_verifier_new(&v, &cfg, &err) == BG_OK, "%s", err.msg);
    return v;
}

static void
setup(void)
{
    mkdir(BG_TEST_TMPDIR, 0700);
    snprintf(scratch, sizeof scratch, "%s/envelope.XXXXXX", BG_TEST_TMPDIR);
    ck_assert_ptr_nonnull(mkdtemp(scratch));
    ca = make_ca("ca");
    time_t now = time(NULL);
    city *all[] = {&gz, &sz, &fs};
    for (size_t i = 0; i < 3; i++) {
        city_make(all[i], ca, now - 60, now + 30 * 86400);
        snprintf(roster[i].city, sizeof roster[i].city, "%s", all[i]->code);
        memcpy(roster[i].fp, all[i]->id->fingerprint, BG_SIG_FP_LEN);
        roster[i].present = true;
    }
    bg_err err = {0};
    ck_assert_msg(bg_pki_ca_crl(ca, now, 7 * 86400, &crl, &err) == BG_OK, "%s", err.msg);
    X509 *root = bg_pki_ca_cert(ca);
    ck_assert_int_eq(bg_trust_new(&trust_sz, root, crl, 0, &err), BG_OK);
    ck_assert_int_eq(bg_trust_new(&trust_gz, root, crl, 0, &err), BG_OK);
    v_sz = verifier(SZ_CODE, trust_sz, 0, 0);
    v_gz = verifier(GZ_CODE, trust_gz, 0, 0);
}

static void
teardown(void)
{
    bg_env_verifier_free(v_sz);
    bg_env_verifier_free(v_gz);
    bg_trust_free(trust_sz);
    bg_trust_free(trust_gz);
    X509_CRL_free(crl);
    city_free(&gz);
    city_free(&sz);
    city_free(&fs);
    bg_pki_ca_close(ca);
    memset(roster, 0, sizeof roster);
    nftw(scratch, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    ERR_clear_error();
}

/* --- sealing and opening helpers --- */

static const char body_text[] = "blinded elements go here";
static const uint8_t consent[32] = {0xC0, 0x45, 0xE7, 0x01};

typedef struct msg {
    uint8_t *p;
    size_t len;
    bg_env_sent sent;
} msg;

static msg
seal_at(const city *from, const char *to, bool with_cert, int64_t issued_at_ms)
{
    bg_env_fields f = {
        .recipient = to,
        .issued_at_ms = issued_at_ms,
        .purpose = "supervision",
        .authorisation_ref = consent,
        .authorisation_ref_len = sizeof consent,
        .body_type = 16,
        .body = (const uint8_t *)body_text,
        .body_len = sizeof body_text - 1,
    };
    msg m = {0};
    bg_err err = {0};
    ck_assert_msg(bg_env_seal(from->id, &f, with_cert, 0, &m.p, &m.len, &m.sent, &err) == BG_OK,
                  "%s", err.msg);
    return m;
}

static msg
seal(const city *from, const char *to, bool with_cert)
{
    return seal_at(from, to, with_cert, 0);
}

/* Opens m with v at now (0: now) and asserts the reason and, when want_msg
 * is not NULL, that the message contains it. Returns the refusal. */
static bg_env_refusal
expect_at(bg_env_verifier *v, const uint8_t *p, size_t len, int64_t now, bg_env_reason want,
          const char *want_msg)
{
    bg_env_opened *o = NULL;
    bg_env_refusal ref;
    bg_err err = {0};
    bg_env_reason r = bg_env_open(v, p, len, now, &o, &ref, &err);
    ck_assert_msg(r == want, "reason %s (%s), expected %s", bg_env_reason_name(r), err.msg,
                  bg_env_reason_name(want));
    ck_assert_int_eq(ref.reason, want);
    if (want == BG_ENV_OK) {
        ck_assert_ptr_nonnull(o);
        ck_assert_int_eq(err.code, BG_OK);
    } else {
        ck_assert_ptr_null(o);
        ck_assert_int_ne(err.code, BG_OK);
        ck_assert_str_eq(ref.message, err.msg);
    }
    if (want_msg != NULL)
        ck_assert_msg(strstr(err.msg, want_msg) != NULL, "message \"%s\" lacks \"%s\"", err.msg,
                      want_msg);
    bg_env_opened_free(o);
    return ref;
}

static bg_env_refusal
expect(bg_env_verifier *v, msg m, bg_env_reason want, const char *want_msg)
{
    return expect_at(v, m.p, m.len, 0, want, want_msg);
}

/* A hand-built envelope: starts valid (from -> to, now, cert included), then
 * a test breaks what it needs. */
typedef struct raw {
    Baygate__Envelope env;
    uint8_t rid[16], nonce[16];
    EVP_PKEY *key;      /* signs */
    const uint8_t *der; /* the certificate sent, unless fp_only */
    size_t der_len;
    bool fp_only;
    uint8_t fp[BG_SIG_FP_LEN];
    size_t fp_len;
    size_t sig_len_override; /* 0: the real signature */
} raw;

static void
raw_init(raw *r, const city *from, const char *to)
{
    memset(r, 0, sizeof *r);
    baygate__envelope__init(&r->env);
    randombytes_buf(r->rid, sizeof r->rid);
    randombytes_buf(r->nonce, sizeof r->nonce);
    r->env.version = BG_ENV_VERSION;
    r->env.sender = (char *)from->code;
    r->env.recipient = (char *)to;
    r->env.request_id.data = r->rid;
    r->env.request_id.len = sizeof r->rid;
    r->env.issued_at_ms = bg_env_now_ms();
    r->env.nonce.data = r->nonce;
    r->env.nonce.len = sizeof r->nonce;
    r->env.purpose = "supervision";
    r->env.body_type = 16;
    r->env.body.data = (uint8_t *)body_text;
    r->env.body.len = sizeof body_text - 1;
    r->key = from->key;
    r->der = from->id->cert_der;
    r->der_len = from->id->cert_der_len;
    memcpy(r->fp, from->id->fingerprint, BG_SIG_FP_LEN);
    r->fp_len = BG_SIG_FP_LEN;
}

static msg
raw_pack(raw *r)
{
    size_t elen = baygate__envelope__get_packed_size(&r->env);
    uint8_t *ebuf = malloc(elen + 1);
    ck_assert_ptr_nonnull(ebuf);
    baygate__envelope__pack(&r->env, ebuf);
    uint8_t sig[128];
    size_t siglen = 0;
    ck_assert_int_eq(bg_sig_sign(r->key, BG_SIG_CTX_ENVELOPE, ebuf, elen, sig, &siglen, NULL),
                     BG_OK);
    if (r->sig_len_override)
        siglen = r->sig_len_override;
    Baygate__SignedEnvelope se;
    baygate__signed_envelope__init(&se);
    se.envelope.data = ebuf;
    se.envelope.len = elen;
    if (r->fp_only) {
        se.signer_case = BAYGATE__SIGNED_ENVELOPE__SIGNER_CERTIFICATE_SHA256;
        se.certificate_sha256.data = r->fp;
        se.certificate_sha256.len = r->fp_len;
    } else {
        se.signer_case = BAYGATE__SIGNED_ENVELOPE__SIGNER_CERTIFICATE_DER;
        se.certificate_der.data = (uint8_t *)r->der;
        se.certificate_der.len = r->der_len;
    }
    se.signature.data = sig;
    se.signature.len = siglen;
    msg m = {0};
    m.len = baygate__signed_envelope__get_packed_size(&se);
    m.p = malloc(m.len);
    ck_assert_ptr_nonnull(m.p);
    baygate__signed_envelope__pack(&se, m.p);
    free(ebuf);
    memcpy(m.sent.nonce, r->nonce, sizeof r->nonce);
    memcpy(m.sent.request_id, r->rid, sizeof r->rid);
    return m;
}

/* Where needle first occurs in m. */
static size_t
find(msg m, const void *needle, size_t n)
{
    for (size_t i = 0; i + n <= m.len; i++)
        if (memcmp(m.p + i, needle, n) == 0)
            return i;
    ck_abort_msg("needle not found");
    return 0;
}

/* --- a good round trip --- */

START_TEST(round_trip_with_certificate_then_by_fingerprint)
{
    /* First contact carries the certificate; every field comes back as sealed. */
    msg m = seal(&gz, SZ_CODE, true);
    bg_env_opened *o = NULL;
    bg_err err = {0};
    ck_assert_int_eq(bg_env_open(v_sz, m.p, m.len, 0, &o, NULL, &err), BG_ENV_OK);
    ck_assert_str_eq(o->sender, GZ_CODE);
    ck_assert_str_eq(o->recipient, SZ_CODE);
    ck_assert_str_eq(o->purpose, "supervision");
    ck_assert_int_eq(memcmp(o->request_id, m.sent.request_id, BG_ENV_ID_LEN), 0);
    ck_assert_int_eq(memcmp(o->nonce, m.sent.nonce, BG_ENV_NONCE_LEN), 0);
    ck_assert_int_eq(o->issued_at_ms, m.sent.issued_at_ms);
    ck_assert_uint_eq(o->authorisation_ref_len, sizeof consent);
    ck_assert_int_eq(memcmp(o->authorisation_ref, consent, sizeof consent), 0);
    ck_assert_uint_eq(o->body_type, 16);
    ck_assert_uint_eq(o->body_len, sizeof body_text - 1);
    ck_assert_int_eq(memcmp(o->body, body_text, o->body_len), 0);
    ck_assert(!o->is_answer);
    ck_assert(o->cert_included);
    ck_assert_int_eq(memcmp(o->cert_fingerprint, gz.id->fingerprint, BG_SIG_FP_LEN), 0);
    /* ...and the certificate itself, for a gateway that keeps its peers' (revocation). */
    ck_assert_uint_eq(o->cert_der_len, gz.id->cert_der_len);
    ck_assert_int_eq(memcmp(o->cert_der, gz.id->cert_der, o->cert_der_len), 0);
    uint8_t digest[32];
    crypto_hash_sha256(digest, m.p, m.len);
    ck_assert_int_eq(memcmp(o->digest, digest, 32), 0);
    /* A random request id and a nonce were chosen, and they differ. */
    uint8_t zero[16] = {0};
    ck_assert_int_ne(memcmp(o->request_id, zero, 16), 0);
    ck_assert_int_ne(memcmp(o->request_id, o->nonce, 16), 0);
    bg_env_opened_free(o);

    /* Now the certificate is cached: the fingerprint alone is enough. */
    msg m2 = seal(&gz, SZ_CODE, false);
    /* The certificate (about 500 bytes of DER) is most of a small envelope; both
     * signatures vary by a few bytes (DER), so the margin is not exact. */
    ck_assert_uint_lt(m2.len + 400, m.len);
    ck_assert_int_eq(bg_env_open(v_sz, m2.p, m2.len, 0, &o, NULL, &err), BG_ENV_OK);
    ck_assert(!o->cert_included);
    ck_assert_ptr_null(o->cert_der);
    ck_assert_int_eq(memcmp(o->cert_fingerprint, gz.id->fingerprint, BG_SIG_FP_LEN), 0);
    ck_assert_int_ne(memcmp(o->nonce, m.sent.nonce, 16), 0); /* fresh nonce per seal */
    bg_env_opened_free(o);

    bg_env_stats st;
    bg_env_verifier_stats(v_sz, &st);
    ck_assert_uint_eq(st.opened, 2);
    ck_assert_uint_eq(st.refused, 0);
    ck_assert_uint_eq(st.replay_entries, 2);
    free(m.p);
    free(m2.p);
}
END_TEST

START_TEST(fingerprint_only_first_contact_asks_for_the_certificate)
{
    /* Shenzhen has never seen Guangzhou's certificate: UNKNOWN_CERTIFICATE,
     * which is answered, so Guangzhou learns to resend with it. */
    msg m = seal(&gz, SZ_CODE, false);
    bg_env_refusal ref = expect(v_sz, m, BG_ENV_UNKNOWN_CERTIFICATE, "resend with the certificate");
    ck_assert(bg_env_refusal_answerable(&ref));
    ck_assert_str_eq(ref.sender, GZ_CODE);
    ck_assert_int_eq(memcmp(ref.nonce, m.sent.nonce, 16), 0);
    ck_assert_int_eq(ref.trust_reason, BG_TRUST_NOT_CACHED);

    /* The error answer opens at Guangzhou (it carries Shenzhen's certificate). */
    uint8_t *ans = NULL;
    size_t alen = 0;
    bg_err err = {0};
    ck_assert_msg(bg_env_seal_refusal(sz.id, &ref, 0, &ans, &alen, &err) == BG_OK, "%s", err.msg);
    bg_env_opened *o = NULL;
    ck_assert_msg(bg_env_open_answer(v_gz, ans, alen, SZ_CODE, m.sent.nonce, 0, &o, &err) ==
                      BG_ENV_OK,
                  "%s", err.msg);
    ck_assert_uint_eq(o->body_type, BG_ENV_BODY_ERROR);
    uint32_t code = 0;
    char text[BG_ENV_ERROR_MSG_MAX + 1];
    ck_assert_int_eq(bg_env_error_parse(o->body, o->body_len, &code, text, &err), BG_OK);
    ck_assert_uint_eq(code, BG_ENV_UNKNOWN_CERTIFICATE);
    ck_assert_uint_eq(code, 7);
    ck_assert_ptr_nonnull(strstr(text, "resend with the certificate"));
    bg_env_opened_free(o);
    free(ans);

    /* The refusal did not record the nonce; a resend with the certificate works. */
    msg m2 = seal(&gz, SZ_CODE, true);
    expect(v_sz, m2, BG_ENV_OK, NULL);
    free(m.p);
    free(m2.p);
}
END_TEST

/* --- certificate refusals --- */

START_TEST(rogue_ca_with_the_same_dn_is_refused)
{
    /* A CA with the federation's name (same DN) issues a Guangzhou certificate. */
    bg_pki_ca *rogue = make_ca("rogue");
    ck_assert_int_eq(X509_NAME_cmp(X509_get_subject_name(bg_pki_ca_cert(rogue)),
                                   X509_get_subject_name(bg_pki_ca_cert(ca))),
                     0);
    time_t now = time(NULL);
    city fake = {GZ_CODE, "Guangzhou", NULL, NULL, NULL};
    city_make(&fake, rogue, now - 60, now + 86400);
    msg m = seal(&fake, SZ_CODE, true);
    bg_env_refusal ref = expect(v_sz, m, BG_ENV_CERT_UNTRUSTED,
                                "certificate refused: not issued by the federation CA");
    ck_assert_int_eq(ref.trust_reason, BG_TRUST_NOT_FEDERATION);
    ck_assert(!bg_env_refusal_answerable(&ref)); /* drop and log */
    free(m.p);
    city_free(&fake);
    bg_pki_ca_close(rogue);
}
END_TEST

START_TEST(revoked_certificate_is_refused_even_by_fingerprint)
{
    msg m = seal(&gz, SZ_CODE, true);
    expect(v_sz, m, BG_ENV_OK, NULL); /* cached now */

    bg_err err = {0};
    ck_assert_int_eq(bg_pki_ca_revoke(ca, GZ_CODE, NULL, time(NULL), NULL, &err), BG_OK);
    X509_CRL *next = NULL;
    ck_assert_int_eq(bg_pki_ca_crl(ca, time(NULL), 86400, &next, &err), BG_OK);
    ck_assert_int_eq(bg_trust_set_crl(trust_sz, next, &err), BG_OK);
    X509_CRL_free(next);

    msg m2 = seal(&gz, SZ_CODE, true);
    bg_env_refusal ref = expect(v_sz, m2, BG_ENV_CERT_REVOKED, "certificate revoked at");
    ck_assert_int_eq(ref.trust_reason, BG_TRUST_REVOKED);
    ck_assert(!bg_env_reason_answers(BG_ENV_CERT_REVOKED));
    /* The new CRL emptied the cache: the fingerprint is no way around it. */
    msg m3 = seal(&gz, SZ_CODE, false);
    expect(v_sz, m3, BG_ENV_UNKNOWN_CERTIFICATE, NULL);
    free(m.p);
    free(m2.p);
    free(m3.p);
}
END_TEST

START_TEST(expired_certificate_is_refused)
{
    time_t now = time(NULL);
    city old = {GZ_CODE, "Guangzhou", NULL, NULL, NULL};
    city_make(&old, ca, now - 10 * 86400, now - 86400);
    msg m = seal(&old, SZ_CODE, true);
    bg_env_refusal ref = expect(v_sz, m, BG_ENV_CERT_EXPIRED, "certificate expired at");
    ck_assert(bg_env_refusal_answerable(&ref)); /* an honest operator forgot to renew */
    free(m.p);
    city_free(&old);
}
END_TEST

START_TEST(claimed_sender_other_than_the_certificate_is_refused)
{
    /* Foshan signs with its own key and certificate but claims to be Guangzhou. */
    raw r;
    raw_init(&r, &fs, SZ_CODE);
    r.env.sender = GZ_CODE;
    msg m = raw_pack(&r);
    bg_env_refusal ref =
        expect(v_sz, m, BG_ENV_CERT_WRONG_CITY, "certificate names 440600, envelope claims 440100");
    ck_assert(!bg_env_refusal_answerable(&ref));
    free(m.p);

    /* Same by fingerprint, once Foshan's certificate is cached. */
    msg ok = seal(&fs, SZ_CODE, true);
    expect(v_sz, ok, BG_ENV_OK, NULL);
    raw r2;
    raw_init(&r2, &fs, SZ_CODE);
    r2.env.sender = GZ_CODE;
    r2.fp_only = true;
    msg m2 = raw_pack(&r2);
    expect(v_sz, m2, BG_ENV_CERT_WRONG_CITY, "envelope claims 440100");
    free(ok.p);
    free(m2.p);
}
END_TEST

/* --- roster --- */

START_TEST(city_not_in_the_roster_is_refused)
{
    roster_entry(FS_CODE)->present = false;
    msg m = seal(&fs, SZ_CODE, true);
    bg_env_refusal ref =
        expect(v_sz, m, BG_ENV_NOT_MEMBER, "440600 is not a member in this gateway's roster");
    ck_assert(bg_env_refusal_answerable(&ref));
    free(m.p);
}
END_TEST

START_TEST(certificate_other_than_the_roster_pin_is_refused)
{
    /* Guangzhou renewed its certificate; the roster still pins the old one. */
    time_t now = time(NULL);
    city renewed = {GZ_CODE, "Guangzhou", NULL, NULL, NULL};
    city_make(&renewed, ca, now - 60, now + 86400);
    msg m = seal(&renewed, SZ_CODE, true);
    char want[80];
    char hex[BG_SIG_FP_HEX_LEN + 1];
    bg_sig_fp_hex(gz.id->fingerprint, hex);
    snprintf(want, sizeof want, "is not the one the roster pins (%.16s...)", hex);
    expect(v_sz, m, BG_ENV_PIN_MISMATCH, want);
    /* Once the roster pins the new one, it is accepted. */
    memcpy(roster_entry(GZ_CODE)->fp, renewed.id->fingerprint, BG_SIG_FP_LEN);
    msg m2 = seal(&renewed, SZ_CODE, false);
    expect(v_sz, m2, BG_ENV_OK, NULL);
    free(m.p);
    free(m2.p);
    city_free(&renewed);
}
END_TEST

START_TEST(both_certificates_are_accepted_while_a_rotation_pins_them)
{
    /* Guangzhou rotates: the roster pins its current and its next certificate. */
    time_t now = time(NULL);
    city next = {GZ_CODE, "Guangzhou", NULL, NULL, NULL};
    city_make(&next, ca, now - 60, now + 86400);
    pin *p = roster_entry(GZ_CODE);
    memcpy(p->next, next.id->fingerprint, BG_SIG_FP_LEN);
    p->has_next = true;
    msg a = seal(&gz, SZ_CODE, true), b = seal(&next, SZ_CODE, true);
    expect(v_sz, a, BG_ENV_OK, NULL);
    expect(v_sz, b, BG_ENV_OK, NULL);
    /* A third certificate of Guangzhou is neither: refused, naming both pins. */
    city other = {GZ_CODE, "Guangzhou", NULL, NULL, NULL};
    city_make(&other, ca, now - 60, now + 86400);
    msg c = seal(&other, SZ_CODE, true);
    expect(v_sz, c, BG_ENV_PIN_MISMATCH, "or its next");
    /* The rotation done: only the new certificate is pinned, the old one refused. */
    memcpy(p->fp, next.id->fingerprint, BG_SIG_FP_LEN);
    p->has_next = false;
    msg d = seal(&gz, SZ_CODE, true), e = seal(&next, SZ_CODE, false);
    expect(v_sz, d, BG_ENV_PIN_MISMATCH, "is not the one the roster pins");
    expect(v_sz, e, BG_ENV_OK, NULL);
    free(a.p);
    free(b.p);
    free(c.p);
    free(d.p);
    free(e.p);
    city_free(&next);
    city_free(&other);
}
END_TEST

/* --- addressing, clock, replay --- */

START_TEST(wrong_recipient_is_refused)
{
    msg m = seal(&gz, FS_CODE, true);
    bg_env_refusal ref =
        expect(v_sz, m, BG_ENV_WRONG_RECIPIENT, "addressed to \"440600\", this gateway is 440300");
    ck_assert(bg_env_refusal_answerable(&ref));
    /* Foshan, to whom it was addressed, accepts the very same bytes. */
    bg_trust *t = NULL;
    ck_assert_int_eq(bg_trust_new(&t, bg_pki_ca_cert(ca), crl, 0, NULL), BG_OK);
    bg_env_verifier *v_fs = verifier(FS_CODE, t, 0, 0);
    expect(v_fs, m, BG_ENV_OK, NULL);
    bg_env_verifier_free(v_fs);
    bg_trust_free(t);
    free(m.p);
}
END_TEST

START_TEST(stale_and_future_envelopes_are_refused)
{
    int64_t now = bg_env_now_ms();
    msg stale = seal_at(&gz, SZ_CODE, true, now - W_MS - 1000);
    bg_env_refusal ref = expect_at(v_sz, stale.p, stale.len, now, BG_ENV_STALE,
                                   "envelope is stale: issued 301.000 s before now");
    ck_assert(bg_env_refusal_answerable(&ref));
    msg future = seal_at(&gz, SZ_CODE, true, now + W_MS + 1000);
    expect_at(v_sz, future.p, future.len, now, BG_ENV_FUTURE,
              "envelope is from the future: issued 301.000 s after now");
    /* Both ends of the window are inside it. */
    msg edge1 = seal_at(&gz, SZ_CODE, true, now - W_MS);
    msg edge2 = seal_at(&gz, SZ_CODE, true, now + W_MS);
    expect_at(v_sz, edge1.p, edge1.len, now, BG_ENV_OK, NULL);
    expect_at(v_sz, edge2.p, edge2.len, now, BG_ENV_OK, NULL);
    free(stale.p);
    free(future.p);
    free(edge1.p);
    free(edge2.p);
}
END_TEST

START_TEST(replayed_envelope_is_refused)
{
    msg m = seal(&gz, SZ_CODE, true);
    int64_t now = bg_env_now_ms();
    expect_at(v_sz, m.p, m.len, now, BG_ENV_OK, NULL);
    bg_env_refusal ref = expect_at(v_sz, m.p, m.len, now + 1000, BG_ENV_REPLAY, "replay: nonce");
    ck_assert(bg_env_refusal_answerable(&ref));
    /* At the far end of the window it is still remembered... */
    expect_at(v_sz, m.p, m.len, m.sent.issued_at_ms + W_MS, BG_ENV_REPLAY, NULL);
    /* ...and past it the clock check refuses it anyway. */
    expect_at(v_sz, m.p, m.len, m.sent.issued_at_ms + W_MS + 1, BG_ENV_STALE, NULL);
    bg_env_stats st;
    bg_env_verifier_stats(v_sz, &st);
    ck_assert_uint_eq(st.replays, 2);
    free(m.p);
}
END_TEST

START_TEST(forged_envelope_does_not_poison_the_replay_cache)
{
    /* A forger copies an honest envelope's nonce, with a broken signature. */
    msg m = seal(&gz, SZ_CODE, true);
    msg forged = {.len = m.len, .p = malloc(m.len)};
    memcpy(forged.p, m.p, m.len);
    forged.p[forged.len - 1] ^= 0x01; /* last byte of the signature */
    expect(v_sz, forged, BG_ENV_BAD_SIGNATURE, "signature of 440100 does not verify");
    expect(v_sz, forged, BG_ENV_BAD_SIGNATURE, NULL); /* not REPLAY: never recorded */
    expect(v_sz, m, BG_ENV_OK, NULL);                 /* the honest one still gets in */
    free(m.p);
    free(forged.p);
}
END_TEST

/* --- tampering and garbage --- */

START_TEST(flipped_bit_in_the_body_fails_the_signature)
{
    msg m = seal(&gz, SZ_CODE, true);
    size_t at_body = find(m, body_text, sizeof body_text - 1);
    for (size_t i = 0; i < sizeof body_text - 1; i++)
        for (int bit = 0; bit < 8; bit++) {
            m.p[at_body + i] ^= (uint8_t)(1u << bit);
            bg_env_refusal ref = expect(v_sz, m, BG_ENV_BAD_SIGNATURE, "does not verify");
            ck_assert(!bg_env_refusal_answerable(&ref)); /* drop and log */
            m.p[at_body + i] ^= (uint8_t)(1u << bit);
        }
    expect(v_sz, m, BG_ENV_OK, NULL);
    free(m.p);
}
END_TEST

START_TEST(flipped_bit_in_the_signature_fails)
{
    msg warm = seal(&gz, SZ_CODE, true);
    expect(v_sz, warm, BG_ENV_OK, NULL); /* caches the certificate */
    free(warm.p);
    msg m = seal(&gz, SZ_CODE, false);
    /* The signature is the last field: tag 0x22, one length byte, then DER. */
    Baygate__SignedEnvelope *se = baygate__signed_envelope__unpack(NULL, m.len, m.p);
    ck_assert_ptr_nonnull(se);
    size_t siglen = se->signature.len;
    baygate__signed_envelope__free_unpacked(se, NULL);
    size_t start = m.len - siglen;
    ck_assert_uint_eq(m.p[start - 2], 0x22);
    for (size_t i = start; i < m.len; i++)
        for (int bit = 0; bit < 8; bit++) {
            m.p[i] ^= (uint8_t)(1u << bit);
            expect(v_sz, m, BG_ENV_BAD_SIGNATURE, NULL);
            m.p[i] ^= (uint8_t)(1u << bit);
        }
    expect(v_sz, m, BG_ENV_OK, NULL);
    free(m.p);
}
END_TEST

START_TEST(truncated_envelopes_are_refused)
{
    msg m = seal(&gz, SZ_CODE, true);
    size_t malformed = 0;
    for (size_t cut = 0; cut < m.len; cut++) {
        bg_env_opened *o = NULL;
        bg_env_refusal ref;
        bg_env_reason r = bg_env_open(v_sz, m.p, cut, 0, &o, &ref, NULL);
        ck_assert_msg(r != BG_ENV_OK, "cut at %zu accepted", cut);
        ck_assert_ptr_null(o);
        ck_assert(!bg_env_refusal_answerable(&ref));
        malformed += r == BG_ENV_MALFORMED;
    }
    /* Cutting anywhere loses (part of) the signature, the last field. */
    ck_assert_uint_eq(malformed, m.len);
    expect(v_sz, m, BG_ENV_OK, NULL);
    free(m.p);
}
END_TEST

START_TEST(garbage_bytes_are_refused)
{
    uint8_t buf[2048] = {0};
    expect_at(v_sz, buf, 0, 0, BG_ENV_MALFORMED, "empty message");
    memset(buf, 0, sizeof buf);
    expect_at(v_sz, buf, sizeof buf, 0, BG_ENV_MALFORMED, NULL);
    memset(buf, 0xFF, sizeof buf);
    expect_at(v_sz, buf, sizeof buf, 0, BG_ENV_MALFORMED, NULL);
    for (int i = 0; i < 2000; i++) {
        size_t len = 1 + randombytes_uniform(sizeof buf);
        randombytes_buf(buf, len);
        bg_env_opened *o = NULL;
        bg_env_refusal ref;
        bg_env_reason r = bg_env_open(v_sz, buf, len, 0, &o, &ref, NULL);
        ck_assert_int_ne(r, BG_ENV_OK);
        ck_assert(!bg_env_refusal_answerable(&ref));
    }
    /* A valid SignedEnvelope around garbage: the inner parse refuses it. */
    raw r;
    raw_init(&r, &gz, SZ_CODE);
    msg m = raw_pack(&r);
    Baygate__SignedEnvelope *se = baygate__signed_envelope__unpack(NULL, m.len, m.p);
    memset(se->envelope.data, 0xFF, se->envelope.len);
    size_t len = baygate__signed_envelope__get_packed_size(se);
    uint8_t *p = malloc(len);
    baygate__signed_envelope__pack(se, p);
    expect_at(v_sz, p, len, 0, BG_ENV_MALFORMED_ENVELOPE, "envelope does not parse");
    baygate__signed_envelope__free_unpacked(se, NULL);
    free(p);
    free(m.p);
}
END_TEST

START_TEST(oversize_messages_are_refused_before_sending_and_on_receipt)
{
    size_t big = 6000;
    uint8_t *body = calloc(1, big);
    bg_env_fields f = {.recipient = SZ_CODE, .body_type = 16, .body = body, .body_len = big};
    uint8_t *out = NULL;
    size_t len = 0;
    bg_err err = {0};
    /* The sender's own bound: nothing is made. */
    ck_assert_int_eq(bg_env_seal(gz.id, &f, true, 4096, &out, &len, NULL, &err), BG_ELIMIT);
    ck_assert_ptr_null(out);
    ck_assert_ptr_nonnull(strstr(err.msg, "exceeds the 4096-byte message limit"));
    /* Just over with the certificate, under without it: the final size counts. */
    f.body_len = 3500;
    ck_assert_int_eq(bg_env_seal(gz.id, &f, true, 4096, &out, &len, NULL, &err), BG_ELIMIT);
    ck_assert_int_eq(bg_env_seal(gz.id, &f, false, 4096, &out, &len, NULL, &err), BG_OK);
    ck_assert_uint_le(len, 4096);
    free(out);

    /* The receiver's bound. */
    bg_env_verifier *small = verifier(SZ_CODE, trust_sz, 0, 4096);
    f.body_len = big;
    ck_assert_int_eq(bg_env_seal(gz.id, &f, true, 0, &out, &len, NULL, &err), BG_OK);
    char want[80];
    snprintf(want, sizeof want, "message of %zu bytes exceeds the limit of 4096", len);
    bg_env_refusal ref = expect_at(small, out, len, 0, BG_ENV_OVERSIZE, want);
    ck_assert(!bg_env_refusal_answerable(&ref));
    expect_at(v_sz, out, len, 0, BG_ENV_OK, NULL); /* the default 1 MiB takes it */
    bg_env_verifier_free(small);
    free(out);
    free(body);
}
END_TEST

START_TEST(huge_declared_lengths_are_refused)
{
    /* Field 1 (envelope) claiming 2^31 bytes with 3 present. */
    const uint8_t hostile[] = {0x0A, 0x80, 0x80, 0x80, 0x80, 0x08, 'a', 'b', 'c'};
    expect_at(v_sz, hostile, sizeof hostile, 0, BG_ENV_MALFORMED, "not a signed envelope");

    /* A 20000-byte "certificate" (over BG_TRUST_CERT_MAX): refused before parsing it. */
    raw r;
    raw_init(&r, &gz, SZ_CODE);
    uint8_t *fat = calloc(1, 20000);
    r.der = fat;
    r.der_len = 20000;
    msg m = raw_pack(&r);
    expect(v_sz, m, BG_ENV_MALFORMED, "certificate of 20000 bytes (must be 1..16384)");
    free(m.p);
    free(fat);

    /* A fingerprint of 31 bytes, a signature of 100. */
    raw_init(&r, &gz, SZ_CODE);
    r.fp_only = true;
    r.fp_len = 31;
    m = raw_pack(&r);
    expect(v_sz, m, BG_ENV_MALFORMED, "certificate fingerprint of 31 bytes (must be 32)");
    free(m.p);
    raw_init(&r, &gz, SZ_CODE);
    r.sig_len_override = 100;
    m = raw_pack(&r);
    expect(v_sz, m, BG_ENV_MALFORMED, "signature of 100 bytes (must be 1..72)");
    free(m.p);

    /* Inner lengths: request id 17, nonce 15, reply-to 8, consent 65, purpose. */
    uint8_t long_buf[65] = {0};
    raw_init(&r, &gz, SZ_CODE);
    r.env.request_id.len = 17;
    r.env.request_id.data = long_buf;
    m = raw_pack(&r);
    expect(v_sz, m, BG_ENV_MALFORMED_ENVELOPE, "request id of 17 and nonce of 16 bytes");
    free(m.p);
    raw_init(&r, &gz, SZ_CODE);
    r.env.nonce.len = 15;
    m = raw_pack(&r);
    expect(v_sz, m, BG_ENV_MALFORMED_ENVELOPE, "nonce of 15 bytes");
    free(m.p);
    raw_init(&r, &gz, SZ_CODE);
    r.env.reply_to_nonce.data = long_buf;
    r.env.reply_to_nonce.len = 8;
    m = raw_pack(&r);
    expect(v_sz, m, BG_ENV_MALFORMED_ENVELOPE, "reply-to nonce of 8 bytes");
    free(m.p);
    raw_init(&r, &gz, SZ_CODE);
    r.env.authorisation_ref.data = long_buf;
    r.env.authorisation_ref.len = 65;
    m = raw_pack(&r);
    expect(v_sz, m, BG_ENV_MALFORMED_ENVELOPE, "authorisation reference of 65 bytes");
    free(m.p);
    raw_init(&r, &gz, SZ_CODE);
    r.env.purpose = "super\nvision";
    m = raw_pack(&r);
    expect(v_sz, m, BG_ENV_MALFORMED_ENVELOPE, "purpose \"super?vision\"");
    free(m.p);

    /* An unknown-field bomb: 30000 two-byte unknown fields. protobuf-c's own
     * allocator takes ~15x the wire size for it; the capped one refuses. */
    size_t n = 30000, len = 2 * n;
    uint8_t *bomb = malloc(len);
    for (size_t i = 0; i < n; i++) {
        bomb[2 * i] = 0x78; /* field 15, varint */
        bomb[2 * i + 1] = 0x00;
    }
    Baygate__SignedEnvelope *se = baygate__signed_envelope__unpack(NULL, len, bomb);
    ck_assert_ptr_nonnull(se); /* it is "valid" protobuf */
    ck_assert_uint_eq(se->base.n_unknown_fields, n);
    baygate__signed_envelope__free_unpacked(se, NULL);
    expect_at(v_sz, bomb, len, 0, BG_ENV_MALFORMED, "does not parse in 1025536 bytes");
    free(bomb);
}
END_TEST

START_TEST(bad_sender_and_version_are_refused)
{
    raw r;
    raw_init(&r, &gz, SZ_CODE);
    r.env.sender = "44010";
    msg m = raw_pack(&r);
    bg_env_refusal ref = expect(v_sz, m, BG_ENV_BAD_SENDER, "sender \"44010\" is not a 6-digit");
    ck_assert(!ref.addressable);
    free(m.p);
    raw_init(&r, &gz, SZ_CODE);
    r.env.sender = "4401\x01\x02";
    m = raw_pack(&r);
    expect(v_sz, m, BG_ENV_BAD_SENDER, "sender \"4401??\"");
    free(m.p);

    raw_init(&r, &gz, SZ_CODE);
    r.env.version = 2;
    m = raw_pack(&r);
    ref = expect(v_sz, m, BG_ENV_BAD_VERSION, "envelope version 2; this gateway speaks 1");
    ck_assert(bg_env_refusal_answerable(&ref)); /* helps a rolling upgrade */
    ck_assert_str_eq(ref.sender, GZ_CODE);
    ck_assert_int_eq(memcmp(ref.request_id, r.rid, 16), 0);
    free(m.p);
}
END_TEST

/* --- answers --- */

START_TEST(answers_are_bound_to_the_request)
{
    msg req = seal(&gz, SZ_CODE, true);
    bg_env_opened *in = NULL;
    bg_err err = {0};
    ck_assert_int_eq(bg_env_open(v_sz, req.p, req.len, 0, &in, NULL, &err), BG_ENV_OK);
    uint8_t *ans = NULL;
    size_t alen = 0;
    const uint8_t reply[] = "evaluated elements";
    ck_assert_int_eq(
        bg_env_seal_answer(sz.id, in, 17, reply, sizeof reply, true, 0, &ans, &alen, &err), BG_OK);

    /* Bound to another nonce: refused, and not recorded. */
    uint8_t other[16];
    memcpy(other, req.sent.nonce, 16);
    other[15] ^= 1;
    bg_env_opened *o = NULL;
    ck_assert_int_eq(bg_env_open_answer(v_gz, ans, alen, SZ_CODE, other, 0, &o, &err),
                     BG_ENV_NOT_BOUND);
    ck_assert_ptr_null(o);
    ck_assert_ptr_nonnull(strstr(err.msg, "does not reply to our request's nonce"));
    ck_assert(!bg_env_reason_answers(BG_ENV_NOT_BOUND));
    /* From a peer we did not ask. */
    ck_assert_int_eq(bg_env_open_answer(v_gz, ans, alen, FS_CODE, req.sent.nonce, 0, &o, &err),
                     BG_ENV_WRONG_PEER);
    ck_assert_str_eq(err.msg, "answer is from 440300, the request went to 440600");
    /* An answer is not a request, nor a request an answer (no reflection). */
    expect_at(v_gz, ans, alen, 0, BG_ENV_WRONG_KIND, "an answer (it carries reply_to_nonce)");
    ck_assert_int_eq(bg_env_open_answer(v_sz, req.p, req.len, GZ_CODE, req.sent.nonce, 0, &o, &err),
                     BG_ENV_WRONG_KIND);

    /* The right one. */
    ck_assert_msg(bg_env_open_answer(v_gz, ans, alen, SZ_CODE, req.sent.nonce, 0, &o, &err) ==
                      BG_ENV_OK,
                  "%s", err.msg);
    ck_assert(o->is_answer);
    ck_assert_str_eq(o->sender, SZ_CODE);
    ck_assert_str_eq(o->recipient, GZ_CODE);
    ck_assert_int_eq(memcmp(o->reply_to_nonce, req.sent.nonce, 16), 0);
    ck_assert_int_eq(memcmp(o->request_id, req.sent.request_id, 16), 0);
    ck_assert_str_eq(o->purpose, "supervision");
    ck_assert_uint_eq(o->authorisation_ref_len, sizeof consent);
    ck_assert_uint_eq(o->body_type, 17);
    ck_assert_int_eq(memcmp(o->body, reply, sizeof reply), 0);
    /* An answer is never answered. */
    uint8_t *back = NULL;
    size_t blen = 0;
    ck_assert_int_eq(bg_env_seal_answer(gz.id, o, 17, NULL, 0, true, 0, &back, &blen, &err),
                     BG_EINVAL);
    ck_assert_ptr_null(back);
    bg_env_opened_free(o);
    /* Twice: a replay. */
    ck_assert_int_eq(bg_env_open_answer(v_gz, ans, alen, SZ_CODE, req.sent.nonce, 0, &o, &err),
                     BG_ENV_REPLAY);
    free(ans);
    bg_env_opened_free(in);
    free(req.p);
}
END_TEST

START_TEST(error_answers_follow_the_reason_table)
{
    /* Stable numbers, unique names, and the answer/drop split of envelope.h. */
    const bg_env_reason answered[] = {BG_ENV_BAD_VERSION,
                                      BG_ENV_UNKNOWN_CERTIFICATE,
                                      BG_ENV_CERT_EXPIRED,
                                      BG_ENV_CERT_NOT_YET_VALID,
                                      BG_ENV_TRUST_UNAVAILABLE,
                                      BG_ENV_NOT_MEMBER,
                                      BG_ENV_PIN_MISMATCH,
                                      BG_ENV_WRONG_RECIPIENT,
                                      BG_ENV_STALE,
                                      BG_ENV_FUTURE,
                                      BG_ENV_REPLAY,
                                      BG_ENV_REPLAY_FULL};
    ck_assert_int_eq(BG_ENV_OVERSIZE, 1);
    ck_assert_int_eq(BG_ENV_STALE, 17);
    ck_assert_int_eq(BG_ENV_REPLAY, 19);
    ck_assert_int_eq(BG_ENV_BAD_SIGNATURE, 21);
    ck_assert_int_eq(BG_ENV_INTERNAL, 24);
    size_t n_answered = 0;
    for (int i = 0; i <= BG_ENV_REASON_LAST; i++) {
        ck_assert_uint_eq(bg_env_reason_code((bg_env_reason)i), (uint32_t)i);
        for (int j = 0; j < i; j++)
            ck_assert_str_ne(bg_env_reason_name((bg_env_reason)i),
                             bg_env_reason_name((bg_env_reason)j));
        bool want = false;
        for (size_t k = 0; k < sizeof answered / sizeof answered[0]; k++)
            want |= answered[k] == (bg_env_reason)i;
        ck_assert_msg(bg_env_reason_answers((bg_env_reason)i) == want, "%s",
                      bg_env_reason_name((bg_env_reason)i));
        n_answered += want;
    }
    ck_assert_uint_eq(n_answered, sizeof answered / sizeof answered[0]);
    ck_assert_str_eq(bg_env_reason_name((bg_env_reason)99), "unknown");

    /* A stale request gets a typed, signed error bound to its nonce. */
    int64_t now = bg_env_now_ms();
    msg m = seal_at(&gz, SZ_CODE, true, now - 400000);
    bg_env_refusal ref = expect_at(v_sz, m.p, m.len, now, BG_ENV_STALE, NULL);
    uint8_t *ans = NULL;
    size_t alen = 0;
    bg_err err = {0};
    ck_assert_int_eq(bg_env_seal_refusal(sz.id, &ref, 0, &ans, &alen, &err), BG_OK);
    bg_env_opened *o = NULL;
    ck_assert_int_eq(bg_env_open_answer(v_gz, ans, alen, SZ_CODE, m.sent.nonce, 0, &o, &err),
                     BG_ENV_OK);
    uint32_t code = 0;
    char text[BG_ENV_ERROR_MSG_MAX + 1];
    ck_assert_uint_eq(o->body_type, BG_ENV_BODY_ERROR);
    ck_assert_int_eq(bg_env_error_parse(o->body, o->body_len, &code, text, &err), BG_OK);
    ck_assert_uint_eq(code, BG_ENV_STALE);
    ck_assert_str_eq(text, ref.message);
    ck_assert_int_eq(memcmp(o->request_id, m.sent.request_id, 16), 0);
    bg_env_opened_free(o);
    free(ans);
    free(m.p);

    /* A bad signature is dropped: no error answer is made for it. */
    m = seal(&gz, SZ_CODE, true);
    m.p[m.len - 1] ^= 1;
    ref = expect(v_sz, m, BG_ENV_BAD_SIGNATURE, NULL);
    ck_assert(ref.addressable); /* it parsed, but the reason says drop */
    ck_assert_int_eq(bg_env_seal_refusal(sz.id, &ref, 0, &ans, &alen, &err), BG_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "drop and log"));
    m.p[m.len - 1] ^= 1;

    /* A gateway-level refusal of an accepted request (a quota, code 100+). */
    ck_assert_int_eq(bg_env_open(v_sz, m.p, m.len, 0, &o, NULL, &err), BG_ENV_OK);
    ck_assert_int_eq(bg_env_seal_error(sz.id, o, 100, "quota\texceeded", 0, &ans, &alen, &err),
                     BG_OK);
    bg_env_opened *a = NULL;
    ck_assert_int_eq(bg_env_open_answer(v_gz, ans, alen, SZ_CODE, m.sent.nonce, 0, &a, &err),
                     BG_ENV_OK);
    ck_assert_int_eq(bg_env_error_parse(a->body, a->body_len, &code, text, &err), BG_OK);
    ck_assert_uint_eq(code, 100);
    ck_assert_str_eq(text, "quota?exceeded"); /* control characters never reach a log */
    bg_env_opened_free(a);
    bg_env_opened_free(o);
    free(ans);
    free(m.p);

    /* ErrorAnswer parsing is bounded and strict. */
    const uint8_t junk[] = {0xFF, 0xFF, 0xFF};
    ck_assert_int_eq(bg_env_error_parse(junk, sizeof junk, &code, text, &err), BG_EPROTO);
    ck_assert_int_eq(bg_env_error_parse(NULL, 0, &code, text, &err), BG_EPROTO); /* no code */
    uint8_t big[600] = {0x12, 0xD5, 0x04}; /* message of 597 bytes */
    ck_assert_int_eq(bg_env_error_parse(big, sizeof big, &code, text, &err), BG_EPROTO);
    char longmsg[400];
    memset(longmsg, 'x', sizeof longmsg - 1);
    longmsg[sizeof longmsg - 1] = '\0';
    uint8_t *body = NULL;
    size_t blen = 0;
    ck_assert_int_eq(bg_env_error_pack(5, longmsg, &body, &blen, &err), BG_OK);
    ck_assert_int_eq(bg_env_error_parse(body, blen, &code, text, &err), BG_OK);
    ck_assert_uint_eq(strlen(text), BG_ENV_ERROR_MSG_MAX); /* cut when packed */
    free(body);
}
END_TEST

/* --- the replay cache's bound --- */

START_TEST(replay_cache_is_bounded_and_refuses_rather_than_forgets)
{
    bg_env_verifier *v = verifier(SZ_CODE, trust_sz, 8, 0);
    int64_t t0 = bg_env_now_ms();
    msg first[9];
    for (int i = 0; i < 9; i++)
        first[i] = seal_at(&gz, SZ_CODE, true, t0);
    for (int i = 0; i < 8; i++)
        expect_at(v, first[i].p, first[i].len, t0, BG_ENV_OK, NULL);
    /* Full of live entries: a new envelope is refused (answered: retry later)... */
    bg_env_refusal ref = expect_at(v, first[8].p, first[8].len, t0, BG_ENV_REPLAY_FULL,
                                   "replay cache full (8 live envelopes");
    ck_assert(bg_env_refusal_answerable(&ref));
    /* ...and no live entry was forgotten to make room. */
    for (int i = 0; i < 8; i++)
        expect_at(v, first[i].p, first[i].len, t0 + 1000, BG_ENV_REPLAY, NULL);
    bg_env_stats st;
    bg_env_verifier_stats(v, &st);
    ck_assert_uint_eq(st.replay_entries, 8);
    ck_assert_uint_eq(st.replay_capacity, 8);
    ck_assert_uint_eq(st.full, 1);

    /* At t0 + window the first entries are still live (their envelopes would
     * still pass the clock check): still full. */
    int64_t t1 = t0 + W_MS;
    msg edge = seal_at(&gz, SZ_CODE, false, t1);
    expect_at(v, edge.p, edge.len, t1, BG_ENV_REPLAY_FULL, NULL);
    /* One millisecond later they have expired: swept, and room again. */
    int64_t t2 = t1 + 1;
    msg later[8];
    for (int i = 0; i < 8; i++) {
        later[i] = seal_at(&gz, SZ_CODE, false, t2);
        expect_at(v, later[i].p, later[i].len, t2, BG_ENV_OK, NULL);
    }
    bg_env_verifier_stats(v, &st);
    ck_assert_uint_eq(st.swept, 8);
    ck_assert_uint_eq(st.replay_entries, 8);
    /* The old ones are refused by the clock now, not by the cache. */
    expect_at(v, first[0].p, first[0].len, t2, BG_ENV_STALE, NULL);
    for (int i = 0; i < 9; i++)
        free(first[i].p);
    for (int i = 0; i < 8; i++)
        free(later[i].p);
    free(edge.p);
    bg_env_verifier_free(v);
}
END_TEST

START_TEST(one_sender_filling_its_share_does_not_refuse_another)
{
    /* Default share: a quarter of the capacity. Guangzhou dates its
     * envelopes just inside the future skew (they live longest) and fills
     * its share; it is refused, Foshan still gets in, and the cache is not
     * full. */
    bg_env_verifier_config cfg = {
        .own_city = SZ_CODE, .trust = trust_sz, .member_fp = roster_fp, .replay_capacity = 8};
    bg_env_verifier *v = NULL;
    bg_err err = {0};
    ck_assert_msg(bg_env_verifier_new(&v, &cfg, &err) == BG_OK, "%s", err.msg);
    int64_t t0 = bg_env_now_ms();
    int64_t ahead = t0 + BG_ENV_FUTURE_DEFAULT_MS - 1000;
    msg g[3], f[2];
    for (int i = 0; i < 3; i++)
        g[i] = seal_at(&gz, SZ_CODE, true, ahead);
    for (int i = 0; i < 2; i++)
        f[i] = seal_at(&fs, SZ_CODE, true, t0);
    expect_at(v, g[0].p, g[0].len, t0, BG_ENV_OK, NULL);
    expect_at(v, g[1].p, g[1].len, t0, BG_ENV_OK, NULL);
    bg_env_refusal ref = expect_at(v, g[2].p, g[2].len, t0, BG_ENV_REPLAY_FULL,
                                   "replay cache share of 440100 full (2 live envelopes");
    ck_assert(bg_env_refusal_answerable(&ref));
    expect_at(v, f[0].p, f[0].len, t0, BG_ENV_OK, NULL);
    expect_at(v, f[1].p, f[1].len, t0, BG_ENV_OK, NULL);
    bg_env_stats st;
    bg_env_verifier_stats(v, &st);
    ck_assert_uint_eq(st.replay_share, 2);
    ck_assert_uint_eq(st.replay_senders, 2);
    ck_assert_uint_eq(st.replay_entries, 4);
    ck_assert_uint_eq(st.full, 1);
    ck_assert_uint_eq(st.share_full, 1);
    /* Replays are still caught, and refused as replays, not as full. */
    expect_at(v, g[0].p, g[0].len, t0 + 1000, BG_ENV_REPLAY, NULL);
    /* Once its entries expire Guangzhou has its share back. */
    int64_t t1 = ahead + W_MS + 1;
    msg later = seal_at(&gz, SZ_CODE, false, t1);
    expect_at(v, later.p, later.len, t1, BG_ENV_OK, NULL);
    /* (How many senders the stats still count then depends on which of Foshan's
     * expired entries the cache has pruned on its way, so it is not asserted.) */
    for (int i = 0; i < 3; i++)
        free(g[i].p);
    for (int i = 0; i < 2; i++)
        free(f[i].p);
    free(later.p);
    bg_env_verifier_free(v);
}
END_TEST

START_TEST(future_skew_is_tight_by_default)
{
    /* By default issued_at may be at most BG_ENV_FUTURE_DEFAULT_MS ahead,
     * however wide the window into the past. */
    bg_env_verifier_config cfg = {.own_city = SZ_CODE, .trust = trust_sz, .member_fp = roster_fp};
    bg_env_verifier *v = NULL;
    bg_err err = {0};
    ck_assert_msg(bg_env_verifier_new(&v, &cfg, &err) == BG_OK, "%s", err.msg);
    int64_t now = bg_env_now_ms();
    msg edge = seal_at(&gz, SZ_CODE, true, now + BG_ENV_FUTURE_DEFAULT_MS);
    msg over = seal_at(&gz, SZ_CODE, true, now + BG_ENV_FUTURE_DEFAULT_MS + 1000);
    msg past = seal_at(&gz, SZ_CODE, true, now - W_MS);
    expect_at(v, edge.p, edge.len, now, BG_ENV_OK, NULL);
    expect_at(v, over.p, over.len, now, BG_ENV_FUTURE,
              "envelope is from the future: issued 31.000 s after now, at most 30.000 s");
    expect_at(v, past.p, past.len, now, BG_ENV_OK, NULL);
    free(edge.p);
    free(over.p);
    free(past.p);
    bg_env_verifier_free(v);
    /* A skew beyond the window, or a share beyond the capacity: refused. */
    cfg.future_ms = W_MS + 1;
    ck_assert_int_eq(bg_env_verifier_new(&v, &cfg, &err), BG_EINVAL);
    cfg.future_ms = -1;
    ck_assert_int_eq(bg_env_verifier_new(&v, &cfg, &err), BG_EINVAL);
    cfg.future_ms = 0;
    cfg.replay_capacity = 8;
    cfg.replay_share = 9;
    ck_assert_int_eq(bg_env_verifier_new(&v, &cfg, &err), BG_EINVAL);
    ck_assert_ptr_null(v);
}
END_TEST

/* --- concurrency --- */

#define THREADS 4
#define OWN 40
#define SHARED 20

typedef struct worker {
    msg own[OWN];
    msg *shared;
    int ok_own, ok_shared, replay_shared, other;
} worker;

static void *
work(void *arg)
{
    worker *w = arg;
    int next_own = 0;
    for (int i = 0; i < OWN + SHARED; i++) {
        /* Every third envelope is a shared one, the rest the thread's own. */
        bool shared = i % 3 == 0 && i / 3 < SHARED;
        msg m = shared ? w->shared[i / 3] : w->own[next_own++];
        bg_env_opened *o = NULL;
        bg_err err;
        bg_env_reason r = bg_env_open(v_sz, m.p, m.len, 0, &o, NULL, &err);
        if (r == BG_ENV_OK && shared)
            w->ok_shared++;
        else if (r == BG_ENV_OK)
            w->ok_own++;
        else if (r == BG_ENV_REPLAY && shared)
            w->replay_shared++;
        else
            w->other++;
        bg_env_opened_free(o);
    }
    return NULL;
}

START_TEST(concurrent_opens_are_safe)
{
    /* Each thread opens its own envelopes and races the others on shared ones:
     * every own envelope gets in, each shared one exactly once. */
    msg shared[SHARED];
    worker w[THREADS];
    memset(w, 0, sizeof w);
    /* Both certificates cached first, so fingerprint-only ones can open. */
    msg warm[2] = {seal(&gz, SZ_CODE, true), seal(&fs, SZ_CODE, true)};
    expect(v_sz, warm[0], BG_ENV_OK, NULL);
    expect(v_sz, warm[1], BG_ENV_OK, NULL);
    for (int i = 0; i < SHARED; i++)
        shared[i] = seal(&fs, SZ_CODE, i % 2 == 0);
    for (int t = 0; t < THREADS; t++) {
        w[t].shared = shared;
        for (int i = 0; i < OWN; i++)
            w[t].own[i] = seal(i % 2 ? &gz : &fs, SZ_CODE, i % 4 < 2);
    }
    pthread_t th[THREADS];
    for (int t = 0; t < THREADS; t++)
        ck_assert_int_eq(pthread_create(&th[t], NULL, work, &w[t]), 0);
    int ok_own = 0, ok_shared = 0, replays = 0, other = 0;
    for (int t = 0; t < THREADS; t++) {
        ck_assert_int_eq(pthread_join(th[t], NULL), 0);
        ok_own += w[t].ok_own;
        ok_shared += w[t].ok_shared;
        replays += w[t].replay_shared;
        other += w[t].other;
    }
    ck_assert_int_eq(ok_shared, SHARED);
    ck_assert_int_eq(replays, SHARED * (THREADS - 1));
    ck_assert_int_eq(ok_own, THREADS * OWN);
    ck_assert_int_eq(other, 0);
    bg_env_stats st;
    bg_env_verifier_stats(v_sz, &st);
    ck_assert_uint_eq(st.opened, (uint64_t)(ok_own + ok_shared + 2));
    ck_assert_uint_eq(st.replay_entries, (size_t)(ok_own + ok_shared + 2));
    ck_assert_uint_eq(st.replays, (uint64_t)replays);
    free(warm[0].p);
    free(warm[1].p);
    for (int i = 0; i < SHARED; i++)
        free(shared[i].p);
    for (int t = 0; t < THREADS; t++)
        for (int i = 0; i < OWN; i++)
            free(w[t].own[i].p);
}
END_TEST

/* --- identity and sealing arguments --- */

START_TEST(identity_loads_from_a_gateway_directory)
{
    bg_err err = {0};
    ck_assert_int_eq(mkdir(at("gz"), 0700), 0);
    ck_assert_int_eq(bg_pki_key_write_new(at("gz/city.key"), gz.key, &err), BG_OK);
    ck_assert_int_eq(bg_pki_cert_write(at("gz/city.crt"), gz.cert, &err), BG_OK);
    bg_env_identity *id = NULL;
    ck_assert_msg(bg_env_identity_load(&id, at("gz"), NULL, NULL, &err) == BG_OK, "%s", err.msg);
    ck_assert_str_eq(id->city, GZ_CODE);
    ck_assert_int_eq(memcmp(id->fingerprint, gz.id->fingerprint, BG_SIG_FP_LEN), 0);
    uint8_t fp[BG_SIG_FP_LEN];
    ck_assert_int_eq(bg_sig_fingerprint(gz.cert, fp, NULL), BG_OK);
    ck_assert_int_eq(memcmp(id->fingerprint, fp, BG_SIG_FP_LEN), 0);
    bg_env_identity_free(id);
    /* Explicit paths, one absolute. */
    ck_assert_int_eq(bg_env_identity_load(&id, at("gz"), "city.key", at("gz/city.crt"), &err),
                     BG_OK);
    bg_env_identity_free(id);
    /* A key that is not the certificate's. */
    ck_assert_int_eq(bg_pki_key_write_new(at("gz/other.key"), fs.key, &err), BG_OK);
    ck_assert_int_eq(bg_env_identity_load(&id, at("gz"), "other.key", NULL, &err), BG_EINVAL);
    ck_assert_ptr_null(id);
    ck_assert_str_eq(err.msg, "the key does not match the certificate of 440100");
    /* A key file others can read. */
    ck_assert_int_eq(chmod(at("gz/city.key"), 0644), 0);
    ck_assert_int_ne(bg_env_identity_load(&id, at("gz"), NULL, NULL, &err), BG_OK);
    ck_assert_int_ne(bg_env_identity_load(&id, at("nowhere"), NULL, NULL, &err), BG_OK);
    ck_assert_ptr_null(id);
}
END_TEST

START_TEST(seal_checks_its_fields)
{
    uint8_t *out = NULL;
    size_t len = 0;
    bg_err err = {0};
    uint8_t ref[65] = {0};
    bg_env_fields f = {.recipient = "4403", .body_type = 16};
    ck_assert_int_eq(bg_env_seal(gz.id, &f, true, 0, &out, &len, NULL, &err), BG_EINVAL);
    f.recipient = SZ_CODE;
    f.purpose = "two words";
    ck_assert_int_eq(bg_env_seal(gz.id, &f, true, 0, &out, &len, NULL, &err), BG_EINVAL);
    f.purpose = "lending";
    f.authorisation_ref = ref;
    f.authorisation_ref_len = 65;
    ck_assert_int_eq(bg_env_seal(gz.id, &f, true, 0, &out, &len, NULL, &err), BG_EINVAL);
    f.authorisation_ref_len = 64;
    f.body_type = 0;
    ck_assert_int_eq(bg_env_seal(gz.id, &f, true, 0, &out, &len, NULL, &err), BG_EINVAL);
    f.body_type = 16;
    f.body_len = 3; /* with no body */
    ck_assert_int_eq(bg_env_seal(gz.id, &f, true, 0, &out, &len, NULL, &err), BG_EINVAL);
    ck_assert_ptr_null(out);
    /* A chosen request id is kept; an empty body is fine. */
    f.body_len = 0;
    memset(f.request_id, 0x5A, sizeof f.request_id);
    bg_env_sent sent;
    ck_assert_int_eq(bg_env_seal(gz.id, &f, true, 0, &out, &len, &sent, &err), BG_OK);
    ck_assert_int_eq(memcmp(sent.request_id, f.request_id, 16), 0);
    bg_env_opened *o = NULL;
    ck_assert_int_eq(bg_env_open(v_sz, out, len, 0, &o, NULL, &err), BG_ENV_OK);
    ck_assert_ptr_null(o->body);
    ck_assert_uint_eq(o->body_len, 0);
    ck_assert_str_eq(o->purpose, "lending");
    bg_env_opened_free(o);
    free(out);
    /* Verifier configuration is checked too. */
    bg_env_verifier *v = NULL;
    bg_env_verifier_config cfg = {.own_city = SZ_CODE, .trust = trust_sz, .member_fp = roster_fp};
    cfg.window_ms = 10;
    ck_assert_int_eq(bg_env_verifier_new(&v, &cfg, &err), BG_EINVAL);
    cfg.window_ms = 0;
    cfg.max_message = 100;
    ck_assert_int_eq(bg_env_verifier_new(&v, &cfg, &err), BG_EINVAL);
    cfg.max_message = 0;
    cfg.replay_capacity = BG_ENV_REPLAY_MAX + 1;
    ck_assert_int_eq(bg_env_verifier_new(&v, &cfg, &err), BG_EINVAL);
    cfg.replay_capacity = 0;
    cfg.own_city = "Shenzhen";
    ck_assert_int_eq(bg_env_verifier_new(&v, &cfg, &err), BG_EINVAL);
    ck_assert_ptr_null(v);
}
END_TEST

/* --- costs --- */

static double
elapsed_us(struct timespec a, struct timespec b)
{
    return (double)(b.tv_sec - a.tv_sec) * 1e6 + (double)(b.tv_nsec - a.tv_nsec) / 1e3;
}

START_TEST(costs_are_measured)
{
    /* Not a pass/fail test: prints what sealing and opening cost. Set
     * BG_ENV_BENCH=N for a longer run. */
    const char *e = getenv("BG_ENV_BENCH");
    int n = e ? atoi(e) : 30;
    if (n < 1)
        n = 1;
    bg_env_verifier *v = verifier(SZ_CODE, trust_sz, (size_t)(3 * n + 8), 0);
    msg *with = calloc((size_t)n, sizeof *with), *cached = calloc((size_t)n, sizeof *cached),
        *byfp = calloc((size_t)n, sizeof *byfp);
    struct timespec a, b;
    double seal_cert = 0, seal_fp = 0, open_first = 0, open_cached = 0, open_fp = 0;
    for (int i = 0; i < n; i++) {
        clock_gettime(CLOCK_MONOTONIC, &a);
        with[i] = seal(&gz, SZ_CODE, true);
        clock_gettime(CLOCK_MONOTONIC, &b);
        seal_cert += elapsed_us(a, b);
        cached[i] = seal(&gz, SZ_CODE, true);
        clock_gettime(CLOCK_MONOTONIC, &a);
        byfp[i] = seal(&gz, SZ_CODE, false);
        clock_gettime(CLOCK_MONOTONIC, &b);
        seal_fp += elapsed_us(a, b);
    }
    bg_err err = {0};
    for (int i = 0; i < n; i++) {
        /* First contact: an empty trust cache (a CRL reload empties it). */
        ck_assert_int_eq(bg_trust_set_crl(trust_sz, crl, &err), BG_OK);
        bg_env_opened *o = NULL;
        clock_gettime(CLOCK_MONOTONIC, &a);
        ck_assert_int_eq(bg_env_open(v, with[i].p, with[i].len, 0, &o, NULL, &err), BG_ENV_OK);
        clock_gettime(CLOCK_MONOTONIC, &b);
        open_first += elapsed_us(a, b);
        bg_env_opened_free(o);
        clock_gettime(CLOCK_MONOTONIC, &a);
        ck_assert_int_eq(bg_env_open(v, cached[i].p, cached[i].len, 0, &o, NULL, &err), BG_ENV_OK);
        clock_gettime(CLOCK_MONOTONIC, &b);
        open_cached += elapsed_us(a, b);
        bg_env_opened_free(o);
        clock_gettime(CLOCK_MONOTONIC, &a);
        ck_assert_int_eq(bg_env_open(v, byfp[i].p, byfp[i].len, 0, &o, NULL, &err), BG_ENV_OK);
        clock_gettime(CLOCK_MONOTONIC, &b);
        open_fp += elapsed_us(a, b);
        bg_env_opened_free(o);
    }
    printf("envelope costs over %d runs (%zu-byte message with certificate, %zu without):\n"
           "  seal with certificate   %8.1f us\n"
           "  seal by fingerprint     %8.1f us\n"
           "  open, first contact     %8.1f us\n"
           "  open, certificate cached%8.1f us\n"
           "  open, fingerprint only  %8.1f us\n",
           n, with[0].len, byfp[0].len, seal_cert / n, seal_fp / n, open_first / n, open_cached / n,
           open_fp / n);
    fflush(stdout);
    for (int i = 0; i < n; i++) {
        free(with[i].p);
        free(cached[i].p);
        free(byfp[i].p);
    }
    free(with);
    free(cached);
    free(byfp);
    bg_env_verifier_free(v);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("envelope");
    TCase *tc = tcase_create("envelope");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, round_trip_with_certificate_then_by_fingerprint);
    tcase_add_test(tc, fingerprint_only_first_contact_asks_for_the_certificate);
    tcase_add_test(tc, rogue_ca_with_the_same_dn_is_refused);
    tcase_add_test(tc, revoked_certificate_is_refused_even_by_fingerprint);
    tcase_add_test(tc, expired_certificate_is_refused);
    tcase_add_test(tc, claimed_sender_other_than_the_certificate_is_refused);
    tcase_add_test(tc, city_not_in_the_roster_is_refused);
    tcase_add_test(tc, certificate_other_than_the_roster_pin_is_refused);
    tcase_add_test(tc, both_certificates_are_accepted_while_a_rotation_pins_them);
    tcase_add_test(tc, wrong_recipient_is_refused);
    tcase_add_test(tc, stale_and_future_envelopes_are_refused);
    tcase_add_test(tc, replayed_envelope_is_refused);
    tcase_add_test(tc, forged_envelope_does_not_poison_the_replay_cache);
    tcase_add_test(tc, flipped_bit_in_the_body_fails_the_signature);
    tcase_add_test(tc, flipped_bit_in_the_signature_fails);
    tcase_add_test(tc, truncated_envelopes_are_refused);
    tcase_add_test(tc, garbage_bytes_are_refused);
    tcase_add_test(tc, oversize_messages_are_refused_before_sending_and_on_receipt);
    tcase_add_test(tc, huge_declared_lengths_are_refused);
    tcase_add_test(tc, bad_sender_and_version_are_refused);
    tcase_add_test(tc, answers_are_bound_to_the_request);
    tcase_add_test(tc, error_answers_follow_the_reason_table);
    tcase_add_test(tc, replay_cache_is_bounded_and_refuses_rather_than_forgets);
    tcase_add_test(tc, one_sender_filling_its_share_does_not_refuse_another);
    tcase_add_test(tc, future_skew_is_tight_by_default);
    tcase_add_test(tc, concurrent_opens_are_safe);
    tcase_add_test(tc, identity_loads_from_a_gateway_directory);
    tcase_add_test(tc, seal_checks_its_fields);
    tcase_add_test(tc, costs_are_measured);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
