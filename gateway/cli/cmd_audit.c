/*
 * cmd_audit.c - baygate audit: read a gateway's evidence log (gateway/audit).
 *
 * Everything here opens the log read-only, so it is safe while the gateway
 * runs and appends: a record being written is "not yet written", never
 * repaired. Signatures are checked with the city certificate named in
 * baygate.ini ([pki] cert, GW/city.crt by default), or the one it replaced in a
 * rotation (city.prev.crt) for the heads signed before.
 * Exit status: 0 fine, 1 something does not verify (a proof, a signature, a
 * damaged log), 2 usage or operational error.
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
#include "common/json.h"
#include "gateway/audit/audit.h"
#include "gateway/cli/cli.h"
#include "gateway/config/config.h"

static void
audit_usage(FILE *f)
{
    fprintf(f, "usage: baygate audit head --dir GW [--json]\n"
               "       baygate audit proof --dir GW --leaf N [--size S] [--json]\n"
               "       baygate audit consistency --dir GW --from A [--to B] [--json]\n"
               "       baygate audit verify --dir GW [--json]\n"
               "       baygate audit witness --dir GW [--json]\n"
               "       baygate audit find --dir GW [--request ID] [--peer CITY] [--purpose P]\n"
               "                          [--auth-ref HEX] [--since T] [--until T] [--json]\n"
               "       baygate audit export --dir GW --request ID --out FILE [--unwitnessed]\n"
               "       baygate audit verify-bundle FILE --ca CA.crt --roster roster.pb\n"
               "                          [--crl crl.pem] [--at T] [--min-witnesses N] [--json]\n\n"
               "The gateway's evidence log: one Merkle leaf (RFC 6962) per request sent or\n"
               "received and per answer or refusal, under <data_dir>/audit.\n"
               "'head' shows the latest signed tree head (signature checked with the city\n"
               "certificate) and the log's current size and root.\n"
               "'proof' shows leaf N and its inclusion proof, verified against the latest\n"
               "signed head, or against the log's own root at size S with --size.\n"
               "'consistency' shows and verifies the proof that size B extends size A\n"
               "(B defaults to the latest signed head, else the current size); a size that\n"
               "has a signed head uses that head's root.\n"
               "'verify' re-reads every leaf, recomputes every hash and checks every stored\n"
               "head: signature, city, and root equal to the leaves' root at its size.\n"
               "'witness' lists who cosigned our heads, the peers' heads we cosigned, and\n"
               "any forks we were shown.\n"
               "'find' lists the leaves that match filters, such as the request id of one\n"
               "exchange as `baygate query` prints it; 'export' writes that exchange's\n"
               "evidence bundle (leaves, proofs, signed head, cosignatures, certificates)\n"
               "and 'verify-bundle' checks one anywhere with only the CA certificate and\n"
               "the roster (`baygate audit SUB --help` for each).\n"

               "\n"
               "EXAMPLES\n"
               "  baygate audit head --dir GZ\n"
               "  baygate audit verify --dir GZ --json\n"
               "  baygate audit proof --dir SZ --leaf 42 --size 96\n"
               "\n"
               "EXIT STATUS\n"
               "  0  ok\n"
               "  1  something does not verify\n"
               "  2  usage or operational error\n");
}

struct audit_opts {
    const char *dir;
    uint64_t leaf, size, from, to;
    bool has_leaf, has_size, has_from, has_to, json;
};

/* The gateway's config, audit directory and (if it loads) its certificate, and the one
 * before its last rotation (city.prev.crt, 'baygate rekey'), which signed older heads. */
struct gw {
    bg_config cfg;
    char audit_dir[BG_CONFIG_PATH_MAX + 8];
    X509 *cert, *prev;
    char cert_err[BG_ERR_MSG_MAX];
};

static void
gw_free(struct gw *g)
{
    X509_free(g->cert);
    X509_free(g->prev);
}

