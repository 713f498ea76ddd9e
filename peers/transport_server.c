/*
 * transport_server.c - the REP side: nng contexts receive, the project's own
 * threads handle.
 *
 * Each of the `contexts` slots owns one nng_ctx and one nng_aio and cycles
 *   IDLE (receive posted) -> QUEUED -> HANDLING -> SENDING -> IDLE
 * or leaves HANDLING for IDLE by a drop or by its deadline. nng callbacks
 * only move messages and states; handlers run on `threads` worker threads fed
 * by a ring of at most `contexts` entries (a slot is queued at most once), so
 * the queue cannot overflow and more requests than contexts wait inside nng,
 * which stops reading from those connections (TCP back-pressure).
 *
 * While paused (reload, stop) a slot whose work ends goes to PARKED instead
 * of receiving again. A timer thread expires requests past their deadline.
 *
 * Lifetime: the server state is reference counted (the owner, every live
 * request, every worker thread, the closer thread), because a handler stuck
 * past stop may still call bg_tp_reply later, and nng_close may not return
 * in time; whoever drops the last reference frees it. An expired request
 * only frees its message, so replying to it stays safe after stop.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <linux/tcp.h> /* struct tcp_info with tcpi_bytes_received (glibc's has not) */

#include "peers/transport_int.h"

#include <nng/protocol/reqrep0/rep.h>
#include <nng/supplemental/util/platform.h>

#define DEF_CONTEXTS 8
#define DEF_THREADS 4
#define DEF_REQUEST_TIMEOUT_MS 30000
#define DEF_DRAIN_MS 5000
#define DEF_MAX_CONNS 256
#define DEF_IPC_MODE 0660
#define MAX_CONTEXTS 1024
#define MAX_THREADS 256
#define MAX_CONNS 65536
/* A reply is handed to one connection's send queue; if that stalls this
 * long (peer not reading) the reply is given up. */
#define SEND_TIMEOUT_MS 10000
/* How long reload retries binding the port the old listener released. */
#define REBIND_MS 1000
/* After a drain gave up, how long stop waits for idle workers to exit. */
#define WORKER_EXIT_MS 200
/* How long stop waits for nng_close (see closer_main). */
#define CLOSE_WAIT_MS 5000
/* The guard (unfinished handshakes, descriptors): how often it looks. */
#define GUARD_PERIOD_MS 100
/* ipc: how often the guard looks whether nng still accepts (ipc_watch), and how many
 * stopped listeners it keeps for the connections they hold. */
#define IPC_WATCH_MS 250
#define IPC_RETIRED 8
#define IPC_FAIL_LOG_MS 10000
/* tls: how long nng may leave bytes unread on a connection it has not handed over
 * (or a cut one open) before the guard takes it that nng stopped accepting
 * (tls_watch), and the least time between two new listeners. */
#define STUCK_MS 2000
#define REVIVE_GAP_MS 5000
#define DEF_HANDSHAKE_MS 10000
#define DEF_RECV_DEADLINE_MS 30000
#define DEF_SOURCE_MAX 16
#define DEF_FD_RESERVE 128
#define DEF_MEM_BUDGET ((size_t)256 * 1024 * 1024)
#define DEF_LOG_INTERVAL_MS 10000
#define MAX_SOURCE 65536
/* The backlog nng 1.5.2 gives its TCP listeners, restored after pressure. */
#define NNG_BACKLOG 128
/* How long a doomed connection (bg_tp_request_tag) gets to take its last
 * answers before the guard closes it. */
#define DOOM_GRACE_MS 500
/* Most connections the guard takes out of the backlog in one look. */
#define DRAIN_MAX 256

typedef enum { SLOT_IDLE, SLOT_QUEUED, SLOT_HANDLING, SLOT_SENDING, SLOT_PARKED } slot_state;

typedef struct tp_worker {
    bg_tp_server *srv;
    pthread_t thread;
    bool done; /* left its loop: joinable without waiting on a handler */
} tp_worker;

/* An admitted connection and its peer address (to tell it from the
 * unfinished handshakes among the process's sockets). */
typedef struct tp_pipe {
    uint32_t id;
    nng_sockaddr addr;
    unsigned busy; /* its requests in flight (QUEUED, HANDLING, SENDING) */
    char city[16]; /* as the layer above told (bg_tp_request_tag); "" untagged */
    bool doomed;   /* close it once its current requests are over */
    int64_t doomed_at;
    /* The receive deadline (guard_partial): messages nng handed over, those the
     * guard knew of at its last look, the bytes the kernel had received then, and
     * since when bytes came without a message being whole (0: none). */
    uint64_t msgs, msgs_seen, rx_mark;
    int64_t partial_since;
} tp_pipe;

/* A TCP connection on our port not (yet) admitted, as the guard saw it. */
typedef struct tp_pending {
    int fd;
    dev_t dev;
    ino_t ino;
    struct sockaddr_storage peer;
    int64_t first_seen;
    int64_t stuck_since; /* bytes left unread, or left open once cut, since (0: not) */
    bool unread;         /* the kernel holds bytes nng has not read */
    uint64_t rx;         /* bytes the kernel received on it (0: unknown) */
    bool cut;
} tp_pending;

/* Causes the guard logs, once per interval each. */
enum {
    CAUSE_HS,
    CAUSE_SOURCE,
    CAUSE_FD,
    CAUSE_MEM,
    CAUSE_CONNS,
    CAUSE_NOT_MEMBER,
    CAUSE_CITY,
    CAUSE_EVICTED,
    CAUSE_PARTIAL,
    NCAUSES
};

typedef struct tp_slot {
    bg_tp_server *srv;
    nng_ctx ctx;
    nng_aio *aio;
    slot_state state;
    bg_tp_request *req; /* QUEUED, HANDLING */
    uint32_t pipe_id;   /* whose request is in flight here */
} tp_slot;

struct bg_tp_request {
    bg_tp_server *srv;
    tp_slot *slot; /* NULL once the request has expired (deadline, stop) */
    nng_msg *msg;
    int64_t deadline;
};

struct bg_tp_server {
    pthread_mutex_t lock;
    pthread_cond_t work_cond;  /* workers: queue not empty, or exit */
    pthread_cond_t idle_cond;  /* in_flight, nng_busy or workers_alive went down */
    pthread_cond_t timer_cond; /* timer: exit */
    pthread_mutex_t admin;     /* serialises reload and stop */
    unsigned refs;

    /* fixed at start */
    bg_tp_handler handler;
    void *hctx;
    size_t recv_max, reply_max;
    int request_timeout_ms, drain_ms;
    unsigned nslots, nthreads, max_conns, ipc_mode, pipe_max, city_conns;
    bool ipc;
    char url[BG_TP_URL_MAX + 16]; /* as bound: the port filled in */
    char ipc_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    int port;

    nng_socket sock;
    bool sock_open;
    nng_listener listener; /* admin */
    bool have_listener;    /* admin */
    nng_tls_config *tls;   /* admin */

    tp_slot *slots;
    tp_slot **queue;
    unsigned qhead, qlen;
    unsigned in_flight; /* slots QUEUED, HANDLING or SENDING */
    unsigned nng_busy;  /* nng calls on slots under way outside the lock */
    bool paused, closing;
    bool nng_closed; /* the closer thread is done with nng */
    bool workers_exit, timer_exit;

    tp_worker *workers;
    unsigned threads_started, workers_alive;
    tp_slot **due; /* the timer's scratch list */
    pthread_t timer;
    bool timer_started;

    tp_pipe *pipes; /* admitted connections, at most max_conns */
    unsigned npipes;

    /* guard thread: tls, the handshakes (below); ipc, the listener watch (ipc_watch) */
    int handshake_ms, log_interval_ms, recv_deadline_ms;
    unsigned source_max, fd_reserve;
    size_t mem_budget, conn_cost;
    bg_tp_log_fn log;
    void *log_ctx;
    bool fd_tight;     /* lock: reserve not kept by cutting handshakes: refuse pipes */
    char last_tag[16]; /* lock: the last city cut by a tag (for the log) */
    bool guard_exit;   /* lock */
    pthread_t guard;
    bool guard_started;
    tp_pending *pend, *prev; /* guard thread only: this look and the last */
    tp_pending lsock;        /* guard thread only: nng's listening socket (fd -1: unseen) */
    bool backlog_small;      /* guard thread only: its backlog is cut down */
    ino_t backlog_ino;       /* guard thread only: of the socket it was cut on */
    unsigned npend, pend_cap, nprev, prev_cap;
    uint64_t logged[NCAUSES];   /* guard thread only: counts already logged */
    int64_t logged_at[NCAUSES]; /* guard thread only */

    /* ipc watch (guard thread only, listener under admin): see ipc_watch */
    char ipc_bound[sizeof(((struct sockaddr_un *)0)->sun_path)]; /* the name the current
                                                                    listener bound */
    int64_t ipc_full_at;               /* the last look that saw every context busy */
    int64_t ipc_next_ms;               /* when to look next */
    nng_listener retired[IPC_RETIRED]; /* revived listeners nng stopped, kept for their pipes */
    unsigned nretired;
    nng_listener ipc_first; /* the first listener, once stopped: bound to our path itself */
    bool ipc_first_kept;
    uint64_t ipc_gen;           /* revivals tried: names the temporary binds */
    int64_t ipc_fail_logged_ms; /* the last failed revival logged */

    bg_tp_server_stats st;
    int proc_fd;                  /* guard thread only: /proc/self/fd, kept open (guard_scan) */
    int64_t added_ms;             /* lock: when nng last handed a connection over (ADD_PRE) */
    int64_t revived_ms;           /* guard thread only: when tls_watch last listened anew */
    bool tls_lost;                /* guard thread only: a renewal left no listener: try again */
    uint64_t handshake_base;      /* lock: handshake errors counted by closed listeners */
    uint64_t handshake_auth_base; /* lock: of which authentication failures */
    nng_listener stats_listener;  /* lock: the listener whose counters to add (id 0: none) */
};

static void
srv_free(bg_tp_server *srv)
{
    pthread_mutex_destroy(&srv->lock);
    pthread_mutex_destroy(&srv->admin);
    pthread_cond_destroy(&srv->work_cond);
    pthread_cond_destroy(&srv->idle_cond);
    pthread_cond_destroy(&srv->timer_cond);
    free(srv->slots);
    free(srv->queue);
    free(srv->workers);
    free(srv->due);
    free(srv->pipes);
    free(srv->pend);
    free(srv->prev);
    free(srv);
}

/* Drops a reference with srv->lock held; true if it was the last (the
 * caller frees after unlocking). */
static bool
unref_locked(bg_tp_server *srv)
{
    return --srv->refs == 0;
}

/* Frees a request that no slot points to any more. Lock held. */
static bool
req_free_locked(bg_tp_request *req)
{
    bg_tp_server *srv = req->srv;
    if (req->msg != NULL)
        nng_msg_free(req->msg);
    free(req);
    return unref_locked(srv);
}

/* The admitted connection with this id, or NULL. Lock held. */
static tp_pipe *
pipe_find_locked(bg_tp_server *srv, uint32_t id)
{
    for (unsigned i = 0; i < srv->npipes; i++)
        if (srv->pipes[i].id == id)
            return &srv->pipes[i];
    return NULL;
}

/* Closes the connection with this id (0: none). Lock NOT held: nng calls
 * pipe_cb for it. */
static void
pipe_close_id(uint32_t id)
{
    if (id == 0)
        return;
    nng_pipe p = NNG_PIPE_INITIALIZER;
    p.id = id;
    nng_pipe_close(p);
}

/* The slot's request is over (answered, dropped, expired): receive again, or
 * park while paused. Returns true if the caller must post the receive (after
 * unlocking, with slot_post_recv). Lock held. */
