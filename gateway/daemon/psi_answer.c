/*
 * psi_answer.c - SnapshotRequest and PsiQuery from peers (see psi_answer.h).
 */
#include "gateway/daemon/psi_answer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "domain/list.h"
#include "gateway/daemon/codes.h"
#include "gateway/daemon/core.h"
#include "gateway/daemon/log.h"
#include "gateway/daemon/policy.h"
#include "gateway/daemon/psi_pub.h"
#include "mpc/psi.h"
#include "proto/pb.h"
#include "proto/psi.pb-c.h"

/* Every PSI refusal is logged as psi.refused (peer, purpose, code, reason). */
#define refuse(gw, ev, o, req, code, ...)                                                          \
    gw_refuse(gw, ev, o, req, code, "psi.refused", __VA_ARGS__)

/* May o's sender ask us about list for o's purpose (policy.h)? */
static bool
permitted(bg_gw *gw, const bg_env_opened *o, const char *list, bg_roster_verdict *v)
{
    return gw_policy_permitted(gw, o->sender, o->purpose, o->authorisation_ref_len > 0, list, v);
}

/* The list name of a request: one we publish, else refused. */
static bool
list_ok(bg_gw *gw, gw_ev *ev, const bg_env_opened *o, bg_tp_request *req, const char *list)
{
    if (list == NULL || bg_pub_list_index(list) < 0) {
        char safe[80];
        refuse(gw, ev, o, req, BG_GW_E_UNKNOWN_LIST, "'%s' is not a list",
               bg_log_safe(list ? list : "", list ? strnlen(list, 64) : 0, safe, sizeof safe));
        return false;
    }
    return true;
}

/* Is o's sender permitted to ask about list (v: the permission), and has list a
 * publication (a reference)? NULL: refused. */
static bg_pub_snap *
published(bg_gw *gw, gw_ev *ev, const bg_env_opened *o, bg_tp_request *req, const char *list,
          bg_roster_verdict *v)
{
    if (!permitted(gw, o, list, v)) {
        refuse(gw, ev, o, req, BG_GW_E_NOT_ALLOWED, "%s", v->reason);
        return NULL;
    }
    bg_pub_snap *ps = bg_pub_get(gw->pub, list);
    if (ps == NULL && bg_pub_failing(gw->pub))
        refuse(gw, ev, o, req, BG_GW_E_NOT_PUBLISHED,
               "%s has not published %s: reading or writing its store failed (a full or "
               "failing disk; its operator's log says why)",
               gw->cfg.city, list);
    else if (ps == NULL)
        refuse(gw, ev, o, req, BG_GW_E_NOT_PUBLISHED, "%s has not published %s yet", gw->cfg.city,
               list);
    return ps;
}

/* The largest chunk we cut for sr: the federation's messages less overhead, or the
 * asker's smaller max_chunk_bytes, never below BG_SNAP_CHUNK_MIN. */
static size_t
snap_max_chunk(bg_gw *gw, const Baygate__SnapshotRequest *sr)
{
    size_t max_msg = gw_max_message(gw);
    size_t max_chunk = max_msg > GW_PSI_OVERHEAD + BG_SNAP_CHUNK_MIN ? max_msg - GW_PSI_OVERHEAD
                                                                     : BG_SNAP_CHUNK_MIN;
    if (sr->max_chunk_bytes != 0 && sr->max_chunk_bytes < max_chunk)
        max_chunk =
            sr->max_chunk_bytes < BG_SNAP_CHUNK_MIN ? BG_SNAP_CHUNK_MIN : sr->max_chunk_bytes;
    return max_chunk;
}

/* What sr gets of ps: nothing (*current: it holds ps), the delta from what it holds, or
 * the whole; a later chunk only of the epoch still current. false: refused (stale). */
