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
 * answer is checked against the answering cities' stores. Then mutual
 * recognition: Shenzhen grades on its own scale, Guangzhou receives some of its
 * grades with attestations (each in Shenzhen's scale and on the roster's common
 * scale) and verifies one offline; Shenzhen repairs one evaluation and both
 * other cities see the new grade while the old attestation fails as revoked;
 * Shenzhen's evidence log proves a leaf against the root Guangzhou cosigned, and
 * every city's log verifies. A rogue with a look-alike CA is refused; the
 * gateways shut down cleanly. Every check is counted and the tour ends with one
 * verdict line (exit 1 if any check failed).
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

#include "certs/pki.h"
#include "domain/date.h"
#include "domain/list.h"
#include "domain/scale.h"
#include "domain/uscc.h"
#include "gateway/audit/audit.h"
#include "gateway/cli/cli.h"
#include "gateway/config/config.h"
#include "gateway/daemon/fedping.h"
#include "gateway/gen/gen.h"
#include "gateway/store/import.h"
#include "gateway/store/store.h"
#include "mpc/snapshot.h"
#include "peers/envelope.h"
#include "peers/roster.h"
#include "peers/transport.h"

extern char **environ;

#define DEMO_MARKER ".baygate-demo"
#define DEMO_PATH 4096
#define FEDERATION_NAME "Greater Bay Area Credit Federation"

typedef struct demo_city {
    const char *code;
    const char *name;
    const char *share_with; /* whose enterprises some of its rows reuse */
    const char *scale;      /* its own grade scale, best first: its store's and the roster's */
    unsigned common[BG_SCALE_MAX_GRADES]; /* the common rank of each grade of scale */
    /* The generator writes A..D; a city with another scale gets each of them as one of
     * two grades of its own (chosen by the USCC's last character), or as is if NULL. */
    const char *from_gen[4][2];
} demo_city;

/* Shenzhen grades on a finer scale of its own, so that recognising its grades in
 * Guangzhou means translating them: its AAA and AA are both the common 1 (A in
 * Guangzhou and Foshan). */
static const demo_city demo_cities[] = {
    {"440100", "Guangzhou", NULL, "ABCD=A,B,C,D", {1, 2, 3, 4}, {{NULL}}},
    {"440300",
     "Shenzhen",
     "440100",
     "SZ=AAA,AA,A,B,C",
     {1, 1, 2, 3, 4},
     {{"AAA", "AA"}, {"A", "A"}, {"B", "B"}, {"C", "C"}}},
    {"440600", "Foshan", "440100", "ABCD=A,B,C,D", {1, 2, 3, 4}, {{NULL}}},
};
#define NDEMO (sizeof demo_cities / sizeof demo_cities[0])
#define GZ 0 /* indexes in demo_cities */
#define SZ 1
#define DEMO_MAX_PICKS BG_SCALE_MAX_GRADES

/* What act 6 hands to act 7: one of Shenzhen's evaluations Guangzhou holds
 * attested, with the attestation file saved by the query. */
typedef struct recognised {
    bool ok;
    char uscc[BG_USCC_LEN + 1];
    char grade[BG_GRADE_MAX + 1];
    unsigned long long serial;
    char att[DEMO_PATH];
} recognised;

typedef struct demo {
    const char *dir;
    char self[DEMO_PATH]; /* this binary, to run the steps as commands */
    char log[DEMO_PATH];  /* where quiet commands write */
    int ports[NDEMO];
    pid_t gateways[NDEMO];
    unsigned checks, failed; /* every check the tour made, and how many failed */
    recognised rec;
} demo;

static void
demo_usage(FILE *f)
{
    fprintf(f, "usage: baygate demo [--dir DIR] [--count N] [--seed S] [--dirty R]\n\n"
               "Builds a three-city federation on loopback under DIR (default\n"
               "./baygate-demo, recreated on every run): CA, city keys and certificates,\n"
               "signed roster and CRL; N enterprises of generated credit data per city\n"
               "(default 20000, defect rate R, default 0.0005) imported into each city's\n"
               "store; then starts the three gateways, pings in all six directions, runs\n"
               "private set intersection queries, shows Shenzhen's grades recognised with\n"
               "attestations, a repair that revokes the old attestation, an evidence-log\n"
               "proof verified against another city's cosigned root, a rogue being refused,\n"
               "and shuts everything down. Every answer is checked; the last line is the\n"
               "verdict (exit 0 only if every check passed).\n");
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

/* Runs a step echoed, its output (stdout and stderr) into path, for the demo to read. */
static int
run_capture(demo *d, const char *const *args, const char *path)
{
    printf("  $ baygate");
    for (size_t i = 0; args[i] != NULL; i++)
        printf(strchr(args[i], ' ') ? " '%s'" : " %s", args[i]);
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

/* Counts one check of the tour; returns ok. */
static bool
tally(demo *d, bool ok)
{
    d->checks++;
    d->failed += !ok;
    return ok;
}

/* A whole (small) text file, NUL-terminated; NULL if unreadable. Free it. */
static char *
slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf != NULL) {
        n += fread(buf + n, 1, cap - 1 - n, f);
        if (n < cap - 1)
            break;
        char *more = cap < (16u << 20) ? realloc(buf, 2 * cap) : NULL;
        if (more == NULL) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = more;
        cap *= 2;
    }
    bool bad = ferror(f);
    fclose(f);
    if (buf == NULL || bad) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    return buf;
}

/* The first line of a file (a command's one-line result), without its newline. */
static void
first_line(const char *path, char *out, size_t size)
{
    out[0] = '\0';
    FILE *f = fopen(path, "r");
    if (f != NULL && fgets(out, (int)size, f) != NULL)
        out[strcspn(out, "\r\n")] = '\0';
    if (f != NULL)
        fclose(f);
}

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

/* Signed tree heads every second and witness rounds every two (the defaults are
 * a minute and five), so the tour sees its evidence cosigned within seconds.
 * Rewritten through the config module, which is how `init` wrote the file. */
