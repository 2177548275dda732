/* test_files.c -- shared files against the real palaverd, libmagic and
 * SQLite (issue 19, docs/files.md): the upload and download round trip
 * with the SHA-256 checked, a 413 before the body is read, an upload cut
 * short leaving nothing, quotas and a full store answered clearly while
 * the chat goes on, hostile types served as attachments with the safe
 * headers, a private room's file refused to a non-member, path tricks;
 * files in messages with the previews the page made, who may attach
 * what, and a deleted message taking its files (and their bytes on
 * disk) with it.
 *
 * Threads: one test thread. */
#include "people.h"

#include <dirent.h>
#include <strings.h>
#include <openssl/sha.h>
#include <sqlite3.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define QUOTA 300000

static char ann[256], bob[256]; /* session headers */

static int setup(void **state)
{
    (void)state;
    assert_true(tmpdir_make(dir, sizeof(dir), "files"));
    char quota[32];
    snprintf(quota, sizeof(quota), "%d", QUOTA);
    const char *args[] = {"--data-dir",
                          dir,
                          "--registration",
                          "open",
                          "--max-upload",
                          "1048576",
                          "--upload-quota-day",
                          quota,
                          "--files-sweep",
                          "1",
                          NULL};
    assert_int_equal(srv_start(&server, args), 0);
    account("ann", ann, sizeof(ann));
    account("bob", bob, sizeof(bob));
    return 0;
}

/* A 1x1 PNG whose header says 640 x 480 (libmagic reads the header; it
 * decodes nothing, and neither does palaverd). */
static const unsigned char png[] = {
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48,
    0x44, 0x52, 0x00, 0x00, 0x02, 0x80, 0x00, 0x00, 0x01, 0xE0, 0x08, 0x06, 0x00, 0x00,
    0x00, 0x1F, 0x15, 0xC4, 0x89, 0x00, 0x00, 0x00, 0x0A, 0x49, 0x44, 0x41, 0x54, 0x78,
    0x9C, 0x63, 0x00, 0x01, 0x00, 0x00, 0x05, 0x00, 0x01, 0x0D, 0x0A, 0x2D, 0xB4, 0x00,
    0x00, 0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82};

struct answer {
    int status;
    char *raw; /* the whole answer */
    size_t len;
    json_t *json; /* its body, when JSON */
    const char *body;
    size_t body_len;
};

static void answer_free(struct answer *a)
{
    free(a->raw);
    json_decref(a->json);
    *a = (struct answer){0};
}

/* A header's value in the answer ("" if absent). */
static const char *header(const struct answer *a, const char *name, char *out, size_t n)
{
    out[0] = '\0';
    size_t nl = strlen(name);
    const char *p = a->raw ? strstr(a->raw, "\r\n") : NULL;
    while (p && p + 2 < a->body) {
        p += 2;
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ')
                v++;
            snprintf(out, n, "%.*s", (int)strcspn(v, "\r\n"), v);
            return out;
        }
        p = strstr(p, "\r\n");
    }
    return out;
}

static struct answer exchange(const char *head, const void *body, size_t n, bool hangup)
{
    struct answer a = {0};
    a.status = http_raw(server.port, head, body, n, hangup, &a.raw, &a.len);
    const char *end = a.raw ? strstr(a.raw, "\r\n\r\n") : NULL;
    a.body = end ? end + 4 : a.raw + a.len;
    a.body_len = (size_t)(a.raw + a.len - a.body);
    a.json = json_loadb(a.body, a.body_len, 0, NULL);
    return a;
}

/* POST /api/files as hdr's account (NULL: a guest). */
static struct answer upload(const char *hdr, const char *room, const char *name, const void *data,
                            size_t n, const char *extra)
{
    char head[2048];
    snprintf(head, sizeof(head),
             "POST /api/files?room=%s&name=%s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
             "Content-Length: %zu\r\nConnection: close\r\n%s%s\r\n",
             room, name, server.port, n, hdr ? hdr : "", extra ? extra : "");
    return exchange(head, data, n, false);
}

