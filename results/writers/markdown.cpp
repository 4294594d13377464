// results.md: the same pivot as the terminal table, as GitHub-flavoured markdown tables.
#include <sstream>

#include "common/error.hpp"
#include "results/format.hpp"
#include "results/writers.hpp"
#include "results/writers/pivot.hpp"

namespace cake {
namespace {

// A trailing '*' (noisy) must not start emphasis.
std::string md_value(const std::string& text) {
  std::string out;
  for (char c : markdown_cell(text)) {
    if (c == '*') out += '\\';
    out += c;
  }
  return out;
}

}  // namespace

std::string render_markdown(const RunReport& report) {
  std::ostringstream out;
  out << "# cake-bench results\n\n";
  out << "- created (UTC): " << markdown_cell(report.created_utc) << "\n";
  out << "- command line: `" << report.command_line << "`\n";
  out << "- seed: " << report.seed << "\n";
  const auto groups = derive_groups(report);
  const auto sections = detail::build_pivot(report, groups);
  for (const auto& s : sections) {
    out << "\n## " << markdown_cell(s.title) << "\n\n";
    out << "| bandwidth (Gbps) |";
    for (const auto& mode : s.modes) out << " " << markdown_cell(mode) << " TTFT (ms) |";
    if (s.show_vs_compute) out << " cake vs compute (%) |";
    if (s.show_vs_io) out << " cake vs io (%) |";
    if (s.show_vs_oracle) out << " cake/oracle (x) |";
    if (s.show_vs_best) out << " cake/best (x) |";
    out << "\n|---:|";
    const size_t extra = s.modes.size() + (s.show_vs_compute ? 1 : 0) + (s.show_vs_io ? 1 : 0) + (s.show_vs_oracle ? 1 : 0) + (s.show_vs_best ? 1 : 0);
    for (size_t i = 0; i < extra; ++i) out << "---:|";
    out << "\n";
    for (const auto& r : s.rows) {
      out << "| " << markdown_cell(detail::row_label(r)) << " |";
      for (const auto& c : r.cells) out << " " << md_value(detail::cell_text(c)) << " |";
      const DerivedGroup* d = r.derived;
      if (s.show_vs_compute) out << " " << (d ? fixed_or(d->cake_vs_compute_reduction_pct, 1) : "-") << " |";
      if (s.show_vs_io) out << " " << (d ? fixed_or(d->cake_vs_io_reduction_pct, 1) : "-") << " |";
      if (s.show_vs_oracle) out << " " << (d ? fixed_or(d->cake_over_oracle, 3) : "-") << " |";
      if (s.show_vs_best) out << " " << (d ? fixed_or(d->cake_over_best, 3) : "-") << " |";
      out << "\n";
    }
  }
  if (sections.empty()) out << "\nNo points in this report.\n";
  else out << "\n" << markdown_cell(detail::kPivotLegend) << "\n";
  if (const int recovered = detail::points_with_recovered_chunks(report); recovered > 0)
    out << "\n" << markdown_cell(detail::kRecoveredLegend) << " " << recovered << " of " << report.points.size()
        << " point(s) had chunks recovered by compute.\n";
  if (detail::any_loader_bound(sections)) out << "\n" << markdown_cell(detail::kLoaderBoundLegend) << "\n";
  if (detail::any_lossy(sections)) out << "\n" << markdown_cell(detail::kLossyLegend) << "\n";
  if (const auto quality = detail::codec_quality_cells(report); !quality.empty()) {
    out << "\n## " << markdown_cell(detail::kCodecQualityTitle) << "\n\n";
    for (size_t r = 0; r < quality.size(); ++r) {
      out << "|";
      for (const auto& cell : quality[r]) out << " " << markdown_cell(cell) << " |";
      out << "\n";
      if (r == 0) {
        out << "|";
        for (size_t c = 0; c < quality[r].size(); ++c) out << (c < 2 ? "---|" : "---:|");
        out << "\n";
      }
    }
  }
  return out.str();
}

}  // namespace cake
