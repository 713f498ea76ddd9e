/*
 * cmd_demo.c - baygate demo: the scripted tour of what baygate does so far.
 *
 * Generates three cities' credit data (Shenzhen and Foshan share enterprises
 * with Guangzhou, as firms active in several cities do), with a small rate of
 * realistic defects, imports each into its own store and prints what each
 * store now holds and what the import refused.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "gen.h"
#include "import.h"
#include "record.h"
#include "store.h"
#include "uscc.h"

static const struct {
    const char *code;
    const char *share_with; /* index into the same table, or NULL */
} demo_cities[] = {
    {"440100", NULL},
    {"440300", "440100"},
    {"440600", "440100"},
};
#define NDEMO (sizeof demo_cities / sizeof demo_cities[0])

static void
demo_usage(FILE *f)
{
    fprintf(f, "usage: baygate demo [--dir DIR] [--count N] [--seed S] [--dirty R]\n\n"
               "Generates Guangzhou, Shenzhen and Foshan data (N rows each, default 20000;\n"
               "a tenth of Shenzhen's and Foshan's enterprises also operate in Guangzhou),\n"
               "injects defects at rate R (default 0.0005), imports each city into its own\n"
               "store under DIR (default ./baygate-demo) and prints a summary.\n");
}

/* Formats a path; a path that does not fit is an error, never a silent cut. */
static bool __attribute__((format(printf, 3, 4)))
path_fmt(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= size) {
        bg_cli_fail("demo", "path too long");
        return false;
    }
    return true;
}

/* Removes what an earlier demo run left, so every run starts from nothing. */
static int
reset_city_dir(const char *dir)
{
    static const char *const files[] = {"credit.db", "credit.db-wal", "credit.db-shm",
                                        "credit.db-journal"};
    char path[4096];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        if (!path_fmt(path, sizeof path, "%s/%s", dir, files[i]))
            return BG_EXIT_ERROR;
        if (unlink(path) != 0 && errno != ENOENT)
            return bg_cli_fail("demo", "cannot remove %s: %s", path, strerror(errno));
    }
    return BG_EXIT_OK;
}

