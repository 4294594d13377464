// The sweep-axis table (engine/axes.hpp): flags, defaults per backend, parsing, the resolved
// values results.json records, bandwidth traces as values, conditions, and the generic cartesian
// product run_sweep takes over further axes.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <set>

#include "common/units.hpp"
#include "engine/axes.hpp"
#include "engine/sweep.hpp"
#include "kernels/backend_factory.hpp"
#include "kernels/presets.hpp"
#include "workloads/synthetic.hpp"

using namespace cake;

namespace {

struct TempFile {
  std::string path;
  TempFile(const std::string& name, const std::string& text)
      : path((std::filesystem::temp_directory_path() / (std::to_string(std::random_device{}()) + "-" + name)).string()) {
    std::ofstream(path) << text;
  }
  ~TempFile() { std::filesystem::remove(path); }
};

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

}  // namespace

TEST(SweepAxes, EachAxisIsOneCompleteEntry) {
  std::set<std::string> names;
  for (const SweepAxis& a : sweep_axes()) {
    EXPECT_TRUE(names.insert(a.name).second) << "duplicate axis " << a.name;
    EXPECT_EQ(a.flag, "--" + a.name);
    EXPECT_FALSE(a.help.empty()) << a.name;
    ASSERT_TRUE(a.default_text && a.set && a.values && a.print) << a.name;
    // Every default parses, on either backend, and gives at least one value.
    for (bool gpu : {false, true}) {
      SweepConfig c;
      a.set(a.default_text(gpu), c);
      EXPECT_FALSE(a.values(c).empty()) << a.name << (gpu ? " gpu" : " cpu");
    }
  }
  for (const char* name : {"chunk", "source", "bandwidth", "mode", "attention"}) EXPECT_TRUE(names.count(name)) << name;
  EXPECT_EQ(&sweep_axis("chunk"), &sweep_axes()[1]);
  EXPECT_THROW(sweep_axis("chunks"), InternalError);
}

TEST(SweepAxes, ResolvesGivenValuesAndBackendDefaults) {
  std::vector<std::string> notes;
  SweepConfig cpu;
  resolve_axes({}, false, true, cpu, notes);
  EXPECT_EQ(cpu.chunk_tokens, std::vector<int32_t>{128});
  ASSERT_EQ(cpu.bandwidths.size(), 3u);
  EXPECT_DOUBLE_EQ(*cpu.bandwidths[0].bytes_per_sec, gbps_to_bytes_per_sec(0.05));
  EXPECT_FALSE(cpu.bandwidths[2].bytes_per_sec);
  EXPECT_EQ(cpu.modes.size(), 4u);
  // Defaults that depend on the backend are noted; the others are not.
  EXPECT_EQ(notes.size(), 2u);
  EXPECT_NE(notes[0].find("chunk: 128 tokens (default for a CPU run)"), std::string::npos) << notes[0];
  EXPECT_NE(notes[1].find("bandwidth: 0.05 Gbps, 0.2 Gbps, unlimited (default for a CPU run)"), std::string::npos)
      << notes[1];

  SweepConfig gpu;
  notes.clear();
  resolve_axes({{"mode", "cake,io"}, {"source", "mem"}}, true, true, gpu, notes);
  EXPECT_EQ(gpu.chunk_tokens, std::vector<int32_t>{1024});
  ASSERT_EQ(gpu.modes.size(), 2u);
  EXPECT_EQ(gpu.modes[0].name(), "cake");
  ASSERT_EQ(gpu.sources.size(), 1u);
  EXPECT_EQ(gpu.sources[0].text(), "mem");

  // The resolved values as results.json records them: typed, never the raw flag text.
  const nlohmann::json j = resolved_axes_json(gpu);
  EXPECT_EQ(j["chunk"], nlohmann::json::array({1024}));
  EXPECT_TRUE(j["chunk"][0].is_number_integer());
  EXPECT_EQ(j["bandwidth"][0], 8.0);
  EXPECT_TRUE(j["bandwidth"][0].is_number_float());
  EXPECT_TRUE(j["bandwidth"][2].is_null());
  EXPECT_EQ(j["mode"], nlohmann::json::array({"cake", "io"}));
  EXPECT_EQ(j["attention"], nlohmann::json::array({"auto"}));

  // prepare resolves only the axes it takes.
  SweepConfig prepare;
  notes.clear();
  resolve_axes({{"chunk", "256"}}, true, false, prepare, notes);
  EXPECT_EQ(prepare.chunk_tokens, std::vector<int32_t>{256});
  EXPECT_TRUE(prepare.axes.empty());
  EXPECT_THROW(resolve_axes({{"chunks", "256"}}, true, true, prepare, notes), InternalError);
}

