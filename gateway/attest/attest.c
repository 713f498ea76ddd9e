/*
 * attest.c - evaluation attestations (build, wire form, verification) and status lists;
 * see attest.h for the contract and the order of checks.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/attest/attest.h"
#include "domain/date.h"
#include "proto/attest.pb-c.h"
#include "proto/pb.h"

#define DB BG_SNAP_DIGESTBYTES
#define DAY 86400

/* ---- small helpers ---- */

static const char *const reason_names[] = {
    [BG_ATTEST_OK] = "ok",
    [BG_ATTEST_MALFORMED] = "malformed",
    [BG_ATTEST_ISSUER_UNKNOWN] = "issuer-unknown",
    [BG_ATTEST_CERT_CHAIN] = "certificate-chain",
    [BG_ATTEST_CERT_REVOKED] = "certificate-revoked",
    [BG_ATTEST_CERT_CRL] = "certificate-crl",
    [BG_ATTEST_CERT_VALIDITY] = "certificate-validity",
    [BG_ATTEST_CERT_NAME] = "certificate-name",
    [BG_ATTEST_CERT_NOT_PINNED] = "certificate-not-pinned",
    [BG_ATTEST_BAD_SIGNATURE] = "bad-signature",
    [BG_ATTEST_EVIDENCE_MISMATCH] = "evidence-mismatch",
    [BG_ATTEST_BAD_INCLUSION] = "bad-inclusion",
    [BG_ATTEST_BAD_OPENING] = "bad-opening",
    [BG_ATTEST_FIELD_MISMATCH] = "field-mismatch",
    [BG_ATTEST_SCALE_MISMATCH] = "scale-mismatch",
    [BG_ATTEST_COMMON_MISMATCH] = "common-grade-mismatch",
    [BG_ATTEST_NOT_YET_VALID] = "not-yet-valid",
    [BG_ATTEST_EXPIRED] = "expired",
    [BG_ATTEST_REVOKED] = "revoked",
    [BG_ATTEST_STATUS_MISSING] = "status-missing",
    [BG_ATTEST_STATUS_MALFORMED] = "status-malformed",
    [BG_ATTEST_STATUS_WRONG_ISSUER] = "status-wrong-issuer",
    [BG_ATTEST_STATUS_BAD_SIGNATURE] = "status-bad-signature",
    [BG_ATTEST_STATUS_STALE] = "status-stale",
    [BG_ATTEST_STATUS_CERT] = "status-certificate",
    [BG_ATTEST_INTERNAL] = "internal",
};

const char *
bg_attest_reason_name(bg_attest_reason r)
{
    if ((unsigned)r >= sizeof reason_names / sizeof reason_names[0] || reason_names[r] == NULL)
        return "unknown";
    return reason_names[r];
}

/* Records a refusal: *reason and the message; returns BG_ECRYPTO (or code). */
static int refuse(bg_attest_reason *reason, bg_attest_reason r, bg_err *err, int code,
                  const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int
refuse(bg_attest_reason *reason, bg_attest_reason r, bg_err *err, int code, const char *fmt, ...)
{
    if (reason != NULL)
        *reason = r;
    if (err != NULL) {
        /* Through a copy: the arguments may be err->msg itself. */
        char buf[BG_ERR_MSG_MAX];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf, sizeof buf, fmt, ap);
        va_end(ap);
        memcpy(err->msg, buf, sizeof buf);
        err->code = code;
    }
    return code;
}

/* err's message with prefix in front, and code: for passing an inner failure on. */
static int
rewrap(bg_err *err, int code, const char *prefix)
{
    if (err == NULL)
        return code;
    size_t cap = sizeof err->msg - 1, pl = strlen(prefix), ml = strnlen(err->msg, cap);
    if (pl > cap)
        pl = cap;
    if (pl + ml > cap)
        ml = cap - pl;
    memmove(err->msg + pl, err->msg, ml);
    memcpy(err->msg, prefix, pl);
    err->msg[pl + ml] = '\0';
    err->code = code;
    return code;
}

/* Copies a protobuf string of 1..max bytes (0..max if may_be_empty) into out. */
static bool
str_in(char *out, const char *s, size_t max, bool may_be_empty)
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

/* Days since 1970-01-01 of a Unix time (floor). */
static int64_t
days_of(time_t t)
{
    int64_t s = (int64_t)t;
    return s >= 0 ? s / DAY : -((-s + DAY - 1) / DAY);
}

/* ---- certificates: trust (chain, CRL, validity, name) and the roster's pin ---- */

static bg_attest_reason
from_trust(bg_trust_reason r)
{
    switch (r) {
    case BG_TRUST_REVOKED:
        return BG_ATTEST_CERT_REVOKED;
    case BG_TRUST_EXPIRED:
    case BG_TRUST_NOT_YET_VALID:
        return BG_ATTEST_CERT_VALIDITY;
    case BG_TRUST_CRL_EXPIRED:
    case BG_TRUST_CRL_INVALID:
        return BG_ATTEST_CERT_CRL;
    case BG_TRUST_WRONG_CITY:
        return BG_ATTEST_CERT_NAME;
    case BG_TRUST_INTERNAL:
        return BG_ATTEST_INTERNAL;
    default:
        return BG_ATTEST_CERT_CHAIN;
    }
}

