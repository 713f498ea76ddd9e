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
#include "peers/roster_edit.h"
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
     "max_message_bytes: 100 is out of range 16384-67108864", 0},
    {"max_message_bytes = 4194304", "max_message_bytes = 0",
     "max_message_bytes: 0 is out of range 16384-67108864", 0},
    /* Below one PSI chunk answer with its signature; above what a gateway receives (a
     * gateway refused 1 GiB at start while 'roster sign' took it). */
    {"max_message_bytes = 4194304", "max_message_bytes = 16383",
     "max_message_bytes: 16383 is out of range 16384-67108864", 0},
    {"max_message_bytes = 4194304", "max_message_bytes = 67108865",
     "max_message_bytes: 67108865 is out of range 16384-67108864", 0},
    {"max_message_bytes = 4194304", "max_message_bytes = 1073741824",
     "max_message_bytes: 1073741824 is out of range 16384-67108864", 0},
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

/* --- permission defaults: [permission default], '*' sides, deny --- */

/* A copy of r's serialised Roster with issued_at_ms set to at (malloc'd): compiling
 * stamps the time, everything else must match byte for byte. */
static uint8_t *
roster_bytes_at(const bg_roster *r, int64_t at, size_t *len)
{
    size_t n = 0;
    const uint8_t *b = bg_roster_bytes(r, &n);
    Baygate__Roster *m = baygate__roster__unpack(NULL, n, b);
    ck_assert_ptr_nonnull(m);
    m->issued_at_ms = at;
    *len = baygate__roster__get_packed_size(m);
    uint8_t *out = malloc(*len);
    ck_assert_ptr_nonnull(out);
    baygate__roster__pack(m, out);
    baygate__roster__free_unpacked(m, NULL);
    return out;
}

/* The good source's members and purposes with perms in place of its permission
 * sections; *first_line gets the line perms starts at. */
static char *
with_perms(const char *perms, size_t *first_line)
{
    const char *cut = strstr(good_template, "[permission 440300 -> 440100]");
    ck_assert_ptr_nonnull(cut);
    size_t head = (size_t)(cut - good_template);
    char *base = malloc(head + 1);
    ck_assert_ptr_nonnull(base);
    memcpy(base, good_template, head);
    base[head] = '\0';
    char *text = mutate(base, NULL, perms, first_line);
    free(base);
    return text;
}

static bg_roster *
parse_perms(const char *perms)
{
    char *text = with_perms(perms, NULL);
    bg_roster *r = NULL;
    bg_err err = {0};
    ck_assert_msg(parse_text(text, &r, &err) == BG_OK, "%s", err.msg);
    free(text);
    return r;
}

static const char default_all[] = "[permission default]           ; every ordered pair\n"
                                  "purposes = supervision\n"
                                  "lists = *                       ; what each answerer offers\n"
                                  "quota_items_per_day = 5000\n"
                                  "min_count_batch = 4\n";

/* perm's fields, or a failed check naming the pair. */
static void
expect_perm(const bg_roster *r, const char *a, const char *b, uint32_t purposes, bool sd, bool ao,
            uint64_t quota, uint32_t batch)
{
    const bg_roster_perm *p = bg_roster_permission_find(r, a, b);
    ck_assert_msg(p != NULL, "no permission %s -> %s", a, b);
    ck_assert_msg(p->purposes == purposes, "%s -> %s purposes %x", a, b, p->purposes);
    ck_assert_msg(p->lists[BG_LIST_SERIOUS_DISHONESTY] == sd &&
                      p->lists[BG_LIST_ABNORMAL_OPERATION] == ao,
                  "%s -> %s lists", a, b);
    ck_assert_uint_eq(p->quota_items_per_day, quota);
    ck_assert_uint_eq(p->min_count_batch, batch);
}

