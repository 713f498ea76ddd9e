/*
 * transport_client.c - the REQ side: one socket per peer, one nng context
 * per call, a watchdog thread per client.
 *
 * The dialer is non-blocking and reconnects by itself with backoff. nng 1.5.2
 * tells a non-blocking dialer's failures only through its statistics
 * (connect / refused / auth / other / ... counters), so those counters are
 * how a failed call says why it never got a connection, and how the watchdog
 * tells a dialer that is cycling through errors (progress: leave it) from
 * one stuck in a handshake that will never finish (no progress: replace it).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "peers/transport_int.h"

#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/util/platform.h>

#define DEF_RECONNECT_MIN_MS 100
#define DEF_RECONNECT_MAX_MS 5000
#define DEF_WATCHDOG_MS 5000
/* How long close waits for the watchdog thread to close the socket before
 * leaving it to finish (and free the client) alone. */
#define CLOSE_WAIT_MS 5000
/* Connections tracked exactly (a client has one per dialer, two at most
 * while a dialer is replaced). */
#define MAX_PIPES 8
/* A connection closed by the peer sooner than this after it was made is a
 * "flap" (a peer at its connection limit, a hostile one). nng 1.5.2 redials
 * at once after a lost connection, and every such close risks stalling its
 * reaper for good (measured: within ~100-170 flaps), so flaps double the
 * redial delay (up to reconnect_max_ms) until a connection lives. */
#define FLAP_MS 1000

/* The dialer counters nng 1.5.2 keeps, in the order of the table below. */
enum { C_CONNECT, C_REFUSED, C_DISCONNECT, C_OTHER, C_TIMEOUT, C_PROTO, C_AUTH, C_OOM, NCOUNT };
static const char *const counter_names[NCOUNT] = {"connect", "refused", "disconnect", "other",
                                                  "timeout", "proto",   "auth",       "oom"};

typedef struct tp_call {
    nng_aio *aio;
    bool started; /* an nng operation may be pending on aio */
    struct tp_call *prev, *next;
} tp_call;

struct bg_tp_client {
    pthread_mutex_t lock;
    pthread_cond_t wd_cond;    /* watchdog: work to look at, or closing */
    pthread_cond_t done_cond;  /* close: calls gone, watchdog finished */
    pthread_mutex_t dial_lock; /* serialises dialer replacement */

    /* fixed at open */
    char url[BG_TP_URL_MAX + 1];
    char server_name[256];
    bool ipc;
    size_t recv_max, send_max;
    int reconnect_min_ms, reconnect_max_ms, watchdog_ms, connect_ms;
    nng_socket sock;

    /* dial_lock */
    nng_tls_config *tls;
    nng_dialer dialer;
    bool have_dialer;

    /* lock */
    uint32_t dialer_id;      /* 0: none */
    uint64_t counts[NCOUNT]; /* the current dialer's counters as last seen */
    uint32_t pipes[MAX_PIPES];
    int64_t pipe_since[MAX_PIPES];
    unsigned npipes;
    unsigned flaps;       /* consecutive quick disconnects */
    int redial_ms;        /* the reconnect minimum to apply (damped by flaps) */
    bool redial_changed;  /* the watchdog must apply redial_ms */
    int64_t progress_at;  /* last sign of life of the dialer */
    bg_tp_fail dial_fail; /* latest dial failure since the last connection */
    char dial_msg[200];
    unsigned waiting; /* calls waiting to be handed to a connection */
    bool suspect;     /* a call timed out unconnected: watch even if idle */
    bool closing, wd_done, orphan;
    bool aborted; /* bg_tp_client_abort: calls fail at once */
    tp_call *calls;
    unsigned ncalls;
    pthread_t wd;
    bool wd_started;
    bg_tp_client_stats st;
};

static void
client_free(bg_tp_client *cli)
{
    if (cli->tls != NULL)
        nng_tls_config_free(cli->tls);
    pthread_mutex_destroy(&cli->lock);
    pthread_mutex_destroy(&cli->dial_lock);
    pthread_cond_destroy(&cli->wd_cond);
    pthread_cond_destroy(&cli->done_cond);
    free(cli);
}

/* The counters of dialer d; false if nng has none (it is closing). */
static bool
dialer_counts(nng_dialer d, uint64_t out[NCOUNT])
{
    nng_stat *all = NULL;
    if (nng_stats_get(&all) != 0)
        return false;
    nng_stat *ds = tp_stat_scope(all, "dialer", nng_dialer_id(d));
    for (int i = 0; ds != NULL && i < NCOUNT; i++)
        out[i] = tp_stat_value(ds, counter_names[i]);
    nng_stats_free(all);
    return ds != NULL;
}

