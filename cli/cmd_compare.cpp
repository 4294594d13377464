// `cake-bench compare BASE.json NEW.json`: regressions beyond noise and threshold.
// Exit 0: nothing regressed; 1: something did; 2: unusable input (unreadable or invalid file,
// different GPU without --allow-env-change, bad policy). Schema 1 and 2 reports both load.
#include <cstdio>
#include <exception>
#include <iostream>
#include <memory>
#include <string>

#include "cli/commands.hpp"
#include "cli/exit_codes.hpp"
#include "common/error.hpp"
#include "results/compare.hpp"
#include "results/report_json.hpp"

namespace cake {
namespace {

struct CompareArgs {
  std::string base_path, new_path, policy_path;
  bool markdown = false, json = false;
  double threshold_pct = 0, alpha = 0;
  bool ratios_only = false, allow_env_change = false, fail_on_missing = false, ignore_conditions = false;
  std::vector<std::string> metrics;
  CLI::Option* threshold_opt = nullptr;
  CLI::Option* alpha_opt = nullptr;
};

// Defaults, then the policy file, then flags: the most specific wins.
ComparePolicy policy_from(const CompareArgs& a) {
  ComparePolicy p = a.policy_path.empty() ? ComparePolicy{} : read_policy(a.policy_path);
  if (a.threshold_opt->count() > 0) {
    if (!(a.threshold_pct >= 0)) throw UsageError("--threshold-pct must be >= 0");
    p.ttft_threshold_pct = p.ratio_threshold_pct = p.load_gbps_threshold_pct = a.threshold_pct;
  }
  if (a.alpha_opt->count() > 0) {
    if (!(a.alpha > 0 && a.alpha <= 1)) throw UsageError("--alpha must be in (0, 1]");
    p.alpha = a.alpha;
  }
  if (!a.metrics.empty()) {
    for (const std::string& m : a.metrics) check_metric_name(m);
    p.metrics = a.metrics;
  }
  p.ratios_only |= a.ratios_only;
  p.allow_env_change |= a.allow_env_change;
  p.fail_on_missing |= a.fail_on_missing;
  p.ignore_conditions |= a.ignore_conditions;
  return p;
}

}  // namespace

void add_compare_command(CLI::App& app, int& exit_code) {
  auto* cmd = app.add_subcommand(
      "compare",
      "Compare two results.json: per matched point and metric improved / unchanged / regressed, beyond the noise "
      "of both runs (Mann-Whitney U on repetitions) and a threshold. Exit 0 no regression, 1 regression, 2 "
      "unusable input");
  auto a = std::make_shared<CompareArgs>();
  cmd->add_option("base", a->base_path, "Baseline results.json")->required();
  cmd->add_option("new", a->new_path, "New results.json")->required();
  auto* md = cmd->add_flag("--md", a->markdown, "Print markdown instead of the terminal table");
  auto* js = cmd->add_flag("--json", a->json, "Print JSON instead of the terminal table");
  md->excludes(js);
  cmd->add_option("--policy", a->policy_path,
                  "JSON policy file: {\"threshold_pct\": {\"ttft_ms\": 10, \"ratio\": 10, \"load_gbps\": 10}, "
                  "\"alpha\": 0.05, \"ratios_only\": false, \"allow_env_change\": false, \"fail_on_missing\": false, "
                  "\"ignore_conditions\": false}");
  a->threshold_opt = cmd->add_option("--threshold-pct", a->threshold_pct,
                                     "Relative change (%) that counts, for every metric (default 10; overrides the policy)");
  a->alpha_opt = cmd->add_option("--alpha", a->alpha, "Significance level of the U test (default 0.05)");
  cmd->add_flag("--ratios-only", a->ratios_only,
                "Compare only within-run ratios (cake/compute, cake/io, cake/oracle) and verification: for CI on "
                "shared or different machines");
  cmd->add_option("--metrics", a->metrics,
                  "Compare only these metrics (comma list; verification always): ttft_ms, load_gbps, cake/compute, "
                  "cake/io, cake/oracle, cake/best, cake/parallel, compute/probe, io/ideal")
      ->delimiter(',');
  cmd->add_flag("--allow-env-change", a->allow_env_change, "Compare even when the GPU names differ");
  cmd->add_flag("--fail-on-missing", a->fail_on_missing, "Exit 1 when a point is present on one side only");
  cmd->add_flag("--ignore-conditions", a->ignore_conditions,
                "Match points whose injected faults or compute delay differ (each such row says so); without it "
                "they do not match");
  cmd->callback([a, &exit_code] {
    try {
      const ComparePolicy policy = policy_from(*a);
      const RunReport base = read_report(a->base_path);
      const RunReport now = read_report(a->new_path);
      const CompareResult result = compare_reports(base, now, policy, a->base_path, a->new_path);
      if (a->json) std::cout << compare_to_json(result).dump(2) << "\n";
      else if (a->markdown) std::cout << render_compare_markdown(result);
      else std::cout << render_compare_table(result);
      std::cout.flush();
      exit_code = result.failed() ? kExitFailure : kExitOk;
    } catch (const InternalError&) {
      throw;  // a bug in cake-bench: main reports it as one (exit 1), not as unusable input
    } catch (const std::exception& e) {
      // Anything else that stops the comparison is unusable input, never "regressed".
      std::fprintf(stderr, "cake-bench compare: %s\n", e.what());
      exit_code = kExitUsage;
    }
  });
}

}  // namespace cake
