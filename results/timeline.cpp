#include "results/timeline.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace cake {

LaneRow lane_row(std::string_view lane) {
  return (lane == "load" || lane == "h2d" || lane == "decode") ? LaneRow::load : LaneRow::compute;
}

std::optional<Meet> find_meet(const RequestTimeline& t) {
  bool any_compute = false, any_load = false;
  Meet m;
  for (const auto& e : t.events) {
    if (e.lane == "compute") {
      any_compute = true;
      m.compute_done_ms = std::max(m.compute_done_ms, e.end_ms);
    } else if (e.lane == "load" || e.lane == "h2d" || e.lane == "decode") {
      any_load = true;
      m.load_done_ms = std::max(m.load_done_ms, e.end_ms);
      if (e.ok && e.chunk >= 0 && (m.first_loaded_chunk < 0 || e.chunk < m.first_loaded_chunk))
        m.first_loaded_chunk = e.chunk;
    }
  }
  if (!any_compute || !any_load) return std::nullopt;
  m.meet_ms = std::max(m.compute_done_ms, m.load_done_ms);
  m.idle_lane = m.compute_done_ms <= m.load_done_ms ? "compute" : "load";
  m.idle_ms = std::fabs(m.compute_done_ms - m.load_done_ms);
  return m;
}

double timeline_end_ms(const RequestTimeline& t) {
  double end = 0;
  for (const auto& e : t.events) end = std::max(end, e.end_ms);
  return end;
}

// Back-to-back events measured by different clocks (or summed in floating point) can overlap by
// a hair; below a microsecond that is not a real overlap and must not open a second track.
constexpr double kOverlapToleranceMs = 1e-3;

std::vector<int> pack_tracks(const std::vector<const TimelineEvent*>& events) {
  std::vector<size_t> order(events.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return events[a]->start_ms < events[b]->start_ms; });
  std::vector<int> track(events.size(), 0);
  std::vector<double> track_free_at;  // end of the last event placed on each track
  for (size_t i : order) {
    size_t k = 0;
    while (k < track_free_at.size() && track_free_at[k] > events[i]->start_ms + kOverlapToleranceMs) ++k;
    if (k == track_free_at.size()) track_free_at.push_back(0);
    track_free_at[k] = events[i]->end_ms;
    track[i] = static_cast<int>(k);
  }
  return track;
}

}  // namespace cake
