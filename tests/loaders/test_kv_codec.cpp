// KV codecs: exact conversions, round-trip error bounds per codec on fresh random inputs,
// the store format's codec field, the load pipeline's decode step (host target in CI; device
// target and GPU == CPU decode on a GPU), and a corrupted encoded chunk failing its checksum.
#include <cmath>
#include <cstring>
#include <map>
#include <random>

#include <gtest/gtest.h>

#include "common/error.hpp"
#include "loaders/aligned_buffer.hpp"
#include "loaders/file_source.hpp"
#include "loaders/kv_codec.hpp"
#include "loaders/kv_codec_cachegen.hpp"
#include "loaders/load_pipeline.hpp"
#include "loaders/mem_source.hpp"
#include "pipeline_harness.hpp"
#include "source_harness.hpp"
#include "store_fixture.hpp"

#if defined(CAKE_HAVE_CUDA)
#include <cuda_runtime.h>

#include "common/cuda_raii.hpp"
#include "gpu_present.hpp"
#include "loaders/kv_codec_gpu.hpp"
#endif

namespace cake {
namespace {

using test::Claimer;
using test::Reports;
using test::Seeded;
using test::TempDir;

constexpr std::byte kPoison{0xA5};

// A raw chunk payload of KV-like values: gaussian rows, a few outlier channels (as K after RoPE
// has), some all-zero groups, values rounded to `dtype`.
std::vector<std::byte> random_kv(std::mt19937_64& rng, const ChunkShape& shape, DType dtype) {
  const uint64_t values = shape.values_per_segment() * static_cast<uint64_t>(shape.segments());
  std::vector<std::byte> out(values * dtype_bytes(dtype));
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const float magnitude = std::exp2(static_cast<float>(static_cast<int>(rng() % 12) - 6));  // 1/64 .. 32
  const int outlier = static_cast<int>(rng() % static_cast<uint64_t>(shape.head_dim));
  for (uint64_t i = 0; i < values; ++i) {
    float x = normal(rng) * magnitude;
    if (static_cast<int>(i % static_cast<uint64_t>(shape.head_dim)) == outlier) x *= 20;
    if ((i / 8) % 97 == 5) x = 0;  // zero runs: whole groups of small head_dims
    if (dtype == DType::f32) {
      std::memcpy(out.data() + 4 * i, &x, 4);
    } else {
      const uint16_t b = float_to_bf16_bits(x);
      std::memcpy(out.data() + 2 * i, &b, 2);
    }
  }
  return out;
}

ChunkShape random_chunk_shape(std::mt19937_64& rng) {
  static const int kHeadDims[] = {8, 16, 32, 64, 96, 128};
  return ChunkShape{1 + static_cast<int>(rng() % 3), 1 + static_cast<int>(rng() % 4),
                    kHeadDims[rng() % std::size(kHeadDims)], 1 + static_cast<int64_t>(rng() % 40)};
}

// Decodes into separate, poisoned per-segment buffers; returns them concatenated.
std::vector<std::byte> decode_to_bytes(const CodecSpec& spec, const ChunkShape& shape, const std::vector<std::byte>& encoded,
                                       DType dtype) {
  const size_t seg = shape.values_per_segment() * dtype_bytes(dtype);
  std::vector<std::byte> out(seg * static_cast<size_t>(shape.segments()), kPoison);
  std::vector<std::byte*> targets;
  for (int s = 0; s < shape.segments(); ++s) targets.push_back(out.data() + seg * static_cast<size_t>(s));
  decode_chunk_cpu(spec, shape, encoded, targets, dtype);
  return out;
}

TEST(KvCodec, HalfBitsRoundTripEveryFiniteValue) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const auto bits = static_cast<uint16_t>(h);
    if ((bits & 0x7C00) == 0x7C00) continue;  // inf and NaN: the encoder never stores them
    ASSERT_EQ(float_to_half_bits(half_bits_to_float(bits)), bits) << "half bits " << h;
  }
}

