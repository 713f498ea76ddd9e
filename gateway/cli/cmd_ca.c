/*
 * cmd_ca.c - baygate ca: the federation operator's certificate authority.
 *
 * Thin wrappers over certs/pki.h: parse options, call one library function,
 * print one line of what was done. The CA directory's lock makes concurrent
 * invocations safe. Exit status: 0 done, 1 nothing to do (revoke found no
 * certificate), 2 usage or operational error.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/x509.h>

#include "certs/pki.h"
#include "certs/sig.h"
#include "common/json.h"
#include "domain/city.h"
#include "gateway/cli/cli.h"

static void
ca_usage(FILE *f)
{
    fprintf(f,
            "usage: baygate ca init   --dir CA [--name NAME] [--days N]\n"
            "       baygate ca issue  --dir CA --csr FILE --out FILE\n"
            "                         [--days N | --not-before T --not-after T | --expired]\n"
            "       baygate ca cert   --dir CA --out FILE\n"
            "       baygate ca revoke --dir CA (--city CODE | --serial HEX)\n"
            "       baygate ca crl    --dir CA --out FILE [--days N | --hours N]\n"
            "       baygate ca list   --dir CA [--json]\n\n"
            "The federation CA (ECDSA P-256). 'init' creates CA/ca.key (0600), CA/ca.crt\n"
            "and CA/index.txt, and never overwrites a CA; the name defaults to\n"
            "'%s', the validity to %d days.\n"
            "'issue' checks a city's CSR (self-signature, 6-digit CN) and writes its\n"
            "certificate: CN and DNS SAN = city code, EKU serverAuth+clientAuth, a random\n"
            "128-bit serial, %d days from now unless --days, --not-before/--not-after\n"
            "(YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ) or --expired (ended yesterday; for tests).\n"
            "'cert' copies the CA certificate, e.g. to GW/ca.crt for each gateway.\n"
            "'revoke' marks every unrevoked certificate of a city (or one serial) revoked;\n"
            "then publish a new 'crl' (v2, numbered, next update in %d days unless\n"
            "--days/--hours) to every gateway.\n"
            "'list' shows every certificate issued: city, name, serial, not-after, days\n"
            "left (negative once expired), and valid, expired or REVOKED with the date\n"
            "(as the index says: peers see a revocation with the next 'crl').\n"
            "\n"
            "EXAMPLES\n"
            "  baygate ca init --dir CA --name \"Greater Bay Area Credit Federation\"\n"
            "  baygate ca issue --dir CA --csr GZ/city.csr --out GZ/city.crt\n"
            "  baygate ca revoke --dir CA --city 440600 && baygate ca crl --dir CA --out crl.pem\n"
            "\n"
            "EXIT STATUS\n"
            "  0  done\n"
            "  2  usage or operational error\n",
            BG_PKI_CA_NAME_DEFAULT, BG_PKI_CA_DAYS_DEFAULT, BG_PKI_CITY_DAYS_DEFAULT,
            BG_PKI_CRL_DAYS_DEFAULT);
}

struct ca_opts {
    const char *dir, *name, *csr, *out, *city, *serial, *not_before, *not_after;
    uint64_t days, hours;
    bool have_days, have_hours, expired, json;
};

static int
parse_opts(const char *cmd, int argc, char **argv, struct ca_opts *o)
{
    static const struct option opts[] = {
        {"dir", required_argument, NULL, 'd'},
        {"name", required_argument, NULL, 'n'},
        {"days", required_argument, NULL, 'D'},
        {"hours", required_argument, NULL, 'H'},
        {"csr", required_argument, NULL, 'c'},
        {"out", required_argument, NULL, 'o'},
        {"city", required_argument, NULL, 'C'},
        {"serial", required_argument, NULL, 's'},
        {"not-before", required_argument, NULL, 'b'},
        {"not-after", required_argument, NULL, 'a'},
        {"expired", no_argument, NULL, 'x'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (ch) {
        case 'd':
            o->dir = optarg;
            break;
        case 'n':
            o->name = optarg;
            break;
        case 'D':
            if (!bg_cli_parse_u64(cmd, "--days", optarg, &o->days))
                return BG_EXIT_ERROR;
            o->have_days = true;
            break;
        case 'H':
            if (!bg_cli_parse_u64(cmd, "--hours", optarg, &o->hours))
                return BG_EXIT_ERROR;
            o->have_hours = true;
            break;
        case 'c':
            o->csr = optarg;
            break;
        case 'o':
            o->out = optarg;
            break;
        case 'C':
            o->city = optarg;
            break;
        case 's':
            o->serial = optarg;
            break;
        case 'b':
            o->not_before = optarg;
            break;
        case 'a':
            o->not_after = optarg;
            break;
        case 'x':
            o->expired = true;
            break;
        case 'j':
            o->json = true;
            break;
        case 'h':
            ca_usage(stdout);
            return -1;
        default:
            return bg_cli_bad_option(cmd, ch, argv, opts);
        }
    }
    if (optind < argc)
        return bg_cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (o->dir == NULL)
        return bg_cli_usage_error(cmd, "--dir CA is required");
    return BG_EXIT_OK;
}

/* The options a subcommand does not take, so they are refused, not ignored. */
static int
refuse_extra(const char *cmd, const struct ca_opts *o, const char *allowed)
{
    const struct {
        const char *name;
        bool given;
    } all[] = {
        {"name", o->name != NULL},
        {"days", o->have_days},
        {"hours", o->have_hours},
        {"csr", o->csr != NULL},
        {"out", o->out != NULL},
        {"city", o->city != NULL},
        {"serial", o->serial != NULL},
        {"not-before", o->not_before != NULL},
        {"not-after", o->not_after != NULL},
        {"expired", o->expired},
        {"json", o->json},
    };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        if (!all[i].given)
            continue;
        char key[32];
        snprintf(key, sizeof key, " %s ", all[i].name);
        if (strstr(allowed, key) == NULL)
            return bg_cli_fail(cmd, "--%s does not apply here", all[i].name);
    }
    return BG_EXIT_OK;
}

