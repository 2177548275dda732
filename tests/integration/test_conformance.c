/* Integration: RFC 6455 conformance, case by case, after the Autobahn|
 * Testsuite case list (sections 1-7, 9.1, 9.2; ../shared/autobahn). The
 * frames are built and sent here; no suite code is used.
 *
 * Autobahn judges an echo server. palaver is a broker, so every case is
 * judged in fanout terms, with a bystander client connected throughout:
 *  - a valid text message reaches the bystander intact (and the sender
 *    gets its ack). Payloads are sent as the "text" of a chat message, so
 *    the frames carry JSON around them; the properties a case tests (frame
 *    lengths, fragment boundaries, UTF-8 validity, chops) are kept;
 *  - a ping is answered with a pong carrying the same payload;
 *  - a violation closes the sender alone with the case's close code, and
 *    the bystander stays connected and keeps receiving (checked by a probe
 *    message after every closing case).
 * Where palaver's answer differs from an echo server's by design (binary
 * messages, size limits, empty or NUL text), the expected answer is the
 * one docs/refusals.md's table documents, and the
 * case says so.
 *
 * When ../shared/autobahn/autobahn-cases.json is present the test also
 * checks that every case id in it was run. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "pvtest.h"

#include "conformance_utf8.h"

#define T 10000
#define MAX_MESSAGE 300000 /* 256 KiB messages (7.1.6, 9.1.2) fit, 1 MiB does not */

static struct srv server;
static struct wsc *bystander;
static char *ran[400]; /* ids of the cases run */
static int n_ran, n_passed;

/* ---- helpers ---- */

static int setup(void **state)
{
    (void)state;
    char mm[16];
    snprintf(mm, sizeof(mm), "%d", MAX_MESSAGE);
    const char *args[] = {"--max-message", mm, "--max-text", mm, NULL};
    if (srv_start(&server, args) != 0)
        return -1;
    bystander = wsc_open(server.port, NULL);
    return bystander && bystander->status == 101 && wsc_join(bystander, NULL, NULL) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    wsc_free(bystander);
    for (int i = 0; i < n_ran; i++)
        free(ran[i]);
    return srv_stop(&server) == 0 ? 0 : -1;
}

static struct wsc *sender(void)
{
    struct wsc *c = wsc_open(server.port, NULL);
    assert_non_null(c);
    assert_int_equal(c->status, 101);
    assert_int_equal(wsc_join(c, NULL, NULL), 0);
    return c;
}

static void begin(const char *id)
{
    assert_true(n_ran < (int)(sizeof(ran) / sizeof(ran[0])));
    ran[n_ran++] = strdup(id);
    if (getenv("PVTEST_TRACE"))
        fprintf(stderr, "case %s\n", id);
}

static size_t unhex(const char *hex, char *out)
{
    size_t n = 0;
    for (; hex[0] && hex[1]; hex += 2) {
        unsigned v;
        sscanf(hex, "%2x", &v);
        out[n++] = (char)v;
    }
    return n;
}

/* A chat message whose text is payload[0..len); *prefix is where the text
 * starts. Bytes below 0x20, '"' and '\' are escaped; everything else,
 * invalid UTF-8 included, is copied as is. */
static char *wrap(const char *payload, size_t len, size_t *out_len, size_t *prefix)
{
    static const char head[] = "{\"type\":\"message\",\"text\":\"";
    char *m = malloc(sizeof(head) + len * 6 + 4);
    size_t n = strlen(head);
    memcpy(m, head, n);
    *prefix = n;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)payload[i];
        if (ch < 0x20 || ch == '"' || ch == '\\')
            n += (size_t)sprintf(m + n, "\\u%04x", ch);
        else
            m[n++] = (char)ch;
    }
    memcpy(m + n, "\"}", 2);
    *out_len = n + 2;
    return m;
}

/* A chat message of exactly `total` bytes (text padded with '*'). */
static char *wrap_exact(size_t total, char **text, size_t *text_len)
{
    size_t n, prefix;
    char *probe = wrap("", 0, &n, &prefix);
    free(probe);
    assert_true(total >= n);
    *text_len = total - n;
    *text = malloc(*text_len + 1);
    memset(*text, '*', *text_len);
    (*text)[*text_len] = '\0';
    return wrap(*text, *text_len, &n, &prefix);
}

/* Sends one frame, in chops (0: one write). */
static void frame(struct wsc *c, unsigned bits, const void *data, size_t len, size_t chop)
{
    unsigned char *f;
    size_t n = wsc_encode((uint8_t)bits, data, len, &f);
    wsc_send_chopped(c, f, n, chop); /* may fail once the server has closed: fine */
    free(f);
}

