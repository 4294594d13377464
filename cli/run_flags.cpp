#include "cli/run_flags.hpp"

#include <algorithm>
#include <filesystem>

#include "common/error.hpp"
#include "common/sysinfo.hpp"
#include "common/units.hpp"
#include "engine/axes.hpp"
#include "kernels/presets.hpp"
#include "workloads/dataset/dataset.hpp"
#include "workloads/length_spec.hpp"
#include "workloads/synthetic.hpp"
#include "workloads/trace/mooncake_trace.hpp"
#include "workloads/tokenizer/tokenizer.hpp"

namespace cake {
namespace {

std::vector<int> parse_int_list(const std::string& text, const char* what) {
  std::vector<int> out;
  for (const std::string& item : split_list(text, what)) {
    const int64_t v = parse_token_count(item);
    out.push_back(static_cast<int>(v));
  }
  return out;
}

bool gpu_available(BackendKind kind) {
  if (kind == BackendKind::cpu) return false;
  if (kind == BackendKind::cuda) return true;
#if defined(CAKE_HAVE_CUDA_BACKEND)
  return !probe_cuda().gpus.empty();
#else
  return false;
#endif
}

}  // namespace

ModelConfig resolve_model(const std::string& text, std::shared_ptr<const ckpt::Checkpoint>* checkpoint) {
  if (std::filesystem::is_directory(text)) {
    auto c = std::make_shared<const ckpt::Checkpoint>(ckpt::open_checkpoint(text));
    if (checkpoint != nullptr) *checkpoint = c;
    return c->model;
  }
  if (text.size() > 5 && text.substr(text.size() - 5) == ".json") return model_from_hf_config(text);
  return preset_model(text);
}

void add_run_flags(CLI::App* cmd, RunFlags& f, bool sweep_flags) {
  cmd->add_option("--model", f.model,
                  "Model preset (llama-3-8b, llama-3.1-70b, mistral-7b, qwen2.5-7b, tiny, tiny-mha), a HuggingFace "
                  "config.json (its shapes, seeded weights), or a HuggingFace model folder (config.json + safetensors: "
                  "its weights; llama, mistral, qwen2) [default: llama-3-8b on a GPU, tiny on the CPU]");
  cmd->add_option("--set", f.model_overrides, "Override a model field, e.g. --set layers=8 (repeatable)");
  cmd->add_option("--backend", f.backend, "auto, cuda or cpu")->capture_default_str();
  cmd->add_option("--context", f.context,
                  "Prefix (cached context) lengths in tokens: list '4k,16k', range '1k..64k:x2' "
                  "[default: 16k on a GPU, 2k on the CPU]");
  cmd->add_option("--suffix", f.suffix, "Suffix (new question) lengths in tokens [default: 128 GPU, 32 CPU]");
  cmd->add_option("--requests", f.requests_per_context, "Requests drawn when --context is a distribution")
      ->capture_default_str();
  cmd->add_option("--dataset", f.dataset, "Contexts from a file: LongBench/ShareGPT JSONL, or text file(s)");
  cmd->add_option("--tokenizer", f.tokenizer,
                  "HuggingFace tokenizer.json (byte-level BPE) for --dataset, or 'bytes' [default: the model folder's "
                  "tokenizer.json when --model is a folder that has one, else bytes]");
  cmd->add_option("--max-context", f.max_prefix_tokens, "Cut dataset prefixes to this many tokens [default: model max_context - 4096]");
  cmd->add_option("--max-records", f.max_records, "Use at most this many dataset records (0 = all)");
  cmd->add_flag("--skip-bad", f.skip_bad, "Skip and count bad dataset/trace records instead of failing");
  cmd->add_option("--trace", f.trace, "Mooncake JSONL trace: replay its requests under FIFO queueing on one GPU");
  cmd->add_option("--time-scale", f.time_scale, "Scale trace arrival gaps (0.5 = twice the load)")->capture_default_str();
  cmd->add_option("--store", f.store_dir, "KV store directory")->capture_default_str();
  cmd->add_option("--seed", f.seed, "Seed of the synthetic tokens (weights use the model's seed)")->capture_default_str();
  cmd->add_option("--cpu-threads", f.cpu_threads, "CPU backend threads (0 = all cores)")->capture_default_str();
  cmd->add_option("--tp", f.tp,
                  "Tensor parallelism over this many GPUs (CUDA, NCCL): one thread per GPU, a KV store shard and a "
                  "load lane per rank")
      ->capture_default_str();
  cmd->add_option("--tp-rank", f.tp_rank,
                  "One process per rank: this process is rank R of --tp (multi-process / multi-host; compute, io and "
                  "split modes)");
  cmd->add_option("--tp-id-file", f.tp_id_file,
                  "With --tp-rank: the file rank 0 writes the NCCL unique id to and the other ranks read (a path all "
                  "processes see)");
  // One option per sweep axis, from the table: its flag, help and defaults are declared there.
  for (const SweepAxis& axis : sweep_axes())
    if (sweep_flags || axis.prepare) cmd->add_option(axis.flag, f.axes[axis.name], axis.help);
  cmd->add_option("--compute-tokens", f.compute_tokens,
                  "CPU backend: most tokens the compute lane prefills in one call, as a run of whole chunks (Cake "
                  "shortens runs near the meet) [default: one chunk]");
  if (!sweep_flags) return;
  cmd->add_option("--bandwidth-trace", f.bandwidth_trace,
                  "CSV 't_ms,gbps': bandwidth that changes during a request (the same as --bandwidth trace:FILE)");
  cmd->add_option("--repeat", f.repeat,
                  "Timed repetitions per point [default: 3 on a GPU, 5 on the CPU, whose medians move more with the "
                  "machine's other work]");
  cmd->add_option("--warmup", f.warmup, "Untimed repetitions per point")->capture_default_str();
  cmd->add_option("--max-point-time", f.max_point_time_s,
                  "Seconds: after --repeat rounds, the points of a group (compute-only, or one source and bandwidth's "
                  "modes, alternating) whose own runs took under this long in all get more rounds while any of their "
                  "medians has a relative standard error over --max-noise; short points get dozens of repetitions, "
                  "long ones none (0: exactly --repeat)")
      ->capture_default_str();
  cmd->add_option("--max-noise", f.max_noise_pct,
                  "Percent: the relative standard error of a median (1.2533 sd / sqrt(n) / median) that needs no more "
                  "rounds (see --max-point-time)")
      ->capture_default_str();
  cmd->add_option("--verify", f.verify, "full (token + KV of the first repetition), token, or off")->capture_default_str();
  cmd->add_option("--queue-depth", f.queue_depth, "io_uring reads in flight")->capture_default_str();
  cmd->add_option("--request-size", f.request_size, "io_uring read size")->capture_default_str();
  cmd->add_flag("--buffered", f.buffered, "Read the store through the page cache (no O_DIRECT)");
  cmd->add_option("--file-reads", f.file_reads,
                  "File source: how the reader threads get each piece's bytes. uring: io_uring reads (O_DIRECT unless "
                  "--buffered); map: copies out of a read-only mapping of the store (into a host cache with streaming "
                  "stores); pread: pread() on the reader threads (into a host cache through a one-request buffer per "
                  "thread); auto: for a store on a memory filesystem (tmpfs, ramfs) map into a GPU cache's staging "
                  "(a read() there costs a system call and a page-cache lookup a page) and pread into a host cache "
                  "(where a fresh mapping cost 3.5x on one dev-box kernel), uring otherwise. Which of map and pread is "
                  "faster depends on the host: compare them with `calibrate --file-reads`")
      ->capture_default_str();
  cmd->add_option("--staging-slots", f.staging_slots, "Chunks in flight in the load lane")->capture_default_str();
  cmd->add_option("--tp-throttle", f.tp_throttle,
                  "With --tp: per-gpu (each rank's load lane gets --bandwidth) or shared (all ranks share one "
                  "--bandwidth)")
      ->capture_default_str();
  cmd->add_option("--staging-size", f.staging_size,
                  "File source: bytes in flight in the load lane (a pool of pinned staging pieces, within the staging slots' chunks)")
      ->capture_default_str();
  cmd->add_option("--piece-size", f.piece_size, "File source: one staging piece, uploaded as it lands (a 4 KiB multiple)")
      ->capture_default_str();
  cmd->add_option("--checksum", f.checksum,
                  "File source into a GPU KV cache: where each chunk's CRC-32C is checked. cpu: by the reader threads "
                  "as bytes land; gpu: by a kernel over the chunk's bytes in the KV cache after its copies (the readers "
                  "only read: they were the load lane's limit, ~20% of their time in the CRC); auto: gpu where that "
                  "applies, cpu otherwise (host caches, mem and tcp sources, encoded stores)")
      ->capture_default_str();
  cmd->add_option("--tcp-pipeline", f.tcp_pipeline, "Chunk requests in flight per TCP connection")->capture_default_str();
  cmd->add_option("--tcp-connections", f.tcp_connections,
                  "TCP connections per TCP source, 1-64: one stream is bound by one core receiving and checksumming "
                  "(and one serving); only as many are busy as chunks are in flight (--staging-slots)")
      ->capture_default_str();
  cmd->add_option("--inject-compute-delay-ms", f.inject_compute_delay_ms,
                  "Test hook: sleep this long after every computed chunk (regression checks)");
  cmd->add_option("--inject-compute-slowdown", f.inject_compute_slowdown,
                  "Test hook: the compute lane takes this many times as long per chunk (CI gate)");
  cmd->add_option("--inject-load-slowdown", f.inject_load_slowdown,
                  "Test hook: the throttle delivers the asked rate divided by this, labelled as asked (CI gate)");
  cmd->add_option("--inject-fault", f.inject_fault, "Test hook: these chunk indices fail to load (comma list)");
  cmd->add_option("--out", f.out_dir, "Output directory [default: ./cake-results/<timestamp>]");
  cmd->add_flag("-q,--quiet", f.quiet, "No progress bar");
}

Resolved resolve_run_flags(const RunFlags& f, bool sweep) {
  Resolved r;
  r.backend_kind = parse_backend_kind(f.backend);
  r.gpu = gpu_available(r.backend_kind);

  const std::string model = f.model.empty() ? (r.gpu ? "llama-3-8b" : "tiny") : f.model;
  if (f.model.empty()) r.notes.push_back(cat("model: ", model, " (default for a ", r.gpu ? "GPU" : "CPU", " run)"));
  r.model = resolve_model(model, &r.checkpoint);
  if (r.checkpoint) r.notes.push_back(cat("checkpoint ", ckpt::describe(*r.checkpoint), "; honoured: ",
                                          [&] {
                                            std::string s;
                                            for (const std::string& h : r.checkpoint->honoured) s += (s.empty() ? "" : ", ") + h;
                                            return s;
                                          }()));
  for (const std::string& o : f.model_overrides) {
    const size_t eq = o.find('=');
    if (eq == std::string::npos) throw UsageError(cat("invalid --set '", o, "': write FIELD=VALUE, e.g. layers=8"));
    // A checkpoint's shapes are its tensors'; only the positions it is run at may be changed.
    if (r.checkpoint && o.substr(0, eq) != "max_context")
      throw UsageError(cat("--set ", o, ": a checkpoint's shapes and weights are fixed (only max_context may be set)"));
    apply_model_override(r.model, o.substr(0, eq), o.substr(eq + 1));
  }

  r.model.validate();

  SweepConfig& s = r.sweep;
  std::map<std::string, std::string> axes = f.axes;
  if (!f.bandwidth_trace.empty()) {
    if (!axes["bandwidth"].empty())
      throw UsageError("give either --bandwidth or --bandwidth-trace (or write --bandwidth trace:FILE in the list)");
    axes["bandwidth"] = cat("trace:", f.bandwidth_trace);
  }
  resolve_axes(axes, r.gpu, sweep, s, r.notes);
  // One process per rank: every process must make the same compute calls (each all-reduce needs
  // its peers). Cake and the oracle decide online from each process's own timings, and claims are
  // agreed only between the ranks of one process: refused here rather than left to hang.
  if (f.tp_rank >= 0)
    for (const Mode& m : s.modes)
      if (m.kind == ModeKind::cake || m.kind == ModeKind::oracle)
        throw UsageError(cat("--tp-rank runs compute, io and split only (", m.name(),
                             " needs claims agreed across ranks: run --tp N in one process)"));
  // The codec quality runs and the decode step work on one whole KV cache; a rank's shard of the
  // KV heads is not wired to them yet, so tensor parallelism loads uncompressed stores only.
  if (f.tp > 1 || f.tp_rank >= 0)
    for (CodecKind k : s.codecs)
      if (k != CodecKind::none)
        throw UsageError(cat("--codec ", codec_kind_name(k), " with tensor parallelism is not supported yet (use --codec none)"));
  // Two grains (--compute-tokens): the compute lane may prefill runs of several store chunks. A
  // chunk's KV must come out bit-identical in every mode, whatever run it was computed in. The CPU
  // backend computes every row alike whatever the call's size; cuBLAS picks its kernels by the
  // number of rows and cuDNN builds a plan per shape, so on the GPU the compute grain is the chunk.
  if (f.compute_tokens < 0) throw UsageError(cat("--compute-tokens must be positive, got ", f.compute_tokens));
  if (r.gpu && f.compute_tokens > 0)
    for (int32_t chunk : s.chunk_tokens)
      if (f.compute_tokens / chunk > 1)
        throw UsageError(cat("--compute-tokens ", f.compute_tokens, " would prefill runs of several ", chunk,
                             "-token chunks on the GPU, where a chunk's KV then depends on the run it was computed in "
                             "(cuBLAS picks kernels by row count), so modes could not be bit-exact; use a larger --chunk"));
  s.compute_tokens = f.compute_tokens;
  // The backend is built for one attention kernel, so a run takes one value of that axis.
  for (const AxisValues& axis : s.axes)
    if (axis.name == "attention" && axis.values.size() > 1)
      throw UsageError("give one --attention value per run: the backend is built for one attention kernel");
  if (!f.trace.empty()) {
    if (!f.context.empty() || !f.dataset.empty()) throw UsageError("give one of --trace, --dataset or --context");
    TraceOptions o;
    o.time_scale = f.time_scale;
    o.skip_bad = f.skip_bad;
    if (f.time_scale < 0) throw UsageError("--time-scale must be >= 0");
    r.trace = load_mooncake_trace(f.trace, o);
    for (const TraceRequest& t : r.trace->requests) s.requests.push_back(trace_request(t, r.model.vocab, f.seed));
    r.workload = {{"kind", "trace"}, {"path", r.trace->path}, {"requests", r.trace->requests.size()},
                  {"hit_ratio", r.trace->hit_ratio()}, {"time_scale", f.time_scale}, {"skipped", r.trace->skipped.count}};
    r.notes.push_back(cat("trace ", r.trace->path, ": ", r.trace->requests.size(), " requests, prefix-cache hit ratio ",
                          r.trace->hit_ratio()));
  } else if (!f.dataset.empty()) {
    if (!f.context.empty()) throw UsageError("give either --dataset or --context, not both");
    // A model folder's own tokenizer is the default: a real checkpoint should read real text.
    std::string tokenizer_path = f.tokenizer;
    if (tokenizer_path.empty() && r.checkpoint) {
      const std::string own = cat(r.checkpoint->dir, "/tokenizer.json");
      if (std::filesystem::exists(own)) {
        tokenizer_path = own;
        r.notes.push_back(cat("tokenizer: ", own, " (the model folder's; --tokenizer bytes to use bytes)"));
      } else {
        r.notes.push_back(cat("tokenizer: bytes (", r.checkpoint->dir, " has no tokenizer.json)"));
      }
    }
    std::unique_ptr<Tokenizer> tokenizer =
        tokenizer_path.empty() || tokenizer_path == "bytes" ? make_byte_tokenizer() : load_bpe_tokenizer(tokenizer_path);
    if (tokenizer->vocab_size() > r.model.vocab)
      throw UsageError(cat("tokenizer ", tokenizer->description(), " has ", tokenizer->vocab_size(),
                           " ids but the model's vocab is ", r.model.vocab, " (choose a model with a larger vocab)"));
    DatasetOptions o;
    o.max_prefix_tokens = f.max_prefix_tokens > 0 ? f.max_prefix_tokens : std::max<int64_t>(1, r.model.max_context - 4096);
    o.max_records = f.max_records;
    o.skip_bad = f.skip_bad;
    Dataset d = load_dataset(f.dataset, *tokenizer, o);
    s.requests = std::move(d.requests);
    r.workload = {{"kind", "dataset"}, {"path", d.path}, {"tokenizer", d.tokenizer},
                  {"records", s.requests.size()}, {"skipped", d.skipped.count}, {"skip_reasons", d.skipped.first_reasons},
                  {"prefixes_cut", d.prefixes_cut}, {"prefix_tokens_cut", d.prefix_tokens_cut}};
    r.notes.push_back(cat("dataset ", d.path, ": ", s.requests.size(), " requests, tokenizer ", d.tokenizer,
                          d.skipped.count ? cat(", ", d.skipped.count, " bad records skipped") : std::string(),
                          d.prefixes_cut ? cat(", ", d.prefixes_cut, " prefixes cut") : std::string()));
  } else {
    const LengthSpec contexts = parse_length_spec(f.context.empty() ? (r.gpu ? "16k" : "2k") : f.context);
    const LengthSpec suffixes = parse_length_spec(f.suffix.empty() ? (r.gpu ? "128" : "32") : f.suffix);
    if (f.requests_per_context < 1) throw UsageError("--requests must be at least 1");
    s.requests = synthetic_requests(contexts, suffixes, f.requests_per_context, r.model.vocab, f.seed);
    r.workload = {{"kind", "synthetic"}, {"context", contexts.describe()}, {"suffix", suffixes.describe()},
                  {"requests", s.requests.size()}, {"tokenizer", "none (seeded token ids)"}};
  }
  for (const Request& req : s.requests) {
    if (req.suffix.empty()) throw UsageError(cat("request ", req.id, ": empty suffix; TTFT needs a new token to answer"));
    const int64_t total = static_cast<int64_t>(req.prefix.size() + req.suffix.size());
    if (total > r.model.max_context)
      throw UsageError(cat("request ", req.id, ": ", req.prefix.size(), " + ", req.suffix.size(), " tokens exceed the model's max_context ",
                           r.model.max_context, " (raise it with --set max_context=N, or --max-context for datasets)"));
  }

  s.store_dir = f.store_dir;
  // A CPU request takes milliseconds and shares its cores with everything else on the machine, so its
  // median needs more samples before cake/best and cake/oracle mean something; a GPU point takes seconds.
  s.repeat = f.repeat.value_or(r.gpu ? 3 : 5);
  if (!f.repeat) r.notes.push_back(cat("repeat: ", s.repeat, " (default for a ", r.gpu ? "GPU" : "CPU", " run)"));
  s.warmup = f.warmup;
  s.max_point_seconds = f.max_point_time_s;
  s.max_noise = f.max_noise_pct / 100;
  s.verify = parse_verify_level(f.verify);
  s.staging_slots = f.staging_slots;
  if (f.tp_throttle != "per-gpu" && f.tp_throttle != "shared")
    throw UsageError(cat("--tp-throttle must be per-gpu or shared, got '", f.tp_throttle, "'"));
  s.shared_throttle = f.tp_throttle == "shared";
  if (f.staging_slots < 1 || f.staging_slots > 64) throw UsageError("--staging-slots must be 1 to 64");
  s.staging_bytes = parse_bytes(f.staging_size);
  s.checksum = parse_checksum_place(f.checksum);
  if (s.checksum == ChecksumPlace::gpu && !r.gpu)
    throw UsageError("--checksum gpu checks chunks in a KV cache on a GPU; this run's backend keeps it in host memory "
                     "(use --checksum auto or cpu)");
  if (s.checksum == ChecksumPlace::gpu)
    for (const SourceSpec& spec : s.sources)
      if (spec.kind != SourceSpec::Kind::file)
        throw UsageError(cat("--checksum gpu applies to the file source's byte staging; source ", spec.text(),
                             " checks on the CPU (use --checksum auto)"));
  s.piece_bytes = parse_bytes(f.piece_size);
  if (s.piece_bytes < 4096 || s.piece_bytes % 4096 != 0)
    throw UsageError(cat("--piece-size must be a positive multiple of 4 KiB, got ", f.piece_size));
  if (s.staging_bytes < s.piece_bytes)
    throw UsageError(cat("--staging-size ", f.staging_size, " must hold at least one piece of ", f.piece_size));
  if (f.queue_depth < 1 || f.queue_depth > 4096) throw UsageError("--queue-depth must be 1 to 4096");
  s.source_options.queue_depth = f.queue_depth;
  s.source_options.request_bytes = parse_bytes(f.request_size);
  if (s.source_options.request_bytes < 4096 || s.source_options.request_bytes % 4096 != 0)
    throw UsageError(cat("--request-size must be a multiple of 4 KiB (O_DIRECT), got ", f.request_size));
  s.source_options.o_direct = !f.buffered;
  s.source_options.file_reads = parse_file_reads(f.file_reads);
  s.source_options.tcp_pipeline = f.tcp_pipeline;
  if (f.tcp_connections < 1 || f.tcp_connections > 64) throw UsageError(cat("--tcp-connections must be 1 to 64, got ", f.tcp_connections));
  s.source_options.tcp_connections = f.tcp_connections;
  if (!f.inject_fault.empty()) s.source_options.inject_fail_chunks = parse_int_list(f.inject_fault, "inject-fault");
  s.inject_compute_delay_ms = f.inject_compute_delay_ms;
  s.inject_compute_slowdown = f.inject_compute_slowdown;
  s.inject_load_slowdown = f.inject_load_slowdown;
  if (f.inject_compute_delay_ms < 0) throw UsageError("--inject-compute-delay-ms must be >= 0");
  // Also checked by run_sweep (the engine's contract); here so a bad value stops before the backend
  // loads its weights.
  if (!(f.inject_compute_slowdown >= 1) || !(f.inject_load_slowdown >= 1))
    throw UsageError("--inject-compute-slowdown and --inject-load-slowdown must be at least 1");
  return r;
}

}  // namespace cake
