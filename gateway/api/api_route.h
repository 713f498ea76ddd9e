/*
 * api_route.h - the HTTP API's routing and authentication.
 *
 * api_route_parse maps a method and a path to a route (pure: no I/O; fuzzed). Paths
 * are matched exactly ("/v1/status", "/v1/enterprises/{uscc}", "/v1/key",
 * "/v1/openapi.json", "/metrics", "/healthz", "/readyz", "/v1/evidence/head",
 * "/v1/evidence", "/v1/evidence/{request_id}/bundle", "/v1/jobs", "/v1/jobs/{id}",
 * "/v1/jobs/{id}/results", "/console" and "/console/{file}"); the {uscc},
 * {request_id}, {id} or {file} segment is kept raw (at most API_SEG_MAX bytes, one more
 * marks it too long) for the resource to validate. HEAD is GET without the body; POST
 * goes to /v1/jobs and DELETE to /v1/jobs/{id} only (rq->allow: the route's methods).
 *
 * api_dispatch answers a routed request: the OpenAPI document, the two probes and the
 * console's static files without a key; everything else needs the key (Authorization:
 * Bearer) against
 * DATA/apikeys, read again whenever the file changes (a revocation takes effect at the
 * next request), 401 without a key, with an unknown or a revoked one; 403 for a purpose
 * outside the key's; 429 past its daily quota (lookups, counted in memory); then the
 * resource.
 */
#ifndef BG_API_ROUTE_H
#define BG_API_ROUTE_H

#include "gateway/api/api_int.h"

/* 0 with rq->route and rq->seg set, else the HTTP status to answer (404, 405). */
unsigned api_route_parse(const char *method, const char *path, api_req *rq);

/* r gets the answer to rq (routed by api_route_parse); rq->app who asked. */
void api_dispatch(bg_api *api, api_req *rq, api_resp *r);

/* Whether the Authorization header holds a valid key (no answer made): an upload is
 * kept only for a caller who may make a job. */
bool api_key_valid(bg_api *api, const char *authorization);

#endif
