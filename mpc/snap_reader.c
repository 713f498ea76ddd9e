/*
 * snap_reader.c - the reader of snapshot and delta chunks from a peer. Everything it is
 * fed is hostile: it takes chunks only in order and of one stream, bounds every length
 * before it allocates (the entry count against the caller's max_entries, the stream
 * length against the header's), refuses a stream for good once one chunk fails, and
 * hands out nothing before the whole stream is in and checked (order, runs, digest).
 */
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mpc/snap_int.h"

enum { R_FIRST, R_BODY, R_COMPLETE, R_SPENT };

struct bg_snap_reader {
    size_t max_entries;
    int state;
    struct bg_snap_hdr h;
    size_t hdr_len;
    uint32_t chunk_count, next_index;
    uint64_t stream_len, received;
    uint8_t digest[DB];
    uint8_t *body;
    size_t body_len; /* announced by the header */
    size_t body_cap; /* allocated so far: grows with the bytes that came */
};

int
bg_snap_reader_new(bg_snap_reader **out, size_t max_entries, bg_err *err)
{
    if (out == NULL)
        return bg_err_set(err, BG_EINVAL, "reader: NULL output");
    *out = NULL;
    bg_snap_reader *r = calloc(1, sizeof *r);
    if (r == NULL)
        return bg_err_set(err, BG_ENOMEM, "reader: out of memory");
    r->max_entries = max_entries < BG_SNAP_MAX_ENTRIES ? max_entries : BG_SNAP_MAX_ENTRIES;
    r->state = R_FIRST;
    *out = r;
    return BG_OK;
}

void
bg_snap_reader_free(bg_snap_reader *r)
{
    if (r == NULL)
        return;
    free(r->body);
    free(r);
}

/* Parses and bounds a stream header from the first chunk's p[0..len); sets body size. */
static int
hdr_parse(bg_snap_reader *r, const uint8_t *p, size_t len, bg_err *err)
{
    struct bg_snap_hdr *h = &r->h;
    memset(h, 0, sizeof *h);
    if (len < HDR_FIXED)
        return bg_err_set(err, BG_EPROTO, "snapshot header: truncated");
    if (memcmp(p, "BGPS", 4) != 0 || p[4] != SNAP_VERSION)
        return bg_err_set(err, BG_EPROTO, "snapshot header: not a baygate snapshot v1");
    if (p[5] != BG_SNAP_KIND_SNAPSHOT && p[5] != BG_SNAP_KIND_DELTA)
        return bg_err_set(err, BG_EPROTO, "snapshot header: unknown kind %u", p[5]);
    if (p[6] != TB)
        return bg_err_set(err, BG_EPROTO, "snapshot header: tags of %u bytes, expected %u", p[6],
                          TB);
    if ((p[7] & ~SNAP_FLAG_GRADED) != 0)
        return bg_err_set(err, BG_EPROTO, "snapshot header: unknown flags 0x%02x", p[7]);
    h->kind = p[5];
    h->graded = (p[7] & SNAP_FLAG_GRADED) != 0;
    h->list_len = p[8];
    size_t need =
        HDR_FIXED + h->list_len + HDR_TAIL + (h->kind == BG_SNAP_KIND_DELTA ? HDR_DELTA : 0);
    if (len < need)
        return bg_err_set(err, BG_EPROTO, "snapshot header: truncated");
    if (!list_ok((const char *)p + HDR_FIXED, h->list_len))
        return bg_err_set(err, BG_EPROTO, "snapshot header: bad list name");
    memcpy(h->list, p + HDR_FIXED, h->list_len);
    const uint8_t *q = p + HDR_FIXED + h->list_len;
    h->generation = get_u64(q);
    h->epoch = get_u64(q + 8);
    h->count = get_u32(q + 16);
    if (h->count > r->max_entries)
        return bg_err_set(err, BG_ELIMIT, "snapshot header: %u entries, at most %zu accepted",
                          h->count, r->max_entries);
    uint64_t eb = entry_bytes(h->graded), body;
    if (h->kind == BG_SNAP_KIND_DELTA) {
        q += HDR_TAIL;
        h->to_epoch = get_u64(q);
        memcpy(h->from_digest, q + 8, DB);
        memcpy(h->to_digest, q + 8 + DB, DB);
        h->nrem = get_u32(q + 8 + 2 * DB);
        h->nadd = get_u32(q + 12 + 2 * DB);
        if (h->to_epoch <= h->epoch)
            return bg_err_set(err, BG_EPROTO, "delta header: epoch %llu is not after %llu",
                              (unsigned long long)h->to_epoch, (unsigned long long)h->epoch);
        if (h->nadd > h->count || h->nrem > r->max_entries)
            return bg_err_set(err, BG_EPROTO, "delta header: %u removed, %u added of %u entries",
                              h->nrem, h->nadd, h->count);
        body = (uint64_t)TB * h->nrem + eb * h->nadd;
    } else {
        body = eb * h->count;
    }
    if (body > SIZE_MAX)
        return bg_err_set(err, BG_ELIMIT, "snapshot: too large for this machine");
    r->hdr_len = need;
    r->body_len = (size_t)body;
    return BG_OK;
}

