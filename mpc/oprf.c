/*
 * oprf.c - RFC 9497 OPRF (mode 0, ristretto255-SHA512) on libsodium; see oprf.h.
 */
#include "mpc/oprf.h"

#include <pthread.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/pool.h"

#define SB BG_OPRF_SCALARBYTES
#define EB BG_OPRF_ELEMENTBYTES

/* contextString = "OPRFV1-" || I2OSP(mode = 0, 1) || "-" || "ristretto255-SHA512", and
 * the DSTs built on it. The mode byte is a NUL inside the string, so lengths come from
 * sizeof - 1 (never strlen); "\x00" ends its literal so no later character can extend
 * the escape. */
#define CONTEXT                                                                                    \
    "OPRFV1-\x00"                                                                                  \
    "-ristretto255-SHA512"
static const uint8_t dst_h2g[] = "HashToGroup-" CONTEXT;
static const uint8_t dst_h2s[] = "HashToScalar-" CONTEXT;
static const uint8_t dst_derive[] = "DeriveKeyPair" CONTEXT;
static const uint8_t finalize_label[] = "Finalize";

/* The group order L = 2^252 + 27742317777372353535851937790883648493, little-endian. */
static const uint8_t group_order[SB] = {
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10,
};

/* Items per unit of parallel work: large enough that claiming a unit (one atomic add)
 * and the batched inversion's one invert are noise, small enough to balance load. */
#define CHUNK 64U

/* "No index": the message names an argument, not a batch item. */
#define NO_INDEX ((size_t)-1)

/* ---- initialisation ---- */

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_status = -1;

static void
init_sodium(void)
{
    init_status = sodium_init() < 0 ? -1 : 0;
}

/* pthread_once makes the first caller run sodium_init and every other wait for it. */
static int
ready(bg_err *err)
{
    if (pthread_once(&init_once, init_sodium) != 0 || init_status != 0)
        return bg_err_set(err, BG_ECRYPTO, "libsodium failed to initialise");
    return BG_OK;
}

int
bg_oprf_init(bg_err *err)
{
    return ready(err);
}

unsigned
bg_oprf_threads_default(void)
{
    return bg_pool_threads_default();
}

/* ---- messages ---- */

/* "what idx: why", "what: why", or (what == NULL) the bare reason. */
static int
refuse(bg_err *err, int code, const char *what, size_t idx, const char *why)
{
    if (what == NULL)
        return bg_err_set(err, code, "%s", why);
    if (idx == NO_INDEX)
        return bg_err_set(err, code, "%s: %s", what, why);
    return bg_err_set(err, code, "%s %zu: %s", what, idx, why);
}

/* ---- expand_message_xmd (RFC 9380 §5.3.1), SHA-512 ---- */

/* The message as pieces, so callers that build msg from parts (DeriveKeyPair) need no
 * allocation and no extra copy of secret bytes. */
struct piece {
    const uint8_t *p;
    size_t len;
};

static void
absorb(crypto_hash_sha512_state *st, const uint8_t *p, size_t len)
{
    if (len > 0) /* p may be NULL for an empty piece */
        crypto_hash_sha512_update(st, p, len);
}

