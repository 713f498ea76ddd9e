/*
 * csv.h - a streaming RFC 4180 reader for hostile input, and the matching
 * cell writer: the one CSV code of the project.
 *
 * It lives in gateway/record because every CSV baygate reads or writes is the
 * city data format or something derived from it: the import (gateway/store)
 * reads city files, the generator (gateway/gen) reads another city's file to
 * share its enterprises and writes its own, and the demo reads both back for
 * its ground truth. gen sits beside store, not above it, so the reader could
 * not stay in store; nothing below gateway/ handles CSV.
 *
 * Reads one record at a time from a FILE with bounded memory: quoted fields
 * with embedded commas, doubled quotes and newlines; LF or CRLF line ends; a
 * leading UTF-8 BOM is skipped. A record longer than max_record bytes, an
 * unterminated quote, a stray quote inside an unquoted field, or bytes that are
 * not UTF-8 fail that record only: the reader skips to the start of the next
 * record, so the caller can report the line and carry on.
 *
 * Line ends: LF, CRLF and a lone CR each end a line (outside quotes they end
 * the record; inside quotes they are data, kept verbatim, and still counted),
 * so line numbers match what an editor shows.
 *
 * Resynchronisation after a bad record:
 *  - too long or too many fields: the quoting is still sound, so the reader
 *    keeps following quotes, discarding bytes, up to the next line end outside
 *    quotes (a 1 MB quoted field with embedded newlines is skipped whole);
 *  - a syntax fault (stray quote, text after a closing quote): the quoting can
 *    no longer be trusted, so the rest of that physical line is skipped;
 *  - invalid UTF-8: the record is read to its end as usual.
 * The next record starts on the following line. Memory is bounded by
 * max_record plus a fixed read buffer, whatever the input.
 */
#ifndef BG_CSV_H
#define BG_CSV_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/err.h"

#define BG_CSV_MAX_FIELDS 64
/* Bytes read from the stream at a time (exposed for boundary tests). */
#define BG_CSV_BUFFER (256 * 1024)
/* Largest max_record accepted by bg_csv_open. */
#define BG_CSV_MAX_RECORD_LIMIT (64u * 1024 * 1024)

typedef struct bg_csv bg_csv;

typedef struct bg_csv_field {
    const char *p; /* not NUL-terminated; valid until the next bg_csv_next */
    size_t len;
} bg_csv_field;

/*
 * Reader over f (not closed by bg_csv_close). max_record (1..BG_CSV_MAX_RECORD_LIMIT)
 * bounds one record's raw bytes, quotes and embedded line ends included, the
 * final line end excluded.
 */
int bg_csv_open(bg_csv **out, FILE *f, size_t max_record, bg_err *err);

/*
 * Calls fn with every chunk of bytes read from f, in order (the import hashes
 * the bytes it actually parsed with it). Set it before the first bg_csv_next.
 */
void bg_csv_on_read(bg_csv *c, void (*fn)(void *ctx, const unsigned char *p, size_t n), void *ctx);

/*
 * Next record. BG_OK: fields[0..*nfields) are set. BG_ENOTFOUND: end of file.
 * BG_EINVAL or BG_ELIMIT: this record is malformed (err names the line and the
 * fault; call again for the next record); fields[0..*nfields) then hold the
 * fields completed before the fault (all of them for invalid UTF-8), so the
 * caller can show what it can. BG_EIO: the stream failed.
 * A line holding nothing at all (not even a quote) is skipped, not returned.
 */
int bg_csv_next(bg_csv *c, bg_csv_field **fields, size_t *nfields, bg_err *err);

/* What was wrong with the last record bg_csv_next refused, for callers that word
 * their own messages (the generator's share file). */
typedef enum bg_csv_fault {
    BG_CSV_FAULT_NONE,
    BG_CSV_FAULT_TOO_LONG,     /* more than max_record bytes */
    BG_CSV_FAULT_TOO_MANY,     /* more than BG_CSV_MAX_FIELDS fields */
    BG_CSV_FAULT_UTF8,         /* invalid UTF-8; every field is still returned */
    BG_CSV_FAULT_STRAY_QUOTE,  /* a quote inside an unquoted field */
    BG_CSV_FAULT_AFTER_QUOTE,  /* text after a closing quote */
    BG_CSV_FAULT_UNTERMINATED, /* the file ends inside a quoted field */
} bg_csv_fault;

bg_csv_fault bg_csv_last_fault(const bg_csv *c);

/* 1-based line number on which the last returned (or failed) record started. */
uint64_t bg_csv_line(const bg_csv *c);

/* Bytes consumed so far (for progress reports). */
uint64_t bg_csv_offset(const bg_csv *c);

void bg_csv_close(bg_csv *c);

/* The most bytes bg_csv_cell writes for a cell of len bytes. */
#define BG_CSV_CELL_MAX(len) (2 * (len) + 2)

/* Writes s[0..len) to out as one cell, quoted (quotes doubled) only when it holds a
 * comma, a quote or a line end, as RFC 4180 requires; returns the bytes written. */
size_t bg_csv_cell(char *out, const char *s, size_t len);

#endif
