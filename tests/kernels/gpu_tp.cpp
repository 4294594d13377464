// Tensor parallelism on the GPUs (needs 2; skips with the reason otherwise): NCCL's bf16 sum as
// loaded at run time, TP=2 against TP=1 on llama-3-8b (first token equal, logits' relative error
// reported and bounded: the row-split sums add in another order, in bf16), the KV shards against
// the unsplit cache's heads, and gated prefills stopping at the same layer on every rank.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "common/cuda_check.hpp"
#include "common/cuda_raii.hpp"
#include "common/error.hpp"
#include "kernels/cuda/cuda_backend.hpp"
#include "kernels/cuda/nccl_lib.hpp"
#include "kernels/cuda/tp_backend.hpp"
#include "kernels/presets.hpp"
#include "kernels/tp_shard.hpp"
#include "tests/kernels/gpu_support.hpp"
#include "tests/kernels/test_support.hpp"

namespace cake::test {
namespace {

int gpu_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
}

#define CAKE_REQUIRE_TWO_GPUS()                                                   \
  do {                                                                            \
    CAKE_REQUIRE_GPU();                                                           \
    if (gpu_count() < 2) GTEST_SKIP() << "tensor parallelism needs 2 GPUs, " << gpu_count() << " present"; \
  } while (0)

// The multi-process bootstrap's file (no GPU needed): what rank 0 writes, the others read back;
// a file for another world size, a foreign file and no file at all are refused.
TEST(TpBootstrap, UniqueIdFileRoundTripsAndRefusesForeignFiles) {
  TestRng rng;
  SCOPED_TRACE(rng.trace());
  char dir_template[] = "/tmp/cake-tp-id-XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  const std::string dir = dir_template, path = dir + "/id";
  nccl::UniqueId id{};
  for (auto& c : id.internal) c = static_cast<char>(rng.integer(-128, 127));
  nccl::write_unique_id_file(path, id, 2);
  const nccl::UniqueId back = nccl::read_unique_id_file(path, 2, 1.0);
  EXPECT_EQ(std::memcmp(back.internal, id.internal, nccl::kUniqueIdBytes), 0);
  EXPECT_THROW(nccl::read_unique_id_file(path, 4, 1.0), UsageError);
  EXPECT_THROW(nccl::read_unique_id_file(dir + "/missing", 2, 0.05), Error);
  {
    std::ofstream out(dir + "/foreign");
    out << "something else\n";
  }
  EXPECT_THROW(nccl::read_unique_id_file(dir + "/foreign", 2, 1.0), UsageError);
  std::filesystem::remove_all(dir);
}

TEST(GpuTp, NcclBf16SumOverTwoGpus) {
  CAKE_REQUIRE_TWO_GPUS();
  TestRng rng;
  SCOPED_TRACE(rng.trace());
  const nccl::Library& lib = nccl::Library::get();
  std::printf("NCCL %s\n", lib.version_text().c_str());
  const nccl::UniqueId id = lib.unique_id();
  const size_t count = static_cast<size_t>(rng.integer(1, 100000));
  // Small integers: their bf16 sum is exact, so the result is known bit for bit.
  std::vector<std::vector<float>> inputs(2);
  for (auto& in : inputs) {
    in.resize(count);
    for (auto& x : in) x = static_cast<float>(rng.integer(-64, 64));
  }
  std::vector<std::vector<uint16_t>> results(2);
  std::vector<std::thread> threads;
  std::vector<std::string> errors(2);
  for (int r = 0; r < 2; ++r)
    threads.emplace_back([&, r] {
      try {
        CAKE_CUDA(cudaSetDevice(r), "selecting a GPU");
        nccl::Communicator comm(2, id, r);
        cuda::Stream stream("nccl test stream");
        DeviceTensor<uint16_t> buf(count, stream.get());
        std::vector<float> in = inputs[r];
        buf.upload(round_to_bf16(in));
        lib.all_reduce_sum(buf.get(), buf.get(), count, nccl::DataType::bf16, comm.get(), stream.get(), "test all-reduce");
        stream.synchronize("the test all-reduce");
        results[r] = buf.download();
      } catch (const std::exception& e) {
        errors[r] = e.what();
      }
    });
  for (auto& t : threads) t.join();
  for (int r = 0; r < 2; ++r) ASSERT_EQ(errors[r], "") << "rank " << r;
  for (int r = 0; r < 2; ++r)
    for (size_t i = 0; i < count; ++i)
      ASSERT_EQ(bf16_value(results[r][i]), inputs[0][i] + inputs[1][i]) << "rank " << r << " element " << i;
}

FirstToken prefill_and_answer(ComputeBackend& b, const std::vector<int32_t>& prefix, const std::vector<int32_t>& suffix,
                              int chunk) {
  for (size_t pos = 0; pos < prefix.size(); pos += static_cast<size_t>(chunk)) {
    const size_t n = std::min(prefix.size() - pos, static_cast<size_t>(chunk));
    b.prefill_chunk(std::span<const int32_t>(prefix).subspan(pos, n), static_cast<int64_t>(pos));
  }
  b.synchronize();
  return b.first_token(suffix, static_cast<int64_t>(prefix.size()));
}

double logits_relative_error(const std::vector<float>& got, const std::vector<float>& want) {
  double worst = 0, scale = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    worst = std::max(worst, std::abs(static_cast<double>(got[i]) - want[i]));
    scale = std::max(scale, std::abs(static_cast<double>(want[i])));
  }
  return worst / scale;
}

