#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include <gtest/gtest.h>
#include <linux/magic.h>
#include <sys/statfs.h>

#include "common/clock.hpp"
#include "common/crc32c.hpp"
#include "common/error.hpp"
#include "common/fd.hpp"
#include "common/sysinfo.hpp"
#include "loaders/fault_source.hpp"
#include "loaders/file_source.hpp"
#include "loaders/mem_source.hpp"
#include "source_harness.hpp"
#include "store_fixture.hpp"

namespace cake {
namespace {

using test::Seeded;
using test::TempDir;

template <typename Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a cake::Error";
  return {};
}

void flip_byte(const std::string& path, uint64_t offset) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  ASSERT_TRUE(fd.valid());
  unsigned char b = 0;
  ASSERT_EQ(::pread(fd.get(), &b, 1, static_cast<off_t>(offset)), 1);
  b ^= 0x01;
  ASSERT_EQ(::pwrite(fd.get(), &b, 1, static_cast<off_t>(offset)), 1);
}

// A store whose chunks are several requests long, with a short last chunk.
StoreHeader random_shape(std::mt19937_64& rng) {
  const int layers = 1 + static_cast<int>(rng() % 4);
  const int kv_heads = 1 + static_cast<int>(rng() % 4);
  const int32_t chunk_tokens = 64 + static_cast<int32_t>(rng() % 200);
  const int64_t tokens = chunk_tokens * (3 + static_cast<int64_t>(rng() % 6)) + 1 + static_cast<int64_t>(rng() % 50);
  return test::make_header(layers, kv_heads, 64, (rng() & 1) ? DType::f32 : DType::bf16, tokens, chunk_tokens, rng());
}

void expect_bit_exact(const test::ReadOutcome& got, const test::WrittenStore& store) {
  EXPECT_EQ(got.duplicate_reports, 0);
  ASSERT_EQ(got.reads.size(), store.payloads.size());
  for (size_t i = 0; i < store.payloads.size(); ++i) {
    const ChunkRead& r = got.reads.at(static_cast<int>(i));
    ASSERT_TRUE(r.ok) << "chunk " << i << ": " << r.error;
    EXPECT_EQ(r.bytes, store.payloads[i].size());
    EXPECT_LE(r.submit_ns, r.first_byte_ns);
    EXPECT_LE(r.first_byte_ns, r.complete_ns);
    EXPECT_TRUE(got.payloads.at(static_cast<int>(i)) == store.payloads[i]) << "chunk " << i << " differs";
  }
}

struct RoundTripCase {
  const char* dir;
  bool o_direct;
  bool register_buffers;
  int reader_threads = 0;  // 0: the default for this host
};

class FileSourceRoundTrip : public ::testing::TestWithParam<RoundTripCase> {};

TEST_P(FileSourceRoundTrip, RandomOrderBitExact) {
  Seeded s;
  TempDir dir(GetParam().dir);
  const StoreHeader shape = random_shape(s.rng);
  const auto store = test::write_random_store(store_path(dir.path(), shape.key), shape, s.rng);
  FileSourceOptions options;
  options.queue_depth = 1 + static_cast<int>(s.rng() % 16);
  options.request_bytes = 4096 * (1 + s.rng() % 24);
  options.o_direct = GetParam().o_direct;
  options.reader_threads = GetParam().reader_threads;
  SCOPED_TRACE(cat("qd ", options.queue_depth, ", request ", options.request_bytes, " bytes"));
  FileSource source(store.path, options);
  const StoreHeader& h = source.open(shape.key);
  EXPECT_EQ(source.o_direct(), GetParam().o_direct) << source.describe();
  const auto got = test::read_chunks(source, h, test::shuffled_chunks(h.chunks.size(), s.rng),
                                     1 + static_cast<int>(s.rng() % 4), GetParam().register_buffers);
  expect_bit_exact(got, store);
  // Reads that are CPU copies go to reader threads (plain buffers); others use the registered ones.
  const bool threaded = got.description.find("reader threads") != std::string::npos;
  if (GetParam().register_buffers && !threaded) {
    EXPECT_NE(got.description.find("fixed buffers"), std::string::npos) << got.description;
  }
  if (GetParam().reader_threads > 1 && (!GetParam().o_direct || std::string(GetParam().dir) == "/dev/shm")) {
    EXPECT_TRUE(threaded) << got.description;
  }
}

