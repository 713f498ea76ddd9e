/*
 * demo_psi.c - act 5: Guangzhou asks Shenzhen and Foshan, by private set
 * intersection, about its own enterprises (membership, grades, a count), and
 * every answer is checked against the answering city's store.
 */
#include "gateway/demo/demo_int.h"

#include <stdio.h>
#include <string.h>

#include "gateway/cmdline/cmdline.h"

enum { Q_MEMBERSHIP, Q_GRADES, Q_COUNT };

typedef struct psi_query {
    const char *title, *list, *flag;
    int kind;
} psi_query;

static const psi_query queries[] = {
    {"Which of Guangzhou's enterprises are on their serious-dishonesty lists?",
     "serious-dishonesty", NULL, Q_MEMBERSHIP},
    {"Which of them have they graded, and how (the 'grades' list, sealed payloads)?", NULL,
     "--grades", Q_GRADES},
    {"How many of them are on their abnormal-operation lists (count only)?", "abnormal-operation",
     "--count", Q_COUNT},
};

/* What Guangzhou asks: all its ids, and at most 100000 for counts (a count
 * answer must fit one message). */
typedef struct psi_ask {
    char gw[DEMO_PATH], ids[DEMO_PATH], cids[DEMO_PATH], out[DEMO_PATH];
    demo_set asked, casked;
    size_t checked, wrong;
} psi_ask;

/* Expected = asked ∩ truth (with truth's grades); true iff got equals it exactly. */
static bool
matches_truth(const demo_set *asked, const demo_set *truth, const demo_set *got, bool grades,
              size_t *expected)
{
    size_t n = 0;
    bool same = true;
    for (size_t i = 0; i < asked->n; i++) {
        const char *g = demo_set_find(truth, asked->code[i]);
        if (g == NULL)
            continue;
        n++;
        const char *h = demo_set_find(got, asked->code[i]);
        if (h == NULL || (grades && strcmp(g, h) != 0))
            same = false;
    }
    *expected = n;
    return same && got->n == n;
}

static size_t
count_in(const demo_set *asked, const demo_set *truth)
{
    size_t n = 0;
    for (size_t i = 0; i < asked->n; i++)
        n += demo_set_find(truth, asked->code[i]) != NULL;
    return n;
}

/* One peer's answer to q against its store; BG_EXIT_ERROR if the store is unreadable. */
static int
check_peer(demo *d, psi_ask *k, const psi_query *q, size_t p)
{
    demo_set truth = {0};
    const char *list = q->kind == Q_GRADES  ? NULL
                       : q->kind == Q_COUNT ? "abnormal-operation"
                                            : q->list;
    int rc = demo_load_truth(d, demo_cities[p].code, list, &truth);
    if (rc != BG_EXIT_OK)
        return rc;
    demo_answer pa;
    demo_read_answer(k->out, demo_cities[p].code, &pa);
    bool right = false;
    size_t expected = 0;
    if (!pa.ok) {
        printf("     %-10s did NOT answer (see %s)\n", demo_cities[p].name, k->out);
    } else if (q->kind == Q_COUNT) {
        expected = count_in(&k->casked, &truth);
        right = pa.count == expected;
        printf("     %-10s epoch %llu: %llu of %zu asked   (truth: %zu)  %s\n", demo_cities[p].name,
               (unsigned long long)pa.epoch, (unsigned long long)pa.count, k->casked.n, expected,
               right ? "ok" : "WRONG");
    } else {
        right = matches_truth(&k->asked, &truth, &pa.got, q->kind == Q_GRADES, &expected);
        char example[64] = "";
        if (pa.got.n > 0)
            snprintf(example, sizeof example, ", e.g. %.18s%s%s", pa.got.code[0],
                     q->kind == Q_GRADES ? " grade " : "",
                     q->kind == Q_GRADES ? pa.got.grade[0] : "");
        printf("     %-10s epoch %llu: %zu of %zu asked%s   (truth: %zu)  %s\n",
               demo_cities[p].name, (unsigned long long)pa.epoch, pa.got.n, k->asked.n, example,
               expected, right ? "ok" : "WRONG");
    }
    k->checked++;
    k->wrong += !right;
    demo_set_free(&pa.got);
    demo_set_free(&truth);
    return BG_EXIT_OK;
}

