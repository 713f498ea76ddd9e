/*
 * gen_tables.c - the generator's reference data: the cities and their
 * districts, the kinds of registered bodies, the parts names are built from
 * and the reasons lists give, with the weights rows are drawn by.
 *
 * Data only, apart from the checks that every weighted table fits a gen_dist:
 * the generator's logic is gen.c. Changing anything here changes every
 * generated file (the tests pin the output for a seed).
 */
#include "gateway/gen/gen_int.h"

#include "gateway/gen/gen.h"

/* Weights follow registered-enterprise counts loosely: the core districts lead. */
static const gen_district gz_districts[] = {
    {"440100", "", "", 6},
    {"440103", "荔湾区", "荔湾", 6},
    {"440104", "越秀区", "越秀", 9},
    {"440105", "海珠区", "海珠", 10},
    {"440106", "天河区", "天河", 18},
    {"440111", "白云区", "白云", 14},
    {"440112", "黄埔区", "黄埔", 8},
    {"440113", "番禺区", "番禺", 11},
    {"440114", "花都区", "花都", 6},
    {"440115", "南沙区", "南沙", 5},
    {"440117", "从化区", "从化", 2},
    {"440118", "增城区", "增城", 5},
};

static const gen_district sz_districts[] = {
    {"440300", "", "", 5},
    {"440303", "罗湖区", "罗湖", 7},
    {"440304", "福田区", "福田", 16},
    {"440305", "南山区", "南山", 16},
    {"440306", "宝安区", "宝安", 17},
    {"440307", "龙岗区", "龙岗", 16},
    {"440308", "盐田区", "盐田", 2},
    {"440309", "龙华区", "龙华", 12},
    {"440310", "坪山区", "坪山", 3},
    {"440311", "光明区", "光明", 4},
};

static const gen_district zh_districts[] = {
    {"440400", "", "", 5},
    {"440402", "香洲区", "香洲", 14},
    {"440403", "斗门区", "斗门", 4},
    {"440404", "金湾区", "金湾", 4},
};

static const gen_district fs_districts[] = {
    {"440600", "", "", 4},
    {"440604", "禅城区", "禅城", 10},
    {"440605", "南海区", "南海", 16},
    {"440606", "顺德区", "顺德", 15},
    {"440607", "三水区", "三水", 4},
    {"440608", "高明区", "高明", 3},
};

static const gen_district jm_districts[] = {
    {"440700", "", "", 3},           {"440703", "蓬江区", "蓬江", 8},
    {"440704", "江海区", "江海", 3}, {"440705", "新会区", "新会", 6},
    {"440781", "台山市", "台山", 4}, {"440783", "开平市", "开平", 3},
    {"440784", "鹤山市", "鹤山", 3}, {"440785", "恩平市", "恩平", 2},
};

static const gen_district zq_districts[] = {
    {"441200", "", "", 3},           {"441202", "端州区", "端州", 7},
    {"441203", "鼎湖区", "鼎湖", 3}, {"441204", "高要区", "高要", 4},
    {"441223", "广宁县", "广宁", 2}, {"441224", "怀集县", "怀集", 2},
    {"441225", "封开县", "封开", 1}, {"441226", "德庆县", "德庆", 1},
    {"441284", "四会市", "四会", 4},
};

static const gen_district hz_districts[] = {
    {"441300", "", "", 3},           {"441302", "惠城区", "惠城", 10},
    {"441303", "惠阳区", "惠阳", 6}, {"441322", "博罗县", "博罗", 5},
    {"441323", "惠东县", "惠东", 4}, {"441324", "龙门县", "龙门", 1},
};

/* Dongguan and Zhongshan have no county-level divisions: towns report to the city. */
static const gen_district dg_districts[] = {{"441900", "", "", 1}};
static const gen_district zs_districts[] = {{"442000", "", "", 1}};

