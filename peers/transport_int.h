/*
 * transport_int.h - what transport.c, transport_server.c and
 * transport_client.c share. Not part of the API.
 */
#ifndef BG_TRANSPORT_INT_H
#define BG_TRANSPORT_INT_H

#include <pthread.h>
#include <stdint.h>

#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>

#include "peers/transport.h"

/* NNG_OPT_RECVMAXSZ counts the SP header too: REQ/REP carry a 4-byte
 * request id plus 4 bytes per device hop (at most 8 hops). The limits in the
 * API are of the body, so sockets get this much more, and the body is
 * checked against the API limit on arrival. */
#define TP_SP_HEADER_MAX 64

typedef enum { TP_SCHEME_BAD, TP_SCHEME_TLS, TP_SCHEME_IPC } tp_scheme;

/* Which transport a URL names; plain tcp:// and everything else is BAD. */
tp_scheme tp_url_scheme(const char *url);

/* Monotonic milliseconds. */
int64_t tp_now_ms(void);

/* A condition variable on CLOCK_MONOTONIC, and a wait until a monotonic
 * deadline in ms (returns ETIMEDOUT once passed). */
int tp_cond_init(pthread_cond_t *c);
int tp_cond_wait_until(pthread_cond_t *c, pthread_mutex_t *m, int64_t deadline_ms);

/* pthread_create with every signal blocked in the new thread, so a
 * signal-driven main loop gets SIGINT/SIGTERM, not a transport thread. */
int tp_thread_create(pthread_t *t, void *(*fn)(void *), void *arg);

/* An nng TLS config from PEM material: CA (+ CRL) as the only anchor,
 * client certificates REQUIRED, own certificate if given, server_name if not
 * NULL. need_own: refuse material without certificate and key. */
int tp_tls_config(nng_tls_config **out, nng_tls_mode mode, const bg_tp_tls *tls,
                  const char *server_name, bool need_own, bg_err *err);

/* The statistics scope ("dialer", "listener", "socket") of the object with
 * this id in a snapshot from nng_stats_get, or NULL. Not nng_stat_find_dialer
 * and friends: in nng 1.5.2 they return the first scope of that kind
 * whatever the id (nanomsg/nng#1577). */
nng_stat *tp_stat_scope(nng_stat *all, const char *kind, int id);

/* The value of the counter called name directly inside scope (0 if none). */
uint64_t tp_stat_value(nng_stat *scope, const char *name);

/* Sets err from an nng failure: "<what>: <nng_strerror> (nng <rv>)". */
int tp_nng_err(bg_err *err, int code, int rv, const char *what);

#endif
