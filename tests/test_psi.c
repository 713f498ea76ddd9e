/*
 * test_psi.c - PSI on RFC 9497 OPRFs (mpc/snapshot, mpc/psi): results against ground truth
 * on random sets, graded payloads, count-only answers, snapshot wire format, epochs and
 * deltas, hostile input; and (with BG_PSI_BENCH=1) the measurements.
 *
 * Every set is drawn from a fixed seed (an id -> USCC bijection), so a failure reproduces;
 * only the blinds are fresh randomness, and no result depends on them.
 * Environment: BG_PSI_SMALL=1 shrinks the sizes (valgrind); BG_PSI_BENCH=1 adds the 2^20
 * measurements; BG_PSI_THREADS=n sets the thread count (default 0: all CPUs).
 */
#include <check.h>
#include <pthread.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mpc/oprf.h"
#include "mpc/snap_int.h" /* a delta's count, tampered */
#include "mpc/psi.h"
#include "mpc/snapshot.h"

#define UL 18U /* a USCC */
#define EB BG_OPRF_ELEMENTBYTES

static bool small_sizes;
static unsigned threads;

#define SZ(big, sm) (small_sizes ? (size_t)(sm) : (size_t)(big))

/* ---- fixtures: ids, USCCs, lists ---- */

/* A bijection on 64 bits (splitmix64's finaliser), so distinct ids give distinct USCCs. */
static uint64_t
mix(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

static uint64_t rng_state;

static uint64_t
rng(void)
{
    rng_state += 0x9e3779b97f4a7c15ULL;
    return mix(rng_state);
}

/* "91" + 16 base-31 digits of mix(id): 31^16 > 2^64, so injective. */
static void
uscc(uint64_t id, uint8_t out[UL])
{
    static const char al[] = "0123456789ABCDEFGHJKLMNPQRTUWXY";
    uint64_t v = mix(id);
    out[0] = '9';
    out[1] = '1';
    for (int i = UL - 1; i >= 2; i--) {
        out[i] = (uint8_t)al[v % 31];
        v /= 31;
    }
}

static void
payload_of(uint64_t id, uint64_t version, bg_snap_payload *p)
{
    memset(p, 0, sizeof *p);
    p->grade[0] = "ABCD"[(id + version) % 4];
    if ((id + version) % 3 == 0)
        p->grade[1] = '+';
    snprintf(p->scale, sizeof p->scale, "%s", id % 2 ? "ABCD" : "GBA-2024-credit-rating");
    p->evaluated_at = (int32_t)(18000 + id % 2000);
    p->valid_until = id % 5 == 0 ? BG_SNAP_NO_DATE : p->evaluated_at + 730;
    p->listed_at = (int32_t)(17000 + id % 3000);
    p->expires_at = id % 7 == 0 ? BG_SNAP_NO_DATE : -5; /* before 1970 round-trips too */
    p->serial = id * 1000 + version;
}

static void
test_key(uint8_t sk[32], uint64_t generation)
{
    uint8_t seed[32] = {0};
    char info[32];
    memcpy(seed, "baygate test key seed", 21);
    snprintf(info, sizeof info, "gen %llu", (unsigned long long)generation);
    ck_assert_int_eq(bg_oprf_derive_key(sk, seed, (const uint8_t *)info, strlen(info), NULL),
                     BG_OK);
}

/* The list of ids (payload version `version`) under generation gen's key. */
static bg_snap *
make_list_v(const uint64_t *ids, size_t n, int graded, uint64_t gen, uint64_t epoch,
            uint64_t version)
{
    uint8_t sk[32];
    uint8_t(*in)[UL] = malloc(UL * (n ? n : 1));
    bg_snap_payload *pl = malloc(sizeof *pl * (n ? n : 1));
    bg_snap_entry *e = malloc(sizeof *e * (n ? n : 1));
    ck_assert(in && pl && e);
    for (size_t i = 0; i < n; i++) {
        uscc(ids[i], in[i]);
        payload_of(ids[i], version, &pl[i]);
        e[i] = (bg_snap_entry){in[i], UL, &pl[i]};
    }
    test_key(sk, gen);
    bg_snap *s = NULL;
    bg_err err = {0};
    int rc = bg_snap_build(&s, sk, "serious-dishonesty", gen, epoch, graded, e, n, threads, &err);
    ck_assert_msg(rc == BG_OK, "build: %s", err.msg);
    free(in);
    free(pl);
    free(e);
    return s;
}

static bg_snap *
make_list(const uint64_t *ids, size_t n, int graded, uint64_t gen, uint64_t epoch)
{
    return make_list_v(ids, n, graded, gen, epoch, 0);
}

/* n ids from [base, base + n) */
static uint64_t *
ids_range(uint64_t base, size_t n)
{
    uint64_t *ids = malloc(sizeof *ids * (n ? n : 1));
    ck_assert_ptr_nonnull(ids);
    for (size_t i = 0; i < n; i++)
        ids[i] = base + i;
    return ids;
}

/*
 * The whole round trip for asked ids: prepare, evaluate and finish in chunks of `chunk`
 * items (count mode: the answerer evaluates and shuffles the whole batch, the asker takes
 * the answer in chunks). Returns the query for its results.
 */
static bg_psi_query *
ask(const bg_snap *s, uint64_t gen, int mode, const uint64_t *ids, size_t n, size_t chunk)
{
    uint8_t sk[32], (*in)[UL] = malloc(UL * n);
    const uint8_t **ptrs = malloc(sizeof *ptrs * n);
    size_t *lens = malloc(sizeof *lens * n);
    ck_assert(in && ptrs && lens);
    for (size_t i = 0; i < n; i++) {
        uscc(ids[i], in[i]);
        ptrs[i] = in[i];
        lens[i] = UL;
    }
    test_key(sk, gen);
    bg_psi_query *q = NULL;
    bg_err err = {0};
    ck_assert_int_eq(bg_psi_query_new(&q, mode, ptrs, lens, n, &err), BG_OK);
    size_t nd = bg_psi_query_items(q);
    uint8_t *b = malloc(EB * nd), *e = malloc(EB * nd);
    ck_assert(b && e);
    for (size_t f = 0; f < nd; f += chunk) {
        size_t c = nd - f < chunk ? nd - f : chunk;
        ck_assert_msg(bg_psi_prepare(q, f, c, b + EB * f, threads, &err) == BG_OK, "%s", err.msg);
        if (mode != BG_PSI_COUNT) {
            ck_assert_msg(
                bg_psi_evaluate(e + EB * f, sk, b + EB * f, EB * c, chunk, threads, &err) == BG_OK,
                "%s", err.msg);
            ck_assert_msg(bg_psi_finish(q, s, f, c, e + EB * f, EB * c, threads, &err) == BG_OK,
                          "%s", err.msg);
        }
    }
    if (mode == BG_PSI_COUNT) {
        ck_assert_msg(bg_psi_evaluate_count(e, sk, b, EB * nd, 1, nd, threads, &err) == BG_OK, "%s",
                      err.msg);
        for (size_t f = 0; f < nd; f += chunk) {
            size_t c = nd - f < chunk ? nd - f : chunk;
            ck_assert_msg(bg_psi_finish(q, s, f, c, e + EB * f, EB * c, threads, &err) == BG_OK,
                          "%s", err.msg);
        }
    }
    ck_assert(bg_psi_query_done(q));
    free(in);
    free(ptrs);
    free(lens);
    free(b);
    free(e);
    return q;
}

static int
cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Asserts each asked id's result against membership in the (sorted) list ids. */
static size_t
check_truth(const bg_psi_query *q, const uint64_t *asked, size_t n, const uint64_t *sorted_list,
            size_t nl)
{
    size_t hits = 0;
    for (size_t i = 0; i < n; i++) {
        int m = -1;
        bg_err err = {0};
        ck_assert_msg(bg_psi_result(q, i, &m, NULL, &err) == BG_OK, "%s", err.msg);
        bool truth = bsearch(&asked[i], sorted_list, nl, sizeof *sorted_list, cmp_u64) != NULL;
        ck_assert_msg(m == (int)truth, "input %zu (id %llu): got %d, truth %d", i,
                      (unsigned long long)asked[i], m, truth);
        hits += truth;
    }
    return hits;
}

/* Serialises s into chunks of at most max bytes and reads it back. */
static bg_snap *
round_trip(const bg_snap *s, size_t max, size_t *nchunks)
{
    size_t count = 0, len = 0;
    bg_err err = {0};
    ck_assert_int_eq(bg_snap_chunk_count(s, max, &count, &err), BG_OK);
    uint8_t *c = malloc(max);
    bg_snap_reader *r = NULL;
    ck_assert_int_eq(bg_snap_reader_new(&r, BG_SNAP_MAX_ENTRIES, &err), BG_OK);
    for (size_t i = 0; i < count; i++) {
        ck_assert_int_eq(bg_snap_chunk(s, max, i, c, max, &len, &err), BG_OK);
        ck_assert_uint_le(len, max);
        ck_assert_msg(bg_snap_reader_feed(r, c, len, &err) == BG_OK, "%s", err.msg);
        ck_assert_int_eq(bg_snap_reader_complete(r), i + 1 == count);
    }
    bg_snap_info info;
    bg_snap_get_info(s, &info);
    bg_snap *out = NULL;
    ck_assert_msg(bg_snap_reader_finish(r, info.digest, &out, threads, &err) == BG_OK, "%s",
                  err.msg);
    bg_snap_reader_free(r);
    free(c);
    if (nchunks)
        *nchunks = count;
    return out;
}

static void
assert_same_snapshot(const bg_snap *a, const bg_snap *b)
{
    bg_snap_info x, y;
    bg_snap_get_info(a, &x);
    bg_snap_get_info(b, &y);
    ck_assert_str_eq(x.list, y.list);
    ck_assert_uint_eq(x.generation, y.generation);
    ck_assert_uint_eq(x.epoch, y.epoch);
    ck_assert_uint_eq(x.count, y.count);
    ck_assert_int_eq(x.graded, y.graded);
    ck_assert_mem_eq(x.digest, y.digest, 32);
    ck_assert_mem_eq(x.root, y.root, 32);
    for (size_t i = 0; i < x.count; i++) {
        ck_assert_mem_eq(bg_snap_tag_at(a, i), bg_snap_tag_at(b, i), BG_SNAP_TAGBYTES);
        if (x.graded)
            ck_assert_mem_eq(bg_snap_sealed_at(a, i), bg_snap_sealed_at(b, i), BG_SNAP_SEALEDBYTES);
    }
}

/* All chunks of s (or d) into one array; returns the count. */
static size_t
chunks_of(const bg_snap *s, const bg_snap_delta *d, size_t max, uint8_t ***out, size_t **lens)
{
    size_t count = 0;
    if (s)
        ck_assert_int_eq(bg_snap_chunk_count(s, max, &count, NULL), BG_OK);
    else
        ck_assert_int_eq(bg_snap_delta_chunk_count(d, max, &count, NULL), BG_OK);
    *out = calloc(count, sizeof **out);
    *lens = calloc(count, sizeof **lens);
    for (size_t i = 0; i < count; i++) {
        (*out)[i] = malloc(max);
        if (s)
            ck_assert_int_eq(bg_snap_chunk(s, max, i, (*out)[i], max, &(*lens)[i], NULL), BG_OK);
        else
            ck_assert_int_eq(bg_snap_delta_chunk(d, max, i, (*out)[i], max, &(*lens)[i], NULL),
                             BG_OK);
    }
    return count;
}

static void
free_chunks(uint8_t **c, size_t *lens, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(c[i]);
    free(c);
    free(lens);
}

/* Feeds chunks and finishes: the first failing status (or BG_OK). */
static int
read_chunks(uint8_t **c, const size_t *lens, size_t count, bg_snap **out, bg_err *err)
{
    bg_snap_reader *r = NULL;
    ck_assert_int_eq(bg_snap_reader_new(&r, 1U << 20, NULL), BG_OK);
    int rc = BG_OK;
    for (size_t i = 0; i < count && rc == BG_OK; i++)
        rc = bg_snap_reader_feed(r, c[i], lens[i], err);
    if (rc == BG_OK)
        rc = bg_snap_reader_finish(r, NULL, out, threads, err);
    bg_snap_reader_free(r);
    return rc;
}

static int
read_delta_chunks(uint8_t **c, const size_t *lens, size_t count, bg_snap_delta **out, bg_err *err)
{
    bg_snap_reader *r = NULL;
    ck_assert_int_eq(bg_snap_reader_new(&r, 1U << 20, NULL), BG_OK);
    int rc = BG_OK;
    for (size_t i = 0; i < count && rc == BG_OK; i++)
        rc = bg_snap_reader_feed(r, c[i], lens[i], err);
    if (rc == BG_OK)
        rc = bg_snap_reader_finish_delta(r, out, err);
    bg_snap_reader_free(r);
    return rc;
}

/* ---- membership against ground truth ---- */

START_TEST(membership_empty_intersection_matches_nothing)
{
    size_t nl = SZ(2000, 300), na = SZ(500, 100);
    uint64_t *list = ids_range(1000000, nl), *asked = ids_range(5000000, na);
    bg_snap *s = make_list(list, nl, 0, 1, 1);
    bg_psi_query *q = ask(s, 1, BG_PSI_MEMBERSHIP, asked, na, 128);
    ck_assert_uint_eq(check_truth(q, asked, na, list, nl), 0);
    bg_psi_query_free(q);
    bg_snap_free(s);
    free(list);
    free(asked);
}
END_TEST

START_TEST(membership_full_intersection_matches_everything)
{
    size_t nl = SZ(2000, 300);
    uint64_t *list = ids_range(1000000, nl), *asked = ids_range(1000000, nl);
    rng_state = 11;
    for (size_t i = nl - 1; i > 0; i--) { /* asked in another order */
        size_t j = rng() % (i + 1);
        uint64_t t = asked[i];
        asked[i] = asked[j];
        asked[j] = t;
    }
    bg_snap *s = make_list(list, nl, 0, 1, 1);
    bg_psi_query *q = ask(s, 1, BG_PSI_MEMBERSHIP, asked, nl, 100);
    ck_assert_uint_eq(check_truth(q, asked, nl, list, nl), nl);
    bg_psi_query_free(q);
    bg_snap_free(s);
    free(list);
    free(asked);
}
END_TEST

START_TEST(membership_duplicates_are_asked_once_and_answered_per_input)
{
    uint64_t list[] = {10, 11, 12, 13};
    uint64_t asked[] = {11, 99, 11, 13, 11, 98, 99, 13, 12};
    size_t na = sizeof asked / sizeof asked[0];
    bg_snap *s = make_list(list, 4, 0, 1, 1);
    bg_psi_query *q = ask(s, 1, BG_PSI_MEMBERSHIP, asked, na, 2);
    ck_assert_uint_eq(bg_psi_query_items(q), 5); /* 11, 99, 13, 98, 12 */
    ck_assert_uint_eq(check_truth(q, asked, na, list, 4), 6);
    bg_psi_query_free(q);
    bg_snap_free(s);
}
END_TEST

START_TEST(membership_of_one_item)
{
    uint64_t list[] = {7, 8, 9}, in = 8, out = 70;
    bg_snap *s = make_list(list, 3, 0, 1, 1);
    bg_psi_query *q = ask(s, 1, BG_PSI_MEMBERSHIP, &in, 1, 1);
    ck_assert_uint_eq(check_truth(q, &in, 1, list, 3), 1);
    bg_psi_query_free(q);
    q = ask(s, 1, BG_PSI_MEMBERSHIP, &out, 1, 64);
    ck_assert_uint_eq(check_truth(q, &out, 1, list, 3), 0);
    bg_psi_query_free(q);
    bg_snap_free(s);
}
END_TEST

START_TEST(membership_across_chunk_boundaries)
{
    const size_t chunk = 64, sizes[] = {63, 64, 65, 128, 129, 191};
    size_t nl = 400;
    uint64_t *list = ids_range(200, nl);
    bg_snap *s = make_list(list, nl, 0, 3, 9);
    rng_state = 7;
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        uint64_t *asked = malloc(sizeof *asked * sizes[k]);
        for (size_t i = 0; i < sizes[k]; i++) /* about half on the list */
            asked[i] = 200 + rng() % (2 * nl);
        bg_psi_query *q = ask(s, 3, BG_PSI_MEMBERSHIP, asked, sizes[k], chunk);
        check_truth(q, asked, sizes[k], list, nl);
        bg_psi_query_free(q);
        free(asked);
    }
    bg_snap_free(s);
    free(list);
}
END_TEST

