/*
 * demo_pki.c - act 1: the federation's CA, each city's key and certificate,
 * the signed roster and the CRL, copied into every gateway directory.
 */
#include "gateway/demo/demo_int.h"

#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gateway/cmdline/cmdline.h"
#include "gateway/config/config.h"

static int
free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int port = -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

/* Signed tree heads every second and witness rounds every two (the defaults are
 * a minute and five), so the tour sees its evidence cosigned within seconds.
 * Rewritten through the config module, which is how `init` wrote the file. */
static int
quick_audit(const char *gw)
{
    char ini[DEMO_PATH];
    if (!demo_path(ini, sizeof ini, "%s/%s", gw, BG_CONFIG_FILE))
        return BG_EXIT_ERROR;
    bg_config cfg;
    bg_err err = {0};
    if (bg_config_load(ini, &cfg, &err) != BG_OK ||
        bg_config_set(&cfg, "audit", "head_interval_s", "1", &err) != BG_OK ||
        bg_config_set(&cfg, "audit", "witness_interval_s", "2", &err) != BG_OK ||
        bg_config_write(ini, &cfg, true, &err) != BG_OK)
        return bg_cli_fail("demo", "setting [audit] in %s: %s", ini, err.msg);
    return BG_EXIT_OK;
}

/* "A:1, B:2, ..." for the roster, from the city's scale and common ranks. */
static int
grade_map_text(const demo_city *c, char *out, size_t size)
{
    bg_scale scale;
    bg_err err = {0};
    if (bg_scale_parse(c->scale, &scale, &err) != BG_OK)
        return bg_cli_fail("demo", "%s's scale %s: %s", c->name, c->scale, err.msg);
    size_t len = 0;
    out[0] = '\0';
    for (size_t g = 0; g < scale.ngrades; g++) {
        int n = snprintf(out + len, size - len, "%s%s:%u", g ? ", " : "", scale.grades[g],
                         c->common[g]);
        if (n < 0 || (size_t)n >= size - len)
            return bg_cli_fail("demo", "%s's grade map is too long", c->name);
        len += (size_t)n;
    }
    return BG_EXIT_OK;
}

/* The CA, then each city's directory, key, certificate and the CA's certificate. */
static int
make_cities(demo *d, const char *ca)
{
    DEMO_RUN(d, DEMO_ECHO, "ca", "init", "--dir", ca, "--name", DEMO_FEDERATION_NAME);
    for (size_t i = 0; i < NDEMO; i++) {
        char gw[DEMO_PATH], csr[DEMO_PATH], crt[DEMO_PATH], cacrt[DEMO_PATH], listen[64];
        d->ports[i] = free_port();
        if (d->ports[i] <= 0)
            return bg_cli_fail("demo", "no free port on 127.0.0.1");
        if (!demo_path(gw, sizeof gw, "%s/%s", d->dir, demo_cities[i].code) ||
            !demo_path(csr, sizeof csr, "%s/city.csr", gw) ||
            !demo_path(crt, sizeof crt, "%s/city.crt", gw) ||
            !demo_path(cacrt, sizeof cacrt, "%s/ca.crt", gw))
            return BG_EXIT_ERROR;
        snprintf(listen, sizeof listen, "tls+tcp://127.0.0.1:%d", d->ports[i]);
        DEMO_RUN(d, DEMO_ECHO, "init", "--city", demo_cities[i].code, "--name", demo_cities[i].name,
                 "--dir", gw, "--listen", listen);
        DEMO_RUN(d, DEMO_ECHO, "ca", "issue", "--dir", ca, "--csr", csr, "--out", crt);
        DEMO_RUN(d, DEMO_QUIET, "ca", "cert", "--dir", ca, "--out", cacrt);
        if (quick_audit(gw) != BG_EXIT_OK)
            return BG_EXIT_ERROR;
    }
    return BG_EXIT_OK;
}

