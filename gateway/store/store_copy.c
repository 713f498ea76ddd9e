/*
 * store_copy.c - a consistent copy of a store in use, for backups (store.h).
 *
 * SQLite's online backup API copies every page of the source within one read
 * transaction (one step of all pages): the copy is the store as of one commit, while
 * the gateway and imports go on (WAL: readers do not block the writer).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <sqlite3.h>

#include "gateway/store/store.h"

static int
fail(sqlite3 *db, bg_err *err, const char *what, const char *path)
{
    char m[256];
    return bg_err_set(err, BG_EDB, "%s %s: %s", what, path, bg_store_errmsg(db, m, sizeof m));
}

/* The copy must be a store: integrity and the enterprise count. */
static int
check_copy(sqlite3 *dst, const char *dst_path, uint64_t *enterprises, bg_err *err)
{
    sqlite3_stmt *st = NULL;
    int rc = BG_OK;
    if (sqlite3_prepare_v2(dst, "PRAGMA quick_check", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW)
        rc = fail(dst, err, "cannot check the copy", dst_path);
    else if (strcmp((const char *)sqlite3_column_text(st, 0), "ok") != 0)
        rc = bg_err_set(err, BG_EDB, "the copy %s fails its check: %s", dst_path,
                        (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    st = NULL;
    if (rc == BG_OK && enterprises != NULL) {
        if (sqlite3_prepare_v2(dst, "SELECT count(*) FROM enterprises", -1, &st, NULL) !=
                SQLITE_OK ||
            sqlite3_step(st) != SQLITE_ROW)
            rc = fail(dst, err, "cannot count the enterprises of", dst_path);
        else
            *enterprises = (uint64_t)sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    return rc;
}

int
bg_store_copy(const char *db_path, const char *dst_path, uint64_t *enterprises, bg_err *err)
{
    sqlite3 *src = NULL, *dst = NULL;
    int rc = BG_OK;
    if (sqlite3_open_v2(db_path, &src, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        rc = fail(src, err, "cannot open", db_path);
        goto out;
    }
    sqlite3_busy_timeout(src, 10000);
    if (sqlite3_open_v2(dst_path, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        rc = fail(dst, err, "cannot create", dst_path);
        goto out;
    }
    chmod(dst_path, 0600);
    sqlite3_backup *b = sqlite3_backup_init(dst, "main", src, "main");
    if (b == NULL) {
        rc = fail(dst, err, "cannot start the copy to", dst_path);
        goto out;
    }
    int step = sqlite3_backup_step(b, -1); /* every page in one read transaction */
    int fin = sqlite3_backup_finish(b);
    if (step != SQLITE_DONE || fin != SQLITE_OK) {
        rc = bg_err_set(err, BG_EDB, "copying %s: %s", db_path,
                        sqlite3_errstr(step != SQLITE_DONE ? step : fin));
        goto out;
    }
    /* One file, no WAL beside it: what a backup holds. */
    if (sqlite3_exec(dst, "PRAGMA journal_mode = DELETE", NULL, NULL, NULL) != SQLITE_OK) {
        rc = fail(dst, err, "cannot settle", dst_path);
        goto out;
    }
    rc = check_copy(dst, dst_path, enterprises, err);
out:
    sqlite3_close(src);
    if (dst != NULL && sqlite3_close(dst) != SQLITE_OK && rc == BG_OK)
        rc = bg_err_set(err, BG_EDB, "cannot close %s", dst_path);
    return rc;
}
