/*
 * demo_data.c - act 2: each city generates its credit data (Shenzhen and
 * Foshan share enterprises with Guangzhou), in its own grade scale, and
 * imports it into its store.
 */
#include "gateway/demo/demo_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "domain/date.h"
#include "domain/list.h"
#include "gateway/cmdline/cmdline.h"
#include "gateway/gen/gen.h"
#include "gateway/store/import.h"
#include "gateway/store/store.h"

struct rescale_ctx {
    const demo_city *city;
    FILE *out;
    size_t grade_col;
    bool header, bad;
    char *buf; /* one record, re-quoted */
    size_t cap;
};

/* The grade the city gives a generated one (A..D), or NULL to keep the cell. */
static const char *
own_grade(const struct rescale_ctx *c, const bg_csv_field *f, size_t nf)
{
    if (c->grade_col >= nf || f[c->grade_col].len != 1 || nf == 0)
        return NULL;
    char g = f[c->grade_col].p[0];
    if (g < 'A' || g > 'D')
        return NULL;
    int parity = f[0].len > 0 ? (unsigned char)f[0].p[f[0].len - 1] & 1 : 0;
    return c->city->from_gen[g - 'A'][parity];
}

static bool
rescale_row(void *ctx, const bg_csv_field *f, size_t nf)
{
    struct rescale_ctx *c = ctx;
    if (c->header) {
        for (size_t k = 0; k < nf; k++)
            if (f[k].len == 5 && memcmp(f[k].p, "grade", 5) == 0)
                c->grade_col = k;
        c->header = false;
    }
    const char *grade = own_grade(c, f, nf);
    size_t need = 1;
    for (size_t k = 0; k < nf; k++)
        need += BG_CSV_CELL_MAX(f[k].len) + 1;
    if (need > c->cap) {
        char *more = realloc(c->buf, need);
        if (more == NULL) {
            c->bad = true;
            return false;
        }
        c->buf = more;
        c->cap = need;
    }
    size_t len = 0;
    for (size_t k = 0; k < nf; k++) {
        if (k > 0)
            c->buf[len++] = ',';
        if (k == c->grade_col && grade != NULL)
            len += bg_csv_cell(c->buf + len, grade, strlen(grade));
        else
            len += bg_csv_cell(c->buf + len, f[k].p, f[k].len);
    }
    c->buf[len++] = '\n';
    if (fwrite(c->buf, 1, len, c->out) != len)
        c->bad = true;
    return !c->bad;
}

/* Rewrites a generated file's grades into the city's own scale (from_gen). Every
 * other cell is written back as the generator wrote it (quoted only when it must
 * be, as bg_csv_cell does for both), defects included, so the import sees the same
 * rows. */
static int
rescale_csv(const char *path, const demo_city *c)
{
    if (c->from_gen[0][0] == NULL)
        return BG_EXIT_OK;
    char tmp[DEMO_PATH];
    if (!demo_path(tmp, sizeof tmp, "%s.tmp", path))
        return BG_EXIT_ERROR;
    struct rescale_ctx rc = {.city = c, .grade_col = SIZE_MAX, .header = true};
    rc.out = fopen(tmp, "w");
    if (rc.out == NULL)
        return bg_cli_fail("demo", "cannot rewrite %s: %s", path, strerror(errno));
    bool read = demo_csv_each(path, rescale_row, &rc);
    free(rc.buf);
    if (fclose(rc.out) != 0 || !read || rc.bad || rc.grade_col == SIZE_MAX ||
        rename(tmp, path) != 0) {
        unlink(tmp);
        return bg_cli_fail("demo", "cannot rewrite the grades of %s", path);
    }
    return BG_EXIT_OK;
}

struct city_run {
    const char *code;
    bg_gen_stats gen;
    bg_import_result imp;
    bg_store_counts counts;
    bg_scale scale;
};

static int
generate(demo *d, size_t i, const bg_gen_opts *base, const char *csv, struct city_run *run)
{
    char share[DEMO_PATH];
    bg_gen_opts g = *base;
    g.seed += i;
    memcpy(g.city, demo_cities[i].code, 7);
    if (demo_cities[i].share_with != NULL) {
        if (!demo_path(share, sizeof share, "%s/data/%s.csv", d->dir, demo_cities[i].share_with))
            return BG_EXIT_ERROR;
        g.share_path = share;
        g.share_rate = 0.10;
    }
    bg_err err = {0};
    FILE *out = fopen(csv, "wb");
    if (out == NULL)
        return bg_cli_fail("demo", "cannot write %s: %s", csv, strerror(errno));
    int rc = bg_gen_write(&g, out, &run->gen, &err);
    if (fclose(out) != 0 && rc == BG_OK)
        rc = bg_err_set(&err, BG_EIO, "closing %s failed", csv);
    if (rc != BG_OK)
        return bg_cli_fail("demo", "generating %s: %s", demo_cities[i].code, err.msg);
    return rescale_csv(csv, &demo_cities[i]);
}

