// timeline-<n>.svg: one request's chunks over time. The compute lane (and the suffix, which
// runs on the compute stream) on top, the load lane's reads and host-to-device copies below;
// overlapping events of one lane stack into tracks. The meet and the first token are marked.
#include <algorithm>
#include <cmath>

#include "common/error.hpp"
#include "results/format.hpp"
#include "results/timeline.hpp"
#include "results/writers.hpp"
#include "results/writers/svg.hpp"

namespace cake {

using detail::nice_step;
using detail::Svg;
using detail::svg_num;

namespace {

struct RowSpec {
  const char* label;
  std::vector<const char*> lanes;
};

struct LaneStyle {
  const char* fill;
  const char* text;
};

LaneStyle lane_style(std::string_view lane, bool ok) {
  if (!ok) return {"#d62728", "white"};
  if (lane == "compute") return {"#1f77b4", "white"};
  if (lane == "load") return {"#ff7f0e", "black"};
  if (lane == "h2d") return {"#ffbb78", "black"};
  if (lane == "decode") return {"#2ca02c", "white"};
  if (lane == "suffix") return {"#9467bd", "white"};
  return {"#7f7f7f", "white"};
}

// Places `label` ending just left of x when it fits there, else starting just right of it.
void marker_label(Svg& svg, double x, double y, const std::string& label, double left_limit, double right_limit,
                  const char* color) {
  const double w = detail::text_width_px(label, 11.5);
  if (x - 5 - w >= left_limit) svg.text(x - 5, y, label, 11.5, "end", cat("fill=\"", color, "\""));
  else if (x + 5 + w <= right_limit) svg.text(x + 5, y, label, 11.5, "start", cat("fill=\"", color, "\""));
  else svg.text(left_limit, y, label, 11.5, "start", cat("fill=\"", color, "\""));
}

}  // namespace

std::string render_timeline_svg(const RequestTimeline& t) {
  const double width = 980;
  const double left = 150, right = width - 30;
  const double bar_h = 20, track_gap = 3, row_gap = 14;
  const double rows_top = 118;

  const std::vector<RowSpec> row_specs = {
      {"compute lane", {"compute", "suffix"}}, {"load lane: read", {"load"}}, {"load lane: h2d", {"h2d"}},
      {"load lane: decode", {"decode"}}};

  struct Row {
    std::string label;
    std::vector<const TimelineEvent*> events;
    std::vector<int> tracks;
    int track_count = 0;
    double top = 0;
  };
  std::vector<Row> rows;
  for (const RowSpec& spec : row_specs) {
    Row row{.label = spec.label};
    for (const auto& e : t.events)
      if (std::find(spec.lanes.begin(), spec.lanes.end(), e.lane) != spec.lanes.end()) row.events.push_back(&e);
    // Always keep the two lanes of the design; the h2d row only when there were copies.
    if (row.events.empty() && (spec.lanes.front() == std::string_view("h2d") || spec.lanes.front() == std::string_view("decode")))
      continue;
    row.tracks = pack_tracks(row.events);
    for (int k : row.tracks) row.track_count = std::max(row.track_count, k + 1);
    row.track_count = std::max(row.track_count, 1);
    rows.push_back(std::move(row));
  }
  // Events of lanes the design does not name go on a row of their own rather than vanish.
  {
    Row other{.label = "other"};
    for (const auto& e : t.events)
      if (e.lane != "compute" && e.lane != "suffix" && e.lane != "load" && e.lane != "h2d" && e.lane != "decode") other.events.push_back(&e);
    if (!other.events.empty()) {
      other.tracks = pack_tracks(other.events);
      for (int k : other.tracks) other.track_count = std::max(other.track_count, k + 1);
      rows.push_back(std::move(other));
    }
  }
  double y = rows_top;
  for (Row& row : rows) {
    row.top = y;
    y += row.track_count * (bar_h + track_gap) - track_gap + row_gap;
  }
  const double rows_bottom = y - row_gap;
  const double height = rows_bottom + 64;

  const double end_ms = std::max(timeline_end_ms(t), 1e-3);
  const double x_step = nice_step(end_ms, 10);
  const double x_max = std::ceil(end_ms / x_step) * x_step;
  auto x_of = [&](double ms) { return left + ms / x_max * (right - left); };

  Svg svg(width, height);
  const std::string title = cat("Request timeline: ", t.mode, ", repetition ", t.repetition);
  svg.raw(cat("<title>", xml_escape(title), "</title>"));
  svg.raw(
      "<defs><pattern id=\"idle\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" "
      "patternTransform=\"rotate(45)\"><rect width=\"6\" height=\"6\" fill=\"#f2f2f2\"/>"
      "<line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"6\" stroke=\"#9a9a9a\" stroke-width=\"2\"/></pattern></defs>");
  svg.text(20, 24, title, 16, "start", "font-weight=\"bold\"");
  svg.text(20, 42, t.point_key, 11, "start", "fill=\"#444\"");

  // Legend.
  {
    double lx = 20;
    const double ly = 56;
    auto entry = [&](const char* fill, const std::string& label, bool hatched = false) {
      svg.rect(lx, ly, 14, 12, hatched ? "fill=\"url(#idle)\" stroke=\"#777\"" : cat("fill=\"", fill, "\""));
      svg.text(lx + 19, ly + 10, label, 11);
      lx += 19 + detail::text_width_px(label, 11) * 0.9 + 16;
    };
    entry("#1f77b4", "compute chunk");
    entry("#ff7f0e", "load (read)");
    entry("#ffbb78", "host-to-device copy");
    bool any_decode = false;
    for (const auto& e : t.events) any_decode |= e.lane == "decode";
    if (any_decode) entry("#2ca02c", "decode");
    entry("#9467bd", "suffix prefill");
    entry("#d62728", "failed step");
    entry("", "idle at meet", true);
    bool any_taken_over = false;
    for (const auto& e : t.events) any_taken_over |= e.taken_over;
    if (any_taken_over) {
      svg.rect(lx, ly, 14, 12, "fill=\"white\" stroke=\"#2ca02c\" stroke-width=\"2\"");
      svg.text(lx + 19, ly + 10, "taken over (compute abandoned, load delivered)", 11);
    }
  }

  // Grid and time axis.
  for (double v = 0; v <= x_max + x_step * 1e-9; v += x_step) {
    const double x = x_of(v);
    svg.line(x, rows_top - 6, x, rows_bottom + 4, "stroke=\"#eeeeee\"");
    svg.line(x, rows_bottom + 4, x, rows_bottom + 9, "stroke=\"#333\"");
    svg.text(x, rows_bottom + 22, x_step >= 1 ? fixed(v, 0) : fixed(v, x_step >= 0.1 ? 1 : 2), 11, "middle",
             "fill=\"#333\"");
  }
  svg.line(left, rows_bottom + 4, right, rows_bottom + 4, "stroke=\"#333\"");
  svg.text((left + right) / 2, rows_bottom + 44, "time since request start (ms)", 12, "middle");

  // Rows.
  int max_chunk = -1;
  for (const auto& e : t.events) max_chunk = std::max(max_chunk, e.chunk);
  const auto meet = find_meet(t);
  for (const Row& row : rows) {
    const double row_h = row.track_count * (bar_h + track_gap) - track_gap;
    svg.text(left - 10, row.top + row_h / 2 + 4, row.label, 12, "end");
    svg.line(left, row.top + row_h + row_gap / 2, right, row.top + row_h + row_gap / 2, "stroke=\"#f4f4f4\"");
    if (meet && meet->idle_ms > 0 &&
        ((meet->idle_lane == "compute" && row.label == std::string("compute lane")) ||
         (meet->idle_lane == "load" && row.label == std::string("load lane: read")))) {
      const double x0 = x_of(meet->idle_lane == "compute" ? meet->compute_done_ms : meet->load_done_ms);
      svg.rect(x0, row.top, x_of(meet->meet_ms) - x0, bar_h, "fill=\"url(#idle)\" stroke=\"#777\" stroke-width=\"0.6\"");
    }
    for (size_t i = 0; i < row.events.size(); ++i) {
      const TimelineEvent& e = *row.events[i];
      const double x0 = x_of(e.start_ms), x1 = x_of(e.end_ms);
      const double top = row.top + row.tracks[i] * (bar_h + track_gap);
      const LaneStyle st = lane_style(e.lane, e.ok || e.taken_over);
      // A taken-over step: an abandoned compute run is drawn hollow, a taken-over load outlined.
      const std::string fill = e.taken_over && e.lane == "compute" ? "white" : st.fill;
      const std::string stroke = e.taken_over ? "stroke=\"#2ca02c\" stroke-width=\"2\"" : "stroke=\"white\" stroke-width=\"0.5\"";
      svg.rect(x0, top, std::max(x1 - x0, 0.8), bar_h, cat("fill=\"", fill, "\" ", stroke));
      const std::string chunks_text =
          e.chunk < 0 ? std::string() : e.chunks > 1 ? cat(" chunks ", e.chunk, "-", e.chunk + e.chunks - 1) : cat(" chunk ", e.chunk);
      svg.raw(cat("<title>", xml_escape(e.lane), chunks_text, ": ", fixed(e.start_ms, 2), "-", fixed(e.end_ms, 2), " ms, ",
                  e.bytes, " bytes, waited ", fixed(e.queue_wait_ms, 2), " ms",
                  e.taken_over ? (e.lane == "compute" ? ", abandoned: taken over by the load lane" : ", taken over from compute")
                               : "",
                  e.ok || e.taken_over ? "" : ", FAILED", "</title>"));
      const std::string label =
          e.chunk < 0 ? e.lane : e.chunks > 1 ? cat(e.chunk, "-", e.chunk + e.chunks - 1) : std::to_string(e.chunk);
      if (detail::text_width_px(label, 10) + 4 <= x1 - x0)
        svg.text((x0 + x1) / 2, top + bar_h / 2 + 3.5, label, 10, "middle", cat("fill=\"", st.text, "\""));
    }
  }

  // The meet and the first token. The first token's label sits on the upper line, where the
  // meet line (always earlier) does not reach, so neither label is crossed by the other's line.
  if (meet) {
    const double x = x_of(meet->meet_ms);
    svg.line(x, 96, x, rows_bottom + 4, "stroke=\"#d62728\" stroke-width=\"1.5\" stroke-dasharray=\"5,3\"");
    std::string label = cat("meet at ", fixed(meet->meet_ms, 1), " ms");
    const int first = meet->first_loaded_chunk;
    if (first > 0) label += cat(": chunks 0-", first - 1, " computed");
    if (first >= 0 && max_chunk >= first) label += cat(first > 0 ? ", " : ": chunks ", first, "-", max_chunk, " loaded");
    int failed_loads = 0;
    for (const auto& e : t.events) failed_loads += (lane_row(e.lane) == LaneRow::load && !e.ok) ? 1 : 0;
    if (failed_loads > 0) label += cat(" (", failed_loads, " failed, recomputed)");
    label += cat("; ", meet->idle_lane, " lane idle ", fixed(meet->idle_ms, 1), " ms");
    marker_label(svg, x, 106, label, 20, width - 10, "#d62728");
  }
  if (!t.events.empty()) {
    const double x = x_of(end_ms);
    svg.line(x, 78, x, rows_bottom + 4, "stroke=\"#222\" stroke-width=\"1.5\"");
    marker_label(svg, x, 88, cat("first token: TTFT ", fixed(end_ms, 1), " ms"), 20, width - 10, "#222");
  }
  return svg.str();
}

}  // namespace cake
