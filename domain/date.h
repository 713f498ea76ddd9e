/*
 * date.h - calendar days, the unit of every validity in the domain (listing,
 * expiry, evaluation, validity of a grade).
 *
 * Dates are days since 1970-01-01 (int32_t); INT32_MIN means "none".
 * bg_date_parse accepts exactly YYYY-MM-DD with a real calendar day between
 * 1949-10-01 and 2199-12-31.
 */
#ifndef BG_DATE_H
#define BG_DATE_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

int bg_date_parse(const char *s, size_t len, int32_t *days, bg_err *err);
void bg_date_format(int32_t days, char out[11]);
/* Today in UTC, as days since 1970-01-01. */
int32_t bg_date_today(void);

#endif
