/*
 * cmd_query.c - baygate query: ask peers, through the city's own gateway,
 * which of our enterprises are on their lists (or their grades, or how many),
 * by private set intersection. The gateway validates the ids, never sends
 * invalid ones, and runs the protocol with every peer at once.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/file.h"
#include "common/json.h"
#include "domain/uscc.h"
#include "gateway/api/api_json.h"
#include "gateway/api/api_rows.h"
#include "gateway/cli/cli.h"
#include "gateway/daemon/codes.h"
#include "peers/roster.h"
#include "proto/api.pb-c.h"
#include "proto/pb.h"

enum { OUT_TABLE, OUT_JSON, OUT_CSV };

#define BG_QUERY_AUTH_REF_MAX 64U /* bytes; the envelope bounds it the same way */

static void
query_usage(FILE *f)
{
    fprintf(
        f,
        "usage: baygate query --dir GW --peer CITY|all --list LIST... --purpose P --in FILE\n"
        "                     [--grades | --count] [--json | --csv] [--timeout-ms N]\n"
        "                     [--consent FILE | --auth-ref HEX] [--attest-dir DIR] [--quiet]\n\n"
        "Asks peers which of the enterprises in FILE (one USCC per line, '-' for\n"
        "stdin; blank lines skipped) are on their LIST (serious-dishonesty,\n"
        "abnormal-operation), by private set intersection: the peers never learn\n"
        "what was asked. --list may be given several times: each list is asked in\n"
        "turn. --grades: also their evaluations of those enterprises (the list\n"
        "'grades'); --count: only how many are on LIST. --peer may be given several\n"
        "times. A list or purpose the roster does not know is refused here (exit 2).\n"
        "Invalid ids are reported and never sent. FILE holds at most 2097152 ids,\n"
        "lines of at most 256 bytes and no NUL byte: anything else is refused,\n"
        "naming the line, before any peer is asked.\n"
        "Output: a table; or --json, one object per list, one per line; or --csv,\n"
        "one row per input line per peer (per peer for --count) with the columns\n"
        "status (matched, not matched, invalid, error, count), line, input, id\n"
        "(canonical) and list, so it joins back to FILE, grade_status and request_id.\n"
        "Every peer's exchange has a request id (hex, in every output): the leaves\n"
        "both cities' evidence logs hold of it carry it (baygate audit find --request).\n"
        "Purposes that need the enterprise's written authorisation (the roster says\n"
        "which) need --consent FILE (its SHA-256 is sent as the authorisation\n"
        "reference; the document itself stays here) or --auth-ref HEX (1..64 bytes).\n"
        "--grades shows each grade also on the federation's common scale and whether\n"
        "its attestation (the answering city's signed snapshot, the entry's inclusion\n"
        "proof, its status list) verifies; --attest-dir DIR also saves them there\n"
        "for `baygate attest verify`. Each graded row has a grade status, never a bare\n"
        "grade: attested; unattested (the attestation did not verify; the reason is\n"
        "given); or expired (its valid_until has passed). The CSV has it in the\n"
        "column grade_status (before request_id, the last); --json as \"grade_status\" in each\n"
        "row and \"status\" in each grade.\n"
        "With several peers, the table and the CSV give each peer's part as soon as\n"
        "its answer comes (a peer that is slow or down holds up only its own lines),\n"
        "so their order is the order of the answers; --json waits for every peer and\n"
        "gives one object per list.\n"
        "On a terminal, a line on stderr shows what is being asked, for how long, and\n"
        "each peer's snapshot the gateway is fetching for it, how far (never with\n"
        "--json; --quiet turns it off).\n"

        "\n"
        "EXAMPLES\n"
        "  baygate query --dir GZ --peer all --list serious-dishonesty --purpose supervision --in "
        "ids.txt\n"
        "  baygate query --dir GZ --peer 440300 --grades --purpose supervision --in ids.txt --csv\n"
        "  baygate query --dir GZ --peer 440300 --list abnormal-operation --count --purpose "
        "supervision --in ids.txt\n"
        "\n"
        "EXIT STATUS\n"
        "  0  every peer answered\n"
        "  1  some peer did not\n"
        "  2  usage or local error\n");
}

/* The ids of path ('-': stdin), bounded as the gateway bounds a query (api_rows.h). */
static int
read_ids(const char *path, bg_api_ids *l)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (f == NULL)
        return bg_cli_fail("query", "cannot open %s: %s", path, strerror(errno));
    bg_err err = {0};
    int rc = bg_api_ids_read(f, path, l, &err);
    if (f != stdin)
        fclose(f);
    return rc == BG_OK ? BG_EXIT_OK : bg_cli_fail("query", "%s", err.msg);
}

static const char *const mode_names[] = {"?", "membership", "graded", "count"};

