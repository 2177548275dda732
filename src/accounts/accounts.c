/* accounts.c -- users, password hashes and sessions in palaver.db (see
 * accounts.h for what is stored and why only hashes).
 *
 * Threads: any caller (CivetWeb workers, main). `mu` guards the SQLite
 * connection, its statements and the throttle table, for one statement
 * at a time; password hashing runs outside it, PV_HASH_SLOTS at once
 * (`slots`, a counting semaphore; `waiters` an atomic count of those
 * queued for one). The dummy hash is written once at open, before any
 * other thread can call in, and only read afterwards. */
#include "palaver/accounts.h"

#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <sodium.h>
#include <sqlite3.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "palaver/clock.h"
#include "palaver/limits.h"
#include "palaver/log.h"
#include "palaver/nickname.h"
#include "palaver/store.h"
#include "palaver/xalloc.h"

#define THROTTLE_SLOTS 1024
#define THROTTLE_MAX_S 900
#define TOUCH_EVERY_S 60

/* One name or address that failed to sign in: the next attempt is judged
 * after `next` (wall-clock seconds). Fixed size, overwritten on
 * collision: memory is bounded whatever an attacker tries. */
struct throttle {
    char key[96]; /* "a:<address>" or "n:<name key prefix>" */
    unsigned fails;
    int64_t next; /* monotonic ms */
};

/* Each bot token's message bucket (docs/accounts.md, "Bots"): a fixed
 * table, overwritten on collision, like the sign-in throttle. */
#define TOKEN_RATE_SLOTS 256
struct token_rate {
    int64_t id;
    struct pv_rate r;
};

struct pv_accounts {
    pthread_mutex_t mu;
    sqlite3 *db;
    sqlite3_stmt *by_key, *insert, *session, *touch, *open_session, *end_session, *admins,
        *insert_invite, *spend_invite, *check_invite;
    struct throttle throttle[THROTTLE_SLOTS];
    struct token_rate token_rates[TOKEN_RATE_SLOTS]; /* under mu */
    sem_t slots;
    atomic_uint waiters;
    char dummy[crypto_pwhash_STRBYTES]; /* verified against for unknown names */
    /* The setup link (accounts.h), under mu: the token's hash, until when
     * it holds (monotonic ms; 0: none), and whether a setup is using it. */
    unsigned char setup_hash[32];
    int64_t setup_until;
    bool setup_busy;
};

struct throttle;
static struct throttle *throttle_slot(struct pv_accounts *a, const char *kind, const char *what,
                                      bool create);
static void throttle_fail(struct pv_accounts *a, const char *kind, const char *what, int64_t now);
static void token_hash(const char *token, char out[65]);

/* A new secret (session token, invite code, setup token): 32 bytes from
 * libsodium's CSPRNG, base64url without padding (PV_TOKEN_CHARS). */
static void new_token(char out[PV_TOKEN_CHARS + 1])
{
    unsigned char raw[32];
    randombytes_buf(raw, sizeof(raw));
    sodium_bin2base64(out, PV_TOKEN_CHARS + 1, raw, sizeof(raw),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof(raw));
}
static bool token_well_formed(const char *t);
static bool open_session(struct pv_accounts *a, int64_t id, const char *addr, int64_t now,
                         char token[PV_TOKEN_CHARS + 1]);

static int64_t now_s(void)
{
    return (int64_t)time(NULL);
}

static int64_t mono_ms(void)
{
    return (int64_t)(pv_mono_ns() / 1000000u);
}

static int prepare(struct pv_accounts *a, const char *sql, sqlite3_stmt **st, char *err,
                   size_t errsz)
{
    if (sqlite3_prepare_v3(a->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) == SQLITE_OK)
        return 0;
    snprintf(err, errsz, "accounts: %s: %s", sql, sqlite3_errmsg(a->db));
    return -1;
}

/* The hash gate (accounts.h): true when a slot was taken. */
static bool hash_enter(struct pv_accounts *a)
{
    if (atomic_fetch_add(&a->waiters, 1) >= PV_HASH_WAITERS) {
        atomic_fetch_sub(&a->waiters, 1);
        return false;
    }
    struct timespec deadline = pv_mono_deadline(PV_HASH_WAIT_MS);
    int rc;
    while ((rc = sem_clockwait(&a->slots, CLOCK_MONOTONIC, &deadline)) == -1 && errno == EINTR)
        ;
    atomic_fetch_sub(&a->waiters, 1);
    return rc == 0;
}

static void hash_leave(struct pv_accounts *a)
{
    sem_post(&a->slots);
}

static int hash_password(struct pv_accounts *a, char out[crypto_pwhash_STRBYTES], const char *pw)
{
    if (!hash_enter(a))
        return 1; /* busy */
    int rc = crypto_pwhash_str(out, pw, strlen(pw), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                               crypto_pwhash_MEMLIMIT_INTERACTIVE);
    hash_leave(a);
    return rc == 0 ? 0 : -1;
}

