#include "workloads/trace/replay.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "common/error.hpp"

namespace cake {

std::vector<ScheduledRequest> fifo_schedule(std::span<const double> arrival_ms, std::span<const double> service_ms) {
  if (arrival_ms.size() != service_ms.size())
    throw InternalError(cat("FIFO schedule: ", arrival_ms.size(), " arrivals but ", service_ms.size(), " service times"));
  std::vector<ScheduledRequest> schedule(arrival_ms.size());
  double free_at_ms = -INFINITY;
  for (size_t i = 0; i < arrival_ms.size(); ++i) {
    if (!std::isfinite(arrival_ms[i]) || (i > 0 && arrival_ms[i] < arrival_ms[i - 1]))
      throw InternalError(cat("FIFO schedule: arrival ", i, " (", arrival_ms[i], " ms) is not finite or comes before the previous one"));
    if (!std::isfinite(service_ms[i]) || service_ms[i] < 0)
      throw InternalError(cat("FIFO schedule: service time of request ", i, " is ", service_ms[i], " ms"));
    ScheduledRequest& r = schedule[i];
    r.arrival_ms = arrival_ms[i];
    r.service_ms = service_ms[i];
    r.start_ms = std::max(r.arrival_ms, free_at_ms);
    r.finish_ms = r.start_ms + r.service_ms;
    free_at_ms = r.finish_ms;
  }
  return schedule;
}

TraceReplay::TraceReplay(ServeFn serve_ms) : serve_ms_(std::move(serve_ms)) {
  if (!serve_ms_) throw InternalError("trace replay: no serve callback");
}

ReplayReport TraceReplay::run(const Trace& trace) const {
  if (trace.requests.empty()) throw Error(cat("trace replay: ", trace.path, " has no requests"));
  std::vector<double> arrivals;
  std::vector<double> services;
  for (const TraceRequest& request : trace.requests) {
    arrivals.push_back(request.arrival_ms);
    services.push_back(serve_ms_(request));
  }
  ReplayReport report;
  report.requests = fifo_schedule(arrivals, services);
  std::vector<double> ttft;
  std::vector<double> queue;
  for (const ScheduledRequest& r : report.requests) {
    ttft.push_back(r.ttft_ms());
    queue.push_back(r.queue_ms());
  }
  report.ttft_p50_ms = percentile(ttft, 50);
  report.ttft_p90_ms = percentile(ttft, 90);
  report.ttft_p99_ms = percentile(ttft, 99);
  report.ttft_mean_ms = std::accumulate(ttft.begin(), ttft.end(), 0.0) / static_cast<double>(ttft.size());
  report.queue_p50_ms = percentile(queue, 50);
  report.queue_p99_ms = percentile(queue, 99);
  report.service_total_ms = std::accumulate(services.begin(), services.end(), 0.0);
  report.makespan_ms = report.requests.back().finish_ms - report.requests.front().arrival_ms;
  report.input_tokens = trace.input_tokens;
  report.hit_tokens = trace.hit_tokens;
  report.hit_ratio = trace.hit_ratio();
  return report;
}

}  // namespace cake
