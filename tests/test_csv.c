/*
 * test_csv.c - the streaming CSV reader against well-formed and hostile input.
 *
 * Every test feeds bytes through a real FILE (tmpfile) and checks records,
 * fields, line numbers and error messages, and that the reader carries on
 * with the next record after a bad one.
 */
#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/record/csv.h"

typedef struct reader {
    FILE *f;
    bg_csv *c;
    bg_csv_field *fields;
    size_t n;
    bg_err err;
} reader;

static void
open_bytes(reader *r, const char *data, size_t len, size_t max_record)
{
    memset(r, 0, sizeof *r);
    r->f = tmpfile();
    ck_assert_ptr_nonnull(r->f);
    ck_assert_uint_eq(fwrite(data, 1, len, r->f), len);
    rewind(r->f);
    ck_assert_int_eq(bg_csv_open(&r->c, r->f, max_record, &r->err), BG_OK);
}

static void
open_str(reader *r, const char *data)
{
    open_bytes(r, data, strlen(data), 64 * 1024);
}

static void
close_reader(reader *r)
{
    bg_csv_close(r->c);
    fclose(r->f);
}

static int
next(reader *r)
{
    bg_err_clear(&r->err);
    return bg_csv_next(r->c, &r->fields, &r->n, &r->err);
}

static bool
field_is(const reader *r, size_t i, const char *want)
{
    return i < r->n && r->fields[i].len == strlen(want) &&
           memcmp(r->fields[i].p, want, r->fields[i].len) == 0;
}

/* Asserts the next record is OK, starts on line, and has exactly the given fields. */
#define EXPECT_RECORD(r, line, ...)                                                                \
    do {                                                                                           \
        const char *want_[] = {__VA_ARGS__};                                                       \
        size_t nwant_ = sizeof want_ / sizeof want_[0];                                            \
        int rc_ = next(r);                                                                         \
        ck_assert_msg(rc_ == BG_OK, "expected a record, got %d: %s", rc_, (r)->err.msg);           \
        ck_assert_uint_eq(bg_csv_line((r)->c), (line));                                            \
        ck_assert_uint_eq((r)->n, nwant_);                                                         \
        for (size_t i_ = 0; i_ < nwant_; i_++)                                                     \
            ck_assert_msg(field_is(r, i_, want_[i_]), "field %zu: want '%s', got '%.*s'", i_,      \
                          want_[i_], (int)(r)->fields[i_].len, (r)->fields[i_].p);                 \
    } while (0)

#define EXPECT_END(r) ck_assert_int_eq(next(r), BG_ENOTFOUND)

/* Asserts the next record fails with code and a message equal to msg. */
#define EXPECT_FAULT(r, code, want_msg)                                                            \
    do {                                                                                           \
        int rc_ = next(r);                                                                         \
        ck_assert_int_eq(rc_, (code));                                                             \
        ck_assert_str_eq((r)->err.msg, (want_msg));                                                \
    } while (0)

/* Plain records, LF line ends, no final newline on the last one. */
START_TEST(t_plain)
{
    reader r;
    open_str(&r, "a,b,c\n1,2,3\nx,y,z");
    EXPECT_RECORD(&r, 1, "a", "b", "c");
    EXPECT_RECORD(&r, 2, "1", "2", "3");
    EXPECT_RECORD(&r, 3, "x", "y", "z");
    EXPECT_END(&r);
    EXPECT_END(&r); /* stays at the end */
    close_reader(&r);
}
END_TEST

/* Quoted fields: embedded commas, doubled quotes, empty quoted fields. */
START_TEST(t_quotes)
{
    reader r;
    open_str(&r, "\"a\",\"b,c\",\"d\"\"e\"\"\",\"\"\n\"\"\"\",x\n");
    EXPECT_RECORD(&r, 1, "a", "b,c", "d\"e\"", "");
    EXPECT_RECORD(&r, 2, "\"", "x");
    EXPECT_END(&r);
    close_reader(&r);
}
END_TEST

/* A newline inside quotes is data, and the line numbers of later records still match. */
START_TEST(t_embedded_newlines)
{
    reader r;
    open_str(&r, "\"x\ny\",z\n\"1\n2\n3\",w\nnext,1\n");
    EXPECT_RECORD(&r, 1, "x\ny", "z");
    EXPECT_RECORD(&r, 3, "1\n2\n3", "w");
    EXPECT_RECORD(&r, 6, "next", "1");
    EXPECT_END(&r);
    close_reader(&r);
}
END_TEST

