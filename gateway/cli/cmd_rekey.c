/*
 * cmd_rekey.c - baygate rekey: a city changes its key and certificate without an outage
 * (the procedure: docs/OPERATIONS.md, "Rotating a city's certificate").
 *
 *   baygate rekey --dir GW [--force]              a new key and CSR beside the current ones
 *   baygate rekey --dir GW --activate [--force]   the issued certificate becomes the current one
 *
 * The first makes city.next.key (P-256, mode 0600 from its creation: bg_pki_key_write_new)
 * and city.next.csr for the operator, who issues city.next.crt from it and signs a roster
 * that pins it as the member's next_certificate. A pending rotation (any of the three
 * files) is never overwritten unless --force, which removes them first.
 *
 * --activate checks city.next.crt as the gateway will: it belongs to city.next.key, is a
 * certificate of this city from the federation CA (ca.crt), not revoked by crl.pem and
 * valid now; and that the gateway's roster pins it, as current or next (only this last
 * check gives way to --force: peers would refuse the gateway). Then the current files are
 * kept as city.prev.key, city.prev.crt and city.prev.csr (hard links, so the current
 * names never go missing), and next becomes current by rename: the key first, the
 * certificate last, because a running gateway picks up city.crt when it changes and then
 * reads the key beside it. Finally the running gateway is told (SIGHUP to the process its
 * status names) and watched until its status shows the new certificate.
 *
 * The names follow baygate.ini's [pki] key and cert: "<stem>.next.<ext>", "<stem>.prev.<ext>",
 * and the request "<cert stem>.csr" as 'baygate init' made it.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "certs/pki.h"
#include "certs/sig.h"
#include "certs/trust.h"
#include "gateway/cli/cli.h"
#include "gateway/config/config.h"
#include "peers/envelope.h"
#include "peers/roster.h"
#include "peers/transport.h"
#include "proto/api.pb-c.h"
#include "proto/pb.h"

#define REKEY_PATH (BG_CONFIG_PATH_MAX + 16)
#define REKEY_ASK_MS 3000   /* one status question to the gateway */
#define REKEY_WAIT_MS 15000 /* for the gateway to show the new certificate */

static void
rekey_usage(FILE *f)
{
    fprintf(f, "usage: baygate rekey --dir GW [--force]\n"
               "       baygate rekey --dir GW --activate [--force]\n\n"
               "Rotates the city's key and certificate without an outage.\n"
               "Without --activate: makes a new private key, GW/city.next.key (mode 0600;\n"
               "it never leaves GW), and GW/city.next.csr for the federation operator, who\n"
               "issues GW/city.next.crt from it ('baygate ca issue') and distributes a\n"
               "roster pinning it as next_certificate. A pending rotation is kept unless\n"
               "--force (which removes city.next.key, .csr and .crt first).\n"
               "With --activate: checks GW/city.next.crt (it belongs to city.next.key, is a\n"
               "current certificate of this city from the CA in ca.crt, and the roster in\n"
               "GW pins it; --force skips only the roster check), keeps the current files\n"
               "as city.prev.key, .crt and .csr, makes next the current ones, tells the\n"
               "running gateway to reload (SIGHUP) and waits until it uses the new\n"
               "certificate.\n"
               "\n"
               "EXAMPLES\n"
               "  baygate rekey --dir GZ\n"
               "  baygate rekey --dir GZ --activate\n"
               "\n"
               "EXIT STATUS\n"
               "  0  done\n"
               "  1  refused, or the gateway did not take the new certificate\n"
               "  2  usage or operational error\n");
}

/* The files of a rotation. */
struct rekey_paths {
    char key[REKEY_PATH], cert[REKEY_PATH], csr[REKEY_PATH];
    char next_key[REKEY_PATH], next_cert[REKEY_PATH], next_csr[REKEY_PATH];
    char prev_key[REKEY_PATH], prev_cert[REKEY_PATH], prev_csr[REKEY_PATH];
};