/* Takes in a fresh sample of the current dialer's counters: notes progress
 * and the most telling failure among those that moved. Lock held. Returns
 * true if anything moved. */
static bool
note_counts_locked(bg_tp_client *cli, const uint64_t now[NCOUNT])
{
    bool moved[NCOUNT], any = false;
    for (int i = 0; i < NCOUNT; i++) {
        moved[i] = now[i] > cli->counts[i];
        any |= moved[i];
        cli->counts[i] = now[i];
    }
    if (!any)
        return false;
    cli->progress_at = tp_now_ms();
    /* Most specific first. nng maps NNG_ECRYPTO/NNG_EPEERAUTH to "auth";
     * NNG_ECONNSHUT (a gateway closing the handshake on a client without an
     * acceptable certificate) lands in "other". */
    if (moved[C_AUTH]) {
        cli->dial_fail = BG_TP_TLS_REFUSED;
        snprintf(cli->dial_msg, sizeof cli->dial_msg,
                 "TLS handshake refused: certificate not accepted (the peer refused ours, or "
                 "its certificate failed our checks: CA, CRL, validity, server name)");
    } else if (moved[C_OTHER] && !cli->ipc) {
        cli->dial_fail = BG_TP_TLS_REFUSED;
        snprintf(cli->dial_msg, sizeof cli->dial_msg,
                 "TLS handshake refused: certificate not accepted (the peer closed the "
                 "connection during the handshake: ours refused?), or the connection failed");
    } else if (moved[C_REFUSED]) {
        cli->dial_fail = BG_TP_UNREACHABLE;
        snprintf(cli->dial_msg, sizeof cli->dial_msg, "connection refused");
    } else if (moved[C_OTHER] || moved[C_DISCONNECT] || moved[C_TIMEOUT]) {
        cli->dial_fail = BG_TP_UNREACHABLE;
        snprintf(cli->dial_msg, sizeof cli->dial_msg,
                 "connection failed or reset while connecting");
    } else if (moved[C_PROTO]) {
        cli->dial_fail = BG_TP_FAILED;
        snprintf(cli->dial_msg, sizeof cli->dial_msg,
                 "protocol error: the peer is not an nng REP socket");
    }
    return true;
}

static void
pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    bg_tp_client *cli = arg;
    uint32_t id = (uint32_t)nng_pipe_id(p);
    pthread_mutex_lock(&cli->lock);
    if (ev == NNG_PIPE_EV_ADD_POST) {
        if (cli->npipes < MAX_PIPES) {
            cli->pipe_since[cli->npipes] = tp_now_ms();
            cli->pipes[cli->npipes++] = id;
        }
        cli->st.connects++;
        cli->progress_at = tp_now_ms();
        cli->suspect = false;
        cli->dial_fail = BG_TP_OK;
        cli->dial_msg[0] = '\0';
    } else if (ev == NNG_PIPE_EV_REM_POST) {
        for (unsigned i = 0; i < cli->npipes; i++) {
            if (cli->pipes[i] == id) {
                int64_t now = tp_now_ms();
                bool flap = now - cli->pipe_since[i] < FLAP_MS;
                cli->npipes--;
                cli->pipes[i] = cli->pipes[cli->npipes];
                cli->pipe_since[i] = cli->pipe_since[cli->npipes];
                cli->progress_at = now;
                cli->st.disconnects++;
                cli->st.flaps += flap;
                cli->flaps = flap ? cli->flaps + 1 : 0;
                int want = cli->reconnect_min_ms;
                for (unsigned k = 0; k < cli->flaps && want < cli->reconnect_max_ms; k++)
                    want *= 2;
                if (want > cli->reconnect_max_ms)
                    want = cli->reconnect_max_ms;
                if (want != cli->redial_ms) {
                    cli->redial_ms = want;
                    cli->redial_changed = true;
                }
                break;
            }
        }
        pthread_cond_signal(&cli->wd_cond);
    }
    pthread_mutex_unlock(&cli->lock);
}

/* Closes the current dialer (and so its connection) and starts a new one
 * with cfg (which the client then owns) or, if NULL, the current config. */
