/*
 * roster_edit.c - line-based edits of the roster's INI source (see roster_edit.h).
 *
 * The text is cut into lines and each one sorted as the compiler's reader sorts
 * it (roster_ini.c): blank or comment, section header, key, or the continuation
 * of a list (an indented line after a key). Sections are found by their headers;
 * an edit drops whole lines, inserts new ones, or rewrites the digits of the
 * serial, and copies everything else through byte for byte.
 */
#include "peers/roster_edit.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/num.h"
#include "domain/city.h"

enum line_kind { L_BLANK, L_HEADER, L_KEY, L_CONT };

struct line {
    const char *s;
    size_t n; /* with its line break, if any */
    enum line_kind kind;
    size_t sect; /* index of the header line of its section, or SIZE_MAX before any */
};

struct src {
    struct line *l;
    size_t n;
};

static void
trim(const char **s, size_t *n)
{
    while (*n > 0 && isspace((unsigned char)**s))
        (*s)++, (*n)--;
    while (*n > 0 && isspace((unsigned char)(*s)[*n - 1]))
        (*n)--;
}

/* Cuts text into sorted lines. */
static int
src_read(const char *text, size_t len, struct src *src, bg_err *err)
{
    size_t cap = 1;
    for (size_t i = 0; i < len; i++)
        cap += text[i] == '\n';
    src->l = calloc(cap, sizeof *src->l);
    src->n = 0;
    if (src->l == NULL)
        return bg_err_set(err, BG_ENOMEM, "out of memory");
    bool prev_key = false;
    size_t sect = SIZE_MAX;
    for (size_t pos = 0; pos < len;) {
        const char *s = text + pos, *nl = memchr(s, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - s) + 1 : len - pos;
        const char *t = s;
        while (t < s + n && (*t == ' ' || *t == '\t'))
            t++;
        struct line *ln = &src->l[src->n];
        ln->s = s;
        ln->n = n;
        if (t == s + n || *t == '\n' || *t == '\r' || *t == ';' || *t == '#') {
            ln->kind = L_BLANK;
        } else if (t > s && prev_key) {
            ln->kind = L_CONT;
        } else if (*t == '[') {
            ln->kind = L_HEADER;
            sect = src->n;
            prev_key = false;
        } else {
            ln->kind = L_KEY;
            prev_key = true;
        }
        ln->sect = sect;
        src->n++;
        pos += n;
    }
    return BG_OK;
}

/* A header line's section: its type word and its argument (trimmed), as in
 * "[permission 440100 -> *]" -> "permission", "440100 -> *". */
static void
header_parts(const struct line *ln, char type[16], char arg[64])
{
    const char *s = memchr(ln->s, '[', ln->n);
    const char *end = s ? memchr(s, ']', ln->n - (size_t)(s - ln->s)) : NULL;
    type[0] = arg[0] = '\0';
    if (end == NULL)
        return;
    const char *p = s + 1;
    size_t n = (size_t)(end - p);
    trim(&p, &n);
    size_t tn = 0;
    while (tn < n && !isspace((unsigned char)p[tn]))
        tn++;
    snprintf(type, 16, "%.*s", (int)(tn < 15 ? tn : 15), p);
    const char *a = p + tn;
    size_t an = n - tn;
    trim(&a, &an);
    snprintf(arg, 64, "%.*s", (int)(an < 63 ? an : 63), a);
}

/* Does the section headed by ln name city: [member city], or a permission with city
 * on a side? */
static bool
names_city(const struct line *ln, const char *city, bool *is_member)
{
    char type[16], arg[64];
    header_parts(ln, type, arg);
    *is_member = strcmp(type, "member") == 0 && strcmp(arg, city) == 0;
    if (*is_member || strcmp(type, "permission") != 0)
        return *is_member;
    const char *arrow = strstr(arg, "->");
    if (arrow == NULL)
        return false;
    const char *a = arg, *b = arrow + 2;
    size_t an = (size_t)(arrow - arg), bn = strlen(b);
    trim(&a, &an);
    trim(&b, &bn);
    size_t cn = strlen(city);
    return (an == cn && memcmp(a, city, cn) == 0) || (bn == cn && memcmp(b, city, cn) == 0);
}

/* The index of the [federation] serial line, or SIZE_MAX. */
static size_t
serial_line(const struct src *src)
{
    for (size_t i = 0; i < src->n; i++) {
        const struct line *ln = &src->l[i];
        if (ln->kind != L_KEY || ln->sect == SIZE_MAX)
            continue;
        char type[16], arg[64];
        header_parts(&src->l[ln->sect], type, arg);
        const char *k = ln->s, *eq = memchr(ln->s, '=', ln->n);
        size_t kn = eq ? (size_t)(eq - k) : 0;
        trim(&k, &kn);
        if (strcmp(type, "federation") == 0 && kn == 6 && memcmp(k, "serial", 6) == 0)
            return i;
    }
    return SIZE_MAX;
}

