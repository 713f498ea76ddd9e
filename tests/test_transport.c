/*
 * test_transport.c - the nng transport: real mutual TLS on loopback and ipc.
 *
 * Every test gets a scratch directory with a real federation CA, a rogue CA
 * with the same DN, and city identities made by the same code paths as
 * 'baygate ca': Guangzhou 440100 (the server), Shenzhen 440300 and Foshan
 * 440600 (good clients), Shenzhen again from the rogue CA, Jiangmen 440700
 * (expired) and Dongguan 441900 (revoked by the test that needs it).
 *
 * Ports are ephemeral, waits poll against deadlines (no fixed sleeps), and
 * nng is touched only inside test bodies: Check forks each test, and nng is
 * not fork-safe. Timings are printed for the report, never asserted beyond
 * generous bounds.
 */
#define _GNU_SOURCE /* nftw's FTW_DEPTH/FTW_PHYS */
#include <arpa/inet.h>
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

#include "certs/pki.h"
#include "peers/transport.h"

#define GZ "440100"
#define SZ "440300"
#define FS "440600"
#define JM "440700"
#define DG "441900"
#define MSG_MAX (64 * 1024)

static char scratch[PATH_MAX];

/* Every time in the tests is multiplied by this: 1 normally, 20 under
 * valgrind (TLS handshakes slow down that much), or BG_TP_TIME_SCALE.
 * Helper processes inherit it through the environment. */
static int time_scale = 1;
#define T(ms) ((ms)*time_scale)

typedef struct {
    char *cert, *key;
    size_t key_len;
} ident_t;

static bg_pki_ca *ca, *rogue;
static char *ca_pem, *crl_pem;
static ident_t gz, sz, fs, fake_sz, expired, dg;

static int64_t
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Polls cond every 2 ms until it holds or ms pass; fails the test if not. */
#define WAIT_FOR(cond, ms)                                                                         \
    do {                                                                                           \
        int64_t wait_deadline_ = now_ms() + (ms);                                                  \
        while (!(cond) && now_ms() < wait_deadline_)                                               \
            usleep(2000);                                                                          \
        ck_assert_msg((cond), "timed out after %d ms waiting for %s", (int)(ms), #cond);           \
    } while (0)

/* --- the PKI, made fresh for every test --- */

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static const char *
at(const char *name)
{
    static char bufs[4][PATH_MAX];
    static unsigned next;
    char *b = bufs[next++ % 4];
    ck_assert_int_lt(snprintf(b, PATH_MAX, "%s/%s", scratch, name), PATH_MAX);
    return b;
}

static bg_pki_ca *
make_ca(const char *sub)
{
    bg_err err = {0};
    bg_pki_ca *c = NULL;
    ck_assert_msg(bg_pki_ca_init(at(sub), NULL, 3650, &err) == BG_OK, "%s", err.msg);
    ck_assert_msg(bg_pki_ca_open(&c, at(sub), &err) == BG_OK, "%s", err.msg);
    return c;
}

static ident_t
ident(bg_pki_ca *c, const char *city, time_t nb, time_t na)
{
    bg_err err = {0};
    EVP_PKEY *key = NULL;
    X509_REQ *req = NULL;
    X509 *x = NULL;
    ck_assert_int_eq(bg_pki_key_generate(&key, &err), BG_OK);
    ck_assert_msg(bg_pki_csr_make(key, city, "City", &req, &err) == BG_OK, "%s", err.msg);
    ck_assert_msg(bg_pki_ca_issue(c, req, nb, na, &x, &err) == BG_OK, "%s", err.msg);
    ident_t id = {0};
    size_t len = 0;
    ck_assert_int_eq(bg_pki_cert_pem(x, &id.cert, &len, NULL), BG_OK);
    ck_assert_int_eq(bg_pki_key_pem(key, &id.key, &id.key_len, NULL), BG_OK);
    X509_free(x);
    X509_REQ_free(req);
    EVP_PKEY_free(key);
    return id;
}

static void
ident_free(ident_t *id)
{
    OPENSSL_free(id->cert);
    bg_pki_secret_free(id->key, id->key_len);
    memset(id, 0, sizeof *id);
}

static char *
make_crl_pem(void)
{
    X509_CRL *crl = NULL;
    char *pem = NULL;
    size_t len = 0;
    bg_err err = {0};
    ck_assert_msg(bg_pki_ca_crl(ca, time(NULL), 7 * 86400, &crl, &err) == BG_OK, "%s", err.msg);
    ck_assert_int_eq(bg_pki_crl_pem(crl, &pem, &len, NULL), BG_OK);
    X509_CRL_free(crl);
    return pem;
}

static void
setup(void)
{
    mkdir(BG_TEST_TMPDIR, 0700);
    snprintf(scratch, sizeof scratch, "%s/tp.XXXXXX", BG_TEST_TMPDIR);
    ck_assert_ptr_nonnull(mkdtemp(scratch));
    ca = make_ca("ca");
    rogue = make_ca("rogue"); /* same default name: same DN as ca */
    size_t len = 0;
    ck_assert_int_eq(bg_pki_cert_pem(bg_pki_ca_cert(ca), &ca_pem, &len, NULL), BG_OK);
    time_t now = time(NULL);
    gz = ident(ca, GZ, now - 60, now + 86400);
    sz = ident(ca, SZ, now - 60, now + 86400);
    fs = ident(ca, FS, now - 60, now + 86400);
    dg = ident(ca, DG, now - 60, now + 86400);
    fake_sz = ident(rogue, SZ, now - 60, now + 86400);
    expired = ident(ca, JM, now - 10 * 86400, now - 86400);
    crl_pem = make_crl_pem();
}

static void
teardown(void)
{
    ident_free(&gz);
    ident_free(&sz);
    ident_free(&fs);
    ident_free(&dg);
    ident_free(&fake_sz);
    ident_free(&expired);
    OPENSSL_free(ca_pem);
    OPENSSL_free(crl_pem);
    bg_pki_ca_close(ca);
    bg_pki_ca_close(rogue);
    nftw(scratch, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    ERR_clear_error();
}

static bg_tp_tls
tls_of(const ident_t *id, const char *crl)
{
    bg_tp_tls t = {id != NULL ? id->cert : NULL, id != NULL ? id->key : NULL, ca_pem, crl};
    return t;
}

/* --- a handler with knobs --- */

enum mode { ECHO, HOLD_FIRST, DROP_ALL, ASYNC_SLOW, BLOCK_FIRST, BIG_REPLY, HOLD_MARKED, TAG };

typedef struct handler_ctx {
    enum mode mode;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t threads[64];
    int nthreads;
    atomic_int handled;
    bg_tp_request *held; /* HOLD_FIRST: the request kept unanswered */
    bool entered, release, returned;
    int late_rv;     /* BLOCK_FIRST: what the late reply got */
    bg_tp_peer peer; /* of the last request */
    int peer_rv;
    int bad_replies; /* replies that did not get the expected status */
    pthread_t async; /* ASYNC_SLOW: the thread answering later */
    bool async_started;
    bg_tp_request *holds[16]; /* HOLD_MARKED: requests starting "hold", kept */
    int nholds;
} handler_ctx;

static void
hctx_init(handler_ctx *h, enum mode m)
{
    memset(h, 0, sizeof *h);
    h->mode = m;
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    h->late_rv = -1;
}

/* Handlers run on the server's threads, where a failed ck_assert would
 * unwind into the wrong stack (fatally with CK_FORK=no): they count what
 * went wrong, and the test thread asserts here. */
static void
hctx_fini(handler_ctx *h)
{
    if (h->async_started)
        pthread_join(h->async, NULL);
    pthread_mutex_lock(&h->mu);
    int bad = h->bad_replies;
    pthread_mutex_unlock(&h->mu);
    ck_assert_msg(bad == 0, "%d handler replies failed", bad);
    pthread_mutex_destroy(&h->mu);
    pthread_cond_destroy(&h->cv);
}

/* Waits (bounded) until the handler has been entered. */
static void
wait_entered(handler_ctx *h, int ms)
{
    int64_t deadline = now_ms() + ms;
    pthread_mutex_lock(&h->mu);
    while (!h->entered && now_ms() < deadline) {
        pthread_mutex_unlock(&h->mu);
        usleep(2000);
        pthread_mutex_lock(&h->mu);
    }
    bool entered = h->entered;
    pthread_mutex_unlock(&h->mu);
    ck_assert_msg(entered, "the handler was not entered within %d ms", ms);
}

static void
expect_reply(handler_ctx *h, int got, int want)
{
    if (got != want) {
        pthread_mutex_lock(&h->mu);
        h->bad_replies++;
        pthread_mutex_unlock(&h->mu);
    }
}

static void *
async_reply(void *arg)
{
    handler_ctx *h = arg;
    usleep((useconds_t)T(300) * 1000); /* the slow part of a slow handler, off the worker thread */
    pthread_mutex_lock(&h->mu);
    bg_tp_request *req = h->held;
    pthread_mutex_unlock(&h->mu);
    size_t len = 0;
    const uint8_t *data = bg_tp_request_data(req, &len);
    expect_reply(h, bg_tp_reply(req, data, len, NULL), BG_OK);
    return NULL;
}

static void
handler(void *arg, bg_tp_request *req)
{
    handler_ctx *h = arg;
    pthread_t self = pthread_self();
    pthread_mutex_lock(&h->mu);
    bool known = false;
    for (int i = 0; i < h->nthreads; i++)
        known |= pthread_equal(h->threads[i], self) != 0;
    if (!known && h->nthreads < 64)
        h->threads[h->nthreads++] = self;
    h->peer_rv = bg_tp_request_peer(req, &h->peer, NULL);
    pthread_mutex_unlock(&h->mu);
    int n = atomic_fetch_add(&h->handled, 1);

    size_t len = 0;
    const uint8_t *data = bg_tp_request_data(req, &len);
    switch (h->mode) {
    case TAG:
        /* "tag CITY member|stranger": say whose connection it is, answer. */
        if (len > 4 && len < 64 && memcmp(data, "tag ", 4) == 0) {
            char city[16] = "", role[16] = "";
            char text[64];
            memcpy(text, data, len);
            text[len] = '\0';
            if (sscanf(text, "tag %15s %15s", city, role) == 2)
                expect_reply(h, bg_tp_request_tag(req, city, strcmp(role, "member") == 0, NULL),
                             BG_OK);
        }
        break;
    case HOLD_MARKED:
        if (len >= 4 && memcmp(data, "hold", 4) == 0) {
            pthread_mutex_lock(&h->mu);
            if (h->nholds < 16) {
                h->holds[h->nholds++] = req; /* answered by the test */
                pthread_mutex_unlock(&h->mu);
                return;
            }
            pthread_mutex_unlock(&h->mu);
        }
        break;
    case HOLD_FIRST:
        if (n == 0) {
            pthread_mutex_lock(&h->mu);
            h->held = req; /* answered (too late) by the test */
            pthread_mutex_unlock(&h->mu);
            return;
        }
        break;
    case DROP_ALL:
        bg_tp_drop(req);
        return;
    case ASYNC_SLOW:
        pthread_mutex_lock(&h->mu);
        if (!h->async_started) {
            h->held = req;
            h->async_started = pthread_create(&h->async, NULL, async_reply, h) == 0;
        }
        bool started = h->held == req && h->async_started;
        h->entered = true;
        pthread_cond_broadcast(&h->cv);
        pthread_mutex_unlock(&h->mu);
        if (!started)
            expect_reply(h, bg_tp_reply(req, data, len, NULL), BG_OK);
        return;
    case BLOCK_FIRST:
        if (n == 0) {
            pthread_mutex_lock(&h->mu);
            h->entered = true;
            pthread_cond_broadcast(&h->cv);
            while (!h->release)
                pthread_cond_wait(&h->cv, &h->mu);
            pthread_mutex_unlock(&h->mu);
            int rv = bg_tp_reply(req, data, len, NULL);
            pthread_mutex_lock(&h->mu);
            h->late_rv = rv;
            h->returned = true;
            pthread_mutex_unlock(&h->mu);
            return;
        }
        break;
    case BIG_REPLY: {
        uint8_t *big = calloc(1, 2 * MSG_MAX);
        /* larger than reply_max: refused, and the request dropped */
        expect_reply(h, bg_tp_reply(req, big, 2 * MSG_MAX, NULL), BG_ELIMIT);
        free(big);
        return;
    }
    default:
        break;
    }
    expect_reply(h, bg_tp_reply(req, data, len, NULL), BG_OK);
}

/* --- servers and clients --- */

static bg_tp_server *
server_opts(bg_tp_server_opts *o, handler_ctx *h)
{
    bg_err err = {0};
    bg_tp_server *srv = NULL;
    o->handler = handler;
    o->handler_ctx = h;
    if (o->recv_max == 0)
        o->recv_max = MSG_MAX;
    if (o->reply_max == 0)
        o->reply_max = MSG_MAX;
    if (o->drain_ms == 0)
        o->drain_ms = T(5000);
    ck_assert_msg(bg_tp_server_start(&srv, o, &err) == BG_OK, "%s", err.msg);
    return srv;
}

/* Guangzhou's federation server on an ephemeral port. */
static bg_tp_server *
gz_server(handler_ctx *h, const char *crl)
{
    bg_tp_tls t = tls_of(&gz, crl);
    bg_tp_server_opts o = {.url = "tls+tcp://127.0.0.1:0", .tls = &t};
    return server_opts(&o, h);
}

static void
stop_ok(bg_tp_server *srv)
{
    bg_err err = {0};
    ck_assert_msg(bg_tp_server_stop(srv, &err) == BG_OK, "%s", err.msg);
}

/* For tests whose client closes with a request in flight: nng 1.5.2 can then
 * stall in nng_close of the server socket (nng#1543, a reaper task prepped
 * but never started; fixed upstream after 1.5.2). The server reports it and
 * leaves the socket to nng; anything else is still a failure. */
static void
stop_ok_or_nng_stall(bg_tp_server *srv)
{
    bg_err err = {0};
    int rv = bg_tp_server_stop(srv, &err);
    if (rv == BG_EIO && strstr(err.msg, "nng 1.5.2 stall") != NULL) {
        fprintf(stderr, "transport: tolerated nng 1.5.2 close stall (nng#1543)\n");
        return;
    }
    ck_assert_msg(rv == BG_OK, "%s", err.msg);
}

static bg_tp_client *
client_url(const char *url, const ident_t *id, const char *name, const char *crl)
{
    bg_err err = {0};
    bg_tp_client *cli = NULL;
    bg_tp_tls t = tls_of(id, crl);
    bg_tp_client_opts o = {.url = url,
                           .tls = &t,
                           .server_name = name,
                           .recv_max = MSG_MAX,
                           .send_max = MSG_MAX,
                           .reconnect_min_ms = T(20),
                           .reconnect_max_ms = T(200),
                           .watchdog_ms = T(300)};
    ck_assert_msg(bg_tp_client_open(&cli, &o, &err) == BG_OK, "%s", err.msg);
    return cli;
}

static bg_tp_client *
client(int port, const ident_t *id, const char *name, const char *crl)
{
    char url[64];
    snprintf(url, sizeof url, "tls+tcp://127.0.0.1:%d", port);
    return client_url(url, id, name, crl);
}

/* One call that must come back with its own bytes. */
static void
call_ok(bg_tp_client *cli, int timeout_ms)
{
    static atomic_int seq;
    char msg[64];
    int n = snprintf(msg, sizeof msg, "ping %d", atomic_fetch_add(&seq, 1));
    uint8_t *ans = NULL;
    size_t len = 0;
    bg_tp_fail fail = BG_TP_FAILED;
    bg_err err = {0};
    ck_assert_msg(bg_tp_call(cli, msg, (size_t)n, &ans, &len, timeout_ms, &fail, &err) == BG_OK,
                  "%s (%s)", err.msg, bg_tp_fail_name(fail));
    ck_assert_int_eq(fail, BG_TP_OK);
    ck_assert_uint_eq(len, (size_t)n);
    ck_assert_int_eq(memcmp(ans, msg, len), 0);
    bg_tp_answer_free(ans);
}

/* One call that must fail; returns its kind, the code and message in err. */
static bg_tp_fail
call_fails(bg_tp_client *cli, size_t len, int timeout_ms, bg_err *err)
{
    uint8_t *buf = calloc(1, len ? len : 1);
    uint8_t *ans = (uint8_t *)"untouched";
    size_t alen = 7;
    bg_tp_fail fail = BG_TP_OK;
    int rv = bg_tp_call(cli, buf, len, &ans, &alen, timeout_ms, &fail, err);
    free(buf);
    ck_assert_msg(rv != BG_OK, "call unexpectedly answered");
    ck_assert_int_eq(rv, err->code);
    ck_assert_ptr_null(ans);
    ck_assert_uint_eq(alen, 0);
    ck_assert_int_ne(fail, BG_TP_OK);
    return fail;
}

/* Calls until one succeeds (tolerating resets of connections a reload just
 * cut), within ms. */
static void
call_eventually_ok(bg_tp_client *cli, int ms)
{
    int64_t deadline = now_ms() + ms;
    for (;;) {
        uint8_t *ans = NULL;
        size_t len = 0;
        bg_tp_fail fail;
        bg_err err = {0};
        if (bg_tp_call(cli, "x", 1, &ans, &len, T(1000), &fail, &err) == BG_OK) {
            bg_tp_answer_free(ans);
            return;
        }
        ck_assert_msg(now_ms() < deadline, "never answered: %s", err.msg);
    }
}

static int
threads_now(void)
{
    DIR *d = opendir("/proc/self/task");
    int n = 0;
    for (struct dirent *e; d != NULL && (e = readdir(d)) != NULL;)
        n += e->d_name[0] != '.';
    if (d != NULL)
        closedir(d);
    return n;
}

static int
raw_tcp_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

/* A TCP listener of our own on an ephemeral loopback port. */
static int
raw_tcp_listen(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(listen(fd, 16), 0);
    socklen_t l = sizeof a;
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &l), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

/* True once the peer has closed fd (EOF or reset), within ms. */
static bool
closed_by_peer(int fd, int ms)
{
    int64_t deadline = now_ms() + ms;
    char buf[4096];
    while (now_ms() < deadline) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0)
            continue;
        ssize_t n = read(fd, buf, sizeof buf);
        if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
            return true;
    }
    return false;
}