// The unsplit model's KV heads of rank r, layer l (tokens [0, n)), against rank r's own cache.
double kv_shard_relative_error(const KvCacheView& full, const KvCacheView& shard, const TpShard& s, int layer,
                               int64_t n) {
  const size_t full_row = static_cast<size_t>(full.kv_heads) * full.head_dim;
  const size_t shard_row = static_cast<size_t>(shard.kv_heads) * shard.head_dim;
  std::vector<uint16_t> a(n * full_row), b(n * shard_row);
  CAKE_CUDA(cudaMemcpy(a.data(), full.k[layer], a.size() * 2, cudaMemcpyDeviceToHost), "reading K");
  CAKE_CUDA(cudaMemcpy(b.data(), shard.k[layer], b.size() * 2, cudaMemcpyDeviceToHost), "reading K shard");
  double worst = 0, scale = 0;
  for (int64_t t = 0; t < n; ++t)
    for (size_t j = 0; j < shard_row; ++j) {
      const double want = bf16_value(a[t * full_row + s.kv_heads.begin * full.head_dim + j]);
      worst = std::max(worst, std::abs(bf16_value(b[t * shard_row + j]) - want));
      scale = std::max(scale, std::abs(want));
    }
  return worst / scale;
}

TEST(GpuTp, TwoRanksGiveTheFirstTokenOfOneOnLlama3_8b) {
  CAKE_REQUIRE_TWO_GPUS();
  TestRng rng;
  SCOPED_TRACE(rng.trace());
  const ModelConfig m = preset_model("llama-3-8b");
  const int64_t context = 4096, chunk = 512;
  const std::vector<int32_t> prefix = rng.tokens(context, m.vocab), suffix = rng.tokens(32, m.vocab);
  BackendOptions o;
  o.max_context_tokens = context + 32;
  o.max_chunk_tokens = chunk;
  FirstToken one, two;
  KvCacheView one_view;
  {
    auto tp = make_cuda_tp_backend(m, o, {0, 1});
    std::printf("%s\n", tp->details().c_str());
    two = prefill_and_answer(*tp, prefix, suffix, chunk);
    // Layer 0's K shards against a TP=1 backend built alongside (GPU 0 holds both).
    o.device = 0;
    auto single = make_cuda_backend(m, o);
    one = prefill_and_answer(*single, prefix, suffix, chunk);
    for (int r = 0; r < 2; ++r) {
      const double e0 = kv_shard_relative_error(single->kv_cache(), tp->kv_shard(r), tp_shard(m, r, 2), 0, context);
      const double e_last =
          kv_shard_relative_error(single->kv_cache(), tp->kv_shard(r), tp_shard(m, r, 2), m.layers - 1, context);
      std::printf("rank %d K relative error vs TP=1: layer 0 %.3g, layer %d %.3g\n", r, e0, m.layers - 1, e_last);
      EXPECT_LT(e0, 1e-2) << "rank " << r;  // before any all-reduce: bf16 GEMMs of other shapes only
      EXPECT_LT(e_last, 0.1) << "rank " << r;
    }
  }
  const double rel = logits_relative_error(two.logits, one.logits);
  std::printf("llama-3-8b, %lld-token context: TP=1 first token %d, TP=2 first token %d, logits relative error %.3g\n",
              static_cast<long long>(context), one.token_id, two.token_id, rel);
  RecordProperty("logits_relative_error", std::to_string(rel));
  EXPECT_EQ(two.token_id, one.token_id);
  EXPECT_LT(rel, 0.05);  // bf16 residual stream over 32 layers, sums in another order
}

TEST(GpuTp, GatedPrefillStopsEveryRankAtTheSameLayer) {
  CAKE_REQUIRE_TWO_GPUS();
  TestRng rng;
  SCOPED_TRACE(rng.trace());
  ModelConfig m = preset_model("llama-3-8b");
  apply_model_override(m, "layers", "8");
  BackendOptions o;
  o.max_context_tokens = 1024;
  o.max_chunk_tokens = 256;
  auto tp = make_cuda_tp_backend(m, o, {0, 1});
  const std::vector<int32_t> tokens = rng.tokens(256, m.vocab);
  const int stop_at = static_cast<int>(rng.integer(1, m.layers * tp->gate_steps_per_layer() - 1));
  int asked = 0;
  const bool finished = tp->prefill_chunk_gated(tokens, 0, [&](int step) {
    ++asked;
    return step < stop_at;
  });
  tp->synchronize();
  EXPECT_FALSE(finished);
  EXPECT_EQ(asked, stop_at + 1);  // once per step for both ranks
  // The ranks still agree afterwards: a full prefill and a token run to the end.
  tp->prefill_chunk(tokens, 0);
  const FirstToken t = tp->first_token(std::span<const int32_t>(tokens).subspan(0, 8), 256);
  EXPECT_GE(t.token_id, 0);
}

}  // namespace
}  // namespace cake::test
