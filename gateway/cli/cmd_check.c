/*
 * cmd_check.c - baygate check: is this gateway directory ready to serve?
 *
 * Reads what 'serve' reads, through the same loaders, and starts nothing and
 * writes nothing (the store and the evidence log are opened read-only, so it
 * is safe beside a running gateway). Every problem is reported in one run,
 * one line per check:
 *
 *     ok|warn|FAIL <what>: <detail>
 *
 * A check that needs a file that did not load says "not checked" as a
 * warning instead of failing a second time for the same cause. baygate.ini
 * names every other file, so without it nothing else is checked.
 * Exit status: 0 nothing failed (warnings allowed), 1 something failed,
 * 2 usage.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "certs/pki.h"
#include "certs/sig.h"
#include "certs/trust.h"
#include "common/file.h"
#include "common/json.h"
#include "domain/city.h"
#include "gateway/audit/audit.h"
#include "gateway/cli/cli.h"
#include "gateway/config/config.h"
#include "gateway/store/store.h"
#include "peers/roster.h"

/* A certificate with fewer days left than this is a warning: time to rotate. */
#define CHECK_CERT_WARN_DAYS 30

static void
check_usage(FILE *f)
{
    fprintf(
        f,
        "usage: baygate check --dir GW [--json]\n\n"
        "Checks the gateway directory GW without starting it, and lists every\n"
        "problem at once, one line per check: 'ok|warn|FAIL WHAT: DETAIL'.\n"
        "  config         %s parses (it names every other file)\n"
        "  key            city.key exists, mode 0600 (no group or other access)\n"
        "  key match      city.key belongs to city.crt\n"
        "  certificate    city.crt is issued by ca.crt, for this city, not revoked by\n"
        "                 crl.pem, not expired (days left; warn under %d)\n"
        "  CA             ca.crt loads (days left)\n"
        "  CRL            crl.pem is signed by the CA, before its nextUpdate (hours\n"
        "                 left; warn under [pki] crl_warn_hours)\n"
        "  roster         roster.pb opens with the CA\n"
        "  roster member  it lists this city\n"
        "  roster pin     it pins this city.crt, as current or next certificate (else\n"
        "                 peers refuse us with pin-mismatch)\n"
        "  listen         [federation] listen agrees with the roster's endpoint (warn)\n"
        "  store          the credit store opens, its schema is current, its city ours\n"
        "  evidence log   DATA/audit opens (read-only)\n"
        "  serve          whether a gateway serves GW now, and its pid\n"
        "Nothing is written: it is safe while GW serves. --json prints one object:\n"
        "{\"dir\",\"checks\":[{\"check\",\"status\",\"detail\"}],\"failed\",\"warnings\",\"ok\"}.\n"

        "\n"
        "EXAMPLES\n"
        "  baygate check --dir GZ\n"
        "  baygate check --dir GZ --json\n"
        "\n"
        "EXIT STATUS\n"
        "  0  no check failed (warnings allowed)\n"
        "  1  a check failed\n"
        "  2  usage error\n",
        BG_CONFIG_FILE, CHECK_CERT_WARN_DAYS);
}

enum level { LV_OK, LV_WARN, LV_FAIL };

/* What the checks loaded, for the checks after them, and the report so far. */
struct chk {
    const char *dir;
    bool json;
    unsigned nchecks, nwarn, nfail;
    bg_config cfg;
    EVP_PKEY *key;
    X509 *cert, *ca;
    X509_CRL *crl;
    bool crl_usable; /* signed by the CA and before its nextUpdate */
    uint64_t crl_number;
    bg_roster *roster;
};

