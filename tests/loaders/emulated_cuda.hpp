// Just enough of CUDA to run loaders/kv_codec_kernels.cuh and loaders/crc32c_kernels.cuh on the host, for CI without a GPU: each
// CUDA thread of a block is a host thread, __syncthreads a std::barrier, blocks run one after the
// other (so a function-local `static` array is the block's shared memory). The fp16/bf16 and
// round-to-nearest intrinsics are the CPU decoder's exact conversions. It checks the kernels'
// indexing, sub-stream bookkeeping and arithmetic order; it cannot check nvcc's code generation or
// the real intrinsics, which the GPU tests (KvCodecGpu.*) do on a device.
// Include it first, in a translation unit that includes no CUDA header.
#pragma once

#include <algorithm>
#include <atomic>
#include <barrier>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

#include "loaders/kv_codec.hpp"

#define __global__
#define __device__
#define __host__
#define __restrict__
#define __shared__ static
#define __align__(n) alignas(n)

struct EmuDim3 {
  unsigned x = 1, y = 1, z = 1;
};
inline thread_local EmuDim3 threadIdx, blockIdx;
inline EmuDim3 blockDim, gridDim;
inline std::barrier<>* emu_block_barrier = nullptr;
inline void __syncthreads() { emu_block_barrier->arrive_and_wait(); }

struct __half {
  uint16_t bits;
};
struct __nv_bfloat16 {
  uint16_t bits;
};
inline float __half2float(__half h) { return cake::half_bits_to_float(h.bits); }
inline __nv_bfloat16 __float2bfloat16_rn(float f) { return {cake::float_to_bf16_bits(f)}; }
// volatile: one rounding each, never fused, as the device intrinsics promise.
inline float __fmul_rn(float a, float b) {
  volatile float r = a * b;
  return r;
}
inline float __fadd_rn(float a, float b) {
  volatile float r = a + b;
  return r;
}
struct uint2 {
  uint32_t x, y;
};
struct alignas(16) uint4 {
  uint32_t x, y, z, w;
};
// Shared or global memory alike: the block's threads are host threads.
inline uint32_t atomicXor(uint32_t* address, uint32_t value) { return std::atomic_ref<uint32_t>(*address).fetch_xor(value); }
using std::max;
using std::min;

// kernel() over grid x block threads, one block at a time.
template <typename Kernel>
void emulate_launch(EmuDim3 grid, EmuDim3 block, Kernel kernel) {
  gridDim = grid;
  blockDim = block;
  for (unsigned by = 0; by < grid.y; ++by)
    for (unsigned bx = 0; bx < grid.x; ++bx) {
      std::barrier<> barrier(static_cast<std::ptrdiff_t>(block.x));
      emu_block_barrier = &barrier;
      std::vector<std::thread> threads;
      for (unsigned tx = 0; tx < block.x; ++tx)
        threads.emplace_back([&, tx] {
          threadIdx = {tx, 0, 0};
          blockIdx = {bx, by, 0};
          kernel();
        });
      for (std::thread& t : threads) t.join();
    }
}
