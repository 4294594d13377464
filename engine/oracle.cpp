#include "engine/oracle.hpp"

#include <algorithm>

#include "common/clock.hpp"
#include "common/error.hpp"

namespace cake {

int best_static_split(const std::vector<double>& compute_ms, double load_ms_per_chunk) {
  const int n = static_cast<int>(compute_ms.size());
  int best_k = 0;
  double best_ms = static_cast<double>(n) * load_ms_per_chunk;
  double computed_ms = 0;
  for (int k = 1; k <= n; ++k) {
    computed_ms += compute_ms[static_cast<size_t>(k - 1)];
    const double ready_ms = std::max(computed_ms, static_cast<double>(n - k) * load_ms_per_chunk);
    if (ready_ms < best_ms) {
      best_ms = ready_ms;
      best_k = k;
    }
  }
  return best_k;
}

std::vector<double> compute_ms_per_chunk(const RequestOutcome& run) {
  std::vector<double> ms(static_cast<size_t>(run.chunks_total), -1.0);
  // A run of several chunks (the compute lane's grain) is shared evenly among its chunks: the
  // oracle splits at the store's grain, as Cake claims.
  for (const ChunkEvent& e : run.timeline)
    if (e.lane == Lane::compute && e.ok)
      for (int c = e.chunk; c < e.chunk + e.chunks; ++c)
        ms.at(static_cast<size_t>(c)) = ns_to_ms(e.end_ns - e.start_ns) / e.chunks;
  for (size_t i = 0; i < ms.size(); ++i)
    if (ms[i] < 0) throw InternalError(cat("oracle: chunk ", i, " was not computed in the ", run.mode, " run it was given"));
  return ms;
}

double load_ms_per_chunk(const RequestOutcome& run) {
  if (run.chunks_loaded == 0) throw InternalError(cat("oracle: the ", run.mode, " run loaded no chunk, so it gives no load time"));
  return run.load_busy_ms / run.chunks_loaded;
}

}  // namespace cake
