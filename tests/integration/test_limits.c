/* Integration: the limits palaverd puts on each client and address --
 * Origin check (403), connections per IP (503 / 1013), message rate
 * (error, then 1008), handshake timeout, and eviction of a closed client
 * that never answers the close. Each refusal is checked on the wire and
 * in the log, and the other clients keep being served. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "pvtest.h"

#define T 5000

static struct wsc *joined(int port, const struct wsc_opts *o)
{
    struct wsc *c = wsc_open(port, o);
    assert_non_null(c);
    assert_int_equal(c->status, 101);
    assert_int_equal(wsc_join(c, NULL, NULL), 0);
    return c;
}

/* The next chat message c receives has this text. */
static void gets(struct wsc *c, const char *text)
{
    json_t *j = wsc_expect(c, "message", T);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "text")), text);
    json_decref(j);
}

static void test_cross_site_handshake_is_refused_with_403(void **state)
{
    (void)state;
    struct srv s;
    char hdr[128];
    assert_int_equal(srv_start(&s, NULL), 0);
    /* The page's own origin (the Host the browser used) is allowed... */
    snprintf(hdr, sizeof(hdr), "Origin: http://127.0.0.1:%d\r\n", s.port);
    struct wsc *same = joined(s.port, &(struct wsc_opts){.headers = hdr});
    /* ...another site's page is not: a real 403 status line, and a log line. */
    struct wsc *evil =
        wsc_open(s.port, &(struct wsc_opts){.headers = "Origin: http://evil.example\r\n"});
    assert_non_null(evil);
    assert_int_equal(evil->status, 403);
    assert_true(srv_log_wait(&s, "Origin 'http://evil.example' is not allowed", T));
    /* A different port on the same host is a different origin. */
    struct wsc *port =
        wsc_open(s.port, &(struct wsc_opts){.headers = "Origin: http://127.0.0.1:1\r\n"});
    assert_int_equal(port->status, 403);
    /* A client with no Origin (not a browser page) is allowed. */
    struct wsc *tool = joined(s.port, NULL);
    assert_int_equal(wsc_send_chat(tool, 1, "still here", ""), 0);
    gets(same, "still here");
    wsc_free(evil);
    wsc_free(port);
    wsc_free(tool);
    wsc_free(same);
    assert_int_equal(srv_stop(&s), 0);

    /* --allowed-origins adds origins. */
    const char *args[] = {"--allowed-origins", "http://proxy.lan, http://evil.example", NULL};
    assert_int_equal(srv_start(&s, args), 0);
    evil = joined(s.port, &(struct wsc_opts){.headers = "Origin: http://evil.example\r\n"});
    struct wsc *other = wsc_open(s.port, &(struct wsc_opts){.headers = "Origin: http://x.lan\r\n"});
    assert_int_equal(other->status, 403);
    wsc_free(other);
    wsc_free(evil);
    assert_int_equal(srv_stop(&s), 0);
}

static void test_connections_per_address_are_capped(void **state)
{
    (void)state;
    struct srv s;
    const char *args[] = {"--max-per-ip", "3", NULL};
    char page[4096], id[32], needle[96];
    struct wsc *c[3];
    assert_int_equal(srv_start(&s, args), 0);
    for (int i = 0; i < 3; i++)
        c[i] = joined(s.port, NULL);
    struct wsc *fourth = wsc_open(s.port, NULL);
    assert_int_equal(fourth->status, 503);
    assert_non_null(strstr(fourth->response, "Retry-After: 5"));
    assert_non_null(strstr(fourth->response, "too many chat connections from your address"));
    assert_true(srv_log_wait(&s, "3 connections from that address already (--max-per-ip)", T));
    wsc_free(fourth);
    /* The page still loads, and the three still chat. */
    assert_int_equal(http_get(s.port, "/", page, sizeof(page)), 200);
    assert_int_equal(wsc_send_chat(c[0], 1, "three is plenty", ""), 0);
    gets(c[1], "three is plenty");
    /* When one leaves, the address has room again. */
    wsc_free(c[2]);
    assert_true(srv_log_wait(&s, "reason=\"connection lost\"", T));
    c[2] = wsc_open(s.port, NULL);
    assert_int_equal(c[2]->status, 101);
    assert_int_equal(wsc_join(c[2], NULL, id), 0);
    snprintf(needle, sizeof(needle), "join id=%s", id);
    assert_true(srv_log_has(&s, needle));
    for (int i = 0; i < 3; i++)
        wsc_free(c[i]);
    assert_int_equal(srv_stop(&s), 0);
}

