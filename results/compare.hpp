// `cake-bench compare`: is a new run worse than a baseline, beyond the noise of both?
// Points are matched by point_identity: typed (axis, value) pairs compared by value, so how a
// number prints never unmatches a point. Points that ran under different conditions (injected
// faults or compute delay) do not match unless the policy says to ignore conditions; then every
// such row carries a note. Per matched point: TTFT
// (median; the test runs on the repetitions), achieved load_gbps, verification. Per matched
// configuration group: the within-run ratios cake/compute, cake/io, cake/oracle, which hold
// across machines of different speed. The method is documented in README.md ("Output files, report and compare").
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "results/report.hpp"

namespace cake {

struct ComparePolicy {
  double ttft_threshold_pct = 10;       // |relative change| of TTFT medians that counts
  double ratio_threshold_pct = 10;      // ... of cake/compute, cake/io, cake/oracle
  double load_gbps_threshold_pct = 10;  // ... of achieved load bandwidth
  double alpha = 0.05;                  // significance level of the Mann-Whitney U test
  bool ratios_only = false;             // compare only within-run ratios (CI on shared machines)
  bool allow_env_change = false;        // compare even when the GPU names differ
  bool fail_on_missing = false;         // a point present on one side only counts as a failure
  // Only these metrics are compared (names as in MetricComparison::metric, e.g. "compute/probe");
  // empty: all of them but io/ideal. "verified" is always compared.
  std::vector<std::string> metrics;
  bool ignore_conditions = false;       // match points whose injected faults / compute delay differ (noted)

  bool operator==(const ComparePolicy&) const = default;
};

// The policy file: every key optional, unknown keys refused (a typo must not silently do nothing):
// {"threshold_pct": {"ttft_ms": 10, "ratio": 10, "load_gbps": 10}, "alpha": 0.05,
//  "ratios_only": false, "allow_env_change": false, "fail_on_missing": false, "ignore_conditions": false,
//  "metrics": ["cake/parallel"]}
// "threshold_pct" may also be one number for all metrics. Starts from `defaults`.
ComparePolicy parse_policy(const nlohmann::json& j, const std::string& origin, ComparePolicy defaults = {});
ComparePolicy read_policy(const std::string& path, ComparePolicy defaults = {});  // UsageError
nlohmann::json policy_to_json(const ComparePolicy& policy);

// Within-run ratios, each of which cancels something that differs between machines or moments:
//   cake/compute, cake/io, cake/oracle  Cake against the other modes of the same run;
//   cake/best      Cake over the better of compute-only and I/O-only (Cake's promise: <= 1); it
//                  moves with the lanes' relative speed (0.5 when they are equal, 1 when one is far
//                  faster), so it does not hold across machines;
//   cake/parallel  Cake over 1 / (1/compute + 1/io), the time two lanes that shared the prefix
//                  perfectly would take: Cake's scheduling loss, whatever the lanes' speeds;
//   compute/probe  the least CPU time of a compute-only request over the least CPU time of the
//                  speed probe before it (CPU backend only): the compute lane's speed with the
//                  machine's divided out; CPU time, not wall time, so another tenant holding the
//                  core does not enter (a lane that waits more, burning nothing, is not seen);
//   io/ideal       the fastest I/O-only TTFT over the time its bytes take at the throttle's rate
//                  (throttled points only): the load lane's efficiency, independent of the CPU.
inline constexpr const char* kRatioMetrics[] = {"cake/compute", "cake/io",       "cake/oracle", "cake/best",
                                                "cake/parallel", "compute/probe", "io/ideal"};
// Throws UsageError naming the known metrics when `name` is none of them (nor ttft_ms, load_gbps).
void check_metric_name(const std::string& name);

enum class Verdict { improved, unchanged, regressed };

enum class TestUsed {
  mann_whitney_exact,   // >= 3 repetitions a side, no ties, small samples
  mann_whitney_normal,  // >= 3 a side, ties or larger samples: normal approximation, tie-corrected
  bands,                // too few repetitions for the U test to reach alpha: [p10, p90] must not overlap
  threshold_only,       // one value a side, no spread known (load_gbps): the threshold alone decides
  flag,                 // a yes/no metric (verified)
  minimum,              // lane speeds (compute/probe, io/ideal): the fastest repetitions' ratio, threshold decides
};

const char* to_string(Verdict v);
const char* to_string(TestUsed t);

struct MetricComparison {
  std::string group;         // group_key of the configuration
  std::string key;           // point_key for per-point metrics, group_key for ratios
  std::string metric;        // "ttft_ms", "load_gbps", "verified", or a within-run ratio (kRatioMetrics)
  std::string mode;          // the point's mode; empty for ratios
  bool higher_is_better = false;
  double base_value = 0;     // TTFT median, ratio of medians, load_gbps, or 1/0 for verified
  double new_value = 0;
  double change_pct = 0;     // 100 * (new - base) / base
  double threshold_pct = 0;
  int base_n = 0, new_n = 0; // samples the test saw on each side
  TestUsed test = TestUsed::threshold_only;
  std::optional<double> p_value;
  bool significant = false;  // the difference exceeds the noise by `test`
  bool paired = false;       // ratios: per-repetition pairs on both sides
  Verdict verdict = Verdict::unchanged;
  std::string note;
};

struct CompareResult {
  ComparePolicy policy;
  std::string base_origin, new_origin;
  std::vector<MetricComparison> rows;
  std::vector<std::string> only_in_base;  // point keys
  std::vector<std::string> only_in_new;
  std::vector<std::string> notes;         // environment differences and the like

  int count(Verdict v) const;
  // Whether compare should exit 1: a regression, or (fail_on_missing) a point on one side only.
  bool failed() const;
};

// Throws UsageError for unusable input: duplicate points within a report, or different GPU names
// in the environments (unless policy.allow_env_change). Reports of different schema versions
// compare (both are read into the current model); the result notes it.
CompareResult compare_reports(const RunReport& base, const RunReport& now, const ComparePolicy& policy,
                              const std::string& base_origin = "base", const std::string& new_origin = "new");

// GPU names found in an environment: "name" of every object in any "gpus" array and of any
// "gpu" object, at any depth (the CLI stores to_json(SystemInfo), whose cuda.gpus[] carry names).
std::vector<std::string> gpu_names(const nlohmann::json& environment);

// Within-run ratio samples of numerator / denominator TTFT: per repetition pair when the run
// paired repetitions and both have as many samples, else each numerator sample over the
// denominator's median. Absent when either side has no samples or a non-positive median.
struct RatioSamples {
  std::vector<double> samples;
  double value = 0;      // ratio of the medians: what derive_groups reports
  bool paired = false;
};
std::optional<RatioSamples> ratio_samples(const Point& numerator, const Point& denominator, bool repetitions_paired);

std::string render_compare_table(const CompareResult& result);
std::string render_compare_markdown(const CompareResult& result);
nlohmann::json compare_to_json(const CompareResult& result);

}  // namespace cake
