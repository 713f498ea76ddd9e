/*
 * quota.h - items asked per asker per UTC day, kept in <data_dir>/quota (one line per
 * asker: "city day used"), replaced atomically after every charge, so a restart does
 * not hand an asker a fresh day's quota. A charge is written before its items are
 * answered; an unreadable file is reported and counted from zero. The policy
 * (policy.h) says what an asker's limit is; this file only counts.
 */
#ifndef BG_QUOTA_H
#define BG_QUOTA_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "peers/roster.h"

typedef struct gw_quota {
    pthread_mutex_t lock;
    struct {
        char city[BG_CITY_CODE_LEN + 1];
        int64_t day;
        uint64_t used;
    } used[BG_ROSTER_MAX_MEMBERS];
    size_t n;
    uint64_t version;          /* charges made (under lock) */
    pthread_mutex_t file_lock; /* one writer at a time; newest state wins */
    uint64_t written;          /* version on disk (under file_lock) */
    char path[4096 + 16];      /* "" = not persisted */
} gw_quota;

/* Loads data_dir/quota (data_dir NULL: memory only); never fails, logs a bad file. */
void gw_quota_init(gw_quota *q, const char *data_dir);
void gw_quota_destroy(gw_quota *q);

/* Charges items to city for today (only checks, when !charge). Nothing is kept on
 * BG_ELIMIT (that would pass limit) nor on BG_EIO (the charge could not be saved: an
 * answer is never given on a charge a restart would forget; err names the disk's error,
 * never the path, since it goes to the asker). *used: the city's items today. */
int gw_quota_take(gw_quota *q, const char *city, uint64_t items, uint64_t limit, bool charge,
                  uint64_t *used, bg_err *err);

/* Gives back items charged to city today for an answer that never left (saved like a
 * charge; a failure to save is logged, the memory count given back anyway). */
void gw_quota_refund(gw_quota *q, const char *city, uint64_t items);

/* The items city was charged today (0 if none), for status. */
uint64_t gw_quota_used(gw_quota *q, const char *city);

#endif
