/*
 * evidence.c - the evidence log in the daemon: leaves per exchange, tree heads on a
 * cadence, witnessing of peers (see evidence.h).
 */
#include "gateway/daemon/evidence.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <sodium.h>

#include "gateway/daemon/gw.h"
#include "gateway/daemon/gw_int.h"
#include "gateway/daemon/log.h"
#include "proto/witness.pb-c.h"
#include "proto/pb.h"

#define EV_PATH_MAX (BG_CONFIG_PATH_MAX + 16)

static int64_t
wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Printable ASCII without spaces (the leaf's rule for purpose and list), else "?". */
static void
copy_token(char *dst, size_t cap, const char *src)
{
    size_t n = 0;
    for (; src != NULL && src[n] != '\0' && n + 1 < cap; n++) {
        unsigned char c = (unsigned char)src[n];
        dst[n] = c > 0x20 && c < 0x7f ? (char)c : '?';
    }
    dst[n] = '\0';
}

/*
 * A reason for the log: printable ASCII, and any run of 18 or more letters and digits
 * (the shape of a USCC) replaced by "[...]", so that no identifier can reach the log
 * through a message that quotes its input.
 */
static void
copy_reason(char out[BG_AUDIT_REASON_MAX + 1], const char *in)
{
    size_t o = 0;
    for (size_t i = 0; in != NULL && in[i] != '\0' && o < BG_AUDIT_REASON_MAX;) {
        size_t run = 0;
        while (in[i + run] != '\0' && ((in[i + run] >= '0' && in[i + run] <= '9') ||
                                       (in[i + run] >= 'A' && in[i + run] <= 'Z') ||
                                       (in[i + run] >= 'a' && in[i + run] <= 'z')))
            run++;
        if (run >= 18) {
            for (const char *m = "[...]"; *m != '\0' && o < BG_AUDIT_REASON_MAX; m++)
                out[o++] = *m;
            i += run;
            continue;
        }
        if (run == 0) {
            unsigned char c = (unsigned char)in[i++];
            out[o++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
            continue;
        }
        for (size_t k = 0; k < run && o < BG_AUDIT_REASON_MAX; k++)
            out[o++] = in[i + k];
        i += run;
    }
    out[o] = '\0';
}

_Static_assert(BG_ENV_ID_LEN == BG_AUDIT_REQUEST_ID_LEN, "request ids are logged whole");

/* What both sides log of a request (e zeroed by the caller). */
static void
ev_request(bg_audit_event *e, const char *peer, const uint8_t request_id[BG_ENV_ID_LEN],
           const uint8_t digest[32], const char *purpose, const uint8_t *ref, size_t ref_len)
{
    e->time_ms = wall_ms();
    snprintf(e->peer, sizeof e->peer, "%s", peer);
    memcpy(e->request_id, request_id, sizeof e->request_id);
    e->has_request_digest = true;
    memcpy(e->request_digest, digest, sizeof e->request_digest);
    copy_token(e->purpose, sizeof e->purpose, purpose);
    if (ref != NULL && ref_len <= BG_AUDIT_REF_MAX) {
        memcpy(e->authorisation_ref, ref, ref_len);
        e->authorisation_ref_len = ref_len;
    }
}

/* ------------------------------------------------------------ inbound */

void
gw_ev_inbound(gw_ev *ev, const bg_env_opened *o)
{
    memset(ev, 0, sizeof *ev);
    ev_request(&ev->e, o->sender, o->request_id, o->digest, o->purpose, o->authorisation_ref,
               o->authorisation_ref_len);
}

void
gw_ev_note(gw_ev *ev, const char *list, uint64_t epoch, uint32_t asked, uint32_t answered)
{
    if (ev == NULL)
        return;
    if (list != NULL)
        copy_token(ev->e.list, sizeof ev->e.list, list);
    ev->e.epoch = epoch;
    ev->e.items_asked = asked;
    ev->e.items_answered = answered;
}

void
gw_ev_refused(gw_ev *ev, uint32_t code, const char *reason)
{
    if (ev == NULL)
        return;
    ev->e.outcome = code != 0 ? code : BG_GW_E_INTERNAL;
    copy_reason(ev->e.reason, reason);
}

static bool
append_pair(bg_gw *gw, const bg_audit_event pair[2], const char *what)
{
    bg_err err = {0};
    if (gw->audit != NULL && bg_audit_append_batch(gw->audit, pair, 2, NULL, &err) == BG_OK)
        return true;
    atomic_fetch_add(&gw->evidence_failed, 1);
    bg_log(BG_LOG_ERROR, "audit.append_failed", "what=%s peer=%s error=\"%s\"", what, pair[0].peer,
           gw->audit != NULL ? err.msg : "no evidence log");
    return false;
}

bool
gw_ev_commit_inbound(bg_gw *gw, gw_ev *ev, const uint8_t *bytes, size_t len)
{
    bg_audit_event pair[2];
    pair[0] = ev->e;
    pair[0].kind = BG_AUDIT_REQUEST_RECEIVED;
    pair[0].has_answer_digest = false;
    pair[0].outcome = 0;
    pair[0].reason[0] = '\0';
    pair[0].items_answered = 0;
    pair[1] = ev->e;
    if (bytes == NULL && pair[1].outcome == 0) {
        pair[1].outcome = BG_GW_E_INTERNAL;
        copy_reason(pair[1].reason, "dropped: no answer could be made");
    }
    pair[1].kind = pair[1].outcome == 0 ? BG_AUDIT_REQUEST_ANSWERED : BG_AUDIT_REQUEST_REFUSED;
    pair[1].has_answer_digest = bytes != NULL;
    if (bytes != NULL)
        crypto_hash_sha256(pair[1].answer_digest, bytes, len);
    return append_pair(gw, pair, "inbound");
}

/* ----------------------------------------------------------- outbound */

void
gw_ev_commit_outbound(bg_gw *gw, const char *peer, const bg_env_fields *f,
                      const uint8_t request_id[BG_ENV_ID_LEN], const uint8_t request_digest[32],
                      const bg_env_opened *answer, uint32_t code, const char *reason,
                      const gw_call_ev *cev)
{
    bg_audit_event pair[2];
    memset(pair, 0, sizeof pair);
    bg_audit_event *e = &pair[0];
    ev_request(e, peer, request_id, request_digest, f->purpose, f->authorisation_ref,
               f->authorisation_ref_len);
    e->kind = BG_AUDIT_REQUEST_SENT;
    copy_token(e->list, sizeof e->list, cev->list);
    e->epoch = cev->epoch;
    e->items_asked = cev->items;
    pair[1] = *e;
    if (answer != NULL) {
        pair[1].kind = BG_AUDIT_ANSWER_RECEIVED;
        pair[1].has_answer_digest = true;
        memcpy(pair[1].answer_digest, answer->digest, sizeof pair[1].answer_digest);
    } else {
        pair[1].kind = BG_AUDIT_REQUEST_FAILED;
    }
    pair[1].outcome = code;
    pair[1].items_answered = code == 0 ? cev->items : 0;
    if (code != 0)
        copy_reason(pair[1].reason, reason);
    append_pair(gw, pair, "outbound");
}

/* -------------------------------------------------------- heads, start */

void
gw_evidence_tick(bg_gw *gw)
{
    if (gw->audit == NULL)
        return;
    bg_audit_head h;
    bool did = false;
    bg_err err = {0};
    if (bg_audit_maybe_sign(gw->audit, gw->id->key, wall_ms(), gw->cfg.head_interval_s, &h, &did,
                            &err) != BG_OK) {
        bg_log(BG_LOG_ERROR, "audit.head_failed", "error=\"%s\"", err.msg);
        return;
    }
    if (did) {
        char hex[2 * BG_AUDIT_HASH_LEN + 1];
        bg_audit_hash_hex(h.root, hex);
        bg_log(BG_LOG_INFO, "audit.head_signed", "size=%llu root=%s", (unsigned long long)h.size,
               hex);
    }
}

static void *witness_main(void *arg);

int
gw_evidence_start(bg_gw *gw, bg_err *err)
{
    char dir[EV_PATH_MAX];
    if (snprintf(dir, sizeof dir, "%s/audit", gw->cfg.data_dir) >= (int)sizeof dir)
        return bg_err_set(err, BG_ELIMIT, "data directory path too long");
    if (mkdir(gw->cfg.data_dir, 0700) != 0 && errno != EEXIST)
        return bg_err_set(err, BG_EIO, "cannot make %s: %s", gw->cfg.data_dir, strerror(errno));
    bg_audit_open_report rep;
    memset(&rep, 0, sizeof rep);
    int rc = bg_audit_open(&gw->audit, dir, gw->cfg.city, BG_AUDIT_CREATE, &rep, err);
    if (rc != BG_OK)
        return rc;
    if (rep.dropped_bytes > 0)
        bg_log(BG_LOG_WARN, "audit.tail_repaired", "dropped_bytes=%llu records=%llu detail=\"%s\"",
               (unsigned long long)rep.dropped_bytes, (unsigned long long)rep.dropped_records,
               rep.detail);
    bg_log(BG_LOG_INFO, "audit.opened", "leaves=%llu heads=%llu dir=%s",
           (unsigned long long)rep.leaves, (unsigned long long)rep.heads, dir);
    rc = bg_audit_witness_open(&gw->witness, dir, gw->cfg.city, BG_AUDIT_CREATE, NULL, err);
    if (rc != BG_OK)
        return rc;
    pthread_mutex_init(&gw->witness_lock, NULL);
    pthread_mutex_init(&gw->witness_store_lock, NULL);
    pthread_cond_init(&gw->witness_wake, NULL);
    gw->witness_stop = false;
    if (pthread_create(&gw->witness_thread, NULL, witness_main, gw) != 0)
        return bg_err_set(err, BG_ENOMEM, "cannot start the witness thread");
    gw->witness_started = true;
    return BG_OK;
}

void
gw_evidence_stop_witness(bg_gw *gw)
{
    if (!gw->witness_started)
        return;
    pthread_mutex_lock(&gw->witness_lock);
    gw->witness_stop = true;
    pthread_cond_broadcast(&gw->witness_wake);
    pthread_mutex_unlock(&gw->witness_lock);
    pthread_join(gw->witness_thread, NULL);
    gw->witness_started = false;
    pthread_mutex_destroy(&gw->witness_lock);
    pthread_cond_destroy(&gw->witness_wake);
}

void
gw_evidence_close(bg_gw *gw)
{
    bool had_witness = gw->witness != NULL;
    bg_audit_witness_close(gw->witness);
    gw->witness = NULL;
    bg_audit_close(gw->audit);
    gw->audit = NULL;
    if (had_witness)
        pthread_mutex_destroy(&gw->witness_store_lock);
}

/* ------------------------------------------------------------ witness */

/* The verified public key of the certificate that signed o (a reference to free). */
static EVP_PKEY *
sender_key(bg_gw *gw, const bg_env_opened *o, bg_err *err)
{
    EVP_PKEY *key = NULL;
    if (bg_trust_verify_cached(gw->trust, o->cert_fingerprint, o->sender, time(NULL), NULL, &key,
                               err) != BG_OK)
        return NULL;
    return key;
}

/* gw_call of one witness-protocol body to peer p: purpose "audit", the configured
 * request time, no evidence-log entry (cev NULL). */
static int
witness_call(bg_gw *gw, gw_peer *p, uint32_t body_type, const uint8_t *body, size_t body_len,
             uint32_t want_type, bg_env_opened **out, gw_call_res *res)
{
    bg_env_fields f = {.recipient = p->city,
                       .body_type = body_type,
                       .body = body,
                       .body_len = body_len,
                       .purpose = "audit"};
    return gw_call(gw, p, &f, (int)gw->cfg.request_ms, want_type, NULL, out, res);
}

/* One witnessing round with peer p: fetch its head, check, cosign, hand it back. */
static void
witness_peer(bg_gw *gw, gw_peer *p)
{
    bg_err err = {0};
    bg_audit_head last;
    uint64_t from = 0;
    pthread_mutex_lock(&gw->witness_store_lock);
    if (bg_audit_witness_last(gw->witness, p->city, &last, NULL) == BG_OK)
        from = last.size;
    pthread_mutex_unlock(&gw->witness_store_lock);

    Baygate__HeadRequest hr = BAYGATE__HEAD_REQUEST__INIT;
    hr.from_size = from;
    uint8_t body[32];
    size_t blen = baygate__head_request__pack(&hr, body);
    bg_env_opened *o = NULL;
    gw_call_res res = {0};
    if (witness_call(gw, p, BAYGATE__WITNESS_BODY__WITNESS_BODY_HEAD_REQUEST, body, blen,
                     BAYGATE__WITNESS_BODY__WITNESS_BODY_HEAD_ANSWER, &o, &res) != BG_OK) {
        bg_log(BG_LOG_DEBUG, "audit.witness_unreachable", "peer=%s error=\"%s\"", p->city,
               res.error);
        return;
    }
    Baygate__HeadAnswer *ha = bg_pb_unpack(&baygate__head_answer__descriptor, o->body_len, o->body);
    bg_audit_head head;
    bg_audit_hash proof[BG_AUDIT_PROOF_MAX];
    size_t nproof = 0;
    EVP_PKEY *key = NULL;
    const char *stage = "answer";
    int rc = ha == NULL ? bg_err_set(&err, BG_EPROTO, "head answer does not parse") : BG_OK;
    if (rc == BG_OK && ha->signed_head.len == 0)
        goto done; /* no head yet */
    if (rc == BG_OK && ha->n_consistency > BG_AUDIT_PROOF_MAX)
        rc = bg_err_set(&err, BG_EPROTO, "consistency proof of %zu hashes", ha->n_consistency);
    for (size_t i = 0; rc == BG_OK && i < ha->n_consistency; i++) {
        if (ha->consistency[i].len != BG_AUDIT_HASH_LEN)
            rc = bg_err_set(&err, BG_EPROTO, "proof hash %zu is %zu bytes", i,
                            ha->consistency[i].len);
        else
            memcpy(proof[nproof++], ha->consistency[i].data, BG_AUDIT_HASH_LEN);
    }
    if (rc == BG_OK)
        rc = bg_audit_head_decode(ha->signed_head.data, ha->signed_head.len, &head, &err);
    if (rc == BG_OK) {
        stage = "signature";
        key = sender_key(gw, o, &err);
        rc = key == NULL ? BG_ECRYPTO : bg_audit_head_verify(&head, key, NULL, &err);
    }
    if (rc != BG_OK) {
        bg_log(BG_LOG_WARN, "audit.head_refused", "peer=%s stage=%s error=\"%s\"", p->city, stage,
               err.msg);
        goto done;
    }
    bg_audit_cosig cosig;
    bg_audit_verdict verdict = BG_AUDIT_W_OK;
    pthread_mutex_lock(&gw->witness_store_lock);
    rc = bg_audit_witness_check(gw->witness, gw->id->key, p->city, &head, proof, nproof, wall_ms(),
                                &cosig, &verdict, &err);
    pthread_mutex_unlock(&gw->witness_store_lock);
    if (rc != BG_OK) {
        if (verdict == BG_AUDIT_W_FORK || verdict == BG_AUDIT_W_INCONSISTENT ||
            verdict == BG_AUDIT_W_SHRUNK) {
            atomic_fetch_add(&gw->forks_detected, 1);
            bg_log(BG_LOG_ERROR, "audit.fork_detected", "peer=%s verdict=%s size=%llu error=\"%s\"",
                   p->city, bg_audit_verdict_name(verdict), (unsigned long long)head.size, err.msg);
        } else {
            bg_log(BG_LOG_WARN, "audit.head_refused", "peer=%s verdict=%s error=\"%s\"", p->city,
                   bg_audit_verdict_name(verdict), err.msg);
        }
        goto done;
    }
    atomic_fetch_add(&gw->cosigned, 1);
    uint8_t enc[BG_AUDIT_SIGNED_COSIG_MAX];
    size_t enc_len = 0;
    if (bg_audit_cosig_encode(&cosig, enc, &enc_len, &err) != BG_OK) {
        bg_log(BG_LOG_ERROR, "audit.cosign_failed", "peer=%s error=\"%s\"", p->city, err.msg);
        goto done;
    }
    Baygate__CosignSubmit cs = BAYGATE__COSIGN_SUBMIT__INIT;
    cs.signed_cosignature.data = enc;
    cs.signed_cosignature.len = enc_len;
    uint8_t cbody[BG_AUDIT_SIGNED_COSIG_MAX + 16];
    size_t cblen = baygate__cosign_submit__pack(&cs, cbody);
    bg_env_opened *ack = NULL;
    gw_call_res cres = {0};
    if (witness_call(gw, p, BAYGATE__WITNESS_BODY__WITNESS_BODY_COSIGN, cbody, cblen,
                     BAYGATE__WITNESS_BODY__WITNESS_BODY_COSIGN_ACK, &ack, &cres) == BG_OK)
        bg_log(BG_LOG_INFO, "audit.cosigned", "peer=%s size=%llu", p->city,
               (unsigned long long)head.size);
    else
        bg_log(BG_LOG_WARN, "audit.cosign_not_delivered", "peer=%s size=%llu error=\"%s\"", p->city,
               (unsigned long long)head.size, cres.error);
    bg_env_opened_free(ack);
done:
    EVP_PKEY_free(key);
    if (ha != NULL)
        bg_pb_free(ha);
    bg_env_opened_free(o);
}

static void *
witness_main(void *arg)
{
    bg_gw *gw = arg;
    pthread_mutex_lock(&gw->witness_lock);
    while (!gw->witness_stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += gw->cfg.witness_interval_s;
        while (!gw->witness_stop &&
               pthread_cond_timedwait(&gw->witness_wake, &gw->witness_lock, &until) == 0)
            ;
        if (gw->witness_stop)
            break;
        pthread_mutex_unlock(&gw->witness_lock);
        gw_peer *peers[BG_ROSTER_MAX_MEMBERS];
        size_t n = 0;
        pthread_mutex_lock(&gw->lock);
        for (size_t i = 0; i < gw->npeers; i++) {
            atomic_fetch_add(&gw->peers[i]->refs, 1);
            peers[n++] = gw->peers[i];
        }
        pthread_mutex_unlock(&gw->lock);
        for (size_t i = 0; i < n; i++) {
            witness_peer(gw, peers[i]);
            gw_peer_release(peers[i]);
        }
        pthread_mutex_lock(&gw->witness_lock);
    }
    pthread_mutex_unlock(&gw->witness_lock);
    return NULL;
}

/* ------------------------------------------------- answering witnesses */

/* Witness traffic is not evidence (evidence.h): answered and refused without an ev. */
#define witness_refuse(gw, o, req, code, ...)                                                      \
    gw_refuse(gw, NULL, o, req, code, "audit.witness_refused", __VA_ARGS__)

void
gw_witness_answer_head(bg_gw *gw, const bg_env_opened *o, bg_tp_request *req)
{
    Baygate__HeadRequest *hr = bg_pb_unpack(&baygate__head_request__descriptor, o->body_len, o->body);
    if (hr == NULL) {
        witness_refuse(gw, o, req, BG_GW_E_BAD_BODY, "head request does not parse");
        return;
    }
    uint64_t from = hr->from_size;
    bg_pb_free(hr);
    bg_audit_head head;
    bg_err err = {0};
    Baygate__HeadAnswer ha = BAYGATE__HEAD_ANSWER__INIT;
    uint8_t enc[BG_AUDIT_SIGNED_HEAD_MAX];
    size_t enc_len = 0;
    bg_audit_hash proof[BG_AUDIT_PROOF_MAX];
    ProtobufCBinaryData items[BG_AUDIT_PROOF_MAX];
    size_t nproof = 0;
    int rc = bg_audit_head_latest(gw->audit, &head, &err);
    if (rc == BG_ENOTFOUND) {
        gw_answer(gw, NULL, o, req, BAYGATE__WITNESS_BODY__WITNESS_BODY_HEAD_ANSWER, NULL, 0);
        return;
    }
    if (rc == BG_OK)
        rc = bg_audit_head_encode(&head, enc, &enc_len, &err);
    if (rc == BG_OK && from > 0 && from < head.size)
        rc = bg_audit_consistency_proof(gw->audit, from, head.size, proof, &nproof, &err);
    if (rc != BG_OK) {
        witness_refuse(gw, o, req, BG_GW_E_INTERNAL, "no head to give: %.200s", err.msg);
        return;
    }
    for (size_t i = 0; i < nproof; i++) {
        items[i].data = proof[i];
        items[i].len = BG_AUDIT_HASH_LEN;
    }
    ha.signed_head.data = enc;
    ha.signed_head.len = enc_len;
    ha.n_consistency = nproof;
    ha.consistency = items;
    uint8_t body[BG_AUDIT_SIGNED_HEAD_MAX + BG_AUDIT_PROOF_MAX * (BG_AUDIT_HASH_LEN + 2) + 16];
    size_t blen = baygate__head_answer__get_packed_size(&ha);
    if (blen > sizeof body) {
        witness_refuse(gw, o, req, BG_GW_E_INTERNAL, "head answer too large");
        return;
    }
    baygate__head_answer__pack(&ha, body);
    gw_answer(gw, NULL, o, req, BAYGATE__WITNESS_BODY__WITNESS_BODY_HEAD_ANSWER, body, blen);
}

void
gw_witness_answer_cosign(bg_gw *gw, const bg_env_opened *o, bg_tp_request *req)
{
    Baygate__CosignSubmit *cs = bg_pb_unpack(&baygate__cosign_submit__descriptor, o->body_len, o->body);
    bg_audit_cosig c;
    bg_err err = {0};
    EVP_PKEY *key = NULL;
    int rc = cs == NULL ? bg_err_set(&err, BG_EPROTO, "cosignature does not parse")
                        : bg_audit_cosig_decode(cs->signed_cosignature.data,
                                                cs->signed_cosignature.len, &c, &err);
    if (rc == BG_OK && strcmp(c.witness, o->sender) != 0)
        rc = bg_err_set(&err, BG_EPROTO, "cosignature by %s sent by %s", c.witness, o->sender);
    if (rc == BG_OK && (key = sender_key(gw, o, &err)) == NULL)
        rc = BG_ECRYPTO;
    if (rc == BG_OK)
        rc = bg_audit_cosig_verify(&c, key, NULL, &err);
    /* Only a head of our own tree as it is: a cosignature on anything else is noise. */
    bg_audit_hash root;
    if (rc == BG_OK && (c.head.size > bg_audit_size(gw->audit) ||
                        bg_audit_root(gw->audit, c.head.size, root, &err) != BG_OK ||
                        sodium_memcmp(root, c.head.root, BG_AUDIT_HASH_LEN) != 0))
        rc = bg_err_set(&err, BG_EPROTO, "the cosigned head (size %llu) is not one of our tree",
                        (unsigned long long)c.head.size);
    size_t before = 0, after = 0;
    if (rc == BG_OK) {
        pthread_mutex_lock(&gw->witness_store_lock);
        before = bg_audit_witness_received_count(gw->witness);
        rc = bg_audit_witness_add_received(gw->witness, &c, &err);
        after = bg_audit_witness_received_count(gw->witness);
        pthread_mutex_unlock(&gw->witness_store_lock);
    }
    EVP_PKEY_free(key);
    if (cs != NULL)
        bg_pb_free(cs);
    if (rc != BG_OK) {
        witness_refuse(gw, o, req, BG_GW_E_BAD_BODY, "cosignature refused: %.200s", err.msg);
        return;
    }
    if (after > before)
        atomic_fetch_add(&gw->cosigs_received, 1);
    Baygate__CosignAck ack = BAYGATE__COSIGN_ACK__INIT;
    ack.stored = after > before;
    uint8_t body[8];
    size_t blen = baygate__cosign_ack__pack(&ack, body);
    gw_answer(gw, NULL, o, req, BAYGATE__WITNESS_BODY__WITNESS_BODY_COSIGN_ACK, body, blen);
}
