/*
 * roster.c - the signed federation roster (see roster.h and ROSTER.md).
 *
 * One validator for both ways in: the INI source is first turned into the
 * wire message (Baygate__Roster) exactly as it will be signed, and then both
 * that and a received roster go through build(), which checks everything and
 * makes the immutable bg_roster. build() reports where a problem is (section
 * and key); the INI path maps that back to a line of the file.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ini.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "peers/roster.h"
#include "certs/pki_int.h"
#include "common/file.h"
#include "proto/roster.pb-c.h"
#include "proto/pb.h"

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

/* --- where a problem is: sections and keys --- */

enum sect { SEC_NONE, SEC_FEDERATION, SEC_PURPOSE, SEC_MEMBER, SEC_PERMISSION };

enum key {
    K_NONE, /* the section itself */
    K_FED_NAME,
    K_SERIAL,
    K_MAXMSG,
    K_COMMON,
    K_NEEDS_AUTH,
    K_MEM_NAME,
    K_ENDPOINT,
    K_CERTIFICATE,
    K_FINGERPRINT,
    K_MEM_LISTS,
    K_SCALE,
    K_GRADE_MAP,
    K_PURPOSES,
    K_PERM_LISTS,
    K_QUOTA,
    K_MIN_BATCH,
    K_COUNT
};

enum { F_REQUIRED = 1, F_LIST = 2 };

static const struct keydef {
    enum sect sect;
    const char *name;
    enum key id;
    unsigned flags;
} keydefs[] = {
    {SEC_FEDERATION, "name", K_FED_NAME, F_REQUIRED},
    {SEC_FEDERATION, "serial", K_SERIAL, F_REQUIRED},
    {SEC_FEDERATION, "max_message_bytes", K_MAXMSG, F_REQUIRED},
    {SEC_FEDERATION, "common_scale", K_COMMON, F_REQUIRED},
    {SEC_PURPOSE, "needs_authorisation", K_NEEDS_AUTH, F_REQUIRED},
    {SEC_MEMBER, "name", K_MEM_NAME, F_REQUIRED},
    {SEC_MEMBER, "endpoint", K_ENDPOINT, F_REQUIRED},
    {SEC_MEMBER, "certificate", K_CERTIFICATE, 0},
    {SEC_MEMBER, "fingerprint", K_FINGERPRINT, 0},
    {SEC_MEMBER, "lists", K_MEM_LISTS, F_REQUIRED | F_LIST},
    {SEC_MEMBER, "scale", K_SCALE, F_REQUIRED},
    {SEC_MEMBER, "grade_map", K_GRADE_MAP, F_REQUIRED | F_LIST},
    {SEC_PERMISSION, "purposes", K_PURPOSES, F_REQUIRED | F_LIST},
    {SEC_PERMISSION, "lists", K_PERM_LISTS, F_REQUIRED | F_LIST},
    {SEC_PERMISSION, "quota_items_per_day", K_QUOTA, F_REQUIRED},
    {SEC_PERMISSION, "min_count_batch", K_MIN_BATCH, F_REQUIRED},
};

#define NKEYDEFS (sizeof keydefs / sizeof keydefs[0])

static const struct keydef *
keydef_of(enum key id)
{
    for (size_t i = 0; i < NKEYDEFS; i++)
        if (keydefs[i].id == id)
            return &keydefs[i];
    return NULL;
}

static const struct keydef *
keydef_find(enum sect s, const char *name)
{
    for (size_t i = 0; i < NKEYDEFS; i++)
        if (keydefs[i].sect == s && strcmp(keydefs[i].name, name) == 0)
            return &keydefs[i];
    return NULL;
}

struct where {
    enum sect sect;
    size_t index;
    enum key key;
};

/* Untrusted text echoed in a message: at most 40 bytes of printable ASCII,
 * anything else shown as '?'. */
#define SAFE_MAX 48

static const char *
safe(const char *s, char buf[SAFE_MAX])
{
    size_t i = 0;
    for (; s != NULL && s[i] != '\0' && i < 40; i++)
        buf[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    if (s != NULL && s[i] != '\0' && i == 40) {
        memcpy(buf + i, "...", 3);
        i += 3;
    }
    buf[i] = '\0';
    return buf;
}

/* The label of a section in messages: "[member 440100]". */
static void
sect_label(char *out, size_t outsz, enum sect s, const char *a, const char *b)
{
    char sa[SAFE_MAX], sb[SAFE_MAX];
    switch (s) {
    case SEC_FEDERATION:
        snprintf(out, outsz, "[federation]");
        break;
    case SEC_PURPOSE:
        snprintf(out, outsz, "[purpose %s]", safe(a, sa));
        break;
    case SEC_MEMBER:
        snprintf(out, outsz, "[member %s]", safe(a, sa));
        break;
    case SEC_PERMISSION:
        snprintf(out, outsz, "[permission %s -> %s]", safe(a, sa), safe(b, sb));
        break;
    case SEC_NONE:
        snprintf(out, outsz, "roster");
        break;
    }
}

static int fail_where(struct where *w, enum sect s, size_t i, enum key k, const char *label,
                      bg_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 8, 9)));

/* Records where and sets err to "LABEL KEY: message" (or "LABEL message"). */
static int
fail_where(struct where *w, enum sect s, size_t i, enum key k, const char *label, bg_err *err,
           int code, const char *fmt, ...)
{
    char msg[BG_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (w != NULL) {
        w->sect = s;
        w->index = i;
        w->key = k;
    }
    const struct keydef *kd = keydef_of(k);
    if (kd != NULL)
        return bg_err_set(err, code, "%s %s: %s", label, kd->name, msg);
    return bg_err_set(err, code, "%s %s", label, msg);
}

/* --- value checks shared by the INI and the wire --- */

/* 1..32 of [a-z0-9_-], starting with a letter. */
static bool
purpose_name_valid(const char *s)
{
    size_t n = strnlen(s, BG_ROSTER_PURPOSE_MAX + 1);
    if (n == 0 || n > BG_ROSTER_PURPOSE_MAX || s[0] < 'a' || s[0] > 'z')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-' ||
              s[i] == '_'))
            return false;
    return true;
}

