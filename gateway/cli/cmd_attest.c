/*
 * cmd_attest.c - baygate attest: verify an evaluation attestation offline, show one, show
 * a status list (gateway/attest/attest.h).
 *
 * 'verify' checks everything attest.h lists against the federation CA (and CRL), the
 * signed roster and the issuer's status list, and prints "OK: ..." with both grades and
 * the validity, or "FAIL: <reason>" (the first check that failed). 'show' and
 * 'status-show' print a file's fields WITHOUT verifying anything.
 * Exit status: 0 verified (or shown), 1 refused or malformed, 2 usage or operational
 * error (unreadable CA, roster, CRL or files).
 */
#include <getopt.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "certs/pki.h"
#include "certs/sig.h"
#include "certs/trust.h"
#include "common/file.h"
#include "common/json.h"
#include "gateway/attest/attest.h"
#include "gateway/cli/cli.h"
#include "peers/roster.h"

static void
attest_usage(FILE *f)
{
    fprintf(f,
            "usage: baygate attest verify FILE --ca CA.crt --roster roster.pb --status STATUS.pb\n"
            "                             [--crl crl.pem] [--at YYYY-MM-DD] [--min-status N]\n"
            "                             [--json]\n"
            "       baygate attest show [--json] FILE\n"
            "       baygate attest status-show [--json] FILE\n\n"
            "An attestation is a city's evaluation of an enterprise with the proof that the\n"
            "city sealed it in a snapshot it signed: 'verify' checks the issuer's certificate\n"
            "(chain to --ca, --crl, validity, name, the roster's pin), the snapshot digest\n"
            "signature, the Merkle inclusion proof, that the sealed entry opens to exactly the\n"
            "statement, the common grade against the roster's mapping, the validity dates and\n"
            "the issuer's signed status list (--status; --min-status: the lowest list number\n"
            "accepted). It prints 'OK: ...' or 'FAIL: <reason>' (exit 1). --at checks as of\n"
            "a day (UTC midnight) instead of now. --ca may be the CA directory.\n"
            "'show' and 'status-show' print a file's fields without verifying them.\n"
            "\n"
            "EXAMPLES\n"
            "  baygate attest verify 440300-CODE.att --ca ca.crt --roster roster.pb --status "
            "440300.status\n"
            "  baygate attest show --json 440300-CODE.att\n"
            "\n"
            "EXIT STATUS\n"
            "  0  verified (verify), or shown (show, status-show)\n"
            "  1  refused (the reason after FAIL:) or malformed\n"
            "  2  usage error or a file that cannot be read\n");
}

struct attest_opts {
    const char *ca, *roster, *status, *crl, *at, *file;
    uint64_t min_status;
    bool json;
};

static int
parse_opts(const char *cmd, int argc, char **argv, struct attest_opts *o, bool verify)
{
    static const struct option opts[] = {
        {"ca", required_argument, NULL, 'c'},
        {"roster", required_argument, NULL, 'r'},
        {"status", required_argument, NULL, 's'},
        {"crl", required_argument, NULL, 'l'},
        {"at", required_argument, NULL, 'a'},
        {"min-status", required_argument, NULL, 'm'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            o->ca = optarg;
            break;
        case 'r':
            o->roster = optarg;
            break;
        case 's':
            o->status = optarg;
            break;
        case 'l':
            o->crl = optarg;
            break;
        case 'a':
            o->at = optarg;
            break;
        case 'm':
            if (!bg_cli_parse_u64(cmd, "--min-status", optarg, &o->min_status))
                return BG_EXIT_ERROR;
            break;
        case 'j':
            o->json = true;
            break;
        case 'h':
            attest_usage(stdout);
            return -1;
        default:
            return bg_cli_bad_option(cmd, ch, argv, opts);
        }
        if (!verify && ch != 'j')
            return bg_cli_fail(cmd, "only --json applies here");
    }
    if (optind + 1 != argc)
        return bg_cli_usage_error(cmd, "give exactly one file");
    o->file = argv[optind];
    return BG_EXIT_OK;
}