static int
fail_err(const char *cmd, const bg_err *err)
{
    return bg_cli_fail(cmd, "%s", err->msg);
}

static int
ca_init(const struct ca_opts *o)
{
    const char *cmd = "ca init";
    int rc = refuse_extra(cmd, o, " name days ");
    if (rc != BG_EXIT_OK)
        return rc;
    uint64_t days = o->have_days ? o->days : BG_PKI_CA_DAYS_DEFAULT;
    if (days < 1 || days > 36500)
        return bg_cli_fail(cmd, "--days must be 1-36500");
    bg_err err = {0};
    if (bg_pki_ca_init(o->dir, o->name, (int)days, &err) != BG_OK)
        return fail_err(cmd, &err);
    bg_pki_ca *ca = NULL;
    if (bg_pki_ca_open(&ca, o->dir, &err) != BG_OK)
        return fail_err(cmd, &err);
    uint8_t fp[BG_SIG_FP_LEN];
    char hex[BG_SIG_FP_HEX_LEN + 1], until[BG_PKI_TIME_LEN];
    time_t na = 0;
    if (bg_sig_fingerprint(bg_pki_ca_cert(ca), fp, &err) != BG_OK ||
        bg_pki_asn1_time(X509_get0_notAfter(bg_pki_ca_cert(ca)), &na, &err) != BG_OK) {
        bg_pki_ca_close(ca);
        return fail_err(cmd, &err);
    }
    bg_sig_fp_hex(fp, hex);
    bg_pki_time_format(na, until);
    printf("created CA '%s' in %s: valid until %s, certificate sha256 %s\n",
           o->name ? o->name : BG_PKI_CA_NAME_DEFAULT, o->dir, until, hex);
    bg_pki_ca_close(ca);
    return BG_EXIT_OK;
}

