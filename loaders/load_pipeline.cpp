// The load lane: claim -> read into a staging slot -> upload into the KV cache -> report.
#include "loaders/load_pipeline.hpp"

#include <time.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <map>
#include <vector>

#include "common/clock.hpp"
#include "common/error.hpp"
#include "common/load_lane_work.hpp"
#include "loaders/aligned_buffer.hpp"
#include "loaders/checksum_pool.hpp"
#include "loaders/chunk_decoder.hpp"
#include "loaders/chunk_checksum.hpp"
#include "loaders/nvtx_span.hpp"
#include "loaders/piece_ledger.hpp"
#include "loaders/throttle.hpp"

#if defined(CAKE_HAVE_CUDA)
#include "common/cuda_raii.hpp"
#include "loaders/crc32c_gpu.hpp"
#endif

namespace cake {
namespace {

enum class SlotState { free, reading, uploading };

// The longest wait in a source that reports landed ranges when nothing else is pending; it
// returns early on any progress, so this only bounds how often an idle lane looks around.
constexpr int64_t kPiecesWaitNs = 1'000'000;
// Between polls of pending uploads (and, on the direct path, of checksums and the throttle).
constexpr int64_t kPollNs = 20'000;

struct Slot {
  std::byte* data = nullptr;
  SlotState state = SlotState::free;
  LoadedChunk record;
  bool copies_issued = false;   // some bytes went to the cache: a failure waits for them
  uint64_t landed_bytes = 0;    // staged: ranges uploaded as the source reported them
  std::string failure;          // set: report failed once the copies are done
  // Host-resident (direct) chunks:
  const std::byte* src = nullptr;
  uint64_t issued_bytes = 0;    // copied (or queued on the copy stream) and posted for checksums
  uint64_t booked_bytes = 0;    // paid to the throttle
  PieceChecksums sums;
  uint64_t claim_seq = 0;       // claim order: pieces are paced and copied in it
  bool decoded = false;         // encoded store: the decode step was issued (ChunkDecoder)
  // Direct path: why the decode failed, held until the checksum's verdict: a corrupted chunk is
  // reported as a checksum mismatch (the cause), not as the malformed stream it decodes to.
  std::string decode_failure;
  NvtxSpan span;  // "load c=i" while reading, "h2d c=i" while uploading
#if defined(CAKE_HAVE_CUDA)
  std::unique_ptr<cuda::Event> uploaded;  // recorded after the chunk's copies
#endif
};

// Between polls of a device upload and the source: short, since a chunk becomes usable by the
// compute lane only when it is seen resident.
void short_pause() {
  timespec ts{0, 20'000};
  nanosleep(&ts, nullptr);  // an early wake-up only means an earlier poll
}

}  // namespace

struct LoadPipeline::Impl {
  KvSource& source;
  KvCacheView target;
  int32_t max_chunk_tokens;
  LoadPipelineOptions options;
  uint64_t slot_bytes = 0;
  bool pinned = false;
  std::vector<AlignedBuffer> host_memory;
#if defined(CAKE_HAVE_CUDA)
  std::vector<cuda::PinnedBuffer> pinned_memory;
  std::unique_ptr<cuda::Stream> stream;
#endif
  std::vector<Slot> slots;
  std::unique_ptr<ChecksumPool> checksum_pool;  // for host-resident sources, made before the clock
  std::unique_ptr<ChunkDecoder> decoder;        // encoded stores: the decode step after the copies
  bool direct = false;
  HostResidentChunks* resident = nullptr;       // the source's, during a direct run
  uint64_t claim_seq = 0;
  std::deque<int64_t> booked_ready_ns;          // direct: throttle times of the next pieces, in copy order
  // Byte staging (sources with pieces): a pool of staging pieces, each with the event of its copy.
  PieceSource* piece_source = nullptr;
  uint64_t piece_bytes = 0;
  int pool_pieces = 0;
  std::byte* pool = nullptr;
#if defined(CAKE_HAVE_CUDA)
  std::vector<cuda::Event> piece_copied;
  // GPU checksums (byte staging, device cache): one slot per chunk in flight, with timing events
  // around its kernels on the copy stream.
  std::unique_ptr<GpuCrc32c> gpu_crc;
  std::vector<cuda::Event> verify_begin;
  std::vector<cuda::Event> verify_end;
#endif
  bool gpu_verify = false;
  LoadPipelineStats stats;

  // Summary of the last run.
  uint64_t bytes_loaded = 0;
  int chunks_loaded = 0;
  int chunks_failed = 0;
  std::string source_description;
  std::string open_error;

  Impl(KvSource& s, const KvCacheView& t, int32_t max_tokens, LoadPipelineOptions o)
      : source(s), target(t), max_chunk_tokens(max_tokens), options(o) {}

  const StoreHeader* header = nullptr;
  const DoneFn* on_done = nullptr;
  std::map<int, size_t> slot_of_chunk;

