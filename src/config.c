/* config.c -- defaults, environment, command line and "key = value" text.
 *
 * One table describes every setting; the command line and the text form
 * both go through set_option(), so they accept exactly the same names and
 * values.
 *
 * Threads: main only, before other threads exist. */
#include "palaver/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
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
    c->max_per_ip = 32;
    c->http_workers = 32;
    c->history = 100;
    c->presence_max = 500;
    c->receipts_max = 50;
    c->typing_max = 100;
    c->max_text = 4096;
    c->max_message = 32768; /* a --max-text 4096 message escaped (6x) with its fields fits */
    c->max_backlog = (size_t)1 << 20;
    c->rate_limit = 20;
    c->rate_burst = 40;
    c->queue_size = 8192;
    c->queue_timeout_ms = 2000;
    c->writers = 4;
    c->writers_max = 64;
    c->byte_rate = 65536;
    c->queue_bytes = (size_t)8 << 20;
    c->byte_burst = 262144;
    c->handshake_rate = 10;
    c->history_rate = 524288;
    c->handshake_burst = 64;
    c->io_timeout_ms = 10000;
    c->head_timeout_ms = 4000;
    c->ping_interval_ms = 10000;
    c->idle_timeout_ms = 30000;
    c->drain_timeout_ms = 5000;
    c->log_level = PV_LOG_INFO;
    snprintf(c->data_dir, sizeof(c->data_dir), "%s", "var");
    snprintf(c->registration, sizeof(c->registration), "%s", "invite");
    snprintf(c->guest_rooms, sizeof(c->guest_rooms), "%s", "off");
    c->max_upload = 25u << 20;
    c->upload_slots = 4;
    c->upload_slots_per_ip = 2;
    c->upload_rate = 50000000;
    c->upload_quota_day = (size_t)500 << 20;
    c->files_max_bytes = (size_t)4 << 30;
    c->files_reserve = (size_t)256 << 20;
    snprintf(c->guest_uploads, sizeof(c->guest_uploads), "%s", "off");
    c->files_sweep_s = 60;
    snprintf(c->auth, sizeof(c->auth), "%s", "open");
    c->history_keep = 100000;
    c->history_max_bytes = 256u << 20;
    c->history_share = 25;
    c->resume_limit = 1000;
}

unsigned pv_config_num_threads(const struct pv_config *c)
{
    return c->max_clients + c->http_workers;
}


enum kind { K_UINT, K_SIZE, K_STR, K_ADDR, K_LEVEL };

/* The one table of settings: every key's name, flag, type, field, range,
 * argument name, group and help text. --help, the sample palaverd.conf and
 * the keys of palaverd.conf(5) are generated from it (pv_config_usage,
 * pv_config_print_settings); a "%D" in a help text is the built-in
 * default (pv_config_defaults). A NULL help hides an alias. */
struct setting {
    const char *name;
    int short_opt; /* 0: long only */
    enum kind kind;
    size_t off;
    size_t size; /* K_STR: buffer size */
    unsigned long long min, max;
    const char *arg;   /* the value's name in --help: N, BYTES, MS... */
    const char *group; /* starts a group of keys in the sample file, or NULL */
    const char *help;
};

/* clang-format off */
#define U(name, s, field, lo, hi, arg, group, help) \
    {name, s, K_UINT, offsetof(struct pv_config, field), 0, lo, hi, arg, group, help}
#define Z(name, field, lo, hi, arg, group, help) \
    {name, 0, K_SIZE, offsetof(struct pv_config, field), 0, lo, hi, arg, group, help}
#define S(name, s, kind, field, arg, group, help) \
    {name, s, kind, offsetof(struct pv_config, field), sizeof(((struct pv_config *)0)->field), 0, 0, \
     arg, group, help}
/* clang-format on */

