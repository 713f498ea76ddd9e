/*
 * test_record.c - the data format: columns, dates and grade scales.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/record/record.h"

static int
col(const char *name, bg_column *c, bg_err *err)
{
    return bg_column_parse(name, strlen(name), c, err);
}

START_TEST(columns_are_matched_by_name)
{
    bg_column c;
    ck_assert_int_eq(col("uscc", &c, NULL), BG_OK);
    ck_assert_int_eq(c.kind, BG_COL_USCC);
    ck_assert_int_eq(col("valid_until", &c, NULL), BG_OK);
    ck_assert_int_eq(c.kind, BG_COL_VALID_UNTIL);
    ck_assert_int_eq(col("abnormal-operation:listed_at", &c, NULL), BG_OK);
    ck_assert_int_eq(c.kind, BG_COL_LIST_LISTED_AT);
    ck_assert_int_eq(c.list, BG_LIST_ABNORMAL_OPERATION);
    ck_assert_int_eq(col("serious-dishonesty:expires_at", &c, NULL), BG_OK);
    ck_assert_int_eq(c.kind, BG_COL_LIST_EXPIRES_AT);
    ck_assert_int_eq(c.list, BG_LIST_SERIOUS_DISHONESTY);
}
END_TEST

START_TEST(unknown_columns_and_lists_are_named)
{
    bg_column c;
    bg_err err = {0};
    ck_assert_int_eq(col("grades", &c, &err), BG_EINVAL);
    ck_assert_str_eq(err.msg, "unknown column 'grades'");
    ck_assert_int_eq(col("blacklist:reason", &c, &err), BG_EINVAL);
    ck_assert_str_eq(err.msg, "column 'blacklist:reason': unknown list 'blacklist'");
    ck_assert_int_eq(col("serious-dishonesty:why", &c, &err), BG_EINVAL);
    ck_assert_str_eq(err.msg, "unknown column 'serious-dishonesty:why'");
}
END_TEST

START_TEST(header_lists_every_column_once)
{
    char buf[512];
    size_t n = bg_record_header(buf, sizeof buf);
    ck_assert_uint_eq(n, strlen(buf));
    ck_assert_int_eq(buf[n - 1], '\n');
    buf[n - 1] = '\0';
    size_t columns = 0;
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        bg_column c;
        ck_assert_msg(col(t, &c, NULL) == BG_OK, "header column %s", t);
        columns++;
    }
    ck_assert_uint_eq(columns, 5 + 3 * BG_LIST_COUNT);
}
END_TEST

static int
date(const char *s, int32_t *d, bg_err *err)
{
    return bg_date_parse(s, strlen(s), d, err);
}

START_TEST(dates_round_trip_and_follow_the_calendar)
{
    int32_t d;
    char out[11];
    ck_assert_int_eq(date("1970-01-01", &d, NULL), BG_OK);
    ck_assert_int_eq(d, 0);
    ck_assert_int_eq(date("2024-02-29", &d, NULL), BG_OK);
    bg_date_format(d, out);
    ck_assert_str_eq(out, "2024-02-29");
    ck_assert_int_eq(date("2000-02-29", &d, NULL), BG_OK);
    ck_assert_int_eq(date("2026-06-30", &d, NULL), BG_OK);
    ck_assert_int_eq(d, 20634);
    /* Every day from 1950 to 2100 survives format -> parse. */
    int32_t first, last;
    ck_assert_int_eq(date("1950-01-01", &first, NULL), BG_OK);
    ck_assert_int_eq(date("2100-12-31", &last, NULL), BG_OK);
    for (int32_t x = first; x <= last; x++) {
        int32_t back;
        bg_date_format(x, out);
        ck_assert_int_eq(date(out, &back, NULL), BG_OK);
        ck_assert_int_eq(back, x);
    }
}
END_TEST

START_TEST(impossible_dates_are_refused_with_reason)
{
    int32_t d;
    bg_err err = {0};
    ck_assert_int_eq(date("2023-02-29", &d, &err), BG_EINVAL);
    ck_assert_str_eq(err.msg, "'2023-02-29': day 29 does not exist in that month");
    ck_assert_int_eq(date("1900-02-29", &d, &err), BG_EINVAL);
    ck_assert_int_eq(date("2024-13-01", &d, &err), BG_EINVAL);
    ck_assert_str_eq(err.msg, "'2024-13-01': month 13 does not exist");
    ck_assert_int_eq(date("2024-1-01", &d, &err), BG_EINVAL);
    ck_assert_str_eq(err.msg, "'2024-1-01' is not a date (YYYY-MM-DD)");
    ck_assert_int_eq(date("2024/01/01", &d, &err), BG_EINVAL);
    ck_assert_int_eq(date("20240101", &d, &err), BG_EINVAL);
    ck_assert_int_eq(date("", &d, &err), BG_EINVAL);
    ck_assert_int_eq(date("1800-01-01", &d, &err), BG_EINVAL);
    ck_assert_str_eq(err.msg, "'1800-01-01' is outside 1949-10-01..2199-12-31");
}
END_TEST

START_TEST(list_entries_stop_being_in_force_on_their_expiry_day)
{
    int32_t today = 20000;
    ck_assert(bg_list_entry_in_force(INT32_MIN, today)); /* no expiry date */
    ck_assert(bg_list_entry_in_force(today + 1, today));
    ck_assert(!bg_list_entry_in_force(today, today)); /* expires today: out */
    ck_assert(!bg_list_entry_in_force(today - 365, today));
}
END_TEST

START_TEST(scales_parse_and_index)
{
    bg_scale s;
    bg_err err = {0};
    ck_assert_int_eq(bg_scale_parse("A,B,C,D", &s, &err), BG_OK);
    ck_assert_str_eq(s.name, "ABCD");
    ck_assert_uint_eq(s.ngrades, 4);
    ck_assert_int_eq(bg_scale_index(&s, "C", 1), 2);
    ck_assert_int_eq(bg_scale_index(&s, "E", 1), -1);
    ck_assert_int_eq(bg_scale_parse("sz5=AAA,AA,A,B,C", &s, &err), BG_OK);
    ck_assert_str_eq(s.name, "sz5");
    ck_assert_int_eq(bg_scale_index(&s, "AA", 2), 1);
    char buf[128];
    bg_scale_format(&s, buf, sizeof buf);
    ck_assert_str_eq(buf, "sz5=AAA,AA,A,B,C");
    ck_assert_int_eq(bg_scale_parse("A,,B", &s, &err), BG_EINVAL);
    ck_assert_int_eq(bg_scale_parse("A,B,A", &s, &err), BG_EINVAL);
    ck_assert_str_eq(err.msg, "scale 'A,B,A': grade 'A' appears twice");
    bg_scale_default(&s);
    ck_assert_str_eq(s.name, "ABCD");
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("record");
    TCase *tc = tcase_create("format");
    tcase_add_test(tc, columns_are_matched_by_name);
    tcase_add_test(tc, unknown_columns_and_lists_are_named);
    tcase_add_test(tc, header_lists_every_column_once);
    tcase_add_test(tc, dates_round_trip_and_follow_the_calendar);
    tcase_add_test(tc, impossible_dates_are_refused_with_reason);
    tcase_add_test(tc, scales_parse_and_index);
    tcase_add_test(tc, list_entries_stop_being_in_force_on_their_expiry_day);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
