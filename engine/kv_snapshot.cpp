#include "engine/kv_snapshot.hpp"

#include <algorithm>
#include <cstring>

#include "common/crc32c.hpp"
#include "common/error.hpp"

#if defined(CAKE_HAVE_CUDA)
#include <cuda_runtime.h>

#include "common/cuda_check.hpp"
#endif

namespace cake {

void copy_chunk_out(const KvCacheView& view, int64_t first_token, int64_t n_tokens, std::span<std::byte> dst) {
  const size_t segment = view.segment_bytes(n_tokens);
  if (dst.size() < view.chunk_bytes(n_tokens))
    throw InternalError(cat("copy_chunk_out: buffer of ", dst.size(), " bytes for a chunk of ", view.chunk_bytes(n_tokens)));
  if (first_token < 0 || first_token + n_tokens > view.capacity_tokens)
    throw InternalError(cat("copy_chunk_out: tokens [", first_token, ", ", first_token + n_tokens, ") outside the cache of ",
                    view.capacity_tokens));
  for (int s = 0; s < 2 * view.layers; ++s) {
    std::byte* out = dst.data() + static_cast<size_t>(s) * segment;
    const std::byte* in = view.segment_ptr(s, first_token);
    if (view.memory == MemoryKind::host) {
      std::memcpy(out, in, segment);
    } else {
#if defined(CAKE_HAVE_CUDA)
      CAKE_CUDA(cudaMemcpy(out, in, segment, cudaMemcpyDeviceToHost),
                cat("reading KV segment ", s, " of tokens from ", first_token));
#else
      throw InternalError("copy_chunk_out: device KV cache in a build without CUDA");
#endif
    }
  }
}

std::vector<uint32_t> chunk_checksums(const KvCacheView& view, int64_t prefix_tokens, int32_t chunk_tokens) {
  std::vector<uint32_t> sums;
  std::vector<std::byte> buffer(view.chunk_bytes(chunk_tokens));
  for (int64_t first = 0; first < prefix_tokens; first += chunk_tokens) {
    const int64_t n = std::min<int64_t>(chunk_tokens, prefix_tokens - first);
    const std::span<std::byte> payload(buffer.data(), view.chunk_bytes(n));
    copy_chunk_out(view, first, n, payload);
    sums.push_back(crc32c(payload.data(), payload.size()));
  }
  return sums;
}

}  // namespace cake