TEST(SweepAxes, BadValuesAreUsageErrorsNamingTheFlag) {
  std::vector<std::string> notes;
  SweepConfig c;
  EXPECT_NE(usage_error_of([&] { resolve_axes({{"chunk", "0"}}, false, true, c, notes); }).find("invalid chunk size '0'"),
            std::string::npos);
  EXPECT_NE(usage_error_of([&] { resolve_axes({{"mode", "cake,fast"}}, false, true, c, notes); }).find("invalid mode"),
            std::string::npos);
  EXPECT_NE(usage_error_of([&] { resolve_axes({{"bandwidth", "8"}}, false, true, c, notes); }).find("bandwidth"),
            std::string::npos);
  const std::string attention = usage_error_of([&] { resolve_axes({{"attention", "auto,flash"}}, false, true, c, notes); });
  EXPECT_NE(attention.find("invalid --attention 'flash'"), std::string::npos) << attention;
  EXPECT_NE(attention.find("accepted: auto, cudnn, mma"), std::string::npos) << attention;
  EXPECT_NE(usage_error_of([&] { resolve_axes({{"bandwidth", "trace:"}}, false, true, c, notes); }).find("trace:FILE"),
            std::string::npos);
}

TEST(SweepAxes, ABandwidthTraceIsItsOwnValueWithMeanAndMinimum) {
  // 0.2 Gbps, an outage from 150 to 600 ms, then 0.2 Gbps again.
  const TempFile trace("bt.csv", "t_ms,gbps\n0,0.2\n150,0\n600,0.2\n");
  const BandwidthSetting s = bandwidth_trace_setting(trace.path);
  EXPECT_TRUE(s.is_trace());
  const std::string name = std::filesystem::path(trace.path).filename().string();
  EXPECT_TRUE(s.trace_label.starts_with("trace:" + name + "@")) << s.trace_label;
  EXPECT_EQ(s.trace_label.size(), ("trace:" + name + "@").size() + 8);
  EXPECT_NEAR(bytes_per_sec_to_gbps(s.trace_mean_bytes_per_sec), 0.2 * 150 / 600, 1e-12);
  EXPECT_EQ(s.trace_min_bytes_per_sec, 0);
  EXPECT_EQ(s.identity(), AxisValue::text(s.trace_label));
  EXPECT_FALSE(s.bytes_per_sec);

  // The same name with other content is another value; the same content is the same value.
  const TempFile edited("bt.csv", "t_ms,gbps\n0,0.2\n150,0\n700,0.2\n");
  const BandwidthSetting e = bandwidth_trace_setting(edited.path);
  EXPECT_NE(e.trace_label.substr(e.trace_label.size() - 8), s.trace_label.substr(s.trace_label.size() - 8));
  const TempFile copy("bt.csv", "t_ms,gbps\n0,0.2\n150,0\n600,0.2\n");
  const BandwidthSetting c = bandwidth_trace_setting(copy.path);
  EXPECT_EQ(c.trace_label.substr(c.trace_label.size() - 8), s.trace_label.substr(s.trace_label.size() - 8));

  // In a list, next to constant rates and unlimited.
  const std::vector<BandwidthSetting> list = parse_bandwidth_settings("0.05gbps,trace:" + trace.path + ",unlimited");
  ASSERT_EQ(list.size(), 3u);
  EXPECT_NEAR(list[0].identity().as_real(), 0.05, 1e-12);
  EXPECT_EQ(list[1], s);
  EXPECT_TRUE(list[2].identity().is_none());
  EXPECT_EQ(list[2].text(), "unlimited");
  // A one-point trace's mean is its rate.
  const TempFile flat("flat.csv", "0,2\n");
  EXPECT_NEAR(bytes_per_sec_to_gbps(bandwidth_trace_setting(flat.path).trace_mean_bytes_per_sec), 2, 1e-12);
}

TEST(SweepAxes, ConditionsAreWhatWasInjected) {
  SweepConfig c;
  EXPECT_TRUE(sweep_conditions(c).empty());
  c.inject_compute_delay_ms = 200;
  c.source_options.inject_fail_chunks = {3, 7};
  EXPECT_EQ(sweep_conditions(c), (AxisFields{{"inject_compute_delay_ms", AxisValue::real(200)},
                                             {"inject_fault", AxisValue::text("3,7")}}));
}

