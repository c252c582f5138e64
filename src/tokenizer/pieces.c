/* tokenizer/pieces.c — the small containers every stage shares: byte
 * buffers, piece lists, the per-call work area, and GPT-2's byte table. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer_internal.h"

bool tok_buffer_reserve(tok_buffer *buffer, size_t extra) {
    if (buffer->size + extra + 1 <= buffer->capacity) return true;
    size_t capacity = buffer->capacity ? buffer->capacity : 256;
    while (capacity < buffer->size + extra + 1) capacity *= 2;
    char *data = realloc(buffer->data, capacity);
    if (!data) return false;
    buffer->data = data;
    buffer->capacity = capacity;
    return true;
}

bool tok_buffer_append(tok_buffer *buffer, const void *data, size_t size) {
    if (!tok_buffer_reserve(buffer, size)) return false;
    if (size) memcpy(buffer->data + buffer->size, data, size);
    buffer->size += size;
    buffer->data[buffer->size] = '\0';
    return true;
}

void tok_buffer_free(tok_buffer *buffer) {
    free(buffer->data);
    memset(buffer, 0, sizeof *buffer);
}

bool tok_piece_list_push(tok_piece_list *list, tok_piece piece) {
    if (list->count == list->capacity) {
        size_t capacity = list->capacity ? list->capacity * 2 : 16;
        tok_piece *items = realloc(list->items, capacity * sizeof *items);
        if (!items) return false;
        list->items = items;
        list->capacity = capacity;
    }
    list->items[list->count++] = piece;
    return true;
}

void tok_work_free(tok_work *work) {
    tok_buffer_free(&work->arena);
    tok_buffer_free(&work->scratch);
    free(work->pieces.items);
    free(work->next.items);
    tok_regex_matcher_free(&work->matcher);
    free(work->symbols);
    free(work->heap);
    memset(work, 0, sizeof *work);
}

/* bytes_to_unicode() of openai/gpt-2 encoder.py: printable Latin-1 bytes
 * map to themselves, the other 68 to U+0100 upwards in byte order. */
static uint32_t byte_chars[256];
static int16_t char_bytes[324]; /* codepoints below 0x144 */
static pthread_once_t byte_table_once = PTHREAD_ONCE_INIT;

static void build_byte_table(void) {
    uint32_t next = 256;
    for (int i = 0; i < 324; i++) char_bytes[i] = -1;
    for (int b = 0; b < 256; b++) {
        bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        byte_chars[b] = printable ? (uint32_t)b : next++;
        char_bytes[byte_chars[b]] = (int16_t)b;
    }
}

uint32_t tok_byte_to_char(uint8_t byte) {
    pthread_once(&byte_table_once, build_byte_table);
    return byte_chars[byte];
}

int tok_char_to_byte(uint32_t codepoint) {
    pthread_once(&byte_table_once, build_byte_table);
    return codepoint < 324 ? char_bytes[codepoint] : -1;
}
