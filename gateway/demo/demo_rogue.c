/*
 * demo_rogue.c - act 9: a stranger with a certificate from a look-alike CA
 * (same name, other key) tries to ping Shenzhen, run in this process with the
 * library, as a peer of the federation would.
 */
#include "gateway/demo/demo_int.h"

#include <stdio.h>
#include <string.h>

#include "certs/pki.h"
#include "certs/trust.h"
#include "gateway/cmdline/cmdline.h"
#include "gateway/daemon/fedping.h"
#include "peers/envelope.h"
#include "peers/roster.h"
#include "peers/transport.h"

#define ROGUE_MAX_MESSAGE 4194304

/* What a peer needs to talk to the federation: its identity, the federation's trust
 * and roster, and the TLS material in PEM for the transport. */
typedef struct rogue_kit {
    bg_env_identity *id;
    X509 *ca;
    bg_trust *trust;
    bg_roster *roster;
    bg_env_verifier *v;
    char *key_pem, *cert_pem, *ca_pem, *crl_pem;
    size_t key_len;
} rogue_kit;

static int
kit_pems(rogue_kit *k, const char *crl_path, bg_err *err)
{
    size_t n = 0;
    X509_CRL *crl = NULL;
    int rc = bg_pki_key_pem(k->id->key, &k->key_pem, &k->key_len, err);
    if (rc == BG_OK)
        rc = bg_pki_cert_pem(k->id->cert, &k->cert_pem, &n, err);
    if (rc == BG_OK)
        rc = bg_pki_cert_pem(k->ca, &k->ca_pem, &n, err);
    if (rc == BG_OK)
        rc = bg_pki_crl_load(crl_path, &crl, err);
    if (rc == BG_OK)
        rc = bg_pki_crl_pem(crl, &k->crl_pem, &n, err);
    X509_CRL_free(crl);
    return rc;
}

/* The rogue's key and certificate (from gw), the real CA, CRL and roster. */
static int
kit_open(rogue_kit *k, const char *gw, const char *ca, const char *crl, const char *roster,
         bg_err *err)
{
    int rc = bg_env_identity_load(&k->id, gw, NULL, NULL, err);
    if (rc == BG_OK)
        rc = bg_pki_cert_load(ca, &k->ca, err);
    if (rc == BG_OK)
        rc = bg_trust_open(&k->trust, ca, crl, 0, err);
    if (rc == BG_OK)
        rc = bg_roster_load_file(roster, k->ca, 0, NULL, &k->roster, NULL, err);
    if (rc == BG_OK) {
        bg_env_verifier_config vc = {.own_city = "440100",
                                     .trust = k->trust,
                                     .member_fp = bg_roster_member_fp,
                                     .member_ctx = k->roster};
        rc = bg_env_verifier_new(&k->v, &vc, err);
    }
    if (rc == BG_OK)
        rc = kit_pems(k, crl, err);
    return rc;
}

static void
kit_close(rogue_kit *k)
{
    bg_env_verifier_free(k->v);
    bg_roster_free(k->roster);
    bg_trust_free(k->trust);
    X509_free(k->ca);
    bg_env_identity_free(k->id);
    if (k->key_pem != NULL)
        bg_pki_secret_free(k->key_pem, k->key_len);
    OPENSSL_free(k->cert_pem);
    OPENSSL_free(k->ca_pem);
    OPENSSL_free(k->crl_pem);
}

/* One authenticated ping of Shenzhen with the kit; res says how it went. */
static int
rogue_ping(demo *d, rogue_kit *k, bg_fedping_result *res, bg_err *err)
{
    bg_tp_tls tls = {
        .cert_pem = k->cert_pem, .key_pem = k->key_pem, .ca_pem = k->ca_pem, .crl_pem = k->crl_pem};
    char url[64];
    snprintf(url, sizeof url, "tls+tcp://127.0.0.1:%d", d->ports[SZ]);
    bg_tp_client_opts o = {.url = url,
                           .tls = &tls,
                           .server_name = demo_cities[SZ].code,
                           .recv_max = ROGUE_MAX_MESSAGE,
                           .send_max = ROGUE_MAX_MESSAGE};
    bg_tp_client *cli = NULL;
    int rc = bg_tp_client_open(&cli, &o, err);
    if (rc == BG_OK)
        bg_fedping(cli, k->id, k->v, demo_cities[SZ].code, url, 1, ROGUE_MAX_MESSAGE, true, 3000,
                   res);
    bg_tp_client_close(cli);
    return rc;
}

int
demo_rogue_act(demo *d)
{
    char rca[DEMO_PATH], rgw[DEMO_PATH], csr[DEMO_PATH], crt[DEMO_PATH], realca[DEMO_PATH],
        crl[DEMO_PATH], sz[DEMO_PATH], pb[DEMO_PATH];
    if (!demo_path(rca, sizeof rca, "%s/rogue-ca", d->dir) ||
        !demo_path(rgw, sizeof rgw, "%s/rogue", d->dir) ||
        !demo_path(csr, sizeof csr, "%s/city.csr", rgw) ||
        !demo_path(crt, sizeof crt, "%s/city.crt", rgw) ||
        !demo_path(realca, sizeof realca, "%s/federation-ca/ca.crt", d->dir) ||
        !demo_path(crl, sizeof crl, "%s/crl.pem", d->dir) ||
        !demo_path(sz, sizeof sz, "%s/%s", d->dir, demo_cities[SZ].code) ||
        !demo_path(pb, sizeof pb, "%s/roster.pb", d->dir))
        return BG_EXIT_ERROR;
    printf("\n9. A rogue makes a CA with the federation's exact name and a certificate\n"
           "   claiming to be Guangzhou, then asks Shenzhen:\n");
    DEMO_RUN(d, DEMO_ECHO, "ca", "init", "--dir", rca, "--name", DEMO_FEDERATION_NAME);
    DEMO_RUN(d, DEMO_QUIET, "init", "--city", "440100", "--name", "Guangzhou", "--dir", rgw);
    DEMO_RUN(d, DEMO_ECHO, "ca", "issue", "--dir", rca, "--csr", csr, "--out", crt);

    bg_err err = {0};
    rogue_kit k;
    memset(&k, 0, sizeof k);
    bg_fedping_result res = {.error = ""};
    int rc = kit_open(&k, rgw, realca, crl, pb, &err);
    if (rc == BG_OK)
        rc = rogue_ping(d, &k, &res, &err);
    kit_close(&k);
    demo_tally(d, rc == BG_OK && !res.ok);
    if (rc != BG_OK)
        printf("   (could not run the rogue: %s)\n", err.msg);
    else if (res.ok)
        printf("   !! Shenzhen answered the rogue: this must never happen\n");
    else
        printf("   refused: %s\n", res.error);
    if (rc == BG_OK && res.ok)
        return BG_EXIT_FAIL;

    printf("\n   Shenzhen's own account (its TLS layer refused the stranger before any\n"
           "   envelope was read):\n");
    DEMO_RUN(d, DEMO_SHOW, "status", "--dir", sz);
    return BG_EXIT_OK;
}
