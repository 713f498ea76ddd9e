/*
 * backup_fs.c - the file work that making and restoring a backup share (backup_int.h):
 * copying a file while hashing it, removing a tree, syncing a directory.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "common/file.h"
#include "gateway/backup/backup_int.h"

int
bg_bk_join(char *out, size_t cap, const char *a, const char *b, bg_err *err)
{
    int n = b[0] == '\0' ? snprintf(out, cap, "%s", a) : snprintf(out, cap, "%s/%s", a, b);
    if (n < 0 || (size_t)n >= cap)
        return bg_err_set(err, BG_ELIMIT, "path too long: %.100s/%.100s", a, b);
    return BG_OK;
}

int
bg_bk_hash_file(const char *path, uint64_t *size, uint8_t sha[32], bg_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return bg_err_set(err, BG_EIO, "cannot open %s: %s", path, strerror(errno));
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    uint8_t buf[65536];
    *size = 0;
    int rc = BG_OK;
    for (;;) {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            rc = bg_err_set(err, BG_EIO, "cannot read %s: %s", path, strerror(errno));
        if (r <= 0)
            break;
        crypto_hash_sha256_update(&st, buf, (size_t)r);
        *size += (uint64_t)r;
    }
    close(fd);
    crypto_hash_sha256_final(&st, sha);
    return rc;
}

int
bg_bk_copy_file(const char *src, const char *dst, mode_t mode, bg_err *err)
{
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return bg_err_set(err, errno == ENOENT ? BG_ENOTFOUND : BG_EIO, "cannot open %s: %s", src,
                          strerror(errno));
    int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode & 0777);
    if (out < 0) {
        close(in);
        return bg_err_set(err, BG_EIO, "cannot create %s: %s", dst, strerror(errno));
    }
    uint8_t buf[65536];
    int rc = BG_OK;
    for (;;) {
        ssize_t r = read(in, buf, sizeof buf);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            rc = bg_err_set(err, BG_EIO, "cannot read %s: %s", src, strerror(errno));
        if (r <= 0)
            break;
        if (bg_file_write_all(out, buf, (size_t)r, -1) != 0) {
            rc = bg_err_set(err, BG_EIO, "cannot write %s: %s", dst, strerror(errno));
            break;
        }
    }
    /* Exactly the mode asked for, whatever the umask. */
    if (rc == BG_OK && fchmod(out, mode & 0777) != 0)
        rc = bg_err_set(err, BG_EIO, "cannot set the mode of %s: %s", dst, strerror(errno));
    close(in);
    if (close(out) != 0 && rc == BG_OK)
        rc = bg_err_set(err, BG_EIO, "cannot write %s: %s", dst, strerror(errno));
    return rc;
}

void
bg_bk_remove_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        struct dirent *de;
        while (d != NULL && (de = readdir(d)) != NULL) {
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                continue;
            char sub[4096];
            if (bg_bk_join(sub, sizeof sub, path, de->d_name, NULL) == BG_OK)
                bg_bk_remove_tree(sub);
        }
        if (d != NULL)
            closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

void
bg_bk_sync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}
