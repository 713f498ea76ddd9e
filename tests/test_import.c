/*
 * test_import.c - the credit store and the validated, atomic import.
 *
 * Test data is built here (valid USCCs from a counter with both check
 * characters computed), so these tests depend only on bg_store. Each test
 * works in its own directory under BG_TEST_TMPDIR. "Unchanged" for a store is
 * checked with counts plus a SHA-256 over every row of every table.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "domain/date.h"
#include "domain/uscc.h"
#include "gateway/record/csv.h"
#include "gateway/record/record.h"
#include "gateway/store/import.h"
#include "gateway/store/store.h"

/* ---- helpers ---- */

static void
make_dir(char *out, size_t outsz)
{
    snprintf(out, outsz, "%s/import-XXXXXX", BG_TEST_TMPDIR);
    mkdir(BG_TEST_TMPDIR, 0700);
    ck_assert_ptr_nonnull(mkdtemp(out));
}

static void
path_in(char *out, size_t outsz, const char *dir, const char *name)
{
    snprintf(out, outsz, "%s/%s", dir, name);
}

/* A valid USCC: "91440300" + 8 digits of n + organisation check + check character. */
static void
make_uscc(uint64_t n, char out[19])
{
    char org8[9];
    unsigned long long v = n % 100000000;
    for (int i = 7; i >= 0; i--, v /= 10)
        org8[i] = (char)('0' + v % 10);
    org8[8] = '\0';
    memcpy(out, "91440300", 8);
    memcpy(out + 8, org8, 8);
    out[16] = bg_uscc_org_check_char(org8);
    out[17] = bg_uscc_check_char(out);
    out[18] = '\0';
}

/* make_uscc with a wrong check character; *want gets the right one. */
static void
bad_uscc(uint64_t n, char out[19], char *want)
{
    make_uscc(n, out);
    *want = out[17];
    out[17] = out[17] == '0' ? '1' : '0';
}

static const char *
U(uint64_t n)
{
    static char pool[16][19];
    static int next;
    char *u = pool[next++ % 16];
    make_uscc(n, u);
    return u;
}

/* The first n' >= n whose code has a letter in it, so case folding shows. */
static uint64_t
lettered(uint64_t n)
{
    for (;; n++) {
        char u[19];
        make_uscc(n, u);
        for (int i = 0; i < 18; i++)
            if (u[i] >= 'A' && u[i] <= 'Z')
                return n;
    }
}

/* U(n) in lower case. */
static void
lower_uscc(uint64_t n, char out[19])
{
    make_uscc(n, out);
    for (char *p = out; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
}

static char header[512];

static const char *
hdr(void)
{
    if (header[0] == '\0')
        bg_record_header(header, sizeof header);
    return header;
}

static void
write_file(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
}

static void
write_str(const char *path, const char *data)
{
    write_file(path, data, strlen(data));
}

/*
 * Row i of the standard data: grade A..D or none by i % 5, on serious-dishonesty every
 * 97th row, on abnormal-operation every 19th. variant 1 shifts the grades (so every
 * row graded in both variants becomes a change).
 */
static void
std_row(FILE *f, uint64_t i, int variant)
{
    char u[19];
    make_uscc(i, u);
    int g = (int)((i + (uint64_t)variant) % 5);
    fprintf(f, "%s,测试科技有限公司%llu号,", u, (unsigned long long)i);
    if (g < 4)
        fprintf(f, "%c,2024-01-15,2026-01-14,", "ABCD"[g]);
    else
        fprintf(f, ",,,");
    if (i % 97 == 0)
        fprintf(f, "\"court order, unpaid\",2023-05-01,2026-05-01,");
    else
        fprintf(f, ",,,");
    if (i % 19 == 0)
        fprintf(f, "unreachable at registered address,2024-02-03,\n");
    else
        fprintf(f, ",,\n");
}

static void
write_std(const char *path, uint64_t first, uint64_t count, int variant)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    fputs(hdr(), f);
    for (uint64_t i = first; i < first + count; i++)
        std_row(f, i, variant);
    ck_assert_int_eq(fclose(f), 0);
}

static bg_store *
open_store(const char *dir)
{
    bg_store *s = NULL;
    bg_err err;
    int rc = bg_store_open(&s, dir, "440300", NULL, &err);
    ck_assert_msg(rc == BG_OK, "open: %s", err.msg);
    return s;
}

static int
import(bg_store *s, const char *path, const bg_import_opts *o, bg_import_result *r, bg_err *err)
{
    return bg_import_file(s, path, o, r, err);
}

/* Imports and insists on success. */
static void
import_ok(bg_store *s, const char *path, const bg_import_opts *o, bg_import_result *r)
{
    bg_err err;
    int rc = import(s, path, o, r, &err);
    ck_assert_msg(rc == BG_OK, "import %s: %d %s", path, rc, err.msg);
}

/* SHA-256 over every row of every table, in key order: equal digests, equal stores. */
static void
store_digest(bg_store *s, char out[65])
{
    static const char *const q[] = {
        "SELECT key, value FROM meta ORDER BY key",
        "SELECT * FROM enterprises ORDER BY uscc",
        "SELECT * FROM list_entries ORDER BY list, uscc",
        "SELECT * FROM evaluations ORDER BY uscc",
        "SELECT * FROM imports ORDER BY id",
    };
    crypto_hash_sha256_state h;
    crypto_hash_sha256_init(&h);
    for (size_t i = 0; i < sizeof q / sizeof q[0]; i++) {
        sqlite3_stmt *st = NULL;
        ck_assert_int_eq(sqlite3_prepare_v2(bg_store_db(s), q[i], -1, &st, NULL), SQLITE_OK);
        while (sqlite3_step(st) == SQLITE_ROW) {
            for (int c = 0; c < sqlite3_column_count(st); c++) {
                unsigned char tag = (unsigned char)sqlite3_column_type(st, c);
                const unsigned char *v = sqlite3_column_text(st, c);
                uint32_t len = (uint32_t)sqlite3_column_bytes(st, c);
                crypto_hash_sha256_update(&h, &tag, 1);
                crypto_hash_sha256_update(&h, (const unsigned char *)&len, sizeof len);
                if (v != NULL)
                    crypto_hash_sha256_update(&h, v, len);
            }
        }
        sqlite3_finalize(st);
    }
    unsigned char d[32];
    crypto_hash_sha256_final(&h, d);
    for (int i = 0; i < 32; i++)
        sprintf(out + 2 * i, "%02x", d[i]);
}

typedef struct snapshot {
    bg_store_counts counts;
    char digest[65];
} snapshot;

static void
snap(bg_store *s, snapshot *out)
{
    bg_err err;
    ck_assert_int_eq(bg_store_counts_get(s, &out->counts, &err), BG_OK);
    store_digest(s, out->digest);
}

static void
assert_same(const snapshot *a, const snapshot *b)
{
    ck_assert_mem_eq(&a->counts, &b->counts, sizeof a->counts);
    ck_assert_str_eq(a->digest, b->digest);
}

/* Runs a query returning one integer. */
static int64_t
q_int(bg_store *s, const char *sql)
{
    sqlite3_stmt *st = NULL;
    ck_assert_int_eq(sqlite3_prepare_v2(bg_store_db(s), sql, -1, &st, NULL), SQLITE_OK);
    ck_assert_int_eq(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* Runs a query returning one text value (NULL as "(null)") into a static buffer. */
static const char *
q_text(bg_store *s, const char *sql)
{
    static char buf[2048];
    sqlite3_stmt *st = NULL;
    ck_assert_int_eq(sqlite3_prepare_v2(bg_store_db(s), sql, -1, &st, NULL), SQLITE_OK);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW)
        snprintf(buf, sizeof buf, "(no row)");
    else if (sqlite3_column_type(st, 0) == SQLITE_NULL)
        snprintf(buf, sizeof buf, "(null)");
    else
        snprintf(buf, sizeof buf, "%s", sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return buf;
}

/* The store's referential and structural integrity. */
static void
assert_integrity(bg_store *s)
{
    ck_assert_str_eq(q_text(s, "PRAGMA integrity_check"), "ok");
    ck_assert_str_eq(q_text(s, "PRAGMA foreign_key_check"), "(no row)");
}

/* One line of a report, read back with the CSV reader. */
typedef struct rep_line {
    char line[24], uscc[512], status[16], reason[1024];
} rep_line;

static size_t
read_report(const char *path, rep_line *out, size_t max)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "report %s: %s", path, strerror(errno));
    bg_csv *c;
    bg_err err;
    ck_assert_int_eq(bg_csv_open(&c, f, 64 * 1024, &err), BG_OK);
    bg_csv_field *fl;
    size_t n, count = 0;
    ck_assert_int_eq(bg_csv_next(c, &fl, &n, &err), BG_OK);
    ck_assert_uint_eq(n, 4);
    ck_assert(fl[0].len == 4 && memcmp(fl[0].p, "line", 4) == 0);
    int rc;
    while ((rc = bg_csv_next(c, &fl, &n, &err)) == BG_OK) {
        ck_assert_uint_eq(n, 4);
        ck_assert_uint_lt(count, max);
        rep_line *r = &out[count++];
        snprintf(r->line, sizeof r->line, "%.*s", (int)fl[0].len, fl[0].p);
        snprintf(r->uscc, sizeof r->uscc, "%.*s", (int)fl[1].len, fl[1].p);
        snprintf(r->status, sizeof r->status, "%.*s", (int)fl[2].len, fl[2].p);
        snprintf(r->reason, sizeof r->reason, "%.*s", (int)fl[3].len, fl[3].p);
    }
    ck_assert_int_eq(rc, BG_ENOTFOUND);
    bg_csv_close(c);
    fclose(f);
    return count;
}

#define ASSERT_REP(r, ln, u, st, why)                                                              \
    do {                                                                                           \
        ck_assert_str_eq((r)->line, ln);                                                           \
        ck_assert_str_eq((r)->uscc, u);                                                            \
        ck_assert_str_eq((r)->status, st);                                                         \
        ck_assert_str_eq((r)->reason, why);                                                        \
    } while (0)

static bool
exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* ---- tests ---- */