/* Next control frame (text frames -- acks, notices -- are skipped). */
static int next_control(struct wsc *c, struct wsc_frame *f, int timeout_ms)
{
    int64_t deadline = mono_ms() + timeout_ms;
    for (;;) {
        int64_t left = deadline - mono_ms();
        if (left <= 0)
            return 0;
        int r = wsc_recv(c, f, (int)left);
        if (r != 1)
            return r;
        if (f->opcode & 0x8)
            return 1;
        wsc_frame_free(f);
    }
}

static void expect_pong(struct wsc *c, const char *payload, size_t len)
{
    struct wsc_frame f;
    assert_int_equal(next_control(c, &f, T), 1);
    assert_int_equal(f.opcode, 0xA);
    assert_int_equal(f.len, len);
    if (len)
        assert_memory_equal(f.data, payload, len);
    wsc_frame_free(&f);
}

/* The bystander's next chat message has exactly this text. Pings on the
 * way are answered, as a browser does, so the bystander is never idle. */
static void bystander_gets(const char *text, size_t len)
{
    int64_t deadline = mono_ms() + T;
    for (;;) {
        struct wsc_frame f;
        assert_true(mono_ms() < deadline);
        assert_int_equal(wsc_recv(bystander, &f, T), 1);
        if (f.opcode == 9) {
            wsc_send(bystander, true, 0xA, f.data, f.len);
            wsc_frame_free(&f);
            continue;
        }
        assert_int_equal(f.opcode, 1); /* never a close: the bystander stays */
        json_t *j = json_loadb((char *)f.data, f.len, 0, NULL);
        wsc_frame_free(&f);
        assert_non_null(j);
        if (strcmp(json_string_value(json_object_get(j, "type")), "message") == 0) {
            json_t *t = json_object_get(j, "text");
            assert_int_equal(json_string_length(t), len);
            assert_memory_equal(json_string_value(t), text, len);
            json_decref(j);
            return;
        }
        json_decref(j);
    }
}

/* The message was relayed intact and acknowledged. */
static void expect_delivered(struct wsc *c, const char *text, size_t len)
{
    bystander_gets(text, len);
    json_t *ack = wsc_expect(c, "ack", T);
    assert_non_null(ack);
    json_decref(ack);
}

/* The sender got {"type":"error","code":code} and is still connected. */
static void expect_app_error(struct wsc *c, const char *code)
{
    json_t *e = wsc_expect(c, "error", T);
    assert_non_null(e);
    assert_string_equal(json_string_value(json_object_get(e, "code")), code);
    json_decref(e);
}

/* The others are unaffected: a fresh client's message reaches the
 * bystander. */
static void probe_others(void)
{
    static int n;
    char text[64];
    struct wsc *p = sender();
    snprintf(text, sizeof(text), "probe %d", ++n);
    assert_int_equal(wsc_send_chat(p, n, text, ""), 0);
    bystander_gets(text, strlen(text));
    wsc_free(p);
}

/* The sender alone was closed with `code`; it answers the close frame, as
 * RFC 6455 section 5.5.1 asks, and the server ends the TCP connection. The
 * bystander keeps receiving. */
static void expect_closed(struct wsc *c, int code)
{
    int got = wsc_wait_close(c, T);
    if (got != code)
        fprintf(stderr, "case %s: expected close %d, got %d\n", ran[n_ran - 1], code, got);
    assert_int_equal(got, code);
    char echo[2] = {(char)(code >> 8), (char)(code & 0xff)};
    wsc_send(c, true, 8, echo, 2); /* fails harmlessly if the server already closed */
    struct wsc_frame f;
    int r;
    while ((r = wsc_recv(c, &f, T)) == 1)
        wsc_frame_free(&f);
    assert_int_equal(r, -1); /* the server ended the connection */
    wsc_free(c);
    probe_others();
}

/* Nothing but text arrives for ms (the case is still in progress). */
static void expect_quiet(struct wsc *c, int ms)
{
    struct wsc_frame f;
    assert_int_equal(next_control(c, &f, ms), 0);
}

static void passed(void)
{
    n_passed++;
}

/* Sends the chat message m (of len bytes) as fragments cut at cuts[]
 * (offsets into m, ascending), each fragment in its own write, or all
 * fragments in one write when `one_write`. */
