/*
 * test_oprf.c - the RFC 9497 OPRF (mode 0, ristretto255-SHA512): published vectors,
 * batches and threads, refusal of hostile elements and unusable scalars, the CLI aid.
 *
 * The expected values are the published ones (RFC 9497 Appendix A.1.1, RFC 9380
 * Appendix K.3), so the implementation is tested against the standards, not against
 * itself. Everything else checks algebraic identities that must hold for any input.
 */
#include <check.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mpc/oprf.h"

/* ---- helpers ---- */

static size_t
unhex(uint8_t *out, size_t cap, const char *hex)
{
    size_t len = 0;
    ck_assert_int_eq(sodium_hex2bin(out, cap, hex, strlen(hex), NULL, &len, NULL), 0);
    ck_assert_uint_eq(len * 2, strlen(hex));
    return len;
}

static void
assert_hex(const uint8_t *b, size_t len, const char *expected)
{
    char hex[2 * BG_OPRF_XMD_MAX + 1];
    ck_assert_uint_le(len, BG_OPRF_XMD_MAX);
    sodium_bin2hex(hex, sizeof hex, b, len);
    ck_assert_str_eq(hex, expected);
}

static void
random_scalar(uint8_t s[BG_OPRF_SCALARBYTES])
{
    crypto_core_ristretto255_scalar_random(s);
}

/* ---- RFC 9497 Appendix A.1.1: OPRF(ristretto255, SHA-512), mode 0 ---- */

static const char *const rfc_seed =
    "a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3";
static const char *const rfc_key_info = "74657374206b6579"; /* "test key" */
static const char *const rfc_skSm =
    "5ebcea5ee37023ccb9fc2d2019f9d7737be85591ae8652ffa9ef0f4d37063b0e";

static const struct {
    const char *input, *blind, *blinded, *evaluated, *output;
} rfc_vectors[] = {
    {"00", "64d37aed22a27f5191de1c1d69fadb899d8862b58eb4220029e036ec4c1f6706",
     "609a0ae68c15a3cf6903766461307e5c8bb2f95e7e6550e1ffa2dc99e412803c",
     "7ec6578ae5120958eb2db1745758ff379e77cb64fe77b0b2d8cc917ea0869c7e",
     "527759c3d9366f277d8c6020418d96bb393ba2afb20ff90df23fb7708264e2f3"
     "ab9135e3bd69955851de4b1f9fe8a0973396719b7912ba9ee8aa7d0b5e24bcf6"},
    {"5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a",
     "64d37aed22a27f5191de1c1d69fadb899d8862b58eb4220029e036ec4c1f6706",
     "da27ef466870f5f15296299850aa088629945a17d1f5b7f5ff043f76b3c06418",
     "b4cbf5a4f1eeda5a63ce7b77c7d23f461db3fcab0dd28e4e17cecb5c90d02c25",
     "f4a74c9c592497375e796aa837e907b1a045d34306a749db9f34221f7e750cb4"
     "f2a6413a6bf6fa5e19ba6348eb673934a722a7ede2e7621306d18951e7cf2c73"},
};
#define NRFC (sizeof rfc_vectors / sizeof rfc_vectors[0])

START_TEST(derive_key_reproduces_rfc_skSm)
{
    uint8_t seed[32], info[16], sk[32];
    unhex(seed, sizeof seed, rfc_seed);
    size_t info_len = unhex(info, sizeof info, rfc_key_info);
    bg_err err = {0};
    ck_assert_int_eq(bg_oprf_derive_key(sk, seed, info, info_len, &err), BG_OK);
    assert_hex(sk, sizeof sk, rfc_skSm);
}
END_TEST

START_TEST(blind_evaluate_finalize_reproduce_rfc_vectors)
{
    uint8_t sk[32];
    unhex(sk, sizeof sk, rfc_skSm);
    for (size_t v = 0; v < NRFC; v++) {
        uint8_t input[64], blind[32], blinded[32], evaluated[32], out[64];
        size_t len = unhex(input, sizeof input, rfc_vectors[v].input);
        unhex(blind, sizeof blind, rfc_vectors[v].blind);
        bg_err err = {0};
        ck_assert_int_eq(bg_oprf_blind_with(blinded, blind, input, len, &err), BG_OK);
        assert_hex(blinded, 32, rfc_vectors[v].blinded);
        ck_assert_int_eq(bg_oprf_evaluate(evaluated, sk, blinded, &err), BG_OK);
        assert_hex(evaluated, 32, rfc_vectors[v].evaluated);
        ck_assert_int_eq(bg_oprf_finalize(out, input, len, blind, evaluated, &err), BG_OK);
        assert_hex(out, 64, rfc_vectors[v].output);

        /* The same output from the pieces the PSI layer uses: unblind, then the hash. */
        uint8_t n[32], out2[64];
        ck_assert_int_eq(bg_oprf_unblind(n, blind, evaluated, &err), BG_OK);
        ck_assert_int_eq(bg_oprf_output(out2, input, len, n, &err), BG_OK);
        assert_hex(out2, 64, rfc_vectors[v].output);
    }
}
END_TEST