/* The statement's JSON members after the issuer, from ",\"uscc\":" to "\"serial\":N". */
static void
print_statement_json(const bg_attest *a)
{
    char d1[11], d2[11];
    bg_attest_date_text(a->evaluated_at, d1);
    bg_attest_date_text(a->valid_until, d2);
    printf(",\"uscc\":");
    bg_json_cstr(stdout, a->uscc);
    printf(",\"grade\":");
    bg_json_cstr(stdout, a->grade);
    printf(",\"scale\":");
    bg_json_cstr(stdout, a->scale);
    printf(",\"common_grade\":");
    bg_json_cstr(stdout, a->common_grade);
    printf(",\"common_rank\":%" PRIu32 ",\"evaluated_at\":\"%s\",\"valid_until\":\"%s\","
           "\"serial\":%" PRIu64,
           a->common_rank, d1, d2, a->serial);
}

/* Reads and decodes FILE; on failure prints the finding and returns its exit status. */
static int
load_attestation(const char *cmd, const char *path, bool json, bg_attest *a)
{
    uint8_t *b = NULL;
    size_t len = 0;
    bg_err err = {0};
    if (bg_file_read(path, BG_ATTEST_MAX_BYTES, &b, &len, NULL, &err) != BG_OK) {
        if (err.code != BG_ELIMIT)
            return bg_cli_fail(cmd, "%s", err.msg);
    } else if (bg_attest_decode(b, len, a, &err) == BG_OK) {
        free(b);
        return BG_EXIT_OK;
    }
    free(b);
    if (json) {
        printf("{\"ok\":false,\"reason\":\"malformed\",\"message\":");
        bg_json_cstr(stdout, err.msg);
        printf("}\n");
    } else {
        printf("FAIL: %s\n", err.msg);
    }
    return BG_EXIT_FAIL;
}

/* The verdict line (or JSON object) of a verified attestation; m is its
 * issuer in the roster. */
static void
print_verified(const bg_attest *a, const bg_roster_member *m, bool json)
{
    char d1[11], d2[11];
    bg_attest_date_text(a->evaluated_at, d1);
    bg_attest_date_text(a->valid_until, d2);
    if (json) {
        printf("{\"ok\":true,\"issuer\":\"%s\",\"issuer_name\":", a->issuer);
        bg_json_cstr(stdout, m ? m->name : NULL);
        print_statement_json(a);
        printf("}\n");
    } else {
        printf("OK: %s (%s) evaluated %s: grade %s (scale %s) = %s on the common scale (rank "
               "%" PRIu32 "), evaluated %s, valid until %s, serial %" PRIu64 "\n",
               a->issuer, m ? m->name : "?", a->uscc, a->grade, a->scale, a->common_grade,
               a->common_rank, d1, d2, a->serial);
    }
}

