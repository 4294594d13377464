#include "engine/sweep.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <fcntl.h>

#include <filesystem>
#include <map>
#include <numeric>

#include "common/clock.hpp"
#include "common/cpu_probe.hpp"
#include "common/error.hpp"
#include "common/fd.hpp"
#include "common/percentile.hpp"
#include "common/units.hpp"
#include "engine/axes.hpp"
#include "engine/codec_quality.hpp"
#include "engine/kv_snapshot.hpp"
#include "engine/oracle.hpp"
#include "engine/run_request.hpp"
#include "engine/store_prep.hpp"
#include "engine/thread_device.hpp"
#include "loaders/load_pipeline.hpp"
#include "loaders/store_file.hpp"
#include "loaders/throttle.hpp"

namespace cake {
namespace {

bool has_mode(const SweepConfig& c, ModeKind kind) {
  return std::any_of(c.modes.begin(), c.modes.end(), [&](const Mode& m) { return m.kind == kind; });
}

std::vector<Mode> loading_modes(const SweepConfig& c) {
  std::vector<Mode> out;
  for (const Mode& m : c.modes)
    if (m.loads()) out.push_back(m);
  return out;
}

// Every combination of the generic axes' values, first axis outermost.
std::vector<AxisFields> axis_combinations(const std::vector<AxisValues>& axes) {
  std::vector<AxisFields> out{{}};
  for (const AxisValues& axis : axes) {
    if (axis.values.empty()) throw InternalError(cat("sweep axis ", axis.name, " has no values"));
    std::vector<AxisFields> next;
    for (const AxisFields& prefix : out)
      for (const AxisValue& v : axis.values) {
        AxisFields combination = prefix;
        combination.push_back({axis.name, v});
        next.push_back(std::move(combination));
      }
    out = std::move(next);
  }
  return out;
}

AxisFields non_neutral(const std::vector<AxisValues>& axes, const AxisFields& combination) {
  AxisFields out;
  for (size_t i = 0; i < axes.size(); ++i)
    if (combination[i].value != axes[i].neutral) out.push_back(combination[i]);
  return out;
}

class Sweep {
 public:
  Sweep(ComputeBackend& backend, const SweepConfig& config, const ProgressFn& progress,
        std::vector<CodecMeasurement>* quality)
      : backend_(backend), config_(config), progress_(progress), provider_(config.store_dir, config.source_options),
        quality_(quality) {
    progress_state_.runs_total = sweep_run_count(config);
  }

  std::vector<PointResult> run() {
    if (config_.modes.empty()) throw UsageError("no mode to run: give --mode (compute, io, cake, oracle, split=F)");
    conditions_ = sweep_conditions(config_);
    for (const AxisFields& combination : axis_combinations(config_.axes)) {
      axes_ = non_neutral(config_.axes, combination);
      if (config_.configure) config_.configure(combination);
      else if (!axes_.empty())
        throw InternalError(cat("sweep axis values ", print_fields(axes_), " are set but nothing applies them"));
      for (int32_t chunk : config_.chunk_tokens)
        for (const Request& request : config_.requests) run_context(request, chunk);
    }
    return std::move(points_);
  }

 private:
  // "rep 3/6" for the planned rounds (warm-ups included), "rep 9 (noisy: one more)" past them.
  static std::string rep_label(int rep, int runs) {
    return rep < runs ? cat("rep ", rep + 1, "/", runs) : cat("rep ", rep + 1, " (noisy: one more)");
  }

  void tick(const std::string& what, bool counts) {
    if (counts) ++progress_state_.runs_done;
    progress_state_.what = what;
    if (progress_) progress_(progress_state_);
  }

  RequestOptions request_options(int32_t chunk) const {
    RequestOptions o;
    o.chunk_tokens = chunk;
    o.compute_max_chunks = std::max(1, config_.compute_tokens / chunk);
    o.inject_compute_delay_ms = config_.inject_compute_delay_ms;
    o.inject_compute_slowdown = config_.inject_compute_slowdown;
    return o;
  }

  LoadPipelineOptions pipeline_options(const StoreKey& key) const {
    LoadPipelineOptions o{.staging_slots = config_.staging_slots,
                          .staging_bytes = config_.staging_bytes,
                          .piece_bytes = config_.piece_bytes};
    // An encoded chunk decodes once it is whole in one buffer: whole-chunk staging for those.
    o.decode_staging = CodecSpec::parse_store_name(key.codec).kind != CodecKind::none;
    o.piece_staging = !o.decode_staging;
    o.checksum = o.decode_staging ? ChecksumPlace::automatic : config_.checksum;
    return o;
  }

