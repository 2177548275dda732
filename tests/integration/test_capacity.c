/* Integration: explicit capacity. Client max_clients+1 is refused with
 * HTTP 503 (CivetWeb alone would leave it hanging), the chat page keeps
 * loading while the broker is full, and a freed slot is reusable. Also the
 * command line: --help, --version, bad flags. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "pvtest.h"

#define T 5000

static void test_full_broker_refuses_with_503_and_serves_the_page(void **state)
{
    (void)state;
    struct srv s;
    const char *args[] = {"--max-clients", "3", NULL};
    struct wsc *c[3];
    char page[8192];

    assert_int_equal(srv_start(&s, args), 0);
    for (int i = 0; i < 3; i++) {
        c[i] = wsc_open(s.port, NULL);
        assert_int_equal(c[i]->status, 101);
        assert_int_equal(wsc_join(c[i], NULL, NULL), 0);
    }
    /* The fourth is refused at once, with a reason, not left hanging. */
    int64_t t0 = mono_ms();
    struct wsc *x = wsc_open(s.port, NULL);
    assert_non_null(x);
    assert_int_equal(x->status, 503);
    assert_non_null(strstr(x->response, "Retry-After:"));
    assert_non_null(strstr(x->response, "full"));
    assert_true(mono_ms() - t0 < 2000);
    wsc_free(x);
    assert_true(srv_log_wait(&s, "server full", T));

    /* Page loads still work while every chat slot is taken. */
    for (int i = 0; i < 20; i++) {
        assert_int_equal(http_get(s.port, "/", page, sizeof(page)), 200);
        assert_non_null(strstr(page, "X-Content-Type-Options: nosniff"));
    }
    assert_int_equal(http_get(s.port, "/no-such-file", page, sizeof(page)), 404);

    /* One leaves; its slot comes back once the broadcaster has seen it go. */
    wsc_free(c[0]);
    int64_t deadline = mono_ms() + T;
    for (;;) {
        x = wsc_open(s.port, NULL);
        if (x->status == 101)
            break;
        assert_int_equal(x->status, 503);
        assert_true(mono_ms() < deadline);
        wsc_free(x);
    }
    assert_int_equal(wsc_join(x, NULL, NULL), 0);
    wsc_free(x);
    wsc_free(c[1]);
    wsc_free(c[2]);
    assert_int_equal(srv_stop(&s), 0);
}

static void write_file(const char *dir, const char *name, const char *content, int mode)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(content, f);
    fclose(f);
    chmod(path, (mode_t)mode);
}

static void test_htdocs_is_served_as_plain_files_only(void **state)
{
    (void)state;
    struct srv s;
    char dir[512], sub[600], page[8192];
    snprintf(dir, sizeof(dir), "%s/htdocs-XXXXXX", PVTEST_LOG_DIR);
    assert_non_null(mkdtemp(dir));
    snprintf(sub, sizeof(sub), "%s/sub", dir);
    assert_int_equal(mkdir(sub, 0755), 0);
    write_file(dir, "index.html", "<!doctype html><p>hi</p>\n", 0644);
    write_file(dir, "x.cgi", "#!/bin/sh\necho Content-Type: text/plain; echo; echo RAN-$((6*7))\n", 0755);
    write_file(dir, "t.shtml", "<!--#exec cmd=\"echo RAN-$((6*7))\" -->\n", 0644);
    write_file(dir, "server.pem", "-----BEGIN PRIVATE KEY-----\n", 0644);
    write_file(dir, ".secret", "dotfile\n", 0644);
    const char *args[] = {"--htdocs", dir, NULL};
    assert_int_equal(srv_start(&s, args), 0);

    assert_int_equal(http_get(s.port, "/", page, sizeof(page)), 200);
    assert_non_null(strstr(page, "<p>hi</p>"));
    assert_int_equal(http_get(s.port, "/sub/", page, sizeof(page)), 403); /* no listing */
    assert_int_equal(http_get(s.port, "/x.cgi", page, sizeof(page)), 200);
    assert_null(strstr(page, "RAN-42"));                    /* not executed... */
    assert_non_null(strstr(page, "echo RAN-$((6*7))"));     /* ...served as a file */
    assert_int_equal(http_get(s.port, "/t.shtml", page, sizeof(page)), 200);
    assert_non_null(strstr(page, "<!--#exec"));             /* SSI not processed */
    assert_null(strstr(page, "RAN-42"));
    assert_int_equal(http_get(s.port, "/server.pem", page, sizeof(page)), 404);
    assert_int_equal(http_get(s.port, "/.secret", page, sizeof(page)), 404);
    assert_int_equal(http_get(s.port, "/../../etc/passwd", page, sizeof(page)), 404);
    assert_int_equal(srv_stop(&s), 0);
}

/* Dead peers are found by palaver's keepalive: a client silent for
 * --ping-interval is pinged; one that answers nothing for --idle-timeout
 * is closed with 1001 "idle timeout" and its connection ended (evicted),
 * while one that answers the pings stays. */