START_TEST(membership_10k_asked_against_50k_listed)
{
    size_t nl = SZ(50000, 2000), na = SZ(10000, 500);
    uint64_t *list = malloc(sizeof *list * nl), *asked = malloc(sizeof *asked * na);
    rng_state = 2024;
    for (size_t i = 0; i < nl; i++)
        list[i] = rng() >> 1;
    for (size_t i = 0; i < na; i++) /* 30% drawn from the list, the rest fresh */
        asked[i] = rng() % 10 < 3 ? list[rng() % nl] : (rng() >> 1);
    bg_snap *s = make_list(list, nl, 0, 1, 1);
    qsort(list, nl, sizeof *list, cmp_u64);
    /* chunks as a 64 KiB message allows */
    bg_psi_query *q = ask(s, 1, BG_PSI_MEMBERSHIP, asked, na, bg_psi_chunk_items(65536 - 256));
    size_t hits = check_truth(q, asked, na, list, nl);
    ck_assert_uint_gt(hits, na / 5);
    bg_psi_query_free(q);
    bg_snap_free(s);
    free(list);
    free(asked);
}
END_TEST

/* ---- graded ---- */

START_TEST(graded_payloads_open_for_matches_only)
{
    size_t nl = SZ(1000, 200);
    uint64_t *list = ids_range(3000, nl), asked[64];
    bg_snap *s = make_list(list, nl, 1, 2, 5);
    for (size_t i = 0; i < 64; i++)
        asked[i] = i % 2 ? 3000 + i * 3 : 900000 + i;
    bg_psi_query *q = ask(s, 2, BG_PSI_GRADED, asked, 64, 16);
    for (size_t i = 0; i < 64; i++) {
        int m = -1;
        bg_snap_record rec;
        ck_assert_int_eq(bg_psi_result(q, i, &m, &rec, NULL), BG_OK);
        uint8_t u[UL];
        uscc(asked[i], u);
        if (i % 2) {
            bg_snap_payload want;
            payload_of(asked[i], 0, &want);
            ck_assert_int_eq(m, 1);
            ck_assert_uint_eq(rec.input_len, UL);
            ck_assert_mem_eq(rec.input, u, UL);
            ck_assert_str_eq(rec.payload.grade, want.grade);
            ck_assert_str_eq(rec.payload.scale, want.scale);
            ck_assert_int_eq(rec.payload.evaluated_at, want.evaluated_at);
            ck_assert_int_eq(rec.payload.valid_until, want.valid_until);
            ck_assert_int_eq(rec.payload.listed_at, want.listed_at);
            ck_assert_int_eq(rec.payload.expires_at, want.expires_at);
            ck_assert_uint_eq(rec.payload.serial, want.serial);
        } else {
            static const bg_snap_record zero;
            ck_assert_int_eq(m, 0);
            ck_assert_mem_eq(&rec, &zero, sizeof rec);
        }
    }
    ck_assert_uint_eq(bg_psi_unopened(q), 0);
    bg_psi_query_free(q);
    bg_snap_free(s);
    free(list);
}
END_TEST

