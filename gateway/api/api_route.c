/*
 * api_route.c - routing and authentication (api_route.h).
 */
#include "gateway/api/api_route.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "domain/date.h"
#include "gateway/api/api_console.h"
#include "gateway/api/api_metrics.h"
#include "gateway/api/api_openapi.h"
#include "gateway/api/api_res.h"
#include "gateway/api/api_resp.h"
#include "gateway/daemon/log.h"

#define ENTERPRISES "/v1/enterprises/"
#define EVIDENCE "/v1/evidence/"
#define BUNDLE "/bundle"
#define CONSOLE "/console/"
#define JOBS "/v1/jobs/"
#define RESULTS "/results"

/* The segment of path after prefix, up to end (NULL: the rest), into rq->seg; false
 * if it is empty (unless may_be_empty) or holds a '/'. */
static bool
segment(const char *path, size_t prefix, const char *end, bool may_be_empty, api_req *rq)
{
    const char *s = path + prefix;
    size_t n = strlen(s);
    if (end != NULL) {
        size_t e = strlen(end);
        if (n < e || strcmp(s + n - e, end) != 0)
            return false;
        n -= e;
    }
    if (n > API_SEG_MAX + 1)
        n = API_SEG_MAX + 1;
    if ((n == 0 && !may_be_empty) || memchr(s, '/', n) != NULL)
        return false;
    memcpy(rq->seg, s, n);
    rq->seg[n] = '\0';
    return true;
}

unsigned
api_route_parse(const char *method, const char *path, api_req *rq)
{
    rq->route = API_R_NONE;
    rq->redirect = false;
    rq->seg[0] = '\0';
    rq->allow = "GET, HEAD";
    if (path == NULL || method == NULL)
        return 404;
    if (strcmp(path, "/v1/status") == 0)
        rq->route = API_R_STATUS;
    else if (strcmp(path, "/v1/openapi.json") == 0)
        rq->route = API_R_OPENAPI;
    else if (strcmp(path, "/metrics") == 0)
        rq->route = API_R_METRICS;
    else if (strcmp(path, "/healthz") == 0)
        rq->route = API_R_HEALTHZ;
    else if (strcmp(path, "/readyz") == 0)
        rq->route = API_R_READYZ;
    else if (strcmp(path, "/v1/evidence") == 0)
        rq->route = API_R_EV_FIND;
    else if (strcmp(path, "/v1/evidence/head") == 0)
        rq->route = API_R_EV_HEAD;
    else if (strcmp(path, "/v1/key") == 0)
        rq->route = API_R_KEY;
    else if (strcmp(path, "/v1/jobs") == 0)
        rq->route = API_R_JOBS;
    else if (strncmp(path, JOBS, sizeof JOBS - 1) == 0 &&
             segment(path, sizeof JOBS - 1, RESULTS, false, rq))
        rq->route = API_R_JOB_RESULTS;
    else if (strncmp(path, JOBS, sizeof JOBS - 1) == 0 &&
             segment(path, sizeof JOBS - 1, NULL, false, rq))
        rq->route = API_R_JOB;
    else if (strcmp(path, "/console") == 0) {
        rq->route = API_R_CONSOLE;
        rq->redirect = true;
    } else if (strncmp(path, CONSOLE, sizeof CONSOLE - 1) == 0 &&
               segment(path, sizeof CONSOLE - 1, NULL, true, rq))
        rq->route = API_R_CONSOLE;
    else if (strncmp(path, ENTERPRISES, sizeof ENTERPRISES - 1) == 0 &&
             segment(path, sizeof ENTERPRISES - 1, NULL, false, rq))
        rq->route = API_R_LOOKUP;
    else if (strncmp(path, EVIDENCE, sizeof EVIDENCE - 1) == 0 &&
             segment(path, sizeof EVIDENCE - 1, BUNDLE, false, rq))
        rq->route = API_R_EV_BUNDLE;
    else
        return 404;
    if (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0)
        return 0;
    /* A job is made by POST to the collection and cancelled by DELETE. */
    if (rq->route == API_R_JOBS) {
        rq->allow = "GET, HEAD, POST";
        return strcmp(method, "POST") == 0 ? 0 : 405;
    }
    if (rq->route == API_R_JOB) {
        rq->allow = "GET, HEAD, DELETE";
        return strcmp(method, "DELETE") == 0 ? 0 : 405;
    }
    return 405;
}

/* Reads DATA/apikeys again if it changed (or was never read); under api->lock. */
static int
keys_refresh(bg_api *api, bg_err *err)
{
    struct stat st;
    if (stat(api->keys_path, &st) != 0) {
        bg_apikeys_free(&api->keys); /* no file: no keys */
        api->keys_loaded = true;
        api->keys_ino = 0;
        return BG_OK;
    }
    if (api->keys_loaded && st.st_ino == api->keys_ino && st.st_size == api->keys_size &&
        st.st_mtim.tv_sec == api->keys_mtime.tv_sec &&
        st.st_mtim.tv_nsec == api->keys_mtime.tv_nsec)
        return BG_OK;
    bg_apikeys ks;
    int rc = bg_apikeys_load(api->keys_path, &ks, err);
    if (rc != BG_OK)
        return rc; /* the old keys stay */
    bg_apikeys_free(&api->keys);
    api->keys = ks;
    api->keys_ino = st.st_ino;
    api->keys_size = st.st_size;
    api->keys_mtime = st.st_mtim;
    api->keys_loaded = true;
    return BG_OK;
}