static const struct setting settings[] = {
    U("port", 'p', port, 0, 65535, "N", "Listening",
      "TCP port (default %D, or $PORT; 0 = any free port)"),
    S("listen", 'l', K_ADDR, listen_addr, "ADDR", NULL, "IPv4 address to bind (default: all)"),
    S("htdocs", 'd', K_STR, htdocs, "DIR", NULL, "directory of the chat page (default %D)"),
    U("max-clients", 'c', max_clients, 1, 60000, "N",
      "Capacity. Each WebSocket holds one CivetWeb thread: palaverd starts max-clients + "
      "http-workers of them (mind LimitNOFILE= and TasksMax=).",
      "WebSocket clients at once (default %D)"),
    U("http-workers", 0, http_workers, 2, 4096, "N", NULL,
      "worker threads kept for page loads (default %D)"),
    U("max-per-ip", 0, max_per_ip, 0, 60000, "N", "Who may connect",
      "WebSocket clients from one IP address (default %D, 0 = no limit)"),
    U("max-conns-per-ip", 0, max_conns_per_ip, 0, 60000, "N", NULL,
      "TCP connections from one address holding a worker at once, WebSockets included; more are "
      "closed at accept (default 0: --max-per-ip + 16, none if that is 0)"),
    U("handshake-rate", 0, handshake_rate, 0, 1000000, "N", NULL,
      "WebSocket handshakes per second from one address (default %D, 0 = no limit); more get HTTP "
      "429"),
    U("handshake-burst", 0, handshake_burst, 1, 1000000, "N", NULL,
      "handshakes one address may make at once (default %D)"),
    S("allowed-origins", 0, K_STR, allowed_origins, "L", NULL,
      "other origins whose pages may open a WebSocket, e.g. 'http://chat.lan:8080 "
      "https://chat.example' (the page's own host always may; '*' = any)"),
    S("allowed-hosts", 0, K_STR, allowed_hosts, "L", NULL,
      "host names palaverd answers to besides its own addresses, localhost and its host "
      "name(.local), e.g. 'chat.lan .example.org' ('*' = any Host); other Host headers get 421 "
      "(DNS rebinding)"),
    S("access-control-list", 0, K_STR, access_control_list, "L", NULL,
      "CivetWeb ACL of addresses allowed at all, e.g. '-0.0.0.0/0,+192.168.1.0/24,+127.0.0.1' "
      "(default: all; through a trusted proxy it applies to the forwarded client)"),
    S("trusted-proxies", 0, K_STR, trusted_proxies, "L", NULL,
      "addresses or networks of the TLS terminator in front (e.g. '127.0.0.1 ::1'): only from "
      "them are X-Forwarded-For (the client's address) and X-Forwarded-Proto believed "
      "(default: none; docs/tls.md)"),
    Z("max-text", max_text, 1, 1 << 20, "BYTES", "Messages", "longest chat text (default %D)"),
    Z("max-message", max_message, 128, 16 << 20, "BYTES", NULL,
      "longest WebSocket message (default %D: 4096 bytes of text escaped as \\u00XX, and the other "
      "fields)"),
    U("history", 0, history, 0, 100000, "N", NULL, "messages replayed to a newcomer (default %D)"),
    U("presence-max", 0, presence_max, 1, 100000, "N", NULL,
      "names listed in presence and join/leave notices; above N online, notices carry counts only "
      "(default %D)"),
    U("receipts-max", 0, receipts_max, 0, 1000, "N", NULL,
      "rooms and DMs of up to N members show delivered and read to their members as they change; "
      "bigger rooms answer who has seen a message when asked (default %D, 0 = never streamed)"),
    U("typing-max", 0, typing_max, 0, 100000, "N", NULL,
      "rooms with up to N people online show who is typing (default %D, 0 = nowhere)"),
    U("rate-limit", 0, rate_limit, 0, 1000000, "N", NULL,
      "messages per second one client may send (default %D, 0 = no limit); more are refused, a "
      "flood is closed"),
    U("rate-burst", 0, rate_burst, 1, 1000000, "N", NULL,
      "messages one client may send at once (default %D)"),
    U("byte-rate", 0, byte_rate, 0, 1u << 30, "BYTES", NULL,
      "inbound bytes per second one client may send (default %D, 0 = no limit); one address gets "
      "4x, shared"),
    U("byte-burst", 0, byte_burst, 1024, 1u << 30, "BYTES", NULL,
      "inbound bytes one client may send at once (default %D)"),
    U("history-rate", 0, history_rate, 0, 1u << 30, "BYTES", NULL,
      "replays and history pages one client may read per second (default %D; 8x at once, 4x per "
      "address; 0 = no limit); over it they are refused with busy"),
    Z("max-backlog", max_backlog, 1024, 1ull << 32, "BYTES", "Slow clients, queues, threads",
      "queued for one client before it is closed as a slow consumer (default %D)"),
    U("queue-size", 0, queue_size, 1, 1 << 20, "N", NULL,
      "chat messages waiting for the broadcaster (default %D)"),
    Z("queue-bytes", queue_bytes, 65536, 1ull << 34, "BYTES", NULL,
      "payload bytes of the chat messages waiting for the broadcaster, at most (default %D)"),
    U("queue-timeout", 0, queue_timeout_ms, 0, 60000, "MS", NULL,
      "how long a sender waits when that queue is full (default %D)"),
    U("writers", 0, writers, 1, 256, "N", NULL, "writer threads (default %D)"),
    U("writers-max", 0, writers_max, 1, 1024, "N", NULL,
      "writer threads at most, with stalled clients (default %D)"),
    U("io-timeout", 0, io_timeout_ms, 100, 600000, "MS", "Timeouts (milliseconds)",
      "longest one socket write to a client may block (default %D)"),
    U("head-timeout", 0, head_timeout_ms, 100, 600000, "MS", NULL,
      "a whole HTTP request head (page load, WebSocket handshake) must arrive within MS (default "
      "%D; --handshake-timeout is the same key)"),
    U("handshake-timeout", 0, head_timeout_ms, 100, 600000, "", NULL, NULL),
    U("ping-interval", 0, ping_interval_ms, 100, 3600000, "MS", NULL,
      "ping a client that has sent nothing for MS (default %D)"),
    U("idle-timeout", 0, idle_timeout_ms, 200, 86400000, "MS", NULL,
      "close a client that has sent nothing, not even a pong, for MS (default %D)"),
    U("drain-timeout", 0, drain_timeout_ms, 0, 600000, "MS", NULL,
      "on SIGTERM, time to flush close frames (default %D)"),
    S("data-dir", 0, K_STR, data_dir, "DIR",
      "History on disk (SQLite, WAL, synchronous=FULL). The systemd unit passes --data-dir "
      "/var/lib/palaver (its StateDirectory=).",
      "where the history database lives (default %D, relative to the working directory; '' keeps "
      "history in memory only)"),
    U("history-keep", 0, history_keep, 0, 100000000, "N", NULL,
      "messages kept on disk (default %D, 0 = all)"),
    U("history-max-age", 0, history_max_age_s, 0, 3153600000u, "S", NULL,
      "delete messages older than S seconds (default %D; 2592000 = 30 days)"),
    Z("history-max-bytes", history_max_bytes, 0, 1ull << 44, "BYTES", NULL,
      "bytes of messages kept on disk, the JSON plus 64 per message; over it the oldest go, "
      "down to 90 % (default %D, 0 = any)"),
    U("history-sender-share", 0, history_share, 1, 100, "PCT", NULL,
      "a sender (an address) holding more than PCT % of --history-keep or --history-max-bytes "
      "loses its own oldest messages first, so one flood cannot push out everyone's history "
      "(default %D; 100 = oldest first, whoever sent them)"),
    U("data-max-pages", 0, data_max_pages, 0, 2000000000, "N", NULL,
      "cap the database at N 4-KiB pages (default %D)"),
    U("resume-limit", 0, resume_limit, 0, 1000000, "N", NULL,
      "most missed messages replayed to a reconnecting client; beyond that it gets a reset "
      "(default %D)"),
    S("auth", 0, K_STR, auth, "MODE",
      "Accounts (docs/accounts.md). The first admin comes from the setup link in the log, or "
      "palaverd --create-admin NAME.",
      "open: guests chat and people may sign in; members: only signed-in people may open a "
      "WebSocket (others get HTTP 401) (default %D; SIGHUP changes it, and a switch to members "
      "closes the guests connected with 4004)"),
    S("registration", 0, K_STR, registration, "MODE", NULL,
      "who may make an account: invite (with an invite from an admin or moderator), open "
      "(anyone who opens the page) or closed (admins, from a shell) (default %D)"),
    S("guest-rooms", 0, K_STR, guest_rooms, "on|off", NULL,
      "on: guests may create and join public rooms too, for the length of their connection "
      "(docs/rooms.md); off: guests live in the lobby (default %D)"),
    Z("max-upload", max_upload, 0, 1ull << 36, "BYTES",
      "Shared files (docs/files.md). Kept in <data-dir>/files.",
      "largest file one may share; refused (413) before it is read (default %D, 0 = no uploads)"),
    U("upload-slots", 0, upload_slots, 1, 64, "N", NULL,
      "uploads in progress at once; more are told to come back (503) (default %D)"),
    U("upload-slots-per-ip", 0, upload_slots_per_ip, 1, 64, "N", NULL,
      "of which one address may hold (default %D)"),
    Z("upload-rate", upload_rate, 0, 1ull << 40, "BYTES", NULL,
      "bytes per second all uploads together are read at, so they leave the chat its CPU; 0: "
      "no limit (default %D)"),
    Z("upload-quota-day", upload_quota_day, 0, 1ull << 44, "BYTES", NULL,
      "bytes one person may share in 24 hours (default %D)"),
    Z("files-max-bytes", files_max_bytes, 0, 1ull << 44, "BYTES", NULL,
      "bytes of shared files kept in all (default %D)"),
    Z("files-reserve", files_reserve, 0, 1ull << 44, "BYTES", NULL,
      "bytes always left free on the data directory's disk: an upload that would use them is "
      "refused (507) (default %D)"),
    S("guest-uploads", 0, K_STR, guest_uploads, "on|off", NULL,
      "on: guests may share files in the lobby; off: only signed-in people (default %D)"),
    U("files-sweep", 0, files_sweep_s, 1, 86400, "SECONDS", NULL,
      "how often the files of deleted or expired messages (and uploads never sent within a "
      "day) are removed from the disk (default %D)"),
    S("log-level", 0, K_LEVEL, log_level, "LEVEL", "Logging",
      "err, warning, notice, info or debug (default %D)"),
};
#define N_SETTINGS (sizeof(settings) / sizeof(settings[0]))

