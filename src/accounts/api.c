/* api.c -- /api/login, /api/logout, /api/me (see api.h for the rules).
 *
 * Threads: CivetWeb workers, each on its own request; shared state only
 * through accounts.h (its lock) and live.h (atomics). */
#include "palaver/api.h"

#include <civetweb.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "palaver/apireq.h"
#include "palaver/clock.h"
#include "palaver/files.h"
#include "palaver/limits.h"
#include "palaver/live.h"
#include "palaver/config.h"
#include "palaver/log.h"
#include "palaver/peer.h"
#include "palaver/proto.h"
#include "palaver/publish.h"
#include "palaver/queue.h"
#include "palaver/utf8.h"
#include "palaver/xalloc.h"

int pv_api_reply(struct mg_connection *conn, int status, const char *reason, const char *headers,
                 json_t *body)
{
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    size_t n = text ? strlen(text) : 0;
    mg_printf(conn,
              "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n"
              "X-Content-Type-Options: nosniff\r\nContent-Length: %zu\r\n%s\r\n%s",
              status, reason, n + 1, headers ? headers : "", text ? text : "");
    mg_write(conn, "\n", 1);
    free(text);
    return status;
}

int pv_api_error(struct mg_connection *conn, int status, const char *reason, const char *code,
                 const char *message, const char *headers)
{
    return pv_api_reply(conn, status, reason, headers,
                        json_pack("{s:s, s:s}", "error", code, "message", message));
}


static json_t *user_json(const struct pv_account *u)
{
    return json_pack("{s:I, s:s, s:s}", "id", (json_int_t)u->id, "name", u->name, "role", u->role);
}

int pv_api_session(struct pv_accounts *a, const struct mg_connection *conn, struct pv_account *out)
{
    char token[PV_TOKEN_CHARS + 1];
    int n = pv_api_cookie_token(mg_get_header(conn, "Cookie"), token);
    if (n == 0)
        return 0; /* no session cookie */
    if (!a || n < 0 || !pv_accounts_session(a, token, out))
        return -1;
    return 1;
}

/* The checks every POST passes before its body is read (api.h). */
static int post_checks(struct mg_connection *conn, struct pv_api *api)
{
    const struct mg_request_info *ri = mg_get_request_info(conn);
    struct pv_peer who;
    (void)pv_request_peer(conn, &api->cfg->trusted, &who); /* peer.h */
    if (strcmp(ri->request_method, "POST") != 0)
        return pv_api_error(conn, 405, "Method Not Allowed", "bad-method", "use POST",
                            "Allow: POST\r\n");
    const char *type = mg_get_header(conn, "Content-Type");
    if (!type || strncasecmp(type, "application/json", 16) != 0 ||
        (type[16] != '\0' && type[16] != ';' && type[16] != ' '))
        return pv_api_error(conn, 415, "Unsupported Media Type", "bad-content-type",
                            "send the request as Content-Type: application/json", NULL);
    const char *origin = mg_get_header(conn, "Origin");
    const char *host = mg_get_header(conn, "Host");
    if (!pv_origin_allowed(origin, who.https, host,
                           atomic_load_explicit(&api->live->origins, memory_order_acquire))) {
        char o[128];
        pv_log_printable(origin, o, sizeof(o));
        pv_warn("refused %s %s from %s:%d: Origin '%s' is not allowed (cross-site request); "
                "answered 403",
                ri->request_method, ri->local_uri, who.addr, who.port, o);
        return pv_api_error(conn, 403, "Forbidden", "bad-origin",
                            "cross-site request refused: this page's origin is not allowed", NULL);
    }
    if (!api->accounts)
        return pv_api_error(conn, 503, "Service Unavailable", "accounts-unavailable",
                            "accounts need a data directory (--data-dir)", NULL);
    return 0;
}

/* Reads and decodes the JSON body (after post_checks) as a request of
 * `kind` (apireq.h). False when it answered (400, 411, 413). */
