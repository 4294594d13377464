#include "engine/bandwidth_setting.hpp"

#include <algorithm>
#include <filesystem>

#include "common/error.hpp"
#include "common/hash.hpp"
#include "common/text_file.hpp"
#include "common/units.hpp"
#include "loaders/throttle.hpp"

namespace cake {

AxisValue BandwidthSetting::identity() const {
  if (is_trace()) return AxisValue::text(trace_label);
  return bytes_per_sec ? AxisValue::real(bytes_per_sec_to_gbps(*bytes_per_sec)) : AxisValue::none();
}

std::string BandwidthSetting::text() const { return is_trace() ? trace_label : format_gbps(bytes_per_sec); }

BandwidthSetting bandwidth_trace_setting(const std::string& path) {
  const std::vector<BandwidthPoint> points = read_bandwidth_trace(path);  // validates; UsageError
  BandwidthSetting s;
  s.trace_path = path;
  // The hash is of the bytes, so an edited trace under the same name is another value.
  s.trace_label = cat("trace:", std::filesystem::path(path).filename().string(), "@",
                      hex64(fnv1a64(read_text_file(path))).substr(0, 8));
  double area = 0;
  for (size_t i = 0; i + 1 < points.size(); ++i)
    area += points[i].bytes_per_sec * (points[i + 1].t_ms - points[i].t_ms);
  const double span_ms = points.back().t_ms;
  s.trace_mean_bytes_per_sec = span_ms > 0 ? area / span_ms : points.front().bytes_per_sec;
  s.trace_min_bytes_per_sec = std::min_element(points.begin(), points.end(), [](const auto& a, const auto& b) {
                                return a.bytes_per_sec < b.bytes_per_sec;
                              })->bytes_per_sec;
  return s;
}

std::vector<BandwidthSetting> parse_bandwidth_settings(const std::string& text) {
  std::vector<BandwidthSetting> out;
  for (const std::string& item : split_list(text, "bandwidth")) {
    if (item.starts_with("trace:")) {
      const std::string path = item.substr(6);
      if (path.empty()) throw UsageError(cat("invalid bandwidth '", item, "': write trace:FILE (a 't_ms,gbps' CSV)"));
      out.push_back(bandwidth_trace_setting(path));
      continue;
    }
    for (const std::optional<double>& rate : parse_bandwidth_list(item)) out.emplace_back(rate);
  }
  return out;
}

}  // namespace cake
