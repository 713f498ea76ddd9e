/*
 * fuzz.h - what every harness in fuzz/ shares.
 *
 * A harness is one file defining LLVMFuzzerTestOneInput (and, when it needs a
 * set-up made once, LLVMFuzzerInitialize). The same file links either with
 * libFuzzer (clang, -fsanitize=fuzzer: the fuzz_<name> targets) or with
 * replay.c, a plain main() that runs every file of the directories it is
 * given through the harness (the fuzz_replay_<name> targets, built by every
 * compiler and replayed by ctest). A harness may also define
 * bg_fuzz_make_seeds, which writes seeds made with the project's own code
 * (real signatures, real snapshots) into a directory: fuzz/make_corpus.sh
 * calls it through the replay driver's --make-seeds option.
 *
 * A harness aborts (bg_fuzz_assert) only on a broken invariant, never on
 * refused input: refusing hostile bytes is the code's job, crashing is not.
 */
#ifndef BG_FUZZ_H
#define BG_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Optional in a harness (weak): the set-up made once per process. */
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));
/* Optional in a harness (weak): writes seeds into dir; 0 on success. */
int bg_fuzz_make_seeds(const char *dir) __attribute__((weak));

/* Aborts with file, line and the failed condition: a harness found a bug. */
#define bg_fuzz_assert(cond)                                                                       \
    do {                                                                                           \
        if (!(cond))                                                                               \
            bg_fuzz_fail(__FILE__, __LINE__, #cond);                                               \
    } while (0)
_Noreturn void bg_fuzz_fail(const char *file, int line, const char *what);

/* True when BG_FUZZ_SKIP_KNOWN=1: harnesses then let pass the known bugs
 * whose reproducers wait in fuzz/pending/ (see its README), so that a timed
 * run explores past them instead of stopping at the first. Replays never set
 * it. */
bool bg_fuzz_skip_known(void);

/* A private scratch directory for this process, made on first use and removed
 * (with everything in it) at exit. Aborts if it cannot be made. */
const char *bg_fuzz_scratch(void);

/* scratch/name into out (cap bytes); aborts if it does not fit. */
void bg_fuzz_path(char *out, size_t cap, const char *name);

/* Replaces the file at path with data[0..len), mode 0600; 0 on success. */
int bg_fuzz_write_file(const char *path, const void *data, size_t len);

/* Writes a seed file dir/name; 0 on success (prints why not). */
int bg_fuzz_write_seed(const char *dir, const char *name, const void *data, size_t len);

/* The same with a one-byte mode prefix (harnesses whose first byte picks what
 * to decode). */
int bg_fuzz_write_seed_mode(const char *dir, const char *name, uint8_t mode, const void *data,
                            size_t len);

/* A tiny reader over the input, for harnesses that take structured bytes: an
 * exhausted input yields zeros and empty spans, never an out-of-bounds read. */
typedef struct bg_fuzz_in {
    const uint8_t *p;
    size_t left;
} bg_fuzz_in;

uint8_t bg_fuzz_u8(bg_fuzz_in *in);
uint16_t bg_fuzz_u16(bg_fuzz_in *in);
uint32_t bg_fuzz_u32(bg_fuzz_in *in);
uint64_t bg_fuzz_u64(bg_fuzz_in *in);
/* Up to n bytes (fewer at the end); *got gets how many. */
const uint8_t *bg_fuzz_bytes(bg_fuzz_in *in, size_t n, size_t *got);

#endif
