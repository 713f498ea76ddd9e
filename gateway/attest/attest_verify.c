/*
 * attest_verify.c - verifying an attestation offline, every check in the order of
 * attest.h, and a sibling against one already verified.
 */
#include "gateway/attest/attest.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/attest/attest_int.h"

/* Step 7: the statement equals the sealed record, field by field; NULL or the field. */
static const char *
statement_diff(const bg_attest *a, const bg_snap_record *r)
{
    size_t ul = strlen(a->uscc);
    if (ul != r->input_len || memcmp(a->uscc, r->input, ul) != 0)
        return "uscc";
    if (strcmp(a->grade, r->payload.grade) != 0)
        return "grade";
    if (strcmp(a->scale, r->payload.scale) != 0)
        return "scale";
    if (a->evaluated_at != r->payload.evaluated_at)
        return "evaluated_at";
    if (a->valid_until != r->payload.valid_until)
        return "valid_until";
    if (a->listed_at != r->payload.listed_at)
        return "listed_at";
    if (a->expires_at != r->payload.expires_at)
        return "expires_at";
    if (a->serial != r->payload.serial)
        return "serial";
    return NULL;
}

/* 1. structure: a bg_attest may have been filled by hand, not by the decoder. */
static int
check_structure(const bg_attest *a, bg_attest_reason *reason, bg_err *err)
{
    if (memchr(a->issuer, '\0', sizeof a->issuer) == NULL || !bg_city_code_valid(a->issuer) ||
        memchr(a->uscc, '\0', sizeof a->uscc) == NULL || a->uscc[0] == '\0' ||
        memchr(a->grade, '\0', sizeof a->grade) == NULL ||
        memchr(a->scale, '\0', sizeof a->scale) == NULL ||
        memchr(a->common_grade, '\0', sizeof a->common_grade) == NULL ||
        memchr(a->list, '\0', sizeof a->list) == NULL || a->flags != 1 || a->count == 0 ||
        a->count > BG_SNAP_MAX_ENTRIES || a->index >= a->count || a->path_len > BG_SNAP_PATH_MAX ||
        a->signature_len == 0 || a->signature_len > BG_SIG_MAX || a->cert_len == 0 ||
        a->cert_len > BG_ATTEST_CERT_MAX)
        return bg_attest_refuse(reason, BG_ATTEST_MALFORMED, err, BG_ECRYPTO,
                                "malformed attestation (a field out of bounds)");
    if (a->valid_until == BG_SNAP_NO_DATE || a->evaluated_at == BG_SNAP_NO_DATE)
        return bg_attest_refuse(reason, BG_ATTEST_MALFORMED, err, BG_ECRYPTO,
                                "the evaluation has no evaluated_at or valid_until date");
    return BG_OK;
}

/* 6-9: the entry is in the signed root, opens to the statement, maps to the common scale
 * as the roster says, and is in its validity period. m: the issuer's roster entry. */
