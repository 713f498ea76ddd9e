/*
 * test_gen.c - the synthetic data generator: determinism, validity, rates,
 * dates, sharing, defects, option checks and CSV quoting.
 *
 * Generated files are parsed back with a small quote-aware splitter written
 * here, independent of the store's CSV reader.
 */
#include <check.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/json.h"
#include "domain/uscc.h"
#include "gateway/gen/gen.h"
#include "gateway/record/record.h"

#define TMP BG_TEST_TMPDIR

enum {
    C_USCC,
    C_NAME,
    C_GRADE,
    C_EVAL,
    C_VALID,
    C_SD_REASON,
    C_SD_LISTED,
    C_SD_EXPIRES,
    C_AO_REASON,
    C_AO_LISTED,
    C_AO_EXPIRES,
    NCOLS
};

typedef struct cell {
    const char *p;
    size_t len;
} cell;

/* A generated file, its records split into cells (header excluded). */
typedef struct table {
    char *raw;
    size_t raw_len;
    char *arena;     /* unquoted cell contents */
    cell *cells;     /* nrows * NCOLS */
    size_t *rec_off; /* raw offset of each data record */
    size_t *rec_len; /* raw length without the line end */
    size_t nrows;
    bg_gen_stats stats;
} table;

#define CELL(t, r, c) (&(t)->cells[(r)*NCOLS + (c)])

static bool
cell_eq(const cell *c, const char *s)
{
    return c->len == strlen(s) && memcmp(c->p, s, c->len) == 0;
}

static bool
cells_same(const cell *a, const cell *b)
{
    return a->len == b->len && memcmp(a->p, b->p, a->len) == 0;
}

/*
 * Splits the record at buf[*pos]: quoted cells lose their quotes and doubled
 * quotes become one. Returns the number of cells, or -1 if malformed.
 */
static int
split_record(const char *buf, size_t len, size_t *pos, cell *cells, int maxc, char **arena)
{
    size_t i = *pos;
    int n = 0;
    for (;;) {
        if (n == maxc)
            return -1;
        char *start = *arena;
        if (i < len && buf[i] == '"') {
            i++;
            for (;;) {
                if (i >= len)
                    return -1;
                if (buf[i] == '"') {
                    if (i + 1 < len && buf[i + 1] == '"') {
                        *(*arena)++ = '"';
                        i += 2;
                        continue;
                    }
                    i++;
                    break;
                }
                *(*arena)++ = buf[i++];
            }
            if (i < len && buf[i] != ',' && buf[i] != '\n')
                return -1;
        } else {
            while (i < len && buf[i] != ',' && buf[i] != '\n') {
                if (buf[i] == '"')
                    return -1;
                *(*arena)++ = buf[i++];
            }
        }
        cells[n].p = start;
        cells[n].len = (size_t)(*arena - start);
        n++;
        if (i < len && buf[i] == ',') {
            i++;
            continue;
        }
        if (i < len)
            i++; /* the '\n' */
        *pos = i;
        return n;
    }
}

static void
table_parse(table *t)
{
    t->arena = malloc(t->raw_len + 1);
    size_t maxrows = 1;
    for (size_t i = 0; i < t->raw_len; i++)
        maxrows += t->raw[i] == '\n';
    t->cells = malloc(maxrows * NCOLS * sizeof *t->cells);
    t->rec_off = malloc(maxrows * sizeof *t->rec_off);
    t->rec_len = malloc(maxrows * sizeof *t->rec_len);
    ck_assert(t->arena && t->cells && t->rec_off && t->rec_len);

    char header[1024];
    size_t hlen = bg_record_header(header, sizeof header);
    ck_assert_msg(t->raw_len >= hlen && memcmp(t->raw, header, hlen) == 0,
                  "the file starts with the canonical header");
    char *arena = t->arena;
    size_t pos = hlen;
    t->nrows = 0;
    while (pos < t->raw_len) {
        size_t r = t->nrows;
        t->rec_off[r] = pos;
        int n = split_record(t->raw, t->raw_len, &pos, CELL(t, r, 0), NCOLS, &arena);
        ck_assert_msg(n == NCOLS, "record %zu has %d cells, expected %d", r + 1, n, NCOLS);
        t->rec_len[r] = pos - t->rec_off[r] - 1;
        ck_assert_msg(t->raw[pos - 1] == '\n', "record %zu ends with a line feed", r + 1);
        t->nrows++;
    }
}

static void
table_free(table *t)
{
    free(t->raw);
    free(t->arena);
    free(t->cells);
    free(t->rec_off);
    free(t->rec_len);
    memset(t, 0, sizeof *t);
}

static bg_gen_opts
opts_for(const char *city, uint64_t count, uint64_t seed)
{
    bg_gen_opts o = {.count = count, .seed = seed, .as_of = bg_gen_default_as_of()};
    snprintf(o.city, sizeof o.city, "%s", city);
    return o;
}

/* Generates into memory and parses; the call must succeed. */
static void
gen_mem(const bg_gen_opts *o, table *t)
{
    memset(t, 0, sizeof *t);
    FILE *f = open_memstream(&t->raw, &t->raw_len);
    ck_assert(f != NULL);
    bg_err err = {0};
    int rc = bg_gen_write(o, f, &t->stats, &err);
    ck_assert_msg(rc == BG_OK, "bg_gen_write: %s", err.msg);
    ck_assert_int_eq(fclose(f), 0);
    table_parse(t);
    ck_assert_msg(t->nrows == o->count, "%zu rows, asked for %llu", t->nrows,
                  (unsigned long long)o->count);
    ck_assert_uint_eq(t->stats.rows, o->count);
}

