// The CPU reference of every transformer op, fp32 in and out, on plain row-major arrays.
// The CPU backend is built from these and nothing else, and GPU tests use them as the oracle.
//
// Layouts (all row-major, no padding):
//   activations   [rows][dim]
//   weights       [out][in]              as kernels/seeded_weights.hpp generates them
//   Q, attention  [tokens][heads][head_dim]
//   K, V          [tokens][kv_heads][head_dim]   one layer's tensor of kernels/kv_cache.hpp
//
// Every output element is computed by one fixed sequence of float operations that depends only
// on its own inputs, never on how rows are split into chunks, blocks or threads: the same
// inputs give the same bits whatever the chunking, the thread count, and whether the AVX2 or
// the baseline x86-64 build of the hot loops runs (kernels/cpu/isa.hpp; no FMA contraction).
#pragma once

#include <cstdint>

namespace cake::cpu {

class ThreadPool;  // kernels/cpu/thread_pool.hpp; nullptr = run on the calling thread

// out[t][:] = table[tokens[t]][:], table [vocab][hidden].
// Throws UsageError naming the position and the id of a token outside [0, vocab).
void embedding(const float* table, int64_t vocab, int hidden, const int32_t* tokens, int64_t n_tokens, float* out);

// RMSNorm: out[r][i] = x[r][i] * rsqrt(mean_i(x[r][i]^2) + eps) * w[i].
// The mean of squares is accumulated in double. out may alias x. Also the final norm.
void rmsnorm(const float* x, const float* w, int64_t rows, int dim, float eps, float* out);

// y = x W^T: y[r][o] = sum_i x[r][i] * w[o][i], x [rows][in], W [out][in], y [rows][out].
// y must not overlap x or w. Also the LM head (W = [vocab][hidden]).
void linear(const float* x, int64_t rows, int in, const float* w, int out, float* y, ThreadPool* pool = nullptr);

// RoPE, llama "rotate half" convention, in place on x [tokens][heads][head_dim]; token t is at
// absolute position first_pos + t. For each pair (i, i + head_dim/2), i < head_dim/2:
//   angle = pos * theta^(-2i/head_dim)
//   x'[i]              = x[i] * cos(angle) - x[i + head_dim/2] * sin(angle)
//   x'[i + head_dim/2] = x[i + head_dim/2] * cos(angle) + x[i] * sin(angle)
// The angle, cos and sin are computed in double (at pos 100000 a float angle would be off by
// ~4e-3 rad), then the rotation in float. head_dim must be even.
void rope(float* x, int64_t tokens, int heads, int head_dim, int64_t first_pos, double theta);

// Causal GQA attention of n_queries queries at positions [first_pos, first_pos + n_queries).
//   q   [n_queries][q_heads][head_dim]     (after RoPE)
//   k,v [first_pos + n_queries][kv_heads][head_dim], from token 0 (a layer's KV cache tensor)
//   out [n_queries][q_heads][head_dim]
// Query i (position p = first_pos + i), head h, reads kv head h / (q_heads / kv_heads) of keys
// [0, p]:  s_j = (q . k_j) / sqrt(head_dim);  out = sum_j softmax(s)_j v_j, with the softmax
// computed as exp(s_j - max s) / sum exp(s - max s) so large scores cannot overflow; that exp is
// a vector polynomial (kernels/cpu/vec_exp.hpp, relative error ~1e-7), not libm's.
// Keys past p are never read. q_heads % kv_heads == 0.
void attention(const float* q, int64_t n_queries, int64_t first_pos, int q_heads, const float* k, const float* v,
               int kv_heads, int head_dim, float* out, ThreadPool* pool = nullptr);

// SwiGLU: out[i] = silu(gate[i]) * up[i], silu(g) = g / (1 + exp(-g)). out may alias gate or up.
void swiglu(const float* gate, const float* up, int64_t count, float* out);

// Bias of a linear layer: y[r][o] += bias[o], y [rows][width].
void add_bias(float* y, int64_t rows, int width, const float* bias);

// Residual connection: x[i] += delta[i].
void residual_add(float* x, const float* delta, int64_t count);

// Index of the largest value; the lowest index wins ties; NaNs are skipped. -1 if every value
// is NaN or count is 0.
int32_t argmax(const float* x, int64_t count);

// The nearest bf16 value (round to nearest, ties to even), returned as the float it equals.
// NaN stays NaN, infinities stay infinite, values that round past the bf16 range become inf.
float round_to_bf16(float x);

}  // namespace cake::cpu