/* Lengths are checked by the callers: 1 <= out_len <= BG_OPRF_XMD_MAX, 1 <= dst_len <= 255. */
static void
xmd(uint8_t *out, size_t out_len, const struct piece *msg, size_t npieces, const uint8_t *dst,
    size_t dst_len)
{
    /* Z_pad: one SHA-512 input block (r_in_bytes = 128) of zeros. */
    static const uint8_t z_pad[128];
    const uint8_t l_i_b[2] = {(uint8_t)(out_len >> 8), (uint8_t)out_len};
    const uint8_t dst_len_byte = (uint8_t)dst_len, zero = 0;
    uint8_t b0[64], bi[64], x[64];
    crypto_hash_sha512_state st;

    /* b_0 = H(Z_pad || msg || I2OSP(len_in_bytes, 2) || I2OSP(0, 1) || DST_prime) */
    crypto_hash_sha512_init(&st);
    absorb(&st, z_pad, sizeof z_pad);
    for (size_t k = 0; k < npieces; k++)
        absorb(&st, msg[k].p, msg[k].len);
    absorb(&st, l_i_b, sizeof l_i_b);
    absorb(&st, &zero, 1);
    absorb(&st, dst, dst_len);
    absorb(&st, &dst_len_byte, 1);
    crypto_hash_sha512_final(&st, b0);

    /* b_1 = H(b_0 || 1 || DST_prime); b_i = H((b_0 xor b_(i-1)) || i || DST_prime) */
    size_t ell = (out_len + 63) / 64;
    for (size_t i = 1; i <= ell; i++) {
        const uint8_t ib = (uint8_t)i;
        for (size_t j = 0; j < 64; j++)
            x[j] = i == 1 ? b0[j] : (uint8_t)(b0[j] ^ bi[j]);
        crypto_hash_sha512_init(&st);
        absorb(&st, x, sizeof x);
        absorb(&st, &ib, 1);
        absorb(&st, dst, dst_len);
        absorb(&st, &dst_len_byte, 1);
        crypto_hash_sha512_final(&st, bi);
        size_t off = (i - 1) * 64, take = out_len - off < 64 ? out_len - off : 64;
        memcpy(out + off, bi, take);
    }
    /* The blocks are a function of the message, which may be an asker's secret input. */
    sodium_memzero(b0, sizeof b0);
    sodium_memzero(bi, sizeof bi);
    sodium_memzero(x, sizeof x);
    sodium_memzero(&st, sizeof st);
}

int
bg_oprf_expand_message_xmd(uint8_t *out, size_t out_len, const uint8_t *msg, size_t msg_len,
                           const uint8_t *dst, size_t dst_len, bg_err *err)
{
    int rc = ready(err);
    if (rc != BG_OK)
        return rc;
    if (out == NULL || out_len == 0 || out_len > BG_OPRF_XMD_MAX)
        return bg_err_set(err, BG_EINVAL, "expand_message_xmd: output length %zu not in 1..%u",
                          out_len, BG_OPRF_XMD_MAX);
    if (dst == NULL || dst_len == 0 || dst_len > BG_OPRF_DST_MAX)
        return bg_err_set(err, BG_EINVAL, "expand_message_xmd: DST length %zu not in 1..%u",
                          dst_len, BG_OPRF_DST_MAX);
    if (msg == NULL && msg_len > 0)
        return bg_err_set(err, BG_EINVAL, "expand_message_xmd: NULL message");
    const struct piece m = {msg, msg_len};
    xmd(out, out_len, &m, 1, dst, dst_len);
    return BG_OK;
}

/* ---- scalars and elements ---- */

/* 1 iff s < L, without branches on s: the borrow out of the byte-wise s - L. */
static unsigned
scalar_below_order(const uint8_t s[SB])
{
    unsigned borrow = 0;
    for (size_t i = 0; i < SB; i++)
        borrow = (((unsigned)s[i] - group_order[i] - borrow) >> 8) & 1U;
    return borrow;
}

static int
scalar_check_at(const uint8_t s[SB], const char *what, size_t idx, bg_err *err)
{
    /* Both tests are constant time and both always run, so timing reveals nothing about
     * a valid secret scalar; which test failed is only reported for a refused one. */
    unsigned canonical = scalar_below_order(s);
    int zero = sodium_is_zero(s, SB);
    if (!canonical)
        return refuse(err, BG_EINVAL, what, idx, "not a canonical scalar (>= the group order)");
    if (zero)
        return refuse(err, BG_EINVAL, what, idx, "zero scalar");
    return BG_OK;
}

