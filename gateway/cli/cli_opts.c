/*
 * cli_opts.c - what the subcommands share when they parse their options.
 */
#include "gateway/cli/cli.h"

#include <getopt.h>

int
bg_cli_bad_option(const char *cmd, int ch, char *const *argv)
{
    if (ch == ':')
        return bg_cli_fail(cmd, "%s needs a value; see 'baygate %s --help'", argv[optind - 1], cmd);
    return bg_cli_fail(cmd, "unknown option '%s'; see 'baygate %s --help'", argv[optind - 1], cmd);
}
