/*
 * demo_truth.c - what the tour checks answers against, and the answers: the
 * cities' stores (the ground truth their gateways publish), their generated
 * files, and the CSV the queries print.
 */
#include "gateway/demo/demo_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/num.h"
#include "domain/date.h"
#include "domain/list.h"
#include "gateway/cmdline/cmdline.h"
#include "gateway/store/store.h"

/* Generated rows and query answers are far smaller; a record past this is not ours. */
#define DEMO_CSV_RECORD_MAX (64 * 1024)

bool
demo_csv_each(const char *path, bool (*fn)(void *ctx, const bg_csv_field *f, size_t n), void *ctx)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return false;
    bg_csv *csv = NULL;
    bool ok = bg_csv_open(&csv, f, DEMO_CSV_RECORD_MAX, NULL) == BG_OK;
    for (int rc = BG_OK; ok;) {
        bg_csv_field *fields;
        size_t n;
        rc = bg_csv_next(csv, &fields, &n, NULL);
        if (rc == BG_ENOTFOUND)
            break;
        if (rc == BG_EIO)
            ok = false;
        else if (rc == BG_OK && !fn(ctx, fields, n))
            break;
    }
    bg_csv_close(csv);
    fclose(f);
    return ok;
}

/* A field as a string (cut to size). */
static void
field_str(const bg_csv_field *f, char *out, size_t size)
{
    snprintf(out, size, "%.*s", (int)f->len, f->p);
}

static bool
field_is(const bg_csv_field *f, const char *s)
{
    return f->len == strlen(s) && memcmp(f->p, s, f->len) == 0;
}

/* A decimal field; empty is zero (nothing to count). */
static bool
field_u64(const bg_csv_field *f, uint64_t *out)
{
    char s[24];
    *out = 0;
    if (f->len == 0)
        return true;
    if (f->len >= sizeof s)
        return false;
    field_str(f, s, sizeof s);
    return bg_num_u64(s, 0, UINT64_MAX, out, NULL) == BG_OK;
}

/* --- sets of codes --- */

static int
cmp_code18(const void *a, const void *b)
{
    return memcmp(a, b, BG_USCC_LEN);
}

bool
demo_set_add(demo_set *s, const char *code, const char *grade)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 1024;
        void *c = realloc(s->code, cap * sizeof *s->code);
        if (c == NULL)
            return false;
        s->code = c;
        void *g = realloc(s->grade, cap * sizeof *s->grade);
        if (g == NULL)
            return false;
        s->grade = g;
        s->cap = cap;
    }
    memcpy(s->code[s->n], code, BG_USCC_LEN);
    snprintf(s->grade[s->n], sizeof s->grade[0], "%s", grade ? grade : "");
    s->n++;
    return true;
}

/* Codes and grades sort together: copied side by side, sorted, copied back. */
bool
demo_set_sort(demo_set *s)
{
    char(*both)[BG_USCC_LEN + BG_SNAP_GRADE_MAX + 1] = malloc((s->n ? s->n : 1) * sizeof *both);
    if (both == NULL)
        return false;
    for (size_t i = 0; i < s->n; i++) {
        memcpy(both[i], s->code[i], BG_USCC_LEN);
        memcpy(both[i] + BG_USCC_LEN, s->grade[i], BG_SNAP_GRADE_MAX + 1);
    }
    qsort(both, s->n, sizeof *both, cmp_code18);
    size_t w = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (w > 0 && memcmp(s->code[w - 1], both[i], BG_USCC_LEN) == 0)
            continue;
        memcpy(s->code[w], both[i], BG_USCC_LEN);
        memcpy(s->grade[w], both[i] + BG_USCC_LEN, BG_SNAP_GRADE_MAX + 1);
        w++;
    }
    s->n = w;
    free(both);
    return true;
}

