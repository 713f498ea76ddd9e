/*
 * envelope.h - sealing and opening signed envelopes between gateways.
 *
 * nng 1.5.2 cannot tell the application which certificate a TLS peer used, so
 * every request and every answer between gateways is a SignedEnvelope
 * (proto/envelope.proto) and the envelope, not the connection, says who is
 * asking. Sealing serialises an Envelope, signs those exact bytes with the
 * city key under BG_SIG_CTX_ENVELOPE and wraps them with either the city's
 * certificate (first contact) or its SHA-256 fingerprint (once the receiver
 * has the certificate cached).
 *
 * Opening (bg_env_open) checks, in this order, and stops at the first failure:
 *   1. size: 0 < len <= the verifier's max_message            (OVERSIZE, MALFORMED)
 *   2. SignedEnvelope unpacks within a memory cap of 2*len+4 KiB, and every
 *      length is in bounds: envelope 1..len, signature 1..BG_SIG_MAX,
 *      certificate 1..BG_TRUST_CERT_MAX or fingerprint exactly 32 bytes (MALFORMED)
 *   3. Envelope unpacks (same cap), request_id and nonce exactly 16 bytes,
 *      reply_to_nonce 0 or 16, authorisation_ref <= 64, purpose valid
 *      (MALFORMED_ENVELOPE); a request has no reply_to_nonce, an answer has
 *      one (WRONG_KIND); version == BG_ENV_VERSION (BAD_VERSION)
 *   4. sender is a 6-digit city code                           (BAD_SENDER)
 *      [answers: sender == the peer asked]                     (WRONG_PEER)
 *   5. certificate, through bg_trust: chains to the federation CA, not
 *      revoked, CRL current, within validity, city usage, CN and DNS SAN ==
 *      sender. A fingerprint-only envelope needs the certificate in the trust
 *      cache, else UNKNOWN_CERTIFICATE: resend with the certificate.
 *      (CERT_UNTRUSTED, CERT_REVOKED, CERT_EXPIRED, CERT_NOT_YET_VALID,
 *      CERT_WRONG_CITY, TRUST_UNAVAILABLE, UNKNOWN_CERTIFICATE)
 *   6. sender is in the roster and the certificate's fingerprint is one the
 *      roster pins (current, or next during a rotation)
 *                                                     (NOT_MEMBER, PIN_MISMATCH)
 *   7. recipient == own city                                   (WRONG_RECIPIENT)
 *      [answers: reply_to_nonce == our request's nonce]        (NOT_BOUND)
 *   8. now - window <= issued_at <= now + future skew          (STALE, FUTURE)
 *   9. (sender, nonce) not seen within the window, and room for it in the
 *      cache and in the sender's share of it          (REPLAY, REPLAY_FULL)
 *  10. the signature verifies over the exact received envelope bytes with the
 *      certificate's key                                       (BAD_SIGNATURE)
 * Only then is (sender, nonce) recorded, atomically with a second look (two
 * threads opening the same envelope at once: one wins, the other gets
 * REPLAY). A forged envelope never reaches the cache, so it cannot poison it.
 *
 * Replay cache: a hash set of (sender, nonce) -> expiry = issued_at + window,
 * a fixed number of entries given at creation (about 36 bytes each), keyed
 * SipHash with a random key, one mutex. An entry is needed exactly as long as
 * its envelope could still pass the clock check, so it expires then. When the
 * cache is full, expired entries are swept first; if it is still full the
 * envelope is refused with REPLAY_FULL ("retry later") rather than forgetting
 * an unexpired entry: forgetting would let whoever can fill the cache
 * replay anything it evicted, trading a safety property for availability.
 * Refusing fails closed, and since only signature-checked envelopes enter,
 * only roster members can fill it. So that one member cannot fill it for
 * everyone (envelopes dated just inside the future skew live longest), each
 * sender holds at most replay_share live entries (default capacity / 4):
 * a sender at its share is refused REPLAY_FULL while others still get in;
 * up to 256 distinct senders hold entries at once. Size it for the peak
 * accepted rate: share >= one sender's envelopes/s * (window + future
 * skew), capacity >= all senders' together. The check is against the
 * caller's clock: a clock that jumps forward and back again can let an
 * envelope be accepted twice.
 *
 * Answers: bg_env_seal_answer binds the answer to the request it answers
 * (recipient = request sender, same request_id and purpose, reply_to_nonce =
 * request nonce); bg_env_open_answer additionally checks the sender is the
 * peer asked and the reply_to_nonce is ours (constant-time compare).
 *
 * Refusals: every reason has a stable number (it is the wire code of an
 * ErrorAnswer) and a flag saying whether to answer with an error or drop the
 * message and log it (bg_env_reason_answers):
 *   - drop + log: anything that does not parse or is not addressable
 *     (OVERSIZE, MALFORMED*, WRONG_KIND, BAD_SENDER), certificates that point
 *     at an attacker rather than a mistake (CERT_UNTRUSTED, CERT_REVOKED,
 *     CERT_WRONG_CITY), BAD_SIGNATURE, INTERNAL, and every answer-side check
 *     (we never answer an answer). Telling a forger which check failed would
 *     only help it probe; honest peers do not produce these.
 *   - answer with a typed error: what an honest peer can get wrong and fix
 *     (BAD_VERSION, UNKNOWN_CERTIFICATE, CERT_EXPIRED, CERT_NOT_YET_VALID,
 *     TRUST_UNAVAILABLE, NOT_MEMBER, PIN_MISMATCH, WRONG_RECIPIENT, STALE,
 *     FUTURE, REPLAY, REPLAY_FULL). These checks run before the signature, so
 *     the answer may go to a forger: their messages name only the sender's own
 *     claims, our clock and public roster facts, never secrets.
 * An error answer is itself a signed answer envelope bound to the request's
 * (unverified) nonce, and always carries our certificate, so a peer that does
 * not have it cached can still open it.
 *
 * Messages (bg_err.msg, bg_env_refusal.message) hold only public data and
 * escape anything non-printable from the wire; no key material is ever
 * logged. Private keys stay in OpenSSL objects.
 *
 * Thread-safety: an identity and a verifier may be used from any number of
 * threads at once (the roster callback must then be thread-safe too).
 */
