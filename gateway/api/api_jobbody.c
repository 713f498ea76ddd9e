/*
 * api_jobbody.c - a job's JSON body, streamed (api_jobbody.h).
 */
#include "gateway/api/api_jobbody.h"

#include <string.h>

#include "gateway/api/api_rows.h"

typedef struct rd {
    FILE *f;
    long off;
    bg_err *err;
} rd;

static int
next(rd *r)
{
    int c = getc_unlocked(r->f);
    if (c != EOF)
        r->off++;
    return c;
}

/* The next byte that is not white space. */
static int
skip_ws(rd *r)
{
    int c;
    while ((c = next(r)) == ' ' || c == '\t' || c == '\n' || c == '\r')
        ;
    return c;
}

static int
fail(rd *r, const char *what)
{
    return bg_err_set(r->err, BG_EINVAL, "the JSON body, at byte %ld: %s", r->off, what);
}

static int
hex4(rd *r, unsigned *v)
{
    *v = 0;
    for (int i = 0; i < 4; i++) {
        int c = next(r);
        unsigned d = c >= '0' && c <= '9'   ? (unsigned)(c - '0')
                     : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
                     : c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10)
                                            : 16;
        if (d == 16)
            return fail(r, "a \\u escape needs four hex digits");
        *v = *v << 4 | d;
    }
    return BG_OK;
}

/* Appends code point cp as UTF-8 to buf (max bytes); false if it does not fit. */
static bool
put_utf8(char *buf, size_t max, size_t *n, unsigned cp)
{
    char t[4];
    size_t k = 0;
    if (cp < 0x80)
        t[k++] = (char)cp;
    else if (cp < 0x800) {
        t[k++] = (char)(0xc0 | cp >> 6);
        t[k++] = (char)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        t[k++] = (char)(0xe0 | cp >> 12);
        t[k++] = (char)(0x80 | (cp >> 6 & 0x3f));
        t[k++] = (char)(0x80 | (cp & 0x3f));
    } else {
        t[k++] = (char)(0xf0 | cp >> 18);
        t[k++] = (char)(0x80 | (cp >> 12 & 0x3f));
        t[k++] = (char)(0x80 | (cp >> 6 & 0x3f));
        t[k++] = (char)(0x80 | (cp & 0x3f));
    }
    if (*n + k > max)
        return false;
    memcpy(buf + *n, t, k);
    *n += k;
    return true;
}

/* A string (its opening quote read) of at most max bytes into buf (NUL-terminated);
 * what names it in errors. */
static int
string(rd *r, char *buf, size_t max, const char *what)
{
    size_t n = 0;
    char msg[160];
    for (;;) {
        int c = next(r);
        unsigned cp;
        if (c == EOF)
            return fail(r, "the body ends inside a string");
        if (c == '"')
            break;
        if (c < 0x20)
            return fail(r, "a control character inside a string");
        if (c != '\\') {
            cp = (unsigned)c;
            if (n == max)
                goto too_long;
            buf[n++] = (char)c;
            continue;
        }
        switch (c = next(r)) {
        case '"':
        case '\\':
        case '/':
            cp = (unsigned)c;
            break;
        case 'b':
            cp = '\b';
            break;
        case 'f':
            cp = '\f';
            break;
        case 'n':
            cp = '\n';
            break;
        case 'r':
            cp = '\r';
            break;
        case 't':
            cp = '\t';
            break;
        case 'u': {
            if (hex4(r, &cp) != BG_OK)
                return BG_EINVAL;
            if (cp >= 0xd800 && cp < 0xdc00) {
                unsigned lo;
                if (next(r) != '\\' || next(r) != 'u' || hex4(r, &lo) != BG_OK || lo < 0xdc00 ||
                    lo > 0xdfff)
                    return fail(r, "a lone surrogate in a \\u escape");
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            } else if (cp >= 0xdc00 && cp < 0xe000)
                return fail(r, "a lone surrogate in a \\u escape");
            break;
        }
        default:
            return fail(r, "an unknown escape in a string");
        }
        if (cp == 0)
            return fail(r, "a NUL inside a string");
        if (!put_utf8(buf, max, &n, cp))
            goto too_long;
    }
    buf[n] = '\0';
    return BG_OK;
too_long:
    snprintf(msg, sizeof msg, "%s is longer than %zu bytes", what, max);
    return fail(r, msg);
}

/* A string value (after the member's colon) into buf. */
static int
string_value(rd *r, char *buf, size_t max, const char *member)
{
    char msg[120];
    if (skip_ws(r) != '"') {
        snprintf(msg, sizeof msg, "\"%s\" must be a string", member);
        return fail(r, msg);
    }
    return string(r, buf, max, member);
}

/* The next element of an array: true with the string read into buf, false at its
 * end (*rc the error, if any). first: nothing read yet. */