TEST(KvCodec, FloatToHalfAndBf16RoundToNearest) {
  Seeded s;
  std::uniform_real_distribution<float> exponent(-20.0f, 15.0f);
  for (int i = 0; i < 200000; ++i) {
    const float f = std::exp2(exponent(s.rng)) * ((s.rng() & 1) ? -1.0f : 1.0f);
    const uint16_t h = float_to_half_bits(f);
    const double err = std::fabs(static_cast<double>(half_bits_to_float(h)) - f);
    // No neighbour of the chosen half is closer (ties: the chosen one is even).
    for (int d : {-1, 1}) {
      const auto n = static_cast<uint16_t>(h + d);
      if ((n & 0x7C00) == 0x7C00 || ((n ^ h) & 0x8000)) continue;
      const double nerr = std::fabs(static_cast<double>(half_bits_to_float(n)) - f);
      ASSERT_TRUE(err < nerr || (err == nerr && (h & 1) == 0)) << f << " -> " << half_bits_to_float(h);
    }
    const uint16_t b = float_to_bf16_bits(f);
    const double berr = std::fabs(static_cast<double>(bf16_bits_to_float(b)) - f);
    for (int d : {-1, 1}) {
      const auto n = static_cast<uint16_t>(b + d);
      const double nerr = std::fabs(static_cast<double>(bf16_bits_to_float(n)) - f);
      ASSERT_TRUE(berr < nerr || (berr == nerr && (b & 1) == 0)) << f;
    }
  }
}

TEST(KvCodec, StoreNameRecordsParametersAndRoundTrips) {
  for (CodecKind k : codec_kinds())
    for (int head_dim : {8, 32, 64, 128}) {
      if (k == CodecKind::cachegen && head_dim < 32) continue;
      const CodecSpec spec = CodecSpec::for_model(k, head_dim);
      const CodecSpec back = CodecSpec::parse_store_name(spec.store_name());
      EXPECT_EQ(back.kind, spec.kind);
      EXPECT_EQ(back.group, spec.group);
      if (k != CodecKind::none) {
        EXPECT_LE(spec.group, head_dim);
      }
    }
  EXPECT_EQ(CodecSpec::for_model(CodecKind::int8, 128).store_name(), "int8;group=64;scale=f16");
  EXPECT_EQ(CodecSpec::for_model(CodecKind::int4, 128).store_name(), "int4;group=32;scale=f16");
  for (const char* bad : {"zstd", "int8", "int8;group=7;scale=f16", "int4;group=32", "int4;group=x;scale=f16", ""})
    EXPECT_THROW(CodecSpec::parse_store_name(bad), Error) << bad;
  EXPECT_THROW(CodecSpec::for_model(CodecKind::int8, 12), UsageError);
  EXPECT_THROW(parse_codec_kind("fp8"), UsageError);
  EXPECT_EQ(CodecSpec::parse_store_name(CodecSpec::for_model(CodecKind::cachegen, 128).store_name()).kind, CodecKind::cachegen);
  EXPECT_THROW(CodecSpec::for_model(CodecKind::cachegen, 40), UsageError);
  EXPECT_THROW(CodecSpec::parse_store_name("cachegen;anchor=8,int8,g64;levels=7,5,3;block=32;rans=12"), Error);
}

TEST(KvCodec, NoneIsExact) {
  Seeded s;
  for (DType dtype : {DType::f32, DType::bf16}) {
    const ChunkShape shape = random_chunk_shape(s.rng);
    const auto raw = random_kv(s.rng, shape, dtype);
    std::vector<std::byte> encoded;
    encode_chunk(CodecSpec{}, shape, dtype, raw, encoded);
    EXPECT_EQ(decode_to_bytes(CodecSpec{}, shape, encoded, dtype), raw);
  }
}