static bool
snap_plan(bg_gw *gw, gw_ev *ev, const bg_env_opened *o, bg_tp_request *req,
          const Baygate__SnapshotRequest *sr, const bg_pub_snap *ps, bool *current, bool *delta)
{
    bool have_digest = sr->have_digest.len == BG_SNAP_DIGESTBYTES;
    *current = have_digest && sr->have_generation == ps->info.generation &&
               sr->have_epoch == ps->info.epoch &&
               sodium_memcmp(sr->have_digest.data, ps->info.digest, BG_SNAP_DIGESTBYTES) == 0;
    if (sr->want_epoch == 0) {
        *delta = ps->delta != NULL && have_digest && sr->have_generation == ps->info.generation &&
                 sr->have_epoch == ps->delta_info.from_epoch &&
                 sodium_memcmp(sr->have_digest.data, ps->delta_info.from_digest,
                               BG_SNAP_DIGESTBYTES) == 0;
        return true;
    }
    if (sr->want_epoch != ps->info.epoch || (sr->want_delta && ps->delta == NULL)) {
        refuse(gw, ev, o, req, BG_GW_E_STALE_EPOCH,
               "%s epoch %llu is no longer current (now %llu): fetch again", sr->list,
               (unsigned long long)sr->want_epoch, (unsigned long long)ps->info.epoch);
        return false;
    }
    *delta = sr->want_delta;
    *current = false;
    return true;
}

/* Cuts chunk sr->chunk_index of the delta or the whole of ps into sc (its data in
 * *chunk, the caller's to free; *count chunks in all). false: refused. */
static bool
snap_cut(bg_gw *gw, gw_ev *ev, const bg_env_opened *o, bg_tp_request *req,
         const Baygate__SnapshotRequest *sr, const bg_pub_snap *ps, bool delta,
         Baygate__SnapshotChunk *sc, uint8_t **chunk, size_t *count)
{
    size_t max_chunk = snap_max_chunk(gw, sr);
    bg_err err = {0};
    int rc = delta ? bg_snap_delta_chunk_count(ps->delta, max_chunk, count, &err)
                   : bg_snap_chunk_count(ps->snap, max_chunk, count, &err);
    if (rc != BG_OK) {
        refuse(gw, ev, o, req, BG_GW_E_INTERNAL, "cannot cut the snapshot: %s", err.msg);
        return false;
    }
    if (sr->chunk_index >= *count) {
        refuse(gw, ev, o, req, BG_GW_E_BAD_BODY, "chunk %u of %zu does not exist", sr->chunk_index,
               *count);
        return false;
    }
    *chunk = malloc(max_chunk);
    size_t chunk_len = 0;
    if (*chunk == NULL) {
        refuse(gw, ev, o, req, BG_GW_E_INTERNAL, "out of memory");
        return false;
    }
    rc = delta ? bg_snap_delta_chunk(ps->delta, max_chunk, sr->chunk_index, *chunk, max_chunk,
                                     &chunk_len, &err)
               : bg_snap_chunk(ps->snap, max_chunk, sr->chunk_index, *chunk, max_chunk, &chunk_len,
                               &err);
    if (rc != BG_OK) {
        refuse(gw, ev, o, req, BG_GW_E_INTERNAL, "cannot cut the snapshot: %s", err.msg);
        return false;
    }
    sc->delta = delta;
    sc->from_epoch = delta ? ps->delta_info.from_epoch : 0;
    sc->chunk_index = sr->chunk_index;
    sc->chunk_count = (uint32_t)*count;
    sc->data.data = *chunk;
    sc->data.len = chunk_len;
    return true;
}

/* Answers sr with chunk sc of ps (or the bare header when the asker is current). */
static void
snap_reply(bg_gw *gw, gw_ev *ev, const bg_env_opened *o, bg_tp_request *req, const bg_pub_snap *ps,
           Baygate__SnapshotChunk *sc, const char *kind, size_t count)
{
    if (sc->chunk_index == 0) {
        sc->digest_signature.data = (uint8_t *)ps->sig;
        sc->digest_signature.len = ps->sig_len;
    }
    size_t len = baygate__snapshot_chunk__get_packed_size(sc);
    uint8_t *body = malloc(len ? len : 1);
    if (body == NULL) {
        refuse(gw, ev, o, req, BG_GW_E_INTERNAL, "out of memory");
        return;
    }
    baygate__snapshot_chunk__pack(sc, body);
    if (sc->chunk_index == 0)
        bg_log(BG_LOG_INFO, "psi.snapshot_served",
               "peer=%s purpose=%s list=%s generation=%llu epoch=%llu kind=%s chunks=%zu "
               "entries=%zu",
               o->sender, o->purpose[0] ? o->purpose : "-", ps->list,
               (unsigned long long)ps->info.generation, (unsigned long long)ps->info.epoch, kind,
               count, ps->info.count);
    gw_ev_note(ev, ps->list, ps->info.epoch, 0, 0);
    /* Under the certificate whose key signed the digest (the asker checks the signature
     * with the one the answer carries): right after a rotation, until the publication
     * is signed again, that is the previous one. */
    gw_ident *me = gw_ident_get_fp(gw, ps->signer);
    gw_answer_as(gw, me, ev, o, req, BAYGATE__PSI_BODY__PSI_BODY_SNAPSHOT_CHUNK, body, len);
    gw_ident_release(me);
    free(body);
}

