/*
 * cmd_gen.c - baygate gen: write a city's synthetic credit data as CSV.
 *
 * A named output file is written to a temporary file beside it, synced and
 * renamed into place only on success, so a failed or interrupted run never
 * leaves a half-written data file under the real name.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "domain/date.h"
#include "domain/list.h"
#include "domain/uscc.h"
#include "gateway/cli/cli.h"
#include "gateway/gen/gen.h"

static const char *const defect_names[BG_DEFECT_COUNT] = {
    [BG_DEFECT_BAD_CHECK] = "bad-check", [BG_DEFECT_FULLWIDTH] = "fullwidth",
    [BG_DEFECT_LOWERCASE] = "lowercase", [BG_DEFECT_DUPLICATE] = "duplicate",
    [BG_DEFECT_MISSING] = "missing",
};

static void
gen_usage(FILE *f)
{
    fprintf(f, "usage: baygate gen --city CODE --count N [--seed S] [--share FILE --share-rate P]\n"
               "                   [--dirty R] [--as-of YYYY-MM-DD] [--out FILE.csv] [--quiet]\n\n"
               "Writes N rows of synthetic credit data for a city (CSV, the import format):\n"
               "valid USCCs in the city's districts, Chinese enterprise names, list\n"
               "memberships and ABCD grades. Same options and --as-of, same bytes.\n\n"
               "  --city CODE        prefecture-level city code:");
    for (size_t i = 0; bg_gen_cities[i] != NULL; i++)
        fprintf(f, " %s", bg_gen_cities[i]);
    fprintf(
        f,
        "\n"
        "  --count N          rows to write\n"
        "  --seed S           random seed (default 1)\n"
        "  --share FILE       another city's file: some rows reuse its enterprises\n"
        "  --share-rate P     fraction of rows taken from FILE (0..1; needs --share)\n"
        "  --dirty R          fraction of rows with one injected defect (0..1, default 0)\n"
        "  --as-of DATE       reference date; all dates fall around it (default today, UTC)\n"
        "  --out FILE         output file (default or '-': standard output)\n"
        "  -q, --quiet        no summary on standard error\n"
        "  -h, --help         show this help\n"
        "\n"
        "EXAMPLES\n"
        "  baygate gen --city 440300 --count 20000 --seed 7 --out sz.csv\n"
        "  baygate gen --city 440100 --count 20000 --share sz.csv --share-rate 0.1 --out gz.csv\n"
        "\n"
        "EXIT STATUS\n"
        "  0  written\n"
        "  2  usage or operational error\n");
}

static void
print_summary(const char *city, const bg_gen_stats *st, uint64_t want_shared, const char *dest)
{
    fprintf(stderr, "baygate gen: %s: %llu rows, %llu shared", city, (unsigned long long)st->rows,
            (unsigned long long)st->shared);
    if (st->shared < want_shared)
        fprintf(stderr, " (of %llu asked: the share file has no more usable enterprises)",
                (unsigned long long)want_shared);
    fprintf(stderr, ", listed");
    for (int l = 0; l < BG_LIST_COUNT; l++)
        fprintf(stderr, " %s %llu", bg_list_names[l], (unsigned long long)st->listed[l]);
    fprintf(stderr, ", graded %llu (A %llu B %llu C %llu D %llu)", (unsigned long long)st->graded,
            (unsigned long long)st->grades[0], (unsigned long long)st->grades[1],
            (unsigned long long)st->grades[2], (unsigned long long)st->grades[3]);
    uint64_t total = 0;
    for (int d = 0; d < BG_DEFECT_COUNT; d++)
        total += st->defects[d];
    fprintf(stderr, ", defects %llu (", (unsigned long long)total);
    for (int d = 0; d < BG_DEFECT_COUNT; d++)
        fprintf(stderr, "%s%s %llu", d ? " " : "", defect_names[d],
                (unsigned long long)st->defects[d]);
    fprintf(stderr, ") -> %s\n", dest);
}

/* Generates into a temporary file beside path, then renames it into place. */
static int
gen_to_file(const bg_gen_opts *opts, const char *path, bg_gen_stats *st)
{
    char tmp[4096];
    int n = snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", path);
    if (n < 0 || (size_t)n >= sizeof tmp)
        return bg_cli_fail("gen", "output path too long");
    int fd = mkstemp(tmp);
    if (fd < 0)
        return bg_cli_fail("gen", "cannot write %s: %s", path, strerror(errno));
    /* mkstemp makes the file 0600; a data file gets the usual mode. */
    mode_t mask = umask(0);
    umask(mask);
    (void)fchmod(fd, 0666 & ~mask);
    FILE *f = fdopen(fd, "wb");
    if (f == NULL) {
        int e = errno;
        close(fd);
        unlink(tmp);
        return bg_cli_fail("gen", "cannot open %s: %s", tmp, strerror(e));
    }
    bg_err err = {0};
    int rc = bg_gen_write(opts, f, st, &err);
    if (rc == BG_OK && fsync(fileno(f)) != 0)
        rc = bg_err_set(&err, BG_EIO, "syncing %s failed: %s", tmp, strerror(errno));
    if (fclose(f) != 0 && rc == BG_OK)
        rc = bg_err_set(&err, BG_EIO, "closing %s failed: %s", tmp, strerror(errno));
    if (rc == BG_OK && rename(tmp, path) != 0)
        rc = bg_err_set(&err, BG_EIO, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
    if (rc != BG_OK) {
        unlink(tmp);
        return bg_cli_fail("gen", "%s", err.msg);
    }
    return BG_EXIT_OK;
}

/* What the command line asks for. */
typedef struct gen_args {
    bg_gen_opts opts;
    const char *city, *out_path;
    bool have_count, have_rate, quiet;
} gen_args;

/* The options into g; *done when nothing is left to do (help shown, or an error whose
 * exit status is returned). */
static int
parse_args(int argc, char **argv, gen_args *g, bool *done)
{
    enum { OPT_SHARE = 256, OPT_SHARE_RATE, OPT_DIRTY, OPT_AS_OF };
    static const struct option longopts[] = {
        {"city", required_argument, NULL, 'c'},
        {"count", required_argument, NULL, 'n'},
        {"seed", required_argument, NULL, 's'},
        {"share", required_argument, NULL, OPT_SHARE},
        {"share-rate", required_argument, NULL, OPT_SHARE_RATE},
        {"dirty", required_argument, NULL, OPT_DIRTY},
        {"as-of", required_argument, NULL, OPT_AS_OF},
        {"out", required_argument, NULL, 'o'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bg_gen_opts *opts = &g->opts;
    *done = true;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":c:n:s:o:qh", longopts, NULL)) != -1) {
        bg_err err = {0};
        switch (c) {
        case 'c':
            g->city = optarg;
            break;
        case 'n':
            if (!bg_cli_parse_u64("gen", "--count", optarg, &opts->count))
                return BG_EXIT_ERROR;
            g->have_count = true;
            break;
        case 's':
            if (!bg_cli_parse_u64("gen", "--seed", optarg, &opts->seed))
                return BG_EXIT_ERROR;
            break;
        case OPT_SHARE:
            opts->share_path = optarg;
            break;
        case OPT_SHARE_RATE:
            if (!bg_cli_parse_rate("gen", "--share-rate", optarg, &opts->share_rate))
                return BG_EXIT_ERROR;
            g->have_rate = true;
            break;
        case OPT_DIRTY:
            if (!bg_cli_parse_rate("gen", "--dirty", optarg, &opts->dirty_rate))
                return BG_EXIT_ERROR;
            break;
        case OPT_AS_OF:
            if (bg_date_parse(optarg, strlen(optarg), &opts->as_of, &err) != BG_OK)
                return bg_cli_fail("gen", "--as-of: %s", err.msg);
            break;
        case 'o':
            g->out_path = optarg;
            break;
        case 'q':
            g->quiet = true;
            break;
        case 'h':
            gen_usage(stdout);
            return BG_EXIT_OK;
        default:
            return bg_cli_bad_option("gen", c, argv, longopts);
        }
    }
    if (optind < argc)
        return bg_cli_usage_error("gen", "unexpected argument '%s'", argv[optind]);
    *done = false;
    return BG_EXIT_OK;
}

