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
    bg_audit_filter f = {.has_request_id = false};
    bg_err err = {0};
    if (bg_audit_filter_set(&f, BG_AUDIT_CRIT_REQUEST, "--request", s, &err) != BG_OK) {
        bg_cli_fail(cmd, "%s", err.msg);
        return false;
    }
    memcpy(out, f.request_id, BG_AUDIT_REQUEST_ID_LEN);
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

struct find_opts {
    const char *dir;
    bg_audit_filter f;
    bool json;
};

/* One option (getopt's ch): -1 to go on, else the exit code. */
static int
find_opt(struct find_opts *o, int ch, const char *arg)
{
    static const struct {
        int ch;
        bg_audit_crit crit;
        const char *name;
    } crits[] = {
        {'r', BG_AUDIT_CRIT_REQUEST, "--request"}, {'p', BG_AUDIT_CRIT_PEER, "--peer"},
        {'u', BG_AUDIT_CRIT_PURPOSE, "--purpose"}, {'A', BG_AUDIT_CRIT_AUTH_REF, "--auth-ref"},
        {'s', BG_AUDIT_CRIT_SINCE, "--since"},     {'t', BG_AUDIT_CRIT_UNTIL, "--until"},
    };
    bg_err err = {0};
    for (size_t i = 0; i < sizeof crits / sizeof crits[0]; i++)
        if (crits[i].ch == ch)
            return bg_audit_filter_set(&o->f, crits[i].crit, crits[i].name, arg, &err) == BG_OK
                       ? -1
                       : bg_cli_fail("audit find", "%s", err.msg);
    switch (ch) {
    case 'd':
        o->dir = arg;
        return -1;
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
        bg_api_json_leaf(stdout, index, ev, fo->shown == 0);
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
        bg_api_json_find_open(stdout, cfg.city, n);
    int rc = bg_audit_find(log, &o->f, print_match, &fo, &matched, &err);
    if (o->json)
        bg_api_json_find_close(stdout, matched, rc == BG_OK);
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
    return find_run(&o);
}
