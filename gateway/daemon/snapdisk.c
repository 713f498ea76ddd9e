/*
 * snapdisk.c - peers' snapshots kept on disk across restarts (see snapdisk.h).
 *
 * .snap: "bgsnap01" || u64 chunk count || per chunk: u32 length || the chunk
 * .sig:  "bgsnsig1" || u16 signature length || signature || u16 certificate length
 *        || certificate (DER)
 * all big-endian. Every length is bounded before use: chunks by GW_SNAPDISK_CHUNK,
 * the count by what the entry bound allows, the signature by BG_SIG_MAX, the
 * certificate by BG_TRUST_CERT_MAX.
 */
#include "gateway/daemon/snapdisk.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "certs/sig.h"
#include "common/file.h"

#define SNAP_MAGIC "bgsnap01"
#define SIG_MAGIC "bgsnsig1"
#define MAGIC_LEN 8
/* The largest stream the reader takes is well under this many of our chunks. */
#define SNAP_CHUNKS_MAX 4096U

/* DATA/snapshots/CITY-LIST.ext; list names are [a-z0-9-] (they name files). */
static int
path_of(char *out, size_t n, const char *data_dir, const char *city, const char *list,
        const char *ext, bg_err *err)
{
    if (list[0] == '\0' || strspn(list, "abcdefghijklmnopqrstuvwxyz0123456789-") != strlen(list))
        return bg_err_set(err, BG_EINVAL, "list name '%.64s' cannot name a file", list);
    int k = snprintf(out, n, "%s/%s/%s-%s.%s", data_dir, GW_SNAPDISK_DIR, city, list, ext);
    if (k < 0 || (size_t)k >= n)
        return bg_err_set(err, BG_ELIMIT, "snapshot cache path too long");
    return BG_OK;
}

static int
ensure_dir(const char *data_dir, bg_err *err)
{
    char d[4096];
    int k = snprintf(d, sizeof d, "%s/%s", data_dir, GW_SNAPDISK_DIR);
    if (k < 0 || (size_t)k >= sizeof d)
        return bg_err_set(err, BG_ELIMIT, "snapshot cache path too long");
    if (mkdir(d, 0700) != 0 && errno != EEXIST)
        return bg_err_set(err, BG_EIO, "cannot create %s: %s", d, strerror(errno));
    return BG_OK;
}

