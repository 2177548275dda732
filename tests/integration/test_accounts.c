/* test_accounts.c -- accounts against the real palaverd and SQLite
 * (issue 15, the first part: accounts, sessions, the sign-in API, the
 * session cookie at the WebSocket handshake, names reserved from guests).
 *
 * Threads: one test thread. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pvtest.h"

#define T 5000
#define PASSWORD "correct horse battery"

static struct srv server;
static char dir[256];

/* palaverd --create-admin NAME with `password` on standard input. */
static int create_admin(const char *data_dir, const char *name, const char *password, char *out,
                        size_t n)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "printf '%%s\\n' '%s' | '%s' --config /dev/null --data-dir '%s' "
             "--create-admin '%s'",
             password, PALAVERD_PATH, data_dir, name);
    const char *argv[] = {"/bin/sh", "-c", cmd, NULL};
    return run_capture(argv, NULL, out, n);
}

/* A POST of `body` with the given extra header lines. */
static int post(const char *path, const char *type, const char *headers, const char *body,
                char *out, size_t n)
{
    char req[8192];
    snprintf(req, sizeof(req),
             "POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n%s%s%s%sContent-Length: %zu\r\n"
             "Connection: close\r\n\r\n%s",
             path, server.port, type ? "Content-Type: " : "", type ? type : "", type ? "\r\n" : "",
             headers ? headers : "", strlen(body), body);
    return http_request(server.port, req, out, n);
}

static int get(const char *path, const char *headers, char *out, size_t n)
{
    char req[2048];
    snprintf(req, sizeof(req),
             "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n%sConnection: close\r\n\r\n", path,
             server.port, headers ? headers : "");
    return http_request(server.port, req, out, n);
}

static json_t *body_json(const char *response)
{
    const char *b = strstr(response, "\r\n\r\n");
    return b ? json_loads(b + 4, 0, NULL) : NULL;
}

static const char *error_code(const char *response, char *code, size_t n)
{
    json_t *j = body_json(response);
    snprintf(code, n, "%s", j ? json_string_value(json_object_get(j, "error")) : "(none)");
    json_decref(j);
    return code;
}

/* Signs in (waiting out a throttle from an earlier test's failures, within
 * a bound); copies the session cookie's value to token. Returns the
 * final status. */
static int sign_in(const char *name, const char *password, char *token, size_t n, char *out,
                   size_t outsz)
{
    char body[256];
    snprintf(body, sizeof(body), "{\"name\":\"%s\",\"password\":\"%s\"}", name, password);
    int64_t deadline = mono_ms() + 20000;
    int status;
    while ((status = post("/api/login", "application/json", NULL, body, out, outsz)) == 429 &&
           mono_ms() < deadline)
        poll(NULL, 0, 200); /* Retry-After is whole seconds */
    if (token) {
        const char *c = strstr(out, "palaver_session=");
        snprintf(token, n, "%.*s", c ? (int)strcspn(c + 16, ";\r\n") : 0, c ? c + 16 : "");
    }
    return status;
}

static int setup(void **state)
{
    (void)state;
    char out[2048];
    assert_true(tmpdir_make(dir, sizeof(dir), "accounts"));
    assert_int_equal(create_admin(dir, "Alice", PASSWORD, out, sizeof(out)), 0);
    const char *args[] = {"--data-dir", dir, NULL};
    assert_int_equal(srv_start(&server, args), 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    int rc = srv_stop(&server);
    tmpdir_remove(dir);
    return rc == 0 ? 0 : -1;
}

/* --create-admin: once per name, compared as display names are (case,
 * width, look-alikes), a password of at least 8 bytes, a data directory. */
static void test_create_admin(void **state)
{
    (void)state;
    char out[2048];
    assert_int_not_equal(create_admin(dir, "ALICE", PASSWORD, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "exists"));
    assert_int_not_equal(create_admin(dir, "\xef\xbc\xa1lice", PASSWORD, out, sizeof(out)), 0);
    assert_int_not_equal(create_admin(dir, "bob", "short", out, sizeof(out)), 0);
    assert_non_null(strstr(out, "8 to 1024 bytes"));
    assert_int_not_equal(create_admin(dir, "guest-12ab", PASSWORD, out, sizeof(out)), 0);
    assert_int_equal(create_admin(dir, "Bob", "another long one", out, sizeof(out)), 0);
    const char *argv[] = {PALAVERD_PATH,    "--config", "/dev/null", "--data-dir", "",
                          "--create-admin", "carol",    NULL};
    assert_int_equal(run_capture(argv, NULL, out, sizeof(out)), 2);
    assert_non_null(strstr(out, "needs a data directory"));
}

/* Wrong password and unknown name get the same answer; a failure delays
 * the next attempt; the right password gets a session cookie with its
 * flags, which /api/me then knows. */
static void test_login_and_me(void **state)
{
    (void)state;
    char out[4096], a[64], b[64], token[128];
    assert_int_equal(post("/api/login", "application/json", NULL,
                          "{\"name\":\"alice\",\"password\":\"not the one\"}", out, sizeof(out)),
                     401);
    assert_string_equal(error_code(out, a, sizeof(a)), "bad-credentials");
    assert_null(strstr(out, "Set-Cookie"));
    /* At once again: throttled (429 with Retry-After), the password not even checked. */
    assert_int_equal(post("/api/login", "application/json", NULL,
                          "{\"name\":\"alice\",\"password\":\"" PASSWORD "\"}", out, sizeof(out)),
                     429);
    assert_non_null(strstr(out, "Retry-After: "));
    /* The address is throttled too, whatever the name (and X-Forwarded-For
     * is not trusted: the address is the socket's). */
    assert_int_equal(post("/api/login", "application/json", "X-Forwarded-For: 10.9.9.9\r\n",
                          "{\"name\":\"nobody\",\"password\":\"not the one\"}", out, sizeof(out)),
                     429);
    /* The unknown name, once the delay is over: the same answer as a wrong password. */
    int status;
    int64_t deadline = mono_ms() + 20000;
    while ((status = post("/api/login", "application/json", NULL,
                          "{\"name\":\"nobody\",\"password\":\"not the one\"}", out,
                          sizeof(out))) == 429 &&
           mono_ms() < deadline)
        poll(NULL, 0, 200);
    assert_int_equal(status, 401);
    assert_string_equal(error_code(out, b, sizeof(b)), a);

    assert_int_equal(sign_in("ALICE", PASSWORD, token, sizeof(token), out, sizeof(out)), 200);
    assert_int_equal(strlen(token), 43);
    const char *cookie = strstr(out, "Set-Cookie: ");
    assert_non_null(cookie);
    char line[256];
    snprintf(line, sizeof(line), "%.*s", (int)strcspn(cookie, "\r\n"), cookie);
    assert_non_null(strstr(line, "; HttpOnly"));
    assert_non_null(strstr(line, "; SameSite=Lax"));
    assert_non_null(strstr(line, "; Path=/"));
    json_t *j = body_json(out);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "user"), "name")),
                        "Alice");
    json_decref(j);
    assert_null(strstr(out, PASSWORD)); /* never echoed */

    char hdr[256];
    snprintf(hdr, sizeof(hdr), "Cookie: other=1; palaver_session=%s\r\n", token);
    assert_int_equal(get("/api/me", hdr, out, sizeof(out)), 200);
    j = body_json(out);
    json_t *u = json_object_get(j, "user");
    assert_string_equal(json_string_value(json_object_get(u, "name")), "Alice");
    assert_string_equal(json_string_value(json_object_get(u, "role")), "admin");
    json_decref(j);
    /* A guest: no user. A forged cookie: no user, and the cookie cleared. */
    assert_int_equal(get("/api/me", NULL, out, sizeof(out)), 200);
    assert_non_null(strstr(out, "\"user\":null"));
    assert_null(strstr(out, "Set-Cookie"));
    assert_int_equal(get("/api/me",
                         "Cookie: palaver_session=forged-forged-forged-forged-forged-fo\r\n", out,
                         sizeof(out)),
                     200);
    assert_non_null(strstr(out, "\"user\":null"));
    assert_non_null(strstr(out, "palaver_session=; Max-Age=0"));
    /* No password or token in the log. */
    assert_false(srv_log_has(&server, PASSWORD));
    assert_false(srv_log_has(&server, token));
}