static void
gen_file(const bg_gen_opts *o, const char *path, bg_gen_stats *st)
{
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot create %s", path);
    bg_err err = {0};
    int rc = bg_gen_write(o, f, st, &err);
    ck_assert_msg(rc == BG_OK, "bg_gen_write: %s", err.msg);
    ck_assert_int_eq(fclose(f), 0);
}

static void
table_load(const char *path, table *t)
{
    memset(t, 0, sizeof *t);
    FILE *f = fopen(path, "rb");
    ck_assert(f != NULL);
    ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    ck_assert(n >= 0);
    rewind(f);
    t->raw = malloc((size_t)n + 1);
    t->raw_len = fread(t->raw, 1, (size_t)n, f);
    ck_assert_uint_eq(t->raw_len, (size_t)n);
    fclose(f);
    table_parse(t);
}

static void
write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    ck_assert(f != NULL);
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
}

/* Sorted 18-byte codes for membership tests. */
typedef struct codes {
    char (*v)[BG_USCC_LEN];
    size_t n;
} codes;

static int
code_cmp(const void *a, const void *b)
{
    return memcmp(a, b, BG_USCC_LEN);
}

/* Canonical codes of the rows of t that parse (and have a name if need_name). */
static codes
codes_of(const table *t, bool need_name)
{
    codes c = {malloc((t->nrows + 1) * BG_USCC_LEN), 0};
    for (size_t r = 0; r < t->nrows; r++) {
        bg_uscc u;
        const cell *uc = CELL(t, r, C_USCC);
        if (bg_uscc_parse(uc->p, uc->len, &u, NULL) != BG_OK)
            continue;
        if (need_name && CELL(t, r, C_NAME)->len == 0)
            continue;
        memcpy(c.v[c.n++], u.code, BG_USCC_LEN);
    }
    qsort(c.v, c.n, BG_USCC_LEN, code_cmp);
    return c;
}

static bool
codes_has(const codes *c, const char *code)
{
    return bsearch(code, c->v, c->n, BG_USCC_LEN, code_cmp) != NULL;
}

static size_t
codes_dups(const codes *c)
{
    size_t d = 0;
    for (size_t i = 1; i < c->n; i++)
        d += memcmp(c->v[i - 1], c->v[i], BG_USCC_LEN) == 0;
    return d;
}

static int32_t
date_of(const cell *c)
{
    int32_t d = 0;
    bg_err err = {0};
    ck_assert_msg(bg_date_parse(c->p, c->len, &d, &err) == BG_OK, "date '%.*s': %s", (int)c->len,
                  c->p, err.msg);
    return d;
}

static bool
in_range(double v, double lo, double hi)
{
    return v >= lo && v <= hi;
}

/* ------------------------------------------------------------------------- */

/* The default reference date is fixed, so output never depends on today. */
START_TEST(test_default_as_of)
{
    int32_t d;
    ck_assert_int_eq(bg_date_parse("2026-06-30", 10, &d, NULL), BG_OK);
    ck_assert_int_eq(bg_gen_default_as_of(), d);
}
END_TEST

/* Same options give the same bytes; another seed gives other bytes. */
START_TEST(test_determinism)
{
    bg_gen_opts o = opts_for("440300", 3000, 42);
    o.dirty_rate = 0.05;
    table a, b, c;
    gen_mem(&o, &a);
    gen_mem(&o, &b);
    ck_assert_uint_eq(a.raw_len, b.raw_len);
    ck_assert_msg(memcmp(a.raw, b.raw, a.raw_len) == 0, "same seed, same bytes");
    ck_assert_msg(memcmp(&a.stats, &b.stats, sizeof a.stats) == 0, "same seed, same stats");
    o.seed = 43;
    gen_mem(&o, &c);
    ck_assert_msg(a.raw_len != c.raw_len || memcmp(a.raw, c.raw, a.raw_len) != 0,
                  "another seed, other bytes");

    /* NULL stats are allowed and change nothing. */
    o.seed = 42;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ck_assert_int_eq(bg_gen_write(&o, f, NULL, NULL), BG_OK);
    fclose(f);
    ck_assert(len == a.raw_len && memcmp(buf, a.raw, len) == 0);
    free(buf);
    table_free(&a);
    table_free(&b);
    table_free(&c);
}
END_TEST

