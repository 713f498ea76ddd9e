/*
 * snapdisk.h - the asking side's snapshot cache kept on disk, so that a restart does
 * not fetch every peer's snapshots again in full (a graded list of 4M enterprises is
 * hundreds of MiB per peer): after a restart the first sync sends what we hold and
 * gets "current" or a delta.
 *
 * In DATA/snapshots/, per (peer city, list): CITY-LIST.snap, the snapshot as the
 * stream a peer sends (its chunks, each with its length), and CITY-LIST.sig, the
 * city's signature over the snapshot's digest with the certificate that made it.
 * Both are written to a temporary name, synced and renamed, mode 0600, so a crash
 * leaves the old pair or the new one. Nothing on disk is trusted: a load checks,
 * as a sync from the peer would, that the certificate is a current federation
 * certificate of that city (trust, CRL) pinned by the roster in use, that it signed
 * the digest, and that the stream is the one the digest names (the mpc reader),
 * under the same entry bound (GW_PSI_CACHE_MAX_ENTRIES). A pair that fails any check
 * is removed and the snapshot fetched again.
 */
#ifndef BG_SNAPDISK_H
#define BG_SNAPDISK_H

#include <stddef.h>
#include <stdint.h>

#include "certs/trust.h"
#include "common/err.h"
#include "gateway/config/config.h"
#include "gateway/daemon/cache.h"
#include "peers/roster.h"

#define GW_SNAPDISK_DIR BG_CONFIG_SNAPSHOTS_DIR
/* Chunk size of the stream on disk: the reader's memory is one chunk at a time. */
#define GW_SNAPDISK_CHUNK (4U * 1024 * 1024)

/* Writes c (a verified snapshot of city's list, c->info.list) and its signature with
 * the certificate cert (DER) under data_dir. */
int gw_snapdisk_save(const char *data_dir, const char *city, const gw_cached *c,
                     const uint8_t *cert, size_t cert_len, bg_err *err);
/* Rewrites only the signature file: the city signed the same digest again. */
int gw_snapdisk_save_sig(const char *data_dir, const char *city, const char *list,
                         const uint8_t *sig, size_t sig_len, const uint8_t *cert, size_t cert_len,
                         bg_err *err);

/* The snapshot of (city, list) kept under data_dir, checked (above) with trust and
 * roster now: *out a new gw_cached with one reference. BG_ENOTFOUND: none kept; any
 * other error: the pair was refused (err says which check) and removed. */
int gw_snapdisk_load(const char *data_dir, const char *city, const char *list, bg_trust *trust,
                     const bg_roster *roster, gw_cached **out, bg_err *err);

#endif
