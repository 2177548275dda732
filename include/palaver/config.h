/* config.h -- palaverd's settings. Sources, later ones winning: embedded
 * defaults, the configuration file (--config, default
 * /etc/palaver/palaverd.conf; a missing default file is fine), the
 * environment (PORT, and PALAVER_<KEY> for every key), command-line flags.
 * Every setting has one name, used as the long flag (--max-clients), as
 * the file key (max-clients = 1000) and, upper-cased with '_', in the
 * environment (PALAVER_MAX_CLIENTS).
 *
 * Threads: a struct pv_config is filled in by main; the one the running
 * server uses is read-only once other threads exist. What SIGHUP can
 * change live goes through struct pv_live (live.h), not through here.
 */
#ifndef PALAVER_CONFIG_H
#define PALAVER_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "palaver/proxy.h"

#define PV_ORIGINS_MAX 1024
#ifndef PV_DEFAULT_CONFIG
#define PV_DEFAULT_CONFIG "/etc/palaver/palaverd.conf"
#endif

struct pv_config {
    char listen_addr[64]; /* IPv4 address to bind; "" = all */
    unsigned port;        /* 0 = any free port (tests) */
    char htdocs[PATH_MAX];
    unsigned max_clients;      /* WebSocket clients held at once */
    unsigned max_per_ip;       /* WebSocket clients from one address; 0 = no limit */
    unsigned http_workers;     /* CivetWeb workers kept for page loads */
    unsigned history;          /* messages kept for newcomers */
    unsigned presence_max;     /* names listed in presence and notices */
    unsigned receipts_max;     /* rooms of up to N members stream receipts (0: none) */
    unsigned typing_max;       /* rooms with up to N online show who is typing (0: none) */
    size_t max_text;           /* bytes of "text" in one chat message */
    size_t max_message;        /* bytes of one WebSocket message */
    size_t max_backlog;        /* bytes queued for one client before 1008 */
    unsigned rate_limit;       /* messages per second per client; 0 = no limit */
    unsigned rate_burst;       /* messages a client may send at once */
    unsigned byte_rate;        /* inbound bytes per second per client; 0 = no limit
                                * (an address gets 4x, shared by its clients) */
    unsigned byte_burst;       /* inbound bytes a client may send at once */
    unsigned history_rate;     /* bytes of replays and history pages per second per
                                * client (8x burst; 4x per address); 0 = no limit */
    unsigned handshake_rate;   /* WebSocket handshakes per second per address; 0 = none */
    unsigned handshake_burst;  /* handshakes an address may make at once */
    unsigned queue_size;       /* chat messages waiting for the broadcaster */
    size_t queue_bytes;        /* their payload bytes at most */
    unsigned queue_timeout_ms; /* how long a sender waits for queue space */
    unsigned writers;          /* writer threads kept running */
    unsigned writers_max;      /* writer threads at most (stalled clients) */
    unsigned io_timeout_ms;    /* CivetWeb request_timeout_ms: one write to a client */
    unsigned head_timeout_ms;  /* a whole HTTP request head (handshake) must arrive */
    unsigned max_conns_per_ip; /* TCP connections holding a worker per address;
                                * 0 = max_per_ip + 16 (none if max_per_ip is 0) */
    unsigned ping_interval_ms; /* ping a client silent for this long */
    unsigned idle_timeout_ms;  /* close a client silent for this long */
    unsigned drain_timeout_ms; /* SIGTERM: time to flush close frames */
    /* Origins allowed to open a WebSocket besides the page's own host,
     * space or comma separated ("http://chat.lan:8080"); "*" = any. */
    char allowed_origins[PV_ORIGINS_MAX];
    /* Host names palaverd answers to besides its own (hosts.h): names,
     * ".suffix", "*" = any. */
    char allowed_hosts[PV_ORIGINS_MAX];
    /* CivetWeb access_control_list ("-0.0.0.0/0,+192.168.1.0/24"): which
     * addresses may use the port at all (page, WebSocket, /metrics). */
    char access_control_list[512];
    /* Peers whose X-Forwarded-For/-Proto are believed (proxy.h), as
     * given and as parsed by pv_config_check(); restart to change. */
    char trusted_proxies[512];
    struct pv_cidrs trusted;
    int log_level;
    char data_dir[PATH_MAX];    /* history database directory; "" = memory only */
    unsigned history_keep;      /* messages kept on disk; 0 = all */
    unsigned history_max_age_s; /* messages older than this are deleted; 0 = never */
    size_t history_max_bytes;   /* bytes of messages kept on disk; 0 = any */
    unsigned history_share;     /* percent of keep/bytes one sender holds before its own go */
    unsigned resume_limit;      /* most messages replayed to a resuming client */
    unsigned data_max_pages;    /* cap on the database size in 4 KiB pages; 0 = none */
    char config_path[PATH_MAX]; /* the file read (it may not exist) */
    char create_admin[256];     /* --create-admin NAME, "" otherwise */
    char registration[16];      /* "invite", "open" or "closed" (accounts.h) */
    char guest_rooms[8];        /* "on": guests may create and join public rooms (rooms.md) */
    /* Shared files (files.md). */
    size_t max_upload;            /* bytes of one file; 0: no uploads */
    unsigned upload_slots;        /* uploads in progress at once */
    unsigned upload_slots_per_ip; /* of which one address may hold */
    size_t upload_rate;           /* bytes/s all uploads together are read at; 0: no limit */
    size_t upload_quota_day;      /* bytes one person may share in 24 h */
    size_t files_max_bytes;       /* bytes of files kept in all */
    size_t files_reserve;         /* bytes always left free on the disk */
    char guest_uploads[8];        /* "on": guests may share files in the lobby */
    unsigned files_sweep_s;       /* seconds between sweeps of files nothing refers to */
    char auth[16];                /* "open" or "members"; live (live.h) */
};

