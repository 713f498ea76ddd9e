/*
 * fed_attack.c - a small hostile client for the federation integration test
 * (tests/federation_test.sh). Test-only: never installed, never linked into
 * baygate.
 *
 *   fed_attack freeport
 *   fed_attack ping --key K --cert C --ca CA --crl CRL --roster R --from CITY --to CITY
 *                   --url URL [--no-client-cert] [--server-name N] [--mutate CASE]
 *                   [--timeout-ms N]
 *   fed_attack psi --key K --cert C --ca CA --crl CRL --roster R --from CITY --to CITY
 *                  --url URL --list L --purpose P --case CASE [--auth-ref HEX]
 *                  [--items N] [--query-list L] [--query-purpose P] [--timeout-ms N]
 *   fed_attack relay --key K --cert C --ca CA --crl CRL --roster R --from CITY --to CITY
 *                    --url URL [--roster-file F] [--crl-file F] [--roster-serial N]
 *                    [--crl-number N] [--timeout-ms N]
 *   fed_attack raw-garbage --host H --port P [--bytes N]
 *   fed_attack stall --host H --port P --seconds S [--conns N] [--sources K]
 *   fed_attack flood --key K --cert C --ca CA --crl CRL --roster R --from CITY --to CITY
 *                    --url URL [--conns N] [--seconds S]
 *
 * Each subcommand prints ONE machine-readable result line on stdout (details
 * go to stderr) and exits 0 if it ran, 2 on a usage or setup error:
 *   freeport      <port>
 *   ping          answer ok | answer refused <reason-name> <code> |
 *                 answer bad <reason-name> | answer not-pong | timeout |
 *                 transport <fail-name> | replay-first <outcome...>
 *   psi           answer ok <n-elements> | answer refused <code> | answer bad <what> |
 *                 timeout | transport <fail-name> | snapshot <any of these>
 *   relay         answer ok roster <serial> crl <number> [+roster] [+crl] [roster-refused]
 *                 [crl-refused] | answer refused <code> | answer bad <what> | timeout |
 *                 transport <fail-name>
 *   raw-garbage   sent <n>
 *   stall         connected <n>   (flushed at once), then "closed <c> cut by the
 *                 gateway" when done (c of them were closed by the gateway)
 *   flood         flood sent <n> ok <a> rate-limited <r> other <o>
 *
 * stall makes up to 4096 connections (raising its own descriptor limit),
 * from K loopback source addresses 127.0.1.1.. in turn (--sources, default:
 * from the default address), each connect given up after 2 s.
 *
 * flood sends good pings (each sealed afresh) as fast as the answers come, round robin
 * over --conns connections (at most 16), for --seconds, and counts the answers: ok,
 * refused with the gateway's rate code (117), anything else.
 *
 * ping builds a signed Ping envelope (body type 16) like the daemon does,
 * optionally mutated, sends it with bg_tp_call and opens the answer with a
 * verifier of its own (bg_env_open_answer: signed by --to, bound to our
 * nonce). Mutations:
 *   none             a good ping
 *   flip-body        a bit of the Envelope's body flipped after signing
 *   flip-signature   a bit of the signature flipped
 *   replay           the same bytes twice; the second outcome is reported
 *   wrong-recipient  addressed to another city than --to
 *   stale / future   issued_at one hour in the past / in the future
 *   claim-sender=C   the Envelope says sender C, signed with --key/--cert
 *   oversize         raw bytes just above the peer's limit (the roster's
 *                    max_message_bytes), sent by a client allowed to send them
 *   garbage          random bytes (first byte an invalid protobuf tag, so the
 *                    outcome is deterministic) instead of an envelope
 *
 * relay plays a peer handing on artefacts (gateway/daemon/relay.c answers): ONE
 * signed Artefacts offer (body type 64) carrying the bytes of --roster-file and
 * --crl-file as they are (no check of ours: forged, older or garbage bytes are the
 * point) and claiming --roster-serial and --crl-number (default 0: the answerer then
 * hands back what it holds). The answer's numbers are printed, "+roster"/"+crl" when it
 * carried artefacts, and "roster-refused"/"crl-refused" with the reasons on stderr.
 *
 * psi plays a hostile PSI asker (psi_answer.c answers). It first fetches chunk 0
 * of the snapshot of --list with a real SnapshotRequest (signed like the
 * daemon's, --purpose and --auth-ref in the envelope) to learn the list's
 * current (generation, epoch); if that is refused it prints "snapshot <outcome>".
 * Then it sends ONE signed request built per CASE and opens the answer
 * (signed by --to, bound to our nonce). "answer ok N" means a PsiAnswer for
 * our batch id and chunk with N elements, every one a valid point; "answer
 * refused C" an ErrorAnswer with code C (message on stderr). The elements
 * sent (the first and, where there is one, the hostile one at index 1) are
 * written to stderr in hex, so a test can look for them in the answerer's log.
 * By default a query has 4 random valid points (--items N), membership mode,
 * one chunk, batch_items = items, the fetched generation and epoch, --list
 * (or --query-list) and --purpose (or --query-purpose). Cases:
 *   good                  the query as above
 *   identity              element 1 is the identity (32 zero bytes)
 *   noncanonical          element 1 is p + 1 (2^255 - 18): an even encoding >= the
 *                         field prime, never canonical
 *   top-bit               element 1 is a valid point with bit 255 set
 *   not-a-point           element 1 is random bytes in canonical field form (below
 *                         2^255, even) that do not decode to a point
 *   short                 elements of 4*32 - 5 bytes (not a multiple of 32)
 *   empty                 no elements (batch_items 0)
 *   stale-epoch           epoch - 1
 *   future-epoch          epoch + 1 (never published)
 *   wrong-generation      generation + 1
 *   unknown-list          query list "no-such-list" (unless --query-list)
 *   purpose-not-allowed   query purpose "marketing" (unless --query-purpose); the
 *                         snapshot is fetched with --purpose
 *   no-auth               the query carries no authorisation reference (the
 *                         snapshot is fetched with --auth-ref)
 *   over-quota            quota_items_per_day + 1 items (the roster's permission
 *                         --from -> --to), in one message
 *   count-good            count mode, min_count_batch items (or --items)
 *   count-small           count mode, min_count_batch - 1 items
 *   count-multichunk      count mode, chunk 0 of 2, batch_items = 2 * items
 *   huge-batch-items      membership, one chunk, batch_items = 2^31
 *   huge-batch-items-count  the same in count mode
 *   chunk-index-out-of-range  chunk 2 of 2
 *   bad-mode              mode 7
 *   graded-plain-list     graded mode on --list (a list without payloads)
 *   bad-batch-id          a batch_id of 15 bytes
 *   garbage-body          an 8-byte PsiQuery body that does not parse
 *   oversize-elements     valid points making the sealed request 4 KiB larger than
 *                         the roster's max_message_bytes (sent by a client allowed
 *                         to send it; the answerer's transport takes at most that)
 *   near-max-elements     as many valid points as keep the sealed request 64 bytes
 *                         or more below max_message_bytes (room for the answer's
 *                         extra bytes; more elements than a daemon puts in a chunk)
 *   exact-max-elements    the same, the request made exactly max_message_bytes long
 *                         with an authorisation reference as filler (the answer
 *                         echoes it and is a few bytes longer than the request)
 *   snapshot-chunk-out-of-range  a SnapshotRequest for the current epoch's full
 *                         stream, chunk count + 1000, instead of a query
 *   snapshot-stale        a SnapshotRequest for chunk 1 of epoch + 1
 *   answer-fetch          body type 36 (in the PSI range, served by nothing) with 24 bytes
 * The snapshot-* and answer-fetch cases print "answer ok <chunk_count>" for a
 * SnapshotChunk.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/x509.h>
#include <sodium.h>

#include "certs/pki.h"
#include "certs/sig.h"
#include "certs/trust.h"
#include "common/file.h"
#include "peers/envelope.h"
#include "peers/roster.h"
#include "peers/transport.h"
#include "proto/api.pb-c.h"
#include "proto/envelope.pb-c.h"
#include "proto/psi.pb-c.h"
#include "proto/relay.pb-c.h"

#define EXIT_RAN 0
#define EXIT_USAGE 2
#define HOUR_MS (3600 * 1000)

static int
usage(void)
{
    fprintf(stderr,
            "usage: fed_attack freeport\n"
            "       fed_attack ping --key K --cert C --ca CA --crl CRL --roster R --from CITY\n"
            "                       --to CITY --url URL [--no-client-cert] [--server-name N]\n"
            "                       [--mutate CASE] [--timeout-ms N]\n"
            "       fed_attack psi --key K --cert C --ca CA --crl CRL --roster R --from CITY\n"
            "                      --to CITY --url URL --list L --purpose P --case CASE\n"
            "                      [--auth-ref HEX] [--items N] [--query-list L]\n"
            "                      [--query-purpose P] [--timeout-ms N]\n"
            "       fed_attack relay --key K --cert C --ca CA --crl CRL --roster R --from CITY\n"
            "                        --to CITY --url URL [--roster-file F] [--crl-file F]\n"
            "                        [--roster-serial N] [--crl-number N] [--timeout-ms N]\n"
            "       fed_attack raw-garbage --host H --port P [--bytes N]\n"
            "       fed_attack stall --host H --port P --seconds S [--conns N]\n"
            "       fed_attack flood --key K --cert C --ca CA --crl CRL --roster R --from CITY\n"
            "                        --to CITY --url URL [--conns N] [--seconds S]\n");
    return EXIT_USAGE;
}

static int
setup_fail(const char *what, const bg_err *err)
{
    fprintf(stderr, "fed_attack: %s: %s\n", what, err != NULL ? err->msg : "");
    return EXIT_USAGE;
}

/* ------------------------------------------------------------ freeport */

