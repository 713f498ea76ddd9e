/*
 * fed_attack.c - a small hostile client for the federation integration test
 * (tests/federation_test.sh). Test-only: never installed, never linked into
 * baygate.
 *
 *   fed_attack freeport
 *   fed_attack ping --key K --cert C --ca CA --crl CRL --roster R --from CITY --to CITY
 *                   --url URL [--no-client-cert] [--server-name N] [--mutate CASE]
 *                   [--timeout-ms N]
 *   fed_attack raw-garbage --host H --port P [--bytes N]
 *   fed_attack stall --host H --port P --seconds S [--conns N]
 *
 * Each subcommand prints ONE machine-readable result line on stdout (details
 * go to stderr) and exits 0 if it ran, 2 on a usage or setup error:
 *   freeport      <port>
 *   ping          answer ok | answer refused <reason-name> <code> |
 *                 answer bad <reason-name> | answer not-pong | timeout |
 *                 transport <fail-name> | replay-first <outcome...>
 *   raw-garbage   sent <n>
 *   stall         connected <n>   (flushed at once), then closed when done
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
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/x509.h>
#include <sodium.h>

#include "api.pb-c.h"
#include "envelope.h"
#include "envelope.pb-c.h"
#include "pki.h"
#include "roster.h"
#include "sig.h"
#include "transport.h"
#include "trust.h"

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
            "       fed_attack raw-garbage --host H --port P [--bytes N]\n"
            "       fed_attack stall --host H --port P --seconds S [--conns N]\n");
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
    long bytes, seconds, conns;
};

static int
parse_raw(int argc, char **argv, struct raw_opts *o)
{
    static const struct option opts[] = {
        {"host", required_argument, NULL, 'H'},  {"port", required_argument, NULL, 'p'},
        {"bytes", required_argument, NULL, 'b'}, {"seconds", required_argument, NULL, 's'},
        {"conns", required_argument, NULL, 'c'}, {NULL, 0, NULL, 0},
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
    if (o.seconds < 1 || o.seconds > 3600 || o.conns < 1 || o.conns > 64)
        return usage();
    int fds[64];
    long n = 0;
    for (; n < o.conns; n++) {
        fds[n] = tcp_connect(o.host, o.port);
        if (fds[n] < 0)
            break;
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
    for (long i = 0; i < n; i++)
        close(fds[i]);
    printf("closed\n");
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
    if (strncmp(s, prefix, sizeof prefix - 1) == 0 &&
        bg_pki_city_code_valid(s + sizeof prefix - 1)) {
        *m = M_CLAIM_SENDER;
        snprintf(claimed, BG_CITY_CODE_LEN + 1, "%s", s + sizeof prefix - 1);
        return 0;
    }
    return -1;
}

/* The roster callback of our answer verifier. */
static int
member_fp(void *ctx, const char *city, uint8_t fp[BG_SIG_FP_LEN])
{
    const bg_roster_member *m = bg_roster_member_find(ctx, city);
    if (m == NULL)
        return BG_ENOTFOUND;
    memcpy(fp, m->cert_sha256, BG_SIG_FP_LEN);
    return BG_OK;
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
        fprintf(stderr, "fed_attack: call: %s\n", err.msg);
        if (fail == BG_TP_TIMEOUT)
            snprintf(line, n, "timeout");
        else
            snprintf(line, n, "transport %s", bg_tp_fail_name(fail));
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

static int
parse_ping(int argc, char **argv, struct ping_opts *o)
{
    static const struct option opts[] = {
        {"key", required_argument, NULL, 'k'},
        {"cert", required_argument, NULL, 'c'},
        {"ca", required_argument, NULL, 'a'},
        {"crl", required_argument, NULL, 'l'},
        {"roster", required_argument, NULL, 'r'},
        {"from", required_argument, NULL, 'f'},
        {"to", required_argument, NULL, 't'},
        {"url", required_argument, NULL, 'u'},
        {"no-client-cert", no_argument, NULL, 'n'},
        {"server-name", required_argument, NULL, 's'},
        {"mutate", required_argument, NULL, 'm'},
        {"timeout-ms", required_argument, NULL, 'T'},
        {NULL, 0, NULL, 0},
    };
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
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
        case 'n':
            o->no_client_cert = true;
            break;
        case 's':
            o->server_name = optarg;
            break;
        case 'm':
            o->mutate = optarg;
            break;
        case 'T':
            o->timeout_ms = atoi(optarg);
            break;
        default:
            return usage();
        }
    }
    if (optind != argc || o->key == NULL || o->cert == NULL || o->ca == NULL || o->crl == NULL ||
        o->roster == NULL || o->from == NULL || o->to == NULL || o->url == NULL ||
        !bg_pki_city_code_valid(o->from) || !bg_pki_city_code_valid(o->to) || o->timeout_ms < 1 ||
        o->timeout_ms > BG_TP_TIMEOUT_MAX_MS)
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
                                 .member_fp = member_fp,
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

    bg_tp_tls tls = {.cert_pem = o->no_client_cert ? NULL : c->cert_pem,
                     .key_pem = o->no_client_cert ? NULL : c->key_pem,
                     .ca_pem = c->ca_pem,
                     .crl_pem = c->crl_pem};
    bg_tp_client_opts co = {
        .url = o->url,
        .tls = &tls,
        .server_name = o->server_name != NULL ? o->server_name : o->to,
        .recv_max = max_msg,
        /* oversize: allowed to send what the peer will not take. */
        .send_max = m == M_OVERSIZE ? 2 * max_msg : max_msg,
    };
    return bg_tp_client_open(&c->cli, &co, err);
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
    if (strcmp(cmd, "raw-garbage") == 0)
        return cmd_raw_garbage(argc - 1, argv + 1);
    if (strcmp(cmd, "stall") == 0)
        return cmd_stall(argc - 1, argv + 1);
    return usage();
}
