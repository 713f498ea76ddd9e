/*
 * num.h - decimal numbers from text (configuration, roster, CLI options,
 * CA database lines): the one parser, strict and bounded.
 *
 * Only ASCII digits are accepted: no sign, no blanks, no "0x", no empty
 * string; overflow is an error, never a wrap or a clamp.
 */
#ifndef BG_NUM_H
#define BG_NUM_H

#include <stdint.h>

#include "common/err.h"

/* *out = the value of the NUL-terminated s, which must lie in min..max.
 * BG_EINVAL with "'s' is not a number" or "X is out of range MIN-MAX". */
int bg_num_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out, bg_err *err);

#endif
