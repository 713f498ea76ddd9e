/*
 * fuzz_uscc.c - USCC normalisation and validation (domain/uscc.h) on raw
 * bytes, as `baygate uscc check` and the import see every identifier.
 * Invariants: a parsed code is canonical (validates again unchanged, both
 * check characters recompute) and normalising is idempotent.
 */
#include <string.h>

#include "common/err.h"
#include "domain/uscc.h"
#include "fuzz/fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    char norm[BG_USCC_INPUT_MAX + 1];
    size_t norm_len = 0;
    bg_err err = {0};
    if (bg_uscc_normalize(in, size, norm, sizeof norm, &norm_len, &err) == BG_OK) {
        bg_fuzz_assert(norm_len < sizeof norm);
        /* Normalising a normal form changes nothing. */
        char again[BG_USCC_INPUT_MAX + 1];
        size_t again_len = 0;
        bg_fuzz_assert(bg_uscc_normalize(norm, norm_len, again, sizeof again, &again_len, &err) ==
                       BG_OK);
        bg_fuzz_assert(again_len == norm_len && memcmp(again, norm, norm_len) == 0);
    }
    bg_uscc u;
    if (bg_uscc_parse(in, size, &u, &err) == BG_OK) {
        bg_fuzz_assert(strlen(u.code) == BG_USCC_LEN);
        bg_fuzz_assert(bg_uscc_validate(u.code, BG_USCC_LEN, &err) == BG_OK);
        bg_fuzz_assert(bg_uscc_check_char(u.code) == u.code[17]);
        bg_fuzz_assert(bg_uscc_org_check_char(u.code + 8) == u.code[16]);
        (void)bg_uscc_authority_name(u.authority);
        (void)bg_uscc_entity_type_name(u.authority, u.entity_type);
        (void)bg_uscc_city_name(u.city);
    }
    (void)bg_uscc_validate(in, size, &err);
    if (size >= 17)
        (void)bg_uscc_check_char(in);
    if (size >= 8)
        (void)bg_uscc_org_check_char(in);
    return 0;
}
