/*
 * demo_recognise.c - act 6: Guangzhou receives some of Shenzhen's grades with
 * attestations, each on Shenzhen's scale and on the roster's common scale, and
 * verifies one offline. It hands the attested evaluation to act 7.
 */
#include "gateway/demo/demo_int.h"

#include <stdio.h>
#include <string.h>

#include "domain/date.h"
#include "gateway/cmdline/cmdline.h"
#include "gateway/store/store.h"

typedef struct pick {
    char uscc[BG_USCC_LEN + 1];
    char grade[BG_GRADE_MAX + 1];
} pick;

struct pick_ctx {
    const demo_set *asked, *listed;
    const bg_scale *scale;
    int32_t today;
    pick by_grade[DEMO_MAX_PICKS];
};

/* Keeps the first enterprise (in USCC order) of each grade that Guangzhou also holds,
 * whose evaluation is in force today (so it can be attested) and that is on none of
 * Shenzhen's lists: act 7 re-imports it without list columns, which would drop them. */
static int
pick_row(void *ctx, const bg_store_row *row, bg_err *err)
{
    (void)err;
    struct pick_ctx *c = ctx;
    int g = row->grade != NULL ? bg_scale_index(c->scale, row->grade, strlen(row->grade)) : -1;
    if (g < 0 || g >= DEMO_MAX_PICKS || c->by_grade[g].uscc[0] != '\0' || row->date1 > c->today ||
        row->date2 <= c->today || demo_set_find(c->asked, row->uscc) == NULL ||
        demo_set_find(c->listed, row->uscc) != NULL)
        return BG_OK;
    memcpy(c->by_grade[g].uscc, row->uscc, BG_USCC_LEN);
    c->by_grade[g].uscc[BG_USCC_LEN] = '\0';
    snprintf(c->by_grade[g].grade, sizeof c->by_grade[g].grade, "%s", row->grade);
    return BG_OK;
}

static int
scan_evaluations(demo *d, struct pick_ctx *pc)
{
    const demo_city *sz = &demo_cities[SZ];
    char store_dir[DEMO_PATH];
    if (!demo_path(store_dir, sizeof store_dir, "%s/%s/data", d->dir, sz->code))
        return BG_EXIT_ERROR;
    bg_store *st = NULL;
    bg_err err = {0};
    int64_t last = 0;
    int rc = bg_store_open(&st, store_dir, sz->code, NULL, &err);
    if (rc == BG_OK)
        rc = bg_store_scan_current(st, NULL, bg_date_today(), &last, pick_row, pc, &err);
    bg_store_close(st);
    if (rc != BG_OK)
        return bg_cli_fail("demo", "reading the %s store: %s", sz->name, err.msg);
    return BG_EXIT_OK;
}

/* Picks one of Guangzhou's enterprises per grade of Shenzhen's (see pick_row). */
static int
pick_recognition(demo *d, const bg_scale *scale, struct pick_ctx *pc)
{
    const char *sz = demo_cities[SZ].code;
    char csv[DEMO_PATH];
    if (!demo_path(csv, sizeof csv, "%s/data/%s.csv", d->dir, demo_cities[GZ].code))
        return BG_EXIT_ERROR;
    demo_set asked = {0}, listed = {0};
    int rc = demo_write_ids(csv, NULL, SIZE_MAX, &asked);
    /* Every entry, expired ones too: the repair must not drop any. */
    if (rc == BG_EXIT_OK)
        rc = demo_load_all(d, sz, "serious-dishonesty", &listed);
    if (rc == BG_EXIT_OK)
        rc = demo_load_all(d, sz, "abnormal-operation", &listed);
    if (rc == BG_EXIT_OK && !demo_set_sort(&listed))
        rc = bg_cli_fail("demo", "reading the %s store: out of memory", demo_cities[SZ].name);
    if (rc == BG_EXIT_OK) {
        pc->asked = &asked;
        pc->listed = &listed;
        pc->scale = scale;
        pc->today = bg_date_today();
        rc = scan_evaluations(d, pc);
    }
    pc->asked = pc->listed = NULL;
    demo_set_free(&asked);
    demo_set_free(&listed);
    return rc;
}

