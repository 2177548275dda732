/* Unit tests: JSON protocol decode/encode, names, keys (proto.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "palaver/frame.h"
#include "palaver/proto.h"

static void decode(const char *s, struct pv_inbound *in)
{
    pv_proto_decode(s, strlen(s), 20, in);
}

static void expect_invalid(const char *s, const char *code)
{
    struct pv_inbound in;
    decode(s, &in);
    assert_int_equal(in.type, PV_IN_INVALID);
    assert_string_equal(in.err_code, code);
    pv_inbound_release(&in);
}

static void test_decode_seed_message(void **state)
{
    (void)state;
    struct pv_inbound in;
    decode("{\"type\":\"message\",\"msgId\":3,\"text\":\"hi there\",\"clientKey\":\"x\","
           "\"date\":1700000000000}",
           &in);
    assert_int_equal(in.type, PV_IN_MESSAGE);
    assert_int_equal(json_integer_value(in.msg_id), 3);
    assert_int_equal(in.text_len, 8);
    assert_memory_equal(in.text, "hi there", 8);
    assert_true(json_integer_value(in.date) == 1700000000000LL);
    pv_inbound_release(&in);
}

/* The decoder runs on the workers and its result waits in the queue:
 * it keeps only the fields the protocol reads, whatever else came. */
static void test_decode_keeps_only_known_fields(void **state)
{
    (void)state;
    size_t cap = 40000, n = 0;
    char *m = malloc(cap);
    n += (size_t)snprintf(m + n, cap - n, "{\"type\":\"message\",\"msgId\":\"k\",\"text\":\"hi\"");
    for (int i = 0; i < 50; i++) /* unknown fields (2 values each), under PV_PROTO_MAX_VALUES */
        n += (size_t)snprintf(m + n, cap - n, ",\"u%d\":{}", i);
    n += (size_t)snprintf(m + n, cap - n, ",\"date\":5}");
    struct pv_inbound in;
    pv_proto_decode(m, n, 4096, &in);
    assert_int_equal(in.type, PV_IN_MESSAGE);
    assert_int_equal(json_object_size(in.root), 4); /* type, msgId, text, date */
    assert_null(json_object_get(in.root, "u7"));
    assert_string_equal(json_string_value(in.msg_id), "k");
    assert_memory_equal(in.text, "hi", 2);
    assert_int_equal(json_integer_value(in.date), 5);
    pv_inbound_release(&in);
    /* Not an object (an array of 10,000 {}): nothing kept at all. */
    n = 0;
    m[n++] = '[';
    for (int i = 0; i < 10000; i++)
        n += (size_t)snprintf(m + n, cap - n, "%s{}", i ? "," : "");
    m[n++] = ']';
    pv_proto_decode(m, n, 4096, &in);
    assert_int_equal(in.type, PV_IN_INVALID);
    assert_null(in.root);
    assert_null(in.msg_id);
    pv_inbound_release(&in);
    free(m);
}

/* Decodes m[0..n): "ok" or the error code. */
static const char *decode_code(const char *m, size_t n)
{
    static char code[32];
    struct pv_inbound in;
    pv_proto_decode(m, n, 4096, &in);
    snprintf(code, sizeof(code), "%s", in.type == PV_IN_INVALID ? in.err_code : "ok");
    pv_inbound_release(&in);
    return code;
}

/* Too costly to parse: refused by a scan, before any allocation. The
 * count is of values and members outside strings, so brackets, commas
 * and escaped quotes inside a text cost nothing. */
