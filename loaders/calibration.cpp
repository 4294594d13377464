#include "loaders/calibration.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>
#include <thread>

#include "common/clock.hpp"
#include "common/crc32c.hpp"
#include "common/error.hpp"
#include "common/fd.hpp"
#include "common/hash.hpp"
#include "common/splitmix.hpp"
#include "common/units.hpp"
#include "loaders/aligned_buffer.hpp"
#include "loaders/load_pipeline.hpp"
#include "loaders/mem_source.hpp"
#include "loaders/store_file.hpp"

#if defined(CAKE_HAVE_CUDA)
#include "common/cuda_raii.hpp"
#endif

namespace cake {
namespace {

constexpr int kLayers = 1;
constexpr int kKvHeads = 8;
constexpr int kHeadDim = 128;
constexpr int32_t kChunkTokens = 2048;  // 2 * 8 * 128 * 4 B * 2048 = 16 MiB per chunk

// The pipeline (staging, checksum workers) is made before the clock starts, as the engine does;
// its run() opens the source (which starts the throttle): the first timed step.
LoadMeasurement measure(KvSource& source, const StoreHeader& header, const CalibrationCache* cache,
                        const LoadPipelineOptions& options, size_t chunk_limit) {
  if (options.staging_slots < 1) throw UsageError(cat("staging slots ", options.staging_slots, " < 1"));
  std::unique_ptr<CalibrationCache> own_cache;
  if (!cache) {
    own_cache = std::make_unique<CalibrationCache>(header, MemoryKind::host);
    cache = own_cache.get();
  }
  LoadMeasurement m;
  LoadPipeline pipeline(source, cache->view(), header.key.chunk_tokens, options);
  const size_t limit = chunk_limit == 0 ? header.chunks.size() : std::min(chunk_limit, header.chunks.size());
  size_t next = 0;
  const int64_t start_ns = now_ns();
  int64_t last_ns = start_ns;
  pipeline.run(
      header.key,
      [&]() -> std::optional<int> {
        if (next >= limit) return std::nullopt;
        return static_cast<int>(next++);
      },
      [&](const LoadedChunk& c) {
        ++m.chunks;
        if (c.ok) {
          m.bytes += c.bytes;
        } else {
          ++m.failed_chunks;
          if (m.first_error.empty()) m.first_error = c.error;
        }
        last_ns = std::max(last_ns, now_ns());
      });
  if (!pipeline.open_error().empty() && m.first_error.empty()) m.first_error = pipeline.open_error();
  m.seconds = ns_to_s(last_ns - start_ns);
  m.source_description = pipeline.source_description();
  m.pipeline = pipeline.stats();
  return m;
}

}  // namespace

std::string LoadMeasurement::wait_summary() const {
  auto ms = [](int64_t ns) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f ms", static_cast<double>(ns) / 1e6);
    return std::string(buf);
  };
  std::string out = cat("lane (", pipeline.path);
  if (pipeline.path == "pieces") {
    if (pipeline.into_cache) out += ", read straight into the cache";
    out += cat(", ", pipeline.pool_pieces, " x ", format_bytes(pipeline.piece_bytes), ", ", pipeline.pieces,
               " pieces, at most ", pipeline.max_pieces_reading, " reading and ", pipeline.max_pieces_copying,
               " copying at once): of ", ms(pipeline.run_ns), " it waited ", ms(pipeline.wait_reads_ns),
               " for reads alone, ", ms(pipeline.wait_overlap_ns), " for reads with copies queued, ",
               ms(pipeline.wait_copies_ns), " for copies alone, ", ms(pipeline.wait_verify_ns),
               " for GPU checksums alone; ", ms(pipeline.wait_no_free_piece_ns),
               " with no staging piece free and copies pending");
    if (pipeline.checksum == "gpu")
      out += cat("; checksums on the GPU: ", pipeline.gpu_checksums, " chunks, ", ms(pipeline.gpu_checksum_ns),
                 " of kernels on the copy stream");
    else
      out += "; checksums on the reader threads";
  } else {
    out += ")";
  }
  if (readers) {
    out += cat("; ", readers->threads, " readers: ", ms(readers->read_ns), " reading, ", ms(readers->checksum_ns),
               " checksumming, ", ms(readers->throttle_ns), " on the throttle, ", ms(readers->idle_ns),
               " idle (summed over threads)");
    if (readers->mapped_pieces > 0 || readers->bounced_pieces > 0)
      out += cat("; ", readers->mapped_pieces, " pieces copied out of the mapping, ", readers->bounced_pieces,
                 " read with pread through a buffer into the host cache");
  }
  return out;
}

