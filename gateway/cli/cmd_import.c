/*
 * cmd_import.c - baygate import: validate a city data file and load it into the store.
 */
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/json.h"
#include "domain/list.h"
#include "domain/uscc.h"
#include "gateway/cli/cli.h"
#include "gateway/config/config.h"
#include "gateway/store/import.h"
#include "gateway/store/store.h"

static const char *const CMD = "import";

static void
usage(FILE *f)
{
    fprintf(f,
            "usage: baygate import (--dir GW | --data-dir DIR) [options] FILE.csv\n"
            "\n"
            "Validates every row of a city data file (USCC check characters, dates, grades,\n"
            "list fields) and imports it into the store in one transaction.\n"
            "\n"
            "A row changes only what its cells say: columns the file does not have, and empty\n"
            "cells, leave the stored grade and list entries as they are. To remove entries,\n"
            "say the file is a list's full state with --replace: then enterprises whose cells\n"
            "are empty, or that the file does not mention, lose that list's entry.\n"
            "\n"
            "options:\n"
            "  --dir GW         the gateway directory: its data directory and city\n"
            "  --data-dir DIR   the store's directory instead (created 0700 if missing)\n"
            "  --city CODE      6-digit city code; required to create a store, checked otherwise\n"
            "  --scale SPEC     grade scale for a new store, NAME=A,B,C,D (default ABCD=A,B,C,D)\n"
            "  --replace WHAT   the file is the full state of WHAT: a list (serious-dishonesty,\n"
            "                   abnormal-operation), grades, or all; repeatable\n"
            "  --max-remove PCT refuse a replace that removes more than PCT %% of a list's\n"
            "                   entries (default 10)\n"
            "  --yes            remove them anyway\n"
            "  --dry-run        show what would change; write nothing\n"
            "  --strict         import nothing if any row is bad (exit 1)\n"
            "  --force          import even if this exact file was imported before\n"
            "  --report FILE    where rejected rows, changes and removals are listed\n"
            "                   (default FILE.csv.rejects.csv; written only if there are any)\n"
            "  --json           print one JSON object instead of the summary: status, file,\n"
            "                   store, city, digest, import_id, the counts in this file (rows,\n"
            "                   inserted, updated, unchanged, rejected, duplicates, normalised;\n"
            "                   lists.<list> and grades: in_file, added, changed, unchanged,\n"
            "                   removed, before; grades.by_grade), expired, other_city, totals\n"
            "                   (the store after), warnings, error\n"
            "  --quiet          no progress on stderr\n"
            "  --help           this text\n"
            "\n"
            "Evaluations already past their valid_until are imported with a warning (the\n"
            "gateway never publishes them as current). Bad rows are quarantined to the\n"
            "report and the rest imported (exit 0), unless --strict.\n"
            "\n"
            "EXAMPLES\n"
            "  baygate import --dir GZ credit.csv\n"
            "  baygate import --dir GZ --dry-run --replace serious-dishonesty full-list.csv\n"
            "\n"
            "EXIT STATUS\n"
            "  0  imported, already imported or dry run\n"
            "  1  strict import aborted or removal refused\n"
            "  2  usage or operational error\n");
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

/* Warnings about the store or the file: printed on stderr, and kept for --json. */
#define WARN_MAX 4
typedef struct warnings {
    size_t n;
    char msg[WARN_MAX][BG_ERR_MSG_MAX];
} warnings;

static void warn(warnings *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
warn(warnings *w, const char *fmt, ...)
{
    if (w->n == WARN_MAX)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->msg[w->n], sizeof w->msg[0], fmt, ap);
    va_end(ap);
    w->n++;
}

static const char *
city_label(const char *city)
{
    const char *n = bg_uscc_city_name(city);
    return n ? n : "unknown city";
}

/* ---- JSON ---- */

static void
json_delta(const bg_import_delta *d)
{
    printf("\"in_file\":%llu,\"added\":%llu,\"changed\":%llu,\"unchanged\":%llu,"
           "\"removed\":%llu,\"before\":%llu",
           (unsigned long long)d->in_file, (unsigned long long)d->added,
           (unsigned long long)d->changed, (unsigned long long)d->unchanged,
           (unsigned long long)d->removed, (unsigned long long)d->before);
}

static void
json_counts(const bg_store *s, const bg_import_result *r)
{
    const bg_scale *sc = bg_store_scale(s);
    printf(",\"rows\":%llu,\"inserted\":%llu,\"updated\":%llu,\"unchanged\":%llu,"
           "\"rejected\":%llu,\"duplicates\":%llu,\"normalised\":%llu",
           (unsigned long long)r->rows, (unsigned long long)r->inserted,
           (unsigned long long)r->updated, (unsigned long long)r->unchanged,
           (unsigned long long)r->rejected, (unsigned long long)r->duplicates,
           (unsigned long long)r->normalised);
    printf(",\"lists\":{");
    for (int l = 0; l < BG_LIST_COUNT; l++) {
        printf("%s\"%s\":{", l ? "," : "", bg_list_names[l]);
        json_delta(&r->lists[l]);
        printf("}");
    }
    printf("},\"grades\":{");
    json_delta(&r->grades);
    printf(",\"by_grade\":{");
    for (size_t g = 0; g < sc->ngrades; g++) {
        printf("%s", g ? "," : "");
        bg_json_cstr(stdout, sc->grades[g]);
        printf(":{\"added\":%llu,\"removed\":%llu}", (unsigned long long)r->grade_added[g],
               (unsigned long long)r->grade_removed[g]);
    }
    printf("}},\"expired\":{\"count\":%llu,\"first\":[", (unsigned long long)r->expired);
    for (uint64_t i = 0; i < r->expired && i < BG_IMPORT_EXPIRED_SHOWN; i++)
        printf("%s\"%s\"", i ? "," : "", r->expired_uscc[i]);
    printf("]},\"other_city\":{\"rows\":%llu,\"most\":", (unsigned long long)r->foreign);
    bg_json_cstr(stdout, r->foreign ? r->foreign_city : NULL);
    printf(",\"most_rows\":%llu}", (unsigned long long)r->foreign_city_rows);
}

static void
json_totals(const bg_store *s, const bg_store_counts *t)
{
    const bg_scale *sc = bg_store_scale(s);
    printf(",\"totals\":{\"enterprises\":%llu,\"evaluations\":%llu,\"by_grade\":{",
           (unsigned long long)t->enterprises, (unsigned long long)t->evaluations);
    for (size_t g = 0; g < sc->ngrades; g++) {
        printf("%s", g ? "," : "");
        bg_json_cstr(stdout, sc->grades[g]);
        printf(":%llu", (unsigned long long)t->by_grade[g]);
    }
    printf("},\"lists\":{");
    for (int l = 0; l < BG_LIST_COUNT; l++)
        printf("%s\"%s\":%llu", l ? "," : "", bg_list_names[l], (unsigned long long)t->listed[l]);
    printf("},\"imports\":%llu}", (unsigned long long)t->imports);
}

static void
print_json(const char *status, const char *file, bg_store *s, const bg_import_result *r,
           double secs, const warnings *w, const char *error)
{
    printf("{\"status\":");
    bg_json_cstr(stdout, status);
    printf(",\"dry_run\":%s,\"file\":", r->dry_run ? "true" : "false");
    bg_json_cstr(stdout, file);
    printf(",\"store\":");
    bg_json_cstr(stdout, bg_store_path(s));
    printf(",\"city\":");
    bg_json_cstr(stdout, bg_store_city(s));
    printf(",\"digest\":");
    bg_json_cstr(stdout, r->digest_hex);
    printf(",\"import_id\":%lld,\"previous_import\":%lld", (long long)r->import_id,
           (long long)r->previous_import);
    json_counts(s, r);
    printf(",\"removal_over_limit\":%s", r->removal_over_limit ? "true" : "false");
    json_totals(s, &r->totals);
    printf(",\"error_rate\":%.9f,\"error_rate_percent\":\"%.4f\",\"meets_target\":%s,"
           "\"report\":",
           r->error_rate, r->error_rate * 100.0, meets_target(r) ? "true" : "false");
    bg_json_cstr(stdout, r->report_path[0] ? r->report_path : NULL);
    printf(",\"seconds\":%.3f,\"warnings\":[", secs);
    for (size_t i = 0; i < w->n; i++) {
        printf("%s", i ? "," : "");
        bg_json_cstr(stdout, w->msg[i]);
    }
    printf("],\"error\":");
    bg_json_cstr(stdout, error);
    printf("}\n");
}

/* ---- text ---- */

static void
print_deltas(const bg_store *s, const bg_import_result *r)
{
    printf("  %-20s %8s %8s %8s %9s %8s\n", "", "in file", "added", "changed", "unchanged",
           "removed");
    for (int l = 0; l <= BG_LIST_COUNT; l++) {
        const bg_import_delta *d = l < BG_LIST_COUNT ? &r->lists[l] : &r->grades;
        printf("  %-20s %8llu %8llu %8llu %9llu %8llu\n",
               l < BG_LIST_COUNT ? bg_list_names[l] : "grades", (unsigned long long)d->in_file,
               (unsigned long long)d->added, (unsigned long long)d->changed,
               (unsigned long long)d->unchanged, (unsigned long long)d->removed);
    }
    const bg_scale *sc = bg_store_scale(s);
    printf("  by grade           ");
    for (size_t g = 0; g < sc->ngrades; g++)
        printf(" %s +%llu -%llu", sc->grades[g], (unsigned long long)r->grade_added[g],
               (unsigned long long)r->grade_removed[g]);
    printf("\n");
}

static void
print_totals(const bg_store *s, const bg_store_counts *t, bool dry_run)
{
    const bg_scale *sc = bg_store_scale(s);
    printf("store totals %s:\n", dry_run ? "after (dry run: what they would be)" : "after");
    printf("  enterprises %llu, evaluations %llu (", (unsigned long long)t->enterprises,
           (unsigned long long)t->evaluations);
    for (size_t g = 0; g < sc->ngrades; g++)
        printf("%s%s %llu", g ? ", " : "", sc->grades[g], (unsigned long long)t->by_grade[g]);
    printf(")");
    for (int l = 0; l < BG_LIST_COUNT; l++)
        printf(", %s %llu", bg_list_names[l], (unsigned long long)t->listed[l]);
    printf(", imports %llu\n", (unsigned long long)t->imports);
}

static void
print_summary(const char *verb, const char *file, bg_store *s, const bg_import_result *r,
              double secs)
{
    const char *city = bg_store_city(s);
    printf("%s %s into %s (city %s %s)", verb, file, bg_store_path(s), city, city_label(city));
    if (r->import_id)
        printf(", import #%lld", (long long)r->import_id);
    printf("\nin this file:\n");
    printf("  rows        %llu\n", (unsigned long long)r->rows);
    printf("  new         %llu  (enterprises new to the store)\n", (unsigned long long)r->inserted);
    printf("  changed     %llu  (known enterprises whose data changed%s)\n",
           (unsigned long long)r->updated, r->updated ? ", listed in the report" : "");
    printf("  unchanged   %llu\n", (unsigned long long)r->unchanged);
    printf("  rejected    %llu  (%llu duplicate%s within the file)\n",
           (unsigned long long)r->rejected, (unsigned long long)r->duplicates,
           r->duplicates == 1 ? "" : "s");
    printf("  normalised  %llu  (USCCs accepted after trimming, full-width or case folding)\n",
           (unsigned long long)r->normalised);
    print_deltas(s, r);
    printf("  error rate  %.4f %%  (%s the plan's target of at most 0.005 %%)\n",
           r->error_rate * 100.0, meets_target(r) ? "meets" : "ABOVE");
    if (!r->dry_run)
        printf("  report      %s\n",
               r->report_path[0] ? r->report_path : "(none: nothing to report)");
    if (secs > 0)
        printf("  took        %.2f s (%.0f rows/s)\n", secs, (double)r->rows / secs);
    print_totals(s, &r->totals, r->dry_run);
}

/* ---- options ---- */

/* What the command line asks for. */
typedef struct import_args {
    const char *gw_dir, *data_dir, *city, *scale_spec, *report, *file;
    bool strict, force, json, quiet, dry_run, yes;
    unsigned replace;
    double max_remove;
    bg_config cfg; /* when --dir */
} import_args;

static bool
parse_replace(const char *v, unsigned *bits)
{
    if (strcmp(v, "all") == 0) {
        *bits |= BG_IMPORT_REPLACE_ALL;
        return true;
    }
    if (strcmp(v, BG_LIST_GRADES) == 0) {
        *bits |= BG_IMPORT_REPLACE_GRADES;
        return true;
    }
    int l = bg_list_index(v, strlen(v));
    if (l < 0)
        return false;
    *bits |= BG_IMPORT_REPLACE_LIST(l);
    return true;
}

static int
parse_option(int ch, import_args *a)
{
    switch (ch) {
    case 'D':
        a->gw_dir = optarg;
        break;
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
    case 'n':
        a->dry_run = true;
        break;
    case 'y':
        a->yes = true;
        break;
    case 'R':
        if (!parse_replace(optarg, &a->replace))
            return bg_cli_fail(CMD,
                               "--replace: '%s' is not serious-dishonesty, abnormal-operation, "
                               "grades or all",
                               optarg);
        break;
    case 'm': {
        char *end = NULL;
        double v = strtod(optarg, &end);
        if (end == optarg || *end != '\0' || !(v >= 0 && v <= 100))
            return bg_cli_fail(CMD, "--max-remove: '%s' is not a percentage (0..100)", optarg);
        /* 0 % means "no removal without --yes": the library's 0 is its default. */
        a->max_remove = v == 0 ? 1e-9 : v;
        break;
    }
    default:
        return BG_EXIT_ERROR;
    }
    return BG_EXIT_OK;
}

/* The options into a; *done when nothing is left to do (help shown, or an error whose
 * exit status is returned). */
static int
parse_args(int argc, char **argv, import_args *a, bool *done)
{
    static const struct option longopts[] = {
        {"dir", required_argument, NULL, 'D'},
        {"data-dir", required_argument, NULL, 'd'},
        {"city", required_argument, NULL, 'c'},
        {"scale", required_argument, NULL, 's'},
        {"strict", no_argument, NULL, 'S'},
        {"force", no_argument, NULL, 'f'},
        {"report", required_argument, NULL, 'r'},
        {"json", no_argument, NULL, 'j'},
        {"quiet", no_argument, NULL, 'q'},
        {"dry-run", no_argument, NULL, 'n'},
        {"replace", required_argument, NULL, 'R'},
        {"max-remove", required_argument, NULL, 'm'},
        {"yes", no_argument, NULL, 'y'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    *done = true;
    optind = 1;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        if (ch == 'h') {
            usage(stdout);
            return BG_EXIT_OK;
        }
        if (ch == '?' || ch == ':')
            return bg_cli_bad_option(CMD, ch, argv, longopts);
        if (parse_option(ch, a) != BG_EXIT_OK)
            return BG_EXIT_ERROR;
    }
    if (optind != argc - 1)
        return bg_cli_usage_error(
            CMD, "%s", optind >= argc ? "no input file given" : "give exactly one input file");
    a->file = argv[optind];
    if (a->data_dir == NULL && a->gw_dir == NULL)
        return bg_cli_usage_error(CMD, "--dir GW or --data-dir DIR is required");
    *done = false;
    return BG_EXIT_OK;
}

/* ---- the gateway the store belongs to ---- */

/* Same directory? By inode when both exist, else by name. */
static bool
same_dir(const char *a, const char *b)
{
    struct stat sa, sb;
    if (stat(a, &sa) == 0 && stat(b, &sb) == 0)
        return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
    return strcmp(a, b) == 0;
}

/* --dir: the gateway's data directory and city (--city must agree). */
static int
load_gateway(import_args *a)
{
    char path[BG_CONFIG_PATH_MAX + 32];
    bg_err err;
    if (snprintf(path, sizeof path, "%s/%s", a->gw_dir, BG_CONFIG_FILE) >= (int)sizeof path)
        return bg_cli_fail(CMD, "gateway directory path too long");
    if (bg_config_load(path, &a->cfg, &err) != BG_OK)
        return bg_cli_fail(CMD, "%s", err.msg);
    if (a->city != NULL && strcmp(a->city, a->cfg.city) != 0)
        return bg_cli_fail(CMD, "--city %s, but the gateway in %s is city %s (%s)", a->city,
                           a->gw_dir, a->cfg.city, city_label(a->cfg.city));
    a->city = a->cfg.city;
    if (a->data_dir == NULL)
        a->data_dir = a->cfg.data_dir;
    return BG_EXIT_OK;
}

/* A store no gateway reads is published by none: warn when --data-dir is not the data
 * directory of the gateway given (--dir) or of the one it sits in (DIR/../baygate.ini). */
static void
check_store_use(const import_args *a, warnings *w)
{
    if (a->gw_dir != NULL) {
        if (!same_dir(a->data_dir, a->cfg.data_dir))
            warn(w,
                 "the gateway in %s reads its store from %s, not %s: it will not publish this "
                 "import",
                 a->gw_dir, a->cfg.data_dir, a->data_dir);
        return;
    }
    char ini[PATH_MAX + 32];
    if (snprintf(ini, sizeof ini, "%s/../%s", a->data_dir, BG_CONFIG_FILE) >= (int)sizeof ini)
        return;
    bg_config cfg;
    if (bg_config_load(ini, &cfg, NULL) != BG_OK)
        return;
    if (!same_dir(a->data_dir, cfg.data_dir))
        warn(w,
             "%s is not the store of the gateway in %s (it reads %s): that gateway will not "
             "publish this import",
             a->data_dir, cfg.dir, cfg.data_dir);
}

/* After the rows: expired evaluations, and a file that looks like another city's. */
static void
check_rows(bg_store *s, const bg_import_result *r, warnings *w)
{
    if (r->expired > 0) {
        char first[BG_IMPORT_EXPIRED_SHOWN * 20 + 8] = "";
        size_t n = 0;
        for (uint64_t i = 0; i < r->expired && i < BG_IMPORT_EXPIRED_SHOWN; i++)
            n += (size_t)snprintf(first + n, sizeof first - n, "%s%s", i ? ", " : "",
                                  r->expired_uscc[i]);
        warn(w,
             "%llu evaluation%s already past valid_until (%s%s): stored, but never published "
             "as current",
             (unsigned long long)r->expired, r->expired == 1 ? " is" : "s are", first,
             r->expired > BG_IMPORT_EXPIRED_SHOWN ? ", ..." : "");
    }
    uint64_t accepted = r->rows - r->rejected;
    if (accepted > 0 && r->foreign * 2 > accepted) {
        const char *city = bg_store_city(s);
        warn(w,
             "%llu of %llu rows are enterprises registered in other cities' divisions (most: "
             "%s %s, %llu rows), but the store is %s %s's: is this the right file?",
             (unsigned long long)r->foreign, (unsigned long long)accepted, r->foreign_city,
             city_label(r->foreign_city), (unsigned long long)r->foreign_city_rows, city,
             city_label(city));
    }
}

/* Prints how the import went (JSON or text); returns the exit status. */
static int
report_result(const import_args *a, bg_store *s, int rc, const bg_import_result *r, double secs,
              const bg_err *err, const warnings *w)
{
    const char *file = a->file;
    if (!a->json)
        for (size_t i = 0; i < w->n; i++)
            fprintf(stderr, "baygate import: warning: %s\n", w->msg[i]);
    if (rc == BG_OK && r->already_imported) {
        if (a->json)
            print_json("already-imported", file, s, r, secs, w, NULL);
        else
            printf("%s: already imported (digest %.16s..., import #%lld); use --force to "
                   "import it again\n",
                   file, r->digest_hex, (long long)r->previous_import);
        return BG_EXIT_OK;
    }
    if (rc == BG_OK) {
        if (a->json) {
            print_json(r->dry_run ? "dry-run" : "imported", file, s, r, secs, w, NULL);
        } else {
            print_summary(r->dry_run ? "dry run (nothing written):" : "imported", file, s, r, secs);
            if (r->dry_run && r->removal_over_limit)
                printf("a real import would be refused: it removes more than --max-remove of a "
                       "list (add --yes to remove them)\n");
        }
        return BG_EXIT_OK;
    }
    if (rc == BG_EABORTED && r->removal_over_limit) {
        if (a->json)
            print_json("refused", file, s, r, secs, w, err->msg);
        else
            bg_cli_fail(CMD,
                        "%s; look with --dry-run, then run again with --yes to remove them "
                        "(or raise --max-remove PCT)",
                        err->msg);
        return BG_EXIT_FAIL;
    }
    if (rc == BG_EABORTED) {
        if (a->json) {
            print_json("aborted", file, s, r, secs, w, err->msg);
        } else {
            print_summary("strict: NOT imported", file, s, r, 0);
            bg_cli_fail(CMD, "strict: %s", err->msg);
        }
        return BG_EXIT_FAIL;
    }
    if (a->json)
        print_json("error", file, s, r, secs, w, err->msg);
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
    if (a.gw_dir != NULL && (ex = load_gateway(&a)) != BG_EXIT_OK)
        return ex;

    bg_err err;
    bg_scale scale;
    if (a.scale_spec != NULL && bg_scale_parse(a.scale_spec, &scale, &err) != BG_OK)
        return bg_cli_fail(CMD, "--scale: %s", err.msg);
    warnings w = {0};
    check_store_use(&a, &w);

    bg_store *s = NULL;
    if (bg_store_open(&s, a.data_dir, a.city, a.scale_spec ? &scale : NULL, &err) != BG_OK)
        return bg_cli_fail(CMD, "%s", err.msg);

    progress_ctx pc = {.show = !a.quiet && !a.json && isatty(2)};
    clock_gettime(CLOCK_MONOTONIC, &pc.start);
    pc.last = pc.start;
    bg_import_opts opts = {
        .mode = a.strict ? BG_IMPORT_STRICT : BG_IMPORT_QUARANTINE,
        .force = a.force,
        .dry_run = a.dry_run,
        .replace = a.replace,
        .max_remove_pct = a.max_remove,
        .confirm_removal = a.yes,
        .report_path = a.report,
        .progress = on_progress,
        .progress_ctx = &pc,
    };
    bg_import_result r;
    int rc = bg_import_file(s, a.file, &opts, &r, &err);
    double secs = seconds_since(&pc.start);
    if (pc.show)
        fprintf(stderr, "\r\033[K");
    if (rc == BG_OK && !r.already_imported)
        check_rows(s, &r, &w);
    ex = report_result(&a, s, rc, &r, secs, &err, &w);
    bg_store_close(s);
    return ex;
}
