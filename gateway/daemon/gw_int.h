/*
 * gw_int.h - the gateway daemon's shared state (struct bg_gw, gw_peer), for the
 * daemon's own files: data only, no functions. Not an API: nothing outside
 * gateway/daemon includes it. It includes only the headers of the types it holds;
 * the services on this state are in core.h, the handlers' in their own headers.
 *
 * The daemon's files are ordered by height (README.md): a file includes and calls
 * only files below it; tests/layers_test.sh checks that no circle remains.
 */
#ifndef BG_GW_INT_H
#define BG_GW_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "certs/pki.h"
#include "certs/trust.h"
#include "gateway/audit/audit.h"
#include "gateway/config/config.h"
#include "gateway/daemon/cache.h"
#include "gateway/daemon/fetch.h"
#include "gateway/daemon/psi_pub.h"
#include "gateway/daemon/quota.h"
#include "gateway/daemon/rate.h"
#include "peers/envelope.h"
#include "peers/roster.h"
#include "peers/transport.h"

typedef struct bg_gw bg_gw;

#define GW_OUTCOMES (BG_ENV_REASON_LAST + 1)

typedef struct gw_peer {
    atomic_int refs;
    char city[BG_CITY_CODE_LEN + 1];
    char name[BG_PKI_NAME_MAX + 1];
    char endpoint[BG_ROSTER_ENDPOINT_MAX + 1];
    bg_tp_client *cli;
    atomic_uint calls;      /* gw_call round trips in flight (what a stop waits for) */
    atomic_bool cert_known; /* the peer has accepted our certificate once */
    pthread_mutex_t status_lock;
    bool probed, reachable;
    uint32_t latency_us;
    int64_t last_ok_ms;
    char error[300];
    /* Health as the asking side sees it (core.h gw_peer_admit), under status_lock: a
     * peer that could not be reached is left out until down_until_ms (backoff). */
    int64_t down_since_ms, down_until_ms;
    uint32_t down_fails;
    bool down_refused; /* the last failure was a refused connection: cheap to try again */
    char down_error[300];
    /* The certificate the roster pins for it, as an envelope from it carried it (DER,
     * NULL until one did), and whether the CRL in use revokes it: recomputed at every CRL
     * and roster reload (core.h gw_peers_check_revoked), under status_lock. */
    uint8_t *cert_der;
    size_t cert_der_len;
    uint8_t cert_fp[BG_SIG_FP_LEN];
    bool revoked;
    char revoked_why[200];
} gw_peer;

/* Our signing identity (key, certificate, fingerprint). Reference counted: a
 * certificate rotation swaps it while handlers still seal with the one they took
 * (core.h gw_ident_get). */
typedef struct gw_ident {
    atomic_int refs;
    bg_env_identity *id;
} gw_ident;

/* A file we watch for replacement. */
typedef struct gw_watch {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
} gw_watch;

/* A reload that failed (gw.c): tried again every tick; the failure last logged, when,
 * and the tries since that were not logged. */
typedef struct gw_retry {
    bool pending;
    char failure[BG_ERR_MSG_MAX];
    time_t logged;
    uint64_t unlogged;
} gw_retry;

struct bg_gw {
    bg_config cfg;
    /* Under lock: the identity in use and the one before the last rotation, which
     * still answers for what it signed (publications made before the switch). */
    gw_ident *ident, *ident_prev;
    X509 *ca;
    bg_trust *trust;
    bg_env_verifier *verifier;
    bg_tp_server *fed, *local;
    time_t started;

    /* PEM material for every TLS config we build (key cleansed at stop). */
    char *key_pem, *cert_pem, *ca_pem, *crl_pem;
    size_t key_pem_len, cert_pem_len, ca_pem_len, crl_pem_len;

    pthread_mutex_t lock; /* roster pointer, peer table, identities */
    bg_roster *roster;
    gw_peer *peers[BG_ROSTER_MAX_MEMBERS];
    size_t npeers;

    gw_watch crl_watch, roster_watch, cert_watch;
    time_t crl_warned_at;
    /* The CRL or the roster file did not load or was refused: tried again every tick
     * (gw.c), so a transient cause (EMFILE) or a file fixed in place needs no new
     * signal. */
    gw_retry crl_retry, roster_retry;
    char *crl_refused_pem; /* a CRL the trust store refused: not handed on or tried again */
    size_t crl_refused_len;
    char crl_refusal[BG_ERR_MSG_MAX];

    atomic_uint_fast64_t answered, app_errors, refused[GW_OUTCOMES], dropped[GW_OUTCOMES];
    atomic_uint local_busy;             /* local API requests being handled */
    atomic_uint_fast64_t local_refused; /* local API callers of another uid */

    /* PSI: what we publish and answer (psi_pub, psi_answer, quota) and the peers'
     * snapshots we hold as an asker (cache). */
    bg_pub *pub;
    gw_quota quota;
    gw_rate rate; /* requests and answer bytes per (peer, kind) */
    gw_cache cache;
    gw_fetches fetches; /* peers' snapshots being fetched (status shows them) */

    /* The evidence log (evidence.c) and witnessing (witness.c). */
    bg_audit_log *audit;
    bg_audit_witness *witness;
    pthread_t witness_thread;
    bool witness_started, witness_stop;
    pthread_mutex_t witness_lock;       /* the thread's sleep and stop flag */
    pthread_mutex_t witness_store_lock; /* the witness store (checks, received cosigs) */
    pthread_cond_t witness_wake;
    atomic_uint_fast64_t evidence_failed, forks_detected, cosigned, cosigs_received, cosigs_refused;

    /* Our own standing (standing.c): a gw_standing value, and the failed handshakes at
     * our listener already logged (tick thread only). The relay of the roster and the
     * CRL to and from peers (relay.c). */
    atomic_int standing;
    uint64_t hs_failed_logged, hs_auth_logged;
    time_t hs_failed_looked_at;
    struct gw_relay *relay;
    /* Our latest loss statement (witnessed.c, at start; NULL if none): sent to
     * witnesses with our heads. Set before the servers start, only read after. */
    bg_audit_loss *loss;
};

#endif
