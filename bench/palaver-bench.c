/* palaver-bench -- WebSocket chat load generator.
 *
 * Opens many client connections from one epoll loop, speaks seed 000's
 * protocol (so it can target any server that does: palaverd, or a Node.js
 * reference), and measures what a chat user feels: every message carries
 * its sender, a per-sender sequence number and its send time, so each
 * receiver computes delivery latency (same machine, CLOCK_MONOTONIC) and
 * detects gaps, duplicates and echoes of its own messages.
 *
 * wss:// URLs speak TLS (OpenSSL, non-blocking, in the same loop), to
 * measure palaverd behind its terminator (docs/tls.md); --proxy-pid
 * samples the terminator's CPU beside the broker's.
 *
 * Threads: one event loop owns everything below, but for --uploads: that
 * many uploader threads (upload_main), which share with it only the
 * `uploading` flag and their counters (atomics) and read `o` after the
 * loop has stopped writing it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum state { CONNECTING, TLS_HANDSHAKE, HANDSHAKE, OPEN, CLOSED };

struct conn {
    int fd;
    SSL *ssl; /* wss://: its TLS session */
    int index;
    enum state state;
    bool sender;
    bool stalled; /* completes the handshake, then never reads */
    bool churn;   /* reconnects every churn_ms; not counted as a reader */
    bool counted; /* its first connection was counted in st.connected */
    uint64_t opened_ns;
    int sender_no; /* index among senders, or -1 */
    int dialect;   /* --dialects: 0 palaver's protocol, 1 seed 004's text, 2 seed 003's echo,
                    * 3 seed 002's Socket.IO (a WebSocket from the start, as
                    * transports: ["websocket"]: the polling handshake is not what a
                    * fanout measures) */
    char key[32];
    unsigned char *in; /* unparsed input */
    size_t in_len, in_cap;
    unsigned char *out; /* unsent output */
    size_t out_len, out_cap, out_off;
    uint64_t next_send_ns;
    uint64_t sent, acked;
    int64_t *last_seq; /* per sender: last sequence seen (receivers) */
    int room;          /* --rooms: its room (index % rooms), else -1 */
    bool joined;       /* --rooms: its own join was confirmed */
    /* --read-markers: the newest rseq received, the one last marked read,
     * and when the pending marker goes (0: none pending), as the page
     * does it: one a second at most, a second after what it covers came. */
    uint64_t rseq, marked, marker_due_ns;
    /* The newest message's last bytes: its rseq is among them (palaverd
     * writes "rseq" and "serverDate" last), parsed only when a marker goes,
     * not per message: the bench is one thread and must not slow down
     * with the feature it measures. */
    char tail[64];
    unsigned tail_len;
};

struct opts {
    char host[256], path[256], subprotocol[64], cookie[256];
    int port;
    int clients, senders, stall, window, size, duration_s, warmup_ms;
    int churn, churn_ms;
    int rooms; /* clients split into this many rooms ("r0".."rN-1"), 0: none */
    bool check_page;
    bool read_markers;               /* readers send read markers as the page does */
    int marker_ms, marker_jitter_ms; /* their delay: marker_ms + [0, jitter) */
    char **cookies;                  /* --cookies: one per line, client i uses i % n */
    int cookies_n;
    double rate; /* per sender, messages/s; 0 = as fast as the window allows */
    int broker_pid, proxy_pid;
    bool tls;       /* wss:// */
    const char *ca; /* --ca: verify the server against this CA file */
    const char *json_out, *label;
    int dialects;      /* --dialects N: readers split over the first N of palaver, text, echo, sio
                        * (docs/dialects.md); 0 or 1: all palaver */
    int uploads;       /* --uploads: uploader threads during the measured seconds */
    long upload_bytes; /* --upload-bytes: each upload's size */
};

static SSL_CTX *tls_ctx;

/* Log-linear latency histogram, microseconds: exact below 128 us, then 64
 * sub-buckets per power of two (under 1.6% error). */
#define HBUCKETS (128 + 40 * 64)
static uint64_t hist[HBUCKETS];
static uint64_t hist_max;

static int bucket_of(uint64_t us)
{
    if (us < 128)
        return (int)us;
    int e = 63 - __builtin_clzll(us);
    int b = 128 + (e - 7) * 64 + (int)((us >> (e - 6)) & 63);
    return b < HBUCKETS ? b : HBUCKETS - 1;
}

static uint64_t bucket_value(int b)
{
    if (b < 128)
        return (uint64_t)b;
    int e = (b - 128) / 64 + 7, sub = (b - 128) % 64;
    return ((uint64_t)(64 + sub) << (e - 6)) + ((1ull << (e - 6)) / 2);
}

static uint64_t percentile(double p, uint64_t total)
{
    uint64_t want = (uint64_t)ceil(p * (double)total), seen = 0;
    for (int b = 0; b < HBUCKETS; b++) {
        seen += hist[b];
        if (seen >= want && want > 0)
            return bucket_value(b);
    }
    return hist_max;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static struct {
    uint64_t delivered, expected, echoes, gaps, dups, sent, acked, errors, closed;
    uint64_t churn_cycles;
    uint64_t markers;        /* read markers sent */
    uint64_t receipt_frames; /* receipts, read, typing and seen frames received */
    int connected, failed;
} st;

static struct conn *conns;
static struct opts o;
static int ep;
static bool sending = true;
static int open_receivers; /* open, non-stalled */

static void die(const char *msg)
{
    perror(msg);
    exit(2);
}

static void grow(unsigned char **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return;
    size_t c = *cap ? *cap : 4096;
    while (c < need)
        c *= 2;
    *buf = realloc(*buf, c);
    if (!*buf)
        die("realloc");
    *cap = c;
}

static void watch(struct conn *c, uint32_t events)
{
    struct epoll_event ev = {.events = events, .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0)
        die("epoll_ctl");
}

/* send(2)/recv(2), or through TLS: -1 with errno EAGAIN when it must
 * wait for the socket, 0 from io_recv when the peer closed. */
static ssize_t io_send(struct conn *c, const void *p, size_t n)
{
    if (!c->ssl)
        return send(c->fd, p, n, MSG_NOSIGNAL);
    int r = SSL_write(c->ssl, p, n > 1 << 30 ? 1 << 30 : (int)n);
    if (r > 0)
        return r;
    int e = SSL_get_error(c->ssl, r);
    ERR_clear_error();
    errno = (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) ? EAGAIN : EPIPE;
    return -1;
}

static ssize_t io_recv(struct conn *c, void *p, size_t n)
{
    if (!c->ssl)
        return recv(c->fd, p, n, 0);
    int r = SSL_read(c->ssl, p, n > 1 << 30 ? 1 << 30 : (int)n);
    if (r > 0)
        return r;
    int e = SSL_get_error(c->ssl, r);
    ERR_clear_error();
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        errno = EAGAIN;
        return -1;
    }
    return 0;
}