START_TEST(a_sealed_payload_opens_only_for_its_own_input)
{
    uint64_t list[] = {1, 2, 3};
    uint8_t sk[32], x[UL], y[UL], hx[32], nx[32], ny[32], tag[8];
    bg_snap *s = make_list(list, 3, 1, 1, 1);
    test_key(sk, 1);
    uscc(2, x);
    uscc(3, y);
    ck_assert_int_eq(bg_oprf_hash_to_group(hx, x, UL, NULL), BG_OK);
    ck_assert_int_eq(bg_oprf_evaluate(nx, sk, hx, NULL), BG_OK);
    ck_assert_int_eq(bg_oprf_hash_to_group(hx, y, UL, NULL), BG_OK);
    ck_assert_int_eq(bg_oprf_evaluate(ny, sk, hx, NULL), BG_OK);
    bg_snap_tag(tag, nx);
    size_t run = 0, at = bg_snap_find(s, tag, &run);
    ck_assert_uint_ne(at, BG_SNAP_NONE);
    ck_assert_uint_eq(run, 1);
    bg_snap_record rec;
    bg_err err = {0};
    ck_assert_int_eq(bg_snap_open(s, at, x, UL, nx, &rec, &err), BG_OK);
    /* right element, wrong input; right input, wrong element; both of another entry */
    ck_assert_int_eq(bg_snap_open(s, at, y, UL, nx, &rec, &err), BG_ENOTFOUND);
    ck_assert_int_eq(bg_snap_open(s, at, x, UL, ny, &rec, &err), BG_ENOTFOUND);
    ck_assert_int_eq(bg_snap_open(s, at, y, UL, ny, &rec, &err), BG_ENOTFOUND);
    static const bg_snap_record zero;
    ck_assert_mem_eq(&rec, &zero, sizeof rec);
    /* the same entry under the key of another generation does not open either */
    bg_snap *g2 = make_list(list, 3, 1, 2, 2);
    at = bg_snap_find(g2, tag, &run);
    ck_assert_uint_eq(at, BG_SNAP_NONE);
    ck_assert_int_eq(bg_snap_open(g2, 0, x, UL, nx, &rec, &err), BG_ENOTFOUND);
    bg_snap_free(g2);
    bg_snap_free(s);
}
END_TEST

START_TEST(resealing_is_deterministic_and_a_changed_payload_gets_a_new_nonce)
{
    uint64_t list[] = {40, 41, 42};
    /* epoch 1 and 2 of one generation: payload version 0 for all; then 1 for id 41 only
     * (built as two lists and spliced by tag) */
    bg_snap *a = make_list_v(list, 3, 1, 1, 1, 0);
    bg_snap *b = make_list_v(list, 3, 1, 1, 2, 0);
    bg_snap *c = make_list_v(list, 3, 1, 1, 3, 1);
    for (size_t i = 0; i < 3; i++) {
        /* unchanged entries: the same bytes in every epoch, so deltas stay small */
        ck_assert_mem_eq(bg_snap_sealed_at(a, i), bg_snap_sealed_at(b, i), BG_SNAP_SEALEDBYTES);
        /* changed payloads: another nonce under the same key (same tag) */
        ck_assert_mem_eq(bg_snap_tag_at(a, i), bg_snap_tag_at(c, i), 8);
        ck_assert_mem_ne(bg_snap_sealed_at(a, i), bg_snap_sealed_at(c, i), BG_SNAP_NONCEBYTES);
    }
    bg_snap_free(a);
    bg_snap_free(b);
    bg_snap_free(c);
}
END_TEST

/* ---- count-only ---- */

START_TEST(count_only_counts_the_distinct_matches)
{
    size_t nl = SZ(3000, 300);
    uint64_t *list = ids_range(77000, nl), asked[400];
    for (size_t i = 0; i < 400; i++)
        asked[i] = i < 37 ? 77000 + i * 5 : 10 + i;
    asked[399] = asked[0]; /* a repeated member counts once */
    asked[398] = asked[100];
    bg_snap *s = make_list(list, nl, 0, 1, 4);
    bg_psi_query *q = ask(s, 1, BG_PSI_COUNT, asked, 400, 64);
    size_t count = 0;
    ck_assert_int_eq(bg_psi_count(q, &count, NULL), BG_OK);
    ck_assert_uint_eq(count, 37);
    ck_assert_uint_eq(bg_psi_query_items(q), 398);
    int m;
    ck_assert_int_eq(bg_psi_result(q, 0, &m, NULL, NULL), BG_EINVAL); /* no per-input answer */
    bg_psi_query_free(q);
    bg_snap_free(s);
    free(list);
}
END_TEST

START_TEST(count_only_answers_come_back_shuffled)
{
    uint64_t list[20], asked[100];
    uint8_t sk[32], in[100][UL], *ptrs[100];
    size_t lens[100];
    for (size_t i = 0; i < 20; i++)
        list[i] = 500 + i;
    for (size_t i = 0; i < 100; i++) {
        asked[i] = i % 10 == 0 ? 500 + i / 10 : 9000 + i; /* 10 matches, every 10th */
        uscc(asked[i], in[i]);
        ptrs[i] = in[i];
        lens[i] = UL;
    }
    bg_snap *s = make_list(list, 20, 0, 1, 1);
    test_key(sk, 1);
    bg_psi_query *q = NULL;
    ck_assert_int_eq(
        bg_psi_query_new(&q, BG_PSI_COUNT, (const uint8_t *const *)ptrs, lens, 100, NULL), BG_OK);
    uint8_t b[100 * EB], plain[100 * EB], shuffled[100 * EB];
    ck_assert_int_eq(bg_psi_prepare(q, 0, 100, b, threads, NULL), BG_OK);
    /* in order (what a membership answer would be) vs the count-only answer */
    ck_assert_int_eq(bg_psi_evaluate(plain, sk, b, sizeof b, 100, threads, NULL), BG_OK);
    ck_assert_int_eq(bg_psi_evaluate_count(shuffled, sk, b, sizeof b, 50, 100, threads, NULL),
                     BG_OK);
    /* the same multiset, and some matched item is no longer where it was asked */
    size_t moved = 0;
    for (size_t i = 0; i < 100; i++) {
        size_t found = 100;
        for (size_t j = 0; j < 100; j++)
            if (memcmp(plain + EB * i, shuffled + EB * j, EB) == 0)
                found = j;
        ck_assert_uint_lt(found, 100);
        if (i % 10 == 0 && found != i)
            moved++;
    }
    ck_assert_uint_gt(moved, 0);
    ck_assert_int_eq(bg_psi_finish(q, s, 0, 100, shuffled, sizeof shuffled, threads, NULL), BG_OK);
    size_t count = 0;
    ck_assert_int_eq(bg_psi_count(q, &count, NULL), BG_OK);
    ck_assert_uint_eq(count, 10);
    bg_psi_query_free(q);
    bg_snap_free(s);
}
END_TEST

START_TEST(count_only_refuses_a_batch_below_the_minimum)
{
    uint8_t sk[32], el[50 * EB], out[50 * EB];
    test_key(sk, 1);
    for (size_t i = 0; i < 50; i++)
        crypto_core_ristretto255_random(el + EB * i);
    bg_err err = {0};
    ck_assert_int_eq(bg_psi_evaluate_count(out, sk, el, 49 * EB, 50, 1000, threads, &err),
                     BG_ELIMIT);
    ck_assert_ptr_nonnull(strstr(err.msg, "minimum is 50"));
    ck_assert_int_eq(bg_psi_evaluate_count(out, sk, el, 50 * EB, 50, 1000, threads, &err), BG_OK);
    /* the quota binds count-only batches too */
    ck_assert_int_eq(bg_psi_evaluate_count(out, sk, el, 50 * EB, 10, 49, threads, &err), BG_ELIMIT);
}
END_TEST