static bool
slot_recycle_locked(bg_tp_server *srv, tp_slot *s)
{
    s->req = NULL;
    if (s->pipe_id != 0) {
        tp_pipe *p = pipe_find_locked(srv, s->pipe_id);
        if (p != NULL && p->busy > 0)
            p->busy--;
        s->pipe_id = 0;
    }
    if (srv->paused || srv->closing) {
        s->state = SLOT_PARKED;
        pthread_cond_broadcast(&srv->idle_cond);
        return false;
    }
    s->state = SLOT_IDLE;
    srv->nng_busy++;
    return true;
}

/* Posts a receive decided by slot_recycle_locked. Lock NOT held. */
static void
slot_post_recv(bg_tp_server *srv, tp_slot *s)
{
    nng_aio_set_timeout(s->aio, NNG_DURATION_INFINITE);
    nng_ctx_recv(s->ctx, s->aio);
    pthread_mutex_lock(&srv->lock);
    srv->nng_busy--;
    pthread_cond_broadcast(&srv->idle_cond);
    pthread_mutex_unlock(&srv->lock);
}

/* Takes a QUEUED slot out of the ring. Lock held. */
static void
queue_remove_locked(bg_tp_server *srv, tp_slot *s)
{
    unsigned n = srv->qlen, kept = 0;
    for (unsigned i = 0; i < n; i++) {
        tp_slot *q = srv->queue[(srv->qhead + i) % srv->nslots];
        if (q != s)
            srv->queue[(srv->qhead + kept++) % srv->nslots] = q;
    }
    srv->qlen = kept;
}

/* Ends a QUEUED or HANDLING request without an answer: nng forgets it when
 * the context receives again. A handler still holding it sees req->slot ==
 * NULL and just frees it. Returns true if a receive must be posted. */
static bool
expire_locked(bg_tp_server *srv, tp_slot *s)
{
    bg_tp_request *req = s->req;
    if (s->state == SLOT_QUEUED) {
        queue_remove_locked(srv, s);
        req->slot = NULL;
        req_free_locked(req); /* never the last reference: the owner holds one */
    } else {
        req->slot = NULL;
    }
    srv->in_flight--;
    srv->st.expired++;
    return slot_recycle_locked(srv, s);
}

/* The one nng callback: a receive or a send on this slot finished. */
static void
slot_cb(void *arg)
{
    tp_slot *s = arg;
    bg_tp_server *srv = s->srv;
    int rv = nng_aio_result(s->aio);
    bool post = false;

    uint32_t cut_pipe = 0;
    pthread_mutex_lock(&srv->lock);
    if (s->state == SLOT_SENDING) {
        if (rv == 0) {
            srv->st.replied++;
        } else {
            nng_msg_free(nng_aio_get_msg(s->aio));
            nng_aio_set_msg(s->aio, NULL);
            srv->st.send_failed++;
            /* A peer that does not read its answers: its other replies
             * would hold their contexts for the send timeout too. */
            if (rv == NNG_ETIMEDOUT && s->pipe_id != 0) {
                cut_pipe = s->pipe_id;
                srv->st.slow_readers++;
            }
        }
        srv->in_flight--;
        post = slot_recycle_locked(srv, s);
    } else if (s->state == SLOT_IDLE) {
        if (rv == 0) {
            bg_tp_request *req = calloc(1, sizeof *req);
            nng_msg *msg = nng_aio_get_msg(s->aio);
            nng_aio_set_msg(s->aio, NULL);
            bool too_big = nng_msg_len(msg) > srv->recv_max;
            uint32_t pid = (uint32_t)nng_pipe_id(nng_msg_get_pipe(msg));
            tp_pipe *pp = pipe_find_locked(srv, pid);
            if (pp != NULL)
                pp->msgs++;
            bool hog = pp != NULL && pp->busy >= srv->pipe_max;
            if (req == NULL || srv->closing || too_big || hog) {
                /* Dropped: the asker times out. Oversize bodies only get
                 * here within the SP header allowance; bigger messages
                 * never arrive (nng drops the connection). A connection
                 * with pipe_max requests in flight gets no more contexts:
                 * one peer's pipelined requests must not hold them all. */
                srv->st.oversize += too_big;
                srv->st.pipe_busy += hog && !too_big;
                nng_msg_free(msg);
                free(req);
                post = slot_recycle_locked(srv, s);
            } else {
                req->srv = srv;
                req->slot = s;
                req->msg = msg;
                if (pp != NULL) {
                    pp->busy++;
                    s->pipe_id = pid;
                }
                req->deadline = tp_now_ms() + srv->request_timeout_ms;
                srv->refs++;
                s->req = req;
                s->state = SLOT_QUEUED;
                srv->in_flight++;
                srv->st.received++;
                srv->queue[(srv->qhead + srv->qlen++) % srv->nslots] = s;
                pthread_cond_signal(&srv->work_cond);
            }
        } else if (rv == NNG_ECANCELED) {
            /* A pause cancelled it. Its callback may come after the pause ended (a
             * reload or a new listener is quick, nng's threads may be slow): then
             * it receives again; parking it would lose the context for good. */
            post = slot_recycle_locked(srv, s);
        } else if (rv == NNG_ECLOSED) {
            s->state = SLOT_PARKED;
            pthread_cond_broadcast(&srv->idle_cond);
        } else {
            /* Nothing else is expected from a REP receive without timeout;
             * receive again rather than lose the slot. */
            post = slot_recycle_locked(srv, s);
        }
    }
    pthread_mutex_unlock(&srv->lock);
    pipe_close_id(cut_pipe);
    if (post)
        slot_post_recv(srv, s);
}

static void *
worker_main(void *arg)
{
    tp_worker *w = arg;
    bg_tp_server *srv = w->srv;
    pthread_mutex_lock(&srv->lock);
    for (;;) {
        while (srv->qlen == 0 && !srv->workers_exit)
            pthread_cond_wait(&srv->work_cond, &srv->lock);
        if (srv->qlen == 0)
            break;
        tp_slot *s = srv->queue[srv->qhead];
        srv->qhead = (srv->qhead + 1) % srv->nslots;
        srv->qlen--;
        bg_tp_request *req = s->req;
        s->state = SLOT_HANDLING;
        pthread_mutex_unlock(&srv->lock);
        srv->handler(srv->hctx, req);
        pthread_mutex_lock(&srv->lock);
    }
    w->done = true;
    srv->workers_alive--;
    pthread_cond_broadcast(&srv->idle_cond);
    bool last = unref_locked(srv);
    pthread_mutex_unlock(&srv->lock);
    if (last)
        srv_free(srv);
    return NULL;
}

static void *
timer_main(void *arg)
{
    bg_tp_server *srv = arg;
    pthread_mutex_lock(&srv->lock);
    while (!srv->timer_exit) {
        int64_t now = tp_now_ms();
        /* Every deadline is receipt + the same timeout, so none due earlier
         * than now + timeout can appear before the next wake-up. */
        int64_t next = now + srv->request_timeout_ms;
        unsigned ndue = 0;
        for (unsigned i = 0; i < srv->nslots; i++) {
            tp_slot *s = &srv->slots[i];
            if (s->state != SLOT_QUEUED && s->state != SLOT_HANDLING)
                continue;
            if (s->req->deadline > now) {
                if (s->req->deadline < next)
                    next = s->req->deadline;
            } else if (expire_locked(srv, s)) {
                srv->due[ndue++] = s;
            }
        }
        if (ndue > 0) {
            pthread_mutex_unlock(&srv->lock);
            for (unsigned i = 0; i < ndue; i++)
                slot_post_recv(srv, srv->due[i]);
            pthread_mutex_lock(&srv->lock);
            continue;
        }
        tp_cond_wait_until(&srv->timer_cond, &srv->lock, next);
    }
    pthread_mutex_unlock(&srv->lock);
    return NULL;
}

/* Sum of a listener's handshake/accept failures in nng's statistics; *auth gets the
 * authentication failures among them (names[0]). */
static uint64_t
listener_errors(nng_listener l, uint64_t *auth)
{
    static const char *names[] = {"auth", "other", "proto", "timeout", "disconnect", "oom"};
    nng_stat *all = NULL;
    uint64_t sum = 0;
    *auth = 0;
    if (nng_stats_get(&all) != 0)
        return 0;
    nng_stat *ls = tp_stat_scope(all, "listener", nng_listener_id(l));
    for (size_t i = 0; ls != NULL && i < sizeof names / sizeof names[0]; i++)
        sum += tp_stat_value(ls, names[i]);
    if (ls != NULL)
        *auth = tp_stat_value(ls, names[0]);
    nng_stats_free(all);
    return sum;
}

/* The connection to give up for a newcomer when full: a doomed one, else
 * the oldest nobody has vouched for (untagged, nothing in flight); NULL if
 * every one belongs to a member. Lock held. */
static tp_pipe *
pipe_evictable_locked(bg_tp_server *srv)
{
    tp_pipe *best = NULL;
    for (unsigned i = 0; i < srv->npipes; i++) {
        tp_pipe *p = &srv->pipes[i];
        if (p->doomed)
            return p;
        /* Lowest id: the oldest (nng numbers pipes in order). */
        if (p->city[0] == '\0' && p->busy == 0 && (best == NULL || p->id < best->id))
            best = p;
    }
    return best;
}

/* Connections: admit up to max_conns and within the memory budget, only
 * TLS-verified ones on TLS (with AUTH_MODE_REQUIRED that is always so:
 * defence in depth), none while the descriptor reserve cannot be kept.
 * REM_POST also fires for pipes refused in ADD_PRE, hence the id list. */
static void
pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    bg_tp_server *srv = arg;
    uint32_t id = (uint32_t)nng_pipe_id(p);
    if (ev == NNG_PIPE_EV_ADD_PRE) {
        bool ok = true;
        uint32_t evict = 0;
        nng_sockaddr addr;
        memset(&addr, 0, sizeof addr);
        if (!srv->ipc) {
            bool verified = false;
            ok = nng_pipe_get_bool(p, NNG_OPT_TLS_VERIFIED, &verified) == 0 && verified;
            if (nng_pipe_get_addr(p, NNG_OPT_REMADDR, &addr) != 0)
                memset(&addr, 0, sizeof addr);
        }
        pthread_mutex_lock(&srv->lock);
        srv->added_ms = tp_now_ms();
        /* Memory: every admitted connection may hold one message of up to
         * recv_max while it arrives, every context one request. */
        bool mem_ok = (srv->npipes + 1 + srv->nslots) <= srv->mem_budget / srv->conn_cost;
        tp_pipe *spare = NULL;
        if (ok && srv->city_conns > 0 && srv->npipes >= srv->max_conns && mem_ok && !srv->fd_tight)
            spare = pipe_evictable_locked(srv);
        if (spare != NULL) {
            /* Full: a connection nobody vouched for makes room, so that
             * strangers' idle connections cannot lock members out. */
            evict = spare->id;
            *spare = (tp_pipe){.id = id, .addr = addr};
            srv->st.conns_total++;
            srv->st.conns_evicted++;
        } else if (ok && srv->npipes < srv->max_conns && mem_ok && !srv->fd_tight) {
            srv->pipes[srv->npipes++] = (tp_pipe){.id = id, .addr = addr};
            srv->st.conns_total++;
        } else {
            if (ok && srv->npipes < srv->max_conns)
                srv->st.mem_refused += !mem_ok;
            if (ok && srv->npipes < srv->max_conns && mem_ok)
                srv->st.fd_reserve_cuts++;
            else if (!ok || srv->npipes >= srv->max_conns)
                srv->st.conns_refused++;
            ok = false;
        }
        pthread_mutex_unlock(&srv->lock);
        if (!ok)
            nng_pipe_close(p);
        pipe_close_id(evict);
    } else if (ev == NNG_PIPE_EV_REM_POST) {
        pthread_mutex_lock(&srv->lock);
        for (unsigned i = 0; i < srv->npipes; i++) {
            if (srv->pipes[i].id == id) {
                srv->pipes[i] = srv->pipes[--srv->npipes];
                srv->st.conns_lost++;
                break;
            }
        }
        pthread_mutex_unlock(&srv->lock);
    }
}

