// A point whose load lane missed its target is loader-bound: every output says so.
#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>
#include <string>
#include <vector>

#include "results/compare.hpp"
#include "results/report_json.hpp"
#include "results/writers.hpp"
#include "tests/results/sample_report.hpp"

namespace cake {
namespace {

// The sample report with the io point at the highest finite bandwidth reaching only `share` of it.
RunReport with_slow_io(double share, double& target_gbps) {
  RunReport r = testing::make_sample_report();
  Point* slow = nullptr;
  for (Point& p : r.points)
    if (p.mode == "io" && p.bandwidth_gbps && (!slow || *p.bandwidth_gbps > *slow->bandwidth_gbps)) slow = &p;
  EXPECT_NE(slow, nullptr);
  target_gbps = *slow->bandwidth_gbps;
  slow->load_gbps = target_gbps * share;
  return r;
}

TEST(LoaderBound, UnderNinetySevenPercentOfTheTarget) {
  Point p;
  p.bandwidth_gbps = 100;
  EXPECT_FALSE(loader_bound(p));  // nothing loaded: nothing to judge
  p.load_gbps = 97.5;
  EXPECT_FALSE(loader_bound(p));
  p.load_gbps = 96.5;
  EXPECT_TRUE(loader_bound(p));
  p.bandwidth_gbps.reset();  // unlimited: there is no target to miss
  EXPECT_FALSE(loader_bound(p));
}

TEST(LoaderBound, EveryOutputMarksIt) {
  double target = 0;
  const RunReport healthy = with_slow_io(0.99, target);
  const RunReport bound = with_slow_io(0.5, target);

  // Table and markdown: a marker and the legend line, only when some point is bound.
  const std::string table = render_table(bound);
  EXPECT_NE(table.find("^"), std::string::npos);
  EXPECT_NE(table.find("loader-bound"), std::string::npos);
  EXPECT_EQ(render_table(healthy).find("loader-bound"), std::string::npos);
  EXPECT_NE(render_markdown(bound).find("loader-bound"), std::string::npos);
  // The unlimited row shows the rate reached.
  EXPECT_NE(table.find("unlimited (reached "), std::string::npos) << table;

  // CSV: a boolean column right after load_gbps, true for that point only.
  const std::string csv = render_csv(bound);
  const auto& cols = csv_columns();
  const auto at = std::find(cols.begin(), cols.end(), "load_gbps");
  ASSERT_NE(at, cols.end());
  ASSERT_NE(at + 1, cols.end());
  EXPECT_EQ(*(at + 1), "loader_bound");
  const auto col = static_cast<size_t>(at + 1 - cols.begin());
  int trues = 0;
  std::istringstream lines(csv);
  std::string line;
  std::getline(lines, line);  // header
  while (std::getline(lines, line)) {
    std::vector<std::string> fields;  // the sample's fields hold no commas or quotes
    std::istringstream in(line);
    for (std::string f; std::getline(in, f, ',');) fields.push_back(f);
    ASSERT_GT(fields.size(), col);
    trues += fields[col] == "true" ? 1 : 0;
  }
  EXPECT_EQ(trues, 1);

  // JSON: the boolean beside load_gbps.
  const auto j = report_to_json(bound);
  int bound_points = 0;
  for (const auto& p : j["points"]) {
    ASSERT_TRUE(p.contains("loader_bound"));
    bound_points += p["loader_bound"].get<bool>() ? 1 : 0;
  }
  EXPECT_EQ(bound_points, 1);

  // Figures: the bound point is ringed and the legend explains the ring.
  bool ringed = false;
  for (const Figure& f : render_bandwidth_figures(bound)) ringed |= f.svg.find("ringed: loader-bound") != std::string::npos;
  EXPECT_TRUE(ringed);
  for (const Figure& f : render_bandwidth_figures(healthy)) EXPECT_EQ(f.svg.find("loader-bound"), std::string::npos);

  // compare: a note names the point.
  const CompareResult c = compare_reports(healthy, bound, {});
  bool noted = false;
  for (const std::string& n : c.notes) noted |= n.find("loader-bound (new only)") != std::string::npos;
  EXPECT_TRUE(noted);
  EXPECT_NE(render_compare_table(c).find("loader-bound"), std::string::npos);
}

}  // namespace
}  // namespace cake
