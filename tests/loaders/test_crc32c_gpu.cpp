// The GPU CRC-32C (loaders/crc32c_gpu.hpp) on a device: equal to crc32c() over spans of fresh
// random bytes laid out in poisoned device memory at unaligned offsets, from empty payloads to a
// 128 MiB chunk of 64 segments (whose rate is printed for the record, not asserted). Skips without
// a GPU; Crc32cEmulatedKernels.* hold the same kernels to crc32c() in CI.
#include <random>

#include <gtest/gtest.h>

#include "common/crc32c.hpp"
#include "common/error.hpp"
#include "store_fixture.hpp"

#if defined(CAKE_HAVE_CUDA)
#include <cuda_runtime.h>

#include "common/cuda_raii.hpp"
#include "gpu_present.hpp"
#include "loaders/crc32c_gpu.hpp"
#endif

namespace cake {
namespace {

#if defined(CAKE_HAVE_CUDA)
using test::have_gpu;

// The spans in one poisoned device buffer, random bytes in them; `payload` gets them in order.
std::vector<DeviceSpan> upload_spans(std::mt19937_64& rng, const std::vector<uint64_t>& lengths, cuda::DeviceBuffer& memory,
                                     std::vector<std::byte>& payload) {
  std::vector<uint64_t> offsets;
  uint64_t size = 0;
  for (uint64_t n : lengths) {
    size += rng() % 19;
    offsets.push_back(size);
    size += n;
  }
  std::vector<std::byte> host(size + 16, std::byte{0xA5});
  payload.clear();
  std::vector<DeviceSpan> spans;
  memory = cuda::DeviceBuffer(host.size());
  for (size_t i = 0; i < lengths.size(); ++i) {
    std::byte* p = host.data() + offsets[i];
    for (uint64_t b = 0; b < lengths[i]; ++b) p[b] = static_cast<std::byte>(rng());
    payload.insert(payload.end(), p, p + lengths[i]);
    spans.push_back({static_cast<const std::byte*>(memory.get()) + offsets[i], lengths[i]});
  }
  EXPECT_EQ(cudaMemcpy(memory.get(), host.data(), host.size(), cudaMemcpyHostToDevice), cudaSuccess);
  return spans;
}

TEST(Crc32cGpu, EqualsTheCpuCrcOverSpans) {
  if (!have_gpu()) GTEST_SKIP() << "no GPU: the GPU checksum needs one";
  test::Seeded s;
  GpuCrc32c gpu(3);
  cuda::Stream stream("the checksum test's stream");
  std::vector<std::vector<uint64_t>> cases = {{}, {0}, {1}, {0, 1, 0}, {3, 5, 7}, {15, 16, 17}, {131072, 131073, 511}};
  for (int trial = 0; trial < 40; ++trial) {
    std::vector<uint64_t> lengths(1 + s.rng() % 300);
    const uint64_t longest = trial % 4 == 0 ? 64 : trial % 4 == 1 ? 5000 : 600000;
    for (uint64_t& n : lengths) n = s.rng() % (longest + 1);
    cases.push_back(lengths);
  }
  for (size_t c = 0; c < cases.size(); ++c) {
    cuda::DeviceBuffer memory;
    std::vector<std::byte> payload;
    const std::vector<DeviceSpan> spans = upload_spans(s.rng, cases[c], memory, payload);
    SCOPED_TRACE(cat("case ", c, ": ", spans.size(), " spans, ", payload.size(), " bytes"));
    const int slot = static_cast<int>(c % 3);
    gpu.enqueue(slot, spans, stream.get(), "the checksum test");
    stream.synchronize("the checksum test");
    EXPECT_EQ(gpu.result(slot), crc32c(payload.data(), payload.size()));
  }
}

// A llama-3-8b chunk: 1024 tokens x 2 KiB in each of 64 segments (128 MiB), the segments apart.
TEST(Crc32cGpu, ALargeChunkAndItsRate) {
  if (!have_gpu()) GTEST_SKIP() << "no GPU: the GPU checksum needs one";
  test::Seeded s;
  constexpr uint64_t kSegment = 2ull << 20;
  constexpr int kSegments = 64;
  cuda::DeviceBuffer memory(kSegment * kSegments * 2);
  std::vector<std::byte> payload(kSegment * kSegments);
  for (auto& b : payload) b = static_cast<std::byte>(s.rng());
  std::vector<DeviceSpan> spans;
  for (int i = 0; i < kSegments; ++i) {
    std::byte* at = memory.as<std::byte>() + kSegment * 2 * static_cast<uint64_t>(i);  // every other segment
    ASSERT_EQ(cudaMemcpy(at, payload.data() + kSegment * static_cast<uint64_t>(i), kSegment, cudaMemcpyHostToDevice), cudaSuccess);
    spans.push_back({at, kSegment});
  }
  GpuCrc32c gpu(1);
  cuda::Stream stream("the checksum test's stream");
  cuda::Event begin, end;
  const uint32_t want = crc32c(payload.data(), payload.size());
  float best_ms = 1e9f;
  for (int repeat = 0; repeat < 5; ++repeat) {
    begin.record(stream.get());
    gpu.enqueue(0, spans, stream.get(), "the checksum test");
    end.record(stream.get());
    stream.synchronize("the checksum test");
    ASSERT_EQ(gpu.result(0), want);
    float ms = 0;
    ASSERT_EQ(cudaEventElapsedTime(&ms, begin.get(), end.get()), cudaSuccess);
    best_ms = std::min(best_ms, ms);
  }
  const double gbs = static_cast<double>(payload.size()) / (best_ms * 1e-3) / 1e9;
  std::printf("GPU CRC-32C over %d segments of %llu bytes: best of 5 %.3f ms, %.0f GB/s\n", kSegments,
              static_cast<unsigned long long>(kSegment), best_ms, gbs);
  RecordProperty("gpu_crc32c_gbs", std::to_string(gbs));
}
#else
TEST(Crc32cGpu, EqualsTheCpuCrcOverSpans) { GTEST_SKIP() << "built without CUDA: the GPU checksum needs it"; }
#endif

}  // namespace
}  // namespace cake