/* A clean Guangzhou file: every code valid, canonical, in a Guangzhou division. */
START_TEST(test_clean_codes_valid)
{
    static const char *const gz[] = {"440100", "440103", "440104", "440105", "440106", "440111",
                                     "440112", "440113", "440114", "440115", "440117", "440118"};
    bg_gen_opts o = opts_for("440100", 20000, 7);
    table t;
    gen_mem(&o, &t);
    size_t e91 = 0, e92 = 0, e93 = 0, e52 = 0, e12 = 0, y1 = 0, n2 = 0;
    size_t modern = 0, ndiv[sizeof gz / sizeof gz[0]] = {0};
    for (size_t r = 0; r < t.nrows; r++) {
        const cell *uc = CELL(&t, r, C_USCC);
        bg_uscc u;
        bg_err err = {0};
        ck_assert_msg(bg_uscc_parse(uc->p, uc->len, &u, &err) == BG_OK, "row %zu '%.*s': %s", r + 1,
                      (int)uc->len, uc->p, err.msg);
        ck_assert_msg(uc->len == BG_USCC_LEN && memcmp(uc->p, u.code, BG_USCC_LEN) == 0,
                      "row %zu is canonical", r + 1);
        ck_assert_str_eq(u.city, "440100");
        bool known = false;
        for (size_t k = 0; k < sizeof gz / sizeof gz[0]; k++) {
            if (strcmp(u.division, gz[k]) == 0) {
                known = true;
                ndiv[k]++;
            }
        }
        ck_assert_msg(known, "row %zu: division %s is a Guangzhou district", r + 1, u.division);
        char at[3] = {u.authority, u.entity_type, 0};
        e91 += strcmp(at, "91") == 0;
        e92 += strcmp(at, "92") == 0;
        e93 += strcmp(at, "93") == 0;
        e52 += strcmp(at, "52") == 0;
        e12 += strcmp(at, "12") == 0;
        y1 += strcmp(at, "Y1") == 0;
        n2 += strcmp(at, "N2") == 0;
        modern += memcmp(u.org_code, "MA", 2) == 0;

        const cell *nc = CELL(&t, r, C_NAME);
        ck_assert_msg(nc->len > 0, "row %zu has a name", r + 1);
        ck_assert(bg_utf8_valid_prefix((const unsigned char *)nc->p, nc->len) == nc->len);
        ck_assert_msg((unsigned char)nc->p[0] >= 0x80 || nc->p[0] == '"', "row %zu: a Chinese name",
                      r + 1);
    }
    double n = (double)t.nrows;
    ck_assert_msg(in_range(e91 / n, 0.75, 0.88), "mostly enterprises (91): %zu", e91);
    ck_assert_msg(in_range(e92 / n, 0.08, 0.17), "individual businesses (92): %zu", e92);
    ck_assert_msg(e93 > 0 && e52 > 0 && e12 > 0, "93, 52 and 12 appear");
    ck_assert_msg(y1 > 0 && n2 > 0, "letter-first authorities Y1 (%zu) and N2 (%zu) appear", y1,
                  n2);
    ck_assert_msg(in_range(modern / n, 0.57, 0.63), "about 60%% modern MA codes: %zu", modern);
    for (size_t k = 0; k < sizeof gz / sizeof gz[0]; k++)
        ck_assert_msg(ndiv[k] > 0, "division %s used", gz[k]);
    table_free(&t);
}
END_TEST

/* Every listed city generates valid codes of its own, and has a city name. */
START_TEST(test_all_cities)
{
    size_t n = 0;
    for (; bg_gen_cities[n] != NULL; n++) {
        const char *city = bg_gen_cities[n];
        ck_assert_msg(bg_uscc_city_name(city) != NULL, "%s is a known city", city);
        bg_gen_opts o = opts_for(city, 500, 3);
        table t;
        gen_mem(&o, &t);
        for (size_t r = 0; r < t.nrows; r++) {
            bg_uscc u;
            const cell *uc = CELL(&t, r, C_USCC);
            ck_assert(bg_uscc_parse(uc->p, uc->len, &u, NULL) == BG_OK);
            ck_assert_str_eq(u.city, city);
        }
        table_free(&t);
    }
    ck_assert_uint_ge(n, 6);
    static const char *const required[] = {"440100", "440300", "440400",
                                           "440600", "441900", "442000"};
    for (size_t k = 0; k < sizeof required / sizeof required[0]; k++) {
        bool found = false;
        for (size_t i = 0; i < n; i++)
            found = found || strcmp(bg_gen_cities[i], required[k]) == 0;
        ck_assert_msg(found, "%s is in bg_gen_cities", required[k]);
    }
}
END_TEST

/* No USCC appears twice in a file. */
START_TEST(test_unique)
{
    bg_gen_opts o = opts_for("440600", 60000, 11);
    table t;
    gen_mem(&o, &t);
    codes c = codes_of(&t, false);
    ck_assert_uint_eq(c.n, t.nrows);
    ck_assert_uint_eq(codes_dups(&c), 0);
    free(c.v);
    table_free(&t);
}
END_TEST