static int
ask(demo *d, psi_ask *k, const psi_query *q)
{
    printf("\n   %s\n", q->title);
    const char *args[16];
    size_t a = 0;
    args[a++] = "query";
    args[a++] = "--dir";
    args[a++] = k->gw;
    args[a++] = "--peer";
    args[a++] = "all";
    args[a++] = "--purpose";
    args[a++] = "supervision";
    args[a++] = "--in";
    args[a++] = q->kind == Q_COUNT ? k->cids : k->ids;
    if (q->list != NULL) {
        args[a++] = "--list";
        args[a++] = q->list;
    }
    if (q->flag != NULL)
        args[a++] = q->flag;
    args[a++] = "--csv";
    args[a] = NULL;
    if (demo_capture(d, args, k->out) == BG_EXIT_ERROR)
        return bg_cli_fail("demo", "the query failed; see %s", k->out);
    for (size_t p = 1; p < NDEMO; p++)
        if (check_peer(d, k, q, p) != BG_EXIT_OK)
            return BG_EXIT_ERROR;
    return BG_EXIT_OK;
}

static int
prepare(demo *d, psi_ask *k)
{
    const char *gz = demo_cities[GZ].code;
    char csv[DEMO_PATH];
    if (!demo_path(csv, sizeof csv, "%s/data/%s.csv", d->dir, gz) ||
        !demo_path(k->ids, sizeof k->ids, "%s/data/%s.ids", d->dir, gz) ||
        !demo_path(k->cids, sizeof k->cids, "%s/data/%s.count.ids", d->dir, gz) ||
        !demo_path(k->gw, sizeof k->gw, "%s/%s", d->dir, gz) ||
        !demo_path(k->out, sizeof k->out, "%s/query.csv", d->dir))
        return BG_EXIT_ERROR;
    int rc = demo_write_ids(csv, k->ids, SIZE_MAX, &k->asked);
    if (rc == BG_EXIT_OK)
        rc = demo_write_ids(csv, k->cids, 100000, &k->casked);
    return rc;
}

int
demo_psi_act(demo *d)
{
    printf("\n5. Private set intersection. Guangzhou asks Shenzhen and Foshan about its own\n"
           "   enterprises; they never learn which ones it asked about, and it learns\n"
           "   nothing about enterprises it did not ask about. Each answering gateway has\n"
           "   published a signed snapshot of every list (OPRF tags under a key only it\n"
           "   holds); Guangzhou fetches and verifies it, then asks with blinded ids.\n");
    /* Published: its three lists in its log. */
    for (size_t i = 0; i < NDEMO; i++)
        if (!demo_wait_log(d, demo_cities[i].code, " psi.published ", 2, 120, NULL, 0))
            return bg_cli_fail("demo", "the %s gateway did not publish its lists",
                               demo_cities[i].name);

    psi_ask k;
    memset(&k, 0, sizeof k);
    int rc = prepare(d, &k);
    for (size_t q = 0; rc == BG_EXIT_OK && q < sizeof queries / sizeof queries[0]; q++)
        rc = ask(d, &k, &queries[q]);
    demo_set_free(&k.asked);
    demo_set_free(&k.casked);
    d->checks += (unsigned)k.checked;
    d->failed += (unsigned)k.wrong;
    if (rc != BG_EXIT_OK)
        return rc;
    if (k.wrong == 0)
        printf("\n   All %zu answers match the ground truth (the answering cities' stores).\n",
               k.checked);
    else
        printf("\n   %zu of %zu answers do NOT match the ground truth.\n", k.wrong, k.checked);
    return k.wrong == 0 ? BG_EXIT_OK : BG_EXIT_FAIL;
}