static int
gw_load(const char *cmd, const char *dir, struct gw *g)
{
    memset(g, 0, sizeof *g);
    bg_err err = {0};
    char path[BG_CONFIG_PATH_MAX + 32];
    if (snprintf(path, sizeof path, "%s/%s", dir, BG_CONFIG_FILE) >= (int)sizeof path)
        return bg_cli_fail(cmd, "gateway directory path too long");
    if (bg_config_load(path, &g->cfg, &err) != BG_OK)
        return bg_cli_fail(cmd, "%s", err.msg);
    if (snprintf(g->audit_dir, sizeof g->audit_dir, "%s/audit", g->cfg.data_dir) >=
        (int)sizeof g->audit_dir)
        return bg_cli_fail(cmd, "data directory path too long");
    if (bg_pki_cert_load(g->cfg.cert_path, &g->cert, &err) != BG_OK) {
        g->cert = NULL;
        snprintf(g->cert_err, sizeof g->cert_err, "%s", err.msg);
    }
    char prev[BG_CONFIG_PATH_MAX + 16];
    if (bg_cli_rekey_path(prev, sizeof prev, g->cfg.cert_path, "prev", NULL) &&
        access(prev, R_OK) == 0 && bg_pki_cert_load(prev, &g->prev, &err) != BG_OK)
        g->prev = NULL;
    return BG_EXIT_OK;
}

static int
log_open(const char *cmd, struct gw *g, bg_audit_log **log, bg_audit_open_report *rep)
{
    bg_err err = {0};
    int rc = bg_audit_open(log, g->audit_dir, g->cfg.city, BG_AUDIT_READ_ONLY, rep, &err);
    if (rc == BG_OK)
        return BG_EXIT_OK;
    if (rc == BG_ENOTFOUND) {
        bg_cli_fail(cmd, "no audit log in %s (has the gateway run?): %s", g->audit_dir, err.msg);
        return BG_EXIT_ERROR;
    }
    bg_cli_fail(cmd, "%s", err.msg);
    return rc == BG_EPROTO ? BG_EXIT_FAIL : BG_EXIT_ERROR;
}

/* gw_load, then log_open (read-only, no report): what head, proof and consistency
 * start with. Whatever it returns, the caller closes *log and frees g->cert. */
static int
gw_log_open(const char *cmd, const char *dir, struct gw *g, bg_audit_log **log)
{
    *log = NULL;
    int ex = gw_load(cmd, dir, g);
    if (ex == BG_EXIT_OK)
        ex = log_open(cmd, g, log, NULL);
    return ex;
}

typedef int (*log_fn)(const char *cmd, const struct audit_opts *o, struct gw *g, bg_audit_log *log);

/* Runs fn on the gateway's log (gw_log_open), then closes the log and frees the
 * certificate whatever fn returned: head, proof and consistency all run so. */
static int
with_log(const char *cmd, const struct audit_opts *o, log_fn fn)
{
    struct gw g;
    bg_audit_log *log = NULL;
    int ex = gw_log_open(cmd, o->dir, &g, &log);
    if (ex == BG_EXIT_OK)
        ex = fn(cmd, o, &g, log);
    bg_audit_close(log);
    gw_free(&g);
    return ex;
}

static void
fmt_ms(int64_t ms, char out[BG_PKI_TIME_LEN])
{
    bg_pki_time_format((time_t)(ms / 1000), out);
}

/* Checks h with the city certificate; fills why on failure. */
static bool
head_sig_ok(const struct gw *g, const bg_audit_head *h, char *why, size_t whylen)
{
    bg_err err = {0};
    if (g->cert == NULL) {
        snprintf(why, whylen, "cannot check: %.400s", g->cert_err);
        return false;
    }
    if (bg_audit_head_verify(h, NULL, g->cert, &err) != BG_OK &&
        (g->prev == NULL || bg_audit_head_verify(h, NULL, g->prev, NULL) != BG_OK)) {
        snprintf(why, whylen, "%s", err.msg);
        return false;
    }
    return true;
}

static void
print_proof(const bg_audit_hash *p, size_t n, bool json)
{
    char hex[2 * BG_AUDIT_HASH_LEN + 1];
    if (json) {
        printf("[");
        for (size_t i = 0; i < n; i++) {
            bg_audit_hash_hex(p[i], hex);
            printf("%s\"%s\"", i ? "," : "", hex);
        }
        printf("]");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        bg_audit_hash_hex(p[i], hex);
        printf("  %2zu  %s\n", i, hex);
    }
}

/* --- head --- */

