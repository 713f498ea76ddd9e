/*
 * uscc.h - Unified Social Credit Codes (统一社会信用代码, GB 32100-2015).
 *
 * An 18-character code: 1 registration authority, 2 entity type, 3-8
 * administrative division, 9-17 organisation code (GB 11714, its own check
 * character at 17), 18 check character over 1-17. Alphabet: digits and capitals
 * without I, O, S, V, Z (31 symbols).
 *
 * bg_uscc_normalize only trims, folds full-width to half-width and upper-cases;
 * nothing else is guessed. bg_uscc_parse normalises, validates every rule and
 * decodes the fields; each failure names the position and the reason.
 */
#ifndef BG_USCC_H
#define BG_USCC_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"

#define BG_USCC_LEN 18
/* Longest raw input bg_uscc_normalize accepts (bytes). */
#define BG_USCC_INPUT_MAX 256

typedef struct bg_uscc {
    char code[BG_USCC_LEN + 1]; /* canonical, NUL-terminated */
    char authority;             /* position 1 */
    char entity_type;           /* position 2 */
    char division[7];           /* positions 3-8 */
    char city[7];               /* prefecture-level code: division[0..4] + "00" */
    char org_code[10];          /* positions 9-17 */
} bg_uscc;

/* The 31 symbols, in value order (value of '0' is 0, of 'Y' is 30). */
extern const char bg_uscc_alphabet[32];

/*
 * Trims whitespace (ASCII, U+00A0, U+3000, a leading U+FEFF), folds full-width
 * forms (U+FF01..U+FF5E) to ASCII and ASCII lower case to upper. Writes a
 * NUL-terminated result to out (outsz bytes) and its length to *outlen (if not
 * NULL; the result may hold NUL bytes from the input). BG_EINVAL for invalid
 * UTF-8, BG_ELIMIT if the input is longer than BG_USCC_INPUT_MAX.
 */
int bg_uscc_normalize(const char *in, size_t len, char *out, size_t outsz, size_t *outlen,
                      bg_err *err);

/* Validates an already canonical code of len bytes without normalising. */
int bg_uscc_validate(const char *code, size_t len, bg_err *err);

/* Normalises then validates in[0..len); on success fills *out. */
int bg_uscc_parse(const char *in, size_t len, bg_uscc *out, bg_err *err);

/* Check character (position 18) for 17 canonical characters; 0 if not in the alphabet. */
char bg_uscc_check_char(const char *first17);

/* GB 11714 check character (position 17) for positions 9-16; 0 if invalid. */
char bg_uscc_org_check_char(const char *org8);

/* Names for decoded fields; NULL when the standard assigns none. */
const char *bg_uscc_authority_name(char authority);
const char *bg_uscc_entity_type_name(char authority, char entity_type);
/* Name of a prefecture-level city ("440300" -> "Shenzhen"), as bg_city_name; NULL if unknown. */
const char *bg_uscc_city_name(const char *city6);

#endif
