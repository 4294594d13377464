// One value of the bandwidth axis: unlimited, a constant rate, or a bandwidth trace (a rate that
// changes during a request). A trace is a value in its own right: its label names the file and
// its content hash, so two different traces, or a trace and a constant rate, never match.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/axis_value.hpp"

namespace cake {

struct BandwidthSetting {
  std::optional<double> bytes_per_sec;   // constant rate; nullopt (and no trace) = unlimited
  std::string trace_path;                // non-empty: a trace file "t_ms,gbps" sets the rate
  std::string trace_label;               // "trace:bt.csv@1a2b3c4d": file name + first 8 hex of its FNV-1a hash
  double trace_mean_bytes_per_sec = 0;   // time-weighted over [0, last point's t_ms); a one-point trace: its rate
  double trace_min_bytes_per_sec = 0;    // lowest rate of any point (0 during an outage)

  BandwidthSetting() = default;
  BandwidthSetting(std::nullopt_t) {}                                           // NOLINT: unlimited
  BandwidthSetting(double rate_bytes_per_sec) : bytes_per_sec(rate_bytes_per_sec) {}  // NOLINT
  BandwidthSetting(std::optional<double> rate) : bytes_per_sec(rate) {}         // NOLINT

  bool is_trace() const { return !trace_path.empty(); }
  // The value in a point's identity: Gbit/s (real), none (unlimited), or the trace label (text).
  AxisValue identity() const;
  // For progress and notes: "8 Gbps", "unlimited", "trace:bt.csv@1a2b3c4d".
  std::string text() const;

  bool operator==(const BandwidthSetting&) const = default;
};

// Reads and summarises a trace file. Throws UsageError naming the file and line.
BandwidthSetting bandwidth_trace_setting(const std::string& path);

// The --bandwidth list: items are rates ("8gbps", "2GB/s"), "unlimited", geometric ranges
// ("1gbps..64gbps:x2") or "trace:FILE".
std::vector<BandwidthSetting> parse_bandwidth_settings(const std::string& text);

}  // namespace cake
