// The load lane's machinery. The engine decides WHICH chunk comes next through `claim`.
// - Sources with pieces (file, PieceSource): staging is sized in bytes in flight, a pool of
//   pinned staging pieces; the source's reader threads read pieces of the claimed chunks into free
//   ones (several at once) and checksum them; each piece is copied into the cache as soon as it
//   lands, and its staging piece is reused once its copy finished (CUDA event), so the copy of
//   piece k overlaps the reads of k+1, k+2, ... (see PieceLedger). A host cache fed from a mapped
//   file skips the staging: the readers copy each piece straight to its place in the cache
//   (PieceRead::scatter), and the pool only counts the bytes in flight. For a device cache the readers
//   only read and a CRC-32C kernel checks each chunk in the cache behind its last copy
//   (ChecksumPlace, crc32c_gpu.hpp).
// - Other staged sources (tcp): the source reads chunk payloads into a ring of pinned staging
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

// Byte staging defaults: 32 MiB in 2 MiB pieces, and never fewer than two pieces a reader thread
// (make_piece_pool), so with the default 10 readers the pool is 20 pieces, 40 MiB. At 55 GB/s a
// 2 MiB copy takes ~38 us, short next to its read on one reader thread (~0.5 ms out of tmpfs).
// Small on purpose: staging rewritten as fast as it is copied is likely still in the host's
// last-level cache when the copy engine reads it (plain stores into it beat streaming stores, which
// send it to memory). Out of /dev/shm on the H200 host, pools as built: 40 MiB of 2 MiB pieces (10
// readers) 0.81-0.82 x the pinned copy rate, 56-64 MiB of 2 MiB (12-14 readers) 0.72-0.81, 128 MiB
// of 4 MiB 0.61-0.80, 28 MiB of 1 MiB 0.75-0.76, 14 MiB of 512 KiB 0.43 (results/h200/round5/).
inline constexpr uint64_t kDefaultPieceBytes = 2ull << 20;
inline constexpr uint64_t kDefaultStagingBytes = 32ull << 20;

// Where the byte-staging path checks each chunk's CRC-32C.
//   cpu: the reader threads checksum each request as it lands (in their cache).
//   gpu: the readers only read; after a chunk's last copy is queued, a CRC-32C kernel runs on the
//        copy stream over the chunk's bytes in the KV cache, and the chunk is resident only once
//        that matches the stored value. On the H200 the readers spent ~20% of their time on the
//        CRC and were the load lane's limit. Needs a device cache and a source with pieces (file).
//   automatic: gpu where it can run (a device cache and the file source's byte staging), cpu
//        otherwise (host caches, mem, tcp, encoded stores: they keep their CPU checks).
enum class ChecksumPlace { automatic, cpu, gpu };
// "auto", "cpu", "gpu"; throws UsageError otherwise.
ChecksumPlace parse_checksum_place(const std::string& text);

struct LoadPipelineOptions {
  int staging_slots = 4;     // chunks in flight (claimed, not yet reported) at once
  int checksum_workers = 0;  // host-resident sources: checksum threads; 0: ChecksumPool::default_workers()
  // Sources with pieces (PieceSource, the file source): bytes in flight, as a pool of staging
  // pieces; 0: kDefaultStagingBytes. Never more than staging_slots chunks hold.
  uint64_t staging_bytes = 0;
  uint64_t piece_bytes = 0;  // one staging piece, a multiple of 4 KiB; 0: kDefaultPieceBytes (at most a chunk)
  bool piece_staging = true; // false: whole-chunk staging slots for every source (the older path)
  // Device cache: allocate one device buffer per slot for encoded (compressed) stores, which are
  // copied there and decoded into the cache (loaders/chunk_decoder.hpp). Without it such a store
  // is refused at open. A host cache decodes from the host bytes and needs none.
  bool decode_staging = false;
  // Byte staging: where chunks are checksummed. gpu where it cannot run is refused at construction.
  ChecksumPlace checksum = ChecksumPlace::automatic;
};

// Where the last run() spent its time (the load lane's thread), for calibrate and benchmarks.
struct LoadPipelineStats {
  std::string path;                   // "pieces" (byte staging), "chunks" (whole-chunk slots), "direct"
  int pool_pieces = 0;                // byte staging: staging pieces, and their size
  bool into_cache = false;            // byte staging: the readers wrote the pieces straight into a host
                                      //   cache (PieceRead::scatter); the pieces only counted bytes in flight
  uint64_t piece_bytes = 0;
  uint64_t pieces = 0;                // pieces handed to the source
  int max_pieces_reading = 0;         // most pieces out at the readers at once
  int max_pieces_copying = 0;         // most pieces queued on the copy stream at once
  // The lane's thread waited (nothing to hand out, land or recycle) ...
  int64_t wait_reads_ns = 0;          // ... for reads, no copy queued (the readers are the limit)
  int64_t wait_overlap_ns = 0;        // ... for reads with copies queued (both at work)
  int64_t wait_copies_ns = 0;         // ... for copies, no read out
  int64_t wait_no_free_piece_ns = 0;  // of all that, with no staging piece free while some were held by
                                      //   copies (staging too small for the copy engine's lag)
  int64_t run_ns = 0;                 // the whole byte-staging loop
  // Byte staging: "cpu" (reader threads) or "gpu" (a kernel after the copies); empty otherwise.
  std::string checksum;
  uint64_t gpu_checksums = 0;         // chunks verified on the GPU
  int64_t gpu_checksum_ns = 0;        // their kernels' time on the copy stream (CUDA events), summed
  int64_t wait_verify_ns = 0;         // the lane waited for a GPU checksum, nothing else to do
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
  bool piece_staging() const;               // reads go through staging pieces (the source has pieces)
  bool gpu_checksum() const;                // byte staging verifies chunks on the GPU
  const LoadPipelineStats& stats() const;   // of the last run()

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cake
