/*
 * cmd_local.c - baygate ping / baygate status: questions to the city's own
 * gateway over its local API (ipc socket in the gateway directory).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/json.h"
#include "gateway/cli/cli.h"
#include "gateway/config/config.h"
#include "peers/transport.h"
#include "proto/api.pb-c.h"
#include "proto/pb.h"

#define LOCAL_ANSWER_MAX (1024 * 1024)
#define LOCAL_REQUEST_MAX (64 * 1024)

/* Sends req to the gateway of dir and returns its answer (free with
 * bg_pb_free), or NULL after printing why. */
static Baygate__LocalAnswer *
local_ask(const char *cmd, const char *dir, const Baygate__LocalRequest *req, int timeout_ms)
{
    bg_config cfg;
    bg_err err = {0};
    char path[BG_CONFIG_PATH_MAX + 32];
    if (snprintf(path, sizeof path, "%s/%s", dir, BG_CONFIG_FILE) >= (int)sizeof path) {
        bg_cli_fail(cmd, "gateway directory path too long");
        return NULL;
    }
    if (bg_config_load(path, &cfg, &err) != BG_OK) {
        bg_cli_fail(cmd, "%s", err.msg);
        return NULL;
    }
    struct stat st;
    if (stat(cfg.local_socket, &st) != 0 || !S_ISSOCK(st.st_mode)) {
        bg_cli_fail(cmd, "the %s gateway is not running (no socket at %s)", cfg.city,
                    cfg.local_socket);
        return NULL;
    }
    bg_tp_client *cli = NULL;
    bg_tp_client_opts o = {
        .url = cfg.local_url, .recv_max = LOCAL_ANSWER_MAX, .send_max = LOCAL_REQUEST_MAX};
    if (bg_tp_client_open(&cli, &o, &err) != BG_OK) {
        bg_cli_fail(cmd, "%s", err.msg);
        return NULL;
    }
    size_t len = baygate__local_request__get_packed_size(req);
    uint8_t buf[1024];
    Baygate__LocalAnswer *ans = NULL;
    if (len > sizeof buf) {
        bg_cli_fail(cmd, "request too large");
    } else {
        baygate__local_request__pack(req, buf);
        uint8_t *out = NULL;
        size_t out_len = 0;
        bg_tp_fail fail;
        if (bg_tp_call(cli, buf, len, &out, &out_len, timeout_ms, &fail, &err) != BG_OK) {
            bg_cli_fail(cmd, "the %s gateway did not answer: %s: %s", cfg.city,
                        bg_tp_fail_name(fail), err.msg);
        } else {
            ans = bg_pb_unpack(&baygate__local_answer__descriptor, out_len, out);
            if (ans == NULL)
                bg_cli_fail(cmd, "the %s gateway's answer does not parse", cfg.city);
            bg_tp_answer_free(out);
        }
    }
    bg_tp_client_close(cli);
    return ans;
}

static void
print_ping(const Baygate__PingResult *r, bool json)
{
    if (json) {
        printf("{\"peer\":");
        bg_json_cstr(stdout, r->peer);
        printf(",\"ok\":%s", r->ok ? "true" : "false");
        if (r->peer_name != NULL && r->peer_name[0] != '\0') {
            printf(",\"name\":");
            bg_json_cstr(stdout, r->peer_name);
        }
        if (r->ok)
            printf(",\"roster_serial\":%llu,\"latency_us\":%u,\"clock_skew_ms\":%lld",
                   (unsigned long long)r->peer_roster_serial, r->latency_us,
                   (long long)r->clock_skew_ms);
        else {
            printf(",\"error_code\":%u,\"error\":", r->error_code);
            bg_json_cstr(stdout, r->error);
        }
        printf("}\n");
    } else if (r->ok) {
        printf("%s %-10s ok  roster %llu  %.2f ms  clock skew %lld ms\n", r->peer, r->peer_name,
               (unsigned long long)r->peer_roster_serial, r->latency_us / 1000.0,
               (long long)r->clock_skew_ms);
    } else {
        printf("%s %-10s FAILED  %s\n", r->peer, r->peer_name ? r->peer_name : "", r->error);
    }
}

