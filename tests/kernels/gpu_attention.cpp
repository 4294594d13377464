// The flash attention kernel against the CPU reference (kernels/cpu/ops.hpp) for every compiled
// tiling: offsets (first_pos > 0), tails (n not a multiple of the block), GQA ratios, strided
// Q rows as in the fused QKV buffer; cache rows past the chunk hold NaN so a read of them shows.
// Also: a query row's result does not depend on how the queries are split into launches (the
// engine relies on recomputed chunks matching stored ones bit for bit).
#include <cstdint>
#include <vector>

#include <gtest/gtest.h>

#include "kernels/cpu/ops.hpp"
#include "kernels/cuda/attention.hpp"
#include "tests/kernels/attention_problem.hpp"
#include "tests/kernels/gpu_support.hpp"
#include "tests/kernels/test_support.hpp"

namespace cake::test {
namespace {

using bf16 = __nv_bfloat16;

const Case kCases[] = {
    {0, 1, 4, 4, 128, 1.0f},      {0, 200, 8, 2, 128, 1.0f},   {1000, 77, 8, 2, 128, 8.0f},
    {4093, 300, 4, 1, 128, 4.0f}, {5000, 1, 32, 8, 128, 8.0f}, {0, 129, 8, 8, 64, 1.0f},
    {777, 64, 8, 1, 64, 8.0f},    {37, 129, 8, 2, 32, 1.0f},   {2049, 250, 8, 2, 32, 8.0f},
};

TEST(GpuAttention, MatchesReferenceForEveryTiling) {
  CAKE_REQUIRE_GPU();
  TestRng rng;
  SCOPED_TRACE(rng.trace());
  cuda::Stream stream;
  for (const Case& c : kCases) {
    const Problem p(c, rng);
    const std::vector<float> want = p.reference();
    DeviceProblem d(p, stream.get());
    for (const cuda::AttentionTiling& tiling : cuda::attention_tilings(c.head_dim)) {
      SCOPED_TRACE(cat("first_pos ", c.first_pos, " n ", c.n, " heads ", c.q_heads, "/", c.kv_heads, " head_dim ",
                       c.head_dim, " q_scale ", c.q_scale, " tiling ", tiling.name()));
      const cuda::AttentionKernel kernel(0, c.head_dim, tiling);
      d.out.memset_bytes(0xFF);
      kernel.launch(d.args(p, 0, c.n), stream.get());
      const std::vector<float> got = bf16_to_float(d.out.download());
      EXPECT_EQ(count_nan(got), 0u) << "unwritten outputs or NaN cache rows read";
      const double err = l2_relative_error(got, want);
      EXPECT_LT(err, 1e-2);
      RecordProperty(cat("rel_err_", c.first_pos, "_", c.n, "_", c.head_dim, "_", tiling.name()), std::to_string(err));
    }
  }
}

TEST(GpuAttention, RowsDoNotDependOnTheSplitIntoLaunches) {
  CAKE_REQUIRE_GPU();
  TestRng rng;
  SCOPED_TRACE(rng.trace());
  cuda::Stream stream;
  for (const int head_dim : {32, 64, 128}) {
    const Case c{rng.integer(0, 3000), static_cast<int>(rng.integer(2, 400)), 8, 2, head_dim, 4.0f};
    const Problem p(c, rng);
    DeviceProblem d(p, stream.get());
    const cuda::AttentionKernel kernel(0, head_dim);
    SCOPED_TRACE(cat("first_pos ", c.first_pos, " n ", c.n, " head_dim ", head_dim, " tiling ", kernel.tiling().name()));

    d.out.memset_bytes(0xFF);
    kernel.launch(d.args(p, 0, c.n), stream.get());
    const std::vector<uint16_t> whole = d.out.download();
    d.out.memset_bytes(0xFF);
    kernel.launch(d.args(p, 0, c.n), stream.get());
    EXPECT_EQ(d.out.download(), whole) << "the same launch twice must give the same bits";

    const int split = static_cast<int>(rng.integer(1, c.n - 1));
    SCOPED_TRACE(cat("split at ", split));
    d.out.memset_bytes(0xFF);
    kernel.launch(d.args(p, 0, split), stream.get());
    kernel.launch(d.args(p, split, c.n - split), stream.get());
    EXPECT_EQ(d.out.download(), whole) << "two launches must give the bits of one";
  }
}

}  // namespace
}  // namespace cake::test