static int
element_check_at(const uint8_t e[EB], const char *what, size_t idx, bg_err *err)
{
    /* libsodium 1.0.18 ignores bit 255 when decoding (its canonical check looks at the
     * low 255 bits only), so is_valid_point accepts e | 2^255 as the same point: two
     * encodings of one element, and 00..0080 would be an identity that the all-zero
     * test below misses. RFC 9496 requires rejecting both, hence this check. */
    if ((e[EB - 1] & 0x80) != 0 || crypto_core_ristretto255_is_valid_point(e) != 1)
        return refuse(err, BG_EINVAL, what, idx,
                      "not a canonical ristretto255 encoding of a group element");
    /* is_valid_point accepts the identity; its only canonical encoding is all zeros. */
    if (sodium_is_zero(e, EB))
        return refuse(err, BG_EINVAL, what, idx, "the identity element");
    return BG_OK;
}

/*
 * The checks element_check_at makes that crypto_scalarmult_ristretto255 does not: bit
 * 255 (libsodium ignores it) and the identity. The scalar mult decodes its point with
 * the same canonical check as is_valid_point and fails on anything else, so hot paths
 * use this and let the multiplication's own decode do the rest: decoding every element
 * twice cost 9% of an evaluation. Their failure path runs element_check_at for the
 * reason and the first bad index.
 */
static int
element_precheck_at(const uint8_t e[EB], const char *what, size_t idx, bg_err *err)
{
    if ((e[EB - 1] & 0x80) != 0)
        return refuse(err, BG_EINVAL, what, idx,
                      "not a canonical ristretto255 encoding of a group element");
    if (sodium_is_zero(e, EB))
        return refuse(err, BG_EINVAL, what, idx, "the identity element");
    return BG_OK;
}

int
bg_oprf_scalar_check(const uint8_t *s, size_t len, bg_err *err)
{
    int rc = ready(err);
    if (rc != BG_OK)
        return rc;
    if (s == NULL || len != SB)
        return bg_err_set(err, BG_EINVAL, "%zu bytes, expected %u", s ? len : 0, SB);
    return scalar_check_at(s, NULL, NO_INDEX, err);
}

int
bg_oprf_element_check(const uint8_t *e, size_t len, bg_err *err)
{
    int rc = ready(err);
    if (rc != BG_OK)
        return rc;
    if (e == NULL || len != EB)
        return bg_err_set(err, BG_EINVAL, "%zu bytes, expected %u", e ? len : 0, EB);
    return element_check_at(e, NULL, NO_INDEX, err);
}

int
bg_oprf_scalar_invert(uint8_t inv[SB], const uint8_t s[SB], bg_err *err)
{
    uint8_t t[SB]; /* libsodium does not promise that its output may alias its input */
    int rc = ready(err);
    if (rc == BG_OK)
        rc = scalar_check_at(s, "scalar", NO_INDEX, err);
    if (rc == BG_OK && crypto_core_ristretto255_scalar_invert(t, s) != 0)
        rc = bg_err_set(err, BG_ECRYPTO, "scalar: inversion failed");
    if (rc == BG_OK)
        memcpy(inv, t, SB);
    else
        sodium_memzero(inv, SB);
    sodium_memzero(t, sizeof t);
    return rc;
}

/* ---- hashing to the group and to scalars ---- */

static int
input_check_at(const uint8_t *input, size_t len, const char *what, size_t idx, bg_err *err)
{
    if (len > BG_OPRF_INPUT_MAX)
        return refuse(err, BG_EINVAL, what, idx, "longer than 65535 bytes");
    if (input == NULL && len > 0)
        return refuse(err, BG_EINVAL, what, idx, "NULL with a non-zero length");
    return BG_OK;
}

