/* runtime/cuda/cuda_device.c — the CUDA device: finding a usable GPU (and
 * saying why there is none), its stream and cuBLAS handle, device memory,
 * weight upload, error collection, and the ops table.
 *
 * All work of a device is queued on one non-blocking stream, so ops run in
 * order without host synchronisation; download and synchronize wait. Ops
 * return nothing (runtime/ops.h), so the first error a launch or copy meets
 * is kept and reported by synchronize. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/log_internal.h"
#include "runtime/cuda/cuda_internal.h"

/* Weight uploads go in pieces of this size, so a later version can report
 * progress and so one failing copy names where it stopped. */
#define UPLOAD_CHUNK_BYTES ((size_t)256 << 20)
/* Batches of at most this many tokens use the matrix-vector kernels
 * (quantized weights; float weights: see cuda_internal.h). */
#define DEFAULT_MATVEC_MAX_ROWS 8
#define DEFAULT_FLOAT_MATVEC_MAX_ROWS 1

void mlxe_cuda_note_error(mlxe_cuda_state *state, cudaError_t error, const char *where) {
    if (error == cudaSuccess || state->first_error != cudaSuccess) return;
    state->first_error = error;
    snprintf(state->first_error_where, sizeof state->first_error_where, "%s", where);
    MLXE_ERROR(MLXE_LOG_CAT_RUNTIME, "%s on %s: %s", where, state->name, cudaGetErrorString(error));
}

void mlxe_cuda_check_launch(mlxe_cuda_state *state, const char *where) {
    state->prequantized_x = NULL; /* an int8 form waits only for the very next op */
    cudaError_t error = cudaGetLastError();
    if (error != cudaSuccess) mlxe_cuda_note_error(state, error, where);
}

bool mlxe_cuda_buffer_reserve(mlxe_cuda_state *state, mlxe_cuda_buffer *buffer, size_t bytes) {
    if (buffer->bytes >= bytes) return true;
    /* While recording a graph the stream cannot be waited for: the caller
     * takes its path without the buffer (correct, maybe slower). */
    if (state->capturing) return false;
    state->buffer_epoch++;
    /* Work queued on the stream may still read the old buffer. */
    cudaStreamSynchronize(state->stream);
    if (buffer->ptr) cudaFree(buffer->ptr);
    buffer->ptr = NULL;
    buffer->bytes = 0;
    size_t rounded = (bytes + ((size_t)1 << 20) - 1) & ~(((size_t)1 << 20) - 1);
    cudaError_t error = cudaMalloc(&buffer->ptr, rounded);
    if (error != cudaSuccess) {
        cudaGetLastError();
        buffer->ptr = NULL;
        MLXE_DEBUG(MLXE_LOG_CAT_RUNTIME, "%s: no room for %zu bytes of scratch (%s)", state->name, rounded,
                   cudaGetErrorString(error));
        return false;
    }
    buffer->bytes = rounded;
    return true;
}

bool mlxe_cuda_is_device_pointer(const void *p) {
    struct cudaPointerAttributes attributes;
    if (cudaPointerGetAttributes(&attributes, p) != cudaSuccess) {
        cudaGetLastError();
        return false;
    }
    return attributes.type == cudaMemoryTypeDevice || attributes.type == cudaMemoryTypeManaged;
}

static const void *device_copy_of(mlxe_cuda_state *state, const void *p, size_t bytes, int index) {
    if (!p || bytes == 0 || mlxe_cuda_is_device_pointer(p)) return p;
    mlxe_cuda_buffer *buffer = &state->staging[index];
    if (!mlxe_cuda_buffer_reserve(state, buffer, bytes)) {
        mlxe_cuda_note_error(state, cudaErrorMemoryAllocation, "staging host integers");
        return p;
    }
    /* From pageable memory this returns once the source was read, so the
     * caller may reuse its array; the stream orders it before the kernel. */
    cudaError_t error = cudaMemcpyAsync(buffer->ptr, p, bytes, cudaMemcpyHostToDevice, state->stream);
    if (error != cudaSuccess) mlxe_cuda_note_error(state, error, "copying host integers to the GPU");
    return buffer->ptr;
}

const int32_t *mlxe_cuda_device_ints(mlxe_cuda_state *state, const int32_t *p, int64_t n, int index) {
    return device_copy_of(state, p, (size_t)n * sizeof(int32_t), index);
}

