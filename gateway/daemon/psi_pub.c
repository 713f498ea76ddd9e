/*
 * psi_pub.c - OPRF keys, snapshots, epochs and deltas of the lists a city
 * publishes (see psi_pub.h for the design).
 */
#include "gateway/daemon/psi_pub.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "common/file.h"
#include "domain/date.h"
#include "domain/scale.h"
#include "domain/uscc.h"
#include "gateway/attest/attest.h"
#include "gateway/daemon/log.h"
#include "gateway/store/store.h"
#include "mpc/oprf.h"

/* mpc keeps its own limits (it knows no domain); the glue is where they must agree. */
_Static_assert(BG_SNAP_GRADE_MAX == BG_GRADE_MAX, "a sealed grade holds any grade of a scale");
_Static_assert(BG_SNAP_SCALE_MAX + 1 == sizeof(((bg_scale *)0)->name),
               "a sealed scale name holds any scale name");

#define PUB_CHECK_EVERY_S 5 /* the builder looks at the store at least this often */
#define PUB_PATH_MAX 4096

struct bg_pub {
    char data_dir[PUB_PATH_MAX];
    char city[7];

    pthread_mutex_t lock; /* key, cur[], offered, rotate, poked, stop, status */
    EVP_PKEY *key;        /* signs now (a reference), with its certificate */
    X509 *cert;
    uint8_t fp[BG_SIG_FP_LEN]; /* the certificate's */
    bool resign;               /* the key changed: sign what is published again */
    uint8_t *status;           /* the signed status list (malloc'd) */
    size_t status_len;
    pthread_cond_t wake, built;
    bg_pub_snap *cur[BG_PUB_LISTS];
    bool offered[BG_LIST_COUNT];
    bool rotate[BG_PUB_LISTS];
    bool poked, stop;
    bool failing; /* the builder's last look at the store failed (a full disk, say) */
    pthread_t thread;
    bool started;

    /* Builder thread only. */
    bg_store *store;
    int64_t built_import[BG_PUB_LISTS];
    int32_t built_day[BG_PUB_LISTS]; /* entries expire by the day: rebuilt when it changes */
    bool store_missing_logged;
};

static const char *
pub_list_name(int i)
{
    return i < BG_LIST_COUNT ? bg_list_names[i] : BG_LIST_GRADES;
}

int
bg_pub_list_index(const char *name)
{
    if (name == NULL)
        return -1;
    if (strcmp(name, BG_LIST_GRADES) == 0)
        return BG_LIST_COUNT;
    return bg_list_index(name, strlen(name));
}

static void
pub_snap_free(bg_pub_snap *s)
{
    if (s == NULL)
        return;
    if (s->base != NULL) { /* a re-signed copy: the snapshot is base's */
        bg_pub_snap *b = s->base;
        free(s);
        if (atomic_fetch_sub(&b->refs, 1) == 1)
            pub_snap_free(b);
        return;
    }
    bg_snap_free(s->snap);
    bg_snap_delta_free(s->delta);
    if (s->sk != NULL)
        sodium_free(s->sk);
    free(s);
}

void
bg_pub_snap_release(bg_pub_snap *s)
{
    if (s != NULL && atomic_fetch_sub(&s->refs, 1) == 1)
        pub_snap_free(s);
}

bg_pub_snap *
bg_pub_get(bg_pub *p, const char *list)
{
    int i = bg_pub_list_index(list);
    if (p == NULL || i < 0)
        return NULL;
    pthread_mutex_lock(&p->lock);
    bg_pub_snap *s = p->cur[i];
    if (s != NULL && i < BG_LIST_COUNT && !p->offered[i])
        s = NULL; /* withdrawn from the roster: no longer served */
    if (s != NULL)
        atomic_fetch_add(&s->refs, 1);
    pthread_mutex_unlock(&p->lock);
    return s;
}

/* ------------------------------------------------------------------ keys */

static int
key_path(const bg_pub *p, const char *list, uint64_t gen, char *out, size_t n, bg_err *err)
{
    int k = snprintf(out, n, "%s/psi-keys/%s.%llu.key", p->data_dir, list, (unsigned long long)gen);
    if (k < 0 || (size_t)k >= n)
        return bg_err_set(err, BG_EINVAL, "PSI key path too long");
    return BG_OK;
}

