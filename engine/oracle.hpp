// The oracle: the best STATIC split for a request at a bandwidth, from measured per-chunk costs.
// Cake is held against it (cake_ttft / oracle_ttft): a good dynamic policy should come close
// without knowing either cost in advance.
#pragma once

#include <vector>

#include "engine/request_outcome.hpp"

namespace cake {

// Chunks [0, k) computed, [k, n) loaded, at once; the prefix is ready at
//   max(sum of compute_ms[0..k), (n - k) * load_ms_per_chunk).
// Returns the k in [0, n] that minimises it (the smallest such k on ties).
int best_static_split(const std::vector<double>& compute_ms_per_chunk, double load_ms_per_chunk);

// Per-chunk compute times of a compute-only run (index = chunk); throws if the run did not
// compute every chunk.
std::vector<double> compute_ms_per_chunk(const RequestOutcome& compute_only);

// Mean time per loaded chunk of a run that loaded some (io or cake): the load lane's span over
// the chunks it delivered, which includes its pipelining and, for an encoded store, each chunk's
// decode step (a chunk is resident only once decoded: loaders/chunk_decoder.hpp), so the oracle's
// split and split=F both pay the decode. Throws if it loaded none.
double load_ms_per_chunk(const RequestOutcome& run);

}  // namespace cake