/* --- helper processes ---
 *
 * A process whose connection the peer closes abruptly - in the middle of an
 * oversize message it sends, or right after the connection was made (a
 * server at its connection limit) - can have nng 1.5.2's reaper thread
 * stall for good; every later nng_close in that process then hangs
 * (measured here: within ~30 oversize requests, ~100-170 refusals). The
 * tests need such victims, so they run in a process of their own: this very
 * binary, re-executed fresh (never just forked: nng is not fork-safe), with
 * its material in files of the scratch directory. */

static void
write_file(const char *name, const char *data, mode_t mode)
{
    int fd = open(at(name), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    ck_assert_int_ge(fd, 0);
    size_t len = strlen(data);
    ck_assert_int_eq(write(fd, data, len), (ssize_t)len);
    close(fd);
}

static char *
read_file(const char *dir, const char *name)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    char *buf = calloc(1, 65536);
    size_t n = buf != NULL ? fread(buf, 1, 65535, f) : 0;
    fclose(f);
    (void)n;
    return buf;
}

/* Writes the PEM files a helper reads: ca, crl, and one identity. */
static void
helper_material(const ident_t *id)
{
    write_file("h-ca.pem", ca_pem, 0644);
    write_file("h-crl.pem", crl_pem, 0644);
    write_file("h-id.crt", id->cert, 0644);
    write_file("h-id.key", id->key, 0600);
}

typedef struct {
    pid_t pid;
    int to;   /* its stdin */
    int from; /* its stdout */
} helper_t;

static helper_t
helper_spawn(const char *mode, int port)
{
    char self[PATH_MAX];
    /* readlink, not /proc/self/exe itself: valgrind answers it with the
     * program it runs. */
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    ck_assert_int_gt(n, 0);
    self[n] = '\0';
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", port);
    int in[2], out[2];
    ck_assert_int_eq(pipe2(in, O_CLOEXEC), 0);
    ck_assert_int_eq(pipe2(out, O_CLOEXEC), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        /* only async-signal-safe calls until exec */
        dup2(in[0], 0);
        dup2(out[1], 1);
        execl(self, self, "--helper", mode, scratch, portstr, (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    return (helper_t){pid, in[1], out[0]};
}

/* One line from the helper within ms (without the newline). */
static bool
helper_line(helper_t *h, char *buf, size_t size, int ms)
{
    size_t len = 0;
    int64_t deadline = now_ms() + ms;
    while (len + 1 < size && now_ms() < deadline) {
        struct pollfd p = {h->from, POLLIN, 0};
        if (poll(&p, 1, 20) <= 0)
            continue;
        ssize_t n = read(h->from, buf + len, 1);
        if (n <= 0)
            break;
        if (buf[len] == '\n') {
            buf[len] = '\0';
            return true;
        }
        len++;
    }
    buf[len] = '\0';
    return false;
}

/* Closes its stdin (it exits then) and reaps it, killing it if it lingers. */
static void
helper_end(helper_t *h)
{
    close(h->to);
    close(h->from);
    int st = 0;
    int64_t deadline = now_ms() + T(5000);
    while (waitpid(h->pid, &st, WNOHANG) == 0) {
        if (now_ms() > deadline) {
            kill(h->pid, SIGKILL);
            waitpid(h->pid, &st, 0);
            break;
        }
        usleep(2000);
    }
}

/* nng's "other" errors over every listener of this process: where nng 1.5.2 counts
 * the failed handshake that stops a listener (and every client that leaves). */
static uint64_t
listeners_other(void)
{
    nng_stat *all = NULL;
    uint64_t n = 0;
    if (nng_stats_get(&all) != 0)
        return 0;
    for (nng_stat *l = nng_stat_child(all); l != NULL; l = nng_stat_next(l)) {
        if (nng_stat_type(l) != NNG_STAT_SCOPE || strcmp(nng_stat_name(l), "listener") != 0)
            continue;
        for (nng_stat *c = nng_stat_child(l); c != NULL; c = nng_stat_next(c))
            if (strcmp(nng_stat_name(c), "other") == 0)
                n += nng_stat_value(c);
    }
    nng_stats_free(all);
    return n;
}

/* This process's end of the loopback TCP connection whose other end is port; -1 if
 * there is none (yet). */
static int
socket_to_port(int port)
{
    int found = -1;
    DIR *d = opendir("/proc/self/fd");
    for (struct dirent *e; d != NULL && found < 0 && (e = readdir(d)) != NULL;) {
        int s = atoi(e->d_name);
        struct sockaddr_in peer;
        socklen_t len = sizeof peer;
        if (e->d_name[0] != '.' && s != dirfd(d) &&
            getpeername(s, (struct sockaddr *)&peer, &len) == 0 && peer.sin_family == AF_INET &&
            ntohs(peer.sin_port) == port && peer.sin_addr.s_addr == htonl(INADDR_LOOPBACK))
            found = s;
    }
    if (d != NULL)
        closedir(d);
    return found;
}

static void
helper_log(void *ctx, const char *line)
{
    (void)ctx;
    fprintf(stderr, "transport log (helper): %s\n", line);
}

static void
helper_handler(void *ctx, bg_tp_request *req)
{
    (void)ctx;
    size_t len = 0;
    const uint8_t *data = bg_tp_request_data(req, &len);
    bg_tp_reply(req, data, len, NULL);
}

/* A TCP connection to our loopback port from source address src
 * ("127.0.0.2"), made within ms; -1 if it could not be made. */
static int
tcp_connect_from(const char *src, int port, int ms)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, src, &a.sin_addr);
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        (connect(fd, (struct sockaddr *)&to, sizeof to) != 0 && errno != EINPROGRESS)) {
        close(fd);
        return -1;
    }
    struct pollfd p = {fd, POLLOUT, 0};
    int e = 0;
    socklen_t el = sizeof e;
    if (poll(&p, 1, ms) != 1 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) != 0 || e != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* The helper "silent-flood": 300 TCP connections that never speak, 3 from
 * each of 100 source addresses (127.0.1.x), held until stdin closes. */
static int
silent_flood(int port)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) { /* the test lowered its own */
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    int n = 0, failed = 0;
    for (int i = 0; i < 300 && failed < 10; i++) {
        char src[32];
        snprintf(src, sizeof src, "127.0.1.%d", 1 + i / 3);
        bool ok = tcp_connect_from(src, port, T(1000)) >= 0;
        n += ok;
        failed = ok ? 0 : failed + 1;
    }
    printf("held %d\n", n);
    fflush(stdout);
    char c;
    while (read(0, &c, 1) > 0)
        ;
    _exit(0);
}

/* The helper "ipc-echo-server": an echo server on DIR/revive.sock. It says "ready";
 * then on "stats" the times it listened anew and nng's "other" errors of its
 * listeners, on "stop" whether it stopped cleanly. It leaves by _exit, without a leak
 * check: nng 1.5.2 never frees a stopped listener's connections. */
static int
ipc_echo_server(const char *dir)
{
    char url[PATH_MAX + 16];
    snprintf(url, sizeof url, "ipc://%s/revive.sock", dir);
    bg_tp_server_opts o = {.url = url,
                           .recv_max = MSG_MAX,
                           .reply_max = MSG_MAX,
                           .handler = helper_handler,
                           .log = helper_log};
    bg_tp_server *srv = NULL;
    bg_err err = {0};
    if (bg_tp_server_start(&srv, &o, &err) != BG_OK)
        _exit(3);
    printf("ready\n");
    fflush(stdout);
    char line[64];
    while (fgets(line, sizeof line, stdin) != NULL) {
        if (strncmp(line, "stop", 4) == 0) {
            int rv = bg_tp_server_stop(srv, &err);
            printf("stopped %s\n", rv == BG_OK ? "ok" : err.msg);
            fflush(stdout);
            _exit(0);
        }
        bg_tp_server_stats st;
        bg_tp_server_get_stats(srv, &st);
        printf("revivals %llu other %llu\n", (unsigned long long)st.listener_revivals,
               (unsigned long long)listeners_other());
        fflush(stdout);
    }
    _exit(0);
}

/* The helper's side. Results go to stdout as one line; it ends with _exit,
 * never closing nng (the point is that nng may be stalled). */
