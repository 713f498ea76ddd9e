/*
 * fuzz_import.c - a city data file through the validated import
 * (gateway/store/import.h) into a real SQLite store, as `baygate import`
 * runs it: quarantine mode, forced (the same bytes twice must still be
 * parsed), the rejects report written. The first byte picks strict mode.
 * Invariants: the counts add up, and the error rate is rejected / rows.
 */
#include <limits.h>
#include <stdbool.h>

#include "common/err.h"
#include "fuzz/fuzz.h"
#include "gateway/store/import.h"
#include "gateway/store/store.h"

static bg_store *store;
static char csv_path[PATH_MAX], report_path[PATH_MAX];

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    char data_dir[PATH_MAX];
    bg_fuzz_path(data_dir, sizeof data_dir, "data");
    bg_fuzz_path(csv_path, sizeof csv_path, "credit.csv");
    bg_fuzz_path(report_path, sizeof report_path, "credit.rejects.csv");
    bg_err err = {0};
    bg_fuzz_assert(bg_store_open(&store, data_dir, "440300", NULL, &err) == BG_OK);
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    bg_fuzz_assert(bg_fuzz_write_file(csv_path, data + 1, size - 1) == 0);
    bg_import_opts o = {
        .mode = (data[0] & 1) ? BG_IMPORT_STRICT : BG_IMPORT_QUARANTINE,
        .force = true,
        .report_path = report_path,
        .cache_kib = 1024,
    };
    bg_import_result r;
    bg_err err = {0};
    int rc = bg_import_file(store, csv_path, &o, &r, &err);
    bg_fuzz_assert(rc == BG_OK || rc == BG_EABORTED || rc == BG_EINVAL || rc == BG_ELIMIT ||
                   rc == BG_EIO || rc == BG_EDB);
    if (rc == BG_OK) {
        bg_fuzz_assert(r.inserted + r.updated + r.unchanged + r.rejected == r.rows);
        bg_fuzz_assert(r.duplicates <= r.rejected);
    }
    return 0;
}
