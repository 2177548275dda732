/* tsan.h -- happens-before annotations for ThreadSanitizer.
 *
 * Concurrency Kit implements its atomics with inline assembly and volatile
 * accesses, which ThreadSanitizer cannot see. Around each ck_ring operation
 * we therefore state the ordering the ring provides: a producer releases on
 * the ring before it enqueues, and the consumer acquires on it after a
 * successful dequeue. tests/tsan.supp silences the ring's own internal
 * accesses (and only those). In other builds these are no-ops.
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