const float *mlxe_cuda_device_floats(mlxe_cuda_state *state, const float *p, int64_t n, int index) {
    return device_copy_of(state, p, (size_t)n * sizeof(float), index);
}

/* ---- memory ---- */

static mlxe_status memory_error(mlxe_cuda_state *state, cudaError_t error, size_t bytes, const char *what,
                                mlxe_error *err) {
    cudaGetLastError();
    size_t free_bytes = 0, total_bytes = 0;
    cudaMemGetInfo(&free_bytes, &total_bytes);
    if (error == cudaErrorMemoryAllocation)
        return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY,
                              "%s: %zu MiB of %s do not fit in the %zu MiB free of %zu MiB (%zu MiB missing); use a "
                              "smaller context or batch, a quantized model, or another GPU",
                              state->name, bytes >> 20, what, free_bytes >> 20, total_bytes >> 20,
                              bytes > free_bytes ? (bytes - free_bytes) >> 20 : 0);
    return mlxe_error_set(err, MLXE_ERR_DEVICE, "%s: allocating %zu bytes of %s failed: %s", state->name, bytes, what,
                          cudaGetErrorString(error));
}

static mlxe_status cuda_alloc(mlxe_device *dev, size_t bytes, void **out, mlxe_error *err) {
    mlxe_cuda_state *state = mlxe_cuda_state_of(dev);
    cudaSetDevice(state->ordinal);
    void *p = NULL;
    cudaError_t error = cudaMalloc(&p, bytes ? bytes : 256);
    if (error != cudaSuccess) return memory_error(state, error, bytes, "activations", err);
    error = cudaMemsetAsync(p, 0, bytes ? bytes : 256, state->stream);
    if (error != cudaSuccess) {
        cudaFree(p);
        return mlxe_error_set(err, MLXE_ERR_DEVICE, "%s: clearing new memory failed: %s", state->name,
                              cudaGetErrorString(error));
    }
    *out = p;
    return MLXE_OK;
}

static void cuda_free(mlxe_device *dev, void *ptr) {
    if (!ptr) return;
    mlxe_cuda_state *state = mlxe_cuda_state_of(dev);
    cudaSetDevice(state->ordinal);
    /* cudaFree waits for the device, so no queued op still uses ptr. */
    cudaError_t error = cudaFree(ptr);
    if (error != cudaSuccess) mlxe_cuda_note_error(state, error, "freeing device memory");
}

static void cuda_upload(mlxe_device *dev, void *dst_device, const void *src_host, size_t bytes) {
    if (!bytes) return;
    mlxe_cuda_state *state = mlxe_cuda_state_of(dev);
    cudaSetDevice(state->ordinal);
    cudaError_t error = cudaMemcpyAsync(dst_device, src_host, bytes, cudaMemcpyHostToDevice, state->stream);
    if (error != cudaSuccess) mlxe_cuda_note_error(state, error, "upload");
}

static void cuda_download(mlxe_device *dev, void *dst_host, const void *src_device, size_t bytes) {
    mlxe_cuda_state *state = mlxe_cuda_state_of(dev);
    cudaSetDevice(state->ordinal);
    if (bytes) {
        cudaError_t error = cudaMemcpyAsync(dst_host, src_device, bytes, cudaMemcpyDeviceToHost, state->stream);
        if (error != cudaSuccess) mlxe_cuda_note_error(state, error, "download");
    }
    cudaError_t error = cudaStreamSynchronize(state->stream);
    if (error != cudaSuccess) mlxe_cuda_note_error(state, error, "download (waiting for the GPU)");
}