static void fragments(struct wsc *c, const char *m, size_t len, const size_t *cuts, size_t ncuts,
                      size_t chop)
{
    size_t start = 0;
    for (size_t i = 0; i <= ncuts; i++) {
        size_t end = i < ncuts ? cuts[i] : len;
        unsigned bits = (i == 0 ? 1 : 0) | (i == ncuts ? 0x80 : 0);
        frame(c, bits, m + start, end - start, chop);
        start = end;
    }
}

/* ---- 1: framing ---- */

static void test_1_framing(void **state)
{
    (void)state;
    static const size_t lens[] = {0, 125, 126, 127, 128, 65535, 65536, 65536};
    for (int i = 0; i < 8; i++) { /* 1.1.1 - 1.1.8: text frames of exact lengths */
        char id[16];
        snprintf(id, sizeof(id), "1.1.%d", i + 1);
        begin(id);
        struct wsc *c = sender();
        if (lens[i] == 0) {
            /* An empty text frame is valid framing, but not a chat message. */
            frame(c, 0x81, "", 0, 0);
            expect_app_error(c, "bad-json");
        } else {
            char *text;
            size_t tlen;
            char *m = wrap_exact(lens[i], &text, &tlen);
            frame(c, 0x81, m, lens[i], i == 7 ? 997 : 0);
            expect_delivered(c, text, tlen);
            free(m);
            free(text);
        }
        wsc_free(c);
        passed();
    }
    for (int i = 0; i < 8; i++) { /* 1.2.x: binary messages are refused with 1003 */
        char id[16], *bin = calloc(1, 65536);
        snprintf(id, sizeof(id), "1.2.%d", i + 1);
        begin(id);
        struct wsc *c = sender();
        frame(c, 0x82, bin, lens[i], i == 7 ? 997 : 0);
        expect_closed(c, 1003);
        free(bin);
        passed();
    }
}

/* ---- 2: pings and pongs ---- */

static void test_2_ping_pong(void **state)
{
    (void)state;
    char bin[126];
    for (int i = 0; i < 126; i++)
        bin[i] = (char)(0xfe - i);
    struct {
        const char *id;
        const char *payload;
        size_t len;
        size_t chop;
    } pings[] = {
        {"2.1", "", 0, 0},
        {"2.2", "Hello, world!", 13, 0},
        {"2.3", "\x00\xff\xfe\xfd\xfc\xfb\x00\xff", 8, 0},
        {"2.4", bin, 125, 0},
        {"2.6", bin, 125, 1},
    };
    for (size_t i = 0; i < sizeof(pings) / sizeof(pings[0]); i++) {
        begin(pings[i].id);
        struct wsc *c = sender();
        frame(c, 0x89, pings[i].payload, pings[i].len, pings[i].chop);
        expect_pong(c, pings[i].payload, pings[i].len);
        wsc_free(c);
        passed();
    }

    begin("2.5"); /* a control frame over 125 bytes */
    struct wsc *c = sender();
    frame(c, 0x89, bin, 126, 0);
    expect_closed(c, 1002);
    passed();

    for (int k = 0; k < 2; k++) { /* 2.7, 2.8: unsolicited pongs get nothing */
        begin(k ? "2.8" : "2.7");
        c = sender();
        frame(c, 0x8A, "unsolicited", k ? 11 : 0, 0);
        frame(c, 0x89, "marker", 6, 0);
        expect_pong(c, "marker", 6); /* the first control frame back */
        wsc_free(c);
        passed();
    }

    begin("2.9");
    c = sender();
    frame(c, 0x8A, "unsolicited pong payload", 24, 0);
    frame(c, 0x89, "ping payload", 12, 0);
    expect_pong(c, "ping payload", 12);
    wsc_free(c);
    passed();

    for (int k = 0; k < 2; k++) { /* 2.10, 2.11: ten pings, ten pongs in order */
        begin(k ? "2.11" : "2.10");
        c = sender();
        for (int i = 0; i < 10; i++) {
            char p[32];
            int n = snprintf(p, sizeof(p), "payload-%d", i);
            frame(c, 0x89, p, (size_t)n, k ? 1 : 0);
        }
        for (int i = 0; i < 10; i++) {
            char p[32];
            int n = snprintf(p, sizeof(p), "payload-%d", i);
            expect_pong(c, p, (size_t)n);
        }
        wsc_free(c);
        passed();
    }
}

/* ---- 3, 4: reserved bits and opcodes ---- */

/* A valid message first (it is relayed), then the bad frame and a ping:
 * the sender is closed with 1002 and gets no pong. */
