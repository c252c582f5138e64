/* tests/quant/quant_ref_driver.c — runs our MLX quantization on the cases in
 * a safetensors file, so scripts/quant/check_quant_ref.py can compare them
 * with the numpy reference (scripts/quant/mlx_quant_ref.py).
 *
 *   quant_ref_driver IN.safetensors OUT.safetensors
 *
 * For every input tensor "q.b<B>.g<G>.<label>" (F32, F16 or BF16, 2-D) it
 * writes "<name>.packed", "<name>.scales", "<name>.biases" (mlxe_quantize_affine)
 * and "<name>.deq" (mlxe_dequantize_affine of those, in the input's type).
 * For every triple "d.b<B>.g<G>.<label>.packed/.scales/.biases" it writes
 * "d.b<B>.g<G>.<label>.deq". Exits non-zero with the error on failure. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format/dtype.h"
#include "format/mlx_quant.h"
#include "format/safetensors.h"
#include "format/safetensors_write.h"

typedef struct output_list {
    mlxe_safetensors_write_tensor *tensors;
    size_t count, capacity;
    void **buffers;
    char **names;
} output_list;

static void die(const char *what, const mlxe_error *err) {
    fprintf(stderr, "quant_ref_driver: %s: %s\n", what, err ? err->message : "failed");
    exit(1);
}

static void add_output(output_list *out, const char *name, mlxe_dtype dtype, int64_t rows, int64_t cols,
                       void *data) {
    if (out->count == out->capacity) {
        out->capacity = out->capacity ? out->capacity * 2 : 64;
        out->tensors = realloc(out->tensors, out->capacity * sizeof *out->tensors);
        out->buffers = realloc(out->buffers, out->capacity * sizeof *out->buffers);
        out->names = realloc(out->names, out->capacity * sizeof *out->names);
        if (!out->tensors || !out->buffers || !out->names) die("out of memory", NULL);
    }
    char *copy = strdup(name);
    if (!copy) die("out of memory", NULL);
    mlxe_safetensors_write_tensor *t = &out->tensors[out->count];
    memset(t, 0, sizeof *t);
    t->name = copy;
    t->dtype = dtype;
    t->n_dims = 2;
    t->shape[0] = rows;
    t->shape[1] = cols;
    t->data = data;
    out->buffers[out->count] = data;
    out->names[out->count] = copy;
    out->count++;
}

static void *alloc_or_die(size_t bytes) {
    void *p = calloc(bytes ? bytes : 1, 1);
    if (!p) die("out of memory", NULL);
    return p;
}

static void run_quantize(const mlxe_tensor_info *w, int bits, int group_size, output_list *out) {
    mlxe_error err;
    int64_t rows = w->shape[0], cols = w->shape[1];
    int64_t words = mlxe_quant_packed_cols(cols, bits), groups = cols / group_size;
    size_t esize = mlxe_dtype_size(w->dtype);
    uint32_t *packed = alloc_or_die((size_t)(rows * words) * 4);
    void *scales = alloc_or_die((size_t)(rows * groups) * esize);
    void *biases = alloc_or_die((size_t)(rows * groups) * esize);
    void *deq = alloc_or_die((size_t)(rows * cols) * esize);
    if (mlxe_quantize_affine(w->data, w->dtype, rows, cols, bits, group_size, packed, scales, biases, w->name,
                             &err) != MLXE_OK)
        die(w->name, &err);
    if (mlxe_dequantize_affine(packed, scales, biases, w->dtype, rows, cols, bits, group_size, deq, w->dtype,
                               w->name, &err) != MLXE_OK)
        die(w->name, &err);
    char name[512];
    snprintf(name, sizeof name, "%s.packed", w->name);
    add_output(out, name, MLXE_DTYPE_U32, rows, words, packed);
    snprintf(name, sizeof name, "%s.scales", w->name);
    add_output(out, name, w->dtype, rows, groups, scales);
    snprintf(name, sizeof name, "%s.biases", w->name);
    add_output(out, name, w->dtype, rows, groups, biases);
    snprintf(name, sizeof name, "%s.deq", w->name);
    add_output(out, name, w->dtype, rows, cols, deq);
}

static void run_dequantize(const mlxe_safetensors_file *in, const mlxe_tensor_info *packed, int bits,
                           int group_size, output_list *out) {
    char base[512], name[560];
    size_t len = strlen(packed->name) - strlen(".packed");
    snprintf(base, sizeof base, "%.*s", (int)len, packed->name);
    snprintf(name, sizeof name, "%s.scales", base);
    const mlxe_tensor_info *scales = mlxe_safetensors_find(in, name);
    snprintf(name, sizeof name, "%s.biases", base);
    const mlxe_tensor_info *biases = mlxe_safetensors_find(in, name);
    if (!scales || !biases) die(base, NULL);
    int64_t rows = packed->shape[0], cols = packed->shape[1] * 32 / bits;
    void *deq = alloc_or_die((size_t)(rows * cols) * mlxe_dtype_size(scales->dtype));
    mlxe_error err;
    if (mlxe_dequantize_affine(packed->data, scales->data, biases->data, scales->dtype, rows, cols, bits,
                               group_size, deq, scales->dtype, base, &err) != MLXE_OK)
        die(base, &err);
    snprintf(name, sizeof name, "%s.deq", base);
    add_output(out, name, scales->dtype, rows, cols, deq);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: quant_ref_driver IN.safetensors OUT.safetensors\n");
        return 2;
    }
    mlxe_error err;
    mlxe_safetensors_file *in = NULL;
    if (mlxe_safetensors_open(argv[1], &in, &err) != MLXE_OK) die(argv[1], &err);
    output_list out = {0};
    for (size_t i = 0; i < mlxe_safetensors_count(in); i++) {
        const mlxe_tensor_info *t = mlxe_safetensors_at(in, i);
        int bits = 0, group_size = 0;
        size_t len = strlen(t->name);
        if (sscanf(t->name, "q.b%d.g%d.", &bits, &group_size) == 2 && t->n_dims == 2)
            run_quantize(t, bits, group_size, &out);
        else if (sscanf(t->name, "d.b%d.g%d.", &bits, &group_size) == 2 && len > 7 &&
                 strcmp(t->name + len - 7, ".packed") == 0)
            run_dequantize(in, t, bits, group_size, &out);
    }
    if (mlxe_safetensors_write(argv[2], out.tensors, out.count, NULL, 0, &err) != MLXE_OK) die(argv[2], &err);
    for (size_t i = 0; i < out.count; i++) {
        free(out.buffers[i]);
        free(out.names[i]);
    }
    free(out.tensors);
    free(out.buffers);
    free(out.names);
    mlxe_safetensors_close(in);
    return 0;
}