static int
helper_main(const char *mode, const char *dir, const char *port)
{
    if (strcmp(mode, "silent-flood") == 0)
        return silent_flood(atoi(port));
    if (strcmp(mode, "ipc-echo-server") == 0)
        return ipc_echo_server(dir);
    char *ca_file = read_file(dir, "h-ca.pem"), *crl_file = read_file(dir, "h-crl.pem");
    char *crt = read_file(dir, "h-id.crt"), *key = read_file(dir, "h-id.key");
    if (!ca_file || !crl_file || !crt || !key)
        _exit(2);
    bg_tp_tls t = {crt, key, ca_file, crl_file};
    bg_err err = {0};
    if (strcmp(mode, "big-request") == 0) {
        /* A federation member that ignores the server's limit. */
        char url[64];
        snprintf(url, sizeof url, "tls+tcp://127.0.0.1:%s", port);
        bg_tp_client_opts o = {
            .url = url, .tls = &t, .server_name = GZ, .recv_max = MSG_MAX, .send_max = 1024 * 1024};
        bg_tp_client *cli = NULL;
        if (bg_tp_client_open(&cli, &o, &err) != BG_OK)
            _exit(3);
        uint8_t *ans = NULL;
        size_t len = 0;
        bg_tp_fail fail = BG_TP_OK;
        int rv = bg_tp_call(cli, "hi", 2, &ans, &len, T(3000), &fail, &err);
        printf("small %s\n", rv == BG_OK ? "ok" : bg_tp_fail_name(fail));
        fflush(stdout);
        static uint8_t big[256 * 1024];
        bg_tp_call(cli, big, sizeof big, &ans, &len, T(2000), &fail, &err);
        printf("big %s\n", bg_tp_fail_name(fail));
        fflush(stdout);
        _exit(0);
    }
    if (strncmp(mode, "tag ", 4) == 0 || strcmp(mode, "idle") == 0) {
        /* A client that says (through the server's TAG handler) whose
         * connection it is, or stays idle after one call; it reports the
         * first answer, then how often its connection was cut. */
        char url[64];
        snprintf(url, sizeof url, "tls+tcp://127.0.0.1:%s", port);
        bg_tp_client_opts o = {.url = url,
                               .tls = &t,
                               .server_name = GZ,
                               .recv_max = MSG_MAX,
                               .send_max = MSG_MAX,
                               .reconnect_min_ms = T(200),
                               .reconnect_max_ms = T(2000)};
        bg_tp_client *cli = NULL;
        if (bg_tp_client_open(&cli, &o, &err) != BG_OK)
            _exit(3);
        const char *msg = strcmp(mode, "idle") == 0 ? "x" : mode;
        uint8_t *ans = NULL;
        size_t len = 0;
        bg_tp_fail fail = BG_TP_OK;
        int rv = bg_tp_call(cli, msg, strlen(msg), &ans, &len, T(5000), &fail, &err);
        printf("first %s\n", rv == BG_OK ? "ok" : bg_tp_fail_name(fail));
        fflush(stdout);
        if (strcmp(mode, "idle") == 0) {
            char c;
            while (read(0, &c, 1) > 0)
                ;
            _exit(0);
        }
        usleep((useconds_t)T(1500) * 1000);
        bg_tp_client_stats cs;
        bg_tp_client_get_stats(cli, &cs);
        printf("disconnects %lu\n", (unsigned long)cs.disconnects);
        fflush(stdout);
        _exit(0);
    }
    if (strcmp(mode, "limit-client") == 0) {
        /* A client refused for the server's connection limit: its first
         * call fails, then (told "again") it calls until served. */
        char url[64];
        snprintf(url, sizeof url, "tls+tcp://127.0.0.1:%s", port);
        bg_tp_client_opts o = {.url = url,
                               .tls = &t,
                               .server_name = GZ,
                               .recv_max = MSG_MAX,
                               .send_max = MSG_MAX,
                               .reconnect_min_ms = T(20),
                               .reconnect_max_ms = T(400)};
        bg_tp_client *cli = NULL;
        if (bg_tp_client_open(&cli, &o, &err) != BG_OK)
            _exit(3);
        uint8_t *ans = NULL;
        size_t len = 0;
        bg_tp_fail fail = BG_TP_OK;
        bg_tp_call(cli, "hi", 2, &ans, &len, T(1500), &fail, &err);
        printf("first %s\n", bg_tp_fail_name(fail));
        bg_tp_client_stats cs;
        bg_tp_client_get_stats(cli, &cs);
        printf("flaps %lu\n", (unsigned long)cs.flaps);
        fflush(stdout);
        char buf[16];
        if (read(0, buf, sizeof buf) <= 0)
            _exit(0);
        int64_t deadline = now_ms() + T(10000);
        int rv = BG_EIO;
        while (rv != BG_OK && now_ms() < deadline)
            if ((rv = bg_tp_call(cli, "hi", 2, &ans, &len, T(1000), &fail, &err)) == BG_OK)
                bg_tp_answer_free(ans);
        bg_tp_client_get_stats(cli, &cs);
        fprintf(stderr,
                "transport: refused client served %lld ms after 'again' (%lu watchdog restarts)\n",
                (long long)(now_ms() - deadline + T(10000)), (unsigned long)cs.watchdog_restarts);
        printf("again %s\n", rv == BG_OK ? "ok" : err.msg);
        fflush(stdout);
        _exit(0);
    }
    if (strcmp(mode, "big-answer-server") == 0) {
        /* Answers whatever it is asked, however big. */
        bg_tp_server_opts o = {.url = "tls+tcp://127.0.0.1:0",
                               .tls = &t,
                               .recv_max = 1024 * 1024,
                               .reply_max = 1024 * 1024,
                               .handler = helper_handler};
        bg_tp_server *srv = NULL;
        if (bg_tp_server_start(&srv, &o, &err) != BG_OK)
            _exit(3);
        printf("port %d\n", bg_tp_server_port(srv));
        fflush(stdout);
        char c;
        while (read(0, &c, 1) > 0)
            ;
        _exit(0);
    }
    if (strcmp(mode, "echo-server") == 0) {
        /* An echo server. On "stats" it says how often it listened anew; on "shut
         * PORT" it shuts its end of the connection from PORT for sending, once nng has
         * accepted it. Its log goes to stderr. It leaves by _exit, without a leak
         * check: nng 1.5.2 never frees a stopped listener's connections. */
        bg_tp_server_opts o = {.url = "tls+tcp://127.0.0.1:0",
                               .tls = &t,
                               .recv_max = MSG_MAX,
                               .reply_max = MSG_MAX,
                               .handler = helper_handler,
                               .log = helper_log};
        bg_tp_server *srv = NULL;
        if (bg_tp_server_start(&srv, &o, &err) != BG_OK)
            _exit(3);
        printf("port %d\n", bg_tp_server_port(srv));
        fflush(stdout);
        char line[64];
        while (fgets(line, sizeof line, stdin) != NULL) {
            int from = 0;
            if (sscanf(line, "shut %d", &from) == 1) {
                int fd = -1;
                for (int i = 0; fd < 0 && i < 2500; i++) {
                    if ((fd = socket_to_port(from)) < 0)
                        usleep(2000);
                }
                printf("shut %s\n", fd >= 0 && shutdown(fd, SHUT_WR) == 0 ? "ok" : "failed");
            } else {
                bg_tp_server_stats st;
                bg_tp_server_get_stats(srv, &st);
                printf("revivals %llu\n", (unsigned long long)st.listener_revivals);
            }
            fflush(stdout);
        }
        _exit(0);
    }
    _exit(4);
}

/* ------------------------------------------------------------- the tests */

START_TEST(tls_echo_round_trip)
{
    /* Mutual TLS both ways, the bytes come back unchanged, the handler ran
     * on a server worker thread (not nng's, not ours), the peer address is
     * known, and the counters add up. Also: handshake + first request. */
    handler_ctx h;
    hctx_init(&h, ECHO);
    bg_tp_server *srv = gz_server(&h, crl_pem);
    int port = bg_tp_server_port(srv);
    ck_assert_int_gt(port, 0);
    char want[64];
    snprintf(want, sizeof want, "tls+tcp://127.0.0.1:%d", port);
    ck_assert_str_eq(bg_tp_server_url(srv), want);

    double first_ms = 0;
    const int rounds = 5;
    for (int i = 0; i < rounds; i++) {
        int64_t t0 = now_ms();
        bg_tp_client *cli = client(port, &sz, GZ, crl_pem);
        call_ok(cli, T(3000));
        first_ms += (double)(now_ms() - t0);
        if (i == 0) {
            /* nng tells of the new connection (ADD_POST) on its own thread, which may run
             * after the first answer is already back. */
            bg_tp_client_stats cs;
            WAIT_FOR((bg_tp_client_get_stats(cli, &cs), cs.connected), T(2000));
            ck_assert_uint_eq(cs.calls, 1);
            ck_assert_uint_eq(cs.ok, 1);
        }
        bg_tp_client_close(cli);
    }
    fprintf(stderr, "transport: TLS handshake + first request: %.1f ms (mean of %d)\n",
            first_ms / rounds, rounds);

    /* An empty request and an empty answer are messages too. */
    bg_tp_client *cli = client(port, &fs, GZ, crl_pem);
    uint8_t *ans = NULL;
    size_t len = 99;
    bg_tp_fail fail;
    ck_assert_int_eq(bg_tp_call(cli, NULL, 0, &ans, &len, T(3000), &fail, NULL), BG_OK);
    ck_assert_ptr_nonnull(ans);
    ck_assert_uint_eq(len, 0);
    bg_tp_answer_free(ans);

    pthread_mutex_lock(&h.mu);
    ck_assert_int_ge(h.nthreads, 1);
    for (int i = 0; i < h.nthreads; i++)
        ck_assert(!pthread_equal(h.threads[i], pthread_self()));
    ck_assert_int_eq(h.peer_rv, BG_OK);
    ck_assert(!h.peer.local);
    ck_assert_ptr_nonnull(strstr(h.peer.addr, "127.0.0.1:"));
    pthread_mutex_unlock(&h.mu);

    /* A send is counted when nng reports it done, which may be just after
     * the asker already has the answer. */
    bg_tp_server_stats st;
    WAIT_FOR((bg_tp_server_get_stats(srv, &st), st.replied == (uint64_t)rounds + 1), T(2000));
    ck_assert_uint_eq(st.received, rounds + 1);
    ck_assert_uint_eq(st.dropped + st.expired + st.late, 0);
    ck_assert_uint_eq(st.conns_total, rounds + 1);
    ck_assert_uint_eq(st.in_flight, 0);
    bg_tp_client_close(cli);
    stop_ok(srv);
    hctx_fini(&h);
}
END_TEST

typedef struct {
    bg_tp_client *cli;
    int calls;
} loop_arg;

static void *
call_loop(void *arg)
{
    loop_arg *a = arg;
    for (int i = 0; i < a->calls; i++)
        call_ok(a->cli, T(5000));
    return NULL;
}

START_TEST(concurrent_clients_all_answered)
{
    /* 8 clients on 8 threads, many calls each, every one answered with its
     * own bytes; handlers spread over the server's worker threads. Prints
     * round trips per second with 1 and with 8 clients. */
    handler_ctx h;
    hctx_init(&h, ECHO);
    bg_tp_server *srv = gz_server(&h, crl_pem);
    int port = bg_tp_server_port(srv);
    enum { N = 8, CALLS = 400 };
    bg_tp_client *cli[N];
    for (int i = 0; i < N; i++) {
        cli[i] = client(port, i % 2 ? &sz : &fs, GZ, crl_pem);
        call_ok(cli[i], T(3000)); /* connected, so the timing is of round trips */
    }

    int64_t t0 = now_ms();
    loop_arg one = {cli[0], 2 * CALLS};
    call_loop(&one);
    double dt1 = (double)(now_ms() - t0) / 1000.0;

    pthread_t th[N];
    loop_arg args[N];
    t0 = now_ms();
    for (int i = 0; i < N; i++) {
        args[i] = (loop_arg){cli[i], CALLS};
        ck_assert_int_eq(pthread_create(&th[i], NULL, call_loop, &args[i]), 0);
    }
    for (int i = 0; i < N; i++)
        pthread_join(th[i], NULL);
    double dt8 = (double)(now_ms() - t0) / 1000.0;
    fprintf(stderr, "transport: round trips/s over TLS: 1 client %.0f, 8 concurrent clients %.0f\n",
            2 * CALLS / (dt1 > 0 ? dt1 : 0.001), N * CALLS / (dt8 > 0 ? dt8 : 0.001));

    bg_tp_server_stats st;
    WAIT_FOR((bg_tp_server_get_stats(srv, &st), st.replied == N + 2 * CALLS + N * CALLS), T(2000));
    ck_assert_uint_eq(st.received, N + 2 * CALLS + N * CALLS);
    ck_assert_uint_eq(st.conns_open, N);
    ck_assert_int_eq(atomic_load(&h.handled), (int)st.received);
    pthread_mutex_lock(&h.mu);
    ck_assert_int_ge(h.nthreads, 2); /* more than one worker thread took part */
    ck_assert_int_le(h.nthreads, 4); /* and only the server's four */
    pthread_mutex_unlock(&h.mu);
    for (int i = 0; i < N; i++) {
        bg_tp_client_stats cs;
        bg_tp_client_get_stats(cli[i], &cs);
        ck_assert_uint_eq(cs.ok, cs.calls);
        bg_tp_client_close(cli[i]);
    }
    stop_ok(srv);
    hctx_fini(&h);
}
END_TEST

/* A socket file nobody serves, as a crashed gateway leaves behind. */
static void
make_stale_socket(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    close(fd);
}

START_TEST(ipc_round_trip_mode_and_stale_socket)
{
    /* The local face: a stale socket file is replaced, the new one is 0660
     * (or what was asked, never more), the handler learns the caller's
     * credentials, a second server on the same path and a path that is not
     * a socket are refused, and stop removes the file. */
    handler_ctx h;
    hctx_init(&h, ECHO);
    const char *path = at("gw.sock");
    make_stale_socket(path);
    char url[PATH_MAX + 8];
    snprintf(url, sizeof url, "ipc://%s", path);
    bg_tp_server_opts o = {.url = url};
    bg_tp_server *srv = server_opts(&o, &h);
    struct stat st;
    ck_assert_int_eq(lstat(path, &st), 0);
    ck_assert(S_ISSOCK(st.st_mode));
    ck_assert_uint_eq(st.st_mode & 07777, 0660);
    ck_assert_int_eq(bg_tp_server_port(srv), 0);

    bg_err err = {0};
    bg_tp_client *cli = NULL;
    bg_tp_client_opts co = {.url = url, .recv_max = MSG_MAX, .send_max = MSG_MAX};
    ck_assert_msg(bg_tp_client_open(&cli, &co, &err) == BG_OK, "%s", err.msg);
    call_ok(cli, T(3000));
    pthread_mutex_lock(&h.mu);
    ck_assert_int_eq(h.peer_rv, BG_OK);
    ck_assert(h.peer.local);
    ck_assert_uint_eq(h.peer.uid, getuid());
    ck_assert_uint_eq(h.peer.gid, getgid());
    ck_assert_int_eq(h.peer.pid, getpid());
    pthread_mutex_unlock(&h.mu);

    /* Someone serves it: refused, and the file stays theirs. */
    bg_tp_server *again = NULL;
    o.handler = handler;
    ck_assert_int_eq(bg_tp_server_start(&again, &o, &err), BG_EEXIST);
    ck_assert_ptr_nonnull(strstr(err.msg, "another process"));
    ck_assert_ptr_null(again);
    call_ok(cli, T(3000));
    ck_assert_int_eq(bg_tp_server_reload_tls(srv, NULL, &err), BG_EINVAL);

    bg_tp_client_close(cli);
    stop_ok(srv);
    ck_assert_int_ne(access(path, F_OK), 0);

    /* Not a socket: never removed. */
    FILE *f = fopen(path, "w");
    fputs("precious", f);
    fclose(f);
    ck_assert_int_eq(bg_tp_server_start(&again, &o, &err), BG_EEXIST);
    ck_assert_ptr_nonnull(strstr(err.msg, "not a socket"));
    ck_assert_int_eq(access(path, F_OK), 0);
    unlink(path);

    /* A tighter mode is kept; others never get bits. */
    o.ipc_mode = 0600;
    srv = server_opts(&o, &h);
    ck_assert_int_eq(lstat(path, &st), 0);
    ck_assert_uint_eq(st.st_mode & 07777, 0600);
    stop_ok(srv);
    o.ipc_mode = 0666;
    ck_assert_int_eq(bg_tp_server_start(&again, &o, &err), BG_EINVAL);
    hctx_fini(&h);
}
END_TEST