static int
hash_to_group_at(uint8_t point[EB], const uint8_t *input, size_t len, const char *what, size_t idx,
                 bg_err *err)
{
    int rc = input_check_at(input, len, what, idx, err);
    if (rc != BG_OK)
        return rc;
    uint8_t uniform[64];
    const struct piece m = {input, len};
    xmd(uniform, sizeof uniform, &m, 1, dst_h2g, sizeof dst_h2g - 1);
    crypto_core_ristretto255_from_hash(point, uniform);
    sodium_memzero(uniform, sizeof uniform);
    /* RFC 9497 Blind: an input that maps to the identity is refused (probability 2^-252). */
    if (sodium_is_zero(point, EB))
        return refuse(err, BG_EINVAL, what, idx, "hashes to the identity element");
    return BG_OK;
}

int
bg_oprf_hash_to_group(uint8_t point[EB], const uint8_t *input, size_t input_len, bg_err *err)
{
    int rc = ready(err);
    if (rc == BG_OK)
        rc = hash_to_group_at(point, input, input_len, "input", NO_INDEX, err);
    if (rc != BG_OK)
        sodium_memzero(point, EB);
    return rc;
}

/* HashToScalar with the given DST over msg pieces: 64 uniform bytes reduced mod L. */
static void
hash_to_scalar_dst(uint8_t scalar[SB], const struct piece *msg, size_t npieces, const uint8_t *dst,
                   size_t dst_len)
{
    uint8_t uniform[64];
    xmd(uniform, sizeof uniform, msg, npieces, dst, dst_len);
    crypto_core_ristretto255_scalar_reduce(scalar, uniform);
    sodium_memzero(uniform, sizeof uniform);
}

int
bg_oprf_hash_to_scalar(uint8_t scalar[SB], const uint8_t *input, size_t input_len, bg_err *err)
{
    int rc = ready(err);
    if (rc == BG_OK)
        rc = input_check_at(input, input_len, "input", NO_INDEX, err);
    if (rc != BG_OK) {
        sodium_memzero(scalar, SB);
        return rc;
    }
    const struct piece m = {input, input_len};
    hash_to_scalar_dst(scalar, &m, 1, dst_h2s, sizeof dst_h2s - 1);
    return BG_OK;
}

/* ---- keys ---- */

int
bg_oprf_keygen(uint8_t sk[SB], bg_err *err)
{
    int rc = ready(err);
    if (rc != BG_OK) {
        sodium_memzero(sk, SB);
        return rc;
    }
    /* libsodium draws canonical non-zero scalars; checked anyway, as a key must be. */
    crypto_core_ristretto255_scalar_random(sk);
    rc = scalar_check_at(sk, "generated key", NO_INDEX, err);
    if (rc != BG_OK) {
        sodium_memzero(sk, SB);
        return bg_err_set(err, BG_ECRYPTO, "key generation produced an unusable scalar");
    }
    return BG_OK;
}

int
bg_oprf_derive_key(uint8_t sk[SB], const uint8_t seed[BG_OPRF_SEEDBYTES], const uint8_t *info,
                   size_t info_len, bg_err *err)
{
    int rc = ready(err);
    if (rc == BG_OK)
        rc = input_check_at(info, info_len, "info", NO_INDEX, err);
    if (rc != BG_OK) {
        sodium_memzero(sk, SB);
        return rc;
    }
    /* deriveInput = seed || I2OSP(len(info), 2) || info, then || I2OSP(counter, 1): the
     * counter retries the (2^-252 likely) zero scalar, up to 256 times. */
    const uint8_t info_len_be[2] = {(uint8_t)(info_len >> 8), (uint8_t)info_len};
    uint8_t counter = 0;
    const struct piece m[4] = {
        {seed, BG_OPRF_SEEDBYTES}, {info_len_be, 2}, {info, info_len}, {&counter, 1}};
    for (unsigned c = 0; c <= 255; c++) {
        counter = (uint8_t)c;
        hash_to_scalar_dst(sk, m, 4, dst_derive, sizeof dst_derive - 1);
        if (!sodium_is_zero(sk, SB))
            return BG_OK;
    }
    sodium_memzero(sk, SB);
    return bg_err_set(err, BG_ECRYPTO, "DeriveKeyPair: no non-zero scalar in 256 tries");
}

