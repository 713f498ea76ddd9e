/*
 * store.c - opening, creating and migrating the city's SQLite credit store.
 *
 * Durability: WAL with synchronous=FULL. In WAL mode FULL costs one fsync of
 * the WAL per commit, and baygate commits rarely (one transaction per import),
 * so the price is nothing next to the guarantee: once an import reports
 * success it survives a power cut. (NORMAL would let the last commits roll
 * back after power loss, which the import's "done" message would then lie
 * about.)
 *
 * Schema: PRAGMA user_version is the number of migrations applied; migrations[]
 * is append-only and each entry runs inside the same IMMEDIATE transaction
 * that bumps user_version, so a crash leaves a store at either version.
 */
#include "gateway/store/store.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "domain/date.h"
#include "domain/list.h"
#include "domain/uscc.h"

struct bg_store {
    sqlite3 *db;
    char city[7];
    bg_scale scale;
    char path[4096];
};

/* Ordered, append-only: migrations[i] brings user_version from i to i + 1. */
static const char *const migrations[] = {
    /* v1: initial schema. */
    "CREATE TABLE meta (\n"
    "  key TEXT PRIMARY KEY NOT NULL,\n"
    "  value TEXT NOT NULL\n"
    ") STRICT, WITHOUT ROWID;\n"
    "CREATE TABLE imports (\n"
    "  id INTEGER PRIMARY KEY,\n"
    "  digest TEXT NOT NULL CHECK (length(digest) = 64),\n"
    "  file_name TEXT NOT NULL,\n"
    "  started_at TEXT NOT NULL,\n"
    "  finished_at TEXT NOT NULL,\n"
    "  mode TEXT NOT NULL CHECK (mode IN ('quarantine', 'strict')),\n"
    "  forced INTEGER NOT NULL DEFAULT 0,\n"
    "  rows INTEGER NOT NULL DEFAULT 0,\n"
    "  inserted INTEGER NOT NULL DEFAULT 0,\n"
    "  updated INTEGER NOT NULL DEFAULT 0,\n"
    "  unchanged INTEGER NOT NULL DEFAULT 0,\n"
    "  rejected INTEGER NOT NULL DEFAULT 0,\n"
    "  duplicates INTEGER NOT NULL DEFAULT 0,\n"
    "  conflicts INTEGER NOT NULL DEFAULT 0,\n"
    "  normalised INTEGER NOT NULL DEFAULT 0\n"
    ") STRICT;\n"
    /* Not UNIQUE: --force imports the same bytes again on purpose. */
    "CREATE INDEX imports_by_digest ON imports(digest);\n"
    "CREATE TABLE enterprises (\n"
    "  uscc TEXT PRIMARY KEY NOT NULL CHECK (length(uscc) = 18),\n"
    "  name TEXT NOT NULL CHECK (length(name) > 0),\n"
    "  division TEXT NOT NULL CHECK (length(division) = 6),\n"
    "  first_import INTEGER NOT NULL REFERENCES imports(id),\n"
    "  last_import INTEGER NOT NULL REFERENCES imports(id)\n"
    ") STRICT, WITHOUT ROWID;\n"
    "CREATE TABLE list_entries (\n"
    "  list TEXT NOT NULL,\n"
    "  uscc TEXT NOT NULL REFERENCES enterprises(uscc) ON DELETE CASCADE,\n"
    "  reason TEXT NOT NULL,\n"
    "  listed_at TEXT NOT NULL,\n"
    "  expires_at TEXT,\n"
    "  source INTEGER NOT NULL REFERENCES imports(id),\n"
    "  PRIMARY KEY (list, uscc),\n"
    "  CHECK (expires_at IS NULL OR expires_at >= listed_at)\n"
    ") STRICT, WITHOUT ROWID;\n"
    /* The child key of the cascade, so deleting an enterprise is not a full scan. */
    "CREATE INDEX list_entries_by_uscc ON list_entries(uscc);\n"
    "CREATE TABLE evaluations (\n"
    "  uscc TEXT PRIMARY KEY NOT NULL REFERENCES enterprises(uscc) ON DELETE CASCADE,\n"
    "  grade TEXT NOT NULL,\n"
    "  scale TEXT NOT NULL,\n"
    "  evaluated_at TEXT NOT NULL,\n"
    "  valid_until TEXT NOT NULL,\n"
    "  source INTEGER NOT NULL REFERENCES imports(id),\n"
    "  CHECK (valid_until >= evaluated_at)\n"
    ") STRICT, WITHOUT ROWID;\n",
    /* v2: PSI publication metadata (the gateway daemon writes these). Key bytes are NOT
     * here: they live in 0600 files under <data-dir>/psi-keys, so that copies of the
     * credit store (backups, hand-offs for audit) never carry OPRF keys. */
    "CREATE TABLE psi_keys (\n"
    "  list TEXT NOT NULL,\n"
    "  generation INTEGER NOT NULL CHECK (generation >= 1),\n"
    "  created_at TEXT NOT NULL,\n"
    "  PRIMARY KEY (list, generation)\n"
    ") STRICT, WITHOUT ROWID;\n"
    "CREATE TABLE psi_epochs (\n"
    "  list TEXT NOT NULL,\n"
    "  epoch INTEGER NOT NULL CHECK (epoch >= 1),\n"
    "  generation INTEGER NOT NULL,\n"
    "  import_id INTEGER NOT NULL,\n"
    "  entries INTEGER NOT NULL,\n"
    "  digest TEXT NOT NULL CHECK (length(digest) = 64),\n"
    "  published_at TEXT NOT NULL,\n"
    "  PRIMARY KEY (list, epoch)\n"
    ") STRICT, WITHOUT ROWID;\n",
    /* v3: a serial per evaluation record, (import id << 32) | its ordinal among the
     * evaluations that import wrote: unique, never reused (import ids only grow), and new
     * whenever the record changes. Attestations carry it and status lists revoke it, so
     * repairing one enterprise revokes that record alone. */
    "ALTER TABLE evaluations ADD COLUMN serial INTEGER NOT NULL DEFAULT 0;\n"
    "UPDATE evaluations SET serial = (evaluations.source << 32) | t.n FROM\n"
    "  (SELECT uscc, row_number() OVER (PARTITION BY source ORDER BY uscc) AS n\n"
    "   FROM evaluations) AS t WHERE t.uscc = evaluations.uscc;\n"
    "CREATE UNIQUE INDEX evaluations_serial ON evaluations(serial);\n",
    /* v4: serials an import superseded (a changed or removed evaluation): the city's
     * status list revokes them, so an attestation of the old record stops verifying. Written
     * in the import's transaction, so a crash never loses a revocation. Cumulative. */
    "CREATE TABLE revoked_serials (\n"
    "  serial INTEGER PRIMARY KEY,\n"
    "  import_id INTEGER NOT NULL REFERENCES imports(id),\n"
    "  revoked_at INTEGER NOT NULL\n"
    ") STRICT;\n",
};