static int
replace_dialer(bg_tp_client *cli, nng_tls_config *cfg, bg_err *err)
{
    pthread_mutex_lock(&cli->dial_lock);
    if (cli->have_dialer) {
        nng_dialer_close(cli->dialer);
        cli->have_dialer = false;
        pthread_mutex_lock(&cli->lock);
        cli->dialer_id = 0;
        pthread_mutex_unlock(&cli->lock);
    }
    if (cfg != NULL) {
        if (cli->tls != NULL)
            nng_tls_config_free(cli->tls); /* connections hold their own reference */
        cli->tls = cfg;
    }
    nng_dialer d;
    int rv = nng_dialer_create(&d, cli->sock, cli->url);
    if (rv != 0) {
        pthread_mutex_unlock(&cli->dial_lock);
        return tp_nng_err(err, rv == NNG_EADDRINVAL ? BG_EINVAL : BG_EIO, rv, cli->url);
    }
    pthread_mutex_lock(&cli->lock);
    int redial = cli->redial_ms;
    cli->redial_changed = false;
    pthread_mutex_unlock(&cli->lock);
    if ((rv = nng_dialer_set_size(d, NNG_OPT_RECVMAXSZ, cli->recv_max + TP_SP_HEADER_MAX)) != 0 ||
        (rv = nng_dialer_set_ms(d, NNG_OPT_RECONNMINT, redial)) != 0 ||
        (rv = nng_dialer_set_ms(d, NNG_OPT_RECONNMAXT, cli->reconnect_max_ms)) != 0 ||
        (!cli->ipc && (rv = nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, cli->tls)) != 0) ||
        (!cli->ipc && (rv = nng_dialer_set_bool(d, NNG_OPT_TCP_KEEPALIVE, true)) != 0)) {
        nng_dialer_close(d);
        pthread_mutex_unlock(&cli->dial_lock);
        return tp_nng_err(err, BG_EIO, rv, "dialer options");
    }
    pthread_mutex_lock(&cli->lock);
    cli->dialer_id = (uint32_t)nng_dialer_id(d);
    memset(cli->counts, 0, sizeof cli->counts);
    cli->progress_at = tp_now_ms();
    cli->dial_fail = BG_TP_OK;
    cli->dial_msg[0] = '\0';
    pthread_mutex_unlock(&cli->lock);
    /* Non-blocking: returns at once, dials and redials in the background. */
    if ((rv = nng_dialer_start(d, NNG_FLAG_NONBLOCK)) != 0) {
        nng_dialer_close(d);
        pthread_mutex_lock(&cli->lock);
        cli->dialer_id = 0;
        pthread_mutex_unlock(&cli->lock);
        pthread_mutex_unlock(&cli->dial_lock);
        return tp_nng_err(err, BG_EIO, rv, cli->url);
    }
    cli->dialer = d;
    cli->have_dialer = true;
    pthread_mutex_unlock(&cli->dial_lock);
    return BG_OK;
}

static int64_t
wd_tick(const bg_tp_client *cli)
{
    int64_t t = cli->watchdog_ms / 4;
    return t < 10 ? 10 : t > 250 ? 250 : t;
}

/* The watchdog: replaces a dialer that shows no sign of life while it is
 * needed, and in the end closes the socket, so that a close which hangs in
 * nng hangs here and not in the caller. */
static void *
wd_main(void *arg)
{
    bg_tp_client *cli = arg;
    pthread_mutex_lock(&cli->lock);
    while (!cli->closing) {
        if (cli->redial_changed) {
            /* Damp (or undamp) redials of the live dialer; nng applies a
             * new minimum to its next redial. */
            cli->redial_changed = false;
            int redial = cli->redial_ms;
            pthread_mutex_unlock(&cli->lock);
            pthread_mutex_lock(&cli->dial_lock);
            if (cli->have_dialer)
                nng_dialer_set_ms(cli->dialer, NNG_OPT_RECONNMINT, redial);
            pthread_mutex_unlock(&cli->dial_lock);
            pthread_mutex_lock(&cli->lock);
            continue;
        }
        int64_t now = tp_now_ms();
        bool needed = cli->npipes == 0 && (cli->waiting > 0 || cli->suspect);
        if (!needed) {
            /* Woken by calls that wait unconnected, lost connections, close. */
            tp_cond_wait_until(&cli->wd_cond, &cli->lock, now + 1000);
            continue;
        }
        if (now - cli->progress_at < cli->watchdog_ms) {
            tp_cond_wait_until(&cli->wd_cond, &cli->lock, now + wd_tick(cli));
            continue;
        }
        /* Quiet for watchdog_ms (or no dialer at all, the last replacement
         * having failed a watchdog period ago): look at the counters. */
        bool restart = cli->dialer_id == 0;
        if (!restart) {
            uint32_t id = cli->dialer_id;
            pthread_mutex_unlock(&cli->lock);
            uint64_t c[NCOUNT];
            pthread_mutex_lock(&cli->dial_lock);
            bool ok = cli->have_dialer && dialer_counts(cli->dialer, c);
            pthread_mutex_unlock(&cli->dial_lock);
            pthread_mutex_lock(&cli->lock);
            if (cli->closing)
                break;
            if (id != cli->dialer_id || cli->npipes > 0)
                continue;
            restart = !ok || !note_counts_locked(cli, c);
        }
        if (!restart)
            continue;
        /* Stuck: a TCP connect or TLS handshake that will never finish (a
         * peer that accepted and stays silent), which only closing ends. */
        pthread_mutex_unlock(&cli->lock);
        int rv = replace_dialer(cli, NULL, NULL);
        pthread_mutex_lock(&cli->lock);
        cli->st.watchdog_restarts++;
        if (rv == BG_OK)
            cli->suspect = false;
        else
            cli->progress_at = tp_now_ms(); /* try again a watchdog period later */
    }
    pthread_mutex_unlock(&cli->lock);

    /* closing: the calls are gone (close waited for them) */
    nng_close(cli->sock);
    pthread_mutex_lock(&cli->lock);
    cli->wd_done = true;
    bool orphan = cli->orphan;
    pthread_cond_broadcast(&cli->done_cond);
    pthread_mutex_unlock(&cli->lock);
    if (orphan)
        client_free(cli);
    return NULL;
}

