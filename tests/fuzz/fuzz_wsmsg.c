/* libFuzzer target: frame checks and reassembly (wsmsg.c), fed a stream
 * of frames as CivetWeb hands them over. The input is a sequence of
 * records: one byte of frame bits, one byte of length, then that many
 * payload bytes. Invariants: every message handed out is valid UTF-8 and
 * within max_message; a failure carries a close code and a reason; after a
 * failure or a close nothing more is fed (as in ws.c). */
#include <stdint.h>
#include <stdlib.h>

#include "palaver/utf8.h"
#include "palaver/wsmsg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct pv_wsmsg m;
    size_t pos = 0;
    pv_wsmsg_init(&m, 300);
    while (pos + 2 <= size) {
        unsigned bits = data[pos];
        size_t len = data[pos + 1];
        pos += 2;
        if (len > size - pos)
            len = size - pos;
        struct pv_wsmsg_out o = pv_wsmsg_feed(&m, bits, (const char *)data + pos, len);
        pos += len;
        if (o.kind == PV_WSMSG_TEXT && (o.len > 300 || !pv_utf8_valid(o.data, o.len)))
            abort();
        if (o.kind == PV_WSMSG_PING && o.len > 125)
            abort();
        if (o.kind == PV_WSMSG_FAIL) {
            if (!o.reason || (o.code != 1002 && o.code != 1003 && o.code != 1007 && o.code != 1009))
                abort();
            break;
        }
        if (o.kind == PV_WSMSG_CLOSE) {
            if (!pv_wsmsg_close_code_valid(o.code))
                abort();
            break;
        }
    }
    pv_wsmsg_free(&m);
    return 0;
}
