/*
 * psi_query.c - the local API's Query: check the request, normalise the ids, choose
 * the peers, run a job per peer at once (psi_run.h), build the answer (see
 * psi_query.h). Everything a query holds is in one struct query, freed by query_free.
 */
#include "gateway/daemon/psi_query.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/json.h"
#include "domain/city.h"
#include "domain/date.h"
#include "domain/list.h"
#include "domain/uscc.h"
#include "gateway/audit/audit.h"
#include "gateway/daemon/codes.h"
#include "gateway/daemon/core.h"
#include "gateway/daemon/policy.h"
#include "gateway/daemon/psi_job.h"
#include "gateway/daemon/psi_pub.h"
#include "gateway/daemon/psi_run.h"
#include "mpc/psi.h"
#include "proto/api.pb-c.h"

/* Bytes per grade for its two dates ("YYYY-MM-DD\0" each). */
#define QUERY_DATES 22

/* One invalid id as reported (the first GW_QUERY_INVALID_SHOWN of them). */
typedef struct qinvalid {
    Baygate__InvalidId msg;
    char id[65];
    char why[160];
} qinvalid;

/* One peer of the query: its job and its part of the answer. */
typedef struct qpeer {
    pjob job;
    Baygate__PeerQueryResult r;
    char *codes;    /* the matched codes, NUL-terminated, one after another */
    char **matches; /* into codes */
    Baygate__GradeResult *grades;
    Baygate__GradeResult **gradep;
    char *dates; /* QUERY_DATES bytes per grade */
} qpeer;

/* Everything one local query holds. */
typedef struct query {
    const Baygate__LocalQuery *lq;
    int mode;
    char (*codes)[BG_USCC_LEN]; /* the distinct valid ids, sorted: nd of them */
    size_t nd;
    const uint8_t **inputs; /* the jobs' view of codes */
    size_t *lens;
    qinvalid *inv; /* shown of the ninvalid */
    Baygate__InvalidId **invp;
    size_t ninvalid, shown;
    qpeer *peers;
    Baygate__PeerQueryResult **peerp;
    size_t npeers;
} query;

static void
query_free(query *q)
{
    for (size_t i = 0; q->peers != NULL && i < q->npeers; i++) {
        qpeer *qp = &q->peers[i];
        psi_job_free(&qp->job);
        free(qp->codes);
        free(qp->matches);
        free(qp->grades);
        free(qp->gradep);
        free(qp->dates);
    }
    free(q->peers);
    free(q->peerp);
    free(q->inputs);
    free(q->lens);
    free(q->codes);
    free(q->inv);
    free(q->invp);
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

/* ---------------------------------------------------------------- check */

/* The lists our roster lets us ask some peer about (with "grades" when any), into out. */
static void
roster_lists(const bg_roster *r, const char *self, char *out, size_t n)
{
    bool any[BG_LIST_COUNT] = {false};
    for (size_t i = 0; r != NULL && i < bg_roster_permission_count(r); i++) {
        const bg_roster_perm *pm = bg_roster_permission_at(r, i);
        for (int l = 0; strcmp(pm->asker, self) == 0 && l < BG_LIST_COUNT; l++)
            any[l] |= pm->lists[l];
    }
    size_t o = 0;
    out[0] = '\0';
    for (int l = 0; l < BG_LIST_COUNT; l++)
        if (any[l] && o < n)
            o += (size_t)snprintf(out + o, n - o, "%s, ", bg_list_names[l]);
    if (o < n)
        snprintf(out + o, n - o, "%s", o ? BG_LIST_GRADES : "none");
}

/* The purposes our roster declares, into out. */
static void
roster_purposes(const bg_roster *r, char *out, size_t n)
{
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; r != NULL && i < bg_roster_purpose_count(r) && o < n; i++)
        o += (size_t)snprintf(out + o, n - o, "%s%s", i ? ", " : "",
                              bg_roster_purpose_at(r, i)->name);
    if (o == 0)
        snprintf(out, n, "none");
}

