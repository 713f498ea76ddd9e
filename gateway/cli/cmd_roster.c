/*
 * cmd_roster.c - baygate roster: compile and sign the federation roster, show one.
 *
 * 'sign' reads the operator's INI source (peers/roster.h, peers/ROSTER.md),
 * validates it completely, signs it with the CA key and writes roster.pb
 * atomically; it refuses a serial not greater than the one already in --out,
 * so gateways (which refuse older rosters) never get one they would reject.
 * 'show' prints a signed roster, verifying it when given the CA certificate, and
 * what is known of each member's pinned certificate (CA index, --cert, --crl).
 * Exit status: 0 done, 1 the roster (or its source) is invalid, stale or not
 * signed by that CA, 2 usage or operational error.
 */
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "certs/pki.h"
#include "certs/sig.h"
#include "certs/trust.h"
#include "common/json.h"
#include "gateway/cli/cli.h"
#include "peers/roster.h"
#include "peers/roster_ini.h"

static void
roster_usage(FILE *f)
{
    fprintf(f, "usage: baygate roster sign --ca CA --out roster.pb [--force] roster.ini\n"
               "       baygate roster show [--ca CA/ca.crt|CA] [--crl crl.pem] [--cert FILE]...\n"
               "                           [--json] roster.pb\n"
               "       baygate roster add-member|remove-member --ini roster.ini --city CODE ...\n"
               "                                     (see 'baygate roster add-member --help')\n\n"
               "The federation roster: members (city code, name, endpoint, certificate\n"
               "fingerprint, lists offered, grade scale and its mapping to the common scale),\n"
               "purposes, and who may ask whom about what (see peers/ROSTER.md).\n"
               "'sign' validates roster.ini, signs it with the key of the CA directory made\n"
               "by 'baygate ca init' and writes roster.pb atomically. It refuses a serial\n"
               "not greater than the one already in --out unless --force (gateways refuse\n"
               "older rosters). Certificates named in roster.ini must be this CA's.\n"
               "'show' prints a signed roster; with --ca (the CA certificate, or the CA\n"
               "directory) it verifies the signature first and says so, without --ca it\n"
               "shows the content as NOT verified. Each member's pinned certificate is\n"
               "shown by fingerprint, and with its serial, expiry and days left when it\n"
               "is known: from the CA directory's index (--ca CA) or a --cert FILE (any\n"
               "number of them). --crl (checked against --ca) marks the members whose\n"
               "pinned certificate it revokes REVOKED: peers refuse them. --json prints\n"
               "one JSON object.\n"
               "\n"
               "EXAMPLES\n"
               "  baygate roster sign --ca CA --out roster.pb roster.ini\n"
               "  baygate roster show --ca CA --crl crl.pem roster.pb\n"
               "\n"
               "EXIT STATUS\n"
               "  0  signed, or shown (verified with --ca)\n"
               "  1  the signature does not verify\n"
               "  2  usage or operational error\n");
}

#define ROSTER_CERTS_MAX BG_ROSTER_MAX_MEMBERS

struct roster_opts {
    const char *ca, *out, *file, *crl;
    const char *certs[ROSTER_CERTS_MAX];
    size_t ncerts;
    bool force, json;
};