/* A good client is still served after whatever a test did to the server. */
static void
good_client_served(int port)
{
    bg_tp_client *good = client(port, &fs, GZ, crl_pem);
    call_ok(good, T(3000));
    bg_tp_client_close(good);
}

/* A good client is served eventually (its first dials may be cut). */
static void
call_eventually_ok_port(int port)
{
    bg_tp_client *good = client(port, &fs, GZ, crl_pem);
    call_eventually_ok(good, T(20000));
    bg_tp_client_close(good);
}

START_TEST(rogue_ca_client_refused)
{
    /* A Shenzhen certificate from a CA with the very same DN: the server's
     * mbedTLS checks the signature, refuses the handshake, and the client
     * says so with a typed error. Good clients are unaffected. */
    handler_ctx h;
    hctx_init(&h, ECHO);
    bg_tp_server *srv = gz_server(&h, crl_pem);
    int port = bg_tp_server_port(srv);
    bg_tp_client *bad = client(port, &fake_sz, GZ, NULL);
    bg_err err = {0};
    int64_t t0 = now_ms();
    ck_assert_int_eq(call_fails(bad, 4, T(500), &err), BG_TP_TLS_REFUSED);
    ck_assert_int_le(now_ms() - t0, T(500) + T(400));
    ck_assert_int_eq(err.code, BG_ECRYPTO);
    ck_assert_ptr_nonnull(strstr(err.msg, "TLS handshake refused: certificate not accepted"));
    ck_assert_ptr_nonnull(strstr(err.msg, "tls+tcp://127.0.0.1:"));
    good_client_served(port);
    bg_tp_client_stats cs;
    bg_tp_client_get_stats(bad, &cs);
    ck_assert_uint_eq(cs.tls_refused, 1);
    ck_assert(!cs.connected);
    bg_tp_client_close(bad);

    bg_tp_server_stats st;
    bg_tp_server_get_stats(srv, &st);
    ck_assert_uint_gt(st.handshake_errs, 0);
    ck_assert_uint_eq(st.received, 1);
    stop_ok(srv);
    hctx_fini(&h);
}
END_TEST

START_TEST(failure_kinds_are_per_client_and_per_server)
{
    /* Each client reads its own dialer's counters, each server its own
     * listener's, however many live in the process. (nng 1.5.2's
     * nng_stat_find_dialer/_listener return the first of their kind whatever
     * the id - nanomsg/nng#1577 - so here the healthy client and the ipc
     * server come first.) */
    handler_ctx h;
    hctx_init(&h, ECHO);
    char url[PATH_MAX + 8];
    snprintf(url, sizeof url, "ipc://%s", at("first.sock"));
    bg_tp_server_opts io = {.url = url};
    bg_tp_server *local = server_opts(&io, &h);
    bg_tp_client *lc = NULL;
    bg_err err = {0};
    bg_tp_client_opts lo = {.url = url, .recv_max = MSG_MAX, .send_max = MSG_MAX};
    ck_assert_int_eq(bg_tp_client_open(&lc, &lo, &err), BG_OK);
    call_ok(lc, T(3000));

    bg_tp_server *srv = gz_server(&h, crl_pem);
    int port = bg_tp_server_port(srv);
    bg_tp_client *good = client(port, &sz, GZ, crl_pem);
    call_ok(good, T(3000));
    bg_tp_client *rogue_cli = client(port, &fake_sz, GZ, crl_pem);
    ck_assert_int_eq(call_fails(rogue_cli, 4, T(500), &err), BG_TP_TLS_REFUSED);
    int free_port = 0;
    close(raw_tcp_listen(&free_port));
    bg_tp_client *down = client(free_port, &sz, GZ, crl_pem);
    ck_assert_int_eq(call_fails(down, 4, T(300), &err), BG_TP_UNREACHABLE);
    call_ok(good, T(3000));

    int fd = raw_tcp_connect(port);
    ck_assert_int_eq(write(fd, "GET / HTTP/1.0\r\n\r\n", 18), 18);
    ck_assert(closed_by_peer(fd, T(3000)));
    close(fd);
    bg_tp_server_stats st, lst;
    WAIT_FOR((bg_tp_server_get_stats(srv, &st), st.handshake_errs >= 2), T(2000));
    bg_tp_server_get_stats(local, &lst);
    ck_assert_uint_eq(lst.handshake_errs, 0);

    bg_tp_client_close(down);
    bg_tp_client_close(rogue_cli);
    bg_tp_client_close(good);
    bg_tp_client_close(lc);
    stop_ok(srv);
    stop_ok(local);
    hctx_fini(&h);
}
END_TEST

START_TEST(client_without_certificate_refused)
{
    /* No client certificate at all: the server shuts the handshake. */
    handler_ctx h;
    hctx_init(&h, ECHO);
    bg_tp_server *srv = gz_server(&h, crl_pem);
    int port = bg_tp_server_port(srv);
    bg_tp_client *bad = client(port, NULL, GZ, crl_pem);
    bg_err err = {0};
    ck_assert_int_eq(call_fails(bad, 4, T(500), &err), BG_TP_TLS_REFUSED);
    ck_assert_int_eq(err.code, BG_ECRYPTO);
    ck_assert_ptr_nonnull(strstr(err.msg, "TLS handshake refused"));
    bg_tp_client_close(bad);
    good_client_served(port);
    bg_tp_server_stats st;
    bg_tp_server_get_stats(srv, &st);
    ck_assert_uint_eq(st.received, 1);
    stop_ok(srv);
    hctx_fini(&h);
}
END_TEST

START_TEST(wrong_server_name_refused)
{
    /* Dialing Guangzhou's port while expecting Foshan: Guangzhou's genuine
     * federation certificate does not name 440600, so the client refuses. */
    handler_ctx h;
    hctx_init(&h, ECHO);
    bg_tp_server *srv = gz_server(&h, crl_pem);
    int port = bg_tp_server_port(srv);
    bg_tp_client *cli = client(port, &sz, FS, crl_pem);
    bg_err err = {0};
    ck_assert_int_eq(call_fails(cli, 4, T(500), &err), BG_TP_TLS_REFUSED);
    ck_assert_int_eq(err.code, BG_ECRYPTO);
    bg_tp_client_close(cli);

    /* A client must name its peer at all. */
    bg_tp_tls t = tls_of(&sz, crl_pem);
    char url[64];
    snprintf(url, sizeof url, "tls+tcp://127.0.0.1:%d", port);
    bg_tp_client_opts o = {.url = url, .tls = &t, .recv_max = 1, .send_max = 1};
    ck_assert_int_eq(bg_tp_client_open(&cli, &o, &err), BG_EINVAL);
    ck_assert_ptr_null(cli);
    ck_assert_ptr_nonnull(strstr(err.msg, "server name"));
    good_client_served(port);
    stop_ok(srv);
    hctx_fini(&h);
}
END_TEST

START_TEST(expired_client_refused)
{
    handler_ctx h;
    hctx_init(&h, ECHO);
    bg_tp_server *srv = gz_server(&h, crl_pem);
    int port = bg_tp_server_port(srv);
    bg_tp_client *old = client(port, &expired, GZ, crl_pem);
    bg_err err = {0};
    ck_assert_int_eq(call_fails(old, 4, T(500), &err), BG_TP_TLS_REFUSED);
    bg_tp_client_close(old);
    good_client_served(port);
    bg_tp_server_stats st;
    bg_tp_server_get_stats(srv, &st);
    ck_assert_uint_eq(st.received, 1);
    stop_ok(srv);
    hctx_fini(&h);
}
END_TEST

START_TEST(revoked_client_cut_by_reload)
{
    /* Dongguan is served, then revoked. reload_tls with the new CRL closes
     * every connection made under the old material (Dongguan's included) and
     * listens again on the same port; Dongguan's reconnection is refused,
     * Foshan reconnects and is served. Bad material changes nothing. */
    handler_ctx h;
    hctx_init(&h, ECHO);
    bg_tp_server *srv = gz_server(&h, crl_pem);
    int port = bg_tp_server_port(srv);
    bg_tp_client *dgc = client(port, &dg, GZ, crl_pem);
    bg_tp_client *fsc = client(port, &fs, GZ, crl_pem);
    call_ok(dgc, T(3000));
    call_ok(fsc, T(3000));

    bg_err err = {0};
    ck_assert_int_eq(bg_pki_ca_revoke(ca, DG, NULL, time(NULL), NULL, &err), BG_OK);
    char *crl2 = make_crl_pem();
    bg_tp_tls t = tls_of(&gz, crl2);

    /* Bad material first: refused before anything is touched. */
    bg_tp_tls bad = tls_of(&gz, "-----BEGIN X509 CRL-----\nnot a crl\n-----END X509 CRL-----\n");
    ck_assert_int_ne(bg_tp_server_reload_tls(srv, &bad, &err), BG_OK);
    bg_tp_tls nokey = {gz.cert, NULL, ca_pem, crl2};
    ck_assert_int_eq(bg_tp_server_reload_tls(srv, &nokey, &err), BG_EINVAL);
    call_ok(dgc, T(3000));

    int64_t t0 = now_ms();
    ck_assert_msg(bg_tp_server_reload_tls(srv, &t, &err) == BG_OK, "%s", err.msg);
    fprintf(stderr, "transport: reload_tls took %lld ms\n", (long long)(now_ms() - t0));
    ck_assert_int_eq(bg_tp_server_port(srv), port);
    /* Both clients see their connection cut. (Waiting for that also keeps
     * the next calls from racing the cut: nng 1.5.2 can leak a request sent
     * on a connection in the middle of closing.) */
    bg_tp_client_stats dgs, fss;
    WAIT_FOR((bg_tp_client_get_stats(dgc, &dgs), dgs.disconnects == 1), T(3000));
    WAIT_FOR((bg_tp_client_get_stats(fsc, &fss), fss.disconnects == 1), T(3000));

    /* The revoked city: its old connection is gone and no new one is made.
     * (A call racing the cut may see a reset, or "refused" from the moment
     * between the two listeners, first.) */
    bg_tp_fail fail = BG_TP_OK;
    for (int i = 0; i < 8 && fail != BG_TP_TLS_REFUSED; i++) {
        fail = call_fails(dgc, 4, T(500), &err);
        ck_assert_msg(fail == BG_TP_RESET || fail == BG_TP_UNREACHABLE || fail == BG_TP_TLS_REFUSED,
                      "%s: %s", bg_tp_fail_name(fail), err.msg);
    }
    ck_assert_int_eq(fail, BG_TP_TLS_REFUSED);
    call_eventually_ok(fsc, T(5000));
    good_client_served(port);

    bg_tp_server_stats st;
    bg_tp_server_get_stats(srv, &st);
    ck_assert_uint_eq(st.reloads, 1);
    ck_assert_uint_ge(st.conns_lost, 2); /* both cut by the reload */
    ck_assert_uint_gt(st.handshake_errs, 0);

    /* The client side reloads too: a new CRL, the same peer name. */
    bg_tp_tls ct = tls_of(&fs, crl2);
    ck_assert_msg(bg_tp_client_reload_tls(fsc, &ct, &err) == BG_OK, "%s", err.msg);
    call_eventually_ok(fsc, T(5000));
    bg_tp_client_close(dgc);
    bg_tp_client_close(fsc);
    stop_ok(srv);
    OPENSSL_free(crl2);
    hctx_fini(&h);
}
END_TEST

START_TEST(oversize_refused_before_sending_and_survived)
{
    /* A request above the peer's limit fails at once, nothing sent. A
     * client that ignores the limit (hostile or misconfigured) has its
     * connection dropped by the server and sees a reset; the server keeps
     * serving. An answer above reply_max is refused on the server side. */
    handler_ctx h;
    hctx_init(&h, ECHO);
    bg_tp_tls t = tls_of(&gz, crl_pem);
    bg_tp_server_opts o = {.url = "tls+tcp://127.0.0.1:0", .tls = &t, .recv_max = 4096};
    bg_tp_server *srv = server_opts(&o, &h);
    int port = bg_tp_server_port(srv);
    char url[64];
    snprintf(url, sizeof url, "tls+tcp://127.0.0.1:%d", port);

    bg_err err = {0};
    bg_tp_client *cli = NULL;
    bg_tp_tls ct = tls_of(&sz, crl_pem);
    bg_tp_client_opts co = {.url = url,
                            .tls = &ct,
                            .server_name = GZ,
                            .recv_max = MSG_MAX,
                            .send_max = 4096,
                            .reconnect_min_ms = T(20),
                            .reconnect_max_ms = T(200)};
    ck_assert_int_eq(bg_tp_client_open(&cli, &co, &err), BG_OK);
    int64_t t0 = now_ms();
    ck_assert_int_eq(call_fails(cli, 4097, T(3000), &err), BG_TP_TOO_LARGE);
    ck_assert_int_lt(now_ms() - t0, T(100));
    ck_assert_int_eq(err.code, BG_ELIMIT);
    uint8_t *ans = NULL;
    size_t alen = 0;
    uint8_t *full = calloc(1, 4096);
    ck_assert_int_eq(bg_tp_call(cli, full, 4096, &ans, &alen, T(3000), NULL, &err), BG_OK);
    ck_assert_uint_eq(alen, 4096);
    bg_tp_answer_free(ans);
    free(full);
    bg_tp_client_close(cli);

    /* Just above the limit: nng lets it in (within the SP header
     * allowance), the server drops it unhandled, the asker times out. */
    co.send_max = 8192;
    ck_assert_int_eq(bg_tp_client_open(&cli, &co, &err), BG_OK);
    ck_assert_int_eq(call_fails(cli, 4096 + 10, T(300), &err), BG_TP_TIMEOUT);
    bg_tp_client_close(cli);

    /* A hostile member (its own process) believes the server takes a
     * megabyte: its connection is dropped, it sees a reset, and the server
     * keeps serving everyone else. */
    helper_material(&sz);
    helper_t hp = helper_spawn("big-request", port);
    char line[128];
    ck_assert_msg(helper_line(&hp, line, sizeof line, T(10000)), "helper: '%s'", line);
    ck_assert_str_eq(line, "small ok");
    ck_assert_msg(helper_line(&hp, line, sizeof line, T(10000)), "helper: '%s'", line);
    ck_assert_str_eq(line, "big reset");
    helper_end(&hp);
    good_client_served(port);
    bg_tp_server_stats st;
    bg_tp_server_get_stats(srv, &st);
    ck_assert_uint_eq(st.received, 3); /* the oversize ones were never handled */
    ck_assert_uint_eq(st.oversize, 1);
    ck_assert_uint_ge(st.conns_lost, 2);
    stop_ok(srv);

    /* Too big an answer: refused by bg_tp_reply, the asker times out. */
    hctx_fini(&h);
    hctx_init(&h, BIG_REPLY);
    srv = gz_server(&h, crl_pem);
    cli = client(bg_tp_server_port(srv), &sz, GZ, crl_pem);
    ck_assert_int_eq(call_fails(cli, 4, T(500), &err), BG_TP_TIMEOUT);
    ck_assert_ptr_nonnull(strstr(err.msg, "no answer within"));
    bg_tp_server_get_stats(srv, &st);
    ck_assert_uint_eq(st.reply_too_big, 1);
    ck_assert_uint_eq(st.in_flight, 0);
    bg_tp_client_close(cli);
    stop_ok(srv);
    hctx_fini(&h);
}
END_TEST