static int
audit_head(const char *cmd, const struct audit_opts *o, struct gw *gw, bg_audit_log *log)
{
    (void)cmd;
    bg_err err = {0};
    uint64_t n = bg_audit_size(log);
    bg_audit_hash root;
    char rhex[65], hhex[65], ts[BG_PKI_TIME_LEN], why[BG_ERR_MSG_MAX] = "";
    bg_audit_root(log, n, root, &err);
    bg_audit_hash_hex(root, rhex);
    bg_audit_head h;
    bool have = bg_audit_head_latest(log, &h, &err) == BG_OK;
    bool ok = have && head_sig_ok(gw, &h, why, sizeof why);
    if (have) {
        bg_audit_hash_hex(h.root, hhex);
        fmt_ms(h.timestamp_ms, ts);
    }
    if (o->json) {
        printf("{\"city\":\"%s\",\"log_size\":%" PRIu64 ",\"log_root\":\"%s\",\"heads\":%zu,"
               "\"head\":",
               gw->cfg.city, n, rhex, bg_audit_head_count(log));
        if (!have)
            printf("null");
        else {
            printf("{\"size\":%" PRIu64 ",\"root\":\"%s\",\"timestamp_ms\":%" PRId64
                   ",\"signature\":\"%s\"",
                   h.size, hhex, h.timestamp_ms, ok ? "ok" : "bad");
            if (!ok) {
                printf(",\"error\":");
                bg_json_cstr(stdout, why);
            }
            printf("}");
        }
        printf("}\n");
    } else {
        printf("audit log of %s: %" PRIu64 " leaves, root %s\n", gw->cfg.city, n, rhex);
        if (!have)
            printf("no signed tree head yet\n");
        else
            printf("latest signed head (%zu stored): size %" PRIu64 "  %s\n  root %s\n"
                   "  signature: %s\n",
                   bg_audit_head_count(log), h.size, ts, hhex, ok ? "ok (city certificate)" : why);
    }
    return (!have || ok) ? BG_EXIT_OK : BG_EXIT_FAIL;
}

/* --- proof --- */

static void
print_leaf(uint64_t idx, const bg_audit_event *ev, const bg_audit_hash lh, bool json)
{
    char ts[BG_PKI_TIME_LEN], rid[2 * BG_AUDIT_REQUEST_ID_LEN + 1], lhex[65], rq[65], an[65];
    char ref[2 * BG_AUDIT_REF_MAX + 1];
    fmt_ms(ev->time_ms, ts);
    sodium_bin2hex(rid, sizeof rid, ev->request_id, BG_AUDIT_REQUEST_ID_LEN);
    bg_audit_hash_hex(lh, lhex);
    sodium_bin2hex(rq, sizeof rq, ev->request_digest,
                   ev->has_request_digest ? BG_AUDIT_HASH_LEN : 0);
    sodium_bin2hex(an, sizeof an, ev->answer_digest, ev->has_answer_digest ? BG_AUDIT_HASH_LEN : 0);
    sodium_bin2hex(ref, sizeof ref, ev->authorisation_ref, ev->authorisation_ref_len);
    if (json) {
        printf("\"leaf\":{\"index\":%" PRIu64
               ",\"hash\":\"%s\",\"kind\":\"%s\",\"time_ms\":%" PRId64
               ",\"city\":\"%s\",\"peer\":\"%s\",\"direction\":\"%s\",\"request_id\":\"%s\","
               "\"request_digest\":\"%s\",\"answer_digest\":\"%s\",\"purpose\":",
               idx, lhex, bg_audit_kind_name(ev->kind), ev->time_ms, ev->city, ev->peer,
               ev->direction == BG_AUDIT_OUTBOUND ? "outbound" : "inbound", rid, rq, an);
        bg_json_cstr(stdout, ev->purpose);
        printf(",\"authorisation_ref\":\"%s\",\"list\":", ref);
        bg_json_cstr(stdout, ev->list);
        printf(",\"epoch\":%" PRIu64 ",\"items_asked\":%u,\"items_answered\":%u,\"outcome\":%u,"
               "\"reason\":",
               ev->epoch, ev->items_asked, ev->items_answered, ev->outcome);
        bg_json_cstr(stdout, ev->reason);
        printf("}");
        return;
    }
    printf("leaf %" PRIu64 ": %s  %s  %s %s %s\n", idx, bg_audit_kind_name(ev->kind), ts, ev->city,
           ev->direction == BG_AUDIT_OUTBOUND ? "->" : "<-", ev->peer);
    printf("  request %s  purpose %s  list %s  epoch %" PRIu64 "\n", rid,
           ev->purpose[0] ? ev->purpose : "-", ev->list[0] ? ev->list : "-", ev->epoch);
    printf("  items asked %u, answered %u  outcome %u%s%s\n", ev->items_asked, ev->items_answered,
           ev->outcome, ev->reason[0] ? "  " : "", ev->reason);
    printf("  request digest %s\n  answer digest  %s\n", rq[0] ? rq : "-", an[0] ? an : "-");
    if (ev->authorisation_ref_len)
        printf("  authorisation  %s\n", ref);
    printf("  leaf hash %s\n", lhex);
}