static int
parse_opts(const char *cmd, int argc, char **argv, struct roster_opts *o, const char *allowed)
{
    static const struct option opts[] = {
        {"ca", required_argument, NULL, 'c'},  {"out", required_argument, NULL, 'o'},
        {"force", no_argument, NULL, 'f'},     {"json", no_argument, NULL, 'j'},
        {"crl", required_argument, NULL, 'r'}, {"cert", required_argument, NULL, 'C'},
        {"help", no_argument, NULL, 'h'},      {NULL, 0, NULL, 0},
    };
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        const char *name = NULL;
        switch (ch) {
        case 'c':
            o->ca = optarg;
            name = "ca";
            break;
        case 'o':
            o->out = optarg;
            name = "out";
            break;
        case 'f':
            o->force = true;
            name = "force";
            break;
        case 'j':
            o->json = true;
            name = "json";
            break;
        case 'r':
            o->crl = optarg;
            name = "crl";
            break;
        case 'C':
            if (o->ncerts == ROSTER_CERTS_MAX)
                return bg_cli_fail(cmd, "at most %d --cert files", ROSTER_CERTS_MAX);
            o->certs[o->ncerts++] = optarg;
            name = "cert";
            break;
        case 'h':
            roster_usage(stdout);
            return -1;
        default:
            return bg_cli_bad_option(cmd, ch, argv, opts);
        }
        char key[16];
        snprintf(key, sizeof key, " %s ", name);
        if (strstr(allowed, key) == NULL)
            return bg_cli_fail(cmd, "--%s does not apply here", name);
    }
    if (optind + 1 != argc)
        return bg_cli_usage_error(
            cmd, "%s", optind >= argc ? "which file? give exactly one" : "give exactly one file");
    o->file = argv[optind];
    return BG_EXIT_OK;
}

/* A bad, stale or unverifiable roster is a finding (1); the rest is an
 * operational error (2). */
static int
exit_for(int rc)
{
    switch (rc) {
    case BG_EINVAL:
    case BG_ELIMIT:
    case BG_ECRYPTO:
    case BG_EPROTO:
    case BG_EEXIST:
        return BG_EXIT_FAIL;
    default:
        return BG_EXIT_ERROR;
    }
}

static int
fail_rc(const char *cmd, int rc, const bg_err *err)
{
    bg_cli_fail(cmd, "%s", err->msg);
    return exit_for(rc);
}

/* Never go backwards by accident: gateways refuse an older serial. BG_EXIT_OK
 * to go on (nothing at --out, an older roster there, or --force), else the
 * exit code, the reason printed. */
static int
sign_guard(const char *cmd, const struct roster_opts *o, const bg_roster *r)
{
    bg_err err = {0};
    bg_roster *old = NULL;
    uint8_t *old_bytes = NULL;
    size_t old_len = 0;
    int exit_code = BG_EXIT_OK;
    int rc = bg_roster_read_file(o->out, &old_bytes, &old_len, &err);
    if (rc == BG_OK) {
        rc = bg_roster_inspect(old_bytes, old_len, &old, NULL, &err);
        if (rc != BG_OK && !o->force) {
            bg_cli_fail(cmd, "%s holds no readable roster (%s); --force replaces it", o->out,
                        err.msg);
            exit_code = BG_EXIT_FAIL;
        } else if (old != NULL && bg_roster_serial(r) <= bg_roster_serial(old)) {
            if (!o->force) {
                bg_cli_fail(cmd,
                            "%s has serial %" PRIu64 ", not greater than the %" PRIu64
                            " in %s: raise [federation] serial (or --force)",
                            o->file, bg_roster_serial(r), bg_roster_serial(old), o->out);
                exit_code = BG_EXIT_FAIL;
            } else {
                fprintf(stderr,
                        "baygate %s: warning: replacing serial %" PRIu64 " with %" PRIu64
                        " (--force); gateways that hold %" PRIu64 " will refuse it\n",
                        cmd, bg_roster_serial(old), bg_roster_serial(r), bg_roster_serial(old));
            }
        }
    } else if (rc != BG_ENOTFOUND && !o->force) {
        exit_code = bg_cli_fail(cmd, "%s; --force replaces it", err.msg);
    }
    free(old_bytes);
    bg_roster_free(old);
    return exit_code;
}