/* *key = the public key of a current, roster-pinned certificate of city; else a refusal
 * (as_status: every certificate reason becomes STATUS_CERT, the message says which). */
static int
issuer_key(bg_trust *trust, const bg_roster_member *m, const char *city, const uint8_t *der,
           size_t len, time_t now, bool as_status, EVP_PKEY **key, bg_attest_reason *reason,
           bg_err *err)
{
    const char *what = as_status ? "status list certificate" : "issuer certificate";
    bg_trust_result res;
    bg_err terr = {0};
    *key = NULL;
    int rc = bg_trust_verify_at(trust, der, len, city, now, &res, key, &terr);
    if (rc != BG_OK) {
        bg_attest_reason r = from_trust(res.reason);
        if (rc == BG_ENOMEM || rc == BG_EINVAL)
            r = BG_ATTEST_INTERNAL;
        return refuse(reason, as_status && r != BG_ATTEST_INTERNAL ? BG_ATTEST_STATUS_CERT : r, err,
                      r == BG_ATTEST_INTERNAL ? rc : BG_ECRYPTO, "%s of %s: %s", what, city,
                      terr.msg);
    }
    if (sodium_memcmp(res.fingerprint, m->cert_sha256, BG_SIG_FP_LEN) != 0) {
        EVP_PKEY_free(*key);
        *key = NULL;
        char have[BG_SIG_FP_HEX_LEN + 1], pinned[BG_SIG_FP_HEX_LEN + 1];
        bg_sig_fp_hex(res.fingerprint, have);
        bg_sig_fp_hex(m->cert_sha256, pinned);
        return refuse(reason, as_status ? BG_ATTEST_STATUS_CERT : BG_ATTEST_CERT_NOT_PINNED, err,
                      BG_ECRYPTO,
                      "%s of %s is not the one the roster pins (sha256 %.16s..., roster %.16s...)",
                      what, city, have, pinned);
    }
    return BG_OK;
}

/* ---- build (asker side) ---- */

