/*
 * snapshot.h - list snapshots for private set intersection: what an answering city
 * publishes per (list, epoch) so that an asker can match its own OPRF outputs offline.
 *
 * Entry y of list L (input: a USCC, 1..BG_SNAP_INPUT_MAX bytes), with the list's OPRF key
 * k of key generation g:
 *   N_y    = k * HashToGroup(y)                     (mpc/oprf.h, RFC 9497 ristretto255)
 *   tag_y  = BLAKE2b-256("baygate/psi/tag/v1" || N_y)[0..8)        T = 8 bytes
 *   graded lists also carry sealed_y (BG_SNAP_SEALEDBYTES), see "Sealing" below.
 * The tag depends on N_y alone, so an asker that only holds N (count-only answers are
 * shuffled) can still match it.
 *
 * Sizes: an entry is 8 bytes (membership list) or 8 + 139 = 147 bytes (graded list); a
 * snapshot on the wire is a header of 29 + len(list) <= 93 bytes plus count * entry bytes
 * (4M entries: 32 MiB membership, 588 MiB graded), plus 64 bytes per chunk. A delta is
 * 109 + len(list) + 8 * removed + entry bytes * added.
 * False positives: an asked item that is not on the list matches iff its tag equals one
 * of the n tags: probability <= n / 2^64 per asked item, 2^-42 for n = 4M = 2^22, at most
 * 2^-40 up to BG_SNAP_MAX_ENTRIES = 2^24. Graded answers also need the sealed payload to
 * open, so a false positive there is reported as no match.
 * Duplicates: an input given twice with the same payload is kept once; with different
 * payloads it is refused. Distinct inputs whose tags collide (probability n^2/2^65) are all
 * kept; at most BG_SNAP_MAX_RUN entries may share a tag (more is refused: the chance of it
 * happening honestly is below 2^-100).
 * Order: entries sorted by (tag, sealed payload) bytes, so lookups take O(log n) and the
 * encoding is canonical: equal entry sets give equal bytes and equal digests.
 *
 * Sealing (graded lists): out_y = Finalize(y, N_y) (64 bytes, binds y and k);
 *   enc = BLAKE2b-256(key = out_y, "baygate/psi/seal/v1/enc")
 *   siv = BLAKE2b-256(key = out_y, "baygate/psi/seal/v1/siv")
 *   ad  = "baygate/psi/seal/v1" || len(list) || list || generation (u64 LE) || tag
 *   nonce = BLAKE2b-192(key = siv, ad || plaintext)      (synthetic IV, stored)
 *   sealed = nonce (24) || XChaCha20-Poly1305(enc, nonce, ad, plaintext (99)) (115)
 * The nonce is a PRF of the plaintext under a key only y's holders can derive: a record
 * sealed again unchanged gives the same bytes (deltas stay small), a changed record a
 * different nonce, so no (key, nonce) pair ever encrypts two plaintexts, in any epoch.
 * Plaintext v1 (99 bytes): version 1 | input_len | input[32] | grade_len | grade[8] |
 * scale_len | scale[31] | evaluated_at, valid_until, listed_at, expires_at (i32 LE days
 * since 1970-01-01, BG_SNAP_NO_DATE = none) | serial (u64 LE); unused bytes zero.
 *
 * Digest: root = Merkle tree (RFC 6962 shape) over entries, leaf = BLAKE2b-256(0x00 ||
 * tag || sealed), node = BLAKE2b-256(0x01 || left || right), empty = BLAKE2b-256("");
 * digest = BLAKE2b-256("baygate/psi/snapshot/v1" || 0x00 || header || root), header being
 * the canonical stream header below (list, generation, epoch, count, T, flags). The city
 * signs the digest; the root later gives per-entry inclusion proofs.
 *
 * Epochs: every import publishes a new epoch (strictly increasing per list, across
 * generations too); rotating the key starts a new generation. A delta from epoch e to
 * e' > e of one generation lists the removed tags and the added entries (a tag whose run
 * of entries changed in any way is removed and its new run added); applying it to e
 * gives e' byte for byte, checked against e''s digest. Across generations: refused.
 *
 * Wire: a snapshot or a delta is a byte stream (header || body) cut into chunks of at
 * most max_chunk_bytes (>= BG_SNAP_CHUNK_MIN), each with a 64-byte chunk header:
 *   "BGPC" | version 1 | kind | 0 0 | index u32 | count u32 | stream_len u64 |
 *   offset u64 | digest[32] (the snapshot's; for a delta, the target snapshot's)
 * Stream header: "BGPS" | version 1 | kind (1 snapshot, 2 delta) | T = 8 | flags (bit 0
 * graded) | list_len | list (1..64 bytes 0x21..0x7e) | generation u64 | epoch u64 (delta:
 * from_epoch) | count u32 (delta: the target's) | delta only: to_epoch u64, from_digest[32],
 * to_digest[32], removed u32, added u32. All integers little-endian.
 * Snapshot body: tags[count][8] || sealed[count][139] (graded only).
 * Delta body: removed tags[removed][8] || added tags[added][8] || added sealed[added][139].
 * The reader accepts chunks in order, bounds every length before it allocates (count <=
 * the caller's max_entries), checks counts against sizes, sortedness and run lengths,
 * and recomputes the digest. Every refusal is BG_EPROTO (BG_ELIMIT: over max_entries).
 *
 * Memory: build peaks at about n * (E + 24) bytes (E = entry bytes: 16 per entry for the
 * sort keys, 16 more while qsort merges), plus 4 KiB of stack per thread; N_y are never
 * all held (64 per thread at a time). A reader holds the stream body once (its size is
 * bounded by max_entries before it is allocated); a delta apply holds old + new.
 * Threads: build, digest and match use nthreads (0 = all online CPUs, oprf.h rules);
 * results never depend on the thread count. A built or parsed snapshot is immutable and
 * may be shared by threads. Secrets (the key, N_y, out_y, seal keys) are wiped after use.
 */
