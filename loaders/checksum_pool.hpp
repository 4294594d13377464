// Checksums off the load lane's critical path: worker threads compute the CRC-32C of payload
// pieces while the lane keeps issuing reads and copies; PieceChecksums joins a chunk's pieces
// (any order, any sizes) into the one value the store records.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace cake {

struct PieceCrc {
  int chunk = -1;
  uint64_t offset = 0;  // within the chunk's payload
  uint64_t bytes = 0;
  uint32_t crc = 0;
};

class ChecksumPool {
 public:
  // `workers` threads, started now (before any clock); at least 1.
  explicit ChecksumPool(int workers);
  ~ChecksumPool();
  ChecksumPool(const ChecksumPool&) = delete;
  ChecksumPool& operator=(const ChecksumPool&) = delete;

  // Queues the CRC-32C of [data, data + bytes); `data` must stay valid and unchanged until the
  // piece comes back from take(). Thread-safe.
  void post(int chunk, uint64_t offset, const std::byte* data, uint64_t bytes);
  // The pieces finished since the last call; with wait_ns > 0, waits up to that long for one
  // if none is finished and some are queued.
  std::vector<PieceCrc> take(int64_t wait_ns = 0);
  // Pieces posted and not yet taken.
  int pending() const;
  int workers() const { return static_cast<int>(threads_.size()); }

  // A worker count for this host: half its cores (the lanes and the copy engine need the rest),
  // between 1 and 8.
  static int default_workers();

 private:
  struct Job {
    PieceCrc piece;
    const std::byte* data = nullptr;
  };
  void work();

  mutable std::mutex mutex_;
  std::condition_variable job_ready_;
  std::condition_variable piece_done_;
  std::deque<Job> jobs_;
  std::vector<PieceCrc> done_;
  int pending_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

// The checksum pieces of one chunk payload of `payload_bytes`.
class PieceChecksums {
 public:
  void reset(uint64_t payload_bytes) {
    payload_bytes_ = payload_bytes;
    pieces_.clear();
    covered_ = 0;
  }
  void add(const PieceCrc& p) {
    pieces_[p.offset] = p;
    covered_ += p.bytes;
  }
  // Every payload byte has a piece (pieces never overlap: the sources cut disjoint ranges).
  bool complete() const { return covered_ == payload_bytes_; }
  // The CRC-32C of the whole payload; empty `problem` when the pieces tile it exactly.
  uint32_t combined(std::string& problem) const;

 private:
  uint64_t payload_bytes_ = 0;
  uint64_t covered_ = 0;
  std::map<uint64_t, PieceCrc> pieces_;
};

}  // namespace cake
