/*
 * audit.h - the witnessed evidence log: an append-only Merkle log of every
 * federation request and answer, signed tree heads, proofs, and witnessing of
 * peers' logs.
 *
 * Contract:
 *  - Hashing is RFC 6962 / RFC 9162 with SHA-256: leaf = H(0x00 || leaf bytes),
 *    node = H(0x01 || left || right), empty tree = H(""). Leaves are AuditLeaf
 *    messages (proto/audit.proto) built here from a bg_audit_event, which has
 *    no field for an enterprise identifier.
 *  - bg_audit_append returns an index only once the record is on disk
 *    (fdatasync); a batch syncs once, and appends made at the same time from
 *    several threads share syncs (group commit). Indexes are 0, 1, 2, ... in
 *    file order, consecutive within a batch, and never reused. Leaves become
 *    visible (size, roots, proofs, signed heads) only once on disk, in order.
 *  - A failed write fails only that append (the file is cut back to where it
 *    began). A failed sync fails every append not yet on disk, none of their
 *    leaves become visible, and the log refuses further appends (BG_EIO)
 *    until it is reopened, which rescans and repairs the file.
 *  - Opening read-write repairs a torn tail (a crash during the last write,
 *    never acknowledged) and reports what it dropped; damage followed by a
 *    valid record is refused with its offset, never dropped. Opening
 *    read-only repairs nothing: an incomplete tail is "not yet written".
 *  - Roots, inclusion and consistency proofs for any size up to the current
 *    one cost O(log n) hash operations (leaf and complete-subtree hashes are
 *    kept in memory).
 *  - One bg_audit_log may be used from several threads at once. Only one
 *    process may have a directory open read-write (flock); readers need no lock.
 *
 * Directory layout (the gateway uses <data_dir>/audit): leaves.log,
 * heads.log, witness.log, all the same record format:
 *     8-byte magic "BGAUDIT" 0x01, then records of
 *     u32 big-endian length L (1..BG_AUDIT_RECORD_MAX) || L bytes || 32-byte
 *     SHA-256(0x00 || the L bytes)
 * so the checksum of a leaves.log record is the RFC 6962 leaf hash itself.
 * heads.log holds SignedTreeHead records, witness.log WitnessRecord records,
 * losses.log (only after `baygate restore --accept-loss`) SignedLossStatement
 * records. certs/ holds the certificates heads and cosignatures were verified with
 * (below).
 */
#ifndef BG_AUDIT_H
#define BG_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "certs/sig.h"
#include "certs/trust.h"
#include "common/err.h"
#include "peers/roster.h"

/* The files of an audit directory (the layout above). */
#define BG_AUDIT_LEAVES_FILE "leaves.log"
#define BG_AUDIT_HEADS_FILE "heads.log"
#define BG_AUDIT_WITNESS_FILE "witness.log"
#define BG_AUDIT_LOSSES_FILE "losses.log"

#define BG_AUDIT_HASH_LEN 32
/* Longest serialised leaf (an AuditLeaf within the bounds below is < 700). */
#define BG_AUDIT_LEAF_MAX 1024
/* Longest record in any audit file (witness conflict records hold two heads). */
#define BG_AUDIT_RECORD_MAX 4096
/* Longest proof: inclusion <= 64 hashes, consistency <= 65 for 64-bit sizes. */
#define BG_AUDIT_PROOF_MAX 66
/* Largest log this code opens: keeps memory (about 72 bytes a leaf) bounded. */
#define BG_AUDIT_MAX_LEAVES (UINT64_C(1) << 32)
/* Most events one bg_audit_append_batch takes. */
#define BG_AUDIT_BATCH_MAX 4096

#define BG_AUDIT_REQUEST_ID_LEN 16
#define BG_AUDIT_TEXT_MAX 64 /* purpose, list */
#define BG_AUDIT_REF_MAX 64  /* authorisation_ref */
#define BG_AUDIT_REASON_MAX 128
/* Longest serialised TreeHead and SignedTreeHead. */
#define BG_AUDIT_HEAD_BYTES_MAX 128
#define BG_AUDIT_SIGNED_HEAD_MAX 256
#define BG_AUDIT_COSIG_BYTES_MAX 256
#define BG_AUDIT_SIGNED_COSIG_MAX 384

typedef uint8_t bg_audit_hash[BG_AUDIT_HASH_LEN];

/* --- leaves --- */

