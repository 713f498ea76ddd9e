/*
 * backup_manifest.c - the manifest of a backup archive (backup.h), as text:
 *
 *     baygate-backup 1
 *     city 440100
 *     name Guangzhou
 *     top gz
 *     created_ms 1767225600000
 *     store enterprises 2500
 *     log leaves 120 heads 14
 *     head 118 <root hex> <timestamp ms>
 *     dir 0700 data
 *     file 0600 241 <sha256 hex> city.key
 *     end
 *
 * A name or path is the rest of its line. The parser is strict: every line known,
 * each key once, paths checked, no entry twice, "end" last.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/backup/backup.h"

bool
bg_backup_path_ok(const char *path)
{
    size_t len = strlen(path);
    if (len == 0 || len > BG_TAR_NAME_MAX || path[0] == '/' || path[len - 1] == '/')
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)path[i] < 0x20 || (unsigned char)path[i] > 0x7e)
            return false;
    for (const char *c = path; *c != '\0';) {
        size_t k = strcspn(c, "/");
        if (k == 0 || (k == 1 && c[0] == '.') || (k == 2 && c[0] == '.' && c[1] == '.'))
            return false;
        c += k + (c[k] == '/');
    }
    return true;
}

void
bg_backup_manifest_free(bg_backup_manifest *m)
{
    free(m->files);
    m->files = NULL;
    m->nfiles = m->cap = 0;
}

bg_backup_file *
bg_backup_manifest_find(const bg_backup_manifest *m, const char *path)
{
    for (size_t i = 0; i < m->nfiles; i++)
        if (strcmp(m->files[i].path, path) == 0)
            return &m->files[i];
    return NULL;
}

int
bg_backup_manifest_add(bg_backup_manifest *m, const char *path, bg_backup_file **out, bg_err *err)
{
    if (!bg_backup_path_ok(path))
        return bg_err_set(err, BG_EINVAL, "'%.100s' cannot go into a backup (name)", path);
    if (m->nfiles == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 64;
        void *p = realloc(m->files, cap * sizeof *m->files);
        if (p == NULL)
            return bg_err_set(err, BG_ENOMEM, "out of memory");
        m->files = p;
        m->cap = cap;
    }
    bg_backup_file *f = &m->files[m->nfiles++];
    memset(f, 0, sizeof *f);
    snprintf(f->path, sizeof f->path, "%s", path);
    *out = f;
    return BG_OK;
}

static void
hex(FILE *f, const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%02x", b[i]);
}

int
bg_backup_manifest_format(const bg_backup_manifest *m, char **out, size_t *len, bg_err *err)
{
    FILE *f = open_memstream(out, len);
    if (f == NULL)
        return bg_err_set(err, BG_ENOMEM, "out of memory");
    fprintf(f, "baygate-backup 1\ncity %s\nname %s\ntop %s\ncreated_ms %" PRId64 "\n", m->city,
            m->name, m->top, m->created_ms);
    if (m->has_store)
        fprintf(f, "store enterprises %" PRIu64 "\n", m->enterprises);
    if (m->has_log)
        fprintf(f, "log leaves %" PRIu64 " heads %" PRIu64 "\n", m->log_leaves, m->log_heads);
    if (m->has_head) {
        fprintf(f, "head %" PRIu64 " ", m->head_size);
        hex(f, m->head_root, BG_AUDIT_HASH_LEN);
        fprintf(f, " %" PRId64 "\n", m->head_ms);
    }
    for (size_t i = 0; i < m->nfiles; i++) {
        const bg_backup_file *e = &m->files[i];
        if (e->is_dir) {
            fprintf(f, "dir %04o %s\n", (unsigned)(e->mode & 07777), e->path);
            continue;
        }
        fprintf(f, "file %04o %" PRIu64 " ", (unsigned)(e->mode & 07777), e->size);
        hex(f, e->sha256, sizeof e->sha256);
        fprintf(f, " %s\n", e->path);
    }
    fprintf(f, "end\n");
    if (fclose(f) != 0) {
        free(*out);
        *out = NULL;
        return bg_err_set(err, BG_ENOMEM, "out of memory");
    }
    return BG_OK;
}

/* n bytes of lower-case hex at s into out; false if not exactly that. */
static bool
unhex(const char *s, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        char two[3] = {s[2 * i], s[2 * i + 1], '\0'};
        if (!((two[0] >= '0' && two[0] <= '9') || (two[0] >= 'a' && two[0] <= 'f')) ||
            !((two[1] >= '0' && two[1] <= '9') || (two[1] >= 'a' && two[1] <= 'f')) ||
            sscanf(two, "%2x", &v) != 1)
            return false;
        out[i] = (uint8_t)v;
    }
    return s[2 * n] == '\0' || s[2 * n] == ' ';
}

/* A "dir MODE PATH" or "file MODE SIZE SHA PATH" line. */
static int
parse_entry(bg_backup_manifest *m, const char *line, bool is_dir, bg_err *err)
{
    unsigned mode;
    uint64_t size = 0;
    char sha[65];
    int used = 0;
    int ok = is_dir ? sscanf(line, "dir %4o %n", &mode, &used) == 1
                    : sscanf(line, "file %4o %" SCNu64 " %64s %n", &mode, &size, sha, &used) == 3;
    if (!ok || used == 0 || mode > 07777)
        return bg_err_set(err, BG_EPROTO, "malformed entry");
    const char *path = line + used;
    if (bg_backup_manifest_find(m, path) != NULL)
        return bg_err_set(err, BG_EPROTO, "'%.100s' listed twice", path);
    bg_backup_file *e;
    int rc = bg_backup_manifest_add(m, path, &e, err);
    if (rc != BG_OK)
        return rc;
    e->is_dir = is_dir;
    e->mode = (mode_t)mode;
    e->size = size;
    if (!is_dir && (strlen(sha) != 64 || !unhex(sha, e->sha256, 32)))
        return bg_err_set(err, BG_EPROTO, "malformed digest");
    return BG_OK;
}