static void
json_rows(const Baygate__QueryAnswer *qa, const Baygate__PeerQueryResult *p, const bg_api_ids *ids)
{
    printf(",\"rows\":[");
    for (size_t i = 0; i < ids->n; i++) {
        bg_api_row r = bg_api_row_of(qa, p, ids, i);
        printf("%s{\"line\":%zu,\"input\":", i ? "," : "", ids->lines[i]);
        bg_json_cstr(stdout, ids->ids[i]);
        printf(",\"id\":");
        bg_json_cstr(stdout, ids->why[i] ? "" : ids->code[i]);
        printf(",\"status\":\"%s\"", r.status);
        if (r.g != NULL)
            printf(",\"grade_status\":\"%s\"", bg_api_grade_status(r.g));
        if (ids->why[i] != NULL) {
            printf(",\"reason\":");
            bg_json_cstr(stdout, r.why);
        }
        printf("}");
    }
    printf("]");
}

static void
json_grades(const Baygate__PeerQueryResult *p)
{
    printf(",\"unopened\":%llu,\"status_number\":%llu,\"grades\":[",
           (unsigned long long)p->unopened, (unsigned long long)p->status_number);
    for (size_t k = 0; k < p->n_grades; k++) {
        const Baygate__GradeResult *g = p->grades[k];
        printf("%s{\"uscc\":", k ? "," : "");
        bg_json_cstr(stdout, g->uscc);
        printf(",\"grade\":");
        bg_json_cstr(stdout, g->grade);
        printf(",\"scale\":");
        bg_json_cstr(stdout, g->scale);
        printf(",\"evaluated_at\":");
        bg_json_cstr(stdout, g->evaluated_at);
        printf(",\"valid_until\":");
        bg_json_cstr(stdout, g->valid_until);
        printf(",\"serial\":%llu,\"common_grade\":", (unsigned long long)g->serial);
        bg_json_cstr(stdout, g->common_grade);
        printf(",\"common_rank\":%u,\"attested\":%s,\"status\":\"%s\"", g->common_rank,
               g->attested ? "true" : "false", bg_api_grade_status(g));
        if (!g->attested) {
            printf(",\"attestation_error\":");
            bg_json_cstr(stdout, g->attestation_error);
        }
        printf("}");
    }
    printf("]");
}

static void
json_peer(const Baygate__QueryAnswer *qa, const Baygate__PeerQueryResult *p, const bg_api_ids *ids)
{
    printf("{\"peer\":");
    bg_json_cstr(stdout, p->peer);
    printf(",\"name\":");
    bg_json_cstr(stdout, p->peer_name);
    /* null, not "": nothing was sent to this peer, so no exchange to look up. */
    char rid[33];
    printf(",\"ok\":%s,\"request_id\":", p->ok ? "true" : "false");
    if (bg_api_request_hex(p, rid)[0])
        printf("\"%s\"", rid);
    else
        printf("null");
    if (!p->ok) {
        printf(",\"error_code\":%u,\"error\":", p->error_code);
        bg_json_cstr(stdout, p->error);
    }
    printf(",\"generation\":%llu,\"epoch\":%llu,\"list_size\":%llu,\"snapshot\":",
           (unsigned long long)p->generation, (unsigned long long)p->epoch,
           (unsigned long long)p->list_size);
    bg_json_cstr(stdout, p->snapshot);
    printf(",\"items\":%u,\"snapshot_ms\":%u,\"psi_ms\":%u,\"bytes_sent\":%llu,"
           "\"bytes_received\":%llu",
           p->items, p->snapshot_ms, p->psi_ms, (unsigned long long)p->bytes_sent,
           (unsigned long long)p->bytes_received);
    if (p->ok && qa->mode == 3)
        printf(",\"count\":%llu", (unsigned long long)p->count);
    if (p->ok && qa->mode != 3) {
        printf(",\"matches\":[");
        for (size_t k = 0; k < p->n_matches; k++) {
            printf("%s", k ? "," : "");
            bg_json_cstr(stdout, p->matches[k]);
        }
        printf("]");
    }
    if (p->ok && qa->mode == 2)
        json_grades(p);
    if (qa->mode != 3)
        json_rows(qa, p, ids);
    printf("}");
}

/* One object; "invalid" holds every invalid id (as read here), "rows" in each peer one
 * entry per input line (membership and graded). */
