/*
 * api_res_lookup.c - GET /v1/enterprises/{uscc}: one enterprise in every city, ours
 * included, as `baygate lookup --json` gives it. Our city from our store (the local
 * Lookup), every peer by private set intersection (one local Query per list, the peers
 * asked at once): the peers never learn which enterprise it is.
 */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "domain/date.h"
#include "domain/uscc.h"
#include "gateway/api/api_local.h"
#include "gateway/api/api_res.h"
#include "gateway/api/api_resp.h"
#include "gateway/daemon/codes.h"
#include "gateway/daemon/log.h"
#include "proto/pb.h"

#define LK_LISTS 3
#define LK_AUTH_MAX 64U

static const char *const lk_lists[LK_LISTS] = {"serious-dishonesty", "abnormal-operation",
                                               "grades"};

typedef struct lk {
    char code[BG_USCC_LEN + 1];
    const char *purpose;
    uint8_t auth[LK_AUTH_MAX];
    size_t auth_len;
    Baygate__LocalAnswer *own, *q[LK_LISTS];
} lk;

static void
lk_free(lk *l)
{
    bg_pb_free(l->own);
    for (int i = 0; i < LK_LISTS; i++)
        bg_pb_free(l->q[i]);
    sodium_memzero(l->code, sizeof l->code);
}

static const Baygate__PeerQueryResult *
peer_in(const Baygate__LocalAnswer *a, const char *city)
{
    for (size_t i = 0; a != NULL && a->query != NULL && i < a->query->n_peers; i++)
        if (strcmp(a->query->peers[i]->peer, city) == 0)
            return a->query->peers[i];
    return NULL;
}

static bool
still_valid(const char *until)
{
    int32_t d = 0;
    return until != NULL && bg_date_parse(until, strlen(until), &d, NULL) == BG_OK &&
           d >= bg_date_today();
}

static const char *
request_hex(const Baygate__PeerQueryResult *p, char out[33])
{
    out[0] = '\0';
    if (p != NULL && p->request_id.len == 16)
        sodium_bin2hex(out, 33, p->request_id.data, 16);
    return out;
}

static void
json_grade_fields(FILE *f, const char *grade, const char *scale, const char *common, uint32_t rank,
                  const char *eval, const char *until)
{
    api_json_kv(f, "grade", grade, false);
    api_json_kv(f, "scale", scale, true);
    api_json_kv(f, "common_grade", common, true);
    fprintf(f, ",\"common_rank\":%u", rank);
    api_json_kv(f, "evaluated_at", eval, true);
    api_json_kv(f, "valid_until", until, true);
}

static void
json_own(FILE *f, const Baygate__LookupAnswer *la)
{
    fprintf(f, "{");
    api_json_kv(f, "city", la->city, false);
    api_json_kv(f, "name", la->city_name, true);
    fprintf(f, ",\"own\":true,\"found\":%s", la->found ? "true" : "false");
    api_json_kv(f, "enterprise_name", la->name, true);
    fprintf(f, ",\"lists\":[");
    for (int l = 0; l < 2; l++) {
        const Baygate__LookupEntry *e = NULL;
        for (size_t k = 0; k < la->n_entries; k++)
            if (strcmp(la->entries[k]->list, lk_lists[l]) == 0)
                e = la->entries[k];
        fprintf(f, "%s{", l ? "," : "");
        api_json_kv(f, "list", lk_lists[l], false);
        api_json_kv(f, "status", e ? "listed" : "not listed", true);
        if (e != NULL) {
            api_json_kv(f, "listed_at", e->listed_at, true);
            api_json_kv(f, "expires_at", e->expires_at, true);
            api_json_kv(f, "reason", e->reason, true);
            fprintf(f, ",\"in_force\":%s", e->in_force ? "true" : "false");
        }
        fprintf(f, "}");
    }
    fprintf(f, "],\"grade\":");
    if (!la->graded) {
        fprintf(f, "null}");
        return;
    }
    fprintf(f, "{");
    json_grade_fields(f, la->grade, la->scale, la->common_grade, la->common_rank, la->evaluated_at,
                      la->valid_until);
    fprintf(f, ",\"valid\":%s,\"attested\":null}}", la->valid ? "true" : "false");
}

static void
json_grade(FILE *f, const Baygate__PeerQueryResult *p)
{
    if (p->n_grades == 0) {
        fprintf(f, "null");
        return;
    }
    const Baygate__GradeResult *g = p->grades[0];
    fprintf(f, "{");
    json_grade_fields(f, g->grade, g->scale, g->common_grade, g->common_rank, g->evaluated_at,
                      g->valid_until);
    fprintf(f, ",\"valid\":%s,\"attested\":%s", still_valid(g->valid_until) ? "true" : "false",
            g->attested ? "true" : "false");
    if (!g->attested)
        api_json_kv(f, "attestation_error", g->attestation_error, true);
    fprintf(f, "}");
}

/* The grade part of a peer's object (after its lists). */
static void
json_peer_grade(FILE *f, const Baygate__PeerQueryResult *p)
{
    bool ok = p != NULL && p->ok;
    char rid[33];
    api_json_kv(f, "grade_request_id", request_hex(p, rid), true);
    fprintf(f, ",\"grade_status\":\"%s\"", !ok ? "error" : p->n_grades ? "graded" : "not graded");
    if (!ok)
        api_json_kv(f, "grade_error", p ? p->error : "no answer", true);
    fprintf(f, ",\"grade\":");
    if (ok)
        json_grade(f, p);
    else
        fprintf(f, "null");
}

