/* tsan.h -- happens-before annotations for ThreadSanitizer.
 *
 * The lock-free queues palaverd uses (liburcu's wfcqueue: the event
 * queue, the writers' ready queue, the store's queues) live in an
 * uninstrumented shared library, so ThreadSanitizer cannot see the
 * ordering they provide. Around each operation we therefore state it: a
 * producer releases on the structure before it enqueues, the consumer
 * acquires on it after a successful dequeue. In other builds these are
 * no-ops.
 */
#ifndef PALAVER_TSAN_H
#define PALAVER_TSAN_H

#if defined(__SANITIZE_THREAD__)
#define PV_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define PV_TSAN 1
#endif
#endif

#ifdef PV_TSAN
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);
#define pv_tsan_acquire(p) __tsan_acquire((void *)(p))
#define pv_tsan_release(p) __tsan_release((void *)(p))
#else
#define pv_tsan_acquire(p) ((void)(p))
#define pv_tsan_release(p) ((void)(p))
#endif

#endif
