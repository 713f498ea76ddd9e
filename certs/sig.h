/*
 * sig.h - ECDSA P-256 signatures over byte strings, and certificate fingerprints.
 *
 * One city key signs several kinds of things (envelopes, list snapshots,
 * attestations), and the CA key signs the roster. So that a signature made
 * for one kind can never be presented as another, every signature is bound
 * to a context label: what is signed is SHA-256(label || 0x00 || data). The
 * label is a NUL-free ASCII string; use the BG_SIG_CTX_* constants below
 * rather than inventing labels at call sites. data is signed exactly as
 * given: sign the bytes sent, verify the bytes received, never a
 * re-serialisation.
 *
 * Signatures are DER ECDSA-Sig-Value, at most BG_SIG_MAX bytes, with s in the
 * lower half of the group order ("low-S"). bg_sig_verify refuses high-S and
 * non-canonical DER, so each (key, label, data) has one valid encoding per
 * signing: a signature cannot be altered into another valid one.
 *
 * Keys must be P-256; EVP_PKEY objects are only read, so one key may be used
 * from several threads at once.
 */
#ifndef BG_SIG_H
#define BG_SIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "common/err.h"

/* Longest DER ECDSA P-256 signature: SEQUENCE { INTEGER r, INTEGER s }. */
#define BG_SIG_MAX 72
/* Longest context label, in bytes. */
#define BG_SIG_CTX_MAX 64

/* Context labels for what baygate signs. */
#define BG_SIG_CTX_ENVELOPE "baygate/envelope/v1"
#define BG_SIG_CTX_SNAPSHOT "baygate/snapshot/v1"
#define BG_SIG_CTX_ATTESTATION "baygate/attestation/v1"
#define BG_SIG_CTX_ROSTER "baygate/roster/v1"
#define BG_SIG_CTX_TREE_HEAD "baygate/tree-head/v1"
#define BG_SIG_CTX_COSIGN "baygate/cosignature/v1"
#define BG_SIG_CTX_STATUS "baygate/status-list/v1"
#define BG_SIG_CTX_LOSS "baygate/loss-statement/v1"

/* A SHA-256 certificate fingerprint and its lower-case hex form. */
#define BG_SIG_FP_LEN 32
#define BG_SIG_FP_HEX_LEN (2 * BG_SIG_FP_LEN)

/* Signs data[0..len) under ctx with a P-256 private key. Writes the DER
 * signature to sig (BG_SIG_MAX bytes) and its length to *siglen. */
int bg_sig_sign(EVP_PKEY *key, const char *ctx, const void *data, size_t len,
                uint8_t sig[BG_SIG_MAX], size_t *siglen, bg_err *err);

/* BG_OK iff sig is a valid low-S signature of data under ctx by key's public
 * half; BG_ECRYPTO ("signature does not verify") otherwise. */
int bg_sig_verify(EVP_PKEY *key, const char *ctx, const void *data, size_t len, const uint8_t *sig,
                  size_t siglen, bg_err *err);

/* Same, with the public key of a certificate. Checks the signature only: use
 * bg_trust to decide whether the certificate is to be believed. */
int bg_sig_verify_cert(X509 *cert, const char *ctx, const void *data, size_t len,
                       const uint8_t *sig, size_t siglen, bg_err *err);

/* Whether the private key key belongs to cert (so what it signs verifies
 * under cert): checked before signing with a key loaded beside its
 * certificate. */
bool bg_sig_key_matches(X509 *cert, EVP_PKEY *key);

/* SHA-256 of a certificate's DER encoding: what the roster and the envelope's
 * certificate_sha256 carry. */
int bg_sig_fingerprint(X509 *cert, uint8_t fp[BG_SIG_FP_LEN], bg_err *err);
/* SHA-256 of DER bytes as received. */
int bg_sig_fingerprint_der(const uint8_t *der, size_t len, uint8_t fp[BG_SIG_FP_LEN], bg_err *err);
void bg_sig_fp_hex(const uint8_t fp[BG_SIG_FP_LEN], char out[BG_SIG_FP_HEX_LEN + 1]);
/* The inverse: exactly BG_SIG_FP_HEX_LEN hex digits (either case) into fp;
 * false (fp untouched) for anything else. */
bool bg_sig_fp_parse(const char *hex, uint8_t fp[BG_SIG_FP_LEN]);

#endif