typedef enum bg_audit_kind {
    BG_AUDIT_REQUEST_SENT = 1,     /* we asked a peer */
    BG_AUDIT_ANSWER_RECEIVED = 2,  /* the peer answered us */
    BG_AUDIT_REQUEST_FAILED = 3,   /* our request got no usable answer */
    BG_AUDIT_REQUEST_RECEIVED = 4, /* a peer asked us */
    BG_AUDIT_REQUEST_ANSWERED = 5, /* we answered */
    BG_AUDIT_REQUEST_REFUSED = 6,  /* we refused */
    BG_AUDIT_ANSWER_NOT_SENT = 7,  /* the answer (or refusal) logged before it could not be
                                      handed to the transport: it never left */
} bg_audit_kind;

typedef enum bg_audit_direction {
    BG_AUDIT_OUTBOUND = 1, /* this city asked (kinds 1..3) */
    BG_AUDIT_INBOUND = 2,  /* this city was asked (kinds 4..6) */
} bg_audit_direction;

/* One event as the daemon reports it. Fixed size, no pointers: copy freely.
 * The logging city comes from the log, the direction from the kind. Strings
 * are NUL-terminated; purpose and list printable ASCII without spaces; reason
 * printable ASCII and, so that an identifier cannot slip in by accident, no
 * run of 18 or more letters and digits (the shape of a USCC). */
typedef struct bg_audit_event {
    bg_audit_kind kind;
    int64_t time_ms;
    char city[7]; /* filled by bg_audit_leaf_read; ignored on append */
    char peer[7];
    bg_audit_direction direction; /* filled by bg_audit_leaf_read; ignored on append */
    uint8_t request_id[BG_AUDIT_REQUEST_ID_LEN];
    bool has_request_digest, has_answer_digest;
    uint8_t request_digest[BG_AUDIT_HASH_LEN]; /* SHA-256 of the signed request envelope */
    uint8_t answer_digest[BG_AUDIT_HASH_LEN];  /* SHA-256 of the signed answer envelope */
    char purpose[BG_AUDIT_TEXT_MAX + 1];
    uint8_t authorisation_ref[BG_AUDIT_REF_MAX];
    size_t authorisation_ref_len; /* 0: none */
    char list[BG_AUDIT_TEXT_MAX + 1];
    uint64_t epoch;
    uint32_t items_asked, items_answered;
    uint32_t outcome; /* 0 success */
    char reason[BG_AUDIT_REASON_MAX + 1];
    char application[BG_AUDIT_TEXT_MAX + 1]; /* outbound: our application that asked, "" */
} bg_audit_event;

/* A short name for a kind ("request-sent", ...), "?" if unknown. */
const char *bg_audit_kind_name(int kind);

/* Serialises ev as the AuditLeaf of city (checked as on append). */
int bg_audit_leaf_encode(const bg_audit_event *ev, const char *city, uint8_t out[BG_AUDIT_LEAF_MAX],
                         size_t *len, bg_err *err);
/* Parses leaf bytes strictly (bounds, no unknown fields, canonical). */
int bg_audit_leaf_decode(const uint8_t *leaf, size_t len, bg_audit_event *ev, bg_err *err);

/* --- hashing (RFC 6962 section 2.1) --- */

void bg_audit_hash_leaf(const uint8_t *leaf, size_t len, bg_audit_hash out);
void bg_audit_hash_node(const bg_audit_hash left, const bg_audit_hash right, bg_audit_hash out);
void bg_audit_hash_empty(bg_audit_hash out);
/* Lower-case hex, 64 characters + NUL. */
void bg_audit_hash_hex(const bg_audit_hash h, char out[2 * BG_AUDIT_HASH_LEN + 1]);

/* --- proof verification: hashes only, what peers and outside tools use --- */

/* BG_OK iff proof shows the leaf with hash leaf_hash at index in the tree of
 * size with root (RFC 9162 2.1.3.2); BG_ECRYPTO with what failed otherwise. */
int bg_audit_verify_inclusion(uint64_t index, uint64_t size, const bg_audit_hash leaf_hash,
                              const bg_audit_hash *proof, size_t proof_len,
                              const bg_audit_hash root, bg_err *err);

/* BG_OK iff proof shows the tree of size new_size and root new_root extends
 * the tree of size old_size and root old_root (RFC 9162 2.1.4.2). old_size 0
 * or old_size == new_size take an empty proof (and, for equal sizes, equal
 * roots); a shrinking size fails. */
int bg_audit_verify_consistency(uint64_t old_size, uint64_t new_size, const bg_audit_hash old_root,
                                const bg_audit_hash new_root, const bg_audit_hash *proof,
                                size_t proof_len, bg_err *err);