/* CSRF and bad bodies: every POST needs JSON's content type and, when an
 * Origin is sent, our own; bodies are bounded and validated. */
static void test_api_refusals(void **state)
{
    (void)state;
    char out[4096], code[64];
    const char *good = "{\"name\":\"alice\",\"password\":\"" PASSWORD "\"}";
    /* A cross-site form can send text/plain: refused before anything is read. */
    assert_int_equal(post("/api/login", "text/plain", NULL, good, out, sizeof(out)), 415);
    assert_int_equal(post("/api/login", NULL, NULL, good, out, sizeof(out)), 415);
    assert_int_equal(post("/api/login", "application/json", "Origin: http://evil.example\r\n", good,
                          out, sizeof(out)),
                     403);
    assert_string_equal(error_code(out, code, sizeof(code)), "bad-origin");
    assert_null(strstr(out, "Set-Cookie"));
    assert_int_equal(get("/api/login", NULL, out, sizeof(out)), 405);
    char big[6000];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(post("/api/login", "application/json", NULL, big, out, sizeof(out)), 413);
    assert_int_equal(post("/api/login", "application/json", NULL, "[1]", out, sizeof(out)), 400);
    assert_int_equal(post("/api/login", "application/json", NULL, "{\"name\":5}", out, sizeof(out)),
                     400);
    assert_int_equal(post("/api/logout", "text/plain", NULL, "{}", out, sizeof(out)), 415);
}

/* Reads a newcomer's id message ("you") and everything up to its
 * presence; an error among them (a refused ?name=) is copied to `error`. */
static json_t *join_you(struct wsc *c, char *error, size_t n)
{
    json_t *you = NULL;
    if (error)
        snprintf(error, n, "%s", "");
    for (;;) {
        json_t *j = wsc_recv_json(c, T);
        assert_non_null(j);
        const char *t = json_string_value(json_object_get(j, "type"));
        if (strcmp(t, "id") == 0)
            you = json_incref(json_object_get(j, "you"));
        else if (strcmp(t, "error") == 0 && error)
            snprintf(error, n, "%s", json_string_value(json_object_get(j, "code")));
        bool done = strcmp(t, "presence") == 0;
        json_decref(j);
        if (done)
            break;
    }
    assert_non_null(you);
    return you;
}

/* The session cookie at the handshake: the account's name and role in
 * `from`, decided by the server; guests cannot take an account's name in
 * any case, width or look; a cross-site page cannot use the cookie; a
 * revoked session opens nothing. */
static void test_websocket_identity(void **state)
{
    (void)state;
    char out[4096], token[128], hdr[256];
    assert_int_equal(sign_in("alice", PASSWORD, token, sizeof(token), out, sizeof(out)), 200);
    snprintf(hdr, sizeof(hdr), "Cookie: palaver_session=%s\r\n", token);

    struct wsc_opts ao = {.headers = hdr, .path = "/ws?name=mallory"};
    struct wsc *alice = wsc_open(server.port, &ao);
    assert_int_equal(alice->status, 101);
    char err[64];
    json_t *you = join_you(alice, err, sizeof(err));
    assert_string_equal(err, ""); /* ?name= is not an error for her: it is ignored */
    assert_string_equal(json_string_value(json_object_get(you, "name")), "Alice"); /* not ?name= */
    assert_string_equal(json_string_value(json_object_get(you, "role")), "admin");
    assert_int_equal(json_integer_value(json_object_get(you, "account")), 1);
    json_decref(you);

    struct wsc *guest = wsc_open(server.port, &(struct wsc_opts){.path = "/ws?name=ALICE"});
    assert_int_equal(guest->status, 101);
    you = join_you(guest, err, sizeof(err));
    assert_string_equal(json_string_value(json_object_get(you, "role")), "guest");
    assert_non_null(strstr(json_string_value(json_object_get(you, "name")), "guest-"));
    json_decref(you);
    assert_string_equal(err, "name-taken");
    /* Fullwidth "Ａlice" and a rename by hello: the same name. */
    assert_int_equal(wsc_send_text(guest, "{\"type\":\"hello\",\"name\":\"\xef\xbc\xa1lice\"}"), 0);
    json_t *e = wsc_expect(guest, "error", T);
    assert_non_null(e);
    assert_string_equal(json_string_value(json_object_get(e, "code")), "name-taken");
    json_decref(e);

    /* What alice says carries her account, to the guest. */
    assert_int_equal(wsc_send_chat(alice, 1, "hello from an account", ""), 0);
    json_t *m = wsc_expect(guest, "message", T);
    assert_non_null(m);
    json_t *from = json_object_get(m, "from");
    assert_string_equal(json_string_value(json_object_get(from, "name")), "Alice");
    assert_string_equal(json_string_value(json_object_get(from, "role")), "admin");
    assert_int_equal(json_integer_value(json_object_get(from, "account")), 1);
    json_decref(m);
    /* A guest's message says it is a guest's. */
    assert_int_equal(wsc_send_chat(guest, 1, "hi", ""), 0);
    m = wsc_expect(alice, "message", T);
    assert_non_null(m);
    assert_string_equal(json_string_value(json_object_get(json_object_get(m, "from"), "role")),
                        "guest");
    assert_null(json_object_get(json_object_get(m, "from"), "account"));
    json_decref(m);

    /* Cross-site WebSocket hijacking: a page elsewhere makes the browser
     * send the cookie; the Origin check refuses it first. */
    char xhdr[384];
    snprintf(xhdr, sizeof(xhdr), "%sOrigin: http://evil.example\r\n", hdr);
    struct wsc *x = wsc_open(server.port, &(struct wsc_opts){.headers = xhdr});
    assert_int_equal(x->status, 403);
    wsc_free(x);

    /* Sign out: the session is gone for the API and for new handshakes. */
    assert_int_equal(post("/api/logout", "application/json", hdr, "{}", out, sizeof(out)), 200);
    assert_non_null(strstr(out, "palaver_session=; Max-Age=0"));
    assert_int_equal(get("/api/me", hdr, out, sizeof(out)), 200);
    assert_non_null(strstr(out, "\"user\":null"));
    x = wsc_open(server.port, &(struct wsc_opts){.headers = hdr});
    assert_int_equal(x->status, 401);
    wsc_free(x);
    /* A forged token, well formed: refused the same way. */
    x = wsc_open(
        server.port,
        &(struct wsc_opts){
            .headers = "Cookie: palaver_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\r\n"});
    assert_int_equal(x->status, 401);
    wsc_free(x);
    wsc_free(alice);
    wsc_free(guest);
}

/* Sessions are in palaver.db: a restart keeps them. */
static void test_session_survives_restart(void **state)
{
    (void)state;
    char out[4096], token[128], hdr[256];
    assert_int_equal(sign_in("bob", "another long one", token, sizeof(token), out, sizeof(out)),
                     200);
    snprintf(hdr, sizeof(hdr), "Cookie: palaver_session=%s\r\n", token);
    assert_int_equal(srv_stop(&server), 0);
    const char *args[] = {"--data-dir", dir, NULL};
    assert_int_equal(srv_start(&server, args), 0);
    assert_int_equal(get("/api/me", hdr, out, sizeof(out)), 200);
    assert_non_null(strstr(out, "\"name\":\"Bob\""));
}

/* The one-time setup link: logged at a first start without an admin;
 * only that token makes the first admin, once; then it is spent and a
 * restart logs none. */