/* --- the guard: handshakes nng does not show, and descriptors --- */

/* Port (host order) and address bytes of a socket address; 0 if not IP. */
static size_t
ss_parts(const struct sockaddr_storage *ss, int *port, const uint8_t **addr)
{
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        *port = ntohs(a->sin_port);
        *addr = (const uint8_t *)&a->sin_addr;
        return 4;
    }
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        *port = ntohs(a->sin6_port);
        *addr = a->sin6_addr.s6_addr;
        return 16;
    }
    return 0;
}

/* Whether nng's address of an admitted pipe is this peer. */
static bool
pipe_is(const nng_sockaddr *na, const struct sockaddr_storage *ss)
{
    int port = 0;
    const uint8_t *a = NULL;
    size_t n = ss_parts(ss, &port, &a);
    if (n == 4 && na->s_family == NNG_AF_INET)
        return ntohs(na->s_in.sa_port) == port && memcmp(&na->s_in.sa_addr, a, 4) == 0;
    if (n == 16 && na->s_family == NNG_AF_INET6)
        return ntohs(na->s_in6.sa_port) == port && memcmp(na->s_in6.sa_addr, a, 16) == 0;
    return false;
}

/* If fd is a connected TCP socket whose local port is ours, fills p; if it
 * is our listening socket, notes it in srv->lsock. */
static bool
guard_probe(bg_tp_server *srv, int fd, tp_pending *p)
{
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode))
        return false;
    struct sockaddr_storage local;
    socklen_t len = sizeof local;
    int port = 0;
    const uint8_t *a = NULL;
    if (getsockname(fd, (struct sockaddr *)&local, &len) != 0 || ss_parts(&local, &port, &a) == 0 ||
        port != srv->port)
        return false;
    len = sizeof p->peer;
    if (getpeername(fd, (struct sockaddr *)&p->peer, &len) != 0) {
        int acc = 0;
        socklen_t al = sizeof acc;
        if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &al) == 0 && acc)
            srv->lsock = (tp_pending){.fd = fd, .dev = st.st_dev, .ino = st.st_ino};
        return false;
    }
    p->fd = fd;
    p->dev = st.st_dev;
    p->ino = st.st_ino;
    p->cut = false;
    int inq = 0;
    p->unread = ioctl(fd, FIONREAD, &inq) == 0 && inq > 0;
    struct tcp_info ti;
    socklen_t tl = sizeof ti;
    memset(&ti, 0, sizeof ti);
    p->rx =
        getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &tl) == 0 &&
                tl >= offsetof(struct tcp_info, tcpi_bytes_received) + sizeof ti.tcpi_bytes_received
            ? ti.tcpi_bytes_received
            : 0;
    return true;
}

/* Room for one more entry at the end of srv->pend; NULL if it cannot grow (that
 * descriptor is left out of this look). */
static tp_pending *
pend_next(bg_tp_server *srv)
{
    if (srv->npend == srv->pend_cap) {
        unsigned cap = srv->pend_cap ? srv->pend_cap * 2 : 64;
        tp_pending *np = realloc(srv->pend, cap * sizeof *np);
        if (np == NULL)
            return NULL;
        srv->pend = np;
        srv->pend_cap = cap;
    }
    return &srv->pend[srv->npend];
}

/* A record of getdents64(2) (the kernel's linux_dirent64). */
typedef struct {
    uint64_t ino;
    int64_t off;
    unsigned short reclen;
    unsigned char type;
    char name[];
} tp_dirent;

/*
 * fn(srv, fd, arg) for every descriptor of the process but the directory's own,
 * read from /proc/self/fd through the descriptor the guard opened at start: when nng
 * has taken every descriptor (a flood accepted faster than the guard looks), opening
 * the directory anew would fail, and the guard could never cut the flood that keeps
 * it blind. False if the directory cannot be read.
 */
static bool
proc_fds(bg_tp_server *srv, void (*fn)(bg_tp_server *, int, void *), void *arg)
{
    if (srv->proc_fd < 0 || lseek(srv->proc_fd, 0, SEEK_SET) != 0)
        return false;
    union {
        char bytes[8192];
        uint64_t align;
    } buf;
    for (;;) {
        long n = syscall(SYS_getdents64, srv->proc_fd, buf.bytes, sizeof buf.bytes);
        if (n <= 0)
            return n == 0;
        for (long off = 0; off < n;) {
            const tp_dirent *e = (const tp_dirent *)(buf.bytes + off);
            if (e->reclen == 0)
                return false;
            off += e->reclen;
            char *end = NULL;
            long fd = strtol(e->name, &end, 10);
            if (e->name[0] >= '0' && e->name[0] <= '9' && *end == '\0' && fd != srv->proc_fd &&
                fd <= INT32_MAX)
                fn(srv, (int)fd, arg);
        }
    }
}

/* One descriptor: into srv->pend if it is a TCP connection on our port (first_seen
 * not set yet), counted in *(unsigned *)nfds either way. */
static void
guard_note(bg_tp_server *srv, int fd, void *nfds)
{
    (*(unsigned *)nfds)++;
    tp_pending *p = pend_next(srv);
    if (p != NULL && guard_probe(srv, fd, p))
        srv->npend++;
}

/* Lists the TCP connections on our port in srv->pend and counts every descriptor.
 * False if /proc cannot be read. */
static bool
guard_scan(bg_tp_server *srv, unsigned *nfds)
{
    srv->npend = 0;
    srv->lsock.fd = -1;
    *nfds = 0;
    return proc_fds(srv, guard_note, nfds);
}

static int
by_ino(const void *a, const void *b)
{
    const tp_pending *x = a, *y = b;
    if (x->ino != y->ino)
        return x->ino < y->ino ? -1 : 1;
    return x->dev < y->dev ? -1 : x->dev > y->dev;
}

/* This look becomes the last one (sorted by inode, for bsearch). */
static void
look_keep(bg_tp_server *srv)
{
    qsort(srv->pend, srv->npend, sizeof *srv->pend, by_ino);
    tp_pending *t = srv->prev;
    srv->prev = srv->pend;
    srv->pend = t;
    unsigned tc = srv->prev_cap;
    srv->prev_cap = srv->pend_cap;
    srv->pend_cap = tc;
    srv->nprev = srv->npend;
    srv->npend = 0;
}

/* Source address, then oldest first. */
static int
by_source(const void *a, const void *b)
{
    const tp_pending *x = a, *y = b;
    int px, py;
    const uint8_t *ax = NULL, *ay = NULL;
    size_t nx = ss_parts(&x->peer, &px, &ax), ny = ss_parts(&y->peer, &py, &ay);
    if (nx != ny)
        return nx < ny ? -1 : 1;
    int c = nx > 0 ? memcmp(ax, ay, nx) : 0;
    if (c != 0)
        return c;
    return x->first_seen < y->first_seen ? -1 : x->first_seen > y->first_seen;
}

static int
by_age(const void *a, const void *b)
{
    const tp_pending *x = a, *y = b;
    return x->first_seen < y->first_seen ? -1 : x->first_seen > y->first_seen;
}

static bool
same_source(const tp_pending *x, const tp_pending *y)
{
    int px, py;
    const uint8_t *ax = NULL, *ay = NULL;
    size_t nx = ss_parts(&x->peer, &px, &ax), ny = ss_parts(&y->peer, &py, &ay);
    return nx == ny && nx > 0 && memcmp(ax, ay, nx) == 0;
}

static void
ss_format(const struct sockaddr_storage *ss, char *buf, size_t n)
{
    int port = 0;
    const uint8_t *a = NULL;
    size_t len = ss_parts(ss, &port, &a);
    if (len == 0 || inet_ntop(len == 4 ? AF_INET : AF_INET6, a, buf, (socklen_t)n) == NULL)
        snprintf(buf, n, "?");
}

/* Shuts p's connection down for reading, if its descriptor is still that
 * socket (same device and inode: nng may have closed it and the number been
 * reused since the look). nng sees EOF and closes it itself. Not for
 * writing: nng's next write would fail with EPIPE, which nng 1.5.2 turns
 * into NNG_ECLOSED, and a handshake failing with that stops its listener
 * for good (tls_watch). Returns whether it was newly cut (not already in
 * the last look's cuts). */
static bool
guard_cut(bg_tp_server *srv, tp_pending *p)
{
    if (p->cut)
        return false;
    p->cut = true;
    struct stat st;
    if (fstat(p->fd, &st) == 0 && st.st_dev == p->dev && st.st_ino == p->ino)
        shutdown(p->fd, SHUT_RD);
    tp_pending *was = srv->nprev > 0 ? bsearch(p, srv->prev, srv->nprev, sizeof *p, by_ino) : NULL;
    return was == NULL || !was->cut;
}

/* Drops admitted connections from the look and dates the others (first
 * seen: now, or when the last look saw them). */
/*
 * The receive deadline of an admitted connection p, which the look found as q: nng
 * allocates the length a message announces when its header arrives and keeps it
 * until the message is whole, so a peer trickling one holds that memory for good.
 * A connection is in the middle of a message when the kernel received bytes on it
 * since the last message nng handed over and holds none unread (nng read them:
 * bytes it does not read are back-pressure, not a partial message). Returns whether
 * that has lasted recv_deadline_ms. Lock held.
 */
static bool
guard_partial(bg_tp_server *srv, tp_pipe *p, const tp_pending *q, int64_t now)
{
    if (q->rx == 0)
        return false;
    if (p->rx_mark == 0 || p->msgs != p->msgs_seen) { /* new, or a message came */
        p->rx_mark = q->rx;
        p->msgs_seen = p->msgs;
        p->partial_since = 0;
        return false;
    }
    if (q->rx == p->rx_mark || q->unread)
        return false;
    if (p->partial_since == 0)
        p->partial_since = now;
    return now - p->partial_since >= srv->recv_deadline_ms;
}

/* Most connections the receive deadline closes in one look. */
#define PARTIAL_CUTS_MAX 64

static void
guard_date(bg_tp_server *srv, int64_t now)
{
    unsigned kept = 0, ncut = 0;
    uint32_t cut[PARTIAL_CUTS_MAX];
    pthread_mutex_lock(&srv->lock);
    for (unsigned i = 0; i < srv->npend; i++) {
        tp_pipe *admitted = NULL;
        for (unsigned j = 0; j < srv->npipes && admitted == NULL; j++)
            if (pipe_is(&srv->pipes[j].addr, &srv->pend[i].peer))
                admitted = &srv->pipes[j];
        if (admitted == NULL)
            srv->pend[kept++] = srv->pend[i];
        else if (guard_partial(srv, admitted, &srv->pend[i], now) && ncut < PARTIAL_CUTS_MAX &&
                 admitted->partial_since != INT64_MAX) {
            admitted->partial_since = INT64_MAX; /* cut once */
            cut[ncut++] = admitted->id;
        }
    }
    srv->st.recv_deadline_cuts += ncut;
    pthread_mutex_unlock(&srv->lock);
    for (unsigned i = 0; i < ncut; i++)
        pipe_close_id(cut[i]);
    srv->npend = kept;
    for (unsigned i = 0; i < srv->npend; i++) {
        tp_pending *p = &srv->pend[i];
        tp_pending *was =
            srv->nprev > 0 ? bsearch(p, srv->prev, srv->nprev, sizeof *p, by_ino) : NULL;
        p->first_seen = was != NULL ? was->first_seen : now;
        bool stuck = p->unread || (was != NULL && was->cut);
        p->stuck_since = !stuck ? 0 : was != NULL && was->stuck_since != 0 ? was->stuck_since : now;
    }
}

