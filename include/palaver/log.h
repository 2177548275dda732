/* log.h -- one line per event on stderr, with syslog priority prefixes.
 *
 * Lines look like "<6>join id=3f0c… peer=127.0.0.1:5321 name=ann": journald
 * reads the <N> prefix as the priority, so levels survive under systemd.
 *
 * Threads: every function is safe from any thread. The level is an atomic
 * int; each line is written with a single write(2), so lines from different
 * threads never interleave.
 */
#ifndef PALAVER_LOG_H
#define PALAVER_LOG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum pv_log_level {
    PV_LOG_ERR = 3,
    PV_LOG_WARNING = 4,
    PV_LOG_NOTICE = 5,
    PV_LOG_INFO = 6,
    PV_LOG_DEBUG = 7,
};

/* Sets the most verbose level that is written (default PV_LOG_INFO). */
void pv_log_set_level(int level);

/* True when a line at `level` would be written; lets callers skip work. */
bool pv_log_enabled(int level);

/* Parses "err", "warning", "notice", "info" or "debug".
 * Returns the level, or -1 for anything else. */
int pv_log_parse_level(const char *name);

/* Name of a level, for messages ("info"). */
const char *pv_log_level_name(int level);

void pv_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A peer-supplied value (a header, a name) made safe to log: printable
 * ASCII only, '"' and everything else replaced by '?', cut to n - 1
 * bytes, so it can be quoted and cannot forge fields or lines. NULL gives
 * "". Any thread. */
void pv_log_printable(const char *in, char *out, size_t n);

/* A peer-supplied value to log inside "...": UTF-8 kept (journald shows
 * it), '"' and '\\' escaped with a backslash, control bytes as \xNN, cut
 * to n - 1 bytes (a cut may split a character). A name such as
 * `x" online=0 peer=10.0.0.9:1234` stays one field. Any thread. */
void pv_log_quote(const char *in, char *out, size_t n);

/* Aggregation for lines a peer can make palaverd write at will (refused
 * handshakes, joins and leaves of a churning address, protocol errors):
 * one struct per kind of line, static, shared by every thread. Within
 * each second the first `burst` lines go out; the rest are counted, and
 * the first line of a later second says how many were left out:
 * "(1234 similar lines suppressed in the last 1.0 s)". So a flood costs
 * a few lines per second, never journald's rate limit (which would hide
 * the lines that matter).
 * Threads: lock-free; the window start is claimed with one CAS, so two
 * threads never both report the same suppressed lines. */
struct pv_log_limit {
    atomic_uint_fast64_t window_ns; /* monotonic start of this second */
    atomic_uint count;              /* lines let through in this window */
    atomic_uint_fast64_t suppressed;
    const char *what; /* names the kind of line */
};
/* clang-format off */
#define PV_LOG_LIMIT(what_) {.what = (what_)}
/* clang-format on */

/* True to write the line now. Also writes the summary of the previous
 * window's suppressed lines when a new window starts. */
bool pv_log_limited(struct pv_log_limit *l, int level, unsigned burst);

#define pv_err(...) pv_log(PV_LOG_ERR, __VA_ARGS__)
#define pv_warn(...) pv_log(PV_LOG_WARNING, __VA_ARGS__)
#define pv_notice(...) pv_log(PV_LOG_NOTICE, __VA_ARGS__)
#define pv_info(...) pv_log(PV_LOG_INFO, __VA_ARGS__)
#define pv_debug(...) pv_log(PV_LOG_DEBUG, __VA_ARGS__)

#endif
