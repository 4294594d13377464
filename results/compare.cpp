#include "results/compare.hpp"

#include <algorithm>
#include <cmath>
#include <map>

#include "common/error.hpp"
#include "results/format.hpp"
#include "results/mann_whitney.hpp"

namespace cake {

using nlohmann::json;

const char* to_string(Verdict v) {
  switch (v) {
    case Verdict::improved: return "improved";
    case Verdict::unchanged: return "unchanged";
    case Verdict::regressed: return "regressed";
  }
  return "?";
}

const char* to_string(TestUsed t) {
  switch (t) {
    case TestUsed::mann_whitney_exact: return "mann-whitney exact";
    case TestUsed::mann_whitney_normal: return "mann-whitney normal";
    case TestUsed::bands: return "p10-p90 bands";
    case TestUsed::threshold_only: return "threshold only";
    case TestUsed::flag: return "flag";
    case TestUsed::minimum: return "ratio of minima";
  }
  return "?";
}

// ---- policy ------------------------------------------------------------------------------

namespace {

double policy_number(const json& v, const std::string& origin, const std::string& field, double lo, double hi) {
  if (!v.is_number()) throw UsageError(cat(origin, ": ", field, ": expected a number, got ", v.type_name()));
  const double x = v.get<double>();
  if (!(x >= lo && x <= hi)) throw UsageError(cat(origin, ": ", field, ": ", x, " is outside [", lo, ", ", hi, "]"));
  return x;
}

bool policy_bool(const json& v, const std::string& origin, const std::string& field) {
  if (!v.is_boolean()) throw UsageError(cat(origin, ": ", field, ": expected true or false, got ", v.type_name()));
  return v.get<bool>();
}

}  // namespace

ComparePolicy parse_policy(const json& j, const std::string& origin, ComparePolicy p) {
  if (!j.is_object()) throw UsageError(cat(origin, ": expected a JSON object, got ", j.type_name()));
  constexpr double kMaxPct = 1e6;
  for (const auto& [key, v] : j.items()) {
    if (key == "threshold_pct") {
      if (v.is_number()) {
        p.ttft_threshold_pct = p.ratio_threshold_pct = p.load_gbps_threshold_pct =
            policy_number(v, origin, key, 0, kMaxPct);
        continue;
      }
      if (!v.is_object())
        throw UsageError(cat(origin, ": threshold_pct: expected a number or an object, got ", v.type_name()));
      for (const auto& [metric, t] : v.items()) {
        const std::string field = cat("threshold_pct.", metric);
        if (metric == "ttft_ms") p.ttft_threshold_pct = policy_number(t, origin, field, 0, kMaxPct);
        else if (metric == "ratio") p.ratio_threshold_pct = policy_number(t, origin, field, 0, kMaxPct);
        else if (metric == "load_gbps") p.load_gbps_threshold_pct = policy_number(t, origin, field, 0, kMaxPct);
        else throw UsageError(cat(origin, ": ", field, ": unknown metric (known: ttft_ms, ratio, load_gbps)"));
      }
    } else if (key == "alpha") {
      p.alpha = policy_number(v, origin, key, 1e-12, 1);
    } else if (key == "metrics") {
      if (!v.is_array()) throw UsageError(cat(origin, ": metrics: expected an array of metric names"));
      p.metrics.clear();
      for (const json& m : v) {
        if (!m.is_string()) throw UsageError(cat(origin, ": metrics: expected metric names (strings)"));
        check_metric_name(m.get<std::string>());
        p.metrics.push_back(m.get<std::string>());
      }
    } else if (key == "ratios_only") {
      p.ratios_only = policy_bool(v, origin, key);
    } else if (key == "allow_env_change") {
      p.allow_env_change = policy_bool(v, origin, key);
    } else if (key == "fail_on_missing") {
      p.fail_on_missing = policy_bool(v, origin, key);
    } else if (key == "ignore_conditions") {
      p.ignore_conditions = policy_bool(v, origin, key);
    } else {
      throw UsageError(cat(origin, ": ", key,
                           ": unknown key (known: threshold_pct, alpha, ratios_only, allow_env_change, fail_on_missing, "
                           "ignore_conditions, metrics)"));
    }
  }
  return p;
}

ComparePolicy read_policy(const std::string& path, ComparePolicy defaults) {
  const std::string text = read_text_file(path);
  json j;
  try {
    j = json::parse(text);
  } catch (const json::parse_error& e) {
    throw UsageError(cat(path, ": not valid JSON: ", e.what()));
  }
  return parse_policy(j, path, defaults);
}

json policy_to_json(const ComparePolicy& p) {
  return {{"threshold_pct",
           {{"ttft_ms", p.ttft_threshold_pct}, {"ratio", p.ratio_threshold_pct}, {"load_gbps", p.load_gbps_threshold_pct}}},
          {"alpha", p.alpha},
          {"ratios_only", p.ratios_only},
          {"metrics", p.metrics},
          {"allow_env_change", p.allow_env_change},
          {"fail_on_missing", p.fail_on_missing},
          {"ignore_conditions", p.ignore_conditions}};
}

// ---- environment -------------------------------------------------------------------------

namespace {

void collect_gpu_names(const json& j, std::vector<std::string>& out) {
  if (j.is_array()) {
    for (const auto& v : j) collect_gpu_names(v, out);
    return;
  }
  if (!j.is_object()) return;
  for (const auto& [key, v] : j.items()) {
    if (key == "gpus" && v.is_array()) {
      for (const auto& g : v)
        if (g.is_object() && g.contains("name") && g["name"].is_string()) out.push_back(g["name"].get<std::string>());
    } else if (key == "gpu" && v.is_object() && v.contains("name") && v["name"].is_string()) {
      out.push_back(v["name"].get<std::string>());
    }
    collect_gpu_names(v, out);
  }
}

std::string join_names(const std::vector<std::string>& names) {
  if (names.empty()) return "no GPU";
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) out += (i ? ", " : "") + names[i];
  return out;
}

}  // namespace

