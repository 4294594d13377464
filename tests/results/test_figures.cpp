#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/error.hpp"
#include "results/timeline.hpp"
#include "results/writers.hpp"
#include "tests/results/sample_report.hpp"

namespace cake {
namespace {

using nlohmann::json;

// Tags balance, attribute quotes close, and text holds no raw '<' or bare '&'.
::testing::AssertionResult well_formed_xml(const std::string& s) {
  std::vector<std::string> open;
  size_t i = 0;
  while (i < s.size()) {
    if (s[i] == '&') {
      const size_t semi = s.find(';', i);
      if (semi == std::string::npos || semi - i > 6) return ::testing::AssertionFailure() << "bare & at " << i;
      i = semi + 1;
      continue;
    }
    if (s[i] != '<') {
      ++i;
      continue;
    }
    if (s.compare(i, 2, "<?") == 0) {
      i = s.find("?>", i) + 2;
      continue;
    }
    if (s.compare(i, 4, "<!--") == 0) {
      i = s.find("-->", i) + 3;
      continue;
    }
    size_t j = i + 1;
    bool in_quote = false;
    while (j < s.size() && (in_quote || s[j] != '>')) {
      if (s[j] == '"') in_quote = !in_quote;
      if (!in_quote && s[j] == '<') return ::testing::AssertionFailure() << "'<' inside a tag at " << j;
      ++j;
    }
    if (j >= s.size()) return ::testing::AssertionFailure() << "unterminated tag at " << i;
    std::string tag = s.substr(i + 1, j - i - 1);
    const bool closing = tag.starts_with("/");
    const bool self_closing = tag.ends_with("/");
    std::string name = tag.substr(closing ? 1 : 0);
    name = name.substr(0, name.find_first_of(" \n\t/"));
    if (closing) {
      if (open.empty() || open.back() != name)
        return ::testing::AssertionFailure() << "</" << name << "> closes " << (open.empty() ? "nothing" : open.back());
      open.pop_back();
    } else if (!self_closing) {
      open.push_back(name);
    }
    i = j + 1;
  }
  if (!open.empty()) return ::testing::AssertionFailure() << "<" << open.back() << "> never closed";
  return ::testing::AssertionSuccess();
}

TEST(Svg, CheckerCatchesBrokenXml) {
  EXPECT_FALSE(well_formed_xml("<svg><g></svg>"));
  EXPECT_FALSE(well_formed_xml("<svg><text>a < b</text></svg>"));
  EXPECT_FALSE(well_formed_xml("<svg><text>a & b</text></svg>"));
  EXPECT_TRUE(well_formed_xml("<?xml version=\"1.0\"?><svg><g><rect/></g><text>a &amp; b</text></svg>"));
}

TEST(Svg, BandwidthFigurePerGroupWithEverySeries) {
  testing::SampleOptions o;
  o.contexts = {8192, 32768};
  RunReport r = testing::make_sample_report(o);
  r.points[0].model = r.points[1].model = "odd<&>\"model\"";  // must be escaped, and forms a third figure
  const auto figures = render_bandwidth_figures(r);
  ASSERT_EQ(figures.size(), 3u);
  for (const Figure& f : figures) {
    EXPECT_TRUE(well_formed_xml(f.svg)) << f.file_name;
    EXPECT_TRUE(f.file_name.starts_with("ttft-vs-bandwidth-") && f.file_name.ends_with(".svg"));
    EXPECT_NE(f.svg.find("load bandwidth (Gbit/s, log scale)"), std::string::npos);
    EXPECT_NE(f.svg.find("TTFT (ms"), std::string::npos);
  }
  const Figure& main = figures[2];
  for (const char* mode : {"compute", "io", "cake", "split=0.50", "oracle"})
    EXPECT_NE(main.svg.find(std::string("data-mode=\"") + mode + "\""), std::string::npos) << mode;
  EXPECT_NE(main.svg.find(">unlimited<"), std::string::npos);
  EXPECT_NE(main.svg.find(">100<"), std::string::npos);  // a swept bandwidth as a tick label
  EXPECT_NE(figures[0].svg.find("odd&lt;&amp;&gt;&quot;model&quot;"), std::string::npos);
  EXPECT_NE(figures[0].file_name, figures[1].file_name);
}

TEST(Svg, ABandwidthTraceGetsItsOwnFigure) {
  testing::SampleOptions o;
  o.bandwidths_gbps = {4, 16};
  RunReport r = testing::make_sample_report(o);
  const size_t n = r.points.size();
  for (size_t i = 0; i < n; ++i) {
    Point p = r.points[i];
    if (p.bandwidth_gbps != 4.0) continue;
    p.bandwidth_trace = "trace:bt.csv@0123abcd";
    p.bandwidth_min_gbps = 0;
    r.points.push_back(p);
  }
  const auto figures = render_bandwidth_figures(r);
  ASSERT_EQ(figures.size(), 2u);
  EXPECT_EQ(figures[0].svg.find("trace:"), std::string::npos);
  EXPECT_NE(figures[1].svg.find("trace:bt.csv@0123abcd (mean 4, min 0)"), std::string::npos);
  EXPECT_NE(figures[1].file_name, figures[0].file_name);
  EXPECT_TRUE(well_formed_xml(figures[1].svg));
}

TEST(Svg, NoUnlimitedLabelWithoutUnlimitedPoints) {
  testing::SampleOptions o;
  o.bandwidths_gbps = {4, 16};
  const auto figures = render_bandwidth_figures(testing::make_sample_report(o));
  ASSERT_EQ(figures.size(), 1u);
  EXPECT_EQ(figures[0].svg.find(">unlimited<"), std::string::npos);
  EXPECT_TRUE(well_formed_xml(figures[0].svg));
}

TEST(Svg, TimelineShowsLanesChunksAndMeet) {
  const RunReport r = testing::make_sample_report();
  ASSERT_EQ(r.timelines.size(), 1u);
  const RequestTimeline& t = r.timelines[0];
  const std::string svg = render_timeline_svg(t);
  EXPECT_TRUE(well_formed_xml(svg));
  EXPECT_NE(svg.find(">compute lane<"), std::string::npos);
  EXPECT_NE(svg.find(">load lane: read<"), std::string::npos);
  EXPECT_NE(svg.find("time since request start (ms)"), std::string::npos);
  const auto meet = find_meet(t);
  ASSERT_TRUE(meet.has_value());
  EXPECT_NE(svg.find("meet at "), std::string::npos);
  EXPECT_NE(svg.find(cat("chunks 0-", meet->first_loaded_chunk - 1, " computed")), std::string::npos);
  EXPECT_NE(svg.find(">0<"), std::string::npos);  // chunk numbers on bars that fit
  EXPECT_NE(svg.find(">31<"), std::string::npos);
}

TEST(Timeline, MeetAndTracks) {
  RequestTimeline t;
  t.events = {{"compute", 0, 0, 10, 0, 0, true},  {"compute", 1, 10, 22, 0, 0, true}, {"load", 3, 0, 8, 100, 0, true},
              {"h2d", 3, 8, 9, 100, 0, true},     {"load", 2, 8, 16, 100, 0, true},   {"h2d", 2, 16, 17, 100, 0, true},
              {"suffix", -1, 22, 25, 0, 0, true}};
  const auto m = find_meet(t);
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->first_loaded_chunk, 2);
  EXPECT_DOUBLE_EQ(m->compute_done_ms, 22);
  EXPECT_DOUBLE_EQ(m->load_done_ms, 17);
  EXPECT_DOUBLE_EQ(m->meet_ms, 22);
  EXPECT_EQ(m->idle_lane, "load");
  EXPECT_DOUBLE_EQ(m->idle_ms, 5);
  EXPECT_DOUBLE_EQ(timeline_end_ms(t), 25);
  // h2d 3 follows load 3 on track 0; load 2 starts while h2d 3 runs, so it opens track 1;
  // h2d 2 starts after h2d 3 ended and goes back to track 0.
  std::vector<const TimelineEvent*> load_lane = {&t.events[2], &t.events[3], &t.events[4], &t.events[5]};
  EXPECT_EQ(pack_tracks(load_lane), (std::vector<int>{0, 0, 1, 0}));
  RequestTimeline compute_only;
  compute_only.events = {t.events[0], t.events[1]};
  EXPECT_FALSE(find_meet(compute_only).has_value());
}

TEST(ChromeTrace, EventsLanesAndMeet) {
  const RunReport r = testing::make_sample_report();
  const RequestTimeline& t = r.timelines[0];
  const json trace = json::parse(render_chrome_trace(t, 7).dump());
  ASSERT_TRUE(trace.at("traceEvents").is_array());
  std::map<int, std::string> thread_names;
  int x_events = 0;
  bool saw_meet = false;
  for (const json& e : trace["traceEvents"]) {
    EXPECT_EQ(e.at("pid"), 7);
    if (e["ph"] == "M" && e["name"] == "thread_name") thread_names[e["tid"].get<int>()] = e["args"]["name"];
    if (e["ph"] == "i" && e["name"].get<std::string>().starts_with("meet")) {
      saw_meet = true;
      EXPECT_DOUBLE_EQ(e["ts"].get<double>(), find_meet(t)->meet_ms * 1000.0);
    }
  }
  for (const json& e : trace["traceEvents"]) {
    if (e["ph"] != "X" || e.value("cat", "") == "idle") continue;
    ++x_events;
    ASSERT_TRUE(thread_names.contains(e["tid"].get<int>()));
    const std::string lane = e["cat"];
    const std::string thread = thread_names[e["tid"].get<int>()];
    if (lane == "load" || lane == "h2d") EXPECT_TRUE(thread.starts_with("load lane")) << thread;
    else EXPECT_TRUE(thread.starts_with("compute lane")) << thread;
    EXPECT_TRUE(e["args"].contains("chunk"));
  }
  EXPECT_EQ(x_events, static_cast<int>(t.events.size()));
  EXPECT_TRUE(saw_meet);
  // First compute event: chunk 0 from t0, duration in microseconds.
  const TimelineEvent& first = t.events[0];
  bool found = false;
  for (const json& e : trace["traceEvents"])
    if (e["ph"] == "X" && e["name"] == "compute c=0") {
      found = true;
      EXPECT_DOUBLE_EQ(e["ts"].get<double>(), first.start_ms * 1000.0);
      EXPECT_DOUBLE_EQ(e["dur"].get<double>(), (first.end_ms - first.start_ms) * 1000.0);
      EXPECT_EQ(e["args"]["chunk"], 0);
    }
  EXPECT_TRUE(found);
  std::set<std::string> names;
  for (const auto& [tid, name] : thread_names) names.insert(name);
  EXPECT_TRUE(names.contains("compute lane"));
  EXPECT_TRUE(names.contains("load lane"));
}

}  // namespace
}  // namespace cake
