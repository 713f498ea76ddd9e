/*
 * codes.h - the gateway's application error codes, carried in ErrorAnswer and
 * LocalAnswer (>= 100; the envelope layer's refusal reasons are 1..99). The round
 * trip's own failures (roundtrip.h) are among them.
 */
#ifndef BG_CODES_H
#define BG_CODES_H

#include "gateway/daemon/roundtrip.h"

enum {
    BG_GW_E_UNKNOWN_BODY = 100,              /* body_type the gateway does not serve */
    BG_GW_E_BAD_BODY = 101,                  /* body does not parse */
    BG_GW_E_NOT_PEER = 102,                  /* local: that city is not a peer in the roster */
    BG_GW_E_TRANSPORT = BG_RT_E_TRANSPORT,   /* local: the peer could not be reached */
    BG_GW_E_BAD_ANSWER = BG_RT_E_BAD_ANSWER, /* local: the peer's answer failed our checks */
    BG_GW_E_INTERNAL = BG_RT_E_INTERNAL,
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
    BG_GW_E_REVOKED = 116,       /* local: the CRL in use revokes the certificate the roster
                                    pins for that peer: not asked (core.h) */
    BG_GW_E_RATE = 117,          /* the asker's requests (or answer bytes) of this kind
                                    are over their rate (rate.h): ask again later */
    BG_GW_E_COSIG_HELD = 118,    /* witness: a cosignature by that witness of our head of
                                    that size is held already (one per witness and size) */
    BG_GW_E_NOT_OWNER = 119,     /* local: the caller's uid is neither the gateway's nor
                                    root's (local.h) */
};

#endif
