/*
 * snap_seal.c - tags and sealed payloads (snapshot.h, "Sealing"): the tag of an element,
 * sealing an entry's plaintext under keys derived from Finalize, opening it for the
 * asker (with its opening key) and for a third party holding only that key.
 */
#include <sodium.h>
#include <string.h>

#include "mpc/snap_int.h"

#define PLAIN_VERSION 1U

static const char tag_label[] = "baygate/psi/tag/v1";
static const char seal_label[] = "baygate/psi/seal/v1";
static const char seal_enc_label[] = "baygate/psi/seal/v1/enc";
static const char seal_siv_label[] = "baygate/psi/seal/v1/siv";

void
bg_snap_tag(uint8_t tag[TB], const uint8_t element[EB])
{
    uint8_t h[32];
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, sizeof h);
    crypto_generichash_update(&st, (const uint8_t *)tag_label, sizeof tag_label - 1);
    crypto_generichash_update(&st, element, EB);
    crypto_generichash_final(&st, h, sizeof h);
    memcpy(tag, h, TB);
    /* The hash of N is as good as N for testing a guess once the tag set is public. */
    sodium_memzero(h, sizeof h);
    sodium_memzero(&st, sizeof st);
}

/* ad = label || len(list) || list || generation || tag; returns its length (<= 100). */
static size_t
seal_ad(uint8_t *ad, const char *list, size_t list_len, uint64_t generation, const uint8_t *tag)
{
    size_t o = sizeof seal_label - 1;
    memcpy(ad, seal_label, o);
    ad[o++] = (uint8_t)list_len;
    memcpy(ad + o, list, list_len);
    o += list_len;
    put_u64(ad + o, generation);
    o += 8;
    memcpy(ad + o, tag, TB);
    return o + TB;
}
#define AD_MAX (sizeof seal_label - 1 + 1 + BG_SNAP_LIST_MAX + 8 + TB)

static void
seal_keys(uint8_t enc[32], uint8_t siv[32], const uint8_t out[BG_OPRF_OUTPUTBYTES])
{
    crypto_generichash(enc, 32, (const uint8_t *)seal_enc_label, sizeof seal_enc_label - 1, out,
                       BG_OPRF_OUTPUTBYTES);
    crypto_generichash(siv, 32, (const uint8_t *)seal_siv_label, sizeof seal_siv_label - 1, out,
                       BG_OPRF_OUTPUTBYTES);
}

/* The 99-byte plaintext v1 (see snapshot.h). Strings are checked by the caller. */
static void
plain_encode(uint8_t p[BG_SNAP_PLAINBYTES], const uint8_t *input, size_t input_len,
             const bg_snap_payload *pl)
{
    size_t gl = strlen(pl->grade), sl = strlen(pl->scale);
    memset(p, 0, BG_SNAP_PLAINBYTES);
    p[0] = PLAIN_VERSION;
    p[1] = (uint8_t)input_len;
    memcpy(p + 2, input, input_len);
    p[34] = (uint8_t)gl;
    memcpy(p + 35, pl->grade, gl);
    p[43] = (uint8_t)sl;
    memcpy(p + 44, pl->scale, sl);
    put_u32(p + 75, (uint32_t)pl->evaluated_at);
    put_u32(p + 79, (uint32_t)pl->valid_until);
    put_u32(p + 83, (uint32_t)pl->listed_at);
    put_u32(p + 87, (uint32_t)pl->expires_at);
    put_u64(p + 91, pl->serial);
}

/* A string field of cap bytes holding len bytes without NUL, then zeros. */
static bool
field_ok(const uint8_t *f, size_t cap, size_t len)
{
    if (len > cap)
        return false;
    for (size_t i = 0; i < cap; i++)
        if ((i < len) != (f[i] != 0))
            return false;
    return true;
}

