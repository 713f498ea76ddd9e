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

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "gateway/cmdline/cmdline.h"

int bg_cmd_uscc(int argc, char **argv);
int bg_cmd_gen(int argc, char **argv);
int bg_cmd_import(int argc, char **argv);
int bg_cmd_demo(int argc, char **argv);
int bg_cmd_init(int argc, char **argv);
int bg_cmd_check(int argc, char **argv);
int bg_cmd_serve(int argc, char **argv);
int bg_cmd_ping(int argc, char **argv);
int bg_cmd_status(int argc, char **argv);
int bg_cmd_ca(int argc, char **argv);
int bg_cmd_roster(int argc, char **argv);
/* 'roster add-member' and 'roster remove-member' (argv[0] says which). */
int bg_cmd_roster_member(int argc, char **argv);
int bg_cmd_oprf(int argc, char **argv);
int bg_cmd_query(int argc, char **argv);
int bg_cmd_lookup(int argc, char **argv);
int bg_cmd_rotate(int argc, char **argv);
int bg_cmd_attest(int argc, char **argv);
int bg_cmd_audit(int argc, char **argv);
/* Parts of `baygate audit` in files of their own (argv[0] is the subcommand): find
 * (cmd_audit_find.c), export and verify-bundle (cmd_audit_bundle.c). */
int bg_cmd_audit_find(int argc, char **argv);
int bg_cmd_audit_export(int argc, char **argv);
int bg_cmd_audit_verify_bundle(int argc, char **argv);

/* In a gateway directory: the lock file a serving gateway holds, with its pid in it
 * (common/file.h, bg_file_lock_pid). */
#define BG_CLI_SERVE_LOCK "serve.lock"
int bg_cmd_rekey(int argc, char **argv);
/* The HTTP API's application keys (cmd_apikey.c). */
int bg_cmd_apikey(int argc, char **argv);

/* The files of a certificate rotation (cmd_rekey.c) beside path: tag before its
 * extension ("city.key", "next" -> "city.next.key"), the extension replaced by ext if
 * not NULL; tag NULL: none. false if it does not fit in n bytes. */
bool bg_cli_rekey_path(char *out, size_t n, const char *path, const char *tag, const char *ext);
int bg_cmd_backup(int argc, char **argv);
int bg_cmd_restore(int argc, char **argv);

/* One request to the gateway of directory dir over its local socket; its answer (free
 * with bg_pb_free), or NULL with the reason on stderr, named by cmd. A gateway that is
 * not running (no socket, or a stale one that nothing listens on) is said at once
 * ("the 440100 gateway in DIR is not running (...)"), and one that does not take the
 * connection within 5 s is not waited for. bg_cli_ask waits up to 30 minutes for the
 * answer (a query), bg_cli_ask_within up to timeout_ms. */
struct Baygate__LocalRequest;
struct Baygate__LocalAnswer *bg_cli_ask(const char *cmd, const char *dir,
                                        const struct Baygate__LocalRequest *req);
struct Baygate__LocalAnswer *bg_cli_ask_within(const char *cmd, const char *dir,
                                               const struct Baygate__LocalRequest *req,
                                               int timeout_ms);

/* The gateway's status (LocalStatus, peers probed first if probe) within timeout_ms:
 * an answer with a status (free with bg_pb_free), or NULL said on stderr. */
struct Baygate__LocalAnswer *bg_cli_ask_status(const char *cmd, const char *dir, bool probe,
                                               int timeout_ms);

/* The pieces of bg_cli_ask, for a command that asks more than once on one connection
 * (a progress line polling the status), none saying anything: the config of gateway
 * directory dir; a client of its local socket (the first call right after it: one
 * closed before its handshake is done breaks nng's listener, transport.h); one call on
 * it and our status on it (NULL with the reason in err; bg_cli_call's is worded to
 * follow "the 440100 gateway ": "did not answer: timeout: ..."). */
struct bg_config;
struct bg_tp_client;
int bg_cli_gateway_config(const char *dir, struct bg_config *cfg, bg_err *err);
int bg_cli_local_open(const struct bg_config *cfg, struct bg_tp_client **cli, bg_err *err);
struct Baygate__LocalAnswer *bg_cli_call(struct bg_tp_client *cli,
                                         const struct Baygate__LocalRequest *req, int timeout_ms,
                                         bg_err *err);
struct Baygate__LocalAnswer *bg_cli_status_on(struct bg_tp_client *cli, int timeout_ms,
                                              bg_err *err);

/* A line on stderr while a command waits for its gateway: what it asked, for how long,
 * and which peers' snapshots the gateway is fetching meanwhile, how far (its status,
 * polled every half second), rewritten in place and cleared at stop. Only on a
 * terminal and unless quiet: NULL otherwise, which the other calls take as nothing to
 * do. clear wipes the line for output to go out (the next tick writes it again). */
typedef struct bg_cli_progress bg_cli_progress;
bg_cli_progress *bg_cli_progress_start(const char *dir, const char *what, bool quiet);
void bg_cli_progress_clear(bg_cli_progress *p);
void bg_cli_progress_stop(bg_cli_progress *p);

/* The authorisation reference of a consent document: its SHA-256 (the document never
 * leaves the city). BG_EXIT_OK, or BG_EXIT_ERROR said on stderr. */
int bg_cli_consent_digest(const char *cmd, const char *path, uint8_t out[32]);

/* What the audit commands share (cmd_audit_find.c). */
struct bg_config;
struct bg_audit_log;
struct bg_audit_event;
/* The config of gateway directory dir and its evidence log, opened read-only (safe while
 * the gateway serves; audit_dir gets its directory). An exit code; *log (closed by the
 * caller) on BG_EXIT_OK. */
int bg_cli_audit_open(const char *cmd, const char *dir, struct bg_config *cfg, char *audit_dir,
                      size_t cap, struct bg_audit_log **log);
/* A request id as query prints it: 32 hex digits; false said on stderr. */
bool bg_cli_request_id(const char *cmd, const char *s, uint8_t out[16]);
/* A leaf as one line of a table (under bg_cli_audit_leaf_header); as JSON: api_json.h. */
void bg_cli_audit_leaf_header(void);
void bg_cli_audit_leaf_text(uint64_t index, const struct bg_audit_event *ev);

#endif