static void bad_after_good(const char *id, unsigned bits, const char *payload, size_t chop)
{
    begin(id);
    struct wsc *c = sender();
    char text[32];
    snprintf(text, sizeof(text), "before %s", id);
    size_t mlen, prefix;
    char *m = wrap(text, strlen(text), &mlen, &prefix);
    frame(c, 0x81, m, mlen, chop);
    free(m);
    frame(c, bits, payload, strlen(payload), chop);
    frame(c, 0x89, "", 0, chop);
    bystander_gets(text, strlen(text));
    struct wsc_frame f;
    while (next_control(c, &f, T) == 1) { /* no pong before the close */
        assert_int_not_equal(f.opcode, 0xA);
        int op = f.opcode;
        wsc_frame_free(&f);
        if (op == 8)
            break;
    }
    expect_closed(c, 1002);
    passed();
}

static void bad_alone(const char *id, unsigned bits, const char *payload)
{
    begin(id);
    struct wsc *c = sender();
    frame(c, bits, payload, strlen(payload), 0);
    expect_closed(c, 1002);
    passed();
}

static void test_3_4_reserved_bits_and_opcodes(void **state)
{
    (void)state;
    bad_alone("3.1", 0x80 | 0x10 | 0x1, "{\"type\":\"message\",\"text\":\"rsv1\"}");
    bad_after_good("3.2", 0x80 | 0x20 | 0x1, "{}", 0);
    bad_after_good("3.3", 0x80 | 0x30 | 0x1, "{}", 1);
    bad_after_good("3.4", 0x80 | 0x40 | 0x1, "{}", 1);
    bad_alone("3.5", 0x80 | 0x50 | 0x2, "\x01\x02");
    bad_alone("3.6", 0x80 | 0x60 | 0x9, "");
    bad_alone("3.7", 0x80 | 0x70 | 0x8, "");

    bad_alone("4.1.1", 0x83, "");
    bad_alone("4.1.2", 0x84, "reserved");
    bad_after_good("4.1.3", 0x85, "", 0);
    bad_after_good("4.1.4", 0x86, "reserved", 0);
    bad_after_good("4.1.5", 0x87, "reserved", 0);
    bad_alone("4.2.1", 0x8B, "");
    bad_alone("4.2.2", 0x8C, "reserved");
    bad_after_good("4.2.3", 0x8D, "", 0);
    bad_after_good("4.2.4", 0x8E, "reserved", 0);
    bad_after_good("4.2.5", 0x8F, "reserved", 0);
}

/* ---- 5: fragmentation ---- */

