/*
 * fuzz_psi.c - the PSI steps on hostile bytes (mpc/psi.h), on both sides.
 *
 * First byte, low two bits:
 *   0 answerer: the rest is a PsiQuery's elements, evaluated as the answering
 *     gateway evaluates them (membership/graded, then count mode with its shuffle)
 *   1..3 asker in mode 1 membership, 2 graded, 3 count: a query over eight
 *     inputs (six of them on the list) is prepared, the blinded elements are
 *     evaluated honestly, then the rest of the input edits that answer (u8
 *     offset into the answer, u8 xor, repeated) before bg_psi_finish takes it
 *     against the list's snapshot, as the asking gateway finishes a PsiAnswer.
 * Invariant: an unedited answer gives exactly the list's members (and, graded,
 * their payloads; count, their number).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "fuzz/fuzz.h"
#include "mpc/oprf.h"
#include "mpc/psi.h"
#include "mpc/snapshot.h"

#define NIN 8
#define ON_LIST 6

static const char *const inputs[NIN] = {
    "91440300MA5ABCDE1X", "91440300MA5FGHJK2Y", "91440300MA5LMNPQ3W", "91440300MA5RTUWX4T",
    "91440300MA5YABCD5R", "91440300MA5EFGHJ6P", "91440300MA5KLMNP7N", "91440300MA5QRTUW8M",
};
static uint8_t sk[BG_OPRF_SCALARBYTES];
static bg_snap *plain, *graded;

static int
build(bg_snap **out, int is_graded)
{
    bg_snap_entry e[ON_LIST];
    bg_snap_payload pl[ON_LIST];
    for (size_t i = 0; i < ON_LIST; i++) {
        memset(&pl[i], 0, sizeof pl[i]);
        snprintf(pl[i].grade, sizeof pl[i].grade, "%c", (char)('A' + (int)(i % 4)));
        snprintf(pl[i].scale, sizeof pl[i].scale, "ABCD");
        pl[i].evaluated_at = 19000;
        pl[i].valid_until = 21000;
        pl[i].listed_at = pl[i].expires_at = BG_SNAP_NO_DATE;
        pl[i].serial = 100 + i;
        e[i] = (bg_snap_entry){(const uint8_t *)inputs[i], strlen(inputs[i]), &pl[i]};
    }
    bg_err err = {0};
    return bg_snap_build(out, sk, is_graded ? "grades" : "serious-dishonesty", 1, 1, is_graded, e,
                         ON_LIST, 1, &err);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    bg_err err = {0};
    uint8_t seed[BG_OPRF_SEEDBYTES] = {9, 8, 7};
    bg_fuzz_assert(bg_oprf_init(&err) == BG_OK);
    bg_fuzz_assert(bg_oprf_derive_key(sk, seed, (const uint8_t *)"psi", 3, &err) == BG_OK);
    bg_fuzz_assert(build(&plain, 0) == BG_OK && build(&graded, 1) == BG_OK);
    return 0;
}

static void
answerer(const uint8_t *p, size_t n)
{
    uint8_t *ev = malloc(n ? n : 1);
    bg_fuzz_assert(ev != NULL);
    bg_err err = {0};
    (void)bg_psi_evaluate(ev, sk, p, n, 1024, 1, &err);
    (void)bg_psi_evaluate_count(ev, sk, p, n, 2, 1024, 1, &err);
    free(ev);
}

static void
asker(int mode, bg_fuzz_in *in)
{
    const uint8_t *in_p[NIN];
    size_t in_len[NIN];
    for (size_t i = 0; i < NIN; i++) {
        in_p[i] = (const uint8_t *)inputs[i];
        in_len[i] = strlen(inputs[i]);
    }
    bg_psi_query *q = NULL;
    bg_err err = {0};
    bg_fuzz_assert(bg_psi_query_new(&q, mode, in_p, in_len, NIN, &err) == BG_OK);
    size_t items = bg_psi_query_items(q);
    uint8_t blinded[NIN * 32], ev[NIN * 32];
    bg_fuzz_assert(items == NIN);
    bg_fuzz_assert(bg_psi_prepare(q, 0, items, blinded, 1, &err) == BG_OK);
    if (mode == BG_PSI_COUNT)
        bg_fuzz_assert(bg_psi_evaluate_count(ev, sk, blinded, sizeof blinded, 1, NIN, 1, &err) ==
                       BG_OK);
    else
        bg_fuzz_assert(bg_psi_evaluate(ev, sk, blinded, sizeof blinded, NIN, 1, &err) == BG_OK);
    bool edited = false;
    while (in->left >= 2) {
        uint8_t at = bg_fuzz_u8(in), x = bg_fuzz_u8(in);
        ev[at % sizeof ev] ^= x;
        edited |= x != 0;
    }
    const bg_snap *s = mode == BG_PSI_GRADED ? graded : plain;
    if (bg_psi_finish(q, s, 0, items, ev, sizeof ev, 1, &err) == BG_OK) {
        bg_fuzz_assert(bg_psi_query_done(q));
        if (mode == BG_PSI_COUNT) {
            size_t matches = 0;
            bg_fuzz_assert(bg_psi_count(q, &matches, &err) == BG_OK);
            bg_fuzz_assert(edited || matches == ON_LIST);
        } else {
            for (size_t i = 0; i < NIN; i++) {
                int matched = 0;
                bg_snap_record rec;
                bg_fuzz_assert(bg_psi_result(q, i, &matched, &rec, &err) == BG_OK);
                bg_fuzz_assert(edited || matched == (i < ON_LIST));
                if (mode == BG_PSI_GRADED && matched) {
                    bg_fuzz_assert(rec.input_len == in_len[i] &&
                                   memcmp(rec.input, in_p[i], in_len[i]) == 0);
                    size_t index = 0;
                    uint8_t key[BG_SNAP_OPENKEYBYTES];
                    bg_fuzz_assert(bg_psi_result_entry(q, i, &index, key, &err) == BG_OK);
                }
            }
            (void)bg_psi_unopened(q);
        }
    }
    bg_psi_query_free(q);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int mode = data[0] & 3;
    bg_fuzz_in in = {data + 1, size - 1};
    if (mode == 0)
        answerer(in.p, in.left);
    else
        asker(mode, &in);
    return 0;
}