static int
attest_verify(const struct attest_opts *o)
{
    const char *cmd = "attest verify";
    if (o->ca == NULL || o->roster == NULL || o->status == NULL)
        return bg_cli_fail(cmd, "--ca, --roster and --status are required");
    time_t now = time(NULL);
    bg_err err = {0};
    if (o->at != NULL && bg_pki_time_parse(o->at, &now, &err) != BG_OK)
        return bg_cli_fail(cmd, "--at: %s", err.msg);

    char ca_path[4096];
    struct stat st;
    if (stat(o->ca, &st) == 0 && S_ISDIR(st.st_mode)) {
        if (bg_path_join(ca_path, sizeof ca_path, o->ca, "ca.crt", &err) != BG_OK)
            return bg_cli_fail(cmd, "%s", err.msg);
    } else {
        snprintf(ca_path, sizeof ca_path, "%s", o->ca);
    }

    bg_attest *a = malloc(sizeof *a);
    if (a == NULL)
        return bg_cli_fail(cmd, "out of memory");
    int code = load_attestation(cmd, o->file, o->json, a);
    X509 *ca = NULL;
    bg_trust *trust = NULL;
    bg_roster *roster = NULL;
    uint8_t *status = NULL;
    size_t status_len = 0;
    if (code != BG_EXIT_OK)
        goto out;
    code = BG_EXIT_ERROR;
    if (bg_pki_cert_load(ca_path, &ca, &err) != BG_OK ||
        bg_trust_open(&trust, ca_path, o->crl, 0, &err) != BG_OK) {
        bg_cli_fail(cmd, "%s", err.msg);
        goto out;
    }
    if (bg_roster_load_file(o->roster, ca, 0, NULL, &roster, NULL, &err) != BG_OK) {
        bg_cli_fail(cmd, "roster %s: %s", o->roster, err.msg);
        goto out;
    }
    if (bg_file_read(o->status, BG_ATTEST_STATUS_MAX_BYTES, &status, &status_len, NULL, &err) !=
        BG_OK) {
        bg_cli_fail(cmd, "status list %s: %s", o->status, err.msg);
        goto out;
    }
    bg_attest_policy pol = {.min_status_number = o->min_status};
    bg_attest_reason reason = BG_ATTEST_INTERNAL;
    int rc = bg_attest_verify(a, trust, roster, status, status_len, &pol, now, &reason, &err);
    if (rc != BG_OK && reason == BG_ATTEST_INTERNAL) {
        bg_cli_fail(cmd, "%s", err.msg);
        goto out;
    }
    if (rc != BG_OK) {
        if (o->json) {
            printf("{\"ok\":false,\"reason\":\"%s\",\"message\":", bg_attest_reason_name(reason));
            bg_json_cstr(stdout, err.msg);
            printf("}\n");
        } else {
            printf("FAIL: %s\n", err.msg);
        }
        code = BG_EXIT_FAIL;
        goto out;
    }
    print_verified(a, bg_roster_member_find(roster, a->issuer), o->json);
    code = BG_EXIT_OK;
out:
    free(status);
    bg_roster_free(roster);
    bg_trust_free(trust);
    X509_free(ca);
    free(a);
    return code;
}

static int
attest_show(const struct attest_opts *o)
{
    bg_attest *a = malloc(sizeof *a);
    if (a == NULL)
        return bg_cli_fail("attest show", "out of memory");
    int code = load_attestation("attest show", o->file, o->json, a);
    if (code != BG_EXIT_OK) {
        free(a);
        return code;
    }
    char d1[11], d2[11], ev[2 * BG_SNAP_DIGESTBYTES + 1], root[2 * BG_SNAP_DIGESTBYTES + 1];
    bg_attest_date_text(a->evaluated_at, d1);
    bg_attest_date_text(a->valid_until, d2);
    sodium_bin2hex(ev, sizeof ev, a->evidence, sizeof a->evidence);
    sodium_bin2hex(root, sizeof root, a->root, sizeof a->root);
    if (o->json) {
        printf("{\"verified\":false,\"issuer\":\"%s\"", a->issuer);
        print_statement_json(a);
        printf(",\"evidence\":\"%s\",\"list\":", ev);
        bg_json_cstr(stdout, a->list);
        printf(",\"generation\":%" PRIu64 ",\"epoch\":%" PRIu64 ",\"count\":%" PRIu32
               ",\"index\":%" PRIu32 ",\"path_len\":%zu,\"root\":\"%s\"}\n",
               a->generation, a->epoch, a->count, a->index, a->path_len, root);
    } else {
        printf("attestation (NOT VERIFIED)\n"
               "  issuer        %s\n"
               "  uscc          %s\n"
               "  grade         %s (scale %s)\n"
               "  common grade  %s (rank %" PRIu32 ")\n"
               "  evaluated     %s\n"
               "  valid until   %s\n"
               "  serial        %" PRIu64 "\n"
               "  evidence      %s\n"
               "  snapshot      %s generation %" PRIu64 " epoch %" PRIu64 ", entry %" PRIu32
               " of %" PRIu32 ", path of %zu\n"
               "  root          %s\n"
               "  certificate   %zu bytes, signature %zu bytes\n",
               a->issuer, a->uscc, a->grade, a->scale, a->common_grade, a->common_rank, d1, d2,
               a->serial, ev, a->list, a->generation, a->epoch, a->index, a->count, a->path_len,
               root, a->cert_len, a->signature_len);
    }
    free(a);
    return BG_EXIT_OK;
}