/* Writes a new key file atomically: a crash leaves the old state or the whole key. */
static int
key_write(const bg_pub *p, const char *list, uint64_t gen, const uint8_t sk[BG_OPRF_SCALARBYTES],
          bg_err *err)
{
    char dir[PUB_PATH_MAX], path[PUB_PATH_MAX];
    int k = snprintf(dir, sizeof dir, "%s/psi-keys", p->data_dir);
    if (k < 0 || (size_t)k >= sizeof dir)
        return bg_err_set(err, BG_EINVAL, "PSI key directory path too long");
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return bg_err_set(err, BG_EIO, "cannot create %s: %s", dir, strerror(errno));
    int rc = key_path(p, list, gen, path, sizeof path, err);
    if (rc != BG_OK)
        return rc;
    return bg_file_write_replace(path, sk, BG_OPRF_SCALARBYTES, 0600, err);
}

/* Reads the key of (list, gen) into sk (caller's secure buffer). */
static int
key_read(const bg_pub *p, const char *list, uint64_t gen, uint8_t *sk, bg_err *err)
{
    char path[PUB_PATH_MAX];
    int rc = key_path(p, list, gen, path, sizeof path, err);
    if (rc != BG_OK)
        return rc;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return bg_err_set(err, BG_ENOTFOUND, "PSI key %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || (st.st_mode & 077) != 0 || st.st_size != BG_OPRF_SCALARBYTES) {
        close(fd);
        return bg_err_set(err, BG_ECRYPTO,
                          "PSI key %s must be a 32-byte file readable by its owner only", path);
    }
    ssize_t n = read(fd, sk, BG_OPRF_SCALARBYTES);
    close(fd);
    if (n != (ssize_t)BG_OPRF_SCALARBYTES ||
        bg_oprf_scalar_check(sk, BG_OPRF_SCALARBYTES, NULL) != BG_OK) {
        sodium_memzero(sk, BG_OPRF_SCALARBYTES);
        return bg_err_set(err, BG_ECRYPTO, "PSI key %s is not a valid key", path);
    }
    return BG_OK;
}

/* The key of the current generation of list into sk (new generation if rotate or none). */
static int
key_current(bg_pub *p, const char *list, bool rotate, uint64_t *gen, uint8_t *sk, bg_err *err)
{
    uint64_t g = 0;
    int rc = bg_store_psi_generation(p->store, list, &g, err);
    if (rc != BG_OK)
        return rc;
    if (g != 0 && !rotate)
        rc = key_read(p, list, g, sk, err);
    if (g == 0 || rotate) {
        g++;
        rc = bg_oprf_keygen(sk, err);
        if (rc == BG_OK)
            rc = key_write(p, list, g, sk, err);
        /* Recorded after the file is durable: a recorded generation always has a key. */
        if (rc == BG_OK)
            rc = bg_store_psi_add_generation(p->store, list, g, err);
        if (rc == BG_OK)
            bg_log(BG_LOG_INFO, "psi.key_generation", "list=%s generation=%llu", list,
                   (unsigned long long)g);
    }
    *gen = g;
    return rc;
}

/* --------------------------------------------------------------- entries */

typedef struct entries {
    size_t n, cap;
    char (*uscc)[BG_USCC_LEN + 1];
    bg_snap_payload *payload; /* graded only */
    bool graded;
    int32_t today; /* list entries expired by then are left out */
} entries;

static int
entries_add(void *ctx, const bg_store_row *row, bg_err *err)
{
    entries *e = ctx;
    if (!e->graded && !bg_list_entry_in_force(row->date2, e->today))
        return BG_OK; /* expired: it stops matching with this epoch */
    if (e->n == e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 4096;
        if (cap > BG_SNAP_MAX_ENTRIES)
            return bg_err_set(err, BG_ELIMIT, "more than %u entries in one list",
                              BG_SNAP_MAX_ENTRIES);
        void *u = realloc(e->uscc, cap * sizeof e->uscc[0]);
        if (u == NULL)
            return bg_err_set(err, BG_ENOMEM, "out of memory");
        e->uscc = u;
        if (e->graded) {
            void *pl = realloc(e->payload, cap * sizeof e->payload[0]);
            if (pl == NULL)
                return bg_err_set(err, BG_ENOMEM, "out of memory");
            e->payload = pl;
        }
        e->cap = cap;
    }
    snprintf(e->uscc[e->n], sizeof e->uscc[0], "%s", row->uscc);
    if (e->graded) {
        bg_snap_payload *pl = &e->payload[e->n];
        memset(pl, 0, sizeof *pl);
        snprintf(pl->grade, sizeof pl->grade, "%s", row->grade ? row->grade : "");
        snprintf(pl->scale, sizeof pl->scale, "%s", row->scale ? row->scale : "");
        pl->evaluated_at = row->date1;
        pl->valid_until = row->date2;
        pl->listed_at = BG_SNAP_NO_DATE;
        pl->expires_at = BG_SNAP_NO_DATE;
        pl->serial = (uint64_t)row->serial;
    }
    e->n++;
    return BG_OK;
}

