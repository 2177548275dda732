/* Unit tests: the display-name profile and key (nickname.c), with the
 * look-alike and invisible names of issue 12. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "palaver/nickname.h"
#include "palaver/proto.h"

static char out[PV_NAME_MAX_BYTES + 1];
static const char *why;

static bool ok(const char *s)
{
    return pv_nickname_prepare(s, strlen(s), out, sizeof(out), &why);
}

static void accepted(const char *s, const char *want)
{
    if (!ok(s))
        fail_msg("refused \"%s\": %s", s, why);
    assert_string_equal(out, want);
}

static void refused(const char *s, const char *needle)
{
    if (ok(s))
        fail_msg("accepted \"%s\" as \"%s\"", s, out);
    assert_non_null(strstr(why, needle));
}

static void test_profile(void **state)
{
    (void)state;
    accepted("  ann  ", "ann");
    accepted("Ann   Smith", "Ann Smith");
    accepted("Ann\xc2\xa0Smith", "Ann Smith");     /* NBSP */
    accepted("Ann\xe3\x80\x80Smith", "Ann Smith"); /* ideographic space */
    accepted("Zoe\xcc\x88", "Zo\xc3\xab");         /* e + U+0308 -> NFC ë */
    accepted("\xd0\x98\xd0\xb2\xd0\xb0\xd0\xbd", "\xd0\x98\xd0\xb2\xd0\xb0\xd0\xbd"); /* Иван */
    accepted("\xe6\x9d\x8e\xe5\xb0\x8f\xe9\xbe\x99", "\xe6\x9d\x8e\xe5\xb0\x8f\xe9\xbe\x99");
    accepted(
        "\xf0\x9f\x91\xa8\xe2\x80\x8d\xf0\x9f\x91\xa9\xe2\x80\x8d\xf0\x9f\x91\xa7",
        "\xf0\x9f\x91\xa8\xe2\x80\x8d\xf0\x9f\x91\xa9\xe2\x80\x8d\xf0\x9f\x91\xa7"); /* family */
    accepted("ann \xe2\x9d\xa4\xef\xb8\x8f", "ann \xe2\x9d\xa4\xef\xb8\x8f");        /* ❤️ */
    accepted("Vi\xe1\xbb\x87t", "Vi\xe1\xbb\x87t");                                  /* Việt */

    /* U+0A36 is a composition exclusion: NFC makes it U+0A38 U+0A3C, a
     * fifth mark before four enclosing ones. Refused, as its NFC form is
     * (fuzz_nickname found the profile refusing its own output). */
    refused("\xe0\xa8\xb6\xd2\x89\xd2\x88\xd2\x88\xd2\x88", "too many combining marks");
    refused("\xe0\xa8\xb8\xe0\xa8\xbc\xd2\x89\xd2\x88\xd2\x88\xd2\x88", "too many combining marks");
    accepted("\xe0\xa8\xb6\xd2\x89\xd2\x88\xd2\x88",
             "\xe0\xa8\xb8\xe0\xa8\xbc\xd2\x89\xd2\x88\xd2\x88");
    refused("", "empty");
    refused("   ", "empty");
    refused("a\nb", "control");
    refused("a\x7f", "control");
    refused("a\xc2\x85z", "control"); /* C1 NEL */
    refused("b\xd0\xb0"
            "b",
            "Latin with Cyrillic");                          /* b, Cyrillic а, b */
    refused("\xce\xb1lice", "Latin with Cyrillic or Greek"); /* Greek alpha */
    refused("a\xe2\x80\x8b"
            "b",
            "invisible");                        /* ZWSP */
    refused("\xe2\x80\x8b", "invisible");        /* ZWSP alone */
    refused("\xe3\x85\xa4", "invisible");        /* U+3164 Hangul filler */
    refused("\xc2\xad", "invisible");            /* soft hyphen */
    refused("ann\xf3\xa0\x81\x81", "invisible"); /* tag character U+E0041 */
    refused("ann\xe2\x80\xae"
            "x",
            "invisible"); /* U+202E RLO */
    refused("a\xe2\x80\x8d"
            "b",
            "invisible");                              /* ZWJ between letters */
    refused("\xf0\x9f\x91\x8d\xe2\x80\x8d", "joiner"); /* 👍 + ZWJ at the end */
    refused("x\xef\xb8\x8f", "invisible");             /* VS16 after a letter */
    refused("a\xcd\xb8", "unassigned");                /* U+0378 */
    refused("a\xee\x80\x80", "private-use");           /* U+E000 */
    refused("\xe2\xa0\x80", "no visible");             /* U+2800 braille blank */
    refused("\xcc\x81"
            "a",
            "combining mark without");
    char zalgo[200] = "z";
    for (int i = 0; i < 31; i++)
        strcat(zalgo, "\xcc\x81");
    refused(zalgo, "too many combining");
    /* 4 marks: fine (NFC composes a + U+0301 into á) */
    accepted("a\xcc\x81\xcc\x82\xcc\x83\xcc\x84", "\xc3\xa1\xcc\x82\xcc\x83\xcc\x84");
    refused("a\xcc\x81\xcc\x82\xcc\x83\xcc\x84\xcc\x85", "too many combining"); /* 5 */
    refused("\xff", "UTF-8");
    refused("123456789012345678901234567890123", "longer than 32");
    accepted("12345678901234567890123456789012", "12345678901234567890123456789012");
}

static bool same(const char *a, const char *b)
{
    char ka[PV_NAME_KEY_MAX], kb[PV_NAME_KEY_MAX];
    assert_true(pv_nickname_key(a, ka));
    assert_true(pv_nickname_key(b, kb));
    return strcmp(ka, kb) == 0;
}

static bool reserved(const char *name)
{
    char k[PV_NAME_KEY_MAX];
    assert_true(pv_nickname_key(name, k));
    return pv_nickname_reserved(k);
}

static void test_keys(void **state)
{
    (void)state;
    assert_true(same("bob", "Bob"));
    assert_true(same("bob", "BOB"));
    assert_true(same("bob", "\xef\xbd\x82\xef\xbd\x8f\xef\xbd\x82")); /* fullwidth ｂｏｂ */
    /* All-Cyrillic "раура" looks like "paypa": same name. */
    assert_true(same("paypa", "\xd1\x80\xd0\xb0\xd1\x83\xd1\x80\xd0\xb0"));
    assert_true(same("Zo\xc3\xab", "Zoe\xcc\x88"));
    assert_false(same("bob", "rob"));
    assert_false(same("ann", "anne"));
    assert_true(reserved("guest-1a2b"));
    assert_true(reserved("GUEST-FFFF"));
    assert_true(reserved("g\xd5\xbd"
                         "est-1a2b")); /* Armenian ս for u */
    assert_true(reserved("guest\xe2\x80\x90"
                         "1a2b")); /* U+2010 hyphen */
    assert_false(reserved("guesthouse"));
    assert_false(reserved("a guest-1"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_profile),
        cmocka_unit_test(test_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
