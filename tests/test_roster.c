/*
 * test_roster.c - the signed federation roster: INI source, validation,
 * signing, opening hostile bytes, permission and grade lookups, the CLI.
 *
 * main() makes one scratch directory under BG_TEST_TMPDIR with a real CA
 * (bg_pki_ca_init), a rogue CA with the same name (so the same DN), and real
 * city certificates for Guangzhou, Shenzhen and Foshan issued by the CA, as
 * 'baygate ca issue' would. Every test reads those; none changes them.
 */
#define _GNU_SOURCE /* nftw's FTW_DEPTH/FTW_PHYS */
#include <check.h>
#include <dirent.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>

#include "certs/pki.h"
#include "certs/sig.h"
#include "peers/roster.h"
#include "peers/roster_ini.h"
#include "proto/roster.pb-c.h"

static char scratch[PATH_MAX];
static EVP_PKEY *ca_key, *rogue_key;
static X509 *ca_cert, *rogue_cert;
static char fs_hex[BG_SIG_FP_HEX_LEN + 1], gz_hex[BG_SIG_FP_HEX_LEN + 1];
static uint8_t gz_fp[BG_SIG_FP_LEN], gz_next_fp[BG_SIG_FP_LEN];

/* The good roster source; @FS@ and @GZ@ become Foshan's and Guangzhou's
 * certificate fingerprints. Shenzhen's grade_map goes on over an indented
 * continuation line. */
static const char good_template[] = "; Greater Bay Area federation roster (test)\n"
                                    "[federation]\n"
                                    "name = Greater Bay Area Credit Federation\n"
                                    "serial = 3\n"
                                    "max_message_bytes = 4194304\n"
                                    "common_scale = 1,2,3,4          ; ranks, 1 = best\n"
                                    "\n"
                                    "[purpose supervision]\n"
                                    "needs_authorisation = false\n"
                                    "\n"
                                    "[purpose lending]\n"
                                    "needs_authorisation = true\n"
                                    "\n"
                                    "[member 440100]\n"
                                    "name = Guangzhou\n"
                                    "endpoint = tls+tcp://127.0.0.1:7501\n"
                                    "certificate = gz/city.crt       ; relative to this file\n"
                                    "lists = serious-dishonesty, abnormal-operation\n"
                                    "scale = ABCD=A,B,C,D\n"
                                    "grade_map = A:1, B:2, C:3, D:4\n"
                                    "\n"
                                    "[member 440300]\n"
                                    "name = Shenzhen\n"
                                    "endpoint = tls+tcp://127.0.0.1:7502\n"
                                    "certificate = sz/city.crt\n"
                                    "lists = serious-dishonesty, abnormal-operation\n"
                                    "scale = SZ5=AAA,AA,A,B,C\n"
                                    "grade_map = AAA:1, AA:1, A:2,\n"
                                    "    B:3, C:4                    ; continued\n"
                                    "\n"
                                    "[member 440600]\n"
                                    "name = Foshan\n"
                                    "endpoint = tls+tcp://[::1]:7503\n"
                                    "fingerprint = @FS@\n"
                                    "lists = serious-dishonesty\n"
                                    "scale = ABCD=A,B,C,D\n"
                                    "grade_map = A:1, B:2, C:3, D:4\n"
                                    "\n"
                                    "[permission 440300 -> 440100]   ; asker -> answerer\n"
                                    "purposes = supervision, lending\n"
                                    "lists = serious-dishonesty\n"
                                    "quota_items_per_day = 1000000\n"
                                    "min_count_batch = 16\n"
                                    "\n"
                                    "[permission 440100 -> 440300]\n"
                                    "purposes = supervision\n"
                                    "lists = serious-dishonesty, abnormal-operation\n"
                                    "quota_items_per_day = 500000\n"
                                    "min_count_batch = 8\n"
                                    "\n"
                                    "[permission 440100 -> 440600]\n"
                                    "purposes = lending\n"
                                    "lists = serious-dishonesty\n"
                                    "quota_items_per_day = 1000\n"
                                    "min_count_batch = 1\n";

/* --- helpers --- */

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

/* scratch/name into one of a few rotating buffers. */
static const char *
at(const char *name)
{
    static char bufs[8][PATH_MAX];
    static unsigned next;
    char *b = bufs[next++ % 8];
    int n = snprintf(b, PATH_MAX, "%s/%s", scratch, name);
    if (n < 0 || n >= PATH_MAX) { /* also used by main(), outside any test */
        fprintf(stderr, "test_roster: path %s/%s too long\n", scratch, name);
        abort();
    }
    return b;
}

/* text with the first `find` replaced by `repl` (find NULL: repl appended);
 * *line gets the line number where repl starts. Then @FS@/@GZ@ filled in. */
static char *
mutate(const char *text, const char *find, const char *repl, size_t *line)
{
    size_t tl = strlen(text), rl = strlen(repl);
    const char *pos = find ? strstr(text, find) : text + tl;
    ck_assert_msg(pos != NULL, "test bug: '%s' not in the template", find);
    ck_assert_msg(find == NULL || strstr(pos + 1, find) == NULL, "test bug: '%s' not unique", find);
    size_t fl = find ? strlen(find) : 0;
    size_t off = (size_t)(pos - text);
    if (line != NULL) {
        *line = 1;
        for (size_t i = 0; i < off; i++)
            *line += text[i] == '\n';
    }
    char *tmp = malloc(tl + rl + 1);
    ck_assert_ptr_nonnull(tmp);
    memcpy(tmp, text, off);
    memcpy(tmp + off, repl, rl);
    memcpy(tmp + off + rl, pos + fl, tl - off - fl + 1);
    /* Fill in the fingerprints (same length as the placeholders plus 60). */
    char *out = malloc(strlen(tmp) + 4 * BG_SIG_FP_HEX_LEN + 1);
    ck_assert_ptr_nonnull(out);
    char *o = out;
    for (const char *p = tmp; *p != '\0';) {
        if (strncmp(p, "@FS@", 4) == 0 || strncmp(p, "@GZ@", 4) == 0) {
            memcpy(o, p[1] == 'F' ? fs_hex : gz_hex, BG_SIG_FP_HEX_LEN);
            o += BG_SIG_FP_HEX_LEN;
            p += 4;
        } else {
            *o++ = *p++;
        }
    }
    *o = '\0';
    free(tmp);
    return out;
}

static int
parse_text(const char *text, bg_roster **r, bg_err *err)
{
    return bg_roster_parse_ini_text(text, strlen(text), scratch, "roster.ini", ca_cert, r, err);
}

/* The good roster, or a variant of it. */
static bg_roster *
parse_variant(const char *find, const char *repl)
{
    char *text = mutate(good_template, find, repl ? repl : "", NULL);
    bg_roster *r = NULL;
    bg_err err = {0};
    ck_assert_msg(parse_text(text, &r, &err) == BG_OK, "%s", err.msg);
    free(text);
    return r;
}

static bg_roster *
parse_good(void)
{
    return parse_variant(NULL, "");
}

static uint8_t *
sign(const bg_roster *r, size_t *len)
{
    uint8_t *b = NULL;
    bg_err err = {0};
    ck_assert_msg(bg_roster_sign(r, ca_key, ca_cert, &b, len, &err) == BG_OK, "%s", err.msg);
    return b;
}

static int
open_bytes(const uint8_t *b, size_t len, bg_roster **out, bg_err *err)
{
    return bg_roster_open(b, len, ca_cert, 0, NULL, out, NULL, err);
}

#define ck_assert_has(msg, part)                                                                   \
    ck_assert_msg(strstr((msg), (part)) != NULL, "message '%s' lacks '%s'", (msg), (part))

/* --- the INI source --- */

