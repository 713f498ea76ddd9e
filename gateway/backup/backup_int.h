/*
 * backup_int.h - helpers shared by the backup module's files (backup_fs.c).
 */
#ifndef BG_BACKUP_INT_H
#define BG_BACKUP_INT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/err.h"

#define BG_BK_PATH_MAX 4096

/* a + "/" + b (just a when b is empty) into out. */
int bg_bk_join(char *out, size_t cap, const char *a, const char *b, bg_err *err);
/* Size and SHA-256 of the file at path. */
int bg_bk_hash_file(const char *path, uint64_t *size, uint8_t sha[32], bg_err *err);
/* Copies src to the new file dst with exactly mode. */
int bg_bk_copy_file(const char *src, const char *dst, mode_t mode, bg_err *err);
/* Removes path and everything under it, as far as it can. */
void bg_bk_remove_tree(const char *path);
/* fsync of a directory, so the names in it survive a crash (best effort). */
void bg_bk_sync_dir(const char *path);

#endif
