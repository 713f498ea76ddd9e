/*
 * psi_query.c - the local API's Query: validate ids, refresh peers'
 * snapshots, run PSI with every chosen peer at once (see psi_query.h).
 */
#include "gateway/daemon/psi_query.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "certs/sig.h"
#include "common/json.h"
#include "domain/date.h"
#include "domain/list.h"
#include "domain/scale.h"
#include "domain/uscc.h"
#include "gateway/attest/attest.h"
#include "gateway/daemon/cache.h"
#include "gateway/daemon/codes.h"
#include "gateway/daemon/core.h"
#include "gateway/daemon/log.h"
#include "gateway/daemon/policy.h"
#include "gateway/daemon/psi_pub.h"
#include "mpc/psi.h"
#include "proto/api.pb-c.h"
#include "proto/psi.pb-c.h"
#include "proto/pb.h"

/* ------------------------------------------------------------ one peer */

/* A graded match's attestation, as checked here (gateway/attest). */
typedef struct pattest {
    char common[BG_GRADE_MAX + 1];
    uint32_t rank;
    bool ok;
    char why[240];  /* why it does not verify ("" when ok) */
    uint8_t *bytes; /* the encoded attestation, when asked for */
    size_t len;
} pattest;

typedef struct pjob {
    bg_gw *gw;
    char city[BG_CITY_CODE_LEN + 1];
    const char *list, *purpose;
    const uint8_t *auth;
    size_t auth_len;
    int mode, timeout_ms;
    const uint8_t *const *inputs; /* distinct canonical USCCs, sorted */
    const size_t *lens;
    size_t n;
    pthread_t thread;
    bool started;

    /* results */
    bool ok;
    uint32_t code;
    char error[400];
    char name[BG_PKI_NAME_MAX + 1];
    uint64_t generation, epoch, list_size;
    const char *snapshot_kind;
    uint8_t *matched;          /* n flags */
    bg_snap_payload *payloads; /* graded: n (zero where not matched) */
    uint64_t count, unopened;
    size_t items;
    uint32_t snapshot_ms, psi_ms;
    uint64_t sent, received;
    uint64_t call_epoch; /* for the evidence of the next call */
    uint32_t call_items;

    /* graded: attestations of the matches, checked against the peer's status list */
    bool want_attest; /* return their bytes (and the status list) */
    pattest *att;     /* n */
    uint8_t *status;  /* the peer's signed status list, verified */
    size_t status_len;
    bg_attest_status *st;
    char status_error[240];
    bg_attest *att_ref; /* the first attestation verified in full (bg_attest_verify_sibling) */
} pjob;

static int64_t
mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void __attribute__((format(printf, 3, 4)))
jfail(pjob *j, uint32_t code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(j->error, sizeof j->error, fmt, ap);
    va_end(ap);
    j->ok = false;
    j->code = code;
}

/*
 * One signed round trip to peer p: body of body_type out, an answer of
 * want_type back (opened and bound to our request), logged as evidence with
 * the job's list, j->call_epoch and j->call_items. A typed refusal becomes
 * j->code/j->error. On BG_OK the caller frees *out.
 */
static bg_env_fields
job_fields(const pjob *j, uint32_t body_type, const uint8_t *body, size_t len)
{
    return (bg_env_fields){.recipient = j->city,
                           .body_type = body_type,
                           .body = body,
                           .body_len = len,
                           .purpose = j->purpose,
                           .authorisation_ref = j->auth,
                           .authorisation_ref_len = j->auth_len};
}

static int
call(pjob *j, gw_peer *p, uint32_t body_type, const uint8_t *body, size_t len, uint32_t want_type,
     bg_env_opened **out)
{
    bg_env_fields f = job_fields(j, body_type, body, len);
    gw_call_ev cev = {.list = j->list, .epoch = j->call_epoch, .items = j->call_items};
    bg_rt_result res = {0};
    int rc = gw_call(j->gw, p, &f, j->timeout_ms, want_type, &cev, out, &res);
    j->sent += res.sent_bytes;
    j->received += res.received_bytes;
    if (rc != BG_OK)
        jfail(j, res.code, "%s", res.error);
    return rc;
}

/* The peer's signature over digest, with the certificate its answer was verified with. */
static int
verify_digest(pjob *j, const bg_env_opened *o, const uint8_t *digest, const uint8_t *sig,
              size_t sig_len)
{
    EVP_PKEY *key = NULL;
    bg_err err = {0};
    int rc = bg_trust_verify_cached(j->gw->trust, o->cert_fingerprint, j->city, time(NULL), NULL,
                                    &key, &err);
    if (rc == BG_OK)
        rc = bg_sig_verify(key, BG_SIG_CTX_SNAPSHOT, digest, BG_SNAP_DIGESTBYTES, sig, sig_len,
                           &err);
    EVP_PKEY_free(key);
    if (rc != BG_OK)
        jfail(j, BG_GW_E_BAD_ANSWER, "%s's snapshot digest signature: %s", j->city, err.msg);
    return rc;
}

