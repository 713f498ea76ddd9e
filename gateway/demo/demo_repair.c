/*
 * demo_repair.c - act 7: Shenzhen re-evaluates the enterprise act 6 verified (a
 * one-row import); its gateway republishes and revokes the old record, and
 * Guangzhou and Foshan both see the new grade while the old attestation fails.
 */
#include "gateway/demo/demo_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "domain/date.h"
#include "gateway/cmdline/cmdline.h"
#include "gateway/record/record.h"

/* Guangzhou and Foshan each ask Shenzhen again: the new grade, attested, and the
 * old attestation revoked. BG_EXIT_FAIL if a check failed. */
static int
ask_again(demo *d, size_t asker, const char *ids, const char *new_grade, unsigned common)
{
    const demo_city *sz = &demo_cities[SZ], *a = &demo_cities[asker];
    const demo_recognised *rec = &d->rec;
    char gw[DEMO_PATH], out[DEMO_PATH], att_dir[DEMO_PATH], status[DEMO_PATH], ca[DEMO_PATH],
        pb[DEMO_PATH], vout[DEMO_PATH];
    if (!demo_path(gw, sizeof gw, "%s/%s", d->dir, a->code) ||
        !demo_path(out, sizeof out, "%s/repair-%s.csv", d->dir, a->code) ||
        !demo_path(att_dir, sizeof att_dir, "%s/attest-%s-after", d->dir, a->code) ||
        !demo_path(status, sizeof status, "%s/%s.status", att_dir, sz->code) ||
        !demo_path(ca, sizeof ca, "%s/federation-ca/ca.crt", d->dir) ||
        !demo_path(pb, sizeof pb, "%s/roster.pb", d->dir) ||
        !demo_path(vout, sizeof vout, "%s/attest-verify.txt", d->dir))
        return BG_EXIT_ERROR;
    printf("\n   %s asks Shenzhen:\n", a->name);
    const char *const q[] = {"query",     "--dir",        gw,      "--peer", sz->code,
                             "--purpose", "supervision",  "--in",  ids,      "--grades",
                             "--csv",     "--attest-dir", att_dir, NULL};
    if (demo_capture(d, q, out) == BG_EXIT_ERROR)
        return bg_cli_fail("demo", "the query failed; see %s", out);
    demo_graded r;
    demo_read_graded(out, sz->code, rec->uscc, &r);
    char want[16];
    snprintf(want, sizeof want, "%u", common);
    /* A changed record gets a new serial: that is what lets the old one be revoked. */
    bool right =
        demo_tally(d, r.found && strcmp(r.grade, new_grade) == 0 && strcmp(r.common, want) == 0 &&
                          r.attested && r.serial != rec->serial);
    if (r.found)
        printf("     sees grade %s (scale %s) = common %s, %s, serial %llu (was %llu)   %s\n",
               r.grade, r.scale, r.common, r.attested ? "attested" : "unattested",
               (unsigned long long)r.serial, (unsigned long long)rec->serial,
               right ? "ok" : "WRONG");
    else
        printf("     no answer for %s%s%s   WRONG\n", rec->uscc, r.error[0] ? ": " : "", r.error);
    if (r.found && !right)
        printf("     expected grade %s = common %s, attested, under a new serial\n", new_grade,
               want);

    printf("   The old attestation (Guangzhou's file from act 6) against the status list\n"
           "   %s just received:\n",
           a->name);
    const char *const v[] = {"attest",   "verify", rec->att,   "--ca", ca,
                             "--roster", pb,       "--status", status, NULL};
    int vrc = demo_capture(d, v, vout);
    char line[1024], revoked[64];
    demo_first_line(vout, line, sizeof line);
    snprintf(revoked, sizeof revoked, "serial %llu revoked", (unsigned long long)rec->serial);
    bool gone = demo_tally(d, vrc == BG_EXIT_FAIL && strncmp(line, "FAIL: ", 6) == 0 &&
                                  strstr(line, revoked) != NULL);
    printf("     %s   %s\n", line, gone ? "ok (revoked)" : "WRONG: it must fail as revoked");
    return right && gone ? BG_EXIT_OK : BG_EXIT_FAIL;
}

/* The one-row import file (the enterprise's name as Shenzhen's file has it) and the
 * one-id query file. */
