#include "common/crc32c.hpp"

#include <algorithm>
#include <array>
#include <cstring>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace cake {
namespace {

constexpr uint32_t kPoly = 0x82F63B78u;  // reflected Castagnoli polynomial

constexpr std::array<uint32_t, 256> make_table() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ kPoly : c >> 1;
    table[i] = c;
  }
  return table;
}
constexpr auto kTable = make_table();


}  // namespace

uint32_t crc32c_portable(const void* data, size_t bytes, uint32_t previous) {
  const auto* p = static_cast<const unsigned char*>(data);
  uint32_t crc = ~previous;
  while (bytes--) crc = kTable[(crc ^ *p++) & 0xFFu] ^ (crc >> 8);
  return ~crc;
}

bool crc32c_is_hardware() {
#if defined(__x86_64__)
  return __builtin_cpu_supports("sse4.2");
#else
  return false;
#endif
}

namespace {

// GF(2) polynomial arithmetic modulo the Castagnoli polynomial, bit-reflected as the CRC is
// (the top bit holds x^0). Appending n zero bytes to a message multiplies its raw remainder by
// x^(8n); the pre- and post-inversion of crc32c() cancel out in the combination below.
uint32_t multiply_mod_poly(uint32_t a, uint32_t b) {
  uint32_t product = 0;
  for (uint32_t bit = 1u << 31; bit != 0; bit >>= 1) {
    if (a & bit) product ^= b;
    b = (b & 1) ? (b >> 1) ^ kPoly : b >> 1;  // b *= x
  }
  return product;
}

// x^(2^k) mod P for k = 0..63, so x^(8n) takes one multiplication per set bit of 8n.
struct PowersOfX {
  std::array<uint32_t, 64> x_pow_2k{};
  PowersOfX() {
    x_pow_2k[0] = 1u << 30;  // x^1
    for (size_t k = 1; k < x_pow_2k.size(); ++k) x_pow_2k[k] = multiply_mod_poly(x_pow_2k[k - 1], x_pow_2k[k - 1]);
  }
};

uint32_t x_pow_8n(uint64_t bytes) {
  static const PowersOfX powers;
  uint32_t result = 1u << 31;  // x^0
  // 8n = n << 3: bit j of n is bit j+3 of the exponent.
  for (size_t k = 3; bytes != 0 && k < 64; ++k, bytes >>= 1)
    if (bytes & 1) result = multiply_mod_poly(powers.x_pow_2k[k], result);
  return result;
}

}  // namespace

uint32_t crc32c_combine(uint32_t crc_a, uint32_t crc_b, uint64_t bytes_b) {
  return multiply_mod_poly(x_pow_8n(bytes_b), crc_a) ^ crc_b;
}

