// The CRC-32C kernels of the GPU checksum (crc32c_gpu.hpp), apart from their launches so that two
// compilers build them: nvcc (crc32c_gpu.cu) and, in CI without a GPU, the host compiler under
// tests/loaders/emulated_cuda.hpp (test_crc32c_emulated.cpp), which holds them against crc32c() of
// common/crc32c.hpp on every CI run. Include the CUDA runtime (or the emulation) first.
//
// How: the payload is the concatenation of up to kMaxSpans device spans. Block (x, y) takes tile x
// (kTileBytes) of span y; each of its threads runs the table CRC (slice-by-8, tables in shared
// memory) over kThreadBytes of the tile from a zero state. The CRC register is linear over GF(2):
// state(A B) = state(A) * x^(8|B|) + state_from_zero(B) (mod P). So each thread's raw state is
// moved to the tile's end (times x^(8 * bytes after it in the tile)), the block XORs them, moves
// the sum to the payload's end (times x^(8 * bytes after the tile)) and XORs it into one
// accumulator. finish_kernel adds the initial state ~0 moved over the whole payload and inverts:
// exactly crc32c(payload) as the CPU computes it.
#pragma once

#include <cstdint>
#include <vector>

namespace cake::crc_kernels {
// Internal linkage: the .cu and the emulated test each have their own copy.
namespace {

inline constexpr uint32_t kPoly = 0x82F63B78u;  // reflected Castagnoli polynomial, as common/crc32c.cpp
inline constexpr uint32_t kOne = 1u << 31;      // x^0 in the reflected representation
inline constexpr int kThreads = 256;
// 512 bytes a thread: the two GF(2) products a thread pays for its share are ~15% of its table
// work; a 128 KiB tile keeps ~1000 blocks busy for a 128 MiB chunk of 2 MiB segments.
inline constexpr int kThreadBytes = 512;
inline constexpr uint64_t kTileBytes = static_cast<uint64_t>(kThreads) * kThreadBytes;
// The spans travel in the kernel's arguments (4 KiB at most): 256 pointers and 32-bit lengths.
inline constexpr int kMaxSpans = 256;

// Spans up to 2 GiB each (longer ones are cut), so a tile index and a length fit 32 bits.
inline constexpr uint64_t kMaxSpanBytes = 1ull << 31;

struct Spans {
  const uint8_t* data[kMaxSpans];
  uint32_t bytes[kMaxSpans];
  uint32_t count;
  uint64_t bytes_after;  // payload bytes after this launch's last span (in later launches)
};

// Uploaded once (crc32c_gpu.cu: device memory); the blocks copy the slicing tables to shared memory.
struct Tables {
  uint32_t slice[8][256];            // slice[k][b]: byte b followed by k zero bytes
  uint32_t x_pow_2k[64];             // x^(2^k) mod P
  uint32_t thread_shift[kThreads];   // x^(8 * kThreadBytes * (kThreads - 1 - t)): thread t to a full tile's end
};

// a * b mod P, reflected (common/crc32c.cpp's multiply_mod_poly).
__host__ __device__ inline uint32_t gf_multiply(uint32_t a, uint32_t b) {
  uint32_t product = 0;
  for (int i = 0; i < 32; ++i) {
    product ^= b & (0u - (a >> 31));  // a's top bit is x^0
    a <<= 1;
    b = (b >> 1) ^ (kPoly & (0u - (b & 1u)));  // b *= x
  }
  return product;
}

// x^(8 * bytes) mod P from the powers x^(2^k).
__host__ __device__ inline uint32_t x_pow_8n(const uint32_t* x_pow_2k, uint64_t bytes) {
  uint32_t result = kOne;
  for (int k = 3; bytes != 0 && k < 64; ++k, bytes >>= 1)
    if (bytes & 1u) result = gf_multiply(x_pow_2k[k], result);
  return result;
}

// The tables, computed on the host.
inline void make_tables(Tables& t) {
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1u) ? (c >> 1) ^ kPoly : c >> 1;
    t.slice[0][i] = c;
  }
  for (int k = 1; k < 8; ++k)
    for (uint32_t i = 0; i < 256; ++i) {
      const uint32_t prev = t.slice[k - 1][i];
      t.slice[k][i] = (prev >> 8) ^ t.slice[0][prev & 0xFFu];
    }
  t.x_pow_2k[0] = kOne >> 1;  // x^1
  for (int k = 1; k < 64; ++k) t.x_pow_2k[k] = gf_multiply(t.x_pow_2k[k - 1], t.x_pow_2k[k - 1]);
  for (int i = 0; i < kThreads; ++i)
    t.thread_shift[i] = x_pow_8n(t.x_pow_2k, static_cast<uint64_t>(kThreadBytes) * static_cast<uint64_t>(kThreads - 1 - i));
}

__device__ inline uint32_t step_byte(const uint32_t (*slice)[256], uint32_t crc, uint32_t byte) {
  return slice[0][(crc ^ byte) & 0xFFu] ^ (crc >> 8);
}

// Eight bytes, little-endian words lo (bytes 0..3) and hi (4..7).
__device__ inline uint32_t step_8(const uint32_t (*slice)[256], uint32_t crc, uint32_t lo, uint32_t hi) {
  crc ^= lo;
  return slice[7][crc & 0xFFu] ^ slice[6][(crc >> 8) & 0xFFu] ^ slice[5][(crc >> 16) & 0xFFu] ^ slice[4][crc >> 24] ^
         slice[3][hi & 0xFFu] ^ slice[2][(hi >> 8) & 0xFFu] ^ slice[1][(hi >> 16) & 0xFFu] ^ slice[0][hi >> 24];
}

