// The one report model of cake-bench. The CLI fills it from engine outcomes; every writer
// (table, CSV, JSON, markdown, Chrome trace, SVG) and `compare` read only this.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/axis_value.hpp"
#include "results/stats.hpp"

namespace cake {

// 2: points carry bandwidth_trace, bandwidth_min_gbps, axes and conditions; config records the
// resolved axis values. Version 1 files still load (report_json.cpp upgrades them).
inline constexpr int kReportSchemaVersion = 2;

// A point is flagged noisy when (p90 - p10) / median exceeds this: beyond 10 % spread a
// difference between modes of a few percent is not worth reading.
inline constexpr double kNoisySpreadRatio = 0.10;

// One (configuration, mode) with all its repetitions.
struct Point {
  // Configuration: together with `mode` these identify a point across runs (see point_identity).
  std::string model;
  std::string backend;                    // "cuda", "cpu"
  int64_t context_tokens = 0;             // prefix tokens whose KV cache must be made ready
  int64_t suffix_tokens = 0;              // new tokens prefilled after the prefix
  int64_t chunk_tokens = 0;               // tokens per KV chunk
  std::string source;                     // "file:/dev/shm/x", "mem", "tcp://host:port"
  std::optional<double> bandwidth_gbps;   // load-lane throttle in Gbit/s; nullopt = unlimited; a trace's mean
  // A bandwidth trace set the rate: "trace:bt.csv@<first 8 hex of its content hash>". It is the
  // bandwidth in the point's identity (bandwidth_gbps is then only its time-weighted mean).
  std::string bandwidth_trace;
  std::optional<double> bandwidth_min_gbps;  // a trace's lowest rate (0 during an outage)
  std::string mode;                       // "compute", "io", "cake", "split=0.50", "oracle"
  std::string codec;                      // KV codec of the loaded store: "none", "int8", "int4"
  // Checkpoint weights: "PATH@FINGERPRINT" (folder and content fingerprint, kernels/checkpoint/);
  // empty for seeded weights, which the model name and its seed identify.
  std::string checkpoint;
  // Further sweep axes (engine/axes.hpp) whose value differs from the neutral one, the value a
  // cake-bench without that axis ran at ("attention": "auto" is neutral and left out), by name.
  // Part of the identity: adding an axis does not unmatch points recorded before it existed.
  AxisFields axes;
  // What was done to the run on purpose: "inject_compute_delay_ms", "inject_fault". Empty = clean.
  // Part of the identity unless compare is told to ignore conditions (then it says so per row).
  AxisFields conditions;

  // How it was measured.
  int warmup = 0;                         // untimed requests before the timed ones
  int repeat = 0;                         // timed requests asked for

  // Measurements. Per-request counters come from one representative repetition (the CLI
  // uses median_repetition()); TTFT keeps every repetition.
  std::vector<double> ttft_ms_samples;    // one per timed repetition
  Summary ttft_ms;                        // of ttft_ms_samples (finalize_point)
  bool noisy = false;                     // (p90 - p10) / median > kNoisySpreadRatio
  // CPU backend: the machine-speed probe's CPU time (common/cpu_probe.hpp) before each repetition,
  // in the order of ttft_ms_samples; empty on other backends and in reports that predate it.
  std::vector<double> cpu_probe_ms_samples;
  // CPU time of the process during each repetition (t0 to t1), in the same order; empty in reports
  // that predate it.
  std::vector<double> process_cpu_ms_samples;
  int chunks_total = 0;
  int chunks_computed = 0;
  int chunks_loaded = 0;
  int chunks_recovered = 0;               // chunks the load lane failed and compute redid
  std::vector<std::string> recovery_reasons;
  uint64_t bytes_loaded = 0;              // KV bytes the load lane delivered to the GPU
  std::optional<double> load_gbps;        // achieved load bandwidth, Gbit/s
  std::optional<int> meet_chunk;          // cake/split: the first (lowest) loaded chunk index
  std::optional<double> meet_idle_ms;     // cake/split: wait of the earlier-finishing lane at the meet
  std::optional<int> oracle_split_chunk;  // oracle: best first loaded chunk found by search
  int64_t first_token = -1;               // token id produced after the suffix
  bool verified = false;                  // first token (and loaded chunks) matched compute-only
  std::string verify_detail;
  // A lossy codec's point (int8, int4, cachegen that loaded chunks) is never verified: it says how far it
  // is from compute-only instead. The first token and logits are its own (its first measured
  // repetition); K and V errors are the codec's over the whole prefix (see CodecQuality).
  bool lossy = false;
  std::optional<bool> first_token_agrees;
  std::optional<double> logits_rel_error;  // relative L2 against compute-only
  std::optional<double> k_rel_error;
  std::optional<double> v_rel_error;

