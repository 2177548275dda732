/* clock.h -- the two clocks palaver reads.
 *
 * Threads: any (each call reads the kernel's clock; no state).
 */
#ifndef PALAVER_CLOCK_H
#define PALAVER_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Milliseconds since the Unix epoch (wall clock, for protocol dates). */
int64_t pv_now_ms(void);

/* Monotonic nanoseconds (for intervals, deadlines and rates). */
uint64_t pv_mono_ns(void);

/* CLOCK_MONOTONIC now + ms, for the timed waits that take an absolute
 * time (sem_clockwait, pthread_cond_timedwait on a monotonic condvar). */
struct timespec pv_mono_deadline(unsigned ms);

#endif
