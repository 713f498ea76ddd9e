/*
 * import.h - validated, atomic import of a city data file into the store.
 *
 * Every row is checked (USCC, dates, grade in the store's scale, list fields).
 * Quarantine mode (default): good rows go in one transaction; rejected rows,
 * in-file duplicates and conflicts with the store are written to a report file
 * (line, uscc, status, reason), itself written atomically after the commit.
 * Strict mode: any bad row aborts and nothing is written to the store (the
 * report is still written, so every bad line shows at once).
 *
 * The file is the city's current truth for each enterprise it holds: a row
 * for a known enterprise replaces its name, evaluation and list entries (lists
 * absent from the row are removed). Enterprises absent from the file are left
 * as they are. Two rows with one USCC (after normalisation) are ambiguous: the
 * later is rejected as a duplicate, even when the earlier was itself rejected.
 * A file whose SHA-256 digest was already imported is a no-op unless forced.
 * A kill -9 at any point leaves the store exactly as it was before.
 */
#ifndef BG_IMPORT_H
#define BG_IMPORT_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "gateway/store/store.h"

#define BG_IMPORT_MAX_RECORD (64 * 1024)

typedef enum { BG_IMPORT_QUARANTINE, BG_IMPORT_STRICT } bg_import_mode;

typedef enum {
    BG_IMPORT_PHASE_DIGEST, /* hashing the file */
    BG_IMPORT_PHASE_ROWS,   /* validating and writing rows; count = rows so far */
    BG_IMPORT_PHASE_COMMIT, /* about to commit: everything written, nothing durable */
    BG_IMPORT_PHASE_DONE,   /* committed */
} bg_import_phase;

typedef struct bg_import_opts {
    bg_import_mode mode;
    bool force;              /* import even if the digest was seen */
    const char *report_path; /* NULL: "<file>.rejects.csv" beside the input */
    /* SQLite page cache during the import, KiB; 0: 128 MiB. Smaller saves memory but
     * spills uncommitted pages to the WAL (still rolled back on a crash). */
    uint32_t cache_kib;
    /* Called at phase changes and every few thousand rows; may be NULL. */
    void (*progress)(void *ctx, bg_import_phase phase, uint64_t rows);
    void *progress_ctx;
} bg_import_opts;

typedef struct bg_import_result {
    int64_t import_id;       /* 0 if nothing was written */
    char digest_hex[65];     /* SHA-256 of the file's bytes */
    bool already_imported;   /* same digest seen before and not forced: nothing done */
    int64_t previous_import; /* latest earlier import with this digest (0 if none) */
    uint64_t rows;           /* data rows read (header excluded) */
    uint64_t inserted;       /* enterprises new to the store */
    uint64_t updated;        /* enterprises whose stored data changed (conflicts) */
    uint64_t unchanged;      /* rows identical to what the store holds */
    uint64_t rejected;       /* invalid rows, including duplicates */
    uint64_t duplicates;     /* rows whose USCC appeared earlier in the file */
    uint64_t conflicts;      /* rows that differ from the store (= updated) */
    uint64_t normalised;     /* accepted rows whose USCC needed normalising */
    uint64_t listed[BG_LIST_COUNT];
    uint64_t graded;
    double error_rate;      /* rejected / rows (0 for an empty file) */
    char report_path[4096]; /* where rejects and conflicts were written ("" if none) */
    uint64_t reported;      /* lines written to the report (rejects and conflicts) */
} bg_import_result;

/*
 * Imports path into s. BG_OK also when rows were rejected in quarantine mode
 * (see result); BG_EABORTED in strict mode with bad rows (result counts them,
 * err gives the first); BG_EINVAL for a file that cannot be read as data at
 * all (empty, bad header); BG_EIO, BG_EDB otherwise.
 */
int bg_import_file(bg_store *s, const char *path, const bg_import_opts *opts,
                   bg_import_result *result, bg_err *err);

#endif
