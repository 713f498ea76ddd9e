/*
 * bench_audit.c - costs of the evidence log (gateway/audit): appends with an
 * fsync each and in batches, opening (read every record, recompute every hash,
 * rebuild the tree) at 2^16..2^20 leaves, a search of every leaf for one request
 * id (`audit find`), and per-operation costs of roots, inclusion and consistency
 * proofs and their verification at the largest size.
 * Prints a table; asserts nothing (tests do that).
 *
 * The concurrent row is what the daemon does: several handler threads each
 * appending a 2-event batch per answered request at once.
 *
 * usage: bench_audit [DIR] [MAX_LOG2]   (default: a temp dir under /tmp, 20)
 * The log is about 250 bytes a leaf on disk: 2^20 leaves take ~260 MB, removed
 * at the end.
 */
#define _GNU_SOURCE /* nftw's FTW_DEPTH/FTW_PHYS */
#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "gateway/audit/audit.h"

static double
now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void
die(const char *what, const bg_err *err)
{
    fprintf(stderr, "bench_audit: %s: %s\n", what, err->msg);
    exit(1);
}

/* A realistic event: digests, purpose, list, counts, a short reason. */
static void
event(uint64_t i, bg_audit_event *ev)
{
    memset(ev, 0, sizeof *ev);
    ev->kind = (bg_audit_kind)(1 + i % 6);
    ev->time_ms = 1760000000000LL + (int64_t)i;
    memcpy(ev->peer, i % 2 ? "440100" : "440600", 7);
    memcpy(ev->request_id, &i, sizeof i);
    ev->has_request_digest = ev->has_answer_digest = true;
    memset(ev->request_digest, (int)(i & 0xff), 32);
    memset(ev->answer_digest, (int)((i >> 8) & 0xff), 32);
    memcpy(ev->purpose, "supervision", 12);
    memcpy(ev->list, "serious-dishonesty", 19);
    ev->epoch = 42;
    ev->items_asked = 10000;
    ev->items_answered = (uint32_t)(i % 10000);
    memcpy(ev->reason, "answered", 9);
}

/* One of the concurrent appenders: rounds batches of 2. */
struct worker {
    bg_audit_log *log;
    int id, rounds;
};