/* ---- the protocol steps, one item ---- */

/* blinded = blind * H(input); the blind is already checked. */
static int
blind_one(uint8_t blinded[EB], const uint8_t blind[SB], const uint8_t *input, size_t len,
          const char *what, size_t idx, bg_err *err)
{
    uint8_t p[EB];
    int rc = hash_to_group_at(p, input, len, what, idx, err);
    if (rc == BG_OK && crypto_scalarmult_ristretto255(blinded, blind, p) != 0)
        rc = refuse(err, BG_ECRYPTO, what, idx, "blinding gave the identity");
    /* H(input) lets anyone test a guess of the input: it is as secret as the input. */
    sodium_memzero(p, sizeof p);
    return rc;
}

/* evaluated = sk * element; the key is already checked, the element is checked here. */
static int
evaluate_one(uint8_t evaluated[EB], const uint8_t sk[SB], const uint8_t element[EB],
             const char *what, size_t idx, bg_err *err)
{
    int rc = element_precheck_at(element, what, idx, err);
    if (rc != BG_OK)
        return rc;
    /* -1: the element does not decode (say which way), or an identity result, which is
     * impossible for a non-identity element and a non-zero scalar in a prime-order group:
     * an internal failure, reported, never ignored. */
    if (crypto_scalarmult_ristretto255(evaluated, sk, element) != 0) {
        sodium_memzero(evaluated, EB);
        rc = element_check_at(element, what, idx, err);
        return rc != BG_OK ? rc
                           : refuse(err, BG_ECRYPTO, what, idx, "scalar multiplication failed");
    }
    return BG_OK;
}

int
bg_oprf_blind_with(uint8_t blinded[EB], const uint8_t blind[SB], const uint8_t *input,
                   size_t input_len, bg_err *err)
{
    int rc = ready(err);
    if (rc == BG_OK)
        rc = scalar_check_at(blind, "blind", NO_INDEX, err);
    if (rc == BG_OK)
        rc = blind_one(blinded, blind, input, input_len, "input", NO_INDEX, err);
    if (rc != BG_OK)
        sodium_memzero(blinded, EB);
    return rc;
}

int
bg_oprf_blind(uint8_t blind[SB], uint8_t blinded[EB], const uint8_t *input, size_t input_len,
              bg_err *err)
{
    int rc = ready(err);
    if (rc == BG_OK) {
        crypto_core_ristretto255_scalar_random(blind);
        rc = blind_one(blinded, blind, input, input_len, "input", NO_INDEX, err);
    }
    if (rc != BG_OK) {
        sodium_memzero(blind, SB);
        sodium_memzero(blinded, EB);
    }
    return rc;
}

int
bg_oprf_evaluate(uint8_t evaluated[EB], const uint8_t sk[SB], const uint8_t element[EB],
                 bg_err *err)
{
    int rc = ready(err);
    if (rc == BG_OK)
        rc = scalar_check_at(sk, "key", NO_INDEX, err);
    if (rc == BG_OK)
        rc = evaluate_one(evaluated, sk, element, "element", NO_INDEX, err);
    if (rc != BG_OK)
        sodium_memzero(evaluated, EB);
    return rc;
}

int
bg_oprf_unblind(uint8_t unblinded[EB], const uint8_t blind[SB], const uint8_t evaluated[EB],
                bg_err *err)
{
    uint8_t inv[SB];
    int rc = ready(err);
    if (rc == BG_OK)
        rc = scalar_check_at(blind, "blind", NO_INDEX, err);
    if (rc == BG_OK)
        rc = element_check_at(evaluated, "evaluated element", NO_INDEX, err);
    if (rc == BG_OK && crypto_core_ristretto255_scalar_invert(inv, blind) != 0)
        rc = bg_err_set(err, BG_ECRYPTO, "blind: inversion failed");
    /* The element is checked above, so straight to the multiplication (see evaluate_one). */
    if (rc == BG_OK && crypto_scalarmult_ristretto255(unblinded, inv, evaluated) != 0)
        rc = bg_err_set(err, BG_ECRYPTO, "evaluated element: scalar multiplication failed");
    sodium_memzero(inv, sizeof inv);
    if (rc != BG_OK)
        sodium_memzero(unblinded, EB);
    return rc;
}