#define CITY(code, name, short_name, pinyin, d)                                                    \
    {                                                                                              \
        code, name, short_name, pinyin, d, GEN_ARRAY_LEN(d)                                        \
    }

const gen_city gen_city_table[] = {
    CITY("440100", "广州市", "广州", "Guangzhou", gz_districts),
    CITY("440300", "深圳市", "深圳", "Shenzhen", sz_districts),
    CITY("440400", "珠海市", "珠海", "Zhuhai", zh_districts),
    CITY("440600", "佛山市", "佛山", "Foshan", fs_districts),
    CITY("440700", "江门市", "江门", "Jiangmen", jm_districts),
    CITY("441200", "肇庆市", "肇庆", "Zhaoqing", zq_districts),
    CITY("441300", "惠州市", "惠州", "Huizhou", hz_districts),
    CITY("441900", "东莞市", "东莞", "Dongguan", dg_districts),
    CITY("442000", "中山市", "中山", "Zhongshan", zs_districts),
};

/* Kept in the order of gen_city_table (a test checks both agree). */
const char *const bg_gen_cities[] = {"440100", "440300", "440400", "440600", "440700",
                                     "441200", "441300", "441900", "442000", NULL};

const gen_kind gen_kinds[] = {
    {'9', '1', KIND_ENTERPRISE, 8150}, {'9', '2', KIND_INDIVIDUAL, 1250},
    {'9', '3', KIND_COOPERATIVE, 150}, {'5', '2', KIND_NONPROFIT, 150},
    {'1', '2', KIND_INSTITUTION, 120}, {'5', '1', KIND_SOCIETY, 60},
    {'N', '2', KIND_VILLAGE, 60},      {'Y', '1', KIND_OTHER, 60},
};

/* Characters for trade names (字号), with pinyin for English names. */
const gen_trade_char gen_trade_chars[] = {
    {"华", "hua"},   {"创", "chuang"}, {"鑫", "xin"},   {"盛", "sheng"}, {"达", "da"},
    {"信", "xin"},   {"恒", "heng"},   {"泰", "tai"},   {"宏", "hong"},  {"源", "yuan"},
    {"丰", "feng"},  {"荣", "rong"},   {"安", "an"},    {"佳", "jia"},   {"美", "mei"},
    {"兴", "xing"},  {"隆", "long"},   {"金", "jin"},   {"瑞", "rui"},   {"祥", "xiang"},
    {"福", "fu"},    {"顺", "shun"},   {"利", "li"},    {"通", "tong"},  {"汇", "hui"},
    {"联", "lian"},  {"合", "he"},     {"嘉", "jia"},   {"德", "de"},    {"富", "fu"},
    {"强", "qiang"}, {"海", "hai"},    {"天", "tian"},  {"宇", "yu"},    {"星", "xing"},
    {"光", "guang"}, {"明", "ming"},   {"新", "xin"},   {"智", "zhi"},   {"博", "bo"},
    {"远", "yuan"},  {"卓", "zhuo"},   {"越", "yue"},   {"辉", "hui"},   {"腾", "teng"},
    {"飞", "fei"},   {"龙", "long"},   {"凯", "kai"},   {"亿", "yi"},    {"万", "wan"},
    {"诚", "cheng"}, {"和", "he"},     {"正", "zheng"}, {"东", "dong"},  {"中", "zhong"},
    {"力", "li"},    {"康", "kang"},   {"健", "jian"},  {"益", "yi"},    {"立", "li"},
    {"润", "run"},   {"晟", "sheng"},  {"昊", "hao"},   {"锦", "jin"},   {"绿", "lv"},
    {"青", "qing"},  {"云", "yun"},    {"峰", "feng"},  {"骏", "jun"},   {"铭", "ming"},
    {"邦", "bang"},  {"恩", "en"},     {"思", "si"},    {"维", "wei"},   {"景", "jing"},
    {"南", "nan"},   {"粤", "yue"},    {"港", "gang"},  {"湾", "wan"},   {"穗", "sui"},
    {"鹏", "peng"},  {"广", "guang"},  {"永", "yong"},  {"长", "chang"}, {"启", "qi"},
    {"航", "hang"},  {"优", "you"},    {"品", "pin"},   {"尚", "shang"}, {"雅", "ya"},
    {"晶", "jing"},  {"泓", "hong"},   {"澳", "ao"},    {"伟", "wei"},   {"俊", "jun"},
    {"志", "zhi"},   {"耀", "yao"},    {"宝", "bao"},   {"鼎", "ding"},  {"旺", "wang"},
    {"聚", "ju"},    {"百", "bai"},    {"家", "jia"},   {"乐", "le"},    {"英", "ying"},
    {"杰", "jie"},   {"振", "zhen"},   {"奥", "ao"},    {"迪", "di"},    {"科", "ke"},
    {"弘", "hong"},  {"宸", "chen"},   {"睿", "rui"},   {"森", "sen"},   {"泽", "ze"},
    {"元", "yuan"},  {"方", "fang"},   {"圆", "yuan"},  {"晖", "hui"},   {"发", "fa"},
};