static void
put_be(uint8_t *p, uint64_t v, int bytes)
{
    for (int i = bytes - 1; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint64_t
get_be(const uint8_t *p, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++)
        v = v << 8 | p[i];
    return v;
}

/* Writes the stream of s to fd: every chunk with its length. */
static int
write_stream(int fd, const bg_snap *s, bg_err *err)
{
    size_t count = 0;
    int rc = bg_snap_chunk_count(s, GW_SNAPDISK_CHUNK, &count, err);
    if (rc != BG_OK)
        return rc;
    uint8_t head[MAGIC_LEN + 8];
    memcpy(head, SNAP_MAGIC, MAGIC_LEN);
    put_be(head + MAGIC_LEN, count, 8);
    uint8_t *buf = malloc(4 + GW_SNAPDISK_CHUNK);
    if (buf == NULL)
        return bg_err_set(err, BG_ENOMEM, "out of memory");
    if (bg_file_write_all(fd, head, sizeof head, -1) != 0)
        rc = bg_err_set(err, BG_EIO, "write: %s", strerror(errno));
    for (size_t i = 0; rc == BG_OK && i < count; i++) {
        size_t len = 0;
        rc = bg_snap_chunk(s, GW_SNAPDISK_CHUNK, i, buf + 4, GW_SNAPDISK_CHUNK, &len, err);
        if (rc != BG_OK)
            break;
        put_be(buf, len, 4);
        if (bg_file_write_all(fd, buf, 4 + len, -1) != 0)
            rc = bg_err_set(err, BG_EIO, "write: %s", strerror(errno));
    }
    free(buf);
    return rc;
}

/* path replaced by what fill writes, via a synced temporary file. */
static int
replace_with(const char *path, int (*fill)(int fd, const void *ctx, bg_err *err), const void *ctx,
             bg_err *err)
{
    char tmp[4200];
    int k = snprintf(tmp, sizeof tmp, "%s.tmp", path);
    if (k < 0 || (size_t)k >= sizeof tmp)
        return bg_err_set(err, BG_ELIMIT, "snapshot cache path too long");
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return bg_err_set(err, BG_EIO, "cannot create %s: %s", tmp, strerror(errno));
    int rc = fill(fd, ctx, err);
    if (rc == BG_OK && fsync(fd) != 0)
        rc = bg_err_set(err, BG_EIO, "fsync %s: %s", tmp, strerror(errno));
    if (close(fd) != 0 && rc == BG_OK)
        rc = bg_err_set(err, BG_EIO, "close %s: %s", tmp, strerror(errno));
    if (rc == BG_OK && rename(tmp, path) != 0)
        rc = bg_err_set(err, BG_EIO, "rename to %s: %s", path, strerror(errno));
    if (rc != BG_OK)
        unlink(tmp);
    return rc;
}

static int
fill_snap(int fd, const void *ctx, bg_err *err)
{
    return write_stream(fd, ctx, err);
}

typedef struct sigfile {
    const uint8_t *sig, *cert;
    size_t sig_len, cert_len;
} sigfile;

static int
fill_sig(int fd, const void *ctx, bg_err *err)
{
    const sigfile *s = ctx;
    uint8_t b[MAGIC_LEN + 2 + BG_SIG_MAX + 2 + BG_TRUST_CERT_MAX];
    size_t n = 0;
    memcpy(b, SIG_MAGIC, MAGIC_LEN);
    n += MAGIC_LEN;
    put_be(b + n, s->sig_len, 2);
    memcpy(b + n + 2, s->sig, s->sig_len);
    n += 2 + s->sig_len;
    put_be(b + n, s->cert_len, 2);
    memcpy(b + n + 2, s->cert, s->cert_len);
    n += 2 + s->cert_len;
    if (bg_file_write_all(fd, b, n, -1) != 0)
        return bg_err_set(err, BG_EIO, "write: %s", strerror(errno));
    return BG_OK;
}

int
gw_snapdisk_save_sig(const char *data_dir, const char *city, const char *list, const uint8_t *sig,
                     size_t sig_len, const uint8_t *cert, size_t cert_len, bg_err *err)
{
    if (sig_len == 0 || sig_len > BG_SIG_MAX || cert_len == 0 || cert_len > BG_TRUST_CERT_MAX)
        return bg_err_set(err, BG_EINVAL, "no signature or certificate to keep");
    char path[4096];
    int rc = path_of(path, sizeof path, data_dir, city, list, "sig", err);
    if (rc == BG_OK)
        rc = ensure_dir(data_dir, err);
    sigfile s = {.sig = sig, .sig_len = sig_len, .cert = cert, .cert_len = cert_len};
    return rc == BG_OK ? replace_with(path, fill_sig, &s, err) : rc;
}

int
gw_snapdisk_save(const char *data_dir, const char *city, const gw_cached *c, const uint8_t *cert,
                 size_t cert_len, bg_err *err)
{
    char path[4096];
    int rc = path_of(path, sizeof path, data_dir, city, c->info.list, "snap", err);
    if (rc == BG_OK)
        rc = ensure_dir(data_dir, err);
    /* The stream first: a crash between the two leaves a signature that does not
     * cover the new stream's digest, which the load refuses. */
    if (rc == BG_OK)
        rc = replace_with(path, fill_snap, c->snap, err);
    if (rc == BG_OK)
        rc = gw_snapdisk_save_sig(data_dir, city, c->info.list, c->sig, c->sig_len, cert, cert_len,
                                  err);
    return rc;
}

/* The signature file: sig and the certificate's public key, the certificate checked
 * as a current one of city that the roster pins. */
static int
load_sig(const char *path, const char *city, bg_trust *trust, const bg_roster *roster,
         uint8_t sig[BG_SIG_MAX], size_t *sig_len, EVP_PKEY **key, bg_err *err)
{
    uint8_t *b = NULL;
    size_t len = 0;
    int rc =
        bg_file_read(path, MAGIC_LEN + 4 + BG_SIG_MAX + BG_TRUST_CERT_MAX, &b, &len, NULL, err);
    if (rc != BG_OK)
        return rc;
    size_t sl = len >= MAGIC_LEN + 2 ? (size_t)get_be(b + MAGIC_LEN, 2) : 0;
    size_t cl = 0;
    if (len < MAGIC_LEN + 2 || memcmp(b, SIG_MAGIC, MAGIC_LEN) != 0 || sl == 0 || sl > BG_SIG_MAX ||
        len < MAGIC_LEN + 4 + sl || (cl = (size_t)get_be(b + MAGIC_LEN + 2 + sl, 2)) == 0 ||
        len != MAGIC_LEN + 4 + sl + cl) {
        free(b);
        return bg_err_set(err, BG_EPROTO, "%s is not a snapshot signature file", path);
    }
    const uint8_t *cert = b + MAGIC_LEN + 4 + sl;
    bg_trust_result tr;
    rc = bg_trust_verify(trust, cert, cl, city, &tr, key, err);
    const bg_roster_member *m = rc == BG_OK ? bg_roster_member_find(roster, city) : NULL;
    if (rc == BG_OK && (m == NULL || !bg_roster_member_pinned(m, tr.fingerprint))) {
        EVP_PKEY_free(*key);
        *key = NULL;
        rc = bg_err_set(err, BG_ECRYPTO, "its certificate is not one the roster pins for %s", city);
    }
    if (rc == BG_OK) {
        memcpy(sig, b + MAGIC_LEN + 2, sl);
        *sig_len = sl;
    }
    free(b);
    return rc;
}

/* Feeds the stream file to a new reader, chunk by chunk. */
static int
load_stream(const char *path, bg_snap_reader **rd, bg_err *err)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return bg_err_set(err, errno == ENOENT ? BG_ENOTFOUND : BG_EIO, "%s: %s", path,
                          strerror(errno));
    uint8_t head[MAGIC_LEN + 8];
    uint8_t *buf = malloc(GW_SNAPDISK_CHUNK);
    int rc = buf == NULL ? bg_err_set(err, BG_ENOMEM, "out of memory") : BG_OK;
    uint64_t count = 0;
    if (rc == BG_OK && (fread(head, 1, sizeof head, f) != sizeof head ||
                        memcmp(head, SNAP_MAGIC, MAGIC_LEN) != 0 ||
                        (count = get_be(head + MAGIC_LEN, 8)) == 0 || count > SNAP_CHUNKS_MAX))
        rc = bg_err_set(err, BG_EPROTO, "%s is not a snapshot file", path);
    if (rc == BG_OK)
        rc = bg_snap_reader_new(rd, GW_PSI_CACHE_MAX_ENTRIES, err);
    for (uint64_t i = 0; rc == BG_OK && i < count; i++) {
        uint8_t l4[4];
        size_t len = 0;
        if (fread(l4, 1, 4, f) != 4 || (len = (size_t)get_be(l4, 4)) == 0 ||
            len > GW_SNAPDISK_CHUNK || fread(buf, 1, len, f) != len)
            rc = bg_err_set(err, BG_EPROTO, "%s: chunk %llu is truncated", path,
                            (unsigned long long)i);
        else
            rc = bg_snap_reader_feed(*rd, buf, len, err);
    }
    if (rc == BG_OK && fgetc(f) != EOF)
        rc = bg_err_set(err, BG_EPROTO, "%s: bytes after the last chunk", path);
    if (rc == BG_OK && !bg_snap_reader_complete(*rd))
        rc = bg_err_set(err, BG_EPROTO, "%s: the stream ends early", path);
    free(buf);
    fclose(f);
    return rc;
}