static void test_setup_link(void **state)
{
    (void)state;
    char d2[256], out[4096], code[64];
    struct srv s2 = {0};
    assert_true(tmpdir_make(d2, sizeof(d2), "setup"));
    const char *args[] = {"--data-dir", d2, NULL};
    assert_int_equal(srv_start(&s2, args), 0);
    /* The link is in the log, and only there. */
    FILE *f = fopen(s2.log, "r");
    assert_non_null(f);
    char line[1024], token[64] = "";
    while (fgets(line, sizeof(line), f)) {
        const char *p = strstr(line, "/setup#");
        if (p)
            snprintf(token, sizeof(token), "%.43s", p + 7);
    }
    fclose(f);
    assert_int_equal(strlen(token), 43);
    int port = server.port;
    server.port = s2.port; /* post() and get() talk to server.port */
    assert_int_equal(get("/setup", NULL, out, sizeof(out)), 302);
    assert_non_null(strstr(out, "Location: /setup.html"));
    char body[512];
    assert_int_equal(post("/api/setup", "application/json", NULL,
                          "{\"token\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\",\"name\":"
                          "\"root\",\"password\":\"" PASSWORD "\"}",
                          out, sizeof(out)),
                     403);
    assert_string_equal(error_code(out, code, sizeof(code)), "bad-token");
    /* A refused name does not spend the link. */
    snprintf(body, sizeof(body),
             "{\"token\":\"%s\",\"name\":\"guest-12ab\",\"password\":\"" PASSWORD "\"}", token);
    assert_int_equal(post("/api/setup", "application/json", NULL, body, out, sizeof(out)), 400);
    assert_string_equal(error_code(out, code, sizeof(code)), "bad-name");
    /* Cross-site: refused before the token is looked at. */
    snprintf(body, sizeof(body),
             "{\"token\":\"%s\",\"name\":\"Root\",\"password\":\"" PASSWORD "\"}", token);
    assert_int_equal(post("/api/setup", "application/json", "Origin: http://evil.example\r\n", body,
                          out, sizeof(out)),
                     403);
    assert_string_equal(error_code(out, code, sizeof(code)), "bad-origin");
    assert_int_equal(post("/api/setup", "application/json", NULL, body, out, sizeof(out)), 200);
    assert_non_null(strstr(out, "\"role\":\"admin\""));
    const char *c = strstr(out, "palaver_session=");
    assert_non_null(c);
    char hdr[256];
    snprintf(hdr, sizeof(hdr), "Cookie: palaver_session=%.43s\r\n", c + 16);
    assert_int_equal(get("/api/me", hdr, out, sizeof(out)), 200);
    assert_non_null(strstr(out, "\"name\":\"Root\""));
    /* Spent: the same token again is refused, with another name too. */
    snprintf(body, sizeof(body),
             "{\"token\":\"%s\",\"name\":\"Other\",\"password\":\"" PASSWORD "\"}", token);
    assert_int_equal(post("/api/setup", "application/json", NULL, body, out, sizeof(out)), 403);
    assert_false(srv_log_has(&s2, PASSWORD));
    /* A restart with an admin there logs no link. */
    assert_int_equal(srv_stop(&s2), 0);
    assert_int_equal(srv_start(&s2, args), 0);
    assert_false(srv_log_has(&s2, "/setup#"));
    server.port = port;
    assert_int_equal(srv_stop(&s2), 0);
    tmpdir_remove(d2);
}

/* Signs in and returns "Cookie: palaver_session=...\r\n" in hdr. */
static void session_header(const char *name, const char *password, char *hdr, size_t n)
{
    char out[4096], token[128];
    assert_int_equal(sign_in(name, password, token, sizeof(token), out, sizeof(out)), 200);
    snprintf(hdr, n, "Cookie: palaver_session=%s\r\n", token);
}

/* POST /api/invites as `hdr`'s account; the code to `code`. */
static int invite(const char *hdr, const char *body, char *code, size_t n)
{
    char out[4096];
    int status = post("/api/invites", "application/json", hdr, body, out, sizeof(out));
    json_t *j = body_json(out);
    snprintf(code, n, "%s",
             j && json_string_value(json_object_get(j, "code"))
                 ? json_string_value(json_object_get(j, "code"))
                 : "");
    json_decref(j);
    return status;
}

/* POST /api/register, waiting out (bounded) the delay a forged invite
 * from this address started. */
static int do_register(const char *inv, const char *name, char *out, size_t n)
{
    char body[512];
    snprintf(body, sizeof(body), "{\"invite\":\"%s\",\"name\":\"%s\",\"password\":\"%s\"}", inv,
             name, PASSWORD);
    int64_t deadline = mono_ms() + 20000;
    int status;
    while ((status = post("/api/register", "application/json", NULL, body, out, n)) == 429 &&
           mono_ms() < deadline)
        poll(NULL, 0, 200); /* Retry-After is whole seconds */
    return status;
}

struct racer {
    const char *invite;
    char name[32];
    int status;
};

static void *race_main(void *arg)
{
    struct racer *r = arg;
    char out[4096];
    r->status = do_register(r->invite, r->name, out, sizeof(out));
    return NULL;
}

/* Invites: admins for any role, moderators for members, members not at
 * all; a code works as many times as it says and gives its role; a
 * forged one nothing; two people racing for the last use: one gets in. */