// The raw CRC state of [p, p + n) from a zero state: bytes up to a 16-byte boundary, 16-byte
// loads, then the tail.
__device__ inline uint32_t raw_crc(const uint32_t (*slice)[256], const uint8_t* p, uint32_t n) {
  uint32_t crc = 0;
  while (n > 0 && (reinterpret_cast<uintptr_t>(p) & 15u) != 0) {
    crc = step_byte(slice, crc, *p++);
    --n;
  }
  const uint4* q = reinterpret_cast<const uint4*>(p);
  for (; n >= 16; n -= 16, ++q) {
    const uint4 v = *q;
    crc = step_8(slice, crc, v.x, v.y);
    crc = step_8(slice, crc, v.z, v.w);
  }
  p = reinterpret_cast<const uint8_t*>(q);
  while (n > 0) {
    crc = step_byte(slice, crc, *p++);
    --n;
  }
  return crc;
}

// Grid: x = tiles of the longest span, y = spans; `accumulator` zero before the launch.
__global__ void tiles_kernel(Spans spans, const Tables* __restrict__ tables, uint32_t* __restrict__ accumulator) {
  __shared__ uint32_t slice[8][256];
  __shared__ uint32_t block_sum;
  const uint32_t span = blockIdx.y;
  const uint64_t span_bytes = spans.bytes[span];
  const uint64_t tile_begin = static_cast<uint64_t>(blockIdx.x) * kTileBytes;
  if (tile_begin >= span_bytes) return;  // a shorter span than the longest: the whole block leaves
  for (uint32_t i = threadIdx.x; i < 8 * 256; i += blockDim.x) slice[i / 256][i % 256] = tables->slice[i / 256][i % 256];
  if (threadIdx.x == 0) block_sum = 0;
  __syncthreads();
  const uint64_t tile_bytes = span_bytes - tile_begin < kTileBytes ? span_bytes - tile_begin : kTileBytes;
  const uint64_t begin = static_cast<uint64_t>(threadIdx.x) * kThreadBytes;
  if (begin < tile_bytes) {
    const uint64_t end = begin + kThreadBytes < tile_bytes ? begin + kThreadBytes : tile_bytes;
    const uint32_t raw = raw_crc(slice, spans.data[span] + tile_begin + begin, static_cast<uint32_t>(end - begin));
    const uint32_t to_tile_end =
        tile_bytes == kTileBytes ? tables->thread_shift[threadIdx.x] : x_pow_8n(tables->x_pow_2k, tile_bytes - end);
    atomicXor(&block_sum, gf_multiply(raw, to_tile_end));
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    uint64_t after = span_bytes - tile_begin - tile_bytes + spans.bytes_after;
    for (uint32_t s = span + 1; s < spans.count; ++s) after += spans.bytes[s];
    atomicXor(accumulator, gf_multiply(block_sum, x_pow_8n(tables->x_pow_2k, after)));
  }
}

// One thread: the CRC-32C of the whole `total_bytes` payload into *crc, and the accumulator back
// to zero for the next payload.
__global__ void finish_kernel(const Tables* __restrict__ tables, uint32_t* __restrict__ accumulator, uint64_t total_bytes,
                              uint32_t* __restrict__ crc) {
  if (threadIdx.x != 0 || blockIdx.x != 0) return;
  const uint32_t initial = gf_multiply(0xFFFFFFFFu, x_pow_8n(tables->x_pow_2k, total_bytes));
  *crc = ~(initial ^ *accumulator);
  *accumulator = 0;
}

// A device span of the payload, as the host describes it.
struct HostSpan {
  const uint8_t* data = nullptr;
  uint64_t bytes = 0;
};

// The launches of tiles_kernel for `spans` in payload order: empty spans dropped, long ones cut,
// at most kMaxSpans a launch, each knowing the bytes after it. `total_bytes` gets the payload size.
inline std::vector<Spans> plan_launches(const HostSpan* spans, size_t count, uint64_t& total_bytes) {
  std::vector<Spans> launches;
  total_bytes = 0;
  for (size_t i = 0; i < count; ++i) {
    for (uint64_t at = 0; at < spans[i].bytes;) {
      const uint64_t n = spans[i].bytes - at < kMaxSpanBytes ? spans[i].bytes - at : kMaxSpanBytes;
      if (launches.empty() || launches.back().count == kMaxSpans) {
        launches.emplace_back();
        launches.back().count = 0;
      }
      Spans& l = launches.back();
      l.data[l.count] = spans[i].data + at;
      l.bytes[l.count] = static_cast<uint32_t>(n);
      ++l.count;
      at += n;
      total_bytes += n;
    }
  }
  uint64_t after = 0;
  for (size_t i = launches.size(); i-- > 0;) {
    launches[i].bytes_after = after;
    for (uint32_t s = 0; s < launches[i].count; ++s) after += launches[i].bytes[s];
  }
  return launches;
}

// Blocks along x for a launch: the tiles of its longest span.
inline uint32_t tiles_of_longest(const Spans& launch) {
  uint64_t longest = 0;
  for (uint32_t s = 0; s < launch.count; ++s) longest = launch.bytes[s] > longest ? launch.bytes[s] : longest;
  return static_cast<uint32_t>((longest + kTileBytes - 1) / kTileBytes);
}

}  // namespace
}  // namespace cake::crc_kernels