START_TEST(batch_evaluation_reproduces_rfc_vectors)
{
    uint8_t sk[32], blinded[NRFC * 32], evaluated[NRFC * 32];
    unhex(sk, sizeof sk, rfc_skSm);
    for (size_t v = 0; v < NRFC; v++)
        unhex(blinded + 32 * v, 32, rfc_vectors[v].blinded);
    for (unsigned t = 0; t <= 2; t++) {
        ck_assert_int_eq(bg_oprf_evaluate_batch(evaluated, sk, blinded, NRFC, t, NULL), BG_OK);
        for (size_t v = 0; v < NRFC; v++)
            assert_hex(evaluated + 32 * v, 32, rfc_vectors[v].evaluated);
    }
}
END_TEST

/* ---- RFC 9380 Appendix K.3: expand_message_xmd(SHA-512) ---- */

START_TEST(expand_message_xmd_reproduces_rfc9380_vectors)
{
    static const char dst[] = "QUUX-V01-CS02-with-expander-SHA512-256";
    static const struct {
        const char *msg;
        size_t len;
        const char *uniform;
    } k3[] = {
        {"", 0x20, "6b9a7312411d92f921c6f68ca0b6380730a1a4d982c507211a90964c394179ba"},
        {"abc", 0x20, "0da749f12fbe5483eb066a5f595055679b976e93abe9be6f0f6318bce7aca8dc"},
        {"abcdef0123456789", 0x20,
         "087e45a86e2939ee8b91100af1583c4938e0f5fc6c9db4b107b83346bc967f58"},
        /* 0x80 bytes: two SHA-512 blocks, so the b_0 xor b_1 chaining is covered. */
        {"", 0x80,
         "41b037d1734a5f8df225dd8c7de38f851efdb45c372887be655212d07251b921"
         "b052b62eaed99b46f72f2ef4cc96bfaf254ebbbec091e1a3b9e4fb5e5b619d2e"
         "0c5414800a1d882b62bb5cd1778f098b8eb6cb399d5d9d18f5d5842cf5d13d7e"
         "b00a7cff859b605da678b318bd0e65ebff70bec88c753b159a805d2c89c55961"},
        {"abc", 0x80,
         "7f1dddd13c08b543f2e2037b14cefb255b44c83cc397c1786d975653e36a6b11"
         "bdd7732d8b38adb4a0edc26a0cef4bb45217135456e58fbca1703cd6032cb134"
         "7ee720b87972d63fbf232587043ed2901bce7f22610c0419751c065922b48843"
         "1851041310ad659e4b23520e1772ab29dcdeb2002222a363f0c2b1c972b3efe1"},
    };
    for (size_t i = 0; i < sizeof k3 / sizeof k3[0]; i++) {
        uint8_t out[0x80];
        bg_err err = {0};
        ck_assert_int_eq(bg_oprf_expand_message_xmd(out, k3[i].len, (const uint8_t *)k3[i].msg,
                                                    strlen(k3[i].msg), (const uint8_t *)dst,
                                                    strlen(dst), &err),
                         BG_OK);
        assert_hex(out, k3[i].len, k3[i].uniform);
    }
}
END_TEST

START_TEST(expand_message_xmd_refuses_out_of_range_lengths)
{
    static uint8_t out[BG_OPRF_XMD_MAX + 1], dst[BG_OPRF_DST_MAX + 1];
    memset(dst, 'D', sizeof dst);
    bg_err err = {0};
    /* RFC 9380 bounds: ell <= 255 blocks, DST 1..255 bytes; an empty output is useless. */
    ck_assert_int_eq(bg_oprf_expand_message_xmd(out, 0, NULL, 0, dst, 8, &err), BG_EINVAL);
    ck_assert_int_eq(bg_oprf_expand_message_xmd(out, BG_OPRF_XMD_MAX + 1, NULL, 0, dst, 8, &err),
                     BG_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "output length"));
    ck_assert_int_eq(bg_oprf_expand_message_xmd(out, 32, NULL, 0, dst, 0, &err), BG_EINVAL);
    ck_assert_int_eq(bg_oprf_expand_message_xmd(out, 32, NULL, 0, dst, BG_OPRF_DST_MAX + 1, &err),
                     BG_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "DST length"));
    ck_assert_int_eq(
        bg_oprf_expand_message_xmd(out, BG_OPRF_XMD_MAX, NULL, 0, dst, BG_OPRF_DST_MAX, &err),
        BG_OK);
}
END_TEST

/* ---- hashing ---- */

START_TEST(hashes_use_their_rfc_domain_tags)
{
    /* HashToGroup / HashToScalar are expand_message_xmd(64 bytes) under their DSTs,
     * then from_hash / reduce. The tags include the contextString's NUL mode byte. */
    static const char h2g[] = "HashToGroup-OPRFV1-\x00-ristretto255-SHA512";
    static const char h2s[] = "HashToScalar-OPRFV1-\x00-ristretto255-SHA512";
    const uint8_t x[] = "914403001922038216";
    uint8_t u[64], expect[32], got[32];

    ck_assert_int_eq(bg_oprf_expand_message_xmd(u, 64, x, sizeof x - 1, (const uint8_t *)h2g,
                                                sizeof h2g - 1, NULL),
                     BG_OK);
    crypto_core_ristretto255_from_hash(expect, u);
    ck_assert_int_eq(bg_oprf_hash_to_group(got, x, sizeof x - 1, NULL), BG_OK);
    ck_assert_mem_eq(got, expect, 32);

    ck_assert_int_eq(bg_oprf_expand_message_xmd(u, 64, x, sizeof x - 1, (const uint8_t *)h2s,
                                                sizeof h2s - 1, NULL),
                     BG_OK);
    crypto_core_ristretto255_scalar_reduce(expect, u);
    ck_assert_int_eq(bg_oprf_hash_to_scalar(got, x, sizeof x - 1, NULL), BG_OK);
    ck_assert_mem_eq(got, expect, 32);
    ck_assert_int_eq(bg_oprf_scalar_check(got, 32, NULL), BG_OK);
}
END_TEST

