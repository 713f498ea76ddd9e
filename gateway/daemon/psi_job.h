/*
 * psi_job.h - one peer's part of a local query (a "job", run on a thread of its own by
 * psi_run.h): what to ask, what came back, and the job's signed round trip (gw_call
 * with the job's purpose, authorisation and evidence fields). Everything a job holds
 * after a run is freed by psi_job_free, and only there.
 */
#ifndef BG_PSI_JOB_H
#define BG_PSI_JOB_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "certs/pki.h"
#include "domain/scale.h"
#include "gateway/attest/attest.h"
#include "gateway/daemon/gw_int.h"
#include "mpc/snapshot.h"
#include "peers/envelope.h"

/* A graded match's attestation, as checked here (gateway/attest). */
typedef struct pattest {
    char common[BG_GRADE_MAX + 1];
    uint32_t rank;
    bool ok;
    bool expired;   /* it does not verify because valid_until has passed */
    char why[240];  /* why it does not verify ("" when ok) */
    uint8_t *bytes; /* the encoded attestation, when asked for */
    size_t len;
} pattest;

typedef struct pjob {
    bg_gw *gw;
    char city[BG_CITY_CODE_LEN + 1];
    const char *list, *purpose;
    const char *application; /* the local application asking, for our evidence; or NULL */
    const uint8_t *auth;
    size_t auth_len;
    int mode, timeout_ms;
    const uint8_t *const *inputs; /* distinct canonical USCCs, sorted (borrowed) */
    const size_t *lens;
    size_t n;
    pthread_t thread;
    bool started;
    /* One per peer exchange: every round trip of the job carries it, so the leaves
     * both cities log of the exchange share it (baygate audit find --request). */
    uint8_t request_id[BG_ENV_ID_LEN];
    bool asked; /* a round trip was tried: the evidence logs hold leaves of request_id */

    /* results */
    bool ok;
    uint32_t code;
    char error[400];
    char name[BG_PKI_NAME_MAX + 1];
    uint64_t generation, epoch, list_size;
    const char *snapshot_kind;
    uint8_t *matched;          /* n flags */
    bg_snap_payload *payloads; /* graded: n (zero where not matched) */
    uint64_t count, unopened;
    size_t items;
    uint32_t snapshot_ms, psi_ms;
    uint64_t sent, received;
    uint64_t call_epoch; /* for the evidence of the next call */
    uint32_t call_items;

    /* graded: attestations of the matches, checked against the peer's status list */
    bool want_attest; /* return their bytes (and the status list) */
    pattest *att;     /* n */
    uint8_t *status;  /* the peer's signed status list, verified */
    size_t status_len;
    bg_attest_status *st;
    char status_error[240];
    bg_attest *att_ref; /* the first attestation verified in full (bg_attest_verify_sibling) */
} pjob;

/* The job failed: code and a sentence. */
void psi_job_fail(pjob *j, uint32_t code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The envelope fields of a request of the job (its peer, request id, purpose,
 * authorisation). */
bg_env_fields psi_job_fields(const pjob *j, uint32_t body_type, const uint8_t *body, size_t len);

/*
 * One signed round trip of the job to peer p: body of body_type out, an answer of
 * want_type back, logged as evidence with the job's list, j->call_epoch and
 * j->call_items, bytes counted. A failure becomes j->code/j->error. On BG_OK the
 * caller frees *out.
 */
int psi_job_call(pjob *j, gw_peer *p, uint32_t body_type, const uint8_t *body, size_t len,
                 uint32_t want_type, bg_env_opened **out);

/* Drops the per-input results (matches, grades, attestations) before a run again. */
void psi_job_clear_results(pjob *j);

/* Frees everything the job holds (not the job itself, nor what it borrows). */
void psi_job_free(pjob *j);

#endif
