/*
 * psi_sync.c - snapshot, delta or nothing, chunk by chunk, verified (see psi_sync.h).
 */
#include "gateway/daemon/psi_sync.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "certs/sig.h"
#include "common/clock.h"
#include "gateway/daemon/codes.h"
#include "gateway/daemon/core.h"
#include "gateway/daemon/fetch.h"
#include "gateway/daemon/log.h"
#include "gateway/daemon/snapdisk.h"
#include "proto/pb.h"
#include "proto/psi.pb-c.h"

/* One sync: what we hold and what chunk 0 announced. */
typedef struct sync_state {
    gw_cached *cur; /* what we hold (a reference), or NULL */
    uint64_t gen, epoch;
    bool is_delta;
    size_t count; /* chunks; 0: we are current */
    uint8_t digest[BG_SNAP_DIGESTBYTES];
    uint8_t sig[BG_SIG_MAX];
    size_t sig_len;
    bool resigned; /* we are current, but the peer signed the digest again */
    bg_snap_reader *rd;
    uint8_t cert[BG_TRUST_CERT_MAX]; /* the certificate of chunk 0's answer, kept on disk */
    size_t cert_len;
    int fetch_slot; /* in gw->fetches while the stream comes and is checked; -1: none */
} sync_state;

/* The peer's signature over digest, with the certificate its answer was verified with. */
static int
verify_digest(pjob *j, const bg_env_opened *o, const uint8_t *digest, const uint8_t *sig,
              size_t sig_len)
{
    EVP_PKEY *key = NULL;
    bg_err err = {0};
    int rc = bg_trust_verify_cached(j->gw->trust, o->cert_fingerprint, j->city, time(NULL), NULL,
                                    &key, &err);
    if (rc == BG_OK)
        rc = bg_sig_verify(key, BG_SIG_CTX_SNAPSHOT, digest, BG_SNAP_DIGESTBYTES, sig, sig_len,
                           &err);
    EVP_PKEY_free(key);
    if (rc != BG_OK)
        psi_job_fail(j, BG_GW_E_BAD_ANSWER, "%s's snapshot digest signature: %s", j->city, err.msg);
    return rc;
}

/* Asks for chunk idx; *o and *sc (the caller frees both) are the answer, checked to be
 * the chunk asked (for idx > 0: of the epoch chunk 0 announced). */
static int
sync_ask(pjob *j, gw_peer *p, const sync_state *st, size_t idx, bg_env_opened **o,
         Baygate__SnapshotChunk **sc)
{
    Baygate__SnapshotRequest rq = BAYGATE__SNAPSHOT_REQUEST__INIT;
    rq.list = (char *)j->list;
    if (st->cur != NULL) {
        rq.have_generation = st->cur->info.generation;
        rq.have_epoch = st->cur->info.epoch;
        rq.have_digest.data = st->cur->info.digest;
        rq.have_digest.len = BG_SNAP_DIGESTBYTES;
    }
    if (idx > 0) {
        rq.want_epoch = st->epoch;
        rq.want_delta = st->is_delta;
    }
    rq.chunk_index = (uint32_t)idx;
    uint8_t body[256];
    size_t blen = baygate__snapshot_request__get_packed_size(&rq);
    if (blen > sizeof body) {
        psi_job_fail(j, BG_GW_E_INTERNAL, "snapshot request too large");
        return BG_ELIMIT;
    }
    baygate__snapshot_request__pack(&rq, body);
    j->call_epoch = idx > 0 ? st->epoch : 0;
    j->call_items = 0;
    int rc = psi_job_call(j, p, BAYGATE__PSI_BODY__PSI_BODY_SNAPSHOT_REQUEST, body, blen,
                          BAYGATE__PSI_BODY__PSI_BODY_SNAPSHOT_CHUNK, o);
    if (rc != BG_OK)
        return rc;
    const Baygate__SnapshotChunk *c = *sc =
        bg_pb_unpack(&baygate__snapshot_chunk__descriptor, (*o)->body_len, (*o)->body);
    if (c == NULL || c->list == NULL || strcmp(c->list, j->list) != 0 ||
        c->digest.len != BG_SNAP_DIGESTBYTES || c->chunk_index != idx ||
        (idx > 0 && (c->epoch != st->epoch || c->generation != st->gen ||
                     c->delta != st->is_delta || c->chunk_count != st->count ||
                     sodium_memcmp(c->digest.data, st->digest, sizeof st->digest) != 0))) {
        psi_job_fail(j, BG_GW_E_BAD_ANSWER, "%s sent a snapshot chunk that is not the one asked",
                     j->city);
        return BG_EPROTO;
    }
    return BG_OK;
}

/* We are current: if the peer signed the digest again (it rotated its certificate), the
 * new signature, checked like a new one, is what attestations must carry from now on. */
