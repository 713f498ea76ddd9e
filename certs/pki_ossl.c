/*
 * pki_ossl.c - the OpenSSL error text and the P-256 check (see pki_int.h):
 * the bottom of certs/, used by pki.c, sig.c, ca.c and trust.c, calling none
 * of them.
 */
#include "certs/pki_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>

int
bg_pki_ossl_fail(bg_err *err, int code, const char *fmt, ...)
{
    char what[BG_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    /* The earliest error is the root cause; later ones are callers' context. */
    unsigned long e = ERR_get_error();
    ERR_clear_error();
    if (e == 0)
        return bg_err_set(err, code, "%s", what);
    const char *lib = ERR_lib_error_string(e);
    const char *reason = ERR_reason_error_string(e);
    if (reason == NULL)
        return bg_err_set(err, code, "%s: OpenSSL error 0x%lx", what, e);
    return bg_err_set(err, code, "%s: %s%s%s", what, lib ? lib : "", lib ? ": " : "", reason);
}

bool
bg_pki_key_is_p256(EVP_PKEY *key)
{
    char group[32];
    size_t glen = 0;
    if (key == NULL || EVP_PKEY_get_base_id(key) != EVP_PKEY_EC)
        return false;
    if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                       &glen) != 1) {
        ERR_clear_error();
        return false;
    }
    return strcmp(group, SN_X9_62_prime256v1) == 0;
}