static int
cmd_freeport(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return setup_fail("socket", NULL);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof a;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &alen) != 0) {
        close(fd);
        return setup_fail("bind", NULL);
    }
    close(fd);
    printf("%u\n", (unsigned)ntohs(a.sin_port));
    return EXIT_RAN;
}

/* ------------------------------------------------------- raw TCP abuse */

static int
tcp_connect(const char *host, const char *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(port))};
    if (inet_pton(AF_INET, host, &a.sin_addr) != 1 ||
        connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

struct raw_opts {
    const char *host, *port;
    long bytes, seconds, conns, sources;
};

/* A TCP connection from 127.0.1.<src> (src 0: the default address), or -1
 * if it was not made within 2 s (a gateway shedding connections). */
static int
tcp_connect_from(const char *host, const char *port, long src)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(port))};
    struct sockaddr_in from = {.sin_family = AF_INET};
    from.sin_addr.s_addr = htonl(0x7f000100u | (uint32_t)(src & 0xff));
    if (inet_pton(AF_INET, host, &a.sin_addr) != 1 ||
        (src > 0 && bind(fd, (struct sockaddr *)&from, sizeof from) != 0) ||
        (connect(fd, (struct sockaddr *)&a, sizeof a) != 0 && errno != EINPROGRESS)) {
        close(fd);
        return -1;
    }
    struct pollfd p = {fd, POLLOUT, 0};
    int e = 0;
    socklen_t el = sizeof e;
    if (poll(&p, 1, 2000) != 1 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) != 0 || e != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int
parse_raw(int argc, char **argv, struct raw_opts *o)
{
    static const struct option opts[] = {
        {"host", required_argument, NULL, 'H'},
        {"port", required_argument, NULL, 'p'},
        {"bytes", required_argument, NULL, 'b'},
        {"seconds", required_argument, NULL, 's'},
        {"conns", required_argument, NULL, 'c'},
        {"sources", required_argument, NULL, 'S'},
        {NULL, 0, NULL, 0},
    };
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'H':
            o->host = optarg;
            break;
        case 'p':
            o->port = optarg;
            break;
        case 'b':
            o->bytes = atol(optarg);
            break;
        case 's':
            o->seconds = atol(optarg);
            break;
        case 'c':
            o->conns = atol(optarg);
            break;
        case 'S':
            o->sources = atol(optarg);
            break;
        default:
            return usage();
        }
    }
    if (o->host == NULL || o->port == NULL || optind != argc)
        return usage();
    return EXIT_RAN;
}

static int
cmd_raw_garbage(int argc, char **argv)
{
    struct raw_opts o = {.bytes = 4096};
    if (parse_raw(argc, argv, &o) != EXIT_RAN)
        return EXIT_USAGE;
    if (o.bytes < 1 || o.bytes > 1024 * 1024)
        return usage();
    int fd = tcp_connect(o.host, o.port);
    if (fd < 0) {
        printf("connect-failed %s\n", strerror(errno));
        return EXIT_RAN;
    }
    uint8_t *buf = malloc((size_t)o.bytes);
    if (buf == NULL) {
        close(fd);
        return setup_fail("out of memory", NULL);
    }
    randombytes_buf(buf, (size_t)o.bytes);
    size_t off = 0;
    while (off < (size_t)o.bytes) {
        ssize_t w = send(fd, buf + off, (size_t)o.bytes - off, MSG_NOSIGNAL);
        if (w <= 0)
            break; /* the gateway hung up on us: fine */
        off += (size_t)w;
    }
    free(buf);
    close(fd);
    printf("sent %zu\n", off);
    return EXIT_RAN;
}

/* Connects conns TCP sockets, never speaks TLS on them, holds them for
 * seconds (or until SIGTERM/SIGINT), then closes. */
#define STALL_MAX 4096
static volatile sig_atomic_t stall_stop;

static void
stall_signal(int sig)
{
    (void)sig;
    stall_stop = 1;
}

static int
cmd_stall(int argc, char **argv)
{
    struct raw_opts o = {.seconds = 30, .conns = 1};
    if (parse_raw(argc, argv, &o) != EXIT_RAN)
        return EXIT_USAGE;
    if (o.seconds < 1 || o.seconds > 3600 || o.conns < 1 || o.conns > STALL_MAX || o.sources < 0 ||
        o.sources > 250)
        return usage();
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    static int fds[STALL_MAX];
    long n = 0, failed = 0;
    while (n < o.conns && failed < 20) {
        int fd = tcp_connect_from(o.host, o.port, o.sources > 0 ? 1 + (n + failed) % o.sources : 0);
        if (fd < 0) {
            failed++;
            continue;
        }
        fds[n++] = fd;
    }
    printf("connected %ld\n", n);
    fflush(stdout);
    struct sigaction sa = {.sa_handler = stall_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    struct timespec end;
    clock_gettime(CLOCK_MONOTONIC, &end);
    end.tv_sec += o.seconds;
    for (;;) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (stall_stop || now.tv_sec > end.tv_sec ||
            (now.tv_sec == end.tv_sec && now.tv_nsec >= end.tv_nsec))
            break;
        struct timespec nap = {.tv_sec = 0, .tv_nsec = 100 * 1000 * 1000};
        nanosleep(&nap, NULL);
    }
    long cut = 0;
    for (long i = 0; i < n; i++) {
        char c;
        struct pollfd p = {fds[i], POLLIN, 0};
        if (poll(&p, 1, 0) == 1 && recv(fds[i], &c, 1, MSG_DONTWAIT) <= 0)
            cut++;
        close(fds[i]);
    }
    printf("closed %ld cut by the gateway\n", cut);
    return EXIT_RAN;
}

/* ---------------------------------------------------------------- ping */

struct ping_opts {
    const char *key, *cert, *ca, *crl, *roster, *from, *to, *url, *server_name;
    const char *mutate;
    bool no_client_cert;
    int timeout_ms;
};

enum mutation {
    M_NONE,
    M_FLIP_BODY,
    M_FLIP_SIGNATURE,
    M_REPLAY,
    M_WRONG_RECIPIENT,
    M_STALE,
    M_FUTURE,
    M_CLAIM_SENDER,
    M_OVERSIZE,
    M_GARBAGE,
};

static int
parse_mutation(const char *s, enum mutation *m, char claimed[BG_CITY_CODE_LEN + 1])
{
    static const struct {
        const char *name;
        enum mutation m;
    } names[] = {
        {"none", M_NONE},
        {"flip-body", M_FLIP_BODY},
        {"flip-signature", M_FLIP_SIGNATURE},
        {"replay", M_REPLAY},
        {"wrong-recipient", M_WRONG_RECIPIENT},
        {"stale", M_STALE},
        {"future", M_FUTURE},
        {"oversize", M_OVERSIZE},
        {"garbage", M_GARBAGE},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcmp(s, names[i].name) == 0) {
            *m = names[i].m;
            return 0;
        }
    }
    static const char prefix[] = "claim-sender=";
    if (strncmp(s, prefix, sizeof prefix - 1) == 0 && bg_city_code_valid(s + sizeof prefix - 1)) {
        *m = M_CLAIM_SENDER;
        snprintf(claimed, BG_CITY_CODE_LEN + 1, "%s", s + sizeof prefix - 1);
        return 0;
    }
    return -1;
}

/*
 * Seals a request the way bg_env_seal does, but lets the caller lie about
 * the sender and damage the result after signing (flip_body: a bit of the
 * Envelope's body inside the SignedEnvelope; flip_sig: a bit of the
 * signature). The certificate is always included.
 */