static int
quick_audit(const char *gw)
{
    char ini[DEMO_PATH];
    if (!path_fmt(ini, sizeof ini, "%s/%s", gw, BG_CONFIG_FILE))
        return BG_EXIT_ERROR;
    bg_config cfg;
    bg_err err = {0};
    if (bg_config_load(ini, &cfg, &err) != BG_OK ||
        bg_config_set(&cfg, "audit", "head_interval_s", "1", &err) != BG_OK ||
        bg_config_set(&cfg, "audit", "witness_interval_s", "2", &err) != BG_OK ||
        bg_config_write(ini, &cfg, true, &err) != BG_OK)
        return bg_cli_fail("demo", "setting [audit] in %s: %s", ini, err.msg);
    return BG_EXIT_OK;
}

/* "A:1, B:2, ..." for the roster, from the city's scale and common ranks. */
static int
grade_map_text(const demo_city *c, bg_scale *scale, char *out, size_t size)
{
    bg_err err = {0};
    if (bg_scale_parse(c->scale, scale, &err) != BG_OK)
        return bg_cli_fail("demo", "%s's scale %s: %s", c->name, c->scale, err.msg);
    size_t len = 0;
    out[0] = '\0';
    for (size_t g = 0; g < scale->ngrades; g++) {
        int n = snprintf(out + len, size - len, "%s%s:%u", g ? ", " : "", scale->grades[g],
                         c->common[g]);
        if (n < 0 || (size_t)n >= size - len)
            return bg_cli_fail("demo", "%s's grade map is too long", c->name);
        len += (size_t)n;
    }
    return BG_EXIT_OK;
}

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
        if (quick_audit(gw[i]) != BG_EXIT_OK)
            return BG_EXIT_ERROR;
    }
    printf("   (each city's baygate.ini: [audit] head_interval_s = 1, witness_interval_s = 2,\n"
           "   so the tour sees signed tree heads and cosignatures within seconds)\n");

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
    char maps[NDEMO][160];
    for (size_t i = 0; i < NDEMO; i++) {
        bg_scale scale;
        if (grade_map_text(&demo_cities[i], &scale, maps[i], sizeof maps[i]) != BG_EXIT_OK) {
            fclose(f);
            return BG_EXIT_ERROR;
        }
        fprintf(f,
                "\n[member %s]\nname = %s\nendpoint = tls+tcp://127.0.0.1:%d\n"
                "certificate = %s/city.crt\nlists = serious-dishonesty, abnormal-operation\n"
                "scale = %s\ngrade_map = %s\n",
                demo_cities[i].code, demo_cities[i].name, d->ports[i], demo_cities[i].code,
                demo_cities[i].scale, maps[i]);
    }
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

    printf("\n   The roster also says how each city grades, best first, and what each grade\n"
           "   means on the federation's common scale 1..4:\n");
    for (size_t i = 0; i < NDEMO; i++)
        printf("     %-10s scale %-16s grade_map %s\n", demo_cities[i].name, demo_cities[i].scale,
               maps[i]);
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

/* Where field idx of a CSV line starts and ends (quotes included), following RFC 4180
 * quoting within the line; false if the line has fewer fields. */
static bool
field_span(const char *line, size_t idx, size_t *start, size_t *end)
{
    size_t i = 0;
    for (size_t k = 0;; k++) {
        size_t s = i;
        if (line[i] == '"') {
            for (i++; line[i] != '\0'; i++)
                if (line[i] == '"' && line[++i] != '"')
                    break;
        }
        while (line[i] != '\0' && line[i] != ',' && line[i] != '\r' && line[i] != '\n')
            i++;
        if (k == idx) {
            *start = s;
            *end = i;
            return true;
        }
        if (line[i] != ',')
            return false;
        i++;
    }
}

/* Splits a CSV line in place into at most max fields, unquoting them; returns how many. */
static size_t
csv_split(char *line, char **field, size_t max)
{
    line[strcspn(line, "\r\n")] = '\0';
    char *r = line, *w = line; /* w never passes r: quotes and separators are dropped */
    size_t n = 0;
    while (n < max) {
        field[n++] = w;
        if (*r == '"') {
            for (r++; *r != '\0'; r++) {
                if (*r == '"' && r[1] != '"') {
                    r++;
                    break;
                }
                if (*r == '"')
                    r++;
                *w++ = *r;
            }
        }
        while (*r != '\0' && *r != ',')
            *w++ = *r++;
        bool more = *r == ',';
        *w++ = '\0';
        if (!more)
            break;
        r++;
    }
    return n;
}

/* Rewrites a generated file's grades into the city's own scale (from_gen), leaving
 * every other byte as generated, defects included, so the import sees the same rows. */