START_TEST(answer_above_client_limit_is_a_reset)
{
    /* The asker's own receive limit holds against its peer: an answer a
     * little above recv_max is refused as too large, a far larger one drops
     * the connection inside nng and the call says reset; the client then
     * reconnects. The careless server runs in its own process (see the
     * helpers: the oversize sender is the one nng may stall). */
    helper_material(&gz);
    helper_t hp = helper_spawn("big-answer-server", 0);
    char line[128];
    ck_assert_msg(helper_line(&hp, line, sizeof line, T(10000)), "helper: '%s'", line);
    int port = 0;
    ck_assert_int_eq(sscanf(line, "port %d", &port), 1);
    char url[64];
    snprintf(url, sizeof url, "tls+tcp://127.0.0.1:%d", port);
    bg_tp_tls ct = tls_of(&sz, crl_pem);
    bg_tp_client_opts co = {.url = url,
                            .tls = &ct,
                            .server_name = GZ,
                            .recv_max = 1000,
                            .send_max = MSG_MAX,
                            .reconnect_min_ms = T(20),
                            .reconnect_max_ms = T(200)};
    bg_tp_client *cli = NULL;
    bg_err err = {0};
    ck_assert_int_eq(bg_tp_client_open(&cli, &co, &err), BG_OK);
    call_ok(cli, T(3000));
    ck_assert_int_eq(call_fails(cli, 1010, T(2000), &err), BG_TP_TOO_LARGE);
    ck_assert_int_eq(err.code, BG_ELIMIT);
    ck_assert_ptr_nonnull(strstr(err.msg, "answer of 1010 bytes"));
    ck_assert_int_eq(call_fails(cli, 5000, T(2000), &err), BG_TP_RESET);
    ck_assert_int_eq(err.code, BG_EIO);
    call_eventually_ok(cli, T(5000)); /* and it reconnects */
    bg_tp_client_close(cli);
    helper_end(&hp);
}
END_TEST

START_TEST(garbage_on_tcp_port_does_not_hurt)
{
    /* Random bytes and a stray HTTP request on the TLS port: the server
     * closes those connections and goes on serving. */
    handler_ctx h;
    hctx_init(&h, ECHO);
    bg_tp_server *srv = gz_server(&h, crl_pem);
    int port = bg_tp_server_port(srv);
    unsigned seed = 12345;
    for (int round = 0; round < 3; round++) {
        int fd = raw_tcp_connect(port);
        uint8_t junk[4096];
        for (size_t i = 0; i < sizeof junk; i++)
            junk[i] = (uint8_t)rand_r(&seed);
        if (round == 1)
            memcpy(junk, "\x16\x03\x01\xff\xff",
                   5); /* a TLS record header lying about its length */
        ssize_t n =
            round == 2 ? write(fd, "GET / HTTP/1.0\r\n\r\n", 18) : write(fd, junk, sizeof junk);
        ck_assert_int_gt(n, 0);
        if (round != 1)
            ck_assert_msg(closed_by_peer(fd, T(3000)), "server kept a garbage connection open");
        close(fd);
    }
    good_client_served(port);
    bg_tp_server_stats st;
    bg_tp_server_get_stats(srv, &st);
    ck_assert_uint_ge(st.handshake_errs, 1); /* how nng files each one varies */
    ck_assert_uint_eq(st.received, 1);
    stop_ok(srv);
    hctx_fini(&h);
}
END_TEST

START_TEST(silent_tcp_client_does_not_block_others)
{
    /* Connections that never speak TLS: nng 1.5.2 keeps them open (no
     * handshake timeout), but they do not stop the listener; fresh clients
     * handshake and are served meanwhile. */
    handler_ctx h;
    hctx_init(&h, ECHO);
    bg_tp_server *srv = gz_server(&h, crl_pem);
    int port = bg_tp_server_port(srv);
    int silent[4];
    for (int i = 0; i < 4; i++)
        silent[i] = raw_tcp_connect(port);
    for (int i = 0; i < 3; i++)
        good_client_served(port);
    bool still_open = !closed_by_peer(silent[0], T(50));
    fprintf(stderr,
            "transport: silent TCP connection %s by the server (nng 1.5.2 has no TLS "
            "handshake timeout)\n",
            still_open ? "kept open" : "closed");
    for (int i = 0; i < 4; i++)
        close(silent[i]);
    good_client_served(port);
    stop_ok(srv);
    hctx_fini(&h);
}
END_TEST

/* Log lines a server writes, kept for a test to look at. */
typedef struct {
    pthread_mutex_t mu;
    char lines[32][512];
    int n;
} log_ctx;

static void
log_keep(void *ctx, const char *line)
{
    log_ctx *l = ctx;
    pthread_mutex_lock(&l->mu);
    if (l->n < 32)
        snprintf(l->lines[l->n++], sizeof l->lines[0], "%s", line);
    pthread_mutex_unlock(&l->mu);
    fprintf(stderr, "transport log: %s\n", line);
}

static int
log_count(log_ctx *l, const char *needle)
{
    int c = 0;
    pthread_mutex_lock(&l->mu);
    for (int i = 0; i < l->n; i++)
        c += strstr(l->lines[i], needle) != NULL;
    pthread_mutex_unlock(&l->mu);
    return c;
}

/* Waits (generously) until cond(stats) holds; returns the last stats. */
static bg_tp_server_stats
stats_until(bg_tp_server *srv, bool (*cond)(const bg_tp_server_stats *), int ms)
{
    bg_tp_server_stats st;
    int64_t deadline = now_ms() + ms;
    for (;;) {
        bg_tp_server_get_stats(srv, &st);
        if (cond(&st) || now_ms() > deadline)
            return st;
        usleep(20000);
    }
}

static bool
ten_silent_cut(const bg_tp_server_stats *st)
{
    return st->source_limited + st->hs_timeouts >= 10 && st->hs_pending == 0;
}

START_TEST(silent_connections_are_bounded_and_closed)
{
    /* TCP connections that never speak TLS, ten from one address: the
     * newest beyond source_max (4) are closed at once, the others once the
     * handshake bound passes; a client from another address is served
     * meanwhile; each cause is logged once. */
    handler_ctx h;
    hctx_init(&h, ECHO);
    log_ctx lg = {.n = 0};
    pthread_mutex_init(&lg.mu, NULL);
    bg_tp_tls t = tls_of(&gz, crl_pem);
    bg_tp_server_opts o = {.url = "tls+tcp://127.0.0.1:0",
                           .tls = &t,
                           .handshake_ms = T(3000),
                           .source_max = 4,
                           .log = log_keep,
                           .log_ctx = &lg,
                           .log_interval_ms = T(600000)};
    bg_tp_server *srv = server_opts(&o, &h);
    int port = bg_tp_server_port(srv);
    int silent[10];
    for (int i = 0; i < 10; i++) {
        silent[i] = tcp_connect_from("127.0.0.2", port, T(5000));
        ck_assert_int_ge(silent[i], 0);
    }
    good_client_served(port);
    for (int i = 0; i < 10; i++)
        ck_assert_msg(closed_by_peer(silent[i], T(30000)), "silent connection %d kept open", i);
    bg_tp_server_stats st = stats_until(srv, ten_silent_cut, T(10000));
    ck_assert_uint_eq(st.source_limited, 6);
    ck_assert_uint_ge(st.hs_timeouts, 4);
    ck_assert_uint_eq(st.hs_pending, 0);
    ck_assert_uint_gt(st.fds_open, 0);
    good_client_served(port);
    ck_assert_int_eq(log_count(&lg, "beyond 4 per source address (last from 127.0.0.2)"), 1);
    ck_assert_int_eq(log_count(&lg, "did not finish the TLS handshake within"), 1);
    for (int i = 0; i < 10; i++)
        close(silent[i]);
    stop_ok(srv);
    pthread_mutex_destroy(&lg.mu);
    hctx_fini(&h);
}
END_TEST

static int
fds_now(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    for (struct dirent *e; d != NULL && (e = readdir(d)) != NULL;)
        n += e->d_name[0] != '.';
    if (d != NULL)
        closedir(d);
    return n - 1; /* the directory's own */
}

static unsigned fd_limit_for_test;

static bool
reserve_kept(const bg_tp_server_stats *st)
{
    return st->fd_reserve_cuts > 0 && st->fds_open <= fd_limit_for_test;
}

/* A federation member's TLS client of the test's own (OpenSSL, id's certificate) that
 * completes the TLS and SP handshakes as a REQ peer; its fd in *fd. */
static SSL *
raw_req_client(int port, const ident_t *id, SSL_CTX **ctxp, int *fdp)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    ck_assert_ptr_nonnull(ctx);
    BIO *b = BIO_new_mem_buf(id->cert, -1);
    X509 *x = PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);
    b = BIO_new_mem_buf(id->key, (int)id->key_len);
    EVP_PKEY *k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
    BIO_free(b);
    ck_assert_int_eq(SSL_CTX_use_certificate(ctx, x), 1);
    ck_assert_int_eq(SSL_CTX_use_PrivateKey(ctx, k), 1);
    X509_free(x);
    EVP_PKEY_free(k);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL); /* the server is not what is tested */
    int fd = tcp_connect_from("127.0.0.1", port, T(5000));
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK), 0);
    SSL *ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    ck_assert_int_eq(SSL_connect(ssl), 1);
    const uint8_t hdr[8] = {0, 'S', 'P', 0, 0x00, 0x30 /* REQ */, 0, 0};
    uint8_t back[8];
    ck_assert_int_eq(SSL_write(ssl, hdr, 8), 8);
    ck_assert_int_eq(SSL_read(ssl, back, 8), 8);
    ck_assert_int_eq(back[1], 'S');
    *ctxp = ctx;
    *fdp = fd;
    return ssl;
}

START_TEST(trickled_message_is_cut_at_the_receive_deadline)
{
    /* nng holds the length a message announces from its header on, until the message
     * is whole: a member trickling one byte a tenth of a second would hold it for good.
     * The server closes a connection whose message, begun, is not whole within
     * recv_deadline_ms, once, logs it once; an idle connection is left alone, and a
     * good client is served meanwhile. */
    signal(SIGPIPE, SIG_IGN); /* SSL_write into the connection the server cut */
    handler_ctx h;
    hctx_init(&h, ECHO);
    log_ctx lg = {.n = 0};
    pthread_mutex_init(&lg.mu, NULL);
    bg_tp_tls t = tls_of(&gz, crl_pem);
    bg_tp_server_opts o = {.url = "tls+tcp://127.0.0.1:0",
                           .tls = &t,
                           .recv_deadline_ms = T(1500),
                           .log = log_keep,
                           .log_ctx = &lg,
                           .log_interval_ms = T(600000)};
    bg_tp_server *srv = server_opts(&o, &h);
    int port = bg_tp_server_port(srv);
    bg_tp_client *idle = client(port, &fs, GZ, crl_pem);
    call_ok(idle, T(3000));

    SSL_CTX *ctx = NULL;
    int fd = -1;
    SSL *ssl = raw_req_client(port, &sz, &ctx, &fd);
    const uint8_t len[8] = {0, 0, 0, 0, 0, 0, 0xEA, 0x60}; /* 60000 bytes announced */
    ck_assert_int_eq(SSL_write(ssl, len, 8), 8);
    int64_t t0 = now_ms(), cut_ms = -1;
    for (int i = 0; i < 400 && cut_ms < 0; i++) {
        usleep(100 * 1000);
        const uint8_t one = 0x80;
        struct pollfd pf = {fd, POLLIN, 0};
        if (SSL_write(ssl, &one, 1) != 1 ||
            (poll(&pf, 1, 0) == 1 && SSL_read(ssl, (uint8_t[16]){0}, 16) <= 0))
            cut_ms = now_ms() - t0;
    }
    ck_assert_msg(cut_ms >= 0, "a trickled message was never cut");
    fprintf(stderr, "transport: a trickled message cut after %lld ms (deadline %d ms)\n",
            (long long)cut_ms, T(1500));
    ck_assert_int_ge(cut_ms, T(1500));
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    close(fd);
    ERR_clear_error();

    good_client_served(port);
    call_ok(idle, T(3000)); /* its connection was idle past the deadline: kept */
    bg_tp_client_stats cs;
    bg_tp_client_get_stats(idle, &cs);
    ck_assert_uint_eq(cs.disconnects, 0);
    bg_tp_server_stats st;
    bg_tp_server_get_stats(srv, &st);
    ck_assert_uint_eq(st.recv_deadline_cuts, 1);
    WAIT_FOR(log_count(&lg, "whose message, begun, was not whole within") == 1, T(5000));
    bg_tp_client_close(idle);
    stop_ok(srv);
    pthread_mutex_destroy(&lg.mu);
    hctx_fini(&h);
}
END_TEST