static mlxe_status cuda_upload_weights(mlxe_device *dev, const void *host, size_t bytes, void **device_ptr,
                                       mlxe_error *err) {
    mlxe_cuda_state *state = mlxe_cuda_state_of(dev);
    cudaSetDevice(state->ordinal);
    *device_ptr = NULL;
    void *p = NULL;
    cudaError_t error = cudaMalloc(&p, bytes ? bytes : 256);
    if (error != cudaSuccess) return memory_error(state, error, bytes, "weights", err);
    for (size_t done = 0; done < bytes; done += UPLOAD_CHUNK_BYTES) {
        size_t n = bytes - done < UPLOAD_CHUNK_BYTES ? bytes - done : UPLOAD_CHUNK_BYTES;
        error = cudaMemcpy((char *)p + done, (const char *)host + done, n, cudaMemcpyHostToDevice);
        if (error != cudaSuccess) {
            cudaFree(p);
            return mlxe_error_set(err, MLXE_ERR_DEVICE, "%s: copying weights to the GPU failed at byte %zu of %zu: %s",
                                  state->name, done, bytes, cudaGetErrorString(error));
        }
    }
    MLXE_DEBUG(MLXE_LOG_CAT_RUNTIME, "%s: uploaded %zu MiB of weights", state->name, bytes >> 20);
    *device_ptr = p;
    return MLXE_OK;
}

static void cuda_free_weights(mlxe_device *dev, void *device_ptr) {
    cuda_free(dev, device_ptr);
}

static mlxe_status cuda_synchronize(mlxe_device *dev, mlxe_error *err) {
    mlxe_cuda_state *state = mlxe_cuda_state_of(dev);
    cudaSetDevice(state->ordinal);
    cudaError_t error = cudaStreamSynchronize(state->stream);
    if (error != cudaSuccess) mlxe_cuda_note_error(state, error, "waiting for the GPU");
    if (state->first_error == cudaSuccess) return MLXE_OK;
    mlxe_status status = mlxe_error_set(err, MLXE_ERR_DEVICE, "%s: %s failed: %s", state->name,
                                        state->first_error_where, cudaGetErrorString(state->first_error));
    /* Errors of a kernel (illegal address) poison the context for good; a
     * failed scratch allocation does not, so let the next call start over. */
    state->first_error = cudaSuccess;
    return status;
}

/* ---- graphs ---- */

typedef struct cuda_graph {
    cudaGraphExec_t exec;
    unsigned epoch;
} cuda_graph;

static bool cuda_graph_begin(mlxe_device *dev) {
    mlxe_cuda_state *state = mlxe_cuda_state_of(dev);
    if (state->graphs_disabled || state->capturing) return false;
    cudaSetDevice(state->ordinal);
    state->error_before_capture = state->first_error;
    /* relaxed: host-side queries (cudaPointerGetAttributes) stay allowed */
    if (cudaStreamBeginCapture(state->stream, cudaStreamCaptureModeRelaxed) != cudaSuccess) {
        cudaGetLastError();
        return false;
    }
    state->capturing = true;
    state->prefetch_forked = false;
    return true;
}

/* Makes the stream wait for the prefetches (cuda_prefetch.cu) queued during
 * this recording: a recording must end with every branch joined. */
static void prefetch_join(mlxe_cuda_state *state) {
    if (!state->prefetch_forked) return;
    state->prefetch_forked = false;
    cudaError_t error = cudaEventRecord(state->prefetch_join, state->prefetch_stream);
    if (error == cudaSuccess) error = cudaStreamWaitEvent(state->stream, state->prefetch_join, 0);
    if (error != cudaSuccess) mlxe_cuda_note_error(state, error, "joining the prefetches");
}

static void *cuda_graph_end(mlxe_device *dev) {
    mlxe_cuda_state *state = mlxe_cuda_state_of(dev);
    prefetch_join(state);
    cudaGraph_t graph = NULL;
    cudaError_t error = cudaStreamEndCapture(state->stream, &graph);
    state->capturing = false;
    if (error != cudaSuccess || !graph || state->first_error != state->error_before_capture) {
        MLXE_DEBUG(MLXE_LOG_CAT_RUNTIME, "%s: recording a graph failed (%s; %s), running the ops directly", state->name,
                   cudaGetErrorString(error), state->first_error_where);
        if (graph) cudaGraphDestroy(graph);
        cudaGetLastError();
        state->first_error = state->error_before_capture; /* errors of the recording only */
        return NULL;
    }
    size_t n_nodes = 0;
    cudaGraphGetNodes(graph, NULL, &n_nodes);
    cudaGraphExec_t exec = NULL;
    error = cudaGraphInstantiate(&exec, graph, 0);
    cudaGraphDestroy(graph);
    cuda_graph *g = error == cudaSuccess ? malloc(sizeof *g) : NULL;
    if (!g) {
        cudaGetLastError();
        if (exec) cudaGraphExecDestroy(exec);
        return NULL;
    }
    g->exec = exec;
    g->epoch = state->buffer_epoch;
    MLXE_DEBUG(MLXE_LOG_CAT_RUNTIME, "%s: recorded a CUDA graph of %zu kernels and copies", state->name, n_nodes);
    return g;
}

