/*
 * ping.h - pings in the daemon: answering a peer's Ping with a Pong, and pinging a
 * peer for the local API (`baygate ping`, `status --probe`) over gw_call, read by
 * fedping, which also keeps the peer's reachability for `status`.
 */
#ifndef BG_PING_H
#define BG_PING_H

#include <stddef.h>

#include "gateway/daemon/evidence.h"
#include "peers/envelope.h"
#include "peers/transport.h"
#include "proto/api.pb-c.h"

struct bg_gw;

/* Federation handler for APP_BODY_PING. */
void gw_ping_answer(struct bg_gw *gw, gw_ev *ev, const bg_env_opened *o, bg_tp_request *req);

/* Pings city; res's strings point into errbuf and namebuf (caller's storage). */
void gw_ping_peer(struct bg_gw *gw, const char *city, int timeout_ms, Baygate__PingResult *res,
                  char *errbuf, size_t errn, char *namebuf, size_t namen);

#endif