static void conn_close(struct conn *c)
{
    if (c->ssl) {
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->fd > 0)
        close(c->fd);
}

static void flush_out(struct conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = io_send(c, c->out + c->out_off, c->out_len - c->out_off);
        if (n < 0) {
            if (errno == EAGAIN)
                break;
            c->state = CLOSED;
            return;
        }
        c->out_off += (size_t)n;
    }
    if (c->out_off == c->out_len)
        c->out_off = c->out_len = 0;
    uint32_t want = (c->stalled && c->state == OPEN) ? 0 : EPOLLIN;
    if (c->out_len)
        want |= EPOLLOUT;
    watch(c, want);
}

static void queue_frame(struct conn *c, int opcode, const char *data, size_t len)
{
    unsigned char hdr[14];
    size_t h = 0;
    uint32_t mask = (uint32_t)rand();
    hdr[h++] = (unsigned char)(0x80 | opcode);
    if (len < 126) {
        hdr[h++] = (unsigned char)(0x80 | len);
    } else if (len <= 0xFFFF) {
        hdr[h++] = 0x80 | 126;
        hdr[h++] = (unsigned char)(len >> 8);
        hdr[h++] = (unsigned char)len;
    } else {
        hdr[h++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            hdr[h++] = (unsigned char)((uint64_t)len >> (8 * i));
    }
    memcpy(hdr + h, &mask, 4);
    h += 4;
    grow(&c->out, &c->out_cap, c->out_len + h + len);
    memcpy(c->out + c->out_len, hdr, h);
    unsigned char *p = c->out + c->out_len + h, *m = (unsigned char *)&mask;
    for (size_t i = 0; i < len; i++)
        p[i] = (unsigned char)data[i] ^ m[i & 3];
    c->out_len += h + len;
}

static void send_chat(struct conn *c)
{
    char buf[70000];
    uint64_t t = now_ns();
    int n = snprintf(buf, sizeof(buf),
                     "{\"type\":\"message\",\"msgId\":%" PRIu64 ",\"text\":\"b%d:%" PRIu64
                     ":%" PRIu64 ":",
                     c->sent, c->sender_no, c->sent, t);
    int pad = o.size - n - 40;
    if (pad > 0 && n + pad < (int)sizeof(buf) - 64) {
        memset(buf + n, 'x', (size_t)pad);
        n += pad;
    }
    n += snprintf(buf + n, sizeof(buf) - (size_t)n, "\",\"clientKey\":\"\",\"date\":%lld",
                  (long long)time(NULL) * 1000);
    if (c->room >= 0)
        n += snprintf(buf + n, sizeof(buf) - (size_t)n, ",\"room\":\"r%d\"", c->room);
    buf[n++] = '}';
    queue_frame(c, 1, buf, (size_t)n);
    c->sent++;
    st.sent++;
}

static void maybe_send(struct conn *c, uint64_t now)
{
    if (!c->sender || c->state != OPEN || !sending)
        return;
    while (c->sent - c->acked < (uint64_t)o.window) {
        if (o.rate > 0) {
            if (now < c->next_send_ns)
                break;
            c->next_send_ns += (uint64_t)(1e9 / o.rate);
            if (c->next_send_ns < now - 1000000000ull) /* do not burst after a stall */
                c->next_send_ns = now;
        }
        send_chat(c);
    }
    if (c->out_len)
        flush_out(c);
}

static void on_message(struct conn *c, const char *p, size_t len)
{
    /* Seed 002's Engine.IO: the open packet asks for the namespace
     * connect, a ping for its pong, as socket.io-client does. */
    if (c->dialect == 3 && len >= 1 && (p[0] == '0' || (len == 1 && p[0] == '2'))) {
        queue_frame(c, 1, p[0] == '0' ? "40" : "3", p[0] == '0' ? 2 : 1);
        flush_out(c);
        return;
    }
    if (len > 20 && memcmp(p, "{\"type\":\"ack\"", 13) == 0) {
        c->acked++;
        st.acked++;
        return;
    }
    if (len > 20 && memcmp(p, "{\"type\":\"error\"", 15) == 0) {
        st.errors++;
        return;
    }
    if (len > 16 &&
        (memcmp(p, "{\"type\":\"receipts\"", 18) == 0 || memcmp(p, "{\"type\":\"read\"", 14) == 0 ||
         memcmp(p, "{\"type\":\"typing\"", 16) == 0 || memcmp(p, "{\"type\":\"seen\"", 14) == 0)) {
        st.receipt_frames++;
        return;
    }
    /* --rooms: our own join, confirmed by the member event naming us. */
    if (c->room >= 0 && !c->joined && memmem(p, len, "\"type\":\"member\"", 15)) {
        char me[32];
        int n = snprintf(me, sizeof(me), "\"name\":\"b%d\"", c->index);
        if (memmem(p, len, me, (size_t)n))
            c->joined = true;
        return;
    }
    /* The message's text "b<sender>:<seq>:<ns>:...": in palaver's JSON
     * (servers that add fields too), in a text dialect's "name: text"
     * line, in an echo dialect's {"name",...,"message":...}. */
    const char *t = NULL;
    size_t skip = 0;
    if (c->churn)
        return;
    if (c->dialect == 1) {
        t = memmem(p, len, ": b", 3);
        skip = 3;
    } else if (c->dialect == 2) {
        t = len > 0 && p[0] == '{' ? memmem(p, len, "\"message\":\"b", 12) : NULL;
        skip = 12;
    } else if (c->dialect == 3) {
        t = len > 20 && memcmp(p, "42[\"chat message\"", 17) == 0 ? memmem(p, len, "\"msg\":\"b", 8)
                                                                  : NULL;
        skip = 8;
    } else if (len > 20 && memcmp(p, "{\"type\":\"message\"", 17) == 0) {
        t = memmem(p, len, "\"text\":\"b", 9);
        skip = 9;
    }
    int sender;
    uint64_t seq, sent_ns;
    if (!t || sscanf(t + skip, "%d:%" SCNu64 ":%" SCNu64, &sender, &seq, &sent_ns) != 3)
        return;
    if (sender < 0 || sender >= o.senders)
        return;
    if (c->sender && sender == c->sender_no) {
        st.echoes++;
        return;
    }
    int64_t last = c->last_seq[sender];
    if ((int64_t)seq <= last)
        st.dups++;
    else if ((int64_t)seq > last + 1)
        st.gaps += (uint64_t)((int64_t)seq - last - 1);
    if ((int64_t)seq > last)
        c->last_seq[sender] = (int64_t)seq;
    uint64_t now = now_ns(), us = (now - sent_ns) / 1000;
    if (o.read_markers) {
        c->tail_len = len < sizeof(c->tail) ? (unsigned)len : (unsigned)sizeof(c->tail);
        memcpy(c->tail, p + len - c->tail_len, c->tail_len);
        if (!c->marker_due_ns)
            c->marker_due_ns =
                now + (uint64_t)o.marker_ms * 1000000u +
                (o.marker_jitter_ms ? (uint64_t)(rand() % o.marker_jitter_ms) * 1000000u : 0);
    }
    hist[bucket_of(us)]++;
    if (us > hist_max)
        hist_max = us;
    st.delivered++;
}

/* --read-markers: every reader whose marker is due says it has read up
 * to the newest message it got (the page, visible and at the bottom). */
static void send_markers(uint64_t now)
{
    for (int i = 0; i < o.clients; i++) {
        struct conn *c = &conns[i];
        if (!c->marker_due_ns || now < c->marker_due_ns || c->state != OPEN)
            continue;
        c->marker_due_ns = 0;
        const char *r = memmem(c->tail, c->tail_len, "\"rseq\":", 7);
        uint64_t rseq;
        if (r && sscanf(r + 7, "%" SCNu64, &rseq) == 1 && rseq > c->rseq)
            c->rseq = rseq;
        if (c->rseq <= c->marked)
            continue;
        char buf[96], room[16] = "lobby";
        if (c->room >= 0)
            snprintf(room, sizeof(room), "r%d", c->room);
        int n = snprintf(buf, sizeof(buf),
                         "{\"type\":\"read\",\"room\":\"%s\",\"rseq\":%" PRIu64 "}", room, c->rseq);
        queue_frame(c, 1, buf, (size_t)n);
        flush_out(c);
        c->marked = c->rseq;
        st.markers++;
    }
}

static void parse_frames(struct conn *c)
{
    size_t off = 0;
    while (c->in_len - off >= 2) {
        unsigned char *b = c->in + off;
        size_t h = 2, plen = b[1] & 0x7F;
        if (plen == 126) {
            if (c->in_len - off < 4)
                break;
            plen = ((size_t)b[2] << 8) | b[3];
            h = 4;
        } else if (plen == 127) {
            if (c->in_len - off < 10)
                break;
            plen = 0;
            for (int i = 0; i < 8; i++)
                plen = (plen << 8) | b[2 + i];
            h = 10;
        }
        if (c->in_len - off < h + plen)
            break;
        int op = b[0] & 0x0F;
        if (op == 1)
            on_message(c, (const char *)b + h, plen);
        else if (op == 9)
            queue_frame(c, 0xA, (const char *)b + h, plen);
        else if (op == 8)
            c->state = CLOSED;
        off += h + plen;
    }
    memmove(c->in, c->in + off, c->in_len - off);
    c->in_len -= off;
}

static void start_handshake(struct conn *c)
{
    unsigned char nonce[16];
    char req[1536];
    for (int i = 0; i < 16; i++)
        nonce[i] = (unsigned char)rand();
    EVP_EncodeBlock((unsigned char *)c->key, nonce, 16);
    /* --rooms: each client is named b<index>, to know its own join. */
    char path[300];
    const char *cookie = o.cookies_n ? o.cookies[c->index % o.cookies_n] : o.cookie;
    const char *sub = o.subprotocol;
    if (c->room >= 0)
        snprintf(path, sizeof(path), "%s%cname=b%d", o.path, strchr(o.path, '?') ? '&' : '?',
                 c->index);
    else if (c->dialect == 3)
        snprintf(path, sizeof(path), "/socket.io/?EIO=4&transport=websocket");
    else if (c->dialect)
        snprintf(path, sizeof(path), "/"); /* the seeds' dialects live on / */
    else
        snprintf(path, sizeof(path), "%s", o.path);
    if (c->dialect == 1 || c->dialect == 3)
        sub = "";
    else if (c->dialect == 2)
        sub = "echo-protocol";
    int n = snprintf(
        req, sizeof(req),
        "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n%s%s%s%s%s%s\r\n",
        path, o.host, o.port, c->key, sub[0] ? "Sec-WebSocket-Protocol: " : "", sub,
        sub[0] ? "\r\n" : "", cookie[0] ? "Cookie: " : "", cookie, cookie[0] ? "\r\n" : "");
    grow(&c->out, &c->out_cap, (size_t)n);
    memcpy(c->out, req, (size_t)n);
    c->out_len = (size_t)n;
    c->state = HANDSHAKE;
    flush_out(c);
}

static bool check_handshake(struct conn *c)
{
    char *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
    if (!end)
        return false;
    size_t head = (size_t)(end - (char *)c->in) + 4;
    char expect[64], in[128];
    unsigned char digest[SHA_DIGEST_LENGTH];
    snprintf(in, sizeof(in), "%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", c->key);
    SHA1((unsigned char *)in, strlen(in), digest);
    EVP_EncodeBlock((unsigned char *)expect, digest, SHA_DIGEST_LENGTH);
    bool ok = head > 12 && memcmp(c->in, "HTTP/1.1 101", 12) == 0 &&
              memmem(c->in, head, expect, strlen(expect)) != NULL;
    if (!ok) {
        st.failed++;
        c->state = CLOSED;
        if (st.failed <= 3)
            fprintf(stderr, "handshake failed: %.*s\n", (int)(head > 80 ? 80 : head), c->in);
        return true;
    }
    memmove(c->in, c->in + head, c->in_len - head);
    c->in_len -= head;
    c->state = OPEN;
    c->opened_ns = now_ns();
    if (c->churn) {
        if (!c->counted)
            st.connected++; /* its first connection only */
        c->counted = true;
        return true;
    }
    st.connected++;
    if (!c->stalled)
        open_receivers++;
    c->next_send_ns = now_ns();
    return true;
}

static void on_readable(struct conn *c)
{
    for (;;) {
        grow(&c->in, &c->in_cap, c->in_len + 65536);
        ssize_t n = io_recv(c, c->in + c->in_len, c->in_cap - c->in_len);
        if (n < 0 && errno == EAGAIN)
            break;
        if (n <= 0) {
            if (c->state == OPEN && !c->stalled && !c->churn)
                open_receivers--;
            c->state = CLOSED;
            st.closed++;
            epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
            return;
        }
        c->in_len += (size_t)n;
        if (c->state == HANDSHAKE && !check_handshake(c))
            continue;
        if (c->state == OPEN && !c->stalled)
            parse_frames(c);
        if (c->state == OPEN && c->stalled) {
            watch(c, 0); /* from now on it reads nothing */
            return;
        }
    }
    if (c->out_len)
        flush_out(c);
}

static void open_conn(struct conn *c)
{
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *ai;
    char port[16];
    snprintf(port, sizeof(port), "%d", o.port);
    if (getaddrinfo(o.host, port, &hints, &ai) != 0)
        die("getaddrinfo");
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        die("socket");
    int one = 1, small = 4096;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (c->stalled)
        setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0)
        die("epoll_ctl add");
    if (connect(c->fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS)
        die("connect");
    c->state = CONNECTING;
    freeaddrinfo(ai);
}

/* One step of the TLS handshake; the WebSocket handshake once it is done. */
static void tls_step(struct conn *c)
{
    if (!c->ssl) {
        c->ssl = SSL_new(tls_ctx);
        SSL_set_fd(c->ssl, c->fd);
        SSL_set_tlsext_host_name(c->ssl, o.host);
        SSL_set_connect_state(c->ssl);
        c->state = TLS_HANDSHAKE;
    }
    int r = SSL_do_handshake(c->ssl);
    if (r == 1) {
        start_handshake(c);
        return;
    }
    int e = SSL_get_error(c->ssl, r);
    ERR_clear_error();
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        watch(c, e == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT);
        return;
    }
    st.failed++;
    c->state = CLOSED;
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
}