/* Applies the three bounds to the look; counts new cuts in cuts[]. Returns
 * the descriptors left in use once the cut ones are gone. */
static unsigned
guard_judge(bg_tp_server *srv, int64_t now, unsigned nfds, unsigned limit, uint64_t cuts[NCAUSES],
            char *src, size_t srclen)
{
    for (unsigned i = 0; i < srv->npend; i++)
        if (now - srv->pend[i].first_seen >= srv->handshake_ms)
            cuts[CAUSE_HS] += guard_cut(srv, &srv->pend[i]);
    qsort(srv->pend, srv->npend, sizeof *srv->pend, by_source);
    unsigned run = 0;
    for (unsigned i = 0; i < srv->npend; i++) {
        tp_pending *p = &srv->pend[i];
        if (i == 0 || !same_source(p, &srv->pend[i - 1]))
            run = 0;
        if (p->cut)
            continue;
        if (++run > srv->source_max) {
            cuts[CAUSE_SOURCE] += guard_cut(srv, p);
            ss_format(&p->peer, src, srclen);
        }
    }
    unsigned live = nfds;
    for (unsigned i = 0; i < srv->npend; i++)
        live -= srv->pend[i].cut;
    /* Oldest first: they had the longest to finish. */
    qsort(srv->pend, srv->npend, sizeof *srv->pend, by_age);
    for (unsigned i = 0; i < srv->npend && live > limit; i++) {
        if (!srv->pend[i].cut) {
            cuts[CAUSE_FD] += guard_cut(srv, &srv->pend[i]);
            live--;
        }
    }
    return live;
}

/* One line per cause with news, at most once per interval. */
static void
guard_log(bg_tp_server *srv, int64_t now, const char *src)
{
    if (srv->log == NULL)
        return;
    pthread_mutex_lock(&srv->lock);
    uint64_t cur[NCAUSES] = {
        srv->st.hs_timeouts,        srv->st.source_limited, srv->st.fd_reserve_cuts,
        srv->st.mem_refused,        srv->st.conns_refused,  srv->st.conns_not_member,
        srv->st.conns_city_limited, srv->st.conns_evicted,  srv->st.recv_deadline_cuts};
    uint64_t fds = srv->st.fds_open, lim = srv->st.fds_limit;
    char last[sizeof srv->last_tag];
    memcpy(last, srv->last_tag, sizeof last);
    pthread_mutex_unlock(&srv->lock);
    for (int c = 0; c < NCAUSES; c++) {
        if (cur[c] == srv->logged[c] || now - srv->logged_at[c] < srv->log_interval_ms)
            continue;
        unsigned long long n = (unsigned long long)(cur[c] - srv->logged[c]);
        char line[BG_TP_URL_MAX + 400];
        if (c == CAUSE_HS)
            snprintf(line, sizeof line,
                     "%s: closed %llu connection(s) that did not finish the TLS handshake "
                     "within %d ms",
                     srv->url, n, srv->handshake_ms);
        else if (c == CAUSE_SOURCE)
            snprintf(line, sizeof line,
                     "%s: closed %llu unfinished handshake(s) beyond %u per source address "
                     "(last from %s)",
                     srv->url, n, srv->source_max, src[0] ? src : "?");
        else if (c == CAUSE_FD)
            snprintf(line, sizeof line,
                     "%s: closed or refused %llu connection(s) to keep %u descriptors free "
                     "(%llu of %llu open)",
                     srv->url, n, srv->fd_reserve, (unsigned long long)fds,
                     (unsigned long long)lim);
        else if (c == CAUSE_MEM)
            snprintf(line, sizeof line,
                     "%s: refused %llu connection(s) beyond the memory budget of %zu bytes "
                     "(%zu per connection)",
                     srv->url, n, srv->mem_budget, srv->conn_cost);
        else if (c == CAUSE_CONNS)
            snprintf(line, sizeof line,
                     "%s: refused %llu connection(s) beyond max_conns %u or not TLS-verified",
                     srv->url, n, srv->max_conns);
        else if (c == CAUSE_NOT_MEMBER)
            snprintf(line, sizeof line,
                     "%s: closed %llu connection(s) of senders that are not members (last %s)",
                     srv->url, n, last[0] ? last : "?");
        else if (c == CAUSE_CITY)
            snprintf(line, sizeof line,
                     "%s: closed %llu connection(s) beyond %u per city (last %s)", srv->url, n,
                     srv->city_conns, last[0] ? last : "?");
        else if (c == CAUSE_EVICTED)
            snprintf(line, sizeof line,
                     "%s: closed %llu idle connection(s) nobody vouched for, to admit new ones "
                     "at max_conns %u",
                     srv->url, n, srv->max_conns);
        else
            snprintf(line, sizeof line,
                     "%s: closed %llu connection(s) whose message, begun, was not whole within "
                     "%d ms",
                     srv->url, n, srv->recv_deadline_ms);
        srv->logged[c] = cur[c];
        srv->logged_at[c] = now;
        srv->log(srv->log_ctx, line);
    }
}

/*
 * Near the descriptor limit nng accepts whatever waits in the kernel's
 * backlog (up to 128) until accept fails with EMFILE, between two looks,
 * taking the reserve with it. So under pressure the guard shortens the
 * listening socket's backlog (listen(2) again: Linux adjusts it in place)
 * and empties it itself (accept and close at once: those clients retry),
 * and gives nng its usual backlog back once the pressure is gone. The
 * listening socket stays nng's; it is identified by device and inode.
 */
static unsigned
guard_backlog(bg_tp_server *srv, bool pressure)
{
    tp_pending *l = &srv->lsock;
    struct stat st;
    if (l->fd < 0 || fstat(l->fd, &st) != 0 || st.st_dev != l->dev || st.st_ino != l->ino)
        return 0;
    if (l->ino != srv->backlog_ino) /* a new listener (reload): nng's backlog */
        srv->backlog_small = false;
    if (pressure != srv->backlog_small && listen(l->fd, pressure ? 1 : NNG_BACKLOG) == 0) {
        srv->backlog_small = pressure;
        srv->backlog_ino = l->ino;
    }
    unsigned drained = 0;
    int fl = fcntl(l->fd, F_GETFL);
    /* Never block the guard in accept (nng's listeners are non-blocking). */
    while (pressure && fl >= 0 && (fl & O_NONBLOCK) != 0 && drained < DRAIN_MAX) {
        int c = accept(l->fd, NULL, NULL);
        if (c < 0)
            break; /* empty (EAGAIN), or no descriptor left for us either */
        close(c);
        drained++;
    }
    return drained;
}

/* Closes doomed connections (bg_tp_request_tag) once their requests are
 * over and DOOM_GRACE_MS have passed: nng's REP hands a reply to the
 * connection's writer and reports it sent at once, so closing right then
 * would lose the refusal the peer should still read. */
static void
guard_doom(bg_tp_server *srv, int64_t now)
{
    uint32_t ids[64];
    unsigned n = 0;
    pthread_mutex_lock(&srv->lock);
    for (unsigned i = 0; i < srv->npipes && n < 64; i++) {
        tp_pipe *p = &srv->pipes[i];
        if (p->doomed && p->busy == 0 && now - p->doomed_at >= DOOM_GRACE_MS)
            ids[n++] = p->id;
    }
    pthread_mutex_unlock(&srv->lock);
    for (unsigned i = 0; i < n; i++)
        pipe_close_id(ids[i]);
}

static void tls_watch(bg_tp_server *srv, int64_t now);

/* One look: find unfinished handshakes, cut what the bounds say, keep
 * this look for the next. */
static void
guard_pass(bg_tp_server *srv, char *src, size_t srclen)
{
    unsigned nfds = 0;
    if (!guard_scan(srv, &nfds))
        return;
    int64_t now = tp_now_ms();
    guard_doom(srv, now);
    guard_date(srv, now);
    struct rlimit rl;
    rlim_t soft = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? rl.rlim_cur : RLIM_INFINITY;
    unsigned limit = UINT32_MAX;
    if (soft != RLIM_INFINITY && soft < UINT32_MAX) {
        unsigned reserve = srv->fd_reserve < soft / 2 ? srv->fd_reserve : (unsigned)(soft / 2);
        limit = (unsigned)soft - reserve;
    }
    uint64_t cuts[NCAUSES] = {0};
    unsigned live = guard_judge(srv, now, nfds, limit, cuts, src, srclen);
    /* Pressure: within half a reserve of the boundary (hysteresis: it ends
     * a whole reserve below). */
    unsigned half = (srv->fd_reserve + 1) / 2;
    bool pressure = limit != UINT32_MAX &&
                    (nfds + half > limit || (srv->backlog_small && nfds + srv->fd_reserve > limit));
    cuts[CAUSE_FD] += guard_backlog(srv, pressure);
    unsigned uncut = 0;
    for (unsigned i = 0; i < srv->npend; i++)
        uncut += !srv->pend[i].cut;
    pthread_mutex_lock(&srv->lock);
    srv->st.hs_timeouts += cuts[CAUSE_HS];
    srv->st.source_limited += cuts[CAUSE_SOURCE];
    srv->st.fd_reserve_cuts += cuts[CAUSE_FD];
    srv->st.hs_pending = uncut;
    srv->st.fds_open = nfds;
    srv->st.fds_limit = soft == RLIM_INFINITY ? 0 : (uint64_t)soft;
    /* Cutting handshakes did not keep the reserve: admit nobody new. */
    srv->fd_tight = live > limit;
    pthread_mutex_unlock(&srv->lock);
    tls_watch(srv, now);
    look_keep(srv);
    guard_log(srv, now, src);
}

static int listener_make(bg_tp_server *srv, const char *url, nng_listener *out, nng_tls_config *tls,
                         bg_err *err);

/* A revival that failed, logged at most every IPC_FAIL_LOG_MS (it is tried again at
 * every look until it works). Admin lock held. */
static void
ipc_revive_failed(bg_tp_server *srv, const char *why)
{
    int64_t now = tp_now_ms();
    if (srv->log == NULL || now - srv->ipc_fail_logged_ms < IPC_FAIL_LOG_MS)
        return;
    srv->ipc_fail_logged_ms = now;
    char line[BG_TP_URL_MAX + 400];
    snprintf(line, sizeof line,
             "%.*s: nng stopped accepting (a client left during the handshake) and listening "
             "anew failed (%.200s): trying again",
             (int)BG_TP_URL_MAX, srv->url, why);
    srv->log(srv->log_ctx, line);
}

/*
 * A new listener in place of one nng stopped (ipc_watch), with no moment without a
 * socket at our path and nothing unlinked that a listener still serves: the new one
 * binds a temporary name beside the path and is renamed over it, so a failure at any
 * step (out of descriptors, say) leaves the path as it was, to be tried again at the
 * next look. The stopped listener is kept (closing it would close the connections it
 * accepted, which still work). nng unlinks a listener's bind name when it closes: the
 * first listener's is our path, so it is kept until the socket closes; a revived
 * one's is a temporary name gone since the rename, so the oldest of those may be
 * closed to make room. Admin lock held.
 */
