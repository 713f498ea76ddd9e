/*
 * backup_make.c - bg_backup_make (backup.h): the store, then the directory tree with
 * the evidence log copied by bg_audit_copy, into a staging directory beside the
 * archive; then the manifest and the archive from the staging directory.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/file.h"
#include "gateway/backup/backup.h"
#include "gateway/backup/backup_int.h"
#include "gateway/store/store.h"

struct make {
    char gw[PATH_MAX];      /* the gateway directory, resolved */
    char staging[PATH_MAX]; /* the consistent copy being made */
    char data_rel[PATH_MAX], audit_rel[PATH_MAX], db_rel[PATH_MAX];
    bg_config cfg;
    bg_backup_manifest *m;
};

/* path (absolute, resolved) relative to mk->gw into rel; false if outside it. */
static bool
inside(const struct make *mk, const char *path, char *rel, size_t cap)
{
    char real[PATH_MAX];
    if (realpath(path, real) == NULL)
        return false;
    size_t n = strlen(mk->gw);
    if (strcmp(real, mk->gw) == 0)
        return snprintf(rel, cap, "%s", "") >= 0;
    if (strncmp(real, mk->gw, n) != 0 || real[n] != '/')
        return false;
    return snprintf(rel, cap, "%s", real + n + 1) < (int)cap;
}

/* The configuration, and every file it names inside the gateway directory. */
static int
load(struct make *mk, const char *gw_dir, bg_err *err)
{
    char ini[PATH_MAX + 16], rel[PATH_MAX];
    if (realpath(gw_dir, mk->gw) == NULL)
        return bg_err_set(err, BG_ENOTFOUND, "%s: %s", gw_dir, strerror(errno));
    int rc = bg_bk_join(ini, sizeof ini, mk->gw, BG_CONFIG_FILE, err);
    if (rc == BG_OK)
        rc = bg_config_load(ini, &mk->cfg, err);
    if (rc != BG_OK)
        return rc;
    const char *named[] = {mk->cfg.key_path, mk->cfg.cert_path, mk->cfg.ca_path, mk->cfg.crl_path,
                           mk->cfg.roster_path};
    for (size_t i = 0; i < sizeof named / sizeof named[0]; i++)
        if (access(named[i], F_OK) == 0 && !inside(mk, named[i], rel, sizeof rel))
            return bg_err_set(err, BG_EINVAL,
                              "%s is outside the gateway directory %s: a backup would not hold "
                              "it (keep a gateway's files in its directory)",
                              named[i], mk->gw);
    struct stat st;
    size_t dl = strlen(mk->cfg.dir);
    if (stat(mk->cfg.data_dir, &st) != 0 && errno == ENOENT &&
        strncmp(mk->cfg.data_dir, mk->cfg.dir, dl) == 0 && mk->cfg.data_dir[dl] == '/') {
        /* Never run: nothing in it to back up, and nothing written into GW. */
        snprintf(mk->data_rel, sizeof mk->data_rel, "%s", mk->cfg.data_dir + dl + 1);
    } else if (!inside(mk, mk->cfg.data_dir, mk->data_rel, sizeof mk->data_rel) ||
               mk->data_rel[0] == 0)
        return bg_err_set(err, BG_EINVAL,
                          "[store] data_dir %s is not inside the gateway directory %s",
                          mk->cfg.data_dir, mk->gw);
    if (snprintf(mk->audit_rel, sizeof mk->audit_rel, "%s/audit", mk->data_rel) >=
            (int)sizeof mk->audit_rel ||
        snprintf(mk->db_rel, sizeof mk->db_rel, "%s/credit.db", mk->data_rel) >=
            (int)sizeof mk->db_rel)
        return bg_err_set(err, BG_ELIMIT, "data directory path too long");
    return BG_OK;
}

/* Not part of a backup: temp files of atomic writes, the store's journals (the store
 * is copied whole), a restore's notes, the manifest's own name at the top, and the
 * peers' snapshots kept as a cache (hundreds of MiB, fetched again when missing). */