/* The body grows as its bytes arrive (doubling, never past what the header
 * announced): a first chunk that announces hundreds of megabytes costs nothing
 * until a peer actually sends them. need <= body_len (checked by the caller). */
static int
body_reserve(bg_snap_reader *r, size_t need, bg_err *err)
{
    if (need <= r->body_cap)
        return BG_OK;
    size_t cap = r->body_cap ? r->body_cap : 64 * 1024;
    while (cap < need)
        cap = cap > r->body_len / 2 ? r->body_len : cap * 2;
    if (cap > r->body_len)
        cap = r->body_len;
    uint8_t *b = realloc(r->body, cap);
    if (b == NULL)
        return bg_err_set(err, BG_ENOMEM, "chunk: out of memory for %zu bytes", cap);
    r->body = b;
    r->body_cap = cap;
    return BG_OK;
}

static int
feed(bg_snap_reader *r, const uint8_t *c, size_t len, bg_err *err)
{
    if (r->state == R_COMPLETE)
        return bg_err_set(err, BG_EPROTO, "chunk: the stream is already complete");
    if (r->state == R_SPENT)
        return bg_err_set(err, BG_EINVAL, "chunk: the reader has failed or finished");
    if (c == NULL || len <= BG_SNAP_CHUNK_HEADERBYTES)
        return bg_err_set(err, BG_EPROTO, "chunk: %zu bytes, no room for data after its header",
                          c ? len : 0);
    if (memcmp(c, "BGPC", 4) != 0 || c[4] != SNAP_VERSION || c[6] != 0 || c[7] != 0)
        return bg_err_set(err, BG_EPROTO, "chunk: not a baygate snapshot chunk v1");
    uint32_t index = get_u32(c + 8), count = get_u32(c + 12);
    uint64_t total = get_u64(c + 16), off = get_u64(c + 24);
    const uint8_t *data = c + BG_SNAP_CHUNK_HEADERBYTES;
    size_t dlen = len - BG_SNAP_CHUNK_HEADERBYTES;

    if (r->state == R_FIRST) {
        if (index != 0 || off != 0 || count == 0)
            return bg_err_set(err, BG_EPROTO, "chunk %u of %u at offset %llu: expected the first",
                              index, count, (unsigned long long)off);
        if (c[5] != BG_SNAP_KIND_SNAPSHOT && c[5] != BG_SNAP_KIND_DELTA)
            return bg_err_set(err, BG_EPROTO, "chunk: unknown kind %u", c[5]);
        int rc = hdr_parse(r, data, dlen, err);
        if (rc != BG_OK)
            return rc;
        if (r->h.kind != c[5])
            return bg_err_set(err, BG_EPROTO, "chunk: its kind is not its header's");
        if (total != (uint64_t)r->hdr_len + r->body_len)
            return bg_err_set(err, BG_EPROTO, "chunk: stream of %llu bytes, the header says %zu",
                              (unsigned long long)total, r->hdr_len + r->body_len);
        if (count > total)
            return bg_err_set(err, BG_EPROTO, "chunk: %u chunks for %llu bytes", count,
                              (unsigned long long)total);
        r->chunk_count = count;
        r->stream_len = total;
        memcpy(r->digest, c + 32, DB);
        r->state = R_BODY;
    } else {
        if (index != r->next_index || count != r->chunk_count || total != r->stream_len ||
            c[5] != r->h.kind || memcmp(c + 32, r->digest, DB) != 0)
            return bg_err_set(err, BG_EPROTO,
                              "chunk %u of %u: expected chunk %u of %u of this "
                              "stream",
                              index, count, r->next_index, r->chunk_count);
        if (off != r->received)
            return bg_err_set(err, BG_EPROTO, "chunk %u: offset %llu, expected %llu", index,
                              (unsigned long long)off, (unsigned long long)r->received);
    }
    if (dlen > r->stream_len - off)
        return bg_err_set(err, BG_EPROTO, "chunk %u: runs past the stream's end", index);
    /* Stream bytes [off, off + dlen); the body starts at hdr_len. */
    uint64_t from = off < r->hdr_len ? r->hdr_len : off;
    if (off + dlen > from) {
        int rc = body_reserve(r, (size_t)(off + dlen - r->hdr_len), err);
        if (rc != BG_OK)
            return rc;
        memcpy(r->body + (from - r->hdr_len), data + (from - off), (size_t)(off + dlen - from));
    }
    r->received = off + dlen;
    r->next_index = index + 1;
    if (r->next_index == r->chunk_count) {
        if (r->received != r->stream_len)
            return bg_err_set(err, BG_EPROTO, "chunk %u: the last, but %llu of %llu bytes came",
                              index, (unsigned long long)r->received,
                              (unsigned long long)r->stream_len);
        r->state = R_COMPLETE;
    } else if (r->received == r->stream_len) {
        return bg_err_set(err, BG_EPROTO, "chunk %u: the stream ended with chunks still to come",
                          index);
    }
    return BG_OK;
}

