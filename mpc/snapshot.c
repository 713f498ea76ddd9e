/*
 * snapshot.c - the snapshot object: accessors, tag lookups and the parallel match, the
 * entry-order check every parsed or merged snapshot passes, epochs. See snapshot.h for
 * the contract and the formats, snap_int.h for the other files.
 */
#include "mpc/snapshot.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "common/pool.h"
#include "mpc/snap_int.h"

size_t
bg_snap_entry_bytes(int graded)
{
    return entry_bytes(graded);
}

void
bg_snap_free(bg_snap *s)
{
    if (s == NULL)
        return;
    if (s->block != NULL) {
        free(s->block);
    } else {
        free(s->tags);
        free(s->sealed);
    }
    free(s);
}

void
bg_snap_get_info(const bg_snap *s, bg_snap_info *info)
{
    memset(info, 0, sizeof *info);
    info->kind = BG_SNAP_KIND_SNAPSHOT;
    memcpy(info->list, s->list, s->list_len);
    info->generation = s->generation;
    info->epoch = s->epoch;
    info->count = s->n;
    info->graded = s->graded;
    info->entry_bytes = entry_bytes(s->graded);
    info->wire_bytes = HDR_FIXED + s->list_len + HDR_TAIL + s->n * info->entry_bytes;
    memcpy(info->digest, s->digest, DB);
    memcpy(info->root, s->root, DB);
}

size_t
bg_snap_count(const bg_snap *s)
{
    return s->n;
}

const uint8_t *
bg_snap_tag_at(const bg_snap *s, size_t i)
{
    return i < s->n ? s->tags + TB * i : NULL;
}

const uint8_t *
bg_snap_sealed_at(const bg_snap *s, size_t i)
{
    return i < s->n && s->graded ? s->sealed + SEB * i : NULL;
}

/* Checks the entries of a (parsed or merged) array: sorted by (tag, sealed), runs bounded. */
int
bg_snap_entries_check(const uint8_t *tags, const uint8_t *sealed, size_t n, const char *what,
                      bg_err *err)
{
    size_t run = 1;
    for (size_t i = 1; i < n; i++) {
        int c = memcmp(tags + TB * (i - 1), tags + TB * i, TB);
        if (c == 0 && sealed != NULL)
            c = memcmp(sealed + SEB * (i - 1), sealed + SEB * i, SEB);
        if (c > 0)
            return bg_err_set(err, BG_EPROTO, "%s %zu: out of order", what, i);
        run = memcmp(tags + TB * (i - 1), tags + TB * i, TB) == 0 ? run + 1 : 1;
        if (run > BG_SNAP_MAX_RUN)
            return bg_err_set(err, BG_EPROTO, "%s %zu: more than %u entries share a tag", what, i,
                              BG_SNAP_MAX_RUN);
    }
    return BG_OK;
}

/* Entries i.. sharing entry i's tag. */
size_t
bg_snap_run_end(const uint8_t *tags, size_t n, size_t i)
{
    size_t j = i + 1;
    while (j < n && memcmp(tags + TB * j, tags + TB * i, TB) == 0)
        j++;
    return j;
}

size_t
bg_snap_find(const bg_snap *s, const uint8_t tag[TB], size_t *run)
{
    uint64_t t = tag_key(tag);
    size_t lo = 0, hi = s->n;
    while (lo < hi) { /* first index whose tag is >= t */
        size_t mid = lo + (hi - lo) / 2;
        if (tag_key(s->tags + TB * mid) < t)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t end = lo;
    while (end < s->n && tag_key(s->tags + TB * end) == t)
        end++;
    if (run != NULL)
        *run = end - lo;
    return end > lo ? lo : BG_SNAP_NONE;
}

struct match_ctx {
    const bg_snap *s;
    const uint8_t *elements;
    size_t *first;
};

static int
match_unit(void *vctx, size_t begin, size_t end, size_t *bad, bg_err *err)
{
    (void)bad;
    (void)err;
    const struct match_ctx *c = vctx;
    uint8_t tag[TB];
    for (size_t i = begin; i < end; i++) {
        bg_snap_tag(tag, c->elements + EB * i);
        c->first[i] = bg_snap_find(c->s, tag, NULL);
    }
    sodium_memzero(tag, sizeof tag);
    return BG_OK;
}

int
bg_snap_match(const bg_snap *s, const uint8_t *elements, size_t n, size_t *first, unsigned nthreads,
              bg_err *err)
{
    int rc = ready(err);
    if (rc != BG_OK)
        return rc;
    if (s == NULL || (n > 0 && (elements == NULL || first == NULL)))
        return bg_err_set(err, BG_EINVAL, "match: NULL argument");
    struct match_ctx c = {.s = s, .elements = elements, .first = first};
    return bg_pool_run(n, 256, nthreads, match_unit, &c, err);
}

int
bg_snap_freshness(uint64_t cur_generation, uint64_t cur_epoch, uint64_t generation, uint64_t epoch)
{
    if (epoch < cur_epoch)
        return BG_SNAP_STALE;
    if (epoch > cur_epoch)
        return BG_SNAP_AHEAD;
    if (generation != cur_generation)
        return BG_SNAP_WRONG_KEY_GEN;
    return BG_SNAP_CURRENT;
}

int
bg_snap_require_current(uint64_t cur_generation, uint64_t cur_epoch, uint64_t generation,
                        uint64_t epoch, bg_err *err)
{
    switch (bg_snap_freshness(cur_generation, cur_epoch, generation, epoch)) {
    case BG_SNAP_CURRENT:
        return BG_OK;
    case BG_SNAP_STALE:
        return bg_err_set(err, BG_EPROTO,
                          "stale epoch %llu (generation %llu): the current is %llu (generation "
                          "%llu); refresh the snapshot",
                          (unsigned long long)epoch, (unsigned long long)generation,
                          (unsigned long long)cur_epoch, (unsigned long long)cur_generation);
    case BG_SNAP_AHEAD:
        return bg_err_set(err, BG_EPROTO, "epoch %llu was never published: the current is %llu",
                          (unsigned long long)epoch, (unsigned long long)cur_epoch);
    default:
        return bg_err_set(err, BG_EPROTO,
                          "epoch %llu is of generation %llu, not %llu: refresh the snapshot",
                          (unsigned long long)epoch, (unsigned long long)cur_generation,
                          (unsigned long long)generation);
    }
}