/* CRLF ends records without leaving CR in fields; CRLF inside quotes is kept verbatim. */
START_TEST(t_crlf)
{
    reader r;
    open_str(&r, "a,b\r\nc,\"d\r\ne\"\r\nf,g\r\n");
    EXPECT_RECORD(&r, 1, "a", "b");
    EXPECT_RECORD(&r, 2, "c", "d\r\ne");
    EXPECT_RECORD(&r, 4, "f", "g");
    EXPECT_END(&r);
    close_reader(&r);
}
END_TEST

/* A lone CR ends a line like LF (old Mac files); both count for line numbers. */
START_TEST(t_lone_cr)
{
    reader r;
    open_str(&r, "a,b\rc,d\n\re\r\"f\rg\",h\n");
    EXPECT_RECORD(&r, 1, "a", "b");
    EXPECT_RECORD(&r, 2, "c", "d");
    EXPECT_RECORD(&r, 4, "e");
    EXPECT_RECORD(&r, 5, "f\rg", "h");
    EXPECT_END(&r);
    close_reader(&r);
}
END_TEST

/* A leading UTF-8 BOM is skipped; a BOM elsewhere is data. */
START_TEST(t_bom)
{
    reader r;
    open_str(&r, "\xEF\xBB\xBFuscc,name\n\xEF\xBB\xBFx,y\n");
    EXPECT_RECORD(&r, 1, "uscc", "name");
    EXPECT_RECORD(&r, 2, "\xEF\xBB\xBFx", "y");
    EXPECT_END(&r);
    close_reader(&r);

    /* A file that is only a BOM has no records. */
    open_str(&r, "\xEF\xBB\xBF");
    EXPECT_END(&r);
    close_reader(&r);
}
END_TEST

/* An empty file, and a file of blank lines, have no records. */
START_TEST(t_empty)
{
    reader r;
    open_str(&r, "");
    EXPECT_END(&r);
    ck_assert_uint_eq(bg_csv_offset(r.c), 0);
    close_reader(&r);

    open_str(&r, "\n\r\n\r\n\n");
    EXPECT_END(&r);
    close_reader(&r);
}
END_TEST

/* Blank lines are skipped but counted; ",", "\"\"" and " " are records, not blank lines. */
START_TEST(t_blank_lines)
{
    reader r;
    open_str(&r, "a\n\n\r\nb\n,\n\"\"\n \n\n");
    EXPECT_RECORD(&r, 1, "a");
    EXPECT_RECORD(&r, 4, "b");
    EXPECT_RECORD(&r, 5, "", "");
    EXPECT_RECORD(&r, 6, "");
    EXPECT_RECORD(&r, 7, " ");
    EXPECT_END(&r);
    close_reader(&r);
}
END_TEST

/* A varying number of fields is the caller's business: the reader returns what is there. */
START_TEST(t_field_counts_vary)
{
    reader r;
    open_str(&r, "a,b,c\n1\n1,2,3,4\n");
    EXPECT_RECORD(&r, 1, "a", "b", "c");
    EXPECT_RECORD(&r, 2, "1");
    EXPECT_RECORD(&r, 3, "1", "2", "3", "4");
    EXPECT_END(&r);
    close_reader(&r);
}
END_TEST

/* 64 fields are fine; 65 fail that record only, with the line named. */
START_TEST(t_too_many_fields)
{
    char buf[1024];
    size_t n = 0;
    for (int i = 0; i < BG_CSV_MAX_FIELDS; i++)
        n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%d", i ? "," : "", i);
    n += (size_t)snprintf(buf + n, sizeof buf - n, "\n");
    for (int i = 0; i <= BG_CSV_MAX_FIELDS; i++)
        n += (size_t)snprintf(buf + n, sizeof buf - n, "%s\"%d\"", i ? "," : "", i);
    n += (size_t)snprintf(buf + n, sizeof buf - n, "\nafter,1\n");

    reader r;
    open_bytes(&r, buf, n, 64 * 1024);
    ck_assert_int_eq(next(&r), BG_OK);
    ck_assert_uint_eq(r.n, BG_CSV_MAX_FIELDS);
    ck_assert(field_is(&r, 63, "63"));
    EXPECT_FAULT(&r, BG_EINVAL, "line 2: more than 64 fields");
    ck_assert_uint_eq(r.n, BG_CSV_MAX_FIELDS); /* the fields read before the fault */
    EXPECT_RECORD(&r, 3, "after", "1");
    EXPECT_END(&r);
    close_reader(&r);
}
END_TEST

