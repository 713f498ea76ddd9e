/*
 * log.h - structured log lines on stderr.
 *
 *   2026-11-29T19:55:00.123Z info  ping.answered peer=440300 latency_us=812
 *
 * One line per event: UTC timestamp, level, an event name, then key=value
 * pairs formatted by the caller. A line is written with one write(2), so lines
 * from threads never interleave. Values that come from the wire must be passed
 * through bg_log_safe first; secrets and a peer's query items are never logged.
 */
#ifndef BG_LOG_H
#define BG_LOG_H

#include <stddef.h>

typedef enum { BG_LOG_DEBUG, BG_LOG_INFO, BG_LOG_WARN, BG_LOG_ERROR } bg_log_level;

/* Lines below min are not written (default BG_LOG_INFO). */
void bg_log_set_level(bg_log_level min);

void bg_log(bg_log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Copies untrusted s into buf (size n) keeping [A-Za-z0-9._:/+-] and
 * replacing anything else with '?', so it cannot forge fields or lines. */
const char *bg_log_safe(const char *s, size_t len, char *buf, size_t n);

#endif
