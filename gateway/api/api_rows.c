/*
 * api_rows.c - ids read, answers written as rows (api_rows.h).
 */
#include "gateway/api/api_rows.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "gateway/api/api_json.h"

void
bg_api_ids_free(bg_api_ids *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->ids[i]);
        if (l->why != NULL)
            free(l->why[i]);
    }
    free(l->ids);
    free(l->lines);
    free(l->code);
    free(l->why);
    memset(l, 0, sizeof *l);
}

/* Fills l->code and l->why. */
static int
ids_parse(bg_api_ids *l, bg_err *err)
{
    l->code = calloc(l->n ? l->n : 1, sizeof *l->code);
    l->why = calloc(l->n ? l->n : 1, sizeof *l->why);
    if (l->code == NULL || l->why == NULL)
        return bg_err_set(err, BG_ENOMEM, "out of memory");
    for (size_t i = 0; i < l->n; i++) {
        bg_uscc u;
        bg_err e = {0};
        if (bg_uscc_parse(l->ids[i], strlen(l->ids[i]), &u, &e) == BG_OK) {
            memcpy(l->code[i], u.code, sizeof l->code[i]);
            continue;
        }
        l->ninvalid++;
        if ((l->why[i] = strdup(e.msg)) == NULL)
            return bg_err_set(err, BG_ENOMEM, "out of memory");
    }
    return BG_OK;
}

/* One line of f into buf, its newline dropped. *more: a line was read (false at the
 * end). A NUL would cut the id silently: refused. */
static int
read_line(FILE *f, const char *name, size_t lineno, char buf[BG_API_ID_LINE_MAX + 1], size_t *len,
          bool *more, bg_err *err)
{
    size_t n = 0;
    int c;
    while ((c = getc_unlocked(f)) != EOF && c != '\n') {
        if (c == '\0')
            return bg_err_set(err, BG_EINVAL, "%s:%zu: a NUL byte: ids are text, one a line", name,
                              lineno);
        if (n == BG_API_ID_LINE_MAX)
            return bg_err_set(err, BG_EINVAL, "%s:%zu: line longer than %d bytes", name, lineno,
                              BG_API_ID_LINE_MAX);
        buf[n++] = (char)c;
    }
    if (c == EOF && ferror(f))
        return bg_err_set(err, BG_EIO, "%s:%zu: reading failed", name, lineno);
    buf[n] = '\0';
    *len = n;
    *more = c != EOF || n > 0;
    return BG_OK;
}

/* Room for one more id in l. */
static int
ids_grow(bg_api_ids *l, bg_err *err)
{
    if (l->n < l->cap)
        return BG_OK;
    size_t nc = l->cap ? l->cap * 2 : 1024;
    char **ids = realloc(l->ids, nc * sizeof *ids);
    if (ids == NULL)
        return bg_err_set(err, BG_ENOMEM, "out of memory");
    l->ids = ids;
    size_t *lines = realloc(l->lines, nc * sizeof *lines);
    if (lines == NULL)
        return bg_err_set(err, BG_ENOMEM, "out of memory");
    l->lines = lines;
    l->cap = nc;
    return BG_OK;
}

/* Every id line of f in turn to take (l: where it goes; NULL only counts them in *n). */
static int
ids_scan(FILE *f, const char *name, bg_api_ids *l, size_t *n, bg_err *err)
{
    char line[BG_API_ID_LINE_MAX + 1];
    size_t lineno = 0, len = 0;
    bool more = true;
    int rc = BG_OK;
    *n = 0;
    while (rc == BG_OK) {
        lineno++;
        if ((rc = read_line(f, name, lineno, line, &len, &more, err)) != BG_OK || !more)
            break;
        while (len > 0 && line[len - 1] == '\r')
            len--;
        size_t k = 0;
        while (k < len && (line[k] == ' ' || line[k] == '\t'))
            k++;
        if (k == len)
            continue; /* blank */
        if (*n == BG_API_IDS_MAX) {
            rc = bg_err_set(err, BG_ELIMIT, "%s:%zu: more than %u ids", name, lineno,
                            (unsigned)BG_API_IDS_MAX);
            break;
        }
        if (l == NULL) {
            (*n)++;
            continue;
        }
        if ((rc = ids_grow(l, err)) != BG_OK)
            break;
        char *id = malloc(len + 1);
        if (id == NULL) {
            rc = bg_err_set(err, BG_ENOMEM, "out of memory");
            break;
        }
        memcpy(id, line, len);
        id[len] = '\0';
        l->ids[l->n] = id;
        l->lines[l->n++] = lineno;
        *n = l->n;
    }
    if (rc == BG_OK && *n == 0)
        rc = bg_err_set(err, BG_EINVAL, "%s holds no ids", name);
    return rc;
}

