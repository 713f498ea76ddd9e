/*
 * record.h - the city data format shared by the generator and the import.
 *
 * A city's data file is CSV (RFC 4180, UTF-8, header row, one row per
 * enterprise). Columns are matched by header name, in any order:
 *
 *   uscc, name                          required
 *   grade, evaluated_at, valid_until    the enterprise's evaluation (all or none)
 *   <list>:reason, <list>:listed_at, <list>:expires_at
 *                                       membership of a list (reason and listed_at
 *                                       or nothing; expires_at may stay empty)
 *
 * <list> is one of bg_list_names. Dates are ISO 8601 calendar dates
 * (YYYY-MM-DD). An unknown column is an error, so a typo never drops data.
 */
#ifndef BG_RECORD_H
#define BG_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

enum { BG_LIST_SERIOUS_DISHONESTY, BG_LIST_ABNORMAL_OPERATION, BG_LIST_COUNT };

/* "serious-dishonesty", "abnormal-operation". */
extern const char *const bg_list_names[BG_LIST_COUNT];

/* Index of a list name of len bytes, or -1. */
int bg_list_index(const char *name, size_t len);

/* Column of the format: field kinds (a list column is BG_COL_LIST_* + list). */
enum {
    BG_COL_USCC,
    BG_COL_NAME,
    BG_COL_GRADE,
    BG_COL_EVALUATED_AT,
    BG_COL_VALID_UNTIL,
    BG_COL_LIST_REASON,
    BG_COL_LIST_LISTED_AT,
    BG_COL_LIST_EXPIRES_AT,
};

typedef struct bg_column {
    int kind; /* BG_COL_* */
    int list; /* for BG_COL_LIST_*: the list index, else -1 */
} bg_column;

/* Parses a header cell; BG_EINVAL naming the column if unknown. */
int bg_column_parse(const char *name, size_t len, bg_column *out, bg_err *err);

/* Writes the canonical header line (with "\n") to buf; returns its length. */
size_t bg_record_header(char *buf, size_t bufsz);

/* Longest name and reason the store accepts (bytes). */
#define BG_NAME_MAX 512
#define BG_REASON_MAX 1024

/*
 * Dates as days since 1970-01-01. bg_date_parse accepts exactly YYYY-MM-DD
 * with a real calendar day between 1949-10-01 and 2199-12-31.
 */
int bg_date_parse(const char *s, size_t len, int32_t *days, bg_err *err);
void bg_date_format(int32_t days, char out[11]);
/* Today in UTC, as days since 1970-01-01. */
int32_t bg_date_today(void);
/* A list entry is in force on day today unless it has an expiry date (anything but
 * INT32_MIN, "none") on or before today: it stops matching on its expires_at day. */
bool bg_list_entry_in_force(int32_t expires_at, int32_t today);

/*
 * A grade scale: an ordered list of grades, best first, written "A,B,C,D".
 * Cities may use different scales; the roster (later) maps each to a common one.
 */
#define BG_SCALE_MAX_GRADES 16
#define BG_GRADE_MAX 8

typedef struct bg_scale {
    char name[32]; /* e.g. "ABCD" */
    size_t ngrades;
    char grades[BG_SCALE_MAX_GRADES][BG_GRADE_MAX + 1];
} bg_scale;

/* Parses "NAME=G1,G2,..." or "G1,G2,..." (then the name is the grades joined). */
int bg_scale_parse(const char *spec, bg_scale *out, bg_err *err);
/* Index of grade g (len bytes) in the scale, or -1. */
int bg_scale_index(const bg_scale *scale, const char *g, size_t len);
/* Writes "NAME=G1,G2,..." to buf. */
void bg_scale_format(const bg_scale *scale, char *buf, size_t bufsz);

/* The default scale: "ABCD=A,B,C,D". */
void bg_scale_default(bg_scale *out);

#endif
