/* test_socketio.c -- seed 002's Socket.IO against the real palaverd
 * (issue 20, socketio.h, docs/dialects.md), over raw sockets, packet by
 * packet: the client library served; the long-polling handshake, the
 * namespace connect asked over polling, a held GET released by the
 * upgrade probe's noop, the upgrade; chat both ways with a palaver client
 * (events, acks, refusals); namespaces refused; Engine.IO's pings; and
 * the bounds: versions, Origin, unknown and foreign sessions, one GET at
 * a time, events over polling, sessions per address, a session that
 * never upgrades.
 *
 * Threads: the test thread, and one helper thread at a time holding a
 * long-poll GET (its own socket; joined before its result is read). */
#include <pthread.h>

#include "people.h"

#define PING_MS 400 /* --ping-interval: a held GET answers a ping after this */

static int setup(void **state)
{
    (void)state;
    char ping[16];
    snprintf(ping, sizeof(ping), "%d", PING_MS);
    /* 16 HTTP workers: at most 8 polling sessions at once, 4 per address
     * (--max-per-ip, and half of the 8). */
    const char *args[] = {"--ping-interval",
                          ping,
                          "--idle-timeout",
                          "5000",
                          "--max-per-ip",
                          "4",
                          "--http-workers",
                          "16",
                          NULL};
    return srv_start(&server, args);
}

/* A raw HTTP request to palaverd; the status, the answer's body in resp[]. */
static char resp[4096];
static int request(const char *method, const char *query, const char *extra, const char *payload)
{
    char head[1024];
    size_t n = payload ? strlen(payload) : 0;
    snprintf(head, sizeof(head),
             "%s /socket.io/%s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n%sContent-Length: %zu\r\n"
             "Connection: close\r\n\r\n",
             method, query, server.port, extra ? extra : "", n);
    char *out = NULL;
    size_t len = 0;
    int status = http_raw(server.port, head, payload, n, false, &out, &len);
    resp[0] = '\0';
    if (out) {
        char *b = strstr(out, "\r\n\r\n");
        if (b)
            snprintf(resp, sizeof(resp), "%s", b + 4);
    }
    free(out);
    return status;
}

/* The handshake: a new session's sid. */
static void handshake(char sid[32])
{
    assert_int_equal(request("GET", "?EIO=4&transport=polling&t=a1", NULL, NULL), 200);
    assert_true(resp[0] == '0');
    json_t *o = json_loads(resp + 1, 0, NULL);
    assert_non_null(o);
    assert_int_equal(strlen(str(o, "sid")), 20);
    snprintf(sid, 32, "%s", str(o, "sid"));
    assert_string_equal(json_string_value(json_array_get(json_object_get(o, "upgrades"), 0)),
                        "websocket");
    assert_int_equal(num(o, "pingInterval"), PING_MS);
    assert_true(num(o, "pingTimeout") >= 5000 - PING_MS);
    json_decref(o);
}

/* A GET held in a thread of its own. */
struct held {
    pthread_t t;
    char query[128];
    int status;
    char resp[1024];
};

static void *held_get(void *arg)
{
    struct held *h = arg;
    char head[512];
    snprintf(head, sizeof(head),
             "GET /socket.io/%s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n",
             h->query, server.port);
    char *out = NULL;
    size_t len = 0;
    h->status = http_raw(server.port, head, NULL, 0, false, &out, &len);
    char *b = out ? strstr(out, "\r\n\r\n") : NULL;
    snprintf(h->resp, sizeof(h->resp), "%s", b ? b + 4 : "");
    free(out);
    return NULL;
}

static void hold(struct held *h, const char *sid)
{
    snprintf(h->query, sizeof(h->query), "?EIO=4&transport=polling&t=b&sid=%s", sid);
    assert_int_equal(pthread_create(&h->t, NULL, held_get, h), 0);
}

