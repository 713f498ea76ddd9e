/*
 * audit_find.c - the leaves of the log that match a filter (see audit.h): every leaf
 * read back from disk (its hash checked against the one in memory), decoded and
 * compared, in index order. The log's size is taken once, so a gateway appending
 * meanwhile adds nothing half-seen.
 */
#include <inttypes.h>
#include <string.h>

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
