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
int bg_cmd_rotate(int argc, char **argv);
int bg_cmd_attest(int argc, char **argv);
int bg_cmd_audit(int argc, char **argv);

#endif
