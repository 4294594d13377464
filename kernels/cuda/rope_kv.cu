// RoPE (llama rotate-half) on Q and K of a chunk, fused with the KV-cache write: one block per
// token computes the token's cos/sin table once (angles in double: positions reach 1e5 and a
// float angle would be off by ~1e-2 rad there), then rotates every head's pairs (i, i + d/2).
// Q is rotated in place; rotated K and plain V go to the cache rows of the token.
#include "common/cuda_check.hpp"
#include "kernels/cuda/ops.hpp"

namespace cake::cuda {
namespace {

constexpr int kThreads = 128;
constexpr int kMaxHalf = 128;  // head_dim <= 256 (ModelConfig::validate)

struct RopeArgs {
  bf16* qkv;
  const bf16* bias;  // null: none
  int64_t first_pos;
  HeadShape shape;
  double rope_theta;
  bf16* k_cache;
  bf16* v_cache;
};

__global__ void __launch_bounds__(kThreads) rope_kv_kernel(const RopeArgs a) {
  const int t = blockIdx.x;
  const int64_t pos = a.first_pos + t;
  const int hd = a.shape.head_dim;
  const int half = hd / 2;
  const int qkv_width = (a.shape.q_heads + 2 * a.shape.kv_heads) * hd;
  bf16* row = a.qkv + static_cast<int64_t>(t) * qkv_width;

  __shared__ float cos_s[kMaxHalf];
  __shared__ float sin_s[kMaxHalf];
  for (int i = threadIdx.x; i < half; i += kThreads) {
    // inv_freq = theta^(-2i/d)
    const double inv_freq = exp(-2.0 * i / hd * log(a.rope_theta));
    double s, c;
    sincos(static_cast<double>(pos) * inv_freq, &s, &c);
    cos_s[i] = static_cast<float>(c);
    sin_s[i] = static_cast<float>(s);
  }
  __syncthreads();

  // Two adjacent pairs (i, i+1) and (i + d/2, i + d/2 + 1) per step: 4-byte accesses.
  const int rotated_heads = a.shape.q_heads + a.shape.kv_heads;
  const int half_pairs = half / 2;
  const int64_t cache_row = pos * a.shape.kv_heads * hd;
  for (int idx = threadIdx.x; idx < rotated_heads * half_pairs; idx += kThreads) {
    const int head = idx / half_pairs;
    const int i = 2 * (idx % half_pairs);
    float2 x1 = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(row + head * hd + i));
    float2 x2 = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(row + head * hd + i + half));
    if (a.bias != nullptr) {
      const float2 b1 = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(a.bias + head * hd + i));
      const float2 b2 = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(a.bias + head * hd + i + half));
      x1.x += b1.x;
      x1.y += b1.y;
      x2.x += b2.x;
      x2.y += b2.y;
    }
    const float c0 = cos_s[i], c1 = cos_s[i + 1], s0 = sin_s[i], s1 = sin_s[i + 1];
    const __nv_bfloat162 y1 = __floats2bfloat162_rn(x1.x * c0 - x2.x * s0, x1.y * c1 - x2.y * s1);
    const __nv_bfloat162 y2 = __floats2bfloat162_rn(x2.x * c0 + x1.x * s0, x2.y * c1 + x1.y * s1);
    bf16* dst = head < a.shape.q_heads ? row + head * hd : a.k_cache + cache_row + (head - a.shape.q_heads) * hd;
    *reinterpret_cast<__nv_bfloat162*>(dst + i) = y1;
    *reinterpret_cast<__nv_bfloat162*>(dst + i + half) = y2;
  }
  if (a.bias == nullptr) {
    const uint4* v_row = reinterpret_cast<const uint4*>(row + rotated_heads * hd);
    uint4* v = reinterpret_cast<uint4*>(a.v_cache + cache_row);
    for (int i = threadIdx.x; i < a.shape.kv_heads * hd / 8; i += kThreads) v[i] = v_row[i];
  } else {
    const bf16* v_row = row + rotated_heads * hd;
    const bf16* v_bias = a.bias + rotated_heads * hd;
    for (int i = threadIdx.x; i < a.shape.kv_heads * hd; i += kThreads)
      a.v_cache[cache_row + i] = __float2bfloat16_rn(__bfloat162float(v_row[i]) + __bfloat162float(v_bias[i]));
  }
}

}  // namespace

void rope_write_kv(bf16* qkv, const bf16* bias, int n, int64_t first_pos, HeadShape shape, double rope_theta, bf16* k_cache,
                   bf16* v_cache, cudaStream_t stream) {
  if (n <= 0) return;
  // Multiples of 8 keep every row 16-byte aligned and the pairs' halves 4-byte aligned.
  if (shape.head_dim % 8 != 0 || shape.head_dim / 2 > kMaxHalf)
    throw UsageError(cat("CUDA RoPE needs head_dim a multiple of 8 and <= ", 2 * kMaxHalf, ", got ", shape.head_dim));
  rope_kv_kernel<<<n, kThreads, 0, stream>>>(RopeArgs{qkv, bias, first_pos, shape, rope_theta, k_cache, v_cache});
  CAKE_CUDA_LAUNCH(cat("RoPE + KV write of ", n, " tokens at ", first_pos));
}

}  // namespace cake::cuda