void
psi_answer_snapshot(bg_gw *gw, gw_ev *ev, const bg_env_opened *o, bg_tp_request *req)
{
    Baygate__SnapshotRequest *sr =
        bg_pb_unpack(&baygate__snapshot_request__descriptor, o->body_len, o->body);
    bg_pub_snap *ps = NULL;
    bg_roster_verdict v;
    uint8_t *chunk = NULL;
    if (sr == NULL) {
        refuse(gw, ev, o, req, BG_GW_E_BAD_BODY, "snapshot request does not parse");
        return;
    }
    if (!list_ok(gw, ev, o, req, sr->list))
        goto done;
    gw_ev_note(ev, sr->list, sr->want_epoch, 0, 0);
    if ((ps = published(gw, ev, o, req, sr->list, &v)) == NULL)
        goto done;
    bool current = false, delta = false;
    if (!snap_plan(gw, ev, o, req, sr, ps, &current, &delta))
        goto done;
    Baygate__SnapshotChunk sc = BAYGATE__SNAPSHOT_CHUNK__INIT;
    sc.list = ps->list;
    sc.generation = ps->info.generation;
    sc.epoch = ps->info.epoch;
    sc.digest.data = ps->info.digest;
    sc.digest.len = BG_SNAP_DIGESTBYTES;
    size_t count = 0;
    if (!current && !snap_cut(gw, ev, o, req, sr, ps, delta, &sc, &chunk, &count))
        goto done;
    snap_reply(gw, ev, o, req, ps, &sc, current ? "current" : delta ? "delta" : "full", count);
done:
    free(chunk);
    bg_pub_snap_release(ps);
    bg_pb_free(sr);
}

/* The query's shape: mode, batch id, elements, chunking, count rules (permission v).
 * false: refused before any work. */
static bool
query_valid(bg_gw *gw, gw_ev *ev, const bg_env_opened *o, bg_tp_request *req,
            const Baygate__PsiQuery *q, const bg_pub_snap *ps, const bg_roster_verdict *v)
{
    int mode = (int)q->mode;
    size_t len = q->elements.len, n = len / BG_OPRF_ELEMENTBYTES;
    /* An answer is as large as its query plus a few bytes: a query that leaves no room
     * for them could never be answered, so it is refused before any work or charge. */
    size_t max_msg = gw_max_message(gw);
    size_t per = gw_psi_items_per_message(max_msg);
    if (mode != BG_PSI_MEMBERSHIP && mode != BG_PSI_GRADED && mode != BG_PSI_COUNT)
        refuse(gw, ev, o, req, BG_GW_E_BAD_MODE, "mode %d is not a PSI mode", mode);
    else if (mode == BG_PSI_GRADED && !ps->info.graded)
        refuse(gw, ev, o, req, BG_GW_E_BAD_MODE, "%s carries no grades: ask list '%s'", q->list,
               BG_LIST_GRADES);
    else if (q->batch_id.len != 16)
        refuse(gw, ev, o, req, BG_GW_E_BAD_BODY, "batch_id must be 16 bytes");
    else if (len == 0 || len % BG_OPRF_ELEMENTBYTES != 0)
        refuse(gw, ev, o, req, BG_GW_E_BAD_ELEMENTS,
               "elements must be 32*n bytes, n >= 1 (got %zu)", len);
    else if (n > per)
        refuse(gw, ev, o, req, BG_GW_E_BATCH,
               "%zu elements in one message; at most %zu fit an answer at max_message_bytes %zu", n,
               per, max_msg);
    else if (q->chunk_count == 0 || q->chunk_index >= q->chunk_count || q->batch_items < n ||
             (uint64_t)q->batch_items > (uint64_t)q->chunk_count * per ||
             (q->chunk_count == 1 && q->batch_items != n))
        refuse(gw, ev, o, req, BG_GW_E_BATCH, "chunk %u of %u with %zu of %u items is inconsistent",
               q->chunk_index, q->chunk_count, n, q->batch_items);
    else if (mode == BG_PSI_COUNT && (q->chunk_count != 1 || q->batch_items != n))
        refuse(gw, ev, o, req, BG_GW_E_BATCH,
               "a count batch must come in one message (got chunk %u of %u)", q->chunk_index,
               q->chunk_count);
    else if (mode == BG_PSI_COUNT && n < v->min_count_batch)
        refuse(gw, ev, o, req, BG_GW_E_BATCH,
               "count batch of %zu items is below the minimum of %u for %s", n, v->min_count_batch,
               o->sender);
    else
        return true;
    return false;
}