/* The picks, one per line; how many in *n. */
static int
write_picks(const char *ids, const struct pick_ctx *pc, const bg_scale *scale, size_t *n)
{
    FILE *f = fopen(ids, "w");
    *n = 0;
    for (size_t g = 0; f != NULL && g < scale->ngrades; g++)
        if (pc->by_grade[g].uscc[0] != '\0' && fprintf(f, "%s\n", pc->by_grade[g].uscc) > 0)
            (*n)++;
    if (f == NULL || fclose(f) != 0)
        return bg_cli_fail("demo", "cannot write %s", ids);
    return BG_EXIT_OK;
}

/* Each pick's answer: Shenzhen's grade, scale and common rank, attested. The last
 * right one (the worst grade shown: act 7 improves it) in *target. */
static void
check_grades(demo *d, const char *out, const struct pick_ctx *pc, const bg_scale *scale,
             int *target, uint64_t *target_serial)
{
    const demo_city *sz = &demo_cities[SZ];
    *target = -1;
    for (size_t g = 0; g < scale->ngrades; g++) {
        const pick *p = &pc->by_grade[g];
        if (p->uscc[0] == '\0')
            continue;
        demo_graded r;
        demo_read_graded(out, sz->code, p->uscc, &r);
        char want[16];
        snprintf(want, sizeof want, "%u", sz->common[g]);
        bool right = r.found && strcmp(r.grade, p->grade) == 0 &&
                     strcmp(r.scale, scale->name) == 0 && strcmp(r.common, want) == 0 && r.attested;
        demo_tally(d, right);
        if (!r.found)
            printf("     %s  no answer%s%s   WRONG\n", p->uscc, r.error[0] ? ": " : "", r.error);
        else
            printf("     %s  grade %-3s (Shenzhen's scale %s) = common %s  %s   %s\n", p->uscc,
                   r.grade, r.scale, r.common, r.attested ? "attested" : "unattested",
                   right ? "ok" : "WRONG");
        if (r.found && !right)
            printf("       expected grade %s (Shenzhen's store) = common %s (the roster), "
                   "attested%s%s\n",
                   p->grade, want, r.error[0] ? "; got: " : "", r.error);
        if (right) {
            *target = (int)g;
            *target_serial = r.serial;
        }
    }
}

/* What Guangzhou reads them as: the grade of its own scale with the same common rank. */
static void
print_own_scale(const bg_scale *scale, const bg_scale *gz_scale)
{
    const demo_city *gz = &demo_cities[GZ], *sz = &demo_cities[SZ];
    printf("   Read on Guangzhou's own scale (%s), by common rank:", gz_scale->name);
    for (size_t g = 0; g < scale->ngrades; g++)
        for (size_t k = 0; k < gz_scale->ngrades; k++)
            if (gz->common[k] == sz->common[g]) {
                printf("%s %s = %s", g ? "," : "", scale->grades[g], gz_scale->grades[k]);
                break;
            }
    printf(".\n");
}

/* `baygate attest verify` on the target's attestation: it must say what the query said. */
static bool
verify_offline(demo *d, const char *att, const char *status, const pick *t, const bg_scale *scale,
               unsigned common_rank)
{
    const demo_city *sz = &demo_cities[SZ];
    char ca[DEMO_PATH], pb[DEMO_PATH], vout[DEMO_PATH];
    if (!demo_path(ca, sizeof ca, "%s/federation-ca/ca.crt", d->dir) ||
        !demo_path(pb, sizeof pb, "%s/roster.pb", d->dir) ||
        !demo_path(vout, sizeof vout, "%s/attest-verify.txt", d->dir))
        return false;
    printf("\n   An attestation is a file: anyone can check it offline, without asking Shenzhen,\n"
           "   with the federation CA, the signed roster and Shenzhen's signed status list:\n");
    const char *const v[] = {"attest",   "verify", att,        "--ca", ca,
                             "--roster", pb,       "--status", status, NULL};
    int vrc = demo_capture(d, v, vout);
    char line[1024], want[256];
    snprintf(want, sizeof want, "OK: %s (%s) evaluated %s: grade %s (scale %s) = %u on the common",
             sz->code, sz->name, t->uscc, t->grade, scale->name, common_rank);
    demo_result_line(vout, "OK:", line, sizeof line);
    bool ok = demo_tally(d, vrc == BG_EXIT_OK && strncmp(line, want, strlen(want)) == 0);
    printf("   %s\n   %s\n", line,
           ok ? "ok" : "WRONG: expected it to verify with the grades above");
    return ok;
}

