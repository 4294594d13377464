// int8/int4 decode on the GPU: one thread per 8 consecutive values (one 16-byte bf16 store), all
// 8 sharing one scale (groups are multiples of 8). Arithmetic is the CPU decoder's:
// float(code) * float(fp16 scale), rounded once to bf16 (round-to-nearest-even), so the bytes match.
#include "loaders/kv_codec_gpu.hpp"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cstdint>

#include "common/cuda_check.hpp"
#include "common/error.hpp"
#include "loaders/kv_codec_cachegen.hpp"
#include "loaders/kv_codec_cachegen_gpu.hpp"
#include "loaders/kv_codec_kernels.cuh"

namespace cake {
using codec_kernels::int_decode_kernel;
using codec_kernels::SegmentTargets;
static_assert(kMaxDecodeSegments == codec_kernels::kMaxSegments);

void decode_chunk_gpu(const CodecSpec& spec, const ChunkShape& shape, const std::byte* encoded, uint64_t encoded_bytes,
                      std::span<std::byte* const> segment_dst, cudaStream_t stream, const std::string& what) {
  if (spec.kind != CodecKind::int8 && spec.kind != CodecKind::int4 && spec.kind != CodecKind::cachegen)
    throw InternalError(cat(what, ": the GPU decoder takes int8, int4 and cachegen, not ", spec.store_name()));
  if (shape.segments() > kMaxDecodeSegments || segment_dst.size() != static_cast<size_t>(shape.segments()))
    throw InternalError(cat(what, ": ", segment_dst.size(), " segment targets for ", shape.segments(),
                            " segments (at most ", kMaxDecodeSegments, ")"));
  if (reinterpret_cast<uintptr_t>(encoded) % 16 != 0) throw InternalError(cat(what, ": encoded bytes not 16-byte aligned"));
  SegmentTargets targets{};
  for (int s = 0; s < shape.segments(); ++s) {
    if (reinterpret_cast<uintptr_t>(segment_dst[s]) % 16 != 0)
      throw InternalError(cat(what, ": target of segment ", s, " is not 16-byte aligned"));
    targets.dst[s] = reinterpret_cast<__nv_bfloat16*>(segment_dst[s]);
  }
  if (spec.kind == CodecKind::cachegen) {
    cachegen::decode_gpu(spec, shape, encoded, encoded_bytes, segment_dst.data(), stream, what);
    return;
  }
  if (encoded_bytes != spec.encoded_bytes(shape, DType::bf16))
    throw InternalError(cat(what, ": ", encoded_bytes, " encoded bytes, the codec takes ", spec.encoded_bytes(shape, DType::bf16)));
  if (spec.group % 8 != 0 || shape.head_dim % spec.group != 0)
    throw InternalError(cat(what, ": group ", spec.group, " and head_dim ", shape.head_dim, " are not decodable"));
  const uint64_t units = shape.values_per_segment() / 8;
  if (units == 0 || units > 0xFFFFFFFFull) throw InternalError(cat(what, ": ", units, " decode units per segment"));
  const uint64_t total = units * static_cast<uint64_t>(shape.segments());
  constexpr int kThreads = 256;
  const auto blocks = static_cast<unsigned>(std::min<uint64_t>((total + kThreads - 1) / kThreads, 1u << 20));
  const auto* in = reinterpret_cast<const uint8_t*>(encoded);
  const auto segments = static_cast<uint32_t>(shape.segments());
  const auto units32 = static_cast<uint32_t>(units);
  const auto units_per_group = static_cast<uint32_t>(spec.group / 8);
  if (spec.kind == CodecKind::int8)
    int_decode_kernel<8><<<blocks, kThreads, 0, stream>>>(in, targets, segments, units32, units_per_group,
                                                      spec.segment_stride(shape), spec.codes_bytes(shape));
  else
    int_decode_kernel<4><<<blocks, kThreads, 0, stream>>>(in, targets, segments, units32, units_per_group,
                                                      spec.segment_stride(shape), spec.codes_bytes(shape));
  CAKE_CUDA(cudaGetLastError(), cat(what, ": launching the ", codec_kind_name(spec.kind), " decode kernel"));
}

}  // namespace cake
