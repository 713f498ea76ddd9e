#include "record.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

const char *const bg_list_names[BG_LIST_COUNT] = {"serious-dishonesty", "abnormal-operation"};

int
bg_list_index(const char *name, size_t len)
{
    for (int i = 0; i < BG_LIST_COUNT; i++)
        if (strlen(bg_list_names[i]) == len && memcmp(bg_list_names[i], name, len) == 0)
            return i;
    return -1;
}

static bool
eq(const char *s, size_t len, const char *lit)
{
    return strlen(lit) == len && memcmp(s, lit, len) == 0;
}

int
bg_column_parse(const char *name, size_t len, bg_column *out, bg_err *err)
{
    static const struct {
        const char *name;
        int kind;
    } plain[] = {
        {"uscc", BG_COL_USCC},
        {"name", BG_COL_NAME},
        {"grade", BG_COL_GRADE},
        {"evaluated_at", BG_COL_EVALUATED_AT},
        {"valid_until", BG_COL_VALID_UNTIL},
    };
    static const struct {
        const char *suffix;
        int kind;
    } list_fields[] = {
        {"reason", BG_COL_LIST_REASON},
        {"listed_at", BG_COL_LIST_LISTED_AT},
        {"expires_at", BG_COL_LIST_EXPIRES_AT},
    };

    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++) {
        if (eq(name, len, plain[i].name)) {
            out->kind = plain[i].kind;
            out->list = -1;
            return BG_OK;
        }
    }
    const char *colon = memchr(name, ':', len);
    if (colon != NULL) {
        size_t list_len = (size_t)(colon - name);
        int list = bg_list_index(name, list_len);
        if (list < 0)
            return bg_err_set(err, BG_EINVAL, "column '%.*s': unknown list '%.*s'",
                              (int)(len > 64 ? 64 : len), name,
                              (int)(list_len > 64 ? 64 : list_len), name);
        for (size_t i = 0; i < sizeof list_fields / sizeof list_fields[0]; i++) {
            if (eq(colon + 1, len - list_len - 1, list_fields[i].suffix)) {
                out->kind = list_fields[i].kind;
                out->list = list;
                return BG_OK;
            }
        }
    }
    return bg_err_set(err, BG_EINVAL, "unknown column '%.*s'", (int)(len > 64 ? 64 : len), name);
}

size_t
bg_record_header(char *buf, size_t bufsz)
{
    size_t n = (size_t)snprintf(buf, bufsz, "uscc,name,grade,evaluated_at,valid_until");
    for (int l = 0; l < BG_LIST_COUNT && n < bufsz; l++)
        n += (size_t)snprintf(buf + n, bufsz - n, ",%s:reason,%s:listed_at,%s:expires_at",
                              bg_list_names[l], bg_list_names[l], bg_list_names[l]);
    if (n < bufsz)
        n += (size_t)snprintf(buf + n, bufsz - n, "\n");
    return n;
}

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

void
bg_date_format(int32_t days, char out[11])
{
    /* Inverse of days_from_civil. */
    int32_t z = days + 719468;
    int32_t era = (z >= 0 ? z : z - 146096) / 146097;
    int32_t doe = z - era * 146097;
    int32_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int32_t y = yoe + era * 400;
    int32_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int32_t mp = (5 * doy + 2) / 153;
    int32_t d = doy - (153 * mp + 2) / 5 + 1;
    int32_t m = mp + (mp < 10 ? 3 : -9);
    y += m <= 2;
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

bool
bg_list_entry_in_force(int32_t expires_at, int32_t today)
{
    return expires_at == INT32_MIN || today < expires_at;
}

void
bg_scale_default(bg_scale *out)
{
    bg_scale_parse("ABCD=A,B,C,D", out, NULL);
}

int
bg_scale_parse(const char *spec, bg_scale *out, bg_err *err)
{
    memset(out, 0, sizeof *out);
    const char *eqs = strchr(spec, '=');
    const char *list = eqs ? eqs + 1 : spec;
    if (eqs != NULL) {
        size_t nlen = (size_t)(eqs - spec);
        if (nlen == 0 || nlen >= sizeof out->name)
            return bg_err_set(err, BG_EINVAL, "scale name must be 1..%zu bytes",
                              sizeof out->name - 1);
        memcpy(out->name, spec, nlen);
    }
    const char *p = list;
    for (;;) {
        const char *end = strchr(p, ',');
        size_t glen = end ? (size_t)(end - p) : strlen(p);
        if (glen == 0 || glen > BG_GRADE_MAX)
            return bg_err_set(err, BG_EINVAL, "scale '%s': each grade must be 1..%d bytes", spec,
                              BG_GRADE_MAX);
        if (out->ngrades == BG_SCALE_MAX_GRADES)
            return bg_err_set(err, BG_EINVAL, "scale '%s': more than %d grades", spec,
                              BG_SCALE_MAX_GRADES);
        for (size_t k = 0; k < glen; k++)
            if (p[k] < '!' || p[k] > '~' || p[k] == '=')
                return bg_err_set(err, BG_EINVAL,
                                  "scale '%s': grades are printable ASCII without '=' or ','",
                                  spec);
        if (bg_scale_index(out, p, glen) >= 0)
            return bg_err_set(err, BG_EINVAL, "scale '%s': grade '%.*s' appears twice", spec,
                              (int)glen, p);
        memcpy(out->grades[out->ngrades++], p, glen);
        if (end == NULL)
            break;
        p = end + 1;
    }
    if (eqs == NULL) {
        size_t n = 0;
        for (size_t g = 0; g < out->ngrades; g++) {
            size_t glen = strlen(out->grades[g]);
            if (n + glen >= sizeof out->name)
                return bg_err_set(err, BG_EINVAL, "scale '%s': give it a shorter NAME=", spec);
            memcpy(out->name + n, out->grades[g], glen);
            n += glen;
        }
    }
    return BG_OK;
}

int
bg_scale_index(const bg_scale *scale, const char *g, size_t len)
{
    for (size_t i = 0; i < scale->ngrades; i++)
        if (strlen(scale->grades[i]) == len && memcmp(scale->grades[i], g, len) == 0)
            return (int)i;
    return -1;
}

void
bg_scale_format(const bg_scale *scale, char *buf, size_t bufsz)
{
    size_t n = (size_t)snprintf(buf, bufsz, "%s=", scale->name);
    for (size_t i = 0; i < scale->ngrades && n < bufsz; i++)
        n += (size_t)snprintf(buf + n, bufsz - n, "%s%s", i ? "," : "", scale->grades[i]);
}
