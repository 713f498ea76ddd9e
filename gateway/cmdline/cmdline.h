/*
 * cmdline.h - the conventions every baygate command keeps (the commands in
 * gateway/cli/ and the scripted tour in gateway/demo/): exit statuses, the
 * one-line error "baygate CMD: message" on stderr, strict option values.
 *
 * Exit statuses: 0 success, 1 the command ran and found a failure (an invalid
 * code, rejected rows, a failed check), 2 usage or operational error.
 */
#ifndef BG_CMDLINE_H
#define BG_CMDLINE_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

enum { BG_EXIT_OK = 0, BG_EXIT_FAIL = 1, BG_EXIT_ERROR = 2 };

/* Prints "baygate CMD: message" to stderr; returns BG_EXIT_ERROR. */
int bg_cli_fail(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The message for what getopt_long (run with opterr = 0 and a leading ':' in its
 * option string) returned for a bad option: ch ':' (a value is missing) or anything
 * else (an unknown option). Returns BG_EXIT_ERROR. */
int bg_cli_bad_option(const char *cmd, int ch, char *const *argv);

/* Whole days from now until t, counted toward zero (negative once past: -1 is
 * "a day ago"): how commands show a certificate's days left. */
long long bg_cli_days_left(time_t t, time_t now);

/* Strict number parsing for options; false (and a message) if s is not one. */
bool bg_cli_parse_u64(const char *cmd, const char *opt, const char *s, uint64_t *out);
bool bg_cli_parse_rate(const char *cmd, const char *opt, const char *s, double *out);

#endif
