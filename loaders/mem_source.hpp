// Chunks from host memory: the whole store file is read into RAM at construction (before the
// clock), page-locked where CUDA can (cudaHostRegister), to emulate a fast remote-memory tier.
// The load pipeline copies its payloads straight into the KV cache (HostResidentChunks, no
// staging); submit()/reap() still serve a copy by memcpy, throttled, for other callers.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>

#include "loaders/aligned_buffer.hpp"
#include "loaders/kv_source.hpp"
#include "loaders/throttle.hpp"

namespace cake {

struct MemSourceOptions {
  uint64_t request_bytes = 1ull << 20;  // throttled piece of a copy
  int pieces_ahead = 16;                // pieces booked with the throttle before their turn
  bool page_lock = true;                // cudaHostRegister the store (CUDA builds with a GPU)
};

class MemSource : public KvSource, public HostResidentChunks {
 public:
  // Reads and checks the store file now. A missing or broken store does not throw here: open()
  // throws that error, as a file source would, so the engine computes the chunks instead.
  MemSource(std::string path, MemSourceOptions options = {}, Throttle* throttle = nullptr);

  std::string describe() const override;
  const StoreHeader& open(const StoreKey& expected) override;
  void submit(int chunk, std::byte* dst) override;
  // Copies in submit order; returns as soon as one chunk is done, or (without wait) when the
  // throttle says the next piece is not due yet.
  std::vector<ChunkRead> reap(bool wait) override;
  int outstanding() const override { return static_cast<int>(queue_.size()); }

  uint64_t resident_bytes() const { return data_.size(); }
  // Paces the next open() and its reads with `throttle` (may be null): one store held in RAM can
  // serve loads at several rates. Not while chunks are outstanding.
  void set_throttle(Throttle* throttle);

  // Available from construction when the store was read (the pipeline makes its workers then).
  HostResidentChunks* host_resident() override { return load_error_.empty() ? this : nullptr; }
  const std::byte* payload(int chunk) const override;
  bool page_locked() const override { return page_locked_; }
  Throttle* throttle() const override { return throttle_; }
  uint64_t piece_bytes() const override { return options_.request_bytes; }
  std::string location() const override { return path_; }
  // Why the store is not page-locked (empty when it is).
  const std::string& page_lock_detail() const { return page_lock_detail_; }

 private:
  struct Job {
    std::byte* dst = nullptr;
    uint64_t copied = 0;
    uint64_t booked = 0;  // bytes whose pieces hold a throttle booking (copied included)
    uint32_t crc = 0;     // of the bytes copied so far, run over each piece while it is in cache
    ChunkRead record;
  };

  std::string path_;
  MemSourceOptions options_;
  Throttle* throttle_;
  std::string load_error_;  // why the store could not be read at construction
  StoreHeader header_;
  AlignedBuffer data_;      // the whole file
  bool page_locked_ = false;
  std::string page_lock_detail_ = "not requested";
  std::shared_ptr<void> page_lock_;  // unregisters data_ on release (declared after it: goes first)
  bool opened_ = false;
  std::deque<Job> queue_;
  void book_ahead();
  void page_lock();
  // Throttle times of the next pieces, in copy order: paid ahead so that a late wake-up of the
  // copying thread costs no rate (as the file source books a queue depth ahead).
  std::deque<int64_t> booked_ready_ns_;
};

}  // namespace cake
