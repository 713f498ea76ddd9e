/*
 * api_res_jobs.c - the /v1/jobs resources: batch queries made, read, cancelled, and
 * their results (api_jobs.h runs them; api_rows.h writes the rows).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "domain/city.h"
#include "domain/list.h"
#include "gateway/api/api_jobbody.h"
#include "gateway/api/api_jobs.h"
#include "gateway/api/api_json.h"
#include "gateway/api/api_res.h"
#include "gateway/api/api_resp.h"
#include "gateway/api/api_rows.h"
#include "gateway/daemon/log.h"

/* ------------------------------------------------------------- the job object */

static void
json_time(FILE *f, const char *key, int64_t ms)
{
    char when[32];
    if (ms <= 0)
        fprintf(f, ",\"%s\":null", key);
    else
        fprintf(f, ",\"%s\":\"%s\"", key, bg_api_when(ms, when));
}

static void
json_job(FILE *f, const api_job *job)
{
    fprintf(f, "{\"id\":\"%s\",\"kind\":\"%s\"", job->id, api_job_kind_name(job->kind));
    bg_api_json_kv(f, "list", job->list, true);
    bg_api_json_kv(f, "purpose", job->purpose, true);
    bg_api_json_kv(f, "application", job->app, true);
    fprintf(f, ",\"state\":\"%s\",\"cancel_requested\":%s", api_job_state_name(job->state),
            job->cancel ? "true" : "false");
    json_time(f, "created", job->created_ms);
    json_time(f, "started", job->started_ms);
    json_time(f, "finished", job->finished_ms);
    fprintf(f, ",\"progress\":{\"peers_done\":%zu,\"peers_total\":", job->peers_done);
    if (job->all && job->npeers == 0)
        fprintf(f, "null"); /* every peer: known once it runs */
    else
        fprintf(f, "%zu", job->npeers);
    fprintf(f, ",\"ids\":%zu,\"invalid\":", job->ids);
    if (job->state == API_JOB_QUEUED)
        fprintf(f, "null");
    else
        fprintf(f, "%zu", job->invalid);
    fprintf(f, "},\"peers\":[");
    for (size_t i = 0; i < job->npeers; i++) {
        const api_job_peer *p = &job->peers[i];
        static const char *const st[] = {"pending", "answered", "error"};
        fprintf(f, "%s{\"peer\":\"%s\",\"outcome\":\"%s\",\"request_id\":", i ? "," : "", p->city,
                st[p->state]);
        if (p->request_id[0])
            fprintf(f, "\"%s\"", p->request_id);
        else
            fprintf(f, "null");
        if (p->state == API_PEER_ERROR)
            bg_api_json_kv(f, "reason", p->reason, true);
        fprintf(f, "}");
    }
    fprintf(f, "]");
    if (job->error[0])
        bg_api_json_kv(f, "error", job->error, true);
    if (job->state == API_JOB_DONE)
        fprintf(f, ",\"results\":\"/v1/jobs/%s/results\"", job->id);
    fprintf(f, "}");
}

static void
answer_job(api_resp *r, const api_job *job, unsigned status)
{
    FILE *f = api_body_open(r);
    if (f != NULL) {
        json_job(f, job);
        fputc('\n', f);
    }
    api_body_close(r, f, status, API_JSON);
}

/* ------------------------------------------------------------- making one */

/* The upload's media type, its parameters (";charset=...") aside. */
static bool
media_is(const char *ctype, const char *type)
{
    size_t n = strlen(type);
    return ctype != NULL && strncasecmp(ctype, type, n) == 0 &&
           (ctype[n] == '\0' || ctype[n] == ';' || ctype[n] == ' ');
}

