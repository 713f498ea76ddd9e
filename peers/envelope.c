/*
 * envelope.c - sealing and opening signed envelopes (see envelope.h).
 */
#include <limits.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/x509.h>
#include <sodium.h>

#include "common/clock.h"
#include "peers/envelope.h"
#include "proto/envelope.pb-c.h"
#include "proto/pb.h"

_Static_assert(BG_ENV_REASON_LAST < 100, "envelope reasons use wire codes 1..99");
_Static_assert(BG_ENV_ERROR_MSG_MAX < BG_ERR_MSG_MAX, "refusal messages fit a bg_err");
_Static_assert(BG_ENV_BODY_ERROR == BAYGATE__BODY_TYPE__BODY_TYPE_ERROR, "matches the proto");

int64_t
bg_env_now_ms(void)
{
    return bg_clock_wall_ms();
}

/* --- reasons --- */

static const struct {
    const char *name;
    bool answers;
} reasons[] = {
    [BG_ENV_OK] = {"ok", false},
    [BG_ENV_OVERSIZE] = {"oversize", false},
    [BG_ENV_MALFORMED] = {"malformed", false},
    [BG_ENV_MALFORMED_ENVELOPE] = {"malformed-envelope", false},
    [BG_ENV_WRONG_KIND] = {"wrong-kind", false},
    [BG_ENV_BAD_VERSION] = {"bad-version", true},
    [BG_ENV_BAD_SENDER] = {"bad-sender", false},
    [BG_ENV_UNKNOWN_CERTIFICATE] = {"unknown-certificate", true},
    [BG_ENV_CERT_UNTRUSTED] = {"certificate-untrusted", false},
    [BG_ENV_CERT_REVOKED] = {"certificate-revoked", false},
    [BG_ENV_CERT_EXPIRED] = {"certificate-expired", true},
    [BG_ENV_CERT_NOT_YET_VALID] = {"certificate-not-yet-valid", true},
    [BG_ENV_CERT_WRONG_CITY] = {"certificate-wrong-city", false},
    [BG_ENV_TRUST_UNAVAILABLE] = {"trust-unavailable", true},
    [BG_ENV_NOT_MEMBER] = {"not-member", true},
    [BG_ENV_PIN_MISMATCH] = {"pin-mismatch", true},
    [BG_ENV_WRONG_RECIPIENT] = {"wrong-recipient", true},
    [BG_ENV_STALE] = {"stale", true},
    [BG_ENV_FUTURE] = {"future", true},
    [BG_ENV_REPLAY] = {"replay", true},
    [BG_ENV_REPLAY_FULL] = {"replay-cache-full", true},
    [BG_ENV_BAD_SIGNATURE] = {"bad-signature", false},
    [BG_ENV_WRONG_PEER] = {"wrong-peer", false},
    [BG_ENV_NOT_BOUND] = {"not-bound", false},
    [BG_ENV_INTERNAL] = {"internal", false},
};
_Static_assert(sizeof reasons / sizeof reasons[0] == BG_ENV_REASON_LAST + 1, "one row per reason");

const char *
bg_env_reason_name(bg_env_reason reason)
{
    return (unsigned)reason <= BG_ENV_REASON_LAST ? reasons[reason].name : "unknown";
}

uint32_t
bg_env_reason_code(bg_env_reason reason)
{
    return (uint32_t)reason;
}

bool
bg_env_reason_answers(bg_env_reason reason)
{
    return (unsigned)reason <= BG_ENV_REASON_LAST && reasons[reason].answers;
}

/* The bg_err status a reason is reported with. */
static int
reason_status(bg_env_reason r)
{
    switch (r) {
    case BG_ENV_OK:
        return BG_OK;
    case BG_ENV_OVERSIZE:
    case BG_ENV_REPLAY_FULL:
        return BG_ELIMIT;
    case BG_ENV_UNKNOWN_CERTIFICATE:
    case BG_ENV_NOT_MEMBER:
        return BG_ENOTFOUND;
    case BG_ENV_CERT_UNTRUSTED:
    case BG_ENV_CERT_REVOKED:
    case BG_ENV_CERT_EXPIRED:
    case BG_ENV_CERT_NOT_YET_VALID:
    case BG_ENV_CERT_WRONG_CITY:
    case BG_ENV_TRUST_UNAVAILABLE:
    case BG_ENV_PIN_MISMATCH:
    case BG_ENV_BAD_SIGNATURE:
        return BG_ECRYPTO;
    case BG_ENV_INTERNAL:
        return BG_ENOMEM;
    default:
        return BG_EPROTO;
    }
}

/* --- small helpers --- */

/* Copies at most n bytes of untrusted NUL-terminated s for a message: '?'
 * for anything not printable ASCII, "..." when s is longer. outsz >= 4. */
static void
printable(const char *s, size_t n, char *out, size_t outsz)
{
    size_t room = outsz - 4, k = 0;
    for (; k < n && k < room && s[k] != '\0'; k++)
        out[k] = (s[k] >= 0x20 && s[k] < 0x7f) ? s[k] : '?';
    if (s[k] != '\0')
        memcpy(out + k, "...", 3), k += 3;
    out[k] = '\0';
}

/* The first 8 bytes of b in hex (enough to tell values apart in a log). */
static void
short_hex(const uint8_t *b, size_t n, char out[17])
{
    sodium_bin2hex(out, 17, b, n < 8 ? n : 8);
}

/* Is fp one of the n pinned fingerprints? Every one is compared in constant time. */
static bool
pin_matches(const uint8_t pins[BG_ENV_PINS_MAX][BG_SIG_FP_LEN], size_t n,
            const uint8_t fp[BG_SIG_FP_LEN])
{
    bool hit = false;
    for (size_t i = 0; i < n && i < BG_ENV_PINS_MAX; i++)
        hit |= sodium_memcmp(pins[i], fp, BG_SIG_FP_LEN) == 0;
    return hit;
}

static bool
purpose_valid(const char *p)
{
    size_t n = p ? strnlen(p, BG_ENV_PURPOSE_MAX + 1) : 0;
    if (n > BG_ENV_PURPOSE_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (p[i] < 0x21 || p[i] > 0x7e)
            return false;
    return true;
}

static bool
all_zero(const uint8_t *b, size_t n)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++)
        acc |= b[i];
    return acc == 0;
}

/* A city code as a number, for the replay key (code already validated). */
static uint32_t
city_number(const char *city)
{
    uint32_t v = 0;
    for (int i = 0; i < BG_CITY_CODE_LEN; i++)
        v = v * 10 + (uint32_t)(city[i] - '0');
    return v;
}

static int
sodium_ready(bg_err *err)
{
    if (sodium_init() < 0)
        return bg_err_set(err, BG_ECRYPTO, "libsodium failed to initialise");
    return BG_OK;
}

/* --- identity --- */

void
bg_env_identity_free(bg_env_identity *id)
{
    if (id == NULL)
        return;
    EVP_PKEY_free(id->key);
    X509_free(id->cert);
    OPENSSL_free(id->cert_der);
    free(id);
}

