/*
 * pki_int.h - helpers shared by the certs/ sources; not part of the API.
 *
 * Heights inside certs/: pki_ossl.c (OpenSSL error text, the P-256 check) at
 * the bottom; sig.c on it; pki.c on both (key fingerprints are signatures'
 * SHA-256); ca.c and trust.c on top. Crash-safe file writing is
 * common/file.h.
 */
#ifndef BG_PKI_INT_H
#define BG_PKI_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "common/err.h"
#include "common/file.h"

/* --- pki_ossl.c: below everything else in certs/ --- */

/* Sets err to code with the formatted message, followed by ": " and the
 * earliest OpenSSL error in this thread's queue (if any); empties the queue. */
int bg_pki_ossl_fail(bg_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* True iff key is an EC key on P-256 (named curve, not explicit parameters). */
bool bg_pki_key_is_p256(EVP_PKEY *key);

/* --- pki.c --- */

/* A subjectAltName extension holding exactly DNS:city (NULL on failure). */
X509_EXTENSION *bg_pki_san_ext(const char *city);

#endif
