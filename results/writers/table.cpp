// The terminal table: plain ASCII, right-aligned numbers, units in the headers.
#include <algorithm>
#include <sstream>

#include "common/error.hpp"
#include "results/format.hpp"
#include "results/writers.hpp"
#include "results/writers/pivot.hpp"

namespace cake {
namespace {

using detail::PivotSection;

std::vector<std::vector<std::string>> section_cells(const PivotSection& s) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> header = {"bandwidth (Gbps)"};
  for (const auto& mode : s.modes) header.push_back(cat(mode, " TTFT (ms)"));
  if (s.show_vs_compute) header.push_back("cake vs compute (%)");
  if (s.show_vs_io) header.push_back("cake vs io (%)");
  if (s.show_vs_oracle) header.push_back("cake/oracle (x)");
  if (s.show_vs_best) header.push_back("cake/best (x)");
  rows.push_back(std::move(header));
  for (const auto& r : s.rows) {
    std::vector<std::string> line = {detail::row_label(r)};
    for (const auto& c : r.cells) line.push_back(detail::cell_text(c));
    const DerivedGroup* d = r.derived;
    if (s.show_vs_compute) line.push_back(d ? fixed_or(d->cake_vs_compute_reduction_pct, 1) : "-");
    if (s.show_vs_io) line.push_back(d ? fixed_or(d->cake_vs_io_reduction_pct, 1) : "-");
    if (s.show_vs_oracle) line.push_back(d ? fixed_or(d->cake_over_oracle, 3) : "-");
    if (s.show_vs_best) line.push_back(d ? fixed_or(d->cake_over_best, 3) : "-");
    rows.push_back(std::move(line));
  }
  return rows;
}

void print_grid(std::ostringstream& out, const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width(rows.front().size(), 0);
  for (const auto& row : rows)
    for (size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
  for (size_t r = 0; r < rows.size(); ++r) {
    for (size_t c = 0; c < rows[r].size(); ++c) {
      if (c > 0) out << " | ";
      out << std::string(width[c] - rows[r][c].size(), ' ') << rows[r][c];
    }
    out << "\n";
    if (r == 0) {
      for (size_t c = 0; c < width.size(); ++c) out << (c > 0 ? "-+-" : "") << std::string(width[c], '-');
      out << "\n";
    }
  }
}

}  // namespace

std::string render_table(const RunReport& report) {
  std::ostringstream out;
  const auto groups = derive_groups(report);
  const auto sections = detail::build_pivot(report, groups);
  if (sections.empty()) return "no points in this report\n";
  for (size_t i = 0; i < sections.size(); ++i) {
    if (i > 0) out << "\n";
    out << sections[i].title << "\n";
    print_grid(out, section_cells(sections[i]));
  }
  out << "\n" << detail::kPivotLegend << "\n";
  if (const int recovered = detail::points_with_recovered_chunks(report); recovered > 0)
    out << detail::kRecoveredLegend << "\n" << recovered << " of " << report.points.size()
        << " point(s) had chunks recovered by compute.\n";
  if (detail::any_loader_bound(sections)) out << detail::kLoaderBoundLegend << "\n";
  if (detail::any_lossy(sections)) out << detail::kLossyLegend << "\n";
  if (const auto quality = detail::codec_quality_cells(report); !quality.empty()) {
    out << "\n" << detail::kCodecQualityTitle << "\n";
    print_grid(out, quality);
  }
  return out.str();
}

}  // namespace cake
