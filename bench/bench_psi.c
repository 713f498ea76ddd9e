/*
 * bench_psi.c - the PSI protocol end to end, in-process, at list and batch sizes a city
 * really meets: the answerer builds a membership snapshot of its list, the asker fetches
 * it in the gateway's chunks and verifies it, then asks a batch in the gateway's query
 * chunks (blind -> evaluate -> finalize + match). Every result is checked against ground
 * truth; a wrong count exits 1.
 *
 * usage: bench_psi [--sizes AxL[g],...] [--threads N] [--runs N] [--hit-every K]
 *                  [--max-message BYTES] [--tsv FILE] [--write-sets DIR [--sets-only]]
 *   AxL       2^A asked USCCs against a list of 2^L (default 10x16,16x20,20x20,16x22);
 *             a trailing g runs the size against a graded list (sealed payloads opened)
 *   --threads threads for every mpc step (0 = all online CPUs, the default)
 *   --runs    best of N query runs (default: 3 for batches up to 2^16, else 1)
 *   --hit-every  every K-th asked USCC is on the list (default 4: a quarter match)
 *   --tsv     also write one tab-separated line per size (for bench/psi.sh)
 *   --write-sets  write each size's list and asked USCCs (one a line) to DIR/AxL.list
 *             and DIR/AxL.asked, so another implementation can run the same sets
 *
 * What is timed: the mpc calls only (the steps a gateway does per message), wall and
 * process CPU time. Not timed: protobuf packing, signatures, TLS and the network; their
 * bytes are counted (below), their costs are bench_federation's.
 *
 * Bytes are what the real protocol sends, computed with the real encoders: each
 * snapshot chunk (bg_snap_chunk: 64-byte chunk header + stream bytes) packed in a
 * SnapshotChunk, each batch chunk packed in a PsiQuery / PsiAnswer (proto/psi.proto),
 * each of them wrapped as the gateway does in an Envelope and a SignedEnvelope with a
 * cached-certificate fingerprint and a 72-byte (maximum DER) P-256 signature. Chunk
 * sizes follow the gateway: max_message_bytes (default 1 MiB) less 8 KiB of overhead.
 * TLS record and nng framing are not counted.
 *
 * The scalar-multiplication bound: a membership query costs 3 scalar mults per
 * distinct item (asker blinds, answerer evaluates, asker unblinds); the bound is
 * 3 * items / (raw one-core crypto_scalarmult_ristretto255 rate * threads), the raw rate
 * measured in this run right before and after each size's queries (the better of the
 * two, so a busy neighbour cannot flatter the ratios).
 */
#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "domain/uscc.h"
#include "mpc/oprf.h"
#include "mpc/psi.h"
#include "mpc/snapshot.h"
#include "proto/envelope.pb-c.h"
#include "proto/psi.pb-c.h"

#define UL 18U                         /* bytes of a USCC */
#define EB BG_OPRF_ELEMENTBYTES        /* bytes of an element */
#define MAX_MESSAGE_DEFAULT (1U << 20) /* the roster's default max_message_bytes */
#define GATEWAY_OVERHEAD 8192U         /* what the gateway keeps for framing (psi_answer.h) */
#define SIG_BYTES 72U                  /* the longest DER ECDSA P-256 signature */
#define LIST_NAME "serious-dishonesty"
#define MAX_SIZES 16

/* ---- clocks ---- */

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

/* Process CPU time: on a shared machine wall time includes waiting for a CPU, CPU time
 * does not, so the two side by side tell a slow step from a busy machine. */
static double
cpu_now(void)
{
    return clock_s(CLOCK_PROCESS_CPUTIME_ID);
}

/* A wall and CPU interval, accumulated over chunks. */
typedef struct span {
    double wall, cpu;
} span;

typedef struct stamp {
    double wall, cpu;
} stamp;

static stamp
mark(void)
{
    return (stamp){now(), cpu_now()};
}

static void
add_since(span *s, stamp t)
{
    s->wall += now() - t.wall;
    s->cpu += cpu_now() - t.cpu;
}

static void __attribute__((noreturn)) die(const char *what, const bg_err *err)
{
    fprintf(stderr, "bench_psi: %s: %s\n", what, err ? err->msg : "failed");
    exit(1);
}

static void *
xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL) {
        fprintf(stderr, "bench_psi: out of memory (%zu bytes)\n", n);
        exit(1);
    }
    return p;
}

/* ---- raw scalar multiplication: the bound everything is measured against ---- */

struct raw_job {
    size_t n;
    int failures;
};

static void *
raw_loop(void *arg)
{
    struct raw_job *j = arg;
    uint8_t s[32], p[32], q[32];
    crypto_core_ristretto255_scalar_random(s);
    crypto_core_ristretto255_random(p);
    for (size_t i = 0; i < j->n; i++)
        j->failures += crypto_scalarmult_ristretto255(q, s, p) != 0;
    return NULL;
}

/* n mults on each of t plain threads; returns mults per second over all threads, and in
 * *cpu_rate mults per second of process CPU time (nothing else of ours runs meanwhile). */
