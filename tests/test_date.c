/*
 * test_date.c - bg_date_format is defined for every int32_t: hostile day
 * counts (a peer's sealed payload, an attestation file) never overflow, and
 * days without a four-digit year are marked, never cut into a false date.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "domain/date.h"

START_TEST(extreme_days_format_without_overflow)
{
    char out[11];
    static const int32_t marked[] = {INT32_MIN,          INT32_MIN + 1,      -719529,  2932897,
                                     INT32_MAX - 719468, INT32_MAX - 719467, INT32_MAX};
    for (size_t i = 0; i < sizeof marked / sizeof marked[0]; i++) {
        memset(out, 'x', sizeof out);
        bg_date_format(marked[i], out);
        ck_assert_str_eq(out, "0000-00-00");
    }
    bg_date_format(-719528, out); /* the first day of year 0 */
    ck_assert_str_eq(out, "0000-01-01");
    bg_date_format(2932896, out); /* the last day of year 9999 */
    ck_assert_str_eq(out, "9999-12-31");
    bg_date_format(0, out);
    ck_assert_str_eq(out, "1970-01-01");
    bg_date_format(-1, out);
    ck_assert_str_eq(out, "1969-12-31");
}
END_TEST

START_TEST(every_four_digit_year_round_trips_through_parse)
{
    /* Parse accepts 1949-10-01..2199-12-31; every formatted day in it parses back. */
    int32_t lo, hi, back;
    ck_assert_int_eq(bg_date_parse("1949-10-01", 10, &lo, NULL), 0);
    ck_assert_int_eq(bg_date_parse("2199-12-31", 10, &hi, NULL), 0);
    char out[11];
    for (int32_t d = lo; d <= hi; d += 7) {
        bg_date_format(d, out);
        ck_assert_int_eq(bg_date_parse(out, strlen(out), &back, NULL), 0);
        ck_assert_int_eq(back, d);
    }
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("date");
    TCase *tc = tcase_create("format");
    tcase_add_test(tc, extreme_days_format_without_overflow);
    tcase_add_test(tc, every_four_digit_year_round_trips_through_parse);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
