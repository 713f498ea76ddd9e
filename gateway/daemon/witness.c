/*
 * witness.c - the witness thread (checking and cosigning peers' heads) and the answers
 * to peers witnessing us (see witness.h).
 */
#include "gateway/daemon/witness.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "gateway/daemon/codes.h"
#include "gateway/daemon/core.h"
#include "gateway/daemon/log.h"
#include "proto/pb.h"
#include "proto/witness.pb-c.h"

#define WITNESS_PATH_MAX (BG_CONFIG_PATH_MAX + 16)

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
             uint32_t want_type, bg_env_opened **out, bg_rt_result *res)
{
    bg_env_fields f = {.recipient = p->city,
                       .body_type = body_type,
                       .body = body,
                       .body_len = body_len,
                       .purpose = "audit"};
    return gw_call(gw, p, &f, (int)gw->cfg.request_ms, want_type, NULL, out, res);
}

/* A peer's HeadAnswer, checked: its head with the proof from the size we asked, and
 * its loss statement (NULL: none) with the proof from the statement's base. */
typedef struct head_ans {
    bg_audit_head head;
    bg_audit_hash proof[BG_AUDIT_PROOF_MAX];
    size_t nproof;
    bg_audit_loss *loss;
    bg_audit_hash lproof[BG_AUDIT_PROOF_MAX];
    size_t nlproof;
} head_ans;

/* n proof hashes from the wire into out. */
static int
read_proof(const ProtobufCBinaryData *items, size_t n, bg_audit_hash out[BG_AUDIT_PROOF_MAX],
           size_t *nout, bg_err *err)
{
    *nout = 0;
    if (n > BG_AUDIT_PROOF_MAX)
        return bg_err_set(err, BG_EPROTO, "consistency proof of %zu hashes", n);
    for (size_t i = 0; i < n; i++) {
        if (items[i].len != BG_AUDIT_HASH_LEN)
            return bg_err_set(err, BG_EPROTO, "proof hash %zu is %zu bytes", i, items[i].len);
        memcpy(out[(*nout)++], items[i].data, BG_AUDIT_HASH_LEN);
    }
    return BG_OK;
}

/* The answer's loss statement (if any), signed with key, and its proof into a. */
static int
read_loss(const Baygate__HeadAnswer *ha, EVP_PKEY *key, head_ans *a, bg_err *err)
{
    if (ha->loss_statement.len == 0)
        return BG_OK;
    a->loss = malloc(sizeof *a->loss);
    if (a->loss == NULL)
        return bg_err_set(err, BG_ENOMEM, "out of memory");
    int rc = bg_audit_loss_decode(ha->loss_statement.data, ha->loss_statement.len, a->loss, err);
    if (rc == BG_OK)
        rc = bg_audit_loss_verify(a->loss, key, NULL, err);
    if (rc == BG_OK)
        rc = read_proof(ha->loss_consistency, ha->n_loss_consistency, a->lproof, &a->nlproof, err);
    if (rc != BG_OK) {
        free(a->loss);
        a->loss = NULL;
    }
    return rc;
}

/* Reads p's head answer o into a: the signed head (and loss statement), checked against
 * the certificate o came with, and the proofs. BG_ENOTFOUND: p has no head yet; else
 * logged. On BG_OK the caller frees a->loss. */
static int
witness_read_head(bg_gw *gw, gw_peer *p, const bg_env_opened *o, head_ans *a)
{
    bg_err err = {0};
    Baygate__HeadAnswer *ha = bg_pb_unpack(&baygate__head_answer__descriptor, o->body_len, o->body);
    EVP_PKEY *key = NULL;
    const char *stage = "answer";
    memset(a, 0, sizeof *a);
    int rc = ha == NULL ? bg_err_set(&err, BG_EPROTO, "head answer does not parse") : BG_OK;
    if (rc == BG_OK && ha->signed_head.len == 0)
        rc = BG_ENOTFOUND;
    if (rc == BG_OK)
        rc = read_proof(ha->consistency, ha->n_consistency, a->proof, &a->nproof, &err);
    if (rc == BG_OK)
        rc = bg_audit_head_decode(ha->signed_head.data, ha->signed_head.len, &a->head, &err);
    if (rc == BG_OK) {
        stage = "signature";
        key = sender_key(gw, o, &err);
        rc = key == NULL ? BG_ECRYPTO : bg_audit_head_verify(&a->head, key, NULL, &err);
    }
    /* A statement that does not check out is left aside, not the head with it: the
     * head is then checked as if there were none. */
    if (rc == BG_OK && read_loss(ha, key, a, &err) != BG_OK)
        bg_log(BG_LOG_WARN, "audit.loss_statement_refused", "peer=%s error=\"%s\"", p->city,
               err.msg);
    if (rc != BG_OK && rc != BG_ENOTFOUND)
        bg_log(BG_LOG_WARN, "audit.head_refused", "peer=%s stage=%s error=\"%s\"", p->city, stage,
               err.msg);
    EVP_PKEY_free(key);
    if (ha != NULL)
        bg_pb_free(ha);
    return rc;
}

