/*
 * backup_restore.c - bg_backup_restore (backup.h): an archive checked entry by entry
 * against its manifest into a staging directory inside the target, moved into place,
 * then checked as a gateway directory.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "common/file.h"
#include "gateway/backup/backup.h"
#include "gateway/backup/backup_int.h"
#include "gateway/store/store.h"

struct restore {
    char gw[PATH_MAX], staging[PATH_MAX];
    bool made_gw;
    bg_tar_reader *r;
    bg_backup_manifest *m;
    bool *seen;
};

/* gw must not exist (made, 0700) or be an empty directory. */
static int
prepare(struct restore *rs, const char *gw_dir, bg_err *err)
{
    if (mkdir(gw_dir, 0700) == 0) {
        rs->made_gw = true;
    } else if (errno == EEXIST) {
        DIR *d = opendir(gw_dir);
        if (d == NULL)
            return bg_err_set(err, BG_EINVAL, "%s exists and is not a directory", gw_dir);
        struct dirent *de;
        bool empty = true;
        while (empty && (de = readdir(d)) != NULL)
            empty = strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0;
        closedir(d);
        if (!empty)
            return bg_err_set(err, BG_EEXIST,
                              "%s is not empty: a restore never overwrites a gateway directory "
                              "(move it aside first)",
                              gw_dir);
    } else {
        return bg_err_set(err, BG_EIO, "cannot make %s: %s", gw_dir, strerror(errno));
    }
    if (realpath(gw_dir, rs->gw) == NULL)
        return bg_err_set(err, BG_EIO, "%s: %s", gw_dir, strerror(errno));
    if (snprintf(rs->staging, sizeof rs->staging, "%s/.restore.XXXXXX", rs->gw) >=
            (int)sizeof rs->staging ||
        mkdtemp(rs->staging) == NULL)
        return bg_err_set(err, BG_EIO, "cannot make a work directory in %s: %s", rs->gw,
                          strerror(errno));
    return BG_OK;
}

/* The first two entries: the top directory and its manifest. */
static int
read_manifest(struct restore *rs, bg_err *err)
{
    bg_tar_entry top, e;
    int rc = bg_tar_next(rs->r, &top, err);
    if (rc == BG_OK && (!top.is_dir || strchr(top.name, '/') != NULL))
        rc = bg_err_set(err, BG_EPROTO,
                        "not a baygate backup: the first entry is not its top "
                        "directory");
    if (rc == BG_OK)
        rc = bg_tar_next(rs->r, &e, err);
    char want[BG_TAR_NAME_MAX + 32];
    snprintf(want, sizeof want, "%s/%s", top.name, BG_BACKUP_MANIFEST);
    if (rc == BG_OK && (e.is_dir || strcmp(e.name, want) != 0 || e.size > BG_BACKUP_MANIFEST_MAX))
        rc = bg_err_set(err, BG_EPROTO, "not a baygate backup: no %s after the top directory",
                        BG_BACKUP_MANIFEST);
    if (rc == BG_ENOTFOUND)
        rc = bg_err_set(err, BG_EPROTO, "not a baygate backup: the archive is empty");
    if (rc != BG_OK)
        return rc;
    char *text = malloc(e.size + 1);
    size_t got = 0;
    if (text == NULL)
        return bg_err_set(err, BG_ENOMEM, "out of memory");
    if ((rc = bg_tar_read(rs->r, text, e.size, &got, err)) == BG_OK && got != e.size)
        rc = bg_err_set(err, BG_EPROTO, "the manifest is cut short");
    if (rc == BG_OK)
        rc = bg_backup_manifest_parse(text, got, rs->m, err);
    free(text);
    if (rc == BG_OK && strcmp(rs->m->top, top.name) != 0)
        rc = bg_err_set(err, BG_EPROTO, "the manifest's top directory is not the archive's");
    return rc;
}