/* --- tree heads --- */

typedef struct bg_audit_head {
    char origin[7];
    uint64_t size;
    bg_audit_hash root;
    int64_t timestamp_ms;
    uint8_t head[BG_AUDIT_HEAD_BYTES_MAX]; /* the serialised TreeHead: the signed bytes */
    size_t head_len;
    uint8_t sig[BG_SIG_MAX];
    size_t sig_len;
} bg_audit_head;

/* The SignedTreeHead encoding (what heads.log stores and peers exchange). */
int bg_audit_head_encode(const bg_audit_head *h, uint8_t out[BG_AUDIT_SIGNED_HEAD_MAX], size_t *len,
                         bg_err *err);
/* Strict: bounds, no unknown fields, canonical encodings, valid city code.
 * Does not check the signature. */
int bg_audit_head_decode(const uint8_t *buf, size_t len, bg_audit_head *h, bg_err *err);
/* Builds and signs {origin, size, root, timestamp} (not stored anywhere). */
int bg_audit_head_make(EVP_PKEY *key, const char *origin, uint64_t size, const bg_audit_hash root,
                       int64_t timestamp_ms, bg_audit_head *out, bg_err *err);
/* BG_OK iff h's signature verifies under BG_SIG_CTX_TREE_HEAD with key (a
 * public or private key) or cert (whichever is not NULL; cert is checked
 * only for its key: use bg_trust to believe it). */
int bg_audit_head_verify(const bg_audit_head *h, EVP_PKEY *key, X509 *cert, bg_err *err);

/* --- the log --- */

typedef struct bg_audit_log bg_audit_log;

enum {
    BG_AUDIT_READ_ONLY = 1u << 0, /* no repair, no appends, no lock */
    BG_AUDIT_CREATE = 1u << 1,    /* make the directory and empty files if missing */
};

/* What opening found. */
typedef struct bg_audit_open_report {
    uint64_t leaves, heads;
    uint64_t dropped_bytes;   /* torn tails truncated away (read-write) */
    uint64_t dropped_records; /* how many record starts lay in them */
    uint64_t pending_bytes;   /* read-only: incomplete tail bytes ignored */
    char detail[256];         /* which file, which offset, when something was dropped */
} bg_audit_open_report;

/* Opens (or with BG_AUDIT_CREATE makes) the log in dir for city. rep may be
 * NULL. Read-write takes an exclusive lock: BG_EEXIST if another process
 * holds it. Damage that is not a torn tail: BG_EPROTO naming file and offset. */
int bg_audit_open(bg_audit_log **out, const char *dir, const char *city, unsigned flags,
                  bg_audit_open_report *rep, bg_err *err);
void bg_audit_close(bg_audit_log *log);

const char *bg_audit_city(const bg_audit_log *log);
uint64_t bg_audit_size(bg_audit_log *log);

/* Appends one event; *index (may be NULL) gets its leaf index once synced. */
int bg_audit_append(bg_audit_log *log, const bg_audit_event *ev, uint64_t *index, bg_err *err);
/* Appends n (1..BG_AUDIT_BATCH_MAX) events with one write and at most one
 * sync (shared with concurrent appenders); they get consecutive indexes from
 * *first. All or none: one invalid event refuses the batch. */
int bg_audit_append_batch(bg_audit_log *log, const bg_audit_event *ev, size_t n, uint64_t *first,
                          bg_err *err);

/* Root of the first size leaves (size <= current size). */
int bg_audit_root(bg_audit_log *log, uint64_t size, bg_audit_hash root, bg_err *err);
int bg_audit_leaf_hash(bg_audit_log *log, uint64_t index, bg_audit_hash out, bg_err *err);
/* Reads leaf index from disk: its bytes (if buf != NULL; cap >= BG_AUDIT_LEAF_MAX),
 * the decoded event (if ev != NULL), checked against the in-memory hash. */
int bg_audit_leaf_read(bg_audit_log *log, uint64_t index, uint8_t *buf, size_t *len,
                       bg_audit_event *ev, bg_err *err);

/* Inclusion proof of leaf index in the tree of size (index < size <= current). */
int bg_audit_inclusion_proof(bg_audit_log *log, uint64_t index, uint64_t size,
                             bg_audit_hash proof[BG_AUDIT_PROOF_MAX], size_t *proof_len,
                             bg_err *err);
/* Consistency proof from old_size to new_size (old_size <= new_size <= current). */
int bg_audit_consistency_proof(bg_audit_log *log, uint64_t old_size, uint64_t new_size,
                               bg_audit_hash proof[BG_AUDIT_PROOF_MAX], size_t *proof_len,
                               bg_err *err);