  std::string compatibility_problem(const StoreHeader& h);
  // Encoded stores: decodes the slot's chunk once all its bytes are copied (queued on the copy
  // stream for a device cache). Returns why it failed, or empty.
  std::string decode_step(Slot& slot, const std::byte* from);
  void report(Slot& slot, bool ok, std::string error);
  // Fills every free slot with a claimed chunk and hands each one that is in the store to
  // `start(slot, chunk)`; a chunk outside the store fails at once. Clears `claiming` when the claim
  // function says stop, or says "later" with nothing in flight (no completion would ask again).
  void fill_free_slots(const ClaimFn& claim, bool& claiming, const std::function<void(Slot&, int)>& start);
  void start_upload(Slot& slot, const ChunkRead& read);
  void copy_range(Slot& slot, const ChunkEntry& entry, const std::byte* from, uint64_t offset, uint64_t bytes);
  void upload_landed(std::vector<LandedRange> ranges);
  void finish_copies(Slot& slot, std::string failure);
  // Direct path.
  bool issue_pieces(int64_t& next_due_ns);
  bool collect_checksums(int64_t wait_ns);
  uint64_t next_piece(const ChunkEntry& entry, uint64_t offset) const;
  void claim_direct(Slot& slot, int chunk);
  bool complete_direct();
  void run_direct(const ClaimFn& claim);
  bool poll_uploads(bool block_on_oldest);
  void handle_reads(std::vector<ChunkRead> reads);
  void drain_after_error();
  void run(const StoreKey& key, const ClaimFn& claim, const DoneFn& done);
  // Byte staging.
  void make_piece_pool();
  void copy_bytes(int chunk, const ChunkEntry& entry, const std::byte* src, uint64_t offset, uint64_t bytes);
  // Where payload bytes [offset, offset + bytes) of a chunk lie in the cache, in payload order (as
  // copy_bytes puts them): one span per KV segment they touch.
  std::vector<std::span<std::byte>> cache_range(const ChunkEntry& entry, uint64_t offset, uint64_t bytes) const;
#if defined(CAKE_HAVE_CUDA)
  // Where a chunk's payload lies in the device cache, in payload order (as copy_bytes puts it).
  std::vector<DeviceSpan> cache_spans(const ChunkEntry& entry) const;
#endif
  void deliver(LoadedChunk record, bool ok, std::string error);
  void run_pieces(const ClaimFn& claim);
  void drain_pieces();
};

LoadPipeline::LoadPipeline(KvSource& source, const KvCacheView& target, int32_t max_chunk_tokens,
                           LoadPipelineOptions options)
    : impl_(std::make_unique<Impl>(source, target, max_chunk_tokens, options)) {
  Impl& p = *impl_;
  if (options.staging_slots < 1) throw UsageError(cat("load pipeline: staging slots ", options.staging_slots, " < 1"));
  if (max_chunk_tokens <= 0) throw Error(cat("load pipeline: max chunk tokens ", max_chunk_tokens, " is not positive"));
  if (target.layers <= 0 || target.kv_heads <= 0 || target.head_dim <= 0 ||
      target.k.size() != static_cast<size_t>(target.layers) || target.v.size() != static_cast<size_t>(target.layers))
    throw Error("load pipeline: the target KV cache view is empty or its per-layer pointers do not match its layers");
  p.slot_bytes = store_align_up(target.chunk_bytes(max_chunk_tokens));
  const auto slot_count = static_cast<size_t>(options.staging_slots);
  p.slots.resize(slot_count);
  p.piece_source = options.piece_staging && !source.host_resident() ? source.piece_source() : nullptr;
  p.decoder = std::make_unique<ChunkDecoder>(target, options.staging_slots, p.slot_bytes, options.decode_staging);
  const bool gpu_possible = p.piece_source && target.memory == MemoryKind::device;
  if (options.checksum == ChecksumPlace::gpu && !gpu_possible)
    throw UsageError(cat("checksum gpu: the GPU checks chunks only for a KV cache on a GPU loaded through byte staging "
                         "(the file source); this load ", target.memory != MemoryKind::device ? "has a host KV cache" : "",
                         target.memory != MemoryKind::device && !p.piece_source ? " and " : "",
                         !p.piece_source ? "has no byte staging (a mem or tcp source, or whole-chunk slots)" : "",
                         ". Use --checksum auto or cpu"));
  p.gpu_verify = gpu_possible && options.checksum != ChecksumPlace::cpu;
  if (p.piece_source) {
    p.make_piece_pool();
    return;
  }
  if (target.memory == MemoryKind::device) {
#if defined(CAKE_HAVE_CUDA)
    p.stream = std::make_unique<cuda::Stream>("the load lane's copy stream");
    for (size_t i = 0; i < slot_count; ++i) {
      // cudaHostAlloc only promises 256-byte alignment for small sizes (seen on an H100: a 128 KiB
      // slot was not page aligned), and O_DIRECT needs 4 KiB: over-allocate and align.
      p.pinned_memory.emplace_back(p.slot_bytes + kStoreAlignment, cat("load staging slot ", i));
      const auto base = reinterpret_cast<uintptr_t>(p.pinned_memory.back().get());
      p.slots[i].data = reinterpret_cast<std::byte*>((base + kStoreAlignment - 1) / kStoreAlignment * kStoreAlignment);
      p.slots[i].uploaded = std::make_unique<cuda::Event>(false);
    }
    p.pinned = true;
#else
    throw EnvironmentError("load pipeline: the KV cache is on a GPU but this build has no CUDA");
#endif
  } else {
    for (size_t i = 0; i < slot_count; ++i) {
      p.host_memory.emplace_back(p.slot_bytes);
      p.host_memory.back().zero();  // fault the pages in now, not during the timed load
      p.slots[i].data = p.host_memory.back().data();
    }
  }
  std::vector<std::span<std::byte>> spans;
  for (const Slot& s : p.slots) spans.emplace_back(s.data, p.slot_bytes);
  source.register_buffers(spans);
  if (source.host_resident())
    p.checksum_pool = std::make_unique<ChecksumPool>(options.checksum_workers > 0 ? options.checksum_workers
                                                                                  : ChecksumPool::default_workers());
}

LoadPipeline::~LoadPipeline() {
  // The staging slots are about to go: the source must hold no reads into them.
  try {
    impl_->source.register_buffers({});
  } catch (...) {  // a destructor cannot report; the source's own destructor drains its reads
  }
}

uint64_t LoadPipeline::bytes_loaded() const { return impl_->bytes_loaded; }
int LoadPipeline::chunks_loaded() const { return impl_->chunks_loaded; }
int LoadPipeline::chunks_failed() const { return impl_->chunks_failed; }
const std::string& LoadPipeline::source_description() const { return impl_->source_description; }
const std::string& LoadPipeline::open_error() const { return impl_->open_error; }
uint64_t LoadPipeline::slot_bytes() const { return impl_->slot_bytes; }
bool LoadPipeline::pinned_staging() const { return impl_->pinned; }
bool LoadPipeline::direct() const { return impl_->direct; }
bool LoadPipeline::piece_staging() const { return impl_->piece_source != nullptr; }
bool LoadPipeline::gpu_checksum() const { return impl_->gpu_verify; }

ChecksumPlace parse_checksum_place(const std::string& text) {
  if (text == "auto") return ChecksumPlace::automatic;
  if (text == "cpu") return ChecksumPlace::cpu;
  if (text == "gpu") return ChecksumPlace::gpu;
  throw UsageError(cat("checksum '", text, "': expected auto, cpu or gpu"));
}
const LoadPipelineStats& LoadPipeline::stats() const { return impl_->stats; }

void LoadPipeline::run(const StoreKey& key, const ClaimFn& claim, const DoneFn& on_done) {
  impl_->run(key, claim, on_done);
}

std::string LoadPipeline::Impl::compatibility_problem(const StoreHeader& h) {
  if (std::string problem = decoder->set_codec(h); !problem.empty()) return problem;
  // Byte staging copies each piece straight into the cache as it lands; a chunk of an encoded
  // store must be whole in one staging buffer before it decodes, which whole-chunk slots give.
  if (decoder->active() && piece_source)
    return cat("codec '", h.key.codec, "' needs whole-chunk staging (LoadPipelineOptions::piece_staging = false)");
  if (h.layers != target.layers || h.kv_heads != target.kv_heads || h.head_dim != target.head_dim)
    return cat("store shape ", h.layers, " layers x ", h.kv_heads, " kv heads x ", h.head_dim,
               " head dim differs from the KV cache's ", target.layers, " x ", target.kv_heads, " x ", target.head_dim);
  if (h.key.dtype != target.dtype)
    return cat("store dtype ", dtype_name(h.key.dtype), " differs from the KV cache's ", dtype_name(target.dtype));
  for (size_t i = 0; i < h.chunks.size(); ++i) {
    const ChunkEntry& c = h.chunks[i];
    if (c.tokens > max_chunk_tokens)
      return cat("chunk ", i, " has ", c.tokens, " tokens, the staging slots hold ", max_chunk_tokens);
    if (c.first_token + c.tokens > target.capacity_tokens)
      return cat("chunk ", i, " ends at token ", c.first_token + c.tokens, ", past the KV cache capacity of ",
                 target.capacity_tokens);
  }
  return {};
}

void LoadPipeline::Impl::report(Slot& slot, bool ok, std::string error) {
  slot.span.end();
  if (ok && slot.decoded) {
    const int index = static_cast<int>(&slot - slots.data());
    try {
      slot.record.decode_ns = decoder->decode_ns(index);
      slot.record.decoded_bytes = decoder->decoded_bytes(index);
    } catch (const Error& e) {
      ok = false;
      error = cat("timing the decode of chunk ", slot.record.chunk, ": ", e.what());
    }
  }
  slot.decoded = false;
  slot.decode_failure.clear();
  slot.record.ok = ok;
  slot.record.error = std::move(error);
  if (!ok) slot.record.bytes = 0;
  if (ok) {
    ++chunks_loaded;
    bytes_loaded += slot.record.bytes;
  } else {
    ++chunks_failed;
  }
  slot_of_chunk.erase(slot.record.chunk);
  slot.state = SlotState::free;
  slot.copies_issued = false;
  slot.landed_bytes = 0;
  slot.failure.clear();
  slot.src = nullptr;
  slot.issued_bytes = 0;
  slot.booked_bytes = 0;
  LoadedChunk record = std::move(slot.record);
  slot.record = LoadedChunk{};
  (*on_done)(record);
}

void LoadPipeline::Impl::deliver(LoadedChunk record, bool ok, std::string error) {
  record.ok = ok;
  record.error = std::move(error);
  if (!ok) record.bytes = 0;
  if (ok) {
    ++chunks_loaded;
    bytes_loaded += record.bytes;
  } else {
    ++chunks_failed;
  }
  (*on_done)(record);
}

// Copies payload bytes [offset, offset + bytes) of the slot's chunk, found at `from` + offset,
// into the cache; a range may span segments. Throws cake::Error on a failed copy.
void LoadPipeline::Impl::copy_range(Slot& slot, const ChunkEntry& entry, const std::byte* from, uint64_t offset,
                                    uint64_t bytes) {
  if (bytes == 0) return;
  if (!slot.copies_issued) slot.record.h2d_start_ns = now_ns();
  slot.copies_issued = true;
  if (decoder->active()) {
    // Encoded bytes go whole into the slot's device staging (decode_step writes the cache); a
    // host cache is decoded straight from the host bytes, so nothing is copied here.
    if (target.memory == MemoryKind::device) {
#if defined(CAKE_HAVE_CUDA)
      std::byte* staging = decoder->device_staging(static_cast<int>(&slot - slots.data()));
      CAKE_CUDA(cudaMemcpyAsync(staging + offset, from + offset, bytes, cudaMemcpyHostToDevice, stream->get()),
                cat("uploading encoded bytes ", offset, "..", offset + bytes, " of chunk ", slot.record.chunk));
#endif
    }
    return;
  }
  copy_bytes(slot.record.chunk, entry, from + offset, offset, bytes);
}

std::string LoadPipeline::Impl::decode_step(Slot& slot, const std::byte* from) {
  if (!decoder->active()) return {};
  try {
#if defined(CAKE_HAVE_CUDA)
    void* copy_stream = stream ? static_cast<void*>(stream->get()) : nullptr;
#else
    void* copy_stream = nullptr;
#endif
    decoder->decode(static_cast<int>(&slot - slots.data()), slot.record.chunk,
                    header->chunks[static_cast<size_t>(slot.record.chunk)], from, copy_stream);
    slot.decoded = true;
    if (target.memory == MemoryKind::device) slot.copies_issued = true;  // the decode writes the cache
  } catch (const Error& e) {
    return e.what();
  }
  return {};
}

// Copies payload bytes [offset, offset + bytes) of `chunk`, found at `src`, into the cache (on the
// copy stream for a device cache); a range may span segments. Throws cake::Error on a failed copy.
void LoadPipeline::Impl::copy_bytes(int chunk, const ChunkEntry& entry, const std::byte* src, uint64_t offset,
                                    uint64_t bytes) {
  uint64_t at = offset;
  for (const std::span<std::byte>& dst : cache_range(entry, offset, bytes)) {
    const std::byte* from = src + (at - offset);
    if (target.memory == MemoryKind::host) {
      LoadLaneWork busy;
      std::memcpy(dst.data(), from, dst.size());
    } else {
#if defined(CAKE_HAVE_CUDA)
      CAKE_CUDA(cudaMemcpyAsync(dst.data(), from, dst.size(), cudaMemcpyHostToDevice, stream->get()),
                cat("uploading bytes ", at, "..", at + dst.size(), " of chunk ", chunk));
#else
      (void)chunk;
#endif
    }
    at += dst.size();
  }
}

std::vector<std::span<std::byte>> LoadPipeline::Impl::cache_range(const ChunkEntry& entry, uint64_t offset,
                                                                  uint64_t bytes) const {
  std::vector<std::span<std::byte>> spans;
  const uint64_t segment_bytes = target.segment_bytes(entry.tokens);
  for (uint64_t at = offset, end = offset + bytes; at < end;) {
    const auto segment = static_cast<int>(at / segment_bytes);
    const uint64_t within = at % segment_bytes;
    const uint64_t n = std::min(segment_bytes - within, end - at);
    spans.emplace_back(target.segment_ptr(segment, entry.first_token) + within, n);
    at += n;
  }
  return spans;
}

#if defined(CAKE_HAVE_CUDA)
std::vector<DeviceSpan> LoadPipeline::Impl::cache_spans(const ChunkEntry& entry) const {
  std::vector<DeviceSpan> spans;
  for (const std::span<std::byte>& span : cache_range(entry, 0, entry.bytes)) spans.push_back({span.data(), span.size()});
  return spans;
}
#endif

// The slot's last copy is queued: it is reported (ok, or `failure`) once the copies are done.
void LoadPipeline::Impl::finish_copies(Slot& slot, std::string failure) {
  slot.failure = std::move(failure);
  if (slot.failure.empty()) slot.failure = decode_step(slot, slot.data);
  if (target.memory == MemoryKind::host || !slot.copies_issued) {
    slot.record.h2d_end_ns = now_ns();
    if (slot.record.h2d_start_ns == 0) slot.record.h2d_start_ns = slot.record.h2d_end_ns;
    std::string f = std::move(slot.failure);
    const bool ok = f.empty();  // before f is moved into the argument (unsequenced otherwise)
    report(slot, ok, std::move(f));
    return;
  }
#if defined(CAKE_HAVE_CUDA)
  slot.uploaded->record(stream->get());
  slot.state = SlotState::uploading;
#endif
}

void LoadPipeline::Impl::upload_landed(std::vector<LandedRange> ranges) {
  for (const LandedRange& r : ranges) {
    const auto it = slot_of_chunk.find(r.chunk);
    if (it == slot_of_chunk.end()) continue;  // failed and reported already
    Slot& slot = slots[it->second];
    if (slot.state != SlotState::reading || !slot.failure.empty()) continue;
    const ChunkEntry& entry = header->chunks[static_cast<size_t>(r.chunk)];
    if (r.offset + r.bytes > entry.bytes) continue;  // padding is never uploaded
    try {
      copy_range(slot, entry, slot.data, r.offset, r.bytes);
      slot.landed_bytes += r.bytes;
    } catch (const Error& e) {
      slot.failure = e.what();  // reported when the read completes, after the copies already queued
    }
  }
}

void LoadPipeline::Impl::start_upload(Slot& slot, const ChunkRead& read) {
  const ChunkEntry& entry = header->chunks[static_cast<size_t>(read.chunk)];
  slot.span = NvtxSpan(cat("h2d c=", read.chunk));
  slot.record.bytes = read.bytes;
  if (!slot.failure.empty()) {
    finish_copies(slot, slot.failure);
    return;
  }
  try {
    // Ranges the source did not announce (or all of them) go now; re-copying is harmless.
    if (slot.landed_bytes != entry.bytes) copy_range(slot, entry, slot.data, 0, entry.bytes);
    finish_copies(slot, {});
  } catch (const Error& e) {
    finish_copies(slot, e.what());
  }
}

// Reports uploads whose event completed; with block_on_oldest, waits for one first.
bool LoadPipeline::Impl::poll_uploads([[maybe_unused]] bool block_on_oldest) {
  bool progressed = false;
  if (direct) return false;  // complete_direct() watches the direct path's copies
#if defined(CAKE_HAVE_CUDA)
  Slot* oldest = nullptr;
  for (Slot& slot : slots) {
    if (slot.state != SlotState::uploading) continue;
    if (!oldest || slot.record.h2d_start_ns < oldest->record.h2d_start_ns) oldest = &slot;
  }
  if (block_on_oldest && oldest) {
    try {
      oldest->uploaded->synchronize();
    } catch (const Error&) {
      // reported below through query()
    }
  }
  for (Slot& slot : slots) {
    if (slot.state != SlotState::uploading) continue;
    bool done = false;
    std::string error;
    try {
      done = slot.uploaded->query();
    } catch (const Error& e) {
      done = true;
      error = cat("uploading chunk ", slot.record.chunk, ": ", e.what());
    }
    if (!done) continue;
    slot.record.h2d_end_ns = now_ns();
    if (error.empty()) error = std::move(slot.failure);
    report(slot, error.empty(), error);
    progressed = true;
  }
#endif
  return progressed;
}

void LoadPipeline::Impl::handle_reads(std::vector<ChunkRead> reads) {
  for (ChunkRead& r : reads) {
    const auto it = slot_of_chunk.find(r.chunk);
    if (it == slot_of_chunk.end())
      throw Error(cat("the source ", source.describe(), " reported chunk ", r.chunk, ", which is not being read"));
    Slot& slot = slots[it->second];
    slot.span.end();
    slot.record.read_submit_ns = r.submit_ns;
    slot.record.read_complete_ns = r.complete_ns;
    if (!r.ok) {
      finish_copies(slot, std::move(r.error));  // after the ranges already uploaded are done
      continue;
    }
    start_upload(slot, r);
  }
}

void LoadPipeline::Impl::drain_after_error() {
  try {
    while (source.outstanding() > 0) (void)source.reap(true);
  } catch (...) {  // the source is broken; its destructor waits for what the kernel still holds
  }
#if defined(CAKE_HAVE_CUDA)
  if (stream) cudaStreamSynchronize(stream->get());
#endif
}

void LoadPipeline::Impl::run(const StoreKey& key, const ClaimFn& claim, const DoneFn& done) {
  bytes_loaded = 0;
  direct = false;
  stats = LoadPipelineStats{};
  stats.path = piece_source ? "pieces" : "chunks";
  stats.checksum = piece_source ? (gpu_verify ? "gpu" : "cpu") : "";
  stats.pool_pieces = pool_pieces;
  stats.piece_bytes = piece_bytes;
  booked_ready_ns.clear();
  chunks_loaded = 0;
  chunks_failed = 0;
  open_error.clear();
  on_done = &done;
  slot_of_chunk.clear();
  header = nullptr;
  try {
    header = &source.open(key);
    open_error = compatibility_problem(*header);
  } catch (const std::exception& e) {
    open_error = e.what();
  }
  if (open_error.empty() && piece_source) {
    PieceSource* pieces = source.piece_source();  // asked again after open(): the source says it in describe()
    if (pieces != piece_source) open_error = "the source's piece reader changed between construction and open()";
  }
  source_description = source.describe();
  if (!open_error.empty()) {
    // The engine computes what the store cannot give: every chunk it hands us fails at once.
    while (const std::optional<int> chunk = claim()) {
      LoadedChunk record;
      record.chunk = *chunk;
      record.claim_ns = now_ns();
      record.error = cat("store not loaded: ", open_error);
      ++chunks_failed;
      done(record);
    }
    return;
  }

  if (piece_source) {
    run_pieces(claim);
    return;
  }
  resident = source.host_resident();
  direct = resident != nullptr && checksum_pool != nullptr;
  if (direct) stats.path = "direct";
  if (direct) {
    run_direct(claim);
    return;
  }

  std::string source_error;  // once set, the source is not used again
  bool claiming = true;
  try {
    for (;;) {
      fill_free_slots(claim, claiming, [&](Slot& slot, int chunk) {
        if (!source_error.empty()) {
          report(slot, false, source_error);
          return;
        }
        slot.span = NvtxSpan(cat("load c=", chunk));
        slot.record.read_submit_ns = now_ns();
        try {
          source.submit(chunk, slot.data);
        } catch (const Error& e) {
          report(slot, false, cat("submitting the read of chunk ", chunk, ": ", e.what()));
        }
      });

      bool reading = false;
      bool uploading = false;
      for (const Slot& s : slots) {
        reading |= s.state == SlotState::reading;
        uploading |= s.state == SlotState::uploading;
      }
      if (!reading && !uploading) {
        if (!claiming) break;
        continue;  // every slot free and more to claim
      }

      bool progressed = poll_uploads(false);
      const bool pieces = source.reports_progress();
      if (reading && source_error.empty()) {
        // Block in the source only when nothing else could move: no upload to watch. A source
        // that reports landed ranges is waited on for any of them (they are uploaded at once),
        // briefly while uploads are pending, instead of for a whole chunk.
        const bool wait = !uploading && !progressed;
        try {
          std::vector<ChunkRead> reads = pieces ? source.reap_progress(wait ? kPiecesWaitNs : progressed ? 0 : kPollNs)
                                                : source.reap(wait);
          if ((wait || pieces) && reads.empty() && source.outstanding() == 0)
            throw Error(cat(source.describe(), " has nothing outstanding but never reported some chunks it was given"));
          progressed |= !reads.empty();
          std::vector<LandedRange> landed = source.take_landed();
          progressed |= !landed.empty();
          upload_landed(std::move(landed));  // before the reads: a finished chunk's last ranges
          handle_reads(std::move(reads));
        } catch (const Error& e) {
          source_error = cat("the source failed: ", e.what());
          drain_after_error();
          for (Slot& s : slots)
            if (s.state == SlotState::reading) report(s, false, source_error);
          progressed = true;
        }
      }
      if (!progressed && uploading) {
        if (!reading) poll_uploads(true);
        else if (!pieces) short_pause();  // reap_progress() waited already
      }
    }
  } catch (...) {
    drain_after_error();  // no read or copy may outlive this call into our slots
    throw;
  }
}

// ---- The direct path: host-resident payloads copied straight into the cache. ----

namespace {
constexpr size_t kPiecesBookedAhead = 16;             // as the file source books a queue depth ahead
constexpr uint64_t kUnthrottledPieceBytes = 4u << 20;  // fewer, larger copies when nothing paces them
constexpr double kPacedPieceNs = 80'000;
}  // namespace

uint64_t LoadPipeline::Impl::next_piece(const ChunkEntry& entry, uint64_t offset) const {
  const uint64_t segment_bytes = target.segment_bytes(entry.tokens);
  const uint64_t in_segment = segment_bytes - offset % segment_bytes;
  uint64_t piece = std::max(resident->piece_bytes(), kUnthrottledPieceBytes);
  if (const Throttle* throttle = resident->throttle()) {
    // Small copies lose rate to per-copy overhead (1 MiB pieces reached 94% of 400 Gbps on an
    // H200, 2 MiB 98%): a piece carries about kPacedPieceNs of the peak rate, at least the
    // source's piece size and at most kUnthrottledPieceBytes.
    const double by_rate = throttle->peak_bytes_per_sec() * kPacedPieceNs / 1e9;
    piece = std::clamp<uint64_t>(store_align_up(static_cast<uint64_t>(by_rate)), resident->piece_bytes(),
                                 std::max(resident->piece_bytes(), kUnthrottledPieceBytes));
  }
  return std::min({piece, in_segment, entry.bytes - offset});
}

void LoadPipeline::Impl::claim_direct(Slot& slot, int chunk) {
  const ChunkEntry& entry = header->chunks[static_cast<size_t>(chunk)];
  slot.sums.reset(entry.bytes);
  slot.claim_seq = claim_seq++;
  slot.span = NvtxSpan(cat("h2d c=", chunk));
  slot.record.read_submit_ns = now_ns();
  try {
    slot.src = resident->payload(chunk);
  } catch (const Error& e) {
    report(slot, false, e.what());
  }
}

// Copies every piece whose throttle time has come, oldest claim first; next_due_ns: when the
// next one is due (0: none waiting on the throttle).
bool LoadPipeline::Impl::issue_pieces(int64_t& next_due_ns) {
  next_due_ns = 0;
  std::vector<Slot*> order;
  for (Slot& slot : slots)
    if (slot.state == SlotState::reading) order.push_back(&slot);
  std::sort(order.begin(), order.end(), [](const Slot* a, const Slot* b) { return a->claim_seq < b->claim_seq; });
  Throttle* throttle = resident->throttle();
  // Pays ahead, in claim order, so that a late wake-up of this thread costs no rate.
  auto book_ahead = [&] {
    for (Slot* slot : order) {
      const ChunkEntry& entry = header->chunks[static_cast<size_t>(slot->record.chunk)];
      while (slot->booked_bytes < entry.bytes && booked_ready_ns.size() < kPiecesBookedAhead) {
        const uint64_t piece = next_piece(entry, slot->booked_bytes);
        booked_ready_ns.push_back(throttle->reserve(piece));
        slot->booked_bytes += piece;
      }
    }
  };
  bool progressed = false;
  int64_t now = now_ns();
  for (Slot* slot : order) {
    const ChunkEntry& entry = header->chunks[static_cast<size_t>(slot->record.chunk)];
    while (slot->issued_bytes < entry.bytes) {
      const uint64_t piece = next_piece(entry, slot->issued_bytes);
      if (throttle) {
        if (booked_ready_ns.size() < kPiecesBookedAhead) book_ahead();
        if (booked_ready_ns.empty()) throw Error("load pipeline: a paced piece has no throttle booking");
        if (booked_ready_ns.front() > now) {
          now = now_ns();
          if (booked_ready_ns.front() > now) {
            next_due_ns = booked_ready_ns.front();
            return progressed;
          }
        }
        booked_ready_ns.pop_front();
      }
      if (slot->failure.empty()) {
        try {
          copy_range(*slot, entry, slot->src, slot->issued_bytes, piece);
          checksum_pool->post(slot->record.chunk, slot->issued_bytes, slot->src + slot->issued_bytes, piece);
        } catch (const Error& e) {
          slot->failure = e.what();  // the chunk's later pieces are paid for but not copied
        }
      }
      slot->issued_bytes += piece;
      progressed = true;
    }
    slot->record.read_complete_ns = now_ns();  // every byte handed to the copy engine
    if (slot->failure.empty()) slot->decode_failure = decode_step(*slot, slot->src);
    if (target.memory == MemoryKind::host || !slot->copies_issued) {
      slot->record.h2d_end_ns = now_ns();
      if (slot->record.h2d_start_ns == 0) slot->record.h2d_start_ns = slot->record.h2d_end_ns;
    } else {
#if defined(CAKE_HAVE_CUDA)
      try {
        slot->uploaded->record(stream->get());
      } catch (const Error& e) {
        if (slot->failure.empty()) slot->failure = e.what();
        cudaStreamSynchronize(stream->get());
        slot->record.h2d_end_ns = now_ns();
      }
#endif
    }
    slot->state = SlotState::uploading;
  }
  return progressed;
}

bool LoadPipeline::Impl::collect_checksums(int64_t wait_ns) {
  std::vector<PieceCrc> pieces = checksum_pool->take(wait_ns);
  for (const PieceCrc& p : pieces) {
    const auto it = slot_of_chunk.find(p.chunk);
    if (it != slot_of_chunk.end()) slots[it->second].sums.add(p);  // else: failed and reported already
  }
  return !pieces.empty();
}

// Reports the chunks whose copies are done and whose checksum is known.
bool LoadPipeline::Impl::complete_direct() {
  bool progressed = false;
  for (Slot& slot : slots) {
    if (slot.state != SlotState::uploading) continue;
#if defined(CAKE_HAVE_CUDA)
    if (slot.record.h2d_end_ns == 0) {
      try {
        if (!slot.uploaded->query()) continue;
      } catch (const Error& e) {
        if (slot.failure.empty()) slot.failure = cat("uploading chunk ", slot.record.chunk, ": ", e.what());
      }
      slot.record.h2d_end_ns = now_ns();
    }
#endif
    if (slot.failure.empty() && !slot.sums.complete()) continue;
    std::string problem = std::move(slot.failure);
    const ChunkEntry& entry = header->chunks[static_cast<size_t>(slot.record.chunk)];
    if (problem.empty()) {
      const uint32_t crc = slot.sums.combined(problem);
      if (problem.empty()) problem = checksum_problem(entry, crc, slot.record.chunk, resident->location());
    }
    if (problem.empty()) problem = std::move(slot.decode_failure);
    if (problem.empty()) problem = resident->forced_failure(slot.record.chunk);
    slot.record.bytes = entry.bytes;
    const bool ok = problem.empty();  // before problem is moved into the argument
    report(slot, ok, std::move(problem));
    progressed = true;
  }
  return progressed;
}

void LoadPipeline::Impl::fill_free_slots(const ClaimFn& claim, bool& claiming,
                                         const std::function<void(Slot&, int)>& start) {
  for (size_t i = 0; i < slots.size() && claiming; ++i) {
    Slot& slot = slots[i];
    if (slot.state != SlotState::free) continue;
    const std::optional<int> chunk = claim();
    if (!chunk) {
      claiming = false;
      return;
    }
    if (*chunk == kClaimLater) {
      // Ask again after the next completion; with nothing in flight there is no "next", so stop.
      bool busy = false;
      for (const Slot& s : slots) busy |= s.state != SlotState::free;
      if (!busy) claiming = false;
      return;
    }
    slot.record = LoadedChunk{};
    slot.record.chunk = *chunk;
    slot.record.claim_ns = now_ns();
    slot.state = SlotState::reading;
    slot_of_chunk[*chunk] = i;
    if (*chunk < 0 || static_cast<size_t>(*chunk) >= header->chunks.size()) {
      report(slot, false, cat("chunk ", *chunk, " is not in the store (", header->chunks.size(), " chunks)"));
      continue;
    }
    start(slot, *chunk);
  }
}

void LoadPipeline::Impl::run_direct(const ClaimFn& claim) {
  bool claiming = true;
  try {
    for (;;) {
      fill_free_slots(claim, claiming, [&](Slot& slot, int chunk) { claim_direct(slot, chunk); });
      int64_t next_due_ns = 0;
      bool progressed = issue_pieces(next_due_ns);
      progressed |= collect_checksums(0);
      progressed |= complete_direct();
      bool busy = false;
      for (const Slot& s : slots) busy |= s.state != SlotState::free;
      if (!busy) {
        if (!claiming) break;
        continue;
      }
      if (progressed) continue;
      // Nothing moved: wait for a checksum, the next paced piece or the copies, whichever is first.
      const int64_t now = now_ns();
      int64_t wait_ns = kPollNs;
      if (next_due_ns > 0) wait_ns = std::min(wait_ns, next_due_ns - now);
      if (wait_ns <= 0) continue;
      if (checksum_pool->pending() > 0) collect_checksums(wait_ns);
      else if (next_due_ns > 0 && next_due_ns - now <= kPollNs) sleep_until_ns(next_due_ns);
      else short_pause();
    }
  } catch (...) {
    drain_after_error();
    while (checksum_pool->pending() > 0) (void)checksum_pool->take(1'000'000);
    throw;
  }
  // Pieces of chunks that failed early may still be checksummed: none may leak into a later run.
  while (checksum_pool->pending() > 0) (void)checksum_pool->take(1'000'000);
}


// ---- Byte staging: pieces of chunks read into a pool of staging pieces, each copied as it lands. ----

void LoadPipeline::Impl::make_piece_pool() {
  piece_bytes = options.piece_bytes > 0 ? options.piece_bytes : kDefaultPieceBytes;
  if (piece_bytes % kStoreAlignment != 0)
    throw UsageError(cat("load pipeline: staging piece of ", piece_bytes, " bytes is not a multiple of 4 KiB"));
  // No piece larger than a chunk, and never more bytes in flight than the chunks in flight hold.
  piece_bytes = std::min(piece_bytes, slot_bytes);
  const uint64_t wanted = options.staging_bytes > 0 ? options.staging_bytes : kDefaultStagingBytes;
  const uint64_t cap = slot_bytes * static_cast<uint64_t>(options.staging_slots);
  const uint64_t in_flight = std::min(wanted, cap);
  // At least two pieces for each reader thread (one read while the other is copied): with 16 MiB
  // pieces in 128 MiB, 12 readers on the H200 sat idle 40% of the time waiting for a free piece.
  pool_pieces = static_cast<int>(std::max<uint64_t>({2, 2 * static_cast<uint64_t>(piece_source->readers()),
                                                      (in_flight + piece_bytes - 1) / piece_bytes}));
  const uint64_t pool_bytes = piece_bytes * static_cast<uint64_t>(pool_pieces);
  if (target.memory == MemoryKind::device) {
#if defined(CAKE_HAVE_CUDA)
    stream = std::make_unique<cuda::Stream>("the load lane's copy stream");
    // cudaHostAlloc promises 256-byte alignment only; O_DIRECT needs 4 KiB: over-allocate and align.
    pinned_memory.emplace_back(pool_bytes + kStoreAlignment, cat("the load lane's ", pool_pieces, " staging pieces"));
    const auto base = reinterpret_cast<uintptr_t>(pinned_memory.back().get());
    pool = reinterpret_cast<std::byte*>((base + kStoreAlignment - 1) / kStoreAlignment * kStoreAlignment);
    std::memset(pool, 0, pool_bytes);  // fault the pages in now, not during the timed load
    for (int i = 0; i < pool_pieces; ++i) piece_copied.emplace_back(false);
    pinned = true;
    if (gpu_verify) {
      gpu_crc = std::make_unique<GpuCrc32c>(options.staging_slots);
      for (int i = 0; i < options.staging_slots; ++i) {
        verify_begin.emplace_back(true);
        verify_end.emplace_back(true);
      }
    }
#else
    throw EnvironmentError("load pipeline: the KV cache is on a GPU but this build has no CUDA");
#endif
  } else {
    host_memory.emplace_back(pool_bytes);
    host_memory.back().zero();  // fault the pages in now, not during the timed load
    pool = host_memory.back().data();
  }
}

void LoadPipeline::Impl::drain_pieces() {
  try {
    while (piece_source->pieces_in_flight() > 0) (void)piece_source->take_pieces(1'000'000);
  } catch (...) {  // the source's destructor joins its readers after their last piece
  }
#if defined(CAKE_HAVE_CUDA)
  if (stream) cudaStreamSynchronize(stream->get());
#endif
}

void LoadPipeline::Impl::run_pieces(const ClaimFn& claim) {
  PieceLedger ledger(pool_pieces, piece_bytes);
  struct InFlight {
    LoadedChunk record;
    NvtxSpan load;  // "load c=i": claimed, until reported
    NvtxSpan h2d;   // "h2d c=i": from its first copy, until reported
    uint64_t queued_bytes = 0;  // device: payload bytes whose copies are queued
    int verify_slot = -1;       // GPU checksum: its slot, once queued behind the last copy
  };
  // GPU checksum: chunks done in the ledger (every copy finished), waiting for their kernel.
  struct Verifying {
    InFlight chunk;
    std::string failure;  // the ledger's verdict when it failed meanwhile: reported once the kernel is done
  };
  std::map<int, InFlight> records;     // of the active chunks
  std::deque<PieceJob> copies;         // device: pieces whose copies are queued, in stream order
  std::deque<Verifying> verifying;     // in stream order
  std::vector<int> free_verify_slots;
  for (int i = options.staging_slots; i-- > 0;) free_verify_slots.push_back(i);
  const std::string where = piece_source->location();
  bool claiming = true;
  bool claim_later = false;            // the claim said "later": ask again after a chunk finishes
  std::vector<PieceLanded> arrived;    // taken while waiting, handled at the top of the loop
  const int64_t run_from = now_ns();
  // A host cache and a source that copies anywhere (a mapped file): the readers write each piece
  // straight into its place in the cache, so a staging piece is only a share of the bytes in
  // flight and nothing is copied twice. On the 2-core dev box the second copy, on this thread, kept
  // the loader at 0.84-1.01 x fio (results/loaders/round5-devbox-fio/).
  const bool into_cache = target.memory == MemoryKind::host && piece_source->scatters();
  stats.into_cache = into_cache;
  auto piece_ptr = [&](int piece) { return pool + static_cast<uint64_t>(piece) * piece_bytes; };
  try {
    for (;;) {
      bool progressed = false;
      // Claim only when a claimed chunk's first piece could start now: every active chunk is cut
      // to the end, a staging piece is free, and fewer chunks than the slots are in flight.
      while (claiming && !claim_later && ledger.all_cut() && ledger.free_pieces() > 0 &&
             ledger.active_chunks() + static_cast<int>(verifying.size()) < options.staging_slots) {
        const std::optional<int> chunk = claim();
        if (!chunk) {
          claiming = false;
          break;
        }
        if (*chunk == kClaimLater) {
          if (ledger.active_chunks() == 0 && verifying.empty()) claiming = false;  // no completion would ask again
          else claim_later = true;
          break;
        }
        LoadedChunk record;
        record.chunk = *chunk;
        record.claim_ns = now_ns();
        progressed = true;
        if (*chunk < 0 || static_cast<size_t>(*chunk) >= header->chunks.size()) {
          deliver(record, false, cat("chunk ", *chunk, " is not in the store (", header->chunks.size(), " chunks)"));
          continue;
        }
        if (ledger.active(*chunk)) {
          deliver(record, false, cat("chunk ", *chunk, " claimed while it is still being loaded"));
          continue;
        }
        const ChunkEntry& entry = header->chunks[static_cast<size_t>(*chunk)];
        records[*chunk] = InFlight{record, NvtxSpan(cat("load c=", *chunk)), NvtxSpan()};
        ledger.add_chunk(*chunk, entry.bytes, entry.crc32c, where, !gpu_verify);
      }
      // Hand every free staging piece to the next bytes of the oldest chunks.
      while (const std::optional<PieceJob> job = ledger.next_job()) {
        LoadedChunk& record = records.at(job->chunk).record;
        if (record.read_submit_ns == 0) record.read_submit_ns = now_ns();
        PieceRead read{job->chunk, job->offset, job->bytes, piece_ptr(job->piece), job->piece, !gpu_verify, {}};
        if (into_cache) read.scatter = cache_range(header->chunks[static_cast<size_t>(job->chunk)], job->offset, job->bytes);
        piece_source->read_piece(read);
        ++stats.pieces;
        progressed = true;
      }
      stats.max_pieces_reading = std::max(stats.max_pieces_reading, ledger.pieces_reading());
      // Pieces that landed go to the copy engine at once.
      if (arrived.empty()) arrived = piece_source->take_pieces(0);
      std::vector<PieceLanded> landed_now;
      landed_now.swap(arrived);
      for (const PieceLanded& landed : landed_now) {
        progressed = true;
        const PieceJob job{landed.read.chunk, landed.read.tag, landed.read.offset, landed.read.bytes};
        InFlight& in_flight = records.at(job.chunk);
        LoadedChunk& record = in_flight.record;
        record.read_complete_ns = std::max(record.read_complete_ns, landed.landed_ns);
        if (!ledger.landed(job, landed.ok, landed.crc, landed.error)) continue;
        const ChunkEntry& entry = header->chunks[static_cast<size_t>(job.chunk)];
        if (record.h2d_start_ns == 0) {
          record.h2d_start_ns = now_ns();
          in_flight.h2d = NvtxSpan(cat("h2d c=", job.chunk));
        }
        try {
          if (!into_cache) copy_bytes(job.chunk, entry, piece_ptr(job.piece), job.offset, job.bytes);
          if (target.memory == MemoryKind::host) {
            record.h2d_end_ns = now_ns();
            ledger.copied(job);
          } else {
#if defined(CAKE_HAVE_CUDA)
            piece_copied[static_cast<size_t>(job.piece)].record(stream->get());
            copies.push_back(job);
            in_flight.queued_bytes += job.bytes;
#endif
          }
        } catch (const Error& e) {
#if defined(CAKE_HAVE_CUDA)
          if (stream) cudaStreamSynchronize(stream->get());  // no copy may still read the piece
#endif
          record.h2d_end_ns = now_ns();
          ledger.copied(job, e.what());
        }
#if defined(CAKE_HAVE_CUDA)
        // The chunk's last copy is queued: its checksum kernel goes right behind it on the stream.
        if (gpu_verify && in_flight.verify_slot < 0 && in_flight.queued_bytes == entry.bytes) {
          const int slot = free_verify_slots.back();
          free_verify_slots.pop_back();
          try {
            verify_begin[static_cast<size_t>(slot)].record(stream->get());
            gpu_crc->enqueue(slot, cache_spans(entry), stream->get(), cat("verifying chunk ", job.chunk, " of ", where));
            verify_end[static_cast<size_t>(slot)].record(stream->get());
            in_flight.verify_slot = slot;
          } catch (const Error& e) {
            cudaStreamSynchronize(stream->get());  // nothing of it may still run when the slot is reused
            free_verify_slots.push_back(slot);
            ledger.fail(job.chunk, e.what());
          }
        }
#endif
      }
      stats.max_pieces_copying = std::max(stats.max_pieces_copying, ledger.pieces_copying());
      // Copies done, in stream order: their staging pieces are free again.
#if defined(CAKE_HAVE_CUDA)
      while (!copies.empty()) {
        const PieceJob job = copies.front();
        std::string error;
        try {
          if (!piece_copied[static_cast<size_t>(job.piece)].query()) break;
        } catch (const Error& e) {
          error = cat("uploading chunk ", job.chunk, ": ", e.what());
        }
        copies.pop_front();
        records.at(job.chunk).record.h2d_end_ns = now_ns();
        ledger.copied(job, error);
        progressed = true;
      }
#endif
      for (FinishedChunk& f : ledger.take_finished()) {
        progressed = true;
        auto node = records.extract(f.chunk);
        if (node.mapped().verify_slot >= 0) {  // resident only once its checksum kernel agrees
          verifying.push_back({std::move(node.mapped()), f.ok ? std::string() : std::move(f.error)});
          continue;
        }
        claim_later = false;
        node.mapped().load.end();
        node.mapped().h2d.end();
        LoadedChunk record = std::move(node.mapped().record);
        if (record.read_complete_ns == 0) record.read_complete_ns = now_ns();
        if (record.h2d_end_ns == 0) record.h2d_end_ns = now_ns();
        if (record.h2d_start_ns == 0) record.h2d_start_ns = record.h2d_end_ns;
        record.bytes = header->chunks[static_cast<size_t>(f.chunk)].bytes;
        deliver(std::move(record), f.ok, std::move(f.error));
      }
#if defined(CAKE_HAVE_CUDA)
      // GPU checksums done, in stream order: the chunk is resident if it matched.
      while (!verifying.empty()) {
        Verifying& v = verifying.front();
        const auto slot = static_cast<size_t>(v.chunk.verify_slot);
        const int chunk = v.chunk.record.chunk;
        std::string error;
        try {
          if (!verify_end[slot].query()) break;
          if (v.failure.empty()) {
            const ChunkEntry& entry = header->chunks[static_cast<size_t>(chunk)];
            error = checksum_problem(entry, gpu_crc->result(v.chunk.verify_slot), chunk, where);
            stats.gpu_checksum_ns += static_cast<int64_t>(verify_end[slot].elapsed_ms_since(verify_begin[slot]) * 1e6);
            ++stats.gpu_checksums;
          }
        } catch (const Error& e) {
          error = cat("verifying chunk ", chunk, " of ", where, " on the GPU: ", e.what());
        }
        if (!v.failure.empty()) error = std::move(v.failure);  // the ledger's reason came first
        free_verify_slots.push_back(v.chunk.verify_slot);
        LoadedChunk record = std::move(v.chunk.record);
        v.chunk.load.end();
        v.chunk.h2d.end();
        verifying.pop_front();
        record.h2d_end_ns = now_ns();  // resident now, not at its last copy
        if (record.read_complete_ns == 0) record.read_complete_ns = record.h2d_end_ns;
        if (record.h2d_start_ns == 0) record.h2d_start_ns = record.h2d_end_ns;
        record.bytes = header->chunks[static_cast<size_t>(chunk)].bytes;
        progressed = true;
        claim_later = false;
        const bool ok = error.empty();
        deliver(std::move(record), ok, std::move(error));
      }
#endif
      if (ledger.active_chunks() == 0 && verifying.empty()) {
        if (!claiming) break;
        if (!claim_later) continue;
      }
      if (progressed) continue;
      // Nothing moved: wait for a read to land or a copy to finish.
      const int64_t wait_from = now_ns();
      const int reading = ledger.pieces_reading();
      const bool copying = !copies.empty();
      const bool no_free_piece = ledger.free_pieces() == 0;
      const bool checking = !verifying.empty();
      if (reading == 0 && !copying && !checking)
        throw InternalError(cat("load pipeline: ", ledger.active_chunks(), " chunks active but no piece is out"));
      if (copying && (reading == 0 || (ledger.free_pieces() == 0 && copies.size() >= 2))) {
#if defined(CAKE_HAVE_CUDA)
        // Every piece is out and copies are queued behind the oldest: the stream has work while
        // this thread waits for that one; or nothing is being read at all.
        try {
          piece_copied[static_cast<size_t>(copies.front().piece)].synchronize();
        } catch (const Error&) {  // reported through query() above
        }
#endif
      } else if (reading == 0 && !copying) {
#if defined(CAKE_HAVE_CUDA)
        // Only checksum kernels are left to wait for.
        try {
          verify_end[static_cast<size_t>(verifying.front().chunk.verify_slot)].synchronize();
        } catch (const Error&) {  // reported through query() above
        }
#endif
      } else {
        // A landing wakes this thread at once; with copies or checksums queued, look at them again soon.
        arrived = piece_source->take_pieces(copying || checking ? kPollNs : kPiecesWaitNs);
      }
      const int64_t waited = now_ns() - wait_from;
      if (reading > 0 && !copying) stats.wait_reads_ns += waited;
      else if (reading > 0) stats.wait_overlap_ns += waited;
      else if (copying) stats.wait_copies_ns += waited;
      else stats.wait_verify_ns += waited;
      if (no_free_piece && copying) stats.wait_no_free_piece_ns += waited;
    }
  } catch (...) {
    drain_pieces();  // no read or copy may outlive this call into the staging pieces
    throw;
  }
  stats.run_ns = now_ns() - run_from;
}

}  // namespace cake