int
bg_env_identity_new(bg_env_identity **out, EVP_PKEY *key, X509 *cert, bg_err *err)
{
    if (out == NULL || key == NULL || cert == NULL)
        return bg_err_set(err, BG_EINVAL, "identity needs a key and a certificate");
    *out = NULL;
    int rc = sodium_ready(err);
    if (rc != BG_OK)
        return rc;
    bg_env_identity *id = calloc(1, sizeof *id);
    if (id == NULL)
        return bg_err_set(err, BG_ENOMEM, "out of memory");
    if ((rc = bg_pki_cert_city(cert, id->city, err)) != BG_OK)
        goto fail;
    if (X509_check_private_key(cert, key) != 1) {
        ERR_clear_error();
        rc = bg_err_set(err, BG_EINVAL, "the key does not match the certificate of %s", id->city);
        goto fail;
    }
    if ((rc = bg_pki_cert_to_der(cert, &id->cert_der, &id->cert_der_len, err)) != BG_OK)
        goto fail;
    if (id->cert_der_len > BG_TRUST_CERT_MAX) {
        rc = bg_err_set(err, BG_ELIMIT, "certificate of %zu bytes exceeds %d", id->cert_der_len,
                        BG_TRUST_CERT_MAX);
        goto fail;
    }
    if ((rc = bg_sig_fingerprint_der(id->cert_der, id->cert_der_len, id->fingerprint, err)) !=
        BG_OK)
        goto fail;
    EVP_PKEY_up_ref(key);
    id->key = key;
    X509_up_ref(cert);
    id->cert = cert;
    *out = id;
    return BG_OK;
fail:
    bg_env_identity_free(id);
    return rc;
}

static int
join_path(char *buf, size_t sz, const char *dir, const char *path, bg_err *err)
{
    int n = (dir != NULL && path[0] != '/') ? snprintf(buf, sz, "%s/%s", dir, path)
                                            : snprintf(buf, sz, "%s", path);
    if (n < 0 || (size_t)n >= sz)
        return bg_err_set(err, BG_ELIMIT, "path too long");
    return BG_OK;
}

int
bg_env_identity_load(bg_env_identity **out, const char *dir, const char *key_path,
                     const char *cert_path, bg_err *err)
{
    if (out == NULL)
        return bg_err_set(err, BG_EINVAL, "no identity output");
    *out = NULL;
    char kp[PATH_MAX], cp[PATH_MAX];
    int rc = join_path(kp, sizeof kp, dir, key_path ? key_path : "city.key", err);
    if (rc == BG_OK)
        rc = join_path(cp, sizeof cp, dir, cert_path ? cert_path : "city.crt", err);
    if (rc != BG_OK)
        return rc;
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    rc = bg_pki_key_load(kp, &key, err);
    if (rc == BG_OK)
        rc = bg_pki_cert_load(cp, &cert, err);
    if (rc == BG_OK)
        rc = bg_env_identity_new(out, key, cert, err);
    EVP_PKEY_free(key);
    X509_free(cert);
    return rc;
}

/* --- sealing --- */

/* What bg_env_seal refuses before it touches a key. */
static int
seal_fields_valid(const bg_env_fields *f, size_t max_len, bg_err *err)
{
    if (!bg_city_code_valid(f->recipient))
        return bg_err_set(err, BG_EINVAL, "recipient must be a 6-digit city code");
    if (!purpose_valid(f->purpose))
        return bg_err_set(err, BG_EINVAL,
                          "purpose must be at most %d printable ASCII bytes without spaces",
                          BG_ENV_PURPOSE_MAX);
    if (f->authorisation_ref_len > BG_ENV_AUTH_REF_MAX ||
        (f->authorisation_ref == NULL && f->authorisation_ref_len != 0))
        return bg_err_set(err, BG_EINVAL, "authorisation reference must be at most %d bytes",
                          BG_ENV_AUTH_REF_MAX);
    if (f->body_type == 0)
        return bg_err_set(err, BG_EINVAL, "body type 0 is not a message type");
    if (f->body == NULL && f->body_len != 0)
        return bg_err_set(err, BG_EINVAL, "body missing");
    if (f->body_len > max_len)
        return bg_err_set(err, BG_ELIMIT, "body of %zu bytes exceeds the %zu-byte message limit",
                          f->body_len, max_len);
    if (f->issued_at_ms < 0)
        return bg_err_set(err, BG_EINVAL, "issued_at must not be negative");
    return BG_OK;
}

/* Packs the inner Envelope: these bytes are what is signed, and what the
 * receiver verifies exactly as received. *sent gets its ids and time. */
static int
seal_envelope(const bg_env_identity *id, const bg_env_fields *f, size_t max_len, uint8_t **out,
              size_t *out_len, bg_env_sent *sent, bg_err *err)
{
    memcpy(sent->request_id, f->request_id, BG_ENV_ID_LEN);
    if (all_zero(sent->request_id, BG_ENV_ID_LEN))
        randombytes_buf(sent->request_id, BG_ENV_ID_LEN);
    randombytes_buf(sent->nonce, BG_ENV_NONCE_LEN);

    Baygate__Envelope env = BAYGATE__ENVELOPE__INIT;
    env.version = BG_ENV_VERSION;
    env.sender = (char *)id->city;
    env.recipient = (char *)f->recipient;
    env.request_id.data = sent->request_id;
    env.request_id.len = BG_ENV_ID_LEN;
    env.issued_at_ms = f->issued_at_ms ? f->issued_at_ms : bg_env_now_ms();
    env.nonce.data = sent->nonce;
    env.nonce.len = BG_ENV_NONCE_LEN;
    env.purpose = (char *)(f->purpose ? f->purpose : "");
    env.authorisation_ref.data = (uint8_t *)f->authorisation_ref;
    env.authorisation_ref.len = f->authorisation_ref_len;
    env.body_type = f->body_type;
    env.body.data = (uint8_t *)f->body;
    env.body.len = f->body_len;
    if (f->reply_to_nonce != NULL) {
        env.reply_to_nonce.data = (uint8_t *)f->reply_to_nonce;
        env.reply_to_nonce.len = BG_ENV_NONCE_LEN;
    }
    sent->issued_at_ms = env.issued_at_ms;

    /* The inner envelope alone already too big: refuse before signing. */
    size_t env_len = baygate__envelope__get_packed_size(&env);
    if (env_len >= max_len)
        return bg_err_set(err, BG_ELIMIT,
                          "envelope of %zu bytes exceeds the %zu-byte message limit", env_len,
                          max_len);
    uint8_t *env_bytes = malloc(env_len);
    if (env_bytes == NULL)
        return bg_err_set(err, BG_ENOMEM, "out of memory");
    baygate__envelope__pack(&env, env_bytes);
    *out = env_bytes;
    *out_len = env_len;
    return BG_OK;
}

/* Wraps the envelope bytes with their signature and the signer: the whole
 * certificate, or its fingerprint when the receiver has it cached. */