/* The size and root a proof is checked against: --size and the log's own root, or
 * the latest signed head (which must verify); `against` says which. */
static int
proof_root(const char *cmd, const struct audit_opts *o, const struct gw *g, bg_audit_log *log,
           uint64_t *size, bg_audit_hash root, char against[160])
{
    bg_err err = {0};
    if (o->has_size) {
        *size = o->size;
        if (bg_audit_root(log, *size, root, &err) != BG_OK)
            return bg_cli_fail(cmd, "%s", err.msg);
        snprintf(against, 160, "the log's own root at size %" PRIu64 " (not signed)", *size);
        return BG_EXIT_OK;
    }
    bg_audit_head h;
    char why[BG_ERR_MSG_MAX];
    if (bg_audit_head_latest(log, &h, &err) != BG_OK)
        return bg_cli_fail(cmd, "%s; give --size to prove against the log's own root", err.msg);
    if (!head_sig_ok(g, &h, why, sizeof why)) {
        bg_cli_fail(cmd, "the latest signed head does not verify: %s", why);
        return BG_EXIT_FAIL;
    }
    *size = h.size;
    memcpy(root, h.root, BG_AUDIT_HASH_LEN);
    snprintf(against, 160, "the signed head of size %" PRIu64, *size);
    return BG_EXIT_OK;
}

static int
audit_proof(const char *cmd, const struct audit_opts *o, struct gw *g, bg_audit_log *log)
{
    bg_err err = {0};
    bg_audit_hash root, lh, proof[BG_AUDIT_PROOF_MAX];
    uint64_t size = 0;
    char against[160];
    int ex = proof_root(cmd, o, g, log, &size, root, against);
    if (ex != BG_EXIT_OK)
        return ex;
    if (o->leaf >= size)
        return bg_cli_fail(cmd, "leaf %" PRIu64 " is not in a tree of size %" PRIu64 "%s", o->leaf,
                           size, o->has_size ? "" : " (the latest signed head); give --size");
    bg_audit_event ev;
    size_t plen;
    if (bg_audit_leaf_read(log, o->leaf, NULL, NULL, &ev, &err) != BG_OK ||
        bg_audit_leaf_hash(log, o->leaf, lh, &err) != BG_OK ||
        bg_audit_inclusion_proof(log, o->leaf, size, proof, &plen, &err) != BG_OK) {
        bg_cli_fail(cmd, "%s", err.msg);
        return err.code == BG_EPROTO ? BG_EXIT_FAIL : BG_EXIT_ERROR;
    }
    bg_err verr = {0};
    bool ok = bg_audit_verify_inclusion(o->leaf, size, lh, proof, plen, root, &verr) == BG_OK;
    char rhex[65];
    bg_audit_hash_hex(root, rhex);
    if (o->json) {
        printf("{");
        print_leaf(o->leaf, &ev, lh, true);
        printf(",\"size\":%" PRIu64 ",\"root\":\"%s\",\"signed\":%s,\"proof\":", size, rhex,
               o->has_size ? "false" : "true");
        print_proof(proof, plen, true);
        printf(",\"verified\":%s}\n", ok ? "true" : "false");
    } else {
        print_leaf(o->leaf, &ev, lh, false);
        printf("inclusion proof in size %" PRIu64 " (%zu hashes):\n", size, plen);
        print_proof(proof, plen, false);
        printf("root %s\n", rhex);
        if (ok)
            printf("verified against %s\n", against);
        else
            printf("DOES NOT VERIFY against %s: %s\n", against, verr.msg);
    }
    return ok ? BG_EXIT_OK : BG_EXIT_FAIL;
}

/* --- consistency --- */

/* The root for size: a stored signed head's (if one has that size and
 * verifies), else the log's own. */
static int
root_for(const struct gw *g, bg_audit_log *log, uint64_t size, bg_audit_hash root, bool *is_signed,
         bg_err *err)
{
    *is_signed = false;
    for (size_t i = bg_audit_head_count(log); i-- > 0;) {
        bg_audit_head h;
        char why[BG_ERR_MSG_MAX];
        if (bg_audit_head_get(log, i, &h, err) == BG_OK && h.size == size &&
            head_sig_ok(g, &h, why, sizeof why)) {
            memcpy(root, h.root, BG_AUDIT_HASH_LEN);
            *is_signed = true;
            return BG_OK;
        }
    }
    return bg_audit_root(log, size, root, err);
}

