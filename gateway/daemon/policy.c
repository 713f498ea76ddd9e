/*
 * policy.c - the roster's permissions, the authorisation rule and the quota, for both
 * sides (see policy.h).
 */
#include "gateway/daemon/policy.h"

#include <stdio.h>
#include <string.h>

#include "domain/list.h"
#include "gateway/daemon/codes.h"
#include "gateway/daemon/core.h"
#include "gateway/daemon/log.h"
#include "gateway/daemon/quota.h"

bool
gw_policy_permitted(bg_gw *gw, const char *asker, const char *purpose, bool has_auth,
                    const char *list, bg_roster_verdict *v)
{
    bg_roster *r = gw_roster_get(gw);
    bool ok = false;
    if (r == NULL) {
        memset(v, 0, sizeof *v);
        snprintf(v->reason, sizeof v->reason, "no roster");
    } else if (strcmp(list, BG_LIST_GRADES) != 0) {
        ok = bg_roster_permission(r, asker, gw->cfg.city, purpose, list, v);
    } else {
        for (int i = 0; i < BG_LIST_COUNT && !ok; i++)
            ok = bg_roster_permission(r, asker, gw->cfg.city, purpose, bg_list_names[i], v);
        if (!ok)
            snprintf(v->reason, sizeof v->reason,
                     "%s may not ask %s about grades for purpose '%.32s': no list is permitted",
                     asker, gw->cfg.city, purpose);
    }
    bg_roster_free(r);
    if (ok && v->needs_authorisation && !has_auth) {
        snprintf(v->reason, sizeof v->reason,
                 "purpose '%.32s' needs an authorisation reference and none was given", purpose);
        v->allowed = ok = false;
    }
    return ok;
}

int
gw_policy_quota(bg_gw *gw, const char *asker, uint64_t n, const bg_roster_verdict *v, bool charge,
                uint64_t *used, bg_err *err)
{
    return gw_quota_take(&gw->quota, asker, n, v->quota_items_per_day, charge, used, err);
}

bool
gw_policy_needs_authorisation(bg_gw *gw, const char *purpose)
{
    bg_roster *r = gw_roster_get(gw);
    const bg_roster_purpose *p = r ? bg_roster_purpose_find(r, purpose) : NULL;
    bool needs = p != NULL && p->needs_authorisation;
    bg_roster_free(r);
    return needs;
}

bool
gw_policy_rate(bg_gw *gw, const bg_env_opened *o, bg_tp_request *req, gw_rate_kind kind)
{
    gw_rate_verdict v = gw_rate_take(&gw->rate, o->sender, kind, bg_env_now_ms());
    if (v.ok)
        return true;
    if (v.log)
        bg_log(BG_LOG_WARN, "request.rate_limited",
               "peer=%s kind=%s limit_per_s=%u burst=%u refused_unlogged=%llu", o->sender,
               gw_rate_kind_name(kind), v.per_s, v.burst, (unsigned long long)v.unlogged);
    gw_refuse(gw, NULL, o, req, BG_GW_E_RATE, NULL,
              "too many %s requests from %s (or answer bytes): at most %u/s, burst %u; "
              "ask again later",
              gw_rate_kind_name(kind), o->sender, v.per_s, v.burst);
    return false;
}