START_TEST(inputs_longer_than_65535_bytes_are_refused)
{
    /* Finalize encodes len(input) in two bytes, so every entry point stops there. */
    uint8_t *big = calloc(BG_OPRF_INPUT_MAX + 1, 1);
    ck_assert_ptr_nonnull(big);
    uint8_t p[32], s[32], blind[32], blinded[32], out[64], sk[32];
    bg_err err = {0};
    ck_assert_int_eq(bg_oprf_hash_to_group(p, big, BG_OPRF_INPUT_MAX, &err), BG_OK);
    ck_assert_int_eq(bg_oprf_hash_to_group(p, big, BG_OPRF_INPUT_MAX + 1, &err), BG_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "input: longer than 65535"));
    ck_assert(sodium_is_zero(p, 32));
    ck_assert_int_eq(bg_oprf_hash_to_scalar(s, big, BG_OPRF_INPUT_MAX + 1, &err), BG_EINVAL);
    ck_assert_int_eq(bg_oprf_blind(blind, blinded, big, BG_OPRF_INPUT_MAX + 1, &err), BG_EINVAL);
    ck_assert(sodium_is_zero(blind, 32) && sodium_is_zero(blinded, 32));
    ck_assert_int_eq(bg_oprf_output(out, big, BG_OPRF_INPUT_MAX + 1, p, &err), BG_EINVAL);
    ck_assert_int_eq(bg_oprf_derive_key(sk, big, big, BG_OPRF_INPUT_MAX + 1, &err), BG_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "info"));
    free(big);
}
END_TEST

/* ---- keys and scalars ---- */

START_TEST(keys_are_canonical_nonzero_and_distinct)
{
    uint8_t a[32], b[32], seed[32] = {1};
    ck_assert_int_eq(bg_oprf_keygen(a, NULL), BG_OK);
    ck_assert_int_eq(bg_oprf_keygen(b, NULL), BG_OK);
    ck_assert_int_eq(bg_oprf_scalar_check(a, 32, NULL), BG_OK);
    ck_assert_int_eq(bg_oprf_scalar_check(b, 32, NULL), BG_OK);
    ck_assert(memcmp(a, b, 32) != 0);
    /* Derivation is deterministic and the info string separates keys. */
    ck_assert_int_eq(bg_oprf_derive_key(a, seed, (const uint8_t *)"list-1", 6, NULL), BG_OK);
    ck_assert_int_eq(bg_oprf_derive_key(b, seed, (const uint8_t *)"list-2", 6, NULL), BG_OK);
    ck_assert(memcmp(a, b, 32) != 0);
    ck_assert_int_eq(bg_oprf_derive_key(b, seed, (const uint8_t *)"list-1", 6, NULL), BG_OK);
    ck_assert_mem_eq(a, b, 32);
    ck_assert_int_eq(bg_oprf_derive_key(b, seed, NULL, 0, NULL), BG_OK);
    ck_assert_int_eq(bg_oprf_scalar_check(b, 32, NULL), BG_OK);
}
END_TEST

START_TEST(invert_gives_the_multiplicative_inverse)
{
    uint8_t s[32], inv[32], one[32] = {1}, prod[32];
    for (int i = 0; i < 10; i++) {
        random_scalar(s);
        ck_assert_int_eq(bg_oprf_scalar_invert(inv, s, NULL), BG_OK);
        crypto_core_ristretto255_scalar_mul(prod, s, inv);
        ck_assert_mem_eq(prod, one, 32);
        /* In place too. */
        memcpy(prod, s, 32);
        ck_assert_int_eq(bg_oprf_scalar_invert(prod, prod, NULL), BG_OK);
        ck_assert_mem_eq(prod, inv, 32);
    }
}
END_TEST

/* L, L+1, 2^255-1 (top bit clear, >= L) and 2^256-1, little-endian. */
static const char *const noncanonical_scalars[] = {
    "edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010",
    "eed3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010",
    "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
};

