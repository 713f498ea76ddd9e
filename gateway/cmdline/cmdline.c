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
bg_cli_bad_option(const char *cmd, int ch, char *const *argv)
{
    if (ch == ':')
        return bg_cli_fail(cmd, "%s needs a value; see 'baygate %s --help'", argv[optind - 1], cmd);
    return bg_cli_fail(cmd, "unknown option '%s'; see 'baygate %s --help'", argv[optind - 1], cmd);
}

long long
bg_cli_days_left(time_t t, time_t now)
{
    return ((long long)t - (long long)now) / 86400;
}