#ifndef BG_ENVELOPE_H
#define BG_ENVELOPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "certs/pki.h"
#include "certs/sig.h"
#include "certs/trust.h"
#include "common/err.h"

#define BG_ENV_VERSION 1
#define BG_ENV_ID_LEN 16    /* request_id */
#define BG_ENV_NONCE_LEN 16 /* nonce, reply_to_nonce */
/* purpose: 0..64 bytes of printable ASCII without spaces ("supervision"). */
#define BG_ENV_PURPOSE_MAX 64
/* authorisation_ref: a digest of the enterprise's consent, 0..64 bytes. */
#define BG_ENV_AUTH_REF_MAX 64
/* ErrorAnswer.message, in bytes (longer ones are cut when packed). */
#define BG_ENV_ERROR_MSG_MAX 256

#define BG_ENV_WINDOW_DEFAULT_MS 300000 /* +-300 s */
#define BG_ENV_WINDOW_MAX_MS 86400000
/* How far ahead of our clock issued_at may be by default: clocks are kept
 * by NTP, and every second allowed here is a second longer that a replay
 * cache entry must live (issued_at + window). */
#define BG_ENV_FUTURE_DEFAULT_MS 30000
#define BG_ENV_REPLAY_DEFAULT 65536
/* Default share of one sender: capacity / this. */
#define BG_ENV_REPLAY_SHARE_DIV 4
#define BG_ENV_REPLAY_MAX (1u << 22)
#define BG_ENV_MESSAGE_DEFAULT (1024 * 1024)
#define BG_ENV_MESSAGE_MIN 1024
#define BG_ENV_MESSAGE_MAX (64 * 1024 * 1024)

/* body_type values: 0 is invalid, 1..15 belong to the envelope layer (1 =
 * ErrorAnswer); the gateway's own message types start at 16. */
#define BG_ENV_BODY_ERROR 1u
#define BG_ENV_BODY_FIRST_APP 16u

/* Why an envelope was refused. Stable numbers: the wire code of an
 * ErrorAnswer is the reason's number (bg_env_reason_code); codes 1..99 are the
 * envelope layer's, the gateway's own error codes start at 100. */
