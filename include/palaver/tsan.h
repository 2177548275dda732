/* tsan.h -- happens-before annotations for ThreadSanitizer.
 *
 * The two lock-free structures palaverd uses hide their synchronisation
 * from ThreadSanitizer: Concurrency Kit's ring (the writers' ready ring)
 * uses inline assembly and volatile accesses, and liburcu's queue (the
 * event queue) lives in an uninstrumented shared library. Around each
 * operation we therefore state the ordering they provide: a producer
 * releases on the structure before it enqueues, the consumer acquires on
 * it after a successful dequeue. tests/tsan.supp silences ck_ring's own
 * internal accesses (and only those). In other builds these are no-ops.
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