int
bg_api_ids_read(FILE *f, const char *name, bg_api_ids *l, bg_err *err)
{
    size_t n = 0;
    int rc = ids_scan(f, name, l, &n, err);
    return rc == BG_OK ? ids_parse(l, err) : rc;
}

int
bg_api_ids_count(FILE *f, const char *name, size_t *n, bg_err *err)
{
    return ids_scan(f, name, NULL, n, err);
}

static int
cmp_str(const void *key, const void *elem)
{
    return strcmp(key, *(char *const *)elem);
}

static int
cmp_grade(const void *key, const void *elem)
{
    return strcmp(key, (*(Baygate__GradeResult *const *)elem)->uscc);
}

/* Membership and graded: matches and grades come sorted. */
bg_api_row
bg_api_row_of(const Baygate__QueryAnswer *qa, const Baygate__PeerQueryResult *p,
              const bg_api_ids *ids, size_t i)
{
    bg_api_row r = {.status = "not matched"};
    if (ids->why[i] != NULL)
        return (bg_api_row){.status = "invalid", .why = ids->why[i]};
    if (!p->ok)
        return (bg_api_row){.status = "error", .why = p->error};
    const char *code = ids->code[i];
    if (qa->mode == 2) {
        /* bsearch may not be given a NULL array, even of no elements. */
        Baygate__GradeResult *const *g =
            p->n_grades == 0 ? NULL
                             : bsearch(code, p->grades, p->n_grades, sizeof *p->grades, cmp_grade);
        if (g != NULL)
            r = (bg_api_row){.status = "matched", .g = *g};
    } else if (p->n_matches > 0 &&
               bsearch(code, p->matches, p->n_matches, sizeof *p->matches, cmp_str) != NULL) {
        r.status = "matched";
    }
    return r;
}

const char *
bg_api_grade_status(const Baygate__GradeResult *g)
{
    if (g->attestation_status != NULL && g->attestation_status[0] != '\0')
        return g->attestation_status;
    return g->attested ? "attested" : "unattested";
}

/* The columns, in the CSV's order; their kinds for JSON. */
enum {
    C_PEER,
    C_OK,
    C_EPOCH,
    C_USCC,
    C_GRADE,
    C_SCALE,
    C_EVALUATED,
    C_VALID,
    C_SERIAL,
    C_COUNT,
    C_ERROR,
    C_COMMON,
    C_ATTESTED,
    C_STATUS,
    C_LINE,
    C_INPUT,
    C_ID,
    C_LIST,
    C_GRADE_STATUS,
    C_REQUEST_ID,
    C_N
};
static const char *const col_name[C_N] = {
    "peer",        "ok",     "epoch", "uscc",  "grade",        "scale",     "evaluated_at",
    "valid_until", "serial", "count", "error", "common_grade", "attested",  "status",
    "line",        "input",  "id",    "list",  "grade_status", "request_id"};
enum { K_STR, K_NUM, K_BOOL };
static const unsigned char col_kind[C_N] = {
    [C_OK] = K_BOOL,   [C_EPOCH] = K_NUM,     [C_SERIAL] = K_NUM,
    [C_COUNT] = K_NUM, [C_ATTESTED] = K_BOOL, [C_LINE] = K_NUM};

/* One row's cells (NULL or "": empty), with room for the numbers written. */
typedef struct cells {
    const char *v[C_N];
    char epoch[24], serial[24], count[24], line[24], rid[33];
} cells;

static void
csv_field(FILE *f, const char *s)
{
    /* Quote anything that could break the row (peers' error messages). */
    if (s == NULL)
        return;
    if (strpbrk(s, ",\"\r\n") == NULL) {
        fputs(s, f);
        return;
    }
    putc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            putc('"', f);
        putc(*s, f);
    }
    putc('"', f);
}

