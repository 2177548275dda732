/* accounts.h -- people with accounts: users, their password hashes, and
 * their sign-in sessions (issue 15; the design is docs/accounts.md).
 *
 * Storage: the users and sessions tables of palaver.db (schema 2, made by
 * pv_store_upgrade()), through one SQLite connection of this module's own.
 * Only hashes are stored: Argon2id strings for passwords (libsodium's
 * crypto_pwhash_str, interactive limits: 64 MiB and tens of ms each), and
 * the BLAKE2b-256 of each 256-bit session token (the token itself lives
 * only in the person's cookie).
 *
 * Threads: any. Callers are the CivetWeb workers (the HTTP API, the
 * WebSocket handshake) and main (boot, --create-admin). The protocol:
 *  - `mu` guards the connection, its prepared statements and the
 *    throttle table. It is held for one indexed statement at a time
 *    (microseconds), never while a password is hashed.
 *  - Hashing runs on the caller's thread, but only PV_HASH_SLOTS at once
 *    (a counting semaphore): a burst of sign-ins costs at most
 *    PV_HASH_SLOTS x 64 MiB, whatever its size. At most PV_HASH_WAITERS
 *    callers wait for a slot, each at most PV_HASH_WAIT_MS; past either
 *    bound the request is answered busy (503, Retry-After) at once, so a
 *    burst cannot hold every CivetWeb worker either.
 */
#ifndef PALAVER_ACCOUNTS_H
#define PALAVER_ACCOUNTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "palaver/client.h"

#define PV_HASH_SLOTS 2      /* Argon2id hashes at once (64 MiB each) */
#define PV_HASH_WAITERS 16   /* callers waiting for a slot, at most */
#define PV_HASH_WAIT_MS 5000 /* how long one waits before "busy" */
#define PV_PASSWORD_MIN 8    /* bytes */
#define PV_PASSWORD_MAX 1024 /* bytes: the hash input is bounded too */
#define PV_TOKEN_CHARS 43    /* base64url of 32 random bytes, no padding */
#define PV_SESSION_DAYS 30   /* a session lasts this long after its last use */
#define PV_SESSION_COOKIE "palaver_session"

struct pv_accounts;

struct pv_account {
    int64_t id;
    char name[PV_NAME_MAX_BYTES + 1];
    char role[16];       /* "admin", "moderator" or "member" */
    int64_t session;     /* pv_accounts_session(): the session's id (its rowid), else 0 */
    int64_t muted_until; /* ms since the epoch; 0 (or past): not muted */
};

/* Opens (and upgrades: pv_store_upgrade) palaver.db in dir. NULL with
 * err set when it cannot. */
struct pv_accounts *pv_accounts_open(const char *dir, char *err, size_t errsz);
void pv_accounts_close(struct pv_accounts *a);

/* Creates an account (its id, name and role to *out when out is not
 * NULL). Returns 0, or -1 with `code` set to a protocol error code
 * ("bad-name", "name-taken", "bad-password", "busy", "failed") and err to
 * the reason for a person. */
int pv_accounts_create(struct pv_accounts *a, const char *name, const char *password,
                       const char *role, struct pv_account *out, const char **code, char *err,
                       size_t errsz);

/* The one-time setup link: while no admin account exists, main makes a
 * token at start (false, and no token, once there is an admin) and logs
 * the link /setup#<token> -- the fragment never leaves the browser in a
 * request, a Referer or an access log. Only its hash is kept, in memory,
 * for PV_SETUP_HOURS; a restart makes a new one. pv_accounts_setup()
 * spends it: the first admin is created and signed in (a session token
 * to `session`), once; a wrong, spent or expired token, or an admin
 * already there, is refused ("bad-token"). Two setups at once: one wins. */
