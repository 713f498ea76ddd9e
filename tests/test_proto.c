/*
 * test_proto.c - the generated wire messages pack, unpack and refuse garbage.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "proto/envelope.pb-c.h"

static uint8_t *
pack_sample(size_t *len)
{
    Baygate__Envelope env = BAYGATE__ENVELOPE__INIT;
    static uint8_t rid[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    env.version = 1;
    env.sender = "440100";
    env.recipient = "440300";
    env.request_id.data = rid;
    env.request_id.len = sizeof rid;
    env.issued_at_ms = 1798761600000;
    env.purpose = "supervision";
    env.body_type = 7;
    env.body.data = (uint8_t *)"payload";
    env.body.len = 7;
    *len = baygate__envelope__get_packed_size(&env);
    uint8_t *buf = malloc(*len);
    ck_assert_ptr_nonnull(buf);
    ck_assert_uint_eq(baygate__envelope__pack(&env, buf), *len);
    return buf;
}

START_TEST(envelope_round_trips)
{
    size_t len;
    uint8_t *buf = pack_sample(&len);
    Baygate__Envelope *back = baygate__envelope__unpack(NULL, len, buf);
    ck_assert_ptr_nonnull(back);
    ck_assert_str_eq(back->sender, "440100");
    ck_assert_str_eq(back->recipient, "440300");
    ck_assert_str_eq(back->purpose, "supervision");
    ck_assert_int_eq(back->issued_at_ms, 1798761600000);
    ck_assert_uint_eq(back->request_id.len, 16);
    ck_assert_uint_eq(back->body.len, 7);
    ck_assert_int_eq(memcmp(back->body.data, "payload", 7), 0);
    baygate__envelope__free_unpacked(back, NULL);
    free(buf);
}
END_TEST

START_TEST(truncated_envelope_is_refused)
{
    size_t len;
    uint8_t *buf = pack_sample(&len);
    size_t refused = 0;
    /* Cutting inside a length-delimited field must fail; at a field boundary it may not. */
    for (size_t cut = 1; cut < len; cut++) {
        Baygate__Envelope *e = baygate__envelope__unpack(NULL, cut, buf);
        if (e == NULL)
            refused++;
        else
            baygate__envelope__free_unpacked(e, NULL);
    }
    ck_assert_uint_gt(refused, len / 2);
    free(buf);
}
END_TEST

START_TEST(oversized_length_prefix_is_refused)
{
    /* Field 10 (body), wire type 2, claiming 2^31 bytes with 3 present. */
    const uint8_t hostile[] = {0x52, 0x80, 0x80, 0x80, 0x80, 0x08, 'a', 'b', 'c'};
    ck_assert_ptr_null(baygate__envelope__unpack(NULL, sizeof hostile, hostile));
}
END_TEST

START_TEST(signed_envelope_keeps_signer_choice)
{
    Baygate__SignedEnvelope se;
    baygate__signed_envelope__init(&se); /* the INIT macro trips -Wmissing-braces */
    uint8_t fp[32];
    memset(fp, 0xAB, sizeof fp);
    se.signer_case = BAYGATE__SIGNED_ENVELOPE__SIGNER_CERTIFICATE_SHA256;
    se.certificate_sha256.data = fp;
    se.certificate_sha256.len = sizeof fp;
    size_t len = baygate__signed_envelope__get_packed_size(&se);
    uint8_t buf[64];
    ck_assert_uint_le(len, sizeof buf);
    baygate__signed_envelope__pack(&se, buf);
    Baygate__SignedEnvelope *back = baygate__signed_envelope__unpack(NULL, len, buf);
    ck_assert_ptr_nonnull(back);
    ck_assert_int_eq(back->signer_case, BAYGATE__SIGNED_ENVELOPE__SIGNER_CERTIFICATE_SHA256);
    ck_assert_uint_eq(back->certificate_sha256.len, 32);
    baygate__signed_envelope__free_unpacked(back, NULL);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("proto");
    TCase *tc = tcase_create("envelope");
    tcase_add_test(tc, envelope_round_trips);
    tcase_add_test(tc, truncated_envelope_is_refused);
    tcase_add_test(tc, oversized_length_prefix_is_refused);
    tcase_add_test(tc, signed_envelope_keeps_signer_choice);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
