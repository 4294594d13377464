// The flags `run` and `prepare` share, and how they become a model, requests and a sweep.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "engine/sweep.hpp"
#include "kernels/backend_factory.hpp"
#include "kernels/checkpoint/checkpoint.hpp"
#include "kernels/model_config.hpp"
#include "workloads/trace/mooncake_trace.hpp"

namespace cake {

struct RunFlags {
  std::string model;            // preset name, a HuggingFace config.json (shapes), or a model folder (weights)
  std::vector<std::string> model_overrides;  // "layers=8"
  std::string backend = "auto";
  std::string context;          // "4k,16k", "1k..64k:x2", "lognormal:median=8k,p90=32k"
  std::string suffix;           // "128"
  int compute_tokens = 0;       // 0: one chunk per compute call
  // The sweep axes' flag texts by axis name (engine/axes.hpp: chunk, source, bandwidth, mode,
  // attention, ...); an absent or empty one takes the backend's default.
  std::map<std::string, std::string> axes;
  int requests_per_context = 1; // draws from a context distribution (--requests)
  std::string dataset;          // JSONL (LongBench/ShareGPT) or text file/dir
  std::string tokenizer;        // HuggingFace tokenizer.json (byte-level BPE); bytes without
  int64_t max_prefix_tokens = 0;  // dataset prefixes are cut to this (0: model max_context - 4096)
  int64_t max_records = 0;
  bool skip_bad = false;
  std::string trace;            // Mooncake JSONL: replayed under FIFO queueing
  double time_scale = 1.0;
  std::string bandwidth_trace;   // the older spelling of --bandwidth trace:FILE
  std::string store_dir = "./cake-store";
  std::optional<int> repeat;  // not given: the backend's default (resolve_run_flags)
  double max_point_time_s = 3;  // more rounds for a noisy group within this budget (0: exactly --repeat)
  double max_noise_pct = 1;     // a median's relative standard error that needs no more rounds
  int warmup = 1;
  uint64_t seed = 1;
  std::string verify = "full";
  int queue_depth = 16;
  std::string request_size = "1MiB";
  bool buffered = false;        // no O_DIRECT
  std::string file_reads = "auto";  // file source pieces: auto, uring, map, pread
  // Chunks the load lane holds at once. Two keep the link busy (one arriving, one queued); more
  // only means more chunks claimed by the load lane before their bytes can arrive through the
  // shared throttle, which leaves the compute lane idle at the meet (seen in timelines).
  int staging_slots = 2;
  std::string staging_size = "32MiB";  // the file source's byte staging: bytes in flight
  std::string piece_size = "2MiB";      // and one staging piece
  std::string checksum = "auto";        // where byte staging checks chunk checksums: auto, cpu, gpu
  int tcp_pipeline = 4;
  int tcp_connections = 2;  // as many as chunks in flight by default (--staging-slots)
  int cpu_threads = 0;
  // Tensor parallelism (CUDA): ranks, how the load lanes' bandwidth is throttled, and the
  // one-process-per-rank bootstrap.
  int tp = 1;
  std::string tp_throttle = "per-gpu";  // or "shared"
  int tp_rank = -1;
  std::string tp_id_file;
  double inject_compute_delay_ms = 0;
  double inject_compute_slowdown = 1;
  double inject_load_slowdown = 1;
  std::string inject_fault;     // "3,7": chunks the load lane fails
  std::string out_dir;
  bool quiet = false;
};

// Registers the workload and model flags (both commands) and, with `sweep_flags`, the sweep ones.
void add_run_flags(CLI::App* cmd, RunFlags& flags, bool sweep_flags);

// Defaults that make a bare command meaningful: llama-3-8b on a GPU, the tiny preset on a CPU.
struct Resolved {
  ModelConfig model;
  std::shared_ptr<const ckpt::Checkpoint> checkpoint;  // --model DIR: real weights
  BackendKind backend_kind;
  bool gpu = false;             // a GPU backend will run
  SweepConfig sweep;
  std::vector<std::string> notes;  // what was defaulted and why, for the user
  std::optional<Trace> trace;   // --trace: replayed after the sweep
  nlohmann::json workload = nlohmann::json::object();  // where the requests came from (report)
};
// `sweep` false (prepare): only the axes `prepare` takes are resolved.
Resolved resolve_run_flags(const RunFlags& flags, bool sweep);

// The model of --model TEXT: a folder is a checkpoint (returned too), "*.json" a config.json, else a preset.
ModelConfig resolve_model(const std::string& text, std::shared_ptr<const ckpt::Checkpoint>* checkpoint);

}  // namespace cake
