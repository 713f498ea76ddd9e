/*
 * demo_evidence.c - act 8: Shenzhen's evidence log proves the leaf recording its
 * answer to Guangzhou against the root Guangzhou cosigned as a witness, and
 * every city's log verifies.
 */
#include "gateway/demo/demo_int.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "certs/pki.h"
#include "common/num.h"
#include "gateway/audit/audit.h"
#include "gateway/cmdline/cmdline.h"

/* 64 hex characters at s (the text may go on after them). */
static bool
hash_from_hex(const char *s, bg_audit_hash out)
{
    size_t n = 0;
    return strnlen(s, 2 * BG_AUDIT_HASH_LEN) == 2 * BG_AUDIT_HASH_LEN &&
           sodium_hex2bin(out, BG_AUDIT_HASH_LEN, s, 2 * BG_AUDIT_HASH_LEN, NULL, &n, NULL) == 0 &&
           n == BG_AUDIT_HASH_LEN;
}

/* The decimal number at *p, which is moved past it. */
static bool
number_at(const char **p, uint64_t *out)
{
    char s[24];
    size_t n = strspn(*p, "0123456789");
    if (n == 0 || n >= sizeof s)
        return false;
    memcpy(s, *p, n);
    s[n] = '\0';
    *p += n;
    return bg_num_u64(s, 0, UINT64_MAX, out, NULL) == BG_OK;
}

/* From `audit witness --json`: the last head of peer this city cosigned (its "peers"
 * array; "received" and "conflicts" come after it and are cut off here). */
static bool
cosigned_head(char *json, const char *peer, uint64_t *size, bg_audit_hash root)
{
    char *end = strstr(json, "],\"received\":"), key[64];
    if (end == NULL)
        return false;
    *end = '\0';
    snprintf(key, sizeof key, "{\"peer\":\"%s\",\"size\":", peer);
    const char *p = strstr(json, key);
    if (p == NULL)
        return false;
    p += strlen(key);
    uint64_t n = 0;
    if (!number_at(&p, &n) || strncmp(p, ",\"root\":\"", 9) != 0 || !hash_from_hex(p + 9, root))
        return false;
    *size = n;
    return true;
}

static const char *
last_of(const char *s, const char *needle)
{
    const char *hit = NULL;
    for (const char *p = s; (p = strstr(p, needle)) != NULL; p++)
        hit = p;
    return hit;
}

/* What `audit proof --json` says: the leaf's hash, the root, the path, its own verdict.
 * The leaf object comes first and may hold free text (its reason), so the proof's own
 * fields are taken at their last occurrence. */
typedef struct proof_json {
    bg_audit_hash leaf, root, path[BG_AUDIT_PROOF_MAX];
    size_t n;
    bool verified;
} proof_json;

static bool
parse_proof(const char *json, proof_json *p)
{
    memset(p, 0, sizeof *p);
    const char *h = strstr(json, "\"leaf\":{\"index\":");
    h = h != NULL ? strstr(h, ",\"hash\":\"") : NULL;
    const char *r = last_of(json, ",\"root\":\""), *q = last_of(json, ",\"proof\":["),
               *v = last_of(json, ",\"verified\":");
    if (h == NULL || r == NULL || q == NULL || v == NULL || !hash_from_hex(h + 9, p->leaf) ||
        !hash_from_hex(r + 9, p->root))
        return false;
    p->verified = strncmp(v + 12, "true", 4) == 0;
    for (q += 10; *q == '"'; q += 66) {
        if (p->n == BG_AUDIT_PROOF_MAX || !hash_from_hex(q + 1, p->path[p->n]) || q[65] != '"')
            return false;
        p->n++;
        if (q[66] == ',')
            q++;
    }
    return *q == ']';
}

/* The newest leaf in which Shenzhen recorded answering Guangzhou: the evidence of
 * the queries above (the log holds no enterprise identifiers, only who, what, when). */
