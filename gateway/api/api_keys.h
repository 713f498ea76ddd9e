/*
 * api_keys.h - the HTTP API's application keys: created, listed and revoked by the
 * operator (baygate apikey), checked by the gateway on every request.
 *
 * A key is 32 random bytes, shown once as "bgk_" and 64 hex digits; only its BLAKE2b-256
 * hash is kept, in DATA/apikeys (mode 0600, replaced atomically), one line per
 * application: name, hash, purposes (comma-separated), daily quota (0: none), created
 * and revoked (Unix seconds, 0: not revoked), and the lists it may ask (comma-separated
 * list names and "grades", or "*" for all; a line written before lists were scoped has
 * no such field and means "*"). A revoked key stays listed so its name is not reused by
 * mistake. Hashes are compared in constant time, against every entry.
 */
#ifndef BG_API_KEYS_H
#define BG_API_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define BG_APIKEYS_FILE "apikeys"
#define BG_APIKEY_NAME_MAX 64
#define BG_APIKEY_PURPOSES_MAX 256
#define BG_APIKEY_LISTS_MAX 96 /* every list name and "grades", comma-separated */
#define BG_APIKEY_ALL_LISTS "*"
#define BG_APIKEY_MAX 1024    /* applications in one file */
#define BG_APIKEY_TEXT_LEN 68 /* "bgk_" + 64 hex digits */
#define BG_APIKEY_HASH_LEN 32

typedef struct bg_apikey {
    char name[BG_APIKEY_NAME_MAX + 1];
    uint8_t hash[BG_APIKEY_HASH_LEN];
    char purposes[BG_APIKEY_PURPOSES_MAX + 1];
    char lists[BG_APIKEY_LISTS_MAX + 1]; /* BG_APIKEY_ALL_LISTS or names */
    uint64_t quota_per_day;
    int64_t created, revoked;
} bg_apikey;

typedef struct bg_apikeys {
    bg_apikey *v;
    size_t n;
} bg_apikeys;

/* Reads path; a missing file is no keys. BG_EINVAL naming the line for anything wrong. */
int bg_apikeys_load(const char *path, bg_apikeys *ks, bg_err *err);
void bg_apikeys_free(bg_apikeys *ks);

/* A new key for application name (letters, digits, '.', '_', '-'; unused), allowed the
 * comma-separated purposes and lists (NULL: every list), at most quota lookups a day
 * (0: no limit). The key's text goes to key (BG_APIKEY_TEXT_LEN + 1 bytes); the caller
 * shows it once and zeroes it. */
int bg_apikey_create(const char *path, const char *name, const char *purposes, const char *lists,
                     uint64_t quota, char key[BG_APIKEY_TEXT_LEN + 1], bg_err *err);

/* Marks name's key revoked (BG_ENOTFOUND: no such application; revoking twice is OK). */
int bg_apikey_revoke(const char *path, const char *name, bg_err *err);

/* The entry whose hash matches the key text (revoked ones too: the caller says so), or
 * NULL. Every entry is compared, each in constant time. */
const bg_apikey *bg_apikeys_match(const bg_apikeys *ks, const char *text, size_t len);

/* Whether k's purposes name purpose exactly. */
bool bg_apikey_allows(const bg_apikey *k, const char *purpose);

/* Whether k may ask list (a list name or "grades"). */
bool bg_apikey_allows_list(const bg_apikey *k, const char *list);

#endif