/* Validity from --days / --not-before / --not-after / --expired. */
static int
issue_validity(const char *cmd, const struct ca_opts *o, time_t *nb, time_t *na)
{
    time_t now = time(NULL);
    bg_err err = {0};
    if (o->expired && (o->have_days || o->not_before || o->not_after))
        return bg_cli_fail(cmd, "--expired excludes --days, --not-before and --not-after");
    if (o->have_days && o->not_after)
        return bg_cli_fail(cmd, "give --days or --not-after, not both");
    if (o->expired) {
        *nb = now - 2 * 86400;
        *na = now - 86400;
        return BG_EXIT_OK;
    }
    *nb = now - BG_PKI_SKEW;
    if (o->not_before != NULL && bg_pki_time_parse(o->not_before, nb, &err) != BG_OK)
        return bg_cli_fail(cmd, "--not-before: %s", err.msg);
    uint64_t days = o->have_days ? o->days : BG_PKI_CITY_DAYS_DEFAULT;
    if (days < 1 || days > 36500)
        return bg_cli_fail(cmd, "--days must be 1-36500");
    *na = (o->not_before ? *nb : now) + (time_t)days * 86400;
    if (o->not_after != NULL && bg_pki_time_parse(o->not_after, na, &err) != BG_OK)
        return bg_cli_fail(cmd, "--not-after: %s", err.msg);
    return BG_EXIT_OK;
}

static int
ca_issue(const struct ca_opts *o)
{
    const char *cmd = "ca issue";
    int rc = refuse_extra(cmd, o, " csr out days not-before not-after expired ");
    if (rc != BG_EXIT_OK)
        return rc;
    if (o->csr == NULL || o->out == NULL)
        return bg_cli_fail(cmd, "--csr FILE and --out FILE are required");
    time_t nb = 0, na = 0;
    if ((rc = issue_validity(cmd, o, &nb, &na)) != BG_EXIT_OK)
        return rc;
    bg_err err = {0};
    X509_REQ *req = NULL;
    X509 *x = NULL;
    bg_pki_ca *ca = NULL;
    rc = BG_EXIT_ERROR;
    if (bg_pki_csr_load(o->csr, &req, &err) != BG_OK ||
        bg_pki_ca_open(&ca, o->dir, &err) != BG_OK ||
        bg_pki_ca_issue(ca, req, nb, na, &x, &err) != BG_OK ||
        bg_pki_cert_write(o->out, x, &err) != BG_OK) {
        bg_cli_fail(cmd, "%s", err.msg);
        goto out;
    }
    char city[BG_CITY_CODE_LEN + 1], name[BG_PKI_NAME_MAX + 1], serial[BG_PKI_SERIAL_HEX_MAX + 1];
    char t1[BG_PKI_TIME_LEN], t2[BG_PKI_TIME_LEN], fp_hex[BG_SIG_FP_HEX_LEN + 1],
        key_hex[BG_SIG_FP_HEX_LEN + 1];
    uint8_t fp[BG_SIG_FP_LEN];
    if (bg_pki_csr_check(req, city, name, &err) != BG_OK ||
        bg_pki_cert_serial_hex(x, serial, &err) != BG_OK ||
        bg_pki_key_fingerprint(X509_REQ_get0_pubkey(req), fp, &err) != BG_OK) {
        bg_cli_fail(cmd, "%s", err.msg);
        goto out;
    }
    bg_sig_fp_hex(fp, key_hex);
    if (bg_sig_fingerprint(x, fp, &err) != BG_OK) {
        bg_cli_fail(cmd, "%s", err.msg);
        goto out;
    }
    bg_sig_fp_hex(fp, fp_hex);
    bg_pki_time_format(nb, t1);
    bg_pki_time_format(na, t2);
    printf("issued %s (%s) serial %s, valid %s to %s -> %s\n"
           "  certificate sha256 %s\n"
           "  public key  sha256 %s (compare with what 'baygate init' printed)\n",
           city, name, serial, t1, t2, o->out, fp_hex, key_hex);
    rc = BG_EXIT_OK;
out:
    bg_pki_ca_close(ca);
    X509_free(x);
    X509_REQ_free(req);
    return rc;
}

