/* libFuzzer target: the JSON protocol decoder (proto.c), fed what a
 * client's text message could hold. Invariants: it never fails to answer,
 * an invalid message always says why, a chat text is within max_text and
 * valid UTF-8, a name passes the name check, a since or before is a seq
 * every JSON reader holds exactly, a page limit is 1..PV_PAGE_MAX, an
 * edit's or deletion's target is such a seq (and an edit's text like a chat
 * text's), a room request names a room when it needs one and a person
 * when it needs one, within their bounds, its topic, rseq and retention
 * within theirs; any room named by a message or a page is within its
 * bound and valid UTF-8; a typing request's room too; a settings
 * request's readReceipts is -1, 0 or 1. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "palaver/nickname.h"
#include "palaver/proto.h"
#include "palaver/upload.h"
#include "palaver/utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct pv_inbound in;
    /* The data handler only passes valid UTF-8 on; so does this. */
    if (!pv_utf8_valid(data, size))
        return 0;
    pv_proto_decode((const char *)data, size, 64, &in);
    if (in.type != PV_IN_INVALID && in.room &&
        (in.room_len == 0 || in.room_len > PV_ROOM_NAME_MAX_BYTES ||
         !pv_utf8_valid(in.room, in.room_len) || strlen(in.room) > in.room_len))
        abort();
    switch (in.type) {
    case PV_IN_INVALID:
        if (!in.err_code || !in.err_msg)
            abort();
        break;
    case PV_IN_MESSAGE:
        if (!in.text || in.text_len > 64 || !pv_utf8_valid(in.text, in.text_len))
            abort();
        /* files: 1..10 ids of the right shape, none twice; without them
         * the text is not blank. */
        if (in.files) {
            size_t n = json_array_size(in.files);
            if (n < 1 || n > PV_FILES_PER_MESSAGE)
                abort();
            for (size_t i = 0; i < n; i++) {
                json_t *id = json_array_get(in.files, i);
                if (!json_is_string(id) ||
                    !pv_file_id_ok(json_string_value(id), json_string_length(id)))
                    abort();
                for (size_t j = 0; j < i; j++)
                    if (json_equal(id, json_array_get(in.files, j)))
                        abort();
            }
        } else if (pv_text_blank(in.text, in.text_len)) {
            abort();
        }
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
    case PV_IN_TYPING:
        break; /* its room is checked above; "typing" is a bool */
    case PV_IN_SETTINGS:
        if (in.read_receipts < -1 || in.read_receipts > 1)
            abort();
        break;
    case PV_IN_ROOM: {
        bool needs_room = in.op != PV_ROOM_LIST && in.op != PV_ROOM_DM;
        bool needs_user = in.op == PV_ROOM_INVITE || in.op == PV_ROOM_DM || in.op == PV_ROOM_REMOVE;
        if ((needs_room && !in.room) || (needs_user && !in.user) ||
            (in.op == PV_ROOM_TOPIC && !in.topic) || in.topic_len > PV_TOPIC_MAX_BYTES ||
            (in.topic && !pv_utf8_valid(in.topic, in.topic_len)) || in.rseq > PV_SEQ_MAX ||
            in.keep > PV_ROOM_KEEP_MAX || in.max_age_s > PV_ROOM_AGE_MAX ||
            (in.user && strlen(in.user) > PV_NAME_MAX_BYTES) || in.user_account != 0 ||
            (in.op == PV_ROOM_RENAME &&
             (!in.name || in.name_len == 0 || in.name_len > PV_ROOM_NAME_MAX_BYTES ||
              !pv_utf8_valid(in.name, in.name_len))))
            abort();
        break;
    }
    }
    pv_inbound_release(&in);
    return 0;
}
