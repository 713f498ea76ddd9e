/*
 * psi_answer.c - SnapshotRequest and PsiQuery from peers (see psi_answer.h).
 */
#include "gateway/daemon/psi_answer.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <sodium.h>

#include "common/file.h"
#include "gateway/daemon/gw.h"
#include "gateway/daemon/gw_int.h"
#include "gateway/daemon/log.h"
#include "gateway/daemon/psi_pub.h"
#include "mpc/psi.h"
#include "proto/psi.pb-c.h"
#include "proto/pb.h"

#define QUOTA_FILE_MAX (BG_ROSTER_MAX_MEMBERS * 64)

void
gw_quota_init(gw_quota *q, const char *data_dir)
{
    memset(q, 0, sizeof *q);
    pthread_mutex_init(&q->lock, NULL);
    pthread_mutex_init(&q->file_lock, NULL);
    if (data_dir == NULL ||
        snprintf(q->path, sizeof q->path, "%s/quota", data_dir) >= (int)sizeof q->path) {
        q->path[0] = '\0';
        return;
    }
    if (mkdir(data_dir, 0700) != 0 && errno != EEXIST) /* before the first import */
        bg_log(BG_LOG_WARN, "quota.no_dir", "data_dir=%s error=\"%s\"", data_dir, strerror(errno));
    uint8_t *buf = NULL;
    size_t len = 0;
    bg_err err = {0};
    int rc = bg_file_read(q->path, QUOTA_FILE_MAX, &buf, &len, NULL, &err);
    if (rc == BG_ENOTFOUND)
        return;
    if (rc != BG_OK) {
        bg_log(BG_LOG_WARN, "quota.unreadable", "error=\"%s\" effect=\"counted from zero\"",
               err.msg);
        return;
    }
    /* Strict: a line that does not parse throws the whole file away, loudly. */
    char *text = (char *)buf, *save = NULL;
    size_t line = 0;
    bool bad = memchr(buf, '\0', len) != NULL;
    for (char *l = bad ? NULL : strtok_r(text, "\n", &save); l != NULL && !bad;
         l = strtok_r(NULL, "\n", &save)) {
        line++;
        char city[BG_CITY_CODE_LEN + 2];
        long long day;
        unsigned long long used;
        int end = 0;
        if (sscanf(l, "%7s %lld %llu%n", city, &day, &used, &end) != 3 || l[end] != '\0' ||
            strlen(city) != BG_CITY_CODE_LEN || q->n == BG_ROSTER_MAX_MEMBERS) {
            bad = true;
            break;
        }
        memcpy(q->used[q->n].city, city, BG_CITY_CODE_LEN + 1); /* length checked above */
        q->used[q->n].day = day;
        q->used[q->n].used = used;
        q->n++;
    }
    free(buf);
    if (bad) {
        bg_log(BG_LOG_WARN, "quota.unreadable",
               "path=%s line=%zu error=\"not 'city day used'\" effect=\"counted from zero\"",
               q->path, line);
        q->n = 0;
    }
}

void
gw_quota_destroy(gw_quota *q)
{
    pthread_mutex_destroy(&q->lock);
    pthread_mutex_destroy(&q->file_lock);
}

/* Writes the state of version v (text in buf) unless a newer one is already on disk. */
static bool
quota_persist(gw_quota *q, uint64_t v, const char *buf, size_t len)
{
    bool ok = true;
    pthread_mutex_lock(&q->file_lock);
    if (v > q->written) {
        bg_err err = {0};
        ok = bg_file_write_replace(q->path, buf, len, 0600, &err) == BG_OK;
        if (ok)
            q->written = v;
        else
            bg_log(BG_LOG_ERROR, "quota.not_saved", "error=\"%s\"", err.msg);
    }
    pthread_mutex_unlock(&q->file_lock);
    return ok;
}

/* Charges items to city for today (only checks, when !charge); false (nothing kept) if
 * that would pass limit or the charge could not be saved: an answer is never given on a
 * charge a restart would forget. */