static void
entries_free(entries *e)
{
    free(e->uscc);
    free(e->payload);
    memset(e, 0, sizeof *e);
}

/* ----------------------------------------------------------------- build */

static void
hex(const uint8_t *b, size_t n, char *out)
{
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = d[b[i] >> 4];
        out[2 * i + 1] = d[b[i] & 15];
    }
    out[2 * n] = '\0';
}

static int
snap_build(const uint8_t *sk, const char *list, uint64_t gen, uint64_t epoch, const entries *e,
           bg_snap **out, bg_err *err)
{
    bg_snap_entry *se = calloc(e->n ? e->n : 1, sizeof *se);
    if (se == NULL)
        return bg_err_set(err, BG_ENOMEM, "out of memory");
    for (size_t i = 0; i < e->n; i++) {
        se[i].input = (const uint8_t *)e->uscc[i];
        se[i].input_len = BG_USCC_LEN;
        se[i].payload = e->graded ? &e->payload[i] : NULL;
    }
    /* One thread: the builder runs beside request handling on a shared machine. */
    int rc = bg_snap_build(out, sk, list, gen, epoch, e->graded, se, e->n, 1, err);
    free(se);
    return rc;
}

/*
 * The snapshot of entries e under key sk of generation gen: the last recorded epoch
 * again when key and import are the same and the bytes come out equal (*reused, so
 * askers' caches stay good), else a new epoch, recorded in the store.
 */
static int
build_epoch(bg_pub *p, const char *list, const uint8_t *sk, uint64_t gen, int64_t import_id,
            const entries *e, bg_snap **snap, bool *reused, bg_err *err)
{
    bg_store_epoch last;
    int rc = bg_store_psi_last_epoch(p->store, list, &last, err);
    bg_snap_info info;
    char dhex[65] = "";
    *reused = false;
    if (rc == BG_OK && last.epoch != 0 && last.generation == gen && last.import_id == import_id) {
        rc = snap_build(sk, list, gen, last.epoch, e, snap, err);
        if (rc == BG_OK) {
            bg_snap_get_info(*snap, &info);
            hex(info.digest, BG_SNAP_DIGESTBYTES, dhex);
            *reused = strcmp(dhex, last.digest_hex) == 0;
            if (!*reused) {
                bg_snap_free(*snap);
                *snap = NULL;
            }
        }
    }
    if (rc == BG_OK && !*reused) {
        rc = snap_build(sk, list, gen, last.epoch + 1, e, snap, err);
        if (rc == BG_OK) {
            bg_snap_get_info(*snap, &info);
            hex(info.digest, BG_SNAP_DIGESTBYTES, dhex);
            bg_store_epoch rec = {.epoch = last.epoch + 1,
                                  .generation = gen,
                                  .entries = info.count,
                                  .import_id = import_id};
            memcpy(rec.digest_hex, dhex, sizeof rec.digest_hex);
            rc = bg_store_psi_add_epoch(p->store, list, &rec, err);
        }
    }
    return rc;
}

/* Serves ps as list li from now on, with the delta from what was served when the key
 * is the same; the previous publication goes with its last reader. */