static void
print_json(const Baygate__QueryAnswer *qa, const bg_api_ids *ids)
{
    printf("{\"list\":");
    bg_json_cstr(stdout, qa->list);
    printf(",\"mode\":\"%s\",\"ids\":%zu,\"valid_ids\":%u,\"invalid_total\":%u,\"invalid\":[",
           mode_names[qa->mode <= 3 ? qa->mode : 0], ids->n, qa->valid_ids, qa->invalid_total);
    for (size_t i = 0, k = 0; i < ids->n; i++) {
        if (ids->why[i] == NULL)
            continue;
        printf("%s{\"line\":%zu,\"id\":", k++ ? "," : "", ids->lines[i]);
        bg_json_cstr(stdout, ids->ids[i]);
        printf(",\"reason\":");
        bg_json_cstr(stdout, ids->why[i]);
        printf("}");
    }
    printf("],\"peers\":[");
    for (size_t i = 0; i < qa->n_peers; i++) {
        printf("%s", i ? "," : "");
        json_peer(qa, qa->peers[i], ids);
    }
    printf("]}\n");
}

/* Table: how many of peer p's graded rows are attested, unattested, expired. */
static void
table_graded(const Baygate__PeerQueryResult *p)
{
    size_t n[3] = {0};
    for (size_t k = 0; k < p->n_grades; k++) {
        const char *s = bg_api_grade_status(p->grades[k]);
        n[strcmp(s, "attested") == 0 ? 0 : strcmp(s, "expired") == 0 ? 2 : 1]++;
    }
    printf("  %zu graded (status list %llu): %zu attested, %zu unattested, %zu expired:\n",
           p->n_grades, (unsigned long long)p->status_number, n[0], n[1], n[2]);
}

/* Table: every valid input line's outcome at peer p (one that answered). */
static void
table_rows(const Baygate__QueryAnswer *qa, const Baygate__PeerQueryResult *p, const bg_api_ids *ids)
{
    for (size_t i = 0; i < ids->n; i++) {
        bg_api_row r = bg_api_row_of(qa, p, ids, i);
        if (ids->why[i] != NULL)
            continue; /* listed once, below */
        const Baygate__GradeResult *g = r.g;
        printf("    line %-6zu %s  %s", ids->lines[i], ids->code[i], r.status);
        /* the standing first: a grade is never shown without it */
        if (g != NULL)
            printf("  %-10s %-4s %-8s = %-4s common  evaluated %s  valid until %s%s%s",
                   bg_api_grade_status(g), g->grade, g->scale,
                   g->common_grade[0] ? g->common_grade : "?", g->evaluated_at, g->valid_until,
                   g->attested ? "" : "  why: ", g->attested ? "" : g->attestation_error);
        putchar('\n');
    }
}

static void
table_head(const Baygate__QueryAnswer *qa, const bg_api_ids *ids, const char *purpose, bool first)
{
    printf("%s", first ? "" : "\n");
    printf("%s on %s for %s: %zu ids, %u distinct valid, %zu invalid\n",
           mode_names[qa->mode <= 3 ? qa->mode : 0], qa->list, purpose, ids->n, qa->valid_ids,
           ids->ninvalid);
}

static void
table_tail(const bg_api_ids *ids)
{
    if (ids->ninvalid > 0) {
        printf("\nInvalid ids (never sent):\n");
        for (size_t i = 0; i < ids->n; i++)
            if (ids->why[i] != NULL)
                printf("  line %zu: '%s': %s\n", ids->lines[i], ids->ids[i], ids->why[i]);
    }
}

/* The table's part for every peer of qa. */
static void
table_peers(const Baygate__QueryAnswer *qa, const bg_api_ids *ids)
{
    for (size_t i = 0; i < qa->n_peers; i++) {
        const Baygate__PeerQueryResult *p = qa->peers[i];
        char rid[33];
        if (!p->ok) {
            printf("\n%s %-10s %s (%u): %s\n", p->peer, p->peer_name ? p->peer_name : "",
                   p->error_code == BG_GW_E_REVOKED ? "REVOKED" : "FAILED", p->error_code,
                   p->error ? p->error : "");
            if (bg_api_request_hex(p, rid)[0])
                printf("  request %s\n", rid);
            continue;
        }
        printf("\n%s %-10s ok  epoch %llu (generation %llu, %s snapshot, %llu entries)\n", p->peer,
               p->peer_name, (unsigned long long)p->epoch, (unsigned long long)p->generation,
               p->snapshot, (unsigned long long)p->list_size);
        printf("  request %s\n", bg_api_request_hex(p, rid));
        printf("  %u items asked; snapshot %u ms, PSI %u ms; %.1f KiB sent, %.1f KiB received\n",
               p->items, p->snapshot_ms, p->psi_ms, p->bytes_sent / 1024.0,
               p->bytes_received / 1024.0);
        if (qa->mode == 3) {
            printf("  %llu of them on %s\n", (unsigned long long)p->count, qa->list);
            continue;
        }
        if (qa->mode == 2)
            table_graded(p);
        else
            printf("  %zu on %s:\n", p->n_matches, qa->list);
        table_rows(qa, p, ids);
    }
}

static void
print_table(const Baygate__QueryAnswer *qa, const bg_api_ids *ids, const char *purpose, bool first)
{
    table_head(qa, ids, purpose, first);
    table_peers(qa, ids);
    table_tail(ids);
}

