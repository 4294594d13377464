// Race-free chunk claiming between the two lanes: every chunk is taken by exactly one lane.
// The compute lane takes the lowest unclaimed chunk (it must go front to back: chunk i attends
// to everything before it); the load lane takes the highest (Cake, split) or the lowest (io).
// A chunk in flight on one lane is never started by the other.
#pragma once

#include <mutex>
#include <optional>
#include <vector>

namespace cake {

enum class Lane : unsigned char { none = 0, compute = 1, load = 2 };

class ChunkClaims {
 public:
  enum class LoadOrder { back_to_front, front_to_back };

  // compute_limit: the compute lane may claim chunks [0, compute_limit) on its own;
  // load_floor: the load lane may claim chunks [load_floor, n).
  ChunkClaims(int chunks, int compute_limit, int load_floor, LoadOrder load_order);

  std::optional<int> claim_for_compute();
  std::optional<int> claim_for_load();

  // A run of chunks for one compute call: up to `max_count` contiguous unclaimed chunks from the
  // lowest one (it stops at a chunk the load lane holds and at compute_limit).
  struct Run {
    int first = 0;
    int count = 0;
    bool operator==(const Run&) const = default;
  };
  std::optional<Run> claim_run_for_compute(int max_count);
  // The compute lane's run is done: true while it still owns the run, false when the load lane
  // took it over meanwhile (then the load lane's copy is the one that counts).
  bool finish_compute(Run run);
  // The load lane takes over a run the compute lane holds but has not finished (it abandons the run
  // at its next check), and the compute lane stands down: it claims nothing more, the load lane
  // takes everything left, now front to back. False when the compute lane finished the run or does
  // not hold it.
  bool take_over_from_compute(Run run);
  bool compute_stood_down() const;
  // Chunks neither lane holds.
  int unclaimed() const;

  // The chunk claim_for_load() would return now, without claiming it.
  std::optional<int> peek_for_load() const;
  // The first chunk claim_run_for_compute() would return now, without claiming it.
  std::optional<int> peek_for_compute() const;

  int chunks() const { return static_cast<int>(owner_.size()); }
  Lane owner(int chunk) const;

 private:
  bool load_backward_locked() const;

  mutable std::mutex mutex_;
  std::vector<Lane> owner_;
  std::vector<bool> compute_done_;  // per chunk: the compute lane finished it (no take-over after)
  bool compute_stood_down_ = false;
  int compute_limit_;
  int load_floor_;
  LoadOrder load_order_;
  int front_ = 0;      // lowest possibly-unclaimed chunk
  int back_;           // highest possibly-unclaimed chunk
};

}  // namespace cake
