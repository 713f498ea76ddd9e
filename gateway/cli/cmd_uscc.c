/*
 * cmd_uscc.c - baygate uscc check: validate and decode codes, as a stream.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "domain/uscc.h"
#include "gateway/cli/cli.h"

/* A line longer than this cannot hold a code; the rest of it is skipped. */
#define USCC_LINE_MAX 4096

static void
uscc_usage(FILE *f)
{
    fprintf(f, "usage: baygate uscc check [--json] CODE...\n"
               "       baygate uscc check [--json] --file FILE   (FILE '-' = stdin)\n\n"
               "Normalises (trim, full-width to half-width, upper case) and validates\n"
               "Unified Social Credit Codes (GB 32100-2015). One line per input:\n"
               "'OK <code>' or 'ERR <input>: <reason>'; --json prints one object per\n"
               "line with the decoded fields.\n"
               "\n"
               "EXAMPLES\n"
               "  baygate uscc check 91440300MA5FXXXXXX\n"
               "  baygate uscc check --json --file codes.txt\n"
               "\n"
               "EXIT STATUS\n"
               "  0  every code is valid\n"
               "  1  some code is not\n"
               "  2  usage error, or the file cannot be read\n");
}

/* Echoes untrusted input for a terminal: control bytes and invalid UTF-8 as \xNN. */
static void
print_escaped(FILE *f, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        size_t ok = bg_utf8_valid_prefix(p + i, len - i);
        for (size_t k = i; k < i + ok; k++) {
            if (p[k] < 0x20 || p[k] == 0x7F)
                fprintf(f, "\\x%02X", p[k]);
            else
                fputc(p[k], f);
        }
        i += ok;
        if (i < len)
            fprintf(f, "\\x%02X", p[i++]);
    }
}

static void
print_json_field(FILE *f, const char *key, const char *value)
{
    fprintf(f, ",\"%s\":", key);
    bg_json_cstr(f, value);
}

/* Checks one input and prints its line; returns true iff valid. */
static bool
check_one(const char *in, size_t len, bool json, const char *overlong)
{
    bg_uscc u;
    bg_err err;
    int rc =
        overlong ? bg_err_set(&err, BG_ELIMIT, "%s", overlong) : bg_uscc_parse(in, len, &u, &err);
    if (json) {
        fputs("{\"input\":", stdout);
        bg_json_str(stdout, in, len);
        if (rc == BG_OK) {
            char a[2] = {u.authority, 0}, t[2] = {u.entity_type, 0};
            fputs(",\"valid\":true", stdout);
            print_json_field(stdout, "code", u.code);
            print_json_field(stdout, "authority", a);
            print_json_field(stdout, "authority_name", bg_uscc_authority_name(u.authority));
            print_json_field(stdout, "entity_type", t);
            print_json_field(stdout, "entity_type_name",
                             bg_uscc_entity_type_name(u.authority, u.entity_type));
            print_json_field(stdout, "division", u.division);
            print_json_field(stdout, "city", u.city);
            print_json_field(stdout, "city_name", bg_uscc_city_name(u.city));
            print_json_field(stdout, "org_code", u.org_code);
        } else {
            fputs(",\"valid\":false", stdout);
            print_json_field(stdout, "error", err.msg);
        }
        fputs("}\n", stdout);
    } else if (rc == BG_OK) {
        printf("OK %s\n", u.code);
    } else {
        fputs("ERR ", stdout);
        print_escaped(stdout, in, len);
        printf(": %s\n", err.msg);
    }
    return rc == BG_OK;
}

/*
 * Streams a file line by line with a fixed buffer, so millions of lines and
 * hostile line lengths cost constant memory. Returns the exit status.
 */
static int
check_stream(FILE *f, const char *name, bool json, bool *all_valid)
{
    static char line[USCC_LINE_MAX + 1];
    size_t n = 0;
    bool overlong = false;
    int c;
    for (;;) {
        c = getc_unlocked(f);
        if (c == EOF || c == '\n') {
            if (c == EOF && n == 0 && !overlong)
                break;
            if (n > 0 && line[n - 1] == '\r')
                n--;
            char msg[64];
            snprintf(msg, sizeof msg, "line longer than %d bytes", USCC_LINE_MAX);
            /* Blank lines are separators, not inputs. */
            if (n > 0 || overlong)
                *all_valid &= check_one(line, n, json, overlong ? msg : NULL);
            n = 0;
            overlong = false;
            if (c == EOF)
                break;
            continue;
        }
        if (n < USCC_LINE_MAX)
            line[n++] = (char)c;
        else
            overlong = true;
    }
    if (ferror(f))
        return bg_cli_fail("uscc", "reading %s failed", name);
    return BG_EXIT_OK;
}

int
bg_cmd_uscc(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},
        {"file", required_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        uscc_usage(stdout);
        return BG_EXIT_OK;
    }
    static const char *const subs[] = {"check"};
    if (argc < 2)
        return bg_cli_usage_error("uscc", "which one? check");
    if (strcmp(argv[1], "check") != 0)
        return bg_cli_unknown("uscc", argv[1], subs, 1);
    argc--, argv++;
    bool json = false;
    const char *file = NULL;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, ":jf:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'j':
            json = true;
            break;
        case 'f':
            file = optarg;
            break;
        case 'h':
            uscc_usage(stdout);
            return BG_EXIT_OK;
        default:
            return bg_cli_bad_option("uscc check", ch, argv, opts);
        }
    }
    if ((file == NULL) == (optind >= argc))
        return bg_cli_usage_error("uscc check", "give codes or --file, not both or neither");

    static char outbuf[1 << 16];
    setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf);
    bool all_valid = true;
    int status = BG_EXIT_OK;
    if (file != NULL) {
        bool is_stdin = strcmp(file, "-") == 0;
        FILE *f = is_stdin ? stdin : fopen(file, "rb");
        if (f == NULL)
            return bg_cli_fail("uscc check", "cannot open %s: %m", file);
        status = check_stream(f, is_stdin ? "stdin" : file, json, &all_valid);
        if (!is_stdin)
            fclose(f);
    } else {
        for (int i = optind; i < argc; i++)
            all_valid &= check_one(argv[i], strlen(argv[i]), json, NULL);
    }
    if (fflush(stdout) != 0)
        return bg_cli_fail("uscc check", "writing output failed: %m");
    if (status != BG_EXIT_OK)
        return status;
    return all_valid ? BG_EXIT_OK : BG_EXIT_FAIL;
}
