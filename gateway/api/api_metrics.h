/*
 * api_metrics.h - GET /metrics in the Prometheus text format (0.0.4): the gateway's
 * own counters and gauges from its status answer (federation requests by outcome,
 * refusals and drops by reason, peers' health and latency, quota used per asking peer,
 * snapshot sizes, epochs and ages, evidence log size, certificate and CRL seconds to
 * expiry, roster serial) and the API's (requests by application, route and status;
 * latency histogram by route; lookups used of each key's daily quota).
 */
#ifndef BG_API_METRICS_H
#define BG_API_METRICS_H

#include "gateway/api/api_int.h"

/* Counts one answered request (app "" before authentication). */
void api_metrics_note(bg_api *api, const char *app, api_route_id route, unsigned status,
                      double seconds);

void api_metrics(bg_api *api, api_resp *r);

#endif
