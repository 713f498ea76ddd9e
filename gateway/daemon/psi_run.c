/*
 * psi_run.c - one peer job: sync, status list, PSI batches, results (see psi_run.h).
 */
#include "gateway/daemon/psi_run.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "common/clock.h"
#include "gateway/daemon/codes.h"
#include "gateway/daemon/core.h"
#include "gateway/daemon/log.h"
#include "gateway/daemon/psi_attest.h"
#include "gateway/daemon/psi_sync.h"
#include "mpc/psi.h"
#include "proto/pb.h"
#include "proto/psi.pb-c.h"

/* Elements per PSI message at the federation's max_message_bytes (*max_msg gets it). */
static size_t
items_per_message(bg_gw *g, size_t *max_msg)
{
    *max_msg = gw_max_message(g);
    return gw_psi_items_per_message(*max_msg);
}

/* Chunk c of query q (elements first..first+cnt, blinded) as a signed PsiQuery; the
 * answer, checked to be for that chunk, finished into q. */
static int
batch_chunk(pjob *j, gw_peer *p, const gw_cached *s, bg_psi_query *q, const uint8_t batch_id[16],
            size_t c, size_t nchunks, size_t first, size_t cnt, uint8_t *blinded, bool *stale)
{
    bg_err err = {0};
    /* 0: all cores. Blinding and unblinding are the asker's whole cost; peers asked
     * at once each get all cores and the OS shares them out. */
    int rc = bg_psi_prepare(q, first, cnt, blinded, 0, &err);
    if (rc != BG_OK) {
        psi_job_fail(j, BG_GW_E_INTERNAL, "%s", err.msg);
        return rc;
    }
    Baygate__PsiQuery pq = BAYGATE__PSI_QUERY__INIT;
    pq.list = (char *)j->list;
    pq.generation = s->info.generation;
    pq.epoch = s->info.epoch;
    pq.mode = (Baygate__PsiMode)j->mode;
    pq.batch_id.data = (uint8_t *)batch_id;
    pq.batch_id.len = 16;
    pq.chunk_index = (uint32_t)c;
    pq.chunk_count = (uint32_t)nchunks;
    pq.batch_items = (uint32_t)bg_psi_query_items(q);
    pq.elements.data = blinded;
    pq.elements.len = cnt * BG_OPRF_ELEMENTBYTES;
    size_t blen = baygate__psi_query__get_packed_size(&pq);
    uint8_t *body = malloc(blen);
    if (body == NULL) {
        psi_job_fail(j, BG_GW_E_INTERNAL, "out of memory");
        return BG_ENOMEM;
    }
    baygate__psi_query__pack(&pq, body);
    j->call_epoch = s->info.epoch;
    j->call_items = (uint32_t)cnt;
    bg_env_opened *o = NULL;
    rc = psi_job_call(j, p, BAYGATE__PSI_BODY__PSI_BODY_QUERY, body, blen,
                      BAYGATE__PSI_BODY__PSI_BODY_ANSWER, &o);
    free(body);
    if (rc != BG_OK) {
        *stale = j->code == BG_GW_E_STALE_EPOCH;
        return rc;
    }
    Baygate__PsiAnswer *pa = bg_pb_unpack(&baygate__psi_answer__descriptor, o->body_len, o->body);
    if (pa == NULL || pa->list == NULL || strcmp(pa->list, j->list) != 0 ||
        pa->generation != s->info.generation || pa->epoch != s->info.epoch ||
        (int)pa->mode != j->mode || pa->batch_id.len != 16 ||
        memcmp(pa->batch_id.data, batch_id, 16) != 0 || pa->chunk_index != c ||
        pa->elements.len != cnt * BG_OPRF_ELEMENTBYTES) {
        psi_job_fail(j, BG_GW_E_BAD_ANSWER, "%s's PSI answer is not for the chunk asked", j->city);
        rc = BG_EPROTO;
    } else {
        rc = bg_psi_finish(q, s->snap, first, cnt, pa->elements.data, pa->elements.len, 0, &err);
        if (rc != BG_OK)
            psi_job_fail(j, BG_GW_E_BAD_ANSWER, "%s's PSI answer: %s", j->city, err.msg);
    }
    if (pa != NULL)
        bg_pb_free(pa);
    bg_env_opened_free(o);
    return rc;
}