START_TEST(descriptor_reserve_is_kept_under_a_flood)
{
    /* 300 silent connections from 100 addresses (within source_max each,
     * handshake bound far away) against a process with 200 descriptors to
     * spare: the guard closes the oldest to keep fd_reserve free, the
     * process can still open files, a client is served, and all is back
     * to normal once the flood ends. */
    handler_ctx h;
    hctx_init(&h, ECHO);
    bg_tp_tls t = tls_of(&gz, crl_pem);
    bg_tp_server_opts o = {.url = "tls+tcp://127.0.0.1:0",
                           .tls = &t,
                           .handshake_ms = T(600000),
                           .source_max = 4,
                           .fd_reserve = 64};
    bg_tp_server *srv = server_opts(&o, &h);
    int port = bg_tp_server_port(srv);
    struct rlimit rl;
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    rl.rlim_cur = (rlim_t)fds_now() + 200;
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    fd_limit_for_test = (unsigned)rl.rlim_cur - 64;

    helper_t hp = helper_spawn("silent-flood", port);
    char line[128];
    ck_assert_msg(helper_line(&hp, line, sizeof line, T(60000)), "helper: '%s'", line);
    int held = 0;
    ck_assert_int_eq(sscanf(line, "held %d", &held), 1);
    ck_assert_int_gt(held, 150);
    bg_tp_server_stats st = stats_until(srv, reserve_kept, T(20000));
    ck_assert_msg(reserve_kept(&st), "reserve not kept: %llu of %llu open, %llu cut",
                  (unsigned long long)st.fds_open, (unsigned long long)st.fds_limit,
                  (unsigned long long)st.fd_reserve_cuts);
    fprintf(stderr, "transport: flood of %d: %llu cut for the reserve, %llu pending\n", held,
            (unsigned long long)st.fd_reserve_cuts, (unsigned long long)st.hs_pending);
    /* The process's own work still gets descriptors. */
    int files[32];
    for (int i = 0; i < 32; i++) {
        files[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
        ck_assert_msg(files[i] >= 0, "open %d: %s", i, strerror(errno));
    }
    for (int i = 0; i < 32; i++)
        close(files[i]);
    call_eventually_ok_port(port);
    helper_end(&hp);
    good_client_served(port);
    stop_ok(srv);
    hctx_fini(&h);
}
END_TEST

typedef struct {
    bg_tp_client *cli;
    int rv;
    bg_tp_fail fail;
} pipelined_call;

static void *
call_hold(void *arg)
{
    pipelined_call *c = arg;
    uint8_t *ans = NULL;
    size_t len = 0;
    c->rv = bg_tp_call(c->cli, "hold", 4, &ans, &len, T(8000), &c->fail, NULL);
    if (c->rv == BG_OK)
        bg_tp_answer_free(ans);
    return NULL;
}

static int
holds_now(handler_ctx *h)
{
    pthread_mutex_lock(&h->mu);
    int n = h->nholds;
    pthread_mutex_unlock(&h->mu);
    return n;
}

static bool
four_busy(const bg_tp_server_stats *st)
{
    return st->pipe_busy >= 4;
}

START_TEST(one_connection_cannot_hold_every_context)
{
    /* Six requests at once on one connection whose answers do not come:
     * with pipe_max 2 only two take contexts, the other four are dropped
     * unhandled, and another peer is served meanwhile. */
    handler_ctx h;
    hctx_init(&h, HOLD_MARKED);
    bg_tp_tls t = tls_of(&gz, crl_pem);
    bg_tp_server_opts o = {.url = "tls+tcp://127.0.0.1:0",
                           .tls = &t,
                           .contexts = 8,
                           .pipe_max = 2,
                           .request_timeout_ms = T(30000)};
    bg_tp_server *srv = server_opts(&o, &h);
    int port = bg_tp_server_port(srv);
    bg_tp_client *a = client(port, &sz, GZ, crl_pem);
    call_ok(a, T(5000)); /* connected */
    pipelined_call calls[6];
    pthread_t th[6];
    for (int i = 0; i < 6; i++) {
        calls[i] = (pipelined_call){.cli = a};
        ck_assert_int_eq(pthread_create(&th[i], NULL, call_hold, &calls[i]), 0);
    }
    bg_tp_server_stats st = stats_until(srv, four_busy, T(8000));
    ck_assert_uint_eq(st.pipe_busy, 4);
    ck_assert_int_eq(holds_now(&h), 2);
    good_client_served(port);
    pthread_mutex_lock(&h.mu);
    for (int i = 0; i < h.nholds; i++) {
        size_t len = 0;
        const uint8_t *data = bg_tp_request_data(h.holds[i], &len);
        expect_reply(&h, bg_tp_reply(h.holds[i], data, len, NULL), BG_OK);
    }
    pthread_mutex_unlock(&h.mu);
    int ok = 0, timeouts = 0;
    for (int i = 0; i < 6; i++) {
        pthread_join(th[i], NULL);
        ok += calls[i].rv == BG_OK;
        timeouts += calls[i].fail == BG_TP_TIMEOUT;
    }
    ck_assert_int_eq(ok, 2);
    ck_assert_int_eq(timeouts, 4);
    call_ok(a, T(5000)); /* the connection itself is fine */
    bg_tp_client_close(a);
    stop_ok(srv);
    hctx_fini(&h);
}
END_TEST

/* One call with these bytes that must be answered. */
static void
call_text_ok(bg_tp_client *cli, const char *text)
{
    uint8_t *ans = NULL;
    size_t len = 0;
    bg_tp_fail fail = BG_TP_FAILED;
    bg_err err = {0};
    ck_assert_msg(bg_tp_call(cli, text, strlen(text), &ans, &len, T(5000), &fail, &err) == BG_OK,
                  "%s (%s)", err.msg, bg_tp_fail_name(fail));
    bg_tp_answer_free(ans);
}

/* Runs a helper client in mode and checks its two lines. */
static void
tag_helper(const ident_t *id, const char *mode, int port)
{
    helper_material(id);
    helper_t hp = helper_spawn(mode, port);
    char line[128];
    ck_assert_msg(helper_line(&hp, line, sizeof line, T(15000)), "helper: '%s'", line);
    ck_assert_str_eq(line, "first ok"); /* the answer still reaches it */
    ck_assert_msg(helper_line(&hp, line, sizeof line, T(15000)), "helper: '%s'", line);
    unsigned long cuts = 0;
    ck_assert_int_eq(sscanf(line, "disconnects %lu", &cuts), 1);
    ck_assert_uint_ge(cuts, 1);
    helper_end(&hp);
}

static bool
three_open(const bg_tp_server_stats *st)
{
    return st->conns_open == 3;
}

START_TEST(connections_are_limited_per_city)
{
    /* The layer above tags connections with the sender of their signed
     * envelopes: a non-member's is closed once its refusal is out, a city
     * beyond its share likewise; at max_conns an idle untagged connection
     * makes room for a newcomer, a member's tagged one never does. The
     * clients that get cut run in processes of their own (see helpers). */
    handler_ctx h;
    hctx_init(&h, TAG);
    bg_tp_tls t = tls_of(&gz, crl_pem);
    bg_tp_server_opts o = {
        .url = "tls+tcp://127.0.0.1:0", .tls = &t, .max_conns = 3, .city_conns = 1};
    bg_tp_server *srv = server_opts(&o, &h);
    int port = bg_tp_server_port(srv);
    bg_tp_client *a = client(port, &sz, GZ, crl_pem);
    call_text_ok(a, "tag 440300 member");

    tag_helper(&fs, "tag 440600 stranger", port);
    tag_helper(&sz, "tag 440300 member", port); /* Shenzhen's second */
    bg_tp_server_stats st;
    bg_tp_server_get_stats(srv, &st);
    ck_assert_uint_ge(st.conns_not_member, 1);
    ck_assert_uint_ge(st.conns_city_limited, 1);

    helper_material(&fs);
    helper_t idle[2];
    char line[128];
    for (int i = 0; i < 2; i++) {
        idle[i] = helper_spawn("idle", port);
        ck_assert_msg(helper_line(&idle[i], line, sizeof line, T(15000)), "helper: '%s'", line);
        ck_assert_str_eq(line, "first ok");
    }
    st = stats_until(srv, three_open, T(10000));
    ck_assert_uint_eq(st.conns_open, 3);
    good_client_served(port); /* full: an idle untagged one makes room */
    bg_tp_server_get_stats(srv, &st);
    ck_assert_uint_ge(st.conns_evicted, 1);
    call_text_ok(a, "x");
    bg_tp_client_stats cs;
    bg_tp_client_get_stats(a, &cs);
    ck_assert_uint_eq(cs.disconnects, 0); /* the member kept its connection */
    for (int i = 0; i < 2; i++)
        helper_end(&idle[i]);
    bg_tp_client_close(a);
    stop_ok(srv);
    hctx_fini(&h);
}
END_TEST

START_TEST(silent_server_times_out_and_watchdog_recovers)
{
    /* The peer accepts TCP and never answers the TLS handshake. The call
     * fails with a timeout inside its deadline; the dialer, stuck for good
     * in nng 1.5.2, is replaced by the watchdog; once a real server listens
     * on that port, the same client is answered. */
    int port = 0;
    int lfd = raw_tcp_listen(&port);
    bg_tp_client *cli = client(port, &sz, GZ, crl_pem);
    bg_err err = {0};
    int64_t t0 = now_ms();
    ck_assert_int_eq(call_fails(cli, 4, T(400), &err), BG_TP_TIMEOUT);
    int64_t took = now_ms() - t0;
    ck_assert_int_ge(took, T(400) - 10);
    ck_assert_int_le(took, T(400) + T(300));
    ck_assert_int_eq(err.code, BG_EIO);
    char want[64];
    snprintf(want, sizeof want, "no connection within %d ms", T(400));
    ck_assert_ptr_nonnull(strstr(err.msg, want));

    /* Keep every connection it made open and silent, so only the watchdog
     * can get the client out; then free the port for a real server. */
    int held[16], nheld = 0;
    fcntl(lfd, F_SETFL, O_NONBLOCK);
    for (int fd; nheld < 16 && (fd = accept(lfd, NULL, NULL)) >= 0;)
        held[nheld++] = fd;
    ck_assert_int_ge(nheld, 1);
    close(lfd);

    handler_ctx h;
    hctx_init(&h, ECHO);
    bg_tp_tls t = tls_of(&gz, crl_pem);
    char url[64];
    snprintf(url, sizeof url, "tls+tcp://127.0.0.1:%d", port);
    bg_tp_server_opts o = {.url = url, .tls = &t};
    bg_tp_server *srv = server_opts(&o, &h);
    call_ok(cli, T(5000));
    bg_tp_client_stats cs;
    bg_tp_client_get_stats(cli, &cs);
    ck_assert_uint_ge(cs.watchdog_restarts, 1);
    ck_assert_uint_eq(cs.timeouts, 1);
    /* nng reports the new pipe on a thread of its own, which may run after the answer */
    WAIT_FOR((bg_tp_client_get_stats(cli, &cs), cs.connected), T(2000));
    bg_tp_client_close(cli);
    for (int i = 0; i < nheld; i++)
        close(held[i]);
    stop_ok(srv);
    hctx_fini(&h);
}
END_TEST

START_TEST(peer_down_is_unreachable_and_late_start_is_reached)
{
    /* Nobody listens: open does not wait, the call says "connection
     * refused" within its deadline; when the server comes up the dialer's
     * backoff finds it without any help. */
    int port = 0;
    int lfd = raw_tcp_listen(&port);
    close(lfd); /* a port that was just free */
    int64_t t0 = now_ms();
    bg_tp_client *cli = client(port, &sz, GZ, crl_pem);
    ck_assert_int_lt(now_ms() - t0, T(200));
    bg_err err = {0};
    ck_assert_int_eq(call_fails(cli, 4, T(300), &err), BG_TP_UNREACHABLE);
    ck_assert_ptr_nonnull(strstr(err.msg, "connection refused"));

    handler_ctx h;
    hctx_init(&h, ECHO);
    bg_tp_tls t = tls_of(&gz, crl_pem);
    char url[64];
    snprintf(url, sizeof url, "tls+tcp://127.0.0.1:%d", port);
    bg_tp_server_opts o = {.url = url, .tls = &t};
    bg_tp_server *srv = server_opts(&o, &h);
    call_ok(cli, T(3000));
    bg_tp_client_close(cli);
    stop_ok(srv);
    hctx_fini(&h);
}
END_TEST

typedef struct {
    bg_tp_client *cli;
    int timeout_ms;
    int rv;
    bg_tp_fail fail;
    size_t len;
    bool done;
} bg_call_arg;

static void *
call_thread(void *arg)
{
    bg_call_arg *a = arg;
    uint8_t *ans = NULL;
    a->rv = bg_tp_call(a->cli, "slow", 4, &ans, &a->len, a->timeout_ms, &a->fail, NULL);
    bg_tp_answer_free(ans);
    a->done = true;
    return NULL;
}

START_TEST(stop_finishes_in_flight_requests)
{
    /* A slow handler answering later from another thread: stop holds new
     * requests, waits for that answer to go out, and returns BG_OK; the
     * asker gets its answer. */
    handler_ctx h;
    hctx_init(&h, ASYNC_SLOW);
    bg_tp_server *srv = gz_server(&h, crl_pem);
    bg_tp_client *cli = client(bg_tp_server_port(srv), &sz, GZ, crl_pem);
    bg_call_arg a = {cli, T(5000), -1, BG_TP_OK, 0, false};
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, call_thread, &a), 0);
    wait_entered(&h, T(10000));
    int64_t t0 = now_ms();
    stop_ok(srv);
    int64_t took = now_ms() - t0;
    pthread_join(th, NULL);
    ck_assert_int_eq(a.rv, BG_OK);
    ck_assert_uint_eq(a.len, 4);
    ck_assert_int_lt(took, T(3000));
    bg_tp_client_close(cli);
    hctx_fini(&h);
}
END_TEST