static void
ipc_revive(bg_tp_server *srv)
{
    char tmp[sizeof srv->ipc_path], url[sizeof srv->ipc_path + 8];
    const char *slash = strrchr(srv->ipc_path, '/');
    int dl = slash != NULL ? (int)(slash - srv->ipc_path) + 1 : 0;
    int k = snprintf(tmp, sizeof tmp, "%.*s.ipc-%llu", dl, srv->ipc_path,
                     (unsigned long long)++srv->ipc_gen);
    if (k < 0 || (size_t)k >= sizeof tmp) {
        ipc_revive_failed(srv, "no room for a temporary name beside the path");
        return;
    }
    snprintf(url, sizeof url, "ipc://%s", tmp);
    (void)unlink(tmp); /* left by a crash in the middle of a revival */
    nng_listener nl;
    bg_err err = {0};
    if (listener_make(srv, url, &nl, NULL, &err) != BG_OK) {
        ipc_revive_failed(srv, err.msg);
        return;
    }
    int rv = nng_listener_start(nl, 0);
    if (rv != 0) {
        nng_listener_close(nl);
        ipc_revive_failed(srv, nng_strerror(rv));
        return;
    }
    if (chmod(tmp, srv->ipc_mode) != 0 || rename(tmp, srv->ipc_path) != 0) {
        char why[160];
        snprintf(why, sizeof why, "%s: %s", tmp, strerror(errno));
        nng_listener_close(nl); /* and nng unlinks tmp */
        ipc_revive_failed(srv, why);
        return;
    }
    if (!srv->ipc_first_kept) {
        srv->ipc_first = srv->listener;
        srv->ipc_first_kept = true;
    } else {
        if (srv->nretired == IPC_RETIRED) { /* the oldest goes, with what it still holds */
            nng_listener_close(srv->retired[0]);
            memmove(srv->retired, srv->retired + 1, (IPC_RETIRED - 1) * sizeof srv->retired[0]);
            srv->nretired--;
        }
        srv->retired[srv->nretired++] = srv->listener;
    }
    srv->listener = nl;
    snprintf(srv->ipc_bound, sizeof srv->ipc_bound, "%s", tmp);
    pthread_mutex_lock(&srv->lock);
    srv->st.listener_revivals++;
    pthread_mutex_unlock(&srv->lock);
    if (srv->log != NULL) {
        char line[BG_TP_URL_MAX + 160];
        snprintf(line, sizeof line,
                 "%s: nng stopped accepting (a client left during the handshake): listening anew",
                 srv->url);
        srv->log(srv->log_ctx, line);
    }
}

/* If fd is a connection our current ipc listener accepted, fills p (unread: whether
 * the kernel holds bytes nng has not read). */
static bool
ipc_probe_fd(bg_tp_server *srv, int fd, tp_pending *p)
{
    struct stat st;
    struct sockaddr_un me;
    socklen_t len = sizeof me;
    int acc = 0;
    socklen_t al = sizeof acc;
    if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode) ||
        getsockname(fd, (struct sockaddr *)&me, &len) != 0 || me.sun_family != AF_UNIX ||
        len <= offsetof(struct sockaddr_un, sun_path) ||
        strncmp(me.sun_path, srv->ipc_bound, sizeof me.sun_path) != 0 ||
        getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &al) != 0 || acc)
        return false;
    int inq = 0;
    *p = (tp_pending){.fd = fd, .dev = st.st_dev, .ino = st.st_ino};
    p->unread = ioctl(fd, FIONREAD, &inq) == 0 && inq > 0;
    return true;
}

/* What ipc_watch's look knows, and what it found. */
typedef struct {
    int64_t now, added, full; /* now; nng's last handover; the contexts last all busy */
    bool stuck;
} ipc_look;

/* One descriptor: into srv->pend if the current listener accepted it, with since when
 * it holds unread bytes; look->stuck once one has for STUCK_MS while nng handed nothing
 * over and the contexts were never all busy. */
static void
ipc_note(bg_tp_server *srv, int fd, void *arg)
{
    ipc_look *look = arg;
    tp_pending *p = pend_next(srv);
    if (p == NULL || !ipc_probe_fd(srv, fd, p))
        return;
    srv->npend++;
    tp_pending *was = srv->nprev > 0 ? bsearch(p, srv->prev, srv->nprev, sizeof *p, by_ino) : NULL;
    p->stuck_since = !p->unread                        ? 0
                     : was != NULL && was->stuck_since ? was->stuck_since
                                                       : look->now;
    look->stuck = look->stuck || (p->stuck_since != 0 && look->now - p->stuck_since >= STUCK_MS &&
                                  look->added < p->stuck_since && look->full < p->stuck_since);
}

/*
 * ipc has no handshakes to bound, but nng 1.5.2 stops an ipc listener for good when a
 * client leaves in the middle of the SP handshake (nanomsg/nng#1518, fixed after
 * 1.5.2): the local API would take no new client until a restart. Such a listener
 * still accepts and completes handshakes (below it), but hands no connection over, so
 * what a client sends stays unread. No counter tells (nng counts that failure where it
 * counts every client that leaves). So the watch looks at the connections of the
 * current listener: one holding unread bytes for STUCK_MS, while nng handed nothing
 * over and the contexts were never all busy (which would leave requests unread too),
 * means nng stopped accepting. Then the server listens anew (ipc_revive) and shuts the
 * stuck connections, so that their clients connect again. Never waits for the admin
 * lock: a stop holding it joins this thread.
 */
static void
ipc_watch(bg_tp_server *srv)
{
    int64_t now = tp_now_ms();
    if (now < srv->ipc_next_ms || srv->proc_fd < 0 || pthread_mutex_trylock(&srv->admin) != 0)
        return;
    srv->ipc_next_ms = now + IPC_WATCH_MS;
    pthread_mutex_lock(&srv->lock);
    int64_t added = srv->added_ms;
    if (srv->in_flight >= srv->nslots)
        srv->ipc_full_at = now;
    int64_t full = srv->ipc_full_at;
    pthread_mutex_unlock(&srv->lock);
    srv->npend = 0;
    ipc_look look = {.now = now, .added = added, .full = full};
    proc_fds(srv, ipc_note, &look);
    bool stuck = look.stuck;
    if (stuck && srv->have_listener) {
        ipc_revive(srv);
        /* Nobody reads them (the stopped listener never will): their clients see
         * EOF and connect again, to the new listener. */
        for (unsigned i = 0; i < srv->npend; i++) {
            struct stat st;
            tp_pending *p = &srv->pend[i];
            if (p->stuck_since != 0 && now - p->stuck_since >= STUCK_MS && fstat(p->fd, &st) == 0 &&
                st.st_dev == p->dev && st.st_ino == p->ino)
                shutdown(p->fd, SHUT_RDWR);
        }
        srv->npend = 0; /* the next look starts afresh, on the new listener */
    }
    look_keep(srv);
    pthread_mutex_unlock(&srv->admin);
}

static void *
guard_main(void *arg)
{
    bg_tp_server *srv = arg;
    char src[INET6_ADDRSTRLEN] = "";
    for (int c = 0; c < NCAUSES; c++)
        srv->logged_at[c] = INT64_MIN / 2;
    srv->lsock.fd = -1;
    srv->proc_fd = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    pthread_mutex_lock(&srv->lock);
    while (!srv->guard_exit) {
        pthread_mutex_unlock(&srv->lock);
        if (srv->ipc)
            ipc_watch(srv);
        else
            guard_pass(srv, src, sizeof src);
        pthread_mutex_lock(&srv->lock);
        int64_t next = tp_now_ms() + GUARD_PERIOD_MS;
        while (!srv->guard_exit && tp_cond_wait_until(&srv->timer_cond, &srv->lock, next) == 0)
            ;
    }
    pthread_mutex_unlock(&srv->lock);
    if (srv->proc_fd >= 0)
        close(srv->proc_fd);
    return NULL;
}

/* How long ipc_prepare waits for a server on an existing socket to answer. */
#define IPC_PROBE_MS 2000

/* ipc: refuse to clobber what is not ours; remove a socket nobody serves. */
static int
ipc_prepare(const char *path, bg_err *err)
{
    struct stat st;
    if (lstat(path, &st) != 0) {
        if (errno == ENOENT)
            return BG_OK;
        return bg_err_set(err, BG_EIO, "%s: %s", path, strerror(errno));
    }
    if (!S_ISSOCK(st.st_mode))
        return bg_err_set(err, BG_EEXIST, "%s exists and is not a socket: not removing it", path);
    /* A handshake, not a bare connect: that would break a server still there (nng#1518). */
    bg_err perr = {0};
    bg_tp_ipc_state state = bg_tp_ipc_probe(path, IPC_PROBE_MS, &perr);
    if (state == BG_TP_IPC_ABSENT)
        return BG_OK;
    if (state == BG_TP_IPC_SERVING || state == BG_TP_IPC_SILENT)
        return bg_err_set(err, BG_EEXIST, "%s: another process is serving on this socket", path);
    if (state != BG_TP_IPC_STALE)
        return bg_err_set(err, BG_EIO, "%s", perr.msg);
    if (unlink(path) != 0 && errno != ENOENT)
        return bg_err_set(err, BG_EIO, "removing stale socket %s: %s", path, strerror(errno));
    return BG_OK;
}

/* Creates (not starts) a listener on srv->url with the current options. */
static int
listener_make(bg_tp_server *srv, const char *url, nng_listener *out, nng_tls_config *tls,
              bg_err *err)
{
    nng_listener l;
    int rv = nng_listener_create(&l, srv->sock, url);
    if (rv != 0)
        return tp_nng_err(err, rv == NNG_EADDRINVAL ? BG_EINVAL : BG_EIO, rv, url);
    if ((rv = nng_listener_set_size(l, NNG_OPT_RECVMAXSZ, srv->recv_max + TP_SP_HEADER_MAX)) != 0)
        goto fail;
    if (srv->ipc) {
        rv = nng_listener_set_int(l, NNG_OPT_IPC_PERMISSIONS, (int)srv->ipc_mode);
    } else {
        rv = nng_listener_set_ptr(l, NNG_OPT_TLS_CONFIG, tls);
        /* Finds peers that vanished without a FIN on long-lived links. */
        if (rv == 0)
            rv = nng_listener_set_bool(l, NNG_OPT_TCP_KEEPALIVE, true);
    }
    if (rv != 0)
        goto fail;
    *out = l;
    return BG_OK;
fail:
    nng_listener_close(l);
    return tp_nng_err(err, BG_EIO, rv, "listener options");
}

static int
check_opts(const bg_tp_server_opts *o, tp_scheme *scheme, bg_err *err)
{
    if (o == NULL || o->handler == NULL)
        return bg_err_set(err, BG_EINVAL, "server: options and a handler are required");
    *scheme = tp_url_scheme(o->url);
    if (*scheme == TP_SCHEME_BAD)
        return bg_err_set(err, BG_EINVAL,
                          "server URL must be tls+tcp://host:port or ipc:///path (at most %d "
                          "bytes), not '%s'",
                          BG_TP_URL_MAX, o->url != NULL ? o->url : "(null)");
    if (*scheme == TP_SCHEME_TLS && o->tls == NULL)
        return bg_err_set(err, BG_EINVAL, "%s: a tls+tcp server needs TLS material", o->url);
    if (*scheme == TP_SCHEME_IPC && o->tls != NULL)
        return bg_err_set(err, BG_EINVAL, "%s: ipc takes no TLS material", o->url);
    if (o->recv_max == 0 || o->recv_max > BG_TP_MSG_MAX || o->reply_max == 0 ||
        o->reply_max > BG_TP_MSG_MAX)
        return bg_err_set(err, BG_EINVAL, "recv_max and reply_max must be 1..%zu bytes",
                          BG_TP_MSG_MAX);
    if (o->contexts > MAX_CONTEXTS || o->threads > MAX_THREADS || o->max_conns > MAX_CONNS ||
        o->city_conns > MAX_CONNS || o->pipe_max > MAX_CONTEXTS || o->request_timeout_ms < 0 ||
        o->request_timeout_ms > BG_TP_TIMEOUT_MAX_MS || o->drain_ms < 0 ||
        o->drain_ms > BG_TP_TIMEOUT_MAX_MS)
        return bg_err_set(err, BG_EINVAL,
                          "server limits out of range (contexts <= %d, threads <= %d, "
                          "max_conns <= %d, timeouts 0..%d ms)",
                          MAX_CONTEXTS, MAX_THREADS, MAX_CONNS, BG_TP_TIMEOUT_MAX_MS);
    if (o->handshake_ms < 0 || o->handshake_ms > BG_TP_TIMEOUT_MAX_MS || o->recv_deadline_ms < 0 ||
        o->recv_deadline_ms > BG_TP_TIMEOUT_MAX_MS || o->source_max > MAX_SOURCE ||
        o->log_interval_ms < 0 || o->log_interval_ms > BG_TP_TIMEOUT_MAX_MS)
        return bg_err_set(err, BG_EINVAL,
                          "guard limits out of range (handshake, receive deadline and log "
                          "interval 0..%d ms, "
                          "source_max <= %d)",
                          BG_TP_TIMEOUT_MAX_MS, MAX_SOURCE);
    if ((o->ipc_mode & ~0770u) != 0)
        return bg_err_set(err, BG_EINVAL,
                          "ipc_mode %04o: owner and group bits only (0660 or tighter)",
                          o->ipc_mode);
    return BG_OK;
}

