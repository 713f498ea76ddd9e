/*
 * snap_delta.c - deltas between two epochs of one generation: the removed tags and the
 * added entries (one walk over both sorted snapshots), and applying one to the older
 * snapshot, checked against the target digest.
 */
#include <sodium.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "mpc/snap_int.h"

void
bg_snap_delta_free(bg_snap_delta *d)
{
    if (d == NULL)
        return;
    if (d->block != NULL) {
        free(d->block);
    } else {
        free(d->removed);
        free(d->add_tags);
        free(d->add_sealed);
    }
    free(d);
}

void
bg_snap_delta_get_info(const bg_snap_delta *d, bg_snap_info *info)
{
    memset(info, 0, sizeof *info);
    info->kind = BG_SNAP_KIND_DELTA;
    memcpy(info->list, d->list, d->list_len);
    info->generation = d->generation;
    info->epoch = d->to_epoch;
    info->from_epoch = d->from_epoch;
    info->count = d->to_count;
    info->graded = d->graded;
    info->entry_bytes = entry_bytes(d->graded);
    info->removed = d->nrem;
    info->added = d->nadd;
    info->wire_bytes =
        HDR_FIXED + d->list_len + HDR_TAIL + HDR_DELTA + TB * d->nrem + d->nadd * info->entry_bytes;
    memcpy(info->digest, d->to_digest, DB);
    memcpy(info->from_digest, d->from_digest, DB);
}

static bool
runs_equal(const bg_snap *a, size_t ai, size_t aj, const bg_snap *b, size_t bi, size_t bj)
{
    if (aj - ai != bj - bi)
        return false;
    return !a->graded || memcmp(a->sealed + SEB * ai, b->sealed + SEB * bi, SEB * (aj - ai)) == 0;
}

/* One walk over both snapshots; with d->removed == NULL it only counts. */
static void
delta_walk(bg_snap_delta *d, const bg_snap *o, const bg_snap *nw)
{
    size_t i = 0, j = 0, r = 0, a = 0;
    bool fill = d->removed != NULL || d->add_tags != NULL;
    while (i < o->n || j < nw->n) {
        int c = i >= o->n ? 1 : j >= nw->n ? -1 : memcmp(o->tags + TB * i, nw->tags + TB * j, TB);
        size_t ie = i < o->n ? bg_snap_run_end(o->tags, o->n, i) : i;
        size_t je = j < nw->n ? bg_snap_run_end(nw->tags, nw->n, j) : j;
        bool rem = c < 0 || (c == 0 && !runs_equal(o, i, ie, nw, j, je));
        bool add = c > 0 || (c == 0 && rem);
        if (rem) {
            if (fill)
                memcpy(d->removed + TB * r, o->tags + TB * i, TB);
            r++;
        }
        if (add) {
            if (fill) {
                memcpy(d->add_tags + TB * a, nw->tags + TB * j, TB * (je - j));
                if (nw->graded)
                    memcpy(d->add_sealed + SEB * a, nw->sealed + SEB * j, SEB * (je - j));
            }
            a += je - j;
        }
        if (c <= 0)
            i = ie;
        if (c >= 0)
            j = je;
    }
    d->nrem = r;
    d->nadd = a;
}

int
bg_snap_delta_make(bg_snap_delta **out, const bg_snap *o, const bg_snap *nw, bg_err *err)
{
    if (out == NULL || o == NULL || nw == NULL)
        return bg_err_set(err, BG_EINVAL, "delta: NULL argument");
    *out = NULL;
    if (o->list_len != nw->list_len || memcmp(o->list, nw->list, o->list_len) != 0)
        return bg_err_set(err, BG_EINVAL, "delta: lists %s and %s differ", o->list, nw->list);
    if (o->generation != nw->generation)
        return bg_err_set(err, BG_EINVAL,
                          "delta: generations %llu and %llu differ (the key rotated): send the "
                          "full snapshot",
                          (unsigned long long)o->generation, (unsigned long long)nw->generation);
    if (o->graded != nw->graded)
        return bg_err_set(err, BG_EINVAL, "delta: one snapshot is graded, the other not");
    if (o->epoch >= nw->epoch)
        return bg_err_set(err, BG_EINVAL, "delta: epoch %llu is not before %llu",
                          (unsigned long long)o->epoch, (unsigned long long)nw->epoch);
    bg_snap_delta *d = calloc(1, sizeof *d);
    if (d == NULL)
        return bg_err_set(err, BG_ENOMEM, "delta: out of memory");
    memcpy(d->list, o->list, o->list_len);
    d->list_len = o->list_len;
    d->generation = o->generation;
    d->from_epoch = o->epoch;
    d->to_epoch = nw->epoch;
    d->graded = o->graded;
    d->to_count = nw->n;
    memcpy(d->from_digest, o->digest, DB);
    memcpy(d->to_digest, nw->digest, DB);
    delta_walk(d, o, nw);
    size_t nrem = d->nrem, nadd = d->nadd;
    d->removed = malloc(TB * nrem + 1);
    d->add_tags = malloc(TB * nadd + 1);
    d->add_sealed = d->graded ? malloc(SEB * nadd + 1) : NULL;
    if (d->removed == NULL || d->add_tags == NULL || (d->graded && d->add_sealed == NULL)) {
        bg_snap_delta_free(d);
        return bg_err_set(err, BG_ENOMEM, "delta: out of memory");
    }
    delta_walk(d, o, nw);
    *out = d;
    return BG_OK;
}

