/*
 * roster_check.c - a Roster message to a checked, immutable bg_roster (see
 * roster_int.h).
 *
 * One validator for both ways in: the INI source is first turned into the
 * wire message exactly as it will be signed (roster_ini.c), and then both
 * that and a received roster come here. Problems are reported with where
 * they are (section and key) so the INI path can name a line of the file.
 */
#include "peers/roster_int.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>

#include "common/num.h"

const struct bg_roster_keydef bg_roster_keydefs[] = {
    {ROSTER_SEC_FEDERATION, "name", ROSTER_K_FED_NAME, ROSTER_F_REQUIRED},
    {ROSTER_SEC_FEDERATION, "serial", ROSTER_K_SERIAL, ROSTER_F_REQUIRED},
    {ROSTER_SEC_FEDERATION, "max_message_bytes", ROSTER_K_MAXMSG, ROSTER_F_REQUIRED},
    {ROSTER_SEC_FEDERATION, "common_scale", ROSTER_K_COMMON, ROSTER_F_REQUIRED},
    {ROSTER_SEC_PURPOSE, "needs_authorisation", ROSTER_K_NEEDS_AUTH, ROSTER_F_REQUIRED},
    {ROSTER_SEC_MEMBER, "name", ROSTER_K_MEM_NAME, ROSTER_F_REQUIRED},
    {ROSTER_SEC_MEMBER, "endpoint", ROSTER_K_ENDPOINT, ROSTER_F_REQUIRED},
    {ROSTER_SEC_MEMBER, "certificate", ROSTER_K_CERTIFICATE, 0},
    {ROSTER_SEC_MEMBER, "fingerprint", ROSTER_K_FINGERPRINT, 0},
    {ROSTER_SEC_MEMBER, "next_certificate", ROSTER_K_NEXT_CERTIFICATE, 0},
    {ROSTER_SEC_MEMBER, "next_fingerprint", ROSTER_K_NEXT_FINGERPRINT, 0},
    {ROSTER_SEC_MEMBER, "lists", ROSTER_K_MEM_LISTS, ROSTER_F_REQUIRED | ROSTER_F_LIST},
    {ROSTER_SEC_MEMBER, "scale", ROSTER_K_SCALE, ROSTER_F_REQUIRED},
    {ROSTER_SEC_MEMBER, "grade_map", ROSTER_K_GRADE_MAP, ROSTER_F_REQUIRED | ROSTER_F_LIST},
    {ROSTER_SEC_PERMISSION, "purposes", ROSTER_K_PURPOSES, ROSTER_F_REQUIRED | ROSTER_F_LIST},
    {ROSTER_SEC_PERMISSION, "lists", ROSTER_K_PERM_LISTS, ROSTER_F_REQUIRED | ROSTER_F_LIST},
    {ROSTER_SEC_PERMISSION, "quota_items_per_day", ROSTER_K_QUOTA, ROSTER_F_REQUIRED},
    {ROSTER_SEC_PERMISSION, "min_count_batch", ROSTER_K_MIN_BATCH, ROSTER_F_REQUIRED},
};

const size_t bg_roster_nkeydefs = sizeof bg_roster_keydefs / sizeof bg_roster_keydefs[0];

const struct bg_roster_keydef *
bg_roster_keydef_of(enum bg_roster_key id)
{
    for (size_t i = 0; i < bg_roster_nkeydefs; i++)
        if (bg_roster_keydefs[i].id == id)
            return &bg_roster_keydefs[i];
    return NULL;
}

void
bg_roster_sect_label(char *out, size_t outsz, enum bg_roster_sect s, const char *a, const char *b)
{
    char sa[BG_ROSTER_SAFE_MAX], sb[BG_ROSTER_SAFE_MAX];
    switch (s) {
    case ROSTER_SEC_FEDERATION:
        snprintf(out, outsz, "[federation]");
        break;
    case ROSTER_SEC_PURPOSE:
        snprintf(out, outsz, "[purpose %s]", bg_roster_safe(a, sa));
        break;
    case ROSTER_SEC_MEMBER:
        snprintf(out, outsz, "[member %s]", bg_roster_safe(a, sa));
        break;
    case ROSTER_SEC_PERMISSION:
        snprintf(out, outsz, "[permission %s -> %s]", bg_roster_safe(a, sa), bg_roster_safe(b, sb));
        break;
    case ROSTER_SEC_NONE:
        snprintf(out, outsz, "roster");
        break;
    }
}