static int
ask_grades(demo *d, const char *ids, const char *att_dir, const char *out)
{
    char gw[DEMO_PATH];
    if (!demo_path(gw, sizeof gw, "%s/%s", d->dir, demo_cities[GZ].code))
        return BG_EXIT_ERROR;
    const char *const q[] = {"query",     "--dir",        gw,      "--peer", demo_cities[SZ].code,
                             "--purpose", "supervision",  "--in",  ids,      "--grades",
                             "--csv",     "--attest-dir", att_dir, NULL};
    if (demo_capture(d, q, out) == BG_EXIT_ERROR)
        return bg_cli_fail("demo", "the query failed; see %s", out);
    return BG_EXIT_OK;
}

int
demo_recognise_act(demo *d)
{
    const demo_city *gz = &demo_cities[GZ], *sz = &demo_cities[SZ];
    char ids[DEMO_PATH], out[DEMO_PATH], att_dir[DEMO_PATH], status[DEMO_PATH], att[DEMO_PATH];
    if (!demo_path(ids, sizeof ids, "%s/data/recognition.ids", d->dir) ||
        !demo_path(out, sizeof out, "%s/recognition.csv", d->dir) ||
        !demo_path(att_dir, sizeof att_dir, "%s/attest-%s-before", d->dir, gz->code) ||
        !demo_path(status, sizeof status, "%s/%s.status", att_dir, sz->code))
        return BG_EXIT_ERROR;
    bg_scale scale, gz_scale;
    bg_err err = {0};
    if (bg_scale_parse(sz->scale, &scale, &err) != BG_OK ||
        bg_scale_parse(gz->scale, &gz_scale, &err) != BG_OK)
        return bg_cli_fail("demo", "the demo's scales: %s", err.msg);

    printf("\n6. Mutual recognition of evaluations. Shenzhen grades on its own scale, %s;\n"
           "   Guangzhou on %s. Guangzhou asks Shenzhen for the grades of a few of its\n"
           "   enterprises (one of each of Shenzhen's grades, among those Shenzhen has\n"
           "   evaluated and that are in force) with attestations: Shenzhen's grade, sealed\n"
           "   in the snapshot it signed, and its meaning on the common scale per the roster.\n",
           sz->scale, gz->scale);
    struct pick_ctx pc;
    memset(&pc, 0, sizeof pc);
    size_t npicks = 0;
    int rc = pick_recognition(d, &scale, &pc);
    if (rc == BG_EXIT_OK)
        rc = write_picks(ids, &pc, &scale, &npicks);
    if (rc != BG_EXIT_OK)
        return rc;
    if (npicks == 0) {
        printf("   (skipped: no enterprise of Guangzhou's has an evaluation by Shenzhen in force\n"
               "   today; try a larger --count)\n");
        return BG_EXIT_OK;
    }
    if (ask_grades(d, ids, att_dir, out) != BG_EXIT_OK)
        return BG_EXIT_ERROR;
    int target = -1;
    uint64_t target_serial = 0;
    check_grades(d, out, &pc, &scale, &target, &target_serial);
    print_own_scale(&scale, &gz_scale);
    if (target < 0) {
        printf("   No grade came back attested: nothing to verify offline or repair.\n");
        return BG_EXIT_FAIL;
    }

    const pick *t = &pc.by_grade[target];
    if (!demo_path(att, sizeof att, "%s/%s-%s.att", att_dir, sz->code, t->uscc))
        return BG_EXIT_ERROR;
    bool ok = verify_offline(d, att, status, t, &scale, sz->common[target]);

    demo_recognised *rec = &d->rec;
    rec->ok = true;
    snprintf(rec->uscc, sizeof rec->uscc, "%s", t->uscc);
    snprintf(rec->grade, sizeof rec->grade, "%s", t->grade);
    snprintf(rec->att, sizeof rec->att, "%s", att);
    rec->serial = target_serial;
    return ok ? BG_EXIT_OK : BG_EXIT_FAIL;
}
