/* Integration: palaverd behind the real TLS terminator (docs/tls.md).
 * Debian's HAProxy runs the tree's shipped configuration
 * (cmake/tls/haproxy.cfg) with a CA and certificate made by the tree's
 * cmake/tls/palaver-cert; clients speak wss:// to it with the certificate
 * verified, from different loopback addresses (127.0.0.x) so that the
 * forwarded client address can be told from the proxy's. Checked: chat,
 * acks and the Origin rule over wss; per-address limits, the ACL and
 * logs on the forwarded address; a forged X-Forwarded-For from an
 * untrusted peer ignored; /metrics refused through the proxy; the
 * Secure cookie over https; a TLS port refused at start; churn through
 * TLS during a broadcast losing nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <unistd.h>
#include <cmocka.h>

#include "pvtest.h"

#define T 5000
#define PASSWORD "correct horse battery"

struct client_opts {
    char origin[128], host[64];
    struct wsc_opts o;
};

/* Options for a browser-like wss client of proxy p from address `from`. */
static struct wsc_opts *via(struct client_opts *co, const struct proxy *p, const char *from,
                            const char *scheme)
{
    snprintf(co->origin, sizeof(co->origin), "Origin: %s://127.0.0.1:%d\r\n", scheme, p->port);
    snprintf(co->host, sizeof(co->host), "127.0.0.1:%d", p->port);
    co->o = (struct wsc_opts){.tls_ca = p->ca,
                              .tls_name = "127.0.0.1",
                              .headers = co->origin,
                              .host = co->host,
                              .from = from};
    return &co->o;
}

static struct wsc *joined(int port, const struct wsc_opts *o)
{
    struct wsc *c = wsc_open(port, o);
    assert_non_null(c);
    assert_false(c->tls_error);
    assert_int_equal(c->status, 101);
    assert_int_equal(wsc_join(c, NULL, NULL), 0);
    return c;
}

static void gets(struct wsc *c, const char *text)
{
    json_t *j = wsc_expect(c, "message", T);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "text")), text);
    json_decref(j);
}

static bool file_has(const char *path, const char *needle)
{
    char buf[65536];
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strstr(buf, needle) != NULL;
}

static void test_chat_over_wss_through_haproxy(void **state)
{
    (void)state;
    struct srv s;
    struct proxy p;
    struct client_opts ca, cb, cc;
    char need[256], out[8192];
    const char *args[] = {"--trusted-proxies", "127.0.0.1", NULL};
    assert_int_equal(srv_start(&s, args), 0);
    assert_int_equal(proxy_start(&p, s.port), 0);

    /* Two pages over wss, their https origin accepted, chat and ack. */
    struct wsc *a = joined(p.port, via(&ca, &p, "127.0.0.2", "https"));
    struct wsc *b = joined(p.port, via(&cb, &p, "127.0.0.3", "https"));
    assert_int_equal(wsc_send_chat(a, 1, "over tls", "k"), 0);
    gets(b, "over tls");
    json_t *ack = wsc_expect(a, "ack", T);
    assert_non_null(ack);
    json_decref(ack);

    /* The plain-http origin of the same host is not the page's own once
     * the request is known to have come over https. The log names the
     * forwarded client and the proxy. */
    struct wsc *c = wsc_open(p.port, via(&cc, &p, "127.0.0.4", "http"));
    assert_non_null(c);
    assert_int_equal(c->status, 403);
    snprintf(need, sizeof(need), "refused WebSocket from 127.0.0.4 via 127.0.0.1:");
    assert_true(srv_log_wait(&s, need, T));
    snprintf(need, sizeof(need), "the page's own is https://127.0.0.1:%d", p.port);
    assert_true(srv_log_has(&s, need));
    wsc_free(c);

    /* A client that does not trust the certificate gets no connection. */
    struct client_opts cd;
    struct wsc_opts *bad = via(&cd, &p, "127.0.0.5", "https");
    bad->tls_ca = "/etc/ssl/certs/ca-certificates.crt"; /* the public CAs: not ours */
    c = wsc_open(p.port, bad);
    assert_non_null(c);
    assert_true(c->tls_error);
    assert_int_not_equal(c->status, 101);
    wsc_free(c);

    /* Plain http on the terminator moves to https, same host and path. */
    snprintf(need, sizeof(need),
             "GET /chat?x=1 HTTP/1.1\r\nHost: chat.lan\r\nConnection: close\r\n\r\n");
    assert_int_equal(http_request(p.http_port, need, out, sizeof(out)), 301);
    assert_non_null(strstr(out, "https://chat.lan/chat?x=1"));

    /* The page itself over https, with its security headers. */
    snprintf(need, sizeof(need),
             "GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n", p.port);
    assert_int_equal(tls_request(p.port, p.ca, "127.0.0.1", need, out, sizeof(out)), 200);
    assert_non_null(strcasestr(out, "Content-Security-Policy: default-src 'none'"));

    wsc_free(a);
    wsc_free(b);
    assert_int_equal(srv_stop(&s), 0);
    proxy_stop(&p);
}

