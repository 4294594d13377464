#include "results/writers/pivot.hpp"

#include <algorithm>

#include "common/error.hpp"
#include "results/format.hpp"

namespace cake::detail {
namespace {

std::string section_key(const Point& p) {
  return cat(p.model, '\x1f', p.backend, '\x1f', p.context_tokens, '\x1f', p.suffix_tokens, '\x1f', p.chunk_tokens,
             '\x1f', p.source, '\x1f', p.codec, '\x1f', print_fields(p.axes), '\x1f', print_fields(p.conditions));
}

std::string section_title(const Point& p) {
  return cat(p.model, " | backend ", p.backend, " | context ", p.context_tokens, " tokens | suffix ", p.suffix_tokens,
             " tokens | chunk ", p.chunk_tokens, " tokens | source ", p.source, " | codec ", p.codec,
             p.axes.empty() ? "" : cat(" | ", print_fields(p.axes)),
             p.conditions.empty() ? "" : cat(" | INJECTED: ", print_fields(p.conditions)));
}

// A row of the table: a constant rate, unlimited, or one bandwidth trace.
struct RowKey {
  std::optional<double> bandwidth_gbps;
  std::string bandwidth_trace;
  bool operator==(const RowKey&) const = default;
};

RowKey row_key(const Point& p) { return {p.bandwidth_gbps, p.bandwidth_trace}; }

bool row_less(const RowKey& a, const RowKey& b) {
  if (a.bandwidth_trace.empty() != b.bandwidth_trace.empty()) return a.bandwidth_trace.empty();  // traces last
  if (!a.bandwidth_trace.empty()) return a.bandwidth_trace < b.bandwidth_trace;
  if (!a.bandwidth_gbps || !b.bandwidth_gbps) return a.bandwidth_gbps.has_value() && !b.bandwidth_gbps.has_value();
  return *a.bandwidth_gbps < *b.bandwidth_gbps;  // unlimited after every rate
}

}  // namespace

std::string cell_text(const PivotCell& cell) {
  if (!cell.median_ms) return "-";
  return cat(fixed(*cell.median_ms, 1), cell.noisy ? "*" : "", cell.unverified ? "!" : "", cell.lossy ? "~" : "",
             cell.loader_bound ? "^" : "",
             cell.recovered_chunks > 0 ? cat(" R", cell.recovered_chunks) : std::string());
}

bool any_lossy(const std::vector<PivotSection>& sections) {
  for (const auto& s : sections)
    for (const auto& r : s.rows)
      for (const auto& c : r.cells)
        if (c.lossy && c.median_ms) return true;
  return false;
}

std::vector<std::vector<std::string>> codec_quality_cells(const RunReport& report) {
  std::vector<std::vector<std::string>> rows;
  if (report.codec_quality.empty()) return rows;
  rows.push_back({"codec", "store codec", "chunk", "bytes/token", "ratio (x)", "K rel err", "V rel err", "logit rel err",
                  "logit rel err max", "first token agrees", "decode (GB/s)"});
  const auto sci = [](double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2e", v);
    return std::string(buf);
  };
  for (const CodecQuality& q : report.codec_quality)
    rows.push_back({q.codec, q.store_codec, std::to_string(q.chunk_tokens), fixed(q.bytes_per_token, 1),
                    fixed(q.compression_ratio, 2), sci(q.k_rel_error), sci(q.v_rel_error), sci(q.logits_rel_error),
                    sci(q.logits_rel_error_max),
                    cat(q.first_token_agreements, "/", q.requests,
                        q.chunks_not_loaded > 0 ? cat(" (", q.chunks_not_loaded, " chunks not loaded)") : std::string()),
                    fixed_or(q.decode_gbytes_per_s, 1)});
  return rows;
}

int points_with_recovered_chunks(const RunReport& report) {
  return static_cast<int>(
      std::count_if(report.points.begin(), report.points.end(), [](const Point& p) { return p.chunks_recovered > 0; }));
}

std::string row_label(const PivotRow& row) {
  if (row.bandwidth_gbps || !row.reached_gbps || !row.bandwidth_trace.empty()) return row.label;
  return cat(row.label, " (reached ", fixed(*row.reached_gbps, 1), ")");
}

bool any_loader_bound(const std::vector<PivotSection>& sections) {
  for (const auto& s : sections)
    for (const auto& r : s.rows)
      for (const auto& c : r.cells)
        if (c.loader_bound) return true;
  return false;
}

std::vector<PivotSection> build_pivot(const RunReport& report, const std::vector<DerivedGroup>& groups) {
  std::vector<std::string> keys;
  std::vector<std::vector<const Point*>> members;
  for (const Point& p : report.points) {
    const std::string key = section_key(p);
    auto it = std::find(keys.begin(), keys.end(), key);
    if (it == keys.end()) {
      keys.push_back(key);
      members.emplace_back();
      it = keys.end() - 1;
    }
    members[static_cast<size_t>(it - keys.begin())].push_back(&p);
  }

  std::vector<PivotSection> sections;
  for (const auto& points : members) {
    PivotSection s;
    s.title = section_title(*points.front());
    std::vector<RowKey> bandwidths;
    for (const Point* p : points) {
      if (std::find(s.modes.begin(), s.modes.end(), p->mode) == s.modes.end()) s.modes.push_back(p->mode);
      if (std::find(bandwidths.begin(), bandwidths.end(), row_key(*p)) == bandwidths.end())
        bandwidths.push_back(row_key(*p));
    }
    std::sort(s.modes.begin(), s.modes.end(), [](const std::string& a, const std::string& b) { return mode_less(a, b); });
    std::sort(bandwidths.begin(), bandwidths.end(), row_less);
    for (const auto& bw : bandwidths) {
      PivotRow row;
      row.bandwidth_gbps = bw.bandwidth_gbps;
      row.bandwidth_trace = bw.bandwidth_trace;
      row.cells.resize(s.modes.size());
      for (const Point* p : points) {
        if (row_key(*p) != bw) continue;
        if (row.label.empty()) row.label = bandwidth_label(*p);
        const size_t col = static_cast<size_t>(std::find(s.modes.begin(), s.modes.end(), p->mode) - s.modes.begin());
        PivotCell& cell = row.cells[col];
        if (!p->ttft_ms_samples.empty()) cell.median_ms = p->ttft_ms.median;
        cell.noisy = p->noisy;
        cell.unverified = !p->verified && !p->lossy;
        cell.lossy = p->lossy;
        cell.recovered_chunks = p->chunks_recovered;
        cell.loader_bound = loader_bound(*p);
        if (!bw.bandwidth_gbps && bw.bandwidth_trace.empty() && p->load_gbps) row.reached_gbps = std::max(row.reached_gbps.value_or(0), *p->load_gbps);
        if (!row.derived) row.derived = find_group(groups, group_key(*p));
      }
      if (row.derived) {
        s.show_vs_compute |= row.derived->cake_vs_compute_reduction_pct.has_value();
        s.show_vs_io |= row.derived->cake_vs_io_reduction_pct.has_value();
        s.show_vs_oracle |= row.derived->cake_over_oracle.has_value();
        s.show_vs_best |= row.derived->cake_over_best.has_value();
      }
      s.rows.push_back(std::move(row));
    }
    sections.push_back(std::move(s));
  }
  return sections;
}

}  // namespace cake::detail
