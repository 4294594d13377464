// The codec decode kernels, apart from their launches so that two compilers can build them: nvcc
// (kv_codec_gpu.cu, kv_codec_cachegen_gpu.cu, after <cuda_bf16.h>/<cuda_fp16.h>) and, in CI without
// a GPU, the host compiler under tests/loaders/emulated_cuda.hpp, which runs each CUDA thread as a
// host thread so the kernels' indexing and arithmetic are held against the CPU decoder bit for bit
// on every CI run (test_kv_codec_emulated.cpp). Include the CUDA headers (or the emulation) and
// kv_codec_cachegen.hpp first; this header includes nothing so that either can come before it.
#pragma once

#if defined(__CUDACC__)
#define CAKE_UNROLL _Pragma("unroll")
#else
#define CAKE_UNROLL
#endif

namespace cake::codec_kernels {
// Internal linkage: each .cu that launches a kernel has its own copy (the header is in two).
namespace {

// Where each segment's first token goes in the bf16 cache (kernel argument, by value).
inline constexpr int kMaxSegments = 256;
struct SegmentTargets {
  __nv_bfloat16* dst[kMaxSegments];
};

// ---- int8 / int4 ----

template <int Bits>
__global__ void int_decode_kernel(const uint8_t* __restrict__ encoded, SegmentTargets targets, uint32_t segments,
                                  uint32_t units_per_segment, uint32_t units_per_group, uint64_t segment_stride,
                                  uint64_t codes_bytes) {
  const uint64_t total = static_cast<uint64_t>(segments) * units_per_segment;
  for (uint64_t u = blockIdx.x * static_cast<uint64_t>(blockDim.x) + threadIdx.x; u < total;
       u += static_cast<uint64_t>(gridDim.x) * blockDim.x) {
    const uint32_t s = static_cast<uint32_t>(u / units_per_segment);
    const uint32_t j = static_cast<uint32_t>(u - static_cast<uint64_t>(s) * units_per_segment);
    const uint8_t* seg = encoded + segment_stride * s;
    const __half scale_h = reinterpret_cast<const __half*>(seg + codes_bytes)[j / units_per_group];
    const float scale = __half2float(scale_h);
    int q[8];
    if constexpr (Bits == 8) {
      const uint2 raw = reinterpret_cast<const uint2*>(seg)[j];
CAKE_UNROLL
      for (int i = 0; i < 4; ++i) {
        q[i] = static_cast<int8_t>((raw.x >> (8 * i)) & 0xFF);
        q[4 + i] = static_cast<int8_t>((raw.y >> (8 * i)) & 0xFF);
      }
    } else {
      const uint32_t raw = reinterpret_cast<const uint32_t*>(seg)[j];
CAKE_UNROLL
      for (int i = 0; i < 8; ++i) {
        const int nibble = static_cast<int>((raw >> (4 * i)) & 0xF);
        q[i] = nibble >= 8 ? nibble - 16 : nibble;
      }
    }
    __align__(16) __nv_bfloat16 out[8];
CAKE_UNROLL
    for (int i = 0; i < 8; ++i) out[i] = __float2bfloat16_rn(__fmul_rn(static_cast<float>(q[i]), scale));
    reinterpret_cast<uint4*>(targets.dst[s])[j] = *reinterpret_cast<const uint4*>(out);
  }
}

// ---- cachegen ----
using cachegen::kBlockDims;
using cachegen::kProbBits;
using cachegen::kProbScale;
using cachegen::kRansLow;
using cachegen::kTableEntries;
using cachegen::kTokensPerAnchor;

struct CachegenParams {
  int layers, heads, head_dim, tokens, groups, blocks, anchor_group;
  uint64_t anchor_segment_stride, anchor_codes_bytes, scales_offset, tables_offset, offsets_offset, streams_offset;
  uint64_t stream_bytes;
};

__global__ void cachegen_decode_kernel(const uint8_t* __restrict__ enc, SegmentTargets targets, CachegenParams p) {
  __shared__ uint8_t lut[kProbScale];
  __shared__ uint32_t freq[kTableEntries], cum[kTableEntries + 1];
  const int s = blockIdx.y;
  if (threadIdx.x < kTableEntries) {
    const uint8_t* t = enc + p.tables_offset + (static_cast<uint64_t>(s) * kTableEntries + threadIdx.x) * 2;
    freq[threadIdx.x] = static_cast<uint32_t>(t[0]) | (static_cast<uint32_t>(t[1]) << 8);
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    uint32_t c = 0;
    for (int i = 0; i < kTableEntries; ++i) {
      cum[i] = c;
      c += freq[i];
    }
    cum[kTableEntries] = c;
  }
  __syncthreads();
  for (uint32_t slot = threadIdx.x; slot < kProbScale; slot += blockDim.x) {
    int sym = 0;
    while (sym + 1 < kTableEntries && cum[sym + 1] <= slot) ++sym;
    lut[slot] = static_cast<uint8_t>(sym);
  }
  __syncthreads();
  const bool table_ok = cum[kTableEntries] == kProbScale;

  const int per_segment = p.heads * p.groups * p.blocks;
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= per_segment) return;
  const int h = i / (p.groups * p.blocks);
  const int g = (i / p.blocks) % p.groups;
  const int b = i % p.blocks;
  const int qmax = s / 2 * 3 < p.layers ? 7 : s / 2 * 3 < 2 * p.layers ? 5 : 3;
  const uint64_t row = static_cast<uint64_t>(p.heads) * p.head_dim;
  const uint64_t col = static_cast<uint64_t>(h) * p.head_dim + static_cast<uint64_t>(b) * kBlockDims;
  __nv_bfloat16* dst = targets.dst[s];

