/* config.c -- defaults, environment and command line.
 *
 * Threads: main only, before other threads exist. */
#include "palaver/config.h"

#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "palaver/log.h"

void pv_config_defaults(struct pv_config *c)
{
    memset(c, 0, sizeof(*c));
    c->port = 8080;
    snprintf(c->htdocs, sizeof(c->htdocs), "%s", PALAVER_DEFAULT_HTDOCS);
    c->max_clients = 1000;
    c->http_workers = 32;
    c->history = 100;
    c->presence_max = 500;
    c->max_text = 4096;
    c->max_message = 65536;
    c->max_backlog = 1024 * 1024;
    c->queue_size = 8192;
    c->queue_timeout_ms = 2000;
    c->writers = 4;
    c->writers_max = 64;
    c->io_timeout_ms = 10000;
    c->ping_interval_ms = 10000;
    c->drain_timeout_ms = 5000;
    c->log_level = PV_LOG_INFO;
}

unsigned pv_config_num_threads(const struct pv_config *c)
{
    return c->max_clients + c->http_workers;
}

static const char usage[] =
    "Usage: palaverd [OPTION]...\n"
    "WebSocket chat broker: serves the chat page and relays messages.\n"
    "\n"
    "  -p, --port N             TCP port (default 8080, or $PORT; 0 = any free port)\n"
    "  -l, --listen ADDR        IPv4 address to bind (default: all)\n"
    "  -d, --htdocs DIR         directory of the chat page (default " PALAVER_DEFAULT_HTDOCS ")\n"
    "  -c, --max-clients N      WebSocket clients at once (default 1000)\n"
    "      --http-workers N     worker threads kept for page loads (default 32)\n"
    "      --history N          messages replayed to a newcomer (default 100)\n"
    "      --presence-max N     names listed in presence and join/leave notices; above\n"
    "                           N online, notices carry counts only (default 500)\n"
    "      --max-text BYTES     longest chat text (default 4096)\n"
    "      --max-message BYTES  longest WebSocket message (default 65536)\n"
    "      --max-backlog BYTES  queued for one client before it is closed as a\n"
    "                           slow consumer (default 1048576)\n"
    "      --queue-size N       chat messages waiting for the broadcaster (default 8192)\n"
    "      --queue-timeout MS   how long a sender waits when that queue is full (default 2000)\n"
    "      --writers N          writer threads (default 4)\n"
    "      --writers-max N      writer threads at most, with stalled clients (default 64)\n"
    "      --io-timeout MS      HTTP read and socket write timeout (default 10000)\n"
    "      --ping-interval MS   ping an idle client after MS (default 10000)\n"
    "      --drain-timeout MS   on SIGTERM, time to flush close frames (default 5000)\n"
    "      --log-level LEVEL    err, warning, notice, info or debug (default info)\n"
    "  -h, --help               show this help and exit\n"
    "  -V, --version            show the version and exit\n";

enum {
    OPT_HTTP_WORKERS = 256,
    OPT_HISTORY,
    OPT_PRESENCE_MAX,
    OPT_MAX_TEXT,
    OPT_MAX_MESSAGE,
    OPT_MAX_BACKLOG,
    OPT_QUEUE_SIZE,
    OPT_QUEUE_TIMEOUT,
    OPT_WRITERS,
    OPT_WRITERS_MAX,
    OPT_IO_TIMEOUT,
    OPT_PING_INTERVAL,
    OPT_DRAIN_TIMEOUT,
    OPT_LOG_LEVEL,
};