static int
sync_resigned(pjob *j, sync_state *st, const bg_env_opened *o, const Baygate__SnapshotChunk *sc)
{
    const ProtobufCBinaryData *sig = &sc->digest_signature;
    if (sig->len == 0 || sig->len > sizeof st->sig ||
        (sig->len == st->cur->sig_len && sodium_memcmp(sig->data, st->cur->sig, sig->len) == 0))
        return BG_OK;
    int rc = verify_digest(j, o, st->digest, sig->data, sig->len);
    if (rc == BG_OK) {
        st->sig_len = sig->len;
        memcpy(st->sig, sig->data, sig->len);
        st->resigned = true;
    }
    return rc;
}

/* Chunk 0: what the peer will send (nothing, a delta, the full snapshot) and its
 * signed digest; a reader for the stream unless we are current. */
static int
sync_first(pjob *j, sync_state *st, const bg_env_opened *o, const Baygate__SnapshotChunk *sc)
{
    st->gen = sc->generation;
    st->epoch = sc->epoch;
    st->is_delta = sc->delta;
    st->count = sc->chunk_count;
    memcpy(st->digest, sc->digest.data, sizeof st->digest);
    const gw_cached *cur = st->cur;
    st->cert_len = 0;
    if (o->cert_der != NULL && o->cert_der_len <= sizeof st->cert) {
        memcpy(st->cert, o->cert_der, o->cert_der_len);
        st->cert_len = o->cert_der_len;
    }
    if (st->count == 0) {
        /* We are current: the answer must say so about what we hold. */
        if (cur == NULL || st->gen != cur->info.generation || st->epoch != cur->info.epoch ||
            sodium_memcmp(st->digest, cur->info.digest, sizeof st->digest) != 0) {
            psi_job_fail(j, BG_GW_E_BAD_ANSWER, "%s says we are current, but we are not", j->city);
            return BG_EPROTO;
        }
        return sync_resigned(j, st, o, sc);
    }
    if (st->is_delta && cur == NULL) {
        psi_job_fail(j, BG_GW_E_BAD_ANSWER, "%s sent a delta to a snapshot we do not hold",
                     j->city);
        return BG_EPROTO;
    }
    int rc = verify_digest(j, o, st->digest, sc->digest_signature.data, sc->digest_signature.len);
    if (rc == BG_OK && sc->digest_signature.len <= sizeof st->sig) {
        st->sig_len = sc->digest_signature.len;
        memcpy(st->sig, sc->digest_signature.data, st->sig_len);
    }
    bg_err err = {0};
    if (rc == BG_OK && (rc = bg_snap_reader_new(&st->rd, GW_PSI_CACHE_MAX_ENTRIES, &err)) != BG_OK)
        psi_job_fail(j, BG_GW_E_INTERNAL, "%s", err.msg);
    return rc;
}

/* Chunk idx of stream bytes fed: shown in status from chunk 0 on (which says how long
 * the stream is), so a fetch of hundreds of MiB can be watched. */
static void
sync_shown(pjob *j, sync_state *st, size_t idx, size_t bytes)
{
    if (idx == 0) {
        bg_snap_info info;
        gw_fetch f = {.generation = st->gen,
                      .epoch = st->epoch,
                      .delta = st->is_delta,
                      .chunks = (uint32_t)st->count};
        snprintf(f.city, sizeof f.city, "%s", j->city);
        snprintf(f.list, sizeof f.list, "%s", j->list);
        if (bg_snap_reader_info(st->rd, &info, NULL) == BG_OK)
            f.bytes = info.wire_bytes;
        st->fetch_slot = gw_fetch_begin(&j->gw->fetches, &f);
    }
    gw_fetch_progress(&j->gw->fetches, st->fetch_slot, bytes);
}

/* Asks for every chunk and feeds it to the reader (chunk 0 announces how many). */
static int
sync_fetch(pjob *j, gw_peer *p, sync_state *st)
{
    int rc = BG_OK;
    for (size_t idx = 0; rc == BG_OK && (idx == 0 || idx < st->count); idx++) {
        bg_env_opened *o = NULL;
        Baygate__SnapshotChunk *sc = NULL;
        bg_err err = {0};
        rc = sync_ask(j, p, st, idx, &o, &sc);
        if (rc == BG_OK && idx == 0)
            rc = sync_first(j, st, o, sc);
        if (rc == BG_OK && st->count > 0 &&
            (rc = bg_snap_reader_feed(st->rd, sc->data.data, sc->data.len, &err)) != BG_OK)
            psi_job_fail(j, BG_GW_E_BAD_ANSWER, "%s's snapshot chunk %zu: %s", j->city, idx,
                         err.msg);
        else if (rc == BG_OK && st->count > 0)
            sync_shown(j, st, idx, sc->data.len - BG_SNAP_CHUNK_HEADERBYTES);
        if (sc != NULL)
            bg_pb_free(sc);
        bg_env_opened_free(o);
    }
    return rc;
}

/* The stream read: the snapshot built (from ours and a delta, or whole), checked to be
 * the signed one, and cached; *out a reference to it. */
