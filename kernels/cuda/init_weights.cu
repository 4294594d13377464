// Seeded weights generated on the device (kernels/seeded_weights.hpp), rounded to bf16 (nearest
// even). Each thread writes 8 consecutive elements as one 16-byte store.
#include <cuda_bf16.h>

#include "common/cuda_check.hpp"
#include "kernels/cuda/launch_util.cuh"
#include "kernels/cuda/ops.hpp"
#include "kernels/seeded_weights.hpp"

namespace cake::cuda {
namespace {

enum class Fill { linear, norm, embedding, bits };

struct FillArgs {
  bf16* out;
  uint64_t count;
  uint64_t seed;
  uint32_t tensor;
  int fan_in;
  uint16_t bits;
};

template <Fill kind>
__device__ __forceinline__ bf16 value_at(const FillArgs& a, uint64_t i) {
  if constexpr (kind == Fill::linear) {
    return __float2bfloat16_rn(seeded_linear_weight(a.seed, a.tensor, i, a.fan_in));
  } else if constexpr (kind == Fill::norm) {
    // seeded_norm_weight's 1 + 0.1 u, spelled with explicit roundings: nvcc would otherwise fuse
    // it into one FMA and disagree with the host in the last bit. gpu_weights_test checks the two
    // agree bit for bit.
    return __float2bfloat16_rn(__fadd_rn(1.0f, __fmul_rn(0.1f, seeded_uniform(a.seed, a.tensor, i))));
  } else if constexpr (kind == Fill::embedding) {
    return __float2bfloat16_rn(seeded_embedding(a.seed, i));
  } else {
    return __ushort_as_bfloat16(a.bits);
  }
}

template <Fill kind>
__global__ void fill_kernel(const FillArgs a) {
  const uint64_t groups = (a.count + 7) / 8;
  for (uint64_t g = blockIdx.x * static_cast<uint64_t>(blockDim.x) + threadIdx.x; g < groups;
       g += static_cast<uint64_t>(gridDim.x) * blockDim.x) {
    const uint64_t i0 = g * 8;
    if (i0 + 8 <= a.count) {
      alignas(16) bf16 v[8];
#pragma unroll
      for (int j = 0; j < 8; ++j) v[j] = value_at<kind>(a, i0 + j);
      *reinterpret_cast<uint4*>(a.out + i0) = *reinterpret_cast<const uint4*>(v);
    } else {
      for (uint64_t i = i0; i < a.count; ++i) a.out[i] = value_at<kind>(a, i);
    }
  }
}

template <Fill kind>
void launch_fill(const FillArgs& a, cudaStream_t stream, const char* what) {
  if (a.count == 0) return;
  if (reinterpret_cast<uintptr_t>(a.out) % 16 != 0)
    throw Error(cat(what, ": destination is not 16-byte aligned"));
  fill_kernel<kind><<<elementwise_blocks((a.count + 7) / 8), kElementwiseThreads, 0, stream>>>(a);
  CAKE_CUDA_LAUNCH(cat(what, " (", a.count, " elements, tensor ", a.tensor, ")"));
}

// A block of a seeded linear weight: out[i][j] = W[row0 + i][col0 + j] of the full W
// [..][full_cols], so a tensor-parallel rank generates exactly its slice of the unsplit weights.
__global__ void fill_linear_block_kernel(bf16* out, uint64_t rows, uint64_t cols, uint64_t full_cols, uint64_t row0,
                                         uint64_t col0, uint64_t seed, uint32_t tensor, int fan_in) {
  const uint64_t count = rows * cols;
  for (uint64_t i = blockIdx.x * static_cast<uint64_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<uint64_t>(gridDim.x) * blockDim.x) {
    const uint64_t r = i / cols, c = i % cols;
    out[i] = __float2bfloat16_rn(seeded_linear_weight(seed, tensor, (row0 + r) * full_cols + col0 + c, fan_in));
  }
}

}  // namespace

void fill_seeded_linear_block(bf16* out, uint64_t rows, uint64_t cols, uint64_t full_cols, uint64_t row0, uint64_t col0,
                              uint64_t seed, uint32_t tensor, int fan_in, cudaStream_t stream) {
  const uint64_t count = rows * cols;
  if (count == 0) return;
  if (col0 + cols > full_cols) throw Error(cat("generating a weight block: columns [", col0, ", ", col0 + cols,
                                              ") exceed the tensor's ", full_cols));
  fill_linear_block_kernel<<<elementwise_blocks(count), kElementwiseThreads, 0, stream>>>(out, rows, cols, full_cols, row0,
                                                                                        col0, seed, tensor, fan_in);
  CAKE_CUDA_LAUNCH(cat("generating a block of linear weights (", rows, "x", cols, ", tensor ", tensor, ")"));
}

void fill_seeded_linear(bf16* out, uint64_t count, uint64_t seed, uint32_t tensor, int fan_in, cudaStream_t stream) {
  launch_fill<Fill::linear>(FillArgs{out, count, seed, tensor, fan_in, 0}, stream, "generating linear weights");
}
void fill_seeded_norm(bf16* out, uint64_t count, uint64_t seed, uint32_t tensor, cudaStream_t stream) {
  launch_fill<Fill::norm>(FillArgs{out, count, seed, tensor, 1, 0}, stream, "generating norm weights");
}
void fill_seeded_embedding(bf16* out, uint64_t count, uint64_t seed, cudaStream_t stream) {
  launch_fill<Fill::embedding>(FillArgs{out, count, seed, kEmbeddingTensor, 1, 0}, stream,
                               "generating the embedding");
}
void fill_bits(bf16* out, uint64_t count, uint16_t bits, cudaStream_t stream) {
  launch_fill<Fill::bits>(FillArgs{out, count, 0, 0, 1, bits}, stream, "filling a tensor");
}

}  // namespace cake::cuda