int
bg_oprf_output(uint8_t out[BG_OPRF_OUTPUTBYTES], const uint8_t *input, size_t input_len,
               const uint8_t unblinded[EB], bg_err *err)
{
    int rc = ready(err);
    if (rc == BG_OK)
        rc = input_check_at(input, input_len, "input", NO_INDEX, err);
    if (rc != BG_OK) {
        sodium_memzero(out, BG_OPRF_OUTPUTBYTES);
        return rc;
    }
    const uint8_t in_len[2] = {(uint8_t)(input_len >> 8), (uint8_t)input_len};
    const uint8_t el_len[2] = {0, (uint8_t)EB};
    crypto_hash_sha512_state st;
    crypto_hash_sha512_init(&st);
    absorb(&st, in_len, 2);
    absorb(&st, input, input_len);
    absorb(&st, el_len, 2);
    absorb(&st, unblinded, EB);
    absorb(&st, finalize_label, sizeof finalize_label - 1);
    crypto_hash_sha512_final(&st, out);
    sodium_memzero(&st, sizeof st);
    return BG_OK;
}

int
bg_oprf_finalize(uint8_t out[BG_OPRF_OUTPUTBYTES], const uint8_t *input, size_t input_len,
                 const uint8_t blind[SB], const uint8_t evaluated[EB], bg_err *err)
{
    uint8_t n[EB];
    int rc = ready(err);
    /* The input is checked first so a bad input costs no scalar multiplication. */
    if (rc == BG_OK)
        rc = input_check_at(input, input_len, "input", NO_INDEX, err);
    if (rc == BG_OK)
        rc = bg_oprf_unblind(n, blind, evaluated, err);
    if (rc == BG_OK)
        rc = bg_oprf_output(out, input, input_len, n, err);
    /* N = k*H(input) is the PRF value itself. */
    sodium_memzero(n, sizeof n);
    if (rc != BG_OK)
        sodium_memzero(out, BG_OPRF_OUTPUTBYTES);
    return rc;
}

/* ---- batches ---- */

_Static_assert(BG_OPRF_THREADS_MAX == BG_POOL_THREADS_MAX, "one thread cap");

/* One batch: run (a bg_pool_fn over this struct) processes items [begin, end). */
struct batch {
    bg_pool_fn run;
    size_t n;
    const uint8_t *const *inputs; /* hash, blind */
    const size_t *input_lens;     /* hash, blind */
    const uint8_t *key;           /* evaluate */
    const uint8_t *scalars;       /* unblind: the blinds */
    const uint8_t *elements;      /* evaluate, unblind */
    uint8_t *out;                 /* n elements */
    uint8_t *out_scalars;         /* blind: the fresh blinds, else NULL */
};

static int
chunk_hash(void *ctx, size_t begin, size_t end, size_t *bad, bg_err *err)
{
    const struct batch *b = ctx;
    for (size_t i = begin; i < end; i++) {
        int rc = hash_to_group_at(b->out + EB * i, b->inputs[i], b->input_lens[i], "input", i, err);
        if (rc != BG_OK) {
            *bad = i;
            return rc;
        }
    }
    return BG_OK;
}

static int
chunk_blind(void *ctx, size_t begin, size_t end, size_t *bad, bg_err *err)
{
    const struct batch *b = ctx;
    for (size_t i = begin; i < end; i++) {
        uint8_t *blind = b->out_scalars + SB * i;
        crypto_core_ristretto255_scalar_random(blind);
        int rc = blind_one(b->out + EB * i, blind, b->inputs[i], b->input_lens[i], "input", i, err);
        if (rc != BG_OK) {
            *bad = i;
            return rc;
        }
    }
    return BG_OK;
}

