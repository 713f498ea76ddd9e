/*
 * cmd_audit_bundle.c - baygate audit export and verify-bundle: the evidence of one
 * exchange taken out of a gateway's log as one file, and that file checked anywhere,
 * later, with only the federation CA certificate and the roster (gateway/audit/audit.h,
 * evidence bundles).
 *
 * export opens the log and the witness store read-only (safe while the gateway serves)
 * and checks what it wrote against the gateway's own CA certificate, CRL and roster.
 * verify-bundle prints what it verified and exits 0, or "FAIL: " and the first thing
 * that failed and exits 1; 2 for usage or files it cannot read.
 */
#include <getopt.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "certs/pki.h"
#include "common/file.h"
#include "common/json.h"
#include "gateway/api/api_json.h"
#include "gateway/audit/audit.h"
#include "gateway/cli/cli.h"
#include "gateway/config/config.h"

static void
export_usage(FILE *f)
{
    fprintf(f, "usage: baygate audit export --dir GW --request ID --out FILE [--unwitnessed]\n\n"
               "Writes the evidence bundle of one exchange (ID: its request id, as `baygate\n"
               "query` prints it) from the gateway's evidence log: every leaf carrying ID as\n"
               "stored, each with its inclusion proof in the first signed tree head that\n"
               "covers them all, that head and the certificate that signed it, and each\n"
               "witness's cosignature on that head or a later one (with the consistency\n"
               "proof) and certificate. No enterprise identifier is in it. Once written it\n"
               "is checked against the gateway's own CA certificate, CRL and roster (a\n"
               "failure there is a note: after a rotation, check it with the roster of its\n"
               "time); check it anywhere with `baygate audit verify-bundle`.\n"
               "Until a witness has cosigned a head that covers the leaves (every [audit]\n"
               "witness_interval_s) the bundle is refused (exit 1), unless --unwitnessed.\n"
               "Read-only: safe while the gateway serves.\n"

               "\n"
               "EXAMPLES\n"
               "  baygate audit export --dir GZ --request 0123456789abcdef0123456789abcdef --out "
               "bundle.pb\n"
               "\n"
               "EXIT STATUS\n"
               "  0  written\n"
               "  1  nothing to write (no leaf with ID, no signed head or no witness yet)\n"
               "  2  usage or operational error\n");
}

static void
verify_usage(FILE *f)
{
    fprintf(f,
            "usage: baygate audit verify-bundle FILE --ca CA.crt --roster roster.pb\n"
            "                                   [--crl crl.pem] [--at T] [--min-witnesses N]\n"
            "                                   [--json]\n\n"
            "Checks an evidence bundle offline with the federation CA certificate and a\n"
            "signed roster alone: the city that kept the log is a member and its\n"
            "certificate (carried in the bundle) chains to the CA, is not revoked (with\n"
            "--crl) and is the one the roster pins; the tree head is signed with it;\n"
            "every leaf decodes, has the bundle's request id and its inclusion proof\n"
            "leads to the head's root; every cosignature is by another member, with its\n"
            "pinned certificate, on that head or on a later one shown consistent with it;\n"
            "and at least N witnesses (default 1) cosigned. Certificates are checked as\n"
            "of T (YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ; default now): give the roster and\n"
            "CRL of that time too. Prints what it verified, or FAIL: and the first thing\n"
            "that does not hold.\n"
            "\n"
            "EXAMPLES\n"
            "  baygate audit verify-bundle bundle.pb --ca ca.crt --roster roster.pb --crl crl.pem\n"
            "\n"
            "EXIT STATUS\n"
            "  0  verified\n"
            "  1  does not verify\n"
            "  2  usage error or unreadable files\n");
}

/* The CA, its trust (with the CRL if given) and the roster it signed. */
typedef struct vctx {
    X509 *ca;
    bg_trust *trust;
    bg_roster *roster;
} vctx;

static void
vctx_free(vctx *v)
{
    bg_roster_free(v->roster);
    bg_trust_free(v->trust);
    X509_free(v->ca);
}

static int
vctx_load(const char *ca, const char *crl, const char *roster, vctx *v, bg_err *err)
{
    memset(v, 0, sizeof *v);
    int rc = bg_pki_cert_load(ca, &v->ca, err);
    if (rc == BG_OK)
        rc = bg_trust_open(&v->trust, ca, crl, 0, err);
    bg_err sub = {0}; /* not err itself: its message is an argument of the new one */
    if (rc == BG_OK &&
        (rc = bg_roster_load_file(roster, v->ca, 0, NULL, &v->roster, NULL, &sub)) != BG_OK)
        bg_err_set(err, rc, "roster %s: %s", roster, sub.msg);
    return rc;
}

/* --------------------------------------------------------------- export */