static void test_invites_and_registration(void **state)
{
    (void)state;
    char admin[256], out[4096], code[128], c2[128], err[64];
    session_header("alice", PASSWORD, admin, sizeof(admin));
    assert_int_equal(invite(NULL, "{}", code, sizeof(code)), 401);
    assert_int_equal(invite(admin, "{\"role\":\"member\",\"uses\":1}", code, sizeof(code)), 200);
    assert_int_equal(strlen(code), 43);
    assert_int_equal(invite(admin, "{\"role\":\"root\"}", c2, sizeof(c2)), 403);
    assert_int_equal(invite(admin, "{\"uses\":0}", c2, sizeof(c2)), 400);
    assert_int_equal(invite(admin, "{\"role\":5}", c2, sizeof(c2)), 400);

    assert_int_equal(
        do_register("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "Carol", out, sizeof(out)), 403);
    assert_string_equal(error_code(out, err, sizeof(err)), "bad-invite");
    /* A forged code costs no password hash and starts the address's
     * delay: at once again, even with the real code, 429. */
    char body[512];
    snprintf(body, sizeof(body),
             "{\"invite\":\"%s\",\"name\":\"Carol\",\"password\":\"" PASSWORD "\"}", code);
    assert_int_equal(post("/api/register", "application/json", NULL, body, out, sizeof(out)), 429);
    assert_non_null(strstr(out, "Retry-After: "));
    assert_int_equal(do_register(code, "ALICE", out, sizeof(out)), 409); /* name-taken */
    assert_int_equal(do_register(code, "Carol", out, sizeof(out)), 200); /* the refusal kept it */
    assert_non_null(strstr(out, "\"role\":\"member\""));
    assert_non_null(strstr(out, "palaver_session="));
    assert_int_equal(do_register(code, "Carol2", out, sizeof(out)), 403); /* used up */
    assert_string_equal(error_code(out, err, sizeof(err)), "bad-invite");

    /* A member makes no invites. */
    char member[256];
    session_header("carol", PASSWORD, member, sizeof(member));
    assert_int_equal(invite(member, "{}", c2, sizeof(c2)), 403);
    /* A moderator's invite, from an admin's; a moderator invites members only. */
    assert_int_equal(invite(admin, "{\"role\":\"moderator\",\"uses\":2}", code, sizeof(code)), 200);
    assert_int_equal(do_register(code, "Dave", out, sizeof(out)), 200);
    assert_non_null(strstr(out, "\"role\":\"moderator\""));
    char mod[256];
    session_header("dave", PASSWORD, mod, sizeof(mod));
    assert_int_equal(invite(mod, "{\"role\":\"admin\"}", c2, sizeof(c2)), 403);
    assert_int_equal(invite(mod, "{\"role\":\"member\",\"hours\":1}", c2, sizeof(c2)), 200);

    /* The last use, raced by 8: exactly one account. */
    assert_int_equal(invite(admin, "{\"uses\":1}", code, sizeof(code)), 200);
    struct racer r[8];
    pthread_t t[8];
    for (int i = 0; i < 8; i++) {
        r[i] = (struct racer){.invite = code};
        snprintf(r[i].name, sizeof(r[i].name), "racer%d", i);
        pthread_create(&t[i], NULL, race_main, &r[i]);
    }
    int won = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        won += r[i].status == 200;
        assert_true(r[i].status == 200 || r[i].status == 403 || r[i].status == 503);
    }
    assert_int_equal(won, 1);
    /* No invite code in the log. */
    assert_false(srv_log_has(&server, code));
}

/* registration = closed: nobody registers, invite or not; = open: anyone,
 * as a member. */
static void test_registration_modes(void **state)
{
    (void)state;
    char d2[256], out[4096], err[64];
    int port = server.port;
    for (int open = 0; open < 2; open++) {
        struct srv s2 = {0};
        assert_true(tmpdir_make(d2, sizeof(d2), "registration"));
        const char *args[] = {"--data-dir", d2, "--registration", open ? "open" : "closed", NULL};
        assert_int_equal(srv_start(&s2, args), 0);
        server.port = s2.port;
        assert_int_equal(post("/api/register", "application/json", NULL,
                              "{\"name\":\"Erin\",\"password\":\"" PASSWORD "\"}", out,
                              sizeof(out)),
                         open ? 200 : 403);
        if (open)
            assert_non_null(strstr(out, "\"role\":\"member\""));
        else
            assert_string_equal(error_code(out, err, sizeof(err)), "registration-closed");
        /* Open: 5 accounts per address per hour; a refused attempt (a
         * name taken) does not count; the sixth account waits. */
        for (int i = 2; open && i <= 6; i++) {
            char body[256];
            assert_int_equal(post("/api/register", "application/json", NULL,
                                  "{\"name\":\"ERIN\",\"password\":\"" PASSWORD "\"}", out,
                                  sizeof(out)),
                             i <= 5 ? 409 : 429);
            snprintf(body, sizeof(body), "{\"name\":\"Erin%d\",\"password\":\"" PASSWORD "\"}", i);
            assert_int_equal(
                post("/api/register", "application/json", NULL, body, out, sizeof(out)),
                i <= 5 ? 200 : 429);
        }
        if (open) {
            assert_string_equal(error_code(out, err, sizeof(err)), "throttled");
            assert_non_null(strstr(out, "Retry-After: "));
        }
        server.port = port;
        assert_int_equal(srv_stop(&s2), 0);
        tmpdir_remove(d2);
    }
    /* A value that is none of the three: palaverd will not start. */
    const char *argv[] = {PALAVERD_PATH, "--config",       "/dev/null", "--registration",
                          "maybe",       "--check-config", NULL};
    assert_int_equal(run_capture(argv, NULL, out, sizeof(out)), 2);
    assert_non_null(strstr(out, "registration must be invite, open or closed"));
}

/* auth = members: no WebSocket without a session, for any path or
 * subprotocol (seed clients too); the page is told; SIGHUP switches it,
 * and switching to members closes the guests connected (4004). */
static void test_members_only(void **state)
{
    (void)state;
    char d2[256], conf[300], out[4096];
    struct srv s2 = {0};
    assert_true(tmpdir_make(d2, sizeof(d2), "members"));
    assert_int_equal(create_admin(d2, "Mo", PASSWORD, out, sizeof(out)), 0);
    snprintf(conf, sizeof(conf), "%s/palaverd.conf", d2);
    FILE *f = fopen(conf, "w");
    assert_non_null(f);
    fprintf(f, "auth = members\n");
    fclose(f);
    const char *args[] = {"--config", conf, "--data-dir", d2, NULL};
    assert_int_equal(srv_start(&s2, args), 0);
    int port = server.port;
    server.port = s2.port;

    struct wsc *g = wsc_open(s2.port, NULL);
    assert_int_equal(g->status, 401);
    assert_non_null(strstr(g->response, "for members"));
    wsc_free(g);
    g = wsc_open(s2.port, &(struct wsc_opts){.path = "/", .subprotocol = "sample-protocol"});
    assert_int_equal(g->status, 401); /* seed 000's client too */
    wsc_free(g);
    assert_int_equal(get("/api/me", NULL, out, sizeof(out)), 200);
    assert_non_null(strstr(out, "\"auth\":\"members\""));

    char hdr[256];
    session_header("mo", PASSWORD, hdr, sizeof(hdr));
    struct wsc *m = wsc_open(s2.port, &(struct wsc_opts){.headers = hdr});
    assert_int_equal(m->status, 101);
    assert_int_equal(wsc_join(m, NULL, NULL), 0);

    /* SIGHUP to open: guests come in; the member's connection stays. */
    f = fopen(conf, "w");
    assert_non_null(f);
    fprintf(f, "auth = open\n");
    fclose(f);
    kill(s2.pid, SIGHUP);
    assert_true(srv_log_wait(&s2, "reload: auth members -> open", T));
    g = wsc_open(s2.port, NULL);
    assert_int_equal(g->status, 101);
    assert_int_equal(wsc_join(g, NULL, NULL), 0);
    assert_int_equal(wsc_send_chat(g, 1, "a guest again", ""), 0);
    json_t *msg = wsc_expect(m, "message", T);
    assert_non_null(msg);
    json_decref(msg);
    /* SIGHUP back to members: the guest connected now is closed (4004),
     * the member stays and still hears the chat. */
    f = fopen(conf, "w");
    assert_non_null(f);
    fprintf(f, "auth = members\n");
    fclose(f);
    kill(s2.pid, SIGHUP);
    assert_int_equal(wsc_wait_close(g, T), 4004);
    assert_true(srv_log_wait(&s2, "1 guest connection(s) closed with 4004", T));
    struct wsc *m2 = wsc_open(s2.port, &(struct wsc_opts){.headers = hdr});
    assert_int_equal(m2->status, 101);
    assert_int_equal(wsc_join(m2, NULL, NULL), 0);
    assert_int_equal(wsc_send_chat(m2, 1, "members only again", ""), 0);
    msg = wsc_expect(m, "message", T);
    assert_non_null(msg);
    json_decref(msg);
    wsc_free(m2);
    wsc_free(g);
    wsc_free(m);
    server.port = port;
    assert_int_equal(srv_stop(&s2), 0);
    tmpdir_remove(d2);
}

/* ---- Moderation, edits and deletions, sessions (accounts.md) ---- */

/* A WebSocket as the session in hdr (NULL: a guest, named by path),
 * joined, its join history read (the presence message says how long). */
static struct wsc *ws_as(const char *hdr, const char *path)
{
    struct wsc *c = wsc_open(server.port, &(struct wsc_opts){.headers = hdr, .path = path});
    assert_non_null(c);
    assert_int_equal(c->status, 101);
    json_int_t history = -1;
    while (history < 0) {
        json_t *j = wsc_recv_json(c, T);
        assert_non_null(j);
        if (strcmp(json_string_value(json_object_get(j, "type")), "presence") == 0)
            history = json_integer_value(json_object_get(j, "history"));
        json_decref(j);
    }
    for (json_int_t i = 0; i < history; i++) {
        json_t *j = wsc_recv_json(c, T);
        assert_non_null(j);
        json_decref(j);
    }
    return c;
}

/* POST /api/moderate as hdr's account; the error code (or "") to code. */
static int moderate(const char *hdr, const char *body, char *code, size_t n)
{
    char out[4096];
    int status = post("/api/moderate", "application/json", hdr, body, out, sizeof(out));
    if (status == 200)
        snprintf(code, n, "%s", "");
    else
        error_code(out, code, n);
    return status;
}

/* The next message of `type` whose "target" is `target`. */
static json_t *expect_target(struct wsc *c, const char *type, long long target)
{
    for (int64_t end = mono_ms() + T; mono_ms() < end;) {
        json_t *j = wsc_expect(c, type, T);
        if (!j)
            return NULL;
        if (json_integer_value(json_object_get(j, "target")) == target)
            return j;
        json_decref(j);
    }
    return NULL;
}

/* The error code a message (or edit, delete) from c gets, within T. */
static void expect_error(struct wsc *c, const char *code)
{
    json_t *e = wsc_expect(c, "error", T);
    assert_non_null(e);
    assert_string_equal(json_string_value(json_object_get(e, "code")), code);
    json_decref(e);
}

/* Chat from c; its seq from the ack. */
static long long say(struct wsc *c, const char *text)
{
    assert_int_equal(wsc_send_chat(c, 7, text, ""), 0);
    json_t *a = wsc_expect(c, "ack", T);
    assert_non_null(a);
    long long seq = json_integer_value(json_object_get(a, "seq"));
    json_decref(a);
    return seq;
}

/* Edits and deletions: your own messages only, moderators delete anyone's;
 * every client sees the event, a newcomer's history and a resume get the
 * message as it is now (edited, or a tombstone without its text), and so
 * does a history page after a restart, when the author may still edit. */
static void test_edit_and_delete(void **state)
{
    (void)state;
    char carol[256], dave[256], out[4096];
    session_header("carol", PASSWORD, carol, sizeof(carol)); /* member */
    session_header("dave", PASSWORD, dave, sizeof(dave));    /* moderator */
    struct wsc *c = ws_as(carol, "/ws"), *d = ws_as(dave, "/ws"), *g = ws_as(NULL, "/ws?name=gil");

    long long n = say(c, "frist post");
    char req[256];
    snprintf(req, sizeof(req), "{\"type\":\"edit\",\"target\":%lld,\"text\":\"first post\"}", n);
    assert_int_equal(wsc_send_text(g, req), 0); /* a guest: no */
    expect_error(g, "forbidden");
    assert_int_equal(wsc_send_text(d, req), 0); /* a moderator: not someone else's words */
    expect_error(d, "forbidden");
    assert_int_equal(wsc_send_text(c, req), 0);
    json_t *e = expect_target(g, "edit", n);
    assert_non_null(e);
    assert_string_equal(json_string_value(json_object_get(e, "text")), "first post");
    assert_string_equal(json_string_value(json_object_get(json_object_get(e, "by"), "name")),
                        "Carol");
    long long edit_seq = json_integer_value(json_object_get(e, "seq"));
    assert_true(edit_seq > n);
    json_decref(e);
    e = expect_target(c, "edit", n); /* the author's page hears it too */
    assert_non_null(e);
    json_decref(e);
    /* Bad requests are errors, not silence. */
    assert_int_equal(wsc_send_text(c, "{\"type\":\"delete\",\"target\":\"x\"}"), 0);
    expect_error(c, "bad-target");
    assert_int_equal(wsc_send_text(c, "{\"type\":\"delete\",\"target\":999999}"), 0);
    expect_error(c, "not-found");
    snprintf(req, sizeof(req), "{\"type\":\"edit\",\"target\":%lld,\"text\":\" \"}", n);
    assert_int_equal(wsc_send_text(c, req), 0);
    expect_error(c, "empty-text");

    /* A member cannot delete another's message; a moderator can. */
    long long m = say(d, "a moderator speaks");
    snprintf(req, sizeof(req), "{\"type\":\"delete\",\"target\":%lld}", m);
    assert_int_equal(wsc_send_text(c, req), 0);
    expect_error(c, "forbidden");
    long long bad = say(g, "something awful");
    snprintf(req, sizeof(req), "{\"type\":\"delete\",\"target\":%lld}", bad);
    assert_int_equal(wsc_send_text(d, req), 0);
    e = expect_target(c, "delete", bad);
    assert_non_null(e);
    assert_string_equal(json_string_value(json_object_get(json_object_get(e, "by"), "role")),
                        "moderator");
    json_decref(e);
    json_decref(expect_target(g, "delete", bad));
    /* Deleted twice: it is not a message any more. */
    assert_int_equal(wsc_send_text(d, req), 0);
    expect_error(d, "not-found");

    /* A newcomer's history: the edited text, a tombstone, both events. */
    struct wsc *late = wsc_open(server.port, &(struct wsc_opts){.path = "/ws"});
    bool saw_edited = false, saw_tomb = false;
    for (json_t *j; (j = wsc_recv_json(late, T)) != NULL;) {
        const char *t = json_string_value(json_object_get(j, "type"));
        long long seq = json_integer_value(json_object_get(j, "seq"));
        if (strcmp(t, "message") == 0 && seq == n) {
            saw_edited = json_integer_value(json_object_get(j, "edited")) > 0 &&
                         strcmp(json_string_value(json_object_get(j, "text")), "first post") == 0;
        } else if (seq == bad) {
            saw_tomb = strcmp(t, "deleted") == 0 && !json_object_get(j, "text") &&
                       !json_object_get(j, "from");
        }
        bool done =
            strcmp(t, "delete") == 0 && json_integer_value(json_object_get(j, "target")) == bad;
        json_decref(j);
        if (done)
            break;
    }
    assert_true(saw_edited);
    assert_true(saw_tomb);
    wsc_free(late);
    /* The moderator's deletion is in the audit log, for moderators only. */
    assert_int_equal(get("/api/audit", carol, out, sizeof(out)), 403);
    for (int64_t end = mono_ms() + T; mono_ms() < end; poll(NULL, 0, 20)) {
        assert_int_equal(get("/api/audit", dave, out, sizeof(out)), 200);
        if (strstr(out, "\"action\":\"delete\""))
            break;
    }
    snprintf(req, sizeof(req), "\"target\":\"message %lld\"", bad);
    assert_non_null(strstr(out, req));
    wsc_free(c);
    wsc_free(d);
    wsc_free(g);

    /* After a restart: the stored rows are what the events made them, and
     * the author may still edit (the ring knows whose it is). */
    assert_int_equal(srv_stop(&server), 0);
    const char *args[] = {"--data-dir", dir, NULL};
    assert_int_equal(srv_start(&server, args), 0);
    c = ws_as(carol, "/ws");
    snprintf(req, sizeof(req), "{\"type\":\"history\",\"before\":%lld,\"limit\":200}",
             edit_seq + 1);
    assert_int_equal(wsc_send_text(c, req), 0);
    json_t *page = wsc_expect(c, "history", T);
    assert_non_null(page);
    char *dump = json_dumps(page, JSON_COMPACT);
    assert_non_null(strstr(dump, "\"text\":\"first post\""));
    assert_null(strstr(dump, "frist post"));
    json_decref(page);
    free(dump);
    snprintf(req, sizeof(req), "{\"type\":\"edit\",\"target\":%lld,\"text\":\"first!\"}", n);
    assert_int_equal(wsc_send_text(c, req), 0);
    json_decref(expect_target(c, "edit", n));
    /* A resume from before the deletion replays the tombstone, not the words. */
    struct wsc *r = wsc_open(server.port, &(struct wsc_opts){.path = "/ws?since=0"});
    char *all = calloc(1, 1 << 20);
    size_t used = 0;
    for (json_t *j; (j = wsc_recv_json(r, 1000)) != NULL; json_decref(j)) {
        char *t = json_dumps(j, JSON_COMPACT);
        used += (size_t)snprintf(all + used, (1 << 20) - used, "%s\n", t);
        free(t);
    }
    assert_null(strstr(all, "something awful"));
    assert_non_null(strstr(all, "\"type\":\"deleted\""));
    assert_non_null(strstr(all, "\"text\":\"first!\""));
    free(all);
    wsc_free(r);
    wsc_free(c);
}

/* Kick, mute, role, ban: who may, and what each open connection of the
 * person sees at once; CSRF and rank rules on the API. */
static void test_moderation(void **state)
{
    (void)state;
    char admin[256], carol[256], dave[256], erin[256], out[4096], code[64], body[512];
    session_header("alice", PASSWORD, admin, sizeof(admin));
    session_header("carol", PASSWORD, carol, sizeof(carol));
    session_header("dave", PASSWORD, dave, sizeof(dave));
    char inv[128];
    assert_int_equal(invite(admin, "{}", inv, sizeof(inv)), 200);
    assert_int_equal(do_register(inv, "Erin", out, sizeof(out)), 200);
    session_header("erin", PASSWORD, erin, sizeof(erin));

    /* Who may: members not; nobody on an equal or higher role; only
     * admins change roles; CSRF like every POST. */
    assert_int_equal(moderate(carol, "{\"action\":\"kick\",\"user\":\"erin\"}", code, 64), 403);
    assert_int_equal(moderate(dave, "{\"action\":\"ban\",\"user\":\"alice\"}", code, 64), 403);
    assert_int_equal(moderate(dave, "{\"action\":\"mute\",\"user\":\"dave\"}", code, 64), 403);
    assert_int_equal(
        moderate(dave, "{\"action\":\"role\",\"user\":\"erin\",\"role\":\"admin\"}", code, 64),
        403);
    assert_int_equal(moderate(NULL, "{\"action\":\"kick\",\"user\":\"erin\"}", code, 64), 401);
    assert_int_equal(moderate(dave, "{\"action\":\"smite\",\"user\":\"erin\"}", code, 64), 400);
    assert_int_equal(
        moderate(dave, "{\"action\":\"mute\",\"user\":\"erin\",\"minutes\":0}", code, 64), 400);
    assert_int_equal(moderate(dave, "{\"action\":\"unban\",\"user\":\"nobody-here\"}", code, 64),
                     404); /* not an account (a guest is banned by name, unbanned by time) */
    char xhdr[384];
    snprintf(xhdr, sizeof(xhdr), "%sOrigin: http://evil.example\r\n", dave);
    assert_int_equal(post("/api/moderate", "application/json", xhdr,
                          "{\"action\":\"kick\",\"user\":\"erin\"}", out, sizeof(out)),
                     403);
    assert_int_equal(post("/api/moderate", "text/plain", dave,
                          "{\"action\":\"kick\",\"user\":\"erin\"}", out, sizeof(out)),
                     415);

    /* Mute: every tab of Erin's is told and refused; unmute lifts it. */
    struct wsc *e1 = ws_as(erin, "/ws"), *e2 = ws_as(erin, "/ws"), *c = ws_as(carol, "/ws");
    snprintf(body, sizeof(body),
             "{\"action\":\"mute\",\"user\":\"ERIN\",\"minutes\":5,"
             "\"reason\":\"cool down\"}");
    assert_int_equal(moderate(dave, body, code, 64), 200);
    json_t *n = wsc_expect(e2, "moderation", T);
    assert_non_null(n);
    assert_string_equal(json_string_value(json_object_get(n, "action")), "mute");
    assert_string_equal(json_string_value(json_object_get(n, "reason")), "cool down");
    assert_true(json_integer_value(json_object_get(n, "until")) > 0);
    json_decref(n);
    json_decref(wsc_expect(e1, "moderation", T));
    assert_int_equal(wsc_send_chat(e1, 1, "let me speak", ""), 0);
    expect_error(e1, "muted");
    /* The mute is stored: a new connection is muted too. */
    struct wsc *e3 = ws_as(erin, "/ws");
    assert_int_equal(wsc_send_chat(e3, 1, "a new tab", ""), 0);
    expect_error(e3, "muted");
    wsc_free(e3);
    assert_int_equal(moderate(dave, "{\"action\":\"unmute\",\"user\":\"erin\"}", code, 64), 200);
    json_decref(wsc_expect(e1, "moderation", T));
    assert_true(say(e1, "thank you") > 0);

    /* Role: Alice makes Erin a moderator; her connections speak as one. */
    assert_int_equal(
        moderate(admin, "{\"action\":\"role\",\"user\":\"erin\",\"role\":\"moderator\"}", code, 64),
        200);
    n = wsc_expect(e1, "moderation", T);
    assert_non_null(n);
    assert_string_equal(json_string_value(json_object_get(n, "role")), "moderator");
    json_decref(n);
    assert_int_equal(wsc_send_chat(e1, 2, "now with a badge", ""), 0);
    for (;;) { /* past "thank you" */
        n = wsc_expect(c, "message", T);
        assert_non_null(n);
        if (strcmp(json_string_value(json_object_get(n, "text")), "now with a badge") == 0)
            break;
        json_decref(n);
    }
    assert_string_equal(json_string_value(json_object_get(json_object_get(n, "from"), "role")),
                        "moderator");
    json_decref(n);
    /* Now an equal: Dave may not act on her; Alice makes her a member again. */
    assert_int_equal(moderate(dave, "{\"action\":\"kick\",\"user\":\"erin\"}", code, 64), 403);
    assert_int_equal(
        moderate(admin, "{\"action\":\"role\",\"user\":\"erin\",\"role\":\"member\"}", code, 64),
        200);

    /* Kick: every connection closes 4001; she may come back. A guest is
     * kicked by the name they hold online. */
    struct wsc *g = ws_as(NULL, "/ws?name=troll");
    assert_int_equal(moderate(dave, "{\"action\":\"kick\",\"user\":\"erin\"}", code, 64), 200);
    assert_int_equal(wsc_wait_close(e1, T), 4001);
    assert_int_equal(wsc_wait_close(e2, T), 4001);
    assert_non_null(strstr(e1->close_reason, "kicked by Dave"));
    wsc_free(e1);
    wsc_free(e2);
    e1 = ws_as(erin, "/ws");
    /* A long reason in two-byte characters: the close reason is cut to 123
     * bytes on a character boundary (else the browser drops the code). */
    char kick[512] = "{\"action\":\"kick\",\"user\":\"Troll\",\"reason\":\"";
    for (int i = 0; i < 100; i++)
        strcat(kick, "\xc3\xa9");
    strcat(kick, "\"}");
    assert_int_equal(moderate(dave, kick, code, 64), 200);
    assert_int_equal(wsc_wait_close(g, T), 4001);
    assert_true(strlen(g->close_reason) <= 123);
    json_t *valid = json_string(g->close_reason); /* NULL if not UTF-8 */
    assert_non_null(valid);
    json_decref(valid);
    assert_non_null(strstr(g->close_reason, "kicked by Dave: \xc3\xa9"));
    wsc_free(g);

    /* Ban: closed 4003, sessions gone, no sign-in, no handshake. */
    assert_int_equal(moderate(dave, "{\"action\":\"ban\",\"user\":\"erin\"}", code, 64), 200);
    assert_int_equal(wsc_wait_close(e1, T), 4003);
    wsc_free(e1);
    struct wsc *x = wsc_open(server.port, &(struct wsc_opts){.headers = erin});
    assert_int_equal(x->status, 401);
    wsc_free(x);
    char token[128];
    assert_int_equal(sign_in("erin", PASSWORD, token, sizeof(token), out, sizeof(out)), 401);
    /* Unban: she may sign in again (after the delay her failure started). */
    assert_int_equal(moderate(dave, "{\"action\":\"unban\",\"user\":\"erin\"}", code, 64), 200);
    assert_int_equal(sign_in("erin", PASSWORD, token, sizeof(token), out, sizeof(out)), 200);

    /* Every action is in the audit log, newest first. */
    assert_int_equal(get("/api/audit", admin, out, sizeof(out)), 200);
    const char *order[] = {"\"unban\"", "\"ban\"",    "\"kick\"",
                           "\"role\"",  "\"unmute\"", "\"mute\""};
    const char *at = out;
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
        at = strstr(at, order[i]);
        assert_non_null(at);
    }
    assert_int_equal(get("/api/users", dave, out, sizeof(out)), 200);
    assert_non_null(strstr(out, "\"name\":\"Erin\""));
    assert_int_equal(get("/api/users", carol, out, sizeof(out)), 403);
    wsc_free(c);
}