static int
roster_sign(const struct roster_opts *o)
{
    const char *cmd = "roster sign";
    if (o->ca == NULL || o->out == NULL)
        return bg_cli_fail(cmd, "--ca CA and --out FILE are required");
    bg_err err = {0};
    bg_pki_ca *ca = NULL;
    bg_roster *r = NULL;
    uint8_t *signed_bytes = NULL;
    size_t signed_len = 0;
    int exit_code = BG_EXIT_ERROR, rc;

    if ((rc = bg_pki_ca_open(&ca, o->ca, &err)) != BG_OK) {
        bg_cli_fail(cmd, "%s", err.msg);
        goto out;
    }
    if ((rc = bg_roster_parse_ini(o->file, bg_pki_ca_cert(ca), &r, &err)) != BG_OK) {
        exit_code = fail_rc(cmd, rc, &err);
        goto out;
    }
    if ((exit_code = sign_guard(cmd, o, r)) != BG_EXIT_OK)
        goto out;
    exit_code = BG_EXIT_ERROR;
    if ((rc = bg_roster_sign(r, bg_pki_ca_key(ca), bg_pki_ca_cert(ca), &signed_bytes, &signed_len,
                             &err)) != BG_OK ||
        (rc = bg_roster_write_file(o->out, signed_bytes, signed_len, &err)) != BG_OK) {
        exit_code = fail_rc(cmd, rc, &err);
        goto out;
    }
    uint8_t fp[BG_SIG_FP_LEN], digest[32];
    char fp_hex[BG_SIG_FP_HEX_LEN + 1], digest_hex[BG_SIG_FP_HEX_LEN + 1];
    if (bg_sig_fingerprint(bg_pki_ca_cert(ca), fp, &err) != BG_OK) {
        bg_cli_fail(cmd, "%s", err.msg);
        goto out;
    }
    bg_sig_fp_hex(fp, fp_hex);
    bg_roster_digest(r, digest);
    bg_sig_fp_hex(digest, digest_hex);
    size_t nm = bg_roster_member_count(r), np = bg_roster_purpose_count(r),
           nq = bg_roster_permission_count(r);
    printf("signed roster serial %" PRIu64 " (%zu member%s, %zu purpose%s, %zu permission%s) "
           "-> %s, %zu bytes\n"
           "  roster sha256 %s\n"
           "  CA     sha256 %s\n",
           bg_roster_serial(r), nm, nm == 1 ? "" : "s", np, np == 1 ? "" : "s", nq,
           nq == 1 ? "" : "s", o->out, signed_len, digest_hex, fp_hex);
    if (fflush(stdout) != 0) {
        bg_cli_fail(cmd, "writing output failed");
        goto out;
    }
    exit_code = BG_EXIT_OK;
out:
    free(signed_bytes);
    bg_roster_free(r);
    bg_pki_ca_close(ca);
    return exit_code;
}

/* --- show --- */

static void
lists_text(const bool lists[BG_LIST_COUNT], char *out, size_t outsz)
{
    size_t n = 0;
    out[0] = '\0';
    for (int l = 0; l < BG_LIST_COUNT && n < outsz; l++)
        if (lists[l]) {
            int w = snprintf(out + n, outsz - n, "%s%s", n ? ", " : "", bg_list_names[l]);
            if (w < 0)
                break;
            n += (size_t)w;
        }
    if (n == 0)
        snprintf(out, outsz, "(none)");
}

static void
json_lists(const bool lists[BG_LIST_COUNT])
{
    bool first = true;
    putchar('[');
    for (int l = 0; l < BG_LIST_COUNT; l++)
        if (lists[l]) {
            printf("%s\"%s\"", first ? "" : ",", bg_list_names[l]);
            first = false;
        }
    putchar(']');
}

static void
json_scale(const bg_scale *s)
{
    printf("{\"name\":");
    bg_json_cstr(stdout, s->name);
    printf(",\"grades\":[");
    for (size_t g = 0; g < s->ngrades; g++) {
        if (g)
            putchar(',');
        bg_json_cstr(stdout, s->grades[g]);
    }
    printf("]}");
}

/* What is known of one member's pinned certificate: from the CA index or a --cert file,
 * and whether the --crl revokes it. */
