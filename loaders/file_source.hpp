// Chunks from a store file: io_uring reads into registered (fixed) buffers, O_DIRECT when the
// filesystem allows it, each chunk split into request-size reads, throttled per request. Each
// landed read is announced at once (take_landed, so it can be uploaded while the next ones are
// read) and checksummed on worker threads; a chunk completes when its pieces' checksums joined
// match the stored one. Reads that are CPU copies (buffered, or from tmpfs/ramfs even with
// O_DIRECT) leave the caller's thread, so the kernel's copies run on several cores at once:
// they go to reader threads with a ring each, which checksum each piece while it is in their
// cache (ReaderCrew), or, with one reader thread, to io_uring's workers (IOSQE_ASYNC).
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/fd.hpp"
#include "common/mapped_file.hpp"
#include "common/uring.hpp"
#include "loaders/checksum_pool.hpp"
#include "loaders/piece_readers.hpp"
#include "loaders/reader_crew.hpp"
#include "loaders/kv_source.hpp"
#include "loaders/throttle.hpp"

namespace cake {

// How the reader threads get a piece's bytes (PieceReaders): io_uring reads, copies out of a
// read-only mapping of the file, or pread() calls. `pread`: plain pread() calls on the reader
// threads, into staging or, for a host KV cache, through a small buffer per thread and from there
// into the cache (PieceReaderFile::pread). `automatic`, for a store on a memory filesystem (tmpfs,
// ramfs), whose pages are the data: pieces into staging (a GPU cache) are copied out of a mapping
// (a read() there is a system call and a page-cache lookup per 4 KiB page before the same copy; on
// the H200 host mapped 0.81-0.82 x the pinned copy rate, io_uring 0.76-0.82, pread about as fast),
// pieces into a host cache are read with pread() (PieceReaderFile::pread_into_spans: on one dev-box
// kernel a fresh mapping cost 3.5x; results/loaders/round9-devbox-landing/). On a disk, io_uring
// (O_DIRECT): a mapping would go through the page cache's read-ahead one fault at a time.
// `calibrate --file-reads` compares them on a host.
enum class FileReads { automatic, uring, mapped, pread };
FileReads parse_file_reads(std::string_view text);  // "auto", "uring", "map", "pread"; UsageError otherwise
const char* to_string(FileReads reads);             // "auto", "uring", "map", "pread"

struct FileSourceOptions {
  int queue_depth = 16;                 // reads in flight at once
  uint64_t request_bytes = 1ull << 20;  // one read; a multiple of 4 KiB
  bool o_direct = true;                 // bypass the page cache (falls back, and says so, if refused)
  bool async_copies = true;             // whole-chunk reads that are CPU copies (buffered, tmpfs) leave the
                                        //   caller's thread: to the reader threads, or with one, to io_uring's
                                        //   workers (IOSQE_ASYNC)
  int reader_threads = 0;               // reader threads, each with its own ring, which serve the pieces of
                                        //   piece_source() (always) and CPU-copy chunk reads (0:
                                        //   default_reader_threads())
  int checksum_workers = 0;             // 0: ChecksumPool::default_workers()
  FileReads reads = FileReads::automatic;  // of the pieces (piece_source()); whole-chunk reads use io_uring
};

class FileSource : public KvSource {
 public:
  // Creates the ring (untimed). Nothing is opened until open(). `throttle` may be null
  // (unlimited); open() restarts it first thing, since a load starts there.
  FileSource(std::string path, FileSourceOptions options = {}, Throttle* throttle = nullptr);
  ~FileSource() override;
  FileSource(const FileSource&) = delete;
  FileSource& operator=(const FileSource&) = delete;

  std::string describe() const override;
  const StoreHeader& open(const StoreKey& expected) override;
  void register_buffers(std::span<const std::span<std::byte>> buffers) override;
  void submit(int chunk, std::byte* dst) override;
  std::vector<ChunkRead> reap(bool wait) override;
  int outstanding() const override { return outstanding_chunks_; }
  std::vector<LandedRange> take_landed() override;
  bool reports_progress() const override { return true; }
  std::vector<ChunkRead> reap_progress(int64_t wait_ns) override;
  // Pieces of chunks read by the reader threads (the load pipeline's byte staging); always there,
  // its reads valid after open().
  PieceSource* piece_source() override;
  // Where the reader threads spent their time since the last open().
  PieceReaderStats reader_stats() const { return pieces_->stats(); }
  // This host's cores less two (the load lane's thread, and one for the rest), 1 to 10 (at least
  // two where there are two cores and `path` is on a memory filesystem): reads out of tmpfs are CPU
  // copies of ~3-5 GB/s a core, and more of them only take memory bandwidth from the copy engine.
  static int default_reader_threads(const std::string& path);

