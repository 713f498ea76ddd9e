/*
 * psi.h - private set intersection steps on RFC 9497 OPRFs and list snapshots
 * (snapshot.h): pure functions over buffers; no store, no socket, no logging.
 *
 * Modes (the values are proto/psi.proto's PsiMode):
 *   membership  which of my inputs are on your list L?   asker learns per input
 *   graded      the same, plus each match's sealed payload (grade, dates, serial)
 *   count       how many of my inputs are on L?           asker learns only a number
 *
 * Asker:  q = bg_psi_query_new(mode, inputs) (repeated inputs are asked once, results
 *         still per input); for each chunk [first, first + count) of bg_psi_query_items:
 *         bg_psi_prepare -> blinded elements (send), then bg_psi_finish with the answer
 *         and the cached snapshot of (L, epoch). Membership/graded: a fresh blind per item,
 *         answers in asked order, chunks independent (any order, any size). Count: ONE
 *         blind r for the batch (B_i = r*H(x_i)); the answer comes back shuffled and is
 *         fed in order of arrival; the asker unblinds with r^-1, tags, counts.
 * Answerer: bg_psi_evaluate (membership/graded, per chunk) or bg_psi_evaluate_count (the
 *         whole batch at once: it shuffles across all of it). Both refuse a length that
 *         is not a multiple of 32, an empty batch, more items than max_items (the quota:
 *         BG_ELIMIT) and any element that is not a canonical non-identity ristretto255
 *         encoding (BG_EPROTO, naming the index only); count also refuses fewer than
 *         min_items (BG_ELIMIT). The answerer sees only uniformly random points and how
 *         many; error messages carry indexes, never element bytes.
 *
 * What each side learns: the answerer, the number of (distinct) items asked; the asker,
 * the list's size (from the snapshot) and, per its own input, membership (+ payload), or
 * in count mode only the number of its distinct inputs on the list. Count-only privacy
 * holds against an asker that follows the protocol: one that blinds each item with its own
 * r_i could undo the shuffle by trial (it holds every tag). Policy should grant count-only
 * access only to askers who are not entitled to membership where that matters, and
 * bound batches by quota; the gateway signs and logs which batch sizes each peer asked.
 * False positives: <= n/2^64 per asked item for a list of n (snapshot.h); in graded mode
 * a tag hit whose payload does not open counts as no match (bg_psi_unopened).
 *
 * Costs: prepare 1 hash-to-group + 1 scalar mult per item; evaluate 1 check + 1 mult;
 * finish 1 mult (+ batched inversion) + 1 hash + O(log n) lookup; all parallel on
 * nthreads (0 = all online CPUs). Memory: the asker keeps 32 (input) + 32 (blind) +
 * ~16 bytes per distinct input and a record per match in graded mode; wire buffers
 * are per chunk (count * 32 bytes). The answerer holds one chunk (count: one batch).
 * Secrets (blinds, r, r^-1, unblinded elements, inputs) are wiped: blinds as soon as
 * their chunk is finished, the rest by bg_psi_query_free.
 */
#ifndef BG_PSI_H
#define BG_PSI_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "mpc/oprf.h"
#include "mpc/snapshot.h"

enum { BG_PSI_MEMBERSHIP = 1, BG_PSI_GRADED = 2, BG_PSI_COUNT = 3 };

#define BG_PSI_MAX_ITEMS (1U << 24) /* per query (asker) and per batch (answerer) */

typedef struct bg_psi_query bg_psi_query;

/* Elements that fit in max_bytes of payload: max_bytes / 32, at most BG_PSI_MAX_ITEMS. */
size_t bg_psi_chunk_items(size_t max_bytes);

/* ---- asker ---- */

/*
 * A query over n inputs (1..BG_SNAP_INPUT_MAX bytes each, 1 <= n <= BG_PSI_MAX_ITEMS),
 * copied into the query. BG_EINVAL names the first bad input.
 */
int bg_psi_query_new(bg_psi_query **out, int mode, const uint8_t *const *inputs,
                     const size_t *input_lens, size_t n, bg_err *err);

/* Items to send (distinct inputs): the batch size the answerer sees. */
size_t bg_psi_query_items(const bg_psi_query *q);

/*
 * blinded[0..count) = the blinded elements of items [first, first + count) (32 bytes
 * each). Membership/graded draw a fresh blind per item, once: an item already prepared
 * is refused (BG_EINVAL; to retry a lost round trip, resend the same blinded bytes).
 * Count uses the query's one blind (deterministic, may be repeated).
 */
int bg_psi_prepare(bg_psi_query *q, size_t first, size_t count, uint8_t *blinded, unsigned nthreads,
                   bg_err *err);

/*
 * Takes the answer for items [first, first + count): evaluated_len must be count * 32.
 * Membership/graded: the answer to exactly the prepared range (BG_EINVAL if not prepared
 * or already finished); count: first must be the number of answer items already taken.
 * snap is the asker's cached snapshot of the (list, epoch) the query was sent for; every
 * chunk of a query must use the same one (BG_EINVAL otherwise; graded needs a graded
 * snapshot). A bad evaluated element is BG_EPROTO and nothing of the chunk is kept.
 */
int bg_psi_finish(bg_psi_query *q, const bg_snap *snap, size_t first, size_t count,
                  const uint8_t *evaluated, size_t evaluated_len, unsigned nthreads, bg_err *err);

/* 1 once every item has been answered. */
int bg_psi_query_done(const bg_psi_query *q);

/*
 * Membership/graded: the result for input i (0..n-1, as given to bg_psi_query_new):
 * *matched = 1 or 0; rec (may be NULL) gets the opened payload of a graded match, zeros
 * otherwise. BG_EINVAL if i is not yet answered or the mode is count.
 */
int bg_psi_result(const bg_psi_query *q, size_t i, int *matched, bg_snap_record *rec, bg_err *err);

/*
 * Graded: for input i that matched and opened, *index = the snapshot entry it opened from
 * and key = that entry's opening key (mpc/snapshot.h: opens that entry alone; what an
 * attestation discloses). BG_ENOTFOUND if i has no opened match. Wipe key after use.
 */
int bg_psi_result_entry(const bg_psi_query *q, size_t i, size_t *index,
                        uint8_t key[BG_SNAP_OPENKEYBYTES], bg_err *err);

/* Count: the number of distinct inputs on the list, once done (else BG_EINVAL). */
int bg_psi_count(const bg_psi_query *q, size_t *matches, bg_err *err);

/* Graded: tag hits whose payload did not open (false positives or tampering). */
size_t bg_psi_unopened(const bg_psi_query *q);

/* Wipes and frees. */
void bg_psi_query_free(bg_psi_query *q);

/* ---- answerer ---- */

/*
 * evaluated[i] = sk * elements[i] for n = elements_len / 32 items, in order; 1 <= n <=
 * max_items. evaluated holds n * 32 bytes and may be elements.
 */
int bg_psi_evaluate(uint8_t *evaluated, const uint8_t sk[BG_OPRF_SCALARBYTES],
                    const uint8_t *elements, size_t elements_len, size_t max_items,
                    unsigned nthreads, bg_err *err);

/*
 * Count mode: the same over the whole batch, min_items <= n <= max_items, then a uniform
 * shuffle of the answers (Fisher-Yates with randombytes_uniform).
 */
int bg_psi_evaluate_count(uint8_t *evaluated, const uint8_t sk[BG_OPRF_SCALARBYTES],
                          const uint8_t *elements, size_t elements_len, size_t min_items,
                          size_t max_items, unsigned nthreads, bg_err *err);

#endif
