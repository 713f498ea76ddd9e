/*
 * cmd_serve.c - baygate serve: run a city gateway in the foreground.
 *
 * Signals are taken synchronously (sigtimedwait in this loop), never in a
 * handler: SIGTERM/SIGINT stop the gateway (round trips to peers in flight
 * aborted, so no peer that does not answer holds it up; no new requests,
 * in-flight ones finish, exit 0; what it waited for and how long it took are
 * logged); SIGHUP checks CRL and roster files at once (and reopens
 * the log file, for logrotate); otherwise they are checked every second.
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
               "--log-format json writes one JSON object a line. A new crl.pem or\n"
               "roster.pb is picked up without a restart. SIGHUP: check them at once and\n"
               "reopen FILE (after logrotate moved it). SIGTERM or SIGINT: stop\n"
               "accepting, abort calls to peers in flight (a peer that does not answer\n"
               "never delays a stop), finish in-flight requests, exit 0; the log says\n"
               "what it waited for and how long it took. Under systemd (Type=notify)\n"
               "it reports readiness, reloads and stopping.\n");
}

/* SIGTERM or SIGINT: logs what the gateway was waiting for, stops it (its round trips
 * to peers aborted first) and logs how long that took. */
static void
serve_stop(bg_gw *gw, const char *dir, int sig)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    char busy[512];
    bg_gw_busy(gw, busy, sizeof busy);
    bg_log(BG_LOG_INFO, "gateway.stopping", "signal=%s waiting_for=%s",
           sig == SIGTERM ? "SIGTERM" : "SIGINT", busy);
    bg_gw_stop(gw);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    bg_log(BG_LOG_INFO, "gateway.stopped", "dir=%s elapsed_ms=%lld", dir,
           (long long)(t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000);
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
    int sig;
    for (;;) {
        struct timespec tick = {.tv_sec = 1};
        siginfo_t info;
        sig = sigtimedwait(&set, &info, &tick);
        if (sig == SIGTERM || sig == SIGINT)
            break;
        if (sig < 0 && errno != EAGAIN && errno != EINTR)
            bg_log(BG_LOG_WARN, "gateway.sigwait", "error=\"%s\"", strerror(errno));
        if (sig == SIGHUP) {
            serve_notify("RELOADING=1");
            if (bg_log_reopen(&err) != BG_OK)
                bg_log(BG_LOG_ERROR, "log.reopen_failed", "error=\"%s\"", err.msg);
        }
        bg_gw_tick(gw);
        if (sig == SIGHUP)
            serve_notify("READY=1\nSTATUS=serving");
    }
    serve_notify("STOPPING=1");
    serve_stop(gw, dir, sig);
    return BG_EXIT_OK;
}