#if defined(__x86_64__)
namespace {

// One crc32 instruction retires per cycle but each depends on the last (3 cycles): three
// independent lanes over adjacent ranges keep the unit busy, and are joined by the shifts above.
constexpr size_t kLaneBytes = 16384;

__attribute__((target("sse4.2"))) uint64_t crc32c_words(uint64_t crc, const unsigned char* p, size_t bytes) {
  for (; bytes >= 8; bytes -= 8, p += 8) {
    uint64_t word;
    std::memcpy(&word, p, 8);
    crc = __builtin_ia32_crc32di(crc, word);
  }
  return crc;
}

__attribute__((target("sse4.2"))) uint32_t crc32c_sse42(const void* data, size_t bytes, uint32_t previous) {
  static const uint32_t shift_one_lane = x_pow_8n(kLaneBytes);
  static const uint32_t shift_two_lanes = x_pow_8n(2 * kLaneBytes);
  const auto* p = static_cast<const unsigned char*>(data);
  uint64_t crc = static_cast<uint32_t>(~previous);
  while (bytes >= 3 * kLaneBytes) {
    uint64_t c0 = crc, c1 = 0, c2 = 0;  // raw states; lanes 1 and 2 start from zero
    const unsigned char* p1 = p + kLaneBytes;
    const unsigned char* p2 = p + 2 * kLaneBytes;
    for (size_t i = 0; i < kLaneBytes; i += 8) {
      uint64_t w0, w1, w2;
      std::memcpy(&w0, p + i, 8);
      std::memcpy(&w1, p1 + i, 8);
      std::memcpy(&w2, p2 + i, 8);
      c0 = __builtin_ia32_crc32di(c0, w0);
      c1 = __builtin_ia32_crc32di(c1, w1);
      c2 = __builtin_ia32_crc32di(c2, w2);
    }
    // The raw state is linear: state(A B) = state(A) * x^(8|B|) + state_from_zero(B).
    crc = multiply_mod_poly(shift_two_lanes, static_cast<uint32_t>(c0)) ^
          multiply_mod_poly(shift_one_lane, static_cast<uint32_t>(c1)) ^ static_cast<uint32_t>(c2);
    p += 3 * kLaneBytes;
    bytes -= 3 * kLaneBytes;
  }
  crc = crc32c_words(crc, p, bytes);
  p += bytes & ~size_t{7};
  bytes &= 7;
  auto c32 = static_cast<uint32_t>(crc);
  while (bytes--) c32 = __builtin_ia32_crc32qi(c32, *p++);
  return ~c32;
}

// ---- 512-bit carry-less folding (AVX-512 VPCLMULQDQ) ----
// The message is folded 256 bytes at a time into four 512-bit accumulators (sixteen 16-byte
// blocks), each block V (a polynomial of degree < 128, bit k of the register holding degree
// 127 - k, as the reflected CRC reads bytes) moved F bytes on by V * x^(8F) mod P: its first 8
// bytes (degrees 127..64) times x^(8F+64) and its last 8 bytes times x^(8F), each a carry-less
// multiply by a 32-bit constant; a reflected carry-less product carries one extra factor x, so the
// constants are x^(8F+63) and x^(8F-1). What is left is one 16-byte block congruent to the whole
// prefix, which the crc32 instruction reduces (from a zero state), then the tail.
uint32_t x_pow_mod(uint64_t exponent) {
  static const PowersOfX powers;
  uint32_t result = 1u << 31;  // x^0
  for (size_t k = 0; exponent != 0 && k < 64; ++k, exponent >>= 1)
    if (exponent & 1) result = multiply_mod_poly(powers.x_pow_2k[k], result);
  return result;
}

// The pair of constants that moves a 16-byte block F bytes on, as one 128-bit lane: the first
// 8 bytes' constant in the low quadword. A degree-d constant (d < 32) sits at bit 63 - d.
struct FoldConstants {
  uint64_t first = 0;
  uint64_t second = 0;
  explicit FoldConstants(uint64_t f_bytes)
      : first(uint64_t{x_pow_mod(8 * f_bytes + 63)} << 32), second(uint64_t{x_pow_mod(8 * f_bytes - 1)} << 32) {}
};

#define CAKE_VPCLMUL_TARGET __attribute__((target("avx512f,avx512vl,avx512bw,vpclmulqdq,pclmul,sse4.2")))

CAKE_VPCLMUL_TARGET inline __m512i fold512(__m512i x, __m512i k) {
  return _mm512_xor_si512(_mm512_clmulepi64_epi128(x, k, 0x00), _mm512_clmulepi64_epi128(x, k, 0x11));
}
CAKE_VPCLMUL_TARGET inline __m128i fold128(__m128i x, __m128i k) {
  return _mm_xor_si128(_mm_clmulepi64_si128(x, k, 0x00), _mm_clmulepi64_si128(x, k, 0x11));
}
CAKE_VPCLMUL_TARGET inline __m512i lanes512(const FoldConstants& c) {
  const auto first = static_cast<long long>(c.first);
  const auto second = static_cast<long long>(c.second);
  return _mm512_set_epi64(second, first, second, first, second, first, second, first);  // every 128-bit lane
}
CAKE_VPCLMUL_TARGET inline __m128i lane128(const FoldConstants& c) {
  return _mm_set_epi64x(static_cast<long long>(c.second), static_cast<long long>(c.first));
}

constexpr size_t kFoldMinBytes = 1024;  // below this the three crc32 lanes are as fast

// What the fold does with each block besides checksumming it (crc32c_copy()'s CopyStores, or none).
enum class BlockStores { none, cached, streaming };

// One 64- or 16-byte block of the message; unless kStores is none, also stored at `d` (the copy's
// same offset): cached, or streaming (non-temporal, which needs `d` aligned to the block's size).
template <BlockStores kStores>
CAKE_VPCLMUL_TARGET inline __m512i take512(const unsigned char* p, unsigned char* d) {
  const __m512i v = _mm512_loadu_si512(p);
  if constexpr (kStores == BlockStores::cached) _mm512_storeu_si512(d, v);
  if constexpr (kStores == BlockStores::streaming) _mm512_stream_si512(reinterpret_cast<__m512i*>(d), v);
  return v;
}
template <BlockStores kStores>
CAKE_VPCLMUL_TARGET inline __m128i take128(const unsigned char* p, unsigned char* d) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  if constexpr (kStores == BlockStores::cached) _mm_storeu_si128(reinterpret_cast<__m128i*>(d), v);
  if constexpr (kStores == BlockStores::streaming) _mm_stream_si128(reinterpret_cast<__m128i*>(d), v);
  return v;
}

