/*
 * cmd_lookup.c - baygate lookup: one enterprise in every city of the federation, as a
 * lending platform asks about it. Our own city from our store (the gateway's local
 * Lookup), every peer by the same private queries as `baygate query` (one LocalQuery
 * per list, the peers asked at once): the peers never learn which enterprise it is.
 * Plain sentences, or --json for programs.
 */
#include <getopt.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "domain/uscc.h"
#include "gateway/api/api_json.h"
#include "gateway/cli/cli.h"
#include "proto/api.pb-c.h"
#include "proto/pb.h"

#define LOOKUP_LISTS BG_API_LOOKUP_LISTS
#define LOOKUP_AUTH_MAX 64U

static void
lookup_usage(FILE *f)
{
    fprintf(f, "usage: baygate lookup --dir GW --purpose P [--consent FILE | --auth-ref HEX]\n"
               "                      [--json] [--timeout-ms N] [--quiet] USCC\n\n"
               "Says, for one enterprise and every city of the federation including ours,\n"
               "whether it is on each list (serious-dishonesty, abnormal-operation) and its\n"
               "grade on the issuer's and the common scale, with its validity and whether\n"
               "its attestation verifies; for our own city also its name. Our city's answer\n"
               "comes from our store; the others' by private set intersection (they never\n"
               "learn which enterprise was asked about). A purpose that needs the enterprise's\n"
               "written authorisation needs --consent FILE (its SHA-256 is sent) or --auth-ref.\n"
               "--json: one object. Each city asked shows the request id of each list's\n"
               "exchange (hex): its leaves in both evidence logs carry it\n"
               "(baygate audit find --request).\n"
               "On a terminal, a line on stderr shows for how long it has been asking and\n"
               "each peer's snapshot the gateway is fetching for it, how far (never with\n"
               "--json; --quiet turns it off).\n"
               "\n"
               "EXAMPLES\n"
               "  baygate lookup --dir GZ --purpose supervision 91440300MA5FXXXXXX\n"
               "  baygate lookup --dir GZ --purpose lending --consent consent.pdf --json CODE\n"
               "\n"
               "EXIT STATUS\n"
               "  0  every city answered every question\n"
               "  1  some did not\n"
               "  2  usage or local error\n");
}

typedef struct lkargs {
    const char *dir, *purpose, *in;
    uint8_t auth[LOOKUP_AUTH_MAX];
    size_t auth_len;
    uint64_t timeout;
    bool json, quiet;
} lkargs;

/* What we learnt: our store's answer and one query answer per list. */
typedef struct lkres {
    char code[BG_USCC_LEN + 1];
    Baygate__LocalAnswer *own;
    Baygate__LocalAnswer *q[LOOKUP_LISTS];
} lkres;

static void
lkres_free(lkres *r)
{
    if (r->own != NULL)
        bg_pb_free(r->own);
    for (int l = 0; l < LOOKUP_LISTS; l++)
        if (r->q[l] != NULL)
            bg_pb_free(r->q[l]);
}

/* Asks our gateway: the store's answer, then every peer per list. Exit code. */
static int
lookup_ask(const lkargs *a, lkres *r)
{
    Baygate__LocalRequest req = BAYGATE__LOCAL_REQUEST__INIT;
    Baygate__LocalLookup ll = BAYGATE__LOCAL_LOOKUP__INIT;
    ll.uscc = r->code;
    req.op_case = BAYGATE__LOCAL_REQUEST__OP_LOOKUP;
    req.lookup = &ll;
    if ((r->own = bg_cli_ask("lookup", a->dir, &req)) == NULL)
        return BG_EXIT_ERROR;
    if (r->own->error_code != 0 || r->own->lookup == NULL)
        return bg_cli_fail("lookup", "%s", r->own->error ? r->own->error : "no answer");
    char *ids[1] = {r->code}, what[64];
    snprintf(what, sizeof what, "looking up %s in every city", r->code);
    bg_cli_progress *prog = bg_cli_progress_start(a->dir, what, a->quiet || a->json);
    int rc = BG_EXIT_OK;
    for (int l = 0; l < LOOKUP_LISTS && rc == BG_EXIT_OK; l++) {
        Baygate__LocalQuery lq = BAYGATE__LOCAL_QUERY__INIT;
        lq.list = (char *)bg_api_lookup_lists[l];
        lq.purpose = (char *)a->purpose;
        lq.n_ids = 1;
        lq.ids = ids;
        lq.mode = l == 2 ? 2 : 1;
        lq.timeout_ms = (uint32_t)a->timeout;
        lq.authorisation_ref.data = (uint8_t *)a->auth;
        lq.authorisation_ref.len = a->auth_len;
        req = (Baygate__LocalRequest)BAYGATE__LOCAL_REQUEST__INIT;
        req.op_case = BAYGATE__LOCAL_REQUEST__OP_QUERY;
        req.query = &lq;
        r->q[l] = bg_cli_ask("lookup", a->dir, &req);
        bg_cli_progress_clear(prog); /* an error said below starts a line of its own */
        if (r->q[l] == NULL)
            rc = BG_EXIT_ERROR;
        else if (r->q[l]->error_code != 0 || r->q[l]->query == NULL)
            rc = bg_cli_fail("lookup", "%s", r->q[l]->error ? r->q[l]->error : "no answer");
    }
    bg_cli_progress_stop(prog);
    return rc;
}