/* A list or purpose our roster does not know is refused here, naming what it allows,
 * rather than sent to every peer to be refused there. NULL if both are known. */
static const char *
query_check_roster(bg_gw *gw, const Baygate__LocalQuery *lq, uint32_t *code, char *msg, size_t n)
{
    char known[200];
    const char *why = NULL;
    bg_roster *r = gw_roster_get(gw);
    if (lq->list == NULL || bg_pub_list_index(lq->list) < 0) {
        *code = BG_GW_E_UNKNOWN_LIST;
        roster_lists(r, gw->cfg.city, known, sizeof known);
        snprintf(msg, n,
                 "list must be serious-dishonesty, abnormal-operation or grades, not '%.40s' "
                 "(the roster lets us ask about: %s)",
                 lq->list ? lq->list : "", known);
        why = msg;
    } else if (r != NULL && lq->purpose != NULL && lq->purpose[0] != '\0' &&
               bg_roster_purpose_find(r, lq->purpose) == NULL) {
        *code = BG_GW_E_NOT_ALLOWED;
        roster_purposes(r, known, sizeof known);
        snprintf(msg, n, "purpose '%.32s' is not in the roster (it declares: %s)", lq->purpose,
                 known);
        why = msg;
    }
    bg_roster_free(r);
    return why;
}

/* NULL if lq may be asked, else why not (static or in msg) with *code. */
static const char *
query_check(bg_gw *gw, const Baygate__LocalQuery *lq, uint32_t *code, char *msg, size_t n)
{
    int mode = (int)lq->mode;
    *code = BG_GW_E_BAD_MODE;
    if (mode != BG_PSI_MEMBERSHIP && mode != BG_PSI_GRADED && mode != BG_PSI_COUNT)
        return "mode must be 1 (membership), 2 (graded) or 3 (count)";
    size_t plen = lq->purpose ? strlen(lq->purpose) : 0;
    *code = BG_GW_E_NOT_ALLOWED;
    if (plen == 0 || plen > BG_ROSTER_PURPOSE_MAX)
        return "a purpose (1..32 bytes) is required";
    const char *why = query_check_roster(gw, lq, code, msg, n);
    if (why != NULL)
        return why;
    *code = BG_GW_E_BAD_MODE;
    if (mode == BG_PSI_GRADED && strcmp(lq->list, BG_LIST_GRADES) != 0)
        return "graded answers come from the list 'grades'";
    *code = BG_GW_E_BAD_BODY;
    if (lq->authorisation_ref.len > BG_ENV_AUTH_REF_MAX)
        return "authorisation_ref is longer than 64 bytes";
    if (lq->application != NULL && strlen(lq->application) > BG_AUDIT_TEXT_MAX)
        return "application is longer than 64 bytes";
    /* Refused here, before anything is sent: a peer would refuse it anyway, and the
     * purpose's need for the enterprise's written consent is the asker's duty first. */
    *code = BG_GW_E_NOT_ALLOWED;
    if (gw_policy_needs_authorisation(gw, lq->purpose) && lq->authorisation_ref.len == 0) {
        snprintf(msg, n,
                 "purpose '%.32s' needs the enterprise's written authorisation: give the "
                 "digest of the signed consent document (--consent FILE or --auth-ref HEX)",
                 lq->purpose);
        return msg;
    }
    *code = BG_GW_E_INVALID_IDS;
    if (lq->n_ids == 0 || lq->n_ids > GW_QUERY_MAX_IDS) {
        snprintf(msg, n, "between 1 and %u ids per query", GW_QUERY_MAX_IDS);
        return msg;
    }
    *code = BG_GW_E_NOT_PEER;
    if (lq->n_peers > BG_ROSTER_MAX_MEMBERS)
        return "too many peers";
    *code = 0;
    return NULL;
}

/* ------------------------------------------------------------ normalise */