size_t pv_config_setting_count(void)
{
    return N_SETTINGS;
}

const char *pv_config_setting_name(size_t i)
{
    return i < N_SETTINGS ? settings[i].name : NULL;
}

void pv_config_setting_doc(size_t i, struct pv_setting_doc *out)
{
    const struct setting *s = &settings[i];
    *out = (struct pv_setting_doc){s->name, s->short_opt, s->arg, s->group, s->help};
}

void pv_config_setting_default(size_t i, char *out, size_t n)
{
    struct pv_config d;
    pv_config_defaults(&d);
    const struct setting *s = &settings[i];
    const char *field = (const char *)&d + s->off;
    switch (s->kind) {
    case K_UINT:
        snprintf(out, n, "%u", *(const unsigned *)(const void *)field);
        break;
    case K_SIZE:
        snprintf(out, n, "%zu", *(const size_t *)(const void *)field);
        break;
    case K_LEVEL:
        snprintf(out, n, "%s", pv_log_level_name(*(const int *)(const void *)field));
        break;
    case K_STR:
    case K_ADDR:
        snprintf(out, n, "%s", field);
        break;
    }
}


__attribute__((format(printf, 3, 4))) static void errf(char *err, size_t errsz, const char *fmt,
                                                       ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errsz, fmt, ap);
    va_end(ap);
}