static struct answer download(const char *hdr, const char *path, const char *extra)
{
    char head[2048];
    snprintf(head, sizeof(head),
             "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n%s%s\r\n", path,
             server.port, hdr ? hdr : "", extra ? extra : "");
    return exchange(head, NULL, 0, false);
}

static void sha256_hex(const void *data, size_t n, char out[65])
{
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256(data, n, d);
    for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* Entries in <dir>/files/tmp and files stored under <dir>/files/<xx>/. */
static void count_files(int *tmp, int *stored)
{
    char path[512];
    *tmp = *stored = 0;
    snprintf(path, sizeof(path), "%s/files/tmp", dir);
    DIR *d = opendir(path);
    for (struct dirent *e; d && (e = readdir(d));)
        *tmp += e->d_name[0] != '.';
    if (d)
        closedir(d);
    snprintf(path, sizeof(path), "%s/files", dir);
    d = opendir(path);
    for (struct dirent *e; d && (e = readdir(d));) {
        if (strlen(e->d_name) != 2)
            continue;
        char sub[sizeof(path) + 260]; /* the directory, "/", a d_name of up to 255 */
        snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
        DIR *s = opendir(sub);
        for (struct dirent *f; s && (f = readdir(s));)
            *stored += f->d_name[0] != '.';
        if (s)
            closedir(s);
    }
    if (d)
        closedir(d);
}

static void test_round_trip(void **state)
{
    (void)state;
    char want[65], h[512];
    sha256_hex(png, sizeof(png), want);
    struct answer a = upload(ann, "lobby", "beach.png", png, sizeof(png), NULL);
    if (a.status != 201)
        srv_dump_log(&server);
    assert_int_equal(a.status, 201);
    assert_string_equal(str(a.json, "hash"), want);
    assert_string_equal(str(a.json, "name"), "beach.png");
    assert_string_equal(str(a.json, "type"), "image/png");
    assert_true(json_is_true(json_object_get(a.json, "inline")));
    assert_int_equal(num(a.json, "size"), (long long)sizeof(png));
    assert_int_equal(num(a.json, "width"), 640);
    assert_int_equal(num(a.json, "height"), 480);
    char path[64];
    snprintf(path, sizeof(path), "/files/%s", str(a.json, "id"));
    assert_string_equal(header(&a, "Location", h, sizeof(h)), path);
    answer_free(&a);

    struct answer d = download(bob, path, NULL);
    assert_int_equal(d.status, 200);
    assert_int_equal(d.body_len, sizeof(png));
    assert_memory_equal(d.body, png, sizeof(png));
    assert_string_equal(header(&d, "Content-Type", h, sizeof(h)), "image/png");
    assert_string_equal(header(&d, "X-Content-Type-Options", h, sizeof(h)), "nosniff");
    assert_string_equal(header(&d, "Content-Security-Policy", h, sizeof(h)),
                        "sandbox; default-src 'none'");
    assert_string_equal(header(&d, "Cross-Origin-Resource-Policy", h, sizeof(h)), "same-origin");
    assert_non_null(strstr(header(&d, "Cache-Control", h, sizeof(h)), "immutable"));
    assert_non_null(strstr(header(&d, "Content-Disposition", h, sizeof(h)), "inline;"));
    answer_free(&d);

    /* One range (video seeking); one that cannot be served; ETag revalidation. */
    d = download(bob, path, "Range: bytes=1-3\r\n");
    assert_int_equal(d.status, 206);
    assert_int_equal(d.body_len, 3);
    assert_memory_equal(d.body, png + 1, 3);
    assert_string_equal(header(&d, "Content-Range", h, sizeof(h)), "bytes 1-3/67");
    answer_free(&d);
    d = download(bob, path, "Range: bytes=500-\r\n");
    assert_int_equal(d.status, 416);
    answer_free(&d);
    char inm[128];
    snprintf(inm, sizeof(inm), "If-None-Match: \"%s\"\r\n", want);
    d = download(bob, path, inm);
    assert_int_equal(d.status, 304);
    assert_int_equal(d.body_len, 0);
    answer_free(&d);

    /* The same bytes again: another attachment, the same content, stored once. */
    int tmp0, stored0, tmp1, stored1;
    count_files(&tmp0, &stored0);
    a = upload(bob, "lobby", "copy.png", png, sizeof(png), NULL);
    assert_int_equal(a.status, 201);
    assert_string_equal(str(a.json, "hash"), want);
    assert_string_not_equal(str(a.json, "id"), path + 7);
    answer_free(&a);
    count_files(&tmp1, &stored1);
    assert_int_equal(stored1, stored0);
    assert_int_equal(tmp1, 0);
}

/* 413 before the body is read: only the head is sent, and the answer
 * comes at once -- a server that waited for the body would not answer. */
static void test_too_large_refused_unread(void **state)
{
    (void)state;
    char head[512];
    snprintf(head, sizeof(head),
             "POST /api/files?name=big.iso HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
             "Content-Length: 104857600\r\n%s\r\n",
             server.port, ann);
    char first[2048];
    /* The answer comes while the client still owes 100 MB: nothing waited
     * for the body (a server reading it would answer only after it). */
    assert_int_equal(http_first(server.port, head, first, sizeof(first), 5000), 413);
    assert_non_null(strstr(first, "\"too-large\""));
    struct answer a;
    /* No Content-Length (chunked): 411. */
    snprintf(head, sizeof(head),
             "POST /api/files HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nTransfer-Encoding: chunked\r\n"
             "%s\r\n",
             server.port, ann);
    a = exchange(head, "5\r\nhello\r\n0\r\n\r\n", 15, false);
    assert_int_equal(a.status, 411);
    answer_free(&a);
}

/* A client gone mid-upload: 400, nothing on disk, nothing recorded. */
static void test_truncated_upload_leaves_nothing(void **state)
{
    (void)state;
    int tmp0, stored0, tmp1, stored1;
    count_files(&tmp0, &stored0);
    char head[512], *body = calloc(1, 5000);
    snprintf(head, sizeof(head),
             "POST /api/files?name=half.bin HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
             "Content-Length: 200000\r\n%s\r\n",
             server.port, ann);
    struct answer a = exchange(head, body, 5000, true);
    assert_int_equal(a.status, 400);
    assert_string_equal(str(a.json, "error"), "truncated");
    answer_free(&a);
    free(body);
    count_files(&tmp1, &stored1);
    assert_int_equal(tmp1, 0);
    assert_int_equal(stored1, stored0);
    assert_true(srv_log_wait(&server, "failed: the upload ended before its Content-Length", T));
}

/* Whatever the name or the client's Content-Type says, only the bytes
 * decide; nothing but raster images, audio and video is inline. */
static void test_hostile_types_are_attachments(void **state)
{
    (void)state;
    const char *svg = "<?xml version=\"1.0\"?><svg xmlns=\"http://www.w3.org/2000/svg\">"
                      "<script>alert(document.cookie)</script></svg>";
    const char *html = "<!DOCTYPE html><html><body><script>alert(1)</script></body></html>";
    struct {
        const char *name, *body, *extra;
    } cases[] = {
        {"cat.svg", svg, NULL},
        {"page.html", html, "Content-Type: text/html\r\n"},
        {"photo.png", html, "Content-Type: image/png\r\n"}, /* lies about itself */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct answer a = upload(ann, "lobby", cases[i].name, cases[i].body, strlen(cases[i].body),
                                 cases[i].extra);
        assert_int_equal(a.status, 201);
        assert_false(json_is_true(json_object_get(a.json, "inline")));
        assert_string_equal(str(a.json, "type"), "application/octet-stream");
        char path[64], h[512];
        snprintf(path, sizeof(path), "/files/%s", str(a.json, "id"));
        answer_free(&a);
        struct answer d = download(bob, path, NULL);
        assert_int_equal(d.status, 200);
        assert_string_equal(header(&d, "Content-Type", h, sizeof(h)), "application/octet-stream");
        assert_non_null(strstr(header(&d, "Content-Disposition", h, sizeof(h)), "attachment;"));
        assert_string_equal(header(&d, "X-Content-Type-Options", h, sizeof(h)), "nosniff");
        assert_string_equal(header(&d, "Content-Security-Policy", h, sizeof(h)),
                            "sandbox; default-src 'none'");
        answer_free(&d);
    }
}

/* A private room's file: its members only; a guess gets what a missing
 * file gets. Uploading to a room one is not in, as a guest, or from
 * another site's page is refused. */
static void test_who_may(void **state)
{
    (void)state;
    struct wsc *a = open_as(ann, "/ws", NULL);
    send_json(a, "{\"type\":\"create\",\"room\":\"vault\",\"kind\":\"private\"}");
    json_decref(wsc_expect(a, "room", T));
    /* A room's page is read from the database once its creation is
     * committed: after it, the upload finds the room stored. */
    json_decref(ask(a, "history", "{\"type\":\"history\",\"room\":\"vault\"}"));
    struct answer u = upload(ann, "vault", "plans.png", png, sizeof(png), NULL);
    assert_int_equal(u.status, 201);
    char path[64];
    snprintf(path, sizeof(path), "/files/%s", str(u.json, "id"));
    answer_free(&u);
    struct answer d = download(ann, path, NULL);
    assert_int_equal(d.status, 200);
    answer_free(&d);
    d = download(bob, path, NULL);
    assert_int_equal(d.status, 404);
    answer_free(&d);
    d = download(NULL, path, NULL);
    assert_int_equal(d.status, 404);
    answer_free(&d);
    d = download(bob, "/files/AAAAAAAAAAAAAAAAAAAAAA", NULL);
    assert_int_equal(d.status, 404);
    answer_free(&d);

    u = upload(bob, "vault", "x.png", png, sizeof(png), NULL);
    assert_int_equal(u.status, 403);
    assert_string_equal(str(u.json, "error"), "not-a-member");
    answer_free(&u);
    u = upload(bob, "no-such-room", "x.png", png, sizeof(png), NULL);
    assert_int_equal(u.status, 403);
    assert_string_equal(str(u.json, "error"), "not-a-member");
    answer_free(&u);
    u = upload(NULL, "lobby", "x.png", png, sizeof(png), NULL);
    assert_int_equal(u.status, 403);
    assert_string_equal(str(u.json, "error"), "forbidden");
    answer_free(&u);
    u = upload(ann, "lobby", "x.png", png, sizeof(png), "Origin: http://evil.example\r\n");
    assert_int_equal(u.status, 403);
    assert_string_equal(str(u.json, "error"), "bad-origin");
    answer_free(&u);
    wsc_free(a);
}

/* Ids are checked by shape; names are never paths. */
static void test_path_tricks(void **state)
{
    (void)state;
    const char *paths[] = {"/files/../../etc/passwd",
                           "/files/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
                           "/files/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
                           "/files/",
                           "/files/AAAAAAAAAAAAAAAAAAAA/.",
                           "/files/AAAAAAAAAAAAAAAAAAAAAA/x"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        struct answer d = download(ann, paths[i], NULL);
        assert_int_not_equal(d.status, 200);
        assert_null(strstr(d.raw ? d.raw : "", "root:"));
        answer_free(&d);
    }
    struct answer u = upload(ann, "lobby", "..%2F..%2F.ssh%2Fauthorized_keys", "key", 3, NULL);
    assert_int_equal(u.status, 201);
    assert_string_equal(str(u.json, "name"), "authorized_keys");
    answer_free(&u);
    char ssh[512];
    struct stat st;
    snprintf(ssh, sizeof(ssh), "%s/../.ssh/authorized_keys", dir);
    assert_int_not_equal(stat(ssh, &st), 0);
}

/* A person's day and the store's room: refused clearly, before reading;
 * the chat goes on. */
static void test_quota(void **state)
{
    (void)state;
    size_t n = QUOTA / 2 + 1000;
    unsigned char *big = malloc(n);
    for (size_t i = 0; i < n; i++)
        big[i] = (unsigned char)(i * 7919 + 13);
    struct answer a = upload(bob, "lobby", "one.bin", big, n, NULL);
    assert_int_equal(a.status, 201);
    answer_free(&a);
    big[0] ^= 1; /* other bytes: a second file of the same size */
    a = upload(bob, "lobby", "two.bin", big, n, NULL);
    assert_int_equal(a.status, 507);
    assert_string_equal(str(a.json, "error"), "quota");
    answer_free(&a);
    free(big);
    struct wsc *b = open_as(bob, "/ws", NULL);
    assert_true(say(b, NULL, "still chatting") > 0);
    wsc_free(b);
}


/* Bytes no other test uploads: a PNG header (640 x 480) then `tag`. */
static unsigned char *unique_png(const char *tag, size_t *n)
{
    *n = sizeof(png) + strlen(tag);
    unsigned char *b = malloc(*n);
    memcpy(b, png, sizeof(png));
    memcpy(b + sizeof(png), tag, strlen(tag));
    return b;
}

/* Whether <dir>/files/<xx>/<hash> exists. */
static bool stored(const char *hash)
{
    char path[512];
    struct stat st;
    snprintf(path, sizeof(path), "%s/files/%.2s/%s", dir, hash, hash);
    return stat(path, &st) == 0;
}

/* A message names its files; the one the others get describes them, with
 * the previews its page uploaded; history keeps them. Only one's own
 * uploads into that room, once, and previews only of one's own unsent
 * original, only raster images of at most 1280 px. */
static void test_files_in_messages(void **state)
{
    (void)state;
    size_t n;
    unsigned char *photo = unique_png("photo-1", &n);
    struct answer u = upload(ann, "lobby", "beach.png", photo, n, NULL);
    assert_int_equal(u.status, 201);
    char id[32], pid[32], path[80];
    snprintf(id, sizeof(id), "%s", str(u.json, "id"));
    answer_free(&u);
    /* Previews: of ann's own original, images only, at most two. */
    snprintf(path, sizeof(path), "lobby&preview=%s", id);
    u = upload(bob, path, "p.png", png, sizeof(png), NULL);
    assert_int_equal(u.status, 409);
    assert_string_equal(str(u.json, "error"), "bad-preview");
    answer_free(&u);
    u = upload(ann, path, "p.html", "<html><script>alert(1)</script></html>", 38, NULL);
    assert_int_equal(u.status, 415);
    assert_string_equal(str(u.json, "error"), "bad-preview");
    answer_free(&u);
    unsigned char *small = unique_png("preview-1", &n);
    u = upload(ann, path, "p.png", small, n, NULL);
    assert_int_equal(u.status, 201);
    assert_string_equal(str(u.json, "previewOf"), id);
    snprintf(pid, sizeof(pid), "%s", str(u.json, "id"));
    answer_free(&u);
    u = upload(ann, path, "p2.png", png, sizeof(png), NULL);
    assert_int_equal(u.status, 201);
    answer_free(&u);
    u = upload(ann, path, "p3.png", png, sizeof(png), NULL);
    assert_int_equal(u.status, 409);
    answer_free(&u);
    free(small);
    free(photo);

    struct wsc *a = open_as(ann, "/ws", NULL), *b = open_as(bob, "/ws", NULL);
    /* Refusals first: each answered, nothing relayed. */
    send_json(a,
              "{\"type\":\"message\",\"msgId\":1,\"text\":\"x\",\"files\":[\"../../etc/passwd\"]}");
    expect_error(a, "bad-files");
    send_json(a, "{\"type\":\"message\",\"msgId\":1,\"text\":\"x\",\"files\":[\"%s\",\"%s\"]}", id,
              id);
    expect_error(a, "bad-files");
    send_json(a, "{\"type\":\"message\",\"msgId\":1,\"files\":[]}");
    expect_error(a, "bad-files");
    send_json(a, "{\"type\":\"message\",\"msgId\":1,\"text\":\"x\",\"files\":[\"%s\"]}", pid);
    expect_error(a, "bad-files"); /* a preview on its own */
    send_json(b, "{\"type\":\"message\",\"msgId\":1,\"text\":\"mine now\",\"files\":[\"%s\"]}", id);
    expect_error(b, "bad-files"); /* ann's upload */
    /* The message: files and no text. */
    send_json(a, "{\"type\":\"message\",\"msgId\":2,\"files\":[\"%s\"]}", id);
    json_t *ack = wsc_expect(a, "ack", T);
    assert_non_null(ack);
    long long seq = num(ack, "seq");
    json_decref(ack);
    json_t *m = wsc_expect(b, "message", T);
    assert_non_null(m);
    assert_int_equal(num(m, "seq"), seq);
    assert_string_equal(str(m, "text"), "");
    json_t *files = json_object_get(m, "files");
    assert_int_equal(json_array_size(files), 1);
    json_t *f0 = json_array_get(files, 0);
    assert_string_equal(str(f0, "id"), id);
    assert_string_equal(str(f0, "name"), "beach.png");
    assert_string_equal(str(f0, "type"), "image/png");
    assert_true(json_is_true(json_object_get(f0, "inline")));
    assert_int_equal(num(f0, "width"), 640);
    assert_int_equal(num(f0, "height"), 480);
    json_t *pv = json_object_get(f0, "previews");
    assert_int_equal(json_array_size(pv), 2);
    char *pvs = json_dumps(pv, 0);
    assert_non_null(strstr(pvs, pid));
    free(pvs);
    json_decref(m);
    /* Once in a message, an upload is that message's. */
    send_json(a, "{\"type\":\"message\",\"msgId\":3,\"text\":\"again\",\"files\":[\"%s\"]}", id);
    expect_error(a, "bad-files");
    snprintf(path, sizeof(path), "lobby&preview=%s", id);
    u = upload(ann, path, "late.png", png, sizeof(png), NULL);
    assert_int_equal(u.status, 409);
    answer_free(&u);
    /* A file shared into a room goes with messages of that room only. */
    send_json(a, "{\"type\":\"create\",\"room\":\"attic\"}");
    json_decref(wsc_expect(a, "room", T));
    json_decref(ask(a, "history", "{\"type\":\"history\",\"room\":\"attic\"}"));
    u = upload(ann, "attic", "attic.png", png, sizeof(png), NULL);
    assert_int_equal(u.status, 201);
    send_json(a, "{\"type\":\"message\",\"msgId\":4,\"text\":\"here?\",\"files\":[\"%s\"]}",
              str(u.json, "id"));
    expect_error(a, "bad-files");
    answer_free(&u);
    wsc_free(b);
    /* History keeps the descriptions: a newcomer's join history has them. */
    json_t *got;
    b = open_as(bob, "/ws", &got);
    bool seen = false;
    for (size_t i = 0; i < json_array_size(got); i++) {
        json_t *j = json_array_get(got, i);
        if (num(j, "seq") == seq && json_array_size(json_object_get(j, "files")) == 1)
            seen = true;
    }
    assert_true(seen);
    json_decref(got);
    wsc_free(a);
    wsc_free(b);
}

/* Deleting a message takes its files: the ids answer 404 once the
 * deletion is stored, and the sweep removes the bytes from the disk --
 * unless another upload still refers to the same content. */
static void test_deleted_message_takes_its_files(void **state)
{
    (void)state;
    size_t dn, n;
    unsigned char *doc = unique_png("delete-me", &dn), *pre = unique_png("delete-me-preview", &n);
    struct answer u = upload(ann, "lobby", "gone.png", doc, dn, NULL);
    assert_int_equal(u.status, 201);
    char id[32], hash[65], pid[32], phash[65], path[80], ppath[80];
    snprintf(id, sizeof(id), "%s", str(u.json, "id"));
    snprintf(hash, sizeof(hash), "%s", str(u.json, "hash"));
    answer_free(&u);
    snprintf(path, sizeof(path), "lobby&preview=%s", id);
    u = upload(ann, path, "gone-preview.png", pre, n, NULL);
    assert_int_equal(u.status, 201);
    snprintf(pid, sizeof(pid), "%s", str(u.json, "id"));
    snprintf(phash, sizeof(phash), "%s", str(u.json, "hash"));
    answer_free(&u);
    /* The same bytes as the preview, kept by another (unsent) upload of bob. */
    u = upload(bob, "lobby", "keep.png", pre, n, NULL);
    assert_int_equal(u.status, 201);
    answer_free(&u);
    free(doc);
    free(pre);
    struct wsc *a = open_as(ann, "/ws", NULL);
    send_json(a, "{\"type\":\"message\",\"msgId\":5,\"text\":\"oops\",\"files\":[\"%s\"]}", id);
    json_t *ack = wsc_expect(a, "ack", T); /* sent after the commit */
    assert_non_null(ack);
    long long seq = num(ack, "seq");
    json_decref(ack);
    snprintf(path, sizeof(path), "/files/%s", id);
    snprintf(ppath, sizeof(ppath), "/files/%s", pid);
    struct answer d = download(bob, path, NULL);
    assert_int_equal(d.status, 200);
    answer_free(&d);
    send_json(a, "{\"type\":\"delete\",\"msgId\":6,\"target\":%lld}", seq);
    json_decref(wsc_expect(a, "delete", T));
    /* Relayed at once, stored by the writer's next commit: until then
     * the file is still the message's. */
    int64_t deadline = mono_ms() + T;
    for (;;) {
        d = download(bob, path, NULL);
        int status = d.status;
        answer_free(&d);
        if (status == 404 || mono_ms() > deadline) {
            assert_int_equal(status, 404);
            break;
        }
        assert_int_equal(status, 200);
        poll(NULL, 0, 20);
    }
    d = download(ann, ppath, NULL);
    assert_int_equal(d.status, 404);
    answer_free(&d);
    /* The sweep (every second here) removes the original's bytes; the
     * preview's stay, bob's upload refers to them. */
    deadline = mono_ms() + 10000;
    while (stored(hash) && mono_ms() < deadline)
        poll(NULL, 0, 100);
    assert_false(stored(hash));
    assert_true(stored(phash));
    assert_true(srv_log_has(&server, "files: sweep removed"));
    wsc_free(a);
}

/* A bot publishes over HTTP with a file its account uploaded (the
 * personal access token's account must be the uploader). */
static void test_publish_with_files(void **state)
{
    (void)state;
    char out[8192], auth[256];
    assert_int_equal(post("/api/tokens", ann, "{\"name\":\"photo bot\"}", out, sizeof(out)), 200);
    const char *body = strstr(out, "\r\n\r\n");
    assert_non_null(body);
    json_t *t = json_loads(body + 4, 0, NULL);
    assert_non_null(t);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s\r\n", str(t, "token"));
    json_decref(t);
    size_t n;
    unsigned char *pic = unique_png("from the bot", &n);
    struct answer u = upload(ann, "lobby", "bot.png", pic, n, NULL);
    assert_int_equal(u.status, 201);
    char id[32], req[256];
    snprintf(id, sizeof(id), "%s", str(u.json, "id"));
    answer_free(&u);
    u = upload(bob, "lobby", "bobs.png", pic, n, NULL);
    assert_int_equal(u.status, 201);
    free(pic);
    struct wsc *b = open_as(bob, "/ws", NULL);
    snprintf(req, sizeof(req),
             "{\"type\":\"message\",\"text\":\"nightly chart\",\"files\":[\"%s\"]}",
             str(u.json, "id"));
    assert_int_equal(post("/api/messages", auth, req, out, sizeof(out)), 422); /* bob's upload */
    assert_non_null(strstr(out, "bad-files"));
    answer_free(&u);
    snprintf(req, sizeof(req),
             "{\"type\":\"message\",\"text\":\"nightly chart\",\"files\":[\"%s\"]}", id);
    assert_int_equal(post("/api/messages", auth, req, out, sizeof(out)), 200);
    json_t *m = until_text(b, "nightly chart", NULL);
    json_t *f0 = json_array_get(json_object_get(m, "files"), 0);
    assert_string_equal(str(f0, "id"), id);
    assert_string_equal(str(f0, "name"), "bot.png");
    json_decref(m);
    wsc_free(b);
}

/* An upload that has begun and waits for the rest of its body: its
 * head and `n` bytes sent, the socket held open. */
static int upload_begun(const char *hdr, size_t announced, size_t n)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)server.port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    char head[1024], body[4096] = {0};
    int k = snprintf(head, sizeof(head),
                     "POST /api/files?room=lobby&name=slow.bin HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n%s\r\n",
                     server.port, announced, hdr);
    assert_int_equal(write(fd, head, (size_t)k), k);
    assert_int_equal(write(fd, body, n), (ssize_t)n);
    return fd;
}

