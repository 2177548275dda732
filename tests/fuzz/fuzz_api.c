/* libFuzzer target: the accounts API's request bodies and its session
 * cookie parser (apireq.c), fed what a client could send. The first byte
 * picks the request kind; the rest is the body, and also (up to its first
 * NUL) a Cookie header. Invariants: a decoded request has every field its
 * kind requires, numbers in their ranges, strings whose C length is their
 * JSON length; a refusal says why and owns nothing; a cookie token is
 * exactly PV_TOKEN_CHARS base64url characters, and none comes back
 * otherwise. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "palaver/apireq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_token(const char *t)
{
    if (strlen(t) != PV_TOKEN_CHARS)
        abort();
    for (const char *p = t; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_'))
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    enum pv_api_req kind = (enum pv_api_req)(data[0] % (PV_REQ_REVOKE + 1));
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    struct pv_api_fields f;
    const char *code = NULL;
    const char *why = pv_api_decode(kind, body, len, &f, &code);
    if (why) {
        if (!code || f.root)
            abort();
    } else {
        switch (kind) {
        case PV_REQ_LOGIN:
        case PV_REQ_REGISTER:
            if (!f.name || !f.password)
                abort();
            break;
        case PV_REQ_SETUP:
            if (!f.token || !f.name || !f.password)
                abort();
            break;
        case PV_REQ_PASSWORD:
            if (!f.current || !f.password)
                abort();
            break;
        case PV_REQ_TOKEN:
        case PV_REQ_RENAME:
            if (!f.name)
                abort();
            break;
        case PV_REQ_INVITE:
            if (f.hours < 1 || f.hours > PV_INVITE_MAX_HOURS || f.uses < 1 ||
                f.uses > PV_INVITE_MAX_USES)
                abort();
            break;
        case PV_REQ_REVOKE:
            if (f.id < 1)
                abort();
            break;
        case PV_REQ_MODERATE:
            if (!f.action || !f.user || f.minutes < 1 || f.minutes > PV_MUTE_MAX_MINUTES ||
                (f.reason && strlen(f.reason) > PV_REASON_MAX) ||
                (strcmp(f.action, "role") == 0 && !f.role))
                abort();
            break;
        }
        pv_api_fields_release(&f);
    }
    char *cookie = malloc(len + 1);
    memcpy(cookie, body, len);
    cookie[len] = '\0';
    char token[PV_TOKEN_CHARS + 1];
    int r = pv_api_cookie_token(cookie, token);
    if (r == 1)
        check_token(token);
    else if (token[0] != '\0' || r < -1 || r > 1)
        abort();
    free(cookie);
    return 0;
}