static void
install(bg_pub *p, int li, bg_pub_snap *ps, int64_t import_id, int32_t today)
{
    pthread_mutex_lock(&p->lock);
    bg_pub_snap *old = p->cur[li];
    if (old != NULL)
        atomic_fetch_add(&old->refs, 1);
    pthread_mutex_unlock(&p->lock);
    if (old != NULL && old->info.generation == ps->info.generation &&
        old->info.epoch < ps->info.epoch) {
        bg_err derr = {0};
        if (bg_snap_delta_make(&ps->delta, old->snap, ps->snap, &derr) == BG_OK)
            bg_snap_delta_get_info(ps->delta, &ps->delta_info);
        else
            bg_log(BG_LOG_WARN, "psi.delta_failed", "list=%s error=\"%s\"", ps->list, derr.msg);
    }
    bg_pub_snap_release(old);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    ps->published_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    pthread_mutex_lock(&p->lock);
    old = p->cur[li];
    p->cur[li] = ps;
    p->built_import[li] = import_id;
    p->built_day[li] = today;
    pthread_cond_broadcast(&p->built);
    pthread_mutex_unlock(&p->lock);
    bg_pub_snap_release(old);
}

/* The key that signs now and its certificate (references for the caller to free),
 * with the certificate's fingerprint. */
static void
signer_get(bg_pub *p, EVP_PKEY **key, X509 **cert, uint8_t fp[BG_SIG_FP_LEN])
{
    pthread_mutex_lock(&p->lock);
    EVP_PKEY_up_ref(p->key);
    *key = p->key;
    X509_up_ref(p->cert);
    *cert = p->cert;
    memcpy(fp, p->fp, BG_SIG_FP_LEN);
    pthread_mutex_unlock(&p->lock);
}

/* Signs ps's digest with the key of now, noting whose it is. */
static int
sign_digest(bg_pub *p, bg_pub_snap *ps, bg_err *err)
{
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    signer_get(p, &key, &cert, ps->signer);
    int rc = bg_sig_sign(key, BG_SIG_CTX_SNAPSHOT, ps->info.digest, BG_SNAP_DIGESTBYTES, ps->sig,
                         &ps->sig_len, err);
    EVP_PKEY_free(key);
    X509_free(cert);
    return rc;
}

/* Builds and installs list li. */
static int
publish_list(bg_pub *p, int li, bool rotate, bg_err *err)
{
    const char *list = pub_list_name(li);
    int32_t today = bg_date_today();
    entries e = {.graded = li == BG_LIST_COUNT, .today = today};
    int64_t import_id = 0;
    int rc = bg_store_scan_current(p->store, li < BG_LIST_COUNT ? list : NULL, today, &import_id,
                                   entries_add, &e, err);
    uint8_t *sk = sodium_malloc(BG_OPRF_SCALARBYTES);
    if (sk == NULL && rc == BG_OK)
        rc = bg_err_set(err, BG_ENOMEM, "out of memory");
    uint64_t gen = 0;
    if (rc == BG_OK)
        rc = key_current(p, list, rotate, &gen, sk, err);
    bg_snap *snap = NULL;
    bool reused = false;
    if (rc == BG_OK)
        rc = build_epoch(p, list, sk, gen, import_id, &e, &snap, &reused, err);
    size_t n = e.n;
    entries_free(&e);

    bg_pub_snap *ps = NULL;
    if (rc == BG_OK) {
        ps = calloc(1, sizeof *ps);
        if (ps == NULL)
            rc = bg_err_set(err, BG_ENOMEM, "out of memory");
    }
    if (rc == BG_OK) {
        atomic_init(&ps->refs, 1);
        snprintf(ps->list, sizeof ps->list, "%s", list);
        ps->snap = snap;
        snap = NULL;
        bg_snap_get_info(ps->snap, &ps->info);
        ps->sk = sk;
        sk = NULL;
        rc = sign_digest(p, ps, err);
    }
    if (rc == BG_OK) {
        install(p, li, ps, import_id, today);
        bg_log(BG_LOG_INFO, "psi.published",
               "list=%s generation=%llu epoch=%llu entries=%zu import=%lld reused=%d delta=%s",
               list, (unsigned long long)gen, (unsigned long long)ps->info.epoch, n,
               (long long)import_id, reused, ps->delta != NULL ? "yes" : "no");
        ps = NULL;
    }
    pub_snap_free(ps);
    bg_snap_free(snap);
    if (sk != NULL)
        sodium_free(sk);
    return rc;
}

/* ---------------------------------------------------------- status list */

typedef struct revoked_acc {
    bg_attest_revoked *e;
    size_t n, cap;
} revoked_acc;

