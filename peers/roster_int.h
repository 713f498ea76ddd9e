/*
 * roster_int.h - internals shared by the roster module's files; not part of
 * the API.
 *
 * roster.c is the runtime model (lifetime, reading, permissions);
 * roster_check.c turns a Roster message into a checked bg_roster and says
 * where a problem is (section, index, key); roster_signed.c signs and opens
 * the signed form; roster_ini.c (library bg_roster_ini, only for
 * 'baygate roster sign') compiles the INI source into a Roster message and
 * maps a "where" back to a line of the file.
 */
#ifndef BG_ROSTER_INT_H
#define BG_ROSTER_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "peers/roster.h"
#include "proto/roster.pb-c.h"

struct bg_roster {
    atomic_uint refs;
    uint64_t serial;
    int64_t issued_at_ms;
    char federation[BG_PKI_NAME_MAX + 1];
    uint32_t max_message_bytes;
    bg_scale common;
    size_t nmembers, npurposes, npermissions;
    bg_roster_member members[BG_ROSTER_MAX_MEMBERS];
    bg_roster_purpose purposes[BG_ROSTER_MAX_PURPOSES];
    bg_roster_perm *permissions;
    /* permission index of (asker, answerer) member indices, -1 if none */
    int16_t perm_index[BG_ROSTER_MAX_MEMBERS][BG_ROSTER_MAX_MEMBERS];
    uint8_t *bytes; /* the serialised Roster: what the CA signed */
    size_t len;
    uint8_t digest[32];
};

/* --- where a problem is: sections and keys (roster_check.c) --- */

enum bg_roster_sect {
    ROSTER_SEC_NONE,
    ROSTER_SEC_FEDERATION,
    ROSTER_SEC_PURPOSE,
    ROSTER_SEC_MEMBER,
    ROSTER_SEC_PERMISSION
};

enum bg_roster_key {
    ROSTER_K_NONE, /* the section itself */
    ROSTER_K_FED_NAME,
    ROSTER_K_SERIAL,
    ROSTER_K_MAXMSG,
    ROSTER_K_COMMON,
    ROSTER_K_NEEDS_AUTH,
    ROSTER_K_MEM_NAME,
    ROSTER_K_ENDPOINT,
    ROSTER_K_CERTIFICATE,
    ROSTER_K_FINGERPRINT,
    ROSTER_K_NEXT_CERTIFICATE,
    ROSTER_K_NEXT_FINGERPRINT,
    ROSTER_K_MEM_LISTS,
    ROSTER_K_SCALE,
    ROSTER_K_GRADE_MAP,
    ROSTER_K_PURPOSES,
    ROSTER_K_PERM_LISTS,
    ROSTER_K_QUOTA,
    ROSTER_K_MIN_BATCH,
    ROSTER_K_COUNT
};

enum { ROSTER_F_REQUIRED = 1, ROSTER_F_LIST = 2 };

struct bg_roster_keydef {
    enum bg_roster_sect sect;
    const char *name;
    enum bg_roster_key id;
    unsigned flags;
};

/* Every key of every section, with its flags. */
extern const struct bg_roster_keydef bg_roster_keydefs[];
extern const size_t bg_roster_nkeydefs;

struct bg_roster_where {
    enum bg_roster_sect sect;
    size_t index;
    enum bg_roster_key key;
};

/* The keydef of id, NULL for ROSTER_K_NONE. */
const struct bg_roster_keydef *bg_roster_keydef_of(enum bg_roster_key id);

/* The label of a section in messages: "[member 440100]". */
void bg_roster_sect_label(char *out, size_t outsz, enum bg_roster_sect s, const char *a,
                          const char *b);

/* 1..32 of [a-z0-9_-], starting with a letter. */
bool bg_roster_purpose_name_valid(const char *s);
/* n > 0 bytes, all ASCII digits. */
bool bg_roster_all_digits(const char *s, size_t n);

/*
 * A checked bg_roster from m, whose serialised form is bytes[0..len): the
 * one validator for both ways in (INI source and signed form). On failure
 * *w (if not NULL) says which section and key are wrong.
 */
int bg_roster_build(const Baygate__Roster *m, const uint8_t *bytes, size_t len, bg_roster **out,
                    struct bg_roster_where *w, bg_err *err);

/* --- the model (roster.c) --- */

/* Untrusted text echoed in a message: at most 40 bytes of printable ASCII,
 * anything else shown as '?'. */
#define BG_ROSTER_SAFE_MAX 48
const char *bg_roster_safe(const char *s, char buf[BG_ROSTER_SAFE_MAX]);

/* Index of a member or purpose by name, -1 if none. */
int bg_roster_member_index(const bg_roster *r, const char *city);
int bg_roster_purpose_index(const bg_roster *r, const char *name);

#endif
