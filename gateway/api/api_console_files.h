/*
 * api_console_files.h - the web console's static files, embedded at build time
 * (cmake/embed.cmake writes their definition from gateway/api/console/).
 *
 * Contract: api_console_files[0 .. api_console_nfiles) each name a file of the console
 * folder (no directories), with its Content-Type, an ETag (quoted, changes whenever the
 * file does) and its bytes (len of them; one NUL follows, not counted).
 */
#ifndef BG_API_CONSOLE_FILES_H
#define BG_API_CONSOLE_FILES_H

#include <stddef.h>

typedef struct api_console_file {
    const char *name, *ctype, *etag;
    const unsigned char *data;
    size_t len;
} api_console_file;

extern const api_console_file api_console_files[];
extern const size_t api_console_nfiles;

#endif