/* Sessions: listed, one revoked closes its sockets (4002) and opens
 * nothing more; a password change needs the current one and revokes the
 * others; sign out closes the session's sockets. */
static void test_sessions_and_password(void **state)
{
    (void)state;
    char s1[256], s2[256], out[8192], body[512];
    session_header("carol", PASSWORD, s1, sizeof(s1));
    session_header("carol", PASSWORD, s2, sizeof(s2));
    assert_int_equal(get("/api/sessions", NULL, out, sizeof(out)), 401);
    assert_int_equal(get("/api/sessions", s1, out, sizeof(out)), 200);
    json_t *j = body_json(out);
    json_t *list = json_object_get(j, "sessions");
    assert_true(json_array_size(list) >= 2);
    long long other = 0;
    int current = 0;
    for (size_t i = 0; i < json_array_size(list); i++) {
        json_t *v = json_array_get(list, i);
        if (json_is_true(json_object_get(v, "current")))
            current++;
        else if (other == 0)
            other = json_integer_value(json_object_get(v, "id")); /* s2: the newest other */
        assert_string_equal(json_string_value(json_object_get(v, "addr")), "127.0.0.1");
    }
    json_decref(j);
    assert_int_equal(current, 1);

    struct wsc *w2 = ws_as(s2, "/ws"), *w1 = ws_as(s1, "/ws");
    snprintf(body, sizeof(body), "{\"id\":%lld}", other);
    assert_int_equal(post("/api/sessions/revoke", "application/json", s1, body, out, sizeof(out)),
                     200);
    assert_int_equal(wsc_wait_close(w2, T), 4002);
    wsc_free(w2);
    struct wsc *x = wsc_open(server.port, &(struct wsc_opts){.headers = s2});
    assert_int_equal(x->status, 401);
    wsc_free(x);
    /* Someone else's session id: not yours to end. */
    assert_int_equal(
        post("/api/sessions/revoke", "application/json", s1, "{\"id\":1}", out, sizeof(out)), 404);

    /* Password: the current one is checked; the others' sessions end. */
    char s3[256];
    session_header("carol", PASSWORD, s3, sizeof(s3));
    struct wsc *w3 = ws_as(s3, "/ws");
    assert_int_equal(post("/api/password", "application/json", s1,
                          "{\"current\":\"wrong password\",\"password\":\"a new long one\"}", out,
                          sizeof(out)),
                     403);
    assert_int_equal(post("/api/password", "application/json", s1,
                          "{\"current\":\"" PASSWORD "\",\"password\":\"short\"}", out,
                          sizeof(out)),
                     400);
    assert_int_equal(post("/api/password", "application/json", s1,
                          "{\"current\":\"" PASSWORD "\",\"password\":\"a new long one\"}", out,
                          sizeof(out)),
                     200);
    assert_int_equal(wsc_wait_close(w3, T), 4002);
    wsc_free(w3);
    assert_int_equal(get("/api/me", s3, out, sizeof(out)), 200);
    assert_non_null(strstr(out, "\"user\":null"));
    assert_int_equal(get("/api/me", s1, out, sizeof(out)), 200); /* this one stays */
    assert_non_null(strstr(out, "\"name\":\"Carol\""));
    char token[128];
    assert_int_equal(sign_in("carol", "a new long one", token, sizeof(token), out, sizeof(out)),
                     200);
    /* Sign out closes this session's open sockets too. */
    assert_int_equal(post("/api/logout", "application/json", s1, "{}", out, sizeof(out)), 200);
    assert_int_equal(wsc_wait_close(w1, T), 4002);
    wsc_free(w1);
}