/* Signs the current tree {city, size, root, now_ms} with key, appends it to
 * heads.log (synced) and returns it in out (may be NULL). Refuses a clock
 * earlier than the last head's timestamp. */
int bg_audit_sign_head(bg_audit_log *log, EVP_PKEY *key, int64_t now_ms, bg_audit_head *out,
                       bg_err *err);
/* For the daemon's timer: signs (as above) only if the tree grew since the
 * last head and at least interval_s seconds have passed since it (or there is
 * no head and the tree is not empty). *did_sign tells which. */
int bg_audit_maybe_sign(bg_audit_log *log, EVP_PKEY *key, int64_t now_ms, uint32_t interval_s,
                        bg_audit_head *out, bool *did_sign, bg_err *err);
size_t bg_audit_head_count(bg_audit_log *log);
/* The i-th stored head, oldest first; BG_ENOTFOUND past the end. */
int bg_audit_head_get(bg_audit_log *log, size_t i, bg_audit_head *out, bg_err *err);
/* The newest stored head; BG_ENOTFOUND if none. */
int bg_audit_head_latest(bg_audit_log *log, bg_audit_head *out, bg_err *err);

/* --- loss statements (a restored log that gave up witnessed heads) --- */

/* Most heads one statement gives up (one per witness that held one). */
#define BG_AUDIT_LOSS_HEADS_MAX 16
#define BG_AUDIT_LOSS_BYTES_MAX 2400
#define BG_AUDIT_SIGNED_LOSS_MAX 2560

/*
 * "This log was restored from a copy of its first base_size leaves (root base_root);
 * the heads in superseded, which witnesses cosigned, are no longer part of it."
 * Signed by the log's city. A witness whose last cosigned head of origin is one of
 * superseded (byte for byte) takes a new head that extends the base as an
 * acknowledged loss (bg_audit_witness_loss); nothing else changes what a fork is.
 */
typedef struct bg_audit_loss {
    char origin[7];
    uint64_t base_size;
    bg_audit_hash base_root;
    int64_t timestamp_ms;
    size_t nsuperseded;
    bg_audit_head superseded[BG_AUDIT_LOSS_HEADS_MAX]; /* fields and signed bytes; sig_len 0 */
    uint8_t body[BG_AUDIT_LOSS_BYTES_MAX];             /* the serialised LossStatement */
    size_t body_len;
    uint8_t sig[BG_SIG_MAX];
    size_t sig_len;
} bg_audit_loss;

/* Builds and signs a statement that the log of origin continues from the base
 * {base_size, base_root} and gives up heads[0..n) (1..BG_AUDIT_LOSS_HEADS_MAX signed
 * heads of origin: the ones witnesses hold that the log no longer contains). */
int bg_audit_loss_make(EVP_PKEY *key, const char *origin, uint64_t base_size,
                       const bg_audit_hash base_root, const bg_audit_head *heads, size_t n,
                       int64_t now_ms, bg_audit_loss *out, bg_err *err);
/* The SignedLossStatement encoding; decode is strict (bounds, no unknown fields,
 * canonical, every superseded head of origin) and does not check the signature. */
int bg_audit_loss_encode(const bg_audit_loss *l, uint8_t out[BG_AUDIT_SIGNED_LOSS_MAX], size_t *len,
                         bg_err *err);
int bg_audit_loss_decode(const uint8_t *buf, size_t len, bg_audit_loss *l, bg_err *err);
/* BG_OK iff l is signed under BG_SIG_CTX_LOSS by key or cert's key. */
int bg_audit_loss_verify(const bg_audit_loss *l, EVP_PKEY *key, X509 *cert, bg_err *err);
/* Whether l gives up head (the same signed TreeHead bytes). */
bool bg_audit_loss_covers(const bg_audit_loss *l, const bg_audit_head *head);
/* The highest size among the heads l gives up: leaves base_size..that-1 were lost. */
uint64_t bg_audit_loss_lost_to(const bg_audit_loss *l);

/* Appends l to dir's losses.log (made if missing), synced. Only the log's owner,
 * never while another process appends to it. */
int bg_audit_loss_append(const char *dir, const bg_audit_loss *l, bg_err *err);
/* The newest statement in dir's losses.log, checked to be city's; BG_ENOTFOUND if
 * there is none. *count (may be NULL) gets how many the file holds. */
int bg_audit_loss_latest(const char *dir, const char *city, bg_audit_loss *out, size_t *count,
                         bg_err *err);