/* A head that does not extend the one we cosigned, with p's loss statement: an
 * acknowledged loss when the statement gives up our head (cosigned), BG_ENOTFOUND when
 * it says nothing about it (check the head as usual), a fork when it does not hold. */
static int
witness_check_loss(bg_gw *gw, gw_peer *p, const head_ans *a, bg_audit_cosig *cosig)
{
    bg_err err = {0};
    bg_audit_verdict verdict = BG_AUDIT_W_OK;
    bg_audit_head before;
    pthread_mutex_lock(&gw->witness_store_lock);
    gw_ident *me = gw_ident_get(gw);
    bool had = bg_audit_witness_last(gw->witness, p->city, &before, NULL) == BG_OK;
    int rc = bg_audit_witness_loss(gw->witness, me->id->key, p->city, a->loss, &a->head, a->lproof,
                                   a->nlproof, bg_env_now_ms(), cosig, &verdict, &err);
    pthread_mutex_unlock(&gw->witness_store_lock);
    gw_ident_release(me);
    if (rc == BG_ENOTFOUND)
        return rc;
    if (rc == BG_OK) {
        atomic_fetch_add(&gw->cosigned, 1);
        uint64_t base = a->loss->base_size, prev = had ? before.size : 0;
        char lost[48] = "none";
        if (prev > base)
            snprintf(lost, sizeof lost, "%llu..%llu", (unsigned long long)base,
                     (unsigned long long)prev - 1);
        bg_log(BG_LOG_WARN, "audit.loss_acknowledged",
               "peer=%s previous_size=%llu base=%llu lost=%s size=%llu", p->city,
               (unsigned long long)prev, (unsigned long long)base, lost,
               (unsigned long long)a->head.size);
    } else if (verdict == BG_AUDIT_W_INCONSISTENT) {
        atomic_fetch_add(&gw->forks_detected, 1);
        bg_log(BG_LOG_ERROR, "audit.fork_detected", "peer=%s verdict=%s size=%llu error=\"%s\"",
               p->city, bg_audit_verdict_name(verdict), (unsigned long long)a->head.size, err.msg);
    } else {
        bg_log(BG_LOG_WARN, "audit.head_refused", "peer=%s verdict=%s error=\"%s\"", p->city,
               bg_audit_verdict_name(verdict), err.msg);
    }
    return rc;
}

/* Checks head against what we witnessed of p before; a cosignature when consistent. */
static int
witness_check(bg_gw *gw, gw_peer *p, const bg_audit_head *head,
              const bg_audit_hash proof[BG_AUDIT_PROOF_MAX], size_t nproof, bg_audit_cosig *cosig)
{
    bg_err err = {0};
    bg_audit_verdict verdict = BG_AUDIT_W_OK;
    gw_ident *me = gw_ident_get(gw);
    pthread_mutex_lock(&gw->witness_store_lock);
    int rc = bg_audit_witness_check(gw->witness, me->id->key, p->city, head, proof, nproof,
                                    bg_env_now_ms(), cosig, &verdict, &err);
    pthread_mutex_unlock(&gw->witness_store_lock);
    gw_ident_release(me);
    if (rc == BG_OK) {
        atomic_fetch_add(&gw->cosigned, 1);
    } else if (verdict == BG_AUDIT_W_FORK || verdict == BG_AUDIT_W_INCONSISTENT ||
               verdict == BG_AUDIT_W_SHRUNK) {
        atomic_fetch_add(&gw->forks_detected, 1);
        bg_log(BG_LOG_ERROR, "audit.fork_detected", "peer=%s verdict=%s size=%llu error=\"%s\"",
               p->city, bg_audit_verdict_name(verdict), (unsigned long long)head->size, err.msg);
    } else {
        bg_log(BG_LOG_WARN, "audit.head_refused", "peer=%s verdict=%s error=\"%s\"", p->city,
               bg_audit_verdict_name(verdict), err.msg);
    }
    return rc;
}

