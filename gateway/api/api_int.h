/*
 * api_int.h - what the HTTP API's files share (data only): the server, a request as
 * routed, a response. Files by height: api_keys, api_json, api_local, api_console_files
 * (0); api_resp (1); api_openapi, api_metrics, api_res_*, api_console (2); api_route (3);
 * api_server (4). api_json is the one file the CLI calls into.
 */
#ifndef BG_API_INT_H
#define BG_API_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "gateway/api/api.h"
#include "gateway/api/api_keys.h"
#include "gateway/config/config.h"
#include "gateway/daemon/gw.h"

typedef enum {
    API_R_NONE,
    API_R_STATUS,
    API_R_LOOKUP,
    API_R_OPENAPI,
    API_R_METRICS,
    API_R_HEALTHZ,
    API_R_READYZ,
    API_R_EV_HEAD,
    API_R_EV_FIND,
    API_R_EV_BUNDLE,
    API_R_KEY,
    API_R_CONSOLE,
    API_R_JOBS,        /* /v1/jobs: GET the caller's, POST a new one */
    API_R_JOB,         /* /v1/jobs/{id}: GET, DELETE */
    API_R_JOB_RESULTS, /* /v1/jobs/{id}/results */
    API_R_COUNT
} api_route_id;

#define API_SEG_MAX 64   /* the {uscc} path segment kept (longer is refused as too long) */
#define API_APPS_MAX 256 /* applications counted by name in the metrics (then "other") */
#define API_LAT_BUCKETS 12

/* One request as the router sees it. */
typedef struct api_req {
    const char *method, *path;
    const char *authorization; /* the header, or NULL */
    const char *purpose, *auth_ref;
    const char *request, *peer, *since, *until, *unwitnessed; /* evidence queries */
    const char *if_none_match;                                /* the header, or NULL */
    const char *kind, *list, *peers, *format;                 /* jobs' parameters */
    const char *content_type, *accept;                        /* the headers, or NULL */
    const char *upload; /* POST /v1/jobs: the body's file, or NULL */
    const char *allow;  /* the route's methods (405's Allow) */
    api_route_id route;
    bool redirect;                    /* "/console" without its slash */
    char seg[API_SEG_MAX + 2];        /* {uscc}, {request_id} or the console file, raw;
                                         API_SEG_MAX + 1 bytes: too long */
    char app[BG_APIKEY_NAME_MAX + 1]; /* who asked, once authenticated ("" before) */
} api_req;

/* One response: status, a static content type, a malloc'd body. */
typedef struct api_resp {
    unsigned status;
    const char *ctype;
    char *body;
    size_t len;
    bool challenge;    /* WWW-Authenticate: Bearer */
    bool allow_get;    /* Allow: allow, or GET and HEAD (405) */
    const char *allow; /* static, or NULL */
    bool retry_after;  /* Retry-After (503: busy) */
    bool has_fd;       /* the body is fd's fd_len bytes (a file), not body */
    int fd;
    uint64_t fd_len;
    char loc[96];         /* a Location made for this answer (location points here) */
    bool revalidate;      /* Cache-Control: no-cache (with the ETag), not no-store */
    const char *etag;     /* static, or NULL */
    const char *location; /* static, or NULL */
} api_resp;

/* Requests by application, route and status; latency by route. */
typedef struct api_count {
    char app[BG_APIKEY_NAME_MAX + 1];
    api_route_id route;
    unsigned status;
    uint64_t n;
} api_count;

typedef struct api_usage {
    char app[BG_APIKEY_NAME_MAX + 1];
    int32_t day;
    uint64_t used;
} api_usage;

struct bg_api {
    bg_gw *gw;
    void *daemon; /* struct MHD_Daemon */
    char keys_path[1024];
    char audit_dir[BG_CONFIG_PATH_MAX + 8]; /* the evidence log, read-only from here */
    char cert_path[BG_CONFIG_PATH_MAX];     /* city.crt, read when a bundle needs it */
    char city[7];
    pthread_mutex_t lock; /* everything below */
    bg_apikeys keys;
    ino_t keys_ino;
    struct timespec keys_mtime;
    off_t keys_size;
    bool keys_loaded;
    api_count counts[API_APPS_MAX];
    size_t ncounts;
    uint64_t lat[API_R_COUNT][API_LAT_BUCKETS + 1]; /* cumulative at render time */
    double lat_sum[API_R_COUNT];
    uint64_t lat_n[API_R_COUNT];
    api_usage usage[API_APPS_MAX];
    size_t nusage;
    uint64_t refused_conns; /* connections over the limits */
    struct api_jobs *jobs;  /* batch queries (api_jobs.h; its own lock) */
};

#endif
