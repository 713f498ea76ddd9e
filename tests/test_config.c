/*
 * test_config.c - baygate.ini: round trip, strictness, messages, paths.
 *
 * Each test writes real files in its own scratch directory; error messages
 * are asserted as an operator would read them (file, line, section, key).
 */
#define _GNU_SOURCE /* nftw's FTW_DEPTH/FTW_PHYS */
#include <check.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gateway/config/config.h"

static char scratch[PATH_MAX];
static char ini[PATH_MAX];

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void
setup(void)
{
    mkdir(BG_TEST_TMPDIR, 0700);
    snprintf(scratch, sizeof scratch, "%s/config.XXXXXX", BG_TEST_TMPDIR);
    ck_assert_ptr_nonnull(mkdtemp(scratch));
    /* realpath: the loader hands out absolute, resolved paths. */
    char real[PATH_MAX];
    ck_assert_ptr_nonnull(realpath(scratch, real));
    snprintf(scratch, sizeof scratch, "%s", real);
    ck_assert_int_lt(snprintf(ini, sizeof ini, "%s/baygate.ini", scratch), (int)sizeof ini);
}

static void
teardown(void)
{
    nftw(scratch, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void
put(const char *text)
{
    FILE *f = fopen(ini, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

/* Loads `text` as baygate.ini; returns the status, err filled. */
static int
load_text(const char *text, bg_config *cfg, bg_err *err)
{
    put(text);
    return bg_config_load(ini, cfg, err);
}

static const char minimal[] = "[city]\ncode = 440300\nname = Shenzhen\n";

START_TEST(defaults_write_load_round_trip)
{
    bg_config a, b;
    bg_err err = {0};
    ck_assert_msg(bg_config_defaults(&a, scratch, "440100", "Guangzhou", "tls+tcp://127.0.0.1:7501",
                                     &err) == BG_OK,
                  "%s", err.msg);
    ck_assert_int_eq(bg_config_set(&a, "timeouts", "dial_ms", "2500", &err), BG_OK);
    ck_assert_int_eq(bg_config_set(&a, "pki", "roster", "/etc/baygate/roster.pb", &err), BG_OK);
    ck_assert_msg(bg_config_write(ini, &a, false, &err) == BG_OK, "%s", err.msg);
    ck_assert_msg(bg_config_load(ini, &b, &err) == BG_OK, "%s", err.msg);
    ck_assert_str_eq(b.dir, scratch);
    ck_assert_str_eq(b.city, "440100");
    ck_assert_str_eq(b.name, "Guangzhou");
    ck_assert_str_eq(b.listen, "tls+tcp://127.0.0.1:7501");
    ck_assert_uint_eq(b.dial_ms, 2500);
    ck_assert_uint_eq(b.request_ms, 10000);
    ck_assert_str_eq(b.roster_path, "/etc/baygate/roster.pb");
    ck_assert_int_eq(memcmp(&a, &b, sizeof a), 0);

    /* Paths inside the directory are stored relative, so it can move. */
    char text[4096];
    FILE *f = fopen(ini, "r");
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    ck_assert_ptr_nonnull(strstr(text, "\nkey = city.key\n"));
    ck_assert_ptr_nonnull(strstr(text, "\nsocket = local.ipc\n"));
    ck_assert_ptr_nonnull(strstr(text, "\nroster = /etc/baygate/roster.pb\n"));
    ck_assert_ptr_null(strstr(text, scratch));

    /* Create-only refuses an existing file; replace replaces. */
    ck_assert_int_eq(bg_config_write(ini, &a, false, &err), BG_EEXIST);
    ck_assert_int_eq(bg_config_set(&a, "city", "name", "Canton", &err), BG_OK);
    ck_assert_int_eq(bg_config_write(ini, &a, true, &err), BG_OK);
    ck_assert_int_eq(bg_config_load(ini, &b, &err), BG_OK);
    ck_assert_str_eq(b.name, "Canton");
}
END_TEST

START_TEST(relative_paths_resolve_against_the_ini_directory)
{
    bg_config c;
    bg_err err = {0};
    ck_assert_int_eq(load_text("[city]\ncode = 440600\nname = Foshan\n"
                               "[pki]\nkey = keys/city.key\nca = /srv/ca.crt\n"
                               "[store]\ndata_dir = ../shared-data\n",
                               &c, &err),
                     BG_OK);
    char want[PATH_MAX + 32];
    snprintf(want, sizeof want, "%s/keys/city.key", scratch);
    ck_assert_str_eq(c.key_path, want);
    ck_assert_str_eq(c.ca_path, "/srv/ca.crt");
    snprintf(want, sizeof want, "%s/../shared-data", scratch);
    ck_assert_str_eq(c.data_dir, want);
    snprintf(want, sizeof want, "%s/city.crt", scratch); /* a default, also relative */
    ck_assert_str_eq(c.cert_path, want);
    snprintf(want, sizeof want, "ipc://%s/local.ipc", scratch);
    ck_assert_str_eq(c.local_url, want);
    ck_assert_str_eq(c.listen, BG_CONFIG_LISTEN_DEFAULT);
    ck_assert_uint_eq(c.recv_max_bytes, 4194304);
    ck_assert_uint_eq(c.crl_warn_hours, 72);

    /* Loading through a relative path from another working directory. */
    char cwd[PATH_MAX];
    ck_assert_ptr_nonnull(getcwd(cwd, sizeof cwd));
    ck_assert_int_eq(chdir(scratch), 0);
    bg_config d;
    ck_assert_int_eq(bg_config_load("baygate.ini", &d, &err), BG_OK);
    ck_assert_int_eq(chdir(cwd), 0);
    ck_assert_str_eq(d.key_path, c.key_path);
}
END_TEST

START_TEST(unknown_key_refused_with_line_number)
{
    bg_config c;
    bg_err err = {0};
    ck_assert_int_eq(load_text("; gateway\n[city]\ncode = 440100\nname = Guangzhou\n\n[pki]\n"
                               "crl = crl.pem\nsekret = hunter2\n",
                               &c, &err),
                     BG_EINVAL);
    char want[PATH_MAX + 64];
    snprintf(want, sizeof want, "%s:8: unknown key 'sekret' in section [pki]", ini);
    ck_assert_str_eq(err.msg, want);
}
END_TEST

START_TEST(unknown_or_misplaced_sections_refused)
{
    bg_config c;
    bg_err err = {0};
    /* An empty misspelt section is caught too: it may hold the keys meant for [pki]. */
    ck_assert_int_eq(load_text("[city]\ncode = 440100\nname = G\n[pkki]\n", &c, &err), BG_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, ":4: unknown section [pkki]"));
    ck_assert_int_eq(load_text("code = 440100\n", &c, &err), BG_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, ":1: key 'code' outside any section"));
    ck_assert_int_eq(load_text("[city]\ncode = 440100\nname = G\nthis is not ini\n", &c, &err),
                     BG_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, ":4: expected 'key = value'"));
}
END_TEST

START_TEST(duplicate_and_invalid_values_refused)
{
    bg_config c;
    bg_err err = {0};
    ck_assert_int_eq(load_text("[city]\ncode = 440100\ncode = 440300\nname = G\n", &c, &err),
                     BG_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, ":3: key 'code' in section [city] given twice"));
    struct {
        const char *text, *msg;
    } cases[] = {
        {"[city]\ncode = 44010\nname = G\n", ":2: [city] code: '44010' is not a 6-digit city code"},
        {"[city]\ncode = 440100\nname = G\n[federation]\nlisten = tcp://1.2.3.4:5\n",
         ":5: [federation] listen: 'tcp://1.2.3.4:5' is not a tls+tcp:// address"},
        {"[city]\ncode = 440100\nname = G\n[federation]\nlisten = tls+tcp://host:99999\n",
         "needs a host and a port"},
        {"[city]\ncode = 440100\nname = G\n[timeouts]\ndial_ms = 5\n",
         ":5: [timeouts] dial_ms: 5 is out of range 100-600000"},
        /* recv_max_bytes has the roster's max_message_bytes bounds, 16 KiB..64 MiB. */
        {"[city]\ncode = 440100\nname = G\n[federation]\nrecv_max_bytes = 16383\n",
         ":5: [federation] recv_max_bytes: 16383 is out of range 16384-67108864"},
        {"[city]\ncode = 440100\nname = G\n[federation]\nrecv_max_bytes = 67108865\n",
         ":5: [federation] recv_max_bytes: 67108865 is out of range 16384-67108864"},
        {"[city]\ncode = 440100\nname = G\n[timeouts]\ndial_ms = 5s\n", "'5s' is not a number"},
        {"[city]\ncode = 440100\nname = G\n[timeouts]\ndial_ms = 99999999999999999999999\n",
         "is not a number"},
        {"[city]\ncode = 440100\nname = G\n[pki]\nkey =\n", ":5: [pki] key: empty value"},
        {"[city]\ncode = 440100\n", "[city] name is required"},
        {"", "[city] code is required"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ck_assert_int_ne(load_text(cases[i].text, &c, &err), BG_OK);
        ck_assert_msg(strstr(err.msg, cases[i].msg) != NULL, "case %zu: %s", i, err.msg);
    }
}
END_TEST

START_TEST(rate_limits_default_load_and_refuse)
{
    bg_config c;
    bg_err err = {0};
    /* Absent: the limits the gateway has always had. */
    ck_assert_msg(load_text(minimal, &c, &err) == BG_OK, "%s", err.msg);
    ck_assert_uint_eq(c.rate[BG_CONFIG_RATE_PING].per_s, 20);
    ck_assert_uint_eq(c.rate[BG_CONFIG_RATE_PING].burst, 40);
    ck_assert_uint_eq(c.rate[BG_CONFIG_RATE_PING].bytes_per_s, 1u << 20);
    ck_assert_uint_eq(c.rate[BG_CONFIG_RATE_SNAPSHOT].bytes_burst, 256u << 20);
    ck_assert_uint_eq(c.rate[BG_CONFIG_RATE_PSI].burst, 1000);
    ck_assert_uint_eq(c.rate[BG_CONFIG_RATE_STATUS].bytes_burst, 16u << 20);
    ck_assert_uint_eq(c.rate[BG_CONFIG_RATE_WITNESS].bytes_burst, 8u << 20);

    ck_assert_msg(load_text("[city]\ncode = 440300\nname = Shenzhen\n[rate]\nping_per_s = 2\n"
                            "ping_burst = 3\npsi_bytes_burst = 2048\nwitness_per_s = 7\n",
                            &c, &err) == BG_OK,
                  "%s", err.msg);
    ck_assert_uint_eq(c.rate[BG_CONFIG_RATE_PING].per_s, 2);
    ck_assert_uint_eq(c.rate[BG_CONFIG_RATE_PING].burst, 3);
    ck_assert_uint_eq(c.rate[BG_CONFIG_RATE_PSI].bytes_burst, 2048);
    ck_assert_uint_eq(c.rate[BG_CONFIG_RATE_WITNESS].per_s, 7);
    ck_assert_uint_eq(c.rate[BG_CONFIG_RATE_STATUS].per_s, 20);

    /* Written and read back: the file holds what was set. */
    char path[PATH_MAX];
    ck_assert_int_lt(snprintf(path, sizeof path, "%s/again.ini", scratch), (int)sizeof path);
    ck_assert_msg(bg_config_write(path, &c, false, &err) == BG_OK, "%s", err.msg);
    bg_config d;
    ck_assert_msg(bg_config_load(path, &d, &err) == BG_OK, "%s", err.msg);
    ck_assert_mem_eq(d.rate, c.rate, sizeof c.rate);

    struct {
        const char *text, *msg;
    } cases[] = {
        {"[city]\ncode = 440100\nname = G\n[rate]\nping_burst = 0\n",
         ":5: [rate] ping_burst: 0 is out of range 1-1000000"},
        {"[city]\ncode = 440100\nname = G\n[rate]\nsnapshot_per_s = 0\n",
         ":5: [rate] snapshot_per_s: 0 is out of range 1-1000000"},
        {"[city]\ncode = 440100\nname = G\n[rate]\npsi_bytes_per_s = 10\n",
         ":5: [rate] psi_bytes_per_s: 10 is out of range 1024-1099511627776"},
        {"[city]\ncode = 440100\nname = G\n[rate]\nstatus_burst = many\n",
         ":5: [rate] status_burst: 'many' is not a number"},
        {"[city]\ncode = 440100\nname = G\n[rate]\nquery_per_s = 5\n",
         ":5: unknown key 'query_per_s' in section [rate]"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ck_assert_int_ne(load_text(cases[i].text, &c, &err), BG_OK);
        ck_assert_msg(strstr(err.msg, cases[i].msg) != NULL, "case %zu: %s", i, err.msg);
    }
}
END_TEST

START_TEST(comments_and_blank_lines_accepted)
{
    bg_config c;
    bg_err err = {0};
    ck_assert_msg(load_text("; top\n# also a comment\n\n[city]\n  code = 440100 ; inline\n"
                            "name = 广州\r\n",
                            &c, &err) == BG_OK,
                  "%s", err.msg);
    ck_assert_str_eq(c.city, "440100");
    ck_assert_str_eq(c.name, "广州");
}
END_TEST

START_TEST(missing_file_and_long_lines_reported)
{
    bg_config c;
    bg_err err = {0};
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/absent.ini", scratch);
    ck_assert_int_eq(bg_config_load(path, &c, &err), BG_ENOTFOUND);
    char want[PATH_MAX + 64];
    snprintf(want, sizeof want, "cannot read %s: No such file or directory", path);
    ck_assert_str_eq(err.msg, want);

    char text[1024];
    snprintf(text, sizeof text, "%s[pki]\nkey = %0300d\n", minimal, 0);
    ck_assert_int_eq(load_text(text, &c, &err), BG_ELIMIT);
    ck_assert_msg(strstr(err.msg, ":5: line longer than") != NULL, "%s", err.msg);

    FILE *f = fopen(ini, "wb");
    fwrite("[city]\ncode = 4\0\n", 1, 17, f);
    fclose(f);
    ck_assert_int_eq(bg_config_load(ini, &c, &err), BG_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "NUL"));
}
END_TEST

START_TEST(write_refuses_values_that_cannot_round_trip)
{
    bg_config c;
    bg_err err = {0};
    ck_assert_int_eq(bg_config_defaults(&c, scratch, "440100", "A ; B", NULL, &err), BG_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "[city] name: value holds ';'"));
    ck_assert_int_eq(bg_config_defaults(&c, scratch, "440100", " G", NULL, &err), BG_EINVAL);
    ck_assert_int_eq(bg_config_defaults(&c, scratch, "4401", "G", NULL, &err), BG_EINVAL);
    ck_assert_int_eq(bg_config_defaults(&c, scratch, "440100", "G", "tls+tcp://:80", &err),
                     BG_EINVAL);
    ck_assert_int_eq(bg_config_defaults(&c, scratch, "440100", "G", NULL, &err), BG_OK);
    ck_assert_int_eq(bg_config_set(&c, "pki", "colour", "blue", &err), BG_EINVAL);
    ck_assert_str_eq(err.msg, "unknown key 'colour' in section [pki]");
    /* A hand-damaged struct is refused at write time, not written. */
    strcpy(c.name, "bad\nname");
    ck_assert_int_eq(bg_config_write(ini, &c, false, &err), BG_EINVAL);
    ck_assert_int_ne(access(ini, F_OK), 0);

    /* A socket path too long for sun_path is refused where it is set. */
    char longdir[300];
    memset(longdir, 'd', sizeof longdir - 1);
    longdir[sizeof longdir - 1] = '\0';
    for (size_t i = 0; i < sizeof longdir - 1; i += 50)
        longdir[i] = '/';
    ck_assert_int_eq(bg_config_defaults(&c, longdir, "440100", "G", NULL, &err), BG_ELIMIT);
    ck_assert_ptr_nonnull(strstr(err.msg, "unix socket"));
}
END_TEST

static Suite *
config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("config");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, defaults_write_load_round_trip);
    tcase_add_test(tc, relative_paths_resolve_against_the_ini_directory);
    tcase_add_test(tc, unknown_key_refused_with_line_number);
    tcase_add_test(tc, unknown_or_misplaced_sections_refused);
    tcase_add_test(tc, duplicate_and_invalid_values_refused);
    tcase_add_test(tc, rate_limits_default_load_and_refuse);
    tcase_add_test(tc, comments_and_blank_lines_accepted);
    tcase_add_test(tc, missing_file_and_long_lines_reported);
    tcase_add_test(tc, write_refuses_values_that_cannot_round_trip);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(config_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
