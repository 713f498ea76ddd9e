/*
 * api_jobbody.h - the body of POST /v1/jobs as JSON: {"kind", "list", "purpose",
 * "auth_ref" (strings), "peers" ("all" or an array of city codes), "ids" (an array of
 * strings)}, read as a stream (never held whole): the ids go, one a line, to a file
 * the ids reader (api_rows.h) reads like an uploaded one, the rest into an api_jobreq.
 * Every string is bounded, an unknown or repeated member is refused by name, and so is
 * an id holding a line break or a NUL; each error says where (the byte offset).
 */
#ifndef BG_API_JOBBODY_H
#define BG_API_JOBBODY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "common/err.h"
#include "peers/roster.h"

#define API_JOBREQ_TEXT_MAX 64  /* kind, list, purpose, one peer */
#define API_JOBREQ_AUTH_MAX 128 /* auth_ref: hex digits */

/* What a job is asked to do, as given (validated by the resource). */
typedef struct api_jobreq {
    char kind[API_JOBREQ_TEXT_MAX + 1], list[API_JOBREQ_TEXT_MAX + 1];
    char purpose[API_JOBREQ_TEXT_MAX + 1], auth_ref[API_JOBREQ_AUTH_MAX + 1];
    bool all; /* "peers": "all" (or none given) */
    size_t npeers;
    char peers[BG_ROSTER_MAX_MEMBERS][API_JOBREQ_TEXT_MAX + 1];
} api_jobreq;

/* Reads the JSON object in `in` into q, the ids into ids_out (one a line); BG_EINVAL
 * naming what is wrong, BG_ELIMIT for too many ids or peers. */
int api_jobbody_json(FILE *in, FILE *ids_out, api_jobreq *q, bg_err *err);

#endif