static void *
concurrent_worker(void *arg)
{
    struct worker *w = arg;
    bg_audit_event evs[2];
    bg_err err = {0};
    for (int r = 0; r < w->rounds; r++) {
        event((uint64_t)(w->id * 1000 + r) * 2, &evs[0]);
        event((uint64_t)(w->id * 1000 + r) * 2 + 1, &evs[1]);
        if (bg_audit_append_batch(w->log, evs, 2, NULL, &err) != BG_OK)
            die("concurrent append", &err);
    }
    return NULL;
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void
grow_to(bg_audit_log *log, uint64_t target)
{
    static bg_audit_event evs[BG_AUDIT_BATCH_MAX];
    bg_err err = {0};
    while (bg_audit_size(log) < target) {
        uint64_t base = bg_audit_size(log);
        size_t n =
            target - base < BG_AUDIT_BATCH_MAX ? (size_t)(target - base) : BG_AUDIT_BATCH_MAX;
        for (size_t k = 0; k < n; k++)
            event(base + k, &evs[k]);
        if (bg_audit_append_batch(log, evs, n, NULL, &err) != BG_OK)
            die("append", &err);
    }
}

static uint64_t
rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Appends: one fsync per leaf, per batch, and eight threads sharing fsyncs; 0 if a
 * thread did not start. */
static int
bench_appends(bg_audit_log *log)
{
    /* 1. One fsync per append: what the daemon pays per request if it does not batch. */
    const int single = 300;
    bg_audit_event ev;
    bg_err err = {0};
    double t0 = now();
    for (int i = 0; i < single; i++) {
        event((uint64_t)i, &ev);
        if (bg_audit_append(log, &ev, NULL, &err) != BG_OK)
            die("append", &err);
    }
    double dt = (now() - t0) / single;
    printf("%-52s %11.1f us %14.0f\n", "append, fsync per leaf (300)", dt * 1e6, 1 / dt);

    /* 2. Batches of 64 and 4096: one fsync per batch. */
    static bg_audit_event evs[BG_AUDIT_BATCH_MAX];
    const size_t batches[2] = {64, BG_AUDIT_BATCH_MAX};
    for (int b = 0; b < 2; b++) {
        size_t bs = batches[b];
        int rounds = b == 0 ? 100 : 16;
        for (size_t k = 0; k < bs; k++)
            event(k, &evs[k]);
        t0 = now();
        for (int r = 0; r < rounds; r++)
            if (bg_audit_append_batch(log, evs, bs, NULL, &err) != BG_OK)
                die("append", &err);
        dt = (now() - t0) / (double)(rounds * bs);
        char label[64];
        snprintf(label, sizeof label, "append, batch of %zu, per leaf", bs);
        printf("%-52s %11.2f us %14.0f\n", label, dt * 1e6, 1 / dt);
    }

    /* 2b. Eight threads appending batches of 2 at once (the daemon's pattern). */
    enum { THREADS = 8, ROUNDS = 40 };
    pthread_t th[THREADS];
    struct worker w[THREADS];
    t0 = now();
    for (int i = 0; i < THREADS; i++) {
        w[i] = (struct worker){log, i, ROUNDS};
        if (pthread_create(&th[i], NULL, concurrent_worker, &w[i]) != 0) {
            fprintf(stderr, "bench_audit: pthread_create failed\n");
            return 0;
        }
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    dt = (now() - t0) / (double)(THREADS * ROUNDS * 2);
    printf("%-52s %11.2f us %14.0f\n", "concurrent appends, 8 threads, batch of 2, per leaf",
           dt * 1e6, 1 / dt);

    return 1;
}

/* Reopening logs of 2^16 .. 2^max_log2 leaves (grown in place). */
static void
bench_opens(bg_audit_log **logp, const char *logdir, int max_log2)
{
    bg_err err = {0};
    /* 3. Open = read + recompute every leaf hash + rebuild the tree. */
    for (int lg = 16; lg <= max_log2; lg += 2) {
        uint64_t n = UINT64_C(1) << lg;
        grow_to(*logp, n);
        bg_audit_close(*logp);
        *logp = NULL;
        double t0 = now();
        bg_audit_open_report rep;
        if (bg_audit_open(logp, logdir, "440300", 0, &rep, &err) != BG_OK)
            die("reopen", &err);
        double dt = now() - t0;
        char label[64];
        snprintf(label, sizeof label, "open + recompute, 2^%d leaves (total)", lg);
        printf("%-52s %11.1f ms %11.2f us/leaf\n", label, dt * 1e3, dt * 1e6 / (double)n);
    }
}

/* `audit find --request`: every leaf read back, decoded and compared. */
static uint64_t
bench_find(bg_audit_log *log)
{
    bg_err err = {0};
    bg_audit_filter f = {.has_request_id = true};
    memset(f.request_id, 0x5a, sizeof f.request_id);
    uint64_t n = bg_audit_size(log), matched = 0;
    double t0 = now();
    if (bg_audit_find(log, &f, NULL, NULL, &matched, &err) != BG_OK)
        die("find", &err);
    double dt = now() - t0;
    char label[64];
    snprintf(label, sizeof label, "find one request id, 2^%d leaves (total)",
             63 - __builtin_clzll(n));
    printf("%-52s %11.1f ms %11.2f us/leaf\n", label, dt * 1e3, dt * 1e6 / (double)n);
    return matched;
}

/* Roots and proofs at the log's size; returns the checksum that keeps them computed. */
static uint64_t
bench_proofs(bg_audit_log *log)
{
    /* 4. Per-operation costs at the largest size, random sizes and indexes. */
    bg_err err = {0};
    uint64_t n = bg_audit_size(log), seed = 0x9e3779b97f4a7c15ULL;
    const int ops = 200000;
    bg_audit_hash proof[BG_AUDIT_PROOF_MAX], root, root2, leaf;
    size_t plen;
    uint64_t sink = 0;

    double t0 = now();
    for (int i = 0; i < ops; i++) {
        uint64_t s = 1 + rnd(&seed) % n;
        bg_audit_root(log, s, root, &err);
        sink += root[0];
    }
    double dt = (now() - t0) / ops;
    printf("%-52s %11.2f us %14.0f\n", "root at a random size", dt * 1e6, 1 / dt);

    t0 = now();
    for (int i = 0; i < ops; i++) {
        uint64_t s = 1 + rnd(&seed) % n, m = rnd(&seed) % s;
        if (bg_audit_inclusion_proof(log, m, s, proof, &plen, &err) != BG_OK)
            die("inclusion", &err);
        sink += plen;
    }
    dt = (now() - t0) / ops;
    printf("%-52s %11.2f us %14.0f\n", "inclusion proof, generate", dt * 1e6, 1 / dt);

    /* Verification of fresh proofs; generation time measured apart and subtracted. */
    double gen = 0, ver = 0;
    for (int i = 0; i < ops / 4; i++) {
        uint64_t s = 1 + rnd(&seed) % n, m = rnd(&seed) % s;
        bg_audit_root(log, s, root, &err);
        bg_audit_leaf_hash(log, m, leaf, &err);
        double a = now();
        bg_audit_inclusion_proof(log, m, s, proof, &plen, &err);
        double b = now();
        if (bg_audit_verify_inclusion(m, s, leaf, proof, plen, root, &err) != BG_OK)
            die("verify inclusion", &err);
        double c = now();
        gen += b - a;
        ver += c - b;
    }
    dt = ver / (ops / 4);
    printf("%-52s %11.2f us %14.0f\n", "inclusion proof, verify", dt * 1e6, 1 / dt);

    t0 = now();
    for (int i = 0; i < ops; i++) {
        uint64_t s2 = 1 + rnd(&seed) % n, s1 = 1 + rnd(&seed) % s2;
        if (bg_audit_consistency_proof(log, s1, s2, proof, &plen, &err) != BG_OK)
            die("consistency", &err);
        sink += plen;
    }
    dt = (now() - t0) / ops;
    printf("%-52s %11.2f us %14.0f\n", "consistency proof, generate", dt * 1e6, 1 / dt);

    ver = 0;
    for (int i = 0; i < ops / 4; i++) {
        uint64_t s2 = 1 + rnd(&seed) % n, s1 = 1 + rnd(&seed) % s2;
        bg_audit_root(log, s1, root, &err);
        bg_audit_root(log, s2, root2, &err);
        bg_audit_consistency_proof(log, s1, s2, proof, &plen, &err);
        double b = now();
        if (bg_audit_verify_consistency(s1, s2, root, root2, proof, plen, &err) != BG_OK)
            die("verify consistency", &err);
        ver += now() - b;
    }
    dt = ver / (ops / 4);
    printf("%-52s %11.2f us %14.0f\n", "consistency proof, verify", dt * 1e6, 1 / dt);

    return sink;
}

int
main(int argc, char **argv)
{
    char dir[4096];
    int max_log2 = argc > 2 ? atoi(argv[2]) : 20;
    if (max_log2 < 16 || max_log2 > 24) {
        fprintf(stderr, "bench_audit: MAX_LOG2 must be 16..24\n");
        return 2;
    }
    if (argc > 1) {
        snprintf(dir, sizeof dir, "%s/bench_audit.XXXXXX", argv[1]);
    } else {
        snprintf(dir, sizeof dir, "/tmp/bench_audit.XXXXXX");
    }
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 2;
    }
    char logdir[4200];
    snprintf(logdir, sizeof logdir, "%s/audit", dir);
    bg_err err = {0};
    bg_audit_log *log = NULL;
    if (bg_audit_open(&log, logdir, "440300", BG_AUDIT_CREATE, NULL, &err) != BG_OK)
        die("open", &err);

    printf("%-52s %14s %14s\n", "operation", "per op", "ops/s");
    printf("%-52s %14s %14s\n", "---------", "------", "-----");

    if (!bench_appends(log))
        return 1;
    bench_opens(&log, logdir, max_log2);
    uint64_t n = bg_audit_size(log), sink = bench_find(log) + bench_proofs(log);
    printf("(log of %" PRIu64 " leaves; checksum %" PRIu64 ")\n", n, sink % 1000);
    bg_audit_close(log);
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}
