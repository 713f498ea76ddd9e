/*
 * fetch.c - snapshot fetches in flight (see fetch.h).
 */
#include "gateway/daemon/fetch.h"

#include <stdlib.h>
#include <string.h>

#include "common/clock.h"

void
gw_fetches_init(gw_fetches *t)
{
    memset(t, 0, sizeof *t);
    pthread_mutex_init(&t->lock, NULL);
}

void
gw_fetches_destroy(gw_fetches *t)
{
    pthread_mutex_destroy(&t->lock);
}

int
gw_fetch_begin(gw_fetches *t, const gw_fetch *f)
{
    int slot = -1;
    pthread_mutex_lock(&t->lock);
    for (int i = 0; i < GW_FETCH_MAX && slot < 0; i++) {
        if (t->used[i])
            continue;
        slot = i;
        t->e[i] = *f;
        t->e[i].started_ms = bg_clock_ms();
        t->used[i] = true;
    }
    pthread_mutex_unlock(&t->lock);
    return slot;
}

void
gw_fetch_progress(gw_fetches *t, int slot, uint64_t stream_bytes)
{
    if (slot < 0 || slot >= GW_FETCH_MAX)
        return;
    pthread_mutex_lock(&t->lock);
    if (t->used[slot]) {
        t->e[slot].chunks_received++;
        t->e[slot].bytes_received += stream_bytes;
    }
    pthread_mutex_unlock(&t->lock);
}

void
gw_fetch_end(gw_fetches *t, int slot)
{
    if (slot < 0 || slot >= GW_FETCH_MAX)
        return;
    pthread_mutex_lock(&t->lock);
    t->used[slot] = false;
    pthread_mutex_unlock(&t->lock);
}

static int
by_start(const void *a, const void *b)
{
    const gw_fetch *x = a, *y = b;
    return (x->started_ms > y->started_ms) - (x->started_ms < y->started_ms);
}

size_t
gw_fetch_list(gw_fetches *t, gw_fetch *out, size_t cap)
{
    size_t n = 0;
    pthread_mutex_lock(&t->lock);
    for (int i = 0; i < GW_FETCH_MAX && n < cap; i++)
        if (t->used[i])
            out[n++] = t->e[i];
    pthread_mutex_unlock(&t->lock);
    qsort(out, n, sizeof *out, by_start);
    return n;
}
