/* Integration: a smoke run of the bench harness against a real palaverd,
 * so the harness keeps working. It asserts what the harness measures:
 * every acknowledged message reached every other reader, once, in order,
 * and never came back to its sender. (Speed is not asserted here; the
 * figures come from full bench runs, see bench/README.md.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "pvtest.h"

static void test_bench_smoke(void **state)
{
    (void)state;
    struct srv s;
    char url[64], pid[16], out[512];
    const char *args[] = {
        "--max-per-ip", "0", "--rate-limit", "0", "--byte-rate", "0", NULL}; /* as bench/run.sh */
    assert_int_equal(srv_start(&s, args), 0);
    snprintf(url, sizeof(url), "ws://127.0.0.1:%d/ws", s.port);
    snprintf(pid, sizeof(pid), "%d", (int)s.pid);
    snprintf(out, sizeof(out), "%s/bench-smoke-%d.jsonl", PVTEST_LOG_DIR, (int)getpid());
    unlink(out);
    pid_t child = fork();
    if (child == 0) {
        execl(PALAVER_BENCH_PATH, PALAVER_BENCH_PATH, "--url", url, "--clients", "30", "--senders",
              "3", "--rate", "200", "--duration", "1", "--subprotocol", "sample-protocol",
              "--broker-pid", pid, "--label", "smoke", "--json", out, (char *)NULL);
        _exit(127);
    }
    int status;
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);

    json_t *r = json_load_file(out, 0, NULL);
    assert_non_null(r);
    assert_int_equal(json_integer_value(json_object_get(r, "connected")), 30);
    long long acked = json_integer_value(json_object_get(r, "acked"));
    assert_true(acked >= 3 * 100); /* 3 senders x 200/s x 1 s, with slack */
    assert_int_equal(json_integer_value(json_object_get(r, "delivered")), acked * 29);
    assert_true(json_real_value(json_object_get(r, "ratio")) == 1.0);
    assert_int_equal(json_integer_value(json_object_get(r, "gaps")), 0);
    assert_int_equal(json_integer_value(json_object_get(r, "dups")), 0);
    assert_int_equal(json_integer_value(json_object_get(r, "echoes")), 0);
    assert_true(json_integer_value(json_object_get(r, "broker_rss_kb")) > 0);
    json_decref(r);
    assert_int_equal(srv_stop(&s), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bench_smoke),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