/* Brings the cached snapshot of (peer, list) up to date; *out is a reference. */
static int
refresh(pjob *j, gw_peer *p, gw_cached **out)
{
    *out = NULL;
    gw_cached *cur = gw_cache_get(&j->gw->cache, j->city, j->list);
    bg_snap_reader *rd = NULL;
    bg_snap_delta *delta = NULL;
    bg_snap *snap = NULL;
    bg_env_opened *o = NULL;
    Baygate__SnapshotChunk *sc = NULL;
    uint8_t digest[BG_SNAP_DIGESTBYTES];
    uint8_t sig[BG_SIG_MAX];
    size_t sig_len = 0;
    uint64_t gen = 0, epoch = 0;
    bool is_delta = false;
    size_t count = 0;
    int rc = BG_OK;
    bg_err err = {0};

    for (size_t idx = 0; rc == BG_OK && (idx == 0 || idx < count); idx++) {
        Baygate__SnapshotRequest rq = BAYGATE__SNAPSHOT_REQUEST__INIT;
        rq.list = (char *)j->list;
        if (cur != NULL) {
            rq.have_generation = cur->info.generation;
            rq.have_epoch = cur->info.epoch;
            rq.have_digest.data = cur->info.digest;
            rq.have_digest.len = BG_SNAP_DIGESTBYTES;
        }
        if (idx > 0) {
            rq.want_epoch = epoch;
            rq.want_delta = is_delta;
        }
        rq.chunk_index = (uint32_t)idx;
        uint8_t body[256];
        size_t blen = baygate__snapshot_request__get_packed_size(&rq);
        if (blen > sizeof body) {
            jfail(j, BG_GW_E_INTERNAL, "snapshot request too large");
            rc = BG_ELIMIT;
            break;
        }
        baygate__snapshot_request__pack(&rq, body);
        j->call_epoch = idx > 0 ? epoch : 0;
        j->call_items = 0;
        rc = call(j, p, BAYGATE__PSI_BODY__PSI_BODY_SNAPSHOT_REQUEST, body, blen,
                  BAYGATE__PSI_BODY__PSI_BODY_SNAPSHOT_CHUNK, &o);
        if (rc != BG_OK)
            break;
        sc = bg_pb_unpack(&baygate__snapshot_chunk__descriptor, o->body_len, o->body);
        if (sc == NULL || sc->list == NULL || strcmp(sc->list, j->list) != 0 ||
            sc->digest.len != BG_SNAP_DIGESTBYTES || sc->chunk_index != idx ||
            (idx > 0 && (sc->epoch != epoch || sc->generation != gen || sc->delta != is_delta ||
                         sc->chunk_count != count ||
                         sodium_memcmp(sc->digest.data, digest, sizeof digest) != 0))) {
            jfail(j, BG_GW_E_BAD_ANSWER, "%s sent a snapshot chunk that is not the one asked",
                  j->city);
            rc = BG_EPROTO;
            break;
        }
        if (idx == 0) {
            gen = sc->generation;
            epoch = sc->epoch;
            is_delta = sc->delta;
            count = sc->chunk_count;
            memcpy(digest, sc->digest.data, sizeof digest);
            if (count == 0) {
                /* We are current: the answer must say so about what we hold. */
                if (cur == NULL || gen != cur->info.generation || epoch != cur->info.epoch ||
                    sodium_memcmp(digest, cur->info.digest, sizeof digest) != 0) {
                    jfail(j, BG_GW_E_BAD_ANSWER, "%s says we are current, but we are not", j->city);
                    rc = BG_EPROTO;
                }
                break;
            }
            if (is_delta && cur == NULL) {
                jfail(j, BG_GW_E_BAD_ANSWER, "%s sent a delta to a snapshot we do not hold",
                      j->city);
                rc = BG_EPROTO;
                break;
            }
            rc = verify_digest(j, o, digest, sc->digest_signature.data, sc->digest_signature.len);
            if (rc == BG_OK && sc->digest_signature.len <= sizeof sig) {
                sig_len = sc->digest_signature.len;
                memcpy(sig, sc->digest_signature.data, sig_len);
            }
            if (rc == BG_OK &&
                (rc = bg_snap_reader_new(&rd, GW_PSI_CACHE_MAX_ENTRIES, &err)) != BG_OK)
                jfail(j, BG_GW_E_INTERNAL, "%s", err.msg);
        }
        if (rc == BG_OK &&
            (rc = bg_snap_reader_feed(rd, sc->data.data, sc->data.len, &err)) != BG_OK)
            jfail(j, BG_GW_E_BAD_ANSWER, "%s's snapshot chunk %zu: %s", j->city, idx, err.msg);
        bg_pb_free(sc);
        sc = NULL;
        bg_env_opened_free(o);
        o = NULL;
    }
    if (sc != NULL)
        bg_pb_free(sc);
    bg_env_opened_free(o);

    if (rc == BG_OK && count == 0) {
        j->snapshot_kind = "cached";
        *out = cur;
        return BG_OK;
    }
    if (rc == BG_OK) {
        if (is_delta) {
            rc = bg_snap_reader_finish_delta(rd, &delta, &err);
            if (rc == BG_OK)
                rc = bg_snap_delta_apply(&snap, cur->snap, delta, 0, &err);
        } else {
            rc = bg_snap_reader_finish(rd, digest, &snap, 0, &err);
        }
        if (rc != BG_OK)
            jfail(j, BG_GW_E_BAD_ANSWER, "%s's snapshot does not verify: %s", j->city, err.msg);
    }
    bg_snap_reader_free(rd);
    bg_snap_delta_free(delta);
    gw_cached *nc = NULL;
    if (rc == BG_OK) {
        bg_snap_info info;
        bg_snap_get_info(snap, &info);
        /* What we built must be exactly what the city signed. */
        if (strcmp(info.list, j->list) != 0 || info.generation != gen || info.epoch != epoch ||
            sodium_memcmp(info.digest, digest, sizeof digest) != 0) {
            jfail(j, BG_GW_E_BAD_ANSWER, "%s's snapshot is not the signed one", j->city);
            rc = BG_EPROTO;
        } else if ((nc = calloc(1, sizeof *nc)) == NULL) {
            jfail(j, BG_GW_E_INTERNAL, "out of memory");
            rc = BG_ENOMEM;
        } else {
            atomic_init(&nc->refs, 1);
            nc->snap = snap;
            snap = NULL;
            nc->info = info;
            memcpy(nc->sig, sig, sig_len);
            nc->sig_len = sig_len;
            gw_cache_put(&j->gw->cache, j->city, j->list, nc);
            j->snapshot_kind = is_delta ? "delta" : "full";
        }
    }
    bg_snap_free(snap);
    gw_cached_release(cur);
    *out = nc;
    return rc;
}

