/*
 * cmd_demo.c - baygate demo: the scripted tour of what baygate does so far.
 *
 * It plays every part with the operator commands a person would type (each
 * shown as it runs, run by this same binary): the federation operator makes
 * a CA, three cities make their keys and get certificates, the operator
 * signs a roster and a CRL; each city generates and imports its credit data
 * (Shenzhen and Foshan share enterprises with Guangzhou); the three gateways
 * start on loopback, ping each other in all six directions; Guangzhou asks
 * Shenzhen and Foshan by private set intersection which of its enterprises are
 * on their lists, their grades, and how many are on another list, and every
 * answer is checked against the answering cities' stores; a rogue with a
 * look-alike CA is refused; the gateways shut down cleanly.
 */
/* nftw(3) is an XSI interface. */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "envelope.h"
#include "fedping.h"
#include "gen.h"
#include "import.h"
#include "pki.h"
#include "record.h"
#include "roster.h"
#include "snapshot.h"
#include "store.h"
#include "transport.h"
#include "uscc.h"

extern char **environ;

#define DEMO_MARKER ".baygate-demo"
#define DEMO_PATH 4096
#define FEDERATION_NAME "Greater Bay Area Credit Federation"

static const struct {
    const char *code;
    const char *name;
    const char *share_with; /* whose enterprises some of its rows reuse */
} demo_cities[] = {
    {"440100", "Guangzhou", NULL},
    {"440300", "Shenzhen", "440100"},
    {"440600", "Foshan", "440100"},
};
#define NDEMO (sizeof demo_cities / sizeof demo_cities[0])

typedef struct demo {
    const char *dir;
    char self[DEMO_PATH]; /* this binary, to run the steps as commands */
    char log[DEMO_PATH];  /* where quiet commands write */
    int ports[NDEMO];
    pid_t gateways[NDEMO];
} demo;

static void
demo_usage(FILE *f)
{
    fprintf(f, "usage: baygate demo [--dir DIR] [--count N] [--seed S] [--dirty R]\n\n"
               "Builds a three-city federation on loopback under DIR (default\n"
               "./baygate-demo, recreated on every run): CA, city keys and certificates,\n"
               "signed roster and CRL; N enterprises of generated credit data per city\n"
               "(default 20000, defect rate R, default 0.0005) imported into each city's\n"
               "store; then starts the three gateways, pings in all six directions,\n"
               "shows a rogue being refused and shuts everything down.\n");
}

/* Formats a path; one that does not fit is an error, never a silent cut. */
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

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

/* Starts from nothing: removes DIR if an earlier demo made it, refuses to
 * touch a directory the demo did not make. */
static int
reset_dir(const char *dir)
{
    char marker[DEMO_PATH];
    if (!path_fmt(marker, sizeof marker, "%s/%s", dir, DEMO_MARKER))
        return BG_EXIT_ERROR;
    struct stat st;
    if (stat(dir, &st) == 0) {
        if (access(marker, F_OK) != 0)
            return bg_cli_fail("demo", "%s exists and was not made by the demo; not touching it",
                               dir);
        if (nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
            return bg_cli_fail("demo", "cannot remove the old %s: %s", dir, strerror(errno));
    }
    if (mkdir(dir, 0700) != 0)
        return bg_cli_fail("demo", "cannot create %s: %s", dir, strerror(errno));
    FILE *f = fopen(marker, "w");
    if (f == NULL || fclose(f) != 0)
        return bg_cli_fail("demo", "cannot write %s", marker);
    return BG_EXIT_OK;
}

/* Spawns this binary with args; stdout/stderr to the demo log when quiet. */
static pid_t
spawn_self(demo *d, const char *const *args, const char *out_path)
{
    char *argv[32];
    size_t n = 0;
    argv[n++] = "baygate";
    for (; args[n - 1] != NULL && n < 31; n++)
        argv[n] = (char *)args[n - 1];
    argv[n] = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (out_path != NULL) {
        posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, out_path,
                                         O_WRONLY | O_CREAT | O_APPEND, 0600);
        posix_spawn_file_actions_adddup2(&fa, STDOUT_FILENO, STDERR_FILENO);
    }
    pid_t pid = -1;
    if (posix_spawn(&pid, d->self, &fa, NULL, argv, environ) != 0)
        pid = -1;
    posix_spawn_file_actions_destroy(&fa);
    return pid;
}

/* How a step appears: not at all, as the command line only (its output goes
 * to the demo log), or with its output. */
enum { QUIET, ECHO, SHOW };

