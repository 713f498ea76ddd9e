/*
 * audit_bundle_check.c - an evidence bundle checked offline with the federation CA
 * (and CRL) and a roster alone (see audit.h, bg_audit_bundle_verify): who signed, what
 * the leaves are, that they are in the signed tree, who witnessed it. Nothing in the
 * bundle is believed before it is recomputed; the first failure is named.
 *
 * The mechanisms are the module's own: leaves decoded by audit_wire.c, inclusion and
 * consistency verified by audit_hash.c (on common/merkle), heads and cosignatures by
 * their verifiers, certificates by certs/trust and the roster's pins.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "gateway/audit/audit.h"

/* city's certificate der: a roster member's, trusted at now, the one the roster pins.
 * *key: its public key (EVP_PKEY_free). fp_hex (may be NULL) gets its fingerprint. */
static int
member_cert(bg_trust *trust, const bg_roster *roster, const char *city, const uint8_t *der,
            size_t len, time_t now, const char *what, EVP_PKEY **key,
            char fp_hex[BG_SIG_FP_HEX_LEN + 1], bg_err *err)
{
    *key = NULL;
    const bg_roster_member *m = bg_roster_member_find(roster, city);
    if (m == NULL)
        return bg_err_set(err, BG_ECRYPTO,
                          "%s: %s is not a member of the roster (serial %" PRIu64 ")", what, city,
                          bg_roster_serial(roster));
    bg_trust_result res;
    bg_err sub = {0};
    int rc = bg_trust_verify_at(trust, der, len, city, now, &res, key, &sub);
    if (rc != BG_OK)
        return bg_err_set(err, rc == BG_ECRYPTO || rc == BG_EINVAL ? BG_ECRYPTO : rc,
                          "%s: the certificate of %s: %s", what, city, sub.msg);
    char have[BG_SIG_FP_HEX_LEN + 1], pinned[BG_SIG_FP_HEX_LEN + 1];
    bg_sig_fp_hex(res.fingerprint, have);
    if (sodium_memcmp(res.fingerprint, m->cert_sha256, BG_SIG_FP_LEN) != 0) {
        EVP_PKEY_free(*key);
        *key = NULL;
        bg_sig_fp_hex(m->cert_sha256, pinned);
        return bg_err_set(err, BG_ECRYPTO,
                          "%s: the certificate of %s is not the one the roster pins (sha256 "
                          "%.16s..., roster %.16s...)",
                          what, city, have, pinned);
    }
    if (fp_hex != NULL)
        memcpy(fp_hex, have, sizeof have);
    return BG_OK;
}

/* The head: of the bundle's city, signed with its (checked) certificate. */
static int
check_head(const bg_audit_bundle *b, bg_trust *trust, const bg_roster *roster, time_t now,
           bg_audit_bundle_report *rep, bg_err *err)
{
    if (strcmp(b->head.origin, b->city) != 0)
        return bg_err_set(err, BG_ECRYPTO, "the signed head is of %s's log, the bundle is %s's",
                          b->head.origin, b->city);
    EVP_PKEY *key = NULL;
    int rc = member_cert(trust, roster, b->city, b->cert, b->cert_len, now, "the log's city", &key,
                         rep->signer_fp, err);
    if (rc != BG_OK)
        return rc;
    bg_err sub = {0};
    if (bg_audit_head_verify(&b->head, key, NULL, &sub) != BG_OK)
        rc = bg_err_set(err, BG_ECRYPTO,
                        "the signed head of size %" PRIu64 " does not verify with %s's "
                        "certificate (signed by another key?): %s",
                        b->head.size, b->city, sub.msg);
    EVP_PKEY_free(key);
    return rc;
}

/* One leaf: decodes, the city's, the bundle's request, in the head's tree, proven. */
static int
check_leaf(const bg_audit_bundle *b, size_t i, bg_err *err)
{
    const bg_audit_bundle_leaf *l = &b->leaves[i];
    char want[2 * BG_AUDIT_REQUEST_ID_LEN + 1], got[2 * BG_AUDIT_REQUEST_ID_LEN + 1];
    if (i > 0 && l->index <= b->leaves[i - 1].index)
        return bg_err_set(err, BG_ECRYPTO,
                          "leaf %" PRIu64 " comes after leaf %" PRIu64 ": indexes must increase",
                          l->index, b->leaves[i - 1].index);
    if (l->index >= b->head.size)
        return bg_err_set(err, BG_ECRYPTO,
                          "leaf %" PRIu64 " is outside the signed head's tree of size %" PRIu64,
                          l->index, b->head.size);
    bg_audit_event ev;
    bg_err sub = {0};
    if (bg_audit_leaf_decode(l->leaf, l->len, &ev, &sub) != BG_OK)
        return bg_err_set(err, BG_ECRYPTO, "leaf %" PRIu64 ": %s", l->index, sub.msg);
    if (strcmp(ev.city, b->city) != 0)
        return bg_err_set(err, BG_ECRYPTO, "leaf %" PRIu64 " was logged by %s, not %s", l->index,
                          ev.city, b->city);
    if (memcmp(ev.request_id, b->request_id, BG_AUDIT_REQUEST_ID_LEN) != 0) {
        sodium_bin2hex(want, sizeof want, b->request_id, BG_AUDIT_REQUEST_ID_LEN);
        sodium_bin2hex(got, sizeof got, ev.request_id, BG_AUDIT_REQUEST_ID_LEN);
        return bg_err_set(err, BG_ECRYPTO, "leaf %" PRIu64 " is of request %s, not %s", l->index,
                          got, want);
    }
    bg_audit_hash lh;
    bg_audit_hash_leaf(l->leaf, l->len, lh);
    if (bg_audit_verify_inclusion(l->index, b->head.size, lh, l->proof, l->proof_len, b->head.root,
                                  &sub) != BG_OK)
        return bg_err_set(err, BG_ECRYPTO,
                          "leaf %" PRIu64 " is not in the signed tree (its bytes or its proof "
                          "were changed): %s",
                          l->index, sub.msg);
    return BG_OK;
}

