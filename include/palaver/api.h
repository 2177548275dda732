/* api.h -- the accounts' HTTP API on the chat port (JSON; every endpoint
 * with an example in docs/protocol.md, "HTTP API"):
 *   POST /api/login   {"name","password"} -> 200 {"user":{...}} + session cookie
 *   POST /api/logout  ends the cookie's session -> 200, cookie cleared
 *   POST /api/setup   {"token","name","password"}: the first admin, from the
 *                     one-time setup link -> 200 {"user":{...}} + session cookie
 *   POST /api/invites {"role","hours","uses"} (admin, moderator) -> 200 {"code",...}
 *   POST /api/register {"invite","name","password"} -> 200 {"user":{...}} + cookie
 *   GET  /api/me      the signed-in account -> 200 {"user":{...}}, or
 *                     {"user":null} for a guest (and a cookie whose session
 *                     has ended is cleared)
 *   GET  /api/sessions             your sessions -> 200 {"sessions":[...]}
 *   POST /api/sessions/revoke {"id"}  ends one of them (its sockets close 4002)
 *   POST /api/password {"current","password"}: other sessions revoked
 *   POST /api/moderate {"action","user","minutes","role","reason"}
 *                     (moderators, admins): kick, ban, unban, mute, unmute,
 *                     role -> 200, applied to open connections at once
 *   GET  /api/users, GET /api/audit  (moderators, admins): the lists
 *   GET  /api/tokens, POST /api/tokens {"name"}, POST /api/tokens/revoke {"id"}:
 *                     your bots' personal access tokens (the token is shown once)
 *   POST /api/messages  Authorization: Bearer pvt_...; a chat message object
 *                     as over the WebSocket -> 200 {"seq",...} once stored
 *                     (publish.h). Only a token: a cookie is refused, so no
 *                     other site can make a browser post
 *
 * CSRF: a request that changes state (every POST) must say
 * Content-Type: application/json -- a page on another site cannot send
 * that without a CORS preflight, which palaverd never grants -- and its
 * Origin, when sent, must be the page's own or an allowed one (the rule
 * of the WebSocket handshake, limits.h). Bodies are at most
 * PV_API_BODY_MAX bytes, read only after Content-Length says so.
 *
 * Threads: the handlers run on CivetWeb workers; they use accounts.h
 * (its own lock) and the live settings' atomics (live.h).
 */
#ifndef PALAVER_API_H
#define PALAVER_API_H

#include <jansson.h>

#include <stdbool.h>

#include "palaver/accounts.h"

#define PV_API_BODY_MAX 4096
#define PV_ADDRESS_BAN_HOURS 24 /* a ban's address ban (guests, and accounts in open mode) */

struct mg_connection;
struct mg_context;
struct pv_config;
struct pv_live;
struct pv_queue;

struct pv_api {
    struct pv_accounts *accounts; /* NULL: no data directory, accounts unavailable */
    const struct pv_config *cfg;  /* max_text, max_message, queue_timeout_ms */
    struct pv_queue *queue;       /* moderation and session ends reach open connections
                                   * through the broadcaster (PV_EV_MOD, queue.h) */
    struct pv_live *live;
    const char *registration; /* "invite", "open" or "closed" (the setting) */
    struct pv_files *files;   /* files a published message names (files.h); NULL: none */
};

void pv_api_register(struct mg_context *ctx, struct pv_api *api);

/* A JSON answer (body consumed) with Cache-Control: no-store and nosniff;
 * headers: more header lines ("Name: value\r\n"...), or NULL. Returns
 * status. Every /api/ endpoint answers through these (files.c too). */
int pv_api_reply(struct mg_connection *conn, int status, const char *reason, const char *headers,
                 json_t *body);
/* {"error":code,"message":message} with that status. */
int pv_api_error(struct mg_connection *conn, int status, const char *reason, const char *code,
                 const char *message, const char *headers);

/* The account of the request's session cookie. Returns 1 with *out
 * filled when the cookie names a live session, 0 when no session cookie
 * was sent, -1 when one was sent but is unknown, expired or revoked. */
int pv_api_session(struct pv_accounts *a, const struct mg_connection *conn, struct pv_account *out);

#endif
