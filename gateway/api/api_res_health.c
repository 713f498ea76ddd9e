/*
 * api_res_health.c - GET /healthz and GET /readyz (api_res.h).
 *
 * Liveness says only that the HTTP server answers: a load balancer restarting the
 * gateway because a peer is down would make things worse. Readiness says whether an
 * application sent here now would be answered: the gateway answers its local API, its
 * own standing is ok (a revoked, expired, unpinned or CRL-expired city is refused by
 * every peer), it publishes its lists, and its evidence log is open and writable (an
 * answer that cannot be logged is dropped, evidence.h).
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "gateway/api/api_json.h"
#include "gateway/api/api_local.h"
#include "gateway/api/api_res.h"
#include "gateway/api/api_resp.h"
#include "gateway/audit/audit.h"
#include "proto/pb.h"

#define RD_CHECKS 4
#define RD_DETAIL 200
#define RD_FREE_MIN (1024 * 1024) /* bytes: less, and the next appends may fail */

typedef struct rd_check {
    const char *name;
    bool ok;
    char detail[RD_DETAIL];
} rd_check;

void
api_res_healthz(bg_api *api, const api_req *rq, api_resp *r)
{
    (void)api, (void)rq;
    FILE *f = api_body_open(r);
    if (f != NULL)
        fprintf(f, "{\"status\":\"ok\"}\n");
    api_body_close(r, f, 200, API_JSON);
}

static void
check_standing(const Baygate__StatusAnswer *s, rd_check *c)
{
    c->name = "standing";
    c->ok = strcmp(s->standing, "ok") == 0;
    if (c->ok)
        snprintf(c->detail, RD_DETAIL, "ok");
    else
        snprintf(c->detail, RD_DETAIL, "our standing is '%.40s': peers refuse this gateway",
                 s->standing[0] ? s->standing : "unknown");
}

static void
check_lists(const Baygate__StatusAnswer *s, rd_check *c)
{
    c->name = "lists";
    c->ok = s->n_lists > 0;
    snprintf(c->detail, RD_DETAIL, "%zu lists published", s->n_lists);
    if (s->n_lists == 0)
        snprintf(c->detail, RD_DETAIL, "no list published yet (no import, or still building)");
    for (size_t i = 0; i < s->n_lists && c->ok; i++)
        if (s->lists[i]->published_ms <= 0) {
            c->ok = false;
            snprintf(c->detail, RD_DETAIL, "list %.40s is not published yet", s->lists[i]->list);
        }
}

/* The log open in the gateway, its directory and files writable by us (the gateway's
 * own process) on a file system mounted read-write with room left: otherwise answers
 * stop. Modes alone would not do: root may write whatever they say. */
static void
check_evidence(const bg_api *api, const Baygate__StatusAnswer *s, rd_check *c)
{
    static const char *const files[] = {"", "/" BG_AUDIT_LEAVES_FILE, "/" BG_AUDIT_HEADS_FILE};
    struct statvfs fs;
    c->name = "evidence";
    c->ok = s->evidence != NULL;
    snprintf(c->detail, RD_DETAIL, "%s", c->ok ? "writable" : "the evidence log is not open");
    for (size_t i = 0; i < sizeof files / sizeof files[0] && c->ok; i++) {
        char p[PATH_MAX];
        snprintf(p, sizeof p, "%s%s", api->audit_dir, files[i]);
        if (access(p, W_OK) != 0) {
            c->ok = false;
            snprintf(c->detail, RD_DETAIL, "the evidence log's %s is not writable",
                     i == 0 ? "directory" : files[i] + 1);
        }
    }
    if (c->ok && statvfs(api->audit_dir, &fs) == 0) {
        if (fs.f_flag & ST_RDONLY) {
            c->ok = false;
            snprintf(c->detail, RD_DETAIL, "the evidence log's file system is read-only");
        } else if ((unsigned long long)fs.f_bavail * fs.f_frsize < RD_FREE_MIN) {
            c->ok = false;
            snprintf(c->detail, RD_DETAIL, "the evidence log's disk is full (%llu bytes left)",
                     (unsigned long long)fs.f_bavail * fs.f_frsize);
        }
    }
}

void
api_res_readyz(bg_api *api, const api_req *rq, api_resp *r)
{
    (void)rq;
    bg_err err = {0};
    rd_check c[RD_CHECKS] = {{.name = "gateway", .ok = true}};
    Baygate__LocalAnswer *a = api_local_status(api->gw, &err);
    size_t n = 1;
    if (a == NULL) {
        c[0].ok = false;
        snprintf(c[0].detail, RD_DETAIL, "the gateway does not answer: %.150s", err.msg);
    } else {
        snprintf(c[0].detail, RD_DETAIL, "answers");
        check_standing(a->status, &c[n++]);
        check_lists(a->status, &c[n++]);
        check_evidence(api, a->status, &c[n++]);
    }
    bg_pb_free(a);
    char why[RD_CHECKS * (RD_DETAIL + 2)] = "";
    for (size_t i = 0; i < n; i++)
        if (!c[i].ok)
            snprintf(why + strlen(why), sizeof why - strlen(why), "%s%s", why[0] ? "; " : "",
                     c[i].detail);
    bool ready = why[0] == '\0';
    FILE *f = ready ? api_body_open(r)
                    : api_problem_open(r, 503, "not-ready", "The gateway is not ready", why);
    if (f == NULL)
        return;
    fprintf(f, "%s\"ready\":%s,\"checks\":[", ready ? "{" : ",", ready ? "true" : "false");
    for (size_t i = 0; i < n; i++) {
        fprintf(f, "%s{", i ? "," : "");
        bg_api_json_kv(f, "check", c[i].name, false);
        fprintf(f, ",\"ok\":%s", c[i].ok ? "true" : "false");
        bg_api_json_kv(f, "detail", c[i].detail, true);
        fprintf(f, "}");
    }
    fprintf(f, "]");
    if (ready) {
        fprintf(f, "}\n");
        api_body_close(r, f, 200, API_JSON);
    } else {
        api_problem_close(r, f, 503);
    }
}
