/*
 * audit_wire.c - leaves, tree heads and cosignatures to and from protobuf.
 *
 * Every parser here is strict: each length is bounded before use, unknown
 * fields are refused, and the bytes must be exactly what packing the parsed
 * message gives back. So a leaf, head or cosignature has one encoding, and a
 * hash or signature over it cannot be replayed over a variant.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "gateway/audit/audit_int.h"
#include "proto/pb.h"

bool
bg_audit_city_ok(const char *s)
{
    if (s == NULL || strlen(s) != 6)
        return false;
    for (int i = 0; i < 6; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

/* 0..max printable ASCII bytes without spaces (purpose, list). */
static bool
token_ok(const char *s, size_t max)
{
    size_t n = strnlen(s, max + 1);
    if (n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e)
            return false;
    return true;
}

/* 0..max printable ASCII bytes, and no run of 18+ letters and digits: a
 * reason is for people, and that is the shape of a USCC. */
static bool
reason_ok(const char *s, size_t max)
{
    size_t n = strnlen(s, max + 1), run = 0;
    if (n > max)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c > 0x7e)
            return false;
        bool alnum = (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
        run = alnum ? run + 1 : 0;
        if (run >= 18)
            return false;
    }
    return true;
}

const char *
bg_audit_kind_name(int kind)
{
    switch (kind) {
    case BG_AUDIT_REQUEST_SENT:
        return "request-sent";
    case BG_AUDIT_ANSWER_RECEIVED:
        return "answer-received";
    case BG_AUDIT_REQUEST_FAILED:
        return "request-failed";
    case BG_AUDIT_REQUEST_RECEIVED:
        return "request-received";
    case BG_AUDIT_REQUEST_ANSWERED:
        return "request-answered";
    case BG_AUDIT_REQUEST_REFUSED:
        return "request-refused";
    case BG_AUDIT_ANSWER_NOT_SENT:
        return "answer-not-sent";
    default:
        return "?";
    }
}

static bg_audit_direction
direction_of(int kind)
{
    return kind <= BG_AUDIT_REQUEST_FAILED ? BG_AUDIT_OUTBOUND : BG_AUDIT_INBOUND;
}

int
bg_audit_leaf_encode(const bg_audit_event *ev, const char *city, uint8_t out[BG_AUDIT_LEAF_MAX],
                     size_t *len, bg_err *err)
{
    if (ev->kind < BG_AUDIT_REQUEST_SENT || ev->kind > BG_AUDIT_ANSWER_NOT_SENT)
        return bg_err_set(err, BG_EINVAL, "audit event: unknown kind %d", (int)ev->kind);
    if (!bg_audit_city_ok(city))
        return bg_err_set(err, BG_EINVAL, "audit event: city is not a 6-digit code");
    if (!bg_audit_city_ok(ev->peer))
        return bg_err_set(err, BG_EINVAL, "audit event: peer is not a 6-digit code");
    if (!token_ok(ev->purpose, BG_AUDIT_TEXT_MAX))
        return bg_err_set(err, BG_EINVAL,
                          "audit event: purpose must be 0..64 printable bytes without spaces");
    if (!token_ok(ev->list, BG_AUDIT_TEXT_MAX))
        return bg_err_set(err, BG_EINVAL,
                          "audit event: list must be 0..64 printable bytes without spaces");
    if (!token_ok(ev->application, BG_AUDIT_TEXT_MAX))
        return bg_err_set(err, BG_EINVAL,
                          "audit event: application must be 0..64 printable bytes without spaces");
    if (!reason_ok(ev->reason, BG_AUDIT_REASON_MAX))
        return bg_err_set(err, BG_EINVAL,
                          "audit event: reason must be 0..128 printable ASCII bytes with no "
                          "identifier-like run of 18 letters or digits");
    if (ev->authorisation_ref_len > BG_AUDIT_REF_MAX)
        return bg_err_set(err, BG_EINVAL, "audit event: authorisation_ref longer than %d bytes",
                          BG_AUDIT_REF_MAX);

    Baygate__AuditLeaf m = BAYGATE__AUDIT_LEAF__INIT;
    m.version = 1;
    m.kind = (Baygate__AuditKind)ev->kind;
    m.time_ms = ev->time_ms;
    m.city = (char *)city;
    m.peer = (char *)ev->peer;
    m.direction = (Baygate__AuditDirection)direction_of(ev->kind);
    m.request_id.data = (uint8_t *)ev->request_id;
    m.request_id.len = BG_AUDIT_REQUEST_ID_LEN;
    if (ev->has_request_digest) {
        m.request_digest.data = (uint8_t *)ev->request_digest;
        m.request_digest.len = BG_AUDIT_HASH_LEN;
    }
    if (ev->has_answer_digest) {
        m.answer_digest.data = (uint8_t *)ev->answer_digest;
        m.answer_digest.len = BG_AUDIT_HASH_LEN;
    }
    m.purpose = (char *)ev->purpose;
    m.authorisation_ref.data = (uint8_t *)ev->authorisation_ref;
    m.authorisation_ref.len = ev->authorisation_ref_len;
    m.list = (char *)ev->list;
    m.epoch = ev->epoch;
    m.items_asked = ev->items_asked;
    m.items_answered = ev->items_answered;
    m.outcome = ev->outcome;
    m.reason = (char *)ev->reason;
    m.application = (char *)ev->application;
    size_t n = baygate__audit_leaf__get_packed_size(&m);
    if (n > BG_AUDIT_LEAF_MAX) /* cannot happen within the bounds above; checked anyway */
        return bg_err_set(err, BG_ELIMIT, "audit leaf of %zu bytes is too large", n);
    baygate__audit_leaf__pack(&m, out);
    *len = n;
    return BG_OK;
}