static int
rescale_csv(const char *path, const demo_city *c)
{
    if (c->from_gen[0][0] == NULL)
        return BG_EXIT_OK;
    char tmp[DEMO_PATH];
    if (!path_fmt(tmp, sizeof tmp, "%s.tmp", path))
        return BG_EXIT_ERROR;
    FILE *in = fopen(path, "r"), *out = in ? fopen(tmp, "w") : NULL;
    if (out == NULL) {
        if (in)
            fclose(in);
        return bg_cli_fail("demo", "cannot rewrite %s: %s", path, strerror(errno));
    }
    char *line = NULL;
    size_t cap = 0, col = SIZE_MAX;
    ssize_t len;
    bool header = true;
    while ((len = getline(&line, &cap, in)) > 0) {
        size_t s, e, us, ue;
        if (header) {
            /* The generator's header names are plain: no quotes. */
            for (size_t k = 0; field_span(line, k, &s, &e); k++)
                if (e - s == 5 && memcmp(line + s, "grade", 5) == 0)
                    col = k;
            header = false;
        } else if (col != SIZE_MAX && field_span(line, col, &s, &e) && e - s == 1 &&
                   line[s] >= 'A' && line[s] <= 'D' && field_span(line, 0, &us, &ue)) {
            int parity = ue > us ? (unsigned char)line[ue - 1] & 1 : 0;
            fwrite(line, 1, s, out);
            fputs(c->from_gen[line[s] - 'A'][parity], out);
            fwrite(line + e, 1, (size_t)len - e, out);
            continue;
        }
        fwrite(line, 1, (size_t)len, out);
    }
    free(line);
    bool bad = ferror(in) || col == SIZE_MAX;
    fclose(in);
    if (fclose(out) != 0 || bad || rename(tmp, path) != 0) {
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
    if (rescale_csv(csv, &demo_cities[i]) != BG_EXIT_OK)
        return BG_EXIT_ERROR;

    if (bg_scale_parse(demo_cities[i].scale, &run->scale, &err) != BG_OK)
        return bg_cli_fail("demo", "%s's scale: %s", code, err.msg);
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
 * (rows the import refused stay in: the gateway reports invalid ones, never sends them).
 * ids NULL: only the set. */
static int
write_ids(const char *csv, const char *ids, size_t limit, code_set *valid, size_t *lines)
{
    FILE *in = fopen(csv, "r"), *out = in && ids ? fopen(ids, "w") : NULL;
    if (in == NULL || (ids != NULL && out == NULL)) {
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
        if (out != NULL)
            fprintf(out, "%s\n", line);
        n++;
        bg_uscc u;
        if (bg_uscc_parse(line, len, &u, NULL) == BG_OK && !set_add(valid, u.code, NULL))
            break;
    }
    fclose(in);
    if ((out != NULL && fclose(out) != 0) || !set_sort(valid))
        return bg_cli_fail("demo", "cannot write %s", ids ? ids : "the id set");
    *lines = n;
    return BG_EXIT_OK;
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

/* How many lines of a gateway's log hold event (" name "); the last one in last. */
static int
log_count(demo *d, const char *code, const char *event, char *last, size_t last_size)
{
    char log[DEMO_PATH];
    if (!path_fmt(log, sizeof log, "%s/%s.log", d->dir, code))
        return -1;
    FILE *f = fopen(log, "r");
    char line[2048];
    int n = 0;
    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
        if (strstr(line, event) == NULL)
            continue;
        n++;
        if (last != NULL)
            snprintf(last, last_size, "%s", line);
    }
    if (f != NULL)
        fclose(f);
    return n;
}

/* Waits (up to timeout_s) until a gateway's log holds more than `more_than` event lines. */
static bool
wait_log(demo *d, const char *code, const char *event, int more_than, int timeout_s, char *last,
         size_t last_size)
{
    time_t deadline = time(NULL) + timeout_s;
    struct timespec pause = {.tv_nsec = 100 * 1000 * 1000};
    for (;;) {
        if (log_count(d, code, event, last, last_size) > more_than)
            return true;
        if (time(NULL) > deadline)
            return false;
        nanosleep(&pause, NULL);
    }
}

/* Waits until a gateway's log shows its three lists published. */
static bool
wait_published(demo *d, const char *code)
{
    return wait_log(d, code, " psi.published ", 2, 120, NULL, 0);
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
        int qrc = run_capture(d, args, out);
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
    d->checks += (unsigned)checked;
    d->failed += (unsigned)wrong;
    if (rc != BG_EXIT_OK)
        return rc;
    if (wrong == 0)
        printf("\n   All %zu answers match the ground truth (the answering cities' stores).\n",
               checked);
    else
        printf("\n   %zu of %zu answers do NOT match the ground truth.\n", wrong, checked);
    return wrong == 0 ? BG_EXIT_OK : BG_EXIT_FAIL;
}

/* --- act 6: mutual recognition of evaluations --- */

/* One row of `baygate query --grades --csv` for a peer and an enterprise. */
typedef struct graded_row {
    bool found; /* a row for this enterprise */
    char grade[BG_GRADE_MAX + 1], scale[64], common[64], error[256];
    unsigned long long serial;
    bool attested;
} graded_row;

static void
read_graded(const char *path, const char *peer, const char *uscc, graded_row *g)
{
    memset(g, 0, sizeof *g);
    FILE *f = fopen(path, "r");
    char line[4096];
    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
        /* peer,ok,epoch,uscc,grade,scale,evaluated_at,valid_until,serial,count,error,
         * common_grade,attested */
        char *field[13];
        size_t nf = csv_split(line, field, 13);
        if (nf < 13 || strcmp(field[0], peer) != 0)
            continue;
        if (strcmp(field[1], "true") != 0) {
            snprintf(g->error, sizeof g->error, "%s", field[10]); /* the peer did not answer */
            continue;
        }
        if (strcmp(field[3], uscc) != 0)
            continue;
        g->found = true;
        snprintf(g->grade, sizeof g->grade, "%s", field[4]);
        snprintf(g->scale, sizeof g->scale, "%s", field[5]);
        g->serial = strtoull(field[8], NULL, 10);
        snprintf(g->error, sizeof g->error, "%s", field[10]);
        snprintf(g->common, sizeof g->common, "%s", field[11]);
        g->attested = strcmp(field[12], "true") == 0;
        break;
    }
    if (f != NULL)
        fclose(f);
}

typedef struct pick {
    char uscc[BG_USCC_LEN + 1];
    char grade[BG_GRADE_MAX + 1];
} pick;

struct pick_ctx {
    const code_set *asked, *listed;
    const bg_scale *scale;
    int32_t today;
    pick by_grade[DEMO_MAX_PICKS];
};

/* Keeps the first enterprise (in USCC order) of each grade that Guangzhou also holds,
 * whose evaluation is in force today (so it can be attested) and that is on none of
 * Shenzhen's lists: act 7 re-imports it without list columns, which would drop them. */
static int
pick_row(void *ctx, const bg_store_row *row, bg_err *err)
{
    (void)err;
    struct pick_ctx *c = ctx;
    int g = row->grade != NULL ? bg_scale_index(c->scale, row->grade, strlen(row->grade)) : -1;
    if (g < 0 || g >= DEMO_MAX_PICKS || c->by_grade[g].uscc[0] != '\0' || row->date1 > c->today ||
        row->date2 <= c->today || set_find(c->asked, row->uscc) == NULL ||
        set_find(c->listed, row->uscc) != NULL)
        return BG_OK;
    memcpy(c->by_grade[g].uscc, row->uscc, BG_USCC_LEN);
    c->by_grade[g].uscc[BG_USCC_LEN] = '\0';
    snprintf(c->by_grade[g].grade, sizeof c->by_grade[g].grade, "%s", row->grade);
    return BG_OK;
}

/* Picks one of Guangzhou's enterprises per grade of Shenzhen's (see pick_row). */
static int
pick_recognition(demo *d, const bg_scale *scale, struct pick_ctx *pc)
{
    const demo_city *sz = &demo_cities[SZ];
    char csv[DEMO_PATH], store_dir[DEMO_PATH];
    if (!path_fmt(csv, sizeof csv, "%s/data/%s.csv", d->dir, demo_cities[GZ].code) ||
        !path_fmt(store_dir, sizeof store_dir, "%s/%s/data", d->dir, sz->code))
        return BG_EXIT_ERROR;
    code_set asked = {0}, listed = {0};
    size_t lines = 0;
    int rc = write_ids(csv, NULL, SIZE_MAX, &asked, &lines);
    if (rc == BG_EXIT_OK) {
        bg_store *st = NULL;
        bg_err err = {0};
        int64_t last = 0;
        pc->asked = &asked;
        pc->listed = &listed;
        pc->scale = scale;
        pc->today = bg_date_today();
        int src = bg_store_open(&st, store_dir, sz->code, NULL, &err);
        /* Every entry, expired ones too: the repair must not drop any. */
        if (src == BG_OK)
            src = bg_store_scan(st, "serious-dishonesty", &last, truth_row, &listed, &err);
        if (src == BG_OK)
            src = bg_store_scan(st, "abnormal-operation", &last, truth_row, &listed, &err);
        if (src == BG_OK && !set_sort(&listed))
            src = bg_err_set(&err, BG_ENOMEM, "out of memory");
        if (src == BG_OK)
            src = bg_store_scan(st, NULL, &last, pick_row, pc, &err);
        bg_store_close(st);
        if (src != BG_OK)
            rc = bg_cli_fail("demo", "reading the %s store: %s", sz->name, err.msg);
    }
    pc->asked = pc->listed = NULL;
    set_free(&asked);
    set_free(&listed);
    return rc;
}

/* The first line of path that starts with prefix (or the first line), for showing a
 * command's one-line result. */
static void
result_line(const char *path, const char *prefix, char *out, size_t size)
{
    first_line(path, out, size);
    FILE *f = fopen(path, "r");
    char line[2048];
    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, prefix, strlen(prefix)) == 0) {
            size_t n = strcspn(line, "\r\n");
            if (n >= size)
                n = size - 1;
            memcpy(out, line, n);
            out[n] = '\0';
            break;
        }
    }
    if (f != NULL)
        fclose(f);
}

