/*
 * snap_wire.c - the writer of the wire form (snapshot.h, "Wire"): the canonical stream
 * header, a snapshot's or delta's stream, and its chunks.
 */
#include <stdint.h>
#include <string.h>

#include "mpc/snap_int.h"

size_t
bg_snap_hdr_encode(uint8_t *h, const struct bg_snap_hdr *x)
{
    memcpy(h, "BGPS", 4);
    h[4] = SNAP_VERSION;
    h[5] = (uint8_t)x->kind;
    h[6] = TB;
    h[7] = x->graded ? SNAP_FLAG_GRADED : 0;
    h[8] = (uint8_t)x->list_len;
    size_t o = HDR_FIXED;
    memcpy(h + o, x->list, x->list_len);
    o += x->list_len;
    put_u64(h + o, x->generation);
    put_u64(h + o + 8, x->epoch);
    put_u32(h + o + 16, x->count);
    o += HDR_TAIL;
    if (x->kind == BG_SNAP_KIND_DELTA) {
        put_u64(h + o, x->to_epoch);
        memcpy(h + o + 8, x->from_digest, DB);
        memcpy(h + o + 8 + DB, x->to_digest, DB);
        put_u32(h + o + 8 + 2 * DB, x->nrem);
        put_u32(h + o + 12 + 2 * DB, x->nadd);
        o += HDR_DELTA;
    }
    return o;
}

void
bg_snap_hdr_of(const bg_snap *s, struct bg_snap_hdr *x)
{
    memset(x, 0, sizeof *x);
    x->kind = BG_SNAP_KIND_SNAPSHOT;
    x->graded = s->graded;
    memcpy(x->list, s->list, s->list_len);
    x->list_len = s->list_len;
    x->generation = s->generation;
    x->epoch = s->epoch;
    x->count = (uint32_t)s->n;
}

struct stream {
    int kind;
    uint8_t hdr[HDR_MAX];
    size_t hdr_len;
    const uint8_t *seg[3];
    size_t seg_len[3];
    uint64_t total;
    const uint8_t *digest;
};

static void
snap_stream(const bg_snap *s, struct stream *st)
{
    struct bg_snap_hdr x;
    memset(st, 0, sizeof *st);
    bg_snap_hdr_of(s, &x);
    st->kind = BG_SNAP_KIND_SNAPSHOT;
    st->hdr_len = bg_snap_hdr_encode(st->hdr, &x);
    st->seg[0] = s->tags;
    st->seg_len[0] = TB * s->n;
    st->seg[1] = s->sealed;
    st->seg_len[1] = s->graded ? SEB * s->n : 0;
    st->total = st->hdr_len + st->seg_len[0] + st->seg_len[1];
    st->digest = s->digest;
}

static void
delta_stream(const bg_snap_delta *d, struct stream *st)
{
    struct bg_snap_hdr x;
    memset(st, 0, sizeof *st);
    memset(&x, 0, sizeof x);
    x.kind = BG_SNAP_KIND_DELTA;
    x.graded = d->graded;
    memcpy(x.list, d->list, d->list_len);
    x.list_len = d->list_len;
    x.generation = d->generation;
    x.epoch = d->from_epoch;
    x.count = (uint32_t)d->to_count;
    x.to_epoch = d->to_epoch;
    memcpy(x.from_digest, d->from_digest, DB);
    memcpy(x.to_digest, d->to_digest, DB);
    x.nrem = (uint32_t)d->nrem;
    x.nadd = (uint32_t)d->nadd;
    st->kind = BG_SNAP_KIND_DELTA;
    st->hdr_len = bg_snap_hdr_encode(st->hdr, &x);
    st->seg[0] = d->removed;
    st->seg_len[0] = TB * d->nrem;
    st->seg[1] = d->add_tags;
    st->seg_len[1] = TB * d->nadd;
    st->seg[2] = d->add_sealed;
    st->seg_len[2] = d->graded ? SEB * d->nadd : 0;
    st->total = st->hdr_len + st->seg_len[0] + st->seg_len[1] + st->seg_len[2];
    st->digest = d->to_digest;
}

