// The CacheGen-style codec ("cachegen"): delta against anchor tokens, per-layer quantization
// levels, rANS entropy coding with per-layer tables, in independent sub-streams the GPU decodes in
// parallel (one thread each). After CacheGen (Liu et al., SIGCOMM 2024), written from its paper's
// description, not its code.
//
// Per chunk and segment (one layer's K or V):
//   - anchors: every kTokensPerAnchor-th token of the chunk (0, 16, 32, ...) is coded like the int8
//     codec (codes + one fp16 scale per group along head_dim); anchor_hat = float(code) * float(scale).
//   - the other tokens are coded as deltas against their group's anchor_hat: per (token, head,
//     block of kBlockDims values) one fp16 scale = max|delta| / qmax rounded up, and symbols
//     q + qmax with q = round(delta / scale) in [-qmax, qmax]. qmax depends on the layer: 7 in the
//     first third of the layers, 5 in the second, 3 in the last (CacheGen keeps more precision in
//     shallow layers, whose errors the deeper ones amplify).
//   - the symbols are rANS-coded (32-bit state, byte renormalization, 12-bit probabilities) with
//     one frequency table per segment, i.e. per layer and K/V, built from the chunk's own symbols.
//   - sub-streams: one per (segment, head, anchor group, block of kBlockDims values), each its own
//     rANS state and bytes, so a GPU thread decodes one alone (and also writes its anchor row).
// A value decodes as bf16/f32 of (anchor_hat + float(q) * float(scale)), each operation rounded
// once in fp32, exactly the same on the CPU and the GPU.
//
// Encoded chunk layout (all little-endian):
//   [anchors]       2*layers int8-codec segments of the anchor tokens (kv_codec.hpp layout)
//   [delta scales]  fp16 [segment][token][head][head_dim / kBlockDims], padded to 16 bytes
//   [tables]        uint16 frequency [segment][16] (symbols 0..2*qmax; the rest 0), sum 4096 or all 0
//   [offsets]       uint32 [streams + 1]: byte offset of each sub-stream within [streams]
//   [streams]       the rANS bytes of every sub-stream, in stream order
// Stream k = ((segment * kv_heads + head) * anchor_groups + group) * blocks + block; its symbols
// run token by token (the group's non-anchor tokens), kBlockDims values each.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "kernels/kv_cache.hpp"

namespace cake {

struct ChunkShape;
struct CodecSpec;

namespace cachegen {

inline constexpr int kTokensPerAnchor = 16;
inline constexpr int kBlockDims = 32;
inline constexpr int kProbBits = 12;
inline constexpr uint32_t kProbScale = 1u << kProbBits;
inline constexpr uint32_t kRansLow = 1u << 23;  // state lower bound; byte-wise renormalization
inline constexpr int kTableEntries = 16;

// qmax of the deltas of `layer` out of `layers`.
inline int delta_qmax(int layer, int layers) { return layer * 3 < layers ? 7 : layer * 3 < 2 * layers ? 5 : 3; }

// The section sizes of an encoded chunk (everything but the stream bytes is fixed by the shape).
struct Layout {
  int anchors = 0;          // anchor tokens in the chunk
  int groups = 0;           // anchor groups (== anchors)
  int blocks = 0;           // head_dim / kBlockDims
  uint64_t streams = 0;
  uint64_t anchor_bytes = 0;       // all segments
  uint64_t anchor_segment_stride = 0;
  uint64_t anchor_codes_bytes = 0;  // of one segment
  uint64_t scales_offset = 0, scales_bytes = 0;
  uint64_t tables_offset = 0, tables_bytes = 0;
  uint64_t offsets_offset = 0, offsets_bytes = 0;
  uint64_t streams_offset = 0;     // where the stream bytes start
};
Layout layout(const CodecSpec& spec, const ChunkShape& shape);

void encode(const CodecSpec& spec, const ChunkShape& shape, DType raw_dtype, std::span<const std::byte> raw,
            std::vector<std::byte>& out, int threads);
// Throws cake::Error on a malformed chunk (sizes, offsets, tables); never reads out of bounds.
void decode_cpu(const CodecSpec& spec, const ChunkShape& shape, std::span<const std::byte> encoded,
                std::span<std::byte* const> segment_dst, DType out_dtype);

}  // namespace cachegen
}  // namespace cake