static int
load_city_data(demo *d, size_t i, const bg_gen_opts *base, struct city_run *run)
{
    char csv[DEMO_PATH], store_dir[DEMO_PATH];
    const char *code = demo_cities[i].code;
    bg_err err = {0};
    run->code = code;
    if (!demo_path(csv, sizeof csv, "%s/data/%s.csv", d->dir, code) ||
        !demo_path(store_dir, sizeof store_dir, "%s/%s/data", d->dir, code))
        return BG_EXIT_ERROR;
    if (generate(d, i, base, csv, run) != BG_EXIT_OK)
        return BG_EXIT_ERROR;

    if (bg_scale_parse(demo_cities[i].scale, &run->scale, &err) != BG_OK)
        return bg_cli_fail("demo", "%s's scale: %s", code, err.msg);
    bg_store *store = NULL;
    if (bg_store_open(&store, store_dir, code, &run->scale, &err) != BG_OK)
        return bg_cli_fail("demo", "opening the %s store: %s", code, err.msg);
    bg_import_opts io = {.mode = BG_IMPORT_QUARANTINE};
    int rc = bg_import_file(store, csv, &io, &run->imp, &err);
    if (rc == BG_OK)
        rc = bg_store_counts_get(store, &run->counts, &err);
    bg_store_close(store);
    if (rc != BG_OK)
        return bg_cli_fail("demo", "importing %s: %s", csv, err.msg);
    return BG_EXIT_OK;
}

static void
print_counts(const struct city_run *runs)
{
    printf("\n   %-10s %-6s %8s %8s %10s %8s %10s  %9s %9s %8s  %s\n", "city", "code", "rows",
           "stored", "normalised", "rejected", "error rate", "dishonest", "abnormal", "graded",
           "by grade (own scale, best first)");
    for (size_t i = 0; i < NDEMO; i++) {
        const struct city_run *r = &runs[i];
        char grades[64] = "";
        size_t len = 0;
        for (size_t g = 0; g < r->scale.ngrades && len < sizeof grades; g++)
            len += (size_t)snprintf(grades + len, sizeof grades - len, "%s%llu", g ? " / " : "",
                                    (unsigned long long)r->counts.by_grade[g]);
        printf("   %-10s %-6s %8llu %8llu %10llu %8llu %9.4f%%  %9llu %9llu %8llu  %s\n",
               demo_cities[i].name, r->code, (unsigned long long)r->imp.rows,
               (unsigned long long)r->counts.enterprises, (unsigned long long)r->imp.normalised,
               (unsigned long long)r->imp.rejected, r->imp.error_rate * 100.0,
               (unsigned long long)r->counts.listed[BG_LIST_SERIOUS_DISHONESTY],
               (unsigned long long)r->counts.listed[BG_LIST_ABNORMAL_OPERATION],
               (unsigned long long)r->counts.evaluations, grades);
    }
}

static void
print_data_summary(const struct city_run *runs)
{
    print_counts(runs);
    printf("\n   Enterprises active in several cities:\n");
    for (size_t i = 0; i < NDEMO; i++)
        if (demo_cities[i].share_with != NULL)
            printf("     %llu of %s's rows are enterprises also registered with %s\n",
                   (unsigned long long)runs[i].gen.shared, demo_cities[i].name,
                   bg_uscc_city_name(demo_cities[i].share_with));
    printf("\n   What the imports refused (the plan's target error rate is <= 0.005%%):\n");
    for (size_t i = 0; i < NDEMO; i++) {
        const struct city_run *r = &runs[i];
        printf("     %-10s %llu rejected (%llu duplicates), %llu codes repaired by "
               "normalising; %s the target%s%s\n",
               demo_cities[i].name, (unsigned long long)r->imp.rejected,
               (unsigned long long)r->imp.duplicates, (unsigned long long)r->imp.normalised,
               r->imp.error_rate <= 0.00005 ? "meets" : "misses",
               r->imp.report_path[0] ? "; rows listed in " : "", r->imp.report_path);
    }
}

int
demo_data_act(demo *d, uint64_t count, uint64_t seed, double dirty)
{
    printf("\n2. Each city generates and imports its public credit data (%llu enterprises\n"
           "   each, defect rate %.4f%%); every row is validated, bad ones quarantined.\n",
           (unsigned long long)count, dirty * 100.0);
    bg_gen_opts base = {
        .count = count, .seed = seed, .dirty_rate = dirty, .as_of = bg_date_today()};
    struct city_run runs[NDEMO];
    memset(runs, 0, sizeof runs);
    for (size_t i = 0; i < NDEMO; i++)
        if (load_city_data(d, i, &base, &runs[i]) != BG_EXIT_OK)
            return BG_EXIT_ERROR;
    print_data_summary(runs);
    return BG_EXIT_OK;
}
