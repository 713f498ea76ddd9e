/*
 * config.c - baygate.ini: strict loading with inih, atomic writing (see config.h).
 *
 * Every key is a row in one table (section, name, kind, where it lives in
 * bg_config, range, default), so loading, defaults, checking and writing
 * cannot disagree about what the file holds.
 */
#include "gateway/config/config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <ini.h>

#include "common/file.h"
#include "common/json.h"
#include "common/num.h"
#include "domain/city.h"

/* A gateway's config is a few hundred bytes; anything far larger is not one. */
#define CONFIG_FILE_MAX (64 * 1024)

enum kind { K_CITY, K_NAME, K_LISTEN, K_PATH, K_IPC, K_U32, K_U64, K_HOSTPORT };

struct key {
    const char *section, *name;
    enum kind kind;
    size_t off, size;
    uint64_t min, max;
    const char *def; /* NULL: required; "": optional, off when absent (never written empty) */
};

#define FIELD(f) offsetof(bg_config, f), sizeof(((bg_config *)0)->f)

#define RATE_MAX_PER_S 1000000u
#define RATE_MAX_BYTES (1ull << 40)
/* One [rate] key: KIND_FIELD, into rate[i].FIELD. */
#define RATE(kind, i, f, type, min, max, def)                                                      \
    {                                                                                              \
        "rate", kind "_" #f, type, FIELD(rate[i].f), min, max, def                                 \
    }

static const struct key keys[] = {
    {"city", "code", K_CITY, FIELD(city), 0, 0, NULL},
    {"city", "name", K_NAME, FIELD(name), 0, 0, NULL},
    {"federation", "listen", K_LISTEN, FIELD(listen), 0, 0, BG_CONFIG_LISTEN_DEFAULT},
    {"federation", "recv_max_bytes", K_U64, FIELD(recv_max_bytes), BG_CONFIG_RECV_MIN,
     BG_CONFIG_RECV_MAX, "4194304"},
    {"federation", "relay_interval_s", K_U32, FIELD(relay_interval_s), 1, 86400, "60"},
    {"local", "socket", K_IPC, FIELD(local_socket), 0, 0, "local.ipc"},
    {"store", "data_dir", K_PATH, FIELD(data_dir), 0, 0, "data"},
    {"pki", "key", K_PATH, FIELD(key_path), 0, 0, "city.key"},
    {"pki", "cert", K_PATH, FIELD(cert_path), 0, 0, "city.crt"},
    {"pki", "ca", K_PATH, FIELD(ca_path), 0, 0, "ca.crt"},
    {"pki", "crl", K_PATH, FIELD(crl_path), 0, 0, "crl.pem"},
    {"pki", "roster", K_PATH, FIELD(roster_path), 0, 0, "roster.pb"},
    {"pki", "crl_warn_hours", K_U32, FIELD(crl_warn_hours), 1, 8760, "72"},
    {"timeouts", "dial_ms", K_U32, FIELD(dial_ms), 100, 600000, "5000"},
    {"timeouts", "request_ms", K_U32, FIELD(request_ms), 100, 3600000, "10000"},
    {"timeouts", "handshake_ms", K_U32, FIELD(handshake_ms), 100, 600000, "5000"},
    {"audit", "head_interval_s", K_U32, FIELD(head_interval_s), 1, 86400, "60"},
    {"audit", "witness_interval_s", K_U32, FIELD(witness_interval_s), 1, 86400, "300"},
    {"api", "listen", K_HOSTPORT, FIELD(api_listen), 0, 0, ""},
    /* Far above what a gateway asks of a peer, far below a flood: a gateway pings a peer
     * at most once per status or probe; a snapshot sync asks one chunk after another; a
     * PSI query of 1,000,000 ids is a few hundred chunks. A burst below 1 would refuse
     * every request; bytes below 1 KiB/s would refuse all but the first answer for
     * minutes. */
    RATE("ping", BG_CONFIG_RATE_PING, per_s, K_U32, 1, RATE_MAX_PER_S, "20"),
    RATE("ping", BG_CONFIG_RATE_PING, burst, K_U32, 1, RATE_MAX_PER_S, "40"),
    RATE("ping", BG_CONFIG_RATE_PING, bytes_per_s, K_U64, 1024, RATE_MAX_BYTES, "1048576"),
    RATE("ping", BG_CONFIG_RATE_PING, bytes_burst, K_U64, 1024, RATE_MAX_BYTES, "4194304"),
    RATE("snapshot", BG_CONFIG_RATE_SNAPSHOT, per_s, K_U32, 1, RATE_MAX_PER_S, "200"),
    RATE("snapshot", BG_CONFIG_RATE_SNAPSHOT, burst, K_U32, 1, RATE_MAX_PER_S, "2000"),
    RATE("snapshot", BG_CONFIG_RATE_SNAPSHOT, bytes_per_s, K_U64, 1024, RATE_MAX_BYTES, "33554432"),
    RATE("snapshot", BG_CONFIG_RATE_SNAPSHOT, bytes_burst, K_U64, 1024, RATE_MAX_BYTES,
         "268435456"),
    RATE("psi", BG_CONFIG_RATE_PSI, per_s, K_U32, 1, RATE_MAX_PER_S, "200"),
    RATE("psi", BG_CONFIG_RATE_PSI, burst, K_U32, 1, RATE_MAX_PER_S, "1000"),
    RATE("psi", BG_CONFIG_RATE_PSI, bytes_per_s, K_U64, 1024, RATE_MAX_BYTES, "67108864"),
    RATE("psi", BG_CONFIG_RATE_PSI, bytes_burst, K_U64, 1024, RATE_MAX_BYTES, "536870912"),
    RATE("status", BG_CONFIG_RATE_STATUS, per_s, K_U32, 1, RATE_MAX_PER_S, "20"),
    RATE("status", BG_CONFIG_RATE_STATUS, burst, K_U32, 1, RATE_MAX_PER_S, "100"),
    RATE("status", BG_CONFIG_RATE_STATUS, bytes_per_s, K_U64, 1024, RATE_MAX_BYTES, "4194304"),
    RATE("status", BG_CONFIG_RATE_STATUS, bytes_burst, K_U64, 1024, RATE_MAX_BYTES, "16777216"),
    RATE("witness", BG_CONFIG_RATE_WITNESS, per_s, K_U32, 1, RATE_MAX_PER_S, "20"),
    RATE("witness", BG_CONFIG_RATE_WITNESS, burst, K_U32, 1, RATE_MAX_PER_S, "100"),
    RATE("witness", BG_CONFIG_RATE_WITNESS, bytes_per_s, K_U64, 1024, RATE_MAX_BYTES, "1048576"),
    RATE("witness", BG_CONFIG_RATE_WITNESS, bytes_burst, K_U64, 1024, RATE_MAX_BYTES, "8388608"),
};

