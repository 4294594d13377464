// The tensor-parallel load path of the engine on the CPU: a backend whose KV cache is held in two
// shards (two CPU backends of the per-rank model shape, each one "rank"), so the sweep writes a
// store shard per rank, builds a load lane per rank and agrees claims through rank 0
// (engine/sharded_load.hpp). Every loading mode must reproduce compute-only's first token and the
// KV of every shard, with real file and memory sources, a throttle per lane or one shared; a chunk
// whose shard fails on one rank is recomputed. (The ranks here compute independently, no
// all-reduce: what is under test is the engine's sharded loading, not the model split, which
// test_tp_shard and the GPU tests cover.)
#include <gtest/gtest.h>

#include <filesystem>
#include <mutex>
#include <random>

#include "engine/sweep.hpp"
#include "kernels/cpu/cpu_backend.hpp"
#include "kernels/presets.hpp"
#include "kernels/tp_shard.hpp"
#include "workloads/synthetic.hpp"

using namespace cake;

namespace {

class TwoShardCpuBackend final : public ComputeBackend {
 public:
  TwoShardCpuBackend(const ModelConfig& model, const BackendOptions& options) : model_(model) {
    const ModelConfig local = tp_local_model(model, 2);
    for (int r = 0; r < 2; ++r) ranks_.push_back(make_cpu_backend(local, options));
    view_ = ranks_[0]->kv_cache();
    view_.layers *= 2;
    for (int r = 1; r < 2; ++r) {
      const KvCacheView s = ranks_[r]->kv_cache();
      view_.k.insert(view_.k.end(), s.k.begin(), s.k.end());
      view_.v.insert(view_.v.end(), s.v.begin(), s.v.end());
    }
  }
  std::string name() const override { return "cpu-two-shards"; }
  const ModelConfig& model() const override { return model_; }
  KvCacheView kv_cache() const override { return view_; }
  void prefill_chunk(std::span<const int32_t> t, int64_t p) override {
    for (auto& r : ranks_) r->prefill_chunk(t, p);
  }
  int gate_steps_per_layer() const override { return ranks_[0]->gate_steps_per_layer(); }
  bool prefill_chunk_gated(std::span<const int32_t> t, int64_t p, const LayerGate& gate) override {
    std::vector<char> decided;  // one answer per step for both ranks, as the CUDA TP backend does
    const LayerGate shared = [&](int step) {
      if (step == static_cast<int>(decided.size())) decided.push_back(gate(step) ? 1 : 0);
      return decided.at(static_cast<size_t>(step)) != 0;
    };
    bool went_on = true;
    for (auto& r : ranks_) went_on = r->prefill_chunk_gated(t, p, shared);
    return went_on;
  }
  void synchronize() override {
    for (auto& r : ranks_) r->synchronize();
  }
  FirstToken first_token(std::span<const int32_t> s, int64_t p) override {
    FirstToken out = ranks_[0]->first_token(s, p);
    ranks_[1]->first_token(s, p);
    return out;
  }
  void poison_kv_cache() override {
    for (auto& r : ranks_) r->poison_kv_cache();
  }
  int kv_shard_count() const override { return 2; }
  KvCacheView kv_shard(int shard) const override { return ranks_.at(static_cast<size_t>(shard))->kv_cache(); }
  std::string kv_shard_tag(int shard) const override { return tp_store_suffix(tp_shard(model_, shard, 2)); }

