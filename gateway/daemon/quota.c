/*
 * quota.c - per-asker daily item counts, persisted (see quota.h).
 */
#include "gateway/daemon/quota.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/file.h"
#include "gateway/daemon/log.h"

#define QUOTA_FILE_MAX (BG_ROSTER_MAX_MEMBERS * 64)

void
gw_quota_init(gw_quota *q, const char *data_dir)
{
    memset(q, 0, sizeof *q);
    pthread_mutex_init(&q->lock, NULL);
    pthread_mutex_init(&q->file_lock, NULL);
    if (data_dir == NULL ||
        snprintf(q->path, sizeof q->path, "%s/quota", data_dir) >= (int)sizeof q->path) {
        q->path[0] = '\0';
        return;
    }
    if (mkdir(data_dir, 0700) != 0 && errno != EEXIST) /* before the first import */
        bg_log(BG_LOG_WARN, "quota.no_dir", "data_dir=%s error=\"%s\"", data_dir, strerror(errno));
    uint8_t *buf = NULL;
    size_t len = 0;
    bg_err err = {0};
    int rc = bg_file_read(q->path, QUOTA_FILE_MAX, &buf, &len, NULL, &err);
    if (rc == BG_ENOTFOUND)
        return;
    if (rc != BG_OK) {
        bg_log(BG_LOG_WARN, "quota.unreadable", "error=\"%s\" effect=\"counted from zero\"",
               err.msg);
        return;
    }
    /* Strict: a line that does not parse throws the whole file away, loudly. */
    char *text = (char *)buf, *save = NULL;
    size_t line = 0;
    bool bad = memchr(buf, '\0', len) != NULL;
    for (char *l = bad ? NULL : strtok_r(text, "\n", &save); l != NULL && !bad;
         l = strtok_r(NULL, "\n", &save)) {
        line++;
        char city[BG_CITY_CODE_LEN + 2];
        long long day;
        unsigned long long used;
        int end = 0;
        if (sscanf(l, "%7s %lld %llu%n", city, &day, &used, &end) != 3 || l[end] != '\0' ||
            strlen(city) != BG_CITY_CODE_LEN || q->n == BG_ROSTER_MAX_MEMBERS) {
            bad = true;
            break;
        }
        memcpy(q->used[q->n].city, city, BG_CITY_CODE_LEN + 1); /* length checked above */
        q->used[q->n].day = day;
        q->used[q->n].used = used;
        q->n++;
    }
    free(buf);
    if (bad) {
        bg_log(BG_LOG_WARN, "quota.unreadable",
               "path=%s line=%zu error=\"not 'city day used'\" effect=\"counted from zero\"",
               q->path, line);
        q->n = 0;
    }
}

void
gw_quota_destroy(gw_quota *q)
{
    pthread_mutex_destroy(&q->lock);
    pthread_mutex_destroy(&q->file_lock);
}

/* Writes the state of version v (text in buf) unless a newer one is already on disk.
 * 0, or the errno of the failed write (logged here with the path, which a peer's
 * refusal must not carry). */
static int
quota_persist(gw_quota *q, uint64_t v, const char *buf, size_t len)
{
    int failed = 0;
    pthread_mutex_lock(&q->file_lock);
    if (v > q->written) {
        bg_err err = {0};
        errno = 0;
        if (bg_file_write_replace(q->path, buf, len, 0600, &err) == BG_OK) {
            q->written = v;
        } else {
            failed = errno != 0 ? errno : EIO;
            bg_log(BG_LOG_ERROR, "quota.not_saved", "error=\"%s\"", err.msg);
        }
    }
    pthread_mutex_unlock(&q->file_lock);
    return failed;
}

int
gw_quota_take(gw_quota *q, const char *city, uint64_t items, uint64_t limit, bool charge,
              uint64_t *used, bg_err *err)
{
    int64_t day = (int64_t)(time(NULL) / 86400);
    bool ok = false;
    char buf[QUOTA_FILE_MAX];
    size_t len = 0;
    uint64_t v = 0;
    pthread_mutex_lock(&q->lock);
    size_t i = 0;
    while (i < q->n && strcmp(q->used[i].city, city) != 0)
        i++;
    if (i == q->n && q->n < BG_ROSTER_MAX_MEMBERS) {
        snprintf(q->used[i].city, sizeof q->used[i].city, "%s", city);
        q->used[i].day = day;
        q->used[i].used = 0;
        q->n++;
    }
    if (i < q->n) {
        if (q->used[i].day != day) {
            q->used[i].day = day;
            q->used[i].used = 0;
        }
        ok = items <= limit && q->used[i].used <= limit - items;
        if (ok && charge) {
            q->used[i].used += items;
            v = ++q->version;
            for (size_t k = 0; k < q->n; k++)
                len += (size_t)snprintf(buf + len, sizeof buf - len, "%s %lld %llu\n",
                                        q->used[k].city, (long long)q->used[k].day,
                                        (unsigned long long)q->used[k].used);
        }
        *used = q->used[i].used;
    }
    pthread_mutex_unlock(&q->lock);
    if (!ok)
        return bg_err_set(
            err, BG_ELIMIT, "%s has used %llu of its %llu items today; %llu more refused", city,
            (unsigned long long)*used, (unsigned long long)limit, (unsigned long long)items);
    int failed = charge && q->path[0] != '\0' ? quota_persist(q, v, buf, len) : 0;
    if (failed != 0) {
        pthread_mutex_lock(&q->lock);
        q->used[i].used -= items; /* not saved: not charged, not answered */
        *used = q->used[i].used;
        pthread_mutex_unlock(&q->lock);
        return bg_err_set(err, BG_EIO,
                          "the answering gateway could not save the quota charge on its disk (%s); "
                          "nothing was answered or charged: ask again later",
                          strerror(failed));
    }
    return BG_OK;
}

void
gw_quota_refund(gw_quota *q, const char *city, uint64_t items)
{
    int64_t day = (int64_t)(time(NULL) / 86400);
    char buf[QUOTA_FILE_MAX];
    size_t len = 0;
    uint64_t v = 0;
    pthread_mutex_lock(&q->lock);
    for (size_t i = 0; i < q->n; i++) {
        if (strcmp(q->used[i].city, city) != 0 || q->used[i].day != day)
            continue;
        q->used[i].used -= items < q->used[i].used ? items : q->used[i].used;
        v = ++q->version;
        for (size_t k = 0; k < q->n; k++)
            len += (size_t)snprintf(buf + len, sizeof buf - len, "%s %lld %llu\n", q->used[k].city,
                                    (long long)q->used[k].day, (unsigned long long)q->used[k].used);
    }
    pthread_mutex_unlock(&q->lock);
    if (v != 0 && q->path[0] != '\0')
        quota_persist(q, v, buf, len);
}

uint64_t
gw_quota_used(gw_quota *q, const char *city)
{
    int64_t day = (int64_t)(time(NULL) / 86400);
    uint64_t used = 0;
    pthread_mutex_lock(&q->lock);
    for (size_t i = 0; i < q->n; i++)
        if (strcmp(q->used[i].city, city) == 0 && q->used[i].day == day)
            used = q->used[i].used;
    pthread_mutex_unlock(&q->lock);
    return used;
}