/* The bearer key of rq as an entry copied into k; false with r the 401. */
static bool
authenticate(bg_api *api, const api_req *rq, bg_apikey *k, api_resp *r)
{
    static const char bearer[] = "Bearer ";
    const char *h = rq->authorization;
    if (h == NULL || strncmp(h, bearer, sizeof bearer - 1) != 0) {
        api_problem(r, 401, "unauthenticated", "An API key is needed",
                    "send Authorization: Bearer KEY with a key from 'baygate apikey create'");
        r->challenge = true;
        return false;
    }
    const char *key = h + sizeof bearer - 1;
    bg_err err = {0};
    pthread_mutex_lock(&api->lock);
    int rc = keys_refresh(api, &err);
    const bg_apikey *m = bg_apikeys_match(&api->keys, key, strlen(key));
    if (m != NULL)
        *k = *m;
    pthread_mutex_unlock(&api->lock);
    if (rc != BG_OK)
        bg_log(BG_LOG_ERROR, "api.keys_unreadable", "error=\"%s\"", err.msg);
    if (m == NULL || k->revoked != 0) {
        api_problem(r, 401, "unauthenticated", "The API key is not valid", "%s",
                    m == NULL ? "the key is not one this gateway issued" : "the key was revoked");
        r->challenge = true;
        return false;
    }
    return true;
}

bool
api_key_valid(bg_api *api, const char *authorization)
{
    api_req rq = {.authorization = authorization};
    api_resp r = {.status = 500};
    bg_apikey k;
    bool ok = authenticate(api, &rq, &k, &r);
    free(r.body);
    sodium_memzero(&k, sizeof k);
    return ok;
}

/* One lookup charged to k's daily quota; false with r the 429 when it is used up. */
static bool
charge(bg_api *api, const bg_apikey *k, api_resp *r)
{
    if (k->quota_per_day == 0)
        return true;
    int32_t today = bg_date_today();
    bool ok = false;
    pthread_mutex_lock(&api->lock);
    api_usage *u = NULL;
    for (size_t i = 0; i < api->nusage && u == NULL; i++)
        if (strcmp(api->usage[i].app, k->name) == 0)
            u = &api->usage[i];
    if (u == NULL && api->nusage < API_APPS_MAX) {
        u = &api->usage[api->nusage++];
        snprintf(u->app, sizeof u->app, "%s", k->name);
        u->day = today;
    }
    if (u != NULL) {
        if (u->day != today) {
            u->day = today;
            u->used = 0;
        }
        ok = u->used < k->quota_per_day;
        u->used += ok;
    }
    pthread_mutex_unlock(&api->lock);
    if (!ok)
        api_problem(r, 429, "quota-exceeded", "Daily quota used up",
                    "application '%s' may make %llu lookups a day", k->name,
                    (unsigned long long)k->quota_per_day);
    return ok;
}

/* A purpose given and within the key's scope; false with r a problem. */
static bool
authorise(const api_req *rq, const bg_apikey *k, api_resp *r)
{
    return api_purpose_allowed(k, rq->purpose, r);
}

void
api_dispatch(bg_api *api, api_req *rq, api_resp *r)
{
    if (rq->route == API_R_OPENAPI) {
        api_openapi(r);
        return;
    }
    /* Probes carry no key: they say nothing an application could not see from outside;
     * nor do the console's files, which hold no data. */
    if (rq->route == API_R_HEALTHZ || rq->route == API_R_READYZ) {
        (rq->route == API_R_HEALTHZ ? api_res_healthz : api_res_readyz)(api, rq, r);
        return;
    }
    if (rq->route == API_R_CONSOLE) {
        api_console(rq, r);
        return;
    }
    bg_apikey k;
    if (!authenticate(api, rq, &k, r))
        return;
    snprintf(rq->app, sizeof rq->app, "%s", k.name);
    switch (rq->route) {
    case API_R_STATUS:
        api_res_status(api, rq, r);
        break;
    case API_R_METRICS:
        api_metrics(api, r);
        break;
    case API_R_KEY:
        api_res_key(&k, r);
        break;
    case API_R_LOOKUP:
        if (authorise(rq, &k, r) && charge(api, &k, r))
            api_res_lookup(api, rq, &k, r);
        break;
    case API_R_EV_HEAD:
        api_res_evidence_head(api, rq, r);
        break;
    case API_R_EV_FIND:
        api_res_evidence_find(api, rq, r);
        break;
    case API_R_EV_BUNDLE:
        api_res_evidence_bundle(api, rq, r);
        break;
    case API_R_JOBS:
        if (strcmp(rq->method, "POST") != 0)
            api_res_jobs_list(api, rq, r);
        else
            api_res_jobs_create(api, rq, &k, r); /* the purpose may be in the body */
        break;
    case API_R_JOB:
        (strcmp(rq->method, "DELETE") == 0 ? api_res_job_cancel : api_res_job_get)(api, rq, r);
        break;
    case API_R_JOB_RESULTS:
        api_res_job_results(api, rq, r);
        break;
    default:
        api_problem(r, 404, "not-found", "No such resource", "see /v1/openapi.json");
        break;
    }
}
