/*
 * api_jobs.c - jobs on disk and their workers (api_jobs.h).
 */
#include "gateway/api/api_jobs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/file.h"
#include "gateway/api/api_json.h"
#include "gateway/api/api_local.h"
#include "gateway/api/api_rows.h"
#include "gateway/daemon/log.h"
#include "proto/pb.h"

#define JOB_FILE "job"
#define JOB_FILE_MAX (64U * 1024)
#define IDS_FILE "ids"

struct api_jobs {
    bg_gw *gw;
    char dir[PATH_MAX - 128]; /* DATA/jobs; room below it for a job's files */
    pthread_mutex_t lock;     /* everything below */
    pthread_cond_t wake;
    bool stopping;
    api_job *v[API_JOBS_KEEP]; /* in the order made */
    size_t n;
    pthread_t th[API_JOBS_WORKERS];
    size_t nth;
};

static const char *const state_names[API_JOB_NSTATES] = {"queued", "running",   "done",
                                                         "failed", "cancelled", "lost"};
static const char *const kind_names[] = {"?", "membership", "grades", "count"};
static const char *const peer_state_names[] = {"pending", "answered", "error"};

const char *
api_job_state_name(api_job_state s)
{
    return s < API_JOB_NSTATES ? state_names[s] : "?";
}

const char *
api_job_kind_name(api_job_kind k)
{
    return k >= API_JOB_MEMBERSHIP && k <= API_JOB_COUNT ? kind_names[k] : "?";
}

static bool
finished(const api_job *job)
{
    return job->state >= API_JOB_DONE;
}

/* s into out as one printable line (a peer's message may hold anything). */
static void
one_line(char *out, size_t outsz, const char *s)
{
    size_t n = 0;
    for (; s != NULL && *s && n + 1 < outsz; s++)
        out[n++] = (unsigned char)*s < 0x20 || *s == 0x7f ? ' ' : *s;
    out[n] = '\0';
}

static int
job_path(const api_jobs *j, const char *id, const char *file, char *out, size_t outsz, bg_err *err)
{
    int n = file ? snprintf(out, outsz, "%s/%s/%s", j->dir, id, file)
                 : snprintf(out, outsz, "%s/%s", j->dir, id);
    if (n < 0 || (size_t)n >= outsz)
        return bg_err_set(err, BG_ELIMIT, "the jobs directory's path is too long");
    return BG_OK;
}

/* ------------------------------------------------------------- the job file */

/* job's state file, replaced crash-safe; under j->lock. */
static int
job_save(const api_jobs *j, const api_job *job, bg_err *err)
{
    char *buf = NULL, hex[2 * API_JOB_AUTH_MAX + 1];
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (f == NULL)
        return bg_err_set(err, BG_ENOMEM, "out of memory");
    sodium_bin2hex(hex, sizeof hex, job->auth, job->auth_len);
    fprintf(f,
            "id %s\napp %s\nkind %s\nlist %s\npurpose %s\nauth %s\nall %d\nstate %s\n"
            "created %" PRId64 "\nstarted %" PRId64 "\nfinished %" PRId64 "\nids %zu\n"
            "invalid %zu\npeers_done %zu\nerror %s\n",
            job->id, job->app, api_job_kind_name(job->kind), job->list, job->purpose,
            job->auth_len ? hex : "-", job->all, api_job_state_name(job->state), job->created_ms,
            job->started_ms, job->finished_ms, job->ids, job->invalid, job->peers_done, job->error);
    for (size_t i = 0; i < job->npeers; i++) {
        const api_job_peer *p = &job->peers[i];
        fprintf(f, "peer %s %s %s %s\n", p->city, peer_state_names[p->state],
                p->request_id[0] ? p->request_id : "-", p->reason);
    }
    bool bad = ferror(f) != 0;
    if (fclose(f) != 0 || bad) {
        free(buf);
        return bg_err_set(err, BG_ENOMEM, "out of memory");
    }
    char path[PATH_MAX];
    int rc = job_path(j, job->id, JOB_FILE, path, sizeof path, err);
    if (rc == BG_OK)
        rc = bg_file_write_replace(path, buf, len, 0600, err);
    free(buf);
    return rc;
}