std::vector<std::string> gpu_names(const json& environment) {
  std::vector<std::string> names;
  collect_gpu_names(environment, names);
  std::sort(names.begin(), names.end());
  return names;
}

// ---- ratios ------------------------------------------------------------------------------

void check_metric_name(const std::string& name) {
  if (name == "ttft_ms" || name == "load_gbps" || name == "verified") return;
  for (const char* known : kRatioMetrics)
    if (name == known) return;
  std::string all = "ttft_ms, load_gbps";
  for (const char* known : kRatioMetrics) all += cat(", ", known);
  throw UsageError(cat("unknown metric '", name, "' (known: ", all, ")"));
}

std::optional<RatioSamples> ratio_samples(const Point& num, const Point& den, bool repetitions_paired) {
  if (num.ttft_ms_samples.empty() || den.ttft_ms_samples.empty()) return std::nullopt;
  if (!(den.ttft_ms.median > 0)) return std::nullopt;
  RatioSamples r;
  r.value = num.ttft_ms.median / den.ttft_ms.median;
  r.paired = repetitions_paired && num.ttft_ms_samples.size() == den.ttft_ms_samples.size();
  for (size_t i = 0; i < num.ttft_ms_samples.size(); ++i) {
    const double d = r.paired ? den.ttft_ms_samples[i] : den.ttft_ms.median;
    if (!(d > 0)) return std::nullopt;
    r.samples.push_back(num.ttft_ms_samples[i] / d);
  }
  return r;
}

// ---- comparison --------------------------------------------------------------------------

