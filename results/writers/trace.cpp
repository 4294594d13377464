// trace-<n>.json: one request as a Chrome trace (chrome://tracing, ui.perfetto.dev).
// Times are microseconds from the request's t0. Events of one lane that overlap in time
// (pipelined reads, a copy overlapping the next read) go to extra tracks of that lane, because
// trace viewers draw overlapping, non-nested slices of one thread wrongly.
#include <algorithm>

#include "common/error.hpp"
#include "results/format.hpp"
#include "results/timeline.hpp"
#include "results/writers.hpp"

namespace cake {

using nlohmann::json;

namespace {

constexpr int kComputeTidBase = 1;
constexpr int kLoadTidBase = 101;

std::string event_name(const TimelineEvent& e) {
  std::string name = e.chunk >= 0 ? cat(e.lane, " c=", e.chunk, e.chunks > 1 ? cat("..", e.chunk + e.chunks - 1) : "") : e.lane;
  if (e.taken_over) name += e.lane == "compute" ? " (abandoned: taken over by load)" : " (taken over from compute)";
  if (!e.ok) name += " FAILED";
  return name;
}

std::string track_name(LaneRow row, int track) {
  const char* base = row == LaneRow::compute ? "compute lane" : "load lane";
  return track == 0 ? std::string(base) : cat(base, " (", track + 1, ")");
}

double us(double ms) { return ms * 1000.0; }

}  // namespace

json render_chrome_trace(const RequestTimeline& t, int pid) {
  json events = json::array();
  events.push_back({{"name", "process_name"},
                    {"ph", "M"},
                    {"pid", pid},
                    {"args", {{"name", cat("request ", pid, ": ", t.mode, " rep ", t.repetition)}}}});
  events.push_back({{"name", "process_labels"}, {"ph", "M"}, {"pid", pid}, {"args", {{"labels", t.point_key}}}});

  int max_track[2] = {0, 0};
  for (LaneRow row : {LaneRow::compute, LaneRow::load}) {
    std::vector<const TimelineEvent*> lane_events;
    for (const auto& e : t.events)
      if (lane_row(e.lane) == row) lane_events.push_back(&e);
    const std::vector<int> tracks = pack_tracks(lane_events);
    const int tid_base = row == LaneRow::compute ? kComputeTidBase : kLoadTidBase;
    for (size_t i = 0; i < lane_events.size(); ++i) {
      const TimelineEvent& e = *lane_events[i];
      max_track[static_cast<int>(row)] = std::max(max_track[static_cast<int>(row)], tracks[i]);
      json ev = {{"name", event_name(e)},
                 {"cat", e.lane},
                 {"ph", "X"},
                 {"pid", pid},
                 {"tid", tid_base + tracks[i]},
                 {"ts", us(e.start_ms)},
                 {"dur", us(e.end_ms - e.start_ms)},
                 {"args", {{"chunk", e.chunk}, {"chunks", e.chunks}, {"bytes", e.bytes}, {"queue_wait_ms", e.queue_wait_ms},
                           {"ok", e.ok}, {"taken_over", e.taken_over}}}};
      if (e.collective_ms > 0) {
        ev["args"]["allreduce_ms"] = e.collective_ms;
        ev["name"] = cat(event_name(e), " (all-reduce ", fixed(e.collective_ms, 2), " ms)");
      }
      if (e.claim_spread_ms > 0) ev["args"]["claim_agreement_ms"] = e.claim_spread_ms;
      if (!e.ok) ev["cname"] = "terrible";
      events.push_back(std::move(ev));
    }
  }
  // Name every track, even an empty lane, so a compute-only trace still shows where loads would be.
  for (LaneRow row : {LaneRow::compute, LaneRow::load}) {
    const int tid_base = row == LaneRow::compute ? kComputeTidBase : kLoadTidBase;
    for (int k = 0; k <= max_track[static_cast<int>(row)]; ++k) {
      events.push_back(
          {{"name", "thread_name"}, {"ph", "M"}, {"pid", pid}, {"tid", tid_base + k}, {"args", {{"name", track_name(row, k)}}}});
      events.push_back({{"name", "thread_sort_index"},
                        {"ph", "M"},
                        {"pid", pid},
                        {"tid", tid_base + k},
                        {"args", {{"sort_index", tid_base + k}}}});
    }
  }

  if (const auto meet = find_meet(t)) {
    const std::string label =
        meet->first_loaded_chunk >= 0
            ? cat("meet: chunks < ", meet->first_loaded_chunk, " computed, >= ", meet->first_loaded_chunk, " loaded")
            : std::string("meet");
    events.push_back({{"name", label},
                      {"ph", "i"},
                      {"s", "p"},
                      {"pid", pid},
                      {"tid", kComputeTidBase},
                      {"ts", us(meet->meet_ms)},
                      {"args",
                       {{"first_loaded_chunk", meet->first_loaded_chunk},
                        {"compute_done_ms", meet->compute_done_ms},
                        {"load_done_ms", meet->load_done_ms},
                        {"idle_lane", meet->idle_lane},
                        {"idle_ms", meet->idle_ms}}}});
    if (meet->idle_ms > 0) {
      const bool compute_idle = meet->idle_lane == "compute";
      events.push_back({{"name", cat(meet->idle_lane, " lane waits at meet")},
                        {"cat", "idle"},
                        {"ph", "X"},
                        {"pid", pid},
                        {"tid", compute_idle ? kComputeTidBase : kLoadTidBase},
                        {"ts", us(compute_idle ? meet->compute_done_ms : meet->load_done_ms)},
                        {"dur", us(meet->idle_ms)},
                        {"cname", "grey"},
                        {"args", {{"idle_ms", meet->idle_ms}}}});
    }
  }
  if (!t.events.empty())
    events.push_back({{"name", "first token (TTFT)"},
                      {"ph", "i"},
                      {"s", "p"},
                      {"pid", pid},
                      {"tid", kComputeTidBase},
                      {"ts", us(timeline_end_ms(t))},
                      {"args", {{"ttft_ms", timeline_end_ms(t)}}}});

  return {{"traceEvents", events},
          {"displayTimeUnit", "ms"},
          {"otherData", {{"point_key", t.point_key}, {"mode", t.mode}, {"repetition", t.repetition}}}};
}

}  // namespace cake