static void say(struct chk *c, enum level lv, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Paths in s as the operator named them: the configuration's absolute directory
 * (followed by '/') replaced with --dir as given, so every path printed works
 * from where check was run. */
static void
as_given(const struct chk *c, const char *s, char *out, size_t outsz)
{
    size_t n = strlen(c->cfg.dir), dn = strlen(c->dir), o = 0;
    while (dn > 1 && c->dir[dn - 1] == '/')
        dn--;
    while (*s != '\0' && o + 1 < outsz) {
        if (n > 0 && strncmp(s, c->cfg.dir, n) == 0 && s[n] == '/') {
            o += (size_t)snprintf(out + o, outsz - o, "%.*s", (int)dn, c->dir);
            o = o < outsz ? o : outsz - 1;
            s += n;
        } else {
            out[o++] = *s++;
        }
    }
    out[o] = '\0';
}

/* One line (or one JSON element) of the report. */
static void
say(struct chk *c, enum level lv, const char *what, const char *fmt, ...)
{
    static const char *const names[] = {"ok", "warn", "FAIL"};
    char raw[2048], detail[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    as_given(c, raw, detail, sizeof detail);
    c->nwarn += lv == LV_WARN;
    c->nfail += lv == LV_FAIL;
    if (c->json) {
        printf("%s{\"check\":", c->nchecks ? "," : "");
        bg_json_cstr(stdout, what);
        printf(",\"status\":\"%s\",\"detail\":", names[lv]);
        bg_json_cstr(stdout, detail);
        putchar('}');
    } else {
        printf("%-4s %s: %s\n", names[lv], what, detail);
    }
    c->nchecks++;
}

/* "expires 2027-01-31T00:00:00Z (364 days left)" or "expired ... (3 days ago)";
 * *days as bg_cli_days_left counts them. True if x has expired. */
static bool
expiry_text(X509 *x, char *out, size_t outsz, long long *days)
{
    time_t na = 0, now = time(NULL);
    char t[BG_PKI_TIME_LEN];
    *days = 0;
    if (bg_pki_asn1_time(X509_get0_notAfter(x), &na, NULL) != BG_OK) {
        snprintf(out, outsz, "expiry unreadable");
        return false;
    }
    bg_pki_time_format(na, t);
    *days = bg_cli_days_left(na, now);
    long long n = *days < 0 ? -*days : *days;
    snprintf(out, outsz, "%s %s (%lld day%s %s)", na < now ? "expired" : "expires", t, n,
             n == 1 ? "" : "s", na < now ? "ago" : "left");
    return na < now;
}

/* ------------------------------------------------------------ the checks */

static bool
check_config(struct chk *c)
{
    char path[PATH_MAX];
    bg_err err = {0};
    if (bg_path_join(path, sizeof path, c->dir, BG_CONFIG_FILE, &err) != BG_OK ||
        bg_config_load(path, &c->cfg, &err) != BG_OK) {
        say(c, LV_FAIL, "config", "%s; it names every other file, so nothing else was checked",
            err.msg);
        return false;
    }
    const char *known = bg_city_name(c->cfg.city);
    say(c, known ? LV_OK : LV_WARN, "config", "%s/%s: city %s %s%s, listen %s, data %s", c->cfg.dir,
        BG_CONFIG_FILE, c->cfg.city, c->cfg.name, known ? "" : " (not a known division code)",
        c->cfg.listen, c->cfg.data_dir);
    return true;
}

/* A key whose mode serve refuses is still read (from memory), so that the key
 * match is checked in the same run. */
static void
check_key(struct chk *c)
{
    const char *path = c->cfg.key_path;
    struct stat st;
    bg_err err = {0};
    if (stat(path, &st) != 0) {
        say(c, LV_FAIL, "key",
            "no private key at %s (%s): 'baygate init' makes it, and it never leaves the "
            "directory",
            path, strerror(errno));
        return;
    }
    unsigned mode = (unsigned)(st.st_mode & 07777);
    if ((st.st_mode & 077) != 0) {
        say(c, LV_FAIL, "key",
            "%s is mode %04o: group and others must have no access (chmod 600 %s); serve "
            "refuses it",
            path, mode, path);
        uint8_t *buf = NULL;
        size_t len = 0;
        if (bg_file_read(path, BG_PKI_FILE_MAX, &buf, &len, NULL, NULL) == BG_OK) {
            bg_pki_key_load_mem(buf, len, &c->key, NULL);
            OPENSSL_cleanse(buf, len);
            free(buf);
        }
        return;
    }
    uint8_t fp[BG_SIG_FP_LEN];
    char hex[BG_SIG_FP_HEX_LEN + 1];
    if (bg_pki_key_load(path, &c->key, &err) != BG_OK ||
        bg_pki_key_fingerprint(c->key, fp, &err) != BG_OK) {
        say(c, LV_FAIL, "key", "%s", err.msg);
        return;
    }
    bg_sig_fp_hex(fp, hex);
    say(c, LV_OK, "key", "%s: mode %04o, public key sha256 %s", path, mode, hex);
}

/* Loads a PEM file another check needs; false (said as a FAIL with hint) if it cannot. */
static bool
need_file(struct chk *c, const char *what, const char *path, const char *hint)
{
    if (access(path, F_OK) == 0)
        return true;
    say(c, LV_FAIL, what, "no file %s (%s): %s", path, strerror(errno), hint);
    return false;
}

static void
check_cert_load(struct chk *c)
{
    bg_err err = {0};
    if (need_file(c, "certificate", c->cfg.cert_path,
                  "send city.csr to the federation operator ('baygate ca issue')") &&
        bg_pki_cert_load(c->cfg.cert_path, &c->cert, &err) != BG_OK)
        say(c, LV_FAIL, "certificate", "%s", err.msg);
    if (c->key == NULL || c->cert == NULL) {
        say(c, LV_WARN, "key match", "not checked: %s did not load",
            c->key == NULL ? "the key" : "the certificate");
        return;
    }
    if (bg_sig_key_matches(c->cert, c->key))
        say(c, LV_OK, "key match", "%s belongs to %s", c->cfg.key_path, c->cfg.cert_path);
    else
        say(c, LV_FAIL, "key match",
            "%s was issued for another key than %s: serve refuses to start (a new CSR from "
            "this key, or the key it was made for)",
            c->cfg.cert_path, c->cfg.key_path);
}

static void
check_ca(struct chk *c)
{
    bg_err err = {0};
    if (!need_file(c, "CA", c->cfg.ca_path,
                   "the operator sends it ('baygate ca cert --dir CA --out ca.crt')"))
        return;
    if (bg_pki_cert_load(c->cfg.ca_path, &c->ca, &err) != BG_OK) {
        say(c, LV_FAIL, "CA", "%s", err.msg);
        return;
    }
    uint8_t fp[BG_SIG_FP_LEN];
    char hex[BG_SIG_FP_HEX_LEN + 1] = "?", exp[96];
    long long days = 0;
    if (bg_sig_fingerprint(c->ca, fp, NULL) == BG_OK)
        bg_sig_fp_hex(fp, hex);
    bool expired = expiry_text(c->ca, exp, sizeof exp, &days);
    say(c,
        expired                       ? LV_FAIL
        : days < CHECK_CERT_WARN_DAYS ? LV_WARN
                                      : LV_OK,
        "CA", "%s: sha256 %s, %s", c->cfg.ca_path, hex, exp);
}

/* The CRL's lifetime, once it is known to be the CA's (or cannot be checked). */
static void
crl_lifetime(struct chk *c, bool signed_ok)
{
    int64_t left = 0;
    time_t next = 0;
    char t[BG_PKI_TIME_LEN];
    bg_err err = {0};
    if (bg_pki_crl_next_update(c->crl, &next, &err) != BG_OK ||
        bg_pki_crl_seconds_left(c->crl, time(NULL), &left, &err) != BG_OK) {
        say(c, LV_FAIL, "CRL", "%s: %s", c->cfg.crl_path, err.msg);
        return;
    }
    bg_pki_time_format(next, t);
    int revoked = sk_X509_REVOKED_num(X509_CRL_get_REVOKED(c->crl));
    const char *by = signed_ok ? "signed by the CA" : "signature not checked (no CA certificate)";
    if (left <= 0) {
        say(c, LV_FAIL, "CRL",
            "%s: #%" PRIu64 " passed its next update %s (%lld hours ago): peers refuse every "
            "certificate until the operator publishes a new one",
            c->cfg.crl_path, c->crl_number, t, (long long)(-left / 3600));
        return;
    }
    c->crl_usable = signed_ok;
    bool soon = left < (int64_t)c->cfg.crl_warn_hours * 3600;
    say(c, soon || !signed_ok ? LV_WARN : LV_OK, "CRL",
        "%s: #%" PRIu64 ", %d revoked, %s, next update %s (%lld hours left%s)", c->cfg.crl_path,
        c->crl_number, revoked < 0 ? 0 : revoked, by, t, (long long)(left / 3600),
        soon ? "; under crl_warn_hours: ask the operator for a new one" : "");
}

static void
check_crl(struct chk *c)
{
    bg_err err = {0};
    if (!need_file(c, "CRL", c->cfg.crl_path,
                   "the operator publishes one with 'baygate ca crl'; serve refuses to run "
                   "without one"))
        return;
    if (bg_pki_crl_load(c->cfg.crl_path, &c->crl, &err) != BG_OK) {
        say(c, LV_FAIL, "CRL", "%s", err.msg);
        return;
    }
    bg_pki_crl_number(c->crl, &c->crl_number, NULL);
    if (c->ca == NULL) {
        crl_lifetime(c, false);
        return;
    }
    /* The trust store takes a CRL only if the CA issued and signed it. */
    bg_trust *t = NULL;
    int rc = bg_trust_new(&t, c->ca, c->crl, 0, &err);
    bg_trust_free(t);
    if (rc != BG_OK) {
        say(c, LV_FAIL, "CRL", "%s: %s", c->cfg.crl_path, err.msg);
        return;
    }
    crl_lifetime(c, true);
}

/* Without the CA: what the certificate says of itself. */
static void
cert_unverified(struct chk *c, const char *exp, bool expired)
{
    char city[BG_CITY_CODE_LEN + 1] = "?";
    bg_err err = {0};
    bool ours = bg_pki_cert_city(c->cert, city, &err) == BG_OK && strcmp(city, c->cfg.city) == 0;
    say(c, !ours || expired ? LV_FAIL : LV_WARN, "certificate",
        "%s names %s%s, %s; not checked against the CA (no CA certificate)", c->cfg.cert_path, city,
        ours ? "" : ", not this gateway's city", exp);
}

/* The verdict a peer reaches on our certificate: bg_trust, as the envelope layer uses it. */
static void
check_cert_trust(struct chk *c)
{
    if (c->cert == NULL)
        return;
    char exp[96], serial[BG_PKI_SERIAL_HEX_MAX + 1] = "?";
    long long days = 0;
    bool expired = expiry_text(c->cert, exp, sizeof exp, &days);
    bg_pki_cert_serial_hex(c->cert, serial, NULL);
    if (c->ca == NULL) {
        cert_unverified(c, exp, expired);
        return;
    }
    bg_err err = {0};
    bg_trust *t = NULL;
    uint8_t *der = NULL;
    size_t len = 0;
    bg_trust_result res = {0};
    int rc = bg_trust_new(&t, c->ca, c->crl_usable ? c->crl : NULL, 0, &err);
    if (rc == BG_OK)
        rc = bg_pki_cert_to_der(c->cert, &der, &len, &err);
    if (rc == BG_OK)
        rc = bg_trust_verify(t, der, len, c->cfg.city, &res, NULL, &err);
    OPENSSL_free(der);
    bg_trust_free(t);
    if (rc != BG_OK && res.reason == BG_TRUST_WRONG_CITY) {
        char city[BG_CITY_CODE_LEN + 1] = "?";
        bg_pki_cert_city(c->cert, city, NULL);
        say(c, LV_FAIL, "certificate", "%s is %s's, not this gateway's (%s): serial %s",
            c->cfg.cert_path, city, c->cfg.city, serial);
    } else if (rc != BG_OK) {
        say(c, LV_FAIL, "certificate", "%s: %s%s%s, %s", c->cfg.cert_path, err.msg,
            strstr(err.msg, serial) ? "" : "; serial ", strstr(err.msg, serial) ? "" : serial, exp);
    } else {
        char rev[64] = "revocation not checked (no usable CRL)";
        if (c->crl_usable)
            snprintf(rev, sizeof rev, "not revoked (CRL #%" PRIu64 ")", c->crl_number);
        bool soon = days < CHECK_CERT_WARN_DAYS;
        say(c, soon || !c->crl_usable ? LV_WARN : LV_OK, "certificate",
            "%s: %s's, serial %s, issued by the federation CA, %s, %s%s", c->cfg.cert_path,
            c->cfg.city, serial, rev, exp, soon ? ": ask the operator for a new one" : "");
    }
}

static void
check_roster(struct chk *c)
{
    bg_err err = {0};
    const char *path = c->cfg.roster_path;
    if (!need_file(c, "roster", path, "the operator signs it ('baygate roster sign')"))
        return;
    int rc;
    if (c->ca != NULL) {
        rc = bg_roster_load_file(path, c->ca, 0, NULL, &c->roster, NULL, &err);
    } else {
        uint8_t *bytes = NULL;
        size_t len = 0;
        rc = bg_roster_read_file(path, &bytes, &len, &err);
        if (rc == BG_OK)
            rc = bg_roster_inspect(bytes, len, &c->roster, NULL, &err);
        free(bytes);
    }
    if (rc != BG_OK) {
        say(c, LV_FAIL, "roster", "%s: %s", path, err.msg);
        return;
    }
    size_t n = bg_roster_member_count(c->roster);
    say(c, c->ca != NULL ? LV_OK : LV_WARN, "roster",
        "%s: serial %" PRIu64 " of %s, %zu member%s, %s", path, bg_roster_serial(c->roster),
        bg_roster_federation(c->roster), n, n == 1 ? "" : "s",
        c->ca != NULL ? "signed by the CA" : "signature NOT checked (no CA certificate)");
}

/* "tls+tcp://HOST:PORT": host and port, both empty if it is not that shape. */
static void
split_url(const char *url, char *host, size_t hostsz, char *port, size_t portsz)
{
    const char *h = strstr(url, "://");
    const char *colon = strrchr(url, ':');
    host[0] = port[0] = '\0';
    if (h == NULL || colon == NULL || colon < h + 3)
        return;
    h += 3;
    snprintf(host, hostsz, "%.*s", (int)(colon - h), h);
    snprintf(port, portsz, "%s", colon + 1);
}

static void
check_listen(struct chk *c, const bg_roster_member *m)
{
    char lh[BG_CONFIG_URL_MAX], lp[16], rh[BG_ROSTER_ENDPOINT_MAX + 1], rp[16];
    split_url(c->cfg.listen, lh, sizeof lh, lp, sizeof lp);
    split_url(m->endpoint, rh, sizeof rh, rp, sizeof rp);
    bool any = strcmp(lh, "0.0.0.0") == 0 || strcmp(lh, "[::]") == 0 || strcmp(lh, "*") == 0;
    if (strcmp(c->cfg.listen, m->endpoint) == 0)
        say(c, LV_OK, "listen", "%s, as the roster's endpoint", c->cfg.listen);
    else if (lp[0] != '\0' && strcmp(lp, rp) == 0 && any)
        say(c, LV_OK, "listen", "%s (every address); peers dial %s", c->cfg.listen, m->endpoint);
    else if (lp[0] != '\0' && strcmp(lp, rp) == 0)
        say(c, LV_WARN, "listen",
            "%s, but peers dial %s (the roster's endpoint): fine only if %s reaches this "
            "listener",
            c->cfg.listen, m->endpoint, rh);
    else
        say(c, LV_WARN, "listen",
            "%s, but peers dial %s (the roster's endpoint): they will not reach this gateway "
            "unless something forwards that port",
            c->cfg.listen, m->endpoint);
}

/* Serve refuses to start unless the roster lists us with the certificate we hold. */
static void
check_member(struct chk *c)
{
    if (c->roster == NULL) {
        say(c, LV_WARN, "roster member", "not checked: the roster did not load");
        return;
    }
    uint64_t serial = bg_roster_serial(c->roster);
    const bg_roster_member *m = bg_roster_member_find(c->roster, c->cfg.city);
    if (m == NULL) {
        say(c, LV_FAIL, "roster member",
            "roster serial %" PRIu64 " has no member %s: serve refuses to start; the operator "
            "adds this city",
            serial, c->cfg.city);
        return;
    }
    say(c, LV_OK, "roster member", "%s %s, endpoint %s", m->city, m->name, m->endpoint);
    uint8_t fp[BG_SIG_FP_LEN];
    char pin[BG_SIG_FP_HEX_LEN + 1], ours[BG_SIG_FP_HEX_LEN + 1];
    bg_sig_fp_hex(m->cert_sha256, pin);
    if (c->cert == NULL || bg_sig_fingerprint(c->cert, fp, NULL) != BG_OK)
        say(c, LV_WARN, "roster pin", "not checked: the certificate did not load (pin %s)", pin);
    else if (memcmp(fp, m->cert_sha256, BG_SIG_FP_LEN) == 0)
        say(c, LV_OK, "roster pin", "roster pins %s (sha256 %s)", c->cfg.cert_path, pin);
    else if (bg_roster_member_pinned(m, fp)) {
        bg_sig_fp_hex(fp, ours);
        say(c, LV_OK, "roster pin",
            "roster pins %s (sha256 %s) as this city's next certificate (a rotation)",
            c->cfg.cert_path, ours);
    } else {
        bg_sig_fp_hex(fp, ours);
        say(c, LV_FAIL, "roster pin",
            "roster serial %" PRIu64 " pins sha256 %s for %s, but %s is sha256 %s: serve "
            "starts and warns (identity.not_pinned), but peers refuse us with pin-mismatch; "
            "the operator signs a roster that pins this certificate",
            serial, pin, c->cfg.city, c->cfg.cert_path, ours);
    }
    check_listen(c, m);
}

static void
check_store(struct chk *c)
{
    bg_store *s = NULL;
    bg_err err = {0};
    int rc = bg_store_open_readonly(&s, c->cfg.data_dir, &err);
    if (rc == BG_ENOTFOUND) {
        say(c, LV_WARN, "store",
            "no store in %s yet: nothing is published until 'baygate import --dir %s FILE'",
            c->cfg.data_dir, c->dir);
        return;
    }
    if (rc != BG_OK) {
        say(c, LV_FAIL, "store", "%s", err.msg);
        return;
    }
    int v = bg_store_schema_version(s);
    bg_store_counts n;
    if (strcmp(bg_store_city(s), c->cfg.city) != 0)
        say(c, LV_FAIL, "store", "%s belongs to city %s, not %s: serve will not publish it",
            bg_store_path(s), bg_store_city(s), c->cfg.city);
    else if (v < BG_STORE_SCHEMA_VERSION)
        say(c, LV_WARN, "store",
            "%s: schema version %d, this baygate's is %d: the next serve or import migrates it",
            bg_store_path(s), v, BG_STORE_SCHEMA_VERSION);
    else if (bg_store_counts_get(s, &n, &err) != BG_OK)
        say(c, LV_FAIL, "store", "%s", err.msg);
    else
        say(c, LV_OK, "store",
            "%s: schema version %d (current), %" PRIu64 " enterprises, %" PRIu64
            " evaluations, %" PRIu64 " imports",
            bg_store_path(s), v, n.enterprises, n.evaluations, n.imports);
    bg_store_close(s);
}

static void
check_evidence(struct chk *c)
{
    char dir[PATH_MAX];
    bg_err err = {0};
    bg_audit_log *log = NULL;
    bg_audit_open_report rep = {0};
    if (bg_path_join(dir, sizeof dir, c->cfg.data_dir, "audit", &err) != BG_OK) {
        say(c, LV_FAIL, "evidence log", "%s", err.msg);
        return;
    }
    int rc = bg_audit_open(&log, dir, c->cfg.city, BG_AUDIT_READ_ONLY, &rep, &err);
    if (rc == BG_ENOTFOUND) {
        say(c, LV_OK, "evidence log", "none in %s yet: the first serve makes it", dir);
        return;
    }
    if (rc != BG_OK) {
        say(c, LV_FAIL, "evidence log", "%s", err.msg);
        return;
    }
    say(c, LV_OK, "evidence log", "%s: %" PRIu64 " leaves, %" PRIu64 " signed heads%s", dir,
        rep.leaves, rep.heads, rep.pending_bytes ? " (a record is being written)" : "");
    bg_audit_close(log);
}

static void
check_serve(struct chk *c)
{
    char path[PATH_MAX];
    long pid = 0;
    if (bg_path_join(path, sizeof path, c->dir, BG_CLI_SERVE_LOCK, NULL) == BG_OK &&
        bg_file_lock_holder(path, &pid, NULL) == BG_OK)
        say(c, LV_OK, "serve", "a gateway is serving this directory (pid %ld)", pid);
    else
        say(c, LV_OK, "serve", "no gateway is serving this directory");
}

/* ------------------------------------------------------------ the command */

static void
run_checks(struct chk *c)
{
    if (!check_config(c))
        return;
    check_key(c);
    check_cert_load(c);
    check_ca(c);
    check_crl(c);
    check_cert_trust(c);
    check_roster(c);
    check_member(c);
    check_store(c);
    check_evidence(c);
    check_serve(c);
}

int
bg_cmd_check(int argc, char **argv)
{
    static const struct option opts[] = {
        {"dir", required_argument, NULL, 'd'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct chk c = {0};
    int ch;
    opterr = 0;
    optind = 1;
    while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (ch) {
        case 'd':
            c.dir = optarg;
            break;
        case 'j':
            c.json = true;
            break;
        case 'h':
            check_usage(stdout);
            return BG_EXIT_OK;
        default:
            return bg_cli_bad_option("check", ch, argv, opts);
        }
    }
    if (optind < argc)
        return bg_cli_usage_error("check", "unexpected argument '%s'", argv[optind]);
    if (c.dir == NULL)
        return bg_cli_usage_error("check", "--dir GW is required");
    if (c.json) {
        printf("{\"dir\":");
        bg_json_cstr(stdout, c.dir);
        printf(",\"checks\":[");
    }
    run_checks(&c);
    if (c.json)
        printf("],\"failed\":%u,\"warnings\":%u,\"ok\":%s}\n", c.nfail, c.nwarn,
               c.nfail ? "false" : "true");
    bg_roster_free(c.roster);
    X509_CRL_free(c.crl);
    X509_free(c.ca);
    X509_free(c.cert);
    EVP_PKEY_free(c.key);
    if (fflush(stdout) != 0)
        return bg_cli_fail("check", "writing output failed");
    return c.nfail ? BG_EXIT_FAIL : BG_EXIT_OK;
}
