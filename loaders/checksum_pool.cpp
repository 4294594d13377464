#include "loaders/checksum_pool.hpp"

#include <algorithm>
#include <chrono>

#include "common/crc32c.hpp"
#include "common/error.hpp"
#include "common/sysinfo.hpp"
#include "common/load_lane_work.hpp"

namespace cake {

ChecksumPool::ChecksumPool(int workers) {
  if (workers < 1) throw UsageError(cat("checksum pool: ", workers, " workers (need at least 1)"));
  threads_.reserve(static_cast<size_t>(workers));
  for (int i = 0; i < workers; ++i) threads_.emplace_back([this] { work(); });
}

ChecksumPool::~ChecksumPool() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  job_ready_.notify_all();
  for (std::thread& t : threads_) t.join();  // queued jobs are finished first: callers' buffers outlive us
}

int ChecksumPool::default_workers() {
  const int cores = available_cores();
  return std::clamp(cores / 2, 1, 8);
}

void ChecksumPool::post(int chunk, uint64_t offset, const std::byte* data, uint64_t bytes) {
  {
    std::lock_guard lock(mutex_);
    jobs_.push_back({{chunk, offset, bytes, 0}, data});
    ++pending_;
  }
  job_ready_.notify_one();
}

std::vector<PieceCrc> ChecksumPool::take(int64_t wait_ns) {
  std::unique_lock lock(mutex_);
  if (done_.empty() && wait_ns > 0 && pending_ > 0)
    piece_done_.wait_for(lock, std::chrono::nanoseconds(wait_ns), [this] { return !done_.empty(); });
  std::vector<PieceCrc> out;
  out.swap(done_);
  pending_ -= static_cast<int>(out.size());
  return out;
}

int ChecksumPool::pending() const {
  std::lock_guard lock(mutex_);
  return pending_;
}

void ChecksumPool::work() {
  std::unique_lock lock(mutex_);
  for (;;) {
    job_ready_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
    if (jobs_.empty()) return;  // stopping, and nothing left to do
    Job job = jobs_.front();
    jobs_.pop_front();
    lock.unlock();
    {
      LoadLaneWork busy;
      job.piece.crc = crc32c(job.data, job.piece.bytes);
    }
    lock.lock();
    done_.push_back(job.piece);
    piece_done_.notify_all();
  }
}

uint32_t PieceChecksums::combined(std::string& problem) const {
  problem.clear();
  uint32_t crc = 0;
  uint64_t at = 0;
  for (const auto& [offset, p] : pieces_) {
    if (offset != at) {
      problem = cat("checksum pieces do not tile the payload: a piece starts at byte ", offset, ", expected ", at);
      return 0;
    }
    crc = at == 0 ? p.crc : crc32c_combine(crc, p.crc, p.bytes);
    at += p.bytes;
  }
  if (at != payload_bytes_) problem = cat("checksum pieces cover ", at, " of ", payload_bytes_, " payload bytes");
  return crc;
}

}  // namespace cake