struct export_opts {
    const char *dir, *out;
    uint8_t request_id[BG_AUDIT_REQUEST_ID_LEN];
    bool has_request, unwitnessed;
};

/* The bundle of o->request_id from the gateway's log (exit code; *b on BG_EXIT_OK). */
static int
export_build(const struct export_opts *o, bg_config *cfg, bg_audit_bundle **b, char *note)
{
    const char *cmd = "audit export";
    char dir[BG_CONFIG_PATH_MAX + 8];
    bg_audit_log *log = NULL;
    bg_audit_bundle_src src;
    bg_err err = {0};
    int ex = bg_cli_audit_open(cmd, o->dir, cfg, dir, sizeof dir, &log);
    if (ex != BG_EXIT_OK)
        return ex;
    int rc = bg_audit_bundle_src_open(&src, log, dir, cfg->city, cfg->cert_path, &err);
    if (rc != BG_OK) {
        bg_audit_close(log);
        bg_cli_fail(cmd, "%s", err.msg);
        return rc == BG_EPROTO ? BG_EXIT_FAIL : BG_EXIT_ERROR;
    }
    rc = bg_audit_bundle_build(&src, o->request_id, b, note, &err);
    bg_audit_bundle_src_close(&src);
    bg_audit_close(log);
    if (rc == BG_OK)
        return BG_EXIT_OK;
    bg_cli_fail(cmd, "%s", err.msg);
    return rc == BG_ENOTFOUND || rc == BG_ELIMIT ? BG_EXIT_FAIL : BG_EXIT_ERROR;
}

/* Checks b with the gateway's own CA, CRL and roster: "" if it verifies, else why. */
static void
export_check(const bg_config *cfg, const bg_audit_bundle *b, char *why, size_t cap)
{
    vctx v;
    bg_err err = {0};
    const char *crl = access(cfg->crl_path, R_OK) == 0 ? cfg->crl_path : NULL;
    why[0] = '\0';
    if (vctx_load(cfg->ca_path, crl, cfg->roster_path, &v, &err) != BG_OK ||
        bg_audit_bundle_verify(b, v.trust, v.roster, time(NULL), NULL, &err) != BG_OK)
        snprintf(why, cap, "%s", err.msg);
    vctx_free(&v);
}

static void
export_say(const struct export_opts *o, const bg_audit_bundle *b, size_t bytes, const char *note)
{
    char rid[2 * BG_AUDIT_REQUEST_ID_LEN + 1], ts[BG_PKI_TIME_LEN];
    sodium_bin2hex(rid, sizeof rid, b->request_id, sizeof b->request_id);
    bg_pki_time_format((time_t)(b->head.timestamp_ms / 1000), ts);
    printf("evidence bundle of request %s in %s's log: %s (%zu bytes)\n", rid, b->city, o->out,
           bytes);
    printf("  %zu leaves (%" PRIu64 "..%" PRIu64 "), signed head of size %" PRIu64 " (%s)\n",
           b->n_leaves, b->leaves[0].index, b->leaves[b->n_leaves - 1].index, b->head.size, ts);
    printf("  cosigned by %zu witness%s:", b->n_cosigs, b->n_cosigs == 1 ? "" : "es");
    for (size_t i = 0; i < b->n_cosigs; i++)
        printf(" %s (size %" PRIu64 ")", b->cosigs[i].cosig.witness, b->cosigs[i].cosig.head.size);
    printf("%s\n", b->n_cosigs ? "" : " none");
    if (note[0])
        printf("  left out: %s\n", note);
}

static int
export_run(const struct export_opts *o)
{
    const char *cmd = "audit export";
    bg_config cfg;
    bg_audit_bundle *b = NULL;
    char note[BG_ERR_MSG_MAX], why[BG_ERR_MSG_MAX];
    int ex = export_build(o, &cfg, &b, note);
    if (ex != BG_EXIT_OK)
        return ex;
    uint8_t *bytes = NULL;
    size_t len = 0;
    bg_err err = {0};
    if (b->n_cosigs == 0 && !o->unwitnessed) {
        bg_cli_fail(cmd,
                    "no witness has cosigned a head covering these leaves yet (witnesses come "
                    "every [audit] witness_interval_s)%s%s: try again later, or give "
                    "--unwitnessed",
                    note[0] ? "; " : "", note);
        ex = BG_EXIT_FAIL;
    } else if (bg_audit_bundle_encode(b, &bytes, &len, &err) != BG_OK ||
               bg_file_write_replace(o->out, bytes, len, 0644, &err) != BG_OK) {
        ex = bg_cli_fail(cmd, "%s", err.msg);
    } else {
        export_say(o, b, len, note);
        /* Not refused: after a rotation or a roster change, it verifies with the roster
         * and CRL of its time rather than with this gateway's current ones. */
        export_check(&cfg, b, why, sizeof why);
        if (why[0] != '\0')
            fprintf(stderr, "baygate %s: note: it does not verify against this gateway's %s: %s\n",
                    cmd, cfg.roster_path, why);
        else
            printf("  verified against this gateway's CA certificate and roster\n");
    }
    free(bytes);
    bg_audit_bundle_free(b);
    return ex;
}