INSTANTIATE_TEST_SUITE_P(FileSource, FileSourceRoundTrip,
                         ::testing::Values(RoundTripCase{"/tmp", true, true}, RoundTripCase{"/tmp", true, false},
                                           RoundTripCase{"/tmp", false, true}, RoundTripCase{"/dev/shm", true, true},
                                           RoundTripCase{"/dev/shm", true, true, 3}, RoundTripCase{"/tmp", false, false, 3}),
                         [](const auto& param_info) {
                           return cat(std::string(param_info.param.dir) == "/tmp" ? "tmp" : "shm",
                                      param_info.param.o_direct ? "_direct" : "_buffered",
                                      param_info.param.register_buffers ? "_fixed" : "_plain",
                                      param_info.param.reader_threads > 0 ? cat("_readers", param_info.param.reader_threads) : "");
                         });

TEST(FileSource, MissingStoreThrowsNamingThePath) {
  TempDir dir;
  const std::string path = dir.file("absent.kvstore");
  FileSource source(path);
  const std::string msg = error_of([&] { (void)source.open(StoreKey{}); });
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_NE(msg.find("No such file"), std::string::npos) << msg;
}

TEST(FileSource, DirectoryInPlaceOfTheStoreThrows) {
  TempDir dir;
  const std::string path = dir.file("adir.kvstore");
  ASSERT_EQ(::mkdir(path.c_str(), 0700), 0);
  FileSource source(path);
  const std::string msg = error_of([&] { (void)source.open(StoreKey{}); });
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
}

TEST(FileSource, TruncatedStoreThrowsAtOpen) {
  Seeded s;
  TempDir dir;
  const StoreHeader shape = random_shape(s.rng);
  const auto store = test::write_random_store(dir.file("t.kvstore"), shape, s.rng);
  ASSERT_EQ(::truncate(store.path.c_str(), static_cast<off_t>(store.header.chunks.back().offset)), 0);
  FileSource source(store.path);
  const std::string msg = error_of([&] { (void)source.open(shape.key); });
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
  EXPECT_NE(msg.find(store.path), std::string::npos) << msg;
}

// O_DIRECT on the caller's ring, and buffered reads on three reader threads.
void truncated_after_open(bool o_direct, int reader_threads) {
  Seeded s;
  TempDir dir;
  const StoreHeader shape = random_shape(s.rng);
  const auto store = test::write_random_store(dir.file("t.kvstore"), shape, s.rng);
  const size_t cut_chunk = 1 + s.rng() % (store.header.chunks.size() - 1);
  FileSource source(store.path, {.queue_depth = 4, .request_bytes = 8192, .o_direct = o_direct, .reader_threads = reader_threads});
  const StoreHeader& h = source.open(shape.key);
  // Cut a block boundary inside `cut_chunk`: it and everything after it are gone. A payload of one
  // block or less (the smallest random shapes' last chunk) is cut at its start, or it would survive.
  const ChunkEntry& cut = store.header.chunks[cut_chunk];
  const uint64_t kept = cut.bytes > 4096 ? 4096 : 0;
  ASSERT_EQ(::truncate(store.path.c_str(), static_cast<off_t>(cut.offset + kept)), 0);
  const auto got = test::read_chunks(source, h, test::shuffled_chunks(h.chunks.size(), s.rng), 2, true);
  ASSERT_EQ(got.reads.size(), h.chunks.size());
  EXPECT_EQ(got.duplicate_reports, 0);
  for (const auto& [chunk, r] : got.reads) {
    if (static_cast<size_t>(chunk) < cut_chunk) {
      EXPECT_TRUE(r.ok) << "chunk " << chunk << ": " << r.error;
      continue;
    }
    EXPECT_FALSE(r.ok) << "chunk " << chunk;
    EXPECT_EQ(r.bytes, 0u);
    EXPECT_NE(r.error.find("truncated"), std::string::npos) << r.error;
    EXPECT_NE(r.error.find(cat("chunk ", chunk, " of ", store.path)), std::string::npos) << r.error;
  }
}

TEST(FileSource, TruncatedAfterOpenFailsTheCutChunks) { truncated_after_open(true, 0); }
TEST(FileSource, TruncatedAfterOpenFailsTheCutChunksOnReaderThreads) { truncated_after_open(false, 3); }

