// Where saved KV chunks come from: a file (io_uring, O_DIRECT), host memory, or a TCP server.
// A source reads whole chunk payloads (kernels/kv_cache.hpp) into caller-owned buffers, in any
// order, many at once; it knows nothing about GPUs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "loaders/store_format.hpp"

namespace cake {

struct ChunkRead {
  int chunk = -1;
  bool ok = false;
  std::string error;            // with file/peer and chunk, when !ok
  uint64_t bytes = 0;           // payload bytes delivered (0 when failed)
  int64_t submit_ns = 0;        // now_ns() when submit() took it
  int64_t first_byte_ns = 0;    // when the first request of it was issued after throttling
  int64_t complete_ns = 0;      // when the whole payload was in the buffer and its checksum checked
};

// Part of a chunk's payload that has landed in the buffer given to submit(), before the whole
// chunk is done: the pipeline may upload it at once (piece k copied while k+1.. are read).
struct LandedRange {
  int chunk = -1;
  uint64_t offset = 0;  // within the payload
  uint64_t bytes = 0;
};

class Throttle;

// A source whose payloads already sit in host memory (page-locked where CUDA allows): the load
// pipeline copies them straight into the KV cache, paced by the source's throttle, and checks
// their checksums itself (on worker threads), so no byte is copied twice.
class HostResidentChunks {
 public:
  virtual ~HostResidentChunks() = default;
  // The payload of `chunk` (header().chunks[chunk].bytes long); valid while the source lives.
  virtual const std::byte* payload(int chunk) const = 0;
  virtual bool page_locked() const = 0;
  // May be null (unlimited). Pieces are booked with it in copy order.
  virtual Throttle* throttle() const = 0;
  // Bytes of one paced piece (a copy never spans a KV segment either).
  virtual uint64_t piece_bytes() const = 0;
  // Where the payloads came from, for error messages ("/dev/shm/cake/ab.kvstore").
  virtual std::string location() const = 0;
  // A reason to report `chunk` failed although its bytes are intact (fault injection); empty otherwise.
  virtual std::string forced_failure(int chunk) const {
    (void)chunk;
    return {};
  }
};

// A payload piece to read: bytes [offset, offset + bytes) of chunk `chunk`'s payload, into `dst`
// (4 KiB aligned, with room for `bytes` rounded up to 4 KiB: reads past the payload's end land in
// that padding). `tag` is the caller's (its staging piece), handed back unchanged.
struct PieceRead {
  int chunk = -1;
  uint64_t offset = 0;  // a multiple of 4 KiB
  uint64_t bytes = 0;   // payload bytes, > 0
  std::byte* dst = nullptr;
  int tag = -1;
  // false: the reader only reads, and PieceLanded::crc is 0; the pipeline verifies the chunk on the
  // GPU after its copies (LoadPipelineOptions::checksum).
  bool checksum = true;
  // When not empty, the piece's payload bytes go straight to these spans (of a host KV cache), in
  // order, and `dst` is not used: no staging piece and no second copy. Their sizes sum to `bytes`;
  // no padding is written. Only for a source whose scatters() says it can.
  std::vector<std::span<std::byte>> scatter;
};

struct PieceLanded {
  PieceRead read;
  bool ok = false;
  std::string error;          // with file and chunk, when !ok
  uint32_t crc = 0;           // CRC-32C of the piece's payload bytes (when ok and read.checksum)
  int64_t first_byte_ns = 0;  // its first request issued, after throttling
  int64_t landed_ns = 0;      // its last byte in dst and its checksum computed
};

// A source that reads pieces of chunks into any buffers it is handed, each piece on its own, in
// parallel (reader threads), paced by the source's throttle and checksummed by the thread that
// read it (unless the piece says the GPU checks it). The load pipeline then stages bytes, not chunks: a pool of pieces, each uploaded as it
// lands and reused once its copy is done (see load_pipeline.hpp).
class PieceSource {
 public:
  virtual ~PieceSource() = default;
  // Queues the read; returns at once. Valid after a successful open() of the owning source.
  virtual void read_piece(const PieceRead& piece) = 0;
  // Pieces landed (ok or failed) since the last call; with wait_ns > 0, waits up to that long for
  // one when none has landed and some are queued or being read.
  virtual std::vector<PieceLanded> take_pieces(int64_t wait_ns) = 0;
  // Queued or being read, not yet taken.
  virtual int pieces_in_flight() const = 0;
  // Reader threads that serve the pieces (the pipeline keeps at least as many pieces busy).
  virtual int readers() const = 0;
  // Where the pieces come from, for error messages ("/dev/shm/cake/ab.kvstore"); after open().
  virtual std::string location() const = 0;
  // After open(): pieces may carry PieceRead::scatter, because this source writes any memory at any
  // alignment (copies out of a mapping). O_DIRECT reads cannot: they need 4 KiB aligned, padded buffers.
  virtual bool scatters() const { return false; }
};

class KvSource {
 public:
  virtual ~KvSource() = default;

  // "file:/dev/shm/cake/ab12.kvstore (io_uring, O_DIRECT, qd 16, 1 MiB requests)".
  virtual std::string describe() const = 0;
  // Opens the store and validates its header against `expected` (fingerprint, tokens, chunk
  // size, codec). Part of the timed request: the store is closed until this call.
  // Throws cake::Error on a missing store or mismatched header (the engine then computes all).
  virtual const StoreHeader& open(const StoreKey& expected) = 0;
  // Buffers the caller will pass to submit(); a source may register them (io_uring fixed
  // buffers). Each must hold the largest chunk payload and be 4 KiB aligned.
  virtual void register_buffers(std::span<const std::span<std::byte>> buffers) { (void)buffers; }
  // Starts reading chunk `chunk` into dst. Returns at once.
  virtual void submit(int chunk, std::byte* dst) = 0;
  // Finished chunks (ok or failed, checksum checked). With wait, blocks until at least one
  // finishes if any is outstanding.
  virtual std::vector<ChunkRead> reap(bool wait) = 0;
  virtual int outstanding() const = 0;
  // Ranges landed since the last call (of chunks still outstanding or just reaped); sources that
  // cannot tell return none, and their chunks are uploaded whole once reaped.
  virtual std::vector<LandedRange> take_landed() { return {}; }
  // Sources that announce landed ranges also say when anything moved: reap_progress() returns
  // the chunks finished (maybe none) as soon as a chunk finishes or a range lands (take_landed()
  // then has it), or after wait_ns, so the caller can upload pieces while the rest is read
  // instead of waiting in reap(true) for a whole chunk.
  virtual bool reports_progress() const { return false; }
  virtual std::vector<ChunkRead> reap_progress(int64_t wait_ns) {
    (void)wait_ns;
    return reap(false);
  }
  // Non-null when the payloads are in host memory already (see HostResidentChunks); valid after
  // a successful open(). submit()/reap() keep working for callers that want a copy.
  virtual HostResidentChunks* host_resident() { return nullptr; }
  // Non-null when the source reads pieces of chunks on its own threads (see PieceSource), known
  // from construction (the pipeline sizes its staging by it); reads only after a successful
  // open(). submit()/reap() keep working for callers that stage whole chunks.
  virtual PieceSource* piece_source() { return nullptr; }
};

}  // namespace cake
