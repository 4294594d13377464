// The GPU CRC-32C kernels (loaders/crc32c_kernels.cuh), run on the host under emulated_cuda.hpp
// with the launches of crc32c_gpu.cu: equal to crc32c() of common/crc32c.hpp over spans of fresh
// random bytes: empty and one-byte payloads, odd lengths, unaligned starts, many spans (more than
// one launch takes), spans longer than a tile. CI has no GPU; Crc32cGpu.* do the same on a device.
#include "emulated_cuda.hpp"

#include <random>

#include <gtest/gtest.h>

#include "common/crc32c.hpp"
#include "common/error.hpp"
#include "loaders/crc32c_kernels.cuh"
#include "store_fixture.hpp"

namespace cake {
namespace {

namespace k = crc_kernels;

// What GpuCrc32c::enqueue() launches, one block at a time on host threads.
uint32_t emulated_crc(const k::Tables& tables, const std::vector<k::HostSpan>& spans) {
  uint64_t total = 0;
  const std::vector<k::Spans> launches = k::plan_launches(spans.data(), spans.size(), total);
  uint32_t accumulator = 0;
  for (const k::Spans& launch : launches)
    emulate_launch({k::tiles_of_longest(launch), launch.count, 1}, {k::kThreads, 1, 1},
                   [&] { k::tiles_kernel(launch, &tables, &accumulator); });
  uint32_t crc = 0xDEADBEEF;  // poison: finish_kernel must write it
  emulate_launch({1, 1, 1}, {1, 1, 1}, [&] { k::finish_kernel(&tables, &accumulator, total, &crc); });
  EXPECT_EQ(accumulator, 0u) << "finish_kernel leaves the accumulator zero for the next payload";
  return crc;
}

// `lengths` spans laid out in one buffer at random (unaligned) offsets with poison between them.
struct Layout {
  std::vector<uint8_t> memory;
  std::vector<k::HostSpan> spans;
  std::vector<uint8_t> payload;  // the spans' bytes in order
};
Layout make_layout(std::mt19937_64& rng, const std::vector<uint64_t>& lengths) {
  std::vector<uint64_t> offsets;
  uint64_t size = 0;
  for (uint64_t n : lengths) {
    size += rng() % 19;  // a gap of poison, and an unaligned start
    offsets.push_back(size);
    size += n;
  }
  Layout l;
  l.memory.assign(size + 16, 0xA5);
  for (size_t i = 0; i < lengths.size(); ++i) {
    uint8_t* p = l.memory.data() + offsets[i];
    for (uint64_t b = 0; b < lengths[i]; ++b) p[b] = static_cast<uint8_t>(rng());
    l.spans.push_back({p, lengths[i]});
    l.payload.insert(l.payload.end(), p, p + lengths[i]);
  }
  return l;
}

TEST(Crc32cEmulatedKernels, TablesMatchTheCpuMath) {
  k::Tables t;
  k::make_tables(t);
  // slice[k][b] is the CRC state after byte b and k zero bytes from a zero state: the portable
  // CRC of those bytes with the pre- and post-inversion undone by starting from ~0.
  for (int s = 0; s < 8; ++s)
    for (uint32_t b = 0; b < 256; b += 37) {
      std::vector<uint8_t> bytes(static_cast<size_t>(s) + 1, 0);
      bytes[0] = static_cast<uint8_t>(b);
      const uint32_t raw = ~crc32c_portable(bytes.data(), bytes.size(), 0xFFFFFFFFu);
      EXPECT_EQ(t.slice[s][b], raw) << "slice " << s << " byte " << b;
    }
  // A shift by n bytes is what crc32c_combine applies to its first CRC.
  std::mt19937_64 rng(7);
  for (uint64_t n : {0ull, 1ull, 5ull, 4096ull, 131072ull, 123457ull, 3ull << 30}) {
    const uint32_t a = static_cast<uint32_t>(rng());
    EXPECT_EQ(k::gf_multiply(a, k::x_pow_8n(t.x_pow_2k, n)), crc32c_combine(a, 0, n)) << n << " bytes";
  }
}

TEST(Crc32cEmulatedKernels, EqualTheCpuCrcOverSpans) {
  test::Seeded s;
  k::Tables tables;
  k::make_tables(tables);
  std::vector<std::vector<uint64_t>> cases = {{}, {0}, {1}, {0, 1, 0}, {3, 5, 7}, {15, 16, 17}, {k::kTileBytes},
                                              {k::kTileBytes + 1, k::kThreadBytes - 1, 2 * k::kTileBytes + 13}};
  for (int trial = 0; trial < 8; ++trial) {
    std::vector<uint64_t> lengths(1 + s.rng() % 5);
    for (uint64_t& n : lengths) n = (s.rng() % 4 == 0) ? s.rng() % 40 : s.rng() % (2 * k::kTileBytes + 1000);
    cases.push_back(lengths);
  }
  // More spans than one launch takes: the bytes after each launch count.
  cases.push_back(std::vector<uint64_t>(k::kMaxSpans + 37, 0));
  for (uint64_t& n : cases.back()) n = s.rng() % 3000;
  for (const std::vector<uint64_t>& lengths : cases) {
    const Layout l = make_layout(s.rng, lengths);
    uint64_t total = 0;
    for (uint64_t n : lengths) total += n;
    SCOPED_TRACE(cat(lengths.size(), " spans, ", total, " bytes"));
    EXPECT_EQ(emulated_crc(tables, l.spans), crc32c(l.payload.data(), l.payload.size()));
  }
}

TEST(Crc32cEmulatedKernels, LaunchPlanCutsLongSpansAndKeepsOrder) {
  // Spans longer than kMaxSpanBytes are cut (no memory behind them: only the plan is looked at).
  const auto* base = reinterpret_cast<const uint8_t*>(uintptr_t{1} << 40);
  std::vector<k::HostSpan> spans = {{base, 5}, {base + 100, 0}, {base + 200, 2 * k::kMaxSpanBytes + 3}};
  uint64_t total = 0;
  const std::vector<k::Spans> launches = k::plan_launches(spans.data(), spans.size(), total);
  EXPECT_EQ(total, 2 * k::kMaxSpanBytes + 8);
  ASSERT_EQ(launches.size(), 1u);
  ASSERT_EQ(launches[0].count, 4u);
  EXPECT_EQ(launches[0].data[1], base + 200);
  EXPECT_EQ(launches[0].data[2], base + 200 + k::kMaxSpanBytes);
  EXPECT_EQ(launches[0].bytes[3], 3u);
  EXPECT_EQ(launches[0].bytes_after, 0u);
}

}  // namespace
}  // namespace cake
