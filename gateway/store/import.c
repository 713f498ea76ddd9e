/*
 * import.c - validated, atomic import of a city data file.
 *
 * Shape of an import:
 *   1. hash the file (SHA-256); a digest already in imports is a no-op unless
 *      forced;
 *   2. BEGIN IMMEDIATE, insert the imports row (the rows written below refer
 *      to it), then stream the CSV: validate each row, look it up in the store,
 *      insert, update or leave it; bad rows, duplicates and changes go to a
 *      temporary report file;
 *   3. for each replaced list, remove the entries of enterprises the file does
 *      not mention (the duplicate index knows every USCC it held); refuse if
 *      that removes more than the allowed share;
 *   4. record the counts and the totals, COMMIT (or ROLLBACK in strict mode
 *      with bad rows, or for a dry run), and only then rename the report into
 *      place.
 * Everything the store sees happens inside that one transaction, so a crash
 * or kill -9 before COMMIT returns leaves the store as it was: SQLite ignores
 * WAL frames of a transaction that never committed.
 *
 * The bytes are hashed a second time as the CSV reader consumes them; if they
 * differ from the first pass the file changed underneath us and the import is
 * abandoned, so a recorded digest always describes what was imported.
 *
 * Speed: one prepared statement per operation, reused; text bound without
 * copies (SQLITE_STATIC, the CSV field stays valid until the next record); a
 * new enterprise costs one INSERT ... ON CONFLICT DO NOTHING, whose change
 * count tells new from known without a lookup first.
 */
#include "gateway/store/import.h"

#include <errno.h>
#include <sodium.h>
#include <stdarg.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/file.h"
#include "common/json.h"
#include "domain/date.h"
#include "domain/uscc.h"
#include "gateway/record/csv.h"
#include "gateway/record/record.h"

#define PROGRESS_EVERY 8192
/* Bytes of a raw USCC shown in the report; hostile fields can be 64 KiB. */
#define REPORT_USCC_MAX 64
/* The page cache during an import: a big one keeps the B-trees of a million
 * random inserts in memory instead of spilling them to the WAL repeatedly. */
#define IMPORT_CACHE_KIB 131072

/* ---- USCC -> first line, for duplicates within the file ---- */

/*
 * A canonical USCC is 18 symbols of a 31-letter alphabet: the first 12 fit in
 * 60 bits, the last 6 in 30, so a slot is 16 bytes (1M rows: 32 MiB at most).
 * line 0 marks an empty slot (data lines start at 2); lines past 2^32 - 1 are
 * clamped, which only makes the "duplicate of line N" text approximate.
 */
typedef struct dup_slot {
    uint64_t a;
    uint32_t b;
    uint32_t line;
} dup_slot;

typedef struct dup_map {
    dup_slot *slots;
    size_t cap; /* a power of two */
    size_t count;
    unsigned char value[256]; /* alphabet value + 1 */
} dup_map;

static int
dup_init(dup_map *m)
{
    memset(m, 0, sizeof *m);
    for (int i = 0; i < 31; i++)
        m->value[(unsigned char)bg_uscc_alphabet[i]] = (unsigned char)(i + 1);
    m->cap = 1u << 16;
    m->slots = calloc(m->cap, sizeof *m->slots);
    return m->slots ? BG_OK : BG_ENOMEM;
}

static size_t
dup_hash(uint64_t a, uint32_t b, size_t mask)
{
    uint64_t h = a * 0x9E3779B97F4A7C15ull ^ (uint64_t)b * 0xC2B2AE3D27D4EB4Full;
    h ^= h >> 31;
    return (size_t)h & mask;
}

static int
dup_grow(dup_map *m)
{
    size_t ncap = m->cap * 2;
    dup_slot *ns = calloc(ncap, sizeof *ns);
    if (ns == NULL)
        return BG_ENOMEM;
    for (size_t i = 0; i < m->cap; i++) {
        dup_slot *o = &m->slots[i];
        if (o->line == 0)
            continue;
        size_t j = dup_hash(o->a, o->b, ncap - 1);
        while (ns[j].line != 0)
            j = (j + 1) & (ncap - 1);
        ns[j] = *o;
    }
    free(m->slots);
    m->slots = ns;
    m->cap = ncap;
    return BG_OK;
}

/* Records code at line; returns BG_OK and *prev = 0 if new, else *prev = first line. */
static int
dup_check(dup_map *m, const char *code, uint64_t line, uint64_t *prev)
{
    uint64_t a = 0;
    uint32_t b = 0;
    for (int i = 0; i < 12; i++)
        a = a * 31 + (uint64_t)(m->value[(unsigned char)code[i]] - 1);
    for (int i = 12; i < 18; i++)
        b = b * 31 + (uint32_t)(m->value[(unsigned char)code[i]] - 1);
    if ((m->count + 1) * 10 > m->cap * 7 && dup_grow(m) != BG_OK)
        return BG_ENOMEM;
    size_t j = dup_hash(a, b, m->cap - 1);
    while (m->slots[j].line != 0) {
        if (m->slots[j].a == a && m->slots[j].b == b) {
            *prev = m->slots[j].line;
            return BG_OK;
        }
        j = (j + 1) & (m->cap - 1);
    }
    m->slots[j].a = a;
    m->slots[j].b = b;
    m->slots[j].line = line > UINT32_MAX ? UINT32_MAX : (uint32_t)line;
    m->count++;
    *prev = 0;
    return BG_OK;
}

/* ---- the import's state ---- */

enum {
    Q_FIND_DIGEST,
    Q_INS_IMPORT,
    Q_FIN_IMPORT,
    Q_INS_ENT,
    Q_GET_ENT,
    Q_UPD_ENT,
    Q_PUT_EVAL,
    Q_DEL_EVAL,
    Q_PUT_LIST,
    Q_DEL_LIST,
    Q_REVOKE,
    Q_COUNT
};

static const char *const sql_text[Q_COUNT] = {
    [Q_FIND_DIGEST] = "SELECT id FROM imports WHERE digest = ?1 ORDER BY id DESC LIMIT 1",
    [Q_INS_IMPORT] = "INSERT INTO imports(digest, file_name, started_at, finished_at, mode, "
                     "forced) VALUES (?1, ?2, ?3, ?3, ?4, ?5)",
    [Q_FIN_IMPORT] = "UPDATE imports SET finished_at = ?2, rows = ?3, inserted = ?4, "
                     "updated = ?5, unchanged = ?6, rejected = ?7, duplicates = ?8, "
                     "conflicts = ?9, normalised = ?10 WHERE id = ?1",
    [Q_INS_ENT] = "INSERT INTO enterprises(uscc, name, division, first_import, last_import) "
                  "VALUES (?1, ?2, ?3, ?4, ?4) ON CONFLICT(uscc) DO NOTHING",
    /* Q_GET_ENT is built by get_ent_sql: one join per list. */
    [Q_UPD_ENT] = "UPDATE enterprises SET name = ?2, last_import = ?3 WHERE uscc = ?1",
    [Q_PUT_EVAL] = "INSERT INTO evaluations(uscc, grade, scale, evaluated_at, valid_until, "
                   "source, serial) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT(uscc) DO "
                   "UPDATE SET grade = excluded.grade, scale = excluded.scale, "
                   "evaluated_at = excluded.evaluated_at, valid_until = excluded.valid_until, "
                   "source = excluded.source, serial = excluded.serial",
    [Q_DEL_EVAL] = "DELETE FROM evaluations WHERE uscc = ?1",
    [Q_PUT_LIST] = "INSERT INTO list_entries(list, uscc, reason, listed_at, expires_at, source) "
                   "VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(list, uscc) DO UPDATE SET "
                   "reason = excluded.reason, listed_at = excluded.listed_at, "
                   "expires_at = excluded.expires_at, source = excluded.source",
    [Q_DEL_LIST] = "DELETE FROM list_entries WHERE list = ?1 AND uscc = ?2",
    [Q_REVOKE] = "INSERT INTO revoked_serials(serial, import_id, revoked_at) VALUES (?1, ?2, ?3) "
                 "ON CONFLICT(serial) DO NOTHING",
};

