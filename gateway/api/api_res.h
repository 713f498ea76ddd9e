/*
 * api_res.h - the HTTP API's resources: status and one enterprise across every city.
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

#endif