START_TEST(defaults_expand_to_every_pair)
{
    bg_roster *r = parse_perms(default_all);
    /* Three members: 3 x 2 ordered pairs, asker by asker in member order. */
    ck_assert_uint_eq(bg_roster_permission_count(r), 6);
    const char *order[6][2] = {{"440100", "440300"}, {"440100", "440600"}, {"440300", "440100"},
                               {"440300", "440600"}, {"440600", "440100"}, {"440600", "440300"}};
    for (size_t i = 0; i < 6; i++) {
        const bg_roster_perm *p = bg_roster_permission_at(r, i);
        ck_assert_str_eq(p->asker, order[i][0]);
        ck_assert_str_eq(p->answerer, order[i][1]);
    }
    /* lists = *: each answerer's own lists (Foshan offers only serious-dishonesty). */
    expect_perm(r, "440100", "440300", 1, true, true, 5000, 4);
    expect_perm(r, "440300", "440100", 1, true, true, 5000, 4);
    expect_perm(r, "440100", "440600", 1, true, false, 5000, 4);
    expect_perm(r, "440300", "440600", 1, true, false, 5000, 4);
    bg_roster_verdict v;
    ck_assert(
        !bg_roster_permission(r, "440300", "440600", "supervision", "abnormal-operation", &v));
    ck_assert_has(v.reason, "440600 does not offer abnormal-operation");
    ck_assert(bg_roster_permission(r, "440600", "440300", "supervision", "abnormal-operation", &v));
    bg_roster_free(r);

    /* A named list in the default: only the answerers that offer it get it. */
    r = parse_perms("[permission * -> *]\npurposes = lending\nlists = abnormal-operation\n"
                    "quota_items_per_day = 10\nmin_count_batch = 1\n");
    ck_assert_uint_eq(bg_roster_permission_count(r), 4); /* nobody asks Foshan */
    ck_assert_ptr_null(bg_roster_permission_find(r, "440100", "440600"));
    expect_perm(r, "440600", "440100", 2, false, true, 10, 1);
    bg_roster_free(r);

    /* Nine Greater Bay Area cities, one default: the 72 ordered pairs. */
    char *text = malloc(64 * 1024);
    ck_assert_ptr_nonnull(text);
    size_t n = (size_t)snprintf(text, 64 * 1024,
                                "[federation]\nname = F\nserial = 1\nmax_message_bytes = 65536\n"
                                "common_scale = 1,2\n[purpose supervision]\n"
                                "needs_authorisation = false\n");
    const char *gba[9] = {"440100", "440300", "440400", "440600", "441900",
                          "442000", "441300", "440700", "441200"};
    for (int i = 0; i < 9; i++)
        n += (size_t)snprintf(text + n, 64 * 1024 - n,
                              "[member %s]\nname = M%d\nendpoint = tls+tcp://10.0.0.1:%d\n"
                              "fingerprint = %064x\nlists = serious-dishonesty\nscale = 1,2\n"
                              "grade_map = 1:1, 2:2\n",
                              gba[i], i, 7000 + i, i + 1);
    snprintf(text + n, 64 * 1024 - n, "%s", default_all);
    bg_err err = {0};
    ck_assert_msg(parse_text(text, &r, &err) == BG_OK, "%s", err.msg);
    ck_assert_uint_eq(bg_roster_permission_count(r), 72);
    for (int a = 0; a < 9; a++)
        for (int b = 0; b < 9; b++)
            ck_assert(a == b ? bg_roster_permission_find(r, gba[a], gba[b]) == NULL
                             : bg_roster_permission_find(r, gba[a], gba[b]) != NULL);
    bg_roster_free(r);
    free(text);
}
END_TEST