 private:
  ModelConfig model_;
  std::vector<std::unique_ptr<ComputeBackend>> ranks_;
  KvCacheView view_;
};

struct TempDir {
  std::string path;
  explicit TempDir(uint64_t seed)
      : path((std::filesystem::temp_directory_path() / ("cake-sharded-" + std::to_string(seed))).string()) {}
  ~TempDir() { std::filesystem::remove_all(path); }
};

SweepConfig sharded_sweep(const ModelConfig& model, uint64_t seed, const std::string& dir) {
  SweepConfig c;
  c.requests = {synthetic_request(600, 16, model.vocab, seed)};  // 10 chunks, the last one short
  c.chunk_tokens = {64};
  for (const char* m : {"compute", "io", "cake", "split=0.3", "oracle"}) c.modes.push_back(parse_mode(m));
  c.bandwidths = {std::nullopt, 4e6};
  c.sources = {parse_source_spec("file"), parse_source_spec("mem")};
  c.store_dir = dir;
  c.repeat = 1;
  c.warmup = 0;
  c.verify = VerifyLevel::full;
  return c;
}

struct Fixture {
  const uint64_t seed = std::random_device{}();
  const ModelConfig model = preset_model("tiny");  // 2 KV heads: one a rank
  TempDir dir{seed};
  std::unique_ptr<TwoShardCpuBackend> backend;
  Fixture() {
    BackendOptions options;
    options.max_context_tokens = 640;
    options.max_chunk_tokens = 64;
    options.cpu_threads = 1;
    backend = std::make_unique<TwoShardCpuBackend>(model, options);
  }
};

void expect_all_verified(const std::vector<PointResult>& points, int chunks, bool faults) {
  for (const PointResult& p : points) {
    SCOPED_TRACE(p.source + " " + p.throttle + " " + p.mode.name());
    EXPECT_TRUE(p.verification.passed) << p.verification.detail;
    ASSERT_EQ(p.reps.size(), 1u);
    const RequestOutcome& o = p.reps[0];
    EXPECT_EQ(o.chunks_computed + o.chunks_loaded + o.chunks_recovered, chunks);
    if (!faults) {
      EXPECT_EQ(o.chunks_recovered, 0);
    }
    for (const ChunkEvent& e : o.timeline) {
      if (e.lane != Lane::load || !e.ok) continue;
      EXPECT_GE(e.claim_spread_ns, 0);
    }
    if (p.mode.kind == ModeKind::io && !faults) {
      EXPECT_EQ(o.chunks_loaded, chunks);
      EXPECT_GT(o.bytes_loaded, 0u);
    }
  }
}

}  // namespace

TEST(ShardedLoad, EveryModeMatchesComputeOnlyWithAStoreShardAndALaneARank) {
  Fixture f;
  SCOPED_TRACE(testing::Message() << "seed " << f.seed);
  const SweepConfig config = sharded_sweep(f.model, f.seed, f.dir.path);
  const std::vector<PointResult> points = run_sweep(*f.backend, config, nullptr);
  EXPECT_EQ(points.size(), config.sources.size() * config.bandwidths.size() * 5);
  expect_all_verified(points, 10, false);
  // One store shard a rank, and the loaded bytes of io-only are both shards' (the whole cache).
  int stores = 0;
  for (const auto& entry : std::filesystem::directory_iterator(f.dir.path)) stores += entry.is_regular_file();
  EXPECT_EQ(stores, 2);
  for (const PointResult& p : points) {
    if (p.mode.kind == ModeKind::io) {
      EXPECT_EQ(p.reps[0].bytes_loaded, f.backend->kv_cache().chunk_bytes(64) * 9 + f.backend->kv_cache().chunk_bytes(600 - 9 * 64));
    }
  }
}

TEST(ShardedLoad, OneSharedThrottleAndFailedShardsAreRecovered) {
  Fixture f;
  SCOPED_TRACE(testing::Message() << "seed " << f.seed);
  SweepConfig config = sharded_sweep(f.model, f.seed, f.dir.path);
  config.shared_throttle = true;
  config.sources = {parse_source_spec("file")};
  config.source_options.inject_fail_chunks = {2, 7};  // every rank's shard of these fails
  const std::vector<PointResult> points = run_sweep(*f.backend, config, nullptr);
  expect_all_verified(points, 10, true);
  for (const PointResult& p : points) {
    if (p.mode.kind == ModeKind::io) {
      EXPECT_EQ(p.reps[0].chunks_recovered, 2);
    }
  }
}

// ---- run_sharded_load alone --------------------------------------------------------------------

#include <atomic>
#include <cstring>
#include <map>

#include "engine/sharded_load.hpp"
#include "loaders/mem_source.hpp"
#include "tests/loaders/store_fixture.hpp"