START_TEST(zero_and_noncanonical_scalars_are_refused)
{
    uint8_t zero[32] = {0}, bad[32], good[32], p[32], out[64], e[32];
    uint8_t *elems = malloc(32 * 100);
    ck_assert_ptr_nonnull(elems);
    bg_err err = {0};
    ck_assert_int_eq(bg_oprf_hash_to_group(p, (const uint8_t *)"x", 1, NULL), BG_OK);
    for (int i = 0; i < 100; i++)
        memcpy(elems + 32 * i, p, 32);

    /* A zero key would map every element to the identity, i.e. answer nothing. */
    ck_assert_int_eq(bg_oprf_scalar_check(zero, 32, &err), BG_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "zero scalar"));
    ck_assert_int_eq(bg_oprf_evaluate(e, zero, p, &err), BG_EINVAL);
    ck_assert_str_eq(err.msg, "key: zero scalar");
    ck_assert(sodium_is_zero(e, 32));
    ck_assert_int_eq(bg_oprf_evaluate_batch(elems, zero, elems, 100, 2, &err), BG_EINVAL);
    ck_assert_str_eq(err.msg, "key: zero scalar");
    ck_assert(sodium_is_zero(elems, 32 * 100));
    /* A zero blind would hide nothing and cannot be inverted. */
    ck_assert_int_eq(bg_oprf_blind_with(e, zero, (const uint8_t *)"x", 1, &err), BG_EINVAL);
    ck_assert_str_eq(err.msg, "blind: zero scalar");
    ck_assert_int_eq(bg_oprf_unblind(e, zero, p, &err), BG_EINVAL);
    ck_assert_str_eq(err.msg, "blind: zero scalar");
    ck_assert_int_eq(bg_oprf_finalize(out, (const uint8_t *)"x", 1, zero, p, &err), BG_EINVAL);
    ck_assert(sodium_is_zero(out, 64));
    ck_assert_int_eq(bg_oprf_scalar_invert(e, zero, &err), BG_EINVAL);

    /* Non-canonical scalars are refused, never reduced behind the caller's back. */
    for (size_t i = 0; i < sizeof noncanonical_scalars / sizeof noncanonical_scalars[0]; i++) {
        unhex(bad, 32, noncanonical_scalars[i]);
        ck_assert_int_eq(bg_oprf_scalar_check(bad, 32, &err), BG_EINVAL);
        ck_assert_ptr_nonnull(strstr(err.msg, "not a canonical scalar"));
        ck_assert_int_eq(bg_oprf_evaluate(e, bad, p, &err), BG_EINVAL);
        ck_assert_int_eq(bg_oprf_blind_with(e, bad, (const uint8_t *)"x", 1, &err), BG_EINVAL);
        ck_assert_int_eq(bg_oprf_unblind(e, bad, p, &err), BG_EINVAL);
    }
    /* L - 1 and 1 are the largest and smallest usable scalars. */
    unhex(good, 32, "ecd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010");
    ck_assert_int_eq(bg_oprf_scalar_check(good, 32, NULL), BG_OK);
    ck_assert_int_eq(bg_oprf_evaluate(e, good, p, NULL), BG_OK);
    memset(good, 0, 32);
    good[0] = 1;
    ck_assert_int_eq(bg_oprf_evaluate(e, good, p, NULL), BG_OK);
    ck_assert_mem_eq(e, p, 32);
    /* Wrong lengths. */
    ck_assert_int_eq(bg_oprf_scalar_check(good, 31, &err), BG_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.msg, "31 bytes"));
    ck_assert_int_eq(bg_oprf_scalar_check(NULL, 32, &err), BG_EINVAL);
    free(elems);
}
END_TEST

/* ---- hostile elements ---- */

/* Encodings an attacker may send instead of a blinded or evaluated element. */
static void
hostile_elements(uint8_t out[][32], size_t *n)
{
    size_t k = 0;
    memset(out[k++], 0, 32); /* the identity */
    /* p = 2^255 - 19 (s >= p, and odd), p + 1 (s >= p, even), 2^255 - 1 */
    unhex(out[k++], 32, "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f");
    unhex(out[k++], 32, "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f");
    unhex(out[k++], 32, "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f");
    /* The generator with bit 255 set: a decoder that masks the top bit (libsodium 1.0.18
     * does) would accept it as the generator. */
    uint8_t s[32] = {1};
    ck_assert_int_eq(crypto_scalarmult_ristretto255_base(out[k], s), 0);
    out[k++][31] |= 0x80;
    /* The identity with bit 255 set: libsodium 1.0.18 alone would take it as valid. */
    memset(out[k], 0, 32);
    out[k++][31] = 0x80;
    /* 01 00..00: canonical below p but "negative" (odd). */
    memset(out[k], 0, 32);
    out[k++][0] = 1;
    /* Random canonical, non-negative field elements that are not on the group. */
    for (int found = 0; found < 3;) {
        randombytes_buf(out[k], 32);
        out[k][31] &= 0x7f;
        out[k][0] &= 0xfe;
        if (crypto_core_ristretto255_is_valid_point(out[k]) == 0) {
            k++;
            found++;
        }
    }
    *n = k;
}