struct pin {
    bool known;
    char serial[BG_PKI_SERIAL_HEX_MAX + 1];
    time_t not_after;
    time_t index_revoked; /* the CA index's revocation time, 0 if none (or not from it) */
    bool crl_revoked;
    time_t crl_revoked_at;
};

/* What 'show' prints beside the roster itself. */
struct show {
    bool verified;
    char ca_hex[BG_SIG_FP_HEX_LEN + 1];
    bool lookup; /* certificates were given (CA index or --cert): pins say what is known */
    bool have_crl;
    uint64_t crl_number;
    time_t crl_next, now;
    struct pin pins[BG_ROSTER_MAX_MEMBERS];
};

static void
json_pin(const struct pin *p, time_t now)
{
    if (!p->known) {
        printf(",\"certificate\":null");
        return;
    }
    char t[BG_PKI_TIME_LEN];
    bg_pki_time_format(p->not_after, t);
    printf(",\"certificate\":{\"serial\":\"%s\",\"not_after\":\"%s\",\"days_left\":%lld,"
           "\"revoked_in_index\":%s,\"revoked\":%s,\"revoked_at\":",
           p->serial, t, bg_cli_days_left(p->not_after, now), p->index_revoked ? "true" : "false",
           p->crl_revoked ? "true" : "false");
    if (p->crl_revoked)
        bg_pki_time_format(p->crl_revoked_at, t);
    bg_json_cstr(stdout, p->crl_revoked ? t : NULL);
    putchar('}');
}

static void
json_member(const bg_roster_member *m, const struct show *sh, const struct pin *p)
{
    char hex[BG_SIG_FP_HEX_LEN + 1];
    bg_sig_fp_hex(m->cert_sha256, hex);
    printf("{\"city\":\"%s\",\"name\":", m->city);
    bg_json_cstr(stdout, m->name);
    printf(",\"endpoint\":");
    bg_json_cstr(stdout, m->endpoint);
    printf(",\"cert_sha256\":\"%s\"", hex);
    if (m->has_next) {
        bg_sig_fp_hex(m->next_sha256, hex);
        printf(",\"next_cert_sha256\":\"%s\"", hex);
    }
    if (sh->lookup)
        json_pin(p, sh->now);
    printf(",\"lists\":");
    json_lists(m->lists);
    printf(",\"scale\":");
    json_scale(&m->scale);
    printf(",\"grade_map\":{");
    for (size_t g = 0; g < m->scale.ngrades; g++) {
        if (g)
            putchar(',');
        bg_json_cstr(stdout, m->scale.grades[g]);
        printf(":%" PRIu32, m->common[g]);
    }
    printf("}}");
}

static void
json_permissions(const bg_roster *r)
{
    printf("],\"permissions\":[");
    for (size_t i = 0; i < bg_roster_permission_count(r); i++) {
        const bg_roster_perm *p = bg_roster_permission_at(r, i);
        printf("%s{\"asker\":\"%s\",\"answerer\":\"%s\",\"purposes\":[", i ? "," : "", p->asker,
               p->answerer);
        bool first = true;
        for (size_t k = 0; k < bg_roster_purpose_count(r); k++)
            if (p->purposes & (1u << k)) {
                printf("%s\"%s\"", first ? "" : ",", bg_roster_purpose_at(r, k)->name);
                first = false;
            }
        printf("],\"lists\":");
        json_lists(p->lists);
        printf(",\"quota_items_per_day\":%" PRIu64 ",\"min_count_batch\":%" PRIu32 "}",
               p->quota_items_per_day, p->min_count_batch);
    }
}