static int fail_where(struct bg_roster_where *w, enum bg_roster_sect s, size_t i,
                      enum bg_roster_key k, const char *label, bg_err *err, int code,
                      const char *fmt, ...) __attribute__((format(printf, 8, 9)));

/* Records where and sets err to "LABEL KEY: message" (or "LABEL message"). */
static int
fail_where(struct bg_roster_where *w, enum bg_roster_sect s, size_t i, enum bg_roster_key k,
           const char *label, bg_err *err, int code, const char *fmt, ...)
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
    const struct bg_roster_keydef *kd = bg_roster_keydef_of(k);
    if (kd != NULL)
        return bg_err_set(err, code, "%s %s: %s", label, kd->name, msg);
    return bg_err_set(err, code, "%s %s", label, msg);
}

bool
bg_roster_purpose_name_valid(const char *s)
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

bool
bg_roster_all_digits(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

/* tls+tcp://HOST:PORT: HOST a DNS name or IPv4 address ([A-Za-z0-9.-]) or a
 * bracketed IPv6 address, PORT 1-65535. */
static int
check_endpoint(const char *v, bg_err *err)
{
    static const char scheme[] = "tls+tcp://";
    char sv[BG_ROSTER_SAFE_MAX];
    size_t len = strnlen(v, BG_ROSTER_ENDPOINT_MAX + 1);
    if (len > BG_ROSTER_ENDPOINT_MAX)
        return bg_err_set(err, BG_EINVAL, "longer than %d bytes", BG_ROSTER_ENDPOINT_MAX);
    if (strncmp(v, scheme, sizeof scheme - 1) != 0)
        return bg_err_set(err, BG_EINVAL, "'%s' is not a tls+tcp:// address",
                          bg_roster_safe(v, sv));
    const char *host = v + sizeof scheme - 1;
    const char *colon = strrchr(host, ':');
    uint64_t port = 0;
    if (colon == NULL || colon == host || bg_num_u64(colon + 1, 1, 65535, &port, NULL) != BG_OK ||
        colon[1] == '0')
        return bg_err_set(err, BG_EINVAL,
                          "'%s' needs a host and a port 1-65535 (tls+tcp://HOST:PORT)",
                          bg_roster_safe(v, sv));
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
                          "'%s': the host must be a name, an IPv4 address or [IPv6]",
                          bg_roster_safe(v, sv));
    return BG_OK;
}

static bool
name_fits(const char *s, size_t max)
{
    return strnlen(s, max + 1) <= max;
}