static int
audit_consistency(const char *cmd, const struct audit_opts *o, struct gw *g, bg_audit_log *log)
{
    bg_err err = {0};
    uint64_t to = o->to;
    if (!o->has_to) {
        bg_audit_head h;
        to = bg_audit_head_latest(log, &h, &err) == BG_OK ? h.size : bg_audit_size(log);
    }
    bg_audit_hash ra, rb, proof[BG_AUDIT_PROOF_MAX];
    bool sa, sb;
    size_t plen;
    if (o->from > to)
        return bg_cli_fail(
            cmd, "--from %" PRIu64 " is beyond --to %" PRIu64 ": a log never shrinks", o->from, to);
    if (root_for(g, log, o->from, ra, &sa, &err) != BG_OK ||
        root_for(g, log, to, rb, &sb, &err) != BG_OK ||
        bg_audit_consistency_proof(log, o->from, to, proof, &plen, &err) != BG_OK)
        return bg_cli_fail(cmd, "%s", err.msg);
    bg_err verr = {0};
    bool ok = bg_audit_verify_consistency(o->from, to, ra, rb, proof, plen, &verr) == BG_OK;
    char ha[65], hb[65];
    bg_audit_hash_hex(ra, ha);
    bg_audit_hash_hex(rb, hb);
    if (o->json) {
        printf("{\"from\":%" PRIu64 ",\"from_root\":\"%s\",\"from_signed\":%s,\"to\":%" PRIu64
               ",\"to_root\":\"%s\",\"to_signed\":%s,\"proof\":",
               o->from, ha, sa ? "true" : "false", to, hb, sb ? "true" : "false");
        print_proof(proof, plen, true);
        printf(",\"verified\":%s}\n", ok ? "true" : "false");
    } else {
        printf("from size %" PRIu64 "  root %s  (%s)\n", o->from, ha,
               sa ? "signed head" : "log's own root");
        printf("to   size %" PRIu64 "  root %s  (%s)\n", to, hb,
               sb ? "signed head" : "log's own root");
        printf("consistency proof (%zu hashes):\n", plen);
        print_proof(proof, plen, false);
        if (ok)
            printf("verified: size %" PRIu64 " extends size %" PRIu64 "\n", to, o->from);
        else
            printf("DOES NOT VERIFY: %s\n", verr.msg);
    }
    return ok ? BG_EXIT_OK : BG_EXIT_FAIL;
}

/* --- verify --- */

#define MAX_REPORTED 20

/* Every leaf reads back (hash recomputed) and was logged by this city. */
static uint64_t
verify_leaves(const struct audit_opts *o, const struct gw *g, bg_audit_log *log)
{
    uint64_t n = bg_audit_size(log), problems = 0;
    bg_err err = {0};
    for (uint64_t i = 0; i < n; i++) {
        bg_audit_event ev;
        if (bg_audit_leaf_read(log, i, NULL, NULL, &ev, &err) != BG_OK ||
            strcmp(ev.city, g->cfg.city) != 0) {
            if (++problems <= MAX_REPORTED && !o->json)
                printf("PROBLEM: leaf %" PRIu64 ": %s\n", i,
                       err.code ? err.msg : "logged by another city");
            bg_err_clear(&err);
        }
    }
    return problems;
}

/* What is wrong with head h (what[0] == '\0' if nothing), given the heads before it. */
static void
head_problem(const struct gw *g, bg_audit_log *log, const bg_audit_head *h, uint64_t prev_size,
             int64_t prev_ts, char what[512])
{
    uint64_t n = bg_audit_size(log);
    char why[BG_ERR_MSG_MAX];
    bg_err err = {0};
    what[0] = '\0';
    if (!head_sig_ok(g, h, why, sizeof why))
        snprintf(what, 512, "signature: %.480s", why);
    else if (h->size > n)
        snprintf(what, 512, "covers %" PRIu64 " leaves, the log has %" PRIu64, h->size, n);
    else if (h->size < prev_size)
        snprintf(what, 512, "size %" PRIu64 " is smaller than the head before it (%" PRIu64 ")",
                 h->size, prev_size);
    else if (h->timestamp_ms < prev_ts)
        snprintf(what, 512, "timestamp earlier than the head before it");
    else {
        bg_audit_hash r;
        bg_audit_root(log, h->size, r, &err);
        if (memcmp(r, h->root, BG_AUDIT_HASH_LEN) != 0) {
            char a[65], b[65];
            bg_audit_hash_hex(h->root, a);
            bg_audit_hash_hex(r, b);
            snprintf(what, 512,
                     "signed root %.16s... differs from the leaves' root %.16s... at size "
                     "%" PRIu64,
                     a, b, h->size);
        }
    }
}