static double
raw_run(size_t n, unsigned t, double *cpu_rate)
{
    struct raw_job jobs[BG_OPRF_THREADS_MAX];
    pthread_t tid[BG_OPRF_THREADS_MAX];
    for (unsigned i = 0; i < t; i++)
        jobs[i] = (struct raw_job){n, 0};
    double t0 = now(), c0 = cpu_now();
    for (unsigned i = 1; i < t; i++)
        if (pthread_create(&tid[i], NULL, raw_loop, &jobs[i]) != 0)
            die("pthread_create", NULL);
    raw_loop(&jobs[0]);
    for (unsigned i = 1; i < t; i++)
        pthread_join(tid[i], NULL);
    double dt = now() - t0, dc = cpu_now() - c0;
    for (unsigned i = 0; i < t; i++)
        if (jobs[i].failures)
            die("crypto_scalarmult_ristretto255", NULL);
    *cpu_rate = (double)(n * t) / dc;
    return (double)(n * t) / dt;
}

/* Best of 3 runs of about 0.2 s each: the machine's capacity when it is ours. *cpu_rate
 * (may be NULL): the best rate per CPU second, which a busy neighbour barely moves. */
static double
raw_rate(unsigned t, double *cpu_rate)
{
    static size_t per_run;
    double c;
    if (per_run == 0) { /* calibrate once: ~0.2 s on one core */
        double r = raw_run(256, 1, &c);
        per_run = (size_t)(r * 0.2) + 64;
    }
    double best = 0, best_cpu = 0;
    for (int i = 0; i < 3; i++) {
        double r = raw_run(per_run, t, &c);
        best = r > best ? r : best;
        best_cpu = c > best_cpu ? c : best_cpu;
    }
    if (cpu_rate != NULL)
        *cpu_rate = best_cpu;
    return best;
}

/* ---- realistic inputs: valid USCCs, distinct per id ---- */

/* Guangdong's Greater Bay Area prefectures: the division codes of the asking cities. */
static const char *const divisions[] = {"440300", "440100", "440400", "440600", "441900",
                                        "442000", "440700", "441300", "441200"};

/*
 * The USCC of id: enterprise ("91"), a division, an organisation code of 8 base-31
 * digits of (id * odd) mod 2^39 with its GB 11714 check, then the GB 32100 check.
 * Multiplying by an odd constant is a bijection mod 2^39 and 2^39 < 31^8, so distinct
 * ids (< 2^39) give distinct codes, scattered over the code space as real ones are.
 */
static void
uscc_of(uint64_t id, uint8_t out[UL])
{
    char c[UL + 1];
    uint64_t v = (id * 0x9E3779B97F4A7C15ULL) & ((1ULL << 39) - 1);
    memcpy(c, "91", 2);
    memcpy(c + 2, divisions[id % (sizeof divisions / sizeof divisions[0])], 6);
    for (int i = 15; i >= 8; i--) {
        c[i] = bg_uscc_alphabet[v % 31];
        v /= 31;
    }
    c[16] = bg_uscc_org_check_char(c + 8);
    c[17] = bg_uscc_check_char(c);
    c[18] = '\0';
    memcpy(out, c, UL);
}

/* Asked item i: every hit_every-th is a list entry (spread over the list), the others
 * are ids past the list. List ids are 0..nl-1 (nl a power of two). */
static uint64_t
asked_id(size_t i, size_t nl, unsigned hit_every)
{
    if (i % hit_every == 0)
        return ((uint64_t)(i / hit_every) * 0x9E3779B1ULL) & (nl - 1);
    return (uint64_t)nl + i;
}

static void
payload_of(uint64_t id, bg_snap_payload *p)
{
    static const char *const grades[] = {"A", "A+", "B", "B-", "C", "D"};
    memset(p, 0, sizeof *p);
    snprintf(p->grade, sizeof p->grade, "%s", grades[id % 6]);
    snprintf(p->scale, sizeof p->scale, "%s", "GBA-credit-2024");
    p->evaluated_at = (int32_t)(19000 + id % 700);
    p->valid_until = p->evaluated_at + 730;
    p->listed_at = (int32_t)(18500 + id % 1200);
    p->expires_at = BG_SNAP_NO_DATE;
    p->serial = id + 1;
}

/* Codes of ids (n of them, packed UL bytes each), each checked by the USCC validator. */
static uint8_t *
make_codes(size_t n, uint64_t (*id_of)(size_t, size_t, unsigned), size_t nl, unsigned hit_every)
{
    uint8_t *codes = xmalloc((size_t)UL * n);
    for (size_t i = 0; i < n; i++) {
        uscc_of(id_of(i, nl, hit_every), codes + (size_t)UL * i);
        bg_err err = {0};
        if (bg_uscc_validate((const char *)codes + (size_t)UL * i, UL, &err) != BG_OK)
            die("generated USCC does not validate", &err);
    }
    return codes;
}

static uint64_t
list_id(size_t i, size_t nl, unsigned hit_every)
{
    (void)nl;
    (void)hit_every;
    return i;
}

/* ---- bytes on the wire, from the real encoders ---- */

typedef struct wire {
    uint64_t to_answerer, to_asker; /* bytes of SignedEnvelopes each way */
    size_t messages;                /* round trips */
} wire;

