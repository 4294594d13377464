// Loader micro-benchmarks: crc32c throughput (every chunk is checksummed on the load lane), the
// fused copy and checksum with cached or streaming stores into a destination far larger than the
// caches (a host KV cache), and
// the io_uring file source reading a 256 MiB synthetic store by queue depth and request size.
// The store lives in $CAKE_BENCH_STORE_DIR (default /tmp/cake-bench-store) and is written once,
// then reused by later runs. Counters: bytes_per_second (Google Benchmark's) and gbps.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "common/crc32c.hpp"
#include "common/units.hpp"
#include "loaders/aligned_buffer.hpp"
#include "loaders/calibration.hpp"
#include "loaders/throttle.hpp"

namespace cake {
namespace {

constexpr uint64_t kStorePayloadBytes = 256ull << 20;

std::string store_dir() {
  const char* dir = std::getenv("CAKE_BENCH_STORE_DIR");
  return dir && *dir ? dir : "/tmp/cake-bench-store";
}

void BM_Crc32c(benchmark::State& state) {
  AlignedBuffer data(static_cast<size_t>(state.range(0)));
  std::mt19937_64 rng(std::random_device{}());
  auto* words = reinterpret_cast<uint64_t*>(data.data());
  for (size_t i = 0; i < data.size() / 8; ++i) words[i] = rng();
  for (auto _ : state) benchmark::DoNotOptimize(crc32c(data.data(), data.size()));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * state.range(0));
  state.SetLabel(crc32c_is_hardware() ? "sse4.2" : "table");
}
BENCHMARK(BM_Crc32c)->Arg(1 << 20)->Arg(16 << 20);

void BM_Crc32cPortable(benchmark::State& state) {
  AlignedBuffer data(static_cast<size_t>(state.range(0)));
  data.zero();
  for (auto _ : state) benchmark::DoNotOptimize(crc32c_portable(data.data(), data.size()));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * state.range(0));
}
BENCHMARK(BM_Crc32cPortable)->Arg(1 << 20);

// A reader thread's copy out of a mapping into a host KV cache: 512 MiB in 1 MiB blocks, each
// copied and checksummed (crc32c_copy) with cached (arg 0) or streaming (arg 1) stores, or only
// copied (arg 2, memcpy). Both buffers are faulted in before the clock.
void BM_Crc32cCopyIntoLargeCache(benchmark::State& state) {
  constexpr size_t kBytes = 512u << 20, kBlock = 1u << 20;
  AlignedBuffer src(kBytes), dst(kBytes);
  std::mt19937_64 rng(std::random_device{}());
  auto* words = reinterpret_cast<uint64_t*>(src.data());
  for (size_t i = 0; i < kBytes / 8; ++i) words[i] = rng();
  dst.zero();
  const int how = static_cast<int>(state.range(0));
  for (auto _ : state) {
    uint32_t crc = 0;
    for (size_t at = 0; at < kBytes; at += kBlock) {
      if (how == 2) std::memcpy(dst.data() + at, src.data() + at, kBlock);
      else crc = crc32c_copy(dst.data() + at, src.data() + at, kBlock, crc, how ? CopyStores::streaming : CopyStores::cached);
    }
    benchmark::DoNotOptimize(crc);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(kBytes));
  state.SetLabel(how == 0 ? "crc32c_copy, cached stores" : how == 1 ? "crc32c_copy, streaming stores" : "memcpy");
}
BENCHMARK(BM_Crc32cCopyIntoLargeCache)->Arg(0)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond);

// args: queue depth, request KiB. One iteration = open + read + checksum of the whole store.
void BM_FileSourceRead(benchmark::State& state) {
  const CalibrationStore store = ensure_calibration_store(store_dir(), kStorePayloadBytes);
  FileSourceOptions options;
  options.queue_depth = static_cast<int>(state.range(0));
  options.request_bytes = static_cast<uint64_t>(state.range(1)) * 1024;
  double seconds = 0;
  uint64_t bytes = 0;
  for (auto _ : state) {
    const LoadMeasurement m = measure_file_load(store.path, store.header, options, nullptr);
    if (m.failed_chunks > 0) {
      state.SkipWithError(m.first_error.c_str());
      return;
    }
    state.SetIterationTime(m.seconds);
    seconds += m.seconds;
    bytes += m.bytes;
    state.SetLabel(m.o_direct ? "O_DIRECT" : "buffered");
  }
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
  state.counters["gbps"] = bytes_per_sec_to_gbps(static_cast<double>(bytes) / seconds);
}
BENCHMARK(BM_FileSourceRead)
    ->ArgsProduct({{1, 4, 16, 32}, {128, 1024, 4096}})
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond)
    ->Iterations(3);

// The throttle alone (memory source): achieved / target over the 256 MiB store.
void BM_MemSourceThrottled(benchmark::State& state) {
  const CalibrationStore store = ensure_calibration_store(store_dir(), kStorePayloadBytes);
  const double target = gbps_to_bytes_per_sec(static_cast<double>(state.range(0)));
  double ratio_sum = 0;
  for (auto _ : state) {
    auto throttle = make_throttle(target, "");
    const LoadMeasurement m = measure_mem_load(store.path, store.header, 1 << 20, throttle.get());
    state.SetIterationTime(m.seconds);
    ratio_sum += m.bytes_per_sec() / target;
  }
  state.counters["achieved_over_target"] = ratio_sum / static_cast<double>(state.iterations());
}
BENCHMARK(BM_MemSourceThrottled)->Arg(1)->Arg(4)->Arg(16)->Arg(64)->UseManualTime()->Unit(benchmark::kMillisecond)->Iterations(2);

}  // namespace
}  // namespace cake