static int parse_num(const char *s, unsigned long long min, unsigned long long max,
                     unsigned long long *out)
{
    char *end;
    unsigned long long v;

    errno = 0;
    if (*s < '0' || *s > '9')
        return -1;
    v = strtoull(s, &end, 10);
    if (errno || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* palaverd does not terminate TLS (docs/tls.md says why): what someone
 * who tries to configure it is told, with exit status 2. */
#define PV_NO_TLS                                                                                  \
    "palaverd does not serve TLS itself (Debian 12's CivetWeb 1.15 cannot use OpenSSL 3; "         \
    "docs/tls.md says why and how): run HAProxy in front with the shipped configuration and set "  \
    "--trusted-proxies"

/* CivetWeb's port syntax for TLS: "443s" (TLS) or "443r" (redirect to
 * TLS), which someone used to CivetWeb may give as the port. */
static bool tls_port(const char *v)
{
    size_t d = strspn(v, "0123456789");
    return d > 0 && (v[d] == 's' || v[d] == 'r') && v[d + 1] == '\0';
}

/* A key or flag that asks for TLS: ssl-certificate, tls, https-port... */
static bool tls_key(const char *k, size_t n)
{
    char b[64];
    if (n >= sizeof(b))
        return false;
    for (size_t i = 0; i < n; i++)
        b[i] = (char)(k[i] >= 'A' && k[i] <= 'Z' ? k[i] - 'A' + 'a' : k[i]);
    b[n] = '\0';
    return strstr(b, "ssl") || strstr(b, "tls") || strstr(b, "cert") || strstr(b, "https");
}

/* Applies one setting; on error writes a message (without location) to err. */
static int set_option(struct pv_config *c, const struct setting *s, const char *dashes,
                      const char *value, char *err, size_t errsz)
{
    char *field = (char *)c + s->off;
    unsigned long long v;

    switch (s->kind) {
    case K_UINT:
    case K_SIZE:
        if (strcmp(s->name, "port") == 0 && tls_port(value)) {
            errf(err, errsz, "%sport %s: " PV_NO_TLS, dashes, value);
            return -1;
        }
        if (parse_num(value, s->min, s->max, &v) != 0) {
            errf(err, errsz, "invalid %s%s '%s' (expected a number from %llu to %llu)", dashes,
                 s->name, value, s->min, s->max);
            return -1;
        }
        if (s->kind == K_UINT)
            *(unsigned *)(void *)field = (unsigned)v;
        else
            *(size_t *)(void *)field = (size_t)v;
        return 0;
    case K_STR:
        if (strlen(value) >= s->size) {
            errf(err, errsz, "%s%s is too long (at most %zu bytes)", dashes, s->name, s->size - 1);
            return -1;
        }
        memcpy(field, value, strlen(value) + 1);
        return 0;
    case K_ADDR: {
        struct in_addr a;
        if (inet_pton(AF_INET, value, &a) != 1) { /* dotted quad only */
            errf(err, errsz, "invalid %s%s '%s' (expected an IPv4 address)", dashes, s->name,
                 value);
            return -1;
        }
        inet_ntop(AF_INET, &a, field, (socklen_t)s->size);
        return 0;
    }
    case K_LEVEL: {
        int level = pv_log_parse_level(value);
        if (level < 0) {
            errf(err, errsz, "invalid %s%s '%s' (expected err, warning, notice, info or debug)",
                 dashes, s->name, value);
            return -1;
        }
        *(int *)(void *)field = level;
        return 0;
    }
    }
    return -1;
}

static const struct setting *find_setting(const char *name, size_t len)
{
    for (size_t i = 0; i < N_SETTINGS; i++) {
        if (strlen(settings[i].name) == len && memcmp(settings[i].name, name, len) == 0)
            return &settings[i];
    }
    return NULL;
}

static bool is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r';
}

int pv_config_parse_text(struct pv_config *c, const char *text, size_t len, const char *name,
                         char *err, size_t errsz)
{
    char msg[256], value[PATH_MAX];
    size_t lineno = 0;

    for (size_t pos = 0; pos < len;) {
        const char *line = text + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - line) : len - pos;
        pos += n + (nl != NULL);
        lineno++;

        while (n && is_space(line[n - 1]))
            n--;
        while (n && is_space(*line)) {
            line++;
            n--;
        }
        if (n == 0 || line[0] == '#')
            continue;
        if (memchr(line, '\0', n)) {
            errf(err, errsz, "%s:%zu: NUL byte in line", name, lineno);
            return -1;
        }
        const char *eq = memchr(line, '=', n);
        if (!eq) {
            errf(err, errsz, "%s:%zu: expected 'key = value'", name, lineno);
            return -1;
        }
        size_t klen = (size_t)(eq - line);
        while (klen && is_space(line[klen - 1]))
            klen--;
        const char *v = eq + 1;
        size_t vlen = n - (size_t)(v - line);
        while (vlen && is_space(*v)) {
            v++;
            vlen--;
        }
        if (vlen >= 2 && v[0] == '"' && v[vlen - 1] == '"') { /* quoted: keeps spaces */
            v++;
            vlen -= 2;
        }
        const struct setting *s = find_setting(line, klen);
        if (!s && tls_key(line, klen)) {
            errf(err, errsz, "%s:%zu: %.*s: " PV_NO_TLS, name, lineno, (int)klen, line);
            return -1;
        }
        if (!s) {
            errf(err, errsz, "%s:%zu: unknown key '%.*s'", name, lineno,
                 (int)(klen > 64 ? 64 : klen), line);
            return -1;
        }
        if (vlen >= sizeof(value)) {
            errf(err, errsz, "%s:%zu: value of %s is too long", name, lineno, s->name);
            return -1;
        }
        memcpy(value, v, vlen);
        value[vlen] = '\0';
        if (set_option(c, s, "", value, msg, sizeof(msg)) != 0) {
            errf(err, errsz, "%s:%zu: %s", name, lineno, msg);
            return -1;
        }
    }
    return 0;
}

