/* Unit tests: the SQLite history store (store.c) -- group commit, seq
 * kept across a reopen, range and before queries, retention, and a full
 * database reported as a failure with no false "committed". */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "palaver/frame.h"
#include "palaver/store.h"

static char dir[128];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/palaver-store-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd);
}

static struct pv_store *open_store(const char *sub, unsigned keep, unsigned max_pages)
{
    char path[200], err[256] = "";
    snprintf(path, sizeof(path), "%s/%s", dir, sub);
    struct pv_store_options o = {.keep = keep, .max_pages = max_pages};
    struct pv_store *s = pv_store_open(path, &o, err, sizeof(err));
    if (!s)
        fprintf(stderr, "open: %s\n", err);
    assert_non_null(s);
    return s;
}

static void append(struct pv_store *s, uint64_t seq, size_t size)
{
    struct pv_store_msg *m = calloc(1, sizeof(*m));
    m->seq = seq;
    m->server_date = 1700000000000 + (int64_t)seq;
    char *json = malloc(size + 64);
    int n = snprintf(json, size + 64, "{\"type\":\"message\",\"seq\":%llu,\"text\":\"",
                     (unsigned long long)seq);
    memset(json + n, 'x', size);
    memcpy(json + n + size, "\"}", 3);
    m->frame = pv_frame_new(PV_WS_OP_TEXT, json, (size_t)n + size + 2);
    free(json);
    pv_store_append(s, m);
}

/* Waits on the commit eventfd until `seq` is committed (or failure). */
static bool committed(struct pv_store *s, uint64_t seq)
{
    for (int i = 0; i < 300 && pv_store_committed(s) < seq && !pv_store_failure(s); i++) {
        struct pollfd p = {.fd = pv_store_commit_fd(s), .events = POLLIN};
        if (poll(&p, 1, 100) > 0) {
            uint64_t v;
            ssize_t r = read(p.fd, &v, sizeof(v));
            (void)r;
        }
    }
    return pv_store_committed(s) >= seq;
}

struct got {
    uint64_t seq[64];
    int n;
};

static void collect(void *ud, uint64_t seq, int64_t date, const char *json, size_t len)
{
    struct got *g = ud;
    (void)date;
    assert_true(len > 10 && json[0] == '{');
    if (g->n < 64)
        g->seq[g->n++] = seq;
}

static void test_group_commit_and_reopen(void **state)
{
    (void)state;
    enum { N = 20000 };
    struct pv_store *s = open_store("a", 0, 0);
    assert_int_equal(pv_store_last_seq(s), 0);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (uint64_t i = 1; i <= N; i++)
        append(s, i, 100);
    assert_true(committed(s, N));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    uint64_t tx = pv_store_transactions(s);
    /* Group commit: far fewer transactions (each an fsync) than messages. */
    fprintf(stderr, "store: %d messages of ~150 bytes committed in %.3f s (%.0f/s) in %llu "
                    "transactions\n", N, secs, N / secs, (unsigned long long)tx);
    assert_true(tx >= 1 && tx < N);
    assert_null(pv_store_failure(s));
    /* One at a time, each waited for: one fsync'd transaction each. */
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (uint64_t i = N + 1; i <= N + 200; i++) {
        append(s, i, 100);
        assert_true(committed(s, i));
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    fprintf(stderr, "store: 200 single-message commits in %.3f s (%.0f commits/s, %.2f ms each)\n",
            secs, 200 / secs, secs * 1000 / 200);
    assert_int_equal(pv_store_transactions(s), tx + 200);
    pv_store_close(s);

    /* Reopened: seq continues from what was stored; queries work. */
    s = open_store("a", 0, 0);
    assert_int_equal(pv_store_last_seq(s), N + 200);
    struct got g = {0};
    assert_int_equal(pv_store_range(s, N - 5, 5, collect, &g), 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(g.seq[i], N - 4 + (uint64_t)i);
    g.n = 0;
    assert_int_equal(pv_store_before(s, 50, 5, collect, &g), 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(g.seq[i], 45 + (uint64_t)i); /* oldest first */
    g.n = 0;
    assert_int_equal(pv_store_range(s, N + 200, 10, collect, &g), 0);
    pv_store_close(s);
}

static void test_retention(void **state)
{
    (void)state;
    struct pv_store *s = open_store("b", 100, 0);
    for (uint64_t i = 1; i <= 1000; i++)
        append(s, i, 20);
    assert_true(committed(s, 1000));
    struct got g = {0};
    assert_int_equal(pv_store_before(s, 1001, 64, collect, &g), 64);
    assert_int_equal(pv_store_range(s, 0, 1000, collect, &(struct got){0}), 100);
    pv_store_close(s);
}

static void test_full_database_is_a_failure_not_a_commit(void **state)
{
    (void)state;
    /* A database limited to 40 pages (4 KiB each) fills up quickly. */
    struct pv_store *s = open_store("c", 0, 40);
    for (uint64_t i = 1; i <= 5; i++)
        append(s, i, 100);
    assert_true(committed(s, 5));
    for (uint64_t i = 6; i <= 3000; i++)
        append(s, i, 1000);
    assert_false(committed(s, 3000));
    const char *why = pv_store_failure(s);
    assert_non_null(why);
    assert_non_null(strstr(why, "full"));
    uint64_t c = pv_store_committed(s);
    assert_true(c >= 5 && c < 3000);
    pv_store_close(s);
    /* What was reported committed is there, and nothing after it. */
    s = open_store("c", 0, 0);
    assert_int_equal(pv_store_last_seq(s), c);
    pv_store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_group_commit_and_reopen),
        cmocka_unit_test(test_retention),
        cmocka_unit_test(test_full_database_is_a_failure_not_a_commit),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
