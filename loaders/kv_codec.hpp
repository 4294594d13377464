// KV codecs: how a chunk payload (kernels/kv_cache.hpp layout) is encoded in a store, and the CPU
// encoder and decoder (the reference; loaders/kv_codec_gpu.hpp decodes on the GPU, bit-exactly
// the same). Encoding happens at `prepare`, decoding in the load lane once a chunk's bytes are
// resident; the store's checksums cover the ENCODED bytes.
//
// Codecs (the run's `--codec` values):
//   none   the raw payload (bit-exact with compute).
//   int8   symmetric 8-bit codes, one fp16 scale per group of 64 values along head_dim of one
//          (token, head) row: per token, per head, group-wise.
//   int4   the same at 4 bits (codes -7..7, two per byte), groups of 32.
//   cachegen  CacheGen-style: int8 anchor tokens, deltas at per-layer levels, rANS in GPU-parallel
//          sub-streams (kv_codec_cachegen.hpp); variable size per chunk.
// Why per (token, head) groups along head_dim: a chunk is the load grain and must decode alone, so
// a scale may not span chunks; rows of one token and head are what attention reads together, and
// a group of 32-64 values bounds the damage of an outlier channel (K after RoPE has a few large
// channels) to its group while the fp16 scale costs 2 bytes per group: int8 66 bytes per 64 values
// (1.94x smaller than bf16), int4 18 bytes per 32 values (3.56x). int4 takes the smaller group
// because 15 levels lose more to one outlier than 255 do. Scales are fp16, not bf16: 10 mantissa
// bits instead of 7, and KV values stay far inside fp16's range (a scale is amax/127 or amax/7).
// A head_dim the group does not divide gets the group halved until it does (96: 32; the group is
// recorded in the store).
//
// Encoded chunk layout (int8/int4): the chunk's 2*layers segments (K_0, V_0, K_1, ...) in order,
// each `segment_stride` bytes:
//   codes  [tokens][kv_heads][head_dim] int8 (int4: two per byte, even element in the low nibble),
//          padded to 16 bytes;
//   scales [tokens][kv_heads][head_dim / group] fp16 little-endian, padded to 16 bytes.
// Encoding: scale = amax / qmax of the group rounded UP to fp16 (qmax 127 or 7), code =
// round-to-nearest(x / scale), so no value is clipped and each is within half a step.
// A value decodes as float(code) * float(scale), rounded once to the cache's dtype (bf16:
// round-to-nearest-even), which the GPU decoder reproduces exactly.
//
// The store records the codec and its parameters in its codec field
// ("int8;group=64;scale=f16"), which is part of the store key and its file name: stores of
// different codecs never collide, and a store is never decoded with parameters it was not
// written with.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "kernels/kv_cache.hpp"

namespace cake {

enum class CodecKind : uint8_t { none = 0, int8 = 1, int4 = 2, cachegen = 3 };

// "none", "int8", "int4": the --codec values.
const char* codec_kind_name(CodecKind kind);
// UsageError naming the accepted values for anything else.
CodecKind parse_codec_kind(std::string_view text);
// Every codec kind this build has, in --codec order.
const std::vector<CodecKind>& codec_kinds();

// The shape of one chunk: what an encoder and decoder must agree on besides the codec.
struct ChunkShape {
  int layers = 0;
  int kv_heads = 0;
  int head_dim = 0;
  int64_t tokens = 0;
  int segments() const { return 2 * layers; }
  uint64_t values_per_segment() const {
    return static_cast<uint64_t>(tokens) * static_cast<uint64_t>(kv_heads) * static_cast<uint64_t>(head_dim);
  }
};

struct CodecSpec {
  CodecKind kind = CodecKind::none;
  int group = 0;  // values per scale along head_dim (0 for none; cachegen: of its int8 anchors)

