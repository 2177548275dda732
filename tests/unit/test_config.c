/* Unit tests: settings from argv and from "key = value" text (config.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "palaver/config.h"
#include "palaver/log.h"

static int text(struct pv_config *c, const char *s, char *err, size_t n)
{
    return pv_config_parse_text(c, s, strlen(s), "test.conf", err, n);
}

static void test_text_form(void **state)
{
    (void)state;
    struct pv_config c;
    char err[256] = "";
    pv_config_defaults(&c);
    const char *conf = "# palaverd settings\n"
                       "\n"
                       "  max-clients = 250  \n"
                       "max-per-ip=4\r\n"
                       "allowed-origins = \"http://a.lan http://b.lan\"\n"
                       "log-level = debug\n"
                       "listen = 10.1.2.3\n"
                       "max-message = 8192";
    assert_int_equal(text(&c, conf, err, sizeof(err)), 0);
    assert_int_equal(c.max_clients, 250);
    assert_int_equal(c.max_per_ip, 4);
    assert_string_equal(c.allowed_origins, "http://a.lan http://b.lan");
    assert_int_equal(c.log_level, PV_LOG_DEBUG);
    assert_string_equal(c.listen_addr, "10.1.2.3");
    assert_int_equal(c.max_message, 8192);
    assert_int_equal(pv_config_check(&c, err, sizeof(err)), 0);
}

static void test_text_errors_name_file_and_line(void **state)
{
    (void)state;
    struct pv_config c;
    char err[256];
    pv_config_defaults(&c);
    assert_int_equal(text(&c, "history = 5\nfrobnicate = 1\n", err, sizeof(err)), -1);
    assert_string_equal(err, "test.conf:2: unknown key 'frobnicate'");
    assert_int_equal(text(&c, "\n\nmax-clients = lots\n", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "test.conf:3: invalid max-clients 'lots'"));
    assert_int_equal(text(&c, "max-clients = -1\n", err, sizeof(err)), -1);
    assert_int_equal(text(&c, "max-clients = 99999999999999999999\n", err, sizeof(err)), -1);
    assert_int_equal(text(&c, "just words\n", err, sizeof(err)), -1);
    assert_string_equal(err, "test.conf:1: expected 'key = value'");
    assert_int_equal(text(&c, "listen = 300.1.1.1\n", err, sizeof(err)), -1);
    assert_int_equal(text(&c, "log-level = chatty\n", err, sizeof(err)), -1);
    assert_int_equal(pv_config_parse_text(&c, "port = 1\0x", 10, "t", err, sizeof(err)), -1);
    assert_int_equal(c.history, 5); /* lines before the bad one were applied */
}

static void test_cross_checks(void **state)
{
    (void)state;
    struct pv_config c;
    char err[256];
    pv_config_defaults(&c);
    c.idle_timeout_ms = c.ping_interval_ms;
    assert_int_equal(pv_config_check(&c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "idle-timeout"));
    pv_config_defaults(&c);
    c.max_text = c.max_message + 1;
    assert_int_equal(pv_config_check(&c, err, sizeof(err)), -1);
}

static void test_argv(void **state)
{
    (void)state;
    struct pv_config c;
    pv_config_defaults(&c);
    char *argv[] = {
        "palaverd",       "-p", "9000", "--rate-limit", "5", "--handshake-timeout", "1500",
        "--max-per-ip=0", NULL};
    assert_int_equal(pv_config_parse(&c, 8, argv), 0);
    assert_int_equal(c.port, 9000);
    assert_int_equal(c.rate_limit, 5);
    assert_int_equal(c.head_timeout_ms, 1500); /* --handshake-timeout bounds the request head */
    assert_int_equal(c.max_per_ip, 0);
    char *bad[] = {"palaverd", "--max-per-ip", "x", NULL};
    assert_int_equal(pv_config_parse(&c, 3, bad), -1);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    static char buf[1 << 18];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return strdup(buf);
}

/* What follows `marker` in text, up to `end` (NULL: to the end). */
static char *section(const char *text, const char *marker, const char *end)
{
    const char *p = strstr(text, marker);
    assert_non_null(p);
    p = strchr(p, '\n') + 1;
    const char *q = end ? strstr(p, end) : p + strlen(p);
    assert_non_null(q);
    return strndup(p, (size_t)(q - p));
}

static char *generated(const char *format)
{
    char *out = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&out, &len);
    pv_config_print_settings(m, format);
    fclose(m);
    return out;
}

/* One table of settings (config.c): --help is generated from it at run
 * time; the sample palaverd.conf and palaverd.conf(5) carry its output
 * (palaverd --print-settings conf|man), and here they must match it
 * exactly, so a key added, renamed or given a new default without
 * regenerating them fails. Every key with its default is in --help, and
 * docs/operations.md lists every key. */
static void test_settings_docs_are_generated_from_the_table(void **state)
{
    (void)state;
    char *help = NULL;
    size_t help_len = 0;
    FILE *m = open_memstream(&help, &help_len);
    pv_config_usage(m);
    fclose(m);
    char *conf = slurp(PV_SOURCE_DIR "/cmake/palaverd.conf");
    char *conf5 = slurp(PV_SOURCE_DIR "/docs/man/palaverd.conf.5");
    char *ops = slurp(PV_SOURCE_DIR "/docs/operations.md");

    char *want = generated("conf"),
         *got = section(conf, "---- palaverd --print-settings conf", NULL);
    if (strcmp(want, got) != 0)
        fprintf(stderr, "cmake/palaverd.conf is stale: regenerate its keys with "
                        "palaverd --print-settings conf\n");
    assert_string_equal(got, want);
    free(want);
    free(got);
    want = generated("man");
    got = section(conf5, "---- palaverd \\-\\-print\\-settings man", ".SH FILES");
    if (strcmp(want, got) != 0)
        fprintf(stderr, "docs/man/palaverd.conf.5 is stale: regenerate its keys with "
                        "palaverd --print-settings man\n");
    assert_string_equal(got, want);
    free(want);
    free(got);

    int missing = 0;
    for (size_t i = 0; i < pv_config_setting_count(); i++) {
        const char *name = pv_config_setting_name(i);
        char def[256], flag[128];
        pv_config_setting_default(i, def, sizeof(def));
        bool alias = strcmp(name, "handshake-timeout") == 0; /* --head-timeout's old name */
        snprintf(flag, sizeof(flag), "--%s ", name);
        if (!strstr(help, flag) && (missing += 1))
            fprintf(stderr, "--help does not mention --%s\n", name);
        if (!alias && !strstr(conf, name) && (missing += 1))
            fprintf(stderr, "the sample file lacks %s\n", name);
        bool listed = false;
        for (const char *end = " `,"; *end && !listed; end++) {
            snprintf(flag, sizeof(flag), "--%s%c", name, *end);
            listed = strstr(ops, flag) != NULL;
        }
        if (!alias && !listed && (missing += 1))
            fprintf(stderr, "docs/operations.md does not list --%s\n", name);
    }
    assert_int_equal(missing, 0);
    free(help);
    free(conf);
    free(conf5);
    free(ops);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_form),
        cmocka_unit_test(test_text_errors_name_file_and_line),
        cmocka_unit_test(test_cross_checks),
        cmocka_unit_test(test_argv),
        cmocka_unit_test(test_settings_docs_are_generated_from_the_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
