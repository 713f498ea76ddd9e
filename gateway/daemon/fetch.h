/*
 * fetch.h - the asking side's snapshot fetches in flight: per fetch the peer, the list,
 * the epoch being built, whether it is a delta, and how far it is (chunks and stream
 * bytes, of how many), so that status can say what a long first query is waiting for.
 * Written by the sync (psi_sync.c) as chunks arrive, read by the local API's status;
 * thread-safe. At most GW_FETCH_MAX at once: a fetch beyond that still runs, it is only
 * not shown (gw_fetch_begin gives -1, which the other calls ignore).
 */
#ifndef BG_FETCH_H
#define BG_FETCH_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "domain/city.h"
#include "mpc/snapshot.h"
#include "peers/roster.h"

/* Every peer's every list, twice (two local queries syncing the same one at once). */
#define GW_FETCH_MAX (BG_ROSTER_MAX_MEMBERS * 8)

typedef struct gw_fetch {
    char city[BG_CITY_CODE_LEN + 1];
    char list[BG_SNAP_LIST_MAX + 1];
    uint64_t generation, epoch;
    bool delta;
    uint32_t chunks, chunks_received;
    uint64_t bytes, bytes_received; /* of the stream, without chunk headers */
    int64_t started_ms;             /* bg_clock_ms: when the first chunk came */
} gw_fetch;

typedef struct gw_fetches {
    pthread_mutex_t lock;
    gw_fetch e[GW_FETCH_MAX];
    bool used[GW_FETCH_MAX];
} gw_fetches;

void gw_fetches_init(gw_fetches *t);
void gw_fetches_destroy(gw_fetches *t);

/* A fetch whose first chunk came (f: what it announced, f->started_ms set here): its
 * slot, or -1 when the table is full. */
int gw_fetch_begin(gw_fetches *t, const gw_fetch *f);
/* One more chunk of stream_bytes came for slot. */
void gw_fetch_progress(gw_fetches *t, int slot, uint64_t stream_bytes);
/* The fetch of slot is over (built, refused or abandoned). */
void gw_fetch_end(gw_fetches *t, int slot);
/* Up to cap fetches in flight, oldest first; how many. */
size_t gw_fetch_list(gw_fetches *t, gw_fetch *out, size_t cap);

#endif