static bool cuda_graph_launch(mlxe_device *dev, void *graph) {
    mlxe_cuda_state *state = mlxe_cuda_state_of(dev);
    cuda_graph *g = graph;
    if (!g || g->epoch != state->buffer_epoch) return false;
    cudaSetDevice(state->ordinal);
    mlxe_cuda_step_timing_before(&state->step_timing, state->stream, state->name);
    cudaError_t error = cudaGraphLaunch(g->exec, state->stream);
    if (error != cudaSuccess) mlxe_cuda_note_error(state, error, "replaying a CUDA graph");
    mlxe_cuda_step_timing_after(&state->step_timing, state->stream);
    return true;
}

static void cuda_graph_free(mlxe_device *dev, void *graph) {
    if (!graph) return;
    mlxe_cuda_state *state = mlxe_cuda_state_of(dev);
    cudaSetDevice(state->ordinal);
    cuda_graph *g = graph;
    cudaGraphExecDestroy(g->exec);
    free(g);
}

/* ---- chosen tokens handed over (ops.h token_keep / token_take) ----
 * keep: the copy into slot after everything queued, then an event (the
 * handle); take: a second stream waits for that event only and copies the
 * slot back, so what was queued after the keep (the next decode step) is
 * not waited for. */

static void *cuda_token_keep(mlxe_device *dev, int32_t *slot, const int32_t *src) {
    mlxe_cuda_state *state = mlxe_cuda_state_of(dev);
    cudaSetDevice(state->ordinal);
    cudaEvent_t event = NULL;
    cudaError_t error = cudaMemcpyAsync(slot, src, sizeof(int32_t), cudaMemcpyDeviceToDevice, state->stream);
    if (error == cudaSuccess) error = cudaEventCreateWithFlags(&event, cudaEventDisableTiming);
    if (error == cudaSuccess) error = cudaEventRecord(event, state->stream);
    if (error != cudaSuccess) {
        mlxe_cuda_note_error(state, error, "handing a chosen token over");
        if (event) cudaEventDestroy(event);
        return NULL;
    }
    return event;
}

static int32_t cuda_token_take(mlxe_device *dev, void *handle, const int32_t *slot) {
    mlxe_cuda_state *state = mlxe_cuda_state_of(dev);
    cudaSetDevice(state->ordinal);
    cudaEvent_t event = handle;
    int32_t token = -1;
    cudaError_t error = cudaStreamWaitEvent(state->take_stream, event, 0);
    if (error == cudaSuccess)
        error = cudaMemcpyAsync(&token, slot, sizeof token, cudaMemcpyDeviceToHost, state->take_stream);
    if (error == cudaSuccess) error = cudaStreamSynchronize(state->take_stream);
    cudaEventDestroy(event);
    if (error != cudaSuccess) {
        mlxe_cuda_note_error(state, error, "reading a chosen token back");
        return -1;
    }
    return token;
}

/* ---- creation ---- */

static const mlxe_ops cuda_ops_template = {
    .name = "cuda",
    .alloc = cuda_alloc,
    .free = cuda_free,
    .upload = cuda_upload,
    .download = cuda_download,
    .matmul = mlxe_cuda_matmul,
    .matmul_add = mlxe_cuda_matmul_add,
    .matmul_swiglu = mlxe_cuda_matmul_swiglu,
    .matmul_multi = mlxe_cuda_matmul_multi,
    .rope_kv_store = mlxe_cuda_rope_kv_store,
    .rope_attention = mlxe_cuda_rope_attention,
    .argmax = mlxe_cuda_argmax,
    .prefetch = mlxe_cuda_prefetch,
    .sample = mlxe_cuda_sample,
    .add_bias = mlxe_cuda_add_bias,
    .embedding = mlxe_cuda_embedding,
    .rms_norm = mlxe_cuda_rms_norm,
    .rope = mlxe_cuda_rope,
    .kv_store = mlxe_cuda_kv_store,
    .attention = mlxe_cuda_attention,
    .silu_mul = mlxe_cuda_silu_mul,
    .add = mlxe_cuda_add,
    .upload_weights = cuda_upload_weights,
    .free_weights = cuda_free_weights,
    .synchronize = cuda_synchronize,
    .graph_begin = cuda_graph_begin,
    .graph_end = cuda_graph_end,
    .graph_launch = cuda_graph_launch,
    .token_keep = cuda_token_keep,
    .token_take = cuda_token_take,
    .graph_free = cuda_graph_free,
};