#define NMIGRATIONS ((int)(sizeof migrations / sizeof migrations[0]))

_Static_assert(NMIGRATIONS == BG_STORE_SCHEMA_VERSION,
               "BG_STORE_SCHEMA_VERSION must equal the number of migrations");

/* The system's errno behind db's last error, if it was the file system's (SQLite keeps
 * the last failed call's, which may be older than an error of another kind); 0 if none. */
static int
os_errno(sqlite3 *db)
{
    int c = sqlite3_errcode(db) & 0xff;
    return c == SQLITE_IOERR || c == SQLITE_FULL || c == SQLITE_CANTOPEN ? sqlite3_system_errno(db)
                                                                         : 0;
}

const char *
bg_store_errmsg(sqlite3 *db, char *buf, size_t n)
{
    if (db == NULL) {
        snprintf(buf, n, "out of memory");
        return buf;
    }
    int e = os_errno(db);
    const char *m = sqlite3_errmsg(db);
    if (e != 0 && strstr(m, strerror(e)) == NULL)
        snprintf(buf, n, "%s (%s)", m, strerror(e));
    else
        snprintf(buf, n, "%s", m);
    return buf;
}

static int
db_err(bg_store *s, bg_err *err, const char *what)
{
    char m[256];
    return bg_err_set(err, BG_EDB, "store %s: %s: %s", s->path, what,
                      bg_store_errmsg(s->db, m, sizeof m));
}