static const struct option options[] = {
    {"port", required_argument, NULL, 'p'},
    {"listen", required_argument, NULL, 'l'},
    {"htdocs", required_argument, NULL, 'd'},
    {"max-clients", required_argument, NULL, 'c'},
    {"http-workers", required_argument, NULL, OPT_HTTP_WORKERS},
    {"history", required_argument, NULL, OPT_HISTORY},
    {"presence-max", required_argument, NULL, OPT_PRESENCE_MAX},
    {"max-text", required_argument, NULL, OPT_MAX_TEXT},
    {"max-message", required_argument, NULL, OPT_MAX_MESSAGE},
    {"max-backlog", required_argument, NULL, OPT_MAX_BACKLOG},
    {"queue-size", required_argument, NULL, OPT_QUEUE_SIZE},
    {"queue-timeout", required_argument, NULL, OPT_QUEUE_TIMEOUT},
    {"writers", required_argument, NULL, OPT_WRITERS},
    {"writers-max", required_argument, NULL, OPT_WRITERS_MAX},
    {"io-timeout", required_argument, NULL, OPT_IO_TIMEOUT},
    {"ping-interval", required_argument, NULL, OPT_PING_INTERVAL},
    {"drain-timeout", required_argument, NULL, OPT_DRAIN_TIMEOUT},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

/* Parses an unsigned number in [min, max]; prints an error naming the
 * option on failure. */
static int parse_num(const char *what, const char *s, unsigned long long min,
                     unsigned long long max, unsigned long long *out)
{
    char *end;
    unsigned long long v;

    errno = 0;
    if (*s == '-' || *s == '\0')
        goto bad;
    v = strtoull(s, &end, 10);
    if (errno || *end != '\0' || v < min || v > max)
        goto bad;
    *out = v;
    return 0;
bad:
    fprintf(stderr, "palaverd: invalid %s '%s' (expected a number from %llu to %llu)\n", what, s,
            min, max);
    return -1;
}

#define NUM(field, what, min, max)                                                      \
    do {                                                                                \
        unsigned long long v_;                                                          \
        if (parse_num(what, optarg, min, max, &v_))                                     \
            return -1;                                                                  \
        c->field = v_;                                                                  \
    } while (0)

int pv_config_parse(struct pv_config *c, int argc, char **argv)
{
    const char *env = getenv("PORT");
    int opt;

    if (env && *env) {
        unsigned long long v;
        if (parse_num("PORT environment variable", env, 0, 65535, &v))
            return -1;
        c->port = (unsigned)v;
    }
    optind = 1;
    while ((opt = getopt_long(argc, argv, "p:l:d:c:hV", options, NULL)) != -1) {
        switch (opt) {
        case 'p':
            NUM(port, "--port", 0, 65535);
            break;
        case 'l': {
            unsigned a, b, cc, d;
            char extra;
            if (sscanf(optarg, "%u.%u.%u.%u%c", &a, &b, &cc, &d, &extra) != 4 || a > 255 ||
                b > 255 || cc > 255 || d > 255) {
                fprintf(stderr, "palaverd: invalid --listen '%s' (expected an IPv4 address)\n",
                        optarg);
                return -1;
            }
            snprintf(c->listen_addr, sizeof(c->listen_addr), "%u.%u.%u.%u", a, b, cc, d);
            break;
        }
        case 'd':
            if (strlen(optarg) >= sizeof(c->htdocs)) {
                fprintf(stderr, "palaverd: --htdocs path is too long\n");
                return -1;
            }
            snprintf(c->htdocs, sizeof(c->htdocs), "%s", optarg);
            break;
        case 'c':
            NUM(max_clients, "--max-clients", 1, 60000);
            break;
        case OPT_HTTP_WORKERS:
            NUM(http_workers, "--http-workers", 2, 4096);
            break;
        case OPT_HISTORY:
            NUM(history, "--history", 0, 100000);
            break;
        case OPT_PRESENCE_MAX:
            NUM(presence_max, "--presence-max", 1, 100000);
            break;
        case OPT_MAX_TEXT:
            NUM(max_text, "--max-text", 1, 1 << 20);
            break;
        case OPT_MAX_MESSAGE:
            NUM(max_message, "--max-message", 128, 16 << 20);
            break;
        case OPT_MAX_BACKLOG:
            NUM(max_backlog, "--max-backlog", 1024, 1ull << 32);
            break;
        case OPT_QUEUE_SIZE:
            NUM(queue_size, "--queue-size", 1, 1 << 20);
            break;
        case OPT_QUEUE_TIMEOUT:
            NUM(queue_timeout_ms, "--queue-timeout", 0, 60000);
            break;
        case OPT_WRITERS:
            NUM(writers, "--writers", 1, 256);
            break;
        case OPT_WRITERS_MAX:
            NUM(writers_max, "--writers-max", 1, 1024);
            break;
        case OPT_IO_TIMEOUT:
            NUM(io_timeout_ms, "--io-timeout", 100, 600000);
            break;
        case OPT_PING_INTERVAL:
            NUM(ping_interval_ms, "--ping-interval", 100, 3600000);
            break;
        case OPT_DRAIN_TIMEOUT:
            NUM(drain_timeout_ms, "--drain-timeout", 0, 600000);
            break;
        case OPT_LOG_LEVEL:
            c->log_level = pv_log_parse_level(optarg);
            if (c->log_level < 0) {
                fprintf(stderr, "palaverd: invalid --log-level '%s' (expected err, warning, "
                                "notice, info or debug)\n", optarg);
                return -1;
            }
            break;
        case 'h':
            fputs(usage, stdout);
            return 1;
        case 'V':
            printf("palaverd %s\n", PALAVER_VERSION);
            return 1;
        default:
            fprintf(stderr, "Try 'palaverd --help' for more information.\n");
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "palaverd: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    if (c->writers_max < c->writers)
        c->writers_max = c->writers;
    if (c->max_text > c->max_message) {
        fprintf(stderr, "palaverd: --max-text (%zu) must not exceed --max-message (%zu)\n",
                c->max_text, c->max_message);
        return -1;
    }
    return 0;
}
