/*
 * audit_copy.c - a consistent copy of a live audit directory, for backups (audit.h).
 *
 * The files are append-only record files, so a copy of each up to its last complete
 * record is an earlier state of it. What makes the set consistent is the order: a
 * head is signed only over leaves already synced, so heads.log is copied before
 * leaves.log and every copied head is covered by the copied leaves. The copy is then
 * opened like any log and every head's root compared with the copied leaves' root.
 * A record a writer is in the middle of is "not yet written" (read-only scan) and
 * left out.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "common/file.h"
#include "gateway/audit/audit_int.h"

struct copy_ctx {
    int fd;
    const char *path;
    uint64_t off, records;
    uint8_t framed[BG_AUDIT_RECORD_MAX + BG_AUDIT_REC_OVERHEAD];
};

static int
on_record(void *ctx, uint64_t off, const uint8_t *data, size_t len, const bg_audit_hash sum,
          bg_err *err)
{
    (void)off, (void)sum;
    struct copy_ctx *c = ctx;
    size_t n = bg_rec_frame(c->framed, data, len, NULL);
    if (bg_file_write_all(c->fd, c->framed, n, (int64_t)c->off) != 0)
        return bg_err_set(err, BG_EIO, "cannot write %s: %s", c->path, strerror(errno));
    c->off += n;
    c->records++;
    return BG_OK;
}

/* Copies the complete records of src/name to dst/name (a new file, mode of the
 * source). A missing source is fine when optional. *records and *bytes are added to. */
static int
copy_file(const char *src, const char *dst, const char *name, size_t max, bool optional,
          uint64_t *records, uint64_t *bytes, bg_err *err)
{
    char sp[1100], dp[1100];
    int rc;
    if ((rc = bg_path_join(sp, sizeof sp, src, name, err)) != BG_OK ||
        (rc = bg_path_join(dp, sizeof dp, dst, name, err)) != BG_OK)
        return rc;
    struct stat st;
    if (stat(sp, &st) != 0) {
        if (errno == ENOENT && optional)
            return BG_OK;
        return bg_err_set(err, errno == ENOENT ? BG_ENOTFOUND : BG_EIO, "cannot read %s: %s", sp,
                          strerror(errno));
    }
    struct copy_ctx c = {.path = dp, .off = BG_AUDIT_MAGIC_LEN};
    c.fd = open(dp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, st.st_mode & 0777);
    if (c.fd < 0)
        return bg_err_set(err, BG_EIO, "cannot create %s: %s", dp, strerror(errno));
    rc = BG_OK;
    if (bg_file_write_all(c.fd, BG_AUDIT_MAGIC, BG_AUDIT_MAGIC_LEN, 0) != 0)
        rc = bg_err_set(err, BG_EIO, "cannot write %s: %s", dp, strerror(errno));
    bg_rec_file f;
    if (rc == BG_OK && (rc = bg_rec_open(&f, sp, BG_AUDIT_READ_ONLY, false, max, on_record, &c,
                                         NULL, err)) == BG_OK)
        bg_rec_close(&f);
    if (rc == BG_OK && fsync(c.fd) != 0)
        rc = bg_err_set(err, BG_EIO, "cannot sync %s: %s", dp, strerror(errno));
    close(c.fd);
    if (rc != BG_OK) {
        unlink(dp);
        return rc;
    }
    *records += c.records;
    *bytes += c.off;
    return BG_OK;
}

/* Every head of the copy in dst must be covered by its leaves, with their root. */
static int
check_copy(const char *dst, const char *city, bg_audit_copy_report *rep, bg_err *err)
{
    bg_audit_log *log = NULL;
    int rc = bg_audit_open(&log, dst, city, BG_AUDIT_READ_ONLY, NULL, err);
    if (rc != BG_OK)
        return rc;
    rep->leaves = bg_audit_size(log);
    rep->heads = bg_audit_head_count(log);
    for (size_t i = 0; rc == BG_OK && i < rep->heads; i++) {
        bg_audit_head h;
        bg_audit_hash root;
        if ((rc = bg_audit_head_get(log, i, &h, err)) != BG_OK)
            break;
        if (h.size > rep->leaves)
            rc = bg_err_set(err, BG_EPROTO,
                            "copy of %s: head %zu covers %" PRIu64
                            " leaves, the copy holds %" PRIu64,
                            dst, i, h.size, rep->leaves);
        else if ((rc = bg_audit_root(log, h.size, root, err)) == BG_OK &&
                 sodium_memcmp(root, h.root, BG_AUDIT_HASH_LEN) != 0)
            rc = bg_err_set(err, BG_EPROTO,
                            "copy of %s: head %zu (size %" PRIu64 ") does not match the leaves' "
                            "root: the log is damaged",
                            dst, i, h.size);
        if (rc == BG_OK && i + 1 == rep->heads) {
            rep->has_head = true;
            rep->latest = h;
        }
    }
    bg_audit_close(log);
    return rc;
}

int
bg_audit_copy(const char *src, const char *dst, const char *city, bg_audit_copy_report *rep,
              bg_err *err)
{
    bg_audit_copy_report local;
    if (rep == NULL)
        rep = &local;
    memset(rep, 0, sizeof *rep);
    if (!bg_audit_city_ok(city))
        return bg_err_set(err, BG_EINVAL, "audit copy: city '%s' is not a 6-digit code", city);
    if (mkdir(dst, 0750) != 0 && errno != EEXIST)
        return bg_err_set(err, BG_EIO, "cannot make %s: %s", dst, strerror(errno));
    uint64_t heads = 0, leaves = 0;
    /* Heads before leaves: see the file comment. */
    int rc = copy_file(src, dst, BG_AUDIT_HEADS_FILE, BG_AUDIT_SIGNED_HEAD_MAX, false, &heads,
                       &rep->bytes, err);
    if (rc == BG_OK)
        rc = copy_file(src, dst, BG_AUDIT_LEAVES_FILE, BG_AUDIT_LEAF_MAX, false, &leaves,
                       &rep->bytes, err);
    if (rc == BG_OK)
        rc = copy_file(src, dst, BG_AUDIT_WITNESS_FILE, BG_AUDIT_RECORD_MAX, true,
                       &rep->witness_records, &rep->bytes, err);
    if (rc == BG_OK)
        rc = copy_file(src, dst, BG_AUDIT_LOSSES_FILE, BG_AUDIT_RECORD_MAX, true, &rep->losses,
                       &rep->bytes, err);
    if (rc == BG_OK)
        rc = check_copy(dst, city, rep, err);
    return rc;
}
