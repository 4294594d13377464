// RAII for a read-only shared mapping of a file (mmap/munmap), and a checked way to touch a range
// of it. Reading a mapping past the file's end raises SIGBUS, and a file can shrink after it was
// mapped, so readers call populate() on each range first: MADV_POPULATE_READ maps the range's pages
// and answers EFAULT where they no longer exist, instead of a signal. (Where the kernel lacks it,
// before Linux 5.14, populate() compares the range with the file's size instead.) A file cut in the
// instant between populate() and the read can still raise SIGBUS: the caller's risk, said here.
#pragma once

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

#include "common/error.hpp"

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif

namespace cake {

class MappedFile {
 public:
  MappedFile() = default;
  // Maps [0, bytes) of `fd` read-only; `what` names it in errors. Maps nothing for 0 bytes.
  MappedFile(int fd, uint64_t bytes, const std::string& what) : bytes_(bytes), fd_(fd) {
    if (bytes == 0) return;
    void* p = ::mmap(nullptr, bytes, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) throw Error(cat("mapping ", bytes, " bytes of ", what, ": ", errno_text(errno)));
    data_ = static_cast<const std::byte*>(p);
  }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  MappedFile(MappedFile&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), bytes_(std::exchange(other.bytes_, 0)), fd_(other.fd_) {}
  MappedFile& operator=(MappedFile&& other) noexcept {
    if (this != &other) {
      reset();
      data_ = std::exchange(other.data_, nullptr);
      bytes_ = std::exchange(other.bytes_, 0);
      fd_ = other.fd_;
    }
    return *this;
  }
  ~MappedFile() { reset(); }

  void reset() {
    if (data_) ::munmap(const_cast<std::byte*>(data_), bytes_);
    data_ = nullptr;
    bytes_ = 0;
  }
  const std::byte* data() const { return data_; }
  uint64_t size() const { return bytes_; }
  bool valid() const { return data_ != nullptr; }

  // Makes [offset, offset + bytes) of the mapping readable without a signal: 0, or the errno that
  // says why not (EFAULT: the file ends inside the range; ERANGE: the range is outside the mapping).
  int populate(uint64_t offset, uint64_t bytes) const {
    if (offset > bytes_ || bytes > bytes_ - offset) return ERANGE;
    if (bytes == 0) return 0;
    // madvise wants a page-aligned start.
    const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
    const uint64_t begin = offset / page * page;
    if (::madvise(const_cast<std::byte*>(data_) + begin, offset + bytes - begin, MADV_POPULATE_READ) == 0) return 0;
    const int err = errno;
    if (err != EINVAL) return err;
    struct stat st{};  // no MADV_POPULATE_READ here: check the file's size instead
    if (::fstat(fd_, &st) != 0) return errno;
    return static_cast<uint64_t>(st.st_size) < offset + bytes ? EFAULT : 0;
  }

 private:
  const std::byte* data_ = nullptr;
  uint64_t bytes_ = 0;
  int fd_ = -1;
};

}  // namespace cake