int
bg_cmd_audit_export(int argc, char **argv)
{
    static const struct option opts[] = {
        {"dir", required_argument, NULL, 'd'}, {"request", required_argument, NULL, 'r'},
        {"out", required_argument, NULL, 'o'}, {"unwitnessed", no_argument, NULL, 'U'},
        {"help", no_argument, NULL, 'h'},      {NULL, 0, NULL, 0},
    };
    struct export_opts o;
    memset(&o, 0, sizeof o);
    int ch;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        if (ch == 'd')
            o.dir = optarg;
        else if (ch == 'o')
            o.out = optarg;
        else if (ch == 'U')
            o.unwitnessed = true;
        else if (ch == 'r' && !bg_cli_request_id("audit export", optarg, o.request_id))
            return BG_EXIT_ERROR;
        else if (ch == 'r')
            o.has_request = true;
        else if (ch == 'h') {
            export_usage(stdout);
            return BG_EXIT_OK;
        } else
            return bg_cli_bad_option("audit export", ch, argv, opts);
    }
    if (optind != argc)
        return bg_cli_usage_error("audit export", "unexpected argument '%s'", argv[optind]);
    if (o.dir == NULL || !o.has_request || o.out == NULL)
        return bg_cli_usage_error("audit export",
                                  "--dir GW, --request ID and --out FILE are required");
    return export_run(&o);
}

/* -------------------------------------------------------- verify-bundle */

struct verify_opts {
    const char *file, *ca, *roster, *crl, *at;
    uint64_t min_witnesses;
    bool json;
};

static void
verified_text(const bg_audit_bundle *b, const bg_audit_bundle_report *rep, const vctx *v)
{
    char rid[2 * BG_AUDIT_REQUEST_ID_LEN + 1], ts[BG_PKI_TIME_LEN], root[65];
    sodium_bin2hex(rid, sizeof rid, b->request_id, sizeof b->request_id);
    bg_pki_time_format((time_t)(b->head.timestamp_ms / 1000), ts);
    bg_audit_hash_hex(b->head.root, root);
    printf("OK: evidence of request %s in %s's log\n", rid, b->city);
    printf("  signed head: size %" PRIu64 ", %s, root %s\n", b->head.size, ts, root);
    printf("  signed by %s, certificate sha256 %.16s... (CA-issued, pinned in roster serial "
           "%" PRIu64 ")\n",
           b->city, rep->signer_fp, bg_roster_serial(v->roster));
    printf("  %zu leaves, each decoded and proven in that tree:\n", rep->leaves);
    bg_cli_audit_leaf_header();
    for (size_t i = 0; i < b->n_leaves; i++) {
        bg_audit_event ev;
        if (bg_audit_leaf_decode(b->leaves[i].leaf, b->leaves[i].len, &ev, NULL) == BG_OK)
            bg_cli_audit_leaf_text(b->leaves[i].index, &ev);
    }
    printf("  cosigned by %zu witness%s (roster members, pinned certificates):", rep->witnesses,
           rep->witnesses == 1 ? "" : "es");
    for (size_t i = 0; i < rep->witnesses; i++)
        printf(" %s (head of size %" PRIu64 "%s)", rep->witness[i], rep->witness_size[i],
               rep->witness_size[i] == b->head.size ? "" : ", consistent");
    printf("%s\n", rep->witnesses ? "" : " none");
}

static void
verified_json(const bg_audit_bundle *b, const bg_audit_bundle_report *rep, const vctx *v)
{
    char rid[2 * BG_AUDIT_REQUEST_ID_LEN + 1], root[65];
    sodium_bin2hex(rid, sizeof rid, b->request_id, sizeof b->request_id);
    bg_audit_hash_hex(b->head.root, root);
    printf("{\"ok\":true,\"city\":\"%s\",\"request_id\":\"%s\",\"head\":{\"size\":%" PRIu64
           ",\"root\":\"%s\",\"timestamp_ms\":%" PRId64 "},\"certificate_sha256\":\"%s\","
           "\"roster_serial\":%" PRIu64 ",\"leaves\":[",
           b->city, rid, b->head.size, root, b->head.timestamp_ms, rep->signer_fp,
           bg_roster_serial(v->roster));
    for (size_t i = 0; i < b->n_leaves; i++) {
        bg_audit_event ev;
        if (bg_audit_leaf_decode(b->leaves[i].leaf, b->leaves[i].len, &ev, NULL) != BG_OK)
            continue;
        bg_api_json_leaf(stdout, b->leaves[i].index, &ev, i == 0);
    }
    printf("],\"witnesses\":[");
    for (size_t i = 0; i < rep->witnesses; i++)
        printf("%s{\"witness\":\"%s\",\"size\":%" PRIu64 "}", i ? "," : "", rep->witness[i],
               rep->witness_size[i]);
    printf("]}\n");
}

