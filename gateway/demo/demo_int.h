/*
 * demo_int.h - inside the demo (demo.h): the three cities, the state the acts
 * share, the steps they run and the files they read back.
 *
 * Layers inside the folder: demo_cities (data only); demo_step (running commands,
 * reading their output), which calls nothing else here; demo_truth (what the stores
 * hold, what the queries answered), which calls demo_step; each act file calls only
 * those; demo.c calls the acts in order.
 * Functions return an exit status (cli.h) unless they say otherwise; a failed
 * check is counted with demo_tally and does not stop the tour, an operational
 * error (BG_EXIT_ERROR, its message on stderr) does.
 */
#ifndef BG_DEMO_INT_H
#define BG_DEMO_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "domain/scale.h"
#include "domain/uscc.h"
#include "gateway/record/csv.h"
#include "mpc/snapshot.h"

#define DEMO_PATH 4096
#define DEMO_FEDERATION_NAME "Greater Bay Area Credit Federation"

typedef struct demo_city {
    const char *code;
    const char *name;
    const char *share_with; /* whose enterprises some of its rows reuse */
    const char *scale;      /* its own grade scale, best first: its store's and the roster's */
    unsigned common[BG_SCALE_MAX_GRADES]; /* the common rank of each grade of scale */
    /* The generator writes A..D; a city with another scale gets each of them as one of
     * two grades of its own (chosen by the USCC's last character), or as is if NULL. */
    const char *from_gen[4][2];
} demo_city;

#define NDEMO 3
extern const demo_city demo_cities[NDEMO];
#define GZ 0 /* indexes in demo_cities */
#define SZ 1
#define DEMO_MAX_PICKS BG_SCALE_MAX_GRADES

/* What act 6 hands to act 7: one of Shenzhen's evaluations Guangzhou holds
 * attested, with the attestation file saved by the query. */
typedef struct demo_recognised {
    bool ok;
    char uscc[BG_USCC_LEN + 1];
    char grade[BG_GRADE_MAX + 1];
    uint64_t serial;
    char att[DEMO_PATH];
} demo_recognised;

typedef struct demo {
    const char *dir;
    char self[DEMO_PATH]; /* this binary, to run the steps as commands */
    char log[DEMO_PATH];  /* where quiet commands write */
    int ports[NDEMO];
    pid_t gateways[NDEMO];
    unsigned checks, failed; /* every check the tour made, and how many failed */
    demo_recognised rec;
} demo;

/* --- demo_step.c: paths, commands, their output --- */

/* Formats a path; one that does not fit is an error (message on stderr), never a
 * silent cut. */