StoreHeader calibration_shape(uint64_t payload_bytes) {
  StoreHeader h;
  h.layers = kLayers;
  h.kv_heads = kKvHeads;
  h.head_dim = kHeadDim;
  h.key.dtype = DType::f32;
  h.key.codec = "none";
  h.key.chunk_tokens = kChunkTokens;
  h.key.model_fingerprint = "cake-calibrate-synthetic-L1-kv8-d128-f32";
  const uint64_t token_bytes = h.raw_chunk_bytes(1);
  h.key.token_count = static_cast<int64_t>(std::max<uint64_t>(1, payload_bytes / token_bytes));
  h.key.token_hash = fnv1a64(&h.key.token_count, sizeof h.key.token_count);
  for (int64_t t = 0; t < h.key.token_count; t += kChunkTokens) {
    ChunkEntry c;
    c.first_token = t;
    c.tokens = static_cast<int32_t>(std::min<int64_t>(kChunkTokens, h.key.token_count - t));
    h.chunks.push_back(c);
  }
  return h;
}

CalibrationStore ensure_calibration_store(const std::string& dir, uint64_t payload_bytes) {
  CalibrationStore out;
  StoreHeader shape = calibration_shape(payload_bytes);
  out.path = store_path(dir, shape.key);
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw EnvironmentError(cat("cannot create store directory ", dir, ": ", ec.message()));
  UniqueFd fd(::open(out.path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.valid()) {
    out.header = read_store_header(fd.get(), out.path);
    validate_store_key(out.header, shape.key, out.path);
    return out;
  }
  if (errno != ENOENT) throw Error(cat("opening store ", out.path, ": ", errno_text(errno)));
  StoreWriter writer(out.path, shape);
  AlignedBuffer payload(shape.raw_chunk_bytes(kChunkTokens));
  uint64_t state = (uint64_t{std::random_device{}()} << 32) | std::random_device{}();
  for (size_t i = 0; i < shape.chunks.size(); ++i) {
    const size_t bytes = shape.raw_chunk_bytes(shape.chunks[i].tokens);
    auto* words = reinterpret_cast<uint64_t*>(payload.data());
    for (size_t w = 0; w < bytes / 8; ++w) words[w] = splitmix64(state++);
    writer.write_chunk(static_cast<int>(i), {payload.data(), bytes});
  }
  out.header = writer.finish();
  out.created = true;
  return out;
}

LoadMeasurement measure_file_load(const std::string& path, const StoreHeader& header, const FileSourceOptions& options,
                                  Throttle* throttle, const LoadPipelineOptions& pipeline, const CalibrationCache* cache,
                                  size_t chunk_limit) {
  FileSource source(path, options, throttle);
  LoadMeasurement m = measure(source, header, cache, pipeline, chunk_limit);
  if (m.pipeline.path == "pieces") m.readers = source.reader_stats();
  m.o_direct = source.o_direct();
  m.o_direct_detail = source.o_direct_detail();
  return m;
}

LoadMeasurement measure_mem_load(const std::string& path, const StoreHeader& header, uint64_t request_bytes,
                                 Throttle* throttle, const LoadPipelineOptions& pipeline, const CalibrationCache* cache,
                                 size_t chunk_limit) {
  MemSource source(path, {.request_bytes = request_bytes}, throttle);
  LoadMeasurement m = measure(source, header, cache, pipeline, chunk_limit);
  m.o_direct_detail = "memory source: no storage";
  return m;
}

CalibrationCache::CalibrationCache(const StoreHeader& h, MemoryKind memory) {
  view_.memory = memory;
  view_.dtype = h.key.dtype;
  view_.layers = h.layers;
  view_.kv_heads = h.kv_heads;
  view_.head_dim = h.head_dim;
  view_.capacity_tokens = h.key.token_count;
  const size_t tensor_bytes = view_.segment_bytes(view_.capacity_tokens);
  std::vector<std::byte*> bases;
  if (memory == MemoryKind::host) {
    auto buffer = std::make_shared<AlignedBuffer>(tensor_bytes * 2 * static_cast<size_t>(h.layers));
    buffer->zero();  // fault the pages in before any clock
    for (int t = 0; t < 2 * h.layers; ++t) bases.push_back(buffer->data() + static_cast<size_t>(t) * tensor_bytes);
    host_bytes_ = buffer->span();
    memory_ = buffer;
  } else {
#if defined(CAKE_HAVE_CUDA)
    auto buffer = std::make_shared<cuda::DeviceBuffer>(tensor_bytes * 2 * static_cast<size_t>(h.layers), "the calibration KV cache");
    for (int t = 0; t < 2 * h.layers; ++t)
      bases.push_back(static_cast<std::byte*>(buffer->get()) + static_cast<size_t>(t) * tensor_bytes);
    memory_ = buffer;
#else
    throw EnvironmentError("calibration: a GPU cache needs a CUDA build");
#endif
  }
  for (int l = 0; l < h.layers; ++l) {
    view_.k.push_back(bases[static_cast<size_t>(2 * l)]);
    view_.v.push_back(bases[static_cast<size_t>(2 * l + 1)]);
  }
}

bool calibration_gpu_available() {
#if defined(CAKE_HAVE_CUDA)
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    cudaGetLastError();
    return false;
  }
  return true;
#else
  return false;
#endif
}

