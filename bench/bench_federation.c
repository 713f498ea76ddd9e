/*
 * bench_federation.c - what a federation round trip costs, measured against
 * a running gateway (bench/federation.sh starts one).
 *
 * usage: bench_federation --dir GW --peer CITY [--seconds S]
 *
 * Uses GW's own material (key, certificate, CA, CRL, roster) as the asker and
 * prints a table: TLS handshake + first signed ping, ping round trips per
 * second with 1 and 8 concurrent clients, and the envelope costs underneath
 * (seal, open with and without a cached certificate, raw sign and verify).
 * Asserts nothing.
 */
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "certs/pki.h"
#include "certs/trust.h"
#include "gateway/config/config.h"
#include "gateway/daemon/fedping.h"
#include "peers/envelope.h"
#include "peers/roster.h"
#include "peers/transport.h"

typedef struct bench {
    bg_config cfg;
    bg_env_identity *id;
    X509 *ca;
    bg_roster *roster;
    bg_trust *trust;
    bg_env_verifier *v;
    char *key_pem, *cert_pem, *ca_pem, *crl_pem;
    size_t key_len;
    const bg_roster_member *peer;
    int seconds;
} bench;

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int
open_client(bench *b, bg_tp_client **cli)
{
    bg_tp_tls tls = {
        .cert_pem = b->cert_pem, .key_pem = b->key_pem, .ca_pem = b->ca_pem, .crl_pem = b->crl_pem};
    bg_tp_client_opts o = {.url = b->peer->endpoint,
                           .tls = &tls,
                           .server_name = b->peer->city,
                           .recv_max = b->cfg.recv_max_bytes,
                           .send_max = bg_roster_max_message_bytes(b->roster)};
    bg_err err = {0};
    if (bg_tp_client_open(cli, &o, &err) != BG_OK) {
        fprintf(stderr, "client: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static bool
ping(bench *b, bg_tp_client *cli, bool with_cert)
{
    bg_fedping_result r;
    bg_fedping(cli, b->id, b->v, b->peer->city, b->peer->endpoint, bg_roster_serial(b->roster),
               bg_roster_max_message_bytes(b->roster), with_cert, 10000, &r);
    if (!r.ok)
        fprintf(stderr, "ping: %s\n", r.error);
    return r.ok;
}

static void
row(const char *what, double count, double seconds)
{
    printf("| %-44s | %9.0f | %10.1f | %9.1f |\n", what, count, count / seconds,
           seconds / count * 1e6);
}

typedef struct worker {
    bench *b;
    bg_tp_client *cli;
    atomic_bool *stop;
    uint64_t done, failed;
    pthread_t t;
} worker;

static void *
work(void *arg)
{
    worker *w = arg;
    while (!atomic_load(w->stop)) {
        if (ping(w->b, w->cli, false))
            w->done++;
        else
            w->failed++;
    }
    return NULL;
}

static void
throughput(bench *b, int nclients)
{
    worker w[8];
    atomic_bool stop = false;
    for (int i = 0; i < nclients; i++) {
        memset(&w[i], 0, sizeof w[i]);
        w[i].b = b;
        w[i].stop = &stop;
        if (open_client(b, &w[i].cli) != 0 || !ping(b, w[i].cli, true)) /* warm: TLS + cert */
            return;
    }
    double t0 = now_s();
    for (int i = 0; i < nclients; i++)
        pthread_create(&w[i].t, NULL, work, &w[i]);
    struct timespec run = {.tv_sec = b->seconds};
    nanosleep(&run, NULL);
    atomic_store(&stop, true);
    uint64_t done = 0, failed = 0;
    for (int i = 0; i < nclients; i++) {
        pthread_join(w[i].t, NULL);
        done += w[i].done;
        failed += w[i].failed;
        bg_tp_client_close(w[i].cli);
    }
    double t = now_s() - t0;
    char what[64];
    snprintf(what, sizeof what, "signed ping round trips, %d client%s", nclients,
             nclients > 1 ? "s" : "");
    row(what, (double)done, t);
    if (failed)
        printf("|   (%llu failed) |\n", (unsigned long long)failed);
}

static void
envelope_costs(bench *b)
{
    /* Sealed to ourselves, so our own verifier can open them. */
    const int n = 2000;
    uint8_t body[64] = {0};
    bg_env_fields f = {
        .recipient = b->cfg.city, .body_type = 16, .body = body, .body_len = sizeof body};
    uint8_t **msgs = calloc((size_t)n, sizeof *msgs);
    size_t *lens = calloc((size_t)n, sizeof *lens);
    if (msgs == NULL || lens == NULL)
        return;
    double t0 = now_s();
    for (int i = 0; i < n; i++)
        bg_env_seal(b->id, &f, true, 1 << 20, &msgs[i], &lens[i], NULL, NULL);
    row("envelope seal (ECDSA P-256 sign)", n, now_s() - t0);
    t0 = now_s();
    int opened = 0;
    for (int i = 0; i < n; i++) {
        bg_env_opened *o = NULL;
        bg_env_refusal ref;
        if (msgs[i] != NULL && bg_env_open(b->v, msgs[i], lens[i], 0, &o, &ref, NULL) == BG_ENV_OK)
            opened++;
        bg_env_opened_free(o);
        free(msgs[i]);
    }
    row("envelope open, certificate cached", opened, now_s() - t0);
    free(msgs);
    free(lens);

    /* First contact: the full chain + CRL + name check, no cache. */
    uint8_t *der = NULL;
    size_t der_len = 0;
    if (bg_pki_cert_to_der(b->id->cert, &der, &der_len, NULL) == BG_OK) {
        int m = 500;
        t0 = now_s();
        for (int i = 0; i < m; i++) {
            bg_trust *t = NULL;
            if (bg_trust_open(&t, b->cfg.ca_path, b->cfg.crl_path, 0, NULL) != BG_OK)
                break;
            bg_trust_verify(t, der, der_len, b->cfg.city, NULL, NULL, NULL);
            bg_trust_free(t);
        }
        row("certificate check, first contact (+ load CA)", m, now_s() - t0);
        OPENSSL_free(der);
    }
}

/* GW's own material (configuration, key, certificate, CA, CRL, roster) and a verifier,
 * for asking peer. 0, or 1 with the reason on stderr. */
static int
load(bench *b, const char *dir, const char *peer)
{
    char path[BG_CONFIG_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/%s", dir, BG_CONFIG_FILE);
    bg_err err = {0};
    X509_CRL *crl = NULL;
    size_t n;
    if (bg_config_load(path, &b->cfg, &err) != BG_OK ||
        bg_env_identity_load(&b->id, b->cfg.dir, b->cfg.key_path, b->cfg.cert_path, &err) !=
            BG_OK ||
        bg_pki_cert_load(b->cfg.ca_path, &b->ca, &err) != BG_OK ||
        bg_pki_crl_load(b->cfg.crl_path, &crl, &err) != BG_OK ||
        bg_roster_load_file(b->cfg.roster_path, b->ca, 0, NULL, &b->roster, NULL, &err) != BG_OK ||
        bg_trust_open(&b->trust, b->cfg.ca_path, b->cfg.crl_path, 0, &err) != BG_OK ||
        bg_pki_key_pem(b->id->key, &b->key_pem, &b->key_len, &err) != BG_OK ||
        bg_pki_cert_pem(b->id->cert, &b->cert_pem, &n, &err) != BG_OK ||
        bg_pki_cert_pem(b->ca, &b->ca_pem, &n, &err) != BG_OK ||
        bg_pki_crl_pem(crl, &b->crl_pem, &n, &err) != BG_OK) {
        fprintf(stderr, "bench: %s\n", err.msg);
        return 1;
    }
    X509_CRL_free(crl);
    b->peer = bg_roster_member_find(b->roster, peer);
    if (b->peer == NULL) {
        fprintf(stderr, "bench: %s is not in the roster\n", peer);
        return 1;
    }
    bg_env_verifier_config vc = {.own_city = b->cfg.city,
                                 .trust = b->trust,
                                 .member_fp = bg_roster_member_fp,
                                 .member_ctx = b->roster,
                                 .replay_capacity = 1u << 22};
    if (bg_env_verifier_new(&b->v, &vc, &err) != BG_OK) {
        fprintf(stderr, "bench: %s\n", err.msg);
        return 1;
    }
    return 0;
}

/* New connection each time: TCP + TLS 1.2 handshake + first signed ping. */
static void
handshakes(bench *b)
{
    int m = 20, ok = 0;
    double total = 0;
    for (int i = 0; i < m; i++) {
        bg_tp_client *cli = NULL;
        if (open_client(b, &cli) != 0)
            break;
        double t0 = now_s();
        ok += ping(b, cli, true);
        total += now_s() - t0;
        bg_tp_client_close(cli);
    }
    row("TLS handshake + first signed ping (new conn)", ok, total);
}

int
main(int argc, char **argv)
{
    static const struct option opts[] = {{"dir", required_argument, NULL, 'd'},
                                         {"peer", required_argument, NULL, 'p'},
                                         {"seconds", required_argument, NULL, 's'},
                                         {NULL, 0, NULL, 0}};
    const char *dir = NULL, *peer = NULL;
    bench b = {.seconds = 5};
    int ch;
    while ((ch = getopt_long(argc, argv, "d:p:s:", opts, NULL)) != -1) {
        if (ch == 'd')
            dir = optarg;
        else if (ch == 'p')
            peer = optarg;
        else if (ch == 's')
            b.seconds = atoi(optarg);
        else
            return 2;
    }
    if (dir == NULL || peer == NULL || b.seconds < 1) {
        fprintf(stderr, "usage: bench_federation --dir GW --peer CITY [--seconds S]\n");
        return 2;
    }
    if (load(&b, dir, peer) != 0)
        return 1;

    printf("baygate federation benchmark: %s -> %s at %s, %d s per throughput run\n\n", b.cfg.city,
           peer, b.peer->endpoint, b.seconds);
    printf("| %-44s | %9s | %10s | %9s |\n", "operation", "count", "per second", "us each");
    printf(
        "|----------------------------------------------|-----------|------------|-----------|\n");
    handshakes(&b);
    throughput(&b, 1);
    throughput(&b, 8);
    envelope_costs(&b);

    bg_env_verifier_free(b.v);
    bg_trust_free(b.trust);
    bg_roster_free(b.roster);
    X509_free(b.ca);
    bg_env_identity_free(b.id);
    bg_pki_secret_free(b.key_pem, b.key_len);
    OPENSSL_free(b.cert_pem);
    OPENSSL_free(b.ca_pem);
    OPENSSL_free(b.crl_pem);
    return 0;
}