/* POST /api/messages as `auth` (an Authorization header line or NULL). */
static int publish(const char *auth, const char *body, char *out, size_t n)
{
    return post("/api/messages", "application/json", auth, body, out, n);
}

/* Bots: a personal access token publishes over HTTP; the message is
 * ordered with WebSocket messages, stored, relayed to everyone and
 * answered with its seq; only a live token of an unbanned, unmuted
 * account publishes; a cookie does not. */
static void test_bots(void **state)
{
    (void)state;
    char dave[256], admin[256], out[4096], auth[256], code[64];
    session_header("dave", PASSWORD, dave, sizeof(dave));
    session_header("alice", PASSWORD, admin, sizeof(admin));
    assert_int_equal(
        post("/api/tokens", "application/json", NULL, "{\"name\":\"ci\"}", out, sizeof(out)), 401);
    assert_int_equal(
        post("/api/tokens", "application/json", dave, "{\"name\":\"ci bot\"}", out, sizeof(out)),
        200);
    json_t *j = body_json(out);
    const char *token = json_string_value(json_object_get(j, "token"));
    assert_non_null(token);
    assert_int_equal(strlen(token), 47);
    assert_memory_equal(token, "pvt_", 4);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s\r\n", token);
    long long token_id = json_integer_value(json_object_get(j, "id"));
    assert_false(srv_log_has(&server, token)); /* never logged */
    json_decref(j);
    assert_int_equal(get("/api/tokens", dave, out, sizeof(out)), 200);
    assert_non_null(strstr(out, "\"name\":\"ci bot\""));
    assert_null(strstr(out, "pvt_")); /* shown once, never listed */

    /* Ordered with WebSocket messages: between a guest's two. */
    struct wsc *g = ws_as(NULL, "/ws?name=watcher");
    long long before = say(g, "one");
    assert_int_equal(publish(auth,
                             "{\"type\":\"message\",\"text\":\"build passed\",\"msgId\":\"b1\"}",
                             out, sizeof(out)),
                     200);
    j = body_json(out);
    long long seq = json_integer_value(json_object_get(j, "seq"));
    assert_true(json_is_true(json_object_get(j, "stored")));
    assert_string_equal(json_string_value(json_object_get(j, "msgId")), "b1");
    json_decref(j);
    json_t *m = wsc_expect(g, "message", T);
    assert_non_null(m);
    assert_int_equal(json_integer_value(json_object_get(m, "seq")), seq);
    assert_string_equal(json_string_value(json_object_get(m, "text")), "build passed");
    /* Its room and its place in it (docs/rooms.md): everything so far is
     * the lobby's, so rseq has counted with seq since the database was
     * new -- across the restart of test_edit_and_delete too. */
    assert_string_equal(json_string_value(json_object_get(m, "room")), "lobby");
    assert_int_equal(json_integer_value(json_object_get(m, "rseq")), seq);
    json_t *from = json_object_get(m, "from");
    assert_string_equal(json_string_value(json_object_get(from, "name")), "Dave");
    assert_string_equal(json_string_value(json_object_get(from, "role")), "moderator");
    json_decref(m);
    long long after = say(g, "two");
    assert_true(before < seq && seq < after);
    /* Stored: a newcomer's history has it. */
    struct wsc *late = wsc_open(server.port, &(struct wsc_opts){.path = "/ws"});
    json_t *h = NULL;
    while ((h = wsc_expect(late, "message", T)) != NULL &&
           json_integer_value(json_object_get(h, "seq")) != seq)
        json_decref(h);
    assert_non_null(h);
    json_decref(h);
    wsc_free(late);

    /* Refusals: no token, a cookie instead, a forged token, bad bodies. */
    assert_int_equal(publish(NULL, "{\"type\":\"message\",\"text\":\"x\"}", out, sizeof(out)), 401);
    assert_non_null(strstr(out, "WWW-Authenticate: Bearer"));
    assert_int_equal(publish(dave, "{\"type\":\"message\",\"text\":\"x\"}", out, sizeof(out)), 401);
    assert_int_equal(
        publish("Authorization: Bearer pvt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\r\n",
                "{\"type\":\"message\",\"text\":\"x\"}", out, sizeof(out)),
        401);
    assert_int_equal(post("/api/messages", "text/plain", auth,
                          "{\"type\":\"message\",\"text\":\"x\"}", out, sizeof(out)),
                     415);
    assert_int_equal(publish(auth, "{\"type\":\"message\",\"text\":\" \"}", out, sizeof(out)), 400);
    assert_string_equal(error_code(out, code, sizeof(code)), "empty-text");
    assert_int_equal(publish(auth, "{\"type\":\"hello\",\"name\":\"x\"}", out, sizeof(out)), 422);
    assert_int_equal(publish(auth, "not json", out, sizeof(out)), 400);

    /* A muted account's bot is muted too. */
    assert_int_equal(moderate(admin, "{\"action\":\"mute\",\"user\":\"dave\"}", code, 64), 200);
    assert_int_equal(publish(auth, "{\"type\":\"message\",\"text\":\"hush\"}", out, sizeof(out)),
                     403);
    assert_string_equal(error_code(out, code, sizeof(code)), "muted");
    assert_int_equal(moderate(admin, "{\"action\":\"unmute\",\"user\":\"dave\"}", code, 64), 200);
    assert_int_equal(publish(auth, "{\"type\":\"message\",\"text\":\"back\"}", out, sizeof(out)),
                     200);

    /* Revoked: it publishes nothing more. */
    char body[64];
    snprintf(body, sizeof(body), "{\"id\":%lld}", token_id);
    assert_int_equal(post("/api/tokens/revoke", "application/json", dave, body, out, sizeof(out)),
                     200);
    assert_int_equal(publish(auth, "{\"type\":\"message\",\"text\":\"x\"}", out, sizeof(out)), 401);
    wsc_free(g);
}