/* The options, with defaults filled in, into srv (allocates nothing). */
static int
srv_configure(bg_tp_server *srv, const bg_tp_server_opts *opts, tp_scheme scheme, bg_err *err)
{
    srv->handler = opts->handler;
    srv->hctx = opts->handler_ctx;
    srv->recv_max = opts->recv_max;
    srv->reply_max = opts->reply_max;
    srv->nslots = opts->contexts ? opts->contexts : DEF_CONTEXTS;
    srv->nthreads = opts->threads ? opts->threads : DEF_THREADS;
    if (srv->nthreads > srv->nslots)
        srv->nthreads = srv->nslots; /* more could never be busy */
    srv->request_timeout_ms =
        opts->request_timeout_ms ? opts->request_timeout_ms : DEF_REQUEST_TIMEOUT_MS;
    srv->drain_ms = opts->drain_ms ? opts->drain_ms : DEF_DRAIN_MS;
    srv->max_conns = opts->max_conns ? opts->max_conns : DEF_MAX_CONNS;
    /* Half the contexts; with fewer than four, halving would refuse a
     * client that asks again while its timed-out request is still held. */
    srv->pipe_max = opts->pipe_max     ? opts->pipe_max
                    : srv->nslots >= 4 ? srv->nslots / 2
                                       : srv->nslots;
    srv->city_conns = opts->city_conns; /* 0: no shares, no eviction */
    if (srv->pipe_max > srv->nslots)
        srv->pipe_max = srv->nslots;
    srv->ipc_mode = opts->ipc_mode ? opts->ipc_mode : DEF_IPC_MODE;
    srv->ipc = scheme == TP_SCHEME_IPC;
    snprintf(srv->url, sizeof srv->url, "%s", opts->url);
    srv->handshake_ms = opts->handshake_ms ? opts->handshake_ms : DEF_HANDSHAKE_MS;
    srv->recv_deadline_ms = opts->recv_deadline_ms ? opts->recv_deadline_ms : DEF_RECV_DEADLINE_MS;
    srv->source_max = opts->source_max ? opts->source_max : DEF_SOURCE_MAX;
    srv->fd_reserve = opts->fd_reserve ? opts->fd_reserve : DEF_FD_RESERVE;
    srv->log = opts->log;
    srv->log_ctx = opts->log_ctx;
    srv->log_interval_ms = opts->log_interval_ms ? opts->log_interval_ms : DEF_LOG_INTERVAL_MS;
    srv->conn_cost = srv->recv_max + TP_SP_HEADER_MAX;
    size_t least = ((size_t)srv->nslots + 16) * srv->conn_cost;
    srv->mem_budget =
        opts->mem_budget ? opts->mem_budget : (DEF_MEM_BUDGET > least ? DEF_MEM_BUDGET : least);
    if (srv->mem_budget / srv->conn_cost < (size_t)srv->nslots + 1) {
        size_t need = ((size_t)srv->nslots + 1) * srv->conn_cost;
        return bg_err_set(err, BG_EINVAL,
                          "mem_budget too small: one connection and %u contexts of %zu bytes "
                          "need %zu",
                          srv->nslots, srv->conn_cost, need);
    }
    return BG_OK;
}

/* The socket file (ipc) or the TLS configuration (tls+tcp) the listener
 * will use. */
static int
srv_endpoint(bg_tp_server *srv, const bg_tp_server_opts *opts, bg_err *err)
{
    if (!srv->ipc)
        return tp_tls_config(&srv->tls, NNG_TLS_MODE_SERVER, opts->tls, NULL, true, err);
    const char *path = opts->url + 6;
    if (strlen(path) >= sizeof srv->ipc_path)
        return bg_err_set(err, BG_EINVAL, "%s: socket path longer than %zu bytes", opts->url,
                          sizeof srv->ipc_path - 1);
    snprintf(srv->ipc_path, sizeof srv->ipc_path, "%s", path);
    snprintf(srv->ipc_bound, sizeof srv->ipc_bound, "%s", path);
    return ipc_prepare(srv->ipc_path, err);
}

/* A configured server with its tables, before any nng object or thread
 * exists (so a failure here is undone by srv_free alone). */
static int
srv_new(bg_tp_server **out, const bg_tp_server_opts *opts, tp_scheme scheme, bg_err *err)
{
    bg_tp_server *srv = calloc(1, sizeof *srv);
    if (srv == NULL)
        return bg_err_set(err, BG_ENOMEM, "server: out of memory");
    pthread_mutex_init(&srv->lock, NULL);
    pthread_mutex_init(&srv->admin, NULL);
    tp_cond_init(&srv->work_cond);
    tp_cond_init(&srv->idle_cond);
    tp_cond_init(&srv->timer_cond);
    srv->refs = 1;
    srv->stats_listener = (nng_listener)NNG_LISTENER_INITIALIZER;
    int rv = srv_configure(srv, opts, scheme, err);
    if (rv != BG_OK) {
        srv_free(srv);
        return rv;
    }
    srv->slots = calloc(srv->nslots, sizeof *srv->slots);
    srv->queue = calloc(srv->nslots, sizeof *srv->queue);
    srv->workers = calloc(srv->nthreads, sizeof *srv->workers);
    srv->due = calloc(srv->nslots, sizeof *srv->due);
    srv->pipes = calloc(srv->max_conns, sizeof *srv->pipes);
    if (!srv->slots || !srv->queue || !srv->workers || !srv->due || !srv->pipes) {
        srv_free(srv);
        return bg_err_set(err, BG_ENOMEM, "server: out of memory");
    }
    if ((rv = srv_endpoint(srv, opts, err)) != BG_OK) {
        srv_free(srv);
        return rv;
    }
    *out = srv;
    return BG_OK;
}

/* The REP socket and one context per slot. */
static int
srv_open_socket(bg_tp_server *srv, bg_err *err)
{
    int rv;
    if ((rv = nng_rep0_open(&srv->sock)) != 0)
        return tp_nng_err(err, BG_EIO, rv, "REP socket");
    srv->sock_open = true;
    if ((rv = nng_socket_set_size(srv->sock, NNG_OPT_RECVMAXSZ,
                                  srv->recv_max + TP_SP_HEADER_MAX)) != 0 ||
        (rv = nng_pipe_notify(srv->sock, NNG_PIPE_EV_ADD_PRE, pipe_cb, srv)) != 0 ||
        (rv = nng_pipe_notify(srv->sock, NNG_PIPE_EV_REM_POST, pipe_cb, srv)) != 0)
        return tp_nng_err(err, BG_EIO, rv, "REP socket options");
    for (unsigned i = 0; i < srv->nslots; i++) {
        tp_slot *s = &srv->slots[i];
        s->srv = srv;
        s->state = SLOT_PARKED;
        if ((rv = nng_aio_alloc(&s->aio, slot_cb, s)) != 0 ||
            (rv = nng_ctx_open(&s->ctx, srv->sock)) != 0)
            return tp_nng_err(err, BG_ENOMEM, rv, "REP context");
    }
    return BG_OK;
}

/* The workers and the timer. Each worker holds a reference: one stuck in a
 * handler when the server stops frees it when it finally returns. */
static int
srv_start_threads(bg_tp_server *srv, bg_err *err)
{
    for (unsigned i = 0; i < srv->nthreads; i++) {
        tp_worker *w = &srv->workers[i];
        w->srv = srv;
        pthread_mutex_lock(&srv->lock);
        int trv = tp_thread_create(&w->thread, worker_main, w);
        if (trv == 0) {
            srv->refs++;
            srv->workers_alive++;
            srv->threads_started++;
        }
        pthread_mutex_unlock(&srv->lock);
        if (trv != 0)
            return bg_err_set(err, BG_EIO, "worker thread: %s", strerror(trv));
    }
    int rv = tp_thread_create(&srv->timer, timer_main, srv);
    if (rv != 0)
        return bg_err_set(err, BG_EIO, "timer thread: %s", strerror(rv));
    srv->timer_started = true;
    return BG_OK;
}

/* A tls+tcp listener that runs: the port it bound, the URL a reload must
 * listen on again, and the guard over its unfinished handshakes. */
static int
srv_bound_tcp(bg_tp_server *srv, const bg_tp_server_opts *opts, bg_err *err)
{
    int port = 0, rv;
    nng_url *u = NULL;
    if ((rv = nng_listener_get_int(srv->listener, NNG_OPT_TCP_BOUND_PORT, &port)) != 0 ||
        (rv = nng_url_parse(&u, opts->url)) != 0)
        return tp_nng_err(err, BG_EIO, rv, "bound port");
    srv->port = port;
    /* Later listeners (reload) must come back on this very port. */
    bool v6 = strchr(u->u_hostname, ':') != NULL;
    snprintf(srv->url, sizeof srv->url, "tls+tcp://%s%s%s:%d", v6 ? "[" : "", u->u_hostname,
             v6 ? "]" : "", port);
    nng_url_free(u);
    if ((rv = tp_thread_create(&srv->guard, guard_main, srv)) != 0)
        return bg_err_set(err, BG_EIO, "guard thread: %s", strerror(rv));
    srv->guard_started = true;
    return BG_OK;
}

static int
srv_listen(bg_tp_server *srv, const bg_tp_server_opts *opts, bg_err *err)
{
    int rv;
    if ((rv = listener_make(srv, srv->url, &srv->listener, srv->tls, err)) != BG_OK)
        return rv;
    srv->have_listener = true;
    if ((rv = nng_listener_start(srv->listener, 0)) != 0)
        return tp_nng_err(err, rv == NNG_EADDRINUSE ? BG_EEXIST : BG_EIO, rv, srv->url);
    if (srv->ipc) {
        /* nng chmods after bind; make sure, since the mode is the guard. */
        struct stat st;
        if (stat(srv->ipc_path, &st) == 0 && (st.st_mode & 07777) != srv->ipc_mode)
            chmod(srv->ipc_path, srv->ipc_mode);
        if ((rv = tp_thread_create(&srv->guard, guard_main, srv)) != 0)
            return bg_err_set(err, BG_EIO, "ipc watch thread: %s", strerror(rv));
        srv->guard_started = true;
        return BG_OK;
    }
    srv->stats_listener = srv->listener;
    return srv_bound_tcp(srv, opts, err);
}

/* Every slot to receiving: from here on requests are served. */
static void
srv_open_slots(bg_tp_server *srv)
{
    pthread_mutex_lock(&srv->lock);
    for (unsigned i = 0; i < srv->nslots; i++) {
        srv->slots[i].state = SLOT_IDLE;
        srv->nng_busy++;
    }
    pthread_mutex_unlock(&srv->lock);
    for (unsigned i = 0; i < srv->nslots; i++)
        slot_post_recv(srv, &srv->slots[i]);
}

