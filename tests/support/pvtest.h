/* pvtest.h -- test support: spawn the real palaverd, talk RFC 6455 to it.
 *
 * The server helper starts palaverd on a free port (--port 0) with
 * NOTIFY_SOCKET pointing at a datagram socket the test owns, and waits for
 * READY=1 (and X_PALAVER_PORT) -- the systemd readiness protocol, never a
 * fixed sleep. Its stderr goes to a log file the test can search.
 *
 * The client is a minimal blocking WebSocket client: it checks the
 * handshake (status, Sec-WebSocket-Accept, subprotocol), masks what it
 * sends, and can send arbitrary or broken frames.
 *
 * Threads: a struct srv or struct wsc belongs to one test thread.
 */
#ifndef PVTEST_H
#define PVTEST_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct srv {
    pid_t pid;
    int port;
    char log[512];
    int notify_fd;      /* the test's NOTIFY_SOCKET, kept after READY=1 */
    bool stopping_seen; /* srv_stop() got STOPPING=1 */
};

/* Starts palaverd with default test flags plus extra (NULL-terminated,
 * may be NULL). Returns 0 when READY=1 arrived, -1 otherwise. */
int srv_start(struct srv *s, const char *const *extra);
/* The same with extra environment entries ("NAME=value", NULL-terminated).
 * PVTEST_UID=<uid> among them runs palaverd as that user (when root). */
int srv_start_env(struct srv *s, const char *const *extra, const char *const *envs);
/* Waits for a notify datagram containing needle; copies it to out. */
bool srv_notify_wait(struct srv *s, const char *needle, int timeout_ms, char *out, size_t n);
/* SIGTERM, then waits up to 20 s. Returns the exit status (0..255),
 * 128+signal if it died of a signal, or -1 if it did not exit in time. */
int srv_stop(struct srv *s);
/* True if the log contains needle. */
bool srv_log_has(const struct srv *s, const char *needle);
/* How many times needle occurs in the log. */
int srv_log_count(const struct srv *s, const char *needle);
/* Waits (bounded, re-reading the log) until the log contains needle. */
bool srv_log_wait(const struct srv *s, const char *needle, int timeout_ms);
/* The number right after the last occurrence of needle, or -1. */
long srv_log_last_number(const struct srv *s, const char *needle);
/* Prints the server log to stderr (on failure). */
void srv_dump_log(const struct srv *s);

struct wsc_opts {
    const char *path;        /* default "/ws" */
    const char *subprotocol; /* offered subprotocol(s), or NULL */
    int rcvbuf;              /* SO_RCVBUF before connect, 0 = default */
    const char *headers;     /* extra header lines, each ending in \r\n */
    const char *host;        /* Host header value, default "127.0.0.1:<port>" */
    const char *from;        /* source address (127.0.0.x: another host), default 127.0.0.1 */
    const char *tls_ca;      /* TLS (to a terminator): verify the server against this CA file */
    const char *tls_name;    /* the name (or IP) the certificate must carry, default 127.0.0.1 */
};

struct ssl_st;

struct wsc {
    int fd;
    struct ssl_st *ssl; /* TLS session (wsc_opts.tls_ca), or NULL */
    bool tls_error;     /* the TLS handshake or the certificate check failed */
    int status;         /* HTTP status of the handshake */
    char protocol[64];  /* Sec-WebSocket-Protocol answered, or "" */
    bool accept_ok;     /* Sec-WebSocket-Accept matched */
    char *response;     /* raw HTTP response head (and any body) */
    bool manual_pings;  /* false: wsc_recv answers pings (and still returns them) */
    int close_code;     /* code of the close frame received, or -1 */
    char close_reason[128];
    unsigned char *buf; /* received, not yet parsed */
    size_t len, cap;
    size_t rx_bytes; /* WebSocket bytes received (after the handshake head) */
};

struct wsc_frame {
    bool fin;
    int opcode;
    size_t len;
    unsigned char *data; /* malloc'd, NUL-terminated */
};

/* Connects and performs the handshake. Returns NULL if TCP fails; check
 * c->status == 101 for success. */
struct wsc *wsc_open(int port, const struct wsc_opts *o);
void wsc_free(struct wsc *c);

/* Sends one masked frame. Returns 0, or -1 on a socket error. */
int wsc_send(struct wsc *c, bool fin, int opcode, const void *data, size_t len);
/* Sends a frame with arbitrary first byte (RSV bits, opcodes). */
int wsc_send_bits(struct wsc *c, uint8_t first, const void *data, size_t len);
int wsc_send_raw(struct wsc *c, const void *data, size_t len);
/* Encodes one masked client frame into a malloc'd *out; returns its length. */
size_t wsc_encode(uint8_t first, const void *data, size_t len, unsigned char **out);
/* Sends bytes in pieces of `chop` bytes, each its own send(2) with
 * TCP_NODELAY (0: all at once). */
