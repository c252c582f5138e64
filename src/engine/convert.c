/* engine/convert.c — mlxe_convert: a Hugging Face or MLX folder in, an MLX
 * folder out (include/mlxengine/convert.h), following mlx-lm's convert.py
 * and utils.py (quantize_model, save_model, make_shards, save_config).
 *
 * Steps: read config.json and its quantization; plan every output tensor
 * (name, type, shape, how it is made) in the source's order, dropping what
 * mlx-lm's sanitize drops (rotary inv_freq buffers; lm_head when the
 * embeddings are tied); cut the plan into shards of at most max_shard_bytes
 * in that order (make_shards); write each shard tensor by tensor (computing
 * each output only when it is written) into a temporary folder with the
 * index, config.json and the side files; rename the folder into place. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/error.h"
#include "base/file.h"
#include "base/json.h"
#include "base/log_internal.h"
#include "base/thread_pool.h"
#include "engine/convert_internal.h"
#include "format/model_config.h"
#include "format/mlx_quant.h"
#include "format/quant_config.h"
#include "mlxengine/convert.h"

#define MAX_CONFIG_BYTES (16u * 1024u * 1024u)
#define MAX_WORKERS 256

void mlxe_convert_options_init(mlxe_convert_options *options) {
    if (!options) return;
    memset(options, 0, sizeof *options);
    options->bits = MLXE_QUANT_DEFAULT_BITS;
    options->group_size = MLXE_QUANT_DEFAULT_GROUP_SIZE;
    options->dtype = MLXE_CONVERT_DTYPE_AUTO;
    options->max_shard_bytes = (uint64_t)5 << 30;
}

bool mlxe_convert_dtype_from_name(const char *name, mlxe_convert_dtype *out) {
    static const struct {
        const char *name;
        mlxe_convert_dtype dtype;
    } names[] = {{"bf16", MLXE_CONVERT_DTYPE_BF16},    {"bfloat16", MLXE_CONVERT_DTYPE_BF16},
                 {"f16", MLXE_CONVERT_DTYPE_F16},      {"float16", MLXE_CONVERT_DTYPE_F16},
                 {"f32", MLXE_CONVERT_DTYPE_F32},      {"float32", MLXE_CONVERT_DTYPE_F32}};
    for (size_t i = 0; name && i < sizeof names / sizeof names[0]; i++)
        if (strcmp(name, names[i].name) == 0) {
            if (out) *out = names[i].dtype;
            return true;
        }
    return false;
}

typedef struct converter {
    const char *src_dir, *dst_dir;
    mlxe_convert_options options;
    cJSON *config;
    mlxe_quant_config src_quant;
    mlxe_weight_set *set;
    mlxe_dtype target;               /* UNKNOWN: keep each tensor's type */
    convert_tensor *tensors;
    size_t n_tensors;
    convert_module *modules;         /* capacity = source tensor count, so pointers stay valid */
    size_t n_modules;
    uint64_t total_parameters;
    mlxe_thread_pool *pool;
    mlxe_convert_progress progress;
} converter;

static bool is_float(mlxe_dtype dtype) {
    return dtype == MLXE_DTYPE_F32 || dtype == MLXE_DTYPE_F16 || dtype == MLXE_DTYPE_BF16;
}