/* What the options need of each other, and the city code into opts. */
static int
check_args(gen_args *g)
{
    if (g->city == NULL)
        return bg_cli_usage_error("gen", "--city is required");
    if (!g->have_count)
        return bg_cli_usage_error("gen", "--count is required");
    if (g->opts.share_path != NULL && !g->have_rate)
        return bg_cli_fail("gen", "--share needs --share-rate");
    if (g->have_rate && g->opts.share_path == NULL)
        return bg_cli_fail("gen", "--share-rate needs --share FILE");
    /* Too long to be a city code; the generator checks the rest. */
    if (strlen(g->city) >= sizeof g->opts.city) {
        char known[256];
        size_t n = 0;
        for (size_t i = 0; bg_gen_cities[i] != NULL && n < sizeof known; i++) {
            const char *name = bg_uscc_city_name(bg_gen_cities[i]);
            n += (size_t)snprintf(known + n, sizeof known - n, "%s%s %s", i ? ", " : "",
                                  bg_gen_cities[i], name ? name : "");
        }
        return bg_cli_fail("gen", "unknown city '%s' (known: %s)", g->city, known);
    }
    memcpy(g->opts.city, g->city, strlen(g->city) + 1);
    return BG_EXIT_OK;
}

int
bg_cmd_gen(int argc, char **argv)
{
    /* Today, so a generated city's evaluations are current when it is imported. */
    gen_args g = {.opts = {.seed = 1, .as_of = bg_date_today()}};
    bool done = false;
    int rc = parse_args(argc, argv, &g, &done);
    if (done)
        return rc;
    if (check_args(&g) != BG_EXIT_OK)
        return BG_EXIT_ERROR;

    bg_gen_stats st;
    bool to_stdout = g.out_path == NULL || strcmp(g.out_path, "-") == 0;
    if (to_stdout) {
        bg_err err = {0};
        if (bg_gen_write(&g.opts, stdout, &st, &err) != BG_OK)
            return bg_cli_fail("gen", "%s", err.msg);
        rc = BG_EXIT_OK;
    } else {
        rc = gen_to_file(&g.opts, g.out_path, &st);
    }
    if (rc == BG_EXIT_OK && !g.quiet) {
        uint64_t want = (uint64_t)(g.opts.share_rate * (double)g.opts.count + 0.5);
        print_summary(g.opts.city, &st, want > g.opts.count ? g.opts.count : want,
                      to_stdout ? "standard output" : g.out_path);
    }
    return rc;
}