static void
roster_members(demo *d, FILE *f, char maps[NDEMO][160])
{
    for (size_t i = 0; i < NDEMO; i++)
        fprintf(f,
                "\n[member %s]\nname = %s\nendpoint = tls+tcp://127.0.0.1:%d\n"
                "certificate = %s/city.crt\nlists = serious-dishonesty, abnormal-operation\n"
                "scale = %s\ngrade_map = %s\n",
                demo_cities[i].code, demo_cities[i].name, d->ports[i], demo_cities[i].code,
                demo_cities[i].scale, maps[i]);
    for (size_t a = 0; a < NDEMO; a++)
        for (size_t b = 0; b < NDEMO; b++)
            if (a != b)
                fprintf(f,
                        "\n[permission %s -> %s]\npurposes = supervision, lending\n"
                        "lists = serious-dishonesty, abnormal-operation\n"
                        "quota_items_per_day = 1000000\nmin_count_batch = 16\n",
                        demo_cities[a].code, demo_cities[b].code);
}

/* The roster source: everyone may ask everyone about both lists, for both purposes. */
static int
write_roster(demo *d, const char *ini, char maps[NDEMO][160])
{
    for (size_t i = 0; i < NDEMO; i++)
        if (grade_map_text(&demo_cities[i], maps[i], sizeof maps[i]) != BG_EXIT_OK)
            return BG_EXIT_ERROR;
    FILE *f = fopen(ini, "w");
    if (f == NULL)
        return bg_cli_fail("demo", "cannot write %s", ini);
    fprintf(f,
            "; The federation roster: who is in, where, with which certificate, who may\n"
            "; ask whom about what. Signed by the federation CA key.\n"
            "[federation]\nname = %s\nserial = 1\nmax_message_bytes = 4194304\n"
            "common_scale = 1,2,3,4\n\n[purpose supervision]\nneeds_authorisation = false\n\n"
            "[purpose lending]\nneeds_authorisation = true\n",
            DEMO_FEDERATION_NAME);
    roster_members(d, f, maps);
    if (fclose(f) != 0)
        return bg_cli_fail("demo", "cannot write %s", ini);
    return BG_EXIT_OK;
}

int
demo_pki_act(demo *d)
{
    char ca[DEMO_PATH], ini[DEMO_PATH], pb[DEMO_PATH], crl[DEMO_PATH], maps[NDEMO][160];
    if (!demo_path(ca, sizeof ca, "%s/federation-ca", d->dir) ||
        !demo_path(ini, sizeof ini, "%s/roster.ini", d->dir) ||
        !demo_path(pb, sizeof pb, "%s/roster.pb", d->dir) ||
        !demo_path(crl, sizeof crl, "%s/crl.pem", d->dir))
        return BG_EXIT_ERROR;

    printf("\n1. The federation operator creates the CA; each city makes its own key\n"
           "   (it never leaves the city) and gets a certificate for its city code.\n");
    int rc = make_cities(d, ca);
    if (rc != BG_EXIT_OK)
        return rc;
    printf("   (each city's baygate.ini: [audit] head_interval_s = 1, witness_interval_s = 2,\n"
           "   so the tour sees signed tree heads and cosignatures within seconds)\n");
    if (write_roster(d, ini, maps) != BG_EXIT_OK)
        return BG_EXIT_ERROR;

    printf("\n   The roster also says how each city grades, best first, and what each grade\n"
           "   means on the federation's common scale 1..4:\n");
    for (size_t i = 0; i < NDEMO; i++)
        printf("     %-10s scale %-16s grade_map %s\n", demo_cities[i].name, demo_cities[i].scale,
               maps[i]);
    printf("\n   The operator signs the roster and publishes a CRL; every city gets both.\n");
    DEMO_RUN(d, DEMO_ECHO, "roster", "sign", "--ca", ca, "--out", pb, ini);
    DEMO_RUN(d, DEMO_ECHO, "ca", "crl", "--dir", ca, "--out", crl);
    for (size_t i = 0; i < NDEMO; i++) {
        char to[DEMO_PATH];
        if (!demo_path(to, sizeof to, "%s/%s/roster.pb", d->dir, demo_cities[i].code) ||
            demo_copy_file(pb, to) != BG_EXIT_OK ||
            !demo_path(to, sizeof to, "%s/%s/crl.pem", d->dir, demo_cities[i].code) ||
            demo_copy_file(crl, to) != BG_EXIT_OK)
            return BG_EXIT_ERROR;
    }
    return BG_EXIT_OK;
}