static void test_decode_too_complex(void **state)
{
    (void)state;
    char m[8192];
    size_t n;
    /* 1 (the object) + 2 commas = 3 values so far; add members up to the bound. */
    for (int extra = PV_PROTO_MAX_VALUES - 4; extra <= PV_PROTO_MAX_VALUES - 2; extra++) {
        n = (size_t)snprintf(m, sizeof(m), "{\"type\":\"message\",\"text\":\"x\"");
        for (int i = 0; i < extra; i++)
            n += (size_t)snprintf(m + n, sizeof(m) - n, ",\"u%d\":1", i);
        m[n++] = '}';
        /* 1 + 1 + extra tokens: at most PV_PROTO_MAX_VALUES passes. */
        bool over = 2 + extra > PV_PROTO_MAX_VALUES;
        assert_int_equal(pv_proto_too_complex(m, n), over);
        assert_string_equal(decode_code(m, n), over ? "too-complex" : "ok");
    }
    /* Nesting: PV_PROTO_MAX_DEPTH levels pass, one more does not. */
    for (int depth = PV_PROTO_MAX_DEPTH - 1; depth <= PV_PROTO_MAX_DEPTH; depth++) {
        n = (size_t)snprintf(m, sizeof(m), "{\"type\":\"message\",\"text\":\"x\",\"d\":");
        for (int i = 0; i < depth; i++)
            m[n++] = '[';
        for (int i = 0; i < depth; i++)
            m[n++] = ']';
        m[n++] = '}';
        bool over = depth + 1 > PV_PROTO_MAX_DEPTH;
        assert_string_equal(decode_code(m, n), over ? "too-complex" : "ok");
    }
    /* Structure inside a string is text: 3,000 commas and brackets, and an
     * escaped quote that does not end the string. */
    n = (size_t)snprintf(m, sizeof(m), "{\"type\":\"message\",\"text\":\"\\\"");
    for (int i = 0; i < 1000; i++)
        n += (size_t)snprintf(m + n, sizeof(m) - n, ",[{");
    n += (size_t)snprintf(m + n, sizeof(m) - n, "\"}");
    assert_false(pv_proto_too_complex(m, n));
    assert_string_equal(decode_code(m, n), "ok"); /* a 3,001-byte text */
}

static void test_decode_errors(void **state)
{
    (void)state;
    expect_invalid("not json", "bad-json");
    expect_invalid("[1,2]", "bad-json");
    expect_invalid("{\"type\":\"message\",\"type\":\"x\"}", "bad-json"); /* duplicate key */
    expect_invalid("{\"text\":\"no type\"}", "unknown-type");
    expect_invalid("{\"type\":\"dance\"}", "unknown-type");
    expect_invalid("{\"type\":\"message\"}", "bad-text");
    expect_invalid("{\"type\":\"message\",\"text\":42}", "bad-text");
    expect_invalid("{\"type\":\"message\",\"text\":\"\"}", "empty-text");
    expect_invalid("{\"type\":\"message\",\"text\":\" \\n\\t \"}", "empty-text");
    /* Invisible-only texts are empty too: NBSP, zero-width space and
     * joiner, word joiner, BOM, ideographic space, a Hangul filler, a
     * variation selector, a tag character (UTF-16 escapes in the JSON). */
    expect_invalid("{\"type\":\"message\",\"text\":\"\\u00a0\\u200b\\u200d\\u2060\\ufeff\"}",
                   "empty-text");
    expect_invalid("{\"type\":\"message\",\"text\":\"\\u3000\\u3164\\ufe0f\\udb40\\udc20 \"}",
                   "empty-text");
    expect_invalid("{\"type\":\"message\",\"text\":\"\xc2\xa0\xe2\x80\x8b\"}", "empty-text");
    /* msgId integers a JavaScript client cannot read exactly. */
    expect_invalid("{\"type\":\"message\",\"msgId\":9007199254740992,\"text\":\"x\"}", "bad-msgid");
    expect_invalid("{\"type\":\"message\",\"msgId\":-9007199254740992,\"text\":\"x\"}",
                   "bad-msgid");
    expect_invalid("{\"type\":\"message\",\"text\":\"123456789012345678901\"}", "text-too-long");
    expect_invalid("{\"type\":\"message\",\"text\":\"a\\u0000b\"}", "bad-json"); /* NUL */
    expect_invalid("{\"type\":\"message\",\"msgId\":{\"a\":1},\"text\":\"x\"}", "bad-msgid");
    expect_invalid("{\"type\":\"hello\",\"name\":7}", "bad-name");

    /* Visible text among invisible characters is a message; so is the
     * largest exact msgId. */
    struct pv_inbound ok;
    decode("{\"type\":\"message\",\"msgId\":9007199254740991,\"text\":\"\\u200bx\\u200b\"}", &ok);
    assert_int_equal(ok.type, PV_IN_MESSAGE);
    pv_inbound_release(&ok);
    decode("{\"type\":\"message\",\"text\":\"\\u00e9\"}", &ok); /* é */
    assert_int_equal(ok.type, PV_IN_MESSAGE);
    pv_inbound_release(&ok);

    /* The error keeps the msgId so the client can mark that message. */
    struct pv_inbound in;
    decode("{\"type\":\"message\",\"msgId\":\"m-1\",\"text\":\"\"}", &in);
    assert_string_equal(json_string_value(in.msg_id), "m-1");
    pv_inbound_release(&in);
}