static int
seal_custom(const bg_env_identity *id, const char *sender, const char *recipient,
            const uint8_t *body, size_t body_len, bool flip_body, bool flip_sig, uint8_t **out,
            size_t *out_len, bg_env_sent *sent, bg_err *err)
{
    uint8_t rid[BG_ENV_ID_LEN], nonce[BG_ENV_NONCE_LEN];
    randombytes_buf(rid, sizeof rid);
    randombytes_buf(nonce, sizeof nonce);
    Baygate__Envelope env = BAYGATE__ENVELOPE__INIT;
    env.version = BG_ENV_VERSION;
    env.sender = (char *)sender;
    env.recipient = (char *)recipient;
    env.request_id.data = rid;
    env.request_id.len = sizeof rid;
    env.issued_at_ms = bg_env_now_ms();
    env.nonce.data = nonce;
    env.nonce.len = sizeof nonce;
    env.purpose = "ping";
    env.body_type = BAYGATE__APP_BODY__APP_BODY_PING;
    env.body.data = (uint8_t *)body;
    env.body.len = body_len;

    size_t env_len = baygate__envelope__get_packed_size(&env);
    uint8_t *env_bytes = malloc(env_len);
    if (env_bytes == NULL)
        return bg_err_set(err, BG_ENOMEM, "out of memory");
    baygate__envelope__pack(&env, env_bytes);
    uint8_t sig[BG_SIG_MAX];
    size_t siglen = 0;
    int rc = bg_sig_sign(id->key, BG_SIG_CTX_ENVELOPE, env_bytes, env_len, sig, &siglen, err);
    if (rc != BG_OK) {
        free(env_bytes);
        return rc;
    }
    if (flip_body) {
        /* body (field 10) is the last field packed in a request (field 11,
         * reply_to_nonce, is empty): its bytes end the Envelope. */
        if (body_len == 0 || env_len < body_len ||
            memcmp(env_bytes + env_len - body_len, body, body_len) != 0) {
            free(env_bytes);
            return bg_err_set(err, BG_EINVAL, "cannot locate the body inside the envelope");
        }
        env_bytes[env_len - 1] ^= 0x01;
    }
    if (flip_sig)
        sig[siglen - 2] ^= 0x01; /* inside s: the DER stays well-formed */

    Baygate__SignedEnvelope se;
    baygate__signed_envelope__init(&se);
    se.envelope.data = env_bytes;
    se.envelope.len = env_len;
    se.signer_case = BAYGATE__SIGNED_ENVELOPE__SIGNER_CERTIFICATE_DER;
    se.certificate_der.data = id->cert_der;
    se.certificate_der.len = id->cert_der_len;
    se.signature.data = sig;
    se.signature.len = siglen;
    size_t len = baygate__signed_envelope__get_packed_size(&se);
    uint8_t *buf = malloc(len);
    if (buf == NULL) {
        free(env_bytes);
        return bg_err_set(err, BG_ENOMEM, "out of memory");
    }
    baygate__signed_envelope__pack(&se, buf);
    free(env_bytes);
    memcpy(sent->request_id, rid, sizeof rid);
    memcpy(sent->nonce, nonce, sizeof nonce);
    sent->issued_at_ms = env.issued_at_ms;
    *out = buf;
    *out_len = len;
    return BG_OK;
}

/* The outcome line of a call that got no answer: "timeout" or "transport <kind>". */
static void
no_answer_line(bg_tp_fail fail, const bg_err *err, char *line, size_t n)
{
    fprintf(stderr, "fed_attack: call: %s\n", err->msg);
    if (fail == BG_TP_TIMEOUT)
        snprintf(line, n, "timeout");
    else
        snprintf(line, n, "transport %s", bg_tp_fail_name(fail));
}

/* One call; writes the outcome line (without newline) to line. */
static void
call_once(bg_tp_client *cli, bg_env_verifier *v, const char *to, const uint8_t *msg, size_t len,
          const bg_env_sent *sent, int timeout_ms, char *line, size_t n)
{
    uint8_t *ans = NULL;
    size_t ans_len = 0;
    bg_tp_fail fail = BG_TP_OK;
    bg_err err = {0};
    if (bg_tp_call(cli, msg, len, &ans, &ans_len, timeout_ms, &fail, &err) != BG_OK) {
        no_answer_line(fail, &err, line, n);
        return;
    }
    if (sent == NULL) {
        /* Not an envelope of ours: any answer at all is remarkable. */
        snprintf(line, n, "answer unexpected %zu", ans_len);
        bg_tp_answer_free(ans);
        return;
    }
    bg_env_opened *o = NULL;
    bg_env_reason why = bg_env_open_answer(v, ans, ans_len, to, sent->nonce, 0, &o, &err);
    bg_tp_answer_free(ans);
    if (why != BG_ENV_OK) {
        fprintf(stderr, "fed_attack: answer: %s\n", err.msg);
        snprintf(line, n, "answer bad %s", bg_env_reason_name(why));
        return;
    }
    if (o->body_type == BG_ENV_BODY_ERROR) {
        uint32_t code = 0;
        char text[BG_ENV_ERROR_MSG_MAX + 1] = "";
        if (bg_env_error_parse(o->body, o->body_len, &code, text, &err) != BG_OK) {
            snprintf(line, n, "answer bad error-body");
        } else {
            fprintf(stderr, "fed_attack: refused: %s\n", text);
            const char *name =
                code <= BG_ENV_REASON_LAST ? bg_env_reason_name((bg_env_reason)code) : "gateway";
            snprintf(line, n, "answer refused %s %u", name, code);
        }
        bg_env_opened_free(o);
        return;
    }
    Baygate__Pong *pong = o->body_type == BAYGATE__APP_BODY__APP_BODY_PONG
                              ? baygate__pong__unpack(NULL, o->body_len, o->body)
                              : NULL;
    if (pong != NULL && strcmp(pong->city, to) == 0) {
        fprintf(stderr, "fed_attack: pong from %s (%s), roster %llu\n", pong->city, pong->name,
                (unsigned long long)pong->roster_serial);
        snprintf(line, n, "answer ok");
    } else {
        snprintf(line, n, "answer not-pong");
    }
    if (pong != NULL)
        baygate__pong__free_unpacked(pong, NULL);
    bg_env_opened_free(o);
}

/* The connection options that ping and psi share, for their getopt_long tables. */
// clang-format off
#define CONN_OPTIONS                                \
    {"key", required_argument, NULL, 'k'},          \
    {"cert", required_argument, NULL, 'c'},         \
    {"ca", required_argument, NULL, 'a'},           \
    {"crl", required_argument, NULL, 'l'},          \
    {"roster", required_argument, NULL, 'r'},       \
    {"from", required_argument, NULL, 'f'},         \
    {"to", required_argument, NULL, 't'},           \
    {"url", required_argument, NULL, 'u'},          \
    {"timeout-ms", required_argument, NULL, 'T'}
// clang-format on

/* Takes the argument of one of CONN_OPTIONS' letters into o; false for any other letter. */
static bool
conn_opt(int ch, struct ping_opts *o)
{
    switch (ch) {
    case 'k':
        o->key = optarg;
        break;
    case 'c':
        o->cert = optarg;
        break;
    case 'a':
        o->ca = optarg;
        break;
    case 'l':
        o->crl = optarg;
        break;
    case 'r':
        o->roster = optarg;
        break;
    case 'f':
        o->from = optarg;
        break;
    case 't':
        o->to = optarg;
        break;
    case 'u':
        o->url = optarg;
        break;
    case 'T':
        o->timeout_ms = atoi(optarg);
        break;
    default:
        return false;
    }
    return true;
}

/* All the connection options that are required are given, and sane. */
static bool
conn_opts_ok(const struct ping_opts *o)
{
    return o->key != NULL && o->cert != NULL && o->ca != NULL && o->crl != NULL &&
           o->roster != NULL && o->from != NULL && o->to != NULL && o->url != NULL &&
           bg_city_code_valid(o->from) && bg_city_code_valid(o->to) && o->timeout_ms >= 1 &&
           o->timeout_ms <= BG_TP_TIMEOUT_MAX_MS;
}

static int
parse_ping(int argc, char **argv, struct ping_opts *o)
{
    static const struct option opts[] = {
        CONN_OPTIONS,
        {"no-client-cert", no_argument, NULL, 'n'},
        {"server-name", required_argument, NULL, 's'},
        {"mutate", required_argument, NULL, 'm'},
        {NULL, 0, NULL, 0},
    };
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'n':
            o->no_client_cert = true;
            break;
        case 's':
            o->server_name = optarg;
            break;
        case 'm':
            o->mutate = optarg;
            break;
        default:
            if (!conn_opt(ch, o))
                return usage();
        }
    }
    if (optind != argc || !conn_opts_ok(o))
        return usage();
    return EXIT_RAN;
}

/* Everything a ping needs, freed by ping_free. */
struct ping_ctx {
    bg_env_identity *id;
    X509 *ca;
    bg_roster *roster;
    bg_trust *trust;
    bg_env_verifier *verifier;
    bg_tp_client *cli;
    char *key_pem, *cert_pem, *ca_pem, *crl_pem;
    size_t key_pem_len, cert_pem_len, ca_pem_len, crl_pem_len;
};

