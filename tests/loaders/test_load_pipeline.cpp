#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <functional>
#include <map>
#include <set>
#include <stdexcept>

#include <gtest/gtest.h>

#include "common/error.hpp"
#include "loaders/aligned_buffer.hpp"
#include "loaders/fault_source.hpp"
#include "loaders/file_source.hpp"
#include "loaders/load_pipeline.hpp"
#include "loaders/mem_source.hpp"
#include "loaders/throttle.hpp"
#include "pipeline_harness.hpp"
#include "source_harness.hpp"
#include "store_fixture.hpp"

#if defined(CAKE_HAVE_CUDA)
#include <cuda_runtime.h>

#include "common/cuda_raii.hpp"
#include "gpu_present.hpp"
#endif

namespace cake {
namespace {

using test::Claimer;
using test::Reports;
using test::Seeded;
using test::TempDir;

constexpr std::byte kPoison{0xA5};

// A host KV cache shaped like the store, every byte poisoned.
struct HostCache {
  std::vector<AlignedBuffer> tensors;
  KvCacheView view;
  HostCache(const StoreHeader& h, int64_t capacity_tokens) {
    view.memory = MemoryKind::host;
    view.dtype = h.key.dtype;
    view.layers = h.layers;
    view.kv_heads = h.kv_heads;
    view.head_dim = h.head_dim;
    view.capacity_tokens = capacity_tokens;
    for (int l = 0; l < 2 * h.layers; ++l) {
      tensors.emplace_back(view.segment_bytes(capacity_tokens));
      std::memset(tensors.back().data(), static_cast<int>(kPoison), tensors.back().size());
      (l % 2 == 0 ? view.k : view.v).push_back(tensors.back().data());
    }
  }
};

// Chunk `c` is where its payload says in every segment; `loaded` false: still all poison.
void expect_chunk_in_cache(const KvCacheView& view, const test::WrittenStore& store, int c, bool loaded) {
  const ChunkEntry& e = store.header.chunks[static_cast<size_t>(c)];
  const size_t seg = view.segment_bytes(e.tokens);
  for (int s = 0; s < 2 * view.layers; ++s) {
    const std::byte* got = view.segment_ptr(s, e.first_token);
    if (loaded) {
      ASSERT_EQ(std::memcmp(got, store.payloads[static_cast<size_t>(c)].data() + static_cast<size_t>(s) * seg, seg), 0)
          << "chunk " << c << " segment " << s;
    } else {
      for (size_t i = 0; i < seg; ++i) ASSERT_EQ(got[i], kPoison) << "chunk " << c << " segment " << s << " byte " << i;
    }
  }
}

// One chunk corrupted on disk and two others to fail by injection (FaultInjectingSource's
// "injected EIO"), all chosen at random.
struct StoreFaults {
  int corrupt = -1;
  std::set<int> injected;
};

StoreFaults corrupt_one_pick_two(const test::WrittenStore& store, std::mt19937_64& rng) {
  StoreFaults f;
  const size_t chunks = store.header.chunks.size();
  f.corrupt = static_cast<int>(rng() % chunks);
  const ChunkEntry& e = store.header.chunks[static_cast<size_t>(f.corrupt)];
  UniqueFd fd(::open(store.path.c_str(), O_RDWR | O_CLOEXEC));
  if (!fd.valid()) throw std::runtime_error(cat("opening ", store.path, " to corrupt it: ", errno_text(errno)));
  // Flip bits rather than write a fixed value: the random byte there may already hold it (the
  // test failed once in 256 runs that way).
  std::byte b{};
  const auto at = static_cast<off_t>(e.offset + rng() % e.bytes);
  if (::pread(fd.get(), &b, 1, at) != 1 || (b ^= std::byte{0x5A}, ::pwrite(fd.get(), &b, 1, at)) != 1)
    throw std::runtime_error(cat("corrupting byte ", at, " of ", store.path, ": ", errno_text(errno)));
  while (f.injected.size() < 2) {
    const int c = static_cast<int>(rng() % chunks);
    if (c != f.corrupt) f.injected.insert(c);
  }
  return f;
}

// Each bad chunk failed for its own reason and every other chunk is intact (`expect_intact`).
void expect_faults_alone(const Reports& reports, const StoreFaults& f, const std::string& store_path,
                         const std::function<void(int)>& expect_intact) {
  for (const auto& [c, r] : reports.by_chunk) {
    const bool should_fail = c == f.corrupt || f.injected.contains(c);
    EXPECT_EQ(r.ok, !should_fail) << "chunk " << c << ": " << r.error;
    if (c == f.corrupt) {
      EXPECT_NE(r.error.find(cat("checksum mismatch in chunk ", c, " of ", store_path)), std::string::npos) << r.error;
    }
    if (f.injected.contains(c)) {
      EXPECT_NE(r.error.find(cat("injected EIO in chunk ", c)), std::string::npos) << r.error;
    }
    if (!should_fail) expect_intact(c);
  }
}

StoreHeader random_shape(std::mt19937_64& rng) {
  const int32_t chunk_tokens = 32 + static_cast<int32_t>(rng() % 100);
  const int64_t tokens = chunk_tokens * (4 + static_cast<int64_t>(rng() % 8)) + static_cast<int64_t>(rng() % chunk_tokens);
  return test::make_header(1 + static_cast<int>(rng() % 3), 1 + static_cast<int>(rng() % 3), 32,
                           (rng() & 1) ? DType::f32 : DType::bf16, tokens, chunk_tokens, rng());
}

// file_mapped: pieces copied out of a mapping of the file, straight into the cache (no staging).
// file_pread: pieces read with pread() through each reader's own buffer, straight into the cache.
enum class Kind { file, file_reader_threads, file_whole_chunks, file_throttled, file_mapped, file_mapped_throttled, file_pread, mem };

void round_trip(Kind kind) {
  Seeded s;
  TempDir dir;
  const StoreHeader shape = random_shape(s.rng);
  const auto store = test::write_random_store(store_path(dir.path(), shape.key), shape, s.rng);
  std::unique_ptr<KvSource> source;
  // Fast enough to keep the test short, slow enough that the reader threads wait for the bucket.
  const bool mapped = kind == Kind::file_mapped || kind == Kind::file_mapped_throttled;
  const bool pread = kind == Kind::file_pread;
  std::unique_ptr<Throttle> throttle =
      kind == Kind::file_throttled || kind == Kind::file_mapped_throttled ? make_throttle(2e9, "") : nullptr;
  if (mapped || pread) {
    source = std::make_unique<FileSource>(
        store.path,
        FileSourceOptions{.request_bytes = 4096 * (1 + s.rng() % 4), .reader_threads = 1 + static_cast<int>(s.rng() % 3),
                          .reads = pread ? FileReads::pread : FileReads::mapped},
        throttle.get());
  } else if (kind == Kind::file || kind == Kind::file_whole_chunks || kind == Kind::file_throttled) {
    source = std::make_unique<FileSource>(
        store.path, FileSourceOptions{.queue_depth = 8, .request_bytes = 16384, .reader_threads = 1 + static_cast<int>(s.rng() % 3)},
        throttle.get());
  } else if (kind == Kind::file_reader_threads) {
    // Buffered reads are CPU copies: three reader threads, each piece uploaded as it lands.
    source = std::make_unique<FileSource>(
        store.path, FileSourceOptions{.queue_depth = 5, .request_bytes = 12288, .o_direct = false, .reader_threads = 3});
  } else {
    source = std::make_unique<MemSource>(store.path);
  }
  HostCache cache(shape, shape.key.token_count);
  // Byte staging: pieces from one 4 KiB page up to past a chunk, a pool from one piece up.
  LoadPipelineOptions options{.staging_slots = 1 + static_cast<int>(s.rng() % 4)};
  options.piece_bytes = 4096 * (1 + s.rng() % 12);
  options.staging_bytes = options.piece_bytes * (1 + s.rng() % 6);
  options.piece_staging = kind != Kind::file_whole_chunks;
  SCOPED_TRACE(cat("slots ", options.staging_slots, ", pieces of ", options.piece_bytes, " bytes, ",
                   options.staging_bytes, " bytes in flight"));
  LoadPipeline pipeline(*source, cache.view, shape.key.chunk_tokens, options);
  EXPECT_EQ(pipeline.piece_staging(), kind != Kind::file_whole_chunks && kind != Kind::mem);
  Claimer claim{test::shuffled_chunks(shape.chunks.size(), s.rng), 0, SIZE_MAX};
  Reports reports;
  pipeline.run(shape.key, std::ref(claim), std::ref(reports));
  if (pipeline.piece_staging()) {
    EXPECT_EQ(pipeline.stats().path, "pieces");
    EXPECT_GE(pipeline.stats().pieces, shape.chunks.size());
    EXPECT_GE(pipeline.stats().pool_pieces, 2);
    EXPECT_NE(pipeline.source_description().find(mapped ? "pieces copied out by" : "pieces read by"), std::string::npos)
        << pipeline.source_description();
  }
  // A mapped file or pread() reads feed a host cache without staging; io_uring reads land in staging pieces.
  EXPECT_EQ(pipeline.stats().into_cache, mapped || pread);
  EXPECT_EQ(reports.duplicates, 0);
  ASSERT_EQ(reports.by_chunk.size(), shape.chunks.size());
  uint64_t bytes = 0;
  for (const auto& [c, r] : reports.by_chunk) {
    ASSERT_TRUE(r.ok) << "chunk " << c << ": " << r.error;
    EXPECT_EQ(r.bytes, store.header.chunks[static_cast<size_t>(c)].bytes);
    EXPECT_LE(r.claim_ns, r.read_submit_ns);
    EXPECT_LE(r.read_submit_ns, r.read_complete_ns);
    // Ranges are uploaded as they land: the upload starts before the read completes.
    EXPECT_LE(r.read_submit_ns, r.h2d_start_ns);
    EXPECT_LE(r.read_complete_ns, r.h2d_end_ns);
    EXPECT_LE(r.h2d_start_ns, r.h2d_end_ns);
    bytes += r.bytes;
    expect_chunk_in_cache(cache.view, store, c, true);
  }
  EXPECT_EQ(pipeline.bytes_loaded(), bytes);
  EXPECT_EQ(pipeline.chunks_loaded(), static_cast<int>(shape.chunks.size()));
  EXPECT_EQ(pipeline.chunks_failed(), 0);
  EXPECT_TRUE(pipeline.open_error().empty());
  EXPECT_EQ(pipeline.source_description(), source->describe());
  // The memory source's payloads are copied straight from its memory, without staging.
  EXPECT_EQ(pipeline.direct(), kind == Kind::mem);
}

TEST(LoadPipeline, FileSourceHostTargetBitExact) { round_trip(Kind::file); }
TEST(LoadPipeline, MemSourceHostTargetBitExact) { round_trip(Kind::mem); }
TEST(LoadPipeline, FileSourceOnReaderThreadsHostTargetBitExact) { round_trip(Kind::file_reader_threads); }
TEST(LoadPipeline, FileSourceWholeChunkSlotsHostTargetBitExact) { round_trip(Kind::file_whole_chunks); }
TEST(LoadPipeline, FileSourceThrottledPiecesHostTargetBitExact) { round_trip(Kind::file_throttled); }
TEST(LoadPipeline, MappedFileStraightIntoAHostCacheBitExact) { round_trip(Kind::file_mapped); }
TEST(LoadPipeline, MappedFileThrottledStraightIntoAHostCacheBitExact) { round_trip(Kind::file_mapped_throttled); }
TEST(LoadPipeline, PreadFileStraightIntoAHostCacheBitExact) { round_trip(Kind::file_pread); }

TEST(LoadPipeline, EachClaimedChunkOnceWhenClaimStopsEarly) {
  Seeded s;
  TempDir dir;
  const StoreHeader shape = random_shape(s.rng);
  const auto store = test::write_random_store(dir.file("e.kvstore"), shape, s.rng);
  FileSource source(store.path);
  HostCache cache(shape, shape.key.token_count);
  LoadPipeline pipeline(source, cache.view, shape.key.chunk_tokens, {.staging_slots = 3});
  const size_t limit = s.rng() % shape.chunks.size();
  Claimer claim{test::shuffled_chunks(shape.chunks.size(), s.rng), 0, limit};
  Reports reports;
  pipeline.run(shape.key, std::ref(claim), std::ref(reports));
  EXPECT_EQ(reports.duplicates, 0);
  ASSERT_EQ(reports.by_chunk.size(), limit);
  std::set<int> claimed(claim.order.begin(), claim.order.begin() + static_cast<long>(limit));
  for (int c = 0; c < static_cast<int>(shape.chunks.size()); ++c) {
    EXPECT_EQ(reports.by_chunk.contains(c), claimed.contains(c));
    expect_chunk_in_cache(cache.view, store, c, claimed.contains(c));
  }
  // The pipeline can run again for the rest.
  Claimer rest{std::vector<int>(claim.order.begin() + static_cast<long>(limit), claim.order.end()), 0, SIZE_MAX};
  Reports more;
  pipeline.run(shape.key, std::ref(rest), std::ref(more));
  EXPECT_EQ(more.by_chunk.size(), shape.chunks.size() - limit);
  for (int c = 0; c < static_cast<int>(shape.chunks.size()); ++c) expect_chunk_in_cache(cache.view, store, c, true);
}

TEST(LoadPipeline, OpenFailureFailsEveryClaimedChunk) {
  Seeded s;
  TempDir dir;
  const StoreHeader shape = random_shape(s.rng);
  const std::string path = dir.file("missing.kvstore");
  FileSource source(path);
  HostCache cache(shape, shape.key.token_count);
  LoadPipeline pipeline(source, cache.view, shape.key.chunk_tokens, {});
  Claimer claim{test::shuffled_chunks(shape.chunks.size(), s.rng), 0, SIZE_MAX};
  Reports reports;
  pipeline.run(shape.key, std::ref(claim), std::ref(reports));
  ASSERT_EQ(reports.by_chunk.size(), shape.chunks.size());
  for (const auto& [c, r] : reports.by_chunk) {
    EXPECT_FALSE(r.ok);
    EXPECT_NE(r.error.find("store not loaded"), std::string::npos) << r.error;
    EXPECT_NE(r.error.find(path), std::string::npos) << r.error;
  }
  EXPECT_NE(pipeline.open_error().find(path), std::string::npos);
  EXPECT_EQ(pipeline.chunks_failed(), static_cast<int>(shape.chunks.size()));
  EXPECT_EQ(pipeline.bytes_loaded(), 0u);
}

TEST(LoadPipeline, ShapeMismatchWithTheCacheFailsEveryChunk) {
  Seeded s;
  TempDir dir;
  const StoreHeader shape = random_shape(s.rng);
  const auto store = test::write_random_store(dir.file("s.kvstore"), shape, s.rng);
  StoreHeader other = shape;
  other.kv_heads += 1;
  HostCache cache(other, shape.key.token_count);
  FileSource source(store.path);
  LoadPipeline pipeline(source, cache.view, shape.key.chunk_tokens, {});
  Claimer claim{test::shuffled_chunks(shape.chunks.size(), s.rng), 0, SIZE_MAX};
  Reports reports;
  pipeline.run(shape.key, std::ref(claim), std::ref(reports));
  ASSERT_EQ(reports.by_chunk.size(), shape.chunks.size());
  for (const auto& [c, r] : reports.by_chunk) EXPECT_NE(r.error.find("kv heads"), std::string::npos) << r.error;
}

void faults_fail_alone(FileReads reads) {
  Seeded s;
  TempDir dir;
  const StoreHeader shape = random_shape(s.rng);
  const auto store = test::write_random_store(dir.file("f.kvstore"), shape, s.rng);
  // One chunk corrupted on disk, two more failed by injection.
  const StoreFaults faults = corrupt_one_pick_two(store, s.rng);
  const std::set<int>& injected = faults.injected;
  FaultInjectingSource source(std::make_unique<FileSource>(store.path, FileSourceOptions{.reads = reads}), injected,
                              "injected EIO");
  HostCache cache(shape, shape.key.token_count);
  LoadPipeline pipeline(source, cache.view, shape.key.chunk_tokens, {.staging_slots = 2});
  Claimer claim{test::shuffled_chunks(shape.chunks.size(), s.rng), 0, SIZE_MAX};
  Reports reports;
  pipeline.run(shape.key, std::ref(claim), std::ref(reports));
  EXPECT_EQ(pipeline.stats().into_cache, reads == FileReads::mapped || reads == FileReads::pread);
  ASSERT_EQ(reports.by_chunk.size(), shape.chunks.size());
  EXPECT_EQ(reports.duplicates, 0);
  // A failed chunk may have been copied in part as its reads landed; it is reported only after
  // those copies finished, and the engine recomputes it into the same place. Intact ones are exact.
  expect_faults_alone(reports, faults, store.path, [&](int c) { expect_chunk_in_cache(cache.view, store, c, true); });
  EXPECT_EQ(pipeline.chunks_failed(), 3);
}

TEST(LoadPipeline, FaultsFailOnlyTheirChunks) { faults_fail_alone(FileReads::uring); }
// Written straight into the cache, a bad chunk still fails alone: its checksum is over the cache's bytes.
TEST(LoadPipeline, FaultsFailOnlyTheirChunksStraightIntoAHostCache) { faults_fail_alone(FileReads::mapped); }
TEST(LoadPipeline, FaultsFailOnlyTheirChunksThroughPreadIntoAHostCache) { faults_fail_alone(FileReads::pread); }

// The direct path (memory source): a chunk corrupted in the store and chunks failed by injection
// fail alone; every other chunk is exact, each reported once, with or without a throttle.
void direct_faults(bool throttled) {
  Seeded s;
  TempDir dir;
  const StoreHeader shape = random_shape(s.rng);
  const auto store = test::write_random_store(dir.file("m.kvstore"), shape, s.rng);
  const int corrupt = static_cast<int>(s.rng() % shape.chunks.size());
  {
    const ChunkEntry& e = store.header.chunks[static_cast<size_t>(corrupt)];
    UniqueFd fd(::open(store.path.c_str(), O_RDWR | O_CLOEXEC));
    ASSERT_TRUE(fd.valid());
    std::byte b{};
    const auto at = static_cast<off_t>(e.offset + s.rng() % e.bytes);
    ASSERT_EQ(::pread(fd.get(), &b, 1, at), 1);
    b ^= std::byte{0x21};
    ASSERT_EQ(::pwrite(fd.get(), &b, 1, at), 1);
  }
  std::set<int> injected;
  if (shape.chunks.size() > 2)
    while (injected.size() < 1) {
      const int c = static_cast<int>(s.rng() % shape.chunks.size());
      if (c != corrupt) injected.insert(c);
    }
  // A rate fast enough to keep the test short, slow enough that pieces wait for the bucket.
  auto throttle = throttled ? make_throttle(4e9, "") : nullptr;
  const uint64_t piece = 4096 * (1 + s.rng() % 8);
  FaultInjectingSource source(std::make_unique<MemSource>(store.path, MemSourceOptions{.request_bytes = piece}, throttle.get()),
                              injected, "injected EIO");
  HostCache cache(shape, shape.key.token_count);
  LoadPipeline pipeline(source, cache.view, shape.key.chunk_tokens,
                        {.staging_slots = 1 + static_cast<int>(s.rng() % 4), .checksum_workers = 1 + static_cast<int>(s.rng() % 3)});
  Claimer claim{test::shuffled_chunks(shape.chunks.size(), s.rng), 0, SIZE_MAX};
  Reports reports;
  pipeline.run(shape.key, std::ref(claim), std::ref(reports));
  EXPECT_TRUE(pipeline.direct());
  EXPECT_EQ(reports.duplicates, 0);
  ASSERT_EQ(reports.by_chunk.size(), shape.chunks.size());
  for (const auto& [c, r] : reports.by_chunk) {
    const bool should_fail = c == corrupt || injected.contains(c);
    EXPECT_EQ(r.ok, !should_fail) << "chunk " << c << ": " << r.error;
    if (c == corrupt) {
      EXPECT_NE(r.error.find(cat("checksum mismatch in chunk ", c, " of ", store.path)), std::string::npos) << r.error;
    }
    if (injected.contains(c)) {
      EXPECT_NE(r.error.find(cat("injected EIO in chunk ", c)), std::string::npos) << r.error;
    }
    if (!should_fail) {
      EXPECT_EQ(r.bytes, store.header.chunks[static_cast<size_t>(c)].bytes);
      EXPECT_LE(r.h2d_start_ns, r.h2d_end_ns);
      expect_chunk_in_cache(cache.view, store, c, true);
    }
  }
  EXPECT_EQ(pipeline.chunks_failed(), 1 + static_cast<int>(injected.size()));
}

TEST(LoadPipeline, DirectPathFailsBadChunksAloneUnthrottled) { direct_faults(false); }
TEST(LoadPipeline, DirectPathFailsBadChunksAloneThrottled) { direct_faults(true); }

TEST(LoadPipeline, OutOfRangeClaimIsReportedFailed) {
  Seeded s;
  TempDir dir;
  const StoreHeader shape = random_shape(s.rng);
  const auto store = test::write_random_store(dir.file("o.kvstore"), shape, s.rng);
  MemSource source(store.path);
  HostCache cache(shape, shape.key.token_count);
  LoadPipeline pipeline(source, cache.view, shape.key.chunk_tokens, {});
  Claimer claim{{0, static_cast<int>(shape.chunks.size()), 1}, 0, SIZE_MAX};
  Reports reports;
  pipeline.run(shape.key, std::ref(claim), std::ref(reports));
  ASSERT_EQ(reports.by_chunk.size(), 3u);
  EXPECT_TRUE(reports.by_chunk.at(0).ok);
  EXPECT_TRUE(reports.by_chunk.at(1).ok);
  EXPECT_NE(reports.by_chunk.at(static_cast<int>(shape.chunks.size())).error.find("not in the store"), std::string::npos);
}

// A broken source: reads every chunk but never reports one of them.
class LosingSource : public KvSource {
 public:
  LosingSource(KvSource& inner, int lost) : inner_(inner), lost_(lost) {}
  std::string describe() const override { return "losing source"; }
  const StoreHeader& open(const StoreKey& k) override { return inner_.open(k); }
  void submit(int chunk, std::byte* dst) override { inner_.submit(chunk, dst); }
  std::vector<ChunkRead> reap(bool wait) override {
    std::vector<ChunkRead> out = inner_.reap(wait);
    std::erase_if(out, [this](const ChunkRead& r) { return r.chunk == lost_; });
    return out;
  }
  int outstanding() const override { return inner_.outstanding(); }

