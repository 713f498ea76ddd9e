/*
 * cmd_local.c - baygate ping / baygate status: questions to the city's own
 * gateway over its local API (ipc socket in the gateway directory); and the one
 * way every command asks it (bg_cli_ask): a gateway that is not running (no
 * socket, or a stale one a kill -9 left) is said at once, never waited for.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/json.h"
#include "gateway/api/api_json.h"
#include "gateway/cli/cli.h"
#include "gateway/config/config.h"
#include "gateway/daemon/codes.h"
#include "peers/transport.h"
#include "proto/api.pb-c.h"
#include "proto/pb.h"

/* What a local request and its answer may weigh (a query of 2^21 ids, its matches). */
#define LOCAL_REQUEST_MAX (64 * 1024 * 1024)
#define LOCAL_ANSWER_MAX (256 * 1024 * 1024)
/* A query fetches snapshots and runs PSI with every peer: minutes for big ones. */
#define LOCAL_TIMEOUT_MS (30 * 60 * 1000)
/* A gateway that runs takes the connection at once: one that has not within this
 * is stopped (SIGSTOP), hung or overwhelmed, and the command says so instead of
 * waiting out the answer's timeout. Not shorter: a client that leaves in the middle
 * of the handshake breaks nng 1.5.2's listener for good (transport.h,
 * bg_tp_ipc_probe), and a gateway under load may take a moment to accept. */
#define LOCAL_CONNECT_MS 5000

Baygate__LocalAnswer *
bg_cli_call(bg_tp_client *cli, const Baygate__LocalRequest *req, int timeout_ms, bg_err *err)
{
    size_t len = baygate__local_request__get_packed_size(req);
    if (len > LOCAL_REQUEST_MAX) {
        bg_err_set(err, BG_ELIMIT,
                   "cannot be asked: the request of %zu bytes is too large (at most %d)", len,
                   LOCAL_REQUEST_MAX);
        return NULL;
    }
    uint8_t *buf = malloc(len ? len : 1);
    if (buf == NULL) {
        bg_err_set(err, BG_ENOMEM, "cannot be asked: out of memory");
        return NULL;
    }
    baygate__local_request__pack(req, buf);
    Baygate__LocalAnswer *ans = NULL;
    uint8_t *out = NULL;
    size_t out_len = 0;
    bg_tp_fail fail;
    bg_err e = {0};
    if (bg_tp_call(cli, buf, len, &out, &out_len, timeout_ms, &fail, &e) != BG_OK) {
        bg_err_set(err, e.code, "did not answer: %s: %s", bg_tp_fail_name(fail), e.msg);
    } else {
        ans = bg_pb_unpack(&baygate__local_answer__descriptor, out_len, out);
        if (ans == NULL)
            bg_err_set(err, BG_EPROTO, "sent an answer that does not parse");
        bg_tp_answer_free(out);
    }
    free(buf);
    return ans;
}

int
bg_cli_local_open(const bg_config *cfg, bg_tp_client **cli, bg_err *err)
{
    bg_tp_client_opts o = {.url = cfg->local_url,
                           .recv_max = LOCAL_ANSWER_MAX,
                           .send_max = LOCAL_REQUEST_MAX,
                           .connect_ms = LOCAL_CONNECT_MS};
    return bg_tp_client_open(cli, &o, err);
}

/* The one call over the local socket of a gateway found serving: req packed, sent, the
 * answer unpacked; NULL said on stderr. */
static Baygate__LocalAnswer *
local_call(const char *cmd, const bg_config *cfg, const Baygate__LocalRequest *req, int timeout_ms)
{
    bg_err err = {0};
    bg_tp_client *cli = NULL;
    Baygate__LocalAnswer *ans = NULL;
    if (bg_cli_local_open(cfg, &cli, &err) != BG_OK) {
        bg_cli_fail(cmd, "%s", err.msg);
    } else {
        if ((ans = bg_cli_call(cli, req, timeout_ms, &err)) == NULL)
            bg_cli_fail(cmd, "the %s gateway %s", cfg->city, err.msg);
        bg_tp_client_close(cli);
    }
    return ans;
}

int
bg_cli_gateway_config(const char *dir, bg_config *cfg, bg_err *err)
{
    char path[BG_CONFIG_PATH_MAX + 32];
    if (snprintf(path, sizeof path, "%s/%s", dir, BG_CONFIG_FILE) >= (int)sizeof path)
        return bg_err_set(err, BG_EINVAL, "gateway directory path too long");
    return bg_config_load(path, cfg, err);
}

