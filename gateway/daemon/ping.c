/*
 * ping.c - Ping answered, Ping asked (see ping.h).
 */
#include "gateway/daemon/ping.h"

#include <stdio.h>
#include <string.h>

#include "gateway/daemon/codes.h"
#include "gateway/daemon/core.h"
#include "gateway/daemon/fedping.h"
#include "gateway/daemon/log.h"
#include "proto/pb.h"

void
gw_ping_answer(bg_gw *gw, gw_ev *ev, const bg_env_opened *o, bg_tp_request *req)
{
    Baygate__Ping *ping = bg_pb_unpack(&baygate__ping__descriptor, o->body_len, o->body);
    if (ping == NULL) {
        gw_refuse(gw, ev, o, req, BG_GW_E_BAD_BODY, "ping.refused", "ping body does not parse");
        return;
    }
    bg_roster *r = gw_roster_get(gw);
    Baygate__Pong pong = BAYGATE__PONG__INIT;
    pong.city = gw->cfg.city;
    pong.name = gw->cfg.name;
    pong.roster_serial = bg_roster_serial(r);
    pong.time_ms = bg_env_now_ms();
    bg_roster_free(r);
    bg_log(BG_LOG_INFO, "ping.answered", "peer=%s their_roster=%llu our_roster=%llu", o->sender,
           (unsigned long long)ping->roster_serial, (unsigned long long)pong.roster_serial);
    bg_pb_free(ping);
    uint8_t body[256];
    size_t body_len = baygate__pong__get_packed_size(&pong);
    if (body_len > sizeof body) { /* a city name is at most 64 bytes: cannot happen */
        gw_refuse(gw, ev, o, req, BG_GW_E_INTERNAL, "ping.refused", "pong too large");
        return;
    }
    baygate__pong__pack(&pong, body);
    gw_answer(gw, ev, o, req, BAYGATE__APP_BODY__APP_BODY_PONG, body, body_len);
}

/* What `status` shows of p: the last probe's outcome. */
static void
ping_note(gw_peer *p, const bg_fedping_result *fr)
{
    pthread_mutex_lock(&p->status_lock);
    p->probed = true;
    p->reachable = fr->ok;
    if (fr->ok) {
        p->latency_us = fr->latency_us;
        p->last_ok_ms = bg_env_now_ms();
        p->error[0] = '\0';
    } else {
        snprintf(p->error, sizeof p->error, "%s", fr->error);
    }
    pthread_mutex_unlock(&p->status_lock);
}

void
gw_ping_peer(bg_gw *gw, const char *city, int timeout_ms, Baygate__PingResult *res, char *errbuf,
             size_t errn, char *namebuf, size_t namen)
{
    res->peer = (char *)city;
    res->ok = false;
    gw_peer *p = gw_peer_get(gw, city);
    bg_roster *r = gw_roster_get(gw);
    uint64_t serial = r ? bg_roster_serial(r) : 0;
    bg_roster_free(r);
    if (p == NULL) {
        res->error_code = BG_GW_E_NOT_PEER;
        snprintf(errbuf, errn, "%s is not a peer in roster serial %llu", city,
                 (unsigned long long)serial);
        res->error = errbuf;
        return;
    }
    snprintf(namebuf, namen, "%s", p->name);
    res->peer_name = namebuf;
    if (gw_peer_revoked(p, errbuf, errn)) {
        /* No round trip: its TLS handshake cannot succeed and would take the timeout. */
        res->error_code = BG_GW_E_REVOKED;
        res->error = errbuf;
        pthread_mutex_lock(&p->status_lock);
        p->probed = true;
        p->reachable = false;
        snprintf(p->error, sizeof p->error, "%s", errbuf);
        pthread_mutex_unlock(&p->status_lock);
        gw_peer_release(p);
        return;
    }
    uint8_t body[BG_FEDPING_BODY_MAX];
    bg_env_fields f = bg_fedping_fields(city, serial, body);
    bg_env_opened *o = NULL;
    bg_rt_result rt = {0};
    int rc = gw_call(gw, p, &f, timeout_ms, 0, NULL, &o, &rt);
    bg_fedping_result fr;
    bg_fedping_result_of(rc, &rt, o, city, &fr);
    bg_env_opened_free(o);
    snprintf(namebuf, namen, "%s", fr.ok ? fr.peer_name : p->name);
    res->peer_name = namebuf;
    res->ok = fr.ok;
    res->error_code = fr.code;
    res->peer_roster_serial = fr.peer_roster_serial;
    res->latency_us = fr.latency_us;
    res->clock_skew_ms = fr.clock_skew_ms;
    snprintf(errbuf, errn, "%s", fr.error);
    res->error = fr.ok ? NULL : errbuf;
    ping_note(p, &fr);
    gw_peer_release(p);
}
