/* runtime/ops.h — the device ops table: everything the models compute goes
 * through one of these functions, so a model written once runs on every
 * device (cpu/ now, cuda/ later).
 *
 * Conventions
 *  - Activations are float32, row-major, in memory of the op's device
 *    (ops->alloc). On the CPU that is ordinary host memory. The integer
 *    arrays (ids, slots, positions) and inv_freq belong there too: upload
 *    them once per forward. (CUDA also accepts host pointers for these,
 *    copying them up on every call, which costs a synchronous copy each.)
 *  - Weights are described by mlxe_matrix / mlxe_vector: on the CPU `data`
 *    points into the safetensors mapping (F32, F16 or BF16; MLX-quantized
 *    packed U32 with scales and biases), or, after ops->pack_matrix at load,
 *    into the CPU's huge-page copy of the matrix (same dtype; 4/8-bit ones
 *    in its packed layout, w->packed). No float copy of the model is ever
 *    made. On a GPU the mapping is copied to device memory once
 *    (ops->upload_weights) and the pointers are rebased into the copy.
 *  - A "row" of a batch is one token. n_rows is the number of tokens.
 *  - Ops never fail on valid arguments; argument checks happen once, at model
 *    load (shapes) and batch build (ids, positions), not per call.
 *  - The KV cache of one layer is one buffer laid out
 *    [n_slots][n_kv_heads][capacity][head_dim] (float32): a slot is one
 *    sequence, so a batch may mix tokens of several sequences.
 *  - Not thread-safe per device: one model forward at a time per mlxe_device. */
#ifndef MLXE_RUNTIME_OPS_H
#define MLXE_RUNTIME_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "format/dtype.h"
#include "mlxengine/status.h"
#include "runtime/sampling.h"

typedef struct mlxe_device mlxe_device;

/* A weight matrix of rows × cols: rows = output features, cols = input
 * features (PyTorch's nn.Linear layout, as safetensors stores it). */
typedef struct mlxe_matrix {
    mlxe_dtype dtype;          /* F32, F16, BF16; U32 when quantized */
    int64_t rows, cols;        /* logical (unpacked) shape */
    const void *data;          /* row-major; quantized: rows × (cols*bits/32) uint32 words */
    /* MLX affine quantization (bits 0 = not quantized): w = scale * q + bias per group */
    int bits, group_size;
    mlxe_dtype scale_dtype;    /* dtype of scales and biases */
    const void *scales;        /* rows × cols/group_size */
    const void *biases;        /* rows × cols/group_size */
    /* Added: the matrix in a device's own layout (ops->pack_matrix; the CPU's
     * 16-row tiles, runtime/cpu/cpu_pack.c), or NULL. When set, only it is
     * read: data, scales and biases keep their values but their memory may
     * have been released. */
    const void *packed;
} mlxe_matrix;

/* A vector of weights (norm gains, biases) in any float dtype. */
typedef struct mlxe_vector {
    mlxe_dtype dtype;          /* F32, F16 or BF16 */
    int64_t size;
    const void *data;
} mlxe_vector;

typedef struct mlxe_attention_args {
    int64_t n_rows;            /* tokens in the batch */
    int64_t n_heads, n_kv_heads, head_dim;
    const float *q;            /* [n_rows][n_heads][head_dim], RoPE applied */
    const float *k_cache;      /* this layer's cache, layout in the header comment */
    const float *v_cache;
    int64_t capacity;          /* positions per slot in the cache */
    const int32_t *slots;      /* [n_rows] the sequence slot of each token */
    const int32_t *positions;  /* [n_rows] token t attends to positions [lo, positions[t]] of its slot */
    int64_t window;            /* sliding window: lo = max(0, pos - window + 1); 0 = lo is 0 */
    float scale;               /* usually 1/sqrt(head_dim) */
    float *out;                /* [n_rows][n_heads][head_dim] */
    /* Optional hint: max(positions) + 1, known on the host when the batch is
     * built. The GPU sizes its split over the sequence with it; 0 = unknown
     * (capacity is assumed). The CPU ignores it. */
    int64_t kv_length;
} mlxe_attention_args;