/* Churners: close and reconnect every churn_ms, during the whole run. */
static void churn_tick(uint64_t now)
{
    for (int i = o.clients + o.stall; i < o.clients + o.stall + o.churn; i++) {
        struct conn *c = &conns[i];
        bool due = (c->state == OPEN && now - c->opened_ns >= (uint64_t)o.churn_ms * 1000000u) ||
                   c->state == CLOSED;
        if (!due)
            continue;
        if (c->state == OPEN)
            st.churn_cycles++;
        conn_close(c);
        c->in_len = c->out_len = c->out_off = 0;
        open_conn(c);
    }
}

/* --uploads: threads that POST /api/files (docs/files.md) back to back
 * while the chat is measured, as people sharing photos beside a busy
 * room. Each upload is the same bytes (stored once: palaverd still
 * reads, hashes, writes and fsyncs every one, and the disk does not
 * fill). Blocking sockets; counters are atomics read once they stop. */
static atomic_bool uploading;
static atomic_uint_fast64_t uploads_done, upload_bytes_done, upload_errors;

static void *upload_main(void *arg)
{
    (void)arg;
    static char piece[65536];
    for (size_t i = 0; i < sizeof(piece); i++)
        piece[i] = (char)(i * 2654435761u >> 11);
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *ai;
    char port[16];
    snprintf(port, sizeof(port), "%d", o.port);
    if (getaddrinfo(o.host, port, &hints, &ai) != 0)
        return NULL;
    const char *cookie = o.cookie[0] ? o.cookie : o.cookies_n ? o.cookies[0] : "";
    while (atomic_load(&uploading)) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct timeval tv = {30, 0};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        int status = -1;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            char head[1024];
            int n = snprintf(head, sizeof(head),
                             "POST /api/files?room=lobby&name=bench.bin HTTP/1.1\r\nHost: %s:%d\r\n"
                             "Content-Length: %ld\r\nCookie: %s\r\nConnection: close\r\n\r\n",
                             o.host, o.port, o.upload_bytes, cookie);
            bool ok = send(fd, head, (size_t)n, MSG_NOSIGNAL) == n;
            for (long left = o.upload_bytes; ok && left > 0;) {
                size_t k = left < (long)sizeof(piece) ? (size_t)left : sizeof(piece);
                ssize_t w = send(fd, piece, k, MSG_NOSIGNAL);
                ok = w > 0;
                left -= w > 0 ? w : 0;
            }
            char resp[512];
            ssize_t r = ok ? recv(fd, resp, sizeof(resp) - 1, 0) : -1;
            if (r > 0) {
                resp[r] = '\0';
                sscanf(resp, "HTTP/1.%*d %d", &status);
            }
        }
        close(fd);
        if (status == 201) {
            atomic_fetch_add(&uploads_done, 1);
            atomic_fetch_add(&upload_bytes_done, (uint64_t)o.upload_bytes);
        } else {
            atomic_fetch_add(&upload_errors, 1);
            usleep(100000); /* refused (busy, quota): not a spin */
        }
    }
    freeaddrinfo(ai);
    return NULL;
}

