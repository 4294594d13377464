#include "loaders/mem_source.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "common/clock.hpp"
#include "common/crc32c.hpp"
#include "common/load_lane_work.hpp"
#include "common/error.hpp"
#include "common/fd.hpp"
#include "common/units.hpp"
#include "loaders/chunk_checksum.hpp"
#include "loaders/store_file.hpp"

#if defined(CAKE_HAVE_CUDA)
#include <cuda_runtime.h>
#endif

namespace cake {

MemSource::MemSource(std::string path, MemSourceOptions options, Throttle* throttle)
    : path_(std::move(path)), options_(options), throttle_(throttle) {
  if (options_.request_bytes == 0) throw UsageError("memory source: request size must be positive");
  if (options_.pieces_ahead < 1) throw UsageError("memory source: pieces booked ahead must be at least 1");
  try {
    UniqueFd fd(::open(path_.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) throw Error(cat("opening store ", path_, ": ", errno_text(errno)));
    header_ = read_store_header(fd.get(), path_);
    struct stat st{};
    check_sys(::fstat(fd.get(), &st), cat("fstat of store ", path_));
    data_ = AlignedBuffer(static_cast<size_t>(st.st_size));
    uint64_t done = 0;
    while (done < data_.size()) {
      const ssize_t n = ::pread(fd.get(), data_.data() + done, data_.size() - done, static_cast<off_t>(done));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) throw Error(cat("reading store ", path_, " into memory at byte ", done, ": ", errno_text(errno)));
      if (n == 0) throw Error(cat("reading store ", path_, " into memory: the file ends at byte ", done, " (truncated)"));
      done += static_cast<uint64_t>(n);
    }
    // Fresh memory is slow on its first reads on some hosts (VMs back guest pages lazily): read
    // it all once now, off the clock. The result is not used; chunks are checked when served.
    volatile uint32_t sink = crc32c(data_.data(), data_.size());
    (void)sink;
  } catch (const Error& e) {
    load_error_ = e.what();
    data_ = AlignedBuffer();
  }
  if (load_error_.empty() && options_.page_lock) page_lock();
}

void MemSource::page_lock() {
#if defined(CAKE_HAVE_CUDA)
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    cudaGetLastError();
    page_lock_detail_ = "no GPU: copies stay pageable";
    return;
  }
  // Portable: pinned for every device's context, whichever the engine makes current later.
  const cudaError_t err = cudaHostRegister(data_.data(), data_.size(), cudaHostRegisterPortable);
  if (err != cudaSuccess) {
    cudaGetLastError();
    page_lock_detail_ = cat("cudaHostRegister of ", format_bytes(data_.size()), " for ", path_, ": ", cudaGetErrorString(err));
    return;
  }
  page_lock_ = std::shared_ptr<void>(data_.data(), [](void* p) { cudaHostUnregister(p); });
  page_locked_ = true;
  page_lock_detail_.clear();
#else
  page_lock_detail_ = "built without CUDA";
#endif
}

const std::byte* MemSource::payload(int chunk) const {
  if (!opened_ || chunk < 0 || static_cast<size_t>(chunk) >= header_.chunks.size())
    throw Error(cat("memory source ", path_, ": payload of chunk ", chunk, " (opened: ", opened_, ", ", header_.chunks.size(),
                    " chunks)"));
  return data_.data() + header_.chunks[static_cast<size_t>(chunk)].offset;
}

void MemSource::set_throttle(Throttle* throttle) {
  if (!queue_.empty()) throw Error(cat("memory source ", path_, ": set_throttle() while chunks are outstanding"));
  throttle_ = throttle;
  booked_ready_ns_.clear();
}

std::string MemSource::describe() const {
  return cat("mem:", path_, " (held in host memory", load_error_.empty() ? cat(", ", format_bytes(data_.size())) : ", not loaded",
             page_locked_ ? ", page-locked, copied straight to the KV cache" : cat(", pageable: ", page_lock_detail_), ", ",
             format_bytes(options_.request_bytes), " pieces, throttle ",
             throttle_ ? throttle_->describe() : "none", ")");
}

const StoreHeader& MemSource::open(const StoreKey& expected) {
  if (!queue_.empty()) throw Error(cat("memory source ", path_, ": open() while chunks are outstanding"));
  opened_ = false;
  if (throttle_) throttle_->start();  // the load starts here, as for the file source
  if (!load_error_.empty()) throw Error(load_error_);
  validate_store_key(header_, expected, path_);
  booked_ready_ns_.clear();
  opened_ = true;
  return header_;
}

void MemSource::submit(int chunk, std::byte* dst) {
  if (!opened_) throw Error(cat("memory source ", path_, ": submit(chunk ", chunk, ") before open()"));
  if (chunk < 0 || static_cast<size_t>(chunk) >= header_.chunks.size())
    throw Error(cat("memory source ", path_, ": chunk ", chunk, " out of range (store has ", header_.chunks.size(), ")"));
  Job job;
  job.dst = dst;
  job.record.chunk = chunk;
  job.record.submit_ns = now_ns();
  queue_.push_back(std::move(job));
}

void MemSource::book_ahead() {
  for (Job& job : queue_) {
    const uint64_t bytes = header_.chunks[static_cast<size_t>(job.record.chunk)].bytes;
    while (job.booked < bytes) {
      if (booked_ready_ns_.size() >= static_cast<size_t>(options_.pieces_ahead)) return;
      const uint64_t piece = std::min(options_.request_bytes, bytes - job.booked);
      booked_ready_ns_.push_back(throttle_->reserve(piece));
      job.booked += piece;
    }
  }
}

std::vector<ChunkRead> MemSource::reap(bool wait) {
  std::vector<ChunkRead> done;
  while (!queue_.empty() && done.empty()) {
    Job& job = queue_.front();
    const ChunkEntry& entry = header_.chunks[static_cast<size_t>(job.record.chunk)];
    const uint64_t piece = std::min(options_.request_bytes, entry.bytes - job.copied);
    if (throttle_) {
      book_ahead();
      const int64_t ready_ns = booked_ready_ns_.front();
      if (ready_ns > now_ns()) {
        if (!wait) return done;
        sleep_until_ns(ready_ns);
      }
      booked_ready_ns_.pop_front();
    }
    if (job.copied == 0) job.record.first_byte_ns = now_ns();
    {
      LoadLaneWork busy;
      std::memcpy(job.dst + job.copied, data_.data() + entry.offset + job.copied, piece);
      job.crc = crc32c(job.dst + job.copied, piece, job.crc);
    }
    job.copied += piece;
    if (job.copied < entry.bytes) continue;
    std::string problem = checksum_problem(entry, job.crc, job.record.chunk, path_);
    job.record.ok = problem.empty();
    job.record.error = std::move(problem);
    job.record.bytes = job.record.ok ? entry.bytes : 0;
    job.record.complete_ns = now_ns();
    done.push_back(std::move(job.record));
    queue_.pop_front();
  }
  return done;
}

}  // namespace cake
