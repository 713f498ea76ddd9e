#include "gateway/record/record.h"

#include <stdio.h>
#include <string.h>

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