/* Saves job, logging a failure (the state in memory stays right). */
static void
job_keep(const api_jobs *j, const api_job *job)
{
    bg_err err = {0};
    if (job_save(j, job, &err) != BG_OK)
        bg_log(BG_LOG_ERROR, "api.job_unsaved", "job=%s error=\"%s\"", job->id, err.msg);
}

static int
name_index(const char *const *names, int n, const char *s)
{
    for (int i = 0; i < n; i++)
        if (strcmp(names[i], s) == 0)
            return i;
    return -1;
}

static bool
parse_num(const char *s, int64_t *v)
{
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || x < 0)
        return false;
    *v = x;
    return true;
}

/* One "key value" line of a job file into job; false if it is not one. */
static bool
parse_line(char *line, api_job *job)
{
    char *v = strchr(line, ' ');
    if (v == NULL)
        return false;
    *v++ = '\0';
    int64_t x = 0;
    if (strcmp(line, "peer") == 0) {
        if (job->npeers == BG_ROSTER_MAX_MEMBERS)
            return false;
        api_job_peer *p = &job->peers[job->npeers];
        char *st = strchr(v, ' '), *rid = st ? strchr(st + 1, ' ') : NULL,
             *why = rid ? strchr(rid + 1, ' ') : NULL;
        if (why == NULL || st - v != 6)
            return false;
        *st++ = *rid++ = *why++ = '\0';
        int s = name_index(peer_state_names, 3, st);
        if (s < 0 || strlen(rid) > 32)
            return false;
        snprintf(p->city, sizeof p->city, "%s", v);
        p->state = (api_peer_state)s;
        snprintf(p->request_id, sizeof p->request_id, "%s", strcmp(rid, "-") ? rid : "");
        snprintf(p->reason, sizeof p->reason, "%s", why);
        job->npeers++;
        return true;
    }
    static const char *const texts[] = {"app", "list", "purpose", "error"};
    char *dst[] = {job->app, job->list, job->purpose, job->error};
    size_t dsz[] = {sizeof job->app, sizeof job->list, sizeof job->purpose, sizeof job->error};
    int t = name_index(texts, 4, line);
    if (t >= 0) {
        snprintf(dst[t], dsz[t], "%s", v);
        return true;
    }
    if (strcmp(line, "id") == 0)
        return snprintf(job->id, sizeof job->id, "%s", v) == API_JOB_ID_LEN;
    if (strcmp(line, "kind") == 0) {
        int k = name_index(kind_names, 4, v);
        job->kind = (api_job_kind)k;
        return k >= 1;
    }
    if (strcmp(line, "state") == 0) {
        int s = name_index(state_names, API_JOB_NSTATES, v);
        job->state = (api_job_state)s;
        return s >= 0;
    }
    if (strcmp(line, "auth") == 0)
        return strcmp(v, "-") == 0 || sodium_hex2bin(job->auth, sizeof job->auth, v, strlen(v),
                                                     NULL, &job->auth_len, NULL) == 0;
    static const char *const nums[] = {"all", "created", "started",   "finished",
                                       "ids", "invalid", "peers_done"};
    int k = name_index(nums, 7, line);
    if (k < 0 || !parse_num(v, &x))
        return false;
    switch (k) {
    case 0:
        job->all = x != 0;
        break;
    case 1:
        job->created_ms = x;
        break;
    case 2:
        job->started_ms = x;
        break;
    case 3:
        job->finished_ms = x;
        break;
    case 4:
        job->ids = (size_t)x;
        break;
    case 5:
        job->invalid = (size_t)x;
        break;
    default:
        job->peers_done = (size_t)x;
        break;
    }
    return true;
}

/* The job in directory id, read back; BG_EINVAL naming the line for anything wrong. */
static int
job_load(const api_jobs *j, const char *id, api_job *job, bg_err *err)
{
    char path[PATH_MAX];
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = job_path(j, id, JOB_FILE, path, sizeof path, err);
    if (rc != BG_OK || (rc = bg_file_read(path, JOB_FILE_MAX, &buf, &len, NULL, err)) != BG_OK)
        return rc;
    memset(job, 0, sizeof *job);
    char *save = NULL;
    size_t lineno = 0;
    for (char *line = strtok_r((char *)buf, "\n", &save); line != NULL && rc == BG_OK;
         line = strtok_r(NULL, "\n", &save)) {
        lineno++;
        if (!parse_line(line, job))
            rc = bg_err_set(err, BG_EINVAL, "%s:%zu: not a job line", path, lineno);
    }
    free(buf);
    if (rc == BG_OK && strcmp(job->id, id) != 0)
        rc = bg_err_set(err, BG_EINVAL, "%s: the id is not its directory's", path);
    return rc;
}

