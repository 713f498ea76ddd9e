/*
 * api_json.c - the JSON the API and the CLI share (api_json.h).
 */
#include "gateway/api/api_json.h"

#include <inttypes.h>
#include <sodium.h>
#include <string.h>

#include "certs/pki.h"
#include "common/json.h"
#include "domain/date.h"

const char *const bg_api_lookup_lists[BG_API_LOOKUP_LISTS] = {"serious-dishonesty",
                                                              "abnormal-operation", "grades"};

void
bg_api_json_kv(FILE *f, const char *k, const char *v, bool comma)
{
    fprintf(f, "%s\"%s\":", comma ? "," : "", k);
    bg_json_cstr(f, v ? v : "");
}

const char *
bg_api_when(int64_t ms, char out[32])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (ms <= 0 || gmtime_r(&t, &tm) == NULL || strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, 32, "never");
    return out;
}

void
bg_api_hex32(const ProtobufCBinaryData *b, char out[65])
{
    out[0] = '\0';
    for (size_t i = 0; i < b->len && i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", b->data[i]);
}

bg_api_expiry
bg_api_expiry_of(int64_t at_ms, int64_t warn_secs, time_t now)
{
    bg_api_expiry e = {.known = at_ms > 0};
    bg_api_when(at_ms, e.when);
    e.secs_left = at_ms / 1000 - (int64_t)now;
    e.warn = e.known && e.secs_left < warn_secs;
    return e;
}

const Baygate__PeerQueryResult *
bg_api_lookup_peer(const Baygate__LocalAnswer *a, const char *city)
{
    for (size_t i = 0; a != NULL && a->query != NULL && i < a->query->n_peers; i++)
        if (strcmp(a->query->peers[i]->peer, city) == 0)
            return a->query->peers[i];
    return NULL;
}

bool
bg_api_grade_valid(const char *until)
{
    int32_t d = 0;
    return until != NULL && bg_date_parse(until, strlen(until), &d, NULL) == BG_OK &&
           d >= bg_date_today();
}

const char *
bg_api_request_hex(const Baygate__PeerQueryResult *p, char out[33])
{
    out[0] = '\0';
    if (p != NULL && p->request_id.len == 16)
        sodium_bin2hex(out, 33, p->request_id.data, 16);
    return out;
}

/* ------------------------------------------------------------- status */

static void
json_expiry(FILE *f, const char *key, const char *at_key, const bg_api_expiry *e,
            const char *warn_key, unsigned warn)
{
    fprintf(f, ",\"%s\":{\"%s\":", key, at_key);
    if (e->known)
        fprintf(f, "\"%s\",\"days_left\":%lld,\"seconds_left\":%lld", e->when,
                (long long)(e->secs_left >= 0 ? e->secs_left / 86400
                                              : -((-e->secs_left + 86399) / 86400)),
                (long long)e->secs_left);
    else
        fprintf(f, "null");
    fprintf(f, ",\"%s\":%u,\"warning\":%s}", warn_key, warn, e->warn ? "true" : "false");
}

/* The lists we publish, our status list and the quota peers used today. */
static void
json_publishing(FILE *f, const Baygate__StatusAnswer *s)
{
    char t[32];
    fprintf(f, ",\"lists\":[");
    for (size_t i = 0; i < s->n_lists; i++) {
        const Baygate__ListStatus *l = s->lists[i];
        fprintf(f, "%s{\"list\":", i ? "," : "");
        bg_json_cstr(f, l->list);
        fprintf(f,
                ",\"generation\":%llu,\"epoch\":%llu,\"entries\":%llu,\"published_ms\":%lld,"
                "\"published\":\"%s\"}",
                (unsigned long long)l->generation, (unsigned long long)l->epoch,
                (unsigned long long)l->entries, (long long)l->published_ms,
                bg_api_when(l->published_ms, t));
    }
    fprintf(f, "],\"status_list\":{\"number\":%llu,\"issued_ms\":%lld},\"quotas\":[",
            (unsigned long long)s->status_list_number, (long long)s->status_list_issued_ms);
    for (size_t i = 0; i < s->n_quotas; i++) {
        fprintf(f, "%s{\"peer\":", i ? "," : "");
        bg_json_cstr(f, s->quotas[i]->peer);
        fprintf(f, ",\"used_today\":%llu,\"quota_per_day\":%llu}",
                (unsigned long long)s->quotas[i]->used_today,
                (unsigned long long)s->quotas[i]->quota_per_day);
    }
    fprintf(f, "]");
}

void
bg_api_json_head(FILE *f, const Baygate__EvidenceStatus *ev)
{
    char head[65], t[32];
    bg_api_hex32(&ev->head_root, head);
    if (ev->head_size > 0 || ev->head_time_ms > 0)
        fprintf(f, "{\"size\":%llu,\"root\":\"%s\",\"time_ms\":%lld,\"time\":\"%s\"}",
                (unsigned long long)ev->head_size, head, (long long)ev->head_time_ms,
                bg_api_when(ev->head_time_ms, t));
    else
        fprintf(f, "null");
}

static void
json_evidence(FILE *f, const Baygate__EvidenceStatus *ev)
{
    if (ev == NULL) {
        fprintf(f, ",\"evidence\":null");
        return;
    }
    char root[65];
    bg_api_hex32(&ev->root, root);
    fprintf(f,
            ",\"evidence\":{\"size\":%llu,\"root\":\"%s\",\"head\":", (unsigned long long)ev->size,
            root);
    bg_api_json_head(f, ev);
    fprintf(f, ",\"witnesses\":[");
    for (size_t i = 0; i < ev->n_witnesses; i++) {
        const Baygate__WitnessStatus *w = ev->witnesses[i];
        fprintf(f, "%s{\"witness\":", i ? "," : "");
        bg_json_cstr(f, w->witness);
        fprintf(f, ",\"size\":%llu,\"cosigned_ms\":%lld}", (unsigned long long)w->size,
                (long long)w->cosigned_ms);
    }
    fprintf(f, "]}");
}

static void
json_peers(FILE *f, const Baygate__StatusAnswer *s)
{
    fprintf(f, ",\"peers\":[");
    for (size_t i = 0; i < s->n_peers; i++) {
        const Baygate__PeerStatus *p = s->peers[i];
        fprintf(f, "%s{", i ? "," : "");
        bg_api_json_kv(f, "city", p->city, false);
        bg_api_json_kv(f, "name", p->name, true);
        bg_api_json_kv(f, "endpoint", p->endpoint, true);
        fprintf(f, ",\"reachable\":%s,\"latency_us\":%u,\"last_ok_ms\":%lld",
                p->reachable ? "true" : "false", p->latency_us, (long long)p->last_ok_ms);
        bg_api_json_kv(f, "error", p->error, true);
        fprintf(f, "}");
    }
    fprintf(f, "],\"requests\":{");
    for (size_t i = 0; i < s->n_requests; i++) {
        fprintf(f, "%s", i ? "," : "");
        bg_json_cstr(f, s->requests[i]->name);
        fprintf(f, ":%llu", (unsigned long long)s->requests[i]->value);
    }
    fprintf(f, "}");
}

const char *
bg_api_fetch_text(const Baygate__FetchStatus *fs, char *out, size_t n)
{
    /* KiB below a MiB: a small list's snapshot would read "0.0 of 0.1 MiB". */
    bool mib = fs->bytes >= 1024 * 1024;
    double unit = mib ? 1024.0 * 1024.0 : 1024.0;
    snprintf(out, n, "fetching %s %s: %.1f of %.1f %s (chunk %u of %u), %s, %llu s", fs->peer,
             fs->list, (double)fs->bytes_received / unit, (double)fs->bytes / unit,
             mib ? "MiB" : "KiB", fs->chunks_received, fs->chunks, fs->delta ? "delta" : "full",
             (unsigned long long)(fs->elapsed_ms / 1000));
    return out;
}

/* Peers' snapshots being fetched now. */
static void
json_fetches(FILE *f, const Baygate__StatusAnswer *s)
{
    fprintf(f, ",\"fetches\":[");
    for (size_t i = 0; i < s->n_fetches; i++) {
        const Baygate__FetchStatus *fs = s->fetches[i];
        fprintf(f, "%s{", i ? "," : "");
        bg_api_json_kv(f, "peer", fs->peer, false);
        bg_api_json_kv(f, "list", fs->list, true);
        bg_api_json_kv(f, "kind", fs->delta ? "delta" : "full", true);
        fprintf(f,
                ",\"generation\":%llu,\"epoch\":%llu,\"chunks\":%u,\"chunks_received\":%u,"
                "\"bytes\":%llu,\"bytes_received\":%llu,\"elapsed_ms\":%llu}",
                (unsigned long long)fs->generation, (unsigned long long)fs->epoch, fs->chunks,
                fs->chunks_received, (unsigned long long)fs->bytes,
                (unsigned long long)fs->bytes_received, (unsigned long long)fs->elapsed_ms);
    }
    fprintf(f, "]");
}

void
bg_api_json_status(FILE *f, const Baygate__StatusAnswer *s, time_t now)
{
    fprintf(f, "{");
    bg_api_json_kv(f, "city", s->city, false);
    bg_api_json_kv(f, "name", s->name, true);
    bg_api_json_kv(f, "version", s->version, true);
    fprintf(f,
            ",\"uptime_s\":%llu,\"roster_serial\":%llu,\"crl_number\":%llu,"
            "\"crl_next_update_ms\":%lld",
            (unsigned long long)s->uptime_s, (unsigned long long)s->roster_serial,
            (unsigned long long)s->crl_number, (long long)s->crl_next_update_ms);
    bg_api_json_kv(f, "listen", s->listen, true);
    bg_api_expiry cert =
        bg_api_expiry_of(s->cert_not_after_ms, (int64_t)s->cert_warn_days * 86400, now);
    bg_api_expiry crl =
        bg_api_expiry_of(s->crl_next_update_ms, (int64_t)s->crl_warn_hours * 3600, now);
    json_expiry(f, "certificate", "not_after", &cert, "warn_days", s->cert_warn_days);
    json_expiry(f, "crl", "next_update", &crl, "warn_hours", s->crl_warn_hours);
    json_publishing(f, s);
    json_evidence(f, s->evidence);
    bg_api_json_kv(f, "cert_sha256", s->cert_sha256, true);
    bg_api_json_kv(f, "cert_pinned", s->cert_pinned, true);
    bg_api_json_kv(f, "standing", s->standing, true);
    json_peers(f, s);
    json_fetches(f, s);
    fprintf(f, "}\n");
}

/* ------------------------------------------------------------- lookup */

static void
json_grade_fields(FILE *f, const char *grade, const char *scale, const char *common, uint32_t rank,
                  const char *eval, const char *until)
{
    bg_api_json_kv(f, "grade", grade, false);
    bg_api_json_kv(f, "scale", scale, true);
    bg_api_json_kv(f, "common_grade", common, true);
    fprintf(f, ",\"common_rank\":%u", rank);
    bg_api_json_kv(f, "evaluated_at", eval, true);
    bg_api_json_kv(f, "valid_until", until, true);
}

static const char NOT_IN_SCOPE[] = "not in scope";

static void
json_own(FILE *f, const bg_api_lookup *lk)
{
    const Baygate__LookupAnswer *la = lk->own;
    fprintf(f, "{");
    bg_api_json_kv(f, "city", la->city, false);
    bg_api_json_kv(f, "name", la->city_name, true);
    fprintf(f, ",\"own\":true,\"found\":%s", la->found ? "true" : "false");
    bg_api_json_kv(f, "enterprise_name", la->name, true);
    fprintf(f, ",\"lists\":[");
    for (int l = 0; l < BG_API_LOOKUP_LISTS - 1; l++) {
        const Baygate__LookupEntry *e = NULL;
        for (size_t k = 0; k < la->n_entries; k++)
            if (strcmp(la->entries[k]->list, bg_api_lookup_lists[l]) == 0)
                e = la->entries[k];
        fprintf(f, "%s{", l ? "," : "");
        bg_api_json_kv(f, "list", bg_api_lookup_lists[l], false);
        if (lk->q[l] == NULL) {
            bg_api_json_kv(f, "status", NOT_IN_SCOPE, true);
            fprintf(f, "}");
            continue;
        }
        bg_api_json_kv(f, "status", e ? "listed" : "not listed", true);
        if (e != NULL) {
            bg_api_json_kv(f, "listed_at", e->listed_at, true);
            bg_api_json_kv(f, "expires_at", e->expires_at, true);
            bg_api_json_kv(f, "reason", e->reason, true);
            fprintf(f, ",\"in_force\":%s", e->in_force ? "true" : "false");
        }
        fprintf(f, "}");
    }
    fprintf(f, "]");
    if (lk->q[BG_API_LOOKUP_LISTS - 1] == NULL) {
        fprintf(f, ",\"grade_status\":\"%s\",\"grade\":null}", NOT_IN_SCOPE);
        return;
    }
    fprintf(f, ",\"grade\":");
    if (!la->graded) {
        fprintf(f, "null}");
        return;
    }
    fprintf(f, "{");
    json_grade_fields(f, la->grade, la->scale, la->common_grade, la->common_rank, la->evaluated_at,
                      la->valid_until);
    fprintf(f, ",\"valid\":%s,\"attested\":null}}", la->valid ? "true" : "false");
}

static void
json_grade(FILE *f, const Baygate__PeerQueryResult *p)
{
    if (p->n_grades == 0) {
        fprintf(f, "null");
        return;
    }
    const Baygate__GradeResult *g = p->grades[0];
    fprintf(f, "{");
    json_grade_fields(f, g->grade, g->scale, g->common_grade, g->common_rank, g->evaluated_at,
                      g->valid_until);
    fprintf(f, ",\"valid\":%s,\"attested\":%s",
            bg_api_grade_valid(g->valid_until) ? "true" : "false", g->attested ? "true" : "false");
    if (!g->attested)
        bg_api_json_kv(f, "attestation_error", g->attestation_error, true);
    /* The same three words as query's grade_status: never a bare grade. */
    const char *st = g->attestation_status != NULL && g->attestation_status[0]
                         ? g->attestation_status
                     : g->attested ? "attested"
                                   : "unattested";
    if (strcmp(st, "attested") == 0 && !bg_api_grade_valid(g->valid_until))
        st = "expired";
    bg_api_json_kv(f, "status", st, true);
    fprintf(f, "}");
}

/* The grade part of a peer's object (after its lists); true if it answered. */
static bool
json_peer_grade(FILE *f, const bg_api_lookup *l, const char *peer)
{
    if (l->q[BG_API_LOOKUP_LISTS - 1] == NULL) {
        fprintf(f, ",\"grade_status\":\"%s\",\"grade\":null", NOT_IN_SCOPE);
        return true;
    }
    const Baygate__PeerQueryResult *p = bg_api_lookup_peer(l->q[BG_API_LOOKUP_LISTS - 1], peer);
    bool ok = p != NULL && p->ok;
    char rid[33];
    bg_api_json_kv(f, "grade_request_id", bg_api_request_hex(p, rid), true);
    fprintf(f, ",\"grade_status\":\"%s\"", !ok ? "error" : p->n_grades ? "graded" : "not graded");
    if (!ok)
        bg_api_json_kv(f, "grade_error", p ? p->error : "no answer", true);
    fprintf(f, ",\"grade\":");
    if (ok)
        json_grade(f, p);
    else
        fprintf(f, "null");
    return ok;
}

/* Peer p0's object; true if it answered every list. */
static bool
json_peer(FILE *f, const bg_api_lookup *l, const Baygate__PeerQueryResult *p0)
{
    bool all = true;
    fprintf(f, ",{");
    bg_api_json_kv(f, "city", p0->peer, false);
    bg_api_json_kv(f, "name", p0->peer_name, true);
    fprintf(f, ",\"own\":false,\"lists\":[");
    for (int i = 0; i < BG_API_LOOKUP_LISTS - 1; i++) {
        fprintf(f, "%s{", i ? "," : "");
        bg_api_json_kv(f, "list", bg_api_lookup_lists[i], false);
        if (l->q[i] == NULL) {
            bg_api_json_kv(f, "status", NOT_IN_SCOPE, true);
            fprintf(f, "}");
            continue;
        }
        const Baygate__PeerQueryResult *p = bg_api_lookup_peer(l->q[i], p0->peer);
        bool ok = p != NULL && p->ok;
        char rid[33];
        all &= ok;
        bg_api_json_kv(f, "status", !ok ? "error" : p->n_matches ? "listed" : "not listed", true);
        bg_api_json_kv(f, "request_id", bg_api_request_hex(p, rid), true);
        if (!ok)
            bg_api_json_kv(f, "error", p ? p->error : "no answer", true);
        fprintf(f, "}");
    }
    fprintf(f, "]");
    all &= json_peer_grade(f, l, p0->peer);
    fprintf(f, "}");
    return all;
}

bool
bg_api_json_lookup(FILE *f, const bg_api_lookup *l)
{
    const Baygate__QueryAnswer *q0 = NULL;
    for (int i = 0; i < BG_API_LOOKUP_LISTS && q0 == NULL; i++)
        if (l->q[i] != NULL)
            q0 = l->q[i]->query;
    bool all = true;
    fprintf(f, "{");
    bg_api_json_kv(f, "uscc", l->uscc, false);
    bg_api_json_kv(f, "purpose", l->purpose, true);
    fprintf(f, ",\"cities\":[");
    json_own(f, l);
    for (size_t i = 0; i < q0->n_peers; i++)
        all &= json_peer(f, l, q0->peers[i]);
    fprintf(f, "]}\n");
    return all;
}

/* ------------------------------------------------------------- evidence */

void
bg_api_json_find_open(FILE *f, const char *city, uint64_t log_size)
{
    fprintf(f, "{");
    bg_api_json_kv(f, "city", city, false);
    fprintf(f, ",\"log_size\":%" PRIu64 ",\"leaves\":[", log_size);
}

void
bg_api_json_find_close(FILE *f, uint64_t matched, bool ok)
{
    fprintf(f, "],\"matches\":%" PRIu64 ",\"ok\":%s}\n", matched, ok ? "true" : "false");
}

void
bg_api_json_leaf(FILE *f, uint64_t index, const bg_audit_event *ev, bool first)
{
    char ts[BG_PKI_TIME_LEN], rid[2 * BG_AUDIT_REQUEST_ID_LEN + 1], ref[2 * BG_AUDIT_REF_MAX + 1];
    bg_pki_time_format((time_t)(ev->time_ms / 1000), ts);
    sodium_bin2hex(rid, sizeof rid, ev->request_id, BG_AUDIT_REQUEST_ID_LEN);
    sodium_bin2hex(ref, sizeof ref, ev->authorisation_ref, ev->authorisation_ref_len);
    fprintf(f,
            "%s{\"index\":%" PRIu64 ",\"time_ms\":%" PRId64
            ",\"time\":\"%s\",\"kind\":\"%s\",\"direction\":\"%s\",\"peer\":",
            first ? "" : ",", index, ev->time_ms, ts, bg_audit_kind_name(ev->kind),
            ev->direction == BG_AUDIT_OUTBOUND ? "outbound" : "inbound");
    bg_json_cstr(f, ev->peer);
    bg_api_json_kv(f, "purpose", ev->purpose, true);
    bg_api_json_kv(f, "list", ev->list, true);
    fprintf(f, ",\"epoch\":%" PRIu64 ",\"items_asked\":%u,\"items_answered\":%u,\"outcome\":%u",
            ev->epoch, ev->items_asked, ev->items_answered, ev->outcome);
    bg_api_json_kv(f, "reason", ev->reason, true);
    if (ev->application[0] != '\0')
        bg_api_json_kv(f, "application", ev->application, true);
    fprintf(f, ",\"request_id\":\"%s\",\"authorisation_ref\":\"%s\"}", rid, ref);
}