static int
seal_wrap(const bg_env_identity *id, uint8_t *env_bytes, size_t env_len, uint8_t *sig,
          size_t siglen, bool include_cert, size_t max_len, uint8_t **out, size_t *out_len,
          bg_err *err)
{
    Baygate__SignedEnvelope se;
    baygate__signed_envelope__init(&se); /* the INIT macro trips -Wmissing-braces */
    se.envelope.data = env_bytes;
    se.envelope.len = env_len;
    if (include_cert) {
        se.signer_case = BAYGATE__SIGNED_ENVELOPE__SIGNER_CERTIFICATE_DER;
        se.certificate_der.data = id->cert_der;
        se.certificate_der.len = id->cert_der_len;
    } else {
        se.signer_case = BAYGATE__SIGNED_ENVELOPE__SIGNER_CERTIFICATE_SHA256;
        se.certificate_sha256.data = (uint8_t *)id->fingerprint;
        se.certificate_sha256.len = BG_SIG_FP_LEN;
    }
    se.signature.data = sig;
    se.signature.len = siglen;
    size_t len = baygate__signed_envelope__get_packed_size(&se);
    if (len > max_len)
        return bg_err_set(err, BG_ELIMIT,
                          "signed envelope of %zu bytes exceeds the %zu-byte message limit", len,
                          max_len);
    uint8_t *buf = malloc(len);
    if (buf == NULL)
        return bg_err_set(err, BG_ENOMEM, "out of memory");
    baygate__signed_envelope__pack(&se, buf);
    *out = buf;
    *out_len = len;
    return BG_OK;
}

int
bg_env_seal(const bg_env_identity *id, const bg_env_fields *f, bool include_cert, size_t max_len,
            uint8_t **out, size_t *out_len, bg_env_sent *sent, bg_err *err)
{
    if (id == NULL || f == NULL || out == NULL || out_len == NULL)
        return bg_err_set(err, BG_EINVAL, "seal: missing argument");
    *out = NULL;
    *out_len = 0;
    if (max_len == 0)
        max_len = BG_ENV_MESSAGE_DEFAULT;
    int rc = seal_fields_valid(f, max_len, err);
    if (rc != BG_OK)
        return rc;
    bg_env_sent s;
    uint8_t *env_bytes = NULL;
    size_t env_len = 0;
    if ((rc = seal_envelope(id, f, max_len, &env_bytes, &env_len, &s, err)) != BG_OK)
        return rc;
    uint8_t sig[BG_SIG_MAX];
    size_t siglen = 0;
    rc = bg_sig_sign(id->key, BG_SIG_CTX_ENVELOPE, env_bytes, env_len, sig, &siglen, err);
    if (rc == BG_OK)
        rc = seal_wrap(id, env_bytes, env_len, sig, siglen, include_cert, max_len, out, out_len,
                       err);
    free(env_bytes);
    if (rc == BG_OK && sent != NULL)
        *sent = s;
    return rc;
}

/* --- the replay cache --- */

#define NIL UINT32_MAX

struct rnode {
    uint8_t nonce[BG_ENV_NONCE_LEN];
    uint32_t city;
    uint32_t next; /* chain, or free list */
    int64_t expiry_ms;
};

/* Live entries per sender: one member must not fill the cache for all.
 * Only signature-checked senders (roster members) are ever recorded, so a
 * small table suffices; one more distinct sender than it holds is refused
 * like a full cache. */
#define REPLAY_SENDERS_MAX 256

struct rsender {
    uint32_t city;
    uint32_t count;
};

struct replay {
    pthread_mutex_t mu;
    struct rnode *nodes; /* cap of them */
    uint32_t *heads;     /* mask + 1 buckets */
    uint32_t cap, count, mask, free_head;
    uint32_t share; /* most live entries of one sender */
    struct rsender senders[REPLAY_SENDERS_MAX];
    uint32_t nsenders;
    int64_t min_expiry; /* no entry expires before this (a lower bound) */
    uint8_t key[crypto_shorthash_KEYBYTES];
    uint64_t replays, full, share_full, swept;
};

static int
replay_init(struct replay *r, size_t cap, size_t share, bg_err *err)
{
    size_t buckets = 1;
    while (buckets < cap)
        buckets <<= 1;
    r->nodes = calloc(cap, sizeof *r->nodes);
    r->heads = malloc(buckets * sizeof *r->heads);
    if (r->nodes == NULL || r->heads == NULL) {
        free(r->nodes);
        free(r->heads);
        return bg_err_set(err, BG_ENOMEM, "out of memory for a replay cache of %zu", cap);
    }
    if (pthread_mutex_init(&r->mu, NULL) != 0) {
        free(r->nodes);
        free(r->heads);
        return bg_err_set(err, BG_ENOMEM, "cannot create a mutex");
    }
    for (size_t i = 0; i < buckets; i++)
        r->heads[i] = NIL;
    for (size_t i = 0; i < cap; i++)
        r->nodes[i].next = i + 1 < cap ? (uint32_t)(i + 1) : NIL;
    r->free_head = 0;
    r->cap = (uint32_t)cap;
    r->share = (uint32_t)share;
    r->nsenders = 0;
    r->mask = (uint32_t)(buckets - 1);
    r->count = 0;
    r->min_expiry = INT64_MAX;
    randombytes_buf(r->key, sizeof r->key);
    return BG_OK;
}

static void
replay_destroy(struct replay *r)
{
    pthread_mutex_destroy(&r->mu);
    free(r->nodes);
    free(r->heads);
}

static uint32_t
replay_bucket(const struct replay *r, const uint8_t nonce[BG_ENV_NONCE_LEN], uint32_t city)
{
    uint8_t in[BG_ENV_NONCE_LEN + 4], h[crypto_shorthash_BYTES];
    memcpy(in, nonce, BG_ENV_NONCE_LEN);
    memcpy(in + BG_ENV_NONCE_LEN, &city, 4);
    crypto_shorthash(h, in, sizeof in, r->key);
    uint32_t v;
    memcpy(&v, h, sizeof v);
    return v & r->mask;
}

/* The index of city in r->senders, or NIL. Under r->mu. */
static uint32_t
sender_find(const struct replay *r, uint32_t city)
{
    for (uint32_t i = 0; i < r->nsenders; i++)
        if (r->senders[i].city == city)
            return i;
    return NIL;
}

/* Unlinks *link (expired) and puts it on the free list; returns the next. */
static uint32_t
replay_drop(struct replay *r, uint32_t *link)
{
    uint32_t i = *link;
    uint32_t si = sender_find(r, r->nodes[i].city);
    if (si != NIL && --r->senders[si].count == 0)
        r->senders[si] = r->senders[--r->nsenders];
    *link = r->nodes[i].next;
    r->nodes[i].next = r->free_head;
    r->free_head = i;
    r->count--;
    r->swept++;
    return *link;
}

/* Whether (nonce, city) is live at now; drops expired entries on the way. An
 * entry is live while its envelope could still pass the clock check
 * (expiry >= now). Under r->mu. */
static bool
replay_seen(struct replay *r, uint32_t b, const uint8_t nonce[BG_ENV_NONCE_LEN], uint32_t city,
            int64_t now)
{
    uint32_t *link = &r->heads[b];
    while (*link != NIL) {
        struct rnode *n = &r->nodes[*link];
        if (n->expiry_ms < now) {
            replay_drop(r, link);
            continue;
        }
        if (n->city == city && memcmp(n->nonce, nonce, BG_ENV_NONCE_LEN) == 0)
            return true;
        link = &n->next;
    }
    return false;
}

