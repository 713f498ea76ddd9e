/*
 * api_server.c - the HTTP server (api.h): libmicrohttpd on a small thread pool with
 * connection limits, idle timeouts and header and body caps; each request routed,
 * answered, counted and logged.
 */
#include "gateway/api/api.h"

#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/file.h"
#include "gateway/api/api_int.h"
#include "gateway/api/api_jobs.h"
#include "gateway/api/api_metrics.h"
#include "gateway/api/api_resp.h"
#include "gateway/api/api_route.h"
#include "gateway/config/config.h"
#include "gateway/daemon/log.h"

/* Only the gateway's own origin, for everything; no inline script or style. */
#define API_CSP                                                                                    \
    "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; "            \
    "object-src 'none'"

/* What one request keeps between the calls MHD makes for it. */
typedef struct api_conn {
    struct timespec t0;
    size_t body;
    bool too_big, answered;
    bool failed;          /* the upload could not be kept */
    bool upload;          /* POST /v1/jobs: the body goes to a file, never to memory */
    int fd;               /* the upload's, -1 */
    char upath[PATH_MAX]; /* its path, "" */
} api_conn;

static double
since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

static const char *
route_text(api_route_id r)
{
    static const char *const names[API_R_COUNT] = {"-",
                                                   "/v1/status",
                                                   "/v1/enterprises/{uscc}",
                                                   "/v1/openapi.json",
                                                   "/metrics",
                                                   "/healthz",
                                                   "/readyz",
                                                   "/v1/evidence/head",
                                                   "/v1/evidence",
                                                   "/v1/evidence/{request_id}/bundle",
                                                   "/v1/key",
                                                   "/console/",
                                                   "/v1/jobs",
                                                   "/v1/jobs/{id}",
                                                   "/v1/jobs/{id}/results"};
    return names[r < API_R_COUNT ? r : API_R_NONE];
}

static enum MHD_Result
send_resp(struct MHD_Connection *c, api_resp *r)
{
    struct MHD_Response *m =
        r->has_fd ? MHD_create_response_from_fd64(r->fd_len, r->fd)
                  : MHD_create_response_from_buffer(r->len, r->body, MHD_RESPMEM_MUST_FREE);
    if (m == NULL) {
        free(r->body);
        if (r->has_fd)
            close(r->fd);
        return MHD_NO;
    }
    if (r->has_fd)
        free(r->body); /* the response owns the fd */
    r->body = NULL;    /* the response owns it */
    MHD_add_response_header(m, MHD_HTTP_HEADER_CONTENT_TYPE, r->ctype ? r->ctype : API_JSON);
    MHD_add_response_header(m, MHD_HTTP_HEADER_CACHE_CONTROL,
                            r->revalidate ? "no-cache" : "no-store");
    if (r->etag != NULL)
        MHD_add_response_header(m, MHD_HTTP_HEADER_ETAG, r->etag);
    if (r->location != NULL)
        MHD_add_response_header(m, MHD_HTTP_HEADER_LOCATION, r->location);
    /* On every answer, not only the console's: a JSON body opened as a page can then
     * run nothing, be framed by nothing, and leak no address. */
    MHD_add_response_header(m, "Content-Security-Policy", API_CSP);
    MHD_add_response_header(m, MHD_HTTP_HEADER_X_CONTENT_TYPE_OPTIONS, "nosniff");
    MHD_add_response_header(m, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(m, MHD_HTTP_HEADER_X_FRAME_OPTIONS, "DENY");
    if (r->challenge)
        MHD_add_response_header(m, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"baygate\"");
    if (r->allow_get)
        MHD_add_response_header(m, MHD_HTTP_HEADER_ALLOW, r->allow ? r->allow : "GET, HEAD");
    if (r->retry_after)
        MHD_add_response_header(m, MHD_HTTP_HEADER_RETRY_AFTER, "30");
    enum MHD_Result rc = MHD_queue_response(c, r->status, m);
    MHD_destroy_response(m);
    return rc;
}

/* The request's answer, counted and logged (its application and route, never its key
 * nor an enterprise id). */
static enum MHD_Result
answer(bg_api *api, struct MHD_Connection *c, const char *method, const char *url, api_conn *st)
{
    api_req rq = {.method = method, .path = url};
    api_resp r = {.status = 500};
    unsigned early = api_route_parse(method, url, &rq);
    st->answered = true;
    if (st->too_big && st->upload)
        api_problem(&r, 413, "too-large", "Upload too large", "a job's body is limited to %u bytes",
                    API_JOB_BODY_MAX);
    else if (st->too_big)
        api_problem(&r, 413, "too-large", "Request body too large",
                    "bodies are limited to %d bytes (only POST /v1/jobs takes one)",
                    BG_API_BODY_MAX);
    else if (st->failed)
        api_problem(&r, 500, "internal", "Internal error", "the upload could not be kept");
    else if (early == 405) {
        api_problem(&r, 405, "method-not-allowed", "Method not allowed", "use %s", rq.allow);
        r.allow_get = true;
        r.allow = rq.allow;
    } else if (early != 0)
        api_problem(&r, 404, "not-found", "No such resource", "see /v1/openapi.json");
    else {
        rq.authorization =
            MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
        rq.purpose = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "purpose");
        rq.auth_ref = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "auth_ref");
        rq.request = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "request");
        rq.peer = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "peer");
        rq.since = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "since");
        rq.until = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "until");
        rq.unwitnessed = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "unwitnessed");
        rq.if_none_match =
            MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH);
        rq.kind = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "kind");
        rq.list = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "list");
        rq.peers = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "peers");
        rq.format = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "format");
        rq.content_type =
            MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
        rq.accept = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT);
        rq.upload = st->upload && st->body > 0 ? st->upath : NULL;
        api_dispatch(api, &rq, &r);
    }
    double secs = since(&st->t0);
    api_metrics_note(api, rq.app, rq.route, r.status, secs);
    char m[24];
    bg_log(r.status >= 500 ? BG_LOG_WARN : BG_LOG_INFO, "api.request",
           "app=%s method=%s route=%s status=%u ms=%.1f", rq.app[0] ? rq.app : "-",
           bg_log_safe(method, strlen(method), m, sizeof m), route_text(rq.route), r.status,
           secs * 1000);
    return send_resp(c, &r);
}