static int
build_federation(const Baygate__Roster *m, bg_roster *r, struct bg_roster_where *w, bg_err *err)
{
    const char *lab = "[federation]";
    bg_err sub = {0};
    if (m->serial < 1)
        return fail_where(w, ROSTER_SEC_FEDERATION, 0, ROSTER_K_SERIAL, lab, err, BG_EINVAL,
                          "must be at least 1");
    r->serial = m->serial;
    if (!bg_pki_name_valid(m->federation))
        return fail_where(w, ROSTER_SEC_FEDERATION, 0, ROSTER_K_FED_NAME, lab, err, BG_EINVAL,
                          "must be 1-%d bytes of UTF-8 without control characters or "
                          "surrounding blanks",
                          BG_PKI_NAME_MAX);
    strcpy(r->federation, m->federation);
    if (m->max_message_bytes < BG_ROSTER_MESSAGE_MIN ||
        m->max_message_bytes > BG_ROSTER_MESSAGE_MAX)
        return fail_where(w, ROSTER_SEC_FEDERATION, 0, ROSTER_K_MAXMSG, lab, err, BG_EINVAL,
                          "%u is out of range %u-%u (at least one PSI chunk answer with "
                          "its signature; at most what a gateway receives)",
                          (unsigned)m->max_message_bytes, BG_ROSTER_MESSAGE_MIN,
                          BG_ROSTER_MESSAGE_MAX);
    r->max_message_bytes = m->max_message_bytes;
    if (m->issued_at_ms <= 0)
        return fail_where(w, ROSTER_SEC_FEDERATION, 0, ROSTER_K_NONE, lab, err, BG_EINVAL,
                          "issued_at_ms %lld is not a time", (long long)m->issued_at_ms);
    r->issued_at_ms = m->issued_at_ms;
    if (!name_fits(m->common_scale, 512) || bg_scale_parse(m->common_scale, &r->common, &sub))
        return fail_where(w, ROSTER_SEC_FEDERATION, 0, ROSTER_K_COMMON, lab, err, BG_EINVAL, "%s",
                          sub.msg[0] ? sub.msg : "too long");
    /* A grade of the common scale that is a number must be its own rank, so
     * that "A:2" in a grade_map cannot mean two different things. */
    for (size_t g = 0; g < r->common.ngrades; g++) {
        const char *cg = r->common.grades[g];
        uint64_t rank = 0;
        if (bg_num_u64(cg, 0, UINT64_MAX, &rank, NULL) == BG_OK && rank != g + 1)
            return fail_where(w, ROSTER_SEC_FEDERATION, 0, ROSTER_K_COMMON, lab, err, BG_EINVAL,
                              "grade '%s' is a number other than its rank %zu; number grades "
                              "must count 1,2,3... from the best",
                              cg, g + 1);
    }
    if (m->n_members < 1 || m->n_members > BG_ROSTER_MAX_MEMBERS)
        return fail_where(w, ROSTER_SEC_NONE, 0, ROSTER_K_NONE, "roster", err, BG_EINVAL,
                          "has %zu members; it needs 1 to %d", m->n_members, BG_ROSTER_MAX_MEMBERS);
    if (m->n_purposes > BG_ROSTER_MAX_PURPOSES)
        return fail_where(w, ROSTER_SEC_NONE, 0, ROSTER_K_NONE, "roster", err, BG_EINVAL,
                          "has %zu purposes; at most %d are allowed", m->n_purposes,
                          BG_ROSTER_MAX_PURPOSES);
    if (m->n_permissions > BG_ROSTER_MAX_PERMISSIONS)
        return fail_where(w, ROSTER_SEC_NONE, 0, ROSTER_K_NONE, "roster", err, BG_EINVAL,
                          "has %zu permissions; at most %d (one per ordered pair of members)",
                          m->n_permissions, BG_ROSTER_MAX_PERMISSIONS);
    return BG_OK;
}

static int
build_purposes(const Baygate__Roster *m, bg_roster *r, struct bg_roster_where *w, bg_err *err)
{
    char lab[128];
    for (size_t i = 0; i < m->n_purposes; i++) {
        const Baygate__Purpose *p = m->purposes[i];
        bg_roster_sect_label(lab, sizeof lab, ROSTER_SEC_PURPOSE, p->name, NULL);
        if (!bg_roster_purpose_name_valid(p->name))
            return fail_where(w, ROSTER_SEC_PURPOSE, i, ROSTER_K_NONE, lab, err, BG_EINVAL,
                              "is not a purpose name (1-%d of a-z, 0-9, '-', '_', starting "
                              "with a letter)",
                              BG_ROSTER_PURPOSE_MAX);
        for (size_t j = 0; j < i; j++)
            if (strcmp(r->purposes[j].name, p->name) == 0)
                return fail_where(w, ROSTER_SEC_PURPOSE, i, ROSTER_K_NONE, lab, err, BG_EINVAL,
                                  "appears twice");
        strcpy(r->purposes[i].name, p->name);
        r->purposes[i].needs_authorisation = p->needs_authorisation != 0;
    }
    r->npurposes = m->n_purposes;
    return BG_OK;
}

/* Fills lists[] from names; refuses unknown and repeated names. */
static int
build_lists(char *const *names, size_t n, bool lists[BG_LIST_COUNT], enum bg_roster_sect s,
            size_t i, enum bg_roster_key k, const char *lab, struct bg_roster_where *w, bg_err *err)
{
    char sv[BG_ROSTER_SAFE_MAX];
    for (size_t j = 0; j < n; j++) {
        int li = bg_list_index(names[j], strlen(names[j]));
        if (li < 0)
            return fail_where(w, s, i, k, lab, err, BG_EINVAL, "unknown list '%s' (known: %s, %s)",
                              bg_roster_safe(names[j], sv), bg_list_names[0], bg_list_names[1]);
        if (lists[li])
            return fail_where(w, s, i, k, lab, err, BG_EINVAL, "list %s given twice",
                              bg_list_names[li]);
        lists[li] = true;
    }
    return BG_OK;
}

