/*
 * roster_signed.c - the signed roster: signing with the CA key, opening
 * (wrapper, CA fingerprint, signature over the exact bytes, then the content
 * through bg_roster_build), and the roster files (see roster.h).
 */
#include "peers/roster.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "common/file.h"
#include "peers/roster_int.h"
#include "proto/pb.h"
#include "proto/roster.pb-c.h"

/* Unpacks and checks a SignedRoster, verifying against ca_cert unless it is
 * NULL; on success *out holds the bg_roster. */
static int
open_signed(const void *bytes, size_t len, X509 *ca_cert, bg_roster **out,
            uint8_t claimed_ca[BG_SIG_FP_LEN], bg_err *err)
{
    *out = NULL;
    if (bytes == NULL || len == 0)
        return bg_err_set(err, BG_EPROTO, "not a signed roster: empty");
    if (len > BG_ROSTER_FILE_MAX)
        return bg_err_set(err, BG_ELIMIT, "signed roster is %zu bytes, more than the %d accepted",
                          len, BG_ROSTER_FILE_MAX);
    Baygate__SignedRoster *sr = bg_pb_unpack(&baygate__signed_roster__descriptor, len, bytes);
    if (sr == NULL)
        return bg_err_set(err, BG_EPROTO, "not a signed roster (malformed protobuf)");
    int rc = BG_OK;
    Baygate__Roster *m = NULL;
    if (sr->base.n_unknown_fields != 0) {
        rc = bg_err_set(err, BG_EPROTO, "not a signed roster: it has fields no roster has");
        goto out;
    }
    if (sr->roster.len == 0) {
        rc = bg_err_set(err, BG_EPROTO, "not a signed roster: it holds no roster");
        goto out;
    }
    if (sr->ca_cert_sha256.len != BG_SIG_FP_LEN) {
        rc = bg_err_set(err, BG_EPROTO,
                        "not a signed roster: the CA fingerprint is %zu bytes, not %d",
                        sr->ca_cert_sha256.len, BG_SIG_FP_LEN);
        goto out;
    }
    if (claimed_ca != NULL)
        memcpy(claimed_ca, sr->ca_cert_sha256.data, BG_SIG_FP_LEN);
    if (ca_cert != NULL) {
        uint8_t fp[BG_SIG_FP_LEN];
        char want[BG_SIG_FP_HEX_LEN + 1], got[BG_SIG_FP_HEX_LEN + 1];
        if ((rc = bg_sig_fingerprint(ca_cert, fp, err)) != BG_OK)
            goto out;
        if (memcmp(fp, sr->ca_cert_sha256.data, BG_SIG_FP_LEN) != 0) {
            bg_sig_fp_hex(sr->ca_cert_sha256.data, got);
            bg_sig_fp_hex(fp, want);
            rc = bg_err_set(err, BG_ECRYPTO,
                            "roster was signed by CA sha256 %.16s..., not by this CA (sha256 "
                            "%.16s...)",
                            got, want);
            goto out;
        }
        if (sr->signature.len == 0) {
            rc = bg_err_set(err, BG_ECRYPTO, "roster is not signed");
            goto out;
        }
        bg_err sub = {0};
        if (bg_sig_verify_cert(ca_cert, BG_SIG_CTX_ROSTER, sr->roster.data, sr->roster.len,
                               sr->signature.data, sr->signature.len, &sub) != BG_OK) {
            rc = bg_err_set(err, BG_ECRYPTO, "roster signature does not verify (%s)", sub.msg);
            goto out;
        }
    }
    /* Only now, with the bytes known to come from the CA, look inside. */
    m = bg_pb_unpack(&baygate__roster__descriptor, sr->roster.len, sr->roster.data);
    if (m == NULL) {
        rc = bg_err_set(err, BG_EPROTO,
                        "roster content is malformed protobuf (or needs more than %zu bytes "
                        "of memory)",
                        bg_pb_budget(sr->roster.len));
        goto out;
    }
    bg_err sub = {0};
    if ((rc = bg_roster_build(m, sr->roster.data, sr->roster.len, out, NULL, &sub)) != BG_OK)
        bg_err_set(err, rc, "invalid roster: %s", sub.msg);
out:
    if (m != NULL)
        bg_pb_free(m);
    bg_pb_free(sr);
    return rc;
}