START_TEST(deadline_drops_stuck_request_and_stop_is_bounded)
{
    /* A request its handler never answers is dropped at request_timeout_ms
     * (the context serves others again); the handler's late reply is
     * refused harmlessly. A handler blocked inside the handler function
     * does not hold stop beyond drain_ms: stop says BG_ELIMIT, and when the
     * handler finally replies nothing breaks. */
    handler_ctx h;
    hctx_init(&h, HOLD_FIRST);
    bg_tp_tls t = tls_of(&gz, crl_pem);
    bg_tp_server_opts o = {.url = "tls+tcp://127.0.0.1:0",
                           .tls = &t,
                           .contexts = 2,
                           .threads = 2,
                           .request_timeout_ms = T(200),
                           .drain_ms = T(200)};
    bg_tp_server *srv = server_opts(&o, &h);
    bg_tp_client *cli = client(bg_tp_server_port(srv), &sz, GZ, crl_pem);
    bg_err err = {0};
    ck_assert_int_eq(call_fails(cli, 4, T(600), &err), BG_TP_TIMEOUT);
    bg_tp_server_stats st;
    bg_tp_server_get_stats(srv, &st);
    ck_assert_uint_eq(st.expired, 1);
    ck_assert_uint_eq(st.in_flight, 0);
    for (int i = 0; i < 5; i++)
        call_ok(cli, T(3000)); /* both contexts serve again */
    pthread_mutex_lock(&h.mu);
    bg_tp_request *held = h.held;
    pthread_mutex_unlock(&h.mu);
    ck_assert_ptr_nonnull(held);
    ck_assert_int_lt(bg_tp_request_ms_left(held), 0);
    ck_assert_int_eq(bg_tp_reply(held, "late", 4, &err), BG_EABORTED);
    bg_tp_server_get_stats(srv, &st);
    ck_assert_uint_eq(st.late, 1);
    stop_ok(srv);
    hctx_fini(&h);

    /* Now a handler that blocks on the worker thread. */
    int base_threads = threads_now();
    hctx_init(&h, BLOCK_FIRST);
    o.request_timeout_ms = T(10000);
    srv = server_opts(&o, &h);
    bg_tp_client *cli2 = client(bg_tp_server_port(srv), &fs, GZ, crl_pem);
    bg_call_arg a = {cli2, T(2000), -1, BG_TP_OK, 0, false};
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, call_thread, &a), 0);
    wait_entered(&h, T(10000));
    int64_t t0 = now_ms();
    ck_assert_int_eq(bg_tp_server_stop(srv, &err), BG_ELIMIT);
    int64_t took = now_ms() - t0;
    ck_assert_int_lt(took, T(200) + T(1000));
    ck_assert_ptr_nonnull(strstr(err.msg, "1 handler(s) still running"));
    pthread_join(th, NULL);
    ck_assert_int_ne(a.rv, BG_OK); /* the asker never got an answer */
    pthread_mutex_lock(&h.mu);
    h.release = true;
    pthread_cond_broadcast(&h.cv);
    pthread_mutex_unlock(&h.mu);
    WAIT_FOR(h.returned, T(3000));
    ck_assert_int_eq(h.late_rv, BG_EABORTED);
    /* The detached worker leaves and frees the server's last state. */
    bg_tp_client_close(cli);
    bg_tp_client_close(cli2);
    WAIT_FOR(threads_now() <= base_threads, T(3000));
    hctx_fini(&h);
}
END_TEST

START_TEST(dropped_request_times_out_at_the_asker)
{
    handler_ctx h;
    hctx_init(&h, DROP_ALL);
    bg_tp_server *srv = gz_server(&h, crl_pem);
    bg_tp_client *cli = client(bg_tp_server_port(srv), &sz, GZ, crl_pem);
    bg_err err = {0};
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(call_fails(cli, 4, T(300), &err), BG_TP_TIMEOUT);
    char want[64];
    snprintf(want, sizeof want, "no answer within %d ms", T(300));
    ck_assert_ptr_nonnull(strstr(err.msg, want));
    bg_tp_server_stats st;
    bg_tp_server_get_stats(srv, &st);
    ck_assert_uint_eq(st.dropped, 3);
    ck_assert_uint_eq(st.replied, 0);
    ck_assert_uint_eq(st.in_flight, 0);
    bg_tp_client_close(cli);
    stop_ok(srv);
    hctx_fini(&h);
}
END_TEST

START_TEST(client_close_cancels_calls_in_flight)
{
    /* A call waiting for a slow answer returns "closed" as soon as the
     * client is closed from another thread. */
    handler_ctx h;
    hctx_init(&h, BLOCK_FIRST);
    bg_tp_server *srv = gz_server(&h, crl_pem);
    bg_tp_client *cli = client(bg_tp_server_port(srv), &sz, GZ, crl_pem);
    bg_call_arg a = {cli, T(10000), -1, BG_TP_OK, 0, false};
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, call_thread, &a), 0);
    wait_entered(&h, T(10000));
    int64_t t0 = now_ms();
    bg_tp_client_close(cli);
    pthread_join(th, NULL);
    ck_assert_int_lt(now_ms() - t0, T(2000));
    ck_assert_int_eq(a.rv, BG_EABORTED);
    ck_assert_int_eq(a.fail, BG_TP_CLOSED);
    pthread_mutex_lock(&h.mu);
    h.release = true;
    pthread_cond_broadcast(&h.cv);
    pthread_mutex_unlock(&h.mu);
    WAIT_FOR(h.returned, T(3000));
    stop_ok_or_nng_stall(srv);
    hctx_fini(&h);
}
END_TEST

START_TEST(client_abort_releases_calls_at_once)
{
    /* A call waiting on a peer that is not there (a stale socket: its dialer is
     * refused and redials) returns "closed" as soon as the client is aborted, not at
     * its timeout; later calls fail at once; close still works. */
    const char *path = at("dead.sock");
    make_stale_socket(path);
    char url[PATH_MAX + 8];
    snprintf(url, sizeof url, "ipc://%s", path);
    bg_err err = {0};
    bg_tp_client *cli = NULL;
    bg_tp_client_opts co = {.url = url, .recv_max = MSG_MAX, .send_max = MSG_MAX};
    ck_assert_msg(bg_tp_client_open(&cli, &co, &err) == BG_OK, "%s", err.msg);
    bg_call_arg a = {cli, T(20000), -1, BG_TP_OK, 0, false};
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, call_thread, &a), 0);
    usleep(T(300) * 1000);
    ck_assert(!a.done);
    int64_t t0 = now_ms();
    bg_tp_client_abort(cli);
    pthread_join(th, NULL);
    ck_assert_int_lt(now_ms() - t0, T(2000));
    ck_assert_int_eq(a.rv, BG_EABORTED);
    ck_assert_int_eq(a.fail, BG_TP_CLOSED);
    t0 = now_ms();
    ck_assert_int_eq(call_fails(cli, 4, T(20000), &err), BG_TP_CLOSED);
    ck_assert_int_lt(now_ms() - t0, T(500));
    bg_tp_client_abort(cli); /* twice is harmless */
    bg_tp_client_close(cli);
    bg_tp_client_abort(NULL);
}
END_TEST

START_TEST(connect_deadline_bounds_an_unconnected_call)
{
    /* connect_ms: a call that finds no connection fails then, whatever its own
     * timeout, and says why (the dial was refused). */
    const char *path = at("dead.sock");
    make_stale_socket(path);
    char url[PATH_MAX + 8];
    snprintf(url, sizeof url, "ipc://%s", path);
    bg_err err = {0};
    bg_tp_client *cli = NULL;
    bg_tp_client_opts co = {
        .url = url, .recv_max = MSG_MAX, .send_max = MSG_MAX, .connect_ms = T(300)};
    ck_assert_msg(bg_tp_client_open(&cli, &co, &err) == BG_OK, "%s", err.msg);
    int64_t t0 = now_ms();
    ck_assert_int_eq(call_fails(cli, 4, T(20000), &err), BG_TP_UNREACHABLE);
    ck_assert_int_lt(now_ms() - t0, T(3000));
    ck_assert_ptr_nonnull(strstr(err.msg, "refused"));
    bg_tp_client_close(cli);
    co.connect_ms = -1;
    ck_assert_int_eq(bg_tp_client_open(&cli, &co, &err), BG_EINVAL);
}
END_TEST

START_TEST(ipc_probe_tells_states_and_spares_the_server)
{
    /* bg_tp_ipc_probe: absent, stale, serving, not a socket. Probing a live server
     * (and a second server refused on its socket, which probes it too) leaves it
     * accepting new clients: a bare connect and close would stop nng 1.5.2's
     * listener for good (nng#1518), and the next new client would never be served. */
    const char *path = at("gw.sock");
    bg_err err = {0};
    ck_assert_int_eq(bg_tp_ipc_probe(path, T(1000), &err), BG_TP_IPC_ABSENT);
    make_stale_socket(path);
    ck_assert_int_eq(bg_tp_ipc_probe(path, T(1000), &err), BG_TP_IPC_STALE);
    ck_assert_ptr_nonnull(strstr(err.msg, "stale socket"));

    handler_ctx h;
    hctx_init(&h, ECHO);
    char url[PATH_MAX + 8];
    snprintf(url, sizeof url, "ipc://%s", path);
    bg_tp_server_opts o = {.url = url};
    bg_tp_server *srv = server_opts(&o, &h);
    for (int i = 0; i < 5; i++)
        ck_assert_msg(bg_tp_ipc_probe(path, T(2000), &err) == BG_TP_IPC_SERVING, "%s", err.msg);
    bg_tp_server *again = NULL;
    o.handler = handler;
    ck_assert_int_eq(bg_tp_server_start(&again, &o, &err), BG_EEXIST);
    for (int i = 0; i < 3; i++) {
        bg_tp_client *cli = NULL;
        bg_tp_client_opts co = {
            .url = url, .recv_max = MSG_MAX, .send_max = MSG_MAX, .connect_ms = T(3000)};
        ck_assert_msg(bg_tp_client_open(&cli, &co, &err) == BG_OK, "%s", err.msg);
        call_ok(cli, T(5000));
        bg_tp_client_close(cli);
    }
    stop_ok(srv);
    hctx_fini(&h);
    ck_assert_int_eq(bg_tp_ipc_probe(path, T(1000), &err), BG_TP_IPC_ABSENT);

    FILE *f = fopen(path, "w");
    fputs("not a socket", f);
    fclose(f);
    ck_assert_int_eq(bg_tp_ipc_probe(path, T(1000), &err), BG_TP_IPC_FAILED);
    unlink(path);
}
END_TEST

/* A bare connect and close, as a program killed in the middle of its connect does. */
static void
bare_ipc_connect(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    close(fd);
}

/* A TCP relay for one connection, between a client and the server, that shuts the
 * server's end of it for sending before a byte has passed. */
typedef struct {
    int lfd; /* where the client connects */
    int port;
    helper_t *server; /* the echo-server helper, which shuts its end */
    bool shut;        /* the server's end was shut for sending */
} wrecker;

static void
pump(int from, int to, bool *open)
{
    char buf[16384];
    ssize_t n = read(from, buf, sizeof buf);
    if (n <= 0 || send(to, buf, (size_t)n, MSG_NOSIGNAL) != n)
        *open = false;
}

static void *
wrecker_main(void *arg)
{
    wrecker *w = arg;
    int c = accept(w->lfd, NULL, NULL);
    if (c < 0)
        return NULL;
    int s = tcp_connect_from("127.0.0.1", w->port, 5000);
    struct sockaddr_in me;
    socklen_t ml = sizeof me;
    if (s >= 0 && getsockname(s, (struct sockaddr *)&me, &ml) == 0) {
        char cmd[32], line[64];
        int n = snprintf(cmd, sizeof cmd, "shut %d\n", ntohs(me.sin_port));
        w->shut = write(w->server->to, cmd, (size_t)n) == n &&
                  helper_line(w->server, line, sizeof line, 10000) && strcmp(line, "shut ok") == 0;
    }
    int fl = s >= 0 ? fcntl(s, F_GETFL) : -1;
    if (fl >= 0)
        fcntl(s, F_SETFL, fl & ~O_NONBLOCK);
    /* The server's end says EOF at once (it was shut for sending): what the client
     * sends still goes through, so that the server has something to answer. */
    bool back = true;
    for (bool open = w->shut; open;) {
        struct pollfd p[2] = {{c, POLLIN, 0}, {back ? s : -1, POLLIN, 0}};
        if (poll(p, 2, 10000) <= 0)
            break;
        if (p[0].revents)
            pump(c, s, &open);
        if (open && p[1].revents)
            pump(s, c, &back);
    }
    close(c);
    if (s >= 0)
        close(s);
    return NULL;
}

START_TEST(tls_listener_revived_when_nng_stops_accepting)
{
    /* nng 1.5.2 stops a listener for good when a connection's handshake fails with
     * NNG_ECLOSED, which a write to a socket shut for sending gives (EPIPE), and which a
     * client leaving at the wrong moment of the SP handshake can cause too: a gateway
     * would then take no new peer until a restart, while its port still accepts,
     * completes handshakes and leaves every request unread. Here one good client's
     * connection goes through a relay that shuts the server's end for sending before
     * the client says hello. The server notices the connections nng holds unread and
     * listens anew on the same port, once: a good client is served. (The server runs
     * in a helper process: nng never frees the stopped listener's connections.) */
    helper_material(&gz);
    helper_t hp = helper_spawn("echo-server", 0);
    char line[128];
    int port = 0;
    ck_assert_msg(helper_line(&hp, line, sizeof line, T(10000)), "helper: '%s'", line);
    ck_assert_int_eq(sscanf(line, "port %d", &port), 1);
    good_client_served(port);

    wrecker w = {
        .lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), .port = port, .server = &hp};
    ck_assert_int_ge(w.lfd, 0);
    struct sockaddr_in la = {.sin_family = AF_INET};
    la.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t ll = sizeof la;
    ck_assert_int_eq(bind(w.lfd, (struct sockaddr *)&la, sizeof la), 0);
    ck_assert_int_eq(listen(w.lfd, 1), 0);
    ck_assert_int_eq(getsockname(w.lfd, (struct sockaddr *)&la, &ll), 0);
    pthread_t wt;
    ck_assert_int_eq(pthread_create(&wt, NULL, wrecker_main, &w), 0);
    bg_tp_client *victim = client(ntohs(la.sin_port), &fs, GZ, crl_pem);
    ck_assert_int_eq(pthread_join(wt, NULL), 0);
    ck_assert_msg(w.shut, "the relay did not get to shut the server's end");
    bg_tp_client_close(victim);
    close(w.lfd);

    call_eventually_ok_port(port);
    ck_assert_int_eq(write(hp.to, "stats\n", 6), 6);
    ck_assert_msg(helper_line(&hp, line, sizeof line, T(5000)), "helper: '%s'", line);
    ck_assert_str_eq(line, "revivals 1");
    good_client_served(port);
    helper_end(&hp);
}
END_TEST