static bool
all_digits(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

/* Decimal digits only, min..max. */
static int
parse_u64(const char *v, uint64_t min, uint64_t max, uint64_t *out, bg_err *err)
{
    char sv[SAFE_MAX];
    uint64_t x = 0;
    if (*v == '\0')
        return bg_err_set(err, BG_EINVAL, "needs a number");
    for (const char *p = v; *p != '\0'; p++) {
        if (*p < '0' || *p > '9' || x > (UINT64_MAX - 9) / 10)
            return bg_err_set(err, BG_EINVAL, "'%s' is not a number", safe(v, sv));
        x = x * 10 + (uint64_t)(*p - '0');
    }
    if (x < min || x > max)
        return bg_err_set(err, BG_EINVAL, "%llu is out of range %llu-%llu", (unsigned long long)x,
                          (unsigned long long)min, (unsigned long long)max);
    *out = x;
    return BG_OK;
}

/* tls+tcp://HOST:PORT: HOST a DNS name or IPv4 address ([A-Za-z0-9.-]) or a
 * bracketed IPv6 address, PORT 1-65535. */
static int
check_endpoint(const char *v, bg_err *err)
{
    static const char scheme[] = "tls+tcp://";
    char sv[SAFE_MAX];
    size_t len = strnlen(v, BG_ROSTER_ENDPOINT_MAX + 1);
    if (len > BG_ROSTER_ENDPOINT_MAX)
        return bg_err_set(err, BG_EINVAL, "longer than %d bytes", BG_ROSTER_ENDPOINT_MAX);
    if (strncmp(v, scheme, sizeof scheme - 1) != 0)
        return bg_err_set(err, BG_EINVAL, "'%s' is not a tls+tcp:// address", safe(v, sv));
    const char *host = v + sizeof scheme - 1;
    const char *colon = strrchr(host, ':');
    uint64_t port = 0;
    if (colon == NULL || colon == host || parse_u64(colon + 1, 1, 65535, &port, NULL) != BG_OK ||
        colon[1] == '0')
        return bg_err_set(err, BG_EINVAL,
                          "'%s' needs a host and a port 1-65535 (tls+tcp://HOST:PORT)",
                          safe(v, sv));
    size_t hlen = (size_t)(colon - host);
    bool ok = true;
    if (host[0] == '[') {
        ok = hlen > 2 && host[hlen - 1] == ']';
        for (size_t i = 1; ok && i + 1 < hlen; i++)
            ok = isxdigit((unsigned char)host[i]) || host[i] == ':' || host[i] == '.';
    } else {
        for (size_t i = 0; ok && i < hlen; i++)
            ok = isalnum((unsigned char)host[i]) || host[i] == '.' || host[i] == '-';
    }
    if (!ok)
        return bg_err_set(err, BG_EINVAL,
                          "'%s': the host must be a name, an IPv4 address or [IPv6]", safe(v, sv));
    return BG_OK;
}

static bool
name_fits(const char *s, size_t max)
{
    return strnlen(s, max + 1) <= max;
}

/* --- build: a Roster message to a bg_roster, checking everything --- */

static int
build_federation(const Baygate__Roster *m, bg_roster *r, struct where *w, bg_err *err)
{
    const char *lab = "[federation]";
    bg_err sub = {0};
    if (m->serial < 1)
        return fail_where(w, SEC_FEDERATION, 0, K_SERIAL, lab, err, BG_EINVAL,
                          "must be at least 1");
    r->serial = m->serial;
    if (!bg_pki_name_valid(m->federation))
        return fail_where(w, SEC_FEDERATION, 0, K_FED_NAME, lab, err, BG_EINVAL,
                          "must be 1-%d bytes of UTF-8 without control characters or "
                          "surrounding blanks",
                          BG_PKI_NAME_MAX);
    strcpy(r->federation, m->federation);
    if (m->max_message_bytes < BG_ROSTER_MESSAGE_MIN ||
        m->max_message_bytes > BG_ROSTER_MESSAGE_MAX)
        return fail_where(w, SEC_FEDERATION, 0, K_MAXMSG, lab, err, BG_EINVAL,
                          "%u is out of range %u-%u", (unsigned)m->max_message_bytes,
                          BG_ROSTER_MESSAGE_MIN, BG_ROSTER_MESSAGE_MAX);
    r->max_message_bytes = m->max_message_bytes;
    if (m->issued_at_ms <= 0)
        return fail_where(w, SEC_FEDERATION, 0, K_NONE, lab, err, BG_EINVAL,
                          "issued_at_ms %lld is not a time", (long long)m->issued_at_ms);
    r->issued_at_ms = m->issued_at_ms;
    if (!name_fits(m->common_scale, 512) || bg_scale_parse(m->common_scale, &r->common, &sub))
        return fail_where(w, SEC_FEDERATION, 0, K_COMMON, lab, err, BG_EINVAL, "%s",
                          sub.msg[0] ? sub.msg : "too long");
    /* A grade of the common scale that is a number must be its own rank, so
     * that "A:2" in a grade_map cannot mean two different things. */
    for (size_t g = 0; g < r->common.ngrades; g++) {
        const char *cg = r->common.grades[g];
        if (all_digits(cg, strlen(cg)) && strtoul(cg, NULL, 10) != g + 1)
            return fail_where(w, SEC_FEDERATION, 0, K_COMMON, lab, err, BG_EINVAL,
                              "grade '%s' is a number other than its rank %zu; number grades "
                              "must count 1,2,3... from the best",
                              cg, g + 1);
    }
    if (m->n_members < 1 || m->n_members > BG_ROSTER_MAX_MEMBERS)
        return fail_where(w, SEC_NONE, 0, K_NONE, "roster", err, BG_EINVAL,
                          "has %zu members; it needs 1 to %d", m->n_members, BG_ROSTER_MAX_MEMBERS);
    if (m->n_purposes > BG_ROSTER_MAX_PURPOSES)
        return fail_where(w, SEC_NONE, 0, K_NONE, "roster", err, BG_EINVAL,
                          "has %zu purposes; at most %d are allowed", m->n_purposes,
                          BG_ROSTER_MAX_PURPOSES);
    if (m->n_permissions > BG_ROSTER_MAX_PERMISSIONS)
        return fail_where(w, SEC_NONE, 0, K_NONE, "roster", err, BG_EINVAL,
                          "has %zu permissions; at most %d (one per ordered pair of members)",
                          m->n_permissions, BG_ROSTER_MAX_PERMISSIONS);
    return BG_OK;
}

static int
build_purposes(const Baygate__Roster *m, bg_roster *r, struct where *w, bg_err *err)
{
    char lab[128];
    for (size_t i = 0; i < m->n_purposes; i++) {
        const Baygate__Purpose *p = m->purposes[i];
        sect_label(lab, sizeof lab, SEC_PURPOSE, p->name, NULL);
        if (!purpose_name_valid(p->name))
            return fail_where(w, SEC_PURPOSE, i, K_NONE, lab, err, BG_EINVAL,
                              "is not a purpose name (1-%d of a-z, 0-9, '-', '_', starting "
                              "with a letter)",
                              BG_ROSTER_PURPOSE_MAX);
        for (size_t j = 0; j < i; j++)
            if (strcmp(r->purposes[j].name, p->name) == 0)
                return fail_where(w, SEC_PURPOSE, i, K_NONE, lab, err, BG_EINVAL, "appears twice");
        strcpy(r->purposes[i].name, p->name);
        r->purposes[i].needs_authorisation = p->needs_authorisation != 0;
    }
    r->npurposes = m->n_purposes;
    return BG_OK;
}

/* Fills lists[] from names; refuses unknown and repeated names. */
static int
build_lists(char *const *names, size_t n, bool lists[BG_LIST_COUNT], enum sect s, size_t i,
            enum key k, const char *lab, struct where *w, bg_err *err)
{
    char sv[SAFE_MAX];
    for (size_t j = 0; j < n; j++) {
        int li = bg_list_index(names[j], strlen(names[j]));
        if (li < 0)
            return fail_where(w, s, i, k, lab, err, BG_EINVAL, "unknown list '%s' (known: %s, %s)",
                              safe(names[j], sv), bg_list_names[0], bg_list_names[1]);
        if (lists[li])
            return fail_where(w, s, i, k, lab, err, BG_EINVAL, "list %s given twice",
                              bg_list_names[li]);
        lists[li] = true;
    }
    return BG_OK;
}

static int
build_grade_map(const Baygate__Member *mm, bg_roster_member *rm, const bg_scale *common, size_t i,
                const char *lab, struct where *w, bg_err *err)
{
    char sv[SAFE_MAX];
    bool seen[BG_SCALE_MAX_GRADES] = {false};
    for (size_t j = 0; j < mm->n_grade_map; j++) {
        const Baygate__GradeMapping *gm = mm->grade_map[j];
        int g = bg_scale_index(&rm->scale, gm->grade, strnlen(gm->grade, BG_GRADE_MAX + 1));
        if (g < 0 || strlen(gm->grade) > BG_GRADE_MAX)
            return fail_where(w, SEC_MEMBER, i, K_GRADE_MAP, lab, err, BG_EINVAL,
                              "grade '%s' is not in scale %s", safe(gm->grade, sv), rm->scale.name);
        if (seen[g])
            return fail_where(w, SEC_MEMBER, i, K_GRADE_MAP, lab, err, BG_EINVAL,
                              "grade %s is mapped twice", rm->scale.grades[g]);
        if (gm->common < 1 || gm->common > common->ngrades)
            return fail_where(w, SEC_MEMBER, i, K_GRADE_MAP, lab, err, BG_EINVAL,
                              "grade %s: rank %u is outside the common scale %s (1-%zu)",
                              rm->scale.grades[g], (unsigned)gm->common, common->name,
                              common->ngrades);
        seen[g] = true;
        rm->common[g] = gm->common;
    }
    for (size_t g = 0; g < rm->scale.ngrades; g++)
        if (!seen[g])
            return fail_where(w, SEC_MEMBER, i, K_GRADE_MAP, lab, err, BG_EINVAL,
                              "grade %s of scale %s is not mapped", rm->scale.grades[g],
                              rm->scale.name);
    for (size_t g = 1; g < rm->scale.ngrades; g++)
        if (rm->common[g] < rm->common[g - 1])
            return fail_where(w, SEC_MEMBER, i, K_GRADE_MAP, lab, err, BG_EINVAL,
                              "grade %s maps to common rank %u, better than the better grade "
                              "%s's %u",
                              rm->scale.grades[g], (unsigned)rm->common[g], rm->scale.grades[g - 1],
                              (unsigned)rm->common[g - 1]);
    return BG_OK;
}

static int
build_members(const Baygate__Roster *m, bg_roster *r, struct where *w, bg_err *err)
{
    char lab[128];
    bg_err sub = {0};
    for (size_t i = 0; i < m->n_members; i++) {
        const Baygate__Member *mm = m->members[i];
        bg_roster_member *rm = &r->members[i];
        sect_label(lab, sizeof lab, SEC_MEMBER, mm->city, NULL);
        if (!bg_city_code_valid(mm->city))
            return fail_where(w, SEC_MEMBER, i, K_NONE, lab, err, BG_EINVAL,
                              "is not a 6-digit city code");
        for (size_t j = 0; j < i; j++)
            if (strcmp(r->members[j].city, mm->city) == 0)
                return fail_where(w, SEC_MEMBER, i, K_NONE, lab, err, BG_EINVAL, "appears twice");
        strcpy(rm->city, mm->city);
        if (!bg_pki_name_valid(mm->name))
            return fail_where(w, SEC_MEMBER, i, K_MEM_NAME, lab, err, BG_EINVAL,
                              "must be 1-%d bytes of UTF-8 without control characters or "
                              "surrounding blanks",
                              BG_PKI_NAME_MAX);
        strcpy(rm->name, mm->name);
        if (check_endpoint(mm->endpoint, &sub) != BG_OK)
            return fail_where(w, SEC_MEMBER, i, K_ENDPOINT, lab, err, BG_EINVAL, "%s", sub.msg);
        for (size_t j = 0; j < i; j++)
            if (strcmp(r->members[j].endpoint, mm->endpoint) == 0)
                return fail_where(w, SEC_MEMBER, i, K_ENDPOINT, lab, err, BG_EINVAL,
                                  "%s is also the endpoint of member %s", mm->endpoint,
                                  r->members[j].city);
        strcpy(rm->endpoint, mm->endpoint);
        if (mm->cert_sha256.len != BG_SIG_FP_LEN)
            return fail_where(w, SEC_MEMBER, i, K_FINGERPRINT, lab, err, BG_EINVAL,
                              "the certificate fingerprint is %zu bytes, not a SHA-256 (%d)",
                              mm->cert_sha256.len, BG_SIG_FP_LEN);
        memcpy(rm->cert_sha256, mm->cert_sha256.data, BG_SIG_FP_LEN);
        for (size_t j = 0; j < i; j++)
            if (memcmp(r->members[j].cert_sha256, rm->cert_sha256, BG_SIG_FP_LEN) == 0)
                return fail_where(w, SEC_MEMBER, i, K_FINGERPRINT, lab, err, BG_EINVAL,
                                  "same certificate as member %s", r->members[j].city);
        int rc =
            build_lists(mm->lists, mm->n_lists, rm->lists, SEC_MEMBER, i, K_MEM_LISTS, lab, w, err);
        if (rc != BG_OK)
            return rc;
        if (!name_fits(mm->scale, 512) || bg_scale_parse(mm->scale, &rm->scale, &sub) != BG_OK)
            return fail_where(w, SEC_MEMBER, i, K_SCALE, lab, err, BG_EINVAL, "%s",
                              sub.msg[0] ? sub.msg : "too long");
        if ((rc = build_grade_map(mm, rm, &r->common, i, lab, w, err)) != BG_OK)
            return rc;
    }
    r->nmembers = m->n_members;
    return BG_OK;
}

static int
member_index(const bg_roster *r, const char *city)
{
    for (size_t i = 0; i < r->nmembers; i++)
        if (strcmp(r->members[i].city, city) == 0)
            return (int)i;
    return -1;
}

static int
purpose_index(const bg_roster *r, const char *name)
{
    for (size_t i = 0; i < r->npurposes; i++)
        if (strcmp(r->purposes[i].name, name) == 0)
            return (int)i;
    return -1;
}

static int
build_permissions(const Baygate__Roster *m, bg_roster *r, struct where *w, bg_err *err)
{
    char lab[128], sv[SAFE_MAX];
    if (m->n_permissions > 0) {
        r->permissions = calloc(m->n_permissions, sizeof *r->permissions);
        if (r->permissions == NULL)
            return bg_err_set(err, BG_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < m->n_permissions; i++) {
        const Baygate__Permission *p = m->permissions[i];
        bg_roster_perm *rp = &r->permissions[i];
        sect_label(lab, sizeof lab, SEC_PERMISSION, p->asker, p->answerer);
        if (!bg_city_code_valid(p->asker) || !bg_city_code_valid(p->answerer))
            return fail_where(w, SEC_PERMISSION, i, K_NONE, lab, err, BG_EINVAL,
                              "needs two 6-digit city codes: [permission ASKER -> ANSWERER]");
        if (strcmp(p->asker, p->answerer) == 0)
            return fail_where(w, SEC_PERMISSION, i, K_NONE, lab, err, BG_EINVAL,
                              "asker and answerer are the same city");
        int a = member_index(r, p->asker), b = member_index(r, p->answerer);
        if (a < 0 || b < 0)
            return fail_where(w, SEC_PERMISSION, i, K_NONE, lab, err, BG_EINVAL,
                              "%s %s is not a member (no [member %s] section)",
                              a < 0 ? "asker" : "answerer", a < 0 ? p->asker : p->answerer,
                              a < 0 ? p->asker : p->answerer);
        if (r->perm_index[a][b] >= 0)
            return fail_where(w, SEC_PERMISSION, i, K_NONE, lab, err, BG_EINVAL, "appears twice");
        strcpy(rp->asker, p->asker);
        strcpy(rp->answerer, p->answerer);
        if (p->n_purposes == 0)
            return fail_where(w, SEC_PERMISSION, i, K_PURPOSES, lab, err, BG_EINVAL,
                              "needs at least one purpose");
        for (size_t j = 0; j < p->n_purposes; j++) {
            int pi = purpose_index(r, p->purposes[j]);
            if (pi < 0)
                return fail_where(w, SEC_PERMISSION, i, K_PURPOSES, lab, err, BG_EINVAL,
                                  "purpose '%s' is not declared (no [purpose %s] section)",
                                  safe(p->purposes[j], sv), sv);
            if (rp->purposes & (1u << pi))
                return fail_where(w, SEC_PERMISSION, i, K_PURPOSES, lab, err, BG_EINVAL,
                                  "purpose %s given twice", r->purposes[pi].name);
            rp->purposes |= 1u << pi;
        }
        if (p->n_lists == 0)
            return fail_where(w, SEC_PERMISSION, i, K_PERM_LISTS, lab, err, BG_EINVAL,
                              "needs at least one list");
        int rc = build_lists(p->lists, p->n_lists, rp->lists, SEC_PERMISSION, i, K_PERM_LISTS, lab,
                             w, err);
        if (rc != BG_OK)
            return rc;
        for (int li = 0; li < BG_LIST_COUNT; li++)
            if (rp->lists[li] && !r->members[b].lists[li])
                return fail_where(w, SEC_PERMISSION, i, K_PERM_LISTS, lab, err, BG_EINVAL,
                                  "%s does not offer %s (see its [member %s] lists)", p->answerer,
                                  bg_list_names[li], p->answerer);
        if (p->quota_items_per_day < 1 || p->quota_items_per_day > BG_ROSTER_QUOTA_MAX)
            return fail_where(w, SEC_PERMISSION, i, K_QUOTA, lab, err, BG_EINVAL,
                              "%llu is out of range 1-%llu",
                              (unsigned long long)p->quota_items_per_day,
                              (unsigned long long)BG_ROSTER_QUOTA_MAX);
        rp->quota_items_per_day = p->quota_items_per_day;
        if (p->min_count_batch < 1 || p->min_count_batch > BG_ROSTER_BATCH_MAX)
            return fail_where(w, SEC_PERMISSION, i, K_MIN_BATCH, lab, err, BG_EINVAL,
                              "%u is out of range 1-%u", (unsigned)p->min_count_batch,
                              BG_ROSTER_BATCH_MAX);
        rp->min_count_batch = p->min_count_batch;
        r->perm_index[a][b] = (int16_t)i;
        r->npermissions = i + 1;
    }
    return BG_OK;
}

static int
sha256(const uint8_t *data, size_t len, uint8_t out[32], bg_err *err)
{
    unsigned int n = 0;
    if (EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) != 1 || n != 32)
        return bg_pki_ossl_fail(err, BG_ECRYPTO, "SHA-256 failed");
    return BG_OK;
}

/* A checked bg_roster from m, whose serialised form is bytes[0..len). */
static int
build(const Baygate__Roster *m, const uint8_t *bytes, size_t len, bg_roster **out, struct where *w,
      bg_err *err)
{
    *out = NULL;
    bg_roster *r = calloc(1, sizeof *r);
    if (r == NULL)
        return bg_err_set(err, BG_ENOMEM, "out of memory");
    atomic_init(&r->refs, 1);
    memset(r->perm_index, 0xff, sizeof r->perm_index);
    int rc;
    if ((rc = build_federation(m, r, w, err)) != BG_OK ||
        (rc = build_purposes(m, r, w, err)) != BG_OK ||
        (rc = build_members(m, r, w, err)) != BG_OK ||
        (rc = build_permissions(m, r, w, err)) != BG_OK)
        goto fail;
    r->bytes = malloc(len > 0 ? len : 1);
    if (r->bytes == NULL) {
        rc = bg_err_set(err, BG_ENOMEM, "out of memory");
        goto fail;
    }
    memcpy(r->bytes, bytes, len);
    r->len = len;
    if ((rc = sha256(bytes, len, r->digest, err)) != BG_OK)
        goto fail;
    *out = r;
    return BG_OK;
fail:
    free(r->permissions);
    free(r->bytes);
    free(r);
    return rc;
}

/* --- lifetime and reading --- */

bg_roster *
bg_roster_ref(bg_roster *r)
{
    if (r != NULL)
        atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
    return r;
}

void
bg_roster_free(bg_roster *r)
{
    if (r == NULL || atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) != 1)
        return;
    free(r->permissions);
    free(r->bytes);
    free(r);
}

