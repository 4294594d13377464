#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include <unistd.h>

#include "results/format.hpp"
#include "results/writers.hpp"
#include "tests/results/sample_report.hpp"

namespace cake {
namespace {

// RFC 4180 reader: enough to prove the CSV parses the way a spreadsheet would read it.
std::vector<std::vector<std::string>> parse_csv(const std::string& text) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  std::string field;
  bool quoted = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
        field += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        field += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      row.push_back(field);
      field.clear();
    } else if (c == '\n') {
      row.push_back(field);
      field.clear();
      rows.push_back(row);
      row.clear();
    } else {
      field += c;
    }
  }
  EXPECT_FALSE(quoted) << "unterminated quote";
  EXPECT_TRUE(field.empty() && row.empty()) << "missing final newline";
  return rows;
}

size_t column(const std::vector<std::string>& header, const std::string& name) {
  const auto it = std::find(header.begin(), header.end(), name);
  EXPECT_NE(it, header.end()) << name;
  return static_cast<size_t>(it - header.begin());
}

TEST(Csv, OneRowPerPointWithStableColumns) {
  RunReport r = testing::make_sample_report();
  r.points[0].verify_detail = "says \"hello\", then\nbreaks";  // must survive quoting
  const auto rows = parse_csv(render_csv(r));
  ASSERT_EQ(rows.size(), r.points.size() + 1);
  EXPECT_EQ(rows[0], csv_columns());
  for (const auto& row : rows) EXPECT_EQ(row.size(), csv_columns().size());
  for (const char* name : {"ttft_ms_median", "ttft_ms_p10", "ttft_ms_p90", "bandwidth_gbps", "bytes_loaded", "load_gbps",
                           "chunks_computed", "chunks_loaded", "cake_vs_compute_reduction_pct", "cake_over_oracle"})
    column(rows[0], name);
  const auto& h = rows[0];
  for (size_t i = 0; i < r.points.size(); ++i) {
    const Point& p = r.points[i];
    const auto& row = rows[i + 1];
    EXPECT_EQ(row[column(h, "mode")], p.mode);
    EXPECT_DOUBLE_EQ(std::stod(row[column(h, "ttft_ms_median")]), p.ttft_ms.median);
    EXPECT_EQ(row[column(h, "bandwidth_gbps")], p.bandwidth_gbps ? exact_number(*p.bandwidth_gbps) : "");
    EXPECT_EQ(std::stoull(row[column(h, "bytes_loaded")]), p.bytes_loaded);
  }
  EXPECT_EQ(rows[1][column(h, "verify_detail")], r.points[0].verify_detail);
}

TEST(Table, ShowsModesBandwidthsReductionsAndUnits) {
  const RunReport r = testing::make_sample_report();
  const std::string t = render_table(r);
  for (const char* s : {"bandwidth (Gbps)", "compute TTFT (ms)", "io TTFT (ms)", "cake TTFT (ms)", "oracle TTFT (ms)",
                        "cake vs compute (%)", "cake vs io (%)", "cake/oracle (x)", "unlimited", "context 32768 tokens"})
    EXPECT_NE(t.find(s), std::string::npos) << s;
  for (char c : t) EXPECT_TRUE(c == '\n' || (c >= 32 && c < 127)) << "non-ASCII in table";
  // The 16 Gbps row carries the cake median and the derived reduction.
  const auto groups = derive_groups(r);
  for (const Point& p : r.points)
    if (p.mode == "cake" && p.bandwidth_gbps && *p.bandwidth_gbps == 16.0) {
      EXPECT_NE(t.find(fixed(p.ttft_ms.median, 1)), std::string::npos);
      EXPECT_NE(t.find(fixed(*find_group(groups, group_key(p))->cake_vs_compute_reduction_pct, 1)), std::string::npos);
    }
  EXPECT_NE(t.find('*'), std::string::npos) << "the noisy io point at 1 Gbps is marked";
}

// A bandwidth trace is its own row (after the constant rates and unlimited), labelled with its
// file, hash, mean and minimum; CSV carries the label, the mean as bandwidth_gbps and the minimum.
// Injected conditions are in the section title, so an injected run never reads as a clean one.
TEST(Table, TraceRowsAndInjectedConditionsAreLabelled) {
  testing::SampleOptions o;
  o.bandwidths_gbps = {0.05, std::nullopt};
  o.with_timeline = false;
  RunReport r = testing::make_sample_report(o);
  const size_t constant_points = r.points.size();
  for (size_t i = 0; i < constant_points; ++i) {
    if (!r.points[i].bandwidth_gbps) continue;
    Point p = r.points[i];
    p.bandwidth_trace = "trace:bt.csv@0123abcd";
    p.bandwidth_min_gbps = 0;
    r.points.push_back(p);
  }
  const std::string t = render_table(r);
  const size_t trace_row = t.find("trace:bt.csv@0123abcd (mean 0.05, min 0)");
  ASSERT_NE(trace_row, std::string::npos) << t;
  EXPECT_LT(t.find("unlimited"), trace_row) << "traces sort after unlimited";
  EXPECT_NE(render_markdown(r).find("| trace:bt.csv@0123abcd (mean 0.05, min 0) |"), std::string::npos);

  const auto rows = parse_csv(render_csv(r));
  const auto& h = rows[0];
  const auto& last = rows.back();
  EXPECT_EQ(last[column(h, "bandwidth_trace")], "trace:bt.csv@0123abcd");
  EXPECT_EQ(last[column(h, "bandwidth_gbps")], "0.05");
  EXPECT_EQ(last[column(h, "bandwidth_min_gbps")], "0");
  EXPECT_EQ(rows[1][column(h, "bandwidth_trace")], "");

  for (Point& p : r.points) p.conditions = {{"inject_fault", AxisValue::text("3,7")}};
  EXPECT_NE(render_table(r).find("INJECTED: inject_fault=3,7"), std::string::npos);
  EXPECT_EQ(parse_csv(render_csv(r))[1][column(h, "conditions")], "inject_fault=3,7");
}

TEST(Markdown, OneTablePerSection) {
  testing::SampleOptions o;
  o.contexts = {8192, 32768};
  const std::string md = render_markdown(testing::make_sample_report(o));
  size_t sections = 0;
  for (size_t at = md.find("\n## "); at != std::string::npos; at = md.find("\n## ", at + 1)) ++sections;
  EXPECT_EQ(sections, 2u);
  EXPECT_NE(md.find("| bandwidth (Gbps) |"), std::string::npos);
  EXPECT_NE(md.find("|---:|"), std::string::npos);
  EXPECT_NE(md.find("31"), std::string::npos);
}

TEST(WriteAll, WritesEveryFileAndReturnsPaths) {
  const auto dir = std::filesystem::temp_directory_path() / ("cake_results_write_all_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  testing::SampleOptions o;
  o.contexts = {8192, 32768};
  const RunReport r = testing::make_sample_report(o);
  const auto paths = write_all(r, (dir / "nested").string());
  std::vector<std::string> names;
  for (const auto& p : paths) {
    EXPECT_TRUE(std::filesystem::is_regular_file(p)) << p;
    EXPECT_GT(std::filesystem::file_size(p), 100u) << p;
    names.push_back(std::filesystem::path(p).filename().string());
  }
  for (const char* n : {"results.json", "results.csv", "results.md", "trace-0.json", "timeline-0.svg"})
    EXPECT_NE(std::find(names.begin(), names.end(), n), names.end()) << n;
  EXPECT_EQ(std::count_if(names.begin(), names.end(), [](const std::string& n) { return n.starts_with("ttft-vs-bandwidth-"); }),
            2);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace cake