/* A clean file: every row inserted, counts by list and grade right, no report. */
START_TEST(t_clean_import)
{
    char dir[256], file[512], rep[600];
    make_dir(dir, sizeof dir);
    path_in(file, sizeof file, dir, "city.csv");
    write_std(file, 0, 1000, 0);
    bg_store *s = open_store(dir);
    bg_import_result r;
    import_ok(s, file, NULL, &r);

    ck_assert_int_eq(r.import_id, 1);
    ck_assert(!r.already_imported);
    ck_assert_uint_eq(r.rows, 1000);
    ck_assert_uint_eq(r.inserted, 1000);
    ck_assert_uint_eq(r.updated + r.unchanged + r.rejected + r.duplicates, 0);
    ck_assert_uint_eq(r.graded, 800);
    ck_assert_uint_eq(r.listed[BG_LIST_SERIOUS_DISHONESTY], 11); /* 0, 97, ..., 970 */
    ck_assert_uint_eq(r.listed[BG_LIST_ABNORMAL_OPERATION], 53); /* 0, 19, ..., 988 */
    ck_assert(r.error_rate == 0.0);
    ck_assert_str_eq(r.report_path, "");
    snprintf(rep, sizeof rep, "%s.rejects.csv", file);
    ck_assert(!exists(rep));
    ck_assert_uint_eq(strlen(r.digest_hex), 64);

    bg_store_counts c;
    bg_err err;
    ck_assert_int_eq(bg_store_counts_get(s, &c, &err), BG_OK);
    ck_assert_uint_eq(c.enterprises, 1000);
    ck_assert_uint_eq(c.evaluations, 800);
    for (int g = 0; g < 4; g++)
        ck_assert_uint_eq(c.by_grade[g], 200);
    ck_assert_uint_eq(c.listed[BG_LIST_SERIOUS_DISHONESTY], 11);
    ck_assert_uint_eq(c.listed[BG_LIST_ABNORMAL_OPERATION], 53);
    ck_assert_uint_eq(c.imports, 1);

    /* What one row became. */
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT name || '|' || division FROM enterprises WHERE uscc = '%s'",
             U(97));
    ck_assert_str_eq(q_text(s, sql), "测试科技有限公司97号|440300");
    snprintf(sql, sizeof sql,
             "SELECT reason || '|' || listed_at || '|' || expires_at || '|' || source FROM "
             "list_entries WHERE uscc = '%s' AND list = 'serious-dishonesty'",
             U(97));
    ck_assert_str_eq(q_text(s, sql), "court order, unpaid|2023-05-01|2026-05-01|1");
    snprintf(sql, sizeof sql,
             "SELECT grade || '|' || scale || '|' || evaluated_at || '|' || valid_until FROM "
             "evaluations WHERE uscc = '%s'",
             U(97));
    ck_assert_str_eq(q_text(s, sql), "C|ABCD|2024-01-15|2026-01-14");
    ck_assert_str_eq(q_text(s, "SELECT mode || '|' || rows || '|' || inserted FROM imports"),
                     "quarantine|1000|1000");
    assert_integrity(s);
    bg_store_close(s);
}
END_TEST

/* Quarantine: each kind of bad row is rejected with its line and reason, the rest go in. */
START_TEST(t_quarantine_report)
{
    char dir[256], file[512], rep[600];
    make_dir(dir, sizeof dir);
    path_in(file, sizeof file, dir, "mixed.csv");
    char badu[19], want;
    bad_uscc(2, badu, &want);
    uint64_t l3 = lettered(3000);
    char lower[19];
    lower_uscc(l3, lower);

    char data[8192];
    int n =
        snprintf(data, sizeof data,
                 "%s"
                 "%s,Good One,A,2024-01-01,2025-01-01,,,,,,\n"            /* 2 ok */
                 "%s,Bad Check,,,,,,,,,\n"                                /* 3 */
                 "%s,Bad Grade,E,2024-01-01,2025-01-01,,,,,,\n"           /* 4 */
                 "%s,Bad Date,B,2021-02-30,2025-01-01,,,,,,\n"            /* 5 */
                 "%s,,,,,,,,,,\n"                                         /* 6 */
                 "%s,Short,,,,\n"                                         /* 7 */
                 "%s,Lower Case,,,,,,,,,\n"                               /* 8 ok */
                 "%s,Again,,,,,,,,,\n"                                    /* 9 */
                 "%s,Backwards,C,2024-01-01,2023-01-01,,,,,,\n"           /* 10 */
                 "%s,Half Listed,,,,fraud,,,,,\n"                         /* 11 */
                 "%s,Good Two,,,,,,,late filing,2024-03-01,2025-03-01\n", /* 12 ok */
                 hdr(), U(1), badu, U(10), U(11), U(12), U(13), lower, U(1), U(14), U(15), U(4));
    ck_assert_str_ne(lower, U(l3));
    write_file(file, data, (size_t)n);

    bg_store *s = open_store(dir);
    bg_import_result r;
    import_ok(s, file, NULL, &r);
    ck_assert_uint_eq(r.rows, 11);
    ck_assert_uint_eq(r.inserted, 3);
    ck_assert_uint_eq(r.rejected, 8);
    ck_assert_uint_eq(r.duplicates, 1);
    ck_assert_uint_eq(r.normalised, 1);
    ck_assert_uint_eq(r.graded, 1);
    ck_assert_uint_eq(r.listed[BG_LIST_ABNORMAL_OPERATION], 1);
    ck_assert(r.error_rate > 8.0 / 11 - 1e-9 && r.error_rate < 8.0 / 11 + 1e-9);
    snprintf(rep, sizeof rep, "%s.rejects.csv", file);
    ck_assert_str_eq(r.report_path, rep);
    ck_assert_uint_eq(r.reported, 8);

    rep_line lines[16];
    ck_assert_uint_eq(read_report(rep, lines, 16), 8);
    char why[128];
    snprintf(why, sizeof why, "uscc: position 18: check character is '%c', expected '%c'", badu[17],
             want);
    ASSERT_REP(&lines[0], "3", badu, "rejected", why);
    ASSERT_REP(&lines[1], "4", U(10), "rejected",
               "grade: 'E' is not in the store's scale ABCD=A,B,C,D");
    ASSERT_REP(&lines[2], "5", U(11), "rejected",
               "evaluated_at: '2021-02-30': day 30 does not exist in that month");
    ASSERT_REP(&lines[3], "6", U(12), "rejected", "name: empty");
    ASSERT_REP(&lines[4], "7", U(13), "rejected", "6 fields, expected 11");
    ASSERT_REP(&lines[5], "9", U(1), "duplicate", "duplicate of line 2");
    ASSERT_REP(&lines[6], "10", U(14), "rejected",
               "valid_until 2023-01-01 is before evaluated_at 2024-01-01");
    ASSERT_REP(&lines[7], "11", U(15), "rejected",
               "serious-dishonesty: reason and listed_at go together (listed_at empty)");

    /* Only the good rows are in the store; the normalised one under its canonical code. */
    ck_assert_int_eq(q_int(s, "SELECT count(*) FROM enterprises"), 3);
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT name FROM enterprises WHERE uscc = '%s'", U(l3));
    ck_assert_str_eq(q_text(s, sql), "Lower Case");
    snprintf(sql, sizeof sql, "SELECT name FROM enterprises WHERE uscc = '%s'", U(1));
    ck_assert_str_eq(q_text(s, sql), "Good One");
    ck_assert_str_eq(q_text(s, "SELECT rejected || '|' || duplicates FROM imports"), "8|1");
    assert_integrity(s);
    bg_store_close(s);
}
END_TEST

/* Strict mode with bad rows: BG_EABORTED naming the first, and the store unchanged. */
START_TEST(t_strict_abort)
{
    char dir[256], base[512], next[512];
    make_dir(dir, sizeof dir);
    path_in(base, sizeof base, dir, "base.csv");
    path_in(next, sizeof next, dir, "next.csv");
    write_std(base, 0, 100, 0);
    bg_store *s = open_store(dir);
    bg_import_result r;
    import_ok(s, base, NULL, &r);
    snapshot before, after;
    snap(s, &before);

    /* 10 known rows, 50 new, and two bad ones (lines 7 and 30). */
    FILE *f = fopen(next, "wb");
    ck_assert_ptr_nonnull(f);
    fputs(hdr(), f);
    int line = 1;
    for (uint64_t i = 0; i < 60; i++) {
        line++;
        if (line == 7)
            fprintf(f, "NOT-A-CODE,Broken,,,,,,,,,\n");
        else if (line == 30)
            fprintf(f, "%s,Broken,Z,2024-01-01,2025-01-01,,,,,,\n", U(5000));
        else
            std_row(f, i < 10 ? i : 1000 + i, 1);
    }
    fclose(f);

    bg_import_opts o = {.mode = BG_IMPORT_STRICT};
    bg_err err;
    ck_assert_int_eq(import(s, next, &o, &r, &err), BG_EABORTED);
    ck_assert_int_eq(err.code, BG_EABORTED);
    ck_assert_msg(strncmp(err.msg, "line 7: uscc: ", 14) == 0, "%s", err.msg);
    ck_assert_msg(strstr(err.msg, "(2 bad rows; nothing imported)") != NULL, "%s", err.msg);
    ck_assert_int_eq(r.import_id, 0);
    ck_assert_uint_eq(r.rows, 60);
    ck_assert_uint_eq(r.rejected, 2);
    snap(s, &after);
    assert_same(&before, &after);

    /* Reopening shows the same: nothing reached the file. */
    bg_store_close(s);
    s = open_store(dir);
    snap(s, &after);
    assert_same(&before, &after);

    /* The same file in quarantine mode goes in (it was never recorded as imported). */
    import_ok(s, next, NULL, &r);
    ck_assert(!r.already_imported);
    ck_assert_uint_eq(r.rejected, 2);
    ck_assert_uint_eq(r.inserted, 49); /* 10..59 but the one replaced by line 30 */
    /* 0..9 but the one replaced by line 7, and 3 and 8 whose empty evaluation says nothing */
    ck_assert_uint_eq(r.updated, 7);
    assert_integrity(s);
    bg_store_close(s);
}
END_TEST

/* Strict mode with a clean file imports it and records the mode. */
START_TEST(t_strict_clean)
{
    char dir[256], file[512];
    make_dir(dir, sizeof dir);
    path_in(file, sizeof file, dir, "clean.csv");
    write_std(file, 0, 200, 0);
    bg_store *s = open_store(dir);
    bg_import_opts o = {.mode = BG_IMPORT_STRICT};
    bg_import_result r;
    import_ok(s, file, &o, &r);
    ck_assert_uint_eq(r.inserted, 200);
    ck_assert_str_eq(q_text(s, "SELECT mode FROM imports"), "strict");
    bg_store_close(s);
}
END_TEST

