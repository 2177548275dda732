/* pvtest.c -- test support: palaverd spawner and RFC 6455 test client.
 *
 * Threads: none shared; each object belongs to its caller. */
#include "pvtest.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

long rss_kib(pid_t pid)
{
    char path[64], line[256];
    long kib = -1;
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- server ---- */

static atomic_int srv_counter;

/* Servers still running: a failed assertion leaves its test early, so the
 * process kills whatever is left when it exits. */
static pid_t running[64];

static void kill_running(void)
{
    for (size_t i = 0; i < sizeof(running) / sizeof(running[0]); i++) {
        if (running[i] > 0) {
            kill(running[i], SIGKILL);
            waitpid(running[i], NULL, 0);
            running[i] = 0;
        }
    }
}

static void track(pid_t pid, bool add)
{
    static bool registered;
    if (!registered) {
        atexit(kill_running);
        registered = true;
    }
    for (size_t i = 0; i < sizeof(running) / sizeof(running[0]); i++) {
        if (add ? running[i] == 0 : running[i] == pid) {
            running[i] = add ? pid : 0;
            return;
        }
    }
}

/* Hang watch: a test that makes no progress for PVTEST_HANG_S after its
 * palaverd started (a lost message, a blocking call with no timeout) dumps
 * the tail of that palaverd's log and aborts, well before ctest's timeout
 * kills it silently. Async-signal-safe calls only. */
#define PVTEST_HANG_S 240
static const struct srv *watched;

static void on_hang(int sig)
{
    (void)sig;
    static const char msg[] = "pvtest: the test hung (no end within "
                              "240"
                              " s of palaverd's "
                              "start); the tail of palaverd's log follows\n";
    ssize_t w = write(2, msg, sizeof(msg) - 1);
    if (watched) {
        int fd = open(watched->log, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            char buf[4096];
            ssize_t n;
            if (lseek(fd, -32768, SEEK_END) < 0)
                lseek(fd, 0, SEEK_SET);
            while ((n = read(fd, buf, sizeof(buf))) > 0)
                w = write(2, buf, (size_t)n);
            close(fd);
        }
    }
    (void)w;
    for (size_t i = 0; i < sizeof(running) / sizeof(running[0]); i++)
        if (running[i] > 0)
            kill(running[i], SIGKILL); /* abort() skips the atexit cleanup */
    abort();
}

static void hang_watch(const struct srv *s)
{
    watched = s;
    signal(SIGALRM, on_hang);
    alarm(PVTEST_HANG_S);
}

int srv_start(struct srv *s, const char *const *extra)
{
    return srv_start_env(s, extra, NULL);
}

int srv_start_env(struct srv *s, const char *const *extra, const char *const *envs)
{
    char sockname[108], env[128], buf[512];
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    const char *argv[64];
    int n = 0, fd, counter = atomic_fetch_add(&srv_counter, 1);
    int64_t deadline;

    memset(s, 0, sizeof(*s));
    s->notify_fd = -1;
    s->pid = -1;
    snprintf(s->log, sizeof(s->log), "%s/%s-%d-%d.log", PVTEST_LOG_DIR,
             program_invocation_short_name, (int)getpid(), counter);
    /* Abstract socket: nothing to clean up in the file system. */
    snprintf(sockname, sizeof(sockname), "palaver-test-%d-%d", (int)getpid(), counter);
    sa.sun_path[0] = '\0';
    memcpy(sa.sun_path + 1, sockname, strlen(sockname));
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0 ||
        bind(fd, (struct sockaddr *)&sa,
             (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(sockname))) < 0) {
        perror("notify socket");
        return -1;
    }
    /* PVTEST_PALAVERD: another build to run the same test against (a
     * before/after measurement); the one built with the tests otherwise. */
    const char *bin = getenv("PVTEST_PALAVERD");
    argv[n++] = bin && bin[0] ? bin : PALAVERD_PATH;
    argv[n++] = "--port";
    argv[n++] = "0";
    argv[n++] = "--listen";
    argv[n++] = "127.0.0.1";
    argv[n++] = "--htdocs";
    argv[n++] = PVTEST_HTDOCS;
    argv[n++] = "--http-workers";
    argv[n++] = "8";
    argv[n++] = "--config"; /* no /etc/palaver/palaverd.conf of this machine */
    argv[n++] = "/dev/null";
    argv[n++] = "--data-dir"; /* history in memory unless a test asks for a directory */
    argv[n++] = "";
    /* Tests open connections from 127.0.0.1 back to back; the ones about
     * the handshake rate set it themselves. */
    argv[n++] = "--handshake-rate";
    argv[n++] = "0";
    for (int i = 0; extra && extra[i] && n < 62; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    snprintf(env, sizeof(env), "NOTIFY_SOCKET=@%s", sockname);

    s->pid = fork();
    if (s->pid == 0) {
        int logfd = open(s->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (logfd >= 0) {
            dup2(logfd, 2);
            close(logfd);
        }
        putenv(env);
        unsetenv("PORT");
        for (int i = 0; envs && envs[i]; i++)
            putenv((char *)envs[i]);
        /* PVTEST_UID=<uid>: run palaverd as that user when we are root, so
         * file permissions apply to it (read-only database tests). */
        const char *uid = getenv("PVTEST_UID");
        if (uid && geteuid() == 0) {
            if (setgroups(0, NULL) != 0 || setgid((gid_t)atoi(uid)) != 0 ||
                setuid((uid_t)atoi(uid)) != 0) {
                perror("PVTEST_UID");
                _exit(126);
            }
        }
        execv(argv[0], (char *const *)argv);
        perror("execv palaverd");
        _exit(127);
    }
    track(s->pid, true);
    deadline = mono_ms() + 20000;
    while (s->port == 0 && mono_ms() < deadline) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int status;
        if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
            fprintf(stderr, "palaverd exited before READY=1\n");
            track(s->pid, false);
            s->pid = -1;
            srv_dump_log(s);
            close(fd);
            return -1;
        }
        if (poll(&pfd, 1, 100) <= 0)
            continue;
        ssize_t r = recv(fd, buf, sizeof(buf) - 1, 0);
        if (r <= 0)
            continue;
        buf[r] = '\0';
        char *p = strstr(buf, "X_PALAVER_PORT=");
        if (strstr(buf, "READY=1") && p)
            s->port = atoi(p + strlen("X_PALAVER_PORT="));
    }
    s->notify_fd = fd;
    if (s->port == 0) {
        close(fd);
        s->notify_fd = -1;
        fprintf(stderr, "palaverd did not report READY=1 in time\n");
        srv_dump_log(s);
        kill(s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
        track(s->pid, false);
        s->pid = -1;
        return -1;
    }
    hang_watch(s);
    return 0;
}

int run_capture(const char *const *argv, const char *const *envs, char *out, size_t outsz)
{
    int pipefd[2];
    if (pipe(pipefd) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(pipefd[1], 1);
        dup2(pipefd[1], 2);
        close(pipefd[0]);
        unsetenv("NOTIFY_SOCKET");
        for (int i = 0; envs && envs[i]; i++)
            putenv((char *)envs[i]);
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(pipefd[1]);
    size_t len = 0;
    ssize_t n;
    while (len + 1 < outsz && (n = read(pipefd[0], out + len, outsz - 1 - len)) > 0)
        len += (size_t)n;
    out[len] = '\0';
    /* Past what the caller keeps, the rest is read and dropped: a child
     * writing more than outsz must not die of SIGPIPE (its exit status is
     * what the caller asserts). */
    char drop[4096];
    while (read(pipefd[0], drop, sizeof(drop)) > 0)
        ;
    close(pipefd[0]);
    int status;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

bool tmpdir_make(char *out, size_t n, const char *name)
{
    snprintf(out, n, "/tmp/palaver-%s-XXXXXX", name);
    return mkdtemp(out) != NULL;
}

int tmpdir_remove(const char *dir)
{
    const char *argv[] = {"rm", "-rf", dir, NULL};
    char out[256];
    return run_capture(argv, NULL, out, sizeof(out));
}

bool srv_notify_wait(struct srv *s, const char *needle, int timeout_ms, char *out, size_t n)
{
    int64_t deadline = mono_ms() + timeout_ms;
    char buf[1024];
    while (s->notify_fd >= 0 && mono_ms() < deadline) {
        struct pollfd pfd = {.fd = s->notify_fd, .events = POLLIN};
        if (poll(&pfd, 1, (int)(deadline - mono_ms())) <= 0)
            continue;
        ssize_t r = recv(s->notify_fd, buf, sizeof(buf) - 1, 0);
        if (r <= 0)
            continue;
        buf[r] = '\0';
        if (strstr(buf, needle)) {
            if (out)
                snprintf(out, n, "%s", buf);
            return true;
        }
    }
    return false;
}

int srv_stop(struct srv *s)
{
    int status;
    int64_t deadline = mono_ms() + 20000;

    if (s->pid <= 0)
        return -1;
    if (watched == s) {
        alarm(0);
        watched = NULL;
    }
    track(s->pid, false);
    kill(s->pid, SIGTERM);
    s->stopping_seen = srv_notify_wait(s, "STOPPING=1", 5000, NULL, 0);
    if (s->notify_fd >= 0)
        close(s->notify_fd);
    s->notify_fd = -1;
    for (;;) {
        pid_t r = waitpid(s->pid, &status, WNOHANG);
        if (r == s->pid)
            break;
        if (mono_ms() > deadline) {
            fprintf(stderr, "palaverd did not exit within 20 s of SIGTERM\n");
            kill(s->pid, SIGKILL);
            waitpid(s->pid, NULL, 0);
            s->pid = -1;
            return -1;
        }
        /* Bounded wait for a child we signalled: 20 ms steps. */
        nanosleep(&(struct timespec){.tv_nsec = 20 * 1000000L}, NULL);
    }
    s->pid = -1;
    if (WIFEXITED(status)) {
        if (WEXITSTATUS(status) != 0)
            srv_dump_log(s);
        return WEXITSTATUS(status);
    }
    srv_dump_log(s);
    return 128 + WTERMSIG(status);
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *data = NULL;
    size_t len = 0, cap = 0, n;
    if (!f)
        return NULL;
    do {
        if (len + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 8192;
            char *grown = realloc(data, cap);
            if (!grown)
                abort(); /* a test without memory cannot go on */
            data = grown;
        }
        n = fread(data + len, 1, cap - len - 1, f);
        len += n;
    } while (n > 0);
    fclose(f);
    data[len] = '\0';
    return data;
}

bool srv_log_has(const struct srv *s, const char *needle)
{
    char *log = read_file(s->log);
    bool found = log && strstr(log, needle);
    free(log);
    return found;
}

int srv_log_count(const struct srv *s, const char *needle)
{
    char *log = read_file(s->log);
    int n = 0;
    for (const char *p = log; p && (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    free(log);
    return n;
}

bool srv_log_wait(const struct srv *s, const char *needle, int timeout_ms)
{
    int64_t deadline = mono_ms() + timeout_ms;
    do {
        if (srv_log_has(s, needle))
            return true;
        nanosleep(&(struct timespec){.tv_nsec = 20 * 1000000L}, NULL);
    } while (mono_ms() < deadline);
    return srv_log_has(s, needle);
}

long srv_log_last_number(const struct srv *s, const char *needle)
{
    char *log = read_file(s->log);
    const char *last = NULL;
    long v = -1;
    for (const char *p = log; p && (p = strstr(p, needle)) != NULL; p += strlen(needle))
        last = p;
    if (last)
        sscanf(last + strlen(needle), "%ld", &v);
    free(log);
    return v;
}

void srv_dump_log(const struct srv *s)
{
    char *log = read_file(s->log);
    fprintf(stderr, "---- palaverd log %s ----\n%s---- end of log ----\n", s->log,
            log ? log : "(unreadable)\n");
    free(log);
}

/* ---- client ---- */

static int tcp_connect_from(int port, int rcvbuf, const char *from)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    if (fd < 0)
        return -1;
    if (from) {
        struct sockaddr_in src = {.sin_family = AF_INET};
        if (inet_pton(AF_INET, from, &src.sin_addr) != 1 ||
            bind(fd, (struct sockaddr *)&src, sizeof(src)) != 0) {
            close(fd);
            return -1;
        }
    }
    if (rcvbuf > 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    /* Bounds connect() (a full listen queue) and every blocking send (a
     * server that stopped reading): a failure, never a hang. */
    struct timeval tv = {.tv_sec = 20};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int tcp_connect(int port, int rcvbuf)
{
    return tcp_connect_from(port, rcvbuf, NULL);
}

static int send_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t w = send(fd, p, len, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* The connection's bytes out: through TLS when it has a session. */
static int wsc_write(struct wsc *c, const void *data, size_t len)
{
    if (!c->ssl)
        return send_all(c->fd, data, len);
    const char *p = data;
    while (len > 0) {
        int w = SSL_write(c->ssl, p, len > INT32_MAX ? INT32_MAX : (int)len);
        if (w <= 0)
            return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* TLS to a terminator in front of palaverd: the server's certificate must
 * chain to the CA in ca_file and name `name` (a DNS name or an IP
 * address). 0, or -1 (the handshake or the verification failed). */
static int tls_start(struct wsc *c, const char *ca_file, const char *name)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx)
        return -1;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
        SSL_CTX_free(ctx);
        return -1;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    c->ssl = SSL_new(ctx);
    SSL_CTX_free(ctx); /* the session holds its own reference */
    SSL_set_fd(c->ssl, c->fd);
    X509_VERIFY_PARAM *vp = SSL_get0_param(c->ssl);
    struct in_addr a;
    if (inet_pton(AF_INET, name, &a) == 1) {
        X509_VERIFY_PARAM_set1_ip_asc(vp, name);
    } else {
        SSL_set_tlsext_host_name(c->ssl, name);
        SSL_set1_host(c->ssl, name);
    }
    if (SSL_connect(c->ssl) != 1 || SSL_get_verify_result(c->ssl) != X509_V_OK) {
        c->tls_error = true;
        ERR_clear_error();
        return -1;
    }
    return 0;
}

/* Reads more bytes into c->buf; 1 = got some, 0 = timeout, -1 = EOF/error. */
static int fill(struct wsc *c, int timeout_ms)
{
    struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
    if (c->fd < 0)
        return -1;
    if (!c->ssl || SSL_pending(c->ssl) == 0) {
        int r = poll(&pfd, 1, timeout_ms < 0 ? -1 : timeout_ms);
        if (r == 0)
            return 0;
        if (r < 0)
            return errno == EINTR ? 0 : -1;
    }
    if (c->len + 65536 > c->cap) {
        c->cap = (c->len + 65536) * 2;
        c->buf = realloc(c->buf, c->cap);
    }
    ssize_t n;
    if (c->ssl) {
        int r = SSL_read(c->ssl, c->buf + c->len,
                         (int)(c->cap - c->len > INT32_MAX ? INT32_MAX : c->cap - c->len));
        if (r <= 0) {
            int e = SSL_get_error(c->ssl, r);
            ERR_clear_error();
            return e == SSL_ERROR_WANT_READ ? 0 : -1;
        }
        n = r;
    } else {
        n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
    }
    if (n <= 0)
        return -1;
    c->len += (size_t)n;
    c->rx_bytes += (size_t)n;
    return 1;
}

static void accept_key(const char *key, char out[64])
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    unsigned char digest[SHA_DIGEST_LENGTH];
    char in[128];
    snprintf(in, sizeof(in), "%s%s", key, guid);
    SHA1((const unsigned char *)in, strlen(in), digest);
    EVP_EncodeBlock((unsigned char *)out, digest, SHA_DIGEST_LENGTH);
}

static const char *header_value(const char *head, const char *name, char *out, size_t n)
{
    const char *p = head;
    size_t nl = strlen(name);
    while ((p = strstr(p, "\r\n")) != NULL) {
        p += 2;
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1, *e;
            while (*v == ' ')
                v++;
            e = strstr(v, "\r\n");
            size_t len = e ? (size_t)(e - v) : strlen(v);
            if (len >= n)
                len = n - 1;
            memcpy(out, v, len);
            out[len] = '\0';
            return out;
        }
    }
    return NULL;
}

struct wsc *wsc_open(int port, const struct wsc_opts *o)
{
    static const struct wsc_opts none = {0};
    unsigned char nonce[16];
    char key[32], expect[64], got[128], req[2048];
    struct wsc *c;
    int64_t deadline = mono_ms() + 10000;
    char *end;

    if (!o)
        o = &none;
    c = calloc(1, sizeof(*c));
    c->close_code = -1;
    c->fd = tcp_connect_from(port, o->rcvbuf, o->from);
    if (c->fd < 0) {
        free(c);
        return NULL;
    }
    if (o->tls_ca && tls_start(c, o->tls_ca, o->tls_name ? o->tls_name : "127.0.0.1") != 0)
        return c; /* status 0, tls_error set */
    getrandom(nonce, sizeof(nonce), 0);
    EVP_EncodeBlock((unsigned char *)key, nonce, sizeof(nonce));
    char host[128];
    if (o->host)
        snprintf(host, sizeof(host), "%s", o->host);
    else
        snprintf(host, sizeof(host), "127.0.0.1:%d", port);
    snprintf(req, sizeof(req),
             "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
             "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
             "%s%s%s%s\r\n",
             o->path ? o->path : "/ws", host, key, o->subprotocol ? "Sec-WebSocket-Protocol: " : "",
             o->subprotocol ? o->subprotocol : "", o->subprotocol ? "\r\n" : "",
             o->headers ? o->headers : "");
    if (wsc_write(c, req, strlen(req)) < 0)
        return c;
    for (;;) {
        if (c->len >= 4 && (end = memmem(c->buf, c->len, "\r\n\r\n", 4)) != NULL)
            break;
        int64_t left = deadline - mono_ms();
        if (left <= 0 || fill(c, (int)left) < 0) {
            /* Refusals may close right after the body: keep what came. */
            if (c->len) {
                c->response = strndup((char *)c->buf, c->len);
                sscanf(c->response, "HTTP/1.%*d %d", &c->status);
            }
            return c;
        }
    }
    size_t head_len = (size_t)(end - (char *)c->buf) + 4;
    c->response = strndup((char *)c->buf, head_len);
    sscanf(c->response, "HTTP/1.%*d %d", &c->status);
    if (c->status != 101) {
        /* Keep the body too, for assertions on refusal texts. */
        while (fill(c, 500) > 0)
            ;
        free(c->response);
        c->response = strndup((char *)c->buf, c->len);
        c->len = 0;
        return c;
    }
    memmove(c->buf, c->buf + head_len, c->len - head_len);
    c->len -= head_len;
    c->rx_bytes = c->len;
    accept_key(key, expect);
    c->accept_ok = header_value(c->response, "Sec-WebSocket-Accept", got, sizeof(got)) &&
                   strcmp(got, expect) == 0;
    if (header_value(c->response, "Sec-WebSocket-Protocol", got, sizeof(got)))
        snprintf(c->protocol, sizeof(c->protocol), "%.63s", got);
    return c;
}

void wsc_free(struct wsc *c)
{
    if (!c)
        return;
    if (c->ssl)
        SSL_free(c->ssl); /* no close_notify: as a dropped connection */
    if (c->fd >= 0)
        close(c->fd);
    free(c->buf);
    free(c->response);
    free(c);
}

int wsc_send_raw(struct wsc *c, const void *data, size_t len)
{
    return wsc_write(c, data, len);
}

size_t wsc_encode(uint8_t first, const void *data, size_t len, unsigned char **out)
{
    unsigned char *frame = malloc(len + 14), mask[4];
    size_t h = 0;

    frame[h++] = first;
    if (len < 126) {
        frame[h++] = (unsigned char)(0x80 | len);
    } else if (len <= 0xFFFF) {
        frame[h++] = 0x80 | 126;
        frame[h++] = (unsigned char)(len >> 8);
        frame[h++] = (unsigned char)len;
    } else {
        frame[h++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            frame[h++] = (unsigned char)((uint64_t)len >> (8 * i));
    }
    getrandom(mask, 4, 0);
    memcpy(frame + h, mask, 4);
    h += 4;
    for (size_t i = 0; i < len; i++)
        frame[h + i] = ((const unsigned char *)data)[i] ^ mask[i & 3];
    *out = frame;
    return h + len;
}

int wsc_send_chopped(struct wsc *c, const void *bytes, size_t len, size_t chop)
{
    const unsigned char *p = bytes;
    int one = 1;
    if (chop == 0)
        return wsc_write(c, p, len);
    /* Each chop its own TCP segment, as far as loopback allows. */
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    for (size_t off = 0; off < len; off += chop) {
        size_t n = len - off < chop ? len - off : chop;
        if (wsc_write(c, p + off, n) != 0)
            return -1;
    }
    return 0;
}

int wsc_send_bits(struct wsc *c, uint8_t first, const void *data, size_t len)
{
    unsigned char *frame;
    size_t n = wsc_encode(first, data, len, &frame);
    int rc = wsc_write(c, frame, n);
    free(frame);
    return rc;
}

int wsc_send(struct wsc *c, bool fin, int opcode, const void *data, size_t len)
{
    return wsc_send_bits(c, (uint8_t)((fin ? 0x80 : 0) | (opcode & 0x0F)), data, len);
}

int wsc_send_text(struct wsc *c, const char *text)
{
    return wsc_send(c, true, 1, text, strlen(text));
}

int wsc_send_chat(struct wsc *c, long long msg_id, const char *text, const char *key)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    json_t *o = json_pack("{s:s, s:I, s:s, s:s, s:I}", "type", "message", "msgId",
                          (json_int_t)msg_id, "text", text, "clientKey", key ? key : "", "date",
                          (json_int_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
    char *s = json_dumps(o, JSON_COMPACT);
    int rc = wsc_send_text(c, s);
    free(s);
    json_decref(o);
    return rc;
}

int wsc_recv(struct wsc *c, struct wsc_frame *f, int timeout_ms)
{
    int64_t deadline = mono_ms() + timeout_ms;
    memset(f, 0, sizeof(*f));
    for (;;) {
        if (c->len >= 2) {
            unsigned char *b = c->buf;
            size_t h = 2, plen = b[1] & 0x7F;
            bool masked = b[1] & 0x80;
            if (plen == 126) {
                h = 4;
                if (c->len >= 4)
                    plen = ((size_t)b[2] << 8) | b[3];
            } else if (plen == 127) {
                h = 10;
                if (c->len >= 10) {
                    plen = 0;
                    for (int i = 0; i < 8; i++)
                        plen = (plen << 8) | b[2 + i];
                }
            }
            if (masked)
                h += 4;
            if (c->len >= h && c->len - h >= plen) {
                f->fin = b[0] & 0x80;
                f->opcode = b[0] & 0x0F;
                f->len = plen;
                f->data = malloc(plen + 1);
                memcpy(f->data, b + h, plen);
                f->data[plen] = '\0';
                if (masked) {
                    for (size_t i = 0; i < plen; i++)
                        f->data[i] ^= b[h - 4 + (i & 3)];
                }
                memmove(c->buf, c->buf + h + plen, c->len - h - plen);
                c->len -= h + plen;
                if (f->opcode == 8) {
                    c->close_code = plen >= 2 ? (f->data[0] << 8 | f->data[1]) : 1005;
                    snprintf(c->close_reason, sizeof(c->close_reason), "%.*s",
                             plen > 2 ? (int)(plen - 2) : 0, (char *)f->data + 2);
                }
                if (f->opcode == 9 && !c->manual_pings && plen <= 125)
                    wsc_send(c, true, 0xA, f->data, plen); /* as browsers do */
                return 1;
            }
        }
        int64_t left = deadline - mono_ms();
        if (left <= 0)
            return 0;
        int r = fill(c, (int)left);
        if (r < 0)
            return -1;
    }
}

void wsc_frame_free(struct wsc_frame *f)
{
    free(f->data);
    f->data = NULL;
}

json_t *wsc_recv_json(struct wsc *c, int timeout_ms)
{
    int64_t deadline = mono_ms() + timeout_ms;
    struct wsc_frame f;
    for (;;) {
        int64_t left = deadline - mono_ms();
        if (left < 0)
            left = 0;
        if (wsc_recv(c, &f, (int)left) != 1)
            return NULL;
        if (f.opcode == 1) {
            json_t *j = json_loadb((char *)f.data, f.len, 0, NULL);
            wsc_frame_free(&f);
            return j;
        }
        int op = f.opcode;
        wsc_frame_free(&f);
        if (op == 8)
            return NULL;
    }
}

json_t *wsc_expect(struct wsc *c, const char *type, int timeout_ms)
{
    int64_t deadline = mono_ms() + timeout_ms;
    for (;;) {
        int64_t left = deadline - mono_ms();
        if (left < 0)
            return NULL;
        json_t *j = wsc_recv_json(c, (int)left);
        if (!j)
            return NULL;
        const char *t = json_string_value(json_object_get(j, "type"));
        if (t && strcmp(t, type) == 0)
            return j;
        json_decref(j);
    }
}

int wsc_wait_close(struct wsc *c, int timeout_ms)
{
    int64_t deadline = mono_ms() + timeout_ms;
    struct wsc_frame f;
    while (c->close_code < 0) {
        int64_t left = deadline - mono_ms();
        if (left <= 0 || wsc_recv(c, &f, (int)left) != 1)
            break;
        wsc_frame_free(&f);
    }
    return c->close_code;
}

int wsc_join(struct wsc *c, char key[64], char id[32])
{
    json_t *j = wsc_expect(c, "id", 5000);
    if (!j)
        return -1;
    if (key)
        snprintf(key, 64, "%s", json_string_value(json_object_get(j, "clientKey")));
    if (id)
        snprintf(id, 32, "%s", json_string_value(json_object_get(json_object_get(j, "you"), "id")));
    json_decref(j);
    j = wsc_expect(c, "presence", 5000);
    if (!j)
        return -1;
    json_decref(j);
    return 0;
}

int http_get(int port, const char *path, char *out, size_t outsz)
{
    char req[512];
    snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
             path);
    return http_request(port, req, out, outsz);
}

int http_request(int port, const char *req, char *out, size_t outsz)
{
    int fd = tcp_connect(port, 0), status = -1;
    size_t len = 0;
    if (fd < 0)
        return -1;
    if (send_all(fd, req, strlen(req)) == 0) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        while (len + 1 < outsz && poll(&pfd, 1, 5000) > 0) {
            ssize_t n = recv(fd, out + len, outsz - len - 1, 0);
            if (n <= 0)
                break;
            len += (size_t)n;
        }
    }
    out[len] = '\0';
    sscanf(out, "HTTP/1.%*d %d", &status);
    close(fd);
    return status;
}

int http_raw(int port, const char *head, const void *body, size_t n, bool hangup, char **out,
             size_t *out_len)
{
    int fd = tcp_connect(port, 0), status = -1;
    size_t len = 0, cap = 65536;
    char *buf = malloc(cap + 1);
    if (fd < 0 || !buf) {
        free(buf);
        if (fd >= 0)
            close(fd);
        return -1;
    }
    /* The body may be refused before it is all sent: a failed send is not
     * an error here, the answer is what counts. */
    if (send_all(fd, head, strlen(head)) == 0 && n)
        (void)send_all(fd, body, n);
    if (hangup)
        shutdown(fd, SHUT_WR);
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    while (poll(&pfd, 1, 10000) > 0) {
        if (len == cap) {
            char *b = realloc(buf, cap * 2 + 1);
            if (!b)
                break;
            buf = b;
            cap *= 2;
        }
        ssize_t r = recv(fd, buf + len, cap - len, 0);
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    buf[len] = '\0';
    sscanf(buf, "HTTP/1.%*d %d", &status);
    close(fd);
    if (out) {
        *out = buf;
        *out_len = len;
    } else {
        free(buf);
    }
    return status;
}

int http_first(int port, const char *head, char *out, size_t n, int timeout_ms)
{
    int fd = tcp_connect(port, 0), status = -1;
    out[0] = '\0';
    if (fd < 0)
        return -1;
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    if (send_all(fd, head, strlen(head)) == 0 && poll(&pfd, 1, timeout_ms) > 0) {
        ssize_t r = recv(fd, out, n - 1, 0);
        out[r > 0 ? r : 0] = '\0';
        sscanf(out, "HTTP/1.%*d %d", &status);
    }
    close(fd);
    return status;
}

int tls_request(int port, const char *ca_file, const char *name, const char *req, char *out,
                size_t outsz)
{
    struct wsc c = {.fd = tcp_connect(port, 0), .close_code = -1};
    int status = -1;
    out[0] = '\0';
    if (c.fd < 0)
        return -1;
    if (tls_start(&c, ca_file, name) == 0 && wsc_write(&c, req, strlen(req)) == 0) {
        size_t len = 0;
        while (len + 1 < outsz && fill(&c, 5000) > 0) {
            size_t n = c.len < outsz - len - 1 ? c.len : outsz - len - 1;
            memcpy(out + len, c.buf, n);
            len += n;
            c.len = 0;
        }
        out[len] = '\0';
        sscanf(out, "HTTP/1.%*d %d", &status);
    }
    if (c.ssl)
        SSL_free(c.ssl);
    close(c.fd);
    free(c.buf);
    return status;
}

int free_port(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        port = ntohs(sa.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

int proxy_start(struct proxy *p, int backend_port)
{
    return proxy_start_env(p, backend_port, NULL);
}

int proxy_start_env(struct proxy *p, int backend_port, const char *extra)
{
    char out[4096], env[7][320];
    memset(p, 0, sizeof(*p));
    p->pid = -1;
    if (!tmpdir_make(p->dir, sizeof(p->dir), "tls"))
        return -1;
    snprintf(p->ca, sizeof(p->ca), "%s/ca.pem", p->dir);
    const char *cert[] = {PVTEST_SOURCE_DIR "/cmake/tls/palaver-cert",
                          "--dir",
                          p->dir,
                          "127.0.0.1",
                          "localhost",
                          NULL};
    if (run_capture(cert, NULL, out, sizeof(out)) != 0) {
        fprintf(stderr, "palaver-cert failed: %s\n", out);
        return -1;
    }
    p->port = free_port();
    p->http_port = free_port();
    snprintf(p->log, sizeof(p->log), "%s/haproxy-%d.log", PVTEST_LOG_DIR, p->port);
    snprintf(env[0], sizeof(env[0]), "PALAVER_CERT=%s/palaver.pem", p->dir);
    snprintf(env[1], sizeof(env[1]), "PALAVER_HTTPS_BIND=127.0.0.1:%d", p->port);
    snprintf(env[2], sizeof(env[2]), "PALAVER_HTTP_BIND=127.0.0.1:%d", p->http_port);
    snprintf(env[3], sizeof(env[3]), "PALAVER_BACKEND=127.0.0.1:%d", backend_port);
    snprintf(env[4], sizeof(env[4]), "PALAVER_TLS_TEST=1");
    snprintf(env[5], sizeof(env[5]), "PALAVER_MAXCONN=4000");
    snprintf(env[6], sizeof(env[6]), "%s", extra ? extra : "PALAVER_TLS_TEST=1");
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(p->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        for (int i = 0; i < 7; i++)
            putenv(env[i]);
        const char *cfg = PVTEST_SOURCE_DIR "/cmake/tls/haproxy.cfg";
        /* Master-worker, as Debian's unit runs it (-Ws), in the foreground:
         * SIGUSR2 to the master reloads (proxy_reload). */
        execlp("haproxy", "haproxy", "-W", "-db", "-f", cfg, (char *)NULL);
        execl("/usr/sbin/haproxy", "haproxy", "-W", "-db", "-f", cfg, (char *)NULL);
        _exit(127);
    }
    p->pid = pid;
    /* Ready when a TLS request through it is answered by palaverd. */
    int64_t deadline = mono_ms() + 10000;
    while (mono_ms() < deadline) {
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            p->pid = -1;
            return -1;
        }
        if (tls_request(p->port, p->ca, "127.0.0.1",
                        "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
                        out, sizeof(out)) == 200)
            return 0;
        poll(NULL, 0, 20); /* HAProxy binds within milliseconds; re-check */
    }
    return -1;
}

int proxy_reload(struct proxy *p)
{
    return p->pid > 0 ? kill(p->pid, SIGUSR2) : -1;
}

int proxy_stop(struct proxy *p)
{
    int status = -1;
    if (p->pid > 0) {
        kill(p->pid, SIGUSR1); /* soft stop: stop listening, finish what is open */
        int64_t deadline = mono_ms() + 5000;
        while (mono_ms() < deadline && waitpid(p->pid, &status, WNOHANG) == 0)
            poll(NULL, 0, 10);
        if (waitpid(p->pid, &status, WNOHANG) == 0) {
            kill(p->pid, SIGKILL);
            waitpid(p->pid, &status, 0);
        }
        p->pid = -1;
    }
    if (p->dir[0])
        tmpdir_remove(p->dir);
    return status;
}