int
bg_roster_open(const void *bytes, size_t len, X509 *ca_cert, uint64_t min_serial,
               const bg_roster *in_use, bg_roster **out, bool *unchanged, bg_err *err)
{
    *out = NULL;
    if (unchanged != NULL)
        *unchanged = false;
    if (ca_cert == NULL)
        return bg_err_set(err, BG_EINVAL, "opening a roster needs the CA certificate");
    bg_roster *r = NULL;
    int rc = open_signed(bytes, len, ca_cert, &r, NULL, err);
    if (rc != BG_OK)
        return rc;
    uint64_t floor = min_serial;
    if (in_use != NULL && in_use->serial > floor)
        floor = in_use->serial;
    if (r->serial < floor) {
        rc = bg_err_set(err, BG_EEXIST, "roster serial %llu is older than the %llu in use",
                        (unsigned long long)r->serial, (unsigned long long)floor);
    } else if (in_use != NULL && r->serial == in_use->serial) {
        if (r->len == in_use->len && memcmp(r->bytes, in_use->bytes, r->len) == 0) {
            if (unchanged != NULL)
                *unchanged = true;
        } else {
            rc = bg_err_set(err, BG_EEXIST,
                            "roster serial %llu is the one in use, but its content differs: a "
                            "changed roster needs a new serial",
                            (unsigned long long)r->serial);
        }
    }
    if (rc != BG_OK) {
        bg_roster_free(r);
        return rc;
    }
    *out = r;
    return BG_OK;
}

int
bg_roster_inspect(const void *bytes, size_t len, bg_roster **out, uint8_t ca_sha256[BG_SIG_FP_LEN],
                  bg_err *err)
{
    return open_signed(bytes, len, NULL, out, ca_sha256, err);
}

int
bg_roster_sign(const bg_roster *r, EVP_PKEY *ca_key, X509 *ca_cert, uint8_t **out, size_t *len,
               bg_err *err)
{
    *out = NULL;
    *len = 0;
    if (ca_key == NULL || ca_cert == NULL)
        return bg_err_set(err, BG_EINVAL, "signing a roster needs the CA key and certificate");
    if (!bg_sig_key_matches(ca_cert, ca_key))
        return bg_err_set(err, BG_EINVAL, "the CA key does not belong to the CA certificate");
    uint8_t fp[BG_SIG_FP_LEN], sig[BG_SIG_MAX];
    size_t siglen = 0;
    int rc;
    if ((rc = bg_sig_fingerprint(ca_cert, fp, err)) != BG_OK ||
        (rc = bg_sig_sign(ca_key, BG_SIG_CTX_ROSTER, r->bytes, r->len, sig, &siglen, err)) != BG_OK)
        return rc;
    Baygate__SignedRoster sr = BAYGATE__SIGNED_ROSTER__INIT;
    sr.roster.data = r->bytes;
    sr.roster.len = r->len;
    sr.signature.data = sig;
    sr.signature.len = siglen;
    sr.ca_cert_sha256.data = fp;
    sr.ca_cert_sha256.len = sizeof fp;
    size_t n = baygate__signed_roster__get_packed_size(&sr);
    if (n > BG_ROSTER_FILE_MAX)
        return bg_err_set(err, BG_ELIMIT,
                          "signed roster would be %zu bytes, more than the %d "
                          "a gateway accepts",
                          n, BG_ROSTER_FILE_MAX);
    uint8_t *buf = malloc(n);
    if (buf == NULL)
        return bg_err_set(err, BG_ENOMEM, "out of memory");
    baygate__signed_roster__pack(&sr, buf);
    *out = buf;
    *len = n;
    return BG_OK;
}

int
bg_roster_read_file(const char *path, uint8_t **bytes, size_t *len, bg_err *err)
{
    return bg_file_read(path, BG_ROSTER_FILE_MAX, bytes, len, NULL, err);
}

int
bg_roster_write_file(const char *path, const uint8_t *bytes, size_t len, bg_err *err)
{
    return bg_file_write_replace(path, bytes, len, 0644, err);
}

int
bg_roster_load_file(const char *path, X509 *ca_cert, uint64_t min_serial, const bg_roster *in_use,
                    bg_roster **out, bool *unchanged, bg_err *err)
{
    *out = NULL;
    if (unchanged != NULL)
        *unchanged = false;
    uint8_t *bytes = NULL;
    size_t len = 0;
    int rc = bg_roster_read_file(path, &bytes, &len, err);
    if (rc != BG_OK)
        return rc;
    bg_err sub = {0};
    rc = bg_roster_open(bytes, len, ca_cert, min_serial, in_use, out, unchanged, &sub);
    free(bytes);
    if (rc != BG_OK)
        return bg_err_set(err, rc, "%s: %s", path, sub.msg);
    return BG_OK;
}
