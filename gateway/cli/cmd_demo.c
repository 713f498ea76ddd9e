/*
 * cmd_demo.c - baygate demo: the options of the scripted tour (gateway/demo/demo.h).
 */
#include <getopt.h>
#include <stdio.h>

#include "gateway/cli/cli.h"
#include "gateway/demo/demo.h"

static void
demo_usage(FILE *f)
{
    fprintf(f, "usage: baygate demo [--dir DIR] [--count N] [--seed S] [--dirty R]\n\n"
               "Builds a three-city federation on loopback under DIR (default\n"
               "./baygate-demo, recreated on every run): CA, city keys and certificates,\n"
               "signed roster and CRL; N enterprises of generated credit data per city\n"
               "(default 20000, defect rate R, default 0.0005) imported into each city's\n"
               "store; then starts the three gateways, pings in all six directions, runs\n"
               "private set intersection queries, shows Shenzhen's grades recognised with\n"
               "attestations, a repair that revokes the old attestation, an evidence-log\n"
               "proof verified against another city's cosigned root, a rogue being refused,\n"
               "and shuts everything down. Every answer is checked; the last line is the\n"
               "verdict.\n"
               "\n"
               "EXAMPLES\n"
               "  baygate demo\n"
               "  baygate demo --dir /tmp/tour --count 5000\n"
               "\n"
               "EXIT STATUS\n"
               "  0  every check passed\n"
               "  1  a check failed\n"
               "  2  usage or operational error\n");
}

int
bg_cmd_demo(int argc, char **argv)
{
    static const struct option opts[] = {
        {"dir", required_argument, NULL, 'd'},  {"count", required_argument, NULL, 'n'},
        {"seed", required_argument, NULL, 's'}, {"dirty", required_argument, NULL, 'r'},
        {"help", no_argument, NULL, 'h'},       {NULL, 0, NULL, 0},
    };
    bg_demo_opts o = {.dir = "baygate-demo", .count = 20000, .seed = 2021, .dirty = 0.0005};
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, ":d:n:s:r:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'd':
            o.dir = optarg;
            break;
        case 'n':
            if (!bg_cli_parse_u64("demo", "--count", optarg, &o.count))
                return BG_EXIT_ERROR;
            break;
        case 's':
            if (!bg_cli_parse_u64("demo", "--seed", optarg, &o.seed))
                return BG_EXIT_ERROR;
            break;
        case 'r':
            if (!bg_cli_parse_rate("demo", "--dirty", optarg, &o.dirty))
                return BG_EXIT_ERROR;
            break;
        case 'h':
            demo_usage(stdout);
            return BG_EXIT_OK;
        default:
            return bg_cli_bad_option("demo", ch, argv, opts);
        }
    }
    if (optind != argc)
        return bg_cli_usage_error("demo", "unexpected argument '%s'", argv[optind]);
    return bg_demo_run(&o);
}