/* Removes every expired entry if any can have expired. Under r->mu. */
static void
replay_sweep(struct replay *r, int64_t now)
{
    if (now <= r->min_expiry)
        return;
    int64_t min = INT64_MAX;
    for (uint32_t b = 0; b <= r->mask; b++) {
        uint32_t *link = &r->heads[b];
        while (*link != NIL) {
            struct rnode *n = &r->nodes[*link];
            if (n->expiry_ms < now) {
                replay_drop(r, link);
                continue;
            }
            if (n->expiry_ms < min)
                min = n->expiry_ms;
            link = &n->next;
        }
    }
    r->min_expiry = min;
}

/* Room for one more entry of city: the cache, the sender table and the
 * sender's share. Sweeps first if anything can have expired. *share is set
 * when it is the sender's share that is used up. Under r->mu. */
static bool
replay_room(struct replay *r, uint32_t city, int64_t now, uint32_t *si, bool *share)
{
    *si = sender_find(r, city);
    bool ok = r->count < r->cap && (*si != NIL || r->nsenders < REPLAY_SENDERS_MAX) &&
              (*si == NIL || r->senders[*si].count < r->share);
    if (!ok) {
        replay_sweep(r, now);
        *si = sender_find(r, city);
    }
    bool cache = r->count < r->cap && (*si != NIL || r->nsenders < REPLAY_SENDERS_MAX);
    /* A full cache is named as such, even when the sender holds all of it. */
    *share = cache && *si != NIL && r->senders[*si].count >= r->share;
    return cache && !*share;
}

/* Records (nonce, city) in bucket b; room was checked. Under r->mu. */
static void
replay_add(struct replay *r, uint32_t b, const uint8_t nonce[BG_ENV_NONCE_LEN], uint32_t city,
           uint32_t si, int64_t expiry)
{
    uint32_t i = r->free_head;
    struct rnode *n = &r->nodes[i];
    r->free_head = n->next;
    memcpy(n->nonce, nonce, BG_ENV_NONCE_LEN);
    n->city = city;
    n->expiry_ms = expiry;
    n->next = r->heads[b];
    r->heads[b] = i;
    r->count++;
    if (si == NIL) {
        si = r->nsenders++;
        r->senders[si] = (struct rsender){.city = city, .count = 0};
    }
    r->senders[si].count++;
    if (expiry < r->min_expiry)
        r->min_expiry = expiry;
}

/* BG_ENV_OK if (nonce, city) may be accepted at now; with record, also
 * records it (expiring at expiry). One critical section, so two threads
 * recording the same nonce cannot both succeed. REPLAY_FULL when the cache
 * or the sender's share of it is full of live entries (*share says which). */
static bg_env_reason
replay_check(struct replay *r, const uint8_t nonce[BG_ENV_NONCE_LEN], uint32_t city, int64_t now,
             int64_t expiry, bool record, bool *share)
{
    uint32_t b = replay_bucket(r, nonce, city);
    bg_env_reason res = BG_ENV_OK;
    *share = false;
    pthread_mutex_lock(&r->mu);
    uint32_t si = NIL;
    if (replay_seen(r, b, nonce, city, now)) {
        r->replays++;
        res = BG_ENV_REPLAY;
    } else if (!replay_room(r, city, now, &si, share)) {
        r->full++;
        r->share_full += *share;
        res = BG_ENV_REPLAY_FULL;
    } else if (record) {
        replay_add(r, b, nonce, city, si, expiry);
    }
    pthread_mutex_unlock(&r->mu);
    return res;
}

/* --- the verifier --- */

struct bg_env_verifier {
    char own[BG_CITY_CODE_LEN + 1];
    bg_trust *trust;
    bg_env_member_fp_fn member_fp;
    void *member_ctx;
    int64_t window_ms, future_ms;
    size_t max_message;
    struct replay replay;
    pthread_mutex_t stats_mu;
    uint64_t opened, refused;
};

int
bg_env_verifier_new(bg_env_verifier **out, const bg_env_verifier_config *cfg, bg_err *err)
{
    if (out == NULL || cfg == NULL)
        return bg_err_set(err, BG_EINVAL, "verifier: missing argument");
    *out = NULL;
    if (!bg_city_code_valid(cfg->own_city))
        return bg_err_set(err, BG_EINVAL, "own city must be a 6-digit code");
    if (cfg->trust == NULL || cfg->member_fp == NULL)
        return bg_err_set(err, BG_EINVAL, "verifier needs a trust store and a roster callback");
    int64_t window = cfg->window_ms ? cfg->window_ms : BG_ENV_WINDOW_DEFAULT_MS;
    if (window < 1000 || window > BG_ENV_WINDOW_MAX_MS)
        return bg_err_set(err, BG_EINVAL, "clock window must be 1000..%d ms", BG_ENV_WINDOW_MAX_MS);
    size_t cap = cfg->replay_capacity ? cfg->replay_capacity : BG_ENV_REPLAY_DEFAULT;
    if (cap > BG_ENV_REPLAY_MAX)
        return bg_err_set(err, BG_EINVAL, "replay cache capacity must be at most %u",
                          BG_ENV_REPLAY_MAX);
    int64_t future = cfg->future_ms ? cfg->future_ms : BG_ENV_FUTURE_DEFAULT_MS;
    if (future > window)
        future = window; /* a default above a short window: the window */
    if (cfg->future_ms < 0 || cfg->future_ms > window)
        return bg_err_set(err, BG_EINVAL, "future skew must be 0..%lld ms (the window)",
                          (long long)window);
    size_t share = cfg->replay_share ? cfg->replay_share : cap / BG_ENV_REPLAY_SHARE_DIV;
    if (share == 0)
        share = 1;
    if (cfg->replay_share > cap)
        return bg_err_set(err, BG_EINVAL, "replay share %zu exceeds the capacity %zu",
                          cfg->replay_share, cap);
    size_t max = cfg->max_message ? cfg->max_message : BG_ENV_MESSAGE_DEFAULT;
    if (max < BG_ENV_MESSAGE_MIN || max > BG_ENV_MESSAGE_MAX)
        return bg_err_set(err, BG_EINVAL, "max message size must be %d..%d bytes",
                          BG_ENV_MESSAGE_MIN, BG_ENV_MESSAGE_MAX);
    int rc = sodium_ready(err);
    if (rc != BG_OK)
        return rc;
    bg_env_verifier *v = calloc(1, sizeof *v);
    if (v == NULL)
        return bg_err_set(err, BG_ENOMEM, "out of memory");
    memcpy(v->own, cfg->own_city, sizeof v->own);
    v->trust = cfg->trust;
    v->member_fp = cfg->member_fp;
    v->member_ctx = cfg->member_ctx;
    v->window_ms = window;
    v->future_ms = future;
    v->max_message = max;
    if ((rc = replay_init(&v->replay, cap, share, err)) != BG_OK) {
        free(v);
        return rc;
    }
    if (pthread_mutex_init(&v->stats_mu, NULL) != 0) {
        replay_destroy(&v->replay);
        free(v);
        return bg_err_set(err, BG_ENOMEM, "cannot create a mutex");
    }
    *out = v;
    return BG_OK;
}

