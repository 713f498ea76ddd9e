/*
 * audit_bundle.c - evidence bundles (see audit.h): made from a city's log, its witness
 * store and its kept certificates, and encoded to and decoded from EvidenceBundle
 * (proto/audit.proto). Checking one offline is audit_bundle_check.c.
 *
 * Making one: the leaves carrying the request id (bg_audit_find); the first signed
 * head that covers the last of them, since every witness that cosigned a larger head
 * vouches for it too (a consistency proof links them); the certificate that verifies
 * that head; per witness, its cosignature on the nearest head at least that large,
 * with the consistency proof from the bundle's head and the witness's kept
 * certificate. Every proof comes from the log itself (audit_log.c).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "certs/pki.h"
#include "gateway/audit/audit_int.h"
#include "proto/pb.h"

void
bg_audit_bundle_free(bg_audit_bundle *b)
{
    if (b == NULL)
        return;
    for (size_t i = 0; b->cosigs != NULL && i < b->n_cosigs; i++)
        free(b->cosigs[i].cert);
    free(b->cosigs);
    free(b->leaves);
    free(b->cert);
    free(b);
}

/* Appends "; what" (or "what") to note, cut to fit. */
static void
note_add(char *note, const char *what)
{
    if (note == NULL)
        return;
    size_t n = strlen(note);
    snprintf(note + n, BG_ERR_MSG_MAX - n, "%s%s", n ? "; " : "", what);
}

/* ------------------------------------------------------------- leaves */

typedef struct collect {
    bg_audit_bundle *b;
    size_t cap;
    int rc;
    bg_err *err;
} collect;

static bool
collect_leaf(void *ctx, uint64_t index, const bg_audit_event *ev, const uint8_t *leaf, size_t len)
{
    (void)ev;
    collect *c = ctx;
    bg_audit_bundle *b = c->b;
    if (b->n_leaves == BG_AUDIT_BUNDLE_LEAVES) {
        c->rc = bg_err_set(c->err, BG_ELIMIT, "more than %d leaves carry this request id",
                           BG_AUDIT_BUNDLE_LEAVES);
        return false;
    }
    if (b->n_leaves == c->cap) {
        size_t nc = c->cap ? 2 * c->cap : 16;
        bg_audit_bundle_leaf *nl = realloc(b->leaves, nc * sizeof *nl);
        if (nl == NULL) {
            c->rc = bg_err_set(c->err, BG_ENOMEM, "out of memory");
            return false;
        }
        b->leaves = nl;
        c->cap = nc;
    }
    bg_audit_bundle_leaf *l = &b->leaves[b->n_leaves++];
    memset(l, 0, sizeof *l);
    l->index = index;
    memcpy(l->leaf, leaf, len);
    l->len = len;
    return true;
}

static int
bundle_leaves(const bg_audit_bundle_src *src, bg_audit_bundle *b, bg_err *err)
{
    bg_audit_filter f = {.has_request_id = true};
    memcpy(f.request_id, b->request_id, sizeof f.request_id);
    collect c = {.b = b, .err = err};
    int rc = bg_audit_find(src->log, &f, collect_leaf, &c, NULL, err);
    if (rc == BG_OK)
        rc = c.rc;
    if (rc == BG_OK && b->n_leaves == 0) {
        char hex[2 * BG_AUDIT_REQUEST_ID_LEN + 1];
        sodium_bin2hex(hex, sizeof hex, b->request_id, sizeof b->request_id);
        rc = bg_err_set(err, BG_ENOTFOUND, "no leaf of %s's log carries request id %s", b->city,
                        hex);
    }
    return rc;
}

/* The smallest signed head covering the leaves (the first, if several), and proofs. */
static int
bundle_head(const bg_audit_bundle_src *src, bg_audit_bundle *b, bg_err *err)
{
    uint64_t need = b->leaves[b->n_leaves - 1].index + 1;
    bool have = false;
    size_t nh = bg_audit_head_count(src->log);
    for (size_t i = 0; i < nh; i++) {
        bg_audit_head h;
        int rc = bg_audit_head_get(src->log, i, &h, err);
        if (rc != BG_OK)
            return rc;
        if (h.size >= need && (!have || h.size < b->head.size)) {
            b->head = h;
            have = true;
        }
    }
    if (!have)
        return bg_err_set(err, BG_ENOTFOUND,
                          "no signed tree head covers leaf %" PRIu64 " yet (heads are signed "
                          "every [audit] head_interval_s): try again later",
                          need - 1);
    for (size_t i = 0; i < b->n_leaves; i++) {
        bg_audit_bundle_leaf *l = &b->leaves[i];
        int rc = bg_audit_inclusion_proof(src->log, l->index, b->head.size, l->proof, &l->proof_len,
                                          err);
        if (rc != BG_OK)
            return rc;
    }
    return BG_OK;
}

