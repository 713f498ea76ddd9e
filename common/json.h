/*
 * json.h - writing JSON strings safely.
 *
 * baygate prints JSON (one object per line) for machines. Input strings may
 * hold anything a hostile file contains; bg_json_str escapes quotes,
 * backslashes, control bytes, and replaces invalid UTF-8 with U+FFFD so the
 * output is always valid JSON.
 */
#ifndef BG_JSON_H
#define BG_JSON_H

#include <stddef.h>
#include <stdio.h>

/* Writes s (len bytes) to f as a quoted JSON string. */
void bg_json_str(FILE *f, const char *s, size_t len);

/* Same, for a NUL-terminated string; NULL prints null. */
void bg_json_cstr(FILE *f, const char *s);

/* Length of the longest valid UTF-8 prefix of s[0..len); equals len iff valid. */
size_t bg_utf8_valid_prefix(const unsigned char *s, size_t len);

#endif
