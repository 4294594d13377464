// MeetGuard::judge and the claim order are arithmetic on what the lanes reported: tested here
// directly, case by case, with no clock and no threads (the engine tests cover them only through
// wall-clock runs, which depend on timing).
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "engine/chunk_claims.hpp"
#include "engine/meet_guard.hpp"

using namespace cake;

namespace {

constexpr int64_t kMs = 1'000'000;

// What a lane reported, in order. Times are ms after t0 (t0 itself is at 1000 ms, so the guard
// must measure from t0 and not from 0).
struct Report {
  enum Kind { compute_started, compute_finished, load_claimed, load_finished } kind;
  int chunk = 0;            // compute_*: the chunk
  double ms = 0;            // compute_finished: its duration; load_finished: when, after t0
};

struct JudgeCase {
  std::string name;
  std::vector<Report> reports;
  int chunk;                // the chunk the load lane asks about
  MeetGuard::Verdict want;
};

constexpr int64_t kT0Ns = 1000 * kMs;

MeetGuard::Verdict judge_after(const JudgeCase& c) {
  MeetGuard guard;
  guard.start(kT0Ns);
  for (const Report& r : c.reports) {
    switch (r.kind) {
      case Report::compute_started: guard.compute_started(r.chunk, 1, kT0Ns); break;
      case Report::compute_finished: guard.compute_finished(r.chunk, 1, static_cast<int64_t>(r.ms * kMs)); break;
      case Report::load_claimed: guard.load_claimed(); break;
      case Report::load_finished: guard.load_finished(kT0Ns + static_cast<int64_t>(r.ms * kMs)); break;
    }
  }
  return guard.judge(c.chunk, kT0Ns);  // no time has passed since the last compute_started
}

const char* name_of(MeetGuard::Verdict v) {
  switch (v) {
    case MeetGuard::Verdict::claim: return "claim";
    case MeetGuard::Verdict::later: return "later";
    case MeetGuard::Verdict::stop: return "stop";
    case MeetGuard::Verdict::wait_for_compute: return "wait_for_compute";
  }
  return "?";
}

using R = Report;
using V = MeetGuard::Verdict;

// Paces: compute_eta = the cost of every chunk from compute_next to `chunk`, each the last compute
// duration while the measured chunks do not show it growing with the index (else the fitted line);
// load_eta = (in flight + 1) * (last load finish - t0) / loads finished. stop iff compute_eta < load_eta.
const std::vector<JudgeCase> kJudgeCases = {
    {"nothing reported yet: the first chunk is claimed blind", {}, 31, V::claim},
    {"one blind chunk in flight, nothing delivered: wait", {{R::load_claimed}}, 30, V::later},
    {"compute measured but load not: still one blind chunk only",
     {{R::load_claimed}, {R::compute_started, 0}, {R::compute_finished, 0, 1}}, 30, V::later},
    {"load delivered, compute not measured yet: claim",
     {{R::load_claimed}, {R::load_finished, 0, 100}}, 30, V::claim},
    // load 100 ms a chunk; compute 10 ms a chunk, on chunk 1 next.
    {"compute reaches chunk 5 in 50 ms, load needs 100: stop",
     {{R::load_claimed}, {R::load_finished, 0, 100}, {R::compute_started, 0}, {R::compute_finished, 0, 10}}, 5, V::stop},
    {"compute needs 200 ms to reach chunk 20, load 100: claim",
     {{R::load_claimed}, {R::load_finished, 0, 100}, {R::compute_started, 0}, {R::compute_finished, 0, 10}}, 20, V::claim},
    {"a tie goes to the load lane (stop only when compute is strictly sooner)",
     {{R::load_claimed}, {R::load_finished, 0, 100}, {R::compute_started, 0}, {R::compute_finished, 0, 10}}, 10, V::claim},
    {"a chunk already in flight on the load lane delays the next one: stop",
     {{R::load_claimed}, {R::load_finished, 0, 100}, {R::load_claimed},
      {R::compute_started, 0}, {R::compute_finished, 0, 10}}, 15, V::stop},
    {"the same chunk with nothing in flight: claim",
     {{R::load_claimed}, {R::load_finished, 0, 100}, {R::compute_started, 0}, {R::compute_finished, 0, 10}}, 15, V::claim},
    {"the load pace averages every delivered chunk since t0 (300 ms / 3)",
     {{R::load_claimed}, {R::load_finished, 0, 250}, {R::load_claimed}, {R::load_finished, 0, 270},
      {R::load_claimed}, {R::load_finished, 0, 300}, {R::compute_started, 0}, {R::compute_finished, 0, 10}}, 9, V::stop},
    {"... so chunk 11 (110 ms of compute) is still the load lane's",
     {{R::load_claimed}, {R::load_finished, 0, 250}, {R::load_claimed}, {R::load_finished, 0, 270},
      {R::load_claimed}, {R::load_finished, 0, 300}, {R::compute_started, 0}, {R::compute_finished, 0, 10}}, 11, V::claim},
    {"chunks dearer with their index (10 ms then 40 ms): chunks 2-4 take 70 + 100 + 130 ms",
     {{R::load_claimed}, {R::load_finished, 0, 100}, {R::compute_started, 0}, {R::compute_finished, 0, 10},
      {R::compute_started, 1}, {R::compute_finished, 1, 40}}, 4, V::claim},
    {"compute_started moves the compute lane's position: from chunk 3, chunk 5 is 30 ms away",
     {{R::load_claimed}, {R::load_finished, 0, 100}, {R::compute_started, 0}, {R::compute_finished, 0, 10},
      {R::compute_started, 3}}, 5, V::stop},
    {"the chunk the compute lane is on counts as not yet done",
     {{R::load_claimed}, {R::load_finished, 0, 100}, {R::compute_started, 0}, {R::compute_finished, 0, 60},
      {R::compute_started, 1}}, 2, V::claim},
};

}  // namespace