/* ------------------------------------------------------- certificates */

/* A certificate that verifies head (or cosig), copied out when found. */
typedef struct certfind {
    const bg_audit_head *head;
    const bg_audit_cosig *cosig;
    uint8_t *der;
    size_t len;
} certfind;

static bool
cert_verifies(void *ctx, const uint8_t *der, size_t len)
{
    certfind *cf = ctx;
    X509 *x = NULL;
    if (len == 0 || len > BG_AUDIT_CERT_MAX || bg_pki_cert_from_der(der, len, &x, NULL) != BG_OK)
        return false;
    bool ok = cf->head != NULL ? bg_audit_head_verify(cf->head, NULL, x, NULL) == BG_OK
                               : bg_audit_cosig_verify(cf->cosig, NULL, x, NULL) == BG_OK;
    X509_free(x);
    if (ok && (cf->der = malloc(len)) != NULL) {
        memcpy(cf->der, der, len);
        cf->len = len;
    }
    return ok;
}

/* cf's certificate: the current one (cur, may be NULL) or a kept one of city. */
static int
cert_find(const char *dir, const char *city, const uint8_t *cur, size_t cur_len, certfind *cf,
          bg_err *err)
{
    bool found = cur != NULL && cert_verifies(cf, cur, cur_len);
    if (!found) {
        int rc = bg_audit_cert_each(dir, city, cert_verifies, cf, &found, err);
        if (rc != BG_OK)
            return rc;
    }
    if (found && cf->der == NULL)
        return bg_err_set(err, BG_ENOMEM, "out of memory");
    return found ? BG_OK : BG_ENOTFOUND;
}

static int
bundle_signer(const bg_audit_bundle_src *src, bg_audit_bundle *b, bg_err *err)
{
    certfind cf = {.head = &b->head};
    int rc = cert_find(src->dir, b->city, src->cert, src->cert_len, &cf, err);
    if (rc == BG_ENOTFOUND)
        return bg_err_set(err, BG_ENOTFOUND,
                          "no certificate at hand verifies %s's head of size %" PRIu64
                          " (neither the city's certificate nor one kept in %s/certs)",
                          b->city, b->head.size, src->dir);
    if (rc == BG_OK) {
        b->cert = cf.der;
        b->cert_len = cf.len;
    }
    return rc;
}

/* ------------------------------------------------------- cosignatures */

/* Per witness, the received cosignature on the nearest head of size >= the bundle's. */
static int
cosig_pick(bg_audit_witness *w, const bg_audit_head *head, bg_audit_cosig *best, size_t *n,
           bg_err *err)
{
    *n = 0;
    size_t nr = bg_audit_witness_received_count(w);
    for (size_t i = 0; i < nr; i++) {
        bg_audit_cosig c;
        int rc = bg_audit_witness_received(w, i, &c, err);
        if (rc != BG_OK)
            return rc;
        if (strcmp(c.head.origin, head->origin) != 0 || c.head.size < head->size)
            continue;
        size_t k = 0;
        while (k < *n && strcmp(best[k].witness, c.witness) != 0)
            k++;
        if (k < *n && c.head.size < best[k].head.size)
            best[k] = c;
        else if (k == *n && *n < BG_AUDIT_BUNDLE_COSIGS)
            best[(*n)++] = c;
    }
    return BG_OK;
}

/* Adds cosignature c with its consistency proof and kept certificate; a cosignature
 * that cannot be carried is said in note and left out (BG_OK). */