START_TEST(defaults_overridden)
{
    bg_roster *r = parse_perms("[permission 440300 -> 440100]   ; this pair: its own terms\n"
                               "purposes = supervision, lending\n"
                               "lists = serious-dishonesty\n"
                               "quota_items_per_day = 7\n"
                               "min_count_batch = 16\n"
                               "\n"
                               "[permission * -> 440600]         ; whoever asks Foshan\n"
                               "purposes = lending\n"
                               "lists = *\n"
                               "quota_items_per_day = 3\n"
                               "min_count_batch = 1\n"
                               "\n"
                               "[permission 440600 -> *]         ; Foshan asks nobody\n"
                               "deny = true\n"
                               "\n"
                               "[permission 440300 -> 440600]   ; nor Shenzhen Foshan\n"
                               "deny = true\n"
                               "\n"
                               "[permission default]\n"
                               "purposes = supervision\n"
                               "lists = *\n"
                               "quota_items_per_day = 5000\n"
                               "min_count_batch = 4\n");
    /* The pair section wins over the default (wherever the default stands)... */
    expect_perm(r, "440300", "440100", 3, true, false, 7, 16);
    /* ...[* -> 440600] over the default for an asker of Foshan... */
    expect_perm(r, "440100", "440600", 2, true, false, 3, 1);
    /* ...the default gives what nothing else names... */
    expect_perm(r, "440100", "440300", 1, true, true, 5000, 4);
    /* ...and deny forbids, in a pair section over [* -> 440600], in [440600 -> *] over
     * the default. */
    ck_assert_ptr_null(bg_roster_permission_find(r, "440300", "440600"));
    ck_assert_ptr_null(bg_roster_permission_find(r, "440600", "440100"));
    ck_assert_ptr_null(bg_roster_permission_find(r, "440600", "440300"));
    ck_assert_uint_eq(bg_roster_permission_count(r), 3);
    bg_roster_verdict v;
    ck_assert(
        !bg_roster_permission(r, "440600", "440100", "supervision", "serious-dishonesty", &v));
    ck_assert_has(v.reason, "440600 may not ask 440100 anything");
    bg_roster_free(r);

    /* [A -> *] and [* -> B] meeting at A -> B: a deny in either one wins. No default: a
     * pair nothing names has no permission. */
    r = parse_perms("[permission 440300 -> *]\npurposes = supervision\nlists = *\n"
                    "quota_items_per_day = 9\nmin_count_batch = 1\n"
                    "[permission * -> 440600]\ndeny = true\n");
    expect_perm(r, "440300", "440100", 1, true, true, 9, 1);
    ck_assert_uint_eq(bg_roster_permission_count(r), 1);
    bg_roster_free(r);
}
END_TEST

/* A default form and the per-pair form it stands for compile to the same bytes. */
START_TEST(defaults_equal_the_pairs_they_stand_for)
{
    char *a = with_perms(default_all, NULL);
    static const char pairs[][3][8] = {
        {"440100", "440300", "sd, ao"}, {"440100", "440600", "sd"},
        {"440300", "440100", "sd, ao"}, {"440300", "440600", "sd"},
        {"440600", "440100", "sd, ao"}, {"440600", "440300", "sd, ao"}};
    char perms[4096];
    size_t n = 0;
    for (size_t i = 0; i < 6; i++)
        n += (size_t)snprintf(perms + n, sizeof perms - n,
                              "[permission %s -> %s]\npurposes = supervision\nlists = %s\n"
                              "quota_items_per_day = 5000\nmin_count_batch = 4\n",
                              pairs[i][0], pairs[i][1],
                              strcmp(pairs[i][2], "sd") == 0
                                  ? "serious-dishonesty"
                                  : "serious-dishonesty, abnormal-operation");
    char *b = with_perms(perms, NULL);
    bg_roster *ra = NULL, *rb = NULL;
    bg_err err = {0};
    ck_assert_msg(parse_text(a, &ra, &err) == BG_OK, "%s", err.msg);
    ck_assert_msg(parse_text(b, &rb, &err) == BG_OK, "%s", err.msg);
    size_t la = 0, lb = 0;
    uint8_t *ba = roster_bytes_at(ra, 1, &la), *bb = roster_bytes_at(rb, 1, &lb);
    ck_assert_uint_eq(la, lb);
    ck_assert_mem_eq(ba, bb, la);
    free(ba);
    free(bb);
    bg_roster_free(ra);
    bg_roster_free(rb);
    free(a);
    free(b);
}
END_TEST

/* A file of pair sections (tests/data/roster_per_pair.ini) compiles to exactly the
 * bytes it did before permission defaults existed (roster_per_pair.hex, made then). */
START_TEST(per_pair_file_compiles_as_before)
{
    bg_roster *r = NULL;
    bg_err err = {0};
    ck_assert_msg(bg_roster_parse_ini(BG_TEST_DATA "/roster_per_pair.ini", NULL, &r, &err) == BG_OK,
                  "%s", err.msg);
    ck_assert_uint_eq(bg_roster_permission_count(r), 4);
    size_t len = 0;
    uint8_t *got = roster_bytes_at(r, 1, &len);
    FILE *f = fopen(BG_TEST_DATA "/roster_per_pair.hex", "r");
    ck_assert_ptr_nonnull(f);
    uint8_t want[4096];
    size_t wn = 0;
    unsigned byte;
    while (wn < sizeof want && fscanf(f, "%2x", &byte) == 1)
        want[wn++] = (uint8_t)byte;
    fclose(f);
    ck_assert_uint_gt(wn, 500);
    ck_assert_uint_eq(len, wn);
    ck_assert_mem_eq(got, want, wn);
    free(got);
    bg_roster_free(r);
}
END_TEST

