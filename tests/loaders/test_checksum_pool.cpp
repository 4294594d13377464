#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <vector>

#include "common/crc32c.hpp"
#include "common/error.hpp"
#include "loaders/checksum_pool.hpp"
#include "store_fixture.hpp"

namespace cake {
namespace {

using test::Seeded;

std::vector<std::byte> random_bytes(std::mt19937_64& rng, size_t n) {
  std::vector<std::byte> v(n);
  for (auto& b : v) b = static_cast<std::byte>(rng());
  return v;
}

// Random pieces of random payloads, checksummed on the pool, come back once each with the CRC
// of exactly their bytes, and join into the CRC of the whole payload.
TEST(ChecksumPool, PiecesJoinIntoTheWholePayloadsCrc) {
  Seeded s;
  ChecksumPool pool(1 + static_cast<int>(s.rng() % 4));
  std::vector<std::vector<std::byte>> payloads;
  std::map<int, PieceChecksums> sums;
  size_t posted = 0;
  for (int chunk = 0; chunk < 6; ++chunk) {
    payloads.push_back(random_bytes(s.rng, 1 + s.rng() % 300'000));
    const auto& p = payloads.back();
    sums[chunk].reset(p.size());
    // Cut into random pieces, posted in a shuffled order.
    std::vector<std::pair<uint64_t, uint64_t>> pieces;
    for (uint64_t at = 0; at < p.size();) {
      const uint64_t n = std::min<uint64_t>(1 + s.rng() % 70'000, p.size() - at);
      pieces.emplace_back(at, n);
      at += n;
    }
    std::shuffle(pieces.begin(), pieces.end(), s.rng);
    for (const auto& [at, n] : pieces) pool.post(chunk, at, p.data() + at, n);
    posted += pieces.size();
  }
  size_t taken = 0;
  while (taken < posted) {
    for (const PieceCrc& piece : pool.take(1'000'000)) {
      ++taken;
      const auto& p = payloads[static_cast<size_t>(piece.chunk)];
      ASSERT_LE(piece.offset + piece.bytes, p.size());
      EXPECT_EQ(piece.crc, crc32c_portable(p.data() + piece.offset, piece.bytes));
      sums[piece.chunk].add(piece);
    }
  }
  EXPECT_EQ(taken, posted);
  EXPECT_EQ(pool.pending(), 0);
  for (auto& [chunk, sum] : sums) {
    ASSERT_TRUE(sum.complete());
    std::string problem;
    const auto& p = payloads[static_cast<size_t>(chunk)];
    EXPECT_EQ(sum.combined(problem), crc32c_portable(p.data(), p.size())) << "chunk " << chunk;
    EXPECT_TRUE(problem.empty()) << problem;
  }
}

TEST(ChecksumPool, MissingPieceIsNotComplete) {
  PieceChecksums sums;
  sums.reset(100);
  sums.add({0, 0, 40, 1});
  EXPECT_FALSE(sums.complete());
  sums.add({0, 60, 40, 2});
  EXPECT_FALSE(sums.complete());
  std::string problem;
  (void)sums.combined(problem);
  EXPECT_NE(problem.find("starts at byte 60"), std::string::npos) << problem;
}

TEST(ChecksumPool, RefusesNoWorkers) { EXPECT_THROW(ChecksumPool(0), UsageError); }

}  // namespace
}  // namespace cake
