// The meet guard's arithmetic, table-driven: paces, what is in flight, the compute lane's progress.
// (The engine tests exercise the same decisions through real threads and clocks.)
#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "engine/meet_guard.hpp"

using namespace cake;
using State = MeetGuard::State;

namespace {

constexpr int64_t kMs = 1'000'000;

// A state after `load_done` deliveries at `load_ms` each and a compute lane at `compute_ms` a chunk.
State paced(int load_done, double load_ms, int compute_done, double compute_ms) {
  State s;
  s.load_done = load_done;
  s.load_last_done_ns = static_cast<int64_t>(load_done * load_ms * kMs);
  s.compute_done = compute_done;
  s.compute_next = compute_done;
  s.compute_chunk_ns = compute_done > 0 ? compute_ms * kMs : 0;
  return s;
}

}  // namespace

TEST(MeetGuard, JudgeCommitsOneBlindChunkThenComparesPaces) {
  struct Case {
    const char* what;
    State state;
    int in_flight;
    int chunk;
    MeetGuard::Verdict expected;
  };
  const Case cases[] = {
      {"nothing measured, nothing held: claim blind", paced(0, 0, 0, 0), 0, 9, MeetGuard::Verdict::claim},
      {"nothing delivered, one held: wait", paced(0, 0, 3, 1), 1, 8, MeetGuard::Verdict::later},
      {"compute pace unknown: claim", paced(1, 10, 0, 0), 0, 8, MeetGuard::Verdict::claim},
      // compute at chunk 3, 1 ms a chunk: chunk 8 in 6 ms; load 10 ms a chunk: 10 ms -> compute first
      {"compute reaches it sooner: stop", paced(1, 10, 3, 1), 0, 8, MeetGuard::Verdict::stop},
      // compute 5 ms a chunk: chunk 8 in 30 ms; load: 10 ms -> claim
      {"load delivers sooner: claim", paced(1, 10, 3, 5), 0, 8, MeetGuard::Verdict::claim},
      // load 10 ms, two in flight: 30 ms; compute 5 ms a chunk to chunk 6: 20 ms -> stop
      {"what is in flight counts", paced(1, 10, 3, 5), 2, 6, MeetGuard::Verdict::stop},
  };
  for (const Case& c : cases) {
    State s = c.state;
    s.load_in_flight = c.in_flight;
    EXPECT_EQ(MeetGuard::judge(s, c.chunk, 0), c.expected) << c.what;
  }
}

namespace {
// The compute lane finished one-chunk runs 0..ms.size()-1, taking ms[i] for chunk i.
State with_runs(const std::vector<double>& ms) {
  State s;
  for (size_t i = 0; i < ms.size(); ++i) {
    const double ns = ms[i] * kMs;
    s.fit_w += 1;
    s.fit_x += static_cast<double>(i);
    s.fit_xx += static_cast<double>(i * i);
    s.fit_y += ns;
    s.fit_xy += static_cast<double>(i) * ns;
    s.compute_chunk_ns = ns;
  }
  s.compute_done = static_cast<int>(ms.size());
  s.compute_next = s.compute_done;
  return s;
}
}  // namespace

