/*
 * pki.h - the federation PKI: keys, CSRs, the CA directory, certificates, CRLs.
 *
 * Everything is ECDSA P-256 (mbedTLS inside nng 1.5.2 cannot use Ed25519) and
 * SHA-256, through OpenSSL 3. Private keys are PKCS#8 PEM, unencrypted (nng
 * cannot take an encrypted key), created 0600 with O_EXCL and never replaced;
 * loading refuses a key file that group or others can read. Public files
 * (certificates, CRLs, the CA index) are written atomically: temp file, fsync,
 * rename, fsync of the directory.
 *
 * A city's identity is its 6-digit division code. A city certificate carries
 * it twice, as subject CN and as the only DNS SAN (mbedTLS matches DNS SANs
 * only), with EKU serverAuth + clientAuth, keyUsage digitalSignature and
 * basicConstraints CA:FALSE. The CA never copies names from a CSR it has not
 * checked: it builds the subject itself from the validated CN and O.
 *
 * CA directory (bg_pki_ca_*): ca.key (0600), ca.crt, index.txt (issued
 * certificates and the CRL counter; see bg_pki_issued; see ca.c for the
 * format) and ca.lock. An open
 * bg_pki_ca holds an exclusive flock on ca.lock (a shared one when opened only
 * to read the index), so concurrent operator commands serialise instead of
 * losing index updates.
 *
 * Every function returns BG_OK or a BG_E* code with a message in err; OpenSSL's
 * error queue text is appended where it helps, and the queue is always left
 * empty on return.
 */
#ifndef BG_PKI_H
#define BG_PKI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "certs/sig.h"
#include "common/err.h"
#include "domain/city.h"

/* Longest organisation / federation name, in bytes (an X.520 ub-name is 64). */
#define BG_PKI_NAME_MAX 64
/* Largest PEM or DER object any bg_pki loader reads (certs are ~700 bytes). */
#define BG_PKI_FILE_MAX (1024 * 1024)
/* Longest serial number in upper-case hex (RFC 5280: at most 20 octets). */
#define BG_PKI_SERIAL_HEX_MAX 40
/* "2026-01-31T23:59:59Z" plus NUL. */
#define BG_PKI_TIME_LEN 21
/* Clock skew allowance: certificates and CRLs start this many seconds early,
 * so a peer whose clock is a little behind does not see them as not yet valid. */
#define BG_PKI_SKEW 300

/* True iff name is 1..BG_PKI_NAME_MAX bytes of UTF-8 without control
 * characters or surrounding spaces (it goes into a DN and a config file). */
bool bg_pki_name_valid(const char *name);

/* --- time: certificates speak UTC seconds --- */

/* Formats t as "YYYY-MM-DDTHH:MM:SSZ". */
void bg_pki_time_format(time_t t, char out[BG_PKI_TIME_LEN]);

/* Parses "YYYY-MM-DD" (midnight UTC) or "YYYY-MM-DDTHH:MM:SSZ". */
int bg_pki_time_parse(const char *s, time_t *out, bg_err *err);

/* ASN1_TIME (as in certificates and CRLs) to Unix seconds. */
int bg_pki_asn1_time(const ASN1_TIME *t, time_t *out, bg_err *err);

/* --- keys --- */

/* A fresh ECDSA P-256 key pair. */
int bg_pki_key_generate(EVP_PKEY **out, bg_err *err);

/* Writes key as unencrypted PKCS#8 PEM to a new file, mode 0600 from the
 * start (open(O_CREAT|O_EXCL, 0600) on a temp name, then link(2), which never
 * replaces anything); BG_EEXIST if path exists. */
int bg_pki_key_write_new(const char *path, EVP_PKEY *key, bg_err *err);

/* Loads a P-256 private key. The file must not be readable by group/others. */
int bg_pki_key_load(const char *path, EVP_PKEY **out, bg_err *err);
int bg_pki_key_load_mem(const void *pem, size_t len, EVP_PKEY **out, bg_err *err);

/* SHA-256 of the DER SubjectPublicKeyInfo: lets an operator confirm out of
 * band that the CSR received is the one the city made. */