static Baygate__LocalAnswer *
ask_status(const char *cmd, const char *dir, bool probe, int timeout_ms)
{
    Baygate__LocalRequest req = BAYGATE__LOCAL_REQUEST__INIT;
    Baygate__LocalStatus st = BAYGATE__LOCAL_STATUS__INIT;
    st.probe_peers = probe;
    req.op_case = BAYGATE__LOCAL_REQUEST__OP_STATUS;
    req.status = &st;
    Baygate__LocalAnswer *ans = local_ask(cmd, dir, &req, timeout_ms);
    if (ans != NULL && (ans->error_code != 0 || ans->status == NULL)) {
        bg_cli_fail(cmd, "%s", ans->error ? ans->error : "no status in the answer");
        bg_pb_free(ans);
        return NULL;
    }
    return ans;
}

static void
ping_usage(FILE *f)
{
    fprintf(f, "usage: baygate ping --dir GW --peer CITY|all [--timeout-ms N] [--json]\n\n"
               "Asks the gateway of GW to make an authenticated round trip (signed\n"
               "envelopes over mutual TLS) to a peer, or to every peer in the roster.\n"
               "Prints the peer's identity, its roster serial and the latency, or the\n"
               "check that failed. Exit 0 iff every peer answered.\n");
}

/* One ping through the gateway, printed: BG_EXIT_OK, BG_EXIT_FAIL (the peer did not
 * answer), BG_EXIT_ERROR (the gateway refused), or -1 (no answer from the gateway). */
static int
ping_one(const char *dir, char *peer, uint64_t timeout, bool json)
{
    Baygate__LocalRequest req = BAYGATE__LOCAL_REQUEST__INIT;
    Baygate__LocalPing lp = BAYGATE__LOCAL_PING__INIT;
    lp.peer = peer;
    lp.timeout_ms = (uint32_t)timeout;
    req.op_case = BAYGATE__LOCAL_REQUEST__OP_PING;
    req.ping = &lp;
    Baygate__LocalAnswer *ans = local_ask("ping", dir, &req, (int)timeout + 2000);
    if (ans == NULL)
        return -1;
    int rc = BG_EXIT_OK;
    if (ans->error_code != 0 || ans->ping == NULL) {
        bg_cli_fail("ping", "%s", ans->error ? ans->error : "no result in the answer");
        rc = BG_EXIT_ERROR;
    } else {
        print_ping(ans->ping, json);
        if (!ans->ping->ok)
            rc = BG_EXIT_FAIL;
    }
    bg_pb_free(ans);
    return rc;
}

int
bg_cmd_ping(int argc, char **argv)
{
    static const struct option opts[] = {
        {"dir", required_argument, NULL, 'd'},
        {"peer", required_argument, NULL, 'p'},
        {"timeout-ms", required_argument, NULL, 't'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *dir = NULL, *peer = NULL;
    uint64_t timeout = 5000;
    bool json = false;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "d:p:t:jh", opts, NULL)) != -1) {
        switch (ch) {
        case 'd':
            dir = optarg;
            break;
        case 'p':
            peer = optarg;
            break;
        case 't':
            if (!bg_cli_parse_u64("ping", "--timeout-ms", optarg, &timeout))
                return BG_EXIT_ERROR;
            if (timeout < 1 || timeout > 600000)
                return bg_cli_fail("ping", "--timeout-ms must be 1..600000");
            break;
        case 'j':
            json = true;
            break;
        case 'h':
            ping_usage(stdout);
            return BG_EXIT_OK;
        default:
            ping_usage(stderr);
            return BG_EXIT_ERROR;
        }
    }
    if (dir == NULL || peer == NULL || optind != argc) {
        ping_usage(stderr);
        return BG_EXIT_ERROR;
    }

    /* "all": the peers the gateway knows from its roster. */
    char peers[64][8];
    size_t npeers = 0;
    if (strcmp(peer, "all") == 0) {
        Baygate__LocalAnswer *st = ask_status("ping", dir, false, (int)timeout);
        if (st == NULL)
            return BG_EXIT_ERROR;
        for (size_t i = 0; i < st->status->n_peers && npeers < 64; i++)
            snprintf(peers[npeers++], sizeof peers[0], "%.6s", st->status->peers[i]->city);
        bg_pb_free(st);
    } else {
        snprintf(peers[npeers++], sizeof peers[0], "%.6s", peer);
    }

    int status = BG_EXIT_OK;
    for (size_t i = 0; i < npeers; i++) {
        int rc = ping_one(dir, peers[i], timeout, json);
        if (rc == -1)
            return BG_EXIT_ERROR;
        if (rc == BG_EXIT_ERROR || (rc == BG_EXIT_FAIL && status == BG_EXIT_OK))
            status = rc;
    }
    return status;
}

