// Launchers of the CUDA backend's own kernels. Each queues work on `stream` and returns at once;
// launch errors are thrown (CAKE_CUDA_LAUNCH). Tensors are row-major bf16 on the device unless a
// name says otherwise; shapes are in elements. Only included where CAKE_HAVE_CUDA is set.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace cake::cuda {

using bf16 = __nv_bfloat16;

// ---- weights (kernels/seeded_weights.hpp, computed on the device, rounded to nearest even) ----
void fill_seeded_linear(bf16* out, uint64_t count, uint64_t seed, uint32_t tensor, int fan_in, cudaStream_t stream);
// Rows [row0, row0 + rows) x columns [col0, col0 + cols) of the seeded linear weight W
// [..][full_cols] (same values as fill_seeded_linear of the whole W), into out [rows][cols].
void fill_seeded_linear_block(bf16* out, uint64_t rows, uint64_t cols, uint64_t full_cols, uint64_t row0, uint64_t col0,
                              uint64_t seed, uint32_t tensor, int fan_in, cudaStream_t stream);
void fill_seeded_norm(bf16* out, uint64_t count, uint64_t seed, uint32_t tensor, cudaStream_t stream);
void fill_seeded_embedding(bf16* out, uint64_t count, uint64_t seed, cudaStream_t stream);
// Every element set to the same bit pattern (0x7FC0 = NaN poisons a KV cache).
void fill_bits(bf16* out, uint64_t count, uint16_t bits, cudaStream_t stream);

// ---- per-token ops ----
// out[t] = table[tokens[t]], rows of `hidden`.
void embedding_gather(const int32_t* tokens, int n_tokens, const bf16* table, int hidden, bf16* out,
                      cudaStream_t stream);
// y[r] = x[r] * rsqrt(mean(x[r]^2) + eps) * w, fp32 math. hidden % 8 == 0.
void rmsnorm(const bf16* x, const bf16* w, bf16* y, int rows, int hidden, float eps, cudaStream_t stream);

struct HeadShape {
  int q_heads = 0;
  int kv_heads = 0;
  int head_dim = 0;
};

// qkv: [n][(q_heads + 2 kv_heads) head_dim] (Q heads, K heads, V heads) for positions
// [first_pos, first_pos + n). Adds `bias` [(q_heads + 2 kv_heads) head_dim] first when it is not
// null (Qwen2's q/k/v biases; in fp32, one rounding to bf16 after bias and rotation). Rotates Q in place (llama rotate-half, absolute positions) and
// writes rotated K and plain V into the cache rows [first_pos, first_pos + n), each cache being
// [capacity][kv_heads][head_dim] (kernels/kv_cache.hpp).
void rope_write_kv(bf16* qkv, const bf16* bias, int n, int64_t first_pos, HeadShape shape, double rope_theta, bf16* k_cache,
                   bf16* v_cache, cudaStream_t stream);

// out[t][j] = silu(gate_up[t][j]) * gate_up[t][ffn + j]; ffn % 8 == 0.
void swiglu(const bf16* gate_up, bf16* out, int n, int ffn, cudaStream_t stream);

// out_index = the index of the largest of `count` fp32 values; the lowest index wins ties.
void argmax(const float* values, int count, int32_t* out_index, cudaStream_t stream);

}  // namespace cake::cuda
