/*
 * cmd_import.c - baygate import: validate a city data file and load it into the store.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/json.h"
#include "domain/uscc.h"
#include "gateway/cli/cli.h"
#include "gateway/store/import.h"
#include "gateway/store/store.h"

static const char *const CMD = "import";

static void
usage(FILE *f)
{
    fprintf(f,
            "usage: baygate import --data-dir DIR [options] FILE.csv\n"
            "\n"
            "Validates every row of a city data file (USCC check characters, dates, grades,\n"
            "list fields) and imports it into DIR/credit.db in one transaction.\n"
            "\n"
            "options:\n"
            "  --data-dir DIR   the store's directory (created 0700 if missing)\n"
            "  --city CODE      6-digit city code; required to create a store, checked otherwise\n"
            "  --scale SPEC     grade scale for a new store, NAME=A,B,C,D (default ABCD=A,B,C,D)\n"
            "  --strict         import nothing if any row is bad (exit 1)\n"
            "  --force          import even if this exact file was imported before\n"
            "  --report FILE    where rejected, duplicate and conflicting rows are listed\n"
            "                   (default FILE.csv.rejects.csv; written only if there are any)\n"
            "  --json           print one JSON object instead of the summary\n"
            "  --quiet          no progress on stderr\n"
            "  --help           this text\n"
            "\n"
            "Bad rows are quarantined to the report and the rest imported (exit 0), unless\n"
            "--strict. Exit status: 0 imported or already imported, 1 strict import aborted,\n"
            "2 usage or operational error.\n");
}

typedef struct progress_ctx {
    bool show;
    struct timespec start, last;
} progress_ctx;

static double
seconds_since(const struct timespec *t)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t->tv_sec) + (double)(now.tv_nsec - t->tv_nsec) / 1e9;
}

static void
on_progress(void *ctx, bg_import_phase phase, uint64_t rows)
{
    progress_ctx *p = ctx;
    if (!p->show)
        return;
    switch (phase) {
    case BG_IMPORT_PHASE_DIGEST:
        fprintf(stderr, "\rhashing the file...\033[K");
        break;
    case BG_IMPORT_PHASE_ROWS: {
        /* At most ~10 updates a second: a terminal is slower than the import. */
        if (rows != 0 && seconds_since(&p->last) < 0.1)
            return;
        clock_gettime(CLOCK_MONOTONIC, &p->last);
        double s = seconds_since(&p->start);
        fprintf(stderr, "\r%llu rows, %.0f rows/s\033[K", (unsigned long long)rows,
                s > 0 ? (double)rows / s : 0.0);
        break;
    }
    case BG_IMPORT_PHASE_COMMIT:
        fprintf(stderr, "\r%llu rows, committing...\033[K", (unsigned long long)rows);
        break;
    case BG_IMPORT_PHASE_DONE:
        fprintf(stderr, "\r\033[K");
        break;
    }
    fflush(stderr);
}

/* The plan's target: USCC error rate at most 0.005 % = 1 in 20000. */
static bool
meets_target(const bg_import_result *r)
{
    return r->rejected * 20000 <= r->rows;
}

static void
print_json(const char *status, const char *file, bg_store *s, const bg_import_result *r,
           double secs, const char *error)
{
    printf("{\"status\":");
    bg_json_cstr(stdout, status);
    printf(",\"file\":");
    bg_json_cstr(stdout, file);
    printf(",\"store\":");
    bg_json_cstr(stdout, bg_store_path(s));
    printf(",\"city\":");
    bg_json_cstr(stdout, bg_store_city(s));
    printf(",\"digest\":");
    bg_json_cstr(stdout, r->digest_hex);
    printf(",\"import_id\":%lld,\"previous_import\":%lld", (long long)r->import_id,
           (long long)r->previous_import);
    printf(",\"rows\":%llu,\"inserted\":%llu,\"updated\":%llu,\"unchanged\":%llu,"
           "\"rejected\":%llu,\"duplicates\":%llu,\"conflicts\":%llu,\"normalised\":%llu",
           (unsigned long long)r->rows, (unsigned long long)r->inserted,
           (unsigned long long)r->updated, (unsigned long long)r->unchanged,
           (unsigned long long)r->rejected, (unsigned long long)r->duplicates,
           (unsigned long long)r->updated, (unsigned long long)r->normalised);
    printf(",\"listed\":{");
    for (int l = 0; l < BG_LIST_COUNT; l++) {
        printf("%s", l ? "," : "");
        bg_json_cstr(stdout, bg_list_names[l]);
        printf(":%llu", (unsigned long long)r->listed[l]);
    }
    printf("},\"graded\":%llu,\"error_rate\":%.9f,\"error_rate_percent\":\"%.4f\","
           "\"meets_target\":%s,\"report\":",
           (unsigned long long)r->graded, r->error_rate, r->error_rate * 100.0,
           meets_target(r) ? "true" : "false");
    bg_json_cstr(stdout, r->report_path[0] ? r->report_path : NULL);
    printf(",\"seconds\":%.3f,\"error\":", secs);
    bg_json_cstr(stdout, error);
    printf("}\n");
}