static bool
plain_decode(bg_snap_record *rec, const uint8_t p[BG_SNAP_PLAINBYTES])
{
    if (p[0] != PLAIN_VERSION || p[1] == 0 || p[1] > BG_SNAP_INPUT_MAX ||
        !sodium_is_zero(p + 2 + p[1], BG_SNAP_INPUT_MAX - p[1]) ||
        !field_ok(p + 35, BG_SNAP_GRADE_MAX, p[34]) || !field_ok(p + 44, BG_SNAP_SCALE_MAX, p[43]))
        return false;
    memset(rec, 0, sizeof *rec);
    rec->input_len = p[1];
    memcpy(rec->input, p + 2, p[1]);
    memcpy(rec->payload.grade, p + 35, p[34]);
    memcpy(rec->payload.scale, p + 44, p[43]);
    rec->payload.evaluated_at = (int32_t)get_u32(p + 75);
    rec->payload.valid_until = (int32_t)get_u32(p + 79);
    rec->payload.listed_at = (int32_t)get_u32(p + 83);
    rec->payload.expires_at = (int32_t)get_u32(p + 87);
    rec->payload.serial = get_u64(p + 91);
    return true;
}

/* sealed = nonce || AEAD(enc, nonce, ad, plain), nonce = BLAKE2b-192(siv, ad || plain). */
static void
seal(uint8_t sealed[SEB], const uint8_t out[BG_OPRF_OUTPUTBYTES], const uint8_t *ad, size_t ad_len,
     const uint8_t plain[BG_SNAP_PLAINBYTES])
{
    uint8_t enc[32], siv[32];
    crypto_generichash_state st;
    seal_keys(enc, siv, out);
    crypto_generichash_init(&st, siv, sizeof siv, BG_SNAP_NONCEBYTES);
    crypto_generichash_update(&st, ad, ad_len);
    crypto_generichash_update(&st, plain, BG_SNAP_PLAINBYTES);
    crypto_generichash_final(&st, sealed, BG_SNAP_NONCEBYTES);
    crypto_aead_xchacha20poly1305_ietf_encrypt(sealed + BG_SNAP_NONCEBYTES, NULL, plain,
                                               BG_SNAP_PLAINBYTES, ad, ad_len, NULL, sealed, enc);
    sodium_memzero(enc, sizeof enc);
    sodium_memzero(siv, sizeof siv);
    sodium_memzero(&st, sizeof st);
}

void
bg_snap_seal_entry(uint8_t sealed[SEB], const uint8_t out[BG_OPRF_OUTPUTBYTES], const char *list,
                   size_t list_len, uint64_t generation, const uint8_t tag[TB],
                   const uint8_t *input, size_t input_len, const bg_snap_payload *payload)
{
    uint8_t plain[BG_SNAP_PLAINBYTES], ad[AD_MAX];
    plain_encode(plain, input, input_len, payload);
    size_t ad_len = seal_ad(ad, list, list_len, generation, tag);
    seal(sealed, out, ad, ad_len, plain);
    sodium_memzero(plain, sizeof plain);
}

int
bg_snap_open(const bg_snap *s, size_t first, const uint8_t *input, size_t input_len,
             const uint8_t element[EB], bg_snap_record *rec, bg_err *err)
{
    /* The same search as bg_snap_open_key; the opening key is only wanted there, so it is
     * wiped here rather than handed back. */
    size_t index;
    uint8_t key[BG_SNAP_OPENKEYBYTES];
    int rc = bg_snap_open_key(s, first, input, input_len, element, rec, &index, key, err);
    sodium_memzero(key, sizeof key);
    return rc;
}