/* A quote opened and never closed fails at end of file, naming the line it opened on. */
START_TEST(t_unterminated_quote)
{
    reader r;
    open_str(&r, "ok,1\nx,\"never closed\nmore\nlines\n");
    EXPECT_RECORD(&r, 1, "ok", "1");
    EXPECT_FAULT(&r, BG_EINVAL, "line 2: unterminated quoted field");
    ck_assert_uint_eq(r.n, 1);
    ck_assert(field_is(&r, 0, "x"));
    EXPECT_END(&r);
    close_reader(&r);
}
END_TEST

/* A quote inside an unquoted field, or text after a closing quote: that line is skipped. */
START_TEST(t_stray_quote)
{
    reader r;
    open_str(&r, "ab\"c,d\nnext,1\n\"ab\"c,d\nx,\"y\" ,z\nlast,2\n");
    EXPECT_FAULT(&r, BG_EINVAL,
                 "line 1, field 1: stray '\"' in an unquoted field (quote the field and double "
                 "the quote)");
    EXPECT_RECORD(&r, 2, "next", "1");
    EXPECT_FAULT(&r, BG_EINVAL,
                 "line 3, field 1: text after the closing quote (expected ',' or the end of the "
                 "line)");
    EXPECT_FAULT(&r, BG_EINVAL,
                 "line 4, field 2: text after the closing quote (expected ',' or the end of the "
                 "line)");
    ck_assert_uint_eq(r.n, 1);
    EXPECT_RECORD(&r, 5, "last", "2");
    EXPECT_END(&r);
    close_reader(&r);
}
END_TEST

/* Bytes that are not UTF-8 fail the record, naming line, field and byte; the record is
 * still read to its end (fields available) and the next one is fine. */
START_TEST(t_invalid_utf8)
{
    reader r;
    open_str(&r, "ok,\xFF\xFE,z\n"
                 "a,b\xC0\x80\n"                  /* overlong NUL */
                 "\"q\xED\xA0\x80\",1\n"          /* UTF-16 surrogate */
                 "\xE6\xB7\xB1\xE5,2\n"           /* truncated sequence */
                 "\xE6\xB7\xB1\xE5\x9C\xB3,3\n"); /* 深圳: fine */
    EXPECT_FAULT(&r, BG_EINVAL, "line 1, field 2: invalid UTF-8 at byte 1");
    ck_assert_uint_eq(r.n, 3);
    ck_assert(field_is(&r, 2, "z"));
    EXPECT_FAULT(&r, BG_EINVAL, "line 2, field 2: invalid UTF-8 at byte 2");
    EXPECT_FAULT(&r, BG_EINVAL, "line 3, field 1: invalid UTF-8 at byte 2");
    EXPECT_FAULT(&r, BG_EINVAL, "line 4, field 1: invalid UTF-8 at byte 4");
    EXPECT_RECORD(&r, 5, "\xE6\xB7\xB1\xE5\x9C\xB3", "3");
    EXPECT_END(&r);
    close_reader(&r);
}
END_TEST

/* A 1 MB line with a 64 KiB bound fails with ELIMIT; the next record is read correctly. */
START_TEST(t_huge_line)
{
    size_t big = 1024 * 1024;
    char *buf = malloc(big + 64);
    ck_assert_ptr_nonnull(buf);
    size_t n = (size_t)sprintf(buf, "ok,0\n");
    memset(buf + n, 'x', big);
    buf[n + 500] = ','; /* a few fields in it, and a quote-free body */
    n += big;
    n += (size_t)sprintf(buf + n, "\nnext,1\n");

    reader r;
    open_bytes(&r, buf, n, 64 * 1024);
    EXPECT_RECORD(&r, 1, "ok", "0");
    EXPECT_FAULT(&r, BG_ELIMIT, "line 2: record longer than 65536 bytes");
    EXPECT_RECORD(&r, 3, "next", "1");
    EXPECT_END(&r);
    close_reader(&r);
    free(buf);
}
END_TEST

/* A 1 MB quoted field with embedded newlines (and commas and doubled quotes) is skipped
 * whole, quote-aware; line numbers after it stay right. */