/* Broken permission sections of the new kinds, each with its message and the line (of
 * perms, counted from 0) it must name. */
static const struct {
    const char *perms, *expect;
    int line;
} default_bad[] = {
    {"[permission default]\npurposes = supervision\nlists = serious-dishonesty, grey\n"
     "quota_items_per_day = 1\nmin_count_batch = 1\n",
     "[permission default] lists: unknown list 'grey'", 2},
    {"[permission default]\npurposes = supervision\nlists = *, serious-dishonesty\n"
     "quota_items_per_day = 1\nmin_count_batch = 1\n",
     "lists: '*' (every list the answerer offers) stands alone", 2},
    {"[permission default]\npurposes = marketing\nlists = *\n"
     "quota_items_per_day = 1\nmin_count_batch = 1\n",
     "[permission default] purposes: purpose 'marketing' is not declared", 1},
    {"[permission default]\npurposes =\nlists = *\nquota_items_per_day = 1\nmin_count_batch = 1\n",
     "needs at least one purpose (deny = true forbids)", 1},
    {"[permission default]\npurposes = supervision\nlists = *\nquota_items_per_day = 1\n",
     "[permission default] min_count_batch is required", 0},
    {"[permission default]\npurposes = supervision\nlists = *\nquota_items_per_day = 0\n"
     "min_count_batch = 1\n",
     "[permission default] quota_items_per_day: 0 is out of range", 3},
    {"[permission * -> 440600]\npurposes = supervision\nlists = abnormal-operation\n"
     "quota_items_per_day = 1\nmin_count_batch = 1\n",
     "[permission * -> 440600] lists: 440600 does not offer abnormal-operation", 2},
    {"[permission 440999 -> *]\ndeny = true\n",
     "[permission 440999 -> *] asker 440999 is not a member", 0},
    {"[permission 440300 -> *]\npurposes = supervision\nlists = *\nquota_items_per_day = 1\n"
     "min_count_batch = 1\n[permission * -> 440100]\npurposes = lending\nlists = *\n"
     "quota_items_per_day = 1\nmin_count_batch = 1\n",
     "[permission 440300 -> *] (line ", 5},
    {"[permission default]\ndeny = true\npurposes = supervision\n",
     "[permission default]: deny = true forbids what the section names; it takes no other key", 1},
    {"[permission default]\ndeny = maybe\n", "[permission default] deny: expected true or false",
     1},
    {"[permission default]\ndeny = true\ndeny = true\n", "deny given twice (first at line", 2},
    {"[permission default]\ndeny = true\n[permission * -> *]\ndeny = true\n",
     "given twice (first at line", 2},
    {"[permission 440100 -> *]\ndeny = true\n  440300\n", "an indented line continues", 2},
    /* A second section for a pair must not undo the first one's deny. */
    {"[permission 440100 -> 440300]\ndeny = true\n[permission 440100 -> 440300]\n"
     "purposes = supervision\nlists = *\nquota_items_per_day = 1\nmin_count_batch = 1\n",
     "[permission 440100 -> 440300] appears twice (first at line", 2},
    {"[permission 440100 -> 440100]\ndeny = true\n", "asker and answerer are the same city", 0},
    {"[permission 440999 -> 440998]\ndeny = true\n", "names a city that is not a member", 0},
    {"[permission 440100 -> all]\ndeny = true\n", "expected two 6-digit city codes", 0},
};

/* '*' sections are bounded (each member's two and the default), so a huge source of
 * them cannot make the compiler's pairing quadratic in the file. */
START_TEST(defaults_bounded)
{
    char *perms = malloc(64 * 1024);
    ck_assert_ptr_nonnull(perms);
    size_t n = 0;
    for (int i = 0; i < 130; i++)
        n += (size_t)snprintf(perms + n, 64 * 1024 - n, "[permission %06d -> *]\ndeny = true\n",
                              441000 + i);
    size_t first = 0;
    char *text = with_perms(perms, &first);
    bg_roster *r = NULL;
    bg_err err = {0};
    ck_assert_int_eq(parse_text(text, &r, &err), BG_ELIMIT);
    char want[96];
    snprintf(want, sizeof want, "roster.ini:%zu: more than 129 [permission] sections with a '*'",
             first + 129 * 2);
    ck_assert_str_eq(err.msg, want);
    free(text);
    free(perms);
}
END_TEST

