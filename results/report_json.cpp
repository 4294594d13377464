#include "results/report_json.hpp"

#include <cmath>
#include <limits>

#include "common/error.hpp"
#include "results/format.hpp"

namespace cake {

using nlohmann::json;

namespace {

json optional_json(const std::optional<double>& v) { return v ? json(*v) : json(nullptr); }
json optional_json(const std::optional<int>& v) { return v ? json(*v) : json(nullptr); }

json fields_to_json(const AxisFields& fields) {
  json out = json::object();
  for (const AxisField& f : fields) out[f.axis] = f.value.to_json();
  return out;
}

json summary_to_json(const Summary& s) {
  return {{"count", s.count}, {"median", s.median}, {"p10", s.p10},   {"p90", s.p90},
          {"min", s.min},     {"max", s.max},       {"mean", s.mean}, {"stddev", s.stddev}};
}

json optional_json(const std::optional<bool>& v) { return v ? json(*v) : json(nullptr); }

json point_to_json(const Point& p) {
  json out = {{"key", point_key(p)},
          {"model", p.model},
          {"backend", p.backend},
          {"context_tokens", p.context_tokens},
          {"suffix_tokens", p.suffix_tokens},
          {"chunk_tokens", p.chunk_tokens},
          {"source", p.source},
          {"bandwidth_gbps", optional_json(p.bandwidth_gbps)},
          {"bandwidth_trace", p.bandwidth_trace.empty() ? json(nullptr) : json(p.bandwidth_trace)},
          {"bandwidth_min_gbps", optional_json(p.bandwidth_min_gbps)},
          {"mode", p.mode},
          {"codec", p.codec},
          {"checkpoint", p.checkpoint},
          {"axes", fields_to_json(p.axes)},
          {"conditions", fields_to_json(p.conditions)},
          {"warmup", p.warmup},
          {"repeat", p.repeat},
          {"ttft_ms", summary_to_json(p.ttft_ms)},
          {"ttft_ms_samples", p.ttft_ms_samples},
          {"cpu_probe_ms_samples", p.cpu_probe_ms_samples},
          {"process_cpu_ms_samples", p.process_cpu_ms_samples},
          {"noisy", p.noisy},
          {"chunks_total", p.chunks_total},
          {"chunks_computed", p.chunks_computed},
          {"chunks_loaded", p.chunks_loaded},
          {"chunks_recovered", p.chunks_recovered},
          {"recovery_reasons", p.recovery_reasons},
          {"bytes_loaded", p.bytes_loaded},
          {"load_gbps", optional_json(p.load_gbps)},
          {"loader_bound", loader_bound(p)},  // derived; readers recompute it
          {"meet_chunk", optional_json(p.meet_chunk)},
          {"meet_idle_ms", optional_json(p.meet_idle_ms)},
          {"oracle_split_chunk", optional_json(p.oracle_split_chunk)},
          {"first_token", p.first_token},
          {"verified", p.verified},
          {"verify_detail", p.verify_detail}};
  // A lossy codec's quality instead of a pass; absent on other points.
  if (p.lossy) {
    out["lossy"] = true;
    out["first_token_agrees"] = optional_json(p.first_token_agrees);
    out["logits_rel_error"] = optional_json(p.logits_rel_error);
    out["k_rel_error"] = optional_json(p.k_rel_error);
    out["v_rel_error"] = optional_json(p.v_rel_error);
  }
  return out;
}

json codec_quality_to_json(const CodecQuality& q) {
  return {{"codec", q.codec},
          {"store_codec", q.store_codec},
          {"chunk_tokens", q.chunk_tokens},
          {"requests", q.requests},
          {"bytes_per_token", q.bytes_per_token},
          {"compression_ratio", q.compression_ratio},
          {"k_rel_error", q.k_rel_error},
          {"v_rel_error", q.v_rel_error},
          {"logits_rel_error", q.logits_rel_error},
          {"logits_rel_error_max", q.logits_rel_error_max},
          {"first_token_agreements", q.first_token_agreements},
          {"chunks_not_loaded", q.chunks_not_loaded},
          {"decode_gbytes_per_s", optional_json(q.decode_gbytes_per_s)}};
}

json derived_to_json(const DerivedGroup& g) {
  return {{"group_key", g.group_key},
          {"compute_ttft_ms_median", optional_json(g.compute_ttft_ms)},
          {"io_ttft_ms_median", optional_json(g.io_ttft_ms)},
          {"cake_ttft_ms_median", optional_json(g.cake_ttft_ms)},
          {"oracle_ttft_ms_median", optional_json(g.oracle_ttft_ms)},
          {"cake_vs_compute_reduction_pct", optional_json(g.cake_vs_compute_reduction_pct)},
          {"cake_vs_io_reduction_pct", optional_json(g.cake_vs_io_reduction_pct)},
          {"cake_over_oracle", optional_json(g.cake_over_oracle)},
          {"cake_over_best", optional_json(g.cake_over_best)}};
}

json timeline_to_json(const RequestTimeline& t) {
  json events = json::array();
  for (const auto& e : t.events)
    events.push_back({{"lane", e.lane},
                      {"chunk", e.chunk},
                      {"chunks", e.chunks},
                      {"start_ms", e.start_ms},
                      {"end_ms", e.end_ms},
                      {"bytes", e.bytes},
                      {"queue_wait_ms", e.queue_wait_ms},
                      {"ok", e.ok},
                      {"taken_over", e.taken_over},
                      {"collective_ms", e.collective_ms},
                      {"claim_spread_ms", e.claim_spread_ms}});
  return {{"point_key", t.point_key}, {"mode", t.mode}, {"repetition", t.repetition}, {"events", events}};
}

const char* type_name(const json& v) { return v.type_name(); }

// Typed access to one JSON object's fields; every error names the file and the field path.
class Fields {
 public:
  Fields(const json& object, const std::string& origin, std::string path)
      : object_(object), origin_(origin), path_(std::move(path)) {
    if (!object_.is_object())
      throw UsageError(cat(origin_, ": ", path_.empty() ? "top level" : path_, ": expected an object, got ",
                           type_name(object_)));
  }

