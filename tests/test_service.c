/*
 * test_service.c - what the service manager and logrotate rely on: the log's
 * two formats, the log file reopened after a rotation, and the sd_notify
 * datagrams sent to $NOTIFY_SOCKET.
 */
#include <check.h>
#include <stddef.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "gateway/cli/notify.h"
#include "gateway/daemon/local.h"
#include "gateway/daemon/log.h"

static char scratch[PATH_MAX];

static void
setup(void)
{
    mkdir(BG_TEST_TMPDIR, 0700);
    snprintf(scratch, sizeof scratch, "%s/service.XXXXXX", BG_TEST_TMPDIR);
    ck_assert_ptr_nonnull(mkdtemp(scratch));
}

/* The whole of path into buf (NUL-terminated); its length. */
static size_t
slurp(const char *path, char *buf, size_t n)
{
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    size_t got = fread(buf, 1, n - 1, f);
    fclose(f);
    buf[got] = '\0';
    return got;
}

START_TEST(log_text_and_json)
{
    char path[PATH_MAX + 16], buf[8192];
    snprintf(path, sizeof path, "%s/gw.log", scratch);
    bg_err err = {0};
    ck_assert_int_eq(bg_log_open_file(path, &err), BG_OK);
    bg_log_set_format(BG_LOG_TEXT);
    bg_log(BG_LOG_INFO, "ping.answered", "peer=%s latency_us=%d", "440300", 812);
    bg_log_set_format(BG_LOG_JSON);
    bg_log(BG_LOG_WARN, "gateway.start_failed", "dir=%s error=\"%s\" n=%d", "/x",
           "cannot \"open\"\tit", 3);
    bg_log(BG_LOG_DEBUG, "hidden", "below the level");
    slurp(path, buf, sizeof buf);
    char *nl = strchr(buf, '\n');
    ck_assert_ptr_nonnull(nl);
    *nl = '\0';
    ck_assert_ptr_nonnull(strstr(buf, "Z info  ping.answered peer=440300 latency_us=812"));
    const char *json = nl + 1;
    ck_assert_ptr_nonnull(strstr(json, "{\"ts\":\"20"));
    /* A quote inside a quoted value stays in it, escaped; control bytes as \u. */
    ck_assert_ptr_nonnull(strstr(json, "\",\"level\":\"warn\",\"event\":\"gateway.start_failed\","
                                       "\"dir\":\"/x\","));
    ck_assert_ptr_nonnull(
        strstr(json, "\"error\":\"cannot \\\"open\\\"\\u0009it\",\"n\":\"3\"}\n"));
    ck_assert_ptr_null(strstr(json, "hidden"));
}
END_TEST

START_TEST(log_reopen_after_rotation)
{
    char path[PATH_MAX + 16], moved[PATH_MAX + 16], buf[4096];
    snprintf(path, sizeof path, "%s/gw.log", scratch);
    snprintf(moved, sizeof moved, "%s/gw.log.1", scratch);
    bg_err err = {0};
    bg_log_set_format(BG_LOG_TEXT);
    ck_assert_int_eq(bg_log_open_file(path, &err), BG_OK);
    bg_log(BG_LOG_INFO, "before.rotation", "n=1");
    ck_assert_int_eq(rename(path, moved), 0);
    bg_log(BG_LOG_INFO, "still.old", "n=2");
    ck_assert_int_eq(bg_log_reopen(&err), BG_OK);
    bg_log(BG_LOG_INFO, "after.rotation", "n=3");
    slurp(moved, buf, sizeof buf);
    ck_assert_ptr_nonnull(strstr(buf, "before.rotation"));
    ck_assert_ptr_nonnull(strstr(buf, "still.old"));
    ck_assert_ptr_null(strstr(buf, "after.rotation"));
    slurp(path, buf, sizeof buf);
    ck_assert_ptr_nonnull(strstr(buf, "after.rotation n=3\n"));
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 0007, 0); /* never world-readable */
}
END_TEST

