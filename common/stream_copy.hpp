// A copy whose destination is not read again on this core: non-temporal (streaming) stores, which
// skip the read-for-ownership of each destination line and leave the caches alone. For the file
// source's readers copying a store's pages out of a memory filesystem into pinned staging that
// the GPU's copy engine reads next: a plain copy moves each byte through memory three times
// (source read, destination read for ownership, destination write-back) before the DMA reads it
// a fourth; this one twice. On the H200 host, with the copy engine reading beside it, that was
// 1.4-1.6x the rate of read() into the same staging (results/h200/round5/).
#pragma once

#include <cstddef>

namespace cake {

// Copies `bytes` from `src` to `dst` (no overlap). Streaming stores where the CPU has them (x86-64:
// AVX-512 or SSE2) for the 64-byte-aligned body of `dst`; plain copies for the edges and elsewhere.
// Ends with a store fence, so the bytes are globally visible (to a DMA engine too) on return.
void copy_streaming(void* dst, const void* src, size_t bytes);

// Which kind copy_streaming() uses on this CPU: "avx512", "sse2" or "memcpy".
const char* copy_streaming_kind();

}  // namespace cake
