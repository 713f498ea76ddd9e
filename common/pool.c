/*
 * pool.c - the parallel for of pool.h: threads made per call and joined before it
 * returns (a call is milliseconds to minutes of crypto, so a thread's start costs
 * nothing next to it, and no pool outlives its caller).
 */
#include "common/pool.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NO_INDEX ((size_t)-1)

struct pool {
    bg_pool_fn fn;
    void *ctx;
    size_t n, grain, units;
    atomic_size_t next;
    atomic_bool stop;
};

struct worker {
    struct pool *p;
    pthread_t tid;
    int rc;
    size_t bad;
    bg_err err;
};

unsigned
bg_pool_threads_default(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        return 1;
    if ((unsigned long)n > BG_POOL_THREADS_MAX)
        return BG_POOL_THREADS_MAX;
    return (unsigned)n;
}

/* Claims units in increasing order until none is left or some worker failed. */
static void *
worker_main(void *arg)
{
    struct worker *w = arg;
    struct pool *p = w->p;
    for (;;) {
        if (atomic_load_explicit(&p->stop, memory_order_relaxed))
            break;
        size_t u = atomic_fetch_add_explicit(&p->next, 1, memory_order_relaxed);
        if (u >= p->units)
            break;
        size_t begin = u * p->grain, end = p->n - begin > p->grain ? begin + p->grain : p->n;
        w->rc = p->fn(p->ctx, begin, end, &w->bad, &w->err);
        if (w->rc != BG_OK) {
            atomic_store_explicit(&p->stop, true, memory_order_relaxed);
            break;
        }
    }
    return NULL;
}

/* Starts w[1..t) with every signal blocked (they inherit the mask); returns how many
 * threads run, the caller included. */
static unsigned
start_workers(struct worker *w, unsigned t)
{
    sigset_t all, old;
    sigfillset(&all);
    bool masked = pthread_sigmask(SIG_SETMASK, &all, &old) == 0;
    unsigned started = 1;
    for (unsigned i = 1; i < t; i++) {
        if (pthread_create(&w[i].tid, NULL, worker_main, &w[i]) != 0)
            break; /* fewer threads, same result */
        started++;
    }
    if (masked)
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    return started;
}

int
bg_pool_run(size_t n, size_t grain, unsigned nthreads, bg_pool_fn fn, void *ctx, bg_err *err)
{
    if (n == 0)
        return BG_OK;
    if (grain == 0 || fn == NULL)
        return bg_err_set(err, BG_EINVAL, "pool: no work function or a grain of 0");
    struct pool p = {.fn = fn, .ctx = ctx, .n = n, .grain = grain};
    p.units = n / grain + (n % grain != 0);
    atomic_init(&p.next, 0);
    atomic_init(&p.stop, false);
    unsigned t = nthreads == 0 ? bg_pool_threads_default() : nthreads;
    if (t > BG_POOL_THREADS_MAX)
        t = BG_POOL_THREADS_MAX;
    if (t > p.units)
        t = (unsigned)p.units;

    struct worker solo, *w = t > 1 ? calloc(t, sizeof *w) : NULL;
    if (w == NULL) { /* serial, or no memory for more: the caller does it all */
        memset(&solo, 0, sizeof solo);
        w = &solo;
        t = 1;
    }
    for (unsigned i = 0; i < t; i++) {
        w[i].p = &p;
        w[i].rc = BG_OK;
        w[i].bad = NO_INDEX;
    }
    unsigned started = t > 1 ? start_workers(w, t) : 1;
    worker_main(&w[0]);
    for (unsigned i = 1; i < started; i++)
        pthread_join(w[i].tid, NULL);

    int rc = BG_OK;
    size_t first = NO_INDEX;
    for (unsigned i = 0; i < started; i++) {
        if (w[i].rc != BG_OK && (rc == BG_OK || w[i].bad < first)) {
            rc = w[i].rc;
            first = w[i].bad;
            if (err != NULL)
                *err = w[i].err;
        }
    }
    if (w != &solo)
        free(w);
    return rc;
}
