#include "common/num.h"

int
bg_num_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out, bg_err *err)
{
    uint64_t x = 0;
    const char *p = s;
    for (; *p != '\0' && p - s < 64; p++) {
        if (*p < '0' || *p > '9' || x > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
            break;
        x = x * 10 + (uint64_t)(*p - '0');
    }
    if (p == s || *p != '\0')
        return bg_err_set(err, BG_EINVAL, "'%.64s' is not a number", s);
    if (x < min || x > max)
        return bg_err_set(err, BG_EINVAL, "%llu is out of range %llu-%llu", (unsigned long long)x,
                          (unsigned long long)min, (unsigned long long)max);
    *out = x;
    return BG_OK;
}