Baygate__LocalAnswer *
bg_cli_ask_within(const char *cmd, const char *dir, const Baygate__LocalRequest *req,
                  int timeout_ms)
{
    bg_config cfg;
    bg_err err = {0};
    if (bg_cli_gateway_config(dir, &cfg, &err) != BG_OK) {
        bg_cli_fail(cmd, "%s", err.msg);
        return NULL;
    }
    /* Before nng's dialer, which would redial a dead socket for the whole timeout. */
    switch (bg_tp_ipc_probe(cfg.local_socket, LOCAL_CONNECT_MS, &err)) {
    case BG_TP_IPC_SERVING:
        return local_call(cmd, &cfg, req, timeout_ms);
    case BG_TP_IPC_ABSENT:
        bg_cli_fail(cmd, "the %s gateway in %s is not running (%s)", cfg.city, dir, err.msg);
        return NULL;
    case BG_TP_IPC_STALE:
        bg_cli_fail(cmd,
                    "the %s gateway in %s is not running (%s; a gateway that did not stop "
                    "cleanly left it)",
                    cfg.city, dir, err.msg);
        return NULL;
    case BG_TP_IPC_SILENT:
        bg_cli_fail(cmd,
                    "the %s gateway in %s does not answer within %d ms (%s): stopped or "
                    "overwhelmed?",
                    cfg.city, dir, LOCAL_CONNECT_MS, err.msg);
        return NULL;
    default:
        bg_cli_fail(cmd, "cannot reach the %s gateway in %s: %s", cfg.city, dir, err.msg);
        return NULL;
    }
}

Baygate__LocalAnswer *
bg_cli_ask(const char *cmd, const char *dir, const Baygate__LocalRequest *req)
{
    return bg_cli_ask_within(cmd, dir, req, LOCAL_TIMEOUT_MS);
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
        printf("%s %-10s %s  %s\n", r->peer, r->peer_name ? r->peer_name : "",
               r->error_code == BG_GW_E_REVOKED ? "REVOKED" : "FAILED", r->error);
    }
}

/* ans if it holds a status; else NULL, ans freed and what it said in err. */
static Baygate__LocalAnswer *
status_checked(Baygate__LocalAnswer *ans, bg_err *err)
{
    if (ans != NULL && (ans->error_code != 0 || ans->status == NULL)) {
        bg_err_set(err, BG_EPROTO, "%s", ans->error ? ans->error : "no status in the answer");
        bg_pb_free(ans);
        return NULL;
    }
    return ans;
}

/* The local request for our status (peers pinged first if probe). */
static void
status_request(Baygate__LocalRequest *req, Baygate__LocalStatus *st, bool probe)
{
    baygate__local_request__init(req);
    baygate__local_status__init(st);
    st->probe_peers = probe;
    req->op_case = BAYGATE__LOCAL_REQUEST__OP_STATUS;
    req->status = st;
}

Baygate__LocalAnswer *
bg_cli_ask_status(const char *cmd, const char *dir, bool probe, int timeout_ms)
{
    Baygate__LocalRequest req;
    Baygate__LocalStatus st;
    status_request(&req, &st, probe);
    Baygate__LocalAnswer *ans = bg_cli_ask_within(cmd, dir, &req, timeout_ms);
    if (ans == NULL)
        return NULL;
    bg_err err = {0};
    if ((ans = status_checked(ans, &err)) == NULL)
        bg_cli_fail(cmd, "%s", err.msg);
    return ans;
}

Baygate__LocalAnswer *
bg_cli_status_on(bg_tp_client *cli, int timeout_ms, bg_err *err)
{
    Baygate__LocalRequest req;
    Baygate__LocalStatus st;
    status_request(&req, &st, false);
    return status_checked(bg_cli_call(cli, &req, timeout_ms, err), err);
}