static uint8_t *scratch; /* payload for get_packed_size, which reads only lengths */
static size_t scratch_len;
static size_t max_message; /* what the receiver accepts: every message must fit */

/*
 * The SignedEnvelope around body_len bytes of body, as the gateway sends it: Envelope
 * (version, cities, request id, time, nonce, purpose, body type, body, reply nonce in
 * answers) signed with the certificate's fingerprint (the peer has it cached after first
 * contact) and a maximal DER signature.
 */
static size_t
envelope_bytes(uint32_t body_type, size_t body_len, bool answer)
{
    static uint8_t id16[16];
    if (body_len > scratch_len)
        die("envelope_bytes: body larger than the scratch buffer", NULL);
    Baygate__Envelope env = BAYGATE__ENVELOPE__INIT;
    env.version = 1;
    env.sender = answer ? "440300" : "440100";
    env.recipient = answer ? "440100" : "440300";
    env.request_id = (ProtobufCBinaryData){sizeof id16, id16};
    env.issued_at_ms = 1767225600000LL; /* 2026: a 6-byte varint, as today's clocks give */
    env.nonce = (ProtobufCBinaryData){sizeof id16, id16};
    env.purpose = "supervision";
    env.body_type = body_type;
    env.body = (ProtobufCBinaryData){body_len, scratch};
    if (answer)
        env.reply_to_nonce = (ProtobufCBinaryData){sizeof id16, id16};
    size_t env_len = baygate__envelope__get_packed_size(&env);
    if (env_len > scratch_len)
        die("envelope_bytes: envelope larger than the scratch buffer", NULL);
    Baygate__SignedEnvelope se = BAYGATE__SIGNED_ENVELOPE__INIT;
    se.envelope = (ProtobufCBinaryData){env_len, scratch};
    se.signer_case = BAYGATE__SIGNED_ENVELOPE__SIGNER_CERTIFICATE_SHA256;
    se.certificate_sha256 = (ProtobufCBinaryData){32, scratch};
    se.signature = (ProtobufCBinaryData){SIG_BYTES, scratch};
    size_t total = baygate__signed_envelope__get_packed_size(&se);
    if (total > max_message)
        die("a message exceeds max_message_bytes", NULL);
    return total;
}

/* ---- one size ---- */

typedef struct size_spec {
    unsigned la, ll; /* log2 asked, log2 list */
    bool graded;
} size_spec;

typedef struct cfg {
    unsigned threads; /* resolved: >= 1 */
    int runs;         /* 0: auto */
    unsigned hit_every;
    size_t max_message;
    const char *tsv, *sets_dir;
    bool sets_only;
} cfg;

/* The answerer's snapshot, kept for the next size with the same list. */
typedef struct list_cache {
    unsigned ll;
    bool graded, valid;
    uint8_t sk[BG_OPRF_SCALARBYTES];
    bg_snap *snap;
    span build;
} list_cache;

typedef struct result {
    size_spec sz;
    size_t asked, items, list_n, chunks, snap_chunks;
    bool build_reused;
    span build, fetch, blind, eval, fin;
    double raw1, rawt;  /* one-core and plain-threads raw rates around the query */
    double raw1_cpu;    /* one-core raw rate per CPU second */
    bg_snap_info info;  /* the snapshot's header */
    wire snapw, queryw; /* snapshot fetch, query */
    size_t matches, truth, unopened;
} result;

static void
build_list(const cfg *c, list_cache *lc, unsigned ll, bool graded)
{
    if (lc->valid && lc->ll == ll && lc->graded == graded)
        return;
    bg_snap_free(lc->snap);
    lc->snap = NULL;
    size_t nl = (size_t)1 << ll;
    uint8_t *codes = make_codes(nl, list_id, nl, c->hit_every);
    bg_snap_entry *e = xmalloc(sizeof *e * nl);
    bg_snap_payload *pl = graded ? xmalloc(sizeof *pl * nl) : NULL;
    for (size_t i = 0; i < nl; i++) {
        if (graded)
            payload_of(i, &pl[i]);
        e[i] = (bg_snap_entry){codes + (size_t)UL * i, UL, graded ? &pl[i] : NULL};
    }
    bg_oprf_keygen(lc->sk, NULL);
    bg_err err = {0};
    lc->build = (span){0, 0};
    stamp t = mark();
    if (bg_snap_build(&lc->snap, lc->sk, LIST_NAME, 1, 1, graded, e, nl, c->threads, &err) != BG_OK)
        die("bg_snap_build", &err);
    add_since(&lc->build, t);
    lc->ll = ll;
    lc->graded = graded;
    lc->valid = true;
    free(codes);
    free(e);
    free(pl);
}

/*
 * The asker fetches the snapshot as the gateway does: one SnapshotRequest per chunk,
 * one SnapshotChunk (chunk 0 with the city's signature) per answer, fed to a reader
 * that verifies the digest at the end. Memory: one chunk in flight plus the reader's
 * copy of the body.
 */
