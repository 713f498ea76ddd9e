#include "domain/scale.h"

#include <stdio.h>
#include <string.h>

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