/* Hands our cosignature of p's head back to p. */
static void
witness_deliver(bg_gw *gw, gw_peer *p, const bg_audit_cosig *cosig, uint64_t size)
{
    bg_err err = {0};
    uint8_t enc[BG_AUDIT_SIGNED_COSIG_MAX];
    size_t enc_len = 0;
    if (bg_audit_cosig_encode(cosig, enc, &enc_len, &err) != BG_OK) {
        bg_log(BG_LOG_ERROR, "audit.cosign_failed", "peer=%s error=\"%s\"", p->city, err.msg);
        return;
    }
    Baygate__CosignSubmit cs = BAYGATE__COSIGN_SUBMIT__INIT;
    cs.signed_cosignature.data = enc;
    cs.signed_cosignature.len = enc_len;
    gw_ident *me = gw_ident_get(gw);        /* the one the envelope below is sealed with */
    cs.certificate.data = me->id->cert_der; /* for the peer's evidence bundles */
    cs.certificate.len = me->id->cert_der_len;
    size_t blen = baygate__cosign_submit__get_packed_size(&cs);
    uint8_t *body = malloc(blen);
    if (body != NULL)
        baygate__cosign_submit__pack(&cs, body);
    gw_ident_release(me);
    if (body == NULL) {
        bg_log(BG_LOG_ERROR, "audit.cosign_failed", "peer=%s error=\"out of memory\"", p->city);
        return;
    }
    bg_env_opened *ack = NULL;
    bg_rt_result res = {0};
    int rc = witness_call(gw, p, BAYGATE__WITNESS_BODY__WITNESS_BODY_COSIGN, body, blen,
                          BAYGATE__WITNESS_BODY__WITNESS_BODY_COSIGN_ACK, &ack, &res);
    free(body);
    if (rc == BG_OK)
        bg_log(BG_LOG_INFO, "audit.cosigned", "peer=%s size=%llu", p->city,
               (unsigned long long)size);
    else
        bg_log(BG_LOG_WARN, "audit.cosign_not_delivered", "peer=%s size=%llu error=\"%s\"", p->city,
               (unsigned long long)size, res.error);
    bg_env_opened_free(ack);
}

/* One witnessing round with peer p: fetch its head, check, cosign, hand it back. */
static void
witness_peer(bg_gw *gw, gw_peer *p)
{
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
    bg_rt_result res = {0};
    if (witness_call(gw, p, BAYGATE__WITNESS_BODY__WITNESS_BODY_HEAD_REQUEST, body, blen,
                     BAYGATE__WITNESS_BODY__WITNESS_BODY_HEAD_ANSWER, &o, &res) != BG_OK) {
        bg_log(BG_LOG_DEBUG, "audit.witness_unreachable", "peer=%s error=\"%s\"", p->city,
               res.error);
        return;
    }
    head_ans a;
    bg_audit_cosig cosig;
    if (witness_read_head(gw, p, o, &a) == BG_OK) {
        /* A loss statement first: it is about the head we hold, whatever the new one is. */
        int rc = a.loss != NULL ? witness_check_loss(gw, p, &a, &cosig) : BG_ENOTFOUND;
        if (rc == BG_ENOTFOUND)
            rc = witness_check(gw, p, &a.head, a.proof, a.nproof, &cosig);
        if (rc == BG_OK)
            witness_deliver(gw, p, &cosig, a.head.size);
        free(a.loss);
    }
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
        size_t n = gw_peers_get(gw, peers);
        for (size_t i = 0; i < n; i++) {
            witness_peer(gw, peers[i]);
            gw_peer_release(peers[i]);
        }
        pthread_mutex_lock(&gw->witness_lock);
    }
    pthread_mutex_unlock(&gw->witness_lock);
    return NULL;
}