// Every value within half a quantization step of its group (plus the fp16 rounding of the scale
// and one rounding to the output dtype), and the whole chunk's relative L2 error under a bound
// that says the codec is useful.
TEST(KvCodec, RoundTripErrorBoundsPerCodec) {
  Seeded s;
  for (CodecKind kind : {CodecKind::int8, CodecKind::int4}) {
    for (DType dtype : {DType::f32, DType::bf16}) {
      double diff2 = 0, ref2 = 0;
      for (int trial = 0; trial < 12; ++trial) {
        const ChunkShape shape = random_chunk_shape(s.rng);
        const CodecSpec spec = CodecSpec::for_model(kind, shape.head_dim);
        SCOPED_TRACE(cat(spec.store_name(), " ", dtype_name(dtype), " ", shape.layers, "x", shape.kv_heads, "x",
                         shape.head_dim, " tokens ", shape.tokens));
        const auto raw = random_kv(s.rng, shape, dtype);
        std::vector<std::byte> encoded;
        encode_chunk(spec, shape, dtype, raw, encoded, 1 + static_cast<int>(s.rng() % 4));
        ASSERT_EQ(encoded.size(), spec.encoded_bytes(shape, dtype));
        // Each segment's part is padded for alignment, which can outweigh what a tiny random shape
        // (e.g. 24 bf16 values a segment) saves; from a few hundred values a segment it must shrink.
        if (shape.values_per_segment() >= 512) {
          ASSERT_LT(encoded.size(), raw.size()) << "a codec that does not compress";
        }
        const auto decoded = decode_to_bytes(spec, shape, encoded, dtype);
        const double qmax = kind == CodecKind::int8 ? 127 : 7;
        const uint64_t values = shape.values_per_segment() * static_cast<uint64_t>(shape.segments());
        for (uint64_t g = 0; g < values / static_cast<uint64_t>(spec.group); ++g) {
          double amax = 0;
          for (int j = 0; j < spec.group; ++j) amax = std::max(amax, std::fabs(double{load_kv_value(raw.data(), dtype, g * spec.group + j)}));
          const double step = amax / qmax;
          for (int j = 0; j < spec.group; ++j) {
            const uint64_t i = g * static_cast<uint64_t>(spec.group) + static_cast<uint64_t>(j);
            const double x = load_kv_value(raw.data(), dtype, i);
            const double y = load_kv_value(decoded.data(), dtype, i);
            // The stored scale is step rounded up to fp16 (at most one fp16 ulp above it).
            const double scale = step * (1 + 0x1p-10) + 0x1p-24;
            const double bound = 0.5 * scale + std::fabs(y) * (dtype == DType::bf16 ? 0x1p-8 : 0x1p-23) + 1e-30;
            ASSERT_LE(std::fabs(x - y), bound) << "value " << i << ": " << x << " decoded as " << y;
            if (amax == 0) {
              ASSERT_EQ(y, 0.0) << "value " << i;
            }
            diff2 += (x - y) * (x - y);
            ref2 += x * x;
          }
        }
      }
      const double rel = std::sqrt(diff2 / ref2);
      SCOPED_TRACE(cat(codec_kind_name(kind), " ", dtype_name(dtype), " rel L2 ", rel));
      EXPECT_GT(rel, 0.0) << "a lossy codec that lost nothing: the test would not see a wrong decoder";
      // Loose: the per-value bound above is the real check. With a 20x outlier channel in every
      // row, a step is ~amax/qmax of a group holding the outlier: rel L2 ~1% (int8), ~16% (int4).
      EXPECT_LT(rel, kind == CodecKind::int8 ? 0.03 : 0.3);
    }
  }
}

ChunkShape random_cachegen_shape(std::mt19937_64& rng) {
  static const int kHeadDims[] = {32, 64, 96, 128};
  return ChunkShape{1 + static_cast<int>(rng() % 4), 1 + static_cast<int>(rng() % 3),
                    kHeadDims[rng() % std::size(kHeadDims)], 1 + static_cast<int64_t>(rng() % 70)};
}

