/*
 * rate.h - request and byte rates per (peer, kind of request): a token bucket each,
 * so that one member flooding cheap requests (pings, snapshot chunks, status lists,
 * witness messages) over all its connections cannot take the answering side's time,
 * disk (two synced evidence leaves per answered request) or bandwidth from the others.
 * PSI items have their daily quota (quota.h) besides.
 *
 * A request is admitted while its bucket holds a request token and the bytes bucket is
 * not in debt; the answer's bytes are charged after it is built (an answer may put the
 * bucket in debt: the next requests wait until it refills). Thread-safe. Data only
 * besides its mutex: it knows nothing of the gateway.
 */
#ifndef BG_RATE_H
#define BG_RATE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "domain/city.h"
#include "peers/roster.h"

typedef enum gw_rate_kind {
    GW_RATE_PING,
    GW_RATE_SNAPSHOT,
    GW_RATE_PSI,
    GW_RATE_STATUS,
    GW_RATE_WITNESS,
    GW_RATE_KINDS
} gw_rate_kind;

/* Per kind: requests per second and burst; answer bytes per second and burst. */
typedef struct gw_rate_limit {
    uint32_t per_s, burst;
    uint64_t bytes_per_s, bytes_burst;
} gw_rate_limit;

typedef struct gw_rate_bucket {
    char city[BG_CITY_CODE_LEN + 1];
    double tokens[GW_RATE_KINDS];
    double bytes[GW_RATE_KINDS];
    int64_t at_ms[GW_RATE_KINDS];
    uint64_t refused[GW_RATE_KINDS];  /* since start */
    int64_t logged_ms[GW_RATE_KINDS]; /* the last log line of a refusal */
    uint64_t unlogged[GW_RATE_KINDS]; /* refusals since that line */
} gw_rate_bucket;

/* One bucket per city: the roster's members, and one shared by anything else. */
#define GW_RATE_CITIES (BG_ROSTER_MAX_MEMBERS + 1)
#define GW_RATE_LOG_EVERY_MS 10000

typedef struct gw_rate {
    pthread_mutex_t lock;
    gw_rate_limit limit[GW_RATE_KINDS];
    gw_rate_bucket b[GW_RATE_CITIES];
    size_t n;
    uint64_t refused[GW_RATE_KINDS]; /* all cities, since start */
} gw_rate;

/* Every limit 0 (every request refused) until gw_rate_set_limits: the limits are the
 * gateway's configuration ([rate] in baygate.ini, gateway/config/config.h). */
void gw_rate_init(gw_rate *r);
/* New limits for every city, at once (a reload): buckets fuller than a new burst are
 * cut to it; counts and log intervals carry on. */
void gw_rate_set_limits(gw_rate *r, const gw_rate_limit limit[GW_RATE_KINDS]);
void gw_rate_destroy(gw_rate *r);

/* The short name of kind ("ping", "snapshot", "psi", "status", "witness"). */
const char *gw_rate_kind_name(gw_rate_kind k);

/* What a refusal should log: nothing, or one line for this and the *unlogged refusals
 * before it of this (city, kind) since the last line (at most one per
 * GW_RATE_LOG_EVERY_MS). */
typedef struct gw_rate_verdict {
    bool ok;
    bool log;
    uint64_t unlogged;
    uint32_t per_s, burst; /* the limit, for the refusal's message */
} gw_rate_verdict;

/* Takes one request token of kind from city's bucket at now_ms. */
gw_rate_verdict gw_rate_take(gw_rate *r, const char *city, gw_rate_kind k, int64_t now_ms);
/* Charges an answer of len bytes to city's bytes bucket of kind. */
void gw_rate_charge(gw_rate *r, const char *city, gw_rate_kind k, size_t len, int64_t now_ms);
/* Refusals of kind so far, all cities. */
uint64_t gw_rate_refused(gw_rate *r, gw_rate_kind k);

#endif
