/*
 * inproc.c - the local API called in-process (inproc.h).
 */
#include "gateway/daemon/inproc.h"

#include <stdlib.h>

#include "gateway/daemon/gw_int.h"
#include "gateway/daemon/local.h"

int
bg_gw_local_call(bg_gw *gw, const uint8_t *req, size_t len, uint8_t **ans, size_t *ans_len,
                 bg_err *err)
{
    atomic_fetch_add(&gw->local_busy, 1); /* what a stop would wait for */
    *ans_len = 0;
    *ans = gw_local_answer(gw, req, len, ans_len);
    atomic_fetch_sub(&gw->local_busy, 1);
    if (*ans == NULL)
        return bg_err_set(err, BG_ENOMEM, "out of memory answering a local request");
    return BG_OK;
}

const char *
bg_gw_city(const bg_gw *gw)
{
    return gw->cfg.city;
}