/* True iff packing m gives exactly buf[0..len). */
#define CANONICAL(pfx, m, buf, len, ok)                                                            \
    do {                                                                                           \
        size_t n_ = pfx##__get_packed_size(m);                                                     \
        ok = false;                                                                                \
        if (n_ == (len)) {                                                                         \
            uint8_t *b_ = malloc(n_ ? n_ : 1);                                                     \
            if (b_ != NULL) {                                                                      \
                pfx##__pack(m, b_);                                                                \
                ok = memcmp(b_, buf, n_) == 0;                                                     \
                free(b_);                                                                          \
            }                                                                                      \
        }                                                                                          \
    } while (0)

int
bg_audit_leaf_decode(const uint8_t *leaf, size_t len, bg_audit_event *ev, bg_err *err)
{
    if (len == 0 || len > BG_AUDIT_LEAF_MAX)
        return bg_err_set(err, BG_EPROTO, "audit leaf: %zu bytes is out of bounds", len);
    Baygate__AuditLeaf *m = bg_pb_unpack(&baygate__audit_leaf__descriptor, len, leaf);
    if (m == NULL)
        return bg_err_set(err, BG_EPROTO, "audit leaf: does not parse");
    int rc = BG_OK;
    bool canon;
    CANONICAL(baygate__audit_leaf, m, leaf, len, canon);
    if (m->base.n_unknown_fields != 0 || !canon) {
        rc = bg_err_set(err, BG_EPROTO, "audit leaf: unknown fields or not canonical");
        goto out;
    }
    int kind = (int)m->kind;
    if (m->version != 1 || kind < BG_AUDIT_REQUEST_SENT || kind > BG_AUDIT_ANSWER_NOT_SENT ||
        (int)m->direction != (int)direction_of(kind)) {
        rc = bg_err_set(err, BG_EPROTO, "audit leaf: bad version, kind or direction");
        goto out;
    }
    if (!bg_audit_city_ok(m->city) || !bg_audit_city_ok(m->peer) ||
        m->request_id.len != BG_AUDIT_REQUEST_ID_LEN ||
        (m->request_digest.len != 0 && m->request_digest.len != BG_AUDIT_HASH_LEN) ||
        (m->answer_digest.len != 0 && m->answer_digest.len != BG_AUDIT_HASH_LEN) ||
        m->authorisation_ref.len > BG_AUDIT_REF_MAX || !token_ok(m->purpose, BG_AUDIT_TEXT_MAX) ||
        !token_ok(m->list, BG_AUDIT_TEXT_MAX) || !reason_ok(m->reason, BG_AUDIT_REASON_MAX) ||
        !token_ok(m->application, BG_AUDIT_TEXT_MAX)) {
        rc = bg_err_set(err, BG_EPROTO, "audit leaf: a field is out of bounds");
        goto out;
    }
    memset(ev, 0, sizeof *ev);
    ev->kind = (bg_audit_kind)m->kind;
    ev->time_ms = m->time_ms;
    memcpy(ev->city, m->city, 7);
    memcpy(ev->peer, m->peer, 7);
    ev->direction = direction_of(m->kind);
    memcpy(ev->request_id, m->request_id.data, BG_AUDIT_REQUEST_ID_LEN);
    ev->has_request_digest = m->request_digest.len != 0;
    if (ev->has_request_digest)
        memcpy(ev->request_digest, m->request_digest.data, BG_AUDIT_HASH_LEN);
    ev->has_answer_digest = m->answer_digest.len != 0;
    if (ev->has_answer_digest)
        memcpy(ev->answer_digest, m->answer_digest.data, BG_AUDIT_HASH_LEN);
    snprintf(ev->purpose, sizeof ev->purpose, "%s", m->purpose);
    if (m->authorisation_ref.len > 0)
        memcpy(ev->authorisation_ref, m->authorisation_ref.data, m->authorisation_ref.len);
    ev->authorisation_ref_len = m->authorisation_ref.len;
    snprintf(ev->list, sizeof ev->list, "%s", m->list);
    ev->epoch = m->epoch;
    ev->items_asked = m->items_asked;
    ev->items_answered = m->items_answered;
    ev->outcome = m->outcome;
    snprintf(ev->reason, sizeof ev->reason, "%s", m->reason);
    snprintf(ev->application, sizeof ev->application, "%s", m->application);
out:
    bg_pb_free(m);
    return rc;
}