static bg_snap *
fetch_snapshot(const cfg *c, const bg_snap *snap, result *r)
{
    size_t max_chunk = c->max_message - GATEWAY_OVERHEAD, count = 0, len = 0;
    bg_err err = {0};
    bg_snap_info info;
    bg_snap_get_info(snap, &info);
    if (bg_snap_chunk_count(snap, max_chunk, &count, &err) != BG_OK)
        die("bg_snap_chunk_count", &err);
    uint8_t *chunk = xmalloc(max_chunk), *body = xmalloc(c->max_message);
    bg_snap_reader *rd = NULL;
    if (bg_snap_reader_new(&rd, BG_SNAP_MAX_ENTRIES, &err) != BG_OK)
        die("bg_snap_reader_new", &err);
    r->snapw = (wire){0, 0, 0};
    for (size_t i = 0; i < count; i++) {
        Baygate__SnapshotRequest rq = BAYGATE__SNAPSHOT_REQUEST__INIT;
        rq.list = LIST_NAME;
        rq.want_epoch = i > 0 ? info.epoch : 0;
        rq.chunk_index = (uint32_t)i;
        r->snapw.to_answerer +=
            envelope_bytes(BAYGATE__PSI_BODY__PSI_BODY_SNAPSHOT_REQUEST,
                           baygate__snapshot_request__get_packed_size(&rq), false);

        stamp t = mark();
        if (bg_snap_chunk(snap, max_chunk, i, chunk, max_chunk, &len, &err) != BG_OK)
            die("bg_snap_chunk", &err);
        add_since(&r->fetch, t);

        Baygate__SnapshotChunk sc = BAYGATE__SNAPSHOT_CHUNK__INIT;
        sc.list = LIST_NAME;
        sc.generation = info.generation;
        sc.epoch = info.epoch;
        sc.digest = (ProtobufCBinaryData){BG_SNAP_DIGESTBYTES, info.digest};
        if (i == 0)
            sc.digest_signature = (ProtobufCBinaryData){SIG_BYTES, scratch};
        sc.chunk_index = (uint32_t)i;
        sc.chunk_count = (uint32_t)count;
        sc.data = (ProtobufCBinaryData){len, chunk};
        size_t blen = baygate__snapshot_chunk__get_packed_size(&sc);
        baygate__snapshot_chunk__pack(&sc, body);
        r->snapw.to_asker += envelope_bytes(BAYGATE__PSI_BODY__PSI_BODY_SNAPSHOT_CHUNK, blen, true);
        r->snapw.messages++;

        t = mark();
        if (bg_snap_reader_feed(rd, chunk, len, &err) != BG_OK)
            die("bg_snap_reader_feed", &err);
        add_since(&r->fetch, t);
    }
    bg_snap *out = NULL;
    stamp t = mark();
    if (bg_snap_reader_finish(rd, info.digest, &out, c->threads, &err) != BG_OK)
        die("bg_snap_reader_finish", &err);
    add_since(&r->fetch, t);
    bg_snap_reader_free(rd);
    free(chunk);
    free(body);
    r->snap_chunks = count;
    return out;
}

/* The SignedEnvelope bytes of query chunk k (cnt blinded elements); body holds the packed
 * PsiQuery. */
static uint64_t
query_bytes(int mode, const uint8_t batch_id[16], size_t k, size_t nchunks, size_t nd, size_t cnt,
            uint8_t *blinded, uint8_t *body)
{
    Baygate__PsiQuery pq = BAYGATE__PSI_QUERY__INIT;
    pq.list = LIST_NAME;
    pq.generation = 1;
    pq.epoch = 1;
    pq.mode = (Baygate__PsiMode)mode;
    pq.batch_id = (ProtobufCBinaryData){16, (uint8_t *)batch_id};
    pq.chunk_index = (uint32_t)k;
    pq.chunk_count = (uint32_t)nchunks;
    pq.batch_items = (uint32_t)nd;
    pq.elements = (ProtobufCBinaryData){EB * cnt, blinded};
    size_t blen = baygate__psi_query__get_packed_size(&pq);
    baygate__psi_query__pack(&pq, body);
    return envelope_bytes(BAYGATE__PSI_BODY__PSI_BODY_QUERY, blen, false);
}

/* The same for its answer chunk. */
static uint64_t
answer_bytes(int mode, const uint8_t batch_id[16], size_t k, size_t nchunks, size_t cnt,
             uint8_t *evaluated, uint8_t *body)
{
    Baygate__PsiAnswer pa = BAYGATE__PSI_ANSWER__INIT;
    pa.list = LIST_NAME;
    pa.generation = 1;
    pa.epoch = 1;
    pa.mode = (Baygate__PsiMode)mode;
    pa.batch_id = (ProtobufCBinaryData){16, (uint8_t *)batch_id};
    pa.chunk_index = (uint32_t)k;
    pa.chunk_count = (uint32_t)nchunks;
    pa.elements = (ProtobufCBinaryData){EB * cnt, evaluated};
    size_t blen = baygate__psi_answer__get_packed_size(&pa);
    baygate__psi_answer__pack(&pa, body);
    return envelope_bytes(BAYGATE__PSI_BODY__PSI_BODY_ANSWER, blen, true);
}

