#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <string>

#include <unistd.h>

#include "common/error.hpp"
#include "results/compare.hpp"
#include "results/format.hpp"
#include "results/report_json.hpp"
#include "tests/results/sample_report.hpp"

namespace cake {
namespace {

using nlohmann::json;

std::vector<const MetricComparison*> rows_with(const CompareResult& r, const std::string& metric,
                                               const std::string& mode = "") {
  std::vector<const MetricComparison*> out;
  for (const auto& m : r.rows)
    if (m.metric == metric && (mode.empty() || m.mode == mode)) out.push_back(&m);
  return out;
}

TEST(Compare, IdenticalRunsDoNotRegress) {
  const RunReport r = testing::make_sample_report();
  const CompareResult c = compare_reports(r, r, {});
  EXPECT_FALSE(c.failed());
  EXPECT_EQ(c.count(Verdict::regressed), 0);
  EXPECT_EQ(c.count(Verdict::improved), 0);
  EXPECT_TRUE(c.only_in_base.empty());
  EXPECT_TRUE(c.only_in_new.empty());
  // Every point has a TTFT row and every group its three ratios.
  EXPECT_EQ(rows_with(c, "ttft_ms").size(), r.points.size());
  EXPECT_EQ(rows_with(c, "cake/compute").size(), 9u);
  EXPECT_EQ(rows_with(c, "cake/io").size(), 9u);
  EXPECT_EQ(rows_with(c, "cake/oracle").size(), 9u);
  // A run against itself ties every value: the tie-corrected normal approximation answers, p = 1.
  for (const auto* m : rows_with(c, "ttft_ms")) {
    EXPECT_EQ(m->test, TestUsed::mann_whitney_normal);
    EXPECT_DOUBLE_EQ(*m->p_value, 1.0);
  }
}

TEST(Compare, ThirtyPercentSlowerCakeIsARegression) {
  const RunReport base = testing::make_sample_report();
  RunReport slower = base;
  testing::scale_mode(slower, "cake", 1.30);
  const CompareResult c = compare_reports(base, slower, {});
  EXPECT_TRUE(c.failed());
  for (const auto* m : rows_with(c, "ttft_ms", "cake")) {
    EXPECT_EQ(m->verdict, Verdict::regressed) << m->key;
    EXPECT_NEAR(m->change_pct, 30.0, 1e-9);
    ASSERT_TRUE(m->p_value.has_value());
    EXPECT_LT(*m->p_value, 0.05);
  }
  for (const auto* m : rows_with(c, "ttft_ms", "compute")) EXPECT_EQ(m->verdict, Verdict::unchanged);
  for (const char* ratio : {"cake/compute", "cake/io", "cake/oracle"})
    for (const auto* m : rows_with(c, ratio)) {
      EXPECT_EQ(m->verdict, Verdict::regressed) << ratio << " " << m->key;
      EXPECT_TRUE(m->paired);
    }
  // And the other way round it is an improvement, not a regression.
  const CompareResult back = compare_reports(slower, base, {});
  EXPECT_FALSE(back.failed());
  EXPECT_GT(back.count(Verdict::improved), 0);
}

TEST(Compare, NoiseWithinTheSpreadIsNotFlagged) {
  testing::SampleOptions a, b;
  a.seed = 11;
  b.seed = 12;  // same machine, another day: new jitter of the same size
  a.jitter = b.jitter = 0.03;
  const CompareResult c = compare_reports(testing::make_sample_report(a), testing::make_sample_report(b), {});
  EXPECT_EQ(c.count(Verdict::regressed), 0);
  EXPECT_FALSE(c.failed());
}

TEST(Compare, LargeChangeWithinNoiseIsNotSignificant) {
  RunReport base, now;
  Point p;
  p.model = "m";
  p.mode = "cake";
  p.ttft_ms_samples = {100, 150, 80, 120, 95};
  finalize_point(p);
  base.points.push_back(p);
  p.ttft_ms_samples = {115, 90, 160, 105, 130};  // median +15 %, but the samples interleave
  finalize_point(p);
  now.points.push_back(p);
  const CompareResult c = compare_reports(base, now, {});
  const auto rows = rows_with(c, "ttft_ms");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_GT(rows[0]->change_pct, 10.0);
  EXPECT_FALSE(rows[0]->significant);
  EXPECT_EQ(rows[0]->verdict, Verdict::unchanged);
}

TEST(Compare, SignificantButBelowThresholdIsUnchanged) {
  const RunReport base = testing::make_sample_report();
  RunReport now = base;
  for (Point& p : now.points)
    if (p.mode == "cake") {
      for (double& v : p.ttft_ms_samples) v = p.ttft_ms.max * 1.05;  // clearly above every base sample, ~+7 %
      finalize_point(p);
    }
  const CompareResult c = compare_reports(base, now, {});
  for (const auto* m : rows_with(c, "ttft_ms", "cake")) {
    EXPECT_TRUE(m->significant);
    EXPECT_LT(m->change_pct, 10.0);
    EXPECT_EQ(m->verdict, Verdict::unchanged);
  }
  ComparePolicy strict;
  strict.ttft_threshold_pct = strict.ratio_threshold_pct = 2;
  EXPECT_TRUE(compare_reports(base, now, strict).failed());
}

TEST(Compare, FewRepetitionsFallBackToBands) {
  testing::SampleOptions o;
  o.repetitions = 2;
  const RunReport base = testing::make_sample_report(o);
  RunReport slower = base;
  testing::scale_mode(slower, "cake", 1.30);
  const CompareResult c = compare_reports(base, slower, {});
  EXPECT_TRUE(c.failed());
  for (const auto* m : rows_with(c, "ttft_ms")) {
    EXPECT_EQ(m->test, TestUsed::bands);
    EXPECT_FALSE(m->p_value.has_value());
  }
  // Three a side: the U test cannot reach 0.05 (smallest p = 0.10), so bands again, with a note.
  o.repetitions = 3;
  const RunReport three = testing::make_sample_report(o);
  const CompareResult c3 = compare_reports(three, three, {});
  for (const auto* m : rows_with(c3, "ttft_ms")) {
    EXPECT_EQ(m->test, TestUsed::bands);
    EXPECT_NE(m->note.find("cannot reach alpha"), std::string::npos);
  }
}

TEST(Compare, RatiosOnlyIgnoresAUniformlySlowerMachine) {
  const RunReport base = testing::make_sample_report();
  RunReport slow_machine = base;
  for (const char* mode : {"compute", "io", "cake", "split=0.50", "oracle"}) testing::scale_mode(slow_machine, mode, 1.5);
  EXPECT_TRUE(compare_reports(base, slow_machine, {}).failed());
  ComparePolicy ratios;
  ratios.ratios_only = true;
  const CompareResult c = compare_reports(base, slow_machine, ratios);
  EXPECT_FALSE(c.failed());
  EXPECT_TRUE(rows_with(c, "ttft_ms").empty());
  EXPECT_TRUE(rows_with(c, "load_gbps").empty());
  EXPECT_FALSE(rows_with(c, "cake/compute").empty());
  // ... but still catches Cake getting worse relative to its own run.
  testing::scale_mode(slow_machine, "cake", 1.3);
  EXPECT_TRUE(compare_reports(base, slow_machine, ratios).failed());
}

TEST(Compare, UnpairedRatiosUseTheDenominatorMedian) {
  Point cake_point, compute_point;
  cake_point.ttft_ms_samples = {50, 60, 70};
  compute_point.ttft_ms_samples = {100, 200, 100};
  finalize_point(cake_point);
  finalize_point(compute_point);
  const auto paired = ratio_samples(cake_point, compute_point, true);
  ASSERT_TRUE(paired);
  EXPECT_TRUE(paired->paired);
  EXPECT_EQ(paired->samples, (std::vector<double>{0.5, 0.3, 0.7}));
  const auto unpaired = ratio_samples(cake_point, compute_point, false);
  ASSERT_TRUE(unpaired);
  EXPECT_FALSE(unpaired->paired);
  EXPECT_EQ(unpaired->samples, (std::vector<double>{0.5, 0.6, 0.7}));
  EXPECT_DOUBLE_EQ(unpaired->value, 0.6);
}

TEST(Compare, PointsOnOneSideAreListed) {
  testing::SampleOptions o;
  RunReport base = testing::make_sample_report(o);
  o.modes = {"compute", "io", "cake", "split=0.25"};  // no oracle, no split=0.50, a new split
  const RunReport now = testing::make_sample_report(o);
  const CompareResult c = compare_reports(base, now, {});
  EXPECT_EQ(c.only_in_base.size(), 18u);  // oracle and split=0.50 at 9 bandwidths
  EXPECT_EQ(c.only_in_new.size(), 9u);
  EXPECT_TRUE(std::all_of(c.only_in_new.begin(), c.only_in_new.end(),
                          [](const std::string& k) { return k.ends_with("mode=split=0.25"); }));
  EXPECT_FALSE(c.failed());
  const std::string table = render_compare_table(c);
  EXPECT_NE(table.find("only in base: "), std::string::npos);
  EXPECT_NE(table.find("only in new:  "), std::string::npos);
  ComparePolicy strict;
  strict.fail_on_missing = true;
  EXPECT_TRUE(compare_reports(base, now, strict).failed());
}

TEST(Compare, LostVerificationIsARegression) {
  const RunReport base = testing::make_sample_report();
  RunReport now = base;
  now.points[2].verified = false;
  now.points[2].verify_detail = "chunk 30 differs";
  const CompareResult c = compare_reports(base, now, {});
  EXPECT_TRUE(c.failed());
  const auto rows = rows_with(c, "verified");
  EXPECT_EQ(std::count_if(rows.begin(), rows.end(), [](const auto* m) { return m->verdict == Verdict::regressed; }), 1);
}

TEST(Compare, DifferentGpuIsUnusableUnlessAllowed) {
  testing::SampleOptions o;
  const RunReport h100 = testing::make_sample_report(o);
  o.gpu_name = "NVIDIA A100-SXM4-80GB";
  const RunReport a100 = testing::make_sample_report(o);
  EXPECT_THROW(compare_reports(h100, a100, {}), UsageError);
  ComparePolicy allow;
  allow.allow_env_change = true;
  const CompareResult c = compare_reports(h100, a100, allow);
  ASSERT_EQ(c.notes.size(), 1u);
  EXPECT_NE(c.notes[0].find("A100"), std::string::npos);
  EXPECT_EQ(gpu_names(h100.environment), (std::vector<std::string>{"NVIDIA H100 80GB HBM3"}));
  EXPECT_EQ(gpu_names(json::object()), std::vector<std::string>{});
}

TEST(Compare, OlderSchemaComparesWithANoteUnknownOnesAreUnusable) {
  const RunReport base = testing::make_sample_report();
  RunReport old = base;
  old.schema_version = 1;  // read from a schema 1 file: the same model in memory
  const CompareResult c = compare_reports(old, base, {});
  EXPECT_TRUE(c.only_in_base.empty());
  EXPECT_TRUE(c.only_in_new.empty());
  EXPECT_FALSE(c.failed());
  ASSERT_EQ(c.notes.size(), 1u);
  EXPECT_NE(c.notes[0].find("schema_version differs"), std::string::npos) << c.notes[0];
  // Through files, as the CLI reads them: the reader refuses an unknown version and names the file.
  const auto path = (std::filesystem::temp_directory_path() / ("cake_cmp_" + std::to_string(::getpid()) + ".json")).string();
  json j = report_to_json(base);
  j["schema_version"] = kReportSchemaVersion + 1;
  write_text_file(path, j.dump());
  try {
    read_report(path);
    ADD_FAILURE() << "expected UsageError";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos);
  }
  std::filesystem::remove(path);
  RunReport dup = base;
  dup.points.push_back(dup.points.front());
  EXPECT_THROW(compare_reports(base, dup, {}), UsageError);
}

// Identity is typed values compared by value: two bandwidths that print alike ("%.6g") are two
// points, and the same value is the same point however it would print.
TEST(Compare, IdentityIsTypedValuesNotPrintedText) {
  testing::SampleOptions o;
  o.bandwidths_gbps = {0.3};
  o.modes = {"cake"};
  o.with_timeline = false;
  RunReport r = testing::make_sample_report(o);
  ASSERT_EQ(r.points.size(), 1u);
  Point near = r.points[0];
  near.bandwidth_gbps = 0.1 + 0.2;  // 0.30000000000000004: prints as "0.3"
  ASSERT_EQ(point_key(near), point_key(r.points[0]));
  EXPECT_NE(point_identity(near), point_identity(r.points[0]));
  r.points.push_back(near);  // not a duplicate: a different value
  const CompareResult c = compare_reports(r, r, {});
  EXPECT_TRUE(c.only_in_base.empty());
  EXPECT_EQ(rows_with(c, "ttft_ms").size(), 2u);
  // Typed: the integer 8 and the real 8 are different values; text never equals a number.
  EXPECT_NE(AxisValue::integer(8), AxisValue::real(8));
  EXPECT_NE(AxisValue::text("8"), AxisValue::real(8));
  EXPECT_EQ(AxisValue::from_json(json::parse("8.0"), "x"), AxisValue::real(8));
  EXPECT_EQ(AxisValue::from_json(json::parse("8"), "x"), AxisValue::integer(8));
  EXPECT_TRUE(AxisValue::from_json(json(nullptr), "x").is_none());
  EXPECT_THROW(AxisValue::from_json(json::array(), "x"), UsageError);
}

// A bandwidth trace is its own value: never matched with unlimited (what schema 1 recorded it
// as), a constant rate equal to its mean, or another trace.
TEST(Compare, BandwidthTracesNeverMatchOtherBandwidths) {
  testing::SampleOptions o;
  o.bandwidths_gbps = {0.05};
  o.with_timeline = false;
  const RunReport at_mean = testing::make_sample_report(o);  // a constant rate equal to the trace's mean
  o.bandwidths_gbps = {std::nullopt};
  const RunReport unlimited = testing::make_sample_report(o);
  RunReport traced = at_mean;
  for (Point& p : traced.points) {
    p.bandwidth_trace = "trace:bt.csv@0123abcd";
    p.bandwidth_min_gbps = 0;
  }
  for (const RunReport* other : {&at_mean, &unlimited}) {
    const CompareResult c = compare_reports(*other, traced, {});
    EXPECT_EQ(c.only_in_base.size(), other->points.size());
    EXPECT_EQ(c.only_in_new.size(), traced.points.size());
    EXPECT_TRUE(c.rows.empty());
  }
  RunReport other_trace = traced;
  for (Point& p : other_trace.points) p.bandwidth_trace = "trace:bt.csv@fedc9876";  // same name, other content
  EXPECT_TRUE(compare_reports(traced, other_trace, {}).rows.empty());
  // The same trace matches itself.
  EXPECT_TRUE(compare_reports(traced, traced, {}).only_in_base.empty());
  EXPECT_NE(point_key(traced.points[0]).find("bw=trace:bt.csv@0123abcd"), std::string::npos);
  EXPECT_EQ(bandwidth_label(traced.points[0]), "trace:bt.csv@0123abcd (mean 0.05, min 0)");
}

// Injected faults or compute delay: not matched with a clean run unless asked, and then every
// matched row says so.
TEST(Compare, CleanAndInjectedRunsMatchOnlyWhenToldAndThenWithANote) {
  const RunReport clean = testing::make_sample_report();
  RunReport injected = clean;
  for (Point& p : injected.points) p.conditions = {{"inject_compute_delay_ms", AxisValue::real(200)}};
  testing::scale_mode(injected, "compute", 1.5);
  testing::scale_mode(injected, "cake", 1.3);

  const CompareResult strict = compare_reports(clean, injected, {});
  EXPECT_TRUE(strict.rows.empty());
  EXPECT_EQ(strict.only_in_base.size(), clean.points.size());
  EXPECT_FALSE(strict.failed());
  ASSERT_EQ(strict.notes.size(), 1u);
  EXPECT_NE(strict.notes[0].find("conditions differ"), std::string::npos) << strict.notes[0];
  EXPECT_NE(strict.notes[0].find("inject_compute_delay_ms=200"), std::string::npos) << strict.notes[0];
  EXPECT_NE(render_compare_table(strict).find("--ignore-conditions"), std::string::npos);

  ComparePolicy ignore;
  ignore.ignore_conditions = true;
  const CompareResult loose = compare_reports(clean, injected, ignore);
  EXPECT_TRUE(loose.only_in_base.empty());
  ASSERT_FALSE(loose.rows.empty());
  for (const MetricComparison& m : loose.rows)
    EXPECT_NE(m.note.find("conditions differ: base clean, new inject_compute_delay_ms=200"), std::string::npos)
        << m.metric << " " << m.key << ": " << m.note;
  EXPECT_TRUE(loose.failed());  // the injected slowdown is a regression once compared
  // Same conditions on both sides: matched without a note.
  for (const MetricComparison& m : compare_reports(injected, injected, {}).rows) EXPECT_EQ(m.note, "") << m.key;
  EXPECT_TRUE(parse_policy(json::parse(R"({"ignore_conditions": true})"), "p.json").ignore_conditions);
}

// results/baselines/cpu-tiny (schema 1 when written) compares with itself read back: what
// scripts/ci_regression.sh does against a fresh schema 2 run.
TEST(Compare, RecordedSchemaOneBaselineCompares) {
  const std::string path = std::string(CAKE_SOURCE_DIR) + "/results/baselines/cpu-tiny/results.json";
  const RunReport base = read_report(path);
  RunReport now = report_from_json(report_to_json(base), "rewritten.json");  // as schema 2
  EXPECT_EQ(now.schema_version, kReportSchemaVersion);
  ComparePolicy p;
  p.ratios_only = true;
  const CompareResult c = compare_reports(base, now, p);
  EXPECT_TRUE(c.only_in_base.empty());
  EXPECT_TRUE(c.only_in_new.empty());
  EXPECT_FALSE(c.rows.empty());
  EXPECT_FALSE(c.failed());
}

TEST(Compare, PolicyFileParsing) {
  const ComparePolicy p = parse_policy(
      json::parse(R"({"threshold_pct": {"ttft_ms": 5, "ratio": 3}, "alpha": 0.01, "ratios_only": true})"), "p.json");
  EXPECT_DOUBLE_EQ(p.ttft_threshold_pct, 5);
  EXPECT_DOUBLE_EQ(p.ratio_threshold_pct, 3);
  EXPECT_DOUBLE_EQ(p.load_gbps_threshold_pct, 10);
  EXPECT_DOUBLE_EQ(p.alpha, 0.01);
  EXPECT_TRUE(p.ratios_only);
  EXPECT_DOUBLE_EQ(parse_policy(json::parse(R"({"threshold_pct": 7})"), "p.json").ratio_threshold_pct, 7);
  EXPECT_THROW(parse_policy(json::parse(R"({"treshold_pct": 7})"), "p.json"), UsageError);
  EXPECT_THROW(parse_policy(json::parse(R"({"threshold_pct": {"ttft": 7}})"), "p.json"), UsageError);
  EXPECT_THROW(parse_policy(json::parse(R"({"alpha": 2})"), "p.json"), UsageError);
  EXPECT_THROW(parse_policy(json::parse(R"({"ratios_only": "yes"})"), "p.json"), UsageError);
  EXPECT_EQ(parse_policy(policy_to_json(p), "round-trip"), p);
}

TEST(Compare, OutputsCarryVerdictsAndTests) {
  const RunReport base = testing::make_sample_report();
  RunReport slower = base;
  testing::scale_mode(slower, "cake", 1.30);
  const CompareResult c = compare_reports(base, slower, {}, "base.json", "new.json");
  const std::string table = render_compare_table(c);
  EXPECT_NE(table.find("REGRESSED"), std::string::npos);
  EXPECT_NE(table.find("mann-whitney exact"), std::string::npos);
  EXPECT_NE(table.find("RESULT: regression"), std::string::npos);
  const std::string md = render_compare_markdown(c);
  EXPECT_NE(md.find("**REGRESSED**"), std::string::npos);
  const json j = json::parse(compare_to_json(c).dump());
  EXPECT_TRUE(j["summary"]["failed"].get<bool>());
  EXPECT_EQ(j["summary"]["regressed"].get<int>(), c.count(Verdict::regressed));
  EXPECT_EQ(j["rows"].size(), c.rows.size());
  const auto cake_row = std::find_if(j["rows"].begin(), j["rows"].end(),
                                     [](const json& r) { return r["metric"] == "ttft_ms" && r["mode"] == "cake"; });
  ASSERT_NE(cake_row, j["rows"].end());
  EXPECT_EQ((*cake_row)["test"], "mann-whitney exact");
  EXPECT_EQ((*cake_row)["verdict"], "regressed");
  EXPECT_NEAR((*cake_row)["change_pct"].get<double>(), 30.0, 1e-9);
  EXPECT_NE(render_compare_table(compare_reports(base, base, {})).find("RESULT: no regression"), std::string::npos);
}

}  // namespace
}  // namespace cake

