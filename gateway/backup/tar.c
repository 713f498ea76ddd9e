/*
 * tar.c - POSIX ustar archives, through zlib when compressed (see tar.h).
 *
 * A header is one 512-byte block: name[100] mode[8] uid[8] gid[8] size[12]
 * mtime[12] chksum[8] typeflag[1] linkname[100] magic[6] "ustar\0" version[2] "00"
 * uname[32] gname[32] devmajor[8] devminor[8] prefix[155], numbers in octal; data
 * follows, padded to a block; two zero blocks end the archive.
 */
#include "gateway/backup/tar.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zlib.h>

#include "common/file.h"

#define BLOCK 512

struct bg_tar_writer {
    int fd;
    gzFile gz; /* NULL: plain */
};

struct bg_tar_reader {
    gzFile gz;
    uint64_t left; /* data bytes of the current entry not read yet */
    uint64_t pad;  /* padding after them */
};

/* ------------------------------------------------------------ writing */

static int
put(bg_tar_writer *w, const void *data, size_t len, bg_err *err)
{
    if (w->gz != NULL) {
        const uint8_t *p = data;
        while (len > 0) {
            unsigned n = len > (1u << 30) ? 1u << 30 : (unsigned)len;
            if (gzwrite(w->gz, p, n) != (int)n) {
                int e;
                const char *m = gzerror(w->gz, &e);
                return bg_err_set(err, BG_EIO, "archive write failed: %s",
                                  e == Z_ERRNO ? strerror(errno) : m);
            }
            p += n;
            len -= n;
        }
        return BG_OK;
    }
    if (bg_file_write_all(w->fd, data, len, -1) != 0)
        return bg_err_set(err, BG_EIO, "archive write failed: %s", strerror(errno));
    return BG_OK;
}

int
bg_tar_writer_new(bg_tar_writer **out, int fd, bool gzip, bg_err *err)
{
    *out = NULL;
    bg_tar_writer *w = calloc(1, sizeof *w);
    if (w == NULL) {
        close(fd);
        return bg_err_set(err, BG_ENOMEM, "out of memory");
    }
    w->fd = fd;
    if (gzip) {
        int dfd = dup(fd);
        w->gz = dfd >= 0 ? gzdopen(dfd, "wb6") : NULL;
        if (w->gz == NULL) {
            if (dfd >= 0)
                close(dfd);
            close(fd);
            free(w);
            return bg_err_set(err, BG_ENOMEM, "cannot start compression");
        }
    }
    *out = w;
    return BG_OK;
}

/* Octal into a field of n bytes (n - 1 digits and a NUL); false if it does not fit. */
static bool
octal(char *field, size_t n, uint64_t v)
{
    char buf[32];
    int len = snprintf(buf, sizeof buf, "%0*" PRIo64, (int)(n - 1), v);
    if (len < 0 || (size_t)len != n - 1)
        return false;
    memcpy(field, buf, n);
    return true;
}

/* The ustar name and prefix fields of name (split at a slash when over 100 bytes). */
static int
split_name(const char *name, char hdr[BLOCK], bg_err *err)
{
    size_t len = strlen(name);
    if (len == 0 || len > BG_TAR_NAME_MAX)
        return bg_err_set(err, BG_ELIMIT, "archive name of %zu bytes: '%.80s'", len, name);
    if (len <= 100) {
        memcpy(hdr, name, len);
        return BG_OK;
    }
    for (size_t i = len - 1; i > 0; i--) {
        if (name[i] == '/' && i <= 155 && len - i - 1 <= 100 && len - i - 1 > 0) {
            memcpy(hdr + 345, name, i);
            memcpy(hdr, name + i + 1, len - i - 1);
            return BG_OK;
        }
    }
    return bg_err_set(err, BG_ELIMIT, "archive name cannot be split for ustar: '%.80s'", name);
}

static int
header(bg_tar_writer *w, const char *name, char type, mode_t mode, uint64_t size, int64_t mtime,
       uid_t uid, gid_t gid, bg_err *err)
{
    char hdr[BLOCK];
    memset(hdr, 0, sizeof hdr);
    int rc = split_name(name, hdr, err);
    if (rc != BG_OK)
        return rc;
    if (size > BG_TAR_SIZE_MAX)
        return bg_err_set(err, BG_ELIMIT, "%s: %" PRIu64 " bytes is too large for ustar", name,
                          size);
    octal(hdr + 100, 8, mode & 07777);
    if (!octal(hdr + 108, 8, uid))
        octal(hdr + 108, 8, 0);
    if (!octal(hdr + 116, 8, gid))
        octal(hdr + 116, 8, 0);
    octal(hdr + 124, 12, size);
    octal(hdr + 136, 12, mtime > 0 ? (uint64_t)mtime : 0);
    hdr[156] = type;
    memcpy(hdr + 257, "ustar", 6);
    memcpy(hdr + 263, "00", 2);
    char buf[1024];
    struct passwd pw, *pwp = NULL;
    struct group gr, *grp = NULL;
    if (getpwuid_r(uid, &pw, buf, sizeof buf, &pwp) == 0 && pwp != NULL)
        snprintf(hdr + 265, 32, "%s", pw.pw_name);
    if (getgrgid_r(gid, &gr, buf, sizeof buf, &grp) == 0 && grp != NULL)
        snprintf(hdr + 297, 32, "%s", gr.gr_name);
    memset(hdr + 148, ' ', 8);
    unsigned sum = 0;
    for (size_t i = 0; i < BLOCK; i++)
        sum += (unsigned char)hdr[i];
    snprintf(hdr + 148, 8, "%06o", sum);
    hdr[155] = ' ';
    return put(w, hdr, BLOCK, err);
}