static void
ping_usage(FILE *f)
{
    fprintf(f, "usage: baygate ping --dir GW --peer CITY|all [--timeout-ms N] [--json]\n\n"
               "Asks the gateway of GW to make an authenticated round trip (signed\n"
               "envelopes over mutual TLS) to a peer, or to every peer in the roster.\n"
               "Prints the peer's identity, its roster serial and the latency, or the\n"
               "check that failed.\n"
               "\n"
               "EXAMPLES\n"
               "  baygate ping --dir GZ --peer 440300\n"
               "  baygate ping --dir GZ --peer all --json\n"
               "\n"
               "EXIT STATUS\n"
               "  0  every peer answered\n"
               "  1  some peer did not\n"
               "  2  usage error, or the gateway is not running\n");
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
    Baygate__LocalAnswer *ans = bg_cli_ask_within("ping", dir, &req, (int)timeout + 2000);
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
    while ((ch = getopt_long(argc, argv, ":d:p:t:jh", opts, NULL)) != -1) {
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
            return bg_cli_bad_option("ping", ch, argv, opts);
        }
    }
    if (optind != argc)
        return bg_cli_usage_error("ping", "unexpected argument '%s'", argv[optind]);
    if (dir == NULL || peer == NULL)
        return bg_cli_usage_error("ping", "%s is required", dir == NULL ? "--dir GW" : "--peer");

    /* "all": the peers the gateway knows from its roster. */
    char peers[64][8];
    size_t npeers = 0;
    if (strcmp(peer, "all") == 0) {
        Baygate__LocalAnswer *st = bg_cli_ask_status("ping", dir, false, (int)timeout);
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

/* ------------------------------------------------------------- status */

/* "364 days left", "41 h left", "EXPIRED 3 h ago". */
static const char *
left_text(const bg_api_expiry *e, char out[48])
{
    int64_t s = e->secs_left;
    if (!e->known)
        snprintf(out, 48, "unknown");
    else if (s < 0)
        snprintf(out, 48, "EXPIRED %lld h ago", (long long)(-s / 3600));
    else if (s < 3 * 86400)
        snprintf(out, 48, "%lld h left", (long long)(s / 3600));
    else
        snprintf(out, 48, "%lld days left", (long long)(s / 86400));
    return out;
}

/* The certificate and CRL lines, with a WARNING line under each that is due soon. */
static void
text_expiries(const Baygate__StatusAnswer *s, time_t now)
{
    bg_api_expiry cert =
        bg_api_expiry_of(s->cert_not_after_ms, (int64_t)s->cert_warn_days * 86400, now);
    bg_api_expiry crl =
        bg_api_expiry_of(s->crl_next_update_ms, (int64_t)s->crl_warn_hours * 3600, now);
    char left[48];
    printf("  certificate  expires %s (%s)\n", cert.when, left_text(&cert, left));
    if (cert.warn)
        printf("  WARNING      the city certificate %s (warned under %u days): have the\n"
               "               operator issue a new one before it expires, or every peer "
               "refuses us\n",
               cert.secs_left < 0 ? "has expired" : "expires soon", s->cert_warn_days);
    printf("  CRL          #%llu, next update %s (%s)\n", (unsigned long long)s->crl_number,
           crl.when, left_text(&crl, left));
    if (crl.warn)
        printf("  WARNING      the CRL %s (warned under crl_warn_hours = %u): publish a new\n"
               "               one before it passes, or all traffic stops\n",
               crl.secs_left < 0 ? "has expired" : "expires soon", s->crl_warn_hours);
}

/* Lists, status list, quota, evidence log and witnesses. */
static void
text_publishing(const Baygate__StatusAnswer *s)
{
    char t[32], root[65];
    printf("  lists%s\n", s->n_lists ? ":" : "        none published (no import yet?)");
    for (size_t i = 0; i < s->n_lists; i++) {
        const Baygate__ListStatus *l = s->lists[i];
        printf("    %-20s generation %llu  epoch %llu  entries %llu  published %s\n", l->list,
               (unsigned long long)l->generation, (unsigned long long)l->epoch,
               (unsigned long long)l->entries, bg_api_when(l->published_ms, t));
    }
    if (s->status_list_number > 0)
        printf("  status list  number %llu, issued %s\n", (unsigned long long)s->status_list_number,
               bg_api_when(s->status_list_issued_ms, t));
    else
        printf("  status list  none yet\n");
    printf("  quota today (items each peer asked of us, of its daily quota):\n");
    for (size_t i = 0; i < s->n_quotas; i++)
        printf("    %s %llu of %llu\n", s->quotas[i]->peer,
               (unsigned long long)s->quotas[i]->used_today,
               (unsigned long long)s->quotas[i]->quota_per_day);
    const Baygate__EvidenceStatus *ev = s->evidence;
    if (ev == NULL)
        return;
    bg_api_hex32(&ev->root, root);
    printf("  evidence     %llu leaves, root %.16s...\n", (unsigned long long)ev->size, root);
    if (ev->head_time_ms > 0)
        printf("               last signed head: size %llu at %s\n",
               (unsigned long long)ev->head_size, bg_api_when(ev->head_time_ms, t));
    else
        printf("               no signed head yet\n");
    printf("  witnesses (their latest cosignature of our log):\n");
    for (size_t i = 0; i < ev->n_witnesses; i++) {
        const Baygate__WitnessStatus *w = ev->witnesses[i];
        if (w->cosigned_ms > 0)
            printf("    %s size %llu at %s\n", w->witness, (unsigned long long)w->size,
                   bg_api_when(w->cosigned_ms, t));
        else
            printf("    %s none yet\n", w->witness);
    }
}

static void
print_status_text(const Baygate__StatusAnswer *s, time_t now)
{
    printf("%s %s (baygate %s)\n  listening    %s\n  uptime       %llu s\n"
           "  roster       serial %llu\n  standing     %s%s\n",
           s->city, s->name, s->version, s->listen, (unsigned long long)s->uptime_s,
           (unsigned long long)s->roster_serial, s->standing[0] ? s->standing : "unknown",
           s->standing[0] == '\0' || strcmp(s->standing, "ok") == 0
               ? ""
               : " (NOT in good standing: see the gateway's log)");
    text_expiries(s, now);
    text_publishing(s);
    printf("  peers:\n");
    for (size_t i = 0; i < s->n_peers; i++) {
        const Baygate__PeerStatus *p = s->peers[i];
        if (p->reachable)
            printf("    %s %-10s %-28s reachable, %.2f ms\n", p->city, p->name, p->endpoint,
                   p->latency_us / 1000.0);
        else
            printf("    %s %-10s %-28s NOT reachable: %s\n", p->city, p->name, p->endpoint,
                   p->error);
    }
    char fetch[200];
    for (size_t i = 0; i < s->n_fetches; i++)
        printf("  %s\n", bg_api_fetch_text(s->fetches[i], fetch, sizeof fetch));
    printf("  federation requests:\n");
    for (size_t i = 0; i < s->n_requests; i++)
        printf("    %-32s %llu\n", s->requests[i]->name, (unsigned long long)s->requests[i]->value);
    if (s->cert_pinned[0] != '\0')
        printf("  certificate sha256 %s (the roster pins it as %s)\n", s->cert_sha256,
               s->cert_pinned);
    else
        printf("  certificate sha256 %s\n  WARNING: the roster pins it neither as current nor "
               "as next: peers refuse this gateway (pin-mismatch)\n",
               s->cert_sha256);
}

static void
status_usage(FILE *f)
{
    fprintf(f, "usage: baygate status --dir GW [--probe] [--json]\n\n"
               "Shows what the running gateway of GW is doing, from its local API:\n"
               "  uptime, listen address, roster serial;\n"
               "  the city certificate's expiry and the CRL's next update, each with the days\n"
               "    left and a WARNING when under 30 days (certificate) or [pki]\n"
               "    crl_warn_hours (CRL, default 72);\n"
               "  each list it publishes: OPRF key generation, epoch, entries, when published;\n"
               "    its status list number;\n"
               "  items each peer asked of it today, of the roster's daily quota;\n"
               "  the evidence log: size, root, the last signed head (size, time), and each\n"
               "    witness's latest cosignature (tree size, time);\n"
               "  each peer and whether it is reachable (--probe pings every peer now;\n"
               "    otherwise the last result);\n"
               "  each peer's snapshot being fetched now (a query waits for it): peer, list,\n"
               "    bytes and chunks received of how many, full or delta, for how long;\n"
               "  and federation requests by outcome.\n"
               "--json gives the same as one object (certificate, crl, lists, status_list,\n"
               "quotas, evidence, peers, requests, fetches, ...). A gateway that is not\n"
               "running (no socket, or a stale one) is said at once.\n"

               "\n"
               "EXAMPLES\n"
               "  baygate status --dir GZ\n"
               "  baygate status --dir GZ --probe --json\n"
               "\n"
               "EXIT STATUS\n"
               "  0  shown\n"
               "  2  usage error, or the gateway is not running\n");
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
    while ((ch = getopt_long(argc, argv, ":d:pjh", opts, NULL)) != -1) {
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
            return bg_cli_bad_option("status", ch, argv, opts);
        }
    }
    if (optind != argc)
        return bg_cli_usage_error("status", "unexpected argument '%s'", argv[optind]);
    if (dir == NULL)
        return bg_cli_usage_error("status", "--dir GW is required");
    Baygate__LocalAnswer *ans = bg_cli_ask_status("status", dir, probe, 30000);
    if (ans == NULL)
        return BG_EXIT_ERROR;
    time_t now = time(NULL);
    if (json)
        bg_api_json_status(stdout, ans->status, now);
    else
        print_status_text(ans->status, now);
    bg_pb_free(ans);
    return BG_EXIT_OK;
}
