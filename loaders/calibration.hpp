// Calibration of the load lane alone: a synthetic store, and the time to bring all of it into a
// KV cache (host memory, or the GPU's) through the real LoadPipeline: read, checksum, upload,
// unthrottled or at a target rate. Beside it, the ceilings: the pinned host-to-device copy rate
// and a plain multi-threaded reader of the same file.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "kernels/kv_cache.hpp"

#include "loaders/file_source.hpp"
#include "loaders/load_pipeline.hpp"
#include "loaders/store_format.hpp"
#include "loaders/throttle.hpp"

namespace cake {

// A synthetic store shape whose payloads total about `payload_bytes` (whole 16 MiB chunks of a
// 1-layer, 8 kv heads x 128, f32 cache; the last chunk may be shorter; at least one chunk).
StoreHeader calibration_shape(uint64_t payload_bytes);

struct CalibrationStore {
  std::string path;
  StoreHeader header;
  bool created = false;  // written by this call (random payloads), rather than found
};

// DIR/<key>.kvstore for `payload_bytes`: opened if it is already there and valid, else written.
CalibrationStore ensure_calibration_store(const std::string& dir, uint64_t payload_bytes);

struct LoadMeasurement {
  uint64_t bytes = 0;        // payload bytes of the chunks that arrived intact
  double seconds = 0;        // open() to the last chunk's completion
  int chunks = 0;
  int failed_chunks = 0;
  std::string first_error;   // of the first failed chunk
  bool o_direct = false;
  std::string o_direct_detail;
  std::string source_description;
  LoadPipelineStats pipeline;                // where the load lane's thread waited
  std::optional<PieceReaderStats> readers;   // file source: where its reader threads spent their time
  double bytes_per_sec() const { return seconds > 0 ? static_cast<double>(bytes) / seconds : 0; }
  // "lane (pieces, 32 x 4.0 MiB): waited 1.2 ms with every piece out, ...; 12 readers: ..."
  std::string wait_summary() const;
};

// A KV cache shaped like a calibration store, in host memory or on the current GPU.
class CalibrationCache {
 public:
  CalibrationCache(const StoreHeader& header, MemoryKind memory);
  const KvCacheView& view() const { return view_; }
  // The whole cache as one span of host memory (K and V of every layer, back to back); empty for a
  // cache on the GPU.
  std::span<std::byte> host_bytes() const { return host_bytes_; }

 private:
  KvCacheView view_;
  std::shared_ptr<void> memory_;
  std::span<std::byte> host_bytes_;
};

// Whether a GPU is usable by this build (CUDA built in and a device present).
bool calibration_gpu_available();

// Loads the first `chunk_limit` chunks (0: all) of the store, in order, through a FileSource and
// the LoadPipeline (`pipeline`: chunks in flight, byte staging) into `cache` (nullptr: a host
// cache made here, untimed); checksums included; timed from open() to the last chunk resident.
// `header` is the store's. The throttle may be null.
LoadMeasurement measure_file_load(const std::string& path, const StoreHeader& header, const FileSourceOptions& options,
                                  Throttle* throttle, const LoadPipelineOptions& pipeline = {},
                                  const CalibrationCache* cache = nullptr, size_t chunk_limit = 0);
// The same through a MemSource (the store held in RAM, page-locked where CUDA allows, copied
// straight into the cache): the throttle and the copy alone, no storage.
LoadMeasurement measure_mem_load(const std::string& path, const StoreHeader& header, uint64_t request_bytes,
                                 Throttle* throttle, const LoadPipelineOptions& pipeline = {},
                                 const CalibrationCache* cache = nullptr, size_t chunk_limit = 0);

class MemSource;
// The same through a memory source made once (the store read and page-locked once); the source's
// throttle is replaced by `throttle` for this load.
LoadMeasurement measure_mem_load(MemSource& source, const StoreHeader& header, Throttle* throttle,
                                 const LoadPipelineOptions& pipeline, const CalibrationCache* cache, size_t chunk_limit);

// The pinned host-to-device copy rate (cudaMemcpyAsync from cudaHostAlloc memory, `bytes` per
// copy, the best of `repeats`), bytes/s; nullopt without a GPU.
std::optional<double> measure_pinned_h2d(uint64_t bytes, int repeats = 5);

struct ReaderMeasurement {
  uint64_t bytes = 0;
  double seconds = 0;
  int threads = 0;
  bool o_direct = false;
  bool landed = false;  // the bytes were also copied into a destination the size of the store
  std::string detail;  // "8 threads, pread, O_DIRECT, 1 MiB requests"
  double bytes_per_sec() const { return seconds > 0 ? static_cast<double>(bytes) / seconds : 0; }
};
// A plain baseline reader: `threads` threads pread() the store's payload range in
// `request_bytes` requests (request i by thread i % threads) into a buffer of their own that they
// reuse (it stays in the core's cache, as fio's do), O_DIRECT when the filesystem allows it.
// Throws cake::Error on a failed read.
// With `land_into` (host memory at least the size of the store's payloads, such as a host
// calibration cache), each request is then also copied to its place there (its offset from the
// first payload byte; block padding past the end is dropped) with streaming stores fused with its
// CRC-32C: the per-byte work the loader does into a host KV cache, without the loader's pipeline.
// Without it: no checksum, no copy.
ReaderMeasurement measure_plain_reader(const std::string& path, const StoreHeader& header, int threads,
                                       uint64_t request_bytes, std::span<std::byte> land_into = {});

}  // namespace cake
