/*
 * standing.h - our own standing in the federation, said plainly: is our certificate
 * current on the CRL we hold, and does the roster we use list us with it? A city that
 * was revoked or left out of the roster otherwise sees only its peers' TLS refusals
 * (tls-refused) or not-member refusals, which say nothing of why.
 *
 * gw_standing_check runs at start and after every CRL or roster reload (gw.c) and logs
 * at ERROR whenever we are not in good standing: gw.self_revoked, gw.self_expired,
 * gw.not_in_roster, gw.not_pinned (the roster pins another certificate for us). The
 * standing shows in `status` (gw_standing_name). gw_standing_tick, once a second, logs
 * a change (a certificate that expires while we run; gw.standing_ok once it is good
 * again) and the TLS handshakes that failed at our listener since it last looked
 * (tls.handshakes_failed, with nng's count of authentication failures: which
 * certificate, and from which address, nng 1.5.2 does not tell).
 */
#ifndef BG_STANDING_H
#define BG_STANDING_H

#include "gateway/daemon/gw_int.h"

typedef enum gw_standing {
    GW_STANDING_UNKNOWN = 0, /* not checked yet */
    GW_STANDING_OK,
    GW_STANDING_REVOKED,       /* our certificate is on the CRL */
    GW_STANDING_EXPIRED,       /* our certificate is expired or not valid yet */
    GW_STANDING_CRL_EXPIRED,   /* the CRL we hold has expired: nobody is trusted */
    GW_STANDING_UNTRUSTED,     /* our certificate fails another check of the CA's */
    GW_STANDING_NOT_IN_ROSTER, /* the roster has no member of our city code */
    GW_STANDING_NOT_PINNED,    /* the roster pins another certificate for us */
} gw_standing;

/* Checks and logs (ERROR unless good); after names what was just reloaded. */
void gw_standing_check(bg_gw *gw, const char *after);

/* Once a second: a change of standing, and failed handshakes at our listener. */
void gw_standing_tick(bg_gw *gw);

/* The last standing checked: "ok", "revoked", "expired", "crl-expired", "untrusted",
 * "not-in-roster", "not-pinned", "unknown". */
const char *gw_standing_name(bg_gw *gw);

#endif
