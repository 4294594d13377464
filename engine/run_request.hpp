// One request under one mode: both lanes real and concurrent, one honest TTFT.
//
//   t0: the compute lane (this thread) prefills chunks 0, 1, 2, ... while the load lane (its own
//   thread) brings chunks n-1, n-2, ... (io: 0, 1, 2, ...) through the LoadPipeline; ChunkClaims
//   guarantees each chunk is produced by exactly one lane. When neither lane can claim more, the
//   compute lane waits for the load lane, computes any chunk whose load failed (ascending, so
//   each still attends to everything before it), runs the suffix and reads the first token.
//   t1: the token id is on the host.  TTFT = t1 - t0.
//
// Before t0 (untimed): model resident, KV cache allocated, source constructed but the store not
// opened, staging buffers allocated, the load thread started and parked.
#pragma once

#include <string>
#include <vector>

#include "engine/mode.hpp"
#include "engine/request_outcome.hpp"
#include "engine/sharded_load.hpp"
#include "kernels/compute_backend.hpp"
#include "loaders/load_pipeline.hpp"
#include "loaders/store_format.hpp"
#include "loaders/throttle.hpp"
#include "workloads/request.hpp"

namespace cake {

// Everything the load lane needs, built before t0. Not used by compute mode.
struct LoadLane {
  LoadPipeline* pipeline = nullptr;
  Throttle* throttle = nullptr;  // restarted at t0 (a trace's t = 0 is the request start)
  StoreKey key;
  std::string source_description;
  // Tensor parallelism: one lane per rank (engine/sharded_load.hpp), rank 0's first; its pipeline,
  // throttle and key are the three above. Empty: one lane.
  std::vector<LoadShard> shards;
};

struct RequestOptions {
  // The store's chunk: the load lane's grain and the unit every claim is made in.
  int32_t chunk_tokens = 512;
  // The compute lane prefills runs of up to this many chunks in one call (GEMM efficiency wants
  // many rows; the load grain wants small chunks). Compute-only, split and oracle take full runs;
  // Cake picks each run's length online (MeetGuard::run_length), shorter near the meet. Only for
  // backends whose per-row results do not depend on the call's size (the CLI allows it on the CPU).
  int32_t compute_max_chunks = 1;
  // Test hook for regression checks: sleep this long in the compute lane after every chunk.
  double inject_compute_delay_ms = 0;
  // Test hook for the CI gate: the compute lane takes this many times as long per chunk (it burns
  // (factor - 1) x the CPU time the chunk took after it), as compute code that much slower would.
  double inject_compute_slowdown = 1;
};

// Chunks of `prefix_tokens` tokens in chunks of `chunk_tokens` (the last may be short).
int chunk_count(int64_t prefix_tokens, int32_t chunk_tokens);

// Runs `request` under `mode`. For split, mode.split_chunk (if >= 0) or split_fraction sets the
// split; oracle must arrive with split_chunk resolved (engine/oracle.hpp). Throws cake::Error for
// anything but a per-chunk load fault (those are recovered and reported).
RequestOutcome run_request(ComputeBackend& backend, const Request& request, const Mode& mode,
                           const RequestOptions& options, LoadLane* load);

}  // namespace cake
