#include "domain/city.h"

#include <stdio.h>
#include <string.h>

/* GB/T 2260: the Greater Bay Area's nine Guangdong cities, Hong Kong and Macao. */
static const struct {
    const char *code;
    const char *name;
} known[] = {
    {"440100", "Guangzhou"}, {"440300", "Shenzhen"},  {"440400", "Zhuhai"},  {"440600", "Foshan"},
    {"440700", "Jiangmen"},  {"441200", "Zhaoqing"},  {"441300", "Huizhou"}, {"441900", "Dongguan"},
    {"442000", "Zhongshan"}, {"810000", "Hong Kong"}, {"820000", "Macao"},
};

#define NKNOWN (sizeof known / sizeof known[0])

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

const char *
bg_city_name(const char *code)
{
    if (code == NULL)
        return NULL;
    for (size_t i = 0; i < NKNOWN; i++)
        if (strncmp(known[i].code, code, BG_CITY_CODE_LEN) == 0)
            return known[i].name;
    return NULL;
}

size_t
bg_city_known_count(void)
{
    return NKNOWN;
}

const char *
bg_city_known_code(size_t i)
{
    return i < NKNOWN ? known[i].code : NULL;
}

void
bg_city_known_list(char *out, size_t outsz)
{
    size_t n = 0;
    if (outsz == 0)
        return;
    out[0] = '\0';
    for (size_t i = 0; i < NKNOWN && n < outsz; i++) {
        int w =
            snprintf(out + n, outsz - n, "%s%s %s", i ? ", " : "", known[i].code, known[i].name);
        if (w < 0)
            break;
        n += (size_t)w;
    }
}
