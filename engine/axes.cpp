#include "engine/axes.hpp"

#include <algorithm>

#include "common/error.hpp"
#include "common/units.hpp"
#include "engine/mode.hpp"
#include "engine/source_spec.hpp"

namespace cake {
namespace {

std::string print_plain(const AxisValue& v) { return v.print(); }

std::vector<AxisValue> texts(const std::vector<std::string>& items) {
  std::vector<AxisValue> out;
  for (const std::string& s : items) out.push_back(AxisValue::text(s));
  return out;
}

// An axis the sweep only passes on: its values are names from `accepted`; SweepConfig::configure
// applies them. `neutral` is what cake-bench did before the axis existed.
SweepAxis generic_axis(std::string name, std::string help, std::string neutral, std::vector<std::string> accepted,
                       std::string why_no_more) {
  SweepAxis a;
  a.name = name;
  a.flag = cat("--", name);
  std::string accepted_text;
  for (const std::string& v : accepted) accepted_text += cat(accepted_text.empty() ? "" : ", ", v);
  a.help = cat(help, " (comma list; accepted: ", accepted_text, ") [default: ", neutral, "]");
  a.default_text = [neutral](bool) { return neutral; };
  a.set = [name, neutral, accepted, accepted_text, why_no_more](const std::string& text, SweepConfig& c) {
    AxisValues axis{name, {}, AxisValue::text(neutral)};
    for (const std::string& item : split_list(text, name)) {
      if (std::find(accepted.begin(), accepted.end(), item) == accepted.end())
        throw UsageError(cat("invalid --", name, " '", item, "': accepted: ", accepted_text,
                             why_no_more.empty() ? "" : cat(" (", why_no_more, ")")));
      axis.values.push_back(AxisValue::text(item));
    }
    auto it = std::find_if(c.axes.begin(), c.axes.end(), [&](const AxisValues& v) { return v.name == name; });
    if (it == c.axes.end()) c.axes.push_back(std::move(axis));
    else *it = std::move(axis);
  };
  a.values = [name](const SweepConfig& c) {
    for (const AxisValues& axis : c.axes)
      if (axis.name == name) return axis.values;
    return std::vector<AxisValue>{};
  };
  a.print = print_plain;
  return a;
}

std::vector<SweepAxis> make_axes() {
  std::vector<SweepAxis> axes;

  // Generic axes first: the sweep nests them outermost, in this order.
  // The CUDA backend's attention: auto (cuDNN's fused attention when it plans here, else mma), cudnn,
  // or mma (the portable sm_80 mma.sync kernel). The backend is built for one (one value a run);
  // the report's backend line says which ran. The CPU backend has one attention: auto only.
  axes.push_back(generic_axis("attention", "Attention kernel of the CUDA backend", "auto", {"auto", "cudnn", "mma"},
                              ""));

  SweepAxis chunk;
  chunk.name = "chunk";
  chunk.flag = "--chunk";
  chunk.help = "KV chunk sizes in tokens (comma list, e.g. 512,1024) [default: 1024 GPU, 128 CPU]";
  chunk.prepare = true;
  // GPU default 1024: on an H100, llama-3-8b compute-only at 32K took 1953 ms in 512-token chunks,
  // 1722 ms in 1024 and 1704 ms in 2048 (results/h100/chunk-sizes): 2048 gains 1% and doubles the
  // granularity of the meet.
  chunk.default_text = [](bool gpu) { return std::string(gpu ? "1024" : "128"); };
  chunk.set = [](const std::string& text, SweepConfig& c) {
    c.chunk_tokens.clear();
    for (const std::string& item : split_list(text, "chunk")) {
      const int64_t tokens = parse_token_count(item);
      if (tokens < 1 || tokens > (1 << 20))
        throw UsageError(cat("invalid chunk size '", item, "': 1 to 1048576 tokens"));
      c.chunk_tokens.push_back(static_cast<int32_t>(tokens));
    }
  };
  chunk.values = [](const SweepConfig& c) {
    std::vector<AxisValue> out;
    for (int32_t t : c.chunk_tokens) out.push_back(AxisValue::integer(t));
    return out;
  };
  chunk.print = [](const AxisValue& v) { return cat(v.print(), " tokens"); };
  axes.push_back(std::move(chunk));

  SweepAxis source;
  source.name = "source";
  source.flag = "--source";
  source.help = "Where loads come from: file, file:DIR, mem, tcp, tcp://HOST:PORT (comma list) [default: file]";
  source.default_text = [](bool) { return std::string("file"); };
  source.set = [](const std::string& text, SweepConfig& c) {
    c.sources.clear();
    for (const std::string& item : split_list(text, "source")) c.sources.push_back(parse_source_spec(item));
  };
  source.values = [](const SweepConfig& c) {
    std::vector<std::string> out;
    for (const SourceSpec& s : c.sources) out.push_back(s.text());
    return texts(out);
  };
  source.print = print_plain;
  axes.push_back(std::move(source));

  // The store's KV codec (loaders/kv_codec.hpp). Each value has its own store (the codec and its
  // parameters are in the store key); compute-only does not depend on it and is measured once.
  SweepAxis codec;
  codec.name = "codec";
  codec.flag = "--codec";
  {
    std::string accepted;
    for (CodecKind k : codec_kinds()) accepted += cat(accepted.empty() ? "" : ", ", codec_kind_name(k));
    codec.help = cat("KV codecs of the stores loaded (comma list; accepted: ", accepted,
                     "): none is bit-exact; int8/int4 are per-token, per-head, group-wise quantization; cachegen is "
                     "CacheGen-style (anchor deltas, per-layer levels, rANS); lossy codecs' points report their "
                     "quality instead of 'verified' [default: none]");
  }
  codec.prepare = true;
  codec.default_text = [](bool) { return std::string("none"); };
  codec.set = [](const std::string& text, SweepConfig& c) {
    c.codecs.clear();
    for (const std::string& item : split_list(text, "codec")) {
      const CodecKind kind = parse_codec_kind(item);
      if (std::find(c.codecs.begin(), c.codecs.end(), kind) != c.codecs.end())
        throw UsageError(cat("--codec names '", item, "' twice"));
      c.codecs.push_back(kind);
    }
  };
  codec.values = [](const SweepConfig& c) {
    std::vector<std::string> out;
    for (CodecKind k : c.codecs) out.push_back(codec_kind_name(k));
    return texts(out);
  };
  codec.print = print_plain;
  axes.push_back(std::move(codec));

  SweepAxis bandwidth;
  bandwidth.name = "bandwidth";
  bandwidth.flag = "--bandwidth";
  bandwidth.help =
      "Load bandwidths: '8gbps,2GB/s', range '1gbps..64gbps:x2', 'unlimited', or 'trace:FILE' (a 't_ms,gbps' CSV "
      "whose rate changes during a request; it is its own value, labelled with the file's content hash) "
      "[default: 8gbps,32gbps,unlimited on a GPU; 0.05gbps,0.2gbps,unlimited on the CPU]";
  bandwidth.default_text = [](bool gpu) {
    return std::string(gpu ? "8gbps,32gbps,unlimited" : "0.05gbps,0.2gbps,unlimited");
  };
  bandwidth.set = [](const std::string& text, SweepConfig& c) { c.bandwidths = parse_bandwidth_settings(text); };
  bandwidth.values = [](const SweepConfig& c) {
    std::vector<AxisValue> out;
    for (const BandwidthSetting& b : c.bandwidths) out.push_back(b.identity());
    return out;
  };
  bandwidth.print = [](const AxisValue& v) {
    if (v.is_none()) return std::string("unlimited");
    if (v.is_real()) return cat(v.print(), " Gbps");
    return v.print();
  };
  axes.push_back(std::move(bandwidth));

  SweepAxis mode;
  mode.name = "mode";
  mode.flag = "--mode";
  mode.help = "Modes: compute, io, cake, oracle, split=F (comma list; alternated within each repetition) "
              "[default: compute,io,cake,oracle]";
  mode.default_text = [](bool) { return std::string("compute,io,cake,oracle"); };
  mode.set = [](const std::string& text, SweepConfig& c) {
    c.modes.clear();
    for (const std::string& item : split_list(text, "mode")) c.modes.push_back(parse_mode(item));
  };
  mode.values = [](const SweepConfig& c) {
    std::vector<std::string> out;
    for (const Mode& m : c.modes) out.push_back(m.name());
    return texts(out);
  };
  mode.print = print_plain;
  axes.push_back(std::move(mode));
  return axes;
}

}  // namespace

const std::vector<SweepAxis>& sweep_axes() {
  static const std::vector<SweepAxis> axes = make_axes();
  return axes;
}

const SweepAxis& sweep_axis(std::string_view name) {
  for (const SweepAxis& a : sweep_axes())
    if (a.name == name) return a;
  throw InternalError(cat("no sweep axis named '", name, "'"));
}

void resolve_axes(const std::map<std::string, std::string>& given, bool gpu, bool sweep, SweepConfig& config,
                  std::vector<std::string>& notes) {
  for (const auto& [name, text] : given) sweep_axis(name);  // every given key is an axis
  for (const SweepAxis& a : sweep_axes()) {
    if (!sweep && !a.prepare) continue;
    const auto it = given.find(a.name);
    const bool defaulted = it == given.end() || it->second.empty();
    const std::string text = defaulted ? a.default_text(gpu) : it->second;
    a.set(text, config);
    if (defaulted && a.default_text(true) != a.default_text(false)) {
      std::string values;
      for (const AxisValue& v : a.values(config)) values += cat(values.empty() ? "" : ", ", a.print(v));
      notes.push_back(cat(a.name, ": ", values, " (default for a ", gpu ? "GPU" : "CPU", " run)"));
    }
  }
}

nlohmann::json resolved_axes_json(const SweepConfig& config) {
  nlohmann::json out = nlohmann::json::object();
  for (const SweepAxis& a : sweep_axes()) {
    nlohmann::json values = nlohmann::json::array();
    for (const AxisValue& v : a.values(config)) values.push_back(v.to_json());
    out[a.name] = std::move(values);
  }
  return out;
}

AxisFields sweep_conditions(const SweepConfig& config) {
  AxisFields out;
  if (config.inject_compute_delay_ms > 0)
    out.push_back({"inject_compute_delay_ms", AxisValue::real(config.inject_compute_delay_ms)});
  if (config.inject_compute_slowdown > 1)
    out.push_back({"inject_compute_slowdown", AxisValue::real(config.inject_compute_slowdown)});
  if (config.inject_load_slowdown > 1) out.push_back({"inject_load_slowdown", AxisValue::real(config.inject_load_slowdown)});
  const std::vector<int>& failing = config.source_options.inject_fail_chunks;
  if (!failing.empty()) {
    std::string chunks;
    for (int c : failing) chunks += cat(chunks.empty() ? "" : ",", c);
    out.push_back({"inject_fault", AxisValue::text(chunks)});
  }
  return out;
}

}  // namespace cake