int
gw_witness_start(bg_gw *gw, bg_err *err)
{
    char dir[WITNESS_PATH_MAX];
    if (snprintf(dir, sizeof dir, "%s/audit", gw->cfg.data_dir) >= (int)sizeof dir)
        return bg_err_set(err, BG_ELIMIT, "data directory path too long");
    int rc = bg_audit_witness_open(&gw->witness, dir, gw->cfg.city, BG_AUDIT_CREATE, NULL, err);
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
gw_witness_stop(bg_gw *gw)
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
gw_witness_close(bg_gw *gw)
{
    if (gw->witness == NULL)
        return;
    bg_audit_witness_close(gw->witness);
    gw->witness = NULL;
    pthread_mutex_destroy(&gw->witness_store_lock);
}

/* ------------------------------------------------- answering witnesses */

/* Keeps the witness's certificate that came with its cosignature, if it is the one its
 * envelope was verified with (so as trusted as the envelope): bundles carry it. */
static void
witness_keep_cert(bg_gw *gw, const bg_env_opened *o, const Baygate__CosignSubmit *cs)
{
    uint8_t fp[BG_SIG_FP_LEN];
    char dir[WITNESS_PATH_MAX];
    bg_err err = {0};
    if (cs->certificate.len == 0 || cs->certificate.len > BG_AUDIT_CERT_MAX)
        return;
    crypto_hash_sha256(fp, cs->certificate.data, cs->certificate.len);
    if (sodium_memcmp(fp, o->cert_fingerprint, BG_SIG_FP_LEN) != 0) {
        bg_log(BG_LOG_WARN, "audit.witness_cert_ignored",
               "peer=%s reason=\"not the certificate its envelope was signed with\"", o->sender);
        return;
    }
    snprintf(dir, sizeof dir, "%s/audit", gw->cfg.data_dir);
    if (bg_audit_cert_keep(dir, o->sender, cs->certificate.data, cs->certificate.len, &err) !=
        BG_OK)
        bg_log(BG_LOG_WARN, "audit.cert_keep_failed", "peer=%s error=\"%s\"", o->sender, err.msg);
}

/* Witness traffic is not evidence (evidence.h): answered and refused without an ev. */
#define witness_refuse(gw, o, req, code, ...)                                                      \
    gw_refuse(gw, NULL, o, req, code, "audit.witness_refused", __VA_ARGS__)

/* A witness that asks from beyond our log cosigned more than we hold: say so (the start
 * check, witnessed.h, missed it: the witness was not reachable then). */
static void
note_behind(bg_gw *gw, const char *peer, uint64_t from)
{
    uint64_t size = bg_audit_size(gw->audit);
    if (from <= size)
        return;
    /* A witness still on a head our loss statement gives up: it takes the statement. */
    for (size_t i = 0; gw->loss != NULL && i < gw->loss->nsuperseded; i++)
        if (gw->loss->superseded[i].size == from)
            return;
    bg_log(BG_LOG_ERROR, "audit.behind_witness",
           "peer=%s their_size=%llu our_size=%llu missing=%llu..%llu effect=\"it sees a "
           "shrunk log (a fork); restart to check every witness, then restore or accept the "
           "loss\"",
           peer, (unsigned long long)from, (unsigned long long)size, (unsigned long long)size,
           (unsigned long long)from - 1);
}

/* Our loss statement (if any) into ha, with the proof from its base to head, for a
 * witness that asked from beyond the base (one whose last head may be one it gives up).
 * enc and proof are the caller's room for them. */
static int
attach_loss(bg_gw *gw, uint64_t from, const bg_audit_head *head, Baygate__HeadAnswer *ha,
            uint8_t enc[BG_AUDIT_SIGNED_LOSS_MAX], bg_audit_hash proof[BG_AUDIT_PROOF_MAX],
            ProtobufCBinaryData items[BG_AUDIT_PROOF_MAX], bg_err *err)
{
    const bg_audit_loss *l = gw->loss;
    if (l == NULL || from <= l->base_size || head->size < l->base_size)
        return BG_OK;
    size_t len = 0, n = 0;
    int rc = bg_audit_loss_encode(l, enc, &len, err);
    if (rc == BG_OK)
        rc = bg_audit_consistency_proof(gw->audit, l->base_size, head->size, proof, &n, err);
    if (rc != BG_OK)
        return rc;
    for (size_t i = 0; i < n; i++)
        items[i] = (ProtobufCBinaryData){.data = proof[i], .len = BG_AUDIT_HASH_LEN};
    ha->loss_statement = (ProtobufCBinaryData){.data = enc, .len = len};
    ha->n_loss_consistency = n;
    ha->loss_consistency = items;
    return BG_OK;
}

#define HEAD_ANSWER_MAX                                                                            \
    (BG_AUDIT_SIGNED_HEAD_MAX + BG_AUDIT_SIGNED_LOSS_MAX +                                         \
     2 * BG_AUDIT_PROOF_MAX * (BG_AUDIT_HASH_LEN + 2) + 32)

void
gw_witness_answer_head(bg_gw *gw, const bg_env_opened *o, bg_tp_request *req)
{
    Baygate__HeadRequest *hr =
        bg_pb_unpack(&baygate__head_request__descriptor, o->body_len, o->body);
    if (hr == NULL) {
        witness_refuse(gw, o, req, BG_GW_E_BAD_BODY, "head request does not parse");
        return;
    }
    uint64_t from = hr->from_size;
    bg_pb_free(hr);
    note_behind(gw, o->sender, from);
    bg_audit_head head;
    bg_err err = {0};
    Baygate__HeadAnswer ha = BAYGATE__HEAD_ANSWER__INIT;
    uint8_t enc[BG_AUDIT_SIGNED_HEAD_MAX], lenc[BG_AUDIT_SIGNED_LOSS_MAX];
    size_t enc_len = 0;
    bg_audit_hash proof[BG_AUDIT_PROOF_MAX], lproof[BG_AUDIT_PROOF_MAX];
    ProtobufCBinaryData items[BG_AUDIT_PROOF_MAX], litems[BG_AUDIT_PROOF_MAX];
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
    if (rc == BG_OK)
        rc = attach_loss(gw, from, &head, &ha, lenc, lproof, litems, &err);
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
    uint8_t body[HEAD_ANSWER_MAX];
    size_t blen = baygate__head_answer__get_packed_size(&ha);
    if (blen > sizeof body) {
        witness_refuse(gw, o, req, BG_GW_E_INTERNAL, "head answer too large");
        return;
    }
    baygate__head_answer__pack(&ha, body);
    gw_answer(gw, NULL, o, req, BAYGATE__WITNESS_BODY__WITNESS_BODY_HEAD_ANSWER, body, blen);
}

/* Did we sign a head of our tree at size (heads are signed in increasing size)? */
static bool
head_signed(bg_gw *gw, uint64_t size)
{
    size_t lo = 0, hi = bg_audit_head_count(gw->audit);
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        bg_audit_head h;
        bg_err err = {0};
        if (bg_audit_head_get(gw->audit, mid, &h, &err) != BG_OK)
            return false;
        if (h.size == size)
            return true;
        if (h.size < size)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

void
gw_witness_answer_cosign(bg_gw *gw, const bg_env_opened *o, bg_tp_request *req)
{
    Baygate__CosignSubmit *cs =
        bg_pb_unpack(&baygate__cosign_submit__descriptor, o->body_len, o->body);
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
    /* Only heads we signed: otherwise every size of the tree would be a head to cosign. */
    if (rc == BG_OK && !head_signed(gw, c.head.size))
        rc = bg_err_set(&err, BG_EPROTO, "we signed no head of size %llu",
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
    if (rc == BG_OK)
        witness_keep_cert(gw, o, cs);
    if (cs != NULL)
        bg_pb_free(cs);
    if (rc != BG_OK) {
        atomic_fetch_add(&gw->cosigs_refused, 1);
        witness_refuse(gw, o, req, rc == BG_EEXIST ? BG_GW_E_COSIG_HELD : BG_GW_E_BAD_BODY,
                       "cosignature refused: %.200s", err.msg);
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
