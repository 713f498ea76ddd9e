/*
 * cmd_audit_find.c - baygate audit find: the leaves of a gateway's evidence log that
 * match filters (request id, peer, purpose, authorisation reference, time), in text or
 * --json. The log is opened read-only, as by every `audit` command, so it is safe
 * while the gateway serves. Also the helpers the bundle commands share with it.
 */
#include <getopt.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "certs/pki.h"
#include "common/json.h"
#include "gateway/api/api_json.h"
#include "gateway/audit/audit.h"
#include "gateway/cli/cli.h"
#include "gateway/config/config.h"

static void
find_usage(FILE *f)
{
    fprintf(f, "usage: baygate audit find --dir GW [--request ID] [--peer CITY] [--purpose P]\n"
               "                          [--auth-ref HEX] [--since T] [--until T] [--json]\n\n"
               "Lists the leaves of the gateway's evidence log that match every filter given:\n"
               "the request id of an exchange (32 hex digits, as `baygate query` prints it),\n"
               "the other city, the purpose, the authorisation reference, and the time\n"
               "(T is YYYY-MM-DD, YYYY-MM-DDTHH:MM:SSZ or Unix seconds; --until with a date\n"
               "alone takes the whole day). Each leaf: index, time, kind, peer, purpose,\n"
               "list, outcome, request id. Read-only: safe while the gateway serves.\n"

               "\n"
               "EXAMPLES\n"
               "  baygate audit find --dir GZ --request 0123456789abcdef0123456789abcdef\n"
               "  baygate audit find --dir GZ --peer 440300 --since 2025-01-01 --json\n"
               "\n"
               "EXIT STATUS\n"
               "  0  done (also when nothing matches)\n"
               "  1  the log is damaged\n"
               "  2  usage or operational error\n");
}

int
bg_cli_audit_open(const char *cmd, const char *dir, bg_config *cfg, char *audit_dir, size_t cap,
                  bg_audit_log **log)
{
    bg_err err = {0};
    char path[BG_CONFIG_PATH_MAX + 32];
    *log = NULL;
    if (snprintf(path, sizeof path, "%s/%s", dir, BG_CONFIG_FILE) >= (int)sizeof path)
        return bg_cli_fail(cmd, "gateway directory path too long");
    if (bg_config_load(path, cfg, &err) != BG_OK)
        return bg_cli_fail(cmd, "%s", err.msg);
    if (snprintf(audit_dir, cap, "%s/audit", cfg->data_dir) >= (int)cap)
        return bg_cli_fail(cmd, "data directory path too long");
    int rc = bg_audit_open(log, audit_dir, cfg->city, BG_AUDIT_READ_ONLY, NULL, &err);
    if (rc == BG_OK)
        return BG_EXIT_OK;
    if (rc == BG_ENOTFOUND)
        return bg_cli_fail(cmd, "no audit log in %s (has the gateway run?): %s", audit_dir,
                           err.msg);
    bg_cli_fail(cmd, "%s", err.msg);
    return rc == BG_EPROTO ? BG_EXIT_FAIL : BG_EXIT_ERROR;
}

bool
bg_cli_request_id(const char *cmd, const char *s, uint8_t out[BG_AUDIT_REQUEST_ID_LEN])
{
    size_t n = 0;
    if (strlen(s) != 2 * BG_AUDIT_REQUEST_ID_LEN ||
        sodium_hex2bin(out, BG_AUDIT_REQUEST_ID_LEN, s, strlen(s), NULL, &n, NULL) != 0 ||
        n != BG_AUDIT_REQUEST_ID_LEN) {
        bg_cli_fail(cmd, "--request must be 32 hex digits (a request id as query prints it)");
        return false;
    }
    return true;
}

void
bg_cli_audit_leaf_text(uint64_t index, const bg_audit_event *ev)
{
    char ts[BG_PKI_TIME_LEN], rid[2 * BG_AUDIT_REQUEST_ID_LEN + 1], out[16];
    bg_pki_time_format((time_t)(ev->time_ms / 1000), ts);
    sodium_bin2hex(rid, sizeof rid, ev->request_id, BG_AUDIT_REQUEST_ID_LEN);
    snprintf(out, sizeof out, "%s", ev->outcome == 0 ? "ok" : "");
    if (ev->outcome != 0)
        snprintf(out, sizeof out, "%u", ev->outcome);
    printf("%8" PRIu64 "  %s  %-16s  %s  %-12s  %-18s  %-7s  %s\n", index, ts,
           bg_audit_kind_name(ev->kind), ev->peer, ev->purpose[0] ? ev->purpose : "-",
           ev->list[0] ? ev->list : "-", out, rid);
}

void
bg_cli_audit_leaf_header(void)
{
    printf("   index  time                  kind              peer    purpose       list        "
           "        outcome  request id\n");
}

/* --when: Unix seconds, or a time bg_pki_time_parse reads; a date alone as --until
 * means its last millisecond. */
static bool
parse_when(const char *opt, const char *s, bool until, int64_t *ms)
{
    uint64_t secs = 0;
    if (s[0] >= '0' && s[0] <= '9' && strspn(s, "0123456789") == strlen(s)) {
        if (!bg_cli_parse_u64("audit find", opt, s, &secs) || secs > INT64_MAX / 1000) {
            bg_cli_fail("audit find", "%s: '%s' is out of range", opt, s);
            return false;
        }
        *ms = (int64_t)secs * 1000;
        return true;
    }
    time_t t;
    bg_err err = {0};
    if (bg_pki_time_parse(s, &t, &err) != BG_OK) {
        bg_cli_fail("audit find", "%s: %s (or Unix seconds)", opt, err.msg);
        return false;
    }
    *ms = (int64_t)t * 1000 + (until && strlen(s) == 10 ? 86399999 : 0);
    return true;
}

