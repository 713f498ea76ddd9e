/*
 * api.h - the gateway's HTTP/JSON API, served inside the gateway process.
 *
 * Contract: bg_api_start reads [api] listen (HOST:PORT) from the gateway directory's
 * baygate.ini; absent, the API is off (*out = NULL, BG_OK). Otherwise it serves, on a
 * pool of BG_API_THREADS threads with at most BG_API_MAX_CONNS connections (BG_API_PER_IP
 * from one address), each closed after BG_API_IDLE_S seconds without progress, so a
 * slow client holds one connection, never the server:
 *   GET /v1/status                          the local status answer, as status --json
 *   GET /v1/enterprises/{uscc}?purpose=P[&auth_ref=HEX]   one enterprise, every city
 *   GET /v1/key                             the calling key's application and purposes
 *   GET /v1/openapi.json                    the OpenAPI 3 document of these (no key)
 *   GET /metrics                            Prometheus text format
 *   GET /healthz, GET /readyz               liveness, readiness (no key)
 *   GET /v1/evidence/head                   our signed tree head, witnesses' cosignatures
 *   GET /v1/evidence?request=&peer=&purpose=&auth_ref=&since=&until=   leaves found
 *   GET /v1/evidence/{request_id}/bundle    one exchange's evidence bundle (bytes)
 *   GET /v1/key                             the calling key's application and scope
 *   POST /v1/jobs, GET /v1/jobs             a batch query as a job (api_jobs.h); the key's
 *   GET, DELETE /v1/jobs/{id}               one job: its state; cancelled
 *   GET /v1/jobs/{id}/results[?format=csv]  its rows, JSON or CSV
 *   GET /console/                           the web console's static files (no key)
 * Every answer carries a strict Content-Security-Policy (the gateway's origin only),
 * nosniff, no-referrer and X-Frame-Options DENY. Every call but the document, the
 * probes and the console's files needs "Authorization: Bearer KEY", a key made by
 * `baygate apikey create` (api_keys.h); a lookup's purpose must be one of the key's.
 * Errors are application/problem+json (RFC 9457). Request headers beyond
 * BG_API_HEADER_MAX bytes get 431, bodies beyond BG_API_BODY_MAX 413 (only POST /v1/jobs
 * takes one: up to API_JOB_BODY_MAX, from a valid key only, streamed to a file).
 * Each call is logged (api.request) with its application's name and route, never its
 * key nor the enterprise asked about.
 *
 * bg_api_stop finishes the calls in flight and frees; call it before bg_gw_stop.
 */
#ifndef BG_API_H
#define BG_API_H

#include "common/err.h"
#include "gateway/daemon/gw.h"

#define BG_API_THREADS 4
#define BG_API_MAX_CONNS 64
#define BG_API_PER_IP 32
#define BG_API_IDLE_S 10
#define BG_API_HEADER_MAX 8192
#define BG_API_BODY_MAX 65536
#define BG_API_FIND_MAX 10000 /* leaves one evidence search writes (all are counted) */

typedef struct bg_api bg_api;

int bg_api_start(bg_api **out, bg_gw *gw, const char *dir, bg_err *err);
void bg_api_stop(bg_api *api);

#endif