bool
bg_cli_rekey_path(char *out, size_t n, const char *path, const char *tag, const char *ext)
{
    const char *base = strrchr(path, '/');
    base = base != NULL ? base + 1 : path;
    const char *dot = strrchr(base, '.');
    if (dot == base)
        dot = NULL; /* ".key" is a name, not an extension */
    size_t stem = dot != NULL ? (size_t)(dot - path) : strlen(path);
    const char *e = ext != NULL ? ext : dot != NULL ? dot + 1 : NULL;
    int k = snprintf(out, n, "%.*s%s%s%s%s", (int)stem, path, tag ? "." : "", tag ? tag : "",
                     e ? "." : "", e ? e : "");
    return k > 0 && (size_t)k < n;
}

static bool
paths_make(const bg_config *cfg, struct rekey_paths *p)
{
    return bg_cli_rekey_path(p->key, sizeof p->key, cfg->key_path, NULL, NULL) &&
           bg_cli_rekey_path(p->cert, sizeof p->cert, cfg->cert_path, NULL, NULL) &&
           bg_cli_rekey_path(p->csr, sizeof p->csr, cfg->cert_path, NULL, "csr") &&
           bg_cli_rekey_path(p->next_key, sizeof p->next_key, cfg->key_path, "next", NULL) &&
           bg_cli_rekey_path(p->next_cert, sizeof p->next_cert, cfg->cert_path, "next", NULL) &&
           bg_cli_rekey_path(p->next_csr, sizeof p->next_csr, cfg->cert_path, "next", "csr") &&
           bg_cli_rekey_path(p->prev_key, sizeof p->prev_key, cfg->key_path, "prev", NULL) &&
           bg_cli_rekey_path(p->prev_cert, sizeof p->prev_cert, cfg->cert_path, "prev", NULL) &&
           bg_cli_rekey_path(p->prev_csr, sizeof p->prev_csr, cfg->cert_path, "prev", "csr");
}

static bool
exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* Makes the directory's renames durable. */
static int
sync_dir(const char *dir, bg_err *err)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = fd >= 0 && fsync(fd) == 0 ? BG_OK : -1;
    if (rc != BG_OK)
        rc = bg_err_set(err, BG_EIO, "cannot sync directory %s: %s", dir, strerror(errno));
    if (fd >= 0)
        close(fd);
    return rc;
}

/* ------------------------------------------------------------ new key */

/* A pending rotation is refused, or with force removed. */
static int
clear_pending(const struct rekey_paths *p, bool force)
{
    const char *pending[] = {p->next_key, p->next_csr, p->next_cert};
    for (size_t i = 0; i < 3; i++)
        if (!force && exists(pending[i]))
            return bg_cli_fail("rekey",
                               "%s exists: a rotation is pending (finish it with --activate, "
                               "or start again with --force)",
                               pending[i]);
    for (size_t i = 0; i < 3; i++) {
        if (unlink(pending[i]) == 0)
            printf("removed %s\n", pending[i]);
        else if (errno != ENOENT)
            return bg_cli_fail("rekey", "cannot remove %s: %s", pending[i], strerror(errno));
    }
    return BG_EXIT_OK;
}

static int
rekey_new(const bg_config *cfg, const struct rekey_paths *p, bool force)
{
    int ex = clear_pending(p, force);
    if (ex != BG_EXIT_OK)
        return ex;
    EVP_PKEY *key = NULL;
    X509_REQ *req = NULL;
    uint8_t fp[BG_SIG_FP_LEN];
    bg_err err = {0};
    int rc = bg_pki_key_generate(&key, &err);
    if (rc == BG_OK)
        rc = bg_pki_key_write_new(p->next_key, key, &err);
    bool have_key = rc == BG_OK;
    if (rc == BG_OK)
        rc = bg_pki_csr_make(key, cfg->city, cfg->name, &req, &err);
    if (rc == BG_OK)
        rc = bg_pki_key_fingerprint(key, fp, &err);
    if (rc == BG_OK)
        rc = bg_pki_csr_write_new(p->next_csr, req, &err);
    X509_REQ_free(req);
    EVP_PKEY_free(key); /* frees (and clears) the private key */
    if (rc != BG_OK) {
        if (have_key)
            unlink(p->next_key);
        return bg_cli_fail("rekey", "%s", err.msg);
    }
    char hex[BG_SIG_FP_HEX_LEN + 1];
    bg_sig_fp_hex(fp, hex);
    printf("a new key for %s (%s), beside the current one:\n"
           "  %s  private key (0600): it never leaves this directory\n"
           "  %s  certificate request for the federation operator\n"
           "  public key sha256 %s\n"
           "next, the operator (comparing the public key fingerprint it prints):\n"
           "  baygate ca issue --dir CA --csr %s --out %s\n"
           "  and a roster with next_certificate = that certificate, to every gateway;\n"
           "then here:\n"
           "  baygate rekey --dir %s --activate\n",
           cfg->city, cfg->name, p->next_key, p->next_csr, hex, p->next_csr, p->next_cert,
           cfg->dir);
    return BG_EXIT_OK;
}

