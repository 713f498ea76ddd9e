/*
 * pki_int.h - helpers shared by the certs/ sources; not part of the API.
 *
 * File writing comes in two safe forms: _new never replaces an existing file
 * (temp file + link(2), which fails if the target exists), _replace always
 * does, atomically (temp file + rename(2)). Both fsync the data and then the
 * directory, so after a crash the path holds either nothing/the old file or
 * the complete new one. Temp files are created with open(O_CREAT|O_EXCL,
 * mode), so a key is never readable by others, not even for an instant.
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

/* Sets err to code with the formatted message, followed by ": " and the
 * earliest OpenSSL error in this thread's queue (if any); empties the queue. */
int bg_pki_ossl_fail(bg_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* True iff key is an EC key on P-256 (named curve, not explicit parameters). */
bool bg_pki_key_is_p256(EVP_PKEY *key);


/* A subjectAltName extension holding exactly DNS:city (NULL on failure). */
X509_EXTENSION *bg_pki_san_ext(const char *city);


#endif