  bool operator==(const Point&) const = default;
};

struct TimelineEvent {
  std::string lane;            // "compute", "load", "h2d", "suffix"
  int chunk = -1;              // -1 for events not tied to a chunk (suffix)
  double start_ms = 0;         // from the request's t0
  double end_ms = 0;
  uint64_t bytes = 0;
  double queue_wait_ms = 0;    // time the chunk waited before this step began (throttle, ring slot)
  bool ok = true;              // false: this step failed and the chunk was recovered elsewhere
  int chunks = 1;              // compute: the run covers chunks [chunk, chunk + chunks) (its grain)
  // compute: the run was abandoned at a layer boundary, taken over by the load lane (ok is false);
  // load/h2d: the chunk was taken over from the compute lane.
  bool taken_over = false;
  // Tensor parallelism. compute: GPU ms of the run's all-reduces; load: ms the last rank took the
  // chunk after rank 0 decided (the cost of agreeing on claims). 0 without it.
  double collective_ms = 0;
  double claim_spread_ms = 0;

  bool operator==(const TimelineEvent&) const = default;
};

struct RequestTimeline {
  std::string point_key;       // point_key() of the point this request belongs to
  std::string mode;
  int repetition = 0;
  std::vector<TimelineEvent> events;

  bool operator==(const RequestTimeline&) const = default;
};

// One request's measurement of one codec (engine/codec_quality.hpp): an untimed run that loaded
// every prefix chunk of the codec's store, against compute-only.
struct CodecSample {
  std::string codec;         // "none", "int8", "int4"
  std::string store_codec;   // the store's codec field with its parameters: "int8;group=64;scale=f16"
  int64_t chunk_tokens = 0;
  std::string request_id;
  int64_t prefix_tokens = 0;
  uint64_t store_bytes = 0;  // encoded payload bytes of the prefix
  uint64_t raw_bytes = 0;    // the same prefix uncompressed in the cache's dtype
  double k_rel_error = 0;
  double v_rel_error = 0;
  double logits_rel_error = 0;
  bool first_token_agrees = false;
  int chunks_loaded = 0;
  int chunks_total = 0;
  uint64_t decoded_bytes = 0;  // written by the decode steps of that run
  int64_t decode_ns = 0;       // their summed duration (GPU: CUDA events around each chunk's kernel)
};

// The quality table: per (codec, chunk size), over the workload's requests.
struct CodecQuality {
  std::string codec;
  std::string store_codec;
  int64_t chunk_tokens = 0;
  int requests = 0;
  double bytes_per_token = 0;      // store bytes / prefix tokens, over all requests
  double compression_ratio = 0;    // raw bytes / store bytes, over all requests
  double k_rel_error = 0;          // mean over requests
  double v_rel_error = 0;
  double logits_rel_error = 0;     // mean over requests
  double logits_rel_error_max = 0;
  int first_token_agreements = 0;  // requests whose first token equals compute-only's
  int chunks_not_loaded = 0;       // over requests: chunks the all-loaded run had to compute (should be 0)
  // Decode throughput in the load lane: decoded bytes over the summed decode time of the all-loaded
  // runs (GB/s, decimal); absent for none, which decodes nothing.
  std::optional<double> decode_gbytes_per_s;

