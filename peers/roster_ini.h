/*
 * roster_ini.h - compiling the roster's INI source (library bg_roster_ini).
 *
 * Only 'baygate roster sign' and the tests need this; a gateway opens signed
 * rosters (roster.h) and never reads INI. The format is described in
 * roster.h and peers/ROSTER.md. The source becomes the Roster message
 * exactly as it will be signed, checked by the same validator as a received
 * roster; every error names the file and line.
 */
#ifndef BG_ROSTER_INI_H
#define BG_ROSTER_INI_H

#include <stddef.h>

#include <openssl/x509.h>

#include "common/err.h"
#include "peers/roster.h"

/*
 * Reads and validates a roster INI file. Certificate paths are relative to
 * the file's directory; if ca_cert is not NULL each certificate must also be
 * signed by it. issued_at is set to now. Errors are "path:line: message".
 */
int bg_roster_parse_ini(const char *path, X509 *ca_cert, bg_roster **out, bg_err *err);

/* The same from memory: base_dir resolves certificate paths (NULL: "."),
 * name labels messages (NULL: "roster.ini"). */
int bg_roster_parse_ini_text(const char *text, size_t len, const char *base_dir, const char *name,
                             X509 *ca_cert, bg_roster **out, bg_err *err);

#endif