/* ------------------------------------------------------------- the directory */

/* Every file of directory path, then path itself. */
static void
remove_dir(const char *path)
{
    DIR *d = opendir(path);
    if (d != NULL) {
        struct dirent *e;
        char p[PATH_MAX];
        while ((e = readdir(d)) != NULL)
            if (e->d_name[0] != '.' &&
                snprintf(p, sizeof p, "%s/%s", path, e->d_name) < (int)sizeof p)
                unlink(p);
        closedir(d);
    }
    rmdir(path);
}

/* Forgets job i and removes its directory; under j->lock. */
static void
job_drop(api_jobs *j, size_t i)
{
    char path[PATH_MAX];
    if (job_path(j, j->v[i]->id, NULL, path, sizeof path, NULL) == BG_OK)
        remove_dir(path);
    free(j->v[i]);
    memmove(&j->v[i], &j->v[i + 1], (j->n - i - 1) * sizeof *j->v);
    j->n--;
}

/* Finished jobs past their age go, then the oldest finished until room is left for
 * `room` more; under j->lock. */
static void
expire(api_jobs *j, size_t room)
{
    int64_t cutoff = bg_clock_wall_ms() - (int64_t)API_JOBS_MAX_AGE_S * 1000;
    for (size_t i = 0; i < j->n;) {
        const api_job *job = j->v[i];
        bool old = finished(job) && job->finished_ms < cutoff;
        bool crowded = finished(job) && j->n + room > API_JOBS_KEEP;
        if (old || crowded) {
            bg_log(BG_LOG_INFO, "api.job_expired", "job=%s app=%s", job->id, job->app);
            job_drop(j, i);
        } else {
            i++;
        }
    }
}

static int
cmp_created(const void *a, const void *b)
{
    const api_job *x = *(api_job *const *)a, *y = *(api_job *const *)b;
    return x->created_ms < y->created_ms ? -1 : x->created_ms > y->created_ms;
}

static bool
is_job_id(const char *s)
{
    size_t n = strspn(s, "0123456789abcdef");
    return n == API_JOB_ID_LEN && s[n] == '\0';
}

/* Every job directory read back; uploads left by a stop are removed. */
static int
jobs_load(api_jobs *j, bg_err *err)
{
    DIR *d = opendir(j->dir);
    if (d == NULL)
        return bg_err_set(err, BG_EIO, "cannot read %s: %s", j->dir, strerror(errno));
    struct dirent *e;
    char p[PATH_MAX];
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, "upload-", 7) == 0 &&
            snprintf(p, sizeof p, "%s/%s", j->dir, e->d_name) < (int)sizeof p) {
            unlink(p);
            continue;
        }
        if (!is_job_id(e->d_name))
            continue;
        bg_err le = {0};
        api_job *job = malloc(sizeof *job);
        if (job == NULL) {
            closedir(d);
            return bg_err_set(err, BG_ENOMEM, "out of memory");
        }
        if (job_load(j, e->d_name, job, &le) != BG_OK) {
            bg_log(BG_LOG_WARN, "api.job_unreadable", "job=%s error=\"%s\"", e->d_name, le.msg);
            free(job);
            continue;
        }
        if (j->n == API_JOBS_KEEP) {
            free(job);
            continue;
        }
        if (job->state == API_JOB_RUNNING) {
            job->state = API_JOB_LOST;
            job->finished_ms = bg_clock_wall_ms();
            snprintf(job->error, sizeof job->error,
                     "the gateway stopped while the job ran; its results were not kept "
                     "(submit it again)");
            job_keep(j, job);
            bg_log(BG_LOG_WARN, "api.job_lost", "job=%s app=%s", job->id, job->app);
        }
        j->v[j->n++] = job;
    }
    closedir(d);
    qsort(j->v, j->n, sizeof *j->v, cmp_created);
    expire(j, 0);
    return BG_OK;
}

/* ------------------------------------------------------------- running */