static int
build_grade_map(const Baygate__Member *mm, bg_roster_member *rm, const bg_scale *common, size_t i,
                const char *lab, struct bg_roster_where *w, bg_err *err)
{
    char sv[BG_ROSTER_SAFE_MAX];
    bool seen[BG_SCALE_MAX_GRADES] = {false};
    for (size_t j = 0; j < mm->n_grade_map; j++) {
        const Baygate__GradeMapping *gm = mm->grade_map[j];
        int g = bg_scale_index(&rm->scale, gm->grade, strnlen(gm->grade, BG_GRADE_MAX + 1));
        if (g < 0 || strlen(gm->grade) > BG_GRADE_MAX)
            return fail_where(w, ROSTER_SEC_MEMBER, i, ROSTER_K_GRADE_MAP, lab, err, BG_EINVAL,
                              "grade '%s' is not in scale %s", bg_roster_safe(gm->grade, sv),
                              rm->scale.name);
        if (seen[g])
            return fail_where(w, ROSTER_SEC_MEMBER, i, ROSTER_K_GRADE_MAP, lab, err, BG_EINVAL,
                              "grade %s is mapped twice", rm->scale.grades[g]);
        if (gm->common < 1 || gm->common > common->ngrades)
            return fail_where(w, ROSTER_SEC_MEMBER, i, ROSTER_K_GRADE_MAP, lab, err, BG_EINVAL,
                              "grade %s: rank %u is outside the common scale %s (1-%zu)",
                              rm->scale.grades[g], (unsigned)gm->common, common->name,
                              common->ngrades);
        seen[g] = true;
        rm->common[g] = gm->common;
    }
    for (size_t g = 0; g < rm->scale.ngrades; g++)
        if (!seen[g])
            return fail_where(w, ROSTER_SEC_MEMBER, i, ROSTER_K_GRADE_MAP, lab, err, BG_EINVAL,
                              "grade %s of scale %s is not mapped", rm->scale.grades[g],
                              rm->scale.name);
    for (size_t g = 1; g < rm->scale.ngrades; g++)
        if (rm->common[g] < rm->common[g - 1])
            return fail_where(w, ROSTER_SEC_MEMBER, i, ROSTER_K_GRADE_MAP, lab, err, BG_EINVAL,
                              "grade %s maps to common rank %u, better than the better grade "
                              "%s's %u",
                              rm->scale.grades[g], (unsigned)rm->common[g], rm->scale.grades[g - 1],
                              (unsigned)rm->common[g - 1]);
    return BG_OK;
}

/* Is fp one of the certificates m pins? */
static bool
pinned_by(const bg_roster_member *m, const uint8_t fp[BG_SIG_FP_LEN])
{
    return memcmp(m->cert_sha256, fp, BG_SIG_FP_LEN) == 0 ||
           (m->has_next && memcmp(m->next_sha256, fp, BG_SIG_FP_LEN) == 0);
}

/* Member i's pinned certificates: the current one and, during a rotation, the next
 * (not the current one). No certificate is pinned by two members. */
static int
build_pins(const Baygate__Member *mm, bg_roster *r, size_t i, const char *lab,
           struct bg_roster_where *w, bg_err *err)
{
    bg_roster_member *rm = &r->members[i];
    if (mm->cert_sha256.len != BG_SIG_FP_LEN)
        return fail_where(w, ROSTER_SEC_MEMBER, i, ROSTER_K_FINGERPRINT, lab, err, BG_EINVAL,
                          "the certificate fingerprint is %zu bytes, not a SHA-256 (%d)",
                          mm->cert_sha256.len, BG_SIG_FP_LEN);
    memcpy(rm->cert_sha256, mm->cert_sha256.data, BG_SIG_FP_LEN);
    if (mm->next_cert_sha256.len != 0 && mm->next_cert_sha256.len != BG_SIG_FP_LEN)
        return fail_where(w, ROSTER_SEC_MEMBER, i, ROSTER_K_NEXT_FINGERPRINT, lab, err, BG_EINVAL,
                          "the next certificate fingerprint is %zu bytes, not a SHA-256 (%d)",
                          mm->next_cert_sha256.len, BG_SIG_FP_LEN);
    rm->has_next = mm->next_cert_sha256.len == BG_SIG_FP_LEN;
    if (rm->has_next) {
        memcpy(rm->next_sha256, mm->next_cert_sha256.data, BG_SIG_FP_LEN);
        if (memcmp(rm->next_sha256, rm->cert_sha256, BG_SIG_FP_LEN) == 0)
            return fail_where(w, ROSTER_SEC_MEMBER, i, ROSTER_K_NEXT_FINGERPRINT, lab, err,
                              BG_EINVAL, "the next certificate is the current one");
    }
    for (size_t j = 0; j < i; j++) {
        if (pinned_by(&r->members[j], rm->cert_sha256))
            return fail_where(w, ROSTER_SEC_MEMBER, i, ROSTER_K_FINGERPRINT, lab, err, BG_EINVAL,
                              "same certificate as member %s", r->members[j].city);
        if (rm->has_next && pinned_by(&r->members[j], rm->next_sha256))
            return fail_where(w, ROSTER_SEC_MEMBER, i, ROSTER_K_NEXT_FINGERPRINT, lab, err,
                              BG_EINVAL, "next certificate is also pinned by member %s",
                              r->members[j].city);
    }
    return BG_OK;
}