START_TEST(count_only_answer_is_taken_in_order_once)
{
    uint64_t list[] = {1, 2, 3, 4}, asked[] = {1, 2, 3, 50, 60, 70};
    uint8_t sk[32], in[6][UL], *ptrs[6], b[6 * EB], e[6 * EB];
    size_t lens[6];
    for (size_t i = 0; i < 6; i++) {
        uscc(asked[i], in[i]);
        ptrs[i] = in[i];
        lens[i] = UL;
    }
    bg_snap *s = make_list(list, 4, 0, 1, 1);
    test_key(sk, 1);
    bg_psi_query *q = NULL;
    ck_assert_int_eq(
        bg_psi_query_new(&q, BG_PSI_COUNT, (const uint8_t *const *)ptrs, lens, 6, NULL), BG_OK);
    ck_assert_int_eq(bg_psi_prepare(q, 0, 6, b, threads, NULL), BG_OK);
    ck_assert_int_eq(bg_psi_evaluate_count(e, sk, b, sizeof b, 1, 6, threads, NULL), BG_OK);
    size_t count;
    ck_assert_int_eq(bg_psi_count(q, &count, NULL), BG_EINVAL); /* nothing taken yet */
    ck_assert_int_eq(bg_psi_finish(q, s, 2, 2, e + 2 * EB, 2 * EB, threads, NULL), BG_EINVAL);
    ck_assert_int_eq(bg_psi_finish(q, s, 0, 2, e, 2 * EB, threads, NULL), BG_OK);
    ck_assert_int_eq(bg_psi_finish(q, s, 0, 2, e, 2 * EB, threads, NULL), BG_EINVAL); /* again */
    ck_assert_int_eq(bg_psi_finish(q, s, 2, 4, e + 2 * EB, 4 * EB, threads, NULL), BG_OK);
    ck_assert(bg_psi_query_done(q));
    ck_assert_int_eq(bg_psi_count(q, &count, NULL), BG_OK);
    ck_assert_uint_eq(count, 3);
    bg_psi_query_free(q);
    bg_snap_free(s);
}
END_TEST

/* ---- snapshots ---- */

START_TEST(snapshot_sizes_and_false_positive_bound)
{
    /* T = 8: a list of 4M = 2^22 entries gives 2^22 / 2^64 = 2^-42 per asked item, and the
     * largest list, 2^24, 2^-40. */
    ck_assert_uint_eq(BG_SNAP_TAGBYTES, 8);
    ck_assert_uint_le((uint64_t)BG_SNAP_MAX_ENTRIES, (uint64_t)1 << (8 * BG_SNAP_TAGBYTES - 40));
    ck_assert_uint_eq(bg_snap_entry_bytes(0), 8);
    ck_assert_uint_eq(bg_snap_entry_bytes(1), 147);
    uint64_t ids[] = {1, 2, 3, 4, 5};
    bg_snap *s = make_list(ids, 5, 1, 1, 1);
    bg_snap_info info;
    bg_snap_get_info(s, &info);
    ck_assert_uint_eq(info.entry_bytes, 147);
    ck_assert_uint_eq(info.wire_bytes, 9 + strlen("serious-dishonesty") + 20 + 5 * 147);
    bg_snap_free(s);
}
END_TEST

START_TEST(snapshot_round_trips_whole_and_in_chunks)
{
    size_t n = SZ(3000, 400), k = 0;
    uint64_t *ids = ids_range(42, n);
    for (int graded = 0; graded <= 1; graded++) {
        bg_snap *s = make_list(ids, n, graded, 7, 70);
        bg_snap *one = round_trip(s, 64U << 20, &k);
        ck_assert_uint_eq(k, 1);
        assert_same_snapshot(s, one);
        bg_snap *many = round_trip(s, BG_SNAP_CHUNK_MIN, &k);
        bg_snap_info info;
        bg_snap_get_info(s, &info);
        size_t per = BG_SNAP_CHUNK_MIN - BG_SNAP_CHUNK_HEADERBYTES;
        ck_assert_uint_eq(k, (info.wire_bytes + per - 1) / per);
        ck_assert_uint_gt(k, 5);
        assert_same_snapshot(s, many);
        /* a chunk size that cuts entries mid-way */
        bg_snap *odd = round_trip(s, BG_SNAP_CHUNK_MIN + 77, NULL);
        assert_same_snapshot(s, odd);
        bg_snap_free(one);
        bg_snap_free(many);
        bg_snap_free(odd);
        bg_snap_free(s);
    }
    /* the empty list */
    bg_snap *e = make_list(ids, 0, 1, 1, 1), *e2 = round_trip(e, BG_SNAP_CHUNK_MIN, &k);
    ck_assert_uint_eq(k, 1);
    assert_same_snapshot(e, e2);
    bg_snap_free(e);
    bg_snap_free(e2);
    free(ids);
}
END_TEST

START_TEST(snapshot_is_canonical_whatever_the_input_order_and_threads)
{
    size_t n = SZ(2000, 300);
    uint64_t *ids = ids_range(5, n), *rev = malloc(sizeof *rev * n);
    for (size_t i = 0; i < n; i++)
        rev[i] = ids[n - 1 - i];
    unsigned saved = threads;
    threads = 1;
    bg_snap *a = make_list(ids, n, 1, 1, 1);
    threads = 0;
    bg_snap *b = make_list(rev, n, 1, 1, 1);
    threads = saved;
    assert_same_snapshot(a, b);
    for (size_t i = 1; i < n; i++)
        ck_assert_int_lt(memcmp(bg_snap_tag_at(a, i - 1), bg_snap_tag_at(a, i), 8), 0);
    bg_snap_free(a);
    bg_snap_free(b);
    free(ids);
    free(rev);
}
END_TEST

START_TEST(duplicate_entries_are_kept_once_or_refused)
{
    uint8_t sk[32], u[3][UL];
    bg_snap_payload p1, p2;
    test_key(sk, 1);
    uscc(1, u[0]);
    uscc(2, u[1]);
    memcpy(u[2], u[0], UL);
    payload_of(1, 0, &p1);
    payload_of(1, 1, &p2);
    bg_snap_entry e[4] = {{u[0], UL, &p1}, {u[1], UL, &p1}, {u[2], UL, &p1}, {u[0], UL, &p1}};
    bg_snap *s = NULL;
    bg_err err = {0};
    ck_assert_int_eq(bg_snap_build(&s, sk, "L", 1, 1, 1, e, 4, threads, &err), BG_OK);
    ck_assert_uint_eq(bg_snap_count(s), 2);
    bg_snap_free(s);
    ck_assert_int_eq(bg_snap_build(&s, sk, "L", 1, 1, 0, e, 4, threads, &err), BG_OK);
    ck_assert_uint_eq(bg_snap_count(s), 2);
    bg_snap_free(s);
    e[2].payload = &p2; /* entry 2 repeats entry 0's input with another grade */
    ck_assert_int_eq(bg_snap_build(&s, sk, "L", 1, 1, 1, e, 4, threads, &err), BG_EINVAL);
    ck_assert_ptr_null(s);
    ck_assert_msg(strstr(err.msg, "entries 0 and 2") || strstr(err.msg, "entries 2 and 3"), "%s",
                  err.msg);
}
END_TEST

START_TEST(bad_entries_and_list_names_are_refused)
{
    uint8_t sk[32], u[UL], zero[32] = {0}, long_in[33];
    bg_snap_payload p;
    test_key(sk, 1);
    uscc(1, u);
    payload_of(1, 0, &p);
    memset(long_in, 'A', sizeof long_in);
    bg_snap *s = NULL;
    bg_err err = {0};
    bg_snap_entry e[3] = {{u, UL, &p}, {u, UL, &p}, {u, UL, &p}};
    const char *bad_lists[] = {"", "has space", "tab\t",
                               "0123456789012345678901234567890123456789012345678901234567890123"
                               "4"};
    for (size_t i = 0; i < 4; i++)
        ck_assert_int_eq(bg_snap_build(&s, sk, bad_lists[i], 1, 1, 0, e, 1, threads, &err),
                         BG_EINVAL);
    ck_assert_int_eq(bg_snap_build(&s, zero, "L", 1, 1, 0, e, 1, threads, &err), BG_EINVAL);
    e[2] = (bg_snap_entry){long_in, 33, &p};
    ck_assert_int_eq(bg_snap_build(&s, sk, "L", 1, 1, 0, e, 3, threads, &err), BG_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "entry 2"));
    e[2] = (bg_snap_entry){u, 0, &p};
    ck_assert_int_eq(bg_snap_build(&s, sk, "L", 1, 1, 0, e, 3, threads, &err), BG_EINVAL);
    e[2] = (bg_snap_entry){u, UL, NULL};
    ck_assert_int_eq(bg_snap_build(&s, sk, "L", 1, 1, 1, e, 3, threads, &err), BG_EINVAL);
    memset(p.grade, 'A', sizeof p.grade); /* no NUL: longer than 8 */
    e[2] = (bg_snap_entry){u, UL, &p};
    ck_assert_int_eq(bg_snap_build(&s, sk, "L", 1, 1, 1, e, 3, threads, &err), BG_EINVAL);
    ck_assert_int_eq(
        bg_snap_build(&s, sk, "L", 1, 1, 0, e, (size_t)BG_SNAP_MAX_ENTRIES + 1, threads, &err),
        BG_ELIMIT);
    ck_assert_ptr_null(s);
}
END_TEST

/* ---- hostile input ---- */