/* Every asked input's result against the truth (exits 1 on a wrong one); counts matches. */
static void
check_results(const cfg *c, const bg_psi_query *q, const uint8_t **ptrs, size_t na, size_t nl,
              int mode, result *r)
{
    bg_err err = {0};
    /* Ground truth: asked input i is on the list iff its id is below nl. */
    r->matches = r->truth = 0;
    for (size_t i = 0; i < na; i++) {
        int m = -1;
        bg_snap_record rec;
        if (bg_psi_result(q, i, &m, mode == BG_PSI_GRADED ? &rec : NULL, &err) != BG_OK)
            die("bg_psi_result", &err);
        bool truth = asked_id(i, nl, c->hit_every) < nl;
        if (m != (int)truth) {
            fprintf(stderr, "bench_psi: input %zu (%.18s): matched %d, truth %d\n", i,
                    (const char *)ptrs[i], m, truth);
            exit(1);
        }
        if (m && mode == BG_PSI_GRADED &&
            (rec.input_len != UL || memcmp(rec.input, ptrs[i], UL) != 0)) {
            fprintf(stderr, "bench_psi: input %zu: opened payload of another input\n", i);
            exit(1);
        }
        r->matches += (size_t)m;
        r->truth += truth;
    }
}

/*
 * One query of the asked codes against the asker's copy of the snapshot, in the
 * gateway's chunks: prepare (asker), evaluate (answerer), finish (asker) per chunk.
 * Checks every input's result against the truth; fills the phase times and bytes.
 */
static void
run_query(const cfg *c, const list_cache *lc, const bg_snap *mine, const uint8_t *codes, size_t na,
          result *r)
{
    int mode = lc->graded ? BG_PSI_GRADED : BG_PSI_MEMBERSHIP;
    size_t nl = (size_t)1 << lc->ll;
    const uint8_t **ptrs = xmalloc(sizeof *ptrs * na);
    size_t *lens = xmalloc(sizeof *lens * na);
    for (size_t i = 0; i < na; i++) {
        ptrs[i] = codes + (size_t)UL * i;
        lens[i] = UL;
    }
    size_t per = bg_psi_chunk_items(c->max_message - GATEWAY_OVERHEAD);
    uint8_t *blinded = xmalloc(EB * per), *evaluated = xmalloc(EB * per);
    uint8_t *body = xmalloc(c->max_message), batch_id[16];
    randombytes_buf(batch_id, sizeof batch_id);
    bg_err err = {0};
    bg_psi_query *q = NULL;

    r->blind = r->eval = r->fin = (span){0, 0};
    stamp t = mark();
    if (bg_psi_query_new(&q, mode, ptrs, lens, na, &err) != BG_OK)
        die("bg_psi_query_new", &err);
    add_since(&r->blind, t);
    size_t nd = bg_psi_query_items(q), nchunks = (nd + per - 1) / per;
    r->items = nd;
    r->chunks = nchunks;
    r->queryw = (wire){0, 0, 0};
    for (size_t k = 0; k < nchunks; k++) {
        size_t first = k * per, cnt = nd - first < per ? nd - first : per;
        t = mark();
        if (bg_psi_prepare(q, first, cnt, blinded, c->threads, &err) != BG_OK)
            die("bg_psi_prepare", &err);
        add_since(&r->blind, t);

        r->queryw.to_answerer += query_bytes(mode, batch_id, k, nchunks, nd, cnt, blinded, body);

        t = mark();
        if (bg_psi_evaluate(evaluated, lc->sk, blinded, EB * cnt, per, c->threads, &err) != BG_OK)
            die("bg_psi_evaluate", &err);
        add_since(&r->eval, t);

        r->queryw.to_asker += answer_bytes(mode, batch_id, k, nchunks, cnt, evaluated, body);
        r->queryw.messages++;

        t = mark();
        if (bg_psi_finish(q, mine, first, cnt, evaluated, EB * cnt, c->threads, &err) != BG_OK)
            die("bg_psi_finish", &err);
        add_since(&r->fin, t);
    }
    if (!bg_psi_query_done(q))
        die("query not done after every chunk", NULL);

    check_results(c, q, ptrs, na, nl, mode, r);
    r->unopened = bg_psi_unopened(q);
    bg_psi_query_free(q);
    free(ptrs);
    free(lens);
    free(blinded);
    free(evaluated);
    free(body);
}

static void
write_set(const char *dir, const size_spec *sz, const char *what, const uint8_t *codes, size_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%ux%u%s.%s", dir, sz->la, sz->ll, sz->graded ? "g" : "", what);
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        fprintf(stderr, "bench_psi: %s: %s\n", path, strerror(errno));
        exit(1);
    }
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%.18s\n", (const char *)codes + (size_t)UL * i);
    if (fclose(f) != 0) {
        fprintf(stderr, "bench_psi: %s: write failed\n", path);
        exit(1);
    }
}

