/*
 * transport.h - opaque request/answer bytes between gateways (nng REQ/REP).
 *
 * Two faces, one API:
 *  - federation: "tls+tcp://host:port", mutual TLS (TLS 1.2, ECDSA P-256 city
 *    certificates from the federation CA, CRL checked by mbedTLS inside nng);
 *  - local: "ipc:///path", a socket file with owner/group permissions, no TLS.
 * Plain "tcp://" is refused: nothing leaves a host unauthenticated.
 *
 * The transport moves bytes. It knows nothing of envelopes, rosters or
 * cities beyond the TLS server name: nng 1.5.2 cannot say which certificate a
 * TLS peer presented, so the layer above must seal and open signed envelopes
 * and check them against the current CRL and roster. TLS here keeps strangers
 * (no federation certificate, revoked, expired) from reaching that layer.
 *
 * Everything is bounded: every socket has a receive limit, every operation a
 * deadline, every queue a length (see the option fields).
 *
 * Sizes: give every gateway the same limit (the roster's largest message)
 * for recv_max, reply_max and send_max. A message above its receiver's limit
 * costs the sender its connection (nng drops it).
 *
 * nng 1.5.2 stall: a process whose connection the peer closes abruptly - in
 * the middle of an oversize message it sends, or right after the connection
 * was made (a peer at its connection limit) - can have nng's reaper thread
 * stall for good; every later nng_close in that process then hangs and
 * closed connections are never freed (measured on loopback: within ~30
 * oversize requests, ~400 oversize answers, ~100-170 refused connections;
 * the reaper thread waits forever, cf. nanomsg/nng#1543 and #1813). Hence:
 * requests above send_max and answers above reply_max are refused before
 * sending; a client whose connections keep being closed right away redials
 * more and more slowly; stop and close wait for nng only a bounded time.
 *
 * Threads: the transport's own threads (workers, timers, watchdogs) block
 * every signal, so a main loop using sigwait/signalfd gets them.
 *
 * nng is not fork-safe: a process must not fork after its first bg_tp_ call
 * (unless the child only execs).
 *
 * All functions return BG_OK or a BG_E* code with a message in err (err may be
 * NULL). bg_tp_call additionally reports a bg_tp_fail kind.
 */
#ifndef BG_TRANSPORT_H
#define BG_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/err.h"

/* Longest URL accepted, in bytes. */
#define BG_TP_URL_MAX 256
/* Hard ceiling for recv_max / send_max / reply_max: 256 MiB. */
#define BG_TP_MSG_MAX ((size_t)256 * 1024 * 1024)
/* Longest call timeout: one hour. */
#define BG_TP_TIMEOUT_MAX_MS (3600 * 1000)

/*
 * TLS material, all PEM in memory (see bg_pki_cert_pem, bg_pki_key_pem,
 * bg_pki_crl_pem). The transport copies what it needs into nng during the
 * call; the caller may free (and should cleanse: bg_pki_secret_free) the key
 * right after.
 */
typedef struct bg_tp_tls {
    const char *cert_pem; /* own city certificate; a client may leave it NULL
                             (it will then be refused by every gateway) */
    const char *key_pem;  /* its private key, unencrypted PKCS#8 or SEC1 */
    const char *ca_pem;   /* the federation CA certificate: the trust anchor */
    const char *crl_pem;  /* the CA's current CRL, or NULL. Without one mbedTLS
                             skips revocation silently; an expired one makes
                             every handshake fail. */
} bg_tp_tls;

/* ---------------------------------------------------------------- server */

typedef struct bg_tp_server bg_tp_server;
typedef struct bg_tp_request bg_tp_request;

/*
 * Called on one of the server's own worker threads (never on an nng thread)
 * for every request received. The handler owns req until it calls, exactly
 * once, bg_tp_reply or bg_tp_drop; it may return first and answer later from
 * any thread. A request not answered by its deadline (request_timeout_ms) is
 * dropped by the server (the asker sees a timeout); a later reply is then
 * discarded and only frees req.
 */
