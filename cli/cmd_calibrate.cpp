// `cake-bench calibrate`: the load lane alone (file or mem source through the real pipeline:
// read, checksum, upload into a KV cache on the GPU when there is one), unthrottled and at each
// --bandwidth, beside its ceilings measured in the same call: the pinned host-to-device copy
// rate, fio on the same file where installed, a plain multi-threaded pread reader, and into a host
// cache the same reader landing its bytes in the cache (the loader's per-byte work, no pipeline).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "cli/exit_codes.hpp"
#include "common/error.hpp"
#include "common/sysinfo.hpp"
#include "common/units.hpp"
#include "loaders/calibration.hpp"
#include "loaders/fio_runner.hpp"
#include "loaders/mem_source.hpp"
#include "loaders/throttle.hpp"

namespace cake {
namespace {

struct CalibrateArgs {
  std::string store_dir;
  std::string bandwidths;
  int queue_depth = 16;
  std::string request_size = "1MiB";
  std::string size = "1GiB";
  std::string source = "file";
  int repeat = 1;
  bool no_fio = false;
  bool json = false;
  std::string json_out;  // also write the JSON object here, beside the table
  double point_seconds = 2;   // a throttled point loads at most about this long (whole chunks)
  std::string target = "auto";
  int reader_threads = 0;            // 0: the file source's default
  std::string staging = "pieces";    // byte staging, or whole-chunk slots (the older path)
  std::string staging_size = "32MiB";
  std::string piece_size = "2MiB";
  int chunks_in_flight = 8;
  std::string checksum = "auto";     // byte staging: where chunks are checksummed (auto, cpu, gpu)
  std::string file_reads = "auto";  // file source pieces: auto, uring, map, pread
};

// A throttled point whose achieved rate is under this share of its target measured the loader,
// not the bandwidth: it is loader-bound.
constexpr double kLoaderBoundShare = 0.97;

struct Ceilings {
  std::optional<double> h2d_bytes_per_sec;     // pinned cudaMemcpyAsync, this run
  // Plain pread threads on the same file, one run per repeat (alternating with the loader and fio);
  // `reader` is the run with the median rate.
  std::vector<ReaderMeasurement> reader_runs;
  std::optional<ReaderMeasurement> reader;
  // Into a host cache: the same threads, each request then copied into the cache as the loader must
  // (streaming stores fused with the CRC-32C). Not measured into a GPU cache.
  std::vector<ReaderMeasurement> landing_runs;
  std::optional<ReaderMeasurement> landing;
  std::string reader_note;                     // why a reader failed, when one did
};

// The run with the median rate (the upper one of an even count's middle pair).
std::optional<ReaderMeasurement> median_run(std::vector<ReaderMeasurement> runs) {
  if (runs.empty()) return std::nullopt;
  std::sort(runs.begin(), runs.end(),
            [](const ReaderMeasurement& a, const ReaderMeasurement& b) { return a.bytes_per_sec() < b.bytes_per_sec(); });
  return runs[runs.size() / 2];
}

// fio in one configuration: its runs and their median.
struct FioConfig {
  FioEngine engine = FioEngine::io_uring;
  int jobs = 1;
  int iodepth = 1;                             // reads in flight a job (1 for pvsync2)
  std::vector<FioResult> runs;
  std::optional<double> bytes_per_sec;         // median of the runs that worked
};

// One bandwidth point, measured `repeat` times (loader and each fio configuration alternating); the
// median is its value.
struct Point {
  std::optional<double> target_bytes_per_sec;  // empty: unthrottled
  std::vector<LoadMeasurement> loads;
  // fio with each engine (kFioEngines), each with one job and with as many jobs as the loader has
  // reader threads when that is more: the loader is held against the fastest (`fio_best`).
  std::vector<FioConfig> fios;
  std::string fio_note;                        // why there is no fio number, when there is none
  LoadMeasurement load;                        // the run with the median rate
  std::optional<double> fio_bytes_per_sec;     // the fastest configuration's median
  int fio_best = -1;                           // its index in `fios`
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// "1 job" or "2 jobs".
std::string jobs_text(int jobs) { return cat(jobs, jobs == 1 ? " job" : " jobs"); }

// "io_uring qd 16, 2 jobs", "pvsync2 qd 1, 1 job".
std::string fio_config_text(const FioConfig& c) {
  return cat(fio_engine_name(c.engine), " qd ", c.iodepth, ", ", jobs_text(c.jobs));
}

void settle(Point& p) {
  std::vector<double> rates;
  for (const auto& l : p.loads) rates.push_back(l.bytes_per_sec());
  const double m = median(rates);
  p.load = *std::min_element(p.loads.begin(), p.loads.end(), [m](const LoadMeasurement& a, const LoadMeasurement& b) {
    return std::abs(a.bytes_per_sec() - m) < std::abs(b.bytes_per_sec() - m);
  });
  for (size_t i = 0; i < p.fios.size(); ++i) {
    FioConfig& config = p.fios[i];
    std::vector<double> fio_rates;
    for (const FioResult& f : config.runs) {
      if (f.bytes_per_sec) fio_rates.push_back(*f.bytes_per_sec);
      else if (p.fio_note.empty()) p.fio_note = cat("fio (", fio_config_text(config), "): ", f.note);
    }
    if (fio_rates.empty()) continue;
    config.bytes_per_sec = median(fio_rates);
    if (!p.fio_bytes_per_sec || *config.bytes_per_sec > *p.fio_bytes_per_sec) {
      p.fio_bytes_per_sec = config.bytes_per_sec;
      p.fio_best = static_cast<int>(i);
    }
  }
}


nlohmann::json optional_gbps(std::optional<double> bytes_per_sec) {
  if (!bytes_per_sec) return nullptr;
  return bytes_per_sec_to_gbps(*bytes_per_sec);
}

// '1gbps,4gbps' or a range '1gbps..256gbps:x2' (common/units); 'unlimited' items are dropped
// (the unthrottled point is always measured first).
std::vector<double> parse_target_rates(const std::string& text) {
  std::vector<double> out;
  for (const std::optional<double>& r : parse_bandwidth_list(text))
    if (r) out.push_back(*r);
  return out;
}

bool loader_bound(const Point& p) {
  return p.target_bytes_per_sec && p.load.bytes_per_sec() < kLoaderBoundShare * *p.target_bytes_per_sec;
}

std::string ratio_text(double a, std::optional<double> b) {
  if (!b || !(*b > 0)) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", a / *b);
  return buf;
}

std::string gbps_text(std::optional<double> bytes_per_sec, const char* none) {
  if (!bytes_per_sec) return none;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", bytes_per_sec_to_gbps(*bytes_per_sec));
  return buf;
}

void print_table(const CalibrationStore& store, const std::vector<Point>& points, const CalibrateArgs& args,
                 const Ceilings& ceilings, const std::string& target, bool into_host) {
  const std::string store_bytes = format_bytes(store.header.chunks.back().offset + store.header.chunks.back().bytes);
  std::printf("store      %s (%s, %s)\n", store.path.c_str(), store_bytes.c_str(), store.created ? "written now" : "found");
  std::printf("source     %s\n", points.front().load.source_description.c_str());
  std::printf("into       %s\n", target.c_str());
  const double unthrottled = points.front().load.bytes_per_sec();
  std::printf("ceilings (same run):\n");
  std::printf("  loader, unthrottled          %10s Gbps\n", gbps_text(unthrottled, "-").c_str());
  std::printf("  pinned host-to-device copy   %10s Gbps   loader / copy   %s\n",
              gbps_text(ceilings.h2d_bytes_per_sec, "n/a").c_str(), ratio_text(unthrottled, ceilings.h2d_bytes_per_sec).c_str());
  if (args.source == "file") {
    const Point& first = points.front();
    std::printf("  fio (same file and bs)       %10s Gbps   loader / fio    %s\n",
                gbps_text(first.fio_bytes_per_sec, "n/a").c_str(), ratio_text(unthrottled, first.fio_bytes_per_sec).c_str());
    if (first.fio_best >= 0) {
      std::printf("    the fastest of %zu configurations (%s won):\n", first.fios.size(),
                  fio_config_text(first.fios[static_cast<size_t>(first.fio_best)]).c_str());
      for (const FioConfig& c : first.fios)
        std::printf("      %-36s %10s Gbps\n", fio_config_text(c).c_str(), gbps_text(c.bytes_per_sec, "failed").c_str());
    }
    if (ceilings.reader)
      std::printf("  plain reader (%s) %s Gbps   loader / reader %s\n", ceilings.reader->detail.c_str(),
                  gbps_text(ceilings.reader->bytes_per_sec(), "-").c_str(),
                  ratio_text(unthrottled, ceilings.reader->bytes_per_sec()).c_str());
    if (ceilings.landing)
      std::printf("  landing reader (the plain reader, each request then copied into the host cache with streaming\n"
                  "    stores and CRC-32C, as the loader must) %s Gbps   loader / landing %s\n",
                  gbps_text(ceilings.landing->bytes_per_sec(), "-").c_str(),
                  ratio_text(unthrottled, ceilings.landing->bytes_per_sec()).c_str());
    if (!ceilings.reader_note.empty()) std::printf("  plain reader: %s\n", ceilings.reader_note.c_str());
    // Not the same work: on the Zen 5 dev box fio read 128-220 Gbps this way while landing the same
    // bytes in memory topped out near 136 (results/loaders/round8-devbox-pread/); the landing reader
    // measures that in every call.
    if (into_host && (first.fio_bytes_per_sec || ceilings.reader)) {
      std::printf("  note: fio and the plain reader read into small buffers they reuse, which stay in the CPU's cache;\n"
                  "        into a host KV cache the loader also writes all %s to memory, so it does more than they do\n",
                  store_bytes.c_str());
      if (ceilings.landing && first.fio_bytes_per_sec && ceilings.landing->bytes_per_sec() < *first.fio_bytes_per_sec)
        std::printf("        here the landing reader, which does the loader's per-byte work without its pipeline, reached\n"
                    "        %s of fio: loader / landing is the loader's own overhead, loader / fio also counts that work\n",
                    ratio_text(ceilings.landing->bytes_per_sec(), first.fio_bytes_per_sec).c_str());
    }
  }
  std::printf("%-12s %-12s %-12s %-10s %-14s %-9s %s\n", "target_gbps", "loader_gbps", "fio_gbps", "ratio", "bytes",
              "seconds", "o_direct");
  bool any_bound = false;
  for (const Point& p : points) {
    const double loader = p.load.bytes_per_sec();
    std::string ratio = "-";
    if (p.target_bytes_per_sec) ratio = cat(ratio_text(loader, p.target_bytes_per_sec), " tgt");
    else if (p.fio_bytes_per_sec) ratio = cat(ratio_text(loader, p.fio_bytes_per_sec), " fio");
    std::string achieved = gbps_text(loader, "-");
    if (loader_bound(p)) {
      achieved += " *";
      any_bound = true;
    }
    std::printf("%-12s %-12s %-12s %-10s %-14llu %-9.3f %s\n", gbps_text(p.target_bytes_per_sec, "unlimited").c_str(),
                achieved.c_str(), gbps_text(p.fio_bytes_per_sec, "null").c_str(), ratio.c_str(),
                static_cast<unsigned long long>(p.load.bytes), p.load.seconds,
                args.source == "mem" ? "n/a" : (p.load.o_direct ? "yes" : "no"));
  }
  if (any_bound)
    std::printf("* loader-bound: achieved under %.0f%% of the target; the point measures the loader, not the bandwidth\n",
                kLoaderBoundShare * 100);
  std::printf("where the unthrottled load waited: %s\n", points.front().load.wait_summary().c_str());
  if (args.repeat > 1) std::printf("(medians of %d runs each; --json lists every run)\n", args.repeat);
  for (const Point& p : points)
    if (!p.fio_bytes_per_sec && args.source == "file" && !p.target_bytes_per_sec)
      std::printf("fio at %s: %s\n", gbps_text(p.target_bytes_per_sec, "unlimited").c_str(), p.fio_note.c_str());
  if (!points.front().load.o_direct && args.source == "file")
    std::printf("note: reads were buffered: %s\n", points.front().load.o_direct_detail.c_str());
}

nlohmann::json to_json(const CalibrationStore& store, const std::vector<Point>& points, const CalibrateArgs& args,
                       const FileSourceOptions& options, const Ceilings& ceilings, const std::string& target) {
  nlohmann::json pts = nlohmann::json::array();
  for (const Point& p : points) {
    nlohmann::json j;
    j["target_gbps"] = optional_gbps(p.target_bytes_per_sec);
    j["loader_gbps"] = bytes_per_sec_to_gbps(p.load.bytes_per_sec());
    j["loader_bound"] = loader_bound(p);
    j["fio_gbps"] = optional_gbps(p.fio_bytes_per_sec);
    j["fio_note"] = p.fio_note;
    const FioConfig* best = p.fio_best >= 0 ? &p.fios[static_cast<size_t>(p.fio_best)] : nullptr;
    j["fio_jobs"] = best ? nlohmann::json(best->jobs) : nlohmann::json(nullptr);
    j["fio_engine"] = best ? nlohmann::json(fio_engine_name(best->engine)) : nlohmann::json(nullptr);
    j["fio_command"] = best && !best->runs.empty() ? best->runs.front().command : "";
    nlohmann::json loader_runs = nlohmann::json::array();
    for (const auto& l : p.loads) loader_runs.push_back(bytes_per_sec_to_gbps(l.bytes_per_sec()));
    nlohmann::json fio_runs = nlohmann::json::array();
    if (best)
      for (const FioResult& f : best->runs) fio_runs.push_back(optional_gbps(f.bytes_per_sec));
    nlohmann::json fio_configs = nlohmann::json::array();
    for (const FioConfig& c : p.fios) {
      nlohmann::json runs = nlohmann::json::array();
      for (const FioResult& f : c.runs) runs.push_back(optional_gbps(f.bytes_per_sec));
      fio_configs.push_back({{"engine", fio_engine_name(c.engine)},
                             {"iodepth", c.iodepth},
                             {"jobs", c.jobs},
                             {"gbps", optional_gbps(c.bytes_per_sec)},
                             {"runs", runs},
                             {"command", c.runs.empty() ? "" : c.runs.front().command}});
    }
    j["fio_configs"] = fio_configs;
    j["loader_gbps_runs"] = loader_runs;
    j["fio_gbps_runs"] = fio_runs;
    j["bytes"] = p.load.bytes;
    j["seconds"] = p.load.seconds;
    j["o_direct"] = p.load.o_direct;
    j["chunks"] = p.load.chunks;
    j["failed_chunks"] = p.load.failed_chunks;
    j["wait_summary"] = p.load.wait_summary();
    j["lane_wait_ms"] = {{"path", p.load.pipeline.path},
                         {"into_cache", p.load.pipeline.into_cache},
                         {"pool_pieces", p.load.pipeline.pool_pieces},
                         {"piece_bytes", p.load.pipeline.piece_bytes},
                         {"no_free_piece", p.load.pipeline.wait_no_free_piece_ns / 1e6},
                         {"reads", p.load.pipeline.wait_reads_ns / 1e6},
                         {"reads_with_copies", p.load.pipeline.wait_overlap_ns / 1e6},
                         {"copies", p.load.pipeline.wait_copies_ns / 1e6},
                         {"gpu_checksums", p.load.pipeline.wait_verify_ns / 1e6},
                         {"run", p.load.pipeline.run_ns / 1e6}};
    j["checksum"] = {{"where", p.load.pipeline.checksum},
                     {"gpu_chunks", p.load.pipeline.gpu_checksums},
                     {"gpu_kernel_ms", p.load.pipeline.gpu_checksum_ns / 1e6}};
    if (p.load.readers)
      j["readers_ms"] = {{"threads", p.load.readers->threads},
                         {"read", p.load.readers->read_ns / 1e6},
                         {"checksum", p.load.readers->checksum_ns / 1e6},
                         {"throttle", p.load.readers->throttle_ns / 1e6},
                         {"idle", p.load.readers->idle_ns / 1e6}};
    j["ratio_to_target"] = p.target_bytes_per_sec ? nlohmann::json(p.load.bytes_per_sec() / *p.target_bytes_per_sec)
                                                  : nlohmann::json(nullptr);
    j["ratio_to_fio"] =
        p.fio_bytes_per_sec ? nlohmann::json(p.load.bytes_per_sec() / *p.fio_bytes_per_sec) : nlohmann::json(nullptr);
    pts.push_back(j);
  }
  nlohmann::json out;
  out["store"] = store.path;
  out["store_created"] = store.created;
  out["store_payload_bytes"] = [&] {
    uint64_t b = 0;
    for (const auto& c : store.header.chunks) b += c.bytes;
    return b;
  }();
  out["chunk_bytes"] = store.header.chunks.front().bytes;
  out["source"] = args.source;
  out["source_description"] = points.front().load.source_description;
  out["o_direct_detail"] = points.front().load.o_direct_detail;
  out["queue_depth"] = options.queue_depth;
  out["request_bytes"] = options.request_bytes;
  out["reader_threads"] = options.reader_threads;
  out["staging"] = args.staging;
  out["staging_size"] = args.staging_size;
  out["piece_size"] = args.piece_size;
  out["checksum"] = args.checksum;
  out["file_reads"] = args.file_reads;
  out["chunks_in_flight"] = args.chunks_in_flight;
  out["repeat"] = args.repeat;
  out["points"] = pts;
  out["target"] = target;
  out["loader_bound_share"] = kLoaderBoundShare;
  const double unthrottled = points.front().load.bytes_per_sec();
  out["h2d_pinned_gbps"] = optional_gbps(ceilings.h2d_bytes_per_sec);
  out["loader_over_h2d"] = ceilings.h2d_bytes_per_sec ? nlohmann::json(unthrottled / *ceilings.h2d_bytes_per_sec)
                                                      : nlohmann::json(nullptr);
  auto reader_json = [&](const std::optional<ReaderMeasurement>& median_one, const std::vector<ReaderMeasurement>& runs,
                         const char* ratio_key) -> nlohmann::json {
    if (!median_one) return nullptr;
    nlohmann::json rates = nlohmann::json::array();
    for (const ReaderMeasurement& r : runs) rates.push_back(bytes_per_sec_to_gbps(r.bytes_per_sec()));
    return {{"gbps", bytes_per_sec_to_gbps(median_one->bytes_per_sec())},
            {"gbps_runs", rates},
            {"detail", median_one->detail},
            {"threads", median_one->threads},
            {"o_direct", median_one->o_direct},
            {"landed", median_one->landed},
            {ratio_key, unthrottled / median_one->bytes_per_sec()}};
  };
  out["plain_reader"] = reader_json(ceilings.reader, ceilings.reader_runs, "loader_over_reader");
  out["landing_reader"] = reader_json(ceilings.landing, ceilings.landing_runs, "loader_over_landing");
  if (!ceilings.reader_note.empty()) out["plain_reader_note"] = ceilings.reader_note;
  out["system"] = cake::to_json(probe_system());
  out["storage"] = cake::to_json(probe_storage(args.store_dir));
  return out;
}

void run_calibrate(const CalibrateArgs& args, int& exit_code) {
  if (args.source != "file" && args.source != "mem")
    throw UsageError(cat("invalid --source '", args.source, "': use file or mem"));
  if (args.target != "auto" && args.target != "host" && args.target != "gpu")
    throw UsageError(cat("invalid --target '", args.target, "': use auto, host or gpu"));
  if (!(args.point_seconds > 0)) throw UsageError("--point-seconds must be positive");
  FileSourceOptions options;
  options.queue_depth = args.queue_depth;
  options.request_bytes = parse_bytes(args.request_size);
  options.reads = parse_file_reads(args.file_reads);
  if (args.staging != "pieces" && args.staging != "chunks")
    throw UsageError(cat("invalid --staging '", args.staging, "': use pieces or chunks"));
  if (args.chunks_in_flight < 1 || args.chunks_in_flight > 64) throw UsageError("--chunks-in-flight must be 1 to 64");
  LoadPipelineOptions pipeline;
  pipeline.staging_slots = args.chunks_in_flight;
  pipeline.piece_staging = args.staging == "pieces";
  pipeline.staging_bytes = parse_bytes(args.staging_size);
  pipeline.piece_bytes = parse_bytes(args.piece_size);
  pipeline.checksum = parse_checksum_place(args.checksum);
  if (pipeline.piece_bytes == 0 || pipeline.piece_bytes % 4096 != 0)
    throw UsageError(cat("--piece-size ", args.piece_size, " must be a positive multiple of 4 KiB"));
  const uint64_t size_bytes = parse_bytes(args.size);
  if (args.repeat < 1) throw UsageError(cat("--repeat ", args.repeat, " must be at least 1"));
  const std::vector<double> rates = args.bandwidths.empty() ? std::vector<double>{} : parse_target_rates(args.bandwidths);

  if (!args.json) std::fprintf(stderr, "calibrate: preparing the store in %s ...\n", args.store_dir.c_str());
  const CalibrationStore store = ensure_calibration_store(args.store_dir, size_bytes);
  options.reader_threads = args.reader_threads > 0 ? args.reader_threads : FileSource::default_reader_threads(store.path);
  const bool gpu = args.target == "gpu" || (args.target == "auto" && calibration_gpu_available());
  const CalibrationCache cache(store.header, gpu ? MemoryKind::device : MemoryKind::host);
  // A mapped store's pieces go into a host cache with streaming stores fused with their checksum
  // (crc32c_copy), so "memcpy" would name the wrong copy; the source line says how pieces are read.
  const std::string target = gpu ? "a KV cache on the GPU (cudaMemcpyAsync)" : "a KV cache in host memory (copied by the CPU)";

  std::unique_ptr<MemSource> mem;  // read and page-locked once, before any clock
  if (args.source == "mem") mem = std::make_unique<MemSource>(store.path, MemSourceOptions{.request_bytes = options.request_bytes});
  auto measure = [&](Throttle* throttle, size_t chunk_limit) {
    return args.source == "file" ? measure_file_load(store.path, store.header, options, throttle, pipeline, &cache, chunk_limit)
                                 : measure_mem_load(*mem, store.header, throttle, pipeline, &cache, chunk_limit);
  };
  Ceilings ceilings;
  if (gpu) {
    if (!args.json) std::fprintf(stderr, "calibrate: pinned host-to-device copy rate ...\n");
    ceilings.h2d_bytes_per_sec = measure_pinned_h2d(std::min<uint64_t>(size_bytes, 1ull << 30));
  }
  std::vector<Point> points;
  {
    Point p;
    for (int r = 0; r < args.repeat; ++r) {
      if (!args.json) std::fprintf(stderr, "calibrate: loader, unthrottled (run %d of %d) ...\n", r + 1, args.repeat);
      p.loads.push_back(measure(nullptr, 0));
      if (args.no_fio) {
        p.fio_note = "fio turned off (--no-fio)";
      } else if (args.source == "mem") {
        p.fio_note = "not applicable: the memory source reads no storage";
      } else {
        // fio with each engine, with one job and with as many as the loader's reader threads (each
        // its share of the file): the loader is held against the fastest, measured in the same
        // alternation.
        if (p.fios.empty()) {
          for (FioEngine engine : kFioEngines) {
            const int iodepth = engine == FioEngine::pvsync2 ? 1 : options.queue_depth;
            p.fios.push_back({engine, 1, iodepth, {}, {}});
            if (options.reader_threads > 1) p.fios.push_back({engine, options.reader_threads, iodepth, {}, {}});
          }
        }
        for (FioConfig& config : p.fios) {
          if (!args.json)
            std::fprintf(stderr, "calibrate: fio, same file and bs, %s (run %d of %d) ...\n",
                         fio_config_text(config).c_str(), r + 1, args.repeat);
          config.runs.push_back(
              run_fio_read(store.path, options.request_bytes, options.queue_depth, config.jobs, config.engine));
        }
      }
      if (args.source == "file" && ceilings.reader_note.empty()) {
        // The plain reader, and into a host cache the landing reader, in the same alternation.
        try {
          if (!args.json)
            std::fprintf(stderr, "calibrate: plain %d-thread reader (run %d of %d) ...\n", options.reader_threads, r + 1,
                         args.repeat);
          ceilings.reader_runs.push_back(
              measure_plain_reader(store.path, store.header, options.reader_threads, options.request_bytes));
          if (!gpu) {
            if (!args.json)
              std::fprintf(stderr, "calibrate: landing %d-thread reader (run %d of %d) ...\n", options.reader_threads,
                           r + 1, args.repeat);
            ceilings.landing_runs.push_back(measure_plain_reader(store.path, store.header, options.reader_threads,
                                                                 options.request_bytes, cache.host_bytes()));
          }
        } catch (const Error& e) {
          ceilings.reader_note = e.what();
        }
      }
    }
    settle(p);
    points.push_back(std::move(p));
  }
  ceilings.reader = median_run(ceilings.reader_runs);
  ceilings.landing = median_run(ceilings.landing_runs);
  for (double rate : rates) {
    Point p;
    p.target_bytes_per_sec = rate;
    // Whole chunks, at least two, for about --point-seconds at the target rate.
    const uint64_t chunk_bytes = store.header.chunks.front().bytes;
    const auto chunk_limit = static_cast<size_t>(
        std::max<double>(2, std::ceil(rate * args.point_seconds / static_cast<double>(chunk_bytes))));
    for (int r = 0; r < args.repeat; ++r) {
      if (!args.json) std::fprintf(stderr, "calibrate: loader at %s (run %d of %d) ...\n", format_gbps(rate).c_str(), r + 1, args.repeat);
      auto throttle = make_throttle(rate, "");
      p.loads.push_back(measure(throttle.get(), chunk_limit));
    }
    p.fio_note = "not applicable: fio runs unthrottled; a throttled point is held against its target";
    settle(p);
    points.push_back(std::move(p));
  }

  if (args.json) std::cout << to_json(store, points, args, options, ceilings, target).dump(2) << "\n";
  else print_table(store, points, args, ceilings, target, !gpu);
  if (!args.json_out.empty()) {
    std::ofstream f(args.json_out);
    f << to_json(store, points, args, options, ceilings, target).dump(2) << "\n";
    if (!f) throw EnvironmentError(cat("cannot write ", args.json_out));
  }

  exit_code = kExitOk;
  for (const Point& p : points) {
    for (const LoadMeasurement& l : p.loads) {
      if (l.failed_chunks == 0) continue;
      std::fprintf(stderr, "calibrate: %d chunks failed; first: %s\n", l.failed_chunks, l.first_error.c_str());
      exit_code = kExitFailure;
    }
  }
}

}  // namespace

void add_calibrate_command(CLI::App& app, int& exit_code) {
  auto* cmd = app.add_subcommand("calibrate",
                                 "Measure the load lane alone (read, checksum, upload) unthrottled and at each\n"
                                 "--bandwidth, beside the pinned copy rate, fio and a plain reader (into a host cache\n"
                                 "also a landing reader: the plain reader's reads copied into the cache as the loader must)");
  auto args = std::make_shared<CalibrateArgs>();
  cmd->add_option("--store", args->store_dir, "Store directory; a synthetic store of --size is written there if missing")
      ->required();
  cmd->add_option("--bandwidth", args->bandwidths,
                  "Target rates to check the throttle at: '1gbps,4gbps' or a range '1gbps..256gbps:x2'");
  cmd->add_option("--point-seconds", args->point_seconds,
                  "A throttled point loads about this long at its target (whole chunks, at least two)")
      ->capture_default_str();
  cmd->add_option("--target", args->target, "Where the chunks go: auto (the GPU when there is one), host or gpu")
      ->capture_default_str();
  cmd->add_option("--reader-threads", args->reader_threads,
                  "Reader threads of the file source, and of the plain pread baseline reader (0: the file source's "
                  "default: the cores less two, 1 to 10, at least two on a memory filesystem)")
      ->capture_default_str();
  cmd->add_option("--staging", args->staging,
                  "pieces: staging sized in bytes in flight, each piece uploaded as it lands; chunks: whole-chunk "
                  "slots (the older path, for comparison)")
      ->capture_default_str();
  cmd->add_option("--staging-size", args->staging_size, "Byte staging: bytes in flight (a pool of pinned pieces)")
      ->capture_default_str();
  cmd->add_option("--piece-size", args->piece_size, "Byte staging: one staging piece, a 4 KiB multiple")
      ->capture_default_str();
  cmd->add_option("--checksum", args->checksum,
                  "Byte staging into a GPU KV cache: where each chunk's CRC-32C is checked. cpu: by the reader threads "
                  "as bytes land; gpu: by a kernel over the chunk's bytes in the KV cache after its copies, so the "
                  "readers only read; auto: gpu for the file source into a GPU cache, cpu otherwise")
      ->capture_default_str();
  cmd->add_option("--file-reads", args->file_reads,
                  "File source, byte staging: uring (io_uring reads), map (copies out of a read-only mapping of the "
                  "store), pread (pread() on the reader threads; into a host cache through a small buffer per "
                  "thread), auto (on a memory filesystem map into a GPU cache's staging and pread into a host "
                  "cache, uring elsewhere)")
      ->capture_default_str();
  cmd->add_option("--chunks-in-flight", args->chunks_in_flight, "Chunks claimed and not yet resident at once")
      ->capture_default_str();
  cmd->add_option("--queue-depth", args->queue_depth, "Reads in flight (fio: iodepth)")->capture_default_str();
  cmd->add_option("--request-size", args->request_size, "Bytes per read (fio: bs), a 4 KiB multiple")->capture_default_str();
  cmd->add_option("--size", args->size, "Payload size of the synthetic store")->capture_default_str();
  cmd->add_option("--source", args->source, "file (io_uring, O_DIRECT) or mem (the store held in RAM: the throttle alone)")
      ->capture_default_str();
  cmd->add_option("--repeat", args->repeat, "Runs per point (loader and fio alternating); the median is reported")
      ->capture_default_str();
  cmd->add_flag("--no-fio", args->no_fio, "Do not run fio");
  cmd->add_flag("--json", args->json, "Print one JSON object instead of a table");
  cmd->add_option("--json-out", args->json_out, "Also write the JSON object to this file");
  cmd->callback([args, &exit_code] { run_calibrate(*args, exit_code); });
}

}  // namespace cake
