// One monotonic clock for every timestamp cake-bench records.
#pragma once

#include <chrono>
#include <cstdint>

namespace cake {

using SteadyClock = std::chrono::steady_clock;

// Nanoseconds on the steady clock; only differences are meaningful.
inline int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(SteadyClock::now().time_since_epoch()).count();
}

inline double ns_to_ms(int64_t ns) { return static_cast<double>(ns) / 1e6; }

// CPU time consumed so far by this process (all threads) and by the calling thread, in ns. Unlike
// wall time they do not grow while another tenant of a shared machine holds the core.
int64_t process_cpu_ns();
int64_t thread_cpu_ns();
inline double ns_to_s(int64_t ns) { return static_cast<double>(ns) / 1e9; }

// Measures from construction (or restart) to now.
class Stopwatch {
 public:
  Stopwatch() : start_ns_(now_ns()) {}
  void restart() { start_ns_ = now_ns(); }
  int64_t start_ns() const { return start_ns_; }
  int64_t elapsed_ns() const { return now_ns() - start_ns_; }
  double elapsed_ms() const { return ns_to_ms(elapsed_ns()); }

 private:
  int64_t start_ns_;
};

}  // namespace cake
