/* libFuzzer target: the JSON protocol decoder (proto.c), fed what a
 * client's text message could hold. Invariants: it never fails to answer,
 * an invalid message always says why, a chat text is within max_text and
 * valid UTF-8, a name passes the name check, a since or before is a seq
 * every JSON reader holds exactly, a page limit is 1..PV_PAGE_MAX, an
 * edit's or deletion's target is such a seq (and an edit's text like a chat
 * text's). */
#include <stdint.h>
#include <stdlib.h>

#include "palaver/proto.h"
#include "palaver/utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct pv_inbound in;
    /* The data handler only passes valid UTF-8 on; so does this. */
    if (!pv_utf8_valid(data, size))
        return 0;
    pv_proto_decode((const char *)data, size, 64, &in);
    switch (in.type) {
    case PV_IN_INVALID:
        if (!in.err_code || !in.err_msg)
            abort();
        break;
    case PV_IN_MESSAGE:
        if (!in.text || in.text_len > 64 || !pv_utf8_valid(in.text, in.text_len))
            abort();
        break;
    case PV_IN_HELLO:
        if (in.name) {
            char out[PV_NAME_MAX_BYTES + 1];
            const char *why;
            (void)pv_name_check(in.name, in.name_len, out, &why);
        }
        if (in.has_since && in.since > PV_SEQ_MAX)
            abort();
        break;
    case PV_IN_HISTORY:
        if (in.before > PV_SEQ_MAX || in.limit < 1 || in.limit > PV_PAGE_MAX)
            abort();
        break;
    case PV_IN_EDIT:
        if (!in.text || in.text_len > 64 || !pv_utf8_valid(in.text, in.text_len))
            abort();
        /* fall through: an edit names its target like a deletion */
    case PV_IN_DELETE:
        if (in.target < 1 || in.target > PV_SEQ_MAX)
            abort();
        break;
    }
    pv_inbound_release(&in);
    return 0;
}
