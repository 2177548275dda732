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

/* The man page writes a key as \fBmax\-clients\fR. */
static void man_name(const char *name, char *out, size_t n)
{
    size_t k = 0;
    k += (size_t)snprintf(out, n, "\\fB");
    for (const char *p = name; *p && k + 3 < n; p++) {
        if (*p == '-')
            out[k++] = '\\';
        out[k++] = *p;
    }
    snprintf(out + k, n - k, "\\fR");
}

/* Every key of the settings table, with its built-in default, in every
 * place an operator reads: --help, the sample configuration file, the man
 * page, and the options table of docs/operations.md. A key added to the
 * table and forgotten in one of them fails here. */
static void test_every_key_is_documented_with_its_default(void **state)
{
    (void)state;
    char *help = NULL;
    size_t help_len = 0;
    FILE *m = open_memstream(&help, &help_len);
    pv_config_usage(m);
    fclose(m);
    char *conf = slurp(PV_SOURCE_DIR "/cmake/palaverd.conf");
    char *man = slurp(PV_SOURCE_DIR "/docs/man/palaverd.8");
    char *ops = slurp(PV_SOURCE_DIR "/docs/operations.md");
    char *conf5 = slurp(PV_SOURCE_DIR "/docs/man/palaverd.conf.5");
    int missing = 0;
    for (size_t i = 0; i < pv_config_setting_count(); i++) {
        const char *name = pv_config_setting_name(i);
        char def[256], want[512], mn[128];
        pv_config_setting_default(i, def, sizeof(def));
        bool alias = strcmp(name, "handshake-timeout") == 0; /* --head-timeout's old name */
        bool path = strcmp(name, "htdocs") == 0 || strcmp(name, "data-dir") == 0; /* per install */
        /* --help */
        snprintf(want, sizeof(want), "--%s", name);
        if (!strstr(help, want) && (missing += 1))
            fprintf(stderr, "--help does not mention %s\n", want);
        /* docs/operations.md */
        bool listed = false;
        for (const char *end = " `,"; *end && !listed; end++) {
            snprintf(want, sizeof(want), "--%s%c", name, *end);
            listed = strstr(ops, want) != NULL;
        }
        if (!alias && !listed && (missing += 1))
            fprintf(stderr, "docs/operations.md does not list --%s\n", name);
        /* The sample file: "#key = default" (empty strings as ""). */
        if (def[0])
            snprintf(want, sizeof(want), "\n#%s = %s\n", name, def);
        else
            snprintf(want, sizeof(want), "\n#%s = \"\"\n", name);
        if (!alias && !path && strcmp(name, "listen") != 0 && !strstr(conf, want) && (missing += 1))
            fprintf(stderr, "cmake/palaverd.conf has no line '%s'\n", want + 1);
        /* The man page: "\fBkey\fR default" (or just the key when empty). */
        man_name(name, mn, sizeof(mn));
        if (def[0] && !path)
            snprintf(want, sizeof(want), "%s %s", mn, def);
        else
            snprintf(want, sizeof(want), "%s", mn);
        if (!alias && !strstr(man, want) && (missing += 1))
            fprintf(stderr, "docs/man/palaverd.8 does not list '%s'\n", want);
        /* palaverd.conf(5): an entry ".TP\n\fBkey\fR" whose text names the
         * default ("default N"; empty strings and per-install paths aside). */
        snprintf(want, sizeof(want), ".TP\n%s", mn);
        const char *entry = strstr(conf5, want);
        if (!alias && !entry && (missing += 1))
            fprintf(stderr, "docs/man/palaverd.conf.5 has no entry for %s\n", name);
        if (entry && def[0] && !path) {
            const char *next = strstr(entry + 4, ".TP\n");
            snprintf(want, sizeof(want), "default %s", def);
            const char *d = strstr(entry, want);
            if ((!d || (next && d > next)) && (missing += 1))
                fprintf(stderr, "docs/man/palaverd.conf.5: %s does not say '%s'\n", name, want);
        }
    }
    assert_int_equal(missing, 0);
    free(help);
    free(conf);
    free(man);
    free(ops);
    free(conf5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_form),
        cmocka_unit_test(test_text_errors_name_file_and_line),
        cmocka_unit_test(test_cross_checks),
        cmocka_unit_test(test_argv),
        cmocka_unit_test(test_every_key_is_documented_with_its_default),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