void
bg_env_verifier_free(bg_env_verifier *v)
{
    if (v == NULL)
        return;
    replay_destroy(&v->replay);
    pthread_mutex_destroy(&v->stats_mu);
    free(v);
}

void
bg_env_verifier_stats(bg_env_verifier *v, bg_env_stats *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&v->replay.mu);
    out->replay_entries = v->replay.count;
    out->replay_capacity = v->replay.cap;
    out->replays = v->replay.replays;
    out->full = v->replay.full;
    out->share_full = v->replay.share_full;
    out->replay_share = v->replay.share;
    out->replay_senders = v->replay.nsenders;
    out->swept = v->replay.swept;
    pthread_mutex_unlock(&v->replay.mu);
    pthread_mutex_lock(&v->stats_mu);
    out->opened = v->opened;
    out->refused = v->refused;
    pthread_mutex_unlock(&v->stats_mu);
}

/* --- opening --- */

/* An accepted envelope and the memory it points into. */
struct opened_box {
    bg_env_opened pub;      /* first: bg_env_opened_free casts back */
    Baygate__Envelope *env; /* bg_pb_unpack */
    uint8_t *cert;          /* pub.cert_der */
};

void
bg_env_opened_free(bg_env_opened *o)
{
    if (o == NULL)
        return;
    struct opened_box *box = (struct opened_box *)o;
    if (box->env != NULL)
        bg_pb_free(box->env);
    free(box->cert);
    free(box);
}

/* The certificate that came with the envelope, kept for the caller (cert_der). */
static bool
box_keep_cert(struct opened_box *box, const ProtobufCBinaryData *der)
{
    box->cert = malloc(der->len);
    if (box->cert == NULL)
        return false;
    memcpy(box->cert, der->data, der->len);
    box->pub.cert_der = box->cert;
    box->pub.cert_der_len = der->len;
    return true;
}

/* Clock values beyond this (year 5138) are a caller's bug; bounding them keeps
 * the window arithmetic far from overflow. */
#define NOW_MAX_MS INT64_C(100000000000000)

/* What one open is about: a request, or an answer from expected_peer to
 * request_nonce. */
struct open_ctx {
    bg_env_verifier *v;
    const char *expected_peer;    /* NULL: a request */
    const uint8_t *request_nonce; /* answers */
    bg_env_refusal *ref;
    bg_err *err;
};

