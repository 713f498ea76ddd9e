/*
 * main.c - dispatch to subcommands, and the shared option helpers.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/cli/cli.h"
#include "common/num.h"

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} commands[] = {
    {"demo", bg_cmd_demo, "run the scripted three-city tour"},
    {"uscc", bg_cmd_uscc, "check and decode Unified Social Credit Codes"},
    {"gen", bg_cmd_gen, "generate a city's synthetic credit data (CSV)"},
    {"import", bg_cmd_import, "validate and import a city data file into the store"},
    {"serve", bg_cmd_serve, "run a city gateway (federation API + local API)"},
    {"ping", bg_cmd_ping, "authenticated round trip to a peer gateway"},
    {"status", bg_cmd_status, "a running gateway's peers, roster and counters"},
    {"init", bg_cmd_init, "create a city gateway directory: config, private key, CSR"},
    {"ca", bg_cmd_ca, "federation CA: init, issue, revoke, crl"},
    {"roster", bg_cmd_roster, "sign and show the federation roster"},
    {"oprf", bg_cmd_oprf, "RFC 9497 OPRF test-vector aid (ristretto255-SHA512)"},
    {"query", bg_cmd_query, "ask peers which of our enterprises are on their lists (PSI)"},
    {"lookup", bg_cmd_lookup, "one enterprise in every city: lists, grades, attestations"},
    {"psi-rotate", bg_cmd_rotate, "start a new OPRF key generation for one of our lists"},
    {"attest", bg_cmd_attest, "verify and show evaluation attestations and status lists"},
    {"audit", bg_cmd_audit, "the evidence log: signed heads, proofs, verify, witnesses"},
};

#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void
usage(FILE *f)
{
    fprintf(f, "usage: baygate <command> [options]\n\n"
               "baygate is a privacy-preserving credit exchange gateway for the cities\n"
               "of the Greater Bay Area.\n\ncommands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "  %-8s %s\n", "help", "show this list, or 'help CMD' for one command");
    fprintf(f, "\n'baygate CMD --help' shows a command's options.\n");
}

int
bg_cli_fail(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "baygate %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return BG_EXIT_ERROR;
}

bool
bg_cli_parse_u64(const char *cmd, const char *opt, const char *s, uint64_t *out)
{
    if (bg_num_u64(s, 0, UINT64_MAX, out, NULL) != BG_OK) {
        bg_cli_fail(cmd, "%s: '%s' is not a non-negative integer", opt, s);
        return false;
    }
    return true;
}

bool
bg_cli_parse_rate(const char *cmd, const char *opt, const char *s, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !isfinite(v) || v < 0.0 || v > 1.0) {
        bg_cli_fail(cmd, "%s: '%s' is not a rate between 0 and 1", opt, s);
        return false;
    }
    *out = v;
    return true;
}

int
main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return BG_EXIT_ERROR;
    }
    const char *name = argv[1];
    if (strcmp(name, "help") == 0 || strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
        if (argc >= 3 && strcmp(name, "help") == 0) {
            for (size_t i = 0; i < NCOMMANDS; i++) {
                if (strcmp(argv[2], commands[i].name) == 0) {
                    char *help_argv[] = {argv[2], "--help", NULL};
                    return commands[i].run(2, help_argv);
                }
            }
            fprintf(stderr, "baygate: no command '%s'\n", argv[2]);
            return BG_EXIT_ERROR;
        }
        usage(stdout);
        return BG_EXIT_OK;
    }
    if (strcmp(name, "--version") == 0 || strcmp(name, "version") == 0) {
        printf("baygate %s\n", BAYGATE_VERSION);
        return BG_EXIT_OK;
    }
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(name, commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "baygate: '%s' is not a command; see 'baygate help'\n", name);
    return BG_EXIT_ERROR;
}
