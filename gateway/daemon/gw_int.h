/*
 * gw_int.h - the gateway daemon's shared state, for its own modules (gw.c,
 * psi_pub.c, psi_answer.c, psi_query.c). Not an API: nothing outside
 * gateway/daemon includes it.
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
#include "gateway/daemon/evidence.h"
#include "gateway/daemon/psi_answer.h"
#include "gateway/daemon/psi_pub.h"
#include "gateway/daemon/psi_query.h"
#include "peers/envelope.h"
#include "peers/roster.h"
#include "peers/transport.h"

#define GW_OUTCOMES (BG_ENV_REASON_LAST + 1)

typedef struct gw_peer {
    atomic_int refs;
    char city[BG_CITY_CODE_LEN + 1];
    char name[BG_PKI_NAME_MAX + 1];
    char endpoint[BG_ROSTER_ENDPOINT_MAX + 1];
    bg_tp_client *cli;
    atomic_bool cert_known; /* the peer has accepted our certificate once */
    pthread_mutex_t status_lock;
    bool probed, reachable;
    uint32_t latency_us;
    int64_t last_ok_ms;
    char error[300];
} gw_peer;

/* A file we watch for replacement. */
typedef struct gw_watch {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
} gw_watch;

struct bg_gw {
    bg_config cfg;
    bg_env_identity *id;
    X509 *ca;
    bg_trust *trust;
    bg_env_verifier *verifier;
    bg_tp_server *fed, *local;
    time_t started;

    /* PEM material for every TLS config we build (key cleansed at stop). */
    char *key_pem, *cert_pem, *ca_pem, *crl_pem;
    size_t key_pem_len, cert_pem_len, ca_pem_len, crl_pem_len;

    pthread_mutex_t lock; /* roster pointer and peer table */
    bg_roster *roster;
    gw_peer *peers[BG_ROSTER_MAX_MEMBERS];
    size_t npeers;

    gw_watch crl_watch, roster_watch;
    time_t crl_warned_at;

    atomic_uint_fast64_t answered, app_errors, refused[GW_OUTCOMES], dropped[GW_OUTCOMES];

    /* PSI: what we publish and answer (psi_pub, psi_answer) and the peers'
     * snapshots we hold as an asker (psi_query). */
    bg_pub *pub;
    gw_quota quota;
    gw_cache cache;

    /* The evidence log and witnessing (evidence.c). */
    bg_audit_log *audit;
    bg_audit_witness *witness;
    pthread_t witness_thread;
    bool witness_started, witness_stop;
    pthread_mutex_t witness_lock;       /* the thread's sleep and stop flag */
    pthread_mutex_t witness_store_lock; /* the witness store (checks, received cosigs) */
    pthread_cond_t witness_wake;
    atomic_uint_fast64_t evidence_failed, forks_detected, cosigned, cosigs_received;
};

/* A reference to the roster in use (NULL only before start). */
bg_roster *gw_roster_get(bg_gw *gw);
/* A reference to the peer city, or NULL if it is not a peer now. */
gw_peer *gw_peer_get(bg_gw *gw, const char *city);
void gw_peer_release(gw_peer *p);
/* Sends bytes (freed) as the answer, or drops req when bytes is NULL. With ev (an
 * authenticated request), the exchange goes to the evidence log first; if it cannot,
 * the answer is dropped. */
void gw_reply_or_drop(bg_gw *gw, gw_ev *ev, bg_tp_request *req, uint8_t *bytes, size_t len);

/* The federation's max_message_bytes (the roster's, or the default before one). */
size_t gw_max_message(bg_gw *gw);

/* Answers request o with a signed body (counted as answered), or refuses it with a typed
 * ErrorAnswer (code, printf message; counted, logged as event with peer, purpose, code and
 * reason, noted in ev). Both go through gw_reply_or_drop; ev may be NULL. */
void gw_answer(bg_gw *gw, gw_ev *ev, const bg_env_opened *o, bg_tp_request *req, uint32_t body_type,
               const uint8_t *body, size_t len);
void gw_refuse(bg_gw *gw, gw_ev *ev, const bg_env_opened *o, bg_tp_request *req, uint32_t code,
               const char *event, const char *fmt, ...) __attribute__((format(printf, 7, 8)));

/* What a round trip to a peer gave besides the answer. */
typedef struct gw_call_res {
    uint32_t code; /* 0, a BG_GW_E_* of ours, or the peer's refusal code */
    char error[400];
    uint64_t sent, received; /* bytes, added to */
} gw_call_res;

/*
 * One signed round trip to peer p: f sealed (with our certificate until the peer
 * knows it), an answer of want_type back, opened and bound to our request. A typed
 * refusal gives BG_EABORTED with res->code; transport BG_EIO; a bad answer
 * BG_EPROTO; sealing BG_EINVAL. With cev, the exchange is written to the evidence
 * log. On BG_OK the caller frees *out.
 */
int gw_call(bg_gw *gw, gw_peer *p, const bg_env_fields *f, int timeout_ms, uint32_t want_type,
            const gw_call_ev *cev, bg_env_opened **out, gw_call_res *res);

#endif