/* ------------------------------------------------------------ activate */

/* city.next.key and city.next.crt, checked as the gateway will check them. */
static int
check_next(const bg_config *cfg, const struct rekey_paths *p, bg_env_identity **id, bg_err *err)
{
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    bg_trust *trust = NULL;
    bg_err sub = {0};
    int rc = bg_pki_key_load(p->next_key, &key, err);
    if (rc == BG_OK)
        rc = bg_pki_cert_load(p->next_cert, &cert, err);
    if (rc == BG_OK && (rc = bg_env_identity_new(id, key, cert, &sub)) != BG_OK)
        bg_err_set(err, rc, "%s: %s (%s)", p->next_cert, sub.msg, p->next_key);
    if (rc == BG_OK && strcmp((*id)->city, cfg->city) != 0)
        rc = bg_err_set(err, BG_EINVAL, "%s is a certificate of %s; this gateway is %s",
                        p->next_cert, (*id)->city, cfg->city);
    const char *crl = access(cfg->crl_path, R_OK) == 0 ? cfg->crl_path : NULL;
    if (rc == BG_OK)
        rc = bg_trust_open(&trust, cfg->ca_path, crl, 0, err);
    if (rc == BG_OK && bg_trust_verify(trust, (*id)->cert_der, (*id)->cert_der_len, cfg->city, NULL,
                                       NULL, &sub) != BG_OK)
        rc = bg_err_set(err, BG_ECRYPTO, "%s: %s", p->next_cert, sub.msg);
    bg_trust_free(trust);
    EVP_PKEY_free(key);
    X509_free(cert);
    return rc;
}

/* Does the gateway's roster pin fp for this city, as current or next? */
static int
check_pinned(const bg_config *cfg, const char *cert, const uint8_t fp[BG_SIG_FP_LEN], bg_err *err)
{
    X509 *ca = NULL;
    bg_roster *r = NULL;
    int rc = bg_pki_cert_load(cfg->ca_path, &ca, err);
    if (rc == BG_OK)
        rc = bg_roster_load_file(cfg->roster_path, ca, 0, NULL, &r, NULL, err);
    const bg_roster_member *m = rc == BG_OK ? bg_roster_member_find(r, cfg->city) : NULL;
    if (rc == BG_OK && (m == NULL || !bg_roster_member_pinned(m, fp)))
        rc = bg_err_set(err, BG_EINVAL,
                        "roster serial %llu (%s) does not pin %s for %s, as its certificate or "
                        "its next: peers would refuse this gateway",
                        (unsigned long long)bg_roster_serial(r), cfg->roster_path, cert, cfg->city);
    bg_roster_free(r);
    X509_free(ca);
    return rc;
}

/* Keeps path as prev too (a hard link: path stays), replacing an older prev. */
static int
keep_prev(const char *path, const char *prev, bg_err *err)
{
    char tmp[REKEY_PATH + 8];
    snprintf(tmp, sizeof tmp, "%s.tmp", prev);
    unlink(tmp);
    if (link(path, tmp) != 0)
        return errno == ENOENT ? BG_OK
                               : bg_err_set(err, BG_EIO, "cannot link %s to %s: %s", path, tmp,
                                            strerror(errno));
    if (rename(tmp, prev) != 0) {
        int e = errno;
        unlink(tmp);
        return bg_err_set(err, BG_EIO, "cannot rename %s to %s: %s", tmp, prev, strerror(e));
    }
    return BG_OK;
}