static int
cmp_code(const void *a, const void *b)
{
    return memcmp(a, b, BG_USCC_LEN);
}

/* Keeps the report of invalid id i (input id of len bytes) if there is room. */
static void
query_invalid(query *q, size_t i, const char *id, size_t len, const char *why)
{
    q->ninvalid++;
    if (q->shown == GW_QUERY_INVALID_SHOWN)
        return;
    qinvalid *v = &q->inv[q->shown];
    baygate__invalid_id__init(&v->msg);
    v->msg.index = (uint32_t)i;
    size_t k = bg_utf8_valid_prefix((const unsigned char *)id, len < 64 ? len : 64);
    memcpy(v->id, id, k);
    v->id[k] = '\0';
    snprintf(v->why, sizeof v->why, "%.150s", why);
    v->msg.id = v->id;
    v->msg.reason = v->why;
    q->invp[q->shown++] = &v->msg;
}

/* Validates every id (bg_uscc_parse): the valid ones canonical, sorted and distinct in
 * q->codes; invalid ones never leave the gateway except in the report. */
static int
query_ids(query *q)
{
    const Baygate__LocalQuery *lq = q->lq;
    q->codes = malloc(lq->n_ids * sizeof *q->codes);
    q->inv = calloc(GW_QUERY_INVALID_SHOWN, sizeof *q->inv);
    q->invp = calloc(GW_QUERY_INVALID_SHOWN, sizeof *q->invp);
    if (q->codes == NULL || q->inv == NULL || q->invp == NULL)
        return BG_ENOMEM;
    size_t nvalid = 0;
    for (size_t i = 0; i < lq->n_ids; i++) {
        const char *id = lq->ids[i] ? lq->ids[i] : "";
        bg_uscc u;
        bg_err err = {0};
        size_t len = strnlen(id, BG_USCC_INPUT_MAX + 1);
        if (bg_uscc_parse(id, len, &u, &err) == BG_OK)
            memcpy(q->codes[nvalid++], u.code, BG_USCC_LEN);
        else
            query_invalid(q, i, id, len, err.msg);
    }
    if (nvalid > 1) /* qsort may not be given a NULL array, even of no elements */
        qsort(q->codes, nvalid, sizeof *q->codes, cmp_code);
    q->nd = 0;
    for (size_t i = 0; i < nvalid; i++)
        if (q->nd == 0 || memcmp(q->codes[q->nd - 1], q->codes[i], BG_USCC_LEN) != 0)
            memmove(q->codes[q->nd++], q->codes[i], BG_USCC_LEN);
    q->inputs = calloc(q->nd ? q->nd : 1, sizeof *q->inputs);
    q->lens = calloc(q->nd ? q->nd : 1, sizeof *q->lens);
    if (q->inputs == NULL || q->lens == NULL)
        return BG_ENOMEM;
    for (size_t i = 0; i < q->nd; i++) {
        q->inputs[i] = (const uint8_t *)q->codes[i];
        q->lens[i] = BG_USCC_LEN;
    }
    return BG_OK;
}

/* ---------------------------------------------------------- choose peers */

/* The peers asked for, or every peer of the roster, each with its job set up.
 * BG_EINVAL: a peer is not a city code. */
