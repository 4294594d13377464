// copy_streaming() against memcpy: fresh random bytes, every head/tail misalignment of source and
// destination, sizes around the 64- and 256-byte steps, a poisoned destination whose bytes just
// outside the range must stay untouched.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "common/stream_copy.hpp"

namespace cake {
namespace {

TEST(StreamCopy, EqualsMemcpyAtEveryAlignmentAndSize) {
  std::mt19937_64 rng(std::random_device{}());
  constexpr size_t kMax = 3 * 4096 + 300;
  std::vector<uint8_t> src(kMax + 128), dst(kMax + 256);
  for (auto& b : src) b = static_cast<uint8_t>(rng());
  const std::vector<size_t> sizes = {0, 1, 15, 16, 63, 64, 65, 127, 255, 256, 257, 1000, 4096, 4097, kMax};
  for (size_t src_off = 0; src_off < 64; src_off += 7) {
    for (size_t dst_off = 0; dst_off < 64; dst_off += 5) {
      for (size_t n : sizes) {
        SCOPED_TRACE(testing::Message() << "src+" << src_off << " dst+" << dst_off << " bytes " << n);
        std::fill(dst.begin(), dst.end(), uint8_t{0xA5});
        copy_streaming(dst.data() + 64 + dst_off, src.data() + src_off, n);
        ASSERT_EQ(0, std::memcmp(dst.data() + 64 + dst_off, src.data() + src_off, n));
        for (size_t i = 0; i < 64 + dst_off; ++i) ASSERT_EQ(dst[i], 0xA5) << "before the range, at " << i;
        for (size_t i = 64 + dst_off + n; i < dst.size(); ++i) ASSERT_EQ(dst[i], 0xA5) << "after the range, at " << i;
      }
    }
  }
}

TEST(StreamCopy, NamesItsKind) {
  const std::string kind = copy_streaming_kind();
  EXPECT_TRUE(kind == "avx512" || kind == "sse2" || kind == "memcpy") << kind;
}

}  // namespace
}  // namespace cake
