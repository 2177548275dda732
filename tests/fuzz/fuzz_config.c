/* libFuzzer target: the "key = value" settings parser (config.c).
 * Invariants: it accepts or refuses with a "name:line: ..." message, never
 * writes past its fields, and accepted settings pass or fail the cross
 * checks cleanly. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "palaver/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct pv_config c;
    char err[256] = "";
    pv_config_defaults(&c);
    int rc = pv_config_parse_text(&c, (const char *)data, size, "fuzz.conf", err, sizeof(err));
    if (rc != 0 && strncmp(err, "fuzz.conf:", 10) != 0)
        abort();
    if (rc == 0) {
        if (memchr(c.htdocs, '\0', sizeof(c.htdocs)) == NULL ||
            memchr(c.allowed_origins, '\0', sizeof(c.allowed_origins)) == NULL)
            abort();
        (void)pv_config_check(&c, err, sizeof(err));
    }
    return 0;
}
