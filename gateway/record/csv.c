/*
 * csv.c - streaming RFC 4180 reader with bounded memory.
 *
 * Two buffers, both allocated once: the read buffer (BG_CSV_BUFFER bytes,
 * filled with fread) and the record buffer (max_record bytes) into which the
 * fields of the current record are decoded back to back. Decoding never makes
 * a field longer than its raw bytes, and a record is given up as soon as its
 * raw bytes pass max_record, so the record buffer can never overflow.
 *
 * The parser is a four-state machine (field start, unquoted, quoted, just
 * after a quote inside a quoted field). Runs of ordinary bytes are found with
 * a table lookup and copied with memcpy, so the per-byte cost stays low.
 */
#include "gateway/record/csv.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"

enum { ST_FIELD_START, ST_UNQUOTED, ST_QUOTED, ST_QUOTE };

struct bg_csv {
    FILE *f;
    size_t max_record;
    unsigned char *buf; /* read buffer */
    size_t pos, end;    /* unread bytes are buf[pos..end) */
    bool eof, failed, started;
    uint64_t read_total; /* bytes read from f so far */
    uint64_t line;       /* line of the next unread byte */
    uint64_t rec_line;   /* line on which the last record started */
    unsigned char *rec;  /* decoded fields of the current record */
    size_t rec_len;
    size_t nfields;
    bg_csv_field fields[BG_CSV_MAX_FIELDS];
    void (*tap)(void *ctx, const unsigned char *p, size_t n);
    void *tap_ctx;
    bg_csv_fault fault; /* of the last record */
};

/* Bytes that end a run inside an unquoted field, and inside a quoted one. */
static const unsigned char stop_unquoted[256] = {[','] = 1, ['"'] = 1, ['\r'] = 1, ['\n'] = 1};
static const unsigned char stop_quoted[256] = {['"'] = 1, ['\r'] = 1, ['\n'] = 1};

int
bg_csv_open(bg_csv **out, FILE *f, size_t max_record, bg_err *err)
{
    *out = NULL;
    if (max_record == 0 || max_record > BG_CSV_MAX_RECORD_LIMIT)
        return bg_err_set(err, BG_EINVAL, "csv: max_record %zu is outside 1..%u", max_record,
                          BG_CSV_MAX_RECORD_LIMIT);
    bg_csv *c = calloc(1, sizeof *c);
    if (c == NULL)
        return bg_err_set(err, BG_ENOMEM, "csv: out of memory");
    c->buf = malloc(BG_CSV_BUFFER);
    c->rec = malloc(max_record);
    if (c->buf == NULL || c->rec == NULL) {
        bg_csv_close(c);
        return bg_err_set(err, BG_ENOMEM, "csv: out of memory for a %zu-byte record buffer",
                          max_record);
    }
    c->f = f;
    c->max_record = max_record;
    c->line = 1;
    c->rec_line = 1;
    *out = c;
    return BG_OK;
}

void
bg_csv_on_read(bg_csv *c, void (*fn)(void *ctx, const unsigned char *p, size_t n), void *ctx)
{
    c->tap = fn;
    c->tap_ctx = ctx;
}

void
bg_csv_close(bg_csv *c)
{
    if (c == NULL)
        return;
    free(c->buf);
    free(c->rec);
    free(c);
}

uint64_t
bg_csv_line(const bg_csv *c)
{
    return c->rec_line;
}

uint64_t
bg_csv_offset(const bg_csv *c)
{
    return c->read_total - (c->end - c->pos);
}

/*
 * Makes at least one unread byte available. false at end of file or on a read
 * error (c->failed). fread only returns short at end of file or on error, so
 * a short read ends the stream.
 */
static bool
fill(bg_csv *c)
{
    if (c->pos < c->end)
        return true;
    if (c->eof || c->failed)
        return false;
    size_t n = fread(c->buf, 1, BG_CSV_BUFFER, c->f);
    c->pos = 0;
    c->end = n;
    c->read_total += n;
    if (n > 0 && c->tap != NULL)
        c->tap(c->tap_ctx, c->buf, n);
    if (n < BG_CSV_BUFFER) {
        if (ferror(c->f))
            c->failed = true;
        else
            c->eof = true;
    }
    return n > 0;
}

