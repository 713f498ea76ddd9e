/*
 * fuzz_snapshot.c - the snapshot chunk reader (mpc/snapshot.h), fed as the
 * asking gateway feeds it a peer's SnapshotChunk bodies: a reader bounded
 * at the daemon's 2^22 entries, chunks in order, then finish (with or
 * without the signed digest) or, for a delta, finish_delta and apply to the
 * snapshot it claims to extend (a fixed membership or graded epoch 1 made in
 * the set-up). A snapshot that verifies is then used: lookups, inclusion
 * proofs by both provers, which must verify against its root.
 *
 * Input: flags (bit 0: 32-byte expected digest follows), then chunks, each a
 * u16 little-endian length and that many bytes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "fuzz/fuzz.h"
#include "mpc/oprf.h"
#include "mpc/snapshot.h"

/* As the daemon reads peers' snapshots (gateway/daemon: GW_PSI_CACHE_MAX_ENTRIES). The
 * reader grows the body as bytes arrive, so a header announcing 2^22 graded entries
 * costs nothing until they come (fuzz/reproducers/snapshot). */
#define READER_MAX_ENTRIES (1U << 22)
#define SEED_CHUNK 512U

static uint8_t sk[BG_OPRF_SCALARBYTES];
static bg_snap *base_plain, *base_graded;

/* Inputs shaped like USCCs; every third has no listing dates. */
static const char *const inputs[] = {
    "91440300MA5ABCDE1X", "91440300MA5FGHJK2Y", "91440300MA5LMNPQ3W", "91440300MA5RTUWX4T",
    "91440300MA5YABCD5R", "91440300MA5EFGHJ6P", "91440300MA5KLMNP7N", "91440300MA5QRTUW8M",
};

static int
build(bg_snap **out, int graded, uint64_t epoch, size_t n)
{
    bg_snap_entry e[sizeof inputs / sizeof inputs[0]];
    bg_snap_payload pl[sizeof inputs / sizeof inputs[0]];
    for (size_t i = 0; i < n; i++) {
        memset(&pl[i], 0, sizeof pl[i]);
        snprintf(pl[i].grade, sizeof pl[i].grade, "%c", (char)('A' + (int)((i + epoch) % 4)));
        snprintf(pl[i].scale, sizeof pl[i].scale, "ABCD");
        pl[i].evaluated_at = 19000 + (int32_t)i;
        pl[i].valid_until = 21000 + (int32_t)i;
        pl[i].listed_at = i % 3 ? 19500 : BG_SNAP_NO_DATE;
        pl[i].expires_at = BG_SNAP_NO_DATE;
        pl[i].serial = 100 + i + epoch;
        e[i] = (bg_snap_entry){(const uint8_t *)inputs[i], strlen(inputs[i]), &pl[i]};
    }
    bg_err err = {0};
    int rc = bg_snap_build(out, sk, graded ? "grades" : "serious-dishonesty", 1, epoch, graded, e,
                           n, 1, &err);
    if (rc != BG_OK)
        fprintf(stderr, "fuzz: snapshot build: %s\n", err.msg);
    return rc;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    bg_err err = {0};
    uint8_t seed[BG_OPRF_SEEDBYTES] = {1, 2, 3};
    bg_fuzz_assert(bg_oprf_init(&err) == BG_OK);
    bg_fuzz_assert(bg_oprf_derive_key(sk, seed, (const uint8_t *)"fuzz", 4, &err) == BG_OK);
    bg_fuzz_assert(build(&base_plain, 0, 1, 6) == BG_OK);
    bg_fuzz_assert(build(&base_graded, 1, 1, 6) == BG_OK);
    return 0;
}

