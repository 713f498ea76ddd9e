/*
 * cmd_backup.c - baygate backup and baygate restore (gateway/backup/backup.h).
 *
 * backup: a consistent copy of a gateway directory, safe while the gateway serves.
 * restore --from: the archive checked and unpacked into an empty directory.
 * restore --accept-loss: the operator's consent to give up the evidence a refused
 * start named (the audit directory's behind.txt, copied to accept-loss.txt); the next
 * start signs the loss statement (gateway/daemon/witnessed.h).
 * Exit status: 0 done, 1 a damaged or foreign archive, 2 usage or operational error.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/json.h"
#include "gateway/audit/audit.h"
#include "gateway/backup/backup.h"
#include "gateway/cli/cli.h"
#include "gateway/config/config.h"

static void
backup_usage(FILE *f)
{
    fprintf(f, "usage: baygate backup --dir GW --out FILE.tar[.gz] [--json]\n\n"
               "Takes a consistent copy of the gateway directory GW, also while its gateway\n"
               "serves: the credit store by SQLite's online backup, the evidence log up to a\n"
               "record boundary with every signed head it holds checked against its leaves,\n"
               "keys (mode 0600 kept), witness state, quota, PSI keys, configuration,\n"
               "roster, CRL and certificates. FILE is a ustar archive (gzip-compressed when\n"
               "it ends in .gz), created mode 0600 and only once complete; it never replaces\n"
               "a file. Its first file, backup.manifest, lists every file with its size and\n"
               "SHA-256, the evidence log's size and latest head, and the time.\n"
               "Restore it with 'baygate restore --from FILE --dir NEWDIR'.\n"
               "\n"
               "EXAMPLES\n"
               "  baygate backup --dir GZ --out /var/backups/gz-2026-12-02.tar.gz\n"
               "  baygate backup --dir GZ --out gz.tar --json\n"
               "\n"
               "EXIT STATUS\n"
               "  0  the archive is complete\n"
               "  2  usage or operational error (nothing left behind)\n");
}

static void
restore_usage(FILE *f)
{
    fprintf(f, "usage: baygate restore --from FILE --dir GW [--json]\n"
               "       baygate restore --accept-loss --dir GW\n\n"
               "--from: unpacks a backup made by 'baygate backup' into GW, which must not\n"
               "exist or be empty: every file checked against the archive's manifest, then\n"
               "the directory checked as a gateway (configuration, store, evidence log).\n"
               "When the gateway starts, it asks its witnesses for the last head of its\n"
               "evidence log they cosigned; if one holds more than the backup, it refuses\n"
               "to serve and names the missing leaves (audit.behind_witness).\n"
               "--accept-loss: after such a refusal, accepts losing exactly those leaves:\n"
               "the next start signs a loss statement that gives up the heads the\n"
               "witnesses hold, and they record an acknowledged loss instead of a fork.\n"
               "Restore a newer backup instead whenever there is one.\n"
               "\n"
               "EXAMPLES\n"
               "  baygate restore --from gz-2026-12-02.tar.gz --dir /srv/baygate/gz\n"
               "  baygate restore --accept-loss --dir /srv/baygate/gz\n"
               "\n"
               "EXIT STATUS\n"
               "  0  restored (or the loss accepted)\n"
               "  1  a damaged or foreign archive\n"
               "  2  usage or operational error\n");
}

static const char *
utc(int64_t ms, char out[32])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL || strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, 32, "?");
    return out;
}

/* What a manifest says, as sentences or one JSON object. */
static void
print_manifest(const char *what, const char *path, const bg_backup_manifest *m, bool json)
{
    uint64_t files = 0, bytes = 0;
    for (size_t i = 0; i < m->nfiles; i++)
        if (!m->files[i].is_dir) {
            files++;
            bytes += m->files[i].size;
        }
    char t[32], root[2 * BG_AUDIT_HASH_LEN + 1] = "";
    if (m->has_head)
        bg_audit_hash_hex(m->head_root, root);
    if (json) {
        printf("{\"%s\":", what);
        bg_json_cstr(stdout, path);
        printf(",\"city\":\"%s\",\"name\":", m->city);
        bg_json_cstr(stdout, m->name);
        printf(",\"created\":\"%s\",\"created_ms\":%" PRId64 ",\"files\":%" PRIu64
               ",\"bytes\":%" PRIu64 ",\"enterprises\":%" PRIu64 ",\"log_leaves\":%" PRIu64
               ",\"log_heads\":%" PRIu64,
               utc(m->created_ms, t), m->created_ms, files, bytes, m->enterprises, m->log_leaves,
               m->log_heads);
        if (m->has_head)
            printf(",\"head_size\":%" PRIu64 ",\"head_root\":\"%s\",\"head_ms\":%" PRId64,
                   m->head_size, root, m->head_ms);
        printf("}\n");
        return;
    }
    printf("%s: %s\n  city %s (%s), taken %s\n  %" PRIu64 " files, %" PRIu64 " bytes\n", what, path,
           m->city, m->name, utc(m->created_ms, t), files, bytes);
    if (m->has_store)
        printf("  store: %" PRIu64 " enterprises\n", m->enterprises);
    if (m->has_log)
        printf("  evidence log: %" PRIu64 " leaves, %" PRIu64 " signed heads", m->log_leaves,
               m->log_heads);
    if (m->has_head)
        printf(", latest head size %" PRIu64 " root %.16s... signed %s", m->head_size, root,
               utc(m->head_ms, t));
    if (m->has_log)
        printf("\n");
}