/* Receipts and typing (docs/receipts.md). */
static void test_decode_receipts_and_typing(void **state)
{
    (void)state;
    struct pv_inbound in;
    decode("{\"type\":\"typing\",\"room\":\"ops\",\"typing\":false}", &in);
    assert_int_equal(in.type, PV_IN_TYPING);
    assert_false(in.typing);
    assert_int_equal(in.room_len, 3);
    pv_inbound_release(&in);
    decode("{\"type\":\"typing\"}", &in); /* the lobby; started */
    assert_int_equal(in.type, PV_IN_TYPING);
    assert_true(in.typing);
    assert_null(in.room);
    pv_inbound_release(&in);
    expect_invalid("{\"type\":\"typing\",\"typing\":1}", "bad-typing");
    expect_invalid("{\"type\":\"typing\",\"room\":7}", "bad-room");

    decode("{\"type\":\"settings\",\"readReceipts\":false}", &in);
    assert_int_equal(in.type, PV_IN_SETTINGS);
    assert_int_equal(in.read_receipts, 0);
    pv_inbound_release(&in);
    decode("{\"type\":\"settings\"}", &in);
    assert_int_equal(in.read_receipts, -1);
    pv_inbound_release(&in);
    expect_invalid("{\"type\":\"settings\",\"readReceipts\":\"no\"}", "bad-settings");

    decode("{\"type\":\"received\",\"room\":\"dm:1:2\",\"rseq\":12}", &in);
    assert_int_equal(in.type, PV_IN_ROOM);
    assert_int_equal(in.op, PV_ROOM_RECEIVED);
    assert_int_equal(in.rseq, 12);
    pv_inbound_release(&in);
    decode("{\"type\":\"seen\",\"room\":\"ops\",\"rseq\":3}", &in);
    assert_int_equal(in.op, PV_ROOM_SEEN);
    pv_inbound_release(&in);
    expect_invalid("{\"type\":\"seen\",\"room\":\"ops\"}", "bad-rseq");
    expect_invalid("{\"type\":\"received\",\"rseq\":3}", "bad-room");
    expect_invalid("{\"type\":\"read\",\"room\":\"ops\",\"rseq\":9007199254740992}", "bad-rseq");
}

/* Files in a message (docs/files.md): ids by shape, 1..10, no twice; the
 * text may then be absent or blank; an encoded message carries them. */
