/*
 * test_fetch.c - the asking side's table of snapshot fetches in flight
 * (gateway/daemon/fetch.h): what a fetch announced and how far it got is what status
 * lists, oldest first; the table is bounded, a fetch beyond it runs unshown, and a slot
 * freed is taken again; readers and writers on other threads see whole entries.
 */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gateway/daemon/fetch.h"

static gw_fetch
fetch_of(const char *city, const char *list, uint32_t chunks, uint64_t bytes)
{
    gw_fetch f = {.generation = 1, .epoch = 7, .delta = false, .chunks = chunks, .bytes = bytes};
    snprintf(f.city, sizeof f.city, "%.*s", (int)sizeof f.city - 1, city);
    snprintf(f.list, sizeof f.list, "%s", list);
    return f;
}

START_TEST(progress_shown_then_gone)
{
    gw_fetches t;
    gw_fetches_init(&t);
    gw_fetch f = fetch_of("440300", "grades", 3, 150000);
    int slot = gw_fetch_begin(&t, &f);
    ck_assert_int_ge(slot, 0);
    gw_fetch_progress(&t, slot, 65000);
    gw_fetch_progress(&t, slot, 65000);
    gw_fetch out[4];
    ck_assert_uint_eq(gw_fetch_list(&t, out, 4), 1);
    ck_assert_str_eq(out[0].city, "440300");
    ck_assert_str_eq(out[0].list, "grades");
    ck_assert_uint_eq(out[0].epoch, 7);
    ck_assert_uint_eq(out[0].chunks, 3);
    ck_assert_uint_eq(out[0].chunks_received, 2);
    ck_assert_uint_eq(out[0].bytes, 150000);
    ck_assert_uint_eq(out[0].bytes_received, 130000);
    ck_assert_int_gt(out[0].started_ms, 0);
    gw_fetch_end(&t, slot);
    ck_assert_uint_eq(gw_fetch_list(&t, out, 4), 0);
    /* Progress on an ended slot, or on none (-1), changes nothing. */
    gw_fetch_progress(&t, slot, 1);
    gw_fetch_progress(&t, -1, 1);
    gw_fetch_end(&t, -1);
    gw_fetch_end(&t, GW_FETCH_MAX);
    ck_assert_uint_eq(gw_fetch_list(&t, out, 4), 0);
    gw_fetches_destroy(&t);
}
END_TEST

START_TEST(bounded_and_oldest_first)
{
    gw_fetches t;
    gw_fetches_init(&t);
    int slots[GW_FETCH_MAX];
    for (int i = 0; i < GW_FETCH_MAX; i++) {
        char city[8];
        snprintf(city, sizeof city, "%06d", 440000 + i);
        gw_fetch f = fetch_of(city, "serious-dishonesty", 1, (uint64_t)i);
        ck_assert_int_ge(slots[i] = gw_fetch_begin(&t, &f), 0);
        if (i == 0 || i == GW_FETCH_MAX / 2)
            usleep(2000); /* so that the first ones are strictly older */
    }
    gw_fetch extra = fetch_of("440999", "grades", 1, 1);
    ck_assert_int_eq(gw_fetch_begin(&t, &extra), -1);
    gw_fetch *out = calloc(GW_FETCH_MAX, sizeof *out);
    ck_assert_ptr_nonnull(out);
    ck_assert_uint_eq(gw_fetch_list(&t, out, GW_FETCH_MAX), GW_FETCH_MAX);
    ck_assert_str_eq(out[0].city, "440000");
    for (size_t i = 1; i < GW_FETCH_MAX; i++)
        ck_assert_int_le(out[i - 1].started_ms, out[i].started_ms);
    /* A short buffer gets what fits, never more. */
    ck_assert_uint_eq(gw_fetch_list(&t, out, 3), 3);
    gw_fetch_end(&t, slots[5]);
    usleep(2000); /* strictly the newest */
    ck_assert_int_eq(gw_fetch_begin(&t, &extra), slots[5]);
    ck_assert_uint_eq(gw_fetch_list(&t, out, GW_FETCH_MAX), GW_FETCH_MAX);
    ck_assert_str_eq(out[GW_FETCH_MAX - 1].city, "440999");
    free(out);
    gw_fetches_destroy(&t);
}
END_TEST

/* A writer feeding chunks while a reader lists: every entry read is consistent (bytes
 * received = 100 per chunk received), and the count only grows. */
typedef struct race {
    gw_fetches *t;
    int slot;
    int chunks;
} race;

static void *
writer(void *arg)
{
    race *r = arg;
    for (int i = 0; i < r->chunks; i++)
        gw_fetch_progress(r->t, r->slot, 100);
    return NULL;
}

START_TEST(read_while_written)
{
    gw_fetches t;
    gw_fetches_init(&t);
    gw_fetch f = fetch_of("440600", "abnormal-operation", 200000, 20000000);
    race r = {.t = &t, .slot = gw_fetch_begin(&t, &f), .chunks = 200000};
    ck_assert_int_ge(r.slot, 0);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, writer, &r), 0);
    uint32_t last = 0;
    for (int i = 0; i < 2000; i++) {
        gw_fetch out[1];
        ck_assert_uint_eq(gw_fetch_list(&t, out, 1), 1);
        ck_assert_uint_eq(out[0].bytes_received, (uint64_t)out[0].chunks_received * 100);
        ck_assert_uint_ge(out[0].chunks_received, last);
        last = out[0].chunks_received;
    }
    pthread_join(th, NULL);
    gw_fetch out[1];
    ck_assert_uint_eq(gw_fetch_list(&t, out, 1), 1);
    ck_assert_uint_eq(out[0].chunks_received, 200000);
    gw_fetches_destroy(&t);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("fetch");
    TCase *tc = tcase_create("table");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, progress_shown_then_gone);
    tcase_add_test(tc, bounded_and_oldest_first);
    tcase_add_test(tc, read_while_written);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