#ifndef BG_SNAPSHOT_H
#define BG_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "mpc/oprf.h"

#define BG_SNAP_TAGBYTES 8U
#define BG_SNAP_NONCEBYTES 24U
#define BG_SNAP_PLAINBYTES 99U
#define BG_SNAP_MACBYTES 16U
#define BG_SNAP_SEALEDBYTES (BG_SNAP_NONCEBYTES + BG_SNAP_PLAINBYTES + BG_SNAP_MACBYTES) /* 139 */
#define BG_SNAP_DIGESTBYTES 32U
#define BG_SNAP_INPUT_MAX 32U
#define BG_SNAP_GRADE_MAX 8U
#define BG_SNAP_SCALE_MAX 31U
#define BG_SNAP_LIST_MAX 64U
#define BG_SNAP_MAX_ENTRIES (1U << 24)
#define BG_SNAP_MAX_RUN 4U
#define BG_SNAP_CHUNK_HEADERBYTES 64U
#define BG_SNAP_CHUNK_MIN 512U
#define BG_SNAP_NO_DATE INT32_MIN
#define BG_SNAP_NONE ((size_t)-1)

/* What a graded entry carries besides its input. Strings are NUL-terminated. */
typedef struct bg_snap_payload {
    char grade[BG_SNAP_GRADE_MAX + 1]; /* "" if none */
    char scale[BG_SNAP_SCALE_MAX + 1]; /* the grade scale's name, "" if none */
    int32_t evaluated_at, valid_until; /* days since 1970-01-01 or BG_SNAP_NO_DATE */
    int32_t listed_at, expires_at;
    uint64_t serial; /* the store's record serial */
} bg_snap_payload;

/* One list entry for bg_snap_build; payload is required for graded lists, else ignored. */
typedef struct bg_snap_entry {
    const uint8_t *input; /* the USCC bytes */
    size_t input_len;     /* 1..BG_SNAP_INPUT_MAX */
    const bg_snap_payload *payload;
} bg_snap_entry;

/* An opened sealed payload. */
typedef struct bg_snap_record {
    uint8_t input[BG_SNAP_INPUT_MAX];
    size_t input_len;
    bg_snap_payload payload;
} bg_snap_record;

enum { BG_SNAP_KIND_SNAPSHOT = 1, BG_SNAP_KIND_DELTA = 2 };