int
gw_snapdisk_load(const char *data_dir, const char *city, const char *list, bg_trust *trust,
                 const bg_roster *roster, gw_cached **out, bg_err *err)
{
    *out = NULL;
    char sp[4096], gp[4096];
    int rc = path_of(sp, sizeof sp, data_dir, city, list, "snap", err);
    if (rc == BG_OK)
        rc = path_of(gp, sizeof gp, data_dir, city, list, "sig", err);
    if (rc != BG_OK)
        return rc;
    struct stat st;
    if (stat(sp, &st) != 0 && errno == ENOENT)
        return bg_err_set(err, BG_ENOTFOUND, "no snapshot of %s's %s kept", city, list);

    gw_cached *c = calloc(1, sizeof *c);
    EVP_PKEY *key = NULL;
    bg_snap_reader *rd = NULL;
    bg_snap_info info;
    rc = c == NULL ? bg_err_set(err, BG_ENOMEM, "out of memory") : BG_OK;
    if (rc == BG_OK)
        rc = load_sig(gp, city, trust, roster, c->sig, &c->sig_len, &key, err);
    if (rc == BG_OK)
        rc = load_stream(sp, &rd, err);
    if (rc == BG_OK)
        rc = bg_snap_reader_info(rd, &info, err);
    if (rc == BG_OK && (info.kind != BG_SNAP_KIND_SNAPSHOT || strcmp(info.list, list) != 0))
        rc = bg_err_set(err, BG_EPROTO, "%s is not a snapshot of %s", sp, list);
    if (rc == BG_OK)
        rc = bg_sig_verify(key, BG_SIG_CTX_SNAPSHOT, info.digest, BG_SNAP_DIGESTBYTES, c->sig,
                           c->sig_len, err);
    if (rc == BG_OK)
        rc = bg_snap_reader_finish(rd, info.digest, &c->snap, 0, err);
    EVP_PKEY_free(key);
    bg_snap_reader_free(rd);
    if (rc != BG_OK) {
        free(c);
        unlink(sp);
        unlink(gp);
        return rc == BG_ENOTFOUND ? BG_EPROTO : rc;
    }
    atomic_init(&c->refs, 1);
    bg_snap_get_info(c->snap, &c->info);
    *out = c;
    return BG_OK;
}
