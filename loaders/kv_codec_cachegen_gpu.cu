// The CacheGen-style codec's GPU decoder: one thread per sub-stream (segment, head, anchor group,
// block of 32 values), blocks of threads of one segment sharing its rANS table as a 4096-entry
// slot -> symbol lookup in shared memory. Arithmetic is the CPU decoder's (kv_codec_cachegen.cpp):
// anchor_hat = float(code) * float(scale); value = anchor_hat + float(q) * float(delta scale),
// each rounded once in fp32 (no contraction), then to bf16 (nearest even).
// A malformed chunk cannot make it read or write outside its buffers (offsets are clamped, reads
// past a stream's end give zeros); the store's checksum rejects such a chunk anyway.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cstdint>

#include "common/cuda_check.hpp"
#include "common/error.hpp"
#include "loaders/kv_codec_cachegen.hpp"
#include "loaders/kv_codec_cachegen_gpu.hpp"

namespace cake::cachegen {
namespace {

struct Params {
  int layers, heads, head_dim, tokens, groups, blocks, anchor_group;
  uint64_t anchor_segment_stride, anchor_codes_bytes, scales_offset, tables_offset, offsets_offset, streams_offset;
  uint64_t stream_bytes;
};

constexpr int kThreads = 128;

__global__ void decode_kernel(const uint8_t* __restrict__ enc, SegmentTargets targets, Params p) {
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
#pragma unroll
    for (int j = 0; j < kBlockDims; ++j) {
      hat[j] = __fmul_rn(static_cast<float>(static_cast<int8_t>(anchors[a0 + j])), anchor_scale);
      out[j] = __float2bfloat16_rn(hat[j]);
    }
    uint4* o = reinterpret_cast<uint4*>(dst + static_cast<uint64_t>(t0) * row + col);
#pragma unroll
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
#pragma unroll
    for (int j = 0; j < kBlockDims; ++j) {
      const uint32_t slot = x & (kProbScale - 1);
      const uint32_t sym = lut[slot];
      x = freq[sym] * (x >> kProbBits) + slot - cum[sym];
      while (x < kRansLow) x = (x << 8) | (in < in_end ? *in++ : 0u);
      const float q = static_cast<float>(static_cast<int>(sym) - qmax);
      out[j] = __float2bfloat16_rn(__fadd_rn(hat[j], __fmul_rn(q, scale)));
    }
    uint4* o = reinterpret_cast<uint4*>(dst + static_cast<uint64_t>(t) * row + col);
#pragma unroll
    for (int n = 0; n < kBlockDims / 8; ++n) o[n] = reinterpret_cast<const uint4*>(out)[n];
  }
}

}  // namespace

void decode_gpu(const CodecSpec& spec, const ChunkShape& shape, const std::byte* encoded, uint64_t encoded_bytes,
                const SegmentTargets& targets, cudaStream_t stream, const std::string& what) {
  const Layout l = layout(spec, shape);
  if (encoded_bytes < l.streams_offset)
    throw Error(cat(what, ": cachegen chunk of ", encoded_bytes, " bytes, shorter than its fixed sections (", l.streams_offset, ")"));
  if (spec.group % kBlockDims != 0 && kBlockDims % spec.group != 0)
    throw InternalError(cat(what, ": anchor group ", spec.group, " and block ", kBlockDims, " do not nest"));
  if (spec.group < kBlockDims)
    throw InternalError(cat(what, ": the GPU decoder takes anchor groups of at least ", kBlockDims, " values"));
  Params p{shape.layers,
           shape.kv_heads,
           shape.head_dim,
           static_cast<int>(shape.tokens),
           l.groups,
           l.blocks,
           spec.group,
           l.anchor_segment_stride,
           l.anchor_codes_bytes,
           l.scales_offset,
           l.tables_offset,
           l.offsets_offset,
           l.streams_offset,
           encoded_bytes - l.streams_offset};
  const int per_segment = shape.kv_heads * l.groups * l.blocks;
  const dim3 grid(static_cast<unsigned>((per_segment + kThreads - 1) / kThreads), static_cast<unsigned>(shape.segments()));
  decode_kernel<<<grid, kThreads, 0, stream>>>(reinterpret_cast<const uint8_t*>(encoded), targets, p);
  CAKE_CUDA(cudaGetLastError(), cat(what, ": launching the cachegen decode kernel"));
}

}  // namespace cake::cachegen