static bool
left_out(const struct make *mk, const char *rel, const char *name)
{
    if (bg_file_is_temp(name))
        return true;
    size_t n = strlen(mk->db_rel);
    if (strncmp(rel, mk->db_rel, n) == 0 && rel[n] == '-')
        return true;
    n = strlen(mk->data_rel);
    if (strncmp(rel, mk->data_rel, n) == 0 && rel[n] == '/' &&
        strcmp(rel + n + 1, BG_CONFIG_SNAPSHOTS_DIR) == 0)
        return true;
    return strcmp(rel, BG_BACKUP_MANIFEST) == 0 || strcmp(name, BG_AUDIT_BEHIND_FILE) == 0 ||
           strcmp(name, BG_AUDIT_ACCEPT_FILE) == 0;
}

/* Records the staged file or directory rel (with the source's st) in the manifest. */
static int
note(struct make *mk, const char *rel, const struct stat *st, bg_err *err)
{
    bg_backup_file *e;
    char staged[PATH_MAX];
    int rc = bg_backup_manifest_add(mk->m, rel, &e, err);
    if (rc == BG_OK)
        rc = bg_bk_join(staged, sizeof staged, mk->staging, rel, err);
    if (rc != BG_OK)
        return rc;
    e->is_dir = S_ISDIR(st->st_mode);
    e->mode = st->st_mode & 07777;
    e->mtime = st->st_mtim.tv_sec;
    e->uid = st->st_uid;
    e->gid = st->st_gid;
    return e->is_dir ? BG_OK : bg_bk_hash_file(staged, &e->size, e->sha256, err);
}

/* The evidence log: a consistent copy, its files noted. */
static int
stage_audit(struct make *mk, const char *src, const struct stat *st, bg_err *err)
{
    char dst[PATH_MAX], rel[PATH_MAX + 16], path[PATH_MAX + 16];
    bg_audit_copy_report rep;
    int rc = bg_bk_join(dst, sizeof dst, mk->staging, mk->audit_rel, err);
    if (rc == BG_OK)
        rc = bg_audit_copy(src, dst, mk->cfg.city, &rep, err);
    if (rc == BG_OK)
        rc = note(mk, mk->audit_rel, st, err);
    struct dirent **names = NULL;
    int n = rc == BG_OK ? scandir(dst, &names, NULL, alphasort) : 0;
    if (n < 0)
        rc = bg_err_set(err, BG_EIO, "cannot read %s: %s", dst, strerror(errno));
    for (int i = 0; i < n; i++) {
        struct stat fst;
        if (rc == BG_OK && names[i]->d_name[0] != '.' &&
            snprintf(rel, sizeof rel, "%s/%s", mk->audit_rel, names[i]->d_name) < (int)sizeof rel &&
            (rc = bg_bk_join(path, sizeof path, mk->staging, rel, err)) == BG_OK &&
            stat(path, &fst) == 0)
            rc = note(mk, rel, &fst, err);
        free(names[i]);
    }
    free(names);
    if (rc != BG_OK)
        return rc;
    mk->m->has_log = true;
    mk->m->log_leaves = rep.leaves;
    mk->m->log_heads = rep.heads;
    mk->m->has_head = rep.has_head;
    if (rep.has_head) {
        mk->m->head_size = rep.latest.size;
        memcpy(mk->m->head_root, rep.latest.root, BG_AUDIT_HASH_LEN);
        mk->m->head_ms = rep.latest.timestamp_ms;
    }
    return BG_OK;
}

static int walk(struct make *mk, const char *rel, bg_err *err);

/* One entry of the tree: a directory (walked), a regular file (copied), else left out. */
static int
stage_entry(struct make *mk, const char *rel, const char *name, bg_err *err)
{
    char src[PATH_MAX], dst[PATH_MAX];
    struct stat st;
    int rc = bg_bk_join(src, sizeof src, mk->gw, rel, err);
    if (rc == BG_OK)
        rc = bg_bk_join(dst, sizeof dst, mk->staging, rel, err);
    if (rc != BG_OK || left_out(mk, rel, name))
        return rc;
    if (stat(src, &st) != 0)
        return errno == ENOENT ? BG_OK : bg_err_set(err, BG_EIO, "%s: %s", src, strerror(errno));
    if (S_ISDIR(st.st_mode)) {
        if (strcmp(rel, mk->audit_rel) == 0)
            return stage_audit(mk, src, &st, err);
        if (mkdir(dst, st.st_mode & 0777) != 0 && errno != EEXIST)
            return bg_err_set(err, BG_EIO, "cannot make %s: %s", dst, strerror(errno));
        if ((rc = note(mk, rel, &st, err)) == BG_OK)
            rc = walk(mk, rel, err);
        return rc;
    }
    if (!S_ISREG(st.st_mode))
        return BG_OK; /* the local API socket, a fifo: not data */
    if (strcmp(rel, mk->db_rel) == 0 && !mk->m->has_store)
        return BG_OK; /* made after the store was copied: not in this backup */
    if (strcmp(rel, mk->db_rel) != 0 && (rc = bg_bk_copy_file(src, dst, st.st_mode, err)) != BG_OK)
        return rc == BG_ENOTFOUND ? BG_OK : rc; /* removed meanwhile: not there */
    return note(mk, rel, &st, err);
}

