/*
 * roster_ini.c - the roster's INI source compiled into the Roster message it
 * will be signed as (see roster_ini.h and ROSTER.md).
 *
 * inih reads the text through ini_read_line, which counts lines and sorts
 * each one (section header, key, continuation) before inih sees it, so a
 * section is opened here rather than from inih's truncated names. Values go
 * straight into the message; grade maps wait until the common scale is
 * known; permission sections with a '*' side ([permission default] too) are kept
 * apart and expanded at the end into one Permission per ordered pair, each pointing
 * at the lines of its section. Then bg_roster_build checks the message like a
 * received one, and a problem it finds is mapped back to the line of its section
 * and key.
 */
#include "peers/roster_ini.h"

#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ini.h>
#include <openssl/err.h>

#include "common/clock.h"
#include "common/file.h"
#include "common/num.h"
#include "peers/roster_int.h"
#include "proto/roster.pb-c.h"

static const struct bg_roster_keydef *
keydef_find(enum bg_roster_sect s, const char *name)
{
    for (size_t i = 0; i < bg_roster_nkeydefs; i++)
        if (bg_roster_keydefs[i].sect == s && strcmp(bg_roster_keydefs[i].name, name) == 0)
            return &bg_roster_keydefs[i];
    return NULL;
}

/* A decimal number min..max; bg_num_u64, with the untrusted text echoed
 * safely when it is not a number. */
static int
ini_number(const char *v, uint64_t min, uint64_t max, uint64_t *out, bg_err *err)
{
    char sv[BG_ROSTER_SAFE_MAX];
    if (bg_num_u64(v, 0, UINT64_MAX, out, NULL) != BG_OK)
        return bg_err_set(err, BG_EINVAL, "'%s' is not a number", bg_roster_safe(v, sv));
    return bg_num_u64(v, min, max, out, err);
}

struct ini_item {
    uint32_t line[ROSTER_K_COUNT]; /* line[ROSTER_K_NONE]: the section header */
    char *grade_raw;               /* a member's grade_map text, resolved at the end */
    uint32_t deny_line;            /* a permission's deny = (not a key of the wire form) */
    bool deny;
};

/* A [permission] section with '*' on a side ([permission default] is * -> *): its
 * keys, kept apart from the message and expanded into pairs at the end. */
struct ini_wild {
    Baygate__Permission *p; /* asker, answerer: a city code or "*" */
    struct ini_item item;
    bool is_default; /* written [permission default] */
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
    enum bg_roster_sect sect;
    enum bg_roster_key last_key;
    Baygate__Roster *m;
    bool have_fed;
    struct ini_item fed;
    struct ini_item *purp, *mem, *perm; /* parallel to m->purposes, members, permissions */
    struct ini_wild *wild;              /* the [permission] sections with a '*' */
    size_t nwild;
    Baygate__Permission *cur_perm; /* the [permission] section being read (pair or wild) */
    struct ini_item *cur_perm_item;
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
    case ROSTER_SEC_FEDERATION:
        return &ps->fed;
    case ROSTER_SEC_PURPOSE:
        return &ps->purp[ps->m->n_purposes - 1];
    case ROSTER_SEC_MEMBER:
        return &ps->mem[ps->m->n_members - 1];
    case ROSTER_SEC_PERMISSION:
        return ps->cur_perm_item;
    case ROSTER_SEC_NONE:
        break;
    }
    return NULL;
}

/* "[permission A -> B]", "[permission * -> B]" or "[permission default]". */
static void
perm_label(char *out, size_t outsz, const Baygate__Permission *p, bool is_default)
{
    if (is_default)
        snprintf(out, outsz, "[permission default]");
    else
        bg_roster_sect_label(out, outsz, ROSTER_SEC_PERMISSION, p->asker, p->answerer);
}

