/*
 * api_res_key.c - GET /v1/key: the calling key's scope (api_res.h).
 */
#include <string.h>

#include "common/json.h"
#include "gateway/api/api_json.h"
#include "gateway/api/api_res.h"
#include "gateway/api/api_resp.h"

/* The comma-separated words of s as JSON strings, comma-separated. */
static void
words(FILE *f, const char *s)
{
    size_t i = 0;
    for (const char *p = s; *p != '\0'; i++) {
        size_t n = strcspn(p, ",");
        fprintf(f, "%s", i ? "," : "");
        bg_json_str(f, p, n);
        p += n + (p[n] == ',');
    }
}

void
api_res_key(const bg_apikey *k, api_resp *r)
{
    FILE *f = api_body_open(r);
    if (f == NULL)
        return;
    fprintf(f, "{");
    bg_api_json_kv(f, "application", k->name, false);
    fprintf(f, ",\"purposes\":[");
    /* As arrays: clients should not have to know the file's separator. */
    words(f, k->purposes);
    fprintf(f, "],\"lists\":[");
    if (strcmp(k->lists, BG_APIKEY_ALL_LISTS) == 0)
        for (int i = 0; i < BG_API_LOOKUP_LISTS; i++)
            fprintf(f, "%s\"%s\"", i ? "," : "", bg_api_lookup_lists[i]);
    else
        words(f, k->lists);
    fprintf(f, "],\"quota_per_day\":%llu}\n", (unsigned long long)k->quota_per_day);
    api_body_close(r, f, 200, API_JSON);
}
