/*
 * api_console.c - the console's static files (api_console.h).
 */
#include "gateway/api/api_console.h"

#include <stdlib.h>
#include <string.h>

#include "gateway/api/api_console_files.h"
#include "gateway/api/api_resp.h"

/* Whether the If-None-Match list h names etag (or is "*"). */
static bool
etag_matches(const char *h, const char *etag)
{
    if (h == NULL)
        return false;
    size_t n = strlen(etag);
    for (const char *p = h; *p != '\0';) {
        p += strspn(p, " \t,");
        if (strncmp(p, "W/", 2) == 0)
            p += 2; /* a weak comparison is what If-None-Match asks for */
        size_t m = strcspn(p, " \t,");
        if ((m == 1 && p[0] == '*') || (m == n && memcmp(p, etag, n) == 0))
            return true;
        p += m;
    }
    return false;
}

/* r's body a copy of n bytes of b (MHD frees what it sends); false with r a 500. */
static bool
body_copy(api_resp *r, const void *b, size_t n)
{
    free(r->body);
    r->len = 0;
    if ((r->body = malloc(n + 1)) == NULL) {
        api_problem(r, 500, "internal", "Internal error", "out of memory");
        return false;
    }
    memcpy(r->body, b, n);
    r->body[n] = '\0';
    r->len = n;
    return true;
}

void
api_console(const api_req *rq, api_resp *r)
{
    if (rq->redirect) {
        if (!body_copy(r, "", 0))
            return;
        r->status = 308;
        r->ctype = "text/plain; charset=utf-8";
        r->location = "/console/";
        return;
    }
    const char *name = rq->seg[0] != '\0' ? rq->seg : "index.html";
    for (size_t i = 0; i < api_console_nfiles; i++) {
        const api_console_file *cf = &api_console_files[i];
        if (strcmp(cf->name, name) != 0)
            continue;
        r->etag = cf->etag;
        r->revalidate = true;
        bool fresh = etag_matches(rq->if_none_match, cf->etag);
        if (body_copy(r, cf->data, fresh ? 0 : cf->len)) {
            r->status = fresh ? 304 : 200;
            r->ctype = cf->ctype;
        }
        return;
    }
    api_problem(r, 404, "not-found", "No such console page",
                "the console is at /console/");
}