/* Copies stream bytes [off, off + len) to out. */
static void
stream_copy(const struct stream *st, uint64_t off, uint8_t *out, size_t len)
{
    while (len > 0) {
        const uint8_t *src = st->hdr;
        uint64_t base = 0, seglen = st->hdr_len;
        for (unsigned k = 0; off >= base + seglen && k < 3; k++) {
            base += seglen;
            src = st->seg[k];
            seglen = st->seg_len[k];
        }
        size_t take = (size_t)(base + seglen - off) < len ? (size_t)(base + seglen - off) : len;
        memcpy(out, src + (off - base), take);
        out += take;
        off += take;
        len -= take;
    }
}

static int
stream_chunks(const struct stream *st, size_t max, size_t *count, bg_err *err)
{
    if (max < BG_SNAP_CHUNK_MIN)
        return bg_err_set(err, BG_EINVAL, "chunks: at most %zu bytes each, at least %u needed", max,
                          BG_SNAP_CHUNK_MIN);
    uint64_t per = max - BG_SNAP_CHUNK_HEADERBYTES;
    uint64_t c = (st->total + per - 1) / per;
    if (c > UINT32_MAX)
        return bg_err_set(err, BG_ELIMIT, "chunks: %llu chunks of %zu bytes are too many",
                          (unsigned long long)c, max);
    *count = (size_t)c;
    return BG_OK;
}

static int
stream_chunk(const struct stream *st, size_t max, size_t index, uint8_t *out, size_t cap,
             size_t *out_len, bg_err *err)
{
    size_t count = 0;
    if (out_len != NULL)
        *out_len = 0;
    int rc = stream_chunks(st, max, &count, err);
    if (rc != BG_OK)
        return rc;
    if (out == NULL || out_len == NULL)
        return bg_err_set(err, BG_EINVAL, "chunk: NULL output");
    if (index >= count)
        return bg_err_set(err, BG_EINVAL, "chunk %zu of %zu: no such chunk", index, count);
    uint64_t per = max - BG_SNAP_CHUNK_HEADERBYTES, off = per * index;
    size_t len = (size_t)(st->total - off < per ? st->total - off : per);
    if (cap < BG_SNAP_CHUNK_HEADERBYTES + len)
        return bg_err_set(err, BG_EINVAL, "chunk %zu: %zu bytes needed, buffer holds %zu", index,
                          BG_SNAP_CHUNK_HEADERBYTES + len, cap);
    memcpy(out, "BGPC", 4);
    out[4] = SNAP_VERSION;
    out[5] = (uint8_t)st->kind;
    out[6] = out[7] = 0;
    put_u32(out + 8, (uint32_t)index);
    put_u32(out + 12, (uint32_t)count);
    put_u64(out + 16, st->total);
    put_u64(out + 24, off);
    memcpy(out + 32, st->digest, DB);
    stream_copy(st, off, out + BG_SNAP_CHUNK_HEADERBYTES, len);
    *out_len = BG_SNAP_CHUNK_HEADERBYTES + len;
    return BG_OK;
}

int
bg_snap_chunk_count(const bg_snap *s, size_t max_chunk_bytes, size_t *count, bg_err *err)
{
    struct stream st;
    if (s == NULL || count == NULL)
        return bg_err_set(err, BG_EINVAL, "chunks: NULL argument");
    snap_stream(s, &st);
    return stream_chunks(&st, max_chunk_bytes, count, err);
}

int
bg_snap_delta_chunk_count(const bg_snap_delta *d, size_t max_chunk_bytes, size_t *count,
                          bg_err *err)
{
    struct stream st;
    if (d == NULL || count == NULL)
        return bg_err_set(err, BG_EINVAL, "chunks: NULL argument");
    delta_stream(d, &st);
    return stream_chunks(&st, max_chunk_bytes, count, err);
}

int
bg_snap_chunk(const bg_snap *s, size_t max_chunk_bytes, size_t index, uint8_t *out, size_t cap,
              size_t *out_len, bg_err *err)
{
    struct stream st;
    if (s == NULL)
        return bg_err_set(err, BG_EINVAL, "chunk: NULL snapshot");
    snap_stream(s, &st);
    return stream_chunk(&st, max_chunk_bytes, index, out, cap, out_len, err);
}

int
bg_snap_delta_chunk(const bg_snap_delta *d, size_t max_chunk_bytes, size_t index, uint8_t *out,
                    size_t cap, size_t *out_len, bg_err *err)
{
    struct stream st;
    if (d == NULL)
        return bg_err_set(err, BG_EINVAL, "chunk: NULL delta");
    delta_stream(d, &st);
    return stream_chunk(&st, max_chunk_bytes, index, out, cap, out_len, err);
}