START_TEST(evaluate_refuses_hostile_elements_and_over_quota)
{
    uint8_t sk[32], el[4 * EB], out[4 * EB];
    test_key(sk, 1);
    for (size_t i = 0; i < 4; i++)
        crypto_core_ristretto255_random(el + EB * i);
    bg_err err = {0};
    ck_assert_int_eq(bg_psi_evaluate(out, sk, el, sizeof el, 4, threads, &err), BG_OK);
    /* wrong lengths: not a multiple of 32, empty */
    ck_assert_int_eq(bg_psi_evaluate(out, sk, el, 4 * EB - 1, 4, threads, &err), BG_EPROTO);
    ck_assert_int_eq(bg_psi_evaluate(out, sk, el, 33, 4, threads, &err), BG_EPROTO);
    ck_assert_int_eq(bg_psi_evaluate(out, sk, el, 0, 4, threads, &err), BG_EPROTO);
    /* more items than the quota */
    ck_assert_int_eq(bg_psi_evaluate(out, sk, el, sizeof el, 3, threads, &err), BG_ELIMIT);
    ck_assert_ptr_nonnull(strstr(err.msg, "quota allows 3"));
    /* identity; non-canonical (all ones, >= p); a valid point with bit 255 set */
    uint8_t keep[EB];
    memcpy(keep, el + 2 * EB, EB);
    memset(el + 2 * EB, 0, EB);
    ck_assert_int_eq(bg_psi_evaluate(out, sk, el, sizeof el, 4, threads, &err), BG_EPROTO);
    ck_assert_ptr_nonnull(strstr(err.msg, "element 2"));
    ck_assert_ptr_nonnull(strstr(err.msg, "identity"));
    memset(el + 2 * EB, 0xff, EB);
    ck_assert_int_eq(bg_psi_evaluate(out, sk, el, sizeof el, 4, threads, &err), BG_EPROTO);
    memcpy(el + 2 * EB, keep, EB);
    el[2 * EB + 31] |= 0x80;
    ck_assert_int_eq(bg_psi_evaluate(out, sk, el, sizeof el, 4, threads, &err), BG_EPROTO);
    /* the refusal names the index, never the bytes */
    char hex[2 * EB + 1];
    sodium_bin2hex(hex, sizeof hex, el + 2 * EB, EB);
    ck_assert_ptr_null(strstr(err.msg, hex));
    memcpy(el + 2 * EB, keep, EB);
    el[2 * EB] ^= 1; /* a random 32-byte string is rarely a valid point */
    int rc = bg_psi_evaluate(out, sk, el, sizeof el, 4, threads, &err);
    ck_assert(rc == BG_OK || rc == BG_EPROTO);
    /* and the count-only evaluation checks the same way */
    memset(el, 0, EB);
    ck_assert_int_eq(bg_psi_evaluate_count(out, sk, el, sizeof el, 1, 4, threads, &err), BG_EPROTO);
}
END_TEST

START_TEST(finish_refuses_a_hostile_answer_and_keeps_nothing)
{
    uint64_t list[] = {1, 2, 3}, asked[] = {2, 3, 4};
    uint8_t sk[32], in[3][UL], *ptrs[3], b[3 * EB], e[3 * EB], bad[3 * EB];
    size_t lens[3];
    for (size_t i = 0; i < 3; i++) {
        uscc(asked[i], in[i]);
        ptrs[i] = in[i];
        lens[i] = UL;
    }
    bg_snap *s = make_list(list, 3, 0, 1, 1);
    test_key(sk, 1);
    bg_psi_query *q = NULL;
    bg_err err = {0};
    ck_assert_int_eq(
        bg_psi_query_new(&q, BG_PSI_MEMBERSHIP, (const uint8_t *const *)ptrs, lens, 3, NULL),
        BG_OK);
    ck_assert_int_eq(bg_psi_finish(q, s, 0, 3, b, sizeof b, threads, &err), BG_EINVAL);
    ck_assert_int_eq(bg_psi_prepare(q, 0, 3, b, threads, NULL), BG_OK);
    ck_assert_int_eq(bg_psi_prepare(q, 1, 1, bad, threads, &err), BG_EINVAL); /* blinded once */
    ck_assert_int_eq(bg_psi_evaluate(e, sk, b, sizeof b, 3, threads, NULL), BG_OK);
    memcpy(bad, e, sizeof bad);
    memset(bad + EB, 0, EB);
    ck_assert_int_eq(bg_psi_finish(q, s, 0, 3, bad, sizeof bad, threads, &err), BG_EPROTO);
    ck_assert_int_eq(bg_psi_finish(q, s, 0, 3, e, sizeof e - 1, threads, &err), BG_EPROTO);
    ck_assert_int_eq(bg_psi_finish(q, s, 0, 4, e, sizeof e, threads, &err), BG_EINVAL);
    int m;
    ck_assert_int_eq(bg_psi_result(q, 0, &m, NULL, NULL), BG_EINVAL); /* nothing kept */
    ck_assert_int_eq(bg_psi_finish(q, s, 0, 3, e, sizeof e, threads, &err), BG_OK);
    ck_assert_uint_eq(check_truth(q, asked, 3, list, 3), 2);
    /* answered items are not answered twice, nor prepared again */
    ck_assert_int_eq(bg_psi_finish(q, s, 0, 3, e, sizeof e, threads, &err), BG_EINVAL);
    ck_assert_int_eq(bg_psi_prepare(q, 0, 1, b, threads, &err), BG_EINVAL);
    bg_psi_query_free(q);
    bg_snap_free(s);
}
END_TEST

START_TEST(query_inputs_are_checked)
{
    uint8_t a[UL], long_in[33];
    const uint8_t *ptrs[2] = {a, long_in};
    size_t lens[2] = {UL, 33};
    bg_psi_query *q = NULL;
    bg_err err = {0};
    memset(a, 'A', sizeof a);
    memset(long_in, 'B', sizeof long_in);
    ck_assert_int_eq(bg_psi_query_new(&q, BG_PSI_MEMBERSHIP, ptrs, lens, 2, &err), BG_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "input 1"));
    lens[1] = 0;
    ck_assert_int_eq(bg_psi_query_new(&q, BG_PSI_MEMBERSHIP, ptrs, lens, 2, &err), BG_EINVAL);
    ck_assert_int_eq(bg_psi_query_new(&q, BG_PSI_MEMBERSHIP, ptrs, lens, 0, &err), BG_EINVAL);
    ck_assert_int_eq(bg_psi_query_new(&q, 7, ptrs, lens, 1, &err), BG_EINVAL);
    ck_assert_ptr_null(q);
}
END_TEST

START_TEST(reader_refuses_truncated_and_misordered_chunks)
{
    uint64_t *ids = ids_range(1, 200);
    bg_snap *s = make_list(ids, 200, 1, 1, 1), *out = NULL;
    uint8_t **c;
    size_t *lens, n = chunks_of(s, NULL, BG_SNAP_CHUNK_MIN, &c, &lens);
    bg_err err = {0};
    ck_assert_uint_gt(n, 4);
    ck_assert_int_eq(read_chunks(c, lens, n, &out, &err), BG_OK);
    bg_snap_free(out);
    /* a chunk cut short: the next one no longer continues it */
    lens[1]--;
    ck_assert_int_eq(read_chunks(c, lens, n, &out, &err), BG_EPROTO);
    lens[1]++;
    /* the last chunk cut short */
    lens[n - 1]--;
    ck_assert_int_eq(read_chunks(c, lens, n, &out, &err), BG_EPROTO);
    lens[n - 1]++;
    /* a chunk shorter than its header; the first one shorter than the stream header */
    size_t keep = lens[0];
    lens[0] = 10;
    ck_assert_int_eq(read_chunks(c, lens, n, &out, &err), BG_EPROTO);
    lens[0] = BG_SNAP_CHUNK_HEADERBYTES + 20;
    ck_assert_int_eq(read_chunks(c, lens, n, &out, &err), BG_EPROTO);
    lens[0] = keep;
    /* missing last chunk: incomplete */
    ck_assert_int_eq(read_chunks(c, lens, n - 1, &out, &err), BG_EPROTO);
    ck_assert_ptr_nonnull(strstr(err.msg, "incomplete"));
    /* swapped chunks; a chunk repeated */
    uint8_t *t = c[1];
    size_t tl = lens[1];
    c[1] = c[2], lens[1] = lens[2], c[2] = t, lens[2] = tl;
    ck_assert_int_eq(read_chunks(c, lens, n, &out, &err), BG_EPROTO);
    c[2] = c[1], lens[2] = lens[1], c[1] = t, lens[1] = tl;
    uint8_t *rep[3] = {c[0], c[1], c[1]};
    size_t replen[3] = {lens[0], lens[1], lens[1]};
    ck_assert_int_eq(read_chunks(rep, replen, 3, &out, &err), BG_EPROTO);
    /* a chunk of another snapshot (another epoch) in the middle */
    bg_snap *s2 = make_list(ids, 200, 1, 1, 2);
    uint8_t **c2;
    size_t *lens2, n2 = chunks_of(s2, NULL, BG_SNAP_CHUNK_MIN, &c2, &lens2);
    ck_assert_uint_eq(n2, n);
    t = c[3];
    c[3] = c2[3];
    ck_assert_int_eq(read_chunks(c, lens, n, &out, &err), BG_EPROTO);
    c[3] = t;
    /* after a failure the reader refuses everything */
    bg_snap_reader *r = NULL;
    ck_assert_int_eq(bg_snap_reader_new(&r, 1000, NULL), BG_OK);
    ck_assert_int_eq(bg_snap_reader_feed(r, c[1], lens[1], &err), BG_EPROTO);
    ck_assert_int_ne(bg_snap_reader_feed(r, c[0], lens[0], &err), BG_OK);
    bg_snap_reader_free(r);
    free_chunks(c2, lens2, n2);
    free_chunks(c, lens, n);
    bg_snap_free(s);
    bg_snap_free(s2);
    free(ids);
}
END_TEST

/* Offsets in a single-chunk stream of list "serious-dishonesty" (18 bytes). */
#define H0 BG_SNAP_CHUNK_HEADERBYTES
#define LISTLEN 18U
#define COUNT_AT (H0 + 9 + LISTLEN + 16)
#define BODY_AT (H0 + 9 + LISTLEN + 20)

