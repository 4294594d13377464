// KV codecs through the whole engine on the CPU backend with real sources: one store per codec,
// decoded in the load lane; lossless points verified bit-exact, lossy ones reporting their
// quality instead; the quality measured per codec; a corrupted encoded chunk recovered by compute.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <random>

#include "common/fd.hpp"
#include "engine/store_prep.hpp"
#include "engine/sweep.hpp"
#include "kernels/backend_factory.hpp"
#include "kernels/presets.hpp"
#include "loaders/store_file.hpp"
#include "workloads/synthetic.hpp"

using namespace cake;

namespace {

struct TempDir {
  std::string path;
  explicit TempDir(uint64_t seed)
      : path((std::filesystem::temp_directory_path() / ("cake-codec-" + std::to_string(seed))).string()) {}
  ~TempDir() { std::filesystem::remove_all(path); }
};

struct Fixture {
  const uint64_t seed = std::random_device{}();
  const ModelConfig model = preset_model("tiny-mha");
  TempDir dir{seed};
  BackendChoice choice;
  SweepConfig config;
  Fixture() {
    BackendOptions options;
    options.max_context_tokens = 640;
    options.max_chunk_tokens = 64;
    choice = make_backend(BackendKind::cpu, model, options);
    config.requests = {synthetic_request(600, 16, model.vocab, seed)};  // 10 chunks, the last one short
    config.chunk_tokens = {64};
    config.modes = {parse_mode("compute"), parse_mode("io"), parse_mode("cake"), parse_mode("split=0.5"), parse_mode("oracle")};
    config.bandwidths = {std::nullopt};
    config.sources = {parse_source_spec("file"), parse_source_spec("mem")};
    config.codecs = {CodecKind::none, CodecKind::int8, CodecKind::int4, CodecKind::cachegen};
    config.store_dir = dir.path;
    config.repeat = 1;
    config.warmup = 0;
    config.verify = VerifyLevel::full;
  }
};

}  // namespace