static int
check_opts(const bg_tp_client_opts *o, tp_scheme *scheme, bg_err *err)
{
    if (o == NULL)
        return bg_err_set(err, BG_EINVAL, "client: no options");
    *scheme = tp_url_scheme(o->url);
    if (*scheme == TP_SCHEME_BAD)
        return bg_err_set(err, BG_EINVAL,
                          "peer URL must be tls+tcp://host:port or ipc:///path (at most %d "
                          "bytes), not '%s'",
                          BG_TP_URL_MAX, o->url != NULL ? o->url : "(null)");
    if (*scheme == TP_SCHEME_TLS &&
        (o->tls == NULL || o->server_name == NULL || o->server_name[0] == '\0'))
        return bg_err_set(err, BG_EINVAL,
                          "%s: tls+tcp needs TLS material and the peer's city code as server "
                          "name (without it any federation certificate would pass as this peer)",
                          o->url);
    if (*scheme == TP_SCHEME_IPC && o->tls != NULL)
        return bg_err_set(err, BG_EINVAL, "%s: ipc takes no TLS material", o->url);
    if (*scheme == TP_SCHEME_TLS && strlen(o->server_name) > 255)
        return bg_err_set(err, BG_EINVAL, "server name longer than 255 bytes");
    if (o->recv_max == 0 || o->recv_max > BG_TP_MSG_MAX || o->send_max == 0 ||
        o->send_max > BG_TP_MSG_MAX)
        return bg_err_set(err, BG_EINVAL, "recv_max and send_max must be 1..%zu bytes",
                          BG_TP_MSG_MAX);
    if (o->reconnect_min_ms < 0 || o->reconnect_max_ms < 0 || o->watchdog_ms < 0 ||
        o->connect_ms < 0 || o->reconnect_min_ms > BG_TP_TIMEOUT_MAX_MS ||
        o->reconnect_max_ms > BG_TP_TIMEOUT_MAX_MS || o->watchdog_ms > BG_TP_TIMEOUT_MAX_MS ||
        o->connect_ms > BG_TP_TIMEOUT_MAX_MS)
        return bg_err_set(err, BG_EINVAL, "client times must be 0..%d ms", BG_TP_TIMEOUT_MAX_MS);
    return BG_OK;
}