// CacheGen-style: anchors within the int8 bound; other values within half a delta step of their
// block (the step is max |x - anchor_hat| / qmax of the block, qmax by layer); the f32 decode
// gives anchor_hat exactly, so the bound is checked there; bf16 adds one rounding (rel L2 only).
TEST(KvCodec, CachegenRoundTripErrorBounds) {
  Seeded s;
  for (DType dtype : {DType::f32, DType::bf16}) {
    double diff2 = 0, ref2 = 0;
    for (int trial = 0; trial < 10; ++trial) {
      const ChunkShape shape = random_cachegen_shape(s.rng);
      const CodecSpec spec = CodecSpec::for_model(CodecKind::cachegen, shape.head_dim);
      SCOPED_TRACE(cat(spec.store_name(), " ", dtype_name(dtype), " ", shape.layers, "x", shape.kv_heads, "x",
                       shape.head_dim, " tokens ", shape.tokens));
      const auto raw = random_kv(s.rng, shape, dtype);
      std::vector<std::byte> encoded;
      encode_chunk(spec, shape, dtype, raw, encoded, 1 + static_cast<int>(s.rng() % 4));
      ASSERT_GE(encoded.size(), spec.min_encoded_bytes(shape, dtype));
      std::vector<std::byte> again;
      encode_chunk(spec, shape, dtype, raw, again, 3);
      ASSERT_EQ(again, encoded) << "the encoder must not depend on its thread count";
      const auto decoded = decode_to_bytes(spec, shape, encoded, dtype);
      const auto exact = decode_to_bytes(spec, shape, encoded, DType::f32);  // anchor_hat and deltas unrounded
      const uint64_t row = static_cast<uint64_t>(shape.kv_heads) * shape.head_dim;
      const uint64_t per_seg = shape.values_per_segment();
      for (int sg = 0; sg < shape.segments(); ++sg) {
        const double qmax = cachegen::delta_qmax(sg / 2, shape.layers);
        for (int64_t t = 0; t < shape.tokens; ++t) {
          const int64_t anchor = t / cachegen::kTokensPerAnchor * cachegen::kTokensPerAnchor;
          for (uint64_t c0 = 0; c0 < row; c0 += cachegen::kBlockDims) {
            double amax = 0, dmax = 0;
            for (int j = 0; j < cachegen::kBlockDims; ++j) {
              const uint64_t i = per_seg * sg + static_cast<uint64_t>(t) * row + c0 + j;
              const uint64_t a = per_seg * sg + static_cast<uint64_t>(anchor) * row + c0 + j;
              amax = std::max(amax, std::fabs(double{load_kv_value(raw.data(), dtype, i)}));
              dmax = std::max(dmax, std::fabs(double{load_kv_value(raw.data(), dtype, i)} - load_kv_value(exact.data(), DType::f32, a)));
            }
            for (int j = 0; j < cachegen::kBlockDims; ++j) {
              const uint64_t i = per_seg * sg + static_cast<uint64_t>(t) * row + c0 + j;
              const double x = load_kv_value(raw.data(), dtype, i);
              const double y = load_kv_value(exact.data(), DType::f32, i);
              // Anchors: the int8 codec's bound with the group's amax (>= this block's).
              const double bound = t == anchor ? 0.5 * (amax * 8 / 127.0) * (1 + 0x1p-10) + 0x1p-24 + std::fabs(y) * 0x1p-23
                                               : 0.5 * (dmax / qmax * (1 + 0x1p-10) + 0x1p-24) + std::fabs(y) * 0x1p-22;
              if (t == anchor) continue;  // anchors are the int8 codec, bounded in its own test
              ASSERT_LE(std::fabs(x - y), bound) << "segment " << sg << " token " << t << " value " << c0 + j;
            }
          }
        }
      }
      for (size_t i = 0; i < raw.size() / dtype_bytes(dtype); ++i) {
        const double x = load_kv_value(raw.data(), dtype, i), y = load_kv_value(decoded.data(), dtype, i);
        diff2 += (x - y) * (x - y);
        ref2 += x * x;
      }
    }
    const double rel = std::sqrt(diff2 / ref2);
    SCOPED_TRACE(cat("cachegen ", dtype_name(dtype), " rel L2 ", rel));
    EXPECT_GT(rel, 0.0);
    EXPECT_LT(rel, 0.6);  // loose: the per-value bound above is the check
  }
}

// The bar: at most 0.6x the bytes of the bf16 store (here on KV-like random data with
// 1024-token chunks of llama-3-8b's head shape, 2 layers).
TEST(KvCodec, CachegenIsUnderSixTenthsOfBf16) {
  Seeded s;
  const ChunkShape shape{2, 8, 128, 1024};
  const CodecSpec spec = CodecSpec::for_model(CodecKind::cachegen, 128);
  const auto raw = random_kv(s.rng, shape, DType::bf16);
  std::vector<std::byte> encoded;
  encode_chunk(spec, shape, DType::bf16, raw, encoded, 4);
  EXPECT_LT(static_cast<double>(encoded.size()), 0.6 * static_cast<double>(raw.size()))
      << encoded.size() << " of " << raw.size() << " bytes";
}

TEST(KvCodec, CachegenDecoderRefusesMalformedChunks) {
  Seeded s;
  const ChunkShape shape{2, 2, 64, 40};
  const CodecSpec spec = CodecSpec::for_model(CodecKind::cachegen, 64);
  const auto raw = random_kv(s.rng, shape, DType::bf16);
  std::vector<std::byte> encoded;
  encode_chunk(spec, shape, DType::bf16, raw, encoded);
  std::vector<std::byte> truncated(encoded.begin(), encoded.begin() + static_cast<long>(encoded.size() - 1));
  EXPECT_THROW(decode_to_bytes(spec, shape, truncated, DType::bf16), Error);
  std::vector<std::byte> short_fixed(encoded.begin(), encoded.begin() + 64);
  EXPECT_THROW(decode_to_bytes(spec, shape, short_fixed, DType::bf16), Error);
  std::vector<std::byte> bad_offset = encoded;
  const cachegen::Layout l = cachegen::layout(spec, shape);
  const uint32_t huge = 0x7FFFFFFF;
  std::memcpy(bad_offset.data() + l.offsets_offset + 4, &huge, 4);
  EXPECT_THROW(decode_to_bytes(spec, shape, bad_offset, DType::bf16), Error);
}

