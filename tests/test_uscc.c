/*
 * test_uscc.c - USCC normalisation, validation, decoding and error messages.
 *
 * The valid codes below are published codes of real organisations, so the
 * check-character arithmetic is tested against the standard, not against
 * itself.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "domain/uscc.h"

static const char *const published[] = {
    "914403001922038216",                       /* Huawei Technologies, Shenzhen */
    "91440300708461136T",                       /* Shenzhen Tencent Computer Systems */
    "9144030071526726XG",                       /* check character 17 is X */
    "91110000100006485K", "91350100M000100Y43", /* letters in the organisation code */
    "12100000400000624D",                       /* authority 1: public institution */
    "51100000500010993L",                       /* authority 5: social organisation */
};

static int
parse(const char *s, bg_uscc *u, bg_err *err)
{
    return bg_uscc_parse(s, strlen(s), u, err);
}

START_TEST(published_codes_are_valid)
{
    for (size_t i = 0; i < sizeof published / sizeof published[0]; i++) {
        bg_uscc u;
        bg_err err = {0};
        ck_assert_msg(parse(published[i], &u, &err) == BG_OK, "%s: %s", published[i], err.msg);
        ck_assert_str_eq(u.code, published[i]);
    }
}
END_TEST

START_TEST(decodes_fields_and_city)
{
    bg_uscc u;
    ck_assert_int_eq(parse("914403001922038216", &u, NULL), BG_OK);
    ck_assert_int_eq(u.authority, '9');
    ck_assert_int_eq(u.entity_type, '1');
    ck_assert_str_eq(u.division, "440300");
    ck_assert_str_eq(u.city, "440300");
    ck_assert_str_eq(u.org_code, "192203821");
    ck_assert_str_eq(bg_uscc_city_name(u.city), "Shenzhen");
    ck_assert_ptr_nonnull(strstr(bg_uscc_authority_name('9'), "market regulation"));
    ck_assert_ptr_nonnull(strstr(bg_uscc_entity_type_name('9', '1'), "enterprise"));
    ck_assert_ptr_null(bg_uscc_city_name("350100"));
}
END_TEST

/* Builds a valid code from 16 characters by computing both check characters. */
static void
complete(const char *first16, char out[19])
{
    memcpy(out, first16, 16);
    out[16] = bg_uscc_org_check_char(first16 + 8);
    out[17] = bg_uscc_check_char(out);
    out[18] = '\0';
}

START_TEST(district_code_maps_to_city)
{
    char code[19];
    complete("9144030577AB1234", code); /* Nanshan district, 440305 */
    bg_uscc u;
    ck_assert_int_eq(parse(code, &u, NULL), BG_OK);
    ck_assert_str_eq(u.division, "440305");
    ck_assert_str_eq(u.city, "440300");
}
END_TEST

START_TEST(letters_first_authorities_are_valid)
{
    const char *heads[] = {"Y1440100MA59QD12", "N2440600MA5ABC12", "A1440300MA5X0001"};
    for (size_t i = 0; i < 3; i++) {
        char code[19];
        complete(heads[i], code);
        bg_uscc u;
        bg_err err = {0};
        ck_assert_msg(parse(code, &u, &err) == BG_OK, "%s: %s", code, err.msg);
        ck_assert_int_eq(u.authority, heads[i][0]);
        ck_assert_ptr_nonnull(bg_uscc_authority_name(u.authority));
    }
}
END_TEST

START_TEST(unknown_authority_is_named)
{
    char code[19];
    complete("B1440300MA5X0001", code);
    bg_err err = {0};
    bg_uscc u;
    ck_assert_int_eq(parse(code, &u, &err), BG_EINVAL);
    ck_assert_str_eq(err.msg, "position 1: 'B' is not a registration authority code");
}
END_TEST

START_TEST(wrong_check_character_names_expected)
{
    bg_err err = {0};
    bg_uscc u;
    ck_assert_int_eq(parse("91440300708461136K", &u, &err), BG_EINVAL);
    ck_assert_str_eq(err.msg, "position 18: check character is 'K', expected 'T'");
}
END_TEST

START_TEST(wrong_org_check_character_names_expected)
{
    bg_err err = {0};
    bg_uscc u;
    /* Changing position 17 also breaks position 18; the first fault is reported. */
    ck_assert_int_eq(parse("9144030071526726YG", &u, &err), BG_EINVAL);
    ck_assert_str_eq(err.msg,
                     "position 17: organisation code check character is 'Y', expected 'X'");
}
END_TEST