/*
 * Graded queries: the peer's current status list, verified (its certificate, pinned in
 * the roster; its signature; a number not below the newest we saw). Its certificate is
 * the one attestations of the peer's grades carry. A failure is kept in
 * j->status_error: the grades still come back, marked as not verified.
 */
static void
fetch_status(pjob *j, gw_peer *p)
{
    Baygate__StatusListRequest rq = BAYGATE__STATUS_LIST_REQUEST__INIT;
    uint64_t seen = gw_cache_status_seen(&j->gw->cache, j->city);
    rq.have_number = seen;
    uint8_t body[16];
    size_t blen = baygate__status_list_request__pack(&rq, body);
    bg_env_opened *o = NULL;
    /* Not through call(): a refusal here must not fail the job, only its attestations. */
    bg_env_fields f = job_fields(j, BAYGATE__PSI_BODY__PSI_BODY_STATUS_REQUEST, body, blen);
    gw_call_ev cev = {.list = "status"};
    bg_rt_result res = {0};
    int rc = gw_call(j->gw, p, &f, j->timeout_ms, BAYGATE__PSI_BODY__PSI_BODY_STATUS_ANSWER, &cev,
                     &o, &res);
    j->sent += res.sent_bytes;
    j->received += res.received_bytes;
    if (rc != BG_OK) {
        snprintf(j->status_error, sizeof j->status_error, "no status list: %.200s", res.error);
        return;
    }
    Baygate__StatusListAnswer *sa =
        bg_pb_unpack(&baygate__status_list_answer__descriptor, o->body_len, o->body);
    bg_roster *r = gw_roster_get(j->gw);
    bg_attest_policy pol = {.min_status_number = seen};
    bg_attest_reason why = BG_ATTEST_OK;
    bg_err err = {0};
    if (sa == NULL || r == NULL) {
        snprintf(j->status_error, sizeof j->status_error, "%s's status answer does not parse",
                 j->city);
    } else if (bg_attest_status_open(sa->signed_status_list.data, sa->signed_status_list.len,
                                     j->gw->trust, r, j->city, &pol, time(NULL), &j->st, &why,
                                     &err) != BG_OK) {
        snprintf(j->status_error, sizeof j->status_error, "%s's status list refused (%s): %.160s",
                 j->city, bg_attest_reason_name(why), err.msg);
    } else if ((j->status = malloc(sa->signed_status_list.len)) == NULL) {
        snprintf(j->status_error, sizeof j->status_error, "out of memory");
    } else {
        memcpy(j->status, sa->signed_status_list.data, sa->signed_status_list.len);
        j->status_len = sa->signed_status_list.len;
        gw_cache_status_saw(&j->gw->cache, j->city, bg_attest_status_number(j->st));
    }
    if (sa != NULL)
        bg_pb_free(sa);
    bg_roster_free(r);
    bg_env_opened_free(o);
}

static void
att_free(pattest *att, size_t n)
{
    for (size_t i = 0; att != NULL && i < n; i++)
        free(att[i].bytes);
    free(att);
}