  RequestOutcome run_one(const Request& request, const Mode& mode, int32_t chunk, const SourceSpec* spec,
                         const StoreKey& key, const std::vector<Throttle*>& throttles) {
    Throttle* throttle = throttles.empty() ? nullptr : throttles[0];
    if (config_.verify != VerifyLevel::off) backend_.poison_kv_cache();
    // The CPU's speed of the moment, right before a compute-only request (off its clock): what
    // compare's compute/probe divides by (see cpu_probe.hpp); no other mode uses it.
    std::optional<double> probe_ms;
    if (backend_.name() == "cpu" && !mode.loads()) probe_ms = cpu_probe_ms();
    RequestOutcome out;
    if (!mode.loads()) {
      out = run_request(backend_, request, mode, request_options(chunk), nullptr);
    } else if (backend_.kv_shard_count() == 1) {
      const StoreKey shard_key = shard_store_key(backend_, key, 0);
      std::unique_ptr<KvSource> source = provider_.make(*spec, shard_key, throttle);
      LoadPipeline pipeline(*source, backend_.kv_cache(), chunk, pipeline_options(key));
      LoadLane lane{&pipeline, throttle, shard_key, source->describe(), {}};
      out = run_request(backend_, request, mode, request_options(chunk), &lane);
    } else {
      // Tensor parallelism: a source and a pipeline per rank, each built on its rank's GPU.
      const ThreadDevice caller = ThreadDevice::capture();
      const int shards = backend_.kv_shard_count();
      std::vector<std::unique_ptr<KvSource>> sources;
      std::vector<std::unique_ptr<LoadPipeline>> pipelines;
      std::vector<LoadShard> lanes;
      for (int r = 0; r < shards; ++r) {
        ThreadDevice::of(backend_.kv_shard_device(r)).bind();
        Throttle* t = throttles.empty() ? nullptr : throttles.at(static_cast<size_t>(r) % throttles.size());
        const StoreKey shard_key = shard_store_key(backend_, key, r);
        sources.push_back(provider_.make(*spec, shard_key, t));
        pipelines.push_back(std::make_unique<LoadPipeline>(*sources.back(), backend_.kv_shard(r), chunk,
                                                           pipeline_options(key)));
        lanes.push_back(LoadShard{pipelines.back().get(), shard_key, backend_.kv_shard_device(r), t});
      }
      caller.bind();
      LoadLane lane{pipelines[0].get(), lanes[0].throttle, lanes[0].key,
                    cat(sources[0]->describe(), " (+", shards - 1, " more rank shard", shards > 2 ? "s" : "", ", ",
                        config_.shared_throttle ? "one throttle shared by all ranks" : "a throttle per GPU", ")"),
                    lanes};
      out = run_request(backend_, request, mode, request_options(chunk), &lane);
    }
    out.cpu_probe_ms = probe_ms;
    return out;
  }

  std::unique_ptr<Throttle> throttle_for(const BandwidthSetting& bw) const {
    std::optional<double> rate = bw.bytes_per_sec;
    if (rate && config_.inject_load_slowdown > 1) rate = *rate / config_.inject_load_slowdown;
    return make_throttle(rate, bw.trace_path);
  }
  // One per load lane (a rate per GPU), or one for all of them (shared_throttle).
  std::vector<std::unique_ptr<Throttle>> throttles_for(const BandwidthSetting& bw) const {
    std::vector<std::unique_ptr<Throttle>> out;
    const int lanes = config_.shared_throttle ? 1 : backend_.kv_shard_count();
    for (int r = 0; r < lanes; ++r) out.push_back(throttle_for(bw));
    return out;
  }

  // Token check every repetition; KV of every prefix chunk on the first measured one (full).
  // `lossy`: the quality of the lossy codec the point loaded (null for none and compute-only).
  void check(PointResult& point, const RequestOutcome& out, const Reference& reference, bool first_measured,
             const Request& request, int32_t chunk, const CodecMeasurement* lossy = nullptr) {
    if (config_.verify == VerifyLevel::off) return;
    std::vector<uint32_t> kv;
    if (config_.verify == VerifyLevel::full && first_measured && !(lossy && out.chunks_loaded > 0))
      kv = chunk_checksums(backend_.kv_cache(), static_cast<int64_t>(request.prefix.size()), chunk);
    const Verification v = verify_against(out, reference, kv, backend_.kv_cache().dtype, lossy);
    if (first_measured || (!v.passed && point.verification.passed)) point.verification = v;
  }