int bg_pki_key_fingerprint(EVP_PKEY *key, uint8_t fp[BG_SIG_FP_LEN], bg_err *err);

/* Unencrypted PKCS#8 PEM of key in memory, the form nng's tls config takes.
 * Free *pem with bg_pki_secret_free(*pem, *len), which cleanses it first. */
int bg_pki_key_pem(EVP_PKEY *key, char **pem, size_t *len, bg_err *err);
void bg_pki_secret_free(void *p, size_t len);

/* --- certificates, CSRs, CRLs: loading and writing --- */

int bg_pki_cert_load(const char *path, X509 **out, bg_err *err);
int bg_pki_cert_load_mem(const void *pem, size_t len, X509 **out, bg_err *err);
/* Exactly one DER certificate, no trailing bytes. */
int bg_pki_cert_from_der(const uint8_t *der, size_t len, X509 **out, bg_err *err);
/* DER encoding in a new buffer; free with OPENSSL_free. */
int bg_pki_cert_to_der(X509 *cert, uint8_t **der, size_t *len, bg_err *err);
/* PEM, atomically replacing path, mode 0644. */
int bg_pki_cert_write(const char *path, X509 *cert, bg_err *err);
/* PEM in memory (for nng's tls config); free with OPENSSL_free. */
int bg_pki_cert_pem(X509 *cert, char **pem, size_t *len, bg_err *err);

int bg_pki_csr_load(const char *path, X509_REQ **out, bg_err *err);
int bg_pki_csr_load_mem(const void *pem, size_t len, X509_REQ **out, bg_err *err);
/* PEM to a new file (O_EXCL), mode 0644. */
int bg_pki_csr_write_new(const char *path, X509_REQ *req, bg_err *err);

int bg_pki_crl_load(const char *path, X509_CRL **out, bg_err *err);
int bg_pki_crl_load_mem(const void *pem, size_t len, X509_CRL **out, bg_err *err);
/* PEM, atomically replacing path, mode 0644. */
int bg_pki_crl_write(const char *path, X509_CRL *crl, bg_err *err);
/* PEM in memory; free with OPENSSL_free. */
int bg_pki_crl_pem(X509_CRL *crl, char **pem, size_t *len, bg_err *err);

/* --- names and facts read from objects --- */

/* The subject CN of cert if it is a valid city code (exactly one CN). */
int bg_pki_cert_city(X509 *cert, char city[BG_CITY_CODE_LEN + 1], bg_err *err);

/* Serial number as upper-case hex in whole octets (BN_bn2hex's form), as the
 * CA index and 'baygate ca' print it. */
int bg_pki_cert_serial_hex(X509 *cert, char out[BG_PKI_SERIAL_HEX_MAX + 1], bg_err *err);

/* The CRL's nextUpdate (BG_EINVAL if it has none), and seconds from now until
 * then: negative once it has passed. Gateways warn well before zero, because an
 * expired CRL makes every peer fail (in mbedTLS and in bg_trust alike). */
int bg_pki_crl_next_update(const X509_CRL *crl, time_t *out, bg_err *err);
int bg_pki_crl_seconds_left(const X509_CRL *crl, time_t now, int64_t *out, bg_err *err);

/* The CRL number extension; BG_ENOTFOUND if absent. */
int bg_pki_crl_number(const X509_CRL *crl, uint64_t *out, bg_err *err);

/* Does crl revoke the certificate with this serial (hex, any case, as the CA
 * index and bg_pki_cert_serial_hex write it)? BG_OK with *when (if not NULL)
 * its revocation date; BG_ENOTFOUND if not. Check the CRL's signature first
 * (bg_trust_new): this reads only its list. */
int bg_pki_crl_revoked(const X509_CRL *crl, const char *serial_hex, time_t *when, bg_err *err);

/* --- city side: the CSR a gateway sends to the federation operator --- */

/* CSR signed by key: subject CN=city, O=name; requested extension: the DNS
 * SAN city. */
int bg_pki_csr_make(EVP_PKEY *key, const char *city, const char *name, X509_REQ **out, bg_err *err);