int
bg_snap_open_key(const bg_snap *s, size_t first, const uint8_t *input, size_t input_len,
                 const uint8_t element[EB], bg_snap_record *rec, size_t *index,
                 uint8_t key[BG_SNAP_OPENKEYBYTES], bg_err *err)
{
    if (index != NULL)
        *index = BG_SNAP_NONE;
    if (key != NULL)
        sodium_memzero(key, BG_SNAP_OPENKEYBYTES);
    if (rec != NULL)
        memset(rec, 0, sizeof *rec);
    int rc = ready(err);
    if (rc != BG_OK)
        return rc;
    if (s == NULL || rec == NULL || element == NULL || index == NULL || key == NULL)
        return bg_err_set(err, BG_EINVAL, "open: NULL argument");
    if (!s->graded)
        return bg_err_set(err, BG_EINVAL, "open: list %s carries no payloads", s->list);
    if (input == NULL || input_len == 0 || input_len > BG_SNAP_INPUT_MAX)
        return bg_err_set(err, BG_EINVAL, "open: input of %zu bytes, expected 1..%u", input_len,
                          BG_SNAP_INPUT_MAX);
    if (first >= s->n)
        return bg_err_set(err, BG_ENOTFOUND, "open: no entry");

    uint8_t out[BG_OPRF_OUTPUTBYTES], enc[32], siv[32], plain[BG_SNAP_PLAINBYTES], ad[AD_MAX];
    rc = bg_oprf_output(out, input, input_len, element, err);
    if (rc != BG_OK)
        return rc;
    seal_keys(enc, siv, out);
    const uint8_t *tag = s->tags + TB * first;
    size_t ad_len = seal_ad(ad, s->list, s->list_len, s->generation, tag);
    rc = bg_err_set(err, BG_ENOTFOUND, "open: no entry opens for this input");
    for (size_t i = first; i < s->n && memcmp(s->tags + TB * i, tag, TB) == 0; i++) {
        const uint8_t *sl = s->sealed + SEB * i;
        if (crypto_aead_xchacha20poly1305_ietf_decrypt(plain, NULL, NULL, sl + BG_SNAP_NONCEBYTES,
                                                       SEB - BG_SNAP_NONCEBYTES, ad, ad_len, sl,
                                                       enc) != 0)
            continue;
        if (plain_decode(rec, plain) && rec->input_len == input_len &&
            sodium_memcmp(rec->input, input, input_len) == 0) {
            rc = BG_OK;
            *index = i;
            memcpy(key, enc, BG_SNAP_OPENKEYBYTES);
            break;
        }
        memset(rec, 0, sizeof *rec);
    }
    if (rc == BG_OK)
        bg_err_clear(err);
    sodium_memzero(out, sizeof out);
    sodium_memzero(enc, sizeof enc);
    sodium_memzero(siv, sizeof siv);
    sodium_memzero(plain, sizeof plain);
    return rc;
}

int
bg_snap_open_sealed(const uint8_t key[BG_SNAP_OPENKEYBYTES], const char *list, uint64_t generation,
                    const uint8_t tag[TB], const uint8_t sealed[SEB], bg_snap_record *rec,
                    bg_err *err)
{
    if (rec != NULL)
        memset(rec, 0, sizeof *rec);
    int rc = ready(err);
    if (rc != BG_OK)
        return rc;
    if (key == NULL || list == NULL || tag == NULL || sealed == NULL || rec == NULL)
        return bg_err_set(err, BG_EINVAL, "open: NULL argument");
    size_t ll = strnlen(list, BG_SNAP_LIST_MAX + 1);
    if (!list_ok(list, ll))
        return bg_err_set(err, BG_EINVAL, "open: list name must be 1..%u printable bytes",
                          BG_SNAP_LIST_MAX);
    uint8_t ad[AD_MAX], plain[BG_SNAP_PLAINBYTES];
    size_t ad_len = seal_ad(ad, list, ll, generation, tag);
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(plain, NULL, NULL, sealed + BG_SNAP_NONCEBYTES,
                                                   SEB - BG_SNAP_NONCEBYTES, ad, ad_len, sealed,
                                                   key) != 0)
        rc = bg_err_set(err, BG_ECRYPTO,
                        "sealed payload does not open with this key for %s generation %llu", list,
                        (unsigned long long)generation);
    else if (!plain_decode(rec, plain))
        rc = bg_err_set(err, BG_EPROTO, "sealed payload opens to a malformed record");
    if (rc != BG_OK)
        memset(rec, 0, sizeof *rec);
    sodium_memzero(plain, sizeof plain);
    return rc;
}
