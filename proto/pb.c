/*
 * pb.c - unpacking untrusted protobuf under a budget (see pb.h).
 */
#include "proto/pb.h"

#include <stdlib.h>

typedef struct pb_budget {
    size_t used, limit;
} pb_budget;

/* Before each block: its size with this header, aligned for anything. */
typedef union {
    size_t size;
    max_align_t align;
} pb_hdr;

size_t
bg_pb_budget(size_t len)
{
    return 64 * 1024 + 16 * len;
}

static void *
pb_alloc(void *data, size_t size)
{
    pb_budget *b = data;
    size_t need = size + sizeof(pb_hdr);
    if (need < size || need > b->limit - b->used)
        return NULL;
    pb_hdr *h = malloc(need);
    if (h == NULL)
        return NULL;
    h->size = need;
    b->used += need;
    return h + 1;
}

/* data is NULL once the unpack is over: the budget lived on its stack. */
static void
pb_release(void *data, void *p)
{
    if (p == NULL)
        return;
    pb_hdr *h = (pb_hdr *)p - 1;
    if (data != NULL)
        ((pb_budget *)data)->used -= h->size;
    free(h);
}

void *
bg_pb_unpack(const ProtobufCMessageDescriptor *desc, size_t len, const uint8_t *data)
{
    pb_budget b = {0, bg_pb_budget(len)};
    ProtobufCAllocator a = {pb_alloc, pb_release, &b};
    return protobuf_c_message_unpack(desc, &a, len, data);
}

void
bg_pb_free(void *msg)
{
    static ProtobufCAllocator a = {pb_alloc, pb_release, NULL};
    if (msg != NULL)
        protobuf_c_message_free_unpacked(msg, &a);
}
