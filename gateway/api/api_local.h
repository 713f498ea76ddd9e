/*
 * api_local.h - the gateway's local API from the HTTP API: a LocalRequest packed,
 * answered in-process by the daemon (gateway/daemon/inproc.h), the answer unpacked.
 */
#ifndef BG_API_LOCAL_H
#define BG_API_LOCAL_H

#include "common/err.h"
#include "gateway/daemon/gw.h"
#include "proto/api.pb-c.h"

/* The answer (free with bg_pb_free), or NULL with err. */
Baygate__LocalAnswer *api_local_ask(bg_gw *gw, const Baygate__LocalRequest *req, bg_err *err);

/* Our status, peers as last known (no probe); NULL with err. */
Baygate__LocalAnswer *api_local_status(bg_gw *gw, bg_err *err);

#endif
