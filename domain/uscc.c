#include "domain/uscc.h"

#include <stdio.h>
#include <string.h>

#include "common/json.h"
#include "domain/city.h"

const char bg_uscc_alphabet[32] = "0123456789ABCDEFGHJKLMNPQRTUWXY";

/* Value + 1 of each byte in the USCC alphabet; 0 outside it. */
static const unsigned char uscc_value1[256] = {
    ['0'] = 1,  ['1'] = 2,  ['2'] = 3,  ['3'] = 4,  ['4'] = 5,  ['5'] = 6,  ['6'] = 7,  ['7'] = 8,
    ['8'] = 9,  ['9'] = 10, ['A'] = 11, ['B'] = 12, ['C'] = 13, ['D'] = 14, ['E'] = 15, ['F'] = 16,
    ['G'] = 17, ['H'] = 18, ['J'] = 19, ['K'] = 20, ['L'] = 21, ['M'] = 22, ['N'] = 23, ['P'] = 24,
    ['Q'] = 25, ['R'] = 26, ['T'] = 27, ['U'] = 28, ['W'] = 29, ['X'] = 30, ['Y'] = 31};

static int
uscc_value(unsigned char c)
{
    return (int)uscc_value1[c] - 1;
}

static const int check_weights[17] = {1,  3,  9,  27, 19, 26, 16, 17, 20,
                                      29, 25, 13, 8,  24, 10, 30, 28};
static const int org_weights[8] = {3, 7, 9, 10, 5, 8, 4, 2};

char
bg_uscc_check_char(const char *first17)
{
    int sum = 0;
    for (int i = 0; i < 17; i++) {
        int v = uscc_value((unsigned char)first17[i]);
        if (v < 0)
            return 0;
        sum += v * check_weights[i];
    }
    return bg_uscc_alphabet[(31 - sum % 31) % 31];
}

/* GB 11714 values: digits 0-9, letters A=10 .. Z=35 (the whole Latin alphabet). */
static int
org_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'Z')
        return c - 'A' + 10;
    return -1;
}

char
bg_uscc_org_check_char(const char *org8)
{
    int sum = 0;
    for (int i = 0; i < 8; i++) {
        int v = org_value(org8[i]);
        if (v < 0)
            return 0;
        sum += v * org_weights[i];
    }
    int c = 11 - sum % 11;
    if (c == 10)
        return 'X';
    if (c == 11)
        return '0';
    return (char)('0' + c);
}

/* Registration authorities and their entity types (GB 32100-2015, annex A). */
struct entity_type {
    char authority;
    char type;
    const char *name;
};

static const struct {
    char code;
    const char *name;
} authorities[] = {
    {'1', "institutional establishment (机构编制)"},
    {'2', "foreign affairs (外交)"},
    {'3', "justice administration (司法行政)"},
    {'4', "culture (文化)"},
    {'5', "civil affairs (民政)"},
    {'6', "tourism (旅游)"},
    {'7', "religious affairs (宗教)"},
    {'8', "trade union (工会)"},
    {'9', "market regulation (工商)"},
    {'A', "central military commission (中央军委改革和编制办公室)"},
    {'N', "agriculture (农业)"},
    {'Y', "other (其他)"},
};

static const struct entity_type entity_types[] = {
    {'1', '1', "government organ (机关)"},
    {'1', '2', "public institution (事业单位)"},
    {'1', '3', "mass organisation (群众团体)"},
    {'1', '9', "other"},
    {'2', '1', "foreign resident office (外国常驻新闻机构)"},
    {'2', '9', "other"},
    {'3', '1', "law firm (律师执业机构)"},
    {'3', '2', "notary office (公证处)"},
    {'3', '3', "judicial appraisal institution (基层法律服务所)"},
    {'3', '4', "judicial authentication institution (司法鉴定机构)"},
    {'3', '5', "arbitration commission (仲裁委员会)"},
    {'3', '9', "other"},
    {'4', '1', "foreign cultural centre (外国在华文化中心)"},
    {'4', '9', "other"},
    {'5', '1', "social organisation (社会团体)"},
    {'5', '2', "private non-enterprise unit (民办非企业单位)"},
    {'5', '3', "foundation (基金会)"},
    {'5', '9', "other"},
    {'6', '1', "foreign tourism office (外国旅游部门常驻代表机构)"},
    {'6', '2', "HK/Macao/Taiwan tourism office (港澳台地区旅游部门常驻内地代表机构)"},
    {'6', '9', "other"},
    {'7', '1', "religious activity venue (宗教活动场所)"},
    {'7', '2', "religious college (宗教院校)"},
    {'7', '9', "other"},
    {'8', '1', "trade union (基层工会)"},
    {'8', '9', "other"},
    {'9', '1', "enterprise (企业)"},
    {'9', '2', "individual business (个体工商户)"},
    {'9', '3', "farmers' cooperative (农民专业合作社)"},
    {'A', '1', "military unit (军队事业单位)"},
    {'A', '9', "other"},
    {'N', '1', "group-level collective economic organisation (组级集体经济组织)"},
    {'N', '2', "village-level collective economic organisation (村级集体经济组织)"},
    {'N', '3', "township-level collective economic organisation (乡镇级集体经济组织)"},
    {'N', '9', "other"},
    {'Y', '1', "other"},
};

