/*
 * psi_run.h - one peer job run: its snapshot brought up to date (psi_sync.h), for a
 * graded query the peer's status list (psi_attest.h), then PSI in chunks sized to the
 * roster's max_message_bytes (count: one message per sub-batch), each answer checked
 * against the asked (list, generation, epoch, batch, chunk) and finished against the
 * cached snapshot. If the peer says our epoch is stale (it published meanwhile), the
 * snapshot is refreshed and the query run again once.
 */
#ifndef BG_PSI_RUN_H
#define BG_PSI_RUN_H

#include "gateway/daemon/psi_job.h"

/* Runs job arg (a pjob *) to the end; a pthread start routine. Returns NULL. */
void *psi_run_job(void *arg);

#endif
