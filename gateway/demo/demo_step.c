/*
 * demo_step.c - the demo's steps: commands of this binary, run as a person
 * would type them, and the files and logs they leave behind.
 */
#include "gateway/demo/demo_int.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/file.h"
#include "gateway/cmdline/cmdline.h"

extern char **environ;

/* Files the demo reads back whole: command output, JSON, rosters, CRLs. */
#define DEMO_SLURP_MAX (16u << 20)

bool
demo_path(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= size) {
        bg_cli_fail("demo", "path too long");
        return false;
    }
    return true;
}

pid_t
demo_spawn(demo *d, const char *const *args, const char *out_path)
{
    char *argv[32];
    size_t n = 0;
    argv[n++] = "baygate";
    for (; args[n - 1] != NULL && n < 31; n++)
        argv[n] = (char *)args[n - 1];
    argv[n] = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (out_path != NULL) {
        posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, out_path,
                                         O_WRONLY | O_CREAT | O_APPEND, 0600);
        posix_spawn_file_actions_adddup2(&fa, STDOUT_FILENO, STDERR_FILENO);
    }
    pid_t pid = -1;
    if (posix_spawn(&pid, d->self, &fa, NULL, argv, environ) != 0)
        pid = -1;
    posix_spawn_file_actions_destroy(&fa);
    return pid;
}

static void
echo(const char *const *args)
{
    printf("  $ baygate");
    for (size_t i = 0; args[i] != NULL; i++)
        printf(strchr(args[i], ' ') ? " '%s'" : " %s", args[i]);
    printf("\n");
}

static int
wait_exit(pid_t pid)
{
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(st) ? WEXITSTATUS(st) : BG_EXIT_ERROR;
}

int
demo_run(demo *d, int mode, const char *const *args)
{
    if (mode != DEMO_QUIET)
        echo(args);
    fflush(stdout);
    pid_t pid = demo_spawn(d, args, mode == DEMO_SHOW ? NULL : d->log);
    if (pid < 0)
        return bg_cli_fail("demo", "cannot run %s: %s", d->self, strerror(errno));
    return wait_exit(pid);
}

int
demo_capture(demo *d, const char *const *args, const char *path)
{
    echo(args);
    return demo_capture_silent(d, args, path);
}

int
demo_capture_silent(demo *d, const char *const *args, const char *path)
{
    fflush(stdout);
    unlink(path);
    pid_t pid = demo_spawn(d, args, path);
    if (pid < 0)
        return bg_cli_fail("demo", "cannot run %s", d->self);
    return wait_exit(pid);
}

bool
demo_tally(demo *d, bool ok)
{
    d->checks++;
    d->failed += !ok;
    return ok;
}

char *
demo_slurp(const char *path)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    if (bg_file_read(path, DEMO_SLURP_MAX, &buf, &len, NULL, NULL) != BG_OK)
        return NULL;
    return (char *)buf;
}

void
demo_first_line(const char *path, char *out, size_t size)
{
    out[0] = '\0';
    FILE *f = fopen(path, "r");
    if (f != NULL && fgets(out, (int)size, f) != NULL)
        out[strcspn(out, "\r\n")] = '\0';
    if (f != NULL)
        fclose(f);
}

void
demo_result_line(const char *path, const char *prefix, char *out, size_t size)
{
    demo_first_line(path, out, size);
    FILE *f = fopen(path, "r");
    char line[2048];
    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, prefix, strlen(prefix)) == 0) {
            size_t n = strcspn(line, "\r\n");
            if (n >= size)
                n = size - 1;
            memcpy(out, line, n);
            out[n] = '\0';
            break;
        }
    }
    if (f != NULL)
        fclose(f);
}

int
demo_copy_file(const char *from, const char *to)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    bg_err err = {0};
    int rc = bg_file_read(from, DEMO_SLURP_MAX, &buf, &len, NULL, &err);
    if (rc == BG_OK)
        rc = bg_file_write_replace(to, buf, len, 0644, &err);
    free(buf);
    if (rc != BG_OK)
        return bg_cli_fail("demo", "cannot copy %s to %s: %s", from, to, err.msg);
    return BG_EXIT_OK;
}

int
demo_log_count(demo *d, const char *code, const char *event, char *last, size_t last_size)
{
    char log[DEMO_PATH];
    if (!demo_path(log, sizeof log, "%s/%s.log", d->dir, code))
        return -1;
    FILE *f = fopen(log, "r");
    char line[2048];
    int n = 0;
    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
        if (strstr(line, event) == NULL)
            continue;
        n++;
        if (last != NULL)
            snprintf(last, last_size, "%s", line);
    }
    if (f != NULL)
        fclose(f);
    return n;
}

bool
demo_wait_log(demo *d, const char *code, const char *event, int more_than, int timeout_s,
              char *last, size_t last_size)
{
    time_t deadline = time(NULL) + timeout_s;
    struct timespec pause = {.tv_nsec = 100 * 1000 * 1000};
    for (;;) {
        if (demo_log_count(d, code, event, last, last_size) > more_than)
            return true;
        if (time(NULL) > deadline)
            return false;
        nanosleep(&pause, NULL);
    }
}
