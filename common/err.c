#include "common/err.h"

#include <stdarg.h>
#include <stdio.h>

int
bg_err_set(bg_err *err, int code, const char *fmt, ...)
{
    if (err != NULL) {
        va_list ap;
        err->code = code;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

void
bg_err_clear(bg_err *err)
{
    if (err != NULL) {
        err->code = BG_OK;
        err->msg[0] = '\0';
    }
}

const char *
bg_status_name(int code)
{
    switch (code) {
    case BG_OK:
        return "ok";
    case BG_EINVAL:
        return "invalid-input";
    case BG_EIO:
        return "io-error";
    case BG_ENOMEM:
        return "out-of-memory";
    case BG_EDB:
        return "store-error";
    case BG_EEXIST:
        return "already-exists";
    case BG_ENOTFOUND:
        return "not-found";
    case BG_ELIMIT:
        return "limit-exceeded";
    case BG_ECRYPTO:
        return "crypto-error";
    case BG_EPROTO:
        return "protocol-error";
    case BG_EABORTED:
        return "aborted";
    default:
        return "unknown-error";
    }
}