static int
cosig_add(const bg_audit_bundle_src *src, bg_audit_bundle *b, const bg_audit_cosig *c, char *note,
          bg_err *err)
{
    char why[200];
    bg_audit_hash root;
    int rc = bg_audit_root(src->log, c->head.size, root, err);
    if (rc != BG_OK)
        return rc;
    if (sodium_memcmp(root, c->head.root, BG_AUDIT_HASH_LEN) != 0) {
        snprintf(why, sizeof why, "%s's cosignature is on a head that is not this log's",
                 c->witness);
        note_add(note, why);
        return BG_OK;
    }
    bg_audit_bundle_cosig *bc = &b->cosigs[b->n_cosigs];
    memset(bc, 0, sizeof *bc);
    bc->cosig = *c;
    rc = bg_audit_consistency_proof(src->log, b->head.size, c->head.size, bc->consistency,
                                    &bc->consistency_len, err);
    if (rc != BG_OK)
        return rc;
    certfind cf = {.cosig = c};
    rc = cert_find(src->dir, c->witness, NULL, 0, &cf, err);
    if (rc == BG_ENOTFOUND) {
        snprintf(why, sizeof why, "no kept certificate of witness %s verifies its cosignature",
                 c->witness);
        note_add(note, why);
        return BG_OK;
    }
    if (rc != BG_OK)
        return rc;
    bc->cert = cf.der;
    bc->cert_len = cf.len;
    b->n_cosigs++;
    return BG_OK;
}

static int
bundle_cosigs(const bg_audit_bundle_src *src, bg_audit_bundle *b, char *note, bg_err *err)
{
    if (src->witness == NULL)
        return BG_OK;
    bg_audit_cosig *best = calloc(BG_AUDIT_BUNDLE_COSIGS, sizeof *best);
    b->cosigs = calloc(BG_AUDIT_BUNDLE_COSIGS, sizeof *b->cosigs);
    if (best == NULL || b->cosigs == NULL) {
        free(best);
        return bg_err_set(err, BG_ENOMEM, "out of memory");
    }
    size_t n = 0;
    int rc = cosig_pick(src->witness, &b->head, best, &n, err);
    for (size_t i = 0; rc == BG_OK && i < n; i++)
        rc = cosig_add(src, b, &best[i], note, err);
    free(best);
    return rc;
}

/* The city's current certificate as DER (NULL if it does not load). */
static uint8_t *
current_cert(const char *path, size_t *len)
{
    X509 *x = NULL;
    uint8_t *der = NULL, *copy = NULL;
    if (bg_pki_cert_load(path, &x, NULL) == BG_OK &&
        bg_pki_cert_to_der(x, &der, len, NULL) == BG_OK && (copy = malloc(*len)) != NULL)
        memcpy(copy, der, *len);
    OPENSSL_free(der);
    X509_free(x);
    return copy;
}

int
bg_audit_bundle_src_open(bg_audit_bundle_src *src, bg_audit_log *log, const char *dir,
                         const char *city, const char *cert_path, bg_err *err)
{
    *src = (bg_audit_bundle_src){.log = log, .dir = dir};
    bg_audit_witness *w = NULL;
    int rc = bg_audit_witness_open(&w, dir, city, BG_AUDIT_READ_ONLY, NULL, err);
    if (rc != BG_OK && rc != BG_ENOTFOUND)
        return rc;
    size_t len = 0;
    uint8_t *cert = current_cert(cert_path, &len);
    src->witness = w;
    src->cert = cert;
    src->cert_len = cert ? len : 0;
    return BG_OK;
}

void
bg_audit_bundle_src_close(bg_audit_bundle_src *src)
{
    bg_audit_witness_close(src->witness);
    free((uint8_t *)src->cert);
    src->witness = NULL;
    src->cert = NULL;
}

int
bg_audit_bundle_build(const bg_audit_bundle_src *src,
                      const uint8_t request_id[BG_AUDIT_REQUEST_ID_LEN], bg_audit_bundle **out,
                      char note[BG_ERR_MSG_MAX], bg_err *err)
{
    *out = NULL;
    if (note != NULL)
        note[0] = '\0';
    bg_audit_bundle *b = calloc(1, sizeof *b);
    if (b == NULL)
        return bg_err_set(err, BG_ENOMEM, "out of memory");
    snprintf(b->city, sizeof b->city, "%s", bg_audit_city(src->log));
    memcpy(b->request_id, request_id, sizeof b->request_id);
    int rc = bundle_leaves(src, b, err);
    if (rc == BG_OK)
        rc = bundle_head(src, b, err);
    if (rc == BG_OK)
        rc = bundle_signer(src, b, err);
    if (rc == BG_OK)
        rc = bundle_cosigs(src, b, note, err);
    if (rc != BG_OK) {
        bg_audit_bundle_free(b);
        return rc;
    }
    *out = b;
    return BG_OK;
}

