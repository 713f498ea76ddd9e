/*
 * scale.h - grade scales: an ordered list of grades, best first, written
 * "NAME=G1,G2,..." (e.g. "ABCD=A,B,C,D"). Cities use different scales; the
 * roster maps each onto the federation's common scale.
 *
 * BG_GRADE_MAX is the longest grade anywhere: the data format, the roster,
 * sealed snapshot payloads (mpc ties its own limit to it) and attestations.
 */
#ifndef BG_SCALE_H
#define BG_SCALE_H

#include <stddef.h>

#include "common/err.h"

#define BG_SCALE_MAX_GRADES 16
#define BG_GRADE_MAX 8

typedef struct bg_scale {
    char name[32]; /* e.g. "ABCD" */
    size_t ngrades;
    char grades[BG_SCALE_MAX_GRADES][BG_GRADE_MAX + 1];
} bg_scale;

/* Parses "NAME=G1,G2,..." or "G1,G2,..." (then the name is the grades joined). */
int bg_scale_parse(const char *spec, bg_scale *out, bg_err *err);
/* Index of grade g (len bytes) in the scale, or -1. */
int bg_scale_index(const bg_scale *scale, const char *g, size_t len);
/* Writes "NAME=G1,G2,..." to buf. */
void bg_scale_format(const bg_scale *scale, char *buf, size_t bufsz);

/* The default scale: "ABCD=A,B,C,D". */
void bg_scale_default(bg_scale *out);

#endif