/* --attest-dir: DIR/<peer>.status and DIR/<peer>-<uscc>.att, for `baygate attest verify`
 * anywhere, later (they hold the matched enterprises' grades: mode 0640). */
static int
write_attestations(const char *dir, const Baygate__QueryAnswer *qa)
{
    char path[4096];
    bg_err err = {0};
    for (size_t i = 0; i < qa->n_peers; i++) {
        const Baygate__PeerQueryResult *p = qa->peers[i];
        if (!p->ok || p->status_list.len == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s.status", dir, p->peer);
        if (bg_file_write_replace(path, p->status_list.data, p->status_list.len, 0640, &err) !=
            BG_OK)
            return bg_cli_fail("query", "%s", err.msg);
        for (size_t k = 0; k < p->n_grades; k++) {
            const Baygate__GradeResult *g = p->grades[k];
            if (g->attestation.len == 0)
                continue;
            snprintf(path, sizeof path, "%s/%s-%s.att", dir, p->peer, g->uscc);
            if (bg_file_write_replace(path, g->attestation.data, g->attestation.len, 0640, &err) !=
                BG_OK)
                return bg_cli_fail("query", "%s", err.msg);
        }
    }
    return BG_EXIT_OK;
}

/* The authorisation reference of a consent document: its SHA-256, computed here so the
 * document itself never leaves the city. */
int
bg_cli_consent_digest(const char *cmd, const char *path, uint8_t out[32])
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return bg_cli_fail(cmd, "--consent %s: %s", path, strerror(errno));
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    unsigned char buf[16384];
    size_t n, total = 0;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
        crypto_hash_sha256_update(&st, buf, n);
        total += n;
    }
    bool failed = ferror(f) != 0;
    fclose(f);
    if (failed)
        return bg_cli_fail(cmd, "--consent %s: read error", path);
    if (total == 0)
        return bg_cli_fail(cmd, "--consent %s: the file is empty", path);
    crypto_hash_sha256_final(&st, out);
    return BG_EXIT_OK;
}

/* What `baygate query` was asked. */
#define QUERY_LISTS 3 /* serious-dishonesty, abnormal-operation, grades */

typedef struct qargs {
    const char *dir, *purpose, *in, *attest_dir;
    const char *lists[QUERY_LISTS];
    size_t nlists;
    bool json, csv;
    uint8_t auth_ref[BG_QUERY_AUTH_REF_MAX];
    size_t auth_len;
    char *peers[64];
    size_t npeers;
    bool all, grades, count, quiet;
    int out;
    uint64_t timeout;
} qargs;

/* The --consent or --auth-ref value: the authorisation reference, given once. */
static int
query_auth(qargs *a, int ch, const char *arg)
{
    if (a->auth_len != 0)
        return bg_cli_fail("query", "give one of --consent and --auth-ref, once");
    if (ch == 'C') {
        if (bg_cli_consent_digest("query", arg, a->auth_ref) != BG_EXIT_OK)
            return BG_EXIT_ERROR;
        a->auth_len = crypto_hash_sha256_BYTES;
        return BG_EXIT_OK;
    }
    if (sodium_hex2bin(a->auth_ref, sizeof a->auth_ref, arg, strlen(arg), NULL, &a->auth_len,
                       NULL) != 0 ||
        a->auth_len == 0 || strlen(arg) != 2 * a->auth_len)
        return bg_cli_fail("query", "--auth-ref must be 2 to 128 hex digits (1..%u bytes)",
                           (unsigned)BG_QUERY_AUTH_REF_MAX);
    return BG_EXIT_OK;
}

/* One more --list (each asked in turn; given twice, asked once). */
static int
query_add_list(qargs *a, const char *list)
{
    for (size_t i = 0; i < a->nlists; i++)
        if (strcmp(a->lists[i], list) == 0)
            return -1;
    if (a->nlists == QUERY_LISTS)
        return bg_cli_fail("query", "at most %d different --list", QUERY_LISTS);
    a->lists[a->nlists++] = list;
    return -1;
}

