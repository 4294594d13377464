// The compiled attention tilings and the launcher bound to a device.
#include "kernels/cuda/attention.hpp"

#include "common/cuda_check.hpp"
#include "common/error.hpp"
#include "kernels/cuda/attention_kernel.cuh"

namespace cake::cuda {
namespace {

using LaunchFn = void (*)(const AttentionArgs&, dim3 grid, size_t smem_bytes, cudaStream_t stream);

struct Compiled {
  int head_dim;
  AttentionTiling tiling;
  const void* kernel;
  size_t smem_bytes;
  int block_m;
  int threads;
  LaunchFn launch;
};

template <int HD, int WARPS, int MT, int BN, int MIN_CTAS>
void launch_tiling(const AttentionArgs& args, dim3 grid, size_t smem_bytes, cudaStream_t stream) {
  attn::flash_attention_kernel<HD, WARPS, MT, BN, MIN_CTAS><<<grid, 32 * WARPS, smem_bytes, stream>>>(args);
}

template <int HD, int WARPS, int MT, int BN, int MIN_CTAS = 1>
Compiled compiled() {
  using T = attn::Tiling<HD, WARPS, MT, BN>;
  return Compiled{HD,
                  AttentionTiling{WARPS, MT, BN, MIN_CTAS},
                  reinterpret_cast<const void*>(&attn::flash_attention_kernel<HD, WARPS, MT, BN, MIN_CTAS>),
                  T::kSmemBytes,
                  T::kBM,
                  T::kThreads,
                  &launch_tiling<HD, WARPS, MT, BN, MIN_CTAS>};
}

// Per head_dim, the default tiling first.
const std::vector<Compiled>& registry() {
  static const std::vector<Compiled> all = {
      compiled<128, 4, 2, 64>(), compiled<128, 8, 1, 64>(), compiled<128, 4, 1, 64>(), compiled<128, 4, 2, 32>(),
      compiled<128, 8, 2, 64>(), compiled<128, 4, 1, 32, 3>(),
      compiled<64, 4, 2, 64>(),  compiled<64, 4, 1, 64>(),  compiled<32, 4, 1, 64>(), compiled<32, 4, 2, 64>(),
  };
  return all;
}

const Compiled& find(int head_dim, const AttentionTiling& t) {
  for (const auto& c : registry())
    if (c.head_dim == head_dim && c.tiling.warps == t.warps && c.tiling.m_tiles == t.m_tiles &&
        c.tiling.block_n == t.block_n && c.tiling.min_ctas_per_sm == t.min_ctas_per_sm)
      return c;
  throw UsageError(cat("CUDA attention: no compiled kernel for head_dim ", head_dim, " with tiling ", t.name(),
                       " (compiled head dims: 32, 64, 128)"));
}

}  // namespace

std::string AttentionTiling::name() const {
  return cat("w", warps, "m", m_tiles, "n", block_n, min_ctas_per_sm > 1 ? cat("c", min_ctas_per_sm) : "");
}

std::vector<AttentionTiling> attention_tilings(int head_dim) {
  std::vector<AttentionTiling> out;
  for (const auto& c : registry())
    if (c.head_dim == head_dim) out.push_back(c.tiling);
  if (out.empty())
    throw UsageError(cat("CUDA attention supports head_dim 32, 64 and 128; the model has head_dim ", head_dim));
  return out;
}

AttentionKernel::AttentionKernel(int device, int head_dim, AttentionTiling tiling)
    : head_dim_(head_dim), tiling_(tiling) {
  const Compiled& c = find(head_dim, tiling);
  CAKE_CUDA(cudaSetDevice(device), cat("selecting GPU ", device, " for attention"));
  int optin_bytes = 0;
  CAKE_CUDA(cudaDeviceGetAttribute(&optin_bytes, cudaDevAttrMaxSharedMemoryPerBlockOptin, device),
            "reading the shared-memory opt-in limit");
  if (c.smem_bytes > static_cast<size_t>(optin_bytes))
    throw EnvironmentError(cat("CUDA attention tiling ", tiling.name(), " needs ", c.smem_bytes,
                               " bytes of shared memory per block; GPU ", device, " allows ", optin_bytes));
  CAKE_CUDA(cudaFuncSetAttribute(c.kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(c.smem_bytes)),
            cat("raising the shared-memory limit of attention ", tiling.name()));
  smem_bytes_ = c.smem_bytes;
  kernel_ = c.kernel;
}

void AttentionKernel::launch(const AttentionArgs& args, cudaStream_t stream) const {
  if (args.n <= 0) return;
  if (args.head_dim != head_dim_)
    throw InternalError(cat("attention launched with head_dim ", args.head_dim, " on a kernel built for ", head_dim_));
  if (args.kv_heads <= 0 || args.q_heads % args.kv_heads != 0)
    throw InternalError(cat("attention: q_heads ", args.q_heads, " is not a multiple of kv_heads ", args.kv_heads));
  const Compiled& c = find(head_dim_, tiling_);
  const dim3 grid(static_cast<unsigned>(args.q_heads), static_cast<unsigned>((args.n + c.block_m - 1) / c.block_m));
  c.launch(args, grid, c.smem_bytes, stream);
  CAKE_CUDA_LAUNCH(cat("launching attention ", tiling_.name(), " n=", args.n, " first_pos=", args.first_pos));
}

}  // namespace cake::cuda