static bool has_suffix(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* "P.weight" -> "P" in buf. */
static void module_of(const char *name, const char *suffix, char *buf, size_t size) {
    snprintf(buf, size, "%.*s", (int)(strlen(name) - strlen(suffix)), name);
}

/* ---- planning ---- */

static mlxe_status add_tensor(converter *c, const char *name, mlxe_dtype dtype, int n_dims, const int64_t *shape,
                              convert_kind kind, const mlxe_tensor_info *src, convert_module *module,
                              mlxe_error *err) {
    convert_tensor *grown = realloc(c->tensors, (c->n_tensors + 1) * sizeof *grown);
    if (!grown) return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory planning the conversion");
    c->tensors = grown;
    convert_tensor *t = &c->tensors[c->n_tensors];
    memset(t, 0, sizeof *t);
    if (!(t->name = strdup(name))) return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory");
    c->n_tensors++;
    t->dtype = dtype;
    t->n_dims = n_dims;
    size_t elements = 1;
    for (int d = 0; d < n_dims; d++) {
        t->shape[d] = shape[d];
        elements *= (size_t)shape[d];
    }
    t->n_bytes = elements * mlxe_dtype_size(dtype);
    t->kind = kind;
    t->src = src;
    t->module = module;
    return MLXE_OK;
}

static mlxe_dtype output_float_type(const converter *c, mlxe_dtype source) {
    return c->target != MLXE_DTYPE_UNKNOWN ? c->target : source;
}

/* A float tensor copied or cast to the target type. */
static mlxe_status plan_plain(converter *c, const mlxe_tensor_info *t, bool count, mlxe_error *err) {
    mlxe_dtype out = is_float(t->dtype) ? output_float_type(c, t->dtype) : t->dtype;
    if (count) c->total_parameters += (uint64_t)t->n_elements;
    return add_tensor(c, t->name, out, t->n_dims, t->shape, out == t->dtype ? CONVERT_COPY : CONVERT_CAST, t, NULL,
                      err);
}

static convert_module *new_module(converter *c) {
    convert_module *m = &c->modules[c->n_modules++];
    memset(m, 0, sizeof *m);
    return m;
}

static mlxe_status plan_quantize(converter *c, const mlxe_tensor_info *t, const char *module, mlxe_error *err) {
    convert_module *m = new_module(c);
    m->weight = t;
    m->bits = c->options.bits;
    m->group_size = c->options.group_size;
    m->rows = t->shape[0];
    m->cols = t->shape[1];
    m->dtype = output_float_type(c, t->dtype);
    c->total_parameters += (uint64_t)t->n_elements;
    char name[400];
    const int64_t packed_shape[2] = {m->rows, mlxe_quant_packed_cols(m->cols, m->bits)};
    const int64_t group_shape[2] = {m->rows, m->cols / m->group_size};
    mlxe_status st = add_tensor(c, t->name, MLXE_DTYPE_U32, 2, packed_shape, CONVERT_QUANT_WEIGHT, t, m, err);
    snprintf(name, sizeof name, "%s.scales", module);
    if (st == MLXE_OK) st = add_tensor(c, name, m->dtype, 2, group_shape, CONVERT_QUANT_SCALES, t, m, err);
    snprintf(name, sizeof name, "%s.biases", module);
    if (st == MLXE_OK) st = add_tensor(c, name, m->dtype, 2, group_shape, CONVERT_QUANT_BIASES, t, m, err);
    return st;
}

/* A quantized source module P (P.weight U32, P.scales, P.biases): checked
 * against config.json's bits and group size, then either dequantized or
 * carried over (scales and biases cast like any float tensor). */
static mlxe_status plan_quantized_source(converter *c, const mlxe_tensor_info *t, const char *module,
                                         mlxe_error *err) {
    char name[400];
    mlxe_quant_params params = mlxe_quant_config_lookup(&c->src_quant, module);
    if (!params.quantized)
        return mlxe_error_set(err, MLXE_ERR_FORMAT,
                              "%s: '%s.scales' exists but config.json's quantization gives no bits and group size "
                              "for '%s'",
                              c->src_dir, module, module);
    snprintf(name, sizeof name, "%s.scales", module);
    const mlxe_tensor_info *scales = mlxe_weight_set_find(c->set, name);
    snprintf(name, sizeof name, "%s.biases", module);
    const mlxe_tensor_info *biases = mlxe_weight_set_find(c->set, name);
    if (!biases)
        return mlxe_error_set(err, MLXE_ERR_UNSUPPORTED,
                              "%s: '%s' has scales but no biases; only MLX affine quantization is supported",
                              c->src_dir, module);
    int64_t rows = t->n_dims == 2 ? t->shape[0] : 0, cols = t->n_dims == 2 ? t->shape[1] * 32 / params.bits : 0;
    bool ok = t->n_dims == 2 && (t->shape[1] * 32) % params.bits == 0 && cols % params.group_size == 0 &&
              scales->n_dims == 2 && scales->shape[0] == rows && scales->shape[1] == cols / params.group_size &&
              biases->n_dims == 2 && biases->shape[0] == rows && biases->shape[1] == scales->shape[1] &&
              is_float(scales->dtype) && biases->dtype == scales->dtype;
    if (!ok)
        return mlxe_error_set(err, MLXE_ERR_FORMAT,
                              "%s: the shapes or types of '%s.weight', '.scales' and '.biases' do not fit %d-bit "
                              "quantization with group size %d (as config.json says)",
                              c->src_dir, module, params.bits, params.group_size);
    c->total_parameters += (uint64_t)(rows * cols);
    if (!c->options.dequantize) return add_tensor(c, t->name, t->dtype, 2, t->shape, CONVERT_COPY, t, NULL, err);
    convert_module *m = new_module(c);
    m->weight = t;
    m->scales = scales;
    m->biases = biases;
    m->bits = params.bits;
    m->group_size = params.group_size;
    m->rows = rows;
    m->cols = cols;
    m->dtype = output_float_type(c, scales->dtype);
    const int64_t shape[2] = {rows, cols};
    return add_tensor(c, t->name, m->dtype, 2, shape, CONVERT_DEQUANT, t, m, err);
}

static bool is_scales_or_biases_of_quantized(const converter *c, const mlxe_tensor_info *t) {
    const char *suffix = has_suffix(t->name, ".scales") ? ".scales" : has_suffix(t->name, ".biases") ? ".biases" : NULL;
    if (!suffix) return false;
    char name[320];
    module_of(t->name, suffix, name, sizeof name);
    strncat(name, ".weight", sizeof name - strlen(name) - 1);
    const mlxe_tensor_info *weight = mlxe_weight_set_find(c->set, name);
    return weight && weight->dtype == MLXE_DTYPE_U32;
}

static mlxe_status plan(converter *c, bool tied, mlxe_error *err) {
    size_t n = mlxe_weight_set_count(c->set);
    c->modules = calloc(n ? n : 1, sizeof *c->modules);
    if (!c->modules) return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory planning the conversion");
    for (size_t i = 0; i < n; i++) {
        const mlxe_tensor_info *t = mlxe_weight_set_at(c->set, i);
        char module[320], name[400];
        mlxe_status st = MLXE_OK;
        if (strlen(t->name) >= sizeof module)
            return mlxe_error_set(err, MLXE_ERR_UNSUPPORTED, "%s: tensor name '%.64s...' is too long", c->src_dir,
                                  t->name);
        /* mlx-lm's sanitize: RoPE buffers are recomputed; a tied lm_head is the embedding */
        if (has_suffix(t->name, ".rotary_emb.inv_freq")) continue;
        if (tied && strncmp(t->name, "lm_head.", 8) == 0) continue;
        if (is_scales_or_biases_of_quantized(c, t)) {
            /* counted with their weight; dropped when dequantizing */
            if (!c->options.dequantize) st = plan_plain(c, t, false, err);
        } else if (has_suffix(t->name, ".weight") && t->dtype == MLXE_DTYPE_U32) {
            module_of(t->name, ".weight", module, sizeof module);
            snprintf(name, sizeof name, "%s.scales", module);
            if (mlxe_weight_set_find(c->set, name)) st = plan_quantized_source(c, t, module, err);
            else st = plan_plain(c, t, true, err);
        } else if (c->options.quantize && has_suffix(t->name, ".weight") && is_float(t->dtype) && t->n_dims == 2 &&
                   t->shape[1] % c->options.group_size == 0) {
            /* nn.quantize's Linear and Embedding layers; mlx-lm skips input sizes
             * that are not a multiple of the group size */
            module_of(t->name, ".weight", module, sizeof module);
            st = plan_quantize(c, t, module, err);
        } else {
            st = plan_plain(c, t, true, err);
        }
        if (st != MLXE_OK) return st;
    }
    return MLXE_OK;
}

/* ---- producing tensors ---- */

typedef struct row_job {
    const convert_module *m;
    const void *src;           /* rows x cols in m->dtype (quantize) */
    uint32_t *packed;
    void *scales, *biases;
    void *out;                 /* dequantize output */
    mlxe_dtype out_dtype;
    bool dequantize;
    mlxe_status status[MAX_WORKERS];
    mlxe_error errors[MAX_WORKERS];
} row_job;

static void run_rows(void *ctx, int index, int count) {
    row_job *job = ctx;
    const convert_module *m = job->m;
    long begin, end;
    mlxe_split_range((long)m->rows, index, count, &begin, &end);
    job->status[index] = MLXE_OK;
    if (begin == end) return;
    int64_t rows = end - begin, words = mlxe_quant_packed_cols(m->cols, m->bits), groups = m->cols / m->group_size;
    size_t scale_size = mlxe_dtype_size(m->dtype);
    const unsigned char *scales = (const unsigned char *)job->scales + (size_t)(begin * groups) * scale_size;
    const unsigned char *biases = (const unsigned char *)job->biases + (size_t)(begin * groups) * scale_size;
    if (job->dequantize) {
        job->status[index] = mlxe_dequantize_affine(
            job->packed + begin * words, scales, biases, m->dtype, rows, m->cols, m->bits, m->group_size,
            (unsigned char *)job->out + (size_t)(begin * m->cols) * mlxe_dtype_size(job->out_dtype), job->out_dtype,
            m->weight->name, &job->errors[index]);
    } else {
        job->status[index] = mlxe_quantize_affine(
            (const unsigned char *)job->src + (size_t)(begin * m->cols) * scale_size, m->dtype, rows, m->cols, m->bits,
            m->group_size, job->packed + begin * words, (void *)scales, (void *)biases, m->weight->name,
            &job->errors[index]);
    }
}

static mlxe_status run_job(converter *c, row_job *job, mlxe_error *err) {
    mlxe_thread_pool_run(c->pool, run_rows, job);
    int workers = c->pool ? mlxe_thread_pool_size(c->pool) : 1;
    for (int i = 0; i < workers; i++)
        if (job->status[i] != MLXE_OK) {
            if (err) *err = job->errors[i];
            return job->status[i];
        }
    return MLXE_OK;
}

/* t's data, or an aligned copy when the file stores it misaligned for its
 * element size (MLX's writer does not align tensors); *owned is the copy to
 * free. NULL when out of memory. */
static const void *aligned_data(const mlxe_tensor_info *t, void **owned) {
    *owned = NULL;
    if (t->aligned || t->n_bytes == 0) return t->data;
    *owned = malloc(t->n_bytes);
    if (*owned) memcpy(*owned, t->data, t->n_bytes);
    return *owned;
}

/* Values of a float tensor converted to dtype (a new buffer), or NULL. */
static void *cast_copy(const void *src, mlxe_dtype from, mlxe_dtype to, int64_t n) {
    void *out = malloc((size_t)n * mlxe_dtype_size(to) + 1);
    if (!out) return NULL;
    for (int64_t i = 0; i < n; i++) mlxe_quant_store_float(out, to, i, mlxe_quant_load_float(src, from, i));
    return out;
}

/* Quantizes m's weight; packed may be NULL when only scales/biases are wanted. */
static mlxe_status quantize_module(converter *c, convert_module *m, uint32_t *packed, mlxe_error *err) {
    size_t groups = (size_t)(m->rows * (m->cols / m->group_size)), scale_size = mlxe_dtype_size(m->dtype);
    uint32_t *scratch = NULL;
    void *cast = NULL;
    mlxe_status st = MLXE_OK;
    if (!m->scales_out) m->scales_out = malloc(groups * scale_size);
    if (!m->biases_out) m->biases_out = malloc(groups * scale_size);
    if (!packed) packed = scratch = malloc((size_t)(m->rows * mlxe_quant_packed_cols(m->cols, m->bits)) * 4);
    void *unaligned_copy = NULL;
    const void *src = aligned_data(m->weight, &unaligned_copy);
    if (src && m->weight->dtype != m->dtype) src = cast = cast_copy(src, m->weight->dtype, m->dtype,
                                                                    m->weight->n_elements);
    if (!m->scales_out || !m->biases_out || !packed || !src) {
        st = mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory quantizing '%s'", m->weight->name);
    } else {
        row_job *job = calloc(1, sizeof *job);
        if (!job) {
            st = mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory quantizing '%s'", m->weight->name);
        } else {
            job->m = m;
            job->src = src;
            job->packed = packed;
            job->scales = m->scales_out;
            job->biases = m->biases_out;
            st = run_job(c, job, err);
            free(job);
        }
    }
    free(scratch);
    free(cast);
    free(unaligned_copy);
    return st;
}

static mlxe_status dequantize_module(converter *c, convert_module *m, void *out, mlxe_error *err) {
    /* mlx-lm casts every float parameter (scales and biases too) to the
     * target dtype before dequantizing, so the arithmetic is in that type. */
    void *own_weight, *own_scales, *own_biases;
    const void *weight = aligned_data(m->weight, &own_weight);
    const void *scales = aligned_data(m->scales, &own_scales), *biases = aligned_data(m->biases, &own_biases);
    void *cast_scales = NULL, *cast_biases = NULL;
    if (scales && biases && m->scales->dtype != m->dtype) {
        scales = cast_scales = cast_copy(scales, m->scales->dtype, m->dtype, m->scales->n_elements);
        biases = cast_biases = cast_copy(biases, m->biases->dtype, m->dtype, m->biases->n_elements);
    }
    row_job *job = calloc(1, sizeof *job);
    mlxe_status st;
    if (!job || !weight || !scales || !biases) {
        st = mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory dequantizing '%s'", m->weight->name);
    } else {
        job->m = m;
        job->packed = (uint32_t *)weight;
        job->scales = (void *)scales;
        job->biases = (void *)biases;
        job->out = out;
        job->out_dtype = m->dtype;
        job->dequantize = true;
        st = run_job(c, job, err);
    }
    free(job);
    free(cast_scales);
    free(cast_biases);
    free(own_weight);
    free(own_scales);
    free(own_biases);
    return st;
}

static void release_module_results(convert_module *m) {
    if (m->scales_written && m->biases_written) {
        free(m->scales_out);
        free(m->biases_out);
        m->scales_out = m->biases_out = NULL;
    }
}

static mlxe_status produce(void *ctx, convert_tensor *t, void *buffer, mlxe_error *err) {
    converter *c = ctx;
    if (mlxe_cancel_is_requested(c->options.cancel))
        return mlxe_error_set(err, MLXE_ERR_CANCELLED, "conversion cancelled");
    convert_module *m = t->module;
    mlxe_status st = MLXE_OK;
    switch (t->kind) {
    case CONVERT_COPY: memcpy(buffer, t->src->data, t->n_bytes); break;
    case CONVERT_CAST: {
        void *owned;
        const void *data = aligned_data(t->src, &owned);
        if (!data) return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory converting '%s'", t->name);
        for (int64_t i = 0; i < t->src->n_elements; i++)
            mlxe_quant_store_float(buffer, t->dtype, i, mlxe_quant_load_float(data, t->src->dtype, i));
        free(owned);
        break;
    }
    case CONVERT_QUANT_WEIGHT: st = quantize_module(c, m, buffer, err); break;
    case CONVERT_QUANT_SCALES:
    case CONVERT_QUANT_BIASES: {
        bool scales = t->kind == CONVERT_QUANT_SCALES;
        if (!(scales ? m->scales_out : m->biases_out)) st = quantize_module(c, m, NULL, err);
        if (st != MLXE_OK) break;
        memcpy(buffer, scales ? m->scales_out : m->biases_out, t->n_bytes);
        if (scales) m->scales_written = true;
        else m->biases_written = true;
        release_module_results(m);
        break;
    }
    case CONVERT_DEQUANT: st = dequantize_module(c, m, buffer, err); break;
    }
    return st;
}

static mlxe_status written(void *ctx, const convert_tensor *t, mlxe_error *err) {
    converter *c = ctx;
    c->progress.tensors_done++;
    c->progress.bytes_done += t->n_bytes;
    c->progress.tensor = t->name;
    if (c->options.progress && !c->options.progress(c->options.progress_user, &c->progress))
        return mlxe_error_set(err, MLXE_ERR_CANCELLED, "conversion cancelled by the progress callback");
    if (mlxe_cancel_is_requested(c->options.cancel))
        return mlxe_error_set(err, MLXE_ERR_CANCELLED, "conversion cancelled");
    return MLXE_OK;
}

/* ---- shards ---- */

/* Within a shard: 4-byte types first (every offset stays aligned to its
 * element size), then by name, as the safetensors reference writer orders. */
static int compare_for_file(const void *a, const void *b) {
    const convert_tensor *x = *(const convert_tensor *const *)a, *y = *(const convert_tensor *const *)b;
    size_t sx = mlxe_dtype_size(x->dtype), sy = mlxe_dtype_size(y->dtype);
    if (sx != sy) return sx > sy ? -1 : 1;
    return strcmp(x->name, y->name);
}

static mlxe_status write_weights(converter *c, const char *dir, mlxe_error *err) {
    /* make_shards: in plan order, a new shard when the next tensor would pass the limit */
    int n_shards = 1;
    uint64_t size = 0;
    for (size_t i = 0; i < c->n_tensors; i++) {
        if (size > 0 && size + c->tensors[i].n_bytes > c->options.max_shard_bytes) {
            n_shards++;
            size = 0;
        }
        c->tensors[i].shard = n_shards - 1;
        size += c->tensors[i].n_bytes;
        c->progress.bytes_total += c->tensors[i].n_bytes;
    }
    c->progress.tensors_total = (int64_t)c->n_tensors;
    c->progress.stage = "weights";

    char **names = calloc((size_t)n_shards, sizeof *names);
    convert_tensor **order = malloc((c->n_tensors ? c->n_tensors : 1) * sizeof *order);
    mlxe_status st = names && order ? MLXE_OK : mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory");
    for (int s = 0; st == MLXE_OK && s < n_shards; s++) {
        char name[64];
        if (n_shards == 1) snprintf(name, sizeof name, "model.safetensors");
        else snprintf(name, sizeof name, "model-%05d-of-%05d.safetensors", s + 1, n_shards);
        if (!(names[s] = strdup(name))) st = mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory");
    }
    for (int s = 0; st == MLXE_OK && s < n_shards; s++) {
        size_t count = 0;
        for (size_t i = 0; i < c->n_tensors; i++)
            if (c->tensors[i].shard == s) order[count++] = &c->tensors[i];
        qsort(order, count, sizeof *order, compare_for_file);
        uint64_t offset = 0;
        for (size_t i = 0; i < count; i++) {
            order[i]->offset = offset;
            offset += order[i]->n_bytes;
        }
        char *path = mlxe_path_join(dir, names[s]);
        if (!path) st = mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory");
        else st = convert_write_shard(path, order, count, produce, written, c, err);
        free(path);
    }
    if (st == MLXE_OK) st = convert_write_index(dir, c->tensors, c->n_tensors, names, c->total_parameters, err);
    for (int s = 0; names && s < n_shards; s++) free(names[s]);
    free(names);
    free(order);
    return st;
}

/* ---- config ---- */

static mlxe_status write_config(converter *c, const char *dir, mlxe_error *err) {
    cJSON *root = cJSON_Duplicate(c->config, 1);
    if (!root) return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory writing config.json");
    /* mlx-lm's save_config drops these */
    cJSON_DeleteItemFromObjectCaseSensitive(root, "_name_or_path");
    cJSON_DeleteItemFromObjectCaseSensitive(root, "vision_config");
    if (c->options.dequantize || c->options.quantize) {
        cJSON_DeleteItemFromObjectCaseSensitive(root, "quantization");
        cJSON_DeleteItemFromObjectCaseSensitive(root, "quantization_config");
    }
    if (c->options.quantize) {
        mlxe_quant_config quant = {.present = true, .bits = c->options.bits, .group_size = c->options.group_size};
        cJSON *a = mlxe_quant_config_to_json(&quant), *b = mlxe_quant_config_to_json(&quant);
        if (!a || !b || !cJSON_AddItemToObject(root, "quantization", a)) {
            cJSON_Delete(a);
            cJSON_Delete(b);
            cJSON_Delete(root);
            return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory writing config.json");
        }
        if (!cJSON_AddItemToObject(root, "quantization_config", b)) {
            cJSON_Delete(b);
            cJSON_Delete(root);
            return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory writing config.json");
        }
    }
    mlxe_status st = convert_write_config(dir, root, err);
    cJSON_Delete(root);
    return st;
}

/* ---- the whole conversion ---- */

static mlxe_status check_options(const mlxe_convert_options *o, mlxe_error *err) {
    if (o->quantize && o->dequantize)
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "choose either quantize or dequantize, not both");
    if (o->quantize && !mlxe_quant_bits_supported(o->bits))
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT,
                              "%d-bit quantization is not supported (bits must be 2, 3, 4, 5, 6 or 8)", o->bits);
    if (o->quantize && !mlxe_quant_group_size_supported(o->group_size))
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT,
                              "quantization group size %d is not supported (32, 64 or 128)", o->group_size);
    if (o->max_shard_bytes == 0)
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "max_shard_bytes must be positive");
    if ((int)o->dtype < MLXE_CONVERT_DTYPE_AUTO || o->dtype > MLXE_CONVERT_DTYPE_BF16)
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "unknown dtype %d", (int)o->dtype);
    return MLXE_OK;
}

