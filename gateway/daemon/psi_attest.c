/*
 * psi_attest.c - the peer's status list and the attestations of graded matches (see
 * psi_attest.h).
 */
#include "gateway/daemon/psi_attest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "gateway/attest/attest.h"
#include "gateway/daemon/core.h"
#include "proto/pb.h"
#include "proto/psi.pb-c.h"

/*
 * Graded queries: the peer's current status list, verified (its certificate, pinned in
 * the roster; its signature; a number not below the newest we saw). Its certificate is
 * the one attestations of the peer's grades carry. A failure is kept in
 * j->status_error: the grades still come back, marked as not verified.
 */
void
psi_attest_fetch_status(pjob *j, gw_peer *p)
{
    Baygate__StatusListRequest rq = BAYGATE__STATUS_LIST_REQUEST__INIT;
    uint64_t seen = gw_cache_status_seen(&j->gw->cache, j->city);
    rq.have_number = seen;
    uint8_t body[16];
    size_t blen = baygate__status_list_request__pack(&rq, body);
    bg_env_opened *o = NULL;
    /* Not through psi_job_call: a refusal here must not fail the job, only its attestations. */
    bg_env_fields f = psi_job_fields(j, BAYGATE__PSI_BODY__PSI_BODY_STATUS_REQUEST, body, blen);
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

/* Builds and checks the attestation of input i's graded match (rec) in snapshot s. */
void
psi_attest_one(pjob *j, const bg_psi_query *q, const gw_cached *s, bg_snap_prover **prover,
               size_t i, const bg_snap_record *rec, const bg_roster *r)
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
    a->expired = !a->ok && why == BG_ATTEST_EXPIRED;
    if (!a->ok)
        snprintf(a->why, sizeof a->why, "%.230s", err.msg);
    if (j->want_attest && bg_attest_encode(at, &a->bytes, &a->len, &err) != BG_OK)
        snprintf(a->why, sizeof a->why, "cannot encode: %.200s", err.msg);
    free(at);
}