/* ---------------------------------------------------------------- text */

static void
text_own(const Baygate__LookupAnswer *la)
{
    printf("%s %s (our city): ", la->city, la->city_name);
    if (!la->found) {
        printf("not in our store.\n");
        return;
    }
    printf("%s.\n", la->name);
    for (int l = 0; l < 2; l++) {
        const Baygate__LookupEntry *e = NULL;
        for (size_t k = 0; k < la->n_entries; k++)
            if (strcmp(la->entries[k]->list, bg_api_lookup_lists[l]) == 0)
                e = la->entries[k];
        if (e == NULL)
            printf("  It is not on %s.\n", bg_api_lookup_lists[l]);
        else
            printf("  It is on %s since %s%s%s (reason: %s)%s.\n", bg_api_lookup_lists[l],
                   e->listed_at, e->expires_at[0] ? ", until " : "", e->expires_at, e->reason,
                   e->in_force ? "" : "; expired, so peers no longer see it");
    }
    if (!la->graded)
        printf("  It has no evaluation.\n");
    else
        printf("  Its grade is %s on scale %s (%s on the common scale), evaluated %s, valid "
               "until %s: %s; our own record.\n",
               la->grade, la->scale, la->common_grade[0] ? la->common_grade : "not mapped",
               la->evaluated_at, la->valid_until, la->valid ? "valid" : "EXPIRED");
}

/* One line: the request id of each list's exchange with the peer (its evidence). */
static void
text_requests(const Baygate__PeerQueryResult *const p[LOOKUP_LISTS])
{
    char rid[33];
    printf("  Request ids:");
    for (int l = 0; l < LOOKUP_LISTS; l++)
        printf("%s %s %s", l ? "," : "", bg_api_lookup_lists[l],
               bg_api_request_hex(p[l], rid)[0] ? rid : "(none sent)");
    printf(".\n");
}

/* Prints peer p's answers in the three lists' results; true if all answered. */
static bool
text_peer(const lkres *r, const Baygate__PeerQueryResult *p0)
{
    bool all = true;
    printf("%s %s: ", p0->peer, p0->peer_name ? p0->peer_name : "");
    const Baygate__PeerQueryResult *p[LOOKUP_LISTS];
    bool none = true;
    for (int l = 0; l < LOOKUP_LISTS; l++) {
        p[l] = bg_api_lookup_peer(r->q[l], p0->peer);
        none &= p[l] == NULL || !p[l]->ok;
    }
    printf("%s\n", none ? "did not answer." : "asked privately.");
    for (int l = 0; l < LOOKUP_LISTS; l++) {
        const char *what = l == 2 ? "its grade" : bg_api_lookup_lists[l];
        if (p[l] == NULL || !p[l]->ok) {
            all = false;
            printf("  Not answered about %s: %s\n", what,
                   p[l] && p[l]->error ? p[l]->error : "no answer");
        } else if (l < 2) {
            printf("  It is %son %s.\n", p[l]->n_matches > 0 ? "" : "not ", bg_api_lookup_lists[l]);
        } else if (p[l]->n_grades == 0) {
            printf("  It has no evaluation there.\n");
        } else {
            const Baygate__GradeResult *g = p[l]->grades[0];
            /* The same three words as the query table's grade_status column. */
            const char *st = g->attestation_status != NULL && g->attestation_status[0]
                                 ? g->attestation_status
                             : g->attested ? "attested"
                                           : "unattested";
            bool expired = strcmp(st, "expired") == 0 || !bg_api_grade_valid(g->valid_until);
            printf("  Its grade is %s on scale %s (%s on the common scale), evaluated %s, valid "
                   "until %s: %s%s%s.\n",
                   g->grade, g->scale, g->common_grade[0] ? g->common_grade : "not mapped",
                   g->evaluated_at, g->valid_until,
                   expired                       ? "expired, so not a current evaluation"
                   : strcmp(st, "attested") == 0 ? "current and attested"
                                                 : "unattested",
                   !expired && strcmp(st, "attested") != 0 && g->attestation_error ? ": " : "",
                   !expired && strcmp(st, "attested") != 0 && g->attestation_error
                       ? g->attestation_error
                       : "");
        }
    }
    text_requests(p);
    return all;
}

