/*
 * cmd_apikey.c - baygate apikey create|list|revoke: the HTTP API's application keys
 * (gateway/api/api_keys.h). A key is printed once, at its creation; the gateway keeps
 * only its hash, in DATA/apikeys, and reads the file again when it changes, so a
 * revocation takes effect at the next request without a restart.
 */
#include <getopt.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "gateway/api/api_keys.h"
#include "gateway/cli/cli.h"
#include "gateway/config/config.h"

static void
apikey_usage(FILE *f)
{
    fprintf(f, "usage: baygate apikey create --dir GW --name APP --purposes P1[,P2...]\n"
               "                              [--lists L1[,L2...]] [--quota N]\n"
               "       baygate apikey list --dir GW\n"
               "       baygate apikey revoke --dir GW --name APP\n\n"
               "Keys for the applications that call the gateway's HTTP API ([api] listen in\n"
               "baygate.ini). create prints the new key once (keep it: only its hash is\n"
               "stored, in DATA/apikeys, mode 0600); the key may ask for the purposes named,\n"
               "with --lists only of the lists named (serious-dishonesty, abnormal-operation,\n"
               "grades; default every list) and, with --quota, make at most N lookups a day.\n"
               "A lookup by a key scoped to some lists answers those and marks the others\n"
               "\"not in scope\"; a job of another list is refused. list shows every\n"
               "application, its purposes, lists, quota, and whether it is revoked. revoke\n"
               "stops a key at its next request; the gateway need not restart.\n\n"
               "EXAMPLES\n"
               "  baygate apikey create --dir GZ --name lender-a --purposes lending,supervision\n"
               "  baygate apikey create --dir GZ --name grader --purposes lending --lists grades\n"
               "  baygate apikey revoke --dir GZ --name lender-a\n"
               "\n"
               "EXIT STATUS\n"
               "  0  done\n"
               "  1  no such application (revoke)\n"
               "  2  usage or operational error\n");
}

typedef struct akargs {
    const char *dir, *name, *purposes, *lists;
    uint64_t quota;
} akargs;

/* DATA/apikeys of the gateway directory; exit code. */
static int
keys_path(const char *dir, char *out, size_t n)
{
    char ini[BG_CONFIG_PATH_MAX + 16];
    bg_config cfg;
    bg_err err = {0};
    snprintf(ini, sizeof ini, "%s/%s", dir, BG_CONFIG_FILE);
    if (bg_config_load(ini, &cfg, &err) != BG_OK)
        return bg_cli_fail("apikey", "%s", err.msg);
    if (snprintf(out, n, "%s/%s", cfg.data_dir, BG_APIKEYS_FILE) >= (int)n)
        return bg_cli_fail("apikey", "data directory path too long");
    return BG_EXIT_OK;
}

static int
ak_create(const akargs *a, const char *path)
{
    if (a->name == NULL || a->purposes == NULL)
        return bg_cli_fail("apikey", "create needs --name and --purposes");
    char key[BG_APIKEY_TEXT_LEN + 1];
    bg_err err = {0};
    if (bg_apikey_create(path, a->name, a->purposes, a->lists, a->quota, key, &err) != BG_OK)
        return bg_cli_fail("apikey", "%s", err.msg);
    printf("%s\n", key);
    fflush(stdout);
    sodium_memzero(key, sizeof key);
    fprintf(stderr,
            "baygate apikey: key for '%s' (purposes %s, lists %s%s): shown once, keep it safe\n",
            a->name, a->purposes, a->lists ? a->lists : "all",
            a->quota ? ", with a daily quota" : "");
    return BG_EXIT_OK;
}

static int
ak_list(const char *path)
{
    bg_apikeys ks;
    bg_err err = {0};
    if (bg_apikeys_load(path, &ks, &err) != BG_OK)
        return bg_cli_fail("apikey", "%s", err.msg);
    printf("%-24s %-32s %-24s %10s  %-20s %s\n", "NAME", "PURPOSES", "LISTS", "QUOTA/DAY",
           "CREATED", "STATE");
    for (size_t i = 0; i < ks.n; i++) {
        const bg_apikey *k = &ks.v[i];
        char when[32] = "?";
        time_t t = (time_t)k->created;
        struct tm tm;
        if (gmtime_r(&t, &tm) != NULL)
            strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
        char quota[24] = "none";
        if (k->quota_per_day)
            snprintf(quota, sizeof quota, "%llu", (unsigned long long)k->quota_per_day);
        printf("%-24s %-32s %-24s %10s  %-20s %s\n", k->name, k->purposes,
               strcmp(k->lists, BG_APIKEY_ALL_LISTS) == 0 ? "all" : k->lists, quota, when,
               k->revoked ? "REVOKED" : "active");
    }
    bg_apikeys_free(&ks);
    return BG_EXIT_OK;
}

static int
ak_revoke(const akargs *a, const char *path)
{
    if (a->name == NULL)
        return bg_cli_fail("apikey", "revoke needs --name");
    bg_err err = {0};
    int rc = bg_apikey_revoke(path, a->name, &err);
    if (rc != BG_OK) {
        bg_cli_fail("apikey", "%s", err.msg);
        return rc == BG_ENOTFOUND ? BG_EXIT_FAIL : BG_EXIT_ERROR;
    }
    fprintf(stderr, "baygate apikey: '%s' revoked\n", a->name);
    return BG_EXIT_OK;
}

int
bg_cmd_apikey(int argc, char **argv)
{
    static const struct option opts[] = {
        {"dir", required_argument, NULL, 'd'},
        {"name", required_argument, NULL, 'n'},
        {"purposes", required_argument, NULL, 'p'},
        {"quota", required_argument, NULL, 'q'},
        {"lists", required_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        apikey_usage(stdout);
        return BG_EXIT_OK;
    }
    if (argc < 2)
        return bg_cli_usage_error("apikey", "a subcommand is required (create, list, revoke)");
    const char *sub = argv[1];
    static const char *const names[] = {"create", "list", "revoke"};
    if (strcmp(sub, "create") != 0 && strcmp(sub, "list") != 0 && strcmp(sub, "revoke") != 0)
        return bg_cli_unknown("apikey", sub, names, sizeof names / sizeof names[0]);
    akargs a = {0};
    int ch;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc - 1, argv + 1, ":d:n:p:q:l:h", opts, NULL)) != -1) {
        if (ch == 'd')
            a.dir = optarg;
        else if (ch == 'n')
            a.name = optarg;
        else if (ch == 'p')
            a.purposes = optarg;
        else if (ch == 'l')
            a.lists = optarg;
        else if (ch == 'q') {
            if (!bg_cli_parse_u64("apikey", "--quota", optarg, &a.quota))
                return BG_EXIT_ERROR;
        } else if (ch == 'h') {
            apikey_usage(stdout);
            return BG_EXIT_OK;
        } else
            return bg_cli_bad_option("apikey", ch, argv + 1, opts);
    }
    if (optind != argc - 1)
        return bg_cli_usage_error("apikey", "unexpected argument '%s'", argv[optind + 1]);
    if (a.dir == NULL)
        return bg_cli_usage_error("apikey", "--dir GW is required");
    char path[BG_CONFIG_PATH_MAX + 16];
    int rc = keys_path(a.dir, path, sizeof path);
    if (rc != BG_EXIT_OK)
        return rc;
    if (strcmp(sub, "create") == 0)
        return ak_create(&a, path);
    if (strcmp(sub, "list") == 0)
        return ak_list(path);
    return ak_revoke(&a, path);
}
