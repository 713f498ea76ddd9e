/*
 * api_res_lookup.c - GET /v1/enterprises/{uscc}: one enterprise in every city, ours
 * included, written by the lookup writer `baygate lookup --json` uses too (api_json.h).
 * Our city from our store (the local Lookup), every peer by private set intersection
 * (one local Query per list, the peers asked at once): the peers never learn which
 * enterprise it is.
 */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "domain/uscc.h"
#include "gateway/api/api_json.h"
#include "gateway/api/api_local.h"
#include "gateway/api/api_res.h"
#include "gateway/api/api_resp.h"
#include "gateway/daemon/codes.h"
#include "gateway/daemon/log.h"
#include "proto/pb.h"

#define LK_LISTS BG_API_LOOKUP_LISTS
#define LK_AUTH_MAX 64U

typedef struct lk {
    char code[BG_USCC_LEN + 1];
    const char *purpose, *app;
    const bg_apikey *key;
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
        /* A list outside the key's scope is never asked: not of the peers, whose quota
         * and evidence it would spend, and not shown from our own store. */
        if (!bg_apikey_allows_list(l->key, bg_api_lookup_lists[i]))
            continue;
        Baygate__LocalQuery lq = BAYGATE__LOCAL_QUERY__INIT;
        lq.list = (char *)bg_api_lookup_lists[i];
        lq.purpose = (char *)l->purpose;
        lq.n_ids = 1;
        lq.ids = ids;
        lq.mode = i == 2 ? 2 : 1;
        lq.authorisation_ref.data = l->auth;
        lq.authorisation_ref.len = l->auth_len;
        lq.application = (char *)l->app; /* our evidence says which application asked */
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
    l->app = rq->app;
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
api_res_lookup(bg_api *api, const api_req *rq, const bg_apikey *k, api_resp *r)
{
    lk l = {.own = NULL, .key = k};
    if (lk_params(rq, &l, r) && lk_ask(api->gw, &l, r)) {
        bg_api_lookup out = {.uscc = l.code, .purpose = l.purpose, .own = l.own->lookup};
        for (int i = 0; i < LK_LISTS; i++)
            out.q[i] = l.q[i];
        FILE *f = api_body_open(r);
        if (f != NULL)
            bg_api_json_lookup(f, &out);
        api_body_close(r, f, 200, API_JSON);
        size_t peers = 0;
        for (int i = 0; i < LK_LISTS; i++)
            if (l.q[i] != NULL)
                peers = l.q[i]->query->n_peers;
        bg_log(BG_LOG_INFO, "api.lookup", "app=%s purpose=%s cities=%zu lists=%s", rq->app,
               l.purpose, peers + 1, k->lists);
    }
    sodium_memzero(l.auth, sizeof l.auth);
    lk_free(&l);
}