static void
run_size(const cfg *c, const size_spec *sz, list_cache *lc, result *r)
{
    memset(r, 0, sizeof *r);
    r->sz = *sz;
    size_t na = (size_t)1 << sz->la, nl = (size_t)1 << sz->ll;
    r->asked = na;
    r->list_n = nl;
    uint8_t *asked = make_codes(na, asked_id, nl, c->hit_every);
    if (c->sets_dir != NULL) {
        uint8_t *lcodes = make_codes(nl, list_id, nl, c->hit_every);
        write_set(c->sets_dir, sz, "list", lcodes, nl);
        write_set(c->sets_dir, sz, "asked", asked, na);
        free(lcodes);
        if (c->sets_only) {
            free(asked);
            return;
        }
    }
    fprintf(stderr, "bench_psi: 2^%u x 2^%u%s: building the list snapshot...\n", sz->la, sz->ll,
            sz->graded ? " graded" : "");
    r->build_reused = lc->valid && lc->ll == sz->ll && lc->graded == sz->graded;
    build_list(c, lc, sz->ll, sz->graded);
    r->build = lc->build;
    bg_snap_get_info(lc->snap, &r->info);
    bg_snap *mine = fetch_snapshot(c, lc->snap, r);

    int runs = c->runs > 0 ? c->runs : (sz->la <= 16 ? 3 : 1);
    fprintf(stderr, "bench_psi: 2^%u x 2^%u%s: %d query run(s)...\n", sz->la, sz->ll,
            sz->graded ? " graded" : "", runs);
    double cpu_before, cpu_after, raw_before = raw_rate(1, &cpu_before);
    r->rawt = raw_rate(c->threads, NULL);
    result best = {0};
    for (int k = 0; k < runs; k++) {
        result cur = *r;
        run_query(c, lc, mine, asked, na, &cur);
        double e2e = cur.blind.wall + cur.eval.wall + cur.fin.wall;
        if (k == 0 || e2e < best.blind.wall + best.eval.wall + best.fin.wall)
            best = cur;
    }
    double raw_after = raw_rate(1, &cpu_after);
    *r = best;
    r->raw1 = raw_before > raw_after ? raw_before : raw_after;
    r->raw1_cpu = cpu_before > cpu_after ? cpu_before : cpu_after;
    bg_snap_free(mine);
    free(asked);
}

/* ---- printing ---- */

static double
mib(uint64_t b)
{
    return (double)b / 1048576.0;
}

static void
label(char *out, size_t cap, const size_spec *sz)
{
    snprintf(out, cap, "2^%u x 2^%u%s", sz->la, sz->ll, sz->graded ? " graded" : "");
}

/* The snapshot table: build and fetch. */
static void
table_build(const cfg *c, const result *rs, size_t n)
{
    unsigned t = c->threads;
    char l[48];

    printf("\nSnapshot: the answerer builds it (1 hash-to-group + 1 scalar mult + tag per entry),\n"
           "the asker fetches it in %zu-byte chunks and verifies it (digest over the entries).\n\n",
           c->max_message - GATEWAY_OVERHEAD);
    printf("| %-20s | %9s | %9s | %10s | %12s | %11s | %7s | %12s | %10s |\n", "asked x list",
           "entries", "build s", "entries/s", "build/bound", "stream MiB", "chunks", "fetch MiB",
           "fetch+ver s");
    printf("|%s|%s|%s|%s|%s|%s|%s|%s|%s|\n", "----------------------",
           "-----------:", "----------:", "-----------:", "-------------:", "------------:",
           "--------:", "-------------:", "------------:");
    for (size_t i = 0; i < n; i++) {
        const result *r = &rs[i];
        label(l, sizeof l, &r->sz);
        /* bound: one scalar mult per entry at raw x threads */
        double bound = (double)r->list_n / (r->raw1 * t);
        printf("| %-20s | %9zu | %8.2f%s | %10.0f | %12.3f | %11.2f | %7zu | %12.2f | %10.2f |\n",
               l, r->info.count, r->build.wall, r->build_reused ? "*" : " ",
               (double)r->list_n / r->build.wall, r->build.wall / bound, mib(r->info.wire_bytes),
               r->snap_chunks, mib(r->snapw.to_asker), r->fetch.wall);
    }
    printf("\n* the same snapshot as the row above it (built once, timed once).\n"
           "build/bound: build time over list / (raw x %u), i.e. 1 scalar mult per entry.\n",
           t);
}

/* The query table: phase times in the gateway's chunks. */
static void
table_query(const cfg *c, const result *rs, size_t n)
{
    char l[48];

    printf("\nQuery, in the gateway's chunks of %zu items (wall seconds; CPU us per item in "
           "brackets):\n\n",
           bg_psi_chunk_items(c->max_message - GATEWAY_OVERHEAD));
    printf("| %-20s | %8s | %6s | %17s | %17s | %17s | %8s | %15s |\n", "asked x list", "items",
           "chunks", "blind s (cpu us)", "evaluate s (cpu)", "fin+match s (cpu)", "e2e s",
           "matches / truth");
    printf("|%s|%s|%s|%s|%s|%s|%s|%s|\n", "----------------------",
           "---------:", "-------:", "------------------:", "------------------:",
           "------------------:", "---------:", "----------------:");
    for (size_t i = 0; i < n; i++) {
        const result *r = &rs[i];
        double it = (double)r->items;
        label(l, sizeof l, &r->sz);
        printf("| %-20s | %8zu | %6zu | %8.3f (%6.1f) | %8.3f (%6.1f) | %8.3f (%6.1f) | %8.3f | "
               "%7zu/%-7zu |\n",
               l, r->items, r->chunks, r->blind.wall, r->blind.cpu / it * 1e6, r->eval.wall,
               r->eval.cpu / it * 1e6, r->fin.wall, r->fin.cpu / it * 1e6,
               r->blind.wall + r->eval.wall + r->fin.wall, r->matches, r->truth);
    }
}

