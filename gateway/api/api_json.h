/*
 * api_json.h - the one writer of the JSON that both the HTTP API and the CLI give:
 * status (GET /v1/status, `baygate status --json`), one enterprise in every city
 * (GET /v1/enterprises/{uscc}, `baygate lookup --json`) and evidence log leaves
 * (GET /v1/evidence, `baygate audit find --json`). Kept in one place so that the two
 * faces cannot drift apart; the CLI (a higher folder) calls in here, never the reverse.
 * Also the few readings of those answers that the CLI's text output says too (times,
 * expiries, a peer's result per list), so that text and JSON agree.
 *
 * Writers write to f and never fail on their own: the caller checks ferror(f).
 */
#ifndef BG_API_JSON_H
#define BG_API_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "gateway/audit/audit.h"
#include "proto/api.pb-c.h"

/* The lists a lookup asks every city about, in the order the JSON gives them; the
 * last is the graded one (its grade, not a list membership). */
#define BG_API_LOOKUP_LISTS 3
extern const char *const bg_api_lookup_lists[BG_API_LOOKUP_LISTS];

/* What a lookup learnt: our store's answer and one query answer per list (each with
 * ->query set; the peers of the first are the cities shown). A list the asking key is
 * not scoped to has no answer (NULL): every city shows it "not in scope", our own
 * included, so a scoped key learns nothing of it; at least one list has an answer. */
typedef struct bg_api_lookup {
    const char *uscc, *purpose;
    const Baygate__LookupAnswer *own;
    const Baygate__LocalAnswer *q[BG_API_LOOKUP_LISTS];
} bg_api_lookup;

/* How far off an expiry is, and whether status warns of it. */
typedef struct bg_api_expiry {
    bool known, warn;
    int64_t secs_left; /* negative: past */
    char when[32];
} bg_api_expiry;

/* ,"k":"v" (without the comma when first); NULL writes "". */
void bg_api_json_kv(FILE *f, const char *k, const char *v, bool comma);

/* A time in ms as "2026-12-02T06:46:40Z", or "never" for 0 or less. */
const char *bg_api_when(int64_t ms, char out[32]);
/* Up to 32 bytes as lower-case hex. */
void bg_api_hex32(const ProtobufCBinaryData *b, char out[65]);
/* Our latest signed tree head of ev as an object (size, root, time_ms, time), or null
 * when none is signed yet: in status and in /v1/evidence/head. */
void bg_api_json_head(FILE *f, const Baygate__EvidenceStatus *ev);
/* An expiry at at_ms (0: unknown), warned of under warn_secs left at now. */
bg_api_expiry bg_api_expiry_of(int64_t at_ms, int64_t warn_secs, time_t now);

/* Peer city's result in query answer a, or NULL. */
const Baygate__PeerQueryResult *bg_api_lookup_peer(const Baygate__LocalAnswer *a, const char *city);
/* A grade valid until the date until (YYYY-MM-DD) is still valid today. */
bool bg_api_grade_valid(const char *until);
/* The request id (hex) of the exchange behind p, "" if nothing was sent. */
const char *bg_api_request_hex(const Baygate__PeerQueryResult *p, char out[33]);

/* A fetch in flight as status and query's progress line say it: "fetching 440300
 * serious-dishonesty: 12.3 of 147.0 MiB, full, 4 s" (cut to fit n bytes). */
const char *bg_api_fetch_text(const Baygate__FetchStatus *fs, char *out, size_t n);

/* The status object, with a newline. */
void bg_api_json_status(FILE *f, const Baygate__StatusAnswer *s, time_t now);

/* The lookup object, with a newline; true if every city answered every list. */
bool bg_api_json_lookup(FILE *f, const bg_api_lookup *l);

/* A search of city's evidence log of log_size leaves: the opening, the matching
 * leaves one by one (first: the first), and the closing with the count matched and
 * whether the search read every leaf, with a newline. */
void bg_api_json_find_open(FILE *f, const char *city, uint64_t log_size);
void bg_api_json_leaf(FILE *f, uint64_t index, const bg_audit_event *ev, bool first);
void bg_api_json_find_close(FILE *f, uint64_t matched, bool ok);

#endif