static void
ping_free(struct ping_ctx *c)
{
    bg_tp_client_close(c->cli);
    bg_env_verifier_free(c->verifier);
    bg_trust_free(c->trust);
    bg_roster_free(c->roster);
    X509_free(c->ca);
    bg_env_identity_free(c->id);
    if (c->key_pem != NULL)
        bg_pki_secret_free(c->key_pem, c->key_pem_len);
    OPENSSL_free(c->cert_pem);
    OPENSSL_free(c->ca_pem);
    OPENSSL_free(c->crl_pem);
}

/* One more client (its own connection) with c's material, as o says. */
static int
open_client(const struct ping_opts *o, const struct ping_ctx *c, size_t send_max,
            bg_tp_client **out, bg_err *err)
{
    bg_tp_tls tls = {.cert_pem = o->no_client_cert ? NULL : c->cert_pem,
                     .key_pem = o->no_client_cert ? NULL : c->key_pem,
                     .ca_pem = c->ca_pem,
                     .crl_pem = c->crl_pem};
    bg_tp_client_opts co = {
        .url = o->url,
        .tls = &tls,
        .server_name = o->server_name != NULL ? o->server_name : o->to,
        .recv_max = bg_roster_max_message_bytes(c->roster),
        .send_max = send_max,
    };
    return bg_tp_client_open(out, &co, err);
}

static int
ping_setup(const struct ping_opts *o, enum mutation m, struct ping_ctx *c, bg_err *err)
{
    int rc = bg_env_identity_load(&c->id, NULL, o->key, o->cert, err);
    if (rc != BG_OK)
        return rc;
    if (strcmp(c->id->city, o->from) != 0)
        return bg_err_set(err, BG_EINVAL, "--from %s but the certificate is %s's", o->from,
                          c->id->city);
    if ((rc = bg_pki_cert_load(o->ca, &c->ca, err)) != BG_OK ||
        (rc = bg_roster_load_file(o->roster, c->ca, 0, NULL, &c->roster, NULL, err)) != BG_OK ||
        (rc = bg_trust_open(&c->trust, o->ca, o->crl, 0, err)) != BG_OK)
        return rc;
    size_t max_msg = bg_roster_max_message_bytes(c->roster);
    bg_env_verifier_config vc = {.own_city = c->id->city,
                                 .trust = c->trust,
                                 .member_fp = bg_roster_member_fp,
                                 .member_ctx = c->roster,
                                 .max_message = max_msg};
    if ((rc = bg_env_verifier_new(&c->verifier, &vc, err)) != BG_OK)
        return rc;

    X509_CRL *crl = NULL;
    if ((rc = bg_pki_key_pem(c->id->key, &c->key_pem, &c->key_pem_len, err)) != BG_OK ||
        (rc = bg_pki_cert_pem(c->id->cert, &c->cert_pem, &c->cert_pem_len, err)) != BG_OK ||
        (rc = bg_pki_cert_pem(c->ca, &c->ca_pem, &c->ca_pem_len, err)) != BG_OK ||
        (rc = bg_pki_crl_load(o->crl, &crl, err)) != BG_OK)
        return rc;
    rc = bg_pki_crl_pem(crl, &c->crl_pem, &c->crl_pem_len, err);
    X509_CRL_free(crl);
    if (rc != BG_OK)
        return rc;

    /* oversize: allowed to send what the peer will not take. */
    return open_client(o, c, m == M_OVERSIZE ? 2 * max_msg : max_msg, &c->cli, err);
}

static int
cmd_ping(int argc, char **argv)
{
    struct ping_opts o = {.mutate = "none", .timeout_ms = 5000};
    if (parse_ping(argc, argv, &o) != EXIT_RAN)
        return EXIT_USAGE;
    enum mutation m;
    char claimed[BG_CITY_CODE_LEN + 1] = "";
    if (parse_mutation(o.mutate, &m, claimed) != 0) {
        fprintf(stderr, "fed_attack: unknown mutation '%s'\n", o.mutate);
        return usage();
    }
    struct ping_ctx c = {0};
    bg_err err = {0};
    if (ping_setup(&o, m, &c, &err) != BG_OK) {
        ping_free(&c);
        return setup_fail("setup", &err);
    }

    size_t max_msg = bg_roster_max_message_bytes(c.roster);
    Baygate__Ping ping = BAYGATE__PING__INIT;
    ping.roster_serial = bg_roster_serial(c.roster); /* non-empty body, as the daemon's */
    uint8_t body[32];
    size_t body_len = baygate__ping__pack(&ping, body);

    uint8_t *msg = NULL;
    size_t len = 0;
    bg_env_sent sent;
    memset(&sent, 0, sizeof sent);
    bool is_envelope = true;
    int rc = BG_OK;
    bg_env_fields f = {.recipient = o.to,
                       .body_type = BAYGATE__APP_BODY__APP_BODY_PING,
                       .body = body,
                       .body_len = body_len,
                       .purpose = "ping"};
    switch (m) {
    case M_NONE:
    case M_REPLAY:
        rc = bg_env_seal(c.id, &f, true, max_msg, &msg, &len, &sent, &err);
        break;
    case M_WRONG_RECIPIENT:
        f.recipient = strcmp(o.to, "440100") != 0 ? "440100" : "440300";
        rc = bg_env_seal(c.id, &f, true, max_msg, &msg, &len, &sent, &err);
        break;
    case M_STALE:
    case M_FUTURE:
        f.issued_at_ms = bg_env_now_ms() + (m == M_STALE ? -HOUR_MS : HOUR_MS);
        rc = bg_env_seal(c.id, &f, true, max_msg, &msg, &len, &sent, &err);
        break;
    case M_FLIP_BODY:
    case M_FLIP_SIGNATURE:
        rc = seal_custom(c.id, c.id->city, o.to, body, body_len, m == M_FLIP_BODY,
                         m == M_FLIP_SIGNATURE, &msg, &len, &sent, &err);
        break;
    case M_CLAIM_SENDER:
        rc =
            seal_custom(c.id, claimed, o.to, body, body_len, false, false, &msg, &len, &sent, &err);
        break;
    case M_OVERSIZE:
    case M_GARBAGE:
        is_envelope = false;
        len = m == M_OVERSIZE ? max_msg + 64 * 1024 : 512;
        msg = malloc(len);
        if (msg == NULL) {
            rc = bg_err_set(&err, BG_ENOMEM, "out of memory");
            break;
        }
        randombytes_buf(msg, len);
        msg[0] = 0x0F; /* field 1, wire type 7: no protobuf parser takes it */
        break;
    }
    if (rc != BG_OK) {
        free(msg);
        ping_free(&c);
        return setup_fail("sealing", &err);
    }

    char line[160];
    call_once(c.cli, c.verifier, o.to, msg, len, is_envelope ? &sent : NULL, o.timeout_ms, line,
              sizeof line);
    if (m == M_REPLAY) {
        if (strcmp(line, "answer ok") != 0) {
            printf("replay-first %s\n", line);
        } else {
            call_once(c.cli, c.verifier, o.to, msg, len, &sent, o.timeout_ms, line, sizeof line);
            printf("%s\n", line);
        }
    } else {
        printf("%s\n", line);
    }
    fflush(stdout);
    free(msg);
    ping_free(&c);
    return EXIT_RAN;
}

/* ----------------------------------------------------------------- psi */

/* The PsiMode values (proto/psi.proto, mpc/psi.h). */
#define PSI_MEMBERSHIP 1
#define PSI_GRADED 2
#define PSI_COUNT 3
#define ELEM 32u         /* bytes of one ristretto255 element */
#define BATCH_ID_LEN 16u /* PsiQuery.batch_id */
#define DEFAULT_ITEMS 4u /* elements of a query unless a case or --items says otherwise */
#define HOSTILE_AT 1u    /* index of the hostile element in the element cases */
#define NEAR_MAX_ROOM 64u
#define NAME_MAX_LEN                                                                               \
    64u /* --list, --query-list: keeps the fixed request buffers safe */ /* near-max-elements:     \
                                                                            bytes left below       \
                                                                            max_message_bytes */

enum psi_case {
    P_GOOD,
    P_IDENTITY,
    P_NONCANONICAL,
    P_TOP_BIT,
    P_NOT_A_POINT,
    P_SHORT,
    P_EMPTY,
    P_STALE_EPOCH,
    P_FUTURE_EPOCH,
    P_WRONG_GENERATION,
    P_UNKNOWN_LIST,
    P_PURPOSE_NOT_ALLOWED,
    P_NO_AUTH,
    P_OVER_QUOTA,
    P_COUNT_GOOD,
    P_COUNT_SMALL,
    P_COUNT_MULTICHUNK,
    P_HUGE_BATCH_ITEMS,
    P_HUGE_BATCH_ITEMS_COUNT,
    P_CHUNK_INDEX_OUT_OF_RANGE,
    P_BAD_MODE,
    P_GRADED_PLAIN_LIST,
    P_BAD_BATCH_ID,
    P_GARBAGE_BODY,
    P_OVERSIZE_ELEMENTS,
    P_NEAR_MAX_ELEMENTS,
    P_EXACT_MAX_ELEMENTS,
    P_SNAPSHOT_CHUNK_OUT_OF_RANGE,
    P_SNAPSHOT_STALE,
    P_ANSWER_FETCH,
};

