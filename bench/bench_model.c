/* bench/bench_model.c — the executable mlxe-bench-model: the model harness
 * of bench/model_harness.h (also `mlxengine bench`), for scripts that want a
 * program of its own. */
#include "model_harness.h"

int main(int argc, char **argv) {
    return bench_harness_main("mlxe-bench-model", argc, argv);
}
