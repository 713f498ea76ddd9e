/*
 * api_keys.c - the HTTP API's application keys (api_keys.h).
 */
#include "gateway/api/api_keys.h"

#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/file.h"
#include "domain/list.h"

#define KEYS_FILE_MAX (1024 * 1024)
#define KEY_PREFIX "bgk_"
#define KEY_BYTES 32

static bool
name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > BG_APIKEY_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == '_' || s[i] == '-'))
            return false;
    return true;
}

/* "a,b-c": lowercase words of letters, digits and '-', comma-separated, none empty. */
static bool
purposes_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > BG_APIKEY_PURPOSES_MAX || s[0] == ',' || s[n - 1] == ',')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == ',' && s[i + 1] == ',')
            return false;
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == ','))
            return false;
    }
    return true;
}

/* Whether word (n bytes) names a list a key can be scoped to. */
static bool
list_known(const char *word, size_t n)
{
    return bg_list_index(word, n) >= 0 ||
           (n == sizeof BG_LIST_GRADES - 1 && memcmp(word, BG_LIST_GRADES, n) == 0);
}

/* "*", or list names (and "grades") comma-separated, none empty, none twice. */
static bool
lists_ok(const char *s)
{
    size_t n = strlen(s);
    if (strcmp(s, BG_APIKEY_ALL_LISTS) == 0)
        return true;
    if (n == 0 || n > BG_APIKEY_LISTS_MAX)
        return false;
    for (const char *p = s;;) {
        size_t w = strcspn(p, ",");
        if (w == 0 || !list_known(p, w))
            return false;
        for (const char *q = s; q < p; q += strcspn(q, ",") + 1)
            if (strcspn(q, ",") == w && memcmp(q, p, w) == 0)
                return false;
        if (p[w] == '\0')
            return true;
        p += w + 1;
    }
}

/* One line: NAME HASHHEX PURPOSES QUOTA CREATED REVOKED [LISTS]. */
static int
parse_line(char *line, bg_apikey *k)
{
    char hex[2 * BG_APIKEY_HASH_LEN + 2];
    long long created = 0, revoked = 0;
    unsigned long long quota = 0;
    memset(k, 0, sizeof *k);
    int got = sscanf(line, "%64s %65s %256s %llu %lld %lld %96s", k->name, hex, k->purposes, &quota,
                     &created, &revoked, k->lists);
    if (got == 6) /* written before keys were scoped to lists: it could ask every list */
        snprintf(k->lists, sizeof k->lists, "%s", BG_APIKEY_ALL_LISTS);
    else if (got != 7)
        return BG_EINVAL;
    size_t bin = 0;
    if (!name_ok(k->name) || !purposes_ok(k->purposes) || !lists_ok(k->lists) ||
        strlen(hex) != 2 * BG_APIKEY_HASH_LEN ||
        sodium_hex2bin(k->hash, sizeof k->hash, hex, strlen(hex), NULL, &bin, NULL) != 0 ||
        bin != BG_APIKEY_HASH_LEN)
        return BG_EINVAL;
    k->quota_per_day = quota;
    k->created = created;
    k->revoked = revoked;
    return BG_OK;
}

static int
add_key(bg_apikeys *ks, const bg_apikey *k, bg_err *err)
{
    if (ks->n >= BG_APIKEY_MAX)
        return bg_err_set(err, BG_ELIMIT, "more than %d API keys", BG_APIKEY_MAX);
    bg_apikey *v = realloc(ks->v, (ks->n + 1) * sizeof *v);
    if (v == NULL)
        return bg_err_set(err, BG_ENOMEM, "out of memory");
    ks->v = v;
    ks->v[ks->n++] = *k;
    return BG_OK;
}

int
bg_apikeys_load(const char *path, bg_apikeys *ks, bg_err *err)
{
    ks->v = NULL;
    ks->n = 0;
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = bg_file_read(path, KEYS_FILE_MAX, &buf, &len, NULL, err);
    if (rc == BG_ENOTFOUND) {
        bg_err_clear(err);
        return BG_OK;
    }
    if (rc != BG_OK)
        return rc;
    char *copy = (char *)buf, *save = NULL; /* NUL-terminated by bg_file_read */
    size_t lineno = 0;
    (void)len;
    for (char *line = strtok_r(copy, "\n", &save); line != NULL && rc == BG_OK;
         line = strtok_r(NULL, "\n", &save)) {
        lineno++;
        if (line[0] == '#' || line[0] == '\0')
            continue;
        bg_apikey k;
        if (parse_line(line, &k) != BG_OK)
            rc = bg_err_set(err, BG_EINVAL, "%s: line %zu is not an API key entry", path, lineno);
        else
            rc = add_key(ks, &k, err);
    }
    free(buf);
    if (rc != BG_OK)
        bg_apikeys_free(ks);
    return rc;
}

void
bg_apikeys_free(bg_apikeys *ks)
{
    if (ks->v != NULL)
        sodium_memzero(ks->v, ks->n * sizeof *ks->v);
    free(ks->v);
    ks->v = NULL;
    ks->n = 0;
}

