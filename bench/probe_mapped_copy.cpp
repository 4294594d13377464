// probe_mapped_copy: where a file source reader's time goes when it copies a file in page cache
// (tmpfs) into a host KV cache. An experiment for issue 13, kept so that its numbers can be
// reproduced (results/loaders/round7-devbox-fio/):
//   probe_mapped_copy FILE [THREADS [BOUNCE_BYTES]]
// FILE must exist (a calibrate store will do). Three times each, over the whole file into one
// destination buffer the size of the file (faulted in before any clock):
//   map         one thread: mmap, MADV_POPULATE_READ per 1 MiB, crc32c_copy with streaming stores,
//               munmap, each step timed apart
//   pread       one thread: pread() 1 MiB at a time straight into the destination, then crc32c of
//               those bytes while they are in cache
//   map xT      T threads (default 2), each taking every T-th 2 MiB piece: populate and copy
//   bounce xT   T threads, each taking every T-th 2 MiB piece: pread() it BOUNCE bytes at a time
//               (default 256 KiB) into a small buffer of its own that stays in cache, then
//               crc32c_copy with streaming stores into the destination (no mapping at all)
// Every pass's CRC is checked against one crc32c() of the whole file.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "common/crc32c.hpp"
#include "probe_util.hpp"

namespace {

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif

using cake::probe::die;
using cake::probe::now_s;
using cake::probe::read_fully;

struct Mapping {
  unsigned char* data = nullptr;
  size_t bytes = 0;
  Mapping(int fd, size_t n) : bytes(n) {
    void* p = ::mmap(nullptr, n, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) die("mmap of the file");
    data = static_cast<unsigned char*>(p);
  }
  ~Mapping() { ::munmap(data, bytes); }
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
};

void populate(unsigned char* p, size_t n) {
  if (::madvise(p, n, MADV_POPULATE_READ) != 0) die("MADV_POPULATE_READ");
}

// Pieces first, first + stride, ... of the mapping into dst, each piece's CRC into piece_crcs.
void mapped_pieces(const Mapping& m, unsigned char* dst, size_t piece_bytes, size_t first, size_t stride,
                       std::vector<uint32_t>& piece_crcs) {
  for (size_t piece = first; piece * piece_bytes < m.bytes; piece += stride) {
    const size_t at = piece * piece_bytes;
    const size_t n = std::min(piece_bytes, m.bytes - at);
    populate(m.data + at, n);
    piece_crcs[piece] = cake::crc32c_copy(dst + at, m.data + at, n, 0, cake::CopyStores::streaming);
  }
}

// Pieces first, first + stride, ... read through a small buffer of this thread's into dst.
void bounced_pieces(int fd, size_t file_bytes, unsigned char* dst, size_t piece_bytes, size_t bounce_bytes, size_t first,
                    size_t stride, std::vector<uint32_t>& piece_crcs) {
  std::vector<unsigned char> bounce(bounce_bytes);
  for (size_t piece = first; piece * piece_bytes < file_bytes; piece += stride) {
    const size_t at = piece * piece_bytes;
    const size_t n = std::min(piece_bytes, file_bytes - at);
    uint32_t crc = 0;
    for (size_t off = 0; off < n; off += bounce_bytes) {
      const size_t k = std::min(bounce_bytes, n - off);
      read_fully(fd, bounce.data(), k, at + off);
      crc = cake::crc32c_copy(dst + at + off, bounce.data(), k, crc, cake::CopyStores::streaming);
    }
    piece_crcs[piece] = crc;
  }
}

// `threads` threads, thread t running piece_fn(t, piece_crcs) over pieces t, t + threads, ...;
// returns each piece's CRC.
template <class PieceFn>
std::vector<uint32_t> run_pieces(int threads, size_t bytes, size_t piece_bytes, PieceFn&& piece_fn) {
  std::vector<uint32_t> piece_crcs((bytes + piece_bytes - 1) / piece_bytes, 0);
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) workers.emplace_back([&, t] { piece_fn(static_cast<size_t>(t), piece_crcs); });
  for (std::thread& w : workers) w.join();
  return piece_crcs;
}