/* Checks the asker's quota, evaluates the elements and charges them (after they proved
 * valid, so a refused chunk costs the asker nothing). NULL: refused. */
static uint8_t *
query_evaluate(bg_gw *gw, gw_ev *ev, const bg_env_opened *o, bg_tp_request *req,
               const Baygate__PsiQuery *q, const bg_pub_snap *ps, const bg_roster_verdict *v,
               uint64_t *used)
{
    size_t len = q->elements.len, n = len / BG_OPRF_ELEMENTBYTES;
    bg_err err = {0};
    /* Over quota already: refused before any work. */
    if (gw_policy_quota(gw, o->sender, n, v, false, used, &err) != BG_OK) {
        refuse(gw, ev, o, req, BG_GW_E_QUOTA, "%s", err.msg);
        return NULL;
    }
    uint8_t *eval = malloc(len);
    if (eval == NULL) {
        refuse(gw, ev, o, req, BG_GW_E_INTERNAL, "out of memory");
        return NULL;
    }
    /* Two threads at most: requests are already served on a pool of handler threads. */
    int rc = (int)q->mode == BG_PSI_COUNT
                 ? bg_psi_evaluate_count(eval, ps->sk, q->elements.data, len, v->min_count_batch, n,
                                         2, &err)
                 : bg_psi_evaluate(eval, ps->sk, q->elements.data, len, n, 2, &err);
    if (rc != BG_OK) {
        refuse(gw, ev, o, req, rc == BG_ELIMIT ? BG_GW_E_BATCH : BG_GW_E_BAD_ELEMENTS, "%s",
               err.msg);
    } else if ((rc = gw_policy_quota(gw, o->sender, n, v, true, used, &err)) != BG_OK) {
        /* A charge the disk would not take is our failure, not the asker's quota. */
        refuse(gw, ev, o, req, rc == BG_ELIMIT ? BG_GW_E_QUOTA : BG_GW_E_INTERNAL, "%s", err.msg);
    } else {
        return eval;
    }
    free(eval);
    return NULL;
}

/* Answers q with the evaluated elements eval. */
static void
query_reply(bg_gw *gw, gw_ev *ev, const bg_env_opened *o, bg_tp_request *req,
            const Baygate__PsiQuery *q, const bg_pub_snap *ps, uint8_t *eval, uint64_t used)
{
    size_t len = q->elements.len, n = len / BG_OPRF_ELEMENTBYTES;
    Baygate__PsiAnswer pa = BAYGATE__PSI_ANSWER__INIT;
    pa.list = (char *)ps->list;
    pa.generation = ps->info.generation;
    pa.epoch = ps->info.epoch;
    pa.mode = q->mode;
    pa.batch_id = q->batch_id;
    pa.chunk_index = q->chunk_index;
    pa.chunk_count = q->chunk_count;
    pa.elements.data = eval;
    pa.elements.len = len;
    size_t blen = baygate__psi_answer__get_packed_size(&pa);
    uint8_t *body = malloc(blen);
    if (body == NULL) {
        refuse(gw, ev, o, req, BG_GW_E_INTERNAL, "out of memory");
        return;
    }
    baygate__psi_answer__pack(&pa, body);
    static const char *const modes[] = {"?", "membership", "graded", "count"};
    bg_log(BG_LOG_INFO, "psi.answered",
           "peer=%s purpose=%s list=%s generation=%llu epoch=%llu mode=%s chunk=%u/%u items=%zu "
           "batch_items=%u used_today=%llu",
           o->sender, o->purpose[0] ? o->purpose : "-", ps->list,
           (unsigned long long)ps->info.generation, (unsigned long long)ps->info.epoch,
           modes[q->mode], q->chunk_index + 1, q->chunk_count, n, q->batch_items,
           (unsigned long long)used);
    gw_ev_note(ev, q->list, q->epoch, (uint32_t)n, (uint32_t)n);
    /* An answer that never left costs the asker nothing (its evidence says not sent). */
    if (!gw_answer(gw, ev, o, req, BAYGATE__PSI_BODY__PSI_BODY_ANSWER, body, blen))
        gw_quota_refund(&gw->quota, o->sender, n);
    free(body);
}

