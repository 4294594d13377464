// One token bucket shared by every in-flight read of a load: a constant rate, or a rate that
// follows a bandwidth trace (CSV "t_ms,gbps") to model a network that changes mid-request.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace cake {

struct BandwidthPoint {
  double t_ms = 0;            // from the start of the load
  double bytes_per_sec = 0;
};

class Throttle {
 public:
  virtual ~Throttle() = default;
  // Blocks the caller until `bytes` may be sent. Thread-safe.
  virtual void acquire(uint64_t bytes) = 0;
  // Books `bytes` without blocking and returns the now_ns() time from which they may be sent,
  // so a caller with other work (reaping completions) can wait on its own terms. Bookings are
  // served in call order. The default blocks in acquire() and returns "now". Thread-safe.
  virtual int64_t reserve(uint64_t bytes);
  // Restarts the clock (t = 0 of a trace) and empties the bucket; called at the start of a load.
  virtual void start() = 0;
  virtual std::string describe() const = 0;  // "8 Gbps", "trace:net.csv"
  // The highest rate it ever grants, bytes/s (0: unknown); callers size their pieces by it.
  virtual double peak_bytes_per_sec() const { return 0; }
};

// The token bucket behind both throttles. Tokens accrue at the schedule's rate (piecewise
// constant, the first point at t = 0, each rate holding until the next point) and are spent
// before the bytes go: a request waits until the bucket has paid for it, so over any load the
// achieved rate is the target, with no initial burst (start() empties the bucket). While idle,
// at most `burst_ns` worth of bandwidth is banked, which absorbs wake-up delays of the callers:
// on a busy host a sleeping thread wakes up to several ms late, and a caller that books only
// when awake would otherwise lose that time for good.
class BucketThrottle : public Throttle {
 public:
  static constexpr int64_t kDefaultBurstNs = 10'000'000;
  BucketThrottle(std::vector<BandwidthPoint> schedule, std::string description, int64_t burst_ns = kDefaultBurstNs);
  void acquire(uint64_t bytes) override;
  int64_t reserve(uint64_t bytes) override;
  void start() override;
  std::string describe() const override { return description_; }
  double peak_bytes_per_sec() const override;

 private:
  double bytes_by(double t_ns) const;       // bytes the schedule allows in [0, t_ns)
  double time_for(double bytes) const;      // the earliest t_ns with bytes_by(t_ns) >= bytes

  std::vector<double> start_ns_;            // per schedule segment
  std::vector<double> rate_bytes_per_ns_;
  std::vector<double> bytes_before_;        // bytes_by(start_ns_[i])
  std::string description_;
  int64_t burst_ns_;
  mutable std::mutex mutex_;
  int64_t origin_ns_ = 0;                   // now_ns() of start()
  double granted_bytes_ = 0;                // booked since start()
};

// Reads a bandwidth trace: lines "t_ms,gbps"; an optional header line "t_ms,gbps"; blank lines
// and '#' comments skipped; t_ms strictly increasing from 0; gbps >= 0 and the last one > 0.
// Throws UsageError naming the file and line.
std::vector<BandwidthPoint> read_bandwidth_trace(const std::string& path);

// nullptr when unlimited and no trace; a constant bucket for a rate; a trace bucket for a path.
// Giving both is a UsageError.
std::unique_ptr<Throttle> make_throttle(std::optional<double> bytes_per_sec, const std::string& trace_path);

// Sleeps until now_ns() >= deadline_ns: the kernel timer to just short of it, then a short
// yield-spin, so high rates are not held back by timer slack.
void sleep_until_ns(int64_t deadline_ns);

}  // namespace cake