/* The upload's file closed and removed (a job takes it by renaming it first). */
static void
upload_drop(api_conn *st)
{
    if (st->fd >= 0)
        close(st->fd);
    st->fd = -1;
    if (st->upath[0] != '\0')
        unlink(st->upath);
    st->upath[0] = '\0';
}

/* A POST to /v1/jobs: its body is streamed to a file under DATA/jobs. */
static bool
is_upload(const char *method, const char *url)
{
    api_req rq = {.method = method, .path = url};
    return api_route_parse(method, url, &rq) == 0 && rq.route == API_R_JOBS &&
           strcmp(method, "POST") == 0;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
           const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
    (void)version;
    bg_api *api = cls;
    api_conn *st = *con_cls;
    if (st == NULL) { /* headers read; the body, if any, comes next */
        if ((st = calloc(1, sizeof *st)) == NULL)
            return MHD_NO;
        st->fd = -1;
        clock_gettime(CLOCK_MONOTONIC, &st->t0);
        *con_cls = st;
        /* Only a caller with a valid key gets a file: others' bodies are discarded and
         * answered 401 at the end. */
        st->upload = api->jobs != NULL && is_upload(method, url) &&
                     api_key_valid(api, MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                                    MHD_HTTP_HEADER_AUTHORIZATION));
        uint64_t max = st->upload ? API_JOB_BODY_MAX : BG_API_BODY_MAX;
        const char *cl =
            MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl != NULL && strtoull(cl, NULL, 10) > max) {
            st->too_big = true; /* answered at once, the body never read */
            return answer(api, c, method, url, st);
        }
        return MHD_YES;
    }
    if (*upload_size != 0) {
        size_t n = *upload_size;
        *upload_size = 0; /* consumed: into the upload's file, or discarded */
        st->body += n;
        if (st->answered)
            return MHD_YES;
        /* MHD takes no answer while a body is still coming: the rest is read and
         * dropped, and the 413 goes at its end, unless it goes on for as long again
         * (then the connection is cut). */
        uint64_t max = st->upload ? API_JOB_BODY_MAX : BG_API_BODY_MAX;
        if (st->body > max) {
            st->too_big = true;
            upload_drop(st);
            return st->body > 2 * max ? MHD_NO : MHD_YES;
        }
        if (st->upload && st->upath[0] == '\0' && !st->failed) {
            bg_err err = {0};
            if (api_jobs_upload_open(api->jobs, st->upath, sizeof st->upath, &st->fd, &err) !=
                BG_OK) {
                bg_log(BG_LOG_ERROR, "api.upload_failed", "error=\"%s\"", err.msg);
                st->upath[0] = '\0';
                st->failed = true;
            }
        }
        if (st->upload && st->fd >= 0 && bg_file_write_all(st->fd, upload, n, -1) != 0) {
            bg_log(BG_LOG_ERROR, "api.upload_failed", "error=\"%s\"", strerror(errno));
            st->failed = true; /* answered as a 500 at the end */
        }
        return MHD_YES;
    }
    if (st->answered)
        return MHD_YES; /* answered already */
    if (st->too_big)
        return answer(api, c, method, url, st);
    if (st->fd >= 0 && close(st->fd) != 0)
        st->failed = true;
    st->fd = -1; /* the file stays for the job to take */
    enum MHD_Result rc = answer(api, c, method, url, st);
    upload_drop(st);
    return rc;
}

