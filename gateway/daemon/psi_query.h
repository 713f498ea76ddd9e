/*
 * psi_query.h - the asking side of PSI: the local API's Query.
 *
 * The gateway validates every id the user gave (bg_uscc_parse: invalid ones
 * are reported with the reason and never leave the gateway), removes
 * duplicates, then asks every chosen peer at once (a thread per peer):
 *   1. its snapshot of the list is brought up to date: SnapshotRequest with
 *      what we hold; nothing to fetch, a delta, or the full snapshot; the
 *      digest is checked against the city's signature (the answer envelope's
 *      certificate, verified by the envelope layer and cached by bg_trust;
 *      BG_SIG_CTX_SNAPSHOT) and the stream against the digest (mpc reader);
 *   2. PSI in chunks sized to the roster's max_message_bytes (count: one
 *      message), each answer checked against the asked (list, generation,
 *      epoch, batch, chunk) and finished against the cached snapshot. If the
 *      peer says our epoch is stale (it published meanwhile), the snapshot is
 *      refreshed and the query run again once.
 * One peer failing (down, refusing) is reported for that peer only.
 *
 * Cache: per (peer, list) the last verified snapshot, in memory, reference
 * counted (a query in flight keeps the one it uses); at most
 * GW_PSI_CACHE_MAX_ENTRIES entries per snapshot are accepted from a peer.
 */
#ifndef BG_PSI_QUERY_H
#define BG_PSI_QUERY_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "certs/pki.h"
#include "certs/sig.h"
#include "mpc/snapshot.h"
#include "peers/roster.h"

#define GW_PSI_CACHE_MAX_ENTRIES (1U << 22)
#define GW_QUERY_MAX_IDS (1U << 21)
#define GW_QUERY_INVALID_SHOWN 1000

/* A peer's snapshot as we hold it, with the signature over its digest (what an
 * attestation of one of its entries carries). Immutable once cached. */
typedef struct gw_cached {
    atomic_int refs;
    bg_snap *snap;
    bg_snap_info info;
    uint8_t sig[BG_SIG_MAX];
    size_t sig_len;
} gw_cached;

typedef struct gw_cache {
    pthread_mutex_t lock;
    struct {
        char city[BG_CITY_CODE_LEN + 1];
        char list[BG_SNAP_LIST_MAX + 1];
        gw_cached *c;
    } e[BG_ROSTER_MAX_MEMBERS * 4];
    size_t n;
    /* The newest status list number seen per peer: an older one is refused (rollback). */
    struct {
        char city[BG_CITY_CODE_LEN + 1];
        uint64_t number;
    } status[BG_ROSTER_MAX_MEMBERS];
    size_t nstatus;
} gw_cache;

void gw_cache_init(gw_cache *c);
void gw_cache_destroy(gw_cache *c);

struct bg_gw;
struct Baygate__LocalQuery;

/* Runs a local query and returns the packed LocalAnswer (malloc'd; NULL if out of memory). */
uint8_t *psi_local_query(struct bg_gw *gw, const struct Baygate__LocalQuery *lq, size_t *out_len);

#endif