int pv_config_check(struct pv_config *c, char *err, size_t errsz)
{
    if (strcmp(c->guest_rooms, "on") != 0 && strcmp(c->guest_rooms, "off") != 0) {
        errf(err, errsz, "guest-rooms must be on or off, not '%s'", c->guest_rooms);
        return -1;
    }
    if (strcmp(c->guest_uploads, "on") != 0 && strcmp(c->guest_uploads, "off") != 0) {
        errf(err, errsz, "guest-uploads must be on or off, not '%s'", c->guest_uploads);
        return -1;
    }
    if (strcmp(c->registration, "invite") != 0 && strcmp(c->registration, "open") != 0 &&
        strcmp(c->registration, "closed") != 0) {
        errf(err, errsz, "registration must be invite, open or closed, not '%s'", c->registration);
        return -1;
    }
    if (strcmp(c->auth, "open") != 0 && strcmp(c->auth, "members") != 0) {
        errf(err, errsz, "auth must be open or members, not '%s'", c->auth);
        return -1;
    }
    if (c->writers_max < c->writers)
        c->writers_max = c->writers;
    if (c->max_text > c->max_message) {
        errf(err, errsz, "max-text (%zu) must not exceed max-message (%zu)", c->max_text,
             c->max_message);
        return -1;
    }
    if (c->idle_timeout_ms <= c->ping_interval_ms) {
        errf(err, errsz,
             "idle-timeout (%u ms) must be longer than ping-interval (%u ms), or live but "
             "quiet clients would be closed before they could answer a ping",
             c->idle_timeout_ms, c->ping_interval_ms);
        return -1;
    }
    if (c->rate_limit && c->rate_burst < 1) {
        errf(err, errsz, "rate-burst must be at least 1");
        return -1;
    }
    char why[160];
    if (pv_cidrs_parse(c->trusted_proxies, &c->trusted, why, sizeof(why)) != 0) {
        errf(err, errsz, "trusted-proxies: %s", why);
        return -1;
    }
    if (c->access_control_list[0] && pv_acl_check(c->access_control_list, "127.0.0.1") < 0) {
        errf(err, errsz,
             "access-control-list '%s' is malformed (expected entries like -0.0.0.0/0 or "
             "+192.168.1.0/24, separated by commas)",
             c->access_control_list);
        return -1;
    }
    return 0;
}