const char *
bg_uscc_authority_name(char authority)
{
    for (size_t i = 0; i < sizeof authorities / sizeof authorities[0]; i++)
        if (authorities[i].code == authority)
            return authorities[i].name;
    return NULL;
}

const char *
bg_uscc_entity_type_name(char authority, char entity_type)
{
    for (size_t i = 0; i < sizeof entity_types / sizeof entity_types[0]; i++)
        if (entity_types[i].authority == authority && entity_types[i].type == entity_type)
            return entity_types[i].name;
    return NULL;
}

const char *
bg_uscc_city_name(const char *city6)
{
    return bg_city_name(city6);
}

/* Decodes one UTF-8 code point at s[*i]; returns it, or -1 if invalid. */
static long
utf8_next(const unsigned char *s, size_t len, size_t *i)
{
    /* Look at one character only (at most 4 bytes), or the scan turns quadratic. */
    size_t n = bg_utf8_valid_prefix(s + *i, len - *i < 4 ? len - *i : 4);
    if (n == 0)
        return -1;
    unsigned char c = s[*i];
    size_t w = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : 4;
    long cp = w == 1 ? c : w == 2 ? (c & 0x1F) : w == 3 ? (c & 0x0F) : (c & 0x07);
    for (size_t k = 1; k < w; k++)
        cp = (cp << 6) | (s[*i + k] & 0x3F);
    *i += w;
    return cp;
}

static bool
is_trim_space(long cp)
{
    return cp == ' ' || cp == '\t' || cp == '\r' || cp == '\n' || cp == '\v' || cp == '\f' ||
           cp == 0xA0 || cp == 0x3000 || cp == 0xFEFF;
}