static void
print_status_json(const Baygate__StatusAnswer *s)
{
    printf("{\"city\":");
    bg_json_cstr(stdout, s->city);
    printf(",\"name\":");
    bg_json_cstr(stdout, s->name);
    printf(",\"version\":");
    bg_json_cstr(stdout, s->version);
    printf(",\"uptime_s\":%llu,\"roster_serial\":%llu,\"crl_next_update_ms\":%lld,\"listen\":",
           (unsigned long long)s->uptime_s, (unsigned long long)s->roster_serial,
           (long long)s->crl_next_update_ms);
    bg_json_cstr(stdout, s->listen);
    printf(",\"standing\":");
    bg_json_cstr(stdout, s->standing);
    printf(",\"peers\":[");
    for (size_t i = 0; i < s->n_peers; i++) {
        const Baygate__PeerStatus *p = s->peers[i];
        printf("%s{\"city\":", i ? "," : "");
        bg_json_cstr(stdout, p->city);
        printf(",\"name\":");
        bg_json_cstr(stdout, p->name);
        printf(",\"endpoint\":");
        bg_json_cstr(stdout, p->endpoint);
        printf(",\"reachable\":%s,\"latency_us\":%u,\"last_ok_ms\":%lld,\"error\":",
               p->reachable ? "true" : "false", p->latency_us, (long long)p->last_ok_ms);
        bg_json_cstr(stdout, p->error);
        printf("}");
    }
    printf("],\"requests\":{");
    for (size_t i = 0; i < s->n_requests; i++) {
        printf("%s", i ? "," : "");
        bg_json_cstr(stdout, s->requests[i]->name);
        printf(":%llu", (unsigned long long)s->requests[i]->value);
    }
    printf("}}\n");
}

static void
print_status_text(const Baygate__StatusAnswer *s)
{
    time_t crl = (time_t)(s->crl_next_update_ms / 1000);
    struct tm tm;
    char when[32] = "unknown";
    if (crl > 0 && gmtime_r(&crl, &tm) != NULL)
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    printf("%s %s (baygate %s)\n  listening  %s\n  uptime     %llu s\n"
           "  roster     serial %llu\n  CRL        next update %s\n  standing   %s%s\n"
           "  peers:\n",
           s->city, s->name, s->version, s->listen, (unsigned long long)s->uptime_s,
           (unsigned long long)s->roster_serial, when, s->standing[0] ? s->standing : "unknown",
           s->standing[0] == '\0' || strcmp(s->standing, "ok") == 0
               ? ""
               : " (NOT in good standing: see the gateway's log)");
    for (size_t i = 0; i < s->n_peers; i++) {
        const Baygate__PeerStatus *p = s->peers[i];
        if (p->reachable)
            printf("    %s %-10s %-28s reachable, %.2f ms\n", p->city, p->name, p->endpoint,
                   p->latency_us / 1000.0);
        else
            printf("    %s %-10s %-28s NOT reachable: %s\n", p->city, p->name, p->endpoint,
                   p->error);
    }
    printf("  federation requests:\n");
    for (size_t i = 0; i < s->n_requests; i++)
        printf("    %-32s %llu\n", s->requests[i]->name, (unsigned long long)s->requests[i]->value);
}

static void
status_usage(FILE *f)
{
    fprintf(f, "usage: baygate status --dir GW [--probe] [--json]\n\n"
               "Shows the gateway of GW: uptime, roster serial, CRL expiry, each peer and\n"
               "whether it is reachable (--probe pings every peer now; otherwise the last\n"
               "result), and federation requests by outcome.\n");
}

int
bg_cmd_status(int argc, char **argv)
{
    static const struct option opts[] = {
        {"dir", required_argument, NULL, 'd'},
        {"probe", no_argument, NULL, 'p'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *dir = NULL;
    bool json = false, probe = false;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "d:pjh", opts, NULL)) != -1) {
        switch (ch) {
        case 'd':
            dir = optarg;
            break;
        case 'p':
            probe = true;
            break;
        case 'j':
            json = true;
            break;
        case 'h':
            status_usage(stdout);
            return BG_EXIT_OK;
        default:
            status_usage(stderr);
            return BG_EXIT_ERROR;
        }
    }
    if (dir == NULL || optind != argc) {
        status_usage(stderr);
        return BG_EXIT_ERROR;
    }
    Baygate__LocalAnswer *ans = ask_status("status", dir, probe, 30000);
    if (ans == NULL)
        return BG_EXIT_ERROR;
    if (json)
        print_status_json(ans->status);
    else
        print_status_text(ans->status);
    bg_pb_free(ans);
    return BG_EXIT_OK;
}
