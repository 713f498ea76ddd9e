/*
 * cache.c - peers' verified snapshots and status list numbers (see cache.h).
 */
#include "gateway/daemon/cache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
gw_cache_init(gw_cache *c)
{
    memset(c, 0, sizeof *c);
    pthread_mutex_init(&c->lock, NULL);
}

void
gw_cached_release(gw_cached *c)
{
    if (c != NULL && atomic_fetch_sub(&c->refs, 1) == 1) {
        if (c->base != NULL)
            gw_cached_release(c->base);
        else
            bg_snap_free(c->snap);
        free(c);
    }
}

gw_cached *
gw_cached_resigned(gw_cached *s, const uint8_t *sig, size_t sig_len)
{
    gw_cached *c = sig_len <= sizeof s->sig ? calloc(1, sizeof *c) : NULL;
    if (c == NULL)
        return NULL;
    atomic_init(&c->refs, 1);
    c->base = s->base != NULL ? s->base : s;
    atomic_fetch_add(&c->base->refs, 1);
    c->snap = s->snap;
    c->info = s->info;
    memcpy(c->sig, sig, sig_len);
    c->sig_len = sig_len;
    return c;
}

void
gw_cache_destroy(gw_cache *c)
{
    for (size_t i = 0; i < c->n; i++)
        gw_cached_release(c->e[i].c);
    pthread_mutex_destroy(&c->lock);
}

gw_cached *
gw_cache_get(gw_cache *c, const char *city, const char *list)
{
    gw_cached *found = NULL;
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < c->n; i++) {
        if (strcmp(c->e[i].city, city) == 0 && strcmp(c->e[i].list, list) == 0) {
            found = c->e[i].c;
            if (found != NULL)
                atomic_fetch_add(&found->refs, 1);
            break;
        }
    }
    pthread_mutex_unlock(&c->lock);
    return found;
}

void
gw_cache_put(gw_cache *c, const char *city, const char *list, gw_cached *s)
{
    gw_cached *old = NULL;
    pthread_mutex_lock(&c->lock);
    size_t i = 0;
    while (i < c->n && !(strcmp(c->e[i].city, city) == 0 && strcmp(c->e[i].list, list) == 0))
        i++;
    if (i == c->n && c->n < sizeof c->e / sizeof c->e[0]) {
        snprintf(c->e[i].city, sizeof c->e[i].city, "%s", city);
        snprintf(c->e[i].list, sizeof c->e[i].list, "%s", list);
        c->e[i].c = NULL;
        c->n++;
    }
    if (i < c->n && (c->e[i].c == NULL || c->e[i].c->info.epoch <= s->info.epoch)) {
        old = c->e[i].c;
        atomic_fetch_add(&s->refs, 1);
        c->e[i].c = s;
    }
    pthread_mutex_unlock(&c->lock);
    gw_cached_release(old);
}

uint64_t
gw_cache_status_seen(gw_cache *c, const char *city)
{
    uint64_t n = 0;
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < c->nstatus; i++)
        if (strcmp(c->status[i].city, city) == 0)
            n = c->status[i].number;
    pthread_mutex_unlock(&c->lock);
    return n;
}

void
gw_cache_status_saw(gw_cache *c, const char *city, uint64_t number)
{
    pthread_mutex_lock(&c->lock);
    size_t i = 0;
    while (i < c->nstatus && strcmp(c->status[i].city, city) != 0)
        i++;
    if (i == c->nstatus && c->nstatus < BG_ROSTER_MAX_MEMBERS) {
        snprintf(c->status[i].city, sizeof c->status[i].city, "%s", city);
        c->status[i].number = 0;
        c->nstatus++;
    }
    if (i < c->nstatus && c->status[i].number < number)
        c->status[i].number = number;
    pthread_mutex_unlock(&c->lock);
}