static int
save(const char *path, const bg_apikeys *ks, bg_err *err)
{
    size_t cap = 128 +
                 ks->n * (BG_APIKEY_NAME_MAX + BG_APIKEY_PURPOSES_MAX + BG_APIKEY_LISTS_MAX + 128),
           off = 0;
    char *buf = malloc(cap);
    if (buf == NULL)
        return bg_err_set(err, BG_ENOMEM, "out of memory");
    off += (size_t)snprintf(buf, cap,
                            "# baygate API keys: name, BLAKE2b-256 of the key, purposes, "
                            "quota/day, created, revoked, lists\n");
    for (size_t i = 0; i < ks->n; i++) {
        const bg_apikey *k = &ks->v[i];
        char hex[2 * BG_APIKEY_HASH_LEN + 1];
        sodium_bin2hex(hex, sizeof hex, k->hash, sizeof k->hash);
        off += (size_t)snprintf(buf + off, cap - off,
                                "%s %s %s %" PRIu64 " %" PRId64 " %" PRId64 " %s\n", k->name, hex,
                                k->purposes, k->quota_per_day, k->created, k->revoked, k->lists);
    }
    int rc = bg_file_write_replace(path, buf, off, 0600, err);
    free(buf);
    return rc;
}

static void
key_hash(const uint8_t *key, size_t len, uint8_t out[BG_APIKEY_HASH_LEN])
{
    crypto_generichash(out, BG_APIKEY_HASH_LEN, key, len, NULL, 0);
}

int
bg_apikey_create(const char *path, const char *name, const char *purposes, const char *lists,
                 uint64_t quota, char key[BG_APIKEY_TEXT_LEN + 1], bg_err *err)
{
    if (!name_ok(name))
        return bg_err_set(err, BG_EINVAL, "name '%.80s': 1 to %d letters, digits, '.', '_' or '-'",
                          name, BG_APIKEY_NAME_MAX);
    if (!purposes_ok(purposes))
        return bg_err_set(err, BG_EINVAL,
                          "purposes '%.80s': comma-separated roster purposes (a-z, 0-9, '-')",
                          purposes);
    if (lists == NULL)
        lists = BG_APIKEY_ALL_LISTS;
    if (!lists_ok(lists))
        return bg_err_set(err, BG_EINVAL,
                          "lists '%.100s': comma-separated, each once, of serious-dishonesty, "
                          "abnormal-operation and grades (or * for all)",
                          lists);
    bg_apikeys ks;
    int rc = bg_apikeys_load(path, &ks, err);
    if (rc != BG_OK)
        return rc;
    for (size_t i = 0; i < ks.n; i++)
        if (strcmp(ks.v[i].name, name) == 0) {
            bool revoked = ks.v[i].revoked != 0;
            bg_apikeys_free(&ks);
            return bg_err_set(err, BG_EEXIST, "application '%s' already has a key%s", name,
                              revoked ? " (revoked; choose another name)" : "");
        }
    uint8_t raw[KEY_BYTES];
    randombytes_buf(raw, sizeof raw);
    bg_apikey k = {.quota_per_day = quota, .created = (int64_t)time(NULL)};
    snprintf(k.name, sizeof k.name, "%s", name);
    snprintf(k.purposes, sizeof k.purposes, "%s", purposes);
    snprintf(k.lists, sizeof k.lists, "%s", lists);
    key_hash(raw, sizeof raw, k.hash);
    if ((rc = add_key(&ks, &k, err)) == BG_OK && (rc = save(path, &ks, err)) == BG_OK) {
        memcpy(key, KEY_PREFIX, sizeof KEY_PREFIX - 1);
        sodium_bin2hex(key + sizeof KEY_PREFIX - 1, 2 * KEY_BYTES + 1, raw, sizeof raw);
    }
    sodium_memzero(raw, sizeof raw);
    bg_apikeys_free(&ks);
    return rc;
}

int
bg_apikey_revoke(const char *path, const char *name, bg_err *err)
{
    bg_apikeys ks;
    int rc = bg_apikeys_load(path, &ks, err);
    if (rc != BG_OK)
        return rc;
    rc = bg_err_set(err, BG_ENOTFOUND, "no application '%.80s' in %s", name, path);
    for (size_t i = 0; i < ks.n; i++)
        if (strcmp(ks.v[i].name, name) == 0) {
            bg_err_clear(err);
            if (ks.v[i].revoked == 0)
                ks.v[i].revoked = (int64_t)time(NULL);
            rc = save(path, &ks, err);
        }
    bg_apikeys_free(&ks);
    return rc;
}

const bg_apikey *
bg_apikeys_match(const bg_apikeys *ks, const char *text, size_t len)
{
    uint8_t raw[KEY_BYTES], h[BG_APIKEY_HASH_LEN];
    size_t bin = 0;
    const size_t pl = sizeof KEY_PREFIX - 1;
    if (len != BG_APIKEY_TEXT_LEN || memcmp(text, KEY_PREFIX, pl) != 0 ||
        sodium_hex2bin(raw, sizeof raw, text + pl, len - pl, NULL, &bin, NULL) != 0 ||
        bin != KEY_BYTES)
        return NULL;
    key_hash(raw, sizeof raw, h);
    sodium_memzero(raw, sizeof raw);
    const bg_apikey *found = NULL;
    for (size_t i = 0; i < ks->n; i++)
        if (sodium_memcmp(ks->v[i].hash, h, sizeof h) == 0)
            found = &ks->v[i];
    sodium_memzero(h, sizeof h);
    return found;
}

/* Whether the comma-separated words of csv include w exactly. */
static bool
csv_has(const char *csv, const char *w)
{
    size_t wl = strlen(w);
    for (const char *p = csv; *p != '\0';) {
        size_t n = strcspn(p, ",");
        if (n == wl && memcmp(p, w, n) == 0)
            return true;
        p += n + (p[n] == ',');
    }
    return false;
}

bool
bg_apikey_allows(const bg_apikey *k, const char *purpose)
{
    return csv_has(k->purposes, purpose);
}

bool
bg_apikey_allows_list(const bg_apikey *k, const char *list)
{
    return strcmp(k->lists, BG_APIKEY_ALL_LISTS) == 0 || csv_has(k->lists, list);
}
