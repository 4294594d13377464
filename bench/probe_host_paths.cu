// probe_host_paths: which way from a file in page cache (tmpfs) to GPU memory can reach the pinned
// copy rate? An experiment for issue 13, kept so that its numbers can be reproduced:
//   probe_host_paths FILE [GIB] [THREADS,...]
// It writes FILE (random bytes, GIB GiB, default 4) unless it already has that size, then times,
// each over the whole file in 128 MiB chunks, into one device buffer per thread:
//   pinned      cudaMemcpyAsync from one pinned buffer (the ceiling, no file involved)
//   pread       T threads pread() 4 MiB pieces into pinned staging, each piece copied as it lands
//               (what the file source's readers do today)
//   mmap-copy   T threads copy 4 MiB pieces out of a read-only mapping of the file into pinned
//               staging with non-temporal stores, each piece copied as it lands
//   register    T threads map a chunk of the file, page-lock it (cudaHostRegister, read-only),
//               DMA it straight from the page cache, and unlock it: no CPU copy of the bytes
// Every path's bytes are checked afterwards against the file by a checksum on the GPU side.
#include <cuda_runtime.h>
#include <fcntl.h>
#include <immintrin.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

#define CHECK_CUDA(call)                                                                        \
  do {                                                                                          \
    cudaError_t err_ = (call);                                                                  \
    if (err_ != cudaSuccess) {                                                                  \
      std::fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(err_)); \
      std::exit(1);                                                                             \
    }                                                                                           \
  } while (0)

void die(const char* what) {
  std::perror(what);
  std::exit(1);
}

constexpr size_t kChunkBytes = 128ull << 20;
constexpr size_t kPieceBytes = 4ull << 20;
constexpr int kPiecesPerThread = 4;

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Sum of 64-bit words, on the device, to check that the bytes arrived.
__global__ void sum_words(const uint64_t* words, size_t count, unsigned long long* out) {
  unsigned long long local = 0;
  for (size_t i = blockIdx.x * blockDim.x + threadIdx.x; i < count; i += gridDim.x * blockDim.x)
    local += words[i];
  atomicAdd(out, local);
}

uint64_t host_sum(const uint8_t* p, size_t n) {
  uint64_t s = 0;
  const auto* w = reinterpret_cast<const uint64_t*>(p);
  for (size_t i = 0; i < n / 8; ++i) s += w[i];
  return s;
}

void copy_nt(void* dst, const void* src, size_t n) {
  auto* d = static_cast<__m512i*>(dst);
  const auto* s = static_cast<const __m512i*>(src);
  for (size_t i = 0; i < n / 64; i += 4) {
    __m512i a = _mm512_loadu_si512(s + i);
    __m512i b = _mm512_loadu_si512(s + i + 1);
    __m512i c = _mm512_loadu_si512(s + i + 2);
    __m512i e = _mm512_loadu_si512(s + i + 3);
    _mm512_stream_si512(d + i, a);
    _mm512_stream_si512(d + i + 1, b);
    _mm512_stream_si512(d + i + 2, c);
    _mm512_stream_si512(d + i + 3, e);
  }
  _mm_sfence();
}

struct Setup {
  std::string path;
  size_t file_bytes = 0;
  int fd = -1;
  std::vector<uint8_t*> dev;  // one chunk-sized device buffer per thread
  uint64_t expected_sum = 0;  // over the whole file
};

// Each path: fn(thread, threads) moves chunks thread, thread+threads, ... into dev[thread].
// Returns GB/s over the whole file; checks the device sums against the file.
double time_path(Setup& s, int threads, const std::function<void(int, int, unsigned long long*)>& fn) {
  unsigned long long* sums = nullptr;
  CHECK_CUDA(cudaMalloc(&sums, sizeof(unsigned long long) * threads));
  CHECK_CUDA(cudaMemset(sums, 0, sizeof(unsigned long long) * threads));
  CHECK_CUDA(cudaDeviceSynchronize());
  std::vector<std::thread> crew;
  const double t0 = now_s();
  for (int t = 0; t < threads; ++t) crew.emplace_back(fn, t, threads, sums + t);
  for (auto& th : crew) th.join();
  CHECK_CUDA(cudaDeviceSynchronize());
  const double seconds = now_s() - t0;
  std::vector<unsigned long long> got(threads);
  CHECK_CUDA(cudaMemcpy(got.data(), sums, sizeof(unsigned long long) * threads, cudaMemcpyDeviceToHost));
  CHECK_CUDA(cudaFree(sums));
  unsigned long long total = 0;
  for (auto v : got) total += v;
  if (total != s.expected_sum) std::printf("  !! bytes differ from the file (sum %llx vs %llx)\n", total,
                                           static_cast<unsigned long long>(s.expected_sum));
  return s.file_bytes / seconds / 1e9;
}

