/*
 * city.h - city codes: a city is its six-digit administrative division code
 * (GB/T 2260, e.g. 440100 Guangzhou, 440300 Shenzhen). The code is a city's
 * identity everywhere: certificate subject, roster member, envelope sender.
 *
 * The known divisions are the federation's possible members: the nine
 * Guangdong cities of the Greater Bay Area and the two Special Administrative
 * Regions. Only creating a gateway (`baygate init`) insists on one of them;
 * everything that reads a code from a file or the wire checks its form alone.
 */
#ifndef BG_CITY_H
#define BG_CITY_H

#include <stdbool.h>
#include <stddef.h>

#define BG_CITY_CODE_LEN 6

/* True iff code is exactly six ASCII digits, NUL-terminated. */
bool bg_city_code_valid(const char *code);

/* English name of the known division whose code is the first six characters of code
 * ("440300" -> "Shenzhen"); NULL if none is. */
const char *bg_city_name(const char *code);

/* The known divisions in code order: i < bg_city_known_count(). */
size_t bg_city_known_count(void);
const char *bg_city_known_code(size_t i);

/* "440100 Guangzhou, 440300 Shenzhen, ..." into out (always NUL-terminated;
 * cut short if outsz is too small, 512 bytes always suffice). */
void bg_city_known_list(char *out, size_t outsz);

#endif