/*
 * Heads that witnesses hold beyond a log, as a small text file for the operator and
 * the next start: what a refused start found (the gateway writes it) and what the
 * operator accepts to lose (`baygate restore --accept-loss` copies it). One line per
 * witness, "held WITNESS SIZE TIMESTAMP_MS SIGNED_HEAD_HEX"; '#' lines are comments.
 */
#define BG_AUDIT_BEHIND_FILE "behind.txt"      /* in the audit directory */
#define BG_AUDIT_ACCEPT_FILE "accept-loss.txt" /* in the audit directory */

typedef struct bg_audit_held {
    char witness[7];
    bg_audit_head head; /* signed by the log's city */
} bg_audit_held;
#define BG_AUDIT_HELD_MAX 64

/* Writes path atomically (mode 0640): comment (may be NULL; one '#' line per line)
 * then the n heads. */
int bg_audit_held_write(const char *path, const char *comment, const bg_audit_held *h, size_t n,
                        bg_err *err);
/* Reads path strictly (every line a comment or a well-formed head of city); *n gets
 * how many (at most cap). BG_ENOTFOUND if there is no such file. */
int bg_audit_held_read(const char *path, const char *city, bg_audit_held *h, size_t cap, size_t *n,
                       bg_err *err);

/* --- a consistent copy of a live log (backups) --- */

typedef struct bg_audit_copy_report {
    uint64_t leaves, heads; /* what the copy holds */
    bool has_head;          /* latest: the newest head in the copy */
    bg_audit_head latest;
    uint64_t bytes;                   /* of all copied files */
    uint64_t witness_records, losses; /* records of witness.log and losses.log copied */
} bg_audit_copy_report;

/*
 * Copies the audit directory src (possibly in use by a running gateway) to dst
 * (made, mode 0750; must not hold a log): heads.log first, then leaves.log, then
 * witness.log and losses.log, each up to its last complete record, so every head in
 * the copy is covered by the copied leaves (heads are signed only over synced
 * leaves). Then checks the copy: every head's root equals the copied leaves' root at
 * its size. Files are synced. rep may be NULL.
 */
int bg_audit_copy(const char *src, const char *dst, const char *city, bg_audit_copy_report *rep,
                  bg_err *err);

/* --- witnessing --- */

typedef struct bg_audit_cosig {
    char witness[7];
    bg_audit_head head; /* the head cosigned (its sig is the origin's, if known) */
    int64_t cosigned_at_ms;
    uint8_t body[BG_AUDIT_COSIG_BYTES_MAX]; /* the serialised Cosignature: the signed bytes */
    size_t body_len;
    uint8_t sig[BG_SIG_MAX];
    size_t sig_len;
} bg_audit_cosig;

/* SignedCosignature encoding; decode is strict like bg_audit_head_decode and
 * fills head's fields from the embedded TreeHead (head.sig_len = 0). */
int bg_audit_cosig_encode(const bg_audit_cosig *c, uint8_t out[BG_AUDIT_SIGNED_COSIG_MAX],
                          size_t *len, bg_err *err);
int bg_audit_cosig_decode(const uint8_t *buf, size_t len, bg_audit_cosig *c, bg_err *err);
/* BG_OK iff c is signed under BG_SIG_CTX_COSIGN by key or cert's key. */
int bg_audit_cosig_verify(const bg_audit_cosig *c, EVP_PKEY *key, X509 *cert, bg_err *err);

typedef struct bg_audit_witness bg_audit_witness;

/* Why bg_audit_witness_check refused a head (BG_AUDIT_W_OK when it did not). */
typedef enum bg_audit_verdict {
    BG_AUDIT_W_OK = 0,
    BG_AUDIT_W_BAD_INPUT,    /* wrong origin, a peer that is us, malformed proof */
    BG_AUDIT_W_SHRUNK,       /* smaller than a head we already cosigned */
    BG_AUDIT_W_FORK,         /* same size, different root: two histories */
    BG_AUDIT_W_INCONSISTENT, /* the consistency proof does not link the heads */
    BG_AUDIT_W_STORE,        /* could not record it (I/O): nothing was cosigned */
} bg_audit_verdict;
const char *bg_audit_verdict_name(bg_audit_verdict v);

/* Opens (creating witness.log if missing and not read-only) the witness
 * store in dir for self_city. */
int bg_audit_witness_open(bg_audit_witness **out, const char *dir, const char *self_city,
                          unsigned flags, bg_audit_open_report *rep, bg_err *err);
void bg_audit_witness_close(bg_audit_witness *w);

