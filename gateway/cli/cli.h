/*
 * cli.h - the baygate command line: one binary, git-style subcommands.
 *
 * Each subcommand is a function taking the arguments after its name (argv[0]
 * is the subcommand) and returning the process exit status: 0 success,
 * 1 the command ran and found a failure (an invalid code, rejected rows),
 * 2 usage or operational error. Only main() exits.
 */
#ifndef BG_CLI_H
#define BG_CLI_H

#include "gateway/cmdline/cmdline.h"

int bg_cmd_uscc(int argc, char **argv);
int bg_cmd_gen(int argc, char **argv);
int bg_cmd_import(int argc, char **argv);
int bg_cmd_demo(int argc, char **argv);
int bg_cmd_init(int argc, char **argv);
int bg_cmd_serve(int argc, char **argv);
int bg_cmd_ping(int argc, char **argv);
int bg_cmd_status(int argc, char **argv);
int bg_cmd_ca(int argc, char **argv);
int bg_cmd_roster(int argc, char **argv);
int bg_cmd_oprf(int argc, char **argv);
int bg_cmd_query(int argc, char **argv);
int bg_cmd_lookup(int argc, char **argv);
int bg_cmd_rotate(int argc, char **argv);
int bg_cmd_attest(int argc, char **argv);
int bg_cmd_audit(int argc, char **argv);
int bg_cmd_backup(int argc, char **argv);
int bg_cmd_restore(int argc, char **argv);

/* One request to the gateway of directory dir over its local socket; its answer (free
 * with bg_pb_free), or NULL with the reason on stderr, named by cmd. */
struct Baygate__LocalRequest;
struct Baygate__LocalAnswer *bg_cli_ask(const char *cmd, const char *dir,
                                        const struct Baygate__LocalRequest *req);

/* The authorisation reference of a consent document: its SHA-256 (the document never
 * leaves the city). BG_EXIT_OK, or BG_EXIT_ERROR said on stderr. */
int bg_cli_consent_digest(const char *cmd, const char *path, uint8_t out[32]);

#endif