static int
find_answer_leaf(demo *d, uint64_t *leaf, bg_audit_event *ev)
{
    char dir[DEMO_PATH];
    if (!demo_path(dir, sizeof dir, "%s/%s/data/audit", d->dir, demo_cities[SZ].code))
        return BG_EXIT_ERROR;
    bg_audit_log *log = NULL;
    bg_err err = {0};
    if (bg_audit_open(&log, dir, demo_cities[SZ].code, BG_AUDIT_READ_ONLY, NULL, &err) != BG_OK)
        return bg_cli_fail("demo", "Shenzhen's evidence log: %s", err.msg);
    int rc = BG_EXIT_FAIL;
    for (uint64_t i = bg_audit_size(log); i-- > 0;) {
        if (bg_audit_leaf_read(log, i, NULL, NULL, ev, &err) != BG_OK) {
            rc = bg_cli_fail("demo", "Shenzhen's evidence log, leaf %llu: %s",
                             (unsigned long long)i, err.msg);
            break;
        }
        if (ev->kind == BG_AUDIT_REQUEST_ANSWERED && strcmp(ev->peer, demo_cities[GZ].code) == 0) {
            *leaf = i;
            rc = BG_EXIT_OK;
            break;
        }
    }
    bg_audit_close(log);
    return rc;
}

/* Polls Guangzhou's witness store until it holds a cosigned head of Shenzhen's log
 * covering leaf. */
static bool
wait_cosigned(demo *d, uint64_t leaf, uint64_t *size, bg_audit_hash root)
{
    char gw[DEMO_PATH], out[DEMO_PATH];
    if (!demo_path(gw, sizeof gw, "%s/%s", d->dir, demo_cities[GZ].code) ||
        !demo_path(out, sizeof out, "%s/witness.json", d->dir))
        return false;
    const char *const args[] = {"audit", "witness", "--dir", gw, "--json", NULL};
    printf("  $ baygate audit witness --dir %s --json    (until it covers leaf %llu)\n", gw,
           (unsigned long long)leaf);
    fflush(stdout);
    time_t deadline = time(NULL) + 60;
    struct timespec pause = {.tv_nsec = 250 * 1000 * 1000};
    for (;;) {
        char *json = demo_capture_silent(d, args, out) == BG_EXIT_OK ? demo_slurp(out) : NULL;
        bool got = json != NULL && cosigned_head(json, demo_cities[SZ].code, size, root);
        free(json);
        if (got && *size > leaf)
            return true;
        if (time(NULL) > deadline)
            return false;
        nanosleep(&pause, NULL);
    }
}

/* Shenzhen's proof of leaf at size, checked here against the root Guangzhou cosigned
 * rather than trusting Shenzhen's own "verified". */
static bool
prove_leaf(demo *d, const char *szgw, uint64_t leaf, uint64_t size, const bg_audit_hash gz_root,
           const char *gz_hex)
{
    char pout[DEMO_PATH], sz_hex[65], leaf_s[24], size_s[24];
    if (!demo_path(pout, sizeof pout, "%s/proof.json", d->dir))
        return false;
    printf("\n   Shenzhen proves leaf %llu is in its log at exactly that size:\n",
           (unsigned long long)leaf);
    snprintf(leaf_s, sizeof leaf_s, "%llu", (unsigned long long)leaf);
    snprintf(size_s, sizeof size_s, "%llu", (unsigned long long)size);
    const char *const proof[] = {"audit", "proof",  "--dir", szgw,     "--leaf",
                                 leaf_s,  "--size", size_s,  "--json", NULL};
    int prc = demo_capture(d, proof, pout);
    char *json = demo_slurp(pout);
    proof_json pj;
    bool parsed = json != NULL && parse_proof(json, &pj);
    free(json);
    bool same = parsed && memcmp(pj.root, gz_root, BG_AUDIT_HASH_LEN) == 0;
    bg_err verr = {0};
    bool path_ok = parsed && bg_audit_verify_inclusion(leaf, size, pj.leaf, pj.path, pj.n, gz_root,
                                                       &verr) == BG_OK;
    bool ok = demo_tally(d, prc == BG_EXIT_OK && parsed && pj.verified && same && path_ok);
    if (parsed) {
        bg_audit_hash_hex(pj.root, sz_hex);
        printf("   Shenzhen's proof: %zu hashes, root %s\n"
               "   Guangzhou cosigned:          root %s  (%s)\n"
               "   leaf %llu hashed up the path %s Guangzhou's root: %s\n",
               pj.n, sz_hex, gz_hex, same ? "equal" : "DIFFERENT", (unsigned long long)leaf,
               path_ok ? "gives" : "does NOT give", ok ? "verified across cities   ok" : "WRONG");
        if (!path_ok)
            printf("   %s\n", verr.msg);
    } else {
        printf("   no proof could be read from %s: WRONG\n", pout);
    }
    return ok;
}

