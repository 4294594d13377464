// More repetitions where they are cheap (SweepConfig::max_point_seconds, max_noise): the median's
// relative standard error, and a sweep that adds runs to a point only while its median is noisy and
// its own budget lasts (the points of a group that qualify alternate).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <random>
#include <vector>

#include "common/error.hpp"
#include "engine/sweep.hpp"
#include "kernels/backend_factory.hpp"
#include "kernels/presets.hpp"
#include "workloads/synthetic.hpp"

namespace cake {
namespace {

TEST(Repetitions, MedianRelativeError) {
  const double inf = std::numeric_limits<double>::infinity();
  EXPECT_EQ(median_relative_error(std::vector<double>{}), inf);
  EXPECT_EQ(median_relative_error(std::vector<double>{5}), inf);
  EXPECT_EQ(median_relative_error(std::vector<double>{0, 0, 0}), inf);
  EXPECT_DOUBLE_EQ(median_relative_error(std::vector<double>{7, 7, 7, 7}), 0);
  // mean 2, sample sd 1, median 2: 1.2533 / (sqrt(3) * 2)
  EXPECT_NEAR(median_relative_error(std::vector<double>{3, 1, 2}), 1.2533 / (std::sqrt(3.0) * 2), 1e-12);
  // The same four samples four times over: the sample sd moves from sqrt(2/3) to sqrt(8/15), and
  // sqrt(n) from 2 to 4.
  const std::vector<double> few = {9, 10, 11, 10};
  std::vector<double> many;
  for (int i = 0; i < 4; ++i) many.insert(many.end(), few.begin(), few.end());
  EXPECT_NEAR(median_relative_error(many) / median_relative_error(few), std::sqrt((8.0 / 15.0) / (2.0 / 3.0)) / 2, 1e-12);
}

struct Fixture {
  const uint64_t seed = std::random_device{}();
  const ModelConfig model = preset_model("tiny");
  BackendChoice choice;
  SweepConfig config;
  std::string dir;
  Fixture() {
    BackendOptions options;
    options.max_context_tokens = 80;
    options.max_chunk_tokens = 32;
    options.cpu_threads = 1;
    choice = make_backend(BackendKind::cpu, model, options);
    dir = (std::filesystem::temp_directory_path() / ("cake-reps-" + std::to_string(seed))).string();
    config.requests = {synthetic_request(64, 8, model.vocab, seed)};
    config.chunk_tokens = {32};
    config.modes = {parse_mode("compute"), parse_mode("io"), parse_mode("cake")};
    config.sources = {parse_source_spec("mem")};
    config.store_dir = dir;
    config.repeat = 2;
    config.warmup = 0;
    config.verify = VerifyLevel::off;
  }
  ~Fixture() { std::filesystem::remove_all(dir); }
  std::vector<size_t> reps_per_point() {
    std::vector<size_t> out;
    for (const PointResult& p : run_sweep(*choice.backend, config, nullptr)) out.push_back(p.reps.size());
    return out;
  }
};

TEST(Repetitions, NoBudgetMeansExactlyRepeat) {
  Fixture f;
  SCOPED_TRACE(testing::Message() << "seed " << f.seed);
  f.config.max_point_seconds = 0;
  f.config.max_noise = 1e-12;
  EXPECT_EQ(f.reps_per_point(), (std::vector<size_t>{2, 2, 2}));
}

TEST(Repetitions, QuietMediansNeedNoMoreRounds) {
  Fixture f;
  SCOPED_TRACE(testing::Message() << "seed " << f.seed);
  f.config.max_point_seconds = 30;
  f.config.max_noise = 100;  // 10000%: any two samples are quiet enough
  EXPECT_EQ(f.reps_per_point(), (std::vector<size_t>{2, 2, 2}));
}

// A noise target no two timings meet: runs go on until each point's budget is spent, for the
// compute-only point and for each mode of the loading group.
TEST(Repetitions, NoisyMediansGetMoreRoundsWithinTheBudget) {
  Fixture f;
  SCOPED_TRACE(testing::Message() << "seed " << f.seed);
  f.config.max_point_seconds = 0.5;  // a round of this tiny request takes a few ms
  f.config.max_noise = 1e-12;
  const std::vector<size_t> reps = f.reps_per_point();
  ASSERT_EQ(reps.size(), 3u);
  EXPECT_GT(reps[0], 2u) << "compute-only";
  EXPECT_GT(reps[1], 2u) << "io";
  EXPECT_GT(reps[2], 2u) << "cake";
}

// The rule itself: while a point within its budget is noisy, every point within its budget runs
// again (quiet ones too, so the modes stay interleaved); a point out of budget never does, and a
// noisy point out of budget does not keep the others going.
TEST(Repetitions, PointsWithinTheirOwnBudgetRunWhileOneOfThemIsNoisy) {
  const std::vector<double> quiet = {10, 10, 10, 10};  // relative error 0
  const std::vector<double> noisy = {10, 14, 8, 12};   // ~13%
  const double budget = 3;
  // 0: noisy, under budget; 1: quiet, under budget (runs along); 2: noisy but spent; 3: just under.
  EXPECT_EQ(points_for_more_rounds({noisy, quiet, noisy, noisy}, {0.5, 0.1, 3.0, 2.999}, budget, 0.01),
            (std::vector<size_t>{0, 1, 3}));
  // Only the spent point is noisy: nothing more.
  EXPECT_TRUE(points_for_more_rounds({quiet, noisy}, {0.1, 5.0}, budget, 0.01).empty());
  // A looser target makes the noisy points quiet enough.
  EXPECT_TRUE(points_for_more_rounds({noisy, quiet}, {0, 0}, budget, 0.5).empty());
  // No budget: nothing more, however noisy.
  EXPECT_TRUE(points_for_more_rounds({noisy, noisy}, {0, 0}, 0, 0.01).empty());
  // One sample has no error estimate: it is noisy by definition and gets more within budget.
  EXPECT_EQ(points_for_more_rounds({{10}}, {0}, budget, 0.01), (std::vector<size_t>{0}));
  EXPECT_THROW(points_for_more_rounds({noisy}, {0, 0}, budget, 0.01), InternalError);
}

TEST(Repetitions, ABadBudgetOrTargetIsAUsageError) {
  Fixture f;
  f.config.max_point_seconds = -1;
  EXPECT_THROW(run_sweep(*f.choice.backend, f.config, nullptr), UsageError);
  f.config.max_point_seconds = 1;
  f.config.max_noise = 0;
  EXPECT_THROW(run_sweep(*f.choice.backend, f.config, nullptr), UsageError);
}

}  // namespace
}  // namespace cake