START_TEST(ini_good_parses_into_the_roster)
{
    /* Read from a real file: certificate paths are relative to it. */
    char *text = mutate(good_template, NULL, "", NULL);
    FILE *f = fopen(at("roster.ini"), "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    free(text);
    bg_roster *r = NULL;
    bg_err err = {0};
    int64_t before = (int64_t)time(NULL) * 1000;
    ck_assert_msg(bg_roster_parse_ini(at("roster.ini"), ca_cert, &r, &err) == BG_OK, "%s", err.msg);

    ck_assert_uint_eq(bg_roster_serial(r), 3);
    ck_assert_str_eq(bg_roster_federation(r), "Greater Bay Area Credit Federation");
    ck_assert_uint_eq(bg_roster_max_message_bytes(r), 4194304);
    ck_assert_int_ge(bg_roster_issued_at_ms(r), before - 1000);
    ck_assert_int_le(bg_roster_issued_at_ms(r), before + 60000);
    ck_assert_uint_eq(bg_roster_common_scale(r)->ngrades, 4);

    ck_assert_uint_eq(bg_roster_member_count(r), 3);
    const bg_roster_member *gz = bg_roster_member_at(r, 0);
    ck_assert_str_eq(gz->city, "440100");
    ck_assert_str_eq(gz->name, "Guangzhou");
    ck_assert_str_eq(gz->endpoint, "tls+tcp://127.0.0.1:7501");
    ck_assert_mem_eq(gz->cert_sha256, gz_fp, BG_SIG_FP_LEN); /* from gz/city.crt */
    ck_assert(gz->lists[BG_LIST_SERIOUS_DISHONESTY] && gz->lists[BG_LIST_ABNORMAL_OPERATION]);
    ck_assert_str_eq(gz->scale.name, "ABCD");

    const bg_roster_member *fs = bg_roster_member_find(r, "440600");
    ck_assert_ptr_nonnull(fs);
    char hex[BG_SIG_FP_HEX_LEN + 1];
    bg_sig_fp_hex(fs->cert_sha256, hex);
    ck_assert_str_eq(hex, fs_hex); /* from fingerprint = */
    ck_assert_str_eq(fs->endpoint, "tls+tcp://[::1]:7503");
    ck_assert(fs->lists[BG_LIST_SERIOUS_DISHONESTY] && !fs->lists[BG_LIST_ABNORMAL_OPERATION]);
    ck_assert_ptr_null(bg_roster_member_find(r, "440999"));

    /* The continuation line of Shenzhen's grade_map was taken. */
    const bg_roster_member *sz = bg_roster_member_find(r, "440300");
    ck_assert_uint_eq(sz->scale.ngrades, 5);
    ck_assert_uint_eq(bg_roster_member_rank(sz, "C", 1), 4);

    ck_assert_uint_eq(bg_roster_purpose_count(r), 2);
    ck_assert(!bg_roster_purpose_find(r, "supervision")->needs_authorisation);
    ck_assert(bg_roster_purpose_find(r, "lending")->needs_authorisation);
    ck_assert_ptr_null(bg_roster_purpose_find(r, "marketing"));

    ck_assert_uint_eq(bg_roster_permission_count(r), 3);
    const bg_roster_perm *p = bg_roster_permission_find(r, "440300", "440100");
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq(p->quota_items_per_day, 1000000);
    ck_assert_uint_eq(p->min_count_batch, 16);
    ck_assert_uint_eq(p->purposes, 3u);
    ck_assert(p->lists[BG_LIST_SERIOUS_DISHONESTY] && !p->lists[BG_LIST_ABNORMAL_OPERATION]);
    ck_assert_ptr_null(bg_roster_permission_find(r, "440600", "440100"));

    /* The serialised form is there and its digest is its SHA-256. */
    size_t len = 0;
    const uint8_t *bytes = bg_roster_bytes(r, &len);
    uint8_t d1[32], d2[32];
    ck_assert_uint_gt(len, 100);
    bg_roster_digest(r, d1);
    ck_assert_int_eq(bg_sig_fingerprint_der(bytes, len, d2, NULL), BG_OK);
    ck_assert_mem_eq(d1, d2, 32);
    bg_roster_free(r);
}
END_TEST

/* Each broken variant of the good source, with the message it must get. */
static const struct bad_case {
    const char *find; /* NULL: append */
    const char *repl;
    const char *expect;
    int line_delta; /* error at (line of repl) + delta; -1: line not checked */
} bad_cases[] = {
    {"[member 440600]", "[member 44060]", "'44060' is not a 6-digit city code", 0},
    {"[member 440600]", "[member 440100]", "[member 440100] appears twice", 0},
    {"endpoint = tls+tcp://127.0.0.1:7502", "endpoint = tcp://127.0.0.1:7502",
     "endpoint: 'tcp://127.0.0.1:7502' is not a tls+tcp:// address", 0},
    {"tls+tcp://127.0.0.1:7502", "tls+tcp://127.0.0.1", "needs a host and a port 1-65535", 0},
    {"tls+tcp://127.0.0.1:7502", "tls+tcp://127.0.0.1:70000", "needs a host and a port", 0},
    {"tls+tcp://127.0.0.1:7502", "tls+tcp://my host:7502", "the host must be a name", 0},
    {"tls+tcp://127.0.0.1:7502", "tls+tcp://127.0.0.1:7501",
     "is also the endpoint of member 440100", 0},
    {"lists = serious-dishonesty\nscale", "lists = serious-dishonesty, bad-list\nscale",
     "[member 440600] lists: unknown list 'bad-list'", 0},
    {"lists = serious-dishonesty\nquota_items_per_day = 1000\n",
     "lists = abnormal-operation\nquota_items_per_day = 1000\n",
     "[permission 440100 -> 440600] lists: 440600 does not offer abnormal-operation", 0},
    {"purposes = supervision, lending", "purposes = supervision, marketing",
     "purpose 'marketing' is not declared", 0},
    {"purposes = supervision\n", "purposes =\n", "purposes: needs at least one purpose", 0},
    {"lists = serious-dishonesty\nquota_items_per_day = 1000000",
     "lists =\nquota_items_per_day = 1000000", "lists: needs at least one list", 0},
    {"A:1, B:2, C:3, D:4\n\n[permission", "A:1, B:2, C:3\n\n[permission",
     "[member 440600] grade_map: grade D of scale ABCD is not mapped", 0},
    {"AAA:1, AA:1, A:2,", "AAA:1, AA:1, A:5,", "rank 5 is outside the common scale 1234 (1-4)", 0},
    {"A:1, B:2, C:3, D:4\n\n[member 440300]", "A:2, B:1, C:3, D:4\n\n[member 440300]",
     "grade B maps to common rank 1, better than the better grade A's 2", 0},
    {"A:1, B:2, C:3, D:4\n\n[member 440300]", "A:1, B:2, C:3, D:worst\n\n[member 440300]",
     "'D:worst' is neither a rank nor a grade of the common scale", 0},
    {"A:1, B:2, C:3, D:4\n\n[member 440300]", "A:1, B:2, C:3, D:4, E:4\n\n[member 440300]",
     "grade 'E' is not in scale ABCD", 0},
    {"[permission 440100 -> 440600]", "[permission 440100 -> 440100]",
     "asker and answerer are the same city", 0},
    {"[permission 440100 -> 440600]", "[permission 440999 -> 440600]",
     "asker 440999 is not a member", 0},
    {"[permission 440100 -> 440600]", "[permission 440100 to 440600]",
     "expected two 6-digit city codes", 0},
    {NULL,
     "\n[permission 440300 -> 440100]\npurposes = supervision\nlists = serious-dishonesty\n"
     "quota_items_per_day = 1\nmin_count_batch = 1\n",
     "[permission 440300 -> 440100] appears twice", 1},
    {"serial = 3", "serial = 0", "[federation] serial: 0 is out of range 1-", 0},
    {"max_message_bytes = 4194304", "max_message_bytes = 100",
     "max_message_bytes: 100 is out of range 1024-", 0},
    {"common_scale = 1,2,3,4", "common_scale = 1,1,3,4", "grade '1' appears twice", 0},
    {"common_scale = 1,2,3,4", "common_scale = X=4,3,2,1", "is a number other than its rank", 0},
    {"quota_items_per_day = 1000000", "quota_items_per_day = 0",
     "quota_items_per_day: 0 is out of range 1-1000000000000", 0},
    {"min_count_batch = 16", "min_count_batch = 2000000", "out of range 1-1000000", 0},
    {"needs_authorisation = true", "needs_authorisation = maybe", "expected true or false", 0},
    {"name = Foshan\n", "name = Foshan\ncolour = blue\n", "unknown key 'colour' in [member 440600]",
     1},
    {"[purpose lending]", "[porpoise lending]", "unknown section [porpoise lending]", 0},
    {"[purpose lending]", "[purpose Lending!]", "'Lending!' is not a purpose name", 0},
    {"[purpose lending]", "[purpose lending] extra", "text after the section header", 0},
    {"name = Foshan\n", "name = Foshan\nname = Fatshan\n",
     "[member 440600] name given twice (first at line", 1},
    {"endpoint = tls+tcp://[::1]:7503\n", "", "[member 440600] endpoint is required", -1},
    {"certificate = sz/city.crt", "certificate = gz/city.crt",
     "gz/city.crt is a certificate of 440100, not of 440300", 0},
    {"certificate = gz/city.crt", "certificate = rogue-gz.crt",
     "rogue-gz.crt was not issued by this federation CA", 0},
    {"certificate = gz/city.crt", "certificate = nowhere.crt", "nowhere.crt", 0},
    {"fingerprint = ", "certificate = fs/city.crt\nfingerprint = ",
     "give certificate or fingerprint, not both", 1},
    {"fingerprint = ", "fingerprint = zz", "as 64 hex digits", 0},
    {"fingerprint = @FS@", "fingerprint = @GZ@", "same certificate as member 440100", 0},
    /* The next certificate of a rotation. */
    {"certificate = gz/city.crt       ; relative to this file\n",
     "certificate = gz/city.crt\nnext_fingerprint = @GZ@\n",
     "[member 440100] next_fingerprint: the next certificate is the current one", 1},
    {"fingerprint = @FS@\n", "fingerprint = @FS@\nnext_fingerprint = @GZ@\n",
     "[member 440600] next_fingerprint: next certificate is also pinned by member 440100", 1},
    {"certificate = gz/city.crt       ; relative to this file\n",
     "certificate = gz/city.crt\nnext_fingerprint = @FS@\n",
     "[member 440600] fingerprint: same certificate as member 440100", -1},
    {"certificate = sz/city.crt\n",
     "certificate = sz/city.crt\nnext_certificate = gz/city.next.crt\n",
     "next_certificate: gz/city.next.crt is a certificate of 440100, not of 440300", 1},
    {"certificate = gz/city.crt       ; relative to this file\n",
     "certificate = gz/city.crt\nnext_certificate = rogue-gz.crt\n",
     "next_certificate: rogue-gz.crt was not issued by this federation CA", 1},
    {"fingerprint = @FS@\n", "fingerprint = @FS@\nnext_fingerprint = zz\n",
     "next_fingerprint: expected the certificate's SHA-256 as 64 hex digits", 1},
    {"certificate = gz/city.crt       ; relative to this file\n",
     "certificate = gz/city.crt\nnext_certificate = gz/city.next.crt\nnext_fingerprint = @FS@\n",
     "give next_certificate or next_fingerprint, not both", 2},
    {"certificate = gz/city.crt       ; relative to this file\n",
     "certificate = gz/city.crt\nnext_certificate = gz/city.next.crt\n"
     "next_certificate = gz/city.next.crt\n",
     "[member 440100] next_certificate given twice", 2},
    {"name = Shenzhen\n", "name = Shenzhen\n  City\n", "an indented line continues", 1},
    {"; Greater", "orphan = 1\n; Greater", "key 'orphan' outside any section", 0},
    {"name = Shenzhen\n", "name = Shenzhen\njust words\n", "expected 'key = value'", 1},
    /* A stray line, then an indented one: not a continuation of the previous section's
     * grade_map (that text was once kept on the permission and never freed). */
    {"answerer\n", "answerer\njust words\n  A:1\n", "expected 'key = value'", 1},
    {"name = Foshan",
     "name = Foshan and a name far too long for any line of the ini reader, which "
     "stops at two hundred bytes: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
     "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
     "line longer than", 0},
    {"name = Guangzhou", "name = ", "[member 440100] name: needs a value", 0},
    {NULL, "\n[federation]\n", "[federation] given twice (first at line 2)", 1},
};

#define NBAD (sizeof bad_cases / sizeof bad_cases[0])

START_TEST(ini_refused_with_message)
{
    const struct bad_case *c = &bad_cases[_i];
    size_t line = 0;
    char *text = mutate(good_template, c->find, c->repl, &line);
    bg_roster *r = NULL;
    bg_err err = {0};
    int rc = parse_text(text, &r, &err);
    free(text);
    ck_assert_msg(rc != BG_OK, "case %d (%s) was accepted", _i, c->expect);
    ck_assert_ptr_null(r);
    ck_assert_has(err.msg, c->expect);
    ck_assert_msg(strncmp(err.msg, "roster.ini:", 11) == 0, "no file name: %s", err.msg);
    if (c->line_delta >= 0) {
        char prefix[64];
        snprintf(prefix, sizeof prefix, "roster.ini:%zu: ", line + (size_t)c->line_delta);
        ck_assert_msg(strncmp(err.msg, prefix, strlen(prefix)) == 0, "case %d: '%s' is not at %s",
                      _i, err.msg, prefix);
    }
}
END_TEST

START_TEST(ini_counts_are_bounded)
{
    /* 65 members: refused at the 65th header. */
    size_t cap = 64 * 1024;
    char *text = malloc(cap);
    ck_assert_ptr_nonnull(text);
    size_t n = (size_t)snprintf(text, cap,
                                "[federation]\nname = F\nserial = 1\nmax_message_bytes = 65536\n"
                                "common_scale = 1,2\n");
    for (int i = 0; i < 65; i++)
        n += (size_t)snprintf(text + n, cap - n,
                              "[member %06d]\nname = M%d\nendpoint = tls+tcp://10.0.0.1:%d\n"
                              "fingerprint = %064x\nlists =\nscale = 1,2\ngrade_map = 1:1, 2:2\n",
                              440000 + i, i, 7000 + i, i + 1);
    ck_assert_uint_lt(n, cap);
    bg_roster *r = NULL;
    bg_err err = {0};
    ck_assert_int_eq(parse_text(text, &r, &err), BG_ELIMIT);
    ck_assert_has(err.msg, "more than 64 members");
    ck_assert_has(err.msg, "roster.ini:454:"); /* 6 + 64 * 7 */

    /* 64 members are fine: the bound is exact. */
    char *cut = strstr(text, "[member 440064]");
    ck_assert_ptr_nonnull(cut);
    *cut = '\0';
    ck_assert_msg(parse_text(text, &r, &err) == BG_OK, "%s", err.msg);
    ck_assert_uint_eq(bg_roster_member_count(r), 64);
    bg_roster_free(r);
    r = NULL;

    /* 17 purposes. */
    n = (size_t)snprintf(text, cap, "%s", "[federation]\nname = F\nserial = 1\n");
    for (int i = 0; i < 17; i++)
        n += (size_t)snprintf(text + n, cap - n, "[purpose p%d]\nneeds_authorisation = false\n", i);
    ck_assert_int_eq(parse_text(text, &r, &err), BG_ELIMIT);
    ck_assert_has(err.msg, "more than 16 purposes");

    /* No members at all. */
    snprintf(text, cap,
             "[federation]\nname = F\nserial = 1\nmax_message_bytes = 65536\n"
             "common_scale = 1,2\n");
    ck_assert_int_eq(parse_text(text, &r, &err), BG_EINVAL);
    ck_assert_has(err.msg, "roster has 0 members; it needs 1 to 64");

    /* No [federation]. */
    snprintf(text, cap, "[purpose p]\nneeds_authorisation = false\n");
    ck_assert_int_eq(parse_text(text, &r, &err), BG_EINVAL);
    ck_assert_has(err.msg, "the [federation] section is missing");

    /* A NUL byte. */
    ck_assert_int_eq(bg_roster_parse_ini_text("[federation]\0", 13, NULL, NULL, NULL, &r, &err),
                     BG_EINVAL);
    ck_assert_has(err.msg, "NUL");
    free(text);
}
END_TEST

START_TEST(grade_mapping_lookup)
{
    bg_roster *r = parse_good();
    bg_err err = {0};
    uint32_t rank = 0;
    /* Shenzhen's five grades on the four-rank common scale. */
    const struct {
        const char *grade;
        uint32_t rank;
    } sz[] = {{"AAA", 1}, {"AA", 1}, {"A", 2}, {"B", 3}, {"C", 4}};
    for (size_t i = 0; i < 5; i++) {
        ck_assert_int_eq(bg_roster_common_rank(r, "440300", sz[i].grade, &rank, &err), BG_OK);
        ck_assert_uint_eq(rank, sz[i].rank);
    }
    /* The same letter means another thing in Guangzhou's scale. */
    ck_assert_int_eq(bg_roster_common_rank(r, "440100", "A", &rank, &err), BG_OK);
    ck_assert_uint_eq(rank, 1);
    ck_assert_int_eq(bg_roster_common_rank(r, "440300", "D", &rank, &err), BG_ENOTFOUND);
    ck_assert_has(err.msg, "'D' is not a grade of 440300's scale SZ5");
    ck_assert_int_eq(bg_roster_common_rank(r, "440999", "A", &rank, &err), BG_ENOTFOUND);
    ck_assert_has(err.msg, "440999 is not a member");
    ck_assert_uint_eq(bg_roster_member_rank(bg_roster_member_find(r, "440100"), "E", 1), 0);
    bg_roster_free(r);

    /* A named common scale: grade_map may name its grades or give ranks. */
    r = parse_variant("common_scale = 1,2,3,4", "common_scale = GBA=Top,Good,Fair,Poor");
    ck_assert_int_eq(bg_roster_common_rank(r, "440300", "AA", &rank, &err), BG_OK);
    ck_assert_uint_eq(rank, 1);
    bg_roster_free(r);
    char *text = mutate(good_template, "A:1, B:2, C:3, D:4\n\n[member 440300]",
                        "A:Top, B:Good, C:Good, D:Poor\n\n[member 440300]", NULL);
    char *text2 =
        mutate(text, "common_scale = 1,2,3,4", "common_scale = GBA=Top,Good,Fair,Poor", NULL);
    ck_assert_msg(parse_text(text2, &r, &err) == BG_OK, "%s", err.msg);
    ck_assert_int_eq(bg_roster_common_rank(r, "440100", "C", &rank, &err), BG_OK);
    ck_assert_uint_eq(rank, 2);
    ck_assert_int_eq(bg_roster_common_rank(r, "440100", "D", &rank, &err), BG_OK);
    ck_assert_uint_eq(rank, 4);
    bg_roster_free(r);
    free(text);
    free(text2);
}
END_TEST

START_TEST(permission_lookup)
{
    bg_roster *r = parse_good();
    bg_roster_verdict v;

    /* Allowed, with the quota, the batch minimum and the purpose's consent rule. */
    ck_assert(bg_roster_permission(r, "440300", "440100", "lending", "serious-dishonesty", &v));
    ck_assert(v.allowed);
    ck_assert_uint_eq(v.quota_items_per_day, 1000000);
    ck_assert_uint_eq(v.min_count_batch, 16);
    ck_assert(v.needs_authorisation);
    ck_assert(bg_roster_permission(r, "440300", "440100", "supervision", "serious-dishonesty", &v));
    ck_assert(!v.needs_authorisation);
    ck_assert(bg_roster_permission(r, "440100", "440300", "supervision", "abnormal-operation", &v));
    ck_assert_uint_eq(v.quota_items_per_day, 500000);

    static const struct {
        const char *asker, *answerer, *purpose, *list, *reason;
    } no[] = {
        /* purpose declared, but not in this permission */
        {"440100", "440300", "lending", "serious-dishonesty",
         "440100 may not ask 440300 for purpose 'lending'"},
        /* purpose not declared at all */
        {"440300", "440100", "marketing", "serious-dishonesty",
         "purpose 'marketing' is not declared"},
        /* list offered by the answerer but not granted */
        {"440300", "440100", "supervision", "abnormal-operation",
         "440300 may not ask 440100 about abnormal-operation"},
        /* list the answerer does not offer */
        {"440100", "440600", "lending", "abnormal-operation",
         "440600 does not offer abnormal-operation"},
        {"440300", "440100", "supervision", "grey-list", "'grey-list' is not a known list"},
        /* unknown asker, unknown answerer */
        {"440999", "440100", "supervision", "serious-dishonesty",
         "440999 is not a member of the federation"},
        {"440300", "440999", "supervision", "serious-dishonesty",
         "440999 is not a member of the federation"},
        {NULL, "440100", "supervision", "serious-dishonesty", "is not a member"},
        /* no permission in this direction (the reverse exists) */
        {"440600", "440100", "lending", "serious-dishonesty", "440600 may not ask 440100 anything"},
        {"440100", "440100", "lending", "serious-dishonesty", "440100 cannot ask itself"},
    };
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
        ck_assert_msg(
            !bg_roster_permission(r, no[i].asker, no[i].answerer, no[i].purpose, no[i].list, &v),
            "case %zu allowed", i);
        ck_assert(!v.allowed);
        ck_assert_uint_eq(v.quota_items_per_day, 0);
        ck_assert_has(v.reason, no[i].reason);
    }
    bg_roster_free(r);
}
END_TEST