void flipped_payload_byte(FileSourceOptions options) {
  Seeded s;
  TempDir dir;
  const StoreHeader shape = random_shape(s.rng);
  const auto store = test::write_random_store(dir.file("c.kvstore"), shape, s.rng);
  const int bad = static_cast<int>(s.rng() % store.header.chunks.size());
  const ChunkEntry& e = store.header.chunks[static_cast<size_t>(bad)];
  flip_byte(store.path, e.offset + s.rng() % e.bytes);
  FileSource source(store.path, options);
  const StoreHeader& h = source.open(shape.key);
  const auto got = test::read_chunks(source, h, test::shuffled_chunks(h.chunks.size(), s.rng), 3, true);
  ASSERT_EQ(got.reads.size(), h.chunks.size());
  for (const auto& [chunk, r] : got.reads) {
    if (chunk != bad) {
      EXPECT_TRUE(r.ok) << r.error;
      continue;
    }
    EXPECT_FALSE(r.ok);
    EXPECT_NE(r.error.find(cat("checksum mismatch in chunk ", bad, " of ", store.path)), std::string::npos) << r.error;
  }
}

TEST(FileSource, FlippedPayloadByteFailsThatChunkOnly) { flipped_payload_byte({}); }
TEST(FileSource, FlippedPayloadByteFailsThatChunkOnlyOnReaderThreads) {
  flipped_payload_byte({.queue_depth = 6, .request_bytes = 12288, .o_direct = false, .reader_threads = 3});
}

// The piece reads of the byte pipeline: random pieces of random chunks land bit-exact with the
// CRC-32C of exactly their payload bytes; pieces past a truncation fail naming chunk and file.
// `scatter`: each piece goes to 1-4 spans of random sizes in buffers of their own
// (PieceRead::scatter, as into a host cache), each span followed by guard bytes nothing may touch.
void pieces_round_trip(bool o_direct, int reader_threads, bool truncate, FileReads file_reads = FileReads::automatic,
                       bool scatter = false, int queue_depth = 16) {
  Seeded s;
  TempDir dir;
  const StoreHeader shape = random_shape(s.rng);
  const auto store = test::write_random_store(dir.file("p.kvstore"), shape, s.rng);
  FileSource source(store.path, {.queue_depth = queue_depth, .request_bytes = 4096 * (1 + s.rng() % 5),
                                 .o_direct = o_direct, .reader_threads = reader_threads, .reads = file_reads});
  const StoreHeader& h = source.open(shape.key);
  EXPECT_EQ(source.mapped(), file_reads == FileReads::mapped);  // /tmp is no memory filesystem here
  PieceSource* pieces = source.piece_source();
  ASSERT_NE(pieces, nullptr);
  EXPECT_EQ(pieces->readers(), reader_threads);
  EXPECT_EQ(pieces->scatters(), file_reads == FileReads::mapped || file_reads == FileReads::pread);
  const size_t cut_chunk = 1 + s.rng() % (h.chunks.size() - 1);
  if (truncate) {
    ASSERT_EQ(::truncate(store.path.c_str(), static_cast<off_t>(h.chunks[cut_chunk].offset + 4096)), 0);
  }
  const uint64_t piece_bytes = 4096 * (1 + s.rng() % 8);
  constexpr size_t kGuard = 64;
  std::vector<AlignedBuffer> buffers;
  std::vector<std::vector<std::byte>> span_buffers;  // scatter: each span's bytes, then kGuard guard bytes
  std::vector<PieceRead> reads;
  for (int i = 0; i < 12; ++i) {
    const int c = static_cast<int>(s.rng() % h.chunks.size());
    const uint64_t payload = h.chunks[static_cast<size_t>(c)].bytes;
    const uint64_t pieces_in_chunk = (payload + piece_bytes - 1) / piece_bytes;
    const uint64_t offset = piece_bytes * (s.rng() % pieces_in_chunk);
    const uint64_t bytes = std::min(piece_bytes, payload - offset);
    buffers.emplace_back(store_align_up(piece_bytes));
    std::memset(buffers.back().data(), 0xA5, buffers.back().size());
    reads.push_back({c, offset, bytes, buffers.back().data(), i});
    if (scatter) {
      reads.back().dst = nullptr;
      const int spans = 1 + static_cast<int>(s.rng() % 4);
      for (uint64_t at = 0, k = 0; at < bytes; ++k) {
        const uint64_t n = k + 1 == static_cast<uint64_t>(spans) ? bytes - at : 1 + s.rng() % (bytes - at);
        span_buffers.emplace_back(n + kGuard, std::byte{0xA5});
        reads.back().scatter.emplace_back(span_buffers.back().data(), n);
        at += n;
      }
    }
    pieces->read_piece(reads.back());
  }
  std::map<int, PieceLanded> landed;
  while (pieces->pieces_in_flight() > 0)
    for (PieceLanded& l : pieces->take_pieces(1'000'000)) EXPECT_TRUE(landed.emplace(l.read.tag, l).second);
  ASSERT_EQ(landed.size(), reads.size());
  for (const PieceRead& r : reads) {
    const PieceLanded& l = landed.at(r.tag);
    const std::byte* want = store.payloads[static_cast<size_t>(r.chunk)].data() + r.offset;
    if (truncate && static_cast<size_t>(r.chunk) >= cut_chunk && (static_cast<size_t>(r.chunk) > cut_chunk || r.offset + r.bytes > 4096)) {
      EXPECT_FALSE(l.ok) << "chunk " << r.chunk << " offset " << r.offset;
      EXPECT_NE(l.error.find(cat("chunk ", r.chunk, " of ", store.path)), std::string::npos) << l.error;
      continue;
    }
    ASSERT_TRUE(l.ok) << l.error;
    if (scatter) {
      const std::byte* expected = want;
      for (const std::span<std::byte>& span : r.scatter) {
        EXPECT_EQ(std::memcmp(span.data(), expected, span.size()), 0) << "chunk " << r.chunk << " offset " << r.offset;
        for (size_t g = 0; g < kGuard; ++g) ASSERT_EQ(span.data()[span.size() + g], std::byte{0xA5}) << "guard byte " << g;
        expected += span.size();
      }
    } else {
      EXPECT_EQ(std::memcmp(r.dst, want, r.bytes), 0) << "chunk " << r.chunk << " offset " << r.offset;
    }
    EXPECT_EQ(l.crc, crc32c(want, r.bytes));
    EXPECT_LE(l.first_byte_ns, l.landed_ns);
  }
  const PieceReaderStats st = source.reader_stats();
  EXPECT_EQ(st.threads, reader_threads);
  EXPECT_LE(st.pieces, reads.size());
  // Which path each landed piece took: `map` maps into staging and spans alike, `pread` bounces a
  // host cache's spans, and neither the ring nor pread into staging counts as either.
  EXPECT_EQ(st.mapped_pieces, file_reads == FileReads::mapped ? st.pieces : 0u);
  EXPECT_EQ(st.bounced_pieces, file_reads == FileReads::pread && scatter ? st.pieces : 0u);
}

