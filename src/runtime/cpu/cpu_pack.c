/* runtime/cpu/cpu_pack.c — ops->pack_matrix: at load, every matrix is
 * copied into memory with transparent huge pages (F32/F16/BF16 as they are;
 * MLX 4/8-bit ones into the CPU's own layout below, for the kernel tables
 * that read it: packs_quantized, avx512-int8 and avx512-int8-split), and
 * the portable readers of that layout (rows as floats, single words and
 * group values).
 *
 * Why. One-token decode is a stream of the weights. With the file's layout a
 * row's packed values, its scales and its biases are three streams, and the
 * kernel reduces each row's 16 lanes to one sum at the row's end (the
 * Qwen2.5-0.5B rows are 896 columns: 7 blocks of 64 bytes per reduction).
 * In 16-row tiles with the group values beside the values they scale, each
 * worker reads one stream, and each 32-bit lane of a vector is one row, so
 * the integer dot products land in the lane of their row and no horizontal
 * reduction is needed (llama.cpp repacks its Q4_0 rows 8 at a time for the
 * same reason: ggml-cpu/repack.cpp).
 *
 * Layout. Rows are taken 16 at a time ("tiles"; the last tile is padded
 * with zero rows: zero values, scales and biases). A tile is its groups one
 * after the other (group g = columns g*G .. g*G + G - 1); a group is
 *   64 bytes: the 16 rows' scales (stored dtype, F16 or BF16: 32 bytes),
 *             then their biases (32 bytes);
 *   then G*bits/32 "chunks" of 64 bytes: chunk c holds word c of the group
 *             (the file's uint32: 8 4-bit or 4 8-bit values, least
 *             significant first) of rows 0..15, 4 bytes each.
 * So a tile is groups × (64 + 2*bits*G) bytes, exactly the file's bytes for
 * 16 rows: the packed copy replaces the mapped one at the same size (the
 * mapped pages are released as the copy grows, release_bound). Only matrices with F16/BF16
 * scales, 4 or 8 bits, groups of 32, 64 or 128 and columns a multiple of 32
 * (what the int8 kernels take) are packed. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/error.h"
#include "base/file.h"
#include "format/dtype.h"
#include "runtime/cpu/cpu_ops.h"
#include "runtime/cpu/half.h"

#define HUGE_PAGE (2u << 20)

bool mlxe_cpu_packable(const mlxe_matrix *w) {
    return (w->bits == 4 || w->bits == 8) &&
           (w->group_size == 32 || w->group_size == 64 || w->group_size == 128) && w->cols % w->group_size == 0 &&
           w->cols % 32 == 0 && w->rows > 0 &&
           (w->scale_dtype == MLXE_DTYPE_F16 || w->scale_dtype == MLXE_DTYPE_BF16) && w->data && w->scales &&
           w->biases;
}

int64_t mlxe_cpu_packed_group_bytes(const mlxe_matrix *w) {
    return MLXE_CPU_PACK_HEADER + 2 * (int64_t)w->bits * w->group_size;
}

int64_t mlxe_cpu_packed_tile_bytes(const mlxe_matrix *w) {
    return (w->cols / w->group_size) * mlxe_cpu_packed_group_bytes(w);
}

size_t mlxe_cpu_packed_bytes(const mlxe_matrix *w) {
    const int64_t tiles = (w->rows + MLXE_CPU_PACK_ROWS - 1) / MLXE_CPU_PACK_ROWS;
    return (size_t)(tiles * mlxe_cpu_packed_tile_bytes(w));
}

/* Where word `word` (of the file's row) of `row` lives in the packed copy. */
static inline const uint8_t *packed_group(const mlxe_matrix *w, int64_t row, int64_t group) {
    return (const uint8_t *)w->packed + (row / MLXE_CPU_PACK_ROWS) * mlxe_cpu_packed_tile_bytes(w) +
           group * mlxe_cpu_packed_group_bytes(w);
}

uint32_t mlxe_cpu_packed_word(const mlxe_matrix *w, int64_t row, int64_t word) {
    const int64_t words_per_group = w->group_size * w->bits / 32, group = word / words_per_group;
    const uint8_t *chunk = packed_group(w, row, group) + MLXE_CPU_PACK_HEADER + (word % words_per_group) * 64;
    uint32_t value;
    memcpy(&value, chunk + (row % MLXE_CPU_PACK_ROWS) * 4, sizeof value);
    return value;
}