static void
show_json(const bg_roster *r, const struct show *sh)
{
    char t[BG_PKI_TIME_LEN], hex[BG_SIG_FP_HEX_LEN + 1];
    uint8_t digest[32];
    bg_pki_time_format((time_t)(bg_roster_issued_at_ms(r) / 1000), t);
    bg_roster_digest(r, digest);
    bg_sig_fp_hex(digest, hex);
    printf("{\"serial\":%" PRIu64 ",\"issued_at\":\"%s\",\"issued_at_ms\":%" PRId64
           ",\"federation\":",
           bg_roster_serial(r), t, bg_roster_issued_at_ms(r));
    bg_json_cstr(stdout, bg_roster_federation(r));
    printf(",\"verified\":%s,\"ca_sha256\":\"%s\",\"roster_sha256\":\"%s\","
           "\"max_message_bytes\":%" PRIu32,
           sh->verified ? "true" : "false", sh->ca_hex, hex, bg_roster_max_message_bytes(r));
    if (sh->have_crl) {
        bg_pki_time_format(sh->crl_next, t);
        printf(",\"crl\":{\"number\":%" PRIu64 ",\"next_update\":\"%s\"}", sh->crl_number, t);
    }
    printf(",\"common_scale\":");
    json_scale(bg_roster_common_scale(r));
    printf(",\"members\":[");
    for (size_t i = 0; i < bg_roster_member_count(r); i++) {
        if (i)
            putchar(',');
        json_member(bg_roster_member_at(r, i), sh, &sh->pins[i]);
    }
    printf("],\"purposes\":[");
    for (size_t i = 0; i < bg_roster_purpose_count(r); i++) {
        const bg_roster_purpose *p = bg_roster_purpose_at(r, i);
        printf("%s{\"name\":\"%s\",\"needs_authorisation\":%s}", i ? "," : "", p->name,
               p->needs_authorisation ? "true" : "false");
    }
    json_permissions(r);
    printf("]}\n");
}

/* The lines about a member's pinned certificate beyond its fingerprint. */
static void
text_pin(const struct show *sh, const struct pin *p)
{
    char t[BG_PKI_TIME_LEN];
    if (!sh->lookup)
        return;
    if (!p->known) {
        printf("    expires      unknown: this sha256 is not in the CA index or a --cert file\n");
        return;
    }
    bg_pki_time_format(p->not_after, t);
    long long days = bg_cli_days_left(p->not_after, sh->now);
    bool expired = p->not_after < sh->now;
    days = days < 0 ? -days : days;
    printf("    expires      %s (%lld day%s %s), serial %s\n", t, days, days == 1 ? "" : "s",
           expired ? "ago: EXPIRED" : "left", p->serial);
    if (p->crl_revoked) {
        bg_pki_time_format(p->crl_revoked_at, t);
        printf("    revoked      at %s by CRL #%" PRIu64 ": peers refuse this member\n", t,
               sh->crl_number);
    } else if (p->index_revoked != 0) {
        bg_pki_time_format(p->index_revoked, t);
        printf("    revoked      in the CA index at %s, %s\n", t,
               sh->have_crl ? "but not in this CRL: publish a new one ('baygate ca crl')"
                            : "(peers refuse it once a CRL says so; see --crl)");
    }
}

static void
text_member(const bg_roster_member *m, const struct show *sh, const struct pin *p)
{
    char hex[BG_SIG_FP_HEX_LEN + 1], buf[512];
    bg_sig_fp_hex(m->cert_sha256, hex);
    printf("  %s %s%s\n", m->city, m->name, p->crl_revoked ? "  REVOKED" : "");
    printf("    endpoint     %s\n", m->endpoint);
    printf("    certificate  sha256 %s\n", hex);
    text_pin(sh, p);
    if (m->has_next) {
        bg_sig_fp_hex(m->next_sha256, hex);
        printf("    next cert    sha256 %s (rotating: both pinned)\n", hex);
    }
    lists_text(m->lists, buf, sizeof buf);
    printf("    lists        %s\n", buf);
    bg_scale_format(&m->scale, buf, sizeof buf);
    printf("    scale        %s ->", buf);
    for (size_t g = 0; g < m->scale.ngrades; g++)
        printf(" %s:%" PRIu32, m->scale.grades[g], m->common[g]);
    printf("\n");
}

