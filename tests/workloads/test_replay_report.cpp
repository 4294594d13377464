// A trace replay's output: the summary first, then one compact table of requests by arrival;
// replay.json with vLLM's result names.
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "common/error.hpp"
#include "workloads/trace/replay_report.hpp"

using namespace cake;

namespace {

struct Replayed {
  Trace trace;
  std::vector<ReplayedRequest> requests;
  std::vector<ReplayedMode> modes;
};

// `n` requests with random arrivals and service times; two modes, cake a fraction of compute.
Replayed make_replay(int n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> gap(0, 50), service(5, 40);
  Replayed r;
  r.trace.path = "mooncake-held-out.jsonl";
  double t = 0;
  std::vector<double> compute_ms;
  for (int i = 0; i < n; ++i) {
    TraceRequest q;
    q.index = i;
    q.arrival_ms = t;
    t += gap(rng);
    q.input_tokens = 1000 + i;
    r.trace.requests.push_back(q);
    r.requests.push_back({"req-" + std::to_string(i), 900 + i, 100});
    compute_ms.push_back(service(rng));
  }
  r.trace.input_tokens = 1000;
  r.trace.hit_tokens = 250;
  for (const char* mode : {"compute", "cake"}) {
    const double f = std::string(mode) == "cake" ? 0.5 : 1.0;
    const TraceReplay replay([&](const TraceRequest& q) { return f * compute_ms[static_cast<size_t>(q.index)]; });
    r.modes.push_back({mode, replay.run(r.trace)});
  }
  return r;
}

size_t count_of(const std::string& text, const std::string& part) {
  size_t n = 0;
  for (size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++n;
  return n;
}

}  // namespace

TEST(ReplayReport, SummaryFirstThenOneCompactRequestTable) {
  const uint64_t seed = std::random_device{}();
  SCOPED_TRACE(testing::Message() << "seed " << seed);
  const Replayed r = make_replay(38, seed);
  const std::string text = render_replay(r.trace, r.requests, r.modes);
  const size_t summary = text.find("ttft_p50_ms");
  const size_t table = text.find("requests by arrival");
  ASSERT_NE(summary, std::string::npos) << text;
  ASSERT_NE(table, std::string::npos) << text;
  EXPECT_LT(summary, table);
  EXPECT_EQ(count_of(text, "ttft_p50_ms"), 1u) << "one summary, not one table per request";
  EXPECT_NE(text.find("hit ratio 0.250"), std::string::npos);
  // The summary has one line per mode, each before the request table.
  EXPECT_LT(text.find("\ncompute "), table);
  EXPECT_LT(text.find("\ncake "), table);
  // One line per request, in arrival order, with id, prefix, suffix and each mode's TTFT.
  size_t last = table;
  for (int i = 0; i < 38; ++i) {
    const size_t at = text.find("\nreq-" + std::to_string(i) + " ", table);
    ASSERT_NE(at, std::string::npos) << i;
    EXPECT_GT(at, last) << "request " << i << " out of arrival order";
    last = at;
    const std::string line = text.substr(at + 1, text.find('\n', at + 1) - at - 1);
    EXPECT_NE(line.find(std::to_string(900 + i)), std::string::npos) << line;
    char cake_ttft[32];
    std::snprintf(cake_ttft, sizeof cake_ttft, "%.1f", r.modes[1].report.requests[static_cast<size_t>(i)].ttft_ms());
    EXPECT_TRUE(line.ends_with(cake_ttft)) << line << " vs " << cake_ttft;
  }
}

TEST(ReplayReport, JsonUsesVllmNamesAndKeepsPerRequestDetail) {
  const Replayed r = make_replay(5, std::random_device{}());
  const nlohmann::json j = replay_json(r.trace, r.requests, r.modes);
  for (const ReplayedMode& m : r.modes) {
    const nlohmann::json& mode = j.at("modes").at(m.mode);
    EXPECT_DOUBLE_EQ(mode.at("median_ttft_ms").get<double>(), m.report.ttft_p50_ms);
    EXPECT_DOUBLE_EQ(mode.at("p99_ttft_ms").get<double>(), m.report.ttft_p99_ms);
    EXPECT_DOUBLE_EQ(mode.at("mean_ttft_ms").get<double>(), m.report.ttft_mean_ms);
    EXPECT_DOUBLE_EQ(mode.at("p90_ttft_ms").get<double>(), m.report.ttft_p90_ms);
    EXPECT_EQ(mode.at("completed"), 5);
    ASSERT_EQ(mode.at("requests").size(), 5u);
    const nlohmann::json& first = mode.at("requests")[0];
    EXPECT_EQ(first.at("id"), "req-0");
    EXPECT_EQ(first.at("prefix_tokens"), 900);
    EXPECT_DOUBLE_EQ(first.at("ttft_ms").get<double>(), m.report.requests[0].ttft_ms());
  }
  EXPECT_EQ(j.at("trace").at("requests"), 5);
  std::vector<ReplayedRequest> short_list = r.requests;
  short_list.pop_back();
  EXPECT_THROW(replay_json(r.trace, short_list, r.modes), InternalError);
}