/* The serial line ln with its number one higher, into buf; the rest of the line
 * (blanks, a comment) as it was. */
static int
serial_bump(const struct line *ln, char *buf, size_t bufsz, uint64_t *serial, bg_err *err)
{
    const char *eq = memchr(ln->s, '=', ln->n), *d = eq + 1, *end = ln->s + ln->n;
    while (d < end && (*d == ' ' || *d == '\t'))
        d++;
    const char *e = d;
    while (e < end && isdigit((unsigned char)*e))
        e++;
    char num[24];
    uint64_t v = 0;
    if (e == d || (size_t)(e - d) >= sizeof num)
        return bg_err_set(err, BG_EINVAL, "[federation] serial is not a number");
    snprintf(num, sizeof num, "%.*s", (int)(e - d), d);
    if (bg_num_u64(num, 1, UINT64_MAX - 1, &v, err) != BG_OK)
        return bg_err_set(err, BG_EINVAL, "[federation] serial %s cannot be raised", num);
    *serial = v + 1;
    int w = snprintf(buf, bufsz, "%.*s%" PRIu64 "%.*s", (int)(d - ln->s), ln->s, v + 1,
                     (int)(end - e), e);
    if (w < 0 || (size_t)w >= bufsz)
        return bg_err_set(err, BG_ELIMIT, "[federation] serial line is too long");
    return BG_OK;
}

/* The edit: lines in order, those with drop[i] left out, ins (if not NULL) after
 * line at (SIZE_MAX: at the end), the serial line replaced. */
static int
src_write(const struct src *src, const bool *drop, size_t at, const char *ins, char **out,
          size_t *out_len, uint64_t *serial, bg_err *err)
{
    size_t sl = serial_line(src);
    if (sl == SIZE_MAX)
        return bg_err_set(err, BG_EINVAL, "no serial in [federation] to raise");
    char sbuf[256];
    int rc = serial_bump(&src->l[sl], sbuf, sizeof sbuf, serial, err);
    if (rc != BG_OK)
        return rc;
    size_t total = strlen(sbuf) + (ins ? strlen(ins) : 0) + 2;
    for (size_t i = 0; i < src->n; i++)
        total += src->l[i].n;
    char *o = malloc(total);
    if (o == NULL)
        return bg_err_set(err, BG_ENOMEM, "out of memory");
    size_t n = 0;
    for (size_t i = 0; i < src->n; i++) {
        const struct line *ln = &src->l[i];
        if (!drop[i] && i == sl) {
            memcpy(o + n, sbuf, strlen(sbuf));
            n += strlen(sbuf);
        } else if (!drop[i]) {
            memcpy(o + n, ln->s, ln->n);
            n += ln->n;
        }
        if (ins != NULL && (i == at || (at == SIZE_MAX && i + 1 == src->n))) {
            if (n > 0 && o[n - 1] != '\n')
                o[n++] = '\n';
            memcpy(o + n, ins, strlen(ins));
            n += strlen(ins);
        }
    }
    o[n] = '\0';
    *out = o;
    *out_len = n;
    return BG_OK;
}

/* Nothing but blanks. */
static bool
is_empty(const struct line *ln)
{
    for (size_t i = 0; i < ln->n; i++)
        if (!isspace((unsigned char)ln->s[i]))
            return false;
    return true;
}

/* The last line of the section headed at h that is a key or a continuation. */
static size_t
section_end(const struct src *src, size_t h)
{
    size_t end = h;
    for (size_t i = h + 1; i < src->n && src->l[i].kind != L_HEADER; i++)
        if (src->l[i].kind != L_BLANK)
            end = i;
    return end;
}

/* A value that can stand on one line of the source as itself. */
static int
check_value(const char *key, const char *v, bool may_be_empty, bg_err *err)
{
    size_t n = strlen(v);
    if (n == 0 && !may_be_empty)
        return bg_err_set(err, BG_EINVAL, "%s: needs a value", key);
    if (n > 0 && (isspace((unsigned char)v[0]) || isspace((unsigned char)v[n - 1])))
        return bg_err_set(err, BG_EINVAL, "%s: blanks at either end would be lost", key);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c < 0x20 || c == 0x7f || c == ';' || c == '#')
            return bg_err_set(err, BG_EINVAL,
                              "%s: a control character, ';' or '#' cannot stand in the roster "
                              "source",
                              key);
    }
    return BG_OK;
}

