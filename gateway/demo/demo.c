/*
 * demo.c - the tour's order (demo.h): a fresh directory, the acts one after
 * another, and the verdict.
 */
/* nftw(3) is an XSI interface. */
#define _XOPEN_SOURCE 700
#include "gateway/demo/demo.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gateway/cmdline/cmdline.h"
#include "gateway/demo/demo_int.h"

#define DEMO_MARKER ".baygate-demo"

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

/* Starts from nothing: removes DIR if an earlier demo made it, refuses to
 * touch a directory the demo did not make. */
static int
reset_dir(const char *dir)
{
    char marker[DEMO_PATH];
    if (!demo_path(marker, sizeof marker, "%s/%s", dir, DEMO_MARKER))
        return BG_EXIT_ERROR;
    struct stat st;
    if (stat(dir, &st) == 0) {
        if (access(marker, F_OK) != 0)
            return bg_cli_fail("demo", "%s exists and was not made by the demo; not touching it",
                               dir);
        if (nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0)
            return bg_cli_fail("demo", "cannot remove the old %s: %s", dir, strerror(errno));
    }
    if (mkdir(dir, 0700) != 0)
        return bg_cli_fail("demo", "cannot create %s: %s", dir, strerror(errno));
    FILE *f = fopen(marker, "w");
    if (f == NULL || fclose(f) != 0)
        return bg_cli_fail("demo", "cannot write %s", marker);
    return BG_EXIT_OK;
}

static int
set_up(demo *d)
{
    ssize_t sn = readlink("/proc/self/exe", d->self, sizeof d->self - 1);
    if (sn <= 0)
        return bg_cli_fail("demo", "cannot find this program: %s", strerror(errno));
    d->self[sn] = '\0';
    for (size_t i = 0; i < NDEMO; i++)
        d->gateways[i] = -1;
    char data_dir[DEMO_PATH];
    if (reset_dir(d->dir) != BG_EXIT_OK ||
        !demo_path(d->log, sizeof d->log, "%s/demo.log", d->dir) ||
        !demo_path(data_dir, sizeof data_dir, "%s/data", d->dir))
        return BG_EXIT_ERROR;
    if (mkdir(data_dir, 0700) != 0)
        return bg_cli_fail("demo", "cannot create %s: %s", data_dir, strerror(errno));
    return BG_EXIT_OK;
}

/* Acts 3 to 10, with the gateways running. A failed check does not stop the tour
 * (the later acts still show something true); an operational error does. */
static int
live_acts(demo *d)
{
    static int (*const acts[])(demo *) = {demo_psi_act, demo_recognise_act, demo_repair_act,
                                          demo_evidence_act, demo_rogue_act};
    int rc = demo_start_act(d);
    if (rc == BG_EXIT_OK)
        rc = demo_ping_act(d);
    for (size_t i = 0; rc != BG_EXIT_ERROR && i < sizeof acts / sizeof acts[0]; i++) {
        int a = acts[i](d);
        if (a > rc)
            rc = a;
    }
    int stop = demo_stop_act(d);
    return stop > rc ? stop : rc;
}

static void
print_verdict(const demo *d, int rc)
{
    const char *dir = d->dir;
    if (rc != BG_EXIT_ERROR)
        printf("\nGateway logs: %s/<city>.log; stores: %s/<city>/data/credit.db; evidence:\n"
               "%s/<city>/data/audit ('baygate audit head|proof|verify|witness --dir %s/<city>');\n"
               "attestations: %s/attest-* ('baygate attest verify FILE --ca %s/federation-ca\n"
               "--roster %s/roster.pb --status DIR/440300.status'). Queries by hand: start the\n"
               "gateways again ('baygate serve --dir %s/<city>') and run 'baygate query --dir\n"
               "%s/440100 --peer all --list serious-dishonesty --purpose supervision --in\n"
               "%s/data/440100.ids'.\n",
               dir, dir, dir, dir, dir, dir, dir, dir, dir, dir);
    if (rc == BG_EXIT_ERROR)
        printf("\nVerdict: FAILED: the tour stopped early (%u of %u checks made had failed); "
               "see the message above and %s.\n",
               d->failed, d->checks, d->log);
    else if (rc != BG_EXIT_OK)
        printf("\nVerdict: FAILED: %u of %u checks failed.\n", d->failed, d->checks);
    else
        printf("\nVerdict: PASSED: all %u checks passed.\n", d->checks);
}

int
bg_demo_run(const bg_demo_opts *opts)
{
    if (opts->count == 0 || opts->count > BG_DEMO_MAX_COUNT)
        return bg_cli_fail("demo", "--count must be 1..%d", BG_DEMO_MAX_COUNT);
    demo d = {.dir = opts->dir};
    if (set_up(&d) != BG_EXIT_OK)
        return BG_EXIT_ERROR;

    printf("baygate demo: a three-city credit federation on loopback, in %s/\n", d.dir);
    int rc = demo_pki_act(&d);
    if (rc == BG_EXIT_OK)
        rc = demo_data_act(&d, opts->count, opts->seed, opts->dirty);
    if (rc != BG_EXIT_OK)
        return rc;
    rc = live_acts(&d);
    if (rc == BG_EXIT_OK && d.failed > 0)
        rc = BG_EXIT_FAIL;
    print_verdict(&d, rc);
    return rc;
}