static void test_decode_files(void **state)
{
    (void)state;
    struct pv_inbound in;
    decode("{\"type\":\"message\",\"files\":[\"AAAAAAAAAAAAAAAAAAAAAA\"]}", &in);
    assert_int_equal(in.type, PV_IN_MESSAGE);
    assert_int_equal(in.text_len, 0);
    assert_int_equal(json_array_size(in.files), 1);
    struct pv_user from = {.id = "abc", .name = "ann", .role = "member"};
    struct pv_frame *f = pv_proto_message(&in, &from, "lobby", 1, 1, 5);
    size_t n;
    const char *p = (const char *)pv_frame_payload(f, &n);
    assert_non_null(strstr(p, "\"files\":[\"AAAAAAAAAAAAAAAAAAAAAA\"]"));
    pv_frame_unref(f);
    pv_inbound_release(&in);
    decode("{\"type\":\"message\",\"text\":\" \",\"files\":[\"AAAAAAAAAAAAAAAAAAAAAA\"]}", &in);
    assert_int_equal(in.type, PV_IN_MESSAGE);
    pv_inbound_release(&in);
    decode("{\"type\":\"message\",\"text\":\"hi\"}", &in);
    assert_null(in.files);
    pv_inbound_release(&in);
    expect_invalid("{\"type\":\"message\",\"files\":[]}", "bad-files");
    expect_invalid("{\"type\":\"message\",\"files\":\"AAAAAAAAAAAAAAAAAAAAAA\"}", "bad-files");
    expect_invalid("{\"type\":\"message\",\"files\":[\"../../etc/passwd\"]}", "bad-files");
    expect_invalid("{\"type\":\"message\",\"files\":[7]}", "bad-files");
    expect_invalid("{\"type\":\"message\",\"files\":[\"AAAAAAAAAAAAAAAAAAAAAA\","
                   "\"AAAAAAAAAAAAAAAAAAAAAA\"]}",
                   "bad-files");
    char many[512] = "{\"type\":\"message\",\"files\":[";
    for (int i = 0; i < 11; i++) {
        char id[32];
        snprintf(id, sizeof(id), "%s\"AAAAAAAAAAAAAAAAAAAAA%c\"", i ? "," : "", 'a' + i);
        strcat(many, id);
    }
    strcat(many, "]}");
    expect_invalid(many, "bad-files");
    expect_invalid("{\"type\":\"message\"}", "bad-text"); /* no files, no text */
}

static void test_text_limit_is_bytes(void **state)
{
    (void)state;
    struct pv_inbound in;
    /* 20 bytes exactly (10 x U+00E9) is allowed with max_text 20. */
    decode("{\"type\":\"message\",\"text\":\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
           "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\"}",
           &in);
    assert_int_equal(in.type, PV_IN_MESSAGE);
    pv_inbound_release(&in);
}

static void test_names(void **state)
{
    (void)state;
    char out[PV_NAME_MAX_BYTES + 1];
    const char *why;
    assert_true(pv_name_check("  ann ", 6, out, &why));
    assert_string_equal(out, "ann");
    assert_true(pv_name_check("Zo\xc3\xab", 4, out, &why));
    assert_false(pv_name_check("   ", 3, out, &why));
    assert_false(pv_name_check("", 0, out, &why));
    assert_false(pv_name_check("a\nb", 3, out, &why));
    assert_false(pv_name_check("a\x7f", 2, out, &why));
    assert_false(pv_name_check("a\xc2\x85z", 4, out, &why));     /* C1 control NEL */
    assert_false(pv_name_check("a\xe2\x80\xaez", 5, out, &why)); /* RIGHT-TO-LEFT OVERRIDE */
    assert_false(pv_name_check("\xff\xfe", 2, out, &why));
    assert_true(pv_name_check("12345678901234567890123456789012", 32, out, &why));
    assert_false(pv_name_check("123456789012345678901234567890123", 33, out, &why));
    /* 32 four-byte characters are fine: the limit is in characters. */
    char emoji[32 * 4 + 1] = "";
    for (int i = 0; i < 32; i++)
        strcat(emoji, "\xf0\x9f\x98\x80");
    assert_true(pv_name_check(emoji, strlen(emoji), out, &why));
}