static bool is_supported_model_type(const char *type) {
    for (int i = 0; mlxe_supported_model_types[i]; i++)
        if (strcmp(mlxe_supported_model_types[i], type) == 0) return true;
    return false;
}

/* Reads config.json and decides the target type and tying. */
static mlxe_status read_source(converter *c, bool *tied, mlxe_error *err) {
    char *path = mlxe_path_join(c->src_dir, "config.json");
    if (!path) return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory");
    mlxe_status st = mlxe_json_parse_file(path, MAX_CONFIG_BYTES, &c->config, err);
    if (st == MLXE_OK && !cJSON_IsObject(c->config))
        st = mlxe_error_set(err, MLXE_ERR_FORMAT, "%s: expected a JSON object", path);
    if (st == MLXE_OK) st = mlxe_quant_config_parse(c->config, path, &c->src_quant, err);
    const char *model_type = "", *dtype_name = NULL;
    bool found = false;
    if (st == MLXE_OK) st = mlxe_json_get_string(c->config, "model_type", path, &model_type, &found, err);
    if (st == MLXE_OK && !found) model_type = "";
    if (st == MLXE_OK) st = mlxe_json_get_bool(c->config, "tie_word_embeddings", path, tied, &found, err);
    if (st == MLXE_OK && !found) *tied = false;
    if (st == MLXE_OK && c->options.quantize) {
        if (c->src_quant.present)
            st = mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT,
                                "%s is already quantized; convert it with dequantize first to requantize", c->src_dir);
        else if (!is_supported_model_type(model_type))
            st = mlxe_error_set(err, MLXE_ERR_UNSUPPORTED,
                                "%s: model_type '%s' cannot be quantized by mlxengine yet (it knows which layers "
                                "mlx-lm quantizes only for llama, mistral, qwen2 and qwen3)",
                                path, model_type);
    }
    /* mlx-lm's default dtype is config.json's torch_dtype; transformers 5 writes "dtype" */
    if (st == MLXE_OK) {
        switch (c->options.dtype) {
        case MLXE_CONVERT_DTYPE_F32: c->target = MLXE_DTYPE_F32; break;
        case MLXE_CONVERT_DTYPE_F16: c->target = MLXE_DTYPE_F16; break;
        case MLXE_CONVERT_DTYPE_BF16: c->target = MLXE_DTYPE_BF16; break;
        case MLXE_CONVERT_DTYPE_AUTO:
            st = mlxe_json_get_string(c->config, "torch_dtype", path, &dtype_name, &found, err);
            if (st == MLXE_OK && !found) st = mlxe_json_get_string(c->config, "dtype", path, &dtype_name, &found, err);
            if (st == MLXE_OK && found && is_float(mlxe_dtype_from_name(dtype_name)))
                c->target = mlxe_dtype_from_name(dtype_name);
            break;
        }
    }
    free(path);
    if (st == MLXE_OK) st = mlxe_weight_set_open(c->src_dir, &c->set, err);
    return st;
}