TEST(FileSource, PiecesLandBitExactWithTheirChecksum) { pieces_round_trip(true, 1, false); }
TEST(FileSource, PiecesLandBitExactOnSeveralReaderThreads) { pieces_round_trip(false, 3, false); }
TEST(FileSource, PiecesPastATruncationFailNamingChunkAndFile) { pieces_round_trip(true, 2, true); }
// The ring path keeps the queue depth's reads in flight across a reader's pieces (16 by default:
// several pieces at once on one thread, completions in any order); with a queue depth of one per
// reader it reads request by request. Both bit-exact, and a cut file fails only the pieces past it.
TEST(FileSource, PiecesLandBitExactOneReadInFlightPerReader) {
  pieces_round_trip(true, 2, false, FileReads::uring, false, 2);
}
TEST(FileSource, PiecesPastATruncationFailOneReadInFlightPerReader) {
  pieces_round_trip(false, 1, true, FileReads::uring, false, 1);
}
TEST(FileSource, PiecesLandBitExactManyReadsInFlightOnOneReader) {
  pieces_round_trip(true, 1, false, FileReads::uring, false, 32);
}
// Copied out of a mapping of the file: the same bytes and checksums, and a file cut after open()
// fails the pieces past the cut with an error, not a SIGBUS.
TEST(FileSource, MappedPiecesLandBitExactWithTheirChecksum) { pieces_round_trip(true, 3, false, FileReads::mapped); }
TEST(FileSource, MappedPiecesPastATruncationFailNamingChunkAndFile) {
  pieces_round_trip(false, 2, true, FileReads::mapped);
}
// Straight into spans of a host cache: the same bytes and checksums, nothing written past a span.
TEST(FileSource, MappedPiecesScatterBitExactIntoSpans) { pieces_round_trip(false, 3, false, FileReads::mapped, true); }
TEST(FileSource, MappedPiecesScatterPastATruncationFail) { pieces_round_trip(true, 2, true, FileReads::mapped, true); }
// pread() on the reader threads: into staging, and into spans through each thread's own buffer;
// with and without O_DIRECT, a cut file fails the pieces past the cut.
TEST(FileSource, PreadPiecesLandBitExactWithTheirChecksum) { pieces_round_trip(true, 2, false, FileReads::pread); }
TEST(FileSource, PreadPiecesPastATruncationFailNamingChunkAndFile) { pieces_round_trip(false, 3, true, FileReads::pread); }
TEST(FileSource, PreadPiecesScatterBitExactIntoSpans) { pieces_round_trip(true, 3, false, FileReads::pread, true); }
TEST(FileSource, PreadPiecesScatterBitExactIntoSpansBuffered) { pieces_round_trip(false, 1, false, FileReads::pread, true); }
TEST(FileSource, PreadPiecesScatterPastATruncationFail) { pieces_round_trip(true, 2, true, FileReads::pread, true); }

