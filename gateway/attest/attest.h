/*
 * attest.h - evaluation attestations and status lists: a city's evaluation of an
 * enterprise as a statement other cities can verify offline, and its revocation.
 *
 * Why no per-entry signature: the issuer already signs each snapshot digest
 * (BG_SIG_CTX_SNAPSHOT), which commits to a Merkle root over all entries (mpc/snapshot.h).
 * The asker holds the whole snapshot, so after opening its entry it can carry the proof:
 *
 *   statement  issuer city, USCC, grade + scale (issuer's), common grade + rank (the
 *              signed roster's grade_map), evaluated_at, valid_until, serial, listed_at,
 *              expires_at, evidence
 *   proof      list, generation, epoch, count, flags (the snapshot header), root, entry
 *              index, tag, sealed, opening key, audit path, the digest signature, the
 *              issuer certificate (DER)
 *
 * Evidence = the Merkle leaf hash BLAKE2b-256(0x00 || tag || sealed) of the entry the
 * statement was opened from. Why that: it is what the signed root commits to, so it names
 * exactly one sealed record and nothing else; it reveals nothing (the sealed bytes are
 * already in every asker's copy of the snapshot and only the opening key opens them); and
 * because sealing is deterministic (synthetic IV), an unchanged record under the same key
 * generation keeps the same evidence across epochs while any change to the record gives a
 * new one. Two attestations with equal evidence state the same sealed record.
 *
 * Verification (bg_attest_verify), in this order, stopping at the first failure with a
 * reason code and a message naming it:
 *   1. structure: version 1, every length exact or bounded (BG_ATTEST_MALFORMED);
 *   2. the issuer is a roster member (ISSUER_UNKNOWN);
 *   3. its certificate: one DER certificate chaining to the federation CA, not revoked by
 *      the CRL (if one is loaded, and that CRL current), within validity at `now`, a city
 *      certificate naming the issuer (CERT_CHAIN, CERT_REVOKED, CERT_CRL, CERT_VALIDITY,
 *      CERT_NAME: certs/trust.h);
 *   4. it is the certificate the roster pins for the issuer (CERT_NOT_PINNED): a rotated
 *      certificate means re-issued snapshots and attestations;
 *   5. digest = bg_snap_digest_compute(header, root); the signature over it verifies under
 *      the certificate's key (BAD_SIGNATURE);
 *   6. evidence = leaf hash of (tag, sealed) (EVIDENCE_MISMATCH), and the audit path leads
 *      from that leaf at index of count to the root (BAD_INCLUSION);
 *   7. the sealed payload opens with the opening key under (list, generation, tag)
 *      (BAD_OPENING) and every statement field equals the sealed record (FIELD_MISMATCH,
 *      naming the field);
 *   8. the scale is the issuer's roster scale and the grade one of its grades
 *      (SCALE_MISMATCH); common rank and grade equal the roster mapping (COMMON_MISMATCH);
 *   9. evaluated_at <= today <= valid_until, days in UTC (NOT_YET_VALID, EXPIRED);
 *  10. the issuer's status list (required): parses, signed by a current certificate of
 *      the issuer (the same checks 3-4), for this issuer, number >= min_status_number,
 *      issued no longer than status_max_age ago (STATUS_MISSING, STATUS_MALFORMED,
 *      STATUS_WRONG_ISSUER, STATUS_BAD_SIGNATURE, STATUS_STALE); the serial is not on it
 *      (REVOKED).
 * Nothing in the attestation is trusted before it is recomputed: the verifier learns the
 * one entry's plaintext and nothing else (mpc/snapshot.h "per-entry evidence").
 *
 * Status lists: each city publishes a SignedStatusList (proto/attest.proto): the
 * serialised StatusList {version 1, issuer, number (>= 1, strictly increasing per issuer),
 * issued_at (Unix s), revoked: (serial, revoked_at) with strictly increasing serials}, the
 * issuer's signature over exactly those bytes under BG_SIG_CTX_STATUS, and the issuer's
 * certificate. A revoked serial stays on every later list (lists are cumulative), so the
 * newest list alone decides.
 *
 * Serials: the issuer's record serial as sealed (gateway/store: unique per evaluation
 * record, new whenever it changes; the import that changes or removes a record revokes
 * its old serial, and the issuer's next status list carries it).
 *
 * Formats are protobuf (proto/attest.proto); the parser refuses more than
 * BG_ATTEST_MAX_BYTES / BG_ATTEST_STATUS_MAX_BYTES, unknown fields, and any field of the
 * wrong size, and unpacks under bg_pb_unpack's budget.
 * Thread safety: all functions are reentrant; a bg_attest_status is immutable once made.
 */
