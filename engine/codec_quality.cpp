#include "engine/codec_quality.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <thread>

#include "common/error.hpp"
#include "common/sysinfo.hpp"
#include "loaders/kv_codec.hpp"

#if defined(CAKE_HAVE_CUDA)
#include <cuda_runtime.h>

#include "common/cuda_check.hpp"
#endif

namespace cake {
namespace {

void copy_out(const KvCacheView& view, int segment, size_t bytes, std::byte* dst) {
  const std::byte* src = view.segment_ptr(segment, 0);
  if (view.memory == MemoryKind::host) {
    std::memcpy(dst, src, bytes);
    return;
  }
#if defined(CAKE_HAVE_CUDA)
  CAKE_CUDA(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost), cat("reading KV segment ", segment, " for the codec quality"));
#else
  throw InternalError("codec quality: a device KV cache in a build without CUDA");
#endif
}

}  // namespace

KvHostCopy copy_prefix_kv(const KvCacheView& view, int64_t prefix_tokens) {
  if (prefix_tokens < 0 || prefix_tokens > view.capacity_tokens)
    throw InternalError(cat("codec quality: prefix of ", prefix_tokens, " tokens, the cache holds ", view.capacity_tokens));
  KvHostCopy out;
  out.tokens = prefix_tokens;
  out.dtype = view.dtype;
  const size_t bytes = view.segment_bytes(prefix_tokens);
  for (int s = 0; s < 2 * view.layers; ++s) {
    out.segments.emplace_back(bytes);
    copy_out(view, s, bytes, out.segments.back().data());
  }
  return out;
}

KvRelError kv_rel_error(const KvCacheView& view, const KvHostCopy& reference) {
  if (reference.segments.size() != static_cast<size_t>(2 * view.layers) || reference.dtype != view.dtype)
    throw InternalError("codec quality: the reference KV copy does not match the cache's shape");
  const size_t bytes = view.segment_bytes(reference.tokens);
  const size_t values = bytes / dtype_bytes(view.dtype);
  const int segments = 2 * view.layers;
  std::vector<double> diff2(static_cast<size_t>(segments)), ref2(static_cast<size_t>(segments));
  std::vector<std::vector<std::byte>> got(static_cast<size_t>(segments));
  for (int s = 0; s < segments; ++s) {  // device reads on this thread (the current device is bound here)
    got[static_cast<size_t>(s)].resize(bytes);
    copy_out(view, s, bytes, got[static_cast<size_t>(s)].data());
  }
  const int threads = std::min(available_cores(), 64);
  auto work = [&](int first) {
    for (int s = first; s < segments; s += threads) {
      const std::byte* a = got[static_cast<size_t>(s)].data();
      const std::byte* b = reference.segments[static_cast<size_t>(s)].data();
      double d2 = 0, r2 = 0;
      for (size_t i = 0; i < values; ++i) {
        const double x = load_kv_value(a, view.dtype, i);
        const double y = load_kv_value(b, view.dtype, i);
        d2 += (x - y) * (x - y);
        r2 += y * y;
      }
      diff2[static_cast<size_t>(s)] = d2;
      ref2[static_cast<size_t>(s)] = r2;
    }
  };
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) pool.emplace_back(work, t);
  for (std::thread& t : pool) t.join();
  double kd = 0, kr = 0, vd = 0, vr = 0;
  for (int s = 0; s < segments; ++s) {
    (s % 2 == 0 ? kd : vd) += diff2[static_cast<size_t>(s)];
    (s % 2 == 0 ? kr : vr) += ref2[static_cast<size_t>(s)];
  }
  return {kr > 0 ? std::sqrt(kd / kr) : std::sqrt(kd), vr > 0 ? std::sqrt(vd / vr) : std::sqrt(vd)};
}

double logits_rel_error(const std::vector<float>& got, const std::vector<float>& want) {
  if (got.size() != want.size())
    throw InternalError(cat("codec quality: ", got.size(), " logits against ", want.size()));
  double diff2 = 0, ref2 = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double d = static_cast<double>(got[i]) - want[i];
    diff2 += d * d;
    ref2 += static_cast<double>(want[i]) * want[i];
  }
  return ref2 > 0 ? std::sqrt(diff2 / ref2) : std::sqrt(diff2);
}

}  // namespace cake
