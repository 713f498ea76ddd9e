/*
 * gen.h - synthetic city credit data, deterministic for a seed.
 *
 * Writes rows in the format of record.h: valid USCCs in the city's division
 * codes, Chinese enterprise names, list memberships (serious-dishonesty about
 * 1 %, abnormal-operation about 5 %, with reasons and dates) and evaluation
 * grades on the ABCD scale. A share file makes a fraction of the rows reuse
 * enterprises (USCC and name) of another city's file. A dirty rate injects
 * realistic defects so imports can be tested. Same options, same bytes.
 */
#ifndef BG_GEN_H
#define BG_GEN_H

#include <stdint.h>
#include <stdio.h>

#include "common/err.h"

typedef struct bg_gen_opts {
    char city[7];   /* prefecture-level code, "440300" */
    uint64_t count; /* rows to write (duplicates injected by dirty count too) */
    uint64_t seed;
    const char *share_path; /* another city's data file, or NULL */
    double share_rate;      /* 0..1: fraction of rows taken from share_path */
    double dirty_rate;      /* 0..1: fraction of rows with one injected defect */
    int32_t as_of;          /* reference date (days since epoch); dates fall before it */
} bg_gen_opts;

/* Defects the dirty option injects. */
enum {
    BG_DEFECT_BAD_CHECK, /* wrong check character: the import must reject */
    BG_DEFECT_FULLWIDTH, /* full-width characters: the import normalises */
    BG_DEFECT_LOWERCASE, /* lower case: the import normalises */
    BG_DEFECT_DUPLICATE, /* a copy of an earlier row's USCC: rejected as duplicate */
    BG_DEFECT_MISSING,   /* an empty required field: rejected */
    BG_DEFECT_COUNT
};

typedef struct bg_gen_stats {
    uint64_t rows;
    uint64_t shared;    /* rows reusing another city's enterprise */
    uint64_t listed[2]; /* by list index (record.h) */
    uint64_t graded;
    uint64_t grades[4]; /* A, B, C, D */
    uint64_t defects[BG_DEFECT_COUNT];
} bg_gen_stats;

/* A fixed reference date, 2026-06-30, for output that never depends on today (tests,
 * benchmarks); `baygate gen` defaults to today instead. */
int32_t bg_gen_default_as_of(void);

/* Known city codes the generator has districts for ("440100", ...), NULL-terminated. */
extern const char *const bg_gen_cities[];

/*
 * Writes a header and opts->count rows to out. stats may be NULL.
 * BG_EINVAL for an unknown city, an out-of-range rate or a malformed share
 * file (the message names file and line); BG_ELIMIT for a count above 10^9;
 * BG_EIO when writing, or opening or reading the share file, fails.
 */
int bg_gen_write(const bg_gen_opts *opts, FILE *out, bg_gen_stats *stats, bg_err *err);

#endif