/* The header of a snapshot or delta (for a snapshot, from_* and removed/added are 0). */
typedef struct bg_snap_info {
    int kind;
    char list[BG_SNAP_LIST_MAX + 1];
    uint64_t generation;
    uint64_t epoch;                      /* snapshot: its epoch; delta: the target epoch */
    uint64_t from_epoch;                 /* delta only */
    size_t count;                        /* entries (delta: of the target) */
    int graded;                          /* 1 if entries carry sealed payloads */
    size_t entry_bytes;                  /* 8 or 147 */
    size_t wire_bytes;                   /* stream length (header + body), without chunk headers */
    size_t removed, added;               /* delta only */
    uint8_t digest[BG_SNAP_DIGESTBYTES]; /* snapshot: its digest; delta: the target's */
    uint8_t from_digest[BG_SNAP_DIGESTBYTES]; /* delta only */
    uint8_t root[BG_SNAP_DIGESTBYTES];        /* snapshot only: the Merkle root */
} bg_snap_info;

typedef struct bg_snap bg_snap;
typedef struct bg_snap_delta bg_snap_delta;
typedef struct bg_snap_reader bg_snap_reader;

/* Bytes per entry: 8, or 147 for a graded list. */
size_t bg_snap_entry_bytes(int graded);

/*
 * Builds the snapshot of list (1..64 printable ASCII bytes) at (generation, epoch) from n
 * entries (n <= BG_SNAP_MAX_ENTRIES) under the list's key sk. graded: seal every entry's
 * payload. BG_EINVAL names the first bad entry (length, payload string, same input with
 * two payloads); BG_ELIMIT for too many entries or a run longer than BG_SNAP_MAX_RUN.
 */
int bg_snap_build(bg_snap **out, const uint8_t sk[BG_OPRF_SCALARBYTES], const char *list,
                  uint64_t generation, uint64_t epoch, int graded, const bg_snap_entry *entries,
                  size_t n, unsigned nthreads, bg_err *err);

void bg_snap_free(bg_snap *s);

/* The header, sizes, digest and root. */
void bg_snap_get_info(const bg_snap *s, bg_snap_info *info);
size_t bg_snap_count(const bg_snap *s);
const uint8_t *bg_snap_tag_at(const bg_snap *s, size_t i);    /* entry i's tag */
const uint8_t *bg_snap_sealed_at(const bg_snap *s, size_t i); /* NULL unless graded */

/* tag = the snapshot tag of an evaluated (unblinded) element N; N is a secret. */
void bg_snap_tag(uint8_t tag[BG_SNAP_TAGBYTES], const uint8_t element[BG_OPRF_ELEMENTBYTES]);

/* Index of the first entry with this tag, or BG_SNAP_NONE; *run = entries sharing it. */
size_t bg_snap_find(const bg_snap *s, const uint8_t tag[BG_SNAP_TAGBYTES], size_t *run);

/*
 * For n unblinded elements N_i (packed, 32 bytes each): first[i] = bg_snap_find of their
 * tag (BG_SNAP_NONE if absent), in parallel. The elements are not checked here (they come
 * from bg_oprf_unblind*, which checks).
 */
int bg_snap_match(const bg_snap *s, const uint8_t *elements, size_t n, size_t *first,
                  unsigned nthreads, bg_err *err);

/*
 * Opens the sealed payload of the entries from index first (a bg_snap_find result) for
 * the asker's input and its unblinded element N = k*H(input): BG_OK with rec filled if
 * one of the run opens and holds this input, else BG_ENOTFOUND (a false positive, a wrong
 * input, a tampered entry) with rec zeroed. BG_EINVAL for a membership snapshot.
 */
int bg_snap_open(const bg_snap *s, size_t first, const uint8_t *input, size_t input_len,
                 const uint8_t element[BG_OPRF_ELEMENTBYTES], bg_snap_record *rec, bg_err *err);

/* ---- epochs ---- */

enum {
    BG_SNAP_CURRENT = 0,  /* the asked (generation, epoch) is the current one */
    BG_SNAP_STALE,        /* an older epoch: the asker must refresh (delta or full) */
    BG_SNAP_AHEAD,        /* a newer epoch than the answerer has: never published */
    BG_SNAP_WRONG_KEY_GEN /* the current epoch number with another generation */
};

/* Classifies an asked (generation, epoch) against the current one of the list. */
int bg_snap_freshness(uint64_t cur_generation, uint64_t cur_epoch, uint64_t generation,
                      uint64_t epoch);

/* BG_OK iff the asked (generation, epoch) is current, else BG_EPROTO saying why. */
int bg_snap_require_current(uint64_t cur_generation, uint64_t cur_epoch, uint64_t generation,
                            uint64_t epoch, bg_err *err);

