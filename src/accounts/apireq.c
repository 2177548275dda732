/* apireq.c -- the accounts API's request bodies and session cookie,
 * decoded and checked (see apireq.h).
 *
 * Threads: none shared (pure functions on the caller's data). */
#include "palaver/apireq.h"

#include <string.h>

/* A string field: NULL when absent; *bad set when present but not a
 * string, or a string with a NUL inside. */
static const char *text(json_t *root, const char *key, bool *bad)
{
    json_t *v = json_object_get(root, key);
    if (!v)
        return NULL;
    const char *s = json_string_value(v);
    if (!s || strlen(s) != json_string_length(v)) {
        *bad = true;
        return NULL;
    }
    return s;
}

/* An integer field in [lo, hi], `dflt` when absent; false when present
 * and not such an integer. */
static bool number(json_t *root, const char *key, long long lo, long long hi, long long dflt,
                   long long *out)
{
    json_t *v = json_object_get(root, key);
    *out = dflt;
    if (!v)
        return true;
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return false;
    *out = (long long)json_integer_value(v);
    return true;
}

static bool one_of(const char *s, const char *const *set, size_t n)
{
    for (size_t i = 0; s && i < n; i++)
        if (strcmp(s, set[i]) == 0)
            return true;
    return false;
}

static const char *check(enum pv_api_req kind, struct pv_api_fields *f)
{
    json_t *r = f->root;
    bool bad = false;
    f->name = text(r, "name", &bad);
    f->password = text(r, "password", &bad);
    f->token = text(r, "token", &bad);
    f->invite = text(r, "invite", &bad);
    f->current = text(r, "current", &bad);
    f->action = text(r, "action", &bad);
    f->user = text(r, "user", &bad);
    f->role = text(r, "role", &bad);
    f->reason = text(r, "reason", &bad);
    if (bad)
        return "a field that must be a string is not one (or holds a NUL)";
    switch (kind) {
    case PV_REQ_LOGIN:
    case PV_REQ_REGISTER:
        return f->name && f->password ? NULL : "\"name\" and \"password\" must be strings";
    case PV_REQ_SETUP:
        return f->token && f->name && f->password
                   ? NULL
                   : "\"token\", \"name\" and \"password\" must be strings";
    case PV_REQ_TOKEN:
        return f->name ? NULL : "\"name\" (the token's label) must be a string";
    case PV_REQ_RENAME:
        return f->name ? NULL : "\"name\" must be a string";
    case PV_REQ_PASSWORD:
        return f->current && f->password ? NULL : "\"current\" and \"password\" must be strings";
    case PV_REQ_INVITE:
        if (!number(r, "hours", 1, PV_INVITE_MAX_HOURS, PV_INVITE_HOURS, &f->hours) ||
            !number(r, "uses", 1, PV_INVITE_MAX_USES, 1, &f->uses))
            return "\"hours\" must be 1 to 720 and \"uses\" 1 to 1000";
        return NULL;
    case PV_REQ_REVOKE:
        return number(r, "id", 1, (1LL << 53) - 1, 0, &f->id) && f->id > 0
                   ? NULL
                   : "\"id\" must be a session's id";
    case PV_REQ_MODERATE: {
        static const char *const actions[] = {"kick", "ban", "unban", "mute", "unmute", "role"};
        static const char *const roles[] = {"member", "moderator", "admin"};
        if (!one_of(f->action, actions, sizeof(actions) / sizeof(actions[0])))
            return "\"action\" must be kick, ban, unban, mute, unmute or role";
        if (!f->user)
            return "\"user\" must be a name";
        if (!number(r, "minutes", 1, PV_MUTE_MAX_MINUTES, 10, &f->minutes))
            return "\"minutes\" must be an integer from 1 to 10080 (a week)";
        if (f->reason && strlen(f->reason) > PV_REASON_MAX)
            return "\"reason\" is at most 200 bytes";
        if (strcmp(f->action, "role") == 0 &&
            !one_of(f->role, roles, sizeof(roles) / sizeof(roles[0])))
            return "\"role\" must be member, moderator or admin";
        return NULL;
    }
    }
    return "unknown request";
}

const char *pv_api_decode(enum pv_api_req kind, const char *body, size_t len,
                          struct pv_api_fields *f, const char **code)
{
    memset(f, 0, sizeof(*f));
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(root)) {
        json_decref(root);
        *code = "bad-json";
        return "the body must be a JSON object";
    }
    f->root = root;
    const char *why = check(kind, f);
    if (why) {
        pv_api_fields_release(f);
        *code = "bad-request";
    }
    return why;
}

void pv_api_fields_release(struct pv_api_fields *f)
{
    json_decref(f->root);
    memset(f, 0, sizeof(*f));
}

/* The value of cookie `name` in a Cookie header ("a=1; b=2"): its start
 * and length, or NULL. RFC 6265 5.4: pairs split by ";", optional spaces;
 * the first pair of that name counts. */
static const char *cookie_value(const char *h, const char *name, size_t *len)
{
    size_t n = strlen(name);
    while (*h) {
        while (*h == ' ' || *h == '\t' || *h == ';')
            h++;
        const char *end = strchr(h, ';');
        size_t pair = end ? (size_t)(end - h) : strlen(h);
        if (pair > n && strncmp(h, name, n) == 0 && h[n] == '=') {
            *len = pair - n - 1;
            while (*len && (h[n + 1 + *len - 1] == ' ' || h[n + 1 + *len - 1] == '\t'))
                (*len)--;
            return h + n + 1;
        }
        h += pair;
    }
    return NULL;
}

int pv_api_cookie_token(const char *cookie, char token[PV_TOKEN_CHARS + 1])
{
    size_t len;
    const char *v = cookie ? cookie_value(cookie, PV_SESSION_COOKIE, &len) : NULL;
    token[0] = '\0';
    if (!v)
        return 0;
    if (len != PV_TOKEN_CHARS)
        return -1;
    for (size_t i = 0; i < len; i++) {
        char ch = v[i];
        bool ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                  (ch >= '0' && ch <= '9') || ch == '-' || ch == '_';
        if (!ok)
            return -1;
    }
    memcpy(token, v, len);
    token[len] = '\0';
    return 1;
}