static int
revoked_add(void *ctx, uint64_t serial, int64_t revoked_at, bg_err *err)
{
    revoked_acc *a = ctx;
    if (a->n == a->cap) {
        size_t cap = a->cap ? 2 * a->cap : 256;
        if (cap > BG_ATTEST_STATUS_MAX_ENTRIES)
            return bg_err_set(err, BG_ELIMIT, "more than %u revoked serials",
                              BG_ATTEST_STATUS_MAX_ENTRIES);
        void *e = realloc(a->e, cap * sizeof *a->e);
        if (e == NULL)
            return bg_err_set(err, BG_ENOMEM, "out of memory");
        a->e = e;
        a->cap = cap;
    }
    a->e[a->n].serial = serial;
    a->e[a->n].revoked_at = revoked_at;
    a->n++;
    return BG_OK;
}

/* Signs the store's revocations as the current status list. Builder thread only. */
static int
publish_status(bg_pub *p, bg_err *err)
{
    revoked_acc acc = {0};
    uint64_t number = 0;
    uint8_t *bytes = NULL;
    size_t len = 0;
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    uint8_t fp[BG_SIG_FP_LEN];
    signer_get(p, &key, &cert, fp);
    int rc = bg_store_revoked_scan(p->store, &number, revoked_add, &acc, err);
    if (rc == BG_OK)
        rc = bg_attest_status_sign(p->city, number, (int64_t)time(NULL), acc.e, acc.n, key, cert,
                                   &bytes, &len, err);
    EVP_PKEY_free(key);
    X509_free(cert);
    free(acc.e);
    if (rc != BG_OK)
        return rc;
    pthread_mutex_lock(&p->lock);
    free(p->status);
    p->status = bytes;
    p->status_len = len;
    pthread_mutex_unlock(&p->lock);
    bg_log(BG_LOG_INFO, "attest.status_published", "number=%llu revoked=%zu bytes=%zu",
           (unsigned long long)number, acc.n, len);
    return BG_OK;
}

int
bg_pub_status(bg_pub *p, uint8_t **out, size_t *len, bg_err *err)
{
    *out = NULL;
    *len = 0;
    int rc = BG_OK;
    pthread_mutex_lock(&p->lock);
    if (p->status == NULL)
        rc = bg_err_set(err, BG_ENOTFOUND, "%s has not published a status list yet", p->city);
    else if ((*out = malloc(p->status_len)) == NULL)
        rc = bg_err_set(err, BG_ENOMEM, "out of memory");
    else {
        memcpy(*out, p->status, p->status_len);
        *len = p->status_len;
    }
    pthread_mutex_unlock(&p->lock);
    return rc;
}