/* A default that names a list no member offers is a mistake, named with its line. */
START_TEST(default_list_nobody_offers)
{
    size_t first = 0;
    char *text = with_perms("[permission default]\npurposes = supervision\n"
                            "lists = serious-dishonesty, abnormal-operation\n"
                            "quota_items_per_day = 1\nmin_count_batch = 1\n",
                            &first);
    /* Nobody offers abnormal-operation any more. */
    char *t1 = mutate(text,
                      "[member 440100]\nname = Guangzhou\nendpoint = tls+tcp://127.0.0.1:7501\n"
                      "certificate = gz/city.crt       ; relative to this file\n"
                      "lists = serious-dishonesty, abnormal-operation",
                      "[member 440100]\nname = Guangzhou\nendpoint = tls+tcp://127.0.0.1:7501\n"
                      "certificate = gz/city.crt       ; relative to this file\n"
                      "lists = serious-dishonesty",
                      NULL);
    char *t2 =
        mutate(t1, "certificate = sz/city.crt\nlists = serious-dishonesty, abnormal-operation",
               "certificate = sz/city.crt\nlists = serious-dishonesty", NULL);
    bg_roster *r = NULL;
    bg_err err = {0};
    ck_assert_int_eq(parse_text(t2, &r, &err), BG_EINVAL);
    char want[160];
    snprintf(want, sizeof want,
             "roster.ini:%zu: [permission default] lists: no member it applies to offers "
             "abnormal-operation",
             first + 2);
    ck_assert_str_eq(err.msg, want);
    /* With one member offering it again, it compiles. */
    ck_assert_msg(parse_text(t1, &r, &err) == BG_OK, "%s", err.msg);
    bg_roster_free(r);
    free(t2);
    free(t1);
    free(text);
}
END_TEST

START_TEST(defaults_refused_with_line)
{
    size_t first = 0;
    char *text = with_perms(default_bad[_i].perms, &first);
    bg_roster *r = NULL;
    bg_err err = {0};
    int rc = parse_text(text, &r, &err);
    free(text);
    ck_assert_msg(rc != BG_OK, "case %d (%s) was accepted", _i, default_bad[_i].expect);
    ck_assert_has(err.msg, default_bad[_i].expect);
    char prefix[64];
    snprintf(prefix, sizeof prefix, "roster.ini:%zu: ", first + (size_t)default_bad[_i].line);
    ck_assert_msg(strncmp(err.msg, prefix, strlen(prefix)) == 0, "case %d: '%s' is not at %s", _i,
                  err.msg, prefix);
}
END_TEST

/* --- editing the source: roster add-member, remove-member --- */

static void write_cert(bg_pki_ca *ca, const char *city, const char *name, const char *path,
                       uint8_t fp[BG_SIG_FP_LEN]);

/* scratch/zh/city.crt: a certificate of Zhuhai 440400 from the CA, made once. */
static void
zhuhai_cert(void)
{
    if (access(at("zh/city.crt"), R_OK) == 0)
        return;
    bg_pki_ca *ca = NULL;
    bg_err err = {0};
    ck_assert_msg(bg_pki_ca_open(&ca, at("ca"), &err) == BG_OK, "%s", err.msg);
    mkdir(at("zh"), 0700);
    write_cert(ca, "440400", "Zhuhai", at("zh/city.crt"), NULL);
    bg_pki_ca_close(ca);
}

static const bg_roster_new_member zhuhai = {"440400",
                                            "Zhuhai",
                                            "tls+tcp://127.0.0.1:7504",
                                            "zh/city.crt",
                                            "serious-dishonesty",
                                            "ABCD=A,B,C,D",
                                            "A:1, B:2, C:3, D:4"};