/* List and grade rates are near their targets, and stats match the file. */
START_TEST(test_rates)
{
    bg_gen_opts o = opts_for("440300", 20000, 5);
    table t;
    gen_mem(&o, &t);
    size_t listed[2] = {0}, both = 0, graded = 0, grades[4] = {0};
    for (size_t r = 0; r < t.nrows; r++) {
        bool sd = CELL(&t, r, C_SD_REASON)->len > 0, ao = CELL(&t, r, C_AO_REASON)->len > 0;
        listed[0] += sd;
        listed[1] += ao;
        both += sd && ao;
        const cell *g = CELL(&t, r, C_GRADE);
        if (g->len > 0) {
            ck_assert_msg(g->len == 1 && g->p[0] >= 'A' && g->p[0] <= 'D', "grade on ABCD");
            graded++;
            grades[g->p[0] - 'A']++;
        }
    }
    ck_assert_uint_eq(listed[0], t.stats.listed[BG_LIST_SERIOUS_DISHONESTY]);
    ck_assert_uint_eq(listed[1], t.stats.listed[BG_LIST_ABNORMAL_OPERATION]);
    ck_assert_uint_eq(graded, t.stats.graded);
    for (int g = 0; g < 4; g++)
        ck_assert_uint_eq(grades[g], t.stats.grades[g]);

    double n = (double)t.nrows;
    ck_assert_msg(in_range(listed[0] / n, 0.006, 0.014), "serious-dishonesty ~1%%: %zu", listed[0]);
    ck_assert_msg(in_range(listed[1] / n, 0.043, 0.057), "abnormal-operation ~5%%: %zu", listed[1]);
    ck_assert_msg(in_range(graded / n, 0.835, 0.865), "~85%% graded: %zu", graded);
    double gn = (double)graded;
    ck_assert_msg(in_range(grades[0] / gn, 0.28, 0.32), "A ~30%%: %zu", grades[0]);
    ck_assert_msg(in_range(grades[1] / gn, 0.475, 0.525), "B ~50%%: %zu", grades[1]);
    ck_assert_msg(in_range(grades[2] / gn, 0.135, 0.165), "C ~15%%: %zu", grades[2]);
    ck_assert_msg(in_range(grades[3] / gn, 0.04, 0.065), "D ~5%%: %zu", grades[3]);
    table_free(&t);
}
END_TEST

/* Every date parses and falls where it should relative to as_of. */
static void
check_dates(const char *as_of_text)
{
    bg_gen_opts o = opts_for("440100", 20000, 9);
    ck_assert_int_eq(bg_date_parse(as_of_text, strlen(as_of_text), &o.as_of, NULL), BG_OK);
    table t;
    gen_mem(&o, &t);
    size_t expiring[2] = {0};
    for (size_t r = 0; r < t.nrows; r++) {
        bool graded = CELL(&t, r, C_GRADE)->len > 0;
        ck_assert_msg(graded == (CELL(&t, r, C_EVAL)->len > 0) &&
                          graded == (CELL(&t, r, C_VALID)->len > 0),
                      "row %zu: grade fields all or none", r + 1);
        if (graded) {
            int32_t ev = date_of(CELL(&t, r, C_EVAL)), vu = date_of(CELL(&t, r, C_VALID));
            ck_assert_msg(ev < o.as_of && ev >= o.as_of - 365, "evaluated in the year before");
            ck_assert_int_eq(vu, ev + 365);
        }
        for (int l = 0; l < 2; l++) {
            int base = l == 0 ? C_SD_REASON : C_AO_REASON;
            const cell *reason = CELL(&t, r, base), *la = CELL(&t, r, base + 1),
                       *ex = CELL(&t, r, base + 2);
            ck_assert_msg((reason->len > 0) == (la->len > 0), "row %zu: reason iff listed_at",
                          r + 1);
            if (reason->len == 0) {
                ck_assert_uint_eq(ex->len, 0);
                continue;
            }
            int32_t at = date_of(la);
            ck_assert_msg(at < o.as_of && at >= o.as_of - 3 * 366, "listed within three years");
            if (ex->len == 0)
                continue;
            expiring[l]++;
            int32_t until = date_of(ex);
            ck_assert_msg(until > at, "row %zu: expires after listing", r + 1);
            if (l == 0) {
                /* Three calendar years: the same month and day (28 Feb for 29 Feb). */
                ck_assert_msg(until - at == 1095 || until - at == 1096, "three years");
                ck_assert(
                    memcmp(la->p + 5, ex->p + 5, 5) == 0 ||
                    (memcmp(la->p + 5, "02-29", 5) == 0 && memcmp(ex->p + 5, "02-28", 5) == 0));
            }
        }
    }
    double sd = (double)t.stats.listed[0], ao = (double)t.stats.listed[1];
    ck_assert_msg(expiring[0] / sd > 0.75 && expiring[0] < t.stats.listed[0],
                  "most dishonesty listings expire, some carry no date");
    ck_assert_msg(expiring[1] / ao < 0.25, "abnormal-operation mostly has no expiry");
    table_free(&t);
}

START_TEST(test_dates)
{
    check_dates("2026-06-30");
    check_dates("2020-02-29");
}
END_TEST