static bg_env_reason refuse(struct open_ctx *c, bg_env_reason r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static bg_env_reason
refuse(struct open_ctx *c, bg_env_reason r, const char *fmt, ...)
{
    char msg[BG_ENV_ERROR_MSG_MAX + 1];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    bg_err_set(c->err, reason_status(r), "%s", msg);
    if (c->ref != NULL) {
        c->ref->reason = r;
        memcpy(c->ref->message, msg, sizeof msg);
    }
    pthread_mutex_lock(&c->v->stats_mu);
    c->v->refused++;
    pthread_mutex_unlock(&c->v->stats_mu);
    ERR_clear_error();
    return r;
}

/* A certificate refusal from bg_trust: its reason mapped to ours. */
static bg_env_reason
refuse_cert(struct open_ctx *c, const bg_trust_result *tr, int rc, const char *why)
{
    bg_env_reason r;
    if (c->ref != NULL)
        c->ref->trust_reason = tr->reason;
    switch (tr->reason) {
    case BG_TRUST_NOT_CACHED:
        return refuse(c, BG_ENV_UNKNOWN_CERTIFICATE,
                      "certificate not known by fingerprint; resend with the certificate");
    case BG_TRUST_REVOKED:
        r = BG_ENV_CERT_REVOKED;
        break;
    case BG_TRUST_EXPIRED:
        r = BG_ENV_CERT_EXPIRED;
        break;
    case BG_TRUST_NOT_YET_VALID:
        r = BG_ENV_CERT_NOT_YET_VALID;
        break;
    case BG_TRUST_WRONG_CITY:
        r = BG_ENV_CERT_WRONG_CITY;
        break;
    case BG_TRUST_CRL_EXPIRED:
    case BG_TRUST_CRL_INVALID:
        r = BG_ENV_TRUST_UNAVAILABLE;
        break;
    case BG_TRUST_INTERNAL:
        r = BG_ENV_INTERNAL;
        break;
    case BG_TRUST_OK: /* a failure without a reason: bad arguments or resources */
        r = rc == BG_ELIMIT ? BG_ENV_CERT_UNTRUSTED : BG_ENV_INTERNAL;
        break;
    default:
        r = BG_ENV_CERT_UNTRUSTED;
        break;
    }
    return refuse(c, r, "certificate refused: %s", why);
}

/* Records what a parsed request claims, for addressing an error answer. */
static void
note_claims(struct open_ctx *c, const Baygate__Envelope *env)
{
    if (c->ref == NULL || c->expected_peer != NULL || !bg_city_code_valid(env->sender))
        return;
    c->ref->addressable = true;
    memcpy(c->ref->sender, env->sender, sizeof c->ref->sender);
    memcpy(c->ref->request_id, env->request_id.data, BG_ENV_ID_LEN);
    memcpy(c->ref->nonce, env->nonce.data, BG_ENV_NONCE_LEN);
    snprintf(c->ref->purpose, sizeof c->ref->purpose, "%s", env->purpose);
}

/* What the stages of one open learn and hand on; open_common frees it. */
struct open_state {
    const uint8_t *msg;
    size_t len;
    int64_t now_ms;
    Baygate__SignedEnvelope *se; /* bg_pb_unpack */
    struct opened_box *box;      /* owns env */
    Baygate__Envelope *env;
    bool with_cert, is_answer;
    bg_trust_result tr;
    EVP_PKEY *pub; /* the certificate's key, once it is trusted */
    uint32_t city; /* the sender, as a replay key */
    int64_t expiry;
};

/* 1. size */
static bg_env_reason
open_size(struct open_ctx *c, struct open_state *s)
{
    if (s->msg == NULL || s->len == 0)
        return refuse(c, BG_ENV_MALFORMED, "empty message");
    if (s->len > c->v->max_message)
        return refuse(c, BG_ENV_OVERSIZE, "message of %zu bytes exceeds the limit of %zu", s->len,
                      c->v->max_message);
    return BG_ENV_OK;
}

/* 2. the SignedEnvelope, every length bounded */
static bg_env_reason
open_signed(struct open_ctx *c, struct open_state *s)
{
    Baygate__SignedEnvelope *se =
        bg_pb_unpack(&baygate__signed_envelope__descriptor, s->len, s->msg);
    if (se == NULL)
        return refuse(c, BG_ENV_MALFORMED, "not a signed envelope (does not parse in %zu bytes)",
                      bg_pb_budget(s->len));
    s->se = se;
    if (se->envelope.len == 0)
        return refuse(c, BG_ENV_MALFORMED, "signed envelope carries no envelope");
    if (se->signature.len == 0 || se->signature.len > BG_SIG_MAX)
        return refuse(c, BG_ENV_MALFORMED, "signature of %zu bytes (must be 1..%d)",
                      se->signature.len, BG_SIG_MAX);
    s->with_cert = se->signer_case == BAYGATE__SIGNED_ENVELOPE__SIGNER_CERTIFICATE_DER;
    if (s->with_cert &&
        (se->certificate_der.len == 0 || se->certificate_der.len > BG_TRUST_CERT_MAX))
        return refuse(c, BG_ENV_MALFORMED, "certificate of %zu bytes (must be 1..%d)",
                      se->certificate_der.len, BG_TRUST_CERT_MAX);
    if (se->signer_case == BAYGATE__SIGNED_ENVELOPE__SIGNER_CERTIFICATE_SHA256 &&
        se->certificate_sha256.len != BG_SIG_FP_LEN)
        return refuse(c, BG_ENV_MALFORMED, "certificate fingerprint of %zu bytes (must be %d)",
                      se->certificate_sha256.len, BG_SIG_FP_LEN);
    if (!s->with_cert && se->signer_case != BAYGATE__SIGNED_ENVELOPE__SIGNER_CERTIFICATE_SHA256)
        return refuse(c, BG_ENV_MALFORMED, "signed envelope names no certificate");
    return BG_ENV_OK;
}

/* 3. the Envelope: its lengths, its kind, then its version (the claims are
 * noted before the version so that a BAD_VERSION refusal can be answered) */
static bg_env_reason
open_envelope(struct open_ctx *c, struct open_state *s)
{
    char a[80];
    s->box = calloc(1, sizeof *s->box);
    if (s->box == NULL)
        return refuse(c, BG_ENV_INTERNAL, "out of memory");
    s->box->env =
        bg_pb_unpack(&baygate__envelope__descriptor, s->se->envelope.len, s->se->envelope.data);
    Baygate__Envelope *env = s->env = s->box->env;
    if (env == NULL)
        return refuse(c, BG_ENV_MALFORMED_ENVELOPE, "envelope does not parse");
    if (env->request_id.len != BG_ENV_ID_LEN || env->nonce.len != BG_ENV_NONCE_LEN)
        return refuse(c, BG_ENV_MALFORMED_ENVELOPE,
                      "request id of %zu and nonce of %zu bytes (must be %d and %d)",
                      env->request_id.len, env->nonce.len, BG_ENV_ID_LEN, BG_ENV_NONCE_LEN);
    if (env->reply_to_nonce.len != 0 && env->reply_to_nonce.len != BG_ENV_NONCE_LEN)
        return refuse(c, BG_ENV_MALFORMED_ENVELOPE, "reply-to nonce of %zu bytes (must be 0 or %d)",
                      env->reply_to_nonce.len, BG_ENV_NONCE_LEN);
    if (env->authorisation_ref.len > BG_ENV_AUTH_REF_MAX)
        return refuse(c, BG_ENV_MALFORMED_ENVELOPE,
                      "authorisation reference of %zu bytes (at most %d)",
                      env->authorisation_ref.len, BG_ENV_AUTH_REF_MAX);
    if (!purpose_valid(env->purpose)) {
        printable(env->purpose, BG_ENV_PURPOSE_MAX, a, sizeof a);
        return refuse(c, BG_ENV_MALFORMED_ENVELOPE, "purpose \"%s\" is not %d printable bytes", a,
                      BG_ENV_PURPOSE_MAX);
    }
    s->is_answer = env->reply_to_nonce.len == BG_ENV_NONCE_LEN;
    if (s->is_answer != (c->expected_peer != NULL))
        return refuse(c, BG_ENV_WRONG_KIND,
                      s->is_answer
                          ? "an answer (it carries reply_to_nonce) where a request was expected"
                          : "a request (no reply_to_nonce) where an answer was expected");
    note_claims(c, env);
    if (env->version != BG_ENV_VERSION)
        return refuse(c, BG_ENV_BAD_VERSION, "envelope version %u; this gateway speaks %d",
                      env->version, BG_ENV_VERSION);
    return BG_ENV_OK;
}

/* 4. the sender (and, for answers, that it is the peer we asked) */
static bg_env_reason
open_sender(struct open_ctx *c, struct open_state *s)
{
    char a[80];
    if (!bg_city_code_valid(s->env->sender)) {
        printable(s->env->sender, 16, a, sizeof a);
        return refuse(c, BG_ENV_BAD_SENDER, "sender \"%s\" is not a 6-digit city code", a);
    }
    if (c->expected_peer != NULL && strcmp(s->env->sender, c->expected_peer) != 0)
        return refuse(c, BG_ENV_WRONG_PEER, "answer is from %s, the request went to %s",
                      s->env->sender, c->expected_peer);
    return BG_ENV_OK;
}

/* 5. the certificate */
static bg_env_reason
open_cert(struct open_ctx *c, struct open_state *s)
{
    const Baygate__SignedEnvelope *se = s->se;
    time_t now_s = (time_t)(s->now_ms / 1000);
    bg_err sub = {0};
    int rc = s->with_cert ? bg_trust_verify_at(c->v->trust, se->certificate_der.data,
                                               se->certificate_der.len, s->env->sender, now_s,
                                               &s->tr, &s->pub, &sub)
                          : bg_trust_verify_cached(c->v->trust, se->certificate_sha256.data,
                                                   s->env->sender, now_s, &s->tr, &s->pub, &sub);
    if (rc != BG_OK)
        return refuse_cert(c, &s->tr, rc, sub.msg);
    if (s->with_cert && !box_keep_cert(s->box, &se->certificate_der))
        return refuse(c, BG_ENV_INTERNAL, "out of memory");
    return BG_ENV_OK;
}

/* 6. the roster: the certificate is one it pins (current, or next during a rotation) */
static bg_env_reason
open_roster(struct open_ctx *c, struct open_state *s)
{
    const char *sender = s->env->sender;
    char b[17], d[17];
    uint8_t pin[BG_ENV_PINS_MAX][BG_SIG_FP_LEN];
    size_t npins = 0;
    int rc = c->v->member_fp(c->v->member_ctx, sender, pin, &npins);
    if (rc == BG_ENOTFOUND)
        return refuse(c, BG_ENV_NOT_MEMBER, "%s is not a member in this gateway's roster", sender);
    if (rc != BG_OK)
        return refuse(c, BG_ENV_TRUST_UNAVAILABLE, "roster lookup for %s failed (%s)", sender,
                      bg_status_name(rc));
    if (!pin_matches(pin, npins, s->tr.fingerprint)) {
        short_hex(s->tr.fingerprint, BG_SIG_FP_LEN, b);
        short_hex(pin[0], BG_SIG_FP_LEN, d);
        return refuse(c, BG_ENV_PIN_MISMATCH,
                      "certificate %s... of %s is not the one the roster pins (%s...%s)", b, sender,
                      d, npins > 1 ? " or its next" : "");
    }
    return BG_ENV_OK;
}

/* 7. the recipient (and, for answers, the request answered) */
static bg_env_reason
open_recipient(struct open_ctx *c, struct open_state *s)
{
    const Baygate__Envelope *env = s->env;
    char a[80];
    if (strcmp(env->recipient, c->v->own) != 0) {
        printable(env->recipient, 16, a, sizeof a);
        return refuse(c, BG_ENV_WRONG_RECIPIENT,
                      "envelope is addressed to \"%s\", this gateway is %s", a, c->v->own);
    }
    if (c->expected_peer != NULL &&
        sodium_memcmp(env->reply_to_nonce.data, c->request_nonce, BG_ENV_NONCE_LEN) != 0)
        return refuse(c, BG_ENV_NOT_BOUND, "answer from %s does not reply to our request's nonce",
                      env->sender);
    return BG_ENV_OK;
}

/* 8. the clock window (no overflow: now and the window are bounded) */
static bg_env_reason
open_clock(struct open_ctx *c, struct open_state *s)
{
    const bg_env_verifier *v = c->v;
    int64_t issued = s->env->issued_at_ms, now_ms = s->now_ms;
    if (issued < now_ms - v->window_ms)
        return refuse(c, BG_ENV_STALE,
                      "envelope is stale: issued %.3f s before now, the window is +-%lld s",
                      (double)(now_ms - issued) / 1000.0, (long long)(v->window_ms / 1000));
    if (issued > now_ms + v->future_ms)
        return refuse(c, BG_ENV_FUTURE,
                      "envelope is from the future: issued %.3f s after now, at most %.3f s are "
                      "allowed",
                      (double)(issued - now_ms) / 1000.0, (double)v->future_ms / 1000.0);
    return BG_ENV_OK;
}

/* The replay cache's verdict (OK, REPLAY or REPLAY_FULL) as a refusal. */
static bg_env_reason
refuse_replay(struct open_ctx *c, const struct open_state *s, bg_env_reason rr, bool share)
{
    char b[17];
    if (rr == BG_ENV_REPLAY) {
        short_hex(s->env->nonce.data, BG_ENV_NONCE_LEN, b);
        return refuse(c, BG_ENV_REPLAY, "replay: nonce %s... from %s was already seen", b,
                      s->env->sender);
    }
    if (rr == BG_ENV_REPLAY_FULL && share)
        return refuse(c, BG_ENV_REPLAY_FULL,
                      "replay cache share of %s full (%u live envelopes from it within the "
                      "window); retry later",
                      s->env->sender, (unsigned)c->v->replay.share);
    if (rr == BG_ENV_REPLAY_FULL)
        return refuse(c, BG_ENV_REPLAY_FULL,
                      "replay cache full (%u live envelopes within the window); retry later",
                      (unsigned)c->v->replay.cap);
    return BG_ENV_OK;
}

/* 9. replay: an early look, to spare the signature check */
static bg_env_reason
open_replay(struct open_ctx *c, struct open_state *s)
{
    s->city = city_number(s->env->sender);
    s->expiry = s->env->issued_at_ms + c->v->window_ms;
    bool share = false;
    bg_env_reason rr = replay_check(&c->v->replay, s->env->nonce.data, s->city, s->now_ms,
                                    s->expiry, false, &share);
    return refuse_replay(c, s, rr, share);
}

/* 10. the signature over the exact bytes received */
static bg_env_reason
open_signature(struct open_ctx *c, struct open_state *s)
{
    const Baygate__SignedEnvelope *se = s->se;
    bg_err sub = {0};
    if (bg_sig_verify(s->pub, BG_SIG_CTX_ENVELOPE, se->envelope.data, se->envelope.len,
                      se->signature.data, se->signature.len, &sub) != BG_OK)
        return refuse(c, BG_ENV_BAD_SIGNATURE, "signature of %s does not verify", s->env->sender);
    return BG_ENV_OK;
}

/* Only after the signature: record the nonce, looking again in the same
 * critical section, so that of two concurrent twins one wins. */
static bg_env_reason
open_record(struct open_ctx *c, struct open_state *s)
{
    bool share = false;
    bg_env_reason rr = replay_check(&c->v->replay, s->env->nonce.data, s->city, s->now_ms,
                                    s->expiry, true, &share);
    return refuse_replay(c, s, rr, share);
}

typedef bg_env_reason open_stage_fn(struct open_ctx *c, struct open_state *s);

/* The checks of envelope.h, in its order: the first refusal ends the open. */
static open_stage_fn *const open_stages[] = {
    open_size,      /* 1 */
    open_signed,    /* 2 */
    open_envelope,  /* 3 */
    open_sender,    /* 4 */
    open_cert,      /* 5 */
    open_roster,    /* 6 */
    open_recipient, /* 7 */
    open_clock,     /* 8 */
    open_replay,    /* 9 */
    open_signature, /* 10 */
    open_record,    /* then recorded */
};

/* Accepted: the box becomes the caller's. */
static void
open_accept(struct open_ctx *c, struct open_state *s, bg_env_opened **out)
{
    const Baygate__Envelope *env = s->env;
    bg_env_opened *o = &s->box->pub;
    memcpy(o->sender, env->sender, sizeof o->sender);
    memcpy(o->recipient, env->recipient, sizeof o->recipient);
    memcpy(o->request_id, env->request_id.data, BG_ENV_ID_LEN);
    o->issued_at_ms = env->issued_at_ms;
    memcpy(o->nonce, env->nonce.data, BG_ENV_NONCE_LEN);
    snprintf(o->purpose, sizeof o->purpose, "%s", env->purpose);
    o->authorisation_ref = env->authorisation_ref.len ? env->authorisation_ref.data : NULL;
    o->authorisation_ref_len = env->authorisation_ref.len;
    o->body_type = env->body_type;
    o->body = env->body.len ? env->body.data : NULL;
    o->body_len = env->body.len;
    o->is_answer = s->is_answer;
    if (s->is_answer)
        memcpy(o->reply_to_nonce, env->reply_to_nonce.data, BG_ENV_NONCE_LEN);
    memcpy(o->cert_fingerprint, s->tr.fingerprint, BG_SIG_FP_LEN);
    o->cert_included = s->with_cert;
    crypto_hash_sha256(o->digest, s->msg, s->len);
    *out = o;
    s->box = NULL;
    pthread_mutex_lock(&c->v->stats_mu);
    c->v->opened++;
    pthread_mutex_unlock(&c->v->stats_mu);
    bg_err_clear(c->err);
}

static bg_env_reason
open_common(struct open_ctx *c, const uint8_t *msg, size_t len, int64_t now_ms, bg_env_opened **out)
{
    struct open_state s = {.msg = msg, .len = len, .now_ms = now_ms};
    bg_env_reason r = BG_ENV_OK;
    for (size_t i = 0; r == BG_ENV_OK && i < sizeof open_stages / sizeof open_stages[0]; i++)
        r = open_stages[i](c, &s);
    if (r == BG_ENV_OK)
        open_accept(c, &s, out);
    EVP_PKEY_free(s.pub);
    bg_env_opened_free(s.box ? &s.box->pub : NULL);
    bg_pb_free(s.se);
    return r;
}

bg_env_reason
bg_env_open(bg_env_verifier *v, const uint8_t *msg, size_t len, int64_t now_ms, bg_env_opened **out,
            bg_env_refusal *refusal, bg_err *err)
{
    if (refusal != NULL)
        memset(refusal, 0, sizeof *refusal);
    if (out != NULL)
        *out = NULL;
    if (v == NULL || out == NULL) {
        bg_err_set(err, BG_EINVAL, "open: missing argument");
        if (refusal != NULL)
            refusal->reason = BG_ENV_INTERNAL;
        return BG_ENV_INTERNAL;
    }
    struct open_ctx c = {.v = v, .ref = refusal, .err = err};
    if (now_ms < 0 || now_ms > NOW_MAX_MS)
        return refuse(&c, BG_ENV_INTERNAL, "open: clock value %lld ms is out of range",
                      (long long)now_ms);
    return open_common(&c, msg, len, now_ms ? now_ms : bg_env_now_ms(), out);
}

bg_env_reason
bg_env_open_answer(bg_env_verifier *v, const uint8_t *msg, size_t len, const char *expected_peer,
                   const uint8_t request_nonce[BG_ENV_NONCE_LEN], int64_t now_ms,
                   bg_env_opened **out, bg_err *err)
{
    if (out != NULL)
        *out = NULL;
    if (v == NULL || out == NULL || request_nonce == NULL || !bg_city_code_valid(expected_peer)) {
        bg_err_set(err, BG_EINVAL, "open answer: missing argument or bad peer code");
        return BG_ENV_INTERNAL;
    }
    struct open_ctx c = {
        .v = v, .expected_peer = expected_peer, .request_nonce = request_nonce, .err = err};
    if (now_ms < 0 || now_ms > NOW_MAX_MS)
        return refuse(&c, BG_ENV_INTERNAL, "open: clock value %lld ms is out of range",
                      (long long)now_ms);
    return open_common(&c, msg, len, now_ms ? now_ms : bg_env_now_ms(), out);
}

/* --- answers and errors --- */

int
bg_env_seal_answer(const bg_env_identity *id, const bg_env_opened *req, uint32_t body_type,
                   const uint8_t *body, size_t body_len, bool include_cert, size_t max_len,
                   uint8_t **out, size_t *out_len, bg_err *err)
{
    if (req == NULL)
        return bg_err_set(err, BG_EINVAL, "answer: no request");
    if (req->is_answer)
        return bg_err_set(err, BG_EINVAL, "an answer is never answered");
    bg_env_fields f = {
        .recipient = req->sender,
        .purpose = req->purpose,
        .authorisation_ref = req->authorisation_ref,
        .authorisation_ref_len = req->authorisation_ref_len,
        .body_type = body_type,
        .body = body,
        .body_len = body_len,
        .reply_to_nonce = req->nonce,
    };
    memcpy(f.request_id, req->request_id, BG_ENV_ID_LEN);
    return bg_env_seal(id, &f, include_cert, max_len, out, out_len, NULL, err);
}

/* Copies message printable and cut to BG_ENV_ERROR_MSG_MAX. */
static void
error_text(const char *message, char out[BG_ENV_ERROR_MSG_MAX + 1])
{
    size_t k = 0;
    for (size_t i = 0; message != NULL && message[i] != '\0' && k < BG_ENV_ERROR_MSG_MAX; i++)
        out[k++] = (message[i] >= 0x20 && message[i] < 0x7f) ? message[i] : '?';
    out[k] = '\0';
}

int
bg_env_error_pack(uint32_t code, const char *message, uint8_t **out, size_t *out_len, bg_err *err)
{
    if (out == NULL || out_len == NULL)
        return bg_err_set(err, BG_EINVAL, "error pack: missing argument");
    char text[BG_ENV_ERROR_MSG_MAX + 1];
    error_text(message, text);
    Baygate__ErrorAnswer ea = BAYGATE__ERROR_ANSWER__INIT;
    ea.code = code;
    ea.message = text;
    size_t len = baygate__error_answer__get_packed_size(&ea);
    uint8_t *buf = malloc(len ? len : 1);
    if (buf == NULL)
        return bg_err_set(err, BG_ENOMEM, "out of memory");
    baygate__error_answer__pack(&ea, buf);
    *out = buf;
    *out_len = len;
    return BG_OK;
}

int
bg_env_error_parse(const uint8_t *body, size_t len, uint32_t *code,
                   char message[BG_ENV_ERROR_MSG_MAX + 1], bg_err *err)
{
    if (code == NULL || message == NULL || (body == NULL && len != 0))
        return bg_err_set(err, BG_EINVAL, "error parse: missing argument");
    *code = 0;
    message[0] = '\0';
    /* code (<= 6 bytes) + message (<= 3 + MAX bytes) + slack for unknown fields */
    if (len > 2 * BG_ENV_ERROR_MSG_MAX)
        return bg_err_set(err, BG_EPROTO, "error answer of %zu bytes is too long", len);
    Baygate__ErrorAnswer *ea = bg_pb_unpack(&baygate__error_answer__descriptor, len, body);
    if (ea == NULL)
        return bg_err_set(err, BG_EPROTO, "error answer does not parse");
    int rc = BG_OK;
    if (strnlen(ea->message, BG_ENV_ERROR_MSG_MAX + 1) > BG_ENV_ERROR_MSG_MAX)
        rc = bg_err_set(err, BG_EPROTO, "error message longer than %d bytes", BG_ENV_ERROR_MSG_MAX);
    else if (ea->code == 0)
        rc = bg_err_set(err, BG_EPROTO, "error answer without a code");
    else {
        *code = ea->code;
        error_text(ea->message, message);
    }
    bg_pb_free(ea);
    return rc;
}

int
bg_env_seal_error(const bg_env_identity *id, const bg_env_opened *req, uint32_t code,
                  const char *message, size_t max_len, uint8_t **out, size_t *out_len, bg_err *err)
{
    if (code == 0)
        return bg_err_set(err, BG_EINVAL, "error code 0 is not an error");
    uint8_t *body = NULL;
    size_t body_len = 0;
    int rc = bg_env_error_pack(code, message, &body, &body_len, err);
    if (rc == BG_OK)
        rc = bg_env_seal_answer(id, req, BG_ENV_BODY_ERROR, body, body_len, true, max_len, out,
                                out_len, err);
    free(body);
    return rc;
}

bool
bg_env_refusal_answerable(const bg_env_refusal *r)
{
    return r != NULL && r->addressable && bg_env_reason_answers(r->reason);
}

int
bg_env_seal_refusal(const bg_env_identity *id, const bg_env_refusal *r, size_t max_len,
                    uint8_t **out, size_t *out_len, bg_err *err)
{
    if (r == NULL)
        return bg_err_set(err, BG_EINVAL, "no refusal");
    if (!bg_env_refusal_answerable(r))
        return bg_err_set(err, BG_EINVAL, "refusal %s is not answered: drop and log it",
                          bg_env_reason_name(r->reason));
    /* A stand-in for the request, from its unverified claims. */
    bg_env_opened req;
    memset(&req, 0, sizeof req);
    memcpy(req.sender, r->sender, sizeof req.sender);
    memcpy(req.request_id, r->request_id, BG_ENV_ID_LEN);
    memcpy(req.nonce, r->nonce, BG_ENV_NONCE_LEN);
    memcpy(req.purpose, r->purpose, sizeof req.purpose);
    return bg_env_seal_error(id, &req, bg_env_reason_code(r->reason), r->message, max_len, out,
                             out_len, err);
}
