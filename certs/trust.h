/*
 * trust.h - is this certificate a current federation certificate of that city?
 *
 * A bg_trust holds the federation CA certificate and (optionally) its current
 * CRL. bg_trust_verify takes a peer certificate as DER bytes (as carried in a
 * signed envelope) and the city the envelope claims, and accepts it only if
 * all of these hold, reporting the first that fails:
 *   - it parses as exactly one DER certificate;
 *   - it chains to the federation CA (a same-named rogue CA does not count);
 *   - it is not revoked by the loaded CRL, and that CRL has not expired
 *     (with a CRL loaded, an expired one fails every certificate, as in nng);
 *   - it is within its validity period;
 *   - it is not a CA certificate, has EKU serverAuth and clientAuth and
 *     keyUsage digitalSignature;
 *   - its subject CN and its only DNS SAN both equal the expected city.
 *
 * Full verification costs a few hundred microseconds, so verdicts are cached
 * by SHA-256 of the DER bytes (bounded, least recently used out). A cache hit
 * still checks the city, the certificate's validity period and the CRL's
 * expiry against the clock. Replacing the CA or the CRL empties the cache.
 *
 * Thread-safe: any number of threads may verify while another replaces the
 * CRL. Verification itself runs outside the lock, on an immutable snapshot of
 * the CA + CRL store; a verdict reached on a snapshot that has since been
 * replaced is returned but not cached.
 */
#ifndef BG_TRUST_H
#define BG_TRUST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "certs/sig.h"
#include "common/err.h"

/* Largest certificate bg_trust parses (a city certificate is ~700 bytes). */
#define BG_TRUST_CERT_MAX (16 * 1024)
#define BG_TRUST_CACHE_DEFAULT 64
#define BG_TRUST_CACHE_MAX 4096

/* Why a certificate was refused: stable, for mapping to wire error codes. */
typedef enum bg_trust_reason {
    BG_TRUST_OK = 0,
    BG_TRUST_MALFORMED,      /* not one DER certificate */
    BG_TRUST_NOT_FEDERATION, /* does not chain to the federation CA */
    BG_TRUST_REVOKED,
    BG_TRUST_EXPIRED,
    BG_TRUST_NOT_YET_VALID,
    BG_TRUST_CRL_EXPIRED, /* the loaded CRL is past its nextUpdate */
    BG_TRUST_CRL_INVALID, /* the loaded CRL is unusable (not yet valid, bad) */
    BG_TRUST_USAGE,       /* a CA certificate, or EKU/keyUsage wrong */
    BG_TRUST_WRONG_CITY,  /* CN or DNS SAN is not the expected city */
    BG_TRUST_INVALID,     /* fails another X.509 check (strict encoding rules) */
    BG_TRUST_NOT_CACHED,  /* bg_trust_verify_cached: fingerprint unknown */
    BG_TRUST_INTERNAL,    /* out of memory, or an unexpected OpenSSL failure */
} bg_trust_reason;

typedef struct bg_trust bg_trust;

typedef struct bg_trust_result {
    bg_trust_reason reason;
    bool cached; /* the verdict came from the cache */
    uint8_t fingerprint[BG_SIG_FP_LEN];
    time_t not_after; /* of the certificate, when accepted */
} bg_trust_result;

typedef struct bg_trust_stats {
    uint64_t hits, misses;
    size_t cached;       /* entries now in the cache */
    uint64_t generation; /* bumped whenever the CA or the CRL is replaced */
} bg_trust_stats;

/* A verifier trusting ca, checking crl if not NULL (both are taken by
 * reference count: the caller keeps and frees its own). cache_max 0 means the
 * default. The CRL must be issued and signed by ca and carry a CRL number.
 * Without a CRL nothing is checked for revocation. */
int bg_trust_new(bg_trust **out, X509 *ca, X509_CRL *crl, size_t cache_max, bg_err *err);

/* Same, from PEM files; crl_path may be NULL. */
int bg_trust_open(bg_trust **out, const char *ca_path, const char *crl_path, size_t cache_max,
                  bg_err *err);
void bg_trust_free(bg_trust *t);

/* Replaces the CRL. Refused (the old one stays) if it is not signed by the
 * CA, or if its CRL number is lower than the loaded one's (a rollback). */
int bg_trust_set_crl(bg_trust *t, X509_CRL *crl, bg_err *err);
int bg_trust_load_crl(bg_trust *t, const char *path, bg_err *err);

/* Replaces CA and CRL together (CA rotation); no rollback check. */
int bg_trust_set_ca(bg_trust *t, X509 *ca, X509_CRL *crl, bg_err *err);

/*
 * Verifies a peer certificate (DER) for expected_city, now. BG_OK if trusted;
 * BG_ECRYPTO with res->reason and a message naming the failed check if not
 * ("certificate revoked at ...", "certificate expired at ...", "certificate
 * names 440300, envelope claims 440100", "not issued by the federation CA");
 * BG_EINVAL/BG_ELIMIT/BG_ENOMEM for bad arguments or resources. res and key
 * may be NULL; on success *key (if key) is the certificate's public key, a
 * reference the caller frees with EVP_PKEY_free.
 */
int bg_trust_verify(bg_trust *t, const uint8_t *der, size_t len, const char *expected_city,
                    bg_trust_result *res, EVP_PKEY **key, bg_err *err);

/* Same at a given time (evidence replay, tests); the CRL is the current one. */
int bg_trust_verify_at(bg_trust *t, const uint8_t *der, size_t len, const char *expected_city,
                       time_t now, bg_trust_result *res, EVP_PKEY **key, bg_err *err);

/* For an envelope that names its certificate only by fingerprint: accepts it
 * if that certificate was verified for expected_city and is still cached and
 * valid at now. BG_ENOTFOUND (reason BG_TRUST_NOT_CACHED) if not cached: ask
 * the peer for the full certificate. */
int bg_trust_verify_cached(bg_trust *t, const uint8_t fp[BG_SIG_FP_LEN], const char *expected_city,
                           time_t now, bg_trust_result *res, EVP_PKEY **key, bg_err *err);

/* When the loaded CRL's nextUpdate is (BG_ENOTFOUND without a CRL). */
int bg_trust_crl_next_update(bg_trust *t, time_t *out, bg_err *err);
/* The loaded CRL's CRL Number (BG_ENOTFOUND without a CRL; 0 for a CRL without one). */
int bg_trust_crl_number(bg_trust *t, uint64_t *out, bg_err *err);

void bg_trust_get_stats(bg_trust *t, bg_trust_stats *out);

/* A short stable name for a reason ("revoked", ...). */
const char *bg_trust_reason_name(bg_trust_reason reason);

#endif