static int
pad(bg_tar_writer *w, uint64_t size, bg_err *err)
{
    static const char zero[BLOCK];
    size_t n = (size_t)((BLOCK - size % BLOCK) % BLOCK);
    return n ? put(w, zero, n, err) : BG_OK;
}

int
bg_tar_add_dir(bg_tar_writer *w, const char *name, mode_t mode, int64_t mtime, uid_t uid, gid_t gid,
               bg_err *err)
{
    char n[BG_TAR_NAME_MAX + 2];
    if (snprintf(n, sizeof n, "%s/", name) >= (int)sizeof n)
        return bg_err_set(err, BG_ELIMIT, "archive name too long: '%.80s'", name);
    return header(w, n, '5', mode, 0, mtime, uid, gid, err);
}

int
bg_tar_add_data(bg_tar_writer *w, const char *name, mode_t mode, int64_t mtime, uid_t uid,
                gid_t gid, const void *data, size_t len, bg_err *err)
{
    int rc = header(w, name, '0', mode, len, mtime, uid, gid, err);
    if (rc == BG_OK)
        rc = put(w, data, len, err);
    if (rc == BG_OK)
        rc = pad(w, len, err);
    return rc;
}

int
bg_tar_add_file(bg_tar_writer *w, const char *name, mode_t mode, int64_t mtime, uid_t uid,
                gid_t gid, const char *path, uint64_t size, bg_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return bg_err_set(err, BG_EIO, "cannot open %s: %s", path, strerror(errno));
    int rc = header(w, name, '0', mode, size, mtime, uid, gid, err);
    uint8_t buf[65536];
    uint64_t left = size;
    while (rc == BG_OK && left > 0) {
        ssize_t r = read(fd, buf, left < sizeof buf ? (size_t)left : sizeof buf);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            rc = bg_err_set(err, BG_EIO, "%s: %s", path,
                            r < 0 ? strerror(errno) : "shorter than it was");
        else if ((rc = put(w, buf, (size_t)r, err)) == BG_OK)
            left -= (uint64_t)r;
    }
    close(fd);
    if (rc == BG_OK)
        rc = pad(w, size, err);
    return rc;
}

int
bg_tar_finish(bg_tar_writer *w, bg_err *err)
{
    static const char zero[2 * BLOCK];
    int rc = put(w, zero, sizeof zero, err);
    if (w->gz != NULL) {
        int z = gzclose(w->gz);
        w->gz = NULL;
        if (rc == BG_OK && z != Z_OK)
            rc = bg_err_set(err, BG_EIO, "archive write failed at the end (zlib %d)", z);
    }
    if (rc == BG_OK && fsync(w->fd) != 0)
        rc = bg_err_set(err, BG_EIO, "cannot sync the archive: %s", strerror(errno));
    if (close(w->fd) != 0 && rc == BG_OK)
        rc = bg_err_set(err, BG_EIO, "cannot close the archive: %s", strerror(errno));
    free(w);
    return rc;
}

void
bg_tar_abort(bg_tar_writer *w)
{
    if (w == NULL)
        return;
    if (w->gz != NULL)
        gzclose(w->gz);
    close(w->fd);
    free(w);
}

/* ------------------------------------------------------------ reading */

int
bg_tar_reader_open(bg_tar_reader **out, const char *path, bg_err *err)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return bg_err_set(err, errno == ENOENT ? BG_ENOTFOUND : BG_EIO, "cannot open %s: %s", path,
                          strerror(errno));
    bg_tar_reader *r = calloc(1, sizeof *r);
    gzFile gz = r != NULL ? gzdopen(fd, "rb") : NULL;
    if (gz == NULL) {
        close(fd);
        free(r);
        return bg_err_set(err, BG_ENOMEM, "out of memory reading %s", path);
    }
    r->gz = gz;
    *out = r;
    return BG_OK;
}

/* Exactly n bytes; BG_EPROTO when the archive ends before them. */
static int
get(bg_tar_reader *r, void *buf, size_t n, bg_err *err)
{
    int got = gzread(r->gz, buf, (unsigned)n);
    if (got < 0) {
        int e;
        const char *m = gzerror(r->gz, &e);
        return bg_err_set(err, BG_EIO, "archive read failed: %s",
                          e == Z_ERRNO ? strerror(errno) : m);
    }
    if ((size_t)got != n)
        return bg_err_set(err, BG_EPROTO, "the archive ends in the middle of an entry");
    return BG_OK;
}

