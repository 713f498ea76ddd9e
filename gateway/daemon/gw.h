/*
 * gw.h - a running city gateway.
 *
 * bg_gw_start reads a gateway directory (baygate.ini, city key and
 * certificate, federation CA, CRL, signed roster), then serves two faces:
 *  - the federation API on tls+tcp (mutual TLS; every request a signed
 *    envelope, opened and checked by the envelope layer before anything else
 *    looks at it; every answer a signed envelope bound to the request);
 *  - the local API on ipc:// for the city's own applications and the CLI
 *    (LocalRequest/LocalAnswer, unsigned: the socket's permissions decide).
 * It keeps one client per roster peer for the questions it asks.
 *
 * bg_gw_tick, called about once a second by the owner's loop, picks up a new
 * CRL or roster file without a restart (the TLS listener and the peer
 * clients are rebuilt with the new CRL, so a newly revoked city is cut off)
 * and warns well before the CRL's nextUpdate passes. A new city.crt (with its
 * city.key) is checked and, if it is good, becomes the identity we sign and
 * connect with, without a restart (a certificate rotation, docs/OPERATIONS.md);
 * a bad one is refused and the old one kept. It warns when the roster pins
 * neither our current nor our next certificate.
 *
 * bg_gw_stop aborts every round trip to a peer in flight (so nothing waits for a
 * peer that does not answer), stops taking requests, lets in-flight ones finish
 * (their peer calls failed) and frees.
 *
 * The codes its answers carry are in codes.h; how its files are ordered in README.md.
 */
#ifndef BG_GW_H
#define BG_GW_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "gateway/daemon/codes.h"

typedef struct bg_gw bg_gw;

/* dir: the gateway directory made by `baygate init`. */
int bg_gw_start(bg_gw **out, const char *dir, bg_err *err);

/* Reload checks and warnings; call about once a second from one thread. */
void bg_gw_tick(bg_gw *gw);

/* What the gateway is waiting for now, for the stop's log line, comma-separated:
 * "peer-call:440300" per peer with a round trip in flight ("peer-call:440300x2" for
 * two), "local-request:N" for local API requests being handled; or "nothing".
 * Returns the length written to buf (n >= 16). */
size_t bg_gw_busy(bg_gw *gw, char *buf, size_t n);

/* The same at once, with city.key and city.crt read again even if city.crt looks
 * unchanged (SIGHUP); from the thread that ticks. */
void bg_gw_reload(bg_gw *gw);

/* Stops and frees; NULL is ignored. */
void bg_gw_stop(bg_gw *gw);

#endif
