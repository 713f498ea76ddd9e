/* clock.c - the monotonic and the wall clock (clock.h). */
#include "common/clock.h"

#include <time.h>

int64_t
bg_clock_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t
bg_clock_ms(void)
{
    return bg_clock_us() / 1000;
}

int64_t
bg_clock_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