uint64_t
bg_roster_serial(const bg_roster *r)
{
    return r->serial;
}

int64_t
bg_roster_issued_at_ms(const bg_roster *r)
{
    return r->issued_at_ms;
}

const char *
bg_roster_federation(const bg_roster *r)
{
    return r->federation;
}

uint32_t
bg_roster_max_message_bytes(const bg_roster *r)
{
    return r->max_message_bytes;
}

const bg_scale *
bg_roster_common_scale(const bg_roster *r)
{
    return &r->common;
}

const uint8_t *
bg_roster_bytes(const bg_roster *r, size_t *len)
{
    *len = r->len;
    return r->bytes;
}

void
bg_roster_digest(const bg_roster *r, uint8_t out[32])
{
    memcpy(out, r->digest, 32);
}

size_t
bg_roster_member_count(const bg_roster *r)
{
    return r->nmembers;
}

const bg_roster_member *
bg_roster_member_at(const bg_roster *r, size_t i)
{
    return i < r->nmembers ? &r->members[i] : NULL;
}

const bg_roster_member *
bg_roster_member_find(const bg_roster *r, const char *city)
{
    if (city == NULL)
        return NULL;
    int i = member_index(r, city);
    return i < 0 ? NULL : &r->members[i];
}

uint32_t
bg_roster_member_rank(const bg_roster_member *m, const char *g, size_t len)
{
    int i = bg_scale_index(&m->scale, g, len);
    return i < 0 ? 0 : m->common[i];
}