/* Runs one step, echoing it like a shell would; returns its exit status. */
static int
run(demo *d, int mode, const char *const *args)
{
    if (mode != QUIET) {
        printf("  $ baygate");
        for (size_t i = 0; args[i] != NULL; i++)
            printf(strchr(args[i], ' ') ? " '%s'" : " %s", args[i]);
        printf("\n");
    }
    fflush(stdout);
    pid_t pid = spawn_self(d, args, mode == SHOW ? NULL : d->log);
    if (pid < 0)
        return bg_cli_fail("demo", "cannot run %s: %s", d->self, strerror(errno));
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(st) ? WEXITSTATUS(st) : BG_EXIT_ERROR;
}

#define RUN(d, mode, ...)                                                                          \
    do {                                                                                           \
        const char *const args_[] = {__VA_ARGS__, NULL};                                           \
        if (run((d), (mode), args_) != 0)                                                          \
            return bg_cli_fail("demo", "step failed: %s %s (see %s)", args_[0], args_[1],          \
                               (d)->log);                                                          \
    } while (0)

static int
free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int port = -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static int
copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = in ? fopen(to, "wb") : NULL;
    char buf[8192];
    size_t n;
    int rc = in && out ? BG_EXIT_OK : BG_EXIT_ERROR;
    while (rc == BG_EXIT_OK && (n = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, n, out) != n)
            rc = BG_EXIT_ERROR;
    if (in)
        fclose(in);
    if (out && fclose(out) != 0)
        rc = BG_EXIT_ERROR;
    if (rc != BG_EXIT_OK)
        bg_cli_fail("demo", "cannot copy %s to %s", from, to);
    return rc;
}

/* --- act 1: the federation's PKI and roster --- */

static int
make_federation(demo *d)
{
    char ca[DEMO_PATH], gw[NDEMO][DEMO_PATH], csr[DEMO_PATH], crt[DEMO_PATH], cacrt[DEMO_PATH],
        listen[64], ini[DEMO_PATH], pb[DEMO_PATH], crl[DEMO_PATH];
    if (!path_fmt(ca, sizeof ca, "%s/federation-ca", d->dir) ||
        !path_fmt(ini, sizeof ini, "%s/roster.ini", d->dir) ||
        !path_fmt(pb, sizeof pb, "%s/roster.pb", d->dir) ||
        !path_fmt(crl, sizeof crl, "%s/crl.pem", d->dir))
        return BG_EXIT_ERROR;

    printf("\n1. The federation operator creates the CA; each city makes its own key\n"
           "   (it never leaves the city) and gets a certificate for its city code.\n");
    RUN(d, ECHO, "ca", "init", "--dir", ca, "--name", FEDERATION_NAME);
    for (size_t i = 0; i < NDEMO; i++) {
        d->ports[i] = free_port();
        if (d->ports[i] <= 0)
            return bg_cli_fail("demo", "no free port on 127.0.0.1");
        if (!path_fmt(gw[i], sizeof gw[i], "%s/%s", d->dir, demo_cities[i].code) ||
            !path_fmt(csr, sizeof csr, "%s/city.csr", gw[i]) ||
            !path_fmt(crt, sizeof crt, "%s/city.crt", gw[i]) ||
            !path_fmt(cacrt, sizeof cacrt, "%s/ca.crt", gw[i]))
            return BG_EXIT_ERROR;
        snprintf(listen, sizeof listen, "tls+tcp://127.0.0.1:%d", d->ports[i]);
        RUN(d, ECHO, "init", "--city", demo_cities[i].code, "--name", demo_cities[i].name, "--dir",
            gw[i], "--listen", listen);
        RUN(d, ECHO, "ca", "issue", "--dir", ca, "--csr", csr, "--out", crt);
        RUN(d, QUIET, "ca", "cert", "--dir", ca, "--out", cacrt);
    }

    FILE *f = fopen(ini, "w");
    if (f == NULL)
        return bg_cli_fail("demo", "cannot write %s", ini);
    fprintf(f,
            "; The federation roster: who is in, where, with which certificate, who may\n"
            "; ask whom about what. Signed by the federation CA key.\n"
            "[federation]\nname = %s\nserial = 1\nmax_message_bytes = 4194304\n"
            "common_scale = 1,2,3,4\n\n[purpose supervision]\nneeds_authorisation = false\n\n"
            "[purpose lending]\nneeds_authorisation = true\n",
            FEDERATION_NAME);
    for (size_t i = 0; i < NDEMO; i++)
        fprintf(f,
                "\n[member %s]\nname = %s\nendpoint = tls+tcp://127.0.0.1:%d\n"
                "certificate = %s/city.crt\nlists = serious-dishonesty, abnormal-operation\n"
                "scale = ABCD=A,B,C,D\ngrade_map = A:1, B:2, C:3, D:4\n",
                demo_cities[i].code, demo_cities[i].name, d->ports[i], demo_cities[i].code);
    for (size_t a = 0; a < NDEMO; a++)
        for (size_t b = 0; b < NDEMO; b++)
            if (a != b)
                fprintf(f,
                        "\n[permission %s -> %s]\npurposes = supervision, lending\n"
                        "lists = serious-dishonesty, abnormal-operation\n"
                        "quota_items_per_day = 1000000\nmin_count_batch = 16\n",
                        demo_cities[a].code, demo_cities[b].code);
    if (fclose(f) != 0)
        return bg_cli_fail("demo", "cannot write %s", ini);

    printf("\n   The operator signs the roster and publishes a CRL; every city gets both.\n");
    RUN(d, ECHO, "roster", "sign", "--ca", ca, "--out", pb, ini);
    RUN(d, ECHO, "ca", "crl", "--dir", ca, "--out", crl);
    for (size_t i = 0; i < NDEMO; i++) {
        char to[DEMO_PATH];
        if (!path_fmt(to, sizeof to, "%s/roster.pb", gw[i]) || copy_file(pb, to) != 0 ||
            !path_fmt(to, sizeof to, "%s/crl.pem", gw[i]) || copy_file(crl, to) != 0)
            return BG_EXIT_ERROR;
    }
    return BG_EXIT_OK;
}

