#include "loaders/crc32c_gpu.hpp"

#include <vector>

#include "common/cuda_check.hpp"
#include "common/error.hpp"
#include "loaders/crc32c_kernels.cuh"

namespace cake {
namespace k = crc_kernels;

GpuCrc32c::GpuCrc32c(int slots)
    : slots_(slots),
      tables_(sizeof(k::Tables), "the CRC-32C tables"),
      scratch_(2 * sizeof(uint32_t) * static_cast<size_t>(slots > 0 ? slots : 1), "the GPU checksum accumulators"),
      results_(sizeof(uint32_t) * static_cast<size_t>(slots > 0 ? slots : 1), "the GPU checksum results") {
  if (slots < 1) throw InternalError(cat("GPU CRC-32C: ", slots, " slots (need at least 1)"));
  k::Tables tables;
  k::make_tables(tables);
  CAKE_CUDA(cudaMemcpy(tables_.get(), &tables, sizeof tables, cudaMemcpyHostToDevice), "uploading the CRC-32C tables");
  // The accumulators start at zero; finish_kernel leaves them there after each checksum.
  CAKE_CUDA(cudaMemset(scratch_.get(), 0, scratch_.bytes()), "zeroing the GPU checksum accumulators");
}

void GpuCrc32c::enqueue(int slot, std::span<const DeviceSpan> spans, cudaStream_t stream, const std::string& what) {
  if (slot < 0 || slot >= slots_) throw InternalError(cat(what, ": GPU checksum slot ", slot, " of ", slots_));
  std::vector<k::HostSpan> host(spans.size());
  for (size_t i = 0; i < spans.size(); ++i) host[i] = {reinterpret_cast<const uint8_t*>(spans[i].data), spans[i].bytes};
  uint64_t total = 0;
  const std::vector<k::Spans> launches = k::plan_launches(host.data(), host.size(), total);
  const auto* tables = static_cast<const k::Tables*>(tables_.get());
  uint32_t* accumulator = scratch_.as<uint32_t>() + 2 * slot;
  uint32_t* result = accumulator + 1;
  for (const k::Spans& launch : launches) {
    const dim3 grid(k::tiles_of_longest(launch), launch.count);
    k::tiles_kernel<<<grid, k::kThreads, 0, stream>>>(launch, tables, accumulator);
    CAKE_CUDA_LAUNCH(cat(what, ": launching the CRC-32C kernel over ", launch.count, " spans"));
  }
  k::finish_kernel<<<1, 1, 0, stream>>>(tables, accumulator, total, result);
  CAKE_CUDA_LAUNCH(cat(what, ": launching the CRC-32C finishing kernel"));
  CAKE_CUDA(cudaMemcpyAsync(static_cast<uint32_t*>(results_.get()) + slot, result, sizeof(uint32_t),
                            cudaMemcpyDeviceToHost, stream),
            cat(what, ": copying the GPU checksum back"));
}

uint32_t GpuCrc32c::result(int slot) const {
  if (slot < 0 || slot >= slots_) throw InternalError(cat("GPU CRC-32C: result of slot ", slot, " of ", slots_));
  return static_cast<const volatile uint32_t*>(results_.get())[slot];
}

}  // namespace cake