/* Guangzhou rotating: its current and its next certificate are pinned. */
static bg_roster *
parse_rotating(void)
{
    return parse_variant("certificate = gz/city.crt       ; relative to this file\n",
                         "certificate = gz/city.crt\nnext_certificate = gz/city.next.crt\n");
}

START_TEST(next_certificate_is_pinned_too)
{
    bg_roster *r = parse_rotating();
    const bg_roster_member *gz = bg_roster_member_find(r, "440100");
    const bg_roster_member *fs = bg_roster_member_find(r, "440600");
    ck_assert(gz->has_next);
    ck_assert_mem_eq(gz->cert_sha256, gz_fp, BG_SIG_FP_LEN);
    ck_assert_mem_eq(gz->next_sha256, gz_next_fp, BG_SIG_FP_LEN);
    ck_assert(!fs->has_next);
    /* Either of Guangzhou's is pinned; another member's is not. */
    ck_assert(bg_roster_member_pinned(gz, gz_fp));
    ck_assert(bg_roster_member_pinned(gz, gz_next_fp));
    ck_assert(!bg_roster_member_pinned(gz, fs->cert_sha256));
    ck_assert(!bg_roster_member_pinned(fs, gz_next_fp));
    /* A member without a next pins nothing else, even all zeroes. */
    uint8_t zero[BG_SIG_FP_LEN] = {0};
    ck_assert(!bg_roster_member_pinned(fs, zero));

    /* The envelope verifier's callback: both, current first; one for the others. */
    uint8_t pins[BG_ROSTER_PINS_MAX][BG_SIG_FP_LEN];
    size_t n = 0;
    ck_assert_int_eq(bg_roster_member_fp(r, "440100", pins, &n), BG_OK);
    ck_assert_uint_eq(n, 2);
    ck_assert_mem_eq(pins[0], gz_fp, BG_SIG_FP_LEN);
    ck_assert_mem_eq(pins[1], gz_next_fp, BG_SIG_FP_LEN);
    ck_assert_int_eq(bg_roster_member_fp(r, "440600", pins, &n), BG_OK);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(bg_roster_member_fp(r, "440999", pins, &n), BG_ENOTFOUND);

    /* Signed and opened, the next pin is still there. */
    size_t len = 0;
    uint8_t *b = sign(r, &len);
    bg_roster *o = NULL;
    bg_err err = {0};
    ck_assert_msg(open_bytes(b, len, &o, &err) == BG_OK, "%s", err.msg);
    const bg_roster_member *ogz = bg_roster_member_find(o, "440100");
    ck_assert(ogz->has_next);
    ck_assert_mem_eq(ogz->next_sha256, gz_next_fp, BG_SIG_FP_LEN);
    free(b);
    bg_roster_free(o);
    bg_roster_free(r);

    /* next_fingerprint = HEX pins the same. */
    char hex[BG_SIG_FP_HEX_LEN + 1], line[160];
    bg_sig_fp_hex(gz_next_fp, hex);
    snprintf(line, sizeof line, "certificate = gz/city.crt\nnext_fingerprint = %s\n", hex);
    r = parse_variant("certificate = gz/city.crt       ; relative to this file\n", line);
    ck_assert_mem_eq(bg_roster_member_find(r, "440100")->next_sha256, gz_next_fp, BG_SIG_FP_LEN);
    bg_roster_free(r);
    /* The rotation done: the new certificate current, nothing next. */
    r = parse_variant("certificate = gz/city.crt       ; relative to this file\n",
                      "certificate = gz/city.next.crt\n");
    ck_assert_mem_eq(bg_roster_member_find(r, "440100")->cert_sha256, gz_next_fp, BG_SIG_FP_LEN);
    ck_assert(!bg_roster_member_find(r, "440100")->has_next);
    bg_roster_free(r);
}
END_TEST

