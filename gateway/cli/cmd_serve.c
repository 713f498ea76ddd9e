/*
 * cmd_serve.c - baygate serve: run a city gateway in the foreground.
 *
 * Signals are taken synchronously (sigtimedwait in this loop), never in a
 * handler: SIGTERM/SIGINT stop the gateway (no new requests, in-flight ones
 * finish, exit 0); SIGHUP checks CRL and roster files at once, reads the
 * city's key and certificate again (a rotation) and reopens the log file (for
 * logrotate); otherwise they are checked every second.
 * Under systemd (Type=notify) the service manager hears READY=1 once the
 * gateway serves, RELOADING=1/READY=1 around a SIGHUP and STOPPING=1.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "gateway/cli/cli.h"
#include "gateway/cli/notify.h"
#include "gateway/daemon/gw.h"
#include "gateway/daemon/log.h"

static void
serve_usage(FILE *f)
{
    fprintf(f, "usage: baygate serve --dir GW [--log-level debug|info|warn|error]\n"
               "                     [--log-format text|json] [--log-file FILE]\n\n"
               "Runs the city gateway of directory GW (made by 'baygate init') in the\n"
               "foreground: the federation API on its tls+tcp listen address, the local\n"
               "API on GW's ipc socket. Log lines go to stderr, or appended to FILE;\n"
               "--log-format json writes one JSON object a line. A new crl.pem, roster.pb\n"
               "or city.crt (with its city.key: 'baygate rekey') is picked up without a\n"
               "restart. SIGHUP: check them at once and reopen FILE (after logrotate\n"
               "moved it). SIGTERM or SIGINT: stop accepting, finish in-flight requests,\n"
               "exit 0. Under systemd (Type=notify) it reports readiness, reloads and\n"
               "stopping.\n");
}

/* A failed notification is logged, never fatal: the gateway serves anyway. */
static void
serve_notify(const char *state)
{
    bg_err err = {0};
    if (bg_notify(state, &err) != BG_OK)
        bg_log(BG_LOG_WARN, "gateway.notify_failed", "error=\"%s\"", err.msg);
}

int
bg_cmd_serve(int argc, char **argv)
{
    static const struct option opts[] = {
        {"dir", required_argument, NULL, 'd'},
        {"log-level", required_argument, NULL, 'l'},
        {"log-format", required_argument, NULL, 'F'},
        {"log-file", required_argument, NULL, 'L'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *dir = NULL, *log_file = NULL;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "d:l:F:L:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'd':
            dir = optarg;
            break;
        case 'l':
            if (strcmp(optarg, "debug") == 0)
                bg_log_set_level(BG_LOG_DEBUG);
            else if (strcmp(optarg, "info") == 0)
                bg_log_set_level(BG_LOG_INFO);
            else if (strcmp(optarg, "warn") == 0)
                bg_log_set_level(BG_LOG_WARN);
            else if (strcmp(optarg, "error") == 0)
                bg_log_set_level(BG_LOG_ERROR);
            else
                return bg_cli_fail("serve", "--log-level: '%s' is not a level", optarg);
            break;
        case 'F':
            if (strcmp(optarg, "text") == 0)
                bg_log_set_format(BG_LOG_TEXT);
            else if (strcmp(optarg, "json") == 0)
                bg_log_set_format(BG_LOG_JSON);
            else
                return bg_cli_fail("serve", "--log-format: '%s' is not text or json", optarg);
            break;
        case 'L':
            log_file = optarg;
            break;
        case 'h':
            serve_usage(stdout);
            return BG_EXIT_OK;
        default:
            serve_usage(stderr);
            return BG_EXIT_ERROR;
        }
    }
    if (dir == NULL || optind != argc) {
        serve_usage(stderr);
        return BG_EXIT_ERROR;
    }

    /* Block the signals in every thread the gateway will start; this loop
     * alone receives them. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    bg_gw *gw = NULL;
    bg_err err = {0};
    if (log_file != NULL && bg_log_open_file(log_file, &err) != BG_OK)
        return bg_cli_fail("serve", "%s", err.msg);
    if (bg_gw_start(&gw, dir, &err) != BG_OK) {
        bg_log(BG_LOG_ERROR, "gateway.start_failed", "dir=%s error=\"%s\"", dir, err.msg);
        return bg_cli_fail("serve", "%s", err.msg);
    }
    serve_notify("READY=1\nSTATUS=serving");
    for (;;) {
        struct timespec tick = {.tv_sec = 1};
        siginfo_t info;
        int sig = sigtimedwait(&set, &info, &tick);
        if (sig == SIGTERM || sig == SIGINT) {
            bg_log(BG_LOG_INFO, "gateway.stopping", "signal=%s",
                   sig == SIGTERM ? "SIGTERM" : "SIGINT");
            break;
        }
        if (sig < 0 && errno != EAGAIN && errno != EINTR)
            bg_log(BG_LOG_WARN, "gateway.sigwait", "error=\"%s\"", strerror(errno));
        if (sig == SIGHUP) {
            serve_notify("RELOADING=1");
            if (bg_log_reopen(&err) != BG_OK)
                bg_log(BG_LOG_ERROR, "log.reopen_failed", "error=\"%s\"", err.msg);
        }
        (sig == SIGHUP ? bg_gw_reload : bg_gw_tick)(gw);
        if (sig == SIGHUP)
            serve_notify("READY=1\nSTATUS=serving");
    }
    serve_notify("STOPPING=1");
    bg_gw_stop(gw);
    bg_log(BG_LOG_INFO, "gateway.stopped", "dir=%s", dir);
    return BG_EXIT_OK;
}