/* Duplicates within a file, judged after normalisation; the first occurrence wins, and a
 * repeat of a rejected row is a duplicate too (the file is ambiguous about it). */
START_TEST(t_duplicates)
{
    char dir[256], file[512], rep[600];
    make_dir(dir, sizeof dir);
    path_in(file, sizeof file, dir, "dups.csv");
    uint64_t l1 = lettered(1);
    char spaced[64], lower[19];
    lower_uscc(l1, lower);
    /* full-width digits and an ideographic space around: normalises to U(2) */
    snprintf(spaced, sizeof spaced, "\xE3\x80\x80\xEF\xBC\x99%s ", U(2) + 1);
    char data[4096];
    int n = snprintf(data, sizeof data,
                     "%s"
                     "%s,First,,,,,,,,,\n"                            /* 2 */
                     "%s,Second,,,,,,,,,\n"                           /* 3 */
                     "%s,First Again,,,,,,,,,\n"                      /* 4 dup of 2 */
                     "\"%s\",Second Again,,,,,,,,,\n"                 /* 5 dup of 3 */
                     "%s,Third Bad,Q,2024-01-01,2025-01-01,,,,,,\n"   /* 6 rejected */
                     "%s,Third Good,A,2024-01-01,2025-01-01,,,,,,\n", /* 7 dup of 6 */
                     hdr(), U(l1), U(2), lower, spaced, U(3), U(3));
    write_file(file, data, (size_t)n);
    bg_store *s = open_store(dir);
    bg_import_result r;
    import_ok(s, file, NULL, &r);
    ck_assert_uint_eq(r.rows, 6);
    ck_assert_uint_eq(r.inserted, 2);
    ck_assert_uint_eq(r.rejected, 4);
    ck_assert_uint_eq(r.duplicates, 3);
    ck_assert_uint_eq(r.normalised, 0); /* the normalised ones were duplicates */
    snprintf(rep, sizeof rep, "%s.rejects.csv", file);
    rep_line lines[8];
    ck_assert_uint_eq(read_report(rep, lines, 8), 4);
    ASSERT_REP(&lines[0], "4", lower, "duplicate", "duplicate of line 2");
    ASSERT_REP(&lines[1], "5", spaced, "duplicate", "duplicate of line 3");
    ck_assert_str_eq(lines[2].line, "6");
    ASSERT_REP(&lines[3], "7", U(3), "duplicate", "duplicate of line 6");
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT name FROM enterprises WHERE uscc = '%s'", U(2));
    ck_assert_str_eq(q_text(s, sql), "Second");
    bg_store_close(s);
}
END_TEST

/* Changes to what the store holds: the file's row updates the name and what its cells
 * give; empty cells say nothing (without a replace mode nothing is removed); the report
 * says what changed, with status "changed"; identical rows are unchanged. */
START_TEST(t_changes)
{
    char dir[256], a[512], b[512];
    make_dir(dir, sizeof dir);
    path_in(a, sizeof a, dir, "a.csv");
    path_in(b, sizeof b, dir, "b.csv");
    char data[4096];
    int n = snprintf(data, sizeof data,
                     "%s"
                     "%s,One,B,2024-01-01,2025-01-01,,,,,,\n"
                     "%s,Two,A,2024-01-01,2025-01-01,fraud,2023-01-01,,,,\n"
                     "%s,Three,,,,,,,moved,2023-02-02,2024-02-02\n"
                     "%s,Four,,,,,,,,,\n"
                     "%s,Five,C,2024-01-01,2025-01-01,,,,,,\n",
                     hdr(), U(1), U(2), U(3), U(4), U(5));
    write_file(a, data, (size_t)n);
    n = snprintf(data, sizeof data,
                 "%s"
                 "%s,One,C,2024-01-01,2025-01-01,tax evasion,2024-06-01,,,,\n"
                 "%s,Two,,,,,,,,,\n"
                 "%s,Three Ltd,,,,,,,gone,2023-02-02,2024-02-02\n"
                 "%s,Four,,,,,,,,,\n"
                 "%s,Five,C,2024-06-01,2025-06-01,,,,,,\n"
                 "%s,Six,D,2024-01-01,2025-01-01,,,,,,\n",
                 hdr(), U(1), U(2), U(3), U(4), U(5), U(6));
    write_file(b, data, (size_t)n);

    bg_store *s = open_store(dir);
    bg_import_result r;
    import_ok(s, a, NULL, &r);
    ck_assert_uint_eq(r.inserted, 5);
    import_ok(s, b, NULL, &r);
    ck_assert_int_eq(r.import_id, 2);
    ck_assert_uint_eq(r.rows, 6);
    ck_assert_uint_eq(r.inserted, 1);
    ck_assert_uint_eq(r.updated, 3);
    ck_assert_uint_eq(r.unchanged, 2); /* Two (empty cells) and Four */
    ck_assert_uint_eq(r.rejected, 0);
    ck_assert(r.error_rate == 0.0);
    /* In this file, per list and for the grades. */
    const bg_import_delta *sd = &r.lists[BG_LIST_SERIOUS_DISHONESTY];
    const bg_import_delta *ao = &r.lists[BG_LIST_ABNORMAL_OPERATION];
    ck_assert_uint_eq(sd->in_file, 1);
    ck_assert_uint_eq(sd->added, 1);
    ck_assert_uint_eq(sd->removed, 0);
    ck_assert_uint_eq(sd->before, 1);
    ck_assert_uint_eq(ao->in_file, 1);
    ck_assert_uint_eq(ao->changed, 1);
    ck_assert_uint_eq(r.grades.in_file, 3);
    ck_assert_uint_eq(r.grades.added, 1);   /* Six */
    ck_assert_uint_eq(r.grades.changed, 2); /* One B -> C, Five's dates */
    ck_assert_uint_eq(r.grades.unchanged, 0);
    ck_assert_uint_eq(r.grades.removed, 0);
    ck_assert_uint_eq(r.grade_added[2], 1);   /* C */
    ck_assert_uint_eq(r.grade_removed[1], 1); /* B */
    ck_assert_uint_eq(r.grade_added[3], 1);   /* D */
    /* The store after: 6 enterprises, Two still graded and listed. */
    ck_assert_uint_eq(r.totals.enterprises, 6);
    ck_assert_uint_eq(r.totals.evaluations, 4);
    ck_assert_uint_eq(r.totals.listed[BG_LIST_SERIOUS_DISHONESTY], 2);

    rep_line lines[8];
    ck_assert_uint_eq(read_report(r.report_path, lines, 8), 3);
    ASSERT_REP(&lines[0], "2", U(1), "changed", "grade B -> C; serious-dishonesty added");
    ASSERT_REP(&lines[1], "4", U(3), "changed",
               "name 'Three' -> 'Three Ltd'; abnormal-operation changed (reason)");
    ASSERT_REP(&lines[2], "6", U(5), "changed",
               "evaluation dates 2024-01-01..2025-01-01 -> 2024-06-01..2025-06-01");

    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM list_entries WHERE uscc = '%s'", U(2));
    ck_assert_int_eq(q_int(s, sql), 1);
    snprintf(sql, sizeof sql, "SELECT grade FROM evaluations WHERE uscc = '%s'", U(2));
    ck_assert_str_eq(q_text(s, sql), "A");
    snprintf(sql, sizeof sql, "SELECT grade || '|' || source FROM evaluations WHERE uscc = '%s'",
             U(1));
    ck_assert_str_eq(q_text(s, sql), "C|2");
    snprintf(sql, sizeof sql,
             "SELECT reason || '|' || listed_at || '|' || coalesce(expires_at, 'none') FROM "
             "list_entries WHERE uscc = '%s'",
             U(1));
    ck_assert_str_eq(q_text(s, sql), "tax evasion|2024-06-01|none");
    snprintf(sql, sizeof sql,
             "SELECT name || '|' || first_import || '|' || last_import FROM enterprises "
             "WHERE uscc = '%s'",
             U(3));
    ck_assert_str_eq(q_text(s, sql), "Three Ltd|1|2");
    snprintf(sql, sizeof sql,
             "SELECT first_import || '|' || last_import FROM enterprises WHERE uscc = '%s'", U(4));
    ck_assert_str_eq(q_text(s, sql), "1|1"); /* unchanged rows are not rewritten */
    ck_assert_str_eq(q_text(s, "SELECT updated || '|' || unchanged FROM imports WHERE id = 2"),
                     "3|2");
    assert_integrity(s);
    bg_store_close(s);
}
END_TEST

/* The bug this guards against: a file with only uscc,name erased every grade and list
 * entry of the enterprises it named. Absent columns leave stored values unchanged. */
START_TEST(t_absent_columns_kept)
{
    char dir[256], full[512], names[512];
    make_dir(dir, sizeof dir);
    path_in(full, sizeof full, dir, "full.csv");
    path_in(names, sizeof names, dir, "names.csv");
    write_std(full, 0, 200, 0);
    FILE *f = fopen(names, "wb");
    ck_assert_ptr_nonnull(f);
    fputs("uscc,name\n", f);
    for (uint64_t i = 0; i < 200; i++)
        fprintf(f, i % 2 ? "%s,Renamed %llu\n" : "%s,测试科技有限公司%llu号\n", U(i),
                (unsigned long long)i);
    fclose(f);
    bg_store *s = open_store(dir);
    bg_import_result r;
    import_ok(s, full, NULL, &r);
    bg_store_counts before;
    bg_err err;
    ck_assert_int_eq(bg_store_counts_get(s, &before, &err), BG_OK);
    ck_assert_uint_eq(before.evaluations, 160);
    ck_assert_uint_eq(before.listed[BG_LIST_SERIOUS_DISHONESTY], 3);
    ck_assert_uint_eq(before.listed[BG_LIST_ABNORMAL_OPERATION], 11);
    int64_t serials = q_int(s, "SELECT sum(serial) FROM evaluations");

    import_ok(s, names, NULL, &r);
    ck_assert_uint_eq(r.updated, 100); /* the renamed ones */
    ck_assert_uint_eq(r.unchanged, 100);
    ck_assert_uint_eq(r.grades.removed + r.lists[0].removed + r.lists[1].removed, 0);
    bg_store_counts after;
    ck_assert_int_eq(bg_store_counts_get(s, &after, &err), BG_OK);
    ck_assert_uint_eq(after.evaluations, before.evaluations);
    ck_assert_mem_eq(after.listed, before.listed, sizeof after.listed);
    ck_assert_mem_eq(after.by_grade, before.by_grade, sizeof after.by_grade);
    ck_assert_mem_eq(&r.totals.listed, &before.listed, sizeof before.listed);
    /* Not even re-issued: no serial changed, none revoked. */
    ck_assert_int_eq(q_int(s, "SELECT sum(serial) FROM evaluations"), serials);
    ck_assert_int_eq(q_int(s, "SELECT count(*) FROM revoked_serials"), 0);
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT name FROM enterprises WHERE uscc = '%s'", U(1));
    ck_assert_str_eq(q_text(s, sql), "Renamed 1");
    bg_store_close(s);
}
END_TEST