/*
 * s = o without d's removed runs, merged with d's added entries, in tag order (s has room
 * for cap entries); refuses a removed tag absent from o, an added tag still present, and
 * a result of another size than cap.
 */
static int
apply_merge(bg_snap *s, const bg_snap *o, const bg_snap_delta *d, size_t cap, bg_err *err)
{
    size_t i = 0, r = 0, a = 0, w = 0;
    int rc = BG_OK;
    while (rc == BG_OK && (i < o->n || a < d->nadd)) {
        const uint8_t *to = i < o->n ? o->tags + TB * i : NULL;
        const uint8_t *ta = a < d->nadd ? d->add_tags + TB * a : NULL;
        if (to != NULL && r < d->nrem) {
            int c = memcmp(d->removed + TB * r, to, TB);
            if (c < 0) {
                rc = bg_err_set(err, BG_EPROTO, "delta: removed tag %zu is not in the snapshot", r);
                break;
            }
            if (c == 0) {
                i = bg_snap_run_end(o->tags, o->n, i);
                r++;
                continue;
            }
        }
        const uint8_t *src_tag, *src_sealed;
        if (ta != NULL && (to == NULL || memcmp(ta, to, TB) < 0)) {
            src_tag = ta;
            src_sealed = d->graded ? d->add_sealed + SEB * a : NULL;
            a++;
        } else if (ta != NULL && memcmp(ta, to, TB) == 0) {
            rc = bg_err_set(err, BG_EPROTO, "delta: added entry %zu's tag is already present", a);
            break;
        } else {
            src_tag = to;
            src_sealed = o->graded ? o->sealed + SEB * i : NULL;
            i++;
        }
        if (w >= cap) {
            rc = bg_err_set(err, BG_EPROTO, "delta: the result has more than %zu entries", cap);
            break;
        }
        memcpy(s->tags + TB * w, src_tag, TB);
        if (src_sealed != NULL)
            memcpy(s->sealed + SEB * w, src_sealed, SEB);
        w++;
    }
    if (rc == BG_OK && r < d->nrem)
        rc = bg_err_set(err, BG_EPROTO, "delta: removed tag %zu is not in the snapshot", r);
    if (rc == BG_OK && w != cap)
        rc = bg_err_set(err, BG_EPROTO, "delta: the result has %zu entries, the delta says %zu", w,
                        cap);
    s->n = w;
    return rc;
}

int
bg_snap_delta_apply(bg_snap **out, const bg_snap *o, const bg_snap_delta *d, unsigned nthreads,
                    bg_err *err)
{
    if (out == NULL || o == NULL || d == NULL)
        return bg_err_set(err, BG_EINVAL, "delta: NULL argument");
    *out = NULL;
    int rc = ready(err);
    if (rc != BG_OK)
        return rc;
    if (o->list_len != d->list_len || memcmp(o->list, d->list, o->list_len) != 0)
        return bg_err_set(err, BG_EPROTO, "delta: for list %s, not %s", d->list, o->list);
    if (o->generation != d->generation)
        return bg_err_set(err, BG_EPROTO,
                          "delta: for generation %llu, not %llu: fetch the full snapshot",
                          (unsigned long long)d->generation, (unsigned long long)o->generation);
    if (o->epoch != d->from_epoch || o->graded != d->graded)
        return bg_err_set(err, BG_EPROTO, "delta: from epoch %llu, the snapshot is epoch %llu",
                          (unsigned long long)d->from_epoch, (unsigned long long)o->epoch);
    if (sodium_memcmp(o->digest, d->from_digest, DB) != 0)
        return bg_err_set(err, BG_EPROTO, "delta: its base digest is not the snapshot's");

    /* The count is the delta's word, and what it allocates: it is bounded by what the
     * delta can make before anything is allocated for it (removals only shrink). */
    if (d->to_count > o->n + d->nadd)
        return bg_err_set(err, BG_EPROTO,
                          "delta: announces %zu entries, but %zu entries and %zu added make at "
                          "most %zu",
                          d->to_count, o->n, d->nadd, o->n + d->nadd);

    bg_snap *s = calloc(1, sizeof *s);
    if (s == NULL)
        return bg_err_set(err, BG_ENOMEM, "delta: out of memory");
    memcpy(s->list, o->list, o->list_len);
    s->list_len = o->list_len;
    s->generation = o->generation;
    s->epoch = d->to_epoch;
    s->graded = o->graded;
    size_t cap = d->to_count;
    s->tags = malloc(TB * cap + 1);
    s->sealed = s->graded ? malloc(SEB * cap + 1) : NULL;
    if (s->tags == NULL || (s->graded && s->sealed == NULL)) {
        bg_snap_free(s);
        return bg_err_set(err, BG_ENOMEM, "delta: out of memory for %zu entries", cap);
    }

    rc = apply_merge(s, o, d, cap, err);
    /* Both inputs are sorted and runs never merge (an added tag must be absent), but the
     * result is checked anyway: it is the snapshot every later lookup trusts. */
    if (rc == BG_OK)
        rc = bg_snap_entries_check(s->tags, s->sealed, s->n, "delta result entry", err);
    if (rc == BG_OK)
        rc = bg_snap_rehash(s, nthreads, err);
    if (rc == BG_OK && sodium_memcmp(s->digest, d->to_digest, DB) != 0)
        rc = bg_err_set(err, BG_EPROTO, "delta: the result's digest is not the announced one");
    if (rc != BG_OK) {
        bg_snap_free(s);
        return rc;
    }
    *out = s;
    return BG_OK;
}