#ifndef BG_ATTEST_H
#define BG_ATTEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "certs/pki.h"
#include "certs/sig.h"
#include "certs/trust.h"
#include "common/err.h"
#include "domain/scale.h"
#include "mpc/snapshot.h"
#include "peers/roster.h"

#define BG_ATTEST_VERSION 1U
#define BG_ATTEST_CERT_MAX 8192U        /* DER issuer certificate (a city's is ~700 bytes) */
#define BG_ATTEST_MAX_BYTES (16 * 1024) /* a serialised attestation */
#define BG_ATTEST_STATUS_MAX_ENTRIES (1U << 20)
#define BG_ATTEST_STATUS_MAX_BYTES (32U * 1024U * 1024U)

/* Why an attestation or status list was refused. Stable: map to wire codes. */
typedef enum bg_attest_reason {
    BG_ATTEST_OK = 0,
    BG_ATTEST_MALFORMED,         /* does not parse, a length or value out of bounds */
    BG_ATTEST_ISSUER_UNKNOWN,    /* the issuer is not a roster member */
    BG_ATTEST_CERT_CHAIN,        /* not one federation city certificate (chain, usage, DER) */
    BG_ATTEST_CERT_REVOKED,      /* on the CRL */
    BG_ATTEST_CERT_CRL,          /* the loaded CRL is expired or unusable */
    BG_ATTEST_CERT_VALIDITY,     /* expired or not yet valid at now */
    BG_ATTEST_CERT_NAME,         /* names another city */
    BG_ATTEST_CERT_NOT_PINNED,   /* not the certificate the roster pins for the issuer */
    BG_ATTEST_BAD_SIGNATURE,     /* the snapshot digest signature does not verify */
    BG_ATTEST_EVIDENCE_MISMATCH, /* evidence is not the entry's leaf hash */
    BG_ATTEST_BAD_INCLUSION,     /* the audit path does not lead to the signed root */
    BG_ATTEST_BAD_OPENING,       /* the sealed payload does not open with the key */
    BG_ATTEST_FIELD_MISMATCH,    /* a statement field differs from the sealed record */
    BG_ATTEST_SCALE_MISMATCH,    /* scale or grade not the issuer's roster scale */
    BG_ATTEST_COMMON_MISMATCH,   /* common grade/rank not the roster mapping */
    BG_ATTEST_NOT_YET_VALID,     /* evaluated_at is after today */
    BG_ATTEST_EXPIRED,           /* valid_until has passed */
    BG_ATTEST_REVOKED,           /* the serial is on the issuer's status list */
    BG_ATTEST_STATUS_MISSING,    /* no status list given */
    BG_ATTEST_STATUS_MALFORMED,
    BG_ATTEST_STATUS_WRONG_ISSUER, /* a list of another city */
    BG_ATTEST_STATUS_BAD_SIGNATURE,
    BG_ATTEST_STATUS_STALE, /* number below the required one, or issued too long ago */
    BG_ATTEST_STATUS_CERT,  /* the list's certificate fails checks 3-4 */
    BG_ATTEST_INTERNAL,     /* out of memory, bad arguments */
} bg_attest_reason;

/* A short stable name ("revoked", "bad-inclusion", ...). */
const char *bg_attest_reason_name(bg_attest_reason r);