static bool
store_exists(const bg_pub *p)
{
    char path[PUB_PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/credit.db", p->data_dir);
    struct stat st;
    return stat(path, &st) == 0;
}

/* One look at the store: rebuild what is out of date. Builder thread only. false: a
 * step failed (logged). */
static bool
look_at_store(bg_pub *p)
{
    bg_err err = {0};
    if (p->store == NULL) {
        if (!store_exists(p)) {
            if (!p->store_missing_logged)
                bg_log(BG_LOG_INFO, "psi.no_store",
                       "data_dir=%s effect=\"nothing published until the first import\"",
                       p->data_dir);
            p->store_missing_logged = true;
            return true;
        }
        if (bg_store_open(&p->store, p->data_dir, p->city, NULL, &err) != BG_OK) {
            bg_log(BG_LOG_ERROR, "psi.store_failed", "error=\"%s\"", err.msg);
            p->store = NULL;
            return false;
        }
    }
    bool want[BG_PUB_LISTS], rot[BG_PUB_LISTS];
    pthread_mutex_lock(&p->lock);
    for (int i = 0; i < BG_PUB_LISTS; i++) {
        want[i] = i == BG_LIST_COUNT || p->offered[i];
        rot[i] = p->rotate[i];
        p->rotate[i] = false;
    }
    pthread_mutex_unlock(&p->lock);
    /* The newest committed import: one indexed lookup, cheap enough to poll. */
    int64_t last = 0;
    if (bg_store_last_import(p->store, &last, &err) != BG_OK) {
        bg_log(BG_LOG_ERROR, "psi.store_failed", "error=\"%s\"", err.msg);
        return false;
    }
    bool ok = true;
    for (int i = 0; i < BG_PUB_LISTS; i++) {
        if (!want[i])
            continue;
        pthread_mutex_lock(&p->lock);
        bool fresh =
            p->cur[i] != NULL && p->built_import[i] == last && p->built_day[i] == bg_date_today();
        pthread_mutex_unlock(&p->lock);
        if (fresh && !rot[i])
            continue;
        if (publish_list(p, i, rot[i], &err) != BG_OK) {
            ok = false;
            bg_log(BG_LOG_ERROR, "psi.publish_failed", "list=%s error=\"%s\"", pub_list_name(i),
                   err.msg);
        } else if (i == BG_LIST_COUNT && publish_status(p, &err) != BG_OK) {
            ok = false;
            bg_log(BG_LOG_ERROR, "attest.status_failed", "error=\"%s\"", err.msg);
        }
    }
    return ok;
}

static void
check_store(bg_pub *p)
{
    bool ok = look_at_store(p);
    pthread_mutex_lock(&p->lock);
    p->failing = !ok;
    pthread_mutex_unlock(&p->lock);
}

bool
bg_pub_failing(bg_pub *p)
{
    pthread_mutex_lock(&p->lock);
    bool f = p->failing;
    pthread_mutex_unlock(&p->lock);
    return f;
}

/* ps again (its snapshot shared), signed with the key of now. */
static int
resigned(bg_pub *p, bg_pub_snap *ps, bg_pub_snap **out, bg_err *err)
{
    bg_pub_snap *c = malloc(sizeof *c);
    if (c == NULL)
        return bg_err_set(err, BG_ENOMEM, "out of memory");
    memcpy(c, ps, sizeof *c);
    atomic_init(&c->refs, 1);
    c->base = ps->base != NULL ? ps->base : ps;
    atomic_fetch_add(&c->base->refs, 1);
    int rc = sign_digest(p, c, err);
    if (rc != BG_OK)
        pub_snap_free(c);
    *out = rc == BG_OK ? c : NULL;
    return rc;
}

/* Re-signs list li's publication if an older key signed it; true if it did. */
static bool
resign_list(bg_pub *p, int li)
{
    pthread_mutex_lock(&p->lock);
    bg_pub_snap *old = p->cur[li], *c = NULL;
    bool stale = old != NULL && memcmp(old->signer, p->fp, BG_SIG_FP_LEN) != 0;
    if (stale)
        atomic_fetch_add(&old->refs, 1);
    pthread_mutex_unlock(&p->lock);
    if (!stale)
        return false;
    bg_err err = {0};
    if (resigned(p, old, &c, &err) != BG_OK)
        bg_log(BG_LOG_ERROR, "psi.resign_failed", "list=%s error=\"%s\"", old->list, err.msg);
    bool done = false;
    pthread_mutex_lock(&p->lock);
    if (c != NULL && p->cur[li] == old) { /* else the builder published anew meanwhile */
        p->cur[li] = c;
        done = true;
    }
    pthread_mutex_unlock(&p->lock);
    if (done)
        bg_pub_snap_release(old); /* the table's reference */
    else
        bg_pub_snap_release(c);
    bg_pub_snap_release(old);
    return done;
}

/* After a rotation: what is published and the status list, signed with the new key
 * (same epochs, so askers' caches stay good). Builder thread only. */
static void
resign_all(bg_pub *p)
{
    pthread_mutex_lock(&p->lock);
    bool want = p->resign;
    p->resign = false;
    pthread_mutex_unlock(&p->lock);
    if (!want)
        return;
    size_t n = 0;
    for (int i = 0; i < BG_PUB_LISTS; i++)
        n += resign_list(p, i);
    bg_err err = {0};
    if (p->store != NULL && publish_status(p, &err) != BG_OK)
        bg_log(BG_LOG_ERROR, "attest.status_failed", "error=\"%s\"", err.msg);
    bg_log(BG_LOG_INFO, "psi.resigned", "lists=%zu", n);
}

static void *
builder(void *arg)
{
    bg_pub *p = arg;
    pthread_mutex_lock(&p->lock);
    while (!p->stop) {
        p->poked = false;
        pthread_mutex_unlock(&p->lock);
        check_store(p);
        resign_all(p);
        pthread_mutex_lock(&p->lock);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += PUB_CHECK_EVERY_S;
        while (!p->stop && !p->poked)
            if (pthread_cond_timedwait(&p->wake, &p->lock, &until) != 0)
                break;
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

int
bg_pub_start(bg_pub **out, const char *data_dir, const char *city, EVP_PKEY *key, X509 *cert,
             const bool offered[BG_LIST_COUNT], bg_err *err)
{
    *out = NULL;
    bg_pub *p = calloc(1, sizeof *p);
    if (p == NULL)
        return bg_err_set(err, BG_ENOMEM, "out of memory");
    int k = snprintf(p->data_dir, sizeof p->data_dir, "%s", data_dir);
    if (k < 0 || (size_t)k >= sizeof p->data_dir - 64) {
        free(p);
        return bg_err_set(err, BG_EINVAL, "data directory path too long");
    }
    snprintf(p->city, sizeof p->city, "%s", city);
    int rc = bg_sig_fingerprint(cert, p->fp, err);
    if (rc != BG_OK) {
        free(p);
        return rc;
    }
    EVP_PKEY_up_ref(key);
    p->key = key;
    X509_up_ref(cert);
    p->cert = cert;
    memcpy(p->offered, offered, sizeof p->offered);
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->built, NULL);
    if (pthread_create(&p->thread, NULL, builder, p) != 0) {
        bg_pub_stop(p);
        return bg_err_set(err, BG_ENOMEM, "cannot start the PSI builder thread");
    }
    p->started = true;
    *out = p;
    return BG_OK;
}

void
bg_pub_poke(bg_pub *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->lock);
    p->poked = true;
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->lock);
}