START_TEST(log_file_refused)
{
    bg_err err = {0};
    ck_assert_int_eq(bg_log_open_file("/nonexistent-dir/x.log", &err), BG_EIO);
    ck_assert_ptr_nonnull(strstr(err.msg, "/nonexistent-dir/x.log"));
}
END_TEST

/* A datagram socket where the service manager would listen. */
static int
listener(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    ck_assert_uint_lt(strlen(path), sizeof sa.sun_path);
    strcpy(sa.sun_path, path);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

START_TEST(notify_datagrams)
{
    char path[PATH_MAX + 16], buf[256];
    snprintf(path, sizeof path, "%s/notify", scratch);
    int fd = listener(path);
    bg_err err = {0};
    setenv("NOTIFY_SOCKET", path, 1);
    ck_assert_int_eq(bg_notify("READY=1\nSTATUS=serving", &err), BG_OK);
    ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
    ck_assert_int_gt(n, 0);
    buf[n] = '\0';
    ck_assert_str_eq(buf, "READY=1\nSTATUS=serving");
    ck_assert_int_eq(bg_notify("STOPPING=1", &err), BG_OK);
    n = recv(fd, buf, sizeof buf - 1, 0);
    ck_assert_int_gt(n, 0);
    buf[n] = '\0';
    ck_assert_str_eq(buf, "STOPPING=1");
    close(fd);

    /* Nobody listening: an error to log, not a crash. */
    unlink(path);
    ck_assert_int_eq(bg_notify("READY=1", &err), BG_EIO);
    setenv("NOTIFY_SOCKET", "relative", 1);
    ck_assert_int_eq(bg_notify("READY=1", &err), BG_EINVAL);
    /* Not under systemd: nothing to do. */
    unsetenv("NOTIFY_SOCKET");
    ck_assert_int_eq(bg_notify("READY=1", &err), BG_OK);
}
END_TEST

START_TEST(notify_abstract_socket)
{
    char name[64], buf[64];
    snprintf(name, sizeof name, "@baygate-test-%ld", (long)getpid());
    int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
    ck_assert_int_ge(fd, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t len = strlen(name);
    memcpy(sa.sun_path, name, len);
    sa.sun_path[0] = '\0';
    ck_assert_int_eq(
        bind(fd, (struct sockaddr *)&sa, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)),
        0);
    setenv("NOTIFY_SOCKET", name, 1);
    bg_err err = {0};
    ck_assert_int_eq(bg_notify("RELOADING=1", &err), BG_OK);
    ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
    ck_assert_int_gt(n, 0);
    buf[n] = '\0';
    ck_assert_str_eq(buf, "RELOADING=1");
    close(fd);
    unsetenv("NOTIFY_SOCKET");
}
END_TEST

/* The local API's caller check (SO_PEERCRED's uid): the gateway's own user and root. */
START_TEST(local_uid_allowed)
{
    ck_assert(gw_local_uid_allowed(1000, 1000));
    ck_assert(gw_local_uid_allowed(0, 1000));
    ck_assert(!gw_local_uid_allowed(1001, 1000));
    ck_assert(!gw_local_uid_allowed(65534, 1000));
    ck_assert(gw_local_uid_allowed(0, 0));
    ck_assert(!gw_local_uid_allowed(1000, 0));
}
END_TEST

static Suite *
service_suite(void)
{
    Suite *s = suite_create("service");
    TCase *tc = tcase_create("log and notify");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, log_text_and_json);
    tcase_add_test(tc, log_reopen_after_rotation);
    tcase_add_test(tc, log_file_refused);
    tcase_add_test(tc, notify_datagrams);
    tcase_add_test(tc, notify_abstract_socket);
    tcase_add_test(tc, local_uid_allowed);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    SRunner *sr = srunner_create(service_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
