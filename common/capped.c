/*
 * capped.c - an allocator with a byte budget (see capped.h).
 */
#include <stddef.h>
#include <stdlib.h>

#include "common/capped.h"

/* Before each block: its size with this header, aligned for anything. */
typedef union {
    size_t size;
    max_align_t align;
} capped_hdr;

size_t
bg_capped_budget(size_t len)
{
    return 64 * 1024 + 16 * len;
}

void *
bg_capped_alloc(void *data, size_t size)
{
    bg_capped *c = data;
    size_t need = size + sizeof(capped_hdr);
    if (need < size || need > c->limit - c->used)
        return NULL;
    capped_hdr *h = malloc(need);
    if (h == NULL)
        return NULL;
    h->size = need;
    c->used += need;
    return h + 1;
}

void
bg_capped_free(void *data, void *p)
{
    bg_capped *c = data;
    if (p == NULL)
        return;
    capped_hdr *h = (capped_hdr *)p - 1;
    c->used -= h->size;
    free(h);
}
