/*
 * psi_job.c - a peer job's round trip and its one free (see psi_job.h).
 */
#include "gateway/daemon/psi_job.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "gateway/daemon/core.h"

void
psi_job_fail(pjob *j, uint32_t code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(j->error, sizeof j->error, fmt, ap);
    va_end(ap);
    j->ok = false;
    j->code = code;
}

bg_env_fields
psi_job_fields(const pjob *j, uint32_t body_type, const uint8_t *body, size_t len)
{
    bg_env_fields f = {.recipient = j->city,
                       .body_type = body_type,
                       .body = body,
                       .body_len = len,
                       .purpose = j->purpose,
                       .authorisation_ref = j->auth,
                       .authorisation_ref_len = j->auth_len};
    memcpy(f.request_id, j->request_id, sizeof f.request_id);
    return f;
}

int
psi_job_call(pjob *j, gw_peer *p, uint32_t body_type, const uint8_t *body, size_t len,
             uint32_t want_type, bg_env_opened **out)
{
    bg_env_fields f = psi_job_fields(j, body_type, body, len);
    gw_call_ev cev = {.list = j->list,
                      .application = j->application,
                      .epoch = j->call_epoch,
                      .items = j->call_items};
    bg_rt_result res = {0};
    int rc = gw_call(j->gw, p, &f, j->timeout_ms, want_type, &cev, out, &res);
    if (rc != BG_EINVAL) /* EINVAL: nothing was sent, nothing logged */
        j->asked = true;
    j->sent += res.sent_bytes;
    j->received += res.received_bytes;
    if (rc != BG_OK)
        psi_job_fail(j, res.code, "%s", res.error);
    return rc;
}

void
psi_job_clear_results(pjob *j)
{
    free(j->matched);
    j->matched = NULL;
    if (j->payloads != NULL) {
        sodium_memzero(j->payloads, j->n * sizeof *j->payloads);
        free(j->payloads);
        j->payloads = NULL;
    }
    for (size_t i = 0; j->att != NULL && i < j->n; i++)
        free(j->att[i].bytes);
    free(j->att);
    j->att = NULL;
}

void
psi_job_free(pjob *j)
{
    psi_job_clear_results(j);
    free(j->att_ref);
    j->att_ref = NULL;
    free(j->status);
    j->status = NULL;
    bg_attest_status_free(j->st);
    j->st = NULL;
}