// Spans are for copies out of a mapping or pread() reads only: an io_uring read asked for them, or
// spans that do not add up to the piece, fail that piece naming chunk and file; nothing is written.
TEST(FileSource, ScatterOnlyFromAMappingOrPreadAndOnlyWhole) {
  Seeded s;
  TempDir dir;
  const StoreHeader shape = random_shape(s.rng);
  const auto store = test::write_random_store(dir.file("s.kvstore"), shape, s.rng);
  for (FileReads reads : {FileReads::uring, FileReads::mapped, FileReads::pread}) {
    FileSource source(store.path, {.reader_threads = 1, .reads = reads});
    const StoreHeader& h = source.open(shape.key);
    PieceSource* pieces = source.piece_source();
    ASSERT_NE(pieces, nullptr);
    const uint64_t bytes = std::min<uint64_t>(4096, h.chunks[0].bytes);
    std::vector<std::byte> span(bytes + 1, std::byte{0xA5});
    PieceRead read{0, 0, bytes, nullptr, 7};
    // Through an io_uring source: the right size, refused all the same. Mapped or pread: one byte short.
    read.scatter.emplace_back(span.data(), reads == FileReads::uring ? bytes : bytes - 1);
    pieces->read_piece(read);
    std::vector<PieceLanded> landed;
    while (landed.empty()) landed = pieces->take_pieces(1'000'000);
    ASSERT_EQ(landed.size(), 1u);
    EXPECT_FALSE(landed[0].ok);
    EXPECT_NE(landed[0].error.find(cat("chunk 0 of ", store.path)), std::string::npos) << landed[0].error;
    EXPECT_NE(landed[0].error.find("spans"), std::string::npos) << landed[0].error;
    for (std::byte b : span) ASSERT_EQ(b, std::byte{0xA5});
  }
}

// `auto` maps a store on a memory filesystem and reads one elsewhere; `uring` never maps.
TEST(FileSource, AutomaticReadsMapAStoreOnAMemoryFilesystemOnly) {
  struct statfs fs{};
  if (::statfs("/dev/shm", &fs) != 0 || fs.f_type != TMPFS_MAGIC) GTEST_SKIP() << "no tmpfs at /dev/shm";
  Seeded s;
  const StoreHeader shape = random_shape(s.rng);
  for (const char* parent : {"/dev/shm", "/tmp"}) {
    TempDir dir(parent);
    const auto store = test::write_random_store(dir.file("a.kvstore"), shape, s.rng);
    FileSource automatic(store.path, {.reader_threads = 2});
    automatic.open(shape.key);
    EXPECT_EQ(automatic.mapped(), std::string(parent) == "/dev/shm") << parent;
    FileSource uring(store.path, {.reader_threads = 2, .reads = FileReads::uring});
    uring.open(shape.key);
    EXPECT_FALSE(uring.mapped()) << parent;
    ASSERT_NE(automatic.piece_source(), nullptr);
    if (automatic.mapped()) {
      EXPECT_NE(automatic.describe().find("read-only mapping"), std::string::npos) << automatic.describe();
    }
  }
}