/* One header line (after the first, before the entries). seen: keys already given. */
static int
parse_key(bg_backup_manifest *m, const char *line, unsigned *seen, bg_err *err)
{
    static const char *keys[] = {"city ",  "name ", "top ", "created_ms ",
                                 "store ", "log ",  "head "};
    unsigned k = 0;
    while (k < 7 && strncmp(line, keys[k], strlen(keys[k])) != 0)
        k++;
    if (k == 7)
        return bg_err_set(err, BG_EPROTO, "unknown line");
    if (*seen & (1u << k))
        return bg_err_set(err, BG_EPROTO, "'%s' given twice", keys[k]);
    *seen |= 1u << k;
    const char *v = line + strlen(keys[k]);
    int used = 0;
    char root[65];
    switch (k) {
    case 0:
        return strlen(v) == 6 && snprintf(m->city, sizeof m->city, "%s", v) == 6
                   ? BG_OK
                   : bg_err_set(err, BG_EPROTO, "bad city");
    case 1:
        return snprintf(m->name, sizeof m->name, "%s", v) < (int)sizeof m->name
                   ? BG_OK
                   : bg_err_set(err, BG_EPROTO, "name too long");
    case 2:
        return bg_backup_path_ok(v) && strchr(v, '/') == NULL &&
                       snprintf(m->top, sizeof m->top, "%s", v) > 0
                   ? BG_OK
                   : bg_err_set(err, BG_EPROTO, "bad top directory");
    case 3:
        return sscanf(v, "%" SCNd64 "%n", &m->created_ms, &used) == 1 && v[used] == '\0'
                   ? BG_OK
                   : bg_err_set(err, BG_EPROTO, "bad time");
    case 4:
        m->has_store = true;
        return sscanf(v, "enterprises %" SCNu64 "%n", &m->enterprises, &used) == 1 &&
                       v[used] == '\0'
                   ? BG_OK
                   : bg_err_set(err, BG_EPROTO, "bad store line");
    case 5:
        m->has_log = true;
        return sscanf(v, "leaves %" SCNu64 " heads %" SCNu64 "%n", &m->log_leaves, &m->log_heads,
                      &used) == 2 &&
                       v[used] == '\0'
                   ? BG_OK
                   : bg_err_set(err, BG_EPROTO, "bad log line");
    default:
        m->has_head = true;
        return sscanf(v, "%" SCNu64 " %64s %" SCNd64 "%n", &m->head_size, root, &m->head_ms,
                      &used) == 3 &&
                       v[used] == '\0' && strlen(root) == 64 &&
                       unhex(root, m->head_root, BG_AUDIT_HASH_LEN)
                   ? BG_OK
                   : bg_err_set(err, BG_EPROTO, "bad head line");
    }
}

int
bg_backup_manifest_parse(const char *text, size_t len, bg_backup_manifest *m, bg_err *err)
{
    memset(m, 0, sizeof *m);
    if (len > BG_BACKUP_MANIFEST_MAX || memchr(text, '\0', len) != NULL)
        return bg_err_set(err, BG_EPROTO, "backup manifest: not a text of at most 1 MiB");
    char *buf = malloc(len + 1);
    if (buf == NULL)
        return bg_err_set(err, BG_ENOMEM, "out of memory");
    memcpy(buf, text, len);
    buf[len] = '\0';
    int rc = BG_OK;
    unsigned lineno = 0, seen = 0;
    bool ended = false;
    char *save = NULL;
    for (char *p = buf; rc == BG_OK && p != NULL && *p != '\0'; p = save) {
        char *nl = strchr(p, '\n');
        if (nl == NULL) {
            rc = bg_err_set(err, BG_EPROTO, "backup manifest: the last line has no newline");
            break;
        }
        *nl = '\0';
        save = nl + 1;
        lineno++;
        bg_err sub = {0};
        if (ended)
            rc = bg_err_set(&sub, BG_EPROTO, "text after 'end'");
        else if (lineno == 1)
            rc = strcmp(p, "baygate-backup 1") == 0
                     ? BG_OK
                     : bg_err_set(&sub, BG_EPROTO, "not a baygate backup manifest (version 1)");
        else if (strcmp(p, "end") == 0)
            ended = true;
        else if (strncmp(p, "dir ", 4) == 0 || strncmp(p, "file ", 5) == 0)
            rc = parse_entry(m, p, p[0] == 'd', &sub);
        else if (m->nfiles == 0)
            rc = parse_key(m, p, &seen, &sub);
        else
            rc = bg_err_set(&sub, BG_EPROTO, "unknown line");
        if (rc != BG_OK)
            rc = bg_err_set(err, rc == BG_ENOMEM ? rc : BG_EPROTO, "backup manifest line %u: %s",
                            lineno, sub.msg);
    }
    free(buf);
    if (rc == BG_OK && (!ended || (seen & 0xf) != 0xf))
        rc = bg_err_set(err, BG_EPROTO,
                        "backup manifest: incomplete (city, name, top, created_ms and 'end' are "
                        "required)");
    if (rc != BG_OK)
        bg_backup_manifest_free(m);
    return rc;
}