/* A statement date (days since 1970-01-01, or BG_SNAP_NO_DATE) as YYYY-MM-DD, or "none". */
void bg_attest_date_text(int32_t days, char out[11]);

/* An attestation, statement and proof. Plain data: copy freely; strings NUL-terminated. */
typedef struct bg_attest {
    /* statement */
    char issuer[BG_CITY_CODE_LEN + 1];
    char uscc[BG_SNAP_INPUT_MAX + 1];
    char grade[BG_SNAP_GRADE_MAX + 1];
    char scale[BG_SNAP_SCALE_MAX + 1];
    char common_grade[BG_GRADE_MAX + 1];
    uint32_t common_rank;                                     /* 1 = best */
    int32_t evaluated_at, valid_until, listed_at, expires_at; /* days; BG_SNAP_NO_DATE */
    uint64_t serial;
    uint8_t evidence[BG_SNAP_DIGESTBYTES];
    /* proof: the snapshot header */
    char list[BG_SNAP_LIST_MAX + 1];
    uint64_t generation, epoch;
    uint32_t count, flags;
    uint8_t root[BG_SNAP_DIGESTBYTES];
    /* proof: the entry */
    uint32_t index;
    uint8_t tag[BG_SNAP_TAGBYTES];
    uint8_t sealed[BG_SNAP_SEALEDBYTES];
    uint8_t opening_key[BG_SNAP_OPENKEYBYTES];
    uint8_t path[BG_SNAP_PATH_MAX][BG_SNAP_DIGESTBYTES];
    size_t path_len;
    /* proof: the issuer's word */
    uint8_t signature[BG_SIG_MAX];
    size_t signature_len;
    uint8_t cert[BG_ATTEST_CERT_MAX];
    size_t cert_len;
} bg_attest;

/*
 * Asker side: the attestation of entry `index` of the issuer's graded snapshot `snap`,
 * opened as `rec` with opening key `key` (bg_snap_open_key), given the issuer's signature
 * over the snapshot digest (as received with the snapshot) and the certificate it was
 * verified with (DER), and the roster for the common grade. prover (may be NULL: one pass
 * over the snapshot) is a bg_snap_prover of snap. Checks what it assembles: the key opens
 * the entry to rec, the signature verifies under cert over snap's digest, the scale and
 * grade map in the roster (BG_EINVAL / BG_ECRYPTO / BG_ENOTFOUND with a message). It does
 * not judge the certificate's trust: that is bg_attest_verify's job (and the asker's
 * snapshot fetch already did it). The key is copied into *out: the caller wipes its own.
 */
int bg_attest_build(bg_attest *out, const char *issuer, const bg_snap *snap,
                    const bg_snap_prover *prover, size_t index, const bg_snap_record *rec,
                    const uint8_t key[BG_SNAP_OPENKEYBYTES], const uint8_t *digest_sig,
                    size_t sig_len, const uint8_t *cert_der, size_t cert_len,
                    const bg_roster *roster, bg_err *err);

/* Serialises (proto Attestation) into a malloc'd buffer: free() it. */
int bg_attest_encode(const bg_attest *a, uint8_t **out, size_t *len, bg_err *err);

/* Parses strictly: BG_ELIMIT over BG_ATTEST_MAX_BYTES, BG_EPROTO for anything malformed
 * (naming the field). Nothing is verified: see bg_attest_verify. */
int bg_attest_decode(const uint8_t *bytes, size_t len, bg_attest *out, bg_err *err);

/* What the verifier demands of the issuer's status list beyond its signature. */
typedef struct bg_attest_policy {
    uint64_t min_status_number; /* refuse a list numbered below (0: any) */
    int64_t status_max_age;     /* seconds; refuse a list issued longer ago (0: no limit) */
} bg_attest_policy;