static int
walk(struct make *mk, const char *rel, bg_err *err)
{
    char dir[PATH_MAX];
    int rc = bg_bk_join(dir, sizeof dir, mk->gw, rel, err);
    if (rc != BG_OK)
        return rc;
    struct dirent **names = NULL;
    int n = scandir(dir, &names, NULL, alphasort);
    if (n < 0)
        return bg_err_set(err, BG_EIO, "cannot read %s: %s", dir, strerror(errno));
    for (int i = 0; i < n; i++) {
        const char *name = names[i]->d_name;
        char sub[PATH_MAX];
        if (rc == BG_OK && strcmp(name, ".") != 0 && strcmp(name, "..") != 0 &&
            (rc = bg_bk_join(sub, sizeof sub, rel, name, err)) == BG_OK)
            rc = stage_entry(mk, rel[0] ? sub : name, name, err);
        free(names[i]);
    }
    free(names);
    return rc;
}

/* The store first (see backup.h), into its place in the staging directory. */
static int
stage_store(struct make *mk, bg_err *err)
{
    char src[PATH_MAX], ddir[PATH_MAX], dst[PATH_MAX];
    struct stat st;
    int rc = bg_bk_join(src, sizeof src, mk->gw, mk->db_rel, err);
    if (rc == BG_OK)
        rc = bg_bk_join(ddir, sizeof ddir, mk->staging, mk->data_rel, err);
    if (rc == BG_OK)
        rc = bg_bk_join(dst, sizeof dst, mk->staging, mk->db_rel, err);
    if (rc != BG_OK || stat(src, &st) != 0)
        return rc;
    char *slash = ddir + strlen(mk->staging);
    for (char *p = strchr(slash + 1, '/'); p != NULL; p = strchr(p + 1, '/')) {
        *p = '\0';
        mkdir(ddir, 0700);
        *p = '/';
    }
    if (mkdir(ddir, 0700) != 0 && errno != EEXIST)
        return bg_err_set(err, BG_EIO, "cannot make %s: %s", ddir, strerror(errno));
    rc = bg_store_copy(src, dst, &mk->m->enterprises, err);
    mk->m->has_store = rc == BG_OK;
    return rc;
}

/* The archive at tmp (fd, 0600): the top directory, the manifest, then every entry
 * from the staging directory in manifest order. */
static int
write_archive(struct make *mk, int fd, bool gzip, const char *manifest, size_t mlen, bg_err *err)
{
    bg_tar_writer *w = NULL;
    int rc = bg_tar_writer_new(&w, fd, gzip, err);
    if (rc != BG_OK)
        return rc;
    struct stat st;
    const bg_backup_manifest *m = mk->m;
    char name[PATH_MAX], src[PATH_MAX];
    int64_t now = m->created_ms / 1000;
    if (stat(mk->gw, &st) != 0)
        rc = bg_err_set(err, BG_EIO, "%s: %s", mk->gw, strerror(errno));
    if (rc == BG_OK)
        rc = bg_tar_add_dir(w, m->top, st.st_mode, st.st_mtim.tv_sec, st.st_uid, st.st_gid, err);
    if (rc == BG_OK && snprintf(name, sizeof name, "%s/%s", m->top, BG_BACKUP_MANIFEST) > 0)
        rc = bg_tar_add_data(w, name, 0600, now, st.st_uid, st.st_gid, manifest, mlen, err);
    for (size_t i = 0; rc == BG_OK && i < m->nfiles; i++) {
        const bg_backup_file *e = &m->files[i];
        if (snprintf(name, sizeof name, "%s/%s", m->top, e->path) >= (int)sizeof name)
            rc = bg_err_set(err, BG_ELIMIT, "path too long: %.100s", e->path);
        else if (e->is_dir)
            rc = bg_tar_add_dir(w, name, e->mode, e->mtime, e->uid, e->gid, err);
        else if ((rc = bg_bk_join(src, sizeof src, mk->staging, e->path, err)) == BG_OK)
            rc = bg_tar_add_file(w, name, e->mode, e->mtime, e->uid, e->gid, src, e->size, err);
    }
    if (rc != BG_OK) {
        bg_tar_abort(w);
        return rc;
    }
    return bg_tar_finish(w, err);
}

