#include "loaders/piece_readers.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include <unistd.h>

#include "common/clock.hpp"
#include "common/crc32c.hpp"
#include "common/load_lane_work.hpp"
#include "common/error.hpp"
#include "common/uring.hpp"
#include "loaders/throttle.hpp"

namespace cake {
namespace {

// Where a piece's payload bytes go: its staging piece (contiguous) or the spans of
// PieceRead::scatter. parts() calls fn(dst, n) for each contiguous part of the piece's bytes
// [from, from + bytes) (offsets within the piece).
class PieceTarget {
 public:
  explicit PieceTarget(const PieceRead& piece) : piece_(piece) {}
  bool scattered() const { return !piece_.scatter.empty(); }
  uint64_t scatter_bytes() const {
    uint64_t sum = 0;
    for (const std::span<std::byte>& span : piece_.scatter) sum += span.size();
    return sum;
  }
  template <class Fn>
  void parts(uint64_t from, uint64_t bytes, Fn&& fn) const {
    if (!scattered()) {
      fn(piece_.dst + from, bytes);
      return;
    }
    uint64_t span_from = 0;
    for (const std::span<std::byte>& span : piece_.scatter) {
      if (bytes == 0) return;
      const uint64_t span_end = span_from + span.size();
      if (from < span_end) {
        const uint64_t n = std::min(span_end - from, bytes);
        fn(span.data() + (from - span_from), n);
        from += n;
        bytes -= n;
      }
      span_from = span_end;
    }
  }

 private:
  const PieceRead& piece_;
};

// Bytes [piece_from, piece_from + bytes) of a piece, out of the file's mapping at `file_offset`, in
// read_range()'s terms: a file that now ends inside the range is `truncated`
// (MappedFile::populate() says so instead of a SIGBUS on the copy). With `crc`, the bytes are
// checksummed as they are copied (crc32c_copy(): one pass over memory), chained onto *crc.
RangeRead copy_mapped(const MappedFile& mapped, const PieceTarget& target, uint64_t piece_from, uint64_t bytes,
                      uint64_t file_offset, uint32_t* crc) {
  RangeRead r;
  const int err = mapped.populate(file_offset, bytes);
  if (err == EFAULT || err == ERANGE) {
    r.fault = RangeRead::Fault::truncated;
    return r;
  }
  if (err != 0) {
    r.fault = RangeRead::Fault::read;
    r.error = err;
    return r;
  }
  // Into staging, plain (cached) stores: a staging piece is small and recycled fast, so the copy
  // engine reads it back out of the last-level cache. Streaming stores, which send it to memory,
  // were slower on the H200 host (0.69-0.74 x the pinned copy rate against 0.81-0.82;
  // results/h200/round5/). Into a host KV cache, streaming stores: nobody reads those gigabytes
  // before the copy is done, and a cached store first reads each line it writes. On the 2-core dev
  // box the copy and checksum ran 1.3-1.8x faster so on one core (BM_Crc32cCopyIntoLargeCache),
  // and the loader 1.19x (results/loaders/round7-devbox-fio/). The checksum comes with the
  // streaming copy, so it is taken even where the piece is not checked.
  const std::byte* from = mapped.data() + file_offset;
  const CopyStores stores = target.scattered() ? CopyStores::streaming : CopyStores::cached;
  target.parts(piece_from, bytes, [&](std::byte* dst, uint64_t n) {
    if (crc) *crc = crc32c_copy(dst, from, n, *crc, stores);
    else if (stores == CopyStores::streaming) crc32c_copy(dst, from, n, 0, stores);
    else std::memcpy(dst, from, n);
    from += n;
  });
  r.bytes = bytes;
  return r;
}

// [offset, offset + bytes) of `fd` into `dst` with pread() on this thread: read_range() without the
// ring, the same faults (range_read_step()).
RangeRead pread_range(int fd, std::byte* dst, uint64_t bytes, uint64_t offset, uint64_t block) {
  RangeRead r;
  while (r.bytes < bytes) {
    const ssize_t got = ::pread(fd, dst + r.bytes, bytes - r.bytes, static_cast<off_t>(offset + r.bytes));
    if (!range_read_step(r, got < 0 ? -static_cast<int64_t>(errno) : got, block)) return r;
  }
  return r;
}

// A request read with pread() into `bounce` (this thread's, at least `want` bytes, in its cache),
// then its first `payload` bytes into the piece's spans from `piece_from` on with streaming stores,
// their CRC chained onto *crc in the same pass (taken even when unchecked: it comes with the copy).
RangeRead pread_bounced(int fd, std::byte* bounce, const PieceTarget& target, uint64_t piece_from, uint64_t want,
                        uint64_t payload, uint64_t file_offset, uint64_t block, uint32_t* crc) {
  const RangeRead r = pread_range(fd, bounce, want, file_offset, block);
  if (r.fault != RangeRead::Fault::none) return r;
  const std::byte* from = bounce;
  target.parts(piece_from, payload, [&](std::byte* dst, uint64_t n) {
    const uint32_t c = crc32c_copy(dst, from, n, crc ? *crc : 0, CopyStores::streaming);
    if (crc) *crc = c;
    from += n;
  });
  return r;
}

}  // namespace

PieceReaders::PieceReaders(int threads) {
  if (threads < 1 || threads > 64) throw UsageError(cat("piece readers: ", threads, " threads (1 to 64)"));
  // The rings are made here, on this thread, so a refusal (seccomp, old kernel) throws now.
  try {
    for (int i = 0; i < threads; ++i) rings_.push_back(std::make_unique<Ring>(4u));
  } catch (const Error& e) {
    throw EnvironmentError(cat("the file source's reader threads need io_uring: ", e.what()));
  }
  stats_.assign(static_cast<size_t>(threads), PieceReaderStats{});
  for (size_t i = 0; i < rings_.size(); ++i) threads_.emplace_back([this, i] { work(*rings_[i], i); });
}

PieceReaders::~PieceReaders() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  job_ready_.notify_all();
  for (std::thread& t : threads_) t.join();
}