static int
moved(const char *from, const char *to, bool optional, bg_err *err)
{
    if (rename(from, to) == 0 || (optional && errno == ENOENT))
        return BG_OK;
    return bg_err_set(err, BG_EIO, "cannot rename %s to %s: %s", from, to, strerror(errno));
}

/* The current files kept as prev, next made current: the key before the certificate. */
static int
install_next(const bg_config *cfg, const struct rekey_paths *p, bg_err *err)
{
    int rc = keep_prev(p->key, p->prev_key, err);
    if (rc == BG_OK)
        rc = keep_prev(p->cert, p->prev_cert, err);
    if (rc == BG_OK)
        rc = keep_prev(p->csr, p->prev_csr, err);
    if (rc == BG_OK)
        rc = sync_dir(cfg->dir, err);
    if (rc == BG_OK)
        rc = moved(p->next_key, p->key, false, err);
    if (rc == BG_OK)
        rc = moved(p->next_csr, p->csr, true, err);
    if (rc == BG_OK && moved(p->next_cert, p->cert, false, err) != BG_OK) {
        /* The old key back beside the old certificate. */
        char tmp[REKEY_PATH + 8];
        snprintf(tmp, sizeof tmp, "%s.tmp", p->key);
        if (rename(p->key, p->next_key) != 0 || link(p->prev_key, tmp) != 0 ||
            rename(tmp, p->key) != 0)
            fprintf(stderr, "baygate rekey: could not put %s back: %s (the old key is %s)\n",
                    p->key, strerror(errno), p->prev_key);
        rc = err->code;
    }
    if (rc == BG_OK)
        rc = sync_dir(cfg->dir, err);
    return rc;
}

/* The gateway's status within REKEY_ASK_MS, or NULL if none answers. */
static Baygate__LocalAnswer *
ask_status(const bg_config *cfg)
{
    struct stat st;
    if (stat(cfg->local_socket, &st) != 0 || !S_ISSOCK(st.st_mode))
        return NULL;
    Baygate__LocalStatus ls = BAYGATE__LOCAL_STATUS__INIT;
    Baygate__LocalRequest req = BAYGATE__LOCAL_REQUEST__INIT;
    req.op_case = BAYGATE__LOCAL_REQUEST__OP_STATUS;
    req.status = &ls;
    uint8_t buf[64];
    size_t len = baygate__local_request__pack(&req, buf);
    bg_tp_client *cli = NULL;
    bg_tp_client_opts o = {.url = cfg->local_url, .recv_max = 1024 * 1024, .send_max = 1024};
    Baygate__LocalAnswer *ans = NULL;
    uint8_t *out = NULL;
    size_t out_len = 0;
    if (bg_tp_client_open(&cli, &o, NULL) == BG_OK &&
        bg_tp_call(cli, buf, len, &out, &out_len, REKEY_ASK_MS, NULL, NULL) == BG_OK) {
        ans = bg_pb_unpack(&baygate__local_answer__descriptor, out_len, out);
        bg_tp_answer_free(out);
    }
    bg_tp_client_close(cli);
    if (ans != NULL && (ans->error_code != 0 || ans->status == NULL)) {
        bg_pb_free(ans);
        ans = NULL;
    }
    return ans;
}