/* Every stored head: signature, size, order, root. */
static uint64_t
verify_heads(const struct audit_opts *o, const struct gw *g, bg_audit_log *log, uint64_t problems)
{
    uint64_t prev_size = 0;
    int64_t prev_ts = INT64_MIN;
    bg_err err = {0};
    size_t nh = bg_audit_head_count(log);
    for (size_t i = 0; i < nh; i++) {
        bg_audit_head h;
        char ts[BG_PKI_TIME_LEN], what[512];
        bg_audit_head_get(log, i, &h, &err);
        fmt_ms(h.timestamp_ms, ts);
        head_problem(g, log, &h, prev_size, prev_ts, what);
        if (what[0]) {
            if (++problems <= MAX_REPORTED && !o->json)
                printf("PROBLEM: head %zu (size %" PRIu64 ", %s): %s\n", i, h.size, ts, what);
        } else if (!o->json) {
            printf("head %zu: size %" PRIu64 ", %s: ok\n", i, h.size, ts);
        }
        if (h.size > prev_size)
            prev_size = h.size;
        if (h.timestamp_ms > prev_ts)
            prev_ts = h.timestamp_ms;
    }
    return problems;
}

static int
audit_verify(const struct audit_opts *o)
{
    const char *cmd = "audit verify";
    struct gw g;
    bg_audit_log *log = NULL;
    bg_audit_open_report rep;
    int ex = gw_load(cmd, o->dir, &g);
    if (ex != BG_EXIT_OK)
        return ex;
    if (g.cert == NULL)
        return bg_cli_fail(cmd, "cannot check signatures: %s", g.cert_err);
    /* Opening reads every record, checks each record's hash and rebuilds the
     * whole tree from the leaf hashes it recomputed. */
    if ((ex = log_open(cmd, &g, &log, &rep)) != BG_EXIT_OK) {
        gw_free(&g);
        return ex;
    }
    uint64_t n = bg_audit_size(log);
    bg_err err = {0};
    if (!o->json)
        printf("audit log of %s: %" PRIu64 " leaves, %" PRIu64 " signed heads\n", g.cfg.city, n,
               rep.heads);
    if (rep.pending_bytes && !o->json)
        printf("note: %" PRIu64 " bytes at the end are not complete records (being written?)\n",
               rep.pending_bytes);
    uint64_t problems = verify_heads(o, &g, log, verify_leaves(o, &g, log));
    bg_audit_hash root;
    char rhex[65];
    bg_audit_root(log, n, root, &err);
    bg_audit_hash_hex(root, rhex);
    if (o->json) {
        printf("{\"city\":\"%s\",\"leaves\":%" PRIu64 ",\"heads\":%zu,\"root\":\"%s\","
               "\"pending_bytes\":%" PRIu64 ",\"problems\":%" PRIu64 ",\"ok\":%s}\n",
               g.cfg.city, n, bg_audit_head_count(log), rhex, rep.pending_bytes, problems,
               problems ? "false" : "true");
    } else if (problems) {
        if (problems > MAX_REPORTED)
            printf("... and %" PRIu64 " more\n", problems - MAX_REPORTED);
        printf("FAILED: %" PRIu64 " problem%s\n", problems, problems == 1 ? "" : "s");
    } else {
        printf("ok: every leaf hash recomputed, root %s, every signed head verified\n", rhex);
    }
    bg_audit_close(log);
    gw_free(&g);
    return problems ? BG_EXIT_FAIL : BG_EXIT_OK;
}

/* --- witness --- */

