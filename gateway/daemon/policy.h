/*
 * policy.h - may this peer ask this, for this purpose, with this authorisation,
 * within its quota? The roster decides (bg_roster_permission: asker, answerer,
 * purpose, list); "grades" is not a roster list: it is allowed when any of the
 * answerer's lists is, with that permission's quota. A purpose that needs the
 * enterprise's written authorisation needs a reference in the request. The answering
 * side asks all of it before any work; the asking side asks the purpose's part before
 * anything is sent (a peer would refuse it anyway).
 */
#ifndef BG_POLICY_H
#define BG_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gateway/daemon/rate.h"
#include "peers/envelope.h"
#include "peers/roster.h"
#include "peers/transport.h"

struct bg_gw;

/* Answering, before anything else of an authenticated request: the rate of kind for its
 * sender (rate.h). true: go ahead. false: req is answered with a BG_GW_E_RATE refusal
 * (counted, logged at most once per GW_RATE_LOG_EVERY_MS per sender and kind, no
 * evidence leaves: a flood must not cost two synced leaves a request) and is gone. */
bool gw_policy_rate(struct bg_gw *gw, const bg_env_opened *o, bg_tp_request *req,
                    gw_rate_kind kind);

/* Answering: may asker ask us about list for purpose (has_auth: the request carries an
 * authorisation reference)? v gets the permission (quota, minimum count batch) or,
 * when false, the reason. */
bool gw_policy_permitted(struct bg_gw *gw, const char *asker, const char *purpose, bool has_auth,
                         const char *list, bg_roster_verdict *v);

/* Answering: charges n items to asker's quota of today under permission v (only checks,
 * when !charge): BG_OK; BG_ELIMIT if that passes the quota; BG_EIO if the charge cannot
 * be saved (a disk error, not the asker's quota: quota.h). *used: items today. */
int gw_policy_quota(struct bg_gw *gw, const char *asker, uint64_t n, const bg_roster_verdict *v,
                    bool charge, uint64_t *used, bg_err *err);

/* Asking: does the roster say purpose needs an authorisation reference? */
bool gw_policy_needs_authorisation(struct bg_gw *gw, const char *purpose);

#endif