/* ------------------------------------------------------------- encode */

/* What packing points into: freed together. */
typedef struct enc_mem {
    Baygate__BundleLeaf *leaves;
    Baygate__BundleLeaf **leafp;
    Baygate__BundleCosignature *cosigs;
    Baygate__BundleCosignature **cosigp;
    ProtobufCBinaryData *hashes; /* every proof hash */
    uint8_t (*cosig_bytes)[BG_AUDIT_SIGNED_COSIG_MAX];
} enc_mem;

static void
enc_free(enc_mem *m)
{
    free(m->leaves);
    free(m->leafp);
    free(m->cosigs);
    free(m->cosigp);
    free(m->hashes);
    free(m->cosig_bytes);
}

/* hashes[0..n) as repeated bytes at *next (advanced). */
static ProtobufCBinaryData *
enc_hashes(ProtobufCBinaryData **next, const bg_audit_hash *h, size_t n)
{
    ProtobufCBinaryData *first = *next;
    for (size_t i = 0; i < n; i++) {
        first[i].data = (uint8_t *)h[i];
        first[i].len = BG_AUDIT_HASH_LEN;
    }
    *next += n;
    return first;
}

static int
enc_parts(const bg_audit_bundle *b, enc_mem *m, Baygate__EvidenceBundle *eb, bg_err *err)
{
    size_t nh = 0, nc = b->n_cosigs;
    for (size_t i = 0; i < b->n_leaves; i++)
        nh += b->leaves[i].proof_len;
    for (size_t i = 0; i < nc; i++)
        nh += b->cosigs[i].consistency_len;
    m->leaves = calloc(b->n_leaves + 1, sizeof *m->leaves);
    m->leafp = calloc(b->n_leaves + 1, sizeof *m->leafp);
    m->cosigs = calloc(nc + 1, sizeof *m->cosigs);
    m->cosigp = calloc(nc + 1, sizeof *m->cosigp);
    m->hashes = calloc(nh + 1, sizeof *m->hashes);
    m->cosig_bytes = calloc(nc + 1, sizeof *m->cosig_bytes);
    if (!m->leaves || !m->leafp || !m->cosigs || !m->cosigp || !m->hashes || !m->cosig_bytes)
        return bg_err_set(err, BG_ENOMEM, "out of memory");
    ProtobufCBinaryData *next = m->hashes;
    for (size_t i = 0; i < b->n_leaves; i++) {
        const bg_audit_bundle_leaf *l = &b->leaves[i];
        Baygate__BundleLeaf *bl = &m->leaves[i];
        baygate__bundle_leaf__init(bl);
        bl->index = l->index;
        bl->leaf.data = (uint8_t *)l->leaf;
        bl->leaf.len = l->len;
        bl->n_proof = l->proof_len;
        bl->proof = enc_hashes(&next, l->proof, l->proof_len);
        m->leafp[i] = bl;
    }
    for (size_t i = 0; i < nc; i++) {
        const bg_audit_bundle_cosig *c = &b->cosigs[i];
        Baygate__BundleCosignature *bc = &m->cosigs[i];
        baygate__bundle_cosignature__init(bc);
        int rc =
            bg_audit_cosig_encode(&c->cosig, m->cosig_bytes[i], &bc->signed_cosignature.len, err);
        if (rc != BG_OK)
            return rc;
        bc->signed_cosignature.data = m->cosig_bytes[i];
        bc->certificate.data = c->cert;
        bc->certificate.len = c->cert_len;
        bc->n_consistency = c->consistency_len;
        bc->consistency = enc_hashes(&next, c->consistency, c->consistency_len);
        m->cosigp[i] = bc;
    }
    eb->n_leaves = b->n_leaves;
    eb->leaves = m->leafp;
    eb->n_cosignatures = nc;
    eb->cosignatures = m->cosigp;
    return BG_OK;
}

