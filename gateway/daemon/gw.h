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
 * and warns well before the CRL's nextUpdate passes.
 *
 * bg_gw_stop stops taking requests, lets in-flight ones finish and frees.
 */
#ifndef BG_GW_H
#define BG_GW_H

#include <stdint.h>

#include "common/err.h"
#include "gateway/daemon/fedping.h"

typedef struct bg_gw bg_gw;

/* Application error codes carried in ErrorAnswer and LocalAnswer (>= 100;
 * the envelope layer's refusal reasons are 1..99). */
enum {
    BG_GW_E_UNKNOWN_BODY = 100,                   /* body_type the gateway does not serve */
    BG_GW_E_BAD_BODY = 101,                       /* body does not parse */
    BG_GW_E_NOT_PEER = 102,                       /* local: that city is not a peer in the roster */
    BG_GW_E_TRANSPORT = BG_FEDPING_E_TRANSPORT,   /* local: the peer could not be reached */
    BG_GW_E_BAD_ANSWER = BG_FEDPING_E_BAD_ANSWER, /* local: the peer's answer failed our checks */
    BG_GW_E_INTERNAL = BG_FEDPING_E_INTERNAL,
    /* PSI (psi_answer.c refuses, psi_query.c reports): */
    BG_GW_E_NOT_ALLOWED = 107,   /* the roster does not let the asker ask this (purpose, list),
                                    or the purpose needs an authorisation reference */
    BG_GW_E_UNKNOWN_LIST = 108,  /* not a list name ("serious-dishonesty", "abnormal-operation",
                                    "grades") */
    BG_GW_E_NOT_PUBLISHED = 109, /* the list has no snapshot yet (no import, still building) */
    BG_GW_E_STALE_EPOCH = 110,   /* the asked (generation, epoch) is not current: refresh */
    BG_GW_E_QUOTA = 111,         /* the asker's items for today are used up */
    BG_GW_E_BATCH = 112,         /* count batch below min_count_batch, not in one message,
                                    or items/chunks inconsistent */
    BG_GW_E_BAD_ELEMENTS = 113,  /* elements not 32*n bytes or not valid group elements */
    BG_GW_E_BAD_MODE = 114,      /* mode unknown, or graded on a list without payloads */
    BG_GW_E_INVALID_IDS = 115,   /* local: no valid id to ask about */
};

/* dir: the gateway directory made by `baygate init`. */
int bg_gw_start(bg_gw **out, const char *dir, bg_err *err);

/* Reload checks and warnings; call about once a second from one thread. */
void bg_gw_tick(bg_gw *gw);

/* Stops and frees; NULL is ignored. */
void bg_gw_stop(bg_gw *gw);

#endif