#define NKEYS (sizeof keys / sizeof keys[0])

static const struct key *
find_key(const char *section, const char *name)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (strcmp(keys[i].section, section) == 0 && strcmp(keys[i].name, name) == 0)
            return &keys[i];
    return NULL;
}

static bool
known_section(const char *section)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (strcmp(keys[i].section, section) == 0)
            return true;
    return false;
}

/* --- values --- */

/* What inih can hand back unchanged: no control characters, no surrounding
 * blanks (it strips them), no ';' (an inline comment after a blank). */
static int
check_text(const char *v, bg_err *err)
{
    size_t len = strlen(v);
    if (len == 0)
        return bg_err_set(err, BG_EINVAL, "empty value");
    if (bg_utf8_valid_prefix((const unsigned char *)v, len) != len)
        return bg_err_set(err, BG_EINVAL, "value is not valid UTF-8");
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c < 0x20 || c == 0x7f)
            return bg_err_set(err, BG_EINVAL, "value holds a control character");
        if (c == ';')
            return bg_err_set(err, BG_EINVAL, "value holds ';' (a comment in this format)");
    }
    if (v[0] == ' ' || v[len - 1] == ' ')
        return bg_err_set(err, BG_EINVAL, "value has leading or trailing blanks");
    return BG_OK;
}

/* tls+tcp://HOST:PORT with a non-empty host and a port 1-65535. */
static int
check_listen(const char *v, bg_err *err)
{
    static const char scheme[] = "tls+tcp://";
    if (strncmp(v, scheme, sizeof scheme - 1) != 0)
        return bg_err_set(err, BG_EINVAL, "'%s' is not a tls+tcp:// address", v);
    const char *host = v + sizeof scheme - 1;
    const char *colon = strrchr(host, ':');
    uint64_t port = 0;
    if (colon == NULL || colon == host || bg_num_u64(colon + 1, 1, 65535, &port, NULL) != BG_OK)
        return bg_err_set(err, BG_EINVAL,
                          "'%s' needs a host and a port 1-65535 (tls+tcp://HOST:PORT)", v);
    return BG_OK;
}

