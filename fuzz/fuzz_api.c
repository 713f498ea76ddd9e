/*
 * fuzz_api.c - the HTTP API's own parsing of outside bytes (gateway/api/): the route
 * of a method and path (api_route_parse) and a bearer key matched against the key
 * table (bg_apikeys_match); and the same bytes as a job's body, JSON (api_jobbody_json)
 * and an ids upload (bg_api_ids_count). The HTTP syntax itself is libmicrohttpd's.
 * Input: METHOD '\n' PATH '\n' KEY. Invariants: a routed lookup or bundle keeps its
 * {uscc} or {request_id} segment (at most API_SEG_MAX + 1 bytes, no '/'); only the one key made
 * here matches; a body taken writes ids of at most BG_API_ID_LINE_MAX bytes, one a
 * line, without a NUL.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz/fuzz.h"
#include "gateway/api/api_int.h"
#include "gateway/api/api_jobbody.h"
#include "gateway/api/api_keys.h"
#include "gateway/api/api_route.h"
#include "gateway/api/api_rows.h"

/* data as a job's JSON body and as an uploaded ids file. */
static void
fuzz_body(const uint8_t *data, size_t size)
{
    FILE *in = fmemopen((void *)data, size ? size : 1, "r");
    char *ids = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&ids, &len);
    api_jobreq q;
    bg_err err = {0};
    if (in != NULL && out != NULL && size > 0 && api_jobbody_json(in, out, &q, &err) == BG_OK) {
        fflush(out);
        bg_fuzz_assert(memchr(ids, '\0', len) == NULL);
        bg_fuzz_assert(q.npeers <= BG_ROSTER_MAX_MEMBERS && strlen(q.kind) <= API_JOBREQ_TEXT_MAX);
        for (size_t i = 0, start = 0; i < len; i++)
            if (ids[i] == '\n') {
                bg_fuzz_assert(i - start <= BG_API_ID_LINE_MAX);
                start = i + 1;
            }
    }
    if (in != NULL)
        fclose(in);
    if (out != NULL)
        fclose(out);
    free(ids);
    if ((in = fmemopen((void *)data, size ? size : 1, "r")) != NULL) {
        size_t n = 0;
        if (size > 0 && bg_api_ids_count(in, "fuzz", &n, &err) == BG_OK)
            bg_fuzz_assert(n > 0 && n <= BG_API_IDS_MAX);
        fclose(in);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (s == NULL)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    char *path = strchr(s, '\n');
    char *key = path ? strchr(path + 1, '\n') : NULL;
    if (path != NULL)
        *path++ = '\0';
    if (key != NULL)
        *key++ = '\0';
    api_req rq = {.route = API_R_NONE};
    unsigned st = api_route_parse(s, path ? path : "", &rq);
    bg_fuzz_assert(st == 0 || st == 404 || st == 405);
    if (rq.route == API_R_LOOKUP || rq.route == API_R_EV_BUNDLE) {
        bg_fuzz_assert(strlen(rq.seg) <= API_SEG_MAX + 1 && strchr(rq.seg, '/') == NULL);
        bg_fuzz_assert(rq.seg[0] != '\0');
    }
    /* A table of one entry whose hash is of the all-zero key. */
    static const char zero_key[] =
        "bgk_0000000000000000000000000000000000000000000000000000000000000000";
    bg_apikey k = {.name = "a", .purposes = "supervision"};
    bg_apikeys ks = {.v = &k, .n = 1};
    const bg_apikey *m0 = bg_apikeys_match(&ks, zero_key, strlen(zero_key));
    (void)m0;
    if (key != NULL) {
        const bg_apikey *m = bg_apikeys_match(&ks, key, strlen(key));
        bg_fuzz_assert(m == NULL || m == &k);
        bg_fuzz_assert(bg_apikey_allows(&k, "supervision") && !bg_apikey_allows(&k, "super"));
    }
    free(s);
    fuzz_body(data, size);
    return 0;
}
