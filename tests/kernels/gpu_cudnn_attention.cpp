// cuDNN's fused attention (kernels/cuda/cudnn_attention.hpp) against the CPU reference: causal with
// a position offset (the chunk's queries over the whole prefix so far), GQA, head_dim 128, q_len
// and kv_len that are not multiples of any tile, Q rows strided as in the fused qkv buffer, cache
// rows past the chunk NaN and outputs poisoned before every launch. Also: the same launch twice
// gives the same bits (prepare and compute-only rely on it), and plans are built once per shape.
// Skips without a GPU or in a build without cuDNN, saying which.
#include <cstdint>
#include <vector>

#include <gtest/gtest.h>

#include "kernels/cuda/cudnn_attention.hpp"
#include "tests/kernels/attention_problem.hpp"
#include "tests/kernels/gpu_support.hpp"
#include "tests/kernels/test_support.hpp"

namespace cake::test {
namespace {

#define CAKE_REQUIRE_CUDNN()                                                              \
  do {                                                                                    \
    CAKE_REQUIRE_GPU();                                                                   \
    if (!cuda::cudnn_attention_built()) GTEST_SKIP() << cuda::cudnn_version_text();       \
  } while (0)

const Case kCudnnCases[] = {
    {0, 1, 32, 8, 128, 1.0f},      {0, 200, 32, 8, 128, 1.0f},  {1000, 77, 32, 8, 128, 8.0f},
    {4093, 300, 8, 2, 128, 4.0f},  {5000, 1, 32, 8, 128, 8.0f}, {1024, 1024, 32, 8, 128, 2.0f},
    {3000, 129, 8, 1, 128, 1.0f},  {127, 257, 8, 8, 128, 4.0f},  {0, 129, 8, 2, 64, 1.0f},
};

TEST(GpuCudnnAttention, MatchesReferenceWithOffsetsAndGqa) {
  CAKE_REQUIRE_CUDNN();
  TestRng rng;
  SCOPED_TRACE(rng.trace());
  cuda::Stream stream;
  for (const Case& c : kCudnnCases) {
    SCOPED_TRACE(cat("first_pos ", c.first_pos, " n ", c.n, " heads ", c.q_heads, "/", c.kv_heads, " head_dim ",
                     c.head_dim, " q_scale ", c.q_scale));
    const Problem p(c, rng);
    const std::vector<float> want = p.reference();
    DeviceProblem d(p, stream.get());
    cuda::CudnnAttention attention(0, c.head_dim);
    d.out.memset_bytes(0xFF);
    attention.launch(d.args(p, 0, c.n), stream.get());
    const std::vector<float> got = bf16_to_float(d.out.download());
    EXPECT_EQ(count_nan(got), 0u) << "unwritten outputs or NaN cache rows read";
    const double err = l2_relative_error(got, want);
    EXPECT_LT(err, 1e-2);
    RecordProperty(cat("rel_err_", c.first_pos, "_", c.n, "_", c.q_heads, "_", c.kv_heads), std::to_string(err));
  }
}

TEST(GpuCudnnAttention, SameLaunchTwiceGivesTheSameBitsAndOnePlan) {
  CAKE_REQUIRE_CUDNN();
  TestRng rng;
  SCOPED_TRACE(rng.trace());
  cuda::Stream stream;
  const Case c{rng.integer(1, 5000), static_cast<int>(rng.integer(2, 1500)), 32, 8, 128, 4.0f};
  SCOPED_TRACE(cat("first_pos ", c.first_pos, " n ", c.n));
  const Problem p(c, rng);
  DeviceProblem d(p, stream.get());
  cuda::CudnnAttention attention(0, c.head_dim);
  d.out.memset_bytes(0xFF);
  attention.launch(d.args(p, 0, c.n), stream.get());
  const std::vector<uint16_t> first = d.out.download();
  for (int again = 0; again < 3; ++again) {
    d.out.memset_bytes(0xFF);
    attention.launch(d.args(p, 0, c.n), stream.get());
    EXPECT_EQ(d.out.download(), first) << "launch " << again + 2 << " differs from the first";
  }
  EXPECT_EQ(attention.stats().plans_built, 1);
  EXPECT_GE(attention.stats().plan_build_ms_total, 0.0);
}

TEST(GpuCudnnAttention, AgreesWithTheMmaKernelWithinRounding) {
  CAKE_REQUIRE_CUDNN();
  TestRng rng;
  SCOPED_TRACE(rng.trace());
  cuda::Stream stream;
  const Case c{rng.integer(0, 4000), static_cast<int>(rng.integer(1, 700)), 32, 8, 128, 4.0f};
  SCOPED_TRACE(cat("first_pos ", c.first_pos, " n ", c.n));
  const Problem p(c, rng);
  DeviceProblem d(p, stream.get());
  cuda::CudnnAttention attention(0, c.head_dim);
  const cuda::AttentionKernel mma(0, c.head_dim);
  d.out.memset_bytes(0xFF);
  attention.launch(d.args(p, 0, c.n), stream.get());
  const std::vector<float> from_cudnn = bf16_to_float(d.out.download());
  d.out.memset_bytes(0xFF);
  mma.launch(d.args(p, 0, c.n), stream.get());
  const std::vector<float> from_mma = bf16_to_float(d.out.download());
  EXPECT_EQ(count_nan(from_cudnn), 0u);
  EXPECT_LT(l2_relative_error(from_cudnn, from_mma), 1e-2);
}

}  // namespace
}  // namespace cake::test