  // The codec for a model with this head_dim: the kind's group, halved until it divides head_dim.
  // UsageError when head_dim cannot be grouped (not a multiple of 8, or of the group).
  static CodecSpec for_model(CodecKind kind, int head_dim);
  // The store's codec field: "none" or "int8;group=64;scale=f16".
  std::string store_name() const;
  // Parses a store's codec field; Error naming what is wrong (unknown codec, bad parameter).
  static CodecSpec parse_store_name(std::string_view name);

  bool lossless() const { return kind == CodecKind::none; }
  // Every chunk of a given shape encodes to the same size (not cachegen, whose size depends on the data).
  bool fixed_size() const { return kind != CodecKind::cachegen; }
  // The fewest bytes a chunk of `shape` can take (fixed-size codecs: encoded_bytes).
  uint64_t min_encoded_bytes(const ChunkShape& shape, DType raw_dtype) const;
  int bits() const { return kind == CodecKind::int8 ? 8 : kind == CodecKind::int4 ? 4 : 0; }
  // Bytes of one encoded segment and chunk (int8/int4; none: the raw bytes for `raw_dtype`;
  // cachegen: InternalError, see min_encoded_bytes).
  uint64_t codes_bytes(const ChunkShape& shape) const;
  uint64_t scales_bytes(const ChunkShape& shape) const;
  uint64_t segment_stride(const ChunkShape& shape) const { return codes_bytes(shape) + scales_bytes(shape); }
  uint64_t encoded_bytes(const ChunkShape& shape, DType raw_dtype) const;
};

// Encodes a raw chunk payload (`raw_dtype` values, kernels/kv_cache.hpp layout) into `out`
// (resized to spec.encoded_bytes). `threads` > 1 splits the segments among that many threads.
void encode_chunk(const CodecSpec& spec, const ChunkShape& shape, DType raw_dtype, std::span<const std::byte> raw,
                  std::vector<std::byte>& out, int threads = 1);

// Decodes an encoded chunk into `segment_dst[s]` (where segment s's first token goes, host
// memory), values of `out_dtype`. Error when the encoded size is not the codec's.
void decode_chunk_cpu(const CodecSpec& spec, const ChunkShape& shape, std::span<const std::byte> encoded,
                      std::span<std::byte* const> segment_dst, DType out_dtype);

// Exact conversions the encoder and both decoders share.
float half_bits_to_float(uint16_t h);
uint16_t float_to_half_bits(float f);             // round to nearest even; saturates to +-65504
uint16_t float_to_bf16_bits(float f);             // round to nearest even
inline float bf16_bits_to_float(uint16_t b) {
  const uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  __builtin_memcpy(&f, &u, 4);
  return f;
}
// The smallest fp16 value >= wanted (saturating at 65504): a group scale rounded up, so that
// |x| / scale <= qmax and no value is clipped.
inline uint16_t half_bits_at_least(float wanted) {
  uint16_t bits = float_to_half_bits(wanted);
  if (half_bits_to_float(bits) < wanted && bits < 0x7BFF) ++bits;
  return bits;
}

// Value i of a KV payload of `dtype` (f32 or bf16) as a float, and back (bf16 rounded to nearest
// even). Unaligned reads: payload pointers carry no alignment promise.
inline float load_kv_value(const std::byte* p, DType dtype, uint64_t i) {
  if (dtype == DType::f32) {
    float f;
    __builtin_memcpy(&f, p + 4 * i, 4);
    return f;
  }
  uint16_t b;
  __builtin_memcpy(&b, p + 2 * i, 2);
  return bf16_bits_to_float(b);
}
inline void store_kv_value(std::byte* p, DType dtype, uint64_t i, float v) {
  if (dtype == DType::f32) {
    __builtin_memcpy(p + 4 * i, &v, 4);
    return;
  }
  const uint16_t b = float_to_bf16_bits(v);
  __builtin_memcpy(p + 2 * i, &b, 2);
}
// Encoded sections of a chunk start on 16-byte boundaries (the codecs' layouts).
inline uint64_t align16(uint64_t v) { return (v + 15) / 16 * 16; }

}  // namespace cake