static void
on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
             enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    api_conn *st = *con_cls;
    if (st != NULL)
        upload_drop(st); /* a client that went away mid-upload leaves nothing */
    free(st);
    *con_cls = NULL;
}

/* libmicrohttpd's own messages; fmt is its printf format (said so for -Wformat-nonliteral). */
__attribute__((format(printf, 2, 0))) static void
on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[300], safe[300];
    vsnprintf(msg, sizeof msg, fmt, ap);
    msg[strcspn(msg, "\n")] = '\0';
    bg_log(BG_LOG_WARN, "api.http", "message=\"%s\"",
           bg_log_safe(msg, strlen(msg), safe, sizeof safe));
}

/* HOST:PORT ([v6]:PORT) resolved, numerically when it can be; into *ss. */
static int
resolve_listen(const char *listen, struct sockaddr_storage *ss, socklen_t *len, bg_err *err)
{
    char host[BG_CONFIG_URL_MAX];
    snprintf(host, sizeof host, "%s", listen);
    char *colon = strrchr(host, ':');
    if (colon == NULL)
        return bg_err_set(err, BG_EINVAL, "[api] listen '%s' is not HOST:PORT", listen);
    *colon = '\0';
    const char *port = colon + 1;
    char *h = host;
    if (h[0] == '[' && colon[-1] == ']') {
        h++;
        colon[-1] = '\0';
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV}, *ai = NULL;
    int rc = getaddrinfo(h, port, &hints, &ai);
    if (rc != 0)
        return bg_err_set(err, BG_EINVAL, "[api] listen '%s': %s", listen, gai_strerror(rc));
    memcpy(ss, ai->ai_addr, ai->ai_addrlen);
    *len = ai->ai_addrlen;
    freeaddrinfo(ai);
    return BG_OK;
}

static struct MHD_Daemon *
start_mhd(bg_api *api, const struct sockaddr_storage *ss)
{
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG;
    if (ss->ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    return MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, api, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
        MHD_OPTION_SOCK_ADDR, ss, MHD_OPTION_THREAD_POOL_SIZE, (unsigned)BG_API_THREADS,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)BG_API_MAX_CONNS, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        (unsigned)BG_API_PER_IP, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)BG_API_IDLE_S,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(2 * BG_API_HEADER_MAX),
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_END);
}

int
bg_api_start(bg_api **out, bg_gw *gw, const char *dir, bg_err *err)
{
    *out = NULL;
    char ini[BG_CONFIG_PATH_MAX + 16];
    bg_config cfg;
    int rc = bg_path_join(ini, sizeof ini, dir, BG_CONFIG_FILE, err);
    if (rc != BG_OK || (rc = bg_config_load(ini, &cfg, err)) != BG_OK)
        return rc;
    if (cfg.api_listen[0] == '\0')
        return BG_OK; /* off */
    struct sockaddr_storage ss;
    socklen_t sl = 0;
    if ((rc = resolve_listen(cfg.api_listen, &ss, &sl, err)) != BG_OK)
        return rc;
    bg_api *api = calloc(1, sizeof *api);
    if (api == NULL)
        return bg_err_set(err, BG_ENOMEM, "out of memory");
    api->gw = gw;
    pthread_mutex_init(&api->lock, NULL);
    snprintf(api->city, sizeof api->city, "%s", cfg.city);
    memcpy(api->cert_path, cfg.cert_path, sizeof api->cert_path);
    if ((rc = bg_path_join(api->keys_path, sizeof api->keys_path, cfg.data_dir, BG_APIKEYS_FILE,
                           err)) != BG_OK ||
        (rc = bg_path_join(api->audit_dir, sizeof api->audit_dir, cfg.data_dir, "audit", err)) !=
            BG_OK) {
        bg_api_stop(api);
        return rc;
    }
    if ((rc = api_jobs_open(&api->jobs, gw, cfg.data_dir, err)) != BG_OK) {
        bg_api_stop(api);
        return rc;
    }
    if ((api->daemon = start_mhd(api, &ss)) == NULL) {
        bg_api_stop(api);
        return bg_err_set(err, BG_EIO, "the HTTP API cannot listen on %s (in use, or not ours?)",
                          cfg.api_listen);
    }
    bg_log(BG_LOG_INFO, "api.listening", "listen=%s threads=%d max_connections=%d idle_s=%d",
           cfg.api_listen, BG_API_THREADS, BG_API_MAX_CONNS, BG_API_IDLE_S);
    *out = api;
    return BG_OK;
}

void
bg_api_stop(bg_api *api)
{
    if (api == NULL)
        return;
    if (api->daemon != NULL)
        MHD_stop_daemon(api->daemon);
    api_jobs_close(api->jobs); /* after the server: no call can reach them any more */
    bg_apikeys_free(&api->keys);
    pthread_mutex_destroy(&api->lock);
    free(api);
}