int
bg_roster_common_rank(const bg_roster *r, const char *city, const char *grade, uint32_t *rank,
                      bg_err *err)
{
    char sc[SAFE_MAX], sg[SAFE_MAX];
    const bg_roster_member *m = bg_roster_member_find(r, city);
    if (m == NULL)
        return bg_err_set(err, BG_ENOTFOUND, "%s is not a member of the federation",
                          safe(city, sc));
    uint32_t x = grade ? bg_roster_member_rank(m, grade, strlen(grade)) : 0;
    if (x == 0)
        return bg_err_set(err, BG_ENOTFOUND, "'%s' is not a grade of %s's scale %s",
                          safe(grade, sg), m->city, m->scale.name);
    *rank = x;
    return BG_OK;
}

size_t
bg_roster_purpose_count(const bg_roster *r)
{
    return r->npurposes;
}

const bg_roster_purpose *
bg_roster_purpose_at(const bg_roster *r, size_t i)
{
    return i < r->npurposes ? &r->purposes[i] : NULL;
}

const bg_roster_purpose *
bg_roster_purpose_find(const bg_roster *r, const char *name)
{
    if (name == NULL)
        return NULL;
    int i = purpose_index(r, name);
    return i < 0 ? NULL : &r->purposes[i];
}

size_t
bg_roster_permission_count(const bg_roster *r)
{
    return r->npermissions;
}

const bg_roster_perm *
bg_roster_permission_at(const bg_roster *r, size_t i)
{
    return i < r->npermissions ? &r->permissions[i] : NULL;
}

const bg_roster_perm *
bg_roster_permission_find(const bg_roster *r, const char *asker, const char *answerer)
{
    if (asker == NULL || answerer == NULL)
        return NULL;
    int a = member_index(r, asker), b = member_index(r, answerer);
    if (a < 0 || b < 0 || r->perm_index[a][b] < 0)
        return NULL;
    return &r->permissions[r->perm_index[a][b]];
}

static bool deny(bg_roster_verdict *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static bool
deny(bg_roster_verdict *v, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->reason, sizeof v->reason, fmt, ap);
    va_end(ap);
    v->allowed = false;
    return false;
}

bool
bg_roster_permission(const bg_roster *r, const char *asker, const char *answerer,
                     const char *purpose, const char *list, bg_roster_verdict *v)
{
    char s1[SAFE_MAX], s2[SAFE_MAX];
    memset(v, 0, sizeof *v);
    int a = asker ? member_index(r, asker) : -1;
    if (a < 0)
        return deny(v, "%s is not a member of the federation", safe(asker, s1));
    int b = answerer ? member_index(r, answerer) : -1;
    if (b < 0)
        return deny(v, "%s is not a member of the federation", safe(answerer, s1));
    if (a == b)
        return deny(v, "%s cannot ask itself", asker);
    int pi = purpose ? purpose_index(r, purpose) : -1;
    if (pi < 0)
        return deny(v, "purpose '%s' is not declared in roster %llu", safe(purpose, s1),
                    (unsigned long long)r->serial);
    v->needs_authorisation = r->purposes[pi].needs_authorisation;
    int li = list ? bg_list_index(list, strlen(list)) : -1;
    if (li < 0)
        return deny(v, "'%s' is not a known list", safe(list, s2));
    if (!r->members[b].lists[li])
        return deny(v, "%s does not offer %s", answerer, bg_list_names[li]);
    int pidx = r->perm_index[a][b];
    if (pidx < 0)
        return deny(v, "%s may not ask %s anything", asker, answerer);
    const bg_roster_perm *p = &r->permissions[pidx];
    if (!(p->purposes & (1u << pi)))
        return deny(v, "%s may not ask %s for purpose '%s'", asker, answerer, r->purposes[pi].name);
    if (!p->lists[li])
        return deny(v, "%s may not ask %s about %s", asker, answerer, bg_list_names[li]);
    v->allowed = true;
    v->quota_items_per_day = p->quota_items_per_day;
    v->min_count_batch = p->min_count_batch;
    return true;
}

/* --- the INI source --- */

struct ini_item {
    uint32_t line[K_COUNT]; /* line[K_NONE]: the section header */
    char *grade_raw;        /* a member's grade_map text, resolved at the end */
};

struct ini {
    const char *name, *base_dir;
    X509 *ca;
    const char *text;
    size_t len, pos, line;
    bool failed;
    size_t err_line;
    bg_err sub;
    bool prev_key; /* inih takes an indented line after a key as a continuation */
    bool cont;     /* the line being handled is such a continuation */
    enum sect sect;
    enum key last_key;
    Baygate__Roster *m;
    bool have_fed;
    struct ini_item fed;
    struct ini_item *purp, *mem, *perm; /* parallel to m->purposes, members, permissions */
};

static void ini_fail(struct ini *ps, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Records the first error of the parse, at the line being read. */
static void
ini_fail(struct ini *ps, int code, const char *fmt, ...)
{
    if (ps->failed)
        return;
    ps->failed = true;
    ps->err_line = ps->line;
    ps->sub.code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ps->sub.msg, sizeof ps->sub.msg, fmt, ap);
    va_end(ap);
}

static struct ini_item *
ini_cur(struct ini *ps)
{
    switch (ps->sect) {
    case SEC_FEDERATION:
        return &ps->fed;
    case SEC_PURPOSE:
        return &ps->purp[ps->m->n_purposes - 1];
    case SEC_MEMBER:
        return &ps->mem[ps->m->n_members - 1];
    case SEC_PERMISSION:
        return &ps->perm[ps->m->n_permissions - 1];
    case SEC_NONE:
        break;
    }
    return NULL;
}

static void
ini_label(const struct ini *ps, char *out, size_t outsz)
{
    const Baygate__Roster *m = ps->m;
    switch (ps->sect) {
    case SEC_PURPOSE:
        sect_label(out, outsz, SEC_PURPOSE, m->purposes[m->n_purposes - 1]->name, NULL);
        break;
    case SEC_MEMBER:
        sect_label(out, outsz, SEC_MEMBER, m->members[m->n_members - 1]->city, NULL);
        break;
    case SEC_PERMISSION:
        sect_label(out, outsz, SEC_PERMISSION, m->permissions[m->n_permissions - 1]->asker,
                   m->permissions[m->n_permissions - 1]->answerer);
        break;
    default:
        sect_label(out, outsz, ps->sect, NULL, NULL);
        break;
    }
}