/* The common rank and grade of grade in member m's scale; checks the scale's name. */
static int
common_of(const bg_roster *roster, const bg_roster_member *m, const char *scale, const char *grade,
          uint32_t *rank, const char **common, bg_attest_reason *reason, bg_err *err)
{
    if (strcmp(scale, m->scale.name) != 0)
        return refuse(reason, BG_ATTEST_SCALE_MISMATCH, err, BG_ECRYPTO,
                      "%s grades in scale '%s' per the roster, the evaluation names scale '%s'",
                      m->city, m->scale.name, scale);
    uint32_t r = bg_roster_member_rank(m, grade, strlen(grade));
    const bg_scale *cs = bg_roster_common_scale(roster);
    if (r == 0)
        return refuse(reason, BG_ATTEST_SCALE_MISMATCH, err, BG_ECRYPTO,
                      "grade '%s' is not in %s's scale '%s'", grade, m->city, m->scale.name);
    if (cs == NULL || r > cs->ngrades)
        return refuse(reason, BG_ATTEST_INTERNAL, err, BG_EINVAL,
                      "the roster maps %s's grade '%s' to rank %" PRIu32 ", outside the common "
                      "scale",
                      m->city, grade, r);
    *rank = r;
    *common = cs->grades[r - 1];
    return BG_OK;
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
    rc = bg_sig_verify_cert(cert, BG_SIG_CTX_SNAPSHOT, info.digest, DB, digest_sig, sig_len, err);
    X509_free(cert);
    if (rc != BG_OK)
        return rewrap(err, rc, "attest build: the digest signature: ");

    const bg_roster_member *m = bg_roster_member_find(roster, issuer);
    if (m == NULL)
        return bg_err_set(err, BG_ENOTFOUND, "attest build: %s is not in the roster", issuer);
    uint32_t rank = 0;
    const char *common = NULL;
    if ((rc = common_of(roster, m, rec->payload.scale, rec->payload.grade, &rank, &common, NULL,
                        err)) != BG_OK)
        return rewrap(err, BG_EINVAL, "attest build: ");

    size_t plen = 0;
    rc = prover != NULL ? bg_snap_prover_path(prover, index, &out->path[0][0], &plen, err)
                        : bg_snap_inclusion_proof(snap, index, &out->path[0][0], &plen, 1, err);
    if (rc != BG_OK)
        return rc;
    /* Self-check: a prover of another snapshot would give a path to another root. */
    if ((rc = bg_snap_inclusion_verify(tag, sealed, index, info.count, &out->path[0][0], plen,
                                       info.root, err)) != BG_OK)
        return rewrap(err, BG_EINVAL, "attest build (prover of another snapshot?): ");

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
    snprintf(out->list, sizeof out->list, "%s", info.list);
    out->generation = info.generation;
    out->epoch = info.epoch;
    out->count = (uint32_t)info.count;
    out->flags = 1; /* graded */
    memcpy(out->root, info.root, DB);
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

/* ---- wire form ---- */

static ProtobufCBinaryData
bin(const uint8_t *p, size_t n)
{
    ProtobufCBinaryData b = {.len = n, .data = (uint8_t *)p};
    return b;
}

int
bg_attest_encode(const bg_attest *a, uint8_t **out, size_t *len, bg_err *err)
{
    if (out != NULL)
        *out = NULL;
    if (len != NULL)
        *len = 0;
    if (a == NULL || out == NULL || len == NULL)
        return bg_err_set(err, BG_EINVAL, "attest encode: NULL argument");
    if (a->path_len > BG_SNAP_PATH_MAX || a->signature_len > BG_SIG_MAX ||
        a->cert_len > BG_ATTEST_CERT_MAX)
        return bg_err_set(err, BG_EINVAL, "attest encode: a length out of bounds");
    ProtobufCBinaryData path[BG_SNAP_PATH_MAX];
    for (size_t i = 0; i < a->path_len; i++)
        path[i] = bin(a->path[i], DB);
    Baygate__AttestationProof pr = BAYGATE__ATTESTATION_PROOF__INIT;
    pr.list = (char *)a->list;
    pr.generation = a->generation;
    pr.epoch = a->epoch;
    pr.count = a->count;
    pr.flags = a->flags;
    pr.index = a->index;
    pr.tag = bin(a->tag, sizeof a->tag);
    pr.sealed = bin(a->sealed, sizeof a->sealed);
    pr.opening_key = bin(a->opening_key, sizeof a->opening_key);
    pr.n_path = a->path_len;
    pr.path = path;
    pr.digest_signature = bin(a->signature, a->signature_len);
    pr.issuer_certificate = bin(a->cert, a->cert_len);
    pr.root = bin(a->root, sizeof a->root);
    Baygate__Attestation m = BAYGATE__ATTESTATION__INIT;
    m.version = BG_ATTEST_VERSION;
    m.issuer = (char *)a->issuer;
    m.uscc = (char *)a->uscc;
    m.grade = (char *)a->grade;
    m.scale = (char *)a->scale;
    m.common_grade = (char *)a->common_grade;
    m.common_rank = a->common_rank;
    m.evaluated_at = a->evaluated_at;
    m.valid_until = a->valid_until;
    m.serial = a->serial;
    m.evidence = bin(a->evidence, sizeof a->evidence);
    m.listed_at = a->listed_at;
    m.expires_at = a->expires_at;
    m.proof = &pr;
    size_t n = baygate__attestation__get_packed_size(&m);
    if (n > BG_ATTEST_MAX_BYTES)
        return bg_err_set(err, BG_ELIMIT, "attest encode: %zu bytes, at most %d", n,
                          BG_ATTEST_MAX_BYTES);
    uint8_t *b = malloc(n ? n : 1);
    if (b == NULL)
        return bg_err_set(err, BG_ENOMEM, "attest encode: out of memory");
    baygate__attestation__pack(&m, b);
    *out = b;
    *len = n;
    return BG_OK;
}

static bool
bytes_in(uint8_t *out, const ProtobufCBinaryData *b, size_t exact)
{
    if (b->len != exact || (exact > 0 && b->data == NULL))
        return false;
    memcpy(out, b->data, exact);
    return true;
}

/* Fields of a decoded Attestation into a (all lengths checked); NULL or the bad field. */
static const char *
decode_fields(const Baygate__Attestation *m, bg_attest *a)
{
    const Baygate__AttestationProof *p = m->proof;
    if (m->base.n_unknown_fields != 0)
        return "unknown fields";
    if (m->version != BG_ATTEST_VERSION)
        return "version";
    if (!str_in(a->issuer, m->issuer, BG_CITY_CODE_LEN, false) ||
        !bg_city_code_valid(a->issuer))
        return "issuer";
    if (!str_in(a->uscc, m->uscc, BG_SNAP_INPUT_MAX, false))
        return "uscc";
    if (!str_in(a->grade, m->grade, BG_SNAP_GRADE_MAX, false))
        return "grade";
    if (!str_in(a->scale, m->scale, BG_SNAP_SCALE_MAX, true))
        return "scale";
    if (!str_in(a->common_grade, m->common_grade, BG_GRADE_MAX, false))
        return "common_grade";
    if (m->common_rank == 0 || m->common_rank > BG_SCALE_MAX_GRADES)
        return "common_rank";
    a->common_rank = m->common_rank;
    a->evaluated_at = m->evaluated_at;
    a->valid_until = m->valid_until;
    a->listed_at = m->listed_at;
    a->expires_at = m->expires_at;
    a->serial = m->serial;
    if (!bytes_in(a->evidence, &m->evidence, DB))
        return "evidence";
    if (p == NULL)
        return "proof";
    if (p->base.n_unknown_fields != 0)
        return "proof: unknown fields";
    if (!str_in(a->list, p->list, BG_SNAP_LIST_MAX, false))
        return "proof.list";
    a->generation = p->generation;
    a->epoch = p->epoch;
    if (p->count == 0 || p->count > BG_SNAP_MAX_ENTRIES)
        return "proof.count";
    a->count = p->count;
    if (p->flags != 1)
        return "proof.flags (not a graded snapshot)";
    a->flags = p->flags;
    if (p->index >= p->count)
        return "proof.index";
    a->index = p->index;
    if (!bytes_in(a->tag, &p->tag, BG_SNAP_TAGBYTES))
        return "proof.tag";
    if (!bytes_in(a->sealed, &p->sealed, BG_SNAP_SEALEDBYTES))
        return "proof.sealed";
    if (!bytes_in(a->opening_key, &p->opening_key, BG_SNAP_OPENKEYBYTES))
        return "proof.opening_key";
    if (!bytes_in(a->root, &p->root, DB))
        return "proof.root";
    if (p->n_path > BG_SNAP_PATH_MAX)
        return "proof.path (too long)";
    for (size_t i = 0; i < p->n_path; i++)
        if (!bytes_in(a->path[i], &p->path[i], DB))
            return "proof.path";
    a->path_len = p->n_path;
    if (p->digest_signature.len == 0 || p->digest_signature.len > BG_SIG_MAX ||
        !bytes_in(a->signature, &p->digest_signature, p->digest_signature.len))
        return "proof.digest_signature";
    a->signature_len = p->digest_signature.len;
    if (p->issuer_certificate.len == 0 || p->issuer_certificate.len > BG_ATTEST_CERT_MAX ||
        !bytes_in(a->cert, &p->issuer_certificate, p->issuer_certificate.len))
        return "proof.issuer_certificate";
    a->cert_len = p->issuer_certificate.len;
    return NULL;
}

int
bg_attest_decode(const uint8_t *bytes, size_t len, bg_attest *out, bg_err *err)
{
    if (out == NULL || (bytes == NULL && len > 0))
        return bg_err_set(err, BG_EINVAL, "attest decode: NULL argument");
    memset(out, 0, sizeof *out);
    if (len > BG_ATTEST_MAX_BYTES)
        return bg_err_set(err, BG_ELIMIT, "attestation of %zu bytes, at most %d", len,
                          BG_ATTEST_MAX_BYTES);
    Baygate__Attestation *m = bg_pb_unpack(&baygate__attestation__descriptor, len, bytes);
    if (m == NULL)
        return bg_err_set(err, BG_EPROTO, "not an attestation (malformed protobuf)");
    const char *bad = decode_fields(m, out);
    bg_pb_free(m);
    if (bad != NULL) {
        sodium_memzero(out, sizeof *out);
        return bg_err_set(err, BG_EPROTO, "malformed attestation: %s", bad);
    }
    return BG_OK;
}

/* ---- status lists ---- */

struct bg_attest_status {
    char issuer[BG_CITY_CODE_LEN + 1];
    uint64_t number;
    int64_t issued_at;
    size_t n;
    bg_attest_revoked *e;             /* serials strictly increasing */
    uint8_t cert[BG_ATTEST_CERT_MAX]; /* the issuer certificate it carries (DER) */
    size_t cert_len;
};

void
bg_attest_status_free(bg_attest_status *s)
{
    if (s == NULL)
        return;
    free(s->e);
    free(s);
}

const char *
bg_attest_status_issuer(const bg_attest_status *s)
{
    return s->issuer;
}

uint64_t
bg_attest_status_number(const bg_attest_status *s)
{
    return s->number;
}

int64_t
bg_attest_status_issued_at(const bg_attest_status *s)
{
    return s->issued_at;
}

size_t
bg_attest_status_count(const bg_attest_status *s)
{
    return s->n;
}

const bg_attest_revoked *
bg_attest_status_at(const bg_attest_status *s, size_t i)
{
    return i < s->n ? &s->e[i] : NULL;
}

bool
bg_attest_status_is_revoked(const bg_attest_status *s, uint64_t serial, int64_t *revoked_at)
{
    size_t lo = 0, hi = s != NULL ? s->n : 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->e[mid].serial < serial) {
            lo = mid + 1;
        } else if (s->e[mid].serial > serial) {
            hi = mid;
        } else {
            if (revoked_at != NULL)
                *revoked_at = s->e[mid].revoked_at;
            return true;
        }
    }
    return false;
}

