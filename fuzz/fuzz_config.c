/*
 * fuzz_config.c - the gateway directory's baygate.ini (gateway/config).
 *
 * Mode 0 (first byte even): the rest is a baygate.ini, loaded as `serve`
 * loads it. What loads must survive a round trip: bg_config_write, then
 * bg_config_load again, gives the same settings.
 * Mode 1 (first byte odd): the rest is a --listen value, as `baygate init`
 * takes it: if bg_config_defaults accepts it, the file bg_config_write makes
 * must load (an `init` that succeeds must leave a gateway `serve` can start).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/err.h"
#include "fuzz/fuzz.h"
#include "gateway/config/config.h"

static char dir[PATH_MAX], ini[PATH_MAX];

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    bg_fuzz_path(dir, sizeof dir, "gw");
    bg_fuzz_assert(mkdir(dir, 0700) == 0);
    bg_fuzz_path(ini, sizeof ini, "gw/" BG_CONFIG_FILE);
    return 0;
}

/* The settings a round trip must keep. */
static void
assert_same(const bg_config *a, const bg_config *b)
{
    bg_fuzz_assert(strcmp(a->city, b->city) == 0 && strcmp(a->name, b->name) == 0);
    bg_fuzz_assert(strcmp(a->listen, b->listen) == 0);
    bg_fuzz_assert(a->recv_max_bytes == b->recv_max_bytes &&
                   a->relay_interval_s == b->relay_interval_s);
    bg_fuzz_assert(strcmp(a->local_socket, b->local_socket) == 0);
    bg_fuzz_assert(strcmp(a->data_dir, b->data_dir) == 0);
    bg_fuzz_assert(strcmp(a->key_path, b->key_path) == 0);
    bg_fuzz_assert(strcmp(a->cert_path, b->cert_path) == 0);
    bg_fuzz_assert(strcmp(a->ca_path, b->ca_path) == 0);
    bg_fuzz_assert(strcmp(a->crl_path, b->crl_path) == 0);
    bg_fuzz_assert(strcmp(a->roster_path, b->roster_path) == 0);
    bg_fuzz_assert(a->crl_warn_hours == b->crl_warn_hours);
    bg_fuzz_assert(a->dial_ms == b->dial_ms && a->request_ms == b->request_ms &&
                   a->handshake_ms == b->handshake_ms);
    bg_fuzz_assert(a->head_interval_s == b->head_interval_s &&
                   a->witness_interval_s == b->witness_interval_s);
}

/* cfg was accepted: what it writes must load back to the same settings. */
static void
round_trip(const bg_config *cfg)
{
    bg_err err = {0};
    if (bg_config_write(ini, cfg, true, &err) != BG_OK)
        return; /* refused to write: fine, nothing is left half made */
    bg_config *back = calloc(1, sizeof *back);
    bg_fuzz_assert(back != NULL);
    int rc = bg_config_load(ini, back, &err);
    if (rc != BG_OK) {
        fprintf(stderr, "written config does not load: %s\n", err.msg);
        bg_fuzz_fail(__FILE__, __LINE__, "a written config loads");
    }
    if (rc == BG_OK)
        assert_same(cfg, back);
    free(back);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    bg_config *cfg = calloc(1, sizeof *cfg);
    bg_fuzz_assert(cfg != NULL);
    bg_err err = {0};
    if ((data[0] & 1) == 0) {
        bg_fuzz_assert(bg_fuzz_write_file(ini, data + 1, size - 1) == 0);
        if (bg_config_load(ini, cfg, &err) == BG_OK)
            round_trip(cfg);
    } else {
        char *listen = malloc(size);
        bg_fuzz_assert(listen != NULL);
        memcpy(listen, data + 1, size - 1);
        listen[size - 1] = '\0';
        if (bg_config_defaults(cfg, dir, "440100", "Guangzhou", listen, &err) == BG_OK)
            round_trip(cfg);
        free(listen);
    }
    free(cfg);
    return 0;
}
