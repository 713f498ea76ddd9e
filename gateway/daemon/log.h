/*
 * log.h - structured log lines, on stderr or in a log file.
 *
 *   2026-11-29T19:55:00.123Z info  ping.answered peer=440300 latency_us=812
 *
 * One line per event: UTC timestamp, level, an event name, then key=value
 * pairs formatted by the caller (values with spaces in double quotes). In the
 * JSON format the same event is one JSON object a line, every value a string:
 *
 *   {"ts":"2026-11-29T19:55:00.123Z","level":"info","event":"ping.answered",
 *    "peer":"440300","latency_us":"812"}
 *
 * A line is written with one write(2), so lines from threads never
 * interleave. Values that come from the wire must be passed through
 * bg_log_safe first; secrets and a peer's query items are never logged.
 *
 * Format and destination are set once, before any thread logs; only
 * bg_log_reopen may run while other threads log (it swaps the file under
 * them atomically).
 */
#ifndef BG_LOG_H
#define BG_LOG_H

#include <stddef.h>

#include "common/err.h"

typedef enum { BG_LOG_DEBUG, BG_LOG_INFO, BG_LOG_WARN, BG_LOG_ERROR } bg_log_level;

typedef enum { BG_LOG_TEXT, BG_LOG_JSON } bg_log_format;

/* Lines below min are not written (default BG_LOG_INFO). */
void bg_log_set_level(bg_log_level min);

/* BG_LOG_TEXT (the default) or BG_LOG_JSON. */
void bg_log_set_format(bg_log_format format);

/* Lines go to path (appended; created mode 0640) instead of stderr. */
int bg_log_open_file(const char *path, bg_err *err);

/* Opens the log file's path again, for logrotate: lines written after it
 * returns go to the new file. Does nothing (BG_OK) when logging to stderr. */
int bg_log_reopen(bg_err *err);

void bg_log(bg_log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Copies untrusted s into buf (size n) keeping [A-Za-z0-9._:/+-] and
 * replacing anything else with '?', so it cannot forge fields or lines. */
const char *bg_log_safe(const char *s, size_t len, char *buf, size_t n);

#endif