static inline float half_value(mlxe_dtype dtype, uint16_t bits) {
    return dtype == MLXE_DTYPE_F16 ? mlxe_f16_to_f32(bits) : mlxe_bf16_to_f32(bits);
}

float mlxe_cpu_packed_scale(const mlxe_matrix *w, int64_t row, int64_t group) {
    const uint16_t *values = (const uint16_t *)(const void *)packed_group(w, row, group);
    return half_value(w->scale_dtype, values[row % MLXE_CPU_PACK_ROWS]);
}

float mlxe_cpu_packed_bias(const mlxe_matrix *w, int64_t row, int64_t group) {
    const uint16_t *values = (const uint16_t *)(const void *)packed_group(w, row, group);
    return half_value(w->scale_dtype, values[MLXE_CPU_PACK_ROWS + row % MLXE_CPU_PACK_ROWS]);
}

void mlxe_cpu_packed_row_to_float(const mlxe_matrix *w, int64_t row, int64_t k0, int64_t n, float *out) {
    const int bits = w->bits, per_word = 32 / bits;
    const uint32_t mask = (1u << bits) - 1u;
    const int64_t lane = (row % MLXE_CPU_PACK_ROWS) * 4;
    for (int64_t k = k0; k < k0 + n;) {
        const int64_t group = k / w->group_size, group_end = (group + 1) * w->group_size;
        const uint8_t *values = packed_group(w, row, group), *chunks = values + MLXE_CPU_PACK_HEADER;
        uint16_t scale_bits, bias_bits;
        memcpy(&scale_bits, values + lane / 2, 2);
        memcpy(&bias_bits, values + 32 + lane / 2, 2);
        const float scale = half_value(w->scale_dtype, scale_bits), bias = half_value(w->scale_dtype, bias_bits);
        for (; k < k0 + n && k < group_end; k++) {
            const int64_t in_group = k - group * w->group_size;
            uint32_t word;
            memcpy(&word, chunks + (in_group / per_word) * 64 + lane, sizeof word);
            out[k - k0] = scale * (float)((word >> ((in_group % per_word) * bits)) & mask) + bias;
        }
    }
}

/* Tiles [begin, end) of w into out (the layout above). */
static void pack_tiles(const mlxe_matrix *w, uint8_t *out, int64_t begin, int64_t end) {
    const int64_t groups = w->cols / w->group_size, words_per_group = w->group_size * w->bits / 32;
    const int64_t row_words = w->cols * w->bits / 32, group_bytes = mlxe_cpu_packed_group_bytes(w);
    const uint32_t *data = w->data;
    const uint16_t *scales = w->scales, *biases = w->biases;
    for (int64_t t = begin; t < end; t++) {
        uint8_t *tile = out + t * mlxe_cpu_packed_tile_bytes(w);
        memset(tile, 0, (size_t)mlxe_cpu_packed_tile_bytes(w));
        for (int64_t j = 0; j < MLXE_CPU_PACK_ROWS; j++) {
            const int64_t row = t * MLXE_CPU_PACK_ROWS + j;
            if (row >= w->rows) break;
            for (int64_t g = 0; g < groups; g++) {
                uint8_t *group = tile + g * group_bytes;
                memcpy(group + 2 * j, &scales[row * groups + g], 2);
                memcpy(group + 32 + 2 * j, &biases[row * groups + g], 2);
                const uint32_t *words = data + row * row_words + g * words_per_group;
                uint8_t *chunks = group + MLXE_CPU_PACK_HEADER + 4 * j;
                for (int64_t c = 0; c < words_per_group; c++) memcpy(chunks + c * 64, &words[c], 4);
            }
        }
    }
}

/* Rows are copied or packed in pieces of this many (a multiple of the
 * tile): the bound pages of each piece are released before the next. */
#define PIECE_ROWS 4096

typedef struct pack_job {
    const mlxe_matrix *w;
    uint8_t *out;
    int64_t row_begin, row_end; /* the piece */
} pack_job;