static const struct {
    const char *name;
    enum psi_case c;
} psi_cases[] = {
    {"good", P_GOOD},
    {"identity", P_IDENTITY},
    {"noncanonical", P_NONCANONICAL},
    {"top-bit", P_TOP_BIT},
    {"not-a-point", P_NOT_A_POINT},
    {"short", P_SHORT},
    {"empty", P_EMPTY},
    {"stale-epoch", P_STALE_EPOCH},
    {"future-epoch", P_FUTURE_EPOCH},
    {"wrong-generation", P_WRONG_GENERATION},
    {"unknown-list", P_UNKNOWN_LIST},
    {"purpose-not-allowed", P_PURPOSE_NOT_ALLOWED},
    {"no-auth", P_NO_AUTH},
    {"over-quota", P_OVER_QUOTA},
    {"count-good", P_COUNT_GOOD},
    {"count-small", P_COUNT_SMALL},
    {"count-multichunk", P_COUNT_MULTICHUNK},
    {"huge-batch-items", P_HUGE_BATCH_ITEMS},
    {"huge-batch-items-count", P_HUGE_BATCH_ITEMS_COUNT},
    {"chunk-index-out-of-range", P_CHUNK_INDEX_OUT_OF_RANGE},
    {"bad-mode", P_BAD_MODE},
    {"graded-plain-list", P_GRADED_PLAIN_LIST},
    {"bad-batch-id", P_BAD_BATCH_ID},
    {"garbage-body", P_GARBAGE_BODY},
    {"oversize-elements", P_OVERSIZE_ELEMENTS},
    {"near-max-elements", P_NEAR_MAX_ELEMENTS},
    {"exact-max-elements", P_EXACT_MAX_ELEMENTS},
    {"snapshot-chunk-out-of-range", P_SNAPSHOT_CHUNK_OUT_OF_RANGE},
    {"snapshot-stale", P_SNAPSHOT_STALE},
    {"answer-fetch", P_ANSWER_FETCH},
};

struct psi_opts {
    struct ping_opts conn; /* key, cert, ca, crl, roster, from, to, url, timeout */
    const char *list, *purpose, *auth_ref_hex, *query_list, *query_purpose, *case_name;
    long items; /* 0: the case decides */
};

static int
parse_psi(int argc, char **argv, struct psi_opts *o)
{
    static const struct option opts[] = {
        CONN_OPTIONS,
        {"list", required_argument, NULL, 'L'},
        {"purpose", required_argument, NULL, 'P'},
        {"auth-ref", required_argument, NULL, 'A'},
        {"case", required_argument, NULL, 'C'},
        {"items", required_argument, NULL, 'i'},
        {"query-list", required_argument, NULL, 'q'},
        {"query-purpose", required_argument, NULL, 'Q'},
        {NULL, 0, NULL, 0},
    };
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'L':
            o->list = optarg;
            break;
        case 'P':
            o->purpose = optarg;
            break;
        case 'A':
            o->auth_ref_hex = optarg;
            break;
        case 'C':
            o->case_name = optarg;
            break;
        case 'i':
            o->items = atol(optarg);
            break;
        case 'q':
            o->query_list = optarg;
            break;
        case 'Q':
            o->query_purpose = optarg;
            break;
        default:
            if (!conn_opt(ch, &o->conn))
                return usage();
        }
    }
    if (optind != argc || !conn_opts_ok(&o->conn) || o->list == NULL || o->purpose == NULL ||
        o->case_name == NULL || o->items < 0 || o->items > (1L << 24) ||
        strlen(o->list) > NAME_MAX_LEN ||
        (o->query_list != NULL && strlen(o->query_list) > NAME_MAX_LEN))
        return usage();
    return EXIT_RAN;
}

/* Seals a request to the target: the body with purpose and authorisation
 * reference (auth_len 0: none) and our certificate. */
static int
psi_seal(struct ping_ctx *c, const struct ping_opts *po, const char *purpose, const uint8_t *auth,
         size_t auth_len, uint32_t body_type, const uint8_t *body, size_t body_len, size_t max_len,
         uint8_t **msg, size_t *len, bg_env_sent *sent, bg_err *err)
{
    bg_env_fields f = {.recipient = po->to,
                       .purpose = purpose,
                       .authorisation_ref = auth_len ? auth : NULL,
                       .authorisation_ref_len = auth_len,
                       .body_type = body_type,
                       .body = body,
                       .body_len = body_len};
    return bg_env_seal(c->id, &f, true, max_len, msg, len, sent, err);
}

/*
 * Sends a sealed request (msg, freed here) and opens the answer. BG_OK and
 * *out for an answer that is not an ErrorAnswer; otherwise the outcome line in
 * line ("answer refused <code>", "answer bad <reason>", "timeout",
 * "transport <kind>").
 */
static int
psi_send(struct ping_ctx *c, const struct ping_opts *po, uint32_t body_type, uint8_t *msg,
         size_t len, const bg_env_sent *sent_in, bg_env_opened **out, char *line, size_t n)
{
    *out = NULL;
    bg_env_sent sent = *sent_in;
    uint8_t *ans = NULL;
    size_t ans_len = 0;
    bg_err err = {0};
    fprintf(stderr, "fed_attack: sending body type %u, %zu bytes sealed\n", body_type, len);
    bg_tp_fail fail = BG_TP_OK;
    int rc = bg_tp_call(c->cli, msg, len, &ans, &ans_len, po->timeout_ms, &fail, &err);
    free(msg);
    if (rc != BG_OK) {
        no_answer_line(fail, &err, line, n);
        return BG_EIO;
    }
    bg_env_opened *o = NULL;
    bg_env_reason why =
        bg_env_open_answer(c->verifier, ans, ans_len, po->to, sent.nonce, 0, &o, &err);
    bg_tp_answer_free(ans);
    if (why != BG_ENV_OK) {
        fprintf(stderr, "fed_attack: answer: %s\n", err.msg);
        snprintf(line, n, "answer bad %s", bg_env_reason_name(why));
        return BG_EPROTO;
    }
    if (o->body_type == BG_ENV_BODY_ERROR) {
        uint32_t code = 0;
        char text[BG_ENV_ERROR_MSG_MAX + 1] = "";
        if (bg_env_error_parse(o->body, o->body_len, &code, text, &err) != BG_OK) {
            snprintf(line, n, "answer bad error-body");
        } else {
            fprintf(stderr, "fed_attack: refused %u: %s\n", code, text);
            snprintf(line, n, "answer refused %u", code);
        }
        bg_env_opened_free(o);
        return BG_EPROTO;
    }
    *out = o;
    return BG_OK;
}

/* psi_seal, then psi_send ("setup sealing" in line if it cannot be sealed). */
static int
psi_call(struct ping_ctx *c, const struct ping_opts *po, const char *purpose, const uint8_t *auth,
         size_t auth_len, uint32_t body_type, const uint8_t *body, size_t body_len, size_t max_len,
         bg_env_opened **out, char *line, size_t n)
{
    uint8_t *msg = NULL;
    size_t len = 0;
    bg_env_sent sent;
    bg_err err = {0};
    *out = NULL;
    if (psi_seal(c, po, purpose, auth, auth_len, body_type, body, body_len, max_len, &msg, &len,
                 &sent, &err) != BG_OK) {
        fprintf(stderr, "fed_attack: sealing: %s\n", err.msg);
        snprintf(line, n, "setup sealing");
        return BG_EINVAL;
    }
    return psi_send(c, po, body_type, msg, len, &sent, out, line, n);
}

static void
print_hex_element(const char *what, const uint8_t *e)
{
    char hex[2 * ELEM + 1];
    sodium_bin2hex(hex, sizeof hex, e, ELEM);
    fprintf(stderr, "fed_attack: %s element %s\n", what, hex);
}

/* A 32-byte string with the top bit and the low bit clear (so a field element
 * in canonical, non-negative form, almost surely below p) that is not a
 * ristretto255 encoding: it fails the decoding itself, not a canonicity test. */
static void
not_a_point(uint8_t e[ELEM])
{
    do {
        randombytes_buf(e, ELEM);
        e[0] &= 0xFE;
        e[ELEM - 1] &= 0x7F;
    } while (crypto_core_ristretto255_is_valid_point(e));
}

/* Fills elements[0..n) with random valid points, then the case's hostile one. */
static void
fill_elements(uint8_t *el, size_t n, enum psi_case pc)
{
    for (size_t i = 0; i < n; i++)
        crypto_core_ristretto255_random(el + i * ELEM);
    if (n <= HOSTILE_AT)
        return;
    uint8_t *h = el + HOSTILE_AT * ELEM;
    switch (pc) {
    case P_IDENTITY:
        memset(h, 0, ELEM);
        break;
    case P_NONCANONICAL:
        /* p + 1 = 2^255 - 18, little-endian: even, >= p, so never canonical. */
        memset(h, 0xFF, ELEM);
        h[0] = 0xEE;
        h[ELEM - 1] = 0x7F;
        break;
    case P_TOP_BIT:
        h[ELEM - 1] |= 0x80; /* a valid point with bit 255 set */
        break;
    case P_NOT_A_POINT:
        not_a_point(h);
        break;
    default:
        break;
    }
}

