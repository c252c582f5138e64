/* chat/stop_strings.c — stop strings matched on streamed text across token
 * boundaries. Text is held back while its end could still be the start of
 * a stop string, so a stop string is never streamed out (as the OpenAI API
 * and llama.cpp's server behave). The detokenizer only hands over whole
 * UTF-8 characters and a held-back suffix starts where a stop string
 * starts, so released text is always whole characters too. */
#include <stdlib.h>
#include <string.h>

#include "chat/chat_internal.h"

void chat_stop_matcher_init(chat_stop_matcher *m, const char *const *stop, int n_stop) {
    memset(m, 0, sizeof *m);
    m->stop = stop;
    m->n_stop = stop ? n_stop : 0;
}

void chat_stop_matcher_free(chat_stop_matcher *m) {
    free(m->pending);
    memset(m, 0, sizeof *m);
}

/* Length of the longest proper prefix of some stop string that ends text. */
static size_t held_suffix(const chat_stop_matcher *m, const char *text, size_t size) {
    size_t best = 0;
    for (int s = 0; s < m->n_stop; s++) {
        size_t len = strlen(m->stop[s]);
        size_t k = len - 1 < size ? len - 1 : size;
        for (; k > best; k--)
            if (memcmp(text + size - k, m->stop[s], k) == 0) {
                best = k;
                break;
            }
    }
    return best;
}

int chat_stop_matcher_feed(chat_stop_matcher *m, const char *text, size_t size, const char **release,
                           size_t *release_size) {
    *release = "";
    *release_size = 0;
    /* The previous call released the front of pending: drop it. */
    if (m->pending_size + size + 1 > m->pending_capacity) {
        size_t capacity = (m->pending_size + size + 1) * 2;
        char *grown = realloc(m->pending, capacity);
        if (!grown) return -2;
        m->pending = grown;
        m->pending_capacity = capacity;
    }
    if (size) memcpy(m->pending + m->pending_size, text, size);
    m->pending_size += size;
    if (m->n_stop == 0) {
        *release = m->pending;
        *release_size = m->pending_size;
        m->pending_size = 0;
        return -1;
    }
    /* The earliest stop string in the held text; on ties the longest. */
    int found = -1;
    size_t found_at = 0, found_len = 0;
    for (int s = 0; s < m->n_stop; s++) {
        size_t len = strlen(m->stop[s]);
        if (len == 0 || len > m->pending_size) continue;
        const char *hit = memmem(m->pending, m->pending_size, m->stop[s], len);
        if (!hit) continue;
        size_t at = (size_t)(hit - m->pending);
        if (found < 0 || at < found_at || (at == found_at && len > found_len)) {
            found = s;
            found_at = at;
            found_len = len;
        }
    }
    if (found >= 0) {
        *release = m->pending;
        *release_size = found_at;
        m->pending_size = 0;
        return found;
    }
    size_t hold = held_suffix(m, m->pending, m->pending_size);
    size_t out = m->pending_size - hold;
    /* Hand out the released bytes from a copy kept past the held ones so
     * the held suffix can move to the front now. */
    if (out == 0) return -1;
    if (m->pending_size + out + 1 > m->pending_capacity) {
        size_t capacity = (m->pending_size + out + 1) * 2;
        char *grown = realloc(m->pending, capacity);
        if (!grown) return -2;
        m->pending = grown;
        m->pending_capacity = capacity;
    }
    char *copy = m->pending + m->pending_size;
    memcpy(copy, m->pending, out);
    memmove(m->pending, m->pending + out, hold);
    m->pending_size = hold;
    /* The copy sits past the new pending end: valid until the next feed. */
    *release = copy;
    *release_size = out;
    return -1;
}

void chat_stop_matcher_finish(chat_stop_matcher *m, const char **release, size_t *release_size) {
    *release = m->pending ? m->pending : "";
    *release_size = m->pending_size;
    m->pending_size = 0;
}