static void
text_permissions(const bg_roster *r)
{
    char buf[512];
    printf("permissions (%zu):\n", bg_roster_permission_count(r));
    for (size_t i = 0; i < bg_roster_permission_count(r); i++) {
        const bg_roster_perm *p = bg_roster_permission_at(r, i);
        size_t n = 0;
        buf[0] = '\0';
        for (size_t k = 0; k < bg_roster_purpose_count(r) && n < sizeof buf; k++)
            if (p->purposes & (1u << k)) {
                int w = snprintf(buf + n, sizeof buf - n, "%s%s", n ? ", " : "",
                                 bg_roster_purpose_at(r, k)->name);
                if (w < 0)
                    break;
                n += (size_t)w;
            }
        char lists[128];
        lists_text(p->lists, lists, sizeof lists);
        printf("  %s -> %s  purposes %s; lists %s; quota %" PRIu64 "/day; min batch %" PRIu32 "\n",
               p->asker, p->answerer, buf, lists, p->quota_items_per_day, p->min_count_batch);
    }
}

static void
show_text(const bg_roster *r, const struct show *sh)
{
    char t[BG_PKI_TIME_LEN], hex[BG_SIG_FP_HEX_LEN + 1], buf[512];
    uint8_t digest[32];
    bg_pki_time_format((time_t)(bg_roster_issued_at_ms(r) / 1000), t);
    bg_roster_digest(r, digest);
    bg_sig_fp_hex(digest, hex);
    bg_scale_format(bg_roster_common_scale(r), buf, sizeof buf);
    printf("roster serial %" PRIu64 " of %s\n", bg_roster_serial(r), bg_roster_federation(r));
    printf("  issued at      %s\n", t);
    if (sh->verified)
        printf("  signature      verified: signed by CA sha256 %s\n", sh->ca_hex);
    else
        printf("  signature      NOT VERIFIED (no --ca given); claims CA sha256 %s\n", sh->ca_hex);
    printf("  roster sha256  %s\n", hex);
    printf("  max message    %" PRIu32 " bytes\n", bg_roster_max_message_bytes(r));
    printf("  common scale   %s (rank 1 = best)\n", buf);
    if (sh->have_crl) {
        bg_pki_time_format(sh->crl_next, t);
        printf("  CRL            #%" PRIu64 ", next update %s\n", sh->crl_number, t);
    }
    printf("members (%zu):\n", bg_roster_member_count(r));
    for (size_t i = 0; i < bg_roster_member_count(r); i++)
        text_member(bg_roster_member_at(r, i), sh, &sh->pins[i]);
    printf("purposes (%zu):\n", bg_roster_purpose_count(r));
    for (size_t i = 0; i < bg_roster_purpose_count(r); i++) {
        const bg_roster_purpose *p = bg_roster_purpose_at(r, i);
        printf("  %-32s needs authorisation: %s\n", p->name, p->needs_authorisation ? "yes" : "no");
    }
    text_permissions(r);
}

/* The certificates 'show' may match pins against, and the CA they are checked with. */
struct sources {
    X509 *ca;         /* --ca's certificate, or NULL */
    bg_pki_ca *index; /* --ca as a CA directory: its index, or NULL */
    X509 *certs[ROSTER_CERTS_MAX];
    size_t ncerts;
    X509_CRL *crl;
};

static void
sources_free(struct sources *src)
{
    X509_free(src->ca);
    bg_pki_ca_close(src->index);
    for (size_t i = 0; i < src->ncerts; i++)
        X509_free(src->certs[i]);
    X509_CRL_free(src->crl);
}

/* --ca: a certificate file, or a directory holding ca.crt (a CA directory, whose
 * index then says what it issued, or a gateway directory). */