static void test_limits_and_acl_use_the_forwarded_address(void **state)
{
    (void)state;
    struct srv s;
    struct proxy p;
    struct client_opts o1, o2, o3, o4;
    const char *args[] = {"--trusted-proxies",
                          "127.0.0.1",
                          "--max-per-ip",
                          "1",
                          "--access-control-list",
                          "-0.0.0.0/0,+127.0.0.1,+127.0.0.2,+127.0.0.3",
                          NULL};
    assert_int_equal(srv_start(&s, args), 0);
    assert_int_equal(proxy_start(&p, s.port), 0);
    /* One per address: two clients through the one proxy are two addresses. */
    struct wsc *a = joined(p.port, via(&o1, &p, "127.0.0.2", "https"));
    struct wsc *b = joined(p.port, via(&o2, &p, "127.0.0.3", "https"));
    /* A second from 127.0.0.2 is over its own limit (503 relayed by HAProxy). */
    struct wsc *a2 = wsc_open(p.port, via(&o3, &p, "127.0.0.2", "https"));
    assert_non_null(a2);
    assert_int_equal(a2->status, 503);
    assert_true(srv_log_wait(&s, "refused WebSocket from 127.0.0.2 via 127.0.0.1:", T));
    wsc_free(a2);
    /* The ACL applies to the forwarded client: 127.0.0.6 is not listed. */
    struct wsc *x = wsc_open(p.port, via(&o4, &p, "127.0.0.6", "https"));
    assert_non_null(x);
    assert_int_equal(x->status, 403);
    assert_true(srv_log_wait(&s, "refused request from 127.0.0.6 via 127.0.0.1:", T));
    wsc_free(x);
    /* Those refusals cost the others nothing. */
    assert_int_equal(wsc_send_chat(b, 1, "still here", "k"), 0);
    gets(a, "still here");
    wsc_free(a);
    wsc_free(b);
    assert_int_equal(srv_stop(&s), 0);
    proxy_stop(&p);
}

/* HAProxy's own per-source bound (the shipped stick table): one address
 * holding PALAVER_CONN_PER_SRC connections gets no more, closed at
 * accept, while another address is served; palaverd never sees the
 * refused one. */
static void test_haproxy_bounds_connections_per_source(void **state)
{
    (void)state;
    struct srv s;
    struct proxy p;
    struct client_opts o[7];
    const char *args[] = {"--trusted-proxies", "127.0.0.1", NULL};
    assert_int_equal(srv_start(&s, args), 0);
    assert_int_equal(proxy_start_env(&p, s.port, "PALAVER_CONN_PER_SRC=4"), 0);
    struct wsc *c[5];
    for (int i = 0; i < 5; i++) /* "gt 4": four may be open */
        c[i] = i < 4 ? joined(p.port, via(&o[i], &p, "127.0.0.7", "https")) : NULL;
    struct wsc *over = wsc_open(p.port, via(&o[4], &p, "127.0.0.7", "https"));
    assert_non_null(over);
    assert_true(over->tls_error); /* closed at accept: not even a TLS handshake */
    wsc_free(over);
    /* Another address is served, and the four keep chatting. */
    struct wsc *other = joined(p.port, via(&o[5], &p, "127.0.0.8", "https"));
    assert_int_equal(wsc_send_chat(other, 1, "room for me", "k"), 0);
    for (int i = 0; i < 4; i++)
        gets(c[i], "room for me");
    /* One of the four gone, 127.0.0.7 may connect again. */
    wsc_free(c[0]);
    int64_t deadline = mono_ms() + T;
    struct wsc *again = NULL;
    while (mono_ms() < deadline) { /* HAProxy notices the close within moments */
        again = wsc_open(p.port, via(&o[6], &p, "127.0.0.7", "https"));
        if (again && !again->tls_error && again->status == 101)
            break;
        wsc_free(again);
        again = NULL;
        poll(NULL, 0, 50);
    }
    assert_non_null(again);
    wsc_free(again);
    for (int i = 1; i < 4; i++)
        wsc_free(c[i]);
    wsc_free(other);
    assert_int_equal(srv_stop(&s), 0);
    proxy_stop(&p);
}