static void
witness_peers(const struct audit_opts *o, const struct gw *g, bg_audit_witness *w)
{
    char hex[65], ts[BG_PKI_TIME_LEN], ts2[BG_PKI_TIME_LEN];
    bg_err err = {0};
    size_t np = bg_audit_witness_peer_count(w);
    if (o->json)
        printf("{\"city\":\"%s\",\"peers\":[", g->cfg.city);
    else
        printf("peer logs %s witnesses (%zu):\n", g->cfg.city, np);
    for (size_t i = 0; i < np; i++) {
        bg_audit_peer_info pi;
        bg_audit_witness_peer(w, i, &pi, &err);
        bg_audit_hash_hex(pi.last.root, hex);
        fmt_ms(pi.last.timestamp_ms, ts);
        fmt_ms(pi.last_cosigned_ms, ts2);
        if (o->json)
            printf("%s{\"peer\":\"%s\",\"size\":%" PRIu64
                   ",\"root\":\"%s\",\"timestamp_ms\":%" PRId64 ",\"cosigned\":%" PRIu64
                   ",\"last_cosigned_ms\":%" PRId64 ",\"conflicts\":%" PRIu64 "}",
                   i ? "," : "", pi.peer, pi.last.size, hex, pi.last.timestamp_ms, pi.cosigned,
                   pi.last_cosigned_ms, pi.conflicts);
        else
            printf("  %s  last cosigned head: size %" PRIu64 " (%s) root %.16s...\n"
                   "          %" PRIu64 " head%s cosigned, last at %s; %" PRIu64 " conflict%s\n",
                   pi.peer, pi.last.size, ts, hex, pi.cosigned, pi.cosigned == 1 ? "" : "s", ts2,
                   pi.conflicts, pi.conflicts == 1 ? "" : "s");
    }
}

static void
witness_received(const struct audit_opts *o, const struct gw *g, bg_audit_witness *w)
{
    char hex[65], ts[BG_PKI_TIME_LEN];
    bg_err err = {0};
    size_t nr = bg_audit_witness_received_count(w);
    if (o->json)
        printf("],\"received\":[");
    else
        printf("cosignatures of %s's heads (%zu):\n", g->cfg.city, nr);
    for (size_t i = 0; i < nr; i++) {
        bg_audit_cosig c;
        bg_audit_witness_received(w, i, &c, &err);
        bg_audit_hash_hex(c.head.root, hex);
        fmt_ms(c.cosigned_at_ms, ts);
        if (o->json)
            printf("%s{\"witness\":\"%s\",\"size\":%" PRIu64
                   ",\"root\":\"%s\",\"head_timestamp_ms\":%" PRId64 ",\"cosigned_at_ms\":%" PRId64
                   "}",
                   i ? "," : "", c.witness, c.head.size, hex, c.head.timestamp_ms,
                   c.cosigned_at_ms);
        else
            printf("  size %" PRIu64 " root %.16s...  cosigned by %s at %s\n", c.head.size, hex,
                   c.witness, ts);
    }
}

static void
witness_conflicts(const struct audit_opts *o, bg_audit_witness *w)
{
    char hex[65];
    bg_err err = {0};
    size_t nc = bg_audit_witness_conflict_count(w);
    if (o->json)
        printf("],\"conflicts\":[");
    else if (nc)
        printf("CONFLICTS seen (%zu): signed heads that contradict ones we cosigned\n", nc);
    for (size_t i = 0; i < nc; i++) {
        bg_audit_head ref, prev;
        char reason[BG_AUDIT_REASON_MAX + 1], ph[65];
        bg_audit_witness_conflict(w, i, &ref, &prev, reason, &err);
        bg_audit_hash_hex(ref.root, hex);
        bg_audit_hash_hex(prev.root, ph);
        if (o->json) {
            printf("%s{\"peer\":\"%s\",\"size\":%" PRIu64
                   ",\"root\":\"%s\",\"cosigned_size\":%" PRIu64
                   ",\"cosigned_root\":\"%s\",\"reason\":",
                   i ? "," : "", ref.origin, ref.size, hex, prev.size, ph);
            bg_json_cstr(stdout, reason);
            printf("}");
        } else {
            printf("  %s: %s: size %" PRIu64 " root %.16s... vs cosigned size %" PRIu64
                   " root %.16s...\n",
                   ref.origin, reason, ref.size, hex, prev.size, ph);
        }
    }
    if (o->json)
        printf("]}\n");
}

static int
audit_witness(const struct audit_opts *o)
{
    const char *cmd = "audit witness";
    struct gw g;
    int ex = gw_load(cmd, o->dir, &g);
    if (ex != BG_EXIT_OK)
        return ex;
    gw_free(&g); /* cosignatures were verified on receipt, with the peers' certificates */
    bg_audit_witness *w = NULL;
    bg_err err = {0};
    int rc = bg_audit_witness_open(&w, g.audit_dir, g.cfg.city, BG_AUDIT_READ_ONLY, NULL, &err);
    if (rc == BG_ENOTFOUND) {
        if (o->json)
            printf("{\"city\":\"%s\",\"peers\":[],\"received\":[],\"conflicts\":[]}\n", g.cfg.city);
        else
            printf("no witness store yet in %s\n", g.audit_dir);
        return BG_EXIT_OK;
    }
    if (rc != BG_OK) {
        bg_cli_fail(cmd, "%s", err.msg);
        return rc == BG_EPROTO ? BG_EXIT_FAIL : BG_EXIT_ERROR;
    }
    witness_peers(o, &g, w);
    witness_received(o, &g, w);
    witness_conflicts(o, w);
    bg_audit_witness_close(w);
    return BG_EXIT_OK;
}