typedef void (*bg_tp_handler)(void *ctx, bg_tp_request *req);

/* One line for the log (no newline), from a transport thread. Limits and
 * refusals are logged once per cause per log interval, with counts. */
typedef void (*bg_tp_log_fn)(void *ctx, const char *line);

typedef struct bg_tp_server_opts {
    const char *url;        /* "tls+tcp://127.0.0.1:7501" (port 0: ephemeral, see
                               bg_tp_server_port) or "ipc:///run/baygate/gw.sock" */
    const bg_tp_tls *tls;   /* required (with cert and key) for tls+tcp; NULL for ipc */
    size_t recv_max;        /* largest request accepted, bytes: mandatory. A peer
                               sending more has its connection dropped (up to 64
                               bytes more: the request is dropped unhandled). */
    size_t reply_max;       /* largest answer sent, bytes: mandatory. Set it to
                               what askers accept (their recv_max). */
    unsigned contexts;      /* nng contexts = most requests in flight (0: 8) */
    unsigned threads;       /* handler threads (0: 4; at most contexts) */
    int request_timeout_ms; /* deadline from receipt to reply (0: 30000) */
    int drain_ms;           /* stop/reload wait for in-flight requests (0: 5000) */
    unsigned max_conns;     /* open connections beyond this are closed (0: 256) */
    unsigned city_conns;    /* connections one city may hold, once tagged
                               (bg_tp_request_tag); also turns on eviction at
                               max_conns (0: neither) */
    unsigned pipe_max;      /* requests of one connection in flight at once; more
                               are dropped unhandled (the asker times out), so a
                               peer pipelining requests it never reads answers to
                               cannot hold every context (0: half the contexts,
                               all of them below four) */
    unsigned ipc_mode;      /* socket file mode (0: 0660); nothing for others */
    bg_tp_handler handler;  /* mandatory */
    void *handler_ctx;
    /* Before authentication (tls+tcp only; see "Guard" below). */
    int handshake_ms;    /* a TCP connection must finish its TLS and SP handshake
                            within this (0: 10000) */
    unsigned source_max; /* unfinished handshakes per source address (0: 16) */
    unsigned fd_reserve; /* descriptors kept free for the process's own work
                            (0: 128; at most half the RLIMIT_NOFILE soft limit) */
    /* Memory: nng holds, per connection, one message of the size it
     * announced while it arrives, and each context one request: (open
     * connections + contexts) x (recv_max + 64) stays within this; a
     * connection beyond it is closed after its handshake (0: 256 MiB, or
     * (contexts + 16) x (recv_max + 64) if that is more). */
    size_t mem_budget;
    /* After authentication (tls+tcp only): a message that has begun to arrive
     * must be whole within this, or its connection is closed, so that a peer
     * trickling a message cannot hold its announced length for good (0: 30000). */
    int recv_deadline_ms;
    bg_tp_log_fn log; /* NULL: nothing logged */
    void *log_ctx;
    int log_interval_ms; /* at most one line per cause this often (0: 10000) */
} bg_tp_server_opts;

/*
 * Opens the socket, starts contexts, worker threads and the listener.
 *
 * TLS: NNG_TLS_AUTH_MODE_REQUIRED with the federation CA (+ CRL) as the only
 * anchor. The listener's config is deliberately given NO server name: in
 * mbedTLS a server-side name would be checked against every client
 * certificate, and clients of every city (each with its own name) connect.
 * Which city is asking is the signed envelope's business.
 *
 * Guard (tls+tcp): nng 1.5.2 has no TLS handshake timeout and shows a
 * connection to no one before its handshake is done (max_conns and pipe
 * callbacks see only completed ones), so a TCP client that never speaks
 * TLS would keep its descriptor for good. A guard thread of the server
 * looks at the process's descriptors every 100 ms (/proc/self/fd): a TCP
 * socket on our port whose peer is not an admitted connection is a
 * handshake in progress. It is shut down (shutdown(2): nng sees EOF and
 * closes it itself; the descriptor is never closed under nng) when
 *   - it has been seen for handshake_ms without finishing  (hs_timeouts)
 *   - its source address has more than source_max unfinished handshakes:
 *     the newest beyond it                                  (source_limited)
 *   - the process has fewer than fd_reserve descriptors left below its
 *     RLIMIT_NOFILE soft limit: the oldest first            (fd_reserve_cuts)
 * and while the reserve cannot be kept that way, new connections are
 * closed right after their handshake (fd_reserve_cuts). Between two looks
 * nng may accept connections up to the limit (the reserve is restored
 * within one guard period, not kept at every instant); nng backs off when
 * accept fails with EMFILE. Firewalling the port to the roster's addresses
 * is still the first line.
 *
 * ipc: a stale socket file (nobody listening) is removed first; an existing
 * file that is not a socket, or a socket someone still serves, is refused
 * (BG_EEXIST). The file gets ipc_mode; keep its directory private as well.
 */
