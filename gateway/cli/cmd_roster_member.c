/*
 * cmd_roster_member.c - baygate roster add-member / remove-member: a city in or out
 * of the roster's INI source.
 *
 * The source stays the operator's file: the edit (peers/roster_edit.h) adds or takes
 * out whole sections and raises [federation] serial, every other line as it was. The
 * result is compiled exactly as 'roster sign' would (the certificate checked against
 * the CA when --ca is given) before it atomically replaces the file; nothing is signed
 * here. Exit status: 0 done, 1 the edit would make an invalid roster, or the city is
 * (not) a member already, 2 usage or operational error.
 */
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "certs/pki.h"
#include "common/file.h"
#include "gateway/cli/cli.h"
#include "peers/roster.h"
#include "peers/roster_edit.h"
#include "peers/roster_ini.h"

static void
member_usage(FILE *f)
{
    fprintf(f, "usage: baygate roster add-member --ini roster.ini --city CODE --name NAME\n"
               "                  --endpoint tls+tcp://HOST:PORT --certificate FILE --lists L[,L]\n"
               "                  --scale NAME=G1,G2,... --grade-map G:R,... [--ca CA]\n"
               "       baygate roster remove-member --ini roster.ini --city CODE [--ca CA]\n\n"
               "Edits the roster source (peers/ROSTER.md) line by line, keeping every other\n"
               "line and comment, and raises its serial. 'add-member' appends a [member]\n"
               "section after the last one (--lists '' offers none; --certificate is the\n"
               "city's certificate, written relative to the roster source). 'remove-member'\n"
               "takes out the city's [member] section and every [permission] section naming\n"
               "it. The result is compiled as 'roster sign' would (with --ca, the certificate\n"
               "must be that CA's) before it replaces the file; then sign and distribute it.\n"
               "\n"
               "EXAMPLES\n"
               "  baygate roster remove-member --ini roster.ini --city 440600 --ca CA\n"
               "\n"
               "EXIT STATUS\n"
               "  0  edited\n"
               "  1  the city is (not) a member already\n"
               "  2  usage or operational error\n");
}

struct member_opts {
    const char *ini, *ca;
    bg_roster_new_member nm;
};

static int
member_parse(const char *cmd, bool add, int argc, char **argv, struct member_opts *o)
{
    static const struct option opts[] = {
        {"ini", required_argument, NULL, 'i'},
        {"ca", required_argument, NULL, 'a'},
        {"city", required_argument, NULL, 'c'},
        {"name", required_argument, NULL, 'n'},
        {"endpoint", required_argument, NULL, 'e'},
        {"certificate", required_argument, NULL, 'x'},
        {"lists", required_argument, NULL, 'l'},
        {"scale", required_argument, NULL, 's'},
        {"grade-map", required_argument, NULL, 'g'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    bg_roster_new_member *nm = &o->nm;
    const char **slot[128] = {['i'] = &o->ini,    ['a'] = &o->ca,        ['c'] = &nm->city,
                              ['n'] = &nm->name,  ['e'] = &nm->endpoint, ['x'] = &nm->certificate,
                              ['l'] = &nm->lists, ['s'] = &nm->scale,    ['g'] = &nm->grade_map};
    int ch;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        if (ch == 'h') {
            member_usage(stdout);
            return -1;
        }
        if (ch < 0 || ch >= 128 || slot[ch] == NULL)
            return bg_cli_bad_option(cmd, ch, argv, opts);
        if (!add && ch != 'i' && ch != 'a' && ch != 'c') {
            const struct option *op = opts;
            while (op->val != ch)
                op++;
            return bg_cli_fail(cmd, "--%s does not apply here", op->name);
        }
        *slot[ch] = optarg;
    }
    if (optind != argc)
        return bg_cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (o->ini == NULL || nm->city == NULL)
        return bg_cli_usage_error(cmd, "--ini FILE and --city CODE are required");
    if (add && (nm->name == NULL || nm->endpoint == NULL || nm->certificate == NULL ||
                nm->lists == NULL || nm->scale == NULL || nm->grade_map == NULL))
        return bg_cli_usage_error(cmd, "--name, --endpoint, --certificate, --lists, --scale and "
                                       "--grade-map are required");
    return BG_EXIT_OK;
}

/* The directory of path, into dir. */
static void
dir_of(const char *path, char dir[PATH_MAX])
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        snprintf(dir, PATH_MAX, ".");
    else if (slash == path)
        snprintf(dir, PATH_MAX, "/");
    else
        snprintf(dir, PATH_MAX, "%.*s", (int)(slash - path), path);
}

/* --certificate as the source will read it: relative to its directory when the file
 * is under it, else absolute. */
static int
cert_as_written(const char *cmd, const char *ini, const char *cert, char out[PATH_MAX])
{
    char dir[PATH_MAX], rdir[PATH_MAX], rcert[PATH_MAX];
    dir_of(ini, dir);
    if (realpath(cert, rcert) == NULL)
        return bg_cli_fail(cmd, "--certificate %s: no such file", cert);
    if (realpath(dir, rdir) == NULL)
        return bg_cli_fail(cmd, "--ini %s: its directory is not there", ini);
    size_t n = strlen(rdir);
    if (strncmp(rcert, rdir, n) == 0 && rcert[n] == '/')
        snprintf(out, PATH_MAX, "%s", rcert + n + 1);
    else if (strcmp(rdir, "/") == 0)
        snprintf(out, PATH_MAX, "%s", rcert + 1);
    else
        snprintf(out, PATH_MAX, "%s", rcert);
    return BG_EXIT_OK;
}

