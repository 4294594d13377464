// The GPU decoder of the KV codecs (kv_codec.hpp): one kernel launch per chunk on the caller's
// stream (the load lane's copy stream), from the encoded chunk in device memory into the bf16 KV
// cache. Gives exactly the CPU decoder's bytes (tests/loaders/test_kv_codec_gpu.cpp). Only
// built with CUDA.
#pragma once

#include <cuda_runtime.h>

#include <span>

#include "loaders/kv_codec.hpp"

namespace cake {

// Most segments (2 * layers) one launch takes: their targets travel in the kernel's arguments.
inline constexpr int kMaxDecodeSegments = 256;

// `encoded`: device memory holding `encoded_bytes` bytes (int8/int4: spec.encoded_bytes(shape)),
// 16-byte aligned.
// `segment_dst[s]`: device address of segment s's first token in the bf16 cache, 16-byte aligned.
// int8, int4 and cachegen (none needs no decode). Throws cake::Error (with `what`) on a launch failure or
// a shape the kernel does not take.
void decode_chunk_gpu(const CodecSpec& spec, const ChunkShape& shape, const std::byte* encoded, uint64_t encoded_bytes,
                      std::span<std::byte* const> segment_dst, cudaStream_t stream, const std::string& what);

}  // namespace cake