/* One blocking GET / while the clients are connected: is the page still
 * served? Returns the HTTP status (or -1) and the time taken. */
static int check_page(double *ms)
{
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *ai;
    char port[16];
    int status = -1;
    uint64_t t0 = now_ns();
    snprintf(port, sizeof(port), "%d", o.port);
    if (getaddrinfo(o.host, port, &hints, &ai) != 0)
        return -1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    struct conn pc = {.fd = fd};
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
        char req[512];
        int n = snprintf(req, sizeof(req),
                         "GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", o.host);
        if (o.tls) { /* blocking: SSL_connect completes or fails */
            pc.ssl = SSL_new(tls_ctx);
            SSL_set_fd(pc.ssl, fd);
            SSL_set_tlsext_host_name(pc.ssl, o.host);
            if (SSL_connect(pc.ssl) != 1)
                n = -1;
        }
        if (n > 0 && io_send(&pc, req, (size_t)n) == n) {
            char resp[512];
            ssize_t r = io_recv(&pc, resp, sizeof(resp) - 1);
            if (r > 0) {
                resp[r] = '\0';
                sscanf(resp, "HTTP/1.%*d %d", &status);
            }
        }
    }
    conn_close(&pc);
    freeaddrinfo(ai);
    *ms = (double)(now_ns() - t0) / 1e6;
    return status;
}

