/*
 * city.h - city codes: a city is its six-digit administrative division code
 * (GB/T 2260, e.g. 440100 Guangzhou, 440300 Shenzhen). The code is a city's
 * identity everywhere: certificate subject, roster member, envelope sender.
 */
#ifndef BG_CITY_H
#define BG_CITY_H

#include <stdbool.h>

#define BG_CITY_CODE_LEN 6

/* True iff code is exactly six ASCII digits, NUL-terminated. */
bool bg_city_code_valid(const char *code);

#endif
