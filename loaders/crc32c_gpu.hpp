// CRC-32C of bytes already in GPU memory (crc32c_kernels.cuh): the load lane verifies a chunk
// after its copies, over the bytes as they lie in the KV cache, instead of checksumming every
// byte on the reader threads (~20% of their time out of tmpfs on the H200). Gives exactly
// crc32c() of common/crc32c.hpp over the spans' bytes in order. Only built with CUDA.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "common/cuda_raii.hpp"

namespace cake {

// Part of a payload in device memory; a payload is a list of them in byte order.
struct DeviceSpan {
  const std::byte* data = nullptr;
  uint64_t bytes = 0;
};

class GpuCrc32c {
 public:
  // `slots` checksums that may be in flight at once (each with its own accumulator and result).
  // Uploads the tables: call before any clock, on the device that will run the checksums.
  explicit GpuCrc32c(int slots);
  GpuCrc32c(const GpuCrc32c&) = delete;
  GpuCrc32c& operator=(const GpuCrc32c&) = delete;

  int slots() const { return slots_; }
  // Queues on `stream` the CRC-32C of the spans' bytes, in order, into `slot` (a few kernels and a
  // 4-byte copy into page-locked memory). The spans must stay unchanged until the stream passed
  // this point; result(slot) is valid once it has (an event recorded after this call). Throws
  // cake::Error naming `what` on a launch failure.
  void enqueue(int slot, std::span<const DeviceSpan> spans, cudaStream_t stream, const std::string& what);
  uint32_t result(int slot) const;

 private:
  int slots_;
  cuda::DeviceBuffer tables_;      // crc_kernels::Tables
  cuda::DeviceBuffer scratch_;     // per slot: accumulator, result
  cuda::PinnedBuffer results_;     // per slot: the result, for the host
};

}  // namespace cake