  PointResult make_point(const Request& request, int32_t chunk, const Mode& mode) const {
    PointResult p;
    p.request_id = request.id;
    p.context_tokens = static_cast<int64_t>(request.prefix.size());
    p.suffix_tokens = static_cast<int64_t>(request.suffix.size());
    p.chunk_tokens = chunk;
    p.mode = mode;
    p.axes = axes_;
    p.conditions = conditions_;
    p.verification.passed = false;  // set by check(); with --verify off it stays false: nothing was checked
    p.verification.detail = config_.verify == VerifyLevel::off ? "not verified (--verify off)" : "";
    return p;
  }

  // Per-chunk compute costs for the oracle from a warm compute-only run. The reference run is the
  // context's first: on the GPU it builds every cuDNN plan (40-50 ms a chunk shape), which made the
  // H200's oracle at 1 Gbps pick a split that loaded one chunk too many (2166 ms against Cake's
  // 1212). One more untimed compute-only run per context, made on first need.
  const RequestOutcome& warm_costs(const Request& request, int32_t chunk) {
    if (!warm_run_) {
      tick(cat("ctx ", request.prefix.size(), " chunk ", chunk, ": warm compute-only run for the oracle's costs"), false);
      warm_run_ = run_request(backend_, request, parse_mode("compute"), request_options(chunk), nullptr);
    }
    return *warm_run_;
  }

  // The stores `key` names for every local source, written from the backend's KV cache (the
  // reference run's) when missing or invalid.
  void ensure_stores(const StoreKey& key, const std::string& ctx) {
    if (loading_modes(config_).empty() || key.token_count == 0) return;
    for (const SourceSpec& spec : config_.sources) {
      // A remote server's store is the server's: it validates it at open, and a failure there
      // fails the request (no number is reported for a source that cannot load).
      if (spec.kind == SourceSpec::Kind::tcp && !spec.location.empty()) continue;
      // Tensor parallelism: one store per rank's shard of the KV heads.
      for (int shard = 0; shard < backend_.kv_shard_count(); ++shard) {
        const StoreKey shard_key = shard_store_key(backend_, key, shard);
        const std::string path = provider_.store_path_for(spec, shard_key);
        if (std::filesystem::exists(path)) {
          const std::string problem = store_problem(path, shard_key);
          if (problem.empty()) continue;
          // Never let a broken store turn every load into a compute behind an `io` label: it is
          // rebuilt from the reference run's KV cache (bit-exact with compute), and the user told.
          if (config_.on_notice)
            config_.on_notice(cat("store ", path, " failed validation (", problem,
                                  "); rebuilt from the compute-only reference run"));
          std::filesystem::remove(path);
        }
        tick(cat(ctx, ": writing store ", path), false);
        std::filesystem::create_directories(std::filesystem::path(path).parent_path());
        write_store_from_view(backend_.kv_shard(shard), shard_key, path);
      }
    }
  }

