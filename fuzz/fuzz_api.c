/*
 * fuzz_api.c - the HTTP API's own parsing of outside bytes (gateway/api/): the route
 * of a method and path (api_route_parse) and a bearer key matched against the key
 * table (bg_apikeys_match). The HTTP syntax itself is libmicrohttpd's.
 * Input: METHOD '\n' PATH '\n' KEY. Invariants: a routed lookup or bundle keeps its
 * {uscc} or {request_id} segment (at most API_SEG_MAX + 1 bytes, no '/'); only the one key made
 * here matches.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz/fuzz.h"
#include "gateway/api/api_int.h"
#include "gateway/api/api_keys.h"
#include "gateway/api/api_route.h"

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
    return 0;
}