TEST(KvCodec, DecoderRefusesAWrongSize) {
  const ChunkShape shape{2, 2, 64, 5};
  const CodecSpec spec = CodecSpec::for_model(CodecKind::int8, 64);
  std::vector<std::byte> encoded(spec.encoded_bytes(shape, DType::bf16) - 16);
  EXPECT_THROW(decode_to_bytes(spec, shape, encoded, DType::bf16), Error);
}

// ---- stores and the load pipeline ----

struct EncodedStore {
  std::string path;
  StoreHeader header;
  CodecSpec spec;
  std::vector<std::vector<std::byte>> raw;      // per chunk, before encoding
  std::vector<std::vector<std::byte>> encoded;  // per chunk, as stored
};

EncodedStore write_encoded_store(const std::string& dir, CodecKind kind, DType dtype, std::mt19937_64& rng) {
  EncodedStore out;
  const int head_dim = (rng() & 1) ? 64 : 32;
  const int32_t chunk_tokens = 8 + static_cast<int32_t>(rng() % 24);
  const int64_t tokens = chunk_tokens * (3 + static_cast<int64_t>(rng() % 5)) + static_cast<int64_t>(rng() % chunk_tokens);
  StoreHeader shape = test::make_header(1 + static_cast<int>(rng() % 3), 1 + static_cast<int>(rng() % 3), head_dim, dtype,
                                        tokens, chunk_tokens, rng());
  out.spec = CodecSpec::for_model(kind, head_dim);
  shape.key.codec = out.spec.store_name();
  out.path = store_path(dir, shape.key);
  StoreWriter writer(out.path, shape);
  for (size_t i = 0; i < shape.chunks.size(); ++i) {
    const ChunkShape cs{shape.layers, shape.kv_heads, shape.head_dim, shape.chunks[i].tokens};
    out.raw.push_back(random_kv(rng, cs, dtype));
    out.encoded.emplace_back();
    encode_chunk(out.spec, cs, dtype, out.raw.back(), out.encoded.back());
    writer.write_chunk(static_cast<int>(i), out.encoded.back());
  }
  out.header = writer.finish();
  return out;
}

struct HostCache {
  std::vector<AlignedBuffer> tensors;
  KvCacheView view;
  explicit HostCache(const StoreHeader& h) {
    view.memory = MemoryKind::host;
    view.dtype = h.key.dtype;
    view.layers = h.layers;
    view.kv_heads = h.kv_heads;
    view.head_dim = h.head_dim;
    view.capacity_tokens = h.key.token_count;
    for (int l = 0; l < 2 * h.layers; ++l) {
      tensors.emplace_back(view.segment_bytes(view.capacity_tokens));
      std::memset(tensors.back().data(), static_cast<int>(kPoison), tensors.back().size());
      (l % 2 == 0 ? view.k : view.v).push_back(tensors.back().data());
    }
  }
};

// The cache holds, for chunk c, exactly the CPU decoder's output (or poison when not loaded).
void expect_decoded_in_host_cache(const KvCacheView& view, const EncodedStore& store, int c, bool loaded) {
  const ChunkEntry& e = store.header.chunks[static_cast<size_t>(c)];
  const ChunkShape shape{view.layers, view.kv_heads, view.head_dim, e.tokens};
  const auto want = decode_to_bytes(store.spec, shape, store.encoded[static_cast<size_t>(c)], view.dtype);
  const size_t seg = view.segment_bytes(e.tokens);
  for (int s = 0; s < 2 * view.layers; ++s) {
    const std::byte* got = view.segment_ptr(s, e.first_token);
    if (loaded) {
      ASSERT_EQ(std::memcmp(got, want.data() + seg * static_cast<size_t>(s), seg), 0) << "chunk " << c << " segment " << s;
    } else {
      for (size_t i = 0; i < seg; ++i) ASSERT_EQ(got[i], kPoison) << "chunk " << c << " segment " << s;
    }
  }
}

