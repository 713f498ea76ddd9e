/*
 * psi_answer.h - the answering side of PSI in the federation handler.
 *
 *   SnapshotRequest -> SnapshotChunk  the current snapshot of a list, or the
 *        delta from the asker's epoch when it holds the previous epoch of the
 *        same generation (checked by digest), or an empty answer (chunk_count
 *        0) when it is already current. Chunks are cut (bg_snap_chunk) to fit
 *        the roster's max_message_bytes less envelope overhead, or the asker's
 *        smaller max_chunk_bytes; chunk 0 carries the city's signature over
 *        the digest. A later chunk of an epoch no longer current is refused
 *        (BG_GW_E_STALE_EPOCH): the asker starts over.
 *   PsiQuery -> PsiAnswer  after: the roster allows (asker, us, purpose,
 *        list) (for "grades": the purpose is allowed for at least one of our
 *        lists), the purpose's authorisation reference if it needs one, the
 *        asked epoch is current (bg_snap_require_current), the asker's items
 *        today stay within quota_items_per_day (kept across restarts, see
 *        quota.h; the rules are policy.h). Count mode needs the whole batch in ONE message
 *        (chunk_count 1) of at least min_count_batch items, so it is
 *        evaluated and shuffled as a whole; at the default 4 MiB messages that
 *        is up to ~130k items per batch (the asker splits larger sets).
 *   StatusListRequest -> StatusListAnswer  our signed status list (psi_pub), whole.
 * Refusals are ErrorAnswers with the codes of gw.h (>= 107). Logged: peer,
 * purpose, list, generation, epoch, mode, item counts; never elements.
 */
#ifndef BG_PSI_ANSWER_H
#define BG_PSI_ANSWER_H

#include "gateway/daemon/evidence.h"
#include "peers/envelope.h"
#include "peers/transport.h"

struct bg_gw;

/* Federation handlers for PSI_BODY_SNAPSHOT_REQUEST and PSI_BODY_QUERY. */
/* ev: the exchange's evidence, noted (list, epoch, items, outcome) as it is handled. */
void psi_answer_snapshot(struct bg_gw *gw, gw_ev *ev, const bg_env_opened *o, bg_tp_request *req);
void psi_answer_query(struct bg_gw *gw, gw_ev *ev, const bg_env_opened *o, bg_tp_request *req);
/* StatusListRequest -> StatusListAnswer: our signed status list, to any roster member. */
void psi_answer_status(struct bg_gw *gw, gw_ev *ev, const bg_env_opened *o, bg_tp_request *req);

#endif
