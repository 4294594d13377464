#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "common/error.hpp"
#include "engine/chunk_claims.hpp"

using namespace cake;

TEST(ChunkClaims, CakeMeetsInTheMiddleEachChunkOnce) {
  ChunkClaims claims(10, 10, 0, ChunkClaims::LoadOrder::back_to_front);
  EXPECT_EQ(claims.claim_for_compute(), 0);
  EXPECT_EQ(claims.claim_for_load(), 9);
  EXPECT_EQ(claims.claim_for_load(), 8);
  EXPECT_EQ(claims.claim_for_compute(), 1);
  for (int i = 0; i < 3; ++i) claims.claim_for_load();  // 7, 6, 5
  EXPECT_EQ(claims.claim_for_compute(), 2);
  EXPECT_EQ(claims.claim_for_compute(), 3);
  EXPECT_EQ(claims.claim_for_compute(), 4);
  EXPECT_FALSE(claims.claim_for_compute());
  EXPECT_FALSE(claims.claim_for_load());
}

TEST(ChunkClaims, SplitAndComputeOnlyAndIoOrder) {
  ChunkClaims split(8, 3, 3, ChunkClaims::LoadOrder::back_to_front);
  int computed = 0;
  while (split.claim_for_compute()) ++computed;
  EXPECT_EQ(computed, 3);
  EXPECT_EQ(split.claim_for_load(), 7);

  ChunkClaims io(4, 0, 0, ChunkClaims::LoadOrder::front_to_back);
  EXPECT_FALSE(io.claim_for_compute());
  for (int i = 0; i < 4; ++i) EXPECT_EQ(io.claim_for_load(), i);
  EXPECT_FALSE(io.claim_for_load());
}

TEST(ChunkClaims, ConcurrentLanesNeverShareAChunk) {
  for (int trial = 0; trial < 50; ++trial) {
    const int n = 200;
    ChunkClaims claims(n, n, 0, ChunkClaims::LoadOrder::back_to_front);
    std::vector<std::atomic<int>> taken(n);
    auto lane = [&](bool compute) {
      while (auto c = compute ? claims.claim_for_compute() : claims.claim_for_load()) taken[*c].fetch_add(1);
    };
    std::thread a(lane, true), b(lane, false);
    a.join();
    b.join();
    for (int i = 0; i < n; ++i) ASSERT_EQ(taken[i].load(), 1) << "chunk " << i;
    // Compute's chunks form a prefix, load's a suffix.
    int boundary = 0;
    while (boundary < n && claims.owner(boundary) == Lane::compute) ++boundary;
    for (int i = boundary; i < n; ++i) EXPECT_EQ(claims.owner(i), Lane::load);
  }
}

TEST(ChunkClaims, ComputeRunsStopAtTheLoadLanesChunksAndTheLimit) {
  ChunkClaims claims(10, 10, 0, ChunkClaims::LoadOrder::back_to_front);
  EXPECT_EQ(claims.claim_for_load(), 9);
  EXPECT_EQ(claims.claim_run_for_compute(4), (ChunkClaims::Run{0, 4}));
  EXPECT_EQ(claims.claim_for_load(), 8);
  EXPECT_EQ(claims.claim_for_load(), 7);
  EXPECT_EQ(claims.claim_run_for_compute(4), (ChunkClaims::Run{4, 3}));  // 7 is the load lane's
  EXPECT_EQ(claims.unclaimed(), 0);
  EXPECT_FALSE(claims.claim_run_for_compute(4));
  EXPECT_THROW(claims.claim_run_for_compute(0), Error);

  ChunkClaims split(8, 3, 3, ChunkClaims::LoadOrder::back_to_front);
  EXPECT_EQ(split.claim_run_for_compute(8), (ChunkClaims::Run{0, 3}));  // split at chunk 3
  EXPECT_FALSE(split.claim_run_for_compute(8));
}

TEST(ChunkClaims, TakeOverOnlyAnUnfinishedComputeRunThenComputeStandsDown) {
  ChunkClaims claims(8, 8, 0, ChunkClaims::LoadOrder::back_to_front);
  EXPECT_EQ(claims.claim_for_load(), 7);  // from the back while the lanes meet in the middle
  const auto first = claims.claim_run_for_compute(2);
  ASSERT_TRUE(first);
  EXPECT_TRUE(claims.finish_compute(*first));
  EXPECT_FALSE(claims.take_over_from_compute(*first));  // finished: too late
  EXPECT_FALSE(claims.compute_stood_down());
  const auto second = claims.claim_run_for_compute(2);
  ASSERT_TRUE(second);
  EXPECT_EQ(*second, (ChunkClaims::Run{2, 2}));
  EXPECT_FALSE(claims.take_over_from_compute(ChunkClaims::Run{4, 1}));  // not the compute lane's
  EXPECT_TRUE(claims.take_over_from_compute(*second));
  EXPECT_TRUE(claims.compute_stood_down());
  EXPECT_EQ(claims.owner(2), Lane::load);
  EXPECT_EQ(claims.owner(3), Lane::load);
  EXPECT_FALSE(claims.finish_compute(*second));  // its copy no longer counts
  EXPECT_FALSE(claims.claim_run_for_compute(2));  // stood down although chunks 4 to 6 are free
  // Nothing meets in the middle any more: the rest goes front to back.
  EXPECT_EQ(claims.peek_for_load(), 4);
  EXPECT_EQ(claims.claim_for_load(), 4);
  EXPECT_EQ(claims.claim_for_load(), 5);
  EXPECT_EQ(claims.claim_for_load(), 6);
  EXPECT_FALSE(claims.claim_for_load());
  EXPECT_FALSE(claims.peek_for_load());
}
