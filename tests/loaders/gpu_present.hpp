// Whether the loader tests that need a GPU can run here (they skip themselves otherwise; CI has no
// GPU). Include after the CUDA runtime, in a build with CUDA.
#pragma once

#include <cuda_runtime.h>

namespace cake::test {

inline bool have_gpu() {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    cudaGetLastError();  // clear the error the probe left
    return false;
  }
  return true;
}

}  // namespace cake::test
