/* tools/mlxengine/cmd_convert.c — `mlxengine convert SRC DST`: a Hugging
 * Face or MLX model folder into an MLX folder, optionally quantized or
 * dequantized, like `mlx_lm.convert` (the work is mlxe_convert,
 * include/mlxengine/convert.h). Progress goes to stderr; Ctrl-C cancels and
 * leaves nothing at DST. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mlxengine/commands.h"
#include "mlxengine/convert.h"
#include "mlxengine/mlxengine.h"
#include "model_args.h"

static void usage(FILE *out) {
    fprintf(out,
            "usage: mlxengine convert SRC DST [--quantize [--bits B] [--group-size G]] [--dequantize]\n"
            "                         [--dtype bf16|f16|f32] [--max-shard-gb N] [--quiet]\n"
            "Writes an MLX model folder DST (which must not exist) from the Hugging Face or MLX folder SRC.\n"
            "  --quantize        MLX affine quantization of the Linear and embedding weights\n"
            "                    (--bits 2,3,4,5,6,8, default 4; --group-size 32,64,128, default 64)\n"
            "  --dequantize      turn a quantized model back into float weights\n"
            "  --dtype           type of the float weights (default: config.json's torch_dtype)\n"
            "  --max-shard-gb    largest safetensors file, in GiB (default 5)\n");
}

static mlxe_cancel *interrupt_token;

static void on_interrupt(int signal_number) {
    (void)signal_number;
    mlxe_cancel_request(interrupt_token);
}

static bool show_progress(void *user, const mlxe_convert_progress *p) {
    (void)user;
    if (strcmp(p->stage, "done") == 0) {
        fprintf(stderr, "\rconverted %lld tensors, %.1f MB%40s\n", (long long)p->tensors_done,
                (double)p->bytes_done / 1e6, "");
    } else if (p->tensor) {
        fprintf(stderr, "\r[%lld/%lld] %5.1f%% %-60.60s", (long long)p->tensors_done, (long long)p->tensors_total,
                p->bytes_total ? 100.0 * (double)p->bytes_done / (double)p->bytes_total : 100.0, p->tensor);
    }
    return true;
}

int cmd_convert(int argc, char **argv) {
    mlxe_convert_options options;
    mlxe_convert_options_init(&options);
    const char *paths[2] = {NULL, NULL}, *value = NULL;
    int n_paths = 0;
    bool ok = true, quiet = false;
    for (int i = 1; i < argc && ok; i++) {
        int got;
        long long number = 0;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--quantize") == 0 || strcmp(argv[i], "-q") == 0) {
            options.quantize = true;
        } else if (strcmp(argv[i], "--dequantize") == 0 || strcmp(argv[i], "-d") == 0) {
            options.dequantize = true;
        } else if (strcmp(argv[i], "--quiet") == 0) {
            quiet = true;
        } else if ((got = tool_flag_value(argc, argv, &i, "--bits", &value))) {
            ok = got > 0 && tool_parse_int("--bits", value, 2, 8, &number);
            options.bits = (int)number;
        } else if ((got = tool_flag_value(argc, argv, &i, "--group-size", &value))) {
            ok = got > 0 && tool_parse_int("--group-size", value, 32, 128, &number);
            options.group_size = (int)number;
        } else if ((got = tool_flag_value(argc, argv, &i, "--max-shard-gb", &value))) {
            ok = got > 0 && tool_parse_int("--max-shard-gb", value, 1, 1024, &number);
            options.max_shard_bytes = (uint64_t)number << 30;
        } else if ((got = tool_flag_value(argc, argv, &i, "--dtype", &value))) {
            ok = got > 0;
            if (ok && !mlxe_convert_dtype_from_name(value, &options.dtype)) {
                fprintf(stderr, "mlxengine convert: --dtype must be bf16, f16 or f32 (got '%s')\n", value);
                ok = false;
            }
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, "mlxengine convert: unknown option '%s'\n", argv[i]);
            ok = false;
        } else if (n_paths < 2) {
            paths[n_paths++] = argv[i];
        } else {
            fprintf(stderr, "mlxengine convert: unexpected argument '%s'\n", argv[i]);
            ok = false;
        }
    }
    if (ok && n_paths != 2) {
        fprintf(stderr, "mlxengine convert: SRC and DST are required\n");
        ok = false;
    }
    if (!ok) {
        usage(stderr);
        return 2;
    }
    interrupt_token = mlxe_cancel_create();
    if (!interrupt_token) {
        fprintf(stderr, "mlxengine: out of memory\n");
        return 1;
    }
    options.cancel = interrupt_token;
    if (!quiet && isatty(STDERR_FILENO)) options.progress = show_progress;
    struct sigaction action, previous;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_interrupt;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, &previous);

    mlxe_error err;
    mlxe_error_clear(&err);
    mlxe_status st = mlxe_convert(paths[0], paths[1], &options, &err);
    sigaction(SIGINT, &previous, NULL);
    if (st != MLXE_OK) fprintf(stderr, "\nmlxengine convert: %s\n", err.message);
    else if (!quiet) fprintf(stderr, "wrote %s\n", paths[1]);
    mlxe_cancel_free(interrupt_token);
    interrupt_token = NULL;
    return st == MLXE_OK ? 0 : 1;
}