/* Q_GET_ENT's columns: name, grade, evaluated_at, valid_until, 3 per list, serial. */
#define GET_ENT_SERIAL (4 + 3 * BG_LIST_COUNT)

/* Where each kind of column sits in the file (-1: absent). */
typedef struct columns {
    size_t n;
    int uscc, name, grade, evaluated_at, valid_until;
    int reason[BG_LIST_COUNT], listed_at[BG_LIST_COUNT], expires_at[BG_LIST_COUNT];
} columns;

/* A validated row; text points into the CSV reader's record buffer. */
typedef struct row {
    bg_uscc u;
    const char *name;
    size_t name_len;
    bool graded;
    const char *grade, *evaluated_at, *valid_until; /* dates are 10 bytes */
    size_t grade_len;
    int grade_index;         /* in the store's scale */
    int32_t valid_until_day; /* for the expiry warning */
    bool listed[BG_LIST_COUNT];
    const char *reason[BG_LIST_COUNT];
    size_t reason_len[BG_LIST_COUNT];
    const char *listed_at[BG_LIST_COUNT];
    const char *expires_at[BG_LIST_COUNT]; /* NULL if none */
} row;

typedef struct imp {
    bg_store *s;
    sqlite3 *db;
    const bg_import_opts *o;
    bg_import_result *res;
    const bg_scale *scale;
    columns col;
    sqlite3_stmt *q[Q_COUNT];
    dup_map dups;
    int64_t import_id;
    uint32_t evals_written; /* the ordinal part of the next evaluation serial */
    bool store_was_empty;   /* no enterprises when the transaction began */
    bool totals_taken;      /* res->totals filled inside the transaction */
    bool in_tx, committed;
    bool strict_aborted; /* rolled back for bad rows: the report is still put in place */
    int64_t old_cache;   /* the page cache before the import (0: unchanged) */
    int32_t today;
    /* Accepted rows per city of another division, for the "another city's file" warning. */
    struct {
        char city[7];
        uint64_t rows;
    } foreign[16];
    FILE *rep;            /* on a dup of rep_s.fd, so closing it leaves rep_s to commit */
    bg_file_stream rep_s; /* rep_s.fd < 0: none */
    char rep_final[4096];
    char first_bad[BG_ERR_MSG_MAX]; /* "line N: why" of the first bad row */
    crypto_hash_sha256_state reparse;
} imp;

static void
progress(imp *im, bg_import_phase phase, uint64_t rows)
{
    if (im->o->progress != NULL)
        im->o->progress(im->o->progress_ctx, phase, rows);
}

static int
db_fail(imp *im, bg_err *err, uint64_t line, const char *what)
{
    char m[256];
    bg_store_errmsg(im->db, m, sizeof m);
    if (line > 0)
        return bg_err_set(err, BG_EDB, "line %llu: store: %s: %s", (unsigned long long)line, what,
                          m);
    return bg_err_set(err, BG_EDB, "store: %s: %s", what, m);
}

/* Steps a statement expected to finish without rows, then resets it. */
static bool
step_done(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE;
}

static void
bind_text(sqlite3_stmt *st, int i, const char *p, size_t len)
{
    sqlite3_bind_text(st, i, p, (int)len, SQLITE_STATIC);
}

static bool
col_eq(sqlite3_stmt *st, int i, const char *p, size_t len)
{
    const unsigned char *v = sqlite3_column_text(st, i);
    return v != NULL && (size_t)sqlite3_column_bytes(st, i) == len && memcmp(v, p, len) == 0;
}

/* snprintf for messages: cutting a long message short is intended, not a bug. */
static void say(char *buf, size_t bufsz, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
say(char *buf, size_t bufsz, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, bufsz, fmt, ap);
    va_end(ap);
}

/* ---- the report ---- */

/*
 * Copies at most max bytes of s into out as printable text: valid UTF-8 stays,
 * control bytes and invalid bytes become \xNN, and a cut is marked with "...".
 */
static size_t
printable(const char *s, size_t len, char *out, size_t outsz, size_t max)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t o = 0, i = 0;
    if (max + 8 > outsz)
        max = outsz - 8;
    while (i < len) {
        size_t ok = bg_utf8_valid_prefix(p + i, len - i);
        if (ok > 0) {
            /* Take valid text up to the first control byte. */
            size_t k = 0;
            while (k < ok && p[i + k] >= 0x20 && p[i + k] != 0x7F)
                k++;
            if (k > 0) {
                if (o + k > max) {
                    /* Cut on a character boundary. */
                    size_t room = max - o;
                    while (room > 0 && (p[i + room] & 0xC0) == 0x80)
                        room--;
                    memcpy(out + o, p + i, room);
                    o += room;
                    memcpy(out + o, "...", 3);
                    o += 3;
                    break;
                }
                memcpy(out + o, p + i, k);
                o += k;
                i += k;
                continue;
            }
        }
        if (o + 4 > max) {
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        o += (size_t)snprintf(out + o, outsz - o, "\\x%02X", p[i]);
        i++;
    }
    out[o] = '\0';
    return o;
}

/* Writes one CSV field, quoted when it has to be (RFC 4180). */
static void
put_field(FILE *f, const char *s, size_t len)
{
    if (strcspn(s, ",\"\r\n") >= len && (len == 0 || (s[0] != ' ' && s[len - 1] != ' '))) {
        fwrite(s, 1, len, f);
        return;
    }
    fputc('"', f);
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '"')
            fputc('"', f);
        fputc(s[i], f);
    }
    fputc('"', f);
}

static const char *const status_names[] = {"rejected", "duplicate", "changed", "removed"};
enum { R_REJECTED, R_DUPLICATE, R_CHANGED, R_REMOVED };

static int report_create(imp *im, bg_err *err);

static int
report(imp *im, bg_err *err, uint64_t line, const char *uscc, size_t uscc_len, int status,
       const char *why)
{
    int rc = im->rep == NULL ? report_create(im, err) : BG_OK;
    if (rc != BG_OK)
        return rc;
    char u[REPORT_USCC_MAX * 4 + 16], w[BG_ERR_MSG_MAX * 4 + 16];
    size_t ul = printable(uscc, uscc_len, u, sizeof u, REPORT_USCC_MAX);
    size_t wl = printable(why, strlen(why), w, sizeof w, BG_ERR_MSG_MAX * 2);
    /* Line 0: an entry the file does not mention (a replace removed it). */
    if (line > 0)
        fprintf(im->rep, "%llu", (unsigned long long)line);
    fputc(',', im->rep);
    put_field(im->rep, u, ul);
    fprintf(im->rep, ",%s,", status_names[status]);
    put_field(im->rep, w, wl);
    fputc('\n', im->rep);
    im->res->reported++;
    if (ferror(im->rep))
        return bg_err_set(err, BG_EIO, "writing report %s: %s", im->rep_final, strerror(errno));
    return BG_OK;
}

/* Counts a bad row and reports it; keeps the first for strict mode's message. */
static int
reject(imp *im, bg_err *err, uint64_t line, const bg_csv_field *uscc, int status, const char *why)
{
    im->res->rejected++;
    if (status == R_DUPLICATE)
        im->res->duplicates++;
    if (im->first_bad[0] == '\0')
        say(im->first_bad, sizeof im->first_bad, "line %llu: %s", (unsigned long long)line, why);
    return report(im, err, line, uscc ? uscc->p : "", uscc ? uscc->len : 0, status, why);
}

/* "line 7: x" -> "x", "line 7, field 3: x" -> "field 3: x": the report has a line column. */
static const char *
strip_line(const char *msg)
{
    if (strncmp(msg, "line ", 5) != 0)
        return msg;
    const char *p = msg + 5;
    while (*p >= '0' && *p <= '9')
        p++;
    if ((p[0] == ':' || p[0] == ',') && p[1] == ' ')
        return p + 2;
    return msg;
}

/* ---- header ---- */

static bool
replacing(const imp *im, unsigned bit)
{
    return (im->o->replace & bit) != 0;
}

/* The columns that must be there and the groups that go together; a replaced list needs
 * its columns. */
