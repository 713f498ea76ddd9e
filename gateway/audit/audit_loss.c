/*
 * audit_loss.c - loss statements: a restored log's signed admission that the heads
 * its witnesses hold are gone and where it continues from (audit.h), their
 * encoding and the owner's losses.log.
 *
 * The parser is strict like the other audit encodings (audit_wire.c): bounds first,
 * no unknown fields, and the bytes must be what packing the parsed message gives
 * back, so one statement has one encoding and its signature one meaning.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/file.h"
#include "gateway/audit/audit_int.h"
#include "proto/pb.h"

/* True iff packing m (of descriptor d) gives exactly buf[0..len). */
static bool
canonical(const ProtobufCMessage *m, const uint8_t *buf, size_t len)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    if (n != len)
        return false;
    uint8_t *b = malloc(n ? n : 1);
    if (b == NULL)
        return false;
    protobuf_c_message_pack(m, b);
    bool same = memcmp(b, buf, n) == 0;
    free(b);
    return same;
}

/* Packs l's fields into l->body. */
static int
loss_body_build(bg_audit_loss *l, bg_err *err)
{
    ProtobufCBinaryData heads[BG_AUDIT_LOSS_HEADS_MAX];
    for (size_t i = 0; i < l->nsuperseded; i++) {
        heads[i].data = l->superseded[i].head;
        heads[i].len = l->superseded[i].head_len;
    }
    Baygate__LossStatement m = BAYGATE__LOSS_STATEMENT__INIT;
    m.version = 1;
    m.origin = l->origin;
    m.base_size = l->base_size;
    m.base_root.data = l->base_root;
    m.base_root.len = BG_AUDIT_HASH_LEN;
    m.n_superseded = l->nsuperseded;
    m.superseded = heads;
    m.timestamp_ms = l->timestamp_ms;
    size_t n = baygate__loss_statement__get_packed_size(&m);
    if (n > sizeof l->body)
        return bg_err_set(err, BG_ELIMIT, "loss statement: %zu bytes is too large", n);
    baygate__loss_statement__pack(&m, l->body);
    l->body_len = n;
    return BG_OK;
}

/* Fills l's fields from its signed body bytes, strictly. */
static int
loss_body_parse(const uint8_t *buf, size_t len, bg_audit_loss *l, bg_err *err)
{
    if (len == 0 || len > BG_AUDIT_LOSS_BYTES_MAX)
        return bg_err_set(err, BG_EPROTO, "loss statement: %zu bytes is out of bounds", len);
    Baygate__LossStatement *m = bg_pb_unpack(&baygate__loss_statement__descriptor, len, buf);
    if (m == NULL)
        return bg_err_set(err, BG_EPROTO, "loss statement: does not parse");
    int rc = BG_OK;
    if (m->base.n_unknown_fields != 0 || !canonical(&m->base, buf, len))
        rc = bg_err_set(err, BG_EPROTO, "loss statement: unknown fields or not canonical");
    else if (m->version != 1 || !bg_audit_city_ok(m->origin))
        rc = bg_err_set(err, BG_EPROTO, "loss statement: bad version or origin");
    else if (m->base_root.len != BG_AUDIT_HASH_LEN || m->base_size > BG_AUDIT_MAX_LEAVES)
        rc = bg_err_set(err, BG_EPROTO, "loss statement: bad base");
    else if (m->n_superseded == 0 || m->n_superseded > BG_AUDIT_LOSS_HEADS_MAX)
        rc = bg_err_set(err, BG_EPROTO, "loss statement: %zu superseded heads (1..%d)",
                        m->n_superseded, BG_AUDIT_LOSS_HEADS_MAX);
    for (size_t i = 0; rc == BG_OK && i < m->n_superseded; i++) {
        bg_audit_head *h = &l->superseded[i];
        memset(h, 0, sizeof *h);
        rc = bg_audit_tree_head_parse(m->superseded[i].data, m->superseded[i].len, h, err);
        if (rc == BG_OK && strcmp(h->origin, m->origin) != 0)
            rc = bg_err_set(err, BG_EPROTO, "loss statement of %s gives up a head of %s", m->origin,
                            h->origin);
    }
    if (rc == BG_OK) {
        memcpy(l->origin, m->origin, 7);
        l->base_size = m->base_size;
        memcpy(l->base_root, m->base_root.data, BG_AUDIT_HASH_LEN);
        l->timestamp_ms = m->timestamp_ms;
        l->nsuperseded = m->n_superseded;
        memcpy(l->body, buf, len);
        l->body_len = len;
    }
    bg_pb_free(m);
    return rc;
}

