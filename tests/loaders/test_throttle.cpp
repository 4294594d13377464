#include <algorithm>
#include <atomic>
#include <deque>
#include <fstream>
#include <random>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "common/clock.hpp"
#include "common/error.hpp"
#include "common/units.hpp"
#include "loaders/throttle.hpp"
#include "store_fixture.hpp"

namespace cake {
namespace {

using test::Seeded;
using test::TempDir;

// Two threads share one bucket, each taking random request sizes; the rate achieved over the
// whole load (start() to the last grant) must be the target within 3%.
double achieved_bytes_per_sec(Throttle& throttle, uint64_t total_bytes, std::mt19937_64& rng) {
  std::atomic<uint64_t> remaining{total_bytes};
  std::atomic<int64_t> last_grant_ns{0};
  const uint64_t seed = rng();
  throttle.start();
  const int64_t start_ns = now_ns();
  auto worker = [&](uint64_t worker_seed) {
    std::mt19937_64 local(worker_seed);
    for (;;) {
      const uint64_t want = 16 * 1024 + local() % (128 * 1024);
      uint64_t left = remaining.load();
      uint64_t take = 0;
      do {
        if (left == 0) return;
        take = std::min(want, left);
      } while (!remaining.compare_exchange_weak(left, left - take));
      throttle.acquire(take);
      int64_t t = now_ns();
      int64_t prev = last_grant_ns.load();
      while (t > prev && !last_grant_ns.compare_exchange_weak(prev, t)) {
      }
    }
  };
  std::thread a(worker, seed), b(worker, seed + 1);
  a.join();
  b.join();
  return static_cast<double>(total_bytes) / ns_to_s(last_grant_ns.load() - start_ns);
}

TEST(Throttle, ConstantRateIsAccurateAt8MBps) {
  Seeded s;
  const double rate = 8e6;
  auto t = make_throttle(rate, "");
  ASSERT_NE(t, nullptr);
  test::expect_timing_within(3, [&] {
    return test::ratio_problem("the achieved rate", achieved_bytes_per_sec(*t, static_cast<uint64_t>(rate * 1.5), s.rng) / rate, 0.03);
  });
}

TEST(Throttle, ConstantRateIsAccurateAt40MBps) {
  Seeded s;
  const double rate = 40e6;
  auto t = make_throttle(rate, "");
  ASSERT_NE(t, nullptr);
  test::expect_timing_within(3, [&] {
    return test::ratio_problem("the achieved rate", achieved_bytes_per_sec(*t, static_cast<uint64_t>(rate * 1.5), s.rng) / rate, 0.03);
  });
}

TEST(Throttle, StartEmptiesTheBucketAndReserveDoesNotBlock) {
  BucketThrottle t({{0.0, 1e6}}, "1 MB/s");
  t.start();
  const int64_t before_ns = now_ns();
  const int64_t ready_ns = t.reserve(2'000'000);  // two seconds of budget
  EXPECT_LT(now_ns() - before_ns, 100'000'000) << "reserve blocked";
  EXPECT_NEAR(ns_to_s(ready_ns - before_ns), 2.0, 0.01);
  // Bookings queue behind each other.
  EXPECT_NEAR(ns_to_s(t.reserve(500'000) - ready_ns), 0.5, 0.001);
}

TEST(Throttle, IdleBucketBanksOnlyTheBurst) {
  const double rate = 8e6;  // 1 ms of burst = 8000 bytes
  BucketThrottle t({{0.0, rate}}, "8 MB/s", 1'000'000);
  t.start();
  sleep_until_ns(now_ns() + 30'000'000);  // idle 30 ms: only 1 ms worth is kept
  const int64_t now = now_ns();
  EXPECT_LE(t.reserve(8000), now + 200'000) << "the banked burst should be usable at once";
  const int64_t next = t.reserve(80'000);  // 10 ms more
  EXPECT_NEAR(ns_to_ms(next - now), 10.0, 1.0);
}

TEST(Throttle, TraceSwitchesRates) {
  Seeded s;
  TempDir dir;
  const std::string path = dir.file("trace.csv");
  {
    std::ofstream out(path);
    out << "# 320 Mbit/s for 400 ms, then 64 Mbit/s\n"
        << "t_ms,gbps\n"
        << "0,0.32\n"
        << "\n"
        << "400, 0.064\n";
  }
  auto t = make_throttle(std::nullopt, path);
  ASSERT_NE(t, nullptr);
  EXPECT_NE(t->describe().find("trace:"), std::string::npos);
  // Consumed as the sources do: pieces booked 16 ahead, each sent when it comes due.
  struct Piece {
    uint64_t end_bytes;
    int64_t due_ns;
    int64_t sent_ns;
  };
  const uint64_t piece = 32 * 1024 + s.rng() % 16384;
  const uint64_t total = 16'000'000 + 9'600'000;  // 0.4 s at 40 MB/s, then 1.2 s at 8 MB/s
  test::expect_timing_within(3, [&]() -> std::string {
    std::vector<Piece> pieces;
    std::deque<size_t> booked;
    uint64_t booked_bytes = 0;
    t->start();
    const int64_t start_ns = now_ns();
    while (booked_bytes < total || !booked.empty()) {
      while (booked_bytes < total && booked.size() < 16) {
        booked_bytes += piece;
        pieces.push_back({booked_bytes, t->reserve(piece), 0});
        booked.push_back(pieces.size() - 1);
      }
      Piece& p = pieces[booked.front()];
      booked.pop_front();
      sleep_until_ns(p.due_ns);
      p.sent_ns = now_ns();
    }
    // Nothing goes early.
    for (const Piece& p : pieces)
      if (p.sent_ns < p.due_ns) return cat("a piece went ", p.due_ns - p.sent_ns, " ns before it was due");
    // The schedule: the bytes due by 400 ms are 16 MB; after that, 8 MB/s; and the wall clock follows.
    size_t first_after = 0;
    while (first_after < pieces.size() && pieces[first_after].due_ns - start_ns < 400'000'000) ++first_after;
    if (first_after < 1 || first_after + 2 >= pieces.size()) return "the switch at 400 ms is not inside the run";
    const double at_switch = static_cast<double>(pieces[first_after - 1].end_bytes);
    if (std::abs(at_switch - 16e6) > 1.5 * static_cast<double>(piece))
      return cat(at_switch, " bytes were due by the switch at 400 ms, not 16e6");
    const Piece& a = pieces[first_after];
    const Piece& b = pieces.back();
    const double bytes = static_cast<double>(b.end_bytes - a.end_bytes);
    std::string problem = test::ratio_problem("the scheduled late-phase rate", bytes / ns_to_s(b.due_ns - a.due_ns) / 8e6, 0.01);
    if (problem.empty())
      problem = test::ratio_problem("the achieved late-phase rate", bytes / ns_to_s(b.sent_ns - a.sent_ns) / 8e6, 0.03);
    return problem;
  });
}

TEST(Throttle, TraceErrorsNameFileAndLine) {
  TempDir dir;
  struct Case {
    const char* text;
    const char* expect;
  };
  const Case cases[] = {
      {"0,1\n5,2\n5,3\n", ":3: t_ms must increase strictly"},
      {"0,1\n10,-2\n", ":2: gbps is negative"},
      {"# c\n0,1\nten,2\n", ":3: t_ms is not a number"},
      {"0,1,2\n", ":1: expected two fields"},
      {"t_ms,gbps\n5,1\n", ":2: the first point must be at t_ms = 0"},
      {"0,1\n10,0\n", "the last rate is 0"},
      {"# only a comment\n", "no 't_ms,gbps' points"},
      {"0,1\nt_ms,gbps\n", ":2: t_ms is not a number"},
  };
  int i = 0;
  for (const Case& c : cases) {
    const std::string path = dir.file("t" + std::to_string(i++) + ".csv");
    std::ofstream(path) << c.text;
    try {
      (void)read_bandwidth_trace(path);
      ADD_FAILURE() << "accepted: " << c.text;
    } catch (const UsageError& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(path), std::string::npos) << msg;
      EXPECT_NE(msg.find(c.expect), std::string::npos) << msg;
    }
  }
  EXPECT_THROW((void)read_bandwidth_trace(dir.file("missing.csv")), UsageError);
}

TEST(Throttle, TraceParsesPoints) {
  TempDir dir;
  const std::string path = dir.file("ok.csv");
  std::ofstream(path) << "  # comment\n0,8\n  250.5 , 1.5\n1000,0\n2000,16\n";
  const auto points = read_bandwidth_trace(path);
  ASSERT_EQ(points.size(), 4u);
  EXPECT_DOUBLE_EQ(points[1].t_ms, 250.5);
  EXPECT_DOUBLE_EQ(points[1].bytes_per_sec, gbps_to_bytes_per_sec(1.5));
  EXPECT_DOUBLE_EQ(points[2].bytes_per_sec, 0.0);
  // A zero-rate stretch stalls the bucket until the next point.
  BucketThrottle t(points, "p", 0);
  t.start();
  const int64_t origin = now_ns();
  const double first_second_bytes = gbps_to_bytes_per_sec(8) * 0.2505 + gbps_to_bytes_per_sec(1.5) * (1.0 - 0.2505);
  const int64_t ready = t.reserve(static_cast<uint64_t>(first_second_bytes) + 2'000'000);  // 1 ms at 16 Gbps
  EXPECT_NEAR(ns_to_ms(ready - origin), 2001.0, 1.0);
}

TEST(Throttle, FactoryUnlimitedConstantAndConflict) {
  EXPECT_EQ(make_throttle(std::nullopt, ""), nullptr);
  auto c = make_throttle(gbps_to_bytes_per_sec(8), "");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->describe(), "8 Gbps");
  EXPECT_THROW((void)make_throttle(1e6, "x.csv"), UsageError);
  EXPECT_THROW((void)make_throttle(0.0, ""), UsageError);
}

// Pieces of paced copies are sized by the highest rate a throttle grants.
TEST(Throttle, PeakRateIsTheHighestOfTheSchedule) {
  std::mt19937_64 rng(std::random_device{}());
  const double a = 1e6 * static_cast<double>(1 + rng() % 1000);
  const double b = 1e6 * static_cast<double>(1 + rng() % 1000);
  EXPECT_DOUBLE_EQ(make_throttle(a, "")->peak_bytes_per_sec(), a);
  BucketThrottle trace({{0.0, a}, {5.0, 0.0}, {9.0, b}}, "trace");
  EXPECT_NEAR(trace.peak_bytes_per_sec(), std::max(a, b), 1e-6 * std::max(a, b));
}

}  // namespace
}  // namespace cake