static char *
dup_n(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (p != NULL) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

/* Grows an ini_item array (parallel to one of the message's arrays) to n + 1. */
static bool
grow_items(struct ini_item **items, size_t n)
{
    struct ini_item *ni = realloc(*items, (n + 1) * sizeof *ni);
    if (ni == NULL)
        return false;
    memset(&ni[n], 0, sizeof ni[n]);
    *items = ni;
    return true;
}

static void
trim(const char **s, size_t *n)
{
    while (*n > 0 && isspace((unsigned char)**s))
        (*s)++, (*n)--;
    while (*n > 0 && isspace((unsigned char)(*s)[*n - 1]))
        (*n)--;
}

/* Opens the section of a "[...]" line (s points at '['). */
static void
ini_section(struct ini *ps, const char *s)
{
    char sv[SAFE_MAX], lab[160];
    const char *end = strchr(s, ']');
    if (end == NULL)
        return; /* inih reports the syntax error */
    for (const char *t = end + 1; *t != '\0'; t++) {
        if (*t == ';' || *t == '#')
            break;
        if (!isspace((unsigned char)*t)) {
            ini_fail(ps, BG_EINVAL, "text after the section header");
            return;
        }
    }
    const char *name = s + 1;
    size_t n = (size_t)(end - name);
    trim(&name, &n);
    char buf[128];
    if (n >= sizeof buf) {
        ini_fail(ps, BG_EINVAL, "unknown section [%s]", safe(name, sv));
        return;
    }
    memcpy(buf, name, n);
    buf[n] = '\0';
    char *arg = buf + strcspn(buf, " \t");
    bool has_arg = *arg != '\0';
    if (has_arg) {
        *arg++ = '\0';
        while (*arg == ' ' || *arg == '\t')
            arg++;
    }
    Baygate__Roster *m = ps->m;
    struct ini_item *item = NULL;
    if (strcmp(buf, "federation") == 0 && !has_arg) {
        if (ps->have_fed) {
            ini_fail(ps, BG_EINVAL, "[federation] given twice (first at line %u)",
                     (unsigned)ps->fed.line[K_NONE]);
            return;
        }
        ps->have_fed = true;
        ps->sect = SEC_FEDERATION;
        item = &ps->fed;
    } else if (strcmp(buf, "purpose") == 0 && has_arg) {
        if (!purpose_name_valid(arg)) {
            ini_fail(ps, BG_EINVAL,
                     "[purpose %s]: '%s' is not a purpose name (1-%d of a-z, 0-9, '-', '_', "
                     "starting with a letter)",
                     safe(arg, sv), sv, BG_ROSTER_PURPOSE_MAX);
            return;
        }
        if (m->n_purposes == BG_ROSTER_MAX_PURPOSES) {
            ini_fail(ps, BG_ELIMIT, "more than %d purposes", BG_ROSTER_MAX_PURPOSES);
            return;
        }
        Baygate__Purpose *p = malloc(sizeof *p);
        Baygate__Purpose **na = realloc(m->purposes, (m->n_purposes + 1) * sizeof *na);
        if (na != NULL)
            m->purposes = na;
        if (p == NULL || na == NULL || !grow_items(&ps->purp, m->n_purposes)) {
            free(p);
            ini_fail(ps, BG_ENOMEM, "out of memory");
            return;
        }
        baygate__purpose__init(p);
        m->purposes[m->n_purposes++] = p;
        ps->sect = SEC_PURPOSE;
        if ((p->name = strdup(arg)) == NULL)
            ini_fail(ps, BG_ENOMEM, "out of memory");
        item = &ps->purp[m->n_purposes - 1];
    } else if (strcmp(buf, "member") == 0 && has_arg) {
        if (!bg_city_code_valid(arg)) {
            ini_fail(ps, BG_EINVAL, "[member %s]: '%s' is not a 6-digit city code", safe(arg, sv),
                     sv);
            return;
        }
        if (m->n_members == BG_ROSTER_MAX_MEMBERS) {
            ini_fail(ps, BG_ELIMIT, "more than %d members", BG_ROSTER_MAX_MEMBERS);
            return;
        }
        Baygate__Member *mm = malloc(sizeof *mm);
        Baygate__Member **na = realloc(m->members, (m->n_members + 1) * sizeof *na);
        if (na != NULL)
            m->members = na;
        if (mm == NULL || na == NULL || !grow_items(&ps->mem, m->n_members)) {
            free(mm);
            ini_fail(ps, BG_ENOMEM, "out of memory");
            return;
        }
        baygate__member__init(mm);
        m->members[m->n_members++] = mm;
        ps->sect = SEC_MEMBER;
        if ((mm->city = strdup(arg)) == NULL)
            ini_fail(ps, BG_ENOMEM, "out of memory");
        item = &ps->mem[m->n_members - 1];
    } else if (strcmp(buf, "permission") == 0 && has_arg) {
        char *arrow = strstr(arg, "->");
        const char *a = arg, *b = arrow ? arrow + 2 : NULL;
        size_t an = arrow ? (size_t)(arrow - arg) : 0, bn = b ? strlen(b) : 0;
        if (arrow != NULL) {
            trim(&a, &an);
            trim(&b, &bn);
        }
        char ca[8] = "", cb[8] = "";
        if (arrow == NULL || an != BG_CITY_CODE_LEN || bn != BG_CITY_CODE_LEN ||
            !all_digits(a, an) || !all_digits(b, bn)) {
            ini_fail(ps, BG_EINVAL,
                     "[permission %s]: expected two 6-digit city codes, "
                     "[permission ASKER -> ANSWERER]",
                     safe(arg, sv));
            return;
        }
        memcpy(ca, a, an);
        memcpy(cb, b, bn);
        if (m->n_permissions == BG_ROSTER_MAX_PERMISSIONS) {
            ini_fail(ps, BG_ELIMIT, "more than %d permissions", BG_ROSTER_MAX_PERMISSIONS);
            return;
        }
        Baygate__Permission *p = malloc(sizeof *p);
        Baygate__Permission **na = realloc(m->permissions, (m->n_permissions + 1) * sizeof *na);
        if (na != NULL)
            m->permissions = na;
        if (p == NULL || na == NULL || !grow_items(&ps->perm, m->n_permissions)) {
            free(p);
            ini_fail(ps, BG_ENOMEM, "out of memory");
            return;
        }
        baygate__permission__init(p);
        m->permissions[m->n_permissions++] = p;
        ps->sect = SEC_PERMISSION;
        if ((p->asker = strdup(ca)) == NULL || (p->answerer = strdup(cb)) == NULL)
            ini_fail(ps, BG_ENOMEM, "out of memory");
        item = &ps->perm[m->n_permissions - 1];
    } else {
        snprintf(lab, sizeof lab, "%s%s%s", buf, has_arg ? " " : "", has_arg ? arg : "");
        ini_fail(ps, BG_EINVAL,
                 "unknown section [%s] (expected [federation], [purpose NAME], [member CODE] "
                 "or [permission ASKER -> ANSWERER])",
                 safe(lab, sv));
        return;
    }
    item->line[K_NONE] = (uint32_t)ps->line;
}

/* Sorts a raw line as inih will, before inih sees it. */
static void
ini_classify(struct ini *ps, const char *line)
{
    const char *s = line;
    if (ps->line == 1 && (unsigned char)s[0] == 0xEF && (unsigned char)s[1] == 0xBB &&
        (unsigned char)s[2] == 0xBF)
        s += 3;
    const char *start = s;
    while (isspace((unsigned char)*s))
        s++;
    ps->cont = false;
    if (*s == '\0' || *s == ';' || *s == '#')
        return;
    if (s > start && ps->prev_key) {
        ps->cont = true;
        return;
    }
    if (*s == '[') {
        ps->prev_key = false;
        ini_section(ps, s);
        return;
    }
    ps->prev_key = true;
}

/* An fgets for inih over the text, counting lines, refusing lines longer
 * than inih's buffer (it would split them) and stopping at our first error. */
static char *
ini_read_line(char *str, int num, void *stream)
{
    struct ini *ps = stream;
    if (ps->failed || ps->pos >= ps->len || num < 3)
        return NULL;
    const char *start = ps->text + ps->pos;
    const char *nl = memchr(start, '\n', ps->len - ps->pos);
    size_t n = nl ? (size_t)(nl - start) + 1 : ps->len - ps->pos;
    ps->line++;
    if (n > (size_t)num - 1) {
        ini_fail(ps, BG_ELIMIT,
                 "line longer than %d bytes (the ini reader's limit); continue a list on "
                 "indented lines",
                 num - 2);
        return NULL;
    }
    memcpy(str, start, n);
    str[n] = '\0';
    ps->pos += n;
    ini_classify(ps, str);
    return ps->failed ? NULL : str;
}

/* Calls add(ps, item, len) for each comma-separated item of v, trimmed. An
 * empty v has no items; a trailing comma is allowed, an empty item is not. */
static bool
split_list(struct ini *ps, const char *v, const char *lab, const char *key,
           bool (*add)(struct ini *, const char *, size_t, const char *, const char *))
{
    const char *p = v;
    size_t total = strlen(v);
    trim(&p, &total);
    if (total == 0)
        return true;
    const char *end = p + total;
    while (p < end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *stop = comma ? comma : end;
        const char *item = p;
        size_t n = (size_t)(stop - p);
        trim(&item, &n);
        if (n == 0) {
            ini_fail(ps, BG_EINVAL, "%s %s: empty item in the list", lab, key);
            return false;
        }
        if (!add(ps, item, n, lab, key))
            return false;
        p = comma ? comma + 1 : end;
        if (comma != NULL) {
            const char *rest = p;
            size_t rn = (size_t)(end - p);
            trim(&rest, &rn);
            if (rn == 0)
                break; /* a trailing comma */
        }
    }
    return true;
}

static bool
push_string(char ***arr, size_t *n, const char *s, size_t len)
{
    char **na = realloc(*arr, (*n + 1) * sizeof *na);
    if (na == NULL)
        return false;
    *arr = na;
    if ((na[*n] = dup_n(s, len)) == NULL)
        return false;
    (*n)++;
    return true;
}

static bool
add_member_list(struct ini *ps, const char *s, size_t n, const char *lab, const char *key)
{
    (void)lab, (void)key;
    Baygate__Member *mm = ps->m->members[ps->m->n_members - 1];
    if (!push_string(&mm->lists, &mm->n_lists, s, n)) {
        ini_fail(ps, BG_ENOMEM, "out of memory");
        return false;
    }
    return true;
}

static bool
add_perm_list(struct ini *ps, const char *s, size_t n, const char *lab, const char *key)
{
    (void)lab, (void)key;
    Baygate__Permission *p = ps->m->permissions[ps->m->n_permissions - 1];
    if (!push_string(&p->lists, &p->n_lists, s, n)) {
        ini_fail(ps, BG_ENOMEM, "out of memory");
        return false;
    }
    return true;
}

static bool
add_perm_purpose(struct ini *ps, const char *s, size_t n, const char *lab, const char *key)
{
    (void)lab, (void)key;
    Baygate__Permission *p = ps->m->permissions[ps->m->n_permissions - 1];
    if (!push_string(&p->purposes, &p->n_purposes, s, n)) {
        ini_fail(ps, BG_ENOMEM, "out of memory");
        return false;
    }
    return true;
}

/* Appends v to the member's raw grade_map text (resolved once the common
 * scale is known), dropping a trailing comma so continuations join cleanly. */
static bool
add_grade_raw(struct ini *ps, struct ini_item *item, const char *v)
{
    const char *p = v;
    size_t n = strlen(v);
    trim(&p, &n);
    while (n > 0 && (p[n - 1] == ',' || isspace((unsigned char)p[n - 1])))
        n--;
    if (n == 0)
        return true;
    size_t old = item->grade_raw ? strlen(item->grade_raw) : 0;
    char *s = realloc(item->grade_raw, old + n + 3);
    if (s == NULL) {
        ini_fail(ps, BG_ENOMEM, "out of memory");
        return false;
    }
    if (old > 0)
        memcpy(s + old, ", ", 2), old += 2;
    memcpy(s + old, p, n);
    s[old + n] = '\0';
    item->grade_raw = s;
    return true;
}

static bool
parse_hex_fp(const char *v, uint8_t out[BG_SIG_FP_LEN])
{
    if (strlen(v) != BG_SIG_FP_HEX_LEN)
        return false;
    for (size_t i = 0; i < BG_SIG_FP_LEN; i++) {
        unsigned x = 0;
        for (size_t j = 0; j < 2; j++) {
            char c = v[2 * i + j];
            unsigned d = c >= '0' && c <= '9'   ? (unsigned)(c - '0')
                         : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
                         : c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10)
                                                : 16u;
            if (d == 16)
                return false;
            x = x * 16 + d;
        }
        out[i] = (uint8_t)x;
    }
    return true;
}