/* About share_rate of B's rows are A's enterprises, with A's names. */
START_TEST(test_share)
{
    const char *pa = TMP "/gen_share_a.csv";
    bg_gen_opts oa = opts_for("440100", 5000, 1);
    gen_file(&oa, pa, NULL);
    table a, b;
    table_load(pa, &a);
    codes ca = codes_of(&a, true);

    bg_gen_opts ob = opts_for("440300", 10000, 2);
    ob.share_path = pa;
    ob.share_rate = 0.2;
    gen_mem(&ob, &b);
    size_t in_a = 0;
    for (size_t r = 0; r < b.nrows; r++) {
        bg_uscc u;
        const cell *uc = CELL(&b, r, C_USCC);
        ck_assert(bg_uscc_parse(uc->p, uc->len, &u, NULL) == BG_OK);
        if (!codes_has(&ca, u.code)) {
            ck_assert_str_eq(u.city, "440300");
            continue;
        }
        in_a++;
        /* The shared row carries A's name for that code. */
        bool same_name = false;
        for (size_t k = 0; k < a.nrows && !same_name; k++)
            if (cells_same(CELL(&a, k, C_USCC), uc))
                same_name = cells_same(CELL(&a, k, C_NAME), CELL(&b, r, C_NAME));
        ck_assert_msg(same_name, "row %zu: shared enterprise keeps its name", r + 1);
    }
    ck_assert_uint_eq(in_a, b.stats.shared);
    ck_assert_msg(in_range((double)in_a / (double)b.nrows, 0.18, 0.22), "~20%% shared: %zu", in_a);
    codes cb = codes_of(&b, false);
    ck_assert_uint_eq(codes_dups(&cb), 0);

    /* Deterministic with a share file too. */
    table b2;
    gen_mem(&ob, &b2);
    ck_assert(b2.raw_len == b.raw_len && memcmp(b.raw, b2.raw, b.raw_len) == 0);
    free(ca.v);
    free(cb.v);
    table_free(&a);
    table_free(&b);
    table_free(&b2);
}
END_TEST

/* A small share file is used up entirely, and stats say how many were shared. */
START_TEST(test_share_exhausted)
{
    const char *pa = TMP "/gen_share_small.csv";
    bg_gen_opts oa = opts_for("440600", 100, 4);
    gen_file(&oa, pa, NULL);
    bg_gen_opts ob = opts_for("440100", 1000, 5);
    ob.share_path = pa;
    ob.share_rate = 0.5;
    table a, b;
    table_load(pa, &a);
    gen_mem(&ob, &b);
    ck_assert_uint_eq(b.stats.shared, 100);
    codes ca = codes_of(&a, true), cb = codes_of(&b, false);
    for (size_t i = 0; i < ca.n; i++)
        ck_assert_msg(codes_has(&cb, ca.v[i]), "every enterprise of A is used");
    ck_assert_uint_eq(codes_dups(&cb), 0);
    free(ca.v);
    free(cb.v);
    table_free(&a);
    table_free(&b);
}
END_TEST

/* A dirty share file: only its valid, named, distinct enterprises are shared. */
START_TEST(test_share_dirty_source)
{
    const char *pa = TMP "/gen_share_dirty.csv";
    bg_gen_opts oa = opts_for("440100", 3000, 6);
    oa.dirty_rate = 0.3;
    gen_file(&oa, pa, NULL);
    table a, b;
    table_load(pa, &a);
    codes ca = codes_of(&a, true);
    size_t usable = ca.n - codes_dups(&ca);

    bg_gen_opts ob = opts_for("440300", 5000, 7);
    ob.share_path = pa;
    ob.share_rate = 1.0;
    gen_mem(&ob, &b);
    ck_assert_uint_eq(b.stats.shared, usable);
    for (size_t r = 0; r < b.nrows; r++) {
        const cell *uc = CELL(&b, r, C_USCC);
        bg_uscc u;
        ck_assert_msg(bg_uscc_parse(uc->p, uc->len, &u, NULL) == BG_OK && uc->len == BG_USCC_LEN &&
                          memcmp(uc->p, u.code, BG_USCC_LEN) == 0,
                      "row %zu: a clean canonical code", r + 1);
        ck_assert_uint_gt(CELL(&b, r, C_NAME)->len, 0);
    }
    codes cb = codes_of(&b, false);
    ck_assert_uint_eq(cb.n, b.nrows);
    ck_assert_uint_eq(codes_dups(&cb), 0);
    free(ca.v);
    free(cb.v);
    table_free(&a);
    table_free(&b);
}
END_TEST

/* A share file that cannot be read fails cleanly, naming the file and line. */
static void
expect_share_error(const char *path, const char *content, int code, const char *want)
{
    if (content != NULL)
        write_text(path, content);
    bg_gen_opts o = opts_for("440300", 10, 1);
    o.share_path = path;
    o.share_rate = 0.5;
    bg_err err = {0};
    FILE *f = fopen("/dev/null", "wb");
    int rc = bg_gen_write(&o, f, NULL, &err);
    fclose(f);
    ck_assert_msg(rc == code, "%s: status %d, expected %d (%s)", path, rc, code, err.msg);
    ck_assert_msg(strstr(err.msg, path) != NULL, "message names the file: %s", err.msg);
    ck_assert_msg(strstr(err.msg, want) != NULL, "message '%s' contains '%s'", err.msg, want);
}

START_TEST(test_share_bad_files)
{
    expect_share_error(TMP "/gen_no_such_file.csv", NULL, BG_EIO, "cannot open");
    expect_share_error(TMP "/gen_bad_empty.csv", "", BG_EINVAL, "empty");
    expect_share_error(TMP "/gen_bad_nocol.csv", "code,name\n1,x\n", BG_EINVAL, "no 'uscc' column");
    expect_share_error(TMP "/gen_bad_unterminated.csv",
                       "uscc,name\n91440300MA5FXXXX0Q,a\n91440300MA5FXXXX0Q,\"open\n", BG_EINVAL,
                       "line 3: unterminated");
    expect_share_error(TMP "/gen_bad_stray.csv", "uscc,name\nab\"c,d\n", BG_EINVAL,
                       "line 2: quote inside");
    expect_share_error(TMP "/gen_bad_after.csv", "uscc,name\n\"a\"b,d\n", BG_EINVAL,
                       "line 2: unexpected character");
    expect_share_error(TMP "/gen_bad_short.csv", "uscc,name\n\n\nonly-one-cell\n", BG_EINVAL,
                       "line 4: 1 fields");
}
END_TEST