/* The data of the current entry into the new file path (mode), checked against f. */
static int
extract_file(struct restore *rs, const bg_backup_file *f, const char *path, bg_err *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, f->mode & 0777);
    if (fd < 0)
        return bg_err_set(err, BG_EIO, "cannot create %s: %s", path, strerror(errno));
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    uint8_t buf[65536], sha[32];
    uint64_t total = 0;
    size_t got = 0;
    int rc;
    while ((rc = bg_tar_read(rs->r, buf, sizeof buf, &got, err)) == BG_OK && got > 0) {
        crypto_hash_sha256_update(&st, buf, got);
        total += got;
        if (bg_file_write_all(fd, buf, got, -1) != 0) {
            rc = bg_err_set(err, BG_EIO, "cannot write %s: %s", path, strerror(errno));
            break;
        }
    }
    crypto_hash_sha256_final(&st, sha);
    if (rc == BG_OK && (total != f->size || sodium_memcmp(sha, f->sha256, 32) != 0))
        rc = bg_err_set(err, BG_EPROTO,
                        "%s: its size or SHA-256 is not the manifest's: the "
                        "archive is damaged",
                        f->path);
    if (rc == BG_OK && (fchmod(fd, f->mode & 0777) != 0 || fsync(fd) != 0))
        rc = bg_err_set(err, BG_EIO, "cannot write %s: %s", path, strerror(errno));
    close(fd);
    return rc;
}

/* Every entry after the manifest: named in it, of its type, once. */
static int
extract(struct restore *rs, bg_err *err)
{
    bg_tar_entry e;
    int rc;
    size_t tl = strlen(rs->m->top);
    while ((rc = bg_tar_next(rs->r, &e, err)) == BG_OK) {
        const char *rel = e.name + tl + 1;
        bg_backup_file *f = strncmp(e.name, rs->m->top, tl) == 0 && e.name[tl] == '/'
                                ? bg_backup_manifest_find(rs->m, rel)
                                : NULL;
        if (f == NULL || f->is_dir != e.is_dir || rs->seen[f - rs->m->files])
            return bg_err_set(err, BG_EPROTO,
                              "archive entry '%.100s' is not in its manifest "
                              "(or twice)",
                              e.name);
        rs->seen[f - rs->m->files] = true;
        char path[PATH_MAX];
        if ((rc = bg_bk_join(path, sizeof path, rs->staging, rel, err)) != BG_OK)
            return rc;
        if (e.is_dir) {
            if (mkdir(path, f->mode & 0777) != 0 || chmod(path, f->mode & 0777) != 0)
                return bg_err_set(err, BG_EIO, "cannot make %s: %s", path, strerror(errno));
        } else if ((rc = extract_file(rs, f, path, err)) != BG_OK) {
            return rc;
        }
    }
    if (rc != BG_ENOTFOUND)
        return rc;
    for (size_t i = 0; i < rs->m->nfiles; i++)
        if (!rs->seen[i])
            return bg_err_set(err, BG_EPROTO, "the archive lacks '%.100s' of its manifest",
                              rs->m->files[i].path);
    return BG_OK;
}

/* Moves every entry of the staging directory into the gateway directory. */
static int
move_in(struct restore *rs, bg_err *err)
{
    struct dirent **names = NULL;
    int n = scandir(rs->staging, &names, NULL, alphasort);
    if (n < 0)
        return bg_err_set(err, BG_EIO, "cannot read %s: %s", rs->staging, strerror(errno));
    int rc = BG_OK;
    for (int i = 0; i < n; i++) {
        char from[PATH_MAX], to[PATH_MAX];
        const char *name = names[i]->d_name;
        if (rc == BG_OK && strcmp(name, ".") != 0 && strcmp(name, "..") != 0 &&
            (rc = bg_bk_join(from, sizeof from, rs->staging, name, err)) == BG_OK &&
            (rc = bg_bk_join(to, sizeof to, rs->gw, name, err)) == BG_OK && rename(from, to) != 0)
            rc = bg_err_set(err, BG_EIO, "cannot move %s into place: %s", name, strerror(errno));
        free(names[i]);
    }
    free(names);
    if (rc == BG_OK && rmdir(rs->staging) != 0)
        rc = bg_err_set(err, BG_EIO, "cannot remove %s: %s", rs->staging, strerror(errno));
    bg_bk_sync_dir(rs->gw);
    return rc;
}

