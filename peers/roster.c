/*
 * roster.c - the federation roster at run time: lifetime, reading and
 * "may A ask B this?" (see roster.h). Rosters are made by bg_roster_build
 * (roster_check.c) from a signed roster (roster_signed.c) or an INI source
 * (roster_ini.c), and never change after.
 */
#include "peers/roster.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "peers/roster_int.h"

const char *
bg_roster_safe(const char *s, char buf[BG_ROSTER_SAFE_MAX])
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

int
bg_roster_member_index(const bg_roster *r, const char *city)
{
    for (size_t i = 0; i < r->nmembers; i++)
        if (strcmp(r->members[i].city, city) == 0)
            return (int)i;
    return -1;
}

int
bg_roster_purpose_index(const bg_roster *r, const char *name)
{
    for (size_t i = 0; i < r->npurposes; i++)
        if (strcmp(r->purposes[i].name, name) == 0)
            return (int)i;
    return -1;
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
    int i = bg_roster_member_index(r, city);
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
    char sc[BG_ROSTER_SAFE_MAX], sg[BG_ROSTER_SAFE_MAX];
    const bg_roster_member *m = bg_roster_member_find(r, city);
    if (m == NULL)
        return bg_err_set(err, BG_ENOTFOUND, "%s is not a member of the federation",
                          bg_roster_safe(city, sc));
    uint32_t x = grade ? bg_roster_member_rank(m, grade, strlen(grade)) : 0;
    if (x == 0)
        return bg_err_set(err, BG_ENOTFOUND, "'%s' is not a grade of %s's scale %s",
                          bg_roster_safe(grade, sg), m->city, m->scale.name);
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
    int i = bg_roster_purpose_index(r, name);
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
    int a = bg_roster_member_index(r, asker), b = bg_roster_member_index(r, answerer);
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
    char s1[BG_ROSTER_SAFE_MAX], s2[BG_ROSTER_SAFE_MAX];
    memset(v, 0, sizeof *v);
    int a = asker ? bg_roster_member_index(r, asker) : -1;
    if (a < 0)
        return deny(v, "%s is not a member of the federation", bg_roster_safe(asker, s1));
    int b = answerer ? bg_roster_member_index(r, answerer) : -1;
    if (b < 0)
        return deny(v, "%s is not a member of the federation", bg_roster_safe(answerer, s1));
    if (a == b)
        return deny(v, "%s cannot ask itself", asker);
    int pi = purpose ? bg_roster_purpose_index(r, purpose) : -1;
    if (pi < 0)
        return deny(v, "purpose '%s' is not declared in roster %llu", bg_roster_safe(purpose, s1),
                    (unsigned long long)r->serial);
    v->needs_authorisation = r->purposes[pi].needs_authorisation;
    int li = list ? bg_list_index(list, strlen(list)) : -1;
    if (li < 0)
        return deny(v, "'%s' is not a known list", bg_roster_safe(list, s2));
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

size_t
bg_roster_member_pins(const bg_roster_member *m, uint8_t fp[][BG_SIG_FP_LEN])
{
    memcpy(fp[0], m->cert_sha256, BG_SIG_FP_LEN);
    if (!m->has_next)
        return 1;
    memcpy(fp[1], m->next_sha256, BG_SIG_FP_LEN);
    return 2;
}

bool
bg_roster_member_pinned(const bg_roster_member *m, const uint8_t fp[BG_SIG_FP_LEN])
{
    /* Both compared, whatever the first says. */
    bool cur = CRYPTO_memcmp(m->cert_sha256, fp, BG_SIG_FP_LEN) == 0;
    bool next = CRYPTO_memcmp(m->next_sha256, fp, BG_SIG_FP_LEN) == 0 && m->has_next;
    return cur || next;
}

int
bg_roster_member_fp(void *ctx, const char *city, uint8_t fp[][BG_SIG_FP_LEN], size_t *n)
{
    const bg_roster_member *m = bg_roster_member_find(ctx, city);
    if (m == NULL)
        return BG_ENOTFOUND;
    *n = bg_roster_member_pins(m, fp);
    return BG_OK;
}
