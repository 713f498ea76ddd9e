/*
 * notify.h - tell systemd how `baygate serve` is doing (Type=notify).
 *
 * The service manager's readiness protocol (sd_notify(3)): one datagram of
 * "KEY=VALUE" lines sent to the AF_UNIX datagram socket named by
 * $NOTIFY_SOCKET (a path, or '@' for the abstract namespace). Written here in
 * a few lines rather than linking libsystemd: the protocol is one of systemd's
 * documented stable interfaces, and the gateway then needs no library for it.
 *
 * Without $NOTIFY_SOCKET (a terminal, a test, another init) every call does
 * nothing and returns BG_OK, so the gateway runs the same anywhere. A failure
 * is returned with a message, never fatal: the caller logs it.
 */
#ifndef BG_NOTIFY_H
#define BG_NOTIFY_H

#include "common/err.h"

/* Sends state, e.g. "READY=1\nSTATUS=serving", to the service manager. */
int bg_notify(const char *state, bg_err *err);

#endif