static void server_teardown(bg_tp_server *srv);

int
bg_tp_server_start(bg_tp_server **out, const bg_tp_server_opts *opts, bg_err *err)
{
    tp_scheme scheme = TP_SCHEME_BAD;
    int rv;
    if (out == NULL)
        return bg_err_set(err, BG_EINVAL, "server: nowhere to put it");
    *out = NULL;
    if ((rv = check_opts(opts, &scheme, err)) != BG_OK)
        return rv;
    bg_tp_server *srv = NULL;
    if ((rv = srv_new(&srv, opts, scheme, err)) != BG_OK)
        return rv;
    /* Threads before the listener: a request may arrive as soon as it runs. */
    if (srv_open_socket(srv, err) != BG_OK || srv_start_threads(srv, err) != BG_OK ||
        srv_listen(srv, opts, err) != BG_OK) {
        rv = err != NULL ? err->code : BG_EIO;
        server_teardown(srv);
        return rv;
    }
    srv_open_slots(srv);
    *out = srv;
    return BG_OK;
}

int
bg_tp_server_port(const bg_tp_server *srv)
{
    return srv != NULL ? srv->port : 0;
}

const char *
bg_tp_server_url(const bg_tp_server *srv)
{
    return srv != NULL ? srv->url : "";
}

/* Holds new requests: idle receives are cancelled and every slot parks as
 * its work ends. Then waits up to drain_ms for in-flight requests. Admin
 * lock held. Returns true if all drained. */
static bool
pause_and_drain(bg_tp_server *srv)
{
    for (unsigned i = 0; i < srv->nslots; i++) {
        pthread_mutex_lock(&srv->lock);
        srv->paused = true;
        bool idle = srv->slots[i].state == SLOT_IDLE;
        pthread_mutex_unlock(&srv->lock);
        /* Only an IDLE slot has a receive to cancel. If it has just taken a
         * request instead, the cancel finds nothing pending and does nothing;
         * if its receive is only about to be posted, that receive stays and
         * the request it may bring is handled normally. */
        if (idle)
            nng_aio_cancel(srv->slots[i].aio);
    }
    int64_t deadline = tp_now_ms() + srv->drain_ms;
    pthread_mutex_lock(&srv->lock);
    while (srv->in_flight > 0 && tp_cond_wait_until(&srv->idle_cond, &srv->lock, deadline) == 0)
        ;
    bool drained = srv->in_flight == 0;
    pthread_mutex_unlock(&srv->lock);
    return drained;
}

/* Ends a pause: every parked slot receives again. */
static void
resume(bg_tp_server *srv)
{
    pthread_mutex_lock(&srv->lock);
    srv->paused = false;
    for (unsigned i = 0; i < srv->nslots; i++) {
        tp_slot *s = &srv->slots[i];
        if (s->state != SLOT_PARKED)
            continue;
        s->state = SLOT_IDLE;
        srv->nng_busy++;
        pthread_mutex_unlock(&srv->lock);
        slot_post_recv(srv, s);
        pthread_mutex_lock(&srv->lock);
    }
    pthread_mutex_unlock(&srv->lock);
}

/* Listens anew on srv->url with cfg in place of the current listener, which goes
 * first (the port is one) and closes every connection it accepted (nng 1.5.2):
 * requests in flight are drained before, and served again after. Admin lock held.
 * On failure the server may be left without a listener (have_listener false). */
static int
listener_renew(bg_tp_server *srv, nng_tls_config *cfg, bg_err *err)
{
    pause_and_drain(srv);
    nng_listener nl;
    int rv = listener_make(srv, srv->url, &nl, cfg, err);
    if (rv != BG_OK)
        goto out;
    if (srv->have_listener) {
        uint64_t auth = 0, e = listener_errors(srv->listener, &auth);
        pthread_mutex_lock(&srv->lock);
        srv->handshake_base += e;
        srv->handshake_auth_base += auth;
        srv->stats_listener = (nng_listener)NNG_LISTENER_INITIALIZER;
        pthread_mutex_unlock(&srv->lock);
        /* Also closes every connection it accepted (nng 1.5.2): nothing
         * authenticated under the old material stays. */
        nng_listener_close(srv->listener);
        srv->have_listener = false;
    }
    int64_t deadline = tp_now_ms() + REBIND_MS;
    while ((rv = nng_listener_start(nl, 0)) == NNG_EADDRINUSE && tp_now_ms() < deadline)
        nng_msleep(10);
    if (rv != 0) {
        nng_listener_close(nl);
        tp_nng_err(err, BG_EIO, rv, "listening again on the same port");
        rv = BG_EIO;
        goto out;
    }
    srv->listener = nl;
    srv->have_listener = true;
    pthread_mutex_lock(&srv->lock);
    srv->stats_listener = nl;
    pthread_mutex_unlock(&srv->lock);
    rv = BG_OK;
out:
    resume(srv);
    return rv;
}

/*
 * nng 1.5.2 stops a listener for good when a connection's handshake fails with
 * NNG_ECLOSED or NNG_ECANCELED (as nanomsg/nng#1518 does for ipc): a client that
 * leaves at the wrong moment of the SP handshake, or a write to a socket shut for
 * sending (EPIPE), is enough. The port still accepts and nng still completes TLS and
 * SP handshakes, but hands no connection over: every request sits unread until its
 * asker gives up, and no counter tells. What does tell is a connection nng has not
 * handed over that holds bytes nng leaves unread (or that stays open once the guard
 * cut it) for STUCK_MS while nng handed over nothing else: then the server listens
 * anew on the same port. Peers reconnect. Never waits for the admin lock (a stop
 * holding it joins this thread).
 */
static void
tls_watch(bg_tp_server *srv, int64_t now)
{
    pthread_mutex_lock(&srv->lock);
    int64_t added = srv->added_ms;
    pthread_mutex_unlock(&srv->lock);
    bool stuck = false;
    for (unsigned i = 0; i < srv->npend && !stuck; i++) {
        int64_t t = srv->pend[i].stuck_since;
        stuck = t != 0 && now - t >= STUCK_MS && added < t;
    }
    if ((!stuck && !srv->tls_lost) || now - srv->revived_ms < REVIVE_GAP_MS ||
        pthread_mutex_trylock(&srv->admin) != 0)
        return;
    if (!stuck && srv->have_listener) { /* a reload listened again meanwhile */
        srv->tls_lost = false;
        pthread_mutex_unlock(&srv->admin);
        return;
    }
    srv->revived_ms = now;
    bg_err err = {0};
    int rv = listener_renew(srv, srv->tls, &err);
    srv->tls_lost = rv != BG_OK && !srv->have_listener;
    if (rv == BG_OK) {
        pthread_mutex_lock(&srv->lock);
        srv->st.listener_revivals++;
        pthread_mutex_unlock(&srv->lock);
    }
    pthread_mutex_unlock(&srv->admin);
    if (srv->log != NULL) {
        char line[BG_TP_URL_MAX + 400];
        if (rv == BG_OK)
            snprintf(line, sizeof line,
                     "%s: nng stopped accepting (it left connections unread after their "
                     "handshake): listening anew; connections open were closed",
                     srv->url);
        else
            snprintf(line, sizeof line,
                     "%s: nng stopped accepting and listening anew failed (%.200s): trying "
                     "again",
                     srv->url, err.msg);
        srv->log(srv->log_ctx, line);
    }
}

int
bg_tp_server_reload_tls(bg_tp_server *srv, const bg_tp_tls *tls, bg_err *err)
{
    if (srv == NULL)
        return bg_err_set(err, BG_EINVAL, "reload: no server");
    if (srv->ipc)
        return bg_err_set(err, BG_EINVAL, "%s: ipc has no TLS to reload", srv->url);
    nng_tls_config *cfg = NULL;
    int rv = tp_tls_config(&cfg, NNG_TLS_MODE_SERVER, tls, NULL, true, err);
    if (rv != BG_OK)
        return rv;
    pthread_mutex_lock(&srv->admin);
    if ((rv = listener_renew(srv, cfg, err)) != BG_OK) {
        nng_tls_config_free(cfg);
    } else {
        /* The listener holds its own reference; connections accepted under the
         * old config hold theirs. */
        nng_tls_config_free(srv->tls);
        srv->tls = cfg;
        pthread_mutex_lock(&srv->lock);
        srv->st.reloads++;
        pthread_mutex_unlock(&srv->lock);
    }
    pthread_mutex_unlock(&srv->admin);
    return rv;
}

/* Closes the socket and frees the nng objects; drops the reference the
 * starter took for it. */
static void *
closer_main(void *arg)
{
    bg_tp_server *srv = arg;
    if (srv->sock_open) {
        /* Closes the listener, every connection and every context; pending
         * aios finish with NNG_ECLOSED. */
        nng_close(srv->sock);
        srv->sock_open = false;
    }
    for (unsigned i = 0; i < srv->nslots; i++) {
        tp_slot *s = &srv->slots[i];
        if (s->aio != NULL) {
            nng_aio_stop(s->aio); /* waits for a callback still running */
            nng_aio_free(s->aio);
            s->aio = NULL;
        }
    }
    if (srv->tls != NULL) {
        nng_tls_config_free(srv->tls);
        srv->tls = NULL;
    }
    if (srv->ipc && srv->have_listener) {
        /* nng removes the file when the listener closes; make sure, but only
         * a socket nobody serves any more (ipc_prepare's rule). */
        (void)ipc_prepare(srv->ipc_path, NULL);
    }
    pthread_mutex_lock(&srv->lock);
    srv->nng_closed = true;
    pthread_cond_broadcast(&srv->idle_cond);
    bool last = unref_locked(srv);
    pthread_mutex_unlock(&srv->lock);
    if (last)
        srv_free(srv);
    return NULL;
}

/* Stops threads and closes nng objects (not the owner's reference). Used
 * by stop and by a failed start. Returns how many handlers were left
 * running; *stalled says nng_close did not return within CLOSE_WAIT_MS. */
static unsigned
server_close_all(bg_tp_server *srv, bool *stalled)
{
    unsigned abandoned = 0;
    pthread_mutex_lock(&srv->lock);
    srv->closing = true;
    srv->paused = true;
    for (unsigned i = 0; i < srv->nslots; i++) {
        tp_slot *s = &srv->slots[i];
        if (s->state == SLOT_QUEUED || s->state == SLOT_HANDLING) {
            if (s->state == SLOT_HANDLING)
                abandoned++;
            expire_locked(srv, s); /* closing: parks, never asks for a receive */
        }
    }
    srv->timer_exit = true;
    srv->guard_exit = true;
    srv->workers_exit = true;
    pthread_cond_broadcast(&srv->timer_cond);
    pthread_cond_broadcast(&srv->work_cond);
    /* Someone between deciding on an nng call and making it: let them. */
    while (srv->nng_busy > 0)
        pthread_cond_wait(&srv->idle_cond, &srv->lock);
    pthread_mutex_unlock(&srv->lock);

    if (srv->timer_started)
        pthread_join(srv->timer, NULL);
    if (srv->guard_started)
        pthread_join(srv->guard, NULL);

    int64_t deadline = tp_now_ms() + WORKER_EXIT_MS;
    pthread_mutex_lock(&srv->lock);
    while (srv->workers_alive > 0 && tp_cond_wait_until(&srv->idle_cond, &srv->lock, deadline) == 0)
        ;
    unsigned started = srv->threads_started;
    for (unsigned i = 0; i < started; i++) {
        tp_worker *w = &srv->workers[i];
        /* A worker marked done has left its loop and only exits; the others
         * are inside a stuck handler and keep a reference until they return. */
        if (w->done)
            pthread_join(w->thread, NULL);
        else
            pthread_detach(w->thread);
    }
    pthread_mutex_unlock(&srv->lock);

    /* nng_close can stall for good in nng 1.5.2 (seen after a peer dropped
     * a connection in the middle of an oversize transfer: nng's reaper
     * thread waits forever), so it runs on a thread of its own and stop
     * waits a bounded time. The closer holds a reference: if stop gives up,
     * the closer finishes (and frees) whenever nng lets go. */
    pthread_mutex_lock(&srv->lock);
    srv->refs++;
    pthread_mutex_unlock(&srv->lock);
    pthread_t closer;
    if (tp_thread_create(&closer, closer_main, srv) != 0) {
        closer_main(srv); /* no thread to spare: close inline */
        *stalled = false;
        return abandoned;
    }
    int64_t until = tp_now_ms() + CLOSE_WAIT_MS;
    pthread_mutex_lock(&srv->lock);
    while (!srv->nng_closed && tp_cond_wait_until(&srv->idle_cond, &srv->lock, until) == 0)
        ;
    *stalled = !srv->nng_closed;
    pthread_mutex_unlock(&srv->lock);
    if (*stalled)
        pthread_detach(closer);
    else
        pthread_join(closer, NULL);
    return abandoned;
}