TEST(MeetGuard, ChunksGetDearerWithTheirIndex) {
  // 10, 12, 14, 16 ms: chunk i costs 10 + 2 i.
  State s = with_runs({10, 12, 14, 16});
  EXPECT_DOUBLE_EQ(MeetGuard::compute_chunk_cost_ns(s, 4), 18.0 * kMs);
  EXPECT_DOUBLE_EQ(MeetGuard::compute_chunk_cost_ns(s, 9), 28.0 * kMs);
  EXPECT_DOUBLE_EQ(MeetGuard::compute_chunk_cost_ns(s, 2), 16.0 * kMs);  // never below the last run
  // Load: one chunk delivered at 120 ms. Chunk 9 from chunk 4: 18 + 20 + ... + 28 = 138 ms, later
  // than the load lane's 120: claim (at the last chunk's 16 ms it would be 96 ms: stop).
  s.load_done = 1;
  s.load_last_done_ns = 120 * kMs;
  EXPECT_EQ(MeetGuard::judge(s, 9, 0), MeetGuard::Verdict::claim);
  // Chunk 7 from chunk 4: 18 + 20 + 22 + 24 = 84 ms: stop.
  EXPECT_EQ(MeetGuard::judge(s, 7, 0), MeetGuard::Verdict::stop);
  // The run in progress on chunk 4 (18 ms) started at 100 ms; the load lane needs 121 ms. Chunk 9
  // is 138 ms away at 100 ms (claim), 122 at 116 ms (claim), 120 at 118 ms (stop).
  s.compute_run_count = 1;
  s.compute_run_start_ns = 100 * kMs;
  s.load_last_done_ns = 121 * kMs;
  EXPECT_EQ(MeetGuard::judge(s, 9, 100 * kMs), MeetGuard::Verdict::claim);
  EXPECT_EQ(MeetGuard::judge(s, 9, 116 * kMs), MeetGuard::Verdict::claim);
  EXPECT_EQ(MeetGuard::judge(s, 9, 118 * kMs), MeetGuard::Verdict::stop);
  // No more than the run's own cost is taken off, however long it has run: 120 ms against 119.
  s.load_last_done_ns = 119 * kMs;
  EXPECT_EQ(MeetGuard::judge(s, 9, 10'000 * kMs), MeetGuard::Verdict::claim);

  // A falling line (a slow first chunk) is not extrapolated: the last run's pace.
  const State falling = with_runs({30, 10, 10});
  EXPECT_DOUBLE_EQ(MeetGuard::compute_chunk_cost_ns(falling, 20), 10.0 * kMs);
  // One measured chunk: its pace.
  EXPECT_DOUBLE_EQ(MeetGuard::compute_chunk_cost_ns(with_runs({7}), 20), 7.0 * kMs);
  EXPECT_DOUBLE_EQ(MeetGuard::compute_chunk_cost_ns(State{}, 3), 0.0);
}

TEST(MeetGuard, TakeOverWhenTheLoadLaneAloneFinishesFirst) {
  struct Case {
    const char* what;
    double load_ms;
    int unclaimed;
    int run_count;
    int layers_done;      // of 10
    double elapsed_ms;    // since the run started, at the last report and now
    double last_run_ms;   // per chunk, of the last finished run (0: none)
    MeetGuard::Takeover expected;
  };
  const Case cases[] = {
      {"no run in progress", 1, 0, 0, 0, 0, 0, MeetGuard::Takeover::leave},
      {"no layer reported, no pace: unknown", 1, 3, 1, 0, 1, 0, MeetGuard::Takeover::unknown},
      // 2 layers in 20 ms: 80 ms left; load 1 ms a chunk x (3 + 1) = 4 ms
      {"fast loads, slow run: take", 1, 3, 1, 2, 20, 0, MeetGuard::Takeover::take},
      // 8 layers in 80 ms: 20 ms left; load 5 ms x (3 + 2) = 25 ms
      {"run nearly done: leave", 5, 3, 2, 8, 80, 0, MeetGuard::Takeover::leave},
      // no layer reported; last run 30 ms a chunk, 2 chunks, 10 ms in: 50 ms left; load 1 x 3
      {"pace of the last run: take", 1, 1, 2, 0, 10, 30, MeetGuard::Takeover::take},
  };
  for (const Case& c : cases) {
    State s = paced(4, c.load_ms, c.last_run_ms > 0 ? 4 : 0, c.last_run_ms);
    s.compute_run_count = c.run_count;
    s.compute_run_start_ns = 100 * kMs;
    s.compute_layers = c.layers_done > 0 ? 10 : 0;
    s.compute_layers_done = c.layers_done;
    s.compute_progress_ns = s.compute_run_start_ns + static_cast<int64_t>(c.elapsed_ms * kMs);
    const int64_t now = s.compute_progress_ns;
    EXPECT_EQ(MeetGuard::judge_takeover(s, now, c.unclaimed), c.expected) << c.what;
  }
}

TEST(MeetGuard, RunsShrinkTowardTheMeet) {
  // Paces unknown: half the unclaimed chunks are the compute lane's share; runs are half of that.
  EXPECT_EQ(MeetGuard::run_length(State{}, 32, 4), 4);
  EXPECT_EQ(MeetGuard::run_length(State{}, 8, 4), 2);
  EXPECT_EQ(MeetGuard::run_length(State{}, 3, 4), 1);
  EXPECT_EQ(MeetGuard::run_length(State{}, 32, 1), 1);
  // Compute 3x as fast as loading: its share of 16 is 12, runs of 6, capped at 4.
  EXPECT_EQ(MeetGuard::run_length(paced(2, 30, 2, 10), 16, 8), 6);
  EXPECT_EQ(MeetGuard::run_length(paced(2, 30, 2, 10), 16, 4), 4);
  // Loading 3x as fast: share 4 of 16, runs of 2.
  EXPECT_EQ(MeetGuard::run_length(paced(2, 10, 2, 30), 16, 8), 2);
}

TEST(MeetGuard, TheFirstClaimWeighsTheLinksNominalRate) {
  State s;
  // No rate known: the first chunk is claimed blind.
  EXPECT_EQ(MeetGuard::judge(s, 15, 0), MeetGuard::Verdict::claim);
  // A chunk takes 100 ms at the throttle's rate; the compute lane has reported nothing yet.
  s.nominal_load_ns_per_chunk = 100.0 * kMs;
  EXPECT_EQ(MeetGuard::judge(s, 15, 0), MeetGuard::Verdict::wait_for_compute);
  // Chunk 0 in progress: 2 of 4 layers in 5 ms, so 10 ms a chunk.
  s.compute_run_count = 1;
  s.compute_layers = 4;
  s.compute_layers_done = 2;
  s.compute_progress_ns = 5 * kMs;
  EXPECT_DOUBLE_EQ(MeetGuard::compute_chunk_cost_ns(s, 0), 10.0 * kMs);
  // Chunk 5: 6 x 10 - 5 = 55 ms, sooner than the load lane: wait (not stop: the next chunks, dearer
  // than the first, may show the compute lane slower).
  EXPECT_EQ(MeetGuard::judge(s, 5, 5 * kMs), MeetGuard::Verdict::wait_for_compute);
  // Chunk 15: 16 x 10 - 5 = 155 ms: claim.
  EXPECT_EQ(MeetGuard::judge(s, 15, 5 * kMs), MeetGuard::Verdict::claim);
  // Once a chunk is in flight, the rule of one blind chunk holds; once one was delivered, the
  // measured pace replaces the nominal one (here 20 ms a chunk: chunk 5 is the load lane's).
  s.load_in_flight = 1;
  EXPECT_EQ(MeetGuard::judge(s, 14, 5 * kMs), MeetGuard::Verdict::later);
  s.load_in_flight = 0;
  s.load_done = 1;
  s.load_last_done_ns = 20 * kMs;
  s.compute_done = 1;
  s.compute_next = 1;
  s.compute_run_count = 0;
  s.compute_chunk_ns = 10.0 * kMs;
  s.fit_w = 1;
  s.fit_y = 10.0 * kMs;
  EXPECT_EQ(MeetGuard::judge(s, 5, 20 * kMs), MeetGuard::Verdict::claim);
  EXPECT_EQ(MeetGuard::judge(s, 1, 20 * kMs), MeetGuard::Verdict::stop);  // 10 ms of compute against 20
}

// The compute lane leaves its next chunk to the load lane when the load lane would deliver it (after
// what is in flight and every unclaimed chunk) no later than the compute lane could compute it; and
// whenever it leaves one, judge() tells the load lane to claim whatever it would take next, so the
// lanes never both wait.
TEST(MeetGuard, TheComputeLaneLeavesAChunkTheLoadLaneDeliversSooner) {
  struct Case {
    const char* what;
    int load_done;
    double load_ms;
    int in_flight;
    int unclaimed;
    int compute_done;
    double compute_ms;
    int run_count;
    bool expected;
  };
  const Case cases[] = {
      // 64K at 400 Gbps on the H200: 2.7 ms a load, 30 ms a compute chunk, one in flight, one left
      {"fast loads near the meet: leave", 58, 2.7, 1, 1, 6, 30, 0, true},
      // 12 left: (1 + 12) x 2.7 = 35 ms > 30
      {"many chunks still to load: compute", 46, 2.7, 1, 12, 6, 30, 0, false},
      {"no delivery yet: the pace is unknown", 0, 0, 1, 1, 6, 30, 0, false},
      {"no compute pace yet", 4, 2.7, 1, 1, 0, 0, 0, false},
      {"a run in progress: asked between runs only", 58, 2.7, 1, 1, 6, 30, 1, false},
      // slow link: 200 ms a load x 2 > 30 ms
      {"slow loads: compute", 5, 200, 1, 1, 6, 30, 0, false},
  };
  for (const Case& c : cases) {
    State s = paced(c.load_done, c.load_ms, c.compute_done, c.compute_ms);
    s.load_in_flight = c.in_flight;
    s.compute_run_count = c.run_count;
    const int chunk = c.compute_done;
    EXPECT_EQ(MeetGuard::leave_to_load(s, chunk, c.unclaimed), c.expected) << c.what;
    if (c.expected) {
      const int load_next = chunk + c.unclaimed - 1;  // the load lane claims from the back
      EXPECT_EQ(MeetGuard::judge(s, load_next, 0), MeetGuard::Verdict::claim) << c.what;
    }
  }
}

// The compute lane's start waits for the load lane's first decision: a claim, or a wait for the
// compute lane's own first report (which it could never get while the compute lane waits).
TEST(MeetGuard, ALoadLaneWaitingForComputeNewsHasDecided) {
  MeetGuard guard;
  guard.start(0, 1e9);
  EXPECT_FALSE(guard.load_decided());
  std::thread load([&] { guard.wait_for_compute_news(); });
  while (!guard.load_decided()) std::this_thread::yield();  // the test times out if it never is
  EXPECT_FALSE(guard.load_began());
  guard.compute_started(0, 1, 1);  // news: the load lane wakes
  load.join();
  MeetGuard claimed;
  claimed.start(0);
  claimed.load_claimed();
  EXPECT_TRUE(claimed.load_decided());
}
