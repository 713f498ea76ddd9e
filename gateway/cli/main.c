/*
 * main.c - dispatch to subcommands, and the shared option helpers.
 */
#include <errno.h>
#include <math.h>
#include <nng/nng.h>
#include <openssl/crypto.h>
#include <protobuf-c/protobuf-c.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/num.h"
#include "gateway/cli/cli.h"

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
    {"status", bg_cmd_status, "a running gateway: lists, quota, evidence, expiries, peers"},
    {"init", bg_cmd_init, "create a city gateway directory: config, private key, CSR"},
    {"check", bg_cmd_check, "check a gateway directory before it serves: every problem at once"},
    {"rekey", bg_cmd_rekey, "rotate the city's key and certificate without an outage"},
    {"ca", bg_cmd_ca, "federation CA: init, issue, revoke, crl"},
    {"roster", bg_cmd_roster, "sign and show the federation roster"},
    {"oprf", bg_cmd_oprf, "RFC 9497 OPRF test-vector aid (ristretto255-SHA512)"},
    {"query", bg_cmd_query, "ask peers which of our enterprises are on their lists (PSI)"},
    {"lookup", bg_cmd_lookup, "one enterprise in every city: lists, grades, attestations"},
    {"psi-rotate", bg_cmd_rotate, "start a new OPRF key generation for one of our lists"},
    {"attest", bg_cmd_attest, "verify and show evaluation attestations and status lists"},
    {"audit", bg_cmd_audit, "the evidence log: signed heads, proofs, verify, witnesses"},
    {"backup", bg_cmd_backup, "a consistent copy of a running gateway's directory"},
    {"restore", bg_cmd_restore, "unpack a backup; accept evidence a restore lost"},
    {"apikey", bg_cmd_apikey, "keys of the applications that call the HTTP API"},
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
    fprintf(f,
            "\n'baygate CMD --help' shows a command's options.\n\n"
            "EXAMPLES\n"
            "  baygate help query\n"
            "  baygate init --city 440100 --name Guangzhou --dir GZ\n"
            "  baygate query --dir GZ --peer all --list serious-dishonesty --purpose supervision "
            "--in ids.txt\n\n"
            "EXIT STATUS\n"
            "  0  success (every command: all answered, all valid)\n"
            "  1  the command ran and found a failure (a peer that did not answer, an\n"
            "     invalid code, rejected rows, a check or verification that failed)\n"
            "  2  usage error (said on the first line of stderr) or operational error\n");
}

/* An unknown command: said, with the nearest command if one is close. */
static int
unknown_command(const char *name)
{
    const char *names[NCOMMANDS + 1];
    for (size_t i = 0; i < NCOMMANDS; i++)
        names[i] = commands[i].name;
    names[NCOMMANDS] = "help";
    return bg_cli_unknown(NULL, name, names, NCOMMANDS + 1);
}

int
main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "baygate: which command? (see below)\n\n");
        usage(stderr);
        return BG_EXIT_ERROR;
    }
    const char *name = argv[1];
    if (strcmp(name, "help") == 0 || strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
        bool self = argc >= 3 && (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0);
        if (argc >= 3 && strcmp(name, "help") == 0 && !self) {
            for (size_t i = 0; i < NCOMMANDS; i++) {
                if (strcmp(argv[2], commands[i].name) == 0) {
                    char *help_argv[] = {argv[2], "--help", NULL};
                    return commands[i].run(2, help_argv);
                }
            }
            return unknown_command(argv[2]);
        }
        usage(stdout);
        return BG_EXIT_OK;
    }
    if (strcmp(name, "--version") == 0 || strcmp(name, "version") == 0) {
        /* The versions linked at run time, which is what a bug report needs;
         * inih has no run-time version call, so the one built against. */
        printf("baygate %s\n"
               "  libsodium  %s\n"
               "  OpenSSL    %s\n"
               "  nng        %s\n"
               "  protobuf-c %s\n"
               "  SQLite     %s\n"
               "  inih       %s (built against)\n",
               BAYGATE_VERSION, sodium_version_string(), OpenSSL_version(OPENSSL_VERSION),
               nng_version(), protobuf_c_version(), sqlite3_libversion(), BG_INIH_VERSION);
        return BG_EXIT_OK;
    }
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(name, commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    return unknown_command(name);
}