static int
check_header(const imp *im, bg_err *err)
{
    const columns *c = &im->col;
    if (c->uscc < 0)
        return bg_err_set(err, BG_EINVAL, "header: required column 'uscc' is missing");
    if (c->name < 0)
        return bg_err_set(err, BG_EINVAL, "header: required column 'name' is missing");
    int ev = (c->grade >= 0) + (c->evaluated_at >= 0) + (c->valid_until >= 0);
    if (ev != 0 && ev != 3)
        return bg_err_set(err, BG_EINVAL,
                          "header: columns grade, evaluated_at and valid_until go together "
                          "('%s' is missing)",
                          c->grade < 0          ? "grade"
                          : c->evaluated_at < 0 ? "evaluated_at"
                                                : "valid_until");
    for (int l = 0; l < BG_LIST_COUNT; l++) {
        const char *ln = bg_list_names[l];
        if ((c->reason[l] >= 0) != (c->listed_at[l] >= 0))
            return bg_err_set(err, BG_EINVAL,
                              "header: columns %s:reason and %s:listed_at go together "
                              "('%s:%s' is missing)",
                              ln, ln, ln, c->reason[l] < 0 ? "reason" : "listed_at");
        if (c->expires_at[l] >= 0 && c->reason[l] < 0)
            return bg_err_set(err, BG_EINVAL,
                              "header: column %s:expires_at needs %s:reason and %s:listed_at", ln,
                              ln, ln);
        if (replacing(im, BG_IMPORT_REPLACE_LIST(l)) && c->reason[l] < 0)
            return bg_err_set(err, BG_EINVAL,
                              "replace %s: the file has no %s:reason and %s:listed_at columns, so "
                              "it cannot be that list's full state",
                              ln, ln, ln);
    }
    if (replacing(im, BG_IMPORT_REPLACE_GRADES) && c->grade < 0)
        return bg_err_set(err, BG_EINVAL,
                          "replace grades: the file has no grade, evaluated_at and valid_until "
                          "columns, so it cannot be the grades' full state");
    return BG_OK;
}

static int
parse_header(imp *im, const bg_csv_field *f, size_t n, bg_err *err)
{
    columns *c = &im->col;
    c->n = n;
    c->uscc = c->name = c->grade = c->evaluated_at = c->valid_until = -1;
    for (int l = 0; l < BG_LIST_COUNT; l++)
        c->reason[l] = c->listed_at[l] = c->expires_at[l] = -1;

    for (size_t i = 0; i < n; i++) {
        bg_column col;
        bg_err e;
        if (bg_column_parse(f[i].p, f[i].len, &col, &e) != BG_OK)
            return bg_err_set(err, BG_EINVAL, "header, column %zu: %s", i + 1, e.msg);
        int *slot = NULL;
        switch (col.kind) {
        case BG_COL_USCC:
            slot = &c->uscc;
            break;
        case BG_COL_NAME:
            slot = &c->name;
            break;
        case BG_COL_GRADE:
            slot = &c->grade;
            break;
        case BG_COL_EVALUATED_AT:
            slot = &c->evaluated_at;
            break;
        case BG_COL_VALID_UNTIL:
            slot = &c->valid_until;
            break;
        case BG_COL_LIST_REASON:
            slot = &c->reason[col.list];
            break;
        case BG_COL_LIST_LISTED_AT:
            slot = &c->listed_at[col.list];
            break;
        default:
            slot = &c->expires_at[col.list];
            break;
        }
        if (*slot >= 0)
            return bg_err_set(err, BG_EINVAL,
                              "header: column '%.*s' appears twice (columns %d "
                              "and %zu)",
                              (int)(f[i].len > 64 ? 64 : f[i].len), f[i].p, *slot + 1, i + 1);
        *slot = (int)i;
    }
    return check_header(im, err);
}

/* ---- one row ---- */

/* Index of the first control byte in s that allow does not let through, or len. */
static size_t
find_control(const char *s, size_t len, bool allow_breaks)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x20 || ch == 0x7F) {
            if (allow_breaks && (ch == '\n' || ch == '\r' || ch == '\t'))
                continue;
            return i;
        }
    }
    return len;
}

/* The name: not blank, bounded, no control characters. */
static void
validate_name(const bg_csv_field *nm, row *r, char *why, size_t whysz)
{
    size_t blank = 0;
    while (blank < nm->len && nm->p[blank] == ' ')
        blank++;
    if (nm->len == 0 || blank == nm->len) {
        say(why, whysz, "name: empty");
        return;
    }
    if (nm->len > BG_NAME_MAX) {
        say(why, whysz, "name: %zu bytes, longer than %d", nm->len, BG_NAME_MAX);
        return;
    }
    size_t cc = find_control(nm->p, nm->len, false);
    if (cc < nm->len) {
        say(why, whysz, "name: control character 0x%02X at byte %zu",
            (unsigned)(unsigned char)nm->p[cc], cc + 1);
        return;
    }
    r->name = nm->p;
    r->name_len = nm->len;
}

/* The evaluation: all three fields or none, a grade of the scale, dates in order. */
static void
validate_eval(imp *im, const bg_csv_field *f, row *r, char *why, size_t whysz)
{
    const columns *c = &im->col;
    r->graded = false;
    if (c->grade < 0)
        return;
    const bg_csv_field *g = &f[c->grade], *ea = &f[c->evaluated_at], *vu = &f[c->valid_until];
    int given = (g->len > 0) + (ea->len > 0) + (vu->len > 0);
    if (given != 0 && given != 3) {
        say(why, whysz, "evaluation: grade, evaluated_at and valid_until go together (%s empty)",
            g->len == 0    ? "grade"
            : ea->len == 0 ? "evaluated_at"
                           : "valid_until");
        return;
    }
    if (given == 0)
        return;
    int gi = bg_scale_index(im->scale, g->p, g->len);
    if (gi < 0) {
        char sc[BG_SCALE_MAX_GRADES * (BG_GRADE_MAX + 1) + 64];
        bg_scale_format(im->scale, sc, sizeof sc);
        char gp[64];
        printable(g->p, g->len, gp, sizeof gp, 32);
        say(why, whysz, "grade: '%s' is not in the store's scale %s", gp, sc);
        return;
    }
    int32_t d1, d2;
    bg_err e;
    if (bg_date_parse(ea->p, ea->len, &d1, &e) != BG_OK) {
        say(why, whysz, "evaluated_at: %s", e.msg);
        return;
    }
    if (bg_date_parse(vu->p, vu->len, &d2, &e) != BG_OK) {
        say(why, whysz, "valid_until: %s", e.msg);
        return;
    }
    if (d2 < d1) {
        say(why, whysz, "valid_until %.10s is before evaluated_at %.10s", vu->p, ea->p);
        return;
    }
    r->graded = true;
    r->grade = g->p;
    r->grade_len = g->len;
    r->grade_index = gi;
    r->evaluated_at = ea->p;
    r->valid_until = vu->p;
    r->valid_until_day = d2;
}