int
bg_audit_loss_make(EVP_PKEY *key, const char *origin, uint64_t base_size,
                   const bg_audit_hash base_root, const bg_audit_head *heads, size_t n,
                   int64_t now_ms, bg_audit_loss *out, bg_err *err)
{
    if (!bg_audit_city_ok(origin))
        return bg_err_set(err, BG_EINVAL, "loss statement: origin is not a 6-digit code");
    if (n == 0 || n > BG_AUDIT_LOSS_HEADS_MAX)
        return bg_err_set(err, BG_EINVAL, "loss statement: %zu heads to give up (1..%d)", n,
                          BG_AUDIT_LOSS_HEADS_MAX);
    bg_audit_loss *l = calloc(1, sizeof *l);
    if (l == NULL)
        return bg_err_set(err, BG_ENOMEM, "out of memory");
    memcpy(l->origin, origin, 7);
    l->base_size = base_size;
    memcpy(l->base_root, base_root, BG_AUDIT_HASH_LEN);
    l->timestamp_ms = now_ms;
    l->nsuperseded = n;
    int rc = BG_OK;
    for (size_t i = 0; rc == BG_OK && i < n; i++) {
        if (strcmp(heads[i].origin, origin) != 0 || heads[i].head_len == 0)
            rc = bg_err_set(err, BG_EINVAL, "loss statement: head %zu is not a head of %s", i,
                            origin);
        l->superseded[i] = heads[i];
        l->superseded[i].sig_len = 0;
    }
    if (rc == BG_OK)
        rc = loss_body_build(l, err);
    if (rc == BG_OK)
        rc = bg_sig_sign(key, BG_SIG_CTX_LOSS, l->body, l->body_len, l->sig, &l->sig_len, err);
    if (rc == BG_OK)
        *out = *l;
    free(l);
    return rc;
}

int
bg_audit_loss_encode(const bg_audit_loss *l, uint8_t out[BG_AUDIT_SIGNED_LOSS_MAX], size_t *len,
                     bg_err *err)
{
    if (l->body_len == 0 || l->body_len > BG_AUDIT_LOSS_BYTES_MAX || l->sig_len == 0 ||
        l->sig_len > BG_SIG_MAX)
        return bg_err_set(err, BG_EINVAL, "loss statement: not a signed statement");
    Baygate__SignedLossStatement m = BAYGATE__SIGNED_LOSS_STATEMENT__INIT;
    m.statement.data = (uint8_t *)l->body;
    m.statement.len = l->body_len;
    m.signature.data = (uint8_t *)l->sig;
    m.signature.len = l->sig_len;
    size_t n = baygate__signed_loss_statement__get_packed_size(&m);
    if (n > BG_AUDIT_SIGNED_LOSS_MAX)
        return bg_err_set(err, BG_ELIMIT, "signed loss statement: too large");
    baygate__signed_loss_statement__pack(&m, out);
    *len = n;
    return BG_OK;
}

int
bg_audit_loss_decode(const uint8_t *buf, size_t len, bg_audit_loss *l, bg_err *err)
{
    if (len == 0 || len > BG_AUDIT_SIGNED_LOSS_MAX)
        return bg_err_set(err, BG_EPROTO, "signed loss statement: %zu bytes is out of bounds", len);
    Baygate__SignedLossStatement *m =
        bg_pb_unpack(&baygate__signed_loss_statement__descriptor, len, buf);
    if (m == NULL)
        return bg_err_set(err, BG_EPROTO, "signed loss statement: does not parse");
    bg_audit_loss *tmp = calloc(1, sizeof *tmp);
    int rc = tmp == NULL ? bg_err_set(err, BG_ENOMEM, "out of memory") : BG_OK;
    if (rc == BG_OK && (m->base.n_unknown_fields != 0 || !canonical(&m->base, buf, len)))
        rc = bg_err_set(err, BG_EPROTO, "signed loss statement: unknown fields or not canonical");
    else if (rc == BG_OK && (m->signature.len == 0 || m->signature.len > BG_SIG_MAX))
        rc = bg_err_set(err, BG_EPROTO, "signed loss statement: signature of %zu bytes",
                        m->signature.len);
    else if (rc == BG_OK)
        rc = loss_body_parse(m->statement.data, m->statement.len, tmp, err);
    if (rc == BG_OK) {
        memcpy(tmp->sig, m->signature.data, m->signature.len);
        tmp->sig_len = m->signature.len;
        *l = *tmp;
    }
    free(tmp);
    bg_pb_free(m);
    return rc;
}