static bool
quota_take(gw_quota *q, const char *city, uint64_t items, uint64_t limit, bool charge,
           uint64_t *used)
{
    int64_t day = (int64_t)(time(NULL) / 86400);
    bool ok = false;
    char buf[QUOTA_FILE_MAX];
    size_t len = 0;
    uint64_t v = 0;
    pthread_mutex_lock(&q->lock);
    size_t i = 0;
    while (i < q->n && strcmp(q->used[i].city, city) != 0)
        i++;
    if (i == q->n && q->n < BG_ROSTER_MAX_MEMBERS) {
        snprintf(q->used[i].city, sizeof q->used[i].city, "%s", city);
        q->used[i].day = day;
        q->used[i].used = 0;
        q->n++;
    }
    if (i < q->n) {
        if (q->used[i].day != day) {
            q->used[i].day = day;
            q->used[i].used = 0;
        }
        ok = items <= limit && q->used[i].used <= limit - items;
        if (ok && charge) {
            q->used[i].used += items;
            v = ++q->version;
            for (size_t k = 0; k < q->n; k++)
                len += (size_t)snprintf(buf + len, sizeof buf - len, "%s %lld %llu\n",
                                        q->used[k].city, (long long)q->used[k].day,
                                        (unsigned long long)q->used[k].used);
        }
        *used = q->used[i].used;
    }
    pthread_mutex_unlock(&q->lock);
    if (ok && charge && q->path[0] != '\0' && !quota_persist(q, v, buf, len)) {
        pthread_mutex_lock(&q->lock);
        q->used[i].used -= items; /* not saved: not charged, not answered */
        pthread_mutex_unlock(&q->lock);
        ok = false;
    }
    return ok;
}

size_t
gw_psi_items_per_message(size_t max_msg)
{
    size_t per = bg_psi_chunk_items(max_msg > 2 * GW_PSI_OVERHEAD ? max_msg - GW_PSI_OVERHEAD
                                                                  : GW_PSI_OVERHEAD);
    return per == 0 ? 1 : per;
}

/* Every PSI refusal is logged as psi.refused (peer, purpose, code, reason). */
#define refuse(gw, ev, o, req, code, ...)                                                          \
    gw_refuse(gw, ev, o, req, code, "psi.refused", __VA_ARGS__)

/*
 * May o's sender ask us about list for o's purpose? "grades" is not a roster
 * list: it is allowed when any of our lists is, with that permission's quota.
 */