static int
ca_cert(const struct ca_opts *o)
{
    const char *cmd = "ca cert";
    int rc = refuse_extra(cmd, o, " out ");
    if (rc != BG_EXIT_OK)
        return rc;
    if (o->out == NULL)
        return bg_cli_fail(cmd, "--out FILE is required");
    bg_err err = {0};
    bg_pki_ca *ca = NULL;
    if (bg_pki_ca_open(&ca, o->dir, &err) != BG_OK ||
        bg_pki_cert_write(o->out, bg_pki_ca_cert(ca), &err) != BG_OK) {
        bg_pki_ca_close(ca);
        return fail_err(cmd, &err);
    }
    bg_pki_ca_close(ca);
    printf("wrote the CA certificate to %s\n", o->out);
    return BG_EXIT_OK;
}

static int
ca_revoke(const struct ca_opts *o)
{
    const char *cmd = "ca revoke";
    int rc = refuse_extra(cmd, o, " city serial ");
    if (rc != BG_EXIT_OK)
        return rc;
    if ((o->city == NULL) == (o->serial == NULL))
        return bg_cli_fail(cmd, "give --city CODE or --serial HEX");
    if (o->city != NULL && !bg_city_code_valid(o->city))
        return bg_cli_fail(cmd, "--city: '%s' is not a 6-digit city code", o->city);
    bg_err err = {0};
    bg_pki_ca *ca = NULL;
    if (bg_pki_ca_open(&ca, o->dir, &err) != BG_OK)
        return fail_err(cmd, &err);
    size_t n = 0;
    rc = bg_pki_ca_revoke(ca, o->city, o->serial, time(NULL), &n, &err);
    bg_pki_ca_close(ca);
    if (rc == BG_ENOTFOUND || rc == BG_EEXIST) {
        fprintf(stderr, "baygate %s: %s\n", cmd, err.msg);
        return BG_EXIT_FAIL;
    }
    if (rc != BG_OK)
        return fail_err(cmd, &err);
    if (o->city != NULL)
        printf("revoked %zu certificate%s of %s", n, n == 1 ? "" : "s", o->city);
    else
        printf("revoked certificate %s", o->serial);
    printf("; now publish a CRL: baygate ca crl --dir %s --out crl.pem\n", o->dir);
    return BG_EXIT_OK;
}

static int
ca_crl(const struct ca_opts *o)
{
    const char *cmd = "ca crl";
    int rc = refuse_extra(cmd, o, " out days hours ");
    if (rc != BG_EXIT_OK)
        return rc;
    if (o->out == NULL)
        return bg_cli_fail(cmd, "--out FILE is required");
    if (o->have_days && o->have_hours)
        return bg_cli_fail(cmd, "give --days or --hours, not both");
    uint64_t secs = o->have_hours  ? o->hours * 3600
                    : o->have_days ? o->days * 86400
                                   : (uint64_t)BG_PKI_CRL_DAYS_DEFAULT * 86400;
    if (secs < 3600 || secs > 3660ull * 86400)
        return bg_cli_fail(cmd, "CRL validity must be 1 hour to 3660 days");
    bg_err err = {0};
    bg_pki_ca *ca = NULL;
    X509_CRL *crl = NULL;
    rc = BG_EXIT_ERROR;
    time_t now = time(NULL), next = 0;
    uint64_t number = 0;
    if (bg_pki_ca_open(&ca, o->dir, &err) != BG_OK ||
        bg_pki_ca_crl(ca, now, (int64_t)secs, &crl, &err) != BG_OK ||
        bg_pki_crl_write(o->out, crl, &err) != BG_OK ||
        bg_pki_crl_number(crl, &number, &err) != BG_OK ||
        bg_pki_crl_next_update(crl, &next, &err) != BG_OK) {
        bg_cli_fail(cmd, "%s", err.msg);
    } else {
        char t[BG_PKI_TIME_LEN];
        bg_pki_time_format(next, t);
        int revoked = sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl));
        printf("CRL #%llu: %d revoked, next update %s -> %s\n", (unsigned long long)number,
               revoked < 0 ? 0 : revoked, t, o->out);
        rc = BG_EXIT_OK;
    }
    X509_CRL_free(crl);
    bg_pki_ca_close(ca);
    return rc;
}