static int
build_members(const Baygate__Roster *m, bg_roster *r, struct bg_roster_where *w, bg_err *err)
{
    char lab[128];
    bg_err sub = {0};
    for (size_t i = 0; i < m->n_members; i++) {
        const Baygate__Member *mm = m->members[i];
        bg_roster_member *rm = &r->members[i];
        bg_roster_sect_label(lab, sizeof lab, ROSTER_SEC_MEMBER, mm->city, NULL);
        if (!bg_city_code_valid(mm->city))
            return fail_where(w, ROSTER_SEC_MEMBER, i, ROSTER_K_NONE, lab, err, BG_EINVAL,
                              "is not a 6-digit city code");
        for (size_t j = 0; j < i; j++)
            if (strcmp(r->members[j].city, mm->city) == 0)
                return fail_where(w, ROSTER_SEC_MEMBER, i, ROSTER_K_NONE, lab, err, BG_EINVAL,
                                  "appears twice");
        strcpy(rm->city, mm->city);
        if (!bg_pki_name_valid(mm->name))
            return fail_where(w, ROSTER_SEC_MEMBER, i, ROSTER_K_MEM_NAME, lab, err, BG_EINVAL,
                              "must be 1-%d bytes of UTF-8 without control characters or "
                              "surrounding blanks",
                              BG_PKI_NAME_MAX);
        strcpy(rm->name, mm->name);
        if (check_endpoint(mm->endpoint, &sub) != BG_OK)
            return fail_where(w, ROSTER_SEC_MEMBER, i, ROSTER_K_ENDPOINT, lab, err, BG_EINVAL, "%s",
                              sub.msg);
        for (size_t j = 0; j < i; j++)
            if (strcmp(r->members[j].endpoint, mm->endpoint) == 0)
                return fail_where(w, ROSTER_SEC_MEMBER, i, ROSTER_K_ENDPOINT, lab, err, BG_EINVAL,
                                  "%s is also the endpoint of member %s", mm->endpoint,
                                  r->members[j].city);
        strcpy(rm->endpoint, mm->endpoint);
        int rc = build_pins(mm, r, i, lab, w, err);
        if (rc != BG_OK)
            return rc;
        rc = build_lists(mm->lists, mm->n_lists, rm->lists, ROSTER_SEC_MEMBER, i,
                         ROSTER_K_MEM_LISTS, lab, w, err);
        if (rc != BG_OK)
            return rc;
        if (!name_fits(mm->scale, 512) || bg_scale_parse(mm->scale, &rm->scale, &sub) != BG_OK)
            return fail_where(w, ROSTER_SEC_MEMBER, i, ROSTER_K_SCALE, lab, err, BG_EINVAL, "%s",
                              sub.msg[0] ? sub.msg : "too long");
        if ((rc = build_grade_map(mm, rm, &r->common, i, lab, w, err)) != BG_OK)
            return rc;
    }
    r->nmembers = m->n_members;
    return BG_OK;
}