static int
verify_fail(const struct verify_opts *o, const char *msg)
{
    if (o->json) {
        printf("{\"ok\":false,\"error\":");
        bg_json_cstr(stdout, msg);
        printf("}\n");
    } else {
        printf("FAIL: %s\n", msg);
    }
    return BG_EXIT_FAIL;
}

/* Decodes and verifies the bundle: the exit code, what failed said. */
static int
verify_bundle(const struct verify_opts *o, const vctx *v, const uint8_t *bytes, size_t len,
              time_t now)
{
    bg_audit_bundle *b = NULL;
    bg_audit_bundle_report rep;
    bg_err err = {0};
    int ex = BG_EXIT_OK;
    if (bg_audit_bundle_decode(bytes, len, &b, &err) != BG_OK ||
        bg_audit_bundle_verify(b, v->trust, v->roster, now, &rep, &err) != BG_OK) {
        ex = err.code == BG_ENOMEM ? bg_cli_fail("audit verify-bundle", "%s", err.msg)
                                   : verify_fail(o, err.msg);
    } else if (rep.witnesses < o->min_witnesses) {
        char msg[160];
        snprintf(msg, sizeof msg,
                 "%zu witness%s cosigned, at least %" PRIu64 " required (--min-witnesses)",
                 rep.witnesses, rep.witnesses == 1 ? "" : "es", o->min_witnesses);
        ex = verify_fail(o, msg);
    } else if (o->json) {
        verified_json(b, &rep, v);
    } else {
        verified_text(b, &rep, v);
    }
    bg_audit_bundle_free(b);
    return ex;
}

static int
verify_run(const struct verify_opts *o)
{
    const char *cmd = "audit verify-bundle";
    time_t now = time(NULL);
    bg_err err = {0};
    if (o->at != NULL && bg_pki_time_parse(o->at, &now, &err) != BG_OK)
        return bg_cli_fail(cmd, "--at: %s", err.msg);
    uint8_t *bytes = NULL;
    size_t len = 0;
    if (bg_file_read(o->file, BG_AUDIT_BUNDLE_MAX, &bytes, &len, NULL, &err) != BG_OK)
        return bg_cli_fail(cmd, "%s: %s", o->file, err.msg);
    vctx v;
    int ex;
    if (vctx_load(o->ca, o->crl, o->roster, &v, &err) != BG_OK)
        ex = bg_cli_fail(cmd, "%s", err.msg);
    else
        ex = verify_bundle(o, &v, bytes, len, now);
    vctx_free(&v);
    free(bytes);
    return ex;
}

int
bg_cmd_audit_verify_bundle(int argc, char **argv)
{
    static const struct option opts[] = {
        {"ca", required_argument, NULL, 'c'},  {"roster", required_argument, NULL, 'r'},
        {"crl", required_argument, NULL, 'l'}, {"at", required_argument, NULL, 'a'},
        {"json", no_argument, NULL, 'j'},      {"min-witnesses", required_argument, NULL, 'm'},
        {"help", no_argument, NULL, 'h'},      {NULL, 0, NULL, 0},
    };
    const char *cmd = "audit verify-bundle";
    struct verify_opts o = {.min_witnesses = 1};
    int ch;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        const char **val = ch == 'c' ? &o.ca : ch == 'r' ? &o.roster : ch == 'l' ? &o.crl : &o.at;
        if (ch == 'c' || ch == 'r' || ch == 'l' || ch == 'a')
            *val = optarg;
        else if (ch == 'j')
            o.json = true;
        else if (ch == 'm' && !bg_cli_parse_u64(cmd, "--min-witnesses", optarg, &o.min_witnesses))
            return BG_EXIT_ERROR;
        else if (ch == 'h') {
            verify_usage(stdout);
            return BG_EXIT_OK;
        } else if (ch != 'm')
            return bg_cli_bad_option(cmd, ch, argv, opts);
    }
    if (optind + 1 != argc)
        return bg_cli_usage_error(cmd, "give one bundle FILE");
    o.file = argv[optind];
    if (o.ca == NULL || o.roster == NULL)
        return bg_cli_usage_error(cmd, "--ca CA.crt and --roster roster.pb are required");
    return verify_run(&o);
}
