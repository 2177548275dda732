/* stats.c -- clocks shared by all modules, and counting errors by code.
 *
 * Threads: any; the counters are relaxed atomics (stats.h). */
#include "palaver/stats.h"

#include <string.h>
#include <time.h>

const char *const pv_error_code_names[PV_ERR_COUNT] = {
#define X(id, name) [PV_ERR_##id] = (name),
    PV_ERROR_CODES
#undef X
};

void pv_stat_error(struct pv_stats *s, const char *code)
{
    unsigned i = 0;
    while (i < PV_ERR_other && strcmp(pv_error_code_names[i], code) != 0)
        i++;
    pv_stat_add(&s->error_replies, 1);
    pv_stat_add(&s->errors_by_code[i], 1);
}