/* A new certificate without dropping anyone (docs/tls.md): the PEM is
 * replaced and HAProxy reloaded as `systemctl reload haproxy` does; new
 * connections get the new certificate (here from another CA, so a client
 * trusting only that CA fails before and succeeds after), and a WebSocket
 * opened before the reload keeps chatting both ways. */
static void test_certificate_reload_keeps_connections(void **state)
{
    (void)state;
    struct srv s;
    struct proxy p;
    struct client_opts o1, o2;
    char dir2[256], out[4096], cmd[2048];
    const char *args[] = {"--trusted-proxies", "127.0.0.1", NULL};
    assert_int_equal(srv_start(&s, args), 0);
    assert_int_equal(proxy_start(&p, s.port), 0);
    struct wsc *a = joined(p.port, via(&o1, &p, "127.0.0.2", "https"));
    /* A second CA and a certificate from it, put where HAProxy reads its own. */
    assert_true(tmpdir_make(dir2, sizeof(dir2), "tls-ca2"));
    snprintf(cmd, sizeof(cmd),
             "'%s/cmake/tls/palaver-cert' --dir '%s' 127.0.0.1 localhost >/dev/null && "
             "cp '%s/palaver.pem' '%s/palaver.pem.new' && mv '%s/palaver.pem.new' '%s/palaver.pem'",
             PVTEST_SOURCE_DIR, dir2, dir2, p.dir, p.dir, p.dir);
    const char *sh[] = {"/bin/sh", "-c", cmd, NULL};
    assert_int_equal(run_capture(sh, NULL, out, sizeof(out)), 0);
    char ca2[300];
    snprintf(ca2, sizeof(ca2), "%s/ca.pem", dir2);
    struct wsc_opts *o = via(&o2, &p, "127.0.0.3", "https");
    o->tls_ca = ca2;
    struct wsc *b = wsc_open(p.port, o);
    assert_non_null(b);
    assert_true(b->tls_error); /* not reloaded yet: the old certificate */
    wsc_free(b);
    assert_int_equal(proxy_reload(&p), 0);
    b = NULL;
    int64_t deadline = mono_ms() + 10000;
    while (mono_ms() < deadline) { /* the new workers take over within moments */
        b = wsc_open(p.port, o);
        if (b && !b->tls_error && b->status == 101)
            break;
        wsc_free(b);
        b = NULL;
        poll(NULL, 0, 50);
    }
    assert_non_null(b);
    assert_int_equal(wsc_join(b, NULL, NULL), 0);
    /* The connection from before the reload: still there, both ways. */
    assert_int_equal(wsc_send_chat(b, 1, "after the reload", "k"), 0);
    gets(a, "after the reload");
    assert_int_equal(wsc_send_chat(a, 2, "still here", "k"), 0);
    gets(b, "still here");
    wsc_free(a);
    wsc_free(b);
    assert_int_equal(srv_stop(&s), 0);
    proxy_stop(&p);
    tmpdir_remove(dir2);
}