/* Common Cantonese-area surnames, for "陈记" style shop names. */
const char *const gen_surnames[] = {"陈", "李", "黄", "张", "梁", "刘", "林",
                                    "何", "吴", "王", "郑", "罗", "杨", "周",
                                    "谢", "邓", "冯", "叶", "曾", "钟", "麦"};

/* Industries (行业); hot lists cities where the industry is over-represented. */
const gen_industry gen_industries[] = {
    {"科技", "Technology", 12, "440300 440100"},
    {"贸易", "Trading", 10, "440100 441900"},
    {"信息技术", "Information Technology", 5, "440300"},
    {"电子", "Electronics", 4, "440300 441900"},
    {"网络科技", "Network Technology", 4, "440300 440100"},
    {"进出口贸易", "Import and Export Trading", 3, "440100 440300"},
    {"建筑工程", "Construction Engineering", 5, ""},
    {"装饰工程", "Decoration Engineering", 4, ""},
    {"餐饮管理", "Catering Management", 4, "440100 440600"},
    {"物流", "Logistics", 4, "440100 440300"},
    {"供应链管理", "Supply Chain Management", 3, "440300"},
    {"实业", "Industrial", 4, ""},
    {"投资", "Investment", 2, "440300"},
    {"房地产开发", "Real Estate Development", 1, ""},
    {"物业管理", "Property Management", 2, ""},
    {"文化传播", "Culture Communication", 3, "440100"},
    {"广告", "Advertising", 2, ""},
    {"服装", "Garment", 2, "440100 442000"},
    {"家具", "Furniture", 2, "440600 441900"},
    {"陶瓷", "Ceramics", 1, "440600"},
    {"五金制品", "Hardware Products", 2, "440600 441900 442000"},
    {"机械设备", "Machinery Equipment", 2, "440600 441900"},
    {"电器", "Electrical Appliances", 2, "440600 442000"},
    {"灯饰照明", "Lighting", 1, "442000"},
    {"医疗器械", "Medical Devices", 1, "440300"},
    {"生物科技", "Biotechnology", 2, "440100 440300"},
    {"新能源", "New Energy", 1, "440300 440400"},
    {"环保科技", "Environmental Technology", 1, ""},
    {"教育咨询", "Education Consulting", 1, ""},
    {"企业管理咨询", "Enterprise Management Consulting", 2, ""},
    {"电子商务", "E-commerce", 3, "440100 440300"},
    {"汽车服务", "Auto Service", 1, ""},
    {"人力资源", "Human Resources", 1, ""},
    {"塑胶制品", "Plastic Products", 1, "441900"},
    {"食品", "Food", 2, ""},
    {"印刷", "Printing", 1, "441900"},
    {"旅游开发", "Tourism Development", 1, "440400"},
    {"海洋科技", "Marine Technology", 1, "440400"},
};