static int
build_permissions(const Baygate__Roster *m, bg_roster *r, struct bg_roster_where *w, bg_err *err)
{
    char lab[128], sv[BG_ROSTER_SAFE_MAX];
    if (m->n_permissions > 0) {
        r->permissions = calloc(m->n_permissions, sizeof *r->permissions);
        if (r->permissions == NULL)
            return bg_err_set(err, BG_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < m->n_permissions; i++) {
        const Baygate__Permission *p = m->permissions[i];
        bg_roster_perm *rp = &r->permissions[i];
        bg_roster_sect_label(lab, sizeof lab, ROSTER_SEC_PERMISSION, p->asker, p->answerer);
        if (!bg_city_code_valid(p->asker) || !bg_city_code_valid(p->answerer))
            return fail_where(w, ROSTER_SEC_PERMISSION, i, ROSTER_K_NONE, lab, err, BG_EINVAL,
                              "needs two 6-digit city codes: [permission ASKER -> ANSWERER]");
        if (strcmp(p->asker, p->answerer) == 0)
            return fail_where(w, ROSTER_SEC_PERMISSION, i, ROSTER_K_NONE, lab, err, BG_EINVAL,
                              "asker and answerer are the same city");
        int a = bg_roster_member_index(r, p->asker), b = bg_roster_member_index(r, p->answerer);
        if (a < 0 || b < 0)
            return fail_where(w, ROSTER_SEC_PERMISSION, i, ROSTER_K_NONE, lab, err, BG_EINVAL,
                              "%s %s is not a member (no [member %s] section)",
                              a < 0 ? "asker" : "answerer", a < 0 ? p->asker : p->answerer,
                              a < 0 ? p->asker : p->answerer);
        if (r->perm_index[a][b] >= 0)
            return fail_where(w, ROSTER_SEC_PERMISSION, i, ROSTER_K_NONE, lab, err, BG_EINVAL,
                              "appears twice");
        strcpy(rp->asker, p->asker);
        strcpy(rp->answerer, p->answerer);
        if (p->n_purposes == 0)
            return fail_where(w, ROSTER_SEC_PERMISSION, i, ROSTER_K_PURPOSES, lab, err, BG_EINVAL,
                              "needs at least one purpose");
        for (size_t j = 0; j < p->n_purposes; j++) {
            int pi = bg_roster_purpose_index(r, p->purposes[j]);
            if (pi < 0)
                return fail_where(w, ROSTER_SEC_PERMISSION, i, ROSTER_K_PURPOSES, lab, err,
                                  BG_EINVAL,
                                  "purpose '%s' is not declared (no [purpose %s] section)",
                                  bg_roster_safe(p->purposes[j], sv), sv);
            if (rp->purposes & (1u << pi))
                return fail_where(w, ROSTER_SEC_PERMISSION, i, ROSTER_K_PURPOSES, lab, err,
                                  BG_EINVAL, "purpose %s given twice", r->purposes[pi].name);
            rp->purposes |= 1u << pi;
        }
        if (p->n_lists == 0)
            return fail_where(w, ROSTER_SEC_PERMISSION, i, ROSTER_K_PERM_LISTS, lab, err, BG_EINVAL,
                              "needs at least one list");
        int rc = build_lists(p->lists, p->n_lists, rp->lists, ROSTER_SEC_PERMISSION, i,
                             ROSTER_K_PERM_LISTS, lab, w, err);
        if (rc != BG_OK)
            return rc;
        for (int li = 0; li < BG_LIST_COUNT; li++)
            if (rp->lists[li] && !r->members[b].lists[li])
                return fail_where(w, ROSTER_SEC_PERMISSION, i, ROSTER_K_PERM_LISTS, lab, err,
                                  BG_EINVAL, "%s does not offer %s (see its [member %s] lists)",
                                  p->answerer, bg_list_names[li], p->answerer);
        if (p->quota_items_per_day < 1 || p->quota_items_per_day > BG_ROSTER_QUOTA_MAX)
            return fail_where(w, ROSTER_SEC_PERMISSION, i, ROSTER_K_QUOTA, lab, err, BG_EINVAL,
                              "%llu is out of range 1-%llu",
                              (unsigned long long)p->quota_items_per_day,
                              (unsigned long long)BG_ROSTER_QUOTA_MAX);
        rp->quota_items_per_day = p->quota_items_per_day;
        if (p->min_count_batch < 1 || p->min_count_batch > BG_ROSTER_BATCH_MAX)
            return fail_where(w, ROSTER_SEC_PERMISSION, i, ROSTER_K_MIN_BATCH, lab, err, BG_EINVAL,
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
    if (EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) != 1 || n != 32) {
        ERR_clear_error();
        return bg_err_set(err, BG_ECRYPTO, "SHA-256 failed");
    }
    return BG_OK;
}

int
bg_roster_build(const Baygate__Roster *m, const uint8_t *bytes, size_t len, bg_roster **out,
                struct bg_roster_where *w, bg_err *err)
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
