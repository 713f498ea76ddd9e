/*
 * store.h - the city's credit store: one SQLite file in the data directory.
 *
 * <data-dir>/credit.db, WAL journal, foreign keys on, schema versioned by
 * PRAGMA user_version and brought up to date by ordered migrations at open.
 * Tables: meta (city, grade scale), enterprises, list_entries, evaluations,
 * imports; since v2 psi_keys and psi_epochs (what the gateway published: key
 * generations and epochs, never key bytes). The store belongs to one city; its grade scale is fixed
 * when it is created. A crash at any point leaves the last committed state (SQLite's guarantee with
 * synchronous=FULL on WAL commits that matter).
 */
#ifndef BG_STORE_H
#define BG_STORE_H

#include <stdint.h>

#include "common/err.h"
#include "domain/list.h"
#include "domain/scale.h"

typedef struct bg_store bg_store;
typedef struct sqlite3 sqlite3;

#define BG_STORE_SCHEMA_VERSION 4

/*
 * Opens (creating if needed, directory mode 0700, file 0600) the store in
 * data_dir. city (6 digits) and scale are required only when the store is new
 * (a NULL scale then means bg_scale_default); when given for an existing store
 * they must match what it holds. Nothing is created when city is missing for
 * a new store. A store written by a newer baygate (higher schema version) is
 * refused rather than guessed at.
 */
int bg_store_open(bg_store **out, const char *data_dir, const char *city, const bg_scale *scale,
                  bg_err *err);
/*
 * Opens the existing store in data_dir for reading only: nothing is created,
 * migrated or written, so it is safe beside a running gateway (for checking a
 * gateway directory). BG_ENOTFOUND if there is no store. Its schema may be
 * older than BG_STORE_SCHEMA_VERSION (bg_store_schema_version says; the next
 * bg_store_open migrates it), and then only city, scale and version may be read;
 * a newer one is refused as bg_store_open refuses it.
 */
int bg_store_open_readonly(bg_store **out, const char *data_dir, bg_err *err);
void bg_store_close(bg_store *s);

/* The underlying connection, for modules of the store layer (import). */
sqlite3 *bg_store_db(bg_store *s);

/* db's last error for a message, with the system's reason when SQLite has one
 * ("disk I/O error (No space left on device)"): SQLite alone says only "disk I/O
 * error" of a full disk in many places. In buf (also returned); db NULL: out of memory. */
const char *bg_store_errmsg(sqlite3 *db, char *buf, size_t n);

const char *bg_store_city(const bg_store *s);
/* "<data-dir>/credit.db". */
const char *bg_store_path(const bg_store *s);
const bg_scale *bg_store_scale(const bg_store *s);
int bg_store_schema_version(bg_store *s);

typedef struct bg_store_counts {
    uint64_t enterprises;
    uint64_t listed[BG_LIST_COUNT];
    uint64_t evaluations;
    uint64_t by_grade[BG_SCALE_MAX_GRADES]; /* index in the store's scale */
    uint64_t imports;
} bg_store_counts;

int bg_store_counts_get(bg_store *s, bg_store_counts *out, bg_err *err);

/*
 * A consistent copy of the store file db_path (which a gateway and imports may be
 * using) into the new file dst_path (mode 0600): SQLite's online backup, in one read
 * transaction, then a quick_check of the copy; *enterprises (may be NULL) gets how
 * many it holds. The copy has no WAL beside it.
 */
int bg_store_copy(const char *db_path, const char *dst_path, uint64_t *enterprises, bg_err *err);

/* --- for the gateway's PSI publisher --- */

#define BG_STORE_NO_DATE INT32_MIN

/* One stored row as bg_store_scan hands it over (pointers valid during the call). */
typedef struct bg_store_row {
    const char *uscc;          /* canonical */
    const char *grade, *scale; /* evaluations only, else NULL */
    int32_t date1, date2;      /* listed_at, expires_at or evaluated_at, valid_until (days) */
    int64_t source;            /* the import that wrote the row */
    int64_t serial;            /* evaluations: the record's serial (unique, never reused,
                                  new when the record changes); list entries: 0 */
} bg_store_row;

typedef int (*bg_store_row_fn)(void *ctx, const bg_store_row *row, bg_err *err);

/*
 * In one read transaction: *last_import = the newest committed import id (0 if none),
 * then fn for every entry of list (a bg_list_names entry), or of evaluations when list is
 * NULL, in USCC order. A non-BG_OK from fn stops the scan and is returned.
 */
int bg_store_scan(bg_store *s, const char *list, int64_t *last_import, bg_store_row_fn fn,
                  void *ctx, bg_err *err);

/*
 * bg_store_scan of what is current on day today (days since 1970, UTC): list entries in
 * force (no expires_at, or one after today: an entry stops on its expires_at day) and
 * evaluations still valid (valid_until on or after today). What the gateway publishes:
 * an expired evaluation is never handed out as current.
 */
int bg_store_scan_current(bg_store *s, const char *list, int32_t today, int64_t *last_import,
                          bg_store_row_fn fn, void *ctx, bg_err *err);

/* The newest committed import id (0 if none). */
int bg_store_last_import(bg_store *s, int64_t *id, bg_err *err);

/*
 * The evaluation serials imports have superseded (a record changed or removed), for the
 * city's status list, in one read transaction: *number = the id of the newest import
 * that revoked any (1 if none: it grows whenever the set does), then fn per serial in
 * increasing order with when it was revoked (Unix seconds).
 */
typedef int (*bg_store_revoked_fn)(void *ctx, uint64_t serial, int64_t revoked_at, bg_err *err);
int bg_store_revoked_scan(bg_store *s, uint64_t *number, bg_store_revoked_fn fn, void *ctx,
                          bg_err *err);

/* The newest PSI key generation recorded for list (0 if none), and recording a new one. */
int bg_store_psi_generation(bg_store *s, const char *list, uint64_t *generation, bg_err *err);
int bg_store_psi_add_generation(bg_store *s, const char *list, uint64_t generation, bg_err *err);

/* A published epoch. */
typedef struct bg_store_epoch {
    uint64_t epoch, generation, entries;
    int64_t import_id;
    char digest_hex[65];
} bg_store_epoch;

/* The newest epoch of list (all zero if none), and recording a new one. */
int bg_store_psi_last_epoch(bg_store *s, const char *list, bg_store_epoch *out, bg_err *err);
int bg_store_psi_add_epoch(bg_store *s, const char *list, const bg_store_epoch *e, bg_err *err);

#endif