// `auto` on a memory filesystem: pieces into staging are copied out of the mapping, pieces into a
// host cache's spans are read with pread() through the thread's buffer; both bit-exact, and the
// source's description says which ran.
TEST(FileSource, AutomaticOnAMemoryFilesystemMapsStagingAndPreadsAHostCache) {
  struct statfs fs{};
  if (::statfs("/dev/shm", &fs) != 0 || fs.f_type != TMPFS_MAGIC) GTEST_SKIP() << "no tmpfs at /dev/shm";
  Seeded s;
  TempDir dir("/dev/shm");
  const StoreHeader shape = random_shape(s.rng);
  const auto store = test::write_random_store(dir.file("a.kvstore"), shape, s.rng);
  for (const bool scatter : {false, true}) {
    FileSource source(store.path, {.request_bytes = 8192, .reader_threads = 2});
    const StoreHeader& h = source.open(shape.key);
    ASSERT_TRUE(source.mapped());
    PieceSource* pieces = source.piece_source();
    ASSERT_TRUE(pieces->scatters());
    std::vector<AlignedBuffer> buffers;
    std::vector<PieceRead> reads;
    for (int i = 0; i < 6; ++i) {
      const int c = static_cast<int>(s.rng() % h.chunks.size());
      const uint64_t bytes = std::min<uint64_t>(4096 * (1 + s.rng() % 6), h.chunks[static_cast<size_t>(c)].bytes);
      buffers.emplace_back(store_align_up(bytes));
      std::memset(buffers.back().data(), 0xA5, buffers.back().size());
      reads.push_back({c, 0, bytes, buffers.back().data(), i});
      if (scatter) {
        reads.back().dst = nullptr;
        reads.back().scatter.emplace_back(buffers.back().data(), bytes);
      }
      pieces->read_piece(reads.back());
    }
    size_t ok = 0;
    while (pieces->pieces_in_flight() > 0)
      for (PieceLanded& l : pieces->take_pieces(1'000'000)) {
        ASSERT_TRUE(l.ok) << l.error;
        const PieceRead& r = reads[static_cast<size_t>(l.read.tag)];
        const std::byte* want = store.payloads[static_cast<size_t>(r.chunk)].data();
        EXPECT_EQ(std::memcmp(buffers[static_cast<size_t>(l.read.tag)].data(), want, r.bytes), 0) << "piece " << l.read.tag;
        EXPECT_EQ(l.crc, crc32c(want, r.bytes));
        ++ok;
      }
    ASSERT_EQ(ok, reads.size());
    const PieceReaderStats st = source.reader_stats();
    EXPECT_EQ(st.mapped_pieces, scatter ? 0u : reads.size());
    EXPECT_EQ(st.bounced_pieces, scatter ? reads.size() : 0u);
    const std::string d = source.describe();
    EXPECT_NE(d.find("into staging copied out of a read-only mapping, into a host cache read with pread"),
              std::string::npos) << d;
  }
}

// Readers by default: the cores less two, 1 to 10; at least two (where there are two cores) for a
// store on a memory filesystem, whose reads are all copying.
TEST(FileSource, DefaultReadersCountTheCoresAndTheFilesystem) {
  const int cores = available_cores();
  if (!on_memory_filesystem("/tmp/no-such.kvstore")) {
    EXPECT_EQ(FileSource::default_reader_threads("/tmp/no-such.kvstore"), std::clamp(cores - 2, 1, 10));
  }
  struct statfs fs{};
  if (::statfs("/dev/shm", &fs) != 0 || fs.f_type != TMPFS_MAGIC) GTEST_SKIP() << "no tmpfs at /dev/shm";
  EXPECT_TRUE(on_memory_filesystem("/dev/shm/no-such.kvstore"));
  EXPECT_EQ(FileSource::default_reader_threads("/dev/shm/no-such.kvstore"), std::clamp(cores - 2, std::min(cores, 2), 10));
}

TEST(FileSource, FileReadsParseAndPrint) {
  for (FileReads r : {FileReads::automatic, FileReads::uring, FileReads::mapped, FileReads::pread})
    EXPECT_EQ(parse_file_reads(to_string(r)), r);
  EXPECT_THROW(parse_file_reads("mmap"), UsageError);
}

TEST(FileSource, FlippedHeaderByteThrowsAtOpen) {
  Seeded s;
  TempDir dir;
  const StoreHeader shape = random_shape(s.rng);
  const auto store = test::write_random_store(dir.file("h.kvstore"), shape, s.rng);
  flip_byte(store.path, s.rng() % store.header.chunks[0].offset);
  FileSource source(store.path);
  const std::string msg = error_of([&] { (void)source.open(shape.key); });
  EXPECT_NE(msg.find(store.path), std::string::npos) << msg;
}