/* A verified snapshot: lookups and proofs must agree with its root. */
static void
use_snapshot(const bg_snap *s)
{
    bg_snap_info info;
    bg_snap_get_info(s, &info);
    size_t count = bg_snap_count(s);
    bg_fuzz_assert(count == info.count);
    if (count == 0)
        return;
    bg_err err = {0};
    size_t run = 0;
    size_t first = bg_snap_find(s, bg_snap_tag_at(s, 0), &run);
    bg_fuzz_assert(first == 0 && run >= 1);
    uint8_t path[BG_SNAP_PATH_MAX * BG_SNAP_DIGESTBYTES];
    size_t path_len = 0;
    size_t last = count - 1;
    bg_fuzz_assert(bg_snap_inclusion_proof(s, last, path, &path_len, 1, &err) == BG_OK);
    bg_fuzz_assert(bg_snap_inclusion_verify(bg_snap_tag_at(s, last), bg_snap_sealed_at(s, last),
                                            last, count, path, path_len, info.root, &err) == BG_OK);
    bg_snap_prover *p = NULL;
    bg_fuzz_assert(bg_snap_prover_new(&p, s, 1, &err) == BG_OK);
    bg_fuzz_assert(bg_snap_prover_path(p, 0, path, &path_len, &err) == BG_OK);
    bg_fuzz_assert(bg_snap_inclusion_verify(bg_snap_tag_at(s, 0), bg_snap_sealed_at(s, 0), 0, count,
                                            path, path_len, info.root, &err) == BG_OK);
    bg_snap_prover_free(p);
    uint8_t digest[BG_SNAP_DIGESTBYTES];
    bg_fuzz_assert(bg_snap_digest_compute(info.list, info.generation, info.epoch, info.count,
                                          info.graded, info.root, digest, &err) == BG_OK);
    bg_fuzz_assert(memcmp(digest, info.digest, sizeof digest) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    bg_fuzz_in in = {data, size};
    uint8_t flags = bg_fuzz_u8(&in);
    const uint8_t *expected = NULL;
    if (flags & 1) {
        size_t got = 0;
        expected = bg_fuzz_bytes(&in, BG_SNAP_DIGESTBYTES, &got);
        if (got < BG_SNAP_DIGESTBYTES)
            return 0;
    }
    bg_snap_reader *r = NULL;
    bg_err err = {0};
    bg_fuzz_assert(bg_snap_reader_new(&r, READER_MAX_ENTRIES, &err) == BG_OK);
    int rc = BG_OK;
    while (in.left > 0 && rc == BG_OK) {
        size_t want = bg_fuzz_u16(&in), got = 0;
        const uint8_t *chunk = bg_fuzz_bytes(&in, want, &got);
        rc = bg_snap_reader_feed(r, chunk, got, &err);
    }
    bg_snap_info info;
    if (rc == BG_OK && bg_snap_reader_complete(r) && bg_snap_reader_info(r, &info, &err) == BG_OK) {
        if (info.kind == BG_SNAP_KIND_DELTA) {
            bg_snap_delta *d = NULL;
            if (bg_snap_reader_finish_delta(r, &d, &err) == BG_OK) {
                bg_snap *next = NULL;
                const bg_snap *old = info.graded ? base_graded : base_plain;
                if (bg_snap_delta_apply(&next, old, d, 1, &err) == BG_OK) {
                    use_snapshot(next);
                    bg_snap_free(next);
                }
                bg_snap_delta_free(d);
            }
        } else {
            bg_snap *s = NULL;
            if (bg_snap_reader_finish(r, expected, &s, 1, &err) == BG_OK) {
                use_snapshot(s);
                bg_snap_free(s);
            }
        }
    }
    bg_snap_reader_free(r);
    return 0;
}

/* A stream in this harness's framing: flags 0, then [u16 len][chunk]... */
typedef struct stream {
    uint8_t *p;
    size_t len;
} stream;

static int
append_chunk(stream *s, const uint8_t *chunk, size_t n)
{
    uint8_t *np = realloc(s->p, s->len + 2 + n);
    if (np == NULL)
        return -1;
    s->p = np;
    s->p[s->len] = (uint8_t)(n & 0xff);
    s->p[s->len + 1] = (uint8_t)(n >> 8);
    memcpy(s->p + s->len + 2, chunk, n);
    s->len += 2 + n;
    return 0;
}

static int
seed_write(const char *dir, const char *name, const bg_snap *s, const bg_snap_delta *d)
{
    bg_err err = {0};
    size_t count = 0;
    int rc = s ? bg_snap_chunk_count(s, SEED_CHUNK, &count, &err)
               : bg_snap_delta_chunk_count(d, SEED_CHUNK, &count, &err);
    if (rc != BG_OK)
        return -1;
    stream st = {calloc(1, 1), 1}; /* the flags byte: no expected digest */
    uint8_t chunk[SEED_CHUNK];
    if (st.p == NULL)
        rc = BG_ENOMEM;
    for (size_t i = 0; i < count && rc == BG_OK; i++) {
        size_t n = 0;
        rc = s ? bg_snap_chunk(s, SEED_CHUNK, i, chunk, sizeof chunk, &n, &err)
               : bg_snap_delta_chunk(d, SEED_CHUNK, i, chunk, sizeof chunk, &n, &err);
        if (rc == BG_OK && append_chunk(&st, chunk, n) != 0)
            rc = BG_ENOMEM;
    }
    if (rc == BG_OK)
        rc = bg_fuzz_write_seed(dir, name, st.p, st.len) == 0 ? BG_OK : BG_EIO;
    free(st.p);
    return rc == BG_OK ? 0 : -1;
}

int
bg_fuzz_make_seeds(const char *dir)
{
    bg_snap *next_plain = NULL, *next_graded = NULL, *small = NULL;
    bg_snap_delta *dp = NULL, *dg = NULL;
    bg_err err = {0};
    int rc = -1;
    if (build(&next_plain, 0, 2, 8) == BG_OK && build(&next_graded, 1, 2, 8) == BG_OK &&
        build(&small, 1, 3, 1) == BG_OK &&
        bg_snap_delta_make(&dp, base_plain, next_plain, &err) == BG_OK &&
        bg_snap_delta_make(&dg, base_graded, next_graded, &err) == BG_OK)
        rc = seed_write(dir, "membership-e1", base_plain, NULL) |
             seed_write(dir, "membership-e2", next_plain, NULL) |
             seed_write(dir, "graded-e1", base_graded, NULL) |
             seed_write(dir, "graded-one", small, NULL) |
             seed_write(dir, "delta-membership", NULL, dp) |
             seed_write(dir, "delta-graded", NULL, dg);
    bg_snap_delta_free(dp);
    bg_snap_delta_free(dg);
    bg_snap_free(next_plain);
    bg_snap_free(next_graded);
    bg_snap_free(small);
    return rc;
}