static void test_5_fragmentation(void **state)
{
    (void)state;
    struct wsc *c;
    size_t mlen, prefix;

    begin("5.1"); /* fragmented ping */
    c = sender();
    frame(c, 0x09, "frag", 4, 0);
    frame(c, 0x80, "ment", 4, 0);
    expect_closed(c, 1002);
    passed();

    begin("5.2"); /* fragmented pong */
    c = sender();
    frame(c, 0x0A, "frag", 4, 0);
    frame(c, 0x80, "ment", 4, 0);
    expect_closed(c, 1002);
    passed();

    for (int k = 0; k < 3; k++) { /* 5.3 - 5.5: two fragments; one write, per frame, octets */
        static const char *ids[] = {"5.3", "5.4", "5.5"};
        begin(ids[k]);
        c = sender();
        char *m = wrap("fragment1fragment2", 18, &mlen, &prefix);
        size_t cut = prefix + 9;
        if (k == 0) { /* both frames in one write */
            unsigned char *a, *b;
            size_t na = wsc_encode(0x01, m, cut, &a),
                   nb = wsc_encode(0x80, m + cut, mlen - cut, &b);
            unsigned char *both = malloc(na + nb);
            memcpy(both, a, na);
            memcpy(both + na, b, nb);
            wsc_send_raw(c, both, na + nb);
            free(a);
            free(b);
            free(both);
        } else {
            fragments(c, m, mlen, &cut, 1, k == 2 ? 1 : 0);
        }
        expect_delivered(c, "fragment1fragment2", 18);
        free(m);
        wsc_free(c);
        passed();
    }

    for (int k = 0; k < 3; k++) { /* 5.6 - 5.8: a ping between the fragments */
        static const char *ids[] = {"5.6", "5.7", "5.8"};
        begin(ids[k]);
        c = sender();
        char *m = wrap("fragment1fragment2", 18, &mlen, &prefix);
        size_t cut = prefix + 9, chop = k == 2 ? 1 : 0;
        frame(c, 0x01, m, cut, chop);
        frame(c, 0x89, "pongme!", 7, chop);
        frame(c, 0x80, m + cut, mlen - cut, chop);
        expect_pong(c, "pongme!", 7);
        expect_delivered(c, "fragment1fragment2", 18);
        free(m);
        wsc_free(c);
        passed();
    }

    for (int k = 0; k < 6; k++) { /* 5.9 - 5.14: continuation with nothing to continue */
        char id[16];
        snprintf(id, sizeof(id), "5.%d", 9 + k);
        begin(id);
        c = sender();
        size_t chop = (k % 3 == 2) ? 1 : 0;
        frame(c, k < 3 ? 0x80 : 0x00, "non-continuation", 16, chop);
        frame(c, 0x81, "{}", 2, chop);
        expect_closed(c, 1002);
        passed();
    }

    begin("5.15"); /* a good fragmented message, then a stray continuation */
    c = sender();
    {
        char *m = wrap("fragment1fragment2", 18, &mlen, &prefix);
        size_t cut = prefix + 9;
        fragments(c, m, mlen, &cut, 1, 0);
        frame(c, 0x00, "fragment3", 9, 0);
        frame(c, 0x81, "{}", 2, 0);
        bystander_gets("fragment1fragment2", 18);
        expect_closed(c, 1002);
        free(m);
    }
    passed();

    for (int k = 0; k < 2; k++) { /* 5.16, 5.17: the stray continuation comes first */
        begin(k ? "5.17" : "5.16");
        c = sender();
        frame(c, k ? 0x80 : 0x00, "fragment1", 9, 0);
        frame(c, 0x01, "fragment2", 9, 0);
        frame(c, 0x80, "fragment3", 9, 0);
        expect_closed(c, 1002);
        passed();
    }

    begin("5.18"); /* both fragments with opcode text */
    c = sender();
    frame(c, 0x01, "fragment1", 9, 0);
    frame(c, 0x81, "fragment2", 9, 0);
    expect_closed(c, 1002);
    passed();

    for (int k = 0; k < 2; k++) { /* 5.19, 5.20: pings answered mid-message */
        begin(k ? "5.20" : "5.19");
        c = sender();
        const char *text = "fragment1fragment2fragment3fragment4fragment5";
        char *m = wrap(text, strlen(text), &mlen, &prefix);
        size_t cuts[4] = {prefix + 9, prefix + 18, prefix + 27, prefix + 36};
        frame(c, 0x01, m, cuts[0], 0);
        frame(c, 0x00, m + cuts[0], cuts[1] - cuts[0], 0);
        frame(c, 0x89, "pongme 1!", 9, 0);
        expect_pong(c, "pongme 1!", 9); /* before the message is complete */
        usleep(k ? 200000 : 1000000);   /* the case's pause (1 s; shortened for 5.20) */
        frame(c, 0x00, m + cuts[1], cuts[2] - cuts[1], 0);
        frame(c, 0x00, m + cuts[2], cuts[3] - cuts[2], 0);
        frame(c, 0x89, "pongme 2!", 9, 0);
        frame(c, 0x80, m + cuts[3], mlen - cuts[3], 0);
        expect_pong(c, "pongme 2!", 9);
        expect_delivered(c, text, strlen(text));
        free(m);
        wsc_free(c);
        passed();
    }
}

/* ---- 6: UTF-8 ---- */