static int
sync_finish(pjob *j, sync_state *st, gw_cached **out)
{
    bg_err err = {0};
    bg_snap_delta *delta = NULL;
    bg_snap *snap = NULL;
    int rc;
    if (st->is_delta) {
        rc = bg_snap_reader_finish_delta(st->rd, &delta, &err);
        if (rc == BG_OK)
            rc = bg_snap_delta_apply(&snap, st->cur->snap, delta, 0, &err);
    } else {
        rc = bg_snap_reader_finish(st->rd, st->digest, &snap, 0, &err);
    }
    bg_snap_delta_free(delta);
    if (rc != BG_OK) {
        psi_job_fail(j, BG_GW_E_BAD_ANSWER, "%s's snapshot does not verify: %s", j->city, err.msg);
        return rc;
    }
    bg_snap_info info;
    bg_snap_get_info(snap, &info);
    gw_cached *nc = NULL;
    /* What we built must be exactly what the city signed. */
    if (strcmp(info.list, j->list) != 0 || info.generation != st->gen || info.epoch != st->epoch ||
        sodium_memcmp(info.digest, st->digest, sizeof st->digest) != 0) {
        psi_job_fail(j, BG_GW_E_BAD_ANSWER, "%s's snapshot is not the signed one", j->city);
        rc = BG_EPROTO;
    } else if ((nc = calloc(1, sizeof *nc)) == NULL) {
        psi_job_fail(j, BG_GW_E_INTERNAL, "out of memory");
        rc = BG_ENOMEM;
    } else {
        atomic_init(&nc->refs, 1);
        nc->snap = snap;
        snap = NULL;
        nc->info = info;
        memcpy(nc->sig, st->sig, st->sig_len);
        nc->sig_len = st->sig_len;
        gw_cache_put(&j->gw->cache, j->city, j->list, nc);
        j->snapshot_kind = st->is_delta ? "delta" : "full";
        if (gw_snapdisk_save(j->gw->cfg.data_dir, j->city, nc, st->cert, st->cert_len, &err) !=
            BG_OK)
            bg_log(BG_LOG_WARN, "psi.snapshot_not_kept", "peer=%s list=%s error=\"%s\"", j->city,
                   j->list, err.msg);
    }
    bg_snap_free(snap);
    *out = nc;
    return rc;
}

/* What we held of (j->city, j->list) before a restart, checked (snapdisk.h) and
 * cached; NULL if nothing usable is kept. */
static gw_cached *
sync_restore(pjob *j)
{
    bg_gw *gw = j->gw;
    bg_roster *r = gw_roster_get(gw);
    gw_cached *c = NULL;
    bg_err err = {0};
    int64_t t0 = bg_clock_ms();
    int rc = gw_snapdisk_load(gw->cfg.data_dir, j->city, j->list, gw->trust, r, &c, &err);
    bg_roster_free(r);
    if (rc == BG_OK) {
        bg_log(BG_LOG_INFO, "psi.snapshot_restored",
               "peer=%s list=%s generation=%llu epoch=%llu entries=%zu ms=%lld", j->city, j->list,
               (unsigned long long)c->info.generation, (unsigned long long)c->info.epoch,
               c->info.count, (long long)(bg_clock_ms() - t0));
        gw_cache_put(&gw->cache, j->city, j->list, c);
    } else if (rc != BG_ENOTFOUND) {
        bg_log(BG_LOG_WARN, "psi.snapshot_discarded", "peer=%s list=%s error=\"%s\"", j->city,
               j->list, err.msg);
    }
    return c;
}

int
psi_sync_snapshot(pjob *j, gw_peer *p, gw_cached **out)
{
    *out = NULL;
    sync_state st = {.cur = gw_cache_get(&j->gw->cache, j->city, j->list), .fetch_slot = -1};
    if (st.cur == NULL)
        st.cur = sync_restore(j);
    int rc = sync_fetch(j, p, &st);
    if (rc == BG_OK && st.count == 0) {
        j->snapshot_kind = "cached";
        gw_cached *nc = st.resigned ? gw_cached_resigned(st.cur, st.sig, st.sig_len) : NULL;
        if (nc != NULL) {
            gw_cache_put(&j->gw->cache, j->city, j->list, nc);
            gw_cached_release(st.cur);
            st.cur = nc;
            bg_err err = {0};
            if (gw_snapdisk_save_sig(j->gw->cfg.data_dir, j->city, j->list, st.sig, st.sig_len,
                                     st.cert, st.cert_len, &err) != BG_OK)
                bg_log(BG_LOG_WARN, "psi.snapshot_not_kept", "peer=%s list=%s error=\"%s\"",
                       j->city, j->list, err.msg);
        }
        *out = st.cur; /* our reference becomes the caller's */
        return BG_OK;
    }
    if (rc == BG_OK)
        rc = sync_finish(j, &st, out);
    gw_fetch_end(&j->gw->fetches, st.fetch_slot);
    bg_snap_reader_free(st.rd);
    gw_cached_release(st.cur);
    return rc;
}
