// The CPU encoder and decoder of the KV codecs (format in kv_codec.hpp).
#include "loaders/kv_codec.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <thread>

#include "common/error.hpp"
#include "loaders/kv_codec_cachegen.hpp"

namespace cake {
namespace {

constexpr int kInt8Group = 64;
constexpr int kInt4Group = 32;

int qmax_of(CodecKind kind) { return kind == CodecKind::int8 ? 127 : 7; }

// One segment: `raw` holds values_per_segment values of raw_dtype; `out` segment_stride bytes.
void encode_segment(const CodecSpec& spec, const ChunkShape& shape, DType raw_dtype, const std::byte* raw,
                    std::byte* out) {
  const uint64_t values = shape.values_per_segment();
  const uint64_t groups = values / static_cast<uint64_t>(spec.group);
  std::byte* codes = out;
  std::byte* scales = out + spec.codes_bytes(shape);
  std::memset(out, 0, spec.segment_stride(shape));  // padding included: encoded bytes are deterministic
  const int qmax = qmax_of(spec.kind);
  for (uint64_t g = 0; g < groups; ++g) {
    const uint64_t first = g * static_cast<uint64_t>(spec.group);
    float amax = 0;
    for (int j = 0; j < spec.group; ++j) amax = std::max(amax, std::fabs(load_kv_value(raw, raw_dtype, first + j)));
    // The scale is rounded UP to an fp16 value, so |x| / scale <= qmax: no value is clipped, and
    // every error is at most half a step, also when a tiny group's scale is an fp16 subnormal.
    const float wanted = amax / static_cast<float>(qmax);
    const uint16_t scale_bits = half_bits_at_least(wanted);
    std::memcpy(scales + 2 * g, &scale_bits, 2);
    const float scale = half_bits_to_float(scale_bits);
    for (int j = 0; j < spec.group; ++j) {
      int q = 0;
      if (scale > 0) {
        const float x = load_kv_value(raw, raw_dtype, first + j) / scale;
        q = static_cast<int>(std::clamp(std::nearbyint(x), static_cast<float>(-qmax), static_cast<float>(qmax)));
      }
      const uint64_t i = first + static_cast<uint64_t>(j);
      if (spec.kind == CodecKind::int8) {
        codes[i] = static_cast<std::byte>(static_cast<int8_t>(q));
      } else {
        const auto nibble = static_cast<uint8_t>(q & 0xF);
        codes[i / 2] |= static_cast<std::byte>(i % 2 == 0 ? nibble : nibble << 4);
      }
    }
  }
}

void decode_segment(const CodecSpec& spec, const ChunkShape& shape, const std::byte* in, std::byte* dst,
                    DType out_dtype) {
  const uint64_t values = shape.values_per_segment();
  const auto* codes = reinterpret_cast<const uint8_t*>(in);
  const std::byte* scales = in + spec.codes_bytes(shape);
  for (uint64_t i = 0; i < values; ++i) {
    uint16_t scale_bits;
    std::memcpy(&scale_bits, scales + 2 * (i / static_cast<uint64_t>(spec.group)), 2);
    int q;
    if (spec.kind == CodecKind::int8) {
      q = static_cast<int8_t>(codes[i]);
    } else {
      const int nibble = (codes[i / 2] >> (i % 2 == 0 ? 0 : 4)) & 0xF;
      q = nibble >= 8 ? nibble - 16 : nibble;
    }
    store_kv_value(dst, out_dtype, i, static_cast<float>(q) * half_bits_to_float(scale_bits));
  }
}

}  // namespace

const char* codec_kind_name(CodecKind kind) {
  switch (kind) {
    case CodecKind::none: return "none";
    case CodecKind::int8: return "int8";
    case CodecKind::int4: return "int4";
    case CodecKind::cachegen: return "cachegen";
  }
  return "?";
}

const std::vector<CodecKind>& codec_kinds() {
  static const std::vector<CodecKind> kinds{CodecKind::none, CodecKind::int8, CodecKind::int4, CodecKind::cachegen};
  return kinds;
}

CodecKind parse_codec_kind(std::string_view text) {
  for (CodecKind k : codec_kinds())
    if (text == codec_kind_name(k)) return k;
  std::string accepted;
  for (CodecKind k : codec_kinds()) accepted += cat(accepted.empty() ? "" : ", ", codec_kind_name(k));
  throw UsageError(cat("invalid --codec '", text, "': accepted: ", accepted));
}

CodecSpec CodecSpec::for_model(CodecKind kind, int head_dim) {
  CodecSpec s;
  s.kind = kind;
  if (kind == CodecKind::none) return s;
  // The kind's group, halved until it divides head_dim (96 -> 32), never below 8.
  s.group = kind == CodecKind::int4 ? kInt4Group : kInt8Group;
  while (s.group > 8 && head_dim % s.group != 0) s.group /= 2;
  if (head_dim <= 0 || head_dim % 8 != 0 || head_dim % s.group != 0)
    throw UsageError(cat("codec ", codec_kind_name(kind), " needs a head_dim that is a multiple of 8 and of its group (",
                         s.group, "); this model's is ", head_dim));
  if (kind == CodecKind::cachegen && head_dim % cachegen::kBlockDims != 0)
    throw UsageError(cat("codec cachegen needs a head_dim that is a multiple of ", cachegen::kBlockDims, "; this model's is ",
                         head_dim));
  return s;
}

namespace {
std::string cachegen_name(int group) {
  // At most 64 bytes (the store's codec field): "cachegen;anchor=16,int8,g64;levels=7,5,3;block=32;rans=12".
  return cat("cachegen;anchor=", cachegen::kTokensPerAnchor, ",int8,g", group, ";levels=7,5,3;block=", cachegen::kBlockDims,
             ";rans=", cachegen::kProbBits);
}
}  // namespace

std::string CodecSpec::store_name() const {
  if (kind == CodecKind::none) return "none";
  if (kind == CodecKind::cachegen) return cachegen_name(group);
  return cat(codec_kind_name(kind), ";group=", group, ";scale=f16");
}

CodecSpec CodecSpec::parse_store_name(std::string_view name) {
  if (name == "none") return CodecSpec{};
  if (name.substr(0, 9) == "cachegen;") {
    // This build writes one parameter set; the anchors' group is the only variable (by head_dim).
    for (int group : {64, 32, 16, 8})
      if (name == cachegen_name(group)) return CodecSpec{CodecKind::cachegen, group};
    throw Error(cat("unknown codec '", name, "' (this build decodes cachegen only as ", cachegen_name(64), ")"));
  }
  const size_t semi = name.find(';');
  const std::string_view kind_text = name.substr(0, semi);
  CodecSpec s;
  bool known = false;
  for (CodecKind k : codec_kinds())
    if (kind_text == codec_kind_name(k) && k != CodecKind::none && k != CodecKind::cachegen) {
      s.kind = k;
      known = true;
    }
  if (!known || semi == std::string_view::npos)
    throw Error(cat("unknown codec '", name, "' (this build decodes none, int8;group=G;scale=f16, int4;group=G;scale=f16 and cachegen)"));
  const std::string_view params = name.substr(semi + 1);
  const std::string_view prefix = "group=";
  const std::string_view suffix = ";scale=f16";
  if (params.substr(0, prefix.size()) != prefix || params.size() <= prefix.size() + suffix.size() ||
      params.substr(params.size() - suffix.size()) != suffix)
    throw Error(cat("codec '", name, "': parameters are not 'group=G;scale=f16'"));
  const std::string_view digits = params.substr(prefix.size(), params.size() - prefix.size() - suffix.size());
  int group = 0;
  for (char c : digits) {
    if (c < '0' || c > '9' || group > 1 << 16) throw Error(cat("codec '", name, "': group is not a number up to 65536"));
    group = group * 10 + (c - '0');
  }
  if (group < 8 || group % 8 != 0) throw Error(cat("codec '", name, "': group ", group, " is not a multiple of 8"));
  s.group = group;
  return s;
}

uint64_t CodecSpec::min_encoded_bytes(const ChunkShape& shape, DType raw_dtype) const {
  if (kind == CodecKind::cachegen) return cachegen::layout(*this, shape).streams_offset;
  return encoded_bytes(shape, raw_dtype);
}

uint64_t CodecSpec::codes_bytes(const ChunkShape& shape) const {
  return align16(shape.values_per_segment() * static_cast<uint64_t>(bits()) / 8);
}

uint64_t CodecSpec::scales_bytes(const ChunkShape& shape) const {
  if (group <= 0) return 0;
  return align16(shape.values_per_segment() / static_cast<uint64_t>(group) * 2);
}

uint64_t CodecSpec::encoded_bytes(const ChunkShape& shape, DType raw_dtype) const {
  if (kind == CodecKind::none) return static_cast<uint64_t>(shape.segments()) * shape.values_per_segment() * dtype_bytes(raw_dtype);
  if (kind == CodecKind::cachegen) throw InternalError("cachegen chunks have no fixed encoded size");
  return static_cast<uint64_t>(shape.segments()) * segment_stride(shape);
}

void encode_chunk(const CodecSpec& spec, const ChunkShape& shape, DType raw_dtype, std::span<const std::byte> raw,
                  std::vector<std::byte>& out, int threads) {
  const uint64_t raw_segment = shape.values_per_segment() * dtype_bytes(raw_dtype);
  if (raw.size() != raw_segment * static_cast<uint64_t>(shape.segments()))
    throw InternalError(cat("encoding a chunk: ", raw.size(), " raw bytes, its shape takes ", raw_segment * shape.segments()));
  if (spec.kind == CodecKind::cachegen) {
    cachegen::encode(spec, shape, raw_dtype, raw, out, threads);
    return;
  }
  out.resize(spec.encoded_bytes(shape, raw_dtype));
  if (spec.kind == CodecKind::none) {
    std::memcpy(out.data(), raw.data(), raw.size());
    return;
  }
  if (shape.head_dim % spec.group != 0)
    throw InternalError(cat("encoding a chunk: head_dim ", shape.head_dim, " is not a multiple of the group ", spec.group));
  const uint64_t stride = spec.segment_stride(shape);
  auto work = [&](int first, int step) {
    for (int s = first; s < shape.segments(); s += step)
      encode_segment(spec, shape, raw_dtype, raw.data() + raw_segment * s, out.data() + stride * s);
  };
  const int n = std::clamp(threads, 1, shape.segments());
  if (n == 1) {
    work(0, 1);
    return;
  }
  std::vector<std::thread> pool;
  for (int t = 0; t < n; ++t) pool.emplace_back(work, t, n);
  for (std::thread& t : pool) t.join();
}

void decode_chunk_cpu(const CodecSpec& spec, const ChunkShape& shape, std::span<const std::byte> encoded,
                      std::span<std::byte* const> segment_dst, DType out_dtype) {
  if (segment_dst.size() != static_cast<size_t>(shape.segments()))
    throw InternalError(cat("decoding a chunk: ", segment_dst.size(), " segment targets for ", shape.segments(), " segments"));
  if (spec.kind == CodecKind::none) {
    const uint64_t seg = shape.values_per_segment() * dtype_bytes(out_dtype);
    if (encoded.size() != seg * static_cast<uint64_t>(shape.segments()))
      throw Error(cat("decoding a chunk: ", encoded.size(), " bytes, codec none takes ", seg * shape.segments()));
    for (int s = 0; s < shape.segments(); ++s) std::memcpy(segment_dst[s], encoded.data() + seg * s, seg);
    return;
  }
  if (spec.kind == CodecKind::cachegen) {
    cachegen::decode_cpu(spec, shape, encoded, segment_dst, out_dtype);
    return;
  }
  const uint64_t stride = spec.segment_stride(shape);
  if (encoded.size() != stride * static_cast<uint64_t>(shape.segments()))
    throw Error(cat("decoding a chunk: ", encoded.size(), " encoded bytes, codec ", spec.store_name(), " takes ",
                    stride * shape.segments(), " for ", shape.tokens, " tokens"));
  for (int s = 0; s < shape.segments(); ++s)
    decode_segment(spec, shape, encoded.data() + stride * s, segment_dst[s], out_dtype);
}

float half_bits_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t exp = (h >> 10) & 0x1F;
  const uint32_t mant = h & 0x3FF;
  uint32_t u;
  if (exp == 0) {
    if (mant == 0) {
      u = sign;
    } else {  // subnormal: value = mant * 2^-24, exact in float
      const float f = static_cast<float>(mant) * 0x1p-24f;
      std::memcpy(&u, &f, 4);
      u |= sign;
    }
  } else if (exp == 31) {
    u = sign | 0x7F800000u | (mant << 13);
  } else {
    u = sign | ((exp + 112) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

uint16_t float_to_half_bits(float f) {
  // Saturating: a scale never becomes infinite (values past 65504*qmax clamp to the largest code).
  const float a = std::fabs(f);
  const uint16_t sign = std::signbit(f) ? 0x8000 : 0;
  if (std::isnan(f)) return 0x7E00;
  if (a >= 65504.0f) return sign | 0x7BFF;
  if (a < 0x1p-14f) {  // subnormal half (or zero): multiples of 2^-24, round to nearest even
    const float m = std::nearbyint(a * 0x1p24f);
    return sign | static_cast<uint16_t>(m);  // m <= 1024: 1024 is the smallest normal, encoded the same way
  }
  uint32_t u;
  std::memcpy(&u, &a, 4);
  const uint32_t exp = (u >> 23) - 112;  // rebias 127 -> 15
  uint32_t mant = u & 0x7FFFFF;
  uint32_t h = (exp << 10) | (mant >> 13);
  const uint32_t rest = mant & 0x1FFF;
  if (rest > 0x1000 || (rest == 0x1000 && (h & 1))) ++h;  // may carry into the exponent: still correct
  if (h >= 0x7C00) h = 0x7BFF;
  return sign | static_cast<uint16_t>(h);
}

uint16_t float_to_bf16_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if (std::isnan(f)) return static_cast<uint16_t>((u >> 16) | 0x40);
  u += 0x7FFF + ((u >> 16) & 1);
  return static_cast<uint16_t>(u >> 16);
}

}  // namespace cake
