/*
 * artefact.h - the federation's signed artefacts as a peer hands them on: the checks a
 * gateway makes before it writes a roster or a CRL it did not get from its operator
 * (relay.h uses them; proto/relay.proto is the wire form).
 *
 * Nothing here touches the gateway's state or files: each check takes the bytes, the
 * federation CA and what the gateway holds, and says whether the candidate is newer,
 * the same, older, or not to be trusted at all, with a sentence naming the failed check.
 * The fuzz harness fuzz/fuzz_relay.c calls exactly these.
 */
#ifndef BG_ARTEFACT_H
#define BG_ARTEFACT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/x509.h>

#include "common/err.h"
#include "peers/roster.h"
#include "proto/relay.pb-c.h"

/* Largest roster relayed: bg_roster_open's own bound (BG_ROSTER_FILE_MAX, 1 MiB). */
#define GW_ART_ROSTER_MAX BG_ROSTER_FILE_MAX
/* Largest CRL relayed, in PEM: 1 MiB, some 20,000 revoked certificates (the CA's own
 * CRLs are a few hundred bytes plus about 50 bytes of PEM per revoked certificate). */
#define GW_ART_CRL_MAX (1024 * 1024)
/* Longest refusal sentence carried in an answer (Artefacts.*_refused). */
#define GW_ART_REFUSAL_MAX 256

typedef enum gw_art_verdict {
    GW_ART_NEWER,   /* checked, and newer than what we hold: take it */
    GW_ART_SAME,    /* checked, and what we hold already */
    GW_ART_OLDER,   /* checked, but older than what we hold (or a same-serial roster with
                       other content): refused */
    GW_ART_INVALID, /* not the CA's, malformed, too large, expired: refused */
} gw_art_verdict;

/* "newer", "same", "older", "invalid". */
const char *gw_art_verdict_name(gw_art_verdict v);

/*
 * An Artefacts body from a peer: bg_pb_unpack under its budget, no unknown fields,
 * the roster at most GW_ART_ROSTER_MAX bytes, the CRL at most GW_ART_CRL_MAX, each
 * refusal sentence at most GW_ART_REFUSAL_MAX. NULL (err says which) when not; else
 * free it with bg_pb_free.
 */
Baygate__Artefacts *gw_art_decode(const uint8_t *body, size_t len, bg_err *err);

/*
 * A roster candidate: opened as bg_roster_open opens one against ca (size, wrapper, CA
 * fingerprint, signature, then the content), with in_use (the roster the gateway runs
 * on) and held_serial (the newest it holds: in use, or written and not loaded yet) as
 * floors. GW_ART_NEWER: *out is the opened roster (free it); otherwise *out is NULL and,
 * for OLDER and INVALID, err says why.
 */
gw_art_verdict gw_art_roster(const uint8_t *bytes, size_t len, X509 *ca, const bg_roster *in_use,
                             uint64_t held_serial, bg_roster **out, bg_err *err);

/*
 * A CRL candidate, PEM: at most GW_ART_CRL_MAX bytes, one CRL, issued and signed by ca,
 * with a CRL number, issued no later than now + BG_PKI_SKEW and not expired at now;
 * then its number against held_number (the newest the gateway holds). *number gets
 * the number of a checked CRL. GW_ART_NEWER: *pem is its PEM as `baygate ca crl`
 * writes it (free with OPENSSL_free), what the gateway writes to its crl.pem.
 */
gw_art_verdict gw_art_crl(const uint8_t *bytes, size_t len, X509 *ca, uint64_t held_number,
                          time_t now, uint64_t *number, char **pem, size_t *pem_len, bg_err *err);

#endif
