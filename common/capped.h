/*
 * capped.h - an allocator with a byte budget, for unpacking untrusted protobuf.
 *
 * protobuf-c's unpack can take tens of times the wire size (empty
 * sub-messages, unknown fields), and a hostile input must fail cleanly
 * instead of exhausting memory: the unpack is given a ProtobufCAllocator
 * {bg_capped_alloc, bg_capped_free, &capped} whose allocations fail (and so
 * the unpack returns NULL) once the bytes live at one time would exceed the
 * budget. Nothing here depends on protobuf-c: the two functions have the
 * shape of its allocator's.
 */
#ifndef BG_CAPPED_H
#define BG_CAPPED_H

#include <stddef.h>

/* Bytes handed out and not yet freed (headers included), and the most there may be. */
typedef struct bg_capped {
    size_t used, limit;
} bg_capped;

/* The budget for unpacking len wire bytes: 64 KiB plus 16 per wire byte. */
size_t bg_capped_budget(size_t len);

/* malloc charged to the bg_capped data; NULL if it would exceed the limit. */
void *bg_capped_alloc(void *data, size_t size);

/* Frees p (NULL: nothing) from bg_capped_alloc and gives its bytes back to data. */
void bg_capped_free(void *data, void *p);

#endif