/* `audit verify` in every city; how many failed, or -1 on an operational error. */
static int
verify_logs(demo *d)
{
    char vout[DEMO_PATH];
    if (!demo_path(vout, sizeof vout, "%s/audit-verify.txt", d->dir))
        return -1;
    printf("\n   Each city re-reads its whole log: every leaf hash recomputed, every signed\n"
           "   head's signature and root checked:\n");
    int wrong = 0;
    for (size_t i = 0; i < NDEMO; i++) {
        char gw[DEMO_PATH], line[1024], first[512];
        if (!demo_path(gw, sizeof gw, "%s/%s", d->dir, demo_cities[i].code))
            return -1;
        const char *const args[] = {"audit", "verify", "--dir", gw, NULL};
        int vrc = demo_capture(d, args, vout);
        demo_first_line(vout, first, sizeof first);
        demo_result_line(vout, "ok:", line, sizeof line);
        if (strncmp(line, "ok:", 3) != 0)
            demo_result_line(vout, "FAILED", line, sizeof line);
        bool good = demo_tally(d, vrc == BG_EXIT_OK && strncmp(line, "ok:", 3) == 0);
        const char *counts = strstr(first, ": ");
        printf("     %-10s %s\n                %s\n", demo_cities[i].name,
               counts ? counts + 2 : first, line);
        wrong += !good;
    }
    return wrong;
}

int
demo_evidence_act(demo *d)
{
    char szgw[DEMO_PATH];
    if (!demo_path(szgw, sizeof szgw, "%s/%s", d->dir, demo_cities[SZ].code))
        return BG_EXIT_ERROR;
    printf("\n8. Evidence. Every gateway appends each request and answer to an append-only\n"
           "   Merkle log (who asked whom, for what, when; never an enterprise), signs its\n"
           "   tree head (here every second) and, every two seconds, fetches its peers'\n"
           "   heads, checks that each extends what it saw before, and cosigns it.\n"
           "   Shenzhen's latest signed head:\n");
    const char *const head[] = {"audit", "head", "--dir", szgw, NULL};
    int wrong = !demo_tally(d, demo_run(d, DEMO_SHOW, head) == BG_EXIT_OK);

    uint64_t leaf = 0, size = 0;
    bg_audit_event ev;
    int rc = find_answer_leaf(d, &leaf, &ev);
    if (rc == BG_EXIT_ERROR)
        return rc;
    if (!demo_tally(d, rc == BG_EXIT_OK)) {
        printf("   Shenzhen's log records no answer to Guangzhou: WRONG\n");
        return BG_EXIT_FAIL;
    }
    char when[BG_PKI_TIME_LEN];
    bg_pki_time_format((time_t)(ev.time_ms / 1000), when);
    printf("\n   Leaf %llu of Shenzhen's log records that at %s it answered\n"
           "   Guangzhou (purpose %s, list %s, %u item%s). Guangzhou, as a witness,\n"
           "   must have cosigned a head covering it:\n",
           (unsigned long long)leaf, when, ev.purpose, ev.list[0] ? ev.list : "-", ev.items_asked,
           ev.items_asked == 1 ? "" : "s");
    bg_audit_hash gz_root;
    if (!demo_tally(d, wait_cosigned(d, leaf, &size, gz_root))) {
        printf("   Guangzhou cosigned no head of Shenzhen's covering leaf %llu within 60 s: "
               "WRONG\n",
               (unsigned long long)leaf);
        return BG_EXIT_FAIL;
    }
    char gz_hex[65];
    bg_audit_hash_hex(gz_root, gz_hex);
    printf("   Guangzhou cosigned Shenzhen's head of size %llu, root %s\n",
           (unsigned long long)size, gz_hex);

    wrong += !prove_leaf(d, szgw, leaf, size, gz_root, gz_hex);
    int bad = verify_logs(d);
    if (bad < 0)
        return BG_EXIT_ERROR;
    wrong += bad;
    return wrong == 0 ? BG_EXIT_OK : BG_EXIT_FAIL;
}