static int
load_ca(const char *cmd, const char *ca, struct sources *src)
{
    char path[PATH_MAX];
    bg_err err = {0};
    struct stat st;
    bool dir = stat(ca, &st) == 0 && S_ISDIR(st.st_mode);
    int n = dir ? snprintf(path, sizeof path, "%s/index.txt", ca)
                : snprintf(path, sizeof path, "%s", ca);
    if (n < 0 || (size_t)n >= sizeof path)
        return bg_cli_fail(cmd, "--ca: path too long");
    if (dir && access(path, F_OK) == 0) {
        if (bg_pki_ca_open_index(&src->index, ca, &err) != BG_OK)
            return bg_cli_fail(cmd, "--ca: %s", err.msg);
        src->ca = X509_dup(bg_pki_ca_cert(src->index));
        if (src->ca == NULL)
            return bg_cli_fail(cmd, "out of memory");
        return BG_EXIT_OK;
    }
    if (dir)
        snprintf(path, sizeof path, "%s/ca.crt", ca);
    if (bg_pki_cert_load(path, &src->ca, &err) != BG_OK)
        return bg_cli_fail(cmd, "--ca: %s", err.msg);
    return BG_EXIT_OK;
}

/* --cert files and --crl (its signature checked against the CA). */
static int
load_sources(const char *cmd, const struct roster_opts *o, struct sources *src, struct show *sh)
{
    bg_err err = {0};
    int rc = o->ca != NULL ? load_ca(cmd, o->ca, src) : BG_EXIT_OK;
    if (rc != BG_EXIT_OK)
        return rc;
    for (size_t i = 0; i < o->ncerts; i++, src->ncerts++)
        if (bg_pki_cert_load(o->certs[i], &src->certs[i], &err) != BG_OK)
            return bg_cli_fail(cmd, "--cert: %s", err.msg);
    sh->lookup = src->index != NULL || src->ncerts > 0;
    if (o->crl == NULL)
        return BG_EXIT_OK;
    if (src->ca == NULL)
        return bg_cli_fail(cmd, "--crl needs --ca: a CRL counts only if the CA signed it");
    if (!sh->lookup)
        return bg_cli_fail(cmd, "--crl names serials: give the CA directory as --ca, or the "
                                "members' certificates with --cert");
    bg_trust *t = NULL;
    if ((rc = bg_pki_crl_load(o->crl, &src->crl, &err)) == BG_OK &&
        (rc = bg_trust_new(&t, src->ca, src->crl, 0, &err)) == BG_OK &&
        (rc = bg_pki_crl_number(src->crl, &sh->crl_number, &err)) == BG_OK)
        rc = bg_pki_crl_next_update(src->crl, &sh->crl_next, &err);
    bg_trust_free(t);
    if (rc != BG_OK)
        return fail_rc(cmd, rc, &err); /* not the CA's, or malformed: 1 */
    sh->have_crl = true;
    return BG_EXIT_OK;
}

/* Fills p from whichever source has the certificate with fingerprint fp. */
static void
find_pin(const struct sources *src, const uint8_t fp[BG_SIG_FP_LEN], struct pin *p)
{
    for (size_t i = 0; src->index != NULL && i < bg_pki_ca_count(src->index); i++) {
        const bg_pki_issued *e = bg_pki_ca_entry(src->index, i);
        if (memcmp(e->fingerprint, fp, BG_SIG_FP_LEN) == 0) {
            p->known = true;
            memcpy(p->serial, e->serial, sizeof p->serial);
            p->not_after = e->not_after;
            p->index_revoked = e->revoked_at;
            return;
        }
    }
    for (size_t i = 0; i < src->ncerts; i++) {
        uint8_t cfp[BG_SIG_FP_LEN];
        if (bg_sig_fingerprint(src->certs[i], cfp, NULL) == BG_OK &&
            memcmp(cfp, fp, BG_SIG_FP_LEN) == 0 &&
            bg_pki_cert_serial_hex(src->certs[i], p->serial, NULL) == BG_OK &&
            bg_pki_asn1_time(X509_get0_notAfter(src->certs[i]), &p->not_after, NULL) == BG_OK) {
            p->known = true;
            return;
        }
    }
}

