/* config.h -- palaverd's settings: embedded defaults, PORT from the
 * environment, then command-line flags (flags win).
 *
 * Threads: filled in by main before any other thread starts; read-only
 * afterwards, so every thread may read it without synchronisation.
 */
#ifndef PALAVER_CONFIG_H
#define PALAVER_CONFIG_H

#include <limits.h>
#include <stddef.h>

struct pv_config {
    char listen_addr[64];      /* IPv4 address to bind; "" = all */
    unsigned port;             /* 0 = any free port (tests) */
    char htdocs[PATH_MAX];
    unsigned max_clients;      /* WebSocket clients held at once */
    unsigned http_workers;     /* CivetWeb workers kept for page loads */
    unsigned history;          /* messages kept for newcomers */
    unsigned presence_max;     /* names listed in presence and notices */
    size_t max_text;           /* bytes of "text" in one chat message */
    size_t max_message;        /* bytes of one WebSocket message */
    size_t max_backlog;        /* bytes queued for one client before 1008 */
    unsigned queue_size;       /* chat messages waiting for the broadcaster */
    unsigned queue_timeout_ms; /* how long a sender waits for queue space */
    unsigned writers;          /* writer threads kept running */
    unsigned writers_max;      /* writer threads at most (stalled clients) */
    unsigned io_timeout_ms;    /* CivetWeb request_timeout_ms */
    unsigned ping_interval_ms; /* CivetWeb websocket_timeout_ms */
    unsigned drain_timeout_ms; /* SIGTERM: time to flush close frames */
    int log_level;
};

void pv_config_defaults(struct pv_config *c);

/* Applies the environment (PORT) and argv. Returns 0 to run, 1 when
 * --help or --version was printed (exit 0), -1 after printing an error
 * (exit 2). */
int pv_config_parse(struct pv_config *c, int argc, char **argv);

/* CivetWeb worker threads needed for this configuration. */
unsigned pv_config_num_threads(const struct pv_config *c);

#endif