/* A replace mode makes the file a list's full state: empty cells and enterprises the file
 * does not mention lose that list's entry (and only that list's); a rejected row keeps its
 * enterprise's entry; removed grades are revoked; the report lists every removal. A file
 * without the list's columns cannot replace it. */
START_TEST(t_replace)
{
    char dir[256], base[512], part[512];
    make_dir(dir, sizeof dir);
    path_in(base, sizeof base, dir, "base.csv");
    path_in(part, sizeof part, dir, "part.csv");
    write_std(base, 0, 100, 0); /* abnormal-operation: 0, 19, 38, 57, 76, 95; graded 80 */
    bg_store *s = open_store(dir);
    bg_import_result r;
    import_ok(s, base, NULL, &r);
    char data[4096];
    /* 0 stays listed, 19 has empty cells, 38 is rejected (bad grade), 57 and 76 are not in
     * the file (nor is 95); 1 (graded B) has an empty evaluation. */
    int n = snprintf(data, sizeof data,
                     "%s"
                     "%s,N0,,,,,,,unreachable at registered address,2024-02-03,\n"
                     "%s,N19,,,,,,,,,\n"
                     "%s,N38,Q,2024-01-01,2025-01-01,,,,,,\n"
                     "%s,N1,,,,,,,,,\n",
                     hdr(), U(0), U(19), U(38), U(1));
    write_file(part, data, (size_t)n);
    bg_import_opts o = {.replace = BG_IMPORT_REPLACE_LIST(BG_LIST_ABNORMAL_OPERATION),
                        .max_remove_pct = -1};
    import_ok(s, part, &o, &r);
    const bg_import_delta *ao = &r.lists[BG_LIST_ABNORMAL_OPERATION];
    ck_assert_uint_eq(ao->before, 6);
    ck_assert_uint_eq(ao->unchanged, 1);
    ck_assert_uint_eq(ao->removed, 4); /* 19 by its empty cells, 57, 76, 95 unmentioned */
    ck_assert_uint_eq(r.totals.listed[BG_LIST_ABNORMAL_OPERATION], 2); /* 0 and 38 */
    ck_assert_uint_eq(r.lists[BG_LIST_SERIOUS_DISHONESTY].removed, 0);
    ck_assert_uint_eq(r.totals.listed[BG_LIST_SERIOUS_DISHONESTY], 2);
    ck_assert_uint_eq(r.totals.evaluations, 80); /* grades not replaced */
    rep_line lines[8];
    ck_assert_uint_eq(read_report(r.report_path, lines, 8), 7);
    ASSERT_REP(&lines[1], "3", U(19), "changed",
               "name '测试科技有限公司19号' -> 'N19'; abnormal-operation removed");
    ck_assert_str_eq(lines[2].status, "rejected");
    ck_assert_str_eq(lines[4].status, "removed");
    ck_assert_str_eq(lines[4].line, "");
    ck_assert_str_eq(lines[4].uscc, U(57));
    ck_assert_str_eq(lines[4].reason, "abnormal-operation removed (not in the file)");

    /* The grades too. Graded before: 0 (A), 1 (B), 38 (D) of the file's rows, 19 not; the
     * empty cells of 0 and 1 remove theirs, the sweep every unmentioned one. */
    int64_t graded_before = q_int(s, "SELECT count(*) FROM evaluations");
    bg_import_opts g = {.replace = BG_IMPORT_REPLACE_GRADES, .force = true, .max_remove_pct = -1};
    import_ok(s, part, &g, &r);
    /* Kept: 38 (rejected row, so mentioned). Removed: everything else that was graded. */
    ck_assert_uint_eq(r.grades.removed, (uint64_t)graded_before - 1);
    ck_assert_uint_eq(r.totals.evaluations, 1);
    ck_assert_int_eq(q_int(s, "SELECT count(*) FROM revoked_serials"), graded_before - 1);

    /* No columns, no replace. */
    path_in(part, sizeof part, dir, "names.csv");
    char line[128];
    snprintf(line, sizeof line, "uscc,name\n%s,N0\n", U(0));
    write_str(part, line);
    bg_import_opts bad = {.replace = BG_IMPORT_REPLACE_LIST(BG_LIST_SERIOUS_DISHONESTY)};
    bg_err err;
    ck_assert_int_eq(import(s, part, &bad, &r, &err), BG_EINVAL);
    ck_assert_msg(strstr(err.msg, "replace serious-dishonesty: the file has no"), "%s", err.msg);
    assert_integrity(s);
    bg_store_close(s);
}
END_TEST

/* SHA-256 of a file's bytes, as hex. */
static void
file_digest(const char *path, char out[65])
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    crypto_hash_sha256_state h;
    crypto_hash_sha256_init(&h);
    unsigned char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        crypto_hash_sha256_update(&h, buf, n);
    fclose(f);
    unsigned char d[32];
    crypto_hash_sha256_final(&h, d);
    for (int i = 0; i < 32; i++)
        sprintf(out + 2 * i, "%02x", d[i]);
}

/* A dry run counts what would change (per list, per grade) and writes nothing: the store
 * file is byte-identical, no report, no import recorded; the same file then imports for
 * real with the same counts. */
START_TEST(t_dry_run)
{
    char dir[256], base[512], next[512], db[512], rep[600], d1[65], d2[65];
    make_dir(dir, sizeof dir);
    path_in(base, sizeof base, dir, "base.csv");
    path_in(next, sizeof next, dir, "next.csv");
    path_in(db, sizeof db, dir, "credit.db");
    write_std(base, 0, 100, 0);
    write_std(next, 50, 100, 1); /* 50 known (regraded), 50 new; 0..49 unmentioned */
    bg_store *s = open_store(dir);
    bg_import_result r;
    import_ok(s, base, NULL, &r);
    bg_store_counts before = r.totals;
    bg_store_close(s);
    file_digest(db, d1);

    s = open_store(dir);
    snapshot sb, sa;
    snap(s, &sb);
    bg_import_opts o = {.dry_run = true,
                        .replace = BG_IMPORT_REPLACE_LIST(BG_LIST_ABNORMAL_OPERATION)};
    import_ok(s, next, &o, &r);
    ck_assert(r.dry_run);
    ck_assert_int_eq(r.import_id, 0);
    ck_assert_uint_eq(r.inserted, 50);
    ck_assert_uint_eq(r.updated, 40); /* 50..99 but the 10 ungraded by variant 1 */
    /* abnormal-operation before: 0, 19, ..., 95 (6); 0, 19, 38 are not in the file. */
    const bg_import_delta *ao = &r.lists[BG_LIST_ABNORMAL_OPERATION];
    ck_assert_uint_eq(ao->before, 6);
    ck_assert_uint_eq(ao->removed, 3);
    ck_assert(r.removal_over_limit); /* 50 %: a real import would need confirming */
    ck_assert_uint_gt(r.grades.changed, 0);
    uint64_t moved = 0;
    for (int g = 0; g < 4; g++)
        moved += r.grade_added[g];
    ck_assert_uint_eq(moved, r.grades.added + r.grades.changed);
    /* The totals say what the store would hold. */
    ck_assert_uint_eq(r.totals.enterprises, before.enterprises + 50);
    ck_assert_uint_eq(r.totals.listed[BG_LIST_ABNORMAL_OPERATION],
                      before.listed[BG_LIST_ABNORMAL_OPERATION] - 3 + ao->added);
    ck_assert_str_eq(r.report_path, "");
    snprintf(rep, sizeof rep, "%s.rejects.csv", next);
    ck_assert(!exists(rep));
    snap(s, &sa);
    assert_same(&sb, &sa);
    bg_store_close(s);
    file_digest(db, d2);
    ck_assert_str_eq(d1, d2);

    s = open_store(dir);
    bg_import_result real;
    o.dry_run = false;
    o.confirm_removal = true;
    import_ok(s, next, &o, &real);
    ck_assert(!real.already_imported && !real.dry_run);
    ck_assert_uint_eq(real.updated, r.updated);
    ck_assert_uint_eq(real.lists[BG_LIST_ABNORMAL_OPERATION].removed, 3);
    ck_assert_mem_eq(&real.totals, &r.totals, sizeof r.totals - sizeof r.totals.imports);
    bg_store_close(s);
}
END_TEST

/* A replace that would remove more than the allowed share of a list is refused, saying how
 * many, and changes nothing; a higher limit or a confirmation lets it through. */
START_TEST(t_removal_guard)
{
    char dir[256], base[512], part[512];
    make_dir(dir, sizeof dir);
    path_in(base, sizeof base, dir, "base.csv");
    path_in(part, sizeof part, dir, "part.csv");
    write_std(base, 0, 1000, 0);
    write_std(part, 0, 800, 0); /* abnormal-operation 817, 836, ..., 988 missing: 10 of 53 */
    bg_store *s = open_store(dir);
    bg_import_result r;
    import_ok(s, base, NULL, &r);
    snapshot before, after;
    snap(s, &before);

    bg_import_opts o = {.replace = BG_IMPORT_REPLACE_LIST(BG_LIST_ABNORMAL_OPERATION)};
    bg_err err;
    ck_assert_int_eq(import(s, part, &o, &r, &err), BG_EABORTED);
    ck_assert(r.removal_over_limit);
    ck_assert_str_eq(err.msg, "would remove 10 of 53 abnormal-operation entries (18.9 %, more "
                              "than the 10.0 % allowed): nothing imported");
    ck_assert_int_eq(r.import_id, 0);
    ck_assert_str_eq(r.report_path, "");
    snap(s, &after);
    assert_same(&before, &after);

    o.max_remove_pct = 25;
    import_ok(s, part, &o, &r);
    ck_assert_uint_eq(r.lists[BG_LIST_ABNORMAL_OPERATION].removed, 10);
    ck_assert(!r.removal_over_limit);

    /* The grades: 800 of the 800 stored would go for a file of names and empty grades. */
    write_std(part, 0, 1, 0);
    bg_import_opts g = {.replace = BG_IMPORT_REPLACE_GRADES};
    ck_assert_int_eq(import(s, part, &g, &r, &err), BG_EABORTED);
    ck_assert_msg(strstr(err.msg, "would remove 799 of 800 evaluations"), "%s", err.msg);
    g.confirm_removal = true;
    import_ok(s, part, &g, &r);
    ck_assert_uint_eq(r.totals.evaluations, 1);
    bg_store_close(s);
}
END_TEST

