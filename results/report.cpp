#include "results/report.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <numeric>
#include <stdexcept>

#include "common/error.hpp"
#include "results/format.hpp"

namespace cake {

std::string bandwidth_label(const std::optional<double>& bandwidth_gbps) {
  return bandwidth_gbps ? short_number(*bandwidth_gbps) : std::string("unlimited");
}

std::string bandwidth_label(const Point& p) {
  if (p.bandwidth_trace.empty()) return bandwidth_label(p.bandwidth_gbps);
  return cat(p.bandwidth_trace, " (mean ", p.bandwidth_gbps ? short_number(*p.bandwidth_gbps) : "?", ", min ",
             p.bandwidth_min_gbps ? short_number(*p.bandwidth_min_gbps) : "?", ")");
}

namespace {

AxisValue bandwidth_value(const Point& p) {
  if (!p.bandwidth_trace.empty()) return AxisValue::text(p.bandwidth_trace);
  return p.bandwidth_gbps ? AxisValue::real(*p.bandwidth_gbps) : AxisValue::none();
}

AxisFields sorted_by_axis(AxisFields fields) {
  std::sort(fields.begin(), fields.end());
  return fields;
}

}  // namespace

AxisFields group_identity(const Point& p, bool with_conditions) {
  AxisFields id = {{"model", AxisValue::text(p.model)},
                   {"backend", AxisValue::text(p.backend)},
                   {"context_tokens", AxisValue::integer(p.context_tokens)},
                   {"suffix_tokens", AxisValue::integer(p.suffix_tokens)},
                   {"chunk_tokens", AxisValue::integer(p.chunk_tokens)},
                   {"source", AxisValue::text(p.source)},
                   {"bandwidth", bandwidth_value(p)},
                   {"codec", AxisValue::text(p.codec)}};
  // Checkpoint weights (folder @ content fingerprint); seeded weights leave it out, so reports from
  // before checkpoints still match.
  if (!p.checkpoint.empty()) id.push_back({"checkpoint", AxisValue::text(p.checkpoint)});
  for (AxisField& f : sorted_by_axis(p.axes)) id.push_back(std::move(f));
  if (with_conditions)
    for (const AxisField& f : sorted_by_axis(p.conditions)) id.push_back({cat("condition.", f.axis), f.value});
  return id;
}

AxisFields point_identity(const Point& p, bool with_conditions) {
  AxisFields id = group_identity(p, with_conditions);
  id.push_back({"mode", AxisValue::text(p.mode)});
  return id;
}

std::string group_key(const Point& p) {
  std::string key = cat(p.model, "/", p.backend, " ctx=", p.context_tokens, " sfx=", p.suffix_tokens,
                        " chunk=", p.chunk_tokens, " src=", p.source, " bw=",
                        p.bandwidth_trace.empty() ? bandwidth_label(p.bandwidth_gbps) : p.bandwidth_trace,
                        " codec=", p.codec, p.checkpoint.empty() ? std::string() : cat(" ckpt=", p.checkpoint));
  for (const AxisField& f : sorted_by_axis(p.axes)) key += cat(" ", f.axis, "=", f.value.print());
  for (const AxisField& f : sorted_by_axis(p.conditions)) key += cat(" ", f.axis, "=", f.value.print());
  return key;
}

bool loader_bound(const Point& p) {
  return p.bandwidth_gbps && p.load_gbps && *p.load_gbps < kLoaderBoundShare * *p.bandwidth_gbps;
}

std::string point_key(const Point& p) { return cat(group_key(p), " mode=", p.mode); }

std::string source_kind(std::string_view source) {
  const size_t colon = source.find(':');
  return std::string(colon == std::string_view::npos ? source : source.substr(0, colon));
}

bool is_noisy(const Summary& s) {
  if (s.count < 2 || s.median <= 0) return false;
  return (s.p90 - s.p10) / s.median > kNoisySpreadRatio;
}

void finalize_point(Point& p) {
  p.ttft_ms = summarize(p.ttft_ms_samples);
  p.noisy = is_noisy(p.ttft_ms);
}

size_t median_repetition(std::span<const double> ttft_ms_samples) {
  if (ttft_ms_samples.empty()) throw InternalError("median repetition of no samples");
  std::vector<size_t> order(ttft_ms_samples.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return ttft_ms_samples[a] < ttft_ms_samples[b]; });
  return order[(order.size() - 1) / 2];
}

namespace {

int mode_rank(std::string_view mode) {
  if (mode == "compute") return 0;
  if (mode == "io") return 1;
  if (mode == "cake") return 2;
  if (mode.starts_with("split=")) return 3;
  if (mode == "oracle") return 4;
  return 5;
}

double split_fraction(std::string_view mode) {
  try {
    return std::stod(std::string(mode.substr(6)));
  } catch (const std::exception&) {
    return 0;  // unparsable splits sort first among splits, then by name
  }
}

}  // namespace

