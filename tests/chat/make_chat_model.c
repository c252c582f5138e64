/* tests/chat/make_chat_model.c — writes the chat test model folder
 * (tests/chat_model_util.h) at argv[1] for the tool tests; argv[2] is the
 * weights' seed (default 11). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "chat_model_util.h"

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: make_chat_model DIR [SEED]\n");
        return 2;
    }
    chat_test_write_model(argv[1], argc > 2 ? strtoull(argv[2], NULL, 10) : 11, NULL);
    return 0;
}
