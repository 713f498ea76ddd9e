/*
 * backup.h - a consistent copy of a running gateway's directory, and its restore.
 *
 * bg_backup_make copies the gateway directory GW while its gateway serves: the
 * credit store by SQLite's online backup (one read transaction), the evidence log by
 * bg_audit_copy (heads, then leaves, each up to a record boundary, checked: every
 * head covered, with the leaves' root), then every other regular file of GW as it
 * is (keys keep mode 0600; temp files of atomic writes, sockets, the store's WAL and
 * a restore's notes are left out). The store goes first: a PSI key file is written
 * before the store records its generation, so the copy never names a key it lacks.
 * Into a ustar archive (tar.h, gzip when the name ends in .gz), created mode 0600
 * under a temp name and linked into place only when complete and synced. Its top
 * directory is GW's name; its first file, TOP/backup.manifest, lists every directory
 * and file with mode, size and SHA-256, what the store and the log hold (leaves,
 * latest signed head) and when it was taken. Nothing is written into GW.
 *
 * bg_backup_restore unpacks such an archive into GW, which must not exist or be
 * empty (restoring never overwrites a gateway): into a directory inside GW first,
 * every entry checked against the manifest (names, types, sizes, digests; nothing
 * missing, nothing more), then moved into place, then checked as a gateway: the
 * configuration is the manifest's city, the store opens with the manifest's count,
 * the log opens with its size and heads. Whether the log is behind what the
 * witnesses hold is for the gateway's start to find out (gateway/daemon/witnessed.h).
 */
#ifndef BG_BACKUP_H
#define BG_BACKUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/err.h"
#include "gateway/audit/audit.h"
#include "gateway/backup/tar.h"
#include "gateway/config/config.h"

#define BG_BACKUP_MANIFEST "backup.manifest"
#define BG_BACKUP_MANIFEST_MAX (1 << 20)

typedef struct bg_backup_file {
    char path[BG_TAR_NAME_MAX + 1]; /* relative to the gateway directory */
    bool is_dir;
    mode_t mode;
    uint64_t size;
    uint8_t sha256[32];
    int64_t mtime; /* not in the manifest: for the archive */
    uid_t uid;
    gid_t gid;
} bg_backup_file;

typedef struct bg_backup_manifest {
    char city[7];
    char name[BG_CONFIG_NAME_MAX + 1];
    char top[BG_TAR_NAME_MAX + 1]; /* the archive's top directory */
    int64_t created_ms;
    bool has_store;
    uint64_t enterprises;
    bool has_log;
    uint64_t log_leaves, log_heads;
    bool has_head; /* the newest signed head in the log */
    uint64_t head_size;
    bg_audit_hash head_root;
    int64_t head_ms;
    bg_backup_file *files;
    size_t nfiles, cap;
} bg_backup_manifest;

/* Backs up the gateway directory gw_dir into the new archive out_path; m gets its
 * manifest (free with bg_backup_manifest_free). BG_EEXIST if out_path exists. */
int bg_backup_make(const char *gw_dir, const char *out_path, bg_backup_manifest *m, bg_err *err);

/* Restores archive into gw_dir (absent or empty); m gets the manifest. */
int bg_backup_restore(const char *archive, const char *gw_dir, bg_backup_manifest *m, bg_err *err);

void bg_backup_manifest_free(bg_backup_manifest *m);
/* Adds a zeroed entry for path (checked with bg_backup_path_ok); *out points at it. */
int bg_backup_manifest_add(bg_backup_manifest *m, const char *path, bg_backup_file **out,
                           bg_err *err);
/* The entry for path, or NULL. */
bg_backup_file *bg_backup_manifest_find(const bg_backup_manifest *m, const char *path);
/* The manifest as text (malloc'd), and back, strictly. */
int bg_backup_manifest_format(const bg_backup_manifest *m, char **out, size_t *len, bg_err *err);
int bg_backup_manifest_parse(const char *text, size_t len, bg_backup_manifest *m, bg_err *err);

/* A relative path an archive may hold: 1..255 printable ASCII bytes, no leading or
 * doubled slash, no "." or ".." component. */
bool bg_backup_path_ok(const char *path);

#endif