/* A valid USCC in another division: prefix "91" + division + 8 digits of n + checks. */
static void
uscc_in(const char *division, uint64_t n, char out[19])
{
    make_uscc(n, out);
    memcpy(out + 2, division, 6);
    out[17] = bg_uscc_check_char(out);
}

/* Expired evaluations are imported but counted, with the first few named; rows of another
 * city's divisions are counted with the city most of them belong to. The publisher's scan
 * never hands out an expired evaluation or a lapsed list entry. */
static int
count_row(void *ctx, const bg_store_row *row, bg_err *err)
{
    (void)row;
    (void)err;
    (*(int *)ctx)++;
    return BG_OK;
}

START_TEST(t_expired_and_foreign)
{
    char dir[256], file[512], gz[3][19];
    make_dir(dir, sizeof dir);
    path_in(file, sizeof file, dir, "e.csv");
    for (int i = 0; i < 3; i++)
        uscc_in("440106", 900 + (uint64_t)i, gz[i]);
    char data[4096];
    int n = snprintf(data, sizeof data,
                     "%s"
                     "%s,Old,A,2023-01-01,2024-12-31,,,,,,\n"
                     "%s,Current,B,2024-06-01,2025-06-01,,,,,,\n"
                     "%s,Last Day,C,2024-01-01,2025-01-01,,,,moved,2024-01-01,2025-01-01\n"
                     "%s,Gz One,,,,,,,,,\n"
                     "%s,Gz Two,,,,,,,,,\n"
                     "%s,Gz Three,D,2020-01-01,2021-01-01,,,,,,\n",
                     hdr(), U(1), U(2), U(3), gz[0], gz[1], gz[2]);
    write_file(file, data, (size_t)n);
    bg_store *s = open_store(dir);
    int32_t today;
    ck_assert_int_eq(bg_date_parse("2025-01-01", 10, &today, NULL), BG_OK);
    bg_import_opts o = {.today = today};
    bg_import_result r;
    import_ok(s, file, &o, &r);
    ck_assert_uint_eq(r.inserted, 6); /* warned about, not refused */
    ck_assert_uint_eq(r.expired, 2);  /* Old and Gz Three; Last Day is valid through today */
    ck_assert_str_eq(r.expired_uscc[0], U(1));
    ck_assert_str_eq(r.expired_uscc[1], gz[2]);
    ck_assert_uint_eq(r.foreign, 3);
    ck_assert_str_eq(r.foreign_city, "440100");
    ck_assert_uint_eq(r.foreign_city_rows, 3);

    int all = 0, cur = 0, list_cur = 0;
    int64_t last = 0;
    bg_err err;
    ck_assert_int_eq(bg_store_scan(s, NULL, &last, count_row, &all, &err), BG_OK);
    ck_assert_int_eq(all, 4);
    ck_assert_int_eq(bg_store_scan_current(s, NULL, today, &last, count_row, &cur, &err), BG_OK);
    ck_assert_int_eq(cur, 2);
    ck_assert_int_eq(last, 1);
    /* The list entry stops on its expires_at day. */
    ck_assert_int_eq(bg_store_scan_current(s, "abnormal-operation", today - 1, &last, count_row,
                                           &list_cur, &err),
                     BG_OK);
    ck_assert_int_eq(list_cur, 1);
    list_cur = 0;
    ck_assert_int_eq(
        bg_store_scan_current(s, "abnormal-operation", today, &last, count_row, &list_cur, &err),
        BG_OK);
    ck_assert_int_eq(list_cur, 0);
    bg_store_close(s);
}
END_TEST

/* The same bytes again are a no-op that touches nothing; --force imports them again. */
START_TEST(t_reimport)
{
    char dir[256], file[512];
    make_dir(dir, sizeof dir);
    path_in(file, sizeof file, dir, "city.csv");
    write_std(file, 0, 300, 0);
    bg_store *s = open_store(dir);
    bg_import_result r;
    import_ok(s, file, NULL, &r);
    char digest[65];
    memcpy(digest, r.digest_hex, 65);
    snapshot before, after;
    snap(s, &before);

    import_ok(s, file, NULL, &r);
    ck_assert(r.already_imported);
    ck_assert_int_eq(r.previous_import, 1);
    ck_assert_int_eq(r.import_id, 0);
    ck_assert_str_eq(r.digest_hex, digest);
    ck_assert_uint_eq(r.rows, 0);
    snap(s, &after);
    assert_same(&before, &after);

    bg_import_opts o = {.force = true};
    import_ok(s, file, &o, &r);
    ck_assert(!r.already_imported);
    ck_assert_int_eq(r.import_id, 2);
    ck_assert_uint_eq(r.unchanged, 300);
    ck_assert_uint_eq(r.inserted + r.updated, 0);
    ck_assert_int_eq(q_int(s, "SELECT forced FROM imports WHERE id = 2"), 1);

    import_ok(s, file, NULL, &r);
    ck_assert(r.already_imported);
    ck_assert_int_eq(r.previous_import, 2);

    /* One byte different is a different file. */
    FILE *f = fopen(file, "ab");
    fputs("\n", f);
    fclose(f);
    import_ok(s, file, NULL, &r);
    ck_assert(!r.already_imported);
    ck_assert_int_eq(r.import_id, 3);
    bg_store_close(s);
}
END_TEST

typedef struct revoked_seen {
    size_t n;
    uint64_t last;
    bool increasing;
} revoked_seen;

static int
collect_revoked(void *ctx, uint64_t serial, int64_t revoked_at, bg_err *err)
{
    (void)err;
    revoked_seen *rv = ctx;
    rv->increasing =
        (rv->n == 0 || serial > rv->last) && revoked_at > 0 && (rv->n == 0 || rv->increasing);
    rv->last = serial;
    rv->n++;
    return BG_OK;
}

/* Evaluation serials: unique, kept by an unchanged re-import, new (never reused) for a
 * changed record whose old serial is revoked in the same import; a v2 store is migrated
 * with unique serials. */