typedef struct mlxe_ops {
    const char *name;          /* e.g. "cpu-avx2", "cpu-generic", "cuda:0" */

    /* Device memory. alloc zero-fills. */
    mlxe_status (*alloc)(mlxe_device *dev, size_t bytes, void **out, mlxe_error *err);
    void (*free)(mlxe_device *dev, void *ptr);
    /* Copies between host and device memory (plain memcpy on the CPU). */
    void (*upload)(mlxe_device *dev, void *dst_device, const void *src_host, size_t bytes);
    void (*download)(mlxe_device *dev, void *dst_host, const void *src_device, size_t bytes);

    /* y[r][o] = sum_i x[r][i] * w[o][i]           x: n_rows × w->cols, y: n_rows × w->rows */
    void (*matmul)(mlxe_device *dev, const float *x, int64_t n_rows, const mlxe_matrix *w, float *y);
    /* y[r][i] += bias[i] */
    void (*add_bias)(mlxe_device *dev, float *y, int64_t n_rows, const mlxe_vector *bias);
    /* out[r] = float(table[ids[r]])                 out: n_rows × table->cols */
    void (*embedding)(mlxe_device *dev, const mlxe_matrix *table, const int32_t *ids, int64_t n_rows,
                      float *out);
    /* y[r] = x[r] / sqrt(mean(x[r]^2) + eps) * weight   (y may equal x) */
    void (*rms_norm)(mlxe_device *dev, const float *x, const mlxe_vector *weight, int64_t n_rows,
                     int64_t dim, float eps, float *y);
    /* Rotary embedding in place on x [n_rows][n_heads][head_dim], Hugging Face's
     * rotate_half layout (pairs i and i + head_dim/2):
     *   angle = positions[r] * inv_freq[i], i < head_dim/2
     *   x' = x * cos(angle) * attention_scale + rotate_half(x) * sin(angle) * attention_scale */
    void (*rope)(mlxe_device *dev, float *x, int64_t n_rows, int64_t n_heads, int64_t head_dim,
                 const int32_t *positions, const float *inv_freq, float attention_scale);
    /* Writes k and v ([n_rows][n_kv_heads][head_dim]) into the cache at
     * (slots[r], positions[r]). */
    void (*kv_store)(mlxe_device *dev, const float *k, const float *v, int64_t n_rows,
                     int64_t n_kv_heads, int64_t head_dim, float *k_cache, float *v_cache,
                     int64_t capacity, const int32_t *slots, const int32_t *positions);
    /* Causal attention of each row over its slot's cache (GQA: head h reads
     * kv head h / (n_heads / n_kv_heads)). */
    void (*attention)(mlxe_device *dev, const mlxe_attention_args *args);
    /* out[i] = silu(gate[i]) * up[i]   (out may equal gate) */
    void (*silu_mul)(mlxe_device *dev, const float *gate, const float *up, float *out, int64_t n);
    /* y[i] += x[i] */
    void (*add)(mlxe_device *dev, float *y, const float *x, int64_t n);

    /* ---- weights and completion (devices with their own memory) ---- */
    /* Makes `bytes` of weight data at `host` (e.g. a safetensors file's data
     * section, mapped) usable by the ops: *device_ptr receives the copy's
     * address, and a weight at host + offset is at *device_ptr + offset.
     * CPU: *device_ptr = host, nothing is copied. CUDA: one device
     * allocation and a copy; MLXE_ERR_OUT_OF_MEMORY says how much is missing.
     * Free with free_weights. */
    mlxe_status (*upload_weights)(mlxe_device *dev, const void *host, size_t bytes, void **device_ptr,
                                  mlxe_error *err);
    /* Releases what upload_weights gave (CPU: nothing). Accepts NULL. */
    void (*free_weights)(mlxe_device *dev, void *device_ptr);
    /* Waits for the ops queued so far and reports the first error any of them
     * met since the last call (ops return nothing and a GPU runs them
     * asynchronously). download also waits, but reports nothing. */
    mlxe_status (*synchronize)(mlxe_device *dev, mlxe_error *err);

    /* ---- optional fused ops (NULL where a device has none: the models
     * then use the plain ops above) ---- */
    /* y[r][o] += sum_i x[r][i] * w[o][i]: matmul with the residual add in
     * its epilogue (one pass over y instead of a matmul and an add). */
    void (*matmul_add)(mlxe_device *dev, const float *x, int64_t n_rows, const mlxe_matrix *w, float *y);
    /* The projections of one input, optionally normalised first: with
     * norm (not NULL) the input is rms_norm(x, norm, eps) — normed
     * ([n_rows][cols], device) may receive it, as scratch — else x.
     * matmul_multi: y[i] = input · w[i]ᵀ for n_out (1 to 3) matrices of the
     * same columns and storage (q, k and v). matmul_swiglu: out[r][o] =
     * silu(input[r]·gate[o]) * (input[r]·up[o]) for gate and up of the same
     * shape (SwiGLU's two projections and its gate in one pass); up_scratch
     * ([n_rows][gate->rows]) may be overwritten. */
    void (*matmul_multi)(mlxe_device *dev, const float *x, int64_t n_rows, const mlxe_vector *norm, float eps,
                         float *normed, int n_out, const mlxe_matrix *const *w, float *const *y);
    void (*matmul_swiglu)(mlxe_device *dev, const float *x, int64_t n_rows, const mlxe_vector *norm, float eps,
                          float *normed, const mlxe_matrix *gate, const mlxe_matrix *up, float *out,
                          float *up_scratch);
    /* rope(q) in place, then kv_store of rope(k) and v: the results of
     * rope(q), rope(k), kv_store(k, v) in one pass (k itself is left
     * unrotated). Arguments as those ops'. */
    void (*rope_kv_store)(mlxe_device *dev, float *q, const float *k, const float *v, int64_t n_rows,
                          int64_t n_heads, int64_t n_kv_heads, int64_t head_dim, const int32_t *positions,
                          const float *inv_freq, float attention_scale, float *k_cache, float *v_cache,
                          int64_t capacity, const int32_t *slots);
    /* rope_kv_store(args->q, k, v, ...) then attention(args), for decode
     * (one token per sequence) in one pass: q (args->q, not rotated yet)
     * and the token's k are rotated on the fly, rotated k and v written into
     * the cache at the token's position. Results as those two ops'; args->q
     * may be left unrotated. Arguments as theirs. */
    void (*rope_attention)(mlxe_device *dev, const mlxe_attention_args *args, const float *k, const float *v,
                           const float *inv_freq, float attention_scale);
    /* out[r] = the index of the largest x[r][i], i < n (device memory, out:
     * int32 [n_rows]): the CPU sampler's greedy rule exactly — the lowest
     * index among equal maxima, NaN never beats a number, 0 when all are
     * NaN. Lets a decode step copy back one id instead of the logits. */
    void (*argmax)(mlxe_device *dev, const float *x, int64_t n_rows, int64_t n, int32_t *out);
    /* *out_token = the token the host sampler (engine/sampler.c) draws from
     * the row x of vocab logits with params (all in device memory,
     * runtime/sampling.h, the draw and the adjust entries included): logit
     * bias and penalties, then the argmax (temperature <= 0) or temperature,
     * top-k (1 to MLXE_SAMPLE_MAX_TOP_K), top-p, min-p and the draw, with
     * the host's integer weights and tie rules, so the same token. -1 when
     * the device could not (no scratch memory): sample on the host then.
     * Reads params when it runs, so a recorded graph takes new values. */
    void (*sample)(mlxe_device *dev, const float *x, int64_t vocab, const mlxe_sample_params *params,
                   int32_t *out_token);
    /* Optional (NULL: the caller downloads the token, which waits for
     * everything queued): a token chosen on the device handed to the host
     * without waiting for work queued after it. token_keep queues, after
     * everything queued so far, a copy of the int32 at src into slot (both
     * device memory) and returns a handle; token_take(handle) waits for that
     * copy only, returns the value and frees the handle. A pipelined decode
     * queues the next step between the two (engine/generate.c). */
    void *(*token_keep)(mlxe_device *dev, int32_t *slot, const int32_t *src);
    int32_t (*token_take)(mlxe_device *dev, void *handle, const int32_t *slot);

    /* Optional (NULL: nothing to do): starts reading the first rows of w
     * (weights, scales, biases) into the device's cache, queued in order
     * like any op but without delaying the ops around it, so a product of w
     * queued soon after finds them there. A hint: how much, or whether at
     * all, is the device's choice. A one-token step calls it before the
     * attention, which leaves memory idle. */
    void (*prefetch)(mlxe_device *dev, const mlxe_matrix *w);

    /* ---- recorded op sequences (optional: NULL on the CPU) ----
     * A GPU can record the ops queued between graph_begin and graph_end
     * (they are recorded, NOT run) and replay them with graph_launch at a
     * fraction of the launch cost: the decode step of a model. A replay
     * reads and writes the same addresses as the recording, so the caller
     * keeps every buffer and argument fixed and changes only the contents
     * of device memory (uploaded before the launch, on the same queue).
     * graph_begin: false when recording is unavailable (MLXE_CUDA_GRAPH=0)
     * and then nothing is recorded. graph_end: the recording, or NULL when
     * an op could not be recorded (the caller then runs the ops itself).
     * graph_launch: false when the device replaced a buffer the recording
     * uses (record again). */
    bool (*graph_begin)(mlxe_device *dev);
    void *(*graph_end)(mlxe_device *dev);
    bool (*graph_launch)(mlxe_device *dev, void *graph);
    void (*graph_free)(mlxe_device *dev, void *graph); /* accepts NULL */

    /* ---- weight layout (optional: NULL where weights are read as bound) ----
     * Copies a matrix, once at load, into memory and a layout the device's
     * kernels read fastest: on MLXE_OK with *owned not NULL, w now points
     * into *owned (free with ops->free once no op uses w): w->data for a
     * plain copy, or w->packed for the device's own layout, after which the
     * ops read only w->packed (w->data, scales and biases keep their values
     * but their memory may be gone). *owned NULL: w is left as it is.
     * release_bound: the op may drop the pages lying wholly inside w's bound
     * data, scales and biases as it copies them (mlxe_release_pages), so the
     * copy replaces them in memory as it grows instead of doubling the
     * peak; pass it only when they are a private file mapping (read back
     * from the file if touched) or memory the caller frees afterwards.
     * The CPU copies F32/F16/BF16 matrices into transparent huge pages and
     * repacks MLX 4/8-bit ones for its int8-activation kernels
     * (runtime/cpu/cpu_pack.c). */
    mlxe_status (*pack_matrix)(mlxe_device *dev, mlxe_matrix *w, bool release_bound, void **owned, mlxe_error *err);
} mlxe_ops;

#endif
