/*
 * bench_oprf.c - costs of the RFC 9497 OPRF (mpc/oprf): the raw libsodium scalar
 * multiplication it is bounded by, the hashes, Finalize, and the threaded batches.
 * Prints a table; asserts nothing (tests do that). Each row is the best of RUNS runs,
 * so a neighbour's burst of work does not count against us.
 *
 * usage: bench_oprf [ITEMS]   (default 32768 items per batch row)
 *
 * "vs raw" = rate / (raw one-core scalar-mult rate * threads): the share of the
 * machine's scalar-multiplication capacity a row achieves. "cpu us/op" is the process's
 * CPU time per item: on a busy machine wall time per item grows with waiting for a
 * CPU, CPU time does not, so compare the two before blaming the code.
 */
#include <pthread.h>
#include <stdbool.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mpc/oprf.h"

#define RUNS 5

static double
clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double
now(void)
{
    return clock_s(CLOCK_MONOTONIC);
}

/* CPU time of the whole process: per item, it shows the work done whatever else runs
 * on the machine (wall time includes waiting for a CPU a neighbour holds). */
static double
cpu_now(void)
{
    return clock_s(CLOCK_PROCESS_CPUTIME_ID);
}

/* The CPU time of the run that last set a best wall time. */
static double best_cpu;

static double raw_rate; /* one-core crypto_scalarmult_ristretto255 per second */

/* ratio: the row does one scalar multiplication per item, so "vs raw" means something. */
static void
row(const char *what, unsigned threads, size_t count, double seconds, bool ratio)
{
    double rate = (double)count / seconds;
    printf("| %-38s | %7u | %8zu | %8.3f | %10.0f | %8.2f | %9.2f |", what, threads, count, seconds,
           rate, seconds / (double)count * 1e6, best_cpu / (double)count * 1e6);
    if (ratio && raw_rate > 0)
        printf(" %6.3f |\n", rate / (raw_rate * threads));
    else
        printf("        |\n");
}

/* ---- raw scalar multiplication, 1..T threads of plain loops ---- */

struct raw_job {
    size_t n;
    uint8_t s[32], p[32];
    int failures;
};

static void *
raw_loop(void *arg)
{
    struct raw_job *j = arg;
    uint8_t q[32];
    for (size_t i = 0; i < j->n; i++)
        j->failures += crypto_scalarmult_ristretto255(q, j->s, j->p) != 0;
    return NULL;
}

static double
raw_threads(size_t n, unsigned t, double *cpu)
{
    struct raw_job jobs[BG_OPRF_THREADS_MAX];
    pthread_t tid[BG_OPRF_THREADS_MAX];
    for (unsigned i = 0; i < t; i++) {
        jobs[i].n = n / t;
        jobs[i].failures = 0;
        crypto_core_ristretto255_scalar_random(jobs[i].s);
        crypto_core_ristretto255_random(jobs[i].p);
    }
    double t0 = now(), c0 = cpu_now();
    for (unsigned i = 1; i < t; i++)
        if (pthread_create(&tid[i], NULL, raw_loop, &jobs[i]) != 0)
            abort();
    raw_loop(&jobs[0]);
    for (unsigned i = 1; i < t; i++)
        pthread_join(tid[i], NULL);
    double dt = now() - t0;
    *cpu = cpu_now() - c0;
    for (unsigned i = 0; i < t; i++)
        if (jobs[i].failures)
            abort();
    return dt;
}

/* ---- batch rows ---- */

enum op { HASH, BLIND, EVAL, UNBLIND };

struct data {
    size_t n;
    uint8_t sk[32], *elements, *blinds, *out, *out2, *codes;
    const uint8_t **inputs;
    size_t *lens;
};

static double
run_op(struct data *d, enum op op, unsigned threads, double *cpu)
{
    bg_err err = {0};
    int rc = BG_OK;
    double t0 = now(), c0 = cpu_now();
    switch (op) {
    case HASH:
        rc = bg_oprf_hash_to_group_batch(d->out, d->inputs, d->lens, d->n, threads, &err);
        break;
    case BLIND:
        rc = bg_oprf_blind_batch(d->out2, d->out, d->inputs, d->lens, d->n, threads, &err);
        break;
    case EVAL:
        rc = bg_oprf_evaluate_batch(d->out, d->sk, d->elements, d->n, threads, &err);
        break;
    case UNBLIND:
        rc = bg_oprf_unblind_batch(d->out, d->blinds, d->elements, d->n, threads, &err);
        break;
    }
    double dt = now() - t0;
    *cpu = cpu_now() - c0;
    if (rc != BG_OK) {
        fprintf(stderr, "bench_oprf: %s\n", err.msg);
        exit(1);
    }
    return dt;
}