START_TEST(reader_refuses_unsorted_tags_and_digest_mismatch)
{
    uint64_t *ids = ids_range(1, 50);
    bg_snap *s = make_list(ids, 50, 0, 1, 1), *out = NULL;
    uint8_t **c;
    size_t *lens, n = chunks_of(s, NULL, 1 << 16, &c, &lens);
    bg_err err = {0};
    ck_assert_uint_eq(n, 1);
    uint8_t *body = c[0] + BODY_AT, t[8];
    /* swap tags 0 and 1 */
    memcpy(t, body, 8);
    memcpy(body, body + 8, 8);
    memcpy(body + 8, t, 8);
    ck_assert_int_eq(read_chunks(c, lens, 1, &out, &err), BG_EPROTO);
    ck_assert_ptr_nonnull(strstr(err.msg, "out of order"));
    memcpy(body + 8, body, 8);
    memcpy(body, t, 8);
    /* the last tag's low bit: still sorted, another digest */
    body[50 * 8 - 1] ^= 1;
    ck_assert_int_eq(read_chunks(c, lens, 1, &out, &err), BG_EPROTO);
    ck_assert_ptr_nonnull(strstr(err.msg, "digest"));
    body[50 * 8 - 1] ^= 1;
    /* the digest in the chunk header */
    c[0][40] ^= 0x10;
    ck_assert_int_eq(read_chunks(c, lens, 1, &out, &err), BG_EPROTO);
    c[0][40] ^= 0x10;
    /* the epoch in the stream header (covered by the digest) */
    c[0][H0 + 9 + LISTLEN + 8] ^= 1;
    ck_assert_int_eq(read_chunks(c, lens, 1, &out, &err), BG_EPROTO);
    c[0][H0 + 9 + LISTLEN + 8] ^= 1;
    /* a digest other than the signed one */
    bg_snap_reader *r = NULL;
    uint8_t other[32] = {1};
    ck_assert_int_eq(bg_snap_reader_new(&r, 1000, NULL), BG_OK);
    ck_assert_int_eq(bg_snap_reader_feed(r, c[0], lens[0], &err), BG_OK);
    ck_assert_int_eq(bg_snap_reader_finish(r, other, &out, threads, &err), BG_EPROTO);
    ck_assert_ptr_nonnull(strstr(err.msg, "signed"));
    bg_snap_reader_free(r);
    ck_assert_int_eq(read_chunks(c, lens, 1, &out, &err), BG_OK);
    bg_snap_free(out);
    free_chunks(c, lens, n);
    bg_snap_free(s);
    free(ids);
}
END_TEST

START_TEST(reader_refuses_counts_larger_than_the_data)
{
    uint64_t *ids = ids_range(1, 50);
    bg_snap *s = make_list(ids, 50, 0, 1, 1), *out = NULL;
    uint8_t **c;
    size_t *lens, n = chunks_of(s, NULL, 1 << 16, &c, &lens);
    bg_err err = {0};
    /* the entry count */
    c[0][COUNT_AT] = 51;
    ck_assert_int_eq(read_chunks(c, lens, 1, &out, &err), BG_EPROTO);
    c[0][COUNT_AT + 3] = 0x7f; /* 2^30 and more: over any reader's limit, before allocating */
    ck_assert_int_eq(read_chunks(c, lens, 1, &out, &err), BG_ELIMIT);
    c[0][COUNT_AT] = 50;
    c[0][COUNT_AT + 3] = 0;
    /* the stream length, the chunk count */
    c[0][16] += 8;
    ck_assert_int_eq(read_chunks(c, lens, 1, &out, &err), BG_EPROTO);
    c[0][16] -= 8;
    memset(c[0] + 12, 0xff, 4);
    ck_assert_int_eq(read_chunks(c, lens, 1, &out, &err), BG_EPROTO);
    memset(c[0] + 12, 0, 4);
    c[0][12] = 2; /* two chunks announced, the data ends in the first */
    ck_assert_int_eq(read_chunks(c, lens, 1, &out, &err), BG_EPROTO);
    c[0][12] = 1;
    /* the reader's own limit */
    bg_snap_reader *r = NULL;
    ck_assert_int_eq(bg_snap_reader_new(&r, 49, NULL), BG_OK);
    ck_assert_int_eq(bg_snap_reader_feed(r, c[0], lens[0], &err), BG_ELIMIT);
    bg_snap_reader_free(r);
    ck_assert_int_eq(read_chunks(c, lens, 1, &out, &err), BG_OK);
    bg_snap_free(out);
    free_chunks(c, lens, n);
    bg_snap_free(s);
    free(ids);
}
END_TEST

START_TEST(every_single_byte_change_to_a_snapshot_is_refused)
{
    uint64_t *ids = ids_range(1, 12);
    bg_snap *s = make_list(ids, 12, 1, 1, 1), *out = NULL;
    uint8_t **c;
    size_t *lens, n = chunks_of(s, NULL, BG_SNAP_CHUNK_MIN, &c, &lens);
    bg_err err = {0};
    rng_state = 99;
    size_t rounds = SZ(3000, 300);
    for (size_t k = 0; k < rounds; k++) {
        size_t ci = rng() % n, at = rng() % lens[ci];
        uint8_t x = (uint8_t)(1 + rng() % 255);
        c[ci][at] ^= x;
        out = NULL;
        int rc = read_chunks(c, lens, n, &out, &err);
        ck_assert_msg(rc != BG_OK, "chunk %zu byte %zu ^ %02x accepted", ci, at, x);
        ck_assert_ptr_null(out);
        c[ci][at] ^= x;
    }
    ck_assert_int_eq(read_chunks(c, lens, n, &out, &err), BG_OK);
    bg_snap_free(out);
    free_chunks(c, lens, n);
    bg_snap_free(s);
    free(ids);
}
END_TEST

/* ---- epochs and deltas ---- */

START_TEST(a_removed_entry_stops_matching_at_the_next_epoch)
{
    uint64_t e1[] = {1, 2, 3, 4}, e2[] = {1, 2, 4, 5}, asked[] = {3, 5, 2};
    bg_snap *s1 = make_list(e1, 4, 0, 1, 10), *s2 = make_list(e2, 4, 0, 1, 11);
    bg_psi_query *q1 = ask(s1, 1, BG_PSI_MEMBERSHIP, asked, 3, 8);
    bg_psi_query *q2 = ask(s2, 1, BG_PSI_MEMBERSHIP, asked, 3, 8);
    int m;
    ck_assert_int_eq(bg_psi_result(q1, 0, &m, NULL, NULL), BG_OK);
    ck_assert_int_eq(m, 1);
    ck_assert_int_eq(bg_psi_result(q2, 0, &m, NULL, NULL), BG_OK);
    ck_assert_int_eq(m, 0); /* 3 was removed (repaired) */
    ck_assert_int_eq(bg_psi_result(q1, 1, &m, NULL, NULL), BG_OK);
    ck_assert_int_eq(m, 0);
    ck_assert_int_eq(bg_psi_result(q2, 1, &m, NULL, NULL), BG_OK);
    ck_assert_int_eq(m, 1);
    bg_psi_query_free(q1);
    bg_psi_query_free(q2);
    bg_snap_free(s1);
    bg_snap_free(s2);
}
END_TEST

START_TEST(delta_plus_old_is_new)
{
    size_t n = SZ(5000, 500);
    for (int graded = 0; graded <= 1; graded++) {
        uint64_t *a = ids_range(100, n), *b = ids_range(100, n);
        /* epoch 2: 10% removed, 10% added, and (graded) 5% regraded */
        for (size_t i = 0; i < n; i += 10)
            b[i] = 1000000 + i;
        bg_snap *s1 = make_list_v(a, n, graded, 4, 20, 0);
        bg_snap *s2 = NULL;
        {
            uint8_t sk[32], (*in)[UL] = malloc(UL * n);
            bg_snap_payload *pl = malloc(sizeof *pl * n);
            bg_snap_entry *e = malloc(sizeof *e * n);
            for (size_t i = 0; i < n; i++) {
                uscc(b[i], in[i]);
                payload_of(b[i], i % 20 == 5, &pl[i]);
                e[i] = (bg_snap_entry){in[i], UL, &pl[i]};
            }
            test_key(sk, 4);
            ck_assert_int_eq(
                bg_snap_build(&s2, sk, "serious-dishonesty", 4, 23, graded, e, n, threads, NULL),
                BG_OK);
            free(in);
            free(pl);
            free(e);
        }
        bg_snap_delta *d = NULL, *d2 = NULL;
        bg_err err = {0};
        ck_assert_int_eq(bg_snap_delta_make(&d, s1, s2, &err), BG_OK);
        bg_snap_info di;
        bg_snap_delta_get_info(d, &di);
        size_t changed = graded ? n / 10 + n / 20 : n / 10;
        ck_assert_uint_eq(di.removed, changed);
        ck_assert_uint_eq(di.added, changed);
        ck_assert_uint_eq(di.from_epoch, 20);
        ck_assert_uint_eq(di.epoch, 23);
        /* over the wire in small chunks */
        uint8_t **c;
        size_t *lens, nc = chunks_of(NULL, d, BG_SNAP_CHUNK_MIN, &c, &lens);
        ck_assert_int_eq(read_delta_chunks(c, lens, nc, &d2, &err), BG_OK);
        bg_snap *s3 = NULL;
        ck_assert_msg(bg_snap_delta_apply(&s3, s1, d2, threads, &err) == BG_OK, "%s", err.msg);
        assert_same_snapshot(s2, s3);
        /* the delta is much smaller than the full snapshot */
        bg_snap_info fi;
        bg_snap_get_info(s2, &fi);
        ck_assert_uint_lt(di.wire_bytes * 4, fi.wire_bytes);
        /* it applies to its own base only */
        bg_snap *s4 = NULL;
        ck_assert_int_eq(bg_snap_delta_apply(&s4, s2, d2, threads, &err), BG_EPROTO);
        free_chunks(c, lens, nc);
        bg_snap_delta_free(d);
        bg_snap_delta_free(d2);
        bg_snap_free(s1);
        bg_snap_free(s2);
        bg_snap_free(s3);
        free(a);
        free(b);
    }
}
END_TEST