/* --- tree heads --- */

int
bg_audit_tree_head_build(bg_audit_head *h, bg_err *err)
{
    if (!bg_audit_city_ok(h->origin))
        return bg_err_set(err, BG_EINVAL, "tree head: origin is not a 6-digit code");
    Baygate__TreeHead m = BAYGATE__TREE_HEAD__INIT;
    m.version = 1;
    m.origin = h->origin;
    m.tree_size = h->size;
    m.root_hash.data = h->root;
    m.root_hash.len = BG_AUDIT_HASH_LEN;
    m.timestamp_ms = h->timestamp_ms;
    size_t n = baygate__tree_head__get_packed_size(&m);
    if (n > sizeof h->head)
        return bg_err_set(err, BG_ELIMIT, "tree head: too large");
    baygate__tree_head__pack(&m, h->head);
    h->head_len = n;
    return BG_OK;
}

int
bg_audit_tree_head_parse(const uint8_t *buf, size_t len, bg_audit_head *h, bg_err *err)
{
    if (len == 0 || len > BG_AUDIT_HEAD_BYTES_MAX)
        return bg_err_set(err, BG_EPROTO, "tree head: %zu bytes is out of bounds", len);
    Baygate__TreeHead *m = bg_pb_unpack(&baygate__tree_head__descriptor, len, buf);
    if (m == NULL)
        return bg_err_set(err, BG_EPROTO, "tree head: does not parse");
    int rc = BG_OK;
    bool canon;
    CANONICAL(baygate__tree_head, m, buf, len, canon);
    if (m->base.n_unknown_fields != 0 || !canon)
        rc = bg_err_set(err, BG_EPROTO, "tree head: unknown fields or not canonical");
    else if (m->version != 1)
        rc = bg_err_set(err, BG_EPROTO, "tree head: version %u is not 1", m->version);
    else if (!bg_audit_city_ok(m->origin))
        rc = bg_err_set(err, BG_EPROTO, "tree head: origin is not a 6-digit code");
    else if (m->root_hash.len != BG_AUDIT_HASH_LEN)
        rc = bg_err_set(err, BG_EPROTO, "tree head: root hash is %zu bytes, not 32",
                        m->root_hash.len);
    else if (m->tree_size > BG_AUDIT_MAX_LEAVES)
        rc = bg_err_set(err, BG_EPROTO, "tree head: size %" PRIu64 " is beyond the bound",
                        m->tree_size);
    if (rc == BG_OK) {
        memcpy(h->origin, m->origin, 7);
        h->size = m->tree_size;
        memcpy(h->root, m->root_hash.data, BG_AUDIT_HASH_LEN);
        h->timestamp_ms = m->timestamp_ms;
        memcpy(h->head, buf, len);
        h->head_len = len;
    }
    bg_pb_free(m);
    return rc;
}