/* A hand-written share file: quoted cells, CRLF, a BOM and any column order. */
START_TEST(test_share_handwritten)
{
    const char *pa = TMP "/gen_share_hand.csv";
    bg_gen_opts seed = opts_for("440600", 3, 8);
    table s;
    gen_mem(&seed, &s);
    char text[2048];
    snprintf(text, sizeof text,
             "\xEF\xBB\xBFgrade,name,uscc\r\n"
             "A,\"佛山市\"\"老字号\"\",陶瓷有限公司\",%.18s\r\n"
             ",\"多行\n名称\",%.18s\r\n"
             "B,,%.18s\r\n"
             "C,坏代码,91440600XXXXXXXXXX\r\n",
             CELL(&s, 0, C_USCC)->p, CELL(&s, 1, C_USCC)->p, CELL(&s, 2, C_USCC)->p);
    write_text(pa, text);
    bg_gen_opts o = opts_for("440100", 10, 9);
    o.share_path = pa;
    o.share_rate = 1.0;
    table t;
    gen_mem(&o, &t);
    ck_assert_uint_eq(t.stats.shared, 2); /* the empty name and the bad code are skipped */
    size_t found = 0;
    for (size_t r = 0; r < t.nrows; r++) {
        if (cells_same(CELL(&t, r, C_USCC), CELL(&s, 0, C_USCC))) {
            ck_assert(cell_eq(CELL(&t, r, C_NAME), "佛山市\"老字号\",陶瓷有限公司"));
            found++;
        }
        if (cells_same(CELL(&t, r, C_USCC), CELL(&s, 1, C_USCC))) {
            ck_assert(cell_eq(CELL(&t, r, C_NAME), "多行\n名称"));
            found++;
        }
    }
    ck_assert_uint_eq(found, 2);
    table_free(&s);
    table_free(&t);
}
END_TEST

/*
 * Dirty rows: the file is its clean twin with one defect in some rows; the
 * kinds are about equally common and each behaves as the import expects.
 */
START_TEST(test_dirty)
{
    bg_gen_opts o = opts_for("440300", 20000, 21);
    table clean, dirty;
    gen_mem(&o, &clean);
    o.dirty_rate = 0.1;
    gen_mem(&o, &dirty);
    ck_assert_uint_eq(clean.nrows, dirty.nrows);
    ck_assert(memcmp(clean.stats.listed, dirty.stats.listed, sizeof clean.stats.listed) == 0);
    ck_assert_uint_eq(clean.stats.graded, dirty.stats.graded);

    /* Codes of the rows left clean, with their row number, for the duplicate check. */
    typedef struct {
        char code[BG_USCC_LEN];
        size_t row;
    } seen;
    seen *clean_rows = malloc(dirty.nrows * sizeof *clean_rows);
    size_t nclean = 0;
    size_t kinds[BG_DEFECT_COUNT] = {0}, changed = 0;
    for (size_t r = 0; r < dirty.nrows; r++) {
        const cell *cu = CELL(&clean, r, C_USCC), *du = CELL(&dirty, r, C_USCC);
        const cell *cn = CELL(&clean, r, C_NAME), *dn = CELL(&dirty, r, C_NAME);
        for (int c = C_GRADE; c < NCOLS; c++)
            ck_assert_msg(cells_same(CELL(&clean, r, c), CELL(&dirty, r, c)),
                          "row %zu: only uscc or name change", r + 1);
        if (cells_same(cu, du) && cells_same(cn, dn)) {
            memcpy(clean_rows[nclean].code, cu->p, BG_USCC_LEN);
            clean_rows[nclean++].row = r;
            continue;
        }
        changed++;
        if (dn->len == 0 || du->len == 0) {
            ck_assert_msg(du->len == 0 ? cells_same(cn, dn) : cells_same(cu, du),
                          "row %zu: missing empties one field only", r + 1);
            kinds[BG_DEFECT_MISSING]++;
            continue;
        }
        ck_assert_msg(cells_same(cn, dn), "row %zu: name kept", r + 1);
        char norm[BG_USCC_INPUT_MAX * 4 + 8];
        size_t nlen = 0;
        ck_assert_int_eq(bg_uscc_normalize(du->p, du->len, norm, sizeof norm, &nlen, NULL), BG_OK);
        bg_uscc u;
        bg_err err = {0};
        int prc = bg_uscc_parse(du->p, du->len, &u, &err);
        if (nlen == BG_USCC_LEN && memcmp(norm, cu->p, BG_USCC_LEN) == 0) {
            ck_assert_int_eq(prc, BG_OK);
            bool wide = false, lower = false;
            for (size_t i = 0; i < du->len; i++) {
                wide = wide || (unsigned char)du->p[i] >= 0x80;
                lower = lower || (du->p[i] >= 'a' && du->p[i] <= 'z');
            }
            if (wide) {
                kinds[BG_DEFECT_FULLWIDTH]++;
            } else {
                ck_assert_msg(lower || du->p[0] == ' ', "row %zu: lower case or a space", r + 1);
                kinds[BG_DEFECT_LOWERCASE]++;
            }
        } else if (nlen == BG_USCC_LEN && memcmp(norm, cu->p, 17) == 0) {
            ck_assert_msg(prc == BG_EINVAL && strstr(err.msg, "position 18") != NULL,
                          "row %zu: bad check character rejected: %s", r + 1, err.msg);
            kinds[BG_DEFECT_BAD_CHECK]++;
        } else {
            ck_assert_msg(prc == BG_OK && du->len == BG_USCC_LEN, "row %zu: duplicate is valid",
                          r + 1);
            bool earlier = false;
            for (size_t k = 0; k < nclean && !earlier; k++)
                earlier = memcmp(clean_rows[k].code, du->p, BG_USCC_LEN) == 0;
            ck_assert_msg(earlier, "row %zu: copies an earlier clean row's code", r + 1);
            kinds[BG_DEFECT_DUPLICATE]++;
        }
    }
    size_t total = 0;
    for (int k = 0; k < BG_DEFECT_COUNT; k++) {
        ck_assert_msg(kinds[k] == dirty.stats.defects[k], "kind %d: %zu found, %llu reported", k,
                      kinds[k], (unsigned long long)dirty.stats.defects[k]);
        ck_assert_msg(in_range((double)kinds[k], 300, 500), "kind %d about 400: %zu", k, kinds[k]);
        total += kinds[k];
    }
    ck_assert_uint_eq(total, changed);
    ck_assert_msg(in_range((double)total, 1800, 2200), "about 10%% dirty: %zu", total);
    free(clean_rows);
    table_free(&clean);
    table_free(&dirty);
}
END_TEST