/* Reads text frames until one starts with prefix (pings "2" answered
 * "3" on the way, as the client library does); returns it, malloc'd. */
static char *expect_packet(struct wsc *c, const char *prefix)
{
    for (;;) {
        char *s = next_text(c);
        if (!s)
            fail_msg("no packet starting with %s", prefix);
        if (strncmp(s, prefix, strlen(prefix)) == 0)
            return s;
        if (strcmp(s, "2") == 0)
            wsc_send_text(c, "3");
        free(s);
    }
}

static struct wsc *open_sio(const char *query, int want)
{
    char path[128];
    snprintf(path, sizeof(path), "/socket.io/%s", query);
    struct wsc *c = wsc_open(server.port, &(struct wsc_opts){.path = path});
    assert_non_null(c);
    assert_int_equal(c->status, want);
    return c;
}

static void test_client_library(void **state)
{
    (void)state;
    char out[512];
    assert_int_equal(request("GET", "socket.io.js", NULL, NULL), 200);
    assert_non_null(strstr(resp, "Socket.IO v4.8.1"));
    assert_int_equal(
        request("GET", "socket.io.js", "If-None-Match: \"socket.io-client-4.8.1\"\r\n", NULL), 304);
    assert_int_equal(http_get(server.port, "/socket.io/socket.io.js", out, sizeof(out)), 200);
    assert_non_null(strstr(out, "Content-Type: text/javascript"));
    assert_non_null(strstr(out, "X-Content-Type-Options: nosniff"));
}

/* What io() does: polling, the namespace asked for, a held GET, the
 * upgrade; then chat with a palaver client both ways. */