/* A roster signed without the next field (as every roster before rotations was) opens,
 * and a signed one whose next field is not a SHA-256 is refused like the INI's. */
START_TEST(next_pin_on_the_wire)
{
    bg_roster *r = parse_good();
    size_t len = 0;
    const uint8_t *bytes = bg_roster_bytes(r, &len);
    Baygate__Roster *m = baygate__roster__unpack(NULL, len, bytes);
    ck_assert_ptr_nonnull(m);
    for (size_t i = 0; i < m->n_members; i++)
        ck_assert_uint_eq(m->members[i]->next_cert_sha256.len, 0);
    uint8_t bad[5] = {1, 2, 3, 4, 5};
    m->members[1]->next_cert_sha256.data = bad;
    m->members[1]->next_cert_sha256.len = sizeof bad;
    size_t mlen = baygate__roster__get_packed_size(m);
    uint8_t *mb = malloc(mlen), sig[BG_SIG_MAX], fp[BG_SIG_FP_LEN];
    ck_assert_ptr_nonnull(mb);
    baygate__roster__pack(m, mb);
    m->members[1]->next_cert_sha256.data = NULL; /* not the unpacker's to free */
    m->members[1]->next_cert_sha256.len = 0;
    baygate__roster__free_unpacked(m, NULL);
    size_t siglen = 0;
    ck_assert_int_eq(bg_sig_sign(ca_key, BG_SIG_CTX_ROSTER, mb, mlen, sig, &siglen, NULL), BG_OK);
    ck_assert_int_eq(bg_sig_fingerprint(ca_cert, fp, NULL), BG_OK);
    Baygate__SignedRoster sr = BAYGATE__SIGNED_ROSTER__INIT;
    sr.roster.data = mb;
    sr.roster.len = mlen;
    sr.signature.data = sig;
    sr.signature.len = siglen;
    sr.ca_cert_sha256.data = fp;
    sr.ca_cert_sha256.len = sizeof fp;
    size_t wlen = baygate__signed_roster__get_packed_size(&sr);
    uint8_t *wire = malloc(wlen);
    ck_assert_ptr_nonnull(wire);
    baygate__signed_roster__pack(&sr, wire);
    bg_roster *o = NULL;
    bg_err err = {0};
    ck_assert_int_eq(open_bytes(wire, wlen, &o, &err), BG_EINVAL);
    ck_assert_has(err.msg, "[member 440300]");
    ck_assert_has(err.msg, "next certificate fingerprint is 5 bytes");
    ck_assert_ptr_null(o);
    free(wire);
    free(mb);
    bg_roster_free(r);
}
END_TEST