/* ---------------------------------------------------------------- main */

static int
lookup_print(const lkargs *a, const lkres *r)
{
    const Baygate__QueryAnswer *q0 = r->q[0]->query;
    bool all = true;
    if (a->json) {
        bg_api_lookup l = {.uscc = r->code, .purpose = a->purpose, .own = r->own->lookup};
        for (int i = 0; i < LOOKUP_LISTS; i++)
            l.q[i] = r->q[i];
        all = bg_api_json_lookup(stdout, &l);
    } else {
        printf("%s in %zu cities, for %s:\n\n", r->code, q0->n_peers + 1, a->purpose);
        text_own(r->own->lookup);
        for (size_t i = 0; i < q0->n_peers; i++)
            all &= text_peer(r, q0->peers[i]);
    }
    return all ? BG_EXIT_OK : BG_EXIT_FAIL;
}

/* The options: -1 to go on, else the exit code. */
static int
lookup_opt(lkargs *a, int ch, const char *arg)
{
    switch (ch) {
    case 'd':
        a->dir = arg;
        return -1;
    case 'u':
        a->purpose = arg;
        return -1;
    case 'j':
        a->json = true;
        return -1;
    case 'q':
        a->quiet = true;
        return -1;
    case 't':
        if (!bg_cli_parse_u64("lookup", "--timeout-ms", arg, &a->timeout))
            return BG_EXIT_ERROR;
        if (a->timeout < 1 || a->timeout > 600000)
            return bg_cli_fail("lookup", "--timeout-ms must be 1..600000");
        return -1;
    case 'C':
        if (a->auth_len != 0)
            return bg_cli_fail("lookup", "give one of --consent and --auth-ref, once");
        if (bg_cli_consent_digest("lookup", arg, a->auth) != BG_EXIT_OK)
            return BG_EXIT_ERROR;
        a->auth_len = 32;
        return -1;
    case 'A':
        if (a->auth_len != 0)
            return bg_cli_fail("lookup", "give one of --consent and --auth-ref, once");
        if (sodium_hex2bin(a->auth, sizeof a->auth, arg, strlen(arg), NULL, &a->auth_len, NULL) !=
                0 ||
            a->auth_len == 0 || strlen(arg) != 2 * a->auth_len)
            return bg_cli_fail("lookup", "--auth-ref must be 2 to 128 hex digits");
        return -1;
    default: /* 'h' */
        lookup_usage(stdout);
        return BG_EXIT_OK;
    }
}

int
bg_cmd_lookup(int argc, char **argv)
{
    static const struct option opts[] = {
        {"dir", required_argument, NULL, 'd'},
        {"purpose", required_argument, NULL, 'u'},
        {"json", no_argument, NULL, 'j'},
        {"timeout-ms", required_argument, NULL, 't'},
        {"auth-ref", required_argument, NULL, 'A'},
        {"consent", required_argument, NULL, 'C'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    lkargs a = {0};
    int ch, rc;
    optind = 1;
    while ((ch = getopt_long(argc, argv, ":d:u:jqt:A:C:h", opts, NULL)) != -1) {
        if (ch == '?' || ch == ':')
            return bg_cli_bad_option("lookup", ch, argv, opts);
        if ((rc = lookup_opt(&a, ch, optarg)) != -1)
            return rc;
    }
    if (optind + 1 != argc)
        return bg_cli_usage_error("lookup", "give one USCC");
    if (a.dir == NULL || a.purpose == NULL)
        return bg_cli_usage_error("lookup", "%s is required",
                                  a.dir == NULL ? "--dir GW" : "--purpose");
    lkres r = {.own = NULL};
    bg_uscc u;
    bg_err err = {0};
    if (bg_uscc_parse(argv[optind], strlen(argv[optind]), &u, &err) != BG_OK)
        return bg_cli_fail("lookup", "'%s' is not a valid USCC: %s", argv[optind], err.msg);
    memcpy(r.code, u.code, sizeof r.code);
    rc = lookup_ask(&a, &r);
    if (rc == BG_EXIT_OK)
        rc = lookup_print(&a, &r);
    lkres_free(&r);
    return rc;
}