static void test_message_rate_is_limited_then_a_flood_is_closed(void **state)
{
    (void)state;
    struct srv s;
    const char *args[] = {"--rate-limit", "5", "--rate-burst", "5", NULL};
    enum { N = 20 };
    static char burst[N * 128 + 1200];
    size_t len = 0;
    assert_int_equal(srv_start(&s, args), 0);
    struct wsc *b = joined(s.port, NULL), *flood = joined(s.port, NULL);
    /* N messages in one write: the burst is taken, the rest refused, and
     * refusals beyond the burst close the sender. Two of the refused ones
     * carry string msgIds: a short one comes back, a 1,000-byte one does
     * not (one rule for msgId, on the worker as in the decoder). */
    static char long_id[1001];
    memset(long_id, 'L', 1000);
    for (int i = 0; i < N; i++) {
        char msg[1100];
        int n;
        if (i == 6)
            n = snprintf(msg, sizeof(msg),
                         "{\"type\":\"message\",\"msgId\":\"%s\",\"text\":\"f%d\"}", long_id, i);
        else if (i == 7)
            n = snprintf(msg, sizeof(msg),
                         "{\"type\":\"message\",\"msgId\":\"s7\",\"text\":\"f%d\"}", i);
        else
            n = snprintf(msg, sizeof(msg), "{\"type\":\"message\",\"msgId\":%d,\"text\":\"f%d\"}",
                         i, i);
        unsigned char *f;
        size_t fl = wsc_encode(0x81, msg, (size_t)n, &f);
        memcpy(burst + len, f, fl);
        len += fl;
        free(f);
    }
    assert_int_equal(wsc_send_raw(flood, burst, len), 0);
    int acks = 0, limited = 0, last_ack = -1, short_id = 0, no_id = 0;
    for (;;) {
        json_t *j = wsc_recv_json(flood, T);
        if (!j)
            break; /* the close frame */
        const char *type = json_string_value(json_object_get(j, "type"));
        if (strcmp(type, "ack") == 0) {
            acks++;
            last_ack = (int)json_integer_value(json_object_get(j, "msgId"));
        } else if (strcmp(type, "error") == 0) {
            assert_string_equal(json_string_value(json_object_get(j, "code")), "rate-limited");
            json_t *id = json_object_get(j, "msgId");
            if (!id)
                no_id++;
            else if (json_is_string(id))
                short_id += strcmp(json_string_value(id), "s7") == 0;
            else
                assert_true(json_integer_value(id) >= 5);
            limited++;
        }
        json_decref(j);
    }
    assert_int_equal(flood->close_code, 1008);
    assert_string_equal(flood->close_reason, "message rate limit exceeded");
    /* The burst went through (a token may refill on a slow machine). */
    assert_true(acks >= 5 && acks <= 6);
    assert_int_equal(last_ack, acks - 1);
    assert_true(limited >= 5);
    assert_int_equal(short_id, 1);
    assert_int_equal(no_id, 1);
    assert_true(srv_log_wait(&s, "flood from", T));
    /* The bystander got exactly the accepted ones, in order. */
    for (int i = 0; i < acks; i++) {
        char text[16];
        snprintf(text, sizeof(text), "f%d", i);
        gets(b, text);
    }
    /* ...and nothing else: the next message it sees is a new client's. */
    struct wsc *calm = joined(s.port, NULL);
    assert_int_equal(wsc_send_chat(calm, 1, "calm", ""), 0);
    gets(b, "calm");
    wsc_free(calm);
    wsc_free(flood);
    wsc_free(b);
    assert_int_equal(srv_stop(&s), 0);
}

