// The whole CUDA backend against the CPU reference backend (weights rounded to bf16 there too),
// and the properties the engine relies on: chunked == unchunked within bf16 tolerance, the same
// chunking twice bit for bit, KV chunks copied in from elsewhere usable as if computed, rows
// outside the prefilled range untouched.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <iostream>
#include <memory>
#include <vector>

#include <gtest/gtest.h>

#include "common/cuda_check.hpp"
#include "kernels/cpu/cpu_backend.hpp"
#include "kernels/cuda/cuda_backend.hpp"
#include "kernels/cuda/cudnn_attention.hpp"
#include "kernels/presets.hpp"
#include "tests/kernels/gpu_support.hpp"
#include "tests/kernels/test_support.hpp"

namespace cake::test {
namespace {

// Tokens [0, tokens) of layer `layer`'s K (or V) as floats, from either backend's cache.
std::vector<float> kv_rows(const KvCacheView& view, int layer, bool k, int64_t tokens) {
  const size_t count = static_cast<size_t>(tokens) * view.kv_heads * view.head_dim;
  const std::byte* base = k ? view.k[layer] : view.v[layer];
  std::vector<float> out(count);
  if (view.memory == MemoryKind::host) {
    EXPECT_EQ(view.dtype, DType::f32);
    std::memcpy(out.data(), base, count * sizeof(float));
  } else {
    EXPECT_EQ(view.dtype, DType::bf16);
    std::vector<uint16_t> bits(count);
    CAKE_CUDA(cudaMemcpy(bits.data(), base, count * sizeof(uint16_t), cudaMemcpyDeviceToHost), "reading the KV cache");
    out = bf16_to_float(bits);
  }
  return out;
}

std::vector<float> all_kv(const KvCacheView& view, int64_t tokens) {
  std::vector<float> out;
  for (int l = 0; l < view.layers; ++l)
    for (bool k : {true, false}) {
      const std::vector<float> rows = kv_rows(view, l, k, tokens);
      out.insert(out.end(), rows.begin(), rows.end());
    }
  return out;
}

// Prefills `tokens` in chunks of the given sizes starting at position 0.
void prefill(ComputeBackend& b, const std::vector<int32_t>& tokens, const std::vector<int>& chunks) {
  int64_t pos = 0;
  for (int len : chunks) {
    b.prefill_chunk(std::span<const int32_t>(tokens.data() + pos, len), pos);
    pos += len;
  }
  ASSERT_EQ(pos, static_cast<int64_t>(tokens.size()));
  b.synchronize();
}

// Three random chunk sizes summing to n (n >= 3).
std::vector<int> three_chunks(int n, TestRng& rng) {
  const int a = static_cast<int>(rng.integer(1, n - 2));
  const int b = static_cast<int>(rng.integer(1, n - a - 1));
  return {a, b, n - a - b};
}

ModelConfig head_dim_128_layer() {
  ModelConfig m;
  m.name = "test-hd128-one-layer";
  m.layers = 1;
  m.hidden = 512;
  m.q_heads = 8;
  m.kv_heads = 2;
  m.head_dim = 128;
  m.ffn = 1024;
  m.vocab = 2000;
  m.rope_theta = 500000.0;
  m.max_context = 8192;
  m.weight_seed = 7;
  return m;
}

void compare_with_cpu(const ModelConfig& model, TestRng& rng, double kv_bound, double logits_bound,
                      AttentionChoice attention = AttentionChoice::auto_select) {
  const int prefix = static_cast<int>(rng.integer(100, 700));
  const int suffix = static_cast<int>(rng.integer(1, 40));
  BackendOptions options;
  options.attention = attention;
  options.max_context_tokens = prefix + suffix;
  options.max_chunk_tokens = prefix;
  const std::vector<int32_t> tokens = rng.tokens(prefix, model.vocab);
  const std::vector<int32_t> tail = rng.tokens(suffix, model.vocab);
  const std::vector<int> chunks = three_chunks(prefix, rng);
  SCOPED_TRACE(cat(model.name, ": prefix ", prefix, " in chunks ", chunks[0], "+", chunks[1], "+", chunks[2],
                   ", suffix ", suffix));

  auto gpu = make_cuda_backend(model, options);
  SCOPED_TRACE(gpu->details());
  auto cpu = make_cpu_backend(model, options, CpuBackendOptions{.round_weights_to_bf16 = true});
  gpu->poison_kv_cache();
  cpu->poison_kv_cache();
  prefill(*gpu, tokens, chunks);
  prefill(*cpu, tokens, chunks);
  const FirstToken g = gpu->first_token(tail, prefix);
  const FirstToken c = cpu->first_token(tail, prefix);

  const int64_t written = prefix + suffix;
  for (int l = 0; l < model.layers; ++l)
    for (bool k : {true, false}) {
      const std::vector<float> got = kv_rows(gpu->kv_cache(), l, k, written);
      const double err = l2_relative_error(got, kv_rows(cpu->kv_cache(), l, k, written));
      std::cout << model.name << " layer " << l << (k ? " K" : " V") << " rel err " << err << "\n";
      EXPECT_EQ(count_nan(got), 0u) << "layer " << l;
      EXPECT_LT(err, kv_bound) << "layer " << l << (k ? " K" : " V");
    }
  ASSERT_EQ(g.logits.size(), static_cast<size_t>(model.vocab));
  const double logits_err = l2_relative_error(g.logits, c.logits);
  std::cout << model.name << " logits rel err " << logits_err << ", token gpu " << g.token_id << " cpu " << c.token_id
            << "\n";
  EXPECT_LT(logits_err, logits_bound);
  EXPECT_EQ(g.token_id, static_cast<int32_t>(std::max_element(g.logits.begin(), g.logits.end()) - g.logits.begin()));
  if (g.token_id != c.token_id) {
    // Only a near tie may flip: the reference's margin between the two ids must be within the
    // logits' own error.
    double sq = 0;
    for (size_t i = 0; i < g.logits.size(); ++i) sq += std::pow(double(g.logits[i]) - c.logits[i], 2);
    const double rms_diff = std::sqrt(sq / g.logits.size());
    EXPECT_LE(c.logits[c.token_id] - c.logits[g.token_id], 4 * rms_diff)
        << "argmax differs (gpu " << g.token_id << ", cpu " << c.token_id << ") by more than the error explains";
  }
}

TEST(GpuBackend, TinyModelMatchesCpuBackend) {
  CAKE_REQUIRE_GPU();
  TestRng rng;
  SCOPED_TRACE(rng.trace());
  // bf16 activations and residual stream over 4 layers against an fp32 reference.
  compare_with_cpu(preset_model("tiny"), rng, 3e-2, 3e-2);
}

TEST(GpuBackend, OneLayerWithHeadDim128MatchesCpuBackend) {
  CAKE_REQUIRE_GPU();
  TestRng rng;
  SCOPED_TRACE(rng.trace());
  compare_with_cpu(head_dim_128_layer(), rng, 1e-2, 2e-2);
}

// Each attention path explicitly (auto above takes cuDNN when this build has it).
TEST(GpuBackend, OneLayerWithHeadDim128MatchesCpuBackendOnEachAttentionPath) {
  CAKE_REQUIRE_GPU();
  TestRng rng;
  SCOPED_TRACE(rng.trace());
  {
    SCOPED_TRACE("--attention mma");
    compare_with_cpu(head_dim_128_layer(), rng, 1e-2, 2e-2, AttentionChoice::mma);
  }
  if (!cuda::cudnn_attention_built()) GTEST_SKIP() << "cuDNN path: " << cuda::cudnn_version_text();
  SCOPED_TRACE("--attention cudnn");
  compare_with_cpu(head_dim_128_layer(), rng, 1e-2, 2e-2, AttentionChoice::cudnn);
}

TEST(GpuBackend, ReportsWhichAttentionRuns) {
  CAKE_REQUIRE_GPU();
  const ModelConfig model = head_dim_128_layer();
  BackendOptions options;
  options.max_context_tokens = 256;
  options.max_chunk_tokens = 128;
  options.attention = AttentionChoice::mma;
  EXPECT_NE(make_cuda_backend(model, options)->details().find("attention: mma"), std::string::npos);
  options.attention = AttentionChoice::cudnn;
  if (!cuda::cudnn_attention_built()) {
    EXPECT_THROW(make_cuda_backend(model, options), EnvironmentError);
    return;
  }
  const std::string details = make_cuda_backend(model, options)->details();
  std::cout << details << "\n";
  EXPECT_NE(details.find("attention: cudnn"), std::string::npos);
}

TEST(GpuBackend, ChunkedKvMatchesUnchunkedAndRepeatsBitForBit) {
  CAKE_REQUIRE_GPU();
  TestRng rng;
  SCOPED_TRACE(rng.trace());
  const ModelConfig model = preset_model("tiny");
  const int n = static_cast<int>(rng.integer(200, 900));
  BackendOptions options;
  options.max_context_tokens = n + 8;
  options.max_chunk_tokens = n;
  const std::vector<int32_t> tokens = rng.tokens(n, model.vocab);
  const std::vector<int32_t> tail = rng.tokens(8, model.vocab);
  const std::vector<int> chunks = three_chunks(n, rng);
  SCOPED_TRACE(cat("n ", n, " chunks ", chunks[0], "+", chunks[1], "+", chunks[2]));
  auto gpu = make_cuda_backend(model, options);

  gpu->poison_kv_cache();
  prefill(*gpu, tokens, {n});
  const std::vector<float> whole = all_kv(gpu->kv_cache(), n);

  gpu->poison_kv_cache();
  prefill(*gpu, tokens, chunks);
  const std::vector<float> chunked = all_kv(gpu->kv_cache(), n);
  const FirstToken first = gpu->first_token(tail, n);
  const double err = l2_relative_error(chunked, whole);
  std::cout << "chunked vs unchunked KV rel err " << err << "\n";
  EXPECT_LT(err, 1e-2);

  gpu->poison_kv_cache();
  prefill(*gpu, tokens, chunks);
  const std::vector<float> again = all_kv(gpu->kv_cache(), n);
  const FirstToken first_again = gpu->first_token(tail, n);
  EXPECT_TRUE(std::memcmp(again.data(), chunked.data(), again.size() * sizeof(float)) == 0)
      << "the same chunking twice must give the same KV bits";
  EXPECT_TRUE(first_again.logits == first.logits) << "and the same logits";
}

TEST(GpuBackend, CopiedChunksServeLikeComputedOnes) {
  CAKE_REQUIRE_GPU();
  TestRng rng;
  SCOPED_TRACE(rng.trace());
  const ModelConfig model = preset_model("tiny");
  const int chunk = static_cast<int>(rng.integer(50, 200));
  const int n = 3 * chunk;
  BackendOptions options;
  options.max_context_tokens = n + 16;
  options.max_chunk_tokens = chunk;
  const std::vector<int32_t> tokens = rng.tokens(n, model.vocab);
  const std::vector<int32_t> tail = rng.tokens(16, model.vocab);
  auto computed = make_cuda_backend(model, options);
  auto loaded = make_cuda_backend(model, options);
  computed->poison_kv_cache();
  loaded->poison_kv_cache();
  prefill(*computed, tokens, {chunk, chunk, chunk});
  // The load lane's job, done by hand: chunks 1 and 2 copied segment by segment while chunk 0 is computed.
  const KvCacheView src = computed->kv_cache();
  const KvCacheView dst = loaded->kv_cache();
  loaded->prefill_chunk(std::span<const int32_t>(tokens.data(), chunk), 0);
  for (int s = 0; s < 2 * model.layers; ++s)
    CAKE_CUDA(cudaMemcpy(dst.segment_ptr(s, chunk), src.segment_ptr(s, chunk), src.segment_bytes(2 * chunk),
                         cudaMemcpyDeviceToDevice),
              "copying KV segments");
  // cudaMemcpy between device buffers may return before it is done, on the legacy stream that
  // the backend's non-blocking stream does not wait for: wait here, as the engine's copy events do.
  CAKE_CUDA(cudaDeviceSynchronize(), "waiting for the KV copies");
  const FirstToken a = computed->first_token(tail, n);
  const FirstToken b = loaded->first_token(tail, n);
  EXPECT_TRUE(a.logits == b.logits) << "identical KV must give identical logits";
  EXPECT_EQ(a.token_id, b.token_id);
}

TEST(GpuBackend, LeavesRowsOutsideThePrefillPoisoned) {
  CAKE_REQUIRE_GPU();
  TestRng rng;
  SCOPED_TRACE(rng.trace());
  const ModelConfig model = preset_model("tiny");
  const int first = static_cast<int>(rng.integer(1, 300));
  const int n = static_cast<int>(rng.integer(1, 300));
  BackendOptions options;
  options.max_context_tokens = first + n + 50;
  options.max_chunk_tokens = first + n;
  auto gpu = make_cuda_backend(model, options);
  gpu->poison_kv_cache();
  const std::vector<int32_t> tokens = rng.tokens(first + n, model.vocab);
  // Rows [0, first) stay NaN: the chunk at `first` reads them, so its own KV turns NaN from layer 0's
  // V on (that is what poisoning is for); rows past first + n must stay NaN untouched.
  gpu->prefill_chunk(std::span<const int32_t>(tokens.data() + first, n), first);
  gpu->synchronize();
  const std::vector<float> k0 = kv_rows(gpu->kv_cache(), 0, true, options.max_context_tokens);
  const size_t row = static_cast<size_t>(model.kv_heads) * model.head_dim;
  size_t written_outside = 0, nan_inside = 0;
  for (size_t i = 0; i < k0.size(); ++i) {
    const bool inside = i >= first * row && i < (first + n) * row;
    if (!inside && !std::isnan(k0[i])) ++written_outside;
    if (inside && std::isnan(k0[i])) ++nan_inside;
  }
  EXPECT_EQ(written_outside, 0u);
  EXPECT_EQ(nan_inside, 0u) << "layer 0's K of the chunk depends on its own tokens only";
}

TEST(GpuBackend, RejectsBadChunks) {
  CAKE_REQUIRE_GPU();
  const ModelConfig model = preset_model("tiny");
  BackendOptions options;
  options.max_context_tokens = 100;
  options.max_chunk_tokens = 50;
  auto gpu = make_cuda_backend(model, options);
  const std::vector<int32_t> ok(10, 1);
  const std::vector<int32_t> too_long(51, 1);
  const std::vector<int32_t> bad_id{1, model.vocab, 2};
  EXPECT_THROW(gpu->prefill_chunk(too_long, 0), InternalError);
  EXPECT_THROW(gpu->prefill_chunk(ok, 95), InternalError);
  EXPECT_THROW(gpu->prefill_chunk(ok, -1), InternalError);
  EXPECT_THROW(gpu->prefill_chunk(bad_id, 0), UsageError);
  EXPECT_THROW(gpu->first_token({}, 0), InternalError);
  EXPECT_NO_THROW(gpu->prefill_chunk(ok, 90));
  gpu->synchronize();
}

}  // namespace
}  // namespace cake::test
