/* apireq.h -- the request bodies and the session cookie of the accounts'
 * HTTP API (api.h), decoded and checked by pure functions: no I/O, no
 * state, no CivetWeb connection, so they are unit-tested and fuzzed
 * (tests/fuzz/fuzz_api.c) on their own.
 *
 * Threads: none shared; each call works on the caller's data (in palaverd,
 * the CivetWeb worker serving the request).
 */
#ifndef PALAVER_APIREQ_H
#define PALAVER_APIREQ_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "palaver/accounts.h"

enum pv_api_req {
    PV_REQ_LOGIN,    /* {"name","password"} */
    PV_REQ_SETUP,    /* {"token","name","password"} */
    PV_REQ_REGISTER, /* {"invite"?,"name","password"} */
    PV_REQ_INVITE,   /* {"role"?,"hours"?,"uses"?} */
    PV_REQ_MODERATE, /* {"action","user","minutes"?,"role"?,"reason"?} */
    PV_REQ_PASSWORD, /* {"current","password"} */
    PV_REQ_TOKEN,    /* {"name"}: a bot token's label */
    PV_REQ_RENAME,   /* {"name"}: your account's new name */
    PV_REQ_REVOKE,   /* {"id"}: a session or a token (the last kind) */
};

/* The fields a request may carry; strings point into `root` (NUL-free:
 * a string with a NUL inside is refused, so C sees all of it). Numbers
 * are set to their defaults when absent. */
struct pv_api_fields {
    json_t *root; /* owned; pv_api_fields_release() */
    const char *name, *password, *token, *invite, *current, *action, *user, *role, *reason;
    long long hours, uses, minutes, id;
};

#define PV_REASON_MAX 200 /* bytes of a moderation reason */

/* Decodes body[0..len) as a request of `kind`. Returns NULL with *f
 * filled, or the reason it is refused (for a 400), with `*code` set to
 * "bad-json" (not a JSON object) or "bad-request" (a field missing, of the
 * wrong type or out of range); then f->root is NULL. */
const char *pv_api_decode(enum pv_api_req kind, const char *body, size_t len,
                          struct pv_api_fields *f, const char **code);
void pv_api_fields_release(struct pv_api_fields *f);

/* The session token in a Cookie header (cookie NULL: none sent): 1 with
 * the token copied when a palaver_session cookie holds a well-formed
 * token (PV_TOKEN_CHARS base64url characters), 0 when there is no such
 * cookie, -1 when there is one but it is malformed (too long, wrong
 * characters, empty). */
int pv_api_cookie_token(const char *cookie, char token[PV_TOKEN_CHARS + 1]);

#endif