static int
query_peers(bg_gw *gw, query *q)
{
    const Baygate__LocalQuery *lq = q->lq;
    char cities[BG_ROSTER_MAX_MEMBERS][BG_CITY_CODE_LEN + 1];
    size_t n = 0;
    if (lq->n_peers == 0) {
        gw_peer *peers[BG_ROSTER_MAX_MEMBERS];
        size_t np = gw_peers_get(gw, peers);
        for (size_t i = 0; i < np; i++) {
            snprintf(cities[n++], sizeof cities[0], "%s", peers[i]->city);
            gw_peer_release(peers[i]);
        }
    } else {
        for (size_t i = 0; i < lq->n_peers; i++) {
            if (!bg_city_code_valid(lq->peers[i]))
                return BG_EINVAL;
            snprintf(cities[n++], sizeof cities[0], "%s", lq->peers[i]);
        }
    }
    q->peers = calloc(n ? n : 1, sizeof *q->peers);
    q->peerp = calloc(n ? n : 1, sizeof *q->peerp);
    if (q->peers == NULL || q->peerp == NULL)
        return BG_ENOMEM;
    q->npeers = n;
    int timeout = lq->timeout_ms ? (int)lq->timeout_ms : (int)gw->cfg.request_ms;
    if (timeout > BG_TP_TIMEOUT_MAX_MS)
        timeout = BG_TP_TIMEOUT_MAX_MS;
    for (size_t i = 0; i < n; i++) {
        pjob *j = &q->peers[i].job;
        j->gw = gw;
        memcpy(j->city, cities[i], sizeof j->city);
        j->list = lq->list;
        j->purpose = lq->purpose;
        j->application = lq->application;
        j->auth = lq->authorisation_ref.len ? lq->authorisation_ref.data : NULL;
        j->auth_len = lq->authorisation_ref.len;
        j->mode = q->mode;
        j->timeout_ms = timeout;
        j->inputs = q->inputs;
        j->lens = q->lens;
        j->n = q->nd;
        j->want_attest = lq->attestations;
        randombytes_buf(j->request_id, sizeof j->request_id);
    }
    return BG_OK;
}

/* ------------------------------------------------------------- run jobs */

/* Every peer at once, a thread each (run inline if a thread cannot be had). */
static void
query_run(query *q)
{
    for (size_t i = 0; i < q->npeers; i++) {
        pjob *j = &q->peers[i].job;
        j->started = pthread_create(&j->thread, NULL, psi_run_job, j) == 0;
        if (!j->started)
            psi_run_job(j);
    }
    for (size_t i = 0; i < q->npeers; i++)
        if (q->peers[i].job.started)
            pthread_join(q->peers[i].job.thread, NULL);
}

/* --------------------------------------------------------- build answer */

static void
date_str(int32_t d, char out[11])
{
    if (d == BG_SNAP_NO_DATE)
        out[0] = '\0';
    else
        bg_date_format(d, out);
}

/* Match w (input k) of a graded job: its grade, dates and attestation. */
static void
grade_row(qpeer *qp, size_t w, size_t k, char *code)
{
    const pjob *j = &qp->job;
    Baygate__GradeResult *g = &qp->grades[w];
    baygate__grade_result__init(g);
    const bg_snap_payload *pl = &j->payloads[k];
    char *dates = qp->dates + QUERY_DATES * w;
    g->uscc = code;
    g->grade = (char *)pl->grade;
    g->scale = (char *)pl->scale;
    date_str(pl->evaluated_at, dates);
    date_str(pl->valid_until, dates + 11);
    g->evaluated_at = dates;
    g->valid_until = dates + 11;
    g->serial = pl->serial;
    pattest *a = &j->att[k];
    g->common_grade = a->common;
    g->common_rank = a->rank;
    g->attested = a->ok;
    g->attestation_error = a->why;
    g->attestation_status = a->ok ? "attested" : a->expired ? "expired" : "unattested";
    g->attestation.data = a->bytes;
    g->attestation.len = a->len;
    qp->gradep[w] = g;
}