  // The anchor row: decoded, kept in registers for the deltas, and written.
  const uint8_t* anchors = enc + p.anchor_segment_stride * s;
  const __half* anchor_scales = reinterpret_cast<const __half*>(anchors + p.anchor_codes_bytes);
  float hat[kBlockDims];
  const uint64_t a0 = static_cast<uint64_t>(g) * row + col;
  const float anchor_scale = __half2float(anchor_scales[a0 / p.anchor_group]);  // a block never spans an anchor group
  const int64_t t0 = static_cast<int64_t>(g) * kTokensPerAnchor;
  {
    __align__(16) __nv_bfloat16 out[kBlockDims];
CAKE_UNROLL
    for (int j = 0; j < kBlockDims; ++j) {
      hat[j] = __fmul_rn(static_cast<float>(static_cast<int8_t>(anchors[a0 + j])), anchor_scale);
      out[j] = __float2bfloat16_rn(hat[j]);
    }
    uint4* o = reinterpret_cast<uint4*>(dst + static_cast<uint64_t>(t0) * row + col);
CAKE_UNROLL
    for (int k = 0; k < kBlockDims / 8; ++k) o[k] = reinterpret_cast<const uint4*>(out)[k];
  }
  const int64_t t_end = min(t0 + kTokensPerAnchor, static_cast<int64_t>(p.tokens));
  if (t_end - t0 <= 1 || !table_ok) return;

  const uint64_t k = ((static_cast<uint64_t>(s) * p.heads + h) * p.groups + g) * p.blocks + b;
  const uint32_t* offsets = reinterpret_cast<const uint32_t*>(enc + p.offsets_offset);
  const uint64_t begin = min(static_cast<uint64_t>(offsets[k]), p.stream_bytes);
  const uint64_t end = max(begin, min(static_cast<uint64_t>(offsets[k + 1]), p.stream_bytes));
  const uint8_t* in = enc + p.streams_offset + begin;
  const uint8_t* in_end = enc + p.streams_offset + end;
  uint32_t x = 0;
  for (int n = 0; n < 4; ++n) x = (x << 8) | (in < in_end ? *in++ : 0u);
  const __half* delta_scales = reinterpret_cast<const __half*>(enc + p.scales_offset);
  for (int64_t t = t0 + 1; t < t_end; ++t) {
    const float scale =
        __half2float(delta_scales[((static_cast<uint64_t>(s) * p.tokens + t) * p.heads + h) * p.blocks + b]);
    __align__(16) __nv_bfloat16 out[kBlockDims];
CAKE_UNROLL
    for (int j = 0; j < kBlockDims; ++j) {
      const uint32_t slot = x & (kProbScale - 1);
      const uint32_t sym = lut[slot];
      x = freq[sym] * (x >> kProbBits) + slot - cum[sym];
      while (x < kRansLow) x = (x << 8) | (in < in_end ? *in++ : 0u);
      const float q = static_cast<float>(static_cast<int>(sym) - qmax);
      out[j] = __float2bfloat16_rn(__fadd_rn(hat[j], __fmul_rn(q, scale)));
    }
    uint4* o = reinterpret_cast<uint4*>(dst + static_cast<uint64_t>(t) * row + col);
CAKE_UNROLL
    for (int n = 0; n < kBlockDims / 8; ++n) o[n] = reinterpret_cast<const uint4*>(out)[n];
  }
}

}  // namespace
}  // namespace cake::codec_kernels