namespace {

using PointIndex = std::map<AxisFields, const Point*>;

PointIndex index_points(const RunReport& r, const std::string& origin, bool with_conditions) {
  PointIndex by_identity;
  for (const Point& p : r.points)
    if (!by_identity.emplace(point_identity(p, with_conditions), &p).second)
      throw UsageError(cat(origin, ": two points have the same configuration and mode (", point_key(p),
                           with_conditions ? "" : ", conditions ignored", "); compare cannot match them"));
  return by_identity;
}

std::string conditions_text(const AxisFields& conditions) {
  return conditions.empty() ? std::string("clean") : print_fields(conditions);
}

// The note on a row whose two points ran under different conditions (only with ignore_conditions).
std::string conditions_note(const Point& b, const Point& n) {
  if (b.conditions == n.conditions) return "";
  return cat("conditions differ: base ", conditions_text(b.conditions), ", new ", conditions_text(n.conditions));
}

void add_note(MetricComparison& m, const std::string& note) {
  if (note.empty()) return;
  m.note = m.note.empty() ? note : cat(m.note, "; ", note);
}

double change_pct(double base, double now) {
  if (base == 0) return now == 0 ? 0.0 : (now > 0 ? 1.0 : -1.0) * HUGE_VAL;
  return 100.0 * (now - base) / std::fabs(base);
}

void decide(MetricComparison& m) {
  m.change_pct = change_pct(m.base_value, m.new_value);
  const bool worse = m.higher_is_better ? m.new_value < m.base_value : m.new_value > m.base_value;
  const bool beyond = std::fabs(m.change_pct) > m.threshold_pct;
  if (m.significant && beyond && m.new_value != m.base_value) m.verdict = worse ? Verdict::regressed : Verdict::improved;
  else m.verdict = Verdict::unchanged;
}

// Fills test, p_value and significant from the two sides' samples.
void test_samples(MetricComparison& m, const std::vector<double>& base, const std::vector<double>& now,
                  double alpha) {
  m.base_n = static_cast<int>(base.size());
  m.new_n = static_cast<int>(now.size());
  const bool enough = m.base_n >= 3 && m.new_n >= 3;
  const double min_p = mann_whitney_min_p(m.base_n, m.new_n);
  if (enough && min_p <= alpha) {
    const MannWhitneyResult u = mann_whitney_u(base, now);
    m.test = u.exact ? TestUsed::mann_whitney_exact : TestUsed::mann_whitney_normal;
    m.p_value = u.p_value;
    m.significant = u.p_value < alpha;
    return;
  }
  m.test = TestUsed::bands;
  if (enough)
    m.note = cat("U test cannot reach alpha ", short_number(alpha), " with ", m.base_n, "+", m.new_n,
                 " repetitions (smallest p ", fixed(min_p, 3), ")");
  const Summary b = summarize(base), n = summarize(now);
  m.significant = n.p10 > b.p90 || n.p90 < b.p10;
}

MetricComparison ttft_row(const Point& b, const Point& n, const ComparePolicy& policy) {
  MetricComparison m;
  m.group = group_key(b);
  m.key = point_key(b);
  m.metric = "ttft_ms";
  m.mode = b.mode;
  m.threshold_pct = policy.ttft_threshold_pct;
  m.base_value = b.ttft_ms.median;
  m.new_value = n.ttft_ms.median;
  test_samples(m, b.ttft_ms_samples, n.ttft_ms_samples, policy.alpha);
  decide(m);
  return m;
}

MetricComparison load_row(const Point& b, const Point& n, const ComparePolicy& policy) {
  MetricComparison m;
  m.group = group_key(b);
  m.key = point_key(b);
  m.metric = "load_gbps";
  m.mode = b.mode;
  m.higher_is_better = true;
  m.threshold_pct = policy.load_gbps_threshold_pct;
  m.base_value = *b.load_gbps;
  m.new_value = *n.load_gbps;
  m.base_n = m.new_n = 1;
  m.test = TestUsed::threshold_only;
  m.significant = true;  // no spread is recorded: the threshold alone decides
  decide(m);
  return m;
}

MetricComparison verified_row(const Point& b, const Point& n) {
  MetricComparison m;
  m.group = group_key(b);
  m.key = point_key(b);
  m.metric = "verified";
  m.mode = b.mode;
  m.higher_is_better = true;
  m.base_value = b.verified ? 1 : 0;
  m.new_value = n.verified ? 1 : 0;
  m.base_n = m.new_n = 1;
  m.test = TestUsed::flag;
  m.change_pct = 0;
  m.verdict = b.verified == n.verified ? Verdict::unchanged
                                       : (n.verified ? Verdict::improved : Verdict::regressed);
  if (!n.verified && !n.verify_detail.empty()) m.note = n.verify_detail;
  return m;
}

struct GroupModes {
  std::map<std::string, const Point*> by_mode;
};

// Without a selection every metric but io/ideal: that one compares the loader with its throttle
// rather than the run with itself, so it is asked for by name (the CI gate does).
bool wanted(const ComparePolicy& policy, const std::string& metric) {
  if (policy.metrics.empty()) return metric != "io/ideal";
  return std::find(policy.metrics.begin(), policy.metrics.end(), metric) != policy.metrics.end();
}

// The lane ratios of one side of a group (see kRatioMetrics), as samples; absent where the group
// lacks what a ratio needs.
struct LaneRatios {
  std::optional<std::vector<double>> cake_best, cake_parallel;
  std::optional<double> compute_probe_min, io_ideal_min;  // ratios of the fastest repetitions
  int compute_n = 0, io_n = 0;
};

LaneRatios lane_ratios(const std::map<std::string, const Point*>& modes) {
  LaneRatios r;
  const auto find = [&](const char* mode) -> const Point* {
    const auto it = modes.find(mode);
    return it == modes.end() || it->second->ttft_ms_samples.empty() ? nullptr : it->second;
  };
  const Point* compute = find("compute");
  const Point* io = find("io");
  const Point* cake = find("cake");
  if (compute && !compute->cpu_probe_ms_samples.empty() && !compute->process_cpu_ms_samples.empty()) {
    const double probe = *std::min_element(compute->cpu_probe_ms_samples.begin(), compute->cpu_probe_ms_samples.end());
    const double cpu = *std::min_element(compute->process_cpu_ms_samples.begin(), compute->process_cpu_ms_samples.end());
    if (probe > 0 && cpu > 0) {
      r.compute_probe_min = cpu / probe;
      r.compute_n = static_cast<int>(compute->process_cpu_ms_samples.size());
    }
  }
  if (io && io->bandwidth_gbps && *io->bandwidth_gbps > 0 && io->bytes_loaded > 0) {
    const double ideal_ms = static_cast<double>(io->bytes_loaded) * 8.0 / (*io->bandwidth_gbps * 1e9) * 1e3;
    r.io_ideal_min = *std::min_element(io->ttft_ms_samples.begin(), io->ttft_ms_samples.end()) / ideal_ms;
    r.io_n = static_cast<int>(io->ttft_ms_samples.size());
  }
  if (cake && compute && io) {
    const double c = compute->ttft_ms.median, l = io->ttft_ms.median;
    if (c > 0 && l > 0) {
      const double best = std::min(c, l), parallel = 1.0 / (1.0 / c + 1.0 / l);
      std::vector<double> vb, vp;
      for (double t : cake->ttft_ms_samples) {
        vb.push_back(t / best);
        vp.push_back(t / parallel);
      }
      r.cake_best = std::move(vb);
      r.cake_parallel = std::move(vp);
    }
  }
  return r;
}

// A within-run ratio's row of `group`, before its values and test are filled in.
MetricComparison ratio_row(const std::string& group, const std::string& metric, const ComparePolicy& policy) {
  MetricComparison m;
  m.group = group;
  m.key = group;
  m.metric = metric;
  m.threshold_pct = policy.ratio_threshold_pct;
  return m;
}

std::vector<MetricComparison> lane_ratio_rows(const std::string& group, const std::map<std::string, const Point*>& base,
                                              const std::map<std::string, const Point*>& now, bool base_paired,
                                              bool now_paired, const ComparePolicy& policy) {
  const LaneRatios b = lane_ratios(base), n = lane_ratios(now);
  std::vector<MetricComparison> rows;
  const auto add = [&](const char* metric, const std::optional<std::vector<double>>& bs,
                       const std::optional<std::vector<double>>& ns, bool paired) {
    if (!bs || !ns || bs->empty() || ns->empty()) return;
    MetricComparison m = ratio_row(group, metric, policy);
    m.base_value = summarize(*bs).median;
    m.new_value = summarize(*ns).median;
    m.paired = paired;
    test_samples(m, *bs, *ns, policy.alpha);
    decide(m);
    rows.push_back(std::move(m));
  };
  add("cake/best", b.cake_best, n.cake_best, base_paired && now_paired);
  add("cake/parallel", b.cake_parallel, n.cake_parallel, base_paired && now_paired);
  // Lane speeds against the machine: noise from a shared machine is one-sided (contention only
  // slows), so the ratio of the fastest repetitions is the stable estimate; a U test on per-
  // repetition ratios was measured too weak for it (a probe and a request a second apart see
  // different contention: a 2x slowdown went unflagged 3 times in 9 on a loaded 2-core machine).
  const auto add_min = [&](const char* metric, const std::optional<double>& bv, const std::optional<double>& nv,
                           int bn, int nn) {
    if (!bv || !nv) return;
    MetricComparison m = ratio_row(group, metric, policy);
    m.base_value = *bv;
    m.new_value = *nv;
    m.paired = true;
    m.base_n = bn;
    m.new_n = nn;
    m.test = TestUsed::minimum;
    m.significant = true;  // one estimate a side: the threshold decides
    decide(m);
    rows.push_back(std::move(m));
  };
  add_min("compute/probe", b.compute_probe_min, n.compute_probe_min, b.compute_n, n.compute_n);
  add_min("io/ideal", b.io_ideal_min, n.io_ideal_min, b.io_n, n.io_n);
  return rows;
}

std::map<AxisFields, GroupModes> groups_of(const RunReport& r, bool with_conditions) {
  std::map<AxisFields, GroupModes> groups;
  for (const Point& p : r.points) groups[group_identity(p, with_conditions)].by_mode[p.mode] = &p;
  return groups;
}

}  // namespace

