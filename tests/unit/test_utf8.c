/* Unit tests: strict incremental UTF-8 validation (utf8.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "palaver/utf8.h"

static bool valid(const char *s)
{
    return pv_utf8_valid(s, strlen(s));
}

static void test_accepts_valid(void **state)
{
    (void)state;
    assert_true(valid(""));
    assert_true(valid("hello, world"));
    assert_true(valid("h\xc3\xa9llo"));     /* é */
    assert_true(valid("\xe2\x82\xac"));     /* € */
    assert_true(valid("\xf0\x9f\x98\x80")); /* U+1F600 */
    assert_true(valid("\xf4\x8f\xbf\xbf")); /* U+10FFFF, the last one */
    assert_true(valid("\xed\x9f\xbf"));     /* U+D7FF, just below surrogates */
    assert_true(valid("\xee\x80\x80"));     /* U+E000, just above */
    assert_true(valid("0123456789abcdef\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"));
}

static void test_rejects_invalid(void **state)
{
    (void)state;
    assert_false(valid("\x80"));             /* lone continuation */
    assert_false(valid("\xc0\xaf"));         /* overlong '/' */
    assert_false(valid("\xc1\xbf"));         /* overlong */
    assert_false(valid("\xe0\x80\xaf"));     /* overlong 3-byte */
    assert_false(valid("\xf0\x80\x80\xaf")); /* overlong 4-byte */
    assert_false(valid("\xed\xa0\x80"));     /* U+D800 surrogate */
    assert_false(valid("\xed\xbf\xbf"));     /* U+DFFF surrogate */
    assert_false(valid("\xf4\x90\x80\x80")); /* U+110000 */
    assert_false(valid("\xf5\x80\x80\x80"));
    assert_false(valid("\xff"));
    assert_false(valid("\xfe\xfe\xff\xff"));
    assert_false(valid("\xce\xba\xe1\xbd")); /* truncated at the end */
    assert_false(valid("abc\xe2\x82"));
    assert_false(valid("\xe2\x28\xa1"));         /* bad continuation */
    assert_false(valid("0123456789abcdef\xff")); /* after the ASCII fast path */
}

static void test_incremental_split_sequences(void **state)
{
    (void)state;
    const char *s = "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf0\x9f\x98\x80";
    size_t n = strlen(s);
    /* Every split point gives INCOMPLETE or OK for the first part and OK at
     * the end, exactly like a fragmented WebSocket message. */
    for (size_t cut = 0; cut <= n; cut++) {
        struct pv_utf8 v;
        pv_utf8_init(&v);
        enum pv_utf8_result r = pv_utf8_feed(&v, s, cut);
        assert_int_not_equal(r, PV_UTF8_INVALID);
        assert_int_equal(pv_utf8_feed(&v, s + cut, n - cut), PV_UTF8_OK);
    }
    /* The first bad byte is reported in the fragment that carries it. */
    struct pv_utf8 v;
    pv_utf8_init(&v);
    assert_int_equal(pv_utf8_feed(&v, "\xce", 1), PV_UTF8_INCOMPLETE);
    assert_int_equal(pv_utf8_feed(&v, "A", 1), PV_UTF8_INVALID);
    pv_utf8_init(&v);
    assert_int_equal(pv_utf8_feed(&v, "\xed", 1), PV_UTF8_INCOMPLETE);
    assert_int_equal(pv_utf8_feed(&v, "\xa0", 1), PV_UTF8_INVALID); /* surrogate, split */
}

static void test_length(void **state)
{
    (void)state;
    assert_int_equal(pv_utf8_length("abc", 3), 3);
    assert_int_equal(pv_utf8_length("h\xc3\xa9", 3), 2);
    assert_int_equal(pv_utf8_length("\xf0\x9f\x98\x80!", 5), 2);
}

/* A prefix that fits a bound never ends inside a character. */
static void test_prefix(void **state)
{
    (void)state;
    const char *s = "ab\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"; /* a b é € 😀: 1+1+2+3+4 */
    size_t n = strlen(s);
    assert_int_equal(pv_utf8_prefix(s, n, 100), n);
    assert_int_equal(pv_utf8_prefix(s, n, 2), 2);
    assert_int_equal(pv_utf8_prefix(s, n, 3), 2); /* not half of é */
    assert_int_equal(pv_utf8_prefix(s, n, 4), 4);
    assert_int_equal(pv_utf8_prefix(s, n, 6), 4); /* not two thirds of € */
    assert_int_equal(pv_utf8_prefix(s, n, 10), 7);
    assert_int_equal(pv_utf8_prefix(s, n, 0), 0);
    for (size_t max = 0; max <= n; max++)
        assert_true(pv_utf8_valid(s, pv_utf8_prefix(s, n, max)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepts_valid),
        cmocka_unit_test(test_rejects_invalid),
        cmocka_unit_test(test_incremental_split_sequences),
        cmocka_unit_test(test_length),
        cmocka_unit_test(test_prefix),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
