/*
 * pb.c - unpacking untrusted protobuf under a budget (see pb.h).
 */
#include "proto/pb.h"

#include <stdbool.h>
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

/* protobuf-c keeps a field numbered 0 as an unknown field, though no encoder may
 * write one: such a message does not survive being packed again. Refused at any
 * depth (depth is bounded by protobuf-c's own recursion limit). */
static bool
pb_has_field_zero(const ProtobufCMessage *m)
{
    for (unsigned i = 0; i < m->n_unknown_fields; i++)
        if (m->unknown_fields[i].tag == 0)
            return true;
    const ProtobufCMessageDescriptor *d = m->descriptor;
    for (unsigned f = 0; f < d->n_fields; f++) {
        const ProtobufCFieldDescriptor *fd = &d->fields[f];
        if (fd->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        const char *at = (const char *)m + fd->offset;
        if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)((const char *)m + fd->quantifier_offset);
            ProtobufCMessage *const *v = *(ProtobufCMessage *const *const *)at;
            for (size_t k = 0; k < n; k++)
                if (v[k] != NULL && pb_has_field_zero(v[k]))
                    return true;
        } else {
            if ((fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
                *(const uint32_t *)((const char *)m + fd->quantifier_offset) != fd->id)
                continue; /* another member of the oneof: at is not this field */
            const ProtobufCMessage *sub = *(ProtobufCMessage *const *)at;
            if (sub != NULL && pb_has_field_zero(sub))
                return true;
        }
    }
    return false;
}

void *
bg_pb_unpack(const ProtobufCMessageDescriptor *desc, size_t len, const uint8_t *data)
{
    pb_budget b = {0, bg_pb_budget(len)};
    ProtobufCAllocator a = {pb_alloc, pb_release, &b};
    ProtobufCMessage *m = protobuf_c_message_unpack(desc, &a, len, data);
    if (m != NULL && pb_has_field_zero(m)) {
        protobuf_c_message_free_unpacked(m, &a);
        return NULL;
    }
    return m;
}

void
bg_pb_free(void *msg)
{
    static ProtobufCAllocator a = {pb_alloc, pb_release, NULL};
    if (msg != NULL)
        protobuf_c_message_free_unpacked(msg, &a);
}