static void proc_sample(int pid, double *cpu_s, long *rss_kb, int *threads)
{
    char path[64], buf[4096];
    *cpu_s = 0;
    *rss_kb = 0;
    *threads = 0;
    if (pid <= 0)
        return;
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (f) {
        if (fgets(buf, sizeof(buf), f)) {
            char *p = strrchr(buf, ')');
            unsigned long ut = 0, stt = 0;
            if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut,
                            &stt) == 2)
                *cpu_s = (double)(ut + stt) / (double)sysconf(_SC_CLK_TCK);
        }
        fclose(f);
    }
    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    f = fopen(path, "r");
    if (f) {
        while (fgets(buf, sizeof(buf), f)) {
            sscanf(buf, "VmRSS: %ld", rss_kb);
            sscanf(buf, "Threads: %d", threads);
        }
        fclose(f);
    }
}

static double self_cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void run_loop(uint64_t until, bool connecting)
{
    struct epoll_event evs[256];
    while (now_ns() < until) {
        if (connecting && st.connected + st.failed >= o.clients)
            return;
        uint64_t now = now_ns();
        int timeout = 1;
        int n = epoll_wait(ep, evs, 256, timeout);
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (c->state == CLOSED)
                continue;
            if (c->state == CONNECTING && (evs[i].events & (EPOLLOUT | EPOLLERR))) {
                int err = 0;
                socklen_t l = sizeof(err);
                getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
                if (err) {
                    st.failed++;
                    c->state = CLOSED;
                    continue;
                }
                if (o.tls)
                    tls_step(c);
                else
                    start_handshake(c);
                continue;
            }
            if (c->state == TLS_HANDSHAKE) {
                tls_step(c);
                continue;
            }
            if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
                on_readable(c);
            if (c->state != CLOSED && (evs[i].events & EPOLLOUT))
                flush_out(c);
        }
        now = now_ns();
        for (int i = 0; i < o.senders && i < o.clients; i++)
            maybe_send(&conns[i], now);
        static uint64_t markers_ns;
        if (o.read_markers && now - markers_ns >= 10000000ull) { /* every 10 ms */
            send_markers(now);
            markers_ns = now;
        }
        if (o.churn && !connecting)
            churn_tick(now);
    }
}

/* --rooms: every open reader of each sender's room but the sender gets
 * each of its acknowledged messages. */
static uint64_t expected_now(void)
{
    if (!o.rooms) {
        int readers = open_receivers - 1;
        return st.acked * (uint64_t)(readers > 0 ? readers : 0);
    }
    int *open = calloc((size_t)o.rooms, sizeof(int));
    for (int i = 0; i < o.clients; i++)
        if (conns[i].state == OPEN && !conns[i].stalled && !conns[i].churn && conns[i].room >= 0)
            open[conns[i].room]++;
    uint64_t e = 0;
    for (int i = 0; i < o.senders; i++)
        if (open[conns[i].room] > 1)
            e += conns[i].acked * (uint64_t)(open[conns[i].room] - 1);
    free(open);
    return e;
}

/* --rooms: the first client of each room creates it, then everyone else
 * joins; each waits for the member event that names it. */
static void join_rooms(void)
{
    for (int phase = 0; phase < 2; phase++) {
        int want = 0;
        for (int i = 0; i < o.clients; i++) {
            struct conn *c = &conns[i];
            if (c->room < 0 || c->state != OPEN || (i < o.rooms) != (phase == 0))
                continue;
            char buf[128];
            int n;
            if (phase == 0) { /* create; the join after it is a no-op, unless it existed */
                n = snprintf(
                    buf, sizeof(buf),
                    "{\"type\":\"create\",\"room\":\"r%d\",\"kind\":\"public\",\"name\":\"b%d\"}",
                    c->room, i);
                queue_frame(c, 1, buf, (size_t)n);
            }
            n = snprintf(buf, sizeof(buf), "{\"type\":\"join\",\"room\":\"r%d\",\"name\":\"b%d\"}",
                         c->room, i);
            queue_frame(c, 1, buf, (size_t)n);
            flush_out(c);
            want++;
        }
        uint64_t until = now_ns() + 60ull * 1000000000u;
        for (;;) {
            int done = 0;
            for (int i = 0; i < o.clients; i++)
                done += conns[i].room >= 0 && conns[i].joined && (i < o.rooms) == (phase == 0);
            if (done >= want || now_ns() > until) {
                if (done < want)
                    fprintf(stderr, "palaver-bench: %d of %d joins confirmed\n", done, want);
                break;
            }
            run_loop(now_ns() + 10000000ull, false);
        }
    }
}