static void converter_free(converter *c) {
    for (size_t i = 0; i < c->n_tensors; i++) free(c->tensors[i].name);
    free(c->tensors);
    for (size_t i = 0; i < c->n_modules; i++) {
        free(c->modules[i].scales_out);
        free(c->modules[i].biases_out);
    }
    free(c->modules);
    mlxe_weight_set_close(c->set);
    mlxe_quant_config_free(&c->src_quant);
    cJSON_Delete(c->config);
    mlxe_thread_pool_free(c->pool);
}

mlxe_status mlxe_convert(const char *src_dir, const char *dst_dir, const mlxe_convert_options *options,
                         mlxe_error *err) {
    if (!src_dir || !dst_dir)
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT, "mlxe_convert: src_dir and dst_dir are required");
    converter c = {.src_dir = src_dir, .dst_dir = dst_dir};
    if (options) c.options = *options;
    else mlxe_convert_options_init(&c.options);
    mlxe_status st = check_options(&c.options, err);
    if (st != MLXE_OK) return st;
    struct stat info;
    if (lstat(dst_dir, &info) == 0)
        return mlxe_error_set(err, MLXE_ERR_INVALID_ARGUMENT,
                              "%s already exists; give a new folder to write the converted model to", dst_dir);
    if (!mlxe_dir_exists(src_dir))
        return mlxe_error_set(err, MLXE_ERR_NOT_FOUND, "%s: no such model folder", src_dir);

    bool tied = false;
    char *tmp = NULL;
    st = read_source(&c, &tied, err);
    if (st == MLXE_OK) st = mlxe_thread_pool_create(0, &c.pool, err);
    if (st == MLXE_OK && mlxe_thread_pool_size(c.pool) > MAX_WORKERS) {
        mlxe_thread_pool_free(c.pool);
        st = mlxe_thread_pool_create(MAX_WORKERS, &c.pool, err);
    }
    if (st == MLXE_OK) st = plan(&c, tied, err);
    if (st == MLXE_OK) st = convert_make_temp_dir(dst_dir, &tmp, err);
    if (st == MLXE_OK) {
        MLXE_INFO(MLXE_LOG_CAT_ENGINE, "converting %s -> %s: %zu tensors%s", src_dir, dst_dir, c.n_tensors,
                  c.options.quantize ? " (quantizing)" : c.options.dequantize ? " (dequantizing)" : "");
        st = write_weights(&c, tmp, err);
    }
    if (st == MLXE_OK) st = write_config(&c, tmp, err);
    if (st == MLXE_OK) {
        c.progress.stage = "files";
        c.progress.tensor = NULL;
        st = convert_copy_side_files(src_dir, tmp, err);
    }
    if (st == MLXE_OK) st = convert_publish(tmp, dst_dir, err);
    if (st != MLXE_OK && tmp) convert_remove_dir(tmp);
    if (st == MLXE_OK && c.options.progress) {
        c.progress.stage = "done";
        c.options.progress(c.options.progress_user, &c.progress);
    }
    free(tmp);
    converter_free(&c);
    return st;
}