int bg_tp_server_start(bg_tp_server **out, const bg_tp_server_opts *opts, bg_err *err);

/* The TCP port actually bound (useful with port 0); 0 for ipc. */
int bg_tp_server_port(const bg_tp_server *srv);
/* The URL actually listened on ("tls+tcp://127.0.0.1:41234"). */
const char *bg_tp_server_url(const bg_tp_server *srv);

/*
 * New TLS material (CRL refresh, certificate rotation). nng 1.5.2 does not
 * apply a config swapped into a running listener, and a second listener
 * cannot bind the port while the first holds it, so:
 *   1. the new nng_tls_config is built (bad material: error, nothing changed);
 *   2. new requests are held and in-flight ones get up to drain_ms to answer;
 *   3. the old listener is closed: nng closes every connection it accepted,
 *      so no connection authenticated under the old material survives (a
 *      newly revoked city is cut now and refused on reconnect);
 *   4. a new listener with the new config binds the same port (retried for
 *      up to a second) and requests flow again.
 * Peers see the cut as a reset of any call that was still outstanding (their
 * dialers reconnect by themselves). If the port cannot be bound again the
 * server keeps running without a TLS listener and BG_EIO comes back; a later
 * reload tries again. ipc servers: BG_EINVAL.
 */
int bg_tp_server_reload_tls(bg_tp_server *srv, const bg_tp_tls *tls, bg_err *err);

/*
 * Stops taking requests, waits up to drain_ms for in-flight ones (their
 * replies still go out), then closes everything and frees srv. Call it from
 * normal code (a signal-driven main loop is fine), never from a signal
 * handler or from a handler. BG_OK if everything drained; BG_ELIMIT if some
 * handlers were still running: their threads are detached, their requests
 * are expired (bg_tp_reply/bg_tp_drop stay safe and just free them), and the
 * handler_ctx must outlive them. nng_close itself runs on a thread of its
 * own and is waited for at most 5 s: nng 1.5.2 can stall in it for good
 * (its reaper, after a peer dropped a connection in the middle of an
 * oversize transfer); then BG_EIO, and nng keeps what it holds. The whole
 * call is therefore bounded by about drain_ms + 5.2 s. NULL is ignored.
 */
int bg_tp_server_stop(bg_tp_server *srv, bg_err *err);

