/*
 * roster.h - the signed federation roster.
 *
 * The roster says who the members of the federation are (city code, name,
 * endpoint, the SHA-256 of each member's current certificate, the lists it
 * offers, its grade scale and how that maps onto the federation's common
 * scale), which purposes exist, and who may ask whom about what, how much.
 * The federation operator writes it as an INI file, compiles and signs it
 * with the CA key ('baygate roster sign'); gateways load the signed form
 * (roster.pb) and refuse anything older than what they use.
 *
 * Source format (INI, read with inih, compiled by peers/roster_ini.h; see
 * also peers/ROSTER.md). Every
 * section and key below is required unless marked optional; an unknown
 * section or key, a key given twice or a section given twice is an error
 * naming the file and line, never ignored:
 *
 *   [federation]
 *   name = Greater Bay Area Credit Federation    ; 1-64 bytes of UTF-8
 *   serial = 3                          ; >= 1; each signed roster has a larger one
 *   max_message_bytes = 4194304         ; 16 KiB .. 64 MiB: largest wire message
 *   common_scale = 1,2,3,4              ; the common scale, best first; or NAME=G1,G2,...
 *
 *   [purpose supervision]               ; 1-32 of [a-z0-9_-], starting with a letter
 *   needs_authorisation = false         ; true | false: queries carry a consent reference
 *
 *   [member 440100]                     ; six-digit division code
 *   name = Guangzhou
 *   endpoint = tls+tcp://127.0.0.1:7501 ; tls+tcp://HOST:PORT (HOST may be [IPv6])
 *   certificate = gz/city.crt           ; PEM, relative to the ini; its CN must be the code
 *   fingerprint = <64 hex>              ; ... or the SHA-256 of the DER (exactly one of both)
 *   next_certificate = gz/city.next.crt ; optional, during a rotation: the certificate
 *   next_fingerprint = <64 hex>         ; it switches to (at most one of both), pinned too
 *   lists = serious-dishonesty, abnormal-operation    ; lists offered (may be empty)
 *   scale = ABCD=A,B,C,D                ; the member's own grade scale, best first
 *   grade_map = A:1, B:2, C:3, D:4      ; every grade -> a common rank (1 = best) or
 *                                       ; a grade name of the common scale; never better
 *                                       ; for a worse grade
 *
 *   [permission 440300 -> 440100]       ; asker -> answerer, both members, different
 *   purposes = supervision, lending     ; declared purposes
 *   lists = serious-dishonesty          ; lists the answerer offers
 *   quota_items_per_day = 1000000       ; 1 .. 10^12 items a day
 *   min_count_batch = 16                ; 1 .. 10^6: count-only answers need this many items
 *
 * A comment starts with ';' or '#' at the start of a line, or with " ;" after
 * a value. Lines are at most 198 bytes (inih's buffer); a list (lists,
 * purposes, grade_map) may go on over indented continuation lines. Order of
 * sections does not matter. Limits: 64 members, 16 purposes, a permission per
 * ordered pair of members. No two members share an endpoint or a certificate
 * (current or next), and a member's next certificate is not its current one.
 *
 * The signed form (proto/roster.proto) is a SignedRoster: the serialised
 * Roster bytes, an ECDSA P-256 signature over exactly those bytes under the
 * label BG_SIG_CTX_ROSTER with the CA key, and the SHA-256 of the CA
 * certificate. Opening one checks, in order: size (<= BG_ROSTER_FILE_MAX),
 * the wrapper (unpacked by bg_pb_unpack, under its budget), the CA fingerprint, the
 * signature over the exact bytes received, and only then unpacks the Roster
 * and runs the same validation as for the INI. The wrapper may hold nothing
 * but its three fields; unknown fields inside the Roster are ignored (they
 * are covered by the signature all the same).
 *
 * Thread safety: a bg_roster is immutable once made, so any number of
 * threads may read one at the same time. It is reference counted
 * (bg_roster_ref / bg_roster_free, atomic): a gateway swaps whole rosters
 * under its own lock, and readers that took a reference keep a consistent
 * roster until they drop it.
 */
#ifndef BG_ROSTER_H
#define BG_ROSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "certs/pki.h"
#include "certs/sig.h"
#include "common/err.h"
#include "domain/list.h"
#include "domain/scale.h"