/* The restored directory as a gateway: its city, its store's count, its log's size. */
static int
check_restored(struct restore *rs, bg_err *err)
{
    const bg_backup_manifest *m = rs->m;
    bg_config cfg;
    char path[PATH_MAX + 16];
    int rc = bg_bk_join(path, sizeof path, rs->gw, BG_CONFIG_FILE, err);
    if (rc == BG_OK)
        rc = bg_config_load(path, &cfg, err);
    if (rc == BG_OK && strcmp(cfg.city, m->city) != 0)
        rc = bg_err_set(err, BG_EPROTO, "the restored configuration is city %s, the manifest %s",
                        cfg.city, m->city);
    if (rc == BG_OK && m->has_store) {
        bg_store *s = NULL;
        bg_store_counts c;
        if ((rc = bg_store_open(&s, cfg.data_dir, cfg.city, NULL, err)) == BG_OK &&
            (rc = bg_store_counts_get(s, &c, err)) == BG_OK && c.enterprises != m->enterprises)
            rc = bg_err_set(err, BG_EPROTO,
                            "the restored store holds %llu enterprises, the "
                            "manifest says %llu",
                            (unsigned long long)c.enterprises, (unsigned long long)m->enterprises);
        bg_store_close(s);
    }
    if (rc == BG_OK && m->has_log) {
        bg_audit_log *log = NULL;
        char dir[PATH_MAX + 16];
        snprintf(dir, sizeof dir, "%s/audit", cfg.data_dir);
        if ((rc = bg_audit_open(&log, dir, cfg.city, BG_AUDIT_READ_ONLY, NULL, err)) == BG_OK &&
            (bg_audit_size(log) != m->log_leaves || bg_audit_head_count(log) != m->log_heads))
            rc = bg_err_set(err, BG_EPROTO,
                            "the restored evidence log is not the manifest's "
                            "(%llu leaves, %zu heads)",
                            (unsigned long long)bg_audit_size(log), bg_audit_head_count(log));
        bg_audit_close(log);
    }
    return rc;
}

int
bg_backup_restore(const char *archive, const char *gw_dir, bg_backup_manifest *m, bg_err *err)
{
    memset(m, 0, sizeof *m);
    struct restore *rs = calloc(1, sizeof *rs);
    if (rs == NULL)
        return bg_err_set(err, BG_ENOMEM, "out of memory");
    rs->m = m;
    int rc = bg_tar_reader_open(&rs->r, archive, err);
    bool staged = false;
    if (rc == BG_OK && (rc = prepare(rs, gw_dir, err)) == BG_OK)
        staged = true;
    if (rc == BG_OK)
        rc = read_manifest(rs, err);
    if (rc == BG_OK && (rs->seen = calloc(m->nfiles + 1, sizeof *rs->seen)) == NULL)
        rc = bg_err_set(err, BG_ENOMEM, "out of memory");
    if (rc == BG_OK)
        rc = extract(rs, err);
    if (rc == BG_OK)
        rc = move_in(rs, err);
    else if (staged)
        bg_bk_remove_tree(rs->staging);
    if (rc != BG_OK && rs->made_gw && staged)
        rmdir(rs->gw);
    if (rc == BG_OK)
        rc = check_restored(rs, err);
    bg_tar_reader_close(rs->r);
    free(rs->seen);
    free(rs);
    if (rc != BG_OK)
        bg_backup_manifest_free(m);
    return rc;
}