static void test_dead_peer_is_dropped_live_one_stays(void **state)
{
    (void)state;
    struct srv s;
    const char *args[] = {"--ping-interval", "200", "--idle-timeout", "1500", NULL};
    char dead_id[32], needle[128];
    assert_int_equal(srv_start(&s, args), 0);
    struct wsc *dead = wsc_open(s.port, NULL), *live = wsc_open(s.port, NULL);
    assert_int_equal(wsc_join(dead, NULL, dead_id), 0);
    assert_int_equal(wsc_join(live, NULL, NULL), 0);
    snprintf(needle, sizeof(needle), "leave id=%s", dead_id);
    /* `live` answers every ping until `dead` has been dropped. */
    int pings = 0;
    int64_t deadline = mono_ms() + 10000;
    while (!srv_log_has(&s, needle) && mono_ms() < deadline) {
        struct wsc_frame f;
        if (wsc_recv(live, &f, 100) == 1) {
            if (f.opcode == 9) {
                pings++;
                assert_int_equal(wsc_send(live, true, 0xA, f.data, f.len), 0);
            }
            wsc_frame_free(&f);
        }
    }
    assert_true(srv_log_has(&s, needle));
    assert_true(pings >= 4); /* the live client was pinged all along and stayed */
    assert_true(srv_log_has(&s, "idle timeout: closing"));
    /* What the silent client's kernel buffered: pings, then close 1001. */
    int dead_pings = 0;
    for (;;) {
        struct wsc_frame f;
        int r = wsc_recv(dead, &f, T);
        if (r != 1)
            break;
        dead_pings += f.opcode == 9;
        wsc_frame_free(&f);
    }
    assert_true(dead_pings >= 1);
    assert_int_equal(dead->close_code, 1001);
    assert_string_equal(dead->close_reason, "idle timeout");
    /* Still connected and served. */
    struct wsc *other = wsc_open(s.port, NULL);
    assert_int_equal(wsc_join(other, NULL, NULL), 0);
    assert_int_equal(wsc_send_chat(other, 1, "are you there", ""), 0);
    json_t *j = wsc_expect(live, "message", T);
    assert_non_null(j);
    json_decref(j);
    wsc_free(other);
    wsc_free(live);
    wsc_free(dead);
    assert_int_equal(srv_stop(&s), 0);
}

static int run_palaverd(const char *const *args, char *out, size_t outsz)
{
    const char *argv[16] = {PALAVERD_PATH};
    int n = 1;
    for (int i = 0; args[i]; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    return run_capture(argv, NULL, out, outsz);
}

static void test_command_line(void **state)
{
    (void)state;
    char out[8192];
    const char *help[] = {"--help", NULL};
    assert_int_equal(run_palaverd(help, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "--max-clients"));
    assert_non_null(strstr(out, "--max-backlog"));
    const char *version[] = {"--version", NULL};
    assert_int_equal(run_palaverd(version, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "palaverd "));
    const char *bad_port[] = {"--port", "70000", NULL};
    assert_int_equal(run_palaverd(bad_port, out, sizeof(out)), 2);
    assert_non_null(strstr(out, "invalid --port '70000'"));
    const char *bad_num[] = {"--max-clients", "lots", NULL};
    assert_int_equal(run_palaverd(bad_num, out, sizeof(out)), 2);
    assert_non_null(strstr(out, "--max-clients"));
    const char *unknown[] = {"--frobnicate", NULL};
    assert_int_equal(run_palaverd(unknown, out, sizeof(out)), 2);
    const char *level[] = {"--log-level", "chatty", NULL};
    assert_int_equal(run_palaverd(level, out, sizeof(out)), 2);
    assert_non_null(strstr(out, "--log-level"));
    /* A port that is taken: a clear error and exit status 1. */
    struct srv s;
    assert_int_equal(srv_start(&s, NULL), 0);
    char port[16];
    snprintf(port, sizeof(port), "%d", s.port);
    const char *taken[] = {"--port", port, "--listen", "127.0.0.1", NULL};
    assert_int_equal(run_palaverd(taken, out, sizeof(out)), 1);
    assert_non_null(strstr(out, "cannot start the HTTP server"));
    assert_int_equal(srv_stop(&s), 0);
}

static void test_port_from_environment(void **state)
{
    (void)state;
    char out[4096];
    /* PORT is read like seed 000 does; a bad value is refused by name. */
    setenv("PORT", "not-a-port", 1);
    const char *none[] = {NULL};
    assert_int_equal(run_palaverd(none, out, sizeof(out)), 2);
    assert_non_null(strstr(out, "PORT environment variable"));
    unsetenv("PORT");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_broker_refuses_with_503_and_serves_the_page),
        cmocka_unit_test(test_htdocs_is_served_as_plain_files_only),
        cmocka_unit_test(test_dead_peer_is_dropped_live_one_stays),
        cmocka_unit_test(test_command_line),
        cmocka_unit_test(test_port_from_environment),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
