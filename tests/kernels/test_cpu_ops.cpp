// Each CPU op against a direct float64 computation on fresh random inputs.
#include <atomic>
#include <bit>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>
#include <cmath>
#include <cstdint>
#include <vector>

#include <gtest/gtest.h>

#include "common/error.hpp"
#include "common/load_lane_work.hpp"
#include "kernels/cpu/ops.hpp"
#include "kernels/cpu/thread_pool.hpp"
#include "tests/kernels/test_support.hpp"

namespace cake {
namespace {

using test::relative_error;
using test::TestRng;

// fp32 results against float64 references, relative to the largest reference value. Element
// ops round once or twice (~1e-7); dot products of a few hundred terms stay near 1e-6.
constexpr double kElementwiseTolerance = 2e-6;
constexpr double kReductionTolerance = 2e-5;

TEST(CpuOps, EmbeddingGathersRowsAndRejectsBadIds) {
  TestRng rng;
  SCOPED_TRACE(rng.trace());
  const int vocab = 50, hidden = 24;
  const auto table = rng.uniform(static_cast<size_t>(vocab) * hidden);
  const auto tokens = rng.tokens(17, vocab);
  auto out = test::poisoned(tokens.size() * hidden);
  cpu::embedding(table.data(), vocab, hidden, tokens.data(), static_cast<int64_t>(tokens.size()), out.data());
  for (size_t t = 0; t < tokens.size(); ++t)
    for (int i = 0; i < hidden; ++i) ASSERT_EQ(out[t * hidden + i], table[tokens[t] * hidden + i]) << t << "," << i;

  const int32_t bad[] = {3, vocab};
  EXPECT_THROW(cpu::embedding(table.data(), vocab, hidden, bad, 2, out.data()), UsageError);
  const int32_t negative[] = {-1};
  EXPECT_THROW(cpu::embedding(table.data(), vocab, hidden, negative, 1, out.data()), UsageError);
}

TEST(CpuOps, RmsNormMatchesFloat64) {
  TestRng rng;
  SCOPED_TRACE(rng.trace());
  const int64_t rows = rng.integer(1, 9);
  const int dim = static_cast<int>(rng.integer(1, 700));
  const float eps = 1e-5f;
  const auto x = rng.uniform(rows * dim, -3.0f, 3.0f);
  const auto w = rng.uniform(dim, 0.5f, 1.5f);
  std::vector<double> want(x.size());
  for (int64_t r = 0; r < rows; ++r) {
    double ss = 0;
    for (int i = 0; i < dim; ++i) ss += static_cast<double>(x[r * dim + i]) * x[r * dim + i];
    const double inv = 1.0 / std::sqrt(ss / dim + eps);
    for (int i = 0; i < dim; ++i) want[r * dim + i] = x[r * dim + i] * inv * w[i];
  }
  auto out = test::poisoned(x.size());
  cpu::rmsnorm(x.data(), w.data(), rows, dim, eps, out.data());
  EXPECT_LT(relative_error(out, want), kElementwiseTolerance) << rows << "x" << dim;

  // In place gives the same bits.
  auto in_place = x;
  cpu::rmsnorm(in_place.data(), w.data(), rows, dim, eps, in_place.data());
  EXPECT_EQ(in_place, out);
}

std::vector<double> linear_reference(const std::vector<float>& x, int64_t rows, int in, const std::vector<float>& w,
                                     int out) {
  std::vector<double> y(static_cast<size_t>(rows) * out);
  for (int64_t r = 0; r < rows; ++r)
    for (int o = 0; o < out; ++o) {
      double s = 0;
      for (int i = 0; i < in; ++i) s += static_cast<double>(x[r * in + i]) * w[static_cast<size_t>(o) * in + i];
      y[r * out + o] = s;
    }
  return y;
}

TEST(CpuOps, LinearMatchesFloat64OnOddShapes) {
  TestRng rng;
  SCOPED_TRACE(rng.trace());
  cpu::ThreadPool pool(3);
  // Shapes that hit every edge: rows and outputs not multiples of the 2x4 tile, `in` not a
  // multiple of the 8 lanes, blocks of one row, and one big enough for several blocks.
  const struct { int64_t rows; int in, out; } shapes[] = {
      {1, 1, 1}, {3, 7, 5}, {2, 8, 4}, {5, 33, 11}, {1, 256, 4096}, {67, 300, 130}, {130, 1000, 70},
      {rng.integer(1, 80), static_cast<int>(rng.integer(1, 600)), static_cast<int>(rng.integer(1, 300))},
  };
  for (const auto& s : shapes) {
    SCOPED_TRACE(testing::Message() << s.rows << "x" << s.in << " -> " << s.out);
    const auto x = rng.uniform(s.rows * s.in);
    const auto w = rng.uniform(static_cast<size_t>(s.out) * s.in);
    const auto want = linear_reference(x, s.rows, s.in, w, s.out);
    auto y = test::poisoned(want.size());
    cpu::linear(x.data(), s.rows, s.in, w.data(), s.out, y.data(), &pool);
    EXPECT_LT(relative_error(y, want), kReductionTolerance);
    // Threads and blocking never change a bit: the single-threaded run agrees exactly, and so
    // does each row computed on its own.
    auto y_serial = test::poisoned(want.size());
    cpu::linear(x.data(), s.rows, s.in, w.data(), s.out, y_serial.data(), nullptr);
    EXPECT_EQ(y, y_serial);
    const int64_t r = rng.integer(0, s.rows - 1);
    auto y_row = test::poisoned(static_cast<size_t>(s.out));
    cpu::linear(x.data() + r * s.in, 1, s.in, w.data(), s.out, y_row.data(), &pool);
    EXPECT_TRUE(std::equal(y_row.begin(), y_row.end(), y.begin() + r * s.out)) << "row " << r;
  }
}

// RoPE closed form in float64, from the same float inputs.
std::vector<double> rope_reference(const std::vector<float>& x, int64_t tokens, int heads, int d, int64_t first_pos,
                                   double theta) {
  std::vector<double> out(x.begin(), x.end());
  for (int64_t t = 0; t < tokens; ++t)
    for (int h = 0; h < heads; ++h)
      for (int i = 0; i < d / 2; ++i) {
        const double angle = static_cast<double>(first_pos + t) * std::pow(theta, -2.0 * i / d);
        const size_t base = (static_cast<size_t>(t) * heads + h) * d;
        const double a = x[base + i], b = x[base + i + d / 2];
        out[base + i] = a * std::cos(angle) - b * std::sin(angle);
        out[base + i + d / 2] = b * std::cos(angle) + a * std::sin(angle);
      }
  return out;
}

TEST(CpuOps, RopeMatchesClosedFormAtSmallAndLargePositions) {
  TestRng rng;
  SCOPED_TRACE(rng.trace());
  const struct { int heads, d; double theta; } shapes[] = {{3, 32, 10000.0}, {2, 128, 500000.0}, {1, 2, 10000.0}};
  for (const auto& s : shapes) {
    for (int64_t first_pos : {int64_t{0}, int64_t{1}, int64_t{4095}, int64_t{32000}, int64_t{100000},
                              rng.integer(0, 131000)}) {
      SCOPED_TRACE(testing::Message() << "heads " << s.heads << " d " << s.d << " pos " << first_pos);
      const int64_t tokens = 5;
      const auto x = rng.uniform(tokens * s.heads * s.d);
      auto y = x;
      cpu::rope(y.data(), tokens, s.heads, s.d, first_pos, s.theta);
      EXPECT_LT(relative_error(y, rope_reference(x, tokens, s.heads, s.d, first_pos, s.theta)), kElementwiseTolerance);
    }
  }
}

TEST(CpuOps, RopeAtPositionZeroIsIdentityAndRotatesHalfPairs) {
  TestRng rng;
  SCOPED_TRACE(rng.trace());
  const int d = 8;
  const auto x = rng.uniform(d);
  auto y = x;
  cpu::rope(y.data(), 1, 1, d, 0, 10000.0);
  EXPECT_EQ(y, x);
  // Pair 0 has inverse frequency 1: at position 1 it turns by exactly 1 radian, and the pair is
  // (x[0], x[d/2]), not (x[0], x[1]).
  std::vector<float> unit(d, 0.0f);
  unit[0] = 1.0f;
  cpu::rope(unit.data(), 1, 1, d, 1, 10000.0);
  EXPECT_NEAR(unit[0], std::cos(1.0), 1e-7);
  EXPECT_NEAR(unit[d / 2], std::sin(1.0), 1e-7);
  EXPECT_EQ(unit[1], 0.0f);
}

// Causal attention as a full masked score matrix in float64.
std::vector<double> attention_reference(const std::vector<float>& q, int64_t n, int64_t p, int qh,
                                        const std::vector<float>& k, const std::vector<float>& v, int kvh, int d) {
  const int64_t keys = p + n;
  const int group = qh / kvh;
  std::vector<double> out(static_cast<size_t>(n) * qh * d);
  std::vector<double> s(static_cast<size_t>(keys));
  for (int64_t i = 0; i < n; ++i)
    for (int h = 0; h < qh; ++h) {
      const int g = h / group;
      double m = -INFINITY;
      for (int64_t j = 0; j < keys; ++j) {
        if (j > p + i) {  // masked
          s[j] = -INFINITY;
          continue;
        }
        double dot = 0;
        for (int e = 0; e < d; ++e) dot += static_cast<double>(q[(i * qh + h) * d + e]) * k[(j * kvh + g) * d + e];
        s[j] = dot / std::sqrt(static_cast<double>(d));
        m = std::max(m, s[j]);
      }
      double sum = 0;
      for (int64_t j = 0; j < keys; ++j) sum += s[j] = std::exp(s[j] - m);
      for (int e = 0; e < d; ++e) {
        double acc = 0;
        for (int64_t j = 0; j < keys; ++j) acc += s[j] * v[(j * kvh + g) * d + e];
        out[(i * qh + h) * d + e] = acc / sum;
      }
    }
  return out;
}

struct AttentionCase {
  int64_t n, p;
  int qh, kvh, d;
  float q_scale;  // large q makes scores large: exp without the max subtraction would overflow
};

void check_attention(TestRng& rng, const AttentionCase& c, cpu::ThreadPool* pool) {
  SCOPED_TRACE(testing::Message() << "n " << c.n << " p " << c.p << " q_heads " << c.qh << " kv_heads " << c.kvh
                                  << " d " << c.d << " q_scale " << c.q_scale);
  const auto q = rng.uniform(c.n * c.qh * c.d, -c.q_scale, c.q_scale);
  const int64_t keys = c.p + c.n;
  // The cache has rows past the last key, poisoned: attention must not read them.
  const int64_t extra = 7;
  auto k = rng.uniform(keys * c.kvh * c.d);
  auto v = rng.uniform(keys * c.kvh * c.d);
  const auto want = attention_reference(q, c.n, c.p, c.qh, k, v, c.kvh, c.d);
  k.resize((keys + extra) * c.kvh * c.d, NAN);
  v.resize((keys + extra) * c.kvh * c.d, NAN);
  auto out = test::poisoned(want.size());
  cpu::attention(q.data(), c.n, c.p, c.qh, k.data(), v.data(), c.kvh, c.d, out.data(), pool);
  EXPECT_LT(relative_error(out, want), kReductionTolerance);
}

TEST(CpuOps, AttentionAtChunkOffsetMatchesFullMatrixFloat64) {
  TestRng rng;
  SCOPED_TRACE(rng.trace());
  cpu::ThreadPool pool(2);
  const AttentionCase cases[] = {
      {1, 0, 1, 1, 2, 1.0f},      {5, 0, 4, 4, 32, 1.0f},  {37, 100, 8, 2, 32, 1.0f},  {20, 300, 6, 3, 34, 1.0f},
      {33, 257, 4, 1, 64, 30.0f}, {3, 1000, 2, 2, 128, 1.0f},
      {rng.integer(1, 40), rng.integer(0, 400), 8, 2, 32, static_cast<float>(rng.integer(1, 20))},
  };
  for (const auto& c : cases) check_attention(rng, c, &pool);
  check_attention(rng, {19, 50, 8, 4, 16, 1.0f}, nullptr);
}

TEST(CpuOps, AttentionQueryChunksGiveTheSameBits) {
  // Queries [p, p+n) in one call equal the same queries split into two calls.
  TestRng rng;
  SCOPED_TRACE(rng.trace());
  const int qh = 8, kvh = 2, d = 32;
  const int64_t p = 90, n = 41, split = rng.integer(1, n - 1);
  const auto q = rng.uniform(n * qh * d);
  const auto k = rng.uniform((p + n) * kvh * d);
  const auto v = rng.uniform((p + n) * kvh * d);
  auto whole = test::poisoned(q.size());
  cpu::attention(q.data(), n, p, qh, k.data(), v.data(), kvh, d, whole.data(), nullptr);
  auto parts = test::poisoned(q.size());
  cpu::attention(q.data(), split, p, qh, k.data(), v.data(), kvh, d, parts.data(), nullptr);
  cpu::attention(q.data() + split * qh * d, n - split, p + split, qh, k.data(), v.data(), kvh, d,
                 parts.data() + split * qh * d, nullptr);
  EXPECT_EQ(whole, parts) << "split at " << split;
}

TEST(CpuOps, AttentionMapsQueryHeadsToTheirKvHead) {
  // Each kv head's values are a constant equal to its index, so every output of q head h must
  // be h / (q_heads / kv_heads) whatever the weights.
  TestRng rng;
  SCOPED_TRACE(rng.trace());
  const int qh = 12, kvh = 3, d = 16;
  const int64_t n = 9, p = 23;
  const auto q = rng.uniform(n * qh * d);
  const auto k = rng.uniform((p + n) * kvh * d);
  std::vector<float> v((p + n) * kvh * d);
  for (int64_t j = 0; j < p + n; ++j)
    for (int g = 0; g < kvh; ++g)
      for (int e = 0; e < d; ++e) v[(j * kvh + g) * d + e] = static_cast<float>(g + 1);
  auto out = test::poisoned(q.size());
  cpu::attention(q.data(), n, p, qh, k.data(), v.data(), kvh, d, out.data(), nullptr);
  for (int64_t i = 0; i < n; ++i)
    for (int h = 0; h < qh; ++h)
      for (int e = 0; e < d; ++e)
        ASSERT_NEAR(out[(i * qh + h) * d + e], h / (qh / kvh) + 1, 1e-5) << "query " << i << " head " << h;
}

TEST(CpuOps, SwigluMatchesFloat64AndSaturates) {
  TestRng rng;
  SCOPED_TRACE(rng.trace());
  auto gate = rng.uniform(1000, -8.0f, 8.0f);
  gate[0] = -200.0f;  // exp(200) overflows float: silu must still go to 0
  gate[1] = 200.0f;
  const auto up = rng.uniform(1000, -2.0f, 2.0f);
  std::vector<double> want(gate.size());
  for (size_t i = 0; i < gate.size(); ++i) want[i] = gate[i] / (1.0 + std::exp(-static_cast<double>(gate[i]))) * up[i];
  auto out = test::poisoned(gate.size());
  cpu::swiglu(gate.data(), up.data(), static_cast<int64_t>(gate.size()), out.data());
  EXPECT_LT(relative_error(out, want), kElementwiseTolerance);
  EXPECT_TRUE(test::all_finite(out.data(), out.size()));
}

TEST(CpuOps, ResidualAddAddsInPlace) {
  TestRng rng;
  SCOPED_TRACE(rng.trace());
  const auto x0 = rng.uniform(333);
  const auto delta = rng.uniform(333);
  auto x = x0;
  cpu::residual_add(x.data(), delta.data(), static_cast<int64_t>(x.size()));
  for (size_t i = 0; i < x.size(); ++i) ASSERT_EQ(x[i], x0[i] + delta[i]);
}

TEST(CpuOps, ArgmaxTakesLowestIndexOnTiesAndSkipsNan) {
  TestRng rng;
  SCOPED_TRACE(rng.trace());
  auto x = rng.uniform(500);
  const int64_t first = rng.integer(1, 200), second = rng.integer(250, 499);
  x[first] = x[second] = 5.0f;
  x[0] = NAN;
  EXPECT_EQ(cpu::argmax(x.data(), static_cast<int64_t>(x.size())), first);
  const float all_nan[] = {NAN, NAN};
  EXPECT_EQ(cpu::argmax(all_nan, 2), -1);
  EXPECT_EQ(cpu::argmax(all_nan, 0), -1);
  const float negatives[] = {-3.0f, -1.0f, -1.0f, -2.0f};
  EXPECT_EQ(cpu::argmax(negatives, 4), 1);
}

TEST(CpuOps, Bf16RoundsToNearestEven) {
  EXPECT_EQ(cpu::round_to_bf16(1.0f), 1.0f);
  // bf16 keeps 7 mantissa bits: 1 + 2^-8 is halfway between 1 and 1 + 2^-7 -> even (1).
  EXPECT_EQ(cpu::round_to_bf16(1.0f + 0x1p-8f), 1.0f);
  // 1 + 3 * 2^-8 is halfway between 1 + 2^-7 (odd) and 1 + 2^-6 (even) -> 1 + 2^-6.
  EXPECT_EQ(cpu::round_to_bf16(1.0f + 3 * 0x1p-8f), 1.0f + 0x1p-6f);
  EXPECT_EQ(cpu::round_to_bf16(-(1.0f + 0x1p-8f + 0x1p-20f)), -(1.0f + 0x1p-7f));
  EXPECT_TRUE(std::isnan(cpu::round_to_bf16(NAN)));
  EXPECT_EQ(cpu::round_to_bf16(INFINITY), INFINITY);

  TestRng rng;
  SCOPED_TRACE(rng.trace());
  for (float x : rng.uniform(10000, -1000.0f, 1000.0f)) {
    const float r = cpu::round_to_bf16(x);
    const uint32_t bits = std::bit_cast<uint32_t>(r);
    ASSERT_EQ(bits & 0xFFFFu, 0u) << x;
    // No other bf16 value is closer: the neighbours one bf16 ulp either side are farther.
    const float up = std::bit_cast<float>(bits + 0x10000u), down = std::bit_cast<float>(bits - 0x10000u);
    ASSERT_LE(std::abs(r - x), std::abs(up - x)) << x;
    ASSERT_LE(std::abs(r - x), std::abs(down - x)) << x;
  }
}

TEST(CpuThreadPool, RunsEveryTaskOnceAndRethrows) {
  cpu::ThreadPool pool(4);
  EXPECT_EQ(pool.size(), 4);
  std::vector<std::atomic<int>> hits(1000);
  pool.parallel_for(1000, [&](int64_t i) { hits[i].fetch_add(1); });
  for (size_t i = 0; i < hits.size(); ++i) ASSERT_EQ(hits[i].load(), 1) << i;

  EXPECT_THROW(pool.parallel_for(100, [](int64_t i) {
    if (i == 42) throw Error("task 42 failed");
  }),
               Error);
  // Still usable after a failure, and a nested parallel_for runs inline instead of deadlocking.
  std::atomic<int> nested{0};
  pool.parallel_for(8, [&](int64_t) { pool.parallel_for(3, [&](int64_t) { nested.fetch_add(1); }); });
  EXPECT_EQ(nested.load(), 24);
  EXPECT_THROW(cpu::ThreadPool(-1), UsageError);
}

// Distinct threads that ran the tasks of one parallel_for; each task waits until `rendezvous`
// threads have arrived (or 10 s), so a pool that can use that many threads shows them all.
std::set<std::thread::id> threads_of_one_step(cpu::ThreadPool& pool, int64_t tasks, int rendezvous) {
  std::mutex mutex;
  std::condition_variable arrived;
  std::set<std::thread::id> ids;
  std::vector<std::atomic<int>> hits(static_cast<size_t>(tasks));
  pool.parallel_for(tasks, [&](int64_t i) {
    hits[static_cast<size_t>(i)].fetch_add(1);
    std::unique_lock lock(mutex);
    ids.insert(std::this_thread::get_id());
    arrived.notify_all();
    arrived.wait_for(lock, std::chrono::seconds(10), [&] { return static_cast<int>(ids.size()) >= rendezvous; });
  });
  for (size_t i = 0; i < hits.size(); ++i) EXPECT_EQ(hits[i].load(), 1) << i;
  return ids;
}

TEST(CpuThreadPool, LeavesACoreToEachWorkingLoadLaneThread) {
  cpu::ThreadPool pool(4, cpu::ThreadPool::LoadLane::share_cores);
  cpu::ThreadPool selfish(4);  // the default: ignores the load lane
  ASSERT_EQ(load_lane_threads_working(), 0);
  EXPECT_EQ(pool.width_now(), 4);
  EXPECT_EQ(threads_of_one_step(pool, 64, 4).size(), 4u);
  {
    LoadLaneWork reader, lane;
    EXPECT_EQ(load_lane_threads_working(), 2);
    EXPECT_EQ(pool.width_now(), 2);
    EXPECT_EQ(selfish.width_now(), 4);
    // One worker takes part beside the caller (a rendezvous of 2 is met without waiting out 10 s).
    const auto ids = threads_of_one_step(pool, 64, 2);
    EXPECT_LE(ids.size(), 2u);
    {
      LoadLaneWork a, b, c;  // more working threads than the pool has cores: the caller alone
      EXPECT_EQ(pool.width_now(), 1);
      const auto alone = threads_of_one_step(pool, 16, 1);
      ASSERT_EQ(alone.size(), 1u);
      EXPECT_EQ(*alone.begin(), std::this_thread::get_id());
    }
  }
  EXPECT_EQ(load_lane_threads_working(), 0);
  // Every worker comes back once the load lane waits again, including those that slept through.
  EXPECT_EQ(threads_of_one_step(pool, 64, 4).size(), 4u);
  const auto steps = pool.steps();
  EXPECT_EQ(steps.parallel, 4u);
  EXPECT_EQ(steps.narrowed, 2u);
}

}  // namespace
}  // namespace cake