/* Builds the option table for getopt_long from the settings table. */
enum { OPT_CONFIG = 'C', OPT_CHECK = 200, OPT_PRINT = 201, OPT_CREATE_ADMIN = 202 };

static void getopt_tables(struct option *longopts, char *shortopts)
{
    size_t ns = 0;
    shortopts[ns++] = 'h';
    shortopts[ns++] = 'V';
    shortopts[ns++] = 'C';
    shortopts[ns++] = ':';
    for (size_t i = 0; i < N_SETTINGS; i++) {
        longopts[i] = (struct option){settings[i].name, required_argument, NULL,
                                      settings[i].short_opt ? settings[i].short_opt : 256 + (int)i};
        if (settings[i].short_opt) {
            shortopts[ns++] = (char)settings[i].short_opt;
            shortopts[ns++] = ':';
        }
    }
    shortopts[ns] = '\0';
    longopts[N_SETTINGS] = (struct option){"help", no_argument, NULL, 'h'};
    longopts[N_SETTINGS + 1] = (struct option){"version", no_argument, NULL, 'V'};
    longopts[N_SETTINGS + 2] = (struct option){"config", required_argument, NULL, OPT_CONFIG};
    longopts[N_SETTINGS + 3] = (struct option){"check-config", no_argument, NULL, OPT_CHECK};
    longopts[N_SETTINGS + 4] =
        (struct option){"print-settings", required_argument, NULL, OPT_PRINT};
    longopts[N_SETTINGS + 5] =
        (struct option){"create-admin", required_argument, NULL, OPT_CREATE_ADMIN};
    longopts[N_SETTINGS + 6] = (struct option){NULL, 0, NULL, 0};
}