void PieceReaders::start(const PieceReaderFile& file) {
  std::lock_guard lock(mutex_);
  if (in_flight_ > 0) throw InternalError(cat("piece readers: start() for ", file.path, " while ", in_flight_, " pieces are in flight"));
  if (!file.header || file.request_bytes == 0 || file.request_bytes % kStoreAlignment != 0)
    throw InternalError(cat("piece readers: start() for ", file.path, " without a header or with request size ", file.request_bytes));
  file_ = file;
  stats_.assign(threads_.size(), PieceReaderStats{});
  started_ns_ = now_ns();
}

void PieceReaders::read_piece(const PieceRead& piece) {
  {
    std::lock_guard lock(mutex_);
    if (!file_.header) throw InternalError("piece readers: read_piece() before start()");
    jobs_.push_back(piece);
    ++in_flight_;
  }
  job_ready_.notify_one();
}

std::vector<PieceLanded> PieceReaders::take_pieces(int64_t wait_ns) {
  std::unique_lock lock(mutex_);
  if (done_.empty() && wait_ns > 0 && in_flight_ > 0)
    piece_done_.wait_for(lock, std::chrono::nanoseconds(wait_ns), [this] { return !done_.empty(); });
  std::vector<PieceLanded> out;
  out.swap(done_);
  in_flight_ -= static_cast<int>(out.size());
  return out;
}

int PieceReaders::pieces_in_flight() const {
  std::lock_guard lock(mutex_);
  return in_flight_;
}

std::string PieceReaders::location() const {
  std::lock_guard lock(mutex_);
  return file_.path;
}

bool PieceReaders::scatters() const {
  std::lock_guard lock(mutex_);
  return file_.mapped != nullptr || file_.pread || file_.pread_into_spans;
}

PieceReaderStats PieceReaders::stats() const {
  std::lock_guard lock(mutex_);
  PieceReaderStats sum;
  sum.threads = static_cast<int>(threads_.size());
  for (const PieceReaderStats& s : stats_) sum.add(s);
  return sum;
}

void PieceReaders::work(Ring& ring, size_t index) {
  AlignedBuffer bounce;  // pread() into spans only; sized by read_one
  std::unique_lock lock(mutex_);
  for (;;) {
    const int64_t idle_from = now_ns();
    job_ready_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
    if (jobs_.empty()) return;  // stopping, and nothing left to read
    stats_[index].idle_ns += now_ns() - std::max(idle_from, started_ns_);  // idle since start() only
    const PieceRead job = std::move(jobs_.front());  // its scatter spans are not copied
    jobs_.pop_front();
    const PieceReaderFile file = file_;
    lock.unlock();
    PieceReaderStats local;
    PieceLanded landed = read_one(ring, bounce, file, job, local);
    lock.lock();
    stats_[index].add(local);
    done_.push_back(std::move(landed));
    piece_done_.notify_all();
  }
}