/* Organisation forms (组织形式) of enterprises; partnerships are treated apart. */
const gen_word gen_forms[] = {
    {"有限公司", "Co., Ltd.", 76},       {"有限责任公司", "Co., Ltd.", 8},
    {"股份有限公司", "Co., Ltd.", 6},    {"集团有限公司", "Group Co., Ltd.", 2},
    {"合伙企业（有限合伙）", "L.P.", 4}, /* index FORM_PARTNERSHIP */
};

const char *const gen_partnership_trades[] = {"股权投资", "创业投资", "投资管理", "企业管理"};

const gen_word gen_shop_suffixes[] = {
    {"商行", NULL, 10},      {"商店", NULL, 6},   {"便利店", NULL, 8}, {"五金店", NULL, 4},
    {"服装店", NULL, 5},     {"餐馆", NULL, 6},   {"小吃店", NULL, 6}, {"理发店", NULL, 4},
    {"水果店", NULL, 4},     {"经营部", NULL, 7}, {"批发部", NULL, 3}, {"工作室", NULL, 4},
    {"茶餐厅", NULL, 3},     {"烧腊店", NULL, 3}, {"粮油店", NULL, 2}, {"手机店", NULL, 2},
    {"汽车维修店", NULL, 2}, {"美容院", NULL, 2}, {"粉面店", NULL, 2}, {"凉茶铺", NULL, 1},
};

const char *const gen_coop_trades[] = {"荔枝种植", "蔬菜种植", "水产养殖", "花卉种植", "家禽养殖",
                                       "农机",     "茶叶种植", "水果种植", "生猪养殖", "龙眼种植"};

const char *const gen_nonprofit_suffixes[] = {"培训中心", "幼儿园",           "职业技能培训学校",
                                              "养老院",   "社会工作服务中心", "艺术培训中心"};

const char *const gen_society_regions[] = {"潮汕", "客家", "湖南", "江西", "福建",
                                           "四川", "湖北", "广西", "河南", "江苏"};

const char *const gen_institutions[] = {"人民医院",         "中医院",           "社区卫生服务中心",
                                        "文化馆",           "图书馆",           "疾病预防控制中心",
                                        "公共资源交易中心", "街道综合服务中心", "城市管理服务中心"};

const char *const gen_numerals[] = {"一", "二", "三", "四", "五",   "六",
                                    "七", "八", "九", "十", "十一", "十二"};

/*
 * Reasons. Most are the statutory wording; a few carry ASCII commas or quotes
 * as real exports do, so every consumer of the file must quote correctly.
 */
static const gen_word gen_dishonesty_reasons[] = {
    {"被列入经营异常名录届满3年仍未履行相关义务", NULL, 30},
    {"拒不履行法院生效判决", NULL, 14},
    {"严重违法失信", NULL, 12},
    {"提交虚假材料或者采取其他欺诈手段隐瞒重要事实，取得公司登记", NULL, 8},
    {"因危害食品安全违法行为受到较重行政处罚", NULL, 5},
    {"生产销售假冒伪劣产品，情节严重", NULL, 5},
    {"实施严重破坏公平竞争秩序的违法行为", NULL, 4},
    {"发布虚假广告，造成严重社会影响", NULL, 4},
    {"拒不执行生效的行政处罚决定", NULL, 5},
    {"构成重大税收违法失信案件", NULL, 6},
    {"因\"拒不履行法院生效判决\"被人民法院列入失信被执行人名单", NULL, 4},
    {"隐匿、转移财产,逃避执行", NULL, 3},
};