int
bg_cmd_backup(int argc, char **argv)
{
    static const struct option opts[] = {{"dir", required_argument, NULL, 'd'},
                                         {"out", required_argument, NULL, 'o'},
                                         {"json", no_argument, NULL, 'j'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *dir = NULL, *out = NULL;
    bool json = false;
    int ch;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":d:o:jh", opts, NULL)) != -1) {
        if (ch == 'd')
            dir = optarg;
        else if (ch == 'o')
            out = optarg;
        else if (ch == 'j')
            json = true;
        else if (ch == 'h') {
            backup_usage(stdout);
            return BG_EXIT_OK;
        } else
            return bg_cli_bad_option("backup", ch, argv, opts);
    }
    if (optind != argc)
        return bg_cli_usage_error("backup", "unexpected argument '%s'", argv[optind]);
    if (dir == NULL)
        return bg_cli_usage_error("backup", "--dir GW is required");
    if (out == NULL)
        return bg_cli_usage_error("backup", "--out FILE is required");
    bg_backup_manifest m;
    bg_err err = {0};
    if (bg_backup_make(dir, out, &m, &err) != BG_OK)
        return bg_cli_fail("backup", "%s", err.msg);
    print_manifest("backup", out, &m, json);
    bg_backup_manifest_free(&m);
    return BG_EXIT_OK;
}

/* --accept-loss: behind.txt, shown, becomes accept-loss.txt. */
static int
accept_loss(const char *dir)
{
    bg_config cfg;
    bg_err err = {0};
    char path[BG_CONFIG_PATH_MAX + 32], audit[BG_CONFIG_PATH_MAX + 8];
    if (snprintf(path, sizeof path, "%s/%s", dir, BG_CONFIG_FILE) >= (int)sizeof path ||
        bg_config_load(path, &cfg, &err) != BG_OK)
        return bg_cli_fail("restore", "%s", err.msg[0] ? err.msg : "path too long");
    snprintf(audit, sizeof audit, "%s/audit", cfg.data_dir);
    bg_audit_held *held = calloc(BG_AUDIT_HELD_MAX, sizeof *held);
    size_t n = 0;
    if (held == NULL)
        return bg_cli_fail("restore", "out of memory");
    snprintf(path, sizeof path, "%s/%s", audit, BG_AUDIT_BEHIND_FILE);
    int rc = bg_audit_held_read(path, cfg.city, held, BG_AUDIT_HELD_MAX, &n, &err);
    if (rc != BG_OK || n == 0) {
        free(held);
        if (rc == BG_ENOTFOUND || n == 0)
            return bg_cli_fail("restore",
                               "nothing to accept: the gateway of %s has not refused a start for "
                               "missing evidence (no %s; start it first, it names what is "
                               "missing)",
                               dir, BG_AUDIT_BEHIND_FILE);
        return bg_cli_fail("restore", "%s", err.msg);
    }
    char t[32], note[256];
    for (size_t i = 0; i < n; i++)
        printf("giving up: %s cosigned a head of size %" PRIu64 " signed %s\n", held[i].witness,
               held[i].head.size, utc(held[i].head.timestamp_ms, t));
    snprintf(note, sizeof note,
             "Accepted with 'baygate restore --accept-loss' at %s: the next start gives up\n"
             "these heads in a signed loss statement.",
             utc((int64_t)time(NULL) * 1000, t));
    snprintf(path, sizeof path, "%s/%s", audit, BG_AUDIT_ACCEPT_FILE);
    rc = bg_audit_held_write(path, note, held, n, &err);
    free(held);
    if (rc != BG_OK)
        return bg_cli_fail("restore", "%s", err.msg);
    printf("accepted: start the gateway; it signs the loss statement and serves\n");
    return BG_EXIT_OK;
}

int
bg_cmd_restore(int argc, char **argv)
{
    static const struct option opts[] = {
        {"from", required_argument, NULL, 'f'},  {"dir", required_argument, NULL, 'd'},
        {"accept-loss", no_argument, NULL, 'a'}, {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},        {NULL, 0, NULL, 0}};
    const char *dir = NULL, *from = NULL;
    bool json = false, accept = false;
    int ch;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":f:d:ajh", opts, NULL)) != -1) {
        if (ch == 'f')
            from = optarg;
        else if (ch == 'd')
            dir = optarg;
        else if (ch == 'a')
            accept = true;
        else if (ch == 'j')
            json = true;
        else if (ch == 'h') {
            restore_usage(stdout);
            return BG_EXIT_OK;
        } else
            return bg_cli_bad_option("restore", ch, argv, opts);
    }
    if (optind != argc)
        return bg_cli_usage_error("restore", "unexpected argument '%s'", argv[optind]);
    if (dir == NULL)
        return bg_cli_usage_error("restore", "--dir GW is required");
    if ((from == NULL) == !accept)
        return bg_cli_usage_error("restore", "give exactly one of --from FILE and --accept-loss");
    if (accept)
        return accept_loss(dir);
    bg_backup_manifest m;
    bg_err err = {0};
    int rc = bg_backup_restore(from, dir, &m, &err);
    if (rc != BG_OK) {
        bg_cli_fail("restore", "%s", err.msg);
        return rc == BG_EPROTO ? BG_EXIT_FAIL : BG_EXIT_ERROR;
    }
    print_manifest("restored", dir, &m, json);
    if (!json)
        printf("  the gateway checks its witnesses when it starts\n");
    bg_backup_manifest_free(&m);
    return BG_EXIT_OK;
}