namespace cake {
namespace {

// A CPU-backend report: compute samples carry the speed probe, io its bytes at a throttle.
RunReport probed_report(double compute_ms, double probe_ms, double io_ms, double cake_ms) {
  testing::SampleOptions o;
  o.bandwidths_gbps = {0.04};
  o.modes = {"compute", "io", "cake"};
  o.with_timeline = false;
  o.jitter = 0;
  RunReport r = testing::make_sample_report(o);
  for (Point& p : r.points) {
    const double t = p.mode == "compute" ? compute_ms : p.mode == "io" ? io_ms : cake_ms;
    p.ttft_ms_samples.assign(p.ttft_ms_samples.size(), t);
    if (p.mode == "compute") {
      p.cpu_probe_ms_samples.assign(p.ttft_ms_samples.size(), probe_ms);
      p.process_cpu_ms_samples.assign(p.ttft_ms_samples.size(), t);
    }
    if (p.mode == "io") p.bytes_loaded = 2'000'000;  // 400 ms at 0.04 Gbit/s
    finalize_point(p);
  }
  return r;
}

const MetricComparison* only_row(const CompareResult& c, const std::string& metric) {
  const auto rows = rows_with(c, metric);
  return rows.size() == 1 ? rows.front() : nullptr;
}

}  // namespace

TEST(Compare, LaneSpeedsAgainstTheMachineCancelTheMachinesSpeed) {
  ComparePolicy policy;
  policy.ratios_only = true;
  policy.ratio_threshold_pct = 40;
  policy.metrics = {"cake/parallel", "compute/probe", "io/ideal"};
  const RunReport base = probed_report(200, 20, 420, 150);
  // The same code on a machine 1.5x slower: compute and probe both slow, io does not.
  const CompareResult slower_machine = compare_reports(base, probed_report(300, 30, 420, 190), policy);
  EXPECT_FALSE(slower_machine.failed());
  const MetricComparison* probe_row = only_row(slower_machine, "compute/probe");
  ASSERT_NE(probe_row, nullptr);
  EXPECT_NEAR(probe_row->change_pct, 0.0, 1e-9);
  EXPECT_EQ(probe_row->test, TestUsed::minimum);
  EXPECT_TRUE(rows_with(slower_machine, "cake/compute").empty());  // not asked for

  // A 2x slower compute lane on the same machine: caught by compute/probe.
  const CompareResult slow_compute = compare_reports(base, probed_report(400, 20, 420, 250), policy);
  ASSERT_NE(only_row(slow_compute, "compute/probe"), nullptr);
  EXPECT_EQ(only_row(slow_compute, "compute/probe")->verdict, Verdict::regressed);
  EXPECT_TRUE(slow_compute.failed());

  // A 2x slower load lane: io/ideal doubles (400 ms ideal for 2 MB at 0.04 Gbit/s).
  const CompareResult slow_load = compare_reports(base, probed_report(200, 20, 840, 190), policy);
  const MetricComparison* io_row = only_row(slow_load, "io/ideal");
  ASSERT_NE(io_row, nullptr);
  EXPECT_NEAR(io_row->base_value, 420.0 / 400.0, 1e-9);
  EXPECT_EQ(io_row->verdict, Verdict::regressed);
}

TEST(Compare, MetricsSelectionRejectsUnknownNames) {
  EXPECT_THROW(check_metric_name("cake/fast"), UsageError);
  EXPECT_NO_THROW(check_metric_name("compute/probe"));
  EXPECT_THROW(parse_policy(json::parse(R"({"metrics": ["nope"]})"), "policy.json"), UsageError);
  EXPECT_EQ(parse_policy(json::parse(R"({"metrics": ["io/ideal"]})"), "policy.json").metrics,
            std::vector<std::string>{"io/ideal"});
}

TEST(Compare, AChangeInRecoveredChunksIsNoted) {
  testing::SampleOptions o;
  o.with_timeline = false;
  const RunReport base = testing::make_sample_report(o);
  RunReport faulted = base;
  for (Point& p : faulted.points)
    if (p.mode == "io") p.chunks_recovered = 3;
  const CompareResult c = compare_reports(base, faulted, {});
  const auto noted = std::count_if(c.notes.begin(), c.notes.end(),
                                   [](const std::string& n) { return n.find("recovered chunks changed") != std::string::npos; });
  EXPECT_GT(noted, 0);
}

}  // namespace cake