static void test_polling_then_upgrade(void **state)
{
    (void)state;
    struct wsc *pal = open_as(NULL, "/ws?name=Ann", NULL);
    char sid[32], q[256];
    handshake(sid);
    snprintf(q, sizeof(q), "?EIO=4&transport=polling&t=a2&sid=%s", sid);
    assert_int_equal(request("POST", q, "Content-Type: text/plain;charset=UTF-8\r\n", "40"), 200);
    assert_string_equal(resp, "ok");

    /* The GET that io() keeps open while it probes the WebSocket. */
    struct held h;
    hold(&h, sid);
    snprintf(q, sizeof(q), "?EIO=4&transport=websocket&sid=%s", sid);
    struct wsc *sio = open_sio(q, 101);
    assert_string_equal(sio->protocol, "");
    wsc_send_text(sio, "2probe");
    char *p = expect_packet(sio, "3");
    assert_string_equal(p, "3probe");
    free(p);
    /* The probe releases the held GET with a noop (before any ping). */
    pthread_join(h.t, NULL);
    assert_int_equal(h.status, 200);
    assert_string_equal(h.resp, "6");
    wsc_send_text(sio, "5");
    /* The namespace asked for over polling is answered on the WebSocket,
     * then seed 002's greeting. */
    p = expect_packet(sio, "40");
    json_t *ok = json_loads(p + 2, 0, NULL);
    assert_non_null(ok);
    assert_int_equal(strlen(str(ok, "sid")), 20);
    json_decref(ok);
    free(p);
    p = expect_packet(sio, "42");
    assert_non_null(strstr(p, "42[\"system\",\"hello guest-"));
    free(p);
    /* The session is the WebSocket's now: polling with it is over. */
    snprintf(q, sizeof(q), "?EIO=4&transport=polling&t=a3&sid=%s", sid);
    assert_int_equal(request("GET", q, NULL, NULL), 400);
    assert_non_null(strstr(resp, "Session ID unknown"));

    /* palaver -> seed 002: a chat message event with its sender. */
    say(pal, NULL, "hello <b>socket.io</b>");
    p = expect_packet(sio, "42[\"chat message\"");
    json_t *ev = json_loads(p + 2, 0, NULL);
    free(p);
    assert_non_null(ev);
    json_t *m = json_array_get(ev, 1);
    assert_string_equal(str(m, "msg"), "hello <b>socket.io</b>");
    assert_string_equal(str(m, "username"), "Ann");
    json_decref(ev);

    /* seed 002 -> palaver, with an ack: the emit's callback gets its seq. */
    wsc_send_text(sio,
                  "427[\"chat message\",{\"username\":\"spoofed\",\"msg\":\"from socket.io\"}]");
    p = expect_packet(sio, "437");
    json_t *ack = json_loads(p + 3, 0, NULL);
    free(p);
    assert_true(json_is_array(ack));
    long long seq = num(json_array_get(ack, 0), "seq");
    assert_true(seq > 0);
    json_decref(ack);
    json_t *got = wsc_expect(pal, "message", T);
    assert_non_null(got);
    assert_string_equal(str(got, "text"), "from socket.io");
    assert_int_equal(num(got, "seq"), seq);
    assert_string_not_equal(str(json_object_get(got, "from"), "name"), "spoofed");
    json_decref(got);

    /* Refusals in its words: an unknown event (with an ack: its callback
     * gets the error), a namespace palaverd does not serve. */
    wsc_send_text(sio, "429[\"typing\",true]");
    p = expect_packet(sio, "439");
    assert_non_null(strstr(p, "\"error\":\"bad-json\""));
    free(p);
    wsc_send_text(sio, "42[\"chat message\",42]");
    p = expect_packet(sio, "42[\"system\",\"palaver: ");
    free(p);
    assert_true(srv_log_wait(&server, "refused a packet from", T));
    wsc_send_text(sio, "40/admin,");
    p = expect_packet(sio, "44/admin,");
    assert_string_equal(p, "44/admin,{\"message\":\"Invalid namespace\"}");
    free(p);

    /* Engine.IO's heartbeat: the server pings ("2") every pingInterval
     * whatever the traffic; expect_packet answers each "3". */
    int64_t t0 = mono_ms();
    p = expect_packet(sio, "2");
    assert_string_equal(p, "2");
    free(p);
    assert_true(mono_ms() - t0 < 3 * PING_MS + 1500);

    char metrics[16384];
    assert_int_equal(http_get(server.port, "/metrics", metrics, sizeof(metrics)), 200);
    assert_non_null(strstr(metrics, "palaver_dialect_connections{dialect=\"socketio\"} 1\n"));
    assert_non_null(strstr(metrics, "palaver_dialect_messages_in_total{dialect=\"socketio\"} 1\n"));

    /* Socket.IO's goodbye (41) closes the WebSocket normally. */
    wsc_send_text(sio, "41");
    assert_int_equal(wsc_wait_close(sio, T), 1000);
    wsc_free(sio);
    wsc_free(pal);
}

/* A client that opens the WebSocket at once (transports: ["websocket"],
 * as the bench does) gets its open packet there and connects with 40. */
static void test_websocket_only(void **state)
{
    (void)state;
    struct wsc *c = open_sio("?EIO=4&transport=websocket", 101);
    char *p = expect_packet(c, "0{");
    assert_non_null(strstr(p, "\"sid\":"));
    free(p);
    /* Nothing but the open packet before the namespace is connected. */
    wsc_send_text(c, "42[\"chat message\",\"too early\"]");
    p = expect_packet(c, "42[\"system\"");
    assert_non_null(strstr(p, "connect to the namespace first"));
    free(p);
    wsc_send_text(c, "40{\"token\":\"ignored\"}");
    free(expect_packet(c, "40{\"sid\""));
    free(expect_packet(c, "42[\"system\",\"hello "));
    wsc_free(c);
    /* Other Engine.IO versions, a sid nobody has, binary packets. */
    wsc_free(open_sio("?EIO=3&transport=websocket", 400));
    wsc_free(open_sio("?EIO=4&transport=websocket&sid=AAAAAAAAAAAAAAAAAAAA", 400));
    assert_true(srv_log_has(&server, "unknown or ended Socket.IO session"));
}

