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
#include "loaders/kv_codec_kernels.cuh"

namespace cake::cachegen {
constexpr int kThreads = 128;

void decode_gpu(const CodecSpec& spec, const ChunkShape& shape, const std::byte* encoded, uint64_t encoded_bytes,
                std::byte* const* segment_dst, cudaStream_t stream, const std::string& what) {
  codec_kernels::SegmentTargets targets{};
  for (int s = 0; s < shape.segments() && s < codec_kernels::kMaxSegments; ++s)
    targets.dst[s] = reinterpret_cast<__nv_bfloat16*>(segment_dst[s]);
  const Layout l = layout(spec, shape);
  if (encoded_bytes < l.streams_offset)
    throw Error(cat(what, ": cachegen chunk of ", encoded_bytes, " bytes, shorter than its fixed sections (", l.streams_offset, ")"));
  if (spec.group % kBlockDims != 0 && kBlockDims % spec.group != 0)
    throw InternalError(cat(what, ": anchor group ", spec.group, " and block ", kBlockDims, " do not nest"));
  if (spec.group < kBlockDims)
    throw InternalError(cat(what, ": the GPU decoder takes anchor groups of at least ", kBlockDims, " values"));
  codec_kernels::CachegenParams p{shape.layers,
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
  codec_kernels::cachegen_decode_kernel<<<grid, kThreads, 0, stream>>>(reinterpret_cast<const uint8_t*>(encoded), targets, p);
  CAKE_CUDA(cudaGetLastError(), cat(what, ": launching the cachegen decode kernel"));
}

}  // namespace cake::cachegen