START_TEST(t_eval_serials)
{
    char dir[256], file[512], file2[512];
    make_dir(dir, sizeof dir);
    path_in(file, sizeof file, dir, "city.csv");
    path_in(file2, sizeof file2, dir, "fix.csv");
    write_std(file, 0, 100, 0);
    bg_store *s = open_store(dir);
    bg_import_result r;
    import_ok(s, file, NULL, &r);
    int64_t n = q_int(s, "SELECT count(*) FROM evaluations");
    ck_assert_int_gt(n, 50);
    ck_assert_int_eq(q_int(s, "SELECT count(DISTINCT serial) FROM evaluations"), n);
    ck_assert_int_eq(q_int(s, "SELECT count(*) FROM evaluations WHERE serial >> 32 != 1 "
                              "OR (serial & 4294967295) = 0"),
                     0);
    ck_assert_int_eq(
        sqlite3_exec(bg_store_db(s),
                     "CREATE TEMP TABLE before AS SELECT uscc, serial FROM evaluations", NULL, NULL,
                     NULL),
        SQLITE_OK);

    bg_import_opts o = {.force = true};
    import_ok(s, file, &o, &r); /* the same rows again: nothing changes */
    ck_assert_int_eq(q_int(s, "SELECT count(*) FROM evaluations e JOIN temp.before b USING (uscc) "
                              "WHERE e.serial = b.serial"),
                     n);

    write_std(file2, 0, 10, 1); /* rows 0..9 with other grades (or none) */
    import_ok(s, file2, NULL, &r);
    ck_assert_int_eq(r.import_id, 3);
    /* rows 10..99 untouched; rows 0..9 still graded got new serials of import 3 */
    ck_assert_int_eq(q_int(s, "SELECT count(*) FROM evaluations e JOIN temp.before b USING (uscc) "
                              "WHERE e.serial != b.serial AND (e.serial >> 32 != 3 "
                              "OR e.serial IN (SELECT serial FROM temp.before))"),
                     0);
    /* Graded among rows 0..9: before i % 5 < 4 (all but 4, 9), after (i + 1) % 5 < 4 (all
     * but 3, 8): 6 regraded and 2 newly graded get import 3's serials; 3 and 8, whose
     * empty evaluation says nothing without a replace mode, keep theirs. */
    ck_assert_int_eq(q_int(s, "SELECT count(*) FROM evaluations WHERE serial >> 32 = 3"), 8);
    ck_assert_int_eq(q_int(s, "SELECT count(*) FROM evaluations e JOIN temp.before b USING (uscc) "
                              "WHERE e.serial = b.serial"),
                     n - 6);
    ck_assert_int_eq(q_int(s, "SELECT count(*) FROM evaluations"), n + 2);
    /* The 6 superseded serials (the regraded) are revoked, and only they. */
    ck_assert_int_eq(q_int(s, "SELECT count(*) FROM revoked_serials WHERE import_id = 3 AND "
                              "serial IN (SELECT serial FROM temp.before) AND serial NOT IN "
                              "(SELECT serial FROM evaluations)"),
                     6);
    ck_assert_int_eq(q_int(s, "SELECT count(*) FROM revoked_serials"), 6);
    revoked_seen rv = {0};
    uint64_t number = 0;
    bg_err err;
    ck_assert_int_eq(bg_store_revoked_scan(s, &number, collect_revoked, &rv, &err), BG_OK);
    ck_assert_uint_eq(number, 3);
    ck_assert_uint_eq(rv.n, 6);
    ck_assert(rv.increasing);
    ck_assert_int_eq(q_int(s, "SELECT count(DISTINCT serial) FROM evaluations"),
                     q_int(s, "SELECT count(*) FROM evaluations"));

    /* Back to a v2 store: the migration numbers every record again, uniquely. */
    ck_assert_int_eq(sqlite3_exec(bg_store_db(s),
                                  "DROP TABLE revoked_serials; DROP INDEX evaluations_serial; "
                                  "ALTER TABLE evaluations DROP COLUMN serial; "
                                  "PRAGMA user_version = 2",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    int64_t m = q_int(s, "SELECT count(*) FROM evaluations");
    bg_store_close(s);
    s = open_store(dir);
    ck_assert_int_eq(bg_store_schema_version(s), BG_STORE_SCHEMA_VERSION);
    ck_assert_int_eq(q_int(s, "SELECT count(DISTINCT serial) FROM evaluations"), m);
    ck_assert_int_eq(q_int(s, "SELECT count(*) FROM evaluations WHERE serial >> 32 != source "
                              "OR (serial & 4294967295) = 0"),
                     0);
    assert_integrity(s);
    bg_store_close(s);
}
END_TEST

/* Malformed CSV in a real file: BOM, CRLF, quotes, embedded commas and newlines, a short
 * row, bytes that are not UTF-8, a stray quote, a 1 MB line, an unterminated quote. Each bad
 * record is rejected at its own line; everything else goes in. */
START_TEST(t_malformed_csv)
{
    char dir[256], file[512];
    make_dir(dir, sizeof dir);
    path_in(file, sizeof file, dir, "messy.csv");
    size_t big = 1024 * 1024;
    char *data = malloc(big + 8192);
    ck_assert_ptr_nonnull(data);
    char h[512];
    snprintf(h, sizeof h, "%s", hdr());
    h[strlen(h) - 1] = '\0'; /* CRLF below */
    size_t n = 0;
    n += (size_t)sprintf(data + n, "\xEF\xBB\xBF%s\r\n", h);                         /* 1 */
    n += (size_t)sprintf(data + n, "%s,\"Foo, Ltd\",,,,,,,,,\r\n", U(1));            /* 2 */
    n += (size_t)sprintf(data + n, "%s,\"The \"\"Best\"\" Co\",,,,,,,,,\r\n", U(2)); /* 3 */
    n += (size_t)sprintf(data + n, "%s,Multi,,,,\"line one\r\nline two\",2023-01-01,,,,\r\n",
                         U(3));                                              /* 4-5 */
    n += (size_t)sprintf(data + n, "%s,\"Bad\r\nName\",,,,,,,,,\r\n", U(4)); /* 6-7 */
    n += (size_t)sprintf(data + n, "%s,Short,\r\n", U(5));                   /* 8 */
    n += (size_t)sprintf(data + n, "%s,Lat\xE9in,,,,,,,,,\r\n", U(6));       /* 9 */
    n += (size_t)sprintf(data + n, "%s,Stray\"Quote,,,,,,,,,\r\n", U(7));    /* 10 */
    n += (size_t)sprintf(data + n, "%s,", U(8));                             /* 11 */
    memset(data + n, 'x', big);
    n += big;
    n += (size_t)sprintf(data + n, ",,,,,,,,,\r\n");
    n += (size_t)sprintf(data + n, "\r\n");                                  /* 12 */
    n += (size_t)sprintf(data + n, "%s,After Big,,,,,,,,,\r\n", U(9));       /* 13 */
    n += (size_t)sprintf(data + n, "%s,\"Never closed,,,,,,,,,\r\n", U(10)); /* 14 */
    write_file(file, data, n);
    free(data);

    bg_store *s = open_store(dir);
    bg_import_result r;
    import_ok(s, file, NULL, &r);
    ck_assert_uint_eq(r.rows, 10);
    ck_assert_uint_eq(r.inserted, 4); /* U(1), U(2), U(3), U(9) */
    ck_assert_uint_eq(r.rejected, 6);
    rep_line lines[8];
    ck_assert_uint_eq(read_report(r.report_path, lines, 8), 6);
    ASSERT_REP(&lines[0], "6", U(4), "rejected", "name: control character 0x0D at byte 4");
    ASSERT_REP(&lines[1], "8", U(5), "rejected", "3 fields, expected 11");
    ASSERT_REP(&lines[2], "9", U(6), "rejected", "field 2: invalid UTF-8 at byte 4");
    ASSERT_REP(&lines[3], "10", U(7), "rejected",
               "field 2: stray '\"' in an unquoted field (quote the field and double the "
               "quote)");
    ASSERT_REP(&lines[4], "11", U(8), "rejected", "record longer than 65536 bytes");
    ASSERT_REP(&lines[5], "14", U(10), "rejected", "unterminated quoted field");

    char sql[200];
    snprintf(sql, sizeof sql, "SELECT name FROM enterprises WHERE uscc = '%s'", U(1));
    ck_assert_str_eq(q_text(s, sql), "Foo, Ltd");
    snprintf(sql, sizeof sql, "SELECT name FROM enterprises WHERE uscc = '%s'", U(2));
    ck_assert_str_eq(q_text(s, sql), "The \"Best\" Co");
    snprintf(sql, sizeof sql, "SELECT reason FROM list_entries WHERE uscc = '%s'", U(3));
    ck_assert_str_eq(q_text(s, sql), "line one\r\nline two");
    snprintf(sql, sizeof sql, "SELECT name FROM enterprises WHERE uscc = '%s'", U(9));
    ck_assert_str_eq(q_text(s, sql), "After Big");
    bg_store_close(s);
}
END_TEST

/* The report shows hostile USCC text safely: quoted, invalid bytes escaped, length bounded. */
START_TEST(t_report_escaping)
{
    char dir[256], file[512], rep[512];
    make_dir(dir, sizeof dir);
    path_in(file, sizeof file, dir, "hostile.csv");
    path_in(rep, sizeof rep, dir, "custom-report.csv");
    char longu[400];
    memset(longu, 'A', 300);
    longu[300] = '\0';
    char data[4096];
    int n = snprintf(data, sizeof data,
                     "%s"
                     "\"BAD,\"\"X\"\"\xFF\",Name,,,,,,,,,\n"
                     "%s,Name,,,,,,,,,\n"
                     "\"tab\there\",Name,,,,,,,,,\n",
                     hdr(), longu);
    write_file(file, data, (size_t)n);
    bg_store *s = open_store(dir);
    bg_import_opts o = {.report_path = rep};
    bg_import_result r;
    import_ok(s, file, &o, &r);
    ck_assert_str_eq(r.report_path, rep);
    rep_line lines[4];
    ck_assert_uint_eq(read_report(rep, lines, 4), 3);
    ASSERT_REP(&lines[0], "2", "BAD,\"X\"\\xFF", "rejected", "field 1: invalid UTF-8 at byte 8");
    char cut[80];
    memset(cut, 'A', 64);
    memcpy(cut + 64, "...", 4);
    ASSERT_REP(&lines[1], "3", cut, "rejected", "uscc: input of 300 bytes, longer than 256");
    ck_assert_str_eq(lines[2].uscc, "tab\\x09here");
    bg_store_close(s);
}
END_TEST

/* An empty file has no header (EINVAL, nothing recorded); a header alone is 0 rows. */
START_TEST(t_empty_and_header_only)
{
    char dir[256], file[512];
    make_dir(dir, sizeof dir);
    path_in(file, sizeof file, dir, "empty.csv");
    bg_store *s = open_store(dir);
    bg_import_result r;
    bg_err err;
    write_str(file, "");
    ck_assert_int_eq(import(s, file, NULL, &r, &err), BG_EINVAL);
    ck_assert_str_eq(err.msg, "empty file: no header");
    write_str(file, "\xEF\xBB\xBF\r\n\n");
    ck_assert_int_eq(import(s, file, NULL, &r, &err), BG_EINVAL);
    ck_assert_str_eq(err.msg, "empty file: no header");
    ck_assert_int_eq(q_int(s, "SELECT count(*) FROM imports"), 0);

    write_str(file, "uscc,name\n");
    import_ok(s, file, NULL, &r);
    ck_assert_uint_eq(r.rows, 0);
    ck_assert(r.error_rate == 0.0);
    ck_assert_int_eq(r.import_id, 1);
    ck_assert_str_eq(r.report_path, "");
    bg_store_close(s);
}
END_TEST

/* Header faults stop the import before any row, naming the column. */
START_TEST(t_bad_header)
{
    static const struct {
        const char *header, *want;
    } cases[] = {
        {"uscc,name,grde\n", "header, column 3: unknown column 'grde'"},
        {"uscc,name,blacklist:reason,blacklist:listed_at\n",
         "header, column 3: column 'blacklist:reason': unknown list 'blacklist'"},
        {"uscc,name,name\n", "header: column 'name' appears twice (columns 2 and 3)"},
        {"name\n", "header: required column 'uscc' is missing"},
        {"uscc\n", "header: required column 'name' is missing"},
        {"uscc,name,grade,evaluated_at\n",
         "header: columns grade, evaluated_at and valid_until go together ('valid_until' is "
         "missing)"},
        {"uscc,name,serious-dishonesty:reason\n",
         "header: columns serious-dishonesty:reason and serious-dishonesty:listed_at go "
         "together ('serious-dishonesty:listed_at' is missing)"},
        {"uscc,name,abnormal-operation:expires_at\n",
         "header: column abnormal-operation:expires_at needs abnormal-operation:reason and "
         "abnormal-operation:listed_at"},
        {"us\"cc,name\n", "header: line 1, field 1: stray '\"' in an unquoted field (quote the "
                          "field and double the quote)"},
    };
    char dir[256], file[512];
    make_dir(dir, sizeof dir);
    path_in(file, sizeof file, dir, "hdr.csv");
    bg_store *s = open_store(dir);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char data[512];
        snprintf(data, sizeof data, "%s%s,Name\n", cases[i].header, U(1));
        write_str(file, data);
        bg_import_result r;
        bg_err err;
        ck_assert_int_eq(import(s, file, NULL, &r, &err), BG_EINVAL);
        ck_assert_str_eq(err.msg, cases[i].want);
    }
    ck_assert_int_eq(q_int(s, "SELECT count(*) FROM imports"), 0);
    ck_assert_int_eq(q_int(s, "SELECT count(*) FROM enterprises"), 0);
    bg_store_close(s);
}
END_TEST

/* Grades are judged against the store's own scale. */
START_TEST(t_scale)
{
    char dir[256], file[512];
    make_dir(dir, sizeof dir);
    path_in(file, sizeof file, dir, "graded.csv");
    bg_scale scale;
    bg_err err;
    ck_assert_int_eq(bg_scale_parse("CRED=AAA,AA,A,B,C", &scale, &err), BG_OK);
    bg_store *s = NULL;
    ck_assert_int_eq(bg_store_open(&s, dir, "440100", &scale, &err), BG_OK);
    char data[1024];
    snprintf(data, sizeof data,
             "uscc,name,grade,evaluated_at,valid_until\n"
             "%s,One,AAA,2024-01-01,2025-01-01\n"
             "%s,Two,D,2024-01-01,2025-01-01\n"
             "%s,Three,aa,2024-01-01,2025-01-01\n",
             U(1), U(2), U(3));
    write_str(file, data);
    bg_import_result r;
    import_ok(s, file, NULL, &r);
    ck_assert_uint_eq(r.inserted, 1);
    ck_assert_uint_eq(r.rejected, 2);
    rep_line lines[4];
    ck_assert_uint_eq(read_report(r.report_path, lines, 4), 2);
    ck_assert_str_eq(lines[0].reason, "grade: 'D' is not in the store's scale CRED=AAA,AA,A,B,C");
    ck_assert_str_eq(lines[1].reason, "grade: 'aa' is not in the store's scale CRED=AAA,AA,A,B,C");
    bg_store_counts c;
    ck_assert_int_eq(bg_store_counts_get(s, &c, &err), BG_OK);
    ck_assert_uint_eq(c.by_grade[0], 1);
    ck_assert_uint_eq(c.evaluations, 1);
    bg_store_close(s);
}
END_TEST

/* Dates: real calendar days, in range, in order; evaluation and list fields go together. */
START_TEST(t_bad_dates)
{
    static const struct {
        const char *row, *want;
    } cases[] = {
        {"B,2021-02-30,2025-01-01,,,,,,",
         "evaluated_at: '2021-02-30': day 30 does not exist in that month"},
        {"B,2021-01-01,2021/06/01,,,,,,", "valid_until: '2021/06/01' is not a date (YYYY-MM-DD)"},
        {"B,2021-01-01,2020-01-01,,,,,,",
         "valid_until 2020-01-01 is before evaluated_at 2021-01-01"},
        {"B,,2025-01-01,,,,,,",
         "evaluation: grade, evaluated_at and valid_until go together (evaluated_at empty)"},
        {"B,1900-01-01,2025-01-01,,,,,,",
         "evaluated_at: '1900-01-01' is outside 1949-10-01..2199-12-31"},
        {",,,fraud,2021-13-01,,,,",
         "serious-dishonesty:listed_at: '2021-13-01': month 13 does not exist"},
        {",,,fraud,2021-01-01,2021-02-29,,,",
         "serious-dishonesty:expires_at: '2021-02-29': day 29 does not exist in that month"},
        {",,,,,,moved,2021-01-01,2020-01-01",
         "abnormal-operation: expires_at 2020-01-01 is before listed_at 2021-01-01"},
        {",,,,,,,,2020-01-01", "abnormal-operation: expires_at without reason and listed_at"},
        {",,,,,,moved,,", "abnormal-operation: reason and listed_at go together (listed_at empty)"},
    };
    size_t ncases = sizeof cases / sizeof cases[0];
    char dir[256], file[512];
    make_dir(dir, sizeof dir);
    path_in(file, sizeof file, dir, "dates.csv");
    FILE *f = fopen(file, "wb");
    fputs(hdr(), f);
    for (size_t i = 0; i < ncases; i++)
        fprintf(f, "%s,Name %zu,%s\n", U(i), i, cases[i].row);
    fprintf(f, "%s,Fine,A,2024-02-29,2024-02-29,x,1949-10-01,2199-12-31,,,\n", U(99));
    fclose(f);
    bg_store *s = open_store(dir);
    bg_import_result r;
    import_ok(s, file, NULL, &r);
    ck_assert_uint_eq(r.rejected, ncases);
    ck_assert_uint_eq(r.inserted, 1);
    rep_line lines[16];
    ck_assert_uint_eq(read_report(r.report_path, lines, 16), ncases);
    for (size_t i = 0; i < ncases; i++)
        ck_assert_str_eq(lines[i].reason, cases[i].want);
    bg_store_close(s);
}
END_TEST

/* Opening: a new store needs a city and leaves nothing behind without one; modes 0700/0600;
 * an existing store's city and scale must match; a newer schema is refused. */
START_TEST(t_store_open)
{
    char base[256], dir[512], db[600];
    make_dir(base, sizeof base);
    path_in(dir, sizeof dir, base, "data");
    path_in(db, sizeof db, dir, "credit.db");
    bg_store *s = NULL;
    bg_err err;

    ck_assert_int_eq(bg_store_open(&s, dir, NULL, NULL, &err), BG_EINVAL);
    ck_assert_ptr_null(s);
    ck_assert_msg(strstr(err.msg, "a city code is needed") != NULL, "%s", err.msg);
    ck_assert(!exists(dir));
    ck_assert_int_eq(bg_store_open(&s, dir, "44030", NULL, &err), BG_EINVAL);
    ck_assert_int_eq(bg_store_open(&s, dir, "44030x", NULL, &err), BG_EINVAL);
    ck_assert(!exists(dir));

    ck_assert_int_eq(bg_store_open(&s, dir, "440300", NULL, &err), BG_OK);
    ck_assert_str_eq(bg_store_city(s), "440300");
    ck_assert_str_eq(bg_store_scale(s)->name, "ABCD");
    ck_assert_int_eq(bg_store_schema_version(s), BG_STORE_SCHEMA_VERSION);
    ck_assert_str_eq(q_text(s, "PRAGMA journal_mode"), "wal");
    ck_assert_int_eq(q_int(s, "PRAGMA foreign_keys"), 1);
    ck_assert_int_eq(q_int(s, "PRAGMA synchronous"), 2); /* FULL */
    bg_store_close(s);
    struct stat st;
    ck_assert_int_eq(stat(dir, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0700);
    ck_assert_int_eq(stat(db, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);

    ck_assert_int_eq(bg_store_open(&s, dir, NULL, NULL, &err), BG_OK);
    bg_store_close(s);
    ck_assert_int_eq(bg_store_open(&s, dir, "440100", NULL, &err), BG_EINVAL);
    ck_assert_msg(strstr(err.msg, "440300 (Shenzhen)") && strstr(err.msg, "440100 (Guangzhou)"),
                  "%s", err.msg);
    bg_scale other;
    ck_assert_int_eq(bg_scale_parse("X=1,2,3", &other, &err), BG_OK);
    ck_assert_int_eq(bg_store_open(&s, dir, NULL, &other, &err), BG_EINVAL);
    ck_assert_msg(strstr(err.msg, "ABCD=A,B,C,D") && strstr(err.msg, "X=1,2,3"), "%s", err.msg);

    /* A store from the future. */
    sqlite3 *db3;
    ck_assert_int_eq(sqlite3_open(db, &db3), SQLITE_OK);
    ck_assert_int_eq(sqlite3_exec(db3, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db3);
    ck_assert_int_eq(bg_store_open(&s, dir, NULL, NULL, &err), BG_EDB);
    char want[96];
    snprintf(want, sizeof want, "schema version 99, newer than this baygate knows (%d)",
             BG_STORE_SCHEMA_VERSION);
    ck_assert_msg(strstr(err.msg, want), "%s", err.msg);
}
END_TEST

/* Files that cannot be imported at all. */
START_TEST(t_bad_paths)
{
    char dir[256], file[512];
    make_dir(dir, sizeof dir);
    path_in(file, sizeof file, dir, "missing.csv");
    bg_store *s = open_store(dir);
    bg_import_result r;
    bg_err err;
    ck_assert_int_eq(import(s, file, NULL, &r, &err), BG_EIO);
    ck_assert_msg(strstr(err.msg, "cannot open") && strstr(err.msg, "missing.csv"), "%s", err.msg);
    ck_assert_int_eq(import(s, dir, NULL, &r, &err), BG_EINVAL);
    ck_assert_msg(strstr(err.msg, "is not a regular file"), "%s", err.msg);
    /* An unwritable report location fails before the store is touched. */
    path_in(file, sizeof file, dir, "ok.csv");
    write_std(file, 0, 5, 0);
    bg_import_opts o = {.report_path = "/nonexistent-dir/r.csv"};
    ck_assert_int_eq(import(s, file, &o, &r, &err), BG_EIO);
    ck_assert_msg(strstr(err.msg, "cannot create report"), "%s", err.msg);
    ck_assert_int_eq(q_int(s, "SELECT count(*) FROM imports"), 0);
    /* The report may not replace the data file. */
    bg_import_opts same = {.report_path = file};
    ck_assert_int_eq(import(s, file, &same, &r, &err), BG_EINVAL);
    ck_assert_msg(strstr(err.msg, "is the input file"), "%s", err.msg);
    bg_store_close(s);
}
END_TEST

/* A file that changes between the digest pass and the row pass is not imported: the
 * recorded digest must describe the bytes that went in. The progress callback appends to
 * the file right after the digest, before any row is read. */
static void
append_to_file(void *ctx, bg_import_phase phase, uint64_t rows)
{
    if (phase == BG_IMPORT_PHASE_ROWS && rows == 0) {
        FILE *f = fopen(ctx, "ab");
        fprintf(f, "%s,Sneaked In,,,,,,,,,\n", U(777777));
        fclose(f);
    }
}

START_TEST(t_file_changed)
{
    char dir[256], file[512];
    make_dir(dir, sizeof dir);
    path_in(file, sizeof file, dir, "moving.csv");
    write_std(file, 0, 100, 0);
    bg_store *s = open_store(dir);
    snapshot before, after;
    snap(s, &before);
    bg_import_opts o = {.progress = append_to_file, .progress_ctx = file};
    bg_import_result r;
    bg_err err;
    ck_assert_int_eq(import(s, file, &o, &r, &err), BG_EIO);
    ck_assert_msg(strstr(err.msg, "changed while it was being imported"), "%s", err.msg);
    ck_assert_int_eq(r.import_id, 0);
    snap(s, &after);
    assert_same(&before, &after);
    /* Now stable: it imports, all 101 rows. */
    import_ok(s, file, NULL, &r);
    ck_assert_uint_eq(r.inserted, 101);
    bg_store_close(s);
}
END_TEST

/* Progress: the digest, rows every 8192, commit, done, in that order. */
typedef struct calls {
    int n;
    bg_import_phase phase[32];
    uint64_t rows[32];
} calls;

static void
record_progress(void *ctx, bg_import_phase phase, uint64_t rows)
{
    calls *c = ctx;
    if (c->n < 32) {
        c->phase[c->n] = phase;
        c->rows[c->n] = rows;
    }
    c->n++;
}

START_TEST(t_progress)
{
    char dir[256], file[512];
    make_dir(dir, sizeof dir);
    path_in(file, sizeof file, dir, "p.csv");
    write_std(file, 0, 20000, 0);
    bg_store *s = open_store(dir);
    calls c = {0};
    bg_import_opts o = {.progress = record_progress, .progress_ctx = &c};
    bg_import_result r;
    import_ok(s, file, &o, &r);
    ck_assert_int_eq(c.n, 6);
    static const bg_import_phase want_phase[] = {BG_IMPORT_PHASE_DIGEST, BG_IMPORT_PHASE_ROWS,
                                                 BG_IMPORT_PHASE_ROWS,   BG_IMPORT_PHASE_ROWS,
                                                 BG_IMPORT_PHASE_COMMIT, BG_IMPORT_PHASE_DONE};
    static const uint64_t want_rows[] = {0, 0, 8192, 16384, 20000, 20000};
    for (int i = 0; i < 6; i++) {
        ck_assert_int_eq(c.phase[i], want_phase[i]);
        ck_assert_uint_eq(c.rows[i], want_rows[i]);
    }
    bg_store_close(s);
}
END_TEST

/*
 * kill -9 mid-import. A child process imports a 50k-row file (1000 rows known to the
 * store, 800 of them changing it, 49000 new) with a tiny page cache, so uncommitted pages spill
 * into the WAL. Its progress callback, at the chosen point, writes a byte to a pipe and pauses; the
 * parent reads the byte (no sleeps), checks the WAL holds the child's uncommitted pages,
 * SIGKILLs it, and asserts the store is exactly as before and that the same file then
 * imports normally.
 */
typedef struct kill_point {
    int fd;
    bool at_commit;
    uint64_t after_rows;
} kill_point;

static void
pause_here(void *ctx, bg_import_phase phase, uint64_t rows)
{
    kill_point *k = ctx;
    bool now = k->at_commit ? phase == BG_IMPORT_PHASE_COMMIT
                            : phase == BG_IMPORT_PHASE_ROWS && rows >= k->after_rows;
    if (!now)
        return;
    char b = 'k';
    if (write(k->fd, &b, 1) != 1)
        _exit(4);
    for (;;)
        pause();
}

static void
kill_during_import(bool at_commit)
{
    char dir[256], base[512], file[512], wal[600];
    make_dir(dir, sizeof dir);
    path_in(base, sizeof base, dir, "base.csv");
    path_in(file, sizeof file, dir, "big.csv");
    path_in(wal, sizeof wal, dir, "credit.db-wal");
    write_std(base, 0, 2000, 0);
    write_std(file, 1000, 50000, 1);

    bg_store *s = open_store(dir);
    bg_import_result r;
    import_ok(s, base, NULL, &r);
    snapshot before, after;
    snap(s, &before);
    bg_store_close(s); /* never carry an SQLite connection across fork */
    struct stat st;
    ck_assert(stat(wal, &st) != 0 || st.st_size == 0); /* checkpointed on close */

    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(p[0]);
        bg_store *cs = NULL;
        bg_err err;
        if (bg_store_open(&cs, dir, NULL, NULL, &err) != BG_OK)
            _exit(2);
        kill_point k = {.fd = p[1], .at_commit = at_commit, .after_rows = 16384};
        bg_import_opts o = {.progress = pause_here, .progress_ctx = &k, .cache_kib = 256};
        bg_import_result cr;
        bg_import_file(cs, file, &o, &cr, &err);
        _exit(3); /* not reached: the callback pauses until killed */
    }
    close(p[1]);
    char b = 0;
    ck_assert_int_eq(read(p[0], &b, 1), 1);
    close(p[0]);
    ck_assert_int_eq(b, 'k');

    /* The child is parked inside its transaction: its pages are in the WAL, uncommitted. */
    ck_assert_int_eq(stat(wal, &st), 0);
    ck_assert_msg(st.st_size > 256 * 1024, "WAL only %lld bytes", (long long)st.st_size);

    ck_assert_int_eq(kill(pid, SIGKILL), 0);
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

    /* Its report had rows (the 800 changes come first) but no name yet: nothing of it
     * is left beside the file, not even an empty temp (issue 16). */
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    for (struct dirent *de; (de = readdir(d)) != NULL;)
        ck_assert_msg(strncmp(de->d_name, "big.csv.", 8) != 0, "left by the killed import: %s",
                      de->d_name);
    closedir(d);

    s = open_store(dir);
    snap(s, &after);
    assert_same(&before, &after);
    assert_integrity(s);

    /* The killed import left no trace: the same file imports, in full. */
    import_ok(s, file, NULL, &r);
    ck_assert(!r.already_imported);
    ck_assert_int_eq(r.import_id, 2);
    ck_assert_uint_eq(r.rows, 50000);
    ck_assert_uint_eq(r.inserted, 49000);
    ck_assert_uint_eq(r.updated, 800); /* the 200 ungraded by variant 1 change nothing */
    bg_store_counts c;
    bg_err err;
    ck_assert_int_eq(bg_store_counts_get(s, &c, &err), BG_OK);
    ck_assert_uint_eq(c.enterprises, 51000);
    assert_integrity(s);
    bg_store_close(s);
}

START_TEST(t_kill_mid_rows)
{
    kill_during_import(false);
}
END_TEST

START_TEST(t_kill_at_commit)
{
    kill_during_import(true);
}
END_TEST

/* The CLI's contract: exit codes, messages, JSON. Runs the real binary. */
static int
run(const char *cmd, char *out, size_t outsz)
{
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t n = fread(out, 1, outsz - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    ck_assert(WIFEXITED(st));
    return WEXITSTATUS(st);
}

START_TEST(t_cli)
{
    if (access(BG_BAYGATE, X_OK) != 0) {
        fprintf(stderr, "t_cli: %s not built; build the baygate target first\n", BG_BAYGATE);
        ck_abort_msg("baygate binary missing");
    }
    char dir[256], file[512], bad[512], cmd[4096], out[8192];
    make_dir(dir, sizeof dir);
    path_in(file, sizeof file, dir, "c.csv");
    path_in(bad, sizeof bad, dir, "bad.csv");
    write_std(file, 0, 100, 0);
    FILE *f = fopen(bad, "wb");
    fputs(hdr(), f);
    fprintf(f, "%s,Fine,,,,,,,,,\nNOPE,Bad,,,,,,,,,\n", U(500));
    fclose(f);

    snprintf(cmd, sizeof cmd, "%s import --help", BG_BAYGATE);
    ck_assert_int_eq(run(cmd, out, sizeof out), 0);
    ck_assert(strstr(out, "usage: baygate import") != NULL);
    snprintf(cmd, sizeof cmd, "%s import --data-dir %s/d 2>&1", BG_BAYGATE, dir);
    ck_assert_int_eq(run(cmd, out, sizeof out), 2);
    snprintf(cmd, sizeof cmd, "%s import --data-dir %s/d %s 2>&1", BG_BAYGATE, dir, file);
    ck_assert_int_eq(run(cmd, out, sizeof out), 2); /* new store, no --city */
    ck_assert_msg(strstr(out, "a city code is needed") != NULL, "%s", out);
    snprintf(cmd, sizeof cmd, "%s import --bogus 2>&1", BG_BAYGATE);
    ck_assert_int_eq(run(cmd, out, sizeof out), 2);

    snprintf(cmd, sizeof cmd, "%s import --data-dir %s/d --city 440300 --quiet %s", BG_BAYGATE, dir,
             file);
    ck_assert_int_eq(run(cmd, out, sizeof out), 0);
    ck_assert_msg(strstr(out, "in this file:") && strstr(out, "new         100") &&
                      strstr(out, "0.0000 %") && strstr(out, "store totals after:") &&
                      strstr(out, "enterprises 100, evaluations 80"),
                  "%s", out);
    ck_assert_int_eq(run(cmd, out, sizeof out), 0);
    ck_assert_msg(strstr(out, "already imported") && strstr(out, "import #1") &&
                      strstr(out, "--force"),
                  "%s", out);

    snprintf(cmd, sizeof cmd, "%s import --data-dir %s/d --strict --json %s", BG_BAYGATE, dir, bad);
    ck_assert_int_eq(run(cmd, out, sizeof out), 1);
    ck_assert_msg(strstr(out, "\"status\":\"aborted\"") && strstr(out, "\"rejected\":1") &&
                      strstr(out, "line 3: uscc:"),
                  "%s", out);
    snprintf(cmd, sizeof cmd, "%s import --data-dir %s/d --json %s", BG_BAYGATE, dir, bad);
    ck_assert_int_eq(run(cmd, out, sizeof out), 0);
    ck_assert_msg(strstr(out, "\"status\":\"imported\"") && strstr(out, "\"inserted\":1,") &&
                      strstr(out, "\"error_rate_percent\":\"50.0000\"") &&
                      strstr(out, "\"meets_target\":false"),
                  "%s", out);
}
END_TEST

static Suite *
import_suite(void)
{
    Suite *s = suite_create("import");
    TCase *tc = tcase_create("import");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, t_clean_import);
    tcase_add_test(tc, t_quarantine_report);
    tcase_add_test(tc, t_strict_abort);
    tcase_add_test(tc, t_strict_clean);
    tcase_add_test(tc, t_duplicates);
    tcase_add_test(tc, t_changes);
    tcase_add_test(tc, t_absent_columns_kept);
    tcase_add_test(tc, t_replace);
    tcase_add_test(tc, t_dry_run);
    tcase_add_test(tc, t_removal_guard);
    tcase_add_test(tc, t_expired_and_foreign);
    tcase_add_test(tc, t_reimport);
    tcase_add_test(tc, t_eval_serials);
    tcase_add_test(tc, t_malformed_csv);
    tcase_add_test(tc, t_report_escaping);
    tcase_add_test(tc, t_empty_and_header_only);
    tcase_add_test(tc, t_bad_header);
    tcase_add_test(tc, t_scale);
    tcase_add_test(tc, t_bad_dates);
    tcase_add_test(tc, t_store_open);
    tcase_add_test(tc, t_bad_paths);
    tcase_add_test(tc, t_file_changed);
    tcase_add_test(tc, t_progress);
    tcase_add_test(tc, t_kill_mid_rows);
    tcase_add_test(tc, t_kill_at_commit);
    tcase_add_test(tc, t_cli);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    if (sodium_init() < 0)
        return EXIT_FAILURE;
    SRunner *sr = srunner_create(import_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