/*
 * Verifies a (decoded) attestation at now as described above. trust holds the federation
 * CA and optionally its CRL; status (status_len bytes) is the issuer's SignedStatusList
 * (NULL: STATUS_MISSING); pol may be NULL (no demands). BG_OK and *reason BG_ATTEST_OK if
 * the attestation holds; else BG_ECRYPTO (refused) with *reason and a message in err, or
 * BG_EINVAL/BG_ENOMEM (reason INTERNAL) for bad arguments or resources.
 */
int bg_attest_verify(const bg_attest *a, bg_trust *trust, const bg_roster *roster,
                     const uint8_t *status, size_t status_len, const bg_attest_policy *pol,
                     time_t now, bg_attest_reason *reason, bg_err *err);

/*
 * Many attestations of one signed snapshot (a graded answer's matches): b, given
 * `verified`, an attestation bg_attest_verify accepted at now, and st, the issuer's status
 * list it was checked against (bg_attest_status_open). b's issuer, certificate, snapshot
 * header, root and signature must be byte for byte verified's (else BG_EINVAL: verify b
 * on its own), so checks 2-5 and the list's own checks hold for b as well; b's structure,
 * entry (6-9) and serial are then checked as bg_attest_verify does. Returns as it does.
 */
typedef struct bg_attest_status bg_attest_status;
int bg_attest_verify_sibling(const bg_attest *b, const bg_attest *verified, const bg_roster *roster,
                             const bg_attest_status *st, time_t now, bg_attest_reason *reason,
                             bg_err *err);

/* ---- status lists ---- */

typedef struct bg_attest_revoked {
    uint64_t serial;
    int64_t revoked_at; /* Unix seconds */
} bg_attest_revoked;

/*
 * Issuer side: signs the status list number (>= 1) of issuer at issued_at holding the n
 * revocations (any order; sorted here; a serial twice is BG_EINVAL, as are n >
 * BG_ATTEST_STATUS_MAX_ENTRIES and a negative revoked_at) with the issuer's key, embedding
 * its certificate. *out is malloc'd: free() it.
 */
int bg_attest_status_sign(const char *issuer, uint64_t number, int64_t issued_at,
                          const bg_attest_revoked *revoked, size_t n, EVP_PKEY *key, X509 *cert,
                          uint8_t **out, size_t *len, bg_err *err);

/*
 * Opens and verifies a SignedStatusList: size, structure (serials strictly increasing),
 * the certificate (trust + roster pin, for expected_issuer), the list is expected_issuer's,
 * the signature over the exact bytes, number >= pol->min_status_number and age within
 * pol->status_max_age (pol may be NULL). BG_OK with *out, else BG_ECRYPTO (BG_ELIMIT when
 * too large) with *reason (STATUS_*) and a message.
 */
int bg_attest_status_open(const uint8_t *bytes, size_t len, bg_trust *trust,
                          const bg_roster *roster, const char *expected_issuer,
                          const bg_attest_policy *pol, time_t now, bg_attest_status **out,
                          bg_attest_reason *reason, bg_err *err);

/* Parses and checks the structure only, signature NOT verified (for 'status-show'). */
int bg_attest_status_inspect(const uint8_t *bytes, size_t len, bg_attest_status **out, bg_err *err);

void bg_attest_status_free(bg_attest_status *s);

const char *bg_attest_status_issuer(const bg_attest_status *s);
uint64_t bg_attest_status_number(const bg_attest_status *s);
int64_t bg_attest_status_issued_at(const bg_attest_status *s);
size_t bg_attest_status_count(const bg_attest_status *s);
const bg_attest_revoked *bg_attest_status_at(const bg_attest_status *s, size_t i);
/* The issuer certificate the list carries (DER; verified by bg_attest_status_open). */
const uint8_t *bg_attest_status_cert(const bg_attest_status *s, size_t *len);

/* Binary search: true iff serial is on the list; *revoked_at (may be NULL) gets when. */
bool bg_attest_status_is_revoked(const bg_attest_status *s, uint64_t serial, int64_t *revoked_at);

#endif
