/*
 * standing.c - our own certificate against our CRL, our city against our roster, and
 * the handshakes our listener saw fail (see standing.h).
 */
#include "gateway/daemon/standing.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "gateway/daemon/core.h"
#include "gateway/daemon/log.h"

/* How often failed handshakes are looked at (nng's statistics are a snapshot of
 * everything) and logged at most. */
#define STANDING_HS_EVERY_S 10

static const char *const names[] = {
    [GW_STANDING_UNKNOWN] = "unknown",
    [GW_STANDING_OK] = "ok",
    [GW_STANDING_REVOKED] = "revoked",
    [GW_STANDING_EXPIRED] = "expired",
    [GW_STANDING_CRL_EXPIRED] = "crl-expired",
    [GW_STANDING_UNTRUSTED] = "untrusted",
    [GW_STANDING_NOT_IN_ROSTER] = "not-in-roster",
    [GW_STANDING_NOT_PINNED] = "not-pinned",
};

const char *
gw_standing_name(bg_gw *gw)
{
    int s = atomic_load(&gw->standing);
    return s >= 0 && s < (int)(sizeof names / sizeof names[0]) ? names[s] : "unknown";
}

/* Our certificate as any peer's trust store sees it, then our place in the roster. */
static gw_standing
assess(bg_gw *gw, char *detail, size_t n, uint64_t *serial)
{
    bg_err err = {0};
    bg_trust_result res = {0};
    bg_roster *r = gw_roster_get(gw);
    *serial = r ? bg_roster_serial(r) : 0;
    gw_ident *id = gw_ident_get(gw); /* a rotation may swap it meanwhile */
    uint8_t fp[BG_SIG_FP_LEN];
    memcpy(fp, id->id->fingerprint, sizeof fp);
    int rc = bg_trust_verify(gw->trust, id->id->cert_der, id->id->cert_der_len, gw->cfg.city, &res,
                             NULL, &err);
    gw_ident_release(id);
    if (rc != BG_OK) {
        bg_roster_free(r);
        snprintf(detail, n, "%s", err.msg);
        switch (res.reason) {
        case BG_TRUST_REVOKED:
            return GW_STANDING_REVOKED;
        case BG_TRUST_EXPIRED:
        case BG_TRUST_NOT_YET_VALID:
            return GW_STANDING_EXPIRED;
        case BG_TRUST_CRL_EXPIRED:
            return GW_STANDING_CRL_EXPIRED;
        default:
            return GW_STANDING_UNTRUSTED;
        }
    }
    const bg_roster_member *me = r ? bg_roster_member_find(r, gw->cfg.city) : NULL;
    gw_standing s = GW_STANDING_OK;
    if (me == NULL) {
        snprintf(detail, n, "roster serial %llu has no member %s", (unsigned long long)*serial,
                 gw->cfg.city);
        s = GW_STANDING_NOT_IN_ROSTER;
    } else if (!bg_roster_member_pinned(me, fp)) { /* current or next: a rotation */
        snprintf(detail, n, "roster serial %llu pins another certificate for %s than ours",
                 (unsigned long long)*serial, gw->cfg.city);
        s = GW_STANDING_NOT_PINNED;
    }
    bg_roster_free(r);
    return s;
}

/* The log line for a standing that is not good: what peers will do about it. */
static void
say(bg_gw *gw, gw_standing s, const char *after, const char *detail, uint64_t serial)
{
    static const struct {
        const char *event, *effect;
    } lines[] = {
        [GW_STANDING_REVOKED] = {"gw.self_revoked",
                                 "every peer refuses our TLS connections: ask the federation "
                                 "operator for a new certificate"},
        [GW_STANDING_EXPIRED] = {"gw.self_expired",
                                 "every peer refuses our TLS connections: ask the federation "
                                 "operator for a new certificate"},
        [GW_STANDING_CRL_EXPIRED] = {"gw.crl_expired",
                                     "every peer is refused until a new CRL arrives"},
        [GW_STANDING_UNTRUSTED] = {"gw.self_untrusted",
                                   "peers refuse our certificate: check city.crt and ca.crt"},
        [GW_STANDING_NOT_IN_ROSTER] = {"gw.not_in_roster",
                                       "peers refuse our requests (not-member) and we ask and "
                                       "answer no one: the federation operator removed us"},
        [GW_STANDING_NOT_PINNED] = {"gw.not_pinned",
                                    "peers refuse our requests (pin-mismatch): install the "
                                    "certificate the roster pins"},
    };
    char q[BG_ERR_MSG_MAX];
    bg_log(BG_LOG_ERROR, lines[s].event,
           "city=%s standing=%s after=%s roster=%llu detail=\"%s\" effect=\"%s\"", gw->cfg.city,
           names[s], after, (unsigned long long)serial, gw_quoted(detail, q, sizeof q),
           lines[s].effect);
}

void
gw_standing_check(bg_gw *gw, const char *after)
{
    char detail[BG_ERR_MSG_MAX] = "";
    uint64_t serial = 0;
    gw_standing s = assess(gw, detail, sizeof detail, &serial);
    int was = atomic_exchange(&gw->standing, (int)s);
    if (s != GW_STANDING_OK)
        say(gw, s, after, detail, serial);
    else if (was != GW_STANDING_OK && was != GW_STANDING_UNKNOWN)
        bg_log(BG_LOG_INFO, "gw.standing_ok", "city=%s after=%s was=%s roster=%llu", gw->cfg.city,
               after, names[was], (unsigned long long)serial);
}

/* Handshakes that failed at our listener since the last look. A certificate refused
 * either way, a client that spoke no TLS, one that hung up: nng 1.5.2 counts them by
 * kind in its listener statistics, and tells nothing more. */
static void
handshakes(bg_gw *gw, time_t now)
{
    if (gw->fed == NULL || now - gw->hs_failed_looked_at < STANDING_HS_EVERY_S)
        return;
    gw->hs_failed_looked_at = now;
    bg_tp_server_stats st;
    bg_tp_server_get_stats(gw->fed, &st);
    if (st.handshake_errs <= gw->hs_failed_logged)
        return;
    /* Authentication failures are what a revocation looks like; the rest (a reload
     * cutting handshakes, scanners, clients giving up) is noise unless it floods. */
    bool auth = st.handshake_auth > gw->hs_auth_logged;
    bg_log(auth ? BG_LOG_WARN : BG_LOG_INFO, "tls.handshakes_failed",
           "count=%llu total=%llu auth=%llu effect=\"connections refused before a request: a "
           "certificate not accepted (revoked, expired, not the federation CA's, none; theirs by "
           "us or ours by them), or no TLS; the address and the certificate are not known\"",
           (unsigned long long)(st.handshake_errs - gw->hs_failed_logged),
           (unsigned long long)st.handshake_errs, (unsigned long long)st.handshake_auth);
    gw->hs_failed_logged = st.handshake_errs;
    gw->hs_auth_logged = st.handshake_auth;
}

void
gw_standing_tick(bg_gw *gw)
{
    char detail[BG_ERR_MSG_MAX] = "";
    uint64_t serial = 0;
    gw_standing s = assess(gw, detail, sizeof detail, &serial);
    if ((int)s != atomic_load(&gw->standing))
        gw_standing_check(gw, "clock");
    handshakes(gw, time(NULL));
}
