/*
 * attest_form.c - an attestation made on the asker's side from an opened snapshot
 * entry (bg_attest_build), and the small field helpers.
 */
#include "gateway/attest/attest.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "domain/date.h"
#include "gateway/attest/attest_int.h"

bool
bg_attest_str_in(char *out, const char *s, size_t max, bool may_be_empty)
{
    if (s == NULL)
        return false;
    size_t n = strnlen(s, max + 1);
    if (n > max || (n == 0 && !may_be_empty))
        return false;
    memcpy(out, s, n);
    out[n] = '\0';
    return true;
}

void
bg_attest_date_text(int32_t days, char out[11])
{
    if (days == BG_SNAP_NO_DATE)
        snprintf(out, 11, "none");
    else
        bg_date_format(days, out);
}

int64_t
bg_attest_days_of(time_t t)
{
    int64_t s = (int64_t)t;
    return s >= 0 ? s / BG_ATTEST_DAY : -((-s + BG_ATTEST_DAY - 1) / BG_ATTEST_DAY);
}

static bool
record_eq(const bg_snap_record *a, const bg_snap_record *b)
{
    return a->input_len == b->input_len && memcmp(a->input, b->input, a->input_len) == 0 &&
           strcmp(a->payload.grade, b->payload.grade) == 0 &&
           strcmp(a->payload.scale, b->payload.scale) == 0 &&
           a->payload.evaluated_at == b->payload.evaluated_at &&
           a->payload.valid_until == b->payload.valid_until &&
           a->payload.listed_at == b->payload.listed_at &&
           a->payload.expires_at == b->payload.expires_at && a->payload.serial == b->payload.serial;
}

/* The statement half of an attestation: what the issuer said, and the
 * evidence naming the sealed entry it was opened from. */
static void
statement(bg_attest *out, const char *issuer, const bg_snap_record *rec, const char *common,
          uint32_t rank, const uint8_t *tag, const uint8_t *sealed)
{
    snprintf(out->issuer, sizeof out->issuer, "%s", issuer);
    memcpy(out->uscc, rec->input, rec->input_len);
    snprintf(out->grade, sizeof out->grade, "%s", rec->payload.grade);
    snprintf(out->scale, sizeof out->scale, "%s", rec->payload.scale);
    snprintf(out->common_grade, sizeof out->common_grade, "%s", common);
    out->common_rank = rank;
    out->evaluated_at = rec->payload.evaluated_at;
    out->valid_until = rec->payload.valid_until;
    out->listed_at = rec->payload.listed_at;
    out->expires_at = rec->payload.expires_at;
    out->serial = rec->payload.serial;
    bg_snap_leaf_hash(out->evidence, tag, sealed);
}

int
bg_attest_build(bg_attest *out, const char *issuer, const bg_snap *snap,
                const bg_snap_prover *prover, size_t index, const bg_snap_record *rec,
                const uint8_t key[BG_SNAP_OPENKEYBYTES], const uint8_t *digest_sig, size_t sig_len,
                const uint8_t *cert_der, size_t cert_len, const bg_roster *roster, bg_err *err)
{
    if (out == NULL || issuer == NULL || snap == NULL || rec == NULL || key == NULL ||
        digest_sig == NULL || cert_der == NULL || roster == NULL)
        return bg_err_set(err, BG_EINVAL, "attest build: NULL argument");
    memset(out, 0, sizeof *out);
    if (!bg_city_code_valid(issuer))
        return bg_err_set(err, BG_EINVAL, "attest build: issuer '%s' is not a city code", issuer);
    bg_snap_info info;
    bg_snap_get_info(snap, &info);
    if (!info.graded)
        return bg_err_set(err, BG_EINVAL, "attest build: list %s carries no evaluations",
                          info.list);
    if (index >= info.count)
        return bg_err_set(err, BG_EINVAL, "attest build: entry %zu of %zu", index, info.count);
    if (sig_len == 0 || sig_len > BG_SIG_MAX || cert_len == 0 || cert_len > BG_ATTEST_CERT_MAX)
        return bg_err_set(err, BG_EINVAL,
                          "attest build: signature of %zu bytes (1..%d), certificate of %zu "
                          "bytes (1..%u)",
                          sig_len, BG_SIG_MAX, cert_len, BG_ATTEST_CERT_MAX);
    if (rec->input_len == 0 || rec->input_len > BG_SNAP_INPUT_MAX ||
        memchr(rec->input, '\0', rec->input_len) != NULL)
        return bg_err_set(err, BG_EINVAL, "attest build: the record's input is not a USCC");

    const uint8_t *tag = bg_snap_tag_at(snap, index), *sealed = bg_snap_sealed_at(snap, index);
    bg_snap_record chk;
    int rc = bg_snap_open_sealed(key, info.list, info.generation, tag, sealed, &chk, err);
    if (rc != BG_OK)
        return rc;
    bool same = record_eq(&chk, rec);
    sodium_memzero(&chk, sizeof chk);
    if (!same)
        return bg_err_set(err, BG_EINVAL, "attest build: entry %zu opens to another record", index);

    X509 *cert = NULL;
    if ((rc = bg_pki_cert_from_der(cert_der, cert_len, &cert, err)) != BG_OK)
        return rc;
    rc = bg_sig_verify_cert(cert, BG_SIG_CTX_SNAPSHOT, info.digest, BG_ATTEST_DB, digest_sig,
                            sig_len, err);
    X509_free(cert);
    if (rc != BG_OK)
        return bg_attest_rewrap(err, rc, "attest build: the digest signature: ");

    const bg_roster_member *m = bg_roster_member_find(roster, issuer);
    if (m == NULL)
        return bg_err_set(err, BG_ENOTFOUND, "attest build: %s is not in the roster", issuer);
    uint32_t rank = 0;
    const char *common = NULL;
    if ((rc = bg_attest_common_of(roster, m, rec->payload.scale, rec->payload.grade, &rank, &common,
                                  NULL, err)) != BG_OK)
        return bg_attest_rewrap(err, BG_EINVAL, "attest build: ");

    size_t plen = 0;
    rc = prover != NULL ? bg_snap_prover_path(prover, index, &out->path[0][0], &plen, err)
                        : bg_snap_inclusion_proof(snap, index, &out->path[0][0], &plen, 1, err);
    if (rc != BG_OK)
        return rc;
    /* Self-check: a prover of another snapshot would give a path to another root. */
    if ((rc = bg_snap_inclusion_verify(tag, sealed, index, info.count, &out->path[0][0], plen,
                                       info.root, err)) != BG_OK)
        return bg_attest_rewrap(err, BG_EINVAL, "attest build (prover of another snapshot?): ");

    statement(out, issuer, rec, common, rank, tag, sealed);
    snprintf(out->list, sizeof out->list, "%s", info.list);
    out->generation = info.generation;
    out->epoch = info.epoch;
    out->count = (uint32_t)info.count;
    out->flags = 1; /* graded */
    memcpy(out->root, info.root, BG_ATTEST_DB);
    out->index = (uint32_t)index;
    memcpy(out->tag, tag, BG_SNAP_TAGBYTES);
    memcpy(out->sealed, sealed, BG_SNAP_SEALEDBYTES);
    memcpy(out->opening_key, key, BG_SNAP_OPENKEYBYTES);
    out->path_len = plen;
    memcpy(out->signature, digest_sig, sig_len);
    out->signature_len = sig_len;
    memcpy(out->cert, cert_der, cert_len);
    out->cert_len = cert_len;
    return BG_OK;
}