bool demo_path(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Spawns this binary with args (NULL-terminated); stdout and stderr appended to
 * out_path if not NULL. The pid, or -1. */
pid_t demo_spawn(demo *d, const char *const *args, const char *out_path);

/* How a step appears: not at all, as the command line only (its output goes to
 * the demo log), or with its output. */
enum { DEMO_QUIET, DEMO_ECHO, DEMO_SHOW };

/* Runs one step, echoing it like a shell would; returns its exit status. */
int demo_run(demo *d, int mode, const char *const *args);

/* Runs a step echoed, its output (stdout and stderr) into path, for the demo to
 * read; returns its exit status. */
int demo_capture(demo *d, const char *const *args, const char *path);

/* The same, not echoed (a step polled until it shows something). */
int demo_capture_silent(demo *d, const char *const *args, const char *path);

/* Runs a step; returns from the calling act with BG_EXIT_ERROR if it fails. */
#define DEMO_RUN(d, mode, ...)                                                                     \
    do {                                                                                           \
        const char *const args_[] = {__VA_ARGS__, NULL};                                           \
        if (demo_run((d), (mode), args_) != 0)                                                     \
            return bg_cli_fail("demo", "step failed: %s %s (see %s)", args_[0], args_[1],          \
                               (d)->log);                                                          \
    } while (0)

/* Counts one check of the tour; returns ok. */
bool demo_tally(demo *d, bool ok);

/* A whole (small) text file, NUL-terminated; NULL if unreadable. Free it. */
char *demo_slurp(const char *path);

/* The first line of a file (a command's one-line result), without its line end. */
void demo_first_line(const char *path, char *out, size_t size);

/* The first line of path that starts with prefix, or else its first line. */
void demo_result_line(const char *path, const char *prefix, char *out, size_t size);

/* Copies a small file (a roster, a CRL) crash-safely. */
int demo_copy_file(const char *from, const char *to);

/* How many lines of a city's gateway log hold event (" name "); the last in last
 * (if not NULL). -1 if the path does not fit. */
int demo_log_count(demo *d, const char *code, const char *event, char *last, size_t last_size);

/* Waits up to timeout_s until a gateway's log holds more than more_than event lines. */
bool demo_wait_log(demo *d, const char *code, const char *event, int more_than, int timeout_s,
                   char *last, size_t last_size);

/* --- demo_truth.c: the stores' ground truth and the answers read back --- */

/* Calls fn with every well-formed record of a CSV file (the header too) until it
 * returns false; malformed records are skipped. false if the file cannot be read. */
bool demo_csv_each(const char *path, bool (*fn)(void *ctx, const bg_csv_field *f, size_t n),
                   void *ctx);

/* A sorted set of canonical USCCs (18 bytes each) with an optional grade. */
typedef struct demo_set {
    char (*code)[BG_USCC_LEN];
    char (*grade)[BG_SNAP_GRADE_MAX + 1];
    size_t n, cap;
} demo_set;

bool demo_set_add(demo_set *s, const char *code, const char *grade);
/* Sorts by code and drops repeats; false when out of memory. */
bool demo_set_sort(demo_set *s);
/* The grade stored with code ("" if none), or NULL if code is not in s. */
const char *demo_set_find(const demo_set *s, const char *code);
void demo_set_free(demo_set *s);

/* What a city's store holds on list (NULL: its evaluations): the ground truth the
 * city's gateway publishes (the generated file minus rows the import refused, and
 * list entries that have expired). */
int demo_load_truth(demo *d, const char *code, const char *list, demo_set *out);

/* Every entry of list in a city's store, expired ones too, into out (unsorted). */
int demo_load_all(demo *d, const char *code, const char *list, demo_set *out);

/* Guangzhou's own enterprises: the uscc cells of its generated file (at most limit),
 * written as they are to ids (if not NULL), the valid ones normalised into valid.
 * Rows the import refused stay in: the gateway reports invalid ones, never sends them. */
int demo_write_ids(const char *csv, const char *ids, size_t limit, demo_set *valid);

/* One peer's answer from a query's CSV: its matched codes (with grades), or count. */
typedef struct demo_answer {
    bool ok;
    uint64_t epoch, count;
    demo_set got;
} demo_answer;

void demo_read_answer(const char *path, const char *peer, demo_answer *a);

/* One row of `baygate query --grades --csv` for a peer and an enterprise. */
typedef struct demo_graded {
    bool found; /* a row for this enterprise */
    char grade[BG_GRADE_MAX + 1], scale[64], common[64], error[256];
    uint64_t serial;
    bool attested;
} demo_graded;

void demo_read_graded(const char *path, const char *peer, const char *uscc, demo_graded *g);

/* The name a city's generated file gives an enterprise (canonical USCC). */
bool demo_csv_name(const char *csv, const char *uscc, char *name, size_t size);

/* --- the acts, in order --- */

int demo_pki_act(demo *d);                                               /* 1 */
int demo_data_act(demo *d, uint64_t count, uint64_t seed, double dirty); /* 2 */
int demo_start_act(demo *d);                                             /* 3 */
int demo_ping_act(demo *d);                                              /* 4 */
int demo_psi_act(demo *d);                                               /* 5 */
int demo_recognise_act(demo *d);                                         /* 6 */
int demo_repair_act(demo *d);                                            /* 7 */
int demo_evidence_act(demo *d);                                          /* 8 */
int demo_rogue_act(demo *d);                                             /* 9 */
int demo_stop_act(demo *d);                                              /* 10 */

#endif