static int
revoked_cmp(const void *va, const void *vb)
{
    const bg_attest_revoked *a = va, *b = vb;
    return a->serial < b->serial ? -1 : a->serial > b->serial;
}

int
bg_attest_status_sign(const char *issuer, uint64_t number, int64_t issued_at,
                      const bg_attest_revoked *revoked, size_t n, EVP_PKEY *key, X509 *cert,
                      uint8_t **out, size_t *len, bg_err *err)
{
    if (out != NULL)
        *out = NULL;
    if (len != NULL)
        *len = 0;
    if (issuer == NULL || key == NULL || cert == NULL || out == NULL || len == NULL ||
        (n > 0 && revoked == NULL))
        return bg_err_set(err, BG_EINVAL, "status list: NULL argument");
    if (!bg_city_code_valid(issuer))
        return bg_err_set(err, BG_EINVAL, "status list: issuer '%s' is not a city code", issuer);
    if (number == 0)
        return bg_err_set(err, BG_EINVAL, "status list: numbers start at 1");
    if (issued_at < 0)
        return bg_err_set(err, BG_EINVAL, "status list: issued_at before 1970");
    if (n > BG_ATTEST_STATUS_MAX_ENTRIES)
        return bg_err_set(err, BG_EINVAL, "status list: %zu revocations, at most %u", n,
                          BG_ATTEST_STATUS_MAX_ENTRIES);
    bg_attest_revoked *sorted = malloc(sizeof *sorted * (n ? n : 1));
    Baygate__RevokedSerial *rs = malloc(sizeof *rs * (n ? n : 1));
    Baygate__RevokedSerial **rp = malloc(sizeof *rp * (n ? n : 1));
    uint8_t *body = NULL, *wrapped = NULL, *der = NULL;
    size_t der_len = 0;
    int rc = BG_OK;
    if (sorted == NULL || rs == NULL || rp == NULL) {
        rc = bg_err_set(err, BG_ENOMEM, "status list: out of memory");
        goto out;
    }
    if (n > 0)
        memcpy(sorted, revoked, sizeof *sorted * n);
    qsort(sorted, n, sizeof *sorted, revoked_cmp);
    for (size_t i = 0; i < n && rc == BG_OK; i++) {
        if (i > 0 && sorted[i].serial == sorted[i - 1].serial)
            rc = bg_err_set(err, BG_EINVAL, "status list: serial %" PRIu64 " given twice",
                            sorted[i].serial);
        else if (sorted[i].revoked_at < 0)
            rc = bg_err_set(err, BG_EINVAL, "status list: serial %" PRIu64 " revoked before 1970",
                            sorted[i].serial);
        baygate__revoked_serial__init(&rs[i]);
        rs[i].serial = sorted[i].serial;
        rs[i].revoked_at = sorted[i].revoked_at;
        rp[i] = &rs[i];
    }
    if (rc != BG_OK)
        goto out;
    Baygate__StatusList sl = BAYGATE__STATUS_LIST__INIT;
    sl.version = BG_ATTEST_VERSION;
    sl.issuer = (char *)issuer;
    sl.number = number;
    sl.issued_at = issued_at;
    sl.n_revoked = n;
    sl.revoked = rp;
    size_t blen = baygate__status_list__get_packed_size(&sl);
    if ((rc = bg_pki_cert_to_der(cert, &der, &der_len, err)) != BG_OK)
        goto out;
    if (der_len > BG_ATTEST_CERT_MAX) {
        rc = bg_err_set(err, BG_EINVAL, "status list: certificate of %zu bytes", der_len);
        goto out;
    }
    if ((body = malloc(blen ? blen : 1)) == NULL) {
        rc = bg_err_set(err, BG_ENOMEM, "status list: out of memory");
        goto out;
    }
    baygate__status_list__pack(&sl, body);
    uint8_t sig[BG_SIG_MAX];
    size_t sig_len = 0;
    if ((rc = bg_sig_sign(key, BG_SIG_CTX_STATUS, body, blen, sig, &sig_len, err)) != BG_OK)
        goto out;
    Baygate__SignedStatusList w = BAYGATE__SIGNED_STATUS_LIST__INIT;
    w.status_list = bin(body, blen);
    w.signature = bin(sig, sig_len);
    w.issuer_certificate = bin(der, der_len);
    size_t wlen = baygate__signed_status_list__get_packed_size(&w);
    if (wlen > BG_ATTEST_STATUS_MAX_BYTES) {
        rc = bg_err_set(err, BG_ELIMIT, "status list: %zu bytes, at most %u", wlen,
                        BG_ATTEST_STATUS_MAX_BYTES);
        goto out;
    }
    if ((wrapped = malloc(wlen)) == NULL) {
        rc = bg_err_set(err, BG_ENOMEM, "status list: out of memory");
        goto out;
    }
    baygate__signed_status_list__pack(&w, wrapped);
    *out = wrapped;
    *len = wlen;
    wrapped = NULL;
out:
    free(sorted);
    free(rs);
    free(rp);
    free(body);
    free(wrapped);
    OPENSSL_free(der);
    return rc;
}