TEST(MeetGuard, JudgeTable) {
  for (const JudgeCase& c : kJudgeCases)
    EXPECT_EQ(name_of(judge_after(c)), std::string(name_of(c.want))) << c.name;
}

// ---- claim order ---------------------------------------------------------------------------

namespace {

struct ClaimCase {
  std::string name;
  int chunks, compute_limit, load_floor;
  ChunkClaims::LoadOrder order;
  std::string script;                   // one letter per claim: C compute, L load
  std::vector<std::optional<int>> want; // chunk per claim; nullopt = nothing left for that lane
};

using O = ChunkClaims::LoadOrder;
constexpr std::nullopt_t kNone = std::nullopt;

const std::vector<ClaimCase> kClaimCases = {
    {"cake: compute from the front, load from the back, until they meet", 6, 6, 0, O::back_to_front, "CLLCCLC",
     {0, 5, 4, 1, 2, 3, kNone}},
    {"cake: the load lane may take everything when compute never claims", 3, 3, 0, O::back_to_front, "LLLL",
     {2, 1, 0, kNone}},
    {"split: compute stops at its limit, load stops at its floor", 6, 2, 2, O::back_to_front, "CCCLLLLL",
     {0, 1, kNone, 5, 4, 3, 2, kNone}},
    {"split at 0: all loaded", 3, 0, 0, O::back_to_front, "CLLL", {kNone, 2, 1, 0}},
    {"split at n: all computed", 3, 3, 3, O::back_to_front, "LCCC", {kNone, 0, 1, 2}},
    {"io: the load lane goes front to back", 4, 0, 0, O::front_to_back, "LLCLL", {0, 1, kNone, 2, 3}},
    {"compute-only: nothing for the load lane", 3, 3, 3, O::front_to_back, "LCCCC", {kNone, 0, 1, 2, kNone}},
    {"no chunks (empty prefix)", 0, 0, 0, O::back_to_front, "CL", {kNone, kNone}},
};

}  // namespace

TEST(ChunkClaims, OrderTable) {
  for (const ClaimCase& c : kClaimCases) {
    ASSERT_EQ(c.script.size(), c.want.size()) << c.name;
    ChunkClaims claims(c.chunks, c.compute_limit, c.load_floor, c.order);
    for (size_t i = 0; i < c.script.size(); ++i) {
      const bool compute = c.script[i] == 'C';
      if (!compute) {
        const std::optional<int> peek = claims.peek_for_load();
        EXPECT_EQ(peek, c.want[i]) << c.name << ": peek before claim " << i;
      }
      const std::optional<int> got = compute ? claims.claim_for_compute() : claims.claim_for_load();
      EXPECT_EQ(got, c.want[i]) << c.name << ": claim " << i << " (" << c.script[i] << ")";
      if (got) {
        EXPECT_EQ(claims.owner(*got), compute ? Lane::compute : Lane::load) << c.name;
      }
    }
  }
}
