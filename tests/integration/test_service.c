/* Integration: palaverd as a systemd service -- configuration file and
 * precedence, --check-config, sd_notify (READY, STATUS, WATCHDOG,
 * STOPPING) seen on a test-owned NOTIFY_SOCKET, SIGHUP reload (live
 * changes logged, a broken file refused), /healthz and /metrics, and the
 * installed unit judged by systemd-analyze verify and security. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "pvtest.h"

#define T 5000

static char tmpdir_path[256];

static int setup(void **state)
{
    (void)state;
    return tmpdir_make(tmpdir_path, sizeof(tmpdir_path), "service") ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return tmpdir_remove(tmpdir_path) == 0 ? 0 : -1;
}

static const char *write_conf(const char *name, const char *text)
{
    static char path[16][320]; /* each call its own buffer */
    static int k;
    assert_true(k < 16);
    char *p = path[k++];
    snprintf(p, 320, "%s/%s", tmpdir_path, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return p;
}


static void test_config_file_precedence_and_check(void **state)
{
    (void)state;
    char out[4096];
    const char *good = write_conf("good.conf", "# a comment\n\nport = 9911\nmax-clients = 5\n"
                                               "log-level = warning\n");
    /* The file alone. */
    const char *check[] = {PALAVERD_PATH, "--config", good, "--check-config", NULL};
    assert_int_equal(run_capture(check, NULL, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "configuration OK"));
    assert_non_null(strstr(out, "port 9911, max-clients 5"));
    assert_non_null(strstr(out, "log-level warning"));
    /* The environment beats the file... */
    const char *env[] = {"PALAVER_MAX_CLIENTS=7", NULL};
    assert_int_equal(run_capture(check, env, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "max-clients 7"));
    /* ...and a flag beats both. */
    const char *flag[] = {PALAVERD_PATH, "--config",       good, "--max-clients",
                          "9",           "--check-config", NULL};
    assert_int_equal(run_capture(flag, env, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "max-clients 9"));

    /* Errors name the file and the line; exit status 2. */
    const char *bad = write_conf("bad.conf", "port = 9911\n# fine so far\nfrobnicate = 1\n");
    const char *c2[] = {PALAVERD_PATH, "--config", bad, "--check-config", NULL};
    assert_int_equal(run_capture(c2, NULL, out, sizeof(out)), 2);
    assert_non_null(strstr(out, "bad.conf:3: unknown key 'frobnicate'"));
    write_conf("bad.conf", "max-clients = many\n"); /* same path, new content */
    assert_int_equal(run_capture(c2, NULL, out, sizeof(out)), 2);
    assert_non_null(strstr(out, "bad.conf:1: invalid max-clients 'many'"));
    write_conf("bad.conf", "port 8080\n");
    assert_int_equal(run_capture(c2, NULL, out, sizeof(out)), 2);
    assert_non_null(strstr(out, "bad.conf:1: expected 'key = value'"));
    const char *envbad[] = {"PALAVER_RATE_LIMIT=fast", NULL};
    assert_int_equal(run_capture(check, envbad, out, sizeof(out)), 2);
    assert_non_null(strstr(out, "PALAVER_RATE_LIMIT environment variable"));
    /* An explicit file that does not exist is an error. */
    const char *missing[] = {PALAVERD_PATH, "--config", "/nonexistent/palaverd.conf",
                             "--check-config", NULL};
    assert_int_equal(run_capture(missing, NULL, out, sizeof(out)), 2);
    assert_non_null(strstr(out, "cannot read /nonexistent/palaverd.conf"));
    /* The installed sample is valid as shipped. */
    const char *shipped[] = {PALAVERD_PATH, "--config", PVTEST_SAMPLE_CONF, "--check-config", NULL};
    assert_int_equal(run_capture(shipped, NULL, out, sizeof(out)), 0);
}

static void test_notify_status_watchdog_stopping(void **state)
{
    (void)state;
    struct srv s;
    char msg[1024];
    const char *envs[] = {"WATCHDOG_USEC=600000", NULL}; /* pings every 0.3 s */
    assert_int_equal(srv_start_env(&s, NULL, envs), 0);  /* READY=1 seen */
    assert_true(srv_notify_wait(&s, "STATUS=", T, msg, sizeof(msg)));
    assert_non_null(strstr(msg, "clients"));
    assert_non_null(strstr(msg, "messages/s"));
    int64_t t0 = mono_ms();
    for (int i = 0; i < 3; i++)
        assert_true(srv_notify_wait(&s, "WATCHDOG=1", 2000, NULL, 0));
    assert_true(mono_ms() - t0 < 3000); /* within the interval, not just eventually */
    assert_int_equal(srv_stop(&s), 0);
    assert_true(s.stopping_seen);
}