typedef struct bg_tp_server_stats {
    uint64_t received;           /* requests received */
    uint64_t replied;            /* replies handed to nng */
    uint64_t dropped;            /* bg_tp_drop by the handler */
    uint64_t expired;            /* dropped at their deadline (or at stop/reload) */
    uint64_t late;               /* replies or drops after expiry (discarded) */
    uint64_t reply_too_big;      /* replies refused for exceeding reply_max */
    uint64_t oversize;           /* request bodies above recv_max dropped on arrival
                                    (far bigger ones cost the sender its connection
                                    inside nng: see conns_lost) */
    uint64_t send_failed;        /* reply lost (the asker's connection went away) */
    uint64_t slow_readers;       /* connections closed: a reply found them not reading
                                    for the send timeout (10 s) */
    uint64_t pipe_busy;          /* requests dropped: their connection had pipe_max
                                    in flight */
    uint64_t conns_not_member;   /* closed: tagged as not a member (bg_tp_request_tag) */
    uint64_t conns_city_limited; /* closed: beyond city_conns of one city */
    uint64_t conns_evicted;      /* idle untagged ones closed to admit a newcomer */
    uint64_t conns_open;         /* connections now (after TLS and SP handshake) */
    uint64_t conns_total;        /* connections admitted so far */
    uint64_t conns_refused;      /* closed for exceeding max_conns or unverified TLS */
    uint64_t conns_lost;         /* connections closed (by peers, oversize, reloads) */
    uint64_t handshake_errs;     /* failed accepts: TLS refused, garbage, ... (nng stats) */
    uint64_t handshake_auth;     /* of which authentication failures: a certificate refused,
                                    the client's by us or ours by the client (nng says
                                    neither which nor from what address) */
    uint64_t hs_pending;         /* unfinished handshakes at the guard's last look */
    uint64_t hs_timeouts;        /* closed: handshake not finished within handshake_ms */
    uint64_t recv_deadline_cuts; /* closed: a message begun, not whole within recv_deadline_ms */
    uint64_t source_limited;     /* closed: over source_max unfinished from one address */
    uint64_t fd_reserve_cuts;    /* closed or refused to keep the descriptor reserve */
    uint64_t mem_refused;        /* refused after the handshake: memory budget */
    uint64_t fds_open;           /* the process's descriptors at the guard's last look */
    uint64_t fds_limit;          /* its RLIMIT_NOFILE soft limit */
    uint64_t reloads;            /* successful bg_tp_server_reload_tls */
    uint64_t listener_revivals;  /* listened anew after nng stopped accepting (nng#1518) */
    unsigned in_flight;          /* requests queued, being handled or being sent */
} bg_tp_server_stats;

void bg_tp_server_get_stats(bg_tp_server *srv, bg_tp_server_stats *out);

/* --- requests (inside a handler) --- */

/* The request bytes (valid until reply/drop). */
const uint8_t *bg_tp_request_data(const bg_tp_request *req, size_t *len);

/* Milliseconds left before the request's deadline (negative once passed). */
int64_t bg_tp_request_ms_left(const bg_tp_request *req);

/* Who sent it, as far as the transport knows. For ipc the kernel's
 * credentials of the connecting process; for TLS the remote address (the
 * city is only known from the signed envelope). */
typedef struct bg_tp_peer {
    bool local;    /* ipc */
    uid_t uid;     /* ipc only */
    gid_t gid;     /* ipc only */
    pid_t pid;     /* ipc only */
    char addr[64]; /* "127.0.0.1:50412" (tls) or "ipc" */
} bg_tp_peer;

/* BG_ENOTFOUND if the connection is already gone. */
int bg_tp_request_peer(const bg_tp_request *req, bg_tp_peer *peer, bg_err *err);

/*
 * Sends the answer and frees req (whatever the outcome). BG_ELIMIT if len
 * exceeds reply_max (the request is dropped instead); BG_EABORTED if the
 * request had already expired (deadline, stop) and nothing is sent.
 */
int bg_tp_reply(bg_tp_request *req, const void *bytes, size_t len, bg_err *err);

/* Sends nothing (the asker will time out) and frees req. */
void bg_tp_drop(bg_tp_request *req);

/*
 * Whose connection this is, as the layer above learnt from the request's
 * signed envelope (nng 1.5.2 cannot say which certificate a TLS peer
 * showed): city, and whether it may hold connections (a roster member
 * whose envelope opened). Call it before replying. From then on:
 *   - with city_conns set, a member's connection counts against that
 *     city's share: at most city_conns per city; one more is closed once
 *     its answers are out (conns_city_limited);
 *   - a non-member's (member false), or one that already spoke for
 *     another city, is closed once its answers are out, so the refusal
 *     still reaches it (conns_not_member);
 *   - with city_conns set, at max_conns a new connection is admitted in
 *     place of a closed-to-be
 *     one or of the oldest idle one never tagged (conns_evicted): strangers
 *     holding idle connections cannot lock members out; members' tagged
 *     connections are never given up for a newcomer.
 * Closing waits for the connection's requests to end and half a second
 * more (the reply must leave first); done by the guard, so tls+tcp only
 * (on ipc tags are counted but nothing is closed).
 * BG_ENOTFOUND if the connection is gone or the request expired.
 */
