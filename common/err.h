/*
 * err.h - error codes and a printable message.
 *
 * Every fallible function in baygate returns an int status (BG_OK or a
 * BG_E* code) and, when given a bg_err, fills it with a human message that
 * names what was wrong. A NULL bg_err is allowed: the code still comes back.
 */
#ifndef BG_ERR_H
#define BG_ERR_H

#include <stddef.h>

enum {
    BG_OK = 0,
    BG_EINVAL, /* malformed input: a code, a row, an option */
    BG_EIO,    /* file system or stream failure */
    BG_ENOMEM, /* allocation failed */
    BG_EDB,    /* the store failed */
    BG_EEXIST, /* already there (for instance an import already done) */
    BG_ENOTFOUND,
    BG_ELIMIT, /* a size or count bound was exceeded */
    BG_ECRYPTO,
    BG_EPROTO,   /* a hostile or malformed wire message */
    BG_EABORTED, /* stopped on purpose (strict import with bad rows) */
};

#define BG_ERR_MSG_MAX 512

typedef struct bg_err {
    int code;
    char msg[BG_ERR_MSG_MAX];
} bg_err;

/* Records code and a formatted message in err (if not NULL); returns code. */
int bg_err_set(bg_err *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Resets err to BG_OK with an empty message. */
void bg_err_clear(bg_err *err);

/* A short stable name for a status code ("invalid-input", ...). */
const char *bg_status_name(int code);

#endif