static int
exec(bg_store *s, const char *sql, bg_err *err)
{
    char *msg = NULL;
    if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        char m[256];
        int e = os_errno(s->db);
        if (msg == NULL)
            bg_store_errmsg(s->db, m, sizeof m);
        else if (e != 0)
            snprintf(m, sizeof m, "%s (%s)", msg, strerror(e));
        else
            snprintf(m, sizeof m, "%s", msg);
        int rc = bg_err_set(err, BG_EDB, "store %s: %s", s->path, m);
        sqlite3_free(msg);
        return rc;
    }
    return BG_OK;
}

/* Runs a query returning one integer; BG_OK with *out set. */
static int
query_int(bg_store *s, const char *sql, int64_t *out, bg_err *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return db_err(s, err, sql);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *out = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW)
        return db_err(s, err, sql);
    return BG_OK;
}

/* Reads meta[key] into buf; BG_ENOTFOUND if absent. */
static int
meta_get(bg_store *s, const char *key, char *buf, size_t bufsz, bg_err *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, "SELECT value FROM meta WHERE key = ?1", -1, &st, NULL) !=
        SQLITE_OK)
        return db_err(s, err, "reading meta");
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    int ret = BG_OK;
    if (rc == SQLITE_ROW) {
        const unsigned char *v = sqlite3_column_text(st, 0);
        snprintf(buf, bufsz, "%s", v ? (const char *)v : "");
    } else if (rc == SQLITE_DONE) {
        ret = BG_ENOTFOUND;
    } else {
        ret = db_err(s, err, "reading meta");
    }
    sqlite3_finalize(st);
    return ret;
}

static int
meta_put(bg_store *s, const char *key, const char *value, bg_err *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, "INSERT INTO meta(key, value) VALUES (?1, ?2)", -1, &st, NULL) !=
        SQLITE_OK)
        return db_err(s, err, "writing meta");
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? BG_OK : db_err(s, err, "writing meta");
}

static bool
valid_city(const char *city)
{
    for (int i = 0; i < 6; i++)
        if (city[i] < '0' || city[i] > '9')
            return false;
    return city[6] == '\0';
}

static const char *
city_label(const char *city)
{
    const char *n = bg_uscc_city_name(city);
    return n ? n : "unknown city";
}

/*
 * Brings the schema to BG_STORE_SCHEMA_VERSION and, for a new store, records
 * city and scale, all in one transaction: a store either has both or neither.
 */