TEST(FileSource, KeyMismatchThrowsNamingTheField) {
  Seeded s;
  TempDir dir;
  const StoreHeader shape = random_shape(s.rng);
  const auto store = test::write_random_store(dir.file("k.kvstore"), shape, s.rng);
  FileSource source(store.path);
  StoreKey k = shape.key;
  k.model_fingerprint = "another-model";
  EXPECT_NE(error_of([&] { (void)source.open(k); }).find("model fingerprint"), std::string::npos);
  k = shape.key;
  k.token_hash ^= 0x40;
  EXPECT_NE(error_of([&] { (void)source.open(k); }).find("token hash"), std::string::npos);
  k = shape.key;
  k.chunk_tokens += 1;
  EXPECT_NE(error_of([&] { (void)source.open(k); }).find("chunk size"), std::string::npos);
  EXPECT_NO_THROW((void)source.open(shape.key));
}

TEST(FileSource, InjectedEioFailsTheChosenChunks) {
  Seeded s;
  TempDir dir;
  const StoreHeader shape = random_shape(s.rng);
  const auto store = test::write_random_store(dir.file("f.kvstore"), shape, s.rng);
  const std::set<int> failing = {0, static_cast<int>(store.header.chunks.size()) - 1};
  FaultInjectingSource source(std::make_unique<FileSource>(store.path), failing);
  const StoreHeader& h = source.open(shape.key);
  const auto got = test::read_chunks(source, h, test::shuffled_chunks(h.chunks.size(), s.rng), 2, true);
  ASSERT_EQ(got.reads.size(), h.chunks.size());
  for (const auto& [chunk, r] : got.reads) {
    EXPECT_EQ(r.ok, !failing.contains(chunk)) << "chunk " << chunk;
    if (!r.ok) {
      EXPECT_NE(r.error.find(cat("injected EIO in chunk ", chunk, " of file:", store.path)), std::string::npos) << r.error;
      EXPECT_EQ(r.bytes, 0u);
    }
  }
  source.fail_open("injected EACCES");
  const std::string msg = error_of([&] { (void)source.open(shape.key); });
  EXPECT_NE(msg.find("injected EACCES opening file:" + store.path), std::string::npos) << msg;
}

TEST(FileSource, ThrottleHoldsTheReadRate) {
  Seeded s;
  TempDir dir;
  const StoreHeader shape = test::make_header(4, 4, 64, DType::f32, 8192, 512, s.rng());  // 32 MiB
  const auto store = test::write_random_store(dir.file("r.kvstore"), shape, s.rng);
  uint64_t total = 0;
  for (const auto& c : store.header.chunks) total += c.bytes;
  const double rate = 12e6;  // ~2.8 s: long enough that one late wake-up at the end is < 1%
  auto throttle = make_throttle(rate, "");
  FileSource source(store.path, {.queue_depth = 8, .request_bytes = 256 * 1024, .o_direct = true}, throttle.get());
  test::expect_timing_within(3, [&]() -> std::string {
    const int64_t start_ns = now_ns();
    const StoreHeader& h = source.open(shape.key);
    const auto got = test::read_chunks(source, h, test::shuffled_chunks(h.chunks.size(), s.rng), 3, true);
    int64_t last_ns = 0;
    for (const auto& [chunk, r] : got.reads) {
      if (!r.ok) return r.error;
      last_ns = std::max(last_ns, r.complete_ns);
    }
    return test::ratio_problem("the achieved read rate", static_cast<double>(total) / ns_to_s(last_ns - start_ns) / rate, 0.03);
  });
}

TEST(FileSource, NoFileDescriptorLeaks) {
  Seeded s;
  TempDir dir;
  const StoreHeader shape = random_shape(s.rng);
  const auto store = test::write_random_store(dir.file("l.kvstore"), shape, s.rng);
  const auto round = [&] {
    {
      FileSource source(store.path);
      const StoreHeader& h = source.open(shape.key);
      (void)source.open(shape.key);  // reopening closes the first descriptor
      (void)test::read_chunks(source, h, test::shuffled_chunks(h.chunks.size(), s.rng), 2, true);
    }
    {
      FileSource missing(dir.file("nope.kvstore"));
      EXPECT_THROW((void)missing.open(shape.key), Error);
      FileSource mismatched(store.path);
      StoreKey k = shape.key;
      k.codec = "zstd";
      EXPECT_THROW((void)mismatched.open(k), Error);
      MemSource mem(store.path);
      (void)mem.open(shape.key);
    }
  };
  // A first round before counting: the mem source page-locks its store, which on a machine with a
  // GPU starts the CUDA driver, whose device descriptors stay open for the process.
  round();
  const int before = test::count_open_fds();
  for (int i = 0; i < 3; ++i) round();
  EXPECT_EQ(test::count_open_fds(), before);
}

