/* fuzz_util.c - scratch directory, files and input reading for the harnesses. */
#define _GNU_SOURCE /* nftw's FTW_DEPTH/FTW_PHYS */
#include "fuzz/fuzz.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char scratch[PATH_MAX];

void
bg_fuzz_fail(const char *file, int line, const char *what)
{
    fprintf(stderr, "%s:%d: harness invariant failed: %s\n", file, line, what);
    abort();
}

bool
bg_fuzz_skip_known(void)
{
    const char *v = getenv("BG_FUZZ_SKIP_KNOWN");
    return v != NULL && strcmp(v, "1") == 0;
}

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

/* At exit: leave nothing behind in the temp directory. */
static void
scratch_remove(void)
{
    if (scratch[0] != '\0')
        nftw(scratch, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

const char *
bg_fuzz_scratch(void)
{
    if (scratch[0] != '\0')
        return scratch;
    const char *tmp = getenv("TMPDIR");
    if (tmp == NULL || tmp[0] == '\0')
        tmp = "/tmp";
    int n = snprintf(scratch, sizeof scratch, "%s/bgfuzz.XXXXXX", tmp);
    bg_fuzz_assert(n > 0 && (size_t)n < sizeof scratch);
    if (mkdtemp(scratch) == NULL) {
        fprintf(stderr, "fuzz: cannot make a scratch directory in %s: %s\n", tmp, strerror(errno));
        abort();
    }
    atexit(scratch_remove);
    return scratch;
}

void
bg_fuzz_path(char *out, size_t cap, const char *name)
{
    int n = snprintf(out, cap, "%s/%s", bg_fuzz_scratch(), name);
    bg_fuzz_assert(n > 0 && (size_t)n < cap);
}

int
bg_fuzz_write_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    const uint8_t *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            close(fd);
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return close(fd);
}

int
bg_fuzz_write_seed(const char *dir, const char *name, const void *data, size_t len)
{
    char path[PATH_MAX];
    int n = snprintf(path, sizeof path, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= sizeof path || bg_fuzz_write_file(path, data, len) != 0) {
        fprintf(stderr, "fuzz: cannot write seed %s/%s: %s\n", dir, name, strerror(errno));
        return -1;
    }
    return 0;
}

int
bg_fuzz_write_seed_mode(const char *dir, const char *name, uint8_t mode, const void *data,
                        size_t len)
{
    uint8_t *buf = malloc(len + 1);
    if (buf == NULL)
        return -1;
    buf[0] = mode;
    if (len > 0)
        memcpy(buf + 1, data, len);
    int rc = bg_fuzz_write_seed(dir, name, buf, len + 1);
    free(buf);
    return rc;
}

const uint8_t *
bg_fuzz_bytes(bg_fuzz_in *in, size_t n, size_t *got)
{
    if (n > in->left)
        n = in->left;
    const uint8_t *p = in->p;
    in->p += n;
    in->left -= n;
    *got = n;
    return p;
}

/* Little-endian, so that seeds read the way they are written below. */
static uint64_t
take_le(bg_fuzz_in *in, size_t width)
{
    uint64_t v = 0;
    for (size_t i = 0; i < width && in->left > 0; i++) {
        v |= (uint64_t)in->p[0] << (8 * i);
        in->p++;
        in->left--;
    }
    return v;
}

uint8_t
bg_fuzz_u8(bg_fuzz_in *in)
{
    return (uint8_t)take_le(in, 1);
}

uint16_t
bg_fuzz_u16(bg_fuzz_in *in)
{
    return (uint16_t)take_le(in, 2);
}

uint32_t
bg_fuzz_u32(bg_fuzz_in *in)
{
    return (uint32_t)take_le(in, 4);
}

uint64_t
bg_fuzz_u64(bg_fuzz_in *in)
{
    return take_le(in, 8);
}