typedef enum bg_env_reason {
    BG_ENV_OK = 0,
    BG_ENV_OVERSIZE = 1,            /* larger than max_message                  drop */
    BG_ENV_MALFORMED = 2,           /* SignedEnvelope garbage or out of bounds  drop */
    BG_ENV_MALFORMED_ENVELOPE = 3,  /* inner Envelope garbage or out of bounds  drop */
    BG_ENV_WRONG_KIND = 4,          /* request with reply_to, answer without    drop */
    BG_ENV_BAD_VERSION = 5,         /* version is not BG_ENV_VERSION          answer */
    BG_ENV_BAD_SENDER = 6,          /* sender is not a 6-digit city code        drop */
    BG_ENV_UNKNOWN_CERTIFICATE = 7, /* fingerprint only, not cached: resend   answer */
    BG_ENV_CERT_UNTRUSTED = 8,      /* not the federation CA's, bad usage, ...  drop */
    BG_ENV_CERT_REVOKED = 9,        /* on the CRL                               drop */
    BG_ENV_CERT_EXPIRED = 10,       /*                                        answer */
    BG_ENV_CERT_NOT_YET_VALID = 11, /*                                        answer */
    BG_ENV_CERT_WRONG_CITY = 12,    /* certificate is another city's            drop */
    BG_ENV_TRUST_UNAVAILABLE = 13,  /* our CRL expired/unusable, roster failed answer */
    BG_ENV_NOT_MEMBER = 14,         /* sender not in our roster               answer */
    BG_ENV_PIN_MISMATCH = 15,       /* not the certificate the roster pins    answer */
    BG_ENV_WRONG_RECIPIENT = 16,    /* addressed to another city              answer */
    BG_ENV_STALE = 17,              /* issued before now - window             answer */
    BG_ENV_FUTURE = 18,             /* issued after now + future skew         answer */
    BG_ENV_REPLAY = 19,             /* (sender, nonce) seen in the window     answer */
    BG_ENV_REPLAY_FULL = 20,        /* replay cache full of live entries      answer */
    BG_ENV_BAD_SIGNATURE = 21,      /*                                          drop */
    BG_ENV_WRONG_PEER = 22,         /* answer from a peer we did not ask        drop */
    BG_ENV_NOT_BOUND = 23,          /* answer to a nonce we did not send        drop */
    BG_ENV_INTERNAL = 24,           /* out of memory, bad arguments             drop */
} bg_env_reason;

#define BG_ENV_REASON_LAST BG_ENV_INTERNAL

/* A short stable name ("stale", "bad-signature", ...). */
const char *bg_env_reason_name(bg_env_reason reason);
/* The ErrorAnswer code for reason (its number). */
uint32_t bg_env_reason_code(bg_env_reason reason);
/* True: answer the asker with an ErrorAnswer; false: drop and log. */
bool bg_env_reason_answers(bg_env_reason reason);

/* --- identity: who we are --- */

/* Read-only once made. The key is used only through OpenSSL. */
typedef struct bg_env_identity {
    char city[BG_CITY_CODE_LEN + 1];
    EVP_PKEY *key;
    X509 *cert;
    uint8_t *cert_der; /* OPENSSL_malloc'd */
    size_t cert_der_len;
    uint8_t fingerprint[BG_SIG_FP_LEN]; /* SHA-256 of cert_der */
} bg_env_identity;

/* From objects (references taken: the caller keeps and frees its own). The
 * certificate must be a city certificate (CN a 6-digit code) for key. */
int bg_env_identity_new(bg_env_identity **out, EVP_PKEY *key, X509 *cert, bg_err *err);

/* From files: key_path (default "city.key") and cert_path (default
 * "city.crt"); relative paths are taken inside dir when dir is not NULL. The
 * key file must be 0600 (bg_pki_key_load). */
int bg_env_identity_load(bg_env_identity **out, const char *dir, const char *key_path,
                         const char *cert_path, bg_err *err);
void bg_env_identity_free(bg_env_identity *id);

/* --- sealing --- */

/* What a request says. */
typedef struct bg_env_fields {
    const char *recipient;             /* 6-digit city code */
    uint8_t request_id[BG_ENV_ID_LEN]; /* all zero: a random one is chosen */
    int64_t issued_at_ms;              /* 0: now */
    const char *purpose;               /* NULL or "" for none */
    const uint8_t *authorisation_ref;  /* may be NULL */
    size_t authorisation_ref_len;      /* <= BG_ENV_AUTH_REF_MAX */
    uint32_t body_type;                /* not 0 */
    const uint8_t *body;               /* may be NULL when body_len is 0 */
    size_t body_len;
    const uint8_t *reply_to_nonce; /* NULL for requests; 16 bytes for answers */
} bg_env_fields;