struct pv_accounts *pv_accounts_open(const char *dir, char *err, size_t errsz)
{
    char path[4096];
    if (sodium_init() < 0) {
        snprintf(err, errsz, "accounts: libsodium could not initialise");
        return NULL;
    }
    if (pv_store_upgrade(dir, err, errsz) != 0)
        return NULL;
    struct pv_accounts *a = pv_xcalloc(1, sizeof(*a));
    pthread_mutex_init(&a->mu, NULL);
    sem_init(&a->slots, 0, PV_HASH_SLOTS);
    atomic_init(&a->waiters, 0);
    snprintf(path, sizeof(path), "%s/palaver.db", dir);
    /* NOMUTEX: `mu` serialises every use of this connection. */
    if (sqlite3_open_v2(path, &a->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        snprintf(err, errsz, "accounts: cannot open %s: %s", path,
                 a->db ? sqlite3_errmsg(a->db) : "no memory");
        goto fail;
    }
    sqlite3_busy_timeout(a->db, 5000);
    sqlite3_exec(a->db, "PRAGMA foreign_keys=ON; PRAGMA synchronous=FULL", NULL, NULL, NULL);
    if (prepare(a,
                "SELECT id, name, pass_hash, role, banned_at IS NOT NULL FROM users "
                "WHERE name_key = ?1",
                &a->by_key, err, errsz) ||
        prepare(a,
                "INSERT INTO users (name, name_key, pass_hash, role, created) "
                "VALUES (?1, ?2, ?3, ?4, ?5)",
                &a->insert, err, errsz) ||
        prepare(a,
                "SELECT u.id, u.name, u.role, s.last_used, s.expires, u.banned_at IS NOT NULL, "
                "s.rowid, coalesce(u.muted_until, 0) FROM sessions s JOIN users u ON u.id = "
                "s.user_id WHERE s.token_hash = ?1",
                &a->session, err, errsz) ||
        prepare(a, "UPDATE sessions SET last_used = ?2, expires = ?3 WHERE token_hash = ?1",
                &a->touch, err, errsz) ||
        prepare(a,
                "INSERT INTO sessions (token_hash, user_id, created, last_used, expires, addr) "
                "VALUES (?1, ?2, ?3, ?3, ?4, ?5)",
                &a->open_session, err, errsz) ||
        prepare(a, "DELETE FROM sessions WHERE token_hash = ?1", &a->end_session, err, errsz) ||
        prepare(a, "SELECT count(*) FROM users WHERE role = 'admin'", &a->admins, err, errsz) ||
        prepare(a,
                "INSERT INTO invites (code_hash, created_by, role, created, expires, uses_left) "
                "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                &a->insert_invite, err, errsz) ||
        prepare(a,
                "UPDATE invites SET uses_left = uses_left - 1 WHERE code_hash = ?1 AND "
                "uses_left > 0 AND expires > ?2 RETURNING role",
                &a->spend_invite, err, errsz) ||
        prepare(a, "SELECT 1 FROM invites WHERE code_hash = ?1 AND uses_left > 0 AND expires > ?2",
                &a->check_invite, err, errsz))
        goto fail;
    /* Unknown names are verified against this, so that a wrong name costs
     * what a wrong password costs (accounts.h). */
    unsigned char noise[32];
    char pw[65];
    randombytes_buf(noise, sizeof(noise));
    sodium_bin2hex(pw, sizeof(pw), noise, sizeof(noise));
    if (crypto_pwhash_str(a->dummy, pw, strlen(pw), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                          crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
        snprintf(err, errsz, "accounts: cannot hash (out of memory for Argon2id's 64 MiB?)");
        goto fail;
    }
    return a;
fail:
    pv_accounts_close(a);
    return NULL;
}

void pv_accounts_close(struct pv_accounts *a)
{
    if (!a)
        return;
    sqlite3_stmt *all[] = {a->by_key,       a->insert,      a->session, a->touch,
                           a->open_session, a->end_session, a->admins,  a->insert_invite,
                           a->spend_invite, a->check_invite};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        sqlite3_finalize(all[i]);
    /* SQLITE_BUSY here means a statement was left out of the list above:
     * the connection would stay open and leak (the ASan build says so). */
    if (sqlite3_close(a->db) != SQLITE_OK)
        pv_err("accounts: the database did not close: %s", sqlite3_errmsg(a->db));
    sem_destroy(&a->slots);
    pthread_mutex_destroy(&a->mu);
    sodium_memzero(a, sizeof(*a));
    free(a);
}

/* The display name of an account and its comparison key, by the same
 * profile as every display name (nickname.h). */
static bool name_and_key(const char *name, char out[PV_NAME_MAX_BYTES + 1],
                         char key[PV_NAME_KEY_MAX], const char **why)
{
    if (!pv_nickname_prepare(name, strlen(name), out, PV_NAME_MAX_BYTES + 1, why))
        return false;
    if (!pv_nickname_key(out, key)) {
        *why = "name is too complex to compare with others";
        return false;
    }
    if (pv_nickname_reserved(key)) {
        *why = "names like guest-1a2b are given by the server";
        return false;
    }
    return true;
}

/* What every new account passes before anything is stored: the name's
 * profile and key, the password's length, and its hash (the gate). */
struct new_account {
    char display[PV_NAME_MAX_BYTES + 1];
    char key[PV_NAME_KEY_MAX];
    char hash[crypto_pwhash_STRBYTES];
};

static int prepare_account(struct pv_accounts *a, const char *name, const char *password,
                           struct new_account *na, const char **code, char *err, size_t errsz)
{
    const char *why = NULL;
    if (!name_and_key(name, na->display, na->key, &why)) {
        *code = "bad-name";
        snprintf(err, errsz, "%s", why);
        return -1;
    }
    size_t n = strlen(password);
    if (n < PV_PASSWORD_MIN || n > PV_PASSWORD_MAX) {
        *code = "bad-password";
        snprintf(err, errsz, "a password has %d to %d bytes", PV_PASSWORD_MIN, PV_PASSWORD_MAX);
        return -1;
    }
    int h = hash_password(a, na->hash, password);
    if (h != 0) {
        *code = h > 0 ? "busy" : "failed";
        snprintf(err, errsz, "%s",
                 h > 0 ? "too many passwords being hashed, try again"
                       : "the password could not be hashed (out of memory?)");
        return -1;
    }
    return 0;
}

/* Stores a prepared account. Under mu. */
static int insert_user(struct pv_accounts *a, const struct new_account *na, const char *role,
                       struct pv_account *out, const char **code, char *err, size_t errsz)
{
    sqlite3_stmt *st = a->insert;
    sqlite3_bind_text(st, 1, na->display, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, na->key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, na->hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, role, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, now_s());
    int rc = sqlite3_step(st);
    int ext = sqlite3_extended_errcode(a->db);
    if (rc == SQLITE_DONE && out) {
        *out = (struct pv_account){.id = sqlite3_last_insert_rowid(a->db)};
        snprintf(out->name, sizeof(out->name), "%s", na->display);
        snprintf(out->role, sizeof(out->role), "%s", role);
    } else if (rc != SQLITE_DONE) {
        snprintf(err, errsz, "%s", sqlite3_errmsg(a->db));
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc == SQLITE_DONE)
        return 0;
    if (ext == SQLITE_CONSTRAINT_UNIQUE) {
        *code = "name-taken";
        snprintf(err, errsz, "an account with that name (or one that looks the same) exists");
    } else {
        *code = "failed";
    }
    return -1;
}

int pv_accounts_create(struct pv_accounts *a, const char *name, const char *password,
                       const char *role, struct pv_account *out, const char **code, char *err,
                       size_t errsz)
{
    struct new_account na;
    if (prepare_account(a, name, password, &na, code, err, errsz) != 0)
        return -1;
    pthread_mutex_lock(&a->mu);
    int rc = insert_user(a, &na, role, out, code, err, errsz);
    pthread_mutex_unlock(&a->mu);
    sodium_memzero(&na, sizeof(na));
    return rc;
}

static bool role_valid(const char *role)
{
    return strcmp(role, "member") == 0 || strcmp(role, "moderator") == 0 ||
           strcmp(role, "admin") == 0;
}

int pv_accounts_invite(struct pv_accounts *a, const struct pv_account *by, const char *role,
                       unsigned hours, unsigned uses, char code_out[PV_TOKEN_CHARS + 1],
                       const char **code, char *err, size_t errsz)
{
    bool admin = strcmp(by->role, "admin") == 0;
    if (!admin && strcmp(by->role, "moderator") != 0) {
        *code = "forbidden";
        snprintf(err, errsz, "only admins and moderators make invites");
        return -1;
    }
    if (!role_valid(role) || (!admin && strcmp(role, "member") != 0)) {
        *code = "forbidden";
        snprintf(err, errsz, "%s",
                 role_valid(role) ? "moderators invite members only"
                                  : "role must be member, moderator or admin");
        return -1;
    }
    if (hours < 1 || hours > PV_INVITE_MAX_HOURS || uses < 1 || uses > PV_INVITE_MAX_USES) {
        *code = "bad-request";
        snprintf(err, errsz, "an invite lasts 1 to %d hours and serves 1 to %d people",
                 PV_INVITE_MAX_HOURS, PV_INVITE_MAX_USES);
        return -1;
    }
    char stored[65];
    new_token(code_out);
    token_hash(code_out, stored);
    int64_t now = now_s();
    pthread_mutex_lock(&a->mu);
    sqlite3_stmt *st = a->insert_invite;
    sqlite3_bind_text(st, 1, stored, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, by->id);
    sqlite3_bind_text(st, 3, role, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, now);
    sqlite3_bind_int64(st, 5, now + (int64_t)hours * 3600);
    sqlite3_bind_int64(st, 6, uses);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    pthread_mutex_unlock(&a->mu);
    if (rc != SQLITE_DONE) {
        *code = "failed";
        snprintf(err, errsz, "the invite could not be saved");
        return -1;
    }
    return 0;
}

/* An open registration that failed gives its place back (see below). */
static void release_open_slot(struct pv_accounts *a, const char *addr)
{
    pthread_mutex_lock(&a->mu);
    struct throttle *r = throttle_slot(a, "r", addr, false);
    if (r && r->fails > 0)
        r->fails--;
    pthread_mutex_unlock(&a->mu);
}

int pv_accounts_register(struct pv_accounts *a, const char *mode, const char *invite,
                         const char *name, const char *password, const char *addr,
                         struct pv_account *out, char session[PV_TOKEN_CHARS + 1],
                         const char **code, char *err, size_t errsz)
{
    bool open_mode = strcmp(mode, "open") == 0;
    if (strcmp(mode, "closed") == 0 || (!open_mode && strcmp(mode, "invite") != 0)) {
        *code = "registration-closed";
        snprintf(err, errsz, "accounts are made by the admins here");
        return -1;
    }
    char stored[65] = "";
    if (!open_mode) {
        if (!invite || !token_well_formed(invite)) {
            *code = "bad-invite";
            snprintf(err, errsz, "an invite is needed (ask an admin or moderator)");
            return -1;
        }
        token_hash(invite, stored);
    }
    int64_t now = now_s();
    /* Before any hash: an address still waiting out a failure is told
     * so, and a code that names no live invite costs one indexed SELECT
     * and starts that wait (login's table). Forged codes therefore cannot
     * keep the hash slots busy for the people signing in. */
    pthread_mutex_lock(&a->mu);
    const struct throttle *t = throttle_slot(a, "a", addr, false);
    int64_t wait_ms = t ? t->next - mono_ms() : 0;
    bool live = open_mode || wait_ms > 0;
    /* Open registration: at most PV_OPEN_REG_PER_ADDR accounts per
     * address per hour (a slot in the same bounded table; an attempt
     * holds its place until it fails). */
    int64_t cap_ms = 0;
    if (open_mode && wait_ms <= 0) {
        struct throttle *r = throttle_slot(a, "r", addr, true);
        int64_t m = mono_ms();
        if (r->next <= m) {
            r->fails = 0;
            r->next = m + (int64_t)PV_OPEN_REG_WINDOW_S * 1000;
        }
        if (r->fails >= PV_OPEN_REG_PER_ADDR)
            cap_ms = r->next - m;
        else
            r->fails++;
    }
    if (!open_mode && wait_ms <= 0) {
        sqlite3_bind_text(a->check_invite, 1, stored, -1, SQLITE_STATIC);
        sqlite3_bind_int64(a->check_invite, 2, now);
        live = sqlite3_step(a->check_invite) == SQLITE_ROW;
        sqlite3_reset(a->check_invite);
        sqlite3_clear_bindings(a->check_invite);
        if (!live)
            throttle_fail(a, "a", addr, mono_ms());
    }
    pthread_mutex_unlock(&a->mu);
    if (wait_ms > 0) {
        *code = "throttled";
        snprintf(err, errsz, "too many failed attempts from your address: wait %lld s",
                 (long long)(wait_ms + 999) / 1000);
        return -1;
    }
    if (cap_ms > 0) {
        *code = "throttled";
        snprintf(err, errsz,
                 "%d accounts were made from your address in the last hour: wait %lld min",
                 PV_OPEN_REG_PER_ADDR, (long long)(cap_ms + 59999) / 60000);
        return -1;
    }
    if (!live) {
        *code = "bad-invite";
        snprintf(err, errsz, "this invite is not valid (used up, expired or unknown)");
        return -1;
    }
    struct new_account na;
    if (prepare_account(a, name, password, &na, code, err, errsz) != 0) {
        if (open_mode)
            release_open_slot(a, addr);
        return -1;
    }
    char role[16] = "member";
    int rc = -1;
    pthread_mutex_lock(&a->mu);
    /* One use of the invite and the account, in one transaction: two
     * people racing for the last use cannot both get in (the SELECT
     * above only spared the hash; this UPDATE decides). */
    if (sqlite3_exec(a->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        pthread_mutex_unlock(&a->mu);
        sodium_memzero(&na, sizeof(na));
        *code = "busy";
        snprintf(err, errsz, "the database is busy, try again");
        return -1;
    }
    if (!open_mode) {
        sqlite3_stmt *st = a->spend_invite;
        sqlite3_bind_text(st, 1, stored, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, now);
        bool spent = sqlite3_step(st) == SQLITE_ROW;
        if (spent)
            snprintf(role, sizeof(role), "%s", (const char *)sqlite3_column_text(st, 0));
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        if (!spent) {
            *code = "bad-invite";
            snprintf(err, errsz, "this invite is not valid (used up, expired or unknown)");
            goto done;
        }
    }
    rc = insert_user(a, &na, role, out, code, err, errsz);
done:
    sqlite3_exec(a->db, rc == 0 ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL);
    if (rc != 0 && open_mode) {
        struct throttle *r = throttle_slot(a, "r", addr, false);
        if (r && r->fails > 0)
            r->fails--;
    }
    if (rc == 0 && !open_session(a, out->id, addr, now, session))
        session[0] = '\0';
    pthread_mutex_unlock(&a->mu);
    sodium_memzero(&na, sizeof(na));
    return rc;
}

bool pv_accounts_has_admin(struct pv_accounts *a)
{
    pthread_mutex_lock(&a->mu);
    bool any = sqlite3_step(a->admins) == SQLITE_ROW && sqlite3_column_int64(a->admins, 0) > 0;
    sqlite3_reset(a->admins);
    pthread_mutex_unlock(&a->mu);
    return any;
}

bool pv_accounts_name_reserved(struct pv_accounts *a, const char *key)
{
    pthread_mutex_lock(&a->mu);
    sqlite3_bind_text(a->by_key, 1, key, -1, SQLITE_STATIC);
    bool found = sqlite3_step(a->by_key) == SQLITE_ROW;
    sqlite3_reset(a->by_key);
    sqlite3_clear_bindings(a->by_key);
    pthread_mutex_unlock(&a->mu);
    return found;
}

/* Throttle entries: under mu. */
static struct throttle *throttle_slot(struct pv_accounts *a, const char *kind, const char *what,
                                      bool create)
{
    char key[96];
    snprintf(key, sizeof(key), "%s:%s", kind, what);
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const char *p = key; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    struct throttle *t = &a->throttle[h % THROTTLE_SLOTS];
    if (strcmp(t->key, key) == 0)
        return t;
    if (!create)
        return NULL;
    snprintf(t->key, sizeof(t->key), "%s", key);
    t->fails = 0;
    t->next = 0;
    return t;
}

static int64_t throttled_until(struct pv_accounts *a, const char *addr, const char *key)
{
    int64_t until = 0;
    const struct throttle *t = throttle_slot(a, "a", addr, false);
    if (t && t->next > until)
        until = t->next;
    t = throttle_slot(a, "n", key, false);
    if (t && t->next > until)
        until = t->next;
    return until;
}

static void throttle_fail(struct pv_accounts *a, const char *kind, const char *what, int64_t now)
{
    struct throttle *t = throttle_slot(a, kind, what, true);
    if (t->fails < 16)
        t->fails++;
    int64_t delay = (int64_t)1 << (t->fails - 1);
    t->next = now + 1000 * (delay < THROTTLE_MAX_S ? delay : THROTTLE_MAX_S);
}

static void throttle_clear(struct pv_accounts *a, const char *kind, const char *what)
{
    struct throttle *t = throttle_slot(a, kind, what, false);
    if (t)
        memset(t, 0, sizeof(*t));
}

/* The stored form of a session token: hex BLAKE2b-256 of the token. */
static void token_hash(const char *token, char out[65])
{
    unsigned char h[32];
    crypto_generichash(h, sizeof(h), (const unsigned char *)token, strlen(token), NULL, 0);
    sodium_bin2hex(out, 65, h, sizeof(h));
}

static bool token_well_formed(const char *t)
{
    size_t n = 0;
    for (; t[n]; n++) {
        char ch = t[n];
        bool ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                  (ch >= '0' && ch <= '9') || ch == '-' || ch == '_';
        if (!ok || n >= PV_TOKEN_CHARS)
            return false;
    }
    return n == PV_TOKEN_CHARS;
}

/* A new session for account `id`: its token to `token`, its hash to the
 * database. Under mu. */
static bool open_session(struct pv_accounts *a, int64_t id, const char *addr, int64_t now,
                         char token[PV_TOKEN_CHARS + 1])
{
    char stored[65];
    new_token(token);
    token_hash(token, stored);
    sqlite3_stmt *st = a->open_session;
    sqlite3_bind_text(st, 1, stored, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, id);
    sqlite3_bind_int64(st, 3, now);
    sqlite3_bind_int64(st, 4, now + (int64_t)PV_SESSION_DAYS * 86400);
    sqlite3_bind_text(st, 5, addr, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_DONE)
        pv_err("accounts: could not store a new session for id=%lld: %s", (long long)id,
               sqlite3_errstr(rc));
    return rc == SQLITE_DONE;
}

enum pv_login pv_accounts_login(struct pv_accounts *a, const char *name, const char *password,
                                const char *addr, struct pv_account *out,
                                char token[PV_TOKEN_CHARS + 1], unsigned *retry_after_s)
{
    char display[PV_NAME_MAX_BYTES + 1], key[PV_NAME_KEY_MAX], hash[crypto_pwhash_STRBYTES];
    const char *why;
    bool named = name_and_key(name, display, key, &why);
    if (!named)
        snprintf(key, sizeof(key), "-"); /* no such account can exist: verify the dummy */
    bool found = false, banned = false;
    int64_t now = now_s(), now_ms = mono_ms();

    pthread_mutex_lock(&a->mu);
    int64_t until = throttled_until(a, addr, key);
    if (until > now_ms) {
        pthread_mutex_unlock(&a->mu);
        *retry_after_s = (unsigned)((until - now_ms + 999) / 1000);
        return PV_LOGIN_THROTTLED;
    }
    if (named) {
        sqlite3_bind_text(a->by_key, 1, key, -1, SQLITE_STATIC);
        if (sqlite3_step(a->by_key) == SQLITE_ROW) {
            found = true;
            out->id = sqlite3_column_int64(a->by_key, 0);
            snprintf(out->name, sizeof(out->name), "%s",
                     (const char *)sqlite3_column_text(a->by_key, 1));
            snprintf(hash, sizeof(hash), "%s", (const char *)sqlite3_column_text(a->by_key, 2));
            snprintf(out->role, sizeof(out->role), "%s",
                     (const char *)sqlite3_column_text(a->by_key, 3));
            banned = sqlite3_column_int(a->by_key, 4) != 0;
        }
        sqlite3_reset(a->by_key);
        sqlite3_clear_bindings(a->by_key);
    }
    pthread_mutex_unlock(&a->mu);

    size_t pwlen = strlen(password);
    if (pwlen > PV_PASSWORD_MAX)
        pwlen = PV_PASSWORD_MAX; /* hashing cost stays bounded; it cannot match anyway */
    if (!hash_enter(a))
        return PV_LOGIN_BUSY;
    bool match = crypto_pwhash_str_verify(found ? hash : a->dummy, password, pwlen) == 0;
    hash_leave(a);
    sodium_memzero(hash, sizeof(hash));
    match = match && found && !banned && strlen(password) <= PV_PASSWORD_MAX;

    pthread_mutex_lock(&a->mu);
    if (!match) {
        now_ms = mono_ms(); /* the delay counts from the answer, after the hash */
        throttle_fail(a, "a", addr, now_ms);
        throttle_fail(a, "n", key, now_ms);
        pthread_mutex_unlock(&a->mu);
        *retry_after_s = 0;
        return PV_LOGIN_BAD;
    }
    throttle_clear(a, "a", addr);
    throttle_clear(a, "n", key);
    bool opened = open_session(a, out->id, addr, now, token);
    pthread_mutex_unlock(&a->mu);
    return opened ? PV_LOGIN_OK : PV_LOGIN_BUSY;
}

bool pv_accounts_setup_token(struct pv_accounts *a, char token[PV_TOKEN_CHARS + 1])
{
    if (pv_accounts_has_admin(a))
        return false;
    new_token(token);
    pthread_mutex_lock(&a->mu);
    crypto_generichash(a->setup_hash, sizeof(a->setup_hash), (const unsigned char *)token,
                       strlen(token), NULL, 0);
    a->setup_until = mono_ms() + (int64_t)PV_SETUP_HOURS * 3600 * 1000;
    pthread_mutex_unlock(&a->mu);
    return true;
}

int pv_accounts_setup(struct pv_accounts *a, const char *token, const char *name,
                      const char *password, const char *addr, struct pv_account *out,
                      char session[PV_TOKEN_CHARS + 1], const char **code, char *err, size_t errsz)
{
    unsigned char h[32];
    bool ok = token_well_formed(token);
    if (ok)
        crypto_generichash(h, sizeof(h), (const unsigned char *)token, strlen(token), NULL, 0);
    /* Claim the token under the lock (compared in constant time), so two
     * setups at once cannot both go on; given back if creating fails. */
    pthread_mutex_lock(&a->mu);
    ok = ok && a->setup_until > mono_ms() && !a->setup_busy &&
         sodium_memcmp(h, a->setup_hash, sizeof(h)) == 0;
    if (ok)
        a->setup_busy = true;
    pthread_mutex_unlock(&a->mu);
    if (!ok || pv_accounts_has_admin(a)) {
        if (ok) {
            pthread_mutex_lock(&a->mu);
            a->setup_busy = false;
            a->setup_until = 0; /* an admin exists: the link is spent */
            pthread_mutex_unlock(&a->mu);
        }
        *code = "bad-token";
        snprintf(err, errsz, "this setup link is not valid (used, expired, or an admin exists)");
        return -1;
    }
    int rc = pv_accounts_create(a, name, password, "admin", out, code, err, errsz);
    pthread_mutex_lock(&a->mu);
    a->setup_busy = false;
    if (rc == 0) {
        a->setup_until = 0; /* spent */
        sodium_memzero(a->setup_hash, sizeof(a->setup_hash));
        if (!open_session(a, out->id, addr, now_s(), session))
            session[0] = '\0';
    }
    pthread_mutex_unlock(&a->mu);
    return rc;
}

bool pv_accounts_session(struct pv_accounts *a, const char *token, struct pv_account *out)
{
    char stored[65];
    if (!token_well_formed(token))
        return false;
    token_hash(token, stored);
    int64_t now = now_s();
    bool ok = false, expired = false;

    pthread_mutex_lock(&a->mu);
    sqlite3_stmt *st = a->session;
    sqlite3_bind_text(st, 1, stored, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW) {
        int64_t last_used = sqlite3_column_int64(st, 3), expires = sqlite3_column_int64(st, 4);
        bool banned = sqlite3_column_int(st, 5) != 0;
        expired = expires <= now;
        ok = !expired && !banned;
        if (ok) {
            out->id = sqlite3_column_int64(st, 0);
            snprintf(out->name, sizeof(out->name), "%s", (const char *)sqlite3_column_text(st, 1));
            snprintf(out->role, sizeof(out->role), "%s", (const char *)sqlite3_column_text(st, 2));
            out->session = sqlite3_column_int64(st, 6);
            out->muted_until = sqlite3_column_int64(st, 7);
        }
        if (ok && now - last_used >= TOUCH_EVERY_S) {
            sqlite3_reset(st);
            sqlite3_bind_text(a->touch, 1, stored, -1, SQLITE_STATIC);
            sqlite3_bind_int64(a->touch, 2, now);
            sqlite3_bind_int64(a->touch, 3, now + (int64_t)PV_SESSION_DAYS * 86400);
            sqlite3_step(a->touch);
            sqlite3_reset(a->touch);
            sqlite3_clear_bindings(a->touch);
        }
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (expired) {
        sqlite3_bind_text(a->end_session, 1, stored, -1, SQLITE_STATIC);
        sqlite3_step(a->end_session);
        sqlite3_reset(a->end_session);
        sqlite3_clear_bindings(a->end_session);
    }
    pthread_mutex_unlock(&a->mu);
    return ok;
}

bool pv_accounts_logout(struct pv_accounts *a, const char *token)
{
    char stored[65];
    if (!token_well_formed(token))
        return false;
    token_hash(token, stored);
    pthread_mutex_lock(&a->mu);
    sqlite3_bind_text(a->end_session, 1, stored, -1, SQLITE_STATIC);
    bool done = sqlite3_step(a->end_session) == SQLITE_DONE && sqlite3_changes(a->db) > 0;
    sqlite3_reset(a->end_session);
    sqlite3_clear_bindings(a->end_session);
    pthread_mutex_unlock(&a->mu);
    return done;
}

/* ---- Moderation, the audit log, sessions and passwords ---- */

int pv_role_rank(const char *role)
{
    return strcmp(role, "admin") == 0       ? 3
           : strcmp(role, "moderator") == 0 ? 2
           : strcmp(role, "member") == 0    ? 1
                                            : 0;
}

/* Runs one statement with text/int binds ("t" or "i" per parameter);
 * one-off statements for what is rare (moderation, lists). Under mu.
 * Returns the step's result, the statement finalized unless `keep`. */
static int run(struct pv_accounts *a, const char *sql, sqlite3_stmt **keep, const char *types, ...)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(a->db, sql, -1, &st, NULL) != SQLITE_OK) {
        pv_err("accounts: %s: %s", sql, sqlite3_errmsg(a->db));
        return SQLITE_ERROR;
    }
    va_list ap;
    va_start(ap, types);
    for (int i = 0; types[i]; i++) {
        if (types[i] == 't')
            sqlite3_bind_text(st, i + 1, va_arg(ap, const char *), -1, SQLITE_TRANSIENT);
        else
            sqlite3_bind_int64(st, i + 1, va_arg(ap, int64_t));
    }
    va_end(ap);
    int rc = sqlite3_step(st);
    if (keep && rc == SQLITE_ROW)
        *keep = st;
    else
        sqlite3_finalize(st);
    return rc;
}

bool pv_accounts_find(struct pv_accounts *a, const char *name, struct pv_account *out)
{
    char display[PV_NAME_MAX_BYTES + 1], key[PV_NAME_KEY_MAX];
    const char *why;
    if (!name_and_key(name, display, key, &why))
        return false;
    sqlite3_stmt *st = NULL;
    pthread_mutex_lock(&a->mu);
    bool found = run(a,
                     "SELECT id, name, role, coalesce(muted_until, 0), banned_at IS NOT NULL "
                     "FROM users WHERE name_key = ?1",
                     &st, "t", key) == SQLITE_ROW;
    if (found) {
        *out = (struct pv_account){.id = sqlite3_column_int64(st, 0),
                                   .muted_until = sqlite3_column_int64(st, 3)};
        snprintf(out->name, sizeof(out->name), "%s", (const char *)sqlite3_column_text(st, 1));
        snprintf(out->role, sizeof(out->role), "%s", (const char *)sqlite3_column_text(st, 2));
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&a->mu);
    return found;
}

static void audit_locked(struct pv_accounts *a, const struct pv_account *by, const char *action,
                         const char *target, const char *detail)
{
    if (run(a,
            "INSERT INTO audit (at, actor_id, actor, action, target, detail) "
            "VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            NULL, "iitttt", (int64_t)time(NULL) * 1000, by->id, by->name, action, target,
            detail ? detail : "") != SQLITE_DONE)
        pv_err("accounts: could not write the audit line %s by %s on %s", action, by->name, target);
}

void pv_accounts_audit(struct pv_accounts *a, const struct pv_account *by, const char *action,
                       const char *target, const char *detail)
{
    pthread_mutex_lock(&a->mu);
    audit_locked(a, by, action, target, detail);
    pthread_mutex_unlock(&a->mu);
}

int pv_accounts_moderate(struct pv_accounts *a, const struct pv_account *by, const char *action,
                         struct pv_account *target, unsigned minutes, const char *role,
                         const char *reason, const char **code, char *err, size_t errsz)
{
    int by_rank = pv_role_rank(by->role), target_rank = pv_role_rank(target->role);
    bool admin_only = strcmp(action, "role") == 0;
    *code = "forbidden";
    if (by_rank < 2 || (admin_only && by_rank < 3)) {
        snprintf(err, errsz, "%s", admin_only ? "only an admin changes roles" : "moderators only");
        return -1;
    }
    if (target->id == by->id || target_rank >= by_rank) {
        snprintf(err, errsz, "you can only %s someone of a lower role than yours", action);
        return -1;
    }
    if (admin_only && (!role || !role_valid(role))) {
        *code = "bad-request";
        snprintf(err, errsz, "\"role\" must be member, moderator or admin");
        return -1;
    }
    int64_t now_ms = (int64_t)time(NULL) * 1000;
    char detail[192];
    snprintf(detail, sizeof(detail), "%s", reason ? reason : "");
    pthread_mutex_lock(&a->mu);
    int rc = SQLITE_DONE;
    bool ok = sqlite3_exec(a->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK;
    if (!ok)
        rc = SQLITE_BUSY;
    else if (strcmp(action, "ban") == 0)
        rc = run(a, "UPDATE users SET banned_at = ?2 WHERE id = ?1", NULL, "ii", target->id,
                 now_ms) == SQLITE_DONE
                 ? run(a, "DELETE FROM sessions WHERE user_id = ?1", NULL, "i", target->id)
                 : SQLITE_ERROR;
    else if (strcmp(action, "unban") == 0)
        rc = run(a, "UPDATE users SET banned_at = NULL WHERE id = ?1", NULL, "i", target->id);
    else if (strcmp(action, "mute") == 0) {
        target->muted_until = now_ms + (int64_t)minutes * 60000;
        rc = run(a, "UPDATE users SET muted_until = ?2 WHERE id = ?1", NULL, "ii", target->id,
                 target->muted_until);
        snprintf(detail, sizeof(detail), "%u min%s%.160s", minutes, reason && *reason ? ": " : "",
                 reason ? reason : "");
    } else if (strcmp(action, "unmute") == 0) {
        target->muted_until = 0;
        rc = run(a, "UPDATE users SET muted_until = NULL WHERE id = ?1", NULL, "i", target->id);
    } else if (admin_only) {
        rc = run(a, "UPDATE users SET role = ?2 WHERE id = ?1", NULL, "it", target->id, role);
        snprintf(detail, sizeof(detail), "%s -> %s", target->role, role);
        snprintf(target->role, sizeof(target->role), "%s", role);
    }
    if (ok && rc == SQLITE_DONE)
        audit_locked(a, by, action, target->name, detail);
    if (ok && rc == SQLITE_DONE && sqlite3_exec(a->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        rc = SQLITE_ERROR;
    if (ok && rc != SQLITE_DONE)
        sqlite3_exec(a->db, "ROLLBACK", NULL, NULL, NULL);
    pthread_mutex_unlock(&a->mu);
    if (rc != SQLITE_DONE) {
        *code = rc == SQLITE_BUSY ? "busy" : "failed";
        snprintf(err, errsz, "the change could not be saved");
        return -1;
    }
    return 0;
}

json_t *pv_accounts_audit_list(struct pv_accounts *a, unsigned limit)
{
    json_t *out = json_array();
    sqlite3_stmt *st = NULL;
    pthread_mutex_lock(&a->mu);
    int rc = run(a, "SELECT at, actor, action, target, detail FROM audit ORDER BY id DESC LIMIT ?1",
                 &st, "i", (int64_t)limit);
    while (rc == SQLITE_ROW) {
        json_array_append_new(
            out,
            json_pack("{s:I, s:s, s:s, s:s, s:s}", "at", (json_int_t)sqlite3_column_int64(st, 0),
                      "by", sqlite3_column_text(st, 1), "action", sqlite3_column_text(st, 2),
                      "target", sqlite3_column_text(st, 3), "detail", sqlite3_column_text(st, 4)));
        rc = sqlite3_step(st);
    }
    if (st)
        sqlite3_finalize(st);
    pthread_mutex_unlock(&a->mu);
    return out;
}

json_t *pv_accounts_users(struct pv_accounts *a, unsigned limit)
{
    json_t *out = json_array();
    sqlite3_stmt *st = NULL;
    int64_t now_ms = (int64_t)time(NULL) * 1000;
    pthread_mutex_lock(&a->mu);
    int rc = run(a,
                 "SELECT id, name, role, banned_at IS NOT NULL, coalesce(muted_until, 0) "
                 "FROM users ORDER BY name_key LIMIT ?1",
                 &st, "i", (int64_t)limit);
    while (rc == SQLITE_ROW) {
        int64_t muted = sqlite3_column_int64(st, 4);
        json_array_append_new(out, json_pack("{s:I, s:s, s:s, s:b, s:I}", "id",
                                             (json_int_t)sqlite3_column_int64(st, 0), "name",
                                             sqlite3_column_text(st, 1), "role",
                                             sqlite3_column_text(st, 2), "banned",
                                             sqlite3_column_int(st, 3), "mutedUntil",
                                             (json_int_t)(muted > now_ms ? muted : 0)));
        rc = sqlite3_step(st);
    }
    if (st)
        sqlite3_finalize(st);
    pthread_mutex_unlock(&a->mu);
    return out;
}

json_t *pv_accounts_sessions(struct pv_accounts *a, int64_t user, int64_t current)
{
    json_t *out = json_array();
    sqlite3_stmt *st = NULL;
    pthread_mutex_lock(&a->mu);
    int rc = run(a,
                 "SELECT rowid, created, last_used, expires, addr FROM sessions "
                 "WHERE user_id = ?1 AND expires > ?2 ORDER BY last_used DESC LIMIT 100",
                 &st, "ii", user, now_s());
    while (rc == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0);
        json_array_append_new(
            out, json_pack("{s:I, s:I, s:I, s:I, s:s, s:b}", "id", (json_int_t)id, "created",
                           (json_int_t)sqlite3_column_int64(st, 1) * 1000, "lastUsed",
                           (json_int_t)sqlite3_column_int64(st, 2) * 1000, "expires",
                           (json_int_t)sqlite3_column_int64(st, 3) * 1000, "addr",
                           sqlite3_column_text(st, 4), "current", id == current));
        rc = sqlite3_step(st);
    }
    if (st)
        sqlite3_finalize(st);
    pthread_mutex_unlock(&a->mu);
    return out;
}

bool pv_accounts_revoke(struct pv_accounts *a, int64_t user, int64_t session)
{
    pthread_mutex_lock(&a->mu);
    bool done = run(a, "DELETE FROM sessions WHERE rowid = ?1 AND user_id = ?2", NULL, "ii",
                    session, user) == SQLITE_DONE &&
                sqlite3_changes(a->db) > 0;
    pthread_mutex_unlock(&a->mu);
    return done;
}

int pv_accounts_password(struct pv_accounts *a, const struct pv_account *who, const char *current,
                         const char *password, const char **code, char *err, size_t errsz)
{
    char hash[crypto_pwhash_STRBYTES] = "";
    sqlite3_stmt *st = NULL;
    pthread_mutex_lock(&a->mu);
    if (run(a, "SELECT pass_hash FROM users WHERE id = ?1", &st, "i", who->id) == SQLITE_ROW) {
        snprintf(hash, sizeof(hash), "%s", (const char *)sqlite3_column_text(st, 0));
        sqlite3_finalize(st);
    }
    pthread_mutex_unlock(&a->mu);
    size_t n = strlen(password), cur = strlen(current);
    if (n < PV_PASSWORD_MIN || n > PV_PASSWORD_MAX) {
        *code = "bad-password";
        snprintf(err, errsz, "a password has %d to %d bytes", PV_PASSWORD_MIN, PV_PASSWORD_MAX);
        return -1;
    }
    if (!hash_enter(a)) {
        *code = "busy";
        snprintf(err, errsz, "too many passwords being hashed, try again");
        return -1;
    }
    bool match =
        hash[0] && cur <= PV_PASSWORD_MAX && crypto_pwhash_str_verify(hash, current, cur) == 0;
    int h = match ? (crypto_pwhash_str(hash, password, n, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                                       crypto_pwhash_MEMLIMIT_INTERACTIVE) == 0
                         ? 0
                         : -1)
                  : 1;
    hash_leave(a);
    if (h != 0) {
        sodium_memzero(hash, sizeof(hash));
        *code = h > 0 ? "bad-credentials" : "failed";
        snprintf(err, errsz, "%s",
                 h > 0 ? "the current password is wrong" : "the password could not be hashed");
        return -1;
    }
    pthread_mutex_lock(&a->mu);
    int rc = SQLITE_ERROR;
    if (sqlite3_exec(a->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK) {
        rc = run(a, "UPDATE users SET pass_hash = ?2 WHERE id = ?1", NULL, "it", who->id, hash);
        if (rc == SQLITE_DONE)
            rc = run(a, "DELETE FROM sessions WHERE user_id = ?1 AND rowid != ?2", NULL, "ii",
                     who->id, who->session);
        if (rc == SQLITE_DONE)
            audit_locked(a, who, "password", who->name, "other sessions revoked");
        if (rc != SQLITE_DONE || sqlite3_exec(a->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
            sqlite3_exec(a->db, "ROLLBACK", NULL, NULL, NULL);
            rc = SQLITE_ERROR;
        }
    }
    pthread_mutex_unlock(&a->mu);
    sodium_memzero(hash, sizeof(hash));
    if (rc != SQLITE_DONE) {
        *code = "failed";
        snprintf(err, errsz, "the new password could not be saved");
        return -1;
    }
    return 0;
}

/* ---- Personal access tokens (bots) ---- */


int pv_accounts_token_new(struct pv_accounts *a, const struct pv_account *who, const char *label,
                          char out[PV_PAT_CHARS + 1], int64_t *id, const char **code, char *err,
                          size_t errsz)
{
    size_t n = strlen(label);
    const char *why = NULL;
    char name[PV_NAME_MAX_BYTES + 1];
    if (n < 1 || n > PV_PAT_LABEL_MAX || !pv_nickname_prepare(label, n, name, sizeof(name), &why)) {
        *code = "bad-request";
        snprintf(err, errsz, "\"name\" must be a label of 1 to 32 characters, like a display name");
        return -1;
    }
    char secret[PV_TOKEN_CHARS + 1], stored[65];
    new_token(secret);
    snprintf(out, PV_PAT_CHARS + 1, "%s%s", PV_PAT_PREFIX, secret);
    sodium_memzero(secret, sizeof(secret));
    token_hash(out, stored);
    sqlite3_stmt *st = NULL;
    pthread_mutex_lock(&a->mu);
    int64_t count = 0;
    if (run(a, "SELECT count(*) FROM tokens WHERE user_id = ?1", &st, "i", who->id) == SQLITE_ROW) {
        count = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    int rc = count >= PV_PAT_MAX ? SQLITE_FULL
                                 : run(a,
                                       "INSERT INTO tokens (token_hash, user_id, name, created) "
                                       "VALUES (?1, ?2, ?3, ?4)",
                                       NULL, "titi", stored, who->id, name, now_s());
    *id = rc == SQLITE_DONE ? sqlite3_last_insert_rowid(a->db) : 0;
    if (rc == SQLITE_DONE)
        audit_locked(a, who, "token", who->name, name);
    pthread_mutex_unlock(&a->mu);
    if (rc != SQLITE_DONE) {
        sodium_memzero(out, PV_PAT_CHARS + 1);
        *code = rc == SQLITE_FULL ? "too-many" : "failed";
        snprintf(err, errsz, "%s",
                 rc == SQLITE_FULL ? "an account has at most 20 tokens: revoke one first"
                                   : "the token could not be saved");
        return -1;
    }
    return 0;
}

bool pv_accounts_token_auth(struct pv_accounts *a, const char *token, struct pv_account *out,
                            int64_t *token_id)
{
    size_t plen = strlen(PV_PAT_PREFIX);
    if (strncmp(token, PV_PAT_PREFIX, plen) != 0 || !token_well_formed(token + plen))
        return false;
    char stored[65];
    token_hash(token, stored);
    int64_t now = now_s();
    sqlite3_stmt *st = NULL;
    pthread_mutex_lock(&a->mu);
    bool ok = run(a,
                  "SELECT t.id, coalesce(t.last_used, 0), u.id, u.name, u.role, "
                  "coalesce(u.muted_until, 0) FROM tokens t JOIN users u ON u.id = t.user_id "
                  "WHERE t.token_hash = ?1 AND u.banned_at IS NULL",
                  &st, "t", stored) == SQLITE_ROW;
    if (ok) {
        *token_id = sqlite3_column_int64(st, 0);
        int64_t last = sqlite3_column_int64(st, 1);
        *out = (struct pv_account){.id = sqlite3_column_int64(st, 2),
                                   .muted_until = sqlite3_column_int64(st, 5)};
        snprintf(out->name, sizeof(out->name), "%s", (const char *)sqlite3_column_text(st, 3));
        snprintf(out->role, sizeof(out->role), "%s", (const char *)sqlite3_column_text(st, 4));
        sqlite3_finalize(st);
        if (now - last >= TOUCH_EVERY_S)
            run(a, "UPDATE tokens SET last_used = ?2 WHERE id = ?1", NULL, "ii", *token_id, now);
    }
    pthread_mutex_unlock(&a->mu);
    return ok;
}

bool pv_accounts_token_rate(struct pv_accounts *a, int64_t token_id, unsigned rate, unsigned burst)
{
    if (rate == 0)
        return true;
    uint64_t now = pv_mono_ns();
    pthread_mutex_lock(&a->mu);
    struct token_rate *t = &a->token_rates[(uint64_t)token_id % TOKEN_RATE_SLOTS];
    if (t->id != token_id) {
        t->id = token_id;
        pv_rate_init(&t->r, burst, now);
    }
    bool ok = pv_rate_take(&t->r, rate, burst, now) == PV_RATE_OK;
    pthread_mutex_unlock(&a->mu);
    return ok;
}

json_t *pv_accounts_tokens(struct pv_accounts *a, int64_t user)
{
    json_t *out = json_array();
    sqlite3_stmt *st = NULL;
    pthread_mutex_lock(&a->mu);
    int rc = run(a,
                 "SELECT id, name, created, coalesce(last_used, 0) FROM tokens WHERE user_id = ?1 "
                 "ORDER BY id",
                 &st, "i", user);
    while (rc == SQLITE_ROW) {
        json_array_append_new(
            out, json_pack("{s:I, s:s, s:I, s:I}", "id", (json_int_t)sqlite3_column_int64(st, 0),
                           "name", sqlite3_column_text(st, 1), "created",
                           (json_int_t)sqlite3_column_int64(st, 2) * 1000, "lastUsed",
                           (json_int_t)sqlite3_column_int64(st, 3) * 1000));
        rc = sqlite3_step(st);
    }
    if (st)
        sqlite3_finalize(st);
    pthread_mutex_unlock(&a->mu);
    return out;
}

bool pv_accounts_token_revoke(struct pv_accounts *a, int64_t user, int64_t id)
{
    pthread_mutex_lock(&a->mu);
    bool done = run(a, "DELETE FROM tokens WHERE id = ?1 AND user_id = ?2", NULL, "ii", id, user) ==
                    SQLITE_DONE &&
                sqlite3_changes(a->db) > 0;
    pthread_mutex_unlock(&a->mu);
    return done;
}

int pv_accounts_rename(struct pv_accounts *a, struct pv_account *who, const char *name,
                       const char **code, char *err, size_t errsz)
{
    char display[PV_NAME_MAX_BYTES + 1], key[PV_NAME_KEY_MAX];
    const char *why = NULL;
    if (!name_and_key(name, display, key, &why)) {
        *code = "bad-name";
        snprintf(err, errsz, "%s", why);
        return -1;
    }
    char old[PV_NAME_MAX_BYTES + 1];
    snprintf(old, sizeof(old), "%s", who->name);
    pthread_mutex_lock(&a->mu);
    int rc = run(a, "UPDATE users SET name = ?2, name_key = ?3 WHERE id = ?1", NULL, "itt", who->id,
                 display, key);
    int ext = sqlite3_extended_errcode(a->db);
    if (rc == SQLITE_DONE) {
        snprintf(who->name, sizeof(who->name), "%s", display);
        audit_locked(a, who, "rename", old, display);
    }
    pthread_mutex_unlock(&a->mu);
    if (rc == SQLITE_DONE)
        return 0;
    *code = ext == SQLITE_CONSTRAINT_UNIQUE ? "name-taken" : "failed";
    snprintf(err, errsz, "%s",
             ext == SQLITE_CONSTRAINT_UNIQUE
                 ? "an account with that name (or one that looks the same) exists"
                 : "the name could not be saved");
    return -1;
}
