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
 * One peer failing (down, refusing) is reported for that peer only. A peer that is not
 * connected gets a TCP probe first and one found down is left out for a while (backoff,
 * core.h gw_peer_admit), so a dead peer costs the query no request timeout.
 * A list or purpose the roster does not know is refused before anything is sent.
 *
 * Step 1 is psi_sync.h, step 2 psi_run.h, a peer's job psi_job.h; the peers'
 * snapshots are kept in the cache (cache.h).
 */
#ifndef BG_PSI_QUERY_H
#define BG_PSI_QUERY_H

#include <stddef.h>
#include <stdint.h>

#define GW_QUERY_MAX_IDS (1U << 21)
#define GW_QUERY_INVALID_SHOWN 1000

struct bg_gw;
struct Baygate__LocalQuery;

/* Runs a local query and returns the packed LocalAnswer (malloc'd; NULL if out of memory). */
uint8_t *psi_local_query(struct bg_gw *gw, const struct Baygate__LocalQuery *lq, size_t *out_len);

#endif