/* The bytes table. */
static void
table_bytes(const result *rs, size_t n)
{
    char l[48];

    printf("\nBytes on the wire (SignedEnvelope bytes; snapshot fetch: one request and one\n"
           "chunk message per chunk):\n\n");
    printf("| %-20s | %13s | %13s | %9s | %15s | %15s |\n", "asked x list", "asker->ans",
           "ans->asker", "B/item", "asker->ans +snap", "ans->asker +snap");
    printf("|%s|%s|%s|%s|%s|%s|\n", "----------------------", "--------------:", "--------------:",
           "----------:", "-----------------:", "-----------------:");
    for (size_t i = 0; i < n; i++) {
        const result *r = &rs[i];
        label(l, sizeof l, &r->sz);
        printf("| %-20s | %13llu | %13llu | %4.1f/%4.1f | %16llu | %16llu |\n", l,
               (unsigned long long)r->queryw.to_answerer, (unsigned long long)r->queryw.to_asker,
               (double)r->queryw.to_answerer / (double)r->items,
               (double)r->queryw.to_asker / (double)r->items,
               (unsigned long long)(r->queryw.to_answerer + r->snapw.to_answerer),
               (unsigned long long)(r->queryw.to_asker + r->snapw.to_asker));
    }
}

/* The scalar-multiplication-bound table. */
static void
table_bound(const cfg *c, const result *rs, size_t n)
{
    unsigned t = c->threads;
    char l[48];

    printf("\nAgainst the scalar-mult bound (%u threads; raw = one-core\n"
           "crypto_scalarmult_ristretto255, measured around each size's queries; plain = %u bare\n"
           "pthreads): eval = 1 mult per item, bound = 3 mults per item / (raw x %u).\n"
           "(cpu) columns: the same ratios in CPU seconds (raw per CPU second, the steps' process\n"
           "CPU time): the work done, whatever else shares the machine:\n\n",
           t, t, t);
    printf("| %-20s | %8s | %9s | %10s | %11s | %10s | %8s | %8s | %9s | %11s | %11s |\n",
           "asked x list", "raw/s", "plain/s", "eval mul/s", "eval/raw*T", "eval/plain", "bound s",
           "e2e s", "e2e/bound", "eval (cpu)", "e2e (cpu)");
    printf("|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|\n", "----------------------",
           "---------:", "----------:", "-----------:", "------------:", "-----------:",
           "---------:", "---------:", "----------:", "------------:", "------------:");
    for (size_t i = 0; i < n; i++) {
        const result *r = &rs[i];
        label(l, sizeof l, &r->sz);
        double it = (double)r->items, ev = it / r->eval.wall;
        double bound = 3.0 * it / (r->raw1 * t), e2e = r->blind.wall + r->eval.wall + r->fin.wall;
        double cpu = r->blind.cpu + r->eval.cpu + r->fin.cpu;
        printf(
            "| %-20s | %8.0f | %9.0f | %10.0f | %11.3f | %10.3f | %8.3f | %8.3f | %9.3f | %11.3f "
            "| %11.3f |\n",
            l, r->raw1, r->rawt, ev, ev / (r->raw1 * t), ev / r->rawt, bound, e2e, e2e / bound,
            it / r->eval.cpu / r->raw1_cpu, cpu / (3.0 * it / r->raw1_cpu));
    }
}

static void
print_tables(const cfg *c, const result *rs, size_t n)
{
    table_build(c, rs, n);
    table_query(c, rs, n);
    table_bytes(rs, n);
    table_bound(c, rs, n);
}

static void
write_tsv(const cfg *c, const result *rs, size_t n)
{
    FILE *f = fopen(c->tsv, "w");
    if (f == NULL) {
        fprintf(stderr, "bench_psi: %s: %s\n", c->tsv, strerror(errno));
        exit(1);
    }
    fprintf(f, "size\tthreads\tasked\tlist\tbuild_s\tfetch_s\tblind_s\teval_s\tfin_s\te2e_s\t"
               "cpu_s\tmatches\ttruth\tq_to_answerer\tq_to_asker\tsnap_to_answerer\tsnap_to_asker"
               "\traw1\trawt\traw1_cpu\n");
    for (size_t i = 0; i < n; i++) {
        const result *r = &rs[i];
        fprintf(f,
                "%ux%u%s\t%u\t%zu\t%zu\t%.4f\t%.4f\t%.4f\t%.4f\t%.4f\t%.4f\t%.4f\t%zu\t%zu\t%llu\t"
                "%llu\t%llu\t%llu\t%.0f\t%.0f\t%.0f\n",
                r->sz.la, r->sz.ll, r->sz.graded ? "g" : "", c->threads, r->asked, r->list_n,
                r->build.wall, r->fetch.wall, r->blind.wall, r->eval.wall, r->fin.wall,
                r->blind.wall + r->eval.wall + r->fin.wall, r->blind.cpu + r->eval.cpu + r->fin.cpu,
                r->matches, r->truth, (unsigned long long)r->queryw.to_answerer,
                (unsigned long long)r->queryw.to_asker, (unsigned long long)r->snapw.to_answerer,
                (unsigned long long)r->snapw.to_asker, r->raw1, r->rawt, r->raw1_cpu);
    }
    if (fclose(f) != 0) {
        fprintf(stderr, "bench_psi: %s: write failed\n", c->tsv);
        exit(1);
    }
}