/* Builds and checks the attestation of input i's graded match (rec) in snapshot s. */
static void
attest_one(pjob *j, const bg_psi_query *q, const gw_cached *s, bg_snap_prover **prover, size_t i,
           const bg_snap_record *rec, const bg_roster *r)
{
    pattest *a = &j->att[i];
    if (j->st == NULL) {
        snprintf(a->why, sizeof a->why, "%s", j->status_error);
        return;
    }
    bg_err err = {0};
    size_t index = BG_SNAP_NONE;
    uint8_t key[BG_SNAP_OPENKEYBYTES];
    bg_attest *at = malloc(sizeof *at);
    int rc = at == NULL ? bg_err_set(&err, BG_ENOMEM, "out of memory")
                        : bg_psi_result_entry(q, i, &index, key, &err);
    if (rc == BG_OK && *prover == NULL)
        rc = bg_snap_prover_new(prover, s->snap, 0, &err);
    size_t der_len = 0;
    const uint8_t *der = bg_attest_status_cert(j->st, &der_len);
    if (rc == BG_OK)
        rc = bg_attest_build(at, j->city, s->snap, *prover, index, rec, key, s->sig, s->sig_len,
                             der, der_len, r, &err);
    sodium_memzero(key, sizeof key);
    if (rc != BG_OK) {
        snprintf(a->why, sizeof a->why, "cannot attest: %.200s", err.msg);
        free(at);
        return;
    }
    snprintf(a->common, sizeof a->common, "%s", at->common_grade);
    a->rank = at->common_rank;
    /* The matches of one answer share the issuer's certificate, snapshot signature and
     * status list: checked in full once, then per entry (a few µs, not milliseconds). */
    bg_attest_reason why = BG_ATTEST_OK;
    time_t now = time(NULL);
    rc = j->att_ref != NULL ? bg_attest_verify_sibling(at, j->att_ref, r, j->st, now, &why, &err)
                            : BG_EINVAL;
    if (rc == BG_EINVAL) {
        bg_attest_policy pol = {.min_status_number = bg_attest_status_number(j->st)};
        rc = bg_attest_verify(at, j->gw->trust, r, j->status, j->status_len, &pol, now, &why, &err);
        if (rc == BG_OK) {
            free(j->att_ref);
            j->att_ref = malloc(sizeof *j->att_ref);
            if (j->att_ref != NULL)
                *j->att_ref = *at;
        }
    }
    a->ok = rc == BG_OK;
    if (!a->ok)
        snprintf(a->why, sizeof a->why, "%.230s", err.msg);
    if (j->want_attest && bg_attest_encode(at, &a->bytes, &a->len, &err) != BG_OK)
        snprintf(a->why, sizeof a->why, "cannot encode: %.200s", err.msg);
    free(at);
}