/* One option (getopt's ch, optarg): -1 to go on, else the exit code. */
static int
query_opt(qargs *a, int ch, const char *arg)
{
    switch (ch) {
    case 'd':
        a->dir = arg;
        return -1;
    case 'p':
        if (strcmp(arg, "all") == 0)
            a->all = true;
        else if (a->npeers < 64)
            a->peers[a->npeers++] = (char *)arg;
        else
            return bg_cli_fail("query", "at most 64 --peer");
        return -1;
    case 'l':
        return query_add_list(a, arg);
    case 'u':
        a->purpose = arg;
        return -1;
    case 'i':
        a->in = arg;
        return -1;
    case 'g':
        a->grades = true;
        return -1;
    case 'c':
        a->count = true;
        return -1;
    case 'j':
        a->json = true;
        a->out = OUT_JSON;
        return -1;
    case 'v':
        a->csv = true;
        a->out = OUT_CSV;
        return -1;
    case 't':
        if (!bg_cli_parse_u64("query", "--timeout-ms", arg, &a->timeout))
            return BG_EXIT_ERROR;
        if (a->timeout < 1 || a->timeout > 600000)
            return bg_cli_fail("query", "--timeout-ms must be 1..600000");
        return -1;
    case 'C':
    case 'A':
        return query_auth(a, ch, arg) == BG_EXIT_OK ? -1 : BG_EXIT_ERROR;
    case 'T':
        a->attest_dir = arg;
        return -1;
    case 'q':
        a->quiet = true;
        return -1;
    default: /* 'h' */
        query_usage(stdout);
        return BG_EXIT_OK;
    }
}

/* The options together: -1 if they make a query, else the exit code. */
static int
query_args_check(qargs *a, int argc, char **argv)
{
    if (a->json && a->csv)
        return bg_cli_fail("query", "--json and --csv exclude each other: give one");
    if (a->grades && a->count)
        return bg_cli_fail("query", "--grades and --count exclude each other: give one");
    if (optind != argc)
        return bg_cli_usage_error("query", "unexpected argument '%s'", argv[optind]);
    const char *missing = a->dir == NULL                 ? "--dir GW"
                          : a->npeers == 0 && !a->all    ? "--peer"
                          : a->purpose == NULL           ? "--purpose"
                          : a->in == NULL                ? "--in"
                          : a->nlists == 0 && !a->grades ? "--list (or --grades)"
                                                         : NULL;
    if (missing != NULL)
        return bg_cli_usage_error("query", "%s is required", missing);
    if (a->all && a->npeers > 0)
        return bg_cli_usage_error("query", "--peer all and named peers exclude each other");
    /* --grades is the list 'grades' (asked graded) besides any --list */
    if (a->grades && query_add_list(a, "grades") != -1)
        return BG_EXIT_ERROR;
    for (size_t i = 0; i < a->nlists; i++) {
        if (strcmp(a->lists[i], "grades") == 0 && a->count)
            return bg_cli_fail("query", "the list 'grades' is asked with --grades, not --count");
        if (strcmp(a->lists[i], "grades") == 0)
            a->grades = true;
    }
    if (a->attest_dir != NULL && !a->grades)
        return bg_cli_fail("query", "--attest-dir goes with --grades");
    if (a->attest_dir != NULL && mkdir(a->attest_dir, 0750) != 0 && errno != EEXIST)
        return bg_cli_fail("query", "--attest-dir %s: %s", a->attest_dir, strerror(errno));
    return -1;
}

/* Progress on a terminal (cli.h): what is being asked, for how long, and the peers'
 * snapshots the gateway fetches for it; never with --json. */
static bg_cli_progress *
progress_start(const qargs *a, const bg_api_ids *ids, const char *list)
{
    char what[160];
    snprintf(what, sizeof what, "asking %s about %zu ids on %s",
             a->all           ? "every peer"
             : a->npeers == 1 ? a->peers[0]
                              : "the peers",
             ids->n, list);
    return bg_cli_progress_start(a->dir, what, a->quiet || a->out == OUT_JSON);
}

/* The local Query of list for the peers given (n 0: every peer). */
static void
query_request(const qargs *a, const bg_api_ids *ids, const char *list, char **peers, size_t n,
              Baygate__LocalQuery *lq)
{
    bool graded = strcmp(list, "grades") == 0;
    baygate__local_query__init(lq);
    lq->n_peers = n;
    lq->peers = peers;
    lq->list = (char *)list;
    lq->purpose = (char *)a->purpose;
    lq->n_ids = ids->n;
    lq->ids = ids->ids;
    lq->mode = graded ? 2 : a->count ? 3 : 1;
    lq->timeout_ms = (uint32_t)a->timeout;
    lq->authorisation_ref.data = (uint8_t *)a->auth_ref;
    lq->authorisation_ref.len = a->auth_len;
    lq->attestations = graded && a->attest_dir != NULL;
}

/*
 * Table and CSV output of a query of several peers: one request per peer, at most
 * QUERY_STREAMS in flight, and each peer's part printed as soon as its answer comes,
 * so a slow or unreachable peer holds up only its own lines (a program that wants one
 * document asks for --json). The gateway answers a few local requests at once: more
 * in flight would only queue there and keep status requests waiting.
 */
#define QUERY_STREAMS 3

typedef struct qstream {
    pthread_mutex_t lock;
    const qargs *a;
    const bg_api_ids *ids;
    const char *list;
    char (*cities)[BG_CITY_CODE_LEN + 1];
    size_t n, next;
    bool first, head_done;
    bg_cli_progress *prog;
    char error[300]; /* a refusal of the request itself (same for every peer): said once */
    int rc;
} qstream;