int
bg_audit_head_encode(const bg_audit_head *h, uint8_t out[BG_AUDIT_SIGNED_HEAD_MAX], size_t *len,
                     bg_err *err)
{
    if (h->head_len == 0 || h->head_len > BG_AUDIT_HEAD_BYTES_MAX || h->sig_len == 0 ||
        h->sig_len > BG_SIG_MAX)
        return bg_err_set(err, BG_EINVAL, "tree head: not a signed head");
    Baygate__SignedTreeHead m = BAYGATE__SIGNED_TREE_HEAD__INIT;
    m.head.data = (uint8_t *)h->head;
    m.head.len = h->head_len;
    m.signature.data = (uint8_t *)h->sig;
    m.signature.len = h->sig_len;
    size_t n = baygate__signed_tree_head__get_packed_size(&m);
    if (n > BG_AUDIT_SIGNED_HEAD_MAX)
        return bg_err_set(err, BG_ELIMIT, "signed tree head: too large");
    baygate__signed_tree_head__pack(&m, out);
    *len = n;
    return BG_OK;
}

int
bg_audit_head_decode(const uint8_t *buf, size_t len, bg_audit_head *h, bg_err *err)
{
    if (len == 0 || len > BG_AUDIT_SIGNED_HEAD_MAX)
        return bg_err_set(err, BG_EPROTO, "signed tree head: %zu bytes is out of bounds", len);
    Baygate__SignedTreeHead *m = bg_pb_unpack(&baygate__signed_tree_head__descriptor, len, buf);
    if (m == NULL)
        return bg_err_set(err, BG_EPROTO, "signed tree head: does not parse");
    int rc = BG_OK;
    bool canon;
    CANONICAL(baygate__signed_tree_head, m, buf, len, canon);
    bg_audit_head tmp;
    memset(&tmp, 0, sizeof tmp);
    if (m->base.n_unknown_fields != 0 || !canon)
        rc = bg_err_set(err, BG_EPROTO, "signed tree head: unknown fields or not canonical");
    else if (m->signature.len == 0 || m->signature.len > BG_SIG_MAX)
        rc = bg_err_set(err, BG_EPROTO, "signed tree head: signature of %zu bytes",
                        m->signature.len);
    else
        rc = bg_audit_tree_head_parse(m->head.data, m->head.len, &tmp, err);
    if (rc == BG_OK) {
        memcpy(tmp.sig, m->signature.data, m->signature.len);
        tmp.sig_len = m->signature.len;
        *h = tmp;
    }
    bg_pb_free(m);
    return rc;
}

int
bg_audit_head_make(EVP_PKEY *key, const char *origin, uint64_t size, const bg_audit_hash root,
                   int64_t timestamp_ms, bg_audit_head *out, bg_err *err)
{
    bg_audit_head h;
    memset(&h, 0, sizeof h);
    if (!bg_audit_city_ok(origin))
        return bg_err_set(err, BG_EINVAL, "tree head: origin is not a 6-digit code");
    memcpy(h.origin, origin, 7);
    h.size = size;
    memcpy(h.root, root, BG_AUDIT_HASH_LEN);
    h.timestamp_ms = timestamp_ms;
    int rc = bg_audit_tree_head_build(&h, err);
    if (rc == BG_OK)
        rc = bg_sig_sign(key, BG_SIG_CTX_TREE_HEAD, h.head, h.head_len, h.sig, &h.sig_len, err);
    if (rc == BG_OK)
        *out = h;
    return rc;
}

/* The fields must be what the signed bytes say: a caller could have edited
 * the struct after decoding, and the signature only covers the bytes. */
static int
head_fields_match(const bg_audit_head *h, bg_err *err)
{
    bg_audit_head p;
    int rc = bg_audit_tree_head_parse(h->head, h->head_len, &p, err);
    if (rc != BG_OK)
        return rc;
    if (strcmp(p.origin, h->origin) != 0 || p.size != h->size ||
        memcmp(p.root, h->root, BG_AUDIT_HASH_LEN) != 0 || p.timestamp_ms != h->timestamp_ms)
        return bg_err_set(err, BG_ECRYPTO, "tree head: fields differ from the signed bytes");
    return BG_OK;
}