/*
 * A peer's new head, ALREADY VERIFIED by the caller against peer's
 * certificate, with a consistency proof from the last head of peer this store
 * cosigned (bg_audit_witness_last tells the size to ask for). Checks, in
 * order: head->origin == peer != self; not smaller than the last cosigned
 * head; same size => same root (else fork); the proof links the two roots.
 * Only then records the head and a fresh cosignature by key (made at now_ms)
 * and returns it in out. The same head again gets the cosignature already
 * made. On refusal, *verdict says why, the message says it in words, and a
 * fork or inconsistency is kept as evidence in the store. verdict may be NULL.
 */
int bg_audit_witness_check(bg_audit_witness *w, EVP_PKEY *key, const char *peer,
                           const bg_audit_head *head, const bg_audit_hash *proof, size_t proof_len,
                           int64_t now_ms, bg_audit_cosig *out, bg_audit_verdict *verdict,
                           bg_err *err);

/*
 * A peer's new head that does not extend the last head of peer we cosigned, with the
 * peer's loss statement (both ALREADY VERIFIED by the caller against peer's
 * certificate) and the consistency proof from the statement's base to the head.
 * BG_ENOTFOUND (nothing recorded, verdict BG_AUDIT_W_OK): the statement does not give
 * up the head we hold (or we hold none), so it says nothing to us: use
 * bg_audit_witness_check. Otherwise checks that head extends the base (else
 * BG_ECRYPTO, verdict BG_AUDIT_W_INCONSISTENT, kept as a conflict) and records the
 * head, the statement and the head it replaces (an acknowledged loss), cosigns the
 * head by key at now_ms into out; from then on heads must extend this one.
 */
int bg_audit_witness_loss(bg_audit_witness *w, EVP_PKEY *key, const char *peer,
                          const bg_audit_loss *loss, const bg_audit_head *head,
                          const bg_audit_hash *proof, size_t proof_len, int64_t now_ms,
                          bg_audit_cosig *out, bg_audit_verdict *verdict, bg_err *err);
/* How many acknowledged losses the store holds (of every peer). */
size_t bg_audit_witness_loss_count(bg_audit_witness *w);

/* The last head of peer this store cosigned; BG_ENOTFOUND if none yet. */
int bg_audit_witness_last(bg_audit_witness *w, const char *peer, bg_audit_head *head, bg_err *err);

/* Records a cosignature a peer made on one of our heads. The caller has
 * verified it (bg_audit_cosig_verify with the witness's certificate); this
 * checks it is about our city and stores it. A repeat is not stored twice; another
 * cosignature by the same witness of a head of the same size (another time, say) is
 * BG_EEXIST and not stored: at most one per witness and tree size. */
int bg_audit_witness_add_received(bg_audit_witness *w, const bg_audit_cosig *c, bg_err *err);

/* What the store holds, for reports. */
typedef struct bg_audit_peer_info {
    char peer[7];
    bg_audit_head last;       /* the last head cosigned */
    uint64_t cosigned;        /* how many of its heads we cosigned */
    int64_t last_cosigned_ms; /* when we cosigned the last */
    uint64_t conflicts;       /* forks / inconsistencies recorded */
    uint64_t losses;          /* acknowledged losses (heads it gave up by a statement) */
} bg_audit_peer_info;
size_t bg_audit_witness_peer_count(bg_audit_witness *w);
int bg_audit_witness_peer(bg_audit_witness *w, size_t i, bg_audit_peer_info *out, bg_err *err);
size_t bg_audit_witness_received_count(bg_audit_witness *w);
int bg_audit_witness_received(bg_audit_witness *w, size_t i, bg_audit_cosig *out, bg_err *err);
size_t bg_audit_witness_conflict_count(bg_audit_witness *w);
/* The i-th conflict: the refused head, the one cosigned before it, why. */
int bg_audit_witness_conflict(bg_audit_witness *w, size_t i, bg_audit_head *refused,
                              bg_audit_head *previous, char reason[BG_AUDIT_REASON_MAX + 1],
                              bg_err *err);

/* --- certificates kept beside the log (audit_certs.c) --- */

/* Largest certificate kept or carried in a bundle (a city's is ~700 bytes). */
#define BG_AUDIT_CERT_MAX BG_TRUST_CERT_MAX

/* Keeps a copy of city's certificate (DER) as dir/certs/<city>-<sha256 hex>.der,
 * written once and never replaced (a second keep of the same bytes does nothing).
 * The daemon keeps its own (the one its heads are signed with) and each witness's,
 * so that bundles can carry them after a rotation. */
