/*
 * witnessed.h - what our witnesses hold of our evidence log, asked before we serve.
 *
 * A gateway restored from a backup has the log the backup holds; its witnesses may
 * have cosigned heads beyond it. Before the servers start, gw_witnessed_check asks
 * every reachable peer for the last head of ours it cosigned (CosignedRequest,
 * witness.proto), checks our own signature on it and compares it with the log:
 *  - a head larger than the log (leaves lost): logged as audit.behind_witness with
 *    the missing range, written to the audit directory's behind.txt, and the start is
 *    refused, saying what is missing and how to recover it; unless the operator
 *    accepted exactly that loss (`baygate restore --accept-loss` copied behind.txt to
 *    accept-loss.txt): then a signed loss statement giving up those heads is appended
 *    to losses.log, a fresh head is signed, and we serve (witnesses record an
 *    acknowledged loss, witness.h);
 *  - a head of the log's size or less with another root (a different history): logged
 *    as audit.diverged_from_witness; not refused, the witnesses report the fork;
 *  - a head our latest loss statement gives up: already accepted.
 * An unreachable peer is logged and not waited for (a federation restarting at once
 * must be able to come up); if it holds more, its next witness round says so
 * (audit.behind_witness, witness.c) and it reports a shrunk log.
 */
#ifndef BG_WITNESSED_H
#define BG_WITNESSED_H

#include "common/err.h"
#include "peers/envelope.h"
#include "peers/transport.h"

struct bg_gw;

/* The check above; loads our latest loss statement into gw->loss. BG_EABORTED: the log
 * is behind a witness (err says what is missing and what to do). */
int gw_witnessed_check(struct bg_gw *gw, bg_err *err);
/* Frees gw->loss (at stop). */
void gw_witnessed_close(struct bg_gw *gw);

/* Federation handler for WITNESS_BODY_COSIGNED_REQUEST: the sender's last head we cosigned. */
void gw_witnessed_answer(struct bg_gw *gw, const bg_env_opened *o, bg_tp_request *req);

#endif
