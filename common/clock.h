/*
 * clock.h - the monotonic clock, for timeouts, deadlines and elapsed times: never
 * the wall clock, which an operator or NTP may step; and the wall clock, for times
 * that go on the wire, in the evidence log or in a file (bg_env_now_ms is this one).
 */
#ifndef BG_CLOCK_H
#define BG_CLOCK_H

#include <stdint.h>

/* Milliseconds and microseconds since an arbitrary fixed point (CLOCK_MONOTONIC). */
int64_t bg_clock_ms(void);
int64_t bg_clock_us(void);

/* Milliseconds since the Unix epoch (CLOCK_REALTIME). */
int64_t bg_clock_wall_ms(void);

#endif
