#include "loaders/piece_readers.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <list>
#include <optional>

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

// Why `piece` cannot be read from `file`, or "" when it can: a chunk the store does not have, a
// range that is not a 4 KiB aligned part of its payload, spans that do not add up or that this way
// of reading cannot fill.
std::string piece_problem(const PieceReaderFile& file, const PieceRead& piece) {
  const StoreHeader& header = *file.header;
  if (piece.chunk < 0 || static_cast<size_t>(piece.chunk) >= header.chunks.size())
    return cat("reading a piece of chunk ", piece.chunk, " of ", file.path, ": not in the store (", header.chunks.size(),
               " chunks)");
  const ChunkEntry& entry = header.chunks[static_cast<size_t>(piece.chunk)];
  if (piece.offset % kStoreAlignment != 0 || piece.bytes == 0 || piece.offset + piece.bytes > entry.bytes)
    return cat("reading chunk ", piece.chunk, " of ", file.path, ": piece [", piece.offset, ", ", piece.offset + piece.bytes,
               ") is not a 4 KiB aligned range of its ", entry.bytes, " payload bytes");
  const PieceTarget target(piece);
  const bool into_spans = file.mapped || file.pread_into_spans;
  if (target.scattered() && (!into_spans || target.scatter_bytes() != piece.bytes))
    return cat("reading chunk ", piece.chunk, " of ", file.path, ": a piece of ", piece.bytes, " bytes into ",
               piece.scatter.size(), " spans of ", target.scatter_bytes(),
               into_spans ? " bytes" : " bytes, but only a mapped file or pread() reads go into spans");
  return "";
}

// A failed range read of `asked` bytes at `file_offset`, in words; "" when it did not fail.
std::string fault_text(const RangeRead& r, const std::string& where, uint64_t asked, uint64_t file_offset) {
  switch (r.fault) {
    case RangeRead::Fault::none: return "";
    case RangeRead::Fault::no_sqe: return cat(where, ": no free io_uring entry");
    case RangeRead::Fault::ring: return cat(where, ": io_uring: ", errno_text(r.error));
    case RangeRead::Fault::read:
      return cat(where, " (", asked - r.bytes, " bytes at file offset ", file_offset + r.bytes, "): ", errno_text(r.error));
    case RangeRead::Fault::truncated:
      return cat(where, ": the file ends at byte ", file_offset + r.bytes, ", inside the chunk (truncated store)");
  }
  return cat(where, ": unknown fault");
}

// Whether the ring reads this file's pieces (neither copied out of a mapping nor pread()).
bool read_by_ring(const PieceReaderFile& file) { return !file.mapped && !file.pread && !file.pread_into_spans; }

}  // namespace

PieceReaders::PieceReaders(int threads) {
  if (threads < 1 || threads > 64) throw UsageError(cat("piece readers: ", threads, " threads (1 to 64)"));
  // The rings are made here, on this thread, so a refusal (seccomp, old kernel) throws now.
  try {
    for (int i = 0; i < threads; ++i) rings_.push_back(std::make_unique<Ring>(static_cast<unsigned>(kMaxRingDepth)));
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
  if (file.ring_depth < 1 || file.ring_depth > kMaxRingDepth)
    throw InternalError(cat("piece readers: start() for ", file.path, " with ", file.ring_depth, " reads in flight a ring (1 to ",
                            kMaxRingDepth, ")"));
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
  return file_.mapped != nullptr || file_.pread_into_spans;
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
    PieceRead job = std::move(jobs_.front());  // its scatter spans are not copied
    jobs_.pop_front();
    const PieceReaderFile file = file_;
    if (read_by_ring(file) && file.ring_depth > 1) {
      read_on_ring(ring, index, file, std::move(job), lock);
      continue;
    }
    lock.unlock();
    PieceReaderStats local;
    PieceLanded landed = read_one(ring, bounce, file, job, local);
    lock.lock();
    publish(std::move(landed), local, index);
  }
}

void PieceReaders::publish(PieceLanded&& landed, const PieceReaderStats& local, size_t index) {
  stats_[index].add(local);
  done_.push_back(std::move(landed));
  piece_done_.notify_all();
}