/* Straight to palaverd, no proxy: what X-Forwarded-For can and cannot do. */
static void test_forwarded_headers_only_from_trusted_peers(void **state)
{
    (void)state;
    struct srv s;
    char out[16384], req[512];
    const char *args[] = {"--trusted-proxies", "127.0.0.1", "--max-per-ip", "1", NULL};
    assert_int_equal(srv_start(&s, args), 0);
    /* From 127.0.0.5 (not trusted) the header is ignored: the second
     * connection is over 127.0.0.5's limit whatever address it forges. */
    struct wsc *a = joined(s.port, &(struct wsc_opts){.from = "127.0.0.5",
                                                      .headers = "X-Forwarded-For: 10.0.0.1\r\n"});
    struct wsc *f =
        wsc_open(s.port, &(struct wsc_opts){.from = "127.0.0.5",
                                            .headers = "X-Forwarded-For: 10.0.0.2\r\n"});
    assert_non_null(f);
    assert_int_equal(f->status, 503);
    assert_true(srv_log_wait(&s, "refused WebSocket from 127.0.0.5:", T));
    assert_false(srv_log_has(&s, "10.0.0.2"));
    wsc_free(f);
    /* Nor can it make itself https (the https page's origin is fine from
     * a plain peer, as before; the Secure cookie is tested below). From
     * the trusted peer, the forwarded address counts: two forwarded
     * clients are two addresses. */
    struct wsc *t1 = joined(s.port, &(struct wsc_opts){.headers = "X-Forwarded-For: 10.0.0.7\r\n"});
    struct wsc *t2 = joined(s.port, &(struct wsc_opts){.headers = "X-Forwarded-For: 10.0.0.8\r\n"});
    struct wsc *t3 =
        wsc_open(s.port, &(struct wsc_opts){.headers = "X-Forwarded-For: 10.0.0.8\r\n"});
    assert_int_equal(t3->status, 503);
    assert_true(srv_log_wait(&s, "refused WebSocket from 10.0.0.8 via 127.0.0.1:", T));
    wsc_free(t3);
    /* A client's own X-Forwarded-For before the proxy's: only the last hop. */
    struct wsc *t4 =
        wsc_open(s.port, &(struct wsc_opts){.headers = "X-Forwarded-For: 10.0.0.99\r\n"
                                                       "X-Forwarded-For: 6.6.6.6, 10.0.0.7\r\n"});
    assert_int_equal(t4->status, 503); /* 10.0.0.7 has its one already */
    wsc_free(t4);
    /* A trusted peer forwarding something that is not an address: 400. */
    snprintf(req, sizeof(req),
             "GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nX-Forwarded-For: <script>\r\n"
             "Connection: close\r\n\r\n",
             s.port);
    assert_int_equal(http_request(s.port, req, out, sizeof(out)), 400);
    assert_true(srv_log_wait(&s, "does not end in an address; answered 400", T));
    /* /metrics: to the proxy host itself yes, to a forwarded client no. */
    assert_int_equal(http_get(s.port, "/metrics", out, sizeof(out)), 200);
    snprintf(req, sizeof(req),
             "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nX-Forwarded-For: 10.0.0.9\r\n"
             "Connection: close\r\n\r\n",
             s.port);
    assert_int_equal(http_request(s.port, req, out, sizeof(out)), 403);
    assert_true(srv_log_wait(&s, "refused /metrics to 10.0.0.9 via 127.0.0.1:", T));
    wsc_free(a);
    wsc_free(t1);
    wsc_free(t2);
    assert_int_equal(srv_stop(&s), 0);
}

static void test_metrics_refused_and_cookie_secure_over_https(void **state)
{
    (void)state;
    struct srv s;
    struct proxy p;
    char dir[256], out[16384], req[1024], cmd[1024];
    assert_true(tmpdir_make(dir, sizeof(dir), "tls-acc"));
    snprintf(cmd, sizeof(cmd),
             "printf '%%s\\n' '%s' | '%s' --config /dev/null --data-dir '%s' --create-admin alice",
             PASSWORD, PALAVERD_PATH, dir);
    const char *sh[] = {"/bin/sh", "-c", cmd, NULL};
    assert_int_equal(run_capture(sh, NULL, out, sizeof(out)), 0);
    const char *args[] = {"--trusted-proxies", "127.0.0.1", "--data-dir", dir, NULL};
    assert_int_equal(srv_start(&s, args), 0);
    assert_int_equal(proxy_start(&p, s.port), 0);

    snprintf(req, sizeof(req),
             "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n", p.port);
    assert_int_equal(tls_request(p.port, p.ca, "127.0.0.1", req, out, sizeof(out)), 403);

    const char *body = "{\"name\":\"alice\",\"password\":\"" PASSWORD "\"}";
    snprintf(req, sizeof(req),
             "POST /api/login HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nOrigin: https://127.0.0.1:%d\r\n"
             "Content-Type: application/json\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
             p.port, p.port, strlen(body), body);
    assert_int_equal(tls_request(p.port, p.ca, "127.0.0.1", req, out, sizeof(out)), 200);
    char *cookie = strcasestr(out, "Set-Cookie: "); /* HAProxy lower-cases header names */
    assert_non_null(cookie);
    *strchr(cookie, '\r') = '\0';
    assert_non_null(strstr(cookie, "; Secure"));
    assert_non_null(strstr(cookie, "HttpOnly"));
    /* The same over plain http, straight to palaverd: no Secure (the
     * browser would drop the cookie). */
    snprintf(req, sizeof(req),
             "POST /api/login HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
             "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
             s.port, strlen(body), body);
    assert_int_equal(http_request(s.port, req, out, sizeof(out)), 200);
    cookie = strstr(out, "Set-Cookie: ");
    assert_non_null(cookie);
    *strchr(cookie, '\r') = '\0';
    assert_null(strstr(cookie, "Secure"));
    /* A forged X-Forwarded-Proto from an untrusted address makes nothing Secure. */
    struct srv s2;
    const char *args2[] = {"--trusted-proxies", "127.0.0.9", "--data-dir", dir, NULL};
    assert_int_equal(srv_stop(&s), 0);
    assert_int_equal(srv_start(&s2, args2), 0);
    snprintf(req, sizeof(req),
             "POST /api/login HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
             "X-Forwarded-Proto: https\r\nX-Forwarded-For: 10.1.1.1\r\n"
             "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
             s2.port, strlen(body), body);
    assert_int_equal(http_request(s2.port, req, out, sizeof(out)), 200);
    cookie = strstr(out, "Set-Cookie: ");
    assert_non_null(cookie);
    *strchr(cookie, '\r') = '\0';
    assert_null(strstr(cookie, "Secure"));
    assert_int_equal(srv_stop(&s2), 0);
    proxy_stop(&p);
    tmpdir_remove(dir);
}

