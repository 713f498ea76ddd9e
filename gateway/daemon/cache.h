/*
 * cache.h - the asking side's snapshot cache: per (peer, list) the last verified
 * snapshot, in memory, reference counted (a query in flight keeps the one it uses;
 * a newer epoch replaces an older one, never the reverse), and per peer the newest
 * status list number seen (an older one is refused as a rollback). At most
 * GW_PSI_CACHE_MAX_ENTRIES entries per snapshot are accepted from a peer.
 */
#ifndef BG_CACHE_H
#define BG_CACHE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "certs/sig.h"
#include "mpc/snapshot.h"
#include "peers/roster.h"

#define GW_PSI_CACHE_MAX_ENTRIES (1U << 22)

/* A peer's snapshot as we hold it, with the signature over its digest (what an
 * attestation of one of its entries carries). Immutable once cached. */
typedef struct gw_cached {
    atomic_int refs;
    bg_snap *snap;
    bg_snap_info info;
    uint8_t sig[BG_SIG_MAX];
    size_t sig_len;
    struct gw_cached *base; /* the same snapshot signed again: snap is base's */
} gw_cached;

typedef struct gw_cache {
    pthread_mutex_t lock;
    struct {
        char city[BG_CITY_CODE_LEN + 1];
        char list[BG_SNAP_LIST_MAX + 1];
        gw_cached *c;
    } e[BG_ROSTER_MAX_MEMBERS * 4];
    size_t n;
    struct {
        char city[BG_CITY_CODE_LEN + 1];
        uint64_t number;
    } status[BG_ROSTER_MAX_MEMBERS];
    size_t nstatus;
} gw_cache;

void gw_cache_init(gw_cache *c);
void gw_cache_destroy(gw_cache *c);

/* A reference to the snapshot held for (city, list), or NULL. */
gw_cached *gw_cache_get(gw_cache *c, const char *city, const char *list);
/* Installs s (taking one reference for the cache) unless a newer one is there. */
void gw_cache_put(gw_cache *c, const char *city, const char *list, gw_cached *s);
/* Drops a reference; the last one frees. NULL is ignored. */
void gw_cached_release(gw_cached *s);
/* s with another signature over the same digest (the peer rotated its certificate and
 * signed its publication again), sharing s's snapshot; NULL if out of memory. */
gw_cached *gw_cached_resigned(gw_cached *s, const uint8_t *sig, size_t sig_len);

/* The newest status list number seen from city (0: none), and raising it. */
uint64_t gw_cache_status_seen(gw_cache *c, const char *city);
void gw_cache_status_saw(gw_cache *c, const char *city, uint64_t number);

#endif