int bg_tp_request_tag(bg_tp_request *req, const char *city, bool member, bg_err *err);

/* ------------------------------------------------------------ ipc probe */

typedef enum bg_tp_ipc_state {
    BG_TP_IPC_SERVING, /* a server took the connection and finished the handshake */
    BG_TP_IPC_ABSENT,  /* no socket at the path */
    BG_TP_IPC_STALE,   /* a socket nothing listens on: its server died without removing it */
    BG_TP_IPC_SILENT,  /* no handshake within the time given (a server stopped, hung or
                          overwhelmed: its backlog may be full) */
    BG_TP_IPC_FAILED,  /* anything else: not a socket, no permission, a closed handshake */
} bg_tp_ipc_state;

/*
 * Is a server listening on the ipc socket at path? Connects and completes the SP
 * handshake as a REQ client would (up to timeout_ms), then leaves. Never a bare
 * connect and close: nng 1.5.2's listener stops accepting for good once a client
 * leaves in the middle of the handshake (nanomsg/nng#1518), so a bare probe would
 * break the very server it looks at. err (may be NULL) says what was found, naming
 * path.
 */
bg_tp_ipc_state bg_tp_ipc_probe(const char *path, int timeout_ms, bg_err *err);

/* ---------------------------------------------------------------- client */

typedef struct bg_tp_client bg_tp_client;

typedef struct bg_tp_client_opts {
    const char *url;         /* the peer's "tls+tcp://host:port" or "ipc:///path" */
    const bg_tp_tls *tls;    /* required for tls+tcp (cert/key normally set); NULL for ipc */
    const char *server_name; /* the peer's city code: mandatory for tls+tcp. Its
                                certificate must carry it as DNS SAN; without a
                                name mbedTLS would accept ANY federation
                                certificate as this peer. */
    size_t recv_max;         /* largest answer accepted, bytes: mandatory */
    size_t send_max;         /* largest request the peer accepts (its recv_max):
                                mandatory. Larger calls fail before sending. */
    int reconnect_min_ms;    /* dial backoff (0: 100); doubled per connection the
                                peer closes within a second (a peer at its limit:
                                such churn can stall nng 1.5.2: see above) */
    int reconnect_max_ms;    /* (0: 5000) */
    int watchdog_ms;         /* a dial with no sign of life this long while calls
                                wait (or after a call timed out unconnected) is
                                abandoned and restarted (0: 5000) */
    int connect_ms;          /* a call not handed to a connection within this
                                fails then, however long its own timeout (0: it
                                waits its whole timeout) */
} bg_tp_client_opts;

/*
 * Opens a REQ socket and starts dialing in the background (a peer that is
 * down does not delay start-up; the first call waits up to its timeout).
 * NNG_OPT_REQ_RESENDTIME is infinite: nng never resends a request by itself
 * (an envelope resent byte for byte would be refused as a replay anyway, and
 * a slow answer must not be computed twice). A call whose connection breaks
 * fails with BG_TP_RESET instead; whether to ask again, with a new envelope,
 * is the caller's decision.
 *
 * Watchdog: nng 1.5.2 has no TLS handshake timeout, so a peer that accepts
 * TCP and never answers the handshake blocks its dialer forever. A
 * per-client thread watches for that (no connection, no dial progress in
 * nng's counters for watchdog_ms while calls wait or after a call timed out
 * unconnected) and replaces the dialer; the socket and calls in flight
 * stay. The REQ socket itself is only ever closed on that thread (closing
 * a REQ socket right after an oversize drop can deadlock in nng 1.5.2: the
 * size check before sending avoids the situation, the thread contains it).
 */
