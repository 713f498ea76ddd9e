/*
 * gen.c - synthetic city credit data (see gen.h).
 *
 * Three independent PRNG streams keep the output stable where it matters: the
 * content stream draws every row's enterprise, lists and grade; the defect
 * stream decides and shapes defects; the share stream picks shared rows. So a
 * dirty file is its clean twin (same seed) with defects applied to some rows,
 * which makes defects easy to check and imports easy to compare.
 *
 * Rows are formatted into one large buffer and written in big blocks; nothing
 * is allocated per row. USCC uniqueness is kept with an open-addressing hash
 * set of packed codes, which also holds the shared enterprises so a fresh code
 * never collides with one taken from the share file.
 */
#include "gateway/gen/gen.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "domain/uscc.h"
#include "gateway/gen/gen_int.h"
#include "gateway/record/csv.h"
#include "gateway/record/record.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---------------------------------------------------------------------------
 * Random numbers: xoshiro256** seeded through splitmix64. Never rand(), never
 * the clock, so the same options give the same bytes on every platform.
 */

typedef struct gen_rng {
    uint64_t s[4];
} gen_rng;

static uint64_t
splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* Each stream mixes the seed with its own constant, so streams never overlap. */
static void
rng_seed(gen_rng *r, uint64_t seed, uint64_t stream)
{
    uint64_t x = seed ^ (0x5851F42D4C957F2DULL * (stream + 1));
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
}

