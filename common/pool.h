/*
 * pool.h - the one parallel for: fn over [0, n) in units of grain items, on up to
 * nthreads threads (the caller is one of them; 0 = bg_pool_threads_default(), capped at
 * BG_POOL_THREADS_MAX and at the number of units; 1 = serial, no thread created).
 *
 * Units are claimed in increasing order, so every unit below a failing one was finished
 * or failed itself: the error returned (code and message) is the one at the lowest
 * failing index, as a serial run reports it, whatever the thread count. After a failure
 * no further unit starts. Workers run with every signal blocked, so signals keep going
 * to the application's own threads. A thread that fails to start (or no memory for its
 * bookkeeping) means fewer threads, never a different result.
 */
#ifndef BG_POOL_H
#define BG_POOL_H

#include <stddef.h>

#include "common/err.h"

#define BG_POOL_THREADS_MAX 256U

/* Processes items [begin, end); on failure sets *bad to the lowest failing index in it. */
typedef int (*bg_pool_fn)(void *ctx, size_t begin, size_t end, size_t *bad, bg_err *err);

/* Online CPUs (sysconf), at least 1 and at most BG_POOL_THREADS_MAX. */
unsigned bg_pool_threads_default(void);

/* Runs fn over [0, n) (grain >= 1) and joins every worker before it returns. */
int bg_pool_run(size_t n, size_t grain, unsigned nthreads, bg_pool_fn fn, void *ctx, bg_err *err);

#endif