/* certificate = PATH: the SHA-256 of the DER of a PEM certificate of this
 * member's city (and of the CA, if one is given). */
static bool
member_certificate(struct ini *ps, Baygate__Member *mm, const char *v, const char *lab,
                   uint8_t fp[BG_SIG_FP_LEN])
{
    char path[PATH_MAX];
    bg_err sub = {0};
    int n = v[0] == '/' ? snprintf(path, sizeof path, "%s", v)
                        : snprintf(path, sizeof path, "%s/%s", ps->base_dir, v);
    if (n < 0 || (size_t)n >= sizeof path) {
        ini_fail(ps, BG_ELIMIT, "%s certificate: path too long", lab);
        return false;
    }
    X509 *x = NULL;
    char city[BG_CITY_CODE_LEN + 1];
    bool ok = false;
    if (bg_pki_cert_load(path, &x, &sub) != BG_OK || bg_pki_cert_city(x, city, &sub) != BG_OK) {
        ini_fail(ps, sub.code, "%s certificate: %s", lab, sub.msg);
    } else if (strcmp(city, mm->city) != 0) {
        ini_fail(ps, BG_EINVAL, "%s certificate: %s is a certificate of %s, not of %s", lab, v,
                 city, mm->city);
    } else if (ps->ca != NULL && X509_verify(x, X509_get0_pubkey(ps->ca)) != 1) {
        ERR_clear_error();
        ini_fail(ps, BG_EINVAL, "%s certificate: %s was not issued by this federation CA", lab, v);
    } else if (bg_sig_fingerprint(x, fp, &sub) != BG_OK) {
        ini_fail(ps, sub.code, "%s certificate: %s", lab, sub.msg);
    } else {
        ok = true;
    }
    X509_free(x);
    return ok;
}

static bool
set_string(struct ini *ps, char **field, const char *v)
{
    if ((*field = strdup(v)) == NULL) {
        ini_fail(ps, BG_ENOMEM, "out of memory");
        return false;
    }
    return true;
}

/* Stores one value (or one continuation of a list) of key k. */
static bool
ini_value(struct ini *ps, const struct keydef *k, const char *v, const char *lab)
{
    Baygate__Roster *m = ps->m;
    Baygate__Member *mm = ps->sect == SEC_MEMBER ? m->members[m->n_members - 1] : NULL;
    Baygate__Permission *pp =
        ps->sect == SEC_PERMISSION ? m->permissions[m->n_permissions - 1] : NULL;
    bg_err sub = {0};
    uint64_t x = 0;
    if (!(k->flags & F_LIST) && v[0] == '\0') {
        ini_fail(ps, BG_EINVAL, "%s %s: needs a value", lab, k->name);
        return false;
    }
    switch (k->id) {
    case K_FED_NAME:
        return set_string(ps, &m->federation, v);
    case K_SERIAL:
        if (parse_u64(v, 1, UINT64_MAX, &x, &sub) != BG_OK)
            break;
        m->serial = x;
        return true;
    case K_MAXMSG:
        if (parse_u64(v, BG_ROSTER_MESSAGE_MIN, BG_ROSTER_MESSAGE_MAX, &x, &sub) != BG_OK)
            break;
        m->max_message_bytes = (uint32_t)x;
        return true;
    case K_COMMON:
        return set_string(ps, &m->common_scale, v);
    case K_NEEDS_AUTH:
        if (strcmp(v, "true") != 0 && strcmp(v, "false") != 0) {
            bg_err_set(&sub, BG_EINVAL, "expected true or false");
            break;
        }
        m->purposes[m->n_purposes - 1]->needs_authorisation = strcmp(v, "true") == 0;
        return true;
    case K_MEM_NAME:
        return set_string(ps, &mm->name, v);
    case K_ENDPOINT:
        return set_string(ps, &mm->endpoint, v);
    case K_SCALE:
        return set_string(ps, &mm->scale, v);
    case K_CERTIFICATE:
    case K_FINGERPRINT: {
        struct ini_item *item = ini_cur(ps);
        enum key other = k->id == K_CERTIFICATE ? K_FINGERPRINT : K_CERTIFICATE;
        if (item->line[other] != 0) {
            ini_fail(ps, BG_EINVAL, "%s: give certificate or fingerprint, not both", lab);
            return false;
        }
        uint8_t *fp = malloc(BG_SIG_FP_LEN);
        if (fp == NULL) {
            ini_fail(ps, BG_ENOMEM, "out of memory");
            return false;
        }
        mm->cert_sha256.data = fp;
        mm->cert_sha256.len = BG_SIG_FP_LEN;
        if (k->id == K_CERTIFICATE)
            return member_certificate(ps, mm, v, lab, fp);
        if (!parse_hex_fp(v, fp)) {
            bg_err_set(&sub, BG_EINVAL, "expected the certificate's SHA-256 as %d hex digits",
                       BG_SIG_FP_HEX_LEN);
            break;
        }
        return true;
    }
    case K_MEM_LISTS:
        return split_list(ps, v, lab, k->name, add_member_list);
    case K_GRADE_MAP:
        return add_grade_raw(ps, ini_cur(ps), v);
    case K_PURPOSES:
        return split_list(ps, v, lab, k->name, add_perm_purpose);
    case K_PERM_LISTS:
        return split_list(ps, v, lab, k->name, add_perm_list);
    case K_QUOTA:
        if (parse_u64(v, 1, BG_ROSTER_QUOTA_MAX, &x, &sub) != BG_OK)
            break;
        pp->quota_items_per_day = x;
        return true;
    case K_MIN_BATCH:
        if (parse_u64(v, 1, BG_ROSTER_BATCH_MAX, &x, &sub) != BG_OK)
            break;
        pp->min_count_batch = (uint32_t)x;
        return true;
    case K_NONE:
    case K_COUNT:
        break;
    }
    ini_fail(ps, sub.code ? sub.code : BG_EINVAL, "%s %s: %s", lab, k->name, sub.msg);
    return false;
}

/* inih leaves an inline comment on a continuation line: cut " ;..." off. */
static void
strip_comment(char *buf, size_t bufsz, const char *v)
{
    snprintf(buf, bufsz, "%s", v);
    for (char *p = buf; *p != '\0'; p++) {
        if (*p == ';' && p > buf && isspace((unsigned char)p[-1])) {
            *p = '\0';
            break;
        }
    }
    size_t n = strlen(buf);
    while (n > 0 && isspace((unsigned char)buf[n - 1]))
        buf[--n] = '\0';
}

static int
ini_on_value(void *user, const char *section, const char *name, const char *value)
{
    (void)section; /* ini_section already knows, and inih truncates long names */
    struct ini *ps = user;
    char lab[128], sv[SAFE_MAX];
    if (ps->failed)
        return 0;
    if (ps->sect == SEC_NONE) {
        ini_fail(ps, BG_EINVAL, "key '%s' outside any section", safe(name, sv));
        return 0;
    }
    ini_label(ps, lab, sizeof lab);
    struct ini_item *item = ini_cur(ps);
    if (ps->cont) {
        const struct keydef *k = keydef_of(ps->last_key);
        if (k == NULL || !(k->flags & F_LIST)) {
            ini_fail(ps, BG_EINVAL,
                     "%s: an indented line continues the value above, which only lists "
                     "(lists, purposes, grade_map) may do; do not indent keys",
                     lab);
            return 0;
        }
        char buf[256];
        strip_comment(buf, sizeof buf, value);
        return ini_value(ps, k, buf, lab) ? 1 : 0;
    }
    const struct keydef *k = keydef_find(ps->sect, name);
    if (k == NULL) {
        ini_fail(ps, BG_EINVAL, "unknown key '%s' in %s", safe(name, sv), lab);
        return 0;
    }
    if (item->line[k->id] != 0) {
        ini_fail(ps, BG_EINVAL, "%s %s given twice (first at line %u)", lab, k->name,
                 (unsigned)item->line[k->id]);
        return 0;
    }
    item->line[k->id] = (uint32_t)ps->line;
    ps->last_key = k->id;
    return ini_value(ps, k, value, lab) ? 1 : 0;
}