static const gen_word gen_abnormal_reasons[] = {
    {"未按照《企业信息公示暂行条例》第八条规定的期限公示年度报告", NULL, 30},
    {"未按规定期限公示年度报告", NULL, 22},
    {"通过登记的住所或者经营场所无法联系", NULL, 28},
    {"公示信息隐瞒真实情况、弄虚作假", NULL, 6},
    {"公示信息隐瞒真实情况弄虚作假", NULL, 2},
    {"未在市场监督管理部门依照本条例第十条规定责令的期限内公示有关企业信息", NULL, 6},
    {"通过登记的住所或者经营场所无法联系,经实地核查确认", NULL, 3},
    {"未按规定报送\"年度报告\"", NULL, 3},
};

const gen_reason_list gen_reasons[BG_LIST_COUNT] = {
    [BG_LIST_SERIOUS_DISHONESTY] = {gen_dishonesty_reasons, GEN_ARRAY_LEN(gen_dishonesty_reasons)},
    [BG_LIST_ABNORMAL_OPERATION] = {gen_abnormal_reasons, GEN_ARRAY_LEN(gen_abnormal_reasons)},
};

_Static_assert(BG_LIST_COUNT == 2, "gen_reasons and the rates in gen.c assume two lists");

/* Every weighted table must fit a gen_dist. */
#define FITS_DIST(t)                                                                               \
    _Static_assert(GEN_ARRAY_LEN(t) <= GEN_DIST_MAX, #t " is too long for gen_dist")
FITS_DIST(gz_districts);
FITS_DIST(sz_districts);
FITS_DIST(zh_districts);
FITS_DIST(fs_districts);
FITS_DIST(jm_districts);
FITS_DIST(zq_districts);
FITS_DIST(hz_districts);
FITS_DIST(gen_kinds);
FITS_DIST(gen_industries);
FITS_DIST(gen_forms);
FITS_DIST(gen_shop_suffixes);
FITS_DIST(gen_dishonesty_reasons);
FITS_DIST(gen_abnormal_reasons);

/* The fixed forms that close the names of unincorporated bodies. */
const char *const gen_coop_forms[] = {"专业合作社", "专业合作社", "农民专业合作社"};
const char *const gen_society_forms[] = {"协会", "行业协会", "促进会"};
const char *const gen_village_forms[] = {"村经济联合社", "村股份经济合作联合社", "村经济合作社"};
const char *const gen_owner_forms[] = {"花园业主委员会", "大厦业主委员会", "小区业主委员会"};
const char *const gen_school_forms[] = {"中学", "小学"};

const size_t gen_city_table_n = GEN_ARRAY_LEN(gen_city_table);
const size_t gen_surnames_n = GEN_ARRAY_LEN(gen_surnames);
const size_t gen_forms_n = GEN_ARRAY_LEN(gen_forms);
const size_t gen_partnership_trades_n = GEN_ARRAY_LEN(gen_partnership_trades);
const size_t gen_shop_suffixes_n = GEN_ARRAY_LEN(gen_shop_suffixes);
const size_t gen_coop_trades_n = GEN_ARRAY_LEN(gen_coop_trades);
const size_t gen_nonprofit_suffixes_n = GEN_ARRAY_LEN(gen_nonprofit_suffixes);
const size_t gen_society_regions_n = GEN_ARRAY_LEN(gen_society_regions);
const size_t gen_institutions_n = GEN_ARRAY_LEN(gen_institutions);
const size_t gen_numerals_n = GEN_ARRAY_LEN(gen_numerals);
const size_t gen_kinds_n = GEN_ARRAY_LEN(gen_kinds);
const size_t gen_trade_chars_n = GEN_ARRAY_LEN(gen_trade_chars);
const size_t gen_industries_n = GEN_ARRAY_LEN(gen_industries);
const size_t gen_coop_forms_n = GEN_ARRAY_LEN(gen_coop_forms);
const size_t gen_society_forms_n = GEN_ARRAY_LEN(gen_society_forms);
const size_t gen_village_forms_n = GEN_ARRAY_LEN(gen_village_forms);
const size_t gen_owner_forms_n = GEN_ARRAY_LEN(gen_owner_forms);
const size_t gen_school_forms_n = GEN_ARRAY_LEN(gen_school_forms);
