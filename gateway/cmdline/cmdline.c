/*
 * cmdline.c - the conventions shared by every command (see cmdline.h).
 */
#include "gateway/cmdline/cmdline.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/num.h"

int
bg_cli_fail(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "baygate %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return BG_EXIT_ERROR;
}

bool
bg_cli_parse_u64(const char *cmd, const char *opt, const char *s, uint64_t *out)
{
    if (bg_num_u64(s, 0, UINT64_MAX, out, NULL) != BG_OK) {
        bg_cli_fail(cmd, "%s: '%s' is not a non-negative integer", opt, s);
        return false;
    }
    return true;
}

bool
bg_cli_parse_rate(const char *cmd, const char *opt, const char *s, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !isfinite(v) || v < 0.0 || v > 1.0) {
        bg_cli_fail(cmd, "%s: '%s' is not a rate between 0 and 1", opt, s);
        return false;
    }
    *out = v;
    return true;
}

int
bg_cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "baygate %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nsee 'baygate %s --help'\n", cmd);
    return BG_EXIT_ERROR;
}

#define DIST_MAX 64

size_t
bg_cli_distance(const char *a, const char *b)
{
    size_t la = strnlen(a, DIST_MAX), lb = strnlen(b, DIST_MAX);
    size_t row[DIST_MAX + 1];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

const char *
bg_cli_suggest(const char *word, const char *const *names, size_t n)
{
    const char *best = NULL;
    size_t best_d = 3, len = strnlen(word, DIST_MAX);
    for (size_t i = 0; i < n; i++) {
        size_t d = bg_cli_distance(word, names[i]);
        if (d < best_d && d < len) {
            best = names[i];
            best_d = d;
        }
    }
    return best;
}

int
bg_cli_unknown(const char *cmd, const char *word, const char *const *names, size_t n)
{
    const char *near = bg_cli_suggest(word, names, n);
    if (cmd == NULL)
        fprintf(stderr, "baygate: '%s' is not a command", word);
    else
        fprintf(stderr, "baygate %s: no subcommand '%s'", cmd, word);
    if (near != NULL)
        fprintf(stderr, "; did you mean '%s'?", near);
    if (cmd == NULL)
        fprintf(stderr, "\nsee 'baygate help'\n");
    else
        fprintf(stderr, "\nsee 'baygate %s --help'\n", cmd);
    return BG_EXIT_ERROR;
}

/* The long option of opts closest to "--name[=value]", or NULL. */
static const char *
near_option(const char *arg, const struct option *opts)
{
    char name[DIST_MAX + 1];
    if (strncmp(arg, "--", 2) != 0 || opts == NULL)
        return NULL;
    snprintf(name, sizeof name, "%.*s", (int)strcspn(arg + 2, "="), arg + 2);
    const char *names[128];
    size_t n = 0;
    for (; opts[n].name != NULL && n < 128; n++)
        names[n] = opts[n].name;
    return bg_cli_suggest(name, names, n);
}

int
bg_cli_bad_option(const char *cmd, int ch, char *const *argv, const struct option *opts)
{
    if (ch == ':')
        return bg_cli_usage_error(cmd, "%s needs a value", argv[optind - 1]);
    if (optopt != 0)
        return bg_cli_usage_error(cmd, "unknown option '-%c'", optopt);
    const char *arg = argv[optind - 1];
    const char *near = near_option(arg, opts);
    if (near != NULL)
        return bg_cli_usage_error(cmd, "unknown option '%s'; did you mean '--%s'?", arg, near);
    return bg_cli_usage_error(cmd, "unknown option '%s'", arg);
}

long long
bg_cli_days_left(time_t t, time_t now)
{
    return ((long long)t - (long long)now) / 86400;
}