/* List l's fields: reason and listed_at or nothing; expires_at, if any, not before. */
static void
validate_list(imp *im, const bg_csv_field *f, row *r, int l, char *why, size_t whysz)
{
    const columns *c = &im->col;
    const char *ln = bg_list_names[l];
    r->listed[l] = false;
    r->expires_at[l] = NULL;
    if (c->reason[l] < 0)
        return;
    const bg_csv_field *rs = &f[c->reason[l]], *la = &f[c->listed_at[l]];
    const bg_csv_field *ex = c->expires_at[l] >= 0 ? &f[c->expires_at[l]] : NULL;
    size_t exlen = ex ? ex->len : 0;
    if (rs->len == 0 && la->len == 0) {
        if (exlen > 0)
            say(why, whysz, "%s: expires_at without reason and listed_at", ln);
        return;
    }
    if (rs->len == 0 || la->len == 0) {
        say(why, whysz, "%s: reason and listed_at go together (%s empty)", ln,
            rs->len == 0 ? "reason" : "listed_at");
        return;
    }
    if (rs->len > BG_REASON_MAX) {
        say(why, whysz, "%s:reason: %zu bytes, longer than %d", ln, rs->len, BG_REASON_MAX);
        return;
    }
    size_t cc = find_control(rs->p, rs->len, true);
    if (cc < rs->len) {
        say(why, whysz, "%s:reason: control character 0x%02X at byte %zu", ln,
            (unsigned)(unsigned char)rs->p[cc], cc + 1);
        return;
    }
    int32_t d1, d2;
    bg_err e;
    if (bg_date_parse(la->p, la->len, &d1, &e) != BG_OK) {
        say(why, whysz, "%s:listed_at: %s", ln, e.msg);
        return;
    }
    if (exlen > 0) {
        if (bg_date_parse(ex->p, ex->len, &d2, &e) != BG_OK) {
            say(why, whysz, "%s:expires_at: %s", ln, e.msg);
            return;
        }
        if (d2 < d1) {
            say(why, whysz, "%s: expires_at %.10s is before listed_at %.10s", ln, ex->p, la->p);
            return;
        }
        r->expires_at[l] = ex->p;
    }
    r->listed[l] = true;
    r->reason[l] = rs->p;
    r->reason_len[l] = rs->len;
    r->listed_at[l] = la->p;
}

/* Validates the fields after the USCC; "" in why if the row is good. */
static void
validate(imp *im, const bg_csv_field *f, row *r, char *why, size_t whysz)
{
    why[0] = '\0';
    validate_name(&f[im->col.name], r, why, whysz);
    if (why[0] == '\0')
        validate_eval(im, f, r, why, whysz);
    for (int l = 0; l < BG_LIST_COUNT && why[0] == '\0'; l++)
        validate_list(im, f, r, l, why, whysz);
}

/* Appends "; part" to a change description, bounded. */
static void describe(char *d, size_t dsz, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
describe(char *d, size_t dsz, const char *fmt, ...)
{
    size_t n = strlen(d);
    if (n + 3 >= dsz)
        return;
    if (n > 0) {
        memcpy(d + n, "; ", 3);
        n += 2;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d + n, dsz - n, fmt, ap);
    va_end(ap);
}

static int
put_eval(imp *im, bg_err *err, uint64_t line, const row *r)
{
    sqlite3_stmt *st = im->q[Q_PUT_EVAL];
    bind_text(st, 1, r->u.code, BG_USCC_LEN);
    bind_text(st, 2, r->grade, r->grade_len);
    sqlite3_bind_text(st, 3, im->scale->name, -1, SQLITE_STATIC);
    bind_text(st, 4, r->evaluated_at, 10);
    bind_text(st, 5, r->valid_until, 10);
    sqlite3_bind_int64(st, 6, im->import_id);
    /* (import << 32) | ordinal: see the v3 migration. 2^32 - 1 rows per import at most,
     * far above anything one file holds. */
    sqlite3_bind_int64(st, 7,
                       (sqlite3_int64)(((uint64_t)im->import_id << 32) | ++im->evals_written));
    return step_done(st) ? BG_OK : db_fail(im, err, line, "writing the evaluation");
}

static int
put_list(imp *im, bg_err *err, uint64_t line, const row *r, int l)
{
    sqlite3_stmt *st = im->q[Q_PUT_LIST];
    sqlite3_bind_text(st, 1, bg_list_names[l], -1, SQLITE_STATIC);
    bind_text(st, 2, r->u.code, BG_USCC_LEN);
    bind_text(st, 3, r->reason[l], r->reason_len[l]);
    bind_text(st, 4, r->listed_at[l], 10);
    if (r->expires_at[l] != NULL)
        bind_text(st, 5, r->expires_at[l], 10);
    else
        sqlite3_bind_null(st, 5);
    sqlite3_bind_int64(st, 6, im->import_id);
    return step_done(st) ? BG_OK : db_fail(im, err, line, "writing a list entry");
}

/* What a row for a known enterprise changes; filled from the stored row, then applied. */
enum { ACT_NONE, ACT_PUT, ACT_DEL };
typedef struct change {
    char d[BG_ERR_MSG_MAX]; /* "grade B -> C; serious-dishonesty added" */
    bool name;
    int eval, list[BG_LIST_COUNT]; /* ACT_* */
    int64_t old_serial;            /* the evaluation a change supersedes (0: none) */
} change;

/* The evaluation columns 1-3 of st against the row. An empty evaluation in the row says
 * nothing unless the grades are replaced. */
static void
compare_eval(imp *im, const row *r, sqlite3_stmt *st, change *ch)
{
    bg_import_delta *gd = &im->res->grades;
    bool had = sqlite3_column_type(st, 1) != SQLITE_NULL;
    const char *old = had ? (const char *)sqlite3_column_text(st, 1) : NULL;
    int oi = had ? bg_scale_index(im->scale, old, strlen(old)) : -1;
    if (r->graded && !had) {
        describe(ch->d, sizeof ch->d, "grade %.*s added", (int)r->grade_len, r->grade);
        ch->eval = ACT_PUT;
        gd->added++;
        im->res->grade_added[r->grade_index]++;
    } else if (r->graded && !col_eq(st, 1, r->grade, r->grade_len)) {
        describe(ch->d, sizeof ch->d, "grade %s -> %.*s", old, (int)r->grade_len, r->grade);
        ch->eval = ACT_PUT;
        gd->changed++;
        im->res->grade_added[r->grade_index]++;
        if (oi >= 0)
            im->res->grade_removed[oi]++;
    } else if (r->graded &&
               (!col_eq(st, 2, r->evaluated_at, 10) || !col_eq(st, 3, r->valid_until, 10))) {
        describe(ch->d, sizeof ch->d, "evaluation dates %s..%s -> %.10s..%.10s",
                 sqlite3_column_text(st, 2), sqlite3_column_text(st, 3), r->evaluated_at,
                 r->valid_until);
        ch->eval = ACT_PUT;
        gd->changed++;
    } else if (r->graded) {
        gd->unchanged++;
    } else if (had && replacing(im, BG_IMPORT_REPLACE_GRADES)) {
        describe(ch->d, sizeof ch->d, "grade %s removed", old);
        ch->eval = ACT_DEL;
        gd->removed++;
        if (oi >= 0)
            im->res->grade_removed[oi]++;
    }
    if (had && ch->eval != ACT_NONE)
        ch->old_serial = sqlite3_column_int64(st, GET_ENT_SERIAL);
}

/* List l's columns of st (reason, listed_at, expires_at at 4 + 3l) against the row. */
static void
compare_list(imp *im, const row *r, int l, sqlite3_stmt *st, change *ch)
{
    bg_import_delta *ld = &im->res->lists[l];
    int c = 4 + 3 * l; /* reason is NOT NULL in the schema, so NULL = not listed */
    bool stored = sqlite3_column_type(st, c) != SQLITE_NULL;
    const char *ln = bg_list_names[l];
    if (!r->listed[l]) {
        if (stored && replacing(im, BG_IMPORT_REPLACE_LIST(l))) {
            describe(ch->d, sizeof ch->d, "%s removed", ln);
            ch->list[l] = ACT_DEL;
            ld->removed++;
        }
        return;
    }
    if (!stored) {
        describe(ch->d, sizeof ch->d, "%s added", ln);
        ch->list[l] = ACT_PUT;
        ld->added++;
        return;
    }
    bool same_reason = col_eq(st, c, r->reason[l], r->reason_len[l]);
    bool same_listed = col_eq(st, c + 1, r->listed_at[l], 10);
    bool same_exp = r->expires_at[l] == NULL ? sqlite3_column_type(st, c + 2) == SQLITE_NULL
                                             : col_eq(st, c + 2, r->expires_at[l], 10);
    if (same_reason && same_listed && same_exp) {
        ld->unchanged++;
        return;
    }
    char what[48];
    snprintf(what, sizeof what, "%s%s%s", same_reason ? "" : ", reason",
             same_listed ? "" : ", listed_at", same_exp ? "" : ", expires_at");
    describe(ch->d, sizeof ch->d, "%s changed (%s)", ln, what + 2);
    ch->list[l] = ACT_PUT;
    ld->changed++;
}

static int
revoke_serial(imp *im, bg_err *err, uint64_t line, int64_t serial)
{
    sqlite3_stmt *st = im->q[Q_REVOKE];
    sqlite3_bind_int64(st, 1, serial);
    sqlite3_bind_int64(st, 2, im->import_id);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)time(NULL));
    return step_done(st) ? BG_OK : db_fail(im, err, line, "revoking the superseded evaluation");
}