static double
best_of(struct data *d, enum op op, unsigned threads)
{
    double best = 1e30;
    for (int r = 0; r < RUNS; r++) {
        double cpu, dt = run_op(d, op, threads, &cpu);
        if (dt < best) {
            best = dt;
            best_cpu = cpu;
        }
    }
    return best;
}

/* The n inputs, random elements and blinds, and a key; 0 if out of memory. */
static int
data_init(struct data *d, size_t n)
{
    *d = (struct data){.n = n};
    d->elements = malloc(32 * n);
    d->blinds = malloc(32 * n);
    d->out = malloc(32 * n);
    d->out2 = malloc(32 * n);
    d->codes = malloc(18 * n);
    d->inputs = malloc(n * sizeof *d->inputs);
    d->lens = malloc(n * sizeof *d->lens);
    if (!d->elements || !d->blinds || !d->out || !d->out2 || !d->codes || !d->inputs || !d->lens)
        return 0;
    bg_oprf_keygen(d->sk, NULL);
    for (size_t i = 0; i < n; i++) {
        /* USCC-shaped inputs: 18 bytes. */
        for (size_t k = 0; k < 18; k++)
            d->codes[18 * i + k] = (uint8_t) "0123456789ABCDEFGH"[randombytes_uniform(18)];
        d->inputs[i] = d->codes + 18 * i;
        d->lens[i] = 18;
        crypto_core_ristretto255_random(d->elements + 32 * i);
        crypto_core_ristretto255_scalar_random(d->blinds + 32 * i);
    }
    return 1;
}

static void
data_free(struct data *d)
{
    free(d->elements);
    free(d->blinds);
    free(d->out);
    free(d->out2);
    free(d->codes);
    free(d->inputs);
    free(d->lens);
}

/* The raw and evaluate_batch rows; sets *eval_rate and *raw_cores_rate for the summary. */
static void
rows_eval(struct data *dp, unsigned cores, double *eval_rate, double *raw_cores_rate)
{
    size_t n = dp->n;
    /* Raw capacity and evaluate_batch, interleaved run by run, so a change of clock or of
     * neighbours during the run hits both sides of each ratio alike. */
    struct best {
        double wall, cpu;
    } raw1 = {1e30, 0}, rawc = {1e30, 0}, ev1 = {1e30, 0}, evc = {1e30, 0};
    for (int r = 0; r < RUNS; r++) {
        double cpu, dt;
        struct best *keep[4] = {&raw1, &ev1, &rawc, &evc};
        for (int k = 0; k < (cores > 1 ? 4 : 2); k++) {
            if (k == 0)
                dt = raw_threads(n, 1, &cpu);
            else if (k == 1)
                dt = run_op(dp, EVAL, 1, &cpu);
            else if (k == 2)
                dt = raw_threads(n * cores, cores, &cpu);
            else
                dt = run_op(dp, EVAL, cores, &cpu);
            if (dt < keep[k]->wall)
                *keep[k] = (struct best){dt, cpu};
        }
    }
    raw_rate = (double)n / raw1.wall;
    best_cpu = raw1.cpu;
    row("raw crypto_scalarmult_ristretto255", 1, n, raw1.wall, true);
    if (cores > 1) {
        best_cpu = rawc.cpu;
        row("raw scalarmult, plain pthreads", cores, n * cores, rawc.wall, true);
    }
    best_cpu = ev1.cpu;
    row("evaluate_batch (check + k*P)", 1, n, ev1.wall, true);
    if (cores > 1) {
        best_cpu = evc.cpu;
        row("evaluate_batch (check + k*P)", cores, n, evc.wall, true);
    }
    *raw_cores_rate = cores > 1 ? (double)(n * cores) / rawc.wall : raw_rate;
    *eval_rate = (double)n / (cores > 1 ? evc.wall : ev1.wall);
}