 private:
  KvSource& inner_;
  int lost_;
};

TEST(LoadPipeline, ASourceThatLosesAChunkFailsItInsteadOfHanging) {
  Seeded s;
  TempDir dir;
  const StoreHeader shape = random_shape(s.rng);
  const auto store = test::write_random_store(dir.file("x.kvstore"), shape, s.rng);
  MemSource mem(store.path);
  const int lost = static_cast<int>(s.rng() % shape.chunks.size());
  LosingSource source(mem, lost);
  HostCache cache(shape, shape.key.token_count);
  LoadPipeline pipeline(source, cache.view, shape.key.chunk_tokens, {.staging_slots = 1});
  Claimer claim{test::shuffled_chunks(shape.chunks.size(), s.rng), 0, SIZE_MAX};
  Reports reports;
  pipeline.run(shape.key, std::ref(claim), std::ref(reports));
  EXPECT_EQ(reports.duplicates, 0);
  ASSERT_EQ(reports.by_chunk.size(), shape.chunks.size());
  EXPECT_FALSE(reports.by_chunk.at(lost).ok);
  EXPECT_NE(reports.by_chunk.at(lost).error.find("never reported"), std::string::npos) << reports.by_chunk.at(lost).error;
  // After the source failed, later claims are failed without reading; earlier ones loaded.
  bool after = false;
  for (int c : claim.order) {
    if (c == lost) {
      after = true;
      continue;
    }
    EXPECT_EQ(reports.by_chunk.at(c).ok, !after) << "chunk " << c << ": " << reports.by_chunk.at(c).error;
  }
}

TEST(LoadPipeline, NoFileDescriptorLeaks) {
  Seeded s;
  TempDir dir;
  const StoreHeader shape = random_shape(s.rng);
  const auto store = test::write_random_store(dir.file("l.kvstore"), shape, s.rng);
  HostCache cache(shape, shape.key.token_count);
  const int before = test::count_open_fds();
  for (int round = 0; round < 3; ++round) {
    FileSource source(round == 2 ? dir.file("missing") : store.path);
    LoadPipeline pipeline(source, cache.view, shape.key.chunk_tokens, {});
    Claimer claim{test::shuffled_chunks(shape.chunks.size(), s.rng), 0, SIZE_MAX};
    Reports reports;
    pipeline.run(shape.key, std::ref(claim), std::ref(reports));
    EXPECT_EQ(reports.by_chunk.size(), shape.chunks.size());
  }
  EXPECT_EQ(test::count_open_fds(), before);
}

// Staged (file) and direct (mem, page-locked, straight into device memory) uploads, bit-exact.
// A device KV cache shaped like the store, every byte poisoned.
#if defined(CAKE_HAVE_CUDA)
struct DeviceCache {
  std::vector<cuda::DeviceBuffer> tensors;
  KvCacheView view;
  explicit DeviceCache(const StoreHeader& h) {
    view.memory = MemoryKind::device;
    view.dtype = h.key.dtype;
    view.layers = h.layers;
    view.kv_heads = h.kv_heads;
    view.head_dim = h.head_dim;
    view.capacity_tokens = h.key.token_count;
    for (int l = 0; l < 2 * h.layers; ++l) {
      tensors.emplace_back(view.segment_bytes(view.capacity_tokens));
      EXPECT_EQ(cudaMemset(tensors.back().get(), static_cast<int>(kPoison), tensors.back().bytes()), cudaSuccess);
      (l % 2 == 0 ? view.k : view.v).push_back(static_cast<std::byte*>(tensors.back().get()));
    }
  }
  // Chunk `c` is where its payload says in every segment.
  void expect_chunk(const test::WrittenStore& store, int c) const {
    const ChunkEntry& e = store.header.chunks[static_cast<size_t>(c)];
    const size_t seg = view.segment_bytes(e.tokens);
    std::vector<std::byte> host(seg);
    for (int sgm = 0; sgm < 2 * view.layers; ++sgm) {
      ASSERT_EQ(cudaMemcpy(host.data(), view.segment_ptr(sgm, e.first_token), seg, cudaMemcpyDeviceToHost), cudaSuccess);
      ASSERT_EQ(std::memcmp(host.data(), store.payloads[static_cast<size_t>(c)].data() + static_cast<size_t>(sgm) * seg, seg), 0)
          << "chunk " << c << " segment " << sgm;
    }
  }
};

using test::have_gpu;
#endif

// The GPU checks chunks only when they go through byte staging into a device cache: asked for a
// host cache, the pipeline refuses at construction instead of checking nothing.
TEST(LoadPipeline, GpuChecksumForAHostCacheIsRefused) {
  Seeded s;
  TempDir dir;
  const StoreHeader shape = random_shape(s.rng);
  const auto store = test::write_random_store(dir.file("h.kvstore"), shape, s.rng);
  FileSource source(store.path);
  HostCache cache(shape, shape.key.token_count);
  try {
    LoadPipeline pipeline(source, cache.view, shape.key.chunk_tokens, {.checksum = ChecksumPlace::gpu});
    ADD_FAILURE() << "a GPU checksum for a host cache was accepted";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("host KV cache"), std::string::npos) << e.what();
  }
  LoadPipeline automatic(source, cache.view, shape.key.chunk_tokens, {});
  EXPECT_FALSE(automatic.gpu_checksum()) << "auto checks a host cache on the CPU";
  EXPECT_EQ(parse_checksum_place("gpu"), ChecksumPlace::gpu);
  EXPECT_THROW(parse_checksum_place("GPU!"), UsageError);
}

void device_target(Kind kind, ChecksumPlace checksum = ChecksumPlace::automatic) {
  Seeded s;
  TempDir dir;
  const StoreHeader shape = random_shape(s.rng);
  const auto store = test::write_random_store(dir.file("d.kvstore"), shape, s.rng);
  std::unique_ptr<KvSource> owned;
  if (kind == Kind::file) owned = std::make_unique<FileSource>(store.path);
  else owned = std::make_unique<MemSource>(store.path, MemSourceOptions{.request_bytes = 4096 * (1 + s.rng() % 8)});
  KvSource& source = *owned;
  KvCacheView view;
  view.memory = MemoryKind::device;
  view.dtype = shape.key.dtype;
  view.layers = shape.layers;
  view.kv_heads = shape.kv_heads;
  view.head_dim = shape.head_dim;
  view.capacity_tokens = shape.key.token_count;
#if !defined(CAKE_HAVE_CUDA)
  (void)checksum;
  view.k.assign(static_cast<size_t>(shape.layers), nullptr);
  view.v.assign(static_cast<size_t>(shape.layers), nullptr);
  EXPECT_THROW(LoadPipeline(source, view, shape.key.chunk_tokens, {}), EnvironmentError);
#else
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    cudaGetLastError();
    GTEST_SKIP() << "no GPU: the device upload path needs one";
  }
  std::vector<cuda::DeviceBuffer> tensors;
  for (int l = 0; l < 2 * shape.layers; ++l) {
    tensors.emplace_back(view.segment_bytes(view.capacity_tokens));
    ASSERT_EQ(cudaMemset(tensors.back().get(), static_cast<int>(kPoison), tensors.back().bytes()), cudaSuccess);
    (l % 2 == 0 ? view.k : view.v).push_back(static_cast<std::byte*>(tensors.back().get()));
  }
  LoadPipeline pipeline(source, view, shape.key.chunk_tokens, {.staging_slots = 3, .checksum = checksum});
  EXPECT_TRUE(pipeline.pinned_staging());
  // auto: the file source's byte staging checks on the GPU; the memory source keeps its CPU workers.
  EXPECT_EQ(pipeline.gpu_checksum(), kind == Kind::file && checksum != ChecksumPlace::cpu);
  if (kind == Kind::mem) {
    EXPECT_TRUE(dynamic_cast<MemSource&>(source).page_locked()) << dynamic_cast<MemSource&>(source).page_lock_detail();
  }
  Claimer claim{test::shuffled_chunks(shape.chunks.size(), s.rng), 0, SIZE_MAX};
  Reports reports;
  pipeline.run(shape.key, std::ref(claim), std::ref(reports));
  ASSERT_EQ(reports.by_chunk.size(), shape.chunks.size());
  std::vector<std::byte> host(view.segment_bytes(view.capacity_tokens));
  for (const auto& [c, r] : reports.by_chunk) {
    ASSERT_TRUE(r.ok) << r.error;
    EXPECT_LE(r.h2d_start_ns, r.h2d_end_ns);
    const ChunkEntry& e = store.header.chunks[static_cast<size_t>(c)];
    const size_t seg = view.segment_bytes(e.tokens);
    for (int sgm = 0; sgm < 2 * view.layers; ++sgm) {
      ASSERT_EQ(cudaMemcpy(host.data(), view.segment_ptr(sgm, e.first_token), seg, cudaMemcpyDeviceToHost), cudaSuccess);
      ASSERT_EQ(std::memcmp(host.data(), store.payloads[static_cast<size_t>(c)].data() + static_cast<size_t>(sgm) * seg, seg), 0)
          << "chunk " << c << " segment " << sgm;
    }
  }
  EXPECT_EQ(pipeline.direct(), kind == Kind::mem);
  if (pipeline.gpu_checksum()) {
    EXPECT_EQ(pipeline.stats().checksum, "gpu");
    EXPECT_EQ(pipeline.stats().gpu_checksums, shape.chunks.size());
    EXPECT_GT(pipeline.stats().gpu_checksum_ns, 0);
  }
#endif
}

