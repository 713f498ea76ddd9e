/*
 * clock.h - the monotonic clock, for timeouts, deadlines and elapsed times: never
 * the wall clock, which an operator or NTP may step. (Times that go on the wire or
 * in the evidence log are wall-clock and come from elsewhere: bg_env_now_ms.)
 */
#ifndef BG_CLOCK_H
#define BG_CLOCK_H

#include <stdint.h>

/* Milliseconds and microseconds since an arbitrary fixed point (CLOCK_MONOTONIC). */
int64_t bg_clock_ms(void);
int64_t bg_clock_us(void);

#endif
