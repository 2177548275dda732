/* Unit tests: pre-encoded frames (frame.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "palaver/frame.h"
#include "palaver/utf8.h"

static void test_header_sizes(void **state)
{
    (void)state;
    unsigned char h[PV_WS_MAX_HEADER];
    assert_int_equal(pv_ws_header(h, 1, 0), 2);
    assert_int_equal(h[0], 0x81);
    assert_int_equal(h[1], 0);
    assert_int_equal(pv_ws_header(h, 1, 125), 2);
    assert_int_equal(h[1], 125);
    assert_int_equal(pv_ws_header(h, 1, 126), 4);
    assert_int_equal(h[1], 126);
    assert_int_equal(h[2], 0);
    assert_int_equal(h[3], 126);
    assert_int_equal(pv_ws_header(h, 1, 65535), 4);
    assert_int_equal(pv_ws_header(h, 2, 65536), 10);
    assert_int_equal(h[0], 0x82);
    assert_int_equal(h[1], 127);
    assert_int_equal(h[7], 1); /* 65536 = 0x10000 */
    assert_int_equal(h[8], 0);
    assert_int_equal(h[9], 0);
}

static void test_json_frame_is_encoded_once_in_place(void **state)
{
    (void)state;
    json_t *o = json_pack("{s:s, s:i}", "type", "ack", "seq", 7);
    struct pv_frame *f = pv_frame_from_json(o);
    size_t plen;
    const unsigned char *p = pv_frame_payload(f, &plen);
    const char *want = "{\"type\":\"ack\",\"seq\":7}";
    assert_int_equal(plen, strlen(want));
    assert_memory_equal(p, want, plen);
    assert_int_equal(f->data[0], 0x81);
    assert_int_equal(f->data[1], plen);
    assert_int_equal(f->len, plen + 2);
    json_decref(o);

    /* A payload larger than the initial buffer grows it and gets a 16-bit
     * length header. */
    char big[3000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    o = json_pack("{s:s}", "text", big);
    struct pv_frame *g = pv_frame_from_json(o);
    p = pv_frame_payload(g, &plen);
    assert_int_equal(plen, strlen(big) + strlen("{\"text\":\"\"}"));
    assert_int_equal(g->data[1], 126);
    assert_int_equal((g->data[2] << 8) | g->data[3], plen);
    assert_memory_equal(p, "{\"text\":\"xxx", 12);
    json_decref(o);
    pv_frame_unref(g);

    /* Reference counting: the frame survives until the last unref. */
    pv_frame_ref(f);
    pv_frame_ref_n(f, 3);
    assert_int_equal(atomic_load(&f->refs), 5);
    for (int i = 0; i < 4; i++)
        pv_frame_unref(f);
    assert_int_equal(atomic_load(&f->refs), 1);
    pv_frame_unref(f);
}

static void test_close_frame(void **state)
{
    (void)state;
    struct pv_frame *f = pv_frame_close(1008, "slow consumer");
    size_t plen;
    const unsigned char *p = pv_frame_payload(f, &plen);
    assert_int_equal(f->data[0], 0x88);
    assert_int_equal(plen, 2 + strlen("slow consumer"));
    assert_int_equal((p[0] << 8) | p[1], 1008);
    assert_memory_equal(p + 2, "slow consumer", plen - 2);
    pv_frame_unref(f);

    /* Reasons are cut to fit the 125-byte control-frame limit. */
    char longr[300];
    memset(longr, 'r', sizeof(longr) - 1);
    longr[sizeof(longr) - 1] = '\0';
    f = pv_frame_close(1001, longr);
    pv_frame_payload(f, &plen);
    assert_int_equal(plen, 125);
    pv_frame_unref(f);
    /* ... on a character boundary: 61 two-byte characters are 122 bytes,
     * the 62nd would end at 124. */
    char wide[300] = "";
    for (int i = 0; i < 100; i++)
        strcat(wide, "\xc3\xa9");
    f = pv_frame_close(4001, wide);
    p = pv_frame_payload(f, &plen);
    assert_int_equal(plen, 2 + 122);
    assert_true(pv_utf8_valid(p + 2, plen - 2));
    pv_frame_unref(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_sizes),
        cmocka_unit_test(test_json_frame_is_encoded_once_in_place),
        cmocka_unit_test(test_close_frame),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