/* ---- deltas ---- */

/*
 * The delta from old to new: same list, generation and kind (graded or not), and
 * old epoch < new epoch; else BG_EINVAL (across generations: a full snapshot is needed).
 */
int bg_snap_delta_make(bg_snap_delta **out, const bg_snap *old_snap, const bg_snap *new_snap,
                       bg_err *err);

/*
 * new = old + delta: refuses (BG_EPROTO) a delta for another list, generation, epoch or
 * digest, a removed tag absent from old, an added tag still present, and a result whose
 * digest is not the delta's target digest. O(|old| + |delta|).
 */
int bg_snap_delta_apply(bg_snap **out, const bg_snap *old_snap, const bg_snap_delta *d,
                        unsigned nthreads, bg_err *err);

void bg_snap_delta_get_info(const bg_snap_delta *d, bg_snap_info *info);
void bg_snap_delta_free(bg_snap_delta *d);

/* ---- wire ---- */

/* Number of chunks of at most max_chunk_bytes (>= BG_SNAP_CHUNK_MIN) for s or d. */
int bg_snap_chunk_count(const bg_snap *s, size_t max_chunk_bytes, size_t *count, bg_err *err);
int bg_snap_delta_chunk_count(const bg_snap_delta *d, size_t max_chunk_bytes, size_t *count,
                              bg_err *err);

/* Writes chunk index (< count) into out (cap >= its length, at most max_chunk_bytes). */
int bg_snap_chunk(const bg_snap *s, size_t max_chunk_bytes, size_t index, uint8_t *out, size_t cap,
                  size_t *out_len, bg_err *err);
int bg_snap_delta_chunk(const bg_snap_delta *d, size_t max_chunk_bytes, size_t index, uint8_t *out,
                        size_t cap, size_t *out_len, bg_err *err);

/* A reader for one stream (snapshot or delta) of at most max_entries entries. */
int bg_snap_reader_new(bg_snap_reader **out, size_t max_entries, bg_err *err);

/* Takes the next chunk. After the first, bg_snap_reader_info describes the stream. */
int bg_snap_reader_feed(bg_snap_reader *r, const uint8_t *chunk, size_t len, bg_err *err);

/* BG_OK once the first chunk is in; info as the header states it (not yet verified). */
int bg_snap_reader_info(const bg_snap_reader *r, bg_snap_info *info, bg_err *err);

/* 1 when every chunk has been fed. */
int bg_snap_reader_complete(const bg_snap_reader *r);

/*
 * Verifies and returns the snapshot: all chunks present, sorted entries, runs bounded,
 * recomputed digest equal to the chunks' and to expected_digest (the signed one; NULL to
 * skip). The reader is spent either way (free it).
 */
int bg_snap_reader_finish(bg_snap_reader *r, const uint8_t *expected_digest, bg_snap **out,
                          unsigned nthreads, bg_err *err);

/* The same for a delta: removed tags strictly increasing, added entries sorted. */
int bg_snap_reader_finish_delta(bg_snap_reader *r, bg_snap_delta **out, bg_err *err);

void bg_snap_reader_free(bg_snap_reader *r);

/* ---- per-entry evidence: inclusion proofs and opening keys ----
 *
 * What these are for: a city's evaluation, once an asker has opened it, can be shown to a
 * third party as an attestation (gateway/attest/) WITHOUT per-entry signatures. The city
 * signed the snapshot digest; the digest commits to the Merkle root; the root commits to
 * every entry (tag || sealed). So a third party holding
 *   - the header fields (list, generation, epoch, count, graded) and the signed digest,
 *   - one entry's tag and sealed bytes, its index and its audit path,
 *   - that entry's opening key,
 * recomputes leaf -> root -> digest, checks the signature over the digest, opens the one
 * sealed payload and compares it with the claimed statement. It learns that entry's
 * plaintext and nothing else: the opening key is enc (see "Sealing"), a one-way function of
 * out_y for that one input; it neither opens any other entry, nor yields out_y, siv, N_y or
 * the list's OPRF key, nor lets anyone test a guessed USCC against other tags. The audit
 * path is 32-byte node hashes over other entries' ciphertexts, which say nothing either.
 *
 * Audit path (RFC 6962 2.1.1 PATH(m, D[n]) / RFC 9162 2.1.3): the sibling hashes from the
 * leaf up to the root, innermost first; at most BG_SNAP_PATH_MAX of them (count <=
 * BG_SNAP_MAX_ENTRIES = 2^24). Leaf and node hashes are those of "Digest" above.
 */
