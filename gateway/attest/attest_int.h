/*
 * attest_int.h - internals shared by the attest module's files; not part of
 * the API.
 *
 * Heights: attest_check.c (refusals, the issuer's certificate) at the bottom;
 * attest_form.c (building, field helpers) and attest_wire.c (encode, decode)
 * on it; attest_status.c (status lists) and attest_verify.c (verification)
 * on top. No file calls one above it.
 */
#ifndef BG_ATTEST_INT_H
#define BG_ATTEST_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/evp.h>
#include <protobuf-c/protobuf-c.h>

#include "certs/trust.h"
#include "common/err.h"
#include "gateway/attest/attest.h"
#include "peers/roster.h"

#define BG_ATTEST_DB BG_SNAP_DIGESTBYTES
#define BG_ATTEST_DAY 86400

/* --- attest_check.c --- */

/* Records a refusal: *reason (if not NULL) and the message; returns code. */
int bg_attest_refuse(bg_attest_reason *reason, bg_attest_reason r, bg_err *err, int code,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* err's message with prefix in front, and code: for passing an inner failure on. */
int bg_attest_rewrap(bg_err *err, int code, const char *prefix);

/* *key = the public key of a current, roster-pinned certificate of city; else a refusal
 * (as_status: every certificate reason becomes STATUS_CERT, the message says which). */
int bg_attest_issuer_key(bg_trust *trust, const bg_roster_member *m, const char *city,
                         const uint8_t *der, size_t len, time_t now, bool as_status, EVP_PKEY **key,
                         bg_attest_reason *reason, bg_err *err);

/* The common rank and grade of grade in member m's scale, per the roster;
 * checks the scale's name (SCALE_MISMATCH). */
int bg_attest_common_of(const bg_roster *roster, const bg_roster_member *m, const char *scale,
                        const char *grade, uint32_t *rank, const char **common,
                        bg_attest_reason *reason, bg_err *err);

/* --- attest_form.c --- */

/* Copies a protobuf string of 1..max bytes (0..max if may_be_empty) into out. */
bool bg_attest_str_in(char *out, const char *s, size_t max, bool may_be_empty);

/* Days since 1970-01-01 of a Unix time (floor). */
int64_t bg_attest_days_of(time_t t);

/* --- attest_wire.c --- */

/* A protobuf bytes field over p[0..n) (not copied). */
ProtobufCBinaryData bg_attest_bin(const uint8_t *p, size_t n);

#endif
