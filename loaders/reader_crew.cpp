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
  while (d.bytes_read < job.bytes) {
    io_uring_sqe* sqe = io_uring_get_sqe(ring.get());
    if (!sqe) {
      d.error = EBUSY;  // cannot happen: one read at a time on a 4-entry ring
      break;
    }
    io_uring_prep_read(sqe, job.fd, job.dst + d.bytes_read, static_cast<unsigned>(job.bytes - d.bytes_read),
                       job.file_offset + d.bytes_read);
    int ret = io_uring_submit_and_wait(ring.get(), 1);
    if (ret == -EINTR) ret = 0;  // the read may be submitted: wait for its completion below
    io_uring_cqe* cqe = nullptr;
    if (ret >= 0) {
      do ret = io_uring_wait_cqe(ring.get(), &cqe);
      while (ret == -EINTR);
    }
    if (ret < 0) {
      d.error = -ret;
      break;
    }
    const int res = cqe->res;
    io_uring_cqe_seen(ring.get(), cqe);
    if (res == -EINTR || res == -EAGAIN) continue;
    if (res < 0) {
      d.error = -res;
      break;
    }
    // An O_DIRECT read stops short of a block boundary only where the file ends.
    if (res == 0 || (job.o_direct && res % static_cast<int>(kStoreAlignment) != 0)) {
      d.bytes_read += static_cast<uint64_t>(res);
      d.truncated = true;
      break;
    }
    d.bytes_read += static_cast<uint64_t>(res);
  }
  if (d.error == 0 && !d.truncated && job.offset < job.payload_bytes) {
    d.hashed_bytes = std::min(job.bytes, job.payload_bytes - job.offset);
    d.crc = crc32c(job.dst, d.hashed_bytes);
  }
  return d;
}

}  // namespace cake
