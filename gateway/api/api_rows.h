/*
 * api_rows.h - a query's answer as rows: one per input id per peer (per peer for a
 * count, and one per invalid id per peer), with an explicit status (matched, not
 * matched, invalid, error, count). The one reader of an ids file (bounded as the
 * gateway bounds a query) and the one writer of those rows, as CSV (`baygate query
 * --csv`, a job's results.csv) and as JSON objects with the same columns (a job's
 * results), so the CLI and the HTTP API cannot drift apart. The CLI calls in here.
 *
 * Writers write to f and never fail on their own: the caller checks ferror(f).
 */
#ifndef BG_API_ROWS_H
#define BG_API_ROWS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "common/err.h"
#include "domain/uscc.h"
#include "gateway/daemon/psi_query.h"
#include "proto/api.pb-c.h"

#define BG_API_IDS_MAX GW_QUERY_MAX_IDS      /* ids in one file, as the gateway takes */
#define BG_API_ID_LINE_MAX BG_USCC_INPUT_MAX /* bytes of one id line */

/* The ids asked, each as the gateway will read it (the same bg_uscc_parse): its
 * canonical code, or why it is invalid (malloc'd; NULL for a valid one), so every
 * input line gets its own row. */
typedef struct bg_api_ids {
    char **ids;    /* as given */
    size_t *lines; /* 1-based line of each id */
    char (*code)[BG_USCC_LEN + 1];
    char **why;
    size_t n, cap, ninvalid;
} bg_api_ids;

/* Reads f (named name in messages): one id a line, blank lines skipped, a trailing CR
 * dropped; at most BG_API_IDS_MAX ids of at most BG_API_ID_LINE_MAX bytes, no NUL.
 * Anything else is BG_EINVAL (BG_ELIMIT for too many) naming the line; none at all is
 * BG_EINVAL too. Bounded: a file without newlines costs no more than one line. */
int bg_api_ids_read(FILE *f, const char *name, bg_api_ids *l, bg_err *err);
void bg_api_ids_free(bg_api_ids *l);
/* The same checks, counting the ids into *n and keeping none (an upload is checked
 * before it is taken, never held whole in memory). */
int bg_api_ids_count(FILE *f, const char *name, size_t *n, bg_err *err);

/* What input i came to at peer p of answer qa. */
typedef struct bg_api_row {
    const char *status; /* "matched", "not matched", "invalid", "error" */
    const char *why;    /* invalid: the reason; error: the peer's error */
    const Baygate__GradeResult *g;
} bg_api_row;

bg_api_row bg_api_row_of(const Baygate__QueryAnswer *qa, const Baygate__PeerQueryResult *p,
                         const bg_api_ids *ids, size_t i);

/* A graded row's standing: "attested", "expired" or "unattested". */
const char *bg_api_grade_status(const Baygate__GradeResult *g);

#define BG_API_CSV_HEADER                                                                          \
    "peer,ok,epoch,uscc,grade,scale,evaluated_at,valid_until,serial,count,error,common_grade,"     \
    "attested,status,line,input,id,list,grade_status,request_id\n"

/* Every row of qa (every peer in it), as CSV lines (header: BG_API_CSV_HEADER first). */
void bg_api_csv_rows(FILE *f, const Baygate__QueryAnswer *qa, const bg_api_ids *ids, bool header);

/* The same rows as JSON objects, keyed by the CSV's column names (numbers and booleans
 * typed, empty cells null), comma-separated; *first: nothing written before. */
void bg_api_json_rows(FILE *f, const Baygate__QueryAnswer *qa, const bg_api_ids *ids, bool *first);

#endif
