// results.csv: one row per point, stable snake_case columns with units in their names.
// Empty cell = absent (bandwidth_gbps empty = unlimited); lists are joined with ';'; axes and
// conditions are "name=value" items joined with ';'.
#include <sstream>

#include "common/error.hpp"
#include "results/format.hpp"
#include "results/writers.hpp"

namespace cake {
namespace {

std::string opt(const std::optional<double>& v) { return v ? exact_number(*v) : std::string(); }
std::string opt(const std::optional<int>& v) { return v ? std::to_string(*v) : std::string(); }

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) out += (i ? ";" : "") + items[i];
  return out;
}

std::string join(const AxisFields& fields) {
  std::string out;
  for (size_t i = 0; i < fields.size(); ++i) out += cat(i ? ";" : "", fields[i].axis, "=", fields[i].value.print());
  return out;
}

std::string join(const std::vector<double>& values) {
  std::string out;
  for (size_t i = 0; i < values.size(); ++i) out += (i ? ";" : "") + exact_number(values[i]);
  return out;
}

}  // namespace

const std::vector<std::string>& csv_columns() {
  static const std::vector<std::string> columns = {
      "model", "backend", "context_tokens", "suffix_tokens", "chunk_tokens", "source", "bandwidth_gbps", "bandwidth_trace",
      "bandwidth_min_gbps", "mode", "codec", "axes", "conditions", "warmup", "repeat", "ttft_ms_median", "ttft_ms_p10", "ttft_ms_p90", "ttft_ms_min", "ttft_ms_max",
      "ttft_ms_mean", "ttft_ms_stddev", "ttft_ms_count", "ttft_ms_samples", "noisy", "chunks_total",
      "chunks_computed", "chunks_loaded", "chunks_recovered", "recovery_reasons", "bytes_loaded", "load_gbps",
      "loader_bound", "meet_chunk", "meet_idle_ms", "oracle_split_chunk", "first_token", "verified", "verify_detail",
      "cake_vs_compute_reduction_pct", "cake_vs_io_reduction_pct", "cake_over_oracle"};
  return columns;
}

std::string render_csv(const RunReport& report) {
  std::ostringstream out;
  const auto& columns = csv_columns();
  for (size_t i = 0; i < columns.size(); ++i) out << (i ? "," : "") << columns[i];
  out << "\n";
  const auto groups = derive_groups(report);
  for (const Point& p : report.points) {
    const DerivedGroup* d = find_group(groups, group_key(p));
    const bool have = !p.ttft_ms_samples.empty();
    auto stat = [&](double v) { return have ? exact_number(v) : std::string(); };
    const std::vector<std::string> row = {
        p.model, p.backend, std::to_string(p.context_tokens), std::to_string(p.suffix_tokens),
        std::to_string(p.chunk_tokens), p.source, opt(p.bandwidth_gbps), p.bandwidth_trace,
        opt(p.bandwidth_min_gbps), p.mode, p.codec, join(p.axes), join(p.conditions), std::to_string(p.warmup),
        std::to_string(p.repeat), stat(p.ttft_ms.median), stat(p.ttft_ms.p10), stat(p.ttft_ms.p90),
        stat(p.ttft_ms.min), stat(p.ttft_ms.max), stat(p.ttft_ms.mean), stat(p.ttft_ms.stddev),
        std::to_string(p.ttft_ms.count), join(p.ttft_ms_samples), p.noisy ? "true" : "false",
        std::to_string(p.chunks_total), std::to_string(p.chunks_computed), std::to_string(p.chunks_loaded),
        std::to_string(p.chunks_recovered), join(p.recovery_reasons), std::to_string(p.bytes_loaded),
        opt(p.load_gbps), loader_bound(p) ? "true" : "false", opt(p.meet_chunk), opt(p.meet_idle_ms), opt(p.oracle_split_chunk),
        std::to_string(p.first_token), p.verified ? "true" : "false", p.verify_detail,
        d ? opt(d->cake_vs_compute_reduction_pct) : "", d ? opt(d->cake_vs_io_reduction_pct) : "",
        d ? opt(d->cake_over_oracle) : ""};
    if (row.size() != columns.size()) throw InternalError("results.csv: row and header disagree (a writer bug)");
    for (size_t i = 0; i < row.size(); ++i) out << (i ? "," : "") << csv_field(row[i]);
    out << "\n";
  }
  return out.str();
}

}  // namespace cake