/* The query parameters of a text upload into q; false with r a problem. */
static bool
params_of_query(const api_req *rq, api_jobreq *q, api_resp *r)
{
    memset(q, 0, sizeof *q);
    struct {
        const char *name, *v;
        char *dst;
        size_t max;
    } t[] = {{"kind", rq->kind, q->kind, API_JOBREQ_TEXT_MAX},
             {"list", rq->list, q->list, API_JOBREQ_TEXT_MAX},
             {"purpose", rq->purpose, q->purpose, API_JOBREQ_TEXT_MAX},
             {"auth_ref", rq->auth_ref, q->auth_ref, API_JOBREQ_AUTH_MAX}};
    for (size_t i = 0; i < sizeof t / sizeof *t; i++) {
        if (t[i].v != NULL && strlen(t[i].v) > t[i].max) {
            api_problem(r, 400, "invalid-parameter", "Invalid query parameter",
                        "%s is longer than %zu bytes", t[i].name, t[i].max);
            return false;
        }
        snprintf(t[i].dst, t[i].max + 1, "%s", t[i].v ? t[i].v : "");
    }
    q->all = rq->peers == NULL || strcmp(rq->peers, "all") == 0;
    for (const char *s = q->all ? "" : rq->peers; *s;) {
        size_t n = strcspn(s, ",");
        if (q->npeers == BG_ROSTER_MAX_MEMBERS || n > API_JOBREQ_TEXT_MAX) {
            api_problem(r, 400, "invalid-parameter", "Invalid query parameter",
                        "peers: at most %d city codes, comma-separated", BG_ROSTER_MAX_MEMBERS);
            return false;
        }
        memcpy(q->peers[q->npeers], s, n);
        q->peers[q->npeers++][n] = '\0';
        s += n + (s[n] == ',');
    }
    if (!q->all && q->npeers == 0) {
        api_problem(r, 400, "invalid-parameter", "Invalid query parameter",
                    "peers: 'all' or city codes, comma-separated");
        return false;
    }
    return true;
}

/* q checked into job (kind, list, purpose within k's scope, auth_ref, peers); false
 * with r a problem naming what is wrong. */
static bool
job_of(const api_jobreq *q, const bg_apikey *k, api_job *job, api_resp *r)
{
    memset(job, 0, sizeof *job);
    snprintf(job->app, sizeof job->app, "%s", k->name);
    char safe[80];
    if (strcmp(q->kind, "membership") == 0)
        job->kind = API_JOB_MEMBERSHIP;
    else if (strcmp(q->kind, "grades") == 0)
        job->kind = API_JOB_GRADES;
    else if (strcmp(q->kind, "count") == 0)
        job->kind = API_JOB_COUNT;
    else {
        api_problem(r, 400, "invalid-parameter", "Invalid job",
                    "kind must be membership, grades "
                    "or count, not '%s'",
                    bg_log_safe(q->kind, strlen(q->kind), safe, sizeof safe));
        return false;
    }
    const char *list = q->list;
    if (job->kind == API_JOB_GRADES) {
        if (list[0] != '\0' && strcmp(list, BG_LIST_GRADES) != 0) {
            api_problem(r, 400, "invalid-parameter", "Invalid job",
                        "list: a grades job asks the list 'grades' (or gives none)");
            return false;
        }
        list = BG_LIST_GRADES;
    } else if (bg_list_index(list, strlen(list)) < 0) {
        api_problem(r, 400, "invalid-parameter", "Invalid job",
                    "list must be serious-dishonesty or abnormal-operation, not '%s'",
                    bg_log_safe(list, strlen(list), safe, sizeof safe));
        return false;
    }
    if (!bg_apikey_allows_list(k, list)) {
        api_problem(r, 403, "list-not-allowed", "The key does not cover this list",
                    "application '%s' may ask %s, not '%s'", k->name,
                    strcmp(k->lists, BG_APIKEY_ALL_LISTS) == 0 ? "every list" : k->lists, list);
        return false;
    }
    snprintf(job->list, sizeof job->list, "%s", list);
    if (!api_purpose_allowed(k, q->purpose, r))
        return false;
    snprintf(job->purpose, sizeof job->purpose, "%s", q->purpose);
    const char *a = q->auth_ref;
    if (a[0] != '\0' && (sodium_hex2bin(job->auth, sizeof job->auth, a, strlen(a), NULL,
                                        &job->auth_len, NULL) != 0 ||
                         job->auth_len == 0 || strlen(a) != 2 * job->auth_len)) {
        api_problem(r, 400, "invalid-parameter", "Invalid job",
                    "auth_ref must be 2 to 128 hex digits");
        return false;
    }
    job->all = q->all;
    for (size_t i = 0; !q->all && i < q->npeers; i++) {
        if (!bg_city_code_valid(q->peers[i])) {
            api_problem(r, 400, "invalid-parameter", "Invalid job",
                        "peers: '%s' is not a city code (6 digits)",
                        bg_log_safe(q->peers[i], strlen(q->peers[i]), safe, sizeof safe));
            return false;
        }
        for (size_t k2 = 0; k2 < job->npeers; k2++)
            if (strcmp(job->peers[k2].city, q->peers[i]) == 0) {
                api_problem(r, 400, "invalid-parameter", "Invalid job", "peers: %s is named twice",
                            q->peers[i]);
                return false;
            }
        /* a valid code (checked above) fits: six digits */
        snprintf(job->peers[job->npeers++].city, sizeof job->peers[0].city, "%.*s",
                 (int)sizeof job->peers[0].city - 1, q->peers[i]);
    }
    return true;
}