START_TEST(character_outside_alphabet_names_position)
{
    const char *cases[][2] = {
        {"9144O3001922038216", "position 5: 'O' is not in the USCC alphabet"},
        {"91440300I922038216", "position 9: 'I' is not in the USCC alphabet"},
        {"914403001922038S16", "position 16: 'S' is not in the USCC alphabet"},
        {"9144030019220382-6", "position 17: '-' is not in the USCC alphabet"},
        {"9144030019220382中6", "position 17: '中' (U+4E2D) is not in the USCC alphabet"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bg_err err = {0};
        bg_uscc u;
        ck_assert_int_eq(parse(cases[i][0], &u, &err), BG_EINVAL);
        ck_assert_str_eq(err.msg, cases[i][1]);
    }
}
END_TEST

START_TEST(division_code_must_be_digits)
{
    char code[19];
    complete("9144A300MA5X0001", code);
    bg_err err = {0};
    bg_uscc u;
    ck_assert_int_eq(parse(code, &u, &err), BG_EINVAL);
    ck_assert_str_eq(err.msg, "position 5: 'A' is not a digit of the administrative division code");
}
END_TEST

START_TEST(length_is_counted_in_characters)
{
    bg_err err = {0};
    bg_uscc u;
    ck_assert_int_eq(parse("91440300708461136", &u, &err), BG_EINVAL);
    ck_assert_str_eq(err.msg, "length 17, expected 18");
    ck_assert_int_eq(parse("91440300708461136TT", &u, &err), BG_EINVAL);
    ck_assert_str_eq(err.msg, "length 19, expected 18");
    ck_assert_int_eq(parse("", &u, &err), BG_EINVAL);
    ck_assert_str_eq(err.msg, "length 0, expected 18");
    ck_assert_int_eq(parse("   ", &u, &err), BG_EINVAL);
    ck_assert_str_eq(err.msg, "length 0, expected 18");
}
END_TEST

START_TEST(normalises_space_width_and_case)
{
    const char *inputs[] = {
        "  91350100m000100y43\t",
        "\xE3\x80\x80"
        "９１３５０１００Ｍ０００１００Ｙ４３"
        "\xE3\x80\x80", /* U+3000 */
        "９１３５０１００ｍ000100ｙ43",
        "\xEF\xBB\xBF"
        "91350100M000100Y43\r\n",
    };
    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
        bg_uscc u;
        bg_err err = {0};
        ck_assert_msg(parse(inputs[i], &u, &err) == BG_OK, "input %zu: %s", i, err.msg);
        ck_assert_str_eq(u.code, "91350100M000100Y43");
    }
}
END_TEST

START_TEST(normalisation_guesses_nothing_else)
{
    /* Inner spaces, hyphens and look-alike letters are not repaired. */
    bg_uscc u;
    bg_err err = {0};
    ck_assert_int_eq(parse("9135 0100M000100Y43", &u, &err), BG_EINVAL);
    ck_assert_int_eq(parse("91350100M0001OOY43", &u, &err), BG_EINVAL);
    ck_assert_str_eq(err.msg, "position 14: 'O' is not in the USCC alphabet");
    char out[64];
    ck_assert_int_eq(bg_uscc_normalize(" ab-c ", 6, out, sizeof out, NULL, NULL), BG_OK);
    ck_assert_str_eq(out, "AB-C");
}
END_TEST

START_TEST(hostile_bytes_are_refused_with_reason)
{
    bg_uscc u;
    bg_err err = {0};
    const char bad_utf8[] = "91440300708461136\xFF";
    ck_assert_int_eq(bg_uscc_parse(bad_utf8, sizeof bad_utf8 - 1, &u, &err), BG_EINVAL);
    ck_assert_str_eq(err.msg, "byte 18: invalid UTF-8");
    const char with_nul[18] = {'9', '1', '4', '4', '0', '3', '0', '0', '7',
                               '0', '8', '4', '6', '1', '1', '3', 0,   'T'};
    ck_assert_int_eq(bg_uscc_parse(with_nul, sizeof with_nul, &u, &err), BG_EINVAL);
    ck_assert_str_eq(err.msg, "position 17: byte 0x00 is not in the USCC alphabet");
    char huge[BG_USCC_INPUT_MAX + 10];
    memset(huge, '9', sizeof huge);
    ck_assert_int_eq(bg_uscc_parse(huge, sizeof huge, &u, &err), BG_ELIMIT);
}
END_TEST

START_TEST(every_single_substitution_is_detected)
{
    /* The mod-31 check catches every single-character error; try them all. */
    const char *code = "914403001922038216";
    char mutated[19];
    size_t tried = 0;
    for (int pos = 0; pos < 18; pos++) {
        for (int a = 0; a < 31; a++) {
            if (bg_uscc_alphabet[a] == code[pos])
                continue;
            memcpy(mutated, code, 19);
            mutated[pos] = bg_uscc_alphabet[a];
            ck_assert_msg(bg_uscc_validate(mutated, 18, NULL) != BG_OK, "%s accepted", mutated);
            tried++;
        }
    }
    ck_assert_uint_eq(tried, 18 * 30);
}
END_TEST

static Suite *
uscc_suite(void)
{
    Suite *s = suite_create("uscc");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, published_codes_are_valid);
    tcase_add_test(tc, decodes_fields_and_city);
    tcase_add_test(tc, district_code_maps_to_city);
    tcase_add_test(tc, letters_first_authorities_are_valid);
    tcase_add_test(tc, unknown_authority_is_named);
    tcase_add_test(tc, wrong_check_character_names_expected);
    tcase_add_test(tc, wrong_org_check_character_names_expected);
    tcase_add_test(tc, character_outside_alphabet_names_position);
    tcase_add_test(tc, division_code_must_be_digits);
    tcase_add_test(tc, length_is_counted_in_characters);
    tcase_add_test(tc, normalises_space_width_and_case);
    tcase_add_test(tc, normalisation_guesses_nothing_else);
    tcase_add_test(tc, hostile_bytes_are_refused_with_reason);
    tcase_add_test(tc, every_single_substitution_is_detected);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(uscc_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
