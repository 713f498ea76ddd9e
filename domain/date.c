#include "domain/date.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar. */
static int32_t
days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    int era = (y >= 0 ? y : y - 399) / 400;
    int yoe = y - era * 400;
    int doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int
days_in_month(int y, int m)
{
    static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : dim[m - 1];
}

int
bg_date_parse(const char *s, size_t len, int32_t *days, bg_err *err)
{
    if (len != 10 || s[4] != '-' || s[7] != '-')
        return bg_err_set(err, BG_EINVAL, "'%.*s' is not a date (YYYY-MM-DD)",
                          (int)(len > 32 ? 32 : len), s);
    int v[3] = {0, 0, 0};
    static const int at[3] = {0, 5, 8}, width[3] = {4, 2, 2};
    for (int f = 0; f < 3; f++) {
        for (int k = 0; k < width[f]; k++) {
            char c = s[at[f] + k];
            if (c < '0' || c > '9')
                return bg_err_set(err, BG_EINVAL, "'%.10s' is not a date (YYYY-MM-DD)", s);
            v[f] = v[f] * 10 + (c - '0');
        }
    }
    if (v[1] < 1 || v[1] > 12)
        return bg_err_set(err, BG_EINVAL, "'%.10s': month %d does not exist", s, v[1]);
    if (v[2] < 1 || v[2] > days_in_month(v[0], v[1]))
        return bg_err_set(err, BG_EINVAL, "'%.10s': day %d does not exist in that month", s, v[2]);
    int32_t d = days_from_civil(v[0], v[1], v[2]);
    if (d < days_from_civil(1949, 10, 1) || d > days_from_civil(2199, 12, 31))
        return bg_err_set(err, BG_EINVAL, "'%.10s' is outside 1949-10-01..2199-12-31", s);
    *days = d;
    return BG_OK;
}

/*
 * Any int32_t may arrive here from outside (a peer's sealed payload, an
 * attestation file), so the arithmetic is done in 64 bits, where no day count
 * overflows. A day whose year is outside 0000..9999 has no YYYY-MM-DD form:
 * it is written as "0000-00-00", which bg_date_parse refuses (month 0), rather than as
 * ten characters cut from a longer string that could read as a real date.
 */
void
bg_date_format(int32_t days, char out[11])
{
    /* Inverse of days_from_civil. */
    int64_t z = (int64_t)days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = yoe + era * 400;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t d = doy - (153 * mp + 2) / 5 + 1;
    int64_t m = mp + (mp < 10 ? 3 : -9);
    y += m <= 2;
    if (y < 0 || y > 9999) {
        memcpy(out, "0000-00-00", 11);
        return;
    }
    char tmp[48];
    snprintf(tmp, sizeof tmp, "%04d-%02d-%02d", (int)y, (int)m, (int)d);
    memcpy(out, tmp, 10);
    out[10] = '\0';
}

int32_t
bg_date_today(void)
{
    return (int32_t)(time(NULL) / 86400);
}