/* Membership and graded: the finished query's result per input into j->matched and,
 * graded, j->payloads with each match's attestation. */
static int
batch_results(pjob *j, const bg_psi_query *q, const gw_cached *s)
{
    bg_err err = {0};
    int rc = BG_OK;
    j->matched = calloc(j->n, 1);
    if (j->mode == BG_PSI_GRADED) {
        j->payloads = calloc(j->n, sizeof *j->payloads);
        j->att = calloc(j->n, sizeof *j->att);
    }
    if (j->matched == NULL || (j->mode == BG_PSI_GRADED && (j->payloads == NULL || j->att == NULL)))
        rc = BG_ENOMEM;
    bg_roster *r = j->mode == BG_PSI_GRADED ? gw_roster_get(j->gw) : NULL;
    bg_snap_prover *prover = NULL;
    for (size_t i = 0; rc == BG_OK && i < j->n; i++) {
        int matched = 0;
        bg_snap_record rec;
        rc = bg_psi_result(q, i, &matched, &rec, &err);
        j->matched[i] = (uint8_t)matched;
        if (rc == BG_OK && matched && j->payloads != NULL) {
            j->payloads[i] = rec.payload;
            psi_attest_one(j, q, s, &prover, i, &rec, r);
        }
        sodium_memzero(&rec, sizeof rec);
    }
    bg_snap_prover_free(prover);
    bg_roster_free(r);
    if (j->mode == BG_PSI_GRADED)
        j->unopened = bg_psi_unopened(q);
    if (rc != BG_OK)
        psi_job_fail(j, BG_GW_E_INTERNAL, "reading results: %s", err.msg);
    return rc;
}

/*
 * One PSI batch of inputs[0..n) against snapshot s; *stale set when the peer moved on.
 * Membership/graded: the job's whole input set, results into j->matched/payloads.
 * Count: one sub-batch (one blind, one shuffled answer), added to j->count/items.
 */
static int
run_batch(pjob *j, gw_peer *p, const gw_cached *s, const uint8_t *const *inputs, const size_t *lens,
          size_t n, bool *stale)
{
    *stale = false;
    bg_err err = {0};
    bg_psi_query *q = NULL;
    int rc = bg_psi_query_new(&q, j->mode, inputs, lens, n, &err);
    if (rc != BG_OK) {
        psi_job_fail(j, BG_GW_E_INTERNAL, "%s", err.msg);
        return rc;
    }
    size_t items = bg_psi_query_items(q);
    size_t max_msg;
    size_t per = items_per_message(j->gw, &max_msg);
    if (j->mode == BG_PSI_COUNT && items > per) {
        psi_job_fail(j, BG_GW_E_BATCH,
                     "a count query of %zu items does not fit one message (at most %zu at "
                     "max_message_bytes %zu)",
                     items, per, max_msg);
        bg_psi_query_free(q);
        return BG_ELIMIT;
    }
    size_t nchunks = (items + per - 1) / per;
    uint8_t batch_id[16];
    randombytes_buf(batch_id, sizeof batch_id);
    uint8_t *blinded = malloc((items < per ? items : per) * BG_OPRF_ELEMENTBYTES);
    if (blinded == NULL) {
        psi_job_fail(j, BG_GW_E_INTERNAL, "out of memory");
        rc = BG_ENOMEM;
    }
    for (size_t c = 0; rc == BG_OK && c < nchunks; c++) {
        size_t first = c * per, cnt = items - first < per ? items - first : per;
        rc = batch_chunk(j, p, s, q, batch_id, c, nchunks, first, cnt, blinded, stale);
    }
    if (rc == BG_OK && j->mode == BG_PSI_COUNT) {
        size_t m = 0;
        rc = bg_psi_count(q, &m, &err);
        j->count += m;
        j->items += items;
    } else if (rc == BG_OK) {
        j->items = items;
        rc = batch_results(j, q, s);
    }
    free(blinded);
    bg_psi_query_free(q);
    return rc;
}