/* Opens DIR/ID/name.tmp for writing (0600, emptied). */
static FILE *
open_tmp(const api_jobs *j, const char *id, const char *name, char *path, size_t pathsz)
{
    char file[64];
    snprintf(file, sizeof file, "%s.tmp", name);
    if (job_path(j, id, file, path, pathsz, NULL) != BG_OK)
        return NULL;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    FILE *f = fd < 0 ? NULL : fdopen(fd, "w");
    if (f == NULL && fd >= 0)
        close(fd);
    return f;
}

/* Closes f (tmp) and, if keep, renames it into place as name, crash-safe. */
static int
close_tmp(const api_jobs *j, const char *id, FILE *f, const char *tmp, const char *name, bool keep,
          bg_err *err)
{
    bool bad = f == NULL || fflush(f) != 0 || ferror(f) != 0 || (keep && fsync(fileno(f)) != 0);
    int e = errno;
    if (f != NULL && fclose(f) != 0)
        bad = true;
    if (!keep || bad) {
        unlink(tmp);
        return keep ? bg_err_set(err, BG_EIO, "cannot write %s: %s", tmp, strerror(e)) : BG_OK;
    }
    char path[PATH_MAX];
    int rc = job_path(j, id, name, path, sizeof path, err);
    if (rc != BG_OK)
        return rc;
    if (rename(tmp, path) != 0)
        return bg_err_set(err, BG_EIO, "cannot rename %s: %s", tmp, strerror(errno));
    return bg_file_sync_parent(path, err);
}

/* Every peer of the roster into job (peers "all"). */
static int
resolve_all(api_jobs *j, api_job *job, bg_err *err)
{
    Baygate__LocalAnswer *st = api_local_status(j->gw, err);
    if (st == NULL)
        return BG_EIO;
    pthread_mutex_lock(&j->lock);
    job->npeers = 0;
    for (size_t i = 0; i < st->status->n_peers && job->npeers < BG_ROSTER_MAX_MEMBERS; i++) {
        api_job_peer *p = &job->peers[job->npeers++];
        memset(p, 0, sizeof *p);
        snprintf(p->city, sizeof p->city, "%.6s", st->status->peers[i]->city);
    }
    job_keep(j, job);
    pthread_mutex_unlock(&j->lock);
    bg_pb_free(st);
    return job->npeers > 0 ? BG_OK : bg_err_set(err, BG_EINVAL, "the roster names no peer");
}

/* Asks peer i of job about ids, writes its rows, notes its outcome. */
static void
ask_peer(api_jobs *j, api_job *job, size_t i, const bg_api_ids *ids, FILE *csv, FILE *json,
         bool *first)
{
    api_job_peer *jp = &job->peers[i];
    char *peer = jp->city;
    Baygate__LocalRequest req = BAYGATE__LOCAL_REQUEST__INIT;
    Baygate__LocalQuery lq = BAYGATE__LOCAL_QUERY__INIT;
    lq.n_peers = 1;
    lq.peers = &peer;
    lq.list = job->list;
    lq.purpose = job->purpose;
    lq.n_ids = ids->n;
    lq.ids = ids->ids;
    lq.mode = (uint32_t)job->kind;
    lq.authorisation_ref.data = job->auth;
    lq.authorisation_ref.len = job->auth_len;
    lq.application = job->app; /* our evidence says which application asked */
    req.op_case = BAYGATE__LOCAL_REQUEST__OP_QUERY;
    req.query = &lq;
    bg_err err = {0};
    Baygate__LocalAnswer *ans = api_local_ask(j->gw, &req, &err);
    /* A refusal of the whole request (or no answer) is this peer's error: its rows say
     * so, one per id, like a peer that failed. */
    Baygate__PeerQueryResult fake = BAYGATE__PEER_QUERY_RESULT__INIT, *fp = &fake;
    Baygate__QueryAnswer fqa = BAYGATE__QUERY_ANSWER__INIT;
    const Baygate__QueryAnswer *qa = NULL;
    if (ans != NULL && ans->error_code == 0 && ans->query != NULL && ans->query->n_peers == 1) {
        qa = ans->query;
    } else {
        fake.peer = peer;
        fake.error = ans == NULL                   ? err.msg
                     : ans->error && ans->error[0] ? ans->error
                                                   : (char *)"no result in the answer";
        fqa.list = job->list;
        fqa.mode = (uint32_t)job->kind;
        fqa.n_peers = 1;
        fqa.peers = &fp;
        qa = &fqa;
    }
    const Baygate__PeerQueryResult *p = qa->peers[0];
    bg_api_csv_rows(csv, qa, ids, false);
    bg_api_json_rows(json, qa, ids, first);
    pthread_mutex_lock(&j->lock);
    jp->state = p->ok ? API_PEER_ANSWERED : API_PEER_ERROR;
    one_line(jp->reason, sizeof jp->reason, p->ok ? "" : p->error);
    bg_api_request_hex(p, jp->request_id);
    job->peers_done++;
    job_keep(j, job);
    pthread_mutex_unlock(&j->lock);
    bg_pb_free(ans);
}

