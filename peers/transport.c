/*
 * transport.c - what server and client share: URL schemes, clocks, threads,
 * TLS configs, nng error text; the ipc probe. The server is in transport_server.c, the
 * client in transport_client.c.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "peers/transport_int.h"

#include "common/clock.h"

#include <nng/protocol/reqrep0/req.h>

tp_scheme
tp_url_scheme(const char *url)
{
    if (url == NULL || strlen(url) > BG_TP_URL_MAX)
        return TP_SCHEME_BAD;
    if (strncmp(url, "tls+tcp://", 10) == 0 && url[10] != '\0')
        return TP_SCHEME_TLS;
    if (strncmp(url, "ipc://", 6) == 0 && url[6] != '\0')
        return TP_SCHEME_IPC;
    return TP_SCHEME_BAD;
}

int64_t
tp_now_ms(void)
{
    return bg_clock_ms();
}

int
tp_cond_init(pthread_cond_t *c)
{
    pthread_condattr_t a;
    int rv = pthread_condattr_init(&a);
    if (rv != 0)
        return rv;
    /* Deadlines are monotonic: a wall-clock jump must not stretch a wait. */
    rv = pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    if (rv == 0)
        rv = pthread_cond_init(c, &a);
    pthread_condattr_destroy(&a);
    return rv;
}

int
tp_cond_wait_until(pthread_cond_t *c, pthread_mutex_t *m, int64_t deadline_ms)
{
    if (deadline_ms <= tp_now_ms())
        return ETIMEDOUT;
    struct timespec ts = {.tv_sec = deadline_ms / 1000, .tv_nsec = (deadline_ms % 1000) * 1000000};
    return pthread_cond_timedwait(c, m, &ts);
}

int
tp_thread_create(pthread_t *t, void *(*fn)(void *), void *arg)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rv = pthread_create(t, NULL, fn, arg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rv;
}

nng_stat *
tp_stat_scope(nng_stat *all, const char *kind, int id)
{
    if (all == NULL || id <= 0)
        return NULL;
    /* The snapshot's root holds one scope per socket, listener and dialer,
     * each with an "id" child. */
    for (nng_stat *s = nng_stat_child(all); s != NULL; s = nng_stat_next(s)) {
        if (nng_stat_type(s) != NNG_STAT_SCOPE || strcmp(nng_stat_name(s), kind) != 0)
            continue;
        for (nng_stat *c = nng_stat_child(s); c != NULL; c = nng_stat_next(c))
            if (strcmp(nng_stat_name(c), "id") == 0 && nng_stat_value(c) == (uint64_t)id)
                return s;
    }
    return NULL;
}

uint64_t
tp_stat_value(nng_stat *scope, const char *name)
{
    for (nng_stat *c = scope != NULL ? nng_stat_child(scope) : NULL; c != NULL;
         c = nng_stat_next(c))
        if (strcmp(nng_stat_name(c), name) == 0)
            return nng_stat_value(c);
    return 0;
}

int
tp_nng_err(bg_err *err, int code, int rv, const char *what)
{
    return bg_err_set(err, code, "%s: %s (nng %d)", what, nng_strerror(rv), rv);
}

int
tp_tls_config(nng_tls_config **out, nng_tls_mode mode, const bg_tp_tls *tls,
              const char *server_name, bool need_own, bg_err *err)
{
    *out = NULL;
    if (tls == NULL || tls->ca_pem == NULL || tls->ca_pem[0] == '\0')
        return bg_err_set(err, BG_EINVAL, "TLS needs the federation CA certificate");
    if ((tls->cert_pem == NULL) != (tls->key_pem == NULL))
        return bg_err_set(err, BG_EINVAL, "TLS needs both a certificate and its key, or neither");
    if (need_own && tls->cert_pem == NULL)
        return bg_err_set(err, BG_EINVAL, "a TLS server needs its own certificate and key");

    nng_tls_config *c = NULL;
    int rv = nng_tls_config_alloc(&c, mode);
    if (rv != 0)
        return tp_nng_err(err, rv == NNG_ENOMEM ? BG_ENOMEM : BG_EIO, rv, "TLS config");
    const char *crl = tls->crl_pem != NULL && tls->crl_pem[0] != '\0' ? tls->crl_pem : NULL;
    if ((rv = nng_tls_config_ca_chain(c, tls->ca_pem, crl)) != 0) {
        tp_nng_err(err, BG_ECRYPTO, rv, "CA certificate or CRL refused by mbedTLS");
        goto fail;
    }
    if (tls->cert_pem != NULL &&
        (rv = nng_tls_config_own_cert(c, tls->cert_pem, tls->key_pem, NULL)) != 0) {
        tp_nng_err(err, BG_ECRYPTO, rv, "own certificate or key refused by mbedTLS");
        goto fail;
    }
    /* Both directions: a gateway only talks to holders of federation
     * certificates, whichever side dialed. */
    if ((rv = nng_tls_config_auth_mode(c, NNG_TLS_AUTH_MODE_REQUIRED)) != 0) {
        tp_nng_err(err, BG_EIO, rv, "TLS auth mode");
        goto fail;
    }
    if (server_name != NULL && (rv = nng_tls_config_server_name(c, server_name)) != 0) {
        tp_nng_err(err, BG_EIO, rv, "TLS server name");
        goto fail;
    }
    *out = c;
    return BG_OK;
fail:
    nng_tls_config_free(c);
    return err != NULL ? err->code : BG_ECRYPTO;
}