void
bg_pub_set_offered(bg_pub *p, const bool offered[BG_LIST_COUNT])
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->lock);
    memcpy(p->offered, offered, sizeof p->offered);
    p->poked = true;
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->lock);
}

int
bg_pub_set_identity(bg_pub *p, EVP_PKEY *key, X509 *cert, bg_err *err)
{
    uint8_t fp[BG_SIG_FP_LEN];
    int rc = bg_sig_fingerprint(cert, fp, err);
    if (rc != BG_OK)
        return rc;
    EVP_PKEY_up_ref(key);
    X509_up_ref(cert);
    pthread_mutex_lock(&p->lock);
    EVP_PKEY *old_key = p->key;
    X509 *old_cert = p->cert;
    p->key = key;
    p->cert = cert;
    memcpy(p->fp, fp, BG_SIG_FP_LEN);
    p->resign = true;
    p->poked = true;
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->lock);
    EVP_PKEY_free(old_key);
    X509_free(old_cert);
    return BG_OK;
}

int
bg_pub_rotate(bg_pub *p, const char *list, bg_err *err)
{
    int i = bg_pub_list_index(list);
    if (i < 0)
        return bg_err_set(err, BG_EINVAL, "'%s' is not a list this gateway publishes",
                          list ? list : "");
    pthread_mutex_lock(&p->lock);
    p->rotate[i] = true;
    p->poked = true;
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->lock);
    return BG_OK;
}

bool
bg_pub_wait_ready(bg_pub *p, int timeout_ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&p->lock);
    bool ready = false;
    for (;;) {
        ready = p->cur[BG_LIST_COUNT] != NULL;
        for (int i = 0; i < BG_LIST_COUNT; i++)
            if (p->offered[i] && p->cur[i] == NULL)
                ready = false;
        if (ready || pthread_cond_timedwait(&p->built, &p->lock, &until) != 0)
            break;
    }
    pthread_mutex_unlock(&p->lock);
    return ready;
}

void
bg_pub_stop(bg_pub *p)
{
    if (p == NULL)
        return;
    if (p->started) {
        pthread_mutex_lock(&p->lock);
        p->stop = true;
        pthread_cond_signal(&p->wake);
        pthread_mutex_unlock(&p->lock);
        pthread_join(p->thread, NULL);
    }
    for (int i = 0; i < BG_PUB_LISTS; i++)
        bg_pub_snap_release(p->cur[i]);
    bg_store_close(p->store);
    EVP_PKEY_free(p->key);
    X509_free(p->cert);
    free(p->status);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->built);
    pthread_mutex_destroy(&p->lock);
    free(p);
}