struct find_opts {
    const char *dir;
    bg_audit_filter f;
    bool json;
};

/* One option (getopt's ch): -1 to go on, else the exit code. */
static int
find_opt(struct find_opts *o, int ch, const char *arg)
{
    bg_audit_filter *f = &o->f;
    size_t n = 0;
    switch (ch) {
    case 'd':
        o->dir = arg;
        return -1;
    case 'r':
        f->has_request_id = true;
        return bg_cli_request_id("audit find", arg, f->request_id) ? -1 : BG_EXIT_ERROR;
    case 'p':
        if (strlen(arg) != 6 || strspn(arg, "0123456789") != 6)
            return bg_cli_fail("audit find", "--peer must be a 6-digit city code");
        memcpy(f->peer, arg, 7);
        return -1;
    case 'u':
        if (strlen(arg) == 0 || strlen(arg) > BG_AUDIT_TEXT_MAX)
            return bg_cli_fail("audit find", "--purpose must be 1..64 bytes");
        snprintf(f->purpose, sizeof f->purpose, "%s", arg);
        return -1;
    case 'A':
        if (sodium_hex2bin(f->authorisation_ref, sizeof f->authorisation_ref, arg, strlen(arg),
                           NULL, &n, NULL) != 0 ||
            n == 0 || strlen(arg) != 2 * n)
            return bg_cli_fail("audit find", "--auth-ref must be 2 to 128 hex digits");
        f->has_authorisation_ref = true;
        f->authorisation_ref_len = n;
        return -1;
    case 's':
        f->has_since = true;
        return parse_when("--since", arg, false, &f->since_ms) ? -1 : BG_EXIT_ERROR;
    case 't':
        f->has_until = true;
        return parse_when("--until", arg, true, &f->until_ms) ? -1 : BG_EXIT_ERROR;
    case 'j':
        o->json = true;
        return -1;
    default: /* 'h' */
        find_usage(stdout);
        return BG_EXIT_OK;
    }
}

typedef struct find_out {
    bool json;
    uint64_t shown;
} find_out;

static bool
print_match(void *ctx, uint64_t index, const bg_audit_event *ev, const uint8_t *leaf, size_t len)
{
    (void)leaf, (void)len;
    find_out *fo = ctx;
    if (fo->json) {
        printf("%s", fo->shown ? "," : "");
        bg_api_json_leaf(stdout, index, ev);
    } else {
        if (fo->shown == 0)
            bg_cli_audit_leaf_header();
        bg_cli_audit_leaf_text(index, ev);
    }
    fo->shown++;
    return true;
}

static int
find_run(const struct find_opts *o)
{
    bg_config cfg;
    char dir[BG_CONFIG_PATH_MAX + 8];
    bg_audit_log *log = NULL;
    int ex = bg_cli_audit_open("audit find", o->dir, &cfg, dir, sizeof dir, &log);
    if (ex != BG_EXIT_OK)
        return ex;
    uint64_t n = bg_audit_size(log), matched = 0;
    find_out fo = {.json = o->json};
    bg_err err = {0};
    if (o->json)
        printf("{\"city\":\"%s\",\"log_size\":%" PRIu64 ",\"leaves\":[", cfg.city, n);
    int rc = bg_audit_find(log, &o->f, print_match, &fo, &matched, &err);
    if (o->json)
        printf("],\"matches\":%" PRIu64 ",\"ok\":%s}\n", matched, rc == BG_OK ? "true" : "false");
    else
        printf("%" PRIu64 " of %" PRIu64 " leaves of %s's log match\n", matched, n, cfg.city);
    bg_audit_close(log);
    if (rc != BG_OK) {
        bg_cli_fail("audit find", "%s", err.msg);
        return BG_EXIT_FAIL;
    }
    return BG_EXIT_OK;
}

int
bg_cmd_audit_find(int argc, char **argv)
{
    static const struct option opts[] = {
        {"dir", required_argument, NULL, 'd'},      {"request", required_argument, NULL, 'r'},
        {"peer", required_argument, NULL, 'p'},     {"purpose", required_argument, NULL, 'u'},
        {"auth-ref", required_argument, NULL, 'A'}, {"since", required_argument, NULL, 's'},
        {"until", required_argument, NULL, 't'},    {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
    };
    struct find_opts o;
    memset(&o, 0, sizeof o);
    int ch, rc;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        if (ch == '?' || ch == ':')
            return bg_cli_bad_option("audit find", ch, argv, opts);
        if ((rc = find_opt(&o, ch, optarg)) != -1)
            return rc;
    }
    if (optind != argc)
        return bg_cli_usage_error("audit find", "unexpected argument '%s'", argv[optind]);
    if (o.dir == NULL)
        return bg_cli_usage_error("audit find", "--dir GW is required");
    if (o.f.has_since && o.f.has_until && o.f.since_ms > o.f.until_ms)
        return bg_cli_fail("audit find", "--since is after --until");
    return find_run(&o);
}
