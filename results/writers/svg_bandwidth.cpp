// ttft-vs-bandwidth-<slug>.svg: median TTFT per mode against load bandwidth, p10-p90 whiskers,
// log-scale bandwidth axis; "unlimited" sits past an axis break at the right, since it has no
// place on a log scale.
#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include "common/error.hpp"
#include "results/format.hpp"
#include "results/writers.hpp"
#include "results/writers/svg.hpp"

namespace cake {

using detail::nice_step;
using detail::Svg;
using detail::svg_num;

namespace {

struct SeriesPoint {
  std::optional<double> bandwidth_gbps;
  Summary ttft_ms;
  bool noisy = false;
  bool unverified = false;
  int recovered_chunks = 0;
  bool loader_bound = false;
};

struct Series {
  std::string mode, source, codec;
  std::string label;
  std::vector<SeriesPoint> points;
};

struct FigureData {
  const Point* first = nullptr;  // carries the figure's shared configuration
  std::vector<Series> series;
};

std::string figure_key(const Point& p) {
  return cat(p.model, '\x1f', p.backend, '\x1f', p.context_tokens, '\x1f', p.suffix_tokens, '\x1f', p.chunk_tokens,
             '\x1f', source_kind(p.source), '\x1f', p.bandwidth_trace, '\x1f', print_fields(p.axes), '\x1f',
             print_fields(p.conditions));
}

struct Style {
  const char* color;
  const char* dash;   // stroke-dasharray or ""
  int marker;         // 0 circle, 1 square, 2 triangle, 3 diamond, 4 inverted triangle
};

Style style_for(const std::string& mode, int split_index) {
  if (mode == "compute") return {"#1f77b4", "", 0};
  if (mode == "io") return {"#ff7f0e", "", 1};
  if (mode == "cake") return {"#2ca02c", "", 2};
  if (mode == "oracle") return {"#555555", "6,4", 3};
  static const char* const kOthers[] = {"#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"};
  return {kOthers[split_index % 5], "2,3", 4};
}

void draw_marker(Svg& svg, int marker, double x, double y, const char* color, bool hollow) {
  const std::string style = cat("fill=\"", hollow ? "white" : color, "\" stroke=\"", color, "\" stroke-width=\"1.6\"");
  const double r = 4.5;
  switch (marker) {
    case 0: svg.circle(x, y, r, style); break;
    case 1: svg.rect(x - r, y - r, 2 * r, 2 * r, style); break;
    case 2: svg.polygon({{x, y - r - 1}, {x + r + 1, y + r}, {x - r - 1, y + r}}, style); break;
    case 3: svg.polygon({{x, y - r - 1.5}, {x + r + 1.5, y}, {x, y + r + 1.5}, {x - r - 1.5, y}}, style); break;
    default: svg.polygon({{x, y + r + 1}, {x + r + 1, y - r}, {x - r - 1, y - r}}, style); break;
  }
}

std::vector<FigureData> collect(const RunReport& report) {
  std::vector<std::string> keys;
  std::vector<FigureData> figures;
  for (const Point& p : report.points) {
    if (p.ttft_ms_samples.empty()) continue;
    const std::string key = figure_key(p);
    auto it = std::find(keys.begin(), keys.end(), key);
    if (it == keys.end()) {
      keys.push_back(key);
      figures.push_back(FigureData{.first = &p});
      it = keys.end() - 1;
    }
    FigureData& f = figures[static_cast<size_t>(it - keys.begin())];
    auto s = std::find_if(f.series.begin(), f.series.end(), [&](const Series& x) {
      return x.mode == p.mode && x.source == p.source && x.codec == p.codec;
    });
    if (s == f.series.end()) {
      f.series.push_back(Series{.mode = p.mode, .source = p.source, .codec = p.codec});
      s = f.series.end() - 1;
    }
    // A lossy codec's point is not "not verified": it reports its quality instead (results.md).
    s->points.push_back({p.bandwidth_gbps, p.ttft_ms, p.noisy, !p.verified && !p.lossy, p.chunks_recovered, loader_bound(p)});
  }
  for (FigureData& f : figures) {
    bool many_sources = false, many_codecs = false;
    for (const Series& s : f.series) {
      many_sources |= s.source != f.series.front().source;
      many_codecs |= s.codec != f.series.front().codec;
    }
    for (Series& s : f.series) {
      s.label = s.mode;
      if (many_sources) s.label += " " + s.source;
      if (many_codecs) s.label += " " + s.codec;
      std::sort(s.points.begin(), s.points.end(), [](const SeriesPoint& a, const SeriesPoint& b) {
        if (!a.bandwidth_gbps || !b.bandwidth_gbps) return a.bandwidth_gbps.has_value() && !b.bandwidth_gbps.has_value();
        return *a.bandwidth_gbps < *b.bandwidth_gbps;
      });
    }
    std::stable_sort(f.series.begin(), f.series.end(),
                     [](const Series& a, const Series& b) { return mode_less(a.mode, b.mode); });
  }
  return figures;
}

// Linear from 0 unless the values span more than kLogYSpan: a sweep from 1 Gbit/s to unlimited
// spans two decades of TTFT, and on a linear axis every fast point collapses onto zero.
constexpr double kLogYSpan = 8;

struct YScale {
  bool log = false;
  double lo = 0, hi = 1;
  std::vector<double> ticks;
  std::vector<std::string> labels;

