/*
 * rate.c - token buckets per (peer, kind of request) (see rate.h).
 */
#include "gateway/daemon/rate.h"

#include <stdio.h>
#include <string.h>

static const char *const kind_names[GW_RATE_KINDS] = {"ping", "snapshot", "psi", "status",
                                                      "witness"};

void
gw_rate_init(gw_rate *r)
{
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->lock, NULL);
}

void
gw_rate_set_limits(gw_rate *r, const gw_rate_limit limit[GW_RATE_KINDS])
{
    pthread_mutex_lock(&r->lock);
    memcpy(r->limit, limit, sizeof r->limit);
    /* A lower burst applies at once, not after the bucket has drained to it. */
    for (size_t i = 0; i < r->n; i++)
        for (int k = 0; k < GW_RATE_KINDS; k++) {
            if (r->b[i].tokens[k] > r->limit[k].burst)
                r->b[i].tokens[k] = r->limit[k].burst;
            if (r->b[i].bytes[k] > (double)r->limit[k].bytes_burst)
                r->b[i].bytes[k] = (double)r->limit[k].bytes_burst;
        }
    pthread_mutex_unlock(&r->lock);
}

void
gw_rate_destroy(gw_rate *r)
{
    pthread_mutex_destroy(&r->lock);
}

const char *
gw_rate_kind_name(gw_rate_kind k)
{
    return k >= 0 && k < GW_RATE_KINDS ? kind_names[k] : "?";
}

/* city's bucket, made full on first sight; the last one is shared by every city beyond
 * the table (the roster caps members, so only non-members would share it). Locked. */
static gw_rate_bucket *
bucket(gw_rate *r, const char *city, int64_t now_ms)
{
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->b[i].city, city) == 0)
            return &r->b[i];
    if (r->n == GW_RATE_CITIES)
        return &r->b[GW_RATE_CITIES - 1];
    gw_rate_bucket *b = &r->b[r->n++];
    snprintf(b->city, sizeof b->city, "%s", city);
    for (int k = 0; k < GW_RATE_KINDS; k++) {
        b->tokens[k] = r->limit[k].burst;
        b->bytes[k] = (double)r->limit[k].bytes_burst;
        b->at_ms[k] = now_ms;
        b->logged_ms[k] = now_ms - GW_RATE_LOG_EVERY_MS;
    }
    return b;
}

/* Refills b's buckets of kind for the time since they were last looked at. Locked. */
static void
refill(const gw_rate *r, gw_rate_bucket *b, gw_rate_kind k, int64_t now_ms)
{
    const gw_rate_limit *l = &r->limit[k];
    double dt = now_ms > b->at_ms[k] ? (double)(now_ms - b->at_ms[k]) / 1000.0 : 0.0;
    b->at_ms[k] = now_ms > b->at_ms[k] ? now_ms : b->at_ms[k];
    b->tokens[k] += dt * l->per_s;
    if (b->tokens[k] > l->burst)
        b->tokens[k] = l->burst;
    b->bytes[k] += dt * (double)l->bytes_per_s;
    if (b->bytes[k] > (double)l->bytes_burst)
        b->bytes[k] = (double)l->bytes_burst;
}

gw_rate_verdict
gw_rate_take(gw_rate *r, const char *city, gw_rate_kind k, int64_t now_ms)
{
    gw_rate_verdict v = {.ok = true};
    if (k < 0 || k >= GW_RATE_KINDS)
        return v;
    pthread_mutex_lock(&r->lock);
    gw_rate_bucket *b = bucket(r, city, now_ms);
    refill(r, b, k, now_ms);
    v.per_s = r->limit[k].per_s;
    v.burst = r->limit[k].burst;
    if (b->tokens[k] >= 1.0 && b->bytes[k] > 0.0) {
        b->tokens[k] -= 1.0;
    } else {
        v.ok = false;
        b->refused[k]++;
        r->refused[k]++;
        if (now_ms - b->logged_ms[k] >= GW_RATE_LOG_EVERY_MS) {
            v.log = true;
            v.unlogged = b->unlogged[k];
            b->unlogged[k] = 0;
            b->logged_ms[k] = now_ms;
        } else {
            b->unlogged[k]++;
        }
    }
    pthread_mutex_unlock(&r->lock);
    return v;
}

void
gw_rate_charge(gw_rate *r, const char *city, gw_rate_kind k, size_t len, int64_t now_ms)
{
    if (k < 0 || k >= GW_RATE_KINDS)
        return;
    pthread_mutex_lock(&r->lock);
    gw_rate_bucket *b = bucket(r, city, now_ms);
    refill(r, b, k, now_ms);
    b->bytes[k] -= (double)len;
    pthread_mutex_unlock(&r->lock);
}

uint64_t
gw_rate_refused(gw_rate *r, gw_rate_kind k)
{
    if (k < 0 || k >= GW_RATE_KINDS)
        return 0;
    pthread_mutex_lock(&r->lock);
    uint64_t n = r->refused[k];
    pthread_mutex_unlock(&r->lock);
    return n;
}