static int
check_entry(const bg_attest *a, const bg_roster *roster, const bg_roster_member *m, time_t now,
            bg_attest_reason *reason, bg_err *err)
{
    int rc;
    /* 6. the entry is in it. */
    uint8_t leaf[BG_ATTEST_DB];
    bg_snap_leaf_hash(leaf, a->tag, a->sealed);
    if (sodium_memcmp(leaf, a->evidence, BG_ATTEST_DB) != 0)
        return bg_attest_refuse(reason, BG_ATTEST_EVIDENCE_MISMATCH, err, BG_ECRYPTO,
                                "evidence is not the leaf hash of the entry");
    bg_err perr = {0};
    rc = bg_snap_inclusion_verify(a->tag, a->sealed, a->index, a->count, &a->path[0][0],
                                  a->path_len, a->root, &perr);
    if (rc != BG_OK)
        return bg_attest_refuse(reason, BG_ATTEST_BAD_INCLUSION, err, BG_ECRYPTO, "%s", perr.msg);

    /* 7. it says what the statement says. */
    bg_snap_record rec;
    rc =
        bg_snap_open_sealed(a->opening_key, a->list, a->generation, a->tag, a->sealed, &rec, &perr);
    if (rc != BG_OK)
        return bg_attest_refuse(reason, BG_ATTEST_BAD_OPENING, err, BG_ECRYPTO,
                                "entry %" PRIu32 ": %s", a->index, perr.msg);
    const char *diff = statement_diff(a, &rec);
    char sealed_grade[BG_SNAP_GRADE_MAX + 1];
    snprintf(sealed_grade, sizeof sealed_grade, "%s", rec.payload.grade);
    sodium_memzero(&rec, sizeof rec);
    if (diff != NULL)
        return bg_attest_refuse(reason, BG_ATTEST_FIELD_MISMATCH, err, BG_ECRYPTO,
                                "the statement's %s is not what %s sealed%s%s%s", diff, a->issuer,
                                strcmp(diff, "grade") == 0 ? " (sealed: " : "",
                                strcmp(diff, "grade") == 0 ? sealed_grade : "",
                                strcmp(diff, "grade") == 0 ? ")" : "");

    /* 8. both scales. */
    uint32_t rank = 0;
    const char *common = NULL;
    if ((rc = bg_attest_common_of(roster, m, a->scale, a->grade, &rank, &common, reason, err)) !=
        BG_OK)
        return rc;
    if (rank != a->common_rank || strcmp(common, a->common_grade) != 0)
        return bg_attest_refuse(reason, BG_ATTEST_COMMON_MISMATCH, err, BG_ECRYPTO,
                                "common grade '%s' (rank %" PRIu32
                                ") is not the roster's mapping of %s's "
                                "'%s': '%s' (rank %" PRIu32 ")",
                                a->common_grade, a->common_rank, a->issuer, a->grade, common, rank);

    /* 9. in its validity period. */
    int64_t today = bg_attest_days_of(now);
    char d1[11], d2[11];
    bg_attest_date_text(a->evaluated_at, d1);
    bg_attest_date_text(a->valid_until, d2);
    if (today < a->evaluated_at)
        return bg_attest_refuse(reason, BG_ATTEST_NOT_YET_VALID, err, BG_ECRYPTO,
                                "evaluated on %s, after today", d1);
    if (today > a->valid_until)
        return bg_attest_refuse(reason, BG_ATTEST_EXPIRED, err, BG_ECRYPTO,
                                "expired: valid until %s", d2);

    return BG_OK;
}

/* 10, for one serial: not on the issuer's (already opened and checked) status list. */
static int
check_not_revoked(const bg_attest *a, const bg_attest_status *st, bg_attest_reason *reason,
                  bg_err *err)
{
    int64_t when = 0;
    if (!bg_attest_status_is_revoked(st, a->serial, &when))
        return BG_OK;
    char t[BG_PKI_TIME_LEN];
    bg_pki_time_format((time_t)when, t);
    return bg_attest_refuse(reason, BG_ATTEST_REVOKED, err, BG_ECRYPTO,
                            "serial %" PRIu64 " revoked at %s (status list %" PRIu64 " of %s)",
                            a->serial, t, bg_attest_status_number(st), a->issuer);
}

