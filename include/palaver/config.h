/* config.h -- palaverd's settings: embedded defaults, PORT from the
 * environment, then command-line flags (flags win). Every setting has one
 * name, used as the long flag (--max-clients) and as the key of the
 * "key = value" text form (max-clients = 1000) that
 * pv_config_parse_text() reads.
 *
 * Threads: filled in by main before any other thread starts; read-only
 * afterwards, so every thread may read it without synchronisation.
 */
#ifndef PALAVER_CONFIG_H
#define PALAVER_CONFIG_H

#include <limits.h>
#include <stddef.h>

#define PV_ORIGINS_MAX 1024

struct pv_config {
    char listen_addr[64];      /* IPv4 address to bind; "" = all */
    unsigned port;             /* 0 = any free port (tests) */
    char htdocs[PATH_MAX];
    unsigned max_clients;      /* WebSocket clients held at once */
    unsigned max_per_ip;       /* WebSocket clients from one address; 0 = no limit */
    unsigned http_workers;     /* CivetWeb workers kept for page loads */
    unsigned history;          /* messages kept for newcomers */
    unsigned presence_max;     /* names listed in presence and notices */
    size_t max_text;           /* bytes of "text" in one chat message */
    size_t max_message;        /* bytes of one WebSocket message */
    size_t max_backlog;        /* bytes queued for one client before 1008 */
    unsigned rate_limit;       /* messages per second per client; 0 = no limit */
    unsigned rate_burst;       /* messages a client may send at once */
    unsigned queue_size;       /* chat messages waiting for the broadcaster */
    unsigned queue_timeout_ms; /* how long a sender waits for queue space */
    unsigned writers;          /* writer threads kept running */
    unsigned writers_max;      /* writer threads at most (stalled clients) */
    unsigned io_timeout_ms;    /* CivetWeb request_timeout_ms: handshake, one write */
    unsigned ping_interval_ms; /* ping a client silent for this long */
    unsigned idle_timeout_ms;  /* close a client silent for this long */
    unsigned drain_timeout_ms; /* SIGTERM: time to flush close frames */
    /* Origins allowed to open a WebSocket besides the page's own host,
     * space or comma separated ("http://chat.lan:8080"); "*" = any. */
    char allowed_origins[PV_ORIGINS_MAX];
    int log_level;
};

void pv_config_defaults(struct pv_config *c);

/* Applies the environment (PORT) and argv. Returns 0 to run, 1 when
 * --help or --version was printed (exit 0), -1 after printing an error
 * (exit 2). */
int pv_config_parse(struct pv_config *c, int argc, char **argv);

/* Applies "key = value" lines (keys are the long flag names; blank lines
 * and lines starting with '#' are skipped). On the first bad line returns
 * -1 and writes "<name>:<line>: <what is wrong>" into err. */
int pv_config_parse_text(struct pv_config *c, const char *text, size_t len, const char *name,
                         char *err, size_t errsz);

/* Cross-setting checks after all sources are applied; -1 with err set. */
int pv_config_check(struct pv_config *c, char *err, size_t errsz);

/* CivetWeb worker threads needed for this configuration. */
unsigned pv_config_num_threads(const struct pv_config *c);

#endif
