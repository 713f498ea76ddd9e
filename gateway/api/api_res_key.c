/*
 * api_res_key.c - GET /v1/key: the calling key's scope (api_res.h).
 */
#include <string.h>

#include "common/json.h"
#include "gateway/api/api_json.h"
#include "gateway/api/api_res.h"
#include "gateway/api/api_resp.h"

void
api_res_key(const bg_apikey *k, api_resp *r)
{
    FILE *f = api_body_open(r);
    if (f == NULL)
        return;
    fprintf(f, "{");
    bg_api_json_kv(f, "application", k->name, false);
    fprintf(f, ",\"purposes\":[");
    /* The purposes as a list: clients should not have to know the file's separator. */
    size_t i = 0;
    for (const char *p = k->purposes; *p != '\0'; i++) {
        size_t n = strcspn(p, ",");
        fprintf(f, "%s", i ? "," : "");
        bg_json_str(f, p, n);
        p += n + (p[n] == ',');
    }
    fprintf(f, "],\"quota_per_day\":%llu}\n", (unsigned long long)k->quota_per_day);
    api_body_close(r, f, 200, API_JSON);
}
