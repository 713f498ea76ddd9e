/*
 * attest_wire.c - the attestation's wire form (proto/attest.proto): encoding, and
 * decoding hostile bytes under bg_pb_unpack's budget with every length
 * checked.
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
#include "proto/attest.pb-c.h"
#include "proto/pb.h"

ProtobufCBinaryData
bg_attest_bin(const uint8_t *p, size_t n)
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
        path[i] = bg_attest_bin(a->path[i], BG_ATTEST_DB);
    Baygate__AttestationProof pr = BAYGATE__ATTESTATION_PROOF__INIT;
    pr.list = (char *)a->list;
    pr.generation = a->generation;
    pr.epoch = a->epoch;
    pr.count = a->count;
    pr.flags = a->flags;
    pr.index = a->index;
    pr.tag = bg_attest_bin(a->tag, sizeof a->tag);
    pr.sealed = bg_attest_bin(a->sealed, sizeof a->sealed);
    pr.opening_key = bg_attest_bin(a->opening_key, sizeof a->opening_key);
    pr.n_path = a->path_len;
    pr.path = path;
    pr.digest_signature = bg_attest_bin(a->signature, a->signature_len);
    pr.issuer_certificate = bg_attest_bin(a->cert, a->cert_len);
    pr.root = bg_attest_bin(a->root, sizeof a->root);
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
    m.evidence = bg_attest_bin(a->evidence, sizeof a->evidence);
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
    if (!bg_attest_str_in(a->issuer, m->issuer, BG_CITY_CODE_LEN, false) ||
        !bg_city_code_valid(a->issuer))
        return "issuer";
    if (!bg_attest_str_in(a->uscc, m->uscc, BG_SNAP_INPUT_MAX, false))
        return "uscc";
    if (!bg_attest_str_in(a->grade, m->grade, BG_SNAP_GRADE_MAX, false))
        return "grade";
    if (!bg_attest_str_in(a->scale, m->scale, BG_SNAP_SCALE_MAX, true))
        return "scale";
    if (!bg_attest_str_in(a->common_grade, m->common_grade, BG_GRADE_MAX, false))
        return "common_grade";
    if (m->common_rank == 0 || m->common_rank > BG_SCALE_MAX_GRADES)
        return "common_rank";
    a->common_rank = m->common_rank;
    a->evaluated_at = m->evaluated_at;
    a->valid_until = m->valid_until;
    a->listed_at = m->listed_at;
    a->expires_at = m->expires_at;
    a->serial = m->serial;
    if (!bytes_in(a->evidence, &m->evidence, BG_ATTEST_DB))
        return "evidence";
    if (p == NULL)
        return "proof";
    if (p->base.n_unknown_fields != 0)
        return "proof: unknown fields";
    if (!bg_attest_str_in(a->list, p->list, BG_SNAP_LIST_MAX, false))
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
    if (!bytes_in(a->root, &p->root, BG_ATTEST_DB))
        return "proof.root";
    if (p->n_path > BG_SNAP_PATH_MAX)
        return "proof.path (too long)";
    for (size_t i = 0; i < p->n_path; i++)
        if (!bytes_in(a->path[i], &p->path[i], BG_ATTEST_DB))
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