int
bg_audit_loss_verify(const bg_audit_loss *l, EVP_PKEY *key, X509 *cert, bg_err *err)
{
    /* The fields must be what the signed bytes say (the struct may have been edited). */
    bg_audit_loss *p = calloc(1, sizeof *p);
    if (p == NULL)
        return bg_err_set(err, BG_ENOMEM, "out of memory");
    int rc = loss_body_parse(l->body, l->body_len, p, err);
    if (rc == BG_OK && (strcmp(p->origin, l->origin) != 0 || p->base_size != l->base_size ||
                        memcmp(p->base_root, l->base_root, BG_AUDIT_HASH_LEN) != 0 ||
                        p->timestamp_ms != l->timestamp_ms || p->nsuperseded != l->nsuperseded))
        rc = bg_err_set(err, BG_ECRYPTO, "loss statement: fields differ from the signed bytes");
    for (size_t i = 0; rc == BG_OK && i < p->nsuperseded; i++)
        if (p->superseded[i].head_len != l->superseded[i].head_len ||
            memcmp(p->superseded[i].head, l->superseded[i].head, p->superseded[i].head_len) != 0)
            rc = bg_err_set(err, BG_ECRYPTO,
                            "loss statement: head %zu differs from the signed "
                            "bytes",
                            i);
    free(p);
    if (rc != BG_OK)
        return rc;
    bg_err sub = {0};
    if (key != NULL)
        rc = bg_sig_verify(key, BG_SIG_CTX_LOSS, l->body, l->body_len, l->sig, l->sig_len, &sub);
    else if (cert != NULL)
        rc = bg_sig_verify_cert(cert, BG_SIG_CTX_LOSS, l->body, l->body_len, l->sig, l->sig_len,
                                &sub);
    else
        return bg_err_set(err, BG_EINVAL, "loss statement: no key to verify with");
    if (rc != BG_OK)
        return bg_err_set(err, BG_ECRYPTO, "loss statement of %s (base %" PRIu64 "): %s", l->origin,
                          l->base_size, sub.msg);
    return BG_OK;
}

bool
bg_audit_loss_covers(const bg_audit_loss *l, const bg_audit_head *head)
{
    for (size_t i = 0; i < l->nsuperseded; i++)
        if (l->superseded[i].head_len == head->head_len &&
            memcmp(l->superseded[i].head, head->head, head->head_len) == 0)
            return true;
    return false;
}

uint64_t
bg_audit_loss_lost_to(const bg_audit_loss *l)
{
    uint64_t to = l->base_size;
    for (size_t i = 0; i < l->nsuperseded; i++)
        if (l->superseded[i].size > to)
            to = l->superseded[i].size;
    return to;
}

/* --- losses.log --- */

int
bg_audit_loss_append(const char *dir, const bg_audit_loss *l, bg_err *err)
{
    char path[1100];
    int rc = bg_path_join(path, sizeof path, dir, BG_AUDIT_LOSSES_FILE, err);
    if (rc != BG_OK)
        return rc;
    uint8_t enc[BG_AUDIT_SIGNED_LOSS_MAX], framed[BG_AUDIT_SIGNED_LOSS_MAX + BG_AUDIT_REC_OVERHEAD];
    size_t len = 0;
    if ((rc = bg_audit_loss_encode(l, enc, &len, err)) != BG_OK)
        return rc;
    bg_rec_file f;
    if ((rc = bg_rec_open(&f, path, BG_AUDIT_CREATE, true, BG_AUDIT_RECORD_MAX, NULL, NULL, NULL,
                          err)) != BG_OK)
        return rc;
    size_t flen = bg_rec_frame(framed, enc, len, NULL);
    rc = bg_rec_append(&f, framed, flen, err);
    bg_rec_close(&f);
    return rc;
}

struct latest_ctx {
    const char *city, *path;
    bg_audit_loss *out;
    size_t count;
};

static int
on_loss(void *ctx, uint64_t off, const uint8_t *data, size_t len, const bg_audit_hash sum,
        bg_err *err)
{
    (void)sum;
    struct latest_ctx *c = ctx;
    bg_err sub = {0};
    if (bg_audit_loss_decode(data, len, c->out, &sub) != BG_OK)
        return bg_err_set(err, BG_EPROTO, "%s: record at offset %" PRIu64 ": %s", c->path, off,
                          sub.msg);
    if (strcmp(c->out->origin, c->city) != 0)
        return bg_err_set(err, BG_EPROTO, "%s: record at offset %" PRIu64 " is a statement of %s",
                          c->path, off, c->out->origin);
    c->count++;
    return BG_OK;
}

