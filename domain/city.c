#include "domain/city.h"

#include <stddef.h>

bool
bg_city_code_valid(const char *code)
{
    if (code == NULL)
        return false;
    for (size_t i = 0; i < BG_CITY_CODE_LEN; i++)
        if (code[i] < '0' || code[i] > '9')
            return false;
    return code[BG_CITY_CODE_LEN] == '\0';
}