static int
del_eval(imp *im, bg_err *err, uint64_t line, const char *uscc)
{
    sqlite3_stmt *st = im->q[Q_DEL_EVAL];
    bind_text(st, 1, uscc, BG_USCC_LEN);
    return step_done(st) ? BG_OK : db_fail(im, err, line, "removing the evaluation");
}

static int
del_list(imp *im, bg_err *err, uint64_t line, const char *uscc, int l)
{
    sqlite3_stmt *st = im->q[Q_DEL_LIST];
    sqlite3_bind_text(st, 1, bg_list_names[l], -1, SQLITE_STATIC);
    bind_text(st, 2, uscc, BG_USCC_LEN);
    return step_done(st) ? BG_OK : db_fail(im, err, line, "removing a list entry");
}

/* Makes the store say what ch says; the old serial is revoked in this same transaction. */
static int
apply_change(imp *im, bg_err *err, uint64_t line, const row *r, const change *ch)
{
    sqlite3_stmt *st = im->q[Q_UPD_ENT];
    bind_text(st, 1, r->u.code, BG_USCC_LEN);
    bind_text(st, 2, r->name, r->name_len);
    sqlite3_bind_int64(st, 3, im->import_id);
    if (!step_done(st))
        return db_fail(im, err, line, "updating the enterprise");
    int rc = BG_OK;
    if (ch->old_serial != 0)
        rc = revoke_serial(im, err, line, ch->old_serial);
    if (rc == BG_OK && ch->eval == ACT_PUT)
        rc = put_eval(im, err, line, r);
    else if (rc == BG_OK && ch->eval == ACT_DEL)
        rc = del_eval(im, err, line, r->u.code);
    for (int l = 0; l < BG_LIST_COUNT && rc == BG_OK; l++) {
        if (ch->list[l] == ACT_PUT)
            rc = put_list(im, err, line, r, l);
        else if (ch->list[l] == ACT_DEL)
            rc = del_list(im, err, line, r->u.code, l);
    }
    return rc;
}

/*
 * A row for an enterprise the store already holds; st (Q_GET_ENT) is on its row.
 * Compare, and where the file says something different make the store say it.
 */
static int
apply_known(imp *im, bg_err *err, uint64_t line, const row *r, const bg_csv_field *raw_uscc,
            sqlite3_stmt *st)
{
    change ch;
    memset(&ch, 0, sizeof ch);
    if (!col_eq(st, 0, r->name, r->name_len)) {
        char was[96], now[96];
        printable((const char *)sqlite3_column_text(st, 0), (size_t)sqlite3_column_bytes(st, 0),
                  was, sizeof was, 48);
        printable(r->name, r->name_len, now, sizeof now, 48);
        describe(ch.d, sizeof ch.d, "name '%s' -> '%s'", was, now);
        ch.name = true;
    }
    compare_eval(im, r, st, &ch);
    bool changed = ch.name || ch.eval != ACT_NONE;
    for (int l = 0; l < BG_LIST_COUNT; l++) {
        compare_list(im, r, l, st, &ch);
        changed = changed || ch.list[l] != ACT_NONE;
    }
    /* Done reading: release the statement before writing the same rows. */
    sqlite3_reset(st);
    if (!changed) {
        im->res->unchanged++;
        return BG_OK;
    }
    int rc = apply_change(im, err, line, r, &ch);
    if (rc != BG_OK)
        return rc;
    im->res->updated++;
    return report(im, err, line, raw_uscc->p, raw_uscc->len, R_CHANGED, ch.d);
}

/* A new enterprise: the row as it stands. */
static int
insert_new(imp *im, bg_err *err, uint64_t line, const row *r)
{
    sqlite3_stmt *st = im->q[Q_INS_ENT];
    bind_text(st, 1, r->u.code, BG_USCC_LEN);
    bind_text(st, 2, r->name, r->name_len);
    bind_text(st, 3, r->u.division, 6);
    sqlite3_bind_int64(st, 4, im->import_id);
    if (!step_done(st))
        return db_fail(im, err, line, "inserting the enterprise");
    if (sqlite3_changes(im->db) == 0)
        return db_fail(im, err, line, "the enterprise appeared in the store during the import");
    int rc;
    if (r->graded) {
        if ((rc = put_eval(im, err, line, r)) != BG_OK)
            return rc;
        im->res->grades.added++;
        im->res->grade_added[r->grade_index]++;
    }
    for (int l = 0; l < BG_LIST_COUNT; l++) {
        if (!r->listed[l])
            continue;
        if ((rc = put_list(im, err, line, r, l)) != BG_OK)
            return rc;
        im->res->lists[l].added++;
    }
    im->res->inserted++;
    return BG_OK;
}

/* The warnings' tallies for an accepted row: expired evaluation, another city's code. */
static void
tally(imp *im, const row *r)
{
    bg_import_result *res = im->res;
    if (r->graded && r->valid_until_day < im->today) {
        if (res->expired < BG_IMPORT_EXPIRED_SHOWN)
            memcpy(res->expired_uscc[res->expired], r->u.code, BG_USCC_LEN + 1);
        res->expired++;
    }
    if (strcmp(r->u.city, bg_store_city(im->s)) == 0)
        return;
    res->foreign++;
    size_t n = sizeof im->foreign / sizeof im->foreign[0];
    for (size_t i = 0; i < n; i++) {
        if (im->foreign[i].rows == 0)
            memcpy(im->foreign[i].city, r->u.city, 7);
        if (strcmp(im->foreign[i].city, r->u.city) == 0) {
            im->foreign[i].rows++;
            return;
        }
    }
}

/* Validates and applies one data record. Only store or report failures are returned. */
static int
process_row(imp *im, bg_err *err, const bg_csv_field *f, size_t nf, uint64_t line)
{
    const columns *c = &im->col;
    char why[BG_ERR_MSG_MAX];
    bg_err e;
    row r;

    if (nf != c->n) {
        say(why, sizeof why, "%zu field%s, expected %zu", nf, nf == 1 ? "" : "s", c->n);
        return reject(im, err, line, (size_t)c->uscc < nf ? &f[c->uscc] : NULL, R_REJECTED, why);
    }
    const bg_csv_field *fu = &f[c->uscc];
    if (fu->len == 0)
        return reject(im, err, line, fu, R_REJECTED, "uscc: empty");
    if (bg_uscc_parse(fu->p, fu->len, &r.u, &e) != BG_OK) {
        say(why, sizeof why, "uscc: %s", e.msg);
        return reject(im, err, line, fu, R_REJECTED, why);
    }
    uint64_t prev = 0;
    if (dup_check(&im->dups, r.u.code, line, &prev) != BG_OK)
        return bg_err_set(err, BG_ENOMEM, "line %llu: out of memory for the duplicate index",
                          (unsigned long long)line);
    if (prev != 0) {
        say(why, sizeof why, "duplicate of line %llu%s", (unsigned long long)prev,
            prev == UINT32_MAX ? " or later" : "");
        return reject(im, err, line, fu, R_DUPLICATE, why);
    }
    validate(im, f, &r, why, sizeof why);
    if (why[0] != '\0')
        return reject(im, err, line, fu, R_REJECTED, why);

    if (fu->len != BG_USCC_LEN || memcmp(fu->p, r.u.code, BG_USCC_LEN) != 0)
        im->res->normalised++;
    if (r.graded)
        im->res->grades.in_file++;
    for (int l = 0; l < BG_LIST_COUNT; l++)
        if (r.listed[l])
            im->res->lists[l].in_file++;
    tally(im, &r);

    /* A store that was empty when the import began can only know this enterprise from an
     * earlier row, and the duplicate check already turned those away: skip the lookup. */
    if (!im->store_was_empty) {
        sqlite3_stmt *st = im->q[Q_GET_ENT];
        bind_text(st, 1, r.u.code, BG_USCC_LEN);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
            return apply_known(im, err, line, &r, fu, st);
        sqlite3_reset(st);
        if (rc != SQLITE_DONE)
            return db_fail(im, err, line, "reading the enterprise");
    }
    return insert_new(im, err, line, &r);
}

