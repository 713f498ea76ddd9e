/*
 * cmd_serve.c - baygate serve: run a city gateway in the foreground.
 *
 * Signals are taken synchronously (sigtimedwait in this loop), never in a
 * handler: SIGTERM/SIGINT stop the gateway (round trips to peers in flight
 * aborted, so no peer that does not answer holds it up; no new requests,
 * in-flight ones finish, exit 0; what it waited for and how long it took are
 * logged); SIGHUP checks CRL and roster files at once, reads the city's key
 * and certificate again (a rotation) and reopens the log file (for
 * logrotate); otherwise they are checked every second.
 * Under systemd (Type=notify) the service manager hears READY=1 once the
 * gateway serves, RELOADING=1/READY=1 around a SIGHUP and STOPPING=1.
 *
 * One gateway per directory: GW/serve.lock is locked (and holds the pid) for
 * the process's lifetime, taken before anything else is touched, so a second
 * serve of the same directory says who runs it and leaves it alone. The kernel
 * drops the lock when the process ends, however it ends.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/file.h"
#include "gateway/api/api.h"
#include "gateway/cli/cli.h"
#include "gateway/cli/notify.h"
#include "gateway/config/config.h"
#include "gateway/daemon/gw.h"
#include "gateway/daemon/log.h"

static void
serve_usage(FILE *f)
{
    fprintf(f,
            "usage: baygate serve --dir GW [--log-level debug|info|warn|error]\n"
            "                     [--log-format text|json] [--log-file FILE]\n\n"
            "Runs the city gateway of directory GW (made by 'baygate init') in the\n"
            "foreground: the federation API on its tls+tcp listen address, the local\n"
            "API on GW's ipc socket. Log lines go to stderr, or appended to FILE;\n"
            "--log-format json writes one JSON object a line. A new crl.pem, roster.pb\n"
            "or city.crt (with its city.key: 'baygate rekey') is picked up without a\n"
            "restart. SIGHUP: check them at once and reopen FILE (after logrotate\n"
            "moved it). SIGTERM or SIGINT: stop\n"
            "accepting, abort calls to peers in flight (a peer that does not answer\n"
            "never delays a stop), finish in-flight requests, exit 0; the log says\n"
            "what it waited for and how long it took. Under systemd (Type=notify)\n"
            "it reports readiness, reloads and stopping.\n"
            "One gateway per directory: GW/%s holds the running one's pid, and a\n"
            "second serve of GW says so and exits 2, leaving the first alone.\n"
            "\n"
            "EXAMPLES\n"
            "  baygate serve --dir GZ\n"
            "  baygate serve --dir GZ --log-format json --log-file /var/log/baygate/gz.log\n"
            "\n"
            "EXIT STATUS\n"
            "  0  stopped cleanly (SIGTERM, SIGINT)\n"
            "  2  usage error, or it could not start (the log says why)\n",
            BG_CLI_SERVE_LOCK);
}

/* SIGTERM or SIGINT: logs what the gateway was waiting for, stops it (its round trips
 * to peers aborted first) and logs how long that took. */
static void
serve_stop(bg_gw *gw, const char *dir, int sig)
{
    int64_t t0 = bg_clock_ms();
    char busy[512];
    bg_gw_busy(gw, busy, sizeof busy);
    bg_log(BG_LOG_INFO, "gateway.stopping", "signal=%s waiting_for=%s",
           sig == SIGTERM ? "SIGTERM" : "SIGINT", busy);
    bg_gw_stop(gw);
    bg_log(BG_LOG_INFO, "gateway.stopped", "dir=%s elapsed_ms=%lld", dir,
           (long long)(bg_clock_ms() - t0));
}

/* A failed notification is logged, never fatal: the gateway serves anyway. */
static void
serve_notify(const char *state)
{
    bg_err err = {0};
    if (bg_notify(state, &err) != BG_OK)
        bg_log(BG_LOG_WARN, "gateway.notify_failed", "error=\"%s\"", err.msg);
}

struct serve_opts {
    const char *dir, *log_file;
};

static bool
set_level(const char *s)
{
    static const struct {
        const char *name;
        bg_log_level level;
    } levels[] = {
        {"debug", BG_LOG_DEBUG},
        {"info", BG_LOG_INFO},
        {"warn", BG_LOG_WARN},
        {"error", BG_LOG_ERROR},
    };
    for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++)
        if (strcmp(s, levels[i].name) == 0) {
            bg_log_set_level(levels[i].level);
            return true;
        }
    return false;
}