void sum_chunk(const uint8_t* dev, size_t n, unsigned long long* out, cudaStream_t stream) {
  sum_words<<<264, 512, 0, stream>>>(reinterpret_cast<const uint64_t*>(dev), n / 8, out);
  CHECK_CUDA(cudaGetLastError());
}

// Staged paths: fill(piece_dst, file_offset, bytes) lands one piece in pinned staging.
void staged_worker(Setup& s, int t, int threads, unsigned long long* sum,
                   const std::function<void(uint8_t*, size_t, size_t)>& fill) {
  cudaStream_t stream;
  CHECK_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  uint8_t* staging = nullptr;
  CHECK_CUDA(cudaMallocHost(&staging, kPieceBytes * kPiecesPerThread));
  std::vector<cudaEvent_t> done(kPiecesPerThread);
  std::vector<bool> busy(kPiecesPerThread, false);
  for (auto& e : done) CHECK_CUDA(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
  const size_t chunks = s.file_bytes / kChunkBytes;
  int slot = 0;
  for (size_t c = t; c < chunks; c += threads) {
    for (size_t off = 0; off < kChunkBytes; off += kPieceBytes) {
      if (busy[slot]) CHECK_CUDA(cudaEventSynchronize(done[slot]));
      uint8_t* piece = staging + slot * kPieceBytes;
      fill(piece, c * kChunkBytes + off, kPieceBytes);
      CHECK_CUDA(cudaMemcpyAsync(s.dev[t] + off, piece, kPieceBytes, cudaMemcpyHostToDevice, stream));
      CHECK_CUDA(cudaEventRecord(done[slot], stream));
      busy[slot] = true;
      slot = (slot + 1) % kPiecesPerThread;
    }
    sum_chunk(s.dev[t], kChunkBytes, sum, stream);
  }
  CHECK_CUDA(cudaStreamSynchronize(stream));
  for (auto& e : done) CHECK_CUDA(cudaEventDestroy(e));
  CHECK_CUDA(cudaFreeHost(staging));
  CHECK_CUDA(cudaStreamDestroy(stream));
}

std::atomic<double> g_register_s{0}, g_unregister_s{0};

void register_worker(Setup& s, int t, int threads, unsigned long long* sum, bool populate) {
  cudaStream_t stream;
  CHECK_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  const size_t chunks = s.file_bytes / kChunkBytes;
  double reg_s = 0, unreg_s = 0;
  for (size_t c = t; c < chunks; c += threads) {
    void* map = mmap(nullptr, kChunkBytes, PROT_READ, MAP_SHARED | (populate ? MAP_POPULATE : 0), s.fd,
                     static_cast<off_t>(c * kChunkBytes));
    if (map == MAP_FAILED) die("mmap");
    const double r0 = now_s();
    CHECK_CUDA(cudaHostRegister(map, kChunkBytes, cudaHostRegisterReadOnly));
    reg_s += now_s() - r0;
    CHECK_CUDA(cudaMemcpyAsync(s.dev[t], map, kChunkBytes, cudaMemcpyHostToDevice, stream));
    sum_chunk(s.dev[t], kChunkBytes, sum, stream);
    CHECK_CUDA(cudaStreamSynchronize(stream));
    const double u0 = now_s();
    CHECK_CUDA(cudaHostUnregister(map));
    unreg_s += now_s() - u0;
    munmap(map, kChunkBytes);
  }
  CHECK_CUDA(cudaStreamDestroy(stream));
  g_register_s = g_register_s + reg_s;
  g_unregister_s = g_unregister_s + unreg_s;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: probe_host_paths FILE [GIB] [THREADS,...]\n");
    return 2;
  }
  Setup s;
  s.path = argv[1];
  s.file_bytes = (argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 4) << 30;
  std::vector<int> thread_counts = {1, 4, 8, 14};
  if (argc > 3) {
    thread_counts.clear();
    for (char* p = argv[3]; *p;) {
      thread_counts.push_back(static_cast<int>(std::strtol(p, &p, 10)));
      if (*p == ',') ++p;
    }
  }
  struct stat st{};
  if (stat(s.path.c_str(), &st) != 0 || static_cast<size_t>(st.st_size) != s.file_bytes) {
    const int wfd = open(s.path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (wfd < 0) die("open for writing");
    std::vector<uint64_t> buf(kChunkBytes / 8);
    std::mt19937_64 rng(std::random_device{}());
    for (size_t c = 0; c < s.file_bytes / kChunkBytes; ++c) {
      for (auto& w : buf) w = rng();
      if (write(wfd, buf.data(), kChunkBytes) != static_cast<ssize_t>(kChunkBytes)) die("write");
    }
    close(wfd);
  }
  s.fd = open(s.path.c_str(), O_RDONLY);
  if (s.fd < 0) die("open");
  {
    void* all = mmap(nullptr, s.file_bytes, PROT_READ, MAP_SHARED, s.fd, 0);
    if (all == MAP_FAILED) die("mmap whole file");
    s.expected_sum = host_sum(static_cast<const uint8_t*>(all), s.file_bytes);
    munmap(all, s.file_bytes);
  }
  int read_only = 0;
  CHECK_CUDA(cudaDeviceGetAttribute(&read_only, cudaDevAttrHostRegisterReadOnlySupported, 0));
  std::printf("file %s, %.1f GiB, chunks of %zu MiB, pieces of %zu MiB; read-only registration %s\n",
              s.path.c_str(), s.file_bytes / double(1ull << 30), kChunkBytes >> 20, kPieceBytes >> 20,
              read_only ? "supported" : "NOT supported");
  const int max_threads = *std::max_element(thread_counts.begin(), thread_counts.end());
  s.dev.resize(max_threads);
  for (auto& d : s.dev) CHECK_CUDA(cudaMalloc(&d, kChunkBytes));

  // Ceiling: pinned buffer, one chunk re-sent, the same number of bytes as the file.
  {
    uint8_t* pinned = nullptr;
    CHECK_CUDA(cudaMallocHost(&pinned, kChunkBytes));
    std::memset(pinned, 1, kChunkBytes);
    cudaStream_t stream;
    CHECK_CUDA(cudaStreamCreate(&stream));
    for (int round = 0; round < 2; ++round) {
      const double t0 = now_s();
      for (size_t c = 0; c < s.file_bytes / kChunkBytes; ++c)
        CHECK_CUDA(cudaMemcpyAsync(s.dev[0], pinned, kChunkBytes, cudaMemcpyHostToDevice, stream));
      CHECK_CUDA(cudaStreamSynchronize(stream));
      std::printf("pinned copy (ceiling)         : %6.1f GB/s\n", s.file_bytes / (now_s() - t0) / 1e9);
    }
    CHECK_CUDA(cudaStreamDestroy(stream));
    CHECK_CUDA(cudaFreeHost(pinned));
  }

  const uint8_t* whole = static_cast<const uint8_t*>(mmap(nullptr, s.file_bytes, PROT_READ, MAP_SHARED, s.fd, 0));
  if (whole == MAP_FAILED) die("mmap whole file");
  for (int round = 0; round < 2; ++round) {
    for (int threads : thread_counts) {
      const double pread_gbs = time_path(s, threads, [&](int t, int n, unsigned long long* sum) {
        staged_worker(s, t, n, sum, [&](uint8_t* dst, size_t off, size_t bytes) {
          size_t done = 0;
          while (done < bytes) {
            const ssize_t r = pread(s.fd, dst + done, bytes - done, static_cast<off_t>(off + done));
            if (r <= 0) die("pread");
            done += static_cast<size_t>(r);
          }
        });
      });
      const double mmap_gbs = time_path(s, threads, [&](int t, int n, unsigned long long* sum) {
        staged_worker(s, t, n, sum,
                      [&](uint8_t* dst, size_t off, size_t bytes) { copy_nt(dst, whole + off, bytes); });
      });
      double reg_gbs = 0, reg_pop_gbs = 0;
      g_register_s = 0;
      g_unregister_s = 0;
      if (read_only) {
        reg_gbs = time_path(s, threads, [&](int t, int n, unsigned long long* sum) {
          register_worker(s, t, n, sum, false);
        });
      }
      const double reg_each = g_register_s / (s.file_bytes / kChunkBytes) * 1e3;
      const double unreg_each = g_unregister_s / (s.file_bytes / kChunkBytes) * 1e3;
      if (read_only) {
        reg_pop_gbs = time_path(s, threads, [&](int t, int n, unsigned long long* sum) {
          register_worker(s, t, n, sum, true);
        });
      }
      std::printf("threads %2d: pread %6.1f | mmap-copy %6.1f | register %6.1f (%.1f ms to lock, %.1f to unlock a chunk) "
                  "| register after MAP_POPULATE %6.1f  GB/s\n",
                  threads, pread_gbs, mmap_gbs, reg_gbs, reg_each, unreg_each, reg_pop_gbs);
      std::fflush(stdout);
    }
  }
  return 0;
}
