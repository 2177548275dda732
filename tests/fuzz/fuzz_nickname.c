/* libFuzzer target: the display-name profile and key (nickname.c).
 * Invariants: a prepared name is valid UTF-8, non-empty, within the
 * limits, has no leading or trailing space, and preparing it again gives
 * the same name (the profile is idempotent); its key can be made, and a
 * name's key equals the key of its own preparation. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "palaver/nickname.h"
#include "palaver/proto.h"
#include "palaver/utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char out[PV_NAME_MAX_BYTES + 1], again[PV_NAME_MAX_BYTES + 1];
    char k1[PV_NAME_KEY_MAX], k2[PV_NAME_KEY_MAX];
    const char *why = NULL;
    if (!pv_nickname_prepare((const char *)data, size, out, sizeof(out), &why)) {
        if (!why || !why[0])
            abort(); /* a refusal always says why */
        return 0;
    }
    size_t n = strlen(out);
    if (n == 0 || n > PV_NAME_MAX_BYTES || out[0] == ' ' || out[n - 1] == ' ' ||
        !pv_utf8_valid(out, n) || pv_utf8_length(out, n) > PV_NAME_MAX_CHARS)
        abort();
    if (!pv_nickname_prepare(out, n, again, sizeof(again), &why) || strcmp(out, again) != 0)
        abort(); /* idempotent */
    if (!pv_nickname_key(out, k1) || !pv_nickname_key(again, k2) || strcmp(k1, k2) != 0)
        abort();
    (void)pv_nickname_reserved(k1);
    return 0;
}