std::optional<double> measure_pinned_h2d([[maybe_unused]] uint64_t bytes, [[maybe_unused]] int repeats) {
#if defined(CAKE_HAVE_CUDA)
  if (!calibration_gpu_available()) return std::nullopt;
  cuda::PinnedBuffer host(bytes, "the pinned copy-rate probe");
  std::memset(host.get(), 0x5A, bytes);
  cuda::DeviceBuffer device(bytes, "the pinned copy-rate probe");
  cuda::Stream stream("the copy-rate probe's stream");
  cuda::Event begin;
  cuda::Event end;
  double best = 0;
  for (int r = 0; r <= repeats; ++r) {  // the first copy warms up, untimed
    begin.record(stream.get());
    CAKE_CUDA(cudaMemcpyAsync(device.get(), host.get(), bytes, cudaMemcpyHostToDevice, stream.get()),
              "the pinned copy-rate probe");
    end.record(stream.get());
    end.synchronize();
    if (r == 0) continue;
    const double seconds = end.elapsed_ms_since(begin) / 1e3;
    if (seconds > 0) best = std::max(best, static_cast<double>(bytes) / seconds);
  }
  return best;
#else
  return std::nullopt;
#endif
}

LoadMeasurement measure_mem_load(MemSource& source, const StoreHeader& header, Throttle* throttle,
                                 const LoadPipelineOptions& pipeline, const CalibrationCache* cache, size_t chunk_limit) {
  source.set_throttle(throttle);
  LoadMeasurement m = measure(source, header, cache, pipeline, chunk_limit);
  m.o_direct_detail = "memory source: no storage";
  return m;
}

ReaderMeasurement measure_plain_reader(const std::string& path, const StoreHeader& header, int threads,
                                       uint64_t request_bytes, std::span<std::byte> land_into) {
  if (threads < 1) throw UsageError(cat("baseline reader: ", threads, " threads"));
  if (request_bytes == 0 || request_bytes % kStoreAlignment != 0)
    throw UsageError(cat("baseline reader: request size ", request_bytes, " is not a positive multiple of 4 KiB"));
  ReaderMeasurement m;
  m.threads = threads;
  m.landed = !land_into.empty();
  uint64_t payload_bytes = 0;
  for (const ChunkEntry& c : header.chunks) payload_bytes += c.bytes;
  if (m.landed && land_into.size() < payload_bytes)
    throw UsageError(cat("baseline reader: a destination of ", land_into.size(), " bytes for ", payload_bytes,
                         " payload bytes"));
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_DIRECT));
  m.o_direct = fd.valid();
  if (!fd.valid()) fd.reset(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) throw Error(cat("baseline reader: opening ", path, ": ", errno_text(errno)));
  const uint64_t begin = header.chunks.front().offset;
  const uint64_t end = header.chunks.back().offset + padded_bytes(header.chunks.back());
  const uint64_t requests = (end - begin + request_bytes - 1) / request_bytes;
  std::vector<AlignedBuffer> buffers;
  for (int t = 0; t < threads; ++t) {
    buffers.emplace_back(request_bytes);
    buffers.back().zero();
  }
  std::vector<std::string> errors(static_cast<size_t>(threads));
  std::vector<uint64_t> bytes(static_cast<size_t>(threads), 0);
  const int64_t start_ns = now_ns();
  {
    std::vector<std::jthread> workers;
    for (int t = 0; t < threads; ++t)
      workers.emplace_back([&, t] {
        for (uint64_t i = static_cast<uint64_t>(t); i < requests; i += static_cast<uint64_t>(threads)) {
          const uint64_t at = begin + i * request_bytes;
          const uint64_t want = std::min(request_bytes, end - at);
          uint64_t got = 0;
          while (got < want) {
            const ssize_t n = ::pread(fd.get(), buffers[static_cast<size_t>(t)].data() + got, want - got,
                                      static_cast<off_t>(at + got));
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
              errors[static_cast<size_t>(t)] = cat("reading ", want, " bytes at ", at, " of ", path, ": ",
                                                   n == 0 ? "end of file" : errno_text(errno));
              return;
            }
            got += static_cast<uint64_t>(n);
          }
          const uint64_t place = at - begin;
          if (m.landed && place < land_into.size()) {
            const uint64_t n = std::min<uint64_t>(got, land_into.size() - place);
            // The checksum is the loader's duty too; nothing here compares it.
            crc32c_copy(land_into.data() + place, buffers[static_cast<size_t>(t)].data(), n, 0, CopyStores::streaming);
          }
          bytes[static_cast<size_t>(t)] += got;
        }
      });
  }
  m.seconds = ns_to_s(now_ns() - start_ns);
  for (const std::string& e : errors)
    if (!e.empty()) throw Error(cat("baseline reader: ", e));
  for (uint64_t b : bytes) m.bytes += b;
  m.detail = cat(threads, " threads, pread, ", m.o_direct ? "O_DIRECT" : "buffered (O_DIRECT refused)", ", ",
                 format_bytes(request_bytes), " requests",
                 m.landed ? ", each then copied into the host cache with streaming stores and CRC-32C" : "");
  return m;
}

}  // namespace cake