static bool read_request(struct mg_connection *conn, enum pv_api_req kind, struct pv_api_fields *f)
{
    const struct mg_request_info *ri = mg_get_request_info(conn);
    if (ri->content_length < 0) {
        pv_api_error(conn, 411, "Length Required", "bad-request", "Content-Length is required",
                     NULL);
        return false;
    }
    if (ri->content_length > PV_API_BODY_MAX) {
        pv_api_error(conn, 413, "Payload Too Large", "too-large",
                     "request body is larger than 4096 bytes", NULL);
        return false;
    }
    char body[PV_API_BODY_MAX];
    size_t want = (size_t)ri->content_length, got = 0;
    while (got < want) {
        int r = mg_read(conn, body + got, want - got);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    const char *code = "bad-json";
    const char *why = got == want ? pv_api_decode(kind, body, got, f, &code)
                                  : "the body ended before its Content-Length";
    sodium_memzero(body, sizeof(body)); /* passwords */
    if (why) {
        pv_api_error(conn, 400, "Bad Request", code, why, NULL);
        return false;
    }
    return true;
}

/* The session cookie: HttpOnly (no script reads it), SameSite=Lax (not
 * sent with other sites' subrequests or POSTs), Path=/. Secure when the
 * request came over https (a trusted proxy's X-Forwarded-Proto, proxy.h):
 * the browser then never sends it over plain http, where anyone on the
 * network could read it. */
static void cookie_header(char *out, size_t n, const char *token, long max_age, bool secure)
{
    snprintf(out, n, "Set-Cookie: %s=%s; Max-Age=%ld; Path=/; HttpOnly; SameSite=Lax%s\r\n",
             PV_SESSION_COOKIE, token, max_age, secure ? "; Secure" : "");
}

/* 200 with the account and, when its session could be stored, the
 * cookie (login, setup, registration). */
static int signed_in(struct mg_connection *conn, const struct pv_peer *who,
                     const struct pv_account *u, const char *token)
{
    char headers[256];
    cookie_header(headers, sizeof(headers), token, (long)PV_SESSION_DAYS * 86400, who->https);
    return pv_api_reply(conn, 200, "OK", token[0] ? headers : NULL,
                        json_pack("{s:o}", "user", user_json(u)));
}

static int on_login(struct mg_connection *conn, void *ud)
{
    struct pv_api *api = ud;
    struct pv_peer who;
    (void)pv_request_peer(conn, &api->cfg->trusted, &who); /* peer.h */
    int rc = post_checks(conn, api);
    if (rc)
        return rc;
    struct pv_api_fields f;
    if (!read_request(conn, PV_REQ_LOGIN, &f))
        return 400;
    struct pv_account u;
    char token[PV_TOKEN_CHARS + 1], headers[256];
    unsigned retry = 0;
    enum pv_login r =
        pv_accounts_login(api->accounts, f.name, f.password, who.addr, &u, token, &retry);
    pv_api_fields_release(&f); /* the password's copy goes with it */
    switch (r) {
    case PV_LOGIN_OK:
        pv_info("login id=%lld name=\"%s\" role=%s from %s:%d", (long long)u.id, u.name, u.role,
                who.addr, who.port);
        return signed_in(conn, &who, &u, token);
    case PV_LOGIN_BAD:
        pv_notice("login refused from %s:%d: bad credentials; next attempt delayed", who.addr,
                  who.port);
        return pv_api_error(conn, 401, "Unauthorized", "bad-credentials", "wrong name or password",
                            NULL);
    case PV_LOGIN_THROTTLED:
        snprintf(headers, sizeof(headers), "Retry-After: %u\r\n", retry ? retry : 1);
        pv_notice("login refused from %s:%d: throttled after failures, %u s to wait", who.addr,
                  who.port, retry);
        return pv_api_error(conn, 429, "Too Many Requests", "throttled",
                            "too many failed sign-ins: wait before trying again", headers);
    case PV_LOGIN_BUSY:
        break;
    }
    pv_warn("login from %s:%d answered 503: every password-hash slot is busy", who.addr, who.port);
    return pv_api_error(conn, 503, "Service Unavailable", "busy",
                        "too many sign-ins at once, try again", "Retry-After: 1\r\n");
}

/* The HTTP status of an accounts error code. */
static int status_of(const char *code, const char **reason)
{
    static const struct {
        const char *code;
        int status;
        const char *reason;
    } map[] = {
        {"bad-name", 400, "Bad Request"},          {"bad-password", 400, "Bad Request"},
        {"bad-request", 400, "Bad Request"},       {"name-taken", 409, "Conflict"},
        {"bad-invite", 403, "Forbidden"},          {"bad-token", 403, "Forbidden"},
        {"registration-closed", 403, "Forbidden"}, {"forbidden", 403, "Forbidden"},
        {"throttled", 429, "Too Many Requests"},   {"busy", 503, "Service Unavailable"},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(map[i].code, code) == 0) {
            *reason = map[i].reason;
            return map[i].status;
        }
    *reason = "Internal Server Error";
    return 500;
}

static int accounts_error(struct mg_connection *conn, const char *code, const char *why)
{
    const char *reason;
    int status = status_of(code, &reason);
    return pv_api_error(conn, status, reason, code,
                        status == 500 ? "the account could not be saved" : why,
                        status == 503 || status == 429 ? "Retry-After: 1\r\n" : NULL);
}

/* The first admin, from the one-time setup link (accounts.h): created and
 * signed in. */
static int on_setup(struct mg_connection *conn, void *ud)
{
    struct pv_api *api = ud;
    struct pv_peer who;
    (void)pv_request_peer(conn, &api->cfg->trusted, &who); /* peer.h */
    int rc = post_checks(conn, api);
    if (rc)
        return rc;
    struct pv_api_fields f;
    if (!read_request(conn, PV_REQ_SETUP, &f))
        return 400;
    struct pv_account u;
    char session[PV_TOKEN_CHARS + 1], why[256];
    const char *code = "failed";
    int r = pv_accounts_setup(api->accounts, f.token, f.name, f.password, who.addr, &u, session,
                              &code, why, sizeof(why));
    pv_api_fields_release(&f);
    if (r == 0) {
        pv_notice("setup: first admin account id=%lld name=\"%s\" created from %s:%d; the setup "
                  "link is spent",
                  (long long)u.id, u.name, who.addr, who.port);
        return signed_in(conn, &who, &u, session);
    }
    pv_notice("setup refused from %s:%d: %s (%s)", who.addr, who.port, code, why);
    return accounts_error(conn, code, why);
}

/* An invite, made by a signed-in admin or moderator (accounts.h). */
static int on_invites(struct mg_connection *conn, void *ud)
{
    struct pv_api *api = ud;
    struct pv_peer who;
    (void)pv_request_peer(conn, &api->cfg->trusted, &who); /* peer.h */
    int rc = post_checks(conn, api);
    if (rc)
        return rc;
    struct pv_account by;
    if (pv_api_session(api->accounts, conn, &by) != 1)
        return pv_api_error(conn, 401, "Unauthorized", "not-signed-in", "sign in first", NULL);
    struct pv_api_fields f;
    if (!read_request(conn, PV_REQ_INVITE, &f))
        return 400;
    long long hours = f.hours, uses = f.uses;
    char invite[PV_TOKEN_CHARS + 1], why[256], role_copy[16];
    snprintf(role_copy, sizeof(role_copy), "%s", f.role ? f.role : "member");
    pv_api_fields_release(&f);
    const char *code = "failed";
    if (pv_accounts_invite(api->accounts, &by, role_copy, (unsigned)hours, (unsigned)uses, invite,
                           &code, why, sizeof(why)) != 0) {
        pv_notice("invite refused to id=%lld name=\"%s\" role=%s from %s:%d: %s", (long long)by.id,
                  by.name, by.role, who.addr, who.port, why);
        return accounts_error(conn, code, why);
    }
    pv_notice("invite made by id=%lld name=\"%s\": role %s, %lld use(s), %lld h", (long long)by.id,
              by.name, role_copy, (long long)uses, (long long)hours);
    char link[PV_TOKEN_CHARS + 16];
    snprintf(link, sizeof(link), "/register#%s", invite);
    return pv_api_reply(conn, 200, "OK", NULL,
                        json_pack("{s:s, s:s, s:s, s:I, s:I}", "code", invite, "link", link, "role",
                                  role_copy, "hours", hours, "uses", uses));
}

/* A new account: with an invite, or without one where registration is
 * open; signed in at once. */
static int on_register(struct mg_connection *conn, void *ud)
{
    struct pv_api *api = ud;
    struct pv_peer who;
    (void)pv_request_peer(conn, &api->cfg->trusted, &who); /* peer.h */
    int rc = post_checks(conn, api);
    if (rc)
        return rc;
    struct pv_api_fields f;
    if (!read_request(conn, PV_REQ_REGISTER, &f))
        return 400;
    struct pv_account u;
    char session[PV_TOKEN_CHARS + 1] = "", why[256];
    const char *code = "failed";
    int r = pv_accounts_register(api->accounts, api->registration, f.invite, f.name, f.password,
                                 who.addr, &u, session, &code, why, sizeof(why));
    pv_api_fields_release(&f);
    if (r != 0) {
        pv_notice("registration refused from %s:%d: %s (%s)", who.addr, who.port, code, why);
        return accounts_error(conn, code, why);
    }
    pv_info("registered id=%lld name=\"%s\" role=%s from %s:%d", (long long)u.id, u.name, u.role,
            who.addr, who.port);
    return signed_in(conn, &who, &u, session);
}

static void push_mod(struct pv_api *api, const char *action, const struct pv_account *target,
                     const char *guest, int64_t session, int64_t until, const char *by,
                     const char *reason);

static int on_logout(struct mg_connection *conn, void *ud)
{
    struct pv_api *api = ud;
    int rc = post_checks(conn, api);
    if (rc)
        return rc;
    char token[PV_TOKEN_CHARS + 1], headers[256];
    struct pv_account u;
    bool known = pv_api_session(api->accounts, conn, &u) == 1;
    bool ended = pv_api_cookie_token(mg_get_header(conn, "Cookie"), token) == 1 &&
                 pv_accounts_logout(api->accounts, token);
    if (ended && known) /* its open sockets (other tabs) close too: 4002 */
        push_mod(api, "revoke", NULL, NULL, u.session, 0, u.name, NULL);
    struct pv_peer who;
    (void)pv_request_peer(conn, &api->cfg->trusted, &who);
    cookie_header(headers, sizeof(headers), "", 0, who.https);
    return pv_api_reply(conn, 200, "OK", headers, json_pack("{s:b}", "ended", ended));
}

static int on_me(struct mg_connection *conn, void *ud)
{
    struct pv_api *api = ud;
    const struct mg_request_info *ri = mg_get_request_info(conn);
    if (strcmp(ri->request_method, "GET") != 0)
        return pv_api_error(conn, 405, "Method Not Allowed", "bad-method", "use GET",
                            "Allow: GET\r\n");
    struct pv_account u;
    char headers[256];
    int s = pv_api_session(api->accounts, conn, &u);
    struct pv_peer who;
    (void)pv_request_peer(conn, &api->cfg->trusted, &who);
    /* A cookie whose session has ended is cleared: the page's next
     * handshake then comes as a guest instead of being refused again. */
    cookie_header(headers, sizeof(headers), "", 0, who.https);
    /* A guest is not an error: {"user":null} (a page asks on every load),
     * with what the page needs to know to offer sign-in or registration. */
    bool members = atomic_load_explicit(&api->live->members_only, memory_order_relaxed);
    return pv_api_reply(conn, 200, "OK", s < 0 ? headers : NULL,
                        json_pack("{s:o, s:s, s:s}", "user", s == 1 ? user_json(&u) : json_null(),
                                  "auth", members ? "members" : "open", "registration",
                                  api->registration ? api->registration : "closed"));
}

/* A decision for the broadcaster to apply to open connections. */
static void push_mod(struct pv_api *api, const char *action, const struct pv_account *target,
                     const char *guest, int64_t session, int64_t until, const char *by,
                     const char *reason)
{
    bool ban = strcmp(action, "ban") == 0;
    if (!api->queue)
        return;
    struct pv_mod_req r = {.account = target ? target->id : 0, .session = session};
    snprintf(r.action, sizeof(r.action), "%s", action);
    snprintf(r.name, sizeof(r.name), "%s", target ? target->name : guest ? guest : "");
    if (target)
        snprintf(r.role, sizeof(r.role), "%s", target->role);
    r.until = until;
    /* A ban keeps the person's addresses out for a while where guests may
     * chat (limits.h, "Address bans"); with auth = members there is no
     * way in without an account anyway. */
    r.by_address =
        ban && (!target || !atomic_load_explicit(&api->live->members_only, memory_order_relaxed));
    if (ban)
        r.until = pv_now_ms() + (int64_t)PV_ADDRESS_BAN_HOURS * 3600000;
    snprintf(r.by, sizeof(r.by), "%s", by ? by : "");
    snprintf(r.reason, sizeof(r.reason), "%s", reason ? reason : "");
    pv_queue_push_ctl(api->queue, pv_event_new(PV_EV_MOD, NULL, &r, sizeof(r)));
}

/* The signed-in account of a request, or an answer (401) already sent. */
static bool need_session(struct mg_connection *conn, struct pv_api *api, struct pv_account *u)
{
    if (api->accounts && pv_api_session(api->accounts, conn, u) == 1)
        return true;
    pv_api_error(conn, 401, "Unauthorized", "not-signed-in", "sign in first", NULL);
    return false;
}

static bool need_get(struct mg_connection *conn, struct pv_api *api)
{
    const struct mg_request_info *ri = mg_get_request_info(conn);
    if (strcmp(ri->request_method, "GET") != 0) {
        pv_api_error(conn, 405, "Method Not Allowed", "bad-method", "use GET", "Allow: GET\r\n");
        return false;
    }
    if (!api->accounts) {
        pv_api_error(conn, 503, "Service Unavailable", "accounts-unavailable",
                     "accounts need a data directory (--data-dir)", NULL);
        return false;
    }
    return true;
}

static int on_sessions(struct mg_connection *conn, void *ud)
{
    struct pv_api *api = ud;
    struct pv_account u;
    if (!need_get(conn, api) || !need_session(conn, api, &u))
        return 400;
    return pv_api_reply(
        conn, 200, "OK", NULL,
        json_pack("{s:o}", "sessions", pv_accounts_sessions(api->accounts, u.id, u.session)));
}

/* The common start of a signed-in POST: the request's checks (method,
 * type, Origin, size), the session, the decoded body. 0 to go on (the
 * caller releases f), else the status, already answered. */
static int begin_post(struct mg_connection *conn, struct pv_api *api, enum pv_api_req kind,
                      struct pv_account *u, struct pv_api_fields *f)
{
    int rc = post_checks(conn, api);
    if (rc)
        return rc;
    if (!need_session(conn, api, u))
        return 401;
    if (!read_request(conn, kind, f))
        return 400;
    return 0;
}

static int on_revoke(struct mg_connection *conn, void *ud)
{
    struct pv_api *api = ud;
    struct pv_account u;
    struct pv_api_fields f;
    int rc = begin_post(conn, api, PV_REQ_REVOKE, &u, &f);
    if (rc)
        return rc;
    long long session = f.id;
    pv_api_fields_release(&f);
    if (!pv_accounts_revoke(api->accounts, u.id, (int64_t)session))
        return pv_api_error(conn, 404, "Not Found", "not-found", "you have no such session", NULL);
    push_mod(api, "revoke", NULL, NULL, (int64_t)session, 0, u.name, NULL);
    pv_info("session %lld of id=%lld name=\"%s\" revoked by its owner", (long long)session,
            (long long)u.id, u.name);
    return pv_api_reply(conn, 200, "OK", NULL, json_pack("{s:b}", "ended", 1));
}

static int on_password(struct mg_connection *conn, void *ud)
{
    struct pv_api *api = ud;
    struct pv_peer who;
    (void)pv_request_peer(conn, &api->cfg->trusted, &who); /* peer.h */
    struct pv_account u;
    struct pv_api_fields f;
    int rc = begin_post(conn, api, PV_REQ_PASSWORD, &u, &f);
    if (rc)
        return rc;
    char why[256];
    const char *code = "failed";
    int r = pv_accounts_password(api->accounts, &u, f.current, f.password, &code, why, sizeof(why));
    pv_api_fields_release(&f);
    if (r != 0) {
        pv_notice("password change refused for id=%lld from %s:%d: %s", (long long)u.id, who.addr,
                  who.port, code);
        if (strcmp(code, "bad-credentials") == 0)
            return pv_api_error(conn, 403, "Forbidden", code, why, NULL);
        return accounts_error(conn, code, why);
    }
    push_mod(api, "password", &u, NULL, u.session, 0, u.name, NULL);
    pv_notice("password changed for id=%lld name=\"%s\" from %s:%d; its other sessions revoked",
              (long long)u.id, u.name, who.addr, who.port);
    return pv_api_reply(conn, 200, "OK", NULL, json_pack("{s:b}", "changed", 1));
}

/* kick, ban, unban, mute, unmute, role (accounts.h has the rules). A
 * guest (a name no account has) can be kicked or muted while online. */
static int on_moderate(struct mg_connection *conn, void *ud)
{
    struct pv_api *api = ud;
    struct pv_peer who;
    (void)pv_request_peer(conn, &api->cfg->trusted, &who); /* peer.h */
    struct pv_account by;
    int rc = post_checks(conn, api);
    if (rc)
        return rc;
    if (!need_session(conn, api, &by))
        return 401;
    if (pv_role_rank(by.role) < 2)
        return pv_api_error(conn, 403, "Forbidden", "forbidden", "moderators only", NULL);
    struct pv_api_fields f;
    if (!read_request(conn, PV_REQ_MODERATE, &f))
        return 400;
    char act[12], user[PV_NAME_MAX_BYTES + 1], why[256], rsn[PV_REASON_MAX + 1] = "",
                                                                             new_role[16] = "";
    long long minutes = f.minutes;
    snprintf(act, sizeof(act), "%s", f.action);
    snprintf(user, sizeof(user), "%s", f.user);
    snprintf(rsn, sizeof(rsn), "%s", f.reason ? f.reason : "");
    snprintf(new_role, sizeof(new_role), "%s", f.role ? f.role : "");
    pv_api_fields_release(&f);
    char quser[2 * PV_NAME_MAX_BYTES + 8], qrsn[2 * PV_REASON_MAX + 8]; /* for the log */
    pv_log_quote(user, quser, sizeof(quser));
    pv_log_quote(rsn, qrsn, sizeof(qrsn));

    struct pv_account target;
    const char *code = "failed";
    if (!pv_accounts_find(api->accounts, user, &target)) {
        /* A guest: only what acts on an open connection. */
        if (strcmp(act, "kick") != 0 && strcmp(act, "mute") != 0 && strcmp(act, "unmute") != 0 &&
            strcmp(act, "ban") != 0)
            return pv_api_error(
                conn, 404, "Not Found", "not-found",
                "no account has that name (a guest can be kicked, banned or muted while "
                "online)",
                NULL);
        int64_t until = strcmp(act, "mute") == 0 ? pv_now_ms() + (int64_t)minutes * 60000 : 0;
        char target_name[PV_NAME_MAX_BYTES + 8];
        snprintf(target_name, sizeof(target_name), "guest %s", user);
        pv_accounts_audit(api->accounts, &by, act, target_name, rsn);
        push_mod(api, act, NULL, user, 0, until, by.name, rsn);
        pv_notice("%s of guest \"%s\" by id=%lld name=\"%s\" from %s:%d%s%s", act, quser,
                  (long long)by.id, by.name, who.addr, who.port, rsn[0] ? ": " : "", qrsn);
        return pv_api_reply(
            conn, 200, "OK", NULL,
            json_pack("{s:s, s:s, s:s}", "action", act, "user", user, "role", "guest"));
    }
    if (pv_accounts_moderate(api->accounts, &by, act, &target, (unsigned)minutes,
                             new_role[0] ? new_role : NULL, rsn, &code, why, sizeof(why)) != 0) {
        pv_notice("%s of \"%s\" refused to id=%lld name=\"%s\" role=%s: %s", act, quser,
                  (long long)by.id, by.name, by.role, why);
        return accounts_error(conn, code, why);
    }
    push_mod(api, act, &target, NULL, 0, target.muted_until, by.name, rsn);
    pv_notice("%s of account id=%lld name=\"%s\" by id=%lld name=\"%s\" from %s:%d%s%s", act,
              (long long)target.id, target.name, (long long)by.id, by.name, who.addr, who.port,
              rsn[0] ? ": " : "", qrsn);
    json_t *out =
        json_pack("{s:s, s:s, s:s}", "action", act, "user", target.name, "role", target.role);
    if (target.muted_until)
        json_object_set_new(out, "mutedUntil", json_integer((json_int_t)target.muted_until));
    return pv_api_reply(conn, 200, "OK", NULL, out);
}

static int list(struct mg_connection *conn, void *ud, bool audit)
{
    struct pv_api *api = ud;
    struct pv_account u;
    if (!need_get(conn, api) || !need_session(conn, api, &u))
        return 400;
    if (pv_role_rank(u.role) < 2)
        return pv_api_error(conn, 403, "Forbidden", "forbidden", "moderators only", NULL);
    return pv_api_reply(
        conn, 200, "OK", NULL,
        audit ? json_pack("{s:o}", "audit", pv_accounts_audit_list(api->accounts, 200))
              : json_pack("{s:o}", "users", pv_accounts_users(api->accounts, 1000)));
}

static int on_users(struct mg_connection *conn, void *ud)
{
    return list(conn, ud, false);
}

static int on_audit(struct mg_connection *conn, void *ud)
{
    return list(conn, ud, true);
}

/* Your account's name: stored, then every open connection of yours and
 * everyone online learn it (a rename notice, like a guest's). */
static int on_rename(struct mg_connection *conn, void *ud)
{
    struct pv_api *api = ud;
    struct pv_account u;
    struct pv_api_fields f;
    int rc = begin_post(conn, api, PV_REQ_RENAME, &u, &f);
    if (rc)
        return rc;
    char old[PV_NAME_MAX_BYTES + 1], why[256];
    snprintf(old, sizeof(old), "%s", u.name);
    const char *code = "failed";
    int r = pv_accounts_rename(api->accounts, &u, f.name, &code, why, sizeof(why));
    pv_api_fields_release(&f);
    if (r != 0)
        return accounts_error(conn, code, why);
    struct pv_mod_req m = {.account = u.id};
    snprintf(m.action, sizeof(m.action), "rename");
    snprintf(m.name, sizeof(m.name), "%s", u.name);
    snprintf(m.by, sizeof(m.by), "%s", u.name); /* the account renamed itself */
    snprintf(m.old_name, sizeof(m.old_name), "%s", old);
    if (api->queue)
        pv_queue_push_ctl(api->queue, pv_event_new(PV_EV_MOD, NULL, &m, sizeof(m)));
    pv_notice("account id=%lld renamed from \"%s\" to \"%s\"", (long long)u.id, old, u.name);
    return pv_api_reply(conn, 200, "OK", NULL, json_pack("{s:o}", "user", user_json(&u)));
}

/* ---- Bots: personal access tokens and POST /api/messages ---- */

static int on_tokens(struct mg_connection *conn, void *ud)
{
    struct pv_api *api = ud;
    const struct mg_request_info *ri = mg_get_request_info(conn);
    struct pv_peer who;
    (void)pv_request_peer(conn, &api->cfg->trusted, &who); /* peer.h */
    struct pv_account u;
    if (strcmp(ri->request_method, "GET") == 0) {
        if (!need_get(conn, api) || !need_session(conn, api, &u))
            return 400;
        return pv_api_reply(conn, 200, "OK", NULL,
                            json_pack("{s:o}", "tokens", pv_accounts_tokens(api->accounts, u.id)));
    }
    struct pv_api_fields f;
    int rc = begin_post(conn, api, PV_REQ_TOKEN, &u, &f);
    if (rc)
        return rc;
    char token[PV_PAT_CHARS + 1], why[256];
    const char *code = "failed";
    int64_t id = 0;
    int r = pv_accounts_token_new(api->accounts, &u, f.name, token, &id, &code, why, sizeof(why));
    pv_api_fields_release(&f);
    if (r != 0)
        return strcmp(code, "too-many") == 0 ? pv_api_error(conn, 409, "Conflict", code, why, NULL)
                                             : accounts_error(conn, code, why);
    pv_notice("token %lld made by id=%lld name=\"%s\" from %s:%d", (long long)id, (long long)u.id,
              u.name, who.addr, who.port);
    json_t *out = json_pack("{s:I, s:s}", "id", (json_int_t)id, "token", token);
    sodium_memzero(token, sizeof(token));
    return pv_api_reply(conn, 200, "OK", NULL, out);
}

static int on_token_revoke(struct mg_connection *conn, void *ud)
{
    struct pv_api *api = ud;
    struct pv_account u;
    struct pv_api_fields f;
    int rc = begin_post(conn, api, PV_REQ_REVOKE, &u, &f);
    if (rc)
        return rc;
    long long id = f.id;
    pv_api_fields_release(&f);
    if (!pv_accounts_token_revoke(api->accounts, u.id, (int64_t)id))
        return pv_api_error(conn, 404, "Not Found", "not-found", "you have no such token", NULL);
    pv_notice("token %lld of id=%lld name=\"%s\" revoked", id, (long long)u.id, u.name);
    return pv_api_reply(conn, 200, "OK", NULL, json_pack("{s:b}", "revoked", 1));
}

#define PUBLISH_WAIT_MS 10000 /* the commit an answer waits for (synchronous=FULL: ms) */

/* A bot publishes: the same message object as over the WebSocket, with a
 * token; ordered, stored and relayed by the broadcaster like any message,
 * and answered with its seq once stored (publish.h). */
static int on_messages(struct mg_connection *conn, void *ud)
{
    struct pv_api *api = ud;
    const struct mg_request_info *ri = mg_get_request_info(conn);
    struct pv_peer who;
    (void)pv_request_peer(conn, &api->cfg->trusted, &who); /* peer.h */
    int rc = post_checks(conn, api);
    if (rc)
        return rc;
    const char *auth = mg_get_header(conn, "Authorization");
    struct pv_account u;
    int64_t token_id = 0;
    if (!auth || strncasecmp(auth, "Bearer ", 7) != 0 ||
        !pv_accounts_token_auth(api->accounts, auth + 7, &u, &token_id)) {
        static struct pv_log_limit lim = PV_LOG_LIMIT("publishes refused for their token");
        if (pv_log_limited(&lim, PV_LOG_NOTICE, 5))
            pv_notice("publish refused from %s:%d: %s; answered 401", who.addr, who.port,
                      auth ? "unknown, revoked or banned token" : "no Authorization: Bearer");
        return pv_api_error(
            conn, 401, "Unauthorized", "bad-token",
            "publishing needs a personal access token: Authorization: Bearer pvt_...",
            "WWW-Authenticate: Bearer realm=\"palaver\"\r\n");
    }
    size_t max = api->cfg ? api->cfg->max_message : 32768;
    if (ri->content_length < 0)
        return pv_api_error(conn, 411, "Length Required", "bad-request",
                            "Content-Length is required", NULL);
    if ((uint64_t)ri->content_length > max)
        return pv_api_error(conn, 413, "Payload Too Large", "too-large",
                            "the message is larger than --max-message", NULL);
    if (!pv_accounts_token_rate(api->accounts, token_id,
                                atomic_load_explicit(&api->live->rate_limit, memory_order_relaxed),
                                atomic_load_explicit(&api->live->rate_burst, memory_order_relaxed)))
        return pv_api_error(conn, 429, "Too Many Requests", "rate-limited",
                            "too many messages from this token: slow down", "Retry-After: 1\r\n");
    char *body = pv_xmalloc((size_t)ri->content_length + 1);
    size_t want = (size_t)ri->content_length, got = 0;
    while (got < want) {
        int r = mg_read(conn, body + got, want - got);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    struct pv_event *ev = pv_event_new(PV_EV_PUBLISH, NULL, NULL, 0);
    if (got != want || !pv_utf8_valid(body, got)) {
        free(body);
        pv_event_free(ev);
        return pv_api_error(conn, 400, "Bad Request", "bad-json",
                            got != want ? "the body ended before its Content-Length"
                                        : "the body is not UTF-8",
                            NULL);
    }
    pv_proto_decode(body, got, api->cfg ? api->cfg->max_text : 4096, &ev->in);
    free(body);
    if (ev->in.type != PV_IN_MESSAGE) {
        int status = ev->in.type == PV_IN_INVALID ? 400 : 422;
        json_t *out = json_pack(
            "{s:s, s:s}", "error", ev->in.type == PV_IN_INVALID ? ev->in.err_code : "unknown-type",
            "message",
            ev->in.type == PV_IN_INVALID ? ev->in.err_msg
                                         : "publish a {\"type\":\"message\",\"text\":...} object");
        pv_event_free(ev);
        return pv_api_reply(conn, status, status == 400 ? "Bad Request" : "Unprocessable Content",
                            NULL, out);
    }
    /* Files a bot uploaded with its session... or a person's: the token's
     * account must be the uploader (files.h), as on a WebSocket. */
    if (ev->in.files) {
        const char *code, *why;
        json_t *d =
            pv_files_resolve(api->files, u.id, who.addr, ev->in.room, ev->in.files, &code, &why);
        if (!d) {
            pv_event_free(ev);
            pv_info("publish refused from %s:%d: %s; answered 422", who.addr, who.port, why);
            return pv_api_error(conn, 422, "Unprocessable Content", code, why, NULL);
        }
        json_object_set_new(ev->in.root, "files", d);
        ev->in.files = d;
    }
    json_t *msg_id = ev->in.msg_id ? json_incref(ev->in.msg_id) : NULL;
    struct pv_publish *p = pv_publish_new();
    p->account = u.id;
    p->muted_until = u.muted_until;
    snprintf(p->name, sizeof(p->name), "%s", u.name);
    snprintf(p->role, sizeof(p->role), "%s", u.role);
    ev->publish = p;
    ev->len = got;
    int q = pv_queue_push_msg(api->queue, ev, api->cfg ? (int)api->cfg->queue_timeout_ms : 1000);
    if (q != 0) {
        pv_event_free(ev); /* answers the event's reference */
        pv_publish_unref(p);
        json_decref(msg_id);
        return pv_api_error(conn, 503, "Service Unavailable", "busy",
                            "the server is too busy to take the message: send it again",
                            "Retry-After: 1\r\n");
    }
    bool answered = pv_publish_wait(p, PUBLISH_WAIT_MS);
    json_t *out = NULL;
    int status = 200;
    const char *reason = "OK";
    pthread_mutex_lock(&p->mu); /* the answer's fields (publish.h) */
    if (!answered) {
        status = 504;
        reason = "Gateway Timeout";
        out = json_pack("{s:s, s:s}", "error", "not-confirmed", "message",
                        "taken, but not confirmed stored in time: it may still appear");
    } else if (p->code[0] == '\0' || strcmp(p->code, "not-stored") == 0) {
        out = json_pack("{s:I, s:I, s:b}", "seq", (json_int_t)p->seq, "serverDate",
                        (json_int_t)p->date, "stored", p->code[0] == '\0');
    } else {
        /* Refused for who the token is (muted, not in the room, ...): 403;
         * the server could not take it (busy, shutting down): 503. */
        static const char *const refusals[] = {"muted", "not-a-member", "archived", "forbidden"};
        status = 503;
        for (size_t i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++)
            if (strcmp(p->code, refusals[i]) == 0)
                status = 403;
        reason = status == 403 ? "Forbidden" : "Service Unavailable";
        out = json_pack("{s:s, s:s}", "error", p->code, "message", p->message);
    }
    pthread_mutex_unlock(&p->mu);
    pv_publish_unref(p);
    if (msg_id)
        json_object_set_new(out, "msgId", msg_id);
    return pv_api_reply(conn, status, reason, NULL, out);
}

/* /setup#<token> (the link in the log): the page is setup.html; a
 * redirect keeps the fragment, which the browser never sent. */
static int redirect(struct mg_connection *conn, const char *to)
{
    mg_printf(conn,
              "HTTP/1.1 302 Found\r\nLocation: %s\r\nCache-Control: no-store\r\n"
              "Content-Length: 0\r\n\r\n",
              to);
    return 302;
}

static int on_setup_page(struct mg_connection *conn, void *ud)
{
    (void)ud;
    return redirect(conn, "/setup.html");
}

/* /register#<invite> (the link an invite gives): register.html. */
static int on_register_page(struct mg_connection *conn, void *ud)
{
    (void)ud;
    return redirect(conn, "/register.html");
}

void pv_api_register(struct mg_context *ctx, struct pv_api *api)
{
    mg_set_request_handler(ctx, "/setup$", on_setup_page, api);
    mg_set_request_handler(ctx, "/register$", on_register_page, api);
    mg_set_request_handler(ctx, "/api/invites$", on_invites, api);
    mg_set_request_handler(ctx, "/api/register$", on_register, api);
    mg_set_request_handler(ctx, "/api/login$", on_login, api);
    mg_set_request_handler(ctx, "/api/logout$", on_logout, api);
    mg_set_request_handler(ctx, "/api/me$", on_me, api);
    mg_set_request_handler(ctx, "/api/setup$", on_setup, api);
    mg_set_request_handler(ctx, "/api/sessions$", on_sessions, api);
    mg_set_request_handler(ctx, "/api/sessions/revoke$", on_revoke, api);
    mg_set_request_handler(ctx, "/api/password$", on_password, api);
    mg_set_request_handler(ctx, "/api/moderate$", on_moderate, api);
    mg_set_request_handler(ctx, "/api/users$", on_users, api);
    mg_set_request_handler(ctx, "/api/audit$", on_audit, api);
    mg_set_request_handler(ctx, "/api/tokens$", on_tokens, api);
    mg_set_request_handler(ctx, "/api/rename$", on_rename, api);
    mg_set_request_handler(ctx, "/api/tokens/revoke$", on_token_revoke, api);
    mg_set_request_handler(ctx, "/api/messages$", on_messages, api);
}