/* The parsed pieces of a SignedStatusList, structure checked. */
struct status_parts {
    bg_attest_status *st;
    uint8_t *body; /* the signed bytes */
    size_t body_len;
    uint8_t sig[BG_SIG_MAX];
    size_t sig_len;
    uint8_t cert[BG_ATTEST_CERT_MAX];
    size_t cert_len;
};

static void
parts_free(struct status_parts *p)
{
    bg_attest_status_free(p->st);
    free(p->body);
    memset(p, 0, sizeof *p);
}

static int
status_parse(const uint8_t *bytes, size_t len, struct status_parts *p, bg_err *err)
{
    memset(p, 0, sizeof *p);
    if (bytes == NULL && len > 0)
        return bg_err_set(err, BG_EINVAL, "status list: NULL argument");
    if (len > BG_ATTEST_STATUS_MAX_BYTES)
        return bg_err_set(err, BG_ELIMIT, "status list of %zu bytes, at most %u", len,
                          BG_ATTEST_STATUS_MAX_BYTES);
    Baygate__SignedStatusList *w = bg_pb_unpack(&baygate__signed_status_list__descriptor, len, bytes);
    if (w == NULL)
        return bg_err_set(err, BG_EPROTO, "not a signed status list (malformed protobuf)");
    int rc = BG_OK;
    if (w->base.n_unknown_fields != 0 || w->status_list.len == 0 || w->signature.len == 0 ||
        w->signature.len > BG_SIG_MAX || w->issuer_certificate.len == 0 ||
        w->issuer_certificate.len > BG_ATTEST_CERT_MAX) {
        rc = bg_err_set(err, BG_EPROTO, "malformed signed status list (fields or lengths)");
        goto out;
    }
    p->body_len = w->status_list.len;
    if ((p->body = malloc(p->body_len)) == NULL) {
        rc = bg_err_set(err, BG_ENOMEM, "status list: out of memory");
        goto out;
    }
    memcpy(p->body, w->status_list.data, p->body_len);
    memcpy(p->sig, w->signature.data, w->signature.len);
    p->sig_len = w->signature.len;
    memcpy(p->cert, w->issuer_certificate.data, w->issuer_certificate.len);
    p->cert_len = w->issuer_certificate.len;

    Baygate__StatusList *sl = bg_pb_unpack(&baygate__status_list__descriptor, p->body_len, p->body);
    if (sl == NULL) {
        rc = bg_err_set(err, BG_EPROTO, "not a status list (malformed protobuf)");
        goto out;
    }
    bg_attest_status *st = calloc(1, sizeof *st);
    if (st == NULL ||
        (sl->n_revoked > 0 && (st->e = malloc(sizeof *st->e * sl->n_revoked)) == NULL)) {
        rc = bg_err_set(err, BG_ENOMEM, "status list: out of memory");
    } else if (sl->base.n_unknown_fields != 0 || sl->version != BG_ATTEST_VERSION) {
        rc = bg_err_set(err, BG_EPROTO, "malformed status list: version or unknown fields");
    } else if (!str_in(st->issuer, sl->issuer, BG_CITY_CODE_LEN, false) ||
               !bg_city_code_valid(st->issuer)) {
        rc = bg_err_set(err, BG_EPROTO, "malformed status list: issuer");
    } else if (sl->number == 0 || sl->issued_at < 0) {
        rc = bg_err_set(err, BG_EPROTO, "malformed status list: number or issued_at");
    } else if (sl->n_revoked > BG_ATTEST_STATUS_MAX_ENTRIES) {
        rc = bg_err_set(err, BG_EPROTO, "status list: %zu revocations, at most %u", sl->n_revoked,
                        BG_ATTEST_STATUS_MAX_ENTRIES);
    } else {
        st->number = sl->number;
        st->issued_at = sl->issued_at;
        memcpy(st->cert, p->cert, p->cert_len);
        st->cert_len = p->cert_len;
        for (size_t i = 0; i < sl->n_revoked && rc == BG_OK; i++) {
            const Baygate__RevokedSerial *r = sl->revoked[i];
            if (r->base.n_unknown_fields != 0 || r->revoked_at < 0)
                rc = bg_err_set(err, BG_EPROTO, "malformed status list: entry %zu", i);
            else if (i > 0 && r->serial <= st->e[i - 1].serial)
                rc = bg_err_set(err, BG_EPROTO,
                                "malformed status list: serial %" PRIu64 " at entry %zu is not "
                                "above the %" PRIu64 " before it (sorted, unique)",
                                r->serial, i, st->e[i - 1].serial);
            st->e[i].serial = r->serial;
            st->e[i].revoked_at = r->revoked_at;
        }
        st->n = sl->n_revoked;
    }
    bg_pb_free(sl);
    if (rc != BG_OK)
        bg_attest_status_free(st);
    else
        p->st = st;
out:
    bg_pb_free(w);
    if (rc != BG_OK)
        parts_free(p);
    return rc;
}