TEST(LoadPipeline, DeviceTarget) { device_target(Kind::file); }
TEST(LoadPipeline, DeviceTargetCheckedOnTheReaderThreads) { device_target(Kind::file, ChecksumPlace::cpu); }

// Byte staging into a device cache, checked on the GPU: a chunk corrupted on disk fails alone,
// found by the GPU checksum; chunks failed by injection fail alone; each is reported once, and
// every other chunk is exact in the cache.
TEST(LoadPipeline, DeviceTargetGpuChecksumFailsBadChunksAlone) {
#if !defined(CAKE_HAVE_CUDA)
  GTEST_SKIP() << "built without CUDA: the GPU checksum needs it";
#else
  if (!have_gpu()) GTEST_SKIP() << "no GPU: the GPU checksum needs one";
  Seeded s;
  TempDir dir;
  const StoreHeader shape = random_shape(s.rng);
  const auto store = test::write_random_store(dir.file("g.kvstore"), shape, s.rng);
  const StoreFaults faults = corrupt_one_pick_two(store, s.rng);
  const std::set<int>& injected = faults.injected;
  FaultInjectingSource source(
      std::make_unique<FileSource>(store.path, FileSourceOptions{.request_bytes = 4096 * (1 + s.rng() % 4),
                                                                 .reader_threads = 1 + static_cast<int>(s.rng() % 4)}),
      injected, "injected EIO");
  DeviceCache cache(shape);
  LoadPipelineOptions options{.staging_slots = 1 + static_cast<int>(s.rng() % 4), .checksum = ChecksumPlace::gpu};
  options.piece_bytes = 4096 * (1 + s.rng() % 12);
  options.staging_bytes = options.piece_bytes * (1 + s.rng() % 6);
  SCOPED_TRACE(cat("slots ", options.staging_slots, ", pieces of ", options.piece_bytes, " bytes, ",
                   options.staging_bytes, " bytes in flight"));
  LoadPipeline pipeline(source, cache.view, shape.key.chunk_tokens, options);
  ASSERT_TRUE(pipeline.gpu_checksum());
  Claimer claim{test::shuffled_chunks(shape.chunks.size(), s.rng), 0, SIZE_MAX};
  Reports reports;
  pipeline.run(shape.key, std::ref(claim), std::ref(reports));
  ASSERT_EQ(reports.by_chunk.size(), shape.chunks.size());
  EXPECT_EQ(reports.duplicates, 0);
  expect_faults_alone(reports, faults, store.path, [&](int c) { cache.expect_chunk(store, c); });
  EXPECT_EQ(pipeline.chunks_failed(), 3);
  EXPECT_EQ(pipeline.stats().checksum, "gpu");
  // Every chunk but the injected ones (failed as their pieces land) went whole to the GPU check.
  EXPECT_EQ(pipeline.stats().gpu_checksums, shape.chunks.size() - 2);
#endif
}
TEST(LoadPipeline, DeviceTargetDirectFromPageLockedMemory) { device_target(Kind::mem); }

}  // namespace
}  // namespace cake