START_TEST(a_delta_for_another_generation_or_list_is_refused)
{
    uint64_t ids[] = {1, 2, 3};
    bg_snap *g1 = make_list(ids, 3, 0, 1, 5), *g2 = make_list(ids, 3, 0, 2, 6);
    bg_snap *g1e7 = make_list(ids, 2, 0, 1, 7), *out = NULL;
    bg_snap_delta *d = NULL, *d2 = NULL;
    bg_err err = {0};
    ck_assert_int_eq(bg_snap_delta_make(&d, g1, g2, &err), BG_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "full snapshot"));
    ck_assert_int_eq(bg_snap_delta_make(&d, g1e7, g1, &err), BG_EINVAL); /* backwards */
    ck_assert_int_eq(bg_snap_delta_make(&d, g1, g1e7, &err), BG_OK);
    /* applied to a snapshot of another generation (same epoch number is impossible, but the
     * generation is checked first) */
    ck_assert_int_eq(bg_snap_delta_apply(&out, g2, d, threads, &err), BG_EPROTO);
    ck_assert_ptr_nonnull(strstr(err.msg, "generation"));
    ck_assert_int_eq(bg_snap_delta_apply(&out, g1, d, threads, &err), BG_OK);
    assert_same_snapshot(out, g1e7);
    bg_snap_free(out);
    /* the same key, generation and epoch, another list */
    uint8_t sk[32], u[UL];
    bg_snap *other = NULL;
    test_key(sk, 1);
    uscc(1, u);
    bg_snap_entry one = {u, UL, NULL};
    ck_assert_int_eq(
        bg_snap_build(&other, sk, "abnormal-operation", 1, 5, 0, &one, 1, threads, &err), BG_OK);
    ck_assert_int_eq(bg_snap_delta_apply(&out, other, d, threads, &err), BG_EPROTO);
    ck_assert_ptr_nonnull(strstr(err.msg, "list"));
    ck_assert_int_eq(bg_snap_delta_make(&d2, other, g1e7, &err), BG_EINVAL);
    bg_snap_free(other);
    /* A count beyond what the delta can make is refused before it is allocated (found
     * by fuzzing: a small delta announcing 3.6M entries had 537 MB allocated for it). */
    d->to_count = g1->n + d->nadd + 1;
    ck_assert_int_eq(bg_snap_delta_apply(&out, g1, d, threads, &err), BG_EPROTO);
    ck_assert_ptr_nonnull(strstr(err.msg, "announces"));
    d->to_count = SIZE_MAX;
    ck_assert_int_eq(bg_snap_delta_apply(&out, g1, d, threads, &err), BG_EPROTO);
    ck_assert_ptr_null(out);
    bg_snap_delta_free(d);
    bg_snap_free(g1);
    bg_snap_free(g2);
    bg_snap_free(g1e7);
}
END_TEST

START_TEST(every_single_byte_change_to_a_delta_is_refused)
{
    uint64_t a[] = {1, 2, 3, 4, 5, 6}, b[] = {1, 3, 4, 6, 7, 8};
    bg_snap *s1 = make_list(a, 6, 1, 1, 1), *s2 = make_list(b, 6, 1, 1, 2);
    bg_snap_delta *d = NULL;
    ck_assert_int_eq(bg_snap_delta_make(&d, s1, s2, NULL), BG_OK);
    uint8_t **c;
    size_t *lens, n = chunks_of(NULL, d, BG_SNAP_CHUNK_MIN, &c, &lens);
    bg_err err = {0};
    rng_state = 5;
    for (size_t k = 0; k < SZ(2000, 200); k++) {
        size_t ci = rng() % n, at = rng() % lens[ci];
        uint8_t x = (uint8_t)(1 + rng() % 255);
        c[ci][at] ^= x;
        bg_snap_delta *d2 = NULL;
        bg_snap *out = NULL;
        int rc = read_delta_chunks(c, lens, n, &d2, &err);
        if (rc == BG_OK)
            rc = bg_snap_delta_apply(&out, s1, d2, threads, &err);
        ck_assert_msg(rc != BG_OK, "chunk %zu byte %zu ^ %02x accepted", ci, at, x);
        ck_assert_ptr_null(out);
        bg_snap_delta_free(d2);
        c[ci][at] ^= x;
    }
    free_chunks(c, lens, n);
    bg_snap_delta_free(d);
    bg_snap_free(s1);
    bg_snap_free(s2);
}
END_TEST

START_TEST(stale_and_unknown_epochs_are_refused)
{
    bg_err err = {0};
    ck_assert_int_eq(bg_snap_freshness(2, 10, 2, 10), BG_SNAP_CURRENT);
    ck_assert_int_eq(bg_snap_freshness(2, 10, 2, 9), BG_SNAP_STALE);
    ck_assert_int_eq(bg_snap_freshness(2, 10, 1, 9), BG_SNAP_STALE);
    ck_assert_int_eq(bg_snap_freshness(2, 10, 2, 11), BG_SNAP_AHEAD);
    ck_assert_int_eq(bg_snap_freshness(2, 10, 1, 10), BG_SNAP_WRONG_KEY_GEN);
    ck_assert_int_eq(bg_snap_require_current(2, 10, 2, 10, &err), BG_OK);
    ck_assert_int_eq(bg_snap_require_current(2, 10, 2, 9, &err), BG_EPROTO);
    ck_assert_ptr_nonnull(strstr(err.msg, "stale"));
    ck_assert_int_eq(bg_snap_require_current(2, 10, 2, 12, &err), BG_EPROTO);
    ck_assert_int_eq(bg_snap_require_current(2, 10, 3, 10, &err), BG_EPROTO);
}
END_TEST

START_TEST(a_query_is_matched_against_one_snapshot_only)
{
    uint64_t ids[] = {1, 2, 3, 4}, asked[] = {1, 2, 3, 4};
    uint8_t sk[32], in[4][UL], *ptrs[4], b[4 * EB], e[4 * EB];
    size_t lens[4];
    for (size_t i = 0; i < 4; i++) {
        uscc(asked[i], in[i]);
        ptrs[i] = in[i];
        lens[i] = UL;
    }
    bg_snap *s1 = make_list(ids, 4, 0, 1, 1), *s2 = make_list(ids, 4, 0, 1, 2);
    test_key(sk, 1);
    bg_psi_query *q = NULL;
    bg_err err = {0};
    ck_assert_int_eq(
        bg_psi_query_new(&q, BG_PSI_GRADED, (const uint8_t *const *)ptrs, lens, 4, NULL), BG_OK);
    ck_assert_int_eq(bg_psi_prepare(q, 0, 4, b, threads, NULL), BG_OK);
    ck_assert_int_eq(bg_psi_evaluate(e, sk, b, sizeof b, 4, threads, NULL), BG_OK);
    /* graded needs a graded list */
    ck_assert_int_eq(bg_psi_finish(q, s1, 0, 2, e, 2 * EB, threads, &err), BG_EINVAL);
    bg_psi_query_free(q);
    ck_assert_int_eq(
        bg_psi_query_new(&q, BG_PSI_MEMBERSHIP, (const uint8_t *const *)ptrs, lens, 4, NULL),
        BG_OK);
    ck_assert_int_eq(bg_psi_prepare(q, 0, 4, b, threads, NULL), BG_OK);
    ck_assert_int_eq(bg_psi_evaluate(e, sk, b, sizeof b, 4, threads, NULL), BG_OK);
    ck_assert_int_eq(bg_psi_finish(q, s1, 0, 2, e, 2 * EB, threads, &err), BG_OK);
    ck_assert_int_eq(bg_psi_finish(q, s2, 2, 2, e + 2 * EB, 2 * EB, threads, &err), BG_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "epoch 1"));
    ck_assert_int_eq(bg_psi_finish(q, s1, 2, 2, e + 2 * EB, 2 * EB, threads, &err), BG_OK);
    bg_psi_query_free(q);
    bg_snap_free(s1);
    bg_snap_free(s2);
}
END_TEST

/* ---- measurements ---- */

static double
now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double
raw_rate(void)
{
    uint8_t s[32], p[32], q[32];
    crypto_core_ristretto255_scalar_random(s);
    crypto_core_ristretto255_random(p);
    size_t n = small_sizes ? 50 : 2000;
    double t = now();
    for (size_t i = 0; i < n; i++)
        ck_assert_int_eq(crypto_scalarmult_ristretto255(q, s, p), 0);
    return (double)n / (now() - t);
}

struct raw_job {
    size_t n;
    pthread_t tid;
};

static void *
raw_loop(void *arg)
{
    struct raw_job *j = arg;
    uint8_t s[32], p[32], q[32];
    crypto_core_ristretto255_scalar_random(s);
    crypto_core_ristretto255_random(p);
    for (size_t i = 0; i < j->n; i++)
        if (crypto_scalarmult_ristretto255(q, s, p) != 0)
            abort();
    return NULL;
}