  // After open(): whether reads really bypass the page cache, and if not, why.
  bool o_direct() const { return o_direct_; }
  const std::string& o_direct_detail() const { return o_direct_detail_; }
  // After open(): whether the file is mapped, for pieces into staging (FileReads).
  bool mapped() const { return mapping_.valid(); }
  // Whether reads go to io_uring registered buffers (IORING_OP_READ_FIXED), and if not, why.
  bool fixed_buffers() const { return fixed_buffers_; }
  const std::string& path() const { return path_; }
  const StoreHeader& header() const { return header_; }

 private:
  struct ChunkState {
    bool active = false;
    bool failed = false;
    std::byte* dst = nullptr;
    int buffer_index = -1;      // registered buffer holding dst, or -1 (plain reads)
    uint64_t read_bytes = 0;    // payload rounded up to 4 KiB
    uint64_t carved_bytes = 0;  // [0, carved) has been cut into requests (booked or issued)
    uint64_t done_bytes = 0;
    int booked = 0;             // requests waiting for their throttle time
    int in_flight = 0;          // requests in the ring
    int retries_queued = 0;     // remainders of short reads waiting to be issued
    // Each landed read's payload bytes are checksummed on the pool as soon as they land.
    PieceChecksums sums;
    int checksums_pending = 0;  // posted to the pool, not back yet (the buffer is still read)
    ChunkRead record;
  };
  struct Request {
    int chunk = -1;
    uint64_t offset = 0;  // within the chunk
    uint64_t bytes = 0;
  };
  struct Booking {
    Request request;
    int64_t ready_ns = 0;  // from the throttle; 0 when unthrottled
  };

  void issue_ready(int64_t now);
  bool prep_read(const Request& request, bool fresh);
  void handle_completion(uint64_t slot, int res, std::vector<ChunkRead>& done);
  void fail_chunk(ChunkState& state, std::string error);
  void finish_if_complete(ChunkState& state, std::vector<ChunkRead>& done);
  void landed(ChunkState& state, uint64_t begin, uint64_t end);
  bool collect_checksums(int64_t wait_ns, std::vector<ChunkRead>& done);
  void post_read(const Request& request);
  void handle_read_done(const ReadDone& d, std::vector<ChunkRead>& done);
  std::vector<ChunkRead> reap_threaded(bool wait);
  std::vector<ReadDone> crew_take(int64_t wait_ns);
  void drain_completions(std::vector<ChunkRead>& done);
  void unregister();

  std::string path_;
  FileSourceOptions options_;
  Throttle* throttle_;
  std::unique_ptr<Ring> ring_;
  UniqueFd fd_;
  // The file, mapped at open() (timed, like the reads) when pieces are copied out of it; unmapped
  // at the next open() or with the source, after its run.
  MappedFile mapping_;
  bool opened_ = false;
  StoreHeader header_;
  bool o_direct_ = false;
  std::string o_direct_detail_ = "not opened yet";
  bool fixed_buffers_ = false;
  bool async_ = false;                 // reads flagged IOSQE_ASYNC (after open())
  std::string async_detail_;
  std::string fixed_buffers_detail_ = "no buffers registered";
  std::vector<std::span<std::byte>> registered_;

  std::vector<ChunkState> chunks_;
  std::deque<int> issue_queue_;        // chunks with bytes not yet cut into requests, in submit order
  // Fresh requests with their throttle time, booked as soon as a ring slot is theirs, so the
  // bucket is paid up to a queue depth ahead and a late wake-up of this thread costs no rate.
  std::deque<Booking> booked_;
  std::deque<Request> retry_queue_;    // remainders of short reads; already paid for
  std::vector<Request> slots_;         // user_data indexes these; chunk == -1 when free
  std::vector<uint64_t> free_slots_;
  std::unique_ptr<ChecksumPool> checksums_;
  int readers_ = 1;                    // reader threads (options, or the default)
  std::unique_ptr<PieceReaders> pieces_;  // made with the source (before any clock)
  bool pieces_used_ = false;           // piece_source() was asked for since the last open()
  bool auto_memory_fs_ = false;        // `automatic` on a memory filesystem: mapped, and pread into spans
  std::unique_ptr<ReaderCrew> crew_;   // made on the first chunk read that needs it (threaded_)
  bool threaded_ = false;              // after open(): reads go to the crew
  std::vector<LandedRange> landed_;    // since the last take_landed()
  int in_flight_ = 0;
  int outstanding_chunks_ = 0;
};

}  // namespace cake