void host_pipeline_round_trip(bool mem, CodecKind kind) {
  Seeded s;
  TempDir dir;
  const DType dtype = (s.rng() & 1) ? DType::f32 : DType::bf16;
  const EncodedStore store = write_encoded_store(dir.path(), kind, dtype, s.rng);
  std::unique_ptr<KvSource> source;
  if (mem) source = std::make_unique<MemSource>(store.path);
  else source = std::make_unique<FileSource>(store.path, FileSourceOptions{.queue_depth = 4, .request_bytes = 8192});
  HostCache cache(store.header);
  // Encoded chunks decode whole: whole-chunk staging (byte staging refuses them at open).
  LoadPipeline pipeline(*source, cache.view, store.header.key.chunk_tokens,
                        {.staging_slots = 1 + static_cast<int>(s.rng() % 3), .piece_staging = false});
  Claimer claim{test::shuffled_chunks(store.header.chunks.size(), s.rng)};
  Reports reports;
  pipeline.run(store.header.key, std::ref(claim), std::ref(reports));
  ASSERT_TRUE(pipeline.open_error().empty()) << pipeline.open_error();
  ASSERT_EQ(reports.by_chunk.size(), store.header.chunks.size());
  for (const auto& [c, r] : reports.by_chunk) {
    ASSERT_TRUE(r.ok) << "chunk " << c << ": " << r.error;
    const ChunkEntry& e = store.header.chunks[static_cast<size_t>(c)];
    EXPECT_EQ(r.bytes, e.bytes);  // encoded bytes: what the link carried
    EXPECT_EQ(r.decoded_bytes, cache.view.chunk_bytes(e.tokens));
    EXPECT_GE(r.decode_ns, 0);
    expect_decoded_in_host_cache(cache.view, store, c, true);
  }
}

TEST(KvCodecPipeline, FileSourceDecodesIntoTheHostCache) {
  host_pipeline_round_trip(false, CodecKind::int8);
  host_pipeline_round_trip(false, CodecKind::int4);
}
TEST(KvCodecPipeline, MemSourceDecodesIntoTheHostCache) {
  host_pipeline_round_trip(true, CodecKind::int8);
  host_pipeline_round_trip(true, CodecKind::int4);
}
TEST(KvCodecPipeline, CachegenDecodesIntoTheHostCache) {
  host_pipeline_round_trip(false, CodecKind::cachegen);
  host_pipeline_round_trip(true, CodecKind::cachegen);
}

// A flipped byte in one encoded chunk: that chunk alone fails its checksum (which covers the
// encoded bytes) and its place in the cache is not reported resident; the others decode.
TEST(KvCodecPipeline, CorruptedEncodedChunkFailsItsChecksum) {
  for (bool mem : {false, true}) {
    Seeded s;
    TempDir dir;
    const CodecKind kinds[] = {CodecKind::int8, CodecKind::int4, CodecKind::cachegen};
    EncodedStore store = write_encoded_store(dir.path(), kinds[s.rng() % 3], DType::bf16, s.rng);
    const int bad = static_cast<int>(s.rng() % store.header.chunks.size());
    const ChunkEntry& e = store.header.chunks[static_cast<size_t>(bad)];
    {
      const uint64_t at = e.offset + s.rng() % e.bytes;
      FILE* f = std::fopen(store.path.c_str(), "r+b");
      ASSERT_NE(f, nullptr);
      ASSERT_EQ(std::fseek(f, static_cast<long>(at), SEEK_SET), 0);
      const int byte = std::fgetc(f);
      ASSERT_EQ(std::fseek(f, static_cast<long>(at), SEEK_SET), 0);
      std::fputc(byte ^ 0x10, f);
      std::fclose(f);
    }
    std::unique_ptr<KvSource> source;
    if (mem) source = std::make_unique<MemSource>(store.path);
    else source = std::make_unique<FileSource>(store.path);
    HostCache cache(store.header);
    LoadPipeline pipeline(*source, cache.view, store.header.key.chunk_tokens, {.staging_slots = 2, .piece_staging = false});
    Claimer claim{test::shuffled_chunks(store.header.chunks.size(), s.rng)};
    Reports reports;
    pipeline.run(store.header.key, std::ref(claim), std::ref(reports));
    ASSERT_EQ(reports.by_chunk.size(), store.header.chunks.size());
    for (const auto& [c, r] : reports.by_chunk) {
      if (c == bad) {
        EXPECT_FALSE(r.ok) << "source " << (mem ? "mem" : "file");
        EXPECT_NE(r.error.find("checksum mismatch"), std::string::npos) << r.error;
      } else {
        ASSERT_TRUE(r.ok) << r.error;
        expect_decoded_in_host_cache(cache.view, store, c, true);
      }
    }
    EXPECT_EQ(pipeline.chunks_failed(), 1);
  }
}

