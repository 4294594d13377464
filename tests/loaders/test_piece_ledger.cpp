// The byte pipeline's bookkeeping alone: chunks cut into pieces, staging pieces lent and
// recycled, and a chunk finished exactly once, failed alone when one of its pieces is bad.
#include <map>
#include <set>
#include <vector>

#include <gtest/gtest.h>

#include "common/crc32c.hpp"
#include "common/error.hpp"
#include "loaders/piece_ledger.hpp"
#include "store_fixture.hpp"

namespace cake {
namespace {

using test::Seeded;

std::vector<std::byte> random_bytes(std::mt19937_64& rng, size_t n) {
  std::vector<std::byte> v(n);
  for (auto& b : v) b = static_cast<std::byte>(rng());
  return v;
}

uint64_t random_piece_bytes(std::mt19937_64& rng) { return 4096 * (1 + rng() % 6); }

TEST(PieceLedger, PiecesTileEachChunkInClaimOrderAndNeverExceedAPiece) {
  Seeded s;
  const uint64_t piece = random_piece_bytes(s.rng);
  PieceLedger ledger(1 + static_cast<int>(s.rng() % 5), piece);
  std::map<int, uint64_t> payload;
  for (int c = 0; c < 4; ++c) {
    payload[c] = 1 + s.rng() % (5 * piece);  // not a multiple of anything in general
    ledger.add_chunk(c, payload[c], 0, "test");
  }
  std::map<int, uint64_t> next_offset;
  int last_chunk = 0;
  while (!ledger.all_cut()) {
    std::optional<PieceJob> job = ledger.next_job();
    ASSERT_TRUE(job.has_value()) << "a chunk has bytes left but no job came";
    ASSERT_GE(job->chunk, last_chunk) << "pieces follow the claim order";
    last_chunk = job->chunk;
    EXPECT_EQ(job->offset, next_offset[job->chunk]) << "chunk " << job->chunk;
    EXPECT_EQ(job->offset % piece, 0u);
    EXPECT_GT(job->bytes, 0u);
    EXPECT_LE(job->bytes, piece);
    next_offset[job->chunk] += job->bytes;
    // Return it at once, so the pool never runs dry here.
    ASSERT_TRUE(ledger.landed(*job, true, 0, {}));
    ledger.copied(*job);
  }
  for (const auto& [c, bytes] : payload) EXPECT_EQ(next_offset[c], bytes) << "chunk " << c;
}

TEST(PieceLedger, AnEmptyPoolStopsJobsUntilACopyFinishes) {
  Seeded s;
  const int pool = 1 + static_cast<int>(s.rng() % 6);
  const uint64_t piece = random_piece_bytes(s.rng);
  PieceLedger ledger(pool, piece);
  ledger.add_chunk(7, piece * static_cast<uint64_t>(pool + 3), 0, "test");
  std::vector<PieceJob> out;
  std::set<int> pieces;
  for (int i = 0; i < pool; ++i) {
    std::optional<PieceJob> job = ledger.next_job();
    ASSERT_TRUE(job.has_value());
    EXPECT_TRUE(pieces.insert(job->piece).second) << "staging piece " << job->piece << " lent twice";
    out.push_back(*job);
  }
  EXPECT_EQ(ledger.free_pieces(), 0);
  EXPECT_FALSE(ledger.next_job().has_value()) << "a job without a free staging piece";
  // Landed is not enough: the piece is still being copied out of.
  ASSERT_TRUE(ledger.landed(out[0], true, 0, {}));
  EXPECT_FALSE(ledger.next_job().has_value());
  EXPECT_EQ(ledger.pieces_copying(), 1);
  ledger.copied(out[0]);
  EXPECT_EQ(ledger.free_pieces(), 1);
  std::optional<PieceJob> again = ledger.next_job();
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->piece, out[0].piece) << "the freed staging piece is the one reused";
  EXPECT_EQ(again->offset, piece * static_cast<uint64_t>(pool));
  // Returning a piece that is not out is a bug, said loudly.
  EXPECT_THROW(ledger.copied(out[0]), InternalError);
}

// Runs two or more chunks of random payloads through the ledger with their real CRCs, pieces
// landing in a random order; `corrupt` gets one piece with a wrong CRC, `failed_read` one failed read.
struct Scenario {
  int chunks = 3;
  int corrupt = -1;
  int failed_read = -1;
};

std::map<int, FinishedChunk> run_scenario(std::mt19937_64& rng, const Scenario& sc, int* finished_twice) {
  const uint64_t piece = random_piece_bytes(rng);
  PieceLedger ledger(1 + static_cast<int>(rng() % 8), piece);
  std::map<int, std::vector<std::byte>> data;
  for (int c = 0; c < sc.chunks; ++c) {
    data[c] = random_bytes(rng, 1 + rng() % (4 * piece));
    ledger.add_chunk(c, data[c].size(), crc32c(data[c].data(), data[c].size()), "store.kvstore");
  }
  std::map<int, FinishedChunk> finished;
  std::vector<PieceJob> reading;
  std::vector<PieceJob> copying;
  bool corrupted = false;
  bool read_failed = false;
  while (ledger.active_chunks() > 0) {
    while (std::optional<PieceJob> job = ledger.next_job()) reading.push_back(*job);
    // Something out must move: a random read lands or a random copy finishes.
    const bool land = !reading.empty() && (copying.empty() || rng() % 2);
    if (land) {
      const size_t i = rng() % reading.size();
      const PieceJob job = reading[i];
      reading.erase(reading.begin() + static_cast<std::ptrdiff_t>(i));
      uint32_t crc = crc32c(data[job.chunk].data() + job.offset, job.bytes);
      bool ok = true;
      if (job.chunk == sc.corrupt && !corrupted) {
        crc ^= 0x40u;
        corrupted = true;
      }
      if (job.chunk == sc.failed_read && !read_failed) {
        ok = false;
        read_failed = true;
      }
      if (ledger.landed(job, ok, crc, ok ? "" : "injected EIO")) copying.push_back(job);
    } else if (!copying.empty()) {
      const size_t i = rng() % copying.size();
      const PieceJob job = copying[i];
      copying.erase(copying.begin() + static_cast<std::ptrdiff_t>(i));
      ledger.copied(job);
    } else {
      ADD_FAILURE() << ledger.active_chunks() << " chunks active with nothing out";
      break;
    }
    for (FinishedChunk& f : ledger.take_finished()) {
      // Nothing of a finished chunk may still be out.
      for (const PieceJob& j : reading) EXPECT_NE(j.chunk, f.chunk) << "finished with a read out";
      for (const PieceJob& j : copying) EXPECT_NE(j.chunk, f.chunk) << "finished with a copy queued";
      if (!finished.emplace(f.chunk, f).second) ++*finished_twice;
    }
  }
  EXPECT_EQ(ledger.free_pieces(), ledger.pool_pieces()) << "every staging piece back in the pool";
  return finished;
}

TEST(PieceLedger, IntactChunksFinishOnceAfterTheirLastCopy) {
  Seeded s;
  int twice = 0;
  const auto finished = run_scenario(s.rng, {.chunks = 2 + static_cast<int>(s.rng() % 4)}, &twice);
  EXPECT_EQ(twice, 0);
  for (const auto& [c, f] : finished) EXPECT_TRUE(f.ok) << "chunk " << c << ": " << f.error;
}

TEST(PieceLedger, ACorruptedPieceFailsOnlyItsChunk) {
  Seeded s;
  Scenario sc{.chunks = 2 + static_cast<int>(s.rng() % 4)};
  sc.corrupt = static_cast<int>(s.rng() % static_cast<uint64_t>(sc.chunks));
  int twice = 0;
  const auto finished = run_scenario(s.rng, sc, &twice);
  EXPECT_EQ(twice, 0);
  ASSERT_EQ(finished.size(), static_cast<size_t>(sc.chunks));
  for (const auto& [c, f] : finished) {
    EXPECT_EQ(f.ok, c != sc.corrupt) << "chunk " << c << ": " << f.error;
    if (c == sc.corrupt) {
      EXPECT_NE(f.error.find(cat("checksum mismatch in chunk ", c, " of store.kvstore")), std::string::npos) << f.error;
    }
  }
}

TEST(PieceLedger, AFailedReadFailsOnlyItsChunkAndStopsCuttingIt) {
  Seeded s;
  Scenario sc{.chunks = 2 + static_cast<int>(s.rng() % 4)};
  sc.failed_read = static_cast<int>(s.rng() % static_cast<uint64_t>(sc.chunks));
  int twice = 0;
  const auto finished = run_scenario(s.rng, sc, &twice);
  EXPECT_EQ(twice, 0);
  ASSERT_EQ(finished.size(), static_cast<size_t>(sc.chunks));
  for (const auto& [c, f] : finished) {
    EXPECT_EQ(f.ok, c != sc.failed_read) << "chunk " << c << ": " << f.error;
    if (c == sc.failed_read) {
      EXPECT_EQ(f.error, "injected EIO");
    }
  }
}

// GPU verification: the pieces carry no checksums, so a chunk finishes ok once every byte is
// copied (its caller then checks it on the GPU); an empty payload is still checked here.
TEST(PieceLedger, WithoutChecksumsAChunkFinishesOnItsCopiesAlone) {
  const uint64_t piece = 4096;
  PieceLedger ledger(2, piece);
  ledger.add_chunk(0, piece + 100, 0x12345678u, "s", false);
  const PieceJob a = *ledger.next_job();
  const PieceJob b = *ledger.next_job();
  EXPECT_TRUE(ledger.landed(a, true, 0, {}));
  EXPECT_TRUE(ledger.landed(b, true, 0, {}));
  ledger.copied(b);
  EXPECT_TRUE(ledger.take_finished().empty()) << "a copy is still out";
  ledger.copied(a);
  auto f = ledger.take_finished();
  ASSERT_EQ(f.size(), 1u);
  EXPECT_TRUE(f[0].ok) << f[0].error;
  ledger.add_chunk(1, 0, 0x1u, "s", false);  // crc32c of nothing is 0, not 0x1
  f = ledger.take_finished();
  ASSERT_EQ(f.size(), 1u);
  EXPECT_FALSE(f[0].ok);
  EXPECT_NE(f[0].error.find("checksum mismatch in chunk 1"), std::string::npos) << f[0].error;
}

TEST(PieceLedger, AFailedChunkIsNotCutFurther) {
  const uint64_t piece = 4096;
  PieceLedger ledger(2, piece);
  ledger.add_chunk(0, 10 * piece, 0, "s");
  ledger.add_chunk(1, piece, 0, "s");
  const PieceJob a = *ledger.next_job();
  const PieceJob b = *ledger.next_job();
  EXPECT_EQ(b.chunk, 0);
  EXPECT_FALSE(ledger.landed(a, false, 0, "bad read")) << "a failed read is not copied";
  // The freed piece goes to chunk 1: chunk 0's remaining 8 pieces are never read.
  const PieceJob c = *ledger.next_job();
  EXPECT_EQ(c.chunk, 1);
  EXPECT_TRUE(ledger.take_finished().empty()) << "chunk 0 still has a read out";
  EXPECT_FALSE(ledger.landed(b, true, 0, {})) << "a piece of a failed chunk is not copied";
  const auto f = ledger.take_finished();
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].chunk, 0);
  EXPECT_FALSE(f[0].ok);
  EXPECT_EQ(f[0].error, "bad read");
  EXPECT_FALSE(ledger.next_job().has_value());
  EXPECT_EQ(ledger.active_chunks(), 1);
}

TEST(PieceLedger, RefusesBadSizesAndTwiceActiveChunks) {
  EXPECT_THROW(PieceLedger(0, 4096), InternalError);
  EXPECT_THROW(PieceLedger(2, 1000), InternalError);
  PieceLedger ledger(2, 4096);
  ledger.add_chunk(3, 100, 0, "s");
  EXPECT_THROW(ledger.add_chunk(3, 100, 0, "s"), InternalError);
}

}  // namespace
}  // namespace cake
