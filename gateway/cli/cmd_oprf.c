/*
 * cmd_oprf.c - baygate oprf: one RFC 9497 OPRF run with given key, blind and input.
 *
 * A debugging and interop aid: it prints the three values of an RFC 9497 test vector
 * (ristretto255-SHA512, mode 0) so they can be compared with another implementation.
 * Keys given on a command line are visible to other local users: test keys only.
 */
#include <getopt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/cli/cli.h"
#include "mpc/oprf.h"

static void
oprf_usage(FILE *f)
{
    fprintf(f, "usage: baygate oprf --key HEX --blind HEX --input HEX\n\n"
               "Runs RFC 9497 OPRF mode 0 (ristretto255-SHA512) once, as the test vectors\n"
               "of RFC 9497 Appendix A.1.1 do, and prints three lines:\n"
               "  BlindedElement <hex>     blind * HashToGroup(input)\n"
               "  EvaluationElement <hex>  key * BlindedElement\n"
               "  Output <hex>             Finalize(input, blind, EvaluationElement)\n\n"
               "  --key HEX     32-byte scalar, little-endian, canonical and non-zero\n"
               "  --blind HEX   32-byte scalar, likewise\n"
               "  --input HEX   the input bytes (0 to 65535 bytes; '' is the empty input)\n\n"
               "For test vectors and debugging only: a key on a command line is visible\n"
               "to other users of this machine.\n"
               "\n"
               "EXAMPLES\n"
               "  baygate oprf --key HEX --blind HEX --input 00\n"
               "\n"
               "EXIT STATUS\n"
               "  0  computed\n"
               "  2  usage error\n");
}

static int
hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Strict hex (pairs of digits, nothing else) into a new buffer of *len bytes. */
static int
parse_hex(const char *opt, const char *s, size_t max, uint8_t **out, size_t *len)
{
    size_t n = strlen(s);
    if (n % 2 != 0)
        return bg_cli_fail("oprf", "%s: odd number of hex digits (%zu)", opt, n);
    if (n / 2 > max)
        return bg_cli_fail("oprf", "%s: %zu bytes, at most %zu allowed", opt, n / 2, max);
    for (size_t i = 0; i < n; i++)
        if (hex_digit(s[i]) < 0)
            return bg_cli_fail("oprf", "%s: character %zu is not a hex digit", opt, i + 1);
    uint8_t *b = malloc(n / 2 + 1); /* +1: never malloc(0) for the empty input */
    if (b == NULL)
        return bg_cli_fail("oprf", "%s: out of memory", opt);
    for (size_t i = 0; i < n / 2; i++)
        b[i] = (uint8_t)(hex_digit(s[2 * i]) << 4 | hex_digit(s[2 * i + 1]));
    *out = b;
    *len = n / 2;
    return BG_EXIT_OK;
}

/* A key or blind: exactly 32 bytes, canonical, non-zero. */
static int
parse_scalar(const char *opt, const char *s, uint8_t scalar[BG_OPRF_SCALARBYTES])
{
    uint8_t *b = NULL;
    size_t len = 0;
    int rc = parse_hex(opt, s, BG_OPRF_SCALARBYTES, &b, &len);
    if (rc != BG_EXIT_OK)
        return rc;
    bg_err err = {0};
    if (len != BG_OPRF_SCALARBYTES)
        rc = bg_cli_fail("oprf", "%s: %zu bytes, a scalar is %u (64 hex digits)", opt, len,
                         BG_OPRF_SCALARBYTES);
    else if (bg_oprf_scalar_check(b, len, &err) != BG_OK)
        rc = bg_cli_fail("oprf", "%s: %s", opt, err.msg);
    else
        memcpy(scalar, b, BG_OPRF_SCALARBYTES);
    sodium_memzero(b, len);
    free(b);
    return rc;
}

static void
print_hex(const char *label, const uint8_t *b, size_t len)
{
    char hex[2 * BG_OPRF_OUTPUTBYTES + 1];
    sodium_bin2hex(hex, sizeof hex, b, len);
    printf("%s %s\n", label, hex);
}

static int
oprf_run(const char *key_hex, const char *blind_hex, const char *input_hex)
{
    uint8_t key[BG_OPRF_SCALARBYTES], blind[BG_OPRF_SCALARBYTES];
    uint8_t blinded[BG_OPRF_ELEMENTBYTES], evaluated[BG_OPRF_ELEMENTBYTES];
    uint8_t out[BG_OPRF_OUTPUTBYTES], *input = NULL;
    size_t input_len = 0;
    bg_err err = {0};
    int rc = parse_scalar("--key", key_hex, key);
    if (rc == BG_EXIT_OK)
        rc = parse_scalar("--blind", blind_hex, blind);
    if (rc == BG_EXIT_OK)
        rc = parse_hex("--input", input_hex, BG_OPRF_INPUT_MAX, &input, &input_len);
    if (rc == BG_EXIT_OK && bg_oprf_blind_with(blinded, blind, input, input_len, &err) != BG_OK)
        rc = bg_cli_fail("oprf", "blind: %s", err.msg);
    if (rc == BG_EXIT_OK && bg_oprf_evaluate(evaluated, key, blinded, &err) != BG_OK)
        rc = bg_cli_fail("oprf", "evaluate: %s", err.msg);
    if (rc == BG_EXIT_OK &&
        bg_oprf_finalize(out, input, input_len, blind, evaluated, &err) != BG_OK)
        rc = bg_cli_fail("oprf", "finalize: %s", err.msg);
    if (rc == BG_EXIT_OK) {
        print_hex("BlindedElement", blinded, sizeof blinded);
        print_hex("EvaluationElement", evaluated, sizeof evaluated);
        print_hex("Output", out, sizeof out);
        if (fflush(stdout) != 0)
            rc = bg_cli_fail("oprf", "writing the output failed");
    }
    sodium_memzero(key, sizeof key);
    sodium_memzero(blind, sizeof blind);
    if (input != NULL)
        sodium_memzero(input, input_len);
    free(input);
    return rc;
}

int
bg_cmd_oprf(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"key", required_argument, NULL, 'k'},
        {"blind", required_argument, NULL, 'b'},
        {"input", required_argument, NULL, 'i'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *key = NULL, *blind = NULL, *input = NULL;

    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case 'k':
            key = optarg;
            break;
        case 'b':
            blind = optarg;
            break;
        case 'i':
            input = optarg;
            break;
        case 'h':
            oprf_usage(stdout);
            return BG_EXIT_OK;
        default:
            return bg_cli_bad_option("oprf", c, argv, longopts);
        }
    }
    if (optind < argc)
        return bg_cli_fail("oprf", "unexpected argument '%s'", argv[optind]);
    if (key == NULL)
        return bg_cli_usage_error("oprf", "--key is required");
    if (blind == NULL)
        return bg_cli_usage_error("oprf", "--blind is required");
    if (input == NULL)
        return bg_cli_usage_error("oprf", "--input is required");
    bg_err err = {0};
    if (bg_oprf_init(&err) != BG_OK)
        return bg_cli_fail("oprf", "%s", err.msg);
    return oprf_run(key, blind, input);
}
