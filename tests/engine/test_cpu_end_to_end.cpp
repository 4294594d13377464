// The engine end to end on the CPU backend with REAL sources: a store file read through io_uring,
// the store held in memory, and a TCP server on 127.0.0.1. Every mode must reproduce compute-only's
// first token, logits and KV; injected load faults must be recovered.
#include <gtest/gtest.h>

#include <filesystem>
#include <random>

#include "engine/sweep.hpp"
#include "kernels/backend_factory.hpp"
#include "kernels/presets.hpp"
#include "workloads/synthetic.hpp"

using namespace cake;

namespace {

struct TempDir {
  std::string path;
  explicit TempDir(uint64_t seed)
      : path((std::filesystem::temp_directory_path() / ("cake-e2e-" + std::to_string(seed))).string()) {}
  ~TempDir() { std::filesystem::remove_all(path); }
};

SweepConfig small_sweep(const ModelConfig& model, uint64_t seed, const std::string& dir) {
  SweepConfig c;
  c.requests = {synthetic_request(600, 16, model.vocab, seed)};  // 10 chunks, the last one short
  c.chunk_tokens = {64};
  for (const char* m : {"compute", "io", "cake", "split=0.3", "oracle"}) c.modes.push_back(parse_mode(m));
  c.bandwidths = {std::nullopt, 4e6};  // unlimited and 32 Mbit/s
  c.sources = {parse_source_spec("file"), parse_source_spec("mem"), parse_source_spec("tcp")};
  c.store_dir = dir;
  c.repeat = 1;
  c.warmup = 0;
  c.verify = VerifyLevel::full;
  return c;
}

// A fresh seed, a temporary store directory and a CPU backend sized for small_sweep().
struct Fixture {
  const uint64_t seed = std::random_device{}();
  const ModelConfig model = preset_model("tiny-mha");
  TempDir dir{seed};
  BackendChoice choice;
  Fixture() {
    BackendOptions options;
    options.max_context_tokens = 640;
    options.max_chunk_tokens = 64;
    choice = make_backend(BackendKind::cpu, model, options);
  }
};

}  // namespace

TEST(EndToEnd, EveryModeAndSourceMatchesComputeOnlyOnTheCpu) {
  Fixture f;
  SCOPED_TRACE(testing::Message() << "seed " << f.seed);
  const SweepConfig config = small_sweep(f.model, f.seed, f.dir.path);

  const std::vector<PointResult> points = run_sweep(*f.choice.backend, config, nullptr);
  // compute once per (source, bandwidth) group + 4 loading modes per group.
  EXPECT_EQ(points.size(), config.sources.size() * config.bandwidths.size() * 5);
  for (const PointResult& p : points) {
    SCOPED_TRACE(p.source + " " + p.throttle + " " + p.mode.name());
    EXPECT_TRUE(p.verification.passed) << p.verification.detail;
    ASSERT_EQ(p.reps.size(), 1u);
    const RequestOutcome& o = p.reps[0];
    EXPECT_EQ(o.chunks_total, 10);
    EXPECT_EQ(o.chunks_computed + o.chunks_loaded, 10);
    EXPECT_EQ(o.chunks_recovered, 0);
    if (p.mode.kind == ModeKind::io) {
      EXPECT_EQ(o.chunks_loaded, 10);
      EXPECT_GT(o.bytes_loaded, 0u);
    }
    if (p.mode.kind == ModeKind::split) {
      EXPECT_EQ(o.chunks_computed, 3);
    }
  }
}

TEST(EndToEnd, InjectedLoadFaultsAreRecoveredAndReported) {
  Fixture f;
  SCOPED_TRACE(testing::Message() << "seed " << f.seed);
  SweepConfig config = small_sweep(f.model, f.seed, f.dir.path);
  config.modes = {parse_mode("io"), parse_mode("cake")};
  config.sources = {parse_source_spec("file")};
  // Fast enough that Cake's first claim (weighed at the throttle's rate against the compute lane's
  // pace) is chunk 9 whatever this machine's speed.
  config.bandwidths = {4e9};
  config.source_options.inject_fail_chunks = {9, 4};

  for (const PointResult& p : run_sweep(*f.choice.backend, config, nullptr)) {
    SCOPED_TRACE(p.mode.name());
    EXPECT_TRUE(p.verification.passed) << p.verification.detail;
    const RequestOutcome& o = p.reps.at(0);
    EXPECT_EQ(o.chunks_computed + o.chunks_loaded + o.chunks_recovered, 10);
    if (p.mode.kind == ModeKind::io) {
      EXPECT_EQ(o.chunks_recovered, 2);
    }
    if (p.mode.kind == ModeKind::cake) {
      EXPECT_GE(o.chunks_recovered, 1);  // chunk 9 is the load lane's first
    }
    for (const std::string& why : o.recovery_reasons) EXPECT_NE(why.find("injected fault"), std::string::npos) << why;
  }
}