// One piece, request by request on this thread's ring; each request's payload bytes are
// checksummed right after they land (still in this core's cache), the CRC chained over the piece,
// unless the piece is verified on the GPU after its copies.
PieceLanded PieceReaders::read_one(Ring& ring, AlignedBuffer& bounce, const PieceReaderFile& file, const PieceRead& piece,
                                   PieceReaderStats& stats) {
  PieceLanded out;
  out.read = piece;
  const StoreHeader& header = *file.header;
  if (piece.chunk < 0 || static_cast<size_t>(piece.chunk) >= header.chunks.size()) {
    out.error = cat("reading a piece of chunk ", piece.chunk, " of ", file.path, ": not in the store (",
                    header.chunks.size(), " chunks)");
    out.landed_ns = now_ns();
    return out;
  }
  const ChunkEntry& entry = header.chunks[static_cast<size_t>(piece.chunk)];
  if (piece.offset % kStoreAlignment != 0 || piece.bytes == 0 || piece.offset + piece.bytes > entry.bytes) {
    out.error = cat("reading chunk ", piece.chunk, " of ", file.path, ": piece [", piece.offset, ", ",
                    piece.offset + piece.bytes, ") is not a 4 KiB aligned range of its ", entry.bytes, " payload bytes");
    out.landed_ns = now_ns();
    return out;
  }
  const PieceTarget target(piece);
  const bool into_spans = file.mapped || file.pread || file.pread_into_spans;
  if (target.scattered() && (!into_spans || target.scatter_bytes() != piece.bytes)) {
    out.error = cat("reading chunk ", piece.chunk, " of ", file.path, ": a piece of ", piece.bytes, " bytes into ",
                    piece.scatter.size(), " spans of ", target.scatter_bytes(),
                    into_spans ? " bytes" : " bytes, but only a mapped file or pread() reads go into spans");
    out.landed_ns = now_ns();
    return out;
  }
  const bool bounced = target.scattered() && (file.pread_into_spans || (!file.mapped && file.pread));
  const bool from_mapping = file.mapped && !bounced;
  if (bounced && bounce.size() < file.request_bytes) bounce = AlignedBuffer(file.request_bytes);
  // Reads cover whole 4 KiB blocks (O_DIRECT); the store pads every payload to them. Copies out of
  // a mapping take the payload bytes only.
  const uint64_t read_end = piece.offset + store_align_up(piece.bytes);
  const uint64_t payload_end = piece.offset + piece.bytes;
  uint32_t crc = 0;
  for (uint64_t at = piece.offset; at < read_end;) {
    const uint64_t want = std::min(file.request_bytes, read_end - at);
    if (file.throttle) {
      // Only payload bytes are paid for; the alignment padding is not part of the KV cache.
      const uint64_t paid = at < payload_end ? std::min(want, payload_end - at) : 0;
      const int64_t from = now_ns();
      const int64_t due = file.throttle->reserve(paid);
      if (due > from) sleep_until_ns(due);
      stats.throttle_ns += now_ns() - from;
    }
    // Reading and checksumming this request, not the throttle's wait above. Out of tmpfs or the
    // page cache the read is this core's copy; from a disk (O_DIRECT) it is partly a wait for the
    // device, which is counted as work too (it keeps the CPU backend a core narrower meanwhile).
    LoadLaneWork busy;
    const int64_t read_from = now_ns();
    if (out.first_byte_ns == 0) out.first_byte_ns = read_from;
    const uint64_t file_offset = entry.offset + at;
    const uint64_t payload = at < payload_end ? std::min(want, payload_end - at) : 0;
    // Out of a mapping or a bounce buffer the checksum is taken in the copy's pass (its time counts
    // as reading).
    const bool fused_crc = (from_mapping || bounced) && piece.checksum;
    // An O_DIRECT read stops short of a block boundary only where the file ends.
    const uint64_t block = file.o_direct ? kStoreAlignment : 0;
    std::byte* const into = target.scattered() ? nullptr : piece.dst + (at - piece.offset);  // staging
    const RangeRead r = bounced        ? pread_bounced(file.fd, bounce.data(), target, at - piece.offset, want, payload,
                                                       file_offset, block, fused_crc ? &crc : nullptr)
                        : from_mapping ? copy_mapped(*file.mapped, target, at - piece.offset, payload, file_offset,
                                                     fused_crc ? &crc : nullptr)
                        : file.pread   ? pread_range(file.fd, into, want, file_offset, block)
                                       : read_range(ring, file.fd, into, want, file_offset, block);
    const uint64_t asked = from_mapping ? payload : want;
    const std::string where = cat("reading chunk ", piece.chunk, " of ", file.path);
    switch (r.fault) {
      case RangeRead::Fault::none: break;
      case RangeRead::Fault::no_sqe: out.error = cat(where, ": no free io_uring entry"); break;
      case RangeRead::Fault::ring: out.error = cat(where, ": io_uring: ", errno_text(r.error)); break;
      case RangeRead::Fault::read:
        out.error = cat(where, " (", asked - r.bytes, " bytes at file offset ", file_offset + r.bytes, "): ", errno_text(r.error));
        break;
      case RangeRead::Fault::truncated:
        out.error = cat(where, ": the file ends at byte ", file_offset + r.bytes, ", inside the chunk (truncated store)");
        break;
    }
    stats.read_ns += now_ns() - read_from;
    if (!out.error.empty()) break;
    if (payload > 0 && piece.checksum && !fused_crc) {
      const int64_t crc_from = now_ns();
      target.parts(at - piece.offset, payload, [&](const std::byte* landed, uint64_t n) { crc = crc32c(landed, n, crc); });
      stats.checksum_ns += now_ns() - crc_from;
    }
    at += want;
  }
  out.landed_ns = now_ns();
  out.ok = out.error.empty();
  if (out.ok) {
    out.crc = crc;
    ++stats.pieces;
    stats.bytes += piece.bytes;
    if (bounced) ++stats.bounced_pieces;
    else if (from_mapping) ++stats.mapped_pieces;
  }
  return out;
}

}  // namespace cake