const uint8_t *
bg_attest_status_cert(const bg_attest_status *s, size_t *len)
{
    *len = s->cert_len;
    return s->cert;
}

int
bg_attest_status_inspect(const uint8_t *bytes, size_t len, bg_attest_status **out, bg_err *err)
{
    if (out == NULL)
        return bg_err_set(err, BG_EINVAL, "status list: NULL argument");
    *out = NULL;
    struct status_parts p;
    int rc = status_parse(bytes, len, &p, err);
    if (rc != BG_OK)
        return rc;
    *out = p.st;
    p.st = NULL;
    parts_free(&p);
    return BG_OK;
}

int
bg_attest_status_open(const uint8_t *bytes, size_t len, bg_trust *trust, const bg_roster *roster,
                      const char *expected_issuer, const bg_attest_policy *pol, time_t now,
                      bg_attest_status **out, bg_attest_reason *reason, bg_err *err)
{
    if (reason != NULL)
        *reason = BG_ATTEST_INTERNAL;
    if (out != NULL)
        *out = NULL;
    if (trust == NULL || roster == NULL || expected_issuer == NULL || out == NULL)
        return bg_err_set(err, BG_EINVAL, "status list: NULL argument");
    if (bytes == NULL || len == 0)
        return refuse(reason, BG_ATTEST_STATUS_MISSING, err, BG_ECRYPTO,
                      "no status list of %s given", expected_issuer);
    struct status_parts p;
    int rc = status_parse(bytes, len, &p, err);
    if (rc == BG_ENOMEM || rc == BG_EINVAL)
        return rc;
    if (rc != BG_OK)
        return refuse(reason, BG_ATTEST_STATUS_MALFORMED, err, rc == BG_ELIMIT ? rc : BG_ECRYPTO,
                      "status list: %s", err ? err->msg : "malformed");
    EVP_PKEY *key = NULL;
    const bg_roster_member *m = NULL;
    /* The issuer named first: another city's list is the honest mistake to name. */
    if (strcmp(p.st->issuer, expected_issuer) != 0) {
        rc = refuse(reason, BG_ATTEST_STATUS_WRONG_ISSUER, err, BG_ECRYPTO,
                    "the status list is %s's, not %s's", p.st->issuer, expected_issuer);
    } else if ((m = bg_roster_member_find(roster, expected_issuer)) == NULL) {
        rc = refuse(reason, BG_ATTEST_ISSUER_UNKNOWN, err, BG_ECRYPTO,
                    "status list issuer %s is not in the roster", expected_issuer);
    } else if ((rc = issuer_key(trust, m, expected_issuer, p.cert, p.cert_len, now, true, &key,
                                reason, err)) != BG_OK) {
        /* refused (or internal) with its reason */
    } else if (bg_sig_verify(key, BG_SIG_CTX_STATUS, p.body, p.body_len, p.sig, p.sig_len, NULL) !=
               BG_OK) {
        rc = refuse(reason, BG_ATTEST_STATUS_BAD_SIGNATURE, err, BG_ECRYPTO,
                    "status list %" PRIu64 " of %s: signature does not verify", p.st->number,
                    expected_issuer);
    } else if (pol != NULL && p.st->number < pol->min_status_number) {
        rc = refuse(reason, BG_ATTEST_STATUS_STALE, err, BG_ECRYPTO,
                    "status list %" PRIu64 " of %s is older than the %" PRIu64 " required",
                    p.st->number, expected_issuer, pol->min_status_number);
    } else if (p.st->issued_at > (int64_t)now + BG_PKI_SKEW) {
        rc = refuse(reason, BG_ATTEST_STATUS_MALFORMED, err, BG_ECRYPTO,
                    "status list %" PRIu64 " of %s is issued in the future", p.st->number,
                    expected_issuer);
    } else if (pol != NULL && pol->status_max_age > 0 &&
               (int64_t)now - p.st->issued_at > pol->status_max_age) {
        rc = refuse(reason, BG_ATTEST_STATUS_STALE, err, BG_ECRYPTO,
                    "status list %" PRIu64 " of %s was issued %" PRId64 " s ago, at most %" PRId64
                    " allowed",
                    p.st->number, expected_issuer, (int64_t)now - p.st->issued_at,
                    pol->status_max_age);
    }
    EVP_PKEY_free(key);
    if (rc == BG_OK) {
        *out = p.st;
        p.st = NULL;
        if (reason != NULL)
            *reason = BG_ATTEST_OK;
    }
    parts_free(&p);
    return rc;
}

