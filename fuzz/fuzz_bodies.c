/*
 * fuzz_bodies.c - every protobuf body a gateway takes from a peer or a local
 * client, decoded as the daemon decodes it: bg_pb_unpack (proto/pb.h), under
 * its budget. The first byte picks the message type (ping, snapshot
 * request/chunk, PSI query/answer, status list request/answer, witness head
 * request/answer and cosign submit/ack, the local API request and answer).
 * Invariants: what unpacks packs again, and the packed form unpacks too.
 * (Unknown fields are kept by the unpack: the daemon's own decoders must
 * refuse them; fuzz/pending/bodies shows why.)
 */
#include <stdbool.h>
#include <stdlib.h>

#include "fuzz/fuzz.h"
#include "proto/api.pb-c.h"
#include "proto/envelope.pb-c.h"
#include "proto/pb.h"
#include "proto/psi.pb-c.h"
#include "proto/witness.pb-c.h"

static const ProtobufCMessageDescriptor *const types[] = {
    &baygate__ping__descriptor,
    &baygate__pong__descriptor,
    &baygate__error_answer__descriptor,
    &baygate__snapshot_request__descriptor,
    &baygate__snapshot_chunk__descriptor,
    &baygate__psi_query__descriptor,
    &baygate__psi_answer__descriptor,
    &baygate__status_list_request__descriptor,
    &baygate__status_list_answer__descriptor,
    &baygate__head_request__descriptor,
    &baygate__head_answer__descriptor,
    &baygate__cosign_submit__descriptor,
    &baygate__cosign_ack__descriptor,
    &baygate__local_request__descriptor,
    &baygate__local_answer__descriptor,
};
#define NTYPES (sizeof types / sizeof types[0])

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const ProtobufCMessageDescriptor *d = types[data[0] % NTYPES];
    ProtobufCMessage *m = bg_pb_unpack(d, size - 1, data + 1);
    if (m == NULL)
        return 0;
    bg_fuzz_assert(m->descriptor == d);
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(n ? n : 1);
    bg_fuzz_assert(buf != NULL);
    bg_fuzz_assert(protobuf_c_message_pack(m, buf) == n);
    ProtobufCMessage *again = bg_pb_unpack(d, n, buf);
    /* Known: an unknown field kept from the input (even field number 0, from a
     * non-canonical tag) may not survive the repack (fuzz/pending/bodies). */
    bg_fuzz_assert(again != NULL);
    bg_pb_free(again);
    free(buf);
    bg_pb_free(m);
    return 0;
}