/* One answer's part, under the lock. */
static void
stream_print(qstream *s, const Baygate__LocalAnswer *ans, const char *city)
{
    bg_cli_progress_clear(s->prog); /* written again at its next tick */
    if (ans == NULL) {
        s->rc = BG_EXIT_ERROR;
        return;
    }
    if (ans->error_code != 0 || ans->query == NULL || ans->query->n_peers != 1) {
        const char *why = ans->error ? ans->error : "no result in the answer";
        if (strcmp(s->error, why) != 0) {
            snprintf(s->error, sizeof s->error, "%s", why);
            bg_cli_fail("query", "%s: %s", city, why);
        }
        s->rc = BG_EXIT_ERROR;
        return;
    }
    const Baygate__QueryAnswer *qa = ans->query;
    if (s->a->out == OUT_CSV) {
        bg_api_csv_rows(stdout, qa, s->ids, s->first && !s->head_done);
    } else {
        if (!s->head_done)
            table_head(qa, s->ids, s->a->purpose, s->first);
        table_peers(qa, s->ids);
    }
    s->head_done = true;
    fflush(stdout);
    if (!qa->peers[0]->ok && s->rc < BG_EXIT_FAIL)
        s->rc = BG_EXIT_FAIL;
    if (qa->n_peers && s->a->attest_dir != NULL && strcmp(s->list, "grades") == 0 &&
        write_attestations(s->a->attest_dir, qa) != BG_EXIT_OK)
        s->rc = BG_EXIT_ERROR;
}

static void *
stream_main(void *arg)
{
    qstream *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->lock);
        size_t i = s->next++;
        bool stop = s->rc == BG_EXIT_ERROR && s->error[0];
        pthread_mutex_unlock(&s->lock);
        if (i >= s->n || stop)
            return NULL;
        char *peer = s->cities[i];
        Baygate__LocalRequest req = BAYGATE__LOCAL_REQUEST__INIT;
        Baygate__LocalQuery lq;
        query_request(s->a, s->ids, s->list, &peer, 1, &lq);
        req.op_case = BAYGATE__LOCAL_REQUEST__OP_QUERY;
        req.query = &lq;
        Baygate__LocalAnswer *ans = bg_cli_ask("query", s->a->dir, &req);
        pthread_mutex_lock(&s->lock);
        stream_print(s, ans, peer);
        pthread_mutex_unlock(&s->lock);
        if (ans != NULL)
            bg_pb_free(ans);
    }
}

/* The peers to ask: those given, or every peer of the gateway's roster. */
static int
stream_peers(const qargs *a, char (*cities)[BG_CITY_CODE_LEN + 1], size_t *n)
{
    *n = 0;
    if (!a->all) {
        for (size_t i = 0; i < a->npeers; i++)
            snprintf(cities[(*n)++], BG_CITY_CODE_LEN + 1, "%.6s", a->peers[i]);
        return BG_EXIT_OK;
    }
    Baygate__LocalAnswer *st = bg_cli_ask_status("query", a->dir, false, 30000);
    if (st == NULL)
        return BG_EXIT_ERROR;
    for (size_t i = 0; i < st->status->n_peers && *n < BG_ROSTER_MAX_MEMBERS; i++)
        snprintf(cities[(*n)++], BG_CITY_CODE_LEN + 1, "%.6s", st->status->peers[i]->city);
    bg_pb_free(st);
    return BG_EXIT_OK;
}

static int
query_stream_list(const qargs *a, const bg_api_ids *ids, const char *list, bool first)
{
    char cities[BG_ROSTER_MAX_MEMBERS][BG_CITY_CODE_LEN + 1];
    qstream s = {.a = a, .ids = ids, .list = list, .cities = cities, .first = first};
    int rc = stream_peers(a, cities, &s.n);
    if (rc != BG_EXIT_OK)
        return rc;
    if (s.n == 0)
        return bg_cli_fail("query", "the roster names no peer to ask");
    s.prog = progress_start(a, ids, list);
    pthread_mutex_init(&s.lock, NULL);
    pthread_t th[QUERY_STREAMS];
    size_t nth = 0;
    for (; nth < QUERY_STREAMS && nth < s.n; nth++)
        if (pthread_create(&th[nth], NULL, stream_main, &s) != 0)
            break;
    if (nth == 0)
        stream_main(&s);
    for (size_t i = 0; i < nth; i++)
        pthread_join(th[i], NULL);
    pthread_mutex_destroy(&s.lock);
    bg_cli_progress_stop(s.prog);
    if (s.head_done && a->out == OUT_TABLE)
        table_tail(ids);
    return s.rc;
}

/* Asks the gateway about one list and prints its answer (first: the first list asked, so
 * the CSV header goes out once); the exit code. */
