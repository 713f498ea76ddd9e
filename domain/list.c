#include "domain/list.h"

#include <string.h>

const char *const bg_list_names[BG_LIST_COUNT] = {"serious-dishonesty", "abnormal-operation"};

int
bg_list_index(const char *name, size_t len)
{
    for (int i = 0; i < BG_LIST_COUNT; i++)
        if (strlen(bg_list_names[i]) == len && memcmp(bg_list_names[i], name, len) == 0)
            return i;
    return -1;
}

bool
bg_list_entry_in_force(int32_t expires_at, int32_t today)
{
    return expires_at == INT32_MIN || today < expires_at;
}