void
psi_answer_query(bg_gw *gw, gw_ev *ev, const bg_env_opened *o, bg_tp_request *req)
{
    Baygate__PsiQuery *q = bg_pb_unpack(&baygate__psi_query__descriptor, o->body_len, o->body);
    bg_pub_snap *ps = NULL;
    uint8_t *eval = NULL;
    bg_roster_verdict v;
    bg_err err = {0};
    uint64_t used = 0;
    if (q == NULL) {
        refuse(gw, ev, o, req, BG_GW_E_BAD_BODY, "PSI query does not parse");
        return;
    }
    if (!list_ok(gw, ev, o, req, q->list))
        goto done;
    gw_ev_note(ev, q->list, q->epoch, (uint32_t)(q->elements.len / BG_OPRF_ELEMENTBYTES), 0);
    if ((ps = published(gw, ev, o, req, q->list, &v)) == NULL)
        goto done;
    if (bg_snap_require_current(ps->info.generation, ps->info.epoch, q->generation, q->epoch,
                                &err) != BG_OK) {
        refuse(gw, ev, o, req, BG_GW_E_STALE_EPOCH, "%s: %s", q->list, err.msg);
        goto done;
    }
    if (query_valid(gw, ev, o, req, q, ps, &v) &&
        (eval = query_evaluate(gw, ev, o, req, q, ps, &v, &used)) != NULL)
        query_reply(gw, ev, o, req, q, ps, eval, used);
done:
    free(eval);
    bg_pub_snap_release(ps);
    bg_pb_free(q);
}

void
psi_answer_status(bg_gw *gw, gw_ev *ev, const bg_env_opened *o, bg_tp_request *req)
{
    Baygate__StatusListRequest *sr =
        bg_pb_unpack(&baygate__status_list_request__descriptor, o->body_len, o->body);
    if (sr == NULL) {
        refuse(gw, ev, o, req, BG_GW_E_BAD_BODY, "status request does not parse");
        return;
    }
    bg_pb_free(sr);
    uint8_t *list = NULL, *body = NULL;
    size_t len = 0;
    bg_err err = {0};
    if (bg_pub_status(gw->pub, &list, &len, &err) != BG_OK) {
        refuse(gw, ev, o, req, BG_GW_E_NOT_PUBLISHED, "%s", err.msg);
        return;
    }
    Baygate__StatusListAnswer sa = BAYGATE__STATUS_LIST_ANSWER__INIT;
    sa.signed_status_list.data = list;
    sa.signed_status_list.len = len;
    size_t blen = baygate__status_list_answer__get_packed_size(&sa);
    if (blen + GW_PSI_OVERHEAD > gw_max_message(gw))
        refuse(gw, ev, o, req, BG_GW_E_INTERNAL,
               "the status list (%zu bytes) does not fit the federation's messages", len);
    else if ((body = malloc(blen)) == NULL)
        refuse(gw, ev, o, req, BG_GW_E_INTERNAL, "out of memory");
    else {
        baygate__status_list_answer__pack(&sa, body);
        gw_ev_note(ev, "status", 0, 0, 0);
        gw_answer(gw, ev, o, req, BAYGATE__PSI_BODY__PSI_BODY_STATUS_ANSWER, body, blen);
    }
    free(body);
    free(list);
}
