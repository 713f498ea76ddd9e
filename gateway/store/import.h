/*
 * import.h - validated, atomic import of a city data file into the store.
 *
 * Every row is checked (USCC, dates, grade in the store's scale, list fields).
 * Quarantine mode (default): good rows go in one transaction; rejected rows,
 * in-file duplicates and changes to what the store held are written to a report
 * file (line, uscc, status, reason), itself written atomically after the commit.
 * Strict mode: any bad row aborts and nothing is written to the store (the
 * report is still written, so every bad line shows at once).
 *
 * What a file says, and what it leaves alone:
 *   - a row for a known enterprise updates its name and whatever the row's
 *     columns give: an evaluation, or a list entry. Columns the file does not
 *     have, and empty cells, leave what the store holds unchanged: a file of
 *     only uscc,name never erases a grade or a list entry;
 *   - removing takes a replace mode the user chooses (opts.replace): for a
 *     replaced list (or the grades) the file is that list's full state, so an
 *     enterprise whose row has empty cells there, or that the file does not
 *     mention at all, loses its entry. A row that was rejected still counts as
 *     mentioned (nothing is removed on the strength of a bad row);
 *   - a replace that would remove more than opts.max_remove_pct of a list's
 *     stored entries is refused (BG_EABORTED, result.removal_over_limit) unless
 *     opts.confirm_removal;
 *   - a dry run does everything in the transaction and rolls it back: the
 *     counts say what would change, the store and the report are not written.
 * Enterprises absent from the file are otherwise left as they are. Two rows
 * with one USCC (after normalisation) are ambiguous: the later is rejected as
 * a duplicate, even when the earlier was itself rejected. A file whose SHA-256
 * digest was already imported is a no-op unless forced. A kill -9 at any point
 * leaves the store exactly as it was before.
 *
 * Counts in bg_import_result are "in this file" (what the file's rows did);
 * result.totals is the store after the import (or, for a dry run, what it
 * would be).
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

/* The replace mode's bits: one per list (bit l for bg_list_names[l]) and the grades. */
#define BG_IMPORT_REPLACE_LIST(l) (1u << (l))
#define BG_IMPORT_REPLACE_GRADES (1u << BG_LIST_COUNT)
#define BG_IMPORT_REPLACE_ALL ((1u << (BG_LIST_COUNT + 1)) - 1)
/* The default share of a list a replace may remove without confirmation. */
#define BG_IMPORT_MAX_REMOVE_PCT 10.0
/* How many expired evaluations the result names. */
#define BG_IMPORT_EXPIRED_SHOWN 5

typedef struct bg_import_opts {
    bg_import_mode mode;
    bool force;              /* import even if the digest was seen */
    bool dry_run;            /* roll back instead of committing; no report written */
    unsigned replace;        /* BG_IMPORT_REPLACE_* bits: lists the file is the full state of */
    double max_remove_pct;   /* 0: BG_IMPORT_MAX_REMOVE_PCT; a negative value: no limit */
    bool confirm_removal;    /* remove more than max_remove_pct of a list anyway */
    int32_t today;           /* day for "expired" (days since 1970); 0: today in UTC */
    const char *report_path; /* NULL: "<file>.rejects.csv" beside the input */
    /* SQLite page cache during the import, KiB; 0: 128 MiB. Smaller saves memory but
     * spills uncommitted pages to the WAL (still rolled back on a crash). */
    uint32_t cache_kib;
    /* Called at phase changes and every few thousand rows; may be NULL. */
    void (*progress)(void *ctx, bg_import_phase phase, uint64_t rows);
    void *progress_ctx;
} bg_import_opts;

/* What the file did to one list (or to the grades), in this file. */
typedef struct bg_import_delta {
    uint64_t in_file;   /* accepted rows with an entry (or an evaluation) */
    uint64_t added;     /* entries new to the store */
    uint64_t changed;   /* entries whose stored fields changed */
    uint64_t unchanged; /* entries identical to the store's */
    uint64_t removed;   /* entries removed (replace mode only) */
    uint64_t before;    /* entries the store held before the import */
} bg_import_delta;

typedef struct bg_import_result {
    int64_t import_id;              /* 0 if nothing was written */
    char digest_hex[65];            /* SHA-256 of the file's bytes */
    bool already_imported;          /* same digest seen before and not forced: nothing done */
    int64_t previous_import;        /* latest earlier import with this digest (0 if none) */
    uint64_t rows;                  /* data rows read (header excluded) */
    uint64_t inserted;              /* enterprises new to the store */
    uint64_t updated;               /* known enterprises whose stored data changed */
    uint64_t unchanged;             /* rows of known enterprises that changed nothing */
    uint64_t rejected;              /* invalid rows, including duplicates */
    uint64_t duplicates;            /* rows whose USCC appeared earlier in the file */
    uint64_t normalised;            /* accepted rows whose USCC needed normalising */
    uint64_t listed[BG_LIST_COUNT]; /* = lists[l].in_file */
    uint64_t graded;                /* = grades.in_file */
    bg_import_delta lists[BG_LIST_COUNT];
    bg_import_delta grades;
    /* Per grade of the store's scale: evaluations that now have it (new or regraded to
     * it) and that no longer have it (removed or regraded away). */
    uint64_t grade_added[BG_SCALE_MAX_GRADES], grade_removed[BG_SCALE_MAX_GRADES];
    /* Accepted graded rows whose valid_until is before today, and the first few. */
    uint64_t expired;
    char expired_uscc[BG_IMPORT_EXPIRED_SHOWN][19];
    /* Accepted rows whose USCC is registered in another city's divisions, and the
     * city most of them belong to. */
    uint64_t foreign;
    char foreign_city[7];
    uint64_t foreign_city_rows;
    bool dry_run;            /* nothing was written */
    bool removal_over_limit; /* a replace would remove more than max_remove_pct */
    bg_store_counts totals;  /* the store after the import (a dry run: what it would be) */
    double error_rate;       /* rejected / rows (0 for an empty file) */
    char report_path[4096];  /* where rejects and changes were written ("" if none) */
    uint64_t reported;       /* lines written to the report (rejects and changes) */
} bg_import_result;

/*
 * Imports path into s. BG_OK also when rows were rejected in quarantine mode
 * (see result) and for a dry run; BG_EABORTED in strict mode with bad rows
 * (result counts them, err gives the first) and for a refused removal (err says
 * how many and which option); BG_EINVAL for a replace of a list the file has no
 * columns for, and for a file that cannot be read as data at
 * all (empty, bad header); BG_EIO, BG_EDB otherwise.
 */
int bg_import_file(bg_store *s, const char *path, const bg_import_opts *opts,
                   bg_import_result *result, bg_err *err);

#endif