int bg_audit_cert_keep(const char *dir, const char *city, const uint8_t *der, size_t len,
                       bg_err *err);
/* Calls fn with each kept certificate of city, in name order, until it returns true
 * (*found then true). Files whose bytes do not hash to their name are skipped; no
 * certs/ directory is no certificate. */
typedef bool (*bg_audit_cert_fn)(void *ctx, const uint8_t *der, size_t len);
int bg_audit_cert_each(const char *dir, const char *city, bg_audit_cert_fn fn, void *ctx,
                       bool *found, bg_err *err);

/* --- finding leaves (audit_find.c) --- */

/* Which leaves bg_audit_find returns: every criterion given must hold. */
typedef struct bg_audit_filter {
    bool has_request_id;
    uint8_t request_id[BG_AUDIT_REQUEST_ID_LEN];
    char peer[7];                        /* "" for any */
    char purpose[BG_AUDIT_TEXT_MAX + 1]; /* "" for any */
    bool has_authorisation_ref;
    uint8_t authorisation_ref[BG_AUDIT_REF_MAX];
    size_t authorisation_ref_len;
    bool has_since, has_until; /* time_ms >= since_ms, <= until_ms */
    int64_t since_ms, until_ms;
} bg_audit_filter;

bool bg_audit_filter_match(const bg_audit_filter *f, const bg_audit_event *ev);

/* The criteria a caller may give as text (the CLI's options, the API's parameters). */
typedef enum bg_audit_crit {
    BG_AUDIT_CRIT_REQUEST,  /* 32 hex digits */
    BG_AUDIT_CRIT_PEER,     /* a 6-digit city code */
    BG_AUDIT_CRIT_PURPOSE,  /* 1..BG_AUDIT_TEXT_MAX bytes */
    BG_AUDIT_CRIT_AUTH_REF, /* 2..2*BG_AUDIT_REF_MAX hex digits */
    BG_AUDIT_CRIT_SINCE,    /* Unix seconds, YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ */
    BG_AUDIT_CRIT_UNTIL,    /* the same; a date alone takes the whole day */
} bg_audit_crit;

/* Sets criterion c of f from text s; BG_EINVAL with err saying what name (the
 * option or parameter as the caller calls it) must be, f unchanged. Since after until
 * is refused once both are set. */
int bg_audit_filter_set(bg_audit_filter *f, bg_audit_crit c, const char *name, const char *s,
                        bg_err *err);

/* Called for each matching leaf, in index order, with its bytes as stored; false stops. */
typedef bool (*bg_audit_find_fn)(void *ctx, uint64_t index, const bg_audit_event *ev,
                                 const uint8_t *leaf, size_t len);
/* Reads every leaf of the log as it is when called (read-only logs too: safe while the
 * gateway appends) and calls fn for those f matches; *matched (may be NULL) counts them.
 * A leaf that does not read back or decode fails the search, naming its index. */
int bg_audit_find(bg_audit_log *log, const bg_audit_filter *f, bg_audit_find_fn fn, void *ctx,
                  uint64_t *matched, bg_err *err);

/* --- evidence bundles (audit_bundle.c, audit_bundle_check.c) ---
 *
 * The evidence one city's log holds of one exchange (every leaf with its request id),
 * checkable offline with the federation CA certificate and a roster alone: each leaf as
 * stored with its inclusion proof in a signed tree head, that head, the certificate
 * that signed it, and the witnesses' cosignatures on that head or on a later one (then
 * with the consistency proof from the bundle's head to it), each with the witness's
 * certificate. Encoded as an EvidenceBundle (proto/audit.proto). No enterprise
 * identifier is in it: the leaves hold none.
 */

#define BG_AUDIT_BUNDLE_MAX (16 * 1024 * 1024) /* a serialised bundle */
#define BG_AUDIT_BUNDLE_LEAVES 4096            /* leaves of one exchange */
#define BG_AUDIT_BUNDLE_COSIGS 64              /* cosignatures, one per witness */

typedef struct bg_audit_bundle_leaf {
    uint64_t index;
    uint8_t leaf[BG_AUDIT_LEAF_MAX]; /* the AuditLeaf as stored */
    size_t len;
    bg_audit_hash proof[BG_AUDIT_PROOF_MAX]; /* inclusion in the bundle's head */
    size_t proof_len;
} bg_audit_bundle_leaf;

