/*
 * audit_find.c - the leaves of the log that match a filter (see audit.h): every leaf
 * read back from disk (its hash checked against the one in memory), decoded and
 * compared, in index order. The log's size is taken once, so a gateway appending
 * meanwhile adds nothing half-seen.
 */
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "certs/pki.h"
#include "gateway/audit/audit.h"

bool
bg_audit_filter_match(const bg_audit_filter *f, const bg_audit_event *ev)
{
    if (f->has_request_id && memcmp(f->request_id, ev->request_id, BG_AUDIT_REQUEST_ID_LEN) != 0)
        return false;
    if (f->peer[0] != '\0' && strcmp(f->peer, ev->peer) != 0)
        return false;
    if (f->purpose[0] != '\0' && strcmp(f->purpose, ev->purpose) != 0)
        return false;
    if (f->has_authorisation_ref &&
        (f->authorisation_ref_len != ev->authorisation_ref_len ||
         memcmp(f->authorisation_ref, ev->authorisation_ref, f->authorisation_ref_len) != 0))
        return false;
    if (f->has_since && ev->time_ms < f->since_ms)
        return false;
    if (f->has_until && ev->time_ms > f->until_ms)
        return false;
    return true;
}

/* Exactly 2*cap hex digits or, with any, 2..2*cap: into out, *n bytes. */
static bool
hex_in(const char *s, uint8_t *out, size_t cap, bool exact, size_t *n)
{
    size_t len = strlen(s);
    *n = 0;
    return sodium_hex2bin(out, cap, s, len, NULL, n, NULL) == 0 && *n > 0 && len == 2 * *n &&
           (!exact || *n == cap);
}

/* Unix seconds, or a time bg_pki_time_parse reads; a date alone as an upper bound
 * means its last millisecond. */
static int
time_in(const char *name, const char *s, bool until, int64_t *ms, bg_err *err)
{
    if (s[0] >= '0' && s[0] <= '9' && strspn(s, "0123456789") == strlen(s)) {
        if (strlen(s) > 15)
            return bg_err_set(err, BG_EINVAL, "%s: '%.20s' is out of range", name, s);
        *ms = (int64_t)strtoll(s, NULL, 10) * 1000;
        return BG_OK;
    }
    time_t t;
    bg_err sub = {0}; /* not err itself: its message is an argument of the new one */
    if (bg_pki_time_parse(s, &t, &sub) != BG_OK)
        return bg_err_set(err, BG_EINVAL, "%s: %s (or Unix seconds)", name, sub.msg);
    *ms = (int64_t)t * 1000 + (until && strlen(s) == 10 ? 86399999 : 0);
    return BG_OK;
}

/* bg_audit_filter_set on f itself, which may be half-set when it fails. */
static int
filter_set(bg_audit_filter *f, bg_audit_crit c, const char *name, const char *s, bg_err *err)
{
    size_t n = 0;
    int rc = BG_OK;
    switch (c) {
    case BG_AUDIT_CRIT_REQUEST:
        if (!hex_in(s, f->request_id, BG_AUDIT_REQUEST_ID_LEN, true, &n))
            return bg_err_set(err, BG_EINVAL,
                              "%s must be 32 hex digits (a request id as query prints it)", name);
        f->has_request_id = true;
        return BG_OK;
    case BG_AUDIT_CRIT_PEER:
        if (strlen(s) != 6 || strspn(s, "0123456789") != 6)
            return bg_err_set(err, BG_EINVAL, "%s must be a 6-digit city code", name);
        memcpy(f->peer, s, 7);
        return BG_OK;
    case BG_AUDIT_CRIT_PURPOSE:
        if (strlen(s) == 0 || strlen(s) > BG_AUDIT_TEXT_MAX)
            return bg_err_set(err, BG_EINVAL, "%s must be 1..%d bytes", name, BG_AUDIT_TEXT_MAX);
        snprintf(f->purpose, sizeof f->purpose, "%s", s);
        return BG_OK;
    case BG_AUDIT_CRIT_AUTH_REF:
        if (!hex_in(s, f->authorisation_ref, sizeof f->authorisation_ref, false, &n))
            return bg_err_set(err, BG_EINVAL, "%s must be 2 to %zu hex digits", name,
                              2 * sizeof f->authorisation_ref);
        f->has_authorisation_ref = true;
        f->authorisation_ref_len = n;
        return BG_OK;
    case BG_AUDIT_CRIT_SINCE:
    case BG_AUDIT_CRIT_UNTIL: {
        bool until = c == BG_AUDIT_CRIT_UNTIL;
        rc = time_in(name, s, until, until ? &f->until_ms : &f->since_ms, err);
        if (rc != BG_OK)
            return rc;
        *(until ? &f->has_until : &f->has_since) = true;
        if (f->has_since && f->has_until && f->since_ms > f->until_ms)
            return bg_err_set(err, BG_EINVAL, "%s: since is after until", name);
        return BG_OK;
    }
    }
    return bg_err_set(err, BG_EINVAL, "%s: not a criterion", name);
}

int
bg_audit_find(bg_audit_log *log, const bg_audit_filter *f, bg_audit_find_fn fn, void *ctx,
              uint64_t *matched, bg_err *err)
{
    uint64_t n = bg_audit_size(log), hits = 0;
    int rc = BG_OK;
    for (uint64_t i = 0; i < n; i++) {
        uint8_t buf[BG_AUDIT_LEAF_MAX];
        size_t len = 0;
        bg_audit_event ev;
        bg_err sub = {0};
        if (bg_audit_leaf_read(log, i, buf, &len, &ev, &sub) != BG_OK) {
            rc = bg_err_set(err, sub.code ? sub.code : BG_EPROTO, "leaf %" PRIu64 ": %s", i,
                            sub.msg);
            break;
        }
        if (!bg_audit_filter_match(f, &ev))
            continue;
        hits++;
        if (fn != NULL && !fn(ctx, i, &ev, buf, len))
            break;
    }
    if (matched != NULL)
        *matched = hits;
    return rc;
}

int
bg_audit_filter_set(bg_audit_filter *f, bg_audit_crit c, const char *name, const char *s,
                    bg_err *err)
{
    bg_audit_filter g = *f; /* f changes only when s is good */
    int rc = filter_set(&g, c, name, s, err);
    if (rc == BG_OK)
        *f = g;
    return rc;
}