static void test_keys(void **state)
{
    (void)state;
    char a[PV_KEY_LEN + 1], b[PV_KEY_LEN + 1], id[PV_ID_LEN + 1];
    pv_new_key(a);
    pv_new_key(b);
    assert_int_equal(strlen(a), 36);
    assert_string_not_equal(a, b);
    assert_int_equal(a[8], '-');
    assert_int_equal(a[14], '4');           /* version 4 */
    assert_non_null(strchr("89ab", a[19])); /* RFC 9562 variant */
    pv_new_id(id);
    assert_int_equal(strlen(id), 16);
    assert_int_equal(strspn(id, "0123456789abcdef"), 16);
}

/* Parses a frame's payload and releases the frame. */
static json_t *payload_json(struct pv_frame *f)
{
    size_t n;
    const unsigned char *p = pv_frame_payload(f, &n);
    json_t *j = json_loadb((const char *)p, n, 0, NULL);
    assert_non_null(j);
    pv_frame_unref(f);
    return j;
}

static void test_encode_message_keeps_seed_fields(void **state)
{
    (void)state;
    struct pv_inbound in;
    struct pv_user from = {.id = "abcd", .name = "ann", .role = "member", .account = 7};
    decode("{\"type\":\"message\",\"msgId\":9,\"text\":\"<b>x</b>\",\"clientKey\":\"secret\","
           "\"date\":5,\"evil\":true}",
           &in);
    json_t *j = payload_json(pv_proto_message(&in, &from, PV_LOBBY, 42, 40, 1000));
    assert_string_equal(json_string_value(json_object_get(j, "type")), "message");
    assert_int_equal(json_integer_value(json_object_get(j, "msgId")), 9);
    assert_string_equal(json_string_value(json_object_get(j, "text")), "<b>x</b>");
    assert_string_equal(json_string_value(json_object_get(j, "clientKey")), ""); /* emptied */
    assert_int_equal(json_integer_value(json_object_get(j, "date")), 5);
    assert_int_equal(json_integer_value(json_object_get(j, "seq")), 42);
    assert_int_equal(json_integer_value(json_object_get(j, "serverDate")), 1000);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "from"), "name")),
                        "ann");
    /* The account behind the name, decided by the server (accounts.h). */
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "from"), "role")),
                        "member");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "from"), "account")), 7);
    assert_null(json_object_get(j, "evil")); /* unknown client fields are not relayed */
    json_decref(j);
    pv_inbound_release(&in);

    /* Without a usable date the server's time is used: not a number, a
     * fraction, negative, or past what a JavaScript client reads exactly. */
    static const char *const bad_dates[] = {"\"yesterday\"", "1.5", "-1", "9007199254740992",
                                            "1e300"};
    for (size_t i = 0; i < sizeof(bad_dates) / sizeof(bad_dates[0]); i++) {
        char msg[128];
        snprintf(msg, sizeof(msg), "{\"type\":\"message\",\"text\":\"x\",\"date\":%s}",
                 bad_dates[i]);
        decode(msg, &in);
        assert_int_equal(in.type, PV_IN_MESSAGE);
        j = payload_json(pv_proto_message(&in, &from, PV_LOBBY, 1, 1, 777));
        assert_int_equal(json_integer_value(json_object_get(j, "date")), 777);
        assert_null(json_object_get(j, "msgId"));
        json_decref(j);
        pv_inbound_release(&in);
    }
}

