/* nickname.h -- display names: what a person may call themselves, and
 * when two names are the same name; and when a text shows nothing.
 *
 * The profile follows RFC 8266 (PRECIS Nicknames), with ICU for the
 * Unicode data (why ICU: docs/design.md, "Dependencies"):
 *  - every white space character becomes U+0020, runs become one, the
 *    ends are trimmed;
 *  - refused: control, format, private-use, unassigned and noncharacter
 *    code points and every default-ignorable one (U+200B, U+00AD, U+3164,
 *    tag characters, bidi controls...), except the zero-width joiner and
 *    the emoji variation selectors directly after an emoji (so family and
 *    heart emoji still work);
 *  - at most PV_NAME_MAX_MARKS combining marks on one base character;
 *  - at least one letter, digit, punctuation mark or symbol;
 *  - Latin mixed with Cyrillic or Greek in one name (the classic
 *    look-alike: "bоb" with a Cyrillic о) is refused;
 *  - the result is NFC, at most PV_NAME_MAX_CHARS code points and
 *    PV_NAME_MAX_BYTES bytes.
 * Two names are the same when their keys are equal: the UTS #39 skeleton
 * of the NFKC_Casefold form -- case, width, compatibility forms and
 * confusable characters do not make a name different. Names whose key
 * starts with the key of "guest-" are the server's (generated guest
 * names) and refused to people.
 *
 * Threads: any. The ICU spoof checker is opened once (pthread_once) and
 * only its const, thread-safe functions are used afterwards.
 */
#ifndef PALAVER_NICKNAME_H
#define PALAVER_NICKNAME_H

#include <stdbool.h>
#include <stddef.h>

#define PV_NAME_MAX_MARKS 4
#define PV_NAME_KEY_MAX 1024 /* bytes of a key, NUL included */

/* Applies the profile to s[0..len) (valid UTF-8 or not). On success
 * writes the display name (NUL-terminated, at most out_size - 1 bytes)
 * and returns true; otherwise *why says what is wrong, for the person. */
bool pv_nickname_prepare(const char *s, size_t len, char *out, size_t out_size, const char **why);

/* The comparison key of a prepared name. False if it cannot be made (out
 * of memory, a key longer than PV_NAME_KEY_MAX). */
bool pv_nickname_key(const char *name, char key[PV_NAME_KEY_MAX]);

/* True for a key of the server's own names (the "guest-" prefix). */
bool pv_nickname_reserved(const char *key);

/* True when the UTF-8 text s[0..n) shows nothing: only white space,
 * format and default-ignorable characters (zero-width spaces
 * and joiners, soft hyphen, Hangul fillers, variation selectors, tag
 * characters) and the blank braille pattern -- a message that would look
 * like a message with nothing in it. Invalid UTF-8 is not blank. */
bool pv_text_blank(const char *s, size_t n);

#endif