const char *
bg_tp_fail_name(bg_tp_fail fail)
{
    switch (fail) {
    case BG_TP_OK:
        return "ok";
    case BG_TP_TIMEOUT:
        return "timeout";
    case BG_TP_UNREACHABLE:
        return "unreachable";
    case BG_TP_TLS_REFUSED:
        return "tls-refused";
    case BG_TP_RESET:
        return "reset";
    case BG_TP_TOO_LARGE:
        return "too-large";
    case BG_TP_CLOSED:
        return "closed";
    case BG_TP_INVALID:
        return "invalid";
    case BG_TP_NOMEM:
        return "out-of-memory";
    case BG_TP_FAILED:
        return "failed";
    }
    return "unknown";
}

/* ------------------------------------------------------------ ipc probe */

/* The SP handshake on a connected fd: our 8-byte header out, the server's in, within
 * deadline_ms. BG_TP_IPC_SERVING, _SILENT (no header in time) or _FAILED. */
static bg_tp_ipc_state
ipc_handshake(int fd, const char *path, int64_t deadline_ms, bg_err *err)
{
    /* 0 'S' 'P' 0, our protocol (big-endian), 0 0: what nng's ipc transport sends. */
    const uint8_t hello[8] = {0, 'S', 'P', 0, NNG_REQ0_SELF >> 8, NNG_REQ0_SELF & 0xff, 0, 0};
    uint8_t got[8];
    size_t have = 0;
    if (send(fd, hello, sizeof hello, MSG_NOSIGNAL) != (ssize_t)sizeof hello) {
        bg_err_set(err, BG_EIO, "%s: handshake: %s", path, strerror(errno));
        return BG_TP_IPC_FAILED;
    }
    while (have < sizeof got) {
        int64_t left = deadline_ms - tp_now_ms();
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int n = left > 0 ? poll(&pfd, 1, (int)left) : 0;
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0) {
            bg_err_set(err, BG_EIO, "%s: accepted, but no handshake in time", path);
            return BG_TP_IPC_SILENT;
        }
        ssize_t r = n < 0 ? -1 : recv(fd, got + have, sizeof got - have, 0);
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (r <= 0) {
            bg_err_set(err, BG_EIO, "%s: the server closed the connection during the handshake",
                       path);
            return BG_TP_IPC_FAILED;
        }
        have += (size_t)r;
    }
    if (got[0] != 0 || got[1] != 'S' || got[2] != 'P' || got[3] != 0) {
        bg_err_set(err, BG_EIO, "%s: the server there does not speak nng's SP protocol", path);
        return BG_TP_IPC_FAILED;
    }
    return BG_TP_IPC_SERVING;
}

bg_tp_ipc_state
bg_tp_ipc_probe(const char *path, int timeout_ms, bg_err *err)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    struct stat st;
    if (lstat(path, &st) != 0) {
        if (errno == ENOENT) {
            bg_err_set(err, BG_ENOTFOUND, "no socket at %s", path);
            return BG_TP_IPC_ABSENT;
        }
        bg_err_set(err, BG_EIO, "%s: %s", path, strerror(errno));
        return BG_TP_IPC_FAILED;
    }
    if (!S_ISSOCK(st.st_mode) || strlen(path) >= sizeof sa.sun_path) {
        bg_err_set(err, BG_EINVAL, "%s: not a socket, or its path is too long", path);
        return BG_TP_IPC_FAILED;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int64_t deadline = tp_now_ms() + timeout_ms;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        bg_err_set(err, BG_EIO, "socket: %s", strerror(errno));
        return BG_TP_IPC_FAILED;
    }
    bg_tp_ipc_state res = BG_TP_IPC_FAILED;
    if (connect(fd, (const struct sockaddr *)&sa, sizeof sa) == 0) {
        res = ipc_handshake(fd, path, deadline, err);
    } else if (errno == ECONNREFUSED) {
        bg_err_set(err, BG_EIO, "stale socket %s: nothing listens on it", path);
        res = BG_TP_IPC_STALE;
    } else if (errno == ENOENT) {
        bg_err_set(err, BG_ENOTFOUND, "no socket at %s", path);
        res = BG_TP_IPC_ABSENT;
    } else if (errno == EAGAIN) {
        bg_err_set(err, BG_EIO, "%s: the server's backlog is full", path);
        res = BG_TP_IPC_SILENT;
    } else {
        bg_err_set(err, BG_EIO, "%s: %s", path, strerror(errno));
    }
    close(fd);
    return res;
}
