// Argmax over fp32 values in one block: each thread scans a strided slice, then a tree of
// (value, index) pairs; the lowest index wins ties, NaN never wins.
#include <cfloat>

#include "common/cuda_check.hpp"
#include "kernels/cuda/ops.hpp"

namespace cake::cuda {
namespace {

constexpr int kThreads = 1024;

__device__ __forceinline__ bool better(float v, int i, float best_v, int best_i) {
  return v > best_v || (v == best_v && i < best_i);
}

__global__ void __launch_bounds__(kThreads) argmax_kernel(const float* values, int count, int32_t* out_index) {
  float best_v = -INFINITY;
  int best_i = count;  // "none yet": loses every tie against a real index
  for (int i = threadIdx.x; i < count; i += kThreads)
    if (better(values[i], i, best_v, best_i)) {
      best_v = values[i];
      best_i = i;
    }
#pragma unroll
  for (int off = 16; off > 0; off /= 2) {
    const float v = __shfl_xor_sync(0xffffffffu, best_v, off);
    const int i = __shfl_xor_sync(0xffffffffu, best_i, off);
    if (better(v, i, best_v, best_i)) {
      best_v = v;
      best_i = i;
    }
  }
  __shared__ float warp_v[kThreads / 32];
  __shared__ int warp_i[kThreads / 32];
  if (threadIdx.x % 32 == 0) {
    warp_v[threadIdx.x / 32] = best_v;
    warp_i[threadIdx.x / 32] = best_i;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int w = 1; w < kThreads / 32; ++w)
      if (better(warp_v[w], warp_i[w], best_v, best_i)) {
        best_v = warp_v[w];
        best_i = warp_i[w];
      }
    // All values -inf or NaN: report index 0 rather than an out-of-range id.
    *out_index = best_i < count ? best_i : 0;
  }
}

}  // namespace

void argmax(const float* values, int count, int32_t* out_index, cudaStream_t stream) {
  if (count <= 0) throw InternalError("argmax of an empty vector");
  argmax_kernel<<<1, kThreads, 0, stream>>>(values, count, out_index);
  CAKE_CUDA_LAUNCH(cat("argmax over ", count, " values"));
}

}  // namespace cake::cuda
