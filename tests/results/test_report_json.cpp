#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string>

#include <unistd.h>

#include "common/error.hpp"
#include "common/text_file.hpp"
#include "results/format.hpp"
#include "results/report_json.hpp"
#include "tests/results/sample_report.hpp"

namespace cake {
namespace {

using nlohmann::json;

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("cake_results_" + std::to_string(::getpid()) + "_" + name)).string();
}

// The message of the UsageError `f` throws; fails the test when it throws nothing.
template <typename F>
std::string usage_error_of(F&& f) {
  try {
    f();
  } catch (const UsageError& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a UsageError";
  return {};
}

TEST(ReportJson, RoundTripIsLossless) {
  RunReport r = testing::make_sample_report();
  r.points[3].recovery_reasons = {"chunk 30: crc mismatch", "chunk 28: short read"};
  r.points[3].chunks_recovered = 2;
  r.points[4].verified = false;
  r.points[4].verify_detail = "first token 17 != 42";
  r.timelines.front().events[2].ok = false;
  const std::string text = render_json(r);
  const RunReport back = report_from_json(json::parse(text), "mem.json");
  EXPECT_EQ(back, r);
  EXPECT_EQ(render_json(back), text);
}

TEST(ReportJson, CarriesTheRequiredFields) {
  const RunReport r = testing::make_sample_report();
  const json j = report_to_json(r);
  EXPECT_EQ(j.at("schema_version"), kReportSchemaVersion);
  EXPECT_EQ(kReportSchemaVersion, 2);
  for (const char* key : {"environment", "command_line", "seed", "config", "created_utc", "timelines", "derived", "points"})
    EXPECT_TRUE(j.contains(key)) << key;
  ASSERT_EQ(j.at("points").size(), r.points.size());
  for (const json& p : j.at("points")) {
    for (const char* key : {"model", "context_tokens", "suffix_tokens", "chunk_tokens", "source", "bandwidth_gbps",
                            "bandwidth_trace", "bandwidth_min_gbps", "axes", "conditions", "mode", "ttft_ms", "ttft_ms_samples", "chunks_computed", "chunks_loaded", "chunks_recovered",
                            "bytes_loaded", "first_token", "verified"})
      EXPECT_TRUE(p.contains(key)) << key;
    for (const char* key : {"median", "p10", "p90", "min", "max"}) EXPECT_TRUE(p.at("ttft_ms").at(key).is_number()) << key;
  }
  // Unlimited bandwidth is null, a throttle is a number in Gbit/s.
  const auto unlimited = std::find_if(j["points"].begin(), j["points"].end(),
                                      [](const json& p) { return p["bandwidth_gbps"].is_null(); });
  ASSERT_NE(unlimited, j["points"].end());
  EXPECT_EQ(j["points"][0]["bandwidth_gbps"], 1.0);
  // derived carries the Cake reductions computed by derive_groups.
  const auto groups = derive_groups(r);
  ASSERT_EQ(j["derived"].size(), groups.size());
  EXPECT_DOUBLE_EQ(j["derived"][0]["cake_vs_compute_reduction_pct"].get<double>(),
                   *groups[0].cake_vs_compute_reduction_pct);
}

TEST(ReportJson, UnknownSchemaVersionNamesFileAndField) {
  for (int version : {0, kReportSchemaVersion + 1}) {
    json j = report_to_json(testing::make_sample_report());
    j["schema_version"] = version;
    const std::string msg = usage_error_of([&] { report_from_json(j, "other.json"); });
    EXPECT_NE(msg.find("other.json"), std::string::npos) << msg;
    EXPECT_NE(msg.find("schema_version"), std::string::npos) << msg;
  }
}

// What a schema 1 writer produced from `r`: no trace, axes or conditions fields; raw flags in config.
json as_schema_1(const RunReport& r, const json& config) {
  json j = report_to_json(r);
  j["schema_version"] = 1;
  j["config"] = config;
  for (json& p : j["points"])
    for (const char* key : {"bandwidth_trace", "bandwidth_min_gbps", "axes", "conditions"}) p.erase(key);
  return j;
}

TEST(ReportJson, ReadsSchemaOne) {
  const RunReport r = testing::make_sample_report();
  const RunReport back = report_from_json(as_schema_1(r, json::object()), "v1.json");
  EXPECT_EQ(back.schema_version, 1);
  ASSERT_EQ(back.points.size(), r.points.size());
  EXPECT_EQ(back.points, r.points);  // the sample has no trace, axes or conditions
  EXPECT_EQ(report_to_json(back).at("schema_version"), kReportSchemaVersion);  // written as the current version
  // A schema 1 field missing is still an error naming it.
  json broken = as_schema_1(r, json::object());
  broken["points"][0].erase("codec");
  EXPECT_NE(usage_error_of([&] { report_from_json(broken, "v1.json"); }).find("points[0].codec"), std::string::npos);
}

// Schema 1 recorded a bandwidth trace and injected faults only in the config: reading it, the
// points say so, so they never match an unlimited or clean point.
TEST(ReportJson, SchemaOneTraceAndInjectionsComeFromTheConfig) {
  testing::SampleOptions o;
  o.bandwidths_gbps = {std::nullopt};
  const RunReport r = testing::make_sample_report(o);
  const json config = {{"bandwidth_trace", "bt.csv"}, {"inject_compute_delay_ms", 200.0}, {"inject_fault", "3,7"}};
  const RunReport back = report_from_json(as_schema_1(r, config), "v1.json");
  for (const Point& p : back.points) {
    EXPECT_EQ(p.bandwidth_trace, "trace:bt.csv@unhashed") << p.mode;
    EXPECT_EQ(p.conditions, (AxisFields{{"inject_compute_delay_ms", AxisValue::real(200)},
                                        {"inject_fault", AxisValue::text("3,7")}}));
  }
  const RunReport clean = report_from_json(as_schema_1(r, json{{"bandwidth_trace", ""}, {"inject_fault", ""},
                                                              {"inject_compute_delay_ms", 0.0}}),
                                           "v1.json");
  for (const Point& p : clean.points) {
    EXPECT_TRUE(p.bandwidth_trace.empty());
    EXPECT_TRUE(p.conditions.empty());
  }
}

// The reports in results/baselines were written with schema 1 and must keep loading.
TEST(ReportJson, RecordedSchemaOneBaselinesLoad) {
  for (const char* dir : {"cpu-tiny", "h100-llama-3-8b"}) {
    const std::string path = std::string(CAKE_SOURCE_DIR) + "/results/baselines/" + dir + "/results.json";
    if (!std::filesystem::exists(path)) {
      ADD_FAILURE() << path << " is missing";
      continue;
    }
    const json j = json::parse(read_text_file(path));
    if (j.at("schema_version") != 1) continue;  // re-recorded since: nothing to prove here
    const RunReport r = read_report(path);
    EXPECT_EQ(r.schema_version, 1) << path;
    EXPECT_FALSE(r.points.empty()) << path;
    for (const Point& p : r.points) {
      EXPECT_TRUE(p.axes.empty()) << path;
      EXPECT_EQ(point_identity(p).back(), (AxisField{"mode", AxisValue::text(p.mode)})) << path;
    }
    // Its keys are what schema 1 wrote: the printed identity did not change for such points.
    for (size_t i = 0; i < r.points.size(); ++i) EXPECT_EQ(point_key(r.points[i]), j["points"][i]["key"]) << path;
  }
}

TEST(ReportJson, TraceAxesAndConditionsRoundTrip) {
  RunReport r = testing::make_sample_report();
  r.points[0].bandwidth_trace = "trace:bt.csv@0123abcd";
  r.points[0].bandwidth_gbps = 0.05;
  r.points[0].bandwidth_min_gbps = 0.0;
  r.points[1].axes = {{"attention", AxisValue::text("tiled-64x64")}};
  r.points[2].conditions = {{"inject_compute_delay_ms", AxisValue::real(200)}, {"inject_fault", AxisValue::text("3")}};
  const std::string text = render_json(r);
  const RunReport back = report_from_json(json::parse(text), "mem.json");
  EXPECT_EQ(back, r);
  const json j = json::parse(text);
  EXPECT_EQ(j["points"][0]["bandwidth_trace"], "trace:bt.csv@0123abcd");
  EXPECT_TRUE(j["points"][1]["bandwidth_trace"].is_null());
  EXPECT_EQ(j["points"][1]["axes"]["attention"], "tiled-64x64");
  EXPECT_TRUE(j["points"][2]["conditions"]["inject_compute_delay_ms"].is_number_float());
}

TEST(ReportJson, BadFieldsNameFileAndPath) {
  const json good = report_to_json(testing::make_sample_report());
  {
    json j = good;
    j["points"][2].erase("mode");
    const std::string msg = usage_error_of([&] { report_from_json(j, "run.json"); });
    EXPECT_NE(msg.find("run.json: points[2].mode: missing"), std::string::npos) << msg;
  }
  {
    json j = good;
    j["points"][1]["ttft_ms_samples"][3] = "fast";
    const std::string msg = usage_error_of([&] { report_from_json(j, "run.json"); });
    EXPECT_NE(msg.find("points[1].ttft_ms_samples[3]"), std::string::npos) << msg;
  }
  {
    json j = good;
    j["points"][0]["ttft_ms"]["p90"] = nullptr;
    const std::string msg = usage_error_of([&] { report_from_json(j, "run.json"); });
    EXPECT_NE(msg.find("points[0].ttft_ms.p90"), std::string::npos) << msg;
  }
  {
    json j = good;
    j["timelines"][0]["events"][5]["end_ms"] = -1.0;
    const std::string msg = usage_error_of([&] { report_from_json(j, "run.json"); });
    EXPECT_NE(msg.find("timelines[0].events[5].end_ms"), std::string::npos) << msg;
  }
  {
    json j = good;
    j["points"][0]["ttft_ms"]["count"] = 99;
    const std::string msg = usage_error_of([&] { report_from_json(j, "run.json"); });
    EXPECT_NE(msg.find("ttft_ms.count"), std::string::npos) << msg;
  }
  EXPECT_NE(usage_error_of([&] { report_from_json(json::array(), "x.json"); }).find("x.json"), std::string::npos);
}

TEST(ReportJson, ReadReportFileErrors) {
  const std::string missing = temp_path("does_not_exist.json");
  EXPECT_NE(usage_error_of([&] { read_report(missing); }).find(missing), std::string::npos);
  const std::string bad = temp_path("bad.json");
  write_text_file(bad, "{ \"schema_version\": 1, ");
  const std::string msg = usage_error_of([&] { read_report(bad); });
  EXPECT_NE(msg.find(bad), std::string::npos);
  EXPECT_NE(msg.find("not valid JSON"), std::string::npos);
  const std::string good = temp_path("good.json");
  const RunReport r = testing::make_sample_report();
  write_text_file(good, render_json(r));
  EXPECT_EQ(read_report(good), r);
  std::filesystem::remove(bad);
  std::filesystem::remove(good);
}

TEST(ReportModel, DerivedReductionsFromMedians) {
  RunReport r;
  auto add = [&](const std::string& mode, std::vector<double> samples, std::optional<double> bw) {
    Point p;
    p.model = "m";
    p.context_tokens = 4096;
    p.chunk_tokens = 512;
    p.source = "mem";
    p.bandwidth_gbps = bw;
    p.mode = mode;
    p.ttft_ms_samples = std::move(samples);
    finalize_point(p);
    r.points.push_back(p);
  };
  add("compute", {200, 210, 190}, 8.0);
  add("io", {400, 390, 410}, 8.0);
  add("cake", {150, 140, 160}, 8.0);
  add("oracle", {120, 125, 115}, 8.0);
  add("cake", {100}, std::nullopt);  // another group: no compute, io or oracle
  const auto groups = derive_groups(r);
  ASSERT_EQ(groups.size(), 2u);
  EXPECT_DOUBLE_EQ(*groups[0].cake_vs_compute_reduction_pct, 25.0);
  EXPECT_DOUBLE_EQ(*groups[0].cake_vs_io_reduction_pct, 62.5);
  EXPECT_DOUBLE_EQ(*groups[0].cake_over_oracle, 1.25);
  EXPECT_FALSE(groups[1].cake_vs_compute_reduction_pct.has_value());
  EXPECT_DOUBLE_EQ(*groups[1].cake_ttft_ms, 100);
  EXPECT_NE(point_key(r.points[0]), point_key(r.points[2]));
  EXPECT_EQ(group_key(r.points[0]), group_key(r.points[2]));
  EXPECT_NE(group_key(r.points[2]), group_key(r.points[4]));
}

TEST(ReportModel, ModeOrderAndSourceKind) {
  EXPECT_TRUE(mode_less("compute", "io"));
  EXPECT_TRUE(mode_less("io", "cake"));
  EXPECT_TRUE(mode_less("cake", "split=0.25"));
  EXPECT_TRUE(mode_less("split=0.25", "split=0.5"));
  EXPECT_TRUE(mode_less("split=0.75", "oracle"));
  EXPECT_FALSE(mode_less("oracle", "cake"));
  EXPECT_EQ(source_kind("file:/dev/shm/x"), "file");
  EXPECT_EQ(source_kind("tcp://10.0.0.2:9000"), "tcp");
  EXPECT_EQ(source_kind("mem"), "mem");
  EXPECT_EQ(bandwidth_label(std::nullopt), "unlimited");
  EXPECT_EQ(bandwidth_label(12.5), "12.5");
}

}  // namespace
}  // namespace cake