int
bg_audit_loss_latest(const char *dir, const char *city, bg_audit_loss *out, size_t *count,
                     bg_err *err)
{
    if (count != NULL)
        *count = 0;
    char path[1100];
    int rc = bg_path_join(path, sizeof path, dir, BG_AUDIT_LOSSES_FILE, err);
    if (rc != BG_OK)
        return rc;
    struct latest_ctx c = {.city = city, .path = path, .out = out};
    bg_rec_file f;
    rc = bg_rec_open(&f, path, BG_AUDIT_READ_ONLY, false, BG_AUDIT_RECORD_MAX, on_loss, &c, NULL,
                     err);
    if (rc == BG_ENOTFOUND)
        return bg_err_set(err, BG_ENOTFOUND, "no loss statement in %s", dir);
    if (rc != BG_OK)
        return rc;
    bg_rec_close(&f);
    if (count != NULL)
        *count = c.count;
    if (c.count == 0)
        return bg_err_set(err, BG_ENOTFOUND, "no loss statement in %s", dir);
    return BG_OK;
}

/* --- heads held by witnesses: the refused start's note, the operator's consent --- */

int
bg_audit_held_write(const char *path, const char *comment, const bg_audit_held *h, size_t n,
                    bg_err *err)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (f == NULL)
        return bg_err_set(err, BG_ENOMEM, "out of memory");
    for (const char *c = comment; c != NULL && *c != '\0';) {
        size_t k = strcspn(c, "\n");
        fprintf(f, "# %.*s\n", (int)k, c);
        c += k + (c[k] == '\n');
    }
    int rc = BG_OK;
    for (size_t i = 0; rc == BG_OK && i < n; i++) {
        uint8_t enc[BG_AUDIT_SIGNED_HEAD_MAX];
        size_t elen;
        if ((rc = bg_audit_head_encode(&h[i].head, enc, &elen, err)) != BG_OK)
            break;
        fprintf(f, "held %s %" PRIu64 " %" PRId64 " ", h[i].witness, h[i].head.size,
                h[i].head.timestamp_ms);
        for (size_t k = 0; k < elen; k++)
            fprintf(f, "%02x", enc[k]);
        fputc('\n', f);
    }
    if (fclose(f) != 0 && rc == BG_OK)
        rc = bg_err_set(err, BG_ENOMEM, "out of memory");
    if (rc == BG_OK)
        rc = bg_file_write_replace(path, buf, len, 0640, err);
    free(buf);
    return rc;
}

/* One "held ..." line into h, strictly. */
static int
held_parse(const char *line, const char *city, bg_audit_held *h, bg_err *err)
{
    char witness[8], hex[2 * BG_AUDIT_SIGNED_HEAD_MAX + 2];
    uint64_t size;
    int64_t ts;
    int used = 0;
    if (sscanf(line, "held %7s %" SCNu64 " %" SCNd64 " %513s%n", witness, &size, &ts, hex, &used) !=
            4 ||
        line[used] != '\0' || !bg_audit_city_ok(witness) || strlen(hex) % 2 != 0)
        return bg_err_set(err, BG_EPROTO, "not a 'held WITNESS SIZE TIME HEAD' line");
    uint8_t enc[BG_AUDIT_SIGNED_HEAD_MAX];
    size_t elen = strlen(hex) / 2;
    if (elen > sizeof enc)
        return bg_err_set(err, BG_EPROTO, "head too long");
    for (size_t k = 0; k < elen; k++) {
        unsigned v;
        if (sscanf(hex + 2 * k, "%2x", &v) != 1)
            return bg_err_set(err, BG_EPROTO, "head is not hex");
        enc[k] = (uint8_t)v;
    }
    int rc = bg_audit_head_decode(enc, elen, &h->head, err);
    if (rc != BG_OK)
        return rc;
    if (strcmp(h->head.origin, city) != 0 || h->head.size != size || h->head.timestamp_ms != ts)
        return bg_err_set(err, BG_EPROTO, "head is not %s's of that size and time", city);
    memcpy(h->witness, witness, 7);
    return BG_OK;
}

int
bg_audit_held_read(const char *path, const char *city, bg_audit_held *h, size_t cap, size_t *n,
                   bg_err *err)
{
    *n = 0;
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = bg_file_read(path, 1 << 20, &buf, &len, NULL, err);
    if (rc != BG_OK)
        return rc;
    char *save = NULL;
    unsigned lineno = 0;
    for (char *line = strtok_r((char *)buf, "\n", &save); rc == BG_OK && line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        lineno++;
        if (line[0] == '#')
            continue;
        bg_err sub = {0};
        if (*n == cap)
            rc = bg_err_set(err, BG_ELIMIT, "%s: more than %zu heads", path, cap);
        else if (held_parse(line, city, &h[*n], &sub) != BG_OK)
            rc = bg_err_set(err, BG_EPROTO, "%s: line %u: %s", path, lineno, sub.msg);
        else
            (*n)++;
    }
    free(buf);
    return rc;
}
