/*
 * import.c - validated, atomic import of a city data file.
 *
 * Shape of an import:
 *   1. hash the file (SHA-256); a digest already in imports is a no-op unless
 *      forced;
 *   2. BEGIN IMMEDIATE, insert the imports row (the rows written below refer
 *      to it), then stream the CSV: validate each row, look it up in the store,
 *      insert, update or leave it; bad rows, duplicates and conflicts go to a
 *      temporary report file;
 *   3. record the counts, COMMIT (or ROLLBACK in strict mode with bad rows),
 *      and only then rename the report into place.
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

#include "common/json.h"
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
    FILE *rep;
    char rep_tmp[4096 + 16];
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
    if (line > 0)
        return bg_err_set(err, BG_EDB, "line %llu: store: %s: %s", (unsigned long long)line, what,
                          sqlite3_errmsg(im->db));
    return bg_err_set(err, BG_EDB, "store: %s: %s", what, sqlite3_errmsg(im->db));
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

static const char *const status_names[] = {"rejected", "duplicate", "conflict"};
enum { R_REJECTED, R_DUPLICATE, R_CONFLICT };

static int
report(imp *im, bg_err *err, uint64_t line, const char *uscc, size_t uscc_len, int status,
       const char *why)
{
    char u[REPORT_USCC_MAX * 4 + 16], w[BG_ERR_MSG_MAX * 4 + 16];
    size_t ul = printable(uscc, uscc_len, u, sizeof u, REPORT_USCC_MAX);
    size_t wl = printable(why, strlen(why), w, sizeof w, BG_ERR_MSG_MAX * 2);
    fprintf(im->rep, "%llu,", (unsigned long long)line);
    put_field(im->rep, u, ul);
    fprintf(im->rep, ",%s,", status_names[status]);
    put_field(im->rep, w, wl);
    fputc('\n', im->rep);
    im->res->reported++;
    if (ferror(im->rep))
        return bg_err_set(err, BG_EIO, "writing report %s: %s", im->rep_tmp, strerror(errno));
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
    }
    return BG_OK;
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

/* Validates the fields after the USCC; "" in why if the row is good. */
static void
validate(imp *im, const bg_csv_field *f, row *r, char *why, size_t whysz)
{
    const columns *c = &im->col;
    bg_err e;
    why[0] = '\0';

    const bg_csv_field *nm = &f[c->name];
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

    r->graded = false;
    if (c->grade >= 0) {
        const bg_csv_field *g = &f[c->grade], *ea = &f[c->evaluated_at], *vu = &f[c->valid_until];
        int given = (g->len > 0) + (ea->len > 0) + (vu->len > 0);
        if (given != 0 && given != 3) {
            say(why, whysz,
                "evaluation: grade, evaluated_at and valid_until go together (%s empty)",
                g->len == 0    ? "grade"
                : ea->len == 0 ? "evaluated_at"
                               : "valid_until");
            return;
        }
        if (given == 3) {
            if (bg_scale_index(im->scale, g->p, g->len) < 0) {
                char sc[BG_SCALE_MAX_GRADES * (BG_GRADE_MAX + 1) + 64];
                bg_scale_format(im->scale, sc, sizeof sc);
                char gp[64];
                printable(g->p, g->len, gp, sizeof gp, 32);
                say(why, whysz, "grade: '%s' is not in the store's scale %s", gp, sc);
                return;
            }
            int32_t d1, d2;
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
            r->evaluated_at = ea->p;
            r->valid_until = vu->p;
        }
    }

    for (int l = 0; l < BG_LIST_COUNT; l++) {
        const char *ln = bg_list_names[l];
        r->listed[l] = false;
        r->expires_at[l] = NULL;
        if (c->reason[l] < 0)
            continue;
        const bg_csv_field *rs = &f[c->reason[l]], *la = &f[c->listed_at[l]];
        const bg_csv_field *ex = c->expires_at[l] >= 0 ? &f[c->expires_at[l]] : NULL;
        size_t exlen = ex ? ex->len : 0;
        if (rs->len == 0 && la->len == 0) {
            if (exlen > 0) {
                say(why, whysz, "%s: expires_at without reason and listed_at", ln);
                return;
            }
            continue;
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
        cc = find_control(rs->p, rs->len, true);
        if (cc < rs->len) {
            say(why, whysz, "%s:reason: control character 0x%02X at byte %zu", ln,
                (unsigned)(unsigned char)rs->p[cc], cc + 1);
            return;
        }
        int32_t d1, d2;
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

/*
 * A row for an enterprise the store already holds; st (Q_GET_ENT) is on its row.
 * Compare, and where the file differs make the store say what the file says.
 */
static int
apply_known(imp *im, bg_err *err, uint64_t line, const row *r, const bg_csv_field *raw_uscc,
            sqlite3_stmt *st)
{
    char d[BG_ERR_MSG_MAX];
    d[0] = '\0';
    bool name_changed = false, eval_changed = false;
    bool list_changed[BG_LIST_COUNT] = {false};
    int rc;

    if (!col_eq(st, 0, r->name, r->name_len)) {
        char was[96], now[96];
        printable((const char *)sqlite3_column_text(st, 0), (size_t)sqlite3_column_bytes(st, 0),
                  was, sizeof was, 48);
        printable(r->name, r->name_len, now, sizeof now, 48);
        describe(d, sizeof d, "name '%s' -> '%s'", was, now);
        name_changed = true;
    }
    bool had = sqlite3_column_type(st, 1) != SQLITE_NULL;
    if (had && !r->graded) {
        describe(d, sizeof d, "grade %s removed", sqlite3_column_text(st, 1));
        eval_changed = true;
    } else if (!had && r->graded) {
        describe(d, sizeof d, "grade %.*s added", (int)r->grade_len, r->grade);
        eval_changed = true;
    } else if (had) {
        if (!col_eq(st, 1, r->grade, r->grade_len)) {
            describe(d, sizeof d, "grade %s -> %.*s", sqlite3_column_text(st, 1), (int)r->grade_len,
                     r->grade);
            eval_changed = true;
        } else if (!col_eq(st, 2, r->evaluated_at, 10) || !col_eq(st, 3, r->valid_until, 10)) {
            describe(d, sizeof d, "evaluation dates %s..%s -> %.10s..%.10s",
                     sqlite3_column_text(st, 2), sqlite3_column_text(st, 3), r->evaluated_at,
                     r->valid_until);
            eval_changed = true;
        }
    }
    for (int l = 0; l < BG_LIST_COUNT; l++) {
        int c = 4 + 3 * l; /* reason (NOT NULL in the schema, so NULL = not listed) */
        bool stored = sqlite3_column_type(st, c) != SQLITE_NULL;
        if (stored && !r->listed[l]) {
            describe(d, sizeof d, "%s removed", bg_list_names[l]);
            list_changed[l] = true;
        } else if (!stored && r->listed[l]) {
            describe(d, sizeof d, "%s added", bg_list_names[l]);
            list_changed[l] = true;
        } else if (stored) {
            bool same_reason = col_eq(st, c, r->reason[l], r->reason_len[l]);
            bool same_listed = col_eq(st, c + 1, r->listed_at[l], 10);
            bool same_exp = r->expires_at[l] == NULL ? sqlite3_column_type(st, c + 2) == SQLITE_NULL
                                                     : col_eq(st, c + 2, r->expires_at[l], 10);
            if (!same_reason || !same_listed || !same_exp) {
                char what[48];
                snprintf(what, sizeof what, "%s%s%s", same_reason ? "" : ", reason",
                         same_listed ? "" : ", listed_at", same_exp ? "" : ", expires_at");
                describe(d, sizeof d, "%s changed (%s)", bg_list_names[l], what + 2);
                list_changed[l] = true;
            }
        }
    }
    /* The serial an evaluation change supersedes: revoked in this same transaction. */
    int64_t old_serial = had && eval_changed ? sqlite3_column_int64(st, GET_ENT_SERIAL) : 0;
    /* Done reading: release the statement before writing the same rows. */
    sqlite3_reset(st);

    bool changed = name_changed || eval_changed;
    for (int l = 0; l < BG_LIST_COUNT; l++)
        changed = changed || list_changed[l];
    if (!changed) {
        im->res->unchanged++;
        return BG_OK;
    }

    st = im->q[Q_UPD_ENT];
    bind_text(st, 1, r->u.code, BG_USCC_LEN);
    bind_text(st, 2, r->name, r->name_len);
    sqlite3_bind_int64(st, 3, im->import_id);
    if (!step_done(st))
        return db_fail(im, err, line, "updating the enterprise");
    if (old_serial != 0) {
        st = im->q[Q_REVOKE];
        sqlite3_bind_int64(st, 1, old_serial);
        sqlite3_bind_int64(st, 2, im->import_id);
        sqlite3_bind_int64(st, 3, (sqlite3_int64)time(NULL));
        if (!step_done(st))
            return db_fail(im, err, line, "revoking the superseded evaluation");
    }
    if (eval_changed) {
        if (r->graded) {
            if ((rc = put_eval(im, err, line, r)) != BG_OK)
                return rc;
        } else {
            st = im->q[Q_DEL_EVAL];
            bind_text(st, 1, r->u.code, BG_USCC_LEN);
            if (!step_done(st))
                return db_fail(im, err, line, "removing the evaluation");
        }
    }
    for (int l = 0; l < BG_LIST_COUNT; l++) {
        if (!list_changed[l])
            continue;
        if (r->listed[l]) {
            if ((rc = put_list(im, err, line, r, l)) != BG_OK)
                return rc;
        } else {
            st = im->q[Q_DEL_LIST];
            sqlite3_bind_text(st, 1, bg_list_names[l], -1, SQLITE_STATIC);
            bind_text(st, 2, r->u.code, BG_USCC_LEN);
            if (!step_done(st))
                return db_fail(im, err, line, "removing a list entry");
        }
    }
    im->res->updated++;
    im->res->conflicts++;
    return report(im, err, line, raw_uscc->p, raw_uscc->len, R_CONFLICT, d);
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
        im->res->graded++;
    for (int l = 0; l < BG_LIST_COUNT; l++)
        if (r.listed[l])
            im->res->listed[l]++;

    /* A store that was empty when the import began can only know this enterprise from an
     * earlier row, and the duplicate check already turned those away: skip the lookup. */
    int rc;
    sqlite3_stmt *st;
    if (!im->store_was_empty) {
        st = im->q[Q_GET_ENT];
        bind_text(st, 1, r.u.code, BG_USCC_LEN);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
            return apply_known(im, err, line, &r, fu, st);
        sqlite3_reset(st);
        if (rc != SQLITE_DONE)
            return db_fail(im, err, line, "reading the enterprise");
    }
    st = im->q[Q_INS_ENT];
    bind_text(st, 1, r.u.code, BG_USCC_LEN);
    bind_text(st, 2, r.name, r.name_len);
    bind_text(st, 3, r.u.division, 6);
    sqlite3_bind_int64(st, 4, im->import_id);
    if (!step_done(st))
        return db_fail(im, err, line, "inserting the enterprise");
    if (sqlite3_changes(im->db) == 0)
        return db_fail(im, err, line, "the enterprise appeared in the store during the import");

    if (r.graded && (rc = put_eval(im, err, line, &r)) != BG_OK)
        return rc;
    for (int l = 0; l < BG_LIST_COUNT; l++)
        if (r.listed[l] && (rc = put_list(im, err, line, &r, l)) != BG_OK)
            return rc;
    im->res->inserted++;
    return BG_OK;
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
    snprintf(im->rep_tmp, sizeof im->rep_tmp, "%s.tmp-XXXXXX", im->rep_final);
    /* mkstemp: 0600, and a name nobody else can have planted. */
    int fd = mkstemp(im->rep_tmp);
    if (fd < 0) {
        int e = errno;
        im->rep_tmp[0] = '\0';
        return bg_err_set(err, BG_EIO, "cannot create report %s: %s", im->rep_final, strerror(e));
    }
    im->rep = fdopen(fd, "w");
    if (im->rep == NULL) {
        close(fd);
        unlink(im->rep_tmp);
        im->rep_tmp[0] = '\0';
        return bg_err_set(err, BG_ENOMEM, "out of memory");
    }
    fputs("line,uscc,status,reason\n", im->rep);
    return BG_OK;
}

/* Puts the report in place (or removes it if it has no rows). Call after COMMIT/ROLLBACK. */
static int
finish_report(imp *im, bg_err *err)
{
    FILE *f = im->rep;
    im->rep = NULL;
    bool ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
    int e = errno;
    ok = fclose(f) == 0 && ok;
    if (im->res->reported == 0) {
        unlink(im->rep_tmp);
        im->rep_tmp[0] = '\0';
        return BG_OK;
    }
    if (ok && rename(im->rep_tmp, im->rep_final) == 0) {
        im->rep_tmp[0] = '\0';
        snprintf(im->res->report_path, sizeof im->res->report_path, "%s", im->rep_final);
        return BG_OK;
    }
    if (ok)
        e = errno;
    unlink(im->rep_tmp);
    im->rep_tmp[0] = '\0';
    return bg_err_set(err, BG_EIO, "writing report %s: %s", im->rep_final, strerror(e));
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
    const uint64_t v[] = {r->rows,     r->inserted,   r->updated,   r->unchanged,
                          r->rejected, r->duplicates, r->conflicts, r->normalised};
    for (int i = 0; i < 8; i++)
        sqlite3_bind_int64(st, 3 + i, (int64_t)v[i]);
    return step_done(st) ? BG_OK : db_fail(im, err, 0, "recording the import");
}

int
bg_import_file(bg_store *s, const char *path, const bg_import_opts *opts, bg_import_result *result,
               bg_err *err)
{
    static const bg_import_opts defaults = {.mode = BG_IMPORT_QUARANTINE};
    imp im;
    memset(&im, 0, sizeof im);
    memset(result, 0, sizeof *result);
    bg_err_clear(err);
    im.s = s;
    im.db = bg_store_db(s);
    im.o = opts ? opts : &defaults;
    im.res = result;
    im.scale = bg_store_scale(s);
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

    char started[32];
    now_iso(started);
    bool in_tx = false, committed = false;
    char cache_sql[64];
    int64_t old_cache = 0;
    int rc = prepare_all(&im, err);
    if (rc != BG_OK)
        goto out;

    progress(&im, BG_IMPORT_PHASE_DIGEST, 0);
    if ((rc = digest_file(f, path, result->digest_hex, err)) != BG_OK)
        goto out;
    if ((rc = find_digest(&im, result->digest_hex, &result->previous_import, err)) != BG_OK)
        goto out;
    if (result->previous_import != 0 && !im.o->force) {
        result->already_imported = true;
        goto out;
    }
    if (fseek(f, 0, SEEK_SET) != 0) {
        rc = bg_err_set(err, BG_EIO, "cannot rewind %s: %s", path, strerror(errno));
        goto out;
    }
    crypto_hash_sha256_init(&im.reparse);
    if (dup_init(&im.dups) != BG_OK) {
        rc = bg_err_set(err, BG_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = open_report(&im, path, &sb, err)) != BG_OK)
        goto out;

    {
        sqlite3_stmt *cs = NULL;
        if (sqlite3_prepare_v2(im.db, "PRAGMA cache_size", -1, &cs, NULL) == SQLITE_OK &&
            sqlite3_step(cs) == SQLITE_ROW)
            old_cache = sqlite3_column_int64(cs, 0);
        sqlite3_finalize(cs);
        snprintf(cache_sql, sizeof cache_sql, "PRAGMA cache_size = -%lu",
                 (unsigned long)(im.o->cache_kib ? im.o->cache_kib : IMPORT_CACHE_KIB));
        sqlite3_exec(im.db, cache_sql, NULL, NULL, NULL);
    }

    if (sqlite3_exec(im.db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        rc = db_fail(&im, err, 0, "starting the import transaction");
        goto out;
    }
    in_tx = true;
    /* Again under the write lock: a concurrent import of the same file may have won. */
    if ((rc = find_digest(&im, result->digest_hex, &result->previous_import, err)) != BG_OK)
        goto out;
    if (result->previous_import != 0 && !im.o->force) {
        result->already_imported = true;
        goto out;
    }
    {
        sqlite3_stmt *st = im.q[Q_INS_IMPORT];
        sqlite3_bind_text(st, 1, result->digest_hex, 64, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, path, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, started, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, im.o->mode == BG_IMPORT_STRICT ? "strict" : "quarantine", -1,
                          SQLITE_STATIC);
        sqlite3_bind_int(st, 5, im.o->force ? 1 : 0);
        if (!step_done(st)) {
            rc = db_fail(&im, err, 0, "recording the import");
            goto out;
        }
        im.import_id = sqlite3_last_insert_rowid(im.db);
        sqlite3_stmt *e = NULL;
        if (sqlite3_prepare_v2(im.db, "SELECT EXISTS (SELECT 1 FROM enterprises)", -1, &e, NULL) !=
                SQLITE_OK ||
            sqlite3_step(e) != SQLITE_ROW) {
            sqlite3_finalize(e);
            rc = db_fail(&im, err, 0, "reading the store");
            goto out;
        }
        im.store_was_empty = sqlite3_column_int(e, 0) == 0;
        sqlite3_finalize(e);
    }

    progress(&im, BG_IMPORT_PHASE_ROWS, 0);
    if ((rc = import_rows(&im, f, err)) != BG_OK)
        goto out;
    {
        unsigned char d[crypto_hash_sha256_BYTES];
        char again[65];
        crypto_hash_sha256_final(&im.reparse, d);
        hex(d, sizeof d, again);
        if (strcmp(again, result->digest_hex) != 0) {
            rc = bg_err_set(err, BG_EIO,
                            "%s changed while it was being imported (digest %.16s... then "
                            "%.16s...): nothing imported",
                            path, result->digest_hex, again);
            goto out;
        }
    }
    if (result->rows > 0)
        result->error_rate = (double)result->rejected / (double)result->rows;
    if ((rc = finish_import_row(&im, err)) != BG_OK)
        goto out;

    if (im.o->mode == BG_IMPORT_STRICT && result->rejected > 0) {
        sqlite3_exec(im.db, "ROLLBACK", NULL, NULL, NULL);
        in_tx = false;
        rc = finish_report(&im, err);
        if (rc == BG_OK)
            rc = bg_err_set(err, BG_EABORTED, "%s (%llu bad row%s; nothing imported)", im.first_bad,
                            (unsigned long long)result->rejected, result->rejected == 1 ? "" : "s");
        goto out;
    }

    progress(&im, BG_IMPORT_PHASE_COMMIT, result->rows);
    if (sqlite3_exec(im.db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        rc = db_fail(&im, err, 0, "committing the import");
        goto out;
    }
    in_tx = false;
    committed = true;
    result->import_id = im.import_id;
    bg_err re;
    rc = finish_report(&im, &re);
    if (rc != BG_OK)
        bg_err_set(err, rc, "import #%lld committed, but %s", (long long)im.import_id, re.msg);
    progress(&im, BG_IMPORT_PHASE_DONE, result->rows);

out:
    if (in_tx)
        sqlite3_exec(im.db, "ROLLBACK", NULL, NULL, NULL);
    if (old_cache != 0) {
        snprintf(cache_sql, sizeof cache_sql, "PRAGMA cache_size = %lld", (long long)old_cache);
        sqlite3_exec(im.db, cache_sql, NULL, NULL, NULL);
    }
    if (im.rep != NULL) {
        fclose(im.rep);
        im.rep = NULL;
    }
    if (im.rep_tmp[0] != '\0')
        unlink(im.rep_tmp);
    if (!committed && rc != BG_EABORTED)
        result->report_path[0] = '\0';
    for (int i = 0; i < Q_COUNT; i++)
        sqlite3_finalize(im.q[i]);
    free(im.dups.slots);
    fclose(f);
    return rc;
}
