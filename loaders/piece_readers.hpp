// The file source's reader threads for the byte pipeline (PieceSource): each thread owns an
// io_uring ring and reads one piece at a time, request by request (request_bytes each): it books
// every request with the shared throttle and waits for its time itself, so a late wake-up of one
// thread delays only its own request; then it checksums the request's bytes while they are in its
// cache (the kernel copied them on this very core for tmpfs and the page cache) and chains the
// CRC over the piece, unless the piece is checked on the GPU (PieceRead::checksum false). Several threads keep several pieces landing at once; one core copies only
// ~4-5 GB/s out of tmpfs.
//
// With PieceReaderFile::mapped, a request is instead copied out of a mapping of the file (after
// MappedFile::populate(), which answers a truncated file with an error, not a signal), into the
// staging piece or, for a host KV cache, straight into the cache's spans (PieceRead::scatter).
//
// With PieceReaderFile::pread, a request is read with a plain pread() on the reader thread (no
// ring): into the staging piece, or, for a host KV cache, into a buffer of the thread's own the size
// of one request, which stays in its cache, and from there into the cache's spans with streaming
// stores fused with the CRC. It takes no page tables (a mapping builds one entry per 4 KiB page) but
// copies every byte twice, so which is faster depends on how fast the kernel copies: on the Zen 5 dev
// box (2026-12-02) a 1 MiB pread into a buffer in cache ran ~18 GB/s a core, and pread + streaming
// copy beat the mapping ~1.2x (results/loaders/round8-devbox-pread/).
//
// Requests of one piece are read one after another on its thread: for a block device with
// O_DIRECT, the reads in flight are as many as the threads (not a deeper queue per thread).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/mapped_file.hpp"
#include "loaders/aligned_buffer.hpp"
#include "loaders/kv_source.hpp"
#include "loaders/store_format.hpp"

namespace cake {

class Ring;
class Throttle;

// Where the reader threads spent their time since start(), summed over threads.
struct PieceReaderStats {
  int threads = 0;
  uint64_t pieces = 0;
  uint64_t bytes = 0;       // payload bytes of the pieces that landed intact
  int64_t read_ns = 0;      // in read requests (for tmpfs: the kernel's copy)
  int64_t checksum_ns = 0;  // CRC-32C of the landed bytes
  int64_t throttle_ns = 0;  // waiting for the throttle's time
  int64_t idle_ns = 0;      // waiting for a piece to read
  uint64_t mapped_pieces = 0;   // of `pieces`: copied out of the file's mapping
  uint64_t bounced_pieces = 0;  // of `pieces`: pread() through the thread's buffer into a host cache's spans
  // Adds every count and time of `o` (not `threads`).
  void add(const PieceReaderStats& o) {
    pieces += o.pieces;
    bytes += o.bytes;
    read_ns += o.read_ns;
    checksum_ns += o.checksum_ns;
    throttle_ns += o.throttle_ns;
    idle_ns += o.idle_ns;
    mapped_pieces += o.mapped_pieces;
    bounced_pieces += o.bounced_pieces;
  }
};

// The file the pieces come from; set by the owning source at open().
struct PieceReaderFile {
  int fd = -1;
  bool o_direct = false;
  std::string path;                     // for error messages
  const StoreHeader* header = nullptr;  // chunk offsets and payload sizes; outlives the reads
  Throttle* throttle = nullptr;         // may be null (unlimited)
  uint64_t request_bytes = 1ull << 20;  // a multiple of 4 KiB
  // When set (a store on a memory filesystem), requests are copied out of this read-only mapping of
  // the file (memcpy) instead of read through the ring: no system call and page-cache lookup per
  // 4 KiB page, and the copy runs at user level. Outlives the reads.
  const MappedFile* mapped = nullptr;
  // When set (and not mapped), requests are read with pread() on the reader threads instead of
  // through their rings.
  bool pread = false;
  // When set, a piece with spans (a host KV cache) is read with pread() through a buffer of the
  // thread's own and copied from there, even where `mapped` is set: on the Zen 5 dev box a first
  // pass over a fresh mapping of tmpfs cost ~1.3 us a page on one kernel build (24 Gbps mapped
  // against 70-91 with pread; results/loaders/round9-devbox-landing/). On the H200 host the mapping
  // was 1.2x faster into a host cache (results/h200/round9/), but a host cache there is only
  // `calibrate --target host`; the CPU backend loads into host memory on machines like the dev box.
  bool pread_into_spans = false;
  // Reads in flight on one reader thread's ring, for reads the ring serves (neither mapped nor
  // pread): a thread then keeps several requests, of one piece or of several, in flight at once,
  // so a disk sees the source's queue depth and not one read per thread. 1 to kMaxRingDepth.
  int ring_depth = 1;
};

// The most reads one reader thread keeps in flight on its ring (the rings' size).
inline constexpr int kMaxRingDepth = 32;

class PieceReaders final : public PieceSource {
 public:
  // `threads` threads, each with its own ring, started now (before any clock). Throws
  // EnvironmentError when io_uring is refused.
  explicit PieceReaders(int threads);
  ~PieceReaders() override;  // finishes the queued pieces first: their buffers outlive us
  PieceReaders(const PieceReaders&) = delete;
  PieceReaders& operator=(const PieceReaders&) = delete;

  // The file of the next reads; no piece may be in flight. Resets the statistics.
  void start(const PieceReaderFile& file);
  void read_piece(const PieceRead& piece) override;
  std::vector<PieceLanded> take_pieces(int64_t wait_ns) override;
  int pieces_in_flight() const override;
  int readers() const override { return static_cast<int>(threads_.size()); }
  std::string location() const override;
  bool scatters() const override;  // mapped or pread: a piece is copied wherever it is asked to go
  PieceReaderStats stats() const;

 private:
  void work(Ring& ring, size_t index);
  // The ring path with ring_depth > 1: `first` and whatever more jobs come while there is room,
  // up to ring_depth requests in flight; each piece is handed to done_ as it lands. Called and
  // returns with `lock` held.
  void read_on_ring(Ring& ring, size_t index, const PieceReaderFile& file, PieceRead first,
                    std::unique_lock<std::mutex>& lock);
  // A landed piece and the counts of the work that landed it, under `lock`.
  void publish(PieceLanded&& landed, const PieceReaderStats& local, size_t index);
  // `bounce`: this thread's buffer for pread() into spans, (re)sized here on first use.
  static PieceLanded read_one(Ring& ring, AlignedBuffer& bounce, const PieceReaderFile& file, const PieceRead& piece,
                              PieceReaderStats& stats);

  mutable std::mutex mutex_;
  std::condition_variable job_ready_;
  std::condition_variable piece_done_;
  std::deque<PieceRead> jobs_;
  std::vector<PieceLanded> done_;
  int in_flight_ = 0;  // queued + being read + done but not taken
  bool stopping_ = false;
  PieceReaderFile file_;
  int64_t started_ns_ = 0;                    // of start(): statistics count from there
  std::vector<PieceReaderStats> stats_;       // per thread, under mutex_
  std::vector<std::unique_ptr<Ring>> rings_;  // one per thread; outlive the threads
  std::vector<std::thread> threads_;
};

}  // namespace cake
