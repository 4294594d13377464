// The GPU decode kernels (loaders/kv_codec_kernels.cuh), run on the host under emulated_cuda.hpp:
// bit-exact with the CPU decoder on fresh random shapes, into poisoned memory, at a token offset,
// launched with the same grids as kv_codec_gpu.cu / kv_codec_cachegen_gpu.cu. CI has no GPU; this
// is how it holds the kernels' indexing and arithmetic to the reference. KvCodecGpu.* do the same
// with the real kernels on a device.
#include "emulated_cuda.hpp"

#include <random>

#include <gtest/gtest.h>

#include "common/error.hpp"
#include "loaders/kv_codec.hpp"
#include "loaders/kv_codec_cachegen.hpp"
#include "loaders/kv_codec_kernels.cuh"
#include "store_fixture.hpp"

namespace cake {
namespace {

constexpr uint8_t kPoison = 0xA5;

std::vector<std::byte> random_bf16(std::mt19937_64& rng, uint64_t values) {
  std::vector<std::byte> out(values * 2);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (uint64_t i = 0; i < values; ++i) {
    const uint16_t b = float_to_bf16_bits(normal(rng) * ((i % 13 == 0) ? 12.0f : 1.0f));
    std::memcpy(out.data() + 2 * i, &b, 2);
  }
  return out;
}

TEST(KvCodecEmulatedKernels, EqualTheCpuDecoderBitExact) {
  test::Seeded s;
  for (int trial = 0; trial < 18; ++trial) {
    const CodecKind kind = trial % 3 == 0 ? CodecKind::int8 : trial % 3 == 1 ? CodecKind::int4 : CodecKind::cachegen;
    static const int kHeadDims[] = {32, 64, 96, 128};
    const ChunkShape shape{1 + static_cast<int>(s.rng() % 3), 1 + static_cast<int>(s.rng() % 3),
                           kHeadDims[s.rng() % std::size(kHeadDims)], 1 + static_cast<int64_t>(s.rng() % 50)};
    const CodecSpec spec = CodecSpec::for_model(kind, shape.head_dim);
    SCOPED_TRACE(cat(spec.store_name(), " ", shape.layers, "x", shape.kv_heads, "x", shape.head_dim, " tokens ", shape.tokens));
    const auto raw = random_bf16(s.rng, shape.values_per_segment() * static_cast<uint64_t>(shape.segments()));
    std::vector<std::byte> encoded;
    encode_chunk(spec, shape, DType::bf16, raw, encoded);
    std::vector<uint4> device_encoded(encoded.size() / 16 + 1);  // 16-byte aligned, as cudaMalloc gives
    std::memcpy(device_encoded.data(), encoded.data(), encoded.size());
    const auto* enc = reinterpret_cast<const uint8_t*>(device_encoded.data());

    const size_t token_bytes = static_cast<size_t>(shape.kv_heads) * shape.head_dim * 2;
    const size_t seg = shape.values_per_segment() * 2;
    const int64_t first_token = static_cast<int64_t>(s.rng() % 3);
    std::vector<std::vector<uint4>> cache(static_cast<size_t>(shape.segments()),
                                          std::vector<uint4>((seg + token_bytes * 4) / 16));
    codec_kernels::SegmentTargets targets{};
    std::vector<std::vector<std::byte>> want(static_cast<size_t>(shape.segments()), std::vector<std::byte>(seg));
    std::vector<std::byte*> cpu_targets;
    for (int sg = 0; sg < shape.segments(); ++sg) {
      std::memset(cache[sg].data(), kPoison, cache[sg].size() * 16);
      targets.dst[sg] = reinterpret_cast<__nv_bfloat16*>(reinterpret_cast<uint8_t*>(cache[sg].data()) +
                                                         token_bytes * static_cast<size_t>(first_token));
      cpu_targets.push_back(want[sg].data());
    }
    decode_chunk_cpu(spec, shape, encoded, cpu_targets, DType::bf16);

    if (kind == CodecKind::cachegen) {
      const cachegen::Layout l = cachegen::layout(spec, shape);
      const codec_kernels::CachegenParams p{shape.layers, shape.kv_heads, shape.head_dim, static_cast<int>(shape.tokens),
                                            l.groups, l.blocks, spec.group, l.anchor_segment_stride, l.anchor_codes_bytes,
                                            l.scales_offset, l.tables_offset, l.offsets_offset, l.streams_offset,
                                            encoded.size() - l.streams_offset};
      const int per_segment = shape.kv_heads * l.groups * l.blocks;
      constexpr unsigned kThreads = 128;  // kv_codec_cachegen_gpu.cu's
      emulate_launch({(per_segment + kThreads - 1) / kThreads, static_cast<unsigned>(shape.segments()), 1}, {kThreads, 1, 1},
                     [&] { codec_kernels::cachegen_decode_kernel(enc, targets, p); });
    } else {
      const auto units = static_cast<uint32_t>(shape.values_per_segment() / 8);
      const uint64_t total = uint64_t{units} * static_cast<uint64_t>(shape.segments());
      constexpr unsigned kThreads = 256;  // kv_codec_gpu.cu's
      const auto blocks = static_cast<unsigned>((total + kThreads - 1) / kThreads);
      const auto segments = static_cast<uint32_t>(shape.segments());
      const auto per_group = static_cast<uint32_t>(spec.group / 8);
      emulate_launch({blocks, 1, 1}, {kThreads, 1, 1}, [&] {
        if (kind == CodecKind::int8) {
          codec_kernels::int_decode_kernel<8>(enc, targets, segments, units, per_group, spec.segment_stride(shape),
                                              spec.codes_bytes(shape));
        } else {
          codec_kernels::int_decode_kernel<4>(enc, targets, segments, units, per_group, spec.segment_stride(shape),
                                              spec.codes_bytes(shape));
        }
      });
    }
    for (int sg = 0; sg < shape.segments(); ++sg) {
      const auto* got = reinterpret_cast<const uint8_t*>(cache[sg].data());
      const size_t at = token_bytes * static_cast<size_t>(first_token);
      ASSERT_EQ(std::memcmp(got + at, want[sg].data(), seg), 0) << "segment " << sg;
      for (size_t i = 0; i < cache[sg].size() * 16; ++i) {
        if (i < at || i >= at + seg) {
          ASSERT_EQ(got[i], kPoison) << "segment " << sg << " byte " << i << " outside the chunk";
        }
      }
    }
  }
}

}  // namespace
}  // namespace cake
