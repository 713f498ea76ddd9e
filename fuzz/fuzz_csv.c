/*
 * fuzz_csv.c - the hostile-input CSV reader (gateway/record/csv.h) over an
 * in-memory stream, read to the end as the import reads a city data file.
 * The first byte picks max_record (small values reach the too-long paths).
 * Invariants: fields lie within the record bound, line numbers never go
 * backwards, and the reader always reaches the end.
 */
#include <stdio.h>

#include "common/err.h"
#include "fuzz/fuzz.h"
#include "gateway/record/csv.h"

static volatile uint8_t sink;

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t max_record = 1 + (size_t)data[0] * 16;
    /* fmemopen refuses a zero-length buffer: a one-byte input is an empty file. */
    static const uint8_t empty[1];
    const uint8_t *body = size > 1 ? data + 1 : empty;
    FILE *f = fmemopen((void *)body, size > 1 ? size - 1 : 0, "rb");
    if (f == NULL && size == 1)
        return 0;
    bg_fuzz_assert(f != NULL);
    bg_csv *c = NULL;
    bg_err err = {0};
    bg_fuzz_assert(bg_csv_open(&c, f, max_record, &err) == BG_OK);
    uint64_t last_line = 0;
    for (size_t records = 0;; records++) {
        bg_csv_field *fields = NULL;
        size_t n = 0;
        int rc = bg_csv_next(c, &fields, &n, &err);
        if (rc == BG_ENOTFOUND || rc == BG_EIO)
            break;
        bg_fuzz_assert(rc == BG_OK || rc == BG_EINVAL || rc == BG_ELIMIT);
        bg_fuzz_assert(n <= BG_CSV_MAX_FIELDS);
        size_t total = 0;
        for (size_t i = 0; i < n; i++) {
            total += fields[i].len;
            /* Read every byte, so that ASan checks the field lies in live memory. */
            for (size_t k = 0; k < fields[i].len; k++)
                sink ^= (uint8_t)fields[i].p[k];
        }
        bg_fuzz_assert(total <= max_record);
        uint64_t line = bg_csv_line(c);
        bg_fuzz_assert(line >= last_line);
        last_line = line;
        bg_fuzz_assert(records <= size); /* every record consumes input */
    }
    bg_csv_close(c);
    fclose(f);
    return 0;
}