/* Compiles the edited text as 'roster sign' would; *r on success. */
static int
member_check(const char *cmd, const struct member_opts *o, const char *text, size_t len,
             bg_roster **r)
{
    char dir[PATH_MAX], name[PATH_MAX + 16];
    bg_err err = {0};
    bg_pki_ca *ca = NULL;
    if (o->ca != NULL && bg_pki_ca_open(&ca, o->ca, &err) != BG_OK)
        return bg_cli_fail(cmd, "%s", err.msg);
    dir_of(o->ini, dir);
    snprintf(name, sizeof name, "%s as edited", o->ini);
    int rc =
        bg_roster_parse_ini_text(text, len, dir, name, ca ? bg_pki_ca_cert(ca) : NULL, r, &err);
    bg_pki_ca_close(ca);
    if (rc == BG_OK)
        return BG_EXIT_OK;
    bg_cli_fail(cmd, "%s; %s is unchanged", err.msg, o->ini);
    return rc == BG_ENOMEM || rc == BG_EIO ? BG_EXIT_ERROR : BG_EXIT_FAIL;
}

/* How many permissions have city as asker and as answerer. */
static void
member_pairs(const bg_roster *r, const char *city, size_t *asks, size_t *answers)
{
    *asks = *answers = 0;
    for (size_t i = 0; i < bg_roster_permission_count(r); i++) {
        const bg_roster_perm *p = bg_roster_permission_at(r, i);
        *asks += strcmp(p->asker, city) == 0;
        *answers += strcmp(p->answerer, city) == 0;
    }
}

static int
member_report(bool add, const struct member_opts *o, const bg_roster *r, size_t removed,
              uint64_t serial)
{
    size_t asks = 0, answers = 0, nm = bg_roster_member_count(r);
    member_pairs(r, o->nm.city, &asks, &answers);
    if (add)
        printf("added member %s (%s) to %s, serial %" PRIu64 "; it may ask %zu member%s and be "
               "asked by %zu\n",
               o->nm.city, o->nm.name, o->ini, serial, asks, asks == 1 ? "" : "s", answers);
    else
        printf("removed member %s from %s (%zu section%s), serial %" PRIu64 "; %zu member%s "
               "left\n",
               o->nm.city, o->ini, removed, removed == 1 ? "" : "s", serial, nm,
               nm == 1 ? "" : "s");
    printf("next: baygate roster sign --ca %s --out roster.pb %s\n"
           "      and put roster.pb into every gateway's directory\n",
           o->ca ? o->ca : "CA", o->ini);
    return fflush(stdout) == 0 ? BG_EXIT_OK : bg_cli_fail("roster", "writing output failed");
}

static int
member_edit(const char *cmd, bool add, const struct member_opts *o)
{
    bg_err err = {0};
    uint8_t *text = NULL;
    size_t len = 0, out_len = 0, removed = 0;
    struct stat st;
    char *out = NULL;
    uint64_t serial = 0;
    bg_roster *r = NULL;
    int rc = bg_file_read(o->ini, BG_ROSTER_INI_MAX, &text, &len, &st, &err);
    if (rc != BG_OK)
        return bg_cli_fail(cmd, "%s", err.msg);
    rc = add ? bg_roster_edit_add_member((const char *)text, len, &o->nm, &out, &out_len, &serial,
                                         &err)
             : bg_roster_edit_remove_member((const char *)text, len, o->nm.city, &out, &out_len,
                                            &removed, &serial, &err);
    free(text);
    int exit_code;
    if (rc != BG_OK) {
        bg_cli_fail(cmd, "%s: %s", o->ini, err.msg);
        exit_code = rc == BG_ENOMEM ? BG_EXIT_ERROR : BG_EXIT_FAIL;
    } else if ((exit_code = member_check(cmd, o, out, out_len, &r)) == BG_EXIT_OK &&
               bg_file_write_replace(o->ini, out, out_len, st.st_mode & 0777, &err) != BG_OK) {
        exit_code = bg_cli_fail(cmd, "%s", err.msg);
    }
    free(out);
    if (exit_code == BG_EXIT_OK)
        exit_code = member_report(add, o, r, removed, serial);
    bg_roster_free(r);
    return exit_code;
}

int
bg_cmd_roster_member(int argc, char **argv)
{
    bool add = strcmp(argv[0], "add-member") == 0;
    const char *cmd = add ? "roster add-member" : "roster remove-member";
    struct member_opts o = {0};
    int rc = member_parse(cmd, add, argc, argv, &o);
    if (rc != BG_EXIT_OK)
        return rc < 0 ? BG_EXIT_OK : rc;
    char cert[PATH_MAX];
    if (add) {
        if ((rc = cert_as_written(cmd, o.ini, o.nm.certificate, cert)) != BG_EXIT_OK)
            return rc;
        o.nm.certificate = cert;
    }
    return member_edit(cmd, add, &o);
}
