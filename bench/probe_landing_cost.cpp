// probe_landing_cost: what each step of landing a tmpfs file in a host KV cache costs on this
// machine, and whether the steps add up. An experiment for issue 13, kept so that its numbers can
// be reproduced (results/loaders/round9-devbox-landing/):
//   probe_landing_cost FILE [THREADS]
// FILE must exist (a calibrate store will do). T threads (default 2) each take every T-th 2 MiB
// piece of the file, three passes of each step, into one destination the size of the file
// (anonymous memory, faulted in before any clock):
//   fill        streaming stores of a constant into the destination (memory write, nothing read)
//   read        a sum over a copy of the file in anonymous memory (memory read, nothing written)
//   land        crc32c_copy with streaming stores from that copy into the destination (what the
//               loader does per byte once the bytes are in memory; here they come from memory)
//   pread hot   pread() 1 MiB at a time into a buffer of the thread's own (fio's and the plain
//               reader's work: the kernel's copy into a buffer that stays in cache)
//   pread+land  the same, each request then crc32c_copy'd with streaming stores into the
//               destination (the landing reader's and `--file-reads pread`'s work)
//   map first   mmap + MADV_POPULATE_READ of the file, then the first pass of 64-byte loads over it
//   map again   a second pass over the same mapping
// Then the rate that pread hot and land would reach if their costs on these threads simply add:
// 1 / (1/pread_hot + 1/land), beside pread+land as measured.
#include <fcntl.h>
#include <immintrin.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "common/crc32c.hpp"
#include "probe_util.hpp"

namespace {

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif

constexpr size_t kPiece = 2u << 20;
constexpr size_t kRequest = 1u << 20;

using cake::probe::die;
using cake::probe::now_s;
using cake::probe::read_fully;

// Anonymous memory of `n` bytes, touched so that no page fault lands on a clock.
struct Anonymous {
  unsigned char* data = nullptr;
  size_t bytes = 0;
  explicit Anonymous(size_t n) : bytes(n) {
    void* p = ::mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) die("allocating anonymous memory");
    data = static_cast<unsigned char*>(p);
    std::memset(data, 1, n);
  }
  ~Anonymous() { ::munmap(data, bytes); }
  Anonymous(const Anonymous&) = delete;
  Anonymous& operator=(const Anonymous&) = delete;
};

void fill_streaming(unsigned char* d, size_t n) {
  const __m256i v = _mm256_set1_epi32(7);
  for (size_t i = 0; i < n; i += 32) _mm256_stream_si256(reinterpret_cast<__m256i*>(d + i), v);
  _mm_sfence();
}

uint64_t sum64(const unsigned char* s, size_t n) {
  __m256i acc = _mm256_setzero_si256();
  for (size_t i = 0; i < n; i += 32) acc = _mm256_add_epi64(acc, _mm256_load_si256(reinterpret_cast<const __m256i*>(s + i)));
  alignas(32) uint64_t lanes[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), acc);
  return lanes[0] + lanes[1] + lanes[2] + lanes[3];
}