int
bg_snap_reader_feed(bg_snap_reader *r, const uint8_t *chunk, size_t len, bg_err *err)
{
    if (r == NULL)
        return bg_err_set(err, BG_EINVAL, "reader: NULL");
    int rc = feed(r, chunk, len, err);
    if (rc != BG_OK && r->state != R_SPENT && r->state != R_COMPLETE) {
        /* A stream that failed once is refused from then on: no partial state survives. */
        free(r->body);
        r->body = NULL;
        r->body_cap = 0;
        r->state = R_SPENT;
    }
    return rc;
}

int
bg_snap_reader_info(const bg_snap_reader *r, bg_snap_info *info, bg_err *err)
{
    if (r == NULL || info == NULL)
        return bg_err_set(err, BG_EINVAL, "reader: NULL argument");
    memset(info, 0, sizeof *info);
    if (r->state != R_BODY && r->state != R_COMPLETE)
        return bg_err_set(err, BG_EINVAL, "reader: no header yet");
    const struct bg_snap_hdr *h = &r->h;
    info->kind = h->kind;
    memcpy(info->list, h->list, h->list_len);
    info->generation = h->generation;
    info->graded = h->graded;
    info->entry_bytes = entry_bytes(h->graded);
    info->count = h->count;
    info->wire_bytes = (size_t)r->stream_len;
    memcpy(info->digest, r->digest, DB);
    if (h->kind == BG_SNAP_KIND_DELTA) {
        info->epoch = h->to_epoch;
        info->from_epoch = h->epoch;
        info->removed = h->nrem;
        info->added = h->nadd;
        memcpy(info->from_digest, h->from_digest, DB);
    } else {
        info->epoch = h->epoch;
    }
    return BG_OK;
}

int
bg_snap_reader_complete(const bg_snap_reader *r)
{
    return r != NULL && r->state == R_COMPLETE;
}

static int
reader_take(bg_snap_reader *r, int kind, bg_err *err)
{
    if (r == NULL)
        return bg_err_set(err, BG_EINVAL, "reader: NULL");
    if (r->state != R_COMPLETE) {
        r->state = R_SPENT;
        return bg_err_set(err, BG_EPROTO, "reader: the stream is incomplete (%llu of %llu bytes)",
                          (unsigned long long)r->received, (unsigned long long)r->stream_len);
    }
    r->state = R_SPENT;
    if (r->h.kind != kind)
        return bg_err_set(err, BG_EPROTO, "reader: the stream is a %s, not a %s",
                          r->h.kind == BG_SNAP_KIND_DELTA ? "delta" : "snapshot",
                          kind == BG_SNAP_KIND_DELTA ? "delta" : "snapshot");
    return BG_OK;
}