/* Consumes a line end whose first byte (LF or CR) is at pos: LF, CR LF or a lone CR. */
static void
eat_eol(bg_csv *c)
{
    unsigned char ch = c->buf[c->pos++];
    if (ch == '\r' && fill(c) && c->buf[c->pos] == '\n')
        c->pos++;
    c->line++;
}

/* Skips the rest of the physical line, its line end included, ignoring quotes. */
static void
skip_line(bg_csv *c)
{
    while (fill(c)) {
        const unsigned char *p = c->buf + c->pos, *e = c->buf + c->end;
        while (p < e && *p != '\n' && *p != '\r')
            p++;
        c->pos = (size_t)(p - c->buf);
        if (p < e) {
            eat_eol(c);
            return;
        }
    }
}

/* The record being parsed: where its current field starts and how it is going. */
typedef struct parse {
    size_t raw;    /* raw bytes consumed by this record */
    size_t fstart; /* offset in rec of the current field */
    int fault;     /* first fault (BG_OK if none) */
    bool keep;     /* still storing; false once the record is given up */
} parse;

static int
fault(bg_csv *c, parse *ps, bg_err *err, int code, bg_csv_fault kind, size_t field,
      const char *what)
{
    /* A fault after invalid UTF-8 is the one that says whether the fields are whole. */
    if (c->fault == BG_CSV_FAULT_NONE || c->fault == BG_CSV_FAULT_UTF8)
        c->fault = kind;
    if (ps->fault != BG_OK)
        return ps->fault;
    if (field > 0)
        bg_err_set(err, code, "line %llu, field %zu: %s", (unsigned long long)c->rec_line, field,
                   what);
    else
        bg_err_set(err, code, "line %llu: %s", (unsigned long long)c->rec_line, what);
    ps->fault = code;
    return code;
}

/* Counts n raw bytes; gives the record up if it grows past max_record. */
static void
count_raw(bg_csv *c, parse *ps, size_t n, bg_err *err)
{
    ps->raw += n;
    if (ps->keep && ps->raw > c->max_record) {
        char what[96];
        snprintf(what, sizeof what, "record longer than %zu bytes", c->max_record);
        fault(c, ps, err, BG_ELIMIT, BG_CSV_FAULT_TOO_LONG, 0, what);
        ps->keep = false;
    }
}

/* Consumes n raw bytes at pos that are field content. */
static void
take_data(bg_csv *c, parse *ps, size_t n, bg_err *err)
{
    const unsigned char *p = c->buf + c->pos;
    c->pos += n;
    count_raw(c, ps, n, err);
    if (ps->keep) {
        memcpy(c->rec + c->rec_len, p, n);
        c->rec_len += n;
    }
}

static void
field_end(bg_csv *c, parse *ps, bg_err *err)
{
    if (!ps->keep)
        return;
    if (c->nfields == BG_CSV_MAX_FIELDS) {
        char what[64];
        snprintf(what, sizeof what, "more than %d fields", BG_CSV_MAX_FIELDS);
        fault(c, ps, err, BG_EINVAL, BG_CSV_FAULT_TOO_MANY, 0, what);
        ps->keep = false;
        return;
    }
    const unsigned char *p = c->rec + ps->fstart;
    size_t len = c->rec_len - ps->fstart;
    size_t ok = bg_utf8_valid_prefix(p, len);
    if (ok != len) {
        char what[64];
        snprintf(what, sizeof what, "invalid UTF-8 at byte %zu", ok + 1);
        fault(c, ps, err, BG_EINVAL, BG_CSV_FAULT_UTF8, c->nfields + 1, what);
    }
    c->fields[c->nfields].p = (const char *)p;
    c->fields[c->nfields].len = len;
    c->nfields++;
    ps->fstart = c->rec_len;
}

/* One loop for the whole state machine (about 130 lines): every state shares the
 * refills of the read buffer and the record's fault state, and the hot runs of
 * ordinary bytes stay in one place; split per state it would pass all of that
 * around on every byte class change. */