/*
 * One PSI run against snapshot s. A count query larger than one message is split into
 * sub-batches of near-equal size, each with its own blind and shuffle, and the counts
 * summed: the asker then learns a count per sub-batch (each at least the policy's
 * minimum, and never which items), exactly what it could learn by asking them one by
 * one, while the answerer never holds more than one message's elements per batch.
 * The inputs are distinct, so no item is counted twice.
 */
static int
run_psi(pjob *j, gw_peer *p, const gw_cached *s, bool *stale)
{
    j->count = 0;
    j->items = 0;
    if (j->mode != BG_PSI_COUNT)
        return run_batch(j, p, s, j->inputs, j->lens, j->n, stale);
    size_t max_msg;
    size_t per = items_per_message(j->gw, &max_msg);
    size_t batches = (j->n + per - 1) / per;
    if (batches == 0)
        batches = 1;
    int rc = BG_OK;
    for (size_t b = 0, first = 0; rc == BG_OK && b < batches; b++) {
        /* sizes differ by at most one, so the smallest is as large as it can be */
        size_t cnt = j->n / batches + (b < j->n % batches ? 1 : 0);
        rc = run_batch(j, p, s, j->inputs + first, j->lens + first, cnt, stale);
        first += cnt;
    }
    return rc;
}

/* One try of job j with p: sync, status list, PSI. True if it should be tried again (the
 * peer published a new epoch meanwhile). */
static bool
psi_run_attempt(pjob *j, gw_peer *p, gw_cached **sp)
{
    int64_t t0 = bg_clock_ms();
    int rc = psi_sync_snapshot(j, p, sp);
    int64_t t1 = bg_clock_ms();
    j->snapshot_ms += (uint32_t)(t1 - t0);
    if (rc != BG_OK)
        return false;
    gw_cached *s = *sp;
    if (j->mode == BG_PSI_GRADED && j->st == NULL && j->status_error[0] == '\0')
        psi_attest_fetch_status(j, p); /* with the snapshot: attestations are checked against it */
    bool stale = false;
    rc = run_psi(j, p, s, &stale);
    j->psi_ms += (uint32_t)(bg_clock_ms() - t1);
    j->generation = s->info.generation;
    j->epoch = s->info.epoch;
    j->list_size = s->info.count;
    gw_cached_release(s);
    *sp = NULL;
    if (rc == BG_OK) {
        j->ok = true;
        j->code = 0;
        j->error[0] = '\0';
        return false;
    }
    if (!stale)
        return false;
    psi_job_clear_results(j);
    return true;
}

void *
psi_run_job(void *arg)
{
    pjob *j = arg;
    gw_peer *p = gw_peer_get(j->gw, j->city);
    if (p == NULL) {
        psi_job_fail(j, BG_GW_E_NOT_PEER, "%s is not a peer in the roster", j->city);
        return NULL;
    }
    snprintf(j->name, sizeof j->name, "%s", p->name);
    char why[sizeof j->error];
    int admit = gw_peer_admit(p, j->timeout_ms, why, sizeof why);
    if (admit != BG_OK) {
        /* down or revoked: said at once rather than after the request timeout */
        psi_job_fail(j, admit == BG_ECRYPTO ? BG_GW_E_REVOKED : BG_RT_E_TRANSPORT, "%s", why);
        gw_peer_release(p);
        return NULL;
    }
    gw_cached *s = NULL;
    for (int attempt = 0; attempt < 2 && psi_run_attempt(j, p, &s); attempt++)
        ;
    gw_cached_release(s);
    gw_peer_note(p, j->ok || j->code != BG_RT_E_TRANSPORT, j->error);

    bg_log(j->ok ? BG_LOG_INFO : BG_LOG_WARN, "psi.query_done",
           "peer=%s list=%s purpose=%s mode=%d items=%zu epoch=%llu snapshot=%s ok=%d code=%u "
           "snapshot_ms=%u psi_ms=%u sent=%llu received=%llu",
           j->city, j->list, j->purpose, j->mode, j->items, (unsigned long long)j->epoch,
           j->snapshot_kind ? j->snapshot_kind : "-", j->ok, j->code, j->snapshot_ms, j->psi_ms,
           (unsigned long long)j->sent, (unsigned long long)j->received);
    gw_peer_release(p);
    return NULL;
}