int
bg_attest_verify(const bg_attest *a, bg_trust *trust, const bg_roster *roster,
                 const uint8_t *status, size_t status_len, const bg_attest_policy *pol, time_t now,
                 bg_attest_reason *reason, bg_err *err)
{
    if (reason != NULL)
        *reason = BG_ATTEST_INTERNAL;
    if (a == NULL || trust == NULL || roster == NULL)
        return bg_err_set(err, BG_EINVAL, "attest verify: NULL argument");
    int rc = check_structure(a, reason, err);
    if (rc != BG_OK)
        return rc;
    /* 2. who. */
    const bg_roster_member *m = bg_roster_member_find(roster, a->issuer);
    if (m == NULL)
        return bg_attest_refuse(
            reason, BG_ATTEST_ISSUER_UNKNOWN, err, BG_ECRYPTO,
            "issuer %s is not a member of the federation (roster serial %" PRIu64 ")", a->issuer,
            bg_roster_serial(roster));

    /* 3-4. the issuer's certificate. */
    EVP_PKEY *key = NULL;
    rc = bg_attest_issuer_key(trust, m, a->issuer, a->cert, a->cert_len, now, false, &key, reason,
                              err);
    if (rc != BG_OK)
        return rc;

    /* 5. the issuer signed this snapshot's digest. */
    uint8_t digest[BG_ATTEST_DB];
    rc =
        bg_snap_digest_compute(a->list, a->generation, a->epoch, a->count, 1, a->root, digest, err);
    if (rc != BG_OK) {
        EVP_PKEY_free(key);
        return bg_attest_refuse(reason, BG_ATTEST_MALFORMED, err, BG_ECRYPTO,
                                "malformed attestation: %s", err ? err->msg : "snapshot header");
    }
    rc = bg_sig_verify(key, BG_SIG_CTX_SNAPSHOT, digest, BG_ATTEST_DB, a->signature,
                       a->signature_len, NULL);
    EVP_PKEY_free(key);
    if (rc != BG_OK)
        return bg_attest_refuse(
            reason, BG_ATTEST_BAD_SIGNATURE, err, BG_ECRYPTO,
            "the snapshot digest signature does not verify under %s's certificate "
            "(%s generation %" PRIu64 " epoch %" PRIu64 ")",
            a->issuer, a->list, a->generation, a->epoch);

    if ((rc = check_entry(a, roster, m, now, reason, err)) != BG_OK)
        return rc;

    /* 10. not revoked. */
    bg_attest_status *st = NULL;
    rc = bg_attest_status_open(status, status_len, trust, roster, a->issuer, pol, now, &st, reason,
                               err);
    if (rc != BG_OK)
        return rc;
    rc = check_not_revoked(a, st, reason, err);
    bg_attest_status_free(st);
    if (rc != BG_OK)
        return rc;
    if (reason != NULL)
        *reason = BG_ATTEST_OK;
    bg_err_clear(err);
    return BG_OK;
}

int
bg_attest_verify_sibling(const bg_attest *b, const bg_attest *verified, const bg_roster *roster,
                         const bg_attest_status *st, time_t now, bg_attest_reason *reason,
                         bg_err *err)
{
    if (reason != NULL)
        *reason = BG_ATTEST_INTERNAL;
    if (b == NULL || verified == NULL || roster == NULL || st == NULL)
        return bg_err_set(err, BG_EINVAL, "attest verify: NULL argument");
    int rc = check_structure(b, reason, err);
    if (rc != BG_OK)
        return rc;
    /* Steps 2-5 and the list's own checks hold for b iff what they read is the same. */
    if (strcmp(b->issuer, verified->issuer) != 0 || strcmp(b->list, verified->list) != 0 ||
        b->generation != verified->generation || b->epoch != verified->epoch ||
        b->count != verified->count || b->flags != verified->flags ||
        memcmp(b->root, verified->root, BG_ATTEST_DB) != 0 || b->cert_len != verified->cert_len ||
        memcmp(b->cert, verified->cert, b->cert_len) != 0 ||
        b->signature_len != verified->signature_len ||
        memcmp(b->signature, verified->signature, b->signature_len) != 0 ||
        strcmp(bg_attest_status_issuer(st), b->issuer) != 0)
        return bg_attest_refuse(
            reason, BG_ATTEST_INTERNAL, err, BG_EINVAL,
            "not an attestation of the same signed snapshot: verify it on its own");
    const bg_roster_member *m = bg_roster_member_find(roster, b->issuer);
    if (m == NULL)
        return bg_attest_refuse(reason, BG_ATTEST_ISSUER_UNKNOWN, err, BG_ECRYPTO,
                                "issuer %s is not a member of the federation", b->issuer);
    if ((rc = check_entry(b, roster, m, now, reason, err)) != BG_OK ||
        (rc = check_not_revoked(b, st, reason, err)) != BG_OK)
        return rc;
    if (reason != NULL)
        *reason = BG_ATTEST_OK;
    bg_err_clear(err);
    return BG_OK;
}