/* The [member] section, a blank line before it (and after it, if gap). */
static int
new_member_text(const bg_roster_new_member *nm, bool gap, char **out, bg_err *err)
{
    const struct {
        const char *key, *v;
    } kv[] = {{"city", nm->city},          {"name", nm->name},
              {"endpoint", nm->endpoint},  {"certificate", nm->certificate},
              {"lists", nm->lists},        {"scale", nm->scale},
              {"grade_map", nm->grade_map}};
    if (!bg_city_code_valid(nm->city))
        return bg_err_set(err, BG_EINVAL, "city: '%.16s' is not a 6-digit city code",
                          nm->city ? nm->city : "");
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++) {
        if (kv[i].v == NULL)
            return bg_err_set(err, BG_EINVAL, "%s: needs a value", kv[i].key);
        int rc = check_value(kv[i].key, kv[i].v, strcmp(kv[i].key, "lists") == 0, err);
        if (rc != BG_OK)
            return rc;
    }
    size_t sz = 160;
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++)
        sz += strlen(kv[i].v);
    if ((*out = malloc(sz)) == NULL)
        return bg_err_set(err, BG_ENOMEM, "out of memory");
    snprintf(*out, sz,
             "\n[member %s]\nname = %s\nendpoint = %s\ncertificate = %s\nlists =%s%s\n"
             "scale = %s\ngrade_map = %s\n%s",
             nm->city, nm->name, nm->endpoint, nm->certificate, nm->lists[0] ? " " : "", nm->lists,
             nm->scale, nm->grade_map, gap ? "\n" : "");
    return BG_OK;
}

int
bg_roster_edit_add_member(const char *text, size_t len, const bg_roster_new_member *nm, char **out,
                          size_t *out_len, uint64_t *serial, bg_err *err)
{
    *out = NULL;
    struct src src = {0};
    char *ins = NULL;
    bool *drop = NULL;
    int rc = src_read(text, len, &src, err);
    if (rc == BG_OK && (drop = calloc(src.n + 1, sizeof *drop)) == NULL)
        rc = bg_err_set(err, BG_ENOMEM, "out of memory");
    size_t at = SIZE_MAX;
    for (size_t i = 0; rc == BG_OK && i < src.n; i++) {
        bool is_member = false;
        if (src.l[i].kind != L_HEADER)
            continue;
        if (names_city(&src.l[i], nm->city, &is_member) && is_member)
            rc = bg_err_set(err, BG_EEXIST, "%s is a member already ([member %s] at line %zu)",
                            nm->city, nm->city, i + 1);
        char type[16], arg[64];
        header_parts(&src.l[i], type, arg);
        if (strcmp(type, "member") == 0)
            at = section_end(&src, i);
    }
    if (rc == BG_OK)
        rc = new_member_text(nm, at != SIZE_MAX && at + 1 < src.n && !is_empty(&src.l[at + 1]),
                             &ins, err);
    if (rc == BG_OK)
        rc = src_write(&src, drop, at, ins, out, out_len, serial, err);
    free(drop);
    free(ins);
    free(src.l);
    return rc;
}

int
bg_roster_edit_remove_member(const char *text, size_t len, const char *city, char **out,
                             size_t *out_len, size_t *removed, uint64_t *serial, bg_err *err)
{
    *out = NULL;
    *removed = 0;
    struct src src = {0};
    bool *drop = NULL, member = false;
    if (!bg_city_code_valid(city))
        return bg_err_set(err, BG_EINVAL, "'%.16s' is not a 6-digit city code", city);
    int rc = src_read(text, len, &src, err);
    if (rc == BG_OK && (drop = calloc(src.n + 1, sizeof *drop)) == NULL)
        rc = bg_err_set(err, BG_ENOMEM, "out of memory");
    for (size_t i = 0; rc == BG_OK && i < src.n; i++) {
        bool is_member = false;
        if (src.l[i].kind != L_HEADER || !names_city(&src.l[i], city, &is_member))
            continue;
        member = member || is_member;
        size_t end = section_end(&src, i);
        for (size_t k = i; k <= end; k++)
            drop[k] = true;
        /* One blank line between what was before and after it, not two. */
        bool blank_after = end + 1 >= src.n || is_empty(&src.l[end + 1]);
        if (i > 0 && !drop[i - 1] && is_empty(&src.l[i - 1]) && blank_after)
            drop[i - 1] = true;
        (*removed)++;
        i = end;
    }
    if (rc == BG_OK && !member)
        rc = bg_err_set(err, BG_ENOTFOUND, "%s is not a member (no [member %s] section)", city,
                        city);
    if (rc == BG_OK)
        rc = src_write(&src, drop, SIZE_MAX, NULL, out, out_len, serial, err);
    free(drop);
    free(src.l);
    return rc;
}
