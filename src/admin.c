/* admin.c -- /healthz and /metrics (see admin.h).
 *
 * Threads: CivetWeb workers; reads only relaxed atomics and read-only
 * configuration. */
#include "palaver/admin.h"

#include <civetweb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "palaver/clock.h"
#include "palaver/config.h"
#include "palaver/dialect.h"
#include "palaver/queue.h"
#include "palaver/stats.h"
#include "palaver/store.h"
#include "palaver/xalloc.h"

bool pv_admin_alive(const struct pv_stats *s, uint64_t *age_ns)
{
    uint64_t hb = atomic_load_explicit(&((struct pv_stats *)s)->heartbeat, memory_order_relaxed);
    uint64_t now = pv_mono_ns();
    *age_ns = hb && now > hb ? now - hb : 0;
    return hb != 0 && *age_ns < PV_HEARTBEAT_STALE_NS;
}

static int healthz(struct mg_connection *conn, void *ud)
{
    struct pv_admin *a = ud;
    uint64_t age;
    bool ok = pv_admin_alive(a->stats, &age);
    uint64_t lag = pv_stat_get(&a->stats->queue_lag_ns);
    bool lagging = ok && lag >= PV_QUEUE_LAG_BAD_NS;
    char body[1024];
    const char *sf = a->store ? pv_store_failure(a->store) : NULL;
    const char *why = sf ? sf : a->store_error && a->store_error[0] ? a->store_error : NULL;
    int n = snprintf(body, sizeof(body),
                     ok ? "ok: broadcaster loop turned %.3f s ago\n"
                        : "stalled: the fanout has made no progress for %.3f s (the broadcaster "
                          "loop is stuck, or paused with events waiting)\n",
                     (double)age / 1e9);
    if (lagging)
        n += snprintf(body + n, sizeof(body) - (size_t)n,
                      "lagging: events waited %.3f s for the broadcaster (flood or overload)\n",
                      (double)lag / 1e9);
    if (why)
        n += snprintf(body + n, sizeof(body) - (size_t)n,
                      "degraded: history store failed, messages are relayed but not stored: %s\n",
                      why);
    else if (a->store && pv_store_full(a->store))
        n += snprintf(body + n, sizeof(body) - (size_t)n,
                      "degraded: history database full even after deleting the oldest messages; "
                      "%llu message(s) relayed but not stored so far, trying again with each new "
                      "one\n",
                      (unsigned long long)pv_store_lost_total(a->store));
    else if (a->store)
        n += snprintf(body + n, sizeof(body) - (size_t)n,
                      "history store: ok, committed seq %llu, %llu message(s), %llu bytes\n",
                      (unsigned long long)pv_store_committed(a->store),
                      (unsigned long long)pv_store_rows(a->store),
                      (unsigned long long)pv_store_bytes(a->store));
    mg_printf(
        conn,
        "HTTP/1.1 %s\r\nContent-Type: text/plain; charset=utf-8\r\nCache-Control: no-store\r\n"
        "Content-Length: %d\r\nConnection: close\r\n\r\n%s",
        ok && !lagging ? "200 OK" : "503 Service Unavailable", n, body);
    return ok && !lagging ? 200 : 503;
}

struct buf {
    char *p;
    size_t len, cap;
};

__attribute__((format(printf, 2, 3))) static void put(struct buf *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        b->cap = b->cap * 2 + (n > 0 ? (size_t)n : 0);
        b->p = pv_xrealloc(b->p, b->cap);
    }
}

static void metric(struct buf *b, const char *name, const char *type, const char *help,
                   unsigned long long v)
{
    put(b, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, help, name, type, name, v);
}

#define GET(field) ((unsigned long long)pv_stat_get(&s->field))