static void
json_peer(FILE *f, const lk *l, const Baygate__PeerQueryResult *p0)
{
    fprintf(f, ",{");
    api_json_kv(f, "city", p0->peer, false);
    api_json_kv(f, "name", p0->peer_name, true);
    fprintf(f, ",\"own\":false,\"lists\":[");
    for (int i = 0; i < 2; i++) {
        const Baygate__PeerQueryResult *p = peer_in(l->q[i], p0->peer);
        bool ok = p != NULL && p->ok;
        char rid[33];
        fprintf(f, "%s{", i ? "," : "");
        api_json_kv(f, "list", lk_lists[i], false);
        api_json_kv(f, "status", !ok ? "error" : p->n_matches ? "listed" : "not listed", true);
        api_json_kv(f, "request_id", request_hex(p, rid), true);
        if (!ok)
            api_json_kv(f, "error", p ? p->error : "no answer", true);
        fprintf(f, "}");
    }
    fprintf(f, "]");
    json_peer_grade(f, peer_in(l->q[2], p0->peer));
    fprintf(f, "}");
}

/* A refusal of the gateway's as a problem; true if there was one. */
static bool
gateway_refused(const Baygate__LocalAnswer *a, api_resp *r)
{
    if (a != NULL && a->error_code == 0)
        return false;
    const char *msg = a && a->error ? a->error : "no answer";
    if (a != NULL && a->error_code == BG_GW_E_NOT_ALLOWED)
        api_problem(r, 403, "not-allowed", "The federation does not allow this", "%s", msg);
    else if (a != NULL && a->error_code == BG_GW_E_INVALID_IDS)
        api_problem(r, 400, "invalid-uscc", "Not a valid USCC", "%s", msg);
    else
        api_problem(r, 502, "gateway-error", "The gateway could not answer", "%s", msg);
    return true;
}

/* Our store's answer, then every peer per list; false with r a problem. */
static bool
lk_ask(bg_gw *gw, lk *l, api_resp *r)
{
    bg_err err = {0};
    Baygate__LocalRequest req = BAYGATE__LOCAL_REQUEST__INIT;
    Baygate__LocalLookup ll = BAYGATE__LOCAL_LOOKUP__INIT;
    ll.uscc = l->code;
    req.op_case = BAYGATE__LOCAL_REQUEST__OP_LOOKUP;
    req.lookup = &ll;
    l->own = api_local_ask(gw, &req, &err);
    if (l->own == NULL || gateway_refused(l->own, r) || l->own->lookup == NULL) {
        if (l->own == NULL || l->own->lookup == NULL)
            api_problem(r, 502, "gateway-error", "The gateway could not answer", "%s",
                        l->own ? "no lookup answer" : err.msg);
        return false;
    }
    char *ids[1] = {l->code};
    for (int i = 0; i < LK_LISTS; i++) {
        Baygate__LocalQuery lq = BAYGATE__LOCAL_QUERY__INIT;
        lq.list = (char *)lk_lists[i];
        lq.purpose = (char *)l->purpose;
        lq.n_ids = 1;
        lq.ids = ids;
        lq.mode = i == 2 ? 2 : 1;
        lq.authorisation_ref.data = l->auth;
        lq.authorisation_ref.len = l->auth_len;
        req = (Baygate__LocalRequest)BAYGATE__LOCAL_REQUEST__INIT;
        req.op_case = BAYGATE__LOCAL_REQUEST__OP_QUERY;
        req.query = &lq;
        l->q[i] = api_local_ask(gw, &req, &err);
        if (l->q[i] == NULL) {
            api_problem(r, 502, "gateway-error", "The gateway could not answer", "%s", err.msg);
            return false;
        }
        if (gateway_refused(l->q[i], r) || l->q[i]->query == NULL)
            return false;
    }
    return true;
}

/* The parameters checked into l; false with r a problem naming what is wrong. */
static bool
lk_params(const api_req *rq, lk *l, api_resp *r)
{
    bg_uscc u;
    bg_err err = {0};
    size_t n = strlen(rq->seg);
    if (n > API_SEG_MAX || bg_uscc_parse(rq->seg, n, &u, &err) != BG_OK) {
        api_problem(r, 400, "invalid-uscc", "Not a valid USCC", "the USCC in the path: %s",
                    n > API_SEG_MAX ? "longer than any USCC" : err.msg);
        return false;
    }
    memcpy(l->code, u.code, sizeof l->code);
    l->purpose = rq->purpose;
    const char *a = rq->auth_ref;
    if (a != NULL &&
        (sodium_hex2bin(l->auth, sizeof l->auth, a, strlen(a), NULL, &l->auth_len, NULL) != 0 ||
         l->auth_len == 0 || strlen(a) != 2 * l->auth_len)) {
        api_problem(r, 400, "invalid-parameter", "Invalid query parameter",
                    "auth_ref must be 2 to 128 hex digits");
        return false;
    }
    return true;
}

void
api_res_lookup(bg_api *api, const api_req *rq, api_resp *r)
{
    lk l = {.own = NULL};
    if (lk_params(rq, &l, r) && lk_ask(api->gw, &l, r)) {
        const Baygate__QueryAnswer *q0 = l.q[0]->query;
        FILE *f = api_body_open(r);
        if (f != NULL) {
            fprintf(f, "{");
            api_json_kv(f, "uscc", l.code, false);
            api_json_kv(f, "purpose", l.purpose, true);
            fprintf(f, ",\"cities\":[");
            json_own(f, l.own->lookup);
            for (size_t i = 0; i < q0->n_peers; i++)
                json_peer(f, &l, q0->peers[i]);
            fprintf(f, "]}\n");
        }
        api_body_close(r, f, 200, API_JSON);
        bg_log(BG_LOG_INFO, "api.lookup", "app=%s purpose=%s cities=%zu", rq->app, l.purpose,
               q0->n_peers + 1);
    }
    sodium_memzero(l.auth, sizeof l.auth);
    lk_free(&l);
}