int
bg_snap_reader_finish(bg_snap_reader *r, const uint8_t *expected_digest, bg_snap **out,
                      unsigned nthreads, bg_err *err)
{
    if (out == NULL)
        return bg_err_set(err, BG_EINVAL, "reader: NULL output");
    *out = NULL;
    int rc = reader_take(r, BG_SNAP_KIND_SNAPSHOT, err);
    if (rc != BG_OK)
        return rc;
    bg_snap *s = calloc(1, sizeof *s);
    if (s == NULL)
        return bg_err_set(err, BG_ENOMEM, "reader: out of memory");
    memcpy(s->list, r->h.list, r->h.list_len);
    s->list_len = r->h.list_len;
    s->generation = r->h.generation;
    s->epoch = r->h.epoch;
    s->graded = r->h.graded;
    s->n = r->h.count;
    s->block = r->body;
    s->tags = r->body;
    s->sealed = s->graded && r->body ? r->body + TB * s->n : NULL;
    r->body = NULL;
    r->body_cap = 0;
    rc = bg_snap_entries_check(s->tags, s->sealed, s->n, "snapshot entry", err);
    if (rc == BG_OK)
        rc = bg_snap_rehash(s, nthreads, err);
    if (rc == BG_OK && sodium_memcmp(s->digest, r->digest, DB) != 0)
        rc = bg_err_set(err, BG_EPROTO, "snapshot: the digest does not match its entries");
    if (rc == BG_OK && expected_digest != NULL &&
        sodium_memcmp(s->digest, expected_digest, DB) != 0)
        rc = bg_err_set(err, BG_EPROTO, "snapshot: the digest is not the signed one");
    if (rc != BG_OK) {
        bg_snap_free(s);
        return rc;
    }
    *out = s;
    return BG_OK;
}

int
bg_snap_reader_finish_delta(bg_snap_reader *r, bg_snap_delta **out, bg_err *err)
{
    if (out == NULL)
        return bg_err_set(err, BG_EINVAL, "reader: NULL output");
    *out = NULL;
    int rc = reader_take(r, BG_SNAP_KIND_DELTA, err);
    if (rc != BG_OK)
        return rc;
    bg_snap_delta *d = calloc(1, sizeof *d);
    if (d == NULL)
        return bg_err_set(err, BG_ENOMEM, "reader: out of memory");
    const struct bg_snap_hdr *h = &r->h;
    memcpy(d->list, h->list, h->list_len);
    d->list_len = h->list_len;
    d->generation = h->generation;
    d->from_epoch = h->epoch;
    d->to_epoch = h->to_epoch;
    d->graded = h->graded;
    d->to_count = h->count;
    memcpy(d->from_digest, h->from_digest, DB);
    memcpy(d->to_digest, h->to_digest, DB);
    d->nrem = h->nrem;
    d->nadd = h->nadd;
    d->block = r->body;
    d->removed = r->body;
    d->add_tags = r->body ? r->body + TB * d->nrem : NULL;
    d->add_sealed = d->graded && r->body ? r->body + TB * (d->nrem + d->nadd) : NULL;
    r->body = NULL;
    r->body_cap = 0;
    if (sodium_memcmp(d->to_digest, r->digest, DB) != 0)
        rc = bg_err_set(err, BG_EPROTO, "delta: its chunks name another target digest");
    for (size_t i = 1; rc == BG_OK && i < d->nrem; i++)
        if (memcmp(d->removed + TB * (i - 1), d->removed + TB * i, TB) >= 0)
            rc = bg_err_set(err, BG_EPROTO, "delta: removed tag %zu out of order", i);
    if (rc == BG_OK)
        rc = bg_snap_entries_check(d->add_tags, d->add_sealed, d->nadd, "delta added entry", err);
    if (rc != BG_OK) {
        bg_snap_delta_free(d);
        return rc;
    }
    *out = d;
    return BG_OK;
}