TEST(CodecSweep, LosslessVerifiedLossyReportsQuality) {
  Fixture f;
  SCOPED_TRACE(testing::Message() << "seed " << f.seed);
  std::vector<CodecMeasurement> quality;
  const std::vector<PointResult> points = run_sweep(*f.choice.backend, f.config, nullptr, &quality);

  // One store per codec, never the same file.
  std::set<std::string> stores;
  for (CodecKind k : f.config.codecs)
    stores.insert(store_path(f.dir.path, store_key_for(*f.choice.backend, f.config.requests[0], 64, k)));
  EXPECT_EQ(stores.size(), 4u);
  for (const std::string& s : stores) EXPECT_TRUE(std::filesystem::exists(s)) << s;

  ASSERT_EQ(quality.size(), 4u);
  std::map<std::string, CodecMeasurement> by_codec;
  for (const CodecMeasurement& m : quality) by_codec[m.codec] = m;
  const CodecMeasurement& none = by_codec.at("none");
  const CodecMeasurement& int8 = by_codec.at("int8");
  const CodecMeasurement& int4 = by_codec.at("int4");
  const CodecMeasurement& cachegen = by_codec.at("cachegen");
  for (const CodecMeasurement* m : {&none, &int8, &int4, &cachegen}) {
    SCOPED_TRACE(m->codec);
    EXPECT_EQ(m->chunks_loaded, 10);
    EXPECT_EQ(m->chunks_total, 10);
    EXPECT_EQ(m->prefix_tokens, 600);
  }
  for (const CodecMeasurement* m : {&int8, &int4, &cachegen}) {
    EXPECT_EQ(m->decoded_bytes, m->raw_bytes) << m->codec << ": every chunk decoded once";
    EXPECT_GT(m->decode_ns, 0) << m->codec;
  }
  EXPECT_EQ(none.decoded_bytes, 0u);
  EXPECT_EQ(none.kv.k, 0.0);
  EXPECT_EQ(none.kv.v, 0.0);
  EXPECT_EQ(none.logits_rel_error, 0.0);
  EXPECT_TRUE(none.first_token_agrees);
  EXPECT_EQ(none.store_bytes, none.raw_bytes);
  EXPECT_LT(int8.store_bytes, none.store_bytes / 3);  // f32 cache: 4 bytes -> a bit over 1
  EXPECT_LT(int4.store_bytes, int8.store_bytes);
  EXPECT_GT(int8.kv.k, 0.0);
  EXPECT_LT(int8.kv.k, 0.02);
  EXPECT_LT(int8.kv.v, 0.02);
  EXPECT_GT(int4.kv.k, int8.kv.k);
  EXPECT_LT(int4.kv.k, 0.2);
  EXPECT_LT(int4.kv.v, 0.2);
  EXPECT_GT(int8.logits_rel_error, 0.0);
  EXPECT_LT(static_cast<double>(cachegen.store_bytes), 0.6 * static_cast<double>(none.store_bytes));
  EXPECT_GT(cachegen.kv.k, 0.0);
  EXPECT_LT(cachegen.kv.k, 0.6);

  int lossy_loading = 0;
  for (const PointResult& p : points) {
    SCOPED_TRACE(p.codec + " " + p.source + " " + p.mode.name());
    const RequestOutcome& o = p.reps.at(0);
    EXPECT_EQ(o.chunks_recovered, 0);
    const bool lossy = p.codec != "none" && o.chunks_loaded > 0;
    if (!lossy) {
      EXPECT_TRUE(p.verification.passed) << p.verification.detail;
      EXPECT_FALSE(p.verification.lossy);
      continue;
    }
    ++lossy_loading;
    EXPECT_FALSE(p.verification.passed) << "a lossy load must not claim to be verified";
    EXPECT_TRUE(p.verification.lossy);
    EXPECT_NE(p.verification.detail.find("lossy codec " + p.codec), std::string::npos) << p.verification.detail;
    EXPECT_EQ(p.verification.k_rel_error, by_codec.at(p.codec).kv.k);
    // The loaded bytes are the encoded ones.
    if (p.mode.kind == ModeKind::io) {
      EXPECT_EQ(o.bytes_loaded, by_codec.at(p.codec).store_bytes);
    }
    // Every loaded chunk went through the decode step, inside its load: a chunk is resident (end_ns,
    // what load_busy_ms and so the oracle's per-chunk load cost and split=F count) only once decoded.
    for (const ChunkEvent& e : o.timeline) {
      if (e.lane == Lane::load && e.ok) {
        EXPECT_GT(e.decoded_bytes, e.bytes);
        EXPECT_GE(e.end_ns - e.decode_ns, e.h2d_start_ns) << "chunk " << e.chunk;
        EXPECT_GE(o.load_busy_ms * 1e6, static_cast<double>(e.decode_ns));
      }
    }
  }
  EXPECT_GE(lossy_loading, 6);  // io on two sources for three codecs at least
}

TEST(CodecSweep, CorruptedEncodedChunkIsRecoveredByComputing) {
  Fixture f;
  SCOPED_TRACE(testing::Message() << "seed " << f.seed);
  f.config.codecs = {CodecKind::int8};
  f.config.sources = {parse_source_spec("file")};
  f.config.modes = {parse_mode("io")};
  (void)run_sweep(*f.choice.backend, f.config, nullptr);  // writes the store
  const std::string path = store_path(f.dir.path, store_key_for(*f.choice.backend, f.config.requests[0], 64, CodecKind::int8));
  StoreHeader header;
  {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    ASSERT_TRUE(fd.valid());
    header = read_store_header(fd.get(), path);
  }
  const int bad = static_cast<int>(f.seed % header.chunks.size());
  {
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
    ASSERT_TRUE(fd.valid());
    const off_t at = static_cast<off_t>(header.chunks[static_cast<size_t>(bad)].offset + 17);
    unsigned char b = 0;
    ASSERT_EQ(::pread(fd.get(), &b, 1, at), 1);
    b ^= 0x40;
    ASSERT_EQ(::pwrite(fd.get(), &b, 1, at), 1);
  }
  std::vector<CodecMeasurement> quality;
  const std::vector<PointResult> points = run_sweep(*f.choice.backend, f.config, nullptr, &quality);
  ASSERT_EQ(points.size(), 1u);
  const RequestOutcome& o = points[0].reps.at(0);
  EXPECT_EQ(o.chunks_recovered, 1);
  EXPECT_EQ(o.chunks_loaded, 9);
  ASSERT_EQ(o.recovery_reasons.size(), 1u);
  EXPECT_NE(o.recovery_reasons[0].find("checksum mismatch"), std::string::npos) << o.recovery_reasons[0];
  ASSERT_EQ(quality.size(), 1u);
  EXPECT_EQ(quality[0].chunks_loaded, 9);  // the quality run recovered the same chunk
}
