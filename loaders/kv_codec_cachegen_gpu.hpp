// The CacheGen-style codec's GPU decoder (kv_codec_cachegen_gpu.cu); called by decode_chunk_gpu.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <string>

#include "loaders/kv_codec.hpp"

namespace cake {

inline constexpr int kMaxDecodeSegments = 256;

// Where each segment's first token goes in the bf16 cache (kernel argument, by value).
struct SegmentTargets {
  __nv_bfloat16* dst[kMaxDecodeSegments];
};

namespace cachegen {
void decode_gpu(const CodecSpec& spec, const ChunkShape& shape, const std::byte* encoded, uint64_t encoded_bytes,
                const SegmentTargets& targets, cudaStream_t stream, const std::string& what);
}  // namespace cachegen
}  // namespace cake