#define BG_ROSTER_MAX_MEMBERS 64
#define BG_ROSTER_MAX_PURPOSES 16
#define BG_ROSTER_MAX_PERMISSIONS (BG_ROSTER_MAX_MEMBERS * (BG_ROSTER_MAX_MEMBERS - 1))
#define BG_ROSTER_PURPOSE_MAX 32   /* bytes of a purpose name */
#define BG_ROSTER_ENDPOINT_MAX 255 /* bytes of an endpoint URL */
#define BG_ROSTER_QUOTA_MAX 1000000000000ull
#define BG_ROSTER_BATCH_MAX 1000000u
/* max_message_bytes, the bound every gateway receives with: at least a reply's envelope,
 * certificate and signature (8 KiB) and one PSI chunk answer beside them; at most what
 * every gateway's envelope verifier takes (BG_ENV_MESSAGE_MAX), so that a roster that
 * signs is one every gateway can start with (checked in gateway/daemon/core.c). */
#define BG_ROSTER_MESSAGE_MIN (16u * 1024u)
#define BG_ROSTER_MESSAGE_MAX (64u * 1024u * 1024u)
/* Largest signed roster accepted, and largest roster INI file. */
#define BG_ROSTER_FILE_MAX (1024 * 1024)
#define BG_ROSTER_INI_MAX (4 * 1024 * 1024)

typedef struct bg_roster bg_roster;

typedef struct bg_roster_member {
    char city[BG_CITY_CODE_LEN + 1];
    char name[BG_PKI_NAME_MAX + 1];
    char endpoint[BG_ROSTER_ENDPOINT_MAX + 1];
    uint8_t cert_sha256[BG_SIG_FP_LEN];   /* SHA-256 of its certificate's DER */
    bool has_next;                        /* a rotation: next_sha256 is pinned too */
    uint8_t next_sha256[BG_SIG_FP_LEN];   /* the certificate it rotates to */
    bool lists[BG_LIST_COUNT];            /* offered, by bg_list_index */
    bg_scale scale;                       /* its own grades, best first */
    uint32_t common[BG_SCALE_MAX_GRADES]; /* grade index -> common rank, 1 = best */
} bg_roster_member;

typedef struct bg_roster_purpose {
    char name[BG_ROSTER_PURPOSE_MAX + 1];
    bool needs_authorisation;
} bg_roster_purpose;

typedef struct bg_roster_perm {
    char asker[BG_CITY_CODE_LEN + 1];
    char answerer[BG_CITY_CODE_LEN + 1];
    uint32_t purposes; /* bit i set: bg_roster_purpose_at(r, i) is allowed */
    bool lists[BG_LIST_COUNT];
    uint64_t quota_items_per_day;
    uint32_t min_count_batch;
} bg_roster_perm;

/* What bg_roster_permission decided. */
typedef struct bg_roster_verdict {
    bool allowed;
    uint64_t quota_items_per_day; /* when allowed */
    uint32_t min_count_batch;     /* when allowed */
    bool needs_authorisation;     /* the purpose's, when it is declared */
    char reason[160];             /* when not allowed: why, for logs and refusals */
} bg_roster_verdict;

/* Rosters are made from their INI source by peers/roster_ini.h (library
 * bg_roster_ini, which only 'baygate roster sign' needs) and from the signed
 * form below. */

/* --- signing and opening --- */

/*
 * Serialises r and signs the exact bytes with the CA key (label
 * BG_SIG_CTX_ROSTER), wrapped in a SignedRoster with the CA certificate's
 * fingerprint. ca_key must belong to ca_cert. *out is malloc'd: free() it.
 */
int bg_roster_sign(const bg_roster *r, EVP_PKEY *ca_key, X509 *ca_cert, uint8_t **out, size_t *len,
                   bg_err *err);

/*
 * Opens a signed roster received as bytes: checks it as described above
 * against ca_cert and refuses serial < min_serial ("roster serial 2 is older
 * than the 3 in use"). If in_use is not NULL its serial is a floor too, and
 * a roster with the same serial is accepted only if its Roster bytes are
 * identical; then *unchanged (if not NULL) is set true. Errors: BG_ELIMIT
 * (too large), BG_EPROTO (malformed), BG_ECRYPTO (wrong CA, bad signature:
 * "roster signature does not verify"), BG_EINVAL (content invalid), BG_EEXIST
 * (older serial, or same serial with different content).
 */
int bg_roster_open(const void *bytes, size_t len, X509 *ca_cert, uint64_t min_serial,
                   const bg_roster *in_use, bg_roster **out, bool *unchanged, bg_err *err);

/* bg_roster_open on the contents of a file (at most BG_ROSTER_FILE_MAX). */
int bg_roster_load_file(const char *path, X509 *ca_cert, uint64_t min_serial,
                        const bg_roster *in_use, bg_roster **out, bool *unchanged, bg_err *err);

