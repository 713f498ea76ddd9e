/*
 * api_resp.c - JSON bodies and RFC 9457 problems (api_resp.h).
 */
#include "gateway/api/api_resp.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/api/api_json.h"
#include "gateway/daemon/log.h"

/* Fixed, so a response exists even when memory does not. */
static const char oom_problem[] =
    "{\"type\":\"urn:baygate:problem:internal\",\"title\":\"Internal error\",\"status\":500,"
    "\"detail\":\"out of memory\"}";

static void
oom(api_resp *r)
{
    free(r->body);
    r->body = strdup(oom_problem);
    r->len = r->body ? strlen(r->body) : 0;
    r->status = 500;
    r->ctype = API_PROBLEM;
}

FILE *
api_body_open(api_resp *r)
{
    free(r->body);
    r->body = NULL;
    r->len = 0;
    FILE *f = open_memstream(&r->body, &r->len);
    if (f == NULL)
        oom(r);
    return f;
}

void
api_body_close(api_resp *r, FILE *f, unsigned status, const char *ctype)
{
    if (f == NULL)
        return; /* api_body_open made the 500 */
    bool bad = ferror(f) != 0;
    if (fclose(f) != 0 || bad || r->body == NULL) {
        oom(r);
        return;
    }
    r->status = status;
    r->ctype = ctype;
}

FILE *
api_problem_open(api_resp *r, unsigned status, const char *kind, const char *title,
                 const char *detail)
{
    FILE *f = api_body_open(r);
    if (f == NULL)
        return NULL;
    fprintf(f, "{\"type\":\"urn:baygate:problem:%s\"", kind);
    bg_api_json_kv(f, "title", title, true);
    fprintf(f, ",\"status\":%u", status);
    bg_api_json_kv(f, "detail", detail, true);
    return f;
}

void
api_problem_close(api_resp *r, FILE *f, unsigned status)
{
    if (f != NULL)
        fprintf(f, "}");
    api_body_close(r, f, status, API_PROBLEM);
}

void
api_problem(api_resp *r, unsigned status, const char *kind, const char *title, const char *fmt, ...)
{
    char detail[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    api_problem_close(r, api_problem_open(r, status, kind, title, detail), status);
}

bool
api_purpose_allowed(const bg_apikey *k, const char *purpose, api_resp *r)
{
    if (purpose == NULL || purpose[0] == '\0') {
        api_problem(r, 400, "missing-parameter", "A query parameter is missing",
                    "purpose is required (a roster purpose, e.g. supervision)");
        return false;
    }
    if (!bg_apikey_allows(k, purpose)) {
        char safe[80];
        api_problem(r, 403, "purpose-not-allowed", "The key does not cover this purpose",
                    "application '%s' may ask for %s, not for '%s'", k->name, k->purposes,
                    bg_log_safe(purpose, strlen(purpose), safe, sizeof safe));
        return false;
    }
    return true;
}