/* Checks a CSR as the CA does before issuing: self-signature valid, P-256 key,
 * exactly one CN that is a city code, exactly one valid O, and any requested
 * SAN is exactly DNS:city. Fills city and name. */
int bg_pki_csr_check(X509_REQ *req, char city[BG_CITY_CODE_LEN + 1], char name[BG_PKI_NAME_MAX + 1],
                     bg_err *err);

/* --- the CA directory --- */

typedef struct bg_pki_ca bg_pki_ca;

/* One line of the CA index: a certificate the CA issued. */
typedef struct bg_pki_issued {
    char serial[BG_PKI_SERIAL_HEX_MAX + 1];
    char city[BG_CITY_CODE_LEN + 1];
    time_t not_after;
    uint8_t fingerprint[BG_SIG_FP_LEN];
    time_t revoked_at; /* 0: not revoked */
} bg_pki_issued;

#define BG_PKI_CA_DAYS_DEFAULT 3650
#define BG_PKI_CITY_DAYS_DEFAULT 365
#define BG_PKI_CRL_DAYS_DEFAULT 7
#define BG_PKI_CA_NAME_DEFAULT "Greater Bay Area Credit Federation"

/*
 * Creates a CA in dir (made 0700 if missing; an existing dir must not hold a
 * CA already: BG_EEXIST). The root's subject is O=name, CN=name, nothing
 * random: two CAs made with the same name have the same DN and differ only in
 * key, serial and SKI, so relying parties must check signatures, not names.
 * Validity starts BG_PKI_SKEW seconds ago and lasts days. On failure nothing
 * is left behind.
 */
int bg_pki_ca_init(const char *dir, const char *name, int days, bg_err *err);

/* Opens a CA directory for issuing, revoking and CRLs, taking its lock. */
int bg_pki_ca_open(bg_pki_ca **out, const char *dir, bg_err *err);
/* Opens it for reading the certificate and the index only: the private key is
 * not loaded (bg_pki_ca_key gives NULL), and the lock is shared, so any number
 * of readers wait only for a writer. Nothing that issues or signs may be called. */
int bg_pki_ca_open_index(bg_pki_ca **out, const char *dir, bg_err *err);
void bg_pki_ca_close(bg_pki_ca *ca);

/* The CA certificate (owned by ca). */
X509 *bg_pki_ca_cert(const bg_pki_ca *ca);
/* The CA private key (owned by ca): for signing the roster. */
EVP_PKEY *bg_pki_ca_key(const bg_pki_ca *ca);

/* The index, in issuing order. */
size_t bg_pki_ca_count(const bg_pki_ca *ca);
const bg_pki_issued *bg_pki_ca_entry(const bg_pki_ca *ca, size_t i);

/*
 * Issues a city certificate for a CSR (checked with bg_pki_csr_check) valid
 * from not_before to not_after, with a fresh random 128-bit serial, and
 * records it in the index before returning it (an issued certificate is never
 * unrecorded). The certificate may not outlive the CA. Past validity is
 * allowed on purpose: tests need expired certificates.
 */
int bg_pki_ca_issue(bg_pki_ca *ca, X509_REQ *req, time_t not_before, time_t not_after, X509 **out,
                    bg_err *err);

/* Marks certificates revoked at time when: the one with serial (hex, any
 * case) if serial is not NULL, else every unrevoked certificate of city.
 * *count (if not NULL) gets how many; BG_ENOTFOUND if none (BG_EEXIST for a
 * serial already revoked). Takes effect for peers with the next CRL. */
int bg_pki_ca_revoke(bg_pki_ca *ca, const char *city, const char *serial, time_t when,
                     size_t *count, bg_err *err);

/* A v2 CRL of every revoked certificate, lastUpdate now - BG_PKI_SKEW,
 * nextUpdate now + seconds, with the next CRL number (persisted first, so
 * numbers never repeat) and the CA's AKI. A past now makes an expired CRL,
 * for tests. */
int bg_pki_ca_crl(bg_pki_ca *ca, time_t now, int64_t seconds, X509_CRL **out, bg_err *err);

#endif