  std::string where(std::string_view key) const { return path_.empty() ? std::string(key) : cat(path_, ".", key); }

  [[noreturn]] void fail(std::string_view key, std::string_view expected, const json& got) const {
    throw UsageError(cat(origin_, ": ", where(key), ": expected ", expected, ", got ", type_name(got),
                         got.is_primitive() ? cat(" ", got.dump()) : std::string()));
  }

  bool has(const char* key) const { return object_.contains(key); }

  const json& need(const char* key) const {
    const auto it = object_.find(key);
    if (it == object_.end()) throw UsageError(cat(origin_, ": ", where(key), ": missing field"));
    return *it;
  }

  std::string str(const char* key) const {
    const json& v = need(key);
    if (!v.is_string()) fail(key, "a string", v);
    return v.get<std::string>();
  }

  double number(const char* key) const { return number_of(key, need(key)); }

  double number_of(std::string_view key, const json& v) const {
    if (!v.is_number()) fail(key, "a number", v);
    return v.get<double>();
  }

  int64_t integer(const char* key, int64_t lo = std::numeric_limits<int64_t>::min(),
                  int64_t hi = std::numeric_limits<int64_t>::max()) const {
    const json& v = need(key);
    int64_t out = 0;
    if (v.is_number_unsigned()) {
      if (v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) fail(key, "a smaller integer", v);
      out = static_cast<int64_t>(v.get<uint64_t>());
    } else if (v.is_number_integer()) {
      out = v.get<int64_t>();
    } else {
      fail(key, "an integer", v);
    }
    if (out < lo || out > hi) fail(key, cat("an integer in [", lo, ", ", hi, "]"), v);
    return out;
  }

  int int32(const char* key) const {
    return static_cast<int>(integer(key, std::numeric_limits<int>::min(), std::numeric_limits<int>::max()));
  }

  uint64_t unsigned64(const char* key) const {
    const json& v = need(key);
    if (v.is_number_unsigned()) return v.get<uint64_t>();
    if (v.is_number_integer() && v.get<int64_t>() >= 0) return static_cast<uint64_t>(v.get<int64_t>());
    fail(key, "a non-negative integer", v);
  }

  bool boolean(const char* key) const {
    const json& v = need(key);
    if (!v.is_boolean()) fail(key, "true or false", v);
    return v.get<bool>();
  }