static void usage(void)
{
    fputs("Usage: palaver-bench --url ws[s]://HOST:PORT/PATH [options]\n"
          "  --clients N        connections (default 100)\n"
          "  --senders N        of which send (default 1)\n"
          "  --rate R           messages/s per sender; 0 = as fast as --window allows\n"
          "  --window N         unacknowledged messages per sender (default 64)\n"
          "  --size BYTES       message size (default 100)\n"
          "  --duration S       seconds of sending (default 10)\n"
          "  --stall N          extra clients that never read (default 0)\n"
          "  --churn N          extra clients that reconnect every --churn-ms (default 0)\n"
          "  --churn-ms MS      how long a churning client stays (default 200)\n"
          "  --check-page       GET / once everyone is connected (is the page served?)\n"
          "  --subprotocol P    offer this subprotocol\n"
          "  --cookie C         send Cookie: C with every handshake (signed-in clients)\n"
          "  --cookies FILE     one Cookie per line; client i sends line i mod lines (many "
          "accounts)\n"
          "  --read-markers     readers send read markers as the page does: one --marker-ms\n"
          "                     (default 1000) plus up to --marker-jitter ms (default 0) after\n"
          "                     the first message since the last marker, up to the newest\n"
          "                     message it got\n"
          "  --rooms N          split the clients into N rooms r0..rN-1 (client i in i % N); the\n"
          "                     senders' messages go to their room (palaverd: --guest-rooms on)\n"
          "  --dialects N       readers split over the first N (1-4) of palaver's protocol, seed\n"
          "                     004's plain text and seed 003's echo-protocol (on /), seed 002's\n"
          "                     Socket.IO (on /socket.io/); the senders speak palaver's\n"
          "  --uploads N        N threads upload files (POST /api/files, signed in with --cookie)\n"
          "                     back to back during the measured seconds\n"
          "  --upload-bytes B   each upload's size (default 25000000)\n"
          "  --broker-pid PID   sample that process's CPU, RSS and threads\n"
          "  --proxy-pid PID    also sample this one's CPU (the TLS terminator of a wss:// URL)\n"
          "  --ca FILE          wss://: verify the server's certificate against this CA\n"
          "  --label TEXT       name of this run in the output\n"
          "  --json FILE        append the result as one JSON line\n",
          stderr);
    exit(2);
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"url", 1, 0, 'u'},          {"clients", 1, 0, 'c'},       {"senders", 1, 0, 's'},
        {"rate", 1, 0, 'r'},         {"window", 1, 0, 'w'},        {"size", 1, 0, 'z'},
        {"duration", 1, 0, 'd'},     {"stall", 1, 0, 'S'},         {"subprotocol", 1, 0, 'p'},
        {"broker-pid", 1, 0, 'P'},   {"json", 1, 0, 'j'},          {"label", 1, 0, 'l'},
        {"churn", 1, 0, 'C'},        {"churn-ms", 1, 0, 'M'},      {"check-page", 0, 0, 'G'},
        {"cookie", 1, 0, 'K'},       {"rooms", 1, 0, 'R'},         {"proxy-pid", 1, 0, 'X'},
        {"ca", 1, 0, 'A'},           {"cookies", 1, 0, 'F'},       {"read-markers", 0, 0, 'm'},
        {"marker-ms", 1, 0, 'T'},    {"marker-jitter", 1, 0, 'J'}, {"uploads", 1, 0, 'U'},
        {"upload-bytes", 1, 0, 'B'}, {"dialects", 1, 0, 'D'},      {0, 0, 0, 0}};
    int opt;
    o = (struct opts){.clients = 100,
                      .senders = 1,
                      .window = 64,
                      .size = 100,
                      .duration_s = 10,
                      .path = "/",
                      .label = "run",
                      .marker_ms = 1000,
                      .churn_ms = 200,
                      .upload_bytes = 25000000};
    while ((opt = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (opt) {
        case 'u':
            o.tls = strncmp(optarg, "wss://", 6) == 0;
            if (sscanf(optarg + (o.tls ? 6 : 5), "%255[^:/]:%d%255s", o.host, &o.port, o.path) <
                    2 ||
                (!o.tls && strncmp(optarg, "ws://", 5) != 0))
                usage();
            if (o.path[0] != '/')
                strcpy(o.path, "/");
            break;
        case 'c':
            o.clients = atoi(optarg);
            break;
        case 's':
            o.senders = atoi(optarg);
            break;
        case 'r':
            o.rate = atof(optarg);
            break;
        case 'w':
            o.window = atoi(optarg);
            break;
        case 'z':
            o.size = atoi(optarg);
            break;
        case 'd':
            o.duration_s = atoi(optarg);
            break;
        case 'S':
            o.stall = atoi(optarg);
            break;
        case 'p':
            snprintf(o.subprotocol, sizeof(o.subprotocol), "%s", optarg);
            break;
        case 'P':
            o.broker_pid = atoi(optarg);
            break;
        case 'K':
            snprintf(o.cookie, sizeof(o.cookie), "%s", optarg);
            break;
        case 'j':
            o.json_out = optarg;
            break;
        case 'l':
            o.label = optarg;
            break;
        case 'C':
            o.churn = atoi(optarg);
            break;
        case 'M':
            o.churn_ms = atoi(optarg);
            break;
        case 'G':
            o.check_page = true;
            break;
        case 'R':
            o.rooms = atoi(optarg);
            break;
        case 'X':
            o.proxy_pid = atoi(optarg);
            break;
        case 'A':
            o.ca = optarg;
            break;
        case 'm':
            o.read_markers = true;
            break;
        case 'T':
            o.marker_ms = atoi(optarg);
            break;
        case 'J':
            o.marker_jitter_ms = atoi(optarg);
            break;
        case 'U':
            o.uploads = atoi(optarg);
            break;
        case 'D':
            o.dialects = atoi(optarg);
            break;
        case 'B':
            o.upload_bytes = atol(optarg);
            break;
        case 'F': {
            FILE *f = fopen(optarg, "r");
            char line[512];
            if (!f)
                die(optarg);
            while (fgets(line, sizeof(line), f)) {
                line[strcspn(line, "\r\n")] = '\0';
                if (!line[0])
                    continue;
                o.cookies = realloc(o.cookies, (size_t)(o.cookies_n + 1) * sizeof(*o.cookies));
                o.cookies[o.cookies_n++] = strdup(line);
            }
            fclose(f);
            break;
        }
        default:
            usage();
        }
    }
    if (!o.host[0] || o.clients < 1 || o.senders > o.clients || o.window < 1 || o.dialects < 0 ||
        o.dialects > 4 || (o.dialects > 1 && o.rooms) ||
        (o.uploads && (o.tls || o.upload_bytes < 1)))
        usage();
    struct rlimit rl = {65536, 65536};
    setrlimit(RLIMIT_NOFILE, &rl);
    srand((unsigned)now_ns());
    if (o.tls) {
        tls_ctx = SSL_CTX_new(TLS_client_method());
        SSL_CTX_set_mode(tls_ctx,
                         SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
        if (o.ca) {
            if (SSL_CTX_load_verify_locations(tls_ctx, o.ca, NULL) != 1) {
                fprintf(stderr, "palaver-bench: cannot read CA file %s\n", o.ca);
                return 2;
            }
            SSL_CTX_set_verify(tls_ctx, SSL_VERIFY_PEER, NULL);
        }
    }
    ep = epoll_create1(EPOLL_CLOEXEC);
    int total = o.clients + o.stall + o.churn;
    conns = calloc((size_t)total, sizeof(*conns));
    for (int i = 0; i < total; i++) {
        struct conn *c = &conns[i];
        c->index = i;
        c->sender = i < o.senders;
        c->sender_no = c->sender ? i : -1;
        c->stalled = i >= o.clients && i < o.clients + o.stall;
        c->churn = i >= o.clients + o.stall;
        c->room = o.rooms > 0 && i < o.clients ? i % o.rooms : -1;
        c->dialect = o.dialects > 1 && !c->sender && i < o.clients ? i % o.dialects : 0;
        c->last_seq = malloc(sizeof(int64_t) * (size_t)o.senders);
        for (int s = 0; s < o.senders; s++)
            c->last_seq[s] = -1;
    }
    /* Connect everyone (receivers first so the senders' first messages
     * find a full room), then measure. */
    double bcpu_base;
    long rss_base;
    int thr_base;
    proc_sample(o.broker_pid, &bcpu_base, &rss_base, &thr_base);
    uint64_t t_conn0 = now_ns();
    sending = false;
    for (int i = total - 1; i >= 0; i--) {
        open_conn(&conns[i]);
        if (i % 200 == 0)
            run_loop(now_ns() + 1000000, false);
    }
    o.clients = total; /* run_loop's "all connected" test covers all */
    run_loop(now_ns() + 60ull * 1000000000u, true);
    double connect_s = (double)(now_ns() - t_conn0) / 1e9;
    o.clients = total - o.stall - o.churn;
    /* Memory and threads with everyone connected and idle. */
    double bcpu_idle, page_ms = 0;
    long rss_idle;
    int thr_idle, page_status = 0;
    proc_sample(o.broker_pid, &bcpu_idle, &rss_idle, &thr_idle);
    if (o.check_page)
        page_status = check_page(&page_ms);
    /* Let joins and history settle before the clock starts. */
    run_loop(now_ns() + 500000000ull, false);
    if (o.rooms) {
        join_rooms();
        run_loop(now_ns() + 500000000ull, false);
        double cpu_j;
        long rss_j;
        int thr_j;
        proc_sample(o.broker_pid, &cpu_j, &rss_j, &thr_j);
        if (o.broker_pid > 0)
            printf("  broker after the joins: rss %ld kB (+%ld kB for %d rooms, %d memberships)\n",
                   rss_j, rss_j - rss_idle, o.rooms, o.clients);
    }
    double bcpu0, bcpu1, scpu0 = self_cpu();
    long rss0, rss1;
    int thr0, thr1;
    proc_sample(o.broker_pid, &bcpu0, &rss0, &thr0);
    double pcpu0, pcpu1;
    long prss;
    int pthr;
    proc_sample(o.proxy_pid, &pcpu0, &prss, &pthr);
    for (int i = 0; i < o.senders; i++)
        conns[i].next_send_ns = now_ns();
    sending = true;
    pthread_t uploaders[64];
    int nup = o.uploads < 64 ? o.uploads : 64;
    atomic_store(&uploading, true);
    for (int i = 0; i < nup; i++)
        pthread_create(&uploaders[i], NULL, upload_main, NULL);
    uint64_t t0 = now_ns();
    run_loop(t0 + (uint64_t)o.duration_s * 1000000000u, false);
    sending = false;
    uint64_t t1 = now_ns();
    atomic_store(&uploading, false);
    /* Drain what is in flight: until every acknowledged message has reached
     * every open reader, or 10 s pass without any new delivery. */
    uint64_t last_progress = now_ns(), last = st.delivered;
    for (;;) {
        if (st.delivered >= expected_now() && st.acked == st.sent)
            break;
        if (now_ns() - last_progress > 10000000000ull)
            break;
        run_loop(now_ns() + 100000000ull, false);
        if (st.delivered != last) {
            last = st.delivered;
            last_progress = now_ns();
        }
    }
    proc_sample(o.broker_pid, &bcpu1, &rss1, &thr1);
    proc_sample(o.proxy_pid, &pcpu1, &prss, &pthr);
    for (int i = 0; i < nup; i++) /* the uploads under way finish (the chat drained meanwhile) */
        pthread_join(uploaders[i], NULL);
    double secs = (double)(t1 - t0) / 1e9, scpu = self_cpu() - scpu0;
    st.expected = expected_now(); /* every open reader (of its room) but the sender */
    double ratio = st.expected ? (double)st.delivered / (double)st.expected : 0;
    uint64_t total_lat = st.delivered;

    printf("%s: %d clients (+%d stalled), %d senders, rate %s, %d-byte messages, %.1f s", o.label,
           o.clients, o.stall, o.senders, o.rate > 0 ? "fixed" : "max", o.size, secs);
    printf(o.rooms ? ", %d rooms\n" : "\n", o.rooms);
    printf("  connected %d (failed %d) in %.2f s (%.0f connections/s)\n", st.connected, st.failed,
           connect_s, connect_s > 0 ? st.connected / connect_s : 0);
    double rss_per_conn = st.connected ? (double)(rss_idle - rss_base) / st.connected : 0;
    if (o.broker_pid > 0)
        printf("  broker idle with everyone connected: rss %ld kB (%.1f kB per connection over "
               "%ld kB), threads %d\n",
               rss_idle, rss_per_conn, rss_base, thr_idle);
    if (o.check_page)
        printf("  page GET / while connected: HTTP %d in %.1f ms\n", page_status, page_ms);
    if (o.churn)
        printf("  churn: %" PRIu64 " connect/leave cycles\n", st.churn_cycles);
    printf("  sent %" PRIu64 ", acked %" PRIu64 ", delivered %" PRIu64 " of %" PRIu64
           " expected (ratio %.4f)\n",
           st.sent, st.acked, st.delivered, st.expected, ratio);
    printf("  deliveries/s %.0f, messages/s %.0f\n", (double)st.delivered / secs,
           (double)st.acked / secs);
    printf("  latency us: p50 %" PRIu64 " p90 %" PRIu64 " p99 %" PRIu64 " p99.9 %" PRIu64
           " max %" PRIu64 "\n",
           percentile(0.5, total_lat), percentile(0.9, total_lat), percentile(0.99, total_lat),
           percentile(0.999, total_lat), hist_max);
    printf("  echoes %" PRIu64 ", gaps %" PRIu64 ", duplicates %" PRIu64 ", errors %" PRIu64
           ", closed %" PRIu64 "\n",
           st.echoes, st.gaps, st.dups, st.errors, st.closed);
    if (o.broker_pid > 0)
        printf("  broker: cpu %.2f s, rss %ld kB, threads %d; bench cpu %.2f s\n", bcpu1 - bcpu0,
               rss1, thr1, scpu);
    else
        printf("  bench cpu %.2f s\n", scpu);
    if (o.proxy_pid > 0)
        printf("  proxy: cpu %.2f s, rss %ld kB\n", pcpu1 - pcpu0, prss);
    if (o.read_markers || st.receipt_frames)
        printf("  read markers sent %" PRIu64 " (%.2f per chat message), receipt frames received "
               "%" PRIu64 " (%.3f per chat message)\n",
               st.markers, st.acked ? (double)st.markers / (double)st.acked : 0, st.receipt_frames,
               st.acked ? (double)st.receipt_frames / (double)st.acked : 0);
    if (o.uploads)
        printf("  uploads: %" PRIu64 " of %ld bytes (%.1f MB/s), %" PRIu64 " refused or failed\n",
               (uint64_t)atomic_load(&uploads_done), o.upload_bytes,
               (double)atomic_load(&upload_bytes_done) / 1e6 / secs,
               (uint64_t)atomic_load(&upload_errors));
    if (o.json_out) {
        FILE *f = fopen(o.json_out, "a");
        if (f) {
            fprintf(f,
                    "{\"label\":\"%s\",\"clients\":%d,\"stalled\":%d,\"senders\":%d,\"rate\":%g,"
                    "\"size\":%d,\"seconds\":%.3f,\"connected\":%d,\"connect_s\":%.3f,"
                    "\"sent\":%" PRIu64 ",\"acked\":%" PRIu64 ",\"delivered\":%" PRIu64
                    ",\"expected\":%" PRIu64 ",\"ratio\":%.5f,\"deliveries_per_s\":%.1f,"
                    "\"p50_us\":%" PRIu64 ",\"p90_us\":%" PRIu64 ",\"p99_us\":%" PRIu64
                    ",\"p999_us\":%" PRIu64 ",\"max_us\":%" PRIu64 ",\"echoes\":%" PRIu64
                    ",\"gaps\":%" PRIu64 ",\"dups\":%" PRIu64 ",\"broker_cpu_s\":%.3f,"
                    "\"broker_rss_kb\":%ld,\"broker_threads\":%d,\"bench_cpu_s\":%.3f,"
                    "\"rss_base_kb\":%ld,\"rss_idle_kb\":%ld,\"rss_per_conn_kb\":%.2f,"
                    "\"threads_idle\":%d,\"page_status\":%d,\"page_ms\":%.1f,"
                    "\"churn_cycles\":%" PRIu64 ",\"window\":%d,\"rooms\":%d,"
                    "\"proxy_cpu_s\":%.3f,\"tls\":%s,\"markers\":%" PRIu64
                    ",\"receipt_frames\":%" PRIu64 ",\"uploads\":%" PRIu64
                    ",\"upload_mb_s\":%.2f,\"upload_errors\":%" PRIu64 ",\"dialects\":%d}\n",
                    o.label, o.clients, o.stall, o.senders, o.rate, o.size, secs, st.connected,
                    connect_s, st.sent, st.acked, st.delivered, st.expected, ratio,
                    (double)st.delivered / secs, percentile(0.5, total_lat),
                    percentile(0.9, total_lat), percentile(0.99, total_lat),
                    percentile(0.999, total_lat), hist_max, st.echoes, st.gaps, st.dups,
                    bcpu1 - bcpu0, rss1, thr1, scpu, rss_base, rss_idle, rss_per_conn, thr_idle,
                    page_status, page_ms, st.churn_cycles, o.window, o.rooms,
                    o.proxy_pid > 0 ? pcpu1 - pcpu0 : 0.0, o.tls ? "true" : "false", st.markers,
                    st.receipt_frames, (uint64_t)atomic_load(&uploads_done),
                    (double)atomic_load(&upload_bytes_done) / 1e6 / secs,
                    (uint64_t)atomic_load(&upload_errors), o.dialects ? o.dialects : 1);
            fclose(f);
        }
    }
    return st.failed || st.echoes || st.dups ? 1 : 0;
}
