/*
 * attest_check.c - refusals with their reason, and the issuer-certificate check (trust,
 * then the roster's pin) that attestations and status lists share; see
 * attest_int.h.
 */
#include "gateway/attest/attest_int.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int
bg_attest_refuse(bg_attest_reason *reason, bg_attest_reason r, bg_err *err, int code,
                 const char *fmt, ...)
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

int
bg_attest_rewrap(bg_err *err, int code, const char *prefix)
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

int
bg_attest_issuer_key(bg_trust *trust, const bg_roster_member *m, const char *city,
                     const uint8_t *der, size_t len, time_t now, bool as_status, EVP_PKEY **key,
                     bg_attest_reason *reason, bg_err *err)
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
        return bg_attest_refuse(
            reason, as_status && r != BG_ATTEST_INTERNAL ? BG_ATTEST_STATUS_CERT : r, err,
            r == BG_ATTEST_INTERNAL ? rc : BG_ECRYPTO, "%s of %s: %s", what, city, terr.msg);
    }
    if (!bg_roster_member_pinned(m, res.fingerprint)) {
        EVP_PKEY_free(*key);
        *key = NULL;
        char have[BG_SIG_FP_HEX_LEN + 1], pinned[BG_SIG_FP_HEX_LEN + 1];
        bg_sig_fp_hex(res.fingerprint, have);
        bg_sig_fp_hex(m->cert_sha256, pinned);
        return bg_attest_refuse(
            reason, as_status ? BG_ATTEST_STATUS_CERT : BG_ATTEST_CERT_NOT_PINNED, err, BG_ECRYPTO,
            "%s of %s is not the one the roster pins (sha256 %.16s..., roster %.16s...)", what,
            city, have, pinned);
    }
    return BG_OK;
}

int
bg_attest_common_of(const bg_roster *roster, const bg_roster_member *m, const char *scale,
                    const char *grade, uint32_t *rank, const char **common,
                    bg_attest_reason *reason, bg_err *err)
{
    if (strcmp(scale, m->scale.name) != 0)
        return bg_attest_refuse(
            reason, BG_ATTEST_SCALE_MISMATCH, err, BG_ECRYPTO,
            "%s grades in scale '%s' per the roster, the evaluation names scale '%s'", m->city,
            m->scale.name, scale);
    uint32_t r = bg_roster_member_rank(m, grade, strlen(grade));
    const bg_scale *cs = bg_roster_common_scale(roster);
    if (r == 0)
        return bg_attest_refuse(reason, BG_ATTEST_SCALE_MISMATCH, err, BG_ECRYPTO,
                                "grade '%s' is not in %s's scale '%s'", grade, m->city,
                                m->scale.name);
    if (cs == NULL || r > cs->ngrades)
        return bg_attest_refuse(reason, BG_ATTEST_INTERNAL, err, BG_EINVAL,
                                "the roster maps %s's grade '%s' to rank %" PRIu32
                                ", outside the common "
                                "scale",
                                m->city, grade, r);
    *rank = r;
    *common = cs->grades[r - 1];
    return BG_OK;
}
