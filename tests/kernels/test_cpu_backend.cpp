// The CPU backend as a whole: against a float64 forward pass, chunking invariance, determinism,
// poisoned KV, large positions and option errors.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <iostream>
#include <vector>

#include <gtest/gtest.h>

#include "common/error.hpp"
#include "kernels/cpu/cpu_backend.hpp"
#include "kernels/presets.hpp"
#include "tests/kernels/reference_model.hpp"
#include "tests/kernels/test_support.hpp"

namespace cake {
namespace {

using test::TestRng;

BackendOptions options(int64_t context, int64_t chunk) {
  BackendOptions o;
  o.max_context_tokens = context;
  o.max_chunk_tokens = chunk;
  return o;
}

// Tokens [t0, t0 + n) of layer l's K or V as floats.
std::vector<float> kv_rows(const KvCacheView& kv, int layer, bool value, int64_t t0, int64_t n) {
  const auto* base = reinterpret_cast<const float*>(value ? kv.v[layer] : kv.k[layer]);
  const int64_t w = static_cast<int64_t>(kv.kv_heads) * kv.head_dim;
  return std::vector<float>(base + t0 * w, base + (t0 + n) * w);
}

// The whole written KV [0, tokens) of every layer, K then V.
std::vector<float> kv_snapshot(const KvCacheView& kv, int64_t tokens) {
  std::vector<float> all;
  for (int l = 0; l < kv.layers; ++l)
    for (bool value : {false, true}) {
      const auto rows = kv_rows(kv, l, value, 0, tokens);
      all.insert(all.end(), rows.begin(), rows.end());
    }
  return all;
}

// fp32 backend against the float64 forward pass: the KV rows of every layer and the logits.
void check_against_reference(const std::string& preset, bool bf16) {
  TestRng rng;
  SCOPED_TRACE(rng.trace());
  SCOPED_TRACE(preset + (bf16 ? " with bf16 weights" : ""));
  const ModelConfig m = preset_model(preset);
  const int64_t prefix = 9, suffix = 4;
  const auto tokens = rng.tokens(prefix + suffix, m.vocab);
  const auto want = test::reference_forward(m, tokens, bf16);

  CpuBackendOptions cpu_options;
  cpu_options.round_weights_to_bf16 = bf16;
  auto backend = make_cpu_backend(m, options(64, 16), cpu_options);
  backend->poison_kv_cache();
  backend->prefill_chunk(std::span(tokens).first(prefix), 0);
  backend->synchronize();
  const FirstToken got = backend->first_token(std::span(tokens).subspan(prefix), prefix);

  // Four layers of fp32 against fp64: each op adds ~1e-6 relative, so 2e-5 leaves room and
  // still catches any wrong weight slice, RoPE position or head mapping (those are O(1)).
  constexpr double kTolerance = 2e-5;
  const KvCacheView kv = backend->kv_cache();
  for (int l = 0; l < m.layers; ++l) {
    SCOPED_TRACE(testing::Message() << "layer " << l);
    EXPECT_LT(test::relative_error(kv_rows(kv, l, false, 0, prefix + suffix), want.k[l]), kTolerance);
    EXPECT_LT(test::relative_error(kv_rows(kv, l, true, 0, prefix + suffix), want.v[l]), kTolerance);
  }
  EXPECT_LT(test::relative_error(got.logits, want.logits), kTolerance);
  const auto best = std::max_element(want.logits.begin(), want.logits.end()) - want.logits.begin();
  EXPECT_EQ(got.token_id, cpu::argmax(got.logits.data(), m.vocab));
  // The reference's argmax can only differ if two logits are within the fp32 noise.
  if (got.token_id != best) {
    EXPECT_NEAR(want.logits[got.token_id], want.logits[best], 1e-4 * test::max_abs(want.logits));
  }
}

TEST(CpuBackend, MatchesFloat64ForwardPassGqa) { check_against_reference("tiny", false); }
TEST(CpuBackend, MatchesFloat64ForwardPassMha) { check_against_reference("tiny-mha", false); }
TEST(CpuBackend, Bf16WeightsMatchFloat64ForwardPassWithBf16Weights) { check_against_reference("tiny", true); }

TEST(CpuBackend, Bf16WeightsChangeTheOutputOnlySlightly) {
  // Rounded weights change the output (so the option does something) but only a little.
  TestRng rng;
  SCOPED_TRACE(rng.trace());
  const ModelConfig m = preset_model("tiny-mha");
  const auto tokens = rng.tokens(6, m.vocab);
  CpuBackendOptions round;
  round.round_weights_to_bf16 = true;
  auto exact = make_cpu_backend(m, options(16, 8));
  auto rounded = make_cpu_backend(m, options(16, 8), round);
  const auto a = exact->first_token(tokens, 0);
  const auto b = rounded->first_token(tokens, 0);
  const double diff = test::relative_error(b.logits, a.logits);
  EXPECT_GT(diff, 0.0);
  EXPECT_LT(diff, 0.05);
}

// ~2000 prefix tokens of `tiny` as chunks of `chunk` tokens, then the suffix.
struct ChunkedRun {
  std::vector<float> kv;
  FirstToken first;
};

ChunkedRun run_chunked(ComputeBackend& backend, const std::vector<int32_t>& prefix, const std::vector<int32_t>& suffix,
                       int64_t chunk) {
  backend.poison_kv_cache();
  for (int64_t t0 = 0; t0 < static_cast<int64_t>(prefix.size()); t0 += chunk) {
    const int64_t n = std::min<int64_t>(chunk, static_cast<int64_t>(prefix.size()) - t0);
    backend.prefill_chunk(std::span(prefix).subspan(t0, n), t0);
  }
  backend.synchronize();
  ChunkedRun run;
  run.first = backend.first_token(suffix, static_cast<int64_t>(prefix.size()));
  run.kv = kv_snapshot(backend.kv_cache(), static_cast<int64_t>(prefix.size() + suffix.size()));
  return run;
}

TEST(CpuBackend, ChunkedPrefillEqualsSingleChunkAndIsDeterministic) {
  TestRng rng;
  SCOPED_TRACE(rng.trace());
  const ModelConfig m = preset_model("tiny");
  const int64_t prefix_tokens = 2000 + rng.integer(0, 48);
  const auto prefix = rng.tokens(prefix_tokens, m.vocab);
  const auto suffix = rng.tokens(16, m.vocab);
  auto backend = make_cpu_backend(m, options(4096, prefix_tokens));

  const ChunkedRun whole = run_chunked(*backend, prefix, suffix, prefix_tokens);
  ASSERT_TRUE(test::all_finite(whole.kv.data(), whole.kv.size()));
  ASSERT_TRUE(test::all_finite(whole.first.logits.data(), whole.first.logits.size()));

  // Different chunkings need only agree to fp32 noise (max |diff| / max |value| < 1e-5): this
  // backend happens to be bit-exact across chunkings (ops.hpp), which the test reports but
  // does not demand of other implementations.
  constexpr double kChunkingTolerance = 1e-5;
  for (int64_t chunk : {64, 256, 1000}) {
    SCOPED_TRACE(testing::Message() << "chunk " << chunk);
    const ChunkedRun run = run_chunked(*backend, prefix, suffix, chunk);
    const double kv_diff = test::relative_error(run.kv, whole.kv);
    const double logit_diff = test::relative_error(run.first.logits, whole.first.logits);
    EXPECT_LT(kv_diff, kChunkingTolerance);
    EXPECT_LT(logit_diff, kChunkingTolerance);
    EXPECT_EQ(run.first.token_id, whole.first.token_id);
    std::cout << "[ info     ] chunk " << chunk << ": KV diff " << kv_diff << ", logits diff " << logit_diff << "\n";

    if (chunk == 256) {
      // Determinism: the same chunking again gives the same bits (the engine compares a loaded
      // chunk with a recomputed one byte for byte).
      const ChunkedRun again = run_chunked(*backend, prefix, suffix, chunk);
      EXPECT_EQ(0, std::memcmp(again.kv.data(), run.kv.data(), run.kv.size() * sizeof(float)));
      EXPECT_EQ(again.first.logits, run.first.logits);
      EXPECT_EQ(again.first.token_id, run.first.token_id);
    }
  }
}

TEST(CpuBackend, GatedPrefillStopsWhereTheGateSaysAndOtherwiseMatchesUngated) {
  TestRng rng;
  SCOPED_TRACE(rng.trace());
  const ModelConfig m = preset_model("tiny");
  const auto tokens = rng.tokens(96, m.vocab);
  auto backend = make_cpu_backend(m, options(256, 96));

  backend->poison_kv_cache();
  backend->prefill_chunk(tokens, 0);
  const std::vector<float> ungated = kv_snapshot(backend->kv_cache(), 96);

  // A gate that always says yes: the same bits, and it was asked at every step, in order.
  backend->poison_kv_cache();
  std::vector<int> asked;
  EXPECT_TRUE(backend->prefill_chunk_gated(tokens, 0, [&](int step) {
    asked.push_back(step);
    return true;
  }));
  EXPECT_EQ(0, std::memcmp(kv_snapshot(backend->kv_cache(), 96).data(), ungated.data(), ungated.size() * sizeof(float)));
  const int steps = backend->gate_steps_per_layer();
  ASSERT_EQ(static_cast<int>(asked.size()), m.layers * steps);
  for (size_t i = 0; i < asked.size(); ++i) EXPECT_EQ(asked[i], static_cast<int>(i));

  // Stop at layer 1's start: layer 0's KV is written, the last layer's is still poison.
  backend->poison_kv_cache();
  EXPECT_FALSE(backend->prefill_chunk_gated(tokens, 0, [&](int step) { return step < steps; }));
  const auto first = kv_rows(backend->kv_cache(), 0, false, 0, 96);
  const auto last = kv_rows(backend->kv_cache(), m.layers - 1, false, 0, 96);
  EXPECT_TRUE(test::all_finite(first.data(), first.size()));
  EXPECT_TRUE(std::isnan(last.front()));
}

TEST(CpuBackend, PoisonedKvOutsideTheWrittenRangeIsNeverRead) {
  TestRng rng;
  SCOPED_TRACE(rng.trace());
  const ModelConfig m = preset_model("tiny");
  auto backend = make_cpu_backend(m, options(1024, 128));
  const KvCacheView kv = backend->kv_cache();
  backend->poison_kv_cache();
  for (int l = 0; l < kv.layers; ++l)
    for (bool value : {false, true}) {
      const auto all = kv_rows(kv, l, value, 0, kv.capacity_tokens);
      ASSERT_TRUE(std::all_of(all.begin(), all.end(), [](float x) { return std::isnan(x); }));
    }
  const auto prefix = rng.tokens(200, m.vocab);
  backend->prefill_chunk(std::span(prefix).first(128), 0);
  backend->prefill_chunk(std::span(prefix).subspan(128), 128);
  const auto first = backend->first_token(rng.tokens(5, m.vocab), 200);
  EXPECT_TRUE(test::all_finite(first.logits.data(), first.logits.size()));
  EXPECT_GE(first.token_id, 0);
  // Exactly [0, 205) was written, and nothing past it.
  for (int l = 0; l < kv.layers; ++l)
    for (bool value : {false, true}) {
      const auto written = kv_rows(kv, l, value, 0, 205);
      EXPECT_TRUE(test::all_finite(written.data(), written.size())) << "layer " << l;
      const auto rest = kv_rows(kv, l, value, 205, kv.capacity_tokens - 205);
      EXPECT_TRUE(std::all_of(rest.begin(), rest.end(), [](float x) { return std::isnan(x); })) << "layer " << l;
    }
}

TEST(CpuBackend, ActivationsStayFiniteAtLargePositions) {
  // A chunk at position 32000 of the 32768-token `tiny` context. The KV of [0, 32000) is the
  // real KV of 256 prefilled tokens repeated (prefilling all 32000 would take too long here);
  // the chunk and the suffix are computed for real at their positions.
  TestRng rng;
  SCOPED_TRACE(rng.trace());
  const ModelConfig m = preset_model("tiny");
  auto backend = make_cpu_backend(m, options(m.max_context, 256));
  const KvCacheView kv = backend->kv_cache();
  backend->poison_kv_cache();
  backend->prefill_chunk(rng.tokens(256, m.vocab), 0);
  const int64_t p = 32000;
  for (int s = 0; s < 2 * kv.layers; ++s)
    for (int64_t t0 = 256; t0 < p; t0 += 256)
      std::memcpy(kv.segment_ptr(s, t0), kv.segment_ptr(s, 0), kv.segment_bytes(std::min<int64_t>(256, p - t0)));
  backend->prefill_chunk(rng.tokens(64, m.vocab), p);
  const auto first = backend->first_token(rng.tokens(8, m.vocab), p + 64);
  for (int l = 0; l < kv.layers; ++l)
    for (bool value : {false, true}) {
      const auto rows = kv_rows(kv, l, value, p, 72);
      EXPECT_TRUE(test::all_finite(rows.data(), rows.size())) << "layer " << l << (value ? " V" : " K");
      EXPECT_LT(*std::max_element(rows.begin(), rows.end(), [](float a, float b) { return std::abs(a) < std::abs(b); }),
                1e3f);
    }
  EXPECT_TRUE(test::all_finite(first.logits.data(), first.logits.size()));
  EXPECT_GE(first.token_id, 0);
}

TEST(CpuBackend, KvCacheViewDescribesHostF32Cache) {
  const ModelConfig m = preset_model("tiny");
  auto backend = make_cpu_backend(m, options(1000, 100));
  EXPECT_EQ(backend->name(), "cpu");
  EXPECT_EQ(backend->model().fingerprint(), m.fingerprint());
  const KvCacheView kv = backend->kv_cache();
  EXPECT_EQ(kv.memory, MemoryKind::host);
  EXPECT_EQ(kv.dtype, DType::f32);
  EXPECT_EQ(kv.layers, m.layers);
  EXPECT_EQ(kv.kv_heads, m.kv_heads);
  EXPECT_EQ(kv.head_dim, m.head_dim);
  EXPECT_EQ(kv.capacity_tokens, 1000);
  ASSERT_EQ(kv.k.size(), static_cast<size_t>(m.layers));
  ASSERT_EQ(kv.v.size(), static_cast<size_t>(m.layers));
  for (int l = 0; l < m.layers; ++l) {
    EXPECT_NE(kv.k[l], nullptr);
    EXPECT_NE(kv.v[l], nullptr);
  }
}

TEST(CpuBackend, RejectsBadOptionsAndChunks) {
  const ModelConfig m = preset_model("tiny-mha");
  EXPECT_THROW(make_cpu_backend(m, options(0, 1)), UsageError);
  EXPECT_THROW(make_cpu_backend(m, options(m.max_context + 1, 16)), UsageError);
  EXPECT_THROW(make_cpu_backend(m, options(100, 0)), UsageError);
  EXPECT_THROW(make_cpu_backend(m, options(100, 101)), UsageError);
  BackendOptions negative_threads = options(100, 10);
  negative_threads.cpu_threads = -2;
  EXPECT_THROW(make_cpu_backend(m, negative_threads), UsageError);

  // A chunk outside what the backend was sized for is the caller's bug (InternalError); a token
  // outside the vocabulary is bad input (UsageError).
  auto backend = make_cpu_backend(m, options(100, 10));
  const std::vector<int32_t> eleven(11, 1), five(5, 1), empty;
  EXPECT_THROW(backend->prefill_chunk(eleven, 0), InternalError);       // longer than max_chunk_tokens
  EXPECT_THROW(backend->prefill_chunk(five, 96), InternalError);        // past the capacity
  EXPECT_THROW(backend->prefill_chunk(five, -1), InternalError);
  EXPECT_THROW(backend->prefill_chunk(empty, 0), InternalError);
  EXPECT_THROW(backend->first_token(empty, 0), InternalError);
  const std::vector<int32_t> bad_token = {1, m.vocab};
  EXPECT_THROW(backend->prefill_chunk(bad_token, 0), UsageError);
}

TEST(CpuBackend, RefusesModelsLargerThanMemory) {
  // ~16 TB of fp32 weights: more than any machine this runs on, refused before allocating.
  ModelConfig huge = preset_model("llama-3.1-70b");
  apply_model_override(huge, "hidden", "65536");
  apply_model_override(huge, "ffn", "262144");
  EXPECT_THROW(make_cpu_backend(huge, options(1024, 256)), EnvironmentError);
}

}  // namespace
}  // namespace cake