const char *
demo_set_find(const demo_set *s, const char *code)
{
    char(*hit)[BG_USCC_LEN] = bsearch(code, s->code, s->n, sizeof *s->code, cmp_code18);
    return hit ? s->grade[hit - s->code] : NULL;
}

void
demo_set_free(demo_set *s)
{
    free(s->code);
    free(s->grade);
    memset(s, 0, sizeof *s);
}

/* --- the stores --- */

static int
truth_row(void *ctx, const bg_store_row *row, bg_err *err)
{
    if (!demo_set_add(ctx, row->uscc, row->grade))
        return bg_err_set(err, BG_ENOMEM, "out of memory");
    return BG_OK;
}

/* A list entry counts only while in force, as the publisher decides. */
static int
truth_list_row(void *ctx, const bg_store_row *row, bg_err *err)
{
    if (!bg_list_entry_in_force(row->date2, bg_date_today()))
        return BG_OK;
    return truth_row(ctx, row, err);
}

static int
scan_store(demo *d, const char *code, const char *list, bool in_force, demo_set *out)
{
    char store_dir[DEMO_PATH];
    if (!demo_path(store_dir, sizeof store_dir, "%s/%s/data", d->dir, code))
        return BG_EXIT_ERROR;
    bg_store *st = NULL;
    bg_err err = {0};
    int64_t last = 0;
    int rc = bg_store_open(&st, store_dir, code, NULL, &err);
    if (rc == BG_OK)
        rc = bg_store_scan_current(st, list, bg_date_today(), &last,
                                   in_force ? truth_list_row : truth_row, out, &err);
    bg_store_close(st);
    if (rc != BG_OK)
        return bg_cli_fail("demo", "reading the %s store: %s", code, err.msg);
    return BG_EXIT_OK;
}

int
demo_load_truth(demo *d, const char *code, const char *list, demo_set *out)
{
    int rc = scan_store(d, code, list, list != NULL, out);
    if (rc == BG_EXIT_OK && !demo_set_sort(out))
        return bg_cli_fail("demo", "reading the %s store: out of memory", code);
    return rc;
}

int
demo_load_all(demo *d, const char *code, const char *list, demo_set *out)
{
    return scan_store(d, code, list, false, out);
}

/* --- generated files --- */

struct ids_ctx {
    FILE *out;
    demo_set *valid;
    size_t n, limit;
    bool header, oom;
};

static bool
ids_row(void *ctx, const bg_csv_field *f, size_t nf)
{
    struct ids_ctx *c = ctx;
    if (c->header) {
        c->header = false;
        return true;
    }
    if (nf == 0 || f[0].len == 0)
        return true;
    if (c->out != NULL)
        fprintf(c->out, "%.*s\n", (int)f[0].len, f[0].p);
    c->n++;
    bg_uscc u;
    if (bg_uscc_parse(f[0].p, f[0].len, &u, NULL) == BG_OK && !demo_set_add(c->valid, u.code, NULL))
        c->oom = true;
    return !c->oom && c->n < c->limit;
}

int
demo_write_ids(const char *csv, const char *ids, size_t limit, demo_set *valid)
{
    struct ids_ctx c = {.valid = valid, .limit = limit, .header = true};
    if (ids != NULL && (c.out = fopen(ids, "w")) == NULL)
        return bg_cli_fail("demo", "cannot read %s or write %s", csv, ids);
    bool read = limit == 0 || demo_csv_each(csv, ids_row, &c);
    if ((c.out != NULL && fclose(c.out) != 0) || !read || c.oom || !demo_set_sort(valid))
        return bg_cli_fail("demo", "cannot read %s or write %s", csv, ids ? ids : "the id set");
    return BG_EXIT_OK;
}

struct name_ctx {
    const char *uscc;
    char *name;
    size_t size;
    bool found;
};