static void test_sighup_reload(void **state)
{
    (void)state;
    struct srv s;
    const char *conf = write_conf("live.conf", "log-level = info\nrate-limit = 20\n");
    const char *args[] = {"--config", conf, NULL};
    assert_int_equal(srv_start(&s, args), 0);
    assert_false(srv_log_has(&s, "handshake from")); /* a debug line */

    write_conf("live.conf",
               "log-level = debug\nrate-limit = 5\nrate-burst = 5\nmax-clients = 99\n");
    kill(s.pid, SIGHUP);
    assert_true(srv_log_wait(&s, "reload: log-level info -> debug", T));
    assert_true(srv_log_has(&s, "reload: rate-limit 20 -> 5"));
    assert_true(srv_log_has(&s, "reload: rate-burst 40 -> 5"));
    assert_true(srv_log_has(&s, "max-clients changed but needs a restart"));
    assert_true(srv_notify_wait(&s, "READY=1", T, NULL, 0)); /* after RELOADING=1 */
    struct wsc *c = wsc_open(s.port, NULL);
    assert_int_equal(wsc_join(c, NULL, NULL), 0);
    assert_true(srv_log_wait(&s, "handshake from", T)); /* debug is on, live */

    /* A broken file is refused; the running configuration stays. */
    write_conf("live.conf", "log-level = debug\nrate-limit = lots\n");
    kill(s.pid, SIGHUP);
    assert_true(srv_log_wait(&s, "reload refused, keeping the running configuration", T));
    assert_true(srv_log_has(&s, "live.conf:2: invalid rate-limit 'lots'"));
    int before = srv_log_count(&s, "handshake from");
    struct wsc *d = wsc_open(s.port, NULL);
    assert_int_equal(wsc_join(d, NULL, NULL), 0);
    int64_t deadline = mono_ms() + T;
    while (srv_log_count(&s, "handshake from") == before && mono_ms() < deadline)
        usleep(20000);
    assert_true(srv_log_count(&s, "handshake from") > before); /* still debug */
    /* The live limit is the reloaded 5/s, burst 5: of 8 at once, 3 are
     * refused (a client connected after the reload). */
    int refused = 0;
    for (int i = 0; i < 8; i++)
        assert_int_equal(wsc_send_chat(d, i, "r", ""), 0);
    for (int i = 0; i < 8; i++) {
        json_t *j = wsc_recv_json(d, T);
        assert_non_null(j);
        const char *type = json_string_value(json_object_get(j, "type"));
        if (strcmp(type, "error") == 0)
            refused++;
        else if (strcmp(type, "ack") != 0)
            i--; /* a notice */
        json_decref(j);
    }
    assert_true(refused >= 2 && refused <= 3); /* a token may refill meanwhile */
    wsc_free(c);
    wsc_free(d);
    assert_int_equal(srv_stop(&s), 0);
}

/* The value of a sample line "name value" in Prometheus text, or -1. */
static double sample(const char *text, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = text; (p = strstr(p, name)) != NULL; p += n) {
        if ((p == text || p[-1] == '\n') && p[n] == ' ')
            return atof(p + n + 1);
    }
    return -1;
}