/* Bans by address (open mode): a banned guest, and a banned account's
 * address, stay out as guests for a while; someone signed in from the
 * same address still comes in; unbanning the account lifts its address
 * bans. On a palaverd of its own: every test client is 127.0.0.1. */
static void test_address_ban(void **state)
{
    (void)state;
    char d2[256], out[4096], code[64], admin[256], inv[128], member[256];
    struct srv s2 = {0};
    assert_true(tmpdir_make(d2, sizeof(d2), "bans"));
    assert_int_equal(create_admin(d2, "Ada", PASSWORD, out, sizeof(out)), 0);
    const char *args[] = {"--data-dir", d2, NULL};
    assert_int_equal(srv_start(&s2, args), 0);
    int port = server.port;
    server.port = s2.port;
    session_header("ada", PASSWORD, admin, sizeof(admin));
    assert_int_equal(invite(admin, "{}", inv, sizeof(inv)), 200);
    assert_int_equal(do_register(inv, "Mel", out, sizeof(out)), 200);
    session_header("mel", PASSWORD, member, sizeof(member));

    /* A guest banned by the name they hold: closed 4003, and the address
     * is refused for guests (403), not for people signed in. */
    struct wsc *g = ws_as(NULL, "/ws?name=spammer");
    assert_int_equal(moderate(admin, "{\"action\":\"ban\",\"user\":\"spammer\"}", code, 64), 200);
    assert_int_equal(wsc_wait_close(g, T), 4003);
    wsc_free(g);
    struct wsc *x = wsc_open(s2.port, &(struct wsc_opts){.path = "/ws?name=again"});
    assert_int_equal(x->status, 403);
    assert_non_null(strstr(x->response, "banned your address"));
    wsc_free(x);
    assert_true(srv_log_wait(&s2, "the address is banned", T));
    struct wsc *m = ws_as(member, "/ws"); /* signed in: comes in */
    wsc_free(m);
    assert_int_equal(get("/", NULL, out, sizeof(out)), 200); /* the page is still served */

    /* A restart lifts address bans (memory only, documented as weak). */
    assert_int_equal(srv_stop(&s2), 0);
    assert_int_equal(srv_start(&s2, args), 0);
    server.port = s2.port;
    g = ws_as(NULL, "/ws?name=again");
    wsc_free(g);

    /* An account banned in open mode: its address too; unban lifts both. */
    m = ws_as(member, "/ws");
    assert_int_equal(moderate(admin, "{\"action\":\"ban\",\"user\":\"mel\"}", code, 64), 200);
    assert_int_equal(wsc_wait_close(m, T), 4003);
    wsc_free(m);
    x = wsc_open(s2.port, &(struct wsc_opts){.path = "/ws?name=not-mel"});
    assert_int_equal(x->status, 403);
    wsc_free(x);
    assert_int_equal(moderate(admin, "{\"action\":\"unban\",\"user\":\"mel\"}", code, 64), 200);
    assert_true(srv_log_wait(&s2, "1 address ban(s) lifted", T));
    g = ws_as(NULL, "/ws?name=not-mel");
    wsc_free(g);

    server.port = port;
    assert_int_equal(srv_stop(&s2), 0);
    tmpdir_remove(d2);
}