START_TEST(hostile_elements_are_refused_everywhere)
{
    uint8_t bad[16][32], sk[32], blind[32], e[32], out[64];
    size_t nbad;
    hostile_elements(bad, &nbad);
    random_scalar(sk);
    random_scalar(blind);
    for (size_t i = 0; i < nbad; i++) {
        bg_err err = {0};
        const char *why = i == 0 ? "the identity element" : "not a canonical ristretto255";
        ck_assert_int_eq(bg_oprf_element_check(bad[i], 32, &err), BG_EINVAL);
        ck_assert_msg(strstr(err.msg, why) != NULL, "case %zu: %s", i, err.msg);
        memset(e, 0xAA, 32);
        ck_assert_int_eq(bg_oprf_evaluate(e, sk, bad[i], &err), BG_EINVAL);
        ck_assert_msg(strstr(err.msg, why) != NULL, "case %zu: %s", i, err.msg);
        ck_assert(sodium_is_zero(e, 32));
        ck_assert_int_eq(bg_oprf_unblind(e, blind, bad[i], &err), BG_EINVAL);
        ck_assert_ptr_nonnull(strstr(err.msg, "evaluated element"));
        ck_assert_int_eq(bg_oprf_finalize(out, (const uint8_t *)"x", 1, blind, bad[i], &err),
                         BG_EINVAL);
        ck_assert(sodium_is_zero(out, 64));
    }
    /* Wrong lengths: a 31- or 33-byte element off the wire. */
    uint8_t p[33];
    ck_assert_int_eq(bg_oprf_hash_to_group(p, (const uint8_t *)"x", 1, NULL), BG_OK);
    ck_assert_int_eq(bg_oprf_element_check(p, 32, NULL), BG_OK);
    bg_err err = {0};
    ck_assert_int_eq(bg_oprf_element_check(p, 31, &err), BG_EINVAL);
    ck_assert_str_eq(err.msg, "31 bytes, expected 32");
    ck_assert_int_eq(bg_oprf_element_check(p, 33, &err), BG_EINVAL);
    ck_assert_int_eq(bg_oprf_element_check(NULL, 32, &err), BG_EINVAL);
}
END_TEST

START_TEST(a_batch_names_its_first_bad_element_and_returns_nothing)
{
    enum { N = 1000 };
    uint8_t *in = malloc(32 * N), *out = malloc(32 * N), *blinds = malloc(32 * N);
    uint8_t bad[16][32], sk[32];
    size_t nbad;
    ck_assert(in && out && blinds);
    hostile_elements(bad, &nbad);
    random_scalar(sk);
    ck_assert_int_eq(bg_oprf_hash_to_group(in, (const uint8_t *)"x", 1, NULL), BG_OK);
    for (size_t i = 1; i < N; i++)
        memcpy(in + 32 * i, in, 32);
    memcpy(in + 32 * 700, bad[0], 32);
    memcpy(in + 32 * 900, bad[1], 32);
    memcpy(in + 32 * 999, bad[2], 32);
    /* Same answer whatever the thread count: the lowest index, everything zeroed. */
    unsigned threads[] = {1, 2, 3, 8, 0};
    for (size_t t = 0; t < sizeof threads / sizeof threads[0]; t++) {
        bg_err err = {0};
        memset(out, 0xAA, 32 * N);
        ck_assert_int_eq(bg_oprf_evaluate_batch(out, sk, in, N, threads[t], &err), BG_EINVAL);
        ck_assert_str_eq(err.msg, "element 700: the identity element");
        ck_assert(sodium_is_zero(out, 32 * N));
    }
    /* Unblinding: a zero blind at 5 but a bad element at 3 comes first. */
    for (size_t i = 0; i < N; i++)
        random_scalar(blinds + 32 * i);
    memset(blinds + 32 * 5, 0, 32);
    memcpy(in + 32 * 3, bad[4], 32);
    for (size_t t = 0; t < sizeof threads / sizeof threads[0]; t++) {
        bg_err err = {0};
        memset(out, 0xAA, 32 * N);
        ck_assert_int_eq(bg_oprf_unblind_batch(out, blinds, in, N, threads[t], &err), BG_EINVAL);
        ck_assert_str_eq(
            err.msg,
            "evaluated element 3: not a canonical ristretto255 encoding of a group element");
        ck_assert(sodium_is_zero(out, 32 * N));
    }
    memcpy(in + 32 * 3, in, 32);
    ck_assert_int_eq(bg_oprf_unblind_batch(out, blinds, in, N, 2, NULL), BG_EINVAL);
    bg_err err = {0};
    ck_assert_int_eq(bg_oprf_unblind_batch(out, blinds, in, N, 2, &err), BG_EINVAL);
    ck_assert_str_eq(err.msg, "blind 5: zero scalar");
    /* An over-long input in a blinding batch. */
    static uint8_t big[BG_OPRF_INPUT_MAX + 1];
    const uint8_t *inputs[3] = {(const uint8_t *)"a", big, (const uint8_t *)"c"};
    size_t lens[3] = {1, sizeof big, 1};
    ck_assert_int_eq(bg_oprf_blind_batch(blinds, out, inputs, lens, 3, 2, &err), BG_EINVAL);
    ck_assert_str_eq(err.msg, "input 1: longer than 65535 bytes");
    ck_assert(sodium_is_zero(blinds, 96) && sodium_is_zero(out, 96));
    /* Arguments. */
    ck_assert_int_eq(bg_oprf_evaluate_batch(out, sk, NULL, 3, 1, &err), BG_EINVAL);
    ck_assert_int_eq(bg_oprf_evaluate_batch(out, sk, in, (size_t)-1 / 16, 1, &err), BG_ELIMIT);
    ck_assert_int_eq(bg_oprf_evaluate_batch(NULL, sk, NULL, 0, 1, &err), BG_OK);
    free(in);
    free(out);
    free(blinds);
}
END_TEST

/* ---- the protocol's identities ---- */

