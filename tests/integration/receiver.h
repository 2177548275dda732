/* receiver.h -- a test thread that reads one client's stream and checks
 * the messages of one sender: all of them, in order, none twice. */
#ifndef RECEIVER_H
#define RECEIVER_H

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "pvtest.h"

struct receiver {
    struct wsc *c;
    const char *sender_id; /* count only this sender's messages */
    int want;              /* stop after this many, or at the text "end;" */
    int timeout_ms;        /* give up after this long */
    int got;
    int out_of_order;
    long long last_seq;
    long long worst_ms; /* the largest delay seen: now - the sender's own "date" */
    pthread_t thread;
};

static void *receiver_main(void *arg)
{
    struct receiver *r = arg;
    int64_t deadline = mono_ms() + r->timeout_ms;
    while (r->got < r->want && mono_ms() < deadline) {
        json_t *j = wsc_recv_json(r->c, (int)(deadline - mono_ms()));
        if (!j)
            break;
        const char *type = json_string_value(json_object_get(j, "type"));
        const char *from = json_string_value(json_object_get(json_object_get(j, "from"), "id"));
        if (type && strcmp(type, "message") == 0 && from && strcmp(from, r->sender_id) == 0) {
            if (strcmp(json_string_value(json_object_get(j, "text")), "end;") == 0) {
                json_decref(j);
                break;
            }
            int i = -1;
            sscanf(json_string_value(json_object_get(j, "text")), "i=%d;", &i);
            long long seq = json_integer_value(json_object_get(j, "seq"));
            if (i != r->got || seq <= r->last_seq)
                r->out_of_order++;
            json_t *date = json_object_get(j, "date");
            if (json_is_integer(date)) {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                long long delay =
                    (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 - json_integer_value(date);
                if (delay > r->worst_ms)
                    r->worst_ms = delay;
            }
            r->last_seq = seq;
            r->got++;
        }
        json_decref(j);
    }
    return NULL;
}

static inline void receiver_start(struct receiver *r)
{
    pthread_create(&r->thread, NULL, receiver_main, r);
}

static inline void receiver_join(struct receiver *r)
{
    pthread_join(r->thread, NULL);
}

/* Sends messages "i=<k>;<padding>" of about `size` bytes for k = first ..
 * first+n-1, keeping at most `window` unacknowledged. Returns the number
 * acknowledged. */
static inline int send_stream(struct wsc *p, int first, int n, size_t size, int window,
                              int timeout_ms)
{
    char *text = malloc(size + 32);
    int acked = 0;
    int64_t deadline = mono_ms() + timeout_ms;
    for (int i = 0; i < n; i++) {
        int len = snprintf(text, size + 32, "i=%d;", first + i);
        if ((size_t)len < size) {
            memset(text + len, 'p', size - (size_t)len);
            text[size] = '\0';
        }
        if (wsc_send_chat(p, i, text, "") != 0)
            break;
        while (i + 1 - acked >= window && mono_ms() < deadline) {
            json_t *j = wsc_expect(p, "ack", (int)(deadline - mono_ms()));
            if (!j)
                break;
            acked++;
            json_decref(j);
        }
    }
    while (acked < n && mono_ms() < deadline) {
        json_t *j = wsc_expect(p, "ack", (int)(deadline - mono_ms()));
        if (!j)
            break;
        acked++;
        json_decref(j);
    }
    free(text);
    return acked;
}

#endif
