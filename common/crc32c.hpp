// CRC-32C (Castagnoli), the checksum of every KV chunk on disk and on the wire.
// Uses the SSE4.2 instruction when the CPU has it (three interleaved lanes, ~15 GB/s a core), and
// from 1 KiB on AVX-512 carry-less multiplies (VPCLMULQDQ) folding 256 bytes a step where the CPU
// has them (~40 GB/s a core on an AMD EPYC here); a table otherwise.
#pragma once

#include <cstddef>
#include <cstdint>

namespace cake {

// crc32c(data) when previous == 0; chaining: crc32c(b, crc32c(a)) == crc32c(a+b).
uint32_t crc32c(const void* data, size_t bytes, uint32_t previous = 0);

// How crc32c_copy() writes: `cached` for a destination read again soon (a staging piece the copy
// engine takes out of the last-level cache), `streaming` (non-temporal stores, fenced before the
// return) for one that is not, such as a host KV cache of gigabytes: the stores then skip the read
// for ownership of every destination line, a third of the memory traffic of a cached copy.
enum class CopyStores { cached, streaming };

// Copies `bytes` from src to dst (not overlapping) and returns crc32c(src, bytes, previous), in one
// pass over memory where the CPU folds with VPCLMULQDQ (each 64-byte block read once, stored and
// folded), else a copy and a checksum of the copy while it is in cache (and `stores` is ignored).
// For the file source's reader threads, which copy each piece out of a mapping and checksum it.
uint32_t crc32c_copy(void* dst, const void* src, size_t bytes, uint32_t previous = 0,
                     CopyStores stores = CopyStores::cached);

// The portable table version, exposed so tests can hold the fast path against it.
uint32_t crc32c_portable(const void* data, size_t bytes, uint32_t previous = 0);

bool crc32c_is_hardware();

// The CRC-32C of A followed by B from crc32c(A), crc32c(B) and B's length: lets pieces of one
// payload be checksummed apart (other threads, any order) and joined into the stored value.
uint32_t crc32c_combine(uint32_t crc_a, uint32_t crc_b, uint64_t bytes_b);

}  // namespace cake
