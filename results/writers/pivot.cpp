#include "results/writers/pivot.hpp"

#include <algorithm>

#include "common/error.hpp"
#include "results/format.hpp"

namespace cake::detail {
namespace {

std::string section_key(const Point& p) {
  return cat(p.model, '\x1f', p.backend, '\x1f', p.context_tokens, '\x1f', p.suffix_tokens, '\x1f', p.chunk_tokens,
             '\x1f', p.source, '\x1f', p.codec);
}

std::string section_title(const Point& p) {
  return cat(p.model, " | backend ", p.backend, " | context ", p.context_tokens, " tokens | suffix ", p.suffix_tokens,
             " tokens | chunk ", p.chunk_tokens, " tokens | source ", p.source, " | codec ", p.codec);
}

bool bandwidth_less(const std::optional<double>& a, const std::optional<double>& b) {
  if (!a || !b) return a.has_value() && !b.has_value();  // unlimited sorts last
  return *a < *b;
}

}  // namespace

std::string cell_text(const PivotCell& cell) {
  if (!cell.median_ms) return "-";
  return cat(fixed(*cell.median_ms, 1), cell.noisy ? "*" : "", cell.unverified ? "!" : "", cell.loader_bound ? "^" : "");
}

std::string row_label(const PivotRow& row) {
  if (row.bandwidth_gbps || !row.reached_gbps) return bandwidth_label(row.bandwidth_gbps);
  return cat(bandwidth_label(row.bandwidth_gbps), " (reached ", fixed(*row.reached_gbps, 1), ")");
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
    std::vector<std::optional<double>> bandwidths;
    for (const Point* p : points) {
      if (std::find(s.modes.begin(), s.modes.end(), p->mode) == s.modes.end()) s.modes.push_back(p->mode);
      if (std::find(bandwidths.begin(), bandwidths.end(), p->bandwidth_gbps) == bandwidths.end())
        bandwidths.push_back(p->bandwidth_gbps);
    }
    std::sort(s.modes.begin(), s.modes.end(), [](const std::string& a, const std::string& b) { return mode_less(a, b); });
    std::sort(bandwidths.begin(), bandwidths.end(), bandwidth_less);
    for (const auto& bw : bandwidths) {
      PivotRow row;
      row.bandwidth_gbps = bw;
      row.cells.resize(s.modes.size());
      for (const Point* p : points) {
        if (p->bandwidth_gbps != bw) continue;
        const size_t col = static_cast<size_t>(std::find(s.modes.begin(), s.modes.end(), p->mode) - s.modes.begin());
        PivotCell& cell = row.cells[col];
        if (!p->ttft_ms_samples.empty()) cell.median_ms = p->ttft_ms.median;
        cell.noisy = p->noisy;
        cell.unverified = !p->verified;
        cell.loader_bound = loader_bound(*p);
        if (!bw && p->load_gbps) row.reached_gbps = std::max(row.reached_gbps.value_or(0), *p->load_gbps);
        if (!row.derived) row.derived = find_group(groups, group_key(*p));
      }
      if (row.derived) {
        s.show_vs_compute |= row.derived->cake_vs_compute_reduction_pct.has_value();
        s.show_vs_io |= row.derived->cake_vs_io_reduction_pct.has_value();
        s.show_vs_oracle |= row.derived->cake_over_oracle.has_value();
      }
      s.rows.push_back(std::move(row));
    }
    sections.push_back(std::move(s));
  }
  return sections;
}

}  // namespace cake::detail
