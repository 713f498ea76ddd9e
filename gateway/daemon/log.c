#include "gateway/daemon/log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES 2048

static volatile bg_log_level log_min = BG_LOG_INFO;
static bg_log_format log_format = BG_LOG_TEXT;
/* The descriptor lines go to. For a file it keeps its number for the whole
 * run: bg_log_reopen dup2()s the new file onto it, which is atomic, so a
 * thread writing meanwhile writes whole lines to the old file or the new. */
static int log_fd = STDERR_FILENO;
static char log_path[PATH_MAX];

void
bg_log_set_level(bg_log_level min)
{
    log_min = min;
}

void
bg_log_set_format(bg_log_format format)
{
    log_format = format;
}

static int
open_log(const char *path, int *fd, bg_err *err)
{
    *fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOCTTY | O_CLOEXEC, 0640);
    if (*fd < 0)
        return bg_err_set(err, BG_EIO, "log file %s: %s", path, strerror(errno));
    return BG_OK;
}

int
bg_log_open_file(const char *path, bg_err *err)
{
    if (strlen(path) >= sizeof log_path)
        return bg_err_set(err, BG_ELIMIT, "log file path longer than %zu bytes",
                          sizeof log_path - 1);
    int fd;
    int rc = open_log(path, &fd, err);
    if (rc != BG_OK)
        return rc;
    if (log_fd != STDERR_FILENO)
        close(log_fd);
    log_fd = fd;
    memcpy(log_path, path, strlen(path) + 1);
    return BG_OK;
}

int
bg_log_reopen(bg_err *err)
{
    if (log_path[0] == '\0')
        return BG_OK;
    int fd;
    int rc = open_log(log_path, &fd, err);
    if (rc != BG_OK)
        return rc;
    rc = dup2(fd, log_fd) < 0
             ? bg_err_set(err, BG_EIO, "log file %s: %s", log_path, strerror(errno))
             : BG_OK;
    close(fd);
    return rc;
}

static const char *const level_names[] = {"debug", "info ", "warn ", "error"};
static const char *const level_json[] = {"debug", "info", "warn", "error"};

/* Event names are short constants; a longer one is cut, never overflows. */
#define EVENT_MAX 128
/* A JSON line: fields and event escaped (at most 6 bytes each), the fixed
 * members around them. Sized so that it can never be cut. */
#define JSON_MAX (6 * (LINE_MAX_BYTES + EVENT_MAX) + 128)

struct out {
    char buf[JSON_MAX];
    size_t used;
};

static void
put(struct out *o, const char *s, size_t n)
{
    memcpy(o->buf + o->used, s, n);
    o->used += n;
}

static void
put_str(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

/* Appends s[0..n) as the inside of a JSON string. */
static void
put_json(struct out *o, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            put(o, esc, 2);
        } else if (c < 0x20 || c == 0x7f) {
            char esc[8];
            snprintf(esc, sizeof esc, "\\u%04x", c);
            put(o, esc, 6);
        } else {
            put(o, &s[i], 1);
        }
    }
}

/* The caller's `k=v k2="v with spaces"` as JSON members. A quoted value ends
 * at a quote followed by a space or the end, so a quote inside an error
 * message stays in the value. Text that is not k=v goes under "text". */
static void
put_fields(struct out *o, const char *f)
{
    while (*f != '\0') {
        while (*f == ' ')
            f++;
        if (*f == '\0')
            break;
        const char *eq = f;
        while (*eq != '\0' && *eq != '=' && *eq != ' ')
            eq++;
        put_str(o, ",\"");
        if (*eq != '=' || eq == f) {
            put_str(o, "text\":\"");
            put_json(o, f, strlen(f));
            put_str(o, "\"");
            return;
        }
        put_json(o, f, (size_t)(eq - f));
        put_str(o, "\":\"");
        const char *v = eq + 1, *end;
        if (*v == '"') {
            end = ++v;
            while (*end != '\0' && !(end[0] == '"' && (end[1] == ' ' || end[1] == '\0')))
                end++;
            put_json(o, v, (size_t)(end - v));
            f = *end == '"' ? end + 1 : end;
        } else {
            for (end = v; *end != '\0' && *end != ' ';)
                end++;
            put_json(o, v, (size_t)(end - v));
            f = end;
        }
        put_str(o, "\"");
    }
}

static void
write_json(bg_log_level level, const char *ts, const char *event, const char *fields)
{
    struct out o;
    o.used = 0;
    put_str(&o, "{\"ts\":\"");
    put_str(&o, ts);
    put_str(&o, "\",\"level\":\"");
    put_str(&o, level_json[level]);
    put_str(&o, "\",\"event\":\"");
    put_json(&o, event, strnlen(event, EVENT_MAX));
    put_str(&o, "\"");
    put_fields(&o, fields);
    put_str(&o, "}\n");
    ssize_t w = write(log_fd, o.buf, o.used);
    (void)w;
}

void
bg_log(bg_log_level level, const char *event, const char *fmt, ...)
{
    if (level < log_min)
        return;
    char line[LINE_MAX_BYTES], ts[96];
    struct timespec tspec;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &tspec);
    gmtime_r(&tspec.tv_sec, &tm);
    snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, tspec.tv_nsec / 1000000);
    va_list ap;
    if (log_format == BG_LOG_JSON) {
        va_start(ap, fmt);
        int m = vsnprintf(line, sizeof line, fmt, ap);
        va_end(ap);
        if (m < 0)
            line[0] = '\0';
        write_json(level, ts, event, line);
        return;
    }
    int n = snprintf(line, sizeof line, "%s %s %.*s ", ts, level_names[level], EVENT_MAX, event);
    if (n < 0)
        return;
    size_t used = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
    va_start(ap, fmt);
    int m = vsnprintf(line + used, sizeof line - used, fmt, ap);
    va_end(ap);
    if (m > 0)
        used += (size_t)m < sizeof line - used ? (size_t)m : sizeof line - used - 1;
    /* Keep one line per event even if a value was cut. */
    if (used >= sizeof line - 1)
        used = sizeof line - 2;
    line[used++] = '\n';
    ssize_t w = write(log_fd, line, used);
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