enum pv_config_action {
    PV_CONFIG_RUN,          /* start the server */
    PV_CONFIG_CHECK,        /* --check-config: report and exit */
    PV_CONFIG_DONE,         /* --help or --version was printed: exit 0 */
    PV_CONFIG_CREATE_ADMIN, /* --create-admin NAME: make an admin account, exit */
};

/* All sources, in order, into c (which is reset to the defaults first).
 * Returns 0, or -1 with a one-line reason in err (the file errors name
 * file and line). Never prints except for --help and --version. Safe to
 * call again with the same argv (SIGHUP). */
int pv_config_load(struct pv_config *c, int argc, char **argv, enum pv_config_action *action,
                   char *err, size_t errsz);

/* Copies what SIGHUP can change live (log level, rate limit and burst,
 * per-IP limit, allowed origins and hosts) from src to dst; nothing else. */
void pv_config_take_live(struct pv_config *dst, const struct pv_config *src);
/* True if a and b differ only in those live settings; otherwise `what`
 * lists the other keys that differ. */
bool pv_config_live_equal(const struct pv_config *a, const struct pv_config *b, char *what,
                          size_t n);

void pv_config_defaults(struct pv_config *c);

/* pv_config_load() printing its error: returns 0 to run, 1 when --help or
 * --version was printed (exit 0), -1 after printing an error (exit 2). */
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

/* The settings table, for documentation checks: how many keys, the i-th
 * key's name (the long flag without dashes), and its built-in default as
 * text ("" for an empty string). */
void pv_config_usage(FILE *f); /* the --help text, generated from the table */
/* The settings as the sample palaverd.conf ("conf") or the KEYS section of
 * palaverd.conf(5) ("man") write them, generated from the table
 * (palaverd --print-settings conf|man; the test compares them with the
 * shipped files). */
void pv_config_print_settings(FILE *f, const char *format);
size_t pv_config_setting_count(void);
/* The i-th key as its documentation needs it: name, short flag (0: none),
 * the value's name in --help, the group it starts (or NULL) and its help
 * text ("%D" is the default; NULL hides an alias). */
struct pv_setting_doc {
    const char *name;
    int short_opt;
    const char *arg, *group, *help;
};
void pv_config_setting_doc(size_t i, struct pv_setting_doc *out);
const char *pv_config_setting_name(size_t i);
void pv_config_setting_default(size_t i, char *out, size_t n);

#endif