static int raw_connect(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    return fd;
}

/* Milliseconds until the server ends the connection (reads drain whatever
 * it sent), or -1 if it is still open after limit_ms. `drip` sends one
 * more header byte every drip ms meanwhile (0: none). */
static int64_t ms_until_closed(int fd, int limit_ms, int drip)
{
    int64_t start = mono_ms();
    char buf[512];
    while (mono_ms() - start < limit_ms) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, drip ? drip : 100) > 0) {
            ssize_t n = recv(fd, buf, sizeof(buf), 0);
            if (n <= 0)
                return mono_ms() - start;
        } else if (drip && send(fd, "X", 1, MSG_NOSIGNAL) < 0) {
            return mono_ms() - start;
        }
    }
    return -1;
}

static void test_handshake_timeout(void **state)
{
    (void)state;
    struct srv s;
    const char *args[] = {"--handshake-timeout", "1000", NULL};
    assert_int_equal(srv_start(&s, args), 0);
    struct wsc *c = joined(s.port, NULL);
    /* Half a request, then silence: dropped after about a second. */
    int fd = raw_connect(s.port);
    const char *half = "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    assert_int_equal(send(fd, half, strlen(half), 0), (ssize_t)strlen(half));
    int64_t ms = ms_until_closed(fd, 8000, 0);
    close(fd);
    assert_true(ms >= 900 && ms < 8000);
    assert_true(srv_log_wait(&s, "HTTP 400 to 127.0.0.1", T)); /* CivetWeb's answer, logged */
    /* A slow drip of header bytes does not extend it: the limit is on
     * the whole request head. */
    fd = raw_connect(s.port);
    assert_int_equal(send(fd, half, strlen(half), 0), (ssize_t)strlen(half));
    ms = ms_until_closed(fd, 8000, 200);
    close(fd);
    assert_true(ms >= 0 && ms < 8000);
    /* The established WebSocket is not subject to it. */
    struct wsc *d = joined(s.port, NULL);
    assert_int_equal(wsc_send_chat(d, 1, "still fine", ""), 0);
    gets(c, "still fine");
    wsc_free(d);
    wsc_free(c);
    assert_int_equal(srv_stop(&s), 0);
}

/* A client closed for a violation that neither answers the close nor
 * drops the connection is evicted: its TCP connection is ended by the
 * server within a few seconds, and its worker is free again. */
static void test_unanswered_close_is_evicted(void **state)
{
    (void)state;
    struct srv s;
    const char *args[] = {"--max-clients", "2", NULL};
    assert_int_equal(srv_start(&s, args), 0);
    struct wsc *b = joined(s.port, NULL), *x = joined(s.port, NULL);
    assert_int_equal(wsc_send(x, true, 2, "\x01", 1), 0); /* binary: 1003 */
    int64_t start = mono_ms();
    struct wsc_frame f;
    int r;
    while ((r = wsc_recv(x, &f, 10000)) == 1)
        wsc_frame_free(&f); /* the close frame, then the end */
    assert_int_equal(r, -1);
    assert_int_equal(x->close_code, 1003);
    assert_true(mono_ms() - start < 5000);
    assert_true(srv_log_wait(&s, "evicting", T));
    assert_true(srv_log_wait(&s, "reason=\"closed 1003: binary messages are not accepted\"", T));
    /* With --max-clients 2 a new client fits only if x's slot came back. */
    struct wsc *c = joined(s.port, NULL);
    assert_int_equal(wsc_send_chat(c, 1, "slot reused", ""), 0);
    gets(b, "slot reused");
    wsc_free(c);
    wsc_free(x);
    wsc_free(b);
    assert_int_equal(srv_stop(&s), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cross_site_handshake_is_refused_with_403),
        cmocka_unit_test(test_connections_per_address_are_capped),
        cmocka_unit_test(test_message_rate_is_limited_then_a_flood_is_closed),
        cmocka_unit_test(test_handshake_timeout),
        cmocka_unit_test(test_unanswered_close_is_evicted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