  bool operator==(const CodecQuality&) const = default;
};

// Rows in first-appearance order of (codec, chunk_tokens).
std::vector<CodecQuality> aggregate_codec_quality(const std::vector<CodecSample>& samples);

struct RunReport {
  int schema_version = kReportSchemaVersion;
  std::string created_utc;          // ISO 8601, "2026-01-31T12:00:00Z"
  std::string command_line;
  uint64_t seed = 0;
  // True when the runner ran the modes of one configuration round-robin per repetition, so
  // sample i of every mode was taken close in time: compare then pairs them for ratios.
  bool repetitions_paired = false;
  nlohmann::json environment = nlohmann::json::object();  // system info, storage, GPU (the CLI fills it)
  nlohmann::json config = nlohmann::json::object();       // the sweep config as given
  std::vector<Point> points;
  std::vector<RequestTimeline> timelines;
  std::vector<CodecQuality> codec_quality;  // empty unless a lossy codec ran with verification

  bool operator==(const RunReport&) const = default;
};

// Identity of a point across runs, as typed (axis, value) pairs compared by value: model,
// backend, context_tokens, suffix_tokens, chunk_tokens, source, bandwidth (Gbit/s, none =
// unlimited, or the trace label), codec, the further axes by name, the conditions (unless
// `with_conditions` is false), and mode. Warmup and repeat are not part of it, so a
// 10-repetition run compares with a 5-repetition baseline.
AxisFields point_identity(const Point& p, bool with_conditions = true);
// The same without the mode: the points that derived ratios relate.
AxisFields group_identity(const Point& p, bool with_conditions = true);
// The identity printed, for people and for the JSON "key" (compare matches on point_identity).
std::string point_key(const Point& p);
std::string group_key(const Point& p);
// "file", "mem", "tcp" (the part before ':' or "://"; the whole string when it has none).
std::string source_kind(std::string_view source);
// "8", "0.5", "unlimited".
std::string bandwidth_label(const std::optional<double>& bandwidth_gbps);
// The point's bandwidth as a table row reads it: "8", "unlimited", or
// "trace:bt.csv@1a2b3c4d (mean 0.05, min 0)".
std::string bandwidth_label(const Point& p);

// Fills ttft_ms and noisy from ttft_ms_samples.
void finalize_point(Point& p);

// A point whose load lane reached under this share of its target bandwidth measured the loader,
// not the bandwidth: it is loader-bound (derived from load_gbps and bandwidth_gbps, never stored).
inline constexpr double kLoaderBoundShare = 0.97;
bool loader_bound(const Point& p);
bool is_noisy(const Summary& s);
// Index of the repetition whose TTFT is the (lower) median; the CLI takes per-request counters
// from it. Throws on an empty span.
size_t median_repetition(std::span<const double> ttft_ms_samples);

// Display and sort order of modes: compute, io, cake, split=x (by x), oracle, then others.
bool mode_less(std::string_view a, std::string_view b);

// Per configuration group (same configuration minus mode), on TTFT medians. A value is absent
// when a mode it needs is missing from the group or has no samples.
struct DerivedGroup {
  std::string group_key;
  std::optional<double> compute_ttft_ms;
  std::optional<double> io_ttft_ms;
  std::optional<double> cake_ttft_ms;
  std::optional<double> oracle_ttft_ms;
  std::optional<double> cake_vs_compute_reduction_pct;  // 100 * (1 - cake / compute)
  std::optional<double> cake_vs_io_reduction_pct;       // 100 * (1 - cake / io)
  std::optional<double> cake_over_oracle;               // cake / oracle (>= 1 when oracle is best)
  std::optional<double> cake_over_best;                 // cake / min(compute, io): Cake's promise is <= 1

  bool operator==(const DerivedGroup&) const = default;
};

// Groups in order of first appearance in report.points. The one place these are computed.
std::vector<DerivedGroup> derive_groups(const RunReport& report);
const DerivedGroup* find_group(const std::vector<DerivedGroup>& groups, std::string_view key);

// "2026-01-31T12:00:00Z" for created_utc.
std::string utc_now_iso8601();

}  // namespace cake