/* HOST:PORT (the HTTP API): a host name or IPv4 address, or [IPv6], and a port 1-65535. */
static int
check_hostport(const char *v, bg_err *err)
{
    const char *colon = strrchr(v, ':');
    uint64_t port = 0;
    if (colon == NULL || colon == v || bg_num_u64(colon + 1, 1, 65535, &port, NULL) != BG_OK)
        return bg_err_set(err, BG_EINVAL, "'%s' needs a host and a port 1-65535 (HOST:PORT)", v);
    bool v6 = v[0] == '[';
    if (v6 && colon[-1] != ']')
        return bg_err_set(err, BG_EINVAL, "'%s': an IPv6 host goes in brackets, [::1]:8080", v);
    for (const char *c = v + v6; c < colon - v6; c++)
        if (!isalnum((unsigned char)*c) && *c != '.' && *c != '-' && !(v6 && *c == ':'))
            return bg_err_set(err, BG_EINVAL, "'%s': the host holds '%c'", v, *c);
    return BG_OK;
}

/* v made absolute against dir, into out. */
static int
resolve(const char *dir, const char *v, char *out, size_t outsz, bg_err *err)
{
    /* Two pieces, so the compiler sees no snprintf reading the struct it writes to. */
    int n = snprintf(out, outsz, "%s", v[0] == '/' ? "" : dir);
    if (n >= 0 && (size_t)n < outsz)
        n += snprintf(out + n, outsz - (size_t)n, "%s%s", v[0] == '/' ? "" : "/", v);
    if (n < 0 || (size_t)n >= outsz)
        return bg_err_set(err, BG_ELIMIT, "path longer than %zu bytes", outsz - 1);
    return BG_OK;
}

static int
set_value(bg_config *cfg, const struct key *k, const char *v, bg_err *err)
{
    int rc = check_text(v, err);
    if (rc != BG_OK)
        return rc;
    char *field = (char *)cfg + k->off;
    uint64_t x = 0;
    switch (k->kind) {
    case K_CITY:
        if (!bg_city_code_valid(v))
            return bg_err_set(err, BG_EINVAL, "'%s' is not a 6-digit city code", v);
        break;
    case K_NAME:
        if (strlen(v) > BG_CONFIG_NAME_MAX)
            return bg_err_set(err, BG_EINVAL, "longer than %d bytes", BG_CONFIG_NAME_MAX);
        break;
    case K_LISTEN:
        if ((rc = check_listen(v, err)) != BG_OK)
            return rc;
        break;
    case K_HOSTPORT:
        if ((rc = check_hostport(v, err)) != BG_OK)
            return rc;
        break;
    case K_PATH:
        return resolve(cfg->dir, v, field, k->size, err);
    case K_IPC:
        if ((rc = resolve(cfg->dir, v, field, k->size, err)) != BG_OK)
            return rc;
        if (strlen(field) > BG_CONFIG_IPC_PATH_MAX)
            return bg_err_set(err, BG_ELIMIT,
                              "socket path %s is longer than a unix socket allows (%d bytes)",
                              field, BG_CONFIG_IPC_PATH_MAX);
        snprintf(cfg->local_url, sizeof cfg->local_url, "ipc://%s", field);
        return BG_OK;
    case K_U32:
        if ((rc = bg_num_u64(v, k->min, k->max, &x, err)) != BG_OK)
            return rc;
        *(uint32_t *)(void *)field = (uint32_t)x;
        return BG_OK;
    case K_U64:
        if ((rc = bg_num_u64(v, k->min, k->max, &x, err)) != BG_OK)
            return rc;
        *(uint64_t *)(void *)field = x;
        return BG_OK;
    }
    if (strlen(v) >= k->size)
        return bg_err_set(err, BG_ELIMIT, "longer than %zu bytes", k->size - 1);
    memcpy(field, v, strlen(v) + 1);
    return BG_OK;
}

int
bg_config_set(bg_config *cfg, const char *section, const char *key, const char *value, bg_err *err)
{
    const struct key *k = find_key(section, key);
    if (k == NULL)
        return bg_err_set(err, BG_EINVAL, "unknown key '%s' in section [%s]", key, section);
    bg_err sub = {0};
    int rc = set_value(cfg, k, value, &sub);
    if (rc != BG_OK)
        return bg_err_set(err, rc, "[%s] %s: %s", section, key, sub.msg);
    return BG_OK;
}

/* --- directories --- */