static int
recognition_act(demo *d)
{
    const demo_city *gz = &demo_cities[GZ], *sz = &demo_cities[SZ];
    char ids[DEMO_PATH], gw[DEMO_PATH], out[DEMO_PATH], att_dir[DEMO_PATH], ca[DEMO_PATH],
        pb[DEMO_PATH], status[DEMO_PATH], vout[DEMO_PATH], att[DEMO_PATH];
    if (!path_fmt(ids, sizeof ids, "%s/data/recognition.ids", d->dir) ||
        !path_fmt(gw, sizeof gw, "%s/%s", d->dir, gz->code) ||
        !path_fmt(out, sizeof out, "%s/recognition.csv", d->dir) ||
        !path_fmt(att_dir, sizeof att_dir, "%s/attest-%s-before", d->dir, gz->code) ||
        !path_fmt(ca, sizeof ca, "%s/federation-ca/ca.crt", d->dir) ||
        !path_fmt(pb, sizeof pb, "%s/roster.pb", d->dir) ||
        !path_fmt(status, sizeof status, "%s/%s.status", att_dir, sz->code) ||
        !path_fmt(vout, sizeof vout, "%s/attest-verify.txt", d->dir))
        return BG_EXIT_ERROR;
    bg_scale scale, gz_scale;
    bg_err err = {0};
    if (bg_scale_parse(sz->scale, &scale, &err) != BG_OK ||
        bg_scale_parse(gz->scale, &gz_scale, &err) != BG_OK)
        return bg_cli_fail("demo", "the demo's scales: %s", err.msg);

    printf("\n6. Mutual recognition of evaluations. Shenzhen grades on its own scale, %s;\n"
           "   Guangzhou on %s. Guangzhou asks Shenzhen for the grades of a few of its\n"
           "   enterprises (one of each of Shenzhen's grades, among those Shenzhen has\n"
           "   evaluated and that are in force) with attestations: Shenzhen's grade, sealed\n"
           "   in the snapshot it signed, and its meaning on the common scale per the roster.\n",
           sz->scale, gz->scale);
    struct pick_ctx pc;
    memset(&pc, 0, sizeof pc);
    int rc = pick_recognition(d, &scale, &pc);
    if (rc != BG_EXIT_OK)
        return rc;
    FILE *f = fopen(ids, "w");
    size_t npicks = 0;
    for (size_t g = 0; f != NULL && g < scale.ngrades; g++)
        if (pc.by_grade[g].uscc[0] != '\0' && fprintf(f, "%s\n", pc.by_grade[g].uscc) > 0)
            npicks++;
    if (f == NULL || fclose(f) != 0)
        return bg_cli_fail("demo", "cannot write %s", ids);
    if (npicks == 0) {
        printf("   (skipped: no enterprise of Guangzhou's has an evaluation by Shenzhen in force\n"
               "   today; try a larger --count)\n");
        return BG_EXIT_OK;
    }

    const char *const q[] = {"query",     "--dir",        gw,      "--peer", sz->code,
                             "--purpose", "supervision",  "--in",  ids,      "--grades",
                             "--csv",     "--attest-dir", att_dir, NULL};
    if (run_capture(d, q, out) == BG_EXIT_ERROR)
        return bg_cli_fail("demo", "the query failed; see %s", out);
    int target = -1;
    unsigned long long target_serial = 0;
    for (size_t g = 0; g < scale.ngrades; g++) {
        const pick *p = &pc.by_grade[g];
        if (p->uscc[0] == '\0')
            continue;
        graded_row r;
        read_graded(out, sz->code, p->uscc, &r);
        char want[16];
        snprintf(want, sizeof want, "%u", sz->common[g]);
        bool right = r.found && strcmp(r.grade, p->grade) == 0 &&
                     strcmp(r.scale, scale.name) == 0 && strcmp(r.common, want) == 0 && r.attested;
        tally(d, right);
        if (!r.found)
            printf("     %s  no answer%s%s   WRONG\n", p->uscc, r.error[0] ? ": " : "", r.error);
        else
            printf("     %s  grade %-3s (Shenzhen's scale %s) = common %s  %s   %s\n", p->uscc,
                   r.grade, r.scale, r.common, r.attested ? "attested" : "NOT attested",
                   right ? "ok" : "WRONG");
        if (r.found && !right)
            printf("       expected grade %s (Shenzhen's store) = common %s (the roster), "
                   "attested%s%s\n",
                   p->grade, want, r.error[0] ? "; got: " : "", r.error);
        if (right) {
            target = (int)g;
            target_serial = r.serial;
        }
    }
    /* What Guangzhou reads them as: the grade of its own scale with the same common rank. */
    printf("   Read on Guangzhou's own scale (%s), by common rank:", gz_scale.name);
    for (size_t g = 0; g < scale.ngrades; g++)
        for (size_t k = 0; k < gz_scale.ngrades; k++)
            if (gz->common[k] == sz->common[g]) {
                printf("%s %s = %s", g ? "," : "", scale.grades[g], gz_scale.grades[k]);
                break;
            }
    printf(".\n");
    if (target < 0) {
        printf("   No grade came back attested: nothing to verify offline or repair.\n");
        return BG_EXIT_FAIL;
    }

    /* The worst grade shown: the repair in act 7 improves it. */
    const pick *t = &pc.by_grade[target];
    if (!path_fmt(att, sizeof att, "%s/%s-%s.att", att_dir, sz->code, t->uscc))
        return BG_EXIT_ERROR;
    printf("\n   An attestation is a file: anyone can check it offline, without asking Shenzhen,\n"
           "   with the federation CA, the signed roster and Shenzhen's signed status list:\n");
    const char *const v[] = {"attest",   "verify", att,        "--ca", ca,
                             "--roster", pb,       "--status", status, NULL};
    int vrc = run_capture(d, v, vout);
    char line[1024], want[256], common[16];
    snprintf(common, sizeof common, "%u", sz->common[target]);
    snprintf(want, sizeof want, "OK: %s (%s) evaluated %s: grade %s (scale %s) = %s on the common",
             sz->code, sz->name, t->uscc, t->grade, scale.name, common);
    result_line(vout, "OK:", line, sizeof line);
    bool ok = tally(d, vrc == BG_EXIT_OK && strncmp(line, want, strlen(want)) == 0);
    printf("   %s\n   %s\n", line,
           ok ? "ok" : "WRONG: expected it to verify with the grades above");

    recognised *rec = &d->rec;
    rec->ok = true;
    snprintf(rec->uscc, sizeof rec->uscc, "%s", t->uscc);
    snprintf(rec->grade, sizeof rec->grade, "%s", t->grade);
    snprintf(rec->att, sizeof rec->att, "%s", att);
    rec->serial = target_serial;
    return ok ? BG_EXIT_OK : BG_EXIT_FAIL;
}