TEST(KvCodecStore, ReaderRefusesUnknownCodecsAndWrongSizes) {
  Seeded s;
  TempDir dir;
  StoreHeader shape = test::make_header(1, 2, 32, DType::bf16, 40, 16, s.rng());
  const auto read_error = [&](const std::string& codec, uint64_t chunk_bytes) {
    StoreHeader h = shape;
    h.key.codec = codec;
    const std::string path = dir.file(cat(codec.substr(0, 4), chunk_bytes, ".kvstore"));
    {
      StoreWriter w(path, h);
      for (size_t i = 0; i < h.chunks.size(); ++i) w.write_chunk(static_cast<int>(i), test::random_bytes(s.rng, chunk_bytes));
      w.finish();
    }
    FileSource source(path);
    try {
      source.open(h.key);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(read_error("zstd", 100).find("unknown codec"), std::string::npos);
  const CodecSpec int8 = CodecSpec::for_model(CodecKind::int8, 32);
  // The last chunk is shorter, so equal sizes everywhere are wrong for it.
  EXPECT_NE(read_error(int8.store_name(), int8.encoded_bytes({1, 2, 32, 16}, DType::bf16)).find("takes"), std::string::npos);
}

#if defined(CAKE_HAVE_CUDA)
bool have_gpu(std::string& why) {
  if (test::have_gpu()) return true;
  why = "no GPU: the GPU decoder needs one";
  return false;
}

// The GPU decoder writes exactly the CPU decoder's bytes, into poisoned memory, at a token offset.
TEST(KvCodecGpu, DecodeEqualsCpuDecodeBitExact) {
  std::string why;
  if (!have_gpu(why)) {
    GTEST_SKIP() << why;
  }
  Seeded s;
  for (int trial = 0; trial < 36; ++trial) {
    const CodecKind kind = trial % 3 == 0 ? CodecKind::int8 : trial % 3 == 1 ? CodecKind::int4 : CodecKind::cachegen;
    ChunkShape shape = kind == CodecKind::cachegen ? random_cachegen_shape(s.rng) : random_chunk_shape(s.rng);
    shape.tokens = 1 + static_cast<int64_t>(s.rng() % 300);
    const CodecSpec spec = CodecSpec::for_model(kind, shape.head_dim);
    SCOPED_TRACE(cat(spec.store_name(), " ", shape.layers, "x", shape.kv_heads, "x", shape.head_dim, " tokens ", shape.tokens));
    const auto raw = random_kv(s.rng, shape, DType::bf16);
    std::vector<std::byte> encoded;
    encode_chunk(spec, shape, DType::bf16, raw, encoded);
    const auto want = decode_to_bytes(spec, shape, encoded, DType::bf16);
    const int64_t first_token = static_cast<int64_t>(s.rng() % 5);
    const size_t token_bytes = static_cast<size_t>(shape.kv_heads) * shape.head_dim * 2;
    const size_t seg = shape.values_per_segment() * 2;
    cuda::DeviceBuffer enc_dev(encoded.size());
    ASSERT_EQ(cudaMemcpy(enc_dev.get(), encoded.data(), encoded.size(), cudaMemcpyHostToDevice), cudaSuccess);
    std::vector<cuda::DeviceBuffer> tensors;
    std::vector<std::byte*> targets;
    for (int sg = 0; sg < shape.segments(); ++sg) {
      tensors.emplace_back(seg + token_bytes * 6);
      ASSERT_EQ(cudaMemset(tensors.back().get(), static_cast<int>(kPoison), tensors.back().bytes()), cudaSuccess);
      targets.push_back(tensors.back().as<std::byte>() + token_bytes * static_cast<size_t>(first_token));
    }
    cuda::Stream stream;
    decode_chunk_gpu(spec, shape, enc_dev.as<std::byte>(), encoded.size(), targets, stream.get(), "test decode");
    stream.synchronize();
    std::vector<std::byte> host(tensors.front().bytes());
    for (int sg = 0; sg < shape.segments(); ++sg) {
      ASSERT_EQ(cudaMemcpy(host.data(), tensors[sg].get(), host.size(), cudaMemcpyDeviceToHost), cudaSuccess);
      const size_t at = token_bytes * static_cast<size_t>(first_token);
      ASSERT_EQ(std::memcmp(host.data() + at, want.data() + seg * static_cast<size_t>(sg), seg), 0) << "segment " << sg;
      for (size_t i = 0; i < host.size(); ++i)
        if (i < at || i >= at + seg) {
          ASSERT_EQ(host[i], kPoison) << "segment " << sg << " byte " << i << " outside the chunk";
        }
    }
  }
}

// The load lane on a device cache: encoded bytes copied to device staging on the copy stream and
// decoded there; the cache holds the CPU decoder's bytes.
void device_pipeline(bool mem) {
  std::string why;
  if (!have_gpu(why)) {
    GTEST_SKIP() << why;
  }
  Seeded s;
  TempDir dir;
  const CodecKind kinds[] = {CodecKind::int8, CodecKind::int4, CodecKind::cachegen};
  const EncodedStore store = write_encoded_store(dir.path(), kinds[s.rng() % 3], DType::bf16, s.rng);
  const StoreHeader& h = store.header;
  std::unique_ptr<KvSource> source;
  if (mem) source = std::make_unique<MemSource>(store.path);
  else source = std::make_unique<FileSource>(store.path);
  KvCacheView view;
  view.memory = MemoryKind::device;
  view.dtype = DType::bf16;
  view.layers = h.layers;
  view.kv_heads = h.kv_heads;
  view.head_dim = h.head_dim;
  view.capacity_tokens = h.key.token_count;
  std::vector<cuda::DeviceBuffer> tensors;
  for (int l = 0; l < 2 * h.layers; ++l) {
    tensors.emplace_back(view.segment_bytes(view.capacity_tokens));
    ASSERT_EQ(cudaMemset(tensors.back().get(), static_cast<int>(kPoison), tensors.back().bytes()), cudaSuccess);
    (l % 2 == 0 ? view.k : view.v).push_back(tensors.back().as<std::byte>());
  }
  {  // without decode staging the pipeline refuses an encoded store at open
    LoadPipeline plain(*source, view, h.key.chunk_tokens, {.staging_slots = 2});
    Claimer claim{{0}};
    Reports reports;
    plain.run(h.key, std::ref(claim), std::ref(reports));
    EXPECT_NE(plain.open_error().find("no device staging"), std::string::npos) << plain.open_error();
  }
  LoadPipelineOptions options{.staging_slots = 2, .piece_staging = false};
  options.decode_staging = true;
  LoadPipeline pipeline(*source, view, h.key.chunk_tokens, options);
  Claimer claim{test::shuffled_chunks(h.chunks.size(), s.rng)};
  Reports reports;
  pipeline.run(h.key, std::ref(claim), std::ref(reports));
  ASSERT_TRUE(pipeline.open_error().empty()) << pipeline.open_error();
  ASSERT_EQ(reports.by_chunk.size(), h.chunks.size());
  for (const auto& [c, r] : reports.by_chunk) {
    ASSERT_TRUE(r.ok) << r.error;
    EXPECT_GT(r.decode_ns, 0);
    const ChunkEntry& e = h.chunks[static_cast<size_t>(c)];
    const ChunkShape shape{h.layers, h.kv_heads, h.head_dim, e.tokens};
    const auto want = decode_to_bytes(store.spec, shape, store.encoded[static_cast<size_t>(c)], DType::bf16);
    const size_t seg = view.segment_bytes(e.tokens);
    std::vector<std::byte> host(seg);
    for (int sg = 0; sg < 2 * h.layers; ++sg) {
      ASSERT_EQ(cudaMemcpy(host.data(), view.segment_ptr(sg, e.first_token), seg, cudaMemcpyDeviceToHost), cudaSuccess);
      ASSERT_EQ(std::memcmp(host.data(), want.data() + seg * static_cast<size_t>(sg), seg), 0) << "chunk " << c << " segment " << sg;
    }
  }
}

TEST(KvCodecGpu, FileSourceDecodesIntoTheDeviceCache) { device_pipeline(false); }
TEST(KvCodecGpu, MemSourceDecodesIntoTheDeviceCache) { device_pipeline(true); }
#endif

}  // namespace
}  // namespace cake