typedef struct bg_audit_bundle_cosig {
    bg_audit_cosig cosig; /* on the bundle's head or a later head of the same log */
    bg_audit_hash consistency[BG_AUDIT_PROOF_MAX]; /* bundle head -> cosig.head */
    size_t consistency_len;
    uint8_t *cert; /* the witness's certificate, DER (malloc'd) */
    size_t cert_len;
} bg_audit_bundle_cosig;

typedef struct bg_audit_bundle {
    char city[7]; /* whose log */
    uint8_t request_id[BG_AUDIT_REQUEST_ID_LEN];
    bg_audit_head head; /* signed by city */
    uint8_t *cert;      /* the certificate that signed head, DER (malloc'd) */
    size_t cert_len;
    bg_audit_bundle_leaf *leaves; /* index order */
    size_t n_leaves;
    bg_audit_bundle_cosig *cosigs;
    size_t n_cosigs;
} bg_audit_bundle;

void bg_audit_bundle_free(bg_audit_bundle *b);

/* Where a bundle comes from: the city's log, its witness store, its audit directory
 * (kept certificates) and its current certificate. */
typedef struct bg_audit_bundle_src {
    bg_audit_log *log;
    bg_audit_witness *witness; /* NULL: no cosignatures */
    const char *dir;
    const uint8_t *cert; /* DER */
    size_t cert_len;
} bg_audit_bundle_src;

/* The rest of src for the open log of city in dir, read-only (safe while the gateway
 * appends): its witness store (none yet: no cosignatures) and the city's current
 * certificate read from cert_path (one that does not load leaves the kept ones).
 * Close with bg_audit_bundle_src_close (which leaves the log open). */
int bg_audit_bundle_src_open(bg_audit_bundle_src *src, bg_audit_log *log, const char *dir,
                             const char *city, const char *cert_path, bg_err *err);
void bg_audit_bundle_src_close(bg_audit_bundle_src *src);

/*
 * The bundle of the exchange request_id: its leaves (BG_ENOTFOUND if none; BG_ELIMIT
 * past BG_AUDIT_BUNDLE_LEAVES), the first signed head that covers them all (the one
 * the most witnesses have cosigned: BG_ENOTFOUND if no head covers them yet), the
 * certificate that verifies it (the current one or a kept one), and per witness the
 * cosignature on the nearest head at least as large, if its certificate is kept.
 * Cosignatures left out are said in note (may be NULL). *out: bg_audit_bundle_free.
 */
int bg_audit_bundle_build(const bg_audit_bundle_src *src,
                          const uint8_t request_id[BG_AUDIT_REQUEST_ID_LEN], bg_audit_bundle **out,
                          char note[BG_ERR_MSG_MAX], bg_err *err);

/* EvidenceBundle bytes (malloc'd: free()). */
int bg_audit_bundle_encode(const bg_audit_bundle *b, uint8_t **out, size_t *len, bg_err *err);
/* Parses outside bytes: at most BG_AUDIT_BUNDLE_MAX, unpacked under bg_pb_unpack's
 * budget, no unknown fields, every count and length bounded, the head and cosignatures
 * decoded strictly. Nothing is verified: see bg_audit_bundle_verify. */
int bg_audit_bundle_decode(const uint8_t *buf, size_t len, bg_audit_bundle **out, bg_err *err);

/* What bg_audit_bundle_verify checked (filled as far as it got). */
typedef struct bg_audit_bundle_report {
    size_t leaves; /* verified: decoded, this city and request, proof to the head */
    char signer_fp[BG_SIG_FP_HEX_LEN + 1];
    size_t witnesses; /* cosignatures verified, one per witness */
    char witness[BG_AUDIT_BUNDLE_COSIGS][7];
    uint64_t witness_size[BG_AUDIT_BUNDLE_COSIGS]; /* the size each cosigned */
} bg_audit_bundle_report;

/*
 * Checks b offline at now, stopping at the first failure (BG_ECRYPTO and a message
 * naming it): the city is a roster member; its certificate chains to trust's CA (not
 * revoked if trust has a CRL, valid at now) and is the one the roster pins; the head
 * is of the city's log and signed with that certificate's key; every leaf decodes, is
 * the city's, has the bundle's request id, lies in the head's tree (indexes strictly
 * increasing) and its inclusion proof leads to the head's root; every cosignature is by
 * a roster member other than the city (one each), with its pinned, trusted certificate,
 * on a head of the city's log no smaller than the bundle's, and consistent with it.
 */
int bg_audit_bundle_verify(const bg_audit_bundle *b, bg_trust *trust, const bg_roster *roster,
                           time_t now, bg_audit_bundle_report *rep, bg_err *err);

#endif