int
bg_audit_bundle_encode(const bg_audit_bundle *b, uint8_t **out, size_t *len, bg_err *err)
{
    *out = NULL;
    if (b->n_leaves == 0 || b->n_leaves > BG_AUDIT_BUNDLE_LEAVES ||
        b->n_cosigs > BG_AUDIT_BUNDLE_COSIGS || b->cert == NULL || b->cert_len == 0)
        return bg_err_set(err, BG_EINVAL, "evidence bundle: nothing to encode");
    Baygate__EvidenceBundle eb = BAYGATE__EVIDENCE_BUNDLE__INIT;
    uint8_t head[BG_AUDIT_SIGNED_HEAD_MAX];
    enc_mem m = {0};
    eb.version = 1;
    eb.city = (char *)b->city;
    eb.request_id.data = (uint8_t *)b->request_id;
    eb.request_id.len = sizeof b->request_id;
    eb.certificate.data = b->cert;
    eb.certificate.len = b->cert_len;
    int rc = bg_audit_head_encode(&b->head, head, &eb.signed_head.len, err);
    eb.signed_head.data = head;
    if (rc == BG_OK)
        rc = enc_parts(b, &m, &eb, err);
    size_t n = rc == BG_OK ? baygate__evidence_bundle__get_packed_size(&eb) : 0;
    if (rc == BG_OK && n > BG_AUDIT_BUNDLE_MAX)
        rc = bg_err_set(err, BG_ELIMIT, "evidence bundle of %zu bytes is too large", n);
    if (rc == BG_OK && (*out = malloc(n)) == NULL)
        rc = bg_err_set(err, BG_ENOMEM, "out of memory");
    if (rc == BG_OK) {
        baygate__evidence_bundle__pack(&eb, *out);
        *len = n;
    }
    enc_free(&m);
    return rc;
}

/* ------------------------------------------------------------- decode */

/* n hashes of exactly 32 bytes (at most BG_AUDIT_PROOF_MAX) into out. */
static int
dec_hashes(const ProtobufCBinaryData *in, size_t n, bg_audit_hash *out, size_t *out_len,
           const char *what, bg_err *err)
{
    if (n > BG_AUDIT_PROOF_MAX)
        return bg_err_set(err, BG_EPROTO, "evidence bundle: %s of %zu hashes (at most %d)", what, n,
                          BG_AUDIT_PROOF_MAX);
    for (size_t i = 0; i < n; i++) {
        if (in[i].len != BG_AUDIT_HASH_LEN)
            return bg_err_set(err, BG_EPROTO, "evidence bundle: %s hash %zu is %zu bytes, not 32",
                              what, i, in[i].len);
        memcpy(out[i], in[i].data, BG_AUDIT_HASH_LEN);
    }
    *out_len = n;
    return BG_OK;
}

/* A DER certificate of 1..BG_AUDIT_CERT_MAX bytes, copied. */
static int
dec_cert(const ProtobufCBinaryData *in, uint8_t **out, size_t *len, const char *what, bg_err *err)
{
    if (in->len == 0 || in->len > BG_AUDIT_CERT_MAX)
        return bg_err_set(err, BG_EPROTO, "evidence bundle: %s certificate of %zu bytes", what,
                          in->len);
    if ((*out = malloc(in->len)) == NULL)
        return bg_err_set(err, BG_ENOMEM, "out of memory");
    memcpy(*out, in->data, in->len);
    *len = in->len;
    return BG_OK;
}

static int
dec_leaf(const Baygate__BundleLeaf *m, bg_audit_bundle_leaf *l, size_t i, bg_err *err)
{
    if (m->base.n_unknown_fields != 0)
        return bg_err_set(err, BG_EPROTO, "evidence bundle: leaf %zu has unknown fields", i);
    if (m->leaf.len == 0 || m->leaf.len > BG_AUDIT_LEAF_MAX)
        return bg_err_set(err, BG_EPROTO, "evidence bundle: leaf %zu is %zu bytes", i, m->leaf.len);
    l->index = m->index;
    memcpy(l->leaf, m->leaf.data, m->leaf.len);
    l->len = m->leaf.len;
    return dec_hashes(m->proof, m->n_proof, l->proof, &l->proof_len, "inclusion proof", err);
}

static int
dec_cosig(const Baygate__BundleCosignature *m, bg_audit_bundle_cosig *c, bg_err *err)
{
    if (m->base.n_unknown_fields != 0)
        return bg_err_set(err, BG_EPROTO, "evidence bundle: a cosignature has unknown fields");
    bg_err sub = {0};
    if (bg_audit_cosig_decode(m->signed_cosignature.data, m->signed_cosignature.len, &c->cosig,
                              &sub) != BG_OK)
        return bg_err_set(err, BG_EPROTO, "evidence bundle: %s", sub.msg);
    int rc = dec_hashes(m->consistency, m->n_consistency, c->consistency, &c->consistency_len,
                        "consistency proof", err);
    if (rc == BG_OK)
        rc = dec_cert(&m->certificate, &c->cert, &c->cert_len, "witness", err);
    return rc;
}

