#include <gtest/gtest.h>

#include "common/error.hpp"
#include "temp_dir.hpp"
#include "workloads/trace/replay.hpp"

using namespace cake;

TEST(FifoSchedule, HandMadeArrivalsAndServiceTimes) {
  // t=0 arrives to an idle server; t=5 waits until 10; t=12 waits until 16; t=30 finds it idle.
  const std::vector<double> arrivals = {0, 5, 12, 30};
  const std::vector<double> services = {10, 6, 4, 2};
  const auto s = fifo_schedule(arrivals, services);
  ASSERT_EQ(s.size(), 4u);
  EXPECT_DOUBLE_EQ(s[0].start_ms, 0);
  EXPECT_DOUBLE_EQ(s[0].ttft_ms(), 10);
  EXPECT_DOUBLE_EQ(s[1].start_ms, 10);
  EXPECT_DOUBLE_EQ(s[1].queue_ms(), 5);
  EXPECT_DOUBLE_EQ(s[1].ttft_ms(), 11);
  EXPECT_DOUBLE_EQ(s[2].start_ms, 16);
  EXPECT_DOUBLE_EQ(s[2].finish_ms, 20);
  EXPECT_DOUBLE_EQ(s[2].ttft_ms(), 8);
  EXPECT_DOUBLE_EQ(s[3].start_ms, 30);
  EXPECT_DOUBLE_EQ(s[3].ttft_ms(), 2);
  EXPECT_THROW(fifo_schedule(std::vector<double>{0, 1}, std::vector<double>{1}), InternalError);
  EXPECT_THROW(fifo_schedule(std::vector<double>{5, 1}, std::vector<double>{1, 1}), InternalError);
  EXPECT_THROW(fifo_schedule(std::vector<double>{0}, std::vector<double>{-1}), InternalError);
}

TEST(Percentile, LinearInterpolation) {
  EXPECT_DOUBLE_EQ(percentile({3, 1, 2}, 50), 2);
  EXPECT_DOUBLE_EQ(percentile({1, 2, 3, 4}, 50), 2.5);
  EXPECT_DOUBLE_EQ(percentile({10, 20}, 90), 19);
  EXPECT_DOUBLE_EQ(percentile({7}, 99), 7);
  EXPECT_THROW(percentile({}, 50), Error);
}

TEST(TraceReplay, ServesEveryRequestInOrderAndQueuesThem) {
  Trace trace;
  trace.path = "hand-made";
  for (int i = 0; i < 4; ++i) {
    TraceRequest r;
    r.index = i;
    r.arrival_ms = std::vector<double>{0, 5, 12, 30}[static_cast<size_t>(i)];
    r.input_tokens = 1000;
    trace.requests.push_back(r);
  }
  trace.input_tokens = 4000;
  trace.hit_tokens = 1000;
  std::vector<int64_t> served;
  const TraceReplay replay([&](const TraceRequest& r) {
    served.push_back(r.index);
    return std::vector<double>{10, 6, 4, 2}[static_cast<size_t>(r.index)];
  });
  const ReplayReport report = replay.run(trace);
  EXPECT_EQ(served, (std::vector<int64_t>{0, 1, 2, 3}));
  // TTFTs 10, 11, 8, 2 → sorted 2, 8, 10, 11.
  EXPECT_DOUBLE_EQ(report.ttft_p50_ms, 9);
  EXPECT_DOUBLE_EQ(report.ttft_p90_ms, 10.7);
  EXPECT_DOUBLE_EQ(report.ttft_p99_ms, 10.97);
  EXPECT_DOUBLE_EQ(report.ttft_mean_ms, 7.75);
  EXPECT_DOUBLE_EQ(report.queue_p50_ms, 2);  // queues 0, 5, 4, 0 → sorted 0, 0, 4, 5
  EXPECT_DOUBLE_EQ(report.service_total_ms, 22);
  EXPECT_DOUBLE_EQ(report.makespan_ms, 32);
  EXPECT_DOUBLE_EQ(report.hit_ratio, 0.25);

  const TraceReplay broken([](const TraceRequest&) { return -1.0; });
  EXPECT_THROW(broken.run(trace), Error);
}