/* ---- replace mode: entries the file does not mention ---- */

/* True if code was in the file (a row with that USCC, accepted or not). */
static bool
dup_seen(const dup_map *m, const char *code)
{
    uint64_t a = 0;
    uint32_t b = 0;
    for (int i = 0; i < 12; i++)
        a = a * 31 + (uint64_t)(m->value[(unsigned char)code[i]] - 1);
    for (int i = 12; i < 18; i++)
        b = b * 31 + (uint32_t)(m->value[(unsigned char)code[i]] - 1);
    for (size_t j = dup_hash(a, b, m->cap - 1); m->slots[j].line != 0; j = (j + 1) & (m->cap - 1))
        if (m->slots[j].a == a && m->slots[j].b == b)
            return true;
    return false;
}

/* A stored entry the file does not mention. */
typedef struct gone {
    char uscc[BG_USCC_LEN + 1];
    int64_t serial;
    int grade;
} gone;

/*
 * The stored entries of list l (or the evaluations, l = BG_LIST_COUNT) whose enterprise
 * the file does not mention, read in full before anything is deleted (a statement
 * should not walk a table it is deleting from).
 */
static int
collect_gone(imp *im, int l, gone **out, size_t *n, bg_err *err)
{
    const char *sql = l < BG_LIST_COUNT
                          ? "SELECT uscc, 0, NULL FROM list_entries WHERE list = ?1 ORDER BY uscc"
                          : "SELECT uscc, serial, grade FROM evaluations ORDER BY uscc";
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(im->db, sql, -1, &st, NULL) != SQLITE_OK)
        return db_fail(im, err, 0, "reading the entries to replace");
    if (l < BG_LIST_COUNT)
        sqlite3_bind_text(st, 1, bg_list_names[l], -1, SQLITE_STATIC);
    size_t cap = 0;
    int r, rc = BG_OK;
    *out = NULL;
    *n = 0;
    while ((r = sqlite3_step(st)) == SQLITE_ROW) {
        const char *u = (const char *)sqlite3_column_text(st, 0);
        if (u == NULL || strlen(u) != BG_USCC_LEN || dup_seen(&im->dups, u))
            continue;
        if (*n == cap) {
            size_t ncap = cap ? cap * 2 : 256;
            gone *g = realloc(*out, ncap * sizeof *g);
            if (g == NULL) {
                rc = bg_err_set(err, BG_ENOMEM, "out of memory");
                break;
            }
            *out = g;
            cap = ncap;
        }
        gone *g = &(*out)[(*n)++];
        memcpy(g->uscc, u, BG_USCC_LEN + 1);
        g->serial = sqlite3_column_int64(st, 1);
        const char *gr = (const char *)sqlite3_column_text(st, 2);
        g->grade = gr ? bg_scale_index(im->scale, gr, strlen(gr)) : -1;
    }
    if (rc == BG_OK && r != SQLITE_DONE)
        rc = db_fail(im, err, 0, "reading the entries to replace");
    sqlite3_finalize(st);
    return rc;
}

/* For a replaced list (or the grades): removes what the file does not mention. */
static int
sweep(imp *im, int l, bg_err *err)
{
    gone *g = NULL;
    size_t n = 0;
    int rc = collect_gone(im, l, &g, &n, err);
    bool grades = l == BG_LIST_COUNT;
    char why[96];
    say(why, sizeof why, "%s removed (not in the file)", grades ? "grade" : bg_list_names[l]);
    for (size_t i = 0; i < n && rc == BG_OK; i++) {
        if (grades) {
            rc = g[i].serial != 0 ? revoke_serial(im, err, 0, g[i].serial) : BG_OK;
            if (rc == BG_OK)
                rc = del_eval(im, err, 0, g[i].uscc);
            if (rc == BG_OK && g[i].grade >= 0)
                im->res->grade_removed[g[i].grade]++;
        } else {
            rc = del_list(im, err, 0, g[i].uscc, l);
        }
        if (rc == BG_OK)
            rc = report(im, err, 0, g[i].uscc, BG_USCC_LEN, R_REMOVED, why);
    }
    if (rc == BG_OK) {
        if (grades)
            im->res->grades.removed += n;
        else
            im->res->lists[l].removed += n;
    }
    free(g);
    return rc;
}

/* ---- the file ---- */

static void
hex(const unsigned char *d, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[d[i] >> 4];
        out[2 * i + 1] = digits[d[i] & 15];
    }
    out[2 * n] = '\0';
}

