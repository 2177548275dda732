/* stats.h -- process-wide counters.
 *
 * Threads: every field is an atomic written with relaxed ordering by
 * whichever thread observes the event, and read (relaxed) by anyone. They
 * are statistics: no other data is published through them.
 */
#ifndef PALAVER_STATS_H
#define PALAVER_STATS_H

#include <stdatomic.h>

#include "palaver/dialect.h"
#include <stdint.h>

/* The error codes palaverd sends, for counting by code; the last one,
 * "other", catches anything not listed. */
/* clang-format off */
#define PV_ERROR_CODES                                                                    \
    X(bad_json, "bad-json") X(bad_msgid, "bad-msgid") X(bad_name, "bad-name")              \
    X(bad_text, "bad-text") X(text_too_long, "text-too-long") X(empty_text, "empty-text")  \
    X(unknown_type, "unknown-type") X(busy, "busy") X(rate_limited, "rate-limited")       \
    X(not_stored, "not-stored") X(bad_since, "bad-since") X(bad_history, "bad-history")   \
    X(history_unavailable, "history-unavailable") X(too_complex, "too-complex")           \
    X(other, "other")
enum pv_error_code {
#define X(id, name) PV_ERR_##id,
    PV_ERROR_CODES
#undef X
    PV_ERR_COUNT
};
/* clang-format on */
extern const char *const pv_error_code_names[PV_ERR_COUNT];

struct pv_stats {
    atomic_uint_fast64_t clients;           /* gauge: registered clients */
    atomic_uint_fast64_t connections_total; /* WebSocket clients admitted */
    atomic_uint_fast64_t refused_full;      /* handshakes refused: at capacity */
    atomic_uint_fast64_t messages_in;       /* chat messages accepted (seq given) */
    atomic_uint_fast64_t deliveries;        /* frames handed to recipients */
    atomic_uint_fast64_t bytes_out;         /* bytes written to sockets */
    atomic_uint_fast64_t slow_consumers;    /* clients closed with 1008 slow consumer */
    atomic_uint_fast64_t protocol_closes;   /* clients closed for a protocol violation */
    atomic_uint_fast64_t error_replies;     /* {"type":"error"} replies sent */
    atomic_uint_fast64_t write_failures;    /* writes that failed or were partial */
    atomic_uint_fast64_t refused_per_ip;    /* handshakes refused: too many from one address */
    atomic_uint_fast64_t refused_origin;    /* handshakes refused: Origin not allowed (403) */
    atomic_uint_fast64_t refused_host;      /* requests refused: Host not ours (421) */
    atomic_uint_fast64_t refused_rate;      /* handshakes refused: too many per second (429) */
    atomic_uint_fast64_t refused_conns;     /* connections closed at accept: per-address cap */
    atomic_uint_fast64_t byte_limited;      /* messages refused: over the byte budget */
    atomic_uint_fast64_t reads_limited;     /* resumes and pages refused: over --history-rate */
    atomic_uint_fast64_t rate_limited;      /* messages refused: over the client's rate */
    atomic_uint_fast64_t rate_closes;       /* clients closed with 1008 for flooding */
    atomic_uint_fast64_t idle_closes;       /* clients closed: silent past the idle timeout */
    atomic_uint_fast64_t evictions;         /* workers interrupted to end a closed client */
    atomic_uint_fast64_t errors_by_code[PV_ERR_COUNT]; /* error replies, by code */
    atomic_uint_fast64_t history;                      /* gauge: messages kept for newcomers */
    atomic_uint_fast64_t resumes;        /* since honoured: exactly the missed messages */
    atomic_uint_fast64_t resets;         /* since not honoured: reset + latest history */
    atomic_uint_fast64_t history_pages;  /* history pages sent */
    atomic_uint_fast64_t store_reads;    /* of those and resumes: read from the database */
    atomic_uint_fast64_t typing_frames;  /* "typing" lists handed to clients */
    atomic_uint_fast64_t typing_shed;    /* of those, not sent: the client was behind */
    atomic_uint_fast64_t typing_dropped; /* typing requests over the typing bucket */
    atomic_uint_fast64_t markers_in;     /* read and received markers taken */
    atomic_uint_fast64_t receipt_frames; /* "receipts" frames handed to clients */
    /* By dialect (dialect.h: palaver, text, echo): connections open now,
     * chat messages taken from them, frames handed to them in their own
     * dialect (palaver's own are `deliveries`). */
    atomic_uint_fast64_t dialect_conns[PV_DIALECTS];
    atomic_uint_fast64_t dialect_in[PV_DIALECTS];
    atomic_uint_fast64_t dialect_out[PV_DIALECTS];
    atomic_uint_fast64_t heartbeat;    /* monotonic ns of the broadcaster's last loop */
    atomic_uint_fast64_t queue_lag_ns; /* how long the oldest event of the last batch
                                        * waited for the broadcaster */
};

/* Counts one error reply with this code (error_replies and by code). */
void pv_stat_error(struct pv_stats *s, const char *code);

static inline void pv_stat_add(atomic_uint_fast64_t *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static inline uint64_t pv_stat_get(atomic_uint_fast64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

#endif
