/* Unit tests: the accounts API's request bodies and session cookie
 * (src/accounts/apireq.c): what each request must carry, the ranges of its
 * numbers, strings with a NUL, duplicate keys, and the cookie forms a
 * browser (or an attacker) sends. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "palaver/apireq.h"

/* The code of a refusal, or "ok". */
static const char *decode(enum pv_api_req kind, const char *body)
{
    struct pv_api_fields f;
    const char *code = NULL;
    if (!pv_api_decode(kind, body, strlen(body), &f, &code)) {
        pv_api_fields_release(&f);
        return "ok";
    }
    assert_null(f.root);
    return code;
}

static void test_required_fields(void **state)
{
    (void)state;
    assert_string_equal(decode(PV_REQ_LOGIN, "{\"name\":\"a\",\"password\":\"b\"}"), "ok");
    assert_string_equal(decode(PV_REQ_LOGIN, "{\"name\":\"a\"}"), "bad-request");
    assert_string_equal(decode(PV_REQ_LOGIN, "{\"name\":5,\"password\":\"b\"}"), "bad-request");
    assert_string_equal(decode(PV_REQ_LOGIN, "[1]"), "bad-json");
    assert_string_equal(decode(PV_REQ_LOGIN, "{\"name\":\"a\",\"name\":\"b\",\"password\":\"c\"}"),
                        "bad-json"); /* duplicate keys */
    /* A NUL inside would make C see a shorter password than was sent:
     * jansson refuses \u0000 outright (and apireq.c checks again). */
    assert_string_equal(decode(PV_REQ_LOGIN, "{\"name\":\"a\",\"password\":\"b\\u0000c\"}"),
                        "bad-json");
    assert_string_equal(decode(PV_REQ_SETUP, "{\"name\":\"a\",\"password\":\"b\"}"), "bad-request");
    assert_string_equal(decode(PV_REQ_PASSWORD, "{\"current\":\"a\",\"password\":\"b\"}"), "ok");
    assert_string_equal(decode(PV_REQ_REGISTER, "{\"name\":\"a\",\"password\":\"b\"}"), "ok");
    assert_string_equal(decode(PV_REQ_REGISTER, "{\"invite\":7,\"name\":\"a\",\"password\":\"b\"}"),
                        "bad-request");
}

static void test_ranges(void **state)
{
    (void)state;
    struct pv_api_fields f;
    const char *code;
    assert_null(pv_api_decode(PV_REQ_INVITE, "{}", 2, &f, &code));
    assert_int_equal(f.hours, PV_INVITE_HOURS);
    assert_int_equal(f.uses, 1);
    pv_api_fields_release(&f);
    assert_string_equal(decode(PV_REQ_INVITE, "{\"hours\":721}"), "bad-request");
    assert_string_equal(decode(PV_REQ_INVITE, "{\"uses\":0}"), "bad-request");
    assert_string_equal(decode(PV_REQ_INVITE, "{\"uses\":1.5}"), "bad-request");
    assert_string_equal(decode(PV_REQ_REVOKE, "{\"id\":0}"), "bad-request");
    assert_string_equal(decode(PV_REQ_REVOKE, "{}"), "bad-request");
    assert_string_equal(decode(PV_REQ_REVOKE, "{\"id\":3}"), "ok");
    assert_string_equal(decode(PV_REQ_MODERATE, "{\"action\":\"mute\",\"user\":\"x\"}"), "ok");
    assert_string_equal(decode(PV_REQ_MODERATE, "{\"action\":\"smite\",\"user\":\"x\"}"),
                        "bad-request");
    assert_string_equal(decode(PV_REQ_MODERATE, "{\"action\":\"mute\",\"user\":\"x\",\"minutes\":"
                                                "10081}"),
                        "bad-request");
    assert_string_equal(decode(PV_REQ_MODERATE, "{\"action\":\"role\",\"user\":\"x\"}"),
                        "bad-request");
    assert_string_equal(
        decode(PV_REQ_MODERATE, "{\"action\":\"role\",\"user\":\"x\",\"role\":\"root\"}"),
        "bad-request");
    char body[512] = "{\"action\":\"kick\",\"user\":\"x\",\"reason\":\"";
    memset(body + strlen(body), 'r', PV_REASON_MAX + 1);
    strcat(body, "\"}");
    assert_string_equal(decode(PV_REQ_MODERATE, body), "bad-request");
}

static void test_cookie(void **state)
{
    (void)state;
    char t[PV_TOKEN_CHARS + 1];
    const char *good = "Yf1qxT7S1mOLKUlEtoR8Gl6cQnInhS-99eCOip7o-Rg";
    char h[256];
    assert_int_equal(pv_api_cookie_token(NULL, t), 0);
    assert_int_equal(pv_api_cookie_token("", t), 0);
    assert_int_equal(pv_api_cookie_token("theme=dark", t), 0);
    snprintf(h, sizeof(h), "theme=dark; palaver_session=%s; x=1", good);
    assert_int_equal(pv_api_cookie_token(h, t), 1);
    assert_string_equal(t, good);
    snprintf(h, sizeof(h), "palaver_session=%s", good);
    assert_int_equal(pv_api_cookie_token(h, t), 1);
    snprintf(h, sizeof(h), "xpalaver_session=%s", good); /* another cookie's name */
    assert_int_equal(pv_api_cookie_token(h, t), 0);
    assert_int_equal(pv_api_cookie_token("palaver_session=", t), -1);
    assert_string_equal(t, "");
    snprintf(h, sizeof(h), "palaver_session=%sA", good); /* too long */
    assert_int_equal(pv_api_cookie_token(h, t), -1);
    snprintf(h, sizeof(h), "palaver_session=%.42s%%", good); /* not base64url */
    assert_int_equal(pv_api_cookie_token(h, t), -1);
    snprintf(h, sizeof(h), "palaver_session=\"%s\"", good); /* quoted: not ours */
    assert_int_equal(pv_api_cookie_token(h, t), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_required_fields),
        cmocka_unit_test(test_ranges),
        cmocka_unit_test(test_cookie),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