/* --- signing and opening --- */

START_TEST(sign_open_round_trip_equals)
{
    bg_roster *a = parse_good(), *b = NULL;
    size_t len = 0;
    uint8_t *signed_bytes = sign(a, &len);
    bg_err err = {0};
    bool unchanged = true;
    ck_assert_msg(bg_roster_open(signed_bytes, len, ca_cert, 3, NULL, &b, &unchanged, &err) ==
                      BG_OK,
                  "%s", err.msg);
    ck_assert(!unchanged);

    /* The exact bytes the CA signed, and everything read from them. */
    size_t la = 0, lb = 0;
    const uint8_t *ba = bg_roster_bytes(a, &la), *bb = bg_roster_bytes(b, &lb);
    ck_assert_uint_eq(la, lb);
    ck_assert_mem_eq(ba, bb, la);
    uint8_t da[32], db[32];
    bg_roster_digest(a, da);
    bg_roster_digest(b, db);
    ck_assert_mem_eq(da, db, 32);
    ck_assert_uint_eq(bg_roster_serial(a), bg_roster_serial(b));
    ck_assert_int_eq(bg_roster_issued_at_ms(a), bg_roster_issued_at_ms(b));
    ck_assert_str_eq(bg_roster_federation(a), bg_roster_federation(b));
    ck_assert_uint_eq(bg_roster_max_message_bytes(a), bg_roster_max_message_bytes(b));
    ck_assert_mem_eq(bg_roster_common_scale(a), bg_roster_common_scale(b), sizeof(bg_scale));
    ck_assert_uint_eq(bg_roster_member_count(a), bg_roster_member_count(b));
    for (size_t i = 0; i < bg_roster_member_count(a); i++)
        ck_assert_mem_eq(bg_roster_member_at(a, i), bg_roster_member_at(b, i),
                         sizeof(bg_roster_member));
    ck_assert_uint_eq(bg_roster_purpose_count(a), bg_roster_purpose_count(b));
    for (size_t i = 0; i < bg_roster_purpose_count(a); i++)
        ck_assert_mem_eq(bg_roster_purpose_at(a, i), bg_roster_purpose_at(b, i),
                         sizeof(bg_roster_purpose));
    ck_assert_uint_eq(bg_roster_permission_count(a), bg_roster_permission_count(b));
    for (size_t i = 0; i < bg_roster_permission_count(a); i++)
        ck_assert_mem_eq(bg_roster_permission_at(a, i), bg_roster_permission_at(b, i),
                         sizeof(bg_roster_perm));

    /* A reference outlives the first holder's release. */
    bg_roster *c = bg_roster_ref(b);
    bg_roster_free(b);
    ck_assert_uint_eq(bg_roster_serial(c), 3);
    bg_roster_free(c);
    bg_roster_free(a);
    free(signed_bytes);
}
END_TEST