/* What was sent: keep the nonce to check the answer (bg_env_open_answer). */
typedef struct bg_env_sent {
    uint8_t request_id[BG_ENV_ID_LEN];
    uint8_t nonce[BG_ENV_NONCE_LEN];
    int64_t issued_at_ms;
} bg_env_sent;

/*
 * Seals f into a SignedEnvelope: a fresh random nonce, the Envelope signed
 * with id's key, and the certificate (include_cert) or its fingerprint.
 * *out (malloc'd, free()) and *out_len on success; sent (may be NULL) gets
 * the request id, nonce and time used. BG_ELIMIT, and nothing made, if the
 * result would exceed max_len (0: BG_ENV_MESSAGE_DEFAULT): check before
 * sending, since a receiver drops oversized messages without a word.
 */
int bg_env_seal(const bg_env_identity *id, const bg_env_fields *f, bool include_cert,
                size_t max_len, uint8_t **out, size_t *out_len, bg_env_sent *sent, bg_err *err);

/* --- opening --- */

/* The roster: BG_OK and the pinned certificate fingerprints if city is a
 * member (its current certificate and, during a rotation, the next one: *n_out
 * of them, 1..BG_ENV_PINS_MAX; an envelope under either is accepted),
 * BG_ENOTFOUND if not; anything else is a roster failure (TRUST_UNAVAILABLE).
 * Called from the threads that open envelopes. */
#define BG_ENV_PINS_MAX 2
typedef int (*bg_env_member_fp_fn)(void *ctx, const char *city,
                                   uint8_t fp_out[BG_ENV_PINS_MAX][BG_SIG_FP_LEN], size_t *n_out);

typedef struct bg_env_verifier_config {
    const char *own_city;          /* 6-digit code: envelopes must be addressed to it */
    bg_trust *trust;               /* borrowed: must outlive the verifier */
    bg_env_member_fp_fn member_fp; /* required */
    void *member_ctx;
    int64_t window_ms;      /* clock window into the past; 0: BG_ENV_WINDOW_DEFAULT_MS */
    int64_t future_ms;      /* how far issued_at may be ahead of now: 0..window_ms;
                               0: BG_ENV_FUTURE_DEFAULT_MS (or the window if shorter) */
    size_t replay_capacity; /* 0: BG_ENV_REPLAY_DEFAULT; at most BG_ENV_REPLAY_MAX */
    size_t replay_share;    /* most live entries of one sender, <= capacity;
                               0: capacity / BG_ENV_REPLAY_SHARE_DIV (at least 1) */
    size_t max_message;     /* 0: BG_ENV_MESSAGE_DEFAULT; MIN..MAX */
} bg_env_verifier_config;

typedef struct bg_env_verifier bg_env_verifier;

int bg_env_verifier_new(bg_env_verifier **out, const bg_env_verifier_config *cfg, bg_err *err);
void bg_env_verifier_free(bg_env_verifier *v);

typedef struct bg_env_stats {
    size_t replay_entries; /* live or not yet swept */
    size_t replay_capacity;
    size_t replay_share;   /* most live entries of one sender */
    size_t replay_senders; /* senders holding entries now */
    uint64_t opened;       /* envelopes accepted */
    uint64_t refused;      /* all refusals */
    uint64_t replays;      /* REPLAY refusals */
    uint64_t full;         /* REPLAY_FULL refusals (cache or share) */
    uint64_t share_full;   /* of which a sender's share was full */
    uint64_t swept;        /* expired entries removed */
} bg_env_stats;

void bg_env_verifier_stats(bg_env_verifier *v, bg_env_stats *out);

/* An accepted envelope. Every field is checked; pointers point into memory
 * owned by the object (free with bg_env_opened_free). */
