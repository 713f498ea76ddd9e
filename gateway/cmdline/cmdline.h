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

/* A usage error: "baygate CMD: message" (what is wrong, first), then the hint
 * "see 'baygate CMD --help'" on a line of its own, on stderr. Returns BG_EXIT_ERROR. */
int bg_cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Edit distance (Levenshtein) between a and b, counted up to 64 bytes of each. */
size_t bg_cli_distance(const char *a, const char *b);

/* Of names[0..n), the one closest to word if it is close enough to be a misspelling
 * (at most 2 edits, and fewer than word's length), else NULL. */
const char *bg_cli_suggest(const char *word, const char *const *names, size_t n);

/* A usage error for an unknown command or subcommand word of cmd (NULL: the top
 * level): "baygate CMD: no subcommand 'WORD'" (or "'WORD' is not a command"), a
 * "did you mean 'X'?" when one of names[0..n) is close, and the hint. BG_EXIT_ERROR. */
int bg_cli_unknown(const char *cmd, const char *word, const char *const *names, size_t n);

/* The message for what getopt_long (run with opterr = 0 and a leading ':' in its
 * option string) returned for a bad option: ch ':' (a value is missing) or anything
 * else (an unknown option, with "did you mean '--X'?" when one of opts is close),
 * then the hint. Returns BG_EXIT_ERROR. */
struct option;
int bg_cli_bad_option(const char *cmd, int ch, char *const *argv, const struct option *opts);

/* Whole days from now until t, counted toward zero (negative once past: -1 is
 * "a day ago"): how commands show a certificate's days left. */
long long bg_cli_days_left(time_t t, time_t now);

/* Strict number parsing for options; false (and a message) if s is not one. */
bool bg_cli_parse_u64(const char *cmd, const char *opt, const char *s, uint64_t *out);
bool bg_cli_parse_rate(const char *cmd, const char *opt, const char *s, double *out);

#endif