static int
query_ask_list(const qargs *a, const bg_api_ids *ids, const char *list, bool first)
{
    if (a->out != OUT_JSON && (a->all || a->npeers > 1))
        return query_stream_list(a, ids, list, first);
    Baygate__LocalRequest req = BAYGATE__LOCAL_REQUEST__INIT;
    Baygate__LocalQuery lq;
    query_request(a, ids, list, (char **)a->peers, a->npeers, &lq);
    req.op_case = BAYGATE__LOCAL_REQUEST__OP_QUERY;
    req.query = &lq;
    bg_cli_progress *prog = progress_start(a, ids, list);
    Baygate__LocalAnswer *ans = bg_cli_ask("query", a->dir, &req);
    bg_cli_progress_stop(prog);
    if (ans == NULL)
        return BG_EXIT_ERROR;
    int rc;
    if (ans->error_code != 0 || ans->query == NULL) {
        rc = bg_cli_fail("query", "%s", ans->error ? ans->error : "no result in the answer");
    } else {
        const Baygate__QueryAnswer *qa = ans->query;
        if (a->out == OUT_JSON)
            print_json(qa, ids);
        else if (a->out == OUT_CSV)
            bg_api_csv_rows(stdout, qa, ids, first);
        else
            print_table(qa, ids, a->purpose, first);
        rc = BG_EXIT_OK;
        for (size_t i = 0; i < qa->n_peers; i++)
            if (!qa->peers[i]->ok)
                rc = BG_EXIT_FAIL;
        if (lq.attestations && write_attestations(a->attest_dir, qa) != BG_EXIT_OK)
            rc = BG_EXIT_ERROR;
    }
    bg_pb_free(ans);
    return rc;
}

/* Every list in turn (each with every peer at once); the worst exit code. A usage error
 * (refused by our own gateway) stops before the next list. */
static int
query_ask(const qargs *a, const bg_api_ids *ids)
{
    int rc = BG_EXIT_OK;
    for (size_t i = 0; i < a->nlists && rc != BG_EXIT_ERROR; i++) {
        int r = query_ask_list(a, ids, a->lists[i], i == 0);
        if (r > rc)
            rc = r;
    }
    fflush(stdout);
    return rc;
}