static void test_6_utf8(void **state)
{
    (void)state;
    struct wsc *c;
    size_t mlen, prefix;

    begin("6.1.1"); /* empty text frame: valid, but not a chat message */
    c = sender();
    frame(c, 0x81, "", 0, 0);
    expect_app_error(c, "bad-json");
    wsc_free(c);
    passed();

    begin("6.1.2"); /* three empty fragments: the same empty message */
    c = sender();
    frame(c, 0x01, "", 0, 0);
    frame(c, 0x00, "", 0, 0);
    frame(c, 0x80, "", 0, 0);
    expect_app_error(c, "bad-json");
    wsc_free(c);
    passed();

    begin("6.1.3"); /* empty first and last fragments around the message */
    c = sender();
    {
        char *m = wrap("middle frame payload", 20, &mlen, &prefix);
        frame(c, 0x01, "", 0, 0);
        frame(c, 0x00, m, mlen, 0);
        frame(c, 0x80, "", 0, 0);
        expect_delivered(c, "middle frame payload", 20);
        free(m);
    }
    wsc_free(c);
    passed();

    /* 6.2: valid UTF-8, whole, cut on a code point, cut in 1-octet frames. */
    static const char hello[] =
        "Hello-\xc2\xb5@\xc3\x9f\xc3\xb6\xc3\xa4\xc3\xbc\xc3\xa0\xc3\xa1-UTF-8!!";
    static const char kosme[] = "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5";
    for (int k = 0; k < 4; k++) {
        static const char *ids[] = {"6.2.1", "6.2.2", "6.2.3", "6.2.4"};
        const char *text = k == 3 ? kosme : hello;
        begin(ids[k]);
        c = sender();
        char *m = wrap(text, strlen(text), &mlen, &prefix);
        if (k == 0) {
            frame(c, 0x81, m, mlen, 0);
        } else if (k == 1) {
            size_t cut = prefix + 15; /* after "Hello-µ@ßöä" */
            fragments(c, m, mlen, &cut, 1, 0);
        } else {
            size_t *cuts = malloc(mlen * sizeof(*cuts));
            for (size_t i = 0; i + 1 < mlen; i++)
                cuts[i] = i + 1;
            fragments(c, m, mlen, cuts, mlen - 1, 0);
            free(cuts);
        }
        expect_delivered(c, text, strlen(text));
        free(m);
        wsc_free(c);
        passed();
    }

    /* 6.3: invalid UTF-8, whole and in 1-octet frames: 1007. */
    static const char bad[] = "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80"
                              "edited";
    for (int k = 0; k < 2; k++) {
        begin(k ? "6.3.2" : "6.3.1");
        c = sender();
        size_t n = strlen(bad);
        if (k == 0) {
            frame(c, 0x81, bad, n, 0);
        } else {
            for (size_t i = 0; i < n; i++)
                frame(c, (i == 0 ? 0x01 : 0x00) | (i + 1 == n ? 0x80 : 0), bad + i, 1, 0);
        }
        expect_closed(c, 1007);
        passed();
    }

    /* 6.4: fail fast. 6.4.1/6.4.2 in three frames: the close comes right
     * after the frame that makes the text invalid, before the third is
     * sent. 6.4.3/6.4.4 in three chops of one frame: CivetWeb reads a
     * whole frame before palaver sees it, so the close comes when the
     * frame is complete (6.4.3: after the third chop; 6.4.4's frame is
     * complete after the second). */
    static const struct {
        const char *id;
        const char *p1, *p2, *p3;
    } ff[] = {
        {"6.4.1", "cebae1bdb9cf83cebcceb5", "f4908080", "656469746564"},
        {"6.4.2", "cebae1bdb9cf83cebcceb5f4", "90", "8080656469746564"},
        {"6.4.3", "cebae1bdb9cf83cebcceb5", "f4908080", "656469746564"},
        {"6.4.4", "cebae1bdb9cf83cebcceb5f4", "90", ""},
    };
    for (int k = 0; k < 4; k++) {
        char p1[32], p2[32], p3[32];
        size_t n1 = unhex(ff[k].p1, p1), n2 = unhex(ff[k].p2, p2), n3 = unhex(ff[k].p3, p3);
        begin(ff[k].id);
        c = sender();
        if (k < 2) {
            frame(c, 0x01, p1, n1, 0);
            expect_quiet(c, 300);
            frame(c, 0x00, p2, n2, 0);
            assert_int_equal(wsc_wait_close(c, T), 1007); /* before the third frame */
            frame(c, 0x80, p3, n3, 0);
        } else {
            char all[64];
            memcpy(all, p1, n1);
            memcpy(all + n1, p2, n2);
            memcpy(all + n1 + n2, p3, n3);
            unsigned char *f;
            size_t nf = wsc_encode(0x81, all, n1 + n2 + n3, &f);
            size_t h = nf - (n1 + n2 + n3);
            wsc_send_raw(c, f, h + n1);
            expect_quiet(c, 300);
            wsc_send_raw(c, f + h + n1, n2);
            if (n3) {
                expect_quiet(c, 300); /* the frame is not complete yet */
                wsc_send_raw(c, f + h + n1 + n2, n3);
            }
            free(f);
        }
        expect_closed(c, 1007);
        passed();
    }

    /* 6.5 - 6.23: one frame each. Valid text is relayed intact; invalid
     * closes the sender with 1007. U+0000 (6.7.1) is valid UTF-8 but not
     * chat text: JSON's "\u0000" is refused, the sender gets bad-json. A
     * text of one format character that shows nothing (6.23.1-3: U+FFF9,
     * U+FFFA, U+FFFB, the interlinear annotation controls) is an empty
     * chat message: empty-text (protocol.md). */
    for (size_t i = 0; i < sizeof(utf8_cases) / sizeof(utf8_cases[0]); i++) {
        char p[256];
        size_t n = unhex(utf8_cases[i].hex, p);
        begin(utf8_cases[i].id);
        c = sender();
        char *m = wrap(p, n, &mlen, &prefix);
        frame(c, 0x81, m, mlen, 0);
        free(m);
        if (!utf8_cases[i].valid) {
            expect_closed(c, 1007);
        } else if (memchr(p, 0, n)) {
            expect_app_error(c, "bad-json");
            wsc_free(c);
        } else if (n == 3 && memcmp(p, "\xef\xbf", 2) == 0 && (unsigned char)p[2] >= 0xb9 &&
                   (unsigned char)p[2] <= 0xbb) {
            expect_app_error(c, "empty-text");
            wsc_free(c);
        } else {
            expect_delivered(c, p, n);
            wsc_free(c);
        }
        passed();
    }
}