#define PV_SETUP_HOURS 24
bool pv_accounts_setup_token(struct pv_accounts *a, char token[PV_TOKEN_CHARS + 1]);
int pv_accounts_setup(struct pv_accounts *a, const char *token, const char *name,
                      const char *password, const char *addr, struct pv_account *out,
                      char session[PV_TOKEN_CHARS + 1], const char **code, char *err, size_t errsz);

/* Invites (accounts.md): an admin makes one for any role, a moderator
 * for members only ("forbidden" otherwise). Its code (base64url of 32
 * random bytes) goes to `code_out`; only its hash is stored, with the role
 * it gives, its expiry (1..PV_INVITE_MAX_HOURS) and its uses
 * (1..PV_INVITE_MAX_USES). */
#define PV_INVITE_HOURS 168 /* when the request names none: a week */
#define PV_INVITE_MAX_HOURS 720
#define PV_INVITE_MAX_USES 1000
int pv_accounts_invite(struct pv_accounts *a, const struct pv_account *by, const char *role,
                       unsigned hours, unsigned uses, char code_out[PV_TOKEN_CHARS + 1],
                       const char **code, char *err, size_t errsz);

/* Registration, by the `registration` setting (`mode`): "invite" needs a
 * live invite, one use of which is spent in the same transaction that
 * creates the account (its role is the invite's); "open" needs none
 * (member); "closed" refuses ("registration-closed"). Errors:
 * "bad-invite" (checked before any hash: a code that names no live
 * invite starts the address's sign-in delay), "throttled" (the address
 * is waiting out such a delay, or, where registration is open, made
 * PV_OPEN_REG_PER_ADDR accounts within PV_OPEN_REG_WINDOW_S), and those of pv_accounts_create().
 * The new account is signed in: its session token to `session` ("" if it could not be stored). */
#define PV_OPEN_REG_PER_ADDR 5 /* "open": accounts per address per window */
#define PV_OPEN_REG_WINDOW_S 3600
int pv_accounts_register(struct pv_accounts *a, const char *mode, const char *invite,
                         const char *name, const char *password, const char *addr,
                         struct pv_account *out, char session[PV_TOKEN_CHARS + 1],
                         const char **code, char *err, size_t errsz);

/* True if some account has the admin role. */
bool pv_accounts_has_admin(struct pv_accounts *a);

enum pv_login {
    PV_LOGIN_OK,
    PV_LOGIN_BAD,       /* unknown name or wrong password: one answer for both */
    PV_LOGIN_THROTTLED, /* too many failures from this address or for this name */
    PV_LOGIN_BUSY,      /* no hash slot in time */
};

/* Checks name and password (the hash is computed for unknown names too,
 * against a dummy, so timing does not tell whether a name exists) and,
 * when they match, opens a session: its token goes to `token` (for the
 * cookie). After a failure, the next attempt for the same name or from
 * the same address is judged only after a delay that doubles (1 s up to
 * 15 min); *retry_after_s says how long. */
enum pv_login pv_accounts_login(struct pv_accounts *a, const char *name, const char *password,
                                const char *addr, struct pv_account *out,
                                char token[PV_TOKEN_CHARS + 1], unsigned *retry_after_s);

/* The account of a session token, if the session exists and has not
 * expired; its last use is refreshed (written at most once a minute). */
bool pv_accounts_session(struct pv_accounts *a, const char *token, struct pv_account *out);

/* Ends a session (sign out). True if there was one. */
bool pv_accounts_logout(struct pv_accounts *a, const char *token);

/* True if `key` (pv_nickname_key of a display name) is an account's name. */
bool pv_accounts_name_reserved(struct pv_accounts *a, const char *key);

/* ---- Moderation (docs/accounts.md, "Who may do what") ---- */

#define PV_MUTE_MAX_MINUTES 10080 /* a week */

/* guest 0, member 1, moderator 2, admin 3: one acts only on lower ranks. */
int pv_role_rank(const char *role);

/* The account named `name` (by the name-equivalence key), banned or not. */
bool pv_accounts_find(struct pv_accounts *a, const char *name, struct pv_account *out);

