/*
 * local.h - the local API on ipc:// for the city's own applications and the CLI:
 * LocalRequest in, LocalAnswer out, unsigned: the socket's permissions let in, and the
 * caller's uid (the kernel's, SO_PEERCRED, as the transport reads it) must be the
 * gateway's own or root's (gw_local_uid_allowed): another member of the directory's group
 * is refused (BG_GW_E_NOT_OWNER) and logged.
 * Ping a peer, query peers by PSI (psi_query.h), rotate a list's key, status (with
 * every peer probed at once on request), look up one of our own enterprises in our
 * store (baygate lookup).
 */
#ifndef BG_LOCAL_H
#define BG_LOCAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "gateway/daemon/gw.h"
#include "peers/transport.h"

/* A query carries up to GW_QUERY_MAX_IDS (2^21) ids of up to ~20 bytes each as
 * users write them; its answer up to that many matches (and grades) per peer. */
#define GW_LOCAL_RECV_MAX (64 * 1024 * 1024)
#define GW_LOCAL_REPLY_MAX (256 * 1024 * 1024)
/* A query fetches snapshots and runs PSI with every peer: minutes for big ones. */
#define GW_LOCAL_TIMEOUT_MS (30 * 60 * 1000)

/* May a caller of uid use the local API of a gateway running as self? Root and self. */
bool gw_local_uid_allowed(uid_t uid, uid_t self);
/* One packed LocalRequest answered: the packed LocalAnswer (malloc'd, *out_len bytes;
 * NULL when out of memory). The same for every face: the ipc socket and in-process. */
uint8_t *gw_local_answer(bg_gw *gw, const uint8_t *data, size_t len, size_t *out_len);

/* The local server's request handler; ctx is the bg_gw. */
void gw_local_handle(void *ctx, bg_tp_request *req);

#endif