static void pack_worker(void *ctx, int index, int count) {
    const pack_job *job = ctx;
    const mlxe_matrix *w = job->w;
    if (w->bits == 0) {
        /* a plain copy of the rows */
        const size_t row_bytes = (size_t)w->cols * mlxe_dtype_size(w->dtype);
        long begin, end;
        mlxe_split_range((long)(job->row_end - job->row_begin), index, count, &begin, &end);
        memcpy(job->out + (size_t)(job->row_begin + begin) * row_bytes,
               (const uint8_t *)w->data + (size_t)(job->row_begin + begin) * row_bytes, (size_t)(end - begin) * row_bytes);
        return;
    }
    const int64_t first_tile = job->row_begin / MLXE_CPU_PACK_ROWS;
    const int64_t tiles = (job->row_end - job->row_begin + MLXE_CPU_PACK_ROWS - 1) / MLXE_CPU_PACK_ROWS;
    long begin, end;
    mlxe_split_range((long)tiles, index, count, &begin, &end);
    pack_tiles(w, job->out, first_tile + begin, first_tile + end);
}

/* Releases the bound bytes [done, now) of a buffer, from the start of the
 * page holding byte `done` (its bytes before `done` were copied by the
 * previous piece) but never before the buffer: a page across a piece's end
 * goes with the next piece. */
static void release_rows(const void *buffer, size_t done, size_t now) {
    const uintptr_t base = (uintptr_t)buffer, page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t start = (base + done) / page * page;
    if (start < base) start = base;
    mlxe_release_pages((const void *)start, base + now - start);
}

mlxe_status mlxe_cpu_pack_matrix(mlxe_device *dev, mlxe_matrix *w, bool release_bound, void **owned, mlxe_error *err) {
    *owned = NULL;
    if (w->packed || w->rows <= 0 || !w->data) return MLXE_OK;
    const bool dense = w->bits == 0;
    if (!dense && (!mlxe_cpu_kernels_of(dev)->packs_quantized || !mlxe_cpu_packable(w))) return MLXE_OK;
    if (dense && w->dtype != MLXE_DTYPE_F32 && w->dtype != MLXE_DTYPE_F16 && w->dtype != MLXE_DTYPE_BF16) return MLXE_OK;
    const size_t element = dense ? mlxe_dtype_size(w->dtype) : 0;
    const size_t bytes = dense ? (size_t)(w->rows * w->cols) * element : mlxe_cpu_packed_bytes(w);
    /* 2 MiB aligned, and its whole 2 MiB pages marked for transparent huge
     * pages (the tail stays in 4 KiB pages: nothing beyond the bytes becomes
     * resident): each worker's stream then crosses no 4 KiB page boundary,
     * where the hardware prefetchers stop, and takes far fewer TLB misses
     * (BF16 decode +20-30% on the 2-core Zen 4 VM, bench/llamacpp/README.md). */
    void *out = NULL;
    if (bytes == 0 || posix_memalign(&out, bytes >= HUGE_PAGE ? HUGE_PAGE : 64, (bytes + 63) / 64 * 64) != 0)
        return mlxe_error_set(err, MLXE_ERR_OUT_OF_MEMORY, "out of memory copying a %lld x %lld matrix (%zu MB) for the CPU",
                              (long long)w->rows, (long long)w->cols, bytes >> 20);
    if (bytes >= HUGE_PAGE) (void)madvise(out, bytes / HUGE_PAGE * HUGE_PAGE, MADV_HUGEPAGE);
    const int64_t groups = dense ? 0 : w->cols / w->group_size;
    const size_t data_row = dense ? (size_t)w->cols * element : (size_t)(w->cols * w->bits / 8);
    for (int64_t r0 = 0; r0 < w->rows; r0 += PIECE_ROWS) {
        const int64_t r1 = r0 + PIECE_ROWS < w->rows ? r0 + PIECE_ROWS : w->rows;
        pack_job job = {w, out, r0, r1};
        mlxe_cpu_run(dev, (r1 - r0) * (int64_t)data_row >= (1 << 18), pack_worker, &job);
        if (release_bound) {
            release_rows(w->data, (size_t)r0 * data_row, (size_t)r1 * data_row);
            if (!dense) {
                release_rows(w->scales, (size_t)(r0 * groups) * 2, (size_t)(r1 * groups) * 2);
                release_rows(w->biases, (size_t)(r0 * groups) * 2, (size_t)(r1 * groups) * 2);
            }
        }
    }
    if (dense) w->data = out;
    else w->packed = out;
    *owned = out;
    return MLXE_OK;
}
