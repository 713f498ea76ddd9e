/*
 * pb.h - the one way baygate decodes protobuf it did not make itself.
 *
 * Every message from a peer, a local client or a file is unpacked by
 * bg_pb_unpack under one budget: at most bg_pb_budget(len) = 64 KiB + 16
 * bytes per wire byte live at once. protobuf-c's default allocator has no
 * limit and can take tens of times the wire size (each unknown field costs a
 * 24-byte record and a copy for 2 wire bytes), so without the budget a small
 * hostile message could take a large share of memory. Over budget, unpack
 * fails the same way as for malformed bytes: NULL. So does a message with a
 * field numbered 0 anywhere inside (invalid protobuf that protobuf-c keeps as an
 * unknown field; packed again, it would no longer parse).
 *
 * A message from bg_pb_unpack is freed with bg_pb_free, never with protobuf-c's
 * *_free_unpacked(m, NULL) (the blocks carry a header of the budget's).
 */
#ifndef BG_PB_H
#define BG_PB_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

/* The budget for unpacking len wire bytes. */
size_t bg_pb_budget(size_t len);

/* The message of type desc in data[0..len), or NULL if it does not parse within
 * bg_pb_budget(len). The caller owns it: bg_pb_free. */
void *bg_pb_unpack(const ProtobufCMessageDescriptor *desc, size_t len, const uint8_t *data);

/* Frees a message from bg_pb_unpack (NULL: nothing). */
void bg_pb_free(void *msg);

#endif
