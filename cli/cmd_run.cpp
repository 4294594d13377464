// `cake-bench run`: the sweep, its progress, and the report in every format.
// `cake-bench prepare`: only the stores a run would need (untimed work done ahead).
#include <algorithm>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>

#include "cli/commands.hpp"
#include "cli/exit_codes.hpp"
#include "cli/json_config.hpp"
#include "cli/progress.hpp"
#include "cli/run_flags.hpp"
#include "common/error.hpp"
#include "common/sysinfo.hpp"
#include "common/units.hpp"
#include "engine/axes.hpp"
#include "engine/source_provider.hpp"
#include "engine/store_prep.hpp"
#include "engine/sweep.hpp"
#include "kernels/backend_factory.hpp"
#include "results/format.hpp"
#include "results/report.hpp"
#include "results/report_json.hpp"
#include "results/writers.hpp"
#include "workloads/trace/replay.hpp"
#include "workloads/trace/replay_report.hpp"

namespace cake {
namespace {

std::string default_out_dir() {
  char stamp[32];
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
  return cat("./cake-results/", stamp);
}

// The attention axis' one value (run_flags allows one a run): "auto" when it is not given.
std::string attention_of(const SweepConfig& sweep) {
  for (const AxisValues& axis : sweep.axes)
    if (axis.name == "attention" && !axis.values.empty()) return axis.values.front().print();
  return "auto";
}

BackendOptions backend_options(const Resolved& r, const RunFlags& f, LoadProgressBar* load_bar) {
  BackendOptions o;
  o.checkpoint = r.checkpoint;
  if (load_bar != nullptr) o.load_progress = [load_bar](uint64_t done, uint64_t total) { load_bar->update(done, total); };
  for (const Request& req : r.sweep.requests) {
    o.max_context_tokens = std::max<int64_t>(o.max_context_tokens, static_cast<int64_t>(req.prefix.size() + req.suffix.size()));
    o.max_chunk_tokens = std::max<int64_t>(o.max_chunk_tokens, static_cast<int64_t>(req.suffix.size()));
  }
  for (int32_t c : r.sweep.chunk_tokens)
    o.max_chunk_tokens = std::max<int64_t>(o.max_chunk_tokens, static_cast<int64_t>(c) * std::max(1, r.sweep.compute_tokens / c));
  o.cpu_threads = f.cpu_threads;
  o.attention = parse_attention_choice(attention_of(r.sweep));
  o.tp = f.tp;
  o.tp_rank = f.tp_rank;
  o.tp_id_file = f.tp_id_file;
  return o;
}

std::string source_label(const SourceSpec& spec, const std::string& store_dir) {
  if (spec.kind == SourceSpec::Kind::file) return cat("file:", spec.location.empty() ? store_dir : spec.location);
  return spec.text();
}

Point to_point(const PointResult& r, const std::string& model, const std::string& backend, const SweepConfig& s,
               const std::string& checkpoint) {
  Point p;
  p.model = model;
  p.checkpoint = checkpoint;
  p.backend = backend;
  p.context_tokens = r.context_tokens;
  p.suffix_tokens = r.suffix_tokens;
  p.chunk_tokens = r.chunk_tokens;
  p.source = r.source == "none" ? "none" : source_label(parse_source_spec(r.source), s.store_dir);
  // Compute-only points carry their group's bandwidth (they are shown in every group); a run
  // without loading modes has none.
  if (r.source != "none") {
    const BandwidthSetting& bw = r.bandwidth;
    if (bw.is_trace()) {
      p.bandwidth_trace = bw.trace_label;
      p.bandwidth_gbps = bytes_per_sec_to_gbps(bw.trace_mean_bytes_per_sec);
      p.bandwidth_min_gbps = bytes_per_sec_to_gbps(bw.trace_min_bytes_per_sec);
    } else if (bw.bytes_per_sec) {
      p.bandwidth_gbps = bytes_per_sec_to_gbps(*bw.bytes_per_sec);
    }
  }
  p.mode = r.mode.name();
  p.codec = r.codec;
  p.axes = r.axes;
  p.conditions = r.conditions;
  p.warmup = s.warmup;
  p.repeat = s.repeat;
  for (const RequestOutcome& o : r.reps) p.ttft_ms_samples.push_back(o.ttft_ms);
  for (const RequestOutcome& o : r.reps)
    if (o.cpu_probe_ms) p.cpu_probe_ms_samples.push_back(*o.cpu_probe_ms);
  if (p.cpu_probe_ms_samples.size() != p.ttft_ms_samples.size()) p.cpu_probe_ms_samples.clear();
  for (const RequestOutcome& o : r.reps) p.process_cpu_ms_samples.push_back(o.process_cpu_ms);
  finalize_point(p);
  const RequestOutcome& rep = r.reps.at(median_repetition(p.ttft_ms_samples));
  p.chunks_total = rep.chunks_total;
  p.chunks_computed = rep.chunks_computed;
  p.chunks_loaded = rep.chunks_loaded;
  p.chunks_recovered = rep.chunks_recovered;
  p.recovery_reasons = rep.recovery_reasons;
  p.bytes_loaded = rep.bytes_loaded;
  if (rep.bytes_loaded > 0) p.load_gbps = rep.load_gbps;
  if (r.mode.kind == ModeKind::cake || r.mode.kind == ModeKind::split || r.mode.kind == ModeKind::oracle) {
    p.meet_chunk = rep.meet_chunk;
    if (rep.chunks_computed > 0 && rep.chunks_loaded > 0) p.meet_idle_ms = rep.meet_idle_ms;
  }
  if (r.mode.kind == ModeKind::oracle) p.oracle_split_chunk = r.mode.split_chunk;
  p.first_token = rep.first_token.token_id;
  p.verified = r.verification.passed;
  p.verify_detail = r.verification.detail;
  if (r.verification.lossy) {
    p.lossy = true;
    p.first_token_agrees = r.verification.first_token_agrees;
    p.logits_rel_error = r.verification.logits_rel_error;
    p.k_rel_error = r.verification.k_rel_error;
    p.v_rel_error = r.verification.v_rel_error;
  }
  return p;
}

RequestTimeline to_timeline(const PointResult& r, const Point& p) {
  RequestTimeline t;
  t.point_key = point_key(p);
  t.mode = p.mode;
  const size_t rep_index = median_repetition(p.ttft_ms_samples);
  t.repetition = static_cast<int>(rep_index);
  const RequestOutcome& rep = r.reps.at(rep_index);
  for (const ChunkEvent& e : rep.timeline) {
    TimelineEvent ev;
    ev.chunk = e.chunk;
    ev.chunks = e.chunks;
    ev.ok = e.ok;
    ev.taken_over = e.taken_over;
    ev.collective_ms = e.collective_ms;
    ev.claim_spread_ms = ns_to_ms(e.claim_spread_ns);
    if (e.lane == Lane::compute) {
      ev.lane = "compute";
      ev.start_ms = ns_to_ms(e.start_ns);
      ev.end_ms = ns_to_ms(e.end_ns);
      t.events.push_back(ev);
      continue;
    }
    ev.lane = "load";
    ev.start_ms = ns_to_ms(e.start_ns);
    ev.end_ms = ns_to_ms(e.ok ? e.read_end_ns : e.end_ns);
    ev.bytes = e.bytes;
    ev.queue_wait_ms = ns_to_ms(e.start_ns - e.claim_ns);
    t.events.push_back(ev);
    if (e.ok) {
      TimelineEvent h2d = ev;
      h2d.lane = "h2d";
      h2d.start_ms = ns_to_ms(e.h2d_start_ns);
      h2d.end_ms = ns_to_ms(e.end_ns);
      h2d.queue_wait_ms = ns_to_ms(e.h2d_start_ns - e.read_end_ns);
      if (e.decode_ns > 0) {
        // The decode step ends the chunk's load (it is resident once decoded): its own event.
        TimelineEvent decode = h2d;
        decode.lane = "decode";
        decode.start_ms = ns_to_ms(e.end_ns - e.decode_ns);
        decode.queue_wait_ms = 0;
        decode.bytes = e.decoded_bytes;
        h2d.end_ms = decode.start_ms;
        t.events.push_back(h2d);
        t.events.push_back(decode);
      } else {
        t.events.push_back(h2d);
      }
    }
  }
  TimelineEvent suffix;
  suffix.lane = "suffix";
  suffix.start_ms = rep.suffix_start_ms;
  suffix.end_ms = rep.suffix_end_ms;
  t.events.push_back(suffix);
  return t;
}

nlohmann::json config_json(const RunFlags& f, const Resolved& r, const std::string& choice_name) {
  nlohmann::json model = {{"name", r.model.name},           {"layers", r.model.layers},
                          {"hidden", r.model.hidden},       {"q_heads", r.model.q_heads},
                          {"kv_heads", r.model.kv_heads},   {"head_dim", r.model.head_dim},
                          {"ffn", r.model.ffn},             {"vocab", r.model.vocab},
                          {"rope_theta", r.model.rope_theta}, {"max_context", r.model.max_context},
                          {"weight_seed", r.model.weight_seed}, {"fingerprint", r.model.fingerprint()},
                          {"qkv_bias", r.model.qkv_bias}, {"tied_embeddings", r.model.tied_embeddings},
                          {"sliding_window", r.model.sliding_window}};
  // Resolved values only: what ran, not what was typed (the command line is recorded as well).
  nlohmann::json traces = nlohmann::json::array();
  for (const BandwidthSetting& b : r.sweep.bandwidths)
    if (b.is_trace())
      traces.push_back({{"label", b.trace_label},
                        {"path", b.trace_path},
                        {"mean_gbps", bytes_per_sec_to_gbps(b.trace_mean_bytes_per_sec)},
                        {"min_gbps", bytes_per_sec_to_gbps(b.trace_min_bytes_per_sec)}});
  nlohmann::json conditions = nlohmann::json::object();
  for (const AxisField& c : sweep_conditions(r.sweep)) conditions[c.axis] = c.value.to_json();
  return {{"model", model},
          {"backend", choice_name},
          {"axes", resolved_axes_json(r.sweep)},
          {"bandwidth_traces", traces},
          {"conditions", conditions},
          {"store", f.store_dir},
          {"repeat", r.sweep.repeat},
          {"warmup", f.warmup},
          {"max_point_seconds", f.max_point_time_s},
          {"max_noise_pct", f.max_noise_pct},
          {"verify", to_string(r.sweep.verify)},
          {"queue_depth", f.queue_depth},
          {"request_bytes", r.sweep.source_options.request_bytes},
          {"o_direct", !f.buffered},
          {"file_reads", f.file_reads},
          {"staging_slots", f.staging_slots},
          {"staging_bytes", r.sweep.staging_bytes},
          {"piece_bytes", r.sweep.piece_bytes},
          {"checksum", f.checksum},
          {"tcp_pipeline", f.tcp_pipeline},
          {"tcp_connections", f.tcp_connections},
          {"compute_tokens", r.sweep.compute_tokens},
          {"notes", r.notes},
          {"workload", r.workload}};
}

std::string command_line_of(int argc, char** argv) {
  std::string out;
  for (int i = 0; i < argc; ++i) {
    if (i) out += ' ';
    out += argv[i];
  }
  return out;
}

// --trace: each request was executed on its own; the queue of one FIFO GPU is computed from those
// measured service times (workloads/trace/replay.hpp).
std::vector<ReplayedMode> replay_trace(const Trace& trace, const std::vector<PointResult>& results, const SweepConfig& sweep) {
  std::vector<ReplayedMode> out;
  for (const Mode& mode : sweep.modes) {
    std::map<std::string, double> service_ms;  // request id -> median TTFT
    for (const PointResult& p : results) {
      if (p.mode.name() != mode.name() && !(mode.kind == ModeKind::oracle && p.mode.kind == ModeKind::oracle)) continue;
      if (service_ms.count(p.request_id)) continue;  // first source/bandwidth group only
      std::vector<double> samples;
      for (const RequestOutcome& o : p.reps) samples.push_back(o.ttft_ms);
      service_ms[p.request_id] = percentile(samples, 50);
    }
    TraceReplay replay([&](const TraceRequest& t) {
      const std::string& id = sweep.requests.at(static_cast<size_t>(t.index)).id;
      auto it = service_ms.find(id);
      if (it == service_ms.end()) throw InternalError(cat("trace replay: no measurement of request ", id, " under ", mode.name()));
      return it->second;
    });
    out.push_back({mode.name(), replay.run(trace)});
  }
  return out;
}

// One line per store directory in use: each file source's own directory (file:DIR), the --store
// directory for file, mem (read into host memory before the clock) and the loopback tcp server.
void print_store_lines(const SweepConfig& sweep, const std::string& store_dir, const StorageInfo& store_dir_info) {
  const bool loads = std::any_of(sweep.modes.begin(), sweep.modes.end(), [](const Mode& m) { return m.loads(); });
  std::vector<std::pair<std::string, std::string>> dirs;  // directory, the sources that use it
  const auto add = [&](const std::string& dir, const std::string& source) {
    for (auto& [d, users] : dirs)
      if (d == dir) {
        users += cat(", ", source);
        return;
      }
    dirs.emplace_back(dir, source);
  };
  for (const SourceSpec& spec : sweep.sources) {
    if (spec.kind == SourceSpec::Kind::tcp && !spec.location.empty()) {
      std::fprintf(stderr, "store: %s is read by the server at %s\n", spec.text().c_str(), spec.location.c_str());
      continue;
    }
    add(spec.kind == SourceSpec::Kind::file && !spec.location.empty() ? spec.location : store_dir, spec.text());
  }
  if (dirs.empty() || !loads) dirs = {{store_dir, "the stores prepare writes"}};
  for (const auto& [dir, users] : dirs) {
    const StorageInfo info = dir == store_dir ? store_dir_info : probe_storage(dir);
    std::fprintf(stderr, "store: %s (%s; %s, O_DIRECT %s, %s free)\n", dir.c_str(), users.c_str(), info.filesystem.c_str(),
                 info.o_direct ? "yes" : "no", format_bytes(info.free_bytes).c_str());
  }
}

std::vector<ReplayedRequest> replayed_requests(const SweepConfig& sweep) {
  std::vector<ReplayedRequest> out;
  for (const Request& req : sweep.requests)
    out.push_back({req.id, static_cast<int64_t>(req.prefix.size()), static_cast<int64_t>(req.suffix.size())});
  return out;
}

}  // namespace

void add_run_command(CLI::App& app, int& exit_code, int argc, char** argv) {
  auto* cmd = app.add_subcommand("run", "Measure TTFT per mode across bandwidths and write the report");
  auto flags = std::make_shared<RunFlags>();
  add_run_flags(cmd, *flags, true);
  auto config_path = std::make_shared<std::string>();
  cmd->add_option("--config", *config_path,
                  "JSON file of flag values, e.g. {\"context\": \"4k,16k\", \"repeat\": 5}; flags given on the command line win");
  const std::string command_line = command_line_of(argc, argv);
  cmd->callback([cmd, flags, config_path, &exit_code, command_line] {
    if (!config_path->empty()) apply_json_config(*cmd, *config_path);
    const RunFlags& f = *flags;
    Resolved r = resolve_run_flags(f, true);
    if (r.trace && (r.sweep.sources.size() != 1 || r.sweep.bandwidths.size() != 1))
      throw UsageError("--trace replays one source at one bandwidth: give a single --source and --bandwidth");
    for (const std::string& note : r.notes) std::fprintf(stderr, "note: %s\n", note.c_str());
    const StorageInfo storage = probe_storage(f.store_dir);
    LoadProgressBar load_bar(r.checkpoint ? r.checkpoint->name : r.model.name, f.quiet || !r.checkpoint);
    BackendChoice choice = make_backend(r.backend_kind, r.model, backend_options(r, f, &load_bar));
    // The backend was built for the run's one attention value (run_flags allows one), so every
    // combination of the generic axes is already applied when the sweep reaches it.
    r.sweep.configure = [](const AxisFields&) {};
    load_bar.finish();
    std::fprintf(stderr, "backend: %s\n", choice.reason.c_str());
    std::fprintf(stderr, "weights: %s\n", choice.backend->weights_note().c_str());
    if (r.checkpoint)
      std::fprintf(stderr, "checkpoint: %s, %llu parameters, %s (%llu bytes), fingerprint %s\n", r.checkpoint->name.c_str(),
                   static_cast<unsigned long long>(r.checkpoint->parameter_count),
                   format_bytes(r.checkpoint->tensor_bytes).c_str(),
                   static_cast<unsigned long long>(r.checkpoint->tensor_bytes),
                   choice.backend->model().weights_fingerprint.c_str());
    print_store_lines(r.sweep, f.store_dir, storage);

    ProgressBar bar(f.quiet);
    auto notices = std::make_shared<std::vector<std::string>>();
    r.sweep.on_notice = [notices](const std::string& text) {
      std::fprintf(stderr, "\nnote: %s\n", text.c_str());
      notices->push_back(text);
    };
    std::vector<CodecMeasurement> quality;
    std::vector<PointResult> results =
        run_sweep(*choice.backend, r.sweep, [&bar](const SweepProgress& p) { bar.update(p); }, &quality);
    bar.finish();

    RunReport report;
    report.created_utc = utc_now_iso8601();
    report.command_line = command_line;
    report.seed = f.seed;
    // Loading modes alternate within a repetition, but compute-only is measured once per context,
    // apart from them: ratios are not paired samples.
    report.repetitions_paired = false;
    nlohmann::json env = to_json(probe_system());
    env["store"] = to_json(storage);
    env["backend"] = choice.backend->name();
    env["backend_reason"] = choice.reason;
    report.environment = env;
    report.config = config_json(f, r, choice.backend->name());
    for (const std::string& n : *notices) report.config["notes"].push_back(n);
    // Points of checkpoint weights are named by folder and content, so compare never matches
    // runs of different weights.
    const std::string checkpoint_id =
        r.checkpoint ? cat(r.checkpoint->dir, "@", choice.backend->model().weights_fingerprint) : std::string();
    if (r.checkpoint)
      report.config["checkpoint"] = {{"path", r.checkpoint->dir},
                                     {"name", r.checkpoint->name},
                                     {"model_type", r.checkpoint->model_type},
                                     {"parameters", r.checkpoint->parameter_count},
                                     {"bytes", r.checkpoint->tensor_bytes},
                                     {"dtypes", r.checkpoint->dtypes},
                                     {"files", r.checkpoint->files.size()},
                                     {"content_fingerprint", choice.backend->model().weights_fingerprint},
                                     {"honoured", r.checkpoint->honoured},
                                     {"weights", choice.backend->weights_note()}};
    std::vector<CodecSample> samples;
    for (const CodecMeasurement& m : quality)
      samples.push_back({m.codec, m.store_codec, m.chunk_tokens, m.request_id, m.prefix_tokens, m.store_bytes, m.raw_bytes,
                         m.kv.k, m.kv.v, m.logits_rel_error, m.first_token_agrees, m.chunks_loaded, m.chunks_total,
                         m.decoded_bytes, m.decode_ns});
    report.codec_quality = aggregate_codec_quality(samples);
    bool all_verified = true;
    for (const PointResult& pr : results) {
      Point p = to_point(pr, r.model.name, choice.backend->name(), r.sweep, checkpoint_id);
      // A lossy codec's point reports its quality instead of a pass: not a verification failure.
      all_verified = all_verified && (p.verified || p.lossy);
      report.timelines.push_back(to_timeline(pr, p));
      report.points.push_back(std::move(p));
    }
    const std::string out_dir = f.out_dir.empty() ? default_out_dir() : f.out_dir;
    const std::vector<std::string> files = write_all(report, out_dir);
    if (r.trace) {
      // The answer first: the replay summary, then one compact table of requests. The per-point
      // table (one section per request) is in results.md.
      const std::vector<ReplayedMode> modes = replay_trace(*r.trace, results, r.sweep);
      const std::vector<ReplayedRequest> requests = replayed_requests(r.sweep);
      std::cout << render_replay(*r.trace, requests, modes);
      write_text_file(out_dir + "/replay.json", replay_json(*r.trace, requests, modes).dump(2) + "\n");
      std::cout << "\nwrote " << files.size() + 1 << " files to " << out_dir
                << " (replay.json per request; results.md per point; results.json, results.csv, traces, SVGs)\n";
    } else {
      std::cout << render_table(report);
      std::cout << "\nwrote " << files.size() << " files to " << out_dir << " (results.json, results.csv, results.md, traces, SVGs)\n";
    }
    if (!all_verified && r.sweep.verify != VerifyLevel::off) {
      std::fprintf(stderr, "cake-bench: verification FAILED for some points (see verify_detail in results.json)\n");
      exit_code = kExitVerification;
      return;
    }
    exit_code = kExitOk;
  });
}

// Tensor parallelism: one store shard per rank (its KV heads), all from one prefill.
void prepare_shards(ComputeBackend& backend, const Request& req, int32_t chunk, const StoreKey& key,
                    const std::string& store_dir) {
  std::vector<std::pair<StoreKey, std::string>> missing;
  for (int r = 0; r < backend.kv_shard_count(); ++r) {
    const StoreKey k = shard_store_key(backend, key, r);
    const std::string path = cat(store_dir, "/", k.file_name());
    if (std::filesystem::exists(path))
      std::printf("exists   %s  (%s, ctx %zu, chunk %d, shard %d)\n", path.c_str(), req.id.c_str(), req.prefix.size(), chunk, r);
    else
      missing.emplace_back(k, path);
  }
  if (missing.empty()) return;
  Stopwatch sw;
  for (size_t first = 0; first < req.prefix.size(); first += static_cast<size_t>(chunk)) {
    const size_t n = std::min(req.prefix.size() - first, static_cast<size_t>(chunk));
    backend.prefill_chunk(std::span<const int32_t>(req.prefix).subspan(first, n), static_cast<int64_t>(first));
  }
  backend.synchronize();
  for (int r = 0; r < backend.kv_shard_count(); ++r) {
    const StoreKey k = shard_store_key(backend, key, r);
    const std::string path = cat(store_dir, "/", k.file_name());
    if (std::find_if(missing.begin(), missing.end(), [&](const auto& m) { return m.second == path; }) == missing.end())
      continue;
    const StoreHeader h = write_store_from_view(backend.kv_shard(r), k, path);
    uint64_t bytes = 0;
    for (const ChunkEntry& e : h.chunks) bytes += e.bytes;
    std::printf("wrote    %s  (%s, ctx %zu, chunk %d, shard %d, %s, %.1f s)\n", path.c_str(), req.id.c_str(),
                req.prefix.size(), chunk, r, format_bytes(bytes).c_str(), sw.elapsed_ms() / 1000);
  }
}

void add_prepare_command(CLI::App& app, int& exit_code) {
  auto* cmd = app.add_subcommand("prepare", "Compute and write the KV stores a run would load (untimed)");
  auto flags = std::make_shared<RunFlags>();
  add_run_flags(cmd, *flags, false);
  cmd->callback([flags, &exit_code] {
    Resolved r = resolve_run_flags(*flags, false);
    LoadProgressBar load_bar(r.checkpoint ? r.checkpoint->name : r.model.name, !r.checkpoint);
    BackendChoice choice = make_backend(r.backend_kind, r.model, backend_options(r, *flags, &load_bar));
    load_bar.finish();
    std::fprintf(stderr, "backend: %s\n", choice.reason.c_str());
    std::filesystem::create_directories(flags->store_dir);
    for (int32_t chunk : r.sweep.chunk_tokens)
      for (const Request& req : r.sweep.requests) {
        // The prefix is computed once; every codec's store is written from the same KV cache.
        bool computed = false;
        for (CodecKind codec : r.sweep.codecs) {
          const StoreKey key = store_key_for(*choice.backend, req, chunk, codec);
          if (choice.backend->kv_shard_count() > 1 || !choice.backend->kv_shard_tag(0).empty()) {
            prepare_shards(*choice.backend, req, chunk, key, flags->store_dir);
            continue;
          }
          const std::string path = cat(flags->store_dir, "/", key.file_name());
          if (std::filesystem::exists(path)) {
            std::printf("exists   %s  (%s, ctx %zu, chunk %d, codec %s)\n", path.c_str(), req.id.c_str(), req.prefix.size(),
                        chunk, key.codec.c_str());
            continue;
          }
          Stopwatch sw;
          const StoreHeader h = computed ? write_store_from_cache(*choice.backend, key, path)
                                         : prepare_store(*choice.backend, req, chunk, path, codec);
          computed = true;
          uint64_t bytes = 0;
          for (const ChunkEntry& e : h.chunks) bytes += e.bytes;
          std::printf("wrote    %s  (%s, ctx %zu, chunk %d, codec %s, %zu chunks, %s, %.1f s)\n", path.c_str(),
                      req.id.c_str(), req.prefix.size(), chunk, h.key.codec.c_str(), h.chunks.size(),
                      format_bytes(bytes).c_str(), sw.elapsed_ms() / 1000);
        }
      }
    exit_code = kExitOk;
  });
}

}  // namespace cake