START_TEST(edit_add_member_keeps_the_rest)
{
    zhuhai_cert();
    char *text = with_perms(default_all, NULL);
    char *out = NULL;
    size_t n = 0;
    uint64_t serial = 0;
    bg_err err = {0};
    ck_assert_msg(bg_roster_edit_add_member(text, strlen(text), &zhuhai, &out, &n, &serial, &err) ==
                      BG_OK,
                  "%s", err.msg);
    ck_assert_uint_eq(serial, 4);
    ck_assert_uint_eq(n, strlen(out));
    /* Exactly: the serial raised and the section after the last member, nothing else. */
    char *e1 = mutate(text, "serial = 3", "serial = 4", NULL);
    char *want = mutate(e1, "grade_map = A:1, B:2, C:3, D:4\n\n[permission default]",
                        "grade_map = A:1, B:2, C:3, D:4\n\n[member 440400]\nname = Zhuhai\n"
                        "endpoint = tls+tcp://127.0.0.1:7504\ncertificate = zh/city.crt\n"
                        "lists = serious-dishonesty\nscale = ABCD=A,B,C,D\n"
                        "grade_map = A:1, B:2, C:3, D:4\n\n[permission default]",
                        NULL);
    ck_assert_str_eq(out, want);
    /* It compiles, and the default gives Zhuhai its pairs both ways. */
    bg_roster *r = NULL;
    ck_assert_msg(parse_text(out, &r, &err) == BG_OK, "%s", err.msg);
    ck_assert_uint_eq(bg_roster_member_count(r), 4);
    ck_assert_uint_eq(bg_roster_permission_count(r), 12);
    expect_perm(r, "440400", "440100", 1, true, true, 5000, 4);
    expect_perm(r, "440100", "440400", 1, true, false, 5000, 4);
    bg_roster_free(r);

    /* Not twice; values that would not stand on their line are refused. */
    char *again = NULL;
    ck_assert_int_eq(bg_roster_edit_add_member(out, n, &zhuhai, &again, &n, &serial, &err),
                     BG_EEXIST);
    ck_assert_has(err.msg, "440400 is a member already ([member 440400] at line");
    bg_roster_new_member bad = zhuhai;
    const char *names[] = {"Zhu\nhai", " Zhuhai", "Zhuhai ; x", "#1", ""};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        bad.name = names[i];
        ck_assert_int_eq(
            bg_roster_edit_add_member(text, strlen(text), &bad, &again, &n, &serial, &err),
            BG_EINVAL);
        ck_assert_ptr_null(again);
    }
    bad = zhuhai;
    bad.city = "4404";
    ck_assert_int_eq(bg_roster_edit_add_member(text, strlen(text), &bad, &again, &n, &serial, &err),
                     BG_EINVAL);
    ck_assert_int_eq(
        bg_roster_edit_add_member("[member 440100]\n", 16, &zhuhai, &again, &n, &serial, &err),
        BG_EINVAL);
    ck_assert_has(err.msg, "no serial in [federation]");
    free(out);
    free(want);
    free(e1);
    free(text);
}
END_TEST

static const char perms_with_foshan[] = "[permission 440300 -> 440600]\n"
                                        "purposes = supervision\n"
                                        "lists = serious-dishonesty\n"
                                        "quota_items_per_day = 1\n"
                                        "min_count_batch = 1\n"
                                        "\n"
                                        "; Foshan asks nobody\n"
                                        "[permission 440600 -> *]\n"
                                        "deny = true\n"
                                        "\n"
                                        "[permission default]\n"
                                        "purposes = supervision\n"
                                        "lists = *\n"
                                        "quota_items_per_day = 5000\n"
                                        "min_count_batch = 4\n"
                                        "[permission * -> 440600]   ; Foshan's terms\n"
                                        "purposes = lending\n"
                                        "lists = *\n"
                                        "quota_items_per_day = 3\n"
                                        "min_count_batch = 1\n";

