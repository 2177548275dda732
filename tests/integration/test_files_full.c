/* test_files_full.c -- a disk that fills while an upload is being
 * written (issue 19, docs/files.md): the kernel refuses palaverd's write
 * part-way through, the upload is answered 507 `disk-full`, nothing of
 * it is left, the chat goes on, and the next upload that fits is stored.
 *
 * How the disk fills: palaverd runs with a file size limit of 2 MiB
 * (RLIMIT_FSIZE, as systemd's LimitFSIZE= sets it), so the kernel fails
 * the write that would pass it (EFBIG; palaverd ignores SIGXFSZ) -- a
 * real failed write(2) in the middle of a body, the same path as ENOSPC,
 * without needing root to mount a small filesystem. --files-reserve 0,
 * so the check before reading (statvfs) lets the upload start.
 *
 * Threads: one test thread. */
#include "people.h"

#include <dirent.h>
#include <sys/resource.h>
#include <sys/stat.h>

#define LIMIT (2 << 20)

static char ann[256], bob[256];

static int setup(void **state)
{
    (void)state;
    assert_true(tmpdir_make(dir, sizeof(dir), "full"));
    struct rlimit old, lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = (struct rlimit){.rlim_cur = LIMIT, .rlim_max = old.rlim_max};
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0); /* inherited by palaverd */
    const char *args[] = {
        "--data-dir", dir, "--registration", "open", "--max-upload", "8388608", "--files-reserve",
        "0",          NULL};
    int rc = srv_start(&server, args);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    assert_int_equal(rc, 0);
    account("ann", ann, sizeof(ann));
    account("bob", bob, sizeof(bob));
    return 0;
}

/* POST /api/files as hdr's account; the status, the body in out. */
static int upload(const char *hdr, const void *data, size_t n, char **out)
{
    char head[1024];
    snprintf(head, sizeof(head),
             "POST /api/files?room=lobby&name=big.bin HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
             "Content-Length: %zu\r\nConnection: close\r\n%s\r\n",
             server.port, n, hdr);
    size_t len;
    return http_raw(server.port, head, data, n, false, out, &len);
}

static int entries(const char *sub)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/files/%s", dir, sub);
    DIR *d = opendir(path);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        n += e->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

static void test_disk_fills_during_the_write(void **state)
{
    (void)state;
    struct wsc *a = open_as(ann, "/ws", NULL), *b = open_as(bob, "/ws", NULL);
    size_t n = 3 << 20;
    unsigned char *data = malloc(n);
    for (size_t i = 0; i < n; i++)
        data[i] = (unsigned char)(i * 2654435761u >> 13);
    char *out = NULL;
    assert_int_equal(upload(ann, data, n, &out), 507);
    assert_non_null(strstr(out, "\"error\":\"disk-full\""));
    free(out);
    assert_int_equal(entries("tmp"), 0); /* the part written is gone */
    assert_true(srv_log_has(&server, "disk is full"));
    /* The chat goes on, stored and relayed. */
    assert_true(say(a, NULL, "the disk filled but we talk") > 0);
    json_decref(until_text(b, "the disk filled but we talk", NULL));
    /* An upload that fits is stored whole. */
    out = NULL;
    assert_int_equal(upload(bob, data, 100000, &out), 201);
    free(out);
    assert_int_equal(entries("tmp"), 0);
    free(data);
    wsc_free(a);
    wsc_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_disk_fills_during_the_write),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