/* ---- 7: close handling ---- */

static void close_case(const char *id, const char *payload, size_t len, int code)
{
    begin(id);
    struct wsc *c = sender();
    frame(c, 0x88, payload, len, 0);
    expect_closed(c, code);
    passed();
}

static void test_7_close(void **state)
{
    (void)state;
    struct wsc *c;
    size_t mlen, prefix;
    char *m;

    begin("7.1.1"); /* a message, then close: relayed, then a clean close */
    c = sender();
    m = wrap("Hello World!", 12, &mlen, &prefix);
    frame(c, 0x81, m, mlen, 0);
    frame(c, 0x88, "\x03\xe8", 2, 0);
    bystander_gets("Hello World!", 12);
    expect_closed(c, 1000);
    free(m);
    passed();

    begin("7.1.2"); /* two closes: the second is ignored */
    c = sender();
    frame(c, 0x88, "\x03\xe8", 2, 0);
    frame(c, 0x88, "\x03\xe8", 2, 0);
    expect_closed(c, 1000);
    passed();

    begin("7.1.3"); /* a ping after close: no pong */
    c = sender();
    frame(c, 0x88, "\x03\xe8", 2, 0);
    frame(c, 0x89, "x", 1, 0);
    {
        struct wsc_frame f;
        assert_int_equal(next_control(c, &f, T), 1);
        assert_int_equal(f.opcode, 8); /* the close answer, not a pong */
        wsc_frame_free(&f);
        assert_int_equal(c->close_code, 1000);
    }
    expect_closed(c, 1000);
    passed();

    begin("7.1.4"); /* text after close: not relayed (the probe is next) */
    c = sender();
    m = wrap("after close", 11, &mlen, &prefix);
    frame(c, 0x88, "\x03\xe8", 2, 0);
    frame(c, 0x81, m, mlen, 0);
    expect_closed(c, 1000); /* its probe must be the bystander's next message */
    free(m);
    passed();

    begin("7.1.5"); /* fragment, close, fragment: the message never completes */
    c = sender();
    m = wrap("fragment1fragment2", 18, &mlen, &prefix);
    frame(c, 0x01, m, prefix + 9, 0);
    frame(c, 0x88, "\x03\xe8", 2, 0);
    frame(c, 0x80, m + prefix + 9, mlen - prefix - 9, 0);
    expect_closed(c, 1000);
    free(m);
    passed();

    begin("7.1.6"); /* 256 KiB message, close, ping: relayed, clean close, no pong */
    c = sender();
    {
        size_t tlen = 256 * 1024;
        char *text = malloc(tlen);
        memset(text, 'B', tlen);
        m = wrap(text, tlen, &mlen, &prefix);
        frame(c, 0x81, m, mlen, 0);
        frame(c, 0x88, "\x03\xe8", 2, 0);
        frame(c, 0x89, "x", 1, 0);
        bystander_gets(text, tlen);
        expect_closed(c, 1000);
        free(m);
        free(text);
    }
    passed();

    close_case("7.3.1", "", 0, 1000);
    close_case("7.3.2", "\x03", 1, 1002);
    close_case("7.3.3", "\x03\xe8", 2, 1000);
    close_case("7.3.4",
               "\x03\xe8"
               "Hello World!",
               14, 1000);
    {
        char reason[130];
        reason[0] = 0x03;
        reason[1] = (char)0xe8;
        memset(reason + 2, '*', 124);
        close_case("7.3.5", reason, 125, 1000);
        /* 7.3.6: 126 bytes is over the control-frame limit. */
        close_case("7.3.6", reason, 126, 1002);
    }
    close_case("7.5.1",
               "\x03\xe8\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80"
               "edited",
               22, 1007);

    static const unsigned valid[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009,
                                     1010, 1011, 3000, 3999, 4000, 4999};
    for (int i = 0; i < 13; i++) { /* 7.7.x: valid codes are echoed */
        char id[16], p[2] = {(char)(valid[i] >> 8), (char)(valid[i] & 0xff)};
        snprintf(id, sizeof(id), "7.7.%d", i + 1);
        close_case(id, p, 2, (int)valid[i]);
    }
    static const unsigned invalid[] = {0, 999, 1004, 1005, 1006, 1016, 1100, 2000, 2999};
    for (int i = 0; i < 9; i++) { /* 7.9.x: invalid codes are a protocol error */
        char id[16], p[2] = {(char)(invalid[i] >> 8), (char)(invalid[i] & 0xff)};
        snprintf(id, sizeof(id), "7.9.%d", i + 1);
        close_case(id, p, 2, 1002);
    }
    /* 7.13.x: undefined by the spec; palaver treats them as invalid. */
    close_case("7.13.1", "\x13\x88", 2, 1002);
    close_case("7.13.2", "\xff\xff", 2, 1002);
}