static int
migrate(bg_store *s, const char *city, const bg_scale *scale, bg_err *err)
{
    int rc = exec(s, "BEGIN IMMEDIATE", err);
    if (rc != BG_OK)
        return rc;
    int64_t v = 0;
    /* Read again under the write lock: another process may have migrated meanwhile. */
    rc = query_int(s, "PRAGMA user_version", &v, err);
    if (rc == BG_OK && v > BG_STORE_SCHEMA_VERSION)
        rc = bg_err_set(err, BG_EDB,
                        "store %s has schema version %lld, newer than this baygate knows "
                        "(%d): upgrade baygate",
                        s->path, (long long)v, BG_STORE_SCHEMA_VERSION);
    for (; rc == BG_OK && v < BG_STORE_SCHEMA_VERSION; v++) {
        rc = exec(s, migrations[v], err);
        if (rc == BG_OK) {
            char sql[64];
            snprintf(sql, sizeof sql, "PRAGMA user_version = %lld", (long long)v + 1);
            rc = exec(s, sql, err);
        }
    }
    char buf[256];
    if (rc == BG_OK) {
        int m = meta_get(s, "city", buf, sizeof buf, err);
        if (m == BG_ENOTFOUND) {
            if (city == NULL) {
                rc = bg_err_set(err, BG_EINVAL,
                                "store %s is new: a city code is needed to create it", s->path);
            } else {
                bg_scale def;
                if (scale == NULL) {
                    bg_scale_default(&def);
                    scale = &def;
                }
                char sc[BG_SCALE_MAX_GRADES * (BG_GRADE_MAX + 1) + 64];
                bg_scale_format(scale, sc, sizeof sc);
                char now[32];
                time_t t = time(NULL);
                struct tm tm;
                gmtime_r(&t, &tm);
                strftime(now, sizeof now, "%Y-%m-%dT%H:%M:%SZ", &tm);
                rc = meta_put(s, "city", city, err);
                if (rc == BG_OK)
                    rc = meta_put(s, "scale", sc, err);
                if (rc == BG_OK)
                    rc = meta_put(s, "created_at", now, err);
            }
        } else if (m != BG_OK) {
            rc = m;
        }
    }
    if (rc == BG_OK)
        return exec(s, "COMMIT", err);
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

/* Loads city and scale from meta and checks them against what the caller expects. */
static int
load_meta(bg_store *s, const char *city, const bg_scale *scale, bg_err *err)
{
    char buf[512];
    int rc = meta_get(s, "city", buf, sizeof buf, err);
    if (rc == BG_ENOTFOUND)
        return bg_err_set(err, BG_EDB, "store %s has no city recorded", s->path);
    if (rc != BG_OK)
        return rc;
    if (strlen(buf) != 6 || !valid_city(buf))
        return bg_err_set(err, BG_EDB, "store %s: recorded city '%.16s' is not 6 digits", s->path,
                          buf);
    memcpy(s->city, buf, 7);
    rc = meta_get(s, "scale", buf, sizeof buf, err);
    if (rc == BG_ENOTFOUND)
        return bg_err_set(err, BG_EDB, "store %s has no grade scale recorded", s->path);
    if (rc != BG_OK)
        return rc;
    bg_err e;
    if (bg_scale_parse(buf, &s->scale, &e) != BG_OK)
        return bg_err_set(err, BG_EDB, "store %s: recorded scale: %s", s->path, e.msg);

    if (city != NULL && strcmp(city, s->city) != 0)
        return bg_err_set(err, BG_EINVAL, "store %s belongs to city %s (%s), not %s (%s)", s->path,
                          s->city, city_label(s->city), city, city_label(city));
    if (scale != NULL) {
        char want[BG_SCALE_MAX_GRADES * (BG_GRADE_MAX + 1) + 64];
        bg_scale_format(scale, want, sizeof want);
        if (strcmp(want, buf) != 0)
            return bg_err_set(err, BG_EINVAL, "store %s uses grade scale %s, not %s", s->path, buf,
                              want);
    }
    return BG_OK;
}

/* Creates data_dir (0700) if missing and checks it is a directory. */
static int
ensure_dir(const char *data_dir, bg_err *err)
{
    if (mkdir(data_dir, 0700) != 0 && errno != EEXIST)
        return bg_err_set(err, BG_EIO, "cannot create data directory %s: %s", data_dir,
                          strerror(errno));
    struct stat st;
    if (stat(data_dir, &st) != 0)
        return bg_err_set(err, BG_EIO, "data directory %s: %s", data_dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return bg_err_set(err, BG_EIO, "data directory %s is not a directory", data_dir);
    return BG_OK;
}

/*
 * Creates the store file if it does not exist (0600 from the first byte; SQLite gives its
 * -wal and -shm files the same mode). Refuses before creating anything when there is no
 * city to create it for, so a forgotten --city leaves no trace. *created: we made it.
 */
static int
create_file(bg_store *s, const char *data_dir, const char *city, bool *created, bg_err *err)
{
    struct stat st;
    *created = false;
    if (stat(s->path, &st) == 0)
        return BG_OK;
    if (city == NULL)
        return bg_err_set(err, BG_EINVAL,
                          "no store in %s: a city code is needed to create one (--city)", data_dir);
    int rc = ensure_dir(data_dir, err);
    if (rc != BG_OK)
        return rc;
    int fd = open(s->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) {
        *created = true;
        close(fd);
    } else if (errno != EEXIST) {
        return bg_err_set(err, BG_EIO, "cannot create %s: %s", s->path, strerror(errno));
    }
    return BG_OK;
}

/* Opens the connection (flags: SQLITE_OPEN_READWRITE or _READONLY) and reads the schema
 * version; a newer store is not ours to touch. */
static int
open_conn(bg_store *s, int flags, int64_t *version, bg_err *err)
{
    if (sqlite3_open_v2(s->path, &s->db, flags, NULL) != SQLITE_OK) {
        char m[256];
        return bg_err_set(err, BG_EDB, "cannot open store %s: %s", s->path,
                          bg_store_errmsg(s->db, m, sizeof m));
    }
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, 10000);

    int rc = query_int(s, "PRAGMA user_version", version, err);
    if (rc != BG_OK)
        return rc;
    if (*version > BG_STORE_SCHEMA_VERSION)
        return bg_err_set(err, BG_EDB,
                          "store %s has schema version %lld, newer than this baygate knows (%d): "
                          "upgrade baygate",
                          s->path, (long long)*version, BG_STORE_SCHEMA_VERSION);
    return BG_OK;
}

/* Opens the connection, checks the schema version before anything writes, then WAL,
 * foreign keys and synchronous=FULL. */
static int
open_db(bg_store *s, int64_t *version, bg_err *err)
{
    int rc = open_conn(s, SQLITE_OPEN_READWRITE, version, err);
    if (rc != BG_OK)
        return rc;
    sqlite3_stmt *jm = NULL;
    bool wal = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &jm, NULL) == SQLITE_OK &&
               sqlite3_step(jm) == SQLITE_ROW &&
               sqlite3_stricmp((const char *)sqlite3_column_text(jm, 0), "wal") == 0;
    sqlite3_finalize(jm);
    if (!wal)
        return db_err(s, err, "cannot switch to WAL journal mode");
    return exec(s,
                "PRAGMA foreign_keys = ON;"
                "PRAGMA synchronous = FULL;"
                /* The WAL of a big import is truncated back after the checkpoint. */
                "PRAGMA journal_size_limit = 67108864;",
                err);
}

