/*
 * cmd_init.c - baygate init: create a city gateway directory.
 *
 * DIR (0700) gets baygate.ini, city.key (P-256, 0600, made here and never
 * sent anywhere) and city.csr (subject CN = city code, O = name; requested
 * DNS SAN = city code) for the federation operator. Everything is checked before anything is
 * created, nothing existing is overwritten, and a failure part way removes
 * what this run created.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "certs/pki.h"
#include "certs/sig.h"
#include "domain/city.h"
#include "gateway/cli/cli.h"
#include "gateway/config/config.h"

#define CSR_FILE "city.csr"

static void
init_usage(FILE *f)
{
    fprintf(
        f,
        "usage: baygate init --city CODE --name NAME --dir DIR [--listen URL]\n\n"
        "Creates a city gateway directory DIR (mode 0700) holding:\n"
        "  %s  configuration (listen address, local API socket, paths, timeouts)\n"
        "  city.key     the city's private key (ECDSA P-256, mode 0600; never leaves DIR)\n"
        "  %s     the certificate request to send to the federation operator\n"
        "CODE is the city's 6-digit division code, one of the Greater Bay Area's\n"
        "(Guangzhou 440100, Shenzhen 440300, Foshan 440600, ...; a wrong one is refused\n"
        "with the list); URL defaults to %s.\n"
        "DIR must not exist or be empty: init never overwrites anything.\n"
        "\n"
        "EXAMPLES\n"
        "  baygate init --city 440100 --name Guangzhou --dir GZ --listen tls+tcp://0.0.0.0:7501\n"
        "\n"
        "EXIT STATUS\n"
        "  0  created\n"
        "  2  usage or operational error (DIR not empty, unknown city code)\n",
        BG_CONFIG_FILE, CSR_FILE, BG_CONFIG_LISTEN_DEFAULT);
}

/* Makes dir (0700), or accepts an existing empty directory. */
static int
prepare_dir(const char *dir, bool *created, bg_err *err)
{
    *created = false;
    if (mkdir(dir, 0700) == 0) {
        *created = true;
        return BG_OK;
    }
    if (errno != EEXIST)
        return bg_err_set(err, BG_EIO, "cannot create %s: %s", dir, strerror(errno));
    DIR *d = opendir(dir);
    if (d == NULL)
        return bg_err_set(err, BG_EEXIST, "%s exists and is not a directory", dir);
    struct dirent *e;
    bool empty = true;
    while (empty && (e = readdir(d)) != NULL)
        empty = strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0;
    closedir(d);
    if (!empty)
        return bg_err_set(err, BG_EEXIST, "%s exists and is not empty; not overwriting anything",
                          dir);
    return BG_OK;
}

/* The files of one init run, removed again if it fails. */
struct made {
    char key[BG_CONFIG_PATH_MAX], csr[BG_CONFIG_PATH_MAX + 16], ini[BG_CONFIG_PATH_MAX + 16];
    bool have_key, have_csr, have_ini, have_dir;
};

static void
undo(const struct made *m, const char *dir)
{
    if (m->have_ini)
        unlink(m->ini);
    if (m->have_csr)
        unlink(m->csr);
    if (m->have_key)
        unlink(m->key);
    if (m->have_dir)
        rmdir(dir);
}