static mlxe_status no_gpu(mlxe_error *err, int ordinal, cudaError_t error) {
    cudaGetLastError();
    int driver_version = 0, runtime_version = 0;
    cudaDriverGetVersion(&driver_version);
    cudaRuntimeGetVersion(&runtime_version);
    if (driver_version == 0)
        return mlxe_error_set(err, MLXE_ERR_DEVICE,
                              "no NVIDIA driver found (libcuda.so.1 could not be loaded), so CUDA device %d cannot "
                              "be used; install the NVIDIA driver or use the CPU",
                              ordinal);
    if (error == cudaErrorInsufficientDriver || driver_version < runtime_version)
        return mlxe_error_set(err, MLXE_ERR_DEVICE,
                              "the NVIDIA driver supports CUDA %d.%d but this build needs %d.%d; update the driver or "
                              "use the CPU",
                              driver_version / 1000, driver_version % 1000 / 10, runtime_version / 1000,
                              runtime_version % 1000 / 10);
    if (error == cudaErrorNoDevice)
        return mlxe_error_set(err, MLXE_ERR_DEVICE,
                              "no CUDA GPU found (the NVIDIA driver %d.%d sees none; check CUDA_VISIBLE_DEVICES); "
                              "use the CPU",
                              driver_version / 1000, driver_version % 1000 / 10);
    return mlxe_error_set(err, MLXE_ERR_DEVICE, "CUDA could not start on device %d: %s (%s); use the CPU", ordinal,
                          cudaGetErrorString(error), cudaGetErrorName(error));
}

static void release_state(mlxe_cuda_state *state) {
    if (!state) return;
    cudaSetDevice(state->ordinal);
    if (state->stream) cudaStreamSynchronize(state->stream);
    mlxe_cuda_buffer *buffers[] = {&state->convert,    &state->dequant,    &state->partial,
                                   &state->product,    &state->sampling,   &state->sample,
                                   &state->attention_counters, &state->staging[0], &state->staging[1],
                                   &state->staging[2], &state->prequantized};
    for (size_t i = 0; i < sizeof buffers / sizeof buffers[0]; i++)
        if (buffers[i]->ptr) cudaFree(buffers[i]->ptr);
    if (state->cublas) state->blas->destroy(state->cublas);
    mlxe_cuda_step_timing_free(&state->step_timing);
    if (state->take_stream) cudaStreamDestroy(state->take_stream);
    if (state->prefetch_stream) {
        cudaStreamSynchronize(state->prefetch_stream);
        cudaStreamDestroy(state->prefetch_stream);
    }
    if (state->prefetch_fork) cudaEventDestroy(state->prefetch_fork);
    if (state->prefetch_join) cudaEventDestroy(state->prefetch_join);
    if (state->stream) cudaStreamDestroy(state->stream);
    free(state);
}