static int
digest_file(FILE *f, const char *path, char out[65], bg_err *err)
{
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    unsigned char *buf = malloc(1 << 20);
    if (buf == NULL)
        return bg_err_set(err, BG_ENOMEM, "out of memory");
    size_t n;
    while ((n = fread(buf, 1, 1 << 20, f)) > 0)
        crypto_hash_sha256_update(&st, buf, n);
    int bad = ferror(f);
    free(buf);
    if (bad)
        return bg_err_set(err, BG_EIO, "reading %s: %s", path, strerror(errno));
    unsigned char d[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_final(&st, d);
    hex(d, sizeof d, out);
    return BG_OK;
}

static void
tap_hash(void *ctx, const unsigned char *p, size_t n)
{
    crypto_hash_sha256_update(ctx, p, n);
}

static void
now_iso(char out[32])
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* The latest import with this digest, 0 if none. */
static int
find_digest(imp *im, const char *digest, int64_t *id, bg_err *err)
{
    sqlite3_stmt *st = im->q[Q_FIND_DIGEST];
    sqlite3_bind_text(st, 1, digest, 64, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    *id = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return db_fail(im, err, 0, "looking up the digest");
    return BG_OK;
}

/* The report's unnamed file, with its header (at the first row to report): a kill
 * before it is complete leaves nothing behind (bg_file_stream). */
static int
report_create(imp *im, bg_err *err)
{
    bg_err fe;
    if (bg_file_stream_open(&im->rep_s, im->rep_final, 0600, &fe) != BG_OK)
        return bg_err_set(err, BG_EIO, "cannot create report: %s", fe.msg);
    int fd = dup(im->rep_s.fd);
    im->rep = fd < 0 ? NULL : fdopen(fd, "w");
    if (im->rep == NULL) {
        if (fd >= 0)
            close(fd);
        bg_file_stream_abort(&im->rep_s);
        return bg_err_set(err, BG_ENOMEM, "out of memory");
    }
    fputs("line,uscc,status,reason\n", im->rep);
    return BG_OK;
}

/* The report's FILE and file given up, nothing named. */
static void
report_drop(imp *im)
{
    if (im->rep != NULL)
        fclose(im->rep);
    im->rep = NULL;
    bg_file_stream_abort(&im->rep_s);
}

/* Where the report will go, checked; the file itself is made at its first row
 * (report_create; a probe now). */
static int
open_report(imp *im, const char *path, const struct stat *input, bg_err *err)
{
    const char *rp = im->o->report_path;
    int n = rp ? snprintf(im->rep_final, sizeof im->rep_final, "%s", rp)
               : snprintf(im->rep_final, sizeof im->rep_final, "%s.rejects.csv", path);
    if (n < 0 || (size_t)n >= sizeof im->rep_final)
        return bg_err_set(err, BG_EINVAL, "report path is too long");
    /* The report is renamed into place: never over the data file itself. */
    struct stat rs;
    if (strcmp(im->rep_final, path) == 0 ||
        (stat(im->rep_final, &rs) == 0 && rs.st_dev == input->st_dev && rs.st_ino == input->st_ino))
        return bg_err_set(err, BG_EINVAL, "report %s is the input file", im->rep_final);
    /* Can it be made there? Found out before the store is touched: made, dropped at once. */
    int rc = report_create(im, err);
    if (rc == BG_OK)
        report_drop(im);
    return rc;
}

/* Puts the report in place (or drops it if it has no rows). Call after COMMIT/ROLLBACK. */
static int
finish_report(imp *im, bg_err *err)
{
    FILE *f = im->rep;
    im->rep = NULL;
    if (f == NULL)
        return BG_OK; /* nothing reported: no file was made */
    bool ok = fflush(f) == 0;
    int e = errno;
    ok = fclose(f) == 0 && ok;
    if (im->res->reported == 0) {
        bg_file_stream_abort(&im->rep_s);
        return BG_OK;
    }
    if (!ok) {
        bg_file_stream_abort(&im->rep_s);
        return bg_err_set(err, BG_EIO, "writing report %s: %s", im->rep_final, strerror(e));
    }
    bg_err fe;
    if (bg_file_stream_commit(&im->rep_s, &fe) != BG_OK)
        return bg_err_set(err, BG_EIO, "writing report: %s", fe.msg);
    snprintf(im->res->report_path, sizeof im->res->report_path, "%s", im->rep_final);
    return BG_OK;
}

/*
 * Everything the store holds about one enterprise in one lookup: name, evaluation
 * (columns 1-3) and, for list l, reason, listed_at, expires_at at 4 + 3l. A list
 * this baygate does not know is not fetched, so never judged or removed.
 */
static void
get_ent_sql(char *buf, size_t bufsz)
{
    size_t n =
        (size_t)snprintf(buf, bufsz, "SELECT e.name, v.grade, v.evaluated_at, v.valid_until");
    for (int l = 0; l < BG_LIST_COUNT; l++)
        n += (size_t)snprintf(buf + n, bufsz - n, ", l%d.reason, l%d.listed_at, l%d.expires_at", l,
                              l, l);
    n += (size_t)snprintf(buf + n, bufsz - n, ", v.serial"); /* GET_ENT_SERIAL */
    n += (size_t)snprintf(buf + n, bufsz - n,
                          " FROM enterprises e LEFT JOIN evaluations v ON v.uscc = e.uscc");
    for (int l = 0; l < BG_LIST_COUNT; l++)
        n +=
            (size_t)snprintf(buf + n, bufsz - n,
                             " LEFT JOIN list_entries l%d ON l%d.list = '%s' AND l%d.uscc = e.uscc",
                             l, l, bg_list_names[l], l);
    snprintf(buf + n, bufsz - n, " WHERE e.uscc = ?1");
}

static int
prepare_all(imp *im, bg_err *err)
{
    char get_ent[1024 + 160 * BG_LIST_COUNT];
    get_ent_sql(get_ent, sizeof get_ent);
    for (int i = 0; i < Q_COUNT; i++)
        if (sqlite3_prepare_v3(im->db, i == Q_GET_ENT ? get_ent : sql_text[i], -1,
                               SQLITE_PREPARE_PERSISTENT, &im->q[i], NULL) != SQLITE_OK)
            return db_fail(im, err, 0, "preparing statements");
    return BG_OK;
}

/* Reads the header and every row, inside the open transaction. */
static int
import_rows(imp *im, FILE *f, bg_err *err)
{
    bg_csv *csv = NULL;
    int rc = bg_csv_open(&csv, f, BG_IMPORT_MAX_RECORD, err);
    if (rc != BG_OK)
        return rc;
    bg_csv_on_read(csv, tap_hash, &im->reparse);

    bg_csv_field *fields;
    size_t nf;
    bg_err e;
    rc = bg_csv_next(csv, &fields, &nf, &e);
    if (rc == BG_ENOTFOUND)
        rc = bg_err_set(err, BG_EINVAL, "empty file: no header");
    else if (rc == BG_EIO)
        rc = bg_err_set(err, BG_EIO, "%s", e.msg);
    else if (rc != BG_OK)
        rc = bg_err_set(err, BG_EINVAL, "header: %s", e.msg);
    else
        rc = parse_header(im, fields, nf, err);

    while (rc == BG_OK) {
        int r = bg_csv_next(csv, &fields, &nf, &e);
        if (r == BG_ENOTFOUND)
            break;
        uint64_t line = bg_csv_line(csv);
        if (r == BG_EIO) {
            rc = bg_err_set(err, BG_EIO, "%s", e.msg);
            break;
        }
        im->res->rows++;
        if (r != BG_OK) {
            /* Malformed CSV: a rejected row like any other. */
            const bg_csv_field *u = (size_t)im->col.uscc < nf ? &fields[im->col.uscc] : NULL;
            rc = reject(im, err, line, u, R_REJECTED, strip_line(e.msg));
        } else {
            rc = process_row(im, err, fields, nf, line);
        }
        if (im->res->rows % PROGRESS_EVERY == 0)
            progress(im, BG_IMPORT_PHASE_ROWS, im->res->rows);
    }
    bg_csv_close(csv);
    return rc;
}

static int
finish_import_row(imp *im, bg_err *err)
{
    const bg_import_result *r = im->res;
    char now[32];
    now_iso(now);
    sqlite3_stmt *st = im->q[Q_FIN_IMPORT];
    sqlite3_bind_int64(st, 1, im->import_id);
    sqlite3_bind_text(st, 2, now, -1, SQLITE_TRANSIENT);
    /* The imports table's "conflicts" column (schema v1) holds the changed rows too. */
    const uint64_t v[] = {r->rows,     r->inserted,   r->updated, r->unchanged,
                          r->rejected, r->duplicates, r->updated, r->normalised};
    for (int i = 0; i < 8; i++)
        sqlite3_bind_int64(st, 3 + i, (int64_t)v[i]);
    return step_done(st) ? BG_OK : db_fail(im, err, 0, "recording the import");
}

/* The page cache for the import (restored by cache_restore). */
static void
cache_grow(imp *im)
{
    sqlite3_stmt *cs = NULL;
    if (sqlite3_prepare_v2(im->db, "PRAGMA cache_size", -1, &cs, NULL) == SQLITE_OK &&
        sqlite3_step(cs) == SQLITE_ROW)
        im->old_cache = sqlite3_column_int64(cs, 0);
    sqlite3_finalize(cs);
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA cache_size = -%lu",
             (unsigned long)(im->o->cache_kib ? im->o->cache_kib : IMPORT_CACHE_KIB));
    sqlite3_exec(im->db, sql, NULL, NULL, NULL);
}

static void
cache_restore(imp *im)
{
    if (im->old_cache == 0)
        return;
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA cache_size = %lld", (long long)im->old_cache);
    sqlite3_exec(im->db, sql, NULL, NULL, NULL);
}

/* Before the transaction: statements, the digest (and whether it is known), the
 * duplicate index, the report's temporary file. */
static int
prepare_import(imp *im, FILE *f, const char *path, const struct stat *sb, bg_err *err)
{
    bg_import_result *res = im->res;
    int rc = prepare_all(im, err);
    if (rc != BG_OK)
        return rc;
    progress(im, BG_IMPORT_PHASE_DIGEST, 0);
    if ((rc = digest_file(f, path, res->digest_hex, err)) != BG_OK)
        return rc;
    if ((rc = find_digest(im, res->digest_hex, &res->previous_import, err)) != BG_OK)
        return rc;
    if (res->previous_import != 0 && !im->o->force) {
        res->already_imported = true;
        return BG_OK;
    }
    if (fseek(f, 0, SEEK_SET) != 0)
        return bg_err_set(err, BG_EIO, "cannot rewind %s: %s", path, strerror(errno));
    crypto_hash_sha256_init(&im->reparse);
    if (dup_init(&im->dups) != BG_OK)
        return bg_err_set(err, BG_ENOMEM, "out of memory");
    return open_report(im, path, sb, err);
}

/* BEGIN IMMEDIATE, the digest again under the write lock, the imports row, the counts
 * the import starts from. */
static int
begin_import(imp *im, const char *path, bg_err *err)
{
    bg_import_result *res = im->res;
    char started[32];
    now_iso(started);
    if (sqlite3_exec(im->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return db_fail(im, err, 0, "starting the import transaction");
    im->in_tx = true;
    /* A concurrent import of the same file may have won. */
    int rc = find_digest(im, res->digest_hex, &res->previous_import, err);
    if (rc != BG_OK)
        return rc;
    if (res->previous_import != 0 && !im->o->force) {
        res->already_imported = true;
        return BG_OK;
    }
    sqlite3_stmt *st = im->q[Q_INS_IMPORT];
    sqlite3_bind_text(st, 1, res->digest_hex, 64, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, path, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, started, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, im->o->mode == BG_IMPORT_STRICT ? "strict" : "quarantine", -1,
                      SQLITE_STATIC);
    sqlite3_bind_int(st, 5, im->o->force ? 1 : 0);
    if (!step_done(st))
        return db_fail(im, err, 0, "recording the import");
    im->import_id = sqlite3_last_insert_rowid(im->db);
    bg_store_counts before;
    if ((rc = bg_store_counts_get(im->s, &before, err)) != BG_OK)
        return rc;
    im->store_was_empty = before.enterprises == 0;
    for (int l = 0; l < BG_LIST_COUNT; l++)
        res->lists[l].before = before.listed[l];
    res->grades.before = before.evaluations;
    return BG_OK;
}

/* The bytes the rows came from must be the bytes that were hashed. */
static int
check_reparse(imp *im, const char *path, bg_err *err)
{
    unsigned char d[crypto_hash_sha256_BYTES];
    char again[65];
    crypto_hash_sha256_final(&im->reparse, d);
    hex(d, sizeof d, again);
    if (strcmp(again, im->res->digest_hex) == 0)
        return BG_OK;
    return bg_err_set(err, BG_EIO,
                      "%s changed while it was being imported (digest %.16s... then %.16s...): "
                      "nothing imported",
                      path, im->res->digest_hex, again);
}

/* A replace that removes more than the allowed share of a list is refused unless
 * confirmed: a truncated or wrong file must not empty a list by accident. */
static int
check_removals(imp *im, bg_err *err)
{
    double pct = im->o->max_remove_pct == 0 ? BG_IMPORT_MAX_REMOVE_PCT : im->o->max_remove_pct;
    if (pct < 0)
        return BG_OK;
    for (int l = 0; l <= BG_LIST_COUNT; l++) {
        const bg_import_delta *d = l < BG_LIST_COUNT ? &im->res->lists[l] : &im->res->grades;
        if (d->removed == 0 || (double)d->removed * 100.0 <= pct * (double)d->before)
            continue;
        im->res->removal_over_limit = true;
        if (im->o->confirm_removal || im->o->dry_run)
            continue;
        return bg_err_set(err, BG_EABORTED,
                          "would remove %llu of %llu %s%s (%.1f %%, more than the %.1f %% "
                          "allowed): nothing imported",
                          (unsigned long long)d->removed, (unsigned long long)d->before,
                          l < BG_LIST_COUNT ? bg_list_names[l] : "evaluations",
                          l < BG_LIST_COUNT ? " entries" : "",
                          (double)d->removed * 100.0 / (double)d->before, pct);
    }
    return BG_OK;
}

/* After the rows: replace sweeps, the removal guard, the counts, the totals. */
static int
finish_rows(imp *im, const char *path, bg_err *err)
{
    bg_import_result *res = im->res;
    int rc = check_reparse(im, path, err);
    for (int l = 0; l <= BG_LIST_COUNT && rc == BG_OK; l++) {
        unsigned bit = l < BG_LIST_COUNT ? BG_IMPORT_REPLACE_LIST(l) : BG_IMPORT_REPLACE_GRADES;
        if (replacing(im, bit))
            rc = sweep(im, l, err);
    }
    if (rc == BG_OK)
        rc = check_removals(im, err);
    if (rc != BG_OK)
        return rc;
    for (int l = 0; l < BG_LIST_COUNT; l++)
        res->listed[l] = res->lists[l].in_file;
    res->graded = res->grades.in_file;
    for (size_t i = 0; i < sizeof im->foreign / sizeof im->foreign[0]; i++) {
        if (im->foreign[i].rows > res->foreign_city_rows) {
            res->foreign_city_rows = im->foreign[i].rows;
            memcpy(res->foreign_city, im->foreign[i].city, 7);
        }
    }
    if (res->rows > 0)
        res->error_rate = (double)res->rejected / (double)res->rows;
    if ((rc = finish_import_row(im, err)) != BG_OK)
        return rc;
    if ((rc = bg_store_counts_get(im->s, &res->totals, err)) != BG_OK)
        return rc;
    im->totals_taken = true;
    return BG_OK;
}

/* Ends the transaction: ROLLBACK for a strict abort or a dry run, else COMMIT; then the
 * report is put in place (never for a dry run, which writes nothing). */
static int
end_import(imp *im, bg_err *err)
{
    bg_import_result *res = im->res;
    im->strict_aborted = im->o->mode == BG_IMPORT_STRICT && res->rejected > 0 && !im->o->dry_run;
    if (im->strict_aborted || im->o->dry_run) {
        sqlite3_exec(im->db, "ROLLBACK", NULL, NULL, NULL);
        im->in_tx = false;
        im->totals_taken = im->o->dry_run;
        if (im->o->dry_run) {
            res->dry_run = true;
            return BG_OK; /* the temporary report is removed on the way out */
        }
        int rc = finish_report(im, err);
        if (rc == BG_OK)
            rc =
                bg_err_set(err, BG_EABORTED, "%s (%llu bad row%s; nothing imported)", im->first_bad,
                           (unsigned long long)res->rejected, res->rejected == 1 ? "" : "s");
        return rc;
    }
    progress(im, BG_IMPORT_PHASE_COMMIT, res->rows);
    if (sqlite3_exec(im->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        return db_fail(im, err, 0, "committing the import");
    im->in_tx = false;
    im->committed = true;
    res->import_id = im->import_id;
    bg_err re;
    int rc = finish_report(im, &re);
    if (rc != BG_OK)
        bg_err_set(err, rc, "import #%lld committed, but %s", (long long)im->import_id, re.msg);
    progress(im, BG_IMPORT_PHASE_DONE, res->rows);
    return rc;
}

int
bg_import_file(bg_store *s, const char *path, const bg_import_opts *opts, bg_import_result *result,
               bg_err *err)
{
    static const bg_import_opts defaults = {.mode = BG_IMPORT_QUARANTINE};
    imp im;
    memset(&im, 0, sizeof im);
    im.rep_s.fd = -1;
    memset(result, 0, sizeof *result);
    bg_err_clear(err);
    im.s = s;
    im.db = bg_store_db(s);
    im.o = opts ? opts : &defaults;
    im.res = result;
    im.scale = bg_store_scale(s);
    im.today = im.o->today != 0 ? im.o->today : bg_date_today();
    if (sodium_init() < 0)
        return bg_err_set(err, BG_ECRYPTO, "libsodium failed to initialise");

    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return bg_err_set(err, BG_EIO, "cannot open %s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(f);
        return bg_err_set(err, BG_EINVAL, "%s is not a regular file", path);
    }
    int rc = prepare_import(&im, f, path, &sb, err);
    if (rc == BG_OK && !result->already_imported) {
        cache_grow(&im);
        rc = begin_import(&im, path, err);
    }
    if (rc == BG_OK && !result->already_imported) {
        progress(&im, BG_IMPORT_PHASE_ROWS, 0);
        rc = import_rows(&im, f, err);
        if (rc == BG_OK)
            rc = finish_rows(&im, path, err);
        if (rc == BG_OK)
            rc = end_import(&im, err);
    }

    if (im.in_tx)
        sqlite3_exec(im.db, "ROLLBACK", NULL, NULL, NULL);
    cache_restore(&im);
    report_drop(&im);
    if (!im.committed && !im.strict_aborted)
        result->report_path[0] = '\0';
    /* The totals describe the store as this call leaves it (a dry run: as it would be). */
    if (!im.totals_taken)
        bg_store_counts_get(s, &result->totals, NULL);
    for (int i = 0; i < Q_COUNT; i++)
        sqlite3_finalize(im.q[i]);
    free(im.dups.slots);
    fclose(f);
    return rc;
}
