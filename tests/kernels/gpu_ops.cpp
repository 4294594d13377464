// Each of the CUDA backend's own kernels and its GEMM against the CPU reference ops
// (kernels/cpu/ops.hpp) on fresh random inputs, outputs poisoned before every run.
#include <algorithm>
#include <cstdint>
#include <vector>

#include <gtest/gtest.h>

#include "kernels/cpu/ops.hpp"
#include "kernels/cuda/gemm.hpp"
#include "kernels/cuda/ops.hpp"
#include "kernels/seeded_weights.hpp"
#include "tests/kernels/gpu_support.hpp"
#include "tests/kernels/test_support.hpp"

namespace cake::test {
namespace {

using cuda::bf16;

TEST(GpuWeights, SeededWeightsMatchTheHostBitForBit) {
  CAKE_REQUIRE_GPU();
  TestRng rng;
  SCOPED_TRACE(rng.trace());
  cuda::Stream stream;
  const uint64_t seed = static_cast<uint64_t>(rng.integer(0, 1 << 30));
  const uint32_t tensor = static_cast<uint32_t>(rng.integer(0, 1000));
  const int fan_in = static_cast<int>(rng.integer(1, 20000));
  const size_t count = static_cast<size_t>(rng.integer(1000, 300000));  // rarely a multiple of 8: the tail path too

  DeviceTensor<uint16_t> out(count, stream.get());
  auto check = [&](const char* what, auto host_value) {
    SCOPED_TRACE(what);
    const std::vector<uint16_t> got = out.download();
    size_t mismatches = 0;
    for (size_t i = 0; i < count; ++i)
      if (got[i] != bf16_bits(host_value(i))) ++mismatches;
    EXPECT_EQ(mismatches, 0u) << "of " << count;
  };
  out.memset_bytes(0xFF);
  cuda::fill_seeded_linear(reinterpret_cast<bf16*>(out.get()), count, seed, tensor, fan_in, stream.get());
  check("linear", [&](size_t i) { return seeded_linear_weight(seed, tensor, i, fan_in); });
  out.memset_bytes(0xFF);
  cuda::fill_seeded_norm(reinterpret_cast<bf16*>(out.get()), count, seed, tensor, stream.get());
  check("norm", [&](size_t i) { return seeded_norm_weight(seed, tensor, i); });
  out.memset_bytes(0xFF);
  cuda::fill_seeded_embedding(reinterpret_cast<bf16*>(out.get()), count, seed, stream.get());
  check("embedding", [&](size_t i) { return seeded_embedding(seed, i); });
}

TEST(GpuOps, EmbeddingGatherCopiesRows) {
  CAKE_REQUIRE_GPU();
  TestRng rng;
  SCOPED_TRACE(rng.trace());
  cuda::Stream stream;
  const int vocab = static_cast<int>(rng.integer(2, 500));
  const int hidden = 8 * static_cast<int>(rng.integer(1, 100));
  const int n = static_cast<int>(rng.integer(1, 300));
  std::vector<float> table = rng.uniform(static_cast<size_t>(vocab) * hidden);
  const auto table_bits = round_to_bf16(table);
  const std::vector<int32_t> tokens = rng.tokens(n, vocab);

  DeviceTensor<uint16_t> d_table(table.size(), stream.get());
  DeviceTensor<int32_t> d_tokens(n, stream.get());
  DeviceTensor<uint16_t> d_out(static_cast<size_t>(n) * hidden, stream.get());
  d_table.upload(table_bits);
  d_tokens.upload(tokens);
  d_out.memset_bytes(0xFF);
  cuda::embedding_gather(d_tokens.get(), n, reinterpret_cast<const bf16*>(d_table.get()), hidden,
                         reinterpret_cast<bf16*>(d_out.get()), stream.get());
  std::vector<float> want(static_cast<size_t>(n) * hidden);
  cpu::embedding(table.data(), vocab, hidden, tokens.data(), n, want.data());
  EXPECT_EQ(bf16_to_float(d_out.download()), want);
}

TEST(GpuOps, RmsNormMatchesReference) {
  CAKE_REQUIRE_GPU();
  TestRng rng;
  SCOPED_TRACE(rng.trace());
  cuda::Stream stream;
  const int rows = static_cast<int>(rng.integer(1, 200));
  const int hidden = 8 * static_cast<int>(rng.integer(1, 700));
  const float eps = 1e-5f;
  std::vector<float> x = rng.uniform(static_cast<size_t>(rows) * hidden, -3.0f, 3.0f);
  std::vector<float> w = rng.uniform(hidden, 0.5f, 1.5f);
  const auto x_bits = round_to_bf16(x);
  const auto w_bits = round_to_bf16(w);
  DeviceTensor<uint16_t> d_x(x.size(), stream.get()), d_w(w.size(), stream.get()), d_y(x.size(), stream.get());
  d_x.upload(x_bits);
  d_w.upload(w_bits);
  d_y.memset_bytes(0xFF);
  cuda::rmsnorm(reinterpret_cast<const bf16*>(d_x.get()), reinterpret_cast<const bf16*>(d_w.get()),
                reinterpret_cast<bf16*>(d_y.get()), rows, hidden, eps, stream.get());
  std::vector<float> want(x.size());
  cpu::rmsnorm(x.data(), w.data(), rows, hidden, eps, want.data());
  const std::vector<float> got = bf16_to_float(d_y.download());
  EXPECT_EQ(count_nan(got), 0u);
  EXPECT_LT(l2_relative_error(got, want), 1e-2);
}

TEST(GpuOps, SwiGluMatchesReference) {
  CAKE_REQUIRE_GPU();
  TestRng rng;
  SCOPED_TRACE(rng.trace());
  cuda::Stream stream;
  const int n = static_cast<int>(rng.integer(1, 200));
  const int ffn = 8 * static_cast<int>(rng.integer(1, 500));
  std::vector<float> gate_up = rng.uniform(static_cast<size_t>(n) * 2 * ffn, -6.0f, 6.0f);
  const auto bits = round_to_bf16(gate_up);
  DeviceTensor<uint16_t> d_in(gate_up.size(), stream.get()), d_out(static_cast<size_t>(n) * ffn, stream.get());
  d_in.upload(bits);
  d_out.memset_bytes(0xFF);
  cuda::swiglu(reinterpret_cast<const bf16*>(d_in.get()), reinterpret_cast<bf16*>(d_out.get()), n, ffn, stream.get());
  std::vector<float> want(static_cast<size_t>(n) * ffn);
  for (int t = 0; t < n; ++t)
    cpu::swiglu(&gate_up[static_cast<size_t>(t) * 2 * ffn], &gate_up[static_cast<size_t>(t) * 2 * ffn + ffn], ffn,
                &want[static_cast<size_t>(t) * ffn]);
  const std::vector<float> got = bf16_to_float(d_out.download());
  EXPECT_EQ(count_nan(got), 0u);
  EXPECT_LT(l2_relative_error(got, want), 1e-2);
}

TEST(GpuOps, ArgmaxTakesTheLowestIndexOfTies) {
  CAKE_REQUIRE_GPU();
  TestRng rng;
  SCOPED_TRACE(rng.trace());
  cuda::Stream stream;
  for (int round = 0; round < 20; ++round) {
    const int count = static_cast<int>(rng.integer(1, 200000));
    std::vector<float> values = rng.uniform(count, -10.0f, 10.0f);
    // Plant the maximum at two or three random places.
    const float top = 11.0f + static_cast<float>(round);
    for (int k = 0; k < static_cast<int>(rng.integer(1, 3)); ++k) values[rng.integer(0, count - 1)] = top;
    DeviceTensor<float> d_values(count, stream.get());
    DeviceTensor<int32_t> d_index(1, stream.get());
    d_values.upload(values);
    d_index.memset_bytes(0xFF);
    cuda::argmax(d_values.get(), count, d_index.get(), stream.get());
    EXPECT_EQ(d_index.download()[0], cpu::argmax(values.data(), count)) << "count " << count;
  }
}

TEST(GpuOps, RopeRotatesQInPlaceAndWritesKvRows) {
  CAKE_REQUIRE_GPU();
  TestRng rng;
  SCOPED_TRACE(rng.trace());
  cuda::Stream stream;
  for (const bool with_bias : {false, true})
  for (const int head_dim : {32, 64, 128}) {
    SCOPED_TRACE(cat("head_dim ", head_dim, with_bias ? ", q/k/v bias" : ", no bias"));
    const int kv_heads = static_cast<int>(rng.integer(1, 4));
    const int q_heads = kv_heads * static_cast<int>(rng.integer(1, 4));
    const int n = static_cast<int>(rng.integer(1, 150));
    const int64_t first_pos = rng.integer(0, 120000);
    const int64_t capacity = first_pos + n + rng.integer(1, 20);
    const double theta = 500000.0;
    const int width = (q_heads + 2 * kv_heads) * head_dim;
    const int kv_width = kv_heads * head_dim;
    std::vector<float> qkv = rng.uniform(static_cast<size_t>(n) * width);
    const auto qkv_bits = round_to_bf16(qkv);
    // Qwen2's q/k/v biases, added in fp32 before the rotation (and before V's one rounding).
    std::vector<float> bias = rng.uniform(static_cast<size_t>(width));
    const auto bias_bits = round_to_bf16(bias);
    DeviceTensor<uint16_t> d_bias(bias.size(), stream.get());
    d_bias.upload(bias_bits);

    // Only the chunk's rows of the caches are written; the rest stays poisoned. The cache
    // tensors are offset views of one buffer so rows before first_pos exist (kept short).
    const int64_t base = std::max<int64_t>(0, first_pos - 3);
    const int64_t rows = capacity - base;
    DeviceTensor<uint16_t> d_qkv(qkv.size(), stream.get());
    DeviceTensor<uint16_t> d_k(static_cast<size_t>(rows) * kv_width, stream.get());
    DeviceTensor<uint16_t> d_v(static_cast<size_t>(rows) * kv_width, stream.get());
    d_qkv.upload(qkv_bits);
    d_k.memset_bytes(0xFF);
    d_v.memset_bytes(0xFF);
    bf16* k_cache = reinterpret_cast<bf16*>(d_k.get()) - base * kv_width;  // row p lives at p - base
    bf16* v_cache = reinterpret_cast<bf16*>(d_v.get()) - base * kv_width;
    cuda::rope_write_kv(reinterpret_cast<bf16*>(d_qkv.get()),
                        with_bias ? reinterpret_cast<const bf16*>(d_bias.get()) : nullptr, n, first_pos,
                        {q_heads, kv_heads, head_dim}, theta, k_cache, v_cache, stream.get());

    std::vector<float> q_ref(static_cast<size_t>(n) * q_heads * head_dim), k_ref(static_cast<size_t>(n) * kv_width),
        v_ref(static_cast<size_t>(n) * kv_width);
    for (int t = 0; t < n; ++t) {
      const float* row = &qkv[static_cast<size_t>(t) * width];
      std::copy(row, row + q_heads * head_dim, &q_ref[static_cast<size_t>(t) * q_heads * head_dim]);
      std::copy(row + q_heads * head_dim, row + (q_heads + kv_heads) * head_dim, &k_ref[static_cast<size_t>(t) * kv_width]);
      std::copy(row + (q_heads + kv_heads) * head_dim, row + width, &v_ref[static_cast<size_t>(t) * kv_width]);
    }
    std::vector<float> v_in_qkv = v_ref;  // what the kernel must leave in the qkv buffer
    if (with_bias) {
      cpu::add_bias(q_ref.data(), n, q_heads * head_dim, bias.data());
      cpu::add_bias(k_ref.data(), n, kv_width, bias.data() + q_heads * head_dim);
      cpu::add_bias(v_ref.data(), n, kv_width, bias.data() + (q_heads + kv_heads) * head_dim);
      for (float& x : v_ref) x = cpu::round_to_bf16(x);  // bf16(v + b): one rounding, as the kernel does
    }
    cpu::rope(q_ref.data(), n, q_heads, head_dim, first_pos, theta);
    cpu::rope(k_ref.data(), n, kv_heads, head_dim, first_pos, theta);

    const std::vector<float> qkv_got = bf16_to_float(d_qkv.download());
    std::vector<float> q_got(q_ref.size()), v_untouched(v_ref.size());
    for (int t = 0; t < n; ++t) {
      const float* row = &qkv_got[static_cast<size_t>(t) * width];
      std::copy(row, row + q_heads * head_dim, &q_got[static_cast<size_t>(t) * q_heads * head_dim]);
      std::copy(row + (q_heads + kv_heads) * head_dim, row + width, &v_untouched[static_cast<size_t>(t) * kv_width]);
    }
    EXPECT_LT(l2_relative_error(q_got, q_ref), 1e-2);
    EXPECT_EQ(v_untouched, v_in_qkv) << "V in the qkv buffer must be left as it was";

    const std::vector<float> k_all = bf16_to_float(d_k.download());
    const std::vector<float> v_all = bf16_to_float(d_v.download());
    const size_t chunk_begin = static_cast<size_t>(first_pos - base) * kv_width;
    const size_t chunk_end = chunk_begin + static_cast<size_t>(n) * kv_width;
    const std::vector<float> k_got(k_all.begin() + chunk_begin, k_all.begin() + chunk_end);
    const std::vector<float> v_got(v_all.begin() + chunk_begin, v_all.begin() + chunk_end);
    EXPECT_LT(l2_relative_error(k_got, k_ref), 1e-2);
    EXPECT_EQ(v_got, v_ref);
    size_t outside_written = 0;
    for (size_t i = 0; i < k_all.size(); ++i)
      if ((i < chunk_begin || i >= chunk_end) && (!std::isnan(k_all[i]) || !std::isnan(v_all[i]))) ++outside_written;
    EXPECT_EQ(outside_written, 0u) << "cache rows outside the chunk were written";
  }
}

TEST(GpuGemm, LinearMatchesReferenceWithAndWithoutResidual) {
  CAKE_REQUIRE_GPU();
  TestRng rng;
  SCOPED_TRACE(rng.trace());
  cuda::Stream stream;
  cuda::Gemm gemm(stream.get());
  const int n = static_cast<int>(rng.integer(1, 300));
  const int in = 8 * static_cast<int>(rng.integer(1, 256));
  const int out = 8 * static_cast<int>(rng.integer(1, 256));
  std::vector<float> x = rng.uniform(static_cast<size_t>(n) * in);
  std::vector<float> w = rng.uniform(static_cast<size_t>(out) * in, -0.1f, 0.1f);
  std::vector<float> y0 = rng.uniform(static_cast<size_t>(n) * out);
  const auto x_bits = round_to_bf16(x), w_bits = round_to_bf16(w), y0_bits = round_to_bf16(y0);
  DeviceTensor<uint16_t> d_x(x.size(), stream.get()), d_w(w.size(), stream.get()), d_y(y0.size(), stream.get());
  DeviceTensor<float> d_y32(y0.size(), stream.get());
  d_x.upload(x_bits);
  d_w.upload(w_bits);

  std::vector<float> xw(y0.size());
  cpu::linear(x.data(), n, in, w.data(), out, xw.data());

  d_y.memset_bytes(0xFF);
  gemm.linear(reinterpret_cast<const bf16*>(d_x.get()), n, in, reinterpret_cast<const bf16*>(d_w.get()), out,
              reinterpret_cast<bf16*>(d_y.get()), false, "test");
  EXPECT_LT(l2_relative_error(bf16_to_float(d_y.download()), xw), 1e-2);

  d_y.upload(y0_bits);
  gemm.linear(reinterpret_cast<const bf16*>(d_x.get()), n, in, reinterpret_cast<const bf16*>(d_w.get()), out,
              reinterpret_cast<bf16*>(d_y.get()), true, "test");
  std::vector<float> want = y0;
  cpu::residual_add(want.data(), xw.data(), static_cast<int64_t>(want.size()));
  EXPECT_LT(l2_relative_error(bf16_to_float(d_y.download()), want), 1e-2);

  d_y32.memset_bytes(0xFF);
  gemm.linear_f32(reinterpret_cast<const bf16*>(d_x.get()), n, in, reinterpret_cast<const bf16*>(d_w.get()), out,
                  d_y32.get(), "test");
  EXPECT_LT(l2_relative_error(d_y32.download(), xw), 1e-3) << "fp32 output: only the operands are bf16";
}

}  // namespace
}  // namespace cake::test
