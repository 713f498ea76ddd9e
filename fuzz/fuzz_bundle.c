/*
 * fuzz_bundle.c - evidence bundles (gateway/audit/audit.h), as `baygate audit
 * verify-bundle` takes them from a file: decoded under the budget, then verified
 * against the fixture federation (fuzz_pki.h: its CA, its roster of Guangzhou and
 * Shenzhen). What decodes must encode, and decode again to the same bytes; verify may
 * refuse anything but must not crash, and what it accepts must say what it checked.
 * It is verified as it is, then signed again with the fixture's keys so that the
 * leaves and proofs are checked too. Seeds: bundles of a Shenzhen log made here, and
 * one a real gateway exported.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/err.h"
#include "fuzz/fuzz.h"
#include "fuzz/fuzz_pki.h"
#include "gateway/audit/audit.h"
#include "gateway/audit/audit_int.h"

static const bg_fuzz_pki *pki;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    pki = bg_fuzz_pki_get();
    return 0;
}

/* The fixture's keys are made fresh in every process, so no stored seed verifies as
 * it is: signed again with them (head by Shenzhen, cosignatures by Guangzhou, with their
 * certificates), a bundle gets past the signatures to its leaves, proofs and
 * consistency proofs, which are the input's. */
static void
resign(bg_audit_bundle *b)
{
    bg_err err = {0};
    snprintf(b->city, sizeof b->city, BG_FUZZ_SZ);
    if (bg_audit_head_make(pki->sz.key, BG_FUZZ_SZ, b->head.size, b->head.root,
                           b->head.timestamp_ms, &b->head, &err) != BG_OK)
        return;
    uint8_t *cert = malloc(pki->sz.der_len);
    bg_fuzz_assert(cert != NULL);
    memcpy(cert, pki->sz.der, pki->sz.der_len);
    free(b->cert);
    b->cert = cert;
    b->cert_len = pki->sz.der_len;
    for (size_t i = 0; i < b->n_cosigs; i++) {
        bg_audit_bundle_cosig *c = &b->cosigs[i];
        bg_audit_cosig made;
        if (bg_audit_cosig_make(pki->gz.key, BG_FUZZ_GZ, &c->cosig.head, c->cosig.cosigned_at_ms,
                                &made, &err) != BG_OK)
            continue;
        c->cosig = made;
        uint8_t *wc = malloc(pki->gz.der_len);
        bg_fuzz_assert(wc != NULL);
        memcpy(wc, pki->gz.der, pki->gz.der_len);
        free(c->cert);
        c->cert = wc;
        c->cert_len = pki->gz.der_len;
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bg_audit_bundle *b = NULL, *again = NULL;
    bg_err err = {0};
    if (bg_audit_bundle_decode(data, size, &b, &err) != BG_OK)
        return 0;
    bg_fuzz_assert(b->n_leaves >= 1 && b->n_leaves <= BG_AUDIT_BUNDLE_LEAVES &&
                   b->n_cosigs <= BG_AUDIT_BUNDLE_COSIGS && b->cert_len <= BG_AUDIT_CERT_MAX);
    uint8_t *enc = NULL, *enc2 = NULL;
    size_t len = 0, len2 = 0;
    bg_fuzz_assert(bg_audit_bundle_encode(b, &enc, &len, &err) == BG_OK);
    bg_fuzz_assert(bg_audit_bundle_decode(enc, len, &again, &err) == BG_OK);
    bg_fuzz_assert(bg_audit_bundle_encode(again, &enc2, &len2, &err) == BG_OK);
    bg_fuzz_assert(len2 == len && memcmp(enc, enc2, len) == 0);
    bg_audit_bundle_report rep;
    for (int pass = 0; pass < 2; pass++) {
        if (bg_audit_bundle_verify(b, pki->trust, pki->roster, time(NULL), &rep, &err) == BG_OK)
            bg_fuzz_assert(rep.leaves == b->n_leaves && rep.witnesses == b->n_cosigs);
        if (pass == 0)
            resign(b);
    }
    free(enc);
    free(enc2);
    bg_audit_bundle_free(again);
    bg_audit_bundle_free(b);
    return 0;
}

/* Shenzhen's log: six leaves, the exchange at 1 and 2 (and 4 for the second seed), a
 * head at 3 and at 6, Guangzhou's cosignature of the later one; certificates kept. */
static int
seed_log(const char *dir, const uint8_t rid[BG_AUDIT_REQUEST_ID_LEN], bg_audit_log **log,
         bg_audit_witness **w, bg_err *err)
{
    bg_audit_event ev = {.kind = BG_AUDIT_REQUEST_RECEIVED, .time_ms = 1767225600000};
    snprintf(ev.peer, sizeof ev.peer, BG_FUZZ_GZ);
    snprintf(ev.purpose, sizeof ev.purpose, "supervision");
    snprintf(ev.list, sizeof ev.list, "serious-dishonesty");
    ev.has_request_digest = true;
    ev.items_asked = 12;
    bg_audit_head h;
    bg_audit_cosig c;
    int rc = bg_audit_open(log, dir, BG_FUZZ_SZ, BG_AUDIT_CREATE, NULL, err);
    for (int i = 0; i < 6 && rc == BG_OK; i++) {
        memset(ev.request_id, i == 1 || i == 2 || i == 4 ? rid[0] : i, sizeof ev.request_id);
        ev.kind = i % 2 ? BG_AUDIT_REQUEST_ANSWERED : BG_AUDIT_REQUEST_RECEIVED;
        rc = bg_audit_append(*log, &ev, NULL, err);
        if (rc == BG_OK && i == 2)
            rc = bg_audit_sign_head(*log, pki->sz.key, ev.time_ms + 1000, &h, err);
    }
    if (rc == BG_OK)
        rc = bg_audit_sign_head(*log, pki->sz.key, ev.time_ms + 2000, &h, err);
    if (rc == BG_OK)
        rc = bg_audit_witness_open(w, dir, BG_FUZZ_SZ, 0, NULL, err);
    if (rc == BG_OK)
        rc = bg_audit_cosig_make(pki->gz.key, BG_FUZZ_GZ, &h, ev.time_ms + 3000, &c, err);
    if (rc == BG_OK)
        rc = bg_audit_witness_add_received(*w, &c, err);
    if (rc == BG_OK)
        rc = bg_audit_cert_keep(dir, BG_FUZZ_GZ, pki->gz.der, pki->gz.der_len, err);
    return rc;
}

static int
seed_bundle(const char *seeds, const char *name, bg_audit_bundle_src *src,
            const uint8_t rid[BG_AUDIT_REQUEST_ID_LEN], bg_err *err)
{
    bg_audit_bundle *b = NULL;
    uint8_t *enc = NULL;
    size_t len = 0;
    int rc = bg_audit_bundle_build(src, rid, &b, NULL, err);
    if (rc == BG_OK)
        rc = bg_audit_bundle_encode(b, &enc, &len, err);
    if (rc == BG_OK && bg_fuzz_write_seed(seeds, name, enc, len) != 0)
        rc = BG_EIO;
    free(enc);
    bg_audit_bundle_free(b);
    return rc;
}

int
bg_fuzz_make_seeds(const char *seeds)
{
    char dir[PATH_MAX];
    bg_fuzz_path(dir, sizeof dir, "bundle-log");
    bg_fuzz_assert(mkdir(dir, 0700) == 0);
    bg_err err = {0};
    bg_audit_log *log = NULL;
    bg_audit_witness *w = NULL;
    uint8_t rid[BG_AUDIT_REQUEST_ID_LEN], other[BG_AUDIT_REQUEST_ID_LEN];
    memset(rid, 0xa1, sizeof rid);
    memset(other, 3, sizeof other);
    int rc = seed_log(dir, rid, &log, &w, &err);
    bg_audit_bundle_src src = {
        .log = log, .witness = w, .dir = dir, .cert = pki->sz.der, .cert_len = pki->sz.der_len};
    if (rc == BG_OK) /* leaves 1, 2, 4: the head of 6, cosigned as it is */
        rc = seed_bundle(seeds, "witnessed", &src, rid, &err);
    if (rc == BG_OK) /* leaf 3: the head of 6 */
        rc = seed_bundle(seeds, "one-leaf", &src, other, &err);
    src.witness = NULL;
    memset(other, 0, sizeof other);
    if (rc == BG_OK) /* leaf 0: the head of 3, no witness */
        rc = seed_bundle(seeds, "unwitnessed", &src, other, &err);
    bg_audit_witness_close(w);
    bg_audit_close(log);
    if (rc != BG_OK)
        fprintf(stderr, "fuzz: bundle seeds: %s\n", err.msg);
    return rc == BG_OK ? 0 : -1;
}