namespace {

struct ShardCache {
  std::vector<std::vector<std::byte>> tensors;
  KvCacheView view;
  explicit ShardCache(const StoreHeader& h) {
    view.memory = MemoryKind::host;
    view.dtype = h.key.dtype;
    view.layers = h.layers;
    view.kv_heads = h.kv_heads;
    view.head_dim = h.head_dim;
    view.capacity_tokens = h.key.token_count;
    for (int l = 0; l < 2 * h.layers; ++l) {
      tensors.emplace_back(view.segment_bytes(h.key.token_count), std::byte{0xEE});
      (l % 2 == 0 ? view.k : view.v).push_back(tensors.back().data());
    }
  }
};

}  // namespace

// The engine's claim says "later" while a chunk is in flight (as the meet guard does). Rank 0's
// shard lands long before the slow rank 1's, so rank 0's pipeline has nothing in flight when it is
// told "later": it must wait for the merged chunk, not stop (seen on two H200s: the load lane of a
// Cake run loaded one chunk and stopped). Every chunk must arrive, each once, each rank's bytes in
// its own cache.
TEST(ShardedLoad, RankZeroWaitsForTheSlowRankInsteadOfStopping) {
  cake::test::Seeded s;
  cake::test::TempDir dir;
  const int chunks = 6;
  std::vector<cake::test::WrittenStore> stores;
  std::vector<std::unique_ptr<ShardCache>> caches;
  for (int r = 0; r < 2; ++r) {
    const StoreHeader shape = cake::test::make_header(2, 1, 32, DType::bf16, 64 * chunks, 64, 0x77, cat("shard", r));
    stores.push_back(cake::test::write_random_store(dir.file(cat("shard", r, ".kvstore")), shape, s.rng));
    caches.push_back(std::make_unique<ShardCache>(shape));
  }
  // Rank 1 at 2 MB/s: each 16 KiB chunk takes ~8 ms there, ~nothing on rank 0.
  const std::unique_ptr<Throttle> slow = make_throttle(2e6, "");
  MemSource fast_source(stores[0].path), slow_source(stores[1].path, {}, slow.get());
  LoadPipeline p0(fast_source, caches[0]->view, 64, {.staging_slots = 2});
  LoadPipeline p1(slow_source, caches[1]->view, 64, {.staging_slots = 2});
  std::vector<LoadShard> shards{{&p0, stores[0].header.key, -1, nullptr}, {&p1, stores[1].header.key, -1, slow.get()}};

  std::mutex mutex;
  int next = chunks - 1, in_flight = 0;
  std::map<int, int> reported;
  const LoadPipeline::ClaimFn claim = [&]() -> std::optional<int> {
    std::lock_guard lock(mutex);
    if (in_flight > 0) return LoadPipeline::kClaimLater;
    if (next < 0) return std::nullopt;
    ++in_flight;
    return next--;
  };
  const ShardedDoneFn done = [&](const LoadedChunk& c, int64_t spread) {
    std::lock_guard lock(mutex);
    --in_flight;
    ++reported[c.chunk];
    EXPECT_TRUE(c.ok) << c.error;
    EXPECT_GE(spread, 0);
    EXPECT_EQ(c.bytes, stores[0].header.chunks[c.chunk].bytes + stores[1].header.chunks[c.chunk].bytes);
  };
  run_sharded_load(shards, [] {}, claim, done);
  ASSERT_EQ(static_cast<int>(reported.size()), chunks);
  for (const auto& [chunk, count] : reported) EXPECT_EQ(count, 1) << "chunk " << chunk;
  for (int r = 0; r < 2; ++r)
    for (int c = 0; c < chunks; ++c) {
      const KvCacheView& v = caches[r]->view;
      const std::vector<std::byte>& payload = stores[r].payloads[c];
      for (int seg = 0; seg < 2 * v.layers; ++seg)
        ASSERT_EQ(std::memcmp(v.segment_ptr(seg, c * 64), payload.data() + seg * v.segment_bytes(64), v.segment_bytes(64)), 0)
            << "rank " << r << " chunk " << c << " segment " << seg;
    }
}
