/*
 * demo_live.c - acts 3, 4 and 10: the three gateways started, pinging each
 * other in all six directions, and stopped with SIGTERM.
 */
#include "gateway/demo/demo_int.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <time.h>

#include "gateway/cmdline/cmdline.h"

/* Ready when its local API answers; a gateway that exits is a failure. */
static int
wait_ready(demo *d, size_t i)
{
    char gw[DEMO_PATH];
    if (!demo_path(gw, sizeof gw, "%s/%s", d->dir, demo_cities[i].code))
        return BG_EXIT_ERROR;
    const char *const args[] = {"status", "--dir", gw, NULL};
    struct timespec pause = {.tv_nsec = 50 * 1000 * 1000};
    time_t deadline = time(NULL) + 20;
    for (;;) {
        int st;
        if (waitpid(d->gateways[i], &st, WNOHANG) == d->gateways[i]) {
            d->gateways[i] = -1;
            return bg_cli_fail("demo", "the %s gateway exited; see %s/%s.log", demo_cities[i].name,
                               d->dir, demo_cities[i].code);
        }
        if (demo_run(d, DEMO_QUIET, args) == 0)
            return BG_EXIT_OK;
        if (time(NULL) > deadline)
            return bg_cli_fail("demo", "the %s gateway did not become ready", demo_cities[i].name);
        nanosleep(&pause, NULL);
    }
}

int
demo_start_act(demo *d)
{
    printf("\n3. Each city starts its gateway (federation API on mutual TLS, local API\n"
           "   on a private socket):\n");
    for (size_t i = 0; i < NDEMO; i++) {
        char gw[DEMO_PATH], log[DEMO_PATH];
        if (!demo_path(gw, sizeof gw, "%s/%s", d->dir, demo_cities[i].code) ||
            !demo_path(log, sizeof log, "%s/%s.log", d->dir, demo_cities[i].code))
            return BG_EXIT_ERROR;
        printf("  $ baygate serve --dir %s 2>%s &\n", gw, log);
        const char *const args[] = {"serve", "--dir", gw, NULL};
        d->gateways[i] = demo_spawn(d, args, log);
        if (d->gateways[i] < 0)
            return bg_cli_fail("demo", "cannot start the %s gateway", demo_cities[i].name);
    }
    for (size_t i = 0; i < NDEMO; i++)
        if (wait_ready(d, i) != BG_EXIT_OK)
            return BG_EXIT_ERROR;
    printf("   all three are up.\n");
    return BG_EXIT_OK;
}

int
demo_ping_act(demo *d)
{
    printf("\n4. Authenticated pings in all six directions (signed envelopes, each\n"
           "   checked against the CA, the CRL and the roster):\n");
    for (size_t i = 0; i < NDEMO; i++) {
        char gw[DEMO_PATH];
        if (!demo_path(gw, sizeof gw, "%s/%s", d->dir, demo_cities[i].code))
            return BG_EXIT_ERROR;
        DEMO_RUN(d, DEMO_SHOW, "ping", "--dir", gw, "--peer", "all");
    }
    return BG_EXIT_OK;
}

int
demo_stop_act(demo *d)
{
    int status = BG_EXIT_OK;
    bool any = false;
    for (size_t i = 0; i < NDEMO; i++) {
        if (d->gateways[i] > 0) {
            kill(d->gateways[i], SIGTERM);
            any = true;
        }
    }
    if (!any)
        return status;
    printf("\n10. SIGTERM to the gateways: they finish in-flight work and exit.\n");
    for (size_t i = 0; i < NDEMO; i++) {
        if (d->gateways[i] <= 0)
            continue;
        int st = 0;
        while (waitpid(d->gateways[i], &st, 0) < 0 && errno == EINTR)
            ;
        bool clean = demo_tally(d, WIFEXITED(st) && WEXITSTATUS(st) == 0);
        printf("   %-10s %s\n", demo_cities[i].name,
               clean ? "stopped cleanly (exit 0)" : "did NOT stop cleanly");
        if (!clean)
            status = BG_EXIT_FAIL;
        d->gateways[i] = -1;
    }
    return status;
}