typedef struct bg_env_opened {
    char sender[BG_CITY_CODE_LEN + 1];
    char recipient[BG_CITY_CODE_LEN + 1];
    uint8_t request_id[BG_ENV_ID_LEN];
    int64_t issued_at_ms;
    uint8_t nonce[BG_ENV_NONCE_LEN];
    char purpose[BG_ENV_PURPOSE_MAX + 1];
    const uint8_t *authorisation_ref; /* NULL when empty */
    size_t authorisation_ref_len;
    uint32_t body_type;
    const uint8_t *body; /* NULL when empty */
    size_t body_len;
    bool is_answer;
    uint8_t reply_to_nonce[BG_ENV_NONCE_LEN]; /* answers only */
    uint8_t cert_fingerprint[BG_SIG_FP_LEN];  /* of the certificate that verified */
    bool cert_included;                       /* it came with the envelope */
    const uint8_t *cert_der; /* then that certificate (DER), else NULL: one a verifier */
    size_t cert_der_len;     /* accepted, for a caller that keeps its peers' certificates */
    uint8_t digest[32];      /* SHA-256 of the whole message received (evidence log) */
} bg_env_opened;

void bg_env_opened_free(bg_env_opened *o);

/* Why a request was refused, and, if its Envelope parsed far enough
 * (addressable), whom to answer. sender, request_id, nonce and purpose are
 * the message's CLAIMS, not verified: use them only to address an error. */
typedef struct bg_env_refusal {
    bg_env_reason reason;
    bg_trust_reason trust_reason; /* for certificate refusals */
    bool addressable;             /* a request with a valid sender and ids */
    char sender[BG_CITY_CODE_LEN + 1];
    uint8_t request_id[BG_ENV_ID_LEN];
    uint8_t nonce[BG_ENV_NONCE_LEN];
    char purpose[BG_ENV_PURPOSE_MAX + 1];
    char message[BG_ENV_ERROR_MSG_MAX + 1];
} bg_env_refusal;

/*
 * Opens a request at now_ms (Unix ms; 0: the real-time clock). BG_ENV_OK and
 * *out, or the first reason it fails (order above) with err (code and a
 * message naming the check) and refusal (may be NULL) filled.
 */
bg_env_reason bg_env_open(bg_env_verifier *v, const uint8_t *msg, size_t len, int64_t now_ms,
                          bg_env_opened **out, bg_env_refusal *refusal, bg_err *err);

/* Opens an answer to the request we sent to expected_peer with nonce
 * request_nonce: the checks of bg_env_open, plus WRONG_PEER and NOT_BOUND. */
bg_env_reason bg_env_open_answer(bg_env_verifier *v, const uint8_t *msg, size_t len,
                                 const char *expected_peer,
                                 const uint8_t request_nonce[BG_ENV_NONCE_LEN], int64_t now_ms,
                                 bg_env_opened **out, bg_err *err);

/* --- answers --- */

/* Seals an answer to req: recipient = req->sender, same request_id, purpose
 * and authorisation_ref, reply_to_nonce = req->nonce, issued now. */
int bg_env_seal_answer(const bg_env_identity *id, const bg_env_opened *req, uint32_t body_type,
                       const uint8_t *body, size_t body_len, bool include_cert, size_t max_len,
                       uint8_t **out, size_t *out_len, bg_err *err);

/* An ErrorAnswer body: code and a message (non-printable bytes become '?',
 * cut to BG_ENV_ERROR_MSG_MAX). *out is malloc'd (free()). */
int bg_env_error_pack(uint32_t code, const char *message, uint8_t **out, size_t *out_len,
                      bg_err *err);

/* Parses an ErrorAnswer body (bounded; the message is made printable). */
int bg_env_error_parse(const uint8_t *body, size_t len, uint32_t *code,
                       char message[BG_ENV_ERROR_MSG_MAX + 1], bg_err *err);

/* Seals an ErrorAnswer answering req (an accepted request the gateway
 * refuses for its own reasons: policy, quota; codes >= 100). */
int bg_env_seal_error(const bg_env_identity *id, const bg_env_opened *req, uint32_t code,
                      const char *message, size_t max_len, uint8_t **out, size_t *out_len,
                      bg_err *err);

/* Seals the ErrorAnswer for a refused request, if its reason is one to
 * answer and it is addressable (BG_EINVAL otherwise: drop and log it). The
 * answer carries our certificate. */
int bg_env_seal_refusal(const bg_env_identity *id, const bg_env_refusal *r, size_t max_len,
                        uint8_t **out, size_t *out_len, bg_err *err);

/* True iff r should be answered (bg_env_reason_answers and addressable). */
bool bg_env_refusal_answerable(const bg_env_refusal *r);

/* The real-time clock in Unix milliseconds. */
int64_t bg_env_now_ms(void);

#endif
