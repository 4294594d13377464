#include "common/cpu_probe.hpp"

#include "common/clock.hpp"

#include <algorithm>
#include <vector>

namespace cake {
namespace {

// c = a * b (n x n, row-major), i-k-j order so the inner loop streams rows and vectorises.
void matmul(const float* a, const float* b, float* c, int n) {
  std::fill(c, c + static_cast<size_t>(n) * n, 0.0f);
  for (int i = 0; i < n; ++i)
    for (int k = 0; k < n; ++k) {
      const float aik = a[static_cast<size_t>(i) * n + k];
      const float* brow = b + static_cast<size_t>(k) * n;
      float* crow = c + static_cast<size_t>(i) * n;
      for (int j = 0; j < n; ++j) crow[j] += aik * brow[j];
    }
}

}  // namespace

double cpu_probe_ms() {
  constexpr int n = kCpuProbeMatrix;
  const size_t elems = static_cast<size_t>(n) * n;
  std::vector<float> a(elems), b(elems), c(elems);
  // Fixed, non-trivial values (no zeros, no denormals): the same work on every machine and run.
  for (size_t i = 0; i < elems; ++i) {
    a[i] = 0.5f + static_cast<float>(i % 17) / 32.0f;
    b[i] = 0.25f + static_cast<float>(i % 13) / 64.0f;
  }
  volatile float sink = 0;
  const int64_t t0 = thread_cpu_ns();
  for (int r = 0; r < kCpuProbeRepeats; ++r) {
    matmul(a.data(), b.data(), c.data(), n);
    a[static_cast<size_t>(r) % elems] = c[elems / 2] * 1e-6f + 0.5f;  // each product depends on the last
  }
  sink = sink + c[0];
  return ns_to_ms(thread_cpu_ns() - t0);
}

}  // namespace cake