/* ---- options ---- */

static void __attribute__((noreturn)) usage(void)
{
    fprintf(stderr,
            "usage: bench_psi [--sizes AxL[g],...] [--threads N] [--runs N] [--hit-every K]\n"
            "                 [--max-message BYTES] [--tsv FILE] [--write-sets DIR "
            "[--sets-only]]\n"
            "  AxL: 2^A asked against a list of 2^L, 1 <= A, L <= 24; g: graded list\n"
            "  default sizes: 10x16,16x20,20x20,16x22\n");
    exit(2);
}

static unsigned long
parse_ul(const char *s, unsigned long lo, unsigned long hi)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
        usage();
    return v;
}

static size_t
parse_sizes(const char *arg, size_spec *out)
{
    size_t n = 0;
    const char *p = arg;
    while (*p != '\0') {
        char *end;
        unsigned long a = strtoul(p, &end, 10);
        if (end == p || *end != 'x' || n == MAX_SIZES)
            usage();
        p = end + 1;
        unsigned long l = strtoul(p, &end, 10);
        if (end == p || a < 1 || a > 24 || l < 1 || l > 24)
            usage();
        out[n] = (size_spec){(unsigned)a, (unsigned)l, *end == 'g'};
        p = end + (*end == 'g');
        if (*p == ',')
            p++;
        else if (*p != '\0')
            usage();
        n++;
    }
    return n;
}

int
main(int argc, char **argv)
{
    size_spec sizes[MAX_SIZES] = {
        {10, 16, false}, {16, 20, false}, {20, 20, false}, {16, 22, false}};
    size_t nsizes = 4;
    cfg c = {.threads = 0, .runs = 0, .hit_every = 4, .max_message = MAX_MESSAGE_DEFAULT};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool more = i + 1 < argc;
        if (strcmp(a, "--sizes") == 0 && more)
            nsizes = parse_sizes(argv[++i], sizes);
        else if (strcmp(a, "--threads") == 0 && more)
            c.threads = (unsigned)parse_ul(argv[++i], 0, BG_OPRF_THREADS_MAX);
        else if (strcmp(a, "--runs") == 0 && more)
            c.runs = (int)parse_ul(argv[++i], 1, 100);
        else if (strcmp(a, "--hit-every") == 0 && more)
            c.hit_every = (unsigned)parse_ul(argv[++i], 1, 1U << 20);
        else if (strcmp(a, "--max-message") == 0 && more)
            c.max_message = parse_ul(argv[++i], 2 * GATEWAY_OVERHEAD, 64UL << 20);
        else if (strcmp(a, "--tsv") == 0 && more)
            c.tsv = argv[++i];
        else if (strcmp(a, "--write-sets") == 0 && more)
            c.sets_dir = argv[++i];
        else if (strcmp(a, "--sets-only") == 0)
            c.sets_only = true;
        else
            usage();
    }
    if (nsizes == 0 || (c.sets_only && c.sets_dir == NULL))
        usage();
    if (bg_oprf_init(NULL) != BG_OK)
        die("libsodium", NULL);
    if (c.threads == 0)
        c.threads = bg_oprf_threads_default();
    max_message = c.max_message;
    scratch_len = c.max_message + 65536;
    scratch = calloc(1, scratch_len);
    if (scratch == NULL)
        die("out of memory", NULL);

    if (!c.sets_only)
        printf("bench_psi: libsodium %s, %u online CPUs, %u threads, a %u%% hit rate "
               "(every %u-th asked USCC is listed), max_message_bytes %zu\n",
               sodium_version_string(), bg_oprf_threads_default(), c.threads, 100U / c.hit_every,
               c.hit_every, c.max_message);
    result rs[MAX_SIZES];
    list_cache lc = {0};
    int status = 0;
    for (size_t i = 0; i < nsizes; i++) {
        run_size(&c, &sizes[i], &lc, &rs[i]);
        if (!c.sets_only && rs[i].matches != rs[i].truth)
            status = 1;
    }
    bg_snap_free(lc.snap);
    sodium_memzero(lc.sk, sizeof lc.sk);
    if (c.sets_only)
        return 0;
    print_tables(&c, rs, nsizes);
    if (c.tsv != NULL)
        write_tsv(&c, rs, nsizes);
    for (size_t i = 0; i < nsizes; i++)
        printf("%s 2^%u x 2^%u%s: %zu matches, ground truth %zu\n",
               rs[i].matches == rs[i].truth ? "ok:  " : "FAIL:", rs[i].sz.la, rs[i].sz.ll,
               rs[i].sz.graded ? " graded" : "", rs[i].matches, rs[i].truth);
    free(scratch);
    return status;
}