int
bg_audit_head_verify(const bg_audit_head *h, EVP_PKEY *key, X509 *cert, bg_err *err)
{
    int rc = head_fields_match(h, err);
    if (rc != BG_OK)
        return rc;
    if (h->sig_len == 0 || h->sig_len > BG_SIG_MAX)
        return bg_err_set(err, BG_ECRYPTO, "tree head: not signed");
    bg_err sub = {0};
    if (key != NULL)
        rc = bg_sig_verify(key, BG_SIG_CTX_TREE_HEAD, h->head, h->head_len, h->sig, h->sig_len,
                           &sub);
    else if (cert != NULL)
        rc = bg_sig_verify_cert(cert, BG_SIG_CTX_TREE_HEAD, h->head, h->head_len, h->sig,
                                h->sig_len, &sub);
    else
        return bg_err_set(err, BG_EINVAL, "tree head: no key to verify with");
    if (rc != BG_OK)
        return bg_err_set(err, BG_ECRYPTO, "tree head of %s at size %" PRIu64 ": %s", h->origin,
                          h->size, sub.msg);
    return BG_OK;
}

/* --- cosignatures --- */

static int
cosig_body_build(bg_audit_cosig *c, bg_err *err)
{
    Baygate__Cosignature m = BAYGATE__COSIGNATURE__INIT;
    m.version = 1;
    m.witness = c->witness;
    m.head.data = c->head.head;
    m.head.len = c->head.head_len;
    m.cosigned_at_ms = c->cosigned_at_ms;
    size_t n = baygate__cosignature__get_packed_size(&m);
    if (n > sizeof c->body)
        return bg_err_set(err, BG_ELIMIT, "cosignature: too large");
    baygate__cosignature__pack(&m, c->body);
    c->body_len = n;
    return BG_OK;
}

/* Fills c's fields from signed body bytes, strictly. */
static int
cosig_body_parse(const uint8_t *buf, size_t len, bg_audit_cosig *c, bg_err *err)
{
    if (len == 0 || len > BG_AUDIT_COSIG_BYTES_MAX)
        return bg_err_set(err, BG_EPROTO, "cosignature: %zu bytes is out of bounds", len);
    Baygate__Cosignature *m = bg_pb_unpack(&baygate__cosignature__descriptor, len, buf);
    if (m == NULL)
        return bg_err_set(err, BG_EPROTO, "cosignature: does not parse");
    int rc = BG_OK;
    bool canon;
    CANONICAL(baygate__cosignature, m, buf, len, canon);
    if (m->base.n_unknown_fields != 0 || !canon)
        rc = bg_err_set(err, BG_EPROTO, "cosignature: unknown fields or not canonical");
    else if (m->version != 1 || !bg_audit_city_ok(m->witness))
        rc = bg_err_set(err, BG_EPROTO, "cosignature: bad version or witness");
    else
        rc = bg_audit_tree_head_parse(m->head.data, m->head.len, &c->head, err);
    if (rc == BG_OK) {
        memcpy(c->witness, m->witness, 7);
        c->cosigned_at_ms = m->cosigned_at_ms;
        memcpy(c->body, buf, len);
        c->body_len = len;
        c->head.sig_len = 0;
    }
    bg_pb_free(m);
    return rc;
}

int
bg_audit_cosig_make(EVP_PKEY *key, const char *witness, const bg_audit_head *head, int64_t now_ms,
                    bg_audit_cosig *out, bg_err *err)
{
    bg_audit_cosig c;
    memset(&c, 0, sizeof c);
    memcpy(c.witness, witness, 7);
    c.head = *head;
    c.cosigned_at_ms = now_ms;
    int rc = cosig_body_build(&c, err);
    if (rc == BG_OK)
        rc = bg_sig_sign(key, BG_SIG_CTX_COSIGN, c.body, c.body_len, c.sig, &c.sig_len, err);
    if (rc == BG_OK)
        *out = c;
    return rc;
}

