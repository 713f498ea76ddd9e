/*
 * audit_certs.c - the certificates kept beside the log (see audit.h): the city's own,
 * with which it signs tree heads, and each witness's that cosigned one, so that an
 * evidence bundle can carry the certificate that verifies each signature even after a
 * rotation replaced city.crt.
 *
 * One file per certificate, <dir>/certs/<city>-<sha256 hex of the DER>.der, written
 * once (crash-safe, never replaced). A file whose bytes do not hash to its name is
 * skipped when read: the name is the only index, so it must be true.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>

#include "common/file.h"
#include "gateway/audit/audit_int.h"

#define CERTS_DIR "certs"
#define CERT_NAME_LEN (6 + 1 + 64 + 4) /* <city>-<hex>.der */
#define CERTS_MAX_FILES 256            /* of one city looked at */

static int
certs_dir(const char *dir, char out[1100], bg_err *err)
{
    if (snprintf(out, 1100, "%s/%s", dir, CERTS_DIR) >= 1100)
        return bg_err_set(err, BG_ELIMIT, "audit directory path too long");
    return BG_OK;
}

int
bg_audit_cert_keep(const char *dir, const char *city, const uint8_t *der, size_t len, bg_err *err)
{
    if (!bg_audit_city_ok(city))
        return bg_err_set(err, BG_EINVAL, "kept certificate: city is not a 6-digit code");
    if (der == NULL || len == 0 || len > BG_AUDIT_CERT_MAX)
        return bg_err_set(err, BG_EINVAL, "kept certificate: %zu bytes is out of bounds", len);
    char d[1100], path[1200], hex[2 * BG_AUDIT_HASH_LEN + 1];
    int rc = certs_dir(dir, d, err);
    if (rc != BG_OK)
        return rc;
    if (mkdir(d, 0700) != 0 && errno != EEXIST)
        return bg_err_set(err, BG_EIO, "cannot make %s: %s", d, strerror(errno));
    bg_audit_hash fp;
    crypto_hash_sha256(fp, der, len);
    bg_audit_hash_hex(fp, hex);
    snprintf(path, sizeof path, "%s/%s-%s.der", d, city, hex);
    struct stat st;
    if (stat(path, &st) == 0)
        return BG_OK; /* kept already: same name, same bytes */
    rc = bg_file_write_new(path, der, len, 0644, err);
    return rc == BG_EEXIST ? BG_OK : rc;
}

static int
cmp_name(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* The names of city's kept certificates, sorted: *n of them in names. */
static int
cert_names(const char *d, const char *city, char (*names)[CERT_NAME_LEN + 1], size_t *n,
           bg_err *err)
{
    *n = 0;
    DIR *dp = opendir(d);
    if (dp == NULL)
        return errno == ENOENT ? BG_OK
                               : bg_err_set(err, BG_EIO, "cannot read %s: %s", d, strerror(errno));
    struct dirent *e;
    while ((e = readdir(dp)) != NULL && *n < CERTS_MAX_FILES) {
        const char *s = e->d_name;
        if (strlen(s) != CERT_NAME_LEN || strncmp(s, city, 6) != 0 || s[6] != '-' ||
            strcmp(s + CERT_NAME_LEN - 4, ".der") != 0)
            continue;
        memcpy(names[(*n)++], s, CERT_NAME_LEN + 1);
    }
    closedir(dp);
    if (*n > 1)
        qsort(names, *n, sizeof *names, cmp_name);
    return BG_OK;
}

int
bg_audit_cert_each(const char *dir, const char *city, bg_audit_cert_fn fn, void *ctx, bool *found,
                   bg_err *err)
{
    *found = false;
    if (!bg_audit_city_ok(city))
        return bg_err_set(err, BG_EINVAL, "kept certificate: city is not a 6-digit code");
    char d[1100], path[1200];
    int rc = certs_dir(dir, d, err);
    if (rc != BG_OK)
        return rc;
    char(*names)[CERT_NAME_LEN + 1] = malloc(CERTS_MAX_FILES * sizeof *names);
    if (names == NULL)
        return bg_err_set(err, BG_ENOMEM, "out of memory");
    size_t n = 0;
    rc = cert_names(d, city, names, &n, err);
    for (size_t i = 0; rc == BG_OK && i < n && !*found; i++) {
        uint8_t *der = NULL;
        size_t len = 0;
        snprintf(path, sizeof path, "%s/%s", d, names[i]);
        if (bg_file_read(path, BG_AUDIT_CERT_MAX, &der, &len, NULL, NULL) != BG_OK)
            continue;
        bg_audit_hash fp;
        char hex[2 * BG_AUDIT_HASH_LEN + 1];
        crypto_hash_sha256(fp, der, len);
        bg_audit_hash_hex(fp, hex);
        if (strncmp(names[i] + 7, hex, 64) == 0)
            *found = fn(ctx, der, len);
        free(der);
    }
    free(names);
    return rc;
}
