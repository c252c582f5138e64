/* runtime/cuda/cuda_flash_attention.h — the tensor-core causal attention
 * for prompts (cuda_flash_attention.cu), called by cuda_attention.cu when a
 * batch has many tokens. Built only with CUDA. */
#ifndef MLXE_RUNTIME_CUDA_FLASH_ATTENTION_H
#define MLXE_RUNTIME_CUDA_FLASH_ATTENTION_H

#include "runtime/cuda/cuda_internal.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Whether the flash kernel handles this head layout (head_dim 64 or 128,
 * n_heads a multiple of n_kv_heads). */
bool mlxe_cuda_flash_attention_supported(const mlxe_attention_args *args);

/* Queues the attention of args on the device's stream; slots and positions
 * are device pointers (args' own may be host memory). Q, K, V and the
 * softmax weights are rounded to BF16 for the tensor cores (float32
 * accumulation, float32 softmax), so results differ from the float32
 * kernels by about the BF16 rounding of the inputs (2^-9 relative). */
void mlxe_cuda_flash_attention(mlxe_cuda_state *state, const mlxe_attention_args *args, const int32_t *slots,
                               const int32_t *positions);

#ifdef __cplusplus
}
#endif
#endif