static void test_healthz_and_metrics(void **state)
{
    (void)state;
    struct srv s;
    static char page[65536];
    assert_int_equal(srv_start(&s, NULL), 0);
    assert_int_equal(http_get(s.port, "/healthz", page, sizeof(page)), 200);
    assert_non_null(strstr(page, "ok: broadcaster loop turned"));

    assert_int_equal(http_get(s.port, "/metrics", page, sizeof(page)), 200);
    assert_non_null(strstr(page, "Content-Type: text/plain; version=0.0.4"));
    static const char *const names[][2] = {
        {"palaver_clients", "gauge"},
        {"palaver_connections_total", "counter"},
        {"palaver_messages_in_total", "counter"},
        {"palaver_deliveries_total", "counter"},
        {"palaver_bytes_out_total", "counter"},
        {"palaver_queue_depth", "gauge"},
        {"palaver_broadcaster_lag_seconds", "gauge"},
        {"palaver_slow_consumer_closes_total", "counter"},
        {"palaver_refused_connections_total", "counter"},
        {"palaver_errors_total", "counter"},
        {"palaver_history_messages", "gauge"},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char type[128];
        snprintf(type, sizeof(type), "# TYPE %s %s\n", names[i][0], names[i][1]);
        if (!strstr(page, type))
            fprintf(stderr, "missing: %s", type);
        assert_non_null(strstr(page, type));
    }
    assert_true(sample(page, "palaver_messages_in_total") == 0);
    assert_true(sample(page, "palaver_broadcaster_lag_seconds") < 5);

    /* Traffic moves the numbers. */
    struct wsc *a = wsc_open(s.port, NULL), *b = wsc_open(s.port, NULL);
    assert_int_equal(wsc_join(a, NULL, NULL), 0);
    assert_int_equal(wsc_join(b, NULL, NULL), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(wsc_send_chat(a, i, "counted", ""), 0);
    assert_int_equal(wsc_send_text(a, "not json"), 0);
    for (int i = 0; i < 3; i++)
        json_decref(wsc_expect(b, "message", T));
    json_decref(wsc_expect(a, "error", T));
    assert_int_equal(http_get(s.port, "/metrics", page, sizeof(page)), 200);
    assert_true(sample(page, "palaver_messages_in_total") == 3);
    assert_true(sample(page, "palaver_clients") == 2);
    assert_true(sample(page, "palaver_connections_total") == 2);
    assert_true(sample(page, "palaver_deliveries_total") >= 3);
    assert_true(sample(page, "palaver_bytes_out_total") > 0);
    assert_true(sample(page, "palaver_history_messages") == 3);
    assert_true(sample(page, "palaver_errors_total{code=\"bad-json\"}") == 1);
    /* Every byte the writers sent, counted once: what the two clients
     * received after their handshakes (no pings at the default interval).
     * The counter moves just after the client may have read the bytes, so
     * read on until both agree, or the deadline. */
    double out = -1;
    size_t rx = 0;
    for (int64_t end = mono_ms() + T; mono_ms() < end;) {
        struct wsc_frame f;
        while (wsc_recv(a, &f, 20) == 1)
            wsc_frame_free(&f);
        while (wsc_recv(b, &f, 20) == 1)
            wsc_frame_free(&f);
        rx = a->rx_bytes + b->rx_bytes;
        assert_int_equal(http_get(s.port, "/metrics", page, sizeof(page)), 200);
        out = sample(page, "palaver_bytes_out_total");
        if (out == (double)rx)
            break;
    }
    fprintf(stderr, "service: palaver_bytes_out_total %.0f, clients received %zu bytes\n", out, rx);
    assert_true(out == (double)rx);
    wsc_free(a);
    wsc_free(b);
    assert_int_equal(srv_stop(&s), 0);
}

static void test_installed_unit(void **state)
{
    (void)state;
    char out[16384], prefix[320], unit[400], env[400];
    if (access("/usr/bin/systemd-analyze", X_OK) != 0) {
        fprintf(stderr, "systemd-analyze not installed: unit checks skipped\n");
        skip();
    }
    snprintf(prefix, sizeof(prefix), "%s/install", tmpdir_path);
    const char *install[] = {PVTEST_CMAKE, "--install", PVTEST_BUILD_DIR, "--prefix", prefix, NULL};
    assert_int_equal(run_capture(install, NULL, out, sizeof(out)), 0);
    snprintf(unit, sizeof(unit), "%s/lib/systemd/system/palaverd.service", prefix);
    assert_int_equal(access(unit, R_OK), 0);
    /* The man page the unit names is installed (verify runs man on it). */
    snprintf(env, sizeof(env), "MANPATH=%s/share/man", prefix);
    const char *envs[] = {env, NULL};
    const char *verify[] = {"systemd-analyze", "verify", unit, NULL};
    int rc = run_capture(verify, envs, out, sizeof(out));
    if (rc != 0 || out[0])
        fprintf(stderr, "systemd-analyze verify: %s\n", out);
    assert_int_equal(rc, 0);
    assert_string_equal(out, ""); /* clean: not a single warning */
    const char *security[] = {"systemd-analyze", "security", "--offline=true", unit, NULL};
    assert_int_equal(run_capture(security, NULL, out, sizeof(out)), 0);
    const char *level = strstr(out, "Overall exposure level for palaverd.service: ");
    assert_non_null(level);
    double score = atof(level + strlen("Overall exposure level for palaverd.service: "));
    fprintf(stderr, "systemd-analyze security: exposure %.1f\n", score);
    assert_true(score <= 2.0);
    /* The installed sample config is there and valid. */
    snprintf(unit, sizeof(unit), "%s/etc/palaver/palaverd.conf", prefix);
    const char *check[] = {PALAVERD_PATH, "--config", unit, "--check-config", NULL};
    assert_int_equal(run_capture(check, NULL, out, sizeof(out)), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_file_precedence_and_check),
        cmocka_unit_test(test_notify_status_watchdog_stopping),
        cmocka_unit_test(test_sighup_reload),
        cmocka_unit_test(test_healthz_and_metrics),
        cmocka_unit_test(test_installed_unit),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