int
bg_audit_cosig_encode(const bg_audit_cosig *c, uint8_t out[BG_AUDIT_SIGNED_COSIG_MAX], size_t *len,
                      bg_err *err)
{
    if (c->body_len == 0 || c->body_len > BG_AUDIT_COSIG_BYTES_MAX || c->sig_len == 0 ||
        c->sig_len > BG_SIG_MAX)
        return bg_err_set(err, BG_EINVAL, "cosignature: not a signed cosignature");
    Baygate__SignedCosignature m = BAYGATE__SIGNED_COSIGNATURE__INIT;
    m.cosignature.data = (uint8_t *)c->body;
    m.cosignature.len = c->body_len;
    m.signature.data = (uint8_t *)c->sig;
    m.signature.len = c->sig_len;
    size_t n = baygate__signed_cosignature__get_packed_size(&m);
    if (n > BG_AUDIT_SIGNED_COSIG_MAX)
        return bg_err_set(err, BG_ELIMIT, "signed cosignature: too large");
    baygate__signed_cosignature__pack(&m, out);
    *len = n;
    return BG_OK;
}

int
bg_audit_cosig_decode(const uint8_t *buf, size_t len, bg_audit_cosig *c, bg_err *err)
{
    if (len == 0 || len > BG_AUDIT_SIGNED_COSIG_MAX)
        return bg_err_set(err, BG_EPROTO, "signed cosignature: %zu bytes is out of bounds", len);
    Baygate__SignedCosignature *m =
        bg_pb_unpack(&baygate__signed_cosignature__descriptor, len, buf);
    if (m == NULL)
        return bg_err_set(err, BG_EPROTO, "signed cosignature: does not parse");
    int rc = BG_OK;
    bool canon;
    CANONICAL(baygate__signed_cosignature, m, buf, len, canon);
    bg_audit_cosig tmp;
    memset(&tmp, 0, sizeof tmp);
    if (m->base.n_unknown_fields != 0 || !canon)
        rc = bg_err_set(err, BG_EPROTO, "signed cosignature: unknown fields or not canonical");
    else if (m->signature.len == 0 || m->signature.len > BG_SIG_MAX)
        rc = bg_err_set(err, BG_EPROTO, "signed cosignature: signature of %zu bytes",
                        m->signature.len);
    else
        rc = cosig_body_parse(m->cosignature.data, m->cosignature.len, &tmp, err);
    if (rc == BG_OK) {
        memcpy(tmp.sig, m->signature.data, m->signature.len);
        tmp.sig_len = m->signature.len;
        *c = tmp;
    }
    bg_pb_free(m);
    return rc;
}

int
bg_audit_cosig_verify(const bg_audit_cosig *c, EVP_PKEY *key, X509 *cert, bg_err *err)
{
    /* The fields must be what the signed body says. */
    bg_audit_cosig p;
    memset(&p, 0, sizeof p);
    int rc = cosig_body_parse(c->body, c->body_len, &p, err);
    if (rc != BG_OK)
        return rc;
    if (strcmp(p.witness, c->witness) != 0 || p.cosigned_at_ms != c->cosigned_at_ms ||
        p.head.head_len != c->head.head_len ||
        memcmp(p.head.head, c->head.head, p.head.head_len) != 0 ||
        strcmp(p.head.origin, c->head.origin) != 0 || p.head.size != c->head.size ||
        memcmp(p.head.root, c->head.root, BG_AUDIT_HASH_LEN) != 0 ||
        p.head.timestamp_ms != c->head.timestamp_ms)
        return bg_err_set(err, BG_ECRYPTO, "cosignature: fields differ from the signed bytes");
    if (c->sig_len == 0 || c->sig_len > BG_SIG_MAX)
        return bg_err_set(err, BG_ECRYPTO, "cosignature: not signed");
    bg_err sub = {0};
    if (key != NULL)
        rc = bg_sig_verify(key, BG_SIG_CTX_COSIGN, c->body, c->body_len, c->sig, c->sig_len, &sub);
    else if (cert != NULL)
        rc = bg_sig_verify_cert(cert, BG_SIG_CTX_COSIGN, c->body, c->body_len, c->sig, c->sig_len,
                                &sub);
    else
        return bg_err_set(err, BG_EINVAL, "cosignature: no key to verify with");
    if (rc != BG_OK)
        return bg_err_set(err, BG_ECRYPTO, "cosignature by %s of %s's head at size %" PRIu64 ": %s",
                          c->witness, c->head.origin, c->head.size, sub.msg);
    return BG_OK;
}