/* An account renamed: stored, everyone online told, its connections
 * speak under the new name, it signs in by it, and names stay unique
 * under the same equivalence. */
static void test_rename(void **state)
{
    (void)state;
    char dave[256], out[4096], code[64];
    session_header("dave", PASSWORD, dave, sizeof(dave));
    struct wsc *d = ws_as(dave, "/ws"), *g = ws_as(NULL, "/ws?name=onlooker");
    assert_int_equal(
        post("/api/rename", "application/json", dave, "{\"name\":\"ALICE\"}", out, sizeof(out)),
        409);
    assert_int_equal(post("/api/rename", "application/json", dave, "{\"name\":\"guest-1a2b\"}", out,
                          sizeof(out)),
                     400);
    assert_string_equal(error_code(out, code, sizeof(code)), "bad-name");
    assert_int_equal(
        post("/api/rename", "application/json", NULL, "{\"name\":\"x\"}", out, sizeof(out)), 401);
    assert_int_equal(
        post("/api/rename", "application/json", dave, "{\"name\":\"David\"}", out, sizeof(out)),
        200);
    json_t *r = wsc_expect(g, "rename", T);
    assert_non_null(r);
    assert_string_equal(json_string_value(json_object_get(json_object_get(r, "user"), "name")),
                        "David");
    assert_string_equal(json_string_value(json_object_get(r, "oldName")), "Dave");
    json_decref(r);
    assert_int_equal(wsc_send_chat(d, 1, "same me", ""), 0);
    json_t *m = wsc_expect(g, "message", T);
    assert_non_null(m);
    assert_string_equal(json_string_value(json_object_get(json_object_get(m, "from"), "name")),
                        "David");
    json_decref(m);
    assert_int_equal(get("/api/me", dave, out, sizeof(out)), 200);
    assert_non_null(strstr(out, "\"name\":\"David\""));
    char token[128];
    assert_int_equal(sign_in("david", PASSWORD, token, sizeof(token), out, sizeof(out)), 200);
    wsc_free(d);
    wsc_free(g);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_admin),
        cmocka_unit_test(test_login_and_me),
        cmocka_unit_test(test_api_refusals),
        cmocka_unit_test(test_websocket_identity),
        cmocka_unit_test(test_session_survives_restart),
        cmocka_unit_test(test_setup_link),
        cmocka_unit_test(test_invites_and_registration),
        cmocka_unit_test(test_registration_modes),
        cmocka_unit_test(test_members_only),
        cmocka_unit_test(test_edit_and_delete),
        cmocka_unit_test(test_moderation),
        cmocka_unit_test(test_sessions_and_password),
        cmocka_unit_test(test_bots),
        cmocka_unit_test(test_address_ban),
        cmocka_unit_test(test_rename),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