/* One-item rows; 0 if an operation failed. */
static int
rows_singles(struct data *dp)
{
    size_t n = dp->n;
    /* Single-item costs. */
    uint8_t p[32], blind[32], blinded[32], ev[32], out[64];
    size_t nsmall = n < 20000 ? n : 20000;
    double best;
    struct {
        const char *name;
        int which;
    } singles[] = {
        {"is_valid_point (element check)", 0},
        {"hash_to_group (xmd + from_hash)", 1},
        {"output (Finalize hash only)", 2},
        {"finalize (invert + mult + hash)", 3},
        {"scalar_invert", 4},
    };
    bg_oprf_blind(blind, blinded, dp->codes, 18, NULL);
    bg_oprf_evaluate(ev, dp->sk, blinded, NULL);
    for (size_t s = 0; s < sizeof singles / sizeof singles[0]; s++) {
        best = 1e30;
        for (int r = 0; r < RUNS; r++) {
            int bad = 0;
            double t0 = now(), c0 = cpu_now();
            for (size_t i = 0; i < nsmall; i++) {
                switch (singles[s].which) {
                case 0:
                    bad |= crypto_core_ristretto255_is_valid_point(dp->elements + 32 * i) != 1;
                    break;
                case 1:
                    bad |= bg_oprf_hash_to_group(p, dp->inputs[i], 18, NULL);
                    break;
                case 2:
                    bad |= bg_oprf_output(out, dp->inputs[i], 18, ev, NULL);
                    break;
                case 3:
                    bad |= bg_oprf_finalize(out, dp->codes, 18, blind, ev, NULL);
                    break;
                default:
                    bad |= bg_oprf_scalar_invert(p, dp->blinds + 32 * i, NULL);
                    break;
                }
            }
            double dt = now() - t0, cpu = cpu_now() - c0;
            if (bad)
                return 0;
            if (dt < best) {
                best = dt;
                best_cpu = cpu;
            }
        }
        row(singles[s].name, 1, nsmall, best, false);
    }
    return 1;
}

static void
rows_batches(struct data *dp, unsigned cores)
{
    size_t n = dp->n;
    /* Batches. */
    struct {
        const char *name;
        enum op op;
    } ops[] = {
        {"blind_batch (random r, r*H(x))", BLIND},
        {"unblind_batch (batched r^-1, r^-1*E)", UNBLIND},
        {"hash_to_group_batch", HASH},
    };
    for (size_t o = 0; o < sizeof ops / sizeof ops[0]; o++) {
        for (unsigned t = 1; t <= cores; t = t < cores && t * 2 > cores ? cores : t * 2) {
            row(ops[o].name, t, n, best_of(dp, ops[o].op, t), false);
            if (t == cores)
                break;
        }
    }
}

int
main(int argc, char **argv)
{
    size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 32768;
    if (n < 64 || bg_oprf_init(NULL) != BG_OK) {
        fprintf(stderr, "usage: bench_oprf [ITEMS >= 64]\n");
        return 2;
    }
    unsigned cores = bg_oprf_threads_default();
    struct data d;
    if (!data_init(&d, n))
        return 1;
    printf("bench_oprf: libsodium %s, %u online CPUs, %zu items per batch row, best of %d\n\n",
           sodium_version_string(), cores, n, RUNS);
    printf("| %-38s | %7s | %8s | %8s | %10s | %8s | %9s | %6s |\n", "operation", "threads",
           "items", "seconds", "ops/s", "us/op", "cpu us/op", "vs raw");
    printf("|%s|%s|%s|%s|%s|%s|%s|%s|\n", "----------------------------------------", "---------",
           "----------", "----------", "------------", "----------", "-----------", "--------");

    double eval_cores_rate, raw_cores_rate;
    rows_eval(&d, cores, &eval_cores_rate, &raw_cores_rate);
    if (!rows_singles(&d))
        return 1;
    rows_batches(&d, cores);
    printf("\nevaluate_batch on %u threads: %.3f of raw x %u, %.3f of plain pthreads doing bare\n"
           "scalar multiplications on the same machine (the rest is the element check).\n",
           cores, eval_cores_rate / (raw_rate * cores), cores, eval_cores_rate / raw_cores_rate);
    data_free(&d);
    return 0;
}