  // With a lossy codec in the run and verification on: per codec (none included, the baseline),
  // one untimed io run, unthrottled, from the first local source, against compute-only (logits,
  // first token, and the whole prefix's K and V). The cache must hold the reference KV on entry.
  std::map<CodecKind, CodecMeasurement> measure_codecs(const Request& request, int32_t chunk,
                                                       const std::map<CodecKind, StoreKey>& keys,
                                                       const Reference& reference, const std::string& ctx) {
    std::map<CodecKind, CodecMeasurement> out;
    const bool any_lossy = std::any_of(config_.codecs.begin(), config_.codecs.end(),
                                       [](CodecKind k) { return k != CodecKind::none; });
    if (!any_lossy || config_.verify == VerifyLevel::off || loading_modes(config_).empty() || request.prefix.empty())
      return out;
    const SourceSpec* local = nullptr;
    for (const SourceSpec& spec : config_.sources)
      if (!(spec.kind == SourceSpec::Kind::tcp && !spec.location.empty()) && (!local || spec.kind == SourceSpec::Kind::mem))
        local = &spec;
    if (local == nullptr) return out;  // only remote servers: their stores are not ours to measure
    const auto prefix = static_cast<int64_t>(request.prefix.size());
    tick(cat(ctx, ": copying the reference KV for the codec quality"), false);
    const KvHostCopy reference_kv = copy_prefix_kv(backend_.kv_cache(), prefix);
    for (CodecKind codec : config_.codecs) {
      const StoreKey& key = keys.at(codec);
      tick(cat(ctx, ": codec ", codec_kind_name(codec), " quality (untimed io run, every chunk loaded)"), false);
      const RequestOutcome run = run_one(request, parse_mode("io"), chunk, local, key, {});
      CodecMeasurement m;
      m.request_id = request.id;
      m.codec = codec_kind_name(codec);
      m.store_codec = key.codec;
      m.chunk_tokens = chunk;
      m.prefix_tokens = prefix;
      m.raw_bytes = backend_.kv_cache().chunk_bytes(prefix);
      const std::string path = provider_.store_path_for(*local, key);
      {
        UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
        if (!fd.valid()) throw Error(cat("opening store ", path, " for its size: ", errno_text(errno)));
        for (const ChunkEntry& e : read_store_header(fd.get(), path).chunks) m.store_bytes += e.bytes;
      }
      m.chunks_loaded = run.chunks_loaded;
      for (const ChunkEvent& e : run.timeline) {
        if (e.lane != Lane::load || !e.ok) continue;
        m.decoded_bytes += e.decoded_bytes;
        m.decode_ns += e.decode_ns;
      }
      m.chunks_total = run.chunks_total;
      m.kv = kv_rel_error(backend_.kv_cache(), reference_kv);
      m.logits_rel_error = logits_rel_error(run.first_token.logits, reference.first_token.logits);
      m.first_token = run.first_token.token_id;
      m.reference_first_token = reference.first_token.token_id;
      m.first_token_agrees = m.first_token == m.reference_first_token;
      if (quality_) quality_->push_back(m);
      out[codec] = std::move(m);
    }
    return out;
  }