/* --- act 7: a repair that propagates --- */

/* The name a city's generated file gives an enterprise (canonical USCC). */
static bool
csv_name(const char *csv, const char *uscc, char *name, size_t size)
{
    FILE *f = fopen(csv, "r");
    char *line = NULL;
    size_t cap = 0;
    bool found = false;
    while (!found && f != NULL && getline(&line, &cap, f) > 0) {
        char *field[2];
        bg_uscc u;
        if (csv_split(line, field, 2) == 2 && field[1][0] != '\0' &&
            bg_uscc_parse(field[0], strlen(field[0]), &u, NULL) == BG_OK &&
            memcmp(u.code, uscc, BG_USCC_LEN) == 0) {
            snprintf(name, size, "%s", field[1]);
            found = true;
        }
    }
    free(line);
    if (f != NULL)
        fclose(f);
    return found;
}

static void
put_csv_cell(FILE *f, const char *s)
{
    if (strpbrk(s, ",\"\r\n") == NULL) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s != '\0'; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

/* Guangzhou and Foshan each ask Shenzhen again: the new grade, attested, and the
 * old attestation revoked. BG_EXIT_FAIL if a check failed. */
static int
ask_again(demo *d, size_t asker, const char *ids, const char *new_grade, unsigned common)
{
    const demo_city *sz = &demo_cities[SZ], *a = &demo_cities[asker];
    const recognised *rec = &d->rec;
    char gw[DEMO_PATH], out[DEMO_PATH], att_dir[DEMO_PATH], status[DEMO_PATH], ca[DEMO_PATH],
        pb[DEMO_PATH], vout[DEMO_PATH];
    if (!path_fmt(gw, sizeof gw, "%s/%s", d->dir, a->code) ||
        !path_fmt(out, sizeof out, "%s/repair-%s.csv", d->dir, a->code) ||
        !path_fmt(att_dir, sizeof att_dir, "%s/attest-%s-after", d->dir, a->code) ||
        !path_fmt(status, sizeof status, "%s/%s.status", att_dir, sz->code) ||
        !path_fmt(ca, sizeof ca, "%s/federation-ca/ca.crt", d->dir) ||
        !path_fmt(pb, sizeof pb, "%s/roster.pb", d->dir) ||
        !path_fmt(vout, sizeof vout, "%s/attest-verify.txt", d->dir))
        return BG_EXIT_ERROR;
    printf("\n   %s asks Shenzhen:\n", a->name);
    const char *const q[] = {"query",     "--dir",        gw,      "--peer", sz->code,
                             "--purpose", "supervision",  "--in",  ids,      "--grades",
                             "--csv",     "--attest-dir", att_dir, NULL};
    if (run_capture(d, q, out) == BG_EXIT_ERROR)
        return bg_cli_fail("demo", "the query failed; see %s", out);
    graded_row r;
    read_graded(out, sz->code, rec->uscc, &r);
    char want[16];
    snprintf(want, sizeof want, "%u", common);
    /* A changed record gets a new serial: that is what lets the old one be revoked. */
    bool right = tally(d, r.found && strcmp(r.grade, new_grade) == 0 &&
                              strcmp(r.common, want) == 0 && r.attested && r.serial != rec->serial);
    if (r.found)
        printf("     sees grade %s (scale %s) = common %s, %s, serial %llu (was %llu)   %s\n",
               r.grade, r.scale, r.common, r.attested ? "attested" : "NOT attested", r.serial,
               rec->serial, right ? "ok" : "WRONG");
    else
        printf("     no answer for %s%s%s   WRONG\n", rec->uscc, r.error[0] ? ": " : "", r.error);
    if (r.found && !right)
        printf("     expected grade %s = common %s, attested, under a new serial\n", new_grade,
               want);

    printf("   The old attestation (Guangzhou's file from act 6) against the status list\n"
           "   %s just received:\n",
           a->name);
    const char *const v[] = {"attest",   "verify", rec->att,   "--ca", ca,
                             "--roster", pb,       "--status", status, NULL};
    int vrc = run_capture(d, v, vout);
    char line[1024], revoked[64];
    first_line(vout, line, sizeof line);
    snprintf(revoked, sizeof revoked, "serial %llu revoked", rec->serial);
    bool gone = tally(d, vrc == BG_EXIT_FAIL && strncmp(line, "FAIL: ", 6) == 0 &&
                             strstr(line, revoked) != NULL);
    printf("     %s   %s\n", line, gone ? "ok (revoked)" : "WRONG: it must fail as revoked");
    return right && gone ? BG_EXIT_OK : BG_EXIT_FAIL;
}

static int
repair_act(demo *d)
{
    const demo_city *sz = &demo_cities[SZ];
    const recognised *rec = &d->rec;
    printf("\n7. A repair that propagates. The enterprise with the worst grade above puts\n"
           "   things right (整改) and Shenzhen re-evaluates it: a one-row import. Its\n"
           "   gateway republishes its lists and a signed status list revoking the old\n"
           "   record, so the old attestation stops verifying everywhere.\n");
    if (!rec->ok) {
        printf("   (skipped: act 6 left no attested evaluation to repair)\n");
        return BG_EXIT_OK;
    }
    char csv[DEMO_PATH], store_dir[DEMO_PATH], fix[DEMO_PATH], iout[DEMO_PATH], ids[DEMO_PATH];
    if (!path_fmt(csv, sizeof csv, "%s/data/%s.csv", d->dir, sz->code) ||
        !path_fmt(store_dir, sizeof store_dir, "%s/%s/data", d->dir, sz->code) ||
        !path_fmt(fix, sizeof fix, "%s/data/%s-repair.csv", d->dir, sz->code) ||
        !path_fmt(iout, sizeof iout, "%s/repair-import.json", d->dir) ||
        !path_fmt(ids, sizeof ids, "%s/data/repair.ids", d->dir))
        return BG_EXIT_ERROR;
    bg_scale scale;
    bg_err err = {0};
    if (bg_scale_parse(sz->scale, &scale, &err) != BG_OK)
        return bg_cli_fail("demo", "Shenzhen's scale: %s", err.msg);
    int old = bg_scale_index(&scale, rec->grade, strlen(rec->grade));
    if (old < 0)
        return bg_cli_fail("demo", "grade %s is not in %s", rec->grade, sz->scale);
    /* One grade better; the best grade can only be re-rated down. */
    size_t better = old > 0 ? (size_t)old - 1 : 1;
    const char *new_grade = scale.grades[better];
    char name[512], today[11], until[11];
    int32_t day = bg_date_today();
    bg_date_format(day, today);
    bg_date_format(day + 365, until);
    if (!csv_name(csv, rec->uscc, name, sizeof name))
        return bg_cli_fail("demo", "%s is not in %s", rec->uscc, csv);
    FILE *f = fopen(fix, "w");
    if (f != NULL) {
        fprintf(f, "uscc,name,grade,evaluated_at,valid_until\n%s,", rec->uscc);
        put_csv_cell(f, name);
        fprintf(f, ",%s,%s,%s\n", new_grade, today, until);
    }
    if (f == NULL || fclose(f) != 0)
        return bg_cli_fail("demo", "cannot write %s", fix);
    f = fopen(ids, "w");
    if (f == NULL || fprintf(f, "%s\n", rec->uscc) < 0 || fclose(f) != 0)
        return bg_cli_fail("demo", "cannot write %s", ids);

    printf("\n   %s (%s): grade %s -> %s, evaluated %s, valid until %s\n", rec->uscc, name,
           rec->grade, new_grade, today, until);
    int before = log_count(d, sz->code, " attest.status_published ", NULL, 0);
    const char *const imp[] = {"import", "--data-dir", store_dir, "--json", fix, NULL};
    int irc = run_capture(d, imp, iout);
    char *json = slurp(iout);
    bool updated =
        tally(d, irc == BG_EXIT_OK && json != NULL && strstr(json, "\"updated\":1,") != NULL);
    free(json);
    printf("   %s\n", updated
                          ? "Shenzhen's store: 1 evaluation replaced (a new record, a new serial)"
                          : "the import did NOT replace the evaluation");
    if (!updated)
        return BG_EXIT_FAIL;
    char last[2048] = "";
    bool published =
        tally(d, wait_log(d, sz->code, " attest.status_published ", before, 60, last, sizeof last));
    const char *ev = strstr(last, "attest.status_published");
    if (ev != NULL)
        ev += strlen("attest.status_published ");
    last[strcspn(last, "\r\n")] = '\0';
    if (published)
        printf("   Shenzhen's gateway noticed the import; its log: status list published, %s\n",
               ev != NULL ? ev : last);
    else
        printf("   Shenzhen's gateway published no new status list within 60 s: WRONG\n");
    if (!published)
        return BG_EXIT_FAIL;

    int wrong = 0;
    for (size_t asker = GZ; asker < NDEMO; asker++) {
        if (asker == SZ)
            continue;
        int w = ask_again(d, asker, ids, new_grade, sz->common[better]);
        if (w == BG_EXIT_ERROR)
            return w;
        wrong += w != BG_EXIT_OK;
    }
    return wrong == 0 ? BG_EXIT_OK : BG_EXIT_FAIL;
}

/* --- act 8: evidence verified across cities --- */

static int
hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* 64 lower-case hex characters at s (stops at the first that is not one). */
static bool
hash_from_hex(const char *s, bg_audit_hash out)
{
    for (size_t i = 0; i < BG_AUDIT_HASH_LEN; i++) {
        int hi = hex_digit(s[2 * i]);
        int lo = hi < 0 ? -1 : hex_digit(s[2 * i + 1]);
        if (lo < 0)
            return false;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

/* From `audit witness --json`: the last head of peer this city cosigned (its "peers"
 * array; "received" and "conflicts" come after it and are cut off here). */
static bool
cosigned_head(char *json, const char *peer, uint64_t *size, bg_audit_hash root)
{
    char *end = strstr(json, "],\"received\":"), key[64];
    if (end == NULL)
        return false;
    *end = '\0';
    snprintf(key, sizeof key, "{\"peer\":\"%s\",\"size\":", peer);
    char *p = strstr(json, key), *e = NULL;
    if (p == NULL)
        return false;
    p += strlen(key);
    unsigned long long n = strtoull(p, &e, 10);
    if (e == p || strncmp(e, ",\"root\":\"", 9) != 0 || !hash_from_hex(e + 9, root))
        return false;
    *size = n;
    return true;
}

static const char *
last_of(const char *s, const char *needle)
{
    const char *hit = NULL;
    for (const char *p = s; (p = strstr(p, needle)) != NULL; p++)
        hit = p;
    return hit;
}

/* What `audit proof --json` says: the leaf's hash, the root, the path, its own verdict.
 * The leaf object comes first and may hold free text (its reason), so the proof's own
 * fields are taken at their last occurrence. */
typedef struct proof_json {
    bg_audit_hash leaf, root, path[BG_AUDIT_PROOF_MAX];
    size_t n;
    bool verified;
} proof_json;

static bool
parse_proof(const char *json, proof_json *p)
{
    memset(p, 0, sizeof *p);
    const char *h = strstr(json, "\"leaf\":{\"index\":");
    h = h != NULL ? strstr(h, ",\"hash\":\"") : NULL;
    const char *r = last_of(json, ",\"root\":\""), *q = last_of(json, ",\"proof\":["),
               *v = last_of(json, ",\"verified\":");
    if (h == NULL || r == NULL || q == NULL || v == NULL || !hash_from_hex(h + 9, p->leaf) ||
        !hash_from_hex(r + 9, p->root))
        return false;
    p->verified = strncmp(v + 12, "true", 4) == 0;
    for (q += 10; *q == '"'; q += 66) {
        if (p->n == BG_AUDIT_PROOF_MAX || !hash_from_hex(q + 1, p->path[p->n]) || q[65] != '"')
            return false;
        p->n++;
        if (q[66] == ',')
            q++;
    }
    return *q == ']';
}

/* The newest leaf in which Shenzhen recorded answering Guangzhou: the evidence of
 * the queries above (the log holds no enterprise identifiers, only who, what, when). */
static int
find_answer_leaf(demo *d, uint64_t *leaf, bg_audit_event *ev)
{
    char dir[DEMO_PATH];
    if (!path_fmt(dir, sizeof dir, "%s/%s/data/audit", d->dir, demo_cities[SZ].code))
        return BG_EXIT_ERROR;
    bg_audit_log *log = NULL;
    bg_err err = {0};
    if (bg_audit_open(&log, dir, demo_cities[SZ].code, BG_AUDIT_READ_ONLY, NULL, &err) != BG_OK)
        return bg_cli_fail("demo", "Shenzhen's evidence log: %s", err.msg);
    int rc = BG_EXIT_FAIL;
    for (uint64_t i = bg_audit_size(log); i-- > 0;) {
        if (bg_audit_leaf_read(log, i, NULL, NULL, ev, &err) != BG_OK) {
            rc = bg_cli_fail("demo", "Shenzhen's evidence log, leaf %llu: %s",
                             (unsigned long long)i, err.msg);
            break;
        }
        if (ev->kind == BG_AUDIT_REQUEST_ANSWERED && strcmp(ev->peer, demo_cities[GZ].code) == 0) {
            *leaf = i;
            rc = BG_EXIT_OK;
            break;
        }
    }
    bg_audit_close(log);
    return rc;
}

/* Polls Guangzhou's witness store until it holds a cosigned head of Shenzhen's log
 * covering leaf. */
static bool
wait_cosigned(demo *d, uint64_t leaf, uint64_t *size, bg_audit_hash root)
{
    char gw[DEMO_PATH], out[DEMO_PATH];
    if (!path_fmt(gw, sizeof gw, "%s/%s", d->dir, demo_cities[GZ].code) ||
        !path_fmt(out, sizeof out, "%s/witness.json", d->dir))
        return false;
    const char *const args[] = {"audit", "witness", "--dir", gw, "--json", NULL};
    printf("  $ baygate audit witness --dir %s --json    (until it covers leaf %llu)\n", gw,
           (unsigned long long)leaf);
    fflush(stdout);
    time_t deadline = time(NULL) + 60;
    struct timespec pause = {.tv_nsec = 250 * 1000 * 1000};
    for (;;) {
        unlink(out);
        pid_t pid = spawn_self(d, args, out);
        int st = 0;
        while (pid > 0 && waitpid(pid, &st, 0) < 0 && errno == EINTR)
            ;
        char *json = pid > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0 ? slurp(out) : NULL;
        bool got = json != NULL && cosigned_head(json, demo_cities[SZ].code, size, root);
        free(json);
        if (got && *size > leaf)
            return true;
        if (time(NULL) > deadline)
            return false;
        nanosleep(&pause, NULL);
    }
}

static int
audit_act(demo *d)
{
    const demo_city *sz = &demo_cities[SZ];
    char szgw[DEMO_PATH], pout[DEMO_PATH], vout[DEMO_PATH];
    if (!path_fmt(szgw, sizeof szgw, "%s/%s", d->dir, sz->code) ||
        !path_fmt(pout, sizeof pout, "%s/proof.json", d->dir) ||
        !path_fmt(vout, sizeof vout, "%s/audit-verify.txt", d->dir))
        return BG_EXIT_ERROR;
    printf("\n8. Evidence. Every gateway appends each request and answer to an append-only\n"
           "   Merkle log (who asked whom, for what, when; never an enterprise), signs its\n"
           "   tree head (here every second) and, every two seconds, fetches its peers'\n"
           "   heads, checks that each extends what it saw before, and cosigns it.\n"
           "   Shenzhen's latest signed head:\n");
    const char *const head[] = {"audit", "head", "--dir", szgw, NULL};
    int wrong = !tally(d, run(d, SHOW, head) == BG_EXIT_OK);

    uint64_t leaf = 0, size = 0;
    bg_audit_event ev;
    int rc = find_answer_leaf(d, &leaf, &ev);
    if (rc == BG_EXIT_ERROR)
        return rc;
    if (!tally(d, rc == BG_EXIT_OK)) {
        printf("   Shenzhen's log records no answer to Guangzhou: WRONG\n");
        return BG_EXIT_FAIL;
    }
    char when[BG_PKI_TIME_LEN];
    bg_pki_time_format((time_t)(ev.time_ms / 1000), when);
    printf("\n   Leaf %llu of Shenzhen's log records that at %s it answered\n"
           "   Guangzhou (purpose %s, list %s, %u item%s). Guangzhou, as a witness,\n"
           "   must have cosigned a head covering it:\n",
           (unsigned long long)leaf, when, ev.purpose, ev.list[0] ? ev.list : "-", ev.items_asked,
           ev.items_asked == 1 ? "" : "s");
    bg_audit_hash gz_root;
    if (!tally(d, wait_cosigned(d, leaf, &size, gz_root))) {
        printf("   Guangzhou cosigned no head of Shenzhen's covering leaf %llu within 60 s: "
               "WRONG\n",
               (unsigned long long)leaf);
        return BG_EXIT_FAIL;
    }
    char gz_hex[65], sz_hex[65], leaf_s[24], size_s[24];
    bg_audit_hash_hex(gz_root, gz_hex);
    printf("   Guangzhou cosigned Shenzhen's head of size %llu, root %s\n",
           (unsigned long long)size, gz_hex);

    printf("\n   Shenzhen proves leaf %llu is in its log at exactly that size:\n",
           (unsigned long long)leaf);
    snprintf(leaf_s, sizeof leaf_s, "%llu", (unsigned long long)leaf);
    snprintf(size_s, sizeof size_s, "%llu", (unsigned long long)size);
    const char *const proof[] = {"audit", "proof",  "--dir", szgw,     "--leaf",
                                 leaf_s,  "--size", size_s,  "--json", NULL};
    int prc = run_capture(d, proof, pout);
    char *json = slurp(pout);
    proof_json pj;
    bool parsed = json != NULL && parse_proof(json, &pj);
    free(json);
    bool same = parsed && memcmp(pj.root, gz_root, BG_AUDIT_HASH_LEN) == 0;
    /* The demo checks the path itself, against the root Guangzhou cosigned, rather than
     * trusting Shenzhen's own "verified". */
    bg_err verr = {0};
    bool path_ok = parsed && bg_audit_verify_inclusion(leaf, size, pj.leaf, pj.path, pj.n, gz_root,
                                                       &verr) == BG_OK;
    bool ok = tally(d, prc == BG_EXIT_OK && parsed && pj.verified && same && path_ok);
    if (parsed) {
        bg_audit_hash_hex(pj.root, sz_hex);
        printf("   Shenzhen's proof: %zu hashes, root %s\n"
               "   Guangzhou cosigned:          root %s  (%s)\n"
               "   leaf %llu hashed up the path %s Guangzhou's root: %s\n",
               pj.n, sz_hex, gz_hex, same ? "equal" : "DIFFERENT", (unsigned long long)leaf,
               path_ok ? "gives" : "does NOT give", ok ? "verified across cities   ok" : "WRONG");
        if (!path_ok)
            printf("   %s\n", verr.msg);
    } else {
        printf("   no proof could be read from %s: WRONG\n", pout);
    }
    wrong += !ok;

    printf("\n   Each city re-reads its whole log: every leaf hash recomputed, every signed\n"
           "   head's signature and root checked:\n");
    for (size_t i = 0; i < NDEMO; i++) {
        char gw[DEMO_PATH], line[1024], first[512];
        if (!path_fmt(gw, sizeof gw, "%s/%s", d->dir, demo_cities[i].code))
            return BG_EXIT_ERROR;
        const char *const args[] = {"audit", "verify", "--dir", gw, NULL};
        int vrc = run_capture(d, args, vout);
        first_line(vout, first, sizeof first);
        result_line(vout, "ok:", line, sizeof line);
        if (strncmp(line, "ok:", 3) != 0)
            result_line(vout, "FAILED", line, sizeof line);
        bool good = tally(d, vrc == BG_EXIT_OK && strncmp(line, "ok:", 3) == 0);
        const char *counts = strstr(first, ": ");
        printf("     %-10s %s\n                %s\n", demo_cities[i].name,
               counts ? counts + 2 : first, line);
        wrong += !good;
    }
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
    printf("\n9. A rogue makes a CA with the federation's exact name and a certificate\n"
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
    tally(d, rc == BG_OK && !res.ok);
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
    printf("\n10. SIGTERM to the gateways: they finish in-flight work and exit.\n");
    for (size_t i = 0; i < NDEMO; i++) {
        if (d->gateways[i] <= 0)
            continue;
        int st = 0;
        while (waitpid(d->gateways[i], &st, 0) < 0 && errno == EINTR)
            ;
        bool clean = tally(d, WIFEXITED(st) && WEXITSTATUS(st) == 0);
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
    /* A failed check does not stop the tour (the later acts still show something
     * true); an operational error does. */
    static int (*const acts[])(demo *) = {psi_act, recognition_act, repair_act, audit_act,
                                          rogue_attempt};
    for (size_t i = 0; rc != BG_EXIT_ERROR && i < sizeof acts / sizeof acts[0]; i++) {
        int a = acts[i](&d);
        if (a > rc)
            rc = a;
    }
    int stop = stop_gateways(&d);
    if (stop > rc)
        rc = stop;
    if (rc == BG_EXIT_OK && d.failed > 0)
        rc = BG_EXIT_FAIL;
    if (rc != BG_EXIT_ERROR)
        printf("\nGateway logs: %s/<city>.log; stores: %s/<city>/data/credit.db; evidence:\n"
               "%s/<city>/data/audit ('baygate audit head|proof|verify|witness --dir %s/<city>');\n"
               "attestations: %s/attest-* ('baygate attest verify FILE --ca %s/federation-ca\n"
               "--roster %s/roster.pb --status DIR/440300.status'). Queries by hand: start the\n"
               "gateways again ('baygate serve --dir %s/<city>') and run 'baygate query --dir\n"
               "%s/440100 --peer all --list serious-dishonesty --purpose supervision --in\n"
               "%s/data/440100.ids'.\n",
               d.dir, d.dir, d.dir, d.dir, d.dir, d.dir, d.dir, d.dir, d.dir, d.dir);
    if (rc == BG_EXIT_ERROR)
        printf("\nVerdict: FAILED: the tour stopped early (%u of %u checks made had failed); "
               "see the message above and %s.\n",
               d.failed, d.checks, d.log);
    else if (rc != BG_EXIT_OK)
        printf("\nVerdict: FAILED: %u of %u checks failed.\n", d.failed, d.checks);
    else
        printf("\nVerdict: PASSED: all %u checks passed.\n", d.checks);
    return rc;
}