bool mode_less(std::string_view a, std::string_view b) {
  const int ra = mode_rank(a), rb = mode_rank(b);
  if (ra != rb) return ra < rb;
  if (ra == 3) {
    const double fa = split_fraction(a), fb = split_fraction(b);
    if (fa != fb) return fa < fb;
  }
  return a < b;
}

std::vector<DerivedGroup> derive_groups(const RunReport& report) {
  std::vector<DerivedGroup> groups;
  auto group_for = [&](const std::string& key) -> DerivedGroup& {
    for (auto& g : groups)
      if (g.group_key == key) return g;
    groups.push_back(DerivedGroup{.group_key = key});
    return groups.back();
  };
  for (const Point& p : report.points) {
    DerivedGroup& g = group_for(group_key(p));
    if (p.ttft_ms_samples.empty()) continue;
    const double median = p.ttft_ms.median;
    if (p.mode == "compute") g.compute_ttft_ms = median;
    if (p.mode == "io") g.io_ttft_ms = median;
    if (p.mode == "cake") g.cake_ttft_ms = median;
    if (p.mode == "oracle") g.oracle_ttft_ms = median;
  }
  for (DerivedGroup& g : groups) {
    if (!g.cake_ttft_ms) continue;
    const double cake = *g.cake_ttft_ms;
    if (g.compute_ttft_ms && *g.compute_ttft_ms > 0)
      g.cake_vs_compute_reduction_pct = 100.0 * (1.0 - cake / *g.compute_ttft_ms);
    if (g.io_ttft_ms && *g.io_ttft_ms > 0) g.cake_vs_io_reduction_pct = 100.0 * (1.0 - cake / *g.io_ttft_ms);
    if (g.oracle_ttft_ms && *g.oracle_ttft_ms > 0) g.cake_over_oracle = cake / *g.oracle_ttft_ms;
    if (g.compute_ttft_ms && g.io_ttft_ms && std::min(*g.compute_ttft_ms, *g.io_ttft_ms) > 0)
      g.cake_over_best = cake / std::min(*g.compute_ttft_ms, *g.io_ttft_ms);
  }
  return groups;
}

const DerivedGroup* find_group(const std::vector<DerivedGroup>& groups, std::string_view key) {
  for (const auto& g : groups)
    if (g.group_key == key) return &g;
  return nullptr;
}

std::string utc_now_iso8601() {
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm utc{};
  gmtime_r(&now, &utc);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return buf;
}

std::vector<CodecQuality> aggregate_codec_quality(const std::vector<CodecSample>& samples) {
  std::vector<CodecQuality> rows;
  struct Sums {
    uint64_t store_bytes = 0, raw_bytes = 0;
    int64_t tokens = 0;
  };
  std::vector<Sums> sums;
  std::vector<std::pair<uint64_t, int64_t>> decode;  // decoded bytes, ns
  for (const CodecSample& s : samples) {
    auto it = std::find_if(rows.begin(), rows.end(),
                           [&](const CodecQuality& q) { return q.codec == s.codec && q.chunk_tokens == s.chunk_tokens; });
    if (it == rows.end()) {
      CodecQuality q;
      q.codec = s.codec;
      q.store_codec = s.store_codec;
      q.chunk_tokens = s.chunk_tokens;
      rows.push_back(q);
      sums.emplace_back();
      decode.emplace_back(0, 0);
      it = rows.end() - 1;
    }
    CodecQuality& q = *it;
    Sums& t = sums[static_cast<size_t>(it - rows.begin())];
    ++q.requests;
    t.store_bytes += s.store_bytes;
    t.raw_bytes += s.raw_bytes;
    t.tokens += s.prefix_tokens;
    q.k_rel_error += s.k_rel_error;
    q.v_rel_error += s.v_rel_error;
    q.logits_rel_error += s.logits_rel_error;
    q.logits_rel_error_max = std::max(q.logits_rel_error_max, s.logits_rel_error);
    q.first_token_agreements += s.first_token_agrees ? 1 : 0;
    q.chunks_not_loaded += s.chunks_total - s.chunks_loaded;
    decode[static_cast<size_t>(it - rows.begin())].first += s.decoded_bytes;
    decode[static_cast<size_t>(it - rows.begin())].second += s.decode_ns;
  }
  for (size_t i = 0; i < rows.size(); ++i) {
    CodecQuality& q = rows[i];
    q.k_rel_error /= q.requests;
    q.v_rel_error /= q.requests;
    q.logits_rel_error /= q.requests;
    q.bytes_per_token = sums[i].tokens > 0 ? static_cast<double>(sums[i].store_bytes) / static_cast<double>(sums[i].tokens) : 0;
    q.compression_ratio =
        sums[i].store_bytes > 0 ? static_cast<double>(sums[i].raw_bytes) / static_cast<double>(sums[i].store_bytes) : 0;
    if (decode[i].second > 0)
      q.decode_gbytes_per_s = static_cast<double>(decode[i].first) / static_cast<double>(decode[i].second);
  }
  return rows;
}

}  // namespace cake