static int
make_dir(const char *path)
{
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        return bg_cli_fail("demo", "cannot create %s: %s", path, strerror(errno));
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
run_city(const char *dir, size_t i, uint64_t count, uint64_t seed, double dirty,
         struct city_run *run)
{
    char csv[4096], share[4096], store_dir[4096];
    const char *code = demo_cities[i].code;
    bg_err err = {0};
    run->code = code;

    if (!path_fmt(csv, sizeof csv, "%s/data/%s.csv", dir, code) ||
        !path_fmt(store_dir, sizeof store_dir, "%s/%s", dir, code))
        return BG_EXIT_ERROR;
    bg_gen_opts g = {
        .count = count, .seed = seed + i, .dirty_rate = dirty, .as_of = bg_gen_default_as_of()};
    memcpy(g.city, code, 7);
    if (demo_cities[i].share_with != NULL) {
        if (!path_fmt(share, sizeof share, "%s/data/%s.csv", dir, demo_cities[i].share_with))
            return BG_EXIT_ERROR;
        g.share_path = share;
        g.share_rate = 0.10;
    }
    FILE *out = fopen(csv, "wb");
    if (out == NULL)
        return bg_cli_fail("demo", "cannot write %s: %s", csv, strerror(errno));
    int rc = bg_gen_write(&g, out, &run->gen, &err);
    if (fclose(out) != 0 && rc == BG_OK)
        rc = bg_err_set(&err, BG_EIO, "closing %s failed", csv);
    if (rc != BG_OK)
        return bg_cli_fail("demo", "generating %s: %s", code, err.msg);

    if (make_dir(store_dir) != BG_EXIT_OK || reset_city_dir(store_dir) != BG_EXIT_OK)
        return BG_EXIT_ERROR;
    bg_scale_default(&run->scale);
    bg_store *store = NULL;
    if (bg_store_open(&store, store_dir, code, &run->scale, &err) != BG_OK)
        return bg_cli_fail("demo", "opening the %s store: %s", code, err.msg);
    bg_import_opts io = {.mode = BG_IMPORT_QUARANTINE};
    rc = bg_import_file(store, csv, &io, &run->imp, &err);
    if (rc == BG_OK)
        rc = bg_store_counts_get(store, &run->counts, &err);
    bg_store_close(store);
    if (rc != BG_OK)
        return bg_cli_fail("demo", "importing %s: %s", csv, err.msg);
    return BG_EXIT_OK;
}

static void
print_summary(const struct city_run *runs, size_t n, const char *dir)
{
    printf("\n%-10s %-6s %8s %8s %10s %8s %10s  %9s %9s %8s  %s\n", "city", "code", "rows",
           "stored", "normalised", "rejected", "error rate", "dishonest", "abnormal", "graded",
           "A / B / C / D");
    for (size_t i = 0; i < n; i++) {
        const struct city_run *r = &runs[i];
        char grades[64] = "";
        size_t len = 0;
        for (size_t g = 0; g < r->scale.ngrades && len < sizeof grades; g++)
            len += (size_t)snprintf(grades + len, sizeof grades - len, "%s%llu", g ? " / " : "",
                                    (unsigned long long)r->counts.by_grade[g]);
        printf("%-10s %-6s %8llu %8llu %10llu %8llu %9.4f%%  %9llu %9llu %8llu  %s\n",
               bg_uscc_city_name(r->code), r->code, (unsigned long long)r->imp.rows,
               (unsigned long long)r->counts.enterprises, (unsigned long long)r->imp.normalised,
               (unsigned long long)r->imp.rejected, r->imp.error_rate * 100.0,
               (unsigned long long)r->counts.listed[BG_LIST_SERIOUS_DISHONESTY],
               (unsigned long long)r->counts.listed[BG_LIST_ABNORMAL_OPERATION],
               (unsigned long long)r->counts.evaluations, grades);
    }
    printf("\nenterprises active in several cities:\n");
    for (size_t i = 0; i < n; i++)
        if (demo_cities[i].share_with != NULL)
            printf("  %llu of %s's rows are enterprises also registered with %s\n",
                   (unsigned long long)runs[i].gen.shared, bg_uscc_city_name(runs[i].code),
                   bg_uscc_city_name(demo_cities[i].share_with));
    printf("\nwhat the imports refused (the plan's target error rate is <= 0.005%%):\n");
    for (size_t i = 0; i < n; i++) {
        const struct city_run *r = &runs[i];
        printf("  %-10s %llu rejected (%llu duplicates), %llu codes repaired by normalising;"
               " %s target%s%s\n",
               bg_uscc_city_name(r->code), (unsigned long long)r->imp.rejected,
               (unsigned long long)r->imp.duplicates, (unsigned long long)r->imp.normalised,
               r->imp.error_rate <= 0.00005 ? "meets" : "misses",
               r->imp.report_path[0] ? "; details in " : "", r->imp.report_path);
    }
    printf("\nstores: %s/<city>/credit.db    data files: %s/data/<city>.csv\n", dir, dir);
}

int
bg_cmd_demo(int argc, char **argv)
{
    static const struct option opts[] = {
        {"dir", required_argument, NULL, 'd'},  {"count", required_argument, NULL, 'n'},
        {"seed", required_argument, NULL, 's'}, {"dirty", required_argument, NULL, 'r'},
        {"help", no_argument, NULL, 'h'},       {NULL, 0, NULL, 0},
    };
    const char *dir = "baygate-demo";
    uint64_t count = 20000, seed = 2021;
    double dirty = 0.0005;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "d:n:s:r:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'd':
            dir = optarg;
            break;
        case 'n':
            if (!bg_cli_parse_u64("demo", "--count", optarg, &count))
                return BG_EXIT_ERROR;
            break;
        case 's':
            if (!bg_cli_parse_u64("demo", "--seed", optarg, &seed))
                return BG_EXIT_ERROR;
            break;
        case 'r':
            if (!bg_cli_parse_rate("demo", "--dirty", optarg, &dirty))
                return BG_EXIT_ERROR;
            break;
        case 'h':
            demo_usage(stdout);
            return BG_EXIT_OK;
        default:
            demo_usage(stderr);
            return BG_EXIT_ERROR;
        }
    }
    if (optind != argc) {
        demo_usage(stderr);
        return BG_EXIT_ERROR;
    }
    if (count == 0 || count > 10000000)
        return bg_cli_fail("demo", "--count must be 1..10000000");

    char data_dir[4096];
    if (!path_fmt(data_dir, sizeof data_dir, "%s/data", dir))
        return BG_EXIT_ERROR;
    if (make_dir(dir) != BG_EXIT_OK || make_dir(data_dir) != BG_EXIT_OK)
        return BG_EXIT_ERROR;

    printf("baygate demo: Guangzhou, Shenzhen and Foshan each generate and import their\n"
           "public credit data (%llu enterprises each, defect rate %.4f%%).\n",
           (unsigned long long)count, dirty * 100.0);
    struct city_run runs[NDEMO];
    memset(runs, 0, sizeof runs);
    for (size_t i = 0; i < NDEMO; i++) {
        printf("  %s (%s): generating and importing...\n", bg_uscc_city_name(demo_cities[i].code),
               demo_cities[i].code);
        fflush(stdout);
        int rc = run_city(dir, i, count, seed, dirty, &runs[i]);
        if (rc != BG_EXIT_OK)
            return rc;
    }
    print_summary(runs, NDEMO, dir);
    return BG_EXIT_OK;
}