static void
ini_label(const struct ini *ps, char *out, size_t outsz)
{
    const Baygate__Roster *m = ps->m;
    switch (ps->sect) {
    case ROSTER_SEC_PURPOSE:
        bg_roster_sect_label(out, outsz, ROSTER_SEC_PURPOSE, m->purposes[m->n_purposes - 1]->name,
                             NULL);
        break;
    case ROSTER_SEC_MEMBER:
        bg_roster_sect_label(out, outsz, ROSTER_SEC_MEMBER, m->members[m->n_members - 1]->city,
                             NULL);
        break;
    case ROSTER_SEC_PERMISSION:
        perm_label(out, outsz, ps->cur_perm,
                   ps->nwild > 0 && ps->cur_perm_item == &ps->wild[ps->nwild - 1].item &&
                       ps->wild[ps->nwild - 1].is_default);
        break;
    default:
        bg_roster_sect_label(out, outsz, ps->sect, NULL, NULL);
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

/* Appends a new, initialised message of type desc to a repeated field of the
 * roster (arr_field points at its pointer, *n is its count) and an ini_item
 * to items; NULL, with the error recorded, if memory runs out. The field is
 * reached as bytes because protobuf-c types each repeated field differently. */
static void *
ini_append(struct ini *ps, const ProtobufCMessageDescriptor *desc, void *arr_field, size_t *n,
           struct ini_item **items)
{
    void *old = NULL;
    memcpy(&old, arr_field, sizeof old);
    ProtobufCMessage *msg = malloc(desc->sizeof_message);
    void **na = realloc(old, (*n + 1) * sizeof *na);
    if (na != NULL)
        memcpy(arr_field, &na, sizeof na);
    if (msg == NULL || na == NULL || !grow_items(items, *n)) {
        free(msg);
        ini_fail(ps, BG_ENOMEM, "out of memory");
        return NULL;
    }
    protobuf_c_message_init(desc, msg);
    na[(*n)++] = msg;
    return msg;
}

static struct ini_item *
open_purpose(struct ini *ps, const char *arg)
{
    char sv[BG_ROSTER_SAFE_MAX];
    Baygate__Roster *m = ps->m;
    if (!bg_roster_purpose_name_valid(arg)) {
        ini_fail(ps, BG_EINVAL,
                 "[purpose %s]: '%s' is not a purpose name (1-%d of a-z, 0-9, '-', '_', "
                 "starting with a letter)",
                 bg_roster_safe(arg, sv), sv, BG_ROSTER_PURPOSE_MAX);
        return NULL;
    }
    if (m->n_purposes == BG_ROSTER_MAX_PURPOSES) {
        ini_fail(ps, BG_ELIMIT, "more than %d purposes", BG_ROSTER_MAX_PURPOSES);
        return NULL;
    }
    Baygate__Purpose *p =
        ini_append(ps, &baygate__purpose__descriptor, &m->purposes, &m->n_purposes, &ps->purp);
    if (p == NULL)
        return NULL;
    ps->sect = ROSTER_SEC_PURPOSE;
    if ((p->name = strdup(arg)) == NULL)
        ini_fail(ps, BG_ENOMEM, "out of memory");
    return &ps->purp[m->n_purposes - 1];
}

static struct ini_item *
open_member(struct ini *ps, const char *arg)
{
    char sv[BG_ROSTER_SAFE_MAX];
    Baygate__Roster *m = ps->m;
    if (!bg_city_code_valid(arg)) {
        ini_fail(ps, BG_EINVAL, "[member %s]: '%s' is not a 6-digit city code",
                 bg_roster_safe(arg, sv), sv);
        return NULL;
    }
    if (m->n_members == BG_ROSTER_MAX_MEMBERS) {
        ini_fail(ps, BG_ELIMIT, "more than %d members", BG_ROSTER_MAX_MEMBERS);
        return NULL;
    }
    Baygate__Member *mm =
        ini_append(ps, &baygate__member__descriptor, &m->members, &m->n_members, &ps->mem);
    if (mm == NULL)
        return NULL;
    ps->sect = ROSTER_SEC_MEMBER;
    if ((mm->city = strdup(arg)) == NULL)
        ini_fail(ps, BG_ENOMEM, "out of memory");
    return &ps->mem[m->n_members - 1];
}

/* One side of a permission header: a 6-digit code or '*', into out (NUL-terminated). */
static bool
perm_side(const char *s, size_t n, char out[BG_CITY_CODE_LEN + 1])
{
    trim(&s, &n);
    if (!(n == 1 && s[0] == '*') && !(n == BG_CITY_CODE_LEN && bg_roster_all_digits(s, n)))
        return false;
    memcpy(out, s, n);
    out[n] = '\0';
    return true;
}

/* A section with a '*' side: kept in ps->wild, one per (asker, answerer). */
static struct ini_item *
open_wild(struct ini *ps, const char *ca, const char *cb, bool is_default)
{
    char lab[128];
    for (size_t i = 0; i < ps->nwild; i++) {
        const struct ini_wild *w = &ps->wild[i];
        if (strcmp(w->p->asker, ca) == 0 && strcmp(w->p->answerer, cb) == 0) {
            perm_label(lab, sizeof lab, w->p, w->is_default);
            ini_fail(ps, BG_EINVAL, "%s given twice (first at line %u)", lab,
                     (unsigned)w->item.line[ROSTER_K_NONE]);
            return NULL;
        }
    }
    /* Each member's [A -> *] and [* -> A], and the default: more name non-members. */
    if (ps->nwild == 2 * BG_ROSTER_MAX_MEMBERS + 1) {
        ini_fail(ps, BG_ELIMIT, "more than %d [permission] sections with a '*'",
                 2 * BG_ROSTER_MAX_MEMBERS + 1);
        return NULL;
    }
    struct ini_wild *nw = realloc(ps->wild, (ps->nwild + 1) * sizeof *nw);
    Baygate__Permission *p = malloc(sizeof *p);
    if (nw != NULL)
        ps->wild = nw;
    if (nw == NULL || p == NULL) {
        free(p);
        ini_fail(ps, BG_ENOMEM, "out of memory");
        return NULL;
    }
    baygate__permission__init(p);
    struct ini_wild *w = &ps->wild[ps->nwild++];
    memset(w, 0, sizeof *w);
    w->p = p;
    w->is_default = is_default;
    ps->sect = ROSTER_SEC_PERMISSION;
    ps->cur_perm = p;
    ps->cur_perm_item = &w->item;
    if ((p->asker = strdup(ca)) == NULL || (p->answerer = strdup(cb)) == NULL)
        ini_fail(ps, BG_ENOMEM, "out of memory");
    return &w->item;
}

/* arg is "ASKER -> ANSWERER", either side '*', or "default" (* -> *). */
static struct ini_item *
open_permission(struct ini *ps, const char *arg)
{
    char sv[BG_ROSTER_SAFE_MAX];
    Baygate__Roster *m = ps->m;
    bool is_default = strcmp(arg, "default") == 0;
    const char *arrow = strstr(arg, "->");
    char ca[BG_CITY_CODE_LEN + 1] = "*", cb[BG_CITY_CODE_LEN + 1] = "*";
    if (!is_default && (arrow == NULL || !perm_side(arg, (size_t)(arrow - arg), ca) ||
                        !perm_side(arrow + 2, strlen(arrow + 2), cb))) {
        ini_fail(ps, BG_EINVAL,
                 "[permission %s]: expected two 6-digit city codes, "
                 "[permission ASKER -> ANSWERER] ('*' on a side: every member; "
                 "[permission default]: every pair)",
                 bg_roster_safe(arg, sv));
        return NULL;
    }
    if (ca[0] == '*' || cb[0] == '*')
        return open_wild(ps, ca, cb, is_default);
    if (m->n_permissions == BG_ROSTER_MAX_PERMISSIONS) {
        ini_fail(ps, BG_ELIMIT, "more than %d permissions", BG_ROSTER_MAX_PERMISSIONS);
        return NULL;
    }
    Baygate__Permission *p = ini_append(ps, &baygate__permission__descriptor, &m->permissions,
                                        &m->n_permissions, &ps->perm);
    if (p == NULL)
        return NULL;
    ps->sect = ROSTER_SEC_PERMISSION;
    ps->cur_perm = p;
    ps->cur_perm_item = &ps->perm[m->n_permissions - 1];
    if ((p->asker = strdup(ca)) == NULL || (p->answerer = strdup(cb)) == NULL)
        ini_fail(ps, BG_ENOMEM, "out of memory");
    return ps->cur_perm_item;
}

/* Opens the section of a "[...]" line (s points at '['). */
static void
ini_section(struct ini *ps, const char *s)
{
    char sv[BG_ROSTER_SAFE_MAX], lab[160];
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
        ini_fail(ps, BG_EINVAL, "unknown section [%s]", bg_roster_safe(name, sv));
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
    struct ini_item *item = NULL;
    if (strcmp(buf, "federation") == 0 && !has_arg) {
        if (ps->have_fed) {
            ini_fail(ps, BG_EINVAL, "[federation] given twice (first at line %u)",
                     (unsigned)ps->fed.line[ROSTER_K_NONE]);
            return;
        }
        ps->have_fed = true;
        ps->sect = ROSTER_SEC_FEDERATION;
        item = &ps->fed;
    } else if (strcmp(buf, "purpose") == 0 && has_arg) {
        item = open_purpose(ps, arg);
    } else if (strcmp(buf, "member") == 0 && has_arg) {
        item = open_member(ps, arg);
    } else if (strcmp(buf, "permission") == 0 && has_arg) {
        item = open_permission(ps, arg);
    } else {
        snprintf(lab, sizeof lab, "%s%s%s", buf, has_arg ? " " : "", has_arg ? arg : "");
        ini_fail(ps, BG_EINVAL,
                 "unknown section [%s] (expected [federation], [purpose NAME], [member CODE] "
                 "or [permission ASKER -> ANSWERER])",
                 bg_roster_safe(lab, sv));
        return;
    }
    if (item == NULL)
        return;
    item->line[ROSTER_K_NONE] = (uint32_t)ps->line;
    /* No key of this section yet: nothing an indented line could continue. */
    ps->last_key = ROSTER_K_NONE;
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

/* Appends each comma-separated item of v, trimmed, to the repeated string
 * field (*arr, *n). An empty v has no items; a trailing comma is allowed,
 * an empty item is not. */
static bool
split_list(struct ini *ps, const char *v, const char *lab, const char *key, char ***arr,
           size_t *count)
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
        if (!push_string(arr, count, item, n)) {
            ini_fail(ps, BG_ENOMEM, "out of memory");
            return false;
        }
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

/* certificate = PATH (or next_certificate): the SHA-256 of the DER of a PEM
 * certificate of this member's city (and of the CA, if one is given). */
static bool
member_certificate(struct ini *ps, Baygate__Member *mm, const char *key, const char *v,
                   const char *lab, uint8_t fp[BG_SIG_FP_LEN])
{
    char path[PATH_MAX];
    bg_err sub = {0};
    int n = v[0] == '/' ? snprintf(path, sizeof path, "%s", v)
                        : snprintf(path, sizeof path, "%s/%s", ps->base_dir, v);
    if (n < 0 || (size_t)n >= sizeof path) {
        ini_fail(ps, BG_ELIMIT, "%s %s: path too long", lab, key);
        return false;
    }
    X509 *x = NULL;
    char city[BG_CITY_CODE_LEN + 1];
    bool ok = false;
    if (bg_pki_cert_load(path, &x, &sub) != BG_OK || bg_pki_cert_city(x, city, &sub) != BG_OK) {
        ini_fail(ps, sub.code, "%s %s: %s", lab, key, sub.msg);
    } else if (strcmp(city, mm->city) != 0) {
        ini_fail(ps, BG_EINVAL, "%s %s: %s is a certificate of %s, not of %s", lab, key, v, city,
                 mm->city);
    } else if (ps->ca != NULL && X509_verify(x, X509_get0_pubkey(ps->ca)) != 1) {
        ERR_clear_error();
        ini_fail(ps, BG_EINVAL, "%s %s: %s was not issued by this federation CA", lab, key, v);
    } else if (bg_sig_fingerprint(x, fp, &sub) != BG_OK) {
        ini_fail(ps, sub.code, "%s %s: %s", lab, key, sub.msg);
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

/* certificate = PATH or fingerprint = HEX (exactly one of them): the member's
 * pinned SHA-256; next_certificate or next_fingerprint (at most one): the one it
 * rotates to, pinned too. */
static bool
member_fingerprint(struct ini *ps, const struct bg_roster_keydef *k, Baygate__Member *mm,
                   const char *v, const char *lab)
{
    struct ini_item *item = ini_cur(ps);
    bool next = k->id == ROSTER_K_NEXT_CERTIFICATE || k->id == ROSTER_K_NEXT_FINGERPRINT;
    bool is_cert = k->id == ROSTER_K_CERTIFICATE || k->id == ROSTER_K_NEXT_CERTIFICATE;
    enum bg_roster_key other =
        next ? (is_cert ? ROSTER_K_NEXT_FINGERPRINT : ROSTER_K_NEXT_CERTIFICATE)
             : (is_cert ? ROSTER_K_FINGERPRINT : ROSTER_K_CERTIFICATE);
    if (item->line[other] != 0) {
        ini_fail(ps, BG_EINVAL, "%s: give %scertificate or %sfingerprint, not both", lab,
                 next ? "next_" : "", next ? "next_" : "");
        return false;
    }
    uint8_t *fp = malloc(BG_SIG_FP_LEN);
    if (fp == NULL) {
        ini_fail(ps, BG_ENOMEM, "out of memory");
        return false;
    }
    ProtobufCBinaryData *field = next ? &mm->next_cert_sha256 : &mm->cert_sha256;
    field->data = fp;
    field->len = BG_SIG_FP_LEN;
    if (is_cert)
        return member_certificate(ps, mm, k->name, v, lab, fp);
    if (!bg_sig_fp_parse(v, fp)) {
        ini_fail(ps, BG_EINVAL, "%s %s: expected the certificate's SHA-256 as %d hex digits", lab,
                 k->name, BG_SIG_FP_HEX_LEN);
        return false;
    }
    return true;
}

/* Stores one value (or one continuation of a list) of key k. */
static bool
ini_value(struct ini *ps, const struct bg_roster_keydef *k, const char *v, const char *lab)
{
    Baygate__Roster *m = ps->m;
    Baygate__Member *mm = ps->sect == ROSTER_SEC_MEMBER ? m->members[m->n_members - 1] : NULL;
    Baygate__Permission *pp = ps->sect == ROSTER_SEC_PERMISSION ? ps->cur_perm : NULL;
    bg_err sub = {0};
    uint64_t x = 0;
    if (!(k->flags & ROSTER_F_LIST) && v[0] == '\0') {
        ini_fail(ps, BG_EINVAL, "%s %s: needs a value", lab, k->name);
        return false;
    }
    switch (k->id) {
    case ROSTER_K_FED_NAME:
        return set_string(ps, &m->federation, v);
    case ROSTER_K_SERIAL:
        if (ini_number(v, 1, UINT64_MAX, &x, &sub) != BG_OK)
            break;
        m->serial = x;
        return true;
    case ROSTER_K_MAXMSG:
        if (ini_number(v, BG_ROSTER_MESSAGE_MIN, BG_ROSTER_MESSAGE_MAX, &x, &sub) != BG_OK)
            break;
        m->max_message_bytes = (uint32_t)x;
        return true;
    case ROSTER_K_COMMON:
        return set_string(ps, &m->common_scale, v);
    case ROSTER_K_NEEDS_AUTH:
        if (strcmp(v, "true") != 0 && strcmp(v, "false") != 0) {
            bg_err_set(&sub, BG_EINVAL, "expected true or false");
            break;
        }
        m->purposes[m->n_purposes - 1]->needs_authorisation = strcmp(v, "true") == 0;
        return true;
    case ROSTER_K_MEM_NAME:
        return set_string(ps, &mm->name, v);
    case ROSTER_K_ENDPOINT:
        return set_string(ps, &mm->endpoint, v);
    case ROSTER_K_SCALE:
        return set_string(ps, &mm->scale, v);
    case ROSTER_K_CERTIFICATE:
    case ROSTER_K_FINGERPRINT:
    case ROSTER_K_NEXT_CERTIFICATE:
    case ROSTER_K_NEXT_FINGERPRINT:
        return member_fingerprint(ps, k, mm, v, lab);
    case ROSTER_K_MEM_LISTS:
        return split_list(ps, v, lab, k->name, &mm->lists, &mm->n_lists);
    case ROSTER_K_GRADE_MAP:
        return add_grade_raw(ps, ini_cur(ps), v);
    case ROSTER_K_PURPOSES:
        return split_list(ps, v, lab, k->name, &pp->purposes, &pp->n_purposes);
    case ROSTER_K_PERM_LISTS:
        return split_list(ps, v, lab, k->name, &pp->lists, &pp->n_lists);
    case ROSTER_K_QUOTA:
        if (ini_number(v, 1, BG_ROSTER_QUOTA_MAX, &x, &sub) != BG_OK)
            break;
        pp->quota_items_per_day = x;
        return true;
    case ROSTER_K_MIN_BATCH:
        if (ini_number(v, 1, BG_ROSTER_BATCH_MAX, &x, &sub) != BG_OK)
            break;
        pp->min_count_batch = (uint32_t)x;
        return true;
    case ROSTER_K_NONE:
    case ROSTER_K_COUNT:
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

/* deny = true|false in a [permission] section: true forbids its pairs (and then it
 * stands alone). Not a key of the wire form: nothing in the message records it. */
static bool
perm_deny(struct ini *ps, struct ini_item *item, const char *v, const char *lab)
{
    if (item->deny_line != 0) {
        ini_fail(ps, BG_EINVAL, "%s deny given twice (first at line %u)", lab,
                 (unsigned)item->deny_line);
        return false;
    }
    if (strcmp(v, "true") != 0 && strcmp(v, "false") != 0) {
        ini_fail(ps, BG_EINVAL, "%s deny: expected true or false", lab);
        return false;
    }
    item->deny_line = (uint32_t)ps->line;
    item->deny = strcmp(v, "true") == 0;
    ps->last_key = ROSTER_K_NONE; /* nothing continues it */
    return true;
}

static int
ini_on_value(void *user, const char *section, const char *name, const char *value)
{
    (void)section; /* ini_section already knows, and inih truncates long names */
    struct ini *ps = user;
    char lab[128], sv[BG_ROSTER_SAFE_MAX];
    if (ps->failed)
        return 0;
    if (ps->sect == ROSTER_SEC_NONE) {
        ini_fail(ps, BG_EINVAL, "key '%s' outside any section", bg_roster_safe(name, sv));
        return 0;
    }
    ini_label(ps, lab, sizeof lab);
    struct ini_item *item = ini_cur(ps);
    if (ps->cont) {
        const struct bg_roster_keydef *k = bg_roster_keydef_of(ps->last_key);
        if (k == NULL || k->sect != ps->sect || !(k->flags & ROSTER_F_LIST)) {
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
    if (ps->sect == ROSTER_SEC_PERMISSION && strcmp(name, "deny") == 0)
        return perm_deny(ps, item, value, lab) ? 1 : 0;
    const struct bg_roster_keydef *k = keydef_find(ps->sect, name);
    if (k == NULL) {
        ini_fail(ps, BG_EINVAL, "unknown key '%s' in %s", bg_roster_safe(name, sv), lab);
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

/* A [permission] section has every key, or says deny = true and nothing else. */
static bool
perm_check_required(struct ini *ps, const Baygate__Permission *p, const struct ini_item *it,
                    bool is_default)
{
    char lab[128];
    perm_label(lab, sizeof lab, p, is_default);
    for (size_t k = 0; k < bg_roster_nkeydefs; k++) {
        const struct bg_roster_keydef *kd = &bg_roster_keydefs[k];
        if (kd->sect != ROSTER_SEC_PERMISSION)
            continue;
        if (it->deny && it->line[kd->id] != 0) {
            ps->line = it->deny_line;
            ini_fail(ps, BG_EINVAL,
                     "%s: deny = true forbids what the section names; it takes no other key "
                     "(%s at line %u)",
                     lab, kd->name, (unsigned)it->line[kd->id]);
            return false;
        }
        if (!it->deny && (kd->flags & ROSTER_F_REQUIRED) && it->line[kd->id] == 0) {
            ps->line = it->line[ROSTER_K_NONE];
            ini_fail(ps, BG_EINVAL, "%s %s is required", lab, kd->name);
            return false;
        }
    }
    return true;
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
        enum bg_roster_sect sect;
        size_t n;
        struct ini_item *items;
    } all[] = {
        {ROSTER_SEC_FEDERATION, 1, &ps->fed},
        {ROSTER_SEC_PURPOSE, ps->m->n_purposes, ps->purp},
        {ROSTER_SEC_MEMBER, ps->m->n_members, ps->mem},
    };
    for (size_t s = 0; s < sizeof all / sizeof all[0]; s++) {
        for (size_t i = 0; i < all[s].n; i++) {
            const struct ini_item *it = &all[s].items[i];
            const Baygate__Roster *m = ps->m;
            switch (all[s].sect) {
            case ROSTER_SEC_PURPOSE:
                bg_roster_sect_label(lab, sizeof lab, ROSTER_SEC_PURPOSE, m->purposes[i]->name,
                                     NULL);
                break;
            case ROSTER_SEC_MEMBER:
                bg_roster_sect_label(lab, sizeof lab, ROSTER_SEC_MEMBER, m->members[i]->city, NULL);
                break;
            default:
                bg_roster_sect_label(lab, sizeof lab, all[s].sect, NULL, NULL);
                break;
            }
            ps->line = it->line[ROSTER_K_NONE];
            for (size_t k = 0; k < bg_roster_nkeydefs; k++) {
                if (bg_roster_keydefs[k].sect != all[s].sect ||
                    !(bg_roster_keydefs[k].flags & ROSTER_F_REQUIRED) ||
                    it->line[bg_roster_keydefs[k].id] != 0)
                    continue;
                ini_fail(ps, BG_EINVAL, "%s %s is required", lab, bg_roster_keydefs[k].name);
                return false;
            }
            if (all[s].sect == ROSTER_SEC_MEMBER && it->line[ROSTER_K_CERTIFICATE] == 0 &&
                it->line[ROSTER_K_FINGERPRINT] == 0) {
                ini_fail(ps, BG_EINVAL, "%s certificate (or fingerprint) is required", lab);
                return false;
            }
        }
    }
    for (size_t i = 0; i < ps->m->n_permissions; i++)
        if (!perm_check_required(ps, ps->m->permissions[i], &ps->perm[i], false))
            return false;
    for (size_t i = 0; i < ps->nwild; i++)
        if (!perm_check_required(ps, ps->wild[i].p, &ps->wild[i].item, ps->wild[i].is_default))
            return false;
    return true;
}

/* Turns each member's "G:R, G:R" text into GradeMappings: R is a grade of
 * the common scale or a rank number. */
static bool
ini_grade_maps(struct ini *ps)
{
    char lab[128], sv[BG_ROSTER_SAFE_MAX];
    bg_scale common;
    if (bg_scale_parse(ps->m->common_scale, &common, NULL) != BG_OK)
        return true; /* bg_roster_build() reports the common scale first */
    for (size_t i = 0; i < ps->m->n_members; i++) {
        Baygate__Member *mm = ps->m->members[i];
        const char *p = ps->mem[i].grade_raw;
        if (p == NULL)
            continue;
        bg_roster_sect_label(lab, sizeof lab, ROSTER_SEC_MEMBER, mm->city, NULL);
        ps->line = ps->mem[i].line[ROSTER_K_GRADE_MAP];
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
                ini_fail(ps, BG_EINVAL, "%s grade_map: '%s' is not GRADE:RANK", lab,
                         bg_roster_safe(tok, sv));
                return false;
            }
            const char *g = item, *c = colon + 1;
            size_t gn = (size_t)(colon - item), cn = n - gn - 1;
            trim(&g, &gn);
            trim(&c, &cn);
            int ci = bg_scale_index(&common, c, cn);
            uint64_t rank = 0;
            char num[10];
            snprintf(num, sizeof num, "%.*s", (int)(cn < 9 ? cn : 9), c);
            if (ci >= 0) {
                rank = (uint64_t)ci + 1;
            } else if (cn > 9 || bg_num_u64(num, 0, UINT32_MAX, &rank, NULL) != BG_OK) {
                ini_fail(ps, BG_EINVAL,
                         "%s grade_map: '%s' is neither a rank nor a grade of the common "
                         "scale %s",
                         lab, bg_roster_safe(tok, sv), common.name);
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

/* --- [permission] sections with '*' expanded into one Permission per ordered pair --- */

static int
member_index(const Baygate__Roster *m, const char *city)
{
    for (size_t i = 0; i < m->n_members; i++)
        if (strcmp(m->members[i]->city, city) == 0)
            return (int)i;
    return -1;
}

/* Does mm offer list li (by its [member] lists)? */
static bool
offers(const Baygate__Member *mm, int li)
{
    for (size_t i = 0; i < mm->n_lists; i++)
        if (bg_list_index(mm->lists[i], strlen(mm->lists[i])) == li)
            return true;
    return false;
}

static void
free_strings(char **a, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(a[i]);
    free(a);
}

/* lists = *: every list the answerer offers. '*' stands alone. */
static bool
lists_star(struct ini *ps, const Baygate__Permission *p, const struct ini_item *it, const char *lab,
           bool *star)
{
    *star = false;
    for (size_t i = 0; i < p->n_lists; i++) {
        if (strcmp(p->lists[i], "*") != 0)
            continue;
        if (p->n_lists != 1) {
            ps->line = it->line[ROSTER_K_PERM_LISTS];
            ini_fail(ps, BG_EINVAL, "%s lists: '*' (every list the answerer offers) stands alone",
                     lab);
            return false;
        }
        *star = true;
    }
    return true;
}

/* dst's lists from src's for answerer mm: '*' gives what mm offers (in the order of
 * the known lists); with filter, named lists mm does not offer are left out. */
static bool
lists_for(struct ini *ps, Baygate__Permission *dst, const Baygate__Permission *src, bool star,
          bool filter, const Baygate__Member *mm)
{
    char **out = NULL;
    size_t n = 0;
    bool ok = true;
    for (int li = 0; star && ok && li < BG_LIST_COUNT; li++)
        if (offers(mm, li))
            ok = push_string(&out, &n, bg_list_names[li], strlen(bg_list_names[li]));
    for (size_t i = 0; !star && ok && i < src->n_lists; i++) {
        const char *l = src->lists[i];
        if (!filter || offers(mm, bg_list_index(l, strlen(l))))
            ok = push_string(&out, &n, l, strlen(l));
    }
    if (!ok) {
        free_strings(out, n);
        ini_fail(ps, BG_ENOMEM, "out of memory");
        return false;
    }
    free_strings(dst->lists, dst->n_lists);
    dst->lists = out;
    dst->n_lists = n;
    return true;
}

/* A [permission A -> B] section: A and B are two members, the pair is not given twice
 * (a second section could undo a deny), and lists = * becomes B's lists. What else is
 * wrong is the validator's to report. */
static bool
pair_check(struct ini *ps, size_t i)
{
    char lab[128];
    Baygate__Permission *p = ps->m->permissions[i];
    const struct ini_item *it = &ps->perm[i];
    int a = member_index(ps->m, p->asker), b = member_index(ps->m, p->answerer);
    bool star = false;
    perm_label(lab, sizeof lab, p, false);
    ps->line = it->line[ROSTER_K_NONE];
    for (size_t j = 0; j < i; j++)
        if (strcmp(ps->m->permissions[j]->asker, p->asker) == 0 &&
            strcmp(ps->m->permissions[j]->answerer, p->answerer) == 0) {
            ini_fail(ps, BG_EINVAL, "%s appears twice (first at line %u)", lab,
                     (unsigned)ps->perm[j].line[ROSTER_K_NONE]);
            return false;
        }
    bool same = strcmp(p->asker, p->answerer) == 0;
    if (it->deny && (a < 0 || b < 0 || same)) {
        ini_fail(ps, BG_EINVAL, "%s %s", lab,
                 same ? "asker and answerer are the same city"
                      : "names a city that is not a member");
        return false;
    }
    if (it->deny || !lists_star(ps, p, it, lab, &star))
        return !ps->failed;
    if (!star || b < 0)
        return true;
    if (!lists_for(ps, p, p, true, false, ps->m->members[b]))
        return false;
    if (p->n_lists == 0) {
        ps->line = it->line[ROSTER_K_PERM_LISTS];
        ini_fail(ps, BG_EINVAL, "%s lists: '*' is every list %s offers, and it offers none", lab,
                 p->answerer);
        return false;
    }
    return true;
}

/* Named list l (index li) of a section whose answerer is '*' (lab): offered by some
 * member the section applies to, any but a fixed asker. */
static bool
wild_list_offered(struct ini *ps, const Baygate__Permission *p, const char *l, int li,
                  const char *lab)
{
    for (size_t j = 0; j < ps->m->n_members; j++)
        if (strcmp(ps->m->members[j]->city, p->asker) != 0 && offers(ps->m->members[j], li))
            return true;
    ini_fail(ps, BG_EINVAL, "%s lists: no member it applies to offers %s", lab, l);
    return false;
}

/* The lists of a section with a '*' side: '*' (for a fixed answerer: one that offers
 * some), or known lists, offered by the fixed answerer or by some member. */
static bool
wild_check_lists(struct ini *ps, const struct ini_wild *w, const Baygate__Member *b,
                 const char *lab)
{
    char sv[BG_ROSTER_SAFE_MAX];
    const Baygate__Permission *p = w->p;
    bool star = false;
    if (!lists_star(ps, p, &w->item, lab, &star))
        return false;
    ps->line = w->item.line[ROSTER_K_PERM_LISTS];
    if (p->n_lists == 0) {
        ini_fail(ps, BG_EINVAL, "%s lists: needs at least one list ('*': every list offered)", lab);
        return false;
    }
    bool some = false;
    for (int li = 0; star && b != NULL && li < BG_LIST_COUNT; li++)
        some = some || offers(b, li);
    if (star && b != NULL && !some) {
        ini_fail(ps, BG_EINVAL, "%s lists: '*' is every list %s offers, and it offers none", lab,
                 b->city);
        return false;
    }
    for (size_t i = 0; !star && i < p->n_lists; i++) {
        const char *l = p->lists[i];
        int li = bg_list_index(l, strlen(l));
        if (li < 0) {
            ini_fail(ps, BG_EINVAL, "%s lists: unknown list '%s' (known: %s, %s)", lab,
                     bg_roster_safe(l, sv), bg_list_names[0], bg_list_names[1]);
            return false;
        }
        if (b == NULL && !wild_list_offered(ps, p, l, li, lab))
            return false;
        if (b != NULL && !offers(b, li)) {
            ini_fail(ps, BG_EINVAL, "%s lists: %s does not offer %s (see its [member %s] lists)",
                     lab, b->city, l, b->city);
            return false;
        }
    }
    return true;
}

/* A section with a '*' side, checked as itself (the pairs it makes go through the
 * validator too): a fixed side is a member; it denies, or has purposes and lists. */
static bool
wild_check(struct ini *ps, const struct ini_wild *w)
{
    char lab[128];
    const Baygate__Permission *p = w->p;
    const bool any_answerer = strcmp(p->answerer, "*") == 0;
    const char *fixed = any_answerer ? p->asker : p->answerer;
    int fi = member_index(ps->m, fixed);
    perm_label(lab, sizeof lab, p, w->is_default);
    ps->line = w->item.line[ROSTER_K_NONE];
    if (strcmp(fixed, "*") != 0 && fi < 0) {
        ini_fail(ps, BG_EINVAL, "%s %s %s is not a member (no [member %s] section)", lab,
                 any_answerer ? "asker" : "answerer", fixed, fixed);
        return false;
    }
    if (w->item.deny)
        return true;
    ps->line = w->item.line[ROSTER_K_PURPOSES];
    if (p->n_purposes == 0) {
        ini_fail(ps, BG_EINVAL, "%s purposes: needs at least one purpose (deny = true forbids)",
                 lab);
        return false;
    }
    for (size_t i = 0; i < p->n_purposes; i++) {
        size_t k = 0;
        while (k < ps->m->n_purposes && strcmp(ps->m->purposes[k]->name, p->purposes[i]) != 0)
            k++;
        if (k == ps->m->n_purposes) {
            char sv[BG_ROSTER_SAFE_MAX];
            ini_fail(ps, BG_EINVAL,
                     "%s purposes: purpose '%s' is not declared (no [purpose %s] section)", lab,
                     bg_roster_safe(p->purposes[i], sv), sv);
            return false;
        }
    }
    return wild_check_lists(ps, w, any_answerer ? NULL : ps->m->members[fi], lab);
}

/* For the ordered pair a -> b, which has no [permission a -> b]: the '*' section that
 * gives it, in *out (NULL: none, or it is denied). [a -> *] and [* -> b] both giving
 * it is an error, unless one of them denies. */
static bool
wild_for(struct ini *ps, const char *a, const char *b, const struct ini_wild **out)
{
    const struct ini_wild *wa = NULL, *wb = NULL, *wd = NULL;
    for (size_t i = 0; i < ps->nwild; i++) {
        const struct ini_wild *w = &ps->wild[i];
        bool any_a = strcmp(w->p->asker, "*") == 0, any_b = strcmp(w->p->answerer, "*") == 0;
        if (any_a && any_b)
            wd = w;
        else if (!any_a && strcmp(w->p->asker, a) == 0)
            wa = w;
        else if (!any_b && strcmp(w->p->answerer, b) == 0)
            wb = w;
    }
    *out = NULL;
    if ((wa != NULL && wa->item.deny) || (wb != NULL && wb->item.deny))
        return true;
    if (wa != NULL && wb != NULL) {
        uint32_t la = wa->item.line[ROSTER_K_NONE], lb = wb->item.line[ROSTER_K_NONE];
        ps->line = la > lb ? la : lb;
        ini_fail(ps, BG_EINVAL,
                 "[permission %s -> *] (line %u) and [permission * -> %s] (line %u) both apply "
                 "to %s -> %s: say which with a [permission %s -> %s] section",
                 a, (unsigned)la, b, (unsigned)lb, a, b, a, b);
        return false;
    }
    const struct ini_wild *w = wa != NULL ? wa : wb != NULL ? wb : wd;
    if (w != NULL && !w->item.deny)
        *out = w;
    return true;
}

/* Appends the Permission w gives a -> b (member indices), its lines w's; *idx is its
 * index, or -1 when no list is left for b ('*' or a named list b does not offer, with
 * '*' as the answerer). false if memory ran out. */
static bool
perm_generate(struct ini *ps, const struct ini_wild *w, size_t a, size_t b, long *idx)
{
    Baygate__Roster *m = ps->m;
    const Baygate__Permission *src = w->p;
    bool star = src->n_lists == 1 && strcmp(src->lists[0], "*") == 0;
    *idx = -1;
    Baygate__Permission probe = BAYGATE__PERMISSION__INIT;
    if (!lists_for(ps, &probe, src, star, true, m->members[b]))
        return false;
    if (probe.n_lists == 0)
        return true;
    size_t n = m->n_permissions;
    Baygate__Permission *p = ini_append(ps, &baygate__permission__descriptor, &m->permissions,
                                        &m->n_permissions, &ps->perm);
    if (p == NULL) {
        free_strings(probe.lists, probe.n_lists);
        return false;
    }
    p->lists = probe.lists;
    p->n_lists = probe.n_lists;
    ps->perm[n] = w->item;
    ps->perm[n].deny = false;
    p->quota_items_per_day = src->quota_items_per_day;
    p->min_count_batch = src->min_count_batch;
    bool ok = (p->asker = strdup(m->members[a]->city)) != NULL &&
              (p->answerer = strdup(m->members[b]->city)) != NULL;
    for (size_t i = 0; ok && i < src->n_purposes; i++)
        ok = push_string(&p->purposes, &p->n_purposes, src->purposes[i], strlen(src->purposes[i]));
    if (!ok)
        ini_fail(ps, BG_ENOMEM, "out of memory");
    *idx = (long)n;
    return ok;
}

/* The permissions become those at order[0..n) (indices), in that order; the others
 * (denied pair sections) are freed. */
static bool
perm_reorder(struct ini *ps, const size_t *order, size_t n)
{
    Baygate__Roster *m = ps->m;
    Baygate__Permission **np = malloc((n > 0 ? n : 1) * sizeof *np);
    struct ini_item *ni = malloc((n > 0 ? n : 1) * sizeof *ni);
    bool *kept = calloc(m->n_permissions > 0 ? m->n_permissions : 1, sizeof *kept);
    if (np == NULL || ni == NULL || kept == NULL) {
        free(np);
        free(ni);
        free(kept);
        ini_fail(ps, BG_ENOMEM, "out of memory");
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        np[i] = m->permissions[order[i]];
        ni[i] = ps->perm[order[i]];
        kept[order[i]] = true;
    }
    for (size_t i = 0; i < m->n_permissions; i++)
        if (!kept[i])
            protobuf_c_message_free_unpacked(&m->permissions[i]->base, NULL);
    free(kept);
    free(m->permissions);
    free(ps->perm);
    m->permissions = np;
    m->n_permissions = n;
    ps->perm = ni;
    return true;
}

/* The first pair section of a -> b not used yet, -1 if none. */
static long
pair_find(const struct ini *ps, size_t npair, const bool *used, const char *a, const char *b)
{
    for (size_t i = 0; i < npair; i++)
        if (!used[i] && strcmp(ps->m->permissions[i]->asker, a) == 0 &&
            strcmp(ps->m->permissions[i]->answerer, b) == 0)
            return (long)i;
    return -1;
}

/*
 * The permission sections become the Roster's one Permission per ordered pair. Without
 * a '*' section they stay in file order (so a file of pair sections compiles as it
 * always did), less those that deny. With one, every ordered pair of distinct members,
 * asker by asker in member order, gets its pair section or else the '*' section that
 * applies ([A -> *] or [* -> B], then [default]). Pair sections that name no pair of
 * members, or a pair twice, go last: the validator names them.
 */
static bool
perm_expand(struct ini *ps)
{
    Baygate__Roster *m = ps->m;
    size_t npair = m->n_permissions;
    for (size_t i = 0; i < npair; i++)
        if (!pair_check(ps, i))
            return false;
    for (size_t i = 0; i < ps->nwild; i++)
        if (!wild_check(ps, &ps->wild[i]))
            return false;
    size_t *order = malloc((npair + m->n_members * m->n_members + 1) * sizeof *order);
    bool *used = calloc(npair + 1, sizeof *used);
    bool ok = order != NULL && used != NULL;
    if (!ok)
        ini_fail(ps, BG_ENOMEM, "out of memory");
    size_t n = 0;
    for (size_t a = 0; ok && ps->nwild > 0 && a < m->n_members; a++) {
        for (size_t b = 0; ok && b < m->n_members; b++) {
            const char *ca = m->members[a]->city, *cb = m->members[b]->city;
            if (a == b)
                continue;
            long k = pair_find(ps, npair, used, ca, cb);
            const struct ini_wild *w = NULL;
            if (k >= 0) {
                used[k] = true;
                if (!ps->perm[k].deny)
                    order[n++] = (size_t)k;
            } else if ((ok = wild_for(ps, ca, cb, &w)) && w != NULL &&
                       (ok = perm_generate(ps, w, a, b, &k)) && k >= 0) {
                order[n++] = (size_t)k;
            }
        }
    }
    for (size_t i = 0; ok && i < npair; i++)
        if (!used[i] && !ps->perm[i].deny)
            order[n++] = i;
    ok = ok && perm_reorder(ps, order, n);
    free(order);
    free(used);
    return ok;
}

static uint32_t
ini_where_line(const struct ini *ps, const struct bg_roster_where *w)
{
    const struct ini_item *it = NULL;
    switch (w->sect) {
    case ROSTER_SEC_FEDERATION:
        it = &ps->fed;
        break;
    case ROSTER_SEC_PURPOSE:
        it = w->index < ps->m->n_purposes ? &ps->purp[w->index] : NULL;
        break;
    case ROSTER_SEC_MEMBER:
        it = w->index < ps->m->n_members ? &ps->mem[w->index] : NULL;
        break;
    case ROSTER_SEC_PERMISSION:
        it = w->index < ps->m->n_permissions ? &ps->perm[w->index] : NULL;
        break;
    case ROSTER_SEC_NONE:
        break;
    }
    if (it == NULL)
        return 0;
    uint32_t line = it->line[w->key];
    if (line == 0 && w->key == ROSTER_K_FINGERPRINT)
        line = it->line[ROSTER_K_CERTIFICATE];
    if (line == 0 && w->key == ROSTER_K_NEXT_FINGERPRINT)
        line = it->line[ROSTER_K_NEXT_CERTIFICATE];
    return line != 0 ? line : it->line[ROSTER_K_NONE];
}

static void
ini_free_items(struct ini_item *items, size_t n)
{
    for (size_t i = 0; items != NULL && i < n; i++)
        free(items[i].grade_raw);
    free(items);
}

/* Frees everything the parse made: the items of every section (whatever
 * they hold) and the message. */
static void
ini_free(struct ini *ps)
{
    free(ps->fed.grade_raw);
    for (size_t i = 0; i < ps->nwild; i++)
        protobuf_c_message_free_unpacked(&ps->wild[i].p->base, NULL);
    free(ps->wild);
    if (ps->m != NULL) {
        ini_free_items(ps->purp, ps->m->n_purposes);
        ini_free_items(ps->mem, ps->m->n_members);
        ini_free_items(ps->perm, ps->m->n_permissions);
        protobuf_c_message_free_unpacked(&ps->m->base, NULL);
    }
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
    if (!ps.failed && ini_check_required(&ps) && ini_grade_maps(&ps))
        perm_expand(&ps);
    if (ps.failed) {
        rc = ps.err_line ? bg_err_set(err, ps.sub.code, "%s:%zu: %s", name, ps.err_line, ps.sub.msg)
                         : bg_err_set(err, ps.sub.code, "%s: %s", name, ps.sub.msg);
        goto out;
    }
    ps.m->issued_at_ms = bg_clock_wall_ms();

    size_t plen = baygate__roster__get_packed_size(ps.m);
    uint8_t *bytes = malloc(plen > 0 ? plen : 1);
    if (bytes == NULL) {
        rc = bg_err_set(err, BG_ENOMEM, "out of memory");
        goto out;
    }
    baygate__roster__pack(ps.m, bytes);
    struct bg_roster_where w = {ROSTER_SEC_NONE, 0, ROSTER_K_NONE};
    bg_err sub = {0};
    rc = bg_roster_build(ps.m, bytes, plen, out, &w, &sub);
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