static void
expect_opts_error(const bg_gen_opts *o, int code, const char *want)
{
    bg_err err = {0};
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    int rc = bg_gen_write(o, f, NULL, &err);
    fclose(f);
    ck_assert_msg(rc == code, "status %d, expected %d (%s)", rc, code, err.msg);
    ck_assert_msg(strstr(err.msg, want) != NULL, "message '%s' contains '%s'", err.msg, want);
    ck_assert_msg(len == 0, "nothing written for bad options");
    free(buf);
}

/* Bad options are refused with a message saying what is wrong. */
START_TEST(test_bad_options)
{
    bg_gen_opts o = opts_for("440999", 10, 1);
    expect_opts_error(&o, BG_EINVAL, "unknown city '440999'");
    expect_opts_error(&o, BG_EINVAL, "440300");
    o = opts_for("4403", 10, 1);
    expect_opts_error(&o, BG_EINVAL, "unknown city '4403'");

    o = opts_for("440300", 10, 1);
    o.dirty_rate = -0.1;
    expect_opts_error(&o, BG_EINVAL, "dirty rate");
    o.dirty_rate = 1.5;
    expect_opts_error(&o, BG_EINVAL, "dirty rate");
    o.dirty_rate = NAN;
    expect_opts_error(&o, BG_EINVAL, "dirty rate");
    o.dirty_rate = 0;
    o.share_rate = 2.0;
    o.share_path = TMP "/whatever.csv";
    expect_opts_error(&o, BG_EINVAL, "share rate");
    o.share_rate = 0.2;
    o.share_path = NULL;
    expect_opts_error(&o, BG_EINVAL, "share file");
    o.share_rate = 0;
    o.as_of = -100000;
    expect_opts_error(&o, BG_EINVAL, "as-of");
    o.as_of = bg_gen_default_as_of();
    o.count = UINT64_MAX;
    expect_opts_error(&o, BG_ELIMIT, "count");

    /* Rates of exactly 0 and 1 are fine. */
    o = opts_for("440300", 50, 1);
    o.dirty_rate = 1.0;
    table t;
    gen_mem(&o, &t);
    uint64_t d = 0;
    for (int k = 0; k < BG_DEFECT_COUNT; k++)
        d += t.stats.defects[k];
    ck_assert_uint_eq(d, 50);
    table_free(&t);
}
END_TEST

/* Write failures are BG_EIO, whether at once or only on the final flush. */
START_TEST(test_write_errors)
{
    bg_gen_opts o = opts_for("440300", 20000, 1);
    bg_err err = {0};
    const char *path = TMP "/gen_readonly.csv";
    write_text(path, "");
    FILE *f = fopen(path, "rb"); /* writing to a read-only stream fails */
    ck_assert(f != NULL);
    ck_assert_int_eq(bg_gen_write(&o, f, NULL, &err), BG_EIO);
    ck_assert_msg(strstr(err.msg, "write") != NULL, "%s", err.msg);
    fclose(f);

    if (access("/dev/full", W_OK) == 0) {
        o.count = 10; /* fits in stdio's buffer: the failure shows at fflush */
        f = fopen("/dev/full", "wb");
        ck_assert(f != NULL);
        ck_assert_int_eq(bg_gen_write(&o, f, NULL, &err), BG_EIO);
        fclose(f);
    }
}
END_TEST

/* Re-quotes a cell as RFC 4180 minimal quoting does. */
static size_t
requote(const cell *c, char *out)
{
    bool q = false;
    for (size_t i = 0; i < c->len; i++)
        q = q || c->p[i] == ',' || c->p[i] == '"' || c->p[i] == '\n' || c->p[i] == '\r';
    size_t n = 0;
    if (q)
        out[n++] = '"';
    for (size_t i = 0; i < c->len; i++) {
        if (c->p[i] == '"')
            out[n++] = '"';
        out[n++] = c->p[i];
    }
    if (q)
        out[n++] = '"';
    return n;
}