/* Every required key present, in section order. */
static bool
ini_check_required(struct ini *ps)
{
    char lab[128];
    if (!ps->have_fed) {
        ps->line = 0;
        ini_fail(ps, BG_EINVAL, "the [federation] section is missing");
        return false;
    }
    const struct {
        enum sect sect;
        size_t n;
        struct ini_item *items;
    } all[] = {
        {SEC_FEDERATION, 1, &ps->fed},
        {SEC_PURPOSE, ps->m->n_purposes, ps->purp},
        {SEC_MEMBER, ps->m->n_members, ps->mem},
        {SEC_PERMISSION, ps->m->n_permissions, ps->perm},
    };
    for (size_t s = 0; s < sizeof all / sizeof all[0]; s++) {
        for (size_t i = 0; i < all[s].n; i++) {
            const struct ini_item *it = &all[s].items[i];
            const Baygate__Roster *m = ps->m;
            switch (all[s].sect) {
            case SEC_PURPOSE:
                sect_label(lab, sizeof lab, SEC_PURPOSE, m->purposes[i]->name, NULL);
                break;
            case SEC_MEMBER:
                sect_label(lab, sizeof lab, SEC_MEMBER, m->members[i]->city, NULL);
                break;
            case SEC_PERMISSION:
                sect_label(lab, sizeof lab, SEC_PERMISSION, m->permissions[i]->asker,
                           m->permissions[i]->answerer);
                break;
            default:
                sect_label(lab, sizeof lab, all[s].sect, NULL, NULL);
                break;
            }
            ps->line = it->line[K_NONE];
            for (size_t k = 0; k < NKEYDEFS; k++) {
                if (keydefs[k].sect != all[s].sect || !(keydefs[k].flags & F_REQUIRED) ||
                    it->line[keydefs[k].id] != 0)
                    continue;
                ini_fail(ps, BG_EINVAL, "%s %s is required", lab, keydefs[k].name);
                return false;
            }
            if (all[s].sect == SEC_MEMBER && it->line[K_CERTIFICATE] == 0 &&
                it->line[K_FINGERPRINT] == 0) {
                ini_fail(ps, BG_EINVAL, "%s certificate (or fingerprint) is required", lab);
                return false;
            }
        }
    }
    return true;
}

/* Turns each member's "G:R, G:R" text into GradeMappings: R is a grade of
 * the common scale or a rank number. */
static bool
ini_grade_maps(struct ini *ps)
{
    char lab[128], sv[SAFE_MAX];
    bg_scale common;
    if (bg_scale_parse(ps->m->common_scale, &common, NULL) != BG_OK)
        return true; /* build() reports the common scale first */
    for (size_t i = 0; i < ps->m->n_members; i++) {
        Baygate__Member *mm = ps->m->members[i];
        const char *p = ps->mem[i].grade_raw;
        if (p == NULL)
            continue;
        sect_label(lab, sizeof lab, SEC_MEMBER, mm->city, NULL);
        ps->line = ps->mem[i].line[K_GRADE_MAP];
        while (*p != '\0') {
            const char *comma = strchr(p, ',');
            size_t n = comma ? (size_t)(comma - p) : strlen(p);
            const char *item = p;
            p = comma ? comma + 1 : p + n;
            trim(&item, &n);
            const char *colon = memchr(item, ':', n);
            char tok[64];
            snprintf(tok, sizeof tok, "%.*s", (int)(n < 63 ? n : 63), item);
            if (colon == NULL) {
                ini_fail(ps, BG_EINVAL, "%s grade_map: '%s' is not GRADE:RANK", lab, safe(tok, sv));
                return false;
            }
            const char *g = item, *c = colon + 1;
            size_t gn = (size_t)(colon - item), cn = n - gn - 1;
            trim(&g, &gn);
            trim(&c, &cn);
            int ci = bg_scale_index(&common, c, cn);
            uint64_t rank = 0;
            if (ci >= 0) {
                rank = (uint64_t)ci + 1;
            } else if (all_digits(c, cn) && cn <= 9) {
                for (size_t j = 0; j < cn; j++)
                    rank = rank * 10 + (uint64_t)(c[j] - '0');
            } else {
                ini_fail(ps, BG_EINVAL,
                         "%s grade_map: '%s' is neither a rank nor a grade of the common "
                         "scale %s",
                         lab, safe(tok, sv), common.name);
                return false;
            }
            Baygate__GradeMapping *gm = malloc(sizeof *gm);
            Baygate__GradeMapping **na = realloc(mm->grade_map, (mm->n_grade_map + 1) * sizeof *na);
            if (na != NULL)
                mm->grade_map = na;
            if (gm == NULL || na == NULL) {
                free(gm);
                ini_fail(ps, BG_ENOMEM, "out of memory");
                return false;
            }
            baygate__grade_mapping__init(gm);
            mm->grade_map[mm->n_grade_map++] = gm;
            if ((gm->grade = dup_n(g, gn)) == NULL) {
                ini_fail(ps, BG_ENOMEM, "out of memory");
                return false;
            }
            gm->common = (uint32_t)rank;
        }
    }
    return true;
}

static uint32_t
ini_where_line(const struct ini *ps, const struct where *w)
{
    const struct ini_item *it = NULL;
    switch (w->sect) {
    case SEC_FEDERATION:
        it = &ps->fed;
        break;
    case SEC_PURPOSE:
        it = w->index < ps->m->n_purposes ? &ps->purp[w->index] : NULL;
        break;
    case SEC_MEMBER:
        it = w->index < ps->m->n_members ? &ps->mem[w->index] : NULL;
        break;
    case SEC_PERMISSION:
        it = w->index < ps->m->n_permissions ? &ps->perm[w->index] : NULL;
        break;
    case SEC_NONE:
        break;
    }
    if (it == NULL)
        return 0;
    uint32_t line = it->line[w->key];
    if (line == 0 && w->key == K_FINGERPRINT)
        line = it->line[K_CERTIFICATE];
    return line != 0 ? line : it->line[K_NONE];
}

static void
ini_free(struct ini *ps)
{
    for (size_t i = 0; ps->mem != NULL && i < ps->m->n_members; i++)
        free(ps->mem[i].grade_raw);
    free(ps->purp);
    free(ps->mem);
    free(ps->perm);
    if (ps->m != NULL)
        protobuf_c_message_free_unpacked(&ps->m->base, NULL);
}

static int64_t
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
bg_roster_parse_ini_text(const char *text, size_t len, const char *base_dir, const char *name,
                         X509 *ca_cert, bg_roster **out, bg_err *err)
{
    *out = NULL;
    if (name == NULL)
        name = "roster.ini";
    if (len > BG_ROSTER_INI_MAX)
        return bg_err_set(err, BG_ELIMIT, "%s is larger than %d bytes", name, BG_ROSTER_INI_MAX);
    if (memchr(text, '\0', len) != NULL)
        return bg_err_set(err, BG_EINVAL, "%s holds a NUL byte; not a roster source", name);
    struct ini ps = {.name = name,
                     .base_dir = base_dir ? base_dir : ".",
                     .ca = ca_cert,
                     .text = text,
                     .len = len};
    ps.m = malloc(sizeof *ps.m);
    if (ps.m == NULL)
        return bg_err_set(err, BG_ENOMEM, "out of memory");
    baygate__roster__init(ps.m);

    int rc = BG_OK;
    int r = ini_parse_stream(ini_read_line, &ps, ini_on_value, &ps);
    /* The earlier of inih's first syntax error and ours. */
    if (r > 0 && (!ps.failed || (size_t)r < ps.err_line)) {
        rc = bg_err_set(err, BG_EINVAL, "%s:%d: expected 'key = value' or '[section]'", name, r);
        goto out;
    }
    if (r < 0 && !ps.failed) {
        rc = bg_err_set(err, BG_ENOMEM, "%s: the ini parser failed (%d)", name, r);
        goto out;
    }
    if (!ps.failed && ini_check_required(&ps))
        ini_grade_maps(&ps);
    if (ps.failed) {
        rc = ps.err_line ? bg_err_set(err, ps.sub.code, "%s:%zu: %s", name, ps.err_line, ps.sub.msg)
                         : bg_err_set(err, ps.sub.code, "%s: %s", name, ps.sub.msg);
        goto out;
    }
    ps.m->issued_at_ms = now_ms();

    size_t plen = baygate__roster__get_packed_size(ps.m);
    uint8_t *bytes = malloc(plen > 0 ? plen : 1);
    if (bytes == NULL) {
        rc = bg_err_set(err, BG_ENOMEM, "out of memory");
        goto out;
    }
    baygate__roster__pack(ps.m, bytes);
    struct where w = {SEC_NONE, 0, K_NONE};
    bg_err sub = {0};
    rc = build(ps.m, bytes, plen, out, &w, &sub);
    free(bytes);
    if (rc != BG_OK) {
        uint32_t line = ini_where_line(&ps, &w);
        if (line != 0)
            bg_err_set(err, rc, "%s:%u: %s", name, (unsigned)line, sub.msg);
        else
            bg_err_set(err, rc, "%s: %s", name, sub.msg);
    }
out:
    ini_free(&ps);
    return rc;
}

