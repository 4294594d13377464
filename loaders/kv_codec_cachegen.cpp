// The CacheGen-style codec's CPU encoder and decoder (format in kv_codec_cachegen.hpp).
#include "loaders/kv_codec_cachegen.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <thread>

#include "common/error.hpp"
#include "loaders/kv_codec.hpp"

namespace cake::cachegen {
namespace {

CodecSpec anchor_spec(const CodecSpec& spec) {
  CodecSpec a;
  a.kind = CodecKind::int8;
  a.group = spec.group;
  return a;
}

// Frequencies of `counts` scaled to sum kProbScale, every present symbol at least 1 (all zero
// when there is no symbol).
std::array<uint16_t, kTableEntries> normalize(const std::array<uint64_t, kTableEntries>& counts) {
  std::array<uint16_t, kTableEntries> f{};
  uint64_t total = 0;
  for (uint64_t c : counts) total += c;
  if (total == 0) return f;
  int64_t sum = 0;
  int largest = 0;
  for (int i = 0; i < kTableEntries; ++i) {
    if (counts[i] == 0) continue;
    const uint64_t scaled = counts[i] * kProbScale / total;
    f[i] = static_cast<uint16_t>(std::max<uint64_t>(1, scaled));
    sum += f[i];
    if (counts[i] > counts[largest]) largest = i;
  }
  // Give the rounding difference to (or take it from) the most frequent symbols.
  while (sum != kProbScale) {
    int best = -1;
    for (int i = 0; i < kTableEntries; ++i) {
      if (f[i] == 0) continue;
      if (sum > static_cast<int64_t>(kProbScale) && f[i] <= 1) continue;
      if (best < 0 || f[i] > f[best]) best = i;
    }
    if (sum < static_cast<int64_t>(kProbScale)) {
      const int64_t add = static_cast<int64_t>(kProbScale) - sum;
      f[largest] = static_cast<uint16_t>(f[largest] + add);
      sum += add;
    } else {
      const int64_t take = std::min<int64_t>(sum - static_cast<int64_t>(kProbScale), f[best] - 1);
      f[best] = static_cast<uint16_t>(f[best] - take);
      sum -= take;
    }
  }
  return f;
}

// rANS: symbols encoded in reverse, bytes emitted in reverse, so the decoder reads forward.
void rans_encode(const std::vector<uint8_t>& symbols, const std::array<uint16_t, kTableEntries>& freq,
                 const std::array<uint32_t, kTableEntries>& cum, std::vector<uint8_t>& out) {
  out.clear();
  if (symbols.empty()) return;
  uint32_t x = kRansLow;
  std::vector<uint8_t> rev;
  rev.reserve(symbols.size() / 2 + 8);
  for (size_t i = symbols.size(); i-- > 0;) {
    const uint32_t f = freq[symbols[i]];
    const uint32_t x_max = ((kRansLow >> kProbBits) << 8) * f;
    while (x >= x_max) {
      rev.push_back(static_cast<uint8_t>(x & 0xFF));
      x >>= 8;
    }
    x = ((x / f) << kProbBits) + (x % f) + cum[symbols[i]];
  }
  // The final state, read first by the decoder, most significant byte first.
  for (int b = 0; b < 4; ++b) rev.push_back(static_cast<uint8_t>(x >> (8 * b)));
  out.assign(rev.rbegin(), rev.rend());
}

struct SegmentOutput {
  std::array<uint16_t, kTableEntries> freq{};
  std::vector<std::vector<uint8_t>> streams;  // heads * groups * blocks
};

}  // namespace

Layout layout(const CodecSpec& spec, const ChunkShape& shape) {
  Layout l;
  l.anchors = static_cast<int>((shape.tokens + kTokensPerAnchor - 1) / kTokensPerAnchor);
  l.groups = l.anchors;
  l.blocks = shape.head_dim / kBlockDims;
  l.streams = static_cast<uint64_t>(shape.segments()) * shape.kv_heads * l.groups * l.blocks;
  const CodecSpec a = anchor_spec(spec);
  const ChunkShape anchor_shape{shape.layers, shape.kv_heads, shape.head_dim, l.anchors};
  l.anchor_codes_bytes = a.codes_bytes(anchor_shape);
  l.anchor_segment_stride = a.segment_stride(anchor_shape);
  l.anchor_bytes = a.encoded_bytes(anchor_shape, DType::bf16);
  l.scales_offset = l.anchor_bytes;
  l.scales_bytes = align16(static_cast<uint64_t>(shape.segments()) * shape.tokens * shape.kv_heads * l.blocks * 2);
  l.tables_offset = l.scales_offset + l.scales_bytes;
  l.tables_bytes = align16(static_cast<uint64_t>(shape.segments()) * kTableEntries * 2);
  l.offsets_offset = l.tables_offset + l.tables_bytes;
  l.offsets_bytes = align16((l.streams + 1) * 4);
  l.streams_offset = l.offsets_offset + l.offsets_bytes;
  return l;
}

void encode(const CodecSpec& spec, const ChunkShape& shape, DType raw_dtype, std::span<const std::byte> raw,
            std::vector<std::byte>& out, int threads) {
  if (shape.head_dim % kBlockDims != 0 || shape.head_dim % spec.group != 0)
    throw InternalError(cat("cachegen: head_dim ", shape.head_dim, " is not a multiple of ", kBlockDims, " and ", spec.group));
  const Layout l = layout(spec, shape);
  const int H = shape.kv_heads, D = shape.head_dim, S = shape.segments();
  const uint64_t raw_seg = shape.values_per_segment() * dtype_bytes(raw_dtype);
  const uint64_t row = static_cast<uint64_t>(H) * D;  // values per token

  // Anchors: the int8 codec on the anchor rows; anchor_hat is its exact f32 decode.
  const ChunkShape anchor_shape{shape.layers, H, D, l.anchors};
  std::vector<std::byte> anchor_raw(anchor_shape.values_per_segment() * dtype_bytes(raw_dtype) * S);
  const uint64_t anchor_raw_seg = anchor_shape.values_per_segment() * dtype_bytes(raw_dtype);
  const uint64_t row_bytes = row * dtype_bytes(raw_dtype);
  for (int s = 0; s < S; ++s)
    for (int a = 0; a < l.anchors; ++a)
      std::memcpy(anchor_raw.data() + anchor_raw_seg * s + row_bytes * a,
                  raw.data() + raw_seg * s + row_bytes * (static_cast<uint64_t>(a) * kTokensPerAnchor), row_bytes);
  std::vector<std::byte> anchors;
  encode_chunk(anchor_spec(spec), anchor_shape, raw_dtype, anchor_raw, anchors, threads);
  std::vector<float> anchor_hat(anchor_shape.values_per_segment() * S);
  {
    std::vector<std::byte*> targets;
    for (int s = 0; s < S; ++s)
      targets.push_back(reinterpret_cast<std::byte*>(anchor_hat.data() + anchor_shape.values_per_segment() * s));
    decode_chunk_cpu(anchor_spec(spec), anchor_shape, anchors, targets, DType::f32);
  }

  std::vector<uint16_t> scales(static_cast<size_t>(S) * shape.tokens * H * l.blocks, 0);
  std::vector<SegmentOutput> segs(static_cast<size_t>(S));
  auto work = [&](int first, int step) {
    std::vector<std::vector<uint8_t>> symbols(static_cast<size_t>(H) * l.groups * l.blocks);
    for (int s = first; s < S; s += step) {
      const int qmax = delta_qmax(s / 2, shape.layers);
      const std::byte* in = raw.data() + raw_seg * s;
      const float* hat = anchor_hat.data() + anchor_shape.values_per_segment() * s;
      std::array<uint64_t, kTableEntries> counts{};
      for (auto& v : symbols) v.clear();
      for (int64_t t = 0; t < shape.tokens; ++t) {
        if (t % kTokensPerAnchor == 0) continue;
        const int g = static_cast<int>(t / kTokensPerAnchor);
        for (int h = 0; h < H; ++h)
          for (int b = 0; b < l.blocks; ++b) {
            const uint64_t base = static_cast<uint64_t>(t) * row + static_cast<uint64_t>(h) * D + static_cast<uint64_t>(b) * kBlockDims;
            const uint64_t abase = static_cast<uint64_t>(g) * row + static_cast<uint64_t>(h) * D + static_cast<uint64_t>(b) * kBlockDims;
            float amax = 0;
            for (int j = 0; j < kBlockDims; ++j) amax = std::max(amax, std::fabs(load_kv_value(in, raw_dtype, base + j) - hat[abase + j]));
            const uint16_t scale_bits = half_bits_at_least(amax / static_cast<float>(qmax));
            scales[((static_cast<size_t>(s) * shape.tokens + t) * H + h) * l.blocks + b] = scale_bits;
            const float scale = half_bits_to_float(scale_bits);
            std::vector<uint8_t>& stream = symbols[(static_cast<size_t>(h) * l.groups + g) * l.blocks + b];
            for (int j = 0; j < kBlockDims; ++j) {
              int q = 0;
              if (scale > 0) {
                const float d = (load_kv_value(in, raw_dtype, base + j) - hat[abase + j]) / scale;
                q = static_cast<int>(std::clamp(std::nearbyint(d), static_cast<float>(-qmax), static_cast<float>(qmax)));
              }
              const auto sym = static_cast<uint8_t>(q + qmax);
              stream.push_back(sym);
              ++counts[sym];
            }
          }
      }
      SegmentOutput& o = segs[static_cast<size_t>(s)];
      o.freq = normalize(counts);
      std::array<uint32_t, kTableEntries> cum{};
      for (int i = 1; i < kTableEntries; ++i) cum[i] = cum[i - 1] + o.freq[i - 1];
      o.streams.resize(symbols.size());
      for (size_t k = 0; k < symbols.size(); ++k) rans_encode(symbols[k], o.freq, cum, o.streams[k]);
    }
  };
  const int n = std::clamp(threads, 1, S);
  if (n == 1) {
    work(0, 1);
  } else {
    std::vector<std::thread> pool;
    for (int t = 0; t < n; ++t) pool.emplace_back(work, t, n);
    for (std::thread& t : pool) t.join();
  }

  uint64_t stream_bytes = 0;
  for (const SegmentOutput& o : segs)
    for (const auto& st : o.streams) stream_bytes += st.size();
  out.assign(l.streams_offset + stream_bytes, std::byte{0});
  std::memcpy(out.data(), anchors.data(), anchors.size());
  std::memcpy(out.data() + l.scales_offset, scales.data(), scales.size() * 2);
  for (int s = 0; s < S; ++s)
    std::memcpy(out.data() + l.tables_offset + static_cast<uint64_t>(s) * kTableEntries * 2, segs[static_cast<size_t>(s)].freq.data(),
                kTableEntries * 2);
  uint64_t at = 0, k = 0;
  for (const SegmentOutput& o : segs)
    for (const auto& st : o.streams) {
      const auto off = static_cast<uint32_t>(at);
      std::memcpy(out.data() + l.offsets_offset + 4 * k, &off, 4);
      std::memcpy(out.data() + l.streams_offset + at, st.data(), st.size());
      at += st.size();
      ++k;
    }
  if (at > 0xFFFFFFFFull) throw InternalError(cat("cachegen: ", at, " stream bytes in one chunk do not fit 32-bit offsets"));
  const auto end = static_cast<uint32_t>(at);
  std::memcpy(out.data() + l.offsets_offset + 4 * k, &end, 4);
}

void decode_cpu(const CodecSpec& spec, const ChunkShape& shape, std::span<const std::byte> encoded,
                std::span<std::byte* const> segment_dst, DType out_dtype) {
  const Layout l = layout(spec, shape);
  if (encoded.size() < l.streams_offset)
    throw Error(cat("cachegen chunk of ", encoded.size(), " bytes, shorter than its fixed sections (", l.streams_offset, ")"));
  if (segment_dst.size() != static_cast<size_t>(shape.segments()))
    throw InternalError(cat("cachegen: ", segment_dst.size(), " segment targets for ", shape.segments(), " segments"));
  const int H = shape.kv_heads, D = shape.head_dim;
  const uint64_t row = static_cast<uint64_t>(H) * D;
  const std::byte* base = encoded.data();
  const uint64_t stream_bytes = encoded.size() - l.streams_offset;
  auto u32 = [&](uint64_t at) {
    uint32_t v;
    std::memcpy(&v, base + at, 4);
    return v;
  };
  for (int s = 0; s < shape.segments(); ++s) {
    const int qmax = delta_qmax(s / 2, shape.layers);
    std::array<uint32_t, kTableEntries> freq{}, cum{};
    uint32_t total = 0;
    for (int i = 0; i < kTableEntries; ++i) {
      uint16_t f;
      std::memcpy(&f, base + l.tables_offset + (static_cast<uint64_t>(s) * kTableEntries + i) * 2, 2);
      freq[i] = f;
      cum[i] = total;
      total += f;
    }
    const std::byte* anchors = base + l.anchor_segment_stride * s;
    const std::byte* anchor_scales = anchors + l.anchor_codes_bytes;
    std::byte* dst = segment_dst[static_cast<size_t>(s)];
    for (int h = 0; h < H; ++h)
      for (int g = 0; g < l.groups; ++g)
        for (int b = 0; b < l.blocks; ++b) {
          const uint64_t k = ((static_cast<uint64_t>(s) * H + h) * l.groups + g) * l.blocks + b;
          const uint32_t begin = u32(l.offsets_offset + 4 * k), end = u32(l.offsets_offset + 4 * (k + 1));
          if (begin > end || end > stream_bytes)
            throw Error(cat("cachegen sub-stream ", k, " spans [", begin, ", ", end, ") outside ", stream_bytes, " stream bytes"));
          const int64_t t0 = static_cast<int64_t>(g) * kTokensPerAnchor;
          const int64_t t_end = std::min<int64_t>(t0 + kTokensPerAnchor, shape.tokens);
          float hat[kBlockDims];
          for (int j = 0; j < kBlockDims; ++j) {
            const uint64_t a = static_cast<uint64_t>(g) * row + static_cast<uint64_t>(h) * D + static_cast<uint64_t>(b) * kBlockDims + j;
            uint16_t sb;
            std::memcpy(&sb, anchor_scales + 2 * (a / static_cast<uint64_t>(spec.group)), 2);
            hat[j] = static_cast<float>(static_cast<int8_t>(anchors[a])) * half_bits_to_float(sb);
            store_kv_value(dst, out_dtype, static_cast<uint64_t>(t0) * row + (a - static_cast<uint64_t>(g) * row), hat[j]);
          }
          if (t_end - t0 <= 1) continue;
          if (total != kProbScale) throw Error(cat("cachegen: the frequency table of segment ", s, " sums to ", total));
          const std::byte* p = base + l.streams_offset + begin;
          const std::byte* p_end = base + l.streams_offset + end;
          auto next_byte = [&]() -> uint32_t {
            if (p >= p_end) throw Error(cat("cachegen sub-stream ", k, " ends early"));
            return static_cast<uint32_t>(*p++);
          };
          uint32_t x = 0;
          for (int i = 0; i < 4; ++i) x = (x << 8) | next_byte();
          for (int64_t t = t0 + 1; t < t_end; ++t) {
            uint16_t sb;
            std::memcpy(&sb, base + l.scales_offset + (((static_cast<uint64_t>(s) * shape.tokens + t) * H + h) * l.blocks + b) * 2, 2);
            const float scale = half_bits_to_float(sb);
            for (int j = 0; j < kBlockDims; ++j) {
              const uint32_t slot = x & (kProbScale - 1);
              int sym = 0;
              while (sym + 1 < kTableEntries && cum[sym + 1] <= slot) ++sym;
              if (freq[sym] == 0) throw Error(cat("cachegen sub-stream ", k, ": slot ", slot, " has no symbol"));
              x = freq[sym] * (x >> kProbBits) + slot - cum[sym];
              while (x < kRansLow) x = (x << 8) | next_byte();
              const float q = static_cast<float>(sym - qmax);
              const float v = hat[j] + q * scale;
              store_kv_value(dst, out_dtype,
                          static_cast<uint64_t>(t) * row + static_cast<uint64_t>(h) * D + static_cast<uint64_t>(b) * kBlockDims + j, v);
            }
          }
        }
  }
}

}  // namespace cake::cachegen