#define BG_SNAP_OPENKEYBYTES 32U
#define BG_SNAP_PATH_MAX 24U

/* leaf = BLAKE2b-256(0x00 || tag || sealed); sealed NULL for a membership entry. */
void bg_snap_leaf_hash(uint8_t leaf[BG_SNAP_DIGESTBYTES], const uint8_t tag[BG_SNAP_TAGBYTES],
                       const uint8_t *sealed);

/*
 * The snapshot digest from its header fields and Merkle root, exactly as a built or parsed
 * snapshot computes it (list 1..64 printable bytes, count <= BG_SNAP_MAX_ENTRIES, else
 * BG_EINVAL). For verifiers that hold no snapshot.
 */
int bg_snap_digest_compute(const char *list, uint64_t generation, uint64_t epoch, size_t count,
                           int graded, const uint8_t root[BG_SNAP_DIGESTBYTES],
                           uint8_t digest[BG_SNAP_DIGESTBYTES], bg_err *err);

/*
 * path_out[0..*path_len) (32 bytes each, room for BG_SNAP_PATH_MAX) = the audit path of
 * entry index (< count, else BG_EINVAL). Costs one pass over the snapshot (hashing every
 * entry once, on nthreads); for many proofs of one snapshot use a prover.
 */
int bg_snap_inclusion_proof(const bg_snap *s, size_t index, uint8_t *path_out, size_t *path_len,
                            unsigned nthreads, bg_err *err);

/*
 * A prover keeps the roots of the snapshot's 1024-leaf blocks (count / 32 bytes), so each
 * further proof costs at most 1024 leaf hashes plus O(log n) nodes. It refers to s, which
 * must outlive it; both are read-only afterwards (proofs may run from several threads).
 */
typedef struct bg_snap_prover bg_snap_prover;
int bg_snap_prover_new(bg_snap_prover **out, const bg_snap *s, unsigned nthreads, bg_err *err);
int bg_snap_prover_path(const bg_snap_prover *p, size_t index, uint8_t *path_out, size_t *path_len,
                        bg_err *err);
void bg_snap_prover_free(bg_snap_prover *p);

/*
 * Standalone: BG_OK iff the audit path proves that the entry (tag, sealed; sealed NULL for
 * a membership entry) sits at index of a tree of count leaves with this root (RFC 9162
 * 2.1.3.2). BG_ECRYPTO "inclusion proof does not verify: ..." otherwise (a wrong hash, or
 * a path of the wrong length for (index, count)); BG_EINVAL for index >= count, count >
 * BG_SNAP_MAX_ENTRIES or path_len > BG_SNAP_PATH_MAX.
 */
int bg_snap_inclusion_verify(const uint8_t tag[BG_SNAP_TAGBYTES], const uint8_t *sealed,
                             size_t index, size_t count, const uint8_t *path, size_t path_len,
                             const uint8_t root[BG_SNAP_DIGESTBYTES], bg_err *err);

/*
 * bg_snap_open, and also: *index = the entry of the run that opened, key = its opening key
 * (enc of "Sealing": it opens that entry only and is meant to be disclosed in an
 * attestation). On any failure key is zeroed and *index is BG_SNAP_NONE.
 */
int bg_snap_open_key(const bg_snap *s, size_t first, const uint8_t *input, size_t input_len,
                     const uint8_t element[BG_OPRF_ELEMENTBYTES], bg_snap_record *rec,
                     size_t *index, uint8_t key[BG_SNAP_OPENKEYBYTES], bg_err *err);

/*
 * Standalone: opens one sealed payload with its opening key and the ad fields (list,
 * generation, tag), as a third party does. BG_OK with rec filled; BG_ECRYPTO if it does not
 * authenticate under key and these ad fields; BG_EPROTO if it opens to a malformed
 * plaintext (never made by bg_snap_build). rec is zeroed on failure.
 */
int bg_snap_open_sealed(const uint8_t key[BG_SNAP_OPENKEYBYTES], const char *list,
                        uint64_t generation, const uint8_t tag[BG_SNAP_TAGBYTES],
                        const uint8_t sealed[BG_SNAP_SEALEDBYTES], bg_snap_record *rec,
                        bg_err *err);

#endif