/* A JSON body into q, its ids into a new upload file (its path to ids); false with r
 * a problem. */
static bool
read_json_body(bg_api *api, const char *body, api_jobreq *q, char *ids, size_t idssz, api_resp *r)
{
    bg_err err = {0};
    int fd = -1;
    if (api_jobs_upload_open(api->jobs, ids, idssz, &fd, &err) != BG_OK) {
        ids[0] = '\0';
        api_problem(r, 500, "internal", "Internal error", "%s", err.msg);
        return false;
    }
    FILE *in = fopen(body, "r"), *out = fdopen(fd, "w");
    int rc = in == NULL || out == NULL
                 ? bg_err_set(&err, BG_EIO, "cannot read the body: %s", strerror(errno))
                 : api_jobbody_json(in, out, q, &err);
    if (in != NULL)
        fclose(in);
    if ((out != NULL ? fclose(out) : close(fd)) != 0 && rc == BG_OK)
        rc = bg_err_set(&err, BG_EIO, "cannot keep the ids: %s", strerror(errno));
    if (rc == BG_OK)
        return true;
    if (rc == BG_ELIMIT)
        api_problem(r, 413, "too-large", "Too many ids", "%s", err.msg);
    else if (rc == BG_EIO)
        api_problem(r, 500, "internal", "Internal error", "%s", err.msg);
    else
        api_problem(r, 400, "invalid-body", "The body is not a valid job", "%s", err.msg);
    return false;
}

/* The ids file checked (bounds as the CLI's) and counted into job; false with r. */
static bool
count_ids(const char *path, api_job *job, api_resp *r)
{
    bg_err err = {0};
    FILE *f = fopen(path, "r");
    int rc = f == NULL ? bg_err_set(&err, BG_EIO, "cannot read the ids: %s", strerror(errno))
                       : bg_api_ids_count(f, "ids", &job->ids, &err);
    if (f != NULL)
        fclose(f);
    if (rc == BG_OK)
        return true;
    if (rc == BG_ELIMIT)
        api_problem(r, 413, "too-large", "Too many ids", "%s", err.msg);
    else
        api_problem(r, rc == BG_EIO ? 500 : 400, rc == BG_EIO ? "internal" : "invalid-ids",
                    rc == BG_EIO ? "Internal error" : "The ids are not valid input", "%s", err.msg);
    return false;
}

void
api_res_jobs_create(bg_api *api, const api_req *rq, const bg_apikey *k, api_resp *r)
{
    api_jobreq *q = malloc(sizeof *q);
    api_job *job = malloc(sizeof *job);
    char ids[PATH_MAX] = "";
    bool json = media_is(rq->content_type, "application/json");
    bool text = media_is(rq->content_type, "text/csv") || media_is(rq->content_type, "text/plain");
    const char *path = rq->upload;
    if (q == NULL || job == NULL) {
        api_problem(r, 500, "internal", "Internal error", "out of memory");
    } else if (!json && !text) {
        api_problem(r, 415, "unsupported-media-type", "Unsupported media type",
                    "send application/json (the job with its ids), or text/csv or text/plain "
                    "(one id a line, the other parameters in the query)");
    } else if (rq->upload == NULL) {
        api_problem(r, 400, "invalid-body", "The body is not a valid job", "the body is empty");
    } else if (json ? read_json_body(api, rq->upload, q, ids, sizeof ids, r)
                    : params_of_query(rq, q, r)) {
        if (json)
            path = ids;
        if (job_of(q, k, job, r) && count_ids(path, job, r)) {
            bg_err err = {0};
            int rc = api_jobs_submit(api->jobs, job, path, &err);
            if (rc == BG_OK) {
                snprintf(r->loc, sizeof r->loc, "/v1/jobs/%s", job->id);
                r->location = r->loc;
                answer_job(r, job, 202);
            } else if (rc == BG_ELIMIT) {
                api_problem(r, 503, "jobs-busy", "Too many jobs waiting", "%s", err.msg);
                r->retry_after = true;
            } else {
                api_problem(r, 500, "internal", "Internal error", "%s", err.msg);
            }
        }
    }
    if (ids[0])
        unlink(ids); /* moved into the job if it was taken */
    free(q);
    free(job);
}

/* ------------------------------------------------------------- reading, cancelling */