int wsc_send_chopped(struct wsc *c, const void *bytes, size_t len, size_t chop);
int wsc_send_text(struct wsc *c, const char *text);
/* Sends {"type":"message","msgId":id,"text":text,"clientKey":key,"date":now}. */
int wsc_send_chat(struct wsc *c, long long msg_id, const char *text, const char *key);

/* Receives one frame. 1 = got one, 0 = timeout, -1 = connection closed or
 * error. A close frame is returned as a frame and also recorded in
 * close_code / close_reason. A ping is answered with a pong, as a browser
 * does, unless manual_pings is set; it is returned all the same. */
int wsc_recv(struct wsc *c, struct wsc_frame *f, int timeout_ms);
void wsc_frame_free(struct wsc_frame *f);

/* Next text frame as JSON (NULL on timeout, close or bad JSON). */
json_t *wsc_recv_json(struct wsc *c, int timeout_ms);
/* Skips messages until one of this type arrives (NULL if none in time). */
json_t *wsc_expect(struct wsc *c, const char *type, int timeout_ms);
/* Reads until a close frame arrives or the connection ends; returns the
 * close code (-1 if none came). */
int wsc_wait_close(struct wsc *c, int timeout_ms);

/* Runs argv (PATH searched) with extra environment entries and
 * NOTIFY_SOCKET unset; returns the exit status (128+signal if killed) and
 * stdout+stderr in out. */
int run_capture(const char *const *argv, const char *const *envs, char *out, size_t outsz);
/* A fresh directory /tmp/palaver-<name>-XXXXXX (written to out), and its
 * removal with everything in it (returns 0). */
bool tmpdir_make(char *out, size_t n, const char *name);
int tmpdir_remove(const char *dir);

/* A raw request over TLS, the certificate checked against ca_file and
 * name; the status (or -1) and the answer in out, as http_request. */
int tls_request(int port, const char *ca_file, const char *name, const char *req, char *out,
                size_t outsz);

/* A free TCP port on 127.0.0.1 now (bound and released). */
int free_port(void);

/* Debian's HAProxy with the tree's shipped configuration
 * (cmake/tls/haproxy.cfg) in front of a palaverd on backend_port: a CA
 * and a certificate for 127.0.0.1 and localhost made by the tree's
 * cmake/tls/palaver-cert in a temporary directory, https on `port`,
 * plain http (redirects) on `http_port`, its log in log. proxy_start()
 * returns 0 once a TLS request through it reaches palaverd's /healthz. */
struct proxy {
    pid_t pid;
    int port, http_port;
    char dir[256];
    char ca[320]; /* the CA file clients verify against */
    char log[512];
};
int proxy_start(struct proxy *p, int backend_port);
/* The same with one more "NAME=value" for HAProxy's environment (NULL:
 * none), e.g. a lower PALAVER_CONN_PER_SRC. */
int proxy_start_env(struct proxy *p, int backend_port, const char *env);
/* Reloads it as `systemctl reload haproxy` does (SIGUSR2 to the master):
 * new workers read the configuration and certificates again, the old
 * ones keep their connections. 0, or -1. */
int proxy_reload(struct proxy *p);
/* Stops it and removes its directory; returns its wait status. */
int proxy_stop(struct proxy *p);

/* Plain HTTP GET; returns the status (or -1) and copies headers+body. */
int http_get(int port, const char *path, char *out, size_t outsz);
/* Sends a raw request (head and body as given); the same answer. */
int http_request(int port, const char *req, char *out, size_t outsz);
/* Sends head (the request line and headers, ending in a blank line), then
 * body[0..n), then, with hangup, ends the sending side (a client gone
 * mid-upload); reads the whole answer (binary-safe, malloc'd to *out when
 * out is not NULL). Returns the status, -1 on no answer. */
int http_raw(int port, const char *head, const void *body, size_t n, bool hangup, char **out,
             size_t *out_len);
/* Sends head only and returns with the first bytes of the answer (to
 * out), or -1 if none came within timeout_ms: whether the server answers
 * without waiting for a body it was promised. */
int http_first(int port, const char *head, char *out, size_t n, int timeout_ms);

/* A process's resident set size in KiB (/proc/PID/status), or -1. */
long rss_kib(pid_t pid);

/* Milliseconds on the monotonic clock. */
int64_t mono_ms(void);

/* Joins the registry, reading the id and presence messages; fills key and
 * id when given. Returns 0 on success. */
int wsc_join(struct wsc *c, char key[64], char id[32]);

#endif
