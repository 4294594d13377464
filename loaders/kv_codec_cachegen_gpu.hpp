// The CacheGen-style codec's GPU decoder (kv_codec_cachegen_gpu.cu); called by decode_chunk_gpu,
// which has checked the targets (count, alignment).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "loaders/kv_codec.hpp"

namespace cake::cachegen {

// `segment_dst`: shape.segments() device addresses, each segment's first token in the bf16 cache.
void decode_gpu(const CodecSpec& spec, const ChunkShape& shape, const std::byte* encoded, uint64_t encoded_bytes,
                std::byte* const* segment_dst, cudaStream_t stream, const std::string& what);

}  // namespace cake::cachegen