START_TEST(unblinding_an_evaluated_blind_gives_the_key_times_the_hash)
{
    uint8_t sk[32];
    ck_assert_int_eq(bg_oprf_keygen(sk, NULL), BG_OK);
    for (int i = 0; i < 25; i++) {
        uint8_t x[100], blind[32], blinded[32], evaluated[32], n[32], p[32], kp[32];
        uint8_t out_client[64], out_server[64];
        size_t len = randombytes_uniform(sizeof x + 1); /* 0..100 bytes, empty included */
        randombytes_buf(x, len);
        bg_err err = {0};
        ck_assert_int_eq(bg_oprf_blind(blind, blinded, x, len, &err), BG_OK);
        ck_assert_int_eq(bg_oprf_scalar_check(blind, 32, NULL), BG_OK);
        ck_assert_int_eq(bg_oprf_evaluate(evaluated, sk, blinded, &err), BG_OK);
        ck_assert_int_eq(bg_oprf_unblind(n, blind, evaluated, &err), BG_OK);
        ck_assert_int_eq(bg_oprf_hash_to_group(p, x, len, &err), BG_OK);
        ck_assert_int_eq(bg_oprf_evaluate(kp, sk, p, &err), BG_OK);
        ck_assert_mem_eq(n, kp, 32);
        /* The client's Finalize equals the server's direct Evaluate(k, x). */
        ck_assert_int_eq(bg_oprf_finalize(out_client, x, len, blind, evaluated, &err), BG_OK);
        ck_assert_int_eq(bg_oprf_output(out_server, x, len, kp, &err), BG_OK);
        ck_assert_mem_eq(out_client, out_server, 64);
        /* The blind hides x: a fresh blind gives a different blinded element. */
        uint8_t blind2[32], blinded2[32];
        ck_assert_int_eq(bg_oprf_blind(blind2, blinded2, x, len, &err), BG_OK);
        ck_assert(memcmp(blinded, blinded2, 32) != 0);
    }
}
END_TEST

START_TEST(one_shared_blind_unblinds_with_its_inverse_as_key)
{
    /* Count-only answers use one blind r for the batch: N_i = evaluate(r^-1, E_i). */
    enum { N = 70 };
    uint8_t sk[32], r[32], rinv[32], b[N * 32], e[N * 32], nn[N * 32], kp[32];
    char x[N][8];
    random_scalar(sk);
    random_scalar(r);
    for (int i = 0; i < N; i++) {
        snprintf(x[i], sizeof x[i], "e%d", i);
        ck_assert_int_eq(bg_oprf_blind_with(b + 32 * i, r, (uint8_t *)x[i], strlen(x[i]), NULL),
                         BG_OK);
    }
    ck_assert_int_eq(bg_oprf_evaluate_batch(e, sk, b, N, 2, NULL), BG_OK);
    ck_assert_int_eq(bg_oprf_scalar_invert(rinv, r, NULL), BG_OK);
    ck_assert_int_eq(bg_oprf_evaluate_batch(nn, rinv, e, N, 2, NULL), BG_OK);
    for (int i = 0; i < N; i++) {
        uint8_t p[32];
        ck_assert_int_eq(bg_oprf_hash_to_group(p, (uint8_t *)x[i], strlen(x[i]), NULL), BG_OK);
        ck_assert_int_eq(bg_oprf_evaluate(kp, sk, p, NULL), BG_OK);
        ck_assert_mem_eq(nn + 32 * i, kp, 32);
    }
}
END_TEST

/* ---- batches equal single calls; threads change nothing ---- */

START_TEST(batch_results_equal_single_results)
{
    static const size_t sizes[] = {1, 63, 64, 65, 130};
    uint8_t sk[32];
    random_scalar(sk);
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t n = sizes[s];
        uint8_t *in = malloc(32 * n), *ev = malloc(32 * n), *bl = malloc(32 * n),
                *un = malloc(32 * n), one[32];
        ck_assert(in && ev && bl && un);
        for (size_t i = 0; i < n; i++) {
            crypto_core_ristretto255_random(in + 32 * i);
            random_scalar(bl + 32 * i);
        }
        ck_assert_int_eq(bg_oprf_evaluate_batch(ev, sk, in, n, 1, NULL), BG_OK);
        ck_assert_int_eq(bg_oprf_unblind_batch(un, bl, in, n, 1, NULL), BG_OK);
        for (size_t i = 0; i < n; i++) {
            ck_assert_int_eq(bg_oprf_evaluate(one, sk, in + 32 * i, NULL), BG_OK);
            ck_assert_mem_eq(ev + 32 * i, one, 32);
            ck_assert_int_eq(bg_oprf_unblind(one, bl + 32 * i, in + 32 * i, NULL), BG_OK);
            ck_assert_mem_eq(un + 32 * i, one, 32);
        }
        /* In place: the output may be the input array. */
        ck_assert_int_eq(bg_oprf_evaluate_batch(in, sk, in, n, 2, NULL), BG_OK);
        ck_assert_mem_eq(in, ev, 32 * n);
        free(in);
        free(ev);
        free(bl);
        free(un);
    }
}
END_TEST

