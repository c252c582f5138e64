/* tools/mlxengine/cmd_bench.c — `mlxengine bench`: load time, prefill and
 * decode tokens/s and peak RSS of a model folder on random prompt ids
 * (the harness of bench/model_harness.h, shared with mlxe-bench-model;
 * bench/llamacpp/compare.py runs it beside llama.cpp's llama-bench). */
#include "mlxengine/commands.h"

#include "../../bench/model_harness.h"

int cmd_bench(int argc, char **argv) {
    return bench_harness_main("mlxengine bench", argc, argv);
}
