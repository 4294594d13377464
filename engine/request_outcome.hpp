// What one request under one mode measured: the TTFT, who produced which chunk, the timeline.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "engine/chunk_claims.hpp"
#include "kernels/compute_backend.hpp"

namespace cake {

// One chunk's life on one lane, times in ns from the request's t0.
struct ChunkEvent {
  int chunk = -1;
  int chunks = 1;                // compute: chunks in this run [chunk, chunk + chunks); load: 1
  Lane lane = Lane::none;
  bool ok = true;
  bool recovered = false;        // computed after the load lane reported it failed
  // compute: the run was abandoned at a layer boundary and taken over by the load lane;
  // load: this chunk was taken over from the compute lane.
  bool taken_over = false;
  int64_t claim_ns = 0;          // taken by the lane
  int64_t start_ns = 0;          // compute: launch; load: first read issued
  int64_t end_ns = 0;            // compute: KV written; load: resident in the KV cache
  int64_t read_end_ns = 0;       // load only: payload in staging memory
  int64_t h2d_start_ns = 0;      // load only
  uint64_t bytes = 0;            // load only: payload bytes
  int64_t decode_ns = 0;         // load only, encoded stores: the decode step, the last part of [h2d_start_ns, end_ns)
  uint64_t decoded_bytes = 0;    // load only: bytes the decode wrote into the KV cache
  std::string error;             // load only, when !ok
  // Tensor parallelism. compute: GPU ms in the run's all-reduces (rank 0; they include waiting for
  // the slowest rank). load: how long after rank 0 claimed the chunk the last rank took it (the
  // cost of agreeing on claims).
  double collective_ms = 0;
  int64_t claim_spread_ns = 0;
};

struct RequestOutcome {
  std::string mode;
  double ttft_ms = 0;
  int chunks_total = 0;
  int chunks_computed = 0;       // by the compute lane in its normal course
  int chunks_loaded = 0;         // resident from the load lane
  int chunks_recovered = 0;      // failed loads computed instead
  int chunks_taken_over = 0;     // of chunks_loaded: taken over from the compute lane mid-run
  std::vector<std::string> recovery_reasons;
  uint64_t bytes_loaded = 0;
  double load_busy_ms = 0;       // first claim to last resident, over the chunks it delivered (0: none)
  double load_gbps = 0;          // achieved: bytes_loaded over load_busy_ms (0: none)
  std::optional<int> meet_chunk; // lowest chunk the load lane produced (cake/split/oracle)
  double meet_idle_ms = 0;       // how long the lane that finished first waited for the other
  double compute_lane_ms = 0;    // t0 -> compute lane done (before recovery)
  double load_lane_ms = 0;       // t0 -> load lane done
  double suffix_start_ms = 0;
  double suffix_end_ms = 0;
  FirstToken first_token;
  std::string source_description;
  std::optional<double> cpu_probe_ms;  // CPU backend: common/cpu_probe.hpp, timed just before t0
  double process_cpu_ms = 0;           // CPU time of the whole process from t0 to t1
  std::vector<ChunkEvent> timeline;
};

}  // namespace cake