START_TEST(edit_remove_member_takes_its_sections)
{
    char *text = with_perms(perms_with_foshan, NULL);
    char *out = NULL;
    size_t n = 0, removed = 0;
    uint64_t serial = 0;
    bg_err err = {0};
    ck_assert_msg(bg_roster_edit_remove_member(text, strlen(text), "440600", &out, &n, &removed,
                                               &serial, &err) == BG_OK,
                  "%s", err.msg);
    ck_assert_uint_eq(removed, 4); /* its member section and every section naming it */
    ck_assert_uint_eq(serial, 4);
    /* Exactly those sections (and a blank line where two would meet); every other line,
     * comments included, as it was. */
    char *e1 = mutate(text, "serial = 3", "serial = 4", NULL);
    char foshan[512];
    snprintf(foshan, sizeof foshan,
             "\n[member 440600]\nname = Foshan\nendpoint = tls+tcp://[::1]:7503\n"
             "fingerprint = %s\nlists = serious-dishonesty\nscale = ABCD=A,B,C,D\n"
             "grade_map = A:1, B:2, C:3, D:4\n\n[permission 440300 -> 440600]\n"
             "purposes = supervision\nlists = serious-dishonesty\n"
             "quota_items_per_day = 1\nmin_count_batch = 1\n",
             fs_hex);
    char *e2 = mutate(e1, foshan, "", NULL);
    char *e3 = mutate(e2, "[permission 440600 -> *]\ndeny = true\n", "", NULL);
    char *want = mutate(e3,
                        "[permission * -> 440600]   ; Foshan's terms\npurposes = lending\n"
                        "lists = *\nquota_items_per_day = 3\nmin_count_batch = 1\n",
                        "", NULL);
    ck_assert_str_eq(out, want);
    ck_assert_ptr_null(strstr(out, "440600"));
    bg_roster *r = NULL;
    ck_assert_msg(parse_text(out, &r, &err) == BG_OK, "%s", err.msg);
    ck_assert_uint_eq(bg_roster_member_count(r), 2);
    ck_assert_uint_eq(bg_roster_permission_count(r), 2);
    bg_roster_free(r);

    char *again = NULL;
    ck_assert_int_eq(
        bg_roster_edit_remove_member(out, n, "440600", &again, &n, &removed, &serial, &err),
        BG_ENOTFOUND);
    ck_assert_has(err.msg, "440600 is not a member");
    ck_assert_int_eq(bg_roster_edit_remove_member(out, n, "*", &again, &n, &removed, &serial, &err),
                     BG_EINVAL);
    free(want);
    free(e3);
    free(e2);
    free(e1);
    free(out);
    free(text);
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

    /* A signed roster whose max_message_bytes no gateway can run with: refused at load,
     * naming the field and the bounds. */
    uint32_t absurd[] = {0, 1024, BG_ROSTER_MESSAGE_MAX + 1, 1u << 30};
    for (size_t i = 0; i < sizeof absurd / sizeof absurd[0]; i++) {
        m.max_message_bytes = absurd[i];
        slen = baygate__roster__pack(&m, small);
        ck_assert_int_eq(bg_sig_sign(ca_key, BG_SIG_CTX_ROSTER, small, slen, sig, &siglen, NULL),
                         BG_OK);
        sr.roster.len = slen;
        sr.signature.len = siglen;
        len = baygate__signed_roster__pack(&sr, wire);
        ck_assert_int_eq(open_bytes(wire, len, &r, &err), BG_EINVAL);
        ck_assert_has(err.msg, "max_message_bytes");
        ck_assert_has(err.msg, "out of range 16384-67108864");
    }
    m.max_message_bytes = 65536;
    slen = baygate__roster__pack(&m, small);

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

/* add-member and remove-member through the binary: the file edited in place, then signed. */
START_TEST(cli_add_and_remove_member)
{
    if (access(BG_BAYGATE, X_OK) != 0) {
        fprintf(stderr, "test_roster: %s not built; CLI test skipped\n", BG_BAYGATE);
        return;
    }
    zhuhai_cert();
    const char *b = BG_BAYGATE;
    char ini[PATH_MAX], pb[PATH_MAX], o[PATH_MAX], e[PATH_MAX], ca[PATH_MAX], zh[PATH_MAX];
    snprintf(ini, sizeof ini, "%s", at("members.ini"));
    snprintf(pb, sizeof pb, "%s", at("members.pb"));
    snprintf(o, sizeof o, "%s", at("members.out"));
    snprintf(e, sizeof e, "%s", at("members.err"));
    snprintf(ca, sizeof ca, "%s", at("ca"));
    snprintf(zh, sizeof zh, "%s", at("zh/city.crt"));
    char *text = with_perms(default_all, NULL);
    FILE *f = fopen(ini, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    free(text);

#define ADD_ZHUHAI                                                                                 \
    "%s roster add-member --ini %s --city 440400 --name Zhuhai "                                   \
    "--endpoint tls+tcp://127.0.0.1:7504 --certificate %s --lists serious-dishonesty "             \
    "--scale ABCD=A,B,C,D --grade-map 'A:1, B:2, C:3, D:4' --ca %s >%s 2>%s"
    ck_assert_int_eq(run(ADD_ZHUHAI, b, ini, zh, ca, o, e), 0);
    char *said = slurp(o);
    ck_assert_has(said, "added member 440400 (Zhuhai) to ");
    ck_assert_has(said, "serial 4; it may ask 3 members and be asked by 3");
    ck_assert_has(said, "next: baygate roster sign --ca ");
    /* The certificate as the source reads it: relative to the file's directory. */
    ck_assert_has(slurp(ini), "\ncertificate = zh/city.crt\n");
    ck_assert_int_eq(run("%s roster sign --ca %s --out %s %s >%s 2>%s", b, ca, pb, ini, o, e), 0);
    ck_assert_has(slurp(o), "signed roster serial 4 (4 members, 2 purposes, 12 permissions)");
    /* Again: a member already (exit 1), the file untouched. */
    ck_assert_int_eq(run(ADD_ZHUHAI, b, ini, zh, ca, o, e), 1);
    ck_assert_has(slurp(e), "440400 is a member already");
    ck_assert_has(slurp(ini), "serial = 4\n");

    ck_assert_int_eq(run("%s roster remove-member --ini %s --city 440400 >%s 2>%s", b, ini, o, e),
                     0);
    ck_assert_has(slurp(o), "removed member 440400 from ");
    ck_assert_has(slurp(o), "(1 section), serial 5; 3 members left");
    ck_assert_ptr_null(strstr(slurp(ini), "440400"));
    ck_assert_int_eq(run("%s roster sign --ca %s --out %s %s >%s 2>%s", b, ca, pb, ini, o, e), 0);
    ck_assert_int_eq(run("%s roster show %s >%s 2>%s", b, pb, o, e), 0);
    ck_assert_has(slurp(o), "members (3):");
    ck_assert_ptr_null(strstr(slurp(o), "440400"));
    ck_assert_int_eq(run("%s roster remove-member --ini %s --city 440400 >%s 2>%s", b, ini, o, e),
                     1);
    /* An edit that would not compile leaves the file as it was (exit 1). */
    ck_assert_int_eq(run("%s roster add-member --ini %s --city 440400 --name Zhuhai "
                         "--endpoint tls+tcp://127.0.0.1:7501 --certificate %s --lists '' "
                         "--scale ABCD=A,B,C,D --grade-map 'A:1, B:2, C:3, D:4' >%s 2>%s",
                         b, ini, zh, o, e),
                     1);
    ck_assert_has(slurp(e), "is also the endpoint of member 440100");
    ck_assert_has(slurp(ini), "serial = 5\n");
    /* Usage: exit 2. */
    ck_assert_int_eq(run("%s roster add-member --ini %s --city 440400 >%s 2>%s", b, ini, o, e), 2);
    ck_assert_int_eq(
        run("%s roster remove-member --ini %s --city 440100 --name X >%s 2>%s", b, ini, o, e), 2);
    ck_assert_int_eq(run("%s roster add-member --help >%s 2>%s", b, o, e), 0);
    ck_assert_has(slurp(o), "usage: baygate roster add-member");
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

    TCase *defaults = tcase_create("permission defaults");
    tcase_add_test(defaults, defaults_expand_to_every_pair);
    tcase_add_test(defaults, defaults_overridden);
    tcase_add_test(defaults, defaults_equal_the_pairs_they_stand_for);
    tcase_add_test(defaults, per_pair_file_compiles_as_before);
    tcase_add_test(defaults, default_list_nobody_offers);
    tcase_add_test(defaults, defaults_bounded);
    tcase_add_loop_test(defaults, defaults_refused_with_line, 0,
                        (int)(sizeof default_bad / sizeof default_bad[0]));
    suite_add_tcase(s, defaults);

    TCase *edit = tcase_create("edit");
    tcase_add_test(edit, edit_add_member_keeps_the_rest);
    tcase_add_test(edit, edit_remove_member_takes_its_sections);
    suite_add_tcase(s, edit);

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
    tcase_add_test(cli, cli_add_and_remove_member);
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
