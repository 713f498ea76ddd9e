/*
 * fuzz_pki.h - a real federation for the harnesses that need one, made once
 * per process in the scratch directory: a CA, two cities (Guangzhou 440100
 * asks, Shenzhen 440300 answers) with keys, certificates and envelope
 * identities, a current CRL, a trust verifier, and a roster compiled from
 * BG_FUZZ_ROSTER_INI and signed by the CA. Everything is made fresh with
 * random keys, so a harness that needs signed bytes seals them itself.
 */
#ifndef BG_FUZZ_PKI_H
#define BG_FUZZ_PKI_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "certs/pki.h"
#include "certs/trust.h"
#include "peers/envelope.h"
#include "peers/roster.h"
#include "peers/roster_ini.h"

#define BG_FUZZ_GZ "440100"
#define BG_FUZZ_SZ "440300"

typedef struct bg_fuzz_city {
    const char *code;
    EVP_PKEY *key;
    X509 *cert;
    uint8_t *der; /* OPENSSL_malloc'd */
    size_t der_len;
    bg_env_identity *id;
} bg_fuzz_city;

typedef struct bg_fuzz_pki {
    bg_pki_ca *ca;
    X509 *ca_cert; /* owned by ca */
    X509_CRL *crl;
    bg_trust *trust;
    bg_fuzz_city gz, sz;
    bg_roster *roster;
    uint8_t *roster_pb; /* the signed roster (malloc'd) */
    size_t roster_pb_len;
} bg_fuzz_pki;

/* The roster source: certificates are the files "440100.crt" and "440300.crt"
 * in the scratch directory. */
extern const char BG_FUZZ_ROSTER_INI[];

/* The federation, made on first call; aborts if it cannot be. */
const bg_fuzz_pki *bg_fuzz_pki_get(void);

/* The roster callback of an envelope verifier: the fixture roster's pins. */
int bg_fuzz_member_fp(void *ctx, const char *city, uint8_t fp_out[][BG_SIG_FP_LEN], size_t *n);

#endif