static int
create(const bg_config *cfg, const char *dir, struct made *m, uint8_t key_fp[BG_SIG_FP_LEN],
       bg_err *err)
{
    int n1 = snprintf(m->csr, sizeof m->csr, "%s/%s", cfg->dir, CSR_FILE);
    int n2 = snprintf(m->ini, sizeof m->ini, "%s/%s", cfg->dir, BG_CONFIG_FILE);
    if (n1 < 0 || (size_t)n1 >= sizeof m->csr || n2 < 0 || (size_t)n2 >= sizeof m->ini)
        return bg_err_set(err, BG_ELIMIT, "directory path too long");
    snprintf(m->key, sizeof m->key, "%s", cfg->key_path);
    int rc = prepare_dir(dir, &m->have_dir, err);
    if (rc != BG_OK)
        return rc;
    EVP_PKEY *key = NULL;
    X509_REQ *req = NULL;
    if ((rc = bg_pki_key_generate(&key, err)) != BG_OK)
        goto out;
    if ((rc = bg_pki_key_write_new(m->key, key, err)) != BG_OK)
        goto out;
    m->have_key = true;
    if ((rc = bg_pki_csr_make(key, cfg->city, cfg->name, &req, err)) != BG_OK ||
        (rc = bg_pki_key_fingerprint(key, key_fp, err)) != BG_OK ||
        (rc = bg_pki_csr_write_new(m->csr, req, err)) != BG_OK)
        goto out;
    m->have_csr = true;
    if ((rc = bg_config_write(m->ini, cfg, false, err)) != BG_OK)
        goto out;
    m->have_ini = true;
out:
    X509_REQ_free(req);
    EVP_PKEY_free(key); /* frees (and clears) the private key */
    return rc;
}

int
bg_cmd_init(int argc, char **argv)
{
    static const struct option opts[] = {
        {"city", required_argument, NULL, 'c'}, {"name", required_argument, NULL, 'n'},
        {"dir", required_argument, NULL, 'd'},  {"listen", required_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},       {NULL, 0, NULL, 0},
    };
    const char *city = NULL, *name = NULL, *dir = NULL, *listen = NULL;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            city = optarg;
            break;
        case 'n':
            name = optarg;
            break;
        case 'd':
            dir = optarg;
            break;
        case 'l':
            listen = optarg;
            break;
        case 'h':
            init_usage(stdout);
            return BG_EXIT_OK;
        default:
            return bg_cli_bad_option("init", ch, argv, opts);
        }
    }
    if (optind < argc)
        return bg_cli_usage_error("init", "unexpected argument '%s'", argv[optind]);
    if (city == NULL || name == NULL || dir == NULL)
        return bg_cli_usage_error("init", "--city, --name and --dir are required");
    if (!bg_city_code_valid(city))
        return bg_cli_fail("init", "--city: '%s' is not a 6-digit city code", city);
    if (bg_city_name(city) == NULL) {
        char known[512];
        bg_city_known_list(known, sizeof known);
        return bg_cli_fail("init", "%s is not a known division code (known: %s)", city, known);
    }
    if (!bg_pki_name_valid(name))
        return bg_cli_fail("init",
                           "--name: must be 1-%d bytes of UTF-8 without control characters "
                           "or surrounding spaces",
                           BG_PKI_NAME_MAX);

    /* All checks first (the config holds every value), so nothing is made in vain. */
    bg_config cfg;
    bg_err err = {0};
    if (bg_config_defaults(&cfg, dir, city, name, listen, &err) != BG_OK)
        return bg_cli_fail("init", "%s", err.msg);
    struct made m = {0};
    uint8_t fp[BG_SIG_FP_LEN];
    if (create(&cfg, dir, &m, fp, &err) != BG_OK) {
        undo(&m, dir);
        return bg_cli_fail("init", "%s", err.msg);
    }
    char hex[BG_SIG_FP_HEX_LEN + 1];
    bg_sig_fp_hex(fp, hex);
    printf("created gateway directory %s for %s (%s)\n"
           "  %s/%s  configuration; federation listen %s\n"
           "  %s/city.key     private key (0600): it never leaves this directory\n"
           "  %s/%s     certificate request for the federation operator\n"
           "  public key sha256 %s\n"
           "next, the operator (comparing the public key fingerprint it prints):\n"
           "  baygate ca issue --dir CA --csr %s/%s --out %s/city.crt\n"
           "  baygate ca cert --dir CA --out %s/ca.crt\n"
           "  baygate ca crl --dir CA --out %s/crl.pem\n",
           dir, city, name, dir, BG_CONFIG_FILE, cfg.listen, dir, dir, CSR_FILE, hex, dir, CSR_FILE,
           dir, dir, dir);
    return BG_EXIT_OK;
}
