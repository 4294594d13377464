#include "common/cpu_probe.hpp"

#include "common/clock.hpp"

namespace cake {

// One chain of dependent multiply-adds: every step waits for the last, so the time is the core's
// latency per step times the steps, whatever the code's or the data's alignment. (A small fp32
// matrix product, the first probe, took 14.8 ms or 24.5 ms for the same source depending on where
// the build placed its loop and the heap placed its matrices.)
double cpu_probe_ms() {
  volatile double seed = 1.0;  // not a constant the compiler could fold
  double x = seed;
  const int64_t t0 = thread_cpu_ns();
  for (int64_t i = 0; i < kCpuProbeSteps; ++i) x = x * 0.9999999 + 1e-7;
  const int64_t t1 = thread_cpu_ns();
  volatile double sink = x;
  (void)sink;
  return ns_to_ms(t1 - t0);
}

}  // namespace cake