static void test_polling_bounds(void **state)
{
    (void)state;
    char sid[32], q[256];
    /* Versions and transports palaverd does not speak. */
    assert_int_equal(request("GET", "?EIO=3&transport=polling", NULL, NULL), 400);
    assert_non_null(strstr(resp, "Unsupported protocol version"));
    assert_int_equal(request("GET", "?EIO=4&transport=flashsocket", NULL, NULL), 400);
    assert_int_equal(request("POST", "?EIO=4&transport=polling", NULL, "40"), 400);
    /* Another site's page may not use a visitor's browser here. */
    assert_int_equal(
        request("GET", "?EIO=4&transport=polling", "Origin: http://evil.example\r\n", NULL), 403);
    assert_true(srv_log_wait(&server, "refused Socket.IO request from", T));
    assert_int_equal(request("GET", "?EIO=4&transport=polling&sid=nonexistent", NULL, NULL), 400);
    assert_non_null(strstr(resp, "Session ID unknown"));

    /* One GET at a time: a second ends the session. Whichever of two
     * overlapping GETs comes second is refused, the held one answered
     * "1" (ended). They overlap unless one came a whole PING_MS after the
     * other (then both are answered "2": try again). */
    handshake(sid);
    snprintf(q, sizeof(q), "?EIO=4&transport=polling&t=c&sid=%s", sid);
    bool overlapped = false;
    for (int i = 0; i < 10 && !overlapped; i++) {
        struct held h;
        hold(&h, sid);
        int mine = request("GET", q, NULL, NULL);
        char my_body[sizeof(resp)];
        snprintf(my_body, sizeof(my_body), "%s", resp);
        pthread_join(h.t, NULL);
        if (mine == 200 && h.status == 200 && strcmp(my_body, "2") == 0 && strcmp(h.resp, "2") == 0)
            continue;
        overlapped = true;
        bool mine_refused = mine == 400;
        assert_int_equal(mine_refused ? h.status : mine, 200);
        assert_string_equal(mine_refused ? h.resp : my_body, "1");
        assert_non_null(strstr(mine_refused ? my_body : h.resp, "overlapping GET"));
    }
    assert_true(overlapped);
    assert_true(srv_log_wait(&server, "a second GET while one was held", T));
    assert_int_equal(request("GET", q, NULL, NULL), 400); /* ended */

    /* Events go over the WebSocket: one POSTed over polling ends it. */
    handshake(sid);
    snprintf(q, sizeof(q), "?EIO=4&transport=polling&t=d&sid=%s", sid);
    assert_int_equal(request("POST", q, NULL, "42[\"chat message\",\"x\"]"), 400);
    assert_true(srv_log_wait(&server, "events go over the WebSocket", T));
    assert_int_equal(request("GET", q, NULL, NULL), 400);

    /* A ping over polling is answered; an unknown namespace refused; a
     * session that never upgrades is refused with CONNECT_ERROR after
     * 3 pingIntervals, and ends. */
    handshake(sid);
    snprintf(q, sizeof(q), "?EIO=4&transport=polling&t=e&sid=%s", sid);
    assert_int_equal(request("POST", q, NULL,
                             "40\x1e"
                             "40/admin,\x1e"
                             "2"),
                     200);
    assert_int_equal(request("GET", q, NULL, NULL), 200);
    assert_string_equal(resp, "44/admin,{\"message\":\"Invalid namespace\"}\x1e"
                              "3");
    int64_t t0 = mono_ms();
    for (int i = 0; i < 10; i++) {
        assert_int_equal(request("GET", q, NULL, NULL), 200);
        if (resp[0] != '2')
            break;
        assert_int_equal(request("POST", q, NULL, "3"), 200); /* the pong io() sends */
    }
    assert_non_null(strstr(resp, "44{\"message\":\"palaver needs WebSockets"));
    assert_true(mono_ms() - t0 >= 2 * PING_MS);
    assert_true(srv_log_wait(&server, "not upgraded to a WebSocket within", T));
    assert_int_equal(request("GET", q, NULL, NULL), 400);

    /* Sessions per address: --max-per-ip 4. */
    char s[4][32];
    for (int i = 0; i < 4; i++)
        handshake(s[i]);
    assert_int_equal(request("GET", "?EIO=4&transport=polling", NULL, NULL), 503);
    assert_true(srv_log_wait(&server, "as many polling sessions from that address", T));
    /* A POST over --max-message is refused before it is read. */
    snprintf(q, sizeof(q), "?EIO=4&transport=polling&t=f&sid=%s", s[0]);
    char *big = malloc(70000);
    memset(big, '3', 69999);
    big[69999] = '\0';
    assert_int_equal(request("POST", q, NULL, big), 413);
    free(big);
    /* Closing them frees the address's share. */
    for (int i = 0; i < 4; i++) {
        snprintf(q, sizeof(q), "?EIO=4&transport=polling&t=g&sid=%s", s[i]);
        assert_int_equal(request("POST", q, NULL, "1"), 200);
        assert_int_equal(request("GET", q, NULL, NULL), 200); /* its last: "1" */
        assert_string_equal(resp, "1");
    }
    handshake(sid);
}