int
bg_roster_parse_ini(const char *path, X509 *ca_cert, bg_roster **out, bg_err *err)
{
    *out = NULL;
    uint8_t *text = NULL;
    size_t len = 0;
    int rc = bg_file_read(path, BG_ROSTER_INI_MAX, &text, &len, NULL, err);
    if (rc != BG_OK)
        return rc;
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (slash == NULL) {
        strcpy(dir, ".");
    } else if (slash == path) {
        strcpy(dir, "/");
    } else if ((size_t)(slash - path) < sizeof dir) {
        memcpy(dir, path, (size_t)(slash - path));
        dir[slash - path] = '\0';
    } else {
        free(text);
        return bg_err_set(err, BG_ELIMIT, "path %s is too long", path);
    }
    rc = bg_roster_parse_ini_text((const char *)text, len, dir, path, ca_cert, out, err);
    free(text);
    return rc;
}

/* --- the signed form --- */

/* Unpacks and checks a SignedRoster, verifying against ca_cert unless it is
 * NULL; on success *out holds the bg_roster. */
static int
open_signed(const void *bytes, size_t len, X509 *ca_cert, bg_roster **out,
            uint8_t claimed_ca[BG_SIG_FP_LEN], bg_err *err)
{
    *out = NULL;
    if (bytes == NULL || len == 0)
        return bg_err_set(err, BG_EPROTO, "not a signed roster: empty");
    if (len > BG_ROSTER_FILE_MAX)
        return bg_err_set(err, BG_ELIMIT, "signed roster is %zu bytes, more than the %d accepted",
                          len, BG_ROSTER_FILE_MAX);
    Baygate__SignedRoster *sr = bg_pb_unpack(&baygate__signed_roster__descriptor, len, bytes);
    if (sr == NULL)
        return bg_err_set(err, BG_EPROTO, "not a signed roster (malformed protobuf)");
    int rc = BG_OK;
    Baygate__Roster *m = NULL;
    if (sr->base.n_unknown_fields != 0) {
        rc = bg_err_set(err, BG_EPROTO, "not a signed roster: it has fields no roster has");
        goto out;
    }
    if (sr->roster.len == 0) {
        rc = bg_err_set(err, BG_EPROTO, "not a signed roster: it holds no roster");
        goto out;
    }
    if (sr->ca_cert_sha256.len != BG_SIG_FP_LEN) {
        rc = bg_err_set(err, BG_EPROTO,
                        "not a signed roster: the CA fingerprint is %zu bytes, not %d",
                        sr->ca_cert_sha256.len, BG_SIG_FP_LEN);
        goto out;
    }
    if (claimed_ca != NULL)
        memcpy(claimed_ca, sr->ca_cert_sha256.data, BG_SIG_FP_LEN);
    if (ca_cert != NULL) {
        uint8_t fp[BG_SIG_FP_LEN];
        char want[BG_SIG_FP_HEX_LEN + 1], got[BG_SIG_FP_HEX_LEN + 1];
        if ((rc = bg_sig_fingerprint(ca_cert, fp, err)) != BG_OK)
            goto out;
        if (memcmp(fp, sr->ca_cert_sha256.data, BG_SIG_FP_LEN) != 0) {
            bg_sig_fp_hex(sr->ca_cert_sha256.data, got);
            bg_sig_fp_hex(fp, want);
            rc = bg_err_set(err, BG_ECRYPTO,
                            "roster was signed by CA sha256 %.16s..., not by this CA (sha256 "
                            "%.16s...)",
                            got, want);
            goto out;
        }
        if (sr->signature.len == 0) {
            rc = bg_err_set(err, BG_ECRYPTO, "roster is not signed");
            goto out;
        }
        bg_err sub = {0};
        if (bg_sig_verify_cert(ca_cert, BG_SIG_CTX_ROSTER, sr->roster.data, sr->roster.len,
                               sr->signature.data, sr->signature.len, &sub) != BG_OK) {
            rc = bg_err_set(err, BG_ECRYPTO, "roster signature does not verify (%s)", sub.msg);
            goto out;
        }
    }
    /* Only now, with the bytes known to come from the CA, look inside. */
    m = bg_pb_unpack(&baygate__roster__descriptor, sr->roster.len, sr->roster.data);
    if (m == NULL) {
        rc = bg_err_set(err, BG_EPROTO,
                        "roster content is malformed protobuf (or needs more than %zu bytes "
                        "of memory)",
                        bg_pb_budget(sr->roster.len));
        goto out;
    }
    bg_err sub = {0};
    if ((rc = build(m, sr->roster.data, sr->roster.len, out, NULL, &sub)) != BG_OK)
        bg_err_set(err, rc, "invalid roster: %s", sub.msg);
out:
    if (m != NULL)
        bg_pb_free(m);
    bg_pb_free(sr);
    return rc;
}

int
bg_roster_open(const void *bytes, size_t len, X509 *ca_cert, uint64_t min_serial,
               const bg_roster *in_use, bg_roster **out, bool *unchanged, bg_err *err)
{
    *out = NULL;
    if (unchanged != NULL)
        *unchanged = false;
    if (ca_cert == NULL)
        return bg_err_set(err, BG_EINVAL, "opening a roster needs the CA certificate");
    bg_roster *r = NULL;
    int rc = open_signed(bytes, len, ca_cert, &r, NULL, err);
    if (rc != BG_OK)
        return rc;
    uint64_t floor = min_serial;
    if (in_use != NULL && in_use->serial > floor)
        floor = in_use->serial;
    if (r->serial < floor) {
        rc = bg_err_set(err, BG_EEXIST, "roster serial %llu is older than the %llu in use",
                        (unsigned long long)r->serial, (unsigned long long)floor);
    } else if (in_use != NULL && r->serial == in_use->serial) {
        if (r->len == in_use->len && memcmp(r->bytes, in_use->bytes, r->len) == 0) {
            if (unchanged != NULL)
                *unchanged = true;
        } else {
            rc = bg_err_set(err, BG_EEXIST,
                            "roster serial %llu is the one in use, but its content differs: a "
                            "changed roster needs a new serial",
                            (unsigned long long)r->serial);
        }
    }
    if (rc != BG_OK) {
        bg_roster_free(r);
        return rc;
    }
    *out = r;
    return BG_OK;
}

int
bg_roster_inspect(const void *bytes, size_t len, bg_roster **out, uint8_t ca_sha256[BG_SIG_FP_LEN],
                  bg_err *err)
{
    return open_signed(bytes, len, NULL, out, ca_sha256, err);
}

int
bg_roster_sign(const bg_roster *r, EVP_PKEY *ca_key, X509 *ca_cert, uint8_t **out, size_t *len,
               bg_err *err)
{
    *out = NULL;
    *len = 0;
    if (ca_key == NULL || ca_cert == NULL)
        return bg_err_set(err, BG_EINVAL, "signing a roster needs the CA key and certificate");
    if (X509_check_private_key(ca_cert, ca_key) != 1) {
        ERR_clear_error();
        return bg_err_set(err, BG_EINVAL, "the CA key does not belong to the CA certificate");
    }
    uint8_t fp[BG_SIG_FP_LEN], sig[BG_SIG_MAX];
    size_t siglen = 0;
    int rc;
    if ((rc = bg_sig_fingerprint(ca_cert, fp, err)) != BG_OK ||
        (rc = bg_sig_sign(ca_key, BG_SIG_CTX_ROSTER, r->bytes, r->len, sig, &siglen, err)) != BG_OK)
        return rc;
    Baygate__SignedRoster sr = BAYGATE__SIGNED_ROSTER__INIT;
    sr.roster.data = r->bytes;
    sr.roster.len = r->len;
    sr.signature.data = sig;
    sr.signature.len = siglen;
    sr.ca_cert_sha256.data = fp;
    sr.ca_cert_sha256.len = sizeof fp;
    size_t n = baygate__signed_roster__get_packed_size(&sr);
    if (n > BG_ROSTER_FILE_MAX)
        return bg_err_set(err, BG_ELIMIT,
                          "signed roster would be %zu bytes, more than the %d "
                          "a gateway accepts",
                          n, BG_ROSTER_FILE_MAX);
    uint8_t *buf = malloc(n);
    if (buf == NULL)
        return bg_err_set(err, BG_ENOMEM, "out of memory");
    baygate__signed_roster__pack(&sr, buf);
    *out = buf;
    *len = n;
    return BG_OK;
}

int
bg_roster_read_file(const char *path, uint8_t **bytes, size_t *len, bg_err *err)
{
    return bg_file_read(path, BG_ROSTER_FILE_MAX, bytes, len, NULL, err);
}

int
bg_roster_write_file(const char *path, const uint8_t *bytes, size_t len, bg_err *err)
{
    return bg_file_write_replace(path, bytes, len, 0644, err);
}

int
bg_roster_load_file(const char *path, X509 *ca_cert, uint64_t min_serial, const bg_roster *in_use,
                    bg_roster **out, bool *unchanged, bg_err *err)
{
    *out = NULL;
    if (unchanged != NULL)
        *unchanged = false;
    uint8_t *bytes = NULL;
    size_t len = 0;
    int rc = bg_roster_read_file(path, &bytes, &len, err);
    if (rc != BG_OK)
        return rc;
    bg_err sub = {0};
    rc = bg_roster_open(bytes, len, ca_cert, min_serial, in_use, out, unchanged, &sub);
    free(bytes);
    if (rc != BG_OK)
        return bg_err_set(err, rc, "%s: %s", path, sub.msg);
    return BG_OK;
}
