/* log.c -- stderr logging with syslog priority prefixes.
 *
 * Threads: any. The level is an atomic int read with relaxed ordering (a
 * level change may take a moment to be seen by other threads, which is
 * fine for logging); each line goes out in one write(2). */
#include "palaver/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static atomic_int log_level = PV_LOG_INFO;

static const char *const level_names[] = {
    [PV_LOG_ERR] = "err",   [PV_LOG_WARNING] = "warning", [PV_LOG_NOTICE] = "notice",
    [PV_LOG_INFO] = "info", [PV_LOG_DEBUG] = "debug",
};

void pv_log_set_level(int level)
{
    atomic_store_explicit(&log_level, level, memory_order_relaxed);
}

bool pv_log_enabled(int level)
{
    return level <= atomic_load_explicit(&log_level, memory_order_relaxed);
}

int pv_log_parse_level(const char *name)
{
    for (int i = PV_LOG_ERR; i <= PV_LOG_DEBUG; i++) {
        if (strcmp(name, level_names[i]) == 0)
            return i;
    }
    if (strcmp(name, "error") == 0)
        return PV_LOG_ERR;
    if (strcmp(name, "warn") == 0)
        return PV_LOG_WARNING;
    return -1;
}

const char *pv_log_level_name(int level)
{
    if (level < PV_LOG_ERR || level > PV_LOG_DEBUG)
        return "?";
    return level_names[level];
}

void pv_log(int level, const char *fmt, ...)
{
    char line[1024];
    int n, m;
    va_list ap;

    if (!pv_log_enabled(level))
        return;
    n = snprintf(line, sizeof(line), "<%d>", level);
    va_start(ap, fmt);
    m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        return;
    n += m;
    if (n > (int)sizeof(line) - 2)
        n = (int)sizeof(line) - 2;
    /* A line never carries a raw newline from its arguments: log lines are
     * one event each, and journald must not split them. */
    for (int i = 3; i < n; i++) {
        if (line[i] == '\n' || line[i] == '\r')
            line[i] = ' ';
    }
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w; /* nowhere to report a failed log write */
}

bool pv_log_limited(struct pv_log_limit *l, int level, unsigned burst)
{
    if (!pv_log_enabled(level))
        return false;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    uint64_t start = atomic_load_explicit(&l->window_ns, memory_order_relaxed);
    if (now - start >= 1000000000u && atomic_compare_exchange_strong(&l->window_ns, &start, now)) {
        atomic_store_explicit(&l->count, 0, memory_order_relaxed);
        uint64_t n = atomic_exchange_explicit(&l->suppressed, 0, memory_order_relaxed);
        if (n)
            pv_log(level, "(%llu similar lines suppressed: %s, in the last %.1f s)",
                   (unsigned long long)n, l->what, (double)(now - start) / 1e9);
    }
    if (atomic_fetch_add_explicit(&l->count, 1, memory_order_relaxed) < burst)
        return true;
    atomic_fetch_add_explicit(&l->suppressed, 1, memory_order_relaxed);
    return false;
}

void pv_log_printable(const char *in, char *out, size_t n)
{
    size_t j = 0;
    for (; in && *in && j + 1 < n; in++) {
        unsigned char ch = (unsigned char)*in;
        out[j] = *in;
        if (ch < 0x20 || ch >= 0x7f || ch == '"')
            out[j] = '?';
        j++;
    }
    out[j] = '\0';
}

void pv_log_quote(const char *in, char *out, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t j = 0;
    for (; in && *in; in++) {
        unsigned char ch = (unsigned char)*in;
        if (ch == '"' || ch == '\\') {
            if (j + 3 > n)
                break;
            out[j++] = '\\';
            out[j++] = (char)ch;
        } else if (ch < 0x20 || ch == 0x7f) {
            if (j + 5 > n)
                break;
            out[j++] = '\\';
            out[j++] = 'x';
            out[j++] = hex[ch >> 4];
            out[j++] = hex[ch & 15];
        } else {
            if (j + 2 > n)
                break;
            out[j++] = (char)ch;
        }
    }
    out[j] = '\0';
}