/* The row as a CSV line, or (json) as an object (*first: the first written). */
static void
emit(FILE *f, const cells *c, bool json, bool *first)
{
    if (json) {
        fputs(*first ? "{" : ",{", f);
        *first = false;
    }
    for (int k = 0; k < C_N; k++) {
        const char *v = c->v[k];
        bool empty = v == NULL || v[0] == '\0';
        if (!json) {
            if (k > 0)
                putc(',', f);
            csv_field(f, v);
            continue;
        }
        fprintf(f, "%s\"%s\":", k ? "," : "", col_name[k]);
        if (empty)
            fputs("null", f);
        else if (col_kind[k] != K_STR)
            fputs(v, f);
        else
            bg_json_cstr(f, v);
    }
    fputs(json ? "}" : "\n", f);
}

/* The cells every row of peer p has: peer, ok, epoch, list, request id. */
static void
cells_peer(cells *c, const Baygate__QueryAnswer *qa, const Baygate__PeerQueryResult *p)
{
    memset(c, 0, sizeof *c);
    c->v[C_PEER] = p->peer;
    c->v[C_OK] = p->ok ? "true" : "false";
    snprintf(c->epoch, sizeof c->epoch, "%" PRIu64, (uint64_t)p->epoch);
    c->v[C_EPOCH] = c->epoch;
    c->v[C_LIST] = qa->list;
    c->v[C_REQUEST_ID] = bg_api_request_hex(p, c->rid);
}

/* Input i's own cells: status, line, input (as given), id (canonical). */
static void
cells_input(cells *c, const bg_api_ids *ids, size_t i, const char *status)
{
    c->v[C_STATUS] = status;
    snprintf(c->line, sizeof c->line, "%zu", ids->lines[i]);
    c->v[C_LINE] = c->line;
    c->v[C_INPUT] = ids->ids[i];
    c->v[C_ID] = ids->why[i] ? "" : ids->code[i];
}

static void
rows_of_peer(FILE *f, const Baygate__QueryAnswer *qa, const Baygate__PeerQueryResult *p,
             const bg_api_ids *ids, bool json, bool *first)
{
    cells c;
    if (qa->mode != 3) {
        for (size_t i = 0; i < ids->n; i++) {
            bg_api_row r = bg_api_row_of(qa, p, ids, i);
            const Baygate__GradeResult *g = r.g;
            cells_peer(&c, qa, p);
            cells_input(&c, ids, i, r.status);
            if (strcmp(r.status, "matched") == 0)
                c.v[C_USCC] = ids->code[i];
            if (g != NULL) {
                c.v[C_GRADE] = g->grade;
                c.v[C_SCALE] = g->scale;
                c.v[C_EVALUATED] = g->evaluated_at;
                c.v[C_VALID] = g->valid_until;
                snprintf(c.serial, sizeof c.serial, "%" PRIu64, (uint64_t)g->serial);
                c.v[C_SERIAL] = c.serial;
                c.v[C_ERROR] = g->attested ? "" : g->attestation_error;
                c.v[C_COMMON] = g->common_grade;
                c.v[C_ATTESTED] = g->attested ? "true" : "false";
                c.v[C_GRADE_STATUS] = bg_api_grade_status(g);
            } else {
                c.v[C_ERROR] = r.why;
            }
            emit(f, &c, json, first);
        }
        return;
    }
    cells_peer(&c, qa, p);
    c.v[C_STATUS] = p->ok ? "count" : "error";
    if (p->ok) {
        snprintf(c.count, sizeof c.count, "%" PRIu64, (uint64_t)p->count);
        c.v[C_COUNT] = c.count;
    } else {
        c.v[C_ERROR] = p->error;
    }
    emit(f, &c, json, first);
    for (size_t i = 0; i < ids->n; i++) {
        if (ids->why[i] == NULL)
            continue;
        cells_peer(&c, qa, p);
        cells_input(&c, ids, i, "invalid");
        c.v[C_ERROR] = ids->why[i];
        emit(f, &c, json, first);
    }
}

void
bg_api_csv_rows(FILE *f, const Baygate__QueryAnswer *qa, const bg_api_ids *ids, bool header)
{
    bool first = true;
    if (header)
        fputs(BG_API_CSV_HEADER, f);
    for (size_t i = 0; i < qa->n_peers; i++)
        rows_of_peer(f, qa, qa->peers[i], ids, false, &first);
}

void
bg_api_json_rows(FILE *f, const Baygate__QueryAnswer *qa, const bg_api_ids *ids, bool *first)
{
    for (size_t i = 0; i < qa->n_peers; i++)
        rows_of_peer(f, qa, qa->peers[i], ids, true, first);
}