// The CRC of `bytes` (at least 256) at `data`; unless kStores is none,, each block read is also
// stored to `dst`, so a copy and its checksum take one pass over memory instead of two
// (crc32c_copy()). Streaming stores need `dst` aligned to 64 bytes and are not fenced here.
template <BlockStores kStores>
CAKE_VPCLMUL_TARGET uint32_t crc32c_vpclmul(unsigned char* dst, const void* data, size_t bytes, uint32_t previous) {
  static const FoldConstants k256(256), k192(192), k128(128), k64(64), k48(48), k32(32), k16(16);
  const auto* p = static_cast<const unsigned char*>(data);
  constexpr bool kCopy = kStores != BlockStores::none;
  unsigned char* d = dst;
  __m512i x0 = take512<kStores>(p, d);
  __m512i x1 = take512<kStores>(p + 64, d + 64);
  __m512i x2 = take512<kStores>(p + 128, d + 128);
  __m512i x3 = take512<kStores>(p + 192, d + 192);
  // A starting state s is the same as s xored into the message's first 4 bytes from state 0.
  x0 = _mm512_xor_si512(x0, _mm512_castsi128_si512(_mm_cvtsi32_si128(static_cast<int>(~previous))));
  p += 256;
  d += kCopy ? 256 : 0;
  bytes -= 256;
  const __m512i f256 = lanes512(k256);
  while (bytes >= 256) {
    x0 = _mm512_xor_si512(fold512(x0, f256), take512<kStores>(p, d));
    x1 = _mm512_xor_si512(fold512(x1, f256), take512<kStores>(p + 64, d + 64));
    x2 = _mm512_xor_si512(fold512(x2, f256), take512<kStores>(p + 128, d + 128));
    x3 = _mm512_xor_si512(fold512(x3, f256), take512<kStores>(p + 192, d + 192));
    p += 256;
    d += kCopy ? 256 : 0;
    bytes -= 256;
  }
  __m512i x = _mm512_xor_si512(_mm512_xor_si512(fold512(x0, lanes512(k192)), fold512(x1, lanes512(k128))),
                               _mm512_xor_si512(fold512(x2, lanes512(k64)), x3));
  const __m512i f64 = lanes512(k64);
  while (bytes >= 64) {
    x = _mm512_xor_si512(fold512(x, f64), take512<kStores>(p, d));
    p += 64;
    d += kCopy ? 64 : 0;
    bytes -= 64;
  }
  alignas(64) __m128i block[4];  // the accumulator's four 16-byte blocks, 48, 32, 16, 0 bytes from the end
  _mm512_store_si512(block, x);
  __m128i y = _mm_xor_si128(_mm_xor_si128(fold128(block[0], lane128(k48)), fold128(block[1], lane128(k32))),
                            _mm_xor_si128(fold128(block[2], lane128(k16)), block[3]));
  const __m128i f16 = lane128(k16);
  while (bytes >= 16) {
    y = _mm_xor_si128(fold128(y, f16), take128<kStores>(p, d));
    p += 16;
    d += kCopy ? 16 : 0;
    bytes -= 16;
  }
  uint64_t state = __builtin_ia32_crc32di(0, static_cast<uint64_t>(_mm_cvtsi128_si64(y)));
  state = __builtin_ia32_crc32di(state, static_cast<uint64_t>(_mm_extract_epi64(y, 1)));
  auto c32 = static_cast<uint32_t>(state);
  if constexpr (kCopy) std::memcpy(d, p, bytes);  // the last 0-15 bytes
  for (; bytes >= 8; bytes -= 8, p += 8) {
    uint64_t word;
    std::memcpy(&word, p, 8);
    c32 = static_cast<uint32_t>(__builtin_ia32_crc32di(c32, word));
  }
  while (bytes--) c32 = __builtin_ia32_crc32qi(c32, *p++);
  return ~c32;
}