static void
list_entry(const bg_pki_issued *e, time_t now, bool json)
{
    char na[BG_PKI_TIME_LEN], ra[BG_PKI_TIME_LEN] = "-", fp[BG_SIG_FP_HEX_LEN + 1];
    bg_pki_time_format(e->not_after, na);
    if (e->revoked_at != 0)
        bg_pki_time_format(e->revoked_at, ra);
    bg_sig_fp_hex(e->fingerprint, fp);
    const char *name = bg_city_name(e->city);
    const char *status = e->revoked_at ? "revoked" : e->not_after < now ? "expired" : "valid";
    long long days = bg_cli_days_left(e->not_after, now);
    if (json) {
        printf("{\"serial\":\"%s\",\"city\":\"%s\",\"name\":", e->serial, e->city);
        bg_json_cstr(stdout, name);
        printf(",\"not_after\":\"%s\",\"days_left\":%lld,\"status\":\"%s\",\"revoked_at\":", na,
               days, status);
        bg_json_cstr(stdout, e->revoked_at ? ra : NULL);
        printf(",\"sha256\":\"%s\"}\n", fp);
        return;
    }
    char mark[BG_PKI_TIME_LEN + 16];
    if (e->revoked_at != 0)
        snprintf(mark, sizeof mark, "REVOKED %s", ra);
    else
        snprintf(mark, sizeof mark, "%s", status);
    printf("%-6s %-10s %-34s %-20s %6lld  %-28s %s\n", e->city, name ? name : "-", e->serial, na,
           days, mark, fp);
}

static int
ca_list(const struct ca_opts *o)
{
    const char *cmd = "ca list";
    int rc = refuse_extra(cmd, o, " json ");
    if (rc != BG_EXIT_OK)
        return rc;
    bg_err err = {0};
    bg_pki_ca *ca = NULL;
    if (bg_pki_ca_open_index(&ca, o->dir, &err) != BG_OK)
        return fail_err(cmd, &err);
    time_t now = time(NULL);
    if (!o->json)
        printf("%-6s %-10s %-34s %-20s %6s  %-28s %s\n", "CITY", "NAME", "SERIAL", "NOT-AFTER",
               "DAYS", "STATUS", "SHA256");
    for (size_t i = 0; i < bg_pki_ca_count(ca); i++)
        list_entry(bg_pki_ca_entry(ca, i), now, o->json);
    bg_pki_ca_close(ca);
    if (fflush(stdout) != 0)
        return bg_cli_fail(cmd, "writing output failed");
    return BG_EXIT_OK;
}

int
bg_cmd_ca(int argc, char **argv)
{
    static const char *const names[] = {"init", "issue", "cert", "revoke", "crl", "list"};
    if (argc < 2)
        return bg_cli_usage_error("ca", "which one? init, issue, cert, revoke, crl or list");
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        ca_usage(stdout);
        return BG_EXIT_OK;
    }
    static const struct {
        const char *name;
        int (*run)(const struct ca_opts *);
    } subs[] = {
        {"init", ca_init},     {"issue", ca_issue}, {"cert", ca_cert},
        {"revoke", ca_revoke}, {"crl", ca_crl},     {"list", ca_list},
    };
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) {
        if (strcmp(argv[1], subs[i].name) != 0)
            continue;
        char cmd[32];
        snprintf(cmd, sizeof cmd, "ca %s", subs[i].name);
        struct ca_opts o = {0};
        int rc = parse_opts(cmd, argc - 1, argv + 1, &o);
        if (rc < 0)
            return BG_EXIT_OK; /* --help */
        if (rc != BG_EXIT_OK)
            return rc;
        return subs[i].run(&o);
    }
    return bg_cli_unknown("ca", argv[1], names, sizeof names / sizeof names[0]);
}