static void
print_summary(const char *verb, const char *file, bg_store *s, const bg_import_result *r,
              double secs)
{
    const char *city = bg_store_city(s);
    const char *cname = bg_uscc_city_name(city);
    printf("%s %s into %s (city %s%s%s)", verb, file, bg_store_path(s), city, cname ? " " : "",
           cname ? cname : "");
    if (r->import_id)
        printf(", import #%lld", (long long)r->import_id);
    printf("\n");
    printf("  rows        %llu\n", (unsigned long long)r->rows);
    printf("  inserted    %llu\n", (unsigned long long)r->inserted);
    printf("  updated     %llu%s\n", (unsigned long long)r->updated,
           r->updated ? "  (conflicts with the store, listed in the report)" : "");
    printf("  unchanged   %llu\n", (unsigned long long)r->unchanged);
    printf("  rejected    %llu  (%llu duplicate%s within the file)\n",
           (unsigned long long)r->rejected, (unsigned long long)r->duplicates,
           r->duplicates == 1 ? "" : "s");
    printf("  normalised  %llu  (USCCs accepted after trimming, full-width or case folding)\n",
           (unsigned long long)r->normalised);
    for (int l = 0; l < BG_LIST_COUNT; l++)
        printf("  %-22s %llu listed\n", bg_list_names[l], (unsigned long long)r->listed[l]);
    printf("  graded      %llu\n", (unsigned long long)r->graded);
    printf("  error rate  %.4f %%  (%s the plan's target of at most 0.005 %%)\n",
           r->error_rate * 100.0, meets_target(r) ? "meets" : "ABOVE");
    printf("  report      %s\n", r->report_path[0] ? r->report_path : "(none: nothing to report)");
    if (secs > 0)
        printf("  took        %.2f s (%.0f rows/s)\n", secs, (double)r->rows / secs);
}

/* What the command line asks for. */
typedef struct import_args {
    const char *data_dir, *city, *scale_spec, *report, *file;
    bool strict, force, json, quiet;
} import_args;

/* The options into a; *done when nothing is left to do (help shown, or an error whose
 * exit status is returned). */
static int
parse_args(int argc, char **argv, import_args *a, bool *done)
{
    static const struct option longopts[] = {
        {"data-dir", required_argument, NULL, 'd'}, {"city", required_argument, NULL, 'c'},
        {"scale", required_argument, NULL, 's'},    {"strict", no_argument, NULL, 'S'},
        {"force", no_argument, NULL, 'f'},          {"report", required_argument, NULL, 'r'},
        {"json", no_argument, NULL, 'j'},           {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
    };
    *done = true;
    optind = 1;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (ch) {
        case 'd':
            a->data_dir = optarg;
            break;
        case 'c':
            a->city = optarg;
            break;
        case 's':
            a->scale_spec = optarg;
            break;
        case 'S':
            a->strict = true;
            break;
        case 'f':
            a->force = true;
            break;
        case 'r':
            a->report = optarg;
            break;
        case 'j':
            a->json = true;
            break;
        case 'q':
            a->quiet = true;
            break;
        case 'h':
            usage(stdout);
            return BG_EXIT_OK;
        default:
            return bg_cli_bad_option(CMD, ch, argv);
        }
    }
    if (optind != argc - 1)
        return bg_cli_fail(CMD, "%s; see 'baygate import --help'",
                           optind >= argc ? "no input file given" : "give exactly one input file");
    a->file = argv[optind];
    if (a->data_dir == NULL)
        return bg_cli_fail(CMD, "--data-dir is required");
    *done = false;
    return BG_EXIT_OK;
}

/* Prints how the import went (JSON or text); returns the exit status. */
static int
report_result(const import_args *a, bg_store *s, int rc, const bg_import_result *r, double secs,
              const bg_err *err)
{
    const char *file = a->file;
    if (rc == BG_OK && r->already_imported) {
        if (a->json)
            print_json("already-imported", file, s, r, secs, NULL);
        else
            printf("%s: already imported (digest %.16s..., import #%lld); use --force to "
                   "import it again\n",
                   file, r->digest_hex, (long long)r->previous_import);
        return BG_EXIT_OK;
    }
    if (rc == BG_OK) {
        if (a->json)
            print_json("imported", file, s, r, secs, NULL);
        else
            print_summary("imported", file, s, r, secs);
        return BG_EXIT_OK;
    }
    if (rc == BG_EABORTED) {
        if (a->json) {
            print_json("aborted", file, s, r, secs, err->msg);
        } else {
            print_summary("strict: NOT imported", file, s, r, 0);
            bg_cli_fail(CMD, "strict: %s", err->msg);
        }
        return BG_EXIT_FAIL;
    }
    if (a->json)
        print_json("error", file, s, r, secs, err->msg);
    bg_cli_fail(CMD, "%s", err->msg);
    return BG_EXIT_ERROR;
}

int
bg_cmd_import(int argc, char **argv)
{
    import_args a = {0};
    bool done = false;
    int ex = parse_args(argc, argv, &a, &done);
    if (done)
        return ex;

    bg_err err;
    bg_scale scale;
    if (a.scale_spec != NULL && bg_scale_parse(a.scale_spec, &scale, &err) != BG_OK)
        return bg_cli_fail(CMD, "--scale: %s", err.msg);

    bg_store *s = NULL;
    if (bg_store_open(&s, a.data_dir, a.city, a.scale_spec ? &scale : NULL, &err) != BG_OK)
        return bg_cli_fail(CMD, "%s", err.msg);

    progress_ctx pc = {.show = !a.quiet && isatty(2)};
    clock_gettime(CLOCK_MONOTONIC, &pc.start);
    pc.last = pc.start;
    bg_import_opts opts = {
        .mode = a.strict ? BG_IMPORT_STRICT : BG_IMPORT_QUARANTINE,
        .force = a.force,
        .report_path = a.report,
        .progress = on_progress,
        .progress_ctx = &pc,
    };
    bg_import_result r;
    int rc = bg_import_file(s, a.file, &opts, &r, &err);
    double secs = seconds_since(&pc.start);
    if (pc.show)
        fprintf(stderr, "\r\033[K");
    ex = report_result(&a, s, rc, &r, secs, &err);
    bg_store_close(s);
    return ex;
}