START_TEST(parallel_batches_equal_serial_for_1000_items)
{
    enum { N = 1000 };
    uint8_t *data = malloc(N * 18), *h = malloc(32 * N), *ev_ref = malloc(32 * N),
            *un_ref = malloc(32 * N), *blinds = malloc(32 * N), *out = malloc(32 * N),
            *out2 = malloc(32 * N), *rnd = malloc(32 * N);
    const uint8_t **inputs = malloc(N * sizeof *inputs);
    size_t *lens = malloc(N * sizeof *lens);
    uint8_t sk[32];
    ck_assert(data && h && ev_ref && un_ref && blinds && out && out2 && rnd && inputs && lens);
    random_scalar(sk);
    /* Serial references from the single-item functions. */
    for (size_t i = 0; i < N; i++) {
        randombytes_buf(data + 18 * i, 18);
        inputs[i] = data + 18 * i;
        lens[i] = i % 19; /* 0..18 bytes */
        random_scalar(rnd + 32 * i);
        ck_assert_int_eq(bg_oprf_hash_to_group(h + 32 * i, inputs[i], lens[i], NULL), BG_OK);
        ck_assert_int_eq(bg_oprf_evaluate(ev_ref + 32 * i, sk, h + 32 * i, NULL), BG_OK);
        ck_assert_int_eq(bg_oprf_unblind(un_ref + 32 * i, rnd + 32 * i, h + 32 * i, NULL), BG_OK);
    }
    unsigned threads[] = {1, 2, 3, 8, 0};
    for (size_t t = 0; t < sizeof threads / sizeof threads[0]; t++) {
        unsigned nt = threads[t];
        bg_err err = {0};
        ck_assert_int_eq(bg_oprf_hash_to_group_batch(out, inputs, lens, N, nt, &err), BG_OK);
        ck_assert_mem_eq(out, h, 32 * N);
        ck_assert_int_eq(bg_oprf_evaluate_batch(out, sk, h, N, nt, &err), BG_OK);
        ck_assert_mem_eq(out, ev_ref, 32 * N);
        ck_assert_int_eq(bg_oprf_unblind_batch(out, rnd, h, N, nt, &err), BG_OK);
        ck_assert_mem_eq(out, un_ref, 32 * N);
        /* Random blinds: unblinding the blinded elements gives back H(x). */
        ck_assert_int_eq(bg_oprf_blind_batch(blinds, out, inputs, lens, N, nt, &err), BG_OK);
        ck_assert_int_eq(bg_oprf_unblind_batch(out2, blinds, out, N, nt, &err), BG_OK);
        ck_assert_mem_eq(out2, h, 32 * N);
        for (size_t i = 0; i < N; i++)
            ck_assert_int_eq(bg_oprf_scalar_check(blinds + 32 * i, 32, NULL), BG_OK);
        ck_assert(memcmp(blinds, blinds + 32, 32) != 0);
    }
    free(data);
    free(h);
    free(ev_ref);
    free(un_ref);
    free(blinds);
    free(out);
    free(out2);
    free(rnd);
    free(inputs);
    free(lens);
}
END_TEST

START_TEST(default_thread_count_is_the_online_cpus)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned t = bg_oprf_threads_default();
    ck_assert_uint_ge(t, 1);
    ck_assert_uint_le(t, BG_OPRF_THREADS_MAX);
    if (cpus >= 1 && cpus <= (long)BG_OPRF_THREADS_MAX)
        ck_assert_uint_eq(t, (unsigned)cpus);
    ck_assert_int_eq(bg_oprf_init(NULL), BG_OK);
    ck_assert_int_eq(bg_oprf_init(NULL), BG_OK); /* idempotent */
}
END_TEST

/* ---- the CLI aid ---- */

/* Runs baygate with args, stdout and stderr together into out; returns the exit status. */
static int
run_baygate(const char *args, char *out, size_t cap)
{
    char cmd[1024];
    int n = snprintf(cmd, sizeof cmd, "'%s' %s 2>&1", BG_BAYGATE, args);
    ck_assert(n > 0 && (size_t)n < sizeof cmd);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t len = fread(out, 1, cap - 1, p);
    out[len] = '\0';
    int st = pclose(p);
    ck_assert(WIFEXITED(st));
    return WEXITSTATUS(st);
}

START_TEST(cli_prints_the_rfc_vector_lines)
{
    if (access(BG_BAYGATE, X_OK) != 0) {
        fprintf(stderr, "test_oprf: %s not built; CLI test skipped\n", BG_BAYGATE);
        return;
    }
    char out[4096], args[512], expect[512];
    for (size_t v = 0; v < NRFC; v++) {
        snprintf(args, sizeof args, "oprf --key %s --blind %s --input %s", rfc_skSm,
                 rfc_vectors[v].blind, rfc_vectors[v].input);
        snprintf(expect, sizeof expect, "BlindedElement %s\nEvaluationElement %s\nOutput %s\n",
                 rfc_vectors[v].blinded, rfc_vectors[v].evaluated, rfc_vectors[v].output);
        ck_assert_int_eq(run_baygate(args, out, sizeof out), 0);
        ck_assert_str_eq(out, expect);
    }
    /* Upper-case hex is read too; the empty input is an input. */
    snprintf(args, sizeof args,
             "oprf --key 5EBCEA5EE37023CCB9FC2D2019F9D7737BE85591AE8652FFA9EF0F4D37063B0E "
             "--blind %s --input ''",
             rfc_vectors[0].blind);
    ck_assert_int_eq(run_baygate(args, out, sizeof out), 0);
    ck_assert_ptr_nonnull(strstr(out, "BlindedElement "));
    ck_assert_ptr_nonnull(strstr(out, "\nOutput "));
}
END_TEST