void
api_res_jobs_list(bg_api *api, const api_req *rq, api_resp *r)
{
    api_job *v = NULL;
    size_t n = 0;
    bg_err err = {0};
    if (api_jobs_list(api->jobs, rq->app, &v, &n, &err) != BG_OK) {
        api_problem(r, 500, "internal", "Internal error", "%s", err.msg);
        return;
    }
    FILE *f = api_body_open(r);
    if (f != NULL) {
        fprintf(f, "{\"jobs\":[");
        for (size_t i = 0; i < n; i++) {
            fputs(i ? "," : "", f);
            json_job(f, &v[i]);
        }
        fprintf(f, "]}\n");
    }
    api_body_close(r, f, 200, API_JSON);
    free(v);
}

/* The caller's job of the path into job; false with r the 404 (another application's
 * job is not found either: its existence is not the caller's to know). */
static bool
own_job(bg_api *api, const api_req *rq, api_job *job, api_resp *r)
{
    size_t n = strspn(rq->seg, "0123456789abcdef");
    if (n == API_JOB_ID_LEN && rq->seg[n] == '\0' && api_jobs_get(api->jobs, rq->seg, rq->app, job))
        return true;
    api_problem(r, 404, "not-found", "No such job", "application '%s' has no job of that id",
                rq->app);
    return false;
}

void
api_res_job_get(bg_api *api, const api_req *rq, api_resp *r)
{
    api_job *job = malloc(sizeof *job);
    if (job == NULL)
        api_problem(r, 500, "internal", "Internal error", "out of memory");
    else if (own_job(api, rq, job, r))
        answer_job(r, job, 200);
    free(job);
}

void
api_res_job_cancel(bg_api *api, const api_req *rq, api_resp *r)
{
    api_job *job = malloc(sizeof *job);
    bg_err err = {0};
    if (job == NULL) {
        api_problem(r, 500, "internal", "Internal error", "out of memory");
    } else if (own_job(api, rq, job, r)) {
        int rc = api_jobs_cancel(api->jobs, job->id, rq->app, job, &err);
        if (rc == BG_OK) {
            bg_log(BG_LOG_INFO, "api.job_cancel", "job=%s app=%s state=%s", job->id, rq->app,
                   api_job_state_name(job->state));
            answer_job(r, job, 200);
        } else if (rc == BG_EEXIST) {
            api_problem(r, 409, "job-ended", "The job has ended", "%s", err.msg);
        } else {
            api_problem(r, 404, "not-found", "No such job", "%s", err.msg);
        }
    }
    free(job);
}

/* Whether the caller asks for CSV: ?format=csv, or Accept naming text/csv (and no
 * format given); false with r the 400 for another format. */
static bool
wants_csv(const api_req *rq, bool *csv, api_resp *r)
{
    *csv = false;
    if (rq->format != NULL) {
        if (strcmp(rq->format, "csv") != 0 && strcmp(rq->format, "json") != 0) {
            api_problem(r, 400, "invalid-parameter", "Invalid query parameter",
                        "format must be csv or json");
            return false;
        }
        *csv = strcmp(rq->format, "csv") == 0;
        return true;
    }
    *csv = rq->accept != NULL && strstr(rq->accept, "text/csv") != NULL;
    return true;
}

void
api_res_job_results(bg_api *api, const api_req *rq, api_resp *r)
{
    api_job *job = malloc(sizeof *job);
    bool csv = false;
    if (job == NULL) {
        api_problem(r, 500, "internal", "Internal error", "out of memory");
    } else if (own_job(api, rq, job, r) && wants_csv(rq, &csv, r)) {
        char path[PATH_MAX];
        bg_err err = {0};
        struct stat st;
        int fd = -1;
        if (job->state != API_JOB_DONE) {
            api_problem(r, 409, "job-not-done", "The job has no results", "job %s is %s%s%s",
                        job->id, api_job_state_name(job->state), job->error[0] ? ": " : "",
                        job->error);
        } else if (api_jobs_results_path(api->jobs, job->id, csv, path, sizeof path, &err) !=
                       BG_OK ||
                   (fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0 ||
                   fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
            api_problem(r, 500, "internal", "Internal error", "the results of job %s: %s", job->id,
                        err.msg[0] ? err.msg : strerror(errno));
            if (fd >= 0)
                close(fd);
        } else {
            /* Served from the file as it is: never read whole into memory. */
            r->has_fd = true;
            r->fd = fd;
            r->fd_len = (uint64_t)st.st_size;
            r->status = 200;
            r->ctype = csv ? "text/csv; charset=utf-8" : API_JSON;
        }
    }
    free(job);
}
