/*
 * relay.h - the roster and the CRL reach every city by themselves.
 *
 * Both are signed by the federation CA, so any member may hand them on (like X-Road's
 * signed global configuration): a gateway that takes a newer one, from its operator's
 * drop into its directory or from a peer, hands it to every peer; every gateway takes
 * only what it checked fully (artefact.h) and what is newer than what it holds, and
 * hands on only what it took as newer, so nothing circulates.
 *
 *   - Before a new CRL or roster is put to use (gw.c's reload, whoever wrote the file),
 *     it is pushed to every peer over the connections as they are (gw_relay_crl_new,
 *     gw_relay_roster_new): a city the new CRL revokes, or the new roster leaves out,
 *     still hears of it, and says so (standing.h), before the others cut it off. This
 *     holds the reload for at most GW_RELAY_PUSH_MS (peers in parallel).
 *   - A relay thread offers our roster serial and CRL number to every peer shortly
 *     after start and then every [federation] relay_interval_s: a peer holding
 *     something newer answers with it, a peer holding something older gets ours. A city
 *     that was down or cut off catches up so.
 *   - What a peer hands us (in an offer or an answer) is checked, then written
 *     atomically (temp, fsync, rename) to our configured roster or CRL path, where
 *     the 1 s reload of gw.c takes it up: one path for the operator's files and
 *     relayed ones. Logged: roster.received / crl.received from=CITY, and refusals
 *     roster.relay_refused / crl.relay_refused with the verdict and the reason.
 *
 * Relay traffic is not evidence (like witness traffic): it is about the federation.
 */
#ifndef BG_RELAY_H
#define BG_RELAY_H

#include <openssl/x509.h>

#include "common/err.h"
#include "gateway/daemon/gw_int.h"
#include "peers/envelope.h"
#include "peers/roster.h"
#include "peers/transport.h"

/* Longest a push before use holds a reload (and a revocation's effect here). */
#define GW_RELAY_PUSH_MS 3000
/* The first offer round, this long after start (peers may be starting too), and the
 * next while the peer table is still empty. */
#define GW_RELAY_FIRST_MS 1000

/* Holds what gw has loaded (roster.pb's bytes, the CRL) and starts the relay thread. */
int gw_relay_start(bg_gw *gw, bg_err *err);
/* Stops the relay thread (first thing at stop: it calls peers). */
void gw_relay_stop(bg_gw *gw);
/* Frees what the relay holds (after the servers stopped: handlers use it). */
void gw_relay_close(bg_gw *gw);

/* gw.c's CRL reload, before it installs crl: a CRL newer than any we handed on is
 * checked and pushed to every peer. */
void gw_relay_crl_new(bg_gw *gw, X509_CRL *crl);
/* gw.c's roster reload, before it swaps next in: the same for the signed bytes of next
 * (read back from the roster file and matched against next). */
void gw_relay_roster_new(bg_gw *gw, const bg_roster *next);

/* The federation handler for RELAY_BODY_OFFER. */
void gw_relay_answer(bg_gw *gw, const bg_env_opened *o, bg_tp_request *req);

#endif