  // Optional fields may be absent or null.
  std::optional<double> opt_number(const char* key) const {
    if (!has(key) || object_.at(key).is_null()) return std::nullopt;
    return number(key);
  }
  std::string opt_str(const char* key) const {  // absent or null: ""
    if (!has(key) || object_.at(key).is_null()) return "";
    return str(key);
  }
  std::optional<int> opt_int32(const char* key) const {
    if (!has(key) || object_.at(key).is_null()) return std::nullopt;
    return int32(key);
  }

  const json& array(const char* key) const {
    const json& v = need(key);
    if (!v.is_array()) fail(key, "an array", v);
    return v;
  }

  std::vector<double> numbers(const char* key) const {
    std::vector<double> out;
    const json& a = array(key);
    for (size_t i = 0; i < a.size(); ++i) out.push_back(number_of(cat(key, "[", i, "]"), a[i]));
    return out;
  }

  std::vector<std::string> strings(const char* key) const {
    std::vector<std::string> out;
    const json& a = array(key);
    for (size_t i = 0; i < a.size(); ++i) {
      if (!a[i].is_string()) fail(cat(key, "[", i, "]"), "a string", a[i]);
      out.push_back(a[i].get<std::string>());
    }
    return out;
  }

  Fields object(const char* key) const { return Fields(need(key), origin_, where(key)); }

  const std::string& origin() const { return origin_; }

