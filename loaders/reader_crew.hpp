// Reader threads for reads that are CPU copies (tmpfs, page cache): one core copies ~4-5 GB/s,
// so one ring on the load lane's thread cannot keep up with a 400 Gbps link. Each thread owns
// an io_uring ring and serves one read at a time inline (the kernel's copy runs on that
// thread), then checksums the piece while it is still in its cache, and hands back the piece's
// CRC-32C. The file source carves, paces and joins; the crew only reads.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace cake {

class Ring;

struct ReadJob {
  int fd = -1;
  bool o_direct = false;
  int chunk = -1;
  uint64_t offset = 0;       // within the chunk (its buffer)
  uint64_t bytes = 0;
  uint64_t file_offset = 0;
  std::byte* dst = nullptr;  // the chunk's buffer + offset
  uint64_t payload_bytes = 0;  // of the chunk: bytes past it (alignment padding) are not hashed
};

struct ReadDone {
  ReadJob job;
  uint64_t bytes_read = 0;
  int error = 0;             // errno of a failed read (0: none)
  bool truncated = false;    // the file ended inside the range
  uint64_t hashed_bytes = 0; // [job.offset, job.offset + hashed_bytes) of the payload
  uint32_t crc = 0;          // CRC-32C of those bytes
};

class ReaderCrew {
 public:
  // `threads` threads, each with its own ring, started now (before any clock).
  explicit ReaderCrew(int threads);
  ~ReaderCrew();  // finishes the queued reads first: their buffers must outlive the crew
  ReaderCrew(const ReaderCrew&) = delete;
  ReaderCrew& operator=(const ReaderCrew&) = delete;

  void post(const ReadJob& job);
  // Reads finished since the last call; with wait_ns > 0, waits up to that long for one when
  // none is finished and some are queued or running.
  std::vector<ReadDone> take(int64_t wait_ns = 0);
  int threads() const { return static_cast<int>(threads_.size()); }

 private:
  void work(Ring& ring);
  static ReadDone read_one(Ring& ring, const ReadJob& job);

  std::mutex mutex_;
  std::condition_variable job_ready_;
  std::condition_variable read_done_;
  std::deque<ReadJob> jobs_;
  std::vector<ReadDone> done_;
  int running_ = 0;
  bool stopping_ = false;
  std::vector<std::unique_ptr<Ring>> rings_;  // one per thread; outlive the threads
  std::vector<std::thread> threads_;
};

}  // namespace cake