// The whole file's CRC from its pieces' (run_pieces()).
uint32_t combined_crc(const std::vector<uint32_t>& piece_crcs, size_t bytes, size_t piece_bytes) {
  uint32_t crc = piece_crcs[0];
  for (size_t i = 1; i < piece_crcs.size(); ++i) crc = cake::crc32c_combine(crc, piece_crcs[i], std::min(piece_bytes, bytes - i * piece_bytes));
  return crc;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: probe_mapped_copy FILE [THREADS]\n");
    return 2;
  }
  const int threads = argc > 2 ? std::atoi(argv[2]) : 2;
  if (threads < 1 || threads > 64) {
    std::fprintf(stderr, "probe_mapped_copy: THREADS must be 1 to 64\n");
    return 2;
  }
  const long bounce_arg = argc > 3 ? std::atol(argv[3]) : 256L << 10;
  if (bounce_arg < 4096 || bounce_arg > (2L << 20) || bounce_arg % 4096 != 0) {
    std::fprintf(stderr, "probe_mapped_copy: BOUNCE_BYTES must be a multiple of 4 KiB from 4 KiB to 2 MiB\n");
    return 2;
  }
  const auto bounce_bytes = static_cast<size_t>(bounce_arg);
  const int fd = ::open(argv[1], O_RDONLY);
  if (fd < 0) die(std::string("opening ") + argv[1]);
  struct stat st {};
  if (::fstat(fd, &st) != 0) die("fstat");
  const size_t bytes = static_cast<size_t>(st.st_size) & ~size_t{4095};
  if (bytes == 0) {
    std::fprintf(stderr, "probe_mapped_copy: %s is smaller than 4 KiB\n", argv[1]);
    return 2;
  }
  void* d = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (d == MAP_FAILED) die("allocating the destination");
  auto* dst = static_cast<unsigned char*>(d);
  uint32_t expected = 0;
  {
    const Mapping m(fd, bytes);
    expected = cake::crc32c(m.data, bytes);
  }
  const double gib = static_cast<double>(bytes) / (1u << 30);
  std::printf("%s: %.2f GiB, crc32c %08x\n", argv[1], gib, expected);
  constexpr size_t kRequest = 1u << 20, kPiece = 2u << 20;
  for (int rep = 0; rep < 3; ++rep) {
    // One thread, mapped, each step apart.
    {
      const double t0 = now_s();
      double populate_s = 0, copy_s = 0;
      uint32_t crc = 0;
      double t2 = 0;
      {
        const Mapping m(fd, bytes);
        for (size_t at = 0; at < bytes; at += kRequest) {
          const size_t n = std::min(kRequest, bytes - at);
          const double a = now_s();
          populate(m.data + at, n);
          const double b = now_s();
          crc = cake::crc32c_copy(dst + at, m.data + at, n, crc, cake::CopyStores::streaming);
          copy_s += now_s() - b;
          populate_s += b - a;
        }
        t2 = now_s();
      }
      const double unmap_s = now_s() - t2;
      std::printf("map      1 thread : populate %6.1f ms, streaming copy+crc %6.1f ms, munmap %6.1f ms; %.1f Gbps without munmap%s\n",
                  populate_s * 1e3, copy_s * 1e3, unmap_s * 1e3, bytes * 8 / (t2 - t0) / 1e9, crc == expected ? "" : "  CRC MISMATCH");
      if (crc != expected) return 1;
    }
    // One thread, pread straight into the destination.
    {
      double read_s = 0, crc_s = 0;
      uint32_t crc = 0;
      for (size_t at = 0; at < bytes; at += kRequest) {
        const size_t n = std::min(kRequest, bytes - at);
        const double a = now_s();
        read_fully(fd, dst + at, n, at);
        const double b = now_s();
        crc = cake::crc32c(dst + at, n, crc);
        crc_s += now_s() - b;
        read_s += b - a;
      }
      std::printf("pread    1 thread : pread %6.1f ms, crc %6.1f ms; %.1f Gbps%s\n", read_s * 1e3, crc_s * 1e3,
                  bytes * 8 / (read_s + crc_s) / 1e9, crc == expected ? "" : "  CRC MISMATCH");
      if (crc != expected) return 1;
    }
    // T threads, mapped, interleaved 2 MiB pieces.
    {
      const auto stride = static_cast<size_t>(threads);
      const double t0 = now_s();
      double t1 = 0;
      std::vector<uint32_t> piece_crcs;
      {
        const Mapping m(fd, bytes);
        piece_crcs = run_pieces(threads, bytes, kPiece, [&](size_t t, std::vector<uint32_t>& crcs) {
          mapped_pieces(m, dst, kPiece, t, stride, crcs);
        });
        t1 = now_s();
      }
      const uint32_t crc = combined_crc(piece_crcs, bytes, kPiece);
      std::printf("map     %2d threads: %6.1f ms without munmap, %.1f Gbps%s\n", threads, (t1 - t0) * 1e3,
                  bytes * 8 / (t1 - t0) / 1e9, crc == expected ? "" : "  CRC MISMATCH");
      if (crc != expected) return 1;
    }
    // T threads, pread through a small buffer each, streaming copy into the destination.
    {
      const auto stride = static_cast<size_t>(threads);
      const double t0 = now_s();
      const std::vector<uint32_t> piece_crcs = run_pieces(threads, bytes, kPiece, [&](size_t t, std::vector<uint32_t>& crcs) {
        bounced_pieces(fd, bytes, dst, kPiece, bounce_bytes, t, stride, crcs);
      });
      const double t1 = now_s();
      const uint32_t crc = combined_crc(piece_crcs, bytes, kPiece);
      std::printf("bounce  %2d threads: %6.1f ms (%zu KiB buffer), %.1f Gbps%s\n", threads, (t1 - t0) * 1e3, bounce_bytes >> 10,
                  bytes * 8 / (t1 - t0) / 1e9, crc == expected ? "" : "  CRC MISMATCH");
      if (crc != expected) return 1;
    }
  }
  ::munmap(dst, bytes);
  ::close(fd);
  return 0;
}