static int
cmd_psi(int argc, char **argv)
{
    struct psi_opts o = {.conn = {.timeout_ms = 15000}};
    if (parse_psi(argc, argv, &o) != EXIT_RAN)
        return EXIT_USAGE;
    enum psi_case pc = P_GOOD;
    bool found = false;
    for (size_t i = 0; i < sizeof psi_cases / sizeof psi_cases[0] && !found; i++) {
        if (strcmp(o.case_name, psi_cases[i].name) == 0) {
            pc = psi_cases[i].c;
            found = true;
        }
    }
    if (!found) {
        fprintf(stderr, "fed_attack: unknown psi case '%s'\n", o.case_name);
        return usage();
    }
    uint8_t auth[BG_ENV_AUTH_REF_MAX];
    size_t auth_len = 0;
    if (o.auth_ref_hex != NULL &&
        (sodium_hex2bin(auth, sizeof auth, o.auth_ref_hex, strlen(o.auth_ref_hex), NULL, &auth_len,
                        NULL) != 0 ||
         auth_len == 0)) {
        fprintf(stderr, "fed_attack: --auth-ref must be 1..64 bytes of hex\n");
        return usage();
    }
    const char *qlist = o.query_list != NULL   ? o.query_list
                        : pc == P_UNKNOWN_LIST ? "no-such-list"
                                               : o.list;
    const char *qpurpose = o.query_purpose != NULL       ? o.query_purpose
                           : pc == P_PURPOSE_NOT_ALLOWED ? "marketing"
                                                         : o.purpose;
    size_t qauth_len = pc == P_NO_AUTH ? 0 : auth_len;

    struct ping_ctx c = {0};
    bg_err err = {0};
    if (ping_setup(&o.conn, pc == P_OVERSIZE_ELEMENTS ? M_OVERSIZE : M_NONE, &c, &err) != BG_OK) {
        ping_free(&c);
        return setup_fail("setup", &err);
    }
    size_t max_msg = bg_roster_max_message_bytes(c.roster);
    bg_roster_verdict v;
    memset(&v, 0, sizeof v);
    if (!bg_roster_permission(c.roster, o.conn.from, o.conn.to, o.purpose, o.list, &v))
        fprintf(stderr, "fed_attack: note: the roster does not allow this: %s\n", v.reason);

    /* 1. The current (generation, epoch) of the list: chunk 0 of its snapshot. */
    char line[200] = "";
    bg_env_opened *ans = NULL;
    uint64_t gen = 0, epoch = 0;
    uint32_t snap_chunks = 0;
    {
        Baygate__SnapshotRequest rq = BAYGATE__SNAPSHOT_REQUEST__INIT;
        rq.list = (char *)o.list;
        uint8_t body[256];
        size_t blen = baygate__snapshot_request__pack(&rq, body);
        if (psi_call(&c, &o.conn, o.purpose, auth_len ? auth : NULL, auth_len,
                     BAYGATE__PSI_BODY__PSI_BODY_SNAPSHOT_REQUEST, body, blen, max_msg, &ans, line,
                     sizeof line) != BG_OK) {
            printf("snapshot %s\n", line);
            ping_free(&c);
            return EXIT_RAN;
        }
        Baygate__SnapshotChunk *sc =
            ans->body_type == BAYGATE__PSI_BODY__PSI_BODY_SNAPSHOT_CHUNK
                ? baygate__snapshot_chunk__unpack(NULL, ans->body_len, ans->body)
                : NULL;
        bg_env_opened_free(ans);
        ans = NULL;
        if (sc == NULL || sc->list == NULL || strcmp(sc->list, o.list) != 0) {
            printf("snapshot bad not-a-chunk\n");
            if (sc != NULL)
                baygate__snapshot_chunk__free_unpacked(sc, NULL);
            ping_free(&c);
            return EXIT_RAN;
        }
        gen = sc->generation;
        epoch = sc->epoch;
        snap_chunks = sc->chunk_count;
        baygate__snapshot_chunk__free_unpacked(sc, NULL);
        fprintf(stderr, "fed_attack: %s is at generation %llu epoch %llu (%u chunks)\n", o.list,
                (unsigned long long)gen, (unsigned long long)epoch, snap_chunks);
    }

    /* 2a. The snapshot and body-type cases: one more request of that kind. */
    if (pc == P_SNAPSHOT_CHUNK_OUT_OF_RANGE || pc == P_SNAPSHOT_STALE || pc == P_ANSWER_FETCH) {
        uint8_t body[256];
        size_t blen;
        uint32_t type = BAYGATE__PSI_BODY__PSI_BODY_SNAPSHOT_REQUEST;
        if (pc == P_ANSWER_FETCH) {
            /* A body type in the PSI range that nothing serves (36 was once reserved for
             * fetching count answers), with a plausible body. */
            randombytes_buf(body, 24);
            blen = 24;
            type = 36;
        } else {
            Baygate__SnapshotRequest rq = BAYGATE__SNAPSHOT_REQUEST__INIT;
            rq.list = (char *)o.list;
            rq.want_epoch = pc == P_SNAPSHOT_STALE ? epoch + 1 : epoch;
            rq.chunk_index = pc == P_SNAPSHOT_STALE ? 1 : snap_chunks + 1000;
            blen = baygate__snapshot_request__pack(&rq, body);
        }
        if (psi_call(&c, &o.conn, o.purpose, auth_len ? auth : NULL, auth_len, type, body, blen,
                     max_msg, &ans, line, sizeof line) == BG_OK) {
            Baygate__SnapshotChunk *sc =
                ans->body_type == BAYGATE__PSI_BODY__PSI_BODY_SNAPSHOT_CHUNK
                    ? baygate__snapshot_chunk__unpack(NULL, ans->body_len, ans->body)
                    : NULL;
            if (sc != NULL)
                snprintf(line, sizeof line, "answer ok %u", sc->chunk_count);
            else
                snprintf(line, sizeof line, "answer bad body-type-%u", ans->body_type);
            if (sc != NULL)
                baygate__snapshot_chunk__free_unpacked(sc, NULL);
            bg_env_opened_free(ans);
        }
        printf("%s\n", line);
        fflush(stdout);
        ping_free(&c);
        return EXIT_RAN;
    }

    /* 2b. One PsiQuery built per case. */
    size_t n = (size_t)o.items;
    int mode = PSI_MEMBERSHIP;
    switch (pc) {
    case P_OVER_QUOTA:
        if (v.quota_items_per_day >= (1u << 24)) {
            ping_free(&c);
            return setup_fail("the quota is too large to pass in one message", NULL);
        }
        n = (size_t)v.quota_items_per_day + 1;
        break;
    case P_COUNT_GOOD:
    case P_COUNT_MULTICHUNK:
    case P_HUGE_BATCH_ITEMS_COUNT:
        mode = PSI_COUNT;
        if (n == 0)
            n = v.min_count_batch;
        break;
    case P_COUNT_SMALL:
        mode = PSI_COUNT;
        if (v.min_count_batch < 2) {
            ping_free(&c);
            return setup_fail("min_count_batch must be at least 2 for count-small", NULL);
        }
        n = v.min_count_batch - 1;
        break;
    case P_EMPTY:
        n = 0;
        break;
    case P_BAD_MODE:
        mode = 7;
        break;
    case P_GRADED_PLAIN_LIST:
        mode = PSI_GRADED;
        break;
    default:
        break;
    }
    if (n == 0 && pc != P_EMPTY)
        n = DEFAULT_ITEMS;

    size_t el_len = n * ELEM;
    size_t seal_max = pc == P_OVERSIZE_ELEMENTS ? 2 * max_msg : max_msg;
    uint8_t *el = NULL, *body = NULL;
    uint8_t batch_id[BATCH_ID_LEN];
    randombytes_buf(batch_id, sizeof batch_id);
    Baygate__PsiQuery pq = BAYGATE__PSI_QUERY__INIT;
    pq.list = (char *)qlist;
    pq.generation = pc == P_WRONG_GENERATION ? gen + 1 : gen;
    pq.epoch = pc == P_STALE_EPOCH ? epoch - 1 : pc == P_FUTURE_EPOCH ? epoch + 1 : epoch;
    pq.mode = (Baygate__PsiMode)mode;
    pq.batch_id.data = batch_id;
    pq.batch_id.len = pc == P_BAD_BATCH_ID ? BATCH_ID_LEN - 1 : BATCH_ID_LEN;
    pq.chunk_index = pc == P_CHUNK_INDEX_OUT_OF_RANGE ? 2 : 0;
    pq.chunk_count = pc == P_CHUNK_INDEX_OUT_OF_RANGE || pc == P_COUNT_MULTICHUNK ? 2 : 1;
    pq.batch_items = (uint32_t)n;
    if (pc == P_COUNT_MULTICHUNK)
        pq.batch_items = (uint32_t)(2 * n);
    if (pc == P_HUGE_BATCH_ITEMS || pc == P_HUGE_BATCH_ITEMS_COUNT)
        pq.batch_items = UINT32_C(1) << 31;

    bool near_max = pc == P_NEAR_MAX_ELEMENTS || pc == P_EXACT_MAX_ELEMENTS;
    if (near_max || pc == P_OVERSIZE_ELEMENTS) {
        /* As many elements as keep the sealed request within max_message_bytes
         * (near-max), or 4 KiB beyond it (oversize). The overhead is measured
         * with one element; a varint may grow by a byte or two, so step down. */
        uint8_t one[ELEM];
        crypto_core_ristretto255_random(one);
        pq.elements.data = one;
        pq.elements.len = ELEM;
        size_t blen = baygate__psi_query__get_packed_size(&pq);
        uint8_t tmp[512];
        if (blen > sizeof tmp) {
            ping_free(&c);
            return setup_fail("query too large to measure", NULL);
        }
        baygate__psi_query__pack(&pq, tmp);
        uint8_t *env = NULL;
        size_t env_len = 0;
        bg_env_fields f = {.recipient = o.conn.to,
                           .purpose = qpurpose,
                           .authorisation_ref = qauth_len ? auth : NULL,
                           .authorisation_ref_len = qauth_len,
                           .body_type = BAYGATE__PSI_BODY__PSI_BODY_QUERY,
                           .body = tmp,
                           .body_len = blen};
        if (bg_env_seal(c.id, &f, true, max_msg, &env, &env_len, NULL, &err) != BG_OK) {
            ping_free(&c);
            return setup_fail("measuring the envelope", &err);
        }
        free(env);
        n = 1 + (max_msg - env_len) / ELEM;
        if (pc == P_OVERSIZE_ELEMENTS)
            n += 4096 / ELEM;
        el_len = n * ELEM;
    }

    size_t body_len = 0;
    for (;;) {
        el = malloc(el_len ? el_len : 1);
        if (el == NULL) {
            ping_free(&c);
            return setup_fail("out of memory", NULL);
        }
        fill_elements(el, n, pc);
        if (pc == P_SHORT)
            el_len = n * ELEM - 5; /* not a multiple of 32 */
        pq.elements.data = el;
        pq.elements.len = el_len;
        if (near_max || pc == P_OVERSIZE_ELEMENTS)
            pq.batch_items = (uint32_t)n;
        body_len = baygate__psi_query__get_packed_size(&pq);
        body = malloc(body_len);
        if (body == NULL) {
            free(el);
            ping_free(&c);
            return setup_fail("out of memory", NULL);
        }
        baygate__psi_query__pack(&pq, body);
        if (pc == P_GARBAGE_BODY && body_len >= 8) {
            /* Field 1 (list), length-delimited, claiming 127 bytes of 6. */
            body[0] = 0x0A;
            body[1] = 0x7F;
            body_len = 8;
        }
        if (!near_max)
            break;
        /* Does it fit? Step down until it does. */
        uint8_t *env = NULL;
        size_t env_len = 0;
        bg_env_fields f = {.recipient = o.conn.to,
                           .purpose = qpurpose,
                           .authorisation_ref = qauth_len ? auth : NULL,
                           .authorisation_ref_len = qauth_len,
                           .body_type = BAYGATE__PSI_BODY__PSI_BODY_QUERY,
                           .body = body,
                           .body_len = body_len};
        int rc = bg_env_seal(c.id, &f, true, max_msg, &env, &env_len, NULL, &err);
        free(env);
        if (rc == BG_OK && pc == P_NEAR_MAX_ELEMENTS && env_len + NEAR_MAX_ROOM > max_msg)
            rc = BG_ELIMIT; /* leave the answer its few extra bytes */
        if (rc == BG_OK) {
            fprintf(stderr, "fed_attack: near-max: %zu elements, %zu of %zu bytes\n", n, env_len,
                    max_msg);
            break;
        }
        free(el);
        free(body);
        el = body = NULL;
        if (rc != BG_ELIMIT || n <= 1) {
            ping_free(&c);
            return setup_fail("sealing near the maximum", &err);
        }
        n--;
        el_len = n * ELEM;
    }
    if (n > 0 && el_len >= ELEM)
        print_hex_element("sent", el);
    if (n > HOSTILE_AT && el_len >= (HOSTILE_AT + 1) * ELEM)
        print_hex_element("sent", el + HOSTILE_AT * ELEM);
    fprintf(stderr,
            "fed_attack: query list=%s purpose=%s gen=%llu epoch=%llu mode=%d n=%zu bytes=%zu "
            "chunk=%u/%u batch_items=%u\n",
            qlist, qpurpose, (unsigned long long)pq.generation, (unsigned long long)pq.epoch, mode,
            n, el_len, pq.chunk_index, pq.chunk_count, pq.batch_items);

    int sent_rc;
    if (pc == P_EXACT_MAX_ELEMENTS) {
        /* Exactly max_message_bytes: the slack left by whole elements is filled
         * with an authorisation reference (echoed in the answer, so the answer
         * grows with it). ECDSA signatures vary in length: seal until it fits. */
        uint8_t filler[BG_ENV_AUTH_REF_MAX];
        randombytes_buf(filler, sizeof filler);
        uint8_t *msg = NULL;
        size_t len = 0;
        bg_env_sent sent;
        for (size_t a = 0; a <= BG_ENV_AUTH_REF_MAX && len != max_msg; a++) {
            for (int t = 0; t < 16 && len != max_msg; t++) {
                free(msg);
                msg = NULL;
                len = 0;
                if (psi_seal(&c, &o.conn, qpurpose, filler, a, BAYGATE__PSI_BODY__PSI_BODY_QUERY,
                             body, body_len, max_msg, &msg, &len, &sent, &err) != BG_OK)
                    len = 0;
            }
            if (len == max_msg)
                fprintf(stderr, "fed_attack: exact-max: %zu-byte authorisation reference\n", a);
        }
        if (len != max_msg) {
            free(msg);
            free(el);
            free(body);
            ping_free(&c);
            return setup_fail("cannot seal exactly max_message_bytes", NULL);
        }
        sent_rc = psi_send(&c, &o.conn, BAYGATE__PSI_BODY__PSI_BODY_QUERY, msg, len, &sent, &ans,
                           line, sizeof line);
    } else {
        sent_rc = psi_call(&c, &o.conn, qpurpose, qauth_len ? auth : NULL, qauth_len,
                           BAYGATE__PSI_BODY__PSI_BODY_QUERY, body, body_len, seal_max, &ans, line,
                           sizeof line);
    }
    if (sent_rc == BG_OK) {
        Baygate__PsiAnswer *pa = ans->body_type == BAYGATE__PSI_BODY__PSI_BODY_ANSWER
                                     ? baygate__psi_answer__unpack(NULL, ans->body_len, ans->body)
                                     : NULL;
        if (pa == NULL) {
            snprintf(line, sizeof line, "answer bad not-a-psi-answer");
        } else if (pa->list == NULL || strcmp(pa->list, qlist) != 0 || (int)pa->mode != mode ||
                   pa->batch_id.len != BATCH_ID_LEN ||
                   memcmp(pa->batch_id.data, batch_id, BATCH_ID_LEN) != 0 ||
                   pa->chunk_index != pq.chunk_index || pa->elements.len != el_len) {
            snprintf(line, sizeof line, "answer bad mismatch");
        } else {
            size_t bad_points = 0;
            for (size_t i = 0; i < pa->elements.len / ELEM; i++)
                bad_points +=
                    !crypto_core_ristretto255_is_valid_point(pa->elements.data + i * ELEM);
            if (bad_points != 0)
                snprintf(line, sizeof line, "answer bad %zu-invalid-points", bad_points);
            else
                snprintf(line, sizeof line, "answer ok %zu", pa->elements.len / ELEM);
        }
        if (pa != NULL)
            baygate__psi_answer__free_unpacked(pa, NULL);
        bg_env_opened_free(ans);
    }
    printf("%s\n", line);
    fflush(stdout);
    free(el);
    free(body);
    ping_free(&c);
    return EXIT_RAN;
}

