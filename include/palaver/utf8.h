/* utf8.h -- strict, incremental UTF-8 validation (RFC 3629).
 *
 * Rejects overlong forms, surrogates (U+D800..U+DFFF) and code points above
 * U+10FFFF, exactly as RFC 6455 requires of text frames. The validator is
 * incremental so a fragmented WebSocket message is checked fragment by
 * fragment and fails as soon as the first bad byte arrives, even when a
 * sequence is split across fragments.
 *
 * Threads: a struct pv_utf8 belongs to whoever holds it; the functions have
 * no shared state.
 */
#ifndef PALAVER_UTF8_H
#define PALAVER_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pv_utf8 {
    uint8_t need; /* continuation bytes still expected */
    uint8_t lo;   /* allowed range of the next continuation byte */
    uint8_t hi;
};

enum pv_utf8_result {
    PV_UTF8_OK = 0,         /* valid, and ends on a character boundary */
    PV_UTF8_INCOMPLETE = 1, /* valid so far, ends inside a sequence */
    PV_UTF8_INVALID = 2,    /* an invalid byte was seen; state is dead */
};

static inline void pv_utf8_init(struct pv_utf8 *v)
{
    v->need = 0;
    v->lo = 0x80;
    v->hi = 0xBF;
}

/* Feeds n more bytes. After PV_UTF8_INVALID the state must be re-initialised
 * before reuse. */
enum pv_utf8_result pv_utf8_feed(struct pv_utf8 *v, const void *s, size_t n);

/* Whole-buffer check: true only for complete, valid UTF-8. */
bool pv_utf8_valid(const void *s, size_t n);

/* Number of code points in valid UTF-8 (undefined for invalid input). */
size_t pv_utf8_length(const void *s, size_t n);

/* The length of the longest prefix of valid UTF-8 s[0..n) that is at most
 * max bytes and ends on a character boundary (for cutting text to fit a
 * bound, e.g. a close reason's 123 bytes, without breaking a character). */
size_t pv_utf8_prefix(const void *s, size_t n, size_t max);

#endif