/* The job's end: state (and why), saved and logged; under j->lock. */
static void
job_end(api_jobs *j, api_job *job, api_job_state st, const char *why)
{
    job->state = st;
    job->finished_ms = bg_clock_wall_ms();
    one_line(job->error, sizeof job->error, why);
    job_keep(j, job);
    bg_log(st == API_JOB_DONE || st == API_JOB_CANCELLED ? BG_LOG_INFO : BG_LOG_WARN, "api.job_end",
           "job=%s app=%s state=%s peers_done=%zu peers=%zu ms=%" PRId64, job->id, job->app,
           api_job_state_name(st), job->peers_done, job->npeers,
           job->finished_ms - job->started_ms);
}

/* The ids, each peer in turn, the results; the state it ends in and why (err). */
static api_job_state
job_work(api_jobs *j, api_job *job, bg_err *err)
{
    char path[PATH_MAX], csv_tmp[PATH_MAX], json_tmp[PATH_MAX];
    bg_api_ids ids = {0};
    if (job_path(j, job->id, IDS_FILE, path, sizeof path, err) != BG_OK)
        return API_JOB_FAILED;
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        bg_err_set(err, BG_EIO, "the job's ids are gone: %s", strerror(errno));
        return API_JOB_FAILED;
    }
    int rc = bg_api_ids_read(f, "ids", &ids, err);
    fclose(f);
    if (rc == BG_OK) {
        pthread_mutex_lock(&j->lock);
        job->ids = ids.n;
        job->invalid = ids.ninvalid;
        pthread_mutex_unlock(&j->lock);
    }
    if (rc != BG_OK || (job->all && resolve_all(j, job, err) != BG_OK)) {
        bg_api_ids_free(&ids);
        return API_JOB_FAILED;
    }
    FILE *csv = open_tmp(j, job->id, "results.csv", csv_tmp, sizeof csv_tmp);
    FILE *json = open_tmp(j, job->id, "results.json", json_tmp, sizeof json_tmp);
    api_job_state st = API_JOB_DONE;
    if (csv == NULL || json == NULL) {
        bg_err_set(err, BG_EIO, "cannot write the job's results: %s", strerror(errno));
        st = API_JOB_FAILED;
    } else {
        fputs(BG_API_CSV_HEADER, csv);
        fprintf(json, "{\"job\":\"%s\",\"kind\":\"%s\"", job->id, api_job_kind_name(job->kind));
        bg_api_json_kv(json, "list", job->list, true);
        bg_api_json_kv(json, "purpose", job->purpose, true);
        fprintf(json, ",\"rows\":[");
    }
    bool first = true;
    for (size_t i = 0; i < job->npeers && st == API_JOB_DONE; i++) {
        pthread_mutex_lock(&j->lock);
        if (job->cancel)
            st = API_JOB_CANCELLED;
        else if (j->stopping)
            st = API_JOB_LOST;
        pthread_mutex_unlock(&j->lock);
        if (st == API_JOB_DONE)
            ask_peer(j, job, i, &ids, csv, json, &first);
    }
    bg_api_ids_free(&ids);
    if (json != NULL)
        fputs("]}\n", json);
    bool keep = st == API_JOB_DONE;
    if (st == API_JOB_LOST)
        bg_err_set(err, BG_EABORTED,
                   "the gateway stopped while the job ran; its results were not kept "
                   "(submit it again)");
    if (close_tmp(j, job->id, csv, csv_tmp, "results.csv", keep, err) != BG_OK ||
        close_tmp(j, job->id, json, json_tmp, "results.json", keep, err) != BG_OK)
        st = API_JOB_FAILED;
    return st;
}