/* The matched codes (and grades) of a job that ran, into qp->r. */
static int
peer_matches(const query *q, qpeer *qp)
{
    const pjob *j = &qp->job;
    size_t m = 0;
    for (size_t k = 0; k < q->nd; k++)
        m += j->matched[k] != 0;
    qp->codes = malloc(m * (BG_USCC_LEN + 1) + 1);
    qp->matches = calloc(m + 1, sizeof(char *));
    if (qp->codes == NULL || qp->matches == NULL)
        return BG_ENOMEM;
    if (j->payloads != NULL) {
        qp->grades = calloc(m + 1, sizeof *qp->grades);
        qp->gradep = calloc(m + 1, sizeof *qp->gradep);
        qp->dates = calloc(m + 1, QUERY_DATES);
        if (qp->grades == NULL || qp->gradep == NULL || qp->dates == NULL)
            return BG_ENOMEM;
    }
    size_t w = 0;
    for (size_t k = 0; k < q->nd; k++) {
        if (!j->matched[k])
            continue;
        char *code = qp->codes + w * (BG_USCC_LEN + 1);
        memcpy(code, q->codes[k], BG_USCC_LEN);
        code[BG_USCC_LEN] = '\0';
        qp->matches[w] = code;
        if (j->payloads != NULL)
            grade_row(qp, w, k, code);
        w++;
    }
    qp->r.n_matches = w;
    qp->r.matches = qp->matches;
    if (j->payloads != NULL) {
        qp->r.n_grades = w;
        qp->r.grades = qp->gradep;
    }
    return BG_OK;
}

/* One peer's result: what its job found, or why it could not. */
static int
peer_result(const query *q, qpeer *qp)
{
    const pjob *j = &qp->job;
    Baygate__PeerQueryResult *r = &qp->r;
    baygate__peer_query_result__init(r);
    r->peer = (char *)j->city;
    r->peer_name = (char *)j->name;
    if (j->asked) {
        r->request_id.data = (uint8_t *)j->request_id;
        r->request_id.len = sizeof j->request_id;
    }
    if (q->nd == 0) {
        r->ok = false;
        r->error_code = BG_GW_E_INVALID_IDS;
        r->error = "no valid id to ask about";
        return BG_OK;
    }
    r->ok = j->ok;
    r->error_code = j->code;
    r->error = j->ok ? NULL : (char *)j->error;
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
        return BG_OK;
    return peer_matches(q, qp);
}

static uint8_t *
query_answer(query *q, size_t *out_len)
{
    for (size_t i = 0; i < q->npeers; i++) {
        if (peer_result(q, &q->peers[i]) != BG_OK)
            return local_error(BG_GW_E_INTERNAL, "out of memory", out_len);
        q->peerp[i] = &q->peers[i].r;
    }
    Baygate__QueryAnswer qa = BAYGATE__QUERY_ANSWER__INIT;
    qa.list = q->lq->list;
    qa.mode = (uint32_t)q->mode;
    qa.valid_ids = (uint32_t)q->nd;
    qa.invalid_total = (uint32_t)q->ninvalid;
    qa.n_invalid = q->shown;
    qa.invalid = q->invp;
    qa.n_peers = q->npeers;
    qa.peers = q->peerp;
    Baygate__LocalAnswer ans = BAYGATE__LOCAL_ANSWER__INIT;
    ans.result_case = BAYGATE__LOCAL_ANSWER__RESULT_QUERY;
    ans.query = &qa;
    return pack_answer(&ans, out_len);
}

uint8_t *
psi_local_query(bg_gw *gw, const Baygate__LocalQuery *lq, size_t *out_len)
{
    char msg[300];
    uint32_t code = 0;
    const char *why = query_check(gw, lq, &code, msg, sizeof msg);
    if (why != NULL)
        return local_error(code, why, out_len);
    query q = {.lq = lq, .mode = (int)lq->mode};
    int rc = query_ids(&q);
    if (rc == BG_OK)
        rc = query_peers(gw, &q);
    uint8_t *out;
    if (rc == BG_EINVAL) {
        out = local_error(BG_GW_E_NOT_PEER, "peers must be 6-digit city codes", out_len);
    } else if (rc != BG_OK) {
        out = local_error(BG_GW_E_INTERNAL, "out of memory", out_len);
    } else {
        if (q.nd > 0)
            query_run(&q);
        out = query_answer(&q, out_len);
    }
    query_free(&q);
    return out;
}