int
bg_tp_client_open(bg_tp_client **out, const bg_tp_client_opts *opts, bg_err *err)
{
    tp_scheme scheme = TP_SCHEME_BAD;
    int rv;
    if (out == NULL)
        return bg_err_set(err, BG_EINVAL, "client: nowhere to put it");
    *out = NULL;
    if ((rv = check_opts(opts, &scheme, err)) != BG_OK)
        return rv;
    bg_tp_client *cli = calloc(1, sizeof *cli);
    if (cli == NULL)
        return bg_err_set(err, BG_ENOMEM, "client: out of memory");
    pthread_mutex_init(&cli->lock, NULL);
    pthread_mutex_init(&cli->dial_lock, NULL);
    tp_cond_init(&cli->wd_cond);
    tp_cond_init(&cli->done_cond);
    snprintf(cli->url, sizeof cli->url, "%s", opts->url);
    cli->ipc = scheme == TP_SCHEME_IPC;
    cli->recv_max = opts->recv_max;
    cli->send_max = opts->send_max;
    cli->reconnect_min_ms = opts->reconnect_min_ms ? opts->reconnect_min_ms : DEF_RECONNECT_MIN_MS;
    cli->reconnect_max_ms = opts->reconnect_max_ms ? opts->reconnect_max_ms : DEF_RECONNECT_MAX_MS;
    if (cli->reconnect_max_ms < cli->reconnect_min_ms)
        cli->reconnect_max_ms = cli->reconnect_min_ms;
    cli->watchdog_ms = opts->watchdog_ms ? opts->watchdog_ms : DEF_WATCHDOG_MS;
    cli->connect_ms = opts->connect_ms;
    cli->redial_ms = cli->reconnect_min_ms;

    if (!cli->ipc)
        snprintf(cli->server_name, sizeof cli->server_name, "%s", opts->server_name);
    if (!cli->ipc && (rv = tp_tls_config(&cli->tls, NNG_TLS_MODE_CLIENT, opts->tls,
                                         cli->server_name, false, err)) != BG_OK) {
        client_free(cli);
        return rv;
    }
    if ((rv = nng_req0_open(&cli->sock)) != 0) {
        client_free(cli);
        return tp_nng_err(err, BG_EIO, rv, "REQ socket");
    }
    /* No automatic resend (see transport.h); a bounded receive size. */
    if ((rv = nng_socket_set_ms(cli->sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE)) != 0 ||
        (rv = nng_socket_set_size(cli->sock, NNG_OPT_RECVMAXSZ,
                                  cli->recv_max + TP_SP_HEADER_MAX)) != 0 ||
        (rv = nng_pipe_notify(cli->sock, NNG_PIPE_EV_ADD_POST, pipe_cb, cli)) != 0 ||
        (rv = nng_pipe_notify(cli->sock, NNG_PIPE_EV_REM_POST, pipe_cb, cli)) != 0) {
        nng_close(cli->sock);
        client_free(cli);
        return tp_nng_err(err, BG_EIO, rv, "REQ socket options");
    }
    if ((rv = replace_dialer(cli, NULL, err)) != BG_OK) {
        nng_close(cli->sock);
        client_free(cli);
        return rv;
    }
    if ((rv = tp_thread_create(&cli->wd, wd_main, cli)) != 0) {
        nng_close(cli->sock);
        client_free(cli);
        return bg_err_set(err, BG_EIO, "watchdog thread: %s", strerror(rv));
    }
    cli->wd_started = true;
    *out = cli;
    return BG_OK;
}

