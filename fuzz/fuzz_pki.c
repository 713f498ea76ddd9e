/* fuzz_pki.c - the harnesses' federation, made once (see fuzz_pki.h). */
#include "fuzz/fuzz_pki.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/err.h"
#include "fuzz/fuzz.h"

const char BG_FUZZ_ROSTER_INI[] = "[federation]\n"
                                  "name = Fuzz Federation\n"
                                  "serial = 2\n"
                                  "max_message_bytes = 1048576\n"
                                  "common_scale = 1,2,3,4\n"
                                  "\n"
                                  "[purpose supervision]\n"
                                  "needs_authorisation = false\n"
                                  "\n"
                                  "[purpose lending]\n"
                                  "needs_authorisation = true\n"
                                  "\n"
                                  "[member 440100]\n"
                                  "name = Guangzhou\n"
                                  "endpoint = tls+tcp://127.0.0.1:7501\n"
                                  "certificate = 440100.crt\n"
                                  "lists = serious-dishonesty, abnormal-operation\n"
                                  "scale = ABCD=A,B,C,D\n"
                                  "grade_map = A:1, B:2, C:3, D:4\n"
                                  "\n"
                                  "[member 440300]\n"
                                  "name = Shenzhen\n"
                                  "endpoint = tls+tcp://127.0.0.1:7502\n"
                                  "certificate = 440300.crt\n"
                                  "lists = serious-dishonesty\n"
                                  "scale = SZ=AAA,AA,A,B,C\n"
                                  "grade_map = AAA:1, AA:1, A:2, B:3, C:4\n"
                                  "\n"
                                  "[permission 440100 -> 440300]\n"
                                  "purposes = supervision, lending\n"
                                  "lists = serious-dishonesty\n"
                                  "quota_items_per_day = 1000000\n"
                                  "min_count_batch = 16\n";

static bg_fuzz_pki pki;
static int made;

/* Set-up failures are not findings: say what failed and stop. */
static void
need(int rc, const char *what, const bg_err *err)
{
    if (rc != BG_OK) {
        fprintf(stderr, "fuzz: set-up failed: %s: %s\n", what, err->msg);
        abort();
    }
}

static void
city_make(bg_fuzz_city *c, const char *code, const char *name, time_t now)
{
    bg_err err = {0};
    X509_REQ *req = NULL;
    c->code = code;
    need(bg_pki_key_generate(&c->key, &err), "key", &err);
    need(bg_pki_csr_make(c->key, code, name, &req, &err), "csr", &err);
    need(bg_pki_ca_issue(pki.ca, req, now - 3600, now + 300 * 86400, &c->cert, &err), "issue",
         &err);
    X509_REQ_free(req);
    need(bg_pki_cert_to_der(c->cert, &c->der, &c->der_len, &err), "der", &err);
    need(bg_env_identity_new(&c->id, c->key, c->cert, &err), "identity", &err);
    char path[PATH_MAX], file[16];
    snprintf(file, sizeof file, "%s.crt", code);
    bg_fuzz_path(path, sizeof path, file);
    need(bg_pki_cert_write(path, c->cert, &err), "cert write", &err);
}

const bg_fuzz_pki *
bg_fuzz_pki_get(void)
{
    if (made)
        return &pki;
    bg_err err = {0};
    char dir[PATH_MAX];
    bg_fuzz_path(dir, sizeof dir, "ca");
    need(bg_pki_ca_init(dir, "Fuzz Federation", 3650, &err), "ca init", &err);
    need(bg_pki_ca_open(&pki.ca, dir, &err), "ca open", &err);
    pki.ca_cert = bg_pki_ca_cert(pki.ca);
    time_t now = time(NULL);
    city_make(&pki.gz, BG_FUZZ_GZ, "Guangzhou", now);
    city_make(&pki.sz, BG_FUZZ_SZ, "Shenzhen", now);
    need(bg_pki_ca_crl(pki.ca, now, 300 * 86400, &pki.crl, &err), "crl", &err);
    need(bg_trust_new(&pki.trust, pki.ca_cert, pki.crl, 0, &err), "trust", &err);
    need(bg_roster_parse_ini_text(BG_FUZZ_ROSTER_INI, strlen(BG_FUZZ_ROSTER_INI), bg_fuzz_scratch(),
                                  "fuzz-roster.ini", pki.ca_cert, &pki.roster, &err),
         "roster", &err);
    need(bg_roster_sign(pki.roster, bg_pki_ca_key(pki.ca), pki.ca_cert, &pki.roster_pb,
                        &pki.roster_pb_len, &err),
         "roster sign", &err);
    made = 1;
    return &pki;
}

int
bg_fuzz_member_fp(void *ctx, const char *city, uint8_t fp_out[][BG_SIG_FP_LEN], size_t *n)
{
    (void)ctx;
    return bg_roster_member_fp(pki.roster, city, fp_out, n);
}
