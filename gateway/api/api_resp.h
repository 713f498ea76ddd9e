/*
 * api_resp.h - HTTP API responses: JSON bodies written with common/json's safe strings,
 * and RFC 9457 problems (application/problem+json: type, title, status, detail).
 */
#ifndef BG_API_RESP_H
#define BG_API_RESP_H

#include <stdbool.h>
#include <stdio.h>

#include "gateway/api/api_int.h"

#define API_JSON "application/json"
#define API_PROBLEM "application/problem+json"

/* A stream writing into r's body; NULL when out of memory. */
FILE *api_body_open(api_resp *r);

/* Ends the stream: r gets the body, status and ctype (a 500 problem if writing failed). */
void api_body_close(api_resp *r, FILE *f, unsigned status, const char *ctype);

/* r becomes a problem: type "urn:baygate:problem:<kind>", title, status and the
 * detail naming what was wrong. */
void api_problem(api_resp *r, unsigned status, const char *kind, const char *title, const char *fmt,
                 ...) __attribute__((format(printf, 5, 6)));

/* The same with members of its own to add (",\"k\":v" each) before api_problem_close;
 * NULL when out of memory (r is then the 500). */
FILE *api_problem_open(api_resp *r, unsigned status, const char *kind, const char *title,
                       const char *detail);
void api_problem_close(api_resp *r, FILE *f, unsigned status);

/* Whether purpose is given and within k's scope; false with r the 400 or the 403 naming
 * what the key may ask for. */
bool api_purpose_allowed(const bg_apikey *k, const char *purpose, api_resp *r);

#endif