/* The options after the subcommand. *done when there is nothing more to do (help
 * shown, or an error: the exit status is returned). */
static int
parse_opts(int argc, char **argv, struct audit_opts *o, bool *done)
{
    *done = true;
    static const struct option opts[] = {
        {"dir", required_argument, NULL, 'd'},  {"leaf", required_argument, NULL, 'l'},
        {"size", required_argument, NULL, 's'}, {"from", required_argument, NULL, 'f'},
        {"to", required_argument, NULL, 't'},   {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},       {NULL, 0, NULL, 0},
    };
    const char *cmd = "audit";
    memset(o, 0, sizeof *o);
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        uint64_t *num = ch == 'l' ? &o->leaf : ch == 's' ? &o->size : ch == 'f' ? &o->from : &o->to;
        bool *has = ch == 'l'   ? &o->has_leaf
                    : ch == 's' ? &o->has_size
                    : ch == 'f' ? &o->has_from
                                : &o->has_to;
        const char *name = ch == 'l'   ? "--leaf"
                           : ch == 's' ? "--size"
                           : ch == 'f' ? "--from"
                                       : "--to";
        switch (ch) {
        case 'd':
            o->dir = optarg;
            break;
        case 'l':
        case 's':
        case 'f':
        case 't':
            if (!bg_cli_parse_u64(cmd, name, optarg, num))
                return BG_EXIT_ERROR;
            *has = true;
            break;
        case 'j':
            o->json = true;
            break;
        case 'h':
            audit_usage(stdout);
            return BG_EXIT_OK;
        default:
            return bg_cli_bad_option(cmd, ch, argv, opts);
        }
    }
    if (optind != argc)
        return bg_cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    if (o->dir == NULL)
        return bg_cli_usage_error(cmd, "--dir GW is required");
    *done = false;
    return BG_EXIT_OK;
}

int
bg_cmd_audit(int argc, char **argv)
{
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        audit_usage(stdout);
        return BG_EXIT_OK;
    }
    static const char *const names[] = {"head",    "proof", "consistency", "verify",
                                        "witness", "find",  "export",      "verify-bundle"};
    if (argc < 2 || argv[1][0] == '-')
        return bg_cli_usage_error("audit", "which one? head, proof, consistency, verify, "
                                           "witness, find, export or verify-bundle");
    const char *sub = argv[1], *cmd = "audit";
    if (strcmp(sub, "find") == 0)
        return bg_cmd_audit_find(argc - 1, argv + 1);
    if (strcmp(sub, "export") == 0)
        return bg_cmd_audit_export(argc - 1, argv + 1);
    if (strcmp(sub, "verify-bundle") == 0)
        return bg_cmd_audit_verify_bundle(argc - 1, argv + 1);
    size_t k = 0, n = sizeof names / sizeof names[0];
    while (k < n && strcmp(sub, names[k]) != 0)
        k++;
    if (k == n)
        return bg_cli_unknown(cmd, sub, names, n);
    struct audit_opts o;
    bool done = false;
    int ex = parse_opts(argc - 1, argv + 1, &o, &done);
    if (done)
        return ex;
    bool proofish = strcmp(sub, "proof") == 0, cons = strcmp(sub, "consistency") == 0;
    if ((o.has_leaf || o.has_size) && !proofish)
        return bg_cli_fail(cmd, "--leaf and --size apply to 'audit proof' only");
    if ((o.has_from || o.has_to) && !cons)
        return bg_cli_fail(cmd, "--from and --to apply to 'audit consistency' only");
    if (strcmp(sub, "head") == 0)
        return with_log("audit head", &o, audit_head);
    if (proofish)
        return o.has_leaf ? with_log("audit proof", &o, audit_proof)
                          : bg_cli_usage_error("audit proof", "--leaf N is required");
    if (cons)
        return o.has_from ? with_log("audit consistency", &o, audit_consistency)
                          : bg_cli_usage_error("audit consistency", "--from A is required");
    if (strcmp(sub, "verify") == 0)
        return audit_verify(&o);
    if (strcmp(sub, "witness") == 0)
        return audit_witness(&o);
    return bg_cli_unknown(cmd, sub, names, n);
}