static void test_encode_others(void **state)
{
    (void)state;
    struct pv_user u = {.id = "id1", .name = "bob"},
                   others[2] = {{.id = "id2", .name = "cy"}, {.id = "id3", .name = "di"}};
    json_t *mid = json_integer(4);

    json_t *j = payload_json(pv_proto_ack(mid, 8, 3, 1));
    assert_string_equal(json_string_value(json_object_get(j, "type")), "ack");
    assert_int_equal(json_integer_value(json_object_get(j, "msgId")), 4);
    assert_int_equal(json_integer_value(json_object_get(j, "seq")), 8);
    assert_int_equal(json_integer_value(json_object_get(j, "rseq")), 3);
    json_decref(j);

    j = payload_json(pv_proto_error("empty-text", "message text is empty", mid));
    assert_string_equal(json_string_value(json_object_get(j, "code")), "empty-text");
    assert_int_equal(json_integer_value(json_object_get(j, "msgId")), 4);
    json_decref(j);

    j = payload_json(pv_proto_presence(others, 2, 2, 5, 77, 1));
    assert_int_equal(json_array_size(json_object_get(j, "users")), 2);
    assert_int_equal(json_integer_value(json_object_get(j, "online")), 2);
    assert_false(json_is_true(json_object_get(j, "truncated")));
    assert_int_equal(json_integer_value(json_object_get(j, "history")), 5);
    assert_int_equal(json_integer_value(json_object_get(j, "lastSeq")), 77);
    assert_null(json_object_get(j, "you")); /* shared by a burst: nothing per client */
    json_decref(j);

    /* Over --presence-max: the list is cut and says so. */
    j = payload_json(pv_proto_presence(others, 2, 5000, 0, 0, 1));
    assert_int_equal(json_integer_value(json_object_get(j, "online")), 5000);
    assert_true(json_is_true(json_object_get(j, "truncated")));
    json_decref(j);

    /* Large rooms: notices carry counts only. */
    j = payload_json(pv_proto_notice("leave", others, 2, false, 4998, 1));
    assert_int_equal(json_integer_value(json_object_get(j, "count")), 2);
    assert_null(json_object_get(j, "users"));
    assert_null(json_object_get(j, "user"));
    json_decref(j);

    /* A burst of joins is one notice; "user" repeats the first. */
    j = payload_json(pv_proto_notice("join", others, 2, true, 9, 1));
    assert_string_equal(json_string_value(json_object_get(j, "type")), "join");
    assert_int_equal(json_array_size(json_object_get(j, "users")), 2);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(json_object_get(j, "users"), 1), "name")),
        "di");
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "user"), "id")),
                        "id2");
    assert_int_equal(json_integer_value(json_object_get(j, "online")), 9);
    json_decref(j);

    j = payload_json(pv_proto_id("k-e-y", &u, "run1", 4096, 9));
    assert_string_equal(json_string_value(json_object_get(j, "type")), "id");
    assert_string_equal(json_string_value(json_object_get(j, "server")), "run1");
    assert_int_equal(json_integer_value(json_object_get(j, "maxText")), 4096);
    assert_string_equal(json_string_value(json_object_get(j, "clientKey")), "k-e-y");
    assert_int_equal(json_integer_value(json_object_get(j, "date")), 9);
    json_decref(j);
    json_decref(mid);
}

/* Recovery requests: hello since (+ server), history before/limit, and
 * the ?since= parser; each bad form has its own error code. */
static void test_decode_recovery(void **state)
{
    (void)state;
    struct pv_inbound in;
    decode("{\"type\":\"hello\",\"since\":41,\"server\":\"abc\"}", &in);
    assert_int_equal(in.type, PV_IN_HELLO);
    assert_true(in.has_since);
    assert_int_equal(in.since, 41);
    assert_string_equal(in.server, "abc");
    assert_null(in.name);
    pv_inbound_release(&in);
    decode("{\"type\":\"hello\",\"name\":\"ann\"}", &in);
    assert_false(in.has_since);
    pv_inbound_release(&in);
    expect_invalid("{\"type\":\"hello\",\"since\":-1}", "bad-since");
    expect_invalid("{\"type\":\"hello\",\"since\":\"5\"}", "bad-since");
    expect_invalid("{\"type\":\"hello\",\"since\":1.5}", "bad-since");
    expect_invalid("{\"type\":\"hello\",\"since\":9007199254740992}", "bad-since");
    expect_invalid("{\"type\":\"hello\",\"since\":1,\"server\":3}", "bad-since");

    decode("{\"type\":\"history\",\"before\":100,\"limit\":7,\"msgId\":2}", &in);
    assert_int_equal(in.type, PV_IN_HISTORY);
    assert_int_equal(in.before, 100);
    assert_int_equal(in.limit, 7);
    pv_inbound_release(&in);
    decode("{\"type\":\"history\"}", &in);
    assert_int_equal(in.before, 0); /* the newest */
    assert_int_equal(in.limit, PV_PAGE_DEFAULT);
    pv_inbound_release(&in);
    expect_invalid("{\"type\":\"history\",\"limit\":0}", "bad-history");
    expect_invalid("{\"type\":\"history\",\"limit\":201}", "bad-history");
    expect_invalid("{\"type\":\"history\",\"before\":\"x\"}", "bad-history");

    uint64_t v;
    assert_true(pv_seq_parse("0", 1, &v) && v == 0);
    assert_true(pv_seq_parse("9007199254740991", 16, &v) && v == PV_SEQ_MAX);
    assert_false(pv_seq_parse("9007199254740992", 16, &v));
    assert_false(pv_seq_parse("", 0, &v));
    assert_false(pv_seq_parse("12a", 3, &v));
    assert_false(pv_seq_parse("-1", 2, &v));
    assert_false(pv_seq_parse("+1", 2, &v));
}