static void
server_teardown(bg_tp_server *srv)
{
    bool stalled;
    server_close_all(srv, &stalled);
    pthread_mutex_lock(&srv->lock);
    bool last = unref_locked(srv);
    pthread_mutex_unlock(&srv->lock);
    if (last)
        srv_free(srv);
}

int
bg_tp_server_stop(bg_tp_server *srv, bg_err *err)
{
    if (srv == NULL)
        return BG_OK;
    pthread_mutex_lock(&srv->admin);
    bool drained = pause_and_drain(srv);
    unsigned abandoned = 0;
    pthread_mutex_lock(&srv->lock);
    unsigned left = srv->in_flight;
    pthread_mutex_unlock(&srv->lock);
    bool stalled = false;
    abandoned = server_close_all(srv, &stalled);
    pthread_mutex_unlock(&srv->admin);
    int ms = srv->drain_ms;
    pthread_mutex_lock(&srv->lock);
    bool last = unref_locked(srv);
    pthread_mutex_unlock(&srv->lock);
    if (last)
        srv_free(srv);
    if (stalled)
        return bg_err_set(err, BG_EIO,
                          "server stopped, but nng did not finish closing its socket within %d "
                          "ms (an nng 1.5.2 stall); its resources are left to it",
                          CLOSE_WAIT_MS);
    if (!drained)
        return bg_err_set(err, BG_ELIMIT,
                          "server stopped with %u request(s) unfinished after %d ms (%u handler(s) "
                          "still running; their replies will be discarded)",
                          left, ms, abandoned);
    return BG_OK;
}

void
bg_tp_server_get_stats(bg_tp_server *srv, bg_tp_server_stats *out)
{
    memset(out, 0, sizeof *out);
    if (srv == NULL)
        return;
    /* Not under the admin lock: a status query must not wait for a reload.
     * A listener closed meanwhile just is not found in nng's snapshot. */
    pthread_mutex_lock(&srv->lock);
    *out = srv->st;
    out->conns_open = srv->npipes;
    out->in_flight = srv->in_flight;
    uint64_t hs = srv->handshake_base, auth = srv->handshake_auth_base, now_auth = 0;
    nng_listener l = srv->stats_listener;
    pthread_mutex_unlock(&srv->lock);
    if (nng_listener_id(l) > 0)
        hs += listener_errors(l, &now_auth);
    out->handshake_errs = hs;
    out->handshake_auth = auth + now_auth;
}

/* --- requests --- */

const uint8_t *
bg_tp_request_data(const bg_tp_request *req, size_t *len)
{
    *len = nng_msg_len(req->msg);
    return nng_msg_body(req->msg);
}

int64_t
bg_tp_request_ms_left(const bg_tp_request *req)
{
    return req->deadline - tp_now_ms();
}

int
bg_tp_request_peer(const bg_tp_request *req, bg_tp_peer *peer, bg_err *err)
{
    memset(peer, 0, sizeof *peer);
    nng_pipe p = nng_msg_get_pipe(req->msg);
    int rv;
    if (req->srv->ipc) {
        uint64_t uid = 0, gid = 0, pid = 0;
        peer->local = true;
        snprintf(peer->addr, sizeof peer->addr, "ipc");
        if ((rv = nng_pipe_get_uint64(p, NNG_OPT_IPC_PEER_UID, &uid)) != 0 ||
            (rv = nng_pipe_get_uint64(p, NNG_OPT_IPC_PEER_GID, &gid)) != 0)
            return tp_nng_err(err, BG_ENOTFOUND, rv, "ipc peer credentials");
        nng_pipe_get_uint64(p, NNG_OPT_IPC_PEER_PID, &pid); /* not on every OS */
        peer->uid = (uid_t)uid;
        peer->gid = (gid_t)gid;
        peer->pid = (pid_t)pid;
        return BG_OK;
    }
    nng_sockaddr sa;
    if ((rv = nng_pipe_get_addr(p, NNG_OPT_REMADDR, &sa)) != 0)
        return tp_nng_err(err, BG_ENOTFOUND, rv, "peer address");
    if (sa.s_family == NNG_AF_INET) {
        const uint8_t *a = (const uint8_t *)&sa.s_in.sa_addr;
        const uint8_t *pt = (const uint8_t *)&sa.s_in.sa_port; /* network order */
        snprintf(peer->addr, sizeof peer->addr, "%u.%u.%u.%u:%u", a[0], a[1], a[2], a[3],
                 (unsigned)(pt[0] << 8 | pt[1]));
    } else if (sa.s_family == NNG_AF_INET6) {
        const uint8_t *a = sa.s_in6.sa_addr;
        const uint8_t *pt = (const uint8_t *)&sa.s_in6.sa_port;
        int n = snprintf(peer->addr, sizeof peer->addr, "[");
        for (int i = 0; i < 16; i += 2)
            n += snprintf(peer->addr + n, sizeof peer->addr - (size_t)n, "%s%x", i ? ":" : "",
                          (unsigned)(a[i] << 8 | a[i + 1]));
        snprintf(peer->addr + n, sizeof peer->addr - (size_t)n, "]:%u",
                 (unsigned)(pt[0] << 8 | pt[1]));
    } else {
        snprintf(peer->addr, sizeof peer->addr, "?");
    }
    return BG_OK;
}

/* Ends a request without an answer (the asker times out) and frees it. */
static void
drop(bg_tp_request *req, bool too_big)
{
    bg_tp_server *srv = req->srv;
    pthread_mutex_lock(&srv->lock);
    tp_slot *s = req->slot;
    bool post = false;
    if (s == NULL) {
        srv->st.late++;
    } else {
        req->slot = NULL;
        if (too_big)
            srv->st.reply_too_big++;
        else
            srv->st.dropped++;
        srv->in_flight--;
        /* Receiving again makes the REP context forget the request. */
        post = slot_recycle_locked(srv, s);
    }
    bool last = req_free_locked(req);
    pthread_mutex_unlock(&srv->lock);
    if (post)
        slot_post_recv(srv, s);
    if (last)
        srv_free(srv);
}

/* A request that expired: count, free, say so. */
static int
late(bg_tp_request *req, bg_err *err)
{
    bg_tp_server *srv = req->srv;
    pthread_mutex_lock(&srv->lock);
    srv->st.late++;
    bool last = req_free_locked(req);
    pthread_mutex_unlock(&srv->lock);
    if (last)
        srv_free(srv);
    return bg_err_set(err, BG_EABORTED,
                      "reply too late: the request expired (deadline or server stop)");
}

int
bg_tp_reply(bg_tp_request *req, const void *bytes, size_t len, bg_err *err)
{
    if (req == NULL)
        return bg_err_set(err, BG_EINVAL, "reply: no request");
    bg_tp_server *srv = req->srv;
    pthread_mutex_lock(&srv->lock);
    bool expired = req->slot == NULL;
    pthread_mutex_unlock(&srv->lock);
    if (expired) /* nothing of nng's to touch: the server may be gone */
        return late(req, err);

    int code = BG_OK;
    nng_msg *m = NULL;
    if (bytes == NULL && len > 0)
        code = bg_err_set(err, BG_EINVAL, "reply: no bytes");
    else if (len > srv->reply_max)
        code =
            bg_err_set(err, BG_ELIMIT, "reply of %zu bytes exceeds reply_max %zu: request dropped",
                       len, srv->reply_max);
    else if (nng_msg_alloc(&m, len) != 0)
        code = bg_err_set(err, BG_ENOMEM, "reply: out of memory, request dropped");
    else if (len > 0)
        memcpy(nng_msg_body(m), bytes, len);
    if (code != BG_OK) {
        drop(req, code == BG_ELIMIT);
        return code;
    }

    pthread_mutex_lock(&srv->lock);
    tp_slot *s = req->slot;
    if (s == NULL) { /* expired meanwhile */
        pthread_mutex_unlock(&srv->lock);
        nng_msg_free(m);
        return late(req, err);
    }
    req->slot = NULL;
    s->req = NULL;
    s->state = SLOT_SENDING;
    srv->nng_busy++;
    req_free_locked(req); /* not the last: the slot is in flight, the owner waits */
    pthread_mutex_unlock(&srv->lock);

    nng_aio_set_msg(s->aio, m);
    nng_aio_set_timeout(s->aio, SEND_TIMEOUT_MS);
    nng_ctx_send(s->ctx, s->aio);

    pthread_mutex_lock(&srv->lock);
    srv->nng_busy--;
    pthread_cond_broadcast(&srv->idle_cond);
    pthread_mutex_unlock(&srv->lock);
    return BG_OK;
}

void
bg_tp_drop(bg_tp_request *req)
{
    if (req != NULL)
        drop(req, false);
}

int
bg_tp_request_tag(bg_tp_request *req, const char *city, bool member, bg_err *err)
{
    if (req == NULL || city == NULL || strlen(city) >= sizeof(((tp_pipe *)0)->city) ||
        city[0] == '\0')
        return bg_err_set(err, BG_EINVAL, "tag: a request and a city code are required");
    bg_tp_server *srv = req->srv;
    uint32_t id = (uint32_t)nng_pipe_id(nng_msg_get_pipe(req->msg));
    pthread_mutex_lock(&srv->lock);
    tp_pipe *p = req->slot != NULL ? pipe_find_locked(srv, id) : NULL;
    int rc = BG_OK;
    if (p == NULL) {
        rc = bg_err_set(err, BG_ENOTFOUND, "tag: the connection is gone");
    } else if (p->doomed || strcmp(p->city, city) == 0) {
        /* already decided */
    } else if (!member || p->city[0] != '\0') {
        /* A stranger, or a connection that speaks for two cities. */
        p->doomed = true;
        p->doomed_at = tp_now_ms();
        srv->st.conns_not_member++;
        snprintf(srv->last_tag, sizeof srv->last_tag, "%s", city);
    } else {
        unsigned same = 0;
        for (unsigned i = 0; i < srv->npipes; i++)
            same += strcmp(srv->pipes[i].city, city) == 0 && !srv->pipes[i].doomed;
        if (srv->city_conns > 0 && same >= srv->city_conns) {
            p->doomed = true;
            p->doomed_at = tp_now_ms();
            srv->st.conns_city_limited++;
            snprintf(srv->last_tag, sizeof srv->last_tag, "%s", city);
        } else {
            snprintf(p->city, sizeof p->city, "%s", city);
        }
    }
    pthread_mutex_unlock(&srv->lock);
    return rc;
}
