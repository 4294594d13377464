// The token bucket (constant rate or bandwidth trace) and the throttle factory.
#include "loaders/throttle.hpp"

#include <algorithm>
#include <cmath>

#include "common/clock.hpp"
#include "common/error.hpp"
#include "common/units.hpp"

namespace cake {

int64_t Throttle::reserve(uint64_t bytes) {
  acquire(bytes);
  return now_ns();
}

BucketThrottle::BucketThrottle(std::vector<BandwidthPoint> schedule, std::string description, int64_t burst_ns)
    : description_(std::move(description)), burst_ns_(burst_ns) {
  if (schedule.empty()) throw UsageError(cat("throttle ", description_, ": no rate given"));
  if (schedule.front().t_ms != 0) throw UsageError(cat("throttle ", description_, ": the first rate must start at t = 0"));
  if (!(schedule.back().bytes_per_sec > 0))
    throw UsageError(cat("throttle ", description_, ": the last rate must be positive (a load would never finish)"));
  if (burst_ns < 0) throw UsageError(cat("throttle ", description_, ": negative burst"));
  double bytes = 0;
  for (size_t i = 0; i < schedule.size(); ++i) {
    const BandwidthPoint& p = schedule[i];
    if (!std::isfinite(p.t_ms) || !std::isfinite(p.bytes_per_sec) || p.bytes_per_sec < 0)
      throw UsageError(cat("throttle ", description_, ": point ", i, " is not a finite, non-negative rate"));
    if (i > 0 && !(p.t_ms > schedule[i - 1].t_ms))
      throw UsageError(cat("throttle ", description_, ": point ", i, " does not come after the one before"));
    if (i > 0) bytes += rate_bytes_per_ns_.back() * (p.t_ms * 1e6 - start_ns_.back());
    start_ns_.push_back(p.t_ms * 1e6);
    rate_bytes_per_ns_.push_back(p.bytes_per_sec / 1e9);
    bytes_before_.push_back(bytes);
  }
  origin_ns_ = now_ns();
}

double BucketThrottle::bytes_by(double t_ns) const {
  if (t_ns <= 0) return 0;
  // The last segment whose start is <= t.
  const auto it = std::upper_bound(start_ns_.begin(), start_ns_.end(), t_ns);
  const size_t i = static_cast<size_t>(it - start_ns_.begin()) - 1;
  return bytes_before_[i] + rate_bytes_per_ns_[i] * (t_ns - start_ns_[i]);
}

double BucketThrottle::time_for(double bytes) const {
  if (bytes <= 0) return 0;
  // The first segment that ends at or beyond `bytes` (the last one never ends).
  size_t i = 0;
  const size_t n = start_ns_.size();
  {
    // bytes_before_[i+1] is where segment i ends; find the first i with that >= bytes.
    const auto it = std::lower_bound(bytes_before_.begin() + 1, bytes_before_.end(), bytes);
    i = static_cast<size_t>(it - (bytes_before_.begin() + 1));
    if (i >= n) i = n - 1;
  }
  if (rate_bytes_per_ns_[i] <= 0) return start_ns_[i];  // only when bytes == bytes_before_[i]
  return start_ns_[i] + (bytes - bytes_before_[i]) / rate_bytes_per_ns_[i];
}

double BucketThrottle::peak_bytes_per_sec() const {
  double peak = 0;
  for (double r : rate_bytes_per_ns_) peak = std::max(peak, r * 1e9);
  return peak;
}

void BucketThrottle::start() {
  std::lock_guard lock(mutex_);
  origin_ns_ = now_ns();
  granted_bytes_ = 0;
}

int64_t BucketThrottle::reserve(uint64_t bytes) {
  std::lock_guard lock(mutex_);
  const double t_ns = static_cast<double>(now_ns() - origin_ns_);
  // An idle bucket holds at most what accrued in the last burst_ns.
  granted_bytes_ = std::max(granted_bytes_, bytes_by(t_ns - static_cast<double>(burst_ns_)));
  granted_bytes_ += static_cast<double>(bytes);
  return origin_ns_ + static_cast<int64_t>(std::ceil(time_for(granted_bytes_)));
}

void BucketThrottle::acquire(uint64_t bytes) { sleep_until_ns(reserve(bytes)); }

std::unique_ptr<Throttle> make_throttle(std::optional<double> bytes_per_sec, const std::string& trace_path) {
  if (bytes_per_sec && !trace_path.empty())
    throw UsageError(cat("give either a bandwidth (", format_gbps(bytes_per_sec), ") or a bandwidth trace (",
                         trace_path, "), not both"));
  if (!trace_path.empty()) {
    auto points = read_bandwidth_trace(trace_path);
    const size_t n = points.size();
    return std::make_unique<BucketThrottle>(std::move(points), cat("trace:", trace_path, " (", n, " points)"));
  }
  if (!bytes_per_sec) return nullptr;
  if (!(*bytes_per_sec > 0) || !std::isfinite(*bytes_per_sec))
    throw UsageError(cat("throttle rate must be positive and finite, got ", *bytes_per_sec, " bytes/s"));
  return std::make_unique<BucketThrottle>(std::vector<BandwidthPoint>{{0.0, *bytes_per_sec}}, format_gbps(bytes_per_sec));
}

}  // namespace cake