/* ---- 9: limits ---- */

static void test_9_limits(void **state)
{
    (void)state;
    static const size_t kib[] = {64, 256, 1024, 4096, 8192, 16384};
    for (int i = 0; i < 6; i++) { /* 9.1.x: text of growing size */
        char id[16];
        size_t len = kib[i] * 1024;
        snprintf(id, sizeof(id), "9.1.%d", i + 1);
        begin(id);
        struct wsc *c = sender();
        char *text = malloc(len);
        memset(text, '*', len);
        size_t mlen, prefix;
        char *m = wrap(text, len, &mlen, &prefix);
        frame(c, 0x81, m, mlen, 0);
        if (mlen <= MAX_MESSAGE) {
            expect_delivered(c, text, len);
            wsc_free(c);
        } else {
            expect_closed(c, 1009); /* over --max-message */
        }
        free(m);
        free(text);
        passed();
    }
    for (int i = 0; i < 6; i++) { /* 9.2.x: binary of growing size: 1003 */
        char id[16];
        size_t len = kib[i] * 1024;
        snprintf(id, sizeof(id), "9.2.%d", i + 1);
        begin(id);
        struct wsc *c = sender();
        char *bin = calloc(1, len);
        frame(c, 0x82, bin, len, 0);
        /* Within --max-message the opcode is refused (1003); a frame over
         * it is refused at its header (1009), before its payload is read
         * into memory, whatever its opcode. */
        expect_closed(c, len <= MAX_MESSAGE ? 1003 : 1009);
        free(bin);
        passed();
    }
}

/* ---- coverage: every case id of the list was run ---- */

static void test_every_listed_case_ran(void **state)
{
    (void)state;
    /* After all of that the bystander is still here, and so is the broker. */
    probe_others();
    assert_int_equal(bystander->close_code, -1);

    json_error_t err;
    json_t *list = json_load_file(PVTEST_AUTOBAHN_CASES, 0, &err);
    if (!list) {
        fprintf(stderr, "conformance: %s not found, coverage check skipped\n",
                PVTEST_AUTOBAHN_CASES);
        skip();
    }
    json_t *cases = json_object_get(list, "cases");
    size_t i, missing = 0;
    json_t *cs;
    json_array_foreach(cases, i, cs)
    {
        const char *id = json_string_value(json_object_get(cs, "id"));
        bool found = false;
        for (int k = 0; k < n_ran && !found; k++)
            found = strcmp(ran[k], id) == 0;
        if (!found) {
            fprintf(stderr, "conformance: case %s was not run\n", id);
            missing++;
        }
    }
    fprintf(stderr, "conformance: %d cases run, %d passed; the list has %zu\n", n_ran, n_passed,
            json_array_size(cases));
    assert_int_equal(missing, 0);
    assert_int_equal(n_passed, (int)json_array_size(cases));
    json_decref(list);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_1_framing),
        cmocka_unit_test(test_2_ping_pong),
        cmocka_unit_test(test_3_4_reserved_bits_and_opcodes),
        cmocka_unit_test(test_5_fragmentation),
        cmocka_unit_test(test_6_utf8),
        cmocka_unit_test(test_7_close),
        cmocka_unit_test(test_9_limits),
        cmocka_unit_test(test_every_listed_case_ran),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