/* --- act 2: each city's credit data --- */

struct city_run {
    const char *code;
    bg_gen_stats gen;
    bg_import_result imp;
    bg_store_counts counts;
    bg_scale scale;
};

static int
load_city_data(demo *d, size_t i, uint64_t count, uint64_t seed, double dirty, struct city_run *run)
{
    char csv[DEMO_PATH], share[DEMO_PATH], store_dir[DEMO_PATH];
    const char *code = demo_cities[i].code;
    bg_err err = {0};
    run->code = code;
    if (!path_fmt(csv, sizeof csv, "%s/data/%s.csv", d->dir, code) ||
        !path_fmt(store_dir, sizeof store_dir, "%s/%s/data", d->dir, code))
        return BG_EXIT_ERROR;

    bg_gen_opts g = {
        .count = count, .seed = seed + i, .dirty_rate = dirty, .as_of = bg_gen_default_as_of()};
    memcpy(g.city, code, 7);
    if (demo_cities[i].share_with != NULL) {
        if (!path_fmt(share, sizeof share, "%s/data/%s.csv", d->dir, demo_cities[i].share_with))
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
print_data_summary(const struct city_run *runs)
{
    printf("\n   %-10s %-6s %8s %8s %10s %8s %10s  %9s %9s %8s  %s\n", "city", "code", "rows",
           "stored", "normalised", "rejected", "error rate", "dishonest", "abnormal", "graded",
           "A / B / C / D");
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

/* --- act 3: the live federation --- */

static int
start_gateways(demo *d)
{
    printf("\n3. Each city starts its gateway (federation API on mutual TLS, local API\n"
           "   on a private socket):\n");
    for (size_t i = 0; i < NDEMO; i++) {
        char gw[DEMO_PATH], log[DEMO_PATH];
        if (!path_fmt(gw, sizeof gw, "%s/%s", d->dir, demo_cities[i].code) ||
            !path_fmt(log, sizeof log, "%s/%s.log", d->dir, demo_cities[i].code))
            return BG_EXIT_ERROR;
        printf("  $ baygate serve --dir %s 2>%s &\n", gw, log);
        const char *const args[] = {"serve", "--dir", gw, NULL};
        d->gateways[i] = spawn_self(d, args, log);
        if (d->gateways[i] < 0)
            return bg_cli_fail("demo", "cannot start the %s gateway", demo_cities[i].name);
    }
    /* Ready when its local API answers; a gateway that exits is a failure. */
    for (size_t i = 0; i < NDEMO; i++) {
        char gw[DEMO_PATH];
        if (!path_fmt(gw, sizeof gw, "%s/%s", d->dir, demo_cities[i].code))
            return BG_EXIT_ERROR;
        const char *const args[] = {"status", "--dir", gw, NULL};
        struct timespec pause = {.tv_nsec = 50 * 1000 * 1000};
        time_t deadline = time(NULL) + 20;
        for (;;) {
            int st;
            if (waitpid(d->gateways[i], &st, WNOHANG) == d->gateways[i]) {
                d->gateways[i] = -1;
                return bg_cli_fail("demo", "the %s gateway exited; see %s/%s.log",
                                   demo_cities[i].name, d->dir, demo_cities[i].code);
            }
            if (run(d, QUIET, args) == 0)
                break;
            if (time(NULL) > deadline)
                return bg_cli_fail("demo", "the %s gateway did not become ready",
                                   demo_cities[i].name);
            nanosleep(&pause, NULL);
        }
    }
    printf("   all three are up.\n");
    return BG_EXIT_OK;
}

static int
ping_everyone(demo *d)
{
    printf("\n4. Authenticated pings in all six directions (signed envelopes, each\n"
           "   checked against the CA, the CRL and the roster):\n");
    for (size_t i = 0; i < NDEMO; i++) {
        char gw[DEMO_PATH];
        if (!path_fmt(gw, sizeof gw, "%s/%s", d->dir, demo_cities[i].code))
            return BG_EXIT_ERROR;
        RUN(d, SHOW, "ping", "--dir", gw, "--peer", "all");
    }
    return BG_EXIT_OK;
}

/* --- act 4b: private set intersection --- */

/* A sorted set of canonical USCCs (18 bytes each) with an optional grade. */
typedef struct code_set {
    char (*code)[BG_USCC_LEN];
    char (*grade)[BG_SNAP_GRADE_MAX + 1];
    size_t n, cap;
} code_set;

static int
cmp_code18(const void *a, const void *b)
{
    return memcmp(a, b, BG_USCC_LEN);
}

static bool
set_add(code_set *s, const char *code, const char *grade)
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

/* Sorts by code (codes and grades together: sort an index, then permute). */
static bool
set_sort(code_set *s)
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

static const char *
set_find(const code_set *s, const char *code)
{
    char(*hit)[BG_USCC_LEN] = bsearch(code, s->code, s->n, sizeof *s->code, cmp_code18);
    return hit ? s->grade[hit - s->code] : NULL;
}

static void
set_free(code_set *s)
{
    free(s->code);
    free(s->grade);
    memset(s, 0, sizeof *s);
}

static int
truth_row(void *ctx, const bg_store_row *row, bg_err *err)
{
    if (!set_add(ctx, row->uscc, row->grade))
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

/* What a city's store holds on list (NULL: its evaluations): the ground truth the
 * city's gateway publishes (the generated file minus rows the import refused, and
 * list entries that have expired). */
static int
load_truth(demo *d, const char *code, const char *list, code_set *out)
{
    char store_dir[DEMO_PATH];
    if (!path_fmt(store_dir, sizeof store_dir, "%s/%s/data", d->dir, code))
        return BG_EXIT_ERROR;
    bg_store *st = NULL;
    bg_err err = {0};
    int64_t last = 0;
    int rc = bg_store_open(&st, store_dir, code, NULL, &err);
    if (rc == BG_OK)
        rc = bg_store_scan(st, list, &last, list != NULL ? truth_list_row : truth_row, out, &err);
    bg_store_close(st);
    if (rc != BG_OK || !set_sort(out))
        return bg_cli_fail("demo", "reading the %s store: %s", code, err.msg);
    return BG_EXIT_OK;
}

/* Guangzhou's own enterprises: the first column of its generated file, normalised
 * (rows the import refused stay in: the gateway reports invalid ones, never sends them). */
static int
write_ids(const char *csv, const char *ids, size_t limit, code_set *valid, size_t *lines)
{
    FILE *in = fopen(csv, "r"), *out = in ? fopen(ids, "w") : NULL;
    if (in == NULL || out == NULL) {
        if (in)
            fclose(in);
        return bg_cli_fail("demo", "cannot read %s or write %s", csv, ids);
    }
    char line[8192];
    size_t n = 0;
    bool header = true;
    while (n < limit && fgets(line, sizeof line, in) != NULL) {
        if (header) {
            header = false;
            continue;
        }
        size_t len = strcspn(line, ",\r\n");
        line[len] = '\0';
        if (len == 0)
            continue;
        fprintf(out, "%s\n", line);
        n++;
        bg_uscc u;
        if (bg_uscc_parse(line, len, &u, NULL) == BG_OK && !set_add(valid, u.code, NULL))
            break;
    }
    fclose(in);
    if (fclose(out) != 0 || !set_sort(valid))
        return bg_cli_fail("demo", "cannot write %s", ids);
    *lines = n;
    return BG_EXIT_OK;
}

/* Runs `baygate query ... --csv` (echoed) with its output in path. */
static int
run_query(demo *d, const char *const *args, const char *path)
{
    printf("  $ baygate");
    for (size_t i = 0; args[i] != NULL; i++)
        printf(" %s", args[i]);
    printf("\n");
    fflush(stdout);
    unlink(path);
    pid_t pid = spawn_self(d, args, path);
    if (pid < 0)
        return bg_cli_fail("demo", "cannot run %s", d->self);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(st) ? WEXITSTATUS(st) : BG_EXIT_ERROR;
}

/* One peer's answer from the query's CSV: its matched codes (with grades), or count. */
typedef struct peer_answer {
    bool ok;
    unsigned long long epoch, count;
    code_set got;
} peer_answer;

static void
read_answer(const char *path, const char *peer, peer_answer *a)
{
    memset(a, 0, sizeof *a);
    FILE *f = fopen(path, "r");
    char line[1024];
    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
        /* peer,ok,epoch,uscc,grade,scale,evaluated_at,valid_until,serial,count,error */
        char *field[11] = {0};
        size_t nf = 0;
        char *p = line;
        while (nf < 11) {
            field[nf++] = p;
            char *c = strchr(p, ',');
            if (c == NULL)
                break;
            *c = '\0';
            p = c + 1;
        }
        if (nf < 10 || strcmp(field[0], peer) != 0)
            continue;
        if (strcmp(field[1], "true") != 0) {
            a->ok = false;
            break;
        }
        a->ok = true;
        a->epoch = strtoull(field[2], NULL, 10);
        if (field[3][0] != '\0')
            set_add(&a->got, field[3], field[4]);
        if (field[9][0] != '\0')
            a->count = strtoull(field[9], NULL, 10);
    }
    if (f != NULL)
        fclose(f);
    set_sort(&a->got);
}

/* Expected = asked ∩ truth (with truth's grades); true iff got equals it exactly. */
static bool
matches_truth(const code_set *asked, const code_set *truth, const code_set *got, bool grades,
              size_t *expected)
{
    size_t n = 0;
    bool same = true;
    for (size_t i = 0; i < asked->n; i++) {
        const char *g = set_find(truth, asked->code[i]);
        if (g == NULL)
            continue;
        n++;
        const char *h = set_find(got, asked->code[i]);
        if (h == NULL || (grades && strcmp(g, h) != 0))
            same = false;
    }
    *expected = n;
    return same && got->n == n;
}

static size_t
count_in(const code_set *asked, const code_set *truth)
{
    size_t n = 0;
    for (size_t i = 0; i < asked->n; i++)
        n += set_find(truth, asked->code[i]) != NULL;
    return n;
}

/* Waits until a gateway's log shows its three lists published. */
static bool
wait_published(demo *d, const char *code)
{
    char log[DEMO_PATH];
    if (!path_fmt(log, sizeof log, "%s/%s.log", d->dir, code))
        return false;
    time_t deadline = time(NULL) + 120;
    struct timespec pause = {.tv_nsec = 100 * 1000 * 1000};
    for (;;) {
        FILE *f = fopen(log, "r");
        char line[2048];
        int n = 0;
        while (f != NULL && fgets(line, sizeof line, f) != NULL)
            n += strstr(line, " psi.published ") != NULL;
        if (f != NULL)
            fclose(f);
        if (n >= 3)
            return true;
        if (time(NULL) > deadline)
            return false;
        nanosleep(&pause, NULL);
    }
}

static int
psi_act(demo *d)
{
    const char *gz = demo_cities[0].code;
    printf("\n5. Private set intersection. Guangzhou asks Shenzhen and Foshan about its own\n"
           "   enterprises; they never learn which ones it asked about, and it learns\n"
           "   nothing about enterprises it did not ask about. Each answering gateway has\n"
           "   published a signed snapshot of every list (OPRF tags under a key only it\n"
           "   holds); Guangzhou fetches and verifies it, then asks with blinded ids.\n");
    for (size_t i = 0; i < NDEMO; i++)
        if (!wait_published(d, demo_cities[i].code))
            return bg_cli_fail("demo", "the %s gateway did not publish its lists",
                               demo_cities[i].name);

    char csv[DEMO_PATH], ids[DEMO_PATH], cids[DEMO_PATH], gw[DEMO_PATH], out[DEMO_PATH];
    if (!path_fmt(csv, sizeof csv, "%s/data/%s.csv", d->dir, gz) ||
        !path_fmt(ids, sizeof ids, "%s/data/%s.ids", d->dir, gz) ||
        !path_fmt(cids, sizeof cids, "%s/data/%s.count.ids", d->dir, gz) ||
        !path_fmt(gw, sizeof gw, "%s/%s", d->dir, gz) ||
        !path_fmt(out, sizeof out, "%s/query.csv", d->dir))
        return BG_EXIT_ERROR;
    code_set asked = {0}, casked = {0};
    size_t nids = 0, ncids = 0;
    /* Count answers must fit one message: at most 100000 ids for them. */
    int rc = write_ids(csv, ids, SIZE_MAX, &asked, &nids);
    if (rc == BG_EXIT_OK)
        rc = write_ids(csv, cids, 100000, &casked, &ncids);

    static const struct {
        const char *title, *list, *flag;
        int kind; /* 0 membership, 1 grades, 2 count */
    } queries[] = {
        {"Which of Guangzhou's enterprises are on their serious-dishonesty lists?",
         "serious-dishonesty", NULL, 0},
        {"Which of them have they graded, and how (the 'grades' list, sealed payloads)?", NULL,
         "--grades", 1},
        {"How many of them are on their abnormal-operation lists (count only)?",
         "abnormal-operation", "--count", 2},
    };
    size_t checked = 0, wrong = 0;
    for (size_t q = 0; rc == BG_EXIT_OK && q < sizeof queries / sizeof queries[0]; q++) {
        printf("\n   %s\n", queries[q].title);
        const char *args[16];
        size_t a = 0;
        args[a++] = "query";
        args[a++] = "--dir";
        args[a++] = gw;
        args[a++] = "--peer";
        args[a++] = "all";
        args[a++] = "--purpose";
        args[a++] = "supervision";
        args[a++] = "--in";
        args[a++] = queries[q].kind == 2 ? cids : ids;
        if (queries[q].list != NULL) {
            args[a++] = "--list";
            args[a++] = queries[q].list;
        }
        if (queries[q].flag != NULL)
            args[a++] = queries[q].flag;
        args[a++] = "--csv";
        args[a] = NULL;
        int qrc = run_query(d, args, out);
        if (qrc == BG_EXIT_ERROR) {
            rc = bg_cli_fail("demo", "the query failed; see %s", out);
            break;
        }
        for (size_t p = 1; p < NDEMO; p++) {
            code_set truth = {0};
            rc = load_truth(d, demo_cities[p].code,
                            queries[q].kind == 1   ? NULL
                            : queries[q].kind == 2 ? "abnormal-operation"
                                                   : queries[q].list,
                            &truth);
            if (rc != BG_EXIT_OK)
                break;
            peer_answer pa;
            read_answer(out, demo_cities[p].code, &pa);
            bool right = false;
            size_t expected = 0;
            if (!pa.ok) {
                printf("     %-10s did NOT answer (see %s)\n", demo_cities[p].name, out);
            } else if (queries[q].kind == 2) {
                expected = count_in(&casked, &truth);
                right = pa.count == expected;
                printf("     %-10s epoch %llu: %llu of %zu asked   (truth: %zu)  %s\n",
                       demo_cities[p].name, pa.epoch, pa.count, casked.n, expected,
                       right ? "ok" : "WRONG");
            } else {
                right = matches_truth(&asked, &truth, &pa.got, queries[q].kind == 1, &expected);
                char example[64] = "";
                if (pa.got.n > 0)
                    snprintf(example, sizeof example, ", e.g. %.18s%s%s", pa.got.code[0],
                             queries[q].kind == 1 ? " grade " : "",
                             queries[q].kind == 1 ? pa.got.grade[0] : "");
                printf("     %-10s epoch %llu: %zu of %zu asked%s   (truth: %zu)  %s\n",
                       demo_cities[p].name, pa.epoch, pa.got.n, asked.n, example, expected,
                       right ? "ok" : "WRONG");
            }
            checked++;
            wrong += !right;
            set_free(&pa.got);
            set_free(&truth);
        }
    }
    set_free(&asked);
    set_free(&casked);
    if (rc != BG_EXIT_OK)
        return rc;
    if (wrong == 0)
        printf("\n   All %zu answers match the ground truth (the answering cities' stores).\n",
               checked);
    else
        printf("\n   %zu of %zu answers do NOT match the ground truth.\n", wrong, checked);
    return wrong == 0 ? BG_EXIT_OK : BG_EXIT_FAIL;
}

/* The roster callback for the rogue's verifier: the roster is public. */
static int
roster_member_fp(void *ctx, const char *city, uint8_t fp[BG_SIG_FP_LEN])
{
    const bg_roster_member *m = bg_roster_member_find(ctx, city);
    if (m == NULL)
        return BG_ENOTFOUND;
    memcpy(fp, m->cert_sha256, BG_SIG_FP_LEN);
    return BG_OK;
}

/* A stranger with a certificate from a look-alike CA (same name, other key)
 * tries to ping Shenzhen. It is run in this process, with the library. */
static int
rogue_attempt(demo *d)
{
    char rca[DEMO_PATH], rgw[DEMO_PATH], csr[DEMO_PATH], crt[DEMO_PATH], key[DEMO_PATH],
        realca[DEMO_PATH], crlp[DEMO_PATH], sz[DEMO_PATH], pb[DEMO_PATH];
    if (!path_fmt(rca, sizeof rca, "%s/rogue-ca", d->dir) ||
        !path_fmt(rgw, sizeof rgw, "%s/rogue", d->dir) ||
        !path_fmt(csr, sizeof csr, "%s/city.csr", rgw) ||
        !path_fmt(crt, sizeof crt, "%s/city.crt", rgw) ||
        !path_fmt(key, sizeof key, "%s/city.key", rgw) ||
        !path_fmt(realca, sizeof realca, "%s/federation-ca/ca.crt", d->dir) ||
        !path_fmt(crlp, sizeof crlp, "%s/crl.pem", d->dir) ||
        !path_fmt(sz, sizeof sz, "%s/440300", d->dir) ||
        !path_fmt(pb, sizeof pb, "%s/roster.pb", d->dir))
        return BG_EXIT_ERROR;
    printf("\n6. A rogue makes a CA with the federation's exact name and a certificate\n"
           "   claiming to be Guangzhou, then asks Shenzhen:\n");
    RUN(d, ECHO, "ca", "init", "--dir", rca, "--name", FEDERATION_NAME);
    RUN(d, QUIET, "init", "--city", "440100", "--name", "Guangzhou", "--dir", rgw);
    RUN(d, ECHO, "ca", "issue", "--dir", rca, "--csr", csr, "--out", crt);

    bg_err err = {0};
    EVP_PKEY *k = NULL;
    X509 *c = NULL, *ca = NULL;
    char *key_pem = NULL, *cert_pem = NULL, *ca_pem = NULL, *crl_pem = NULL;
    size_t key_len = 0, n = 0;
    X509_CRL *crl = NULL;
    bg_env_identity *id = NULL;
    bg_trust *trust = NULL;
    bg_env_verifier *v = NULL;
    bg_tp_client *cli = NULL;
    bg_roster *roster = NULL;
    int rc = bg_pki_key_load(key, &k, &err);
    if (rc == BG_OK)
        rc = bg_pki_cert_load(crt, &c, &err);
    if (rc == BG_OK)
        rc = bg_pki_cert_load(realca, &ca, &err);
    if (rc == BG_OK)
        rc = bg_pki_crl_load(crlp, &crl, &err);
    if (rc == BG_OK)
        rc = bg_pki_key_pem(k, &key_pem, &key_len, &err);
    if (rc == BG_OK)
        rc = bg_pki_cert_pem(c, &cert_pem, &n, &err);
    if (rc == BG_OK)
        rc = bg_pki_cert_pem(ca, &ca_pem, &n, &err);
    if (rc == BG_OK)
        rc = bg_pki_crl_pem(crl, &crl_pem, &n, &err);
    if (rc == BG_OK)
        rc = bg_env_identity_new(&id, k, c, &err);
    if (rc == BG_OK)
        rc = bg_trust_new(&trust, ca, crl, 0, &err);
    if (rc == BG_OK)
        rc = bg_roster_load_file(pb, ca, 0, NULL, &roster, NULL, &err);
    if (rc == BG_OK) {
        bg_env_verifier_config vc = {.own_city = "440100",
                                     .trust = trust,
                                     .member_fp = roster_member_fp,
                                     .member_ctx = roster};
        rc = bg_env_verifier_new(&v, &vc, &err);
    }
    bg_fedping_result res = {.error = ""};
    if (rc == BG_OK) {
        bg_tp_tls tls = {
            .cert_pem = cert_pem, .key_pem = key_pem, .ca_pem = ca_pem, .crl_pem = crl_pem};
        char url[64];
        snprintf(url, sizeof url, "tls+tcp://127.0.0.1:%d", d->ports[1]);
        bg_tp_client_opts o = {.url = url,
                               .tls = &tls,
                               .server_name = "440300",
                               .recv_max = 4194304,
                               .send_max = 4194304};
        rc = bg_tp_client_open(&cli, &o, &err);
        if (rc == BG_OK)
            bg_fedping(cli, id, v, "440300", url, 1, 4194304, true, 3000, &res);
    }
    if (rc != BG_OK)
        printf("   (could not run the rogue: %s)\n", err.msg);
    else if (res.ok)
        printf("   !! Shenzhen answered the rogue: this must never happen\n");
    else
        printf("   refused: %s\n", res.error);
    bg_tp_client_close(cli);
    bg_env_verifier_free(v);
    bg_roster_free(roster);
    bg_trust_free(trust);
    bg_env_identity_free(id);
    if (key_pem != NULL)
        bg_pki_secret_free(key_pem, key_len);
    OPENSSL_free(cert_pem);
    OPENSSL_free(ca_pem);
    OPENSSL_free(crl_pem);
    X509_CRL_free(crl);
    X509_free(ca);
    X509_free(c);
    EVP_PKEY_free(k);
    if (rc == BG_OK && res.ok)
        return BG_EXIT_FAIL;

    printf("\n   Shenzhen's own account (its TLS layer refused the stranger before any\n"
           "   envelope was read):\n");
    RUN(d, SHOW, "status", "--dir", sz);
    return BG_EXIT_OK;
}

static int
stop_gateways(demo *d)
{
    int status = BG_EXIT_OK;
    bool any = false;
    for (size_t i = 0; i < NDEMO; i++) {
        if (d->gateways[i] > 0) {
            kill(d->gateways[i], SIGTERM);
            any = true;
        }
    }
    if (!any)
        return status;
    printf("\n7. SIGTERM to the gateways: they finish in-flight work and exit.\n");
    for (size_t i = 0; i < NDEMO; i++) {
        if (d->gateways[i] <= 0)
            continue;
        int st = 0;
        while (waitpid(d->gateways[i], &st, 0) < 0 && errno == EINTR)
            ;
        bool clean = WIFEXITED(st) && WEXITSTATUS(st) == 0;
        printf("   %-10s %s\n", demo_cities[i].name,
               clean ? "stopped cleanly (exit 0)" : "did NOT stop cleanly");
        if (!clean)
            status = BG_EXIT_FAIL;
        d->gateways[i] = -1;
    }
    return status;
}

int
bg_cmd_demo(int argc, char **argv)
{
    static const struct option opts[] = {
        {"dir", required_argument, NULL, 'd'},  {"count", required_argument, NULL, 'n'},
        {"seed", required_argument, NULL, 's'}, {"dirty", required_argument, NULL, 'r'},
        {"help", no_argument, NULL, 'h'},       {NULL, 0, NULL, 0},
    };
    demo d = {.dir = "baygate-demo"};
    uint64_t count = 20000, seed = 2021;
    double dirty = 0.0005;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "d:n:s:r:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'd':
            d.dir = optarg;
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
    ssize_t sn = readlink("/proc/self/exe", d.self, sizeof d.self - 1);
    if (sn <= 0)
        return bg_cli_fail("demo", "cannot find this program: %s", strerror(errno));
    d.self[sn] = '\0';
    for (size_t i = 0; i < NDEMO; i++)
        d.gateways[i] = -1;

    char data_dir[DEMO_PATH];
    if (reset_dir(d.dir) != BG_EXIT_OK || !path_fmt(d.log, sizeof d.log, "%s/demo.log", d.dir) ||
        !path_fmt(data_dir, sizeof data_dir, "%s/data", d.dir))
        return BG_EXIT_ERROR;
    if (mkdir(data_dir, 0700) != 0)
        return bg_cli_fail("demo", "cannot create %s: %s", data_dir, strerror(errno));

    printf("baygate demo: a three-city credit federation on loopback, in %s/\n", d.dir);
    int rc = make_federation(&d);
    if (rc != BG_EXIT_OK)
        return rc;

    printf("\n2. Each city generates and imports its public credit data (%llu enterprises\n"
           "   each, defect rate %.4f%%); every row is validated, bad ones quarantined.\n",
           (unsigned long long)count, dirty * 100.0);
    struct city_run runs[NDEMO];
    memset(runs, 0, sizeof runs);
    for (size_t i = 0; i < NDEMO && rc == BG_EXIT_OK; i++)
        rc = load_city_data(&d, i, count, seed, dirty, &runs[i]);
    if (rc != BG_EXIT_OK)
        return rc;
    print_data_summary(runs);

    rc = start_gateways(&d);
    if (rc == BG_EXIT_OK)
        rc = ping_everyone(&d);
    if (rc == BG_EXIT_OK)
        rc = psi_act(&d);
    if (rc == BG_EXIT_OK)
        rc = rogue_attempt(&d);
    int stop = stop_gateways(&d);
    if (rc == BG_EXIT_OK)
        rc = stop;
    if (rc == BG_EXIT_OK)
        printf("\nDone. Gateway logs: %s/<city>.log; stores: %s/<city>/data/credit.db.\n"
               "Queries by hand: start the gateways again ('baygate serve --dir %s/<city>') and\n"
               "run 'baygate query --dir %s/440100 --peer all --list serious-dishonesty\n"
               "--purpose supervision --in %s/data/440100.ids'.\n",
               d.dir, d.dir, d.dir, d.dir, d.dir);
    return rc;
}