/* The absolute form of dir (which need not exist), without trailing '/'. */
static int
absolute_dir(const char *dir, char out[BG_CONFIG_PATH_MAX], bg_err *err)
{
    char buf[PATH_MAX];
    if (realpath(dir, buf) != NULL) {
        if (strlen(buf) >= BG_CONFIG_PATH_MAX)
            return bg_err_set(err, BG_ELIMIT, "directory path %s is too long", buf);
        strcpy(out, buf);
        return BG_OK;
    }
    if (errno != ENOENT)
        return bg_err_set(err, BG_EIO, "cannot resolve %s: %s", dir, strerror(errno));
    char cwd[PATH_MAX];
    if (dir[0] != '/' && getcwd(cwd, sizeof cwd) == NULL)
        return bg_err_set(err, BG_EIO, "cannot get the working directory: %s", strerror(errno));
    int n = dir[0] == '/' ? snprintf(out, BG_CONFIG_PATH_MAX, "%s", dir)
                          : snprintf(out, BG_CONFIG_PATH_MAX, "%s/%s", cwd, dir);
    if (n < 0 || n >= BG_CONFIG_PATH_MAX)
        return bg_err_set(err, BG_ELIMIT, "directory path %s is too long", dir);
    for (size_t len = (size_t)n; len > 1 && out[len - 1] == '/'; len--)
        out[len - 1] = '\0';
    return BG_OK;
}