int CompareResult::count(Verdict v) const {
  return static_cast<int>(std::count_if(rows.begin(), rows.end(), [&](const auto& r) { return r.verdict == v; }));
}

bool CompareResult::failed() const {
  if (count(Verdict::regressed) > 0) return true;
  return policy.fail_on_missing && (!only_in_base.empty() || !only_in_new.empty());
}

CompareResult compare_reports(const RunReport& base, const RunReport& now, const ComparePolicy& policy,
                              const std::string& base_origin, const std::string& new_origin) {
  CompareResult result;
  result.policy = policy;
  result.base_origin = base_origin;
  result.new_origin = new_origin;
  if (base.schema_version != now.schema_version)
    result.notes.push_back(cat("schema_version differs: ", base_origin, " has ", base.schema_version, ", ", new_origin,
                               " has ", now.schema_version, " (both read as version ", kReportSchemaVersion, ")"));

  const auto base_gpus = gpu_names(base.environment), new_gpus = gpu_names(now.environment);
  if (base_gpus != new_gpus) {
    const std::string what = cat("GPU differs: ", base_origin, " ran on ", join_names(base_gpus), ", ", new_origin,
                                 " on ", join_names(new_gpus));
    if (!policy.allow_env_change)
      throw UsageError(cat(what, "; absolute times are not comparable (pass --allow-env-change to compare anyway, "
                                 "with --ratios-only to keep to within-run ratios)"));
    result.notes.push_back(cat(what, " (allowed by --allow-env-change)"));
  }

  const bool with_conditions = !policy.ignore_conditions;
  const auto base_points = index_points(base, base_origin, with_conditions);
  const auto new_points = index_points(now, new_origin, with_conditions);
  for (const Point& p : base.points)
    if (!new_points.contains(point_identity(p, with_conditions))) result.only_in_base.push_back(point_key(p));
  for (const Point& p : now.points)
    if (!base_points.contains(point_identity(p, with_conditions))) result.only_in_new.push_back(point_key(p));

  // Unmatched points that would match but for their conditions: say so, once per pair of conditions.
  if (with_conditions) {
    std::map<AxisFields, const Point*> new_without;
    for (const Point& p : now.points) new_without.emplace(point_identity(p, false), &p);
    std::vector<std::string> seen;
    for (const Point& b : base.points) {
      const auto it = new_without.find(point_identity(b, false));
      if (it == new_without.end() || it->second->conditions == b.conditions) continue;
      const std::string note = cat("not matched, conditions differ: ", base_origin, " ran ",
                                   conditions_text(b.conditions), ", ", new_origin, " ran ",
                                   conditions_text(it->second->conditions),
                                   " (pass --ignore-conditions to compare them anyway)");
      if (std::find(seen.begin(), seen.end(), note) == seen.end()) seen.push_back(note);
    }
    for (std::string& note : seen) result.notes.push_back(std::move(note));
  }

  // Rows in the order of the baseline: each group's points, then its ratios.
  const auto base_groups = groups_of(base, with_conditions), new_groups = groups_of(now, with_conditions);
  std::vector<AxisFields> group_order;
  for (const Point& p : base.points) {
    AxisFields g = group_identity(p, with_conditions);
    if (std::find(group_order.begin(), group_order.end(), g) == group_order.end()) group_order.push_back(std::move(g));
  }

  for (const AxisFields& g : group_order) {
    for (const Point& b : base.points) {
      if (group_identity(b, with_conditions) != g) continue;
      const auto it = new_points.find(point_identity(b, with_conditions));
      if (it == new_points.end()) continue;
      const Point& n = *it->second;
      const std::string note = conditions_note(b, n);
      if (loader_bound(b) || loader_bound(n)) {
        // Its TTFT measured the loader, not the bandwidth: say so once per point.
        std::string sides = loader_bound(b) && loader_bound(n) ? "both sides" : loader_bound(b) ? "base only" : "new only";
        result.notes.push_back(cat(point_key(b), ": loader-bound (", sides, "): load ",
                                   b.load_gbps ? fixed(*b.load_gbps, 1) : "-", " -> ", n.load_gbps ? fixed(*n.load_gbps, 1) : "-",
                                   " Gbps against a target of ", fixed(*b.bandwidth_gbps, 1)));
      }
      if (!policy.ratios_only) {
        if (wanted(policy, "ttft_ms") && !b.ttft_ms_samples.empty() && !n.ttft_ms_samples.empty()) {
          result.rows.push_back(ttft_row(b, n, policy));
          add_note(result.rows.back(), note);
        }
        if (wanted(policy, "load_gbps") && b.load_gbps && n.load_gbps) {
          result.rows.push_back(load_row(b, n, policy));
          add_note(result.rows.back(), note);
        }
      }
      result.rows.push_back(verified_row(b, n));
      add_note(result.rows.back(), note);
      if (b.chunks_recovered != n.chunks_recovered)
        result.notes.push_back(cat("recovered chunks changed at ", point_key(b), ": ", b.chunks_recovered, " in ",
                                   base_origin, ", ", n.chunks_recovered, " in ", new_origin,
                                   " (a recovered chunk was computed after its load failed; its TTFT is not the load "
                                   "lane's)"));
    }
    const auto ng = new_groups.find(g);
    if (ng == new_groups.end()) continue;
    const auto& bm = base_groups.at(g).by_mode;
    const auto& nm = ng->second.by_mode;
    for (MetricComparison& m : lane_ratio_rows(group_key(*bm.begin()->second), bm, nm, base.repetitions_paired,
                                               now.repetitions_paired, policy))
      if (wanted(policy, m.metric)) {
        add_note(m, conditions_note(*bm.begin()->second, *nm.begin()->second));
        result.rows.push_back(std::move(m));
      }
    for (const char* other : {"compute", "io", "oracle"}) {
      if (!wanted(policy, cat("cake/", other))) continue;
      if (!bm.contains("cake") || !bm.contains(other) || !nm.contains("cake") || !nm.contains(other)) continue;
      const auto rb = ratio_samples(*bm.at("cake"), *bm.at(other), base.repetitions_paired);
      const auto rn = ratio_samples(*nm.at("cake"), *nm.at(other), now.repetitions_paired);
      if (!rb || !rn) continue;
      MetricComparison m = ratio_row(group_key(*bm.at("cake")), cat("cake/", other), policy);
      m.base_value = rb->value;
      m.new_value = rn->value;
      m.paired = rb->paired && rn->paired;
      test_samples(m, rb->samples, rn->samples, policy.alpha);
      decide(m);
      add_note(m, conditions_note(*bm.at("cake"), *nm.at("cake")));
      result.rows.push_back(std::move(m));
    }
  }
  return result;
}

}  // namespace cake
