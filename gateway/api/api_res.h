/*
 * api_res.h - the HTTP API's resources: status, one enterprise across every city, the
 * calling key's scope.
 * Both ask the daemon's local API in-process (api_local.h): the same answers the CLI
 * gets, written as the same JSON as `baygate status --json` and `baygate lookup --json`.
 */
#ifndef BG_API_RES_H
#define BG_API_RES_H

#include "gateway/api/api_int.h"

/* GET /v1/status. */
void api_res_status(bg_api *api, const api_req *rq, api_resp *r);

/* GET /v1/enterprises/{uscc}?purpose=P[&auth_ref=HEX]; rq->app is who asks. */
void api_res_lookup(bg_api *api, const api_req *rq, api_resp *r);

/* GET /v1/key: the calling key's application, purposes and daily quota (never the key
 * nor its hash), so a client such as the console offers only what it may ask. */
void api_res_key(const bg_apikey *k, api_resp *r);

#endif