/* The directory part of path (which must exist), made absolute. */
static int
dir_of(const char *path, char out[BG_CONFIG_PATH_MAX], bg_err *err)
{
    char d[PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (slash == NULL) {
        strcpy(d, ".");
    } else if (slash == path) {
        strcpy(d, "/");
    } else {
        if ((size_t)(slash - path) >= sizeof d)
            return bg_err_set(err, BG_ELIMIT, "path %s is too long", path);
        memcpy(d, path, (size_t)(slash - path));
        d[slash - path] = '\0';
    }
    return absolute_dir(d, out, err);
}

static int
apply_defaults(bg_config *cfg, bg_err *err)
{
    for (size_t i = 0; i < NKEYS; i++) {
        if (keys[i].def == NULL || keys[i].def[0] == '\0')
            continue;
        int rc = bg_config_set(cfg, keys[i].section, keys[i].name, keys[i].def, err);
        if (rc != BG_OK)
            return rc;
    }
    return BG_OK;
}

int
bg_config_defaults(bg_config *cfg, const char *dir, const char *city, const char *name,
                   const char *listen, bg_err *err)
{
    memset(cfg, 0, sizeof *cfg);
    int rc;
    if ((rc = absolute_dir(dir, cfg->dir, err)) || (rc = apply_defaults(cfg, err)) ||
        (rc = bg_config_set(cfg, "city", "code", city, err)) ||
        (rc = bg_config_set(cfg, "city", "name", name, err)))
        return rc;
    if (listen != NULL)
        rc = bg_config_set(cfg, "federation", "listen", listen, err);
    return rc;
}

/* --- loading --- */

struct parse {
    bg_config *cfg;
    const char *text;
    size_t len, pos;
    size_t line;     /* lines handed to inih so far */
    size_t err_line; /* 0: no error of ours */
    bg_err sub;      /* our first error */
    bool seen[NKEYS];
};

static void fail_at(struct parse *ps, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Records the first error of the parse, at the line being read. */
static void
fail_at(struct parse *ps, int code, const char *fmt, ...)
{
    if (ps->err_line != 0)
        return;
    ps->err_line = ps->line;
    ps->sub.code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ps->sub.msg, sizeof ps->sub.msg, fmt, ap);
    va_end(ap);
}

/* The section a "[name]" line opens, checked as soon as the line is read: a
 * misspelt empty section would otherwise never reach the handler. */
static void
check_section_line(struct parse *ps, const char *line)
{
    while (*line == ' ' || *line == '\t')
        line++;
    if (*line != '[')
        return;
    const char *end = strchr(line, ']');
    if (end == NULL)
        return; /* inih reports the syntax error */
    char name[64];
    size_t n = (size_t)(end - line - 1);
    if (n >= sizeof name)
        n = sizeof name - 1;
    memcpy(name, line + 1, n);
    name[n] = '\0';
    if (!known_section(name))
        fail_at(ps, BG_EINVAL, "unknown section [%s]", name);
}

/* An fgets for inih over the file's bytes, counting lines, refusing lines
 * longer than inih's buffer (which would split them in two) and stopping at
 * our first error. */
/* The longest line bg_config_write writes (inih hands read_line INI_MAX_LINE bytes,
 * of which a line may use all but the newline, a CR and the NUL). */
#define CONFIG_LINE_MAX 197

static char *
read_line(char *str, int num, void *stream)
{
    struct parse *ps = stream;
    if (ps->err_line != 0 || ps->pos >= ps->len || num < 2)
        return NULL;
    const char *start = ps->text + ps->pos;
    const char *nl = memchr(start, '\n', ps->len - ps->pos);
    size_t n = nl ? (size_t)(nl - start) + 1 : ps->len - ps->pos;
    ps->line++;
    if (n > (size_t)num - 1) {
        fail_at(ps, BG_ELIMIT, "line longer than %d bytes", num - 3);
        _Static_assert(CONFIG_LINE_MAX <= INI_MAX_LINE - 3, "what we write, inih reads");
        return NULL;
    }
    memcpy(str, start, n);
    str[n] = '\0';
    ps->pos += n;
    check_section_line(ps, str);
    return ps->err_line != 0 ? NULL : str;
}

static int
on_value(void *user, const char *section, const char *name, const char *value)
{
    struct parse *ps = user;
    if (ps->err_line != 0)
        return 0;
    if (section[0] == '\0') {
        fail_at(ps, BG_EINVAL, "key '%s' outside any section", name);
        return 0;
    }
    const struct key *k = find_key(section, name);
    if (k == NULL) {
        if (known_section(section))
            fail_at(ps, BG_EINVAL, "unknown key '%s' in section [%s]", name, section);
        else
            fail_at(ps, BG_EINVAL, "unknown section [%s]", section);
        return 0;
    }
    size_t i = (size_t)(k - keys);
    if (ps->seen[i]) {
        fail_at(ps, BG_EINVAL, "key '%s' in section [%s] given twice (or an indented line)", name,
                section);
        return 0;
    }
    ps->seen[i] = true;
    bg_err sub = {0};
    if (set_value(ps->cfg, k, value, &sub) != BG_OK) {
        fail_at(ps, sub.code, "[%s] %s: %s", section, name, sub.msg);
        return 0;
    }
    return 1;
}

static int
read_file(const char *path, char **out, size_t *len, bg_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return bg_err_set(err, errno == ENOENT ? BG_ENOTFOUND : BG_EIO, "cannot read %s: %s", path,
                          strerror(errno));
    char *buf = malloc(CONFIG_FILE_MAX + 1);
    if (buf == NULL) {
        close(fd);
        return bg_err_set(err, BG_ENOMEM, "out of memory");
    }
    size_t got = 0;
    for (;;) {
        ssize_t r = read(fd, buf + got, CONFIG_FILE_MAX + 1 - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            close(fd);
            free(buf);
            return bg_err_set(err, BG_EIO, "cannot read %s: %s", path, strerror(e));
        }
        if (r == 0)
            break;
        got += (size_t)r;
        if (got > CONFIG_FILE_MAX) {
            close(fd);
            free(buf);
            return bg_err_set(err, BG_ELIMIT, "%s is larger than %d bytes", path, CONFIG_FILE_MAX);
        }
    }
    close(fd);
    buf[got] = '\0';
    if (memchr(buf, '\0', got) != NULL) {
        free(buf);
        return bg_err_set(err, BG_EINVAL, "%s holds a NUL byte; not a config file", path);
    }
    *out = buf;
    *len = got;
    return BG_OK;
}

int
bg_config_load(const char *path, bg_config *cfg, bg_err *err)
{
    bg_config tmp;
    memset(&tmp, 0, sizeof tmp);
    char *text = NULL;
    size_t len = 0;
    int rc = read_file(path, &text, &len, err);
    if (rc != BG_OK)
        return rc;
    if ((rc = dir_of(path, tmp.dir, err)) != BG_OK || (rc = apply_defaults(&tmp, err)) != BG_OK) {
        free(text);
        return rc;
    }
    struct parse ps = {.cfg = &tmp, .text = text, .len = len};
    int r = ini_parse_stream(read_line, &ps, on_value, &ps);
    free(text);
    /* Ours first: our line counting is exact, and inih's errors come after. */
    if (ps.err_line != 0)
        return bg_err_set(err, ps.sub.code, "%s:%zu: %s", path, ps.err_line, ps.sub.msg);
    if (r > 0)
        return bg_err_set(err, BG_EINVAL, "%s:%d: expected 'key = value' or '[section]'", path, r);
    if (r < 0)
        return bg_err_set(err, BG_ENOMEM, "%s: the ini parser failed (%d)", path, r);
    for (size_t i = 0; i < NKEYS; i++)
        if (keys[i].def == NULL && !ps.seen[i])
            return bg_err_set(err, BG_EINVAL, "%s: [%s] %s is required", path, keys[i].section,
                              keys[i].name);
    *cfg = tmp;
    return BG_OK;
}

/* --- writing --- */

/* A field as the file holds it: paths inside dir relative to it. */
static int
format_value(const bg_config *cfg, const struct key *k, const char *dir, char *out, size_t outsz,
             bg_err *err)
{
    const char *field = (const char *)cfg + k->off;
    int n = 0;
    switch (k->kind) {
    case K_U32:
        n = snprintf(out, outsz, "%u", (unsigned)*(const uint32_t *)(const void *)field);
        break;
    case K_U64:
        n = snprintf(out, outsz, "%llu",
                     (unsigned long long)*(const uint64_t *)(const void *)field);
        break;
    case K_PATH:
    case K_IPC: {
        size_t dl = strlen(dir);
        if (strncmp(field, dir, dl) == 0 && field[dl] == '/' && field[dl + 1] != '\0')
            field += dl + 1;
        n = snprintf(out, outsz, "%s", field);
        break;
    }
    default:
        n = snprintf(out, outsz, "%s", field);
        break;
    }
    if (n < 0 || (size_t)n >= outsz)
        return bg_err_set(err, BG_ELIMIT, "[%s] %s: value too long", k->section, k->name);
    /* Whatever is written must read back as the same value. */
    bg_config probe = *cfg;
    return bg_config_set(&probe, k->section, k->name, out, err);
}

static int append(char *buf, size_t cap, size_t *off, bg_err *err, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int
append(char *buf, size_t cap, size_t *off, bg_err *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *off, cap - *off, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= cap - *off)
        return bg_err_set(err, BG_ELIMIT, "configuration text too long");
    *off += (size_t)n;
    return BG_OK;
}

int
bg_config_write(const char *path, const bg_config *cfg, bool replace, bg_err *err)
{
    char dir[BG_CONFIG_PATH_MAX];
    int rc = dir_of(path, dir, err);
    if (rc != BG_OK)
        return rc;
    /* Sized for every key at its longest, so snprintf below cannot truncate. */
    size_t cap = 512 + NKEYS * (BG_CONFIG_PATH_MAX + 64), off = 0;
    char *buf = malloc(cap);
    if (buf == NULL)
        return bg_err_set(err, BG_ENOMEM, "out of memory");
    rc = append(buf, cap, &off, err,
                "; %s - baygate gateway configuration.\n"
                "; Relative paths are relative to this file's directory.\n",
                BG_CONFIG_FILE);
    const char *section = "";
    for (size_t i = 0; i < NKEYS && rc == BG_OK; i++) {
        char value[BG_CONFIG_PATH_MAX + 8];
        if (keys[i].def != NULL && keys[i].def[0] == '\0' &&
            ((const char *)cfg + keys[i].off)[0] == '\0')
            continue; /* an optional key that is off: absent */
        rc = format_value(cfg, &keys[i], dir, value, sizeof value, err);
        if (rc == BG_OK && strcmp(section, keys[i].section) != 0) {
            section = keys[i].section;
            rc = append(buf, cap, &off, err, "\n[%s]\n", section);
        }
        /* Never write what bg_config_load would refuse: inih reads lines of at
         * most CONFIG_LINE_MAX bytes, and a longer value would leave a file that
         * 'serve' refuses at its next start. */
        size_t line = strlen(keys[i].name) + 3 + strlen(value);
        if (rc == BG_OK && line > CONFIG_LINE_MAX)
            rc = bg_err_set(err, BG_ELIMIT,
                            "%s: a value of %zu bytes makes a line longer than the %d bytes "
                            "a configuration line may have",
                            keys[i].name, strlen(value), CONFIG_LINE_MAX);
        if (rc == BG_OK)
            rc = append(buf, cap, &off, err, "%s = %s\n", keys[i].name, value);
    }
    if (rc == BG_OK)
        /* 0600: the file names where the city key lives. */
        rc = replace ? bg_file_write_replace(path, buf, off, 0600, err)
                     : bg_file_write_new(path, buf, off, 0600, err);
    free(buf);
    return rc;
}