/* Applies `action` to `target` (found by pv_accounts_find) for `by`, and
 * writes the audit line, in one transaction:
 *   "ban"    banned_at set, every session of the target deleted
 *   "unban"  banned_at cleared
 *   "mute"   muted_until = now + minutes (target->muted_until updated)
 *   "unmute" muted_until cleared
 *   "role"   the target's role becomes `role` (admins only)
 * `by` must be a moderator or admin and outrank the target (nobody acts on
 * themselves, an equal or a higher role). Returns 0, or -1 with `code`
 * ("forbidden", "bad-request", "busy", "failed") and err. Closing the
 * target's open connections is the broadcaster's (a PV_EV_MOD event). */
int pv_accounts_moderate(struct pv_accounts *a, const struct pv_account *by, const char *action,
                         struct pv_account *target, unsigned minutes, const char *role,
                         const char *reason, const char **code, char *err, size_t errsz);

/* An audit line without a change in the database (kicks, actions on
 * guests, message deletions). */
void pv_accounts_audit(struct pv_accounts *a, const struct pv_account *by, const char *action,
                       const char *target, const char *detail);

/* Lists as JSON arrays (the caller owns them): the newest audit lines;
 * the accounts by name; the live sessions of `user` (`current` marked). */
typedef struct json_t json_t;
json_t *pv_accounts_audit_list(struct pv_accounts *a, unsigned limit);
json_t *pv_accounts_users(struct pv_accounts *a, unsigned limit);
json_t *pv_accounts_sessions(struct pv_accounts *a, int64_t user, int64_t current);

/* Ends session `session` if it is `user`'s. */
bool pv_accounts_revoke(struct pv_accounts *a, int64_t user, int64_t session);

/* Changes who's password after checking the current one (both hashes
 * through the gate); every other session of theirs is revoked in the same
 * transaction. Codes: "bad-password", "bad-credentials", "busy", "failed". */
int pv_accounts_password(struct pv_accounts *a, const struct pv_account *who, const char *current,
                         const char *password, const char **code, char *err, size_t errsz);

/* Renames who's account (the name profile and equivalence of every
 * name; who->name becomes the new one). Codes: "bad-name", "name-taken",
 * "failed". Open connections learn it from the broadcaster (PV_EV_MOD
 * "rename"). */
int pv_accounts_rename(struct pv_accounts *a, struct pv_account *who, const char *name,
                       const char **code, char *err, size_t errsz);

/* ---- Personal access tokens: bots publish with them (docs/accounts.md,
 * "Bots"; POST /api/messages). A token is "pvt_" and 43 base64url
 * characters (256 random bits); only its hash is stored, with a label. It
 * speaks as its account (name, role, mutes); a banned account's tokens
 * stop working; each account has at most PV_PAT_MAX. */
#define PV_PAT_PREFIX "pvt_"
#define PV_PAT_CHARS (4 + PV_TOKEN_CHARS)
#define PV_PAT_MAX 20
#define PV_PAT_LABEL_MAX 128 /* bytes; the label follows the display-name profile */
int pv_accounts_token_new(struct pv_accounts *a, const struct pv_account *who, const char *label,
                          char out[PV_PAT_CHARS + 1], int64_t *id, const char **code, char *err,
                          size_t errsz);
/* The account a token speaks as (and the token's id), if it is live. */
bool pv_accounts_token_auth(struct pv_accounts *a, const char *token, struct pv_account *out,
                            int64_t *token_id);
/* One message from token `token_id` within rate/s, burst (the chat's
 * --rate-limit and --rate-burst): false when over it. */
bool pv_accounts_token_rate(struct pv_accounts *a, int64_t token_id, unsigned rate, unsigned burst);
json_t *pv_accounts_tokens(struct pv_accounts *a, int64_t user);
bool pv_accounts_token_revoke(struct pv_accounts *a, int64_t user, int64_t id);

#endif