static void *
worker(void *arg)
{
    api_jobs *j = arg;
    pthread_mutex_lock(&j->lock);
    for (;;) {
        api_job *job = NULL;
        for (size_t i = 0; i < j->n && job == NULL; i++)
            if (j->v[i]->state == API_JOB_QUEUED)
                job = j->v[i];
        if (j->stopping)
            break;
        if (job == NULL) {
            pthread_cond_wait(&j->wake, &j->lock);
            continue;
        }
        job->state = API_JOB_RUNNING;
        job->started_ms = bg_clock_wall_ms();
        job_keep(j, job);
        bg_log(BG_LOG_INFO, "api.job_start",
               "job=%s app=%s kind=%s list=%s purpose=%s ids=%zu peers=%s", job->id, job->app,
               api_job_kind_name(job->kind), job->list, job->purpose, job->ids,
               job->all ? "all" : "given");
        pthread_mutex_unlock(&j->lock);
        bg_err err = {0};
        api_job_state st = job_work(j, job, &err);
        pthread_mutex_lock(&j->lock);
        job_end(j, job, st, st == API_JOB_DONE || st == API_JOB_CANCELLED ? "" : err.msg);
        expire(j, 0);
    }
    pthread_mutex_unlock(&j->lock);
    return NULL;
}

/* ------------------------------------------------------------- the interface */

int
api_jobs_open(api_jobs **out, bg_gw *gw, const char *data_dir, bg_err *err)
{
    *out = NULL;
    api_jobs *j = calloc(1, sizeof *j);
    if (j == NULL)
        return bg_err_set(err, BG_ENOMEM, "out of memory");
    j->gw = gw;
    pthread_mutex_init(&j->lock, NULL);
    pthread_cond_init(&j->wake, NULL);
    int rc = bg_path_join(j->dir, sizeof j->dir, data_dir, "jobs", err);
    if (rc == BG_OK && mkdir(j->dir, 0700) != 0 && errno != EEXIST)
        rc = bg_err_set(err, BG_EIO, "cannot make %s: %s", j->dir, strerror(errno));
    if (rc == BG_OK)
        rc = jobs_load(j, err);
    for (; rc == BG_OK && j->nth < API_JOBS_WORKERS; j->nth++)
        if (pthread_create(&j->th[j->nth], NULL, worker, j) != 0)
            rc = bg_err_set(err, BG_ENOMEM, "cannot start the jobs' workers");
    if (rc != BG_OK) {
        api_jobs_close(j);
        return rc;
    }
    *out = j;
    return BG_OK;
}

void
api_jobs_close(api_jobs *j)
{
    if (j == NULL)
        return;
    pthread_mutex_lock(&j->lock);
    j->stopping = true;
    pthread_cond_broadcast(&j->wake);
    pthread_mutex_unlock(&j->lock);
    for (size_t i = 0; i < j->nth; i++)
        pthread_join(j->th[i], NULL);
    for (size_t i = 0; i < j->n; i++)
        free(j->v[i]);
    pthread_cond_destroy(&j->wake);
    pthread_mutex_destroy(&j->lock);
    free(j);
}

int
api_jobs_upload_open(api_jobs *j, char *path, size_t pathsz, int *fd, bg_err *err)
{
    int n = snprintf(path, pathsz, "%s/upload-XXXXXX", j->dir);
    if (n < 0 || (size_t)n >= pathsz)
        return bg_err_set(err, BG_ELIMIT, "the jobs directory's path is too long");
    if ((*fd = mkstemp(path)) < 0 || fcntl(*fd, F_SETFD, FD_CLOEXEC) != 0)
        return bg_err_set(err, BG_EIO, "cannot make an upload file in %s: %s", j->dir,
                          strerror(errno));
    return BG_OK;
}