/* resume/reset markers and a history page built from stored JSON text. */
static void test_encode_recovery(void **state)
{
    (void)state;
    json_t *j = payload_json(pv_proto_resume("reset", 12, "too-far", 20, 99, 5));
    assert_string_equal(json_string_value(json_object_get(j, "type")), "reset");
    assert_int_equal(json_integer_value(json_object_get(j, "since")), 12);
    assert_string_equal(json_string_value(json_object_get(j, "reason")), "too-far");
    assert_int_equal(json_integer_value(json_object_get(j, "history")), 20);
    assert_int_equal(json_integer_value(json_object_get(j, "lastSeq")), 99);
    json_decref(j);
    j = payload_json(pv_proto_resume("resume", 3, NULL, 0, 3, 5));
    assert_null(json_object_get(j, "reason"));
    json_decref(j);

    const char *items[] = {"{\"type\":\"message\",\"seq\":8,\"text\":\"a\\\"b\"}",
                           "{\"type\":\"message\",\"seq\":9,\"text\":\"\u00e9\"}"};
    size_t lens[] = {strlen(items[0]), strlen(items[1])};
    json_t *mid = json_string("p-1");
    j = payload_json(pv_proto_history_page(NULL, 10, mid, true, items, lens, 2));
    assert_string_equal(json_string_value(json_object_get(j, "type")), "history");
    assert_int_equal(json_integer_value(json_object_get(j, "before")), 10);
    assert_true(json_is_true(json_object_get(j, "more")));
    assert_string_equal(json_string_value(json_object_get(j, "msgId")), "p-1");
    json_t *msgs = json_object_get(j, "messages");
    assert_int_equal(json_array_size(msgs), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(msgs, 0), "text")),
                        "a\"b");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(msgs, 1), "seq")), 9);
    json_decref(j);
    j = payload_json(pv_proto_history_page(NULL, 1, NULL, false, NULL, NULL, 0));
    assert_int_equal(json_array_size(json_object_get(j, "messages")), 0);
    assert_false(json_is_true(json_object_get(j, "more")));
    assert_null(json_object_get(j, "msgId"));
    json_decref(j);
    json_decref(mid);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_seed_message),
        cmocka_unit_test(test_decode_keeps_only_known_fields),
        cmocka_unit_test(test_decode_errors),
        cmocka_unit_test(test_decode_too_complex),
        cmocka_unit_test(test_decode_receipts_and_typing),
        cmocka_unit_test(test_decode_files),
        cmocka_unit_test(test_text_limit_is_bytes),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_encode_message_keeps_seed_fields),
        cmocka_unit_test(test_encode_others),
        cmocka_unit_test(test_decode_recovery),
        cmocka_unit_test(test_encode_recovery),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
