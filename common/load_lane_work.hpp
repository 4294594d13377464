// The host cores the two lanes of a request share. On a GPU the compute lane needs no host core;
// on the CPU backend both lanes want every core. Run side by side on the 2-core machine, the
// compute lane's threads took cores from the load lane's readers, so Cake lost 4-7% to io-only at
// unlimited bandwidth: the load lane slowed, and the compute lane's work on the first chunk was
// thrown away at the take-over anyway (results/cpu-default-run/round3.md; with the compute lane on
// one core Cake matched io-only).
//
// So the load lane's threads say while they work on a core (reading, copying, checksumming), and
// not while they wait (for the throttle's time, for a job, for the disk): a LoadLaneWork lives
// across each stretch of work. Before each parallel step, the CPU backend's pool leaves a core to
// every thread working now (keeping at least its calling thread). A throttled load lane mostly
// waits, so at low bandwidth the compute lane keeps every core, and no split is tuned.
#pragma once

namespace cake {

// Marks the calling thread as doing load-lane work on a core while it lives.
class LoadLaneWork {
 public:
  LoadLaneWork() noexcept;
  ~LoadLaneWork();
  LoadLaneWork(const LoadLaneWork&) = delete;
  LoadLaneWork& operator=(const LoadLaneWork&) = delete;
};

// Load-lane threads of this process that are working on a core now.
int load_lane_threads_working() noexcept;

}  // namespace cake