static int fail_with(bg_tp_client *cli, bg_tp_fail kind, bg_tp_fail *fail, bg_err *err, int code,
                     const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* Records a failed call: its kind, the stats, the message. */
static int
fail_with(bg_tp_client *cli, bg_tp_fail kind, bg_tp_fail *fail, bg_err *err, int code,
          const char *fmt, ...)
{
    if (fail != NULL)
        *fail = kind;
    if (cli != NULL) {
        pthread_mutex_lock(&cli->lock);
        switch (kind) {
        case BG_TP_TIMEOUT:
            cli->st.timeouts++;
            break;
        case BG_TP_UNREACHABLE:
            cli->st.unreachable++;
            break;
        case BG_TP_TLS_REFUSED:
            cli->st.tls_refused++;
            break;
        case BG_TP_RESET:
            cli->st.resets++;
            break;
        case BG_TP_TOO_LARGE:
            cli->st.too_large++;
            break;
        case BG_TP_CLOSED:
            cli->st.closed++;
            break;
        default:
            cli->st.other++;
            break;
        }
        pthread_mutex_unlock(&cli->lock);
    }
    if (err != NULL) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* Starts (send or receive) on a registered call unless the client is
 * closing; a close that slips in between is caught by `started`. */
static bool
call_start(bg_tp_client *cli, tp_call *c, nng_ctx ctx, bool send)
{
    pthread_mutex_lock(&cli->lock);
    bool closing = cli->closing || cli->aborted;
    pthread_mutex_unlock(&cli->lock);
    if (closing)
        return false;
    if (send)
        nng_ctx_send(ctx, c->aio);
    else
        nng_ctx_recv(ctx, c->aio);
    pthread_mutex_lock(&cli->lock);
    c->started = true;
    closing = cli->closing || cli->aborted; /* close or abort ran before `started`: skipped us */
    pthread_mutex_unlock(&cli->lock);
    if (closing)
        nng_aio_cancel(c->aio);
    nng_aio_wait(c->aio);
    pthread_mutex_lock(&cli->lock);
    c->started = false;
    pthread_mutex_unlock(&cli->lock);
    return true;
}

/* The request in a message, an aio for the call and a context of its own
 * (each call has its own REQ state, so calls run concurrently). */
static int
call_prepare(bg_tp_client *cli, const void *req, size_t len, nng_msg **msgp, nng_ctx *ctx,
             tp_call *c, bg_tp_fail *fail, bg_err *err)
{
    nng_msg *msg = NULL;
    int rv;
    if ((rv = nng_msg_alloc(&msg, len)) != 0 || (rv = nng_aio_alloc(&c->aio, NULL, NULL)) != 0) {
        if (msg != NULL)
            nng_msg_free(msg);
        return fail_with(cli, BG_TP_NOMEM, fail, err, BG_ENOMEM, "call: out of memory");
    }
    if (len > 0)
        memcpy(nng_msg_body(msg), req, len);
    if ((rv = nng_ctx_open(ctx, cli->sock)) != 0) {
        nng_msg_free(msg);
        nng_aio_free(c->aio);
        if (rv == NNG_ECLOSED)
            return fail_with(cli, BG_TP_CLOSED, fail, err, BG_EABORTED, "%s: client closed",
                             cli->url);
        return fail_with(cli, BG_TP_FAILED, fail, err, BG_EIO, "%s: context: %s", cli->url,
                         nng_strerror(rv));
    }
    nng_ctx_set_ms(*ctx, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
    *msgp = msg;
    return BG_OK;
}

/* Links the call in, so that close can cancel it and waits for it; false
 * (and not linked) if the client is closing. */
static bool
call_register(bg_tp_client *cli, tp_call *c)
{
    pthread_mutex_lock(&cli->lock);
    bool closing = cli->closing;
    if (!closing) {
        c->next = cli->calls;
        if (cli->calls != NULL)
            cli->calls->prev = c;
        cli->calls = c;
        cli->ncalls++;
        cli->waiting++;
        if (cli->npipes == 0)
            pthread_cond_signal(&cli->wd_cond);
    }
    pthread_mutex_unlock(&cli->lock);
    return !closing;
}

static void
call_unregister(bg_tp_client *cli, tp_call *c)
{
    pthread_mutex_lock(&cli->lock);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        cli->calls = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    if (--cli->ncalls == 0)
        pthread_cond_broadcast(&cli->done_cond);
    pthread_mutex_unlock(&cli->lock);
}

/* A request that timed out never connected: the dialer's counters say why
 * (nng reports a non-blocking dialer's failures nowhere else). */
static int
fail_unconnected(bg_tp_client *cli, int timeout_ms, bg_tp_fail *fail, bg_err *err)
{
    uint64_t cnt[NCOUNT];
    pthread_mutex_lock(&cli->dial_lock);
    bool ok = cli->have_dialer && dialer_counts(cli->dialer, cnt);
    uint32_t id = cli->have_dialer ? (uint32_t)nng_dialer_id(cli->dialer) : 0;
    pthread_mutex_unlock(&cli->dial_lock);
    pthread_mutex_lock(&cli->lock);
    if (ok && id == cli->dialer_id)
        note_counts_locked(cli, cnt);
    bg_tp_fail why = cli->dial_fail;
    char msgbuf[sizeof cli->dial_msg];
    snprintf(msgbuf, sizeof msgbuf, "%s", cli->dial_msg);
    cli->suspect = true; /* the watchdog looks even if no call waits */
    pthread_cond_signal(&cli->wd_cond);
    pthread_mutex_unlock(&cli->lock);
    if (why == BG_TP_TLS_REFUSED)
        return fail_with(cli, why, fail, err, BG_ECRYPTO, "%s: %s", cli->url, msgbuf);
    if (why == BG_TP_UNREACHABLE || why == BG_TP_FAILED)
        return fail_with(cli, why, fail, err, BG_EIO, "%s: %s", cli->url, msgbuf);
    return fail_with(cli, BG_TP_TIMEOUT, fail, err, BG_EIO,
                     "%s: no connection within %d ms (TCP connect or TLS handshake "
                     "did not complete: peer silent or unreachable)",
                     cli->url, timeout_ms);
}

/* Phase 1: hand the request (msg, which this takes) to a connection. REQ
 * waits here while there is none, so a failure here means "never
 * connected". */
static int
call_send(bg_tp_client *cli, tp_call *c, nng_ctx ctx, nng_msg *msg, int timeout_ms,
          bg_tp_fail *fail, bg_err *err)
{
    nng_aio_set_msg(c->aio, msg);
    nng_aio_set_timeout(c->aio, (nng_duration)timeout_ms);
    int rv = call_start(cli, c, ctx, true) ? nng_aio_result(c->aio) : NNG_ECANCELED;
    pthread_mutex_lock(&cli->lock);
    cli->waiting--;
    bool connected = cli->npipes > 0;
    pthread_mutex_unlock(&cli->lock);
    if (rv == 0)
        return BG_OK;
    nng_msg *m = nng_aio_get_msg(c->aio);
    if (m != NULL)
        nng_msg_free(m); /* a failed send leaves the message with us */
    if (rv == NNG_ECANCELED || rv == NNG_ECLOSED)
        return fail_with(cli, BG_TP_CLOSED, fail, err, BG_EABORTED, "%s: client closed", cli->url);
    if (rv == NNG_ETIMEDOUT && !connected)
        return fail_unconnected(cli, timeout_ms, fail, err);
    if (rv == NNG_ETIMEDOUT)
        return fail_with(cli, BG_TP_TIMEOUT, fail, err, BG_EIO, "%s: request not sent within %d ms",
                         cli->url, timeout_ms);
    return fail_with(cli, BG_TP_FAILED, fail, err, BG_EIO, "%s: send: %s", cli->url,
                     nng_strerror(rv));
}

/* The answer received in m, copied out for the caller. */
static int
call_answer(bg_tp_client *cli, nng_msg *m, uint8_t **answer, size_t *answer_len, bg_tp_fail *fail,
            bg_err *err)
{
    size_t n = nng_msg_len(m);
    if (n > cli->recv_max) {
        /* Within the SP header allowance, so nng let it through. */
        nng_msg_free(m);
        return fail_with(cli, BG_TP_TOO_LARGE, fail, err, BG_ELIMIT,
                         "%s: answer of %zu bytes exceeds our limit of %zu", cli->url, n,
                         cli->recv_max);
    }
    uint8_t *buf = malloc(n > 0 ? n : 1);
    if (buf == NULL) {
        nng_msg_free(m);
        return fail_with(cli, BG_TP_NOMEM, fail, err, BG_ENOMEM, "call: out of memory");
    }
    memcpy(buf, nng_msg_body(m), n);
    nng_msg_free(m);
    *answer = buf;
    *answer_len = n;
    pthread_mutex_lock(&cli->lock);
    cli->st.ok++;
    pthread_mutex_unlock(&cli->lock);
    bg_err_clear(err);
    return BG_OK;
}

/* Phase 2: the answer, by the deadline of the whole call. */
static int
call_receive(bg_tp_client *cli, tp_call *c, nng_ctx ctx, int64_t deadline, int timeout_ms,
             uint8_t **answer, size_t *answer_len, bg_tp_fail *fail, bg_err *err)
{
    int64_t left = deadline - tp_now_ms();
    nng_aio_set_timeout(c->aio, (nng_duration)(left > 0 ? left : 1));
    int rv = call_start(cli, c, ctx, false) ? nng_aio_result(c->aio) : NNG_ECANCELED;
    if (rv == 0)
        return call_answer(cli, nng_aio_get_msg(c->aio), answer, answer_len, fail, err);
    if (rv == NNG_ETIMEDOUT)
        return fail_with(cli, BG_TP_TIMEOUT, fail, err, BG_EIO,
                         "%s: no answer within %d ms (the request was sent)", cli->url, timeout_ms);
    if (rv == NNG_ECONNRESET || rv == NNG_ESTATE || rv == NNG_ECONNSHUT)
        /* With resending off, REQ fails the receive when the connection that
         * carried the request goes away. */
        return fail_with(cli, BG_TP_RESET, fail, err, BG_EIO,
                         "%s: connection lost with the request outstanding (peer restarted, "
                         "reloaded, or the answer exceeded our %zu-byte limit); it may or may "
                         "not have been processed",
                         cli->url, cli->recv_max);
    if (rv == NNG_ECANCELED || rv == NNG_ECLOSED)
        return fail_with(cli, BG_TP_CLOSED, fail, err, BG_EABORTED, "%s: client closed", cli->url);
    return fail_with(cli, BG_TP_FAILED, fail, err, BG_EIO, "%s: receive: %s", cli->url,
                     nng_strerror(rv));
}

int
bg_tp_call(bg_tp_client *cli, const void *req, size_t len, uint8_t **answer, size_t *answer_len,
           int timeout_ms, bg_tp_fail *fail, bg_err *err)
{
    if (fail != NULL)
        *fail = BG_TP_OK;
    if (answer != NULL)
        *answer = NULL;
    if (answer_len != NULL)
        *answer_len = 0;
    if (cli == NULL || answer == NULL || answer_len == NULL || (req == NULL && len > 0) ||
        timeout_ms <= 0 || timeout_ms > BG_TP_TIMEOUT_MAX_MS)
        return fail_with(cli, BG_TP_INVALID, fail, err, BG_EINVAL,
                         "call: client, answer pointers and a timeout of 1..%d ms are required",
                         BG_TP_TIMEOUT_MAX_MS);
    pthread_mutex_lock(&cli->lock);
    cli->st.calls++;
    bool aborted = cli->aborted;
    pthread_mutex_unlock(&cli->lock);
    if (aborted)
        return fail_with(cli, BG_TP_CLOSED, fail, err, BG_EABORTED, "%s: calls aborted", cli->url);
    /* Before anything goes out: a receiver drops an oversize message with
     * the whole connection, and the asker would only see a reset. */
    if (len > cli->send_max)
        return fail_with(cli, BG_TP_TOO_LARGE, fail, err, BG_ELIMIT,
                         "request of %zu bytes exceeds the %zu the peer %s accepts: not sent", len,
                         cli->send_max, cli->url);

    int64_t deadline = tp_now_ms() + timeout_ms;
    /* Handing the request to a connection waits for one (REQ); connect_ms bounds that wait
     * alone, so a peer that is gone fails fast while a slow answer keeps the whole timeout. */
    int phase1_ms =
        cli->connect_ms > 0 && cli->connect_ms < timeout_ms ? cli->connect_ms : timeout_ms;
    nng_msg *msg = NULL;
    nng_ctx ctx;
    tp_call c = {0};
    int code = call_prepare(cli, req, len, &msg, &ctx, &c, fail, err);
    if (code != BG_OK)
        return code;
    bool registered = call_register(cli, &c);
    if (!registered) {
        nng_msg_free(msg);
        code = fail_with(cli, BG_TP_CLOSED, fail, err, BG_EABORTED, "%s: client closed", cli->url);
    } else if ((code = call_send(cli, &c, ctx, msg, phase1_ms, fail, err)) == BG_OK) {
        code = call_receive(cli, &c, ctx, deadline, timeout_ms, answer, answer_len, fail, err);
    }
    nng_ctx_close(ctx);
    nng_aio_free(c.aio);
    if (registered)
        call_unregister(cli, &c);
    return code;
}

void
bg_tp_answer_free(uint8_t *answer)
{
    free(answer);
}

int
bg_tp_client_reload_tls(bg_tp_client *cli, const bg_tp_tls *tls, bg_err *err)
{
    if (cli == NULL)
        return bg_err_set(err, BG_EINVAL, "reload: no client");
    if (cli->ipc)
        return bg_err_set(err, BG_EINVAL, "%s: ipc has no TLS to reload", cli->url);
    /* The server name stays: it is the peer's identity, not material. */
    nng_tls_config *cfg = NULL;
    int rv = tp_tls_config(&cfg, NNG_TLS_MODE_CLIENT, tls, cli->server_name, false, err);
    if (rv != BG_OK)
        return rv;
    return replace_dialer(cli, cfg, err);
}

void
bg_tp_client_get_stats(bg_tp_client *cli, bg_tp_client_stats *out)
{
    memset(out, 0, sizeof *out);
    if (cli == NULL)
        return;
    pthread_mutex_lock(&cli->lock);
    *out = cli->st;
    out->connected = cli->npipes > 0;
    pthread_mutex_unlock(&cli->lock);
}

void
bg_tp_client_abort(bg_tp_client *cli)
{
    if (cli == NULL)
        return;
    pthread_mutex_lock(&cli->lock);
    cli->aborted = true;
    for (tp_call *c = cli->calls; c != NULL; c = c->next)
        if (c->started)
            nng_aio_cancel(c->aio); /* the call returns BG_TP_CLOSED promptly */
    pthread_mutex_unlock(&cli->lock);
}

void
bg_tp_client_close(bg_tp_client *cli)
{
    if (cli == NULL)
        return;
    pthread_mutex_lock(&cli->lock);
    cli->closing = true;
    for (tp_call *c = cli->calls; c != NULL; c = c->next)
        if (c->started)
            nng_aio_cancel(c->aio); /* the call returns BG_TP_CLOSED promptly */
    while (cli->ncalls > 0)
        pthread_cond_wait(&cli->done_cond, &cli->lock);
    pthread_cond_broadcast(&cli->wd_cond);
    int64_t deadline = tp_now_ms() + CLOSE_WAIT_MS;
    while (!cli->wd_done && tp_cond_wait_until(&cli->done_cond, &cli->lock, deadline) == 0)
        ;
    bool done = cli->wd_done;
    if (!done)
        cli->orphan = true; /* the watchdog frees the client when nng lets go */
    pthread_mutex_unlock(&cli->lock);
    if (done) {
        pthread_join(cli->wd, NULL);
        client_free(cli);
    } else {
        pthread_detach(cli->wd);
    }
}
