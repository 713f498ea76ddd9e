/*
 * inproc.h - the local API called in-process, for another face served by the gateway's
 * own process (the HTTP API, gateway/api/): the same LocalRequest in and LocalAnswer
 * out as on the ipc socket, answered by the same code (local.c), without a socket.
 *
 * Safe from any number of threads while the gateway runs; a stop waits for calls in
 * flight as it waits for the socket's (bg_gw_busy counts them as local requests).
 * The caller must finish every call before bg_gw_stop.
 */
#ifndef BG_INPROC_H
#define BG_INPROC_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "gateway/daemon/gw.h"

/* req: a packed LocalRequest of len bytes. *ans: the packed LocalAnswer (free() it),
 * *ans_len its length. BG_ENOMEM if none could be made (nothing in *ans). */
int bg_gw_local_call(bg_gw *gw, const uint8_t *req, size_t len, uint8_t **ans, size_t *ans_len,
                     bg_err *err);

/* Our city code (6 digits), for labels. */
const char *bg_gw_city(const bg_gw *gw);

#endif