static int
chunk_evaluate(void *ctx, size_t begin, size_t end, size_t *bad, bg_err *err)
{
    const struct batch *b = ctx;
    for (size_t i = begin; i < end; i++) {
        int rc = evaluate_one(b->out + EB * i, b->key, b->elements + EB * i, "element", i, err);
        if (rc != BG_OK) {
            *bad = i;
            return rc;
        }
    }
    return BG_OK;
}

/*
 * Unblinds up to CHUNK items with one scalar inversion (Montgomery's trick): with
 * prefix[i] = s_0 * ... * s_i and inv = prefix[m-1]^-1, walking back gives
 * s_i^-1 = inv * prefix[i-1], then inv *= s_i. Three multiplications mod L (~0.1 us)
 * replace an inversion (~25 us) per item. All operations are constant time.
 */
static int
chunk_unblind(void *ctx, size_t begin, size_t end, size_t *bad, bg_err *err)
{
    const struct batch *b = ctx;
    uint8_t prefix[CHUNK][SB], inv[SB], si_inv[SB], t[SB];
    size_t m = end - begin;
    int rc = BG_OK;

    /* Checked item by item (blind, then element) so the first bad index is reported. */
    for (size_t i = begin; i < end && rc == BG_OK; i++) {
        rc = scalar_check_at(b->scalars + SB * i, "blind", i, err);
        if (rc == BG_OK)
            rc = element_precheck_at(b->elements + EB * i, "evaluated element", i, err);
        if (rc != BG_OK)
            *bad = i;
    }
    if (rc != BG_OK)
        return rc;

    memcpy(prefix[0], b->scalars + SB * begin, SB);
    for (size_t i = 1; i < m; i++)
        crypto_core_ristretto255_scalar_mul(prefix[i], prefix[i - 1],
                                            b->scalars + SB * (begin + i));
    if (crypto_core_ristretto255_scalar_invert(inv, prefix[m - 1]) != 0) {
        *bad = begin;
        rc = refuse(err, BG_ECRYPTO, "blind", begin, "batch inversion failed");
    }
    for (size_t i = m; i-- > 0 && rc == BG_OK;) {
        const uint8_t *s = b->scalars + SB * (begin + i);
        if (i > 0) {
            crypto_core_ristretto255_scalar_mul(si_inv, inv, prefix[i - 1]);
            crypto_core_ristretto255_scalar_mul(t, inv, s);
            memcpy(inv, t, SB);
        } else {
            memcpy(si_inv, inv, SB);
        }
        if (crypto_scalarmult_ristretto255(b->out + EB * (begin + i), si_inv,
                                           b->elements + EB * (begin + i)) != 0) {
            /* Name the first element of the chunk that does not decode (see
             * element_precheck_at), else an internal failure at this one. */
            rc = BG_ECRYPTO;
            for (size_t k = begin; k < end && rc == BG_ECRYPTO; k++)
                if (element_check_at(b->elements + EB * k, "evaluated element", k, err) != BG_OK) {
                    *bad = k;
                    rc = BG_EINVAL;
                }
            if (rc == BG_ECRYPTO) {
                *bad = begin + i;
                rc = refuse(err, BG_ECRYPTO, "evaluated element", begin + i,
                            "scalar multiplication failed");
            }
        }
    }
    sodium_memzero(prefix, sizeof prefix);
    sodium_memzero(inv, sizeof inv);
    sodium_memzero(si_inv, sizeof si_inv);
    sodium_memzero(t, sizeof t);
    return rc;
}

/* Wipes what a failed batch may have written, where the arguments allow it. */
static void
wipe_outputs(uint8_t *elements, uint8_t *scalars, size_t n)
{
    if (n > SIZE_MAX / (2 * EB))
        return;
    if (elements != NULL)
        sodium_memzero(elements, EB * n);
    if (scalars != NULL)
        sodium_memzero(scalars, SB * n);
}

