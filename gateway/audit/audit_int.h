/*
 * audit_int.h - internals shared by the audit module's files: the record file
 * format (audit_rec.c) and the protobuf helpers (audit_wire.c).
 */
#ifndef BG_AUDIT_INT_H
#define BG_AUDIT_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "gateway/audit/audit.h"
#include "proto/audit.pb-c.h"

#define BG_AUDIT_MAGIC "BGAUDIT\x01"
#define BG_AUDIT_MAGIC_LEN 8
/* Bytes a record adds around its payload: length prefix and checksum. */
#define BG_AUDIT_REC_OVERHEAD (4 + BG_AUDIT_HASH_LEN)

/* One open record file. */
typedef struct bg_rec_file {
    int fd;
    char path[1024];
    uint64_t end; /* offset just past the last good record */
    size_t max;   /* longest payload accepted */
    bool read_only;
    bool broken; /* a failed write or sync: refuse appends until reopened */
} bg_rec_file;

/* Called for every good record found by bg_rec_open, in file order. data is
 * only valid during the call; sum is its checksum (the leaf hash). */
typedef int (*bg_rec_cb)(void *ctx, uint64_t off, const uint8_t *data, size_t len,
                         const bg_audit_hash sum, bg_err *err);

/* Opens (creating if flags has BG_AUDIT_CREATE) path, scans every record
 * through cb, repairs a torn tail unless read-only (rep is updated), refuses
 * damage followed by a valid record. lock: take an exclusive flock. */
int bg_rec_open(bg_rec_file *f, const char *path, unsigned flags, bool lock, size_t max,
                bg_rec_cb cb, void *ctx, bg_audit_open_report *rep, bg_err *err);
void bg_rec_close(bg_rec_file *f);

/* Frames a payload at out (which must hold len + BG_AUDIT_REC_OVERHEAD) and
 * gives its checksum; returns the framed length. */
size_t bg_rec_frame(uint8_t *out, const uint8_t *data, size_t len, bg_audit_hash sum);

/* Writes framed bytes at the end and syncs. On failure the file is cut back
 * to where it was (or marked broken if even that fails). */
int bg_rec_append(bg_rec_file *f, const uint8_t *framed, size_t len, bg_err *err);

/* The leaves file's fdatasync (audit_log.c). Tests swap it to simulate a
 * failing disk; nothing else should touch it. */
extern int (*bg_audit_datasync)(int fd);

/* Reads the payload of the record at off, which must end by limit, into buf
 * (cap bytes) and checks its checksum against want (if not NULL). Takes the
 * bound from the caller rather than f->end, which an appender may be moving. */
int bg_rec_read(const bg_rec_file *f, uint64_t off, uint64_t limit, uint8_t *buf, size_t cap,
                size_t *len, const bg_audit_hash want, bg_err *err);

/* --- validation and protobuf helpers (audit_wire.c) --- */

bool bg_audit_city_ok(const char *s);
/* Parses the signed TreeHead bytes into h's fields (not sig). */
int bg_audit_tree_head_parse(const uint8_t *buf, size_t len, bg_audit_head *h, bg_err *err);
/* Builds the TreeHead bytes of h's fields into h->head. */
int bg_audit_tree_head_build(bg_audit_head *h, bg_err *err);
/* Cosigns head (its head bytes) as witness at now_ms. */
int bg_audit_cosig_make(EVP_PKEY *key, const char *witness, const bg_audit_head *head,
                        int64_t now_ms, bg_audit_cosig *out, bg_err *err);

#endif
