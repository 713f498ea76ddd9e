/*
 * api_jobs.h - batch queries as jobs: kept on disk, run on a small bounded worker.
 *
 * A job is one list asked of some peers (or every peer of the roster) about the ids of
 * one uploaded file: membership, grades or a count. It runs as the CLI's streaming
 * query does, one local Query per peer through the daemon's local API (in-process),
 * the peers in turn, so its progress is the peers done of the total; a peer that fails
 * gets an error row per id, the others are answered. At most API_JOBS_WORKERS run at
 * once and API_JOBS_QUEUE wait (more is refused: BG_ELIMIT), so a huge job never
 * holds up the API's other calls, which run on the server's own threads.
 *
 * On disk, under DATA/jobs/ (0700), one directory per job (0700, files 0600): "job",
 * its state (rewritten crash-safe at every change), "ids" as uploaded, and once done
 * "results.csv" and "results.json" (written as each peer answers, fsynced and renamed
 * into place at the end, so they exist whole or not at all). At start every job is
 * read back: those done keep their results; one that was running when the gateway
 * stopped is marked lost (it is not re-run: a query asks peers and spends their quota,
 * so running it twice is the operator's call); queued ones run. Finished jobs expire
 * after API_JOBS_MAX_AGE_S, and the oldest finished go first beyond API_JOBS_KEEP.
 */
#ifndef BG_API_JOBS_H
#define BG_API_JOBS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "gateway/api/api_keys.h"
#include "gateway/daemon/gw.h"
#include "peers/roster.h"

#define API_JOBS_WORKERS 2
#define API_JOBS_QUEUE 8
#define API_JOBS_KEEP 200
#define API_JOBS_MAX_AGE_S (7 * 86400)
#define API_JOB_BODY_MAX (64U << 20) /* bytes of one upload */
#define API_JOB_ID_LEN 32            /* hex digits */
#define API_JOB_REASON_MAX 200
#define API_JOB_LIST_MAX 64
#define API_JOB_AUTH_MAX 64 /* bytes */

typedef enum {
    API_JOB_QUEUED,
    API_JOB_RUNNING,
    API_JOB_DONE,
    API_JOB_FAILED,
    API_JOB_CANCELLED,
    API_JOB_LOST,
    API_JOB_NSTATES
} api_job_state;

/* The mode of the local query: membership 1, grades 2, count 3. */
typedef enum { API_JOB_MEMBERSHIP = 1, API_JOB_GRADES = 2, API_JOB_COUNT = 3 } api_job_kind;

typedef enum { API_PEER_PENDING, API_PEER_ANSWERED, API_PEER_ERROR } api_peer_state;

typedef struct api_job_peer {
    char city[7];
    api_peer_state state;
    char reason[API_JOB_REASON_MAX + 1]; /* error: why */
    char request_id[33];                 /* the exchange's, "" if nothing was sent */
} api_job_peer;

typedef struct api_job {
    char id[API_JOB_ID_LEN + 1];
    char app[BG_APIKEY_NAME_MAX + 1]; /* the application (API key name) that made it */
    api_job_kind kind;
    char list[API_JOB_LIST_MAX + 1], purpose[API_JOB_LIST_MAX + 1];
    uint8_t auth[API_JOB_AUTH_MAX];
    size_t auth_len;
    bool all; /* every peer of the roster (peers known once it runs) */
    size_t npeers, peers_done;
    api_job_peer peers[BG_ROSTER_MAX_MEMBERS];
    size_t ids, invalid;
    api_job_state state;
    int64_t created_ms, started_ms, finished_ms;
    char error[API_JOB_REASON_MAX + 1]; /* failed or lost: why */
    bool cancel;                        /* asked to stop (in memory) */
} api_job;

typedef struct api_jobs api_jobs;

const char *api_job_state_name(api_job_state s);
const char *api_job_kind_name(api_job_kind k);

/* Reads DATA/jobs back (making it), and starts the workers. */
int api_jobs_open(api_jobs **out, bg_gw *gw, const char *data_dir, bg_err *err);
/* Stops the workers (a job running finishes its peer in flight and is then lost). */
void api_jobs_close(api_jobs *j);

/* A new file for an upload under DATA/jobs, 0600 (its path to path): *fd to write. */
int api_jobs_upload_open(api_jobs *j, char *path, size_t pathsz, int *fd, bg_err *err);

/* Queues job (its kind, list, purpose, auth, peers, app, ids and invalid set) with
 * the ids file at ids_path (moved into the job). job gets its id, state and times.
 * BG_ELIMIT when the queue is full. */
int api_jobs_submit(api_jobs *j, api_job *job, const char *ids_path, bg_err *err);

/* A copy of app's job id; false if there is none (or it is another application's). */
bool api_jobs_get(api_jobs *j, const char *id, const char *app, api_job *out);

/* app's jobs, newest first: *out (malloc'd), *n. */
int api_jobs_list(api_jobs *j, const char *app, api_job **out, size_t *n, bg_err *err);

/* Cancels app's job id, queued or running (a running one stops after the peer in
 * flight): out gets it. BG_ENOTFOUND; BG_EEXIST if it has finished already. */
int api_jobs_cancel(api_jobs *j, const char *id, const char *app, api_job *out, bg_err *err);

/* The path of a done job's results (csv or json). */
int api_jobs_results_path(api_jobs *j, const char *id, bool csv, char *out, size_t outsz,
                          bg_err *err);

#endif