/* The ipc-echo-server helper's stats: how often it listened anew, and nng's "other". */
static void
ipc_helper_stats(helper_t *hp, uint64_t *revivals, uint64_t *other)
{
    char line[128];
    unsigned long long r = 0, o = 0;
    ck_assert_int_eq(write(hp->to, "stats\n", 6), 6);
    ck_assert_msg(helper_line(hp, line, sizeof line, T(5000)), "helper: '%s'", line);
    ck_assert_int_eq(sscanf(line, "revivals %llu other %llu", &r, &o), 2);
    *revivals = r;
    *other = o;
}

START_TEST(ipc_listener_revived_after_a_client_leaves_mid_handshake)
{
    /* nng 1.5.2 stops an ipc listener for good when a client closes during the SP
     * handshake (nng#1518): the gateway's local API would take no new client until a
     * restart. The server notices (a client's request left unread while nng handed
     * nothing over) and listens anew on the same path, and that client, cut, connects
     * again and is served; one connected before keeps being served. Clients that come
     * and go as usual (each one bumps the counter nng counts #1518 in too) never make it
     * listen anew: a revival closes the oldest of the stopped listeners it keeps, and
     * with them what they still serve. (The server runs in a helper process: nng never
     * frees a stopped listener's connections.) */
    const char *path = at("revive.sock");
    helper_t hp = helper_spawn("ipc-echo-server", 0);
    char line[128];
    ck_assert_msg(helper_line(&hp, line, sizeof line, T(10000)), "helper: '%s'", line);
    ck_assert_str_eq(line, "ready");
    char url[PATH_MAX + 8];
    snprintf(url, sizeof url, "ipc://%s", path);
    bg_err err = {0};
    bg_tp_client *before = NULL;
    bg_tp_client_opts co = {.url = url, .recv_max = MSG_MAX, .send_max = MSG_MAX};
    ck_assert_msg(bg_tp_client_open(&before, &co, &err) == BG_OK, "%s", err.msg);
    call_ok(before, T(5000));
    for (int i = 0; i < 20; i++) {
        bg_tp_client *cli = NULL;
        ck_assert_msg(bg_tp_client_open(&cli, &co, &err) == BG_OK, "%s", err.msg);
        call_ok(cli, T(5000));
        bg_tp_client_close(cli);
    }
    usleep((useconds_t)T(3000) * 1000); /* longer than the watch waits for a stuck request */
    uint64_t revivals = 0, other = 0, now_other = 0;
    ipc_helper_stats(&hp, &revivals, &other);
    ck_assert_uint_eq(revivals, 0);
    /* Bursts of clients that connect and leave at once: nng accepts some after they
     * left, and its first write fails (EPIPE, which it takes for NNG_ECLOSED): most
     * bursts stop the listener. A client after each is served all the same. More
     * rounds than stopped listeners kept: closing the oldest (each bound to a
     * temporary name, renamed over the path) must never take the path with it. */
    for (int round = 1; round <= 12; round++) {
        ipc_helper_stats(&hp, &revivals, &other);
        for (int i = 0; i < 16; i++)
            bare_ipc_connect(path);
        WAIT_FOR((ipc_helper_stats(&hp, &revivals, &now_other), now_other > other), T(5000));
        bg_tp_client *cli = NULL;
        ck_assert_msg(bg_tp_client_open(&cli, &co, &err) == BG_OK, "%s", err.msg);
        call_eventually_ok(cli, T(15000));
        bg_tp_client_close(cli);
    }
    ipc_helper_stats(&hp, &revivals, &other);
    fprintf(stderr, "transport: ipc: 12 bursts stopped the listener %llu times\n",
            (unsigned long long)revivals);
    ck_assert_uint_ge(revivals, 9);
    ck_assert_uint_le(revivals, 12);
    call_ok(before, T(5000));
    struct stat sst;
    ck_assert_int_eq(stat(path, &sst), 0);
    ck_assert_uint_eq(sst.st_mode & 0777, 0660); /* the mode the server was given */
    bg_tp_client_close(before);
    ck_assert_int_eq(write(hp.to, "stop\n", 5), 5);
    ck_assert_msg(helper_line(&hp, line, sizeof line, T(20000)), "helper: '%s'", line);
    ck_assert_str_eq(line, "stopped ok");
    helper_end(&hp);
    /* Nothing left behind: not the socket, not a temporary name. */
    ck_assert_int_ne(stat(path, &sst), 0);
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    *strrchr(dir, '/') = '\0';
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        ck_assert_msg(strncmp(e->d_name, ".ipc-", 5) != 0, "left behind: %s", e->d_name);
    closedir(d);
}
END_TEST

START_TEST(connection_limit_enforced)
{
    /* max_conns bounds open connections: a client beyond it is closed right
     * after its handshake, cannot get answers, and redials more and more
     * slowly; once a place frees up it is served. The refused client runs in
     * its own process: a connection its peer closes right after making it
     * can stall nng 1.5.2's reaper in the refused process (see helpers). */
    handler_ctx h;
    hctx_init(&h, ECHO);
    bg_tp_tls t = tls_of(&gz, crl_pem);
    bg_tp_server_opts o = {.url = "tls+tcp://127.0.0.1:0", .tls = &t, .max_conns = 2};
    bg_tp_server *srv = server_opts(&o, &h);
    int port = bg_tp_server_port(srv);
    bg_tp_client *a = client(port, &sz, GZ, crl_pem);
    bg_tp_client *b = client(port, &fs, GZ, crl_pem);
    call_ok(a, T(3000));
    call_ok(b, T(3000));

    helper_material(&dg);
    helper_t hp = helper_spawn("limit-client", port);
    char line[512];
    ck_assert_msg(helper_line(&hp, line, sizeof line, T(10000)), "helper: '%s'", line);
    ck_assert_msg(strcmp(line, "first timeout") == 0 || strcmp(line, "first reset") == 0,
                  "helper: '%s'", line);
    ck_assert_msg(helper_line(&hp, line, sizeof line, T(10000)), "helper: '%s'", line);
    unsigned long flaps = 0;
    ck_assert_int_eq(sscanf(line, "flaps %lu", &flaps), 1);
    bg_tp_server_stats st;
    bg_tp_server_get_stats(srv, &st);
    ck_assert_uint_eq(st.conns_open, 2);
    ck_assert_uint_ge(st.conns_refused, 1);
    /* Redials back off (nng's own backoff when the refusal reached the
     * client as a failed dial, ours when as a connection that flapped):
     * far fewer refusals than the ~75 that 20 ms redials would make. */
    ck_assert_uint_le(st.conns_refused, 20);
    fprintf(stderr, "transport: refused client: %llu refusals in 1.5 s, %lu seen as flaps\n",
            (unsigned long long)st.conns_refused, flaps);

    bg_tp_client_close(a); /* a place frees up */
    ck_assert_int_eq(write(hp.to, "again\n", 6), 6);
    ck_assert_msg(helper_line(&hp, line, sizeof line, T(15000)), "helper: '%s'", line);
    ck_assert_str_eq(line, "again ok");
    helper_end(&hp);
    bg_tp_client_close(b);
    stop_ok(srv);
    hctx_fini(&h);
}
END_TEST

START_TEST(options_are_checked)
{
    /* Refused before anything starts: plain tcp, TLS without material, ipc
     * with TLS, no limits, a mode granting others, bad timeouts. */
    handler_ctx h;
    hctx_init(&h, ECHO);
    bg_err err = {0};
    bg_tp_server *srv = NULL;
    bg_tp_tls t = tls_of(&gz, crl_pem);
    bg_tp_server_opts bad[] = {
        {.url = "tcp://127.0.0.1:0", .tls = &t, .recv_max = 1, .reply_max = 1},
        {.url = "tls+tcp://127.0.0.1:0", .recv_max = 1, .reply_max = 1},
        {.url = "ipc:///tmp/x.sock", .tls = &t, .recv_max = 1, .reply_max = 1},
        {.url = "tls+tcp://127.0.0.1:0", .tls = &t, .recv_max = 0, .reply_max = 1},
        {.url = "tls+tcp://127.0.0.1:0", .tls = &t, .recv_max = 1, .reply_max = 0},
        {.url = "ipc:///tmp/x.sock", .recv_max = 1, .reply_max = 1, .ipc_mode = 0664},
        {.url = "tls+tcp://127.0.0.1:0",
         .tls = &t,
         .recv_max = 1,
         .reply_max = 1,
         .request_timeout_ms = -1},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        bad[i].handler = handler;
        ck_assert_msg(bg_tp_server_start(&srv, &bad[i], &err) == BG_EINVAL, "case %zu", i);
        ck_assert_ptr_null(srv);
    }
    bg_tp_tls nocert = tls_of(NULL, crl_pem);
    bg_tp_server_opts o = {.url = "tls+tcp://127.0.0.1:0",
                           .tls = &nocert,
                           .recv_max = 1,
                           .reply_max = 1,
                           .handler = handler};
    ck_assert_int_eq(bg_tp_server_start(&srv, &o, &err), BG_EINVAL);
    bg_tp_tls garbage = {gz.cert, gz.key, "not a certificate", NULL};
    o.tls = &garbage;
    ck_assert_int_eq(bg_tp_server_start(&srv, &o, &err), BG_ECRYPTO);

    bg_tp_client *cli = NULL;
    bg_tp_client_opts co[] = {
        {.url = "tcp://127.0.0.1:1", .recv_max = 1, .send_max = 1},
        {.url = "tls+tcp://127.0.0.1:1", .server_name = GZ, .recv_max = 1, .send_max = 1},
        {.url = "tls+tcp://127.0.0.1:1", .tls = &t, .server_name = GZ, .send_max = 1},
        {.url = "tls+tcp://127.0.0.1:1", .tls = &t, .server_name = GZ, .recv_max = 1},
        {.url = "ipc:///tmp/x.sock", .tls = &t, .recv_max = 1, .send_max = 1},
    };
    for (size_t i = 0; i < sizeof co / sizeof co[0]; i++) {
        ck_assert_msg(bg_tp_client_open(&cli, &co[i], &err) == BG_EINVAL, "case %zu", i);
        ck_assert_ptr_null(cli);
    }
    /* Calls: no timeout, an absurd one, no answer pointer. */
    bg_tp_client_opts ok = {
        .url = "tls+tcp://127.0.0.1:1", .tls = &t, .server_name = GZ, .recv_max = 8, .send_max = 8};
    ck_assert_int_eq(bg_tp_client_open(&cli, &ok, &err), BG_OK);
    uint8_t *ans;
    size_t len;
    bg_tp_fail f;
    ck_assert_int_eq(bg_tp_call(cli, "x", 1, &ans, &len, 0, &f, &err), BG_EINVAL);
    ck_assert_int_eq(f, BG_TP_INVALID);
    ck_assert_int_eq(bg_tp_call(cli, "x", 1, &ans, &len, BG_TP_TIMEOUT_MAX_MS + 1, &f, &err),
                     BG_EINVAL);
    ck_assert_int_eq(bg_tp_call(cli, "x", 1, NULL, &len, 100, &f, &err), BG_EINVAL);
    ck_assert_int_eq(bg_tp_call(cli, NULL, 1, &ans, &len, 100, &f, &err), BG_EINVAL);
    ck_assert_str_eq(bg_tp_fail_name(BG_TP_TLS_REFUSED), "tls-refused");
    bg_tp_client_close(cli);
    bg_tp_client_close(NULL);
    ck_assert_int_eq(bg_tp_server_stop(NULL, NULL), BG_OK);
    hctx_fini(&h);
}
END_TEST

/* One test case per test, so CK_RUN_CASE=<name> runs one alone. */
static void
add(Suite *s, const char *name, const TTest *test)
{
    TCase *tc = tcase_create(name);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60 * time_scale);
    tcase_add_test(tc, test);
    suite_add_tcase(s, tc);
}

#define ADD(s, t) add((s), #t, t)

static Suite *
transport_suite(void)
{
    Suite *s = suite_create("transport");
    ADD(s, tls_echo_round_trip);
    ADD(s, concurrent_clients_all_answered);
    ADD(s, ipc_round_trip_mode_and_stale_socket);
    ADD(s, rogue_ca_client_refused);
    ADD(s, failure_kinds_are_per_client_and_per_server);
    ADD(s, client_without_certificate_refused);
    ADD(s, wrong_server_name_refused);
    ADD(s, expired_client_refused);
    ADD(s, revoked_client_cut_by_reload);
    ADD(s, oversize_refused_before_sending_and_survived);
    ADD(s, answer_above_client_limit_is_a_reset);
    ADD(s, garbage_on_tcp_port_does_not_hurt);
    ADD(s, silent_tcp_client_does_not_block_others);
    ADD(s, silent_connections_are_bounded_and_closed);
    ADD(s, descriptor_reserve_is_kept_under_a_flood);
    ADD(s, trickled_message_is_cut_at_the_receive_deadline);
    ADD(s, one_connection_cannot_hold_every_context);
    ADD(s, connections_are_limited_per_city);
    ADD(s, silent_server_times_out_and_watchdog_recovers);
    ADD(s, peer_down_is_unreachable_and_late_start_is_reached);
    ADD(s, stop_finishes_in_flight_requests);
    ADD(s, deadline_drops_stuck_request_and_stop_is_bounded);
    ADD(s, dropped_request_times_out_at_the_asker);
    ADD(s, client_close_cancels_calls_in_flight);
    ADD(s, client_abort_releases_calls_at_once);
    ADD(s, connect_deadline_bounds_an_unconnected_call);
    ADD(s, ipc_probe_tells_states_and_spares_the_server);
    ADD(s, ipc_listener_revived_after_a_client_leaves_mid_handshake);
    ADD(s, tls_listener_revived_when_nng_stops_accepting);
    ADD(s, connection_limit_enforced);
    ADD(s, options_are_checked);
    return s;
}

int
main(int argc, char **argv)
{
    const char *scale = getenv("BG_TP_TIME_SCALE");
    time_scale = scale != NULL && atoi(scale) > 0 ? atoi(scale) : RUNNING_ON_VALGRIND ? 20 : 1;
    if (argc == 5 && strcmp(argv[1], "--helper") == 0)
        return helper_main(argv[2], argv[3], argv[4]);
    char buf[16];
    snprintf(buf, sizeof buf, "%d", time_scale);
    setenv("BG_TP_TIME_SCALE", buf, 1);
    SRunner *sr = srunner_create(transport_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    /* With CK_FORK=no the tests ran here: let nng's threads go, so valgrind
     * sees a clean exit (a no-op when nng was never used in this process).
     * Not between tests: nng_fini while nng still reaps a closed socket's
     * connections can trip over itself. */
    nng_fini();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
