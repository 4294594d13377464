// A sweep: every (generic axes, context, suffix, chunk size, source, bandwidth, mode) point, each repeated,
// with modes alternating between repetitions so drift favours none. Per context, untimed: one
// compute-only reference run (first token, logits, KV checksums) and the store, written from that
// run's KV cache when it is missing.
#pragma once

#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/axis_value.hpp"
#include "engine/bandwidth_setting.hpp"
#include "engine/codec_quality.hpp"
#include "engine/mode.hpp"
#include "engine/request_outcome.hpp"
#include "engine/source_provider.hpp"
#include "loaders/load_pipeline.hpp"
#include "engine/source_spec.hpp"
#include "engine/verify.hpp"
#include "kernels/compute_backend.hpp"
#include "loaders/kv_codec.hpp"
#include "workloads/request.hpp"

namespace cake {

enum class VerifyLevel {
  off,    // no checks
  token,  // every repetition: first token and logits against compute-only
  full,   // token, plus on the first measured repetition of each point: every prefix chunk's KV
};
VerifyLevel parse_verify_level(std::string_view text);
const char* to_string(VerifyLevel level);  // "off", "token", "full"

// The values of one generic sweep axis (engine/axes.hpp) and its neutral value: the one a
// cake-bench without the axis ran at.
struct AxisValues {
  std::string name;
  std::vector<AxisValue> values;
  AxisValue neutral;
};

struct SweepConfig {
  std::vector<Request> requests;               // one per context (synthetic or from a dataset)
  std::vector<int32_t> chunk_tokens{512};     // the store's chunk (load grain, claim unit)
  int32_t compute_tokens = 0;                 // most tokens per compute call, as whole chunks (0: one chunk)
  std::vector<Mode> modes;
  std::vector<BandwidthSetting> bandwidths{BandwidthSetting{}};  // rates, unlimited, traces
  std::vector<SourceSpec> sources{SourceSpec{}};
  std::vector<CodecKind> codecs{CodecKind::none};  // the stores' KV codecs (loaders/kv_codec.hpp)
  std::string store_dir = "./cake-store";
  int repeat = 3;
  int warmup = 1;
  // More repetitions where they are cheap (nvbench's stopping rule, with a budget per point): after
  // `repeat` measured rounds, the points of a group (compute-only, or one source and bandwidth's
  // modes) whose own measured runs took under `max_point_seconds` get another round, still
  // alternating, while any of them has a median with a relative standard error over `max_noise`
  // (median_relative_error(), points_for_more_rounds()). A point out of budget drops out, so a
  // long, steady io point at a low bandwidth no longer uses up the rounds of the short, noisy cake
  // and oracle points beside it. 0 seconds: exactly `repeat` rounds. A point whose one run takes
  // longer than the budget gets no more; one of 20 ms gets dozens.
  double max_point_seconds = 0;
  double max_noise = 0.01;
  VerifyLevel verify = VerifyLevel::full;
  int staging_slots = 2;
  // Tensor parallelism: one throttle shared by every rank's load lane (the bandwidth is the
  // host's) instead of one per GPU (the bandwidth is each GPU's).
  bool shared_throttle = false;
  uint64_t staging_bytes = 0;  // byte staging of sources with pieces (file); 0: the pipeline's defaults
  uint64_t piece_bytes = 0;
  // Where byte staging checks chunk checksums (LoadPipelineOptions::checksum); encoded stores,
  // staged whole, keep the CPU check whatever this says.
  ChecksumPlace checksum = ChecksumPlace::automatic;
  SourceOptions source_options;
  double inject_compute_delay_ms = 0;
  // Test hooks for the CI gate (scripts/ci_regression.sh): a lane made this many times slower.
  // Compute: see RequestOptions. Load: the throttle runs at rate / factor while the point keeps
  // the rate it was asked for, i.e. a loader that delivers less than it claims.
  double inject_compute_slowdown = 1;
  double inject_load_slowdown = 1;
  // Told of what the user must know but that is no error (a store rebuilt because it failed
  // validation); may be empty.
  std::function<void(const std::string&)> on_notice;
  // Generic axes: every combination of their values is run, outermost. Before each, `configure`
  // gets the whole combination (neutral values too) to set up what the values choose, e.g. the
  // backend's attention kernel. A non-neutral value with no `configure` is an InternalError:
  // nothing would apply it, and the points would claim a condition they did not run under.
  std::vector<AxisValues> axes;
  std::function<void(const AxisFields&)> configure;
};

struct PointResult {
  std::string request_id;
  int64_t context_tokens = 0;
  int64_t suffix_tokens = 0;
  int32_t chunk_tokens = 0;
  std::string source;                          // SourceSpec::text()
  std::string codec = "none";                  // the loaded store's codec (codec_kind_name)
  std::string source_description;              // what the source said it was
  BandwidthSetting bandwidth;                  // compute-only: the group's (it is shown in every group)
  std::string throttle;                        // "8 Gbps", "trace:bt.csv@1a2b3c4d", "unlimited", "n/a"
  AxisFields axes;                             // generic axes not at their neutral value, by name
  AxisFields conditions;                       // sweep_conditions(): injected delay / faults; empty = clean
  Mode mode;                                   // oracle: split_chunk resolved
  std::vector<RequestOutcome> reps;            // measured repetitions (warm-ups dropped)
  Verification verification;
  std::string store_path;
  bool shared_compute = false;                 // compute-only: measured once per context, shown in every group
};

struct SweepProgress {
  int runs_done = 0;
  int runs_total = 0;
  std::string what;                            // "ctx 32768 cake 8 Gbps rep 2/3", "preparing store ..."
};
using ProgressFn = std::function<void(const SweepProgress&)>;

// The relative standard error of the median of `samples`: 1.2533 x sd / (sqrt(n) x median), its
// large-sample value for normal noise. Infinity for fewer than 2 samples or a median <= 0.
double median_relative_error(std::span<const double> samples);

// Which points get one more run (the sweep's stopping rule, SweepConfig::max_point_seconds): every
// point whose measured runs took under `budget_s` (`spent_s`, one entry per point), as long as one
// of them has TTFT samples whose median_relative_error() is over `max_noise`; none otherwise. A
// quiet point keeps running beside a noisy one, so the modes compared stay interleaved over the
// same stretch of time (a point that stopped early would be compared with its partners' later
// rounds); only a point out of budget drops out. Empty when budget_s <= 0.
std::vector<size_t> points_for_more_rounds(const std::vector<std::vector<double>>& ttft_ms, const std::vector<double>& spent_s,
                                           double budget_s, double max_noise);

// Number of request runs the sweep will make at least (for progress and ETA; max_point_seconds can add more).
int sweep_run_count(const SweepConfig& config);

// `codec_quality` (may be null) receives one CodecMeasurement per (request, chunk size, codec) when
// a lossy codec is in the run and verification is on.
std::vector<PointResult> run_sweep(ComputeBackend& backend, const SweepConfig& config, const ProgressFn& progress,
                                   std::vector<CodecMeasurement>* codec_quality = nullptr);

}  // namespace cake