/* Names and reasons with commas and quotes are quoted, and parse back exactly. */
START_TEST(test_quoting)
{
    bg_gen_opts o = opts_for("440300", 30000, 13);
    table t;
    gen_mem(&o, &t);
    size_t name_comma = 0, name_quote = 0, reason_comma = 0, reason_quote = 0;
    char *line = malloc(64 * 1024);
    for (size_t r = 0; r < t.nrows; r++) {
        size_t n = 0;
        for (int c = 0; c < NCOLS; c++) {
            const cell *cc = CELL(&t, r, c);
            if (c > 0)
                line[n++] = ',';
            n += requote(cc, line + n);
            bool comma = memchr(cc->p, ',', cc->len) != NULL;
            bool quote = memchr(cc->p, '"', cc->len) != NULL;
            if (c == C_NAME) {
                name_comma += comma;
                name_quote += quote;
            } else if (c == C_SD_REASON || c == C_AO_REASON) {
                reason_comma += comma;
                reason_quote += quote;
            }
        }
        ck_assert_msg(n == t.rec_len[r] && memcmp(line, t.raw + t.rec_off[r], n) == 0,
                      "row %zu round-trips", r + 1);
    }
    ck_assert_msg(name_comma > 0 && name_quote > 0, "names with commas (%zu) and quotes (%zu)",
                  name_comma, name_quote);
    ck_assert_msg(reason_comma > 0 && reason_quote > 0,
                  "reasons with commas (%zu) and quotes (%zu)", reason_comma, reason_quote);
    free(line);
    table_free(&t);
}
END_TEST

static int
str_ptr_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Names look like Chinese registrations: enterprises end in a company form. */
START_TEST(test_names)
{
    bg_gen_opts o = opts_for("440600", 20000, 17);
    table t;
    gen_mem(&o, &t);
    size_t ent = 0, ent_ok = 0, ind = 0, ind_ok = 0, with_city = 0;
    for (size_t r = 0; r < t.nrows; r++) {
        const cell *uc = CELL(&t, r, C_USCC), *nc = CELL(&t, r, C_NAME);
        char name[1024];
        ck_assert(nc->len < sizeof name);
        memcpy(name, nc->p, nc->len);
        name[nc->len] = '\0';
        with_city += strstr(name, "佛山") != NULL || strstr(name, "广东") != NULL;
        if (memcmp(uc->p, "91", 2) == 0) {
            ent++;
            ent_ok += strstr(name, "公司") != NULL || strstr(name, "合伙企业") != NULL;
        } else if (memcmp(uc->p, "92", 2) == 0) {
            ind++;
            ind_ok += strstr(name, "公司") == NULL;
        }
    }
    ck_assert_uint_eq(ent_ok, ent);
    ck_assert_uint_eq(ind_ok, ind);
    ck_assert_msg(with_city > t.nrows / 2, "most names carry the place: %zu", with_city);

    /* Plenty of variety: few names repeat. */
    char **list = malloc(t.nrows * sizeof *list);
    for (size_t r = 0; r < t.nrows; r++) {
        const cell *nc = CELL(&t, r, C_NAME);
        list[r] = strndup(nc->p, nc->len);
    }
    qsort(list, t.nrows, sizeof *list, str_ptr_cmp);
    size_t repeats = 0;
    for (size_t r = 1; r < t.nrows; r++)
        repeats += strcmp(list[r - 1], list[r]) == 0;
    ck_assert_msg(repeats < t.nrows / 20, "%zu repeated names", repeats);
    for (size_t r = 0; r < t.nrows; r++)
        free(list[r]);
    free(list);
    table_free(&t);
}
END_TEST

/* Zero rows: the header alone. */
START_TEST(test_zero_rows)
{
    bg_gen_opts o = opts_for("441900", 0, 1);
    table t;
    gen_mem(&o, &t);
    ck_assert_uint_eq(t.nrows, 0);
    char header[1024];
    ck_assert_uint_eq(t.raw_len, bg_record_header(header, sizeof header));
    table_free(&t);
}
END_TEST

static Suite *
gen_suite(void)
{
    Suite *s = suite_create("gen");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_default_as_of);
    tcase_add_test(tc, test_determinism);
    tcase_add_test(tc, test_clean_codes_valid);
    tcase_add_test(tc, test_all_cities);
    tcase_add_test(tc, test_unique);
    tcase_add_test(tc, test_rates);
    tcase_add_test(tc, test_dates);
    tcase_add_test(tc, test_share);
    tcase_add_test(tc, test_share_exhausted);
    tcase_add_test(tc, test_share_dirty_source);
    tcase_add_test(tc, test_share_bad_files);
    tcase_add_test(tc, test_share_handwritten);
    tcase_add_test(tc, test_dirty);
    tcase_add_test(tc, test_bad_options);
    tcase_add_test(tc, test_write_errors);
    tcase_add_test(tc, test_quoting);
    tcase_add_test(tc, test_names);
    tcase_add_test(tc, test_zero_rows);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(gen_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failures = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failures != 0;
}