static int
attest_status_show(const struct attest_opts *o)
{
    const char *cmd = "attest status-show";
    uint8_t *b = NULL;
    size_t len = 0;
    bg_err err = {0};
    bg_attest_status *s = NULL;
    if (bg_file_read(o->file, BG_ATTEST_STATUS_MAX_BYTES, &b, &len, NULL, &err) != BG_OK)
        return bg_cli_fail(cmd, "%s", err.msg);
    int rc = bg_attest_status_inspect(b, len, &s, &err);
    free(b);
    if (rc != BG_OK) {
        printf("FAIL: %s\n", err.msg);
        return BG_EXIT_FAIL;
    }
    char t[BG_PKI_TIME_LEN];
    bg_pki_time_format((time_t)bg_attest_status_issued_at(s), t);
    size_t n = bg_attest_status_count(s);
    if (o->json) {
        printf("{\"verified\":false,\"issuer\":\"%s\",\"number\":%" PRIu64
               ",\"issued_at\":\"%s\",\"revoked\":[",
               bg_attest_status_issuer(s), bg_attest_status_number(s), t);
        for (size_t i = 0; i < n; i++) {
            const bg_attest_revoked *r = bg_attest_status_at(s, i);
            bg_pki_time_format((time_t)r->revoked_at, t);
            printf("%s{\"serial\":%" PRIu64 ",\"revoked_at\":\"%s\"}", i ? "," : "", r->serial, t);
        }
        printf("]}\n");
    } else {
        printf("status list (NOT VERIFIED)\n"
               "  issuer     %s\n"
               "  number     %" PRIu64 "\n"
               "  issued at  %s\n"
               "  revoked    %zu\n",
               bg_attest_status_issuer(s), bg_attest_status_number(s), t, n);
        for (size_t i = 0; i < n; i++) {
            const bg_attest_revoked *r = bg_attest_status_at(s, i);
            bg_pki_time_format((time_t)r->revoked_at, t);
            printf("    serial %" PRIu64 " at %s\n", r->serial, t);
        }
    }
    bg_attest_status_free(s);
    return BG_EXIT_OK;
}

int
bg_cmd_attest(int argc, char **argv)
{
    static const char *const names[] = {"verify", "show", "status-show"};
    if (argc < 2)
        return bg_cli_usage_error("attest", "which one? verify, show or status-show");
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        attest_usage(stdout);
        return BG_EXIT_OK;
    }
    const char *sub = argv[1];
    struct attest_opts o = {0};
    bool verify = strcmp(sub, "verify") == 0;
    if (!verify && strcmp(sub, "show") != 0 && strcmp(sub, "status-show") != 0)
        return bg_cli_unknown("attest", sub, names, sizeof names / sizeof names[0]);
    char cmd[32];
    snprintf(cmd, sizeof cmd, "attest %s", sub);
    int rc = parse_opts(cmd, argc - 1, argv + 1, &o, verify);
    if (rc != BG_EXIT_OK)
        return rc < 0 ? BG_EXIT_OK : rc;
    if (verify)
        return attest_verify(&o);
    if (strcmp(sub, "show") == 0)
        return attest_show(&o);
    return attest_status_show(&o);
}