static int load_file(struct pv_config *c, const char *path, bool must_exist, char *err,
                     size_t errsz)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        if (!must_exist && errno == ENOENT)
            return 0; /* no file at the default place: embedded defaults */
        errf(err, errsz, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    char *text = NULL;
    size_t len = 0, cap = 0, n;
    do {
        if (len + 4096 > cap) {
            cap = cap ? cap * 2 : 8192;
            char *grown = realloc(text, cap);
            if (!grown)
                abort(); /* palaver's out-of-memory policy (xalloc.h) */
            text = grown;
        }
        n = fread(text + len, 1, cap - len, f);
        len += n;
    } while (n > 0 && len < (1u << 20));
    bool too_big = len >= (1u << 20);
    fclose(f);
    int rc = too_big ? (errf(err, errsz, "%s: larger than 1 MiB", path), -1)
                     : pv_config_parse_text(c, text, len, path, err, errsz);
    free(text);
    return rc;
}

/* PORT, then PALAVER_<KEY> for every key (max-clients: PALAVER_MAX_CLIENTS). */
static int load_env(struct pv_config *c, char *err, size_t errsz)
{
    char msg[400], var[64];
    const char *v = getenv("PORT");
    if (v && *v && set_option(c, find_setting("port", 4), "", v, msg, sizeof(msg)) != 0) {
        errf(err, errsz, "PORT environment variable: %s", msg);
        return -1;
    }
    for (size_t i = 0; i < N_SETTINGS; i++) {
        size_t k = (size_t)snprintf(var, sizeof(var), "PALAVER_");
        for (const char *p = settings[i].name; *p && k + 1 < sizeof(var); p++) {
            char up = *p;
            if (up == '-')
                up = '_';
            else if (up >= 'a' && up <= 'z')
                up = (char)(up - 'a' + 'A');
            var[k++] = up;
        }
        var[k] = '\0';
        v = getenv(var);
        if (v && set_option(c, &settings[i], "", v, msg, sizeof(msg)) != 0) {
            errf(err, errsz, "%s environment variable: %s", var, msg);
            return -1;
        }
    }
    return 0;
}

