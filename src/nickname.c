/* nickname.c -- the display-name profile and comparison key (nickname.h).
 *
 * Threads: any; see nickname.h. The spoof checker and the key of
 * "guest-" are made once, under pthread_once, and read-only after.
 */
#include "palaver/nickname.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/uscript.h>
#include <unicode/uspoof.h>
#include <unicode/ustring.h>
#include <unicode/utf8.h>

#include "palaver/proto.h"
#include "palaver/utf8.h"

static pthread_once_t once = PTHREAD_ONCE_INIT;
static USpoofChecker *spoof;
static char guest_key[PV_NAME_KEY_MAX];

static bool make_key(const char *name, char key[PV_NAME_KEY_MAX]);

static void init(void)
{
    UErrorCode err = U_ZERO_ERROR;
    spoof = uspoof_open(&err);
    if (U_FAILURE(err))
        spoof = NULL;
    if (!make_key("guest-", guest_key))
        guest_key[0] = '\0';
}

/* A name must show something: a letter, digit, punctuation or symbol
 * (U+2800, the blank braille pattern, is a symbol that shows nothing). */
static bool visible(UChar32 c)
{
    return c != 0x2800 &&
           (U_GET_GC_MASK(c) & (U_GC_L_MASK | U_GC_N_MASK | U_GC_P_MASK | U_GC_S_MASK)) != 0;
}

static bool emoji(UChar32 c)
{
    return u_hasBinaryProperty(c, UCHAR_EXTENDED_PICTOGRAPHIC) ||
           u_hasBinaryProperty(c, UCHAR_EMOJI_MODIFIER) || (c >= 0x1F1E6 && c <= 0x1F1FF);
}

/* The checks of nickname.h on code points cp[0..n); NULL if they pass. */
static const char *check(const UChar32 *cp, size_t n)
{
    int marks = 0;
    bool after_emoji = false, zwj = false, shows = false, latin = false, lookalike = false;
    for (size_t i = 0; i < n; i++) {
        UChar32 c = cp[i];
        int8_t t = u_charType(c);
        if (zwj && !emoji(c))
            return "name contains invisible characters (a joiner not between emoji)";
        zwj = false;
        if (c == 0x200D || c == 0xFE0E || c == 0xFE0F) {
            /* Joiner and variation selectors: only inside emoji. */
            if (!after_emoji)
                return "name contains invisible characters";
            zwj = c == 0x200D;
            after_emoji = c != 0x200D;
            continue;
        }
        if (t == U_CONTROL_CHAR)
            return "name contains control characters";
        if (U_IS_UNICODE_NONCHAR(c) || t == U_UNASSIGNED || t == U_PRIVATE_USE_CHAR ||
            t == U_SURROGATE || t == U_FORMAT_CHAR ||
            u_hasBinaryProperty(c, UCHAR_DEFAULT_IGNORABLE_CODE_POINT))
            return "name contains invisible, unassigned or private-use characters";
        if (t == U_NON_SPACING_MARK || t == U_ENCLOSING_MARK) {
            if (i == 0 || cp[i - 1] == ' ')
                return "name has a combining mark without a letter";
            if (++marks > PV_NAME_MAX_MARKS)
                return "name has too many combining marks on one letter";
        } else {
            marks = 0;
        }
        after_emoji = emoji(c);
        shows |= visible(c);
        UErrorCode err = U_ZERO_ERROR;
        UScriptCode sc = uscript_getScript(c, &err);
        latin |= sc == USCRIPT_LATIN;
        lookalike |= sc == USCRIPT_CYRILLIC || sc == USCRIPT_GREEK;
    }
    if (zwj)
        return "name contains invisible characters (a joiner at the end)";
    if (!shows)
        return "name has no visible characters";
    if (latin && lookalike)
        return "name mixes Latin with Cyrillic or Greek letters (it would look like another name)";
    return NULL;
}

