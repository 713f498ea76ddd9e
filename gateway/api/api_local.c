/*
 * api_local.c - the local API in-process (api_local.h).
 */
#include "gateway/api/api_local.h"

#include <stdlib.h>

#include "gateway/daemon/inproc.h"
#include "proto/pb.h"

Baygate__LocalAnswer *
api_local_ask(bg_gw *gw, const Baygate__LocalRequest *req, bg_err *err)
{
    size_t len = baygate__local_request__get_packed_size(req);
    uint8_t *buf = malloc(len ? len : 1);
    if (buf == NULL) {
        bg_err_set(err, BG_ENOMEM, "out of memory");
        return NULL;
    }
    baygate__local_request__pack(req, buf);
    uint8_t *ans = NULL;
    size_t alen = 0;
    int rc = bg_gw_local_call(gw, buf, len, &ans, &alen, err);
    free(buf);
    if (rc != BG_OK)
        return NULL;
    Baygate__LocalAnswer *a = bg_pb_unpack(&baygate__local_answer__descriptor, alen, ans);
    free(ans);
    if (a == NULL)
        bg_err_set(err, BG_EPROTO, "the gateway's local answer does not parse");
    return a;
}

Baygate__LocalAnswer *
api_local_status(bg_gw *gw, bg_err *err)
{
    Baygate__LocalRequest req = BAYGATE__LOCAL_REQUEST__INIT;
    Baygate__LocalStatus st = BAYGATE__LOCAL_STATUS__INIT;
    req.op_case = BAYGATE__LOCAL_REQUEST__OP_STATUS;
    req.status = &st;
    Baygate__LocalAnswer *a = api_local_ask(gw, &req, err);
    if (a != NULL && (a->error_code != 0 || a->status == NULL)) {
        bg_err_set(err, BG_EPROTO, "status: %s", a->error ? a->error : "no answer");
        bg_pb_free(a);
        return NULL;
    }
    return a;
}