static size_t
utf8_put(char *out, long cp)
{
    unsigned char *o = (unsigned char *)out;
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

int
bg_uscc_normalize(const char *in, size_t len, char *out, size_t outsz, size_t *outlen, bg_err *err)
{
    const unsigned char *s = (const unsigned char *)in;
    if (len > BG_USCC_INPUT_MAX)
        return bg_err_set(err, BG_ELIMIT, "input of %zu bytes, longer than %d", len,
                          BG_USCC_INPUT_MAX);
    size_t valid = bg_utf8_valid_prefix(s, len);
    if (valid != len)
        return bg_err_set(err, BG_EINVAL, "byte %zu: invalid UTF-8", valid + 1);

    /* Find the first and last code points that are not white space. */
    size_t start = 0, end = len, i = 0;
    bool seen = false;
    while (i < len) {
        size_t at = i;
        long cp = utf8_next(s, len, &i);
        if (!is_trim_space(cp)) {
            if (!seen)
                start = at;
            seen = true;
            end = i;
        }
    }
    if (!seen)
        start = end = 0;

    size_t o = 0;
    for (i = start; i < end;) {
        long cp = utf8_next(s, len, &i);
        if (cp >= 0xFF01 && cp <= 0xFF5E)
            cp -= 0xFF01 - 0x21;
        if (cp >= 'a' && cp <= 'z')
            cp -= 'a' - 'A';
        if (o + 5 > outsz)
            return bg_err_set(err, BG_ELIMIT, "normalised code does not fit in %zu bytes", outsz);
        o += utf8_put(out + o, cp);
    }
    if (outsz == 0)
        return bg_err_set(err, BG_ELIMIT, "no room for the normalised code");
    out[o] = '\0';
    if (outlen != NULL)
        *outlen = o;
    return BG_OK;
}

/* Describes the character at byte offset i of s for an error message. */
static void
describe_char(const char *s, size_t len, size_t i, char *buf, size_t bufsz)
{
    size_t j = i;
    long cp = utf8_next((const unsigned char *)s, len, &j);
    if (cp >= 0x21 && cp < 0x7F)
        snprintf(buf, bufsz, "'%c'", (char)cp);
    else if (cp >= 0x80)
        snprintf(buf, bufsz, "'%.*s' (U+%04lX)", (int)(j - i), s + i, (unsigned long)cp);
    else
        snprintf(buf, bufsz, "byte 0x%02X", (unsigned)(unsigned char)s[i]);
}

/* True if code is 18 bytes of the alphabet: the common case, checked cheaply. */
static bool
is_canonical_shape(const char *code, size_t len)
{
    if (len != BG_USCC_LEN)
        return false;
    for (size_t i = 0; i < BG_USCC_LEN; i++)
        if (uscc_value((unsigned char)code[i]) < 0)
            return false;
    return true;
}

/* The rules that apply once the code is 18 characters of the alphabet. */
static int validate_fields(const char *code, bg_err *err);

int
bg_uscc_validate(const char *code, size_t len, bg_err *err)
{
    if (is_canonical_shape(code, len))
        return validate_fields(code, err);
    const unsigned char *s = (const unsigned char *)code;
    if (bg_utf8_valid_prefix(s, len) != len)
        return bg_err_set(err, BG_EINVAL, "byte %zu: invalid UTF-8",
                          bg_utf8_valid_prefix(s, len) + 1);

    /* Count characters, not bytes, so "length 17" means what a person sees. */
    size_t chars = 0;
    for (size_t i = 0; i < len; chars++)
        (void)utf8_next(s, len, &i);
    if (chars != BG_USCC_LEN)
        return bg_err_set(err, BG_EINVAL, "length %zu, expected %d", chars, BG_USCC_LEN);

    char what[32];
    for (size_t i = 0, pos = 1; i < len; pos++) {
        size_t at = i;
        long cp = utf8_next(s, len, &i);
        if (cp >= 0x80 || uscc_value((unsigned char)cp) < 0) {
            describe_char(code, len, at, what, sizeof what);
            return bg_err_set(err, BG_EINVAL, "position %zu: %s is not in the USCC alphabet", pos,
                              what);
        }
    }
    return validate_fields(code, err);
}

static int
validate_fields(const char *code, bg_err *err)
{
    if (bg_uscc_authority_name(code[0]) == NULL)
        return bg_err_set(err, BG_EINVAL, "position 1: '%c' is not a registration authority code",
                          code[0]);
    for (int p = 2; p < 8; p++)
        if (code[p] < '0' || code[p] > '9')
            return bg_err_set(err, BG_EINVAL,
                              "position %d: '%c' is not a digit of the administrative "
                              "division code",
                              p + 1, code[p]);
    char org = bg_uscc_org_check_char(code + 8);
    if (code[16] != org)
        return bg_err_set(err, BG_EINVAL,
                          "position 17: organisation code check character is '%c', "
                          "expected '%c'",
                          code[16], org);
    char check = bg_uscc_check_char(code);
    if (code[17] != check)
        return bg_err_set(err, BG_EINVAL, "position 18: check character is '%c', expected '%c'",
                          code[17], check);
    return BG_OK;
}

int
bg_uscc_parse(const char *in, size_t len, bg_uscc *out, bg_err *err)
{
    char norm[BG_USCC_INPUT_MAX * 4 + 8];
    size_t n = 0;
    int rc;
    if (is_canonical_shape(in, len)) { /* nothing to normalise */
        memcpy(norm, in, BG_USCC_LEN);
        n = BG_USCC_LEN;
    } else if ((rc = bg_uscc_normalize(in, len, norm, sizeof norm, &n, err)) != BG_OK) {
        return rc;
    }
    rc = bg_uscc_validate(norm, n, err);
    if (rc != BG_OK)
        return rc;
    memcpy(out->code, norm, BG_USCC_LEN);
    out->code[BG_USCC_LEN] = '\0';
    out->authority = norm[0];
    out->entity_type = norm[1];
    memcpy(out->division, norm + 2, 6);
    out->division[6] = '\0';
    memcpy(out->city, norm + 2, 4);
    memcpy(out->city + 4, "00", 3);
    memcpy(out->org_code, norm + 8, 9);
    out->org_code[9] = '\0';
    return BG_OK;
}