bool pv_nickname_prepare(const char *s, size_t len, char *out, size_t out_size, const char **why)
{
    if (!pv_utf8_valid(s, len)) {
        *why = "name is not valid UTF-8";
        return false;
    }
    if (len > (size_t)4 * PV_NAME_MAX_BYTES) { /* bounds the work before counting */
        *why = "name is longer than 32 characters";
        return false;
    }
    UChar32 cp[4 * PV_NAME_MAX_BYTES];
    size_t n = 0;
    for (int32_t i = 0; i < (int32_t)len;) {
        UChar32 c;
        U8_NEXT(s, i, (int32_t)len, c);
        if (c < 0) {
            *why = "name is not valid UTF-8";
            return false;
        }
        /* Every white space becomes one space (controls are refused
         * below, so a tab or newline is not "white space" here). */
        if (u_charType(c) != U_CONTROL_CHAR && u_isUWhiteSpace(c))
            c = ' ';
        if (c == ' ' && (n == 0 || cp[n - 1] == ' '))
            continue;
        cp[n++] = c;
    }
    while (n && cp[n - 1] == ' ')
        n--;
    if (n == 0) {
        *why = "name is empty";
        return false;
    }
    if ((*why = check(cp, n)) != NULL)
        return false;
    /* NFC, then the limits on what is shown. */
    UChar u[8 * PV_NAME_MAX_BYTES], nfc[8 * PV_NAME_MAX_BYTES];
    int32_t ulen = 0;
    UErrorCode err = U_ZERO_ERROR;
    for (size_t i = 0; i < n; i++)
        U16_APPEND_UNSAFE(u, ulen, cp[i]);
    const UNormalizer2 *norm = unorm2_getNFCInstance(&err);
    int32_t nlen =
        U_SUCCESS(err) ? unorm2_normalize(norm, u, ulen, nfc, 8 * PV_NAME_MAX_BYTES, &err) : 0;
    int32_t blen = 0;
    if (U_SUCCESS(err))
        u_strToUTF8(out, (int32_t)out_size, &blen, nfc, nlen, &err);
    if (U_FAILURE(err) || err == U_STRING_NOT_TERMINATED_WARNING ||
        u_countChar32(nfc, nlen) > PV_NAME_MAX_CHARS || blen > PV_NAME_MAX_BYTES) {
        *why = "name is longer than 32 characters";
        return false;
    }
    /* The checks again, on the NFC form: normalizing can decompose (a
     * composition exclusion such as U+0A36 becomes U+0A38 U+0A3C, one mark
     * more), so a name that passed could come out breaking the profile,
     * and preparing it again would refuse it (found by fuzz_nickname). */
    size_t m = 0;
    for (int32_t i = 0; i < nlen && m < sizeof(cp) / sizeof(cp[0]); m++) {
        UChar32 c;
        U16_NEXT(nfc, i, nlen, c);
        cp[m] = c;
    }
    return (*why = check(cp, m)) == NULL;
}

bool pv_nickname_key(const char *name, char key[PV_NAME_KEY_MAX])
{
    pthread_once(&once, init);
    return make_key(name, key);
}

static bool make_key(const char *name, char key[PV_NAME_KEY_MAX])
{
    enum { CAP = 8192 };
    UChar *a = malloc(CAP * sizeof(UChar)), *b = malloc(CAP * sizeof(UChar));
    UErrorCode err = U_ZERO_ERROR;
    int32_t alen = 0, blen = 0, klen = 0;
    bool ok = false;
    if (!a || !b || !spoof)
        goto out;
    u_strFromUTF8(a, CAP, &alen, name, -1, &err);
    const UNormalizer2 *fold = unorm2_getNFKCCasefoldInstance(&err);
    if (U_SUCCESS(err))
        blen = unorm2_normalize(fold, a, alen, b, CAP, &err);
    if (U_SUCCESS(err))
        alen = uspoof_getSkeleton(spoof, 0, b, blen, a, CAP, &err);
    if (U_SUCCESS(err))
        u_strToUTF8(key, PV_NAME_KEY_MAX, &klen, a, alen, &err);
    ok = U_SUCCESS(err) && err != U_STRING_NOT_TERMINATED_WARNING;
out:
    free(a);
    free(b);
    if (!ok)
        key[0] = '\0';
    return ok;
}

bool pv_nickname_reserved(const char *key)
{
    pthread_once(&once, init);
    size_t n = strlen(guest_key);
    return n > 0 && strncmp(key, guest_key, n) == 0;
}

bool pv_text_blank(const char *s, size_t n)
{
    for (int32_t i = 0; i < (int32_t)n;) {
        UChar32 c;
        U8_NEXT(s, i, (int32_t)n, c);
        if (c < 0)
            return false;
        int8_t t = u_charType(c);
        /* Controls other than white space are not "nothing": a text of
         * them is relayed as sent (RFC 6455 says it is valid text). */
        bool shows_nothing = u_isUWhiteSpace(c) || t == U_FORMAT_CHAR || t == U_SPACE_SEPARATOR ||
                             t == U_LINE_SEPARATOR || t == U_PARAGRAPH_SEPARATOR ||
                             u_hasBinaryProperty(c, UCHAR_DEFAULT_IGNORABLE_CODE_POINT) ||
                             c == 0x2800;
        if (!shows_nothing)
            return false;
    }
    return true;
}