mlxe_status mlxe_cuda_device_init(mlxe_device *dev, int ordinal, mlxe_error *err) {
    int count = 0;
    cudaError_t error = cudaGetDeviceCount(&count);
    if (error != cudaSuccess || count == 0) return no_gpu(err, ordinal, error == cudaSuccess ? cudaErrorNoDevice : error);
    if (ordinal >= count)
        return mlxe_error_set(err, MLXE_ERR_DEVICE, "CUDA device %d does not exist: %d GPU%s found (cuda:0%s)", ordinal,
                              count, count == 1 ? "" : "s", count > 1 ? " to cuda:N-1" : "");
    struct cudaDeviceProp properties;
    error = cudaGetDeviceProperties(&properties, ordinal);
    if (error != cudaSuccess) return no_gpu(err, ordinal, error);
    if (properties.major < 8)
        return mlxe_error_set(err, MLXE_ERR_DEVICE,
                              "GPU %d (%s) has compute capability %d.%d; mlxengine's CUDA kernels need 8.0 (Ampere) or "
                              "newer; use the CPU",
                              ordinal, properties.name, properties.major, properties.minor);
    error = cudaSetDevice(ordinal);
    if (error != cudaSuccess) return no_gpu(err, ordinal, error);

    mlxe_cuda_state *state = calloc(1, sizeof *state);
    if (!state) return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory creating the CUDA device");
    state->ordinal = ordinal;
    snprintf(state->name, sizeof state->name, "cuda:%d", ordinal);
    snprintf(state->gpu_name, sizeof state->gpu_name, "%s", properties.name);
    state->sm_count = properties.multiProcessorCount;
    state->cc_major = properties.major;
    state->cc_minor = properties.minor;
    state->total_memory = properties.totalGlobalMem;
    state->matvec_max_rows = DEFAULT_MATVEC_MAX_ROWS;
    state->float_matvec_max_rows = DEFAULT_FLOAT_MATVEC_MAX_ROWS;
    const char *gemm = getenv("MLXE_CUDA_GEMM");
    if (gemm && strcmp(gemm, "f32") == 0) state->gemm_mode = MLXE_CUDA_GEMM_F32_WEIGHTS;
    const char *matvec_rows = getenv("MLXE_CUDA_MATVEC_ROWS");
    if (matvec_rows) {
        int n = atoi(matvec_rows);
        if (n >= 0 && n <= 8) state->matvec_max_rows = state->float_matvec_max_rows = n;
    }
    const char *split = getenv("MLXE_CUDA_MATVEC_SPLIT");
    state->matvec_split_auto = split && strcmp(split, "auto") == 0;
    const char *matvec = getenv("MLXE_CUDA_MATVEC");
    state->matvec_v3 = matvec && strcmp(matvec, "v3") == 0;
    state->matvec_row_block = !matvec                             ? -1
                              : strcmp(matvec, "rowblock") == 0  ? 1
                              : strcmp(matvec, "rowblock2") == 0 ? 2
                              : strcmp(matvec, "rowblock4") == 0 ? 4
                              : strcmp(matvec, "rowblock8") == 0 ? 8
                              : strcmp(matvec, "warp") == 0      ? 0
                                                                 : -1;
    const char *early = getenv("MLXE_CUDA_FLOAT_EARLY");
    state->float_early_weights = !(early && strcmp(early, "0") == 0);
    const char *rows_per_warp = getenv("MLXE_CUDA_MATVEC_RPW");
    if (rows_per_warp && (atoi(rows_per_warp) == 1 || atoi(rows_per_warp) == 2 || atoi(rows_per_warp) == 4))
        state->rows_per_warp = atoi(rows_per_warp);
    const char *graphs = getenv("MLXE_CUDA_GRAPH");
    state->graphs_disabled = graphs && strcmp(graphs, "0") == 0;
    const char *pdl = getenv("MLXE_CUDA_PDL");
    state->overlap_launches = 0;
    if (state->cc_major >= 9) {
        state->overlap_launches = MLXE_CUDA_OVERLAP_MATVEC | MLXE_CUDA_OVERLAP_ELEMENTWISE | MLXE_CUDA_OVERLAP_ATTENTION;
        if (pdl) state->overlap_launches = strcmp(pdl, "all") == 0 ? 15u : (unsigned)atoi(pdl) & 15u;
    }
    const char *argmax_overlap = getenv("MLXE_CUDA_ARGMAX_OVERLAP");
    state->argmax_after = argmax_overlap && strcmp(argmax_overlap, "0") == 0;
    const char *attention = getenv("MLXE_CUDA_ATTENTION");
    if (attention && strcmp(attention, "split") == 0) state->attention_mode = 1;
    if (attention && strcmp(attention, "warp") == 0) state->attention_mode = 2;
    if (attention && strcmp(attention, "flash") == 0) state->attention_mode = 3;
    const char *split_positions = getenv("MLXE_CUDA_ATTENTION_SPLIT_POSITIONS");
    const char *attention_warps = getenv("MLXE_CUDA_ATTENTION_WARPS");
    state->attention_warps = attention_warps && atoi(attention_warps) == 4 ? 4 : 8;
    const char *attention_cluster = getenv("MLXE_CUDA_ATTENTION_CLUSTER");
    state->attention_cluster = 8; /* merged in a cluster where the device can (cuda_attention.cu) */
    if (attention_cluster) state->attention_cluster = atoi(attention_cluster) >= 8 ? 8 : 0;
    const char *attention_early = getenv("MLXE_CUDA_ATTENTION_EARLY");
    state->attention_early_rows = !(attention_early && strcmp(attention_early, "0") == 0);
    const char *attention_trigger = getenv("MLXE_CUDA_ATTENTION_TRIGGER");
    state->attention_late_trigger = attention_trigger && strcmp(attention_trigger, "late") == 0;
    const char *attention_lanes = getenv("MLXE_CUDA_ATTENTION_LANES");
    state->attention_lanes = !attention_lanes                       ? 1
                             : strcmp(attention_lanes, "0") == 0   ? 0
                             : strcmp(attention_lanes, "8") == 0   ? 8
                                                                   : 1;
    const char *qkv_trigger = getenv("MLXE_CUDA_QKV_TRIGGER");
    state->qkv_trigger_at_start = !(qkv_trigger && strcmp(qkv_trigger, "0") == 0);
    const char *swiglu_min_blocks = getenv("MLXE_CUDA_SWIGLU_MIN_BLOCKS");
    state->swiglu_bounded = !(swiglu_min_blocks && strcmp(swiglu_min_blocks, "1") == 0);
    state->attention_split_positions = 0; /* one step of positions per warp (cuda_attention.cu) */
    if (split_positions && atoi(split_positions) >= 1 && atoi(split_positions) <= (1 << 20))
        state->attention_split_positions = atoi(split_positions);

    error = cudaStreamCreateWithFlags(&state->stream, cudaStreamNonBlocking);
    if (error != cudaSuccess) {
        release_state(state);
        return no_gpu(err, ordinal, error);
    }
    mlxe_cuda_step_timing_init(&state->step_timing);
    error = cudaStreamCreateWithFlags(&state->take_stream, cudaStreamNonBlocking);
    if (error != cudaSuccess) {
        release_state(state);
        return no_gpu(err, ordinal, error);
    }
    char why[512];
    state->blas = mlxe_cuda_blas_open(why, sizeof why);
    if (!state->blas) {
        release_state(state);
        return mlxe_error_set(err, MLXE_ERR_DEVICE, "GPU %d (%s) not used, the CPU is: %s", ordinal, properties.name,
                              why);
    }
    cublasStatus_t blas = state->blas->create(&state->cublas);
    if (blas != CUBLAS_STATUS_SUCCESS) {
        state->cublas = NULL;
        release_state(state);
        return mlxe_error_set(err, MLXE_ERR_DEVICE, "cuBLAS could not start on GPU %d (%s): status %d", ordinal,
                              properties.name, (int)blas);
    }
    state->blas->set_stream(state->cublas, state->stream);
    state->ops = cuda_ops_template;
    state->ops.name = state->name;
    /* MLXE_CUDA_FUSED=0: without the optional fused ops (argmax on the GPU,
     * residual adds in the matvec epilogue), to measure what they bring */
    const char *fused = getenv("MLXE_CUDA_FUSED");
    const bool fused_off = fused && strcmp(fused, "0") == 0;
    if (fused_off) {
        state->ops.matmul_add = NULL;
        state->ops.matmul_swiglu = NULL;
        state->ops.matmul_multi = NULL;
        state->ops.rope_kv_store = NULL;
        state->ops.rope_attention = NULL;
        state->ops.argmax = NULL;
        state->ops.sample = NULL;
    }
    /* MLXE_CUDA_ROPE_ATTENTION=0: RoPE and the cache write as their own
     * kernel in decode (rope_kv_store), for side-by-side timing */
    const char *rope_attention = getenv("MLXE_CUDA_ROPE_ATTENTION");
    if (rope_attention && strcmp(rope_attention, "0") == 0) state->ops.rope_attention = NULL;

    /* L2 prefetch (cuda_prefetch.cu): bulk prefetches need sm_90, on a
     * stream of their own; MLXE_CUDA_PREFETCH=0 turns it off */
    const char *prefetch = getenv("MLXE_CUDA_PREFETCH");
    const bool prefetch_off = prefetch && strcmp(prefetch, "0") == 0;
    state->prefetch_cap = state->cc_major >= 9 && !prefetch_off ? mlxe_cuda_prefetch_cap() : 0;
    if (state->prefetch_cap &&
        (cudaStreamCreateWithFlags(&state->prefetch_stream, cudaStreamNonBlocking) != cudaSuccess ||
         cudaEventCreateWithFlags(&state->prefetch_fork, cudaEventDisableTiming) != cudaSuccess ||
         cudaEventCreateWithFlags(&state->prefetch_join, cudaEventDisableTiming) != cudaSuccess)) {
        cudaGetLastError();
        state->prefetch_cap = 0;
    }
    if (state->prefetch_cap == 0) state->ops.prefetch = NULL;
    if (state->ops.prefetch)
        MLXE_DEBUG(MLXE_LOG_CAT_RUNTIME, "%s: one token: o_proj's first %zu MiB prefetched into L2 during the attention",
                   state->name, state->prefetch_cap >> 20);
    else
        MLXE_DEBUG(MLXE_LOG_CAT_RUNTIME, "%s: no L2 prefetch (%s)", state->name,
                   state->cc_major < 9 ? "before sm_90"
                   : prefetch_off      ? "MLXE_CUDA_PREFETCH=0"
                                       : "MLXE_CUDA_PREFETCH_MB=0, or no stream for it");

    dev->kind = MLXE_DEVICE_CUDA;
    dev->n_threads = 1;
    dev->backend = state;
    dev->ops = &state->ops;
    MLXE_DEBUG(MLXE_LOG_CAT_RUNTIME,
               "device %s: %s, compute capability %d.%d, %d SMs, %zu MiB; kernels: prefill GEMM %s (F32 weights: "
               "SGEMM), matrix-vector kernels up to %d rows (%d for float weights; one token: %s), row split %s, "
               "attention %s, decode graphs %s, overlapped launches %s, fused ops (greedy argmax on the GPU; one token: RMSNorm folded into "
               "the projections of float weights, q/k/v in one launch, residual adds and SwiGLU in the matvec "
               "epilogue; RoPE with the KV cache write) %s",
               state->name, state->gpu_name, state->cc_major, state->cc_minor, state->sm_count,
               state->total_memory >> 20,
               state->gemm_mode == MLXE_CUDA_GEMM_F32_WEIGHTS ? "F32 (weights widened, SGEMM)"
                                                              : "cuBLAS tensor cores (BF16/F16 activations)",
               state->matvec_max_rows, state->float_matvec_max_rows,
               state->matvec_v3 ? "one row per warp (MLXE_CUDA_MATVEC=v3)" : "1-4 rows per warp, x in registers",
               state->matvec_split_auto ? "auto" : "off",
               state->attention_mode == 1   ? "split (forced)"
               : state->attention_mode == 2 ? "warp per pair (forced)"
               : state->attention_mode == 3 ? "flash (forced where head_dim is 64 or 128)"
               : state->cc_major >= 9 && state->attention_cluster
                   ? "split-K decode merged in a thread-block cluster / flash or warp-per-pair prefill"
                   : "split-K decode / flash or warp-per-pair prefill",
               state->graphs_disabled ? "off (MLXE_CUDA_GRAPH=0)" : "on",
               state->overlap_launches == 7u ? "on (not for quantized matvec)"
               : state->overlap_launches == 15u ? "on"
               : state->overlap_launches    ? "partly (MLXE_CUDA_PDL)"
               : state->cc_major >= 9       ? "off (MLXE_CUDA_PDL=0)"
                                            : "off (before sm_90)",
               fused_off ? "off (MLXE_CUDA_FUSED=0)" : "on");
    return MLXE_OK;
}

void mlxe_cuda_device_release(mlxe_device *dev) {
    release_state(mlxe_cuda_state_of(dev));
    dev->backend = NULL;
}

bool mlxe_cuda_memory_info(const mlxe_device *dev, size_t *free_bytes, size_t *total_bytes) {
    mlxe_cuda_state *state = mlxe_cuda_state_of(dev);
    cudaSetDevice(state->ordinal);
    if (cudaMemGetInfo(free_bytes, total_bytes) == cudaSuccess) return true;
    cudaGetLastError();
    *free_bytes = *total_bytes = 0;
    return false;
}
