#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <vector>

#include "common/crc32c.hpp"

using namespace cake;

TEST(Crc32c, KnownVector) {
  // RFC 3720 B.4: CRC-32C of "123456789" is 0xE3069283.
  const char* text = "123456789";
  EXPECT_EQ(crc32c(text, 9), 0xE3069283u);
  EXPECT_EQ(crc32c_portable(text, 9), 0xE3069283u);
  std::vector<unsigned char> zeros(32, 0);  // RFC 3720 B.4: 32 bytes of zeros
  EXPECT_EQ(crc32c(zeros.data(), zeros.size()), 0x8A9136AAu);
}

TEST(Crc32c, FastPathMatchesPortableAndChains) {
  std::mt19937_64 rng(std::random_device{}());
  for (int trial = 0; trial < 20; ++trial) {
    std::vector<unsigned char> data(rng() % 5000 + 1);
    for (auto& b : data) b = static_cast<unsigned char>(rng());
    const size_t split = rng() % data.size();
    const uint32_t whole = crc32c(data.data(), data.size());
    EXPECT_EQ(whole, crc32c_portable(data.data(), data.size()));
    EXPECT_EQ(whole, crc32c(data.data() + split, data.size() - split, crc32c(data.data(), split)));
    data[rng() % data.size()] ^= 0x10;
    EXPECT_NE(whole, crc32c(data.data(), data.size()));
  }
}

// The folding path (AVX-512 carry-less multiplies, from 1 KiB where the CPU has them) against the
// table: every length class around its block sizes (256, 64, 16, 8 bytes), any alignment, any
// starting state, up to pieces of a MiB.
TEST(Crc32c, LongInputsMatchPortableAtEveryLengthAndAlignment) {
  std::mt19937_64 rng(std::random_device{}());
  std::vector<size_t> lengths;
  for (size_t base : {1024u, 1280u, 4096u, 65536u})
    for (size_t extra : {0u, 1u, 7u, 8u, 15u, 16u, 17u, 63u, 64u, 65u, 255u, 256u, 257u}) lengths.push_back(base + extra);
  for (int i = 0; i < 10; ++i) lengths.push_back(1024 + rng() % (2u << 20));
  for (size_t n : lengths) {
    const size_t offset = rng() % 64;
    std::vector<unsigned char> data(n + offset);
    for (auto& b : data) b = static_cast<unsigned char>(rng());
    const uint32_t previous = (rng() & 1) ? 0u : static_cast<uint32_t>(rng());
    EXPECT_EQ(crc32c(data.data() + offset, n, previous), crc32c_portable(data.data() + offset, n, previous))
        << n << " bytes at offset " << offset << ", previous " << previous;
  }
}

TEST(Crc32c, CombineJoinsPiecesChecksummedApart) {
  std::mt19937_64 rng(std::random_device{}());
  for (int trial = 0; trial < 50; ++trial) {
    std::vector<unsigned char> data(rng() % 20000 + 1);
    for (auto& b : data) b = static_cast<unsigned char>(rng());
    const size_t split = rng() % (data.size() + 1);
    const uint32_t a = crc32c_portable(data.data(), split);
    const uint32_t b = crc32c_portable(data.data() + split, data.size() - split);
    EXPECT_EQ(crc32c_combine(a, b, data.size() - split), crc32c_portable(data.data(), data.size()))
        << "split " << split << " of " << data.size();
  }
  // Pieces of several MiB (the load lane's), joined left to right.
  std::vector<unsigned char> big((3u << 20) + 12345);
  for (auto& b : big) b = static_cast<unsigned char>(rng());
  uint32_t joined = 0;
  for (size_t at = 0; at < big.size(); at += 1u << 20) {
    const size_t n = std::min<size_t>(1u << 20, big.size() - at);
    joined = at == 0 ? crc32c(big.data(), n) : crc32c_combine(joined, crc32c(big.data() + at, n), n);
  }
  EXPECT_EQ(joined, crc32c_portable(big.data(), big.size()));
}

// The fused copy and checksum: the same CRC as the table, and the destination equal to the source
// byte for byte with nothing written before or after it, for every length class (short ones take
// the copy-then-checksum path, from 1 KiB the folding one), any alignment of either side, any state,
// with cached and with streaming stores (those start with plain ones up to a 64-byte boundary).
TEST(Crc32c, CopyReturnsTheChecksumAndCopiesExactly) {
  std::mt19937_64 rng(std::random_device{}());
  std::vector<size_t> lengths = {0, 1, 7, 8, 15, 16, 17, 255, 256, 1023};
  for (size_t base : {1024u, 1280u, 4096u, 65536u})
    for (size_t extra : {0u, 1u, 7u, 8u, 15u, 16u, 17u, 63u, 64u, 65u, 255u, 256u, 257u}) lengths.push_back(base + extra);
  for (int i = 0; i < 10; ++i) lengths.push_back(1024 + rng() % (2u << 20));
  constexpr size_t kGuard = 64;
  constexpr unsigned char kPoison = 0xA5;
  for (CopyStores stores : {CopyStores::cached, CopyStores::streaming}) {
    for (size_t n : lengths) {
      SCOPED_TRACE(stores == CopyStores::cached ? "cached stores" : "streaming stores");
      const size_t src_offset = rng() % 64;
      const size_t dst_offset = rng() % 64;
      std::vector<unsigned char> src(n + src_offset);
      for (auto& b : src) b = static_cast<unsigned char>(rng());
      std::vector<unsigned char> dst(dst_offset + n + kGuard, kPoison);
      const uint32_t previous = (rng() & 1) ? 0u : static_cast<uint32_t>(rng());
      const uint32_t crc = crc32c_copy(dst.data() + dst_offset, src.data() + src_offset, n, previous, stores);
      EXPECT_EQ(crc, crc32c_portable(src.data() + src_offset, n, previous)) << n << " bytes";
      EXPECT_EQ(std::memcmp(dst.data() + dst_offset, src.data() + src_offset, n), 0) << n << " bytes";
      for (size_t i = 0; i < dst_offset; ++i) ASSERT_EQ(dst[i], kPoison) << n << " bytes: byte " << i << " before";
      for (size_t i = 0; i < kGuard; ++i) ASSERT_EQ(dst[dst_offset + n + i], kPoison) << n << " bytes: byte " << i << " after";
    }
  }
}
