#include "loaders/reader_crew.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>

#include "common/crc32c.hpp"
#include "common/error.hpp"
#include "common/load_lane_work.hpp"
#include "common/uring.hpp"
#include "loaders/store_format.hpp"

namespace cake {

ReaderCrew::ReaderCrew(int threads) {
  if (threads < 1) throw UsageError(cat("reader crew: ", threads, " threads (need at least 1)"));
  // The rings are made here, on this thread, so a refusal (seccomp, old kernel) throws now.
  for (int i = 0; i < threads; ++i) rings_.push_back(std::make_unique<Ring>(4u));
  for (auto& ring : rings_) threads_.emplace_back([this, r = ring.get()] { work(*r); });
}

ReaderCrew::~ReaderCrew() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  job_ready_.notify_all();
  for (std::thread& t : threads_) t.join();
}

void ReaderCrew::post(const ReadJob& job) {
  {
    std::lock_guard lock(mutex_);
    jobs_.push_back(job);
  }
  job_ready_.notify_one();
}

std::vector<ReadDone> ReaderCrew::take(int64_t wait_ns) {
  std::unique_lock lock(mutex_);
  if (done_.empty() && wait_ns > 0 && (!jobs_.empty() || running_ > 0))
    read_done_.wait_for(lock, std::chrono::nanoseconds(wait_ns), [this] { return !done_.empty(); });
  std::vector<ReadDone> out;
  out.swap(done_);
  return out;
}

void ReaderCrew::work(Ring& ring) {
  std::unique_lock lock(mutex_);
  for (;;) {
    job_ready_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
    if (jobs_.empty()) return;  // stopping, and nothing left to read
    const ReadJob job = jobs_.front();
    jobs_.pop_front();
    ++running_;
    lock.unlock();
    ReadDone d = read_one(ring, job);
    lock.lock();
    --running_;
    done_.push_back(std::move(d));
    read_done_.notify_all();
  }
}

// One read, inline on this thread's ring (the kernel copies on this core when the data is in
// memory), repeated over short reads; then the CRC of its payload bytes, still in cache.
ReadDone ReaderCrew::read_one(Ring& ring, const ReadJob& job) {
  LoadLaneWork busy;  // the crew's reads are not throttled here (the lane books them before)
  ReadDone d;
  d.job = job;
  // An O_DIRECT read stops short of a block boundary only where the file ends.
  const RangeRead r = read_range(ring, job.fd, job.dst, job.bytes, job.file_offset, job.o_direct ? kStoreAlignment : 0);
  d.bytes_read = r.bytes;
  switch (r.fault) {
    case RangeRead::Fault::none: break;
    case RangeRead::Fault::no_sqe: d.error = EBUSY; break;  // cannot happen: one read at a time on a 4-entry ring
    case RangeRead::Fault::ring:
    case RangeRead::Fault::read: d.error = r.error; break;
    case RangeRead::Fault::truncated: d.truncated = true; break;
  }
  if (d.error == 0 && !d.truncated && job.offset < job.payload_bytes) {
    d.hashed_bytes = std::min(job.bytes, job.payload_bytes - job.offset);
    d.crc = crc32c(job.dst, d.hashed_bytes);
  }
  return d;
}

}  // namespace cake
