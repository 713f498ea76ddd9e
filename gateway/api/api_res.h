/*
 * api_res.h - the HTTP API's resources: status, one enterprise across every city,
 * liveness and readiness, evidence, the calling key's scope. They ask the daemon's local
 * API in-process (api_local.h): the same answers the CLI gets, written by the same JSON
 * writers (api_json.h).
 */
#ifndef BG_API_RES_H
#define BG_API_RES_H

#include "gateway/api/api_int.h"

/* GET /v1/status. */
void api_res_status(bg_api *api, const api_req *rq, api_resp *r);

/* GET /v1/enterprises/{uscc}?purpose=P[&auth_ref=HEX]; rq->app is who asks. */
void api_res_lookup(bg_api *api, const api_req *rq, const bg_apikey *k, api_resp *r);

/* GET /healthz: 200 whenever the server answers. No key. */
void api_res_healthz(bg_api *api, const api_req *rq, api_resp *r);

/* GET /readyz: 200 when the gateway can answer (it answers, standing ok, lists
 * published, evidence log writable), else a 503 problem naming every check failed;
 * both with "checks": [{check, ok, detail}]. No key. */
void api_res_readyz(bg_api *api, const api_req *rq, api_resp *r);

/* GET /v1/evidence/head: our latest signed tree head and each witness's latest
 * cosignature of our log. */
void api_res_evidence_head(bg_api *api, const api_req *rq, api_resp *r);

/* GET /v1/evidence?request=&peer=&purpose=&auth_ref=&since=&until=: the matching leaves
 * (at most BG_API_FIND_MAX written, all counted), as `audit find --json`. */
void api_res_evidence_find(bg_api *api, const api_req *rq, api_resp *r);

/* GET /v1/evidence/{request_id}/bundle[?unwitnessed=true]: the exchange's evidence
 * bundle (application/octet-stream), as `audit export` writes it; 404 for a request id
 * the log does not hold, 409 before a head (or a witness) covers it. */
void api_res_evidence_bundle(bg_api *api, const api_req *rq, api_resp *r);

/* GET /v1/key: the calling key's application, purposes and daily quota (never the key
 * nor its hash), so a client such as the console offers only what it may ask. */
void api_res_key(const bg_apikey *k, api_resp *r);

/* POST /v1/jobs: a batch query (api_jobs.h) from a JSON body or an uploaded ids file
 * (text/csv, text/plain: the other parameters in the query), rq->upload the body's file;
 * k the caller's key (the purpose must be one of its). 202 with Location and the job;
 * 400/403/413/415 naming what is wrong; 503 when the queue is full. */
void api_res_jobs_create(bg_api *api, const api_req *rq, const bg_apikey *k, api_resp *r);

/* GET /v1/jobs: the caller's jobs, newest first. */
void api_res_jobs_list(bg_api *api, const api_req *rq, api_resp *r);

/* GET /v1/jobs/{id}: the job (404 if it is not the caller's). */
void api_res_job_get(bg_api *api, const api_req *rq, api_resp *r);

/* DELETE /v1/jobs/{id}: cancels a queued or running job; 409 once it has ended. */
void api_res_job_cancel(bg_api *api, const api_req *rq, api_resp *r);

/* GET /v1/jobs/{id}/results[?format=csv|json]: a done job's rows, JSON unless the
 * format or Accept asks for text/csv; 409 naming the state before (or without) them. */
void api_res_job_results(bg_api *api, const api_req *rq, api_resp *r);

#endif