/* --------------------------------------------------------------- flood */

#define FLOOD_CONNS_MAX 16

static int
parse_flood(int argc, char **argv, struct ping_opts *o, int *conns, int *seconds)
{
    static const struct option opts[] = {
        CONN_OPTIONS,
        {"conns", required_argument, NULL, 'N'},
        {"seconds", required_argument, NULL, 'S'},
        {NULL, 0, NULL, 0},
    };
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch == 'N')
            *conns = atoi(optarg);
        else if (ch == 'S')
            *seconds = atoi(optarg);
        else if (!conn_opt(ch, o))
            return usage();
    }
    if (optind != argc || !conn_opts_ok(o) || *conns < 1 || *conns > FLOOD_CONNS_MAX ||
        *seconds < 1 || *seconds > 600)
        return usage();
    return EXIT_RAN;
}

/* One fresh good ping on cli; its outcome line in line. */
static void
flood_one(struct ping_ctx *c, bg_tp_client *cli, const struct ping_opts *o, char *line, size_t n)
{
    Baygate__Ping ping = BAYGATE__PING__INIT;
    ping.roster_serial = bg_roster_serial(c->roster);
    uint8_t body[32];
    size_t body_len = baygate__ping__pack(&ping, body);
    bg_env_fields f = {.recipient = o->to,
                       .body_type = BAYGATE__APP_BODY__APP_BODY_PING,
                       .body = body,
                       .body_len = body_len,
                       .purpose = "ping"};
    uint8_t *msg = NULL;
    size_t len = 0;
    bg_env_sent sent;
    bg_err err = {0};
    if (bg_env_seal(c->id, &f, true, bg_roster_max_message_bytes(c->roster), &msg, &len, &sent,
                    &err) != BG_OK) {
        snprintf(line, n, "seal-failed");
        return;
    }
    call_once(cli, c->verifier, o->to, msg, len, &sent, o->timeout_ms, line, n);
    free(msg);
}