 private:
  const json& object_;
  const std::string& origin_;
  std::string path_;
};

Summary summary_from(const Fields& f) {
  Summary s;
  s.count = f.int32("count");
  s.median = f.number("median");
  s.p10 = f.number("p10");
  s.p90 = f.number("p90");
  s.min = f.number("min");
  s.max = f.number("max");
  s.mean = f.number("mean");
  s.stddev = f.number("stddev");
  return s;
}

AxisFields fields_from(const Fields& f, const char* key) {
  const json& v = f.need(key);
  if (!v.is_object()) f.fail(key, "an object", v);
  AxisFields out;
  for (const auto& [name, value] : v.items())
    out.push_back({name, AxisValue::from_json(value, cat(f.origin(), ": ", f.where(key), ".", name))});
  return out;
}

// Schema 1 points have no bandwidth_trace, bandwidth_min_gbps, axes or conditions: read_report
// fills what it can from the run's config.
Point point_from(const Fields& f, int schema_version) {
  Point p;
  p.model = f.str("model");
  p.backend = f.str("backend");
  p.context_tokens = f.integer("context_tokens", 0);
  p.suffix_tokens = f.integer("suffix_tokens", 0);
  p.chunk_tokens = f.integer("chunk_tokens", 0);
  p.source = f.str("source");
  p.checkpoint = f.opt_str("checkpoint");  // reports before checkpoints lack it: seeded weights
  // Required but nullable: absent would be ambiguous with "unlimited".
  if (f.need("bandwidth_gbps").is_null()) p.bandwidth_gbps = std::nullopt;
  else p.bandwidth_gbps = f.number("bandwidth_gbps");
  p.mode = f.str("mode");
  p.codec = f.str("codec");
  if (schema_version >= 2) {
    if (!f.need("bandwidth_trace").is_null()) p.bandwidth_trace = f.str("bandwidth_trace");
    p.bandwidth_min_gbps = f.opt_number("bandwidth_min_gbps");
    p.axes = fields_from(f, "axes");
    p.conditions = fields_from(f, "conditions");
  }
  p.warmup = f.int32("warmup");
  p.repeat = f.int32("repeat");
  p.ttft_ms = summary_from(f.object("ttft_ms"));
  p.ttft_ms_samples = f.numbers("ttft_ms_samples");
  if (f.has("cpu_probe_ms_samples")) p.cpu_probe_ms_samples = f.numbers("cpu_probe_ms_samples");  // optional: newer
  if (f.has("process_cpu_ms_samples")) p.process_cpu_ms_samples = f.numbers("process_cpu_ms_samples");
  p.noisy = f.boolean("noisy");
  p.chunks_total = f.int32("chunks_total");
  p.chunks_computed = f.int32("chunks_computed");
  p.chunks_loaded = f.int32("chunks_loaded");
  p.chunks_recovered = f.int32("chunks_recovered");
  p.recovery_reasons = f.strings("recovery_reasons");
  p.bytes_loaded = f.unsigned64("bytes_loaded");
  p.load_gbps = f.opt_number("load_gbps");
  p.meet_chunk = f.opt_int32("meet_chunk");
  p.meet_idle_ms = f.opt_number("meet_idle_ms");
  p.oracle_split_chunk = f.opt_int32("oracle_split_chunk");
  p.first_token = f.integer("first_token");
  p.verified = f.boolean("verified");
  p.verify_detail = f.str("verify_detail");
  if (f.has("lossy")) {  // newer: lossy codecs
    p.lossy = f.boolean("lossy");
    if (f.has("first_token_agrees") && !f.need("first_token_agrees").is_null())
      p.first_token_agrees = f.boolean("first_token_agrees");
    p.logits_rel_error = f.opt_number("logits_rel_error");
    p.k_rel_error = f.opt_number("k_rel_error");
    p.v_rel_error = f.opt_number("v_rel_error");
  }
  if (!p.cpu_probe_ms_samples.empty() && p.cpu_probe_ms_samples.size() != p.ttft_ms_samples.size())
    throw UsageError(cat(f.origin(), ": ", f.where("cpu_probe_ms_samples"), ": has ", p.cpu_probe_ms_samples.size(),
                         " values but ttft_ms_samples has ", p.ttft_ms_samples.size()));
  if (p.ttft_ms.count != static_cast<int>(p.ttft_ms_samples.size()))
    throw UsageError(cat(f.origin(), ": ", f.where("ttft_ms.count"), ": is ", p.ttft_ms.count, " but ttft_ms_samples has ",
                         p.ttft_ms_samples.size(), " values"));
  return p;
}

TimelineEvent event_from(const Fields& f) {
  TimelineEvent e;
  e.lane = f.str("lane");
  e.chunk = f.int32("chunk");
  e.start_ms = f.number("start_ms");
  e.end_ms = f.number("end_ms");
  e.bytes = f.unsigned64("bytes");
  e.queue_wait_ms = f.number("queue_wait_ms");
  e.ok = f.boolean("ok");
  // Newer fields (reports before the compute lane's runs and take-overs lack them).
  if (f.has("chunks")) e.chunks = f.int32("chunks");
  if (f.has("taken_over")) e.taken_over = f.boolean("taken_over");
  if (f.has("collective_ms")) e.collective_ms = f.number("collective_ms");
  if (f.has("claim_spread_ms")) e.claim_spread_ms = f.number("claim_spread_ms");
  if (e.chunks < 1) throw UsageError(cat(f.origin(), ": ", f.where("chunks"), ": must be at least 1, got ", e.chunks));
  if (e.end_ms < e.start_ms)
    throw UsageError(cat(f.origin(), ": ", f.where("end_ms"), ": ", e.end_ms, " is before start_ms ", e.start_ms));
  return e;
}

CodecQuality codec_quality_from(const Fields& f) {
  CodecQuality q;
  q.codec = f.str("codec");
  q.store_codec = f.str("store_codec");
  q.chunk_tokens = f.integer("chunk_tokens", 0);
  q.requests = f.int32("requests");
  q.bytes_per_token = f.number("bytes_per_token");
  q.compression_ratio = f.number("compression_ratio");
  q.k_rel_error = f.number("k_rel_error");
  q.v_rel_error = f.number("v_rel_error");
  q.logits_rel_error = f.number("logits_rel_error");
  q.logits_rel_error_max = f.number("logits_rel_error_max");
  q.first_token_agreements = f.int32("first_token_agreements");
  q.chunks_not_loaded = f.int32("chunks_not_loaded");
  q.decode_gbytes_per_s = f.opt_number("decode_gbytes_per_s");
  return q;
}

RequestTimeline timeline_from(const Fields& f, const std::string& path) {
  RequestTimeline t;
  t.point_key = f.str("point_key");
  t.mode = f.str("mode");
  t.repetition = f.int32("repetition");
  const json& events = f.array("events");
  for (size_t i = 0; i < events.size(); ++i)
    t.events.push_back(event_from(Fields(events[i], f.origin(), cat(path, ".events[", i, "]"))));
  return t;
}

// A schema 1 config holds the raw flags. A bandwidth trace left the points' bandwidth null, as if
// unlimited, and injected faults or compute delay were recorded nowhere else: both become what
// schema 2 records, so such a point never matches a clean or unlimited one.
void upgrade_schema_1(RunReport& r) {
  if (!r.config.is_object()) return;
  const auto text = [&](const char* key) -> std::string {
    const auto it = r.config.find(key);
    return it != r.config.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  const std::string trace = text("bandwidth_trace");
  const std::string fault = text("inject_fault");
  double delay_ms = 0;
  if (const auto it = r.config.find("inject_compute_delay_ms"); it != r.config.end() && it->is_number())
    delay_ms = it->get<double>();
  for (Point& p : r.points) {
    // Compute-only runs without a loading mode have source "none": nothing was throttled.
    if (p.source != "none" && !trace.empty()) p.bandwidth_trace = cat("trace:", trace, "@unhashed");
    if (delay_ms > 0) p.conditions.push_back({"inject_compute_delay_ms", AxisValue::real(delay_ms)});
    if (!fault.empty()) p.conditions.push_back({"inject_fault", AxisValue::text(fault)});
  }
}

}  // namespace

json report_to_json(const RunReport& report) {
  json points = json::array();
  for (const auto& p : report.points) points.push_back(point_to_json(p));
  json derived = json::array();
  for (const auto& g : derive_groups(report)) derived.push_back(derived_to_json(g));
  json timelines = json::array();
  for (const auto& t : report.timelines) timelines.push_back(timeline_to_json(t));
  json quality = json::array();
  for (const auto& q : report.codec_quality) quality.push_back(codec_quality_to_json(q));
  // The model in memory is the current one, whatever version the report was read from.
  return {{"schema_version", kReportSchemaVersion},
          {"created_utc", report.created_utc},
          {"command_line", report.command_line},
          {"seed", report.seed},
          {"repetitions_paired", report.repetitions_paired},
          {"environment", report.environment},
          {"config", report.config},
          {"points", points},
          {"derived", derived},
          {"codec_quality", quality},
          {"timelines", timelines}};
}

std::string render_json(const RunReport& report) { return report_to_json(report).dump(2) + "\n"; }

RunReport report_from_json(const json& j, const std::string& origin) {
  const Fields top(j, origin, "");
  RunReport r;
  r.schema_version = top.int32("schema_version");
  if (r.schema_version < 1 || r.schema_version > kReportSchemaVersion)
    throw UsageError(cat(origin, ": schema_version is ", r.schema_version, ", this cake-bench reads versions 1 to ",
                         kReportSchemaVersion, "; use the cake-bench that wrote it"));
  r.created_utc = top.str("created_utc");
  r.command_line = top.str("command_line");
  r.seed = top.unsigned64("seed");
  r.repetitions_paired = top.boolean("repetitions_paired");
  r.environment = top.need("environment");
  if (!r.environment.is_object()) top.fail("environment", "an object", r.environment);
  r.config = top.need("config");
  const json& points = top.array("points");
  for (size_t i = 0; i < points.size(); ++i)
    r.points.push_back(point_from(Fields(points[i], origin, cat("points[", i, "]")), r.schema_version));
  if (r.schema_version == 1) upgrade_schema_1(r);
  const json& timelines = top.array("timelines");
  for (size_t i = 0; i < timelines.size(); ++i) {
    const std::string path = cat("timelines[", i, "]");
    r.timelines.push_back(timeline_from(Fields(timelines[i], origin, path), path));
  }
  if (top.has("codec_quality")) {  // newer: absent in reports before codecs
    const json& quality = top.array("codec_quality");
    for (size_t i = 0; i < quality.size(); ++i)
      r.codec_quality.push_back(codec_quality_from(Fields(quality[i], origin, cat("codec_quality[", i, "]"))));
  }
  return r;
}

RunReport read_report(const std::string& path) {
  const std::string text = read_text_file(path);
  json j;
  try {
    j = json::parse(text);
  } catch (const json::parse_error& e) {
    throw UsageError(cat(path, ": not valid JSON: ", e.what()));
  }
  return report_from_json(j, path);
}

}  // namespace cake