static void
fill_pins(const bg_roster *r, const struct sources *src, struct show *sh)
{
    for (size_t i = 0; i < bg_roster_member_count(r); i++) {
        struct pin *p = &sh->pins[i];
        find_pin(src, bg_roster_member_at(r, i)->cert_sha256, p);
        if (p->known && src->crl != NULL &&
            bg_pki_crl_revoked(src->crl, p->serial, &p->crl_revoked_at, NULL) == BG_OK)
            p->crl_revoked = true;
    }
}

static int
roster_show(const struct roster_opts *o)
{
    const char *cmd = "roster show";
    bg_err err = {0};
    struct sources src = {0};
    struct show *sh = calloc(1, sizeof *sh);
    bg_roster *r = NULL;
    uint8_t *bytes = NULL, fp[BG_SIG_FP_LEN];
    size_t len = 0;
    int exit_code, rc;
    if (sh == NULL)
        return bg_cli_fail(cmd, "out of memory");
    if ((exit_code = load_sources(cmd, o, &src, sh)) != BG_EXIT_OK)
        goto out;
    exit_code = BG_EXIT_ERROR;
    if (src.ca != NULL && bg_sig_fingerprint(src.ca, fp, &err) != BG_OK) {
        bg_cli_fail(cmd, "--ca: %s", err.msg);
        goto out;
    }
    if ((rc = bg_roster_read_file(o->file, &bytes, &len, &err)) != BG_OK) {
        exit_code = fail_rc(cmd, rc, &err);
        goto out;
    }
    rc = src.ca != NULL ? bg_roster_open(bytes, len, src.ca, 0, NULL, &r, NULL, &err)
                        : bg_roster_inspect(bytes, len, &r, fp, &err);
    if (rc != BG_OK) {
        bg_cli_fail(cmd, "%s: %s", o->file, err.msg);
        exit_code = exit_for(rc);
        goto out;
    }
    sh->verified = src.ca != NULL;
    sh->now = time(NULL);
    bg_sig_fp_hex(fp, sh->ca_hex);
    fill_pins(r, &src, sh);
    if (o->json)
        show_json(r, sh);
    else
        show_text(r, sh);
    if (fflush(stdout) != 0) {
        bg_cli_fail(cmd, "writing output failed");
        goto out;
    }
    exit_code = BG_EXIT_OK;
out:
    bg_roster_free(r);
    free(bytes);
    sources_free(&src);
    free(sh);
    return exit_code;
}

int
bg_cmd_roster(int argc, char **argv)
{
    static const char *const names[] = {"sign", "show", "add-member", "remove-member"};
    if (argc < 2)
        return bg_cli_usage_error("roster", "which one? sign, show, add-member or remove-member");
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        roster_usage(stdout);
        return BG_EXIT_OK;
    }
    if (strcmp(argv[1], "add-member") == 0 || strcmp(argv[1], "remove-member") == 0)
        return bg_cmd_roster_member(argc - 1, argv + 1);
    static const struct {
        const char *name;
        const char *allowed;
        int (*run)(const struct roster_opts *);
    } subs[] = {
        {"sign", " ca out force ", roster_sign},
        {"show", " ca json crl cert ", roster_show},
    };
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) {
        if (strcmp(argv[1], subs[i].name) != 0)
            continue;
        char cmd[32];
        snprintf(cmd, sizeof cmd, "roster %s", subs[i].name);
        struct roster_opts o = {0};
        int rc = parse_opts(cmd, argc - 1, argv + 1, &o, subs[i].allowed);
        if (rc < 0)
            return BG_EXIT_OK; /* --help */
        if (rc != BG_EXIT_OK)
            return rc;
        return subs[i].run(&o);
    }
    return bg_cli_unknown("roster", argv[1], names, sizeof names / sizeof names[0]);
}