static int metrics(struct mg_connection *conn, void *ud)
{
    struct pv_admin *a = ud;
    struct pv_stats *s = a->stats;
    struct buf b = {pv_xmalloc(4096), 0, 4096};
    uint64_t age;
    bool alive = pv_admin_alive(s, &age);

    metric(&b, "palaver_clients", "gauge", "WebSocket clients connected now.", GET(clients));
    metric(&b, "palaver_connections_total", "counter", "WebSocket clients admitted.",
           GET(connections_total));
    metric(&b, "palaver_messages_in_total", "counter", "Chat messages accepted (given a seq).",
           GET(messages_in));
    metric(&b, "palaver_deliveries_total", "counter", "Frames queued to recipients.",
           GET(deliveries));
    metric(&b, "palaver_bytes_out_total", "counter", "Bytes written to sockets.", GET(bytes_out));
    metric(&b, "palaver_queue_depth", "gauge", "Events waiting for the broadcaster.",
           pv_queue_depth(a->queue));
    put(&b,
        "# HELP palaver_broadcaster_lag_seconds Time since the broadcaster loop last turned.\n"
        "# TYPE palaver_broadcaster_lag_seconds gauge\npalaver_broadcaster_lag_seconds %.6f\n",
        (double)age / 1e9);
    metric(&b, "palaver_broadcaster_up", "gauge", "1 while the broadcaster loop turns.", alive);
    put(&b,
        "# HELP palaver_queue_lag_seconds How long the oldest event of the broadcaster's last "
        "batch waited in the queue.\n# TYPE palaver_queue_lag_seconds gauge\n"
        "palaver_queue_lag_seconds %.6f\n",
        (double)pv_stat_get(&s->queue_lag_ns) / 1e9);
    metric(&b, "palaver_slow_consumer_closes_total", "counter",
           "Clients closed with 1008 for not reading.", GET(slow_consumers));
    metric(&b, "palaver_protocol_closes_total", "counter",
           "Clients closed for an RFC 6455 violation.", GET(protocol_closes));
    metric(&b, "palaver_flood_closes_total", "counter", "Clients closed with 1008 for flooding.",
           GET(rate_closes));
    metric(&b, "palaver_typing_frames_total", "counter",
           "Lists of who is typing handed to clients (docs/receipts.md).", GET(typing_frames));
    metric(&b, "palaver_typing_shed_total", "counter",
           "Typing lists not sent to a client whose backlog was behind.", GET(typing_shed));
    metric(&b, "palaver_typing_dropped_total", "counter",
           "Typing requests dropped over the typing rate bucket.", GET(typing_dropped));
    metric(&b, "palaver_markers_in_total", "counter", "Read and received markers taken.",
           GET(markers_in));
    metric(&b, "palaver_receipt_frames_total", "counter",
           "Delivered/read position frames handed to clients.", GET(receipt_frames));
    put(&b, "# HELP palaver_dialect_connections WebSocket clients connected now, by dialect "
            "(docs/dialects.md).\n# TYPE palaver_dialect_connections gauge\n");
    for (int d = 0; d < PV_DIALECTS; d++)
        put(&b, "palaver_dialect_connections{dialect=\"%s\"} %llu\n", pv_dialect_name(d),
            GET(dialect_conns[d]));
    put(&b, "# HELP palaver_dialect_messages_in_total Chat messages taken, by dialect.\n"
            "# TYPE palaver_dialect_messages_in_total counter\n");
    for (int d = 0; d < PV_DIALECTS; d++)
        put(&b, "palaver_dialect_messages_in_total{dialect=\"%s\"} %llu\n", pv_dialect_name(d),
            GET(dialect_in[d]));
    put(&b, "# HELP palaver_dialect_frames_out_total Frames handed to clients in their own dialect "
            "(translated once per frame and dialect; a frame's deliveries are added when the next "
            "frame is translated).\n"
            "# TYPE palaver_dialect_frames_out_total counter\n");
    for (int d = 1; d < PV_DIALECTS; d++)
        put(&b, "palaver_dialect_frames_out_total{dialect=\"%s\"} %llu\n", pv_dialect_name(d),
            GET(dialect_out[d]));
    metric(&b, "palaver_idle_closes_total", "counter", "Clients closed after the idle timeout.",
           GET(idle_closes));
    metric(&b, "palaver_evictions_total", "counter",
           "Closed clients whose connection the server ended.", GET(evictions));
    put(&b,
        "# HELP palaver_refused_connections_total WebSocket handshakes refused, by reason.\n"
        "# TYPE palaver_refused_connections_total counter\n"
        "palaver_refused_connections_total{reason=\"full\"} %llu\n"
        "palaver_refused_connections_total{reason=\"per_ip\"} %llu\n"
        "palaver_refused_connections_total{reason=\"origin\"} %llu\n"
        "palaver_refused_connections_total{reason=\"host\"} %llu\n"
        "palaver_refused_connections_total{reason=\"rate\"} %llu\n"
        "palaver_refused_connections_total{reason=\"conns_per_ip\"} %llu\n",
        GET(refused_full), GET(refused_per_ip), GET(refused_origin), GET(refused_host),
        GET(refused_rate), GET(refused_conns));
    metric(&b, "palaver_history_reads_limited_total", "counter",
           "Resumes and history pages refused: over --history-rate.", GET(reads_limited));
    metric(&b, "palaver_byte_limited_total", "counter",
           "Messages refused: over the client's or its address's byte budget.", GET(byte_limited));
    put(&b, "# HELP palaver_errors_total Error replies sent to clients, by code.\n"
            "# TYPE palaver_errors_total counter\n");
    for (int i = 0; i < PV_ERR_COUNT; i++)
        put(&b, "palaver_errors_total{code=\"%s\"} %llu\n", pv_error_code_names[i],
            (unsigned long long)pv_stat_get(&s->errors_by_code[i]));
    metric(&b, "palaver_write_failures_total", "counter", "Socket writes that failed or timed out.",
           GET(write_failures));
    metric(&b, "palaver_history_messages", "gauge", "Messages kept for newcomers.", GET(history));
    metric(&b, "palaver_resumes_total", "counter",
           "Reconnects given exactly the messages they missed (since).", GET(resumes));
    metric(&b, "palaver_resets_total", "counter",
           "Reconnects too far behind (or from another history): reset and latest history.",
           GET(resets));
    metric(&b, "palaver_history_pages_total", "counter", "Pages of older history sent.",
           GET(history_pages));
    metric(&b, "palaver_store_reads_total", "counter",
           "Resumes and history pages read from the database (not memory).", GET(store_reads));
    bool store_ok = a->store && !pv_store_failure(a->store) && !pv_store_full(a->store);
    metric(&b, "palaver_store_up", "gauge",
           "1 while messages are being stored (0: failed, full, or memory only).", store_ok);
    metric(&b, "palaver_store_committed_seq", "gauge", "Highest seq committed to the database.",
           a->store ? pv_store_committed(a->store) : 0);
    metric(&b, "palaver_store_transactions_total", "counter", "Group commits to the database.",
           a->store ? pv_store_transactions(a->store) : 0);
    metric(&b, "palaver_store_lost_total", "counter",
           "Messages relayed but not stored: the database was full even after retention.",
           a->store ? pv_store_lost_total(a->store) : 0);
    metric(&b, "palaver_store_messages", "gauge", "Messages stored.",
           a->store ? pv_store_rows(a->store) : 0);
    metric(&b, "palaver_store_bytes", "gauge",
           "Bytes of messages stored (JSON plus 64 per message: what --history-max-bytes counts).",
           a->store ? pv_store_bytes(a->store) : 0);

    mg_printf(conn,
              "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
              "Cache-Control: no-store\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
              b.len);
    mg_write(conn, b.p, b.len);
    free(b.p);
    return 200;
}

void pv_admin_register(struct mg_context *ctx, struct pv_admin *a)
{
    mg_set_request_handler(ctx, "/healthz$", healthz, a);
    mg_set_request_handler(ctx, "/metrics$", metrics, a);
}