/* Elements per PSI message at the federation's max_message_bytes (*max_msg gets it). */
static size_t
items_per_message(bg_gw *g, size_t *max_msg)
{
    *max_msg = gw_max_message(g);
    return gw_psi_items_per_message(*max_msg);
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
    uint8_t *blinded = NULL, *body = NULL;
    bg_env_opened *o = NULL;
    Baygate__PsiAnswer *pa = NULL;
    int rc = bg_psi_query_new(&q, j->mode, inputs, lens, n, &err);
    if (rc != BG_OK) {
        jfail(j, BG_GW_E_INTERNAL, "%s", err.msg);
        return rc;
    }
    size_t items = bg_psi_query_items(q);
    size_t max_msg;
    size_t per = items_per_message(j->gw, &max_msg);
    if (j->mode == BG_PSI_COUNT && items > per) {
        jfail(j, BG_GW_E_BATCH,
              "a count query of %zu items does not fit one message (at most %zu at "
              "max_message_bytes %zu)",
              items, per, max_msg);
        bg_psi_query_free(q);
        return BG_ELIMIT;
    }
    size_t nchunks = (items + per - 1) / per;
    uint8_t batch_id[16];
    randombytes_buf(batch_id, sizeof batch_id);
    blinded = malloc((items < per ? items : per) * BG_OPRF_ELEMENTBYTES);
    if (blinded == NULL) {
        jfail(j, BG_GW_E_INTERNAL, "out of memory");
        rc = BG_ENOMEM;
    }
    for (size_t c = 0; rc == BG_OK && c < nchunks; c++) {
        size_t first = c * per, cnt = items - first < per ? items - first : per;
        /* 0: all cores. Blinding and unblinding are the asker's whole cost; peers asked
         * at once each get all cores and the OS shares them out. */
        rc = bg_psi_prepare(q, first, cnt, blinded, 0, &err);
        if (rc != BG_OK) {
            jfail(j, BG_GW_E_INTERNAL, "%s", err.msg);
            break;
        }
        Baygate__PsiQuery pq = BAYGATE__PSI_QUERY__INIT;
        pq.list = (char *)j->list;
        pq.generation = s->info.generation;
        pq.epoch = s->info.epoch;
        pq.mode = (Baygate__PsiMode)j->mode;
        pq.batch_id.data = batch_id;
        pq.batch_id.len = sizeof batch_id;
        pq.chunk_index = (uint32_t)c;
        pq.chunk_count = (uint32_t)nchunks;
        pq.batch_items = (uint32_t)items;
        pq.elements.data = blinded;
        pq.elements.len = cnt * BG_OPRF_ELEMENTBYTES;
        size_t blen = baygate__psi_query__get_packed_size(&pq);
        free(body);
        body = malloc(blen);
        if (body == NULL) {
            jfail(j, BG_GW_E_INTERNAL, "out of memory");
            rc = BG_ENOMEM;
            break;
        }
        baygate__psi_query__pack(&pq, body);
        j->call_epoch = s->info.epoch;
        j->call_items = (uint32_t)cnt;
        rc = call(j, p, BAYGATE__PSI_BODY__PSI_BODY_QUERY, body, blen,
                  BAYGATE__PSI_BODY__PSI_BODY_ANSWER, &o);
        if (rc != BG_OK) {
            *stale = j->code == BG_GW_E_STALE_EPOCH;
            break;
        }
        pa = bg_pb_unpack(&baygate__psi_answer__descriptor, o->body_len, o->body);
        if (pa == NULL || pa->list == NULL || strcmp(pa->list, j->list) != 0 ||
            pa->generation != s->info.generation || pa->epoch != s->info.epoch ||
            (int)pa->mode != j->mode || pa->batch_id.len != sizeof batch_id ||
            memcmp(pa->batch_id.data, batch_id, sizeof batch_id) != 0 || pa->chunk_index != c ||
            pa->elements.len != cnt * BG_OPRF_ELEMENTBYTES) {
            jfail(j, BG_GW_E_BAD_ANSWER, "%s's PSI answer is not for the chunk asked", j->city);
            rc = BG_EPROTO;
        } else {
            rc =
                bg_psi_finish(q, s->snap, first, cnt, pa->elements.data, pa->elements.len, 0, &err);
            if (rc != BG_OK)
                jfail(j, BG_GW_E_BAD_ANSWER, "%s's PSI answer: %s", j->city, err.msg);
        }
        if (pa != NULL)
            bg_pb_free(pa);
        pa = NULL;
        bg_env_opened_free(o);
        o = NULL;
    }
    if (rc == BG_OK && j->mode == BG_PSI_COUNT) {
        size_t m = 0;
        rc = bg_psi_count(q, &m, &err);
        j->count += m;
        j->items += items;
    } else if (rc == BG_OK) {
        j->items = items;
        j->matched = calloc(j->n, 1);
        if (j->mode == BG_PSI_GRADED) {
            j->payloads = calloc(j->n, sizeof *j->payloads);
            j->att = calloc(j->n, sizeof *j->att);
        }
        if (j->matched == NULL ||
            (j->mode == BG_PSI_GRADED && (j->payloads == NULL || j->att == NULL))) {
            rc = BG_ENOMEM;
        }
        bg_roster *r = j->mode == BG_PSI_GRADED ? gw_roster_get(j->gw) : NULL;
        bg_snap_prover *prover = NULL;
        for (size_t i = 0; rc == BG_OK && i < j->n; i++) {
            int matched = 0;
            bg_snap_record rec;
            rc = bg_psi_result(q, i, &matched, &rec, &err);
            j->matched[i] = (uint8_t)matched;
            if (rc == BG_OK && matched && j->payloads != NULL) {
                j->payloads[i] = rec.payload;
                attest_one(j, q, s, &prover, i, &rec, r);
            }
            sodium_memzero(&rec, sizeof rec);
        }
        bg_snap_prover_free(prover);
        bg_roster_free(r);
        if (j->mode == BG_PSI_GRADED)
            j->unopened = bg_psi_unopened(q);
        if (rc != BG_OK)
            jfail(j, BG_GW_E_INTERNAL, "reading results: %s", err.msg);
    }
    free(body);
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

static void *
pjob_run(void *arg)
{
    pjob *j = arg;
    gw_peer *p = gw_peer_get(j->gw, j->city);
    if (p == NULL) {
        jfail(j, BG_GW_E_NOT_PEER, "%s is not a peer in the roster", j->city);
        return NULL;
    }
    snprintf(j->name, sizeof j->name, "%s", p->name);
    gw_cached *s = NULL;
    for (int attempt = 0; attempt < 2; attempt++) {
        int64_t t0 = mono_ms();
        int rc = refresh(j, p, &s);
        int64_t t1 = mono_ms();
        j->snapshot_ms += (uint32_t)(t1 - t0);
        if (rc != BG_OK)
            break;
        if (j->mode == BG_PSI_GRADED && j->st == NULL && j->status_error[0] == '\0')
            fetch_status(j, p); /* with the snapshot: attestations are checked against it */
        bool stale = false;
        rc = run_psi(j, p, s, &stale);
        j->psi_ms += (uint32_t)(mono_ms() - t1);
        j->generation = s->info.generation;
        j->epoch = s->info.epoch;
        j->list_size = s->info.count;
        gw_cached_release(s);
        s = NULL;
        if (rc == BG_OK) {
            j->ok = true;
            j->code = 0;
            j->error[0] = '\0';
            break;
        }
        if (!stale)
            break;
        /* The peer published a new epoch meanwhile: refresh and ask again, once. */
        free(j->matched);
        free(j->payloads);
        j->matched = NULL;
        j->payloads = NULL;
        att_free(j->att, j->n);
        j->att = NULL;
    }
    gw_cached_release(s);
    bg_log(j->ok ? BG_LOG_INFO : BG_LOG_WARN, "psi.query_done",
           "peer=%s list=%s purpose=%s mode=%d items=%zu epoch=%llu snapshot=%s ok=%d code=%u "
           "snapshot_ms=%u psi_ms=%u sent=%llu received=%llu",
           j->city, j->list, j->purpose, j->mode, j->items, (unsigned long long)j->epoch,
           j->snapshot_kind ? j->snapshot_kind : "-", j->ok, j->code, j->snapshot_ms, j->psi_ms,
           (unsigned long long)j->sent, (unsigned long long)j->received);
    gw_peer_release(p);
    return NULL;
}

/* ------------------------------------------------------------- local API */

static int
cmp_code(const void *a, const void *b)
{
    return memcmp(a, b, BG_USCC_LEN);
}

static uint8_t *
pack_answer(Baygate__LocalAnswer *ans, size_t *out_len)
{
    size_t len = baygate__local_answer__get_packed_size(ans);
    uint8_t *out = malloc(len ? len : 1);
    if (out != NULL)
        baygate__local_answer__pack(ans, out);
    *out_len = len;
    return out;
}

static uint8_t *
local_error(uint32_t code, const char *msg, size_t *out_len)
{
    Baygate__LocalAnswer ans = BAYGATE__LOCAL_ANSWER__INIT;
    ans.error_code = code;
    ans.error = (char *)msg;
    return pack_answer(&ans, out_len);
}

static void
date_str(int32_t d, char out[11])
{
    if (d == BG_SNAP_NO_DATE)
        out[0] = '\0';
    else
        bg_date_format(d, out);
}

uint8_t *
psi_local_query(bg_gw *gw, const Baygate__LocalQuery *lq, size_t *out_len)
{
    char msg[300];
    int mode = (int)lq->mode;
    if (mode != BG_PSI_MEMBERSHIP && mode != BG_PSI_GRADED && mode != BG_PSI_COUNT)
        return local_error(BG_GW_E_BAD_MODE, "mode must be 1 (membership), 2 (graded) or 3 (count)",
                           out_len);
    if (lq->list == NULL || bg_pub_list_index(lq->list) < 0)
        return local_error(BG_GW_E_UNKNOWN_LIST,
                           "list must be serious-dishonesty, abnormal-operation or grades",
                           out_len);
    if (mode == BG_PSI_GRADED && strcmp(lq->list, BG_LIST_GRADES) != 0)
        return local_error(BG_GW_E_BAD_MODE, "graded answers come from the list 'grades'", out_len);
    size_t plen = lq->purpose ? strlen(lq->purpose) : 0;
    if (plen == 0 || plen > BG_ROSTER_PURPOSE_MAX)
        return local_error(BG_GW_E_NOT_ALLOWED, "a purpose (1..32 bytes) is required", out_len);
    if (lq->authorisation_ref.len > BG_ENV_AUTH_REF_MAX)
        return local_error(BG_GW_E_BAD_BODY, "authorisation_ref is longer than 64 bytes", out_len);
    /* Refused here, before anything is sent: a peer would refuse it anyway, and the
     * purpose's need for the enterprise's written consent is the asker's duty first. */
    if (gw_policy_needs_authorisation(gw, lq->purpose) && lq->authorisation_ref.len == 0) {
        snprintf(msg, sizeof msg,
                 "purpose '%.32s' needs the enterprise's written authorisation: give the "
                 "digest of the signed consent document (--consent FILE or --auth-ref HEX)",
                 lq->purpose);
        return local_error(BG_GW_E_NOT_ALLOWED, msg, out_len);
    }
    if (lq->n_ids == 0 || lq->n_ids > GW_QUERY_MAX_IDS) {
        snprintf(msg, sizeof msg, "between 1 and %u ids per query", GW_QUERY_MAX_IDS);
        return local_error(BG_GW_E_INVALID_IDS, msg, out_len);
    }
    if (lq->n_peers > BG_ROSTER_MAX_MEMBERS)
        return local_error(BG_GW_E_NOT_PEER, "too many peers", out_len);

    /* Validate and normalise; invalid ids never leave this function except in the report. */
    char(*codes)[BG_USCC_LEN] = malloc(lq->n_ids * sizeof *codes);
    Baygate__InvalidId *inv = calloc(GW_QUERY_INVALID_SHOWN, sizeof *inv);
    Baygate__InvalidId **invp = calloc(GW_QUERY_INVALID_SHOWN, sizeof *invp);
    char(*inv_id)[65] = calloc(GW_QUERY_INVALID_SHOWN, sizeof *inv_id);
    char(*inv_why)[160] = calloc(GW_QUERY_INVALID_SHOWN, sizeof *inv_why);
    if (codes == NULL || inv == NULL || invp == NULL || inv_id == NULL || inv_why == NULL) {
        free(codes), free(inv), free(invp), free(inv_id), free(inv_why);
        return local_error(BG_GW_E_INTERNAL, "out of memory", out_len);
    }
    size_t nvalid = 0, ninvalid = 0, shown = 0;
    for (size_t i = 0; i < lq->n_ids; i++) {
        const char *id = lq->ids[i] ? lq->ids[i] : "";
        bg_uscc u;
        bg_err err = {0};
        size_t len = strnlen(id, BG_USCC_INPUT_MAX + 1);
        if (bg_uscc_parse(id, len, &u, &err) == BG_OK) {
            memcpy(codes[nvalid++], u.code, BG_USCC_LEN);
            continue;
        }
        ninvalid++;
        if (shown < GW_QUERY_INVALID_SHOWN) {
            Baygate__InvalidId *v = &inv[shown];
            baygate__invalid_id__init(v);
            v->index = (uint32_t)i;
            size_t k = bg_utf8_valid_prefix((const unsigned char *)id, len < 64 ? len : 64);
            memcpy(inv_id[shown], id, k);
            inv_id[shown][k] = '\0';
            snprintf(inv_why[shown], sizeof inv_why[shown], "%.150s", err.msg);
            v->id = inv_id[shown];
            v->reason = inv_why[shown];
            invp[shown] = v;
            shown++;
        }
    }
    qsort(codes, nvalid, sizeof *codes, cmp_code);
    size_t nd = 0;
    for (size_t i = 0; i < nvalid; i++)
        if (nd == 0 || memcmp(codes[nd - 1], codes[i], BG_USCC_LEN) != 0)
            memmove(codes[nd++], codes[i], BG_USCC_LEN);

    /* Peers: the ones asked for, or every peer of the roster. */
    char cities[BG_ROSTER_MAX_MEMBERS][BG_CITY_CODE_LEN + 1];
    size_t ncities = 0;
    if (lq->n_peers == 0) {
        gw_peer *peers[BG_ROSTER_MAX_MEMBERS];
        size_t n = gw_peers_get(gw, peers);
        for (size_t i = 0; i < n; i++) {
            snprintf(cities[ncities++], sizeof cities[0], "%s", peers[i]->city);
            gw_peer_release(peers[i]);
        }
    } else {
        for (size_t i = 0; i < lq->n_peers; i++) {
            if (!bg_city_code_valid(lq->peers[i])) {
                free(codes), free(inv), free(invp), free(inv_id), free(inv_why);
                return local_error(BG_GW_E_NOT_PEER, "peers must be 6-digit city codes", out_len);
            }
            snprintf(cities[ncities++], sizeof cities[0], "%s", lq->peers[i]);
        }
    }

    const uint8_t **inputs = calloc(nd ? nd : 1, sizeof *inputs);
    size_t *lens = calloc(nd ? nd : 1, sizeof *lens);
    pjob *jobs = calloc(ncities ? ncities : 1, sizeof *jobs);
    if (inputs == NULL || lens == NULL || jobs == NULL) {
        free(codes), free(inv), free(invp), free(inv_id), free(inv_why);
        free(inputs), free(lens), free(jobs);
        return local_error(BG_GW_E_INTERNAL, "out of memory", out_len);
    }
    for (size_t i = 0; i < nd; i++) {
        inputs[i] = (const uint8_t *)codes[i];
        lens[i] = BG_USCC_LEN;
    }
    int timeout = lq->timeout_ms ? (int)lq->timeout_ms : (int)gw->cfg.request_ms;
    if (timeout > BG_TP_TIMEOUT_MAX_MS)
        timeout = BG_TP_TIMEOUT_MAX_MS;
    if (nd > 0) {
        for (size_t i = 0; i < ncities; i++) {
            pjob *j = &jobs[i];
            j->gw = gw;
            memcpy(j->city, cities[i], sizeof j->city);
            j->list = lq->list;
            j->purpose = lq->purpose;
            j->auth = lq->authorisation_ref.len ? lq->authorisation_ref.data : NULL;
            j->auth_len = lq->authorisation_ref.len;
            j->mode = mode;
            j->timeout_ms = timeout;
            j->inputs = inputs;
            j->lens = lens;
            j->n = nd;
            j->want_attest = lq->attestations;
            j->started = pthread_create(&j->thread, NULL, pjob_run, j) == 0;
            if (!j->started)
                pjob_run(j);
        }
        for (size_t i = 0; i < ncities; i++)
            if (jobs[i].started)
                pthread_join(jobs[i].thread, NULL);
    }

    /* The answer. */
    Baygate__LocalAnswer ans = BAYGATE__LOCAL_ANSWER__INIT;
    Baygate__QueryAnswer qa = BAYGATE__QUERY_ANSWER__INIT;
    qa.list = lq->list;
    qa.mode = (uint32_t)mode;
    qa.valid_ids = (uint32_t)nd;
    qa.invalid_total = (uint32_t)ninvalid;
    qa.n_invalid = shown;
    qa.invalid = invp;
    Baygate__PeerQueryResult *pr = calloc(ncities ? ncities : 1, sizeof *pr);
    Baygate__PeerQueryResult **prp = calloc(ncities ? ncities : 1, sizeof *prp);
    bool oom = pr == NULL || prp == NULL;
    /* Per peer: matched codes as NUL-terminated strings, and grade records. */
    char **strs = calloc(ncities ? ncities : 1, sizeof *strs);
    char ***matchp = calloc(ncities ? ncities : 1, sizeof *matchp);
    Baygate__GradeResult **gr = calloc(ncities ? ncities : 1, sizeof *gr);
    Baygate__GradeResult ***grp = calloc(ncities ? ncities : 1, sizeof *grp);
    char **dates = calloc(ncities ? ncities : 1, sizeof *dates);
    oom = oom || strs == NULL || matchp == NULL || gr == NULL || grp == NULL || dates == NULL;
    for (size_t i = 0; !oom && i < ncities; i++) {
        pjob *j = &jobs[i];
        Baygate__PeerQueryResult *r = &pr[i];
        baygate__peer_query_result__init(r);
        prp[i] = r;
        r->peer = j->city;
        r->peer_name = j->name;
        r->ok = j->ok;
        r->error_code = j->code;
        r->error = j->ok ? NULL : j->error;
        if (nd == 0) {
            r->ok = false;
            r->error_code = BG_GW_E_INVALID_IDS;
            r->error = "no valid id to ask about";
            r->peer = cities[i];
            continue;
        }
        r->generation = j->generation;
        r->epoch = j->epoch;
        r->list_size = j->list_size;
        r->snapshot = (char *)(j->snapshot_kind ? j->snapshot_kind : "");
        r->items = (uint32_t)j->items;
        r->count = j->count;
        r->unopened = j->unopened;
        r->snapshot_ms = j->snapshot_ms;
        r->psi_ms = j->psi_ms;
        r->bytes_sent = j->sent;
        r->bytes_received = j->received;
        if (j->st != NULL)
            r->status_number = bg_attest_status_number(j->st);
        if (j->want_attest && j->status != NULL) {
            r->status_list.data = j->status;
            r->status_list.len = j->status_len;
        }
        if (!j->ok || j->matched == NULL)
            continue;
        size_t m = 0;
        for (size_t k = 0; k < nd; k++)
            m += j->matched[k] != 0;
        strs[i] = malloc(m * (BG_USCC_LEN + 1) + 1);
        matchp[i] = calloc(m + 1, sizeof(char *));
        if (strs[i] == NULL || matchp[i] == NULL) {
            oom = true;
            break;
        }
        if (j->payloads != NULL) {
            gr[i] = calloc(m + 1, sizeof(Baygate__GradeResult));
            grp[i] = calloc(m + 1, sizeof(Baygate__GradeResult *));
            dates[i] = calloc(m + 1, 22);
            if (gr[i] == NULL || grp[i] == NULL || dates[i] == NULL) {
                oom = true;
                break;
            }
        }
        size_t w = 0;
        for (size_t k = 0; k < nd; k++) {
            if (!j->matched[k])
                continue;
            char *code = strs[i] + w * (BG_USCC_LEN + 1);
            memcpy(code, codes[k], BG_USCC_LEN);
            code[BG_USCC_LEN] = '\0';
            matchp[i][w] = code;
            if (j->payloads != NULL) {
                Baygate__GradeResult *g = &gr[i][w];
                baygate__grade_result__init(g);
                bg_snap_payload *pl = &j->payloads[k];
                g->uscc = code;
                g->grade = pl->grade;
                g->scale = pl->scale;
                date_str(pl->evaluated_at, dates[i] + 22 * w);
                date_str(pl->valid_until, dates[i] + 22 * w + 11);
                g->evaluated_at = dates[i] + 22 * w;
                g->valid_until = dates[i] + 22 * w + 11;
                g->serial = pl->serial;
                pattest *a = &j->att[k];
                g->common_grade = a->common;
                g->common_rank = a->rank;
                g->attested = a->ok;
                g->attestation_error = a->why;
                g->attestation.data = a->bytes;
                g->attestation.len = a->len;
                grp[i][w] = g;
            }
            w++;
        }
        r->n_matches = w;
        r->matches = matchp[i];
        if (j->payloads != NULL) {
            r->n_grades = w;
            r->grades = grp[i];
        }
    }
    uint8_t *out = NULL;
    if (oom) {
        out = local_error(BG_GW_E_INTERNAL, "out of memory", out_len);
    } else {
        qa.n_peers = ncities;
        qa.peers = prp;
        ans.result_case = BAYGATE__LOCAL_ANSWER__RESULT_QUERY;
        ans.query = &qa;
        out = pack_answer(&ans, out_len);
    }
    for (size_t i = 0; i < ncities; i++) {
        if (strs != NULL)
            free(strs[i]);
        if (matchp != NULL)
            free(matchp[i]);
        if (gr != NULL)
            free(gr[i]);
        if (grp != NULL)
            free(grp[i]);
        if (dates != NULL)
            free(dates[i]);
        free(jobs[i].matched);
        att_free(jobs[i].att, nd);
        free(jobs[i].att_ref);
        free(jobs[i].status);
        bg_attest_status_free(jobs[i].st);
        if (jobs[i].payloads != NULL) {
            sodium_memzero(jobs[i].payloads, nd * sizeof *jobs[i].payloads);
            free(jobs[i].payloads);
        }
    }
    free(strs), free(matchp), free(gr), free(grp), free(dates), free(pr), free(prp);
    free(jobs), free(inputs), free(lens);
    free(codes), free(inv), free(invp), free(inv_id), free(inv_why);
    return out;
}