/* A handle for the store in data_dir, not yet open. */
static int
store_new(const char *data_dir, bg_store **out, bg_err *err)
{
    *out = NULL;
    if (data_dir == NULL || data_dir[0] == '\0')
        return bg_err_set(err, BG_EINVAL, "no data directory given");
    bg_store *s = calloc(1, sizeof *s);
    if (s == NULL)
        return bg_err_set(err, BG_ENOMEM, "out of memory");
    int n = snprintf(s->path, sizeof s->path, "%s/credit.db", data_dir);
    if (n < 0 || (size_t)n >= sizeof s->path) {
        free(s);
        return bg_err_set(err, BG_EINVAL, "data directory path is too long");
    }
    *out = s;
    return BG_OK;
}

int
bg_store_open(bg_store **out, const char *data_dir, const char *city, const bg_scale *scale,
              bg_err *err)
{
    *out = NULL;
    if (city != NULL && !valid_city(city))
        return bg_err_set(err, BG_EINVAL, "city '%.16s' is not a 6-digit division code", city);
    bg_store *s = NULL;
    int rc = store_new(data_dir, &s, err);
    if (rc != BG_OK)
        return rc;
    bool created = false;
    rc = create_file(s, data_dir, city, &created, err);
    if (rc != BG_OK) {
        free(s);
        return rc;
    }
    int64_t v = 0;
    rc = open_db(s, &v, err);
    char probe[8];
    bool ready = rc == BG_OK && v == BG_STORE_SCHEMA_VERSION &&
                 meta_get(s, "city", probe, sizeof probe, NULL) == BG_OK;
    if (rc == BG_OK && !ready)
        rc = migrate(s, city, scale, err);
    if (rc == BG_OK)
        rc = load_meta(s, city, scale, err);
    if (rc == BG_OK) {
        *out = s;
        return BG_OK;
    }

    sqlite3_close_v2(s->db);
    if (created) {
        /* Leave no empty store behind when creation itself failed. */
        char side[4096 + 8];
        unlink(s->path);
        snprintf(side, sizeof side, "%s-wal", s->path);
        unlink(side);
        snprintf(side, sizeof side, "%s-shm", s->path);
        unlink(side);
    }
    free(s);
    return rc;
}

