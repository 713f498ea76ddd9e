/*
 * psi_pub.h - the answering side's publications: one OPRF key per (list,
 * generation) and, per list, the current snapshot (mpc/snapshot.h) with its
 * signed digest and the delta from the previous epoch.
 *
 * Lists: every list the city offers in the roster ("serious-dishonesty",
 * "abnormal-operation"), plus the pseudo-list "grades" (BG_LIST_GRADES): a
 * graded snapshot of the store's evaluations whose sealed payload carries
 * grade, scale, evaluated_at, valid_until and serial (the store's record
 * serial: unique, new when the record changes; attestations carry it and
 * status lists revoke it). Askers get grades by querying "grades" in graded
 * mode; the roster has no "grades" list, so psi_answer grants it to an asker
 * that may ask this city anything for the purpose (see psi_answer.h).
 *
 * Keys: 32 random bytes (bg_oprf_keygen) in <data-dir>/psi-keys/<list>.<gen>.key,
 * mode 0600 in a 0700 directory, written atomically (temp, fsync, rename,
 * fsync dir); the store's psi_keys table records which generations exist.
 * Files rather than a store column because the credit store is the city's
 * data, routinely copied (backups, audits); a key must be handled like
 * city.key instead. In memory keys sit in sodium_malloc'd buffers (guard
 * pages, wiped when freed); stack copies are wiped after use.
 *
 * Expiry: a list entry whose expires_at day has come is left out of the
 * snapshot (bg_list_entry_in_force); the builder rebuilds when the day
 * changes, so an expired entry stops matching from that day's new epoch.
 *
 * Epochs: strictly increasing per list across generations and restarts
 * (store table psi_epochs). A builder thread checks the store when poked
 * (bg_pub_poke, from bg_gw_tick) and at least every few seconds: when the
 * newest import id changed (an import by `baygate import` committed), a
 * rotation was asked for, or nothing is published yet, it rebuilds every
 * list, signs each digest with the city key (BG_SIG_CTX_SNAPSHOT) and swaps
 * the publication in under a lock. A rebuild whose (generation, import, digest)
 * equals the last recorded epoch keeps that epoch number (a restart does not
 * invalidate askers' caches). The delta from the previous epoch is kept in
 * memory only (after a restart askers fetch in full once).
 *
 * Readers (the answerer's threads) take a reference (bg_pub_get) and drop it
 * (bg_pub_snap_release); a publication is immutable and freed by its last
 * reference, so a swap never disturbs an answer in flight.
 */
#ifndef BG_PSI_PUB_H
#define BG_PSI_PUB_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "certs/sig.h"
#include "common/err.h"
#include "domain/list.h"
#include "mpc/snapshot.h"

#define BG_PUB_LISTS (BG_LIST_COUNT + 1) /* the offered lists and "grades" */

typedef struct bg_pub bg_pub;

/* One published (list, generation, epoch): immutable, reference counted. */
typedef struct bg_pub_snap {
    atomic_int refs;
    char list[BG_SNAP_LIST_MAX + 1];
    bg_snap *snap;
    bg_snap_info info;
    uint8_t sig[BG_SIG_MAX]; /* the city's signature over info.digest */
    size_t sig_len;
    uint8_t signer[BG_SIG_FP_LEN]; /* fingerprint of the certificate whose key made sig */
    bg_snap_delta *delta;          /* from the previous epoch of the same generation, or NULL */
    bg_snap_info delta_info;
    uint8_t *sk;              /* the generation's OPRF key (sodium_malloc'd, 32 bytes) */
    int64_t published_ms;     /* when it was installed (wall clock) */
    struct bg_pub_snap *base; /* re-signed under a new key: snap, delta and sk are base's */
} bg_pub_snap;

/*
 * Starts the builder for the store in data_dir of city (the store may not
 * exist yet: then nothing is published until an import creates it). key
 * signs digests and status lists, cert goes with the status lists (the
 * publisher takes its own references). offered: the lists the roster says
 * this city offers (bg_pub_set_offered changes them).
 */
int bg_pub_start(bg_pub **out, const char *data_dir, const char *city, EVP_PKEY *key, X509 *cert,
                 const bool offered[BG_LIST_COUNT], bg_err *err);

/*
 * The city's current signed status list (gateway/attest: the evaluation serials its
 * imports revoked, from the store), re-signed whenever "grades" is published: a copy
 * in *out (free() it). BG_ENOTFOUND before the first one.
 */
int bg_pub_status(bg_pub *p, uint8_t **out, size_t *len, bg_err *err);

/* Wakes the builder to check the store for a new import now. */
void bg_pub_poke(bg_pub *p);

/* The roster changed: lists offered from now on (a withdrawn list stops being served). */
void bg_pub_set_offered(bg_pub *p, const bool offered[BG_LIST_COUNT]);

/*
 * The city's certificate was rotated: key and cert (references taken) sign from now
 * on. The builder re-signs what is published (same epochs: askers' caches stay good)
 * and the status list; until then a publication says, in signer, which certificate
 * signed it, so an answer carrying it can go out under that certificate.
 */
int bg_pub_set_identity(bg_pub *p, EVP_PKEY *key, X509 *cert, bg_err *err);

/* Asks for a new key generation of list (a list name or "grades"), built in the
 * background; the new generation's first epoch replaces the current one. */
int bg_pub_rotate(bg_pub *p, const char *list, bg_err *err);

/* The current publication of list (a reference), or NULL if there is none. */
bg_pub_snap *bg_pub_get(bg_pub *p, const char *list);
/* Did the builder's last look at the store fail (it could not be read, or a list not
 * be published: a full disk, say)? So a refusal of what is not published says why. */
bool bg_pub_failing(bg_pub *p);
void bg_pub_snap_release(bg_pub_snap *s);

/* Index of a publishable list name (0..BG_PUB_LISTS-1), or -1. */
int bg_pub_list_index(const char *name);

/* Waits (up to timeout_ms) until every offered list is published: for tests. */
bool bg_pub_wait_ready(bg_pub *p, int timeout_ms);

/* Stops the builder (waits for a build in progress) and frees. NULL is ignored. */
void bg_pub_stop(bg_pub *p);

#endif
