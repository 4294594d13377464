// load_checkpoint: whole files in large aligned reads (O_DIRECT where the filesystem allows it),
// CRC-32C over everything read, then the tensors handed to the backend's sink.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>

#include "common/crc32c.hpp"
#include "common/error.hpp"
#include "common/fd.hpp"
#include "common/hash.hpp"
#include "kernels/checkpoint/checkpoint.hpp"

namespace cake::ckpt {
namespace {

constexpr size_t kAlign = 4096;

size_t round_up(size_t v, size_t to) { return (v + to - 1) / to * to; }

// Reads all of `path` (file_bytes long) into dst, which holds round_up(file_bytes, 4096) bytes.
// Returns whether O_DIRECT was used throughout.
using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

bool read_whole_file(const std::string& path, uint64_t file_bytes, std::byte* dst, const LoadOptions& o,
                     uint64_t& done_total, uint64_t all_bytes, uint32_t& crc, LoadStats& stats) {
  UniqueFd fd;
  bool direct = false;
  if (o.try_o_direct) {
    fd.reset(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_DIRECT));
    direct = fd.valid();
  }
  if (!fd.valid()) fd.reset(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) throw Error(cat("opening ", path, ": ", errno_text(errno)));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) throw Error(cat("fstat ", path, ": ", errno_text(errno)));
  if (static_cast<uint64_t>(st.st_size) != file_bytes)
    throw Error(cat(path, ": the file changed size since its header was read (", file_bytes, " -> ", st.st_size,
                    " bytes)"));
  const size_t request = round_up(std::max<size_t>(o.read_bytes, kAlign), kAlign);
  uint64_t at = 0;
  while (at < file_bytes) {
    // Aligned offset and length; the last request may run past the end and come back short.
    const size_t want = static_cast<size_t>(std::min<uint64_t>(request, round_up(file_bytes - at, kAlign)));
    const auto read_start = Clock::now();
    const ssize_t got = ::pread(fd.get(), dst + at, want, static_cast<off_t>(at));
    stats.read_seconds += since(read_start);
    if (got < 0) {
      if (errno == EINTR) continue;
      if (errno == EINVAL && direct) {  // this filesystem takes the O_DIRECT open but not the read
        fd.reset(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
        if (!fd.valid()) throw Error(cat("reopening ", path, " without O_DIRECT: ", errno_text(errno)));
        direct = false;
        continue;
      }
      throw Error(cat("reading ", path, " at byte ", at, ": ", errno_text(errno)));
    }
    if (got == 0) throw Error(cat("reading ", path, ": end of file at byte ", at, " of ", file_bytes, " (truncated while loading)"));
    const size_t useful = static_cast<size_t>(std::min<uint64_t>(static_cast<uint64_t>(got), file_bytes - at));
    const auto crc_start = Clock::now();
    crc = crc32c(dst + at, useful, crc);
    stats.crc_seconds += since(crc_start);
    at += useful;
    done_total += useful;
    if (o.progress) o.progress(done_total, all_bytes);
  }
  return direct;
}

}  // namespace

LoadStats load_checkpoint(const Checkpoint& c, WeightSink& sink, const LoadOptions& o) {
  const auto start = Clock::now();
  LoadStats stats;
  stats.o_direct = true;
  uint64_t done = 0;
  uint64_t h = fnv1a64(c.header_fingerprint);
  for (size_t fi = 0; fi < c.files.size(); ++fi) {
    const SafetensorsHeader& f = c.files[fi];
    const auto buffer_start = Clock::now();
    std::byte* buffer = sink.file_buffer(round_up(f.file_bytes, kAlign));
    stats.buffer_seconds += since(buffer_start);
    if (reinterpret_cast<uintptr_t>(buffer) % kAlign != 0)
      throw Error(cat("loading ", f.path, ": the backend's buffer is not ", kAlign, "-byte aligned"));
    uint32_t crc = 0;
    stats.o_direct = read_whole_file(f.path, f.file_bytes, buffer, o, done, c.file_bytes, crc, stats) && stats.o_direct;
    h = fnv1a64(cat(f.file_bytes, ":", crc, ";"), h);
    const auto hand_over_start = Clock::now();
    for (const TensorSlot& s : c.slots)
      if (s.file == static_cast<int>(fi)) sink.tensor(s, buffer + f.data_offset + s.entry.begin);
    sink.file_done();
    stats.hand_over_seconds += since(hand_over_start);
  }
  stats.bytes_read = done;
  stats.content_fingerprint = hex64(h);
  stats.seconds = since(start);
  return stats;
}