static bool
name_row(void *ctx, const bg_csv_field *f, size_t nf)
{
    struct name_ctx *c = ctx;
    bg_uscc u;
    if (nf >= 2 && f[1].len > 0 && bg_uscc_parse(f[0].p, f[0].len, &u, NULL) == BG_OK &&
        memcmp(u.code, c->uscc, BG_USCC_LEN) == 0) {
        field_str(&f[1], c->name, c->size);
        c->found = true;
    }
    return !c->found;
}

bool
demo_csv_name(const char *csv, const char *uscc, char *name, size_t size)
{
    struct name_ctx c = {.uscc = uscc, .name = name, .size = size};
    return demo_csv_each(csv, name_row, &c) && c.found;
}

/* --- the queries' answers --- */

/* The columns of `baygate query --csv`. */
enum {
    Q_PEER,
    Q_OK,
    Q_EPOCH,
    Q_USCC,
    Q_GRADE,
    Q_SCALE,
    Q_EVALUATED_AT,
    Q_VALID_UNTIL,
    Q_SERIAL,
    Q_COUNT,
    Q_ERROR,
    Q_COMMON_GRADE,
    Q_ATTESTED,
    Q_COLUMNS
};

struct answer_ctx {
    const char *peer;
    demo_answer *a;
};

static bool
answer_row(void *ctx, const bg_csv_field *f, size_t nf)
{
    struct answer_ctx *c = ctx;
    demo_answer *a = c->a;
    if (nf < Q_ERROR || !field_is(&f[Q_PEER], c->peer))
        return true;
    /* A row that is not a whole answer (the peer failed, or it does not read) ends it. */
    uint64_t count = a->count;
    if (!field_is(&f[Q_OK], "true") || !field_u64(&f[Q_EPOCH], &a->epoch) ||
        (f[Q_COUNT].len > 0 && !field_u64(&f[Q_COUNT], &count))) {
        a->ok = false;
        return false;
    }
    a->ok = true;
    a->count = count;
    if (f[Q_USCC].len == BG_USCC_LEN) {
        char grade[BG_SNAP_GRADE_MAX + 1];
        field_str(&f[Q_GRADE], grade, sizeof grade);
        demo_set_add(&a->got, f[Q_USCC].p, grade);
    }
    return true;
}

void
demo_read_answer(const char *path, const char *peer, demo_answer *a)
{
    memset(a, 0, sizeof *a);
    struct answer_ctx c = {.peer = peer, .a = a};
    demo_csv_each(path, answer_row, &c);
    demo_set_sort(&a->got);
}

struct graded_ctx {
    const char *peer, *uscc;
    demo_graded *g;
};

static bool
graded_row(void *ctx, const bg_csv_field *f, size_t nf)
{
    struct graded_ctx *c = ctx;
    demo_graded *g = c->g;
    if (nf < Q_COLUMNS || !field_is(&f[Q_PEER], c->peer))
        return true;
    if (!field_is(&f[Q_OK], "true")) {
        field_str(&f[Q_ERROR], g->error, sizeof g->error); /* the peer did not answer */
        return true;
    }
    if (!field_is(&f[Q_USCC], c->uscc))
        return true;
    g->found = field_u64(&f[Q_SERIAL], &g->serial);
    field_str(&f[Q_GRADE], g->grade, sizeof g->grade);
    field_str(&f[Q_SCALE], g->scale, sizeof g->scale);
    field_str(&f[Q_ERROR], g->error, sizeof g->error);
    field_str(&f[Q_COMMON_GRADE], g->common, sizeof g->common);
    g->attested = field_is(&f[Q_ATTESTED], "true");
    if (!g->found)
        snprintf(g->error, sizeof g->error, "serial '%.*s' is not a number", (int)f[Q_SERIAL].len,
                 f[Q_SERIAL].p);
    return false;
}

void
demo_read_graded(const char *path, const char *peer, const char *uscc, demo_graded *g)
{
    memset(g, 0, sizeof *g);
    struct graded_ctx c = {.peer = peer, .uscc = uscc, .g = g};
    demo_csv_each(path, graded_row, &c);
}