// One piece, request by request on this thread's ring; each request's payload bytes are
// checksummed right after they land (still in this core's cache), the CRC chained over the piece,
// unless the piece is verified on the GPU after its copies.
PieceLanded PieceReaders::read_one(Ring& ring, AlignedBuffer& bounce, const PieceReaderFile& file, const PieceRead& piece,
                                   PieceReaderStats& stats) {
  PieceLanded out;
  out.read = piece;
  out.error = piece_problem(file, piece);
  if (!out.error.empty()) {
    out.landed_ns = now_ns();
    return out;
  }
  const ChunkEntry& entry = file.header->chunks[static_cast<size_t>(piece.chunk)];
  const PieceTarget target(piece);
  const bool bounced = target.scattered() && file.pread_into_spans;
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
    out.error = fault_text(r, cat("reading chunk ", piece.chunk, " of ", file.path), asked, file_offset);
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

// Pieces read by the ring with several reads in flight: requests are submitted in order, of this
// piece and the next ones this thread takes while it has room, each booked with the throttle first
// and not submitted before its time; completions come in any order. A request's payload bytes are
// checksummed when it lands (in this core's cache) and the piece's CRC is the requests' CRCs
// combined in order. A failed request fails its piece alone; the piece is handed on once none of
// its reads is still in flight (the kernel may be writing its buffer until then).
void PieceReaders::read_on_ring(Ring& ring, size_t index, const PieceReaderFile& file, PieceRead first,
                                std::unique_lock<std::mutex>& lock) {
  struct Piece {
    PieceLanded out;
    std::vector<uint32_t> crcs;      // per request, of its payload bytes
    std::vector<uint64_t> payloads;  // per request
    size_t unfinished = 0;           // requests not yet landed, failed or dropped
  };
  struct Request {
    Piece* piece = nullptr;
    size_t nth = 0;                  // within its piece
    uint64_t at = 0;                 // offset within the piece
    uint64_t want = 0;               // bytes to read (whole 4 KiB blocks)
    uint64_t payload = 0;            // of which payload
    uint64_t file_offset = 0;
    RangeRead r;                     // bytes read so far, and the fault
    bool booked = false;             // with the throttle
    int64_t due_ns = 0;
  };
  const int depth = std::clamp(file.ring_depth, 1, kMaxRingDepth);
  const uint64_t block = file.o_direct ? kStoreAlignment : 0;
  std::list<Piece> pieces;                               // stable addresses for the requests
  std::deque<Request> queued;                            // not yet submitted, in order
  std::vector<std::optional<Request>> flying(static_cast<size_t>(depth));  // by ring user_data
  int in_flight = 0;
  PieceReaderStats local;
  std::optional<LoadLaneWork> busy;  // one working core while this thread has reads in flight
  int64_t busy_from = 0;
  auto set_busy = [&](bool on) {
    if (on && !busy) {
      busy.emplace();
      busy_from = now_ns();
    } else if (!on && busy) {
      busy.reset();
      local.read_ns += now_ns() - busy_from;
    }
  };

  // Hands on every piece whose requests are all done (lock not held).
  auto finish_done = [&] {
    for (auto it = pieces.begin(); it != pieces.end();) {
      if (it->unfinished > 0) {
        ++it;
        continue;
      }
      PieceLanded& out = it->out;
      out.landed_ns = now_ns();
      out.ok = out.error.empty();
      if (out.ok) {
        if (out.read.checksum) {
          uint32_t crc = it->crcs.empty() ? 0 : it->crcs[0];
          for (size_t k = 1; k < it->crcs.size(); ++k) crc = crc32c_combine(crc, it->crcs[k], it->payloads[k]);
          out.crc = crc;
        }
        ++local.pieces;
        local.bytes += out.read.bytes;
      }
      lock.lock();
      publish(std::move(out), local, index);
      lock.unlock();
      local = PieceReaderStats{};
      it = pieces.erase(it);
    }
  };

  auto adopt = [&](PieceRead read) {
    Piece& p = pieces.emplace_back();
    p.out.read = std::move(read);
    const PieceRead& piece = p.out.read;
    p.out.error = piece_problem(file, piece);
    if (!p.out.error.empty()) return;  // no requests: handed on by the next finish_done()
    const ChunkEntry& entry = file.header->chunks[static_cast<size_t>(piece.chunk)];
    const uint64_t read_end = piece.offset + store_align_up(piece.bytes);
    const uint64_t payload_end = piece.offset + piece.bytes;
    for (uint64_t at = piece.offset; at < read_end;) {
      Request q;
      q.piece = &p;
      q.nth = p.crcs.size();
      q.at = at - piece.offset;
      q.want = std::min(file.request_bytes, read_end - at);
      q.payload = at < payload_end ? std::min(q.want, payload_end - at) : 0;
      q.file_offset = entry.offset + at;
      queued.push_back(q);
      p.crcs.push_back(0);
      p.payloads.push_back(q.payload);
      ++p.unfinished;
      at += q.want;
    }
  };

  // A request that will not be read any more (landed, failed, or its piece failed).
  auto retire = [&](Request& q) { --q.piece->unfinished; };
  // A request that failed as q.r says: its piece fails (with the first such fault), and it retires.
  auto fail = [&](Request& q) {
    if (q.piece->out.error.empty())
      q.piece->out.error = fault_text(q.r, cat("reading chunk ", q.piece->out.read.chunk, " of ", file.path), q.want,
                                      q.file_offset);
    retire(q);
  };

  lock.unlock();
  adopt(std::move(first));
  for (;;) {
    // More pieces while there is room: this thread's share of the queue, so that the other
    // readers get theirs.
    if (in_flight + static_cast<int>(queued.size()) < depth) {
      std::vector<PieceRead> taken;
      lock.lock();
      const size_t share = std::max<size_t>(1, jobs_.size() / threads_.size());
      for (size_t n = 0; n < share && !jobs_.empty() && in_flight + static_cast<int>(queued.size()) + static_cast<int>(n) < depth;
           ++n) {
        taken.push_back(std::move(jobs_.front()));
        jobs_.pop_front();
      }
      lock.unlock();
      for (PieceRead& r : taken) adopt(std::move(r));
    }
    // Submit in order while there is room; a request waits for its booked time.
    int64_t wait_until_ns = 0;  // the next request's booked time, when it is not yet due
    bool submitted = false;
    while (in_flight < depth && !queued.empty()) {
      Request& q = queued.front();
      if (!q.piece->out.error.empty()) {  // its piece failed: drop the rest of it
        retire(q);
        queued.pop_front();
        continue;
      }
      if (file.throttle && !q.booked) {
        q.due_ns = file.throttle->reserve(q.payload);  // only payload bytes are paid for
        q.booked = true;
      }
      if (q.due_ns > now_ns()) {
        if (in_flight > 0) {
          wait_until_ns = q.due_ns;  // reap completions meanwhile
          break;
        }
        const int64_t from = now_ns();
        sleep_until_ns(q.due_ns);
        local.throttle_ns += now_ns() - from;
      }
      io_uring_sqe* sqe = io_uring_get_sqe(ring.get());
      if (!sqe) {
        q.r.fault = RangeRead::Fault::no_sqe;
        fail(q);
        queued.pop_front();
        continue;
      }
      size_t slot = 0;
      while (flying[slot]) ++slot;  // in_flight < depth: one is free
      if (q.piece->out.first_byte_ns == 0) q.piece->out.first_byte_ns = now_ns();
      io_uring_prep_read(sqe, file.fd, q.piece->out.read.dst + q.at + q.r.bytes, static_cast<unsigned>(q.want - q.r.bytes),
                         q.file_offset + q.r.bytes);
      io_uring_sqe_set_data64(sqe, slot);
      flying[slot] = q;
      queued.pop_front();
      ++in_flight;
      submitted = true;
      set_busy(true);
    }
    finish_done();
    if (in_flight == 0 && queued.empty()) {
      lock.lock();
      if (jobs_.empty() || stopping_) break;  // nothing of ours left: back to work()'s wait
      lock.unlock();
      continue;
    }
    if (in_flight == 0) continue;  // queued requests only: the next pass submits them
    // Wait for at least one completion (until the next booked time at most).
    int ret = submitted ? io_uring_submit(ring.get()) : 0;
    io_uring_cqe* cqe = nullptr;
    if (ret >= 0) {
      if (wait_until_ns > 0) {
        const int64_t wait_ns = std::max<int64_t>(wait_until_ns - now_ns(), 1000);
        __kernel_timespec ts{wait_ns / 1'000'000'000, wait_ns % 1'000'000'000};
        ret = io_uring_wait_cqe_timeout(ring.get(), &cqe, &ts);
        if (ret == -ETIME) ret = 0;
      } else {
        ret = io_uring_wait_cqe(ring.get(), &cqe);
      }
      if (ret == -EINTR) ret = 0;
    }
    if (ret < 0) {  // the ring itself failed: every piece with a read in flight fails
      for (std::optional<Request>& f : flying) {
        if (!f) continue;
        f->r.fault = RangeRead::Fault::ring;
        f->r.error = -ret;
        fail(*f);
        f.reset();
      }
      in_flight = 0;
      set_busy(false);
      finish_done();
      continue;
    }
    unsigned head = 0;
    unsigned seen = 0;
    io_uring_for_each_cqe(ring.get(), head, cqe) {
      ++seen;
      const size_t slot = static_cast<size_t>(io_uring_cqe_get_data64(cqe));
      const int64_t res = cqe->res;
      Request q = *flying[slot];
      flying[slot].reset();
      --in_flight;
      Piece& p = *q.piece;
      if (!range_read_step(q.r, res, block)) {
        fail(q);
      } else if (q.r.bytes < q.want) {
        queued.push_front(q);  // the rest of it, next (already booked)
      } else {
        if (q.payload > 0 && p.out.read.checksum) {
          const int64_t crc_from = now_ns();
          p.crcs[q.nth] = crc32c(p.out.read.dst + q.at, q.payload);
          local.checksum_ns += now_ns() - crc_from;
        }
        retire(q);
      }
    }
    io_uring_cq_advance(ring.get(), seen);
    if (in_flight == 0) set_busy(false);
    finish_done();
  }
  // Back with the lock held; the time still counted goes with this thread's statistics.
  set_busy(false);
  stats_[index].add(local);
}

}  // namespace cake
