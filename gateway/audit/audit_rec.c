/*
 * audit_rec.c - the append-only record files of the audit directory.
 *
 * Format (audit.h): magic, then records u32be length || payload || 32-byte
 * SHA-256(0x00 || payload). Appends are pwrites at the known end; the leaves
 * file's are synced in groups (audit_log.c), so after a crash only the writes
 * since the last fdatasync, none of them acknowledged, can be missing or
 * wrong. That is what "torn tail" means here: damage that no valid record
 * follows. Damage with a valid record after it cannot come from a process
 * crash of this writer, so it is refused with its offset; nothing the log once
 * acknowledged is ever dropped silently. (After a power loss whose disk wrote
 * the unsynced pages out of order, a hole before a valid unsynced record is
 * refused the same way: the operator decides, nothing is guessed.)
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "common/file.h"
#include "gateway/audit/audit_int.h"

static void
put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t
get_u32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

size_t
bg_rec_frame(uint8_t *out, const uint8_t *data, size_t len, bg_audit_hash sum)
{
    bg_audit_hash h;
    put_u32(out, (uint32_t)len);
    memcpy(out + 4, data, len);
    bg_audit_hash_leaf(data, len, h);
    memcpy(out + 4 + len, h, BG_AUDIT_HASH_LEN);
    if (sum != NULL)
        memcpy(sum, h, BG_AUDIT_HASH_LEN);
    return len + BG_AUDIT_REC_OVERHEAD;
}

/* pread all of len bytes; 0 on success, -1 with errno, 1 on a short file. */
static int
pread_all(int fd, void *buf, size_t len, uint64_t off)
{
    uint8_t *p = buf;
    while (len > 0) {
        ssize_t r = pread(fd, p, len, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            return 1;
        p += r;
        len -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

int
bg_rec_read(const bg_rec_file *f, uint64_t off, uint64_t limit, uint8_t *buf, size_t cap,
            size_t *len, const bg_audit_hash want, bg_err *err)
{
    uint8_t hdr[4];
    if (off + 4 > limit || pread_all(f->fd, hdr, 4, off) != 0)
        return bg_err_set(err, BG_EIO, "%s: cannot read the record at offset %" PRIu64, f->path,
                          off);
    uint32_t n = get_u32(hdr);
    if (n == 0 || n > f->max || n > cap || off + 4 + n + BG_AUDIT_HASH_LEN > limit)
        return bg_err_set(err, BG_EPROTO, "%s: record at offset %" PRIu64 " has a bad length %u",
                          f->path, off, n);
    bg_audit_hash sum, h;
    if (pread_all(f->fd, buf, n, off + 4) != 0 ||
        pread_all(f->fd, sum, BG_AUDIT_HASH_LEN, off + 4 + n) != 0)
        return bg_err_set(err, BG_EIO, "%s: cannot read the record at offset %" PRIu64, f->path,
                          off);
    bg_audit_hash_leaf(buf, n, h);
    /* The file may have been changed under us since it was scanned. */
    if (sodium_memcmp(h, sum, BG_AUDIT_HASH_LEN) != 0 ||
        (want != NULL && sodium_memcmp(h, want, BG_AUDIT_HASH_LEN) != 0))
        return bg_err_set(err, BG_EPROTO,
                          "%s: record at offset %" PRIu64 " no longer matches its hash", f->path,
                          off);
    *len = n;
    return BG_OK;
}

/* True iff [off, size) holds only zero bytes (what a file system may show for
 * an extended but unwritten tail after a crash). */
static int
all_zero(int fd, uint64_t off, uint64_t size, bool *zero)
{
    uint8_t buf[4096];
    *zero = true;
    while (off < size) {
        size_t n = size - off < sizeof buf ? (size_t)(size - off) : sizeof buf;
        if (pread_all(fd, buf, n, off) != 0)
            return -1;
        for (size_t i = 0; i < n; i++)
            if (buf[i] != 0) {
                *zero = false;
                return 0;
            }
        off += n;
    }
    return 0;
}

/* Decides whether the damage found at off is a torn tail: walks the framing
 * from off and looks for a valid record after it. *valid_at gets the offset of
 * the first valid record found (if not torn); *records how many record starts
 * the damaged region holds. */
static int
classify_damage(const bg_rec_file *f, uint64_t off, uint64_t size, bool *torn, uint64_t *valid_at,
                uint64_t *records, bg_err *err)
{
    uint8_t *buf = malloc(f->max);
    if (buf == NULL)
        return bg_err_set(err, BG_ENOMEM, "out of memory");
    uint64_t t = off;
    *records = 0;
    *torn = true;
    while (t < size) {
        uint8_t hdr[4];
        bg_audit_hash sum, h;
        (*records)++;
        if (size - t < 4)
            break;
        if (pread_all(f->fd, hdr, 4, t) != 0)
            goto io;
        uint32_t n = get_u32(hdr);
        if (n == 0 || n > f->max) {
            /* No framing to follow: only zeros may follow, else we cannot
             * tell a torn tail from a damaged length in the middle. */
            bool zero;
            if (all_zero(f->fd, t, size, &zero) != 0)
                goto io;
            if (!zero) {
                *torn = false;
                *valid_at = t;
            }
            break;
        }
        if (size - t < 4 + (uint64_t)n + BG_AUDIT_HASH_LEN)
            break;
        if (pread_all(f->fd, buf, n, t + 4) != 0 ||
            pread_all(f->fd, sum, BG_AUDIT_HASH_LEN, t + 4 + n) != 0)
            goto io;
        bg_audit_hash_leaf(buf, n, h);
        if (t != off && memcmp(h, sum, BG_AUDIT_HASH_LEN) == 0) {
            *torn = false;
            *valid_at = t;
            break;
        }
        t += 4 + (uint64_t)n + BG_AUDIT_HASH_LEN;
    }
    free(buf);
    return BG_OK;
io:
    free(buf);
    return bg_err_set(err, BG_EIO, "%s: read failed: %s", f->path, strerror(errno));
}

/* Makes a new record file holding only the magic, atomically (never a
 * half-made file under the final name). */
static int
create_file(const char *path, bg_err *err)
{
    int rc = bg_file_write_new(path, BG_AUDIT_MAGIC, BG_AUDIT_MAGIC_LEN, 0640, err);
    return rc == BG_EEXIST ? BG_OK : rc; /* someone else made it first: fine */
}

/* With BG_AUDIT_CREATE, a writer makes a missing file (holding only the
 * magic) before opening it. */
static int
rec_create_missing(const char *path, unsigned flags, bool read_only, bg_err *err)
{
    if (read_only || (flags & BG_AUDIT_CREATE) == 0)
        return BG_OK;
    struct stat st;
    if (stat(path, &st) == 0)
        return BG_OK;
    if (errno != ENOENT)
        return bg_err_set(err, BG_EIO, "cannot stat %s: %s", path, strerror(errno));
    return create_file(path, err);
}

/* The open file is ours (lock), a regular file, and starts with the magic;
 * *size is its size now. */
static int
rec_check_file(const bg_rec_file *f, bool lock, uint64_t *size, bg_err *err)
{
    if (lock && flock(f->fd, LOCK_EX | LOCK_NB) != 0)
        return errno == EWOULDBLOCK
                   ? bg_err_set(err, BG_EEXIST, "%s is open for writing by another process",
                                f->path)
                   : bg_err_set(err, BG_EIO, "cannot lock %s: %s", f->path, strerror(errno));
    struct stat st;
    if (fstat(f->fd, &st) != 0)
        return bg_err_set(err, BG_EIO, "cannot stat %s: %s", f->path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return bg_err_set(err, BG_EINVAL, "%s is not a regular file", f->path);
    /* Read-only readers take the size once: a record the writer adds after
     * this point is simply not there yet. */
    *size = (uint64_t)st.st_size;
    uint8_t magic[BG_AUDIT_MAGIC_LEN];
    if (*size < BG_AUDIT_MAGIC_LEN || pread_all(f->fd, magic, sizeof magic, 0) != 0 ||
        memcmp(magic, BG_AUDIT_MAGIC, BG_AUDIT_MAGIC_LEN) != 0)
        return bg_err_set(err, BG_EPROTO, "%s is not a baygate audit file (bad magic)", f->path);
    return BG_OK;
}

/* A buffered sequential stream over the records, past the magic: opening a
 * million-leaf log reads it once. */
static int
rec_stream(const bg_rec_file *f, FILE **out, bg_err *err)
{
    int dupfd = dup(f->fd);
    if (dupfd < 0)
        return bg_err_set(err, BG_ENOMEM, "out of memory opening %s", f->path);
    FILE *in = fdopen(dupfd, "rb");
    if (in == NULL) {
        close(dupfd);
        return bg_err_set(err, BG_EIO, "cannot read %s: %s", f->path, strerror(errno));
    }
    setvbuf(in, NULL, _IOFBF, 1 << 20);
    if (fseeko(in, BG_AUDIT_MAGIC_LEN, SEEK_SET) != 0) {
        int rc = bg_err_set(err, BG_EIO, "cannot read %s: %s", f->path, strerror(errno));
        fclose(in);
        return rc;
    }
    *out = in;
    return BG_OK;
}

/* Hands every good record before size to cb, in order. Stops at the first
 * damage: *end is where it starts and *why says what it is (NULL: none). */
static int
rec_scan_records(const bg_rec_file *f, FILE *in, uint8_t *buf, uint64_t size, bg_rec_cb cb,
                 void *ctx, uint64_t *end, const char **why, bg_err *err)
{
    uint64_t off = BG_AUDIT_MAGIC_LEN;
    int rc;
    *why = NULL;
    while (off < size) {
        uint8_t hdr[4];
        if (size - off < 4) {
            *why = "a partial length";
            break;
        }
        if (fread(hdr, 1, 4, in) != 4)
            return bg_err_set(err, BG_EIO, "%s changed or failed while being read", f->path);
        uint32_t n = get_u32(hdr);
        if (n == 0 || n > f->max) {
            *why = "an impossible length";
            break;
        }
        if (size - off < 4 + (uint64_t)n + BG_AUDIT_HASH_LEN) {
            *why = "a partial record";
            break;
        }
        if (fread(buf, 1, (size_t)n + BG_AUDIT_HASH_LEN, in) != (size_t)n + BG_AUDIT_HASH_LEN)
            return bg_err_set(err, BG_EIO, "%s changed or failed while being read", f->path);
        bg_audit_hash h;
        bg_audit_hash_leaf(buf, n, h);
        if (memcmp(h, buf + n, BG_AUDIT_HASH_LEN) != 0) {
            *why = "a checksum mismatch";
            break;
        }
        if (cb != NULL && (rc = cb(ctx, off, buf, n, h, err)) != BG_OK)
            return rc;
        off += 4 + (uint64_t)n + BG_AUDIT_HASH_LEN;
    }
    *end = off;
    return BG_OK;
}

static int
rec_scan(const bg_rec_file *f, uint64_t size, bg_rec_cb cb, void *ctx, uint64_t *end,
         const char **why, bg_err *err)
{
    uint8_t *buf = malloc(f->max + BG_AUDIT_HASH_LEN);
    if (buf == NULL)
        return bg_err_set(err, BG_ENOMEM, "out of memory opening %s", f->path);
    FILE *in = NULL;
    int rc = rec_stream(f, &in, err);
    if (rc == BG_OK) {
        rc = rec_scan_records(f, in, buf, size, cb, ctx, end, why, err);
        fclose(in);
    }
    free(buf);
    return rc;
}

/* Damage at off (why) that no valid record follows: a writer cuts it off
 * and reports it, a reader leaves it to the writer that may be writing it.
 * Damage with a valid record after it is refused. */
static int
rec_torn_tail(const bg_rec_file *f, uint64_t off, uint64_t size, const char *why,
              bg_audit_open_report *rep, bg_err *err)
{
    bool torn = true;
    uint64_t valid_at = 0, records = 0;
    int rc = classify_damage(f, off, size, &torn, &valid_at, &records, err);
    if (rc != BG_OK)
        return rc;
    if (!torn)
        return bg_err_set(err, BG_EPROTO,
                          "%s: damaged record at offset %" PRIu64 " (%s) with data after it "
                          "(offset %" PRIu64 "): not a torn tail, refusing to drop it",
                          f->path, off, why, valid_at);
    if (f->read_only) {
        /* A writer may be in the middle of this record. */
        if (rep != NULL)
            rep->pending_bytes += size - off;
        return BG_OK;
    }
    if (ftruncate(f->fd, (off_t)off) != 0 || fdatasync(f->fd) != 0)
        return bg_err_set(err, BG_EIO, "%s: cannot cut the torn tail at offset %" PRIu64 ": %s",
                          f->path, off, strerror(errno));
    if (rep != NULL) {
        rep->dropped_bytes += size - off;
        rep->dropped_records += records;
        size_t used = strlen(rep->detail);
        /* A summary: a long path is cut short, and that is all right. */
        if (used + 1 < sizeof rep->detail &&
            snprintf(rep->detail + used, sizeof rep->detail - used,
                     "%s%s: dropped a torn tail of %" PRIu64 " bytes at offset %" PRIu64 " (%s)",
                     used ? "; " : "", f->path, size - off, off, why) < 0)
            rep->detail[used] = '\0';
    }
    return BG_OK;
}

int
bg_rec_open(bg_rec_file *f, const char *path, unsigned flags, bool lock, size_t max, bg_rec_cb cb,
            void *ctx, bg_audit_open_report *rep, bg_err *err)
{
    memset(f, 0, sizeof *f);
    f->fd = -1;
    f->max = max;
    f->read_only = (flags & BG_AUDIT_READ_ONLY) != 0;
    if (strlen(path) >= sizeof f->path)
        return bg_err_set(err, BG_ELIMIT, "path %s is too long", path);
    strcpy(f->path, path);
    int rc = rec_create_missing(path, flags, f->read_only, err);
    if (rc != BG_OK)
        return rc;
    f->fd = open(path, (f->read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC | O_NOCTTY);
    if (f->fd < 0)
        return bg_err_set(err, errno == ENOENT ? BG_ENOTFOUND : BG_EIO, "cannot open %s: %s", path,
                          strerror(errno));
    uint64_t size = 0, end = 0;
    const char *why = NULL;
    if ((rc = rec_check_file(f, lock, &size, err)) == BG_OK &&
        (rc = rec_scan(f, size, cb, ctx, &end, &why, err)) == BG_OK) {
        f->end = end;
        if (why != NULL)
            rc = rec_torn_tail(f, end, size, why, rep, err);
    }
    if (rc != BG_OK) {
        close(f->fd);
        f->fd = -1;
    }
    return rc;
}

void
bg_rec_close(bg_rec_file *f)
{
    if (f->fd >= 0)
        close(f->fd); /* also releases the flock */
    f->fd = -1;
}

int
bg_rec_append(bg_rec_file *f, const uint8_t *framed, size_t len, bg_err *err)
{
    if (f->read_only)
        return bg_err_set(err, BG_EINVAL, "%s is open read-only", f->path);
    if (f->broken)
        return bg_err_set(err, BG_EIO, "%s: an earlier write failed; reopen the log", f->path);
    if (bg_file_write_all(f->fd, framed, len, (int64_t)f->end) != 0) {
        int e = errno;
        /* Cut the partial write back so the next append does not follow garbage. */
        if (ftruncate(f->fd, (off_t)f->end) != 0)
            f->broken = true;
        return bg_err_set(err, BG_EIO, "%s: write failed: %s", f->path, strerror(e));
    }
    if (fdatasync(f->fd) != 0) {
        int e = errno;
        /* After a failed sync the page cache may no longer say what is on disk
         * (the kernel may have dropped the dirty pages): stop appending. */
        f->broken = true;
        return bg_err_set(err, BG_EIO, "%s: sync failed: %s", f->path, strerror(e));
    }
    f->end += len;
    return BG_OK;
}