static bool
permitted(bg_gw *gw, const bg_env_opened *o, const char *list, bg_roster_verdict *v)
{
    bg_roster *r = gw_roster_get(gw);
    bool ok = false;
    if (r == NULL) {
        memset(v, 0, sizeof *v);
        snprintf(v->reason, sizeof v->reason, "no roster");
    } else if (strcmp(list, BG_LIST_GRADES) != 0) {
        ok = bg_roster_permission(r, o->sender, gw->cfg.city, o->purpose, list, v);
    } else {
        for (int i = 0; i < BG_LIST_COUNT && !ok; i++)
            ok = bg_roster_permission(r, o->sender, gw->cfg.city, o->purpose, bg_list_names[i], v);
        if (!ok)
            snprintf(v->reason, sizeof v->reason,
                     "%s may not ask %s about grades for purpose '%.32s': no list is permitted",
                     o->sender, gw->cfg.city, o->purpose);
    }
    bg_roster_free(r);
    if (ok && v->needs_authorisation && o->authorisation_ref_len == 0) {
        snprintf(v->reason, sizeof v->reason,
                 "purpose '%.32s' needs an authorisation reference and none was given", o->purpose);
        v->allowed = ok = false;
    }
    return ok;
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

void
psi_answer_snapshot(bg_gw *gw, gw_ev *ev, const bg_env_opened *o, bg_tp_request *req)
{
    Baygate__SnapshotRequest *sr = bg_pb_unpack(&baygate__snapshot_request__descriptor, o->body_len, o->body);
    bg_pub_snap *ps = NULL;
    bg_roster_verdict v;
    uint8_t *chunk = NULL, *body = NULL;
    if (sr == NULL) {
        refuse(gw, ev, o, req, BG_GW_E_BAD_BODY, "snapshot request does not parse");
        goto done;
    }
    if (!list_ok(gw, ev, o, req, sr->list))
        goto done;
    gw_ev_note(ev, sr->list, sr->want_epoch, 0, 0);
    if (!permitted(gw, o, sr->list, &v)) {
        refuse(gw, ev, o, req, BG_GW_E_NOT_ALLOWED, "%s", v.reason);
        goto done;
    }
    ps = bg_pub_get(gw->pub, sr->list);
    if (ps == NULL) {
        refuse(gw, ev, o, req, BG_GW_E_NOT_PUBLISHED, "%s has not published %s yet", gw->cfg.city,
               sr->list);
        goto done;
    }

    size_t max_msg = gw_max_message(gw);
    size_t max_chunk = max_msg > GW_PSI_OVERHEAD + BG_SNAP_CHUNK_MIN ? max_msg - GW_PSI_OVERHEAD
                                                                     : BG_SNAP_CHUNK_MIN;
    if (sr->max_chunk_bytes != 0 && sr->max_chunk_bytes < max_chunk)
        max_chunk =
            sr->max_chunk_bytes < BG_SNAP_CHUNK_MIN ? BG_SNAP_CHUNK_MIN : sr->max_chunk_bytes;

    bool have_digest = sr->have_digest.len == BG_SNAP_DIGESTBYTES;
    bool current = have_digest && sr->have_generation == ps->info.generation &&
                   sr->have_epoch == ps->info.epoch &&
                   sodium_memcmp(sr->have_digest.data, ps->info.digest, BG_SNAP_DIGESTBYTES) == 0;
    bool delta;
    if (sr->want_epoch == 0) {
        delta = ps->delta != NULL && have_digest && sr->have_generation == ps->info.generation &&
                sr->have_epoch == ps->delta_info.from_epoch &&
                sodium_memcmp(sr->have_digest.data, ps->delta_info.from_digest,
                              BG_SNAP_DIGESTBYTES) == 0;
    } else {
        if (sr->want_epoch != ps->info.epoch || (sr->want_delta && ps->delta == NULL)) {
            refuse(gw, ev, o, req, BG_GW_E_STALE_EPOCH,
                   "%s epoch %llu is no longer current (now %llu): fetch again", sr->list,
                   (unsigned long long)sr->want_epoch, (unsigned long long)ps->info.epoch);
            goto done;
        }
        delta = sr->want_delta;
        current = false;
    }

    Baygate__SnapshotChunk sc = BAYGATE__SNAPSHOT_CHUNK__INIT;
    sc.list = ps->list;
    sc.generation = ps->info.generation;
    sc.epoch = ps->info.epoch;
    sc.digest.data = ps->info.digest;
    sc.digest.len = BG_SNAP_DIGESTBYTES;
    bg_err err = {0};
    size_t count = 0;
    if (!current) {
        int rc = delta ? bg_snap_delta_chunk_count(ps->delta, max_chunk, &count, &err)
                       : bg_snap_chunk_count(ps->snap, max_chunk, &count, &err);
        if (rc != BG_OK) {
            refuse(gw, ev, o, req, BG_GW_E_INTERNAL, "cannot cut the snapshot: %s", err.msg);
            goto done;
        }
        if (sr->chunk_index >= count) {
            refuse(gw, ev, o, req, BG_GW_E_BAD_BODY, "chunk %u of %zu does not exist",
                   sr->chunk_index, count);
            goto done;
        }
        chunk = malloc(max_chunk);
        size_t chunk_len = 0;
        if (chunk == NULL) {
            refuse(gw, ev, o, req, BG_GW_E_INTERNAL, "out of memory");
            goto done;
        }
        rc = delta ? bg_snap_delta_chunk(ps->delta, max_chunk, sr->chunk_index, chunk, max_chunk,
                                         &chunk_len, &err)
                   : bg_snap_chunk(ps->snap, max_chunk, sr->chunk_index, chunk, max_chunk,
                                   &chunk_len, &err);
        if (rc != BG_OK) {
            refuse(gw, ev, o, req, BG_GW_E_INTERNAL, "cannot cut the snapshot: %s", err.msg);
            goto done;
        }
        sc.delta = delta;
        sc.from_epoch = delta ? ps->delta_info.from_epoch : 0;
        sc.chunk_index = sr->chunk_index;
        sc.chunk_count = (uint32_t)count;
        sc.data.data = chunk;
        sc.data.len = chunk_len;
    }
    if (sc.chunk_index == 0) {
        sc.digest_signature.data = ps->sig;
        sc.digest_signature.len = ps->sig_len;
    }
    size_t len = baygate__snapshot_chunk__get_packed_size(&sc);
    body = malloc(len ? len : 1);
    if (body == NULL) {
        refuse(gw, ev, o, req, BG_GW_E_INTERNAL, "out of memory");
        goto done;
    }
    baygate__snapshot_chunk__pack(&sc, body);
    if (sc.chunk_index == 0)
        bg_log(BG_LOG_INFO, "psi.snapshot_served",
               "peer=%s purpose=%s list=%s generation=%llu epoch=%llu kind=%s chunks=%zu "
               "entries=%zu",
               o->sender, o->purpose[0] ? o->purpose : "-", ps->list,
               (unsigned long long)ps->info.generation, (unsigned long long)ps->info.epoch,
               current ? "current"
               : delta ? "delta"
                       : "full",
               count, ps->info.count);
    gw_ev_note(ev, ps->list, ps->info.epoch, 0, 0);
    gw_answer(gw, ev, o, req, BAYGATE__PSI_BODY__PSI_BODY_SNAPSHOT_CHUNK, body, len);
done:
    free(body);
    free(chunk);
    bg_pub_snap_release(ps);
    if (sr != NULL)
        bg_pb_free(sr);
}

void
psi_answer_query(bg_gw *gw, gw_ev *ev, const bg_env_opened *o, bg_tp_request *req)
{
    Baygate__PsiQuery *q = bg_pb_unpack(&baygate__psi_query__descriptor, o->body_len, o->body);
    bg_pub_snap *ps = NULL;
    uint8_t *eval = NULL, *body = NULL;
    bg_roster_verdict v;
    bg_err err = {0};
    if (q == NULL) {
        refuse(gw, ev, o, req, BG_GW_E_BAD_BODY, "PSI query does not parse");
        goto done;
    }
    if (!list_ok(gw, ev, o, req, q->list))
        goto done;
    gw_ev_note(ev, q->list, q->epoch, (uint32_t)(q->elements.len / BG_OPRF_ELEMENTBYTES), 0);
    if (!permitted(gw, o, q->list, &v)) {
        refuse(gw, ev, o, req, BG_GW_E_NOT_ALLOWED, "%s", v.reason);
        goto done;
    }
    ps = bg_pub_get(gw->pub, q->list);
    if (ps == NULL) {
        refuse(gw, ev, o, req, BG_GW_E_NOT_PUBLISHED, "%s has not published %s yet", gw->cfg.city,
               q->list);
        goto done;
    }
    if (bg_snap_require_current(ps->info.generation, ps->info.epoch, q->generation, q->epoch,
                                &err) != BG_OK) {
        refuse(gw, ev, o, req, BG_GW_E_STALE_EPOCH, "%s: %s", q->list, err.msg);
        goto done;
    }
    int mode = (int)q->mode;
    if (mode != BG_PSI_MEMBERSHIP && mode != BG_PSI_GRADED && mode != BG_PSI_COUNT) {
        refuse(gw, ev, o, req, BG_GW_E_BAD_MODE, "mode %d is not a PSI mode", mode);
        goto done;
    }
    if (mode == BG_PSI_GRADED && !ps->info.graded) {
        refuse(gw, ev, o, req, BG_GW_E_BAD_MODE, "%s carries no grades: ask list '%s'", q->list,
               BG_LIST_GRADES);
        goto done;
    }
    if (q->batch_id.len != 16) {
        refuse(gw, ev, o, req, BG_GW_E_BAD_BODY, "batch_id must be 16 bytes");
        goto done;
    }
    size_t len = q->elements.len, n = len / BG_OPRF_ELEMENTBYTES;
    if (len == 0 || len % BG_OPRF_ELEMENTBYTES != 0) {
        refuse(gw, ev, o, req, BG_GW_E_BAD_ELEMENTS,
               "elements must be 32*n bytes, n >= 1 (got %zu)", len);
        goto done;
    }
    /* An answer is as large as its query plus a few bytes: a query that leaves no room
     * for them could never be answered, so it is refused before any work or charge. */
    size_t max_msg = gw_max_message(gw);
    size_t per = gw_psi_items_per_message(max_msg);
    if (n > per) {
        refuse(gw, ev, o, req, BG_GW_E_BATCH,
               "%zu elements in one message; at most %zu fit an answer at max_message_bytes %zu", n,
               per, max_msg);
        goto done;
    }
    if (q->chunk_count == 0 || q->chunk_index >= q->chunk_count || q->batch_items < n ||
        (uint64_t)q->batch_items > (uint64_t)q->chunk_count * per ||
        (q->chunk_count == 1 && q->batch_items != n)) {
        refuse(gw, ev, o, req, BG_GW_E_BATCH, "chunk %u of %u with %zu of %u items is inconsistent",
               q->chunk_index, q->chunk_count, n, q->batch_items);
        goto done;
    }
    if (mode == BG_PSI_COUNT) {
        if (q->chunk_count != 1 || q->batch_items != n) {
            refuse(gw, ev, o, req, BG_GW_E_BATCH,
                   "a count batch must come in one message (got chunk %u of %u)", q->chunk_index,
                   q->chunk_count);
            goto done;
        }
        if (n < v.min_count_batch) {
            refuse(gw, ev, o, req, BG_GW_E_BATCH,
                   "count batch of %zu items is below the minimum of %u for %s", n,
                   v.min_count_batch, o->sender);
            goto done;
        }
    }
    /* Over quota already: refused before any work. The charge itself comes after the
     * elements proved valid, so a refused chunk costs the asker nothing. */
    uint64_t used = 0;
    if (!quota_take(&gw->quota, o->sender, n, v.quota_items_per_day, false, &used)) {
        refuse(gw, ev, o, req, BG_GW_E_QUOTA,
               "%s has used %llu of its %llu items today; %zu more refused", o->sender,
               (unsigned long long)used, (unsigned long long)v.quota_items_per_day, n);
        goto done;
    }
    eval = malloc(len);
    if (eval == NULL) {
        refuse(gw, ev, o, req, BG_GW_E_INTERNAL, "out of memory");
        goto done;
    }
    /* Two threads at most: requests are already served on a pool of handler threads. */
    int rc = mode == BG_PSI_COUNT
                 ? bg_psi_evaluate_count(eval, ps->sk, q->elements.data, len, v.min_count_batch, n,
                                         2, &err)
                 : bg_psi_evaluate(eval, ps->sk, q->elements.data, len, n, 2, &err);
    if (rc != BG_OK) {
        refuse(gw, ev, o, req, rc == BG_ELIMIT ? BG_GW_E_BATCH : BG_GW_E_BAD_ELEMENTS, "%s",
               err.msg);
        goto done;
    }
    if (!quota_take(&gw->quota, o->sender, n, v.quota_items_per_day, true, &used)) {
        refuse(gw, ev, o, req, BG_GW_E_QUOTA,
               "%s has used %llu of its %llu items today; %zu more refused", o->sender,
               (unsigned long long)used, (unsigned long long)v.quota_items_per_day, n);
        goto done;
    }
    Baygate__PsiAnswer pa = BAYGATE__PSI_ANSWER__INIT;
    pa.list = ps->list;
    pa.generation = ps->info.generation;
    pa.epoch = ps->info.epoch;
    pa.mode = q->mode;
    pa.batch_id = q->batch_id;
    pa.chunk_index = q->chunk_index;
    pa.chunk_count = q->chunk_count;
    pa.elements.data = eval;
    pa.elements.len = len;
    size_t blen = baygate__psi_answer__get_packed_size(&pa);
    body = malloc(blen);
    if (body == NULL) {
        refuse(gw, ev, o, req, BG_GW_E_INTERNAL, "out of memory");
        goto done;
    }
    baygate__psi_answer__pack(&pa, body);
    static const char *const modes[] = {"?", "membership", "graded", "count"};
    bg_log(BG_LOG_INFO, "psi.answered",
           "peer=%s purpose=%s list=%s generation=%llu epoch=%llu mode=%s chunk=%u/%u items=%zu "
           "batch_items=%u used_today=%llu",
           o->sender, o->purpose[0] ? o->purpose : "-", ps->list,
           (unsigned long long)ps->info.generation, (unsigned long long)ps->info.epoch, modes[mode],
           q->chunk_index + 1, q->chunk_count, n, q->batch_items, (unsigned long long)used);
    gw_ev_note(ev, q->list, q->epoch, (uint32_t)n, (uint32_t)n);
    gw_answer(gw, ev, o, req, BAYGATE__PSI_BODY__PSI_BODY_ANSWER, body, blen);
done:
    free(body);
    free(eval);
    bg_pub_snap_release(ps);
    if (q != NULL)
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