// run_sweep runs every combination of the generic axes, tells `configure` each one before its
// points, and records the non-neutral values on the points. A value nothing applies is refused.
TEST(SweepAxes, GenericAxesAreACartesianProductTheSweepRuns) {
  const uint64_t seed = std::random_device{}();
  SCOPED_TRACE(testing::Message() << "seed " << seed);
  const ModelConfig model = preset_model("tiny");
  BackendOptions options;
  options.max_context_tokens = 80;
  options.max_chunk_tokens = 32;
  options.cpu_threads = 1;
  BackendChoice choice = make_backend(BackendKind::cpu, model, options);

  SweepConfig c;
  c.requests = {synthetic_request(64, 8, model.vocab, seed)};
  c.chunk_tokens = {32};
  c.modes = {parse_mode("compute")};
  c.repeat = 1;
  c.warmup = 0;
  c.verify = VerifyLevel::token;
  c.axes = {{"attention", {AxisValue::text("auto"), AxisValue::text("other")}, AxisValue::text("auto")},
            {"codec", {AxisValue::text("none"), AxisValue::text("fp8")}, AxisValue::text("none")}};
  EXPECT_THROW(run_sweep(*choice.backend, c, nullptr), InternalError);  // nothing applies "other"

  std::vector<AxisFields> configured;
  c.configure = [&](const AxisFields& combination) { configured.push_back(combination); };
  EXPECT_EQ(sweep_run_count(c), 4 * 2);  // per combination: the reference run and one compute repetition
  const std::vector<PointResult> points = run_sweep(*choice.backend, c, nullptr);
  ASSERT_EQ(configured.size(), 4u);
  EXPECT_EQ(configured[0], (AxisFields{{"attention", AxisValue::text("auto")}, {"codec", AxisValue::text("none")}}));
  EXPECT_EQ(configured[3], (AxisFields{{"attention", AxisValue::text("other")}, {"codec", AxisValue::text("fp8")}}));
  ASSERT_EQ(points.size(), 4u);
  EXPECT_TRUE(points[0].axes.empty());  // all neutral: the identity a run without these axes had
  EXPECT_EQ(points[1].axes, (AxisFields{{"codec", AxisValue::text("fp8")}}));
  EXPECT_EQ(points[3].axes, (AxisFields{{"attention", AxisValue::text("other")}, {"codec", AxisValue::text("fp8")}}));
  for (const PointResult& p : points) EXPECT_TRUE(p.verification.passed) << p.verification.detail;
}

// A sweep at a bandwidth trace: the points carry the trace (label, mean, minimum) as their
// bandwidth, never "unlimited", and the trace throttled the load (io took at least the time the
// trace needs to deliver the store).
TEST(SweepAxes, ASweepAtATraceRecordsTheTraceOnItsPoints) {
  const uint64_t seed = std::random_device{}();
  SCOPED_TRACE(testing::Message() << "seed " << seed);
  const ModelConfig model = preset_model("tiny");
  BackendOptions options;
  options.max_context_tokens = 80;
  options.max_chunk_tokens = 32;
  options.cpu_threads = 1;
  BackendChoice choice = make_backend(BackendKind::cpu, model, options);
  const std::string dir = (std::filesystem::temp_directory_path() / ("cake-axes-" + std::to_string(seed))).string();
  // 0.02 Gbit/s (2.5 MB/s) for the first 5 ms, then an outage until 30 ms, then 0.02 again.
  const TempFile trace("slow.csv", "0,0.02\n5,0\n30,0.02\n");

  SweepConfig c;
  c.requests = {synthetic_request(64, 8, model.vocab, seed)};
  c.chunk_tokens = {32};
  c.modes = {parse_mode("compute"), parse_mode("io")};
  c.bandwidths = parse_bandwidth_settings("trace:" + trace.path);
  c.sources = {parse_source_spec("mem")};
  c.store_dir = dir;
  c.repeat = 1;
  c.warmup = 0;
  c.verify = VerifyLevel::token;
  const std::vector<PointResult> points = run_sweep(*choice.backend, c, nullptr);
  std::filesystem::remove_all(dir);
  ASSERT_EQ(points.size(), 2u);
  for (const PointResult& p : points) {
    EXPECT_TRUE(p.bandwidth.is_trace()) << p.mode.name();
    EXPECT_EQ(p.bandwidth, c.bandwidths[0]);
    EXPECT_EQ(p.throttle, c.bandwidths[0].trace_label);
    EXPECT_TRUE(p.verification.passed) << p.verification.detail;
  }
  const RequestOutcome& io = points[1].reps.at(0);
  ASSERT_EQ(points[1].mode.kind, ModeKind::io);
  ASSERT_GT(io.bytes_loaded, 0u);
  // The trace lets through 5 ms at 2.5 MB/s before its outage, plus a burst of at most 10 ms at
  // that rate (BucketThrottle::kDefaultBurstNs): a store larger than that waits out the outage.
  const double before_outage = gbps_to_bytes_per_sec(0.02) * (0.005 + 0.010);
  ASSERT_GT(static_cast<double>(io.bytes_loaded), before_outage) << "the store is too small to show the outage";
  EXPECT_GE(io.ttft_ms, 30.0) << io.bytes_loaded << " bytes loaded through a trace with an outage until 30 ms";
}

namespace cake {
namespace {

TEST(SweepAxes, CodecIsAnAxisOfKindsWithoutRepeats) {
  std::vector<std::string> notes;
  SweepConfig c;
  resolve_axes({}, true, true, c, notes);
  EXPECT_EQ(c.codecs, std::vector<CodecKind>{CodecKind::none});
  resolve_axes({{"codec", "none,int8,int4"}}, true, false, c, notes);  // prepare takes it too
  EXPECT_EQ(c.codecs, (std::vector<CodecKind>{CodecKind::none, CodecKind::int8, CodecKind::int4}));
  EXPECT_EQ(resolved_axes_json(c)["codec"], nlohmann::json::array({"none", "int8", "int4"}));
  EXPECT_THROW(resolve_axes({{"codec", "int8,int8"}}, true, true, c, notes), UsageError);
  EXPECT_THROW(resolve_axes({{"codec", "fp8"}}, true, true, c, notes), UsageError);
  EXPECT_TRUE(sweep_axis("codec").prepare);
}

}  // namespace
}  // namespace cake
