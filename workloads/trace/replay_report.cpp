#include "workloads/trace/replay_report.hpp"

#include <algorithm>
#include <cstdio>
#include <numeric>

#include "common/error.hpp"

namespace cake {
namespace {

std::string format(const char* fmt, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

void check_sizes(const Trace& trace, const std::vector<ReplayedRequest>& requests, const std::vector<ReplayedMode>& modes) {
  if (requests.size() != trace.requests.size())
    throw InternalError(cat("replay report: ", requests.size(), " requests for a trace of ", trace.requests.size()));
  for (const ReplayedMode& m : modes)
    if (m.report.requests.size() != trace.requests.size())
      throw InternalError(cat("replay report: mode ", m.mode, " scheduled ", m.report.requests.size(), " of ",
                              trace.requests.size(), " requests"));
}

// Trace order is arrival order for a trace read by load_mooncake_trace; sort anyway, stably.
std::vector<size_t> by_arrival(const Trace& trace) {
  std::vector<size_t> order(trace.requests.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return trace.requests[a].arrival_ms < trace.requests[b].arrival_ms;
  });
  return order;
}

}  // namespace

std::string render_replay(const Trace& trace, const std::vector<ReplayedRequest>& requests,
                          const std::vector<ReplayedMode>& modes) {
  check_sizes(trace, requests, modes);
  std::string out = cat("trace replay: ", trace.path, ", ", trace.requests.size(),
                        " requests, prefix-cache hit ratio ", format("%.3f", trace.hit_ratio()),
                        ", one FIFO GPU (queueing computed from measured service times)\n");
  char line[256];
  std::snprintf(line, sizeof line, "%-10s %12s %12s %12s %12s %12s %14s\n", "mode", "ttft_p50_ms", "ttft_p90_ms",
                "ttft_p99_ms", "queue_p50_ms", "queue_p99_ms", "gpu_busy_ms");
  out += line;
  for (const ReplayedMode& m : modes) {
    const ReplayReport& r = m.report;
    std::snprintf(line, sizeof line, "%-10s %12.1f %12.1f %12.1f %12.1f %12.1f %14.1f\n", m.mode.c_str(), r.ttft_p50_ms,
                  r.ttft_p90_ms, r.ttft_p99_ms, r.queue_p50_ms, r.queue_p99_ms, r.service_total_ms);
    out += line;
  }

  out += "\nrequests by arrival: TTFT in ms (queueing + service) per mode\n";
  int id_width = 2;
  for (const ReplayedRequest& q : requests) id_width = std::max(id_width, static_cast<int>(q.id.size()));
  id_width = std::min(id_width, 64);
  std::snprintf(line, sizeof line, "%-*s %11s %8s %8s", id_width, "id", "arrival_ms", "prefix", "suffix");
  out += line;
  for (const ReplayedMode& m : modes) {
    std::snprintf(line, sizeof line, " %12s", m.mode.c_str());
    out += line;
  }
  out += "\n";
  for (size_t i : by_arrival(trace)) {
    const ReplayedRequest& q = requests[i];
    std::snprintf(line, sizeof line, "%-*s %11.1f %8lld %8lld", id_width, q.id.c_str(), trace.requests[i].arrival_ms,
                  static_cast<long long>(q.prefix_tokens), static_cast<long long>(q.suffix_tokens));
    out += line;
    for (const ReplayedMode& m : modes) {
      std::snprintf(line, sizeof line, " %12.1f", m.report.requests[i].ttft_ms());
      out += line;
    }
    out += "\n";
  }
  return out;
}

nlohmann::json replay_json(const Trace& trace, const std::vector<ReplayedRequest>& requests,
                           const std::vector<ReplayedMode>& modes) {
  check_sizes(trace, requests, modes);
  nlohmann::json out_modes = nlohmann::json::object();
  for (const ReplayedMode& m : modes) {
    const ReplayReport& r = m.report;
    nlohmann::json per_request = nlohmann::json::array();
    for (size_t i : by_arrival(trace)) {
      const ScheduledRequest& q = r.requests[i];
      per_request.push_back({{"id", requests[i].id},
                             {"prefix_tokens", requests[i].prefix_tokens},
                             {"suffix_tokens", requests[i].suffix_tokens},
                             {"arrival_ms", q.arrival_ms},
                             {"start_ms", q.start_ms},
                             {"queue_ms", q.queue_ms()},
                             {"service_ms", q.service_ms},
                             {"ttft_ms", q.ttft_ms()}});
    }
    out_modes[m.mode] = {{"completed", r.requests.size()},
                         {"mean_ttft_ms", r.ttft_mean_ms},
                         {"median_ttft_ms", r.ttft_p50_ms},
                         {"p90_ttft_ms", r.ttft_p90_ms},
                         {"p99_ttft_ms", r.ttft_p99_ms},
                         {"median_queue_ms", r.queue_p50_ms},
                         {"p99_queue_ms", r.queue_p99_ms},
                         {"gpu_busy_ms", r.service_total_ms},
                         {"makespan_ms", r.makespan_ms},
                         {"requests", per_request}};
  }
  return {{"trace",
           {{"path", trace.path},
            {"requests", trace.requests.size()},
            {"hit_ratio", trace.hit_ratio()},
            {"queueing", "one FIFO GPU; computed from each request's measured service time"}}},
          {"modes", out_modes}};
}

}  // namespace cake