/* Runs b on nthreads threads (common/pool.h: the error names the lowest failing index,
 * as a serial run would) and wipes its outputs if it failed. */
static int
run_batch(struct batch *b, unsigned nthreads, bg_err *err)
{
    int rc = bg_pool_run(b->n, CHUNK, nthreads, b->run, b, err);
    if (rc != BG_OK)
        wipe_outputs(b->out, b->out_scalars, b->n);
    return rc;
}

/* Common argument checks; BG_OK with n == 0 means nothing to do. */
static int
batch_args(size_t n, bool ok_ptrs, const char *fn, bg_err *err)
{
    int rc = ready(err);
    if (rc != BG_OK)
        return rc;
    /* 32*n must be addressable; the largest packed array is 32*n bytes. */
    if (n > SIZE_MAX / (2 * EB))
        return bg_err_set(err, BG_ELIMIT, "%s: %zu items is too many", fn, n);
    if (n > 0 && !ok_ptrs)
        return bg_err_set(err, BG_EINVAL, "%s: NULL array with %zu items", fn, n);
    return BG_OK;
}

int
bg_oprf_hash_to_group_batch(uint8_t *points, const uint8_t *const *inputs, const size_t *input_lens,
                            size_t n, unsigned nthreads, bg_err *err)
{
    int rc = batch_args(n, points && inputs && input_lens, "hash_to_group_batch", err);
    if (rc != BG_OK)
        wipe_outputs(points, NULL, n);
    if (rc != BG_OK || n == 0)
        return rc;
    struct batch b = {
        .run = chunk_hash, .n = n, .inputs = inputs, .input_lens = input_lens, .out = points};
    return run_batch(&b, nthreads, err);
}

int
bg_oprf_blind_batch(uint8_t *blinds, uint8_t *blinded, const uint8_t *const *inputs,
                    const size_t *input_lens, size_t n, unsigned nthreads, bg_err *err)
{
    int rc = batch_args(n, blinds && blinded && inputs && input_lens, "blind_batch", err);
    if (rc != BG_OK)
        wipe_outputs(blinded, blinds, n);
    if (rc != BG_OK || n == 0)
        return rc;
    struct batch b = {.run = chunk_blind,
                      .n = n,
                      .inputs = inputs,
                      .input_lens = input_lens,
                      .out = blinded,
                      .out_scalars = blinds};
    return run_batch(&b, nthreads, err);
}

int
bg_oprf_evaluate_batch(uint8_t *evaluated, const uint8_t sk[SB], const uint8_t *elements, size_t n,
                       unsigned nthreads, bg_err *err)
{
    int rc = batch_args(n, evaluated && sk && elements, "evaluate_batch", err);
    if (rc == BG_OK && n > 0)
        rc = scalar_check_at(sk, "key", NO_INDEX, err);
    if (rc != BG_OK)
        wipe_outputs(evaluated, NULL, n);
    if (rc != BG_OK || n == 0)
        return rc;
    struct batch b = {
        .run = chunk_evaluate, .n = n, .key = sk, .elements = elements, .out = evaluated};
    return run_batch(&b, nthreads, err);
}

int
bg_oprf_unblind_batch(uint8_t *unblinded, const uint8_t *blinds, const uint8_t *evaluated, size_t n,
                      unsigned nthreads, bg_err *err)
{
    int rc = batch_args(n, unblinded && blinds && evaluated, "unblind_batch", err);
    if (rc != BG_OK)
        wipe_outputs(unblinded, NULL, n);
    if (rc != BG_OK || n == 0)
        return rc;
    struct batch b = {
        .run = chunk_unblind, .n = n, .scalars = blinds, .elements = evaluated, .out = unblinded};
    return run_batch(&b, nthreads, err);
}