int pv_config_load(struct pv_config *c, int argc, char **argv, enum pv_config_action *action,
                   char *err, size_t errsz)
{
    struct option longopts[N_SETTINGS + 7];
    char shortopts[80], msg[512];
    const char *path = PV_DEFAULT_CONFIG;
    bool explicit_path = false;
    int opt, idx;

    *action = PV_CONFIG_RUN;
    err[0] = '\0';
    pv_config_defaults(c);
    getopt_tables(longopts, shortopts);

    /* Pass 1: which file, and what to do. */
    opterr = 0;
    optind = 1;
    while ((opt = getopt_long(argc, argv, shortopts, longopts, &idx)) != -1) {
        if (opt == OPT_CONFIG) {
            path = optarg;
            explicit_path = true;
        } else if (opt == OPT_CHECK) {
            *action = PV_CONFIG_CHECK;
        } else if (opt == OPT_CREATE_ADMIN) {
            if (strlen(optarg) >= sizeof(c->create_admin)) {
                errf(err, errsz, "--create-admin: the name is too long");
                return -1;
            }
            snprintf(c->create_admin, sizeof(c->create_admin), "%s", optarg);
            *action = PV_CONFIG_CREATE_ADMIN;
        } else if (opt == 'h') {
            pv_config_usage(stdout);
            *action = PV_CONFIG_DONE;
            return 0;
        } else if (opt == 'V') {
            printf("palaverd %s\n", PALAVER_VERSION);
            *action = PV_CONFIG_DONE;
            return 0;
        } else if (opt == OPT_PRINT) {
            /* For the docs: regenerates the settings of the sample file or
             * of palaverd.conf(5) (docs/style.md, "Settings"). */
            if (strcmp(optarg, "conf") != 0 && strcmp(optarg, "man") != 0) {
                errf(err, errsz, "--print-settings takes conf or man, not '%s'", optarg);
                return -1;
            }
            pv_config_print_settings(stdout, optarg);
            *action = PV_CONFIG_DONE;
            return 0;
        }
    }
    if (strlen(path) >= sizeof(c->config_path)) {
        errf(err, errsz, "--config path is too long");
        return -1;
    }
    /* defaults < file < environment < flags */
    if (load_file(c, path, explicit_path, err, errsz) != 0)
        return -1;
    snprintf(c->config_path, sizeof(c->config_path), "%s", path);
    if (load_env(c, err, errsz) != 0)
        return -1;

    opterr = 0;
    optind = 1;
    while ((opt = getopt_long(argc, argv, shortopts, longopts, &idx)) != -1) {
        const struct setting *s = NULL;
        if (opt == OPT_CONFIG || opt == OPT_CHECK || opt == OPT_PRINT || opt == OPT_CREATE_ADMIN)
            continue;
        if (opt >= 256 && opt < 256 + (int)N_SETTINGS) {
            s = &settings[opt - 256];
        } else {
            for (size_t i = 0; i < N_SETTINGS && !s; i++)
                if (settings[i].short_opt == opt)
                    s = &settings[i];
        }
        if (!s) {
            const char *a = argv[optind - 1];
            if (optopt && optopt < 256)
                errf(err, errsz, "unknown or incomplete option '-%c' (see --help)", optopt);
            else if (strncmp(a, "--", 2) == 0 && tls_key(a + 2, strcspn(a + 2, "=")))
                errf(err, errsz, "%.*s: " PV_NO_TLS, (int)strcspn(a, "="), a);
            else
                errf(err, errsz, "unknown or incomplete option '%s' (see --help)",
                     argv[optind - 1]);
            return -1;
        }
        if (set_option(c, s, "--", optarg, msg, sizeof(msg)) != 0) {
            errf(err, errsz, "%s", msg);
            return -1;
        }
    }
    if (optind < argc) {
        errf(err, errsz, "unexpected argument '%s'", argv[optind]);
        return -1;
    }
    return pv_config_check(c, err, errsz);
}

int pv_config_parse(struct pv_config *c, int argc, char **argv)
{
    enum pv_config_action action;
    char err[512];
    if (pv_config_load(c, argc, argv, &action, err, sizeof(err)) != 0) {
        fprintf(stderr, "palaverd: %s\n", err);
        return -1;
    }
    return action == PV_CONFIG_DONE ? 1 : 0;
}

/* The one list of settings SIGHUP changes live (live.h publishes them
 * to the workers). */
void pv_config_take_live(struct pv_config *dst, const struct pv_config *src)
{
    dst->log_level = src->log_level;
    dst->rate_limit = src->rate_limit;
    dst->rate_burst = src->rate_burst;
    dst->max_per_ip = src->max_per_ip;
    memcpy(dst->allowed_origins, src->allowed_origins, sizeof(dst->allowed_origins));
    memcpy(dst->allowed_hosts, src->allowed_hosts, sizeof(dst->allowed_hosts));
    memcpy(dst->auth, src->auth, sizeof(dst->auth));
}

bool pv_config_live_equal(const struct pv_config *a, const struct pv_config *b, char *what,
                          size_t n)
{
    /* Everything but the live settings must be equal to reload live. */
    struct pv_config x = *a;
    pv_config_take_live(&x, b);
    const struct pv_config *y = b;
    what[0] = '\0';
    for (size_t i = 0; i < N_SETTINGS; i++) {
        const struct setting *s = &settings[i];
        size_t size = s->kind == K_UINT    ? sizeof(unsigned)
                      : s->kind == K_SIZE  ? sizeof(size_t)
                      : s->kind == K_LEVEL ? sizeof(int)
                                           : s->size;
        if (memcmp((const char *)&x + s->off, (const char *)y + s->off, size) != 0) {
            size_t used = strlen(what);
            snprintf(what + used, n - used, "%s%s", used ? ", " : "", s->name);
        }
    }
    return what[0] == '\0';
}
