#include "gateway/daemon/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile bg_log_level log_min = BG_LOG_INFO;

void
bg_log_set_level(bg_log_level min)
{
    log_min = min;
}

static const char *const level_names[] = {"debug", "info ", "warn ", "error"};

void
bg_log(bg_log_level level, const char *event, const char *fmt, ...)
{
    if (level < log_min)
        return;
    char line[2048];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s %s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     ts.tv_nsec / 1000000, level_names[level], event);
    if (n < 0)
        return;
    size_t used = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + used, sizeof line - used, fmt, ap);
    va_end(ap);
    if (m > 0)
        used += (size_t)m < sizeof line - used ? (size_t)m : sizeof line - used - 1;
    /* Keep one line per event even if a value was cut. */
    if (used >= sizeof line - 1)
        used = sizeof line - 2;
    line[used++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, used);
    (void)w;
}

const char *
bg_log_safe(const char *s, size_t len, char *buf, size_t n)
{
    if (n == 0)
        return "";
    size_t o = 0;
    for (size_t i = 0; i < len && o + 1 < n; i++) {
        unsigned char c = (unsigned char)s[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 strchr("._:/+-", c) != NULL;
        buf[o++] = ok && c != 0 ? (char)c : '?';
    }
    buf[o] = '\0';
    return buf;
}
