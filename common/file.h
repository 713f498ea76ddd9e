/*
 * file.h - reading whole files with a bound, and crash-safe writing.
 *
 * Writers never leave a half-written file under the final name: data goes to
 * a temp file beside it (O_EXCL, exact mode), is fsynced, then renamed
 * (replace) or linked (new: fails if the name exists), and the directory is
 * fsynced so the new name survives a crash. Readers refuse anything but a
 * regular file and anything larger than the caller's bound.
 */
#ifndef BG_FILE_H
#define BG_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "common/err.h"

/* Reads a whole regular file of at most max bytes into a new malloc'd buffer
 * (NUL-terminated, not counted in *len). st (if not NULL) gets its fstat. */
int bg_file_read(const char *path, size_t max, uint8_t **buf, size_t *len, struct stat *st,
                 bg_err *err);

/* Creates path with exactly mode; BG_EEXIST if it exists (never overwritten). */
int bg_file_write_new(const char *path, const void *data, size_t len, mode_t mode, bg_err *err);

/* Replaces path atomically with data, mode. */
int bg_file_write_replace(const char *path, const void *data, size_t len, mode_t mode, bg_err *err);

/* fsyncs the directory holding path, so a new name in it (a rename, a link, a removal)
 * survives a crash: for a file written as a stream and renamed into place. */
int bg_file_sync_parent(const char *path, bg_err *err);

/*
 * A file written as a stream and put under its name only when complete, which a kill
 * at any moment never leaves behind half-written or as a stray temp: the data goes to
 * an unnamed file (O_TMPFILE) in path's directory, which the kernel drops when its
 * process dies; bg_file_stream_commit fsyncs it and gives it the name path (replacing
 * an existing one). Where the file system has no O_TMPFILE, a named temp beside path
 * (path.tmp.RANDOM) is used instead. The caller writes to s->fd, then calls
 * bg_file_stream_commit or bg_file_stream_abort exactly once; either closes s->fd.
 */
typedef struct bg_file_stream {
    int fd;
    char path[4096];
    char tmp[4096 + 32]; /* "" while unnamed */
} bg_file_stream;
int bg_file_stream_open(bg_file_stream *s, const char *path, mode_t mode, bg_err *err);
int bg_file_stream_commit(bg_file_stream *s, bg_err *err);
void bg_file_stream_abort(bg_file_stream *s);

/* Is name (no directory) one of the temp files the writers above make beside their
 * target ("NAME.tmp." and 12 hex digits)? Only a crash leaves one behind. */
bool bg_file_is_temp(const char *name);

/* Removes what a crash left of the writers above in dir: every regular file that
 * bg_file_is_temp names. *removed (if not NULL) gets how many. For the one process that
 * owns dir, when it starts: a writer in another process at that moment would lose its
 * temp (and say so). A missing dir is not an error. */
int bg_file_remove_temps(const char *dir, size_t *removed, bg_err *err);

/* Writes all len bytes to fd, at offset off (pwrite), or at its position if off < 0,
 * retrying short writes and EINTR. 0, or -1 with errno set. */
int bg_file_write_all(int fd, const void *data, size_t len, int64_t off);

/*
 * A lock file that says who holds it: takes an exclusive fcntl lock on path
 * (created, mode 0644, if missing) and writes this process's pid into it. The
 * lock lasts until *fd is closed or the process ends in any way (kill -9
 * included: the kernel drops it), so a file left behind never blocks the next
 * taker. fcntl locks belong to the process: it must not open and close path
 * elsewhere while it holds the lock, and a second take from the same process
 * succeeds. BG_EEXIST if another process holds it, with *holder (if not NULL)
 * its pid (0 if it cannot be learnt).
 */
int bg_file_lock_pid(const char *path, int *fd, long *holder, bg_err *err);

/* The pid of the process holding bg_file_lock_pid's lock on path, asked of the
 * kernel without taking the lock: BG_OK with *pid; BG_ENOTFOUND if nobody
 * holds it (or there is no file). */
int bg_file_lock_holder(const char *path, long *pid, bg_err *err);

/* dir + "/" + name into out; BG_ELIMIT if it does not fit. */
int bg_path_join(char *out, size_t outsz, const char *dir, const char *name, bg_err *err);

#endif
