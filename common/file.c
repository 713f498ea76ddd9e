/*
 * file.c - bounded file reading, crash-safe writing and pid lock files (see file.h).
 */
#define _GNU_SOURCE /* O_TMPFILE */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <dirent.h>
#include <sys/random.h>

#include "common/file.h"

int
bg_path_join(char *out, size_t outsz, const char *dir, const char *name, bg_err *err)
{
    int n = snprintf(out, outsz, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= outsz)
        return bg_err_set(err, BG_ELIMIT, "path %s/%s is too long", dir, name);
    return BG_OK;
}

int
bg_file_read(const char *path, size_t max, uint8_t **buf, size_t *len, struct stat *st, bg_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return bg_err_set(err, errno == ENOENT ? BG_ENOTFOUND : BG_EIO, "cannot open %s: %s", path,
                          strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return bg_err_set(err, BG_EIO, "cannot stat %s: %s", path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return bg_err_set(err, BG_EINVAL, "%s is not a regular file", path);
    }
    if (sb.st_size < 0 || (uint64_t)sb.st_size > max) {
        close(fd);
        return bg_err_set(err, BG_ELIMIT, "%s is larger than %zu bytes", path, max);
    }
    size_t want = (size_t)sb.st_size;
    uint8_t *p = malloc(want + 1);
    if (p == NULL) {
        close(fd);
        return bg_err_set(err, BG_ENOMEM, "out of memory reading %s", path);
    }
    size_t got = 0;
    /* Read one byte past the size fstat gave, to notice a file that grew. */
    while (got <= want) {
        ssize_t r = read(fd, p + got, want + 1 - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            close(fd);
            free(p);
            return bg_err_set(err, BG_EIO, "cannot read %s: %s", path, strerror(e));
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    if (got > want) {
        free(p);
        return bg_err_set(err, BG_EIO, "%s changed while being read", path);
    }
    p[got] = '\0';
    *buf = p;
    *len = got;
    if (st != NULL)
        *st = sb;
    return BG_OK;
}

int
bg_file_write_all(int fd, const void *data, size_t len, int64_t off)
{
    const uint8_t *p = data;
    while (len > 0) {
        ssize_t w = off < 0 ? write(fd, p, len) : pwrite(fd, p, len, (off_t)off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        p += w;
        len -= (size_t)w;
        if (off >= 0)
            off += w;
    }
    return 0;
}

/* path's directory into dir ("." for a bare name). */
static int
parent_of(const char *path, char *dir, size_t dirsz, bg_err *err)
{
    const char *slash = strrchr(path, '/');
    size_t n = slash == NULL ? 1 : slash == path ? 1 : (size_t)(slash - path);
    if (n >= dirsz)
        return bg_err_set(err, BG_ELIMIT, "path %s is too long", path);
    memcpy(dir, slash == NULL ? "." : slash == path ? "/" : path, n);
    dir[n] = '\0';
    return BG_OK;
}

int
bg_file_sync_parent(const char *path, bg_err *err)
{
    char dir[PATH_MAX];
    int rc = parent_of(path, dir, sizeof dir, err);
    if (rc != BG_OK)
        return rc;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return bg_err_set(err, BG_EIO, "cannot open directory %s: %s", dir, strerror(errno));
    rc = fsync(fd);
    int e = errno;
    close(fd);
    if (rc != 0 && e != EINVAL) /* some file systems cannot fsync a directory */
        return bg_err_set(err, BG_EIO, "cannot sync directory %s: %s", dir, strerror(e));
    return BG_OK;
}

#define TEMP_HEX 12 /* the hex digits of a temp file's name: 6 random bytes */

/* Creates path.tmp.RANDOM with exactly mode (O_EXCL: never an existing file),
 * writes data and fsyncs it. The temp name goes to tmp. */
static int
write_temp(const char *path, const void *data, size_t len, mode_t mode, char *tmp, size_t tmpsz,
           bg_err *err)
{
    int fd = -1;
    for (int attempt = 0; attempt < 8 && fd < 0; attempt++) {
        uint8_t r[6];
        if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r)
            return bg_err_set(err, BG_EIO, "no randomness for a temp file name: %s",
                              strerror(errno));
        int n = snprintf(tmp, tmpsz, "%s.tmp.%02x%02x%02x%02x%02x%02x", path, r[0], r[1], r[2],
                         r[3], r[4], r[5]);
        if (n < 0 || (size_t)n >= tmpsz)
            return bg_err_set(err, BG_ELIMIT, "path %s is too long", path);
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
        if (fd < 0 && errno != EEXIST)
            return bg_err_set(err, BG_EIO, "cannot create %s: %s", tmp, strerror(errno));
    }
    if (fd < 0)
        return bg_err_set(err, BG_EIO, "cannot create a temp file beside %s", path);
    if (bg_file_write_all(fd, data, len, -1) != 0 || fsync(fd) != 0) {
        int e = errno;
        close(fd);
        unlink(tmp);
        return bg_err_set(err, BG_EIO, "cannot write %s: %s", tmp, strerror(e));
    }
    if (close(fd) != 0) {
        int e = errno;
        unlink(tmp);
        return bg_err_set(err, BG_EIO, "cannot write %s: %s", tmp, strerror(e));
    }
    return BG_OK;
}

bool
bg_file_is_temp(const char *name)
{
    const char *t = strstr(name, ".tmp.");
    if (t == NULL || t == name || strlen(t) != 5 + TEMP_HEX)
        return false;
    for (const char *c = t + 5; *c != '\0'; c++)
        if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f')))
            return false;
    return true;
}

int
bg_file_remove_temps(const char *dir, size_t *removed, bg_err *err)
{
    if (removed != NULL)
        *removed = 0;
    DIR *d = opendir(dir);
    if (d == NULL)
        return errno == ENOENT
                   ? BG_OK
                   : bg_err_set(err, BG_EIO, "cannot read directory %s: %s", dir, strerror(errno));
    int rc = BG_OK;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        struct stat st;
        if (!bg_file_is_temp(de->d_name) ||
            fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (unlinkat(dirfd(d), de->d_name, 0) == 0) {
            if (removed != NULL)
                (*removed)++;
        } else if (errno != ENOENT && rc == BG_OK) {
            rc = bg_err_set(err, BG_EIO, "cannot remove %s/%s: %s", dir, de->d_name,
                            strerror(errno));
        }
    }
    closedir(d);
    return rc;
}

int
bg_file_stream_open(bg_file_stream *s, const char *path, mode_t mode, bg_err *err)
{
    s->fd = -1;
    s->tmp[0] = '\0';
    if (snprintf(s->path, sizeof s->path, "%s", path) >= (int)sizeof s->path)
        return bg_err_set(err, BG_ELIMIT, "path %s is too long", path);
    char dir[sizeof s->path];
    int rc = parent_of(path, dir, sizeof dir, err);
    if (rc != BG_OK)
        return rc;
    s->fd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, mode);
    if (s->fd >= 0) {
        /* O_TMPFILE's mode is filtered by the umask like any creat: set it exactly. */
        if (fchmod(s->fd, mode) != 0) {
            int e = errno;
            close(s->fd);
            s->fd = -1;
            return bg_err_set(err, BG_EIO, "cannot create %s: %s", path, strerror(e));
        }
        return BG_OK;
    }
    if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
        return bg_err_set(err, BG_EIO, "cannot create %s: %s", path, strerror(errno));
    for (int attempt = 0; attempt < 8 && s->fd < 0; attempt++) {
        uint8_t r[6];
        if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r)
            return bg_err_set(err, BG_EIO, "no randomness for a temp file name: %s",
                              strerror(errno));
        snprintf(s->tmp, sizeof s->tmp, "%s.tmp.%02x%02x%02x%02x%02x%02x", path, r[0], r[1], r[2],
                 r[3], r[4], r[5]);
        s->fd = open(s->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
        if (s->fd < 0 && errno != EEXIST) {
            int e = errno;
            s->tmp[0] = '\0';
            return bg_err_set(err, BG_EIO, "cannot create %s: %s", path, strerror(e));
        }
    }
    if (s->fd < 0) {
        s->tmp[0] = '\0';
        return bg_err_set(err, BG_EIO, "cannot create a temp file beside %s", path);
    }
    return BG_OK;
}

void
bg_file_stream_abort(bg_file_stream *s)
{
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
    if (s->tmp[0] != '\0')
        unlink(s->tmp);
    s->tmp[0] = '\0';
}

int
bg_file_stream_commit(bg_file_stream *s, bg_err *err)
{
    if (fsync(s->fd) != 0) {
        int e = errno;
        bg_file_stream_abort(s);
        return bg_err_set(err, BG_EIO, "cannot write %s: %s", s->path, strerror(e));
    }
    if (s->tmp[0] == '\0') {
        char self[64];
        snprintf(self, sizeof self, "/proc/self/fd/%d", s->fd);
        /* A new name straight away; over an existing one, a named step and a rename (a
         * kill between the two is the one moment a temp can be left behind). */
        if (linkat(AT_FDCWD, self, AT_FDCWD, s->path, AT_SYMLINK_FOLLOW) != 0) {
            int e = errno;
            uint8_t r[6];
            if (e == EEXIST && getrandom(r, sizeof r, 0) == (ssize_t)sizeof r) {
                snprintf(s->tmp, sizeof s->tmp, "%s.tmp.%02x%02x%02x%02x%02x%02x", s->path, r[0],
                         r[1], r[2], r[3], r[4], r[5]);
                e = linkat(AT_FDCWD, self, AT_FDCWD, s->tmp, AT_SYMLINK_FOLLOW) == 0 ? 0 : errno;
                if (e != 0)
                    s->tmp[0] = '\0';
            }
            if (e != 0) {
                bg_file_stream_abort(s);
                return bg_err_set(err, BG_EIO, "cannot name %s: %s", s->path, strerror(e));
            }
        }
    }
    if (close(s->fd) != 0) {
        int e = errno;
        s->fd = -1;
        if (s->tmp[0] == '\0')
            unlink(s->path); /* linked straight to its name above: it was new */
        bg_file_stream_abort(s);
        return bg_err_set(err, BG_EIO, "cannot write %s: %s", s->path, strerror(e));
    }
    s->fd = -1;
    if (s->tmp[0] != '\0' && rename(s->tmp, s->path) != 0) {
        int e = errno;
        bg_file_stream_abort(s);
        return bg_err_set(err, BG_EIO, "cannot replace %s: %s", s->path, strerror(e));
    }
    s->tmp[0] = '\0';
    return bg_file_sync_parent(s->path, err);
}

int
bg_file_write_new(const char *path, const void *data, size_t len, mode_t mode, bg_err *err)
{
    char tmp[PATH_MAX];
    int rc = write_temp(path, data, len, mode, tmp, sizeof tmp, err);
    if (rc != BG_OK)
        return rc;
    /* link(2) is the atomic "create only if absent" for a complete file. */
    if (link(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        if (e == EEXIST)
            return bg_err_set(err, BG_EEXIST, "%s already exists; not overwriting it", path);
        return bg_err_set(err, BG_EIO, "cannot create %s: %s", path, strerror(e));
    }
    unlink(tmp);
    return bg_file_sync_parent(path, err);
}

int
bg_file_write_replace(const char *path, const void *data, size_t len, mode_t mode, bg_err *err)
{
    char tmp[PATH_MAX];
    int rc = write_temp(path, data, len, mode, tmp, sizeof tmp, err);
    if (rc != BG_OK)
        return rc;
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return bg_err_set(err, BG_EIO, "cannot replace %s: %s", path, strerror(e));
    }
    return bg_file_sync_parent(path, err);
}

/* Who holds a conflicting lock on fd's file: the kernel knows (0 if nobody does now). */
static long
lock_owner(int fd)
{
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    if (fcntl(fd, F_GETLK, &fl) != 0 || fl.l_type == F_UNLCK)
        return 0;
    return (long)fl.l_pid;
}

int
bg_file_lock_pid(const char *path, int *fd_out, long *holder, bg_err *err)
{
    *fd_out = -1;
    if (holder != NULL)
        *holder = 0;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW, 0644);
    if (fd < 0)
        return bg_err_set(err, BG_EIO, "cannot open %s: %s", path, strerror(errno));
    struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    if (fcntl(fd, F_SETLK, &fl) != 0) {
        int e = errno;
        long pid = e == EACCES || e == EAGAIN ? lock_owner(fd) : 0;
        close(fd);
        if (e != EACCES && e != EAGAIN)
            return bg_err_set(err, BG_EIO, "cannot lock %s: %s", path, strerror(e));
        if (holder != NULL)
            *holder = pid;
        if (pid == 0)
            return bg_err_set(err, BG_EEXIST, "%s is held by another process", path);
        return bg_err_set(err, BG_EEXIST, "%s is held by process %ld", path, pid);
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || bg_file_write_all(fd, pid, (size_t)n, 0) != 0) {
        int e = errno;
        close(fd); /* and the lock with it */
        return bg_err_set(err, BG_EIO, "cannot write %s: %s", path, strerror(e));
    }
    *fd_out = fd;
    return BG_OK;
}

int
bg_file_lock_holder(const char *path, long *pid, bg_err *err)
{
    *pid = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW);
    if (fd < 0) {
        if (errno == ENOENT)
            return bg_err_set(err, BG_ENOTFOUND, "no %s", path);
        return bg_err_set(err, BG_EIO, "cannot open %s: %s", path, strerror(errno));
    }
    *pid = lock_owner(fd);
    close(fd);
    return *pid != 0 ? BG_OK : bg_err_set(err, BG_ENOTFOUND, "%s is not held", path);
}
