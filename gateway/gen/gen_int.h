/*
 * gen_int.h - inside the generator (not for use outside gateway/gen): the
 * reference data of gen_tables.c, which gen.c draws rows from. Every table
 * comes with its length (NAME_n); weighted tables hold at most GEN_DIST_MAX
 * entries (checked where they are defined).
 */
#ifndef BG_GEN_INT_H
#define BG_GEN_INT_H

#include <stddef.h>

#include "domain/list.h"

#define GEN_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Outcomes a gen_dist can draw from. */
#define GEN_DIST_MAX 64

typedef struct gen_district {
    const char *code;       /* six-digit division code */
    const char *name;       /* "福田区"; "" for the city-level registration authority */
    const char *short_name; /* "福田" */
    unsigned weight;        /* rough share of registrations */
} gen_district;

typedef struct gen_city {
    const char *code;
    const char *name;       /* "深圳市" */
    const char *short_name; /* "深圳" */
    const char *pinyin;     /* "Shenzhen" */
    const gen_district *districts;
    size_t ndistricts;
} gen_city;

/* Registration authority and entity type, and how the name is built. */
enum {
    KIND_ENTERPRISE,  /* 91 企业 */
    KIND_INDIVIDUAL,  /* 92 个体工商户 */
    KIND_COOPERATIVE, /* 93 农民专业合作社 */
    KIND_NONPROFIT,   /* 52 民办非企业单位 */
    KIND_SOCIETY,     /* 51 社会团体 */
    KIND_INSTITUTION, /* 12 事业单位 */
    KIND_VILLAGE,     /* N2 村级集体经济组织 */
    KIND_OTHER,       /* Y1 其他 */
};

typedef struct gen_kind {
    char authority;
    char type;
    int kind;        /* KIND_* */
    unsigned weight; /* per 10000 rows */
} gen_kind;

typedef struct gen_trade_char {
    const char *zh;
    const char *py;
} gen_trade_char;

typedef struct gen_word {
    const char *zh;
    const char *en;
    unsigned weight;
} gen_word;

/* hot lists the cities where the industry is over-represented. */
typedef struct gen_industry {
    const char *zh;
    const char *en;
    unsigned weight;
    const char *hot;
} gen_industry;

typedef struct gen_reason_list {
    const gen_word *items;
    size_t n;
} gen_reason_list;

/* The index in gen_forms of the partnership, which is named apart. */
enum { FORM_PARTNERSHIP = 4 };

extern const gen_city gen_city_table[];
extern const size_t gen_city_table_n;
extern const char *const gen_surnames[];
extern const size_t gen_surnames_n;
extern const gen_word gen_forms[];
extern const size_t gen_forms_n;
extern const char *const gen_partnership_trades[];
extern const size_t gen_partnership_trades_n;
extern const gen_word gen_shop_suffixes[];
extern const size_t gen_shop_suffixes_n;
extern const char *const gen_coop_trades[];
extern const size_t gen_coop_trades_n;
extern const char *const gen_nonprofit_suffixes[];
extern const size_t gen_nonprofit_suffixes_n;
extern const char *const gen_society_regions[];
extern const size_t gen_society_regions_n;
extern const char *const gen_institutions[];
extern const size_t gen_institutions_n;
extern const char *const gen_numerals[];
extern const size_t gen_numerals_n;
extern const gen_kind gen_kinds[];
extern const size_t gen_kinds_n;
extern const gen_trade_char gen_trade_chars[];
extern const size_t gen_trade_chars_n;
extern const gen_industry gen_industries[];
extern const size_t gen_industries_n;
extern const char *const gen_coop_forms[];
extern const size_t gen_coop_forms_n;
extern const char *const gen_society_forms[];
extern const size_t gen_society_forms_n;
extern const char *const gen_village_forms[];
extern const size_t gen_village_forms_n;
extern const char *const gen_owner_forms[];
extern const size_t gen_owner_forms_n;
extern const char *const gen_school_forms[];
extern const size_t gen_school_forms_n;
/* Per list, in domain/list.h's order. */
extern const gen_reason_list gen_reasons[BG_LIST_COUNT];

#endif