TEST(MemSource, RandomOrderBitExact) {
  Seeded s;
  TempDir dir("/dev/shm");
  const StoreHeader shape = random_shape(s.rng);
  const auto store = test::write_random_store(dir.file("m.kvstore"), shape, s.rng);
  MemSource source(store.path, {.request_bytes = 4096 * (1 + s.rng() % 40)});
  const StoreHeader& h = source.open(shape.key);
  EXPECT_NE(source.describe().find("mem:" + store.path), std::string::npos);
  const auto got = test::read_chunks(source, h, test::shuffled_chunks(h.chunks.size(), s.rng), 3, false);
  expect_bit_exact(got, store);
}

TEST(MemSource, MissingOrBrokenStoreThrowsAtOpenNotBefore) {
  Seeded s;
  TempDir dir;
  MemSource missing(dir.file("absent.kvstore"));
  EXPECT_NE(error_of([&] { (void)missing.open(StoreKey{}); }).find(dir.file("absent.kvstore")), std::string::npos);

  const StoreHeader shape = random_shape(s.rng);
  const auto store = test::write_random_store(dir.file("b.kvstore"), shape, s.rng);
  ASSERT_EQ(::truncate(store.path.c_str(), 8192), 0);
  MemSource truncated(store.path);
  EXPECT_NE(error_of([&] { (void)truncated.open(shape.key); }).find("truncated"), std::string::npos);
}

TEST(MemSource, FlippedPayloadByteAndKeyMismatch) {
  Seeded s;
  TempDir dir;
  const StoreHeader shape = random_shape(s.rng);
  const auto store = test::write_random_store(dir.file("c.kvstore"), shape, s.rng);
  const int bad = static_cast<int>(s.rng() % store.header.chunks.size());
  flip_byte(store.path, store.header.chunks[static_cast<size_t>(bad)].offset + 7);
  MemSource source(store.path);
  StoreKey other = shape.key;
  other.token_hash += 1;
  EXPECT_NE(error_of([&] { (void)source.open(other); }).find("token hash"), std::string::npos);
  const StoreHeader& h = source.open(shape.key);
  const auto got = test::read_chunks(source, h, test::shuffled_chunks(h.chunks.size(), s.rng), 2, false);
  for (const auto& [chunk, r] : got.reads) {
    EXPECT_EQ(r.ok, chunk != bad) << r.error;
    if (chunk == bad) {
      EXPECT_NE(r.error.find(cat("checksum mismatch in chunk ", bad)), std::string::npos) << r.error;
    }
  }
}

TEST(MemSource, ThrottleHoldsTheCopyRate) {
  Seeded s;
  TempDir dir("/dev/shm");
  const StoreHeader shape = test::make_header(2, 4, 64, DType::f32, 8192, 512, s.rng());  // 16 MiB
  const auto store = test::write_random_store(dir.file("r.kvstore"), shape, s.rng);
  uint64_t total = 0;
  for (const auto& c : store.header.chunks) total += c.bytes;
  const double rate = 8e6;  // ~2 s
  auto throttle = make_throttle(rate, "");
  MemSource source(store.path, {.request_bytes = 128 * 1024}, throttle.get());
  test::expect_timing_within(3, [&]() -> std::string {
    const int64_t start_ns = now_ns();
    const StoreHeader& h = source.open(shape.key);
    const auto got = test::read_chunks(source, h, test::shuffled_chunks(h.chunks.size(), s.rng), 2, false);
    int64_t last_ns = 0;
    for (const auto& [chunk, r] : got.reads) {
      if (!r.ok) return r.error;
      last_ns = std::max(last_ns, r.complete_ns);
    }
    return test::ratio_problem("the achieved copy rate", static_cast<double>(total) / ns_to_s(last_ns - start_ns) / rate, 0.03);
  });
}

}  // namespace
}  // namespace cake