START_TEST(file_write_is_atomic_and_loads)
{
    bg_roster *a = parse_good(), *b = NULL;
    size_t len = 0;
    uint8_t *s = sign(a, &len);
    bg_err err = {0};
    mkdir(at("files"), 0700);
    ck_assert_msg(bg_roster_write_file(at("files/roster.pb"), s, len, &err) == BG_OK, "%s",
                  err.msg);
    /* Replacing it leaves no temp file behind. */
    ck_assert_msg(bg_roster_write_file(at("files/roster.pb"), s, len, &err) == BG_OK, "%s",
                  err.msg);
    DIR *d = opendir(at("files"));
    ck_assert_ptr_nonnull(d);
    int entries = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        if (e->d_name[0] != '.')
            entries++;
    closedir(d);
    ck_assert_int_eq(entries, 1);
    struct stat st;
    ck_assert_int_eq(stat(at("files/roster.pb"), &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0644);

    bool unchanged = false;
    ck_assert_msg(
        bg_roster_load_file(at("files/roster.pb"), ca_cert, 0, NULL, &b, &unchanged, &err) == BG_OK,
        "%s", err.msg);
    ck_assert_uint_eq(bg_roster_serial(b), 3);
    bg_roster_free(b);
    b = NULL;
    ck_assert_int_eq(bg_roster_load_file(at("files/none.pb"), ca_cert, 0, NULL, &b, NULL, &err),
                     BG_ENOTFOUND);
    /* A file too large is refused by size, before anything is parsed. */
    FILE *f = fopen(at("files/huge.pb"), "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fseek(f, BG_ROSTER_FILE_MAX, SEEK_SET), 0);
    fputc(0, f);
    fclose(f);
    ck_assert_int_eq(bg_roster_load_file(at("files/huge.pb"), ca_cert, 0, NULL, &b, NULL, &err),
                     BG_ELIMIT);
    ck_assert_ptr_null(b);
    bg_roster_free(a);
    free(s);
}
END_TEST

START_TEST(tampered_byte_anywhere_refused)
{
    bg_roster *a = parse_good();
    size_t len = 0;
    uint8_t *s = sign(a, &len);
    uint8_t *copy = malloc(len);
    ck_assert_ptr_nonnull(copy);
    bg_err err = {0};
    static const uint8_t masks[] = {0x01, 0x80, 0xff};
    for (size_t m = 0; m < sizeof masks; m++) {
        for (size_t i = 0; i < len; i++) {
            memcpy(copy, s, len);
            copy[i] ^= masks[m];
            bg_roster *r = NULL;
            int rc = open_bytes(copy, len, &r, &err);
            ck_assert_msg(rc != BG_OK, "byte %zu ^ 0x%02x accepted", i, masks[m]);
            ck_assert_ptr_null(r);
        }
    }
    /* A change inside the roster bytes is caught by the signature. */
    memcpy(copy, s, len);
    size_t rlen = 0;
    const uint8_t *rb = bg_roster_bytes(a, &rlen);
    uint8_t *inner = memmem(copy, len, rb, rlen);
    ck_assert_ptr_nonnull(inner);
    inner[rlen / 2] ^= 0x01;
    bg_roster *r = NULL;
    ck_assert_int_eq(open_bytes(copy, len, &r, &err), BG_ECRYPTO);
    ck_assert_has(err.msg, "roster signature does not verify");
    free(copy);
    free(s);
    bg_roster_free(a);
}
END_TEST

START_TEST(rogue_ca_with_same_dn_refused)
{
    /* The rogue CA has the same name, hence the same DN: only keys differ. */
    ck_assert_int_eq(
        X509_NAME_cmp(X509_get_subject_name(ca_cert), X509_get_subject_name(rogue_cert)), 0);
    bg_roster *a = parse_good(), *r = NULL;
    bg_err err = {0};
    uint8_t *s = NULL;
    size_t len = 0;
    ck_assert_int_eq(bg_roster_sign(a, rogue_key, rogue_cert, &s, &len, &err), BG_OK);

    /* Signed by the rogue and saying so: wrong CA. */
    ck_assert_int_eq(open_bytes(s, len, &r, &err), BG_ECRYPTO);
    ck_assert_has(err.msg, "not by this CA");
    ck_assert_ptr_null(r);

    /* Signed by the rogue but claiming the real CA's fingerprint. */
    Baygate__SignedRoster *sr = baygate__signed_roster__unpack(NULL, len, s);
    ck_assert_ptr_nonnull(sr);
    uint8_t real_fp[BG_SIG_FP_LEN];
    ck_assert_int_eq(bg_sig_fingerprint(ca_cert, real_fp, NULL), BG_OK);
    memcpy(sr->ca_cert_sha256.data, real_fp, BG_SIG_FP_LEN);
    size_t flen = baygate__signed_roster__get_packed_size(sr);
    uint8_t *forged = malloc(flen);
    ck_assert_ptr_nonnull(forged);
    baygate__signed_roster__pack(sr, forged);
    ck_assert_int_eq(open_bytes(forged, flen, &r, &err), BG_ECRYPTO);
    ck_assert_has(err.msg, "roster signature does not verify");
    ck_assert_ptr_null(r);

    /* Unsigned: the same wrapper without a signature. */
    sr->signature.len = 0;
    flen = baygate__signed_roster__get_packed_size(sr);
    baygate__signed_roster__pack(sr, forged);
    ck_assert_int_eq(open_bytes(forged, flen, &r, &err), BG_ECRYPTO);
    ck_assert_has(err.msg, "roster is not signed");

    /* Inspecting (no CA) decodes it but reports the fingerprint it claims:
     * it is for display only. */
    uint8_t claimed[BG_SIG_FP_LEN];
    ck_assert_int_eq(bg_roster_inspect(s, len, &r, claimed, &err), BG_OK);
    uint8_t rogue_fp[BG_SIG_FP_LEN];
    ck_assert_int_eq(bg_sig_fingerprint(rogue_cert, rogue_fp, NULL), BG_OK);
    ck_assert_mem_eq(claimed, rogue_fp, BG_SIG_FP_LEN);
    bg_roster_free(r);

    /* The CA key must belong to the CA certificate. */
    uint8_t *s2 = NULL;
    ck_assert_int_eq(bg_roster_sign(a, rogue_key, ca_cert, &s2, &len, &err), BG_EINVAL);
    ck_assert_has(err.msg, "does not belong");
    ck_assert_ptr_null(s2);

    baygate__signed_roster__free_unpacked(sr, NULL);
    free(forged);
    free(s);
    bg_roster_free(a);
}
END_TEST

START_TEST(serials_never_go_back)
{
    bg_err err = {0};
    bg_roster *r3 = parse_good(), *in_use = NULL, *r = NULL;
    size_t l3 = 0, l2 = 0, l3b = 0, l4 = 0;
    uint8_t *s3 = sign(r3, &l3);
    ck_assert_int_eq(open_bytes(s3, l3, &in_use, &err), BG_OK);

    /* Older than a floor given as a number, or than the roster in use. */
    ck_assert_int_eq(bg_roster_open(s3, l3, ca_cert, 4, NULL, &r, NULL, &err), BG_EEXIST);
    ck_assert_has(err.msg, "roster serial 3 is older than the 4 in use");
    bg_roster *r2 = parse_variant("serial = 3", "serial = 2");
    uint8_t *s2 = sign(r2, &l2);
    ck_assert_int_eq(bg_roster_open(s2, l2, ca_cert, 0, in_use, &r, NULL, &err), BG_EEXIST);
    ck_assert_has(err.msg, "roster serial 2 is older than the 3 in use");
    ck_assert_ptr_null(r);

    /* Same serial, same bytes: accepted as unchanged, even re-signed (ECDSA
     * signatures differ each time; the signed content does not). */
    bool unchanged = false;
    ck_assert_int_eq(bg_roster_open(s3, l3, ca_cert, 0, in_use, &r, &unchanged, &err), BG_OK);
    ck_assert(unchanged);
    bg_roster_free(r);
    r = NULL;
    size_t lr = 0;
    uint8_t *resigned = sign(r3, &lr);
    ck_assert(lr != l3 || memcmp(resigned, s3, lr) != 0);
    unchanged = false;
    ck_assert_int_eq(bg_roster_open(resigned, lr, ca_cert, 3, in_use, &r, &unchanged, &err), BG_OK);
    ck_assert(unchanged);
    bg_roster_free(r);
    r = NULL;

    /* Same serial, different content: refused. */
    bg_roster *r3b = parse_variant("name = Foshan", "name = Fatshan");
    uint8_t *s3b = sign(r3b, &l3b);
    ck_assert_int_eq(bg_roster_open(s3b, l3b, ca_cert, 0, in_use, &r, &unchanged, &err), BG_EEXIST);
    ck_assert_has(err.msg, "roster serial 3 is the one in use, but its content differs");
    ck_assert(!unchanged);
    ck_assert_ptr_null(r);

    /* Newer: accepted, not unchanged. */
    bg_roster *r4 = parse_variant("serial = 3", "serial = 4");
    uint8_t *s4 = sign(r4, &l4);
    unchanged = true;
    ck_assert_int_eq(bg_roster_open(s4, l4, ca_cert, 3, in_use, &r, &unchanged, &err), BG_OK);
    ck_assert(!unchanged);
    ck_assert_uint_eq(bg_roster_serial(r), 4);
    bg_roster_free(r);

    free(s2), free(s3), free(s3b), free(s4), free(resigned);
    bg_roster_free(r2), bg_roster_free(r3), bg_roster_free(r3b), bg_roster_free(r4);
    bg_roster_free(in_use);
}
END_TEST

START_TEST(truncated_and_garbage_refused)
{
    bg_roster *a = parse_good(), *r = NULL;
    size_t len = 0;
    uint8_t *s = sign(a, &len);
    bg_err err = {0};
    /* Every proper prefix, including the empty one. */
    for (size_t n = 0; n < len; n++) {
        ck_assert_msg(open_bytes(s, n, &r, &err) != BG_OK, "prefix of %zu bytes accepted", n);
        ck_assert_ptr_null(r);
    }
    ck_assert_int_eq(open_bytes(NULL, 0, &r, &err), BG_EPROTO);

    /* The bare Roster (never wrapped nor signed). */
    size_t rlen = 0;
    const uint8_t *rb = bg_roster_bytes(a, &rlen);
    ck_assert_int_ne(open_bytes(rb, rlen, &r, &err), BG_OK);

    /* Random bytes of many sizes (a fixed xorshift, so failures repeat). */
    uint8_t *buf = malloc(4096);
    ck_assert_ptr_nonnull(buf);
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (int round = 0; round < 500; round++) {
        size_t n = 1 + (size_t)(x % 4096);
        for (size_t i = 0; i < n; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            buf[i] = (uint8_t)x;
        }
        ck_assert_int_ne(open_bytes(buf, n, &r, &err), BG_OK);
        ck_assert_ptr_null(r);
    }
    /* A valid wrapper plus a field no wrapper has. */
    memcpy(buf, s, len);
    buf[len] = 0x20; /* field 4, varint */
    buf[len + 1] = 0x01;
    ck_assert_int_eq(open_bytes(buf, len + 2, &r, &err), BG_EPROTO);
    ck_assert_has(err.msg, "fields no roster has");
    free(buf);
    free(s);
    bg_roster_free(a);
}
END_TEST

START_TEST(huge_lengths_refused)
{
    bg_err err = {0};
    bg_roster *r = NULL;
    /* More than the bound: refused by size alone. */
    uint8_t *big = calloc(1, BG_ROSTER_FILE_MAX + 1);
    ck_assert_ptr_nonnull(big);
    ck_assert_int_eq(open_bytes(big, BG_ROSTER_FILE_MAX + 1, &r, &err), BG_ELIMIT);
    ck_assert_has(err.msg, "more than the 1048576 accepted");

    /* A length prefix claiming 4 GiB. */
    static const uint8_t claim[] = {0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01, 0x02};
    ck_assert_int_eq(open_bytes(claim, sizeof claim, &r, &err), BG_EPROTO);

    /* A roster the CA really signed that unpacks into far more memory than
     * its size (400,000 empty members in 800 kB): the capped allocator makes
     * the unpack fail cleanly instead of allocating tens of megabytes. */
    size_t n = 400000, rlen = 2 * n;
    for (size_t i = 0; i < n; i++) {
        big[2 * i] = 0x32; /* field 6 (members), length-delimited */
        big[2 * i + 1] = 0x00;
    }
    uint8_t sig[BG_SIG_MAX], fp[BG_SIG_FP_LEN];
    size_t siglen = 0;
    ck_assert_int_eq(bg_sig_sign(ca_key, BG_SIG_CTX_ROSTER, big, rlen, sig, &siglen, NULL), BG_OK);
    ck_assert_int_eq(bg_sig_fingerprint(ca_cert, fp, NULL), BG_OK);
    Baygate__SignedRoster sr = BAYGATE__SIGNED_ROSTER__INIT;
    sr.roster.data = big;
    sr.roster.len = rlen;
    sr.signature.data = sig;
    sr.signature.len = siglen;
    sr.ca_cert_sha256.data = fp;
    sr.ca_cert_sha256.len = sizeof fp;
    size_t len = baygate__signed_roster__get_packed_size(&sr);
    ck_assert_uint_le(len, BG_ROSTER_FILE_MAX);
    uint8_t *wire = malloc(len);
    ck_assert_ptr_nonnull(wire);
    baygate__signed_roster__pack(&sr, wire);
    ck_assert_int_eq(open_bytes(wire, len, &r, &err), BG_EPROTO);
    ck_assert_has(err.msg, "needs more than");
    ck_assert_ptr_null(r);

    /* Signed but invalid content is refused by the same validation as the INI. */
    Baygate__Roster m = BAYGATE__ROSTER__INIT;
    m.serial = 5;
    m.issued_at_ms = 1;
    m.federation = "F";
    m.max_message_bytes = 65536;
    m.common_scale = "1,2";
    uint8_t small[64];
    size_t slen = baygate__roster__pack(&m, small);
    ck_assert_int_eq(bg_sig_sign(ca_key, BG_SIG_CTX_ROSTER, small, slen, sig, &siglen, NULL),
                     BG_OK);
    sr.roster.data = small;
    sr.roster.len = slen;
    sr.signature.len = siglen;
    len = baygate__signed_roster__pack(&sr, wire);
    ck_assert_int_eq(open_bytes(wire, len, &r, &err), BG_EINVAL);
    ck_assert_has(err.msg, "invalid roster: roster has 0 members");

    /* A signature made for another kind of object (label) does not verify. */
    ck_assert_int_eq(bg_sig_sign(ca_key, BG_SIG_CTX_SNAPSHOT, small, slen, sig, &siglen, NULL),
                     BG_OK);
    sr.signature.len = siglen;
    len = baygate__signed_roster__pack(&sr, wire);
    ck_assert_int_eq(open_bytes(wire, len, &r, &err), BG_ECRYPTO);
    free(wire);
    free(big);
}
END_TEST

/* --- the CLI --- */

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Runs a shell command; returns its exit status. */
static int
run(const char *fmt, ...)
{
    char cmd[4 * PATH_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    ck_assert_int_lt(n, (int)sizeof cmd);
    int st = system(cmd);
    ck_assert_msg(st != -1 && WIFEXITED(st), "could not run %s", cmd);
    return WEXITSTATUS(st);
}

static char *
slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    static char buf[64 * 1024];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

START_TEST(cli_sign_and_show)
{
    if (access(BG_BAYGATE, X_OK) != 0) {
        fprintf(stderr, "test_roster: %s not built; CLI test skipped\n", BG_BAYGATE);
        return;
    }
    const char *b = BG_BAYGATE;
    char *text = mutate(good_template, NULL, "", NULL);
    FILE *f = fopen(at("cli.ini"), "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    free(text);
    char ini[PATH_MAX], out[PATH_MAX], o[PATH_MAX], e[PATH_MAX];
    snprintf(ini, sizeof ini, "%s", at("cli.ini"));
    snprintf(out, sizeof out, "%s", at("cli.pb"));
    snprintf(o, sizeof o, "%s", at("cli.out"));
    snprintf(e, sizeof e, "%s", at("cli.err"));

    ck_assert_int_eq(
        run("%s roster sign --ca %s --out %s %s >%s 2>%s", b, at("ca"), out, ini, o, e), 0);
    ck_assert_has(slurp(o), "signed roster serial 3 (3 members, 2 purposes, 3 permissions)");
    ck_assert_ptr_null(strstr(slurp(o), "PRIVATE"));
    /* Not again with the same serial, unless forced. */
    ck_assert_int_eq(
        run("%s roster sign --ca %s --out %s %s >%s 2>%s", b, at("ca"), out, ini, o, e), 1);
    ck_assert_has(slurp(e), "not greater than the 3 in");
    ck_assert_int_eq(
        run("%s roster sign --ca %s --out %s --force %s >%s 2>%s", b, at("ca"), out, ini, o, e), 0);

    ck_assert_int_eq(run("%s roster show --ca %s %s >%s 2>%s", b, at("ca/ca.crt"), out, o, e), 0);
    char *shown = slurp(o);
    ck_assert_has(shown, "roster serial 3 of Greater Bay Area Credit Federation");
    ck_assert_has(shown, "signature      verified");
    ck_assert_has(shown, "440300 -> 440100  purposes supervision, lending");
    ck_assert_has(shown, "SZ5=AAA,AA,A,B,C -> AAA:1 AA:1 A:2 B:3 C:4");
    ck_assert_has(shown, gz_hex);
    /* --ca may name the CA directory too. */
    ck_assert_int_eq(run("%s roster show --ca %s %s >%s 2>%s", b, at("ca"), out, o, e), 0);
    ck_assert_int_eq(run("%s roster show --json %s >%s 2>%s", b, out, o, e), 0);
    shown = slurp(o);
    ck_assert_has(shown, "{\"serial\":3,");
    ck_assert_has(shown, "\"verified\":false");
    ck_assert_has(shown, "\"grade_map\":{\"AAA\":1,\"AA\":1,\"A\":2,\"B\":3,\"C\":4}");
    ck_assert_int_eq(run("%s roster show %s >%s 2>%s", b, out, o, e), 0);
    ck_assert_has(slurp(o), "NOT VERIFIED");
    /* Another CA: exit 1. */
    ck_assert_int_eq(run("%s roster show --ca %s %s >%s 2>%s", b, at("rogue/ca.crt"), out, o, e),
                     1);
    ck_assert_has(slurp(e), "not by this CA");
    /* An invalid source: exit 1 with file and line. */
    f = fopen(at("bad.ini"), "w");
    ck_assert_ptr_nonnull(f);
    fputs("[federation]\nname = F\nserial = x\n", f);
    fclose(f);
    ck_assert_int_eq(run("%s roster sign --ca %s --out %s %s >%s 2>%s", b, at("ca"), at("bad.pb"),
                         at("bad.ini"), o, e),
                     1);
    ck_assert_has(slurp(e), "bad.ini:3: [federation] serial: 'x' is not a number");
    /* Usage: exit 2; --help: exit 0. */
    ck_assert_int_eq(run("%s roster >%s 2>%s", b, o, e), 2);
    ck_assert_int_eq(run("%s roster sign --ca %s %s >%s 2>%s", b, at("ca"), ini, o, e), 2);
    ck_assert_int_eq(run("%s roster show --force %s >%s 2>%s", b, out, o, e), 2);
    ck_assert_int_eq(run("%s roster show %s >%s 2>%s", b, at("missing.pb"), o, e), 2);
    ck_assert_int_eq(run("%s roster sign --help >%s 2>%s", b, o, e), 0);
    ck_assert_has(slurp(o), "usage: baygate roster sign");
    ck_assert_int_eq(run("%s roster show --help >%s 2>%s", b, o, e), 0);
    ck_assert_int_eq(run("%s help roster >%s 2>%s", b, o, e), 0);
}
END_TEST

/* A rotation: show prints both of a member's pinned certificates. */
START_TEST(cli_show_prints_both_pins)
{
    if (access(BG_BAYGATE, X_OK) != 0)
        return; /* cli_sign_and_show says so */
    const char *b = BG_BAYGATE;
    char o[PATH_MAX], e[PATH_MAX];
    snprintf(o, sizeof o, "%s", at("rot.out"));
    snprintf(e, sizeof e, "%s", at("rot.err"));
    char *text = mutate(good_template, "certificate = gz/city.crt       ; relative to this file\n",
                        "certificate = gz/city.crt\nnext_certificate = gz/city.next.crt\n", NULL);
    FILE *f = fopen(at("rot.ini"), "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    free(text);
    ck_assert_int_eq(run("%s roster sign --ca %s --out %s %s >%s 2>%s", b, at("ca"), at("rot.pb"),
                         at("rot.ini"), o, e),
                     0);
    char next_hex[BG_SIG_FP_HEX_LEN + 1], want[256];
    bg_sig_fp_hex(gz_next_fp, next_hex);
    ck_assert_int_eq(run("%s roster show %s >%s 2>%s", b, at("rot.pb"), o, e), 0);
    snprintf(want, sizeof want, "next cert    sha256 %s", next_hex);
    ck_assert_has(slurp(o), want);
    ck_assert_int_eq(run("%s roster show --json %s >%s 2>%s", b, at("rot.pb"), o, e), 0);
    snprintf(want, sizeof want, "\"cert_sha256\":\"%s\",\"next_cert_sha256\":\"%s\"", gz_hex,
             next_hex);
    ck_assert_has(slurp(o), want);
}
END_TEST

/* --- the fixture: one CA, one rogue CA, three cities --- */

static void
write_cert(bg_pki_ca *ca, const char *city, const char *name, const char *path,
           uint8_t fp[BG_SIG_FP_LEN])
{
    bg_err err = {0};
    EVP_PKEY *key = NULL;
    X509_REQ *req = NULL;
    X509 *x = NULL;
    time_t now = time(NULL);
    if (bg_pki_key_generate(&key, &err) != BG_OK ||
        bg_pki_csr_make(key, city, name, &req, &err) != BG_OK ||
        bg_pki_ca_issue(ca, req, now - 60, now + 30 * 86400, &x, &err) != BG_OK ||
        bg_pki_cert_write(path, x, &err) != BG_OK ||
        (fp != NULL && bg_sig_fingerprint(x, fp, &err) != BG_OK)) {
        fprintf(stderr, "test_roster setup: %s\n", err.msg);
        exit(1);
    }
    X509_free(x);
    X509_REQ_free(req);
    EVP_PKEY_free(key);
}

static void
open_ca(const char *dir, EVP_PKEY **key, X509 **cert, bg_pki_ca **out)
{
    bg_err err = {0};
    if (bg_pki_ca_init(dir, NULL, 3650, &err) != BG_OK || bg_pki_ca_open(out, dir, &err) != BG_OK) {
        fprintf(stderr, "test_roster setup: %s\n", err.msg);
        exit(1);
    }
    *key = bg_pki_ca_key(*out);
    *cert = bg_pki_ca_cert(*out);
    EVP_PKEY_up_ref(*key);
    X509_up_ref(*cert);
}

static void
fixture_up(void)
{
    mkdir(BG_TEST_TMPDIR, 0700);
    snprintf(scratch, sizeof scratch, "%s/roster.XXXXXX", BG_TEST_TMPDIR);
    if (mkdtemp(scratch) == NULL) {
        perror("mkdtemp");
        exit(1);
    }
    bg_pki_ca *ca = NULL, *rogue = NULL;
    open_ca(at("ca"), &ca_key, &ca_cert, &ca);
    open_ca(at("rogue"), &rogue_key, &rogue_cert, &rogue);
    uint8_t fp[BG_SIG_FP_LEN];
    mkdir(at("gz"), 0700);
    mkdir(at("sz"), 0700);
    mkdir(at("fs"), 0700);
    write_cert(ca, "440100", "Guangzhou", at("gz/city.crt"), gz_fp);
    write_cert(ca, "440100", "Guangzhou", at("gz/city.next.crt"), gz_next_fp);
    write_cert(ca, "440300", "Shenzhen", at("sz/city.crt"), NULL);
    write_cert(ca, "440600", "Foshan", at("fs/city.crt"), fp);
    write_cert(rogue, "440100", "Guangzhou", at("rogue-gz.crt"), NULL);
    bg_sig_fp_hex(fp, fs_hex);
    bg_sig_fp_hex(gz_fp, gz_hex);
    /* Closed again: the CLI test opens the CA directory itself (its lock). */
    bg_pki_ca_close(ca);
    bg_pki_ca_close(rogue);
}

static void
fixture_down(void)
{
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(rogue_key);
    X509_free(ca_cert);
    X509_free(rogue_cert);
    nftw(scratch, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    ERR_clear_error();
}

static Suite *
roster_suite(void)
{
    Suite *s = suite_create("roster");
    TCase *ini = tcase_create("ini");
    tcase_add_test(ini, ini_good_parses_into_the_roster);
    tcase_add_loop_test(ini, ini_refused_with_message, 0, (int)NBAD);
    tcase_add_test(ini, ini_counts_are_bounded);
    tcase_add_test(ini, grade_mapping_lookup);
    tcase_add_test(ini, permission_lookup);
    tcase_add_test(ini, next_certificate_is_pinned_too);
    suite_add_tcase(s, ini);

    TCase *wire = tcase_create("signed");
    tcase_set_timeout(wire, 120);
    tcase_add_test(wire, sign_open_round_trip_equals);
    tcase_add_test(wire, file_write_is_atomic_and_loads);
    tcase_add_test(wire, tampered_byte_anywhere_refused);
    tcase_add_test(wire, rogue_ca_with_same_dn_refused);
    tcase_add_test(wire, serials_never_go_back);
    tcase_add_test(wire, truncated_and_garbage_refused);
    tcase_add_test(wire, huge_lengths_refused);
    tcase_add_test(wire, next_pin_on_the_wire);
    suite_add_tcase(s, wire);

    TCase *cli = tcase_create("cli");
    tcase_set_timeout(cli, 120);
    tcase_add_test(cli, cli_sign_and_show);
    tcase_add_test(cli, cli_show_prints_both_pins);
    suite_add_tcase(s, cli);
    return s;
}

int
main(void)
{
    fixture_up();
    SRunner *sr = srunner_create(roster_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    fixture_down();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
