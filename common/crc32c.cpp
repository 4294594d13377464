#include "common/crc32c.hpp"

#include <array>
#include <cstring>

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

}  // namespace
#endif

uint32_t crc32c(const void* data, size_t bytes, uint32_t previous) {
#if defined(__x86_64__)
  static const bool hardware = crc32c_is_hardware();  // immutable after first call
  if (hardware) return crc32c_sse42(data, bytes, previous);
#endif
  return crc32c_portable(data, bytes, previous);
}

}  // namespace cake