/* ---- verification ---- */

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
        return refuse(reason, BG_ATTEST_MALFORMED, err, BG_ECRYPTO,
                      "malformed attestation (a field out of bounds)");
    if (a->valid_until == BG_SNAP_NO_DATE || a->evaluated_at == BG_SNAP_NO_DATE)
        return refuse(reason, BG_ATTEST_MALFORMED, err, BG_ECRYPTO,
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
    uint8_t leaf[DB];
    bg_snap_leaf_hash(leaf, a->tag, a->sealed);
    if (sodium_memcmp(leaf, a->evidence, DB) != 0)
        return refuse(reason, BG_ATTEST_EVIDENCE_MISMATCH, err, BG_ECRYPTO,
                      "evidence is not the leaf hash of the entry");
    bg_err perr = {0};
    rc = bg_snap_inclusion_verify(a->tag, a->sealed, a->index, a->count, &a->path[0][0],
                                  a->path_len, a->root, &perr);
    if (rc != BG_OK)
        return refuse(reason, BG_ATTEST_BAD_INCLUSION, err, BG_ECRYPTO, "%s", perr.msg);

    /* 7. it says what the statement says. */
    bg_snap_record rec;
    rc =
        bg_snap_open_sealed(a->opening_key, a->list, a->generation, a->tag, a->sealed, &rec, &perr);
    if (rc != BG_OK)
        return refuse(reason, BG_ATTEST_BAD_OPENING, err, BG_ECRYPTO, "entry %" PRIu32 ": %s",
                      a->index, perr.msg);
    const char *diff = statement_diff(a, &rec);
    char sealed_grade[BG_SNAP_GRADE_MAX + 1];
    snprintf(sealed_grade, sizeof sealed_grade, "%s", rec.payload.grade);
    sodium_memzero(&rec, sizeof rec);
    if (diff != NULL)
        return refuse(reason, BG_ATTEST_FIELD_MISMATCH, err, BG_ECRYPTO,
                      "the statement's %s is not what %s sealed%s%s%s", diff, a->issuer,
                      strcmp(diff, "grade") == 0 ? " (sealed: " : "",
                      strcmp(diff, "grade") == 0 ? sealed_grade : "",
                      strcmp(diff, "grade") == 0 ? ")" : "");

    /* 8. both scales. */
    uint32_t rank = 0;
    const char *common = NULL;
    if ((rc = common_of(roster, m, a->scale, a->grade, &rank, &common, reason, err)) != BG_OK)
        return rc;
    if (rank != a->common_rank || strcmp(common, a->common_grade) != 0)
        return refuse(reason, BG_ATTEST_COMMON_MISMATCH, err, BG_ECRYPTO,
                      "common grade '%s' (rank %" PRIu32 ") is not the roster's mapping of %s's "
                      "'%s': '%s' (rank %" PRIu32 ")",
                      a->common_grade, a->common_rank, a->issuer, a->grade, common, rank);

    /* 9. in its validity period. */
    int64_t today = days_of(now);
    char d1[11], d2[11];
    bg_attest_date_text(a->evaluated_at, d1);
    bg_attest_date_text(a->valid_until, d2);
    if (today < a->evaluated_at)
        return refuse(reason, BG_ATTEST_NOT_YET_VALID, err, BG_ECRYPTO,
                      "evaluated on %s, after today", d1);
    if (today > a->valid_until)
        return refuse(reason, BG_ATTEST_EXPIRED, err, BG_ECRYPTO, "expired: valid until %s", d2);

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
    return refuse(reason, BG_ATTEST_REVOKED, err, BG_ECRYPTO,
                  "serial %" PRIu64 " revoked at %s (status list %" PRIu64 " of %s)", a->serial, t,
                  bg_attest_status_number(st), a->issuer);
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
        return refuse(reason, BG_ATTEST_ISSUER_UNKNOWN, err, BG_ECRYPTO,
                      "issuer %s is not a member of the federation (roster serial %" PRIu64 ")",
                      a->issuer, bg_roster_serial(roster));

    /* 3-4. the issuer's certificate. */
    EVP_PKEY *key = NULL;
    rc = issuer_key(trust, m, a->issuer, a->cert, a->cert_len, now, false, &key, reason, err);
    if (rc != BG_OK)
        return rc;

    /* 5. the issuer signed this snapshot's digest. */
    uint8_t digest[DB];
    rc =
        bg_snap_digest_compute(a->list, a->generation, a->epoch, a->count, 1, a->root, digest, err);
    if (rc != BG_OK) {
        EVP_PKEY_free(key);
        return refuse(reason, BG_ATTEST_MALFORMED, err, BG_ECRYPTO, "malformed attestation: %s",
                      err ? err->msg : "snapshot header");
    }
    rc = bg_sig_verify(key, BG_SIG_CTX_SNAPSHOT, digest, DB, a->signature, a->signature_len, NULL);
    EVP_PKEY_free(key);
    if (rc != BG_OK)
        return refuse(reason, BG_ATTEST_BAD_SIGNATURE, err, BG_ECRYPTO,
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
        memcmp(b->root, verified->root, DB) != 0 || b->cert_len != verified->cert_len ||
        memcmp(b->cert, verified->cert, b->cert_len) != 0 ||
        b->signature_len != verified->signature_len ||
        memcmp(b->signature, verified->signature, b->signature_len) != 0 ||
        strcmp(bg_attest_status_issuer(st), b->issuer) != 0)
        return refuse(reason, BG_ATTEST_INTERNAL, err, BG_EINVAL,
                      "not an attestation of the same signed snapshot: verify it on its own");
    const bg_roster_member *m = bg_roster_member_find(roster, b->issuer);
    if (m == NULL)
        return refuse(reason, BG_ATTEST_ISSUER_UNKNOWN, err, BG_ECRYPTO,
                      "issuer %s is not a member of the federation", b->issuer);
    if ((rc = check_entry(b, roster, m, now, reason, err)) != BG_OK ||
        (rc = check_not_revoked(b, st, reason, err)) != BG_OK)
        return rc;
    if (reason != NULL)
        *reason = BG_ATTEST_OK;
    bg_err_clear(err);
    return BG_OK;
}