/* Polling sessions at once, all addresses: half the HTTP workers (a held
 * GET takes one; the rest serve pages and the API). */
static void test_sessions_leave_workers_for_pages(void **state)
{
    (void)state;
    assert_int_equal(srv_stop(&server), 0);
    char ping[16];
    snprintf(ping, sizeof(ping), "%d", PING_MS);
    const char *args[] = {
        "--http-workers", "4", "--max-per-ip", "0", "--ping-interval", ping, NULL};
    assert_int_equal(srv_start(&server, args), 0);
    char sid[2][32];
    handshake(sid[0]);
    handshake(sid[1]);
    assert_int_equal(request("GET", "?EIO=4&transport=polling", NULL, NULL), 503);
    assert_true(srv_log_wait(&server, "every polling session in use (2)", T));
    /* Both sessions' GETs held: the page is still served. */
    struct held h[2];
    hold(&h[0], sid[0]);
    hold(&h[1], sid[1]);
    char out[256];
    assert_int_equal(http_get(server.port, "/", out, sizeof(out)), 200);
    for (int i = 0; i < 2; i++) {
        pthread_join(h[i].t, NULL);
        assert_int_equal(h[i].status, 200);
        assert_string_equal(h[i].resp, "2"); /* the ping after --ping-interval */
    }
}

/* One address gets at most half the polling sessions, whatever
 * --max-per-ip says: 8 workers, 4 sessions, 2 from this address. */
static void test_one_address_gets_half(void **state)
{
    (void)state;
    assert_int_equal(srv_stop(&server), 0);
    char ping[16];
    snprintf(ping, sizeof(ping), "%d", PING_MS);
    const char *args[] = {
        "--http-workers", "8", "--max-per-ip", "32", "--ping-interval", ping, NULL};
    assert_int_equal(srv_start(&server, args), 0);
    char sid[2][32];
    handshake(sid[0]);
    handshake(sid[1]);
    assert_int_equal(request("GET", "?EIO=4&transport=polling", NULL, NULL), 503);
    assert_true(srv_log_wait(
        &server, "from that address as allowed (--max-per-ip, half the sessions) (2)", T));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_client_library),
        cmocka_unit_test(test_polling_then_upgrade),
        cmocka_unit_test(test_websocket_only),
        cmocka_unit_test(test_polling_bounds),
        cmocka_unit_test(test_sessions_leave_workers_for_pages),
        cmocka_unit_test(test_one_address_gets_half),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