int
bg_store_open_readonly(bg_store **out, const char *data_dir, bg_err *err)
{
    bg_store *s = NULL;
    int rc = store_new(data_dir, &s, err);
    if (rc != BG_OK)
        return rc;
    struct stat st;
    if (stat(s->path, &st) != 0) {
        rc = bg_err_set(err, errno == ENOENT ? BG_ENOTFOUND : BG_EIO, "no store at %s: %s", s->path,
                        strerror(errno));
        free(s);
        return rc;
    }
    int64_t v = 0;
    rc = open_conn(s, SQLITE_OPEN_READONLY, &v, err);
    if (rc == BG_OK && v == 0)
        rc = bg_err_set(err, BG_EDB, "store %s was never set up (schema version 0)", s->path);
    if (rc == BG_OK)
        rc = load_meta(s, NULL, NULL, err);
    if (rc != BG_OK) {
        sqlite3_close_v2(s->db);
        free(s);
        return rc;
    }
    *out = s;
    return BG_OK;
}

void
bg_store_close(bg_store *s)
{
    if (s == NULL)
        return;
    sqlite3_close_v2(s->db);
    free(s);
}

sqlite3 *
bg_store_db(bg_store *s)
{
    return s->db;
}

const char *
bg_store_city(const bg_store *s)
{
    return s->city;
}

const char *
bg_store_path(const bg_store *s)
{
    return s->path;
}

const bg_scale *
bg_store_scale(const bg_store *s)
{
    return &s->scale;
}

int
bg_store_schema_version(bg_store *s)
{
    int64_t v = -1;
    if (query_int(s, "PRAGMA user_version", &v, NULL) != BG_OK)
        return -1;
    return (int)v;
}

int
bg_store_counts_get(bg_store *s, bg_store_counts *out, bg_err *err)
{
    memset(out, 0, sizeof *out);
    int64_t v = 0;
    int rc;
    /* One read transaction, so the numbers describe a single state of the store; a
     * savepoint, so it also works inside a caller's transaction. */
    if ((rc = exec(s, "SAVEPOINT counts", err)) != BG_OK)
        return rc;
    if ((rc = query_int(s, "SELECT count(*) FROM enterprises", &v, err)) != BG_OK)
        goto done;
    out->enterprises = (uint64_t)v;
    if ((rc = query_int(s, "SELECT count(*) FROM evaluations", &v, err)) != BG_OK)
        goto done;
    out->evaluations = (uint64_t)v;
    if ((rc = query_int(s, "SELECT count(*) FROM imports", &v, err)) != BG_OK)
        goto done;
    out->imports = (uint64_t)v;

    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, "SELECT list, count(*) FROM list_entries GROUP BY list", -1, &st,
                           NULL) != SQLITE_OK) {
        rc = db_err(s, err, "counting list entries");
        goto done;
    }
    int r;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        int l = name ? bg_list_index(name, strlen(name)) : -1;
        if (l >= 0)
            out->listed[l] = (uint64_t)sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    if (r != SQLITE_DONE) {
        rc = db_err(s, err, "counting list entries");
        goto done;
    }
    if (sqlite3_prepare_v2(s->db, "SELECT grade, count(*) FROM evaluations GROUP BY grade", -1, &st,
                           NULL) != SQLITE_OK) {
        rc = db_err(s, err, "counting grades");
        goto done;
    }
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        const char *g = (const char *)sqlite3_column_text(st, 0);
        int i = g ? bg_scale_index(&s->scale, g, strlen(g)) : -1;
        if (i >= 0)
            out->by_grade[i] = (uint64_t)sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    if (r != SQLITE_DONE)
        rc = db_err(s, err, "counting grades");
done:
    sqlite3_exec(s->db, "RELEASE counts", NULL, NULL, NULL);
    return rc;
}

/* ------------------------------------------------------------ PSI support */

