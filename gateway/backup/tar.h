/*
 * tar.h - the archives of `baygate backup`: POSIX ustar, gzip-compressed or not.
 *
 * Only what a gateway directory needs: directories and regular files, names up to
 * 255 bytes (ustar's prefix and name fields), sizes below 8 GiB, mode, mtime and
 * owner. The writer never leaves a partial archive anywhere but the caller's file,
 * which it syncs at the end. The reader is for archives from outside (a backup may
 * have travelled): every header's checksum and magic are checked, numbers parsed
 * strictly, and anything but a directory or a regular file (links, devices, GNU and
 * pax extensions) is refused rather than guessed at. Names are handed out as they
 * are: the caller decides which it accepts. A gzip archive is recognised by its
 * magic, so one reader serves both.
 */
#ifndef BG_TAR_H
#define BG_TAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/err.h"

#define BG_TAR_NAME_MAX 255
/* Largest file: 11 octal digits of size. */
#define BG_TAR_SIZE_MAX ((UINT64_C(1) << 33) - 1)

typedef struct bg_tar_writer bg_tar_writer;

/* Writes an archive to fd (which it owns from now on: closed by finish or abort);
 * gzip: compress it. */
int bg_tar_writer_new(bg_tar_writer **out, int fd, bool gzip, bg_err *err);
/* One directory entry (name without the trailing slash). */
int bg_tar_add_dir(bg_tar_writer *w, const char *name, mode_t mode, int64_t mtime, uid_t uid,
                   gid_t gid, bg_err *err);
/* One regular file of exactly size bytes read from the file at path. */
int bg_tar_add_file(bg_tar_writer *w, const char *name, mode_t mode, int64_t mtime, uid_t uid,
                    gid_t gid, const char *path, uint64_t size, bg_err *err);
/* One regular file of the bytes data[0..len). */
int bg_tar_add_data(bg_tar_writer *w, const char *name, mode_t mode, int64_t mtime, uid_t uid,
                    gid_t gid, const void *data, size_t len, bg_err *err);
/* Writes the end of the archive, flushes, fsyncs and closes; frees w either way. */
int bg_tar_finish(bg_tar_writer *w, bg_err *err);
/* Closes and frees w without finishing the archive (NULL is ignored). */
void bg_tar_abort(bg_tar_writer *w);

typedef struct bg_tar_reader bg_tar_reader;

typedef struct bg_tar_entry {
    char name[BG_TAR_NAME_MAX + 1]; /* prefix/name, a directory's without its slash */
    bool is_dir;
    mode_t mode; /* permission bits only */
    uint64_t size;
    int64_t mtime;
} bg_tar_entry;

/* Reads the archive at path (gzip or plain). */
int bg_tar_reader_open(bg_tar_reader **out, const char *path, bg_err *err);
/* The next entry (the rest of the current one's data is skipped). BG_ENOTFOUND at
 * the end of the archive; BG_EPROTO for anything malformed or not supported. */
int bg_tar_next(bg_tar_reader *r, bg_tar_entry *e, bg_err *err);
/* Up to cap bytes of the current entry's data; *got 0 at its end. */
int bg_tar_read(bg_tar_reader *r, void *buf, size_t cap, size_t *got, bg_err *err);
void bg_tar_reader_close(bg_tar_reader *r);

#endif
