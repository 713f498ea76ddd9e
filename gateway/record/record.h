/*
 * record.h - the city data format shared by the generator and the import.
 * The vocabulary it is written in (lists, dates, grade scales) is domain/.
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

#include "common/err.h"
#include "domain/date.h"
#include "domain/list.h"
#include "domain/scale.h"

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

#endif