/* Tells the running gateway and waits until it signs with hex. */
static int
tell_gateway(const bg_config *cfg, const char *hex)
{
    Baygate__LocalAnswer *ans = ask_status(cfg);
    if (ans == NULL) {
        printf("no gateway answers in %s: it starts with the new certificate\n", cfg->dir);
        return BG_EXIT_OK;
    }
    pid_t pid = (pid_t)ans->status->pid;
    bg_pb_free(ans);
    if (pid > 0 && kill(pid, SIGHUP) == 0)
        printf("asked the gateway (pid %d) to reload\n", (int)pid);
    else
        printf("could not signal the gateway (pid %d: %s); it looks at %s every second,\n"
               "or reload it yourself: systemctl reload baygate@NAME (or kill -HUP)\n",
               (int)pid, pid > 0 ? strerror(errno) : "not given", cfg->cert_path);
    int64_t t0 = bg_clock_ms();
    for (;;) {
        ans = ask_status(cfg);
        bool done = ans != NULL && strcmp(ans->status->cert_sha256, hex) == 0;
        bool pinned = done && ans->status->cert_pinned[0] != '\0';
        bg_pb_free(ans);
        if (done) {
            printf("the gateway now uses certificate sha256 %s%s\n", hex,
                   pinned ? "" : "\nWARNING: its roster does not pin it: peers refuse it");
            return BG_EXIT_OK;
        }
        if (bg_clock_ms() - t0 > REKEY_WAIT_MS)
            break;
        nanosleep(&(struct timespec){.tv_nsec = 200 * 1000000L}, NULL);
    }
    fprintf(stderr,
            "baygate rekey: the gateway did not take the new certificate within %d s: see its "
            "log (identity.refused); it keeps serving with the previous one\n",
            REKEY_WAIT_MS / 1000);
    return BG_EXIT_FAIL;
}

static int
rekey_activate(const bg_config *cfg, const struct rekey_paths *p, bool force)
{
    const char *cmd = "rekey --activate";
    bg_env_identity *id = NULL;
    bg_err err = {0};
    if (!exists(p->next_key) || !exists(p->next_cert))
        return bg_cli_fail(cmd, "%s and %s are needed: start with 'baygate rekey --dir %s', %s",
                           p->next_key, p->next_cert, cfg->dir,
                           "then have the operator issue the certificate");
    if (check_next(cfg, p, &id, &err) != BG_OK) {
        fprintf(stderr, "baygate %s: refused: %s\n", cmd, err.msg);
        return BG_EXIT_FAIL;
    }
    char hex[BG_SIG_FP_HEX_LEN + 1];
    bg_sig_fp_hex(id->fingerprint, hex);
    int rc = check_pinned(cfg, p->next_cert, id->fingerprint, &err);
    bg_env_identity_free(id);
    if (rc != BG_OK && !force) {
        fprintf(stderr, "baygate %s: refused: %s (--force activates anyway)\n", cmd, err.msg);
        return BG_EXIT_FAIL;
    }
    if (rc != BG_OK)
        fprintf(stderr, "baygate %s: warning: %s\n", cmd, err.msg);
    if (install_next(cfg, p, &err) != BG_OK)
        return bg_cli_fail(cmd, "%s", err.msg);
    printf("activated certificate sha256 %s for %s:\n  %s, %s now current\n"
           "  the previous ones kept as %s, %s\n",
           hex, cfg->city, p->key, p->cert, p->prev_key, p->prev_cert);
    return tell_gateway(cfg, hex);
}

int
bg_cmd_rekey(int argc, char **argv)
{
    static const struct option opts[] = {
        {"dir", required_argument, NULL, 'd'},
        {"activate", no_argument, NULL, 'a'},
        {"force", no_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *dir = NULL;
    bool activate = false, force = false;
    int ch;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (ch) {
        case 'd':
            dir = optarg;
            break;
        case 'a':
            activate = true;
            break;
        case 'f':
            force = true;
            break;
        case 'h':
            rekey_usage(stdout);
            return BG_EXIT_OK;
        default:
            return bg_cli_bad_option("rekey", ch, argv, opts);
        }
    }
    if (optind != argc)
        return bg_cli_usage_error("rekey", "unexpected argument '%s'", argv[optind]);
    if (dir == NULL)
        return bg_cli_usage_error("rekey", "--dir GW is required");
    bg_config cfg;
    bg_err err = {0};
    char path[BG_CONFIG_PATH_MAX + 32];
    struct rekey_paths p;
    if (snprintf(path, sizeof path, "%s/%s", dir, BG_CONFIG_FILE) >= (int)sizeof path)
        return bg_cli_fail("rekey", "gateway directory path too long");
    if (bg_config_load(path, &cfg, &err) != BG_OK)
        return bg_cli_fail("rekey", "%s", err.msg);
    if (!paths_make(&cfg, &p))
        return bg_cli_fail("rekey", "key or certificate path too long");
    return activate ? rekey_activate(&cfg, &p, force) : rekey_new(&cfg, &p, force);
}