  void run_context(const Request& request, int32_t chunk) {
    warm_run_.reset();
    const std::string ctx = cat("ctx ", request.prefix.size(), " chunk ", chunk, axes_.empty() ? "" : " ", print_fields(axes_));
    // Untimed reference: compute-only, then the store from its KV cache when missing.
    tick(cat(ctx, ": compute-only reference"), true);
    if (config_.verify != VerifyLevel::off) backend_.poison_kv_cache();
    const RequestOutcome reference_run = run_request(backend_, request, parse_mode("compute"), request_options(chunk), nullptr);
    Reference reference{reference_run.first_token, {}};
    if (config_.verify == VerifyLevel::full)
      reference.chunk_checksums = chunk_checksums(backend_.kv_cache(), static_cast<int64_t>(request.prefix.size()), chunk);
    // Every codec's store is written from the reference run's KV cache before anything else
    // runs (the quality runs below overwrite the cache with decoded KV).
    std::map<CodecKind, StoreKey> keys;
    for (CodecKind codec : config_.codecs) {
      keys[codec] = store_key_for(backend_, request, chunk, codec);
      ensure_stores(keys[codec], ctx);
    }
    std::map<CodecKind, CodecMeasurement> quality = measure_codecs(request, chunk, keys, reference, ctx);

    // compute-only: independent of source and bandwidth, so measured once per context.
    std::optional<PointResult> compute_point;
    if (has_mode(config_, ModeKind::compute)) {
      PointResult p = make_point(request, chunk, parse_mode("compute"));
      const int runs = config_.warmup + config_.repeat;
      std::vector<double> spent_s(1, 0.0);  // its measured runs' wall time
      for (int rep = 0; rep < runs || !more_rounds({&p}, spent_s).empty(); ++rep) {
        tick(cat(ctx, ": compute ", rep_label(rep, runs)), rep < runs);
        const int64_t from = now_ns();
        RequestOutcome out = run_one(request, p.mode, chunk, nullptr, keys.begin()->second, {});
        if (rep >= config_.warmup) spent_s[0] += ns_to_s(now_ns() - from);
        check(p, out, reference, rep == config_.warmup, request, chunk);
        if (rep >= config_.warmup) p.reps.push_back(std::move(out));
      }
      p.source = "none";
      p.throttle = "n/a";
      compute_point = std::move(p);
    }

    const std::vector<Mode> modes = loading_modes(config_);
    if (modes.empty()) {
      if (compute_point) points_.push_back(std::move(*compute_point));
      return;
    }
    for (CodecKind codec : config_.codecs) {
    const StoreKey& key = keys.at(codec);
    const auto measured = quality.find(codec);
    const CodecMeasurement* lossy = codec != CodecKind::none && measured != quality.end() ? &measured->second : nullptr;
    const std::string codec_text = codec == CodecKind::none ? "" : cat(" codec ", codec_kind_name(codec));
    for (const SourceSpec& spec : config_.sources) {
      for (const BandwidthSetting& bw : config_.bandwidths) {
        const std::string group = cat(ctx, codec_text, " ", spec.text(), " ", bw.text());
        const std::vector<std::unique_ptr<Throttle>> owned_throttles = throttles_for(bw);
        std::vector<Throttle*> throttles;
        for (const auto& t : owned_throttles) throttles.push_back(t.get());
        if (compute_point) {
          PointResult p = *compute_point;
          p.source = spec.text();
          p.codec = codec_kind_name(codec);
          p.bandwidth = bw;
          p.throttle = bw.text();
          p.shared_compute = true;
          points_.push_back(std::move(p));
        }
        std::vector<PointResult> group_points;
        for (Mode mode : modes) {
          if (mode.kind == ModeKind::oracle) {
            // The best static split from measured costs: per-chunk compute times of the reference
            // run, per-chunk load time of Cake calibration runs at this bandwidth: two of them, the
            // faster kept. A group's first loading run can be a cold one: on the H200 (32K from
            // /dev/shm with --file-reads pread, 400 Gbps) io's first run took 134.6 ms against a
            // median of 111.1, and an oracle built on one such run split at chunk 6 where 3 was
            // best: 174.4 ms against Cake's 108.6, a cake/oracle of 0.62 that flattered Cake
            // (results/h200/round8/).
            const std::vector<double> compute_ms = compute_ms_per_chunk(warm_costs(request, chunk));
            double load_ms = std::numeric_limits<double>::infinity();
            for (int calibration_run = 1; calibration_run <= 2; ++calibration_run) {
              tick(cat(group, ": oracle calibration (cake run ", calibration_run, " of 2)"), true);
              const RequestOutcome calibration = run_one(request, parse_mode("cake"), chunk, &spec, key, throttles);
              if (calibration.chunks_loaded > 0) load_ms = std::min(load_ms, load_ms_per_chunk(calibration));
            }
            mode.split_chunk = std::isfinite(load_ms) ? best_static_split(compute_ms, load_ms) : static_cast<int>(compute_ms.size());
          }
          PointResult p = make_point(request, chunk, mode);
          p.source = spec.text();
          p.codec = codec_kind_name(codec);
          p.bandwidth = bw;
          p.throttle = bw.text();
          p.store_path = provider_.store_path_for(spec, shard_store_key(backend_, key, 0));
          group_points.push_back(std::move(p));
        }
        const int runs = config_.warmup + config_.repeat;
        std::vector<const PointResult*> in_group;
        for (const PointResult& p : group_points) in_group.push_back(&p);
        std::vector<size_t> every(group_points.size());  // the planned rounds run every point
        std::iota(every.begin(), every.end(), size_t{0});
        std::vector<double> spent_s(group_points.size(), 0.0);  // each point's measured runs' wall time
        for (int rep = 0;; ++rep) {
          // Every point in the set rounds; after them, the points that are still noisy and within budget.
          const std::vector<size_t> round = rep < runs ? every : more_rounds(in_group, spent_s);
          if (round.empty()) break;
          for (size_t j = 0; j < round.size(); ++j) {
            const size_t at = round[(j + static_cast<size_t>(rep)) % round.size()];  // alternate
            PointResult& p = group_points[at];
            tick(cat(group, ": ", p.mode.name(), " ", rep_label(rep, runs)), rep < runs);
            const int64_t from = now_ns();
            RequestOutcome out = run_one(request, p.mode, chunk, &spec, key, throttles);
            if (rep >= config_.warmup) spent_s[at] += ns_to_s(now_ns() - from);
            p.source_description = out.source_description;
            check(p, out, reference, rep == config_.warmup, request, chunk, lossy);
            if (rep >= config_.warmup) p.reps.push_back(std::move(out));
          }
        }
        for (PointResult& p : group_points) points_.push_back(std::move(p));
        for (Throttle* t : throttles) provider_.forget_throttle(t);
      }
    }
    }
  }

  // Asked once the `repeat` measured rounds are done: the points that get one more run.
  std::vector<size_t> more_rounds(const std::vector<const PointResult*>& points, const std::vector<double>& spent_s) const {
    std::vector<std::vector<double>> ttft_ms;
    for (const PointResult* p : points) {
      ttft_ms.emplace_back();
      for (const RequestOutcome& r : p->reps) ttft_ms.back().push_back(r.ttft_ms);
    }
    return points_for_more_rounds(ttft_ms, spent_s, config_.max_point_seconds, config_.max_noise);
  }