/* One address holds at most --upload-slots-per-ip (2) of the slots: a
 * third upload from it is told to wait, and is taken once one ends. */
static void test_slots_per_address(void **state)
{
    (void)state;
    int before = srv_log_count(&server, "receiving \"slow.bin\"");
    int a = upload_begun(ann, 100000, 1000), b = upload_begun(ann, 100000, 1000);
    /* Both hold their slot once palaverd says it is receiving them. */
    int64_t deadline = mono_ms() + T;
    while (srv_log_count(&server, "receiving \"slow.bin\"") < before + 2 && mono_ms() < deadline)
        poll(NULL, 0, 10);
    assert_int_equal(srv_log_count(&server, "receiving \"slow.bin\""), before + 2);
    struct answer u = upload(ann, "lobby", "third.png", png, sizeof(png), NULL);
    assert_int_equal(u.status, 503);
    assert_string_equal(str(u.json, "error"), "busy");
    assert_non_null(strstr(str(u.json, "message"), "uploads in progress"));
    answer_free(&u);
    assert_true(srv_log_has(&server, "(--upload-slots-per-ip)"));
    close(a); /* cut short: its slot is free again */
    deadline = mono_ms() + T;
    for (;;) {
        u = upload(ann, "lobby", "third.png", png, sizeof(png), NULL);
        if (u.status != 503 || mono_ms() > deadline)
            break;
        answer_free(&u);
        poll(NULL, 0, 20);
    }
    assert_int_equal(u.status, 201);
    answer_free(&u);
    close(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_too_large_refused_unread),
        cmocka_unit_test(test_truncated_upload_leaves_nothing),
        cmocka_unit_test(test_hostile_types_are_attachments),
        cmocka_unit_test(test_who_may),
        cmocka_unit_test(test_path_tricks),
        cmocka_unit_test(test_quota),
        cmocka_unit_test(test_files_in_messages),
        cmocka_unit_test(test_deleted_message_takes_its_files),
        cmocka_unit_test(test_slots_per_address),
        cmocka_unit_test(test_publish_with_files),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