START_TEST(t_huge_quoted_field)
{
    size_t big = 1024 * 1024;
    char *buf = malloc(big + 64);
    ck_assert_ptr_nonnull(buf);
    size_t n = (size_t)sprintf(buf, "a,\"");
    size_t newlines = 0;
    for (size_t i = 0; i < big; i++) {
        char ch = "abc,\n\"\""[i % 7];
        buf[n + i] = ch;
        newlines += ch == '\n';
    }
    n += big;
    /* big % 7 != 6 could end on a lone quote; make the count of quotes even. */
    size_t quotes = 0;
    for (size_t i = 3; i < n; i++)
        quotes += buf[i] == '"';
    if (quotes % 2)
        buf[n++] = '"';
    n += (size_t)sprintf(buf + n, "\",end\nnext,1\n");

    reader r;
    open_bytes(&r, buf, n, 64 * 1024);
    EXPECT_FAULT(&r, BG_ELIMIT, "line 1: record longer than 65536 bytes");
    EXPECT_RECORD(&r, 2 + newlines, "next", "1");
    EXPECT_END(&r);
    close_reader(&r);
    free(buf);
}
END_TEST

/* The bound is on raw bytes: exactly max_record is fine, one more fails. */
START_TEST(t_record_bound_exact)
{
    char buf[64];
    reader r;
    snprintf(buf, sizeof buf, "\"ab\",cd\n\"ab\",cde\nx\n"); /* 7 and 8 raw bytes */
    open_bytes(&r, buf, strlen(buf), 7);
    EXPECT_RECORD(&r, 1, "ab", "cd");
    EXPECT_FAULT(&r, BG_ELIMIT, "line 2: record longer than 7 bytes");
    EXPECT_RECORD(&r, 3, "x");
    close_reader(&r);
}
END_TEST

/* Records split across read-buffer boundaries at every awkward spot: CR|LF, a doubled
 * quote, a multibyte character, a closing quote. */
START_TEST(t_buffer_boundaries)
{
    static const char *const tails[] = {"a,b\r\n", "\"x\"\"y\"\n", "\xE6\xB7\xB1\xE5\x9C\xB3\n",
                                        "\"q\",r\n"};
    for (size_t t = 0; t < sizeof tails / sizeof tails[0]; t++) {
        for (size_t shift = 0; shift < strlen(tails[t]); shift++) {
            /* Filler lines so the tail starts 'shift' bytes before the boundary. */
            size_t total = BG_CSV_BUFFER + 64;
            char *buf = malloc(total + 128);
            ck_assert_ptr_nonnull(buf);
            size_t start = BG_CSV_BUFFER - 1 - shift;
            /* Lines of 100 bytes (the first one longer by the remainder), none blank. */
            size_t n = 0, lines = 0;
            while (n < start) {
                size_t len = lines == 0 ? 99 + start % 100 : 99;
                memset(buf + n, 'f', len);
                n += len;
                buf[n++] = '\n';
                lines++;
            }
            ck_assert_uint_eq(n, start);
            size_t tl = strlen(tails[t]);
            memcpy(buf + n, tails[t], tl);
            n += tl;
            n += (size_t)sprintf(buf + n, "after,1\n");

            reader r;
            open_bytes(&r, buf, n, 64 * 1024);
            for (size_t i = 0; i < lines; i++)
                ck_assert_int_eq(next(&r), BG_OK);
            ck_assert_int_eq(next(&r), BG_OK);
            ck_assert_uint_eq(bg_csv_line(r.c), lines + 1);
            switch (t) {
            case 0:
                ck_assert(r.n == 2 && field_is(&r, 0, "a") && field_is(&r, 1, "b"));
                break;
            case 1:
                ck_assert(r.n == 1 && field_is(&r, 0, "x\"y"));
                break;
            case 2:
                ck_assert(r.n == 1 && field_is(&r, 0, "\xE6\xB7\xB1\xE5\x9C\xB3"));
                break;
            default:
                ck_assert(r.n == 2 && field_is(&r, 0, "q") && field_is(&r, 1, "r"));
                break;
            }
            EXPECT_RECORD(&r, lines + 2, "after", "1");
            EXPECT_END(&r);
            ck_assert_uint_eq(bg_csv_offset(r.c), n);
            close_reader(&r);
            free(buf);
        }
    }
}
END_TEST

