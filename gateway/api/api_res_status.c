/*
 * api_res_status.c - GET /v1/status: the gateway's status answer, written by the one
 * status writer `baygate status --json` uses too (api_json.h).
 */
#include <time.h>

#include "gateway/api/api_json.h"
#include "gateway/api/api_local.h"
#include "gateway/api/api_res.h"
#include "gateway/api/api_resp.h"
#include "proto/pb.h"

void
api_res_status(bg_api *api, const api_req *rq, api_resp *r)
{
    (void)rq;
    bg_err err = {0};
    Baygate__LocalAnswer *a = api_local_status(api->gw, &err);
    if (a == NULL) {
        api_problem(r, 503, "gateway-unavailable", "The gateway could not answer", "%s", err.msg);
        return;
    }
    FILE *f = api_body_open(r);
    if (f != NULL)
        bg_api_json_status(f, a->status, time(NULL));
    api_body_close(r, f, 200, API_JSON);
    bg_pb_free(a);
}