static void test_tls_port_is_refused_at_start(void **state)
{
    (void)state;
    char out[4096];
    const char *port[] = {PALAVERD_PATH, "--config", "/dev/null", "--port", "8443s", NULL};
    assert_int_equal(run_capture(port, NULL, out, sizeof(out)), 2);
    assert_non_null(strstr(out, "does not serve TLS itself"));
    assert_non_null(strstr(out, "docs/tls.md"));
    const char *flag[] = {PALAVERD_PATH,       "--config", "/dev/null",
                          "--ssl-certificate", "/x.pem",   NULL};
    assert_int_equal(run_capture(flag, NULL, out, sizeof(out)), 2);
    assert_non_null(strstr(out, "does not serve TLS itself"));
    char dir[256], path[300];
    assert_true(tmpdir_make(dir, sizeof(dir), "tls-conf"));
    snprintf(path, sizeof(path), "%s/palaverd.conf", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("port = 443s\n", f);
    fclose(f);
    const char *file[] = {PALAVERD_PATH, "--config", path, NULL};
    assert_int_equal(run_capture(file, NULL, out, sizeof(out)), 2);
    assert_non_null(strstr(out, "palaverd.conf:1:"));
    assert_non_null(strstr(out, "docs/tls.md"));
    tmpdir_remove(dir);
}

/* Hundreds of pages connecting and leaving through TLS -- half closing
 * cleanly, half just dropping -- while one person sends to another:
 * every message arrives, once, in order, and every one is acked. */
static void test_churn_through_tls_loses_nothing(void **state)
{
    (void)state;
    struct srv s;
    struct proxy p;
    struct client_opts rx, tx, ch;
    enum { CHURN = 300 };
    /* The sender sends as fast as the churn goes: no message rate limit. */
    const char *args[] = {"--trusted-proxies", "127.0.0.1", "--rate-limit", "0", NULL};
    assert_int_equal(srv_start(&s, args), 0);
    assert_int_equal(proxy_start(&p, s.port), 0);
    struct wsc *r = joined(p.port, via(&rx, &p, "127.0.0.2", "https"));
    struct wsc *t = joined(p.port, via(&tx, &p, "127.0.0.3", "https"));
    char text[32], from[16];
    for (int i = 0; i < CHURN; i++) {
        snprintf(from, sizeof(from), "127.0.1.%d", 1 + i % 200);
        struct wsc *c = joined(p.port, via(&ch, &p, from, "https"));
        snprintf(text, sizeof(text), "m%d", i);
        assert_int_equal(wsc_send_chat(t, i + 1, text, "k"), 0);
        if (i % 2)
            wsc_send(c, true, 8, "\x03\xe8", 2); /* close 1000, then go */
        wsc_free(c);
    }
    /* The receiver: exactly m0..m299, in order, strictly increasing seq. */
    long long last = 0;
    for (int i = 0; i < CHURN; i++) {
        json_t *j = wsc_expect(r, "message", 10000);
        assert_non_null(j);
        snprintf(text, sizeof(text), "m%d", i);
        assert_string_equal(json_string_value(json_object_get(j, "text")), text);
        long long seq = json_integer_value(json_object_get(j, "seq"));
        assert_true(seq > last);
        last = seq;
        json_decref(j);
    }
    /* The sender: an ack for each. */
    for (int i = 0; i < CHURN; i++) {
        json_t *a = wsc_expect(t, "ack", 10000);
        assert_non_null(a);
        json_decref(a);
    }
    assert_false(file_has(p.log, "SSL handshake failure"));
    wsc_free(r);
    wsc_free(t);
    assert_int_equal(srv_stop(&s), 0);
    proxy_stop(&p);
}

/* The one command of the docs, run under a scratch root without apt or
 * systemctl: the certificate, HAProxy's configuration (checked by
 * haproxy -c inside the script) and palaverd.conf (checked here). */
static void test_setup_script_writes_a_working_configuration(void **state)
{
    (void)state;
    char dir[256], out[8192], env_root[300], path[400], cmd[2048];
    assert_true(tmpdir_make(dir, sizeof(dir), "tls-setup"));
    snprintf(path, sizeof(path), "%s/etc/palaver", dir);
    snprintf(cmd, sizeof(cmd),
             "mkdir -p '%s' && printf 'allowed-hosts = old.lan\\n' > '%s/palaverd.conf'", path,
             path);
    const char *mk[] = {"/bin/sh", "-c", cmd, NULL};
    assert_int_equal(run_capture(mk, NULL, out, sizeof(out)), 0);
    snprintf(env_root, sizeof(env_root), "PALAVER_ROOT=%s", dir);
    const char *envs[] = {env_root, "PALAVER_NO_SERVICES=1", NULL};
    const char *setup[] = {PVTEST_SOURCE_DIR "/cmake/tls/palaver-tls-setup", "chat.lan",
                           "192.0.2.10", NULL};
    int rc = run_capture(setup, envs, out, sizeof(out));
    if (rc != 0)
        fprintf(stderr, "%s\n", out);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(out, "Open https://chat.lan/"));
    /* palaverd.conf: behind the proxy only, the proxy trusted, the name
     * answered to, the operator's own host kept. */
    snprintf(path, sizeof(path), "%s/etc/palaver/palaverd.conf", dir);
    const char *check[] = {PALAVERD_PATH, "--config", path, "--check-config", NULL};
    assert_int_equal(run_capture(check, NULL, out, sizeof(out)), 0);
    snprintf(cmd, sizeof(cmd), "cat '%s'", path);
    const char *cat[] = {"/bin/sh", "-c", cmd, NULL};
    assert_int_equal(run_capture(cat, NULL, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "listen = 127.0.0.1"));
    assert_non_null(strstr(out, "trusted-proxies = 127.0.0.1"));
    assert_non_null(strstr(out, "chat.lan"));
    assert_non_null(strstr(out, "old.lan"));
    /* The certificate HAProxy serves chains to the CA and names both. */
    snprintf(
        cmd, sizeof(cmd),
        "openssl verify -CAfile '%s/etc/palaver/tls/ca.pem' '%s/etc/haproxy/certs/palaver.pem' "
        "&& openssl x509 -in '%s/etc/haproxy/certs/palaver.pem' -noout -ext subjectAltName "
        "&& stat -c %%a '%s/etc/haproxy/certs/palaver.pem'",
        dir, dir, dir, dir);
    const char *v[] = {"/bin/sh", "-c", cmd, NULL};
    assert_int_equal(run_capture(v, NULL, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "DNS:chat.lan"));
    assert_non_null(strstr(out, "IP Address:192.0.2.10"));
    assert_non_null(strstr(out, "\n600\n")); /* the key is readable by root only */
    tmpdir_remove(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chat_over_wss_through_haproxy),
        cmocka_unit_test(test_limits_and_acl_use_the_forwarded_address),
        cmocka_unit_test(test_haproxy_bounds_connections_per_source),
        cmocka_unit_test(test_certificate_reload_keeps_connections),
        cmocka_unit_test(test_forwarded_headers_only_from_trusted_peers),
        cmocka_unit_test(test_metrics_refused_and_cookie_secure_over_https),
        cmocka_unit_test(test_tls_port_is_refused_at_start),
        cmocka_unit_test(test_churn_through_tls_loses_nothing),
        cmocka_unit_test(test_setup_script_writes_a_working_configuration),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