/* Many varied records across several buffers come back exactly, and the read tap sees
 * every byte once. */
static void
count_bytes(void *ctx, const unsigned char *p, size_t n)
{
    (void)p;
    *(size_t *)ctx += n;
}

START_TEST(t_many_records_and_tap)
{
    size_t cap = 4 * BG_CSV_BUFFER;
    char *buf = malloc(cap);
    ck_assert_ptr_nonnull(buf);
    size_t n = 0, rows = 0;
    while (n + 200 < cap) {
        n += (size_t)sprintf(buf + n, "%zu,\"name, %zu \"\"q\"\"\",%s\r\n", rows, rows,
                             rows % 3 ? "" : "\xE6\xB7\xB1");
        rows++;
    }
    reader r;
    open_bytes(&r, buf, n, 1024);
    size_t seen = 0;
    bg_csv_on_read(r.c, count_bytes, &seen);
    for (size_t i = 0; i < rows; i++) {
        char a[32], b[64];
        snprintf(a, sizeof a, "%zu", i);
        snprintf(b, sizeof b, "name, %zu \"q\"", i);
        EXPECT_RECORD(&r, i + 1, a, b, i % 3 ? "" : "\xE6\xB7\xB1");
    }
    EXPECT_END(&r);
    ck_assert_uint_eq(seen, n);
    ck_assert_uint_eq(bg_csv_offset(r.c), n);
    close_reader(&r);
    free(buf);
}
END_TEST

/* Random bytes (biased to CSV syntax): the reader always terminates, never reads past its
 * bounds (ASan), and its line numbers never go backwards. */
START_TEST(t_garbage)
{
    static const char alphabet[] = "ab,\"\r\n\xFF\xE6\xB7\xB1 ";
    unsigned seed = 12345;
    for (int round = 0; round < 200; round++) {
        char buf[4096];
        size_t n = (size_t)(round * 20 % (int)sizeof buf);
        for (size_t i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            buf[i] = alphabet[(seed >> 16) % (sizeof alphabet - 1)];
        }
        reader r;
        open_bytes(&r, buf, n, 64);
        uint64_t last = 0;
        int rc, guard = 0;
        while ((rc = next(&r)) != BG_ENOTFOUND) {
            ck_assert(rc == BG_OK || rc == BG_EINVAL || rc == BG_ELIMIT);
            ck_assert_uint_ge(bg_csv_line(r.c), last);
            last = bg_csv_line(r.c);
            ck_assert_int_lt(++guard, 10000);
            if (rc != BG_OK)
                ck_assert_str_ne(r.err.msg, "");
        }
        close_reader(&r);
    }
}
END_TEST

/* max_record must be sensible. */
START_TEST(t_open_bounds)
{
    bg_csv *c = NULL;
    bg_err err;
    ck_assert_int_eq(bg_csv_open(&c, stdin, 0, &err), BG_EINVAL);
    ck_assert_ptr_null(c);
    ck_assert_int_eq(bg_csv_open(&c, stdin, (size_t)BG_CSV_MAX_RECORD_LIMIT + 1, &err), BG_EINVAL);
    ck_assert_ptr_null(c);
}
END_TEST

static Suite *
csv_suite(void)
{
    Suite *s = suite_create("csv");
    TCase *tc = tcase_create("reader");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, t_plain);
    tcase_add_test(tc, t_quotes);
    tcase_add_test(tc, t_embedded_newlines);
    tcase_add_test(tc, t_crlf);
    tcase_add_test(tc, t_lone_cr);
    tcase_add_test(tc, t_bom);
    tcase_add_test(tc, t_empty);
    tcase_add_test(tc, t_blank_lines);
    tcase_add_test(tc, t_field_counts_vary);
    tcase_add_test(tc, t_too_many_fields);
    tcase_add_test(tc, t_unterminated_quote);
    tcase_add_test(tc, t_stray_quote);
    tcase_add_test(tc, t_invalid_utf8);
    tcase_add_test(tc, t_huge_line);
    tcase_add_test(tc, t_huge_quoted_field);
    tcase_add_test(tc, t_record_bound_exact);
    tcase_add_test(tc, t_buffer_boundaries);
    tcase_add_test(tc, t_many_records_and_tap);
    tcase_add_test(tc, t_garbage);
    tcase_add_test(tc, t_open_bounds);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(csv_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
