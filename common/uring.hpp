// RAII for an io_uring instance, and one read over it to the end of a range.
#pragma once

#include <liburing.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>

#include "common/error.hpp"

namespace cake {

class Ring {
 public:
  explicit Ring(unsigned entries, unsigned flags = 0) {
    check_neg_errno(io_uring_queue_init(entries, &ring_, flags), cat("io_uring_queue_init(", entries, " entries)"));
  }
  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;
  ~Ring() { io_uring_queue_exit(&ring_); }

  io_uring* get() { return &ring_; }

 private:
  io_uring ring_{};
};

// How read_range() ended.
struct RangeRead {
  enum class Fault { none, no_sqe, ring, read, truncated };
  Fault fault = Fault::none;
  int error = 0;       // errno (positive) for ring and read faults
  uint64_t bytes = 0;  // bytes read before the fault, a truncated read's last short piece included
};

// One read's result folded into `r`: `res` is the bytes it read or -errno. Returns whether to read
// the rest: after EINTR or EAGAIN (nothing read) and after a full-block short read. A read error is
// a `read` fault; a read that returns nothing, or (with `block` > 0, for O_DIRECT) stops short of a
// block boundary, means the file ends inside the range: `truncated`. Shared by every reader of
// ranges (read_range() here, pread() on the file source's reader threads).
inline bool range_read_step(RangeRead& r, int64_t res, uint64_t block) {
  if (res == -EINTR || res == -EAGAIN) return true;
  if (res < 0) {
    r.fault = RangeRead::Fault::read;
    r.error = static_cast<int>(-res);
    return false;
  }
  r.bytes += static_cast<uint64_t>(res);
  if (res == 0 || (block > 0 && static_cast<uint64_t>(res) % block != 0)) {
    r.fault = RangeRead::Fault::truncated;
    return false;
  }
  return true;
}

// Reads [offset, offset + bytes) of `fd` into `dst`, one read in flight on `ring`, resubmitting the
// rest after a short read, EINTR or EAGAIN; faults as range_read_step() says.
inline RangeRead read_range(Ring& ring, int fd, std::byte* dst, uint64_t bytes, uint64_t offset, uint64_t block) {
  RangeRead r;
  while (r.bytes < bytes) {
    io_uring_sqe* sqe = io_uring_get_sqe(ring.get());
    if (!sqe) {
      r.fault = RangeRead::Fault::no_sqe;
      return r;
    }
    io_uring_prep_read(sqe, fd, dst + r.bytes, static_cast<unsigned>(bytes - r.bytes), offset + r.bytes);
    int ret = io_uring_submit_and_wait(ring.get(), 1);
    if (ret == -EINTR) ret = 0;  // the read may be submitted: wait for its completion below
    io_uring_cqe* cqe = nullptr;
    if (ret >= 0) {
      do ret = io_uring_wait_cqe(ring.get(), &cqe);
      while (ret == -EINTR);
    }
    if (ret < 0) {
      r.fault = RangeRead::Fault::ring;
      r.error = -ret;
      return r;
    }
    const int res = cqe->res;
    io_uring_cqe_seen(ring.get(), cqe);
    if (!range_read_step(r, res, block)) return r;
  }
  return r;
}

// Whether this kernel lets us create a ring at all (seccomp and old kernels say no).
inline bool io_uring_available() {
  io_uring ring{};
  if (io_uring_queue_init(2, &ring, 0) < 0) return false;
  io_uring_queue_exit(&ring);
  return true;
}

}  // namespace cake