/* A strict octal field: digits, then NULs or spaces only. */
static bool
parse_octal(const char *f, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    size_t i = 0;
    while (i < n && f[i] == ' ')
        i++;
    size_t digits = 0;
    for (; i < n && f[i] >= '0' && f[i] <= '7'; i++, digits++) {
        if (v > (UINT64_MAX >> 3))
            return false;
        v = v << 3 | (uint64_t)(f[i] - '0');
    }
    for (; i < n; i++)
        if (f[i] != '\0' && f[i] != ' ')
            return false;
    *out = v;
    return digits > 0;
}

/* NUL-terminated copy of a text field of at most n bytes. */
static void
field(const char *f, size_t n, char *out)
{
    size_t len = strnlen(f, n);
    memcpy(out, f, len);
    out[len] = '\0';
}

static int
parse_header(const char *hdr, bg_tar_entry *e, bg_err *err)
{
    uint64_t sum, mode, size, mtime;
    unsigned calc = 0;
    for (size_t i = 0; i < BLOCK; i++)
        calc += i >= 148 && i < 156 ? ' ' : (unsigned char)hdr[i];
    if (!parse_octal(hdr + 148, 8, &sum) || sum != calc)
        return bg_err_set(err, BG_EPROTO, "archive header checksum mismatch");
    if (memcmp(hdr + 257, "ustar", 5) != 0)
        return bg_err_set(err, BG_EPROTO, "not a ustar archive");
    if (!parse_octal(hdr + 100, 8, &mode) || !parse_octal(hdr + 124, 12, &size) ||
        !parse_octal(hdr + 136, 12, &mtime))
        return bg_err_set(err, BG_EPROTO, "archive header with a malformed number");
    char type = hdr[156];
    if (type != '0' && type != '\0' && type != '5')
        return bg_err_set(err, BG_EPROTO, "archive entry of type '%c': only files and directories",
                          type);
    char prefix[156], name[101];
    field(hdr + 345, 155, prefix);
    field(hdr, 100, name);
    memset(e, 0, sizeof *e);
    size_t pl = strlen(prefix), nl = strlen(name);
    if (pl + 1 + nl > BG_TAR_NAME_MAX)
        return bg_err_set(err, BG_EPROTO, "archive entry name too long");
    if (pl > 0) {
        memcpy(e->name, prefix, pl);
        e->name[pl] = '/';
        memcpy(e->name + pl + 1, name, nl + 1);
    } else {
        memcpy(e->name, name, nl + 1);
    }
    e->is_dir = type == '5';
    size_t len = strlen(e->name);
    if (e->is_dir && len > 0 && e->name[len - 1] == '/')
        e->name[--len] = '\0';
    if (len == 0)
        return bg_err_set(err, BG_EPROTO, "archive entry without a name");
    if (e->is_dir && size != 0)
        return bg_err_set(err, BG_EPROTO, "archive directory %s with data", e->name);
    e->mode = (mode_t)(mode & 07777);
    e->size = size;
    e->mtime = (int64_t)mtime;
    return BG_OK;
}

static int
skip(bg_tar_reader *r, uint64_t n, bg_err *err)
{
    char buf[BLOCK * 8];
    while (n > 0) {
        size_t k = n < sizeof buf ? (size_t)n : sizeof buf;
        int rc = get(r, buf, k, err);
        if (rc != BG_OK)
            return rc;
        n -= k;
    }
    return BG_OK;
}

int
bg_tar_next(bg_tar_reader *r, bg_tar_entry *e, bg_err *err)
{
    int rc = skip(r, r->left + r->pad, err);
    r->left = r->pad = 0;
    if (rc != BG_OK)
        return rc;
    char hdr[BLOCK];
    if ((rc = get(r, hdr, BLOCK, err)) != BG_OK)
        return rc;
    bool zero = true;
    for (size_t i = 0; i < BLOCK && zero; i++)
        zero = hdr[i] == 0;
    if (zero)
        return BG_ENOTFOUND; /* the end (a second zero block follows) */
    if ((rc = parse_header(hdr, e, err)) != BG_OK)
        return rc;
    r->left = e->size;
    r->pad = (BLOCK - e->size % BLOCK) % BLOCK;
    return BG_OK;
}

int
bg_tar_read(bg_tar_reader *r, void *buf, size_t cap, size_t *got, bg_err *err)
{
    size_t n = r->left < cap ? (size_t)r->left : cap;
    *got = 0;
    if (n == 0)
        return BG_OK;
    int rc = get(r, buf, n, err);
    if (rc != BG_OK)
        return rc;
    r->left -= n;
    *got = n;
    return BG_OK;
}

void
bg_tar_reader_close(bg_tar_reader *r)
{
    if (r == NULL)
        return;
    gzclose(r->gz);
    free(r);
}