bool vpclmul_usable() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
         __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("vpclmulqdq") &&
         __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse4.2");
}

}  // namespace
#endif

uint32_t crc32c(const void* data, size_t bytes, uint32_t previous) {
#if defined(__x86_64__)
  static const bool hardware = crc32c_is_hardware();  // immutable after first call
  static const bool folding = hardware && vpclmul_usable();
  if (folding && bytes >= kFoldMinBytes) return crc32c_vpclmul<BlockStores::none>(nullptr, data, bytes, previous);
  if (hardware) return crc32c_sse42(data, bytes, previous);
#endif
  return crc32c_portable(data, bytes, previous);
}

uint32_t crc32c_copy(void* dst, const void* src, size_t bytes, uint32_t previous, CopyStores stores) {
  auto* d = static_cast<unsigned char*>(dst);
  const auto* p = static_cast<const unsigned char*>(src);
#if defined(__x86_64__)
  static const bool folding = crc32c_is_hardware() && vpclmul_usable();
  if (folding && stores == CopyStores::streaming) {
    // The bytes up to dst's next 64-byte boundary with plain stores, so every streaming store is
    // aligned; the fence makes the streamed bytes visible to whoever is told the copy is done.
    const size_t head = std::min(bytes, (64 - (reinterpret_cast<uintptr_t>(d) & 63)) & 63);
    std::memcpy(d, p, head);
    uint32_t crc = crc32c(p, head, previous);
    if (bytes - head >= kFoldMinBytes) {
      crc = crc32c_vpclmul<BlockStores::streaming>(d + head, p + head, bytes - head, crc);
      _mm_sfence();
      return crc;
    }
    std::memcpy(d + head, p + head, bytes - head);
    return crc32c(p + head, bytes - head, crc);
  }
  if (folding && bytes >= kFoldMinBytes) return crc32c_vpclmul<BlockStores::cached>(d, p, bytes, previous);
#else
  (void)stores;
#endif
  // Without the folding unit: copy, then checksum the copy while it is in cache, in 64 KiB steps.
  constexpr size_t kStep = 64 << 10;
  uint32_t crc = previous;
  for (size_t at = 0; at < bytes; at += kStep) {
    const size_t n = std::min(kStep, bytes - at);
    std::memcpy(d + at, p + at, n);
    crc = crc32c(d + at, n, crc);
  }
  return crc;
}

}  // namespace cake