// Runs `step(thread, piece_offset)` over every piece on `threads` threads; Gbps of `bytes`.
double run_pieces(int threads, size_t bytes, const std::function<void(int, size_t)>& step) {
  const double t0 = now_s();
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t)
    workers.emplace_back([&, t] {
      for (size_t p = static_cast<size_t>(t) * kPiece; p < bytes; p += static_cast<size_t>(threads) * kPiece) step(t, p);
    });
  for (std::thread& w : workers) w.join();
  return static_cast<double>(bytes) * 8 / (now_s() - t0) / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: probe_landing_cost FILE [THREADS]\n");
    return 2;
  }
  const int threads = argc > 2 ? std::max(1, std::atoi(argv[2])) : 2;
  const int fd = ::open(argv[1], O_RDONLY | O_CLOEXEC);
  if (fd < 0) die(std::string("opening ") + argv[1]);
  const off_t size = ::lseek(fd, 0, SEEK_END);
  if (size < static_cast<off_t>(kPiece)) die("the file is smaller than one 2 MiB piece");
  const size_t bytes = static_cast<size_t>(size) / kPiece * kPiece;
  Anonymous dst(bytes);
  Anonymous src(bytes);
  read_fully(fd, src.data, bytes, 0);
  std::vector<std::vector<unsigned char>> hot(static_cast<size_t>(threads));
  for (auto& h : hot) h.assign(kRequest + 64, 0);
  auto hot_of = [&](int t) {  // 64-byte aligned inside the thread's buffer
    auto* p = hot[static_cast<size_t>(t)].data();
    return p + ((64 - reinterpret_cast<uintptr_t>(p) % 64) % 64);
  };
  std::vector<uint64_t> sinks(static_cast<size_t>(threads), 0);
  std::printf("%s: %.2f GiB, %d threads, 2 MiB pieces, 1 MiB requests; Gbps of the file's bytes, three passes\n", argv[1],
              static_cast<double>(bytes) / (1u << 30), threads);
  auto report = [&](const char* name, const std::function<void(int, size_t)>& step) {
    double best = 0;
    std::printf("  %-12s", name);
    for (int r = 0; r < 3; ++r) {
      const double g = run_pieces(threads, bytes, step);
      best = std::max(best, g);
      std::printf(" %7.1f", g);
    }
    std::printf("\n");
    return best;
  };
  report("fill", [&](int, size_t p) { fill_streaming(dst.data + p, kPiece); });
  report("read", [&](int t, size_t p) { sinks[static_cast<size_t>(t)] += sum64(src.data + p, kPiece); });
  const double land = report("land", [&](int t, size_t p) {
    sinks[static_cast<size_t>(t)] += cake::crc32c_copy(dst.data + p, src.data + p, kPiece, 0, cake::CopyStores::streaming);
  });
  const double hot_read = report("pread hot", [&](int t, size_t p) {
    for (size_t o = 0; o < kPiece; o += kRequest) read_fully(fd, hot_of(t), kRequest, p + o);
  });
  const double both = report("pread+land", [&](int t, size_t p) {
    for (size_t o = 0; o < kPiece; o += kRequest) {
      read_fully(fd, hot_of(t), kRequest, p + o);
      sinks[static_cast<size_t>(t)] +=
          cake::crc32c_copy(dst.data + p + o, hot_of(t), kRequest, 0, cake::CopyStores::streaming);
    }
  });
  for (int r = 0; r < 3; ++r) {
    void* m = ::mmap(nullptr, bytes, PROT_READ, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) die("mmap of the file");
    const auto* mapped = static_cast<const unsigned char*>(m);
    const double t0 = now_s();
    if (::madvise(m, bytes, MADV_POPULATE_READ) != 0) die("MADV_POPULATE_READ");
    const double t1 = now_s();
    const double first = run_pieces(threads, bytes, [&](int t, size_t p) { sinks[static_cast<size_t>(t)] += sum64(mapped + p, kPiece); });
    const double again = run_pieces(threads, bytes, [&](int t, size_t p) { sinks[static_cast<size_t>(t)] += sum64(mapped + p, kPiece); });
    std::printf("  map          populate %.1f ms, first pass %.1f Gbps, second pass %.1f Gbps\n", (t1 - t0) * 1e3, first, again);
    ::munmap(m, bytes);
  }
  uint64_t sink = 0;
  for (uint64_t s : sinks) sink ^= s;
  std::printf("best pread hot %.1f and land %.1f: if their costs add, pread+land reaches %.1f; measured best %.1f"
              " (checksum mix %016llx)\n",
              hot_read, land, 1 / (1 / hot_read + 1 / land), both, static_cast<unsigned long long>(sink));
  ::close(fd);
  return 0;
}