static bool
ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* The manifest, then the archive under a temp name, linked to out_path when whole. */
static int
archive(struct make *mk, const char *out_path, bg_err *err)
{
    char *text = NULL, tmp[PATH_MAX];
    size_t len = 0;
    int rc = bg_backup_manifest_format(mk->m, &text, &len, err);
    if (rc != BG_OK)
        return rc;
    if (snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", out_path) >= (int)sizeof tmp) {
        free(text);
        return bg_err_set(err, BG_ELIMIT, "path too long: %s", out_path);
    }
    int fd = mkstemp(tmp); /* mode 0600: the archive holds the city's private key */
    if (fd < 0) {
        free(text);
        return bg_err_set(err, BG_EIO, "cannot create %s: %s", tmp, strerror(errno));
    }
    bool gzip = ends_with(out_path, ".gz") || ends_with(out_path, ".tgz");
    rc = write_archive(mk, fd, gzip, text, len, err);
    free(text);
    if (rc == BG_OK && link(tmp, out_path) != 0)
        rc = bg_err_set(err, errno == EEXIST ? BG_EEXIST : BG_EIO, "cannot create %s: %s", out_path,
                        strerror(errno));
    unlink(tmp);
    if (rc == BG_OK) {
        char dir[PATH_MAX];
        snprintf(dir, sizeof dir, "%s", out_path);
        char *slash = strrchr(dir, '/');
        bg_bk_sync_dir(slash == NULL ? "." : (*slash = '\0', dir[0] ? dir : "/"));
    }
    return rc;
}

int
bg_backup_make(const char *gw_dir, const char *out_path, bg_backup_manifest *m, bg_err *err)
{
    memset(m, 0, sizeof *m);
    struct make *mk = calloc(1, sizeof *mk);
    if (mk == NULL)
        return bg_err_set(err, BG_ENOMEM, "out of memory");
    mk->m = m;
    int rc = load(mk, gw_dir, err);
    char parent[PATH_MAX], rel[PATH_MAX];
    snprintf(parent, sizeof parent, "%s", out_path);
    char *slash = strrchr(parent, '/');
    if (slash == NULL)
        snprintf(parent, sizeof parent, ".");
    else if (slash == parent)
        parent[1] = '\0';
    else
        *slash = '\0';
    if (rc == BG_OK && inside(mk, parent, rel, sizeof rel))
        rc = bg_err_set(err, BG_EINVAL, "%s is inside the gateway directory: put backups elsewhere",
                        out_path);
    if (rc == BG_OK && access(out_path, F_OK) == 0)
        rc = bg_err_set(err, BG_EEXIST, "%s exists: a backup never replaces a file", out_path);
    const char *base = strrchr(mk->gw, '/');
    if (rc == BG_OK) {
        snprintf(m->city, sizeof m->city, "%s", mk->cfg.city);
        snprintf(m->name, sizeof m->name, "%s", mk->cfg.name);
        snprintf(m->top, sizeof m->top, "%s", base != NULL && base[1] ? base + 1 : "gateway");
        m->created_ms = bg_clock_wall_ms();
        if (snprintf(mk->staging, sizeof mk->staging, "%s.work.XXXXXX", out_path) >=
                (int)sizeof mk->staging ||
            mkdtemp(mk->staging) == NULL)
            rc = bg_err_set(err, BG_EIO, "cannot make a work directory beside %s: %s", out_path,
                            strerror(errno));
    }
    bool staged = rc == BG_OK;
    if (rc == BG_OK)
        rc = stage_store(mk, err);
    if (rc == BG_OK)
        rc = walk(mk, "", err);
    if (rc == BG_OK)
        rc = archive(mk, out_path, err);
    if (staged)
        bg_bk_remove_tree(mk->staging);
    free(mk);
    if (rc != BG_OK)
        bg_backup_manifest_free(m);
    return rc;
}