static uint64_t
rotl64(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t
rng_next(gen_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl64(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl64(s[3], 45);
    return result;
}

/* Uniform in [0, n), n > 0, without modulo bias (Lemire's method). */
static uint32_t
rng_below(gen_rng *r, uint32_t n)
{
    uint64_t m = (rng_next(r) >> 32) * (uint64_t)n;
    uint32_t low = (uint32_t)m;
    if (low < n) {
        uint32_t threshold = (uint32_t)(-n) % n;
        while (low < threshold) {
            m = (rng_next(r) >> 32) * (uint64_t)n;
            low = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}

/* Uniform in [0, n) for 64-bit n > 0 (rejection, then modulo). */
static uint64_t
rng_below64(gen_rng *r, uint64_t n)
{
    uint64_t threshold = (0 - n) % n;
    uint64_t x;
    do
        x = rng_next(r);
    while (x < threshold);
    return x % n;
}

/* Uniform in [0, 1) with 53 random bits. */
static double
rng_unit(gen_rng *r)
{
    return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

static bool
rng_chance(gen_rng *r, double p)
{
    return rng_unit(r) < p;
}

/* A discrete distribution over at most GEN_DIST_MAX (gen_int.h) outcomes. */

typedef struct gen_dist {
    uint32_t n;
    uint32_t total;
    uint32_t cum[GEN_DIST_MAX];
} gen_dist;

static void
dist_add(gen_dist *d, uint32_t weight)
{
    d->total += weight;
    d->cum[d->n++] = d->total;
}

static size_t
dist_pick(gen_rng *r, const gen_dist *d)
{
    uint32_t x = rng_below(r, d->total);
    size_t i = 0;
    while (d->cum[i] <= x)
        i++;
    return i;
}

/* Chance a row is on each list (independent draws). */
static const double gen_list_rate[BG_LIST_COUNT] = {
    [BG_LIST_SERIOUS_DISHONESTY] = 0.01,
    [BG_LIST_ABNORMAL_OPERATION] = 0.05,
};

/* Chance a listed row has an expiry date. */
static const double gen_list_expiry_rate[BG_LIST_COUNT] = {
    [BG_LIST_SERIOUS_DISHONESTY] = 0.9,
    [BG_LIST_ABNORMAL_OPERATION] = 0.1,
};

#define GEN_GRADED_RATE 0.85
static const unsigned gen_grade_weights[4] = {30, 50, 15, 5}; /* A B C D */
/* Grade D for an enterprise on the serious-dishonesty list, most of the time. */
#define GEN_DISHONEST_D_RATE 0.6

/* Share of organisation codes in the modern "MA" form. */
#define GEN_MODERN_ORG_RATE 0.6

/* Dates: listings within three years before as_of, evaluations within one. */
#define GEN_LIST_WINDOW 1095
#define GEN_EVAL_WINDOW 365
#define GEN_VALID_DAYS 365
/* Every date written falls within this many days of as_of. */
#define GEN_DATE_SPAN 1100

/* Duplicates copy one of a sample of earlier clean rows (reservoir sampling). */
#define GEN_RESERVOIR 4096

/* Output buffer and the most one row can take (names and reasons are bounded). */
#define GEN_OUTBUF (1u << 20)
#define GEN_ROW_MAX 8192
#define GEN_NAME_BUF 640

/* The share file: bounds that keep a hostile file from costing unbounded memory. */
#define SHARE_CELL_MAX 1024
#define SHARE_RECORD_MAX (64 * 1024)

/* ---------------------------------------------------------------------------
 * A set of canonical 18-character codes, packed 6 bits a character into two
 * words (the top bit of hi marks a used slot). Linear probing, load <= 1/2.
 */

typedef struct gen_key {
    uint64_t lo, hi;
} gen_key;

typedef struct gen_set {
    gen_key *slots;
    size_t cap; /* power of two */
    size_t n;
} gen_set;

static gen_key
key_of(const char *code)
{
    gen_key k = {0, 1ULL << 63};
    for (int i = 0; i < 10; i++)
        k.lo = (k.lo << 6) | (uint64_t)((unsigned char)code[i] - '0');
    for (int i = 10; i < 18; i++)
        k.hi = (k.hi << 6) | (uint64_t)((unsigned char)code[i] - '0');
    k.hi |= 1ULL << 63;
    return k;
}

static size_t
key_hash(gen_key k)
{
    uint64_t h = k.lo * 0x9E3779B97F4A7C15ULL ^ k.hi * 0xC2B2AE3D27D4EB4FULL;
    h ^= h >> 33;
    h *= 0xFF51AFD7ED558CCDULL;
    h ^= h >> 33;
    return (size_t)h;
}

static int
set_init(gen_set *s, size_t expect)
{
    size_t cap = 1024;
    while (cap < expect * 2 && cap < ((size_t)1 << 40))
        cap <<= 1;
    s->slots = calloc(cap, sizeof *s->slots);
    if (s->slots == NULL)
        return BG_ENOMEM;
    s->cap = cap;
    s->n = 0;
    return BG_OK;
}

static void
set_put_slot(gen_key *slots, size_t cap, gen_key k)
{
    size_t i = key_hash(k) & (cap - 1);
    while (slots[i].hi != 0)
        i = (i + 1) & (cap - 1);
    slots[i] = k;
}

/* 1 if inserted, 0 if already present, -1 if out of memory. */
static int
set_insert(gen_set *s, const char *code)
{
    if ((s->n + 1) * 2 > s->cap) {
        size_t ncap = s->cap * 2;
        gen_key *ns = calloc(ncap, sizeof *ns);
        if (ns == NULL)
            return -1;
        for (size_t i = 0; i < s->cap; i++)
            if (s->slots[i].hi != 0)
                set_put_slot(ns, ncap, s->slots[i]);
        free(s->slots);
        s->slots = ns;
        s->cap = ncap;
    }
    gen_key k = key_of(code);
    size_t i = key_hash(k) & (s->cap - 1);
    while (s->slots[i].hi != 0) {
        if (s->slots[i].hi == k.hi && s->slots[i].lo == k.lo)
            return 0;
        i = (i + 1) & (s->cap - 1);
    }
    s->slots[i] = k;
    s->n++;
    return 1;
}

/* ---------------------------------------------------------------------------
 * A bounded string builder for names: it truncates rather than overflows,
 * though every name built here is far below the bound.
 */

typedef struct gen_sb {
    char buf[GEN_NAME_BUF];
    size_t len;
} gen_sb;

static void
sb_putn(gen_sb *sb, const char *s, size_t n)
{
    if (n > sizeof sb->buf - 1 - sb->len)
        n = sizeof sb->buf - 1 - sb->len;
    memcpy(sb->buf + sb->len, s, n);
    sb->len += n;
}

static void
sb_put(gen_sb *sb, const char *s)
{
    sb_putn(sb, s, strlen(s));
}

/* Appends a pinyin syllable with its first letter in upper case. */
static void
sb_put_cap(gen_sb *sb, const char *s)
{
    size_t at = sb->len;
    sb_put(sb, s);
    if (sb->len > at && sb->buf[at] >= 'a' && sb->buf[at] <= 'z')
        sb->buf[at] = (char)(sb->buf[at] - 'a' + 'A');
}

/* ---------------------------------------------------------------------------
 * The share pool: distinct valid enterprises of another city's file.
 */

typedef struct gen_pool_item {
    size_t name_off;
    uint32_t name_len;
    char code[BG_USCC_LEN];
} gen_pool_item;

typedef struct gen_pool {
    gen_pool_item *items;
    size_t n, cap;
    char *names;
    size_t names_len, names_cap;
} gen_pool;

static void
pool_free(gen_pool *p)
{
    free(p->items);
    free(p->names);
    memset(p, 0, sizeof *p);
}

static int
pool_add(gen_pool *p, const char *code, const char *name, size_t name_len)
{
    if (p->n == p->cap) {
        size_t ncap = p->cap ? p->cap * 2 : 1024;
        gen_pool_item *ni = realloc(p->items, ncap * sizeof *ni);
        if (ni == NULL)
            return BG_ENOMEM;
        p->items = ni;
        p->cap = ncap;
    }
    if (p->names_cap - p->names_len < name_len) {
        size_t ncap = p->names_cap ? p->names_cap : 64 * 1024;
        while (ncap - p->names_len < name_len)
            ncap *= 2;
        char *nn = realloc(p->names, ncap);
        if (nn == NULL)
            return BG_ENOMEM;
        p->names = nn;
        p->names_cap = ncap;
    }
    gen_pool_item *it = &p->items[p->n++];
    memcpy(it->code, code, BG_USCC_LEN);
    it->name_off = p->names_len;
    it->name_len = (uint32_t)name_len;
    memcpy(p->names + p->names_len, name, name_len);
    p->names_len += name_len;
    return BG_OK;
}

/* The share file's own words for a record bg_csv refused. */
static int
share_fault(const char *path, bg_csv *csv, const bg_err *cerr, bg_err *err)
{
    const char *what = NULL;
    switch (bg_csv_last_fault(csv)) {
    case BG_CSV_FAULT_STRAY_QUOTE:
        what = "quote inside an unquoted field";
        break;
    case BG_CSV_FAULT_AFTER_QUOTE:
        what = "unexpected character after a closing quote";
        break;
    case BG_CSV_FAULT_UNTERMINATED:
        what = "unterminated quoted field";
        break;
    default:
        break;
    }
    if (what == NULL) /* too long, too many fields: the reader's message says it */
        return bg_err_set(err, BG_EINVAL, "share file '%.300s' %s", path, cerr->msg);
    return bg_err_set(err, BG_EINVAL, "share file '%.300s' line %llu: %s", path,
                      (unsigned long long)bg_csv_line(csv), what);
}

/*
 * The next record of the share file. Invalid UTF-8 does not fail it: its fields
 * are whole, and a row is only used if its code parses and its name is UTF-8.
 */
static int
share_next(const char *path, bg_csv *csv, bg_csv_field **f, size_t *nf, bg_err *err)
{
    bg_err cerr = {0};
    int rc = bg_csv_next(csv, f, nf, &cerr);
    if (rc == BG_OK || rc == BG_ENOTFOUND)
        return rc;
    if (rc == BG_EIO)
        return bg_err_set(err, BG_EIO, "share file '%.300s': read failed: %s", path,
                          strerror(errno));
    if (bg_csv_last_fault(csv) == BG_CSV_FAULT_UTF8)
        return BG_OK;
    return share_fault(path, csv, &cerr, err);
}

static bool
field_is(const bg_csv_field *f, const char *s)
{
    return f->len == strlen(s) && memcmp(f->p, s, f->len) == 0;
}

/* The header's uscc and name columns (the first of each). */
static int
share_header(const char *path, bg_csv *csv, size_t *col_uscc, size_t *col_name, bg_err *err)
{
    bg_csv_field *f;
    size_t nf;
    int rc = share_next(path, csv, &f, &nf, err);
    if (rc == BG_ENOTFOUND)
        return bg_err_set(err, BG_EINVAL, "share file '%.300s' is empty (no header)", path);
    if (rc != BG_OK)
        return rc;
    *col_uscc = *col_name = SIZE_MAX;
    for (size_t i = 0; i < nf; i++) {
        if (*col_uscc == SIZE_MAX && field_is(&f[i], "uscc"))
            *col_uscc = i;
        else if (*col_name == SIZE_MAX && field_is(&f[i], "name"))
            *col_name = i;
    }
    if (*col_uscc == SIZE_MAX || *col_name == SIZE_MAX)
        return bg_err_set(err, BG_EINVAL, "share file '%.300s' line %llu: no '%s' column", path,
                          (unsigned long long)bg_csv_line(csv),
                          *col_uscc == SIZE_MAX ? "uscc" : "name");
    return BG_OK;
}

/* Adds the row's enterprise unless its code or name is unusable or already taken. */
static int
share_row(const bg_csv_field *u_cell, const bg_csv_field *n_cell, gen_set *set, gen_pool *pool)
{
    bg_uscc u;
    if (u_cell->len > SHARE_CELL_MAX || bg_uscc_parse(u_cell->p, u_cell->len, &u, NULL) != BG_OK)
        return BG_OK;
    if (n_cell->len == 0 || n_cell->len > BG_NAME_MAX ||
        bg_utf8_valid_prefix((const unsigned char *)n_cell->p, n_cell->len) != n_cell->len)
        return BG_OK;
    int ins = set_insert(set, u.code);
    if (ins < 0)
        return BG_ENOMEM;
    if (ins == 0)
        return BG_OK;
    return pool_add(pool, u.code, n_cell->p, n_cell->len);
}

/*
 * Loads the distinct valid enterprises of path into pool, adding their codes
 * to set. Rows whose USCC does not parse, whose name is empty, too long or not
 * UTF-8, and repeats of a code, are skipped: a dirty file still shares its
 * good rows. A file that is not CSV at all fails, naming the line.
 */
static int
share_load(const char *path, gen_set *set, gen_pool *pool, bg_err *err)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return bg_err_set(err, BG_EIO, "cannot open share file '%.300s': %s", path,
                          strerror(errno));
    bg_csv *csv = NULL;
    int rc = bg_csv_open(&csv, f, SHARE_RECORD_MAX, err);
    size_t col_uscc = 0, col_name = 0;
    if (rc == BG_OK)
        rc = share_header(path, csv, &col_uscc, &col_name, err);
    size_t need = (col_uscc > col_name ? col_uscc : col_name) + 1;
    while (rc == BG_OK) {
        bg_csv_field *cells;
        size_t nf;
        rc = share_next(path, csv, &cells, &nf, err);
        if (rc == BG_ENOTFOUND) {
            rc = BG_OK;
            break;
        }
        if (rc != BG_OK)
            break;
        if (nf < need) {
            rc = bg_err_set(err, BG_EINVAL,
                            "share file '%.300s' line %llu: %zu fields, expected %zu", path,
                            (unsigned long long)bg_csv_line(csv), nf, need);
            break;
        }
        if (share_row(&cells[col_uscc], &cells[col_name], set, pool) != BG_OK)
            rc = bg_err_set(err, BG_ENOMEM, "out of memory reading share file '%.300s'", path);
    }
    bg_csv_close(csv);
    fclose(f);
    return rc;
}

/* ---------------------------------------------------------------------------
 * The generator.
 */

#define GEN_NO_DATE INT32_MIN

typedef struct gen {
    const bg_gen_opts *opts;
    const gen_city *city;
    gen_rng rng;  /* content */
    gen_rng drng; /* defects */
    gen_rng srng; /* shared rows */
    gen_dist kinds, districts, industries, forms, shops, grades;
    gen_dist reasons[BG_LIST_COUNT];
    gen_set set;
    gen_pool pool;
    char (*reservoir)[BG_USCC_LEN];
    uint64_t clean_rows;
    int32_t date_base;
    char dates[2 * GEN_DATE_SPAN + 1][10];
    FILE *f;
    char *out;
    size_t out_len;
} gen;

typedef struct gen_row {
    char code[BG_USCC_LEN];
    const char *name;
    size_t name_len;
    int grade; /* 0..3, or -1 */
    int32_t evaluated_at;
    bool listed[BG_LIST_COUNT];
    size_t reason[BG_LIST_COUNT];
    int32_t listed_at[BG_LIST_COUNT];
    int32_t expires_at[BG_LIST_COUNT];
    gen_sb sb;
} gen_row;

/* The 10 characters of a date; dates near as_of come from a table. */
static const char *
gen_date(gen *g, int32_t day, char spare[11])
{
    int64_t i = (int64_t)day - g->date_base;
    if (i >= 0 && i < (int64_t)ARRAY_LEN(g->dates))
        return g->dates[i];
    bg_date_format(day, spare);
    return spare;
}

static bool
is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* The same calendar day years later (29 February becomes the 28th). */
static int32_t
add_years(int32_t day, int years)
{
    char s[11];
    bg_date_format(day, s);
    int y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0') + years;
    s[0] = (char)('0' + y / 1000 % 10);
    s[1] = (char)('0' + y / 100 % 10);
    s[2] = (char)('0' + y / 10 % 10);
    s[3] = (char)('0' + y % 10);
    if (memcmp(s + 5, "02-29", 5) == 0 && !is_leap(y))
        s[9] = '8';
    int32_t out;
    if (bg_date_parse(s, 10, &out, NULL) != BG_OK)
        out = day + 365 * years;
    return out;
}

/* A valid code: authority, type, division, organisation code and both checks. */
static void
make_code(gen *g, char authority, char type, const char *division, char *code)
{
    code[0] = authority;
    code[1] = type;
    memcpy(code + 2, division, 6);
    if (rng_chance(&g->rng, GEN_MODERN_ORG_RATE)) {
        /* Codes assigned since 2015: "MA" and six characters of the USCC alphabet. */
        code[8] = 'M';
        code[9] = 'A';
        for (int i = 10; i < 16; i++)
            code[i] = bg_uscc_alphabet[rng_below(&g->rng, 31)];
    } else {
        /* An older GB 11714 organisation code carried over: eight digits. */
        static const char lead[] = "0134566777";
        code[8] = lead[rng_below(&g->rng, (uint32_t)(sizeof lead - 1))];
        for (int i = 9; i < 16; i++)
            code[i] = (char)('0' + rng_below(&g->rng, 10));
    }
    code[16] = bg_uscc_org_check_char(code + 8);
    code[17] = bg_uscc_check_char(code);
}

static const char *
pick_str(gen_rng *r, const char *const *items, size_t n)
{
    return items[rng_below(r, (uint32_t)n)];
}

static const char *
pick_surname(gen *g)
{
    return pick_str(&g->rng, gen_surnames, gen_surnames_n);
}

/* A trade name (字号) of two or three different characters, and its pinyin. */
static void
put_trade(gen *g, gen_sb *zh, gen_sb *py, size_t nchars)
{
    size_t prev = SIZE_MAX;
    for (size_t i = 0; i < nchars; i++) {
        size_t k;
        do
            k = rng_below(&g->rng, (uint32_t)gen_trade_chars_n);
        while (k == prev);
        prev = k;
        sb_put(zh, gen_trade_chars[k].zh);
        if (py != NULL) {
            if (i == 0)
                sb_put_cap(py, gen_trade_chars[k].py);
            else
                sb_put(py, gen_trade_chars[k].py);
        }
    }
}

static size_t
trade_len(gen *g)
{
    return rng_chance(&g->rng, 0.12) ? 3 : 2;
}

/* "深圳市华创科技有限公司", "华创科技（深圳）有限公司", branches, English aliases. */
static void
name_enterprise(gen *g, const gen_district *d, gen_sb *s)
{
    const gen_city *c = g->city;
    gen_sb tr, py;
    tr.len = py.len = 0;
    put_trade(g, &tr, &py, trade_len(g));
    size_t form = dist_pick(&g->rng, &g->forms);
    const char *ind_zh, *ind_en;
    if (form == FORM_PARTNERSHIP) {
        ind_zh = pick_str(&g->rng, gen_partnership_trades, gen_partnership_trades_n);
        ind_en = "Investment";
    } else {
        size_t i = dist_pick(&g->rng, &g->industries);
        ind_zh = gen_industries[i].zh;
        ind_en = gen_industries[i].en;
    }
    uint32_t style = rng_below(&g->rng, 100);
    bool branch = style >= 92 && d->name[0] != '\0' && form != FORM_PARTNERSHIP;
    bool english = !branch && rng_chance(&g->rng, 0.02);
    const gen_word *f = &gen_forms[form];

    if (style >= 70 && style < 86) {
        sb_putn(s, tr.buf, tr.len);
        sb_put(s, ind_zh);
        sb_put(s, "（");
        sb_put(s, c->short_name);
        sb_put(s, "）");
        sb_put(s, f->zh);
        if (english) {
            sb_put(s, "（");
            sb_putn(s, py.buf, py.len);
            sb_put(s, " ");
            sb_put(s, ind_en);
            sb_put(s, " (");
            sb_put(s, c->pinyin);
            sb_put(s, ") ");
            sb_put(s, f->en);
            sb_put(s, "）");
        }
        return;
    }
    bool province = style >= 86 && style < 92;
    sb_put(s, province ? "广东" : c->name);
    sb_putn(s, tr.buf, tr.len);
    sb_put(s, ind_zh);
    if (branch) {
        sb_put(s, "有限公司");
        sb_put(s, d->short_name);
        sb_put(s, "分公司");
        return;
    }
    sb_put(s, f->zh);
    if (english) {
        sb_put(s, "（");
        sb_put(s, province ? "Guangdong" : c->pinyin);
        sb_put(s, " ");
        sb_putn(s, py.buf, py.len);
        sb_put(s, " ");
        sb_put(s, ind_en);
        sb_put(s, " ");
        sb_put(s, f->en);
        sb_put(s, "）");
    }
}

/* The place an unincorporated body is registered in: "深圳市福田区", "福田区". */
static void
put_place(gen *g, const gen_district *d, gen_sb *s, double city_rate)
{
    if (d->name[0] == '\0' || rng_chance(&g->rng, city_rate))
        sb_put(s, g->city->name);
    sb_put(s, d->name);
}

/* Individual businesses: "深圳市福田区华创商行", "越秀区陈记粉面店". */
static void
name_individual(gen *g, const gen_district *d, gen_sb *s)
{
    put_place(g, d, s, 0.6);
    gen_sb tr;
    tr.len = 0;
    uint32_t u = rng_below(&g->rng, 100);
    if (u < 70) {
        put_trade(g, &tr, NULL, 2);
    } else if (u < 90) {
        sb_put(&tr, pick_surname(g));
        sb_put(&tr, "记");
    } else {
        sb_put(&tr, "老");
        sb_put(&tr, pick_surname(g));
    }
    /* Some shops register the trade name in quotation marks: the CSV must quote it. */
    bool quoted = rng_chance(&g->rng, 0.01);
    if (quoted)
        sb_put(s, "\"");
    sb_putn(s, tr.buf, tr.len);
    if (quoted)
        sb_put(s, "\"");
    sb_put(s, gen_shop_suffixes[dist_pick(&g->rng, &g->shops)].zh);
}

static void
name_other(gen *g, int kind, const gen_district *d, gen_sb *s)
{
    switch (kind) {
    case KIND_COOPERATIVE:
        put_place(g, d, s, 1.0);
        put_trade(g, s, NULL, 2);
        sb_put(s, pick_str(&g->rng, gen_coop_trades, gen_coop_trades_n));
        sb_put(s, pick_str(&g->rng, gen_coop_forms, gen_coop_forms_n));
        break;
    case KIND_NONPROFIT:
        put_place(g, d, s, 0.7);
        put_trade(g, s, NULL, 2);
        sb_put(s, pick_str(&g->rng, gen_nonprofit_suffixes, gen_nonprofit_suffixes_n));
        break;
    case KIND_SOCIETY:
        if (rng_chance(&g->rng, 0.5)) {
            put_place(g, d, s, 0.8);
            sb_put(s, pick_str(&g->rng, gen_society_regions, gen_society_regions_n));
            sb_put(s, "商会");
        } else {
            sb_put(s, g->city->name);
            sb_put(s, gen_industries[dist_pick(&g->rng, &g->industries)].zh);
            sb_put(s, pick_str(&g->rng, gen_society_forms, gen_society_forms_n));
        }
        break;
    case KIND_INSTITUTION:
        put_place(g, d, s, 1.0);
        if (rng_chance(&g->rng, 0.5)) {
            sb_put(s, "第");
            sb_put(s, pick_str(&g->rng, gen_numerals, gen_numerals_n));
            sb_put(s, pick_str(&g->rng, gen_school_forms, gen_school_forms_n));
        } else {
            sb_put(s, pick_str(&g->rng, gen_institutions, gen_institutions_n));
        }
        break;
    case KIND_VILLAGE:
        put_place(g, d, s, 1.0);
        put_trade(g, s, NULL, 2);
        sb_put(s, pick_str(&g->rng, gen_village_forms, gen_village_forms_n));
        break;
    default: /* KIND_OTHER */
        put_place(g, d, s, 1.0);
        put_trade(g, s, NULL, 2);
        sb_put(s, pick_str(&g->rng, gen_owner_forms, gen_owner_forms_n));
        break;
    }
}

/* Fresh enterprise: kind, district, a code not used before, and a name. */
static int
gen_enterprise(gen *g, gen_row *row)
{
    size_t k = dist_pick(&g->rng, &g->kinds);
    const gen_district *d = &g->city->districts[dist_pick(&g->rng, &g->districts)];
    for (;;) {
        make_code(g, gen_kinds[k].authority, gen_kinds[k].type, d->code, row->code);
        int ins = set_insert(&g->set, row->code);
        if (ins < 0)
            return BG_ENOMEM;
        if (ins > 0)
            break;
    }
    row->sb.len = 0;
    if (gen_kinds[k].kind == KIND_ENTERPRISE)
        name_enterprise(g, d, &row->sb);
    else if (gen_kinds[k].kind == KIND_INDIVIDUAL)
        name_individual(g, d, &row->sb);
    else
        name_other(g, gen_kinds[k].kind, d, &row->sb);
    row->name = row->sb.buf;
    row->name_len = row->sb.len;
    return BG_OK;
}

/* This city's own list memberships and grade, for fresh and shared rows alike. */
static void
gen_credit(gen *g, gen_row *row)
{
    int32_t as_of = g->opts->as_of;
    for (int l = 0; l < BG_LIST_COUNT; l++) {
        row->listed[l] = rng_chance(&g->rng, gen_list_rate[l]);
        if (!row->listed[l])
            continue;
        row->reason[l] = dist_pick(&g->rng, &g->reasons[l]);
        row->listed_at[l] = as_of - 1 - (int32_t)rng_below(&g->rng, GEN_LIST_WINDOW);
        row->expires_at[l] = GEN_NO_DATE;
        if (rng_chance(&g->rng, gen_list_expiry_rate[l])) {
            if (l == BG_LIST_SERIOUS_DISHONESTY) /* three years, as the regulation sets */
                row->expires_at[l] = add_years(row->listed_at[l], 3);
            else
                row->expires_at[l] =
                    row->listed_at[l] + 180 + (int32_t)rng_below(&g->rng, GEN_LIST_WINDOW - 180);
        }
    }
    row->grade = -1;
    if (rng_chance(&g->rng, GEN_GRADED_RATE)) {
        if (row->listed[BG_LIST_SERIOUS_DISHONESTY] && rng_chance(&g->rng, GEN_DISHONEST_D_RATE))
            row->grade = 3;
        else
            row->grade = (int)dist_pick(&g->rng, &g->grades);
        row->evaluated_at = as_of - 1 - (int32_t)rng_below(&g->rng, GEN_EVAL_WINDOW);
    }
}

/* ---------------------------------------------------------------------------
 * Output.
 */

static int
out_flush(gen *g, bg_err *err)
{
    if (g->out_len > 0 && fwrite(g->out, 1, g->out_len, g->f) != g->out_len) {
        g->out_len = 0;
        return bg_err_set(err, BG_EIO, "write failed: %s", strerror(errno));
    }
    g->out_len = 0;
    return BG_OK;
}

static char *
put_date(gen *g, char *p, int32_t day)
{
    char spare[11];
    if (day == GEN_NO_DATE)
        return p;
    memcpy(p, gen_date(g, day, spare), 10);
    return p + 10;
}

/* UTF-8 of the full-width form (U+FF01..U+FF5E) of a printable ASCII byte. */
static char *
put_fullwidth(char *p, char c)
{
    unsigned cp = 0xFF01u + (unsigned)(c - 0x21);
    *p++ = (char)(0xE0 | (cp >> 12));
    *p++ = (char)(0x80 | ((cp >> 6) & 0x3F));
    *p++ = (char)(0x80 | (cp & 0x3F));
    return p;
}

#define IDEOGRAPHIC_SPACE "\xE3\x80\x80"

/*
 * Chooses a defect and writes the USCC cell it yields to buf (*len bytes);
 * *no_name is set when the defect empties the name instead.
 */
static int
make_defect(gen *g, const char *code, char *buf, size_t *len, bool *no_name)
{
    int kind = (int)rng_below(&g->drng, BG_DEFECT_COUNT);
    if (kind == BG_DEFECT_DUPLICATE && g->clean_rows == 0)
        kind = BG_DEFECT_BAD_CHECK; /* nothing earlier to copy yet */
    char *p = buf;
    *no_name = false;
    switch (kind) {
    case BG_DEFECT_BAD_CHECK: {
        memcpy(p, code, BG_USCC_LEN);
        int v = (int)(strchr(bg_uscc_alphabet, code[17]) - bg_uscc_alphabet);
        p[17] = bg_uscc_alphabet[(v + 1 + (int)rng_below(&g->drng, 30)) % 31];
        p += BG_USCC_LEN;
        break;
    }
    case BG_DEFECT_FULLWIDTH: {
        /* All characters, or a random non-empty part, as typed with a Chinese IME. */
        bool all = rng_chance(&g->drng, 0.5);
        uint32_t forced = rng_below(&g->drng, BG_USCC_LEN);
        uint32_t spaces = rng_below(&g->drng, 4); /* bit 0 leading, bit 1 trailing */
        if (spaces & 1) {
            memcpy(p, IDEOGRAPHIC_SPACE, 3);
            p += 3;
        }
        for (uint32_t i = 0; i < BG_USCC_LEN; i++) {
            if (all || i == forced || rng_chance(&g->drng, 0.5))
                p = put_fullwidth(p, code[i]);
            else
                *p++ = code[i];
        }
        if (spaces & 2) {
            memcpy(p, IDEOGRAPHIC_SPACE, 3);
            p += 3;
        }
        break;
    }
    case BG_DEFECT_LOWERCASE: {
        bool letter = false;
        for (int i = 0; i < BG_USCC_LEN; i++)
            letter = letter || (code[i] >= 'A' && code[i] <= 'Z');
        /* A code without letters cannot be lower-cased: a stray space keeps the defect. */
        if (!letter)
            *p++ = ' ';
        for (int i = 0; i < BG_USCC_LEN; i++)
            *p++ = code[i] >= 'A' && code[i] <= 'Z' ? (char)(code[i] - 'A' + 'a') : code[i];
        break;
    }
    case BG_DEFECT_DUPLICATE: {
        uint64_t n = g->clean_rows < GEN_RESERVOIR ? g->clean_rows : GEN_RESERVOIR;
        memcpy(p, g->reservoir[rng_below(&g->drng, (uint32_t)n)], BG_USCC_LEN);
        p += BG_USCC_LEN;
        break;
    }
    default: /* BG_DEFECT_MISSING: the name or the code left empty */
        if (rng_chance(&g->drng, 0.5)) {
            *no_name = true;
            memcpy(p, code, BG_USCC_LEN);
            p += BG_USCC_LEN;
        }
        break;
    }
    *len = (size_t)(p - buf);
    return kind;
}

/* Keeps a uniform sample of clean codes for duplicates (Algorithm R). */
static void
reservoir_add(gen *g, const char *code)
{
    if (g->clean_rows < GEN_RESERVOIR) {
        memcpy(g->reservoir[g->clean_rows], code, BG_USCC_LEN);
    } else {
        uint64_t j = rng_below64(&g->drng, g->clean_rows + 1);
        if (j < GEN_RESERVOIR)
            memcpy(g->reservoir[j], code, BG_USCC_LEN);
    }
    g->clean_rows++;
}

static void
write_row(gen *g, const gen_row *row, const char *uscc, size_t uscc_len, bool no_name)
{
    char *p = g->out + g->out_len;
    p += bg_csv_cell(p, uscc, uscc_len);
    *p++ = ',';
    if (!no_name)
        p += bg_csv_cell(p, row->name, row->name_len);
    *p++ = ',';
    if (row->grade >= 0) {
        *p++ = "ABCD"[row->grade];
        *p++ = ',';
        p = put_date(g, p, row->evaluated_at);
        *p++ = ',';
        p = put_date(g, p, row->evaluated_at + GEN_VALID_DAYS);
    } else {
        *p++ = ',';
        *p++ = ',';
    }
    for (int l = 0; l < BG_LIST_COUNT; l++) {
        *p++ = ',';
        if (row->listed[l]) {
            const char *reason = gen_reasons[l].items[row->reason[l]].zh;
            p += bg_csv_cell(p, reason, strlen(reason));
            *p++ = ',';
            p = put_date(g, p, row->listed_at[l]);
            *p++ = ',';
            p = put_date(g, p, row->expires_at[l]);
        } else {
            *p++ = ',';
            *p++ = ',';
        }
    }
    *p++ = '\n';
    g->out_len = (size_t)(p - g->out);
}

/* ---------------------------------------------------------------------------
 * Options and set-up.
 */

int32_t
bg_gen_default_as_of(void)
{
    int32_t d = 0;
    (void)bg_date_parse("2026-06-30", 10, &d, NULL);
    return d;
}

/* The most rows one call writes: far beyond any demo, and it bounds memory. */
#define GEN_MAX_COUNT 1000000000ULL

static int
check_opts(const bg_gen_opts *opts, const gen_city **city, bg_err *err)
{
    size_t clen = strnlen(opts->city, sizeof opts->city);
    *city = NULL;
    for (size_t i = 0; i < gen_city_table_n && clen == 6; i++)
        if (memcmp(gen_city_table[i].code, opts->city, 6) == 0)
            *city = &gen_city_table[i];
    if (*city == NULL) {
        char known[256];
        size_t n = 0;
        for (size_t i = 0; i < gen_city_table_n; i++)
            n += (size_t)snprintf(known + n, sizeof known - n, "%s%s %s", i ? ", " : "",
                                  gen_city_table[i].code, gen_city_table[i].pinyin);
        return bg_err_set(err, BG_EINVAL, "unknown city '%.*s' (known: %s)", (int)clen, opts->city,
                          known);
    }
    if (!(opts->share_rate >= 0.0 && opts->share_rate <= 1.0))
        return bg_err_set(err, BG_EINVAL, "share rate %g is not between 0 and 1", opts->share_rate);
    if (!(opts->dirty_rate >= 0.0 && opts->dirty_rate <= 1.0))
        return bg_err_set(err, BG_EINVAL, "dirty rate %g is not between 0 and 1", opts->dirty_rate);
    if (opts->share_rate > 0.0 && (opts->share_path == NULL || opts->share_path[0] == '\0'))
        return bg_err_set(err, BG_EINVAL, "a share rate needs a share file");
    if (opts->count > GEN_MAX_COUNT)
        return bg_err_set(err, BG_ELIMIT, "count %llu is more than the %llu rows allowed",
                          (unsigned long long)opts->count, GEN_MAX_COUNT);
    /* Every date written lies within GEN_DATE_SPAN days of as_of: keep them all valid. */
    int32_t lo, hi;
    (void)bg_date_parse("1949-10-01", 10, &lo, NULL);
    (void)bg_date_parse("2199-12-31", 10, &hi, NULL);
    if (opts->as_of < lo + GEN_DATE_SPAN || opts->as_of > hi - GEN_DATE_SPAN) {
        char a[11], b[11];
        bg_date_format(lo + GEN_DATE_SPAN, a);
        bg_date_format(hi - GEN_DATE_SPAN, b);
        return bg_err_set(err, BG_EINVAL, "as-of date (day %ld) is outside %s..%s",
                          (long)opts->as_of, a, b);
    }
    return BG_OK;
}

static void
gen_free(gen *g)
{
    free(g->set.slots);
    pool_free(&g->pool);
    free(g->reservoir);
    free(g->out);
    free(g);
}

static int
gen_setup(gen *g, const bg_gen_opts *opts, const gen_city *city, FILE *out, bg_err *err)
{
    g->opts = opts;
    g->city = city;
    g->f = out;
    rng_seed(&g->rng, opts->seed, 1);
    rng_seed(&g->drng, opts->seed, 2);
    rng_seed(&g->srng, opts->seed, 3);

    for (size_t i = 0; i < gen_kinds_n; i++)
        dist_add(&g->kinds, gen_kinds[i].weight);
    for (size_t i = 0; i < city->ndistricts; i++)
        dist_add(&g->districts, city->districts[i].weight);
    for (size_t i = 0; i < gen_industries_n; i++) {
        /* An industry a city is known for is four times as common there. */
        bool hot = strstr(gen_industries[i].hot, city->code) != NULL;
        dist_add(&g->industries, gen_industries[i].weight * (hot ? 4 : 1));
    }
    for (size_t i = 0; i < gen_forms_n; i++)
        dist_add(&g->forms, gen_forms[i].weight);
    for (size_t i = 0; i < gen_shop_suffixes_n; i++)
        dist_add(&g->shops, gen_shop_suffixes[i].weight);
    for (size_t i = 0; i < 4; i++)
        dist_add(&g->grades, gen_grade_weights[i]);
    for (int l = 0; l < BG_LIST_COUNT; l++)
        for (size_t i = 0; i < gen_reasons[l].n; i++)
            dist_add(&g->reasons[l], gen_reasons[l].items[i].weight);

    g->date_base = opts->as_of - GEN_DATE_SPAN;
    for (size_t i = 0; i < ARRAY_LEN(g->dates); i++) {
        char s[11];
        bg_date_format(g->date_base + (int32_t)i, s);
        memcpy(g->dates[i], s, 10);
    }

    g->out = malloc(GEN_OUTBUF);
    if (g->out == NULL || set_init(&g->set, (size_t)opts->count) != BG_OK)
        return bg_err_set(err, BG_ENOMEM, "out of memory for %llu rows",
                          (unsigned long long)opts->count);
    if (opts->dirty_rate > 0.0) {
        g->reservoir = malloc(GEN_RESERVOIR * sizeof *g->reservoir);
        if (g->reservoir == NULL)
            return bg_err_set(err, BG_ENOMEM, "out of memory");
    }
    /* A share rate of zero takes nothing, so the file is not even read. */
    if (opts->share_rate > 0.0)
        return share_load(opts->share_path, &g->set, &g->pool, err);
    return BG_OK;
}

/* The row's enterprise, and its defect if it draws one; the stats counted. */
static void
write_one(gen *g, gen_row *row, bg_gen_stats *stats)
{
    const bg_gen_opts *opts = g->opts;
    gen_credit(g, row);
    char ubuf[128];
    const char *uscc = row->code;
    size_t uscc_len = BG_USCC_LEN;
    bool no_name = false;
    if (opts->dirty_rate > 0.0) {
        if (rng_chance(&g->drng, opts->dirty_rate)) {
            int kind = make_defect(g, row->code, ubuf, &uscc_len, &no_name);
            uscc = ubuf;
            stats->defects[kind]++;
        } else {
            reservoir_add(g, row->code);
        }
    }
    write_row(g, row, uscc, uscc_len, no_name);

    stats->rows++;
    for (int l = 0; l < BG_LIST_COUNT; l++)
        stats->listed[l] += row->listed[l];
    if (row->grade >= 0) {
        stats->graded++;
        stats->grades[row->grade]++;
    }
}

/*
 * Exactly round(share_rate * count) rows are shared (fewer if the file has
 * fewer enterprises), spread uniformly by selection sampling; each takes a
 * distinct enterprise by a partial Fisher-Yates shuffle of the pool.
 */
static int
write_rows(gen *g, gen_row *row, bg_gen_stats *stats, bg_err *err)
{
    const bg_gen_opts *opts = g->opts;
    uint64_t want_shared = (uint64_t)(opts->share_rate * (double)opts->count + 0.5);
    if (want_shared > opts->count)
        want_shared = opts->count;
    if (want_shared > g->pool.n)
        want_shared = g->pool.n;
    uint64_t need = want_shared;
    int rc;

    for (uint64_t i = 0; i < opts->count; i++) {
        if (GEN_OUTBUF - g->out_len < GEN_ROW_MAX && (rc = out_flush(g, err)) != BG_OK)
            return rc;
        bool shared = need > 0 && rng_below64(&g->srng, opts->count - i) < need;
        if (shared) {
            uint64_t used = want_shared - need;
            uint64_t j = used + rng_below64(&g->srng, g->pool.n - used);
            gen_pool_item tmp = g->pool.items[j];
            g->pool.items[j] = g->pool.items[used];
            g->pool.items[used] = tmp;
            memcpy(row->code, tmp.code, BG_USCC_LEN);
            row->name = g->pool.names + tmp.name_off;
            row->name_len = tmp.name_len;
            need--;
            stats->shared++;
        } else if ((rc = gen_enterprise(g, row)) != BG_OK) {
            return bg_err_set(err, rc, "out of memory after %llu rows", (unsigned long long)i);
        }
        write_one(g, row, stats);
    }
    return BG_OK;
}

int
bg_gen_write(const bg_gen_opts *opts, FILE *out, bg_gen_stats *stats, bg_err *err)
{
    bg_gen_stats local;
    if (stats == NULL)
        stats = &local;
    memset(stats, 0, sizeof *stats);
    if (opts == NULL || out == NULL)
        return bg_err_set(err, BG_EINVAL, "no options or no output stream");
    const gen_city *city;
    int rc = check_opts(opts, &city, err);
    if (rc != BG_OK)
        return rc;

    gen *g = calloc(1, sizeof *g);
    if (g == NULL)
        return bg_err_set(err, BG_ENOMEM, "out of memory");
    gen_row *row = malloc(sizeof *row);
    if (row == NULL) {
        free(g);
        return bg_err_set(err, BG_ENOMEM, "out of memory");
    }
    rc = gen_setup(g, opts, city, out, err);
    if (rc != BG_OK)
        goto done;

    g->out_len = bg_record_header(g->out, GEN_ROW_MAX);
    if ((rc = write_rows(g, row, stats, err)) != BG_OK)
        goto done;
    if ((rc = out_flush(g, err)) != BG_OK)
        goto done;
    if (fflush(out) != 0 || ferror(out)) {
        rc = bg_err_set(err, BG_EIO, "write failed: %s", strerror(errno));
        goto done;
    }
    rc = BG_OK;
done:
    free(row);
    gen_free(g);
    return rc;
}