static bool
array_next(rd *r, bool *first, char *buf, size_t max, const char *member, int *rc)
{
    char msg[120];
    int c = skip_ws(r);
    if (c == ']' && *first)
        return false;
    if (!*first) {
        if (c == ']')
            return false;
        if (c != ',') {
            *rc = fail(r, "expected ',' or ']' in an array");
            return false;
        }
        c = skip_ws(r);
    }
    *first = false;
    if (c != '"') {
        snprintf(msg, sizeof msg, "every element of \"%s\" must be a string", member);
        *rc = fail(r, msg);
        return false;
    }
    *rc = string(r, buf, max, member);
    return *rc == BG_OK;
}

static int
peers_value(rd *r, api_jobreq *q)
{
    int c = skip_ws(r);
    char buf[API_JOBREQ_TEXT_MAX + 1];
    if (c == '"') {
        int rc = string(r, buf, API_JOBREQ_TEXT_MAX, "peers");
        if (rc != BG_OK)
            return rc;
        if (strcmp(buf, "all") != 0)
            return fail(r, "\"peers\" is \"all\" or an array of city codes");
        q->all = true;
        return BG_OK;
    }
    if (c != '[')
        return fail(r, "\"peers\" is \"all\" or an array of city codes");
    bool first = true;
    int rc = BG_OK;
    q->all = false;
    while (array_next(r, &first, buf, API_JOBREQ_TEXT_MAX, "peers", &rc)) {
        if (q->npeers == BG_ROSTER_MAX_MEMBERS)
            return bg_err_set(r->err, BG_ELIMIT, "\"peers\" names more than %d cities",
                              BG_ROSTER_MAX_MEMBERS);
        memcpy(q->peers[q->npeers++], buf, sizeof buf);
    }
    if (rc == BG_OK && q->npeers == 0)
        return fail(r, "\"peers\" is an empty array (give \"all\" or some city codes)");
    return rc;
}

static int
ids_value(rd *r, FILE *out)
{
    if (skip_ws(r) != '[')
        return fail(r, "\"ids\" must be an array of strings");
    bool first = true;
    int rc = BG_OK;
    size_t n = 0;
    char buf[BG_API_ID_LINE_MAX + 1];
    while (array_next(r, &first, buf, BG_API_ID_LINE_MAX, "an id", &rc)) {
        if (strpbrk(buf, "\r\n") != NULL)
            return fail(r, "an id holds a line break");
        if (++n > BG_API_IDS_MAX)
            return bg_err_set(r->err, BG_ELIMIT, "\"ids\" holds more than %u ids",
                              (unsigned)BG_API_IDS_MAX);
        fputs(buf, out);
        putc('\n', out);
    }
    return rc;
}

int
api_jobbody_json(FILE *in, FILE *ids_out, api_jobreq *q, bg_err *err)
{
    static const char *const members[] = {"kind", "list", "purpose", "auth_ref", "peers", "ids"};
    enum { NM = sizeof members / sizeof *members };
    rd r = {.f = in, .err = err};
    bool seen[NM] = {false};
    memset(q, 0, sizeof *q);
    q->all = true;
    if (skip_ws(&r) != '{')
        return fail(&r, "expected an object");
    int c = skip_ws(&r);
    for (bool first = true;; first = false) {
        if (c == '}' && first)
            break;
        if (c != '"')
            return fail(&r, "expected a member name");
        char name[API_JOBREQ_TEXT_MAX + 1], msg[160];
        int rc = string(&r, name, API_JOBREQ_TEXT_MAX, "a member name");
        if (rc != BG_OK)
            return rc;
        if (skip_ws(&r) != ':')
            return fail(&r, "expected ':' after a member name");
        size_t m = 0;
        while (m < NM && strcmp(name, members[m]) != 0)
            m++;
        if (m == NM) {
            snprintf(msg, sizeof msg,
                     "unknown member \"%.64s\" (kind, list, purpose, auth_ref, peers, ids)", name);
            return fail(&r, msg);
        }
        if (seen[m]) {
            snprintf(msg, sizeof msg, "\"%s\" is given twice", members[m]);
            return fail(&r, msg);
        }
        seen[m] = true;
        switch (m) {
        case 0:
            rc = string_value(&r, q->kind, API_JOBREQ_TEXT_MAX, "kind");
            break;
        case 1:
            rc = string_value(&r, q->list, API_JOBREQ_TEXT_MAX, "list");
            break;
        case 2:
            rc = string_value(&r, q->purpose, API_JOBREQ_TEXT_MAX, "purpose");
            break;
        case 3:
            rc = string_value(&r, q->auth_ref, API_JOBREQ_AUTH_MAX, "auth_ref");
            break;
        case 4:
            rc = peers_value(&r, q);
            break;
        default:
            rc = ids_value(&r, ids_out);
            break;
        }
        if (rc != BG_OK)
            return rc;
        c = skip_ws(&r);
        if (c == '}')
            break;
        if (c != ',')
            return fail(&r, "expected ',' or '}' after a member");
        c = skip_ws(&r);
    }
    if (skip_ws(&r) != EOF)
        return fail(&r, "something follows the object");
    if (ferror(in))
        return bg_err_set(err, BG_EIO, "the JSON body could not be read");
    if (!seen[5])
        return bg_err_set(err, BG_EINVAL, "the JSON body has no \"ids\"");
    return BG_OK;
}