/* A list entry is current until its expires_at day; an evaluation through valid_until. */
static bool
current(bool list_entry, const bg_store_row *row, int32_t today)
{
    if (list_entry)
        return bg_list_entry_in_force(row->date2, today);
    return row->date2 != BG_STORE_NO_DATE && row->date2 >= today;
}

static int
day_of(const unsigned char *text, int32_t *out)
{
    if (text == NULL) {
        *out = BG_STORE_NO_DATE;
        return BG_OK;
    }
    return bg_date_parse((const char *)text, strlen((const char *)text), out, NULL);
}

/* With today = BG_STORE_NO_DATE every row; else only what is current on that day. */
static int
scan(bg_store *s, const char *list, int32_t today, int64_t *last_import, bg_store_row_fn fn,
     void *ctx, bg_err *err)
{
    int rc;
    /* One read transaction: the import id and the rows describe the same state. */
    if ((rc = exec(s, "BEGIN", err)) != BG_OK)
        return rc;
    int64_t v = 0;
    rc = query_int(s, "SELECT coalesce(max(id), 0) FROM imports", &v, err);
    if (rc == BG_OK)
        *last_import = v;
    sqlite3_stmt *st = NULL;
    const char *sql =
        list != NULL ? "SELECT uscc, NULL, NULL, listed_at, expires_at, source FROM list_entries "
                       "WHERE list = ?1 ORDER BY uscc"
                     : "SELECT uscc, grade, scale, evaluated_at, valid_until, source, serial "
                       "FROM evaluations ORDER BY uscc";
    if (rc == BG_OK && sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        rc = db_err(s, err, "scanning entries");
    if (rc == BG_OK && list != NULL)
        sqlite3_bind_text(st, 1, list, -1, SQLITE_STATIC);
    int r = SQLITE_DONE;
    while (rc == BG_OK && (r = sqlite3_step(st)) == SQLITE_ROW) {
        bg_store_row row = {
            .uscc = (const char *)sqlite3_column_text(st, 0),
            .grade = (const char *)sqlite3_column_text(st, 1),
            .scale = (const char *)sqlite3_column_text(st, 2),
            .source = sqlite3_column_int64(st, 5),
            .serial = list != NULL ? 0 : sqlite3_column_int64(st, 6),
        };
        if (row.uscc == NULL || day_of(sqlite3_column_text(st, 3), &row.date1) != BG_OK ||
            day_of(sqlite3_column_text(st, 4), &row.date2) != BG_OK)
            rc = bg_err_set(err, BG_EDB, "store %s: a stored row does not read back", s->path);
        else if (today == BG_STORE_NO_DATE || current(list != NULL, &row, today))
            rc = fn(ctx, &row, err);
    }
    if (rc == BG_OK && r != SQLITE_DONE)
        rc = db_err(s, err, "scanning entries");
    sqlite3_finalize(st);
    sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
    return rc;
}

int
bg_store_scan(bg_store *s, const char *list, int64_t *last_import, bg_store_row_fn fn, void *ctx,
              bg_err *err)
{
    return scan(s, list, BG_STORE_NO_DATE, last_import, fn, ctx, err);
}

int
bg_store_scan_current(bg_store *s, const char *list, int32_t today, int64_t *last_import,
                      bg_store_row_fn fn, void *ctx, bg_err *err)
{
    if (today == BG_STORE_NO_DATE)
        return bg_err_set(err, BG_EINVAL, "no day given for the current entries");
    return scan(s, list, today, last_import, fn, ctx, err);
}

int
bg_store_revoked_scan(bg_store *s, uint64_t *number, bg_store_revoked_fn fn, void *ctx, bg_err *err)
{
    int rc;
    if ((rc = exec(s, "BEGIN", err)) != BG_OK)
        return rc;
    int64_t v = 0;
    rc = query_int(s, "SELECT coalesce(max(import_id), 1) FROM revoked_serials", &v, err);
    if (rc == BG_OK)
        *number = (uint64_t)v;
    sqlite3_stmt *st = NULL;
    if (rc == BG_OK &&
        sqlite3_prepare_v2(s->db, "SELECT serial, revoked_at FROM revoked_serials ORDER BY serial",
                           -1, &st, NULL) != SQLITE_OK)
        rc = db_err(s, err, "reading revoked serials");
    int r = SQLITE_DONE;
    while (rc == BG_OK && (r = sqlite3_step(st)) == SQLITE_ROW)
        rc = fn(ctx, (uint64_t)sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1), err);
    if (rc == BG_OK && r != SQLITE_DONE)
        rc = db_err(s, err, "reading revoked serials");
    sqlite3_finalize(st);
    sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
    return rc;
}