  ComputeBackend& backend_;
  const SweepConfig& config_;
  const ProgressFn& progress_;
  SourceProvider provider_;
  SweepProgress progress_state_;
  std::optional<RequestOutcome> warm_run_;  // of the context in progress (warm_costs)
  std::vector<PointResult> points_;
  std::vector<CodecMeasurement>* quality_;  // may be null
  AxisFields axes_;        // the generic axes' combination being run (non-neutral values)
  AxisFields conditions_;
};

}  // namespace

const char* to_string(VerifyLevel level) {
  switch (level) {
    case VerifyLevel::off: return "off";
    case VerifyLevel::token: return "token";
    case VerifyLevel::full: return "full";
  }
  return "?";
}

VerifyLevel parse_verify_level(std::string_view text) {
  if (text == "off") return VerifyLevel::off;
  if (text == "token") return VerifyLevel::token;
  if (text == "full") return VerifyLevel::full;
  throw UsageError(cat("invalid --verify '", text, "': use full, token or off"));
}

double median_relative_error(std::span<const double> samples) {
  const size_t n = samples.size();
  if (n < 2) return std::numeric_limits<double>::infinity();
  const double median = percentile(std::vector<double>(samples.begin(), samples.end()), 50);
  if (!(median > 0)) return std::numeric_limits<double>::infinity();
  double mean = 0;
  for (double v : samples) mean += v;
  mean /= static_cast<double>(n);
  double ss = 0;
  for (double v : samples) ss += (v - mean) * (v - mean);
  const double sd = std::sqrt(ss / static_cast<double>(n - 1));
  return 1.2533 * sd / (std::sqrt(static_cast<double>(n)) * median);
}

std::vector<size_t> points_for_more_rounds(const std::vector<std::vector<double>>& ttft_ms, const std::vector<double>& spent_s,
                                           double budget_s, double max_noise) {
  if (ttft_ms.size() != spent_s.size())
    throw InternalError(cat("points_for_more_rounds: ", ttft_ms.size(), " points but ", spent_s.size(), " times"));
  std::vector<size_t> within;
  if (!(budget_s > 0)) return within;
  bool noisy = false;
  for (size_t i = 0; i < ttft_ms.size(); ++i) {
    if (spent_s[i] >= budget_s) continue;
    within.push_back(i);
    noisy = noisy || median_relative_error(ttft_ms[i]) > max_noise;
  }
  if (!noisy) within.clear();
  return within;
}

int sweep_run_count(const SweepConfig& c) {
  const int runs = c.warmup + c.repeat;
  const int loading = static_cast<int>(loading_modes(c).size());
  const int groups = static_cast<int>(c.sources.size() * c.bandwidths.size() * std::max<size_t>(1, c.codecs.size()));
  const int per_group = loading > 0 ? loading * runs + (has_mode(c, ModeKind::oracle) ? 1 : 0) : 0;
  const int per_context = 1 + (has_mode(c, ModeKind::compute) ? runs : 0) + groups * per_group;
  return per_context * static_cast<int>(c.requests.size() * c.chunk_tokens.size() * axis_combinations(c.axes).size());
}

std::vector<PointResult> run_sweep(ComputeBackend& backend, const SweepConfig& config, const ProgressFn& progress,
                                   std::vector<CodecMeasurement>* codec_quality) {
  if (config.repeat < 1) throw UsageError(cat("--repeat must be at least 1, got ", config.repeat));
  if (config.warmup < 0) throw UsageError(cat("--warmup must be at least 0, got ", config.warmup));
  if (!(config.max_point_seconds >= 0)) throw UsageError(cat("--max-point-time must be at least 0 s, got ", config.max_point_seconds));
  if (!(config.max_noise > 0)) throw UsageError(cat("--max-noise must be positive, got ", config.max_noise * 100, "%"));
  if (!(config.inject_compute_slowdown >= 1) || !(config.inject_load_slowdown >= 1))
    throw UsageError("--inject-compute-slowdown and --inject-load-slowdown must be at least 1");
  if (config.codecs.empty()) throw UsageError("no codec to run: give --codec (none, int8, int4, cachegen)");
  return Sweep(backend, config, progress, codec_quality).run();
}

}  // namespace cake