  double fraction(double v) const {
    if (!log) return (v - lo) / (hi - lo);
    return (std::log10(std::max(v, lo)) - std::log10(lo)) / (std::log10(hi) - std::log10(lo));
  }
};

YScale make_y_scale(double v_min, double v_max) {
  YScale s;
  if (!(v_max > 0)) v_max = 1;
  if (v_min > 0 && v_max / v_min > kLogYSpan) {
    s.log = true;
    s.lo = v_min / 1.25;
    s.hi = v_max * 1.25;
    for (int d = static_cast<int>(std::floor(std::log10(s.lo))); d <= static_cast<int>(std::ceil(std::log10(s.hi))); ++d)
      for (double m : {1.0, 2.0, 5.0}) {
        const double v = m * std::pow(10.0, d);
        if (v < s.lo || v > s.hi) continue;
        s.ticks.push_back(v);
        s.labels.push_back(short_number(v));
      }
    return s;
  }
  const double step = nice_step(v_max * 1.05, 6);
  s.hi = std::ceil(v_max * 1.05 / step) * step;
  for (double v = 0; v <= s.hi + step * 1e-9; v += step) {
    s.ticks.push_back(v);
    s.labels.push_back(step >= 1 ? fixed(v, 0) : fixed(v, step >= 0.1 ? 1 : 2));
  }
  return s;
}

std::string render_one(const FigureData& f, std::string& title_out) {
  const Point& c = *f.first;
  const double width = 860, height = 480;
  const double plot_left = 84, plot_top = 66, plot_right = width - 200, plot_bottom = height - 66;

  // A bandwidth trace gets its own figure: its points sit at the trace's mean rate.
  title_out = cat("TTFT vs load bandwidth: ", c.model, ", ", c.context_tokens, "-token context",
                  c.bandwidth_trace.empty() ? "" : cat(", ", bandwidth_label(c)),
                  c.conditions.empty() ? "" : cat(", INJECTED ", print_fields(c.conditions)));
  Svg svg(width, height);
  svg.raw(cat("<title>", xml_escape(title_out), "</title>"));
  svg.text(plot_left, 24, title_out, 16, "start", "font-weight=\"bold\"");
  svg.text(plot_left, 44,
           cat("backend ", c.backend, ", suffix ", c.suffix_tokens, " tokens, chunk ", c.chunk_tokens,
               " tokens, source ", source_kind(c.source), c.axes.empty() ? "" : cat(", ", print_fields(c.axes))),
           12, "start", "fill=\"#444\"");

  // Scales.
  std::vector<double> finite;
  bool has_unlimited = false;
  double y_max = 0, y_min = std::numeric_limits<double>::infinity();
  for (const Series& s : f.series)
    for (const SeriesPoint& p : s.points) {
      if (p.bandwidth_gbps) finite.push_back(*p.bandwidth_gbps);
      else has_unlimited = true;
      y_max = std::max({y_max, p.ttft_ms.p90, p.ttft_ms.median});
      y_min = std::min({y_min, p.ttft_ms.p10, p.ttft_ms.median});
    }
  std::sort(finite.begin(), finite.end());
  finite.erase(std::unique(finite.begin(), finite.end()), finite.end());
  const double unlimited_band = has_unlimited ? 78 : 0;
  const double finite_right = plot_right - unlimited_band;
  double log_lo = 0, log_hi = 1;
  if (!finite.empty()) {
    log_lo = std::log10(finite.front());
    log_hi = std::log10(finite.back());
    const double pad = std::max(0.15, 0.06 * (log_hi - log_lo));
    log_lo -= pad;
    log_hi += pad;
  }
  const double unlimited_x = plot_right - unlimited_band / 2;
  auto x_of = [&](const std::optional<double>& bw) {
    if (!bw) return unlimited_x;
    return plot_left + (std::log10(*bw) - log_lo) / (log_hi - log_lo) * (finite_right - plot_left);
  };
  const YScale ys = make_y_scale(y_min, y_max);
  auto y_of = [&](double v) { return plot_bottom - ys.fraction(v) * (plot_bottom - plot_top); };

  // Grid and y axis.
  for (size_t i = 0; i < ys.ticks.size(); ++i) {
    const double y = y_of(ys.ticks[i]);
    svg.line(plot_left, y, plot_right, y, "stroke=\"#e6e6e6\" stroke-width=\"1\"");
    svg.text(plot_left - 8, y + 4, ys.labels[i], 11, "end", "fill=\"#333\"");
  }
  svg.text(22, (plot_top + plot_bottom) / 2, cat("TTFT (ms", ys.log ? ", log scale" : "", "): median, whiskers p10-p90"), 12, "middle",
           cat("transform=\"rotate(-90 22 ", svg_num((plot_top + plot_bottom) / 2), ")\""));

  // X ticks at the swept bandwidths; a label too close to the previous one is left out.
  double last_label_right = -1e9;
  for (double bw : finite) {
    const double x = x_of(bw);
    svg.line(x, plot_top, x, plot_bottom, "stroke=\"#f0f0f0\" stroke-width=\"1\"");
    svg.line(x, plot_bottom, x, plot_bottom + 5, "stroke=\"#333\"");
    const std::string label = short_number(bw);
    const double half = detail::text_width_px(label, 11) / 2;
    if (x - half > last_label_right + 4) {
      svg.text(x, plot_bottom + 18, label, 11, "middle", "fill=\"#333\"");
      last_label_right = x + half;
    }
  }
  svg.line(plot_left, plot_top, plot_left, plot_bottom, "stroke=\"#333\"");
  svg.line(plot_left, plot_bottom, finite_right - 6, plot_bottom, "stroke=\"#333\"");
  if (has_unlimited) {
    // Axis break: two slashes, then the separate "unlimited" position.
    const double bx = finite_right;
    svg.line(bx - 9, plot_bottom + 5, bx - 3, plot_bottom - 5, "stroke=\"#333\"");
    svg.line(bx - 3, plot_bottom + 5, bx + 3, plot_bottom - 5, "stroke=\"#333\"");
    svg.line(bx + 3, plot_bottom, plot_right, plot_bottom, "stroke=\"#333\"");
    svg.line(bx, plot_top, bx, plot_bottom, "stroke=\"#bbbbbb\" stroke-dasharray=\"3,3\"");
    svg.line(unlimited_x, plot_bottom, unlimited_x, plot_bottom + 5, "stroke=\"#333\"");
    svg.text(unlimited_x, plot_bottom + 18, "unlimited", 11, "middle", "fill=\"#333\"");
  }
  svg.text((plot_left + finite_right) / 2, plot_bottom + 42, "load bandwidth (Gbit/s, log scale)", 12, "middle");

  // Series: whiskers, the line through finite bandwidths, markers. A small sideways offset per
  // series keeps whiskers of different modes at one bandwidth apart.
  int split_index = 0;
  bool any_noisy = false, any_unverified = false, any_recovered = false, any_loader_bound = false;
  const double spread = 5.0;
  const double n_series = static_cast<double>(f.series.size());
  for (size_t i = 0; i < f.series.size(); ++i) {
    const Series& s = f.series[i];
    const bool named = s.mode == "compute" || s.mode == "io" || s.mode == "cake" || s.mode == "oracle";
    const Style st = style_for(s.mode, named ? 0 : split_index++);
    const double dx = (static_cast<double>(i) - (n_series - 1) / 2) * spread;
    std::vector<std::pair<double, double>> line;
    for (const SeriesPoint& p : s.points)
      if (p.bandwidth_gbps) line.push_back({x_of(p.bandwidth_gbps) + dx, y_of(p.ttft_ms.median)});
    const std::string dash = *st.dash ? cat(" stroke-dasharray=\"", st.dash, "\"") : std::string();
    svg.open_group(cat("class=\"series\" data-mode=\"", xml_escape(s.mode), "\" data-label=\"", xml_escape(s.label), "\""));
    if (line.size() > 1) svg.polyline(line, cat("stroke=\"", st.color, "\" stroke-width=\"2\"", dash));
    for (const SeriesPoint& p : s.points) {
      const double x = x_of(p.bandwidth_gbps) + dx;
      const std::string wstyle = cat("stroke=\"", st.color, "\" stroke-width=\"1.3\"");
      svg.line(x, y_of(p.ttft_ms.p10), x, y_of(p.ttft_ms.p90), wstyle);
      svg.line(x - 4, y_of(p.ttft_ms.p10), x + 4, y_of(p.ttft_ms.p10), wstyle);
      svg.line(x - 4, y_of(p.ttft_ms.p90), x + 4, y_of(p.ttft_ms.p90), wstyle);
      draw_marker(svg, st.marker, x, y_of(p.ttft_ms.median), st.color, p.noisy);
      if (p.loader_bound)  // a dashed red ring: this point measured the loader, not its bandwidth
        svg.circle(x, y_of(p.ttft_ms.median), 9, "fill=\"none\" stroke=\"#d62728\" stroke-width=\"1.4\" stroke-dasharray=\"2,2\"");
      if (p.unverified) svg.text(x + 7, y_of(p.ttft_ms.median) - 6, "!", 13, "start", "fill=\"#d62728\" font-weight=\"bold\"");
      if (p.recovered_chunks > 0) {  // a ring around the marker and the count: not the load lane's number
        svg.circle(x, y_of(p.ttft_ms.median), 11.5, "fill=\"none\" stroke=\"#9467bd\" stroke-width=\"1.6\"");
        svg.text(x + 11, y_of(p.ttft_ms.median) + 16, cat("R", p.recovered_chunks), 10, "start", "fill=\"#9467bd\"");
      }
      svg.raw(cat("<title>", xml_escape(s.label), " @ ", bandwidth_label(p.bandwidth_gbps), " Gbit/s: median ",
                  fixed(p.ttft_ms.median, 1), " ms (p10 ", fixed(p.ttft_ms.p10, 1), ", p90 ", fixed(p.ttft_ms.p90, 1),
                  ")</title>"));
      any_noisy |= p.noisy;
      any_unverified |= p.unverified;
      any_recovered |= p.recovered_chunks > 0;
      any_loader_bound |= p.loader_bound;
    }
    svg.close_group();

    // Legend entry.
    const double ly = plot_top + 8 + static_cast<double>(i) * 22;
    const double lx = plot_right + 22;
    svg.line(lx, ly, lx + 26, ly, cat("stroke=\"", st.color, "\" stroke-width=\"2\"", dash));
    draw_marker(svg, st.marker, lx + 13, ly, st.color, false);
    svg.text(lx + 34, ly + 4, s.label, 12);
  }
  double note_y = plot_top + 8 + n_series * 22 + 10;
  const double lx = plot_right + 22;
  if (any_noisy) {
    svg.circle(lx + 13, note_y, 4.5, "fill=\"white\" stroke=\"#333\" stroke-width=\"1.6\"");
    svg.text(lx + 34, note_y + 4, "hollow: noisy", 11, "start", "fill=\"#333\"");
    svg.text(lx + 34, note_y + 18, "(p90-p10 > 10% of median)", 10, "start", "fill=\"#666\"");
    note_y += 36;
  }
  if (any_unverified) {
    svg.text(lx + 13, note_y + 5, "!", 13, "middle", "fill=\"#d62728\" font-weight=\"bold\"");
    svg.text(lx + 34, note_y + 4, "not verified", 11, "start", "fill=\"#333\"");
    note_y += 22;
  }
  if (any_recovered) {
    svg.circle(lx + 13, note_y, 11.5, "fill=\"none\" stroke=\"#9467bd\" stroke-width=\"1.6\"");
    svg.text(lx + 34, note_y + 4, "R<n>: n chunks failed to", 11, "start", "fill=\"#333\"");
    svg.text(lx + 34, note_y + 18, "load and were computed", 10, "start", "fill=\"#666\"");
    note_y += 36;
  }
  if (any_loader_bound) {
    svg.circle(lx + 13, note_y, 9, "fill=\"none\" stroke=\"#d62728\" stroke-width=\"1.4\" stroke-dasharray=\"2,2\"");
    svg.text(lx + 34, note_y + 4, "ringed: loader-bound", 11, "start", "fill=\"#333\"");
    svg.text(lx + 34, note_y + 18, "(load rate < 97% of target)", 10, "start", "fill=\"#666\"");
  }
  return svg.str();
}

}  // namespace

std::vector<Figure> render_bandwidth_figures(const RunReport& report) {
  std::vector<Figure> out;
  std::map<std::string, int> used;
  for (const FigureData& f : collect(report)) {
    Figure fig;
    fig.svg = render_one(f, fig.title);
    const Point& c = *f.first;
    std::string stem = slugify(cat(c.model, "-", c.backend, "-ctx", c.context_tokens, "-sfx", c.suffix_tokens, "-chunk",
                                   c.chunk_tokens, "-", source_kind(c.source),
                                   c.bandwidth_trace.empty() ? "" : cat("-", c.bandwidth_trace)));
    const int n = ++used[stem];
    if (n > 1) stem += cat("-", n);
    fig.file_name = cat("ttft-vs-bandwidth-", stem, ".svg");
    out.push_back(std::move(fig));
  }
  return out;
}

}  // namespace cake