START_TEST(cli_names_the_bad_option_and_exits_2)
{
    if (access(BG_BAYGATE, X_OK) != 0) {
        fprintf(stderr, "test_oprf: %s not built; CLI test skipped\n", BG_BAYGATE);
        return;
    }
    const char *b = rfc_vectors[0].blind;
    static const char *const zero64 =
        "0000000000000000000000000000000000000000000000000000000000000000";
    struct {
        const char *key, *blind, *input, *expect;
    } cases[] = {
        {"zz", b, "00", "--key: character 1 is not a hex digit"},
        {rfc_skSm, "64d37aed", "00", "--blind: 4 bytes, a scalar is 32"},
        {rfc_skSm, b, "0", "--input: odd number of hex digits"},
        {zero64, b, "00", "--key: zero scalar"},
        {rfc_skSm, noncanonical_scalars[0], "00", "--blind: not a canonical scalar"},
        {rfc_skSm, "64d37aed22a27f5191de1c1d69fadb899d8862b58eb4220029e036ec4c1f670600", "00",
         "--blind: 33 bytes, at most 32 allowed"},
    };
    char out[4096], args[512];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(args, sizeof args, "oprf --key %s --blind %s --input %s", cases[i].key,
                 cases[i].blind, cases[i].input);
        ck_assert_int_eq(run_baygate(args, out, sizeof out), 2);
        ck_assert_msg(strstr(out, cases[i].expect) != NULL, "case %zu: %s", i, out);
        ck_assert_ptr_null(strstr(out, "Output"));
    }
    snprintf(args, sizeof args, "oprf --key %s --blind %s", rfc_skSm, b);
    ck_assert_int_eq(run_baygate(args, out, sizeof out), 2);
    ck_assert_ptr_nonnull(strstr(out, "--input is required"));
    ck_assert_int_eq(run_baygate("oprf --key", out, sizeof out), 2);
    ck_assert_ptr_nonnull(strstr(out, "--key needs a value"));
    ck_assert_int_eq(run_baygate("oprf --help", out, sizeof out), 0);
    ck_assert_ptr_nonnull(strstr(out, "usage: baygate oprf --key HEX --blind HEX --input HEX"));
    ck_assert_int_eq(run_baygate("help", out, sizeof out), 0);
    ck_assert_ptr_nonnull(strstr(out, "oprf"));
}
END_TEST

static Suite *
oprf_suite(void)
{
    Suite *s = suite_create("oprf");
    TCase *rfc = tcase_create("rfc");
    tcase_add_test(rfc, derive_key_reproduces_rfc_skSm);
    tcase_add_test(rfc, blind_evaluate_finalize_reproduce_rfc_vectors);
    tcase_add_test(rfc, batch_evaluation_reproduces_rfc_vectors);
    tcase_add_test(rfc, expand_message_xmd_reproduces_rfc9380_vectors);
    tcase_add_test(rfc, expand_message_xmd_refuses_out_of_range_lengths);
    tcase_add_test(rfc, hashes_use_their_rfc_domain_tags);
    tcase_add_test(rfc, inputs_longer_than_65535_bytes_are_refused);
    suite_add_tcase(s, rfc);

    TCase *safety = tcase_create("safety");
    tcase_add_test(safety, keys_are_canonical_nonzero_and_distinct);
    tcase_add_test(safety, invert_gives_the_multiplicative_inverse);
    tcase_add_test(safety, zero_and_noncanonical_scalars_are_refused);
    tcase_add_test(safety, hostile_elements_are_refused_everywhere);
    tcase_add_test(safety, a_batch_names_its_first_bad_element_and_returns_nothing);
    tcase_set_timeout(safety, 120);
    suite_add_tcase(s, safety);

    TCase *proto = tcase_create("protocol");
    tcase_add_test(proto, unblinding_an_evaluated_blind_gives_the_key_times_the_hash);
    tcase_add_test(proto, one_shared_blind_unblinds_with_its_inverse_as_key);
    tcase_add_test(proto, batch_results_equal_single_results);
    tcase_add_test(proto, parallel_batches_equal_serial_for_1000_items);
    tcase_add_test(proto, default_thread_count_is_the_online_cpus);
    tcase_set_timeout(proto, 240);
    suite_add_tcase(s, proto);

    TCase *cli = tcase_create("cli");
    tcase_add_test(cli, cli_prints_the_rfc_vector_lines);
    tcase_add_test(cli, cli_names_the_bad_option_and_exits_2);
    tcase_set_timeout(cli, 120);
    suite_add_tcase(s, cli);
    return s;
}

int
main(void)
{
    /* Initialised before Check forks, so every test (and the helpers' direct libsodium
     * calls) starts from an initialised library. */
    if (bg_oprf_init(NULL) != BG_OK)
        return EXIT_FAILURE;
    SRunner *sr = srunner_create(oprf_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
