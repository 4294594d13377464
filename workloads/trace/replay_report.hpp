// What a trace replay shows: the summary per mode first (TTFT percentiles, queueing, hit ratio,
// GPU busy time), then one compact table of requests sorted by arrival; the per-request detail
// goes to replay.json, whose names follow vLLM's benchmark results (median_ttft_ms, p99_ttft_ms,
// mean_ttft_ms) so scripts written for those carry over.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "workloads/trace/replay.hpp"

namespace cake {

struct ReplayedMode {
  std::string mode;          // "compute", "cake", ...
  ReplayReport report;       // requests in trace order
};

// The trace's requests as the sweep ran them, in trace order.
struct ReplayedRequest {
  std::string id;
  int64_t prefix_tokens = 0;
  int64_t suffix_tokens = 0;
};

// The terminal text: "trace replay: ..." summary table, then the request table.
std::string render_replay(const Trace& trace, const std::vector<ReplayedRequest>& requests,
                          const std::vector<ReplayedMode>& modes);

// replay.json: {"trace": {...}, "modes": {"cake": {"median_ttft_ms": ..., "requests": [...]}, ...}}.
nlohmann::json replay_json(const Trace& trace, const std::vector<ReplayedRequest>& requests,
                           const std::vector<ReplayedMode>& modes);

}  // namespace cake