static int
write_repair(demo *d, const char *fix, const char *ids, const char *new_grade)
{
    const demo_recognised *rec = &d->rec;
    char csv[DEMO_PATH], name[BG_NAME_MAX + 1], cell[BG_CSV_CELL_MAX(BG_NAME_MAX) + 1], today[11],
        until[11];
    if (!demo_path(csv, sizeof csv, "%s/data/%s.csv", d->dir, demo_cities[SZ].code))
        return BG_EXIT_ERROR;
    int32_t day = bg_date_today();
    bg_date_format(day, today);
    bg_date_format(day + 365, until);
    if (!demo_csv_name(csv, rec->uscc, name, sizeof name))
        return bg_cli_fail("demo", "%s is not in %s", rec->uscc, csv);
    size_t n = bg_csv_cell(cell, name, strlen(name));
    FILE *f = fopen(fix, "w");
    if (f != NULL)
        fprintf(f, "uscc,name,grade,evaluated_at,valid_until\n%s,%.*s,%s,%s,%s\n", rec->uscc,
                (int)n, cell, new_grade, today, until);
    if (f == NULL || fclose(f) != 0)
        return bg_cli_fail("demo", "cannot write %s", fix);
    f = fopen(ids, "w");
    if (f == NULL || fprintf(f, "%s\n", rec->uscc) < 0 || fclose(f) != 0)
        return bg_cli_fail("demo", "cannot write %s", ids);

    printf("\n   %s (%s): grade %s -> %s, evaluated %s, valid until %s\n", rec->uscc, name,
           rec->grade, new_grade, today, until);
    return BG_EXIT_OK;
}

/* Shenzhen imports the fix; its gateway must notice and publish a new status list. */
static int
import_repair(demo *d, const char *fix)
{
    const char *sz = demo_cities[SZ].code;
    char store_dir[DEMO_PATH], iout[DEMO_PATH];
    if (!demo_path(store_dir, sizeof store_dir, "%s/%s/data", d->dir, sz) ||
        !demo_path(iout, sizeof iout, "%s/repair-import.json", d->dir))
        return BG_EXIT_ERROR;
    int before = demo_log_count(d, sz, " attest.status_published ", NULL, 0);
    const char *const imp[] = {"import", "--data-dir", store_dir, "--json", fix, NULL};
    int irc = demo_capture(d, imp, iout);
    char *json = demo_slurp(iout);
    bool updated =
        demo_tally(d, irc == BG_EXIT_OK && json != NULL && strstr(json, "\"updated\":1,") != NULL);
    free(json);
    printf("   %s\n", updated
                          ? "Shenzhen's store: 1 evaluation replaced (a new record, a new serial)"
                          : "the import did NOT replace the evaluation");
    if (!updated)
        return BG_EXIT_FAIL;
    char last[2048] = "";
    bool published = demo_tally(
        d, demo_wait_log(d, sz, " attest.status_published ", before, 60, last, sizeof last));
    const char *ev = strstr(last, "attest.status_published");
    if (ev != NULL)
        ev += strlen("attest.status_published ");
    last[strcspn(last, "\r\n")] = '\0';
    if (published)
        printf("   Shenzhen's gateway noticed the import; its log: status list published, %s\n",
               ev != NULL ? ev : last);
    else
        printf("   Shenzhen's gateway published no new status list within 60 s: WRONG\n");
    return published ? BG_EXIT_OK : BG_EXIT_FAIL;
}

int
demo_repair_act(demo *d)
{
    const demo_city *sz = &demo_cities[SZ];
    const demo_recognised *rec = &d->rec;
    printf("\n7. A repair that propagates. The enterprise with the worst grade above puts\n"
           "   things right (整改) and Shenzhen re-evaluates it: a one-row import. Its\n"
           "   gateway republishes its lists and a signed status list revoking the old\n"
           "   record, so the old attestation stops verifying everywhere.\n");
    if (!rec->ok) {
        printf("   (skipped: act 6 left no attested evaluation to repair)\n");
        return BG_EXIT_OK;
    }
    char fix[DEMO_PATH], ids[DEMO_PATH];
    if (!demo_path(fix, sizeof fix, "%s/data/%s-repair.csv", d->dir, sz->code) ||
        !demo_path(ids, sizeof ids, "%s/data/repair.ids", d->dir))
        return BG_EXIT_ERROR;
    bg_scale scale;
    bg_err err = {0};
    if (bg_scale_parse(sz->scale, &scale, &err) != BG_OK)
        return bg_cli_fail("demo", "Shenzhen's scale: %s", err.msg);
    int old = bg_scale_index(&scale, rec->grade, strlen(rec->grade));
    if (old < 0)
        return bg_cli_fail("demo", "grade %s is not in %s", rec->grade, sz->scale);
    /* One grade better; the best grade can only be re-rated down. */
    size_t better = old > 0 ? (size_t)old - 1 : 1;
    const char *new_grade = scale.grades[better];
    int rc = write_repair(d, fix, ids, new_grade);
    if (rc == BG_EXIT_OK)
        rc = import_repair(d, fix);
    if (rc != BG_EXIT_OK)
        return rc;

    int wrong = 0;
    for (size_t asker = GZ; asker < NDEMO; asker++) {
        if (asker == SZ)
            continue;
        int w = ask_again(d, asker, ids, new_grade, sz->common[better]);
        if (w == BG_EXIT_ERROR)
            return w;
        wrong += w != BG_EXIT_OK;
    }
    return wrong == 0 ? BG_EXIT_OK : BG_EXIT_FAIL;
}