/*
 * Decodes and validates a signed roster WITHOUT verifying its signature:
 * only for showing a file to an operator who has no CA certificate at hand,
 * or for reading the serial of a file about to be replaced. Never trust
 * the result. ca_sha256 (if not NULL) gets the fingerprint it claims.
 */
int bg_roster_inspect(const void *bytes, size_t len, bg_roster **out,
                      uint8_t ca_sha256[BG_SIG_FP_LEN], bg_err *err);

/* Reads a whole file of at most BG_ROSTER_FILE_MAX bytes; free() *bytes. */
int bg_roster_read_file(const char *path, uint8_t **bytes, size_t *len, bg_err *err);

/* Writes bytes to path atomically (temp file, fsync, rename, fsync of the
 * directory), mode 0644: readers see the old file or the new, never half. */
int bg_roster_write_file(const char *path, const uint8_t *bytes, size_t len, bg_err *err);

/* --- lifetime --- */

/* Takes one more reference (atomic); returns r. */
bg_roster *bg_roster_ref(bg_roster *r);
/* Drops a reference; the last one frees. NULL is fine. */
void bg_roster_free(bg_roster *r);

/* --- reading --- */

uint64_t bg_roster_serial(const bg_roster *r);
int64_t bg_roster_issued_at_ms(const bg_roster *r);
const char *bg_roster_federation(const bg_roster *r);
uint32_t bg_roster_max_message_bytes(const bg_roster *r);
const bg_scale *bg_roster_common_scale(const bg_roster *r);

/* The serialised Roster (the signed bytes), owned by r, and its SHA-256. */
const uint8_t *bg_roster_bytes(const bg_roster *r, size_t *len);
void bg_roster_digest(const bg_roster *r, uint8_t out[32]);

/* Members in roster order; find by city code (NULL if not a member). */
size_t bg_roster_member_count(const bg_roster *r);
const bg_roster_member *bg_roster_member_at(const bg_roster *r, size_t i);
const bg_roster_member *bg_roster_member_find(const bg_roster *r, const char *city);

/* The certificate fingerprints m pins, current first, the next one during a rotation:
 * fp has room for BG_ROSTER_PINS_MAX; returns how many (1 or 2). */
#define BG_ROSTER_PINS_MAX 2
size_t bg_roster_member_pins(const bg_roster_member *m, uint8_t fp[][BG_SIG_FP_LEN]);
/* Does m pin fp (its current or its next certificate)? Constant time in fp. */
bool bg_roster_member_pinned(const bg_roster_member *m, const uint8_t fp[BG_SIG_FP_LEN]);

/* The envelope verifier's member_fp callback over one fixed roster (ctx, a
 * const bg_roster *): the certificate fingerprints the roster pins for city
 * (bg_roster_member_pins), or BG_ENOTFOUND. A gateway that swaps rosters at
 * run time wraps its own. */
int bg_roster_member_fp(void *ctx, const char *city, uint8_t fp[][BG_SIG_FP_LEN], size_t *n);

/* Common rank (1 = best) of a member's grade g (len bytes), 0 if not in its scale. */
uint32_t bg_roster_member_rank(const bg_roster_member *m, const char *g, size_t len);

/* The same by city; BG_ENOTFOUND naming the unknown city or grade. */
int bg_roster_common_rank(const bg_roster *r, const char *city, const char *grade, uint32_t *rank,
                          bg_err *err);

size_t bg_roster_purpose_count(const bg_roster *r);
const bg_roster_purpose *bg_roster_purpose_at(const bg_roster *r, size_t i);
const bg_roster_purpose *bg_roster_purpose_find(const bg_roster *r, const char *name);

size_t bg_roster_permission_count(const bg_roster *r);
const bg_roster_perm *bg_roster_permission_at(const bg_roster *r, size_t i);
/* The permission of asker toward answerer, NULL if none. */
const bg_roster_perm *bg_roster_permission_find(const bg_roster *r, const char *asker,
                                                const char *answerer);

/*
 * May asker ask answerer about list (a bg_list_names entry) for purpose?
 * Fills *v: allowed with the quota and minimum batch, or a reason
 * ("440999 is not a member of the federation", "440300 may not ask 440100
 * for purpose 'lending'", ...). Returns v->allowed.
 */
bool bg_roster_permission(const bg_roster *r, const char *asker, const char *answerer,
                          const char *purpose, const char *list, bg_roster_verdict *v);

#endif