int bg_tp_client_open(bg_tp_client **out, const bg_tp_client_opts *opts, bg_err *err);

/* Why a call failed. */
typedef enum bg_tp_fail {
    BG_TP_OK = 0,
    BG_TP_TIMEOUT,     /* connected, or connecting without any error seen, but no
                          answer in time (BG_EIO) */
    BG_TP_UNREACHABLE, /* connection refused / unreachable (BG_EIO) */
    BG_TP_TLS_REFUSED, /* TLS handshake failed: a certificate was not accepted,
                          ours by the peer or the peer's by us (BG_ECRYPTO) */
    BG_TP_RESET,       /* the connection broke with the request outstanding; it
                          may or may not have been processed (BG_EIO) */
    BG_TP_TOO_LARGE,   /* request above send_max, refused before sending; or an
                          answer just above recv_max (BG_ELIMIT) - one far above
                          costs the connection and reads as BG_TP_RESET */
    BG_TP_CLOSED,      /* the client is being closed (BG_EABORTED) */
    BG_TP_INVALID,     /* bad arguments (BG_EINVAL) */
    BG_TP_NOMEM,       /* (BG_ENOMEM) */
    BG_TP_FAILED,      /* any other nng failure (BG_EIO) */
} bg_tp_fail;

/* "timeout", "unreachable", "tls-refused", ... */
const char *bg_tp_fail_name(bg_tp_fail fail);

/*
 * One request, one answer; blocks up to timeout_ms (1..BG_TP_TIMEOUT_MAX_MS)
 * in total. Thread-safe: any number of threads may call at once (each call
 * uses its own nng context). On BG_OK *answer is a new buffer of *answer_len
 * bytes (never NULL, even when empty) for the caller to release with
 * bg_tp_answer_free. fail (may be NULL) gets the kind; the return code is
 * the BG_E* noted with each kind.
 */
int bg_tp_call(bg_tp_client *cli, const void *req, size_t len, uint8_t **answer, size_t *answer_len,
               int timeout_ms, bg_tp_fail *fail, bg_err *err);

void bg_tp_answer_free(uint8_t *answer);

/*
 * New TLS material for this client (CRL refresh, own certificate rotation):
 * a new config and a new dialer; the old dialer and its connection are
 * closed, so calls outstanding on it fail with BG_TP_RESET. ipc: BG_EINVAL.
 */
int bg_tp_client_reload_tls(bg_tp_client *cli, const bg_tp_tls *tls, bg_err *err);

typedef struct bg_tp_client_stats {
    uint64_t calls, ok;
    uint64_t timeouts, unreachable, tls_refused, resets, too_large, closed, other;
    uint64_t watchdog_restarts; /* dialers replaced by the watchdog */
    uint64_t connects;          /* connections made (TLS and SP handshake done) */
    uint64_t disconnects;       /* connections lost (peer gone, reload, oversize) */
    uint64_t flaps;             /* of which closed by the peer within a second of
                                   being made: each doubles the redial delay */
    bool connected;             /* a connection is up now */
} bg_tp_client_stats;

void bg_tp_client_get_stats(bg_tp_client *cli, bg_tp_client_stats *out);

/*
 * Cancels calls in flight (they return BG_TP_CLOSED at once) and makes every
 * later call fail the same way without waiting; returns without waiting for
 * anything. For a quick stop: a caller blocked on a peer that does not answer
 * is released now instead of at its timeout. The client stays usable only for
 * bg_tp_client_get_stats and bg_tp_client_close. NULL is ignored.
 */
void bg_tp_client_abort(bg_tp_client *cli);

/*
 * Cancels calls in flight (they return BG_TP_CLOSED), waits for them to
 * return, closes the socket on the watchdog thread (bounded wait) and frees
 * cli. No thread may start a call once close has begun. NULL is ignored.
 */
void bg_tp_client_close(bg_tp_client *cli);

#endif