int
api_jobs_submit(api_jobs *j, api_job *job, const char *ids_path, bg_err *err)
{
    uint8_t r[API_JOB_ID_LEN / 2];
    randombytes_buf(r, sizeof r);
    sodium_bin2hex(job->id, sizeof job->id, r, sizeof r);
    job->state = API_JOB_QUEUED;
    job->created_ms = bg_clock_wall_ms();
    job->started_ms = job->finished_ms = 0;
    job->peers_done = 0;
    job->error[0] = '\0';
    job->cancel = false;
    pthread_mutex_lock(&j->lock);
    size_t queued = 0;
    for (size_t i = 0; i < j->n; i++)
        queued += j->v[i]->state == API_JOB_QUEUED;
    expire(j, 1);
    int rc = BG_OK;
    char dir[PATH_MAX], ids[PATH_MAX];
    api_job *copy = NULL;
    if (queued >= API_JOBS_QUEUE || j->n == API_JOBS_KEEP)
        rc = bg_err_set(err, BG_ELIMIT, "%zu jobs are waiting already (at most %d); try later",
                        queued, API_JOBS_QUEUE);
    else if ((copy = malloc(sizeof *copy)) == NULL)
        rc = bg_err_set(err, BG_ENOMEM, "out of memory");
    else if ((rc = job_path(j, job->id, NULL, dir, sizeof dir, err)) == BG_OK &&
             (rc = job_path(j, job->id, IDS_FILE, ids, sizeof ids, err)) == BG_OK) {
        if (mkdir(dir, 0700) != 0)
            rc = bg_err_set(err, BG_EIO, "cannot make %s: %s", dir, strerror(errno));
        else if (rename(ids_path, ids) != 0)
            rc = bg_err_set(err, BG_EIO, "cannot move the upload: %s", strerror(errno));
        else if ((rc = bg_file_sync_parent(ids, err)) == BG_OK)
            rc = job_save(j, job, err);
        if (rc != BG_OK)
            remove_dir(dir);
    }
    if (rc == BG_OK) {
        *copy = *job;
        j->v[j->n++] = copy;
        pthread_cond_signal(&j->wake);
        bg_log(BG_LOG_INFO, "api.job_queued", "job=%s app=%s kind=%s list=%s purpose=%s ids=%zu",
               job->id, job->app, api_job_kind_name(job->kind), job->list, job->purpose, job->ids);
    } else {
        free(copy);
    }
    pthread_mutex_unlock(&j->lock);
    return rc;
}

/* app's job id, under j->lock; NULL if none. */
static api_job *
find(api_jobs *j, const char *id, const char *app)
{
    for (size_t i = 0; i < j->n; i++)
        if (strcmp(j->v[i]->id, id) == 0 && strcmp(j->v[i]->app, app) == 0)
            return j->v[i];
    return NULL;
}

bool
api_jobs_get(api_jobs *j, const char *id, const char *app, api_job *out)
{
    pthread_mutex_lock(&j->lock);
    api_job *job = find(j, id, app);
    if (job != NULL)
        *out = *job;
    pthread_mutex_unlock(&j->lock);
    return job != NULL;
}

int
api_jobs_list(api_jobs *j, const char *app, api_job **out, size_t *n, bg_err *err)
{
    *n = 0;
    pthread_mutex_lock(&j->lock);
    *out = malloc((j->n ? j->n : 1) * sizeof **out);
    for (size_t i = j->n; *out != NULL && i-- > 0;)
        if (strcmp(j->v[i]->app, app) == 0)
            (*out)[(*n)++] = *j->v[i];
    pthread_mutex_unlock(&j->lock);
    return *out != NULL ? BG_OK : bg_err_set(err, BG_ENOMEM, "out of memory");
}

int
api_jobs_cancel(api_jobs *j, const char *id, const char *app, api_job *out, bg_err *err)
{
    int rc = BG_OK;
    pthread_mutex_lock(&j->lock);
    api_job *job = find(j, id, app);
    if (job == NULL)
        rc = bg_err_set(err, BG_ENOTFOUND, "no job %s of application '%s'", id, app);
    else if (finished(job))
        rc = bg_err_set(err, BG_EEXIST, "job %s has ended already (%s)", id,
                        api_job_state_name(job->state));
    else if (job->state == API_JOB_QUEUED)
        job_end(j, job, API_JOB_CANCELLED, "");
    else
        job->cancel = true; /* the worker ends it after the peer in flight */
    if (job != NULL)
        *out = *job;
    pthread_mutex_unlock(&j->lock);
    return rc;
}

int
api_jobs_results_path(api_jobs *j, const char *id, bool csv, char *out, size_t outsz, bg_err *err)
{
    return job_path(j, id, csv ? "results.csv" : "results.json", out, outsz, err);
}
