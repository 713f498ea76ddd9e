/*
 * list.h - the credit lists a city publishes, and the "grades" pseudo-list.
 *
 * A list is named by a fixed string; its index (BG_LIST_*) is what data
 * structures store. "grades" is not a list in the data format or the roster:
 * it names the graded snapshot of evaluations that askers query like a list.
 */
#ifndef BG_LIST_H
#define BG_LIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { BG_LIST_SERIOUS_DISHONESTY, BG_LIST_ABNORMAL_OPERATION, BG_LIST_COUNT };

/* "serious-dishonesty", "abnormal-operation". */
extern const char *const bg_list_names[BG_LIST_COUNT];

/* The pseudo-list of evaluations, queried in graded mode. */
#define BG_LIST_GRADES "grades"

/* Index of a list name of len bytes, or -1. */
int bg_list_index(const char *name, size_t len);

/* A list entry is in force on day today unless it has an expiry date (anything but
 * INT32_MIN, "none") on or before today: it stops matching on its expires_at day. */
bool bg_list_entry_in_force(int32_t expires_at, int32_t today);

#endif