std::string load_summary(const LoadStats& s) {
  char text[256];
  std::snprintf(text, sizeof text, "%llu bytes in %.3f s (%.2f GB/s) %s (buffer %.3f s, read %.3f s, crc %.3f s, convert+copy %.3f s)",
                static_cast<unsigned long long>(s.bytes_read), s.seconds, s.seconds > 0 ? s.bytes_read / s.seconds / 1e9 : 0.0,
                s.o_direct ? "with O_DIRECT" : "buffered", s.buffer_seconds, s.read_seconds, s.crc_seconds,
                s.hand_over_seconds);
  return text;
}

float half_to_float(uint16_t x) {
  const uint32_t sign = static_cast<uint32_t>(x & 0x8000u) << 16;
  const uint32_t exponent = (x >> 10) & 0x1Fu;
  uint32_t mantissa = x & 0x3FFu;
  uint32_t bits;
  if (exponent == 0x1F) {
    bits = sign | 0x7F800000u | (mantissa << 13);  // inf, NaN
  } else if (exponent != 0) {
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {
    bits = sign;  // +-0
  } else {        // subnormal half: normalise
    int e = -1;
    do {
      ++e;
      mantissa <<= 1;
    } while ((mantissa & 0x400u) == 0);
    bits = sign | (static_cast<uint32_t>(112 - e) << 23) | ((mantissa & 0x3FFu) << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

float bf16_to_float(uint16_t b) {
  const uint32_t bits = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t float_to_bf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if ((bits & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((bits >> 16) | 0x40u);  // quiet NaN
  bits += 0x7FFFu + ((bits >> 16) & 1u);  // round to nearest, ties to even
  return static_cast<uint16_t>(bits >> 16);
}

void convert_to_f32(TensorDType dtype, const std::byte* src, uint64_t n, float* dst) {
  switch (dtype) {
    case TensorDType::f32:
      std::memcpy(dst, src, n * 4);
      return;
    case TensorDType::bf16:
    case TensorDType::f16:
      for (uint64_t i = 0; i < n; ++i) {
        uint16_t v;
        std::memcpy(&v, src + 2 * i, 2);
        dst[i] = dtype == TensorDType::bf16 ? bf16_to_float(v) : half_to_float(v);
      }
      return;
    case TensorDType::other: break;
  }
  throw Error("convert_to_f32: unsupported dtype");
}

void convert_to_bf16_in_place(TensorDType dtype, std::byte* data, uint64_t n) {
  switch (dtype) {
    case TensorDType::bf16: return;
    case TensorDType::f16:
      for (uint64_t i = 0; i < n; ++i) {
        uint16_t v;
        std::memcpy(&v, data + 2 * i, 2);
        const uint16_t b = float_to_bf16(half_to_float(v));
        std::memcpy(data + 2 * i, &b, 2);
      }
      return;
    case TensorDType::f32:
      // Forward order: element i is read from [4i, 4i+4) before [2i, 2i+2) is written, and every
      // later write lands below every later read.
      for (uint64_t i = 0; i < n; ++i) {
        float f;
        std::memcpy(&f, data + 4 * i, 4);
        const uint16_t b = float_to_bf16(f);
        std::memcpy(data + 2 * i, &b, 2);
      }
      return;
    case TensorDType::other: break;
  }
  throw Error("convert_to_bf16_in_place: unsupported dtype");
}

}  // namespace cake::ckpt