int
bg_csv_next(bg_csv *c, bg_csv_field **fields, size_t *nfields, bg_err *err)
{
    *fields = c->fields;
    *nfields = 0;
    c->nfields = 0;
    c->fault = BG_CSV_FAULT_NONE;
    c->rec_len = 0;

    if (!c->started) {
        c->started = true;
        /* fread fills the buffer unless the file is shorter: 3 bytes are there if the file has
         * them. */
        if (fill(c) && c->end - c->pos >= 3 && memcmp(c->buf + c->pos, "\xEF\xBB\xBF", 3) == 0)
            c->pos += 3;
    }

    /* Lines holding nothing at all are not records. */
    for (;;) {
        if (!fill(c)) {
            c->rec_line = c->line;
            if (c->failed)
                return bg_err_set(err, BG_EIO, "line %llu: read error",
                                  (unsigned long long)c->line);
            return BG_ENOTFOUND;
        }
        unsigned char ch = c->buf[c->pos];
        if (ch != '\n' && ch != '\r')
            break;
        eat_eol(c);
    }

    c->rec_line = c->line;
    parse ps = {.raw = 0, .fstart = 0, .fault = BG_OK, .keep = true};
    int state = ST_FIELD_START;

    for (;;) {
        if (!fill(c)) {
            if (c->failed)
                return bg_err_set(err, BG_EIO, "line %llu: read error",
                                  (unsigned long long)c->line);
            if (state == ST_QUOTED)
                fault(c, &ps, err, BG_EINVAL, BG_CSV_FAULT_UNTERMINATED, 0,
                      "unterminated quoted field");
            else
                field_end(c, &ps, err);
            break;
        }
        const unsigned char *p = c->buf + c->pos, *e = c->buf + c->end, *q = p;
        unsigned char ch = *p;

        if (state == ST_FIELD_START) {
            if (ch == '"') {
                c->pos++;
                count_raw(c, &ps, 1, err);
                state = ST_QUOTED;
                continue;
            }
            state = ST_UNQUOTED;
        }

        if (state == ST_UNQUOTED) {
            while (q < e && !stop_unquoted[*q])
                q++;
            if (q > p) {
                take_data(c, &ps, (size_t)(q - p), err);
                continue;
            }
            if (ch == ',') {
                c->pos++;
                count_raw(c, &ps, 1, err);
                field_end(c, &ps, err);
                state = ST_FIELD_START;
                continue;
            }
            if (ch == '\n' || ch == '\r') {
                eat_eol(c);
                field_end(c, &ps, err);
                break;
            }
            /* A quote inside an unquoted field: RFC 4180 has no reading for it. */
            fault(c, &ps, err, BG_EINVAL, BG_CSV_FAULT_STRAY_QUOTE, c->nfields + 1,
                  "stray '\"' in an unquoted field (quote the field and double the quote)");
            skip_line(c);
            break;
        }

        if (state == ST_QUOTED) {
            while (q < e && !stop_quoted[*q])
                q++;
            if (q > p) {
                take_data(c, &ps, (size_t)(q - p), err);
                continue;
            }
            if (ch == '"') {
                c->pos++;
                count_raw(c, &ps, 1, err);
                state = ST_QUOTE;
                continue;
            }
            /* A line end inside quotes is data; it still counts as a line. */
            take_data(c, &ps, 1, err);
            if (ch == '\r' && fill(c) && c->buf[c->pos] == '\n')
                take_data(c, &ps, 1, err);
            c->line++;
            continue;
        }

        /* ST_QUOTE: just after a quote inside a quoted field. */
        if (ch == '"') {
            take_data(c, &ps, 1, err); /* a doubled quote stands for one */
            state = ST_QUOTED;
            continue;
        }
        if (ch == ',') {
            c->pos++;
            count_raw(c, &ps, 1, err);
            field_end(c, &ps, err);
            state = ST_FIELD_START;
            continue;
        }
        if (ch == '\n' || ch == '\r') {
            eat_eol(c);
            field_end(c, &ps, err);
            break;
        }
        fault(c, &ps, err, BG_EINVAL, BG_CSV_FAULT_AFTER_QUOTE, c->nfields + 1,
              "text after the closing quote (expected ',' or the end of the line)");
        skip_line(c);
        break;
    }

    *nfields = c->nfields;
    return ps.fault;
}

bg_csv_fault
bg_csv_last_fault(const bg_csv *c)
{
    return c->fault;
}

size_t
bg_csv_cell(char *out, const char *s, size_t len)
{
    bool quote = false;
    for (size_t i = 0; i < len && !quote; i++)
        quote = s[i] == ',' || s[i] == '"' || s[i] == '\n' || s[i] == '\r';
    if (!quote) {
        memcpy(out, s, len);
        return len;
    }
    char *p = out;
    *p++ = '"';
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '"')
            *p++ = '"';
        *p++ = s[i];
    }
    *p++ = '"';
    return (size_t)(p - out);
}
