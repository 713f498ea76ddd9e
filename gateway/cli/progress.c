/*
 * progress.c - the line on stderr while a command waits for its gateway (cli.h): what
 * was asked, for how long, and the snapshot fetches the gateway has in flight. The
 * gateway answers a query in one message, so its own status, asked every half second
 * on a connection of our own, is the only way to see how far a long first query is.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "gateway/api/api_json.h"
#include "gateway/cli/cli.h"
#include "gateway/config/config.h"
#include "peers/transport.h"
#include "proto/api.pb-c.h"
#include "proto/pb.h"

#define PROGRESS_TICK_MS 500
/* How long one status poll is waited for (the line stands still meanwhile, and a stop
 * waits for it): as long as a connection may take (LOCAL_CONNECT_MS), since a client
 * closed before its handshake is done would break the gateway's local listener for
 * good (transport.h). A gateway answers status at once; one that does not is stuck,
 * and the command's own call says so. */
#define PROGRESS_STATUS_MS 5000
#define PROGRESS_LINE 512

struct bg_cli_progress {
    pthread_t thread;
    pthread_mutex_t lock; /* the line on stderr, done */
    pthread_cond_t wake;
    bool done, shown;
    char what[160];
    bg_config cfg;
    bool have_cfg;
};

/* The terminal's width, so that the line never wraps (a wrapped line is not rewritten
 * by \r); 80 when it does not say. */
static size_t
term_cols(void)
{
    struct winsize ws;
    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 1)
        return ws.ws_col;
    return 80;
}

/* The fetches in flight as "; fetching ..." each, into out (of cap bytes); its length. */
static size_t
fetches_text(bg_tp_client *cli, char *out, size_t cap)
{
    out[0] = '\0';
    bg_err err = {0};
    Baygate__LocalAnswer *ans = cli ? bg_cli_status_on(cli, PROGRESS_STATUS_MS, &err) : NULL;
    if (ans == NULL)
        return 0;
    size_t len = 0;
    char one[200];
    for (size_t i = 0; i < ans->status->n_fetches && len + 1 < cap; i++) {
        int k = snprintf(out + len, cap - len, "; %s",
                         bg_api_fetch_text(ans->status->fetches[i], one, sizeof one));
        len = k < 0 ? len : len + (size_t)k < cap ? len + (size_t)k : cap - 1;
    }
    bg_pb_free(ans);
    return len;
}

static void *
progress_main(void *arg)
{
    bg_cli_progress *p = arg;
    bg_tp_client *cli = NULL;
    bool opened = false;
    int64_t t0 = bg_clock_ms();
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    pthread_mutex_lock(&p->lock);
    while (!p->done) {
        until.tv_nsec += PROGRESS_TICK_MS * 1000000L;
        until.tv_sec += until.tv_nsec / 1000000000L;
        until.tv_nsec %= 1000000000L;
        while (!p->done && pthread_cond_timedwait(&p->wake, &p->lock, &until) == 0)
            ;
        if (p->done)
            break;
        pthread_mutex_unlock(&p->lock);
        /* Opened at the first tick and called at once, never left unused: see above. */
        bg_err err = {0};
        if (!opened && p->have_cfg && bg_cli_local_open(&p->cfg, &cli, &err) != BG_OK)
            cli = NULL; /* the line goes on with what it knows */
        opened = true;
        char fetches[PROGRESS_LINE], line[sizeof p->what + PROGRESS_LINE + 32];
        int64_t secs = (bg_clock_ms() - t0) / 1000;
        size_t nf = fetches_text(cli, fetches, sizeof fetches);
        size_t cols = term_cols() - 1;
        /* What was asked gives way to the fetches when both do not fit. */
        if (strlen(p->what) + 16 + nf > cols && nf > 0)
            snprintf(line, sizeof line, "%lld s%s", (long long)secs, fetches);
        else
            snprintf(line, sizeof line, "%s: %lld s%s", p->what, (long long)secs, fetches);
        if (strlen(line) > cols)
            line[cols] = '\0';
        pthread_mutex_lock(&p->lock);
        /* From the second second on, or at once when there is a fetch to show. */
        if (!p->done && (secs >= 1 || nf > 0)) {
            fprintf(stderr, "\r%s\033[K", line);
            fflush(stderr);
            p->shown = true;
        }
    }
    if (p->shown)
        fputs("\r\033[K", stderr);
    pthread_mutex_unlock(&p->lock);
    if (cli != NULL)
        bg_tp_client_close(cli);
    return NULL;
}

bg_cli_progress *
bg_cli_progress_start(const char *dir, const char *what, bool quiet)
{
    if (quiet || !isatty(STDERR_FILENO))
        return NULL;
    bg_cli_progress *p = calloc(1, sizeof *p);
    if (p == NULL)
        return NULL; /* a progress line is not worth failing the command for */
    snprintf(p->what, sizeof p->what, "%s", what);
    bg_err err = {0};
    p->have_cfg = bg_cli_gateway_config(dir, &p->cfg, &err) == BG_OK;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    if (pthread_create(&p->thread, NULL, progress_main, p) != 0) {
        pthread_cond_destroy(&p->wake);
        pthread_mutex_destroy(&p->lock);
        free(p);
        return NULL;
    }
    return p;
}

void
bg_cli_progress_clear(bg_cli_progress *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->lock);
    if (p->shown)
        fputs("\r\033[K", stderr);
    pthread_mutex_unlock(&p->lock);
}

void
bg_cli_progress_stop(bg_cli_progress *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->lock);
    p->done = true;
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->lock);
    pthread_join(p->thread, NULL);
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->lock);
    free(p);
}