/* Bare scalar multiplications on t plain threads: what this machine really gives. */
static double
raw_rate_threads(unsigned t)
{
    struct raw_job j[BG_OPRF_THREADS_MAX];
    size_t n = small_sizes ? 50 : 2000;
    double t0 = now();
    for (unsigned i = 0; i < t; i++) {
        j[i].n = n;
        ck_assert_int_eq(pthread_create(&j[i].tid, NULL, raw_loop, &j[i]), 0);
    }
    for (unsigned i = 0; i < t; i++)
        pthread_join(j[i].tid, NULL);
    return (double)(n * t) / (now() - t0);
}

static void
measure(size_t nlist, size_t nasked)
{
    unsigned t = threads ? threads : bg_oprf_threads_default();
    double raw = raw_rate(), rawt = raw_rate_threads(t);
    printf("psi: raw crypto_scalarmult_ristretto255: %.0f/s on 1 thread, %.0f/s on %u plain "
           "threads (%.2f x)\n",
           raw, rawt, t, rawt / raw);
    uint64_t *ids = ids_range(1, nlist), *asked = malloc(sizeof *asked * nasked);
    for (size_t i = 0; i < nasked; i++)
        asked[i] = i % 2 ? 1 + (i * 7919) % nlist : nlist + 10 + i;
    for (int graded = 0; graded <= 1; graded++) {
        double t0 = now();
        bg_snap *s = make_list(ids, nlist, graded, 1, 1);
        double build = now() - t0;
        bg_snap_info info;
        bg_snap_get_info(s, &info);
        printf("psi: build %-10s 2^%-2d entries: %7.2f s, %8.0f entries/s, %5.3f of raw x %u "
               "threads (%.3f of plain threads); %zu bytes/entry, %.1f MiB on the wire\n",
               graded ? "graded" : "membership", __builtin_ctzl(nlist), build, nlist / build,
               nlist / build / (raw * t), t, nlist / build / rawt, info.entry_bytes,
               info.wire_bytes / 1048576.0);
        if (graded) {
            bg_snap_free(s);
            continue;
        }
        t0 = now();
        bg_snap *r = round_trip(s, 4U << 20, NULL);
        printf("psi: parse + verify 2^%d entries in 4 MiB chunks: %.3f s\n", __builtin_ctzl(nlist),
               now() - t0);
        bg_snap_free(r);

        /* membership end to end, in-process, 64 KiB chunks */
        uint8_t sk[32], (*in)[UL] = malloc(UL * nasked);
        const uint8_t **ptrs = malloc(sizeof *ptrs * nasked);
        size_t *lens = malloc(sizeof *lens * nasked), chunk = bg_psi_chunk_items(65536);
        for (size_t i = 0; i < nasked; i++) {
            uscc(asked[i], in[i]);
            ptrs[i] = in[i];
            lens[i] = UL;
        }
        test_key(sk, 1);
        uint8_t *b = malloc(EB * nasked), *e = malloc(EB * nasked);
        bg_psi_query *q = NULL;
        double tp = 0, te = 0, tf = 0;
        t0 = now();
        ck_assert_int_eq(bg_psi_query_new(&q, BG_PSI_MEMBERSHIP, ptrs, lens, nasked, NULL), BG_OK);
        size_t nd = bg_psi_query_items(q);
        tp += now() - t0;
        for (size_t f = 0; f < nd; f += chunk) {
            size_t c = nd - f < chunk ? nd - f : chunk;
            double a = now();
            ck_assert_int_eq(bg_psi_prepare(q, f, c, b + EB * f, threads, NULL), BG_OK);
            double bb = now();
            ck_assert_int_eq(bg_psi_evaluate(e + EB * f, sk, b + EB * f, EB * c, c, threads, NULL),
                             BG_OK);
            double cc = now();
            ck_assert_int_eq(bg_psi_finish(q, s, f, c, e + EB * f, EB * c, threads, NULL), BG_OK);
            tp += bb - a;
            te += cc - bb;
            tf += now() - cc;
        }
        size_t hits = 0;
        for (size_t i = 0; i < nasked; i++) {
            int m;
            ck_assert_int_eq(bg_psi_result(q, i, &m, NULL, NULL), BG_OK);
            ck_assert_int_eq(m, (int)(i % 2));
            hits += (size_t)m;
        }
        double total = tp + te + tf;
        printf("psi: membership 2^%d asked x 2^%d listed: prepare %.2f s, evaluate %.2f s, "
               "finish %.2f s, total %.2f s (%.0f items/s, %zu hits); 3 scalar mults per item: "
               "%.0f mults/s = %.3f of raw %.0f/s x %u threads, %.3f of plain threads\n",
               __builtin_ctzl(nasked), __builtin_ctzl(nlist), tp, te, tf, total, nasked / total,
               hits, 3.0 * nasked / total, 3.0 * nasked / total / (raw * t), raw, t,
               3.0 * nasked / total / rawt);
        bg_psi_query_free(q);
        free(in);
        free(ptrs);
        free(lens);
        free(b);
        free(e);
        bg_snap_free(s);
    }
    free(ids);
    free(asked);
}

START_TEST(measure_2_16)
{
    measure(SZ(1U << 16, 1U << 10), SZ(1U << 14, 1U << 8));
}
END_TEST

START_TEST(measure_2_20)
{
    measure(1U << 20, 1U << 16);
}
END_TEST

/* ---- suite ---- */

static Suite *
psi_suite(void)
{
    Suite *s = suite_create("psi");

    TCase *m = tcase_create("membership");
    tcase_add_test(m, membership_empty_intersection_matches_nothing);
    tcase_add_test(m, membership_full_intersection_matches_everything);
    tcase_add_test(m, membership_duplicates_are_asked_once_and_answered_per_input);
    tcase_add_test(m, membership_of_one_item);
    tcase_add_test(m, membership_across_chunk_boundaries);
    tcase_add_test(m, membership_10k_asked_against_50k_listed);
    tcase_set_timeout(m, 600);
    suite_add_tcase(s, m);

    TCase *g = tcase_create("graded");
    tcase_add_test(g, graded_payloads_open_for_matches_only);
    tcase_add_test(g, a_sealed_payload_opens_only_for_its_own_input);
    tcase_add_test(g, resealing_is_deterministic_and_a_changed_payload_gets_a_new_nonce);
    tcase_set_timeout(g, 300);
    suite_add_tcase(s, g);

    TCase *c = tcase_create("count");
    tcase_add_test(c, count_only_counts_the_distinct_matches);
    tcase_add_test(c, count_only_answers_come_back_shuffled);
    tcase_add_test(c, count_only_refuses_a_batch_below_the_minimum);
    tcase_add_test(c, count_only_answer_is_taken_in_order_once);
    tcase_set_timeout(c, 300);
    suite_add_tcase(s, c);

    TCase *sn = tcase_create("snapshot");
    tcase_add_test(sn, snapshot_sizes_and_false_positive_bound);
    tcase_add_test(sn, snapshot_round_trips_whole_and_in_chunks);
    tcase_add_test(sn, snapshot_is_canonical_whatever_the_input_order_and_threads);
    tcase_add_test(sn, duplicate_entries_are_kept_once_or_refused);
    tcase_add_test(sn, bad_entries_and_list_names_are_refused);
    tcase_set_timeout(sn, 300);
    suite_add_tcase(s, sn);

    TCase *h = tcase_create("hostile");
    tcase_add_test(h, evaluate_refuses_hostile_elements_and_over_quota);
    tcase_add_test(h, finish_refuses_a_hostile_answer_and_keeps_nothing);
    tcase_add_test(h, query_inputs_are_checked);
    tcase_add_test(h, reader_refuses_truncated_and_misordered_chunks);
    tcase_add_test(h, reader_refuses_unsorted_tags_and_digest_mismatch);
    tcase_add_test(h, reader_refuses_counts_larger_than_the_data);
    tcase_add_test(h, every_single_byte_change_to_a_snapshot_is_refused);
    tcase_set_timeout(h, 300);
    suite_add_tcase(s, h);

    TCase *e = tcase_create("epochs");
    tcase_add_test(e, a_removed_entry_stops_matching_at_the_next_epoch);
    tcase_add_test(e, delta_plus_old_is_new);
    tcase_add_test(e, a_delta_for_another_generation_or_list_is_refused);
    tcase_add_test(e, every_single_byte_change_to_a_delta_is_refused);
    tcase_add_test(e, stale_and_unknown_epochs_are_refused);
    tcase_add_test(e, a_query_is_matched_against_one_snapshot_only);
    tcase_set_timeout(e, 300);
    suite_add_tcase(s, e);

    TCase *b = tcase_create("measure");
    tcase_add_test(b, measure_2_16);
    if (getenv("BG_PSI_BENCH") != NULL && !small_sizes)
        tcase_add_test(b, measure_2_20);
    tcase_set_timeout(b, 1800);
    suite_add_tcase(s, b);
    return s;
}

int
main(void)
{
    const char *e = getenv("BG_PSI_SMALL");
    small_sizes = e != NULL && *e != '\0' && *e != '0';
    e = getenv("BG_PSI_THREADS");
    threads = e ? (unsigned)strtoul(e, NULL, 10) : 0;
    if (bg_oprf_init(NULL) != BG_OK)
        return EXIT_FAILURE;
    SRunner *sr = srunner_create(psi_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
