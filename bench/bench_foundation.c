/*
 * bench_foundation.c - throughput of the foundation: USCC validation, data
 * generation and import. Prints a table; asserts nothing (tests do that).
 *
 * usage: bench_foundation [ROWS [WORKDIR]]   (default 1000000 rows, /tmp)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "domain/uscc.h"
#include "gateway/gen/gen.h"
#include "gateway/store/import.h"
#include "gateway/store/store.h"

static double
now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void
row(const char *what, double count, double seconds)
{
    printf("| %-34s | %10.0f | %8.3f | %12.0f | %9.3f |\n", what, count, seconds, count / seconds,
           seconds / count * 1e6);
}

/* Reads the USCC column of a generated file into one array of 18-byte codes. */
static char *
load_codes(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 1 << 20, len = 0;
    char *codes = malloc(cap * 18);
    char line[8192];
    if (codes == NULL || fgets(line, sizeof line, f) == NULL) { /* header */
        free(codes);
        fclose(f);
        return NULL;
    }
    while (fgets(line, sizeof line, f) != NULL) {
        if (len == cap) {
            char *bigger = realloc(codes, cap * 2 * 18);
            if (bigger == NULL)
                break;
            codes = bigger;
            cap *= 2;
        }
        if (strlen(line) > 18 && line[18] == ',')
            memcpy(codes + len++ * 18, line, 18);
    }
    fclose(f);
    *n = len;
    return codes;
}

int
main(int argc, char **argv)
{
    uint64_t rows = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000;
    const char *work = argc > 2 ? argv[2] : "/tmp";
    char dir[4096], csv[4200];
    snprintf(dir, sizeof dir, "%s/bg-bench-XXXXXX", work);
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    if (snprintf(csv, sizeof csv, "%s/440300.csv", dir) >= (int)sizeof csv)
        return 1;
    bg_err err = {0};

    printf("baygate foundation benchmark: %llu rows, work dir %s\n\n", (unsigned long long)rows,
           dir);
    printf("| %-34s | %10s | %8s | %12s | %9s |\n", "operation", "count", "seconds", "per second",
           "us each");
    printf("|%s|%s|%s|%s|%s|\n", "------------------------------------", "------------",
           "----------", "--------------", "-----------");

    /* Generation, written to a real file as a user would. */
    bg_gen_opts g = {.count = rows, .seed = 1, .as_of = bg_gen_default_as_of()};
    memcpy(g.city, "440300", 7);
    FILE *out = fopen(csv, "wb");
    double t0 = now();
    if (out == NULL || bg_gen_write(&g, out, NULL, &err) != BG_OK || fclose(out) != 0) {
        fprintf(stderr, "gen: %s\n", err.msg);
        return 1;
    }
    row("generate rows (gen, to file)", (double)rows, now() - t0);

    /* USCC validation over the generated codes (normalise + both checks + decode). */
    size_t ncodes = 0;
    char *codes = load_codes(csv, &ncodes);
    if (codes == NULL || ncodes == 0) {
        fprintf(stderr, "cannot read codes back from %s\n", csv);
        return 1;
    }
    size_t valid = 0;
    int rounds = 5;
    t0 = now();
    for (int r = 0; r < rounds; r++) {
        for (size_t i = 0; i < ncodes; i++) {
            bg_uscc u;
            valid += bg_uscc_parse(codes + i * 18, 18, &u, NULL) == BG_OK;
        }
    }
    row("USCC parse + validate", (double)ncodes * rounds, now() - t0);
    if (valid != ncodes * (size_t)rounds)
        fprintf(stderr, "warning: %zu of %zu codes invalid\n", ncodes * rounds - valid,
                ncodes * rounds);
    free(codes);

    /* Import into a fresh store: validation, duplicate check, one transaction. */
    bg_store *store = NULL;
    bg_scale scale;
    bg_scale_default(&scale);
    char store_dir[4200];
    snprintf(store_dir, sizeof store_dir, "%s/store", dir);
    if (bg_store_open(&store, store_dir, "440300", &scale, &err) != BG_OK) {
        fprintf(stderr, "store: %s\n", err.msg);
        return 1;
    }
    bg_import_opts io = {.mode = BG_IMPORT_QUARANTINE};
    bg_import_result res;
    t0 = now();
    if (bg_import_file(store, csv, &io, &res, &err) != BG_OK) {
        fprintf(stderr, "import: %s\n", err.msg);
        return 1;
    }
    row("import rows (fresh store)", (double)res.rows, now() - t0);

    /* The same file again, forced: every row now compared with the store. */
    io.force = true;
    t0 = now();
    if (bg_import_file(store, csv, &io, &res, &err) != BG_OK) {
        fprintf(stderr, "re-import: %s\n", err.msg);
        return 1;
    }
    row("re-import rows (all unchanged)", (double)res.rows, now() - t0);
    bg_store_close(store);

    printf("\nmachine: %ld online cores; single-threaded code paths.\n",
           sysconf(_SC_NPROCESSORS_ONLN));
    char cmd[4400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : 1;
}