/* Pings as fast as answers come, round robin over --conns connections, for --seconds. */
static int
cmd_flood(int argc, char **argv)
{
    struct ping_opts o = {.mutate = "none", .timeout_ms = 5000};
    int conns = 4, seconds = 5;
    if (parse_flood(argc, argv, &o, &conns, &seconds) != EXIT_RAN)
        return EXIT_USAGE;
    struct ping_ctx c = {0};
    bg_tp_client *cli[FLOOD_CONNS_MAX] = {0};
    bg_err err = {0};
    int rc = ping_setup(&o, M_NONE, &c, &err);
    cli[0] = c.cli;
    for (int i = 1; i < conns && rc == BG_OK; i++)
        rc = open_client(&o, &c, bg_roster_max_message_bytes(c.roster), &cli[i], &err);
    if (rc != BG_OK) {
        for (int i = 1; i < conns; i++)
            bg_tp_client_close(cli[i]);
        ping_free(&c);
        return setup_fail("setup", &err);
    }
    uint64_t sent = 0, ok = 0, limited = 0, other = 0;
    char expect_limited[48];
    /* 117: BG_GW_E_RATE (gateway/daemon/codes.h) */
    snprintf(expect_limited, sizeof expect_limited, "answer refused gateway %u", 117u);
    int64_t until = bg_env_now_ms() + (int64_t)seconds * 1000;
    while (bg_env_now_ms() < until) {
        char line[160];
        flood_one(&c, cli[sent % (uint64_t)conns], &o, line, sizeof line);
        sent++;
        if (strcmp(line, "answer ok") == 0)
            ok++;
        else if (strcmp(line, expect_limited) == 0)
            limited++;
        else if (other++ == 0)
            fprintf(stderr, "fed_attack: flood: first other outcome: %s\n", line);
    }
    printf("flood sent %llu ok %llu rate-limited %llu other %llu\n", (unsigned long long)sent,
           (unsigned long long)ok, (unsigned long long)limited, (unsigned long long)other);
    fflush(stdout);
    for (int i = 1; i < conns; i++)
        bg_tp_client_close(cli[i]);
    ping_free(&c);
    return EXIT_RAN;
}

/* --------------------------------------------------------------- relay */

struct relay_opts {
    struct ping_opts conn;
    const char *roster_file, *crl_file;
    uint64_t roster_serial, crl_number;
};

static int
parse_relay(int argc, char **argv, struct relay_opts *o)
{
    static const struct option opts[] = {
        CONN_OPTIONS,
        {"roster-file", required_argument, NULL, 'R'},
        {"crl-file", required_argument, NULL, 'C'},
        {"roster-serial", required_argument, NULL, 'S'},
        {"crl-number", required_argument, NULL, 'N'},
        {NULL, 0, NULL, 0},
    };
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'R':
            o->roster_file = optarg;
            break;
        case 'C':
            o->crl_file = optarg;
            break;
        case 'S':
            o->roster_serial = strtoull(optarg, NULL, 10);
            break;
        case 'N':
            o->crl_number = strtoull(optarg, NULL, 10);
            break;
        default:
            if (!conn_opt(ch, &o->conn))
                return usage();
        }
    }
    if (optind != argc || !conn_opts_ok(&o->conn))
        return usage();
    return EXIT_RAN;
}

/* The answer's line: its numbers, what it carried and refused (reasons on stderr). */
static void
relay_line(const bg_env_opened *ans, char *line, size_t n)
{
    Baygate__Artefacts *a = ans->body_type == BAYGATE__RELAY_BODY__RELAY_BODY_HELD
                                ? baygate__artefacts__unpack(NULL, ans->body_len, ans->body)
                                : NULL;
    if (a == NULL) {
        snprintf(line, n, "answer bad not-artefacts");
        return;
    }
    if (a->roster_refused[0] != '\0')
        fprintf(stderr, "fed_attack: roster refused: %s\n", a->roster_refused);
    if (a->crl_refused[0] != '\0')
        fprintf(stderr, "fed_attack: crl refused: %s\n", a->crl_refused);
    snprintf(line, n, "answer ok roster %llu crl %llu%s%s%s%s",
             (unsigned long long)a->roster_serial, (unsigned long long)a->crl_number,
             a->roster.len ? " +roster" : "", a->crl.len ? " +crl" : "",
             a->roster_refused[0] ? " roster-refused" : "",
             a->crl_refused[0] ? " crl-refused" : "");
    baygate__artefacts__free_unpacked(a, NULL);
}

static int
cmd_relay(int argc, char **argv)
{
    struct relay_opts o = {.conn = {.timeout_ms = 15000}};
    if (parse_relay(argc, argv, &o) != EXIT_RAN)
        return EXIT_USAGE;
    struct ping_ctx c = {0};
    bg_err err = {0};
    uint8_t *roster = NULL, *crl = NULL;
    size_t roster_len = 0, crl_len = 0;
    /* Up to 4 MiB: files over the relay's own bounds are a case to send too. */
    if ((o.roster_file != NULL &&
         bg_file_read(o.roster_file, 4u << 20, &roster, &roster_len, NULL, &err) != BG_OK) ||
        (o.crl_file != NULL &&
         bg_file_read(o.crl_file, 4u << 20, &crl, &crl_len, NULL, &err) != BG_OK) ||
        ping_setup(&o.conn, M_NONE, &c, &err) != BG_OK) {
        free(roster);
        free(crl);
        ping_free(&c);
        return setup_fail("setup", &err);
    }
    Baygate__Artefacts a = BAYGATE__ARTEFACTS__INIT;
    a.roster_serial = o.roster_serial;
    a.crl_number = o.crl_number;
    a.roster.data = roster;
    a.roster.len = roster_len;
    a.crl.data = crl;
    a.crl.len = crl_len;
    size_t blen = baygate__artefacts__get_packed_size(&a);
    uint8_t *body = malloc(blen ? blen : 1);
    char line[200] = "setup out-of-memory";
    bg_env_opened *ans = NULL;
    if (body != NULL) {
        baygate__artefacts__pack(&a, body);
        if (psi_call(&c, &o.conn, "relay", NULL, 0, BAYGATE__RELAY_BODY__RELAY_BODY_OFFER, body,
                     blen, bg_roster_max_message_bytes(c.roster), &ans, line, sizeof line) == BG_OK)
            relay_line(ans, line, sizeof line);
    }
    printf("%s\n", line);
    fflush(stdout);
    bg_env_opened_free(ans);
    free(body);
    free(roster);
    free(crl);
    ping_free(&c);
    return EXIT_RAN;
}

int
main(int argc, char **argv)
{
    if (argc < 2)
        return usage();
    if (sodium_init() < 0)
        return setup_fail("libsodium failed to initialise", NULL);
    signal(SIGPIPE, SIG_IGN);
    const char *cmd = argv[1];
    if (strcmp(cmd, "freeport") == 0)
        return argc == 2 ? cmd_freeport() : usage();
    if (strcmp(cmd, "ping") == 0)
        return cmd_ping(argc - 1, argv + 1);
    if (strcmp(cmd, "psi") == 0)
        return cmd_psi(argc - 1, argv + 1);
    if (strcmp(cmd, "relay") == 0)
        return cmd_relay(argc - 1, argv + 1);
    if (strcmp(cmd, "raw-garbage") == 0)
        return cmd_raw_garbage(argc - 1, argv + 1);
    if (strcmp(cmd, "flood") == 0)
        return cmd_flood(argc - 1, argv + 1);
    if (strcmp(cmd, "stall") == 0)
        return cmd_stall(argc - 1, argv + 1);
    return usage();
}