/* Cosignature i: a member other than the city, once, trusted and pinned, signed, on a
 * head of the city's log that extends the bundle's. */
static int
check_cosig(const bg_audit_bundle *b, size_t i, bg_trust *trust, const bg_roster *roster,
            time_t now, bg_audit_bundle_report *rep, bg_err *err)
{
    const bg_audit_bundle_cosig *bc = &b->cosigs[i];
    const bg_audit_cosig *c = &bc->cosig;
    char what[64];
    snprintf(what, sizeof what, "cosignature %zu (by %s)", i + 1, c->witness);
    if (strcmp(c->witness, b->city) == 0)
        return bg_err_set(err, BG_ECRYPTO, "%s: a city does not witness its own log", what);
    for (size_t k = 0; k < rep->witnesses; k++)
        if (strcmp(rep->witness[k], c->witness) == 0)
            return bg_err_set(err, BG_ECRYPTO, "%s: a second cosignature by %s", what, c->witness);
    if (strcmp(c->head.origin, b->city) != 0)
        return bg_err_set(err, BG_ECRYPTO, "%s: on a head of %s's log, not %s's", what,
                          c->head.origin, b->city);
    if (c->head.size < b->head.size)
        return bg_err_set(err, BG_ECRYPTO,
                          "%s: on a head of size %" PRIu64 ", smaller than the bundle's %" PRIu64,
                          what, c->head.size, b->head.size);
    EVP_PKEY *key = NULL;
    int rc =
        member_cert(trust, roster, c->witness, bc->cert, bc->cert_len, now, what, &key, NULL, err);
    if (rc != BG_OK)
        return rc;
    bg_err sub = {0};
    if (bg_audit_cosig_verify(c, key, NULL, &sub) != BG_OK)
        rc = bg_err_set(err, BG_ECRYPTO, "%s: %s", what, sub.msg);
    EVP_PKEY_free(key);
    if (rc == BG_OK &&
        bg_audit_verify_consistency(b->head.size, c->head.size, b->head.root, c->head.root,
                                    bc->consistency, bc->consistency_len, &sub) != BG_OK)
        rc = bg_err_set(err, BG_ECRYPTO,
                        "%s: its head of size %" PRIu64 " is not shown to extend the bundle's: %s",
                        what, c->head.size, sub.msg);
    if (rc == BG_OK) {
        memcpy(rep->witness[rep->witnesses], c->witness, 7);
        rep->witness_size[rep->witnesses++] = c->head.size;
    }
    return rc;
}

int
bg_audit_bundle_verify(const bg_audit_bundle *b, bg_trust *trust, const bg_roster *roster,
                       time_t now, bg_audit_bundle_report *rep, bg_err *err)
{
    bg_audit_bundle_report local;
    if (rep == NULL)
        rep = &local;
    memset(rep, 0, sizeof *rep);
    if (b == NULL || trust == NULL || roster == NULL)
        return bg_err_set(err, BG_EINVAL, "evidence bundle: nothing to verify with");
    if (b->n_leaves == 0 || b->n_leaves > BG_AUDIT_BUNDLE_LEAVES ||
        b->n_cosigs > BG_AUDIT_BUNDLE_COSIGS)
        return bg_err_set(err, BG_ECRYPTO, "evidence bundle: %zu leaves, %zu cosignatures",
                          b->n_leaves, b->n_cosigs);
    int rc = check_head(b, trust, roster, now, rep, err);
    for (size_t i = 0; rc == BG_OK && i < b->n_leaves; i++)
        if ((rc = check_leaf(b, i, err)) == BG_OK)
            rep->leaves++;
    for (size_t i = 0; rc == BG_OK && i < b->n_cosigs; i++)
        rc = check_cosig(b, i, trust, roster, now, rep, err);
    return rc;
}