/* BG_EXIT_OK to serve, -1 after --help, else the exit status (said on stderr). */
static int
parse_opts(int argc, char **argv, struct serve_opts *o)
{
    static const struct option opts[] = {
        {"dir", required_argument, NULL, 'd'},
        {"log-level", required_argument, NULL, 'l'},
        {"log-format", required_argument, NULL, 'F'},
        {"log-file", required_argument, NULL, 'L'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, ":d:l:F:L:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'd':
            o->dir = optarg;
            break;
        case 'l':
            if (!set_level(optarg))
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
            o->log_file = optarg;
            break;
        case 'h':
            serve_usage(stdout);
            return -1;
        default:
            return bg_cli_bad_option("serve", ch, argv, opts);
        }
    }
    if (optind != argc)
        return bg_cli_usage_error("serve", "unexpected argument '%s'", argv[optind]);
    if (o->dir == NULL)
        return bg_cli_usage_error("serve", "--dir GW is required");
    return BG_EXIT_OK;
}

/* Takes GW/serve.lock for this process's lifetime; *fd keeps it (-1: not a
 * gateway directory, nothing taken or made: starting says what is wrong). */
static int
take_lock(const char *dir, int *fd)
{
    char ini[PATH_MAX];
    if (bg_path_join(ini, sizeof ini, dir, BG_CONFIG_FILE, NULL) != BG_OK || access(ini, F_OK) != 0)
        return BG_EXIT_OK;
    char path[PATH_MAX];
    bg_err err = {0};
    long holder = 0;
    if (bg_path_join(path, sizeof path, dir, BG_CLI_SERVE_LOCK, &err) != BG_OK)
        return bg_cli_fail("serve", "%s", err.msg);
    int rc = bg_file_lock_pid(path, fd, &holder, &err);
    if (rc == BG_EEXIST && holder != 0)
        return bg_cli_fail("serve",
                           "a gateway is already running in %s (pid %ld holds %s); "
                           "not starting a second one",
                           dir, holder, path);
    if (rc == BG_EEXIST)
        return bg_cli_fail("serve",
                           "a gateway is already running in %s (%s); not starting a second one",
                           dir, err.msg);
    if (rc != BG_OK)
        return bg_cli_fail("serve", "%s", err.msg);
    return BG_EXIT_OK;
}

/* Serves until SIGTERM or SIGINT, which it returns: a tick a second, SIGHUP at once. */
static int
serve_loop(bg_gw *gw, const sigset_t *set)
{
    bg_err err = {0};
    for (;;) {
        struct timespec tick = {.tv_sec = 1};
        siginfo_t info;
        int sig = sigtimedwait(set, &info, &tick);
        if (sig == SIGTERM || sig == SIGINT)
            return sig;
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
}

/* Starts the gateway of dir (the lock held), serves, stops. */
static int
serve(const struct serve_opts *o)
{
    /* Block the signals in every thread the gateway will start; serve_loop
     * alone receives them. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* A file size limit (systemd's LimitFSIZE=, ulimit -f) must fail the one write
     * that passes it, logged as a disk error, not kill the gateway in the middle. */
    signal(SIGXFSZ, SIG_IGN);

    bg_gw *gw = NULL;
    bg_err err = {0};
    if (o->log_file != NULL && bg_log_open_file(o->log_file, &err) != BG_OK)
        return bg_cli_fail("serve", "%s", err.msg);
    if (bg_gw_start(&gw, o->dir, &err) != BG_OK) {
        bg_log(BG_LOG_ERROR, "gateway.start_failed", "dir=%s error=\"%s\"", o->dir, err.msg);
        return bg_cli_fail("serve", "%s", err.msg);
    }
    bg_api *api = NULL;
    if (bg_api_start(&api, gw, o->dir, &err) != BG_OK) {
        bg_log(BG_LOG_ERROR, "api.start_failed", "dir=%s error=\"%s\"", o->dir, err.msg);
        bg_gw_stop(gw);
        return bg_cli_fail("serve", "%s", err.msg);
    }
    serve_notify("READY=1\nSTATUS=serving");
    int sig = serve_loop(gw, &set);
    serve_notify("STOPPING=1");
    bg_api_stop(api); /* its calls into the gateway finish first */
    serve_stop(gw, o->dir, sig);
    return BG_EXIT_OK;
}

int
bg_cmd_serve(int argc, char **argv)
{
    struct serve_opts o = {0};
    int rc = parse_opts(argc, argv, &o);
    if (rc != BG_EXIT_OK)
        return rc < 0 ? BG_EXIT_OK : rc;
    /* Before the log file or anything of the gateway's: a second serve must not
     * write into the running one's log or touch its files. */
    int lock_fd = -1;
    if ((rc = take_lock(o.dir, &lock_fd)) != BG_EXIT_OK)
        return rc;
    rc = serve(&o);
    if (lock_fd >= 0)
        close(lock_fd); /* the lock goes with it */
    return rc;
}
