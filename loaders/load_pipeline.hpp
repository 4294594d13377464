// The load lane's machinery. The engine decides WHICH chunk comes next through `claim`.
// - Staged sources (file, tcp): the source reads chunk payloads into a ring of pinned staging
//   buffers; each range is uploaded into the KV cache as soon as the source says it landed
//   (cudaMemcpyAsync on a copy stream of its own for a device cache, memcpy for a host cache),
//   so copies overlap the reads still in flight; a slot is reused only after its uploads
//   finished (CUDA event).
// - Host-resident sources (mem, HostResidentChunks): no staging; the payload is copied straight
//   from the source's page-locked memory, piece by piece as its throttle allows, while worker
//   threads checksum the same pieces.
// Either way a chunk is reported resident only once its bytes are in the cache AND its checksum
// matched; a failed chunk is reported only after its copies finished (the engine recomputes it
// into the same place).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "kernels/kv_cache.hpp"
#include "loaders/kv_source.hpp"
#include "loaders/store_format.hpp"

namespace cake {

struct LoadedChunk {
  int chunk = -1;
  bool ok = false;
  std::string error;         // why it failed (open, read, checksum, upload), naming store and chunk
  uint64_t bytes = 0;
  int64_t claim_ns = 0;      // when the pipeline took the chunk from `claim`
  int64_t read_submit_ns = 0;
  int64_t read_complete_ns = 0;
  int64_t h2d_start_ns = 0;  // upload issued
  int64_t h2d_end_ns = 0;    // upload observed complete: the chunk is resident in the KV cache
  // Encoded stores: how long the decode step took (the last part of [h2d_start_ns, h2d_end_ns):
  // the chunk is resident only once decoded) and the bytes it wrote into the cache. 0 for none.
  int64_t decode_ns = 0;
  uint64_t decoded_bytes = 0;
};

struct LoadPipelineOptions {
  int staging_slots = 4;     // chunks in flight (read or upload) at once
  int checksum_workers = 0;  // host-resident sources: checksum threads; 0: ChecksumPool::default_workers()
  // Device cache: allocate one device buffer per slot for encoded (compressed) stores, which are
  // copied there and decoded into the cache (loaders/chunk_decoder.hpp). Without it such a store
  // is refused at open. A host cache decodes from the host bytes and needs none.
  bool decode_staging = false;
};

class LoadPipeline {
 public:
  // Allocates the staging ring (pinned when the target is on a GPU) and, for a device target,
  // the copy stream and events, and registers the ring with `source`. Done before the TTFT
  // clock starts. `source` must outlive the pipeline (the destructor unregisters the ring).
  LoadPipeline(KvSource& source, const KvCacheView& target, int32_t max_chunk_tokens, LoadPipelineOptions options);
  ~LoadPipeline();
  LoadPipeline(const LoadPipeline&) = delete;
  LoadPipeline& operator=(const LoadPipeline&) = delete;

  // Next chunk to load; nullopt: stop claiming; kClaimLater: nothing now, ask again once a chunk
  // in flight has completed (treated as nullopt when nothing is in flight).
  using ClaimFn = std::function<std::optional<int>()>;
  static constexpr int kClaimLater = -1;
  using DoneFn = std::function<void(const LoadedChunk&)>;

  // Opens the source for `key` (timed), then claims, reads and uploads until `claim` returns
  // nullopt and nothing is in flight. Each claimed chunk is reported exactly once through
  // on_done, resident (ok) or failed; when the store cannot be opened, each chunk claimed is
  // reported failed with that reason. Never throws for a per-chunk fault. Runs on the caller's
  // thread (the engine's load-lane thread).
  //
  // Device targets: the GPU the target lives on must be current on the calling thread
  // (cudaSetDevice is the engine's job), the same device as at construction. Uploads go on the
  // pipeline's own non-blocking stream; it never synchronizes the device or the legacy stream.
  void run(const StoreKey& key, const ClaimFn& claim, const DoneFn& on_done);

  // Summary of the last run(), for the engine's report.
  uint64_t bytes_loaded() const;            // payload bytes of the chunks reported ok
  int chunks_loaded() const;
  int chunks_failed() const;
  const std::string& source_description() const;  // the source's describe() after open()
  const std::string& open_error() const;           // why the store was not opened; empty when it was
  // Bytes of one staging slot: the largest chunk payload, rounded up to 4 KiB.
  uint64_t slot_bytes() const;
  bool pinned_staging() const;              // page-locked (cudaHostAlloc) staging buffers
  bool direct() const;                      // the last run copied straight from a host-resident source

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cake
