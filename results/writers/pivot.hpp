// The table layout shared by the terminal and markdown writers: one section per configuration
// without bandwidth, one row per bandwidth, one column per mode, then the derived ratios.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "results/report.hpp"

namespace cake::detail {

struct PivotCell {
  std::optional<double> median_ms;  // absent: mode not run at this bandwidth, or no samples
  bool noisy = false;
  bool unverified = false;
  bool lossy = false;        // a lossy codec's point: not verified by design, its quality is reported
  int recovered_chunks = 0;  // chunks whose load failed in the timed request and were computed
  bool loader_bound = false;
};

struct PivotRow {
  std::optional<double> bandwidth_gbps;
  std::string bandwidth_trace;             // a trace row: its label (bandwidth_gbps is its mean)
  std::string label;                       // bandwidth_label(point): "8", "unlimited", "trace:... (mean, min)"
  std::vector<PivotCell> cells;            // one per PivotSection::modes
  const DerivedGroup* derived = nullptr;   // the group of this row
  std::optional<double> reached_gbps;      // unlimited rows: the highest load rate a point reached
};


struct PivotSection {
  std::string title;
  std::vector<std::string> modes;          // in mode_less order
  std::vector<PivotRow> rows;              // bandwidth ascending, unlimited then traces last
  bool show_vs_compute = false, show_vs_io = false, show_vs_oracle = false, show_vs_best = false;
};

// The row's first cell: "64", or "unlimited (reached 412.3)".
std::string row_label(const PivotRow& row);
// Whether any cell of the sections is loader-bound (the table then prints kLoaderBoundLegend).
bool any_loader_bound(const std::vector<PivotSection>& sections);

std::vector<PivotSection> build_pivot(const RunReport& report, const std::vector<DerivedGroup>& groups);

// "1234.5" plus "*" when noisy, "!" when unverified, "^" when loader-bound and " R3" when 3 chunks
// were recovered; "-" when absent.
std::string cell_text(const PivotCell& cell);

inline constexpr const char* kPivotLegend =
    "TTFT is the median over repetitions in ms. * noisy: (p90 - p10) / median > 0.10. ! not verified "
    "against compute-only. Reduction = 100 * (1 - cake / other) on medians; cake/oracle > 1 means cake "
    "was slower than the best split; cake/best = cake / min(compute, io), > 1 means cake lost to the better lane.";
// Printed under the legend only when some cell has recovered chunks.
inline constexpr const char* kRecoveredLegend =
    "R<n>: n chunks failed to load during the timed request (bad checksum, read error, ...) and were computed "
    "instead; the TTFT includes that compute, so it is not the load lane's number (see recovery_reasons).";

// Printed when some cell is a lossy codec's point.
inline constexpr const char* kLossyLegend =
    "~ lossy codec (int8, int4, cachegen): not bit-exact with compute-only, so not verified; its first-token agreement and "
    "logit, K and V errors are in the KV codec quality table and each point's verify_detail.";
bool any_lossy(const std::vector<PivotSection>& sections);

// The KV codec quality table (report.codec_quality) as rows of cells, header first; empty when
// the report has none.
std::vector<std::vector<std::string>> codec_quality_cells(const RunReport& report);
inline constexpr const char* kCodecQualityTitle =
    "KV codec quality (per codec, over the workload's requests; one untimed run per request loaded every chunk)";

// Points of `report` with at least one recovered chunk.
int points_with_recovered_chunks(const RunReport& report);

inline constexpr const char* kLoaderBoundLegend =
    "^ loader-bound: the load lane reached under 97% of the target bandwidth, so the point measures the "
    "loader, not that bandwidth (load_gbps and loader_bound in results.csv / results.json). An unlimited "
    "row shows the highest load rate reached, in Gbps.";

}  // namespace cake::detail
