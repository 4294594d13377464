// A fixed piece of CPU arithmetic, timed: the machine's speed of the moment.
//
// On a shared machine the CPU's speed moves by tens of percent from one minute to the next (other
// tenants, frequency), and with it every CPU compute time. A regression gate that compares a CPU
// compute lane with a baseline recorded elsewhere must divide that out. The sweep times this probe
// right before each compute-only repetition on the CPU backend (off the request's clock), and `compare` relates
// the compute-only requests' CPU time to it (compute/probe). It is deliberately none of the
// backend's code: a slower compute lane must move the ratio, a slower machine must not.
#pragma once

#include <cstdint>

namespace cake {

// Work the probe does: a chain of this many dependent fp64 multiply-adds on one thread, ~20 ms on
// the dev machine. Latency-bound, so neither code nor data alignment moves it (measured: 8.2 ms for
// 5M steps at four code offsets and varying heap state, within 1%).
inline constexpr int64_t kCpuProbeSteps = 12'000'000;

// Runs the probe on the calling thread; returns the CPU time it took in ms (the thread's CPU time,
// not wall time: on a loaded 2-core machine wall-time ratios of a 1.8 s request to a 90 ms probe
// moved 8x to 30x between runs of the same code, because the two saw different shares of a core).
double cpu_probe_ms();

}  // namespace cake