int
bg_cmd_query(int argc, char **argv)
{
    static const struct option opts[] = {
        {"dir", required_argument, NULL, 'd'},
        {"peer", required_argument, NULL, 'p'},
        {"list", required_argument, NULL, 'l'},
        {"purpose", required_argument, NULL, 'u'},
        {"in", required_argument, NULL, 'i'},
        {"grades", no_argument, NULL, 'g'},
        {"count", no_argument, NULL, 'c'},
        {"json", no_argument, NULL, 'j'},
        {"csv", no_argument, NULL, 'v'},
        {"timeout-ms", required_argument, NULL, 't'},
        {"consent", required_argument, NULL, 'C'},
        {"attest-dir", required_argument, NULL, 'T'},
        {"auth-ref", required_argument, NULL, 'A'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    qargs a = {.out = OUT_TABLE};
    int ch, rc;
    optind = 1;
    while ((ch = getopt_long(argc, argv, ":d:p:l:u:i:gcjvt:C:A:T:qh", opts, NULL)) != -1) {
        if (ch == '?' || ch == ':')
            return bg_cli_bad_option("query", ch, argv, opts);
        if ((rc = query_opt(&a, ch, optarg)) != -1)
            return rc;
    }
    if ((rc = query_args_check(&a, argc, argv)) != -1)
        return rc;
    bg_api_ids ids = {0};
    rc = read_ids(a.in, &ids);
    if (rc == BG_EXIT_OK)
        rc = query_ask(&a, &ids);
    bg_api_ids_free(&ids);
    return rc;
}

static void
rotate_usage(void)
{
    printf("usage: baygate psi-rotate --dir GW --list LIST [--wait [--timeout-ms N]] [--quiet]\n\n"
           "Starts a new OPRF key generation for LIST (a list the city\n"
           "offers, or 'grades'); the gateway builds and publishes the next\n"
           "epoch under it, and peers fetch the new snapshot in full.\n"
           "--wait: until the gateway publishes it (at most --timeout-ms,\n"
           "default 600000), then prints its generation, epoch and entries;\n"
           "on a terminal a progress line says how long the build has taken\n"
           "(not with --quiet).\n\n"
           "EXAMPLES\n"
           "  baygate psi-rotate --dir GZ --list serious-dishonesty\n"
           "  baygate psi-rotate --dir GZ --list grades --wait\n\n"
           "EXIT STATUS\n"
           "  0  the gateway took the request (--wait: and published the generation)\n"
           "  1  --wait: not published within --timeout-ms\n"
           "  2  usage error, the gateway is not running or refused it\n");
}

/* The generation of list our gateway publishes now (0: none, or no status: *ok false). */
static uint64_t
published_generation(const char *dir, const char *list, uint64_t *epoch, uint64_t *entries,
                     bool *ok)
{
    Baygate__LocalAnswer *st = bg_cli_ask_status("psi-rotate", dir, false, 30000);
    uint64_t g = 0;
    *ok = st != NULL && st->status != NULL;
    for (size_t i = 0; *ok && i < st->status->n_lists; i++) {
        const Baygate__ListStatus *l = st->status->lists[i];
        if (l->list != NULL && strcmp(l->list, list) == 0) {
            g = l->generation;
            *epoch = l->epoch;
            *entries = l->entries;
        }
    }
    bg_pb_free(st);
    return g;
}

/* --wait: polls our status until list is published at a generation above before. */
static int
rotate_wait(const char *dir, const char *list, uint64_t before, int64_t timeout_ms, bool quiet)
{
    char what[160];
    snprintf(what, sizeof what, "building the new generation of %s", list);
    bg_cli_progress *pr = bg_cli_progress_start(dir, what, quiet);
    int64_t deadline = bg_clock_ms() + timeout_ms;
    uint64_t g = 0, epoch = 0, entries = 0;
    bool ok = true;
    while (ok && (g = published_generation(dir, list, &epoch, &entries, &ok)) <= before &&
           bg_clock_ms() < deadline)
        usleep(200 * 1000);
    bg_cli_progress_stop(pr);
    if (!ok)
        return BG_EXIT_ERROR;
    if (g <= before) {
        fprintf(stderr,
                "baygate psi-rotate: %s was not published at a new generation within %lld ms "
                "(still generation %llu): see the gateway log\n",
                list, (long long)timeout_ms, (unsigned long long)g);
        return BG_EXIT_FAIL;
    }
    printf("%s published: generation %llu, epoch %llu, %llu entries\n", list, (unsigned long long)g,
           (unsigned long long)epoch, (unsigned long long)entries);
    return BG_EXIT_OK;
}

/* baygate psi-rotate: a new OPRF key generation for one of the city's lists. */
int
bg_cmd_rotate(int argc, char **argv)
{
    static const struct option opts[] = {
        {"dir", required_argument, NULL, 'd'},
        {"list", required_argument, NULL, 'l'},
        {"wait", no_argument, NULL, 'w'},
        {"timeout-ms", required_argument, NULL, 't'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *dir = NULL, *list = NULL;
    bool wait = false, quiet = false;
    int64_t timeout_ms = 600000;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        if (ch == 'h') {
            rotate_usage();
            return BG_EXIT_OK;
        }
        if (ch == 'w') {
            wait = true;
        } else if (ch == 'q') {
            quiet = true;
        } else if (ch == 't') {
            uint64_t v = 0;
            if (!bg_cli_parse_u64("psi-rotate", "--timeout-ms", optarg, &v))
                return BG_EXIT_ERROR;
            if (v < 1 || v > 86400000)
                return bg_cli_fail("psi-rotate", "--timeout-ms must be 1..86400000");
            timeout_ms = (int64_t)v;
        } else if (ch == 'd' || ch == 'l') {
            *(ch == 'd' ? &dir : &list) = optarg;
        } else {
            return bg_cli_bad_option("psi-rotate", ch, argv, opts);
        }
    }
    if (optind != argc)
        return bg_cli_usage_error("psi-rotate", "unexpected argument '%s'", argv[optind]);
    if (dir == NULL || list == NULL)
        return bg_cli_usage_error("psi-rotate", "%s is required",
                                  dir == NULL ? "--dir GW" : "--list");
    uint64_t before = 0, e0 = 0, n0 = 0;
    bool ok = true;
    if (wait && (before = published_generation(dir, list, &e0, &n0, &ok), !ok))
        return BG_EXIT_ERROR;
    Baygate__LocalRequest req = BAYGATE__LOCAL_REQUEST__INIT;
    Baygate__LocalRotate lr = BAYGATE__LOCAL_ROTATE__INIT;
    lr.list = (char *)list;
    req.op_case = BAYGATE__LOCAL_REQUEST__OP_ROTATE;
    req.rotate = &lr;
    Baygate__LocalAnswer *ans = bg_cli_ask("psi-rotate", dir, &req);
    if (ans == NULL)
        return BG_EXIT_ERROR;
    int rc = BG_EXIT_OK;
    if (ans->error_code != 0)
        rc = bg_cli_fail("psi-rotate", "%s", ans->error ? ans->error : "refused");
    else if (!wait)
        printf("rotation of %s requested; see the gateway log for the new generation\n", list);
    bg_pb_free(ans);
    if (rc == BG_EXIT_OK && wait)
        rc = rotate_wait(dir, list, before, timeout_ms, quiet);
    return rc;
}
