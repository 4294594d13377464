// The io_uring file source: prep and submit reads (a throttle booking in front of every fresh
// request), then reap every completion that is ready in one batch (io_uring_for_each_cqe +
// io_uring_cq_advance), waiting with io_uring_wait_cqe(_timeout) only when none is.
#include "loaders/file_source.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <thread>

#include "common/clock.hpp"
#include "common/crc32c.hpp"
#include "common/error.hpp"
#include "common/sysinfo.hpp"
#include "common/units.hpp"
#include "loaders/chunk_checksum.hpp"
#include "loaders/store_file.hpp"

namespace cake {

FileReads parse_file_reads(std::string_view text) {
  if (text == "auto") return FileReads::automatic;
  if (text == "uring") return FileReads::uring;
  if (text == "map") return FileReads::mapped;
  if (text == "pread") return FileReads::pread;
  throw UsageError(cat("invalid file reads '", text, "': use auto, uring, map or pread"));
}

const char* to_string(FileReads reads) {
  switch (reads) {
    case FileReads::automatic: return "auto";
    case FileReads::uring: return "uring";
    case FileReads::mapped: return "map";
    case FileReads::pread: return "pread";
  }
  return "?";
}

FileSource::FileSource(std::string path, FileSourceOptions options, Throttle* throttle)
    : path_(std::move(path)), options_(options), throttle_(throttle) {
  if (options_.queue_depth < 1 || options_.queue_depth > 4096)
    throw UsageError(cat("queue depth ", options_.queue_depth, " out of range (1 to 4096)"));
  if (options_.request_bytes == 0 || options_.request_bytes % kStoreAlignment != 0 || options_.request_bytes > (1ull << 30))
    throw UsageError(cat("request size ", options_.request_bytes, " bytes must be a positive multiple of 4 KiB up to 1 GiB"));
  try {
    ring_ = std::make_unique<Ring>(static_cast<unsigned>(options_.queue_depth));
  } catch (const Error& e) {
    throw EnvironmentError(cat("file source for ", path_, " needs io_uring: ", e.what()));
  }
  readers_ = options_.reader_threads > 0 ? options_.reader_threads : default_reader_threads(path_);
  if (readers_ > 64) throw UsageError(cat("reader threads ", readers_, " out of range (1 to 64)"));
  pieces_ = std::make_unique<PieceReaders>(readers_);
  checksums_ = std::make_unique<ChecksumPool>(options_.checksum_workers > 0 ? options_.checksum_workers
                                                                            : ChecksumPool::default_workers());
  slots_.resize(static_cast<size_t>(options_.queue_depth));
  for (size_t i = slots_.size(); i-- > 0;) free_slots_.push_back(i);
}

int FileSource::default_reader_threads(const std::string& path) {
  // The lane's thread and one core stay free. At most 10: once the GPU checks the checksums, the
  // readers only copy, and out of /dev/shm on the 16-core H200 host 10 of them (0.81-0.82 x the
  // pinned copy rate) beat 12 (0.79-0.81), 14 (0.72-0.81) and 8 (0.70-0.82): more copying cores only
  // take host memory bandwidth from the copy engine, which reads the same memory
  // (results/h200/round5/). With checksums on the readers (--checksum cpu), 14 did better.
  // At least two, where there are two cores, for a store on a memory filesystem, whose reads are all
  // copying: one reader alternates copying and checksumming with nothing in flight meanwhile (2-core
  // dev box, /dev/shm into host memory: one reader 0.77x fio on the same file, two 0.90-1.01x). Not
  // on a disk: a reader waiting for an O_DIRECT read counts as a working core for the CPU backend, and
  // two made Cake lose 2-8% on the README's first command (results/loaders/round5-devbox-fio/).
  const int cores = available_cores();
  return std::clamp(cores - 2, on_memory_filesystem(path) ? std::min(cores, 2) : 1, 10);
}

std::vector<ReadDone> FileSource::crew_take(int64_t wait_ns) {
  if (!crew_) return {};  // no chunk read was posted yet
  return crew_->take(wait_ns);
}

PieceSource* FileSource::piece_source() {
  if (opened_) pieces_used_ = true;  // said in describe() from now until the next open()
  return pieces_.get();
}

FileSource::~FileSource() {
  pieces_.reset();  // finishes the pieces it holds (into caller buffers) and joins its threads
  crew_.reset();  // finishes the reads it holds (into caller buffers) and joins its threads
  if (threaded_) in_flight_ = 0;  // those were the reads in flight; the ring holds none
  // The kernel may still be writing into caller buffers: wait for every read before they go.
  while (in_flight_ > 0) {
    io_uring_cqe* cqe = nullptr;
    const int ret = io_uring_wait_cqe(ring_->get(), &cqe);
    if (ret == -EINTR) continue;
    if (ret < 0) break;  // nothing more can be learned; the ring's exit cancels the rest
    io_uring_cqe_seen(ring_->get(), cqe);
    --in_flight_;
  }
  checksums_.reset();  // joins the workers after their last piece, while the buffers still exist
}

std::string FileSource::describe() const {
  std::string io;
  if (!opened_) io = options_.o_direct ? "O_DIRECT requested" : "buffered (O_DIRECT off)";
  else io = o_direct_ ? "O_DIRECT" : cat("buffered: ", o_direct_detail_);
  if (opened_ && pieces_used_ && auto_memory_fs_) {
    // Described at open(), before the pieces say where they go: the rule, not the count
    // (PieceReaderStats has the counts).
    return cat("file:", path_, " (memory filesystem, auto: pieces into staging copied out of a read-only mapping, into a ",
               "host cache read with pread through a ", format_bytes(options_.request_bytes), " buffer each; ", io, ", ",
               readers_, " reader threads, ", format_bytes(options_.request_bytes), " requests, throttle ",
               throttle_ ? throttle_->describe() : "none", ")");
  }
  if (opened_ && pieces_used_ && mapping_.valid()) {
    return cat("file:", path_, " (mapped read-only, pieces copied out by ", readers_, " reader threads, ",
               format_bytes(options_.request_bytes),
               " requests, throttle ", throttle_ ? throttle_->describe() : "none", ")");
  }
  if (opened_ && pieces_used_ && options_.reads == FileReads::pread) {
    return cat("file:", path_, " (pread, ", io, ", pieces read by ", readers_, " reader threads (into a host cache through a ",
               format_bytes(options_.request_bytes), " buffer each), ", format_bytes(options_.request_bytes),
               " requests, throttle ", throttle_ ? throttle_->describe() : "none", ")");
  }
  if (opened_ && pieces_used_) {
    return cat("file:", path_, " (io_uring, ", io, ", pieces read by ", readers_, " reader threads with a ring each, ",
               format_bytes(options_.request_bytes), " requests, throttle ", throttle_ ? throttle_->describe() : "none", ")");
  }
  if (opened_ && threaded_) io += cat(", ", readers_, " reader threads with a ring each (", async_detail_, ")");
  else if (opened_ && async_) io += cat(", on io_uring workers (", async_detail_, ")");
  return cat("file:", path_, " (io_uring, ", io, ", ",
             threaded_ ? "plain buffers" : fixed_buffers_ ? "fixed buffers" : cat("plain buffers: ", fixed_buffers_detail_), ", qd ",
             options_.queue_depth, ", ", format_bytes(options_.request_bytes), " requests, ", checksums_->workers(),
             " checksum workers, throttle ",
             throttle_ ? throttle_->describe() : "none", ")");
}

const StoreHeader& FileSource::open(const StoreKey& expected) {
  if (in_flight_ > 0 || outstanding_chunks_ > 0)
    throw Error(cat("file source ", path_, ": open() while ", outstanding_chunks_, " chunks are outstanding"));
  opened_ = false;
  // The load starts here: the open and header read are part of its time, and of the throttle's.
  if (throttle_) throttle_->start();
  fd_.reset();
  int flags = O_RDONLY | O_CLOEXEC;
  o_direct_ = false;
  if (options_.o_direct) {
    fd_.reset(::open(path_.c_str(), flags | O_DIRECT));
    if (fd_.valid()) {
      o_direct_ = true;
      o_direct_detail_.clear();
    } else if (errno == EINVAL) {
      o_direct_detail_ = cat("the filesystem refused O_DIRECT (", errno_text(EINVAL), "); reads go through the page cache");
    } else {
      throw Error(cat("opening store ", path_, ": ", errno_text(errno)));
    }
  } else {
    o_direct_detail_ = "O_DIRECT turned off by option";
  }
  if (!fd_.valid()) {
    fd_.reset(::open(path_.c_str(), flags));
    if (!fd_.valid()) throw Error(cat("opening store ", path_, ": ", errno_text(errno)));
  }
  try {
    header_ = read_store_header(fd_.get(), path_);
    validate_store_key(header_, expected, path_);
  } catch (...) {
    fd_.reset();  // a store that cannot be used is not kept open
    throw;
  }
  // A read that the kernel serves by copying (page cache, or tmpfs/ramfs whose "disk" is memory)
  // runs inline on the submitting thread unless punted to io_uring's workers.
  const bool memory_fs = on_memory_filesystem(fd_.get());
  async_ = false;
  if (options_.async_copies) {
    async_ = !o_direct_ || memory_fs;
    async_detail_ = memory_fs ? "memory filesystem: reads are CPU copies" : "buffered reads are CPU copies";
  }
  threaded_ = async_ && readers_ > 1;
  pieces_used_ = false;
  mapping_.reset();
  if (options_.reads == FileReads::mapped || (options_.reads == FileReads::automatic && memory_fs)) {
    struct stat st{};
    check_sys(::fstat(fd_.get(), &st), cat("fstat of store ", path_));
    mapping_ = MappedFile(fd_.get(), static_cast<uint64_t>(st.st_size), cat("store ", path_));
  }
  // `auto` on a memory filesystem: staging pieces (a GPU cache) out of the mapping, a host cache's
  // spans with pread() (PieceReaderFile::pread_into_spans says why).
  auto_memory_fs_ = options_.reads == FileReads::automatic && memory_fs;
  pieces_->start({fd_.get(), o_direct_, path_, &header_, throttle_, options_.request_bytes,
                  mapping_.valid() ? &mapping_ : nullptr, options_.reads == FileReads::pread,
                  options_.reads == FileReads::pread || auto_memory_fs_,
                  // The source's queue depth, shared by its readers: on a disk, reads in flight
                  // are what the device sees (one per thread made 0.34-0.56x fio at queue depth 16
                  // on the dev box's disk: results/loaders/round9-devbox-disk/).
                  std::clamp((options_.queue_depth + readers_ - 1) / readers_, 1, kMaxRingDepth)});
  chunks_.assign(header_.chunks.size(), ChunkState{});
  issue_queue_.clear();
  retry_queue_.clear();
  booked_.clear();
  landed_.clear();
  opened_ = true;
  return header_;
}

void FileSource::unregister() {
  if (!registered_.empty() && fixed_buffers_) {
    check_neg_errno(io_uring_unregister_buffers(ring_->get()), cat("unregistering the buffers of ", path_));
  }
  registered_.clear();
  fixed_buffers_ = false;
  fixed_buffers_detail_ = "no buffers registered";
}

void FileSource::register_buffers(std::span<const std::span<std::byte>> buffers) {
  if (in_flight_ > 0) throw Error(cat("file source ", path_, ": register_buffers() while reads are in flight"));
  unregister();
  if (buffers.empty()) return;
  std::vector<iovec> iov;
  for (const auto& b : buffers) {
    if (reinterpret_cast<uintptr_t>(b.data()) % kStoreAlignment != 0)
      throw Error(cat("file source ", path_, ": staging buffer ", iov.size(), " is not 4 KiB aligned"));
    iov.push_back({b.data(), b.size()});
  }
  registered_.assign(buffers.begin(), buffers.end());
  const int ret = io_uring_register_buffers(ring_->get(), iov.data(), static_cast<unsigned>(iov.size()));
  if (ret < 0) {
    // Pinning can be refused (RLIMIT_MEMLOCK without CAP_IPC_LOCK); plain reads still work.
    fixed_buffers_detail_ = cat("io_uring_register_buffers of ", iov.size(), " buffers: ", errno_text(-ret));
    return;
  }
  fixed_buffers_ = true;
  fixed_buffers_detail_.clear();
}

void FileSource::submit(int chunk, std::byte* dst) {
  if (!opened_) throw Error(cat("file source ", path_, ": submit(chunk ", chunk, ") before open()"));
  if (chunk < 0 || static_cast<size_t>(chunk) >= chunks_.size())
    throw Error(cat("file source ", path_, ": chunk ", chunk, " out of range (store has ", chunks_.size(), ")"));
  ChunkState& s = chunks_[static_cast<size_t>(chunk)];
  if (s.active) throw Error(cat("file source ", path_, ": chunk ", chunk, " submitted while still in flight"));
  if (o_direct_ && reinterpret_cast<uintptr_t>(dst) % kStoreAlignment != 0)
    throw Error(cat("file source ", path_, ": buffer for chunk ", chunk, " is not 4 KiB aligned (O_DIRECT)"));
  s = ChunkState{};
  s.active = true;
  s.dst = dst;
  s.read_bytes = padded_bytes(header_.chunks[static_cast<size_t>(chunk)]);
  s.sums.reset(header_.chunks[static_cast<size_t>(chunk)].bytes);
  if (fixed_buffers_) {
    for (size_t i = 0; i < registered_.size(); ++i) {
      std::byte* begin = registered_[i].data();
      std::byte* end = begin + registered_[i].size();
      if (dst >= begin && dst < end) {
        if (static_cast<uint64_t>(end - dst) < s.read_bytes)
          throw Error(cat("file source ", path_, ": chunk ", chunk, " needs ", s.read_bytes,
                          " bytes but its registered buffer has ", end - dst, " from dst"));
        s.buffer_index = static_cast<int>(i);
        break;
      }
    }
  }
  if (threaded_ && !crew_) crew_ = std::make_unique<ReaderCrew>(readers_);
  s.record.chunk = chunk;
  s.record.submit_ns = now_ns();
  ++outstanding_chunks_;
  issue_queue_.push_back(chunk);
  issue_ready(now_ns());
}

bool FileSource::prep_read(const Request& r, bool fresh) {
  io_uring_sqe* sqe = io_uring_get_sqe(ring_->get());
  if (!sqe) return false;  // cannot happen: in flight <= queue depth == SQ entries
  const uint64_t slot = free_slots_.back();
  free_slots_.pop_back();
  slots_[slot] = r;
  ChunkState& s = chunks_[static_cast<size_t>(r.chunk)];
  const uint64_t file_offset = header_.chunks[static_cast<size_t>(r.chunk)].offset + r.offset;
  std::byte* dst = s.dst + r.offset;
  if (s.buffer_index >= 0)
    io_uring_prep_read_fixed(sqe, fd_.get(), dst, static_cast<unsigned>(r.bytes), file_offset, s.buffer_index);
  else
    io_uring_prep_read(sqe, fd_.get(), dst, static_cast<unsigned>(r.bytes), file_offset);
  io_uring_sqe_set_data64(sqe, slot);
  // A buffered read is a CPU copy; inline it would run on this one thread.
  if (async_) io_uring_sqe_set_flags(sqe, IOSQE_ASYNC);
  ++in_flight_;
  ++s.in_flight;
  if (fresh && s.record.first_byte_ns == 0) s.record.first_byte_ns = now_ns();
  return true;
}

void FileSource::issue_ready(int64_t now) {
  const int qd = options_.queue_depth;
  int prepped = 0;
  // Remainders of short reads first: they were paid for with their request.
  while (!retry_queue_.empty() && in_flight_ < qd && !threaded_ && prep_read(retry_queue_.front(), false)) {
    --chunks_[static_cast<size_t>(retry_queue_.front().chunk)].retries_queued;
    retry_queue_.pop_front();
    ++prepped;
  }
  // Cut and book fresh requests for every ring slot not yet spoken for.
  while (!issue_queue_.empty() && in_flight_ + static_cast<int>(booked_.size()) < qd) {
    const int chunk = issue_queue_.front();
    ChunkState& s = chunks_[static_cast<size_t>(chunk)];
    const Request r{chunk, s.carved_bytes, std::min(options_.request_bytes, s.read_bytes - s.carved_bytes)};
    int64_t ready_ns = 0;
    if (throttle_) {
      // Only payload bytes are paid for; the alignment padding is not part of the KV cache.
      const uint64_t payload = header_.chunks[static_cast<size_t>(chunk)].bytes;
      ready_ns = throttle_->reserve(payload > r.offset ? std::min(r.bytes, payload - r.offset) : 0);
    }
    booked_.push_back({r, ready_ns});
    ++s.booked;
    s.carved_bytes += r.bytes;
    if (s.carved_bytes == s.read_bytes) issue_queue_.pop_front();
  }
  // Issue the bookings that are due, in booking order.
  while (!booked_.empty() && in_flight_ < qd) {
    if (booked_.front().ready_ns > now) {
      now = now_ns();
      if (booked_.front().ready_ns > now) break;
    }
    const Request r = booked_.front().request;
    if (threaded_) post_read(r);
    else if (!prep_read(r, true)) break;
    --chunks_[static_cast<size_t>(r.chunk)].booked;
    booked_.pop_front();
    if (!threaded_) ++prepped;  // the crew submits its own reads
  }
  while (prepped > 0) {
    const int ret = io_uring_submit(ring_->get());
    if (ret == -EINTR) continue;
    check_neg_errno(ret, cat("io_uring_submit of ", prepped, " reads of ", path_));
    if (ret == 0) throw Error(cat("io_uring_submit of ", prepped, " reads of ", path_, " submitted nothing"));
    prepped -= ret;
  }
}

void FileSource::fail_chunk(ChunkState& s, std::string error) {
  if (s.failed) return;
  s.failed = true;
  s.record.error = std::move(error);
  const int chunk = s.record.chunk;
  std::erase(issue_queue_, chunk);
  std::erase_if(retry_queue_, [chunk](const Request& r) { return r.chunk == chunk; });
  std::erase_if(booked_, [chunk](const Booking& b) { return b.request.chunk == chunk; });
  s.retries_queued = 0;
  s.booked = 0;
}

void FileSource::landed(ChunkState& s, uint64_t begin, uint64_t end) {
  const uint64_t payload = header_.chunks[static_cast<size_t>(s.record.chunk)].bytes;
  end = std::min(end, payload);  // the alignment padding is neither hashed nor uploaded
  if (begin >= end) return;
  landed_.push_back({s.record.chunk, begin, end - begin});
  checksums_->post(s.record.chunk, begin, s.dst + begin, end - begin);
  ++s.checksums_pending;
}

std::vector<LandedRange> FileSource::take_landed() {
  std::vector<LandedRange> out;
  out.swap(landed_);
  return out;
}

bool FileSource::collect_checksums(int64_t wait_ns, std::vector<ChunkRead>& done) {
  const std::vector<PieceCrc> pieces = checksums_->take(wait_ns);
  for (const PieceCrc& p : pieces) {
    ChunkState& s = chunks_[static_cast<size_t>(p.chunk)];
    --s.checksums_pending;
    s.sums.add(p);
    finish_if_complete(s, done);
  }
  return !pieces.empty();
}

void FileSource::finish_if_complete(ChunkState& s, std::vector<ChunkRead>& done) {
  if (!s.active || s.in_flight > 0 || s.retries_queued > 0 || s.booked > 0 || s.checksums_pending > 0) return;
  if (!s.failed && s.done_bytes < s.read_bytes) return;
  const ChunkEntry& entry = header_.chunks[static_cast<size_t>(s.record.chunk)];
  if (!s.failed) {
    std::string problem;
    const uint32_t crc = s.sums.combined(problem);
    if (!problem.empty())
      throw Error(cat("file source ", path_, ": chunk ", s.record.chunk, " complete but its ", problem));
    problem = checksum_problem(entry, crc, s.record.chunk, path_);
    if (!problem.empty()) fail_chunk(s, std::move(problem));
  }
  s.record.ok = !s.failed;
  s.record.bytes = s.failed ? 0 : entry.bytes;
  s.record.complete_ns = now_ns();
  done.push_back(std::move(s.record));
  s.active = false;
  --outstanding_chunks_;
}

void FileSource::handle_completion(uint64_t slot, int res, std::vector<ChunkRead>& done) {
  if (slot >= slots_.size() || slots_[slot].chunk < 0)
    throw Error(cat("file source ", path_, ": completion for unknown request slot ", slot));
  const Request r = slots_[slot];
  slots_[slot].chunk = -1;
  free_slots_.push_back(slot);
  --in_flight_;
  ChunkState& s = chunks_[static_cast<size_t>(r.chunk)];
  --s.in_flight;
  const uint64_t file_offset = header_.chunks[static_cast<size_t>(r.chunk)].offset + r.offset;
  if (s.failed) {
    // already reported reason stands; this read only had to finish before the buffer is released
  } else if (res == -EINTR || res == -EAGAIN) {
    retry_queue_.push_back(r);
    ++s.retries_queued;
  } else if (res < 0) {
    fail_chunk(s, cat("reading chunk ", r.chunk, " of ", path_, " (", r.bytes, " bytes at file offset ", file_offset,
                      "): ", errno_text(-res)));
  } else if (res == 0 || (o_direct_ && res % static_cast<int>(kStoreAlignment) != 0)) {
    // An O_DIRECT read stops short of a block boundary only where the file ends.
    fail_chunk(s, cat("reading chunk ", r.chunk, " of ", path_, ": the file ends at byte ", file_offset + res,
                      ", inside the chunk (truncated store)"));
  } else {
    const auto got = static_cast<uint64_t>(res);
    s.done_bytes += got;
    landed(s, r.offset, r.offset + got);
    if (got < r.bytes) {
      retry_queue_.push_back({r.chunk, r.offset + got, r.bytes - got});
      ++s.retries_queued;
    }
  }
  finish_if_complete(s, done);
}

void FileSource::drain_completions(std::vector<ChunkRead>& done) {
  io_uring* ring = ring_->get();
  io_uring_cqe* cqe = nullptr;
  unsigned head = 0;
  unsigned seen = 0;
  io_uring_for_each_cqe(ring, head, cqe) {
    ++seen;
    handle_completion(io_uring_cqe_get_data64(cqe), cqe->res, done);
  }
  io_uring_cq_advance(ring, seen);
}

void FileSource::post_read(const Request& r) {
  ChunkState& s = chunks_[static_cast<size_t>(r.chunk)];
  const ChunkEntry& entry = header_.chunks[static_cast<size_t>(r.chunk)];
  ReadJob job;
  job.fd = fd_.get();
  job.o_direct = o_direct_;
  job.chunk = r.chunk;
  job.offset = r.offset;
  job.bytes = r.bytes;
  job.file_offset = entry.offset + r.offset;
  job.dst = s.dst + r.offset;
  job.payload_bytes = entry.bytes;
  ++in_flight_;
  ++s.in_flight;
  if (s.record.first_byte_ns == 0) s.record.first_byte_ns = now_ns();
  crew_->post(job);
}

void FileSource::handle_read_done(const ReadDone& d, std::vector<ChunkRead>& done) {
  ChunkState& s = chunks_[static_cast<size_t>(d.job.chunk)];
  --in_flight_;
  --s.in_flight;
  if (s.failed) {
    // the reason already given stands; this read only had to finish before the buffer is released
  } else if (d.error != 0) {
    fail_chunk(s, cat("reading chunk ", d.job.chunk, " of ", path_, " (", d.job.bytes, " bytes at file offset ",
                      d.job.file_offset, "): ", errno_text(d.error)));
  } else if (d.truncated) {
    fail_chunk(s, cat("reading chunk ", d.job.chunk, " of ", path_, ": the file ends at byte ",
                      d.job.file_offset + d.bytes_read, ", inside the chunk (truncated store)"));
  } else {
    s.done_bytes += d.bytes_read;
    if (d.hashed_bytes > 0) {
      s.sums.add({d.job.chunk, d.job.offset, d.hashed_bytes, d.crc});
      landed_.push_back({d.job.chunk, d.job.offset, d.hashed_bytes});
    }
  }
  finish_if_complete(s, done);
}

std::vector<ChunkRead> FileSource::reap_threaded(bool wait) {
  std::vector<ChunkRead> done;
  for (;;) {
    for (const ReadDone& d : crew_take(0)) handle_read_done(d, done);
    issue_ready(now_ns());
    if (!done.empty() || !wait || outstanding_chunks_ == 0) return done;
    int64_t wait_ns = 1'000'000;
    if (!booked_.empty() && in_flight_ < options_.queue_depth) {
      // Waiting on the throttle: for the next booking to come due, or a read, whichever is first.
      const int64_t due_ns = booked_.front().ready_ns;
      wait_ns = due_ns - now_ns();
      if (wait_ns <= 0) continue;
      if (in_flight_ == 0 || wait_ns < 100'000) {
        sleep_until_ns(due_ns);  // precise: a condition variable wakes tens of microseconds late
        continue;
      }
    } else if (in_flight_ == 0) {
      throw Error(cat("file source ", path_, ": ", outstanding_chunks_, " chunks outstanding but nothing in flight"));
    }
    for (const ReadDone& d : crew_take(wait_ns)) handle_read_done(d, done);
  }
}

std::vector<ChunkRead> FileSource::reap_progress(int64_t wait_ns) {
  const int64_t deadline_ns = now_ns() + std::max<int64_t>(wait_ns, 0);
  std::vector<ChunkRead> done;
  for (;;) {
    if (threaded_) {
      for (const ReadDone& d : crew_take(0)) handle_read_done(d, done);
    } else {
      drain_completions(done);
      collect_checksums(0, done);
    }
    issue_ready(now_ns());
    if (!done.empty() || !landed_.empty() || outstanding_chunks_ == 0) return done;
    const int64_t now = now_ns();
    if (now >= deadline_ns) return done;
    int64_t until_ns = deadline_ns;
    if (!booked_.empty() && in_flight_ < options_.queue_depth) until_ns = std::min(until_ns, booked_.front().ready_ns);
    const int64_t wait = until_ns - now;
    if (wait <= 0) continue;
    if (threaded_) {
      if (in_flight_ > 0 && wait >= 100'000) {
        for (const ReadDone& d : crew_take(wait)) handle_read_done(d, done);
      } else {
        sleep_until_ns(std::min(until_ns, now + 100'000));  // precise for a throttle time
      }
    } else if (checksums_->pending() > 0) {
      collect_checksums(std::min<int64_t>(wait, 20'000), done);
    } else if (in_flight_ > 0) {
      io_uring_cqe* cqe = nullptr;
      __kernel_timespec ts{};
      ts.tv_sec = wait / 1'000'000'000;
      ts.tv_nsec = wait % 1'000'000'000;
      const int ret = io_uring_wait_cqe_timeout(ring_->get(), &cqe, &ts);
      if (ret != -ETIME && ret != -EINTR) check_neg_errno(ret, cat("waiting for reads of ", path_));
    } else {
      sleep_until_ns(until_ns);
    }
  }
}

std::vector<ChunkRead> FileSource::reap(bool wait) {
  if (threaded_) return reap_threaded(wait);
  std::vector<ChunkRead> done;
  for (;;) {
    drain_completions(done);
    collect_checksums(0, done);
    issue_ready(now_ns());  // completions freed queue slots and may have queued remainders
    if (!done.empty()) return done;
    if (!wait || outstanding_chunks_ == 0) return done;
    if (checksums_->pending() > 0) {
      // Reads may still land meanwhile: wait on the checksums briefly, then look at the ring.
      if (in_flight_ == 0 && booked_.empty()) collect_checksums(1'000'000, done);
      else collect_checksums(20'000, done);
      continue;
    }
    io_uring_cqe* cqe = nullptr;
    if (!booked_.empty() && in_flight_ < options_.queue_depth) {
      // Waiting on the throttle: for the next booking to come due, or a completion, whichever is first.
      const int64_t due_ns = booked_.front().ready_ns;
      const int64_t wait_ns = due_ns - now_ns();
      if (wait_ns <= 0) continue;
      if (in_flight_ == 0) {
        sleep_until_ns(due_ns);
        continue;
      }
      __kernel_timespec ts{};
      ts.tv_sec = wait_ns / 1'000'000'000;
      ts.tv_nsec = wait_ns % 1'000'000'000;
      const int ret = io_uring_wait_cqe_timeout(ring_->get(), &cqe, &ts);
      if (ret == -ETIME || ret == -EINTR) continue;
      check_neg_errno(ret, cat("waiting for reads of ", path_));
    } else {
      if (in_flight_ == 0)
        throw Error(cat("file source ", path_, ": ", outstanding_chunks_, " chunks outstanding but nothing in flight"));
      const int ret = io_uring_wait_cqe(ring_->get(), &cqe);
      if (ret == -EINTR) continue;
      check_neg_errno(ret, cat("waiting for reads of ", path_));
    }
  }
}

}  // namespace cake