/* The top-level fields, before anything is allocated for the parts. */
static int
dec_check(const Baygate__EvidenceBundle *m, bg_err *err)
{
    if (m->base.n_unknown_fields != 0)
        return bg_err_set(err, BG_EPROTO, "evidence bundle: unknown fields");
    if (m->version != 1)
        return bg_err_set(err, BG_EPROTO, "evidence bundle: version %u is not 1", m->version);
    if (!bg_audit_city_ok(m->city))
        return bg_err_set(err, BG_EPROTO, "evidence bundle: city is not a 6-digit code");
    if (m->request_id.len != BG_AUDIT_REQUEST_ID_LEN)
        return bg_err_set(err, BG_EPROTO, "evidence bundle: request id of %zu bytes, not 16",
                          m->request_id.len);
    if (m->n_leaves == 0 || m->n_leaves > BG_AUDIT_BUNDLE_LEAVES)
        return bg_err_set(err, BG_EPROTO, "evidence bundle: %zu leaves (1..%d)", m->n_leaves,
                          BG_AUDIT_BUNDLE_LEAVES);
    if (m->n_cosignatures > BG_AUDIT_BUNDLE_COSIGS)
        return bg_err_set(err, BG_EPROTO, "evidence bundle: %zu cosignatures (at most %d)",
                          m->n_cosignatures, BG_AUDIT_BUNDLE_COSIGS);
    return BG_OK;
}

static int
dec_parts(const Baygate__EvidenceBundle *m, bg_audit_bundle *b, bg_err *err)
{
    memcpy(b->city, m->city, 7);
    memcpy(b->request_id, m->request_id.data, BG_AUDIT_REQUEST_ID_LEN);
    bg_err sub = {0};
    if (bg_audit_head_decode(m->signed_head.data, m->signed_head.len, &b->head, &sub) != BG_OK)
        return bg_err_set(err, BG_EPROTO, "evidence bundle: %s", sub.msg);
    int rc = dec_cert(&m->certificate, &b->cert, &b->cert_len, "the city's", err);
    b->leaves = calloc(m->n_leaves, sizeof *b->leaves);
    b->cosigs = calloc(m->n_cosignatures + 1, sizeof *b->cosigs);
    if (rc == BG_OK && (b->leaves == NULL || b->cosigs == NULL))
        rc = bg_err_set(err, BG_ENOMEM, "out of memory");
    for (size_t i = 0; rc == BG_OK && i < m->n_leaves; i++, b->n_leaves++)
        rc = dec_leaf(m->leaves[i], &b->leaves[i], i, err);
    for (size_t i = 0; rc == BG_OK && i < m->n_cosignatures; i++) {
        rc = dec_cosig(m->cosignatures[i], &b->cosigs[i], err);
        b->n_cosigs++; /* counted so that its certificate is freed whatever happened */
    }
    return rc;
}

int
bg_audit_bundle_decode(const uint8_t *buf, size_t len, bg_audit_bundle **out, bg_err *err)
{
    *out = NULL;
    if (len == 0 || len > BG_AUDIT_BUNDLE_MAX)
        return bg_err_set(err, len ? BG_ELIMIT : BG_EPROTO, "evidence bundle: %zu bytes (1..%d)",
                          len, BG_AUDIT_BUNDLE_MAX);
    Baygate__EvidenceBundle *m = bg_pb_unpack(&baygate__evidence_bundle__descriptor, len, buf);
    if (m == NULL)
        return bg_err_set(err, BG_EPROTO, "evidence bundle: does not parse");
    int rc = dec_check(m, err);
    bg_audit_bundle *b = rc == BG_OK ? calloc(1, sizeof *b) : NULL;
    if (rc == BG_OK && b == NULL)
        rc = bg_err_set(err, BG_ENOMEM, "out of memory");
    if (rc == BG_OK)
        rc = dec_parts(m, b, err);
    bg_pb_free(m);
    if (rc != BG_OK) {
        bg_audit_bundle_free(b);
        return rc;
    }
    *out = b;
    return BG_OK;
}