int
bg_store_last_import(bg_store *s, int64_t *id, bg_err *err)
{
    return query_int(s, "SELECT coalesce(max(id), 0) FROM imports", id, err);
}

static void
utc_now(char *buf, size_t n)
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int
bg_store_psi_generation(bg_store *s, const char *list, uint64_t *generation, bg_err *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT coalesce(max(generation), 0) FROM psi_keys WHERE list = ?1", -1,
                           &st, NULL) != SQLITE_OK)
        return db_err(s, err, "reading psi_keys");
    sqlite3_bind_text(st, 1, list, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st) == SQLITE_ROW ? BG_OK : db_err(s, err, "reading psi_keys");
    if (rc == BG_OK)
        *generation = (uint64_t)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return rc;
}

int
bg_store_psi_add_generation(bg_store *s, const char *list, uint64_t generation, bg_err *err)
{
    char now[32];
    utc_now(now, sizeof now);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db,
                           "INSERT INTO psi_keys(list, generation, created_at) VALUES (?1, ?2, ?3)",
                           -1, &st, NULL) != SQLITE_OK)
        return db_err(s, err, "writing psi_keys");
    sqlite3_bind_text(st, 1, list, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)generation);
    sqlite3_bind_text(st, 3, now, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st) == SQLITE_DONE ? BG_OK : db_err(s, err, "writing psi_keys");
    sqlite3_finalize(st);
    return rc;
}

int
bg_store_psi_last_epoch(bg_store *s, const char *list, bg_store_epoch *out, bg_err *err)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT epoch, generation, import_id, entries, digest FROM psi_epochs "
                           "WHERE list = ?1 ORDER BY epoch DESC LIMIT 1",
                           -1, &st, NULL) != SQLITE_OK)
        return db_err(s, err, "reading psi_epochs");
    sqlite3_bind_text(st, 1, list, -1, SQLITE_STATIC);
    int r = sqlite3_step(st), rc = BG_OK;
    if (r == SQLITE_ROW) {
        out->epoch = (uint64_t)sqlite3_column_int64(st, 0);
        out->generation = (uint64_t)sqlite3_column_int64(st, 1);
        out->import_id = sqlite3_column_int64(st, 2);
        out->entries = (uint64_t)sqlite3_column_int64(st, 3);
        const unsigned char *d = sqlite3_column_text(st, 4);
        snprintf(out->digest_hex, sizeof out->digest_hex, "%s", d ? (const char *)d : "");
    } else if (r != SQLITE_DONE) {
        rc = db_err(s, err, "reading psi_epochs");
    }
    sqlite3_finalize(st);
    return rc;
}

int
bg_store_psi_add_epoch(bg_store *s, const char *list, const bg_store_epoch *e, bg_err *err)
{
    char now[32];
    utc_now(now, sizeof now);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db,
                           "INSERT INTO psi_epochs(list, epoch, generation, import_id, entries, "
                           "digest, published_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                           -1, &st, NULL) != SQLITE_OK)
        return db_err(s, err, "writing psi_epochs");
    sqlite3_bind_text(st, 1, list, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)e->epoch);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)e->generation);
    sqlite3_bind_int64(st, 4, e->import_id);
    sqlite3_bind_int64(st, 5, (sqlite3_int64)e->entries);
    sqlite3_bind_text(st, 6, e->digest_hex, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, now, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st) == SQLITE_DONE ? BG_OK : db_err(s, err, "writing psi_epochs");
    sqlite3_finalize(st);
    return rc;
}
