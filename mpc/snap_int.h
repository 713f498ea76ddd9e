/*
 * snap_int.h - internals shared by the snapshot module's files, each of one job behind
 * snapshot.h:
 *   snapshot.c    the object: accessors, lookups and match, the entry-order check, epochs
 *   snap_build.c  building a snapshot from a list (OPRF, tags, seals, sort, dedup)
 *   snap_seal.c   tags and sealed payloads: sealing, opening, opening keys
 *   snap_merkle.c the Merkle root and digest (common/merkle.h), inclusion proofs
 *   snap_delta.c  deltas between epochs: make and apply
 *   snap_wire.c   the writer: stream header, streams, chunks
 *   snap_reader.c the reader of hostile chunks (it trusts nothing it is fed)
 * Calls go one way: build uses seal, merkle and the object; delta uses merkle and the
 * object; the reader uses merkle, delta and the object; the object uses seal (tags);
 * merkle uses the writer's header encoder; seal and the writer call no other file.
 */
#ifndef BG_SNAP_INT_H
#define BG_SNAP_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/err.h"
#include "mpc/oprf.h"
#include "mpc/snapshot.h"

#define TB BG_SNAP_TAGBYTES
#define SEB BG_SNAP_SEALEDBYTES
#define EB BG_OPRF_ELEMENTBYTES
#define DB BG_SNAP_DIGESTBYTES

#define SNAP_VERSION 1U
#define SNAP_FLAG_GRADED 1U

/* Stream header: fixed part 9 bytes + list + 20 (snapshot) [+ 80 (delta)]. */
#define HDR_FIXED 9U
#define HDR_TAIL 20U
#define HDR_DELTA 80U
#define HDR_MAX (HDR_FIXED + BG_SNAP_LIST_MAX + HDR_TAIL + HDR_DELTA)

struct bg_snap {
    char list[BG_SNAP_LIST_MAX + 1];
    size_t list_len;
    uint64_t generation, epoch;
    int graded;
    size_t n;
    uint8_t *tags;   /* n * TB */
    uint8_t *sealed; /* n * SEB, graded only */
    void *block;     /* when set, tags and sealed live in it (parsed snapshots) */
    uint8_t root[DB], digest[DB];
};

struct bg_snap_delta {
    char list[BG_SNAP_LIST_MAX + 1];
    size_t list_len;
    uint64_t generation, from_epoch, to_epoch;
    int graded;
    size_t to_count;
    uint8_t from_digest[DB], to_digest[DB];
    size_t nrem, nadd;
    uint8_t *removed;    /* nrem * TB */
    uint8_t *add_tags;   /* nadd * TB */
    uint8_t *add_sealed; /* nadd * SEB, graded only */
    void *block;
};

/* The stream header of a snapshot (kind 1) or delta (kind 2), as fields. */
struct bg_snap_hdr {
    int kind, graded;
    char list[BG_SNAP_LIST_MAX + 1];
    size_t list_len;
    uint64_t generation, epoch; /* delta: from_epoch */
    uint32_t count;             /* delta: the target's */
    uint64_t to_epoch;          /* delta */
    uint8_t from_digest[DB], to_digest[DB];
    uint32_t nrem, nadd;
};

static inline void
put_u32(uint8_t *p, uint32_t v)
{
    for (unsigned i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline void
put_u64(uint8_t *p, uint64_t v)
{
    for (unsigned i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint32_t
get_u32(const uint8_t *p)
{
    uint32_t v = 0;
    for (unsigned i = 0; i < 4; i++)
        v |= (uint32_t)p[i] << (8 * i);
    return v;
}

static inline uint64_t
get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* Tags compare as big-endian numbers, which is the memcmp order. */
static inline uint64_t
tag_key(const uint8_t *t)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < TB; i++)
        v = (v << 8) | t[i];
    return v;
}

static inline size_t
entry_bytes(int graded)
{
    return TB + (graded ? SEB : 0);
}

/* 1..64 bytes, each 0x21..0x7e. */
static inline bool
list_ok(const char *list, size_t len)
{
    if (len == 0 || len > BG_SNAP_LIST_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)list[i] < 0x21 || (unsigned char)list[i] > 0x7e)
            return false;
    return true;
}

static inline int
ready(bg_err *err)
{
    return bg_oprf_init(err);
}

/* --- the object (snapshot.c) --- */

/* Checks entries of a parsed or merged array: sorted by (tag, sealed), runs bounded;
 * BG_EPROTO naming "what i" otherwise. */
int bg_snap_entries_check(const uint8_t *tags, const uint8_t *sealed, size_t n, const char *what,
                          bg_err *err);
/* The end of the run of entries i.. sharing entry i's tag. */
size_t bg_snap_run_end(const uint8_t *tags, size_t n, size_t i);

/* --- sealing (snap_seal.c) --- */

/* sealed = the sealed payload of (input, payload) under out = Finalize(input, N), with
 * tag and the list's (list, generation) as associated data (snapshot.h, "Sealing").
 * Strings in payload are checked by the caller. */
void bg_snap_seal_entry(uint8_t sealed[BG_SNAP_SEALEDBYTES], const uint8_t out[BG_OPRF_OUTPUTBYTES],
                        const char *list, size_t list_len, uint64_t generation,
                        const uint8_t tag[BG_SNAP_TAGBYTES], const uint8_t *input, size_t input_len,
                        const bg_snap_payload *payload);

/* --- Merkle root and digest (snap_merkle.c) --- */

/* s->root and s->digest from s's entries and header fields. */
int bg_snap_rehash(bg_snap *s, unsigned nthreads, bg_err *err);

/* --- the writer (snap_wire.c) --- */

/* The canonical stream header of x into h (HDR_MAX bytes); returns its length. */
size_t bg_snap_hdr_encode(uint8_t *h, const struct bg_snap_hdr *x);
/* The header fields of snapshot s. */
void bg_snap_hdr_of(const bg_snap *s, struct bg_snap_hdr *x);

#endif
